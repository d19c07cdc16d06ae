//! Switchless system calls for hosts where a ring-3 `syscall` stays at CPL 3 (kvm_pvm).
//!
//! There, every exit to the host's user space costs ~20 µs, while a guest ring-3 thread and a
//! host thread can exchange a cache line in ~0.35 µs (shared/tools/kvm-probe/RESULTS.md). So each
//! vCPU gets its own ring-3 LSTAR stub and a mailbox page next to it: while a host thread (the
//! *server*) says it is polling (`hot`), the stub posts the call's number and arguments to the
//! mailbox and spins until the server has carried it out, then returns to the program with no
//! exit at all. When the server is not polling, or declines the call (`BOUNCED`), the stub takes
//! the doorbell path of [`crate::tramp`] (one MMIO exit, handled on the vCPU thread). This is
//! the "switchless call" design of SGX enclaves and FlexSC, for the same reason: exits are dear.
//!
//! The mailbox is ring-3 writable, so the program can forge or corrupt a request: the server
//! must treat one exactly like the registers of a system-call exit (untrusted, validated, copied
//! before use). It gives the program nothing it lacks: it can make the same calls itself.
//!
//! # Protocol (the `state` word)
//!
//! ```text
//! IDLE 0 --stub posts--> POSTED 1 --server claims (lock cmpxchg)--> CLAIMED 2 --> DONE 3
//!                           |                                           \--> BOUNCED 4
//!                           \--stub withdraws (lock cmpxchg to RCX, a value >= 4096) when the
//!                              server stopped polling; then IDLE and the doorbell path
//! ```
//!
//! The stub returns `IDLE` before it leaves. Every transition a side can race with is a
//! `lock cmpxchg`; all others are plain stores ordered by x86's TSO.
//!
//! # Interrupted stubs
//!
//! A host signal can stop the vCPU anywhere in the stub. Before the runtime delivers anything
//! to the program it *normalizes* the stub with [`classify`]: a call not yet carried out is
//! rolled back (RIP = RCX − 2, the `syscall` instruction, to be executed again after the
//! handler, as Linux restarts a call interrupted before it began), a finished one is completed
//! (RAX = result, RIP = RCX), and a claimed one is waited for. So no signal frame ever points
//! into the stub, and a handler's own system calls find the mailbox idle.
//!
//! The stub restores the program's flags from R11 (where `syscall` saved them) with `popfq`
//! on a 256-byte stack in the mailbox page, never touching the program's stack. A program
//! single-stepping (TF) through `syscall` takes debug traps inside the stub; the runtime
//! resumes those silently, as Linux never shows user single-steps inside the kernel.
//!
//! A program that writes the mailbox itself, or jumps into the stub with made-up registers,
//! only confuses its own calls: the stub runs at the program's privilege, the server validates
//! every request, and the runtime's normalization trusts nothing it reads there (a forged
//! `CLAIMED` is not waited for; a non-canonical return address becomes a fault).

use crate::layout::PAGE_SIZE;

/// Mailbox offsets (bytes from the start of the mailbox page).
pub mod mailbox {
    /// `u64` protocol state: [`IDLE`](super::IDLE) ... [`BOUNCED`](super::BOUNCED), or a
    /// withdrawn request's RCX.
    pub const STATE: u64 = 0x00;
    /// `u32`: 1 while the server polls this mailbox, else 0.
    pub const HOT: u64 = 0x08;
    /// `u64`: the system-call number (RAX at `syscall`).
    pub const NR: u64 = 0x10;
    /// Six `u64` arguments (RDI, RSI, RDX, R10, R8, R9).
    pub const ARGS: u64 = 0x18;
    /// `u64`: the result for RAX.
    pub const RET: u64 = 0x48;
    /// `u64`: the program's RSP while the stub uses its own stack.
    pub const SAVED_RSP: u64 = 0x50;
    /// Top of the stub's 256-byte stack (16-byte aligned).
    pub const STACK_TOP: u64 = 0x200;
}

/// No request.
pub const IDLE: u64 = 0;
/// The stub posted a request.
pub const POSTED: u64 = 1;
/// The server is carrying the request out.
pub const CLAIMED: u64 = 2;
/// The result is in [`mailbox::RET`].
pub const DONE: u64 = 3;
/// The server declined; the stub takes the doorbell path.
pub const BOUNCED: u64 = 4;

/// Offset in the stub page of the first instruction after the request is posted.
pub const POSTED_OFFSET: u64 = 0x60;
/// Offset of the doorbell (slow) path: restore flags, reload RAX, jump to the doorbell stub.
pub const SLOW_OFFSET: u64 = 0xa0;
/// Offset of the completion path: restore flags, load the result, return.
pub const DONE_OFFSET: u64 = 0xe0;
/// End of the stub's code.
pub const END_OFFSET: u64 = 0x120;
/// Offset in the stub page of a `u64` holding the GVA of the shared doorbell stub, which the
/// slow path jumps to; the runtime writes it when it copies the page (read-only to the guest).
pub const DOORBELL_SLOT_OFFSET: u64 = 0x800;
/// In the slow and done paths, RSP is the stub's own from this many bytes after the path's
/// start (after `movq %rsp, SAVED_RSP(%rip)`) ...
pub const RSP_SAVED_FROM: u64 = 7;
/// ... up to and including this offset (the `movq SAVED_RSP(%rip), %rsp` not yet executed).
pub const RSP_SAVED_UNTIL: u64 = 17;

const MB: u64 = PAGE_SIZE;

core::arch::global_asm!(
    ".pushsection .rodata.dune_switchless, \"a\", @progbits",
    ".balign 64",
    ".globl dune_sl_start",
    ".hidden dune_sl_start",
    "dune_sl_start:",
    // RAX stays the call number until the request is posted.
    "  movq %rax, dune_sl_start + {mb} + {nr}(%rip)",
    "  cmpl $1, dune_sl_start + {mb} + {hot}(%rip)",
    "  jne 3f",
    "  cmpq $0, dune_sl_start + {mb} + {state}(%rip)",
    "  jne 3f",
    "  movq %rdi, dune_sl_start + {mb} + {args} + 0(%rip)",
    "  movq %rsi, dune_sl_start + {mb} + {args} + 8(%rip)",
    "  movq %rdx, dune_sl_start + {mb} + {args} + 16(%rip)",
    "  movq %r10, dune_sl_start + {mb} + {args} + 24(%rip)",
    "  movq %r8, dune_sl_start + {mb} + {args} + 32(%rip)",
    "  movq %r9, dune_sl_start + {mb} + {args} + 40(%rip)",
    // The posting store (11 bytes) ends exactly at POSTED_OFFSET.
    ".org dune_sl_start + {posted} - 11, 0x90",
    "  movq $1, dune_sl_start + {mb} + {state}(%rip)",
    ".org dune_sl_start + {posted}",
    "1:",
    "  pause",
    "  cmpq $3, dune_sl_start + {mb} + {state}(%rip)",
    "  je 4f",
    "  cmpq $4, dune_sl_start + {mb} + {state}(%rip)",
    "  je 2f",
    "  cmpl $1, dune_sl_start + {mb} + {hot}(%rip)",
    "  je 1b",
    // The server stopped polling: withdraw unless it claimed the request meanwhile.
    "  movl $1, %eax",
    "  lock cmpxchgq %rcx, dune_sl_start + {mb} + {state}(%rip)",
    "  jne 1b",
    "2:",
    "  movq $0, dune_sl_start + {mb} + {state}(%rip)",
    ".org dune_sl_start + {slow}, 0x90",
    "3:",
    "  movq %rsp, dune_sl_start + {mb} + {saved}(%rip)",
    "  leaq dune_sl_start + {mb} + {stack}(%rip), %rsp",
    "  pushq %r11",
    "  popfq",
    ".org dune_sl_start + {slow} + {until}",
    "  movq dune_sl_start + {mb} + {saved}(%rip), %rsp",
    "  movq dune_sl_start + {mb} + {nr}(%rip), %rax",
    "  jmpq *dune_sl_start + {doorbell}(%rip)",
    ".org dune_sl_start + {done}, 0xf4",
    "4:",
    "  movq %rsp, dune_sl_start + {mb} + {saved}(%rip)",
    "  leaq dune_sl_start + {mb} + {stack}(%rip), %rsp",
    "  pushq %r11",
    "  popfq",
    ".org dune_sl_start + {done} + {until}",
    "  movq dune_sl_start + {mb} + {saved}(%rip), %rsp",
    "  movq dune_sl_start + {mb} + {ret}(%rip), %rax",
    "  movq $0, dune_sl_start + {mb} + {state}(%rip)",
    "  jmpq *%rcx",
    ".org dune_sl_start + {end}, 0xf4",
    ".org dune_sl_start + {mb}, 0xf4",
    ".globl dune_sl_end",
    ".hidden dune_sl_end",
    "dune_sl_end:",
    ".popsection",
    mb = const MB,
    nr = const mailbox::NR,
    hot = const mailbox::HOT,
    state = const mailbox::STATE,
    args = const mailbox::ARGS,
    ret = const mailbox::RET,
    saved = const mailbox::SAVED_RSP,
    doorbell = const DOORBELL_SLOT_OFFSET,
    stack = const mailbox::STACK_TOP,
    posted = const POSTED_OFFSET,
    slow = const SLOW_OFFSET,
    done = const DONE_OFFSET,
    end = const END_OFFSET,
    until = const RSP_SAVED_UNTIL,
    options(att_syntax)
);

unsafe extern "C" {
    static dune_sl_start: u8;
    static dune_sl_end: u8;
}

/// The switchless stub page: exactly 4 KiB, padded with `hlt`; its mailbox must be the next
/// page.
pub fn stub_code() -> &'static [u8] {
    crate::tramp::section(&raw const dune_sl_start, &raw const dune_sl_end)
}

/// Where in the stub an interrupted vCPU stopped, and so what the runtime must do before it
/// touches the vCPU's registers for anything else (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Not in the stub.
    Outside,
    /// Before the request was posted: roll back (RAX still holds the call number).
    BeforePost,
    /// Posted, waiting: depends on `state` (see [`Stopped::Waiting`] handling in `dune`).
    Waiting,
    /// On the doorbell path, state already `IDLE`: roll back with RAX = the mailbox's number;
    /// `rsp_saved` when RSP is the stub's own (the program's is in the mailbox).
    Slow {
        /// RSP must be restored from [`mailbox::SAVED_RSP`].
        rsp_saved: bool,
    },
    /// On the completion path: complete with RAX = the mailbox's result.
    Done {
        /// RSP must be restored from [`mailbox::SAVED_RSP`].
        rsp_saved: bool,
    },
}

/// Classifies `offset`, the interrupted RIP minus the stub page's GVA (wrapping: any RIP
/// outside the page gives a huge offset).
pub const fn classify(offset: u64) -> Stopped {
    const fn in_window(offset: u64, start: u64) -> bool {
        offset >= start + RSP_SAVED_FROM && offset <= start + RSP_SAVED_UNTIL
    }
    if offset < POSTED_OFFSET {
        Stopped::BeforePost
    } else if offset < SLOW_OFFSET {
        Stopped::Waiting
    } else if offset < DONE_OFFSET {
        Stopped::Slow { rsp_saved: in_window(offset, SLOW_OFFSET) }
    } else if offset < END_OFFSET {
        Stopped::Done { rsp_saved: in_window(offset, DONE_OFFSET) }
    } else {
        Stopped::Outside
    }
}

/// The flags a program may set (CF PF AF ZF SF TF DF OF AC ID), as Linux's `FIX_EFLAGS`
/// allows from user space: restoring RFLAGS from R11 must not let it change IOPL or IF.
pub const USER_RFLAGS: u64 = 0x0024_0dd5;

#[cfg(test)]
mod tests {
    use super::*;

    /// The RIP-relative target of the instruction at `at` whose disp32 is at `disp_at` and
    /// which ends at `end` (stub-page offsets).
    fn target(c: &[u8], disp_at: usize, end: usize) -> i64 {
        let d = i32::from_le_bytes(c[disp_at..disp_at + 4].try_into().unwrap()) as i64;
        end as i64 + d
    }

    #[test]
    fn page_and_layout() {
        let c = stub_code();
        assert_eq!(c.len(), PAGE_SIZE as usize);
        // movq %rax, NR(%rip)
        assert_eq!(&c[0..3], &[0x48, 0x89, 0x05]);
        assert_eq!(target(c, 3, 7), (MB + mailbox::NR) as i64);
        // the posting store: movq $1, STATE(%rip), ending at POSTED_OFFSET
        let p = POSTED_OFFSET as usize - 11;
        assert_eq!(&c[p..p + 3], &[0x48, 0xc7, 0x05]);
        assert_eq!(target(c, p + 3, p + 11), (MB + mailbox::STATE) as i64);
        assert_eq!(u32::from_le_bytes(c[p + 7..p + 11].try_into().unwrap()), 1);
        // pause at POSTED_OFFSET
        assert_eq!(&c[POSTED_OFFSET as usize..POSTED_OFFSET as usize + 2], &[0xf3, 0x90]);
        for start in [SLOW_OFFSET, DONE_OFFSET] {
            let s = start as usize;
            // movq %rsp, SAVED(%rip); leaq STACK(%rip), %rsp; push %r11; popfq
            assert_eq!(&c[s..s + 3], &[0x48, 0x89, 0x25], "at {s:#x}");
            assert_eq!(target(c, s + 3, s + 7), (MB + mailbox::SAVED_RSP) as i64);
            assert_eq!(&c[s + 7..s + 10], &[0x48, 0x8d, 0x25]);
            assert_eq!(target(c, s + 10, s + 14), (MB + mailbox::STACK_TOP) as i64);
            assert_eq!(&c[s + 14..s + 17], &[0x41, 0x53, 0x9d]);
            // movq SAVED(%rip), %rsp at RSP_SAVED_UNTIL
            let u = s + RSP_SAVED_UNTIL as usize;
            assert_eq!(&c[u..u + 3], &[0x48, 0x8b, 0x25]);
            assert_eq!(target(c, u + 3, u + 7), (MB + mailbox::SAVED_RSP) as i64);
        }
        // The slow path ends in jmp *DOORBELL_SLOT(%rip) (in this read-only page), the done
        // path in jmp *%rcx.
        let j = SLOW_OFFSET as usize + RSP_SAVED_UNTIL as usize + 14;
        assert_eq!(&c[j..j + 2], &[0xff, 0x25], "jmpq *disp32(%rip)");
        assert_eq!(target(c, j + 2, j + 6), DOORBELL_SLOT_OFFSET as i64);
        let d = DONE_OFFSET as usize + RSP_SAVED_UNTIL as usize + 7;
        assert_eq!(&c[d..d + 3], &[0x48, 0x8b, 0x05], "movq RET(%rip), %rax");
        assert_eq!(target(c, d + 3, d + 7), (MB + mailbox::RET) as i64);
        assert!(c[..END_OFFSET as usize].windows(2).any(|w| w == [0xff, 0xe1]), "jmp *%rcx");
    }

    #[test]
    fn classification() {
        assert_eq!(classify(0), Stopped::BeforePost);
        assert_eq!(classify(POSTED_OFFSET - 1), Stopped::BeforePost);
        assert_eq!(classify(POSTED_OFFSET), Stopped::Waiting);
        assert_eq!(classify(SLOW_OFFSET), Stopped::Slow { rsp_saved: false });
        assert_eq!(classify(SLOW_OFFSET + 7), Stopped::Slow { rsp_saved: true });
        assert_eq!(classify(SLOW_OFFSET + 17), Stopped::Slow { rsp_saved: true });
        assert_eq!(classify(SLOW_OFFSET + 24), Stopped::Slow { rsp_saved: false });
        assert_eq!(classify(DONE_OFFSET + 16), Stopped::Done { rsp_saved: true });
        assert_eq!(classify(DONE_OFFSET + 30), Stopped::Done { rsp_saved: false });
        assert_eq!(classify(END_OFFSET), Stopped::Outside);
        assert_eq!(classify(0u64.wrapping_sub(8)), Stopped::Outside);
    }
}
