//! Every `unsafe` operation of the supervisor: forwarding a validated system call to the host,
//! host mappings inside the program's reserved range, and fault-tolerant copies of program
//! memory.
//!
//! The invariants that make the forwarding sound are established by the callers (the
//! `syscall` module) and restated at each `unsafe` block: every pointer handed to the host
//! kernel either lies inside the program's reserved range (whose every page is program memory
//! or a `PROT_NONE` reservation, never the runtime's) or points at a copy the supervisor owns.

use std::io;

use crate::errno::Errno;

/// Result of a raw system call: the value, or the errno.
pub type SysResult = Result<u64, Errno>;

fn ret(r: i64) -> SysResult {
    if r < 0 { Err(Errno(-r as i32)) } else { Ok(r as u64) }
}

/// Performs system call `nr` on the host with `args`, exactly as given.
///
/// # Safety
/// Every argument the kernel interprets as a pointer must be NULL, lie wholly inside the
/// program's reserved range, or point at memory the caller owns and keeps alive for the call;
/// every argument interpreted as a file descriptor must not be one of the runtime's; and the
/// call must not change the supervisor's own state (signal handlers, memory outside the
/// program range, credentials the supervisor relies on) — the dispatch table only lists calls
/// for which that holds.
pub unsafe fn syscall6(nr: i64, a: [u64; 6]) -> SysResult {
    // SAFETY: forwarded from the caller's contract.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    ret(if r == -1 {
        -(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) as i64)
    } else {
        r
    })
}

/// Reserves `[addr, addr + len)` with `PROT_NONE`, replacing whatever the program had there
/// (`MAP_FIXED`) or, with `noreplace`, failing if anything is mapped there.
///
/// The range must lie inside the program's reserved range (or be that range, at start-up).
pub fn reserve(addr: u64, len: u64, noreplace: bool) -> SysResult {
    let fixed = if noreplace { libc::MAP_FIXED_NOREPLACE } else { libc::MAP_FIXED };
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | fixed;
    // SAFETY: the caller passes a range inside the program's reserved range (or the range
    // itself), which holds no runtime memory; with MAP_FIXED_NOREPLACE nothing is replaced.
    let p = unsafe { libc::mmap(addr as *mut _, len as usize, libc::PROT_NONE, flags, -1, 0) };
    if p == libc::MAP_FAILED {
        return Err(Errno::last());
    }
    if p as u64 != addr {
        // Pre-4.17 kernels treat MAP_FIXED_NOREPLACE as a hint.
        // SAFETY: `p` is the mapping just created.
        unsafe { libc::munmap(p, len as usize) };
        return Err(Errno(libc::EEXIST));
    }
    Ok(addr)
}

/// `mmap` at exactly `addr` (`MAP_FIXED`) inside the program range.
///
/// # Safety
/// `[addr, addr + len)` must lie inside the program's reserved range and `fd` must not be a
/// runtime descriptor.
pub unsafe fn mmap_fixed(
    addr: u64,
    len: u64,
    prot: i32,
    flags: i32,
    fd: i32,
    off: u64,
) -> SysResult {
    // SAFETY: caller's contract: only program memory is replaced.
    let p = unsafe {
        libc::mmap(
            addr as *mut _,
            len as usize,
            prot,
            flags | libc::MAP_FIXED,
            fd,
            off as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED { Err(Errno::last()) } else { Ok(p as u64) }
}

/// `mprotect` inside the program range.
///
/// # Safety
/// `[addr, addr + len)` must lie inside the program's reserved range.
pub unsafe fn mprotect(addr: u64, len: u64, prot: i32) -> SysResult {
    // SAFETY: caller's contract.
    let r = unsafe { libc::mprotect(addr as *mut _, len as usize, prot) };
    if r < 0 { Err(Errno::last()) } else { Ok(0) }
}

/// `mremap(old, old_len, new_len, MREMAP_MAYMOVE | MREMAP_FIXED, new)`: moves program pages.
///
/// # Safety
/// Both ranges must lie inside the program's reserved range.
pub unsafe fn mremap_fixed(old: u64, old_len: u64, new_len: u64, new: u64) -> SysResult {
    // SAFETY: caller's contract.
    let p = unsafe {
        libc::mremap(
            old as *mut _,
            old_len as usize,
            new_len as usize,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            new as *mut libc::c_void,
        )
    };
    if p == libc::MAP_FAILED { Err(Errno::last()) } else { Ok(p as u64) }
}

/// Copies `buf.len()` bytes of program memory at `addr` into `buf` through the kernel
/// (`process_vm_readv` on this process), so a page that vanished or a file truncated under a
/// shared mapping yields `EFAULT` instead of a fault in the supervisor. The caller has checked
/// that the range lies in the program range.
pub fn read_program(addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
    if buf.is_empty() {
        return Ok(());
    }
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut _, iov_len: buf.len() };
    // SAFETY: `local` describes `buf`, which we own; the kernel validates `remote` itself.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(Errno::last());
    }
    if n as usize != buf.len() { Err(Errno(libc::EFAULT)) } else { Ok(()) }
}

/// Copies `buf` into program memory at `addr` (`process_vm_writev`); see [`read_program`].
pub fn write_program(addr: u64, buf: &[u8]) -> Result<(), Errno> {
    if buf.is_empty() {
        return Ok(());
    }
    let local = libc::iovec { iov_base: buf.as_ptr() as *mut _, iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut _, iov_len: buf.len() };
    // SAFETY: `local` describes `buf`; the kernel validates `remote` and honours the program's
    // page protections (a read-only page gives EFAULT).
    let n = unsafe { libc::process_vm_writev(libc::getpid(), &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(Errno::last());
    }
    if n as usize != buf.len() { Err(Errno(libc::EFAULT)) } else { Ok(()) }
}

/// Fills `buf` with random bytes from the kernel (`getrandom`).
pub fn random(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: writes at most `buf.len() - done` bytes into `buf`.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n > 0 {
            done += n as usize;
        }
    }
}

/// Ends the supervisor the way the kernel would end the program for `signal`: no core dump of
/// the supervisor, default disposition, signal unblocked, raised. Returns only if the signal
/// does not terminate (then the caller exits with 128 + signal).
pub fn die_by_signal(signal: i32) {
    // SAFETY: plain libc calls on this process's own state, which is about to end.
    unsafe {
        let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
}

/// The kernel thread id of the calling thread.
pub fn gettid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::gettid() }
}

/// `getauxval` of the supervisor's own process.
pub fn getauxval(key: u64) -> u64 {
    // SAFETY: no preconditions.
    unsafe { libc::getauxval(key) }
}

/// `getrlimit` of the supervisor's own process.
pub fn getrlimit(resource: u32) -> libc::rlimit {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `r` is a valid out-pointer.
    unsafe { libc::getrlimit(resource, &mut r) };
    r
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, floor)` then close `fd`: moves a runtime descriptor up.
pub fn move_fd_up(fd: i32, floor: i32) -> io::Result<i32> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor the caller owns.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the caller hands over `fd`, which is not used afterwards.
    unsafe { libc::close(fd) };
    Ok(new)
}
