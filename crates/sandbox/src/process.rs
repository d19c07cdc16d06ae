//! The sandboxed process and its threads.
//!
//! [`Process`] is what all threads share (memory, dispositions, descriptors, the trace);
//! [`Thread`] is one program thread: its vCPU, driven by one host thread, and its own signal
//! mask, alternate stack and `clear_child_tid`. [`Thread::run`] turns every exit into a system
//! call, a signal delivered to a program handler, a retry, or the end.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use dune::{IretFrame, Kicker, Regs, Trap, Vcpu, Vm};

use crate::errno::Errno;
use crate::mm::Mm;
use crate::policy::Engine;
use crate::robust;
use crate::signals::{self, Action, Default};
use crate::sys;
use crate::syscall::{self, Ctx, Exit};
use crate::trace::Tracer;

/// How the program ended, when it ended by a signal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fatal {
    /// The signal.
    pub signal: i32,
    /// The faulting address, or 0.
    pub addr: u64,
    /// The program's RIP, or 0.
    pub rip: u64,
    /// What happened, for the report line (empty: no report, e.g. a signal sent by `kill`).
    pub what: String,
}

/// How the program ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `exit_group` (or the last thread's `exit`) with this status.
    Exited(i32),
    /// Killed by a signal.
    Killed(Fatal),
}

/// The runtime failed (not the program).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A vCPU operation failed.
    #[error(transparent)]
    Vcpu(#[from] dune::VcpuError),
    /// A VM operation failed.
    #[error(transparent)]
    Vm(#[from] dune::VmError),
    /// The guest did something only a runtime bug can explain.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Where a vCPU stopped, which decides how its program context is read and changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// At a system call: the program continues at `return_rip` with RFLAGS `flags` (R11).
    Syscall {
        /// RCX at the `syscall`.
        return_rip: u64,
        /// R11 at the `syscall` (the program's RFLAGS).
        flags: u64,
    },
    /// At an exception: the program's RIP/RSP/RFLAGS are in the frame.
    Exception(IretFrame),
    /// Interrupted by a host signal while running.
    Interrupted,
}

/// The state all threads of the program share.
#[derive(Debug)]
pub struct Process {
    /// The VM.
    pub vm: Arc<Vm>,
    /// The program range (immutable; pointer validation needs only this).
    pub range: std::ops::Range<u64>,
    /// The address space.
    pub mm: Mutex<Mm>,
    /// The policy, compiled: immutable, consulted without a lock.
    pub policy: Arc<Engine>,
    /// The system-call trace, when enabled.
    pub trace: Mutex<Option<Tracer>>,
    /// Signal dispositions (index = signal number).
    pub actions: Mutex<[Action; 65]>,
    /// The program's executable (what `/proc/self/exe` shows).
    pub exe: Mutex<PathBuf>,
    /// `(st_dev, st_ino)` of the running executable: opening it for writing or truncating it
    /// gives `ETXTBSY`, as in Linux (its pages are mapped from the file).
    pub exe_id: Mutex<Option<(u64, u64)>>,
    rlimits: Mutex<HashMap<u32, [u8; 16]>>,
    /// `personality`.
    pub personality: AtomicU64,
    /// Live program threads: tid → kicker.
    pub threads: Mutex<BTreeMap<i32, Kicker>>,
    /// Program threads still running.
    pub live: AtomicUsize,
    /// Registered robust futex lists: tid → head (`set_robust_list`), walked when the thread
    /// or the process ends (see [`crate::robust`]).
    robust_lists: Mutex<BTreeMap<i32, u64>>,
    /// Set while `execve` ends the other threads.
    pub dying: AtomicBool,
    /// A `vfork` child's hand-off to its waiting parent, released at `execve` or exit.
    pub vfork_done: Mutex<Option<sys::VforkDone>>,
    /// Suppress the report line on a fatal signal.
    pub quiet: bool,
    /// Bytes of XSAVE state saved in signal frames.
    pub xstate_size: usize,
    /// vCPUs of threads that exited, for new threads (KVM cannot destroy a single vCPU, and a
    /// VM has a fixed number of them).
    pub idle_vcpus: Mutex<Vec<Vcpu>>,
    /// Where threads stop for a checkpoint ([`crate::checkpoint`]).
    pub ckpt: crate::checkpoint::Gate,
}

/// Bytes of XSAVE state to save in a signal frame: CPUID.(0DH,0).EBX (enabled components),
/// capped at the 4 KiB `KVM_GET_XSAVE` area.
fn xstate_size(vm: &Vm) -> usize {
    let ebx = vm.host().cpuid(0xd, 0).map_or(512 + 64, |e| e.ebx as usize);
    ebx.clamp(512 + 64, 4096)
}

impl Process {
    /// A process over `mm` with `policy`; `exe` is the program's executable.
    pub fn new(vm: Arc<Vm>, mm: Mm, policy: Arc<Engine>, exe: PathBuf, quiet: bool) -> Process {
        Process {
            range: mm.range(),
            xstate_size: xstate_size(&vm),
            vm,
            mm: Mutex::new(mm),
            policy,
            trace: Mutex::new(None),
            actions: Mutex::new([Action::default(); 65]),
            exe: Mutex::new(std::fs::canonicalize(&exe).unwrap_or(exe)),
            exe_id: Mutex::new(None),
            rlimits: Mutex::new(HashMap::new()),
            personality: AtomicU64::new(0),
            threads: Mutex::new(BTreeMap::new()),
            live: AtomicUsize::new(0),
            robust_lists: Mutex::new(BTreeMap::new()),
            dying: AtomicBool::new(false),
            vfork_done: Mutex::new(None),
            quiet,
            idle_vcpus: Mutex::new(Vec::new()),
            ckpt: crate::checkpoint::Gate::default(),
        }
    }

    /// `Err(EFAULT)` unless `[addr, addr + len)` lies in the program range (`len` 0: always
    /// fine). See `mm` for why this is the whole of pointer validation.
    pub fn check(&self, addr: u64, len: u64) -> Result<(), Errno> {
        crate::uaccess::check(self, addr, len)
    }

    /// Whether `fd` is one of the runtime's own descriptors ([`crate::fdwin`]): the program may
    /// not name it.
    pub fn is_runtime_fd(&self, fd: i32) -> bool {
        crate::fdwin::window().is_runtime(fd)
    }

    /// The program's view of `RLIMIT_AS`/`RLIMIT_DATA` (`struct rlimit`, 16 bytes).
    pub fn rlimit_view(&self, resource: u32) -> [u8; 16] {
        if let Some(v) = self.rlimits.lock().unwrap().get(&resource) {
            return *v;
        }
        // Until the program sets it: the host's (the sandbox never changes these).
        let r = sys::getrlimit(resource);
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&r.rlim_cur.to_ne_bytes());
        b[8..].copy_from_slice(&r.rlim_max.to_ne_bytes());
        b
    }

    /// Holds the limits' lock (across `fork`, so the child never inherits it held).
    pub fn rlimits_lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, [u8; 16]>> {
        self.rlimits.lock().unwrap()
    }

    /// Sets the program's view of a limit the supervisor keeps apart.
    pub fn set_rlimit_view(&self, resource: u32, value: Vec<u8>) {
        if let Ok(v) = value.try_into() {
            self.rlimits.lock().unwrap().insert(resource, v);
        }
    }

    /// The disposition of `sig`.
    pub fn action(&self, sig: i32) -> Action {
        self.actions.lock().unwrap()[sig as usize]
    }

    /// The signals whose disposition ends the process (`SIG_DFL` with a terminating default
    /// action), as a mask.
    pub fn fatal_signals(&self) -> u64 {
        let actions = self.actions.lock().unwrap();
        (1..=64)
            .filter(|&sig| {
                actions[sig as usize].handler == signals::SIG_DFL
                    && matches!(signals::default_action(sig), Default::Term | Default::Core)
            })
            .fold(0, |m, sig| m | signals::bit(sig))
    }

    /// Writes a line to the trace, if tracing, prefixed with `[pid N]` for a thread or process
    /// other than the first (as `strace -f` does).
    pub fn trace_line(&self, s: &str) {
        if let Some(t) = self.trace.lock().unwrap().as_mut() {
            t.line(&format!("{}{s}", crate::trace::prefix(sys::gettid())));
        }
    }

    /// Records `tid`'s robust list head (0: none).
    pub fn set_robust_list(&self, tid: i32, head: u64) {
        let mut lists = self.robust_lists.lock().unwrap();
        if head == 0 {
            lists.remove(&tid);
        } else {
            lists.insert(tid, head);
        }
    }

    /// `tid` ends (exit, or `execve`): its robust futexes are released and its list forgotten.
    pub fn release_robust_list(&self, tid: i32) {
        // Forgotten only after the walk: an exit_group meanwhile waits for it (see
        // release_all_robust_lists) instead of ending the process in the middle of it.
        let head = self.robust_lists.lock().unwrap().get(&tid).copied();
        if let Some(head) = head {
            robust::release(&ProgramMem(self), tid, head);
        }
        self.robust_lists.lock().unwrap().remove(&tid);
    }

    /// Ends the current `KVM_RUN` (a kick) and any blocking host call or wait (the runtime's
    /// interrupt signal) of every program thread but `me`. With `may_hold_lock` the caller may
    /// hold the thread list's lock: then nobody is kicked this time.
    pub fn kick_other_threads(&self, me: i32, may_hold_lock: bool) {
        let others: Vec<(i32, Kicker)> = {
            let threads = if may_hold_lock {
                match self.threads.try_lock() {
                    Ok(t) => t,
                    Err(_) => return,
                }
            } else {
                self.threads.lock().unwrap()
            };
            threads.iter().filter(|(t, _)| **t != me).map(|(t, k)| (*t, k.clone())).collect()
        };
        for (tid, k) in others {
            k.kick();
            sys::tgkill(tid, sys::interrupt_signal());
        }
    }

    /// Makes every program thread but `me` exit (each at the top of its run loop, releasing its
    /// robust futexes on the way; `de_thread` in fs/exec.c) and waits for that, at most
    /// `within`. Leaves [`Process::dying`] set. `may_hold_lock` as for
    /// [`Process::kick_other_threads`].
    pub fn end_other_threads(&self, me: i32, within: std::time::Duration, may_hold_lock: bool) {
        if self.live.load(Ordering::SeqCst) <= 1 {
            return;
        }
        self.dying.store(true, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + within;
        while self.live.load(Ordering::SeqCst) > 1 && std::time::Instant::now() < deadline {
            self.kick_other_threads(me, may_hold_lock);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Every thread dies with the process: the robust futexes they hold (in memory shared with
    /// other processes, where it matters) are released as Linux's exit would. Linux walks a
    /// thread's list once it has stopped (do_exit), so a thread still running cannot take a
    /// lock again after the walk: other threads with a non-empty list are first ended (each
    /// walks its own list on the way out), for at most 100 ms; what is left is walked here.
    fn release_all_robust_lists(&self) {
        let me = sys::gettid();
        let lists: Vec<(i32, u64)> =
            self.robust_lists.lock().unwrap().iter().map(|(t, h)| (*t, *h)).collect();
        let mem = ProgramMem(self);
        let busy = lists.iter().any(|&(tid, head)| tid != me && !robust::is_empty(&mem, head));
        if busy {
            // The caller may hold the thread list's lock: then the deadline ends the wait.
            self.end_other_threads(me, std::time::Duration::from_millis(100), true);
        }
        let lists = std::mem::take(&mut *self.robust_lists.lock().unwrap());
        for (tid, head) in lists {
            robust::release(&mem, tid, head);
        }
    }

    /// Ends the whole process with `outcome`: flushes the trace, prints the report line for a
    /// fault (unless quiet), and exits with the status, or dies of the signal.
    pub fn finish(&self, outcome: Result<Outcome, RunError>) -> ! {
        if let Some(s) = self.policy.summary()
            && crate::policy::audit::is_root()
        {
            self.policy.sink().write_text(&s);
        }
        if let Some(l) = self.policy.learner()
            && crate::policy::audit::is_root()
        {
            let ending = match &outcome {
                Ok(Outcome::Exited(s)) => format!("exit status {s}"),
                Ok(Outcome::Killed(f)) => {
                    format!("killed by {}", crate::cli::signal_name(f.signal))
                }
                Err(e) => format!("runtime error: {e}"),
            };
            l.finish(&ending);
        }
        crate::end_private_tmp();
        crate::family::leave();
        self.release_all_robust_lists();
        if let Some(h) = self.vfork_done.lock().unwrap().take() {
            h.release();
        }
        match &outcome {
            Ok(Outcome::Exited(s)) => self.trace_line(&format!("+++ exited with {s} +++")),
            Ok(Outcome::Killed(f)) => {
                self.trace_line(&format!("+++ killed by {} +++", crate::cli::signal_name(f.signal)))
            }
            Err(e) => self.trace_line(&format!("+++ runtime error: {e} +++")),
        }
        match outcome {
            Ok(Outcome::Exited(s)) => std::process::exit(s),
            Ok(Outcome::Killed(f)) => {
                if !self.quiet && !f.what.is_empty() {
                    eprintln!(
                        "sandbox: {}: killed by {} ({}) at address {:#x}, rip {:#x}",
                        self.exe.lock().unwrap().display(),
                        crate::cli::signal_name(f.signal),
                        f.what,
                        f.addr,
                        f.rip
                    );
                }
                let core = signals::default_action(f.signal) == Default::Core;
                sys::die_by_signal(f.signal, core);
                std::process::exit(128 + f.signal)
            }
            Err(e) => {
                eprintln!("sandbox: {e}");
                std::process::exit(crate::cli::EXIT_RUNTIME)
            }
        }
    }
}

/// Program memory for the robust-list walk: the program range only, through the kernel's
/// checked copies.
struct ProgramMem<'a>(&'a Process);

impl robust::RobustMem for ProgramMem<'_> {
    fn read_u64(&self, addr: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        crate::uaccess::copy_in_to(self.0, addr, &mut b).ok()?;
        Some(u64::from_ne_bytes(b))
    }
    fn read_u32(&self, addr: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        crate::uaccess::copy_in_to(self.0, addr, &mut b).ok()?;
        Some(u32::from_ne_bytes(b))
    }
    fn write_u32(&self, addr: u64, value: u32) -> bool {
        self.0.check(addr, 4).is_ok() && sys::write_program(addr, &value.to_ne_bytes()).is_ok()
    }
    fn wake_one(&self, addr: u64) {
        sys::futex_wake(addr, 1);
    }
}

/// One program thread.
#[derive(Debug)]
pub struct Thread {
    /// The process.
    pub proc: Arc<Process>,
    /// Its vCPU.
    pub vcpu: Vcpu,
    /// The program-visible thread id (the host thread's).
    pub tid: i32,
    /// Blocked signals.
    pub sigmask: u64,
    /// `stack_t` of the alternate signal stack.
    pub altstack: [u8; 24],
    /// `set_tid_address` / `CLONE_CHILD_CLEARTID` word.
    pub clear_child_tid: u64,
    /// `set_robust_list` head and length.
    pub robust_list: (u64, u64),
    /// Where the vCPU last stopped.
    pub stop: Stop,
    /// The mask to restore after a waiting call that installed a temporary one (sigsuspend,
    /// ppoll, ...): saved in the frame if a handler runs, else restored when the call is done.
    pub saved_mask: Option<u64>,
    /// The thread serving this vCPU's system calls without exits, where the host allows.
    pub server: Option<crate::switchless::Server>,
    /// When the thread last entered a handler or was interrupted by a host signal (see
    /// [`Thread::note_async`]).
    last_async: Option<std::time::Instant>,
    /// Signals pending when the last handler was entered (see [`Thread::deliver`]).
    owed: u64,
    /// The thread's arrivals counter when it last looked at the recorded signals (at its last
    /// safe point), for the forwarded calls that are cancellation points (`sys::cancellable`).
    seen_arrivals: u64,
    /// The return address of a system call that did not start because a signal came first
    /// (`sys::NOT_STARTED`): made again after the signal, it is not cancelled again for the
    /// signals that arrived meanwhile (else a storm would keep it from ever starting).
    not_started: Option<u64>,
}

/// Where a thread delivers signals: every return to the program is one, as in Linux.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// A system call finished (its result is in RAX).
    Call,
    /// `rt_sigreturn`, `execve` or a fork replaced the program's context.
    Return,
    /// A host signal or a kick interrupted the guest.
    Interrupt,
}

/// A quiet period: after a handler was entered or the guest was interrupted twice within
/// [`STORM_GAP`], the guest runs this long undisturbed by host signals (`Vcpu::quiet_for`),
/// and a signal that arrived meanwhile is delivered at the next system call or when the
/// period ends, not at an interruption or `rt_sigreturn` (see [`Thread::deliver`]). Without
/// it, a signal that arrives faster than the supervisor can enter and leave a handler (a
/// 50 µs interval timer: an interruption, a handler frame and `rt_sigreturn` cost more than
/// that on kvm_pvm) would leave the program no time at all: each `rt_sigreturn` would find
/// the next one pending.
const QUIET: std::time::Duration = std::time::Duration::from_millis(1);

/// Asynchronous events this close together are a signal storm ([`QUIET`]).
const STORM_GAP: std::time::Duration = std::time::Duration::from_millis(2);

/// What the trap handling of one exit decided.
enum Next {
    Resume,
    ThreadExit,
}

/// Process-directed pending signals for which the other threads were already kicked.
static KICKED_FOR: AtomicU64 = AtomicU64::new(0);

/// System calls Linux never restarts after a handler, even with `SA_RESTART` (signal(7)).
fn never_restarted(nr: u64) -> bool {
    matches!(nr, 7 | 23 | 34 | 35 | 128 | 130 | 230 | 232 | 270 | 271 | 281)
}

impl Thread {
    /// A thread of `proc` on `vcpu`, with the default signal state.
    pub fn new(proc: Arc<Process>, vcpu: Vcpu) -> Thread {
        let mut altstack = [0u8; 24];
        altstack[8..12].copy_from_slice(&libc::SS_DISABLE.to_ne_bytes());
        Thread {
            proc,
            vcpu,
            tid: sys::gettid(),
            sigmask: 0,
            altstack,
            clear_child_tid: 0,
            robust_list: (0, 0),
            stop: Stop::Interrupted,
            saved_mask: None,
            server: None,
            last_async: None,
            owed: 0,
            seen_arrivals: 0,
            not_started: None,
        }
    }

    /// Registers this thread (on the host thread that runs it).
    pub fn register(&mut self) {
        self.tid = sys::gettid();
        self.proc.threads.lock().unwrap().insert(self.tid, self.vcpu.kicker());
        self.proc.live.fetch_add(1, Ordering::SeqCst);
        self.start_server();
    }

    /// Gives this thread a (not yet running) switchless server, where the host has the path,
    /// over a reset mailbox (the vCPU may have served another thread or image before).
    pub fn start_server(&mut self) {
        if let Some(mb) = self.vcpu.mailbox() {
            mb.reset();
            self.server = Some(crate::switchless::Server::new(self.proc.clone(), mb, self.tid));
        }
    }

    /// Stops this thread's switchless server (the thread has exited; its vCPU may serve a new
    /// thread, which starts its own).
    pub fn stop_server(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }

    /// Runs the thread until it exits (`exit` of a thread that is not the last). Anything that
    /// ends the process does not return.
    pub fn run(&mut self) {
        let mut retries = 0;
        loop {
            if self.proc.dying.load(Ordering::SeqCst) {
                self.exit_thread(0, true);
                return;
            }
            if self.proc.ckpt.requested() {
                crate::checkpoint::save::at_loop_top(self);
            }
            let trap = match self.vcpu.run() {
                Ok(t) => t,
                Err(e) => self.proc.finish(Err(e.into())),
            };
            let next = match trap {
                Trap::Syscall(sc) => {
                    retries = 0;
                    self.on_syscall(&sc)
                }
                Trap::PageFault(pf) if pf.user => {
                    if self.spurious(&pf) && retries < 3 {
                        retries += 1;
                        self.proc.vm.request_tlb_flush();
                        // Resumed through the exception trampoline (what a checkpoint looks at).
                        self.stop = Stop::Exception(self.vcpu.exception_frame());
                        continue;
                    }
                    self.stop = Stop::Exception(self.vcpu.exception_frame());
                    // SEGV_ACCERR where the program has a mapping (PROT_NONE pages are not
                    // present in the guest page tables), SEGV_MAPERR where it has none.
                    let mapped = self.proc.mm.lock().unwrap().vma_at(pf.addr).is_some();
                    let code = if mapped { 2 } else { 1 };
                    let what = if mapped { "access violation" } else { "no mapping" };
                    let info = signals::fault_info(libc::SIGSEGV, code, pf.addr);
                    self.force_signal(libc::SIGSEGV, &info, pf.addr, pf.error.0, 14, what, pf.rip)
                }
                Trap::Exception(e) if e.user && e.vector == 1 && self.hidden_step(e.rip) => {
                    self.stop = Stop::Exception(self.vcpu.exception_frame());
                    Next::Resume
                }
                Trap::Exception(e)
                    if e.user
                        && e.vector == 13
                        && let Some(r) = self.umip(e.rip) =>
                {
                    match r {
                        None => {
                            self.stop = Stop::Exception(self.vcpu.exception_frame());
                            Next::Resume
                        }
                        // The result could not be stored: SIGSEGV for that address, as the
                        // store would have faulted (umip.c, force_sig_info_umip_fault).
                        Some(addr) => {
                            self.stop = Stop::Exception(self.vcpu.exception_frame());
                            let info = signals::fault_info(libc::SIGSEGV, 1, addr);
                            self.force_signal(
                                libc::SIGSEGV,
                                &info,
                                addr,
                                6,
                                14,
                                "no mapping",
                                e.rip,
                            )
                        }
                    }
                }
                Trap::Exception(e) if e.user => {
                    self.stop = Stop::Exception(self.vcpu.exception_frame());
                    let (sig, code, what) = if e.vector == 6 && is_int_n(e.rip) {
                        // `int $n` through a kernel-only gate is #GP on hardware; kvm_pvm
                        // reports #UD. Linux answers #GP with SIGSEGV.
                        exception_signal(13)
                    } else if e.vector == 13 && is_vmcall(e.rip) {
                        // A user-mode `vmcall`/`vmmcall` is #UD on hardware (SIGILL); KVM on
                        // AMD-V emulates it as privileged and injects #GP.
                        exception_signal(6)
                    } else {
                        exception_signal(e.vector)
                    };
                    // SIGTRAP/SIGILL/SIGFPE carry the faulting RIP in si_addr; #GP carries 0.
                    let addr = if sig == libc::SIGSEGV || sig == libc::SIGBUS { 0 } else { e.rip };
                    let info = signals::fault_info(sig, code, addr);
                    let err = e.error_code.unwrap_or(0);
                    self.force_signal(sig, &info, 0, err, u64::from(e.vector), what, e.rip)
                }
                Trap::HostFault { gpa: Some(gpa) } => self.bus_fault(gpa),
                Trap::HostFault { gpa: None } => {
                    let addr = self.unbacked_access().unwrap_or(0);
                    self.bus_fault(addr)
                }
                Trap::PhysFault { gpa, .. } => self.bus_fault(gpa),
                Trap::Interrupted | Trap::SpuriousInterrupt => {
                    self.stop = Stop::Interrupted;
                    self.deliver(None, Point::Interrupt);
                    Next::Resume
                }
                other => {
                    self.proc.finish(Err(RunError::Internal(format!("unexpected exit {other:?}"))))
                }
            };
            if let Next::ThreadExit = next {
                return;
            }
        }
    }

    /// Carries out a user-mode `sgdt`/`sidt`/`sldt`/`smsw`/`str` that raised #GP at `rip`, as
    /// Linux does ([`crate::umip`]): `Some(None)` when done, `Some(Some(addr))` when its result
    /// could not be stored at `addr`; `None` if it is not one of them (the #GP stands).
    fn umip(&mut self, rip: u64) -> Option<Option<u64>> {
        let mut code = [0u8; 15];
        let in_page = (4096 - (rip & 4095)).min(15) as usize;
        let mem = &*self.proc;
        if mem.check(rip, 15).is_err()
            || crate::uaccess::copy_in_to(mem, rip, &mut code[..in_page]).is_err()
        {
            return None;
        }
        let len = if crate::uaccess::copy_in_to(mem, rip + in_page as u64, &mut code[in_page..])
            .is_ok()
        {
            15
        } else {
            in_page
        };
        // The general registers are the program's; RIP and RSP are in the exception frame.
        let mut frame = self.vcpu.exception_frame();
        if frame.rip != rip || self.vcpu.complete_pending_io().is_err() {
            return None;
        }
        let (Ok(mut regs), Ok(sregs)) = (self.vcpu.regs(), self.vcpu.sregs()) else {
            return None;
        };
        let mut user = regs;
        user.rip = frame.rip;
        user.rsp = frame.rsp;
        let e = crate::umip::emulate(&code[..len], &user, sregs.fs.base, sregs.gs.base)?;
        match e.to {
            crate::umip::Target::Memory(addr) => {
                if self.proc.check(addr, e.bytes.len() as u64).is_err()
                    || sys::write_program(addr, &e.bytes).is_err()
                {
                    return Some(Some(addr));
                }
            }
            // RSP is not a destination any compiler or person would pick; it lives in the frame.
            crate::umip::Target::Register(iced_x86::Register::RSP) => return None,
            crate::umip::Target::Register(r) => {
                if !crate::umip::write_register(&mut regs, r, &e.bytes)
                    || self.vcpu.set_regs(&regs).is_err()
                {
                    return None;
                }
            }
        }
        frame.rip += e.len;
        self.vcpu.set_exception_frame(&frame);
        Some(None)
    }

    /// The address the instruction at RIP could not access, for a host fault that came without
    /// one (see [`crate::fault_addr`]).
    fn unbacked_access(&mut self) -> Option<u64> {
        let regs = self.vcpu.regs().ok()?;
        let sregs = self.vcpu.sregs().ok()?;
        // Up to 15 bytes, without reading past the end of the code's mapping.
        let mut code = [0u8; 15];
        let in_page = (4096 - (regs.rip & 4095)).min(15) as usize;
        let mem = &*self.proc;
        mem.check(regs.rip, 15).ok()?;
        let len = if crate::uaccess::copy_in_to(mem, regs.rip, &mut code[..in_page]).is_err() {
            0
        } else if crate::uaccess::copy_in_to(mem, regs.rip + in_page as u64, &mut code[in_page..])
            .is_ok()
        {
            15
        } else {
            in_page
        };
        // An address outside the program range counts as backed (the fault is not a SIGBUS).
        let backed = |a| {
            mem.check(a, 1).is_err() || crate::uaccess::copy_in_to(mem, a, &mut [0u8; 1]).is_ok()
        };
        crate::fault_addr::unbacked_access(
            &code[..len],
            &regs,
            sregs.fs.base,
            sregs.gs.base,
            backed,
        )
    }

    /// An access KVM could not back (a file page beyond EOF, a vanished mapping): SIGBUS.
    fn bus_fault(&mut self, addr: u64) -> Next {
        let rip = self.vcpu.regs().map(|r| r.rip).unwrap_or(0);
        if let Err(e) = self.vcpu.complete_pending_io() {
            self.proc.finish(Err(e.into()));
        }
        self.stop = Stop::Interrupted;
        let info = signals::fault_info(libc::SIGBUS, 2, addr); // BUS_ADRERR
        self.force_signal(libc::SIGBUS, &info, addr, 0, 0, "the host could not back the page", rip)
    }

    /// Makes the program make call `sc` again from its `syscall` instruction when it resumes
    /// (RIP two bytes back, RAX the call number); a vCPU that refuses ends the process.
    fn rewind_to_syscall(&mut self, sc: &dune::Syscall) {
        let r = self
            .vcpu
            .set_syscall_return(sc.return_rip - 2)
            .and_then(|_| self.vcpu.set_syscall_result(sc.nr));
        if let Err(e) = r {
            self.proc.finish(Err(e.into()));
        }
    }

    /// Whether a single-step trap (#DB) at `rip` is one Linux would not report: on hosts where
    /// `syscall` stays at CPL 3 (kvm_pvm), a program single-stepping over `syscall` steps
    /// through the ring-3 trampolines, and their final `jmp *%rcx` traps on arrival after the
    /// `syscall`, where Linux's `sysret` reports the trap one instruction later.
    fn hidden_step(&mut self, rip: u64) -> bool {
        if self.vcpu.in_ring3_trampoline(rip) {
            return true;
        }
        if self.proc.vm.platform().syscall_path != dune::SyscallPath::Ring3Doorbell {
            return false;
        }
        let mut insn = [0u8; 2];
        crate::uaccess::copy_in_to(&*self.proc, rip.wrapping_sub(2), &mut insn).is_ok()
            && insn == [0x0f, 0x05]
            && self.vcpu.regs().is_ok_and(|r| r.rcx == rip)
    }

    fn on_syscall(&mut self, sc: &dune::Syscall) -> Next {
        if let Some(s) = &mut self.server {
            s.note_exit_call(sc.nr);
        }
        let flags = self.vcpu.regs().map(|r| r.r11).unwrap_or(dune::USER_RFLAGS);
        self.stop = Stop::Syscall { return_rip: sc.return_rip, flags };
        let mut ctx = Ctx { thread: self, exit: None, replaced: false };
        let rax = syscall::dispatch(&mut ctx, sc);
        let (exit, replaced) = (ctx.exit, ctx.replaced);
        if crate::switchless::changes_credentials(sc.nr) && self.server.is_some() {
            // The server thread has the credentials this thread had when it made it: a new one
            // (made from this thread at the next burst) has the ones it has now.
            self.stop_server();
            self.start_server();
        }
        if rax as i64 == -i64::from(sys::NOT_STARTED.0) && exit.is_none() && !replaced {
            // A signal came before the call could start: the program takes it as if it had
            // come before its `syscall`, then makes the call (from the `syscall` again).
            self.rewind_to_syscall(sc);
            self.stop = Stop::Syscall { return_rip: sc.return_rip - 2, flags };
            self.not_started = Some(sc.return_rip);
            self.deliver(None, Point::Call);
            return Next::Resume;
        }
        match exit {
            Some(Exit::Group(status)) => self.proc.finish(Ok(Outcome::Exited(status))),
            Some(Exit::Thread(status)) => {
                self.exit_thread(status, false);
                return Next::ThreadExit;
            }
            None => {}
        }
        if !replaced
            && rax as i64 == -i64::from(libc::EINTR)
            && self.proc.ckpt.requested()
            && sys::pending_signals() & !self.sigmask == 0
        {
            // Interrupted for the checkpoint only: the call is made again from its `syscall`
            // instruction (after the restore, or once the checkpoint is over), as Linux
            // restarts a call a stop signal interrupted; its temporary mask goes back.
            self.rewind_to_syscall(sc);
            if let Some(old) = self.saved_mask.take() {
                self.sigmask = old;
            }
            self.stop = Stop::Syscall { return_rip: sc.return_rip - 2, flags };
            return Next::Resume;
        }
        if !replaced {
            if let Err(e) = self.vcpu.set_syscall_result(rax) {
                self.proc.finish(Err(e.into()));
            }
            let eintr = rax as i64 == -i64::from(libc::EINTR) && syscall::spec(sc.nr).is_some();
            self.deliver(Some((sc, eintr)), Point::Call);
        } else {
            self.stop = Stop::Interrupted;
            self.deliver(None, Point::Return);
        }
        Next::Resume
    }

    /// Whether a user page fault at `addr` is spurious: the program's mapping allows the
    /// access, so the guest used a stale, less permissive translation (possible on EPT hosts,
    /// where adding permissions does not flush TLBs).
    fn spurious(&self, pf: &dune::PageFault) -> bool {
        let mm = self.proc.mm.lock().unwrap();
        let Some(v) = mm.vma_at(pf.addr) else { return false };
        if pf.error.write() {
            v.prot & libc::PROT_WRITE != 0
        } else if pf.error.fetch() {
            v.prot & libc::PROT_EXEC != 0
        } else {
            v.prot != 0
        }
    }

    /// The program's registers as they are where the vCPU stopped.
    pub fn program_regs(&mut self) -> Result<Regs, dune::VcpuError> {
        let mut r = self.vcpu.regs()?;
        match self.stop {
            Stop::Syscall { return_rip, flags } => {
                r.rip = return_rip;
                r.rflags = flags;
            }
            Stop::Exception(f) => {
                r.rip = f.rip;
                r.rsp = f.rsp;
                r.rflags = f.rflags;
            }
            Stop::Interrupted => {}
        }
        Ok(r)
    }

    /// A synchronous fault: the program's handler runs if it has one and does not block the
    /// signal; otherwise the process dies of it, as Linux's `force_sig_fault` does.
    #[allow(clippy::too_many_arguments)]
    fn force_signal(
        &mut self,
        sig: i32,
        info: &[u8; 128],
        cr2: u64,
        err: u64,
        trapno: u64,
        what: &str,
        rip: u64,
    ) -> Next {
        self.proc.trace_line(&crate::trace::signal_line(sig, info));
        let action = self.proc.action(sig);
        let blocked = self.sigmask & signals::bit(sig) != 0;
        if action.handler > signals::SIG_IGN && !blocked {
            match self.program_regs() {
                Ok(regs) => {
                    if self.enter_handler(sig, info, action, regs, cr2, err, trapno) {
                        return Next::Resume;
                    }
                }
                Err(e) => self.proc.finish(Err(e.into())),
            }
        }
        let addr = u64::from_ne_bytes(info[16..24].try_into().unwrap());
        let addr = if cr2 != 0 { cr2 } else { addr };
        self.proc.finish(Ok(Outcome::Killed(Fatal { signal: sig, addr, rip, what: what.into() })))
    }

    /// Delivers pending signals the thread does not block, at a safe point `point`. `syscall`
    /// is the system call just handled and whether it returned `EINTR`.
    ///
    /// As Linux does before it returns to user mode, every deliverable signal is delivered
    /// (each handler's frame on top of the previous one, so the last one's handler runs
    /// first), and a signal whose disposition ends the process ends it before anything else
    /// (kernel/signal.c, `complete_signal`): a flood of one signal can neither starve another
    /// nor keep a `SIGTERM` from ending the process.
    ///
    /// During a quiet period (a signal storm, see `QUIET`), at an interruption or an
    /// `rt_sigreturn` only the signals that were already pending when the last handler was
    /// entered (queued instances, ones the handler's mask held back) are delivered; the others
    /// wait for the next system call or the end of the period, as if they had come a moment
    /// later.
    pub fn deliver(&mut self, syscall: Option<(&dune::Syscall, bool)>, point: Point) {
        sys::note_safe_point();
        if point == Point::Interrupt {
            self.note_async();
        }
        // Not while the vCPU is inside a trampoline (an interruption there): the next exit
        // comes within a few instructions (and a storm of interruptions that would keep it
        // from getting there makes a quiet period).
        if self.stop == Stop::Interrupted {
            let rip = self.vcpu.regs().map(|r| r.rip).unwrap_or(0);
            let l = self.proc.vm.layout();
            if rip >= l.base && rip < l.base + l.len {
                return;
            }
        }
        // Before the recorded signals are looked at: what arrives from now on is not seen.
        let snapshot = sys::arrivals();
        self.seen_arrivals = snapshot;
        self.hand_off_masked();
        let defer = point != Point::Call && self.vcpu.is_quiet();
        let saved = self.saved_mask;
        let mut restart = syscall.filter(|(_, eintr)| *eintr).map(|(sc, _)| sc);
        let mut entered = false;
        let mut fatal = None;
        let before = sys::pending_signals();
        let mut owed = self.owed;
        loop {
            let deliverable = sys::pending_signals() & !self.sigmask;
            if deliverable == 0 {
                break;
            }
            let fatal_mask = *fatal.get_or_insert_with(|| self.proc.fatal_signals());
            let pick = deliverable & fatal_mask;
            let pick = if pick != 0 {
                pick
            } else if defer {
                deliverable & self.owed
            } else {
                deliverable
            };
            if pick == 0 {
                break;
            }
            let sig = pick.trailing_zeros() as i32 + 1;
            let Some(info) = sys::take_signal(sig) else { continue };
            // What was pending before and still is (not what arrives while the handler runs).
            owed = before & sys::pending_signals();
            let action = self.proc.action(sig);
            if action.handler != signals::SIG_IGN
                && !(action.handler == signals::SIG_DFL
                    && matches!(signals::default_action(sig), Default::Ign))
            {
                self.proc.trace_line(&crate::trace::signal_line(sig, &info));
            }
            match action.handler {
                signals::SIG_IGN => continue,
                signals::SIG_DFL => match signals::default_action(sig) {
                    Default::Ign | Default::Cont => continue,
                    Default::Stop => {
                        sys::stop_self(sig);
                        continue;
                    }
                    Default::Term | Default::Core => self.proc.finish(Ok(Outcome::Killed(Fatal {
                        signal: sig,
                        addr: 0,
                        rip: 0,
                        what: String::new(),
                    }))),
                },
                _ => {}
            }
            let mut regs = match self.program_regs() {
                Ok(r) => r,
                Err(e) => self.proc.finish(Err(e.into())),
            };
            if let Some(sc) = restart.take()
                && action.flags & signals::SA_RESTART != 0
                && !never_restarted(sc.nr)
            {
                regs.rip = sc.return_rip - 2;
                regs.rax = sc.nr;
            }
            if self.enter_handler(sig, &info, action, regs, 0, 0, 0)
                && action.flags & signals::SA_RESETHAND != 0
            {
                self.proc.actions.lock().unwrap()[sig as usize] = Action::default();
                fatal = None;
            }
            entered = true;
        }
        if defer && sys::pending_signals() & !self.sigmask != 0 {
            // Signals held back for the quiet period: the next forwarded call that may block
            // takes them first instead of waiting with them undelivered.
            self.seen_arrivals = snapshot.wrapping_sub(1);
        }
        if entered {
            self.owed = owed;
            if point != Point::Interrupt {
                self.note_async();
            }
            return;
        }
        // No handler entered: a temporary mask of a finished waiting call goes back now.
        if let Some(old) = saved {
            self.sigmask = old;
            self.saved_mask = None;
        }
        // Interrupted by a signal the program ignores or that is not its own: restart the call
        // transparently, as Linux does (ERESTARTSYS with no handler to run).
        if let Some(sc) = restart
            && let Stop::Syscall { return_rip, .. } = self.stop
        {
            let r = self
                .vcpu
                .set_syscall_return(return_rip - 2)
                .and_then(|_| self.vcpu.set_syscall_result(sc.nr));
            if let Err(e) = r {
                self.proc.finish(Err(e.into()));
            }
        }
    }

    /// A handler was entered or the guest interrupted: two such events within [`STORM_GAP`]
    /// start a quiet period.
    fn note_async(&mut self) {
        let now = std::time::Instant::now();
        let storm = self.last_async.is_some_and(|t| now.duration_since(t) < STORM_GAP);
        self.last_async = Some(now);
        if !storm || self.vcpu.is_quiet() {
            return;
        }
        if let Err(e) = self.vcpu.quiet_for(QUIET) {
            // Only progress under a signal storm depends on it.
            tracing::warn!(%e, "no quiet period");
        }
    }

    /// The arrivals counter value a forwarded call at `return_rip` is a cancellation point for:
    /// the one of the last safe point, or [`sys::FROM_NOW`] for the call made again after it did
    /// not start.
    pub fn arrivals_seen(&mut self, return_rip: u64) -> u64 {
        // Kept across the calls a handler makes: only the call made again consumes it.
        if self.not_started == Some(return_rip) {
            self.not_started = None;
            sys::FROM_NOW
        } else {
            self.seen_arrivals
        }
    }

    /// Whether a host call of this thread that a host signal interrupted (`EINTR`) may be
    /// carried on by the supervisor, because Linux would not have interrupted it: no signal
    /// is deliverable to the thread (pending and not blocked; one whose disposition does
    /// nothing is discarded here, as delivery would discard it) and no other thread is ending
    /// this one. A process-directed signal the thread blocks is handed to the others first.
    pub fn may_resume_call(&mut self) -> bool {
        if self.proc.dying.load(Ordering::SeqCst) || self.proc.ckpt.requested() {
            return false;
        }
        self.hand_off_masked();
        for _ in 0..64 {
            let deliverable = sys::pending_signals() & !self.sigmask;
            if deliverable == 0 {
                return true;
            }
            let sig = deliverable.trailing_zeros() as i32 + 1;
            let action = self.proc.action(sig);
            let noop = action.handler == signals::SIG_IGN
                || (action.handler == signals::SIG_DFL
                    && matches!(signals::default_action(sig), Default::Ign | Default::Cont));
            if !noop {
                return false;
            }
            let _ = sys::take_signal(sig);
        }
        false
    }

    /// A process-directed signal this thread blocks may be deliverable by another thread, which
    /// may be running guest code with no exit in sight: kick the others once per such signal.
    fn hand_off_masked(&self) {
        let masked = sys::PROCESS_PENDING.load(Ordering::SeqCst) & self.sigmask;
        if masked == 0 {
            // Forget kicks for signals no longer pending (a plain load first: this runs after
            // every system call).
            if KICKED_FOR.load(Ordering::Relaxed) != 0 {
                KICKED_FOR.fetch_and(sys::PROCESS_PENDING.load(Ordering::SeqCst), Ordering::SeqCst);
            }
            return;
        }
        let new = masked & !KICKED_FOR.fetch_or(masked, Ordering::SeqCst);
        KICKED_FOR.fetch_and(sys::PROCESS_PENDING.load(Ordering::SeqCst), Ordering::SeqCst);
        if new == 0 {
            return;
        }
        self.proc.kick_other_threads(self.tid, false);
    }

    /// Builds the frame for `sig` on the program's stack and points the vCPU at the handler.
    /// Returns false (after killing the process) if the stack cannot take the frame.
    #[allow(clippy::too_many_arguments)]
    fn enter_handler(
        &mut self,
        sig: i32,
        info: &[u8; 128],
        action: Action,
        regs: Regs,
        cr2: u64,
        err: u64,
        trapno: u64,
    ) -> bool {
        let xsave = match self.vcpu.xsave() {
            Ok(x) => x,
            Err(e) => self.proc.finish(Err(e.into())),
        };
        let bytes: Vec<u8> = xsave.region.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let old_mask = self.saved_mask.take().unwrap_or(self.sigmask);
        let frame = signals::build(&signals::FrameInput {
            regs,
            sig,
            info,
            action,
            old_mask,
            altstack: self.altstack,
            xsave: &bytes[..self.proc.xstate_size],
            cr2,
            err,
            trapno,
        });
        let ok = action.flags & signals::SA_RESTORER != 0
            && self.proc.check(frame.sp, frame.bytes.len() as u64).is_ok()
            && sys::write_program(frame.sp, &frame.bytes).is_ok();
        if !ok {
            // Linux's force_sigsegv: the handler cannot be entered.
            self.proc.finish(Ok(Outcome::Killed(Fatal {
                signal: libc::SIGSEGV,
                addr: frame.sp,
                rip: regs.rip,
                what: format!("cannot deliver signal {sig}: bad signal stack"),
            })));
        }
        if let Err(e) = self.vcpu.set_user_context(&frame.handler_regs) {
            self.proc.finish(Err(e.into()));
        }
        if action.flags & signals::SA_NODEFER == 0 {
            self.sigmask |= signals::bit(sig);
        }
        self.sigmask = (self.sigmask | action.mask) & !signals::UNBLOCKABLE;
        self.stop = Stop::Interrupted;
        true
    }

    /// Ends this thread: `CLONE_CHILD_CLEARTID` wake-up, unregistration; the last thread ends
    /// the process with `status`.
    pub fn exit_thread(&mut self, status: i32, killed: bool) {
        // No call of this thread's may still be in progress once it counts as gone (exec waits
        // for exactly that before it empties the program range).
        self.stop_server();
        // Linux's order (exit_mm_release): robust list first, then the clear-tid word.
        self.proc.release_robust_list(self.tid);
        self.robust_list = (0, 0);
        // Gone from the thread list (/proc/self/status, task/, signal targets) before a joiner
        // can wake: a program that joined it never counts it any more.
        self.proc.threads.lock().unwrap().remove(&self.tid);
        if self.clear_child_tid != 0 && self.proc.check(self.clear_child_tid, 4).is_ok() {
            let _ = sys::write_program(self.clear_child_tid, &0u32.to_ne_bytes());
            sys::futex_wake(self.clear_child_tid, 1);
        }
        let left = self.proc.live.fetch_sub(1, Ordering::SeqCst) - 1;
        if left == 0 && !killed {
            self.proc.finish(Ok(Outcome::Exited(status)));
        }
    }
}

/// Whether the instruction at `rip` is `vmcall` (0f 01 c1) or `vmmcall` (0f 01 d9).
fn is_vmcall(rip: u64) -> bool {
    let mut b = [0u8; 3];
    sys::read_program(rip, &mut b).is_ok() && b[..2] == [0x0f, 0x01] && matches!(b[2], 0xc1 | 0xd9)
}

/// Whether the instruction at `rip` is `int $n` (other than `int3`/`into`'s vectors).
fn is_int_n(rip: u64) -> bool {
    let mut b = [0u8; 2];
    sys::read_program(rip, &mut b).is_ok() && b[0] == 0xcd && b[1] != 3 && b[1] != 4
}

/// The signal, `si_code` and description Linux uses for a user-mode exception
/// (arch/x86/kernel/traps.c).
fn exception_signal(vector: u8) -> (i32, i32, &'static str) {
    match vector {
        0 => (libc::SIGFPE, 1, "divide error"),   // FPE_INTDIV
        1 => (libc::SIGTRAP, 2, "debug trap"),    // TRAP_TRACE
        3 => (libc::SIGTRAP, 0x80, "breakpoint"), // SI_KERNEL
        6 => (libc::SIGILL, 2, "invalid opcode"), // ILL_ILLOPN
        7 => (libc::SIGSEGV, 0x80, "device not available"),
        11 => (libc::SIGBUS, 0x80, "segment not present"),
        12 => (libc::SIGBUS, 0x80, "stack segment fault"),
        13 => (libc::SIGSEGV, 0x80, "general protection fault"),
        16 | 19 => (libc::SIGFPE, 0, "floating-point exception"),
        17 => (libc::SIGBUS, 1, "alignment check"), // BUS_ADRALN
        _ => (libc::SIGSEGV, 0x80, "exception"),
    }
}
