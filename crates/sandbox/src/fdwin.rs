//! The descriptor window: where the runtime's own file descriptors live, and how the program's
//! `RLIMIT_NOFILE` is enforced.
//!
//! The program and the runtime share one host descriptor table. The runtime's descriptors
//! (`/dev/kvm`, the VM, one per vCPU, the trace file, short-lived private duplicates) sit in a
//! window `[floor, top)` at the top of the host's soft limit, and **every number of the window
//! is always open**: a number the runtime is not using holds a placeholder (a duplicate of one
//! `/dev/null` descriptor). So:
//!
//! * a descriptor the program creates by any route (`open`, `socket`, `accept`, `pipe`,
//!   `dup`, `SCM_RIGHTS`, ...) can only land below `floor`: the host kernel itself answers
//!   `EMFILE` (or truncates the `SCM_RIGHTS` message) once the program's numbers are used up,
//!   exactly as at a limit of `floor`; the runtime can always still create what it needs;
//! * "is this one of the runtime's?" is `fd >= floor`, nothing to keep in step: a number can
//!   never be left marked after its descriptor went, or be missed;
//! * the runtime takes a number by replacing a placeholder with `dup3` and gives it back by
//!   replacing it with a placeholder again, so a window number is never free.
//!
//! The program sees `RLIMIT_NOFILE` as `floor` (soft and hard). It may lower its soft limit
//! `L`: free numbers in `[L, floor)` then get placeholders too (and numbers it closes there
//! later), so the kernel enforces `L` the same way, while the descriptors it already had there
//! stay usable, as in Linux.
//!
//! A new descriptor the kernel creates for the runtime (`KVM_CREATE_VCPU`, opening a file)
//! appears at the lowest free number first, which is the program's; [`FdWindow::place`] moves
//! it into the window at once. In between, another program thread could name that number: it
//! can do no harm with a KVM descriptor, as the calls that could use one are screened by what
//! the descriptor is (`mmap`, `SCM_RIGHTS`, `ioctl`; see `syscall`).

use std::collections::BTreeSet;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The window of this process (and of the processes forked from it, which inherit it).
#[derive(Debug)]
pub struct FdWindow {
    floor: RawFd,
    /// The placeholder every free window number duplicates (itself at `top - 1`).
    filler: RawFd,
    /// Window numbers holding a placeholder, free for the runtime.
    spare: Mutex<Vec<RawFd>>,
    /// The program's soft `RLIMIT_NOFILE` (at most `floor`).
    limit: AtomicI32,
    /// Placeholders below `floor`, at `[limit, floor)`, enforcing a lowered limit.
    low: Mutex<BTreeSet<RawFd>>,
}

static WINDOW: std::sync::OnceLock<FdWindow> = std::sync::OnceLock::new();

/// The window (see [`init`]).
pub fn window() -> &'static FdWindow {
    WINDOW.get().expect("the descriptor window is set up at start-up")
}

/// Sets up the window `[floor, top)`: every number not open gets a placeholder. Once per
/// process tree, while the process has one thread. Errors: opening `/dev/null`, `dup3`.
pub fn init(floor: RawFd, top: RawFd) -> io::Result<&'static FdWindow> {
    if let Some(w) = WINDOW.get() {
        return Ok(w);
    }
    let null = std::os::fd::IntoRawFd::into_raw_fd(std::fs::File::open("/dev/null")?);
    let filler = top - 1;
    dup3(null, filler)?;
    if null != filler {
        close(null);
    }
    let mut spare = Vec::new();
    for fd in (floor..filler).rev() {
        // Numbers already open (inherited from whoever started the sandbox) stay as they are,
        // out of the program's reach like every window number.
        if !is_open(fd) {
            dup3(filler, fd)?;
            spare.push(fd);
        }
    }
    let w = FdWindow {
        floor,
        filler,
        spare: Mutex::new(spare),
        limit: AtomicI32::new(floor),
        low: Mutex::new(BTreeSet::new()),
    };
    Ok(WINDOW.get_or_init(|| w))
}

impl FdWindow {
    /// The first window number: the program's descriptors are all below it.
    pub fn floor(&self) -> RawFd {
        self.floor
    }

    /// Whether `fd` is the runtime's (a window number, or a placeholder enforcing a lowered
    /// limit): the program may not name it.
    pub fn is_runtime(&self, fd: RawFd) -> bool {
        fd >= self.floor || (fd >= self.limit.load(Ordering::Relaxed) && self.low_has(fd))
    }

    fn low_has(&self, fd: RawFd) -> bool {
        fd >= 0 && self.low.lock().unwrap().contains(&fd)
    }

    /// Moves the new descriptor `fd` (just created by the kernel, owned by the caller) into the
    /// window, replacing a placeholder, and returns its number there. A descriptor that already
    /// is in the window (created after [`FdWindow::make_room`]) stays. `EMFILE` when the window
    /// is used up (`fd` is closed then).
    pub fn place(&self, fd: RawFd) -> io::Result<RawFd> {
        if fd >= self.floor {
            self.spare.lock().unwrap().retain(|&s| s != fd);
            return Ok(fd);
        }
        let Some(slot) = self.spare.lock().unwrap().pop() else {
            close(fd);
            return Err(io::Error::from_raw_os_error(libc::EMFILE));
        };
        let r = dup3(fd, slot);
        close(fd);
        match r {
            Ok(()) => Ok(slot),
            Err(e) => {
                self.spare.lock().unwrap().push(slot);
                Err(e)
            }
        }
    }

    /// [`FdWindow::place`] for a descriptor the runtime holds only for a while: given back when
    /// the result is dropped.
    pub fn adopt(&self, fd: RawFd) -> io::Result<RuntimeFd> {
        self.place(fd).map(RuntimeFd)
    }

    /// A duplicate of the program's descriptor `fd` in the window (for a call the runtime makes
    /// on the program's behalf on a file it checked: another program thread cannot `dup2`
    /// something else over it meanwhile). Errors: `EBADF`, `EMFILE` (window used up).
    pub fn duplicate(&self, fd: RawFd) -> io::Result<RuntimeFd> {
        let Some(slot) = self.spare.lock().unwrap().pop() else {
            return Err(io::Error::from_raw_os_error(libc::EMFILE));
        };
        match dup3(fd, slot) {
            Ok(()) => Ok(RuntimeFd(slot)),
            Err(e) => {
                self.spare.lock().unwrap().push(slot);
                Err(e)
            }
        }
    }

    /// Frees one window number for a descriptor the kernel cannot otherwise create (`EMFILE`:
    /// the program's numbers are all used): the next descriptor created lands there, and
    /// [`FdWindow::place`] keeps it. Returns whether there was one to free.
    pub fn make_room(&self) -> bool {
        let Some(slot) = self.spare.lock().unwrap().pop() else { return false };
        close(slot);
        true
    }

    /// `fd`, a window number, was closed by its owner: a placeholder again.
    pub fn closed(&self, fd: RawFd) {
        if fd >= self.floor && fd < self.filler && !is_open(fd) && dup3(self.filler, fd).is_ok() {
            self.spare.lock().unwrap().push(fd);
        }
    }

    /// Gives a window number back: a placeholder replaces what it held, in one step.
    fn give_back(&self, fd: RawFd) {
        if dup3(self.filler, fd).is_ok() {
            self.spare.lock().unwrap().push(fd);
        }
    }

    /// The program's `RLIMIT_NOFILE` as it sees it: (soft, hard).
    pub fn program_limit(&self) -> (u64, u64) {
        (self.limit.load(Ordering::Relaxed) as u64, self.floor as u64)
    }

    /// Sets the program's soft `RLIMIT_NOFILE` to `soft` (at most [`FdWindow::floor`]): free
    /// numbers from `soft` up get placeholders, placeholders below it go.
    pub fn set_program_limit(&self, soft: u64) {
        let soft = soft.min(self.floor as u64) as RawFd;
        let mut low = self.low.lock().unwrap();
        // Raised: the placeholders below the new limit go.
        let gone: Vec<RawFd> = low.range(..soft).copied().collect();
        for fd in gone {
            close(fd);
            low.remove(&fd);
        }
        self.limit.store(soft, Ordering::Relaxed);
        // Lowered: every free number in [soft, floor) gets one.
        for fd in soft.max(0)..self.floor {
            if !low.contains(&fd) && !is_open(fd) && dup3(self.filler, fd).is_ok() {
                low.insert(fd);
            }
        }
    }

    /// The program closed `fd`: at or above a lowered limit, the number gets a placeholder, so
    /// the kernel never gives it out again while the limit holds.
    pub fn program_closed(&self, fd: RawFd) {
        if fd >= self.limit.load(Ordering::Relaxed) && fd < self.floor {
            let mut low = self.low.lock().unwrap();
            if !is_open(fd) && dup3(self.filler, fd).is_ok() {
                low.insert(fd);
            }
        }
    }

    /// Holds the window's locks (across `fork`, so the child never inherits one held).
    pub fn lock(&self) -> (MutexGuard<'_, Vec<RawFd>>, MutexGuard<'_, BTreeSet<RawFd>>) {
        (self.spare.lock().unwrap(), self.low.lock().unwrap())
    }
}

/// A descriptor of the runtime's in the window: a placeholder takes its number again when it
/// is dropped, so it can never be left behind, nor its number reused while it is alive.
#[derive(Debug)]
pub struct RuntimeFd(RawFd);

impl RuntimeFd {
    /// The descriptor number.
    pub fn raw(&self) -> RawFd {
        self.0
    }
}

impl Drop for RuntimeFd {
    fn drop(&mut self) {
        window().give_back(self.0);
    }
}

fn is_open(fd: RawFd) -> bool {
    crate::sys::fd_flags(fd).is_some()
}

fn dup3(from: RawFd, to: RawFd) -> io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: every caller passes a number of the runtime's window as `to` (or a number of the
    // program's range that the window takes over to enforce a lowered limit, free until now),
    // so no descriptor anyone else relies on is replaced.
    unsafe {
        crate::sys::dup3_cloexec(from, to)
    }
}

fn close(fd: RawFd) {
    crate::sys::close(fd);
}

/// The window as the VM's descriptor placer (`dune::VmConfig::fd_placer`).
#[derive(Debug)]
pub struct Placer;

impl dune::FdPlacer for Placer {
    fn place(&self, fd: RawFd) -> io::Result<RawFd> {
        window().place(fd)
    }
    fn make_room(&self) -> bool {
        window().make_room()
    }
    fn closed(&self, fd: RawFd) {
        window().closed(fd)
    }
}
