//! The `unsafe` operations of network mediation (`syscall::net`, [`crate::guard`],
//! [`crate::policy::audit`]): socket queries and filters on descriptors the runtime holds,
//! descriptor passing over the guard's channel, and the shared statistics page.
//!
//! Each function makes one kind of host call on descriptors and buffers the supervisor owns
//! (a runtime duplicate of a program socket, the guard's channel, a local buffer), never on a
//! program pointer unless its caller validated it (said at each function).

use std::sync::atomic::AtomicU64;

use crate::errno::Errno;
use crate::policy::bpf::Insn;
use crate::policy::endpoint::{SOCKADDR_MAX, SockKind};

fn check(r: libc::c_int) -> Result<libc::c_int, Errno> {
    if r < 0 { Err(Errno::last()) } else { Ok(r) }
}

fn check_size(r: isize) -> Result<usize, Errno> {
    if r < 0 { Err(Errno::last()) } else { Ok(r as usize) }
}

/// Writes all of `buf` to `fd` (retrying short writes and `EINTR`; other errors drop the
/// rest: an audit line that cannot be written must not stop the program's call).
pub fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: `buf` is a live local slice; `fd` is the caller's.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n > 0 {
            buf = &buf[n as usize..];
        } else if n < 0 && Errno::last() == Errno(libc::EINTR) {
            continue;
        } else {
            return;
        }
    }
}

/// `n` counters in a shared anonymous mapping (so a forked child counts into the same ones),
/// mapped for the rest of the process's life; `None` if the mapping fails.
pub fn shared_counters(n: usize) -> Option<&'static [AtomicU64]> {
    let len = (n * 8).next_multiple_of(4096);
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    // SAFETY: a new anonymous mapping where the kernel chooses (the program range is reserved,
    // so never there); nothing else refers to it.
    let p = unsafe {
        libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0)
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the mapping is `len >= n * 8` bytes of zeroed, page-aligned memory, never
    // unmapped; zero is a valid AtomicU64 and atomics may be shared between threads.
    Some(unsafe { std::slice::from_raw_parts(p.cast::<AtomicU64>(), n) })
}

fn sockopt_int(fd: i32, level: i32, name: i32) -> Result<i32, Errno> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are local and sized for an int option.
    check(unsafe { libc::getsockopt(fd, level, name, (&raw mut v).cast(), &mut len) })?;
    Ok(v)
}

/// The domain, type and protocol of socket `fd` (`SO_DOMAIN`, `SO_TYPE`, `SO_PROTOCOL`).
/// Errors: `ENOTSOCK`, `EBADF`.
pub fn socket_kind(fd: i32) -> Result<SockKind, Errno> {
    Ok(SockKind {
        domain: sockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)?,
        ty: sockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE)?,
        protocol: sockopt_int(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL)?,
    })
}

fn name_of(fd: i32, peer: bool) -> Result<Vec<u8>, Errno> {
    let mut buf = [0u8; SOCKADDR_MAX];
    let mut len = SOCKADDR_MAX as libc::socklen_t;
    // SAFETY: `buf` and `len` are local; the kernel writes at most `len` bytes.
    let r = unsafe {
        if peer {
            libc::getpeername(fd, buf.as_mut_ptr().cast(), &mut len)
        } else {
            libc::getsockname(fd, buf.as_mut_ptr().cast(), &mut len)
        }
    };
    check(r)?;
    Ok(buf[..(len as usize).min(SOCKADDR_MAX)].to_vec())
}

/// The local address of socket `fd` (`getsockname`).
pub fn sockname(fd: i32) -> Result<Vec<u8>, Errno> {
    name_of(fd, false)
}

/// The peer address of socket `fd` (`getpeername`); `ENOTCONN` when it has none.
pub fn peername(fd: i32) -> Result<Vec<u8>, Errno> {
    name_of(fd, true)
}

/// Attaches the classic BPF program `prog` to socket `fd` (`SO_ATTACH_FILTER`).
pub fn attach_filter(fd: i32, prog: &[Insn]) -> Result<(), Errno> {
    #[repr(C)]
    struct Fprog {
        len: u16,
        filter: *const Insn,
    }
    let f = Fprog { len: prog.len() as u16, filter: prog.as_ptr() };
    let size = std::mem::size_of::<Fprog>() as libc::socklen_t;
    // SAFETY: `f` describes `prog`, alive across the call; the kernel copies the program.
    check(unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, (&raw const f).cast(), size)
    })?;
    Ok(())
}

/// `openat(AT_FDCWD, path, O_PATH | O_CLOEXEC)`: a handle on what `path` names (resolved
/// against the working directory, symlinks followed) that opens nothing. The descriptor lands
/// at the program's lowest free number; the caller moves it into the runtime's window.
pub fn open_path(path: &[u8]) -> Result<i32, Errno> {
    let c = std::ffi::CString::new(path).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `c` is a NUL-terminated local string.
    check(unsafe { libc::openat(libc::AT_FDCWD, c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) })
}

/// What descriptor `fd` is open on, as `/proc/self/fd/N` shows it (an absolute path).
pub fn fd_path(fd: i32) -> Result<Vec<u8>, Errno> {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|p| p.into_os_string().into_encoded_bytes())
        .map_err(|e| Errno::from_io(&e))
}

/// A connected pair of `SOCK_SEQPACKET` unix sockets, close-on-exec.
pub fn seqpacket_pair() -> Result<(i32, i32), Errno> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a local array of two ints.
    check(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    Ok((fds[0], fds[1]))
}

/// Gives the calling thread a descriptor table of its own (`unshare(CLONE_FILES)`), then
/// closes every descriptor in it but those of `keep`: the thread's descriptors are then in no
/// table the program can name, and it holds none of the program's files open.
pub fn private_table_keeping(keep: &[i32]) -> Result<(), Errno> {
    // SAFETY: unshare(CLONE_FILES) only affects the calling thread's descriptor table.
    check(unsafe { libc::unshare(libc::CLONE_FILES) })?;
    let mut keep: Vec<u32> = keep.iter().filter_map(|&f| u32::try_from(f).ok()).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from = 0u32;
    for k in keep.into_iter().chain([u32::MAX]) {
        if k > from {
            // SAFETY: close_range on the thread's own (now private) table; kept numbers stay.
            unsafe { libc::syscall(libc::SYS_close_range, from, k - 1, 0u32) };
        }
        from = k.saturating_add(1);
    }
    Ok(())
}

/// Sends `bytes` over unix socket `sock` with descriptors `fds` (`SCM_RIGHTS`).
pub fn send_with_fds(sock: i32, bytes: &[u8], fds: &[i32]) -> Result<(), Errno> {
    let mut iov = libc::iovec { iov_base: bytes.as_ptr() as *mut _, iov_len: bytes.len() };
    let space = if fds.is_empty() { 0 } else { cmsg_space(fds.len() * 4) };
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: a zeroed msghdr is valid; every pointer set below is to a live local.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    if !fds.is_empty() {
        hdr.msg_control = control.as_mut_ptr().cast();
        hdr.msg_controllen = space;
        // SAFETY: the control buffer holds one header and `fds.len()` ints (cmsg_space).
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&hdr);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN((fds.len() * 4) as u32) as usize;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr(),
                libc::CMSG_DATA(c).cast::<i32>(),
                fds.len(),
            );
        }
    }
    loop {
        // SAFETY: `hdr` describes local buffers alive across the call.
        let r = unsafe { libc::sendmsg(sock, &hdr, libc::MSG_NOSIGNAL) };
        if r >= 0 {
            return Ok(());
        }
        if Errno::last() != Errno(libc::EINTR) {
            return Err(Errno::last());
        }
    }
}

fn cmsg_space(data: usize) -> usize {
    // SAFETY: CMSG_SPACE is arithmetic.
    unsafe { libc::CMSG_SPACE(data as u32) as usize }
}

/// Receives one message from unix socket `sock` into `buf` with at most `max_fds`
/// descriptors (installed close-on-exec with `cloexec`). Returns the length, the descriptors
/// in order, and whether some were lost (`MSG_CTRUNC`: the table was full). `EINTR` is
/// returned as it is (the caller decides).
pub fn recv_with_fds(
    sock: i32,
    buf: &mut [u8],
    max_fds: usize,
    cloexec: bool,
) -> Result<(usize, Vec<i32>, bool), Errno> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let space = cmsg_space(max_fds.max(1) * 4);
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: a zeroed msghdr is valid; pointers set below are to live locals.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = control.as_mut_ptr().cast();
    hdr.msg_controllen = space;
    let flags = if cloexec { libc::MSG_CMSG_CLOEXEC } else { 0 };
    // SAFETY: `hdr` describes local buffers alive across the call.
    let n = check_size(unsafe { libc::recvmsg(sock, &mut hdr, flags) })?;
    let mut fds = Vec::new();
    // SAFETY: walking the control buffer the kernel filled, within `msg_controllen`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&hdr);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*c).cmsg_len - libc::CMSG_LEN(0) as usize) / 4;
                let data = libc::CMSG_DATA(c).cast::<i32>();
                for i in 0..count {
                    fds.push(data.add(i).read_unaligned());
                }
            }
            c = libc::CMSG_NXTHDR(&hdr, c);
        }
    }
    Ok((n, fds, hdr.msg_flags & libc::MSG_CTRUNC != 0))
}

/// `accept4(fd, addr, len, flags)` into a local address buffer: the new descriptor and the
/// peer's address.
pub fn accept4(fd: i32, flags: i32) -> Result<(i32, Vec<u8>), Errno> {
    let mut buf = [0u8; SOCKADDR_MAX];
    let mut len = SOCKADDR_MAX as libc::socklen_t;
    // SAFETY: `buf` and `len` are local; `fd` is the caller's.
    let r = check(unsafe { libc::accept4(fd, buf.as_mut_ptr().cast(), &mut len, flags) })?;
    Ok((r, buf[..(len as usize).min(SOCKADDR_MAX)].to_vec()))
}

/// `socket(domain, ty, protocol)`.
pub fn socket(domain: i32, ty: i32, protocol: i32) -> Result<i32, Errno> {
    // SAFETY: creates a descriptor; no memory involved.
    check(unsafe { libc::socket(domain, ty, protocol) })
}

/// What [`recvmsg_checked`] received.
#[derive(Debug)]
pub struct Received {
    /// The data length.
    pub len: usize,
    /// The sender's address (empty unless asked for).
    pub name: Vec<u8>,
    /// The control data.
    pub control: Vec<u8>,
    /// `msg_flags`.
    pub flags: i32,
}

/// `recvmsg(fd, ...)` into the program buffers `iov`, each checked here to lie in `range`
/// (the program range), with a local name buffer of `name_cap` bytes (at most
/// [`SOCKADDR_MAX`]) and control buffer of `control_cap` bytes. Errors: `EFAULT` for a buffer
/// outside the range, the kernel's.
pub fn recvmsg_checked(
    fd: i32,
    range: &std::ops::Range<u64>,
    iov: &[libc::iovec],
    name_cap: usize,
    control_cap: usize,
    flags: i32,
) -> Result<Received, Errno> {
    for v in iov {
        crate::uaccess::check(range, v.iov_base as u64, v.iov_len as u64)?;
    }
    let mut iov = iov.to_vec();
    let mut name = [0u8; SOCKADDR_MAX];
    let mut control = vec![0u64; control_cap.div_ceil(8)];
    // SAFETY: a zeroed msghdr is valid.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = iov.as_mut_ptr();
    hdr.msg_iovlen = iov.len();
    if name_cap > 0 {
        hdr.msg_name = name.as_mut_ptr().cast();
        hdr.msg_namelen = name_cap.min(SOCKADDR_MAX) as u32;
    }
    if control_cap > 0 {
        hdr.msg_control = control.as_mut_ptr().cast();
        hdr.msg_controllen = control_cap;
    }
    // SAFETY: the name and control buffers are locals alive across the call; every iovec was
    // checked above to lie in the program range, which holds only program memory.
    let n = check_size(unsafe { libc::recvmsg(fd, &mut hdr, flags) })?;
    let clen = hdr.msg_controllen.min(control_cap);
    // SAFETY: `control` is at least `control_cap >= clen` bytes, zeroed then filled.
    let ctl = unsafe { std::slice::from_raw_parts(control.as_ptr().cast::<u8>(), clen) }.to_vec();
    let nlen = if name_cap > 0 { (hdr.msg_namelen as usize).min(SOCKADDR_MAX) } else { 0 };
    Ok(Received { len: n, name: name[..nlen].to_vec(), control: ctl, flags: hdr.msg_flags })
}

/// Waits for `fd` to be readable, through [`crate::sys::syscall6`]: inside
/// [`crate::sys::cancellable`] this wait is the call's cancellation point (`NOT_STARTED` when a
/// signal arrived first). Errors: `EINTR`, `NOT_STARTED`, poll's own.
pub fn wait_readable(fd: i32) -> Result<(), Errno> {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one local pollfd, alive across the call.
    unsafe { crate::sys::syscall6(libc::SYS_poll, [(&raw mut p) as u64, 1, -1i64 as u64, 0, 0, 0]) }
        .map(|_| ())
}

/// Waits up to `ms` milliseconds for `fd` to be readable; whether it is.
pub fn readable(fd: i32, ms: i32) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one local pollfd.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

/// Unblocks only `sig` in the calling thread (all others blocked).
pub fn only_signal(sig: i32) {
    // SAFETY: sigset operations on a local set; only this thread's mask changes.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigdelset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Where a bound pathname unix socket's file is: `(st_dev, st_ino)` of the inode `bind`
/// created, as `sock_diag(7)` reports it (`UDIAG_SHOW_VFS`, `net/unix/diag.c`: the inode
/// number's low 32 bits, and the kernel's `dev_t`, `MAJOR << 20 | MINOR`, returned here as
/// `stat` encodes it). `sock_ino` is the socket's own inode (`fstat` of the socket descriptor, in sockfs).
/// `None` for a socket with no file (not bound, or abstract). The netlink socket is made
/// through the runtime's window. Errors: `ENOENT` for no such socket or where the kernel has
/// no unix `sock_diag` (`CONFIG_UNIX_DIAG`), the kernel's.
pub fn unix_bound_file(sock_ino: u64) -> Result<Option<(u64, u32)>, Errno> {
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const UDIAG_SHOW_VFS: u32 = 0x2;
    const UNIX_DIAG_VFS: u16 = 1;
    let win = crate::fdwin::window();
    let nl = {
        let _gate = win.creating();
        let fd = socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 4)?;
        win.adopt(fd).map_err(|e| Errno::from_io(&e))?
    };
    // struct nlmsghdr (16) + struct unix_diag_req (24).
    let mut req = [0u8; 40];
    req[0..4].copy_from_slice(&40u32.to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    req[16] = libc::AF_UNIX as u8;
    req[20..24].copy_from_slice(&u32::MAX.to_ne_bytes()); // every state
    req[24..28].copy_from_slice(&(sock_ino as u32).to_ne_bytes());
    req[28..32].copy_from_slice(&UDIAG_SHOW_VFS.to_ne_bytes());
    req[32..40].copy_from_slice(&[0xff; 8]); // INET_DIAG_NOCOOKIE
    // SAFETY: `req` is a local buffer of its stated length; `nl` is the runtime's socket.
    check_size(unsafe { libc::send(nl.raw(), req.as_ptr().cast(), req.len(), 0) })?;
    let mut buf = [0u8; 512];
    // SAFETY: `buf` is local; the kernel writes at most its length.
    let n = check_size(unsafe { libc::recv(nl.raw(), buf.as_mut_ptr().cast(), buf.len(), 0) })?;
    let b = &buf[..n];
    let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    let u32_at = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    if n < 16 {
        return Err(Errno(libc::EIO));
    }
    if u16_at(4) == libc::NLMSG_ERROR as u16 {
        let e = if n >= 20 { -(u32_at(16) as i32) } else { libc::EIO };
        return Err(Errno(if e > 0 { e } else { libc::EIO }));
    }
    // struct unix_diag_msg is 16 bytes; its attributes follow, each 4-aligned.
    let end = (u32_at(0) as usize).min(n);
    let mut i = 32;
    while i + 4 <= end {
        let (len, ty) = (u16_at(i) as usize, u16_at(i + 2));
        if len < 4 || i + len > end {
            break;
        }
        if ty == UNIX_DIAG_VFS && len >= 12 {
            let dev = u32_at(i + 8);
            return Ok(Some((libc::makedev(dev >> 20, dev & 0xf_ffff), u32_at(i + 4))));
        }
        i += (len + 3) & !3;
    }
    Ok(None)
}

/// Whether the host kernel answers [`unix_bound_file`] (probed once, on an unbound socket of
/// the runtime's, which it must report without a file).
pub fn unix_diag_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let win = crate::fdwin::window();
        let probe = {
            let _gate = win.creating();
            match socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) {
                Ok(fd) => win.adopt(fd).ok(),
                Err(_) => None,
            }
        };
        probe.is_some_and(|p| {
            crate::sys::fstat(p.raw()).is_ok_and(|st| unix_bound_file(st.st_ino) == Ok(None))
        })
    })
}
