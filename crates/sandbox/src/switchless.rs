//! The switchless server: one host thread per vCPU that, during bursts of system calls, polls
//! the vCPU's mailbox ([`dune::Mailbox`], design in `trap::switchless`) and carries out calls
//! that are safe to run on another host thread, so the vCPU does not exit for them.
//!
//! Used only where the host's `syscall` stays at CPL 3 (kvm_pvm), where an exit costs ~20–30 µs
//! and a switchless call ~9 µs, and only with two CPUs or more ([`worthwhile`]);
//! `sandbox run --no-switchless` turns it off.
//!
//! * **Which calls**: [`eligible`]: calls that never block, need no per-thread state, raise no
//!   signal and are forwarded by the table as they are (`read`/`pread64` only on regular
//!   files). Everything else is bounced to the vCPU thread's ordinary exit path, as are calls
//!   the server finds ineligible at run time. Each call goes through the same policy check,
//!   table validation, copies and trace as on the exit path ([`crate::syscall::serve`]).
//! * **When it polls**: the thread starts at the first two eligible calls that come through
//!   exits close together ([`Server::note_exit_call`]). After serving a call it keeps polling
//!   for [`SPIN`]; then it marks the mailbox cold (the stub exits instead) and parks until the
//!   vCPU thread sees such a burst again. So a program that makes few calls costs no polling
//!   CPU (and a short one no thread at all), and one in a tight loop costs a second CPU while
//!   the loop lasts.
//! * **Signals**: the server blocks every host signal, so process-directed signals go to vCPU
//!   threads, and the calls it makes are never interrupted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dune::Mailbox;

use crate::process::Process;

/// How long the server keeps polling after the last call it served.
pub const SPIN: Duration = Duration::from_micros(200);

/// Two eligible calls through exits at most this far apart wake a parked server.
const BURST: Duration = Duration::from_micros(200);

/// Whether serving calls from another thread can pay off here: only with at least two CPUs
/// available to this process (affinity and cgroup quota included); on one, the vCPU's spin
/// would wait for the server's time slice.
pub fn worthwhile() -> bool {
    static TWO_CPUS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TWO_CPUS.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2))
}

/// Clocks whose value does not depend on the calling thread: `CLOCK_REALTIME`, `MONOTONIC`,
/// `MONOTONIC_RAW`, `REALTIME_COARSE`, `MONOTONIC_COARSE`, `BOOTTIME`, `TAI`. The CPU-time
/// clocks (of the thread, or the process, which counts the server's own spinning) are not.
pub fn thread_independent_clock(id: u64) -> bool {
    matches!(id as i32, 0 | 1 | 4 | 5 | 6 | 7 | 11)
}

/// `read`, `fstat`, `lseek`, `pread64`, `getpid`, `gettimeofday`, `getppid`, `time`,
/// `clock_gettime`, `clock_getres`. Not `getuid` and the like: credentials belong to each
/// thread (a raw `setuid` call changes the caller's only; glibc's broadcast makes it every
/// thread's). A server's are its vCPU thread's, as it is made again after every call that
/// may change them ([`changes_credentials`]), and reads that check permission at read time
/// (`/proc/PID/io`, 0600 sysctls) depend on that.
pub fn eligible(nr: u64) -> bool {
    matches!(nr, 0 | 5 | 8 | 17 | 39 | 96 | 110 | 201 | 228 | 229)
}

/// Calls that may change the calling thread's credentials, which a server thread made before
/// does not share (a thread's credentials are its own; a new thread copies its creator's):
/// `setuid`, `setgid`, `setreuid`, `setregid`, `setgroups`, `setresuid`, `setresgid`,
/// `setfsuid`, `setfsgid`, `capset`, `prctl` (securebits, keep-caps, the bounding set),
/// `unshare` and `setns` (user namespaces). After one the vCPU thread's server is made again.
pub fn changes_credentials(nr: u64) -> bool {
    matches!(nr, 105 | 106 | 113 | 114 | 116 | 117 | 119 | 122 | 123 | 126 | 157 | 272 | 308)
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    parked: AtomicBool,
}

/// The server of one vCPU: started at the first burst of eligible calls through exits (so a
/// short-lived program pays nothing for it), parked between bursts.
#[derive(Debug)]
pub struct Server {
    proc: Arc<Process>,
    mailbox: Mailbox,
    tid: i32,
    /// When the last eligible call came through an exit.
    last_exit_call: Option<Instant>,
    running: Option<(Arc<Shared>, std::thread::JoinHandle<()>)>,
    /// Starting the thread failed once: do not try again.
    failed: bool,
}

impl Server {
    /// A server for `mailbox`, serving the program thread `tid` of `proc`; no thread yet.
    pub fn new(proc: Arc<Process>, mailbox: Mailbox, tid: i32) -> Server {
        Server { proc, mailbox, tid, last_exit_call: None, running: None, failed: false }
    }

    /// Called by the vCPU thread for each system call that came through an exit: when eligible
    /// calls come close together, starts the server thread or wakes it.
    pub fn note_exit_call(&mut self, nr: u64) {
        if !eligible(nr) || self.failed {
            return;
        }
        let now = Instant::now();
        let burst = self.last_exit_call.is_some_and(|t| now.duration_since(t) <= BURST);
        self.last_exit_call = Some(now);
        if !burst {
            return;
        }
        match &self.running {
            Some((shared, thread)) => {
                if shared.parked.load(Ordering::Acquire) {
                    thread.thread().unpark();
                }
            }
            None => self.start(),
        }
    }

    fn start(&mut self) {
        if !worthwhile() {
            self.failed = true;
            return;
        }
        let shared = Arc::new(Shared::default());
        let (s, mb, proc, tid) =
            (shared.clone(), self.mailbox.clone(), self.proc.clone(), self.tid);
        self.mailbox.set_hot(true);
        // Spawned with every host signal blocked (a new thread inherits the mask), so not even
        // its first instructions can take a signal meant for the program's threads.
        let thread = crate::sys::with_signals_blocked(|_| {
            std::thread::Builder::new()
                .name("sandbox-switchless".into())
                .stack_size(256 << 10)
                .spawn(move || serve_loop(&proc, &mb, tid, &s))
        });
        match thread {
            Ok(thread) => self.running = Some((shared, thread)),
            Err(e) => {
                self.mailbox.set_hot(false);
                self.failed = true;
                tracing::warn!(%e, "no switchless server thread; system calls will exit");
            }
        }
    }

    /// Stops the server thread, if any, and waits for it (its vCPU no longer posts: the
    /// mailbox is cold).
    pub fn stop(self) {
        self.mailbox.set_hot(false);
        if let Some((shared, thread)) = self.running {
            shared.stop.store(true, Ordering::SeqCst);
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

fn serve_loop(proc: &Process, mb: &Mailbox, tid: i32, shared: &Shared) {
    // Takes and answers a waiting request; whether there was one.
    let serve_one = || match mb.try_claim() {
        Some(sc) => {
            match crate::syscall::serve(proc, tid, &sc) {
                Some(ret) => mb.complete(ret),
                None => mb.bounce(),
            }
            true
        }
        None => false,
    };
    let mut last = Instant::now();
    let mut polls = 0u32;
    while !shared.stop.load(Ordering::Relaxed) {
        if serve_one() {
            last = Instant::now();
            continue;
        }
        polls = polls.wrapping_add(1);
        if !polls.is_multiple_of(64) || last.elapsed() < SPIN {
            std::hint::spin_loop();
            continue;
        }
        // Idle: go cold, take a request posted meanwhile, then park until woken.
        mb.set_hot(false);
        if serve_one() {
            mb.set_hot(true);
            last = Instant::now();
            continue;
        }
        shared.parked.store(true, Ordering::Release);
        if !shared.stop.load(Ordering::SeqCst) {
            std::thread::park();
        }
        shared.parked.store(false, Ordering::Release);
        mb.set_hot(true);
        last = Instant::now();
    }
    mb.set_hot(false);
}
