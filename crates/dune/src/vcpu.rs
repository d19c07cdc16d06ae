//! A vCPU: one per program thread, run by one host thread at a time.
//!
//! ```text
//!            enter_user(rip, rsp)
//!   Created ─────────────────────▶ Ready ──run()──▶ [KVM_RUN] ──exit──▶ Stopped(Trap)
//!                                    ▲                                     │
//!                                    └──── set_syscall_result / resume ────┘
//! ```
//!
//! `run` returns each exit decoded as a [`Trap`]. Registers travel through `KVM_CAP_SYNC_REGS`
//! when the host offers it (no extra ioctl per exit), else through `KVM_GET/SET_REGS` on demand.
//! A [`Kicker`] interrupts `KVM_RUN` from another thread; an optional watchdog does the same
//! after a time limit so no caller can hang in the guest.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kvm_bindings::{Msrs, kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs, kvm_xcrs};
use kvm_ioctls::{SyncReg, VcpuExit, VcpuFd};
use trap::layout::{
    self, FMASK_RING0, FMASK_RING3, KERNEL_CS, KERNEL_DS, STAR, TSS_SEL, USER_CS, USER_DS,
};
use trap::switchless::{self, Stopped};
use trap::{ExitContext, RawExit, Regs, Trap, tramp};

use crate::error::{IoctlError, VcpuError, VmError};
use crate::switchless::{Mailbox, Settled};
use crate::sys::{self, ThreadTimer, TimerTag};
use crate::vm::{SyscallPath, TlbFlush, Vm};

const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_FMASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
const MSR_PAT: u32 = 0x277;

const CR0_PE: u64 = 1 << 0;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_AM: u64 = 1 << 18;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const CR4_UMIP: u64 = 1 << 11;
const CR4_FSGSBASE: u64 = 1 << 16;
const CR4_OSXSAVE: u64 = 1 << 18;
const CR4_SMEP: u64 = 1 << 20;
const CR4_SMAP: u64 = 1 << 21;
const EFER_SCE: u64 = 1 << 0;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;
/// CR3 page-level write-through: toggled to force KVM to reset its MMU context.
const CR3_PWT: u64 = 1 << 3;

/// RFLAGS for a fresh user context: IF and the always-one bit 1.
pub const USER_RFLAGS: u64 = 0x202;

/// The iret frame the CPU pushed on the IST stack for the exception being handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IretFrame {
    /// Where `iretq` returns to.
    pub rip: u64,
    /// Code selector (RPL 3 for a fault in the program).
    pub cs: u64,
    /// RFLAGS to restore.
    pub rflags: u64,
    /// Stack pointer to restore.
    pub rsp: u64,
    /// Stack selector.
    pub ss: u64,
}

/// Shared between a vCPU and its [`Kicker`]s: the thread currently running the vCPU.
#[derive(Debug, Default)]
pub(crate) struct KickShared {
    tid: AtomicI32,
    /// Kicks requested through a [`Kicker`] (as opposed to the VM's internal TLB shootdowns).
    external: AtomicU64,
}

/// A handle that interrupts one vCPU's `KVM_RUN` from any thread (cheap to clone).
#[derive(Clone, Debug)]
pub struct Kicker(pub(crate) Arc<KickShared>);

pub(crate) type KickHandle = Kicker;

impl Kicker {
    /// Makes the vCPU's current `KVM_RUN` return [`Trap::Interrupted`], or its next one if it is
    /// not in the guest right now. Kicks are never lost; several may coalesce into one.
    pub fn kick(&self) {
        self.0.external.fetch_add(1, Ordering::SeqCst);
        self.shootdown();
    }

    /// Interrupts the vCPU for a VM-internal reason (a TLB shootdown): `run` handles it and
    /// re-enters the guest without returning.
    pub(crate) fn shootdown(&self) {
        let tid = self.0.tid.load(Ordering::SeqCst);
        if tid > 0 {
            sys::send_kick(tid);
        }
    }

    pub(crate) fn same(&self, other: &Kicker) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RegsState {
    /// The cache may be stale; read with KVM_GET_REGS before use.
    Unknown,
    /// The cache holds the vCPU's registers.
    Clean,
    /// The cache was changed and must reach KVM before the next KVM_RUN.
    Dirty,
}

/// One vCPU of a [`Vm`].
#[derive(Debug)]
pub struct Vcpu {
    vm: Arc<Vm>,
    fd: VcpuFd,
    /// Declared after `fd`, so dropped after it: tells the VM's descriptor placer.
    _closed: FdClosed,
    index: u32,
    area: u64,
    kick: Kicker,
    regs: kvm_regs,
    regs_state: RegsState,
    sync_regs: bool,
    tlb_gen: u64,
    watchdog: Option<(Duration, Option<ThreadTimer>)>,
    /// A quiet period ([`Vcpu::quiet_for`]): its end, and the timer that kicks the vCPU then.
    quiet: Option<Instant>,
    quiet_timer: Option<ThreadTimer>,
    /// The signal mask KVM installs in `KVM_RUN` on this thread (the thread's own without the
    /// kick), and whether the quiet mask is installed instead right now.
    run_mask: u64,
    quiet_mask_set: bool,
    last: Option<RawExit>,
    /// External kicks already reported as [`Trap::Interrupted`].
    seen_kicks: u64,
    /// The host thread that last ran this vCPU and its kernel thread id, so that `run` asks
    /// for the tid (a system call) only when the vCPU moved. `ThreadId`s are never reused.
    thread: Option<(std::thread::ThreadId, i32)>,
    /// Shared with this vCPU's [`Mailbox`] handles: whether a server is carrying out a request.
    sl_serving: Arc<std::sync::atomic::AtomicBool>,
}

fn ioctl(name: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> IoctlError {
    move |e| IoctlError::new(name, e)
}

/// Copies the general registers between KVM's and trap's layouts (same fields, same order).
macro_rules! convert_regs {
    ($from:ident => $to:ident { $($f:ident),* }) => {
        $to { $($f: $from.$f),* }
    };
}

fn to_trap_regs(r: &kvm_regs) -> Regs {
    convert_regs!(r => Regs {
        rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8, r9, r10, r11, r12, r13, r14, r15, rip, rflags
    })
}

fn from_trap_regs(r: &Regs) -> kvm_regs {
    convert_regs!(r => kvm_regs {
        rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8, r9, r10, r11, r12, r13, r14, r15, rip, rflags
    })
}

fn segment(selector: u16, code: bool, dpl: u8) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 11 } else { 3 },
        present: 1,
        dpl,
        db: u8::from(!code),
        s: 1,
        l: u8::from(code),
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

fn null_segment(base: u64) -> kvm_segment {
    kvm_segment { base, unusable: 1, ..segment(0, false, 3) }
}

impl Vcpu {
    pub(crate) fn new(vm: Arc<Vm>, mut fd: VcpuFd, index: u32) -> Result<Vcpu, VmError> {
        sys::install_kick_handler();
        fd.set_cpuid2(&vm.host.supported_cpuid).map_err(ioctl("KVM_SET_CPUID2"))?;
        let area = vm.layout.cpu_area(index);
        let sync_regs = vm.host.sync_regs;
        if sync_regs {
            fd.set_sync_valid_reg(SyncReg::Register);
        }
        let mut v = Vcpu {
            _closed: FdClosed(vm.clone(), std::os::fd::AsRawFd::as_raw_fd(&fd)),
            vm,
            fd,
            index,
            area,
            kick: Kicker(Arc::new(KickShared::default())),
            regs: kvm_regs::default(),
            regs_state: RegsState::Unknown,
            sync_regs,
            tlb_gen: 0,
            watchdog: None,
            quiet: None,
            quiet_timer: None,
            run_mask: 0,
            quiet_mask_set: false,
            last: None,
            seen_kicks: 0,
            thread: None,
            sl_serving: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        v.init_system_state()?;
        v.zero_tsc_offset();
        if let Some(p) = v.vm.platform_opt() {
            v.set_syscall_path(p.syscall_path)?;
        }
        v.tlb_gen = v.vm.tlb_gen.load(Ordering::SeqCst);
        Ok(v)
    }

    /// Makes the guest's TSC the host's: KVM starts a new VM's TSC at 0 (arch/x86/kvm/x86.c,
    /// `kvm_synchronize_tsc`), while the host's vDSO, which the program runs in ring 3
    /// (`sandbox::vdso`), computes the time from `rdtsc` and the host's own clock data. Sets the
    /// vCPU attribute `KVM_VCPU_TSC_OFFSET` (group `KVM_VCPU_TSC_CTRL`, Linux >= 5.16;
    /// Documentation/virt/kvm/devices/vcpu.rst) to 0. A host without it keeps its offset; the
    /// probe's TSC step ([`crate::Platform::host_tsc`]) finds out either way.
    fn zero_tsc_offset(&self) {
        let (group, attr) =
            (kvm_bindings::KVM_VCPU_TSC_CTRL, u64::from(kvm_bindings::KVM_VCPU_TSC_OFFSET));
        if let Err(e) = sys::set_vcpu_attr(&self.fd, group, attr, 0) {
            tracing::debug!(%e, "KVM_VCPU_TSC_OFFSET not set");
        }
    }

    fn init_system_state(&mut self) -> Result<(), VcpuError> {
        let host = &self.vm.host;
        let l = self.vm.layout;
        let mut s = self.sregs()?;
        s.cs = segment(KERNEL_CS, true, 0);
        s.ss = segment(KERNEL_DS, false, 0);
        s.ds = segment(KERNEL_DS, false, 0);
        s.es = s.ds;
        s.fs = null_segment(0);
        s.gs = null_segment(0);
        let gdt = trap::desc::gdt_register(self.area + layout::CPU_GDT_OFFSET);
        s.gdt.base = gdt.base;
        s.gdt.limit = gdt.limit;
        let idt = trap::desc::idt_register(l.base + layout::IDT_OFFSET);
        s.idt.base = idt.base;
        s.idt.limit = idt.limit;
        s.tr = kvm_segment {
            base: self.area + layout::CPU_TSS_OFFSET,
            limit: (layout::TSS_SIZE - 1) as u32,
            selector: TSS_SEL,
            type_: 11, // busy 64-bit TSS
            present: 1,
            s: 0,
            ..Default::default()
        };
        s.ldt = kvm_segment { type_: 2, present: 1, unusable: 1, ..Default::default() };
        s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
        s.cr3 = self.vm.page_table_root();
        s.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
        let leaf = |f, i| host.cpuid(f, i);
        let l1 = leaf(1, 0).unwrap_or_default();
        let l7 = leaf(7, 0).unwrap_or_default();
        let mut cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
        let xsave = l1.ecx & (1 << 26) != 0;
        if xsave {
            cr4 |= CR4_OSXSAVE;
        }
        let optional = [
            (l7.ebx & 1 != 0, CR4_FSGSBASE),
            (l7.ecx & (1 << 2) != 0, CR4_UMIP),
            (l7.ebx & (1 << 7) != 0, CR4_SMEP),
            (l7.ebx & (1 << 20) != 0, CR4_SMAP),
        ];
        let all = optional.iter().filter(|(ok, _)| *ok).fold(cr4, |c, (_, bit)| c | bit);
        // Some hosts refuse optional CR4 bits (kvm_pvm refuses PCIDE, for one). SMEP, SMAP and
        // FSGSBASE only harden ring 0, which runs nothing but the trampolines; UMIP keeps the
        // program from reading the runtime's GDT and IDT addresses (sgdt/sidt), so it is kept
        // where the host takes it alone.
        let mut accepted = false;
        for c in [all, cr4 | (all & CR4_UMIP), cr4] {
            s.cr4 = c;
            if self.fd.set_sregs(&s).is_ok() {
                accepted = true;
                break;
            }
            tracing::debug!(cr4 = c, "KVM_SET_SREGS refused optional CR4 bits; retrying");
        }
        if !accepted {
            self.fd.set_sregs(&s).map_err(ioctl("KVM_SET_SREGS"))?;
        }
        if xsave {
            // XCR0: every state component KVM supports (CPUID.(EAX=0DH,ECX=0)), minus the AMX tile
            // state, which needs a per-process permission and an 11 KiB XSAVE area.
            let d = leaf(0xd, 0).unwrap_or_default();
            let supported = (u64::from(d.edx) << 32) | u64::from(d.eax);
            let xcr0 = (supported & !(3 << 17)) | 1;
            let mut xcrs = kvm_xcrs { nr_xcrs: 1, ..Default::default() };
            xcrs.xcrs[0].xcr = 0;
            xcrs.xcrs[0].value = xcr0;
            self.fd.set_xcrs(&xcrs).map_err(ioctl("KVM_SET_XCRS"))?;
        }
        let fpu = kvm_fpu { fcw: 0x37f, mxcsr: 0x1f80, ..Default::default() };
        self.fd.set_fpu(&fpu).map_err(ioctl("KVM_SET_FPU"))?;
        self.set_msrs(&[
            (MSR_STAR, STAR),
            (MSR_CSTAR, 0),
            (MSR_KERNEL_GS_BASE, 0),
            (MSR_PAT, 0x0007_0406_0007_0406),
        ])?;
        let regs = kvm_regs { rflags: 2, rip: l.ring0_code, ..Default::default() };
        self.fd.set_regs(&regs).map_err(ioctl("KVM_SET_REGS"))?;
        self.regs_state = RegsState::Unknown;
        Ok(())
    }

    fn set_msrs(&self, entries: &[(u32, u64)]) -> Result<(), VcpuError> {
        let e: Vec<kvm_msr_entry> = entries
            .iter()
            .map(|&(index, data)| kvm_msr_entry { index, data, ..Default::default() })
            .collect();
        let msrs = Msrs::from_entries(&e).expect("few MSRs");
        let n = self.fd.set_msrs(&msrs).map_err(ioctl("KVM_SET_MSRS"))?;
        if n != e.len() {
            let failed = e[n].index;
            tracing::warn!(msr = failed, "KVM_SET_MSRS stopped early");
            return Err(IoctlError { ioctl: "KVM_SET_MSRS", errno: libc::EINVAL }.into());
        }
        Ok(())
    }

    /// Points LSTAR/FMASK at the trampoline for `path`.
    pub(crate) fn set_syscall_path(&mut self, path: SyscallPath) -> Result<(), VcpuError> {
        let l = self.vm.layout;
        match path {
            SyscallPath::Ring0 => {
                self.set_msrs(&[(MSR_LSTAR, l.lstar_ring0()), (MSR_FMASK, FMASK_RING0)])
            }
            SyscallPath::Ring3Doorbell if self.vm.switchless() => {
                let stub = self.area + layout::CPU_SL_STUB_OFFSET;
                self.set_msrs(&[(MSR_LSTAR, stub), (MSR_FMASK, FMASK_RING3)])
            }
            SyscallPath::Ring3Doorbell => {
                self.set_msrs(&[(MSR_LSTAR, l.lstar_ring3()), (MSR_FMASK, FMASK_RING3)])
            }
        }
    }

    /// Points LSTAR at an arbitrary GVA (probe use).
    pub(crate) fn set_lstar(&mut self, lstar: u64, fmask: u64) -> Result<(), VcpuError> {
        self.set_msrs(&[(MSR_LSTAR, lstar), (MSR_FMASK, fmask)])
    }

    /// This vCPU's switchless mailbox, for a thread that serves its system calls without
    /// exits ([`trap::switchless`]); `None` unless [`Vm::switchless`].
    pub fn mailbox(&self) -> Option<Mailbox> {
        self.vm.switchless().then(|| self.mailbox_handle())
    }

    fn mailbox_handle(&self) -> Mailbox {
        let page = self.area + layout::CPU_SL_MAILBOX_OFFSET;
        Mailbox::new(self.vm.clone(), page, self.sl_serving.clone())
    }

    /// Whether `rip` lies in a ring-3 system-call trampoline this vCPU may run (its
    /// switchless stub, or the shared doorbell stub): where a program's single-step traps land
    /// when it steps over `syscall` on hosts where `syscall` stays at CPL 3. Linux never shows
    /// such traps inside its system-call path.
    pub fn in_ring3_trampoline(&self, rip: u64) -> bool {
        let stub = self.area + layout::CPU_SL_STUB_OFFSET;
        let doorbell_stub = self.vm.layout.lstar_ring3();
        switchless::classify(rip.wrapping_sub(stub)) != Stopped::Outside
            || rip.wrapping_sub(doorbell_stub) < tramp::RING3_STORE_LEN + 2
    }

    /// Brings a vCPU stopped inside its switchless stub (by a host signal) to a state outside
    /// it: the waiting call completed or rolled back to its `syscall` instruction (see
    /// [`trap::switchless`]). Registers are loaded and marked dirty only when it was inside.
    fn normalize_switchless(&mut self) -> Result<(), VcpuError> {
        if !self.vm.switchless() {
            return Ok(());
        }
        self.load_regs()?;
        let stub = self.area + layout::CPU_SL_STUB_OFFSET;
        let at = switchless::classify(self.regs.rip.wrapping_sub(stub));
        let mb = self.mailbox_handle();
        let (done, rsp_saved, rax) = match at {
            Stopped::Outside => return Ok(()),
            Stopped::BeforePost => (false, false, self.regs.rax),
            Stopped::Waiting => match mb.settle() {
                Settled::Done => (true, false, mb.result()),
                Settled::NotDone => (false, false, mb.number()),
            },
            Stopped::Slow { rsp_saved } => (false, rsp_saved, mb.number()),
            Stopped::Done { rsp_saved } => (true, rsp_saved, mb.result()),
        };
        mb.idle();
        let mailbox_page = self.area + layout::CPU_SL_MAILBOX_OFFSET;
        let r = self.regs_mut()?;
        if rsp_saved {
            r.rsp = mb.saved_rsp();
        }
        r.rax = rax;
        r.rflags = (r.rflags & !switchless::USER_RFLAGS) | (r.r11 & switchless::USER_RFLAGS);
        // Completed: continue after `syscall`; not carried out: execute it again. RCX is the
        // program's (it may have jumped in with any value): a non-canonical target becomes an
        // instruction fetch from the mailbox page (no-execute), a page fault the runtime
        // reports like any other, instead of a register state KVM would refuse.
        let target = if done { r.rcx } else { r.rcx.wrapping_sub(2) };
        r.rip = if target < 1 << 47 { target } else { mailbox_page };
        Ok(())
    }

    /// This vCPU's index in its VM.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The VM.
    pub fn vm(&self) -> &Arc<Vm> {
        &self.vm
    }

    /// A handle to interrupt this vCPU from another thread.
    pub fn kicker(&self) -> Kicker {
        self.kick.clone()
    }

    /// Limits each `KVM_RUN` to `limit`; when it expires [`Vcpu::run`] returns
    /// [`VcpuError::Watchdog`]. `None` removes the limit. Costs two `timer_settime` calls per run.
    pub fn set_watchdog(&mut self, limit: Option<Duration>) {
        self.watchdog = limit.map(|d| (d, None));
    }

    /// Starts (or extends) a quiet period of `d` from now: until it ends, `KVM_RUN` runs with
    /// every host signal blocked but the kick, so the guest runs undisturbed however fast
    /// signals arrive (they stay pending in the host kernel, or go to another thread, until
    /// the thread leaves `KVM_RUN`). A timer kicks the vCPU when the period ends; that run
    /// returns [`Trap::Interrupted`]. Exits, kicks and the thread's host calls between runs
    /// are not affected. Costs a `timer_settime`, and `KVM_SET_SIGNAL_MASK` when the period
    /// starts and after it ends. Errors: the timer cannot be created.
    pub fn quiet_for(&mut self, d: Duration) -> Result<(), VcpuError> {
        let tid = sys::gettid();
        if self.quiet_timer.as_ref().is_none_or(|t| t.tid() != tid) {
            self.quiet_timer = Some(
                ThreadTimer::for_current_thread(TimerTag::Slice)
                    .map_err(|e| IoctlError::from_io("timer_create", &e))?,
            );
        }
        self.quiet_timer.as_ref().expect("just created").arm(d.max(Duration::from_nanos(1)));
        self.quiet = Some(Instant::now() + d);
        Ok(())
    }

    /// Whether a quiet period ([`Vcpu::quiet_for`]) is in progress.
    pub fn is_quiet(&self) -> bool {
        self.quiet.is_some_and(|end| Instant::now() < end)
    }

    /// Ends the quiet period, if any, at once.
    pub fn end_quiet(&mut self) {
        if self.quiet.take().is_some()
            && let Some(t) = &self.quiet_timer
        {
            t.arm(Duration::ZERO);
        }
    }

    /// Starts the program's thread in ring 3 at `rip` with stack `rsp` and RFLAGS
    /// [`USER_RFLAGS`]; other general registers keep their values. Completes any I/O the last
    /// exit left pending first, so nothing of it lands on the new context.
    pub fn enter_user(&mut self, rip: u64, rsp: u64) -> Result<(), VcpuError> {
        self.complete_pending_io()?;
        let mut s = self.sregs()?;
        s.cs = segment(USER_CS, true, 3);
        s.ss = segment(USER_DS, false, 3);
        s.ds = null_segment(0);
        s.es = null_segment(0);
        s.fs = null_segment(s.fs.base);
        s.gs = null_segment(s.gs.base);
        self.set_sregs(&s)?;
        let r = self.regs_mut()?;
        r.rip = rip;
        r.rsp = rsp;
        r.rflags = USER_RFLAGS;
        Ok(())
    }

    /// Makes the vCPU continue in ring 3 with exactly `regs` (RIP, RSP and RFLAGS included),
    /// wherever it stopped: after a system call, an exception or an interruption. This is how
    /// a supervisor enters a signal handler or returns from one, when neither the system-call
    /// return (which needs RCX and R11) nor the exception return fits. Costs `KVM_RUN` with
    /// `immediate_exit` when I/O is pending, and `KVM_GET_SREGS` (plus `KVM_SET_SREGS` when the
    /// vCPU was stopped in ring 0).
    pub fn set_user_context(&mut self, regs: &Regs) -> Result<(), VcpuError> {
        self.complete_pending_io()?;
        let mut s = self.sregs()?;
        if s.cs.dpl != 3 || s.cs.selector != USER_CS {
            s.cs = segment(USER_CS, true, 3);
            s.ss = segment(USER_DS, false, 3);
            self.set_sregs(&s)?;
        }
        *self.regs_mut()? = from_trap_regs(regs);
        Ok(())
    }

    /// If the last exit was an I/O or MMIO access that KVM completes on the next `KVM_RUN`,
    /// completes it now (`KVM_RUN` with `immediate_exit`, Documentation/virt/kvm/api.rst), so the
    /// host can then change RIP or segments freely. A pending MMIO read completes with zeros.
    pub fn complete_pending_io(&mut self) -> Result<(), VcpuError> {
        if !matches!(
            self.last.take(),
            Some(RawExit::IoOut { .. } | RawExit::IoIn { .. } | RawExit::Mmio { .. })
        ) {
            return Ok(());
        }
        self.flush_regs()?;
        self.fd.set_kvm_immediate_exit(1);
        let r = self.fd.run().map(|_| ()).map_err(|e| e.errno());
        self.fd.set_kvm_immediate_exit(0);
        self.after_exit();
        match r {
            Ok(()) | Err(libc::EINTR) => Ok(()),
            Err(errno) => Err(IoctlError { ioctl: "KVM_RUN", errno }.into()),
        }
    }

    /// The general registers (from the last exit's sync area, or `KVM_GET_REGS`).
    pub fn regs(&mut self) -> Result<Regs, VcpuError> {
        self.load_regs()?;
        Ok(to_trap_regs(&self.regs))
    }

    /// Replaces the general registers; they reach KVM before the next run.
    pub fn set_regs(&mut self, r: &Regs) -> Result<(), VcpuError> {
        *self.regs_mut()? = from_trap_regs(r);
        Ok(())
    }

    /// Sets RAX, the system call's result.
    pub fn set_syscall_result(&mut self, value: u64) -> Result<(), VcpuError> {
        self.regs_mut()?.rax = value;
        Ok(())
    }

    fn load_regs(&mut self) -> Result<(), VcpuError> {
        if self.regs_state == RegsState::Unknown {
            self.regs = self.fd.get_regs().map_err(ioctl("KVM_GET_REGS"))?;
            self.regs_state = RegsState::Clean;
        }
        Ok(())
    }

    fn regs_mut(&mut self) -> Result<&mut kvm_regs, VcpuError> {
        self.load_regs()?;
        self.regs_state = RegsState::Dirty;
        Ok(&mut self.regs)
    }

    fn flush_regs(&mut self) -> Result<(), VcpuError> {
        if self.regs_state == RegsState::Dirty {
            if self.sync_regs {
                self.fd.sync_regs_mut().regs = self.regs;
                self.fd.set_sync_dirty_reg(SyncReg::Register);
            } else {
                self.fd.set_regs(&self.regs).map_err(ioctl("KVM_SET_REGS"))?;
            }
            self.regs_state = RegsState::Clean;
        }
        Ok(())
    }

    fn after_exit(&mut self) {
        if self.sync_regs {
            self.regs = self.fd.sync_regs_mut().regs;
            self.regs_state = RegsState::Clean;
        } else {
            self.regs_state = RegsState::Unknown;
        }
    }

    /// The special registers (`KVM_GET_SREGS`).
    pub fn sregs(&self) -> Result<kvm_sregs, VcpuError> {
        Ok(self.fd.get_sregs().map_err(ioctl("KVM_GET_SREGS"))?)
    }

    /// Sets the special registers (`KVM_SET_SREGS`).
    pub fn set_sregs(&mut self, s: &kvm_sregs) -> Result<(), VcpuError> {
        Ok(self.fd.set_sregs(s).map_err(ioctl("KVM_SET_SREGS"))?)
    }

    /// Sets the FS base (the program's TLS pointer, `arch_prctl(ARCH_SET_FS)`).
    pub fn set_fs_base(&mut self, base: u64) -> Result<(), VcpuError> {
        let mut s = self.sregs()?;
        s.fs.base = base;
        self.set_sregs(&s)
    }

    /// The x87/SSE state (`KVM_GET_FPU`).
    pub fn fpu(&self) -> Result<kvm_fpu, VcpuError> {
        Ok(self.fd.get_fpu().map_err(ioctl("KVM_GET_FPU"))?)
    }

    /// Sets the x87/SSE state (`KVM_SET_FPU`).
    pub fn set_fpu(&mut self, f: &kvm_fpu) -> Result<(), VcpuError> {
        Ok(self.fd.set_fpu(f).map_err(ioctl("KVM_SET_FPU"))?)
    }

    /// The full XSAVE state (`KVM_GET_XSAVE`, the 4 KiB legacy layout: x87, SSE, AVX,
    /// AVX-512).
    pub fn xsave(&self) -> Result<kvm_bindings::kvm_xsave, VcpuError> {
        Ok(self.fd.get_xsave().map_err(ioctl("KVM_GET_XSAVE"))?)
    }

    /// Sets the XSAVE state (`KVM_SET_XSAVE`).
    pub fn set_xsave(&mut self, x: &kvm_bindings::kvm_xsave) -> Result<(), VcpuError> {
        sys::set_xsave(&self.fd, x).map_err(ioctl("KVM_SET_XSAVE"))?;
        Ok(())
    }

    /// XCR0 (`KVM_GET_XCRS`): the state components the vCPU's XSAVE area holds. A checkpoint
    /// records it with the XSAVE state, so that a restore can refuse a vCPU lacking one.
    pub fn xcr0(&self) -> Result<u64, VcpuError> {
        let x = self.fd.get_xcrs().map_err(ioctl("KVM_GET_XCRS"))?;
        let n = (x.nr_xcrs as usize).min(x.xcrs.len());
        Ok(x.xcrs[..n].iter().find(|e| e.xcr == 0).map_or(1, |e| e.value))
    }

    /// The iret frame of the exception being handled (valid after a
    /// [`Trap::PageFault`]/[`Trap::Exception`] until the vCPU runs again).
    pub fn exception_frame(&self) -> IretFrame {
        let [_, rip, cs, rflags, rsp, ss] = self.ist_words();
        IretFrame { rip, cs, rflags, rsp, ss }
    }

    /// Changes where the exception trampoline's `iretq` returns: the way to resume the program
    /// elsewhere after an exception (changing RIP directly would be undone by the trampoline).
    pub fn set_exception_frame(&mut self, f: &IretFrame) {
        let top = self.area - self.vm.layout.base + layout::CPU_IST_TOP_OFFSET;
        for (i, v) in [f.rip, f.cs, f.rflags, f.rsp, f.ss].into_iter().enumerate() {
            self.vm.system.write_u64(top - 40 + 8 * i as u64, v);
        }
    }

    /// Makes the interrupted system call return to `rip` instead of the instruction after
    /// `syscall` (both trampolines return through RCX). `rip` must be canonical.
    pub fn set_syscall_return(&mut self, rip: u64) -> Result<(), VcpuError> {
        self.regs_mut()?.rcx = rip;
        Ok(())
    }

    fn ist_words(&self) -> [u64; 6] {
        let top = self.area - self.vm.layout.base + layout::CPU_IST_TOP_OFFSET;
        self.vm.system.read_u64s::<6>(top - 48)
    }

    fn sync_tlb(&mut self) -> Result<(), VcpuError> {
        let generation = self.vm.tlb_gen.load(Ordering::SeqCst);
        if generation == self.tlb_gen {
            return Ok(());
        }
        let method = self.vm.platform_opt().map_or(TlbFlush::ReloadCr3, |p| p.tlb_flush);
        self.flush_tlb(method, generation)?;
        self.tlb_gen = generation;
        Ok(())
    }

    /// Flushes this vCPU's TLB with `method` (probe use; normally automatic).
    pub(crate) fn flush_tlb(&mut self, method: TlbFlush, generation: u64) -> Result<(), VcpuError> {
        match method {
            TlbFlush::ReloadCr3 => {
                let mut s = self.sregs()?;
                s.cr3 ^= CR3_PWT;
                self.set_sregs(&s)
            }
            TlbFlush::ZapShadow => Ok(self.vm.zap_shadow(generation)?),
        }
    }

    /// Runs the vCPU until the next exit and decodes it.
    ///
    /// Errors: [`VcpuError::Ioctl`] when `KVM_RUN` (or a register ioctl) fails with anything but
    /// `EINTR`/`EAGAIN`/`EFAULT` (those become [`Trap::Interrupted`]/[`Trap::HostFault`]);
    /// [`VcpuError::Watchdog`] when the watchdog fired.
    pub fn run(&mut self) -> Result<Trap, VcpuError> {
        let raw = self.run_raw()?;
        if raw == RawExit::Interrupted {
            self.normalize_switchless()?;
        }
        self.decode(raw)
    }

    /// Like [`Vcpu::run`] but returns the exit undecoded (for measurements of the raw exit cost
    /// and for callers with their own exit protocol). Registers are still synced, but a vCPU
    /// interrupted inside its switchless stub is left there (see [`Vcpu::mailbox`]).
    pub fn run_raw(&mut self) -> Result<RawExit, VcpuError> {
        let me = std::thread::current().id();
        let tid = match self.thread {
            Some((id, tid)) if id == me => tid,
            _ => {
                let tid = sys::gettid();
                self.thread = Some((me, tid));
                tid
            }
        };
        if self.kick.0.tid.load(Ordering::Relaxed) != tid {
            // First run on this thread: block the kick signal here and let KVM unblock it only
            // inside KVM_RUN (see `sys`), then make kicks target this thread.
            self.run_mask = sys::block_kick_in_this_thread();
            self.quiet_mask_set = false;
            // A quiet period's timer kicks the thread that started it.
            self.end_quiet();
            sys::set_vcpu_signal_mask(&self.fd, self.run_mask)
                .map_err(|e| IoctlError::from_io("KVM_SET_SIGNAL_MASK", &e))?;
            self.kick.0.tid.store(tid, Ordering::SeqCst);
            self.vm.register_running(self.kick.clone());
        }
        loop {
            // A kick whose signal was taken outside the guest (a host call runs with it
            // unblocked: `with_kick_unblocked`) ends this run before it starts.
            let external = self.kick.0.external.load(Ordering::SeqCst);
            if external != self.seen_kicks {
                self.seen_kicks = external;
                let _ = sys::consume_kicks();
                return Ok(RawExit::Interrupted);
            }
            let signals = sys::host_signals();
            let (raw, kicks) = self.run_once(tid)?;
            if raw == RawExit::Interrupted {
                // Consumed before the watchdog is disarmed: re-arming a POSIX timer discards its
                // pending signal (kernel/time/posix-timers.c, it_signal_seq).
                let kicks = kicks.unwrap_or_default();
                if let (true, Some((d, _))) = (kicks.watchdog, &self.watchdog) {
                    return Err(VcpuError::Watchdog(*d));
                }
                // The end of a quiet period is reported, so that what arrived meanwhile is seen.
                let quiet_over = kicks.slice && self.quiet.is_some_and(|end| Instant::now() >= end);
                if quiet_over {
                    self.quiet = None;
                }
                // A kick that only asked for a TLB shootdown (or a stale quiet-period timer):
                // flush and go back in. External kicks are counted, so one sent while the vCPU
                // was outside the guest still ends the next run; a host signal taken with the
                // kick (the embedder's, see `note_host_signal`) or a foreign kick is reported.
                let external = self.kick.0.external.load(Ordering::SeqCst);
                let other = kicks.foreign || sys::host_signals() != signals;
                if kicks.any && !quiet_over && !other && external == self.seen_kicks {
                    continue;
                }
                self.seen_kicks = external;
            }
            return Ok(raw);
        }
    }

    fn run_once(&mut self, tid: i32) -> Result<(RawExit, Option<sys::Kicks>), VcpuError> {
        self.sync_tlb()?;
        self.flush_regs()?;
        let quiet = self.quiet.is_some_and(|end| Instant::now() < end);
        if quiet != self.quiet_mask_set {
            let mask = if quiet { sys::quiet_mask() } else { self.run_mask };
            sys::set_vcpu_signal_mask(&self.fd, mask)
                .map_err(|e| IoctlError::from_io("KVM_SET_SIGNAL_MASK", &e))?;
            self.quiet_mask_set = quiet;
        }
        if let Some((d, timer)) = &mut self.watchdog {
            if timer.as_ref().is_none_or(|t| t.tid() != tid) {
                *timer = Some(
                    ThreadTimer::for_current_thread(TimerTag::Watchdog)
                        .map_err(|e| IoctlError::from_io("timer_create", &e))?,
                );
            }
            timer.as_ref().expect("just created").arm(*d);
        }
        let raw = self.kvm_run();
        let kicks = matches!(raw, Ok(RawExit::Interrupted)).then(sys::consume_kicks);
        if let Some((_, Some(timer))) = &self.watchdog {
            timer.arm(Duration::ZERO);
        }
        let raw = raw?;
        self.last = Some(raw);
        self.after_exit();
        Ok((raw, kicks))
    }
    /// Decodes `raw` from the registers of this exit. Without sync regs the general registers
    /// are fetched only for a system-call exit (the one trap that carries them), and CR2 only
    /// for a page fault; a failing fetch is an error, never a trap built from stale values.
    fn decode(&mut self, raw: RawExit) -> Result<Trap, VcpuError> {
        let mut t = self.decode_with_cached_regs(raw)?;
        if self.regs_state == RegsState::Unknown && matches!(t, Trap::Syscall(_)) {
            self.load_regs()?;
            t = self.decode_with_cached_regs(raw)?;
        }
        Ok(t)
    }

    fn decode_with_cached_regs(&self, raw: RawExit) -> Result<Trap, VcpuError> {
        let regs = to_trap_regs(&self.regs);
        let ist = match raw {
            RawExit::IoOut { .. } => self.ist_words(),
            _ => [0; 6],
        };
        let cx = ExitContext { regs: &regs, ist: &ist, doorbell_gpa: self.vm.layout.doorbell };
        let mut sregs_err = None;
        let t = trap::decode(raw, &cx, || match self.fd.get_sregs() {
            Ok(s) => s.cr2,
            Err(e) => {
                sregs_err = Some(e);
                0
            }
        });
        match sregs_err {
            Some(e) => Err(ioctl("KVM_GET_SREGS")(e).into()),
            None => Ok(t),
        }
    }

    fn kvm_run(&mut self) -> Result<RawExit, VcpuError> {
        let exit = match self.fd.run() {
            Ok(exit) => exit,
            Err(e) => {
                return match e.errno() {
                    libc::EINTR | libc::EAGAIN => Ok(RawExit::Interrupted),
                    libc::EFAULT => Ok(RawExit::HostFault { gpa: None }),
                    _ => Err(IoctlError::new("KVM_RUN", e).into()),
                };
            }
        };
        Ok(match exit {
            VcpuExit::IoOut(port, _) => RawExit::IoOut { port },
            VcpuExit::IoIn(port, data) => {
                data.fill(0xff);
                RawExit::IoIn { port }
            }
            VcpuExit::MmioWrite(gpa, data) => {
                RawExit::Mmio { gpa, len: data.len() as u32, write: true }
            }
            VcpuExit::MmioRead(gpa, data) => {
                data.fill(0);
                RawExit::Mmio { gpa, len: data.len() as u32, write: false }
            }
            VcpuExit::Hlt => RawExit::Hlt,
            VcpuExit::Shutdown => RawExit::Shutdown,
            VcpuExit::Intr => RawExit::Interrupted,
            VcpuExit::FailEntry(reason, _) => RawExit::FailEntry { reason },
            VcpuExit::MemoryFault { gpa, .. } => RawExit::HostFault { gpa: Some(gpa) },
            VcpuExit::InternalError => {
                RawExit::InternalError { suberror: sys::internal_suberror(self.fd.get_kvm_run()) }
            }
            _ => RawExit::Other { reason: self.fd.get_kvm_run().exit_reason },
        })
    }
}

impl Drop for Vcpu {
    fn drop(&mut self) {
        self.vm.forget_fd(std::os::fd::AsRawFd::as_raw_fd(&self.fd));
        self.vm.unregister_running(&self.kick);
        self.kick.0.tid.store(0, Ordering::SeqCst);
    }
}

/// Tells the VM that a vCPU's descriptor was closed, when dropped after it.
#[derive(Debug)]
struct FdClosed(Arc<Vm>, std::os::fd::RawFd);

impl Drop for FdClosed {
    fn drop(&mut self) {
        self.0.fd_closed(self.1);
    }
}
