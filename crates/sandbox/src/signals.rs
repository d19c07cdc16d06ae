//! Linux signal semantics for the program: dispositions, default actions, and the x86-64
//! `rt_sigframe` the kernel builds on the user stack (arch/x86/kernel/signal_64.c,
//! arch/x86/include/uapi/asm/sigcontext.h, include/uapi/asm-generic/ucontext.h).
//!
//! Frame layout (64-bit), from the frame's start (where RSP points when the handler is entered):
//!
//! ```text
//! +0    pretcode (sa_restorer: the handler's return address)
//! +8    struct ucontext: uc_flags +0, uc_link +8, uc_stack +16 (24 bytes),
//!       uc_mcontext (struct sigcontext, 256 bytes) +40, uc_sigmask +296   (304 bytes)
//! +312  siginfo_t (128 bytes)
//! ...   (above, 64-byte aligned) the XSAVE area the sigcontext's `fpstate` points at
//! ```

use dune::Regs;

/// `SIG_DFL`.
pub const SIG_DFL: u64 = 0;
/// `SIG_IGN`.
pub const SIG_IGN: u64 = 1;
/// `SA_NOCLDWAIT`.
pub const SA_NOCLDWAIT: u64 = 0x2;
/// `SA_SIGINFO`.
pub const SA_SIGINFO: u64 = 0x4;
/// `SA_ONSTACK`.
pub const SA_ONSTACK: u64 = 0x0800_0000;
/// `SA_RESTART`.
pub const SA_RESTART: u64 = 0x1000_0000;
/// `SA_NODEFER`.
pub const SA_NODEFER: u64 = 0x4000_0000;
/// `SA_RESETHAND`.
pub const SA_RESETHAND: u64 = 0x8000_0000;
/// `SA_RESTORER`.
pub const SA_RESTORER: u64 = 0x0400_0000;

/// Offset of the ucontext in the frame.
pub const UC: u64 = 8;
/// Offset of the sigcontext in the frame.
pub const SC: u64 = UC + 40;
/// Offset of the saved signal mask in the frame.
pub const MASK: u64 = UC + 296;
/// Offset of the siginfo in the frame.
pub const INFO: u64 = UC + 304;
/// Size of the frame without the XSAVE area.
pub const FRAME: u64 = INFO + 128;

/// `UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS`.
const UC_FLAGS: u64 = 0x1 | 0x2 | 0x4;
/// `FP_XSTATE_MAGIC1` / `FP_XSTATE_MAGIC2` (arch/x86/include/uapi/asm/sigcontext.h).
const MAGIC1: u32 = 0x4650_5853;
const MAGIC2: u32 = 0x4650_5845;
/// RFLAGS bits a signal handler may change through the sigcontext (`FIX_EFLAGS`).
pub const FIX_EFLAGS: u64 =
    0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x1_0000 | 0x4_0000;

/// One kernel `struct sigaction` (handler, flags, restorer, mask).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Action {
    /// `sa_handler` / `sa_sigaction`, or `SIG_DFL`/`SIG_IGN`.
    pub handler: u64,
    /// `sa_flags`.
    pub flags: u64,
    /// `sa_restorer`.
    pub restorer: u64,
    /// `sa_mask`.
    pub mask: u64,
}

impl Action {
    /// Parses the 32-byte kernel layout.
    pub fn from_bytes(b: &[u8; 32]) -> Action {
        let q = |i: usize| u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        Action { handler: q(0), flags: q(1), restorer: q(2), mask: q(3) }
    }

    /// The 32-byte kernel layout.
    pub fn to_bytes(self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for (i, v) in [self.handler, self.flags, self.restorer, self.mask].into_iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
        }
        b
    }
}

/// What a signal does when its handler is `SIG_DFL` (signal(7)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Default {
    /// Terminate the process.
    Term,
    /// Terminate with a core dump.
    Core,
    /// Stop the process.
    Stop,
    /// Continue a stopped process.
    Cont,
    /// Ignore.
    Ign,
}

/// The default action of `sig`.
pub fn default_action(sig: i32) -> Default {
    match sig {
        libc::SIGCHLD | libc::SIGURG | libc::SIGWINCH => Default::Ign,
        libc::SIGCONT => Default::Cont,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => Default::Stop,
        libc::SIGQUIT
        | libc::SIGILL
        | libc::SIGTRAP
        | libc::SIGABRT
        | libc::SIGBUS
        | libc::SIGFPE
        | libc::SIGSEGV
        | libc::SIGXCPU
        | libc::SIGXFSZ
        | libc::SIGSYS => Default::Core,
        _ => Default::Term,
    }
}

/// Whether the host may simply ignore `sig` for a program whose disposition is `action`
/// (see `sys::mirror_disposition`).
pub fn host_ignores(sig: i32, action: &Action) -> bool {
    match action.handler {
        SIG_IGN => true,
        SIG_DFL => sig != libc::SIGCHLD && default_action(sig) == Default::Ign,
        _ => false,
    }
}

/// Bit of `sig` in a signal mask.
pub fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Signals that can never be blocked.
pub const UNBLOCKABLE: u64 = (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1));

/// A `siginfo_t` for a synchronous fault: `si_signo`, `si_code`, `si_addr`.
pub fn fault_info(sig: i32, code: i32, addr: u64) -> [u8; 128] {
    let mut b = [0u8; 128];
    b[0..4].copy_from_slice(&sig.to_ne_bytes());
    b[8..12].copy_from_slice(&code.to_ne_bytes());
    b[16..24].copy_from_slice(&addr.to_ne_bytes());
    b
}

/// Everything needed to build one frame.
#[derive(Debug)]
pub struct FrameInput<'a> {
    /// The interrupted context.
    pub regs: Regs,
    /// The signal.
    pub sig: i32,
    /// Its siginfo.
    pub info: &'a [u8; 128],
    /// The disposition (handler, flags, restorer).
    pub action: Action,
    /// The mask to restore on sigreturn.
    pub old_mask: u64,
    /// The thread's `stack_t` (24 bytes) at delivery.
    pub altstack: [u8; 24],
    /// The XSAVE image (legacy KVM_GET_XSAVE layout) and its meaningful size.
    pub xsave: &'a [u8],
    /// Fault address for `sigcontext.cr2`, error code and vector for `err`/`trapno`.
    pub cr2: u64,
    /// `sigcontext.err`.
    pub err: u64,
    /// `sigcontext.trapno`.
    pub trapno: u64,
}

/// A frame ready to be written at `sp`.
#[derive(Debug)]
pub struct Frame {
    /// Where the frame starts (the handler's RSP).
    pub sp: u64,
    /// The bytes from `sp` up (frame, padding, XSAVE area).
    pub bytes: Vec<u8>,
    /// Registers for entering the handler.
    pub handler_regs: Regs,
}

fn on_stack(altstack: &[u8; 24], sp: u64) -> bool {
    let base = u64::from_ne_bytes(altstack[0..8].try_into().unwrap());
    let size = u64::from_ne_bytes(altstack[16..24].try_into().unwrap());
    sp > base && sp - base <= size
}

fn altstack_enabled(altstack: &[u8; 24]) -> bool {
    let flags = i32::from_ne_bytes(altstack[8..12].try_into().unwrap());
    flags & libc::SS_DISABLE == 0
}

/// Builds the frame (Linux's `get_sigframe` placement: below the red zone, or at the top of the
/// alternate stack for `SA_ONSTACK` when not already on it). The program chooses the stack
/// pointer and the alternate stack, so the placement wraps around rather than overflow: a
/// frame that ends up outside the program's memory is refused by the caller, as Linux refuses
/// an unwritable one.
pub fn build(input: &FrameInput<'_>) -> Frame {
    let r = &input.regs;
    let use_alt = input.action.flags & SA_ONSTACK != 0
        && altstack_enabled(&input.altstack)
        && !on_stack(&input.altstack, r.rsp);
    let mut sp = if use_alt {
        let base = u64::from_ne_bytes(input.altstack[0..8].try_into().unwrap());
        let size = u64::from_ne_bytes(input.altstack[16..24].try_into().unwrap());
        base.wrapping_add(size)
    } else {
        r.rsp.wrapping_sub(128) // the x86-64 red zone
    };
    let xlen = input.xsave.len() as u64 + 4; // + FP_XSTATE_MAGIC2
    let fpstate = sp.wrapping_sub(xlen) & !63;
    sp = (fpstate.wrapping_sub(FRAME) & !15).wrapping_sub(8);
    let total = fpstate.wrapping_add(xlen).wrapping_sub(sp) as usize;
    let mut b = vec![0u8; total];
    let put = |b: &mut Vec<u8>, off: u64, v: u64| {
        b[off as usize..off as usize + 8].copy_from_slice(&v.to_ne_bytes())
    };
    put(&mut b, 0, input.action.restorer);
    put(&mut b, UC, UC_FLAGS);
    put(&mut b, UC + 8, 0);
    b[(UC + 16) as usize..(UC + 40) as usize].copy_from_slice(&input.altstack);
    let sc = [
        r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rdi, r.rsi, r.rbp, r.rbx, r.rdx,
        r.rax, r.rcx, r.rsp, r.rip, r.rflags,
    ];
    for (i, v) in sc.iter().enumerate() {
        put(&mut b, SC + 8 * i as u64, *v);
    }
    // cs, gs, fs, ss (16 bits each).
    let segs: [u16; 4] = [0x33, 0, 0, 0x2b];
    for (i, s) in segs.iter().enumerate() {
        let o = (SC + 144) as usize + 2 * i;
        b[o..o + 2].copy_from_slice(&s.to_ne_bytes());
    }
    put(&mut b, SC + 152, input.err);
    put(&mut b, SC + 160, input.trapno);
    put(&mut b, SC + 168, input.old_mask);
    put(&mut b, SC + 176, input.cr2);
    put(&mut b, SC + 184, fpstate);
    put(&mut b, MASK, input.old_mask);
    b[INFO as usize..(INFO + 128) as usize].copy_from_slice(input.info);
    // The XSAVE image, with the software-reserved bytes the kernel puts there (struct
    // _fpx_sw_bytes at offset 464 of the legacy area) and MAGIC2 after it.
    let x = fpstate.wrapping_sub(sp) as usize;
    b[x..x + input.xsave.len()].copy_from_slice(input.xsave);
    if input.xsave.len() >= 512 {
        let xfeatures = if input.xsave.len() >= 520 {
            u64::from_ne_bytes(input.xsave[512..520].try_into().unwrap())
        } else {
            3
        };
        b[x + 464..x + 468].copy_from_slice(&MAGIC1.to_ne_bytes());
        b[x + 468..x + 472].copy_from_slice(&((input.xsave.len() + 4) as u32).to_ne_bytes());
        b[x + 472..x + 480].copy_from_slice(&xfeatures.to_ne_bytes());
        b[x + 480..x + 484].copy_from_slice(&(input.xsave.len() as u32).to_ne_bytes());
    }
    let m = x + input.xsave.len();
    b[m..m + 4].copy_from_slice(&MAGIC2.to_ne_bytes());
    let handler_regs = Regs {
        rip: input.action.handler,
        rsp: sp,
        rdi: input.sig as u64,
        rsi: sp.wrapping_add(INFO),
        rdx: sp.wrapping_add(UC),
        rax: 0,
        rflags: (r.rflags & !(0x400 | 0x1_0000 | 0x100)) | 0x202, // clear DF, RF, TF
        ..*r
    };
    Frame { sp, bytes: b, handler_regs }
}

/// What `rt_sigreturn` restores, parsed from a frame's ucontext (`uc` = 304 bytes from
/// frame + 8).
#[derive(Debug, PartialEq, Eq)]
pub struct Restored {
    /// The general registers (RFLAGS merged through [`FIX_EFLAGS`] by the caller).
    pub regs: Regs,
    /// The signal mask.
    pub mask: u64,
    /// `sigcontext.fpstate`, or 0.
    pub fpstate: u64,
    /// `uc_stack`.
    pub stack: [u8; 24],
}

/// Parses the ucontext of a frame.
pub fn parse_ucontext(uc: &[u8]) -> Restored {
    let q = |o: u64| u64::from_ne_bytes(uc[o as usize..o as usize + 8].try_into().unwrap());
    let s = 40u64;
    let g = |i: u64| q(s + 8 * i);
    let regs = Regs {
        r8: g(0),
        r9: g(1),
        r10: g(2),
        r11: g(3),
        r12: g(4),
        r13: g(5),
        r14: g(6),
        r15: g(7),
        rdi: g(8),
        rsi: g(9),
        rbp: g(10),
        rbx: g(11),
        rdx: g(12),
        rax: g(13),
        rcx: g(14),
        rsp: g(15),
        rip: g(16),
        rflags: g(17),
    };
    let mut stack = [0u8; 24];
    stack.copy_from_slice(&uc[16..40]);
    Restored { regs, mask: q(296), fpstate: q(s + 184), stack }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trips_and_is_aligned() {
        let regs = Regs {
            rip: 0x401234,
            rsp: 0x7000_0000,
            rax: 5,
            rbx: 6,
            rflags: 0x246,
            ..Regs::default()
        };
        let info = fault_info(11, 1, 0xdead);
        let xsave = vec![0xabu8; 832];
        let f = build(&FrameInput {
            regs,
            sig: 11,
            info: &info,
            action: Action {
                handler: 0x40_1000,
                flags: SA_SIGINFO | SA_RESTORER,
                restorer: 0x40_2000,
                mask: 0,
            },
            old_mask: 0x55,
            altstack: [0; 24],
            xsave: &xsave,
            cr2: 0xdead,
            err: 4,
            trapno: 14,
        });
        // At handler entry RSP + 8 is 16-byte aligned, as after a call instruction.
        assert_eq!((f.sp + 8) % 16, 0);
        assert!(f.sp + f.bytes.len() as u64 <= 0x7000_0000 - 128);
        assert_eq!(u64::from_ne_bytes(f.bytes[0..8].try_into().unwrap()), 0x40_2000);
        assert_eq!(f.handler_regs.rdi, 11);
        assert_eq!(f.handler_regs.rsi, f.sp + INFO);
        assert_eq!(f.handler_regs.rdx, f.sp + UC);
        let r = parse_ucontext(&f.bytes[UC as usize..(UC + 304) as usize]);
        assert_eq!(r.regs, regs);
        assert_eq!(r.mask, 0x55);
        assert_eq!(r.fpstate % 64, 0);
        let x = (r.fpstate - f.sp) as usize;
        assert_eq!(&f.bytes[x..x + 8], &[0xab; 8]);
    }

    #[test]
    fn altstack_is_used_when_asked() {
        let mut alt = [0u8; 24];
        alt[0..8].copy_from_slice(&0x1000_0000u64.to_ne_bytes());
        alt[16..24].copy_from_slice(&0x4000u64.to_ne_bytes());
        let info = [0u8; 128];
        let f = build(&FrameInput {
            regs: Regs { rsp: 0x7000_0000, ..Regs::default() },
            sig: 10,
            info: &info,
            action: Action { handler: 1, flags: SA_ONSTACK, restorer: 2, mask: 0 },
            old_mask: 0,
            altstack: alt,
            xsave: &[0u8; 512],
            cr2: 0,
            err: 0,
            trapno: 0,
        });
        assert!(f.sp > 0x1000_0000 && f.sp < 0x1000_4000);
    }

    #[test]
    fn frame_placement_wraps_instead_of_overflowing() {
        let info = [0u8; 128];
        let input = |rsp, alt: [u8; 24], flags| FrameInput {
            regs: Regs { rsp, ..Regs::default() },
            sig: 10,
            info: &info,
            action: Action { handler: 1, flags, restorer: 2, mask: 0 },
            old_mask: 0,
            altstack: alt,
            xsave: &[0u8; 512],
            cr2: 0,
            err: 0,
            trapno: 0,
        };
        let f = build(&input(16, [0; 24], SA_RESTORER));
        assert!(f.sp > 1 << 63 && f.bytes.len() < 4096);
        let mut alt = [0u8; 24];
        alt[0..8].copy_from_slice(&(u64::MAX - 0xfff).to_ne_bytes());
        alt[16..24].copy_from_slice(&0x10000u64.to_ne_bytes());
        let f = build(&input(0x7000_0000, alt, SA_ONSTACK | SA_RESTORER));
        assert!(f.bytes.len() < 4096);
    }

    #[test]
    fn defaults_follow_signal7() {
        assert_eq!(default_action(libc::SIGCHLD), Default::Ign);
        assert_eq!(default_action(libc::SIGSEGV), Default::Core);
        assert_eq!(default_action(libc::SIGTSTP), Default::Stop);
        assert_eq!(default_action(libc::SIGTERM), Default::Term);
        assert_eq!(default_action(libc::SIGRTMIN() + 3), Default::Term);
    }
}
