//! Checkpoint and restore: a running program written to an image file, and resumed from it
//! in a new sandbox process.
//!
//! ```text
//! sandbox run --checkpoint-on SIG -o IMAGE      sandbox restore IMAGE
//!   host handler: SIG from another process        image::read: header, version, arch,
//!     → a byte on the request socket                every section's CRC-32, consistency
//!   coordinator thread (save::arm):               restore::restore: host checks (XSAVE
//!     Gate::request, kick every thread              features, guest-physical width, files
//!     each thread, at the top of its run loop,      unchanged), Mm over the same range,
//!       at a consistent point: Gate::park           mappings + pages, descriptors, cwd,
//!       (its vCPU state, masks, pending signals)    umask, limits, dispositions, pending
//!     all parked: memory (pagemap + /proc/self/     signals, one vCPU + host thread per
//!     mem), descriptors, process state →            thread with its saved state → run
//!     image::Writer (temp file, fsync, rename)
//!     exit 0; or, refused: Gate::release, the
//!     program carries on
//! ```
//!
//! A thread is at a consistent point when no system call of it is in progress: at the top of
//! [`crate::process::Thread::run`]'s loop, stopped after a system call (the program continues
//! at RCX with RFLAGS from R11, where both trampolines return) or interrupted in the program's
//! own code (not inside a trampoline). A blocking call the checkpoint interrupts is rolled
//! back to its `syscall` instruction and made again after the restore.

pub mod image;
pub mod inspect;
pub mod restore;
pub mod save;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use image::ThreadRec;

/// One thread's state as it parked.
#[derive(Clone, Debug)]
pub struct Captured {
    /// The state to store.
    pub rec: ThreadRec,
    /// Its vCPU's XCR0.
    pub xcr0: u64,
}

/// Where the program's threads meet for a checkpoint: the coordinator [`Gate::request`]s,
/// each thread [`Gate::park`]s at its next consistent point, and [`Gate::release`] lets them
/// all go on (a refused checkpoint, or `--leave-running`).
#[derive(Debug, Default)]
pub struct Gate {
    requested: AtomicBool,
    parked: Mutex<Parked>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct Parked {
    threads: Vec<Result<Captured, dune::VcpuError>>,
    generation: u64,
}

impl Gate {
    /// Whether a checkpoint waits for the threads (one load: checked at every loop).
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Asks every thread to park.
    pub fn request(&self) {
        self.parked.lock().unwrap().threads.clear();
        self.requested.store(true, Ordering::SeqCst);
    }

    /// Parks the calling thread with its state until [`Gate::release`].
    pub fn park(&self, state: Result<Captured, dune::VcpuError>) {
        let mut p = self.parked.lock().unwrap();
        let generation = p.generation;
        p.threads.push(state);
        self.cv.notify_all();
        while p.generation == generation {
            p = self.cv.wait(p).unwrap();
        }
    }

    /// Waits until `live()` threads have parked, calling `kick` every few milliseconds (a
    /// thread running guest code or blocked in a host call comes to its loop's top only when
    /// interrupted). Gives up after `within`: `Err(parked so far)`.
    pub fn wait_all(
        &self,
        live: impl Fn() -> usize,
        kick: impl Fn(),
        within: Duration,
    ) -> Result<Vec<Result<Captured, dune::VcpuError>>, usize> {
        let deadline = Instant::now() + within;
        let mut p = self.parked.lock().unwrap();
        loop {
            let n = live();
            if n > 0 && p.threads.len() >= n {
                return Ok(std::mem::take(&mut p.threads));
            }
            if Instant::now() >= deadline {
                return Err(p.threads.len());
            }
            drop(p);
            kick();
            p = self.parked.lock().unwrap();
            p = self.cv.wait_timeout(p, Duration::from_millis(2)).unwrap().0;
        }
    }

    /// Lets every parked thread go on; no checkpoint is requested any more.
    pub fn release(&self) {
        let mut p = self.parked.lock().unwrap();
        self.requested.store(false, Ordering::SeqCst);
        p.threads.clear();
        p.generation += 1;
        self.cv.notify_all();
    }
}

/// Why a checkpoint was refused or failed (the program then carries on, see [`save`]).
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A descriptor of a kind an image cannot hold.
    #[error(
        "descriptor {fd} is {kind}, which a checkpoint cannot hold (only regular files, \
         directories, pipes with both ends in the program, /dev/null, zero, full, random, \
         urandom, tty and stdio can be); close it before the checkpoint"
    )]
    Descriptor {
        /// The descriptor.
        fd: i32,
        /// What it is (`a pipe or FIFO`, `a socket`, `anon_inode:[eventfd]`, ...).
        kind: String,
    },
    /// The program has child processes.
    #[error(
        "the program has child processes ({}); only a single process can be checkpointed \
         (wait for them to end first)",
        pids.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
    )]
    Children {
        /// Their host pids.
        pids: Vec<i32>,
    },
    /// A mapping an image cannot hold.
    #[error("the mapping {start:#x}-{end:#x} cannot be checkpointed: {why}")]
    Mapping {
        /// First byte.
        start: u64,
        /// One past the last.
        end: u64,
        /// Why (`its file was deleted or replaced`, ...).
        why: String,
    },
    /// A path that is not UTF-8 (the metadata stores paths as strings).
    #[error("{what} {path:?} is not valid UTF-8, which images cannot store yet")]
    Path {
        /// What the path is.
        what: &'static str,
        /// The path, lossily.
        path: String,
    },
    /// The threads could not all be stopped in time.
    #[error(
        "only {parked} of {live} threads reached a point where they can be checkpointed within \
         {within:?} (a thread may be waiting for a child process or a vfork)"
    )]
    Stop {
        /// Threads that stopped.
        parked: usize,
        /// Threads there are.
        live: usize,
        /// How long the coordinator waited.
        within: Duration,
    },
    /// A vCPU's state could not be read.
    #[error("cannot read a thread's vCPU state: {0}")]
    Vcpu(#[from] dune::VcpuError),
    /// The program's memory or the supervisor's own view of it could not be read.
    #[error("cannot read {what}: {source}")]
    Read {
        /// What was read.
        what: String,
        /// What the host said.
        source: std::io::Error,
    },
    /// The image could not be written.
    #[error("cannot write the image {path}: {source}")]
    Write {
        /// The image.
        path: std::path::PathBuf,
        /// What the host said.
        source: std::io::Error,
    },
}
