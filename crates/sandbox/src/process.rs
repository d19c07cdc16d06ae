//! The sandboxed process: its memory, its descriptors, the state the supervisor keeps for it,
//! and the run loop that turns every exit into a system call, a retry, or the end.

use std::collections::HashMap;
use std::sync::Arc;

use dune::{Trap, Vcpu, Vm};

use crate::mm::Mm;
use crate::policy::Policy;
use crate::syscall::{self, Ctx};
use crate::trace::Tracer;

/// Signal state kept for the program (never installed on the host).
#[derive(Clone, Debug)]
pub struct SigState {
    /// Kernel `struct sigaction` per signal (index = signal number).
    pub actions: [[u8; 32]; 65],
    /// Blocked signals (bit n-1 for signal n).
    pub mask: u64,
    /// `stack_t` of the alternate signal stack.
    pub altstack: [u8; 24],
}

impl Default for SigState {
    fn default() -> Self {
        let mut altstack = [0u8; 24];
        altstack[8..12].copy_from_slice(&libc::SS_DISABLE.to_ne_bytes());
        SigState { actions: [[0; 32]; 65], mask: 0, altstack }
    }
}

/// How the program ended, when it ended by a fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fatal {
    /// The signal Linux would kill it with.
    pub signal: i32,
    /// The faulting address (CR2 or the guest-physical address), or 0.
    pub addr: u64,
    /// The program's RIP at the fault.
    pub rip: u64,
    /// What happened, for the report line.
    pub what: String,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `exit` or `exit_group` with this status (0..=255).
    Exited(i32),
    /// A fatal fault.
    Killed(Fatal),
}

/// The runtime failed (not the program).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A vCPU operation failed.
    #[error(transparent)]
    Vcpu(#[from] dune::VcpuError),
    /// The guest did something only a runtime bug can explain.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The sandboxed process.
#[derive(Debug)]
pub struct Process {
    /// The VM.
    pub vm: Arc<Vm>,
    /// The address space.
    pub mm: Mm,
    runtime_fds: Vec<i32>,
    /// The policy.
    pub policy: Box<dyn Policy>,
    /// The system-call trace, when enabled.
    pub trace: Option<Tracer>,
    /// Signal state.
    pub sig: SigState,
    /// `set_tid_address`'s pointer.
    pub tid_address: u64,
    /// `set_robust_list`'s head and length.
    pub robust_list: (u64, u64),
    /// `personality`.
    pub personality: u64,
    rlimits: HashMap<u32, [u8; 16]>,
    /// The program's name, for reports.
    pub name: String,
    /// The program's executable, absolute (what `/proc/self/exe` shows it).
    pub exe: std::path::PathBuf,
}

impl Process {
    /// A process over `mm` with `policy`.
    pub fn new(vm: Arc<Vm>, mm: Mm, policy: Box<dyn Policy>, name: String) -> Process {
        let mut p = Process {
            runtime_fds: vm.runtime_fds(),
            vm,
            mm,
            policy,
            trace: None,
            sig: SigState::default(),
            tid_address: 0,
            robust_list: (0, 0),
            personality: 0,
            rlimits: HashMap::new(),
            exe: std::fs::canonicalize(&name).unwrap_or_else(|_| name.clone().into()),
            name,
        };
        p.runtime_fds.sort_unstable();
        p
    }

    /// Adds a descriptor to the runtime's protected set.
    pub fn protect_fd(&mut self, fd: i32) {
        self.runtime_fds.push(fd);
        self.runtime_fds.sort_unstable();
    }

    /// Whether `fd` is one of the runtime's own descriptors.
    pub fn is_runtime_fd(&self, fd: i32) -> bool {
        self.runtime_fds.binary_search(&fd).is_ok()
    }

    /// The runtime's own descriptors.
    pub fn runtime_fds(&self) -> &[i32] {
        &self.runtime_fds
    }

    /// The program's view of `RLIMIT_AS`/`RLIMIT_DATA` (`struct rlimit`, 16 bytes).
    pub fn rlimit_view(&self, resource: u32) -> [u8; 16] {
        *self.rlimits.get(&resource).unwrap_or(&[0xff; 16])
    }

    /// Sets the program's view of a limit the supervisor keeps apart.
    pub fn set_rlimit_view(&mut self, resource: u32, value: Vec<u8>) {
        if let Ok(v) = value.try_into() {
            self.rlimits.insert(resource, v);
        }
    }

    /// Whether a user page fault at `addr` is spurious: the program's mapping allows the
    /// access, so the guest used a stale, less permissive translation (possible on EPT hosts,
    /// where adding permissions does not flush TLBs).
    fn spurious(&self, pf: &dune::PageFault) -> bool {
        let Some(v) = self.mm.vma_at(pf.addr) else {
            return false;
        };
        if pf.error.write() {
            v.prot & libc::PROT_WRITE != 0
        } else if pf.error.fetch() {
            v.prot & libc::PROT_EXEC != 0
        } else {
            v.prot != 0
        }
    }

    /// Runs the program on `vcpu` until it exits or dies.
    pub fn run(&mut self, vcpu: &mut Vcpu) -> Result<Outcome, RunError> {
        let mut retries = 0;
        loop {
            let trap = vcpu.run()?;
            match trap {
                Trap::Syscall(sc) => {
                    let mut ctx = Ctx { proc: self, vcpu, exit: None };
                    let rax = syscall::dispatch(&mut ctx, &sc);
                    if let Some(status) = ctx.exit {
                        return Ok(Outcome::Exited(status));
                    }
                    vcpu.set_syscall_result(rax)?;
                    retries = 0;
                }
                Trap::PageFault(pf) if pf.user => {
                    if self.spurious(&pf) && retries < 3 {
                        retries += 1;
                        self.vm.request_tlb_flush();
                        continue;
                    }
                    let code = if pf.error.present() { "access violation" } else { "no mapping" };
                    return Ok(Outcome::Killed(Fatal {
                        signal: libc::SIGSEGV,
                        addr: pf.addr,
                        rip: pf.rip,
                        what: code.into(),
                    }));
                }
                Trap::Exception(e) if e.user => return Ok(Outcome::Killed(exception_signal(&e))),
                Trap::HostFault { gpa } => {
                    let rip = vcpu.regs()?.rip;
                    return Ok(Outcome::Killed(Fatal {
                        signal: libc::SIGBUS,
                        addr: gpa.unwrap_or(0),
                        rip,
                        what: "the host could not back the page".into(),
                    }));
                }
                Trap::PhysFault { gpa, .. } => {
                    let rip = vcpu.regs()?.rip;
                    return Ok(Outcome::Killed(Fatal {
                        signal: libc::SIGBUS,
                        addr: gpa,
                        rip,
                        what: "access to unbacked memory".into(),
                    }));
                }
                Trap::Interrupted | Trap::SpuriousInterrupt => {}
                other => return Err(RunError::Internal(format!("unexpected exit {other:?}"))),
            }
        }
    }
}

/// The signal Linux sends for a user-mode exception (arch/x86/kernel/traps.c).
fn exception_signal(e: &dune::Exception) -> Fatal {
    let (signal, what) = match e.vector {
        0 => (libc::SIGFPE, "divide error"),
        1 | 3 => (libc::SIGTRAP, "breakpoint"),
        6 => (libc::SIGILL, "invalid opcode"),
        7 => (libc::SIGSEGV, "device not available"),
        11 => (libc::SIGBUS, "segment not present"),
        12 => (libc::SIGBUS, "stack segment fault"),
        13 => (libc::SIGSEGV, "general protection fault"),
        16 | 19 => (libc::SIGFPE, "floating-point exception"),
        17 => (libc::SIGBUS, "alignment check"),
        _ => (libc::SIGSEGV, "exception"),
    };
    Fatal { signal, addr: 0, rip: e.rip, what: format!("{what} (vector {})", e.vector) }
}
