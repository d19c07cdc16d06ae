//! `signalfd` and `signalfd4`, emulated over the supervisor's own record of the program's
//! pending signals (the host process catches every signal; nothing of the program's is the
//! host's to report).
//!
//! The program's descriptor is one end of a Unix stream socket pair, shut down for writing;
//! the supervisor keeps the other end in its descriptor window and sends a byte to it
//! (`MSG_NOSIGNAL`: never a `SIGPIPE`, whether or not the program still has its end) whenever
//! a signal in the descriptor's mask is recorded, so `poll`, `select` and `epoll` see it
//! readable as they would see a signalfd. `read` and `readv` of that descriptor are the
//! supervisor's, on a private duplicate of it (so a number closed or replaced meanwhile by
//! another thread is never what is read or drained): they take pending signals of the mask
//! (the reading thread's first, then the process's, as Linux's `signalfd_dequeue`) and write
//! one 128-byte `struct signalfd_siginfo` for each (include/uapi/linux/signalfd.h); with none
//! pending they give `EAGAIN` when the descriptor is non-blocking (`SFD_NONBLOCK`, or
//! `O_NONBLOCK` set later), else wait for one. `write` and `writev` give `EINVAL`, as Linux's.
//! The socket is recognised by its device and inode, so `dup`, `fork` and `execve` keep the
//! descriptor working; a socket cannot be reopened through `/proc/self/fd` (`ENXIO`, as for a
//! signalfd). A forked child gets sockets of its own in place of its parent's (its pending
//! signals are its own).
//!
//! Limits: [`SLOTS`] signalfds per process at once; the slot of one the program has closed
//! every copy of (its peer hangs up) is reclaimed when a new one needs it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};

use super::Ctx;
use crate::errno::Errno;
use crate::signals;
use crate::sys::{self, SysResult};

/// How many signalfds can exist at once.
pub const SLOTS: usize = 16;

/// `sizeof(struct signalfd_siginfo)`.
const SIGINFO: usize = 128;
const SFD_CLOEXEC: u64 = libc::O_CLOEXEC as u64;
const SFD_NONBLOCK: u64 = libc::O_NONBLOCK as u64;

/// Per slot: the mask (0 = free), the runtime's end (in the window), the program's end's
/// device and inode.
static MASKS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
static WRITERS: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];
static DEVS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
static INODES: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
/// Slots in use: 0 keeps `read` and the signal handler from looking further.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Serialises creation and mask changes (never taken in a signal handler).
static LOCK: Mutex<()> = Mutex::new(());

/// A signal `sig` was recorded for the program: wakes the signalfds whose mask has it.
/// Async-signal-safe.
pub fn notify(sig: i32) {
    if LIVE.load(Ordering::Relaxed) == 0 || !(1..=64).contains(&sig) {
        return;
    }
    let bit = signals::bit(sig);
    for i in 0..SLOTS {
        if MASKS[i].load(Ordering::SeqCst) & bit != 0 {
            let w = WRITERS[i].load(Ordering::SeqCst);
            if w >= 0 {
                sys::poke(w);
            }
        }
    }
}

/// The slot of descriptor `fd` if it is one of the program's signalfds.
fn slot_of(fd: u64) -> Option<usize> {
    if LIVE.load(Ordering::SeqCst) == 0 {
        return None;
    }
    let (mode, dev, ino) = sys::file_identity(fd as i32)?;
    if mode & libc::S_IFMT != libc::S_IFSOCK {
        return None;
    }
    (0..SLOTS).find(|&i| {
        MASKS[i].load(Ordering::SeqCst) != 0
            && INODES[i].load(Ordering::SeqCst) == ino
            && DEVS[i].load(Ordering::SeqCst) == dev
    })
}

/// The program's descriptor `fd` as a signalfd: its slot and a private duplicate, or `None`
/// when it is not one (a runtime descriptor, another file, or a number another thread
/// replaced between the looks).
fn signalfd_at(ctx: &Ctx<'_>, fd: u64) -> Option<(usize, crate::fdwin::RuntimeFd)> {
    if LIVE.load(Ordering::SeqCst) == 0 || super::check_fd(ctx.proc(), fd).is_err() {
        return None;
    }
    let i = slot_of(fd)?;
    let dup = crate::fdwin::window().duplicate(fd as i32).ok()?;
    (slot_of(dup.raw() as u64) == Some(i)).then_some((i, dup))
}

/// `write` or `writev` of a signalfd: `EINVAL`, as Linux's (a signalfd has no write); `None`
/// when `fd` is not one.
pub fn write(ctx: &Ctx<'_>, fd: u64) -> Option<SysResult> {
    signalfd_at(ctx, fd).map(|_| Err(Errno::EINVAL))
}

/// `signalfd(fd, mask, sizemask)`.
pub fn signalfd(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    signalfd4(ctx, &[a[0], a[1], a[2], 0, 0, 0])
}

/// `signalfd4(fd, mask, sizemask, flags)`.
pub fn signalfd4(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (fd, mask_ptr, size, flags) = (a[0] as i32, a[1], a[2], a[3]);
    if size != 8 || flags & !(SFD_CLOEXEC | SFD_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let mask = super::read_u64(ctx.proc(), mask_ptr)? & !signals::UNBLOCKABLE;
    // A mask of 0 is a valid signalfd that never fires: keep a bit no signal has.
    let stored = if mask == 0 { 1 << 63 } else { mask } | (1 << 63);
    let _g = LOCK.lock().unwrap();
    if fd != -1 {
        let (i, _dup) = signalfd_at(ctx, fd as u64).ok_or(Errno::EINVAL)?;
        MASKS[i].store(stored, Ordering::SeqCst);
        if sys::pending_signals() & mask != 0 {
            sys::poke(WRITERS[i].load(Ordering::SeqCst));
        }
        return Ok(fd as u64);
    }
    let free = || (0..SLOTS).find(|&i| MASKS[i].load(Ordering::SeqCst) == 0);
    let i = match free() {
        Some(i) => i,
        None => {
            reclaim();
            free().ok_or(Errno(libc::ENOMEM))?
        }
    };
    let creating = crate::fdwin::window().creating();
    let (r, w) = sys::signal_socket_pair(flags & SFD_CLOEXEC != 0, flags & SFD_NONBLOCK != 0)?;
    let placed = crate::fdwin::window().place(w);
    drop(creating);
    let w = match placed {
        Ok(w) => w,
        Err(e) => {
            sys::close(r);
            return Err(Errno::from_io(&e));
        }
    };
    let Some((_, dev, ino)) = sys::file_identity(r) else {
        sys::close(r);
        sys::close(w);
        crate::fdwin::window().closed(w);
        return Err(Errno::EBADF);
    };
    DEVS[i].store(dev, Ordering::SeqCst);
    INODES[i].store(ino, Ordering::SeqCst);
    WRITERS[i].store(w, Ordering::SeqCst);
    MASKS[i].store(stored, Ordering::SeqCst);
    LIVE.fetch_add(1, Ordering::SeqCst);
    if sys::pending_signals() & mask != 0 {
        sys::poke(w);
    }
    Ok(r as u64)
}

/// Frees the slots of signalfds the program no longer has a descriptor of: their runtime end
/// sees its peer hang up (`POLLHUP`). Called with [`LOCK`] held, when every slot is taken.
fn reclaim() {
    for i in 0..SLOTS {
        let w = WRITERS[i].load(Ordering::SeqCst);
        if MASKS[i].load(Ordering::SeqCst) != 0 && w >= 0 && sys::peer_gone(w) {
            MASKS[i].store(0, Ordering::SeqCst);
            WRITERS[i].store(-1, Ordering::SeqCst);
            sys::close(w);
            crate::fdwin::window().closed(w);
            LIVE.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// `read(fd, buf, count)` when `fd` is a signalfd: `None` when it is not one (the caller
/// forwards the call).
pub fn read(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> Option<SysResult> {
    let (i, dup) = signalfd_at(ctx, a[0])?;
    let (buf, count) = (a[1], a[2]);
    Some(ctx.proc().check(buf, count).and_then(|()| {
        let proc = ctx.proc();
        let mut put = |at: u64, rec: &[u8; SIGINFO]| super::copy_out(proc, buf + at, rec);
        read_slot(ctx, i, dup.raw(), count, &mut put)
    }))
}

/// `readv(fd, iov, iovcnt)` when `fd` is a signalfd (Linux's `signalfd_read_iter`: records
/// fill the vectors in order, one may straddle two): `None` when it is not one.
pub fn readv(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> Option<SysResult> {
    let (i, dup) = signalfd_at(ctx, a[0])?;
    if !host_reads_vectors() {
        // The host's signalfd has `read` only: its readv is one read per vector
        // (`do_loop_readv_writev`), stopping at the first error or short read.
        return Some(super::emul::copy_iovecs(ctx, a[1], a[2]).and_then(|iov| {
            let mut total = 0u64;
            for v in &iov {
                let (base, len) = (v.iov_base as u64, v.iov_len as u64);
                let proc = ctx.proc();
                let mut put = |at: u64, rec: &[u8; SIGINFO]| super::copy_out(proc, base + at, rec);
                match read_slot(ctx, i, dup.raw(), len, &mut put) {
                    Ok(n) => {
                        total += n;
                        if n != len {
                            break;
                        }
                    }
                    Err(e) if total == 0 => return Err(e),
                    Err(_) => break,
                }
            }
            Ok(total)
        }));
    }
    Some(super::emul::copy_iovecs(ctx, a[1], a[2]).and_then(|iov| {
        let count: u64 = iov.iter().map(|v| v.iov_len as u64).sum();
        let proc = ctx.proc();
        let mut put = |at: u64, rec: &[u8; SIGINFO]| {
            // Byte `at` of the stream and on, across the vectors.
            let (mut skip, mut rest): (u64, &[u8]) = (at, rec);
            for v in &iov {
                let len = v.iov_len as u64;
                if skip >= len {
                    skip -= len;
                    continue;
                }
                let n = (len - skip).min(rest.len() as u64) as usize;
                super::copy_out(proc, v.iov_base as u64 + skip, &rest[..n])?;
                rest = &rest[n..];
                skip = 0;
                if rest.is_empty() {
                    break;
                }
            }
            Ok(())
        };
        read_slot(ctx, i, dup.raw(), count, &mut put)
    }))
}

/// Whether the host kernel's signalfd reads into several vectors at once (`read_iter`, newer
/// kernels) rather than one `read` per vector (Linux 6.1 and others): asked of a real
/// signalfd once, with vectors of 100 and 100 bytes (`EAGAIN` with `read_iter`, `EINVAL`
/// from the first vector's `read` without).
fn host_reads_vectors() -> bool {
    static ANSWER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANSWER.get_or_init(|| {
        let win = crate::fdwin::window();
        let fd = {
            let _creating = win.creating();
            match sys::host_signalfd_probe() {
                Some(fd) => win.adopt(fd),
                None => return true,
            }
        };
        fd.is_ok_and(|fd| sys::readv_would_block(fd.raw()))
    })
}

/// Where a record goes: (offset in the caller's buffer, record).
type Sink<'a> = dyn FnMut(u64, &[u8; SIGINFO]) -> Result<(), Errno> + 'a;

/// Takes pending signals of slot `i`'s mask as records, handing each to `put` with its offset
/// in the caller's buffer of `count` bytes; waits for one unless the descriptor (`fd`, the
/// runtime's private duplicate of the program's) is non-blocking.
fn read_slot(ctx: &Ctx<'_>, i: usize, fd: i32, count: u64, put: &mut Sink<'_>) -> SysResult {
    if (count as usize) < SIGINFO {
        return Err(Errno::EINVAL);
    }
    let mut done = 0u64;
    loop {
        let mask = MASKS[i].load(Ordering::SeqCst) & !(1 << 63);
        while done + SIGINFO as u64 <= count {
            let p = sys::pending_signals() & mask;
            if p == 0 {
                break;
            }
            let sig = p.trailing_zeros() as i32 + 1;
            let Some(info) = sys::take_signal(sig) else { continue };
            put(done, &signalfd_siginfo(&info))?;
            done += SIGINFO as u64;
        }
        if sys::pending_signals() & mask == 0 {
            sys::drain(fd);
        }
        if done > 0 {
            return Ok(done);
        }
        if sys::fd_status_flags(fd).is_some_and(|f| f & libc::O_NONBLOCK != 0) {
            return Err(Errno(libc::EAGAIN));
        }
        // Blocking: wait for a signal of the mask, or one the thread does not block
        // (interrupting the read, as Linux's signalfd read is interruptible).
        if !super::emul::wait_for(ctx, ctx.thread.sigmask & !mask) {
            continue;
        }
        if sys::pending_signals() & mask == 0 {
            return Err(Errno(libc::EINTR));
        }
    }
}

/// A `siginfo_t` (128 bytes, as the supervisor records it) as a `struct signalfd_siginfo`
/// (include/uapi/linux/signalfd.h), filled as `signalfd_copyinfo` (fs/signalfd.c) fills it:
/// by the layout the kernel's `siginfo_layout` gives the signal and `si_code`.
pub fn signalfd_siginfo(info: &[u8; 128]) -> [u8; SIGINFO] {
    let u32_at = |o: usize| u32::from_ne_bytes(info[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_ne_bytes(info[o..o + 8].try_into().unwrap());
    let (signo, code) = (u32_at(0), u32_at(8) as i32);
    let mut out = [0u8; SIGINFO];
    let mut put = |o: usize, bytes: &[u8]| out[o..o + bytes.len()].copy_from_slice(bytes);
    put(0, &info[0..12]); // ssi_signo, ssi_errno, ssi_code
    let sig = signo as i32;
    // (signal, highest si_code of its own layout) for the fault signals (NSIGILL, ...).
    let fault_limit = match sig {
        libc::SIGILL => 11,
        libc::SIGFPE => 15,
        libc::SIGSEGV => 10,
        libc::SIGBUS => 5,
        libc::SIGTRAP => 6,
        _ => 0,
    };
    enum Layout {
        Kill,
        Fault,
        Chld,
        Poll,
        Sys,
        Timer,
        Rt,
    }
    let layout = if code > libc::SI_USER && code < 0x80 {
        if code <= fault_limit {
            Layout::Fault
        } else if sig == libc::SIGCHLD && code <= 6 {
            Layout::Chld
        } else if sig == libc::SIGSYS && code <= 2 {
            Layout::Sys
        } else if code <= 6 {
            Layout::Poll
        } else {
            Layout::Kill
        }
    } else if code == libc::SI_TIMER {
        Layout::Timer
    } else if code == libc::SI_SIGIO {
        Layout::Poll
    } else if code < 0 {
        Layout::Rt
    } else {
        Layout::Kill
    };
    match layout {
        Layout::Kill => {
            put(12, &info[16..24]); // ssi_pid, ssi_uid
        }
        Layout::Rt => {
            put(12, &info[16..24]); // ssi_pid, ssi_uid
            put(44, &info[24..28]); // ssi_int
            put(48, &u64_at(24).to_ne_bytes()); // ssi_ptr
        }
        Layout::Timer => {
            put(24, &info[16..20]); // ssi_tid
            put(32, &info[20..24]); // ssi_overrun
            put(44, &info[24..28]); // ssi_int
            put(48, &u64_at(24).to_ne_bytes()); // ssi_ptr
        }
        Layout::Poll => {
            put(28, &(u64_at(16) as u32).to_ne_bytes()); // ssi_band
            put(20, &info[24..28]); // ssi_fd
        }
        Layout::Fault => {
            put(72, &u64_at(16).to_ne_bytes()); // ssi_addr
        }
        Layout::Chld => {
            put(12, &info[16..24]); // ssi_pid, ssi_uid
            put(40, &info[24..28]); // ssi_status
            put(56, &u64_at(32).to_ne_bytes()); // ssi_utime
            put(64, &u64_at(40).to_ne_bytes()); // ssi_stime
        }
        Layout::Sys => {
            put(88, &u64_at(16).to_ne_bytes()); // ssi_call_addr
            put(84, &info[24..28]); // ssi_syscall
            put(96, &info[28..32]); // ssi_arch
        }
    }
    out
}

/// A forked child: its signals are its own, so each signalfd gets a socket pair of its own,
/// put over every descriptor of the child's that named the parent's. (The child has one
/// thread here, so listing its descriptors may open a directory at a number of the program's.)
pub fn after_fork() {
    if LIVE.load(Ordering::SeqCst) == 0 {
        return;
    }
    let fds = sys::open_fds_below(crate::fdwin::window().floor());
    for i in 0..SLOTS {
        if MASKS[i].load(Ordering::SeqCst) == 0 {
            continue;
        }
        let (old_dev, old_ino) = (DEVS[i].load(Ordering::SeqCst), INODES[i].load(Ordering::SeqCst));
        let Ok((r, w)) = sys::signal_socket_pair(true, false) else { continue };
        let Ok(w) = crate::fdwin::window().place(w) else {
            sys::close(r);
            continue;
        };
        for &fd in &fds {
            if sys::file_identity(fd).is_some_and(|(m, d, ino)| {
                m & libc::S_IFMT == libc::S_IFSOCK && d == old_dev && ino == old_ino
            }) {
                let flags = sys::fd_flags(fd).unwrap_or(0);
                let status = sys::fd_status_flags(fd).unwrap_or(0);
                sys::replace_fd(
                    r,
                    fd,
                    flags & libc::FD_CLOEXEC != 0,
                    status & libc::O_NONBLOCK != 0,
                );
            }
        }
        if let Some((_, dev, ino)) = sys::file_identity(r) {
            DEVS[i].store(dev, Ordering::SeqCst);
            INODES[i].store(ino, Ordering::SeqCst);
        }
        sys::close(r);
        let parent_w = WRITERS[i].swap(w, Ordering::SeqCst);
        if parent_w >= 0 {
            sys::close(parent_w);
            crate::fdwin::window().closed(parent_w);
        }
    }
}
