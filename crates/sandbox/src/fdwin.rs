//! The descriptor window: where the runtime's own file descriptors live, and how the program's
//! `RLIMIT_NOFILE` is enforced.
//!
//! The program and the runtime share one host descriptor table. The runtime's descriptors
//! (`/dev/kvm`, the VM, one per vCPU, the trace file, short-lived private duplicates) sit in a
//! window `[floor, top)` at the top of the host's soft limit, and **every number of the window
//! is always open**: a number the runtime is not using holds a placeholder (a duplicate of one
//! empty sealed memfd of the runtime's, which no name reaches: see [`runtime_object`]). A
//! number already open at start-up (inherited from whoever started the sandbox) gets one too.
//! So:
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
//! it into the window at once. In between, no other program thread can close, duplicate or
//! replace that number: the calls that do (`close`, `close_range`, `dup`, `dup2`, `dup3`,
//! `fcntl(F_DUPFD*)`) hold the window's gate shared ([`FdWindow::program_change`]) and the
//! runtime holds it exclusively from the creation to the move ([`FdWindow::creating`]). Other
//! routes to a copy of the descriptor are screened by what it *is*, never by its number
//! ([`runtime_object`]):
//!
//! * `mmap` and `SCM_RIGHTS` work on a private duplicate of the program's descriptor that is
//!   checked first, and refuse a KVM object (`EBADF`): a vCPU's `kvm_run` page mapped into the
//!   program would let it write the registers KVM loads at the next entry, and a VM or vCPU
//!   sent to another process would be mapped there;
//! * `ioctl` forwards only terminal and socket requests, none of which a KVM descriptor
//!   implements (KVM's requests are type `0xAE`): such a copy is inert there;
//! * opening a file by any name (`/proc/self/fd/N`, `/dev/fd/N`, `openat` on a
//!   `/proc/self/fd` directory, a hard link, the file's own path) refuses what is one of the
//!   runtime's objects by identity: the trace file, KVM's device and its anonymous inodes.
//!
//! Files the supervisor reads for itself (its own `/proc/self/maps`, ...) never get a number
//! the program could duplicate: see [`crate::hostread`].

use std::collections::BTreeSet;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

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
    /// Shared by the program's calls that close or duplicate descriptors, exclusive while the
    /// runtime has a new descriptor at a number of the program's (see the module's comment).
    gate: RwLock<()>,
}

static WINDOW: std::sync::OnceLock<FdWindow> = std::sync::OnceLock::new();

/// The window (see [`init`]).
pub fn window() -> &'static FdWindow {
    WINDOW.get().expect("the descriptor window is set up at start-up")
}

/// Sets up the window `[floor, top)`: every number not open gets a placeholder. Once per
/// process tree, while the process has one thread. Errors: `memfd_create`, `dup3`.
pub fn init(floor: RawFd, top: RawFd) -> io::Result<&'static FdWindow> {
    if let Some(w) = WINDOW.get() {
        return Ok(w);
    }
    learn_anon_device();
    // The placeholder: an empty memfd of the runtime's own, so that no name reaches one (a
    // symlink to `/proc/self/fd/N` is refused by identity, as every runtime file).
    let placeholder = placeholder_file()?;
    let filler = top - 1;
    dup3(placeholder, filler)?;
    if placeholder != filler {
        close(placeholder);
    }
    add_runtime_file(filler)?;
    let mut spare = Vec::new();
    for fd in (floor..filler).rev() {
        // A number already open (inherited from whoever started the sandbox, which the program
        // could never use: it is above its RLIMIT_NOFILE) gets a placeholder too, so that
        // nothing of the outside world stays reachable through the window.
        dup3(filler, fd)?;
        spare.push(fd);
    }
    let w = FdWindow {
        floor,
        filler,
        spare: Mutex::new(spare),
        limit: AtomicI32::new(floor),
        low: Mutex::new(BTreeSet::new()),
        gate: RwLock::new(()),
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
    ///
    /// Holds the gate shared while it copies (a new runtime descriptor at `fd`'s number is
    /// never copied): not to be called with [`FdWindow::creating`] or a lock `fork` takes held.
    pub fn duplicate(&self, fd: RawFd) -> io::Result<RuntimeFd> {
        let _gate = self.program_change();
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

    /// Held (shared) by a program call that closes, duplicates or replaces descriptors, from
    /// its checks to its end: no such call runs while [`FdWindow::creating`] is held.
    pub fn program_change(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Held (exclusively) by the runtime from just before it creates a descriptor, which the
    /// kernel puts at the program's lowest free number, until [`FdWindow::place`] moved it.
    pub fn creating(&self) -> RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds the window's locks (across `fork`, so the child never inherits one held). The
    /// gate is not among them: `fork` takes [`FdWindow::creating`] before every other lock (an
    /// `open` holds the gate while it looks at the process's threads).
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

/// What one of the runtime's objects is, found by identity ([`runtime_object`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeObject {
    /// A file of the runtime's (the trace file), by device and inode.
    File,
    /// KVM: `/dev/kvm` (any device node of it) or one of its anonymous inodes (a VM, a vCPU,
    /// their statistics).
    Kvm,
}

/// How many runtime files [`RUNTIME_FILES`] can hold.
const MAX_RUNTIME_FILES: usize = 8;

/// `(st_dev, st_ino)` of the runtime's own files ([`add_runtime_file`]), without a lock (a
/// forked child must never find one held): entries are written once, before [`RUNTIME_COUNT`]
/// counts them.
static RUNTIME_FILES: [(AtomicU64, AtomicU64); MAX_RUNTIME_FILES] =
    [const { (AtomicU64::new(0), AtomicU64::new(0)) }; MAX_RUNTIME_FILES];
/// How many entries of [`RUNTIME_FILES`] are set.
static RUNTIME_COUNT: AtomicUsize = AtomicUsize::new(0);

/// `st_dev` of the kernel's anonymous inodes (eventfd, epoll, KVM's VMs and vCPUs, ...), learnt
/// at start-up from an eventfd; `u64::MAX` until then.
static ANON_DEV: AtomicU64 = AtomicU64::new(u64::MAX);

/// `KVM_MINOR` (include/linux/miscdevice.h): `/dev/kvm` is the misc device 10:232.
const KVM_MINOR: u32 = 232;
/// The misc devices' major number.
const MISC_MAJOR: u32 = 10;

fn learn_anon_device() {
    if ANON_DEV.load(Ordering::Relaxed) != u64::MAX {
        return;
    }
    // SAFETY: eventfd creates a descriptor this function owns and closes.
    #[allow(unsafe_code)]
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd >= 0 {
        if let Ok(st) = crate::sys::fstat(fd) {
            ANON_DEV.store(st.st_dev, Ordering::Relaxed);
        }
        close(fd);
    }
}

/// Records the file open on `fd` (the trace file) as the runtime's: no open by any name, and
/// no `truncate`, reaches it ([`runtime_object`]). Inherited by forked children.
/// Called at start-up, before the program runs. Errors: `EBADF`, and `ENFILE` when the
/// table is full (a runtime bug).
pub fn add_runtime_file(fd: RawFd) -> io::Result<()> {
    let st = crate::sys::fstat(fd).map_err(|e| io::Error::from_raw_os_error(e.0))?;
    let i = RUNTIME_COUNT.load(Ordering::SeqCst);
    let slot = RUNTIME_FILES.get(i).ok_or_else(|| io::Error::from_raw_os_error(libc::ENFILE))?;
    slot.0.store(st.st_dev, Ordering::SeqCst);
    slot.1.store(st.st_ino, Ordering::SeqCst);
    RUNTIME_COUNT.store(i + 1, Ordering::SeqCst);
    Ok(())
}

/// `(st_dev, st_ino)` of the one short-lived runtime socket there may be (a checkpoint request
/// being served, see `checkpoint::save::listen`); `(0, 0)` when none.
static TRANSIENT: (AtomicU64, AtomicU64) = (AtomicU64::new(0), AtomicU64::new(0));

/// Records the socket open on `fd` as the runtime's while it is served (`None`: it is gone),
/// as [`add_runtime_file`] does for good. Call with the window's gate held
/// ([`FdWindow::creating`]) from the moment the descriptor exists.
pub fn set_transient_runtime_file(fd: Option<RawFd>) {
    let (dev, ino) =
        fd.and_then(|fd| crate::sys::fstat(fd).ok()).map_or((0, 0), |st| (st.st_dev, st.st_ino));
    TRANSIENT.1.store(ino, Ordering::SeqCst);
    TRANSIENT.0.store(dev, Ordering::SeqCst);
}

fn is_runtime_file(dev: u64, ino: u64) -> bool {
    if ino != 0
        && TRANSIENT.0.load(Ordering::SeqCst) == dev
        && TRANSIENT.1.load(Ordering::SeqCst) == ino
    {
        return true;
    }
    let n = RUNTIME_COUNT.load(Ordering::SeqCst).min(MAX_RUNTIME_FILES);
    RUNTIME_FILES[..n]
        .iter()
        .any(|(d, i)| d.load(Ordering::SeqCst) == dev && i.load(Ordering::SeqCst) == ino)
}

/// Whether the file with status `st` (open on `fd`, or `None` where only the status is known)
/// is one of the runtime's objects: a file recorded with [`add_runtime_file`], a device node of
/// KVM, or (with `fd`) one of KVM's anonymous inodes, whose `/proc/self/fd` link reads
/// `anon_inode:kvm-vm`, `anon_inode:kvm-vcpu:N`, `anon_inode:kvm-vcpu-stats:N`, ... (names
/// only KVM gives: a path always starts with `/`).
pub fn runtime_object(fd: Option<RawFd>, st: &libc::stat) -> Option<RuntimeObject> {
    let kind = st.st_mode & libc::S_IFMT;
    if kind == libc::S_IFCHR && st.st_rdev == libc::makedev(MISC_MAJOR, KVM_MINOR) {
        return Some(RuntimeObject::Kvm);
    }
    if let Some(fd) = fd
        && (st.st_dev == ANON_DEV.load(Ordering::Relaxed) || kind == 0)
    {
        let link = crate::sys::fd_path(fd)?;
        if link.starts_with(b"anon_inode:kvm") || link.starts_with(b"anon_inode:[kvm") {
            return Some(RuntimeObject::Kvm);
        }
        return None;
    }
    is_runtime_file(st.st_dev, st.st_ino).then_some(RuntimeObject::File)
}

/// [`runtime_object`] of the file open on `fd` (`fstat` first). Errors: `EBADF`.
pub fn runtime_object_of(fd: RawFd) -> Result<Option<RuntimeObject>, crate::errno::Errno> {
    let st = crate::sys::fstat(fd)?;
    Ok(runtime_object(Some(fd), &st))
}

/// A new empty, sealed memfd (close-on-exec).
fn placeholder_file() -> io::Result<RawFd> {
    #[allow(unsafe_code)]
    // SAFETY: memfd_create with a NUL-terminated name; fcntl on the new descriptor.
    unsafe {
        let fd = libc::memfd_create(
            c"sandbox-placeholder".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let seals =
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        libc::fcntl(fd, libc::F_ADD_SEALS, seals);
        Ok(fd)
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
    fn creating(&self) -> Box<dyn dune::Held + '_> {
        Box::new(window().creating())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn runtime_objects_by_identity() {
        learn_anon_device();
        let of = |fd: RawFd| runtime_object_of(fd).unwrap();
        // SAFETY: eventfd creates a descriptor this test owns and closes.
        #[allow(unsafe_code)]
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(efd >= 0);
        assert_eq!(of(efd), None, "an eventfd is nobody's runtime object");
        close(efd);
        let dir = std::env::temp_dir().join(format!("fdwin-test-{}", std::process::id()));
        std::fs::write(&dir, b"x").unwrap();
        let f = std::fs::File::open(&dir).unwrap();
        assert_eq!(of(f.as_raw_fd()), None);
        add_runtime_file(f.as_raw_fd()).unwrap();
        let again = std::fs::File::open(&dir).unwrap();
        assert_eq!(of(again.as_raw_fd()), Some(RuntimeObject::File), "the same file, reopened");
        std::fs::remove_file(&dir).unwrap();
        if let Ok(kvm) = std::fs::File::open("/dev/kvm") {
            assert_eq!(of(kvm.as_raw_fd()), Some(RuntimeObject::Kvm));
            // SAFETY: KVM_CREATE_VM on our own /dev/kvm descriptor returns a new descriptor.
            #[allow(unsafe_code)]
            let vm = unsafe { libc::ioctl(kvm.as_raw_fd(), 0xae01, 0) };
            if vm >= 0 {
                assert_eq!(of(vm), Some(RuntimeObject::Kvm), "a VM");
                close(vm);
            }
        }
    }
}
