//! The namespace lock: under filesystem rules, a `bind` of a unix socket by path is decided
//! and made while no process of the sandbox can change what that path resolves to.
//!
//! `bind` resolves its path in the kernel from a string (`unix_bind_bsd`: `kern_path_create`
//! from the working directory); the address a socket reports (`getsockname`, its peers'
//! `getpeername`, `recvfrom`) is that string, so the supervisor gives the kernel the
//! program's own string rather than a path through a pinned descriptor. What could make that
//! string resolve elsewhere than where it was decided is a program thread, in this process or
//! another of the sandbox, turning a directory of the path into a symlink (`symlink`,
//! `rename` of a symlink onto it, `link` of one), or changing the working directory, between
//! the decision and the bind. Those calls (in [`MUTATORS`]) take this lock shared while they
//! run; a bind takes it exclusive from its decision to its end.
//!
//! Within a process the lock is an `RwLock`; between the sandbox's processes it is a POSIX
//! record lock (`fcntl(F_SETLKW)`, `F_RDLCK` by the first reader of a process, `F_WRLCK` by
//! a binder) on a memfd made at start and inherited by every child, released by the kernel
//! when a process ends, however it ends. `fork` holds the in-process lock
//! ([`for_fork`]), so a child never inherits it held by a thread it does not have.

use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::fdwin::RuntimeFd;

/// The calls that can change where a path resolves (see the module documentation): `chdir`,
/// `fchdir`, `rename`, `link`, `symlink`, `renameat`, `linkat`, `symlinkat`, `renameat2`.
pub const MUTATORS: [u64; 9] = [80, 81, 82, 86, 88, 264, 265, 266, 316];

struct Lock {
    file: RuntimeFd,
    threads: RwLock<()>,
    /// Readers in this process holding the record lock.
    readers: Mutex<usize>,
}

static LOCK: OnceLock<Lock> = OnceLock::new();

/// Makes the lock (once, before the first `fork`; a process without it takes nothing).
/// Errors: `memfd_create`, the descriptor window.
pub fn init() -> std::io::Result<()> {
    if LOCK.get().is_some() {
        return Ok(());
    }
    let win = crate::fdwin::window();
    let file = {
        let _gate = win.creating();
        let fd = crate::sys::memfd("dune-sandbox-nslock")
            .map_err(|e| std::io::Error::from_raw_os_error(e.0))?;
        win.adopt(fd)?
    };
    let _ = LOCK.set(Lock { file, threads: RwLock::new(()), readers: Mutex::new(0) });
    Ok(())
}

/// Held by a call of [`MUTATORS`] while it runs.
#[derive(Debug)]
pub struct Shared {
    _threads: Option<RwLockReadGuard<'static, ()>>,
}

/// Held by a unix `bind` from its decision to its end.
#[derive(Debug)]
pub struct Exclusive {
    _threads: Option<RwLockWriteGuard<'static, ()>>,
}

/// Takes the lock shared (nothing without it).
pub fn shared() -> Shared {
    let Some(l) = LOCK.get() else { return Shared { _threads: None } };
    let g = l.threads.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut n = l.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if *n == 0 {
        crate::sys::record_lock(l.file.raw(), libc::F_RDLCK as i16);
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
            crate::sys::record_lock(l.file.raw(), libc::F_UNLCK as i16);
        }
    }
}

/// Takes the lock exclusive (nothing without it).
pub fn exclusive() -> Exclusive {
    let Some(l) = LOCK.get() else { return Exclusive { _threads: None } };
    let g = l.threads.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    crate::sys::record_lock(l.file.raw(), libc::F_WRLCK as i16);
    Exclusive { _threads: Some(g) }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        if self._threads.is_some()
            && let Some(l) = LOCK.get()
        {
            crate::sys::record_lock(l.file.raw(), libc::F_UNLCK as i16);
        }
    }
}

/// The in-process lock, held across `fork` (no record lock is inherited by a child).
pub fn for_fork() -> Option<RwLockWriteGuard<'static, ()>> {
    LOCK.get().map(|l| l.threads.write().unwrap_or_else(std::sync::PoisonError::into_inner))
}
