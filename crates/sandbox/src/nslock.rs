//! The namespace lock: under filesystem rules, a `bind` of a unix socket by path is decided
//! and made while no sandboxed process can change what that path resolves to.
//!
//! `bind` resolves its path in the kernel from a string (`unix_bind_bsd`: `kern_path_create`
//! from the working directory); the address a socket reports (`getsockname`, its peers'
//! `getpeername`, `recvfrom`) is that string, so the supervisor gives the kernel the
//! program's own string rather than a path through a pinned descriptor. What could make that
//! string resolve elsewhere than where it was decided is a sandboxed program (of this sandbox
//! or another one sharing a writable directory) turning a directory of the path into a
//! symlink (`symlink`, `rename` of a symlink onto it, `RENAME_EXCHANGE`, `link` of one), or
//! changing the working directory, between the decision and the bind. Those calls
//! ([`mutates`]) take this lock shared while they run; a bind takes it exclusive from its
//! decision to its end.
//!
//! Within a process the lock is an `RwLock`; between processes it is a POSIX record lock
//! (`fcntl(F_SETLK)`, `F_RDLCK` by the first reader of a process, `F_WRLCK` by a binder) on a
//! file every sandbox of the user opens at start, `sandbox-nslock-UID` in `/dev/shm` (mode
//! 0600, refused unless it is a regular file of the user's with one link; otherwise a memfd
//! that covers this sandbox's own processes only), released by the kernel when a process ends,
//! however it ends. A record lock is waited for at most [`WAIT`]: a process stopped while it
//! holds one must not hang the others, so a binder that does not get it binds through its
//! pinned directory instead (airtight, though the address it reports is then
//! `/proc/self/fd/N/NAME`), and a reader that does not get it goes on (the binder's check after
//! the bind still holds). `fork` holds the in-process lock ([`for_fork`]), so a child never
//! inherits it held by a thread it does not have.

use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::fdwin::RuntimeFd;

/// Whether call `nr` can change where a path resolves (see the module documentation):
/// `chdir`, `fchdir`, `rename`, `link`, `symlink`, `renameat`, `linkat`, `symlinkat`,
/// `renameat2`.
#[inline]
pub fn mutates(nr: u64) -> bool {
    matches!(nr, 80 | 81 | 82 | 86 | 88 | 264 | 265 | 266 | 316)
}

struct Lock {
    file: RuntimeFd,
    threads: RwLock<()>,
    /// Readers in this process holding the record lock (or going on without it).
    readers: Mutex<usize>,
    /// Whether the file is the user's shared one (else this sandbox's memfd).
    shared_file: bool,
}

/// The longest wait for the record lock.
pub const WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// The user's lock file (`/dev/shm/sandbox-nslock-UID`), opened or made, as a descriptor at
/// the program's lowest free number (the caller moves it into the window); `None` when it
/// cannot be, or is not a regular file of the user's alone with one link.
fn user_file() -> Option<i32> {
    use std::os::fd::IntoRawFd;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    #[allow(unsafe_code)]
    // SAFETY: geteuid takes nothing and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let dir = std::path::Path::new("/dev/shm");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir.join(format!("sandbox-nslock-{uid}")))
        .ok()?;
    let m = f.metadata().ok()?;
    (m.is_file() && m.uid() == uid && m.nlink() == 1 && m.mode() & 0o077 == 0)
        .then(|| f.into_raw_fd())
}

static LOCK: OnceLock<Lock> = OnceLock::new();

/// Makes the lock (once, before the first `fork`; a process without it takes nothing).
/// Errors: `memfd_create`, the descriptor window.
pub fn init() -> std::io::Result<()> {
    if LOCK.get().is_some() {
        return Ok(());
    }
    let win = crate::fdwin::window();
    let (file, shared_file) = {
        let _gate = win.creating();
        match user_file() {
            Some(fd) => (win.adopt(fd)?, true),
            None => {
                let fd = crate::sys::memfd("dune-sandbox-nslock")
                    .map_err(|e| std::io::Error::from_raw_os_error(e.0))?;
                (win.adopt(fd)?, false)
            }
        }
    };
    tracing::debug!(shared_file, "namespace lock");
    let _ = LOCK.set(Lock { file, threads: RwLock::new(()), readers: Mutex::new(0), shared_file });
    Ok(())
}

/// Held by a call that [`mutates`] while it runs.
#[derive(Debug)]
pub struct Shared {
    _threads: Option<RwLockReadGuard<'static, ()>>,
}

/// Held by a unix `bind` from its decision to its end.
#[derive(Debug)]
pub struct Exclusive {
    _threads: Option<RwLockWriteGuard<'static, ()>>,
    /// Whether the record lock is held (no other process can change a path meanwhile).
    pub held: bool,
}

/// Takes the lock shared (nothing without it).
pub fn shared() -> Shared {
    let Some(l) = LOCK.get() else { return Shared { _threads: None } };
    let g = l.threads.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut n = l.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if *n == 0 {
        // Not got within WAIT: go on (see the module documentation).
        let _ = crate::sys::record_lock(l.file.raw(), libc::F_RDLCK as i16, WAIT);
    }
    *n += 1;
    Shared { _threads: Some(g) }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if self._threads.is_none() {
            return;
        }
        let Some(l) = LOCK.get() else { return };
        let mut n = l.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *n -= 1;
        if *n == 0 {
            let _ = crate::sys::record_lock(l.file.raw(), libc::F_UNLCK as i16, WAIT);
        }
    }
}

/// Takes the lock exclusive (nothing without it).
pub fn exclusive() -> Exclusive {
    let Some(l) = LOCK.get() else { return Exclusive { _threads: None, held: false } };
    let g = l.threads.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    let held = crate::sys::record_lock(l.file.raw(), libc::F_WRLCK as i16, WAIT);
    Exclusive { _threads: Some(g), held }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        if self.held
            && let Some(l) = LOCK.get()
        {
            let _ = crate::sys::record_lock(l.file.raw(), libc::F_UNLCK as i16, WAIT);
        }
    }
}

/// Whether the lock covers every sandbox of the user (else this sandbox's processes only).
pub fn covers_other_sandboxes() -> bool {
    LOCK.get().is_some_and(|l| l.shared_file)
}

/// The in-process lock, held across `fork` (no record lock is inherited by a child).
pub fn for_fork() -> Option<RwLockWriteGuard<'static, ()>> {
    LOCK.get().map(|l| l.threads.write().unwrap_or_else(std::sync::PoisonError::into_inner))
}
