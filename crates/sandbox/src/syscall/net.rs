//! Socket calls: `socket`, `socketpair`, `bind`, `connect`, `listen`, `accept`, `accept4`,
//! `sendto`, `sendmsg`, `sendmmsg`, `recvmsg`, `recvmmsg` (`recvfrom`, `shutdown`,
//! `getsockname`, `getpeername` are forwarded by the table; socket options are in
//! `syscall::sockopt`).
//!
//! Under a policy that does not mediate the network (null, `--net=host`) each call is
//! validated and forwarded exactly as the table would ([`super::forward`]). Under a firewall:
//!
//! 1. the program's socket is **pinned**: a private duplicate in the runtime's window, whose
//!    kind (`SO_DOMAIN`, `SO_TYPE`, `SO_PROTOCOL`) is read from the duplicate and on which the
//!    call is made, so another thread cannot `dup2` a different socket over the number between
//!    the decision and the call;
//! 2. the address is **copied** once ([`crate::uaccess::sockaddr`]) and **decoded** from that
//!    copy as the kernel will read it for that socket ([`crate::policy::endpoint::decode`]):
//!    canonical IP addresses, the unspecified address as Linux resolves it, unix paths
//!    resolved against the working directory with symlinks followed;
//! 3. the policy **decides** ([`crate::policy::Engine::decide`]); a denial is audited and
//!    returned, nothing is called;
//! 4. the kernel gets **the copy that was decided on**. A unix path to connect or send to is
//!    opened with `O_PATH` first and the kernel is given `/proc/self/fd/N` of that handle:
//!    it reaches the very socket file that was decided on, whatever is renamed or replaced
//!    meanwhile.
//!
//! Implicit binds are binds: `listen` on an unbound socket is decided as a `bind` of port 0
//! first. A stream socket's `sendto`/`sendmsg` with an address (`MSG_FASTOPEN`) is a connect.
//! `sendmmsg` decides every message's address: the messages before the first denied one are
//! sent, as the kernel does when a later message fails. TCP `accept` and UDP sockets go
//! through [`crate::guard`]; control data that would source-route a packet is refused.

use std::ffi::CString;
use std::net::IpAddr;

use super::{Ctx, check_fd, copy_in, copy_out, paths, read_u32};
use crate::errno::Errno;
use crate::fdwin::RuntimeFd;
use crate::policy::endpoint::{self, AF_UNIX, Decoded, Endpoint, Op, SockKind, Transport};
use crate::policy::firewall::Request;
use crate::policy::fs::Need;
use crate::policy::{Caller, audit};
use crate::process::Process;
use crate::sys::{self, SysResult};
use crate::sys_net;
use crate::uaccess::sockaddr::{self, SockAddr};

/// Calls the host kernel with already-validated arguments.
#[allow(unsafe_code)]
fn host(nr: i64, a: [u64; 6]) -> SysResult {
    // SAFETY: every caller in this module validated each pointer (program range or a
    // supervisor copy kept alive across the call) and each descriptor (not the runtime's, or
    // the runtime's pinned duplicate of a checked program descriptor) before calling.
    unsafe { sys::syscall6(nr, a) }
}

/// The call as the table describes it, validated and forwarded (the null policy's path).
fn forward(proc: &Process, nr: u64, a: &[u64; 6]) -> SysResult {
    let spec = super::spec(nr).ok_or(Errno::ENOSYS)?;
    super::forward_as(proc, nr, spec, *a, None)
}

/// The calling program thread.
fn caller(ctx: &Ctx<'_>) -> Caller {
    Caller { pid: crate::sys::pid(), tid: ctx.thread.tid }
}

/// A program socket pinned for a decision (see the module documentation).
struct Pinned {
    dup: RuntimeFd,
    kind: SockKind,
}

impl Pinned {
    fn fd(&self) -> u64 {
        self.dup.raw() as u64
    }
}

fn pin(proc: &Process, fd: u64) -> Result<Pinned, Errno> {
    check_fd(proc, fd)?;
    let dup = crate::fdwin::window().duplicate(fd as i32).map_err(|e| match e.raw_os_error() {
        Some(libc::EMFILE) => Errno(libc::ENOBUFS),
        _ => Errno::from_io(&e),
    })?;
    let kind = sys_net::socket_kind(dup.raw())?;
    Ok(Pinned { dup, kind })
}

/// `path` made absolute against the working directory (the program's: it is this
/// process's), `.` and `..` resolved lexically.
fn lexical(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let cwd;
    if path.first() != Some(&b'/') {
        cwd = std::env::current_dir()
            .map(|p| p.into_os_string().into_encoded_bytes())
            .unwrap_or_default();
        parts.extend(cwd.split(|&b| b == b'/').filter(|c| !c.is_empty()));
    }
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::new();
    for p in parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// An `O_PATH` handle on `path`, in the runtime's window. The kernel creates it at the
/// program's lowest free number: the window's gate is held from the open to the move
/// ([`crate::fdwin::FdWindow::creating`]), so no program thread can duplicate it meanwhile.
fn path_handle(path: &[u8]) -> Result<RuntimeFd, Errno> {
    let win = crate::fdwin::window();
    let _gate = win.creating();
    let fd = sys_net::open_path(path)?;
    win.adopt(fd).map_err(|e| Errno::from_io(&e))
}

/// The socket path `path` names for a connect or send: resolved (symlinks followed) when it
/// exists, with a handle on it whose `/proc/self/fd/N` name the kernel gets instead; else the
/// lexical path and the error opening it gave.
fn resolve_unix_target(path: &[u8]) -> (Vec<u8>, Result<RuntimeFd, Errno>) {
    let handle = path_handle(path);
    match handle {
        Ok(h) => match sys_net::fd_path(h.raw()) {
            Ok(real) => (real, Ok(h)),
            Err(e) => (lexical(path), Err(e)),
        },
        Err(e) => (lexical(path), Err(e)),
    }
}

/// The socket path `path` names for a bind: its directory resolved, then the name.
fn resolve_unix_bind(path: &[u8]) -> Vec<u8> {
    let (dir, name) = match path.iter().rposition(|&b| b == b'/') {
        Some(0) => (&b"/"[..], &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&b"."[..], path),
    };
    let resolved = path_handle(dir).ok().and_then(|h| sys_net::fd_path(h.raw()).ok());
    match resolved {
        Some(mut d) => {
            if d != b"/" {
                d.push(b'/');
            }
            d.extend_from_slice(name);
            d
        }
        None => lexical(path),
    }
}

/// A `sockaddr_un` naming `/proc/self/fd/N`.
fn proc_fd_addr(fd: i32) -> SockAddr {
    let mut b = (AF_UNIX as u16).to_ne_bytes().to_vec();
    b.extend_from_slice(format!("/proc/self/fd/{fd}").as_bytes());
    b.push(0);
    SockAddr::from_bytes(&b)
}

fn bound_ip(fd: i32) -> Option<IpAddr> {
    sys_net::sockname(fd).ok().and_then(|b| endpoint::ip_of(&b)).map(|(ip, _)| ip)
}

/// What a decision keeps alive until the call is made: handles whose `/proc/self/fd/N` names
/// the kernel gets, and a bind's checked directory (to verify the bind afterwards).
#[derive(Default)]
struct Held {
    fds: Vec<RuntimeFd>,
    bind: Option<paths::Resolved>,
    /// Whether a bind may be given the program's string: the namespace lock is held across
    /// every process that could change its path ([`crate::nslock`]).
    string_safe: bool,
}

/// Decides `op` (of call `syscall`) on the address `sa` for the pinned socket `p`: `Err` with
/// the errno to return. May replace `sa` by what the kernel must get instead (a unix path's
/// handle, kept alive in `keep` until after the call). Without a firewall only unix paths
/// under filesystem rules are decided.
fn decide_addr(
    ctx: &Ctx<'_>,
    syscall: &str,
    p: &Pinned,
    op: Op,
    sa: &mut SockAddr,
    keep: &mut Held,
) -> Result<(), Errno> {
    let engine = &ctx.proc().policy;
    let ep = match endpoint::decode(&p.kind, op, sa.bytes()) {
        Decoded::Refuse(e) => return Err(e),
        Decoded::Nothing => return Ok(()),
        Decoded::Opaque => return engine.decide_socket(caller(ctx), syscall, &p.kind),
        Decoded::Reach(ep) => ep,
    };
    let ep = match ep {
        Endpoint::Ip(ip, port) if ip.is_unspecified() && matches!(op, Op::Connect | Op::Send) => {
            Endpoint::Ip(endpoint::unspecified_destination(ip, bound_ip(p.dup.raw())), port)
        }
        Endpoint::UnixPath(path) if paths::mediated(ctx.proc()) => {
            unix_by_rules(ctx, syscall, op, &path, sa, keep)?
        }
        Endpoint::UnixPath(path) if op == Op::Bind => Endpoint::UnixPath(resolve_unix_bind(&path)),
        Endpoint::UnixPath(path) => {
            // A path that cannot be opened reaches nothing: the kernel would fail the same way
            // (ENOENT, EACCES, ENOTDIR, ELOOP), so that error is the call's.
            let (resolved, handle) = resolve_unix_target(&path);
            let h = handle?;
            *sa = proc_fd_addr(h.raw());
            keep.fds.push(h);
            Endpoint::UnixPath(resolved)
        }
        ep if crate::policy::is_kernel_netlink(&ep) => return Ok(()),
        ep => ep,
    };
    if !engine.mediates_network() {
        return Ok(());
    }
    let req = Request {
        op,
        transport: p.kind.transport(),
        endpoint: &ep,
        local_port: None,
        datagram: p.kind.datagram(),
    };
    engine.decide(caller(ctx), syscall, &req)
}

/// A pathname unix socket under filesystem rules, which decide it as the file it is: a bind
/// creates an entry (`Need::Write` on the new path, resolved through its pinned parent, as
/// `mknod`), a connect or send needs write access to the socket file (Linux's own check,
/// `unix_find_bsd`: `MAY_WRITE`), decided on the file the path resolves to, symlinks
/// followed, which the kernel then reaches through `/proc/self/fd/N` of the handle (the
/// peer's address the program sees is the socket's own, whatever path reached it).
///
/// A bind is given the program's own string (with the private `/tmp` put in), so that the
/// address the socket reports (`getsockname`, its peers' `getpeername`, `recvfrom`) is the
/// program's. The string is resolved by the kernel again, so the caller holds the namespace
/// lock ([`crate::nslock`]) from before this decision to the end of the bind: no process of
/// the sandbox can meanwhile turn a directory of the path into a symlink or change the
/// working directory. The bind is verified after the call too ([`verify_bound`]).
fn unix_by_rules(
    ctx: &Ctx<'_>,
    syscall: &str,
    op: Op,
    path: &[u8],
    sa: &mut SockAddr,
    keep: &mut Held,
) -> Result<Endpoint, Errno> {
    let c = CString::new(path).map_err(|_| Errno::EINVAL)?;
    if op != Op::Bind {
        // Linux's connect never fails with EROFS (a socket on a read-only mount is reached).
        let r = paths::object(ctx, syscall, libc::AT_FDCWD as u64, &c, false, Need::Write)
            .map_err(|e| if e == Errno(libc::EROFS) { Errno::EACCES } else { e })?;
        *sa = proc_fd_addr(r.probe.raw());
        keep.fds.push(r.probe);
        return Ok(Endpoint::UnixPath(r.path));
    }
    let r = paths::entry(ctx, syscall, libc::AT_FDCWD as u64, &c, Need::Write)?;
    let mut kernel = paths::redirect(ctx.proc(), &c).into_bytes();
    // The lock covers what can change a path's directories, not the descriptor table: a
    // directory part that goes through a symlink (which may lead through a magic link such as
    // /proc/self/fd/N, which a dup2 changes) gets the pinned directory instead, at the cost of
    // the address it reports (/proc/self/fd/N/NAME).
    // A bare name is resolved in the working directory alone, which only the sandbox's own
    // processes can change (chdir, under the lock); a path with directories may have them
    // changed by any sandbox sharing them, so it needs the lock to cover them all.
    let dir_of = |p: &[u8]| fs_parent(p).to_vec();
    let bare = !kernel.contains(&b'/');
    let covered = keep.string_safe && (bare || crate::nslock::covers_other_sandboxes());
    if !covered || dir_of(&lexical(&kernel)) != dir_of(&r.path) {
        kernel = r.kernel.as_bytes().to_vec();
    }
    if kernel != path {
        *sa = unix_addr(&kernel)?;
    }
    let ep = Endpoint::UnixPath(r.path.clone());
    keep.bind = Some(r);
    Ok(ep)
}

/// The directory part of absolute path `p` (`/` for the root's entries).
fn fs_parent(p: &[u8]) -> &[u8] {
    crate::policy::fs::parent(p).unwrap_or(b"/")
}

/// A `sockaddr_un` naming `path`; `ENAMETOOLONG` when it does not fit in `sun_path` (as
/// happens only where the private `/tmp` lengthened the program's path).
fn unix_addr(path: &[u8]) -> Result<SockAddr, Errno> {
    if path.len() >= 108 {
        return Err(Errno(libc::ENAMETOOLONG));
    }
    let mut b = (AF_UNIX as u16).to_ne_bytes().to_vec();
    b.extend_from_slice(path);
    b.push(0);
    Ok(SockAddr::from_bytes(&b))
}

/// After a bind by the program's string: the socket's file (where the kernel put it) must be
/// the entry `r.name` of the pinned directory `r.probe` the rules allowed, and its only link.
/// The namespace lock keeps the sandbox's own processes from changing the path meanwhile; a
/// mismatch means something else did (another sandbox sharing a writable directory), and the
/// socket's file now lies where the rules do not let the program make one: the socket cannot
/// be unbound, and other processes of the program may hold it, so the sandbox ends, every
/// process of it, as it would of a fatal signal (fails closed; Landlock, where the host has it,
/// refuses such a bind in the kernel already). Not checked where the kernel cannot say where a
/// socket's file is (no unix `sock_diag`).
fn verify_bound(sock: i32, r: &paths::Resolved) {
    if !sys_net::unix_diag_available() {
        return;
    }
    let ok = (|| -> Result<bool, Errno> {
        let st = sys::fstat(sock)?;
        let Some((dev, ino)) = sys_net::unix_bound_file(st.st_ino)? else { return Ok(false) };
        let name = r.name.as_ref().ok_or(Errno::EINVAL)?;
        let n = name.to_bytes();
        let end = n.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
        let bare = CString::new(&n[..end]).map_err(|_| Errno::EINVAL)?;
        let f = sys::fstatat_nofollow(r.probe.raw(), &bare)?;
        Ok(f.st_mode & libc::S_IFMT == libc::S_IFSOCK
            && f.st_dev == dev
            && f.st_ino as u32 == ino
            && f.st_nlink == 1)
    })();
    if ok != Ok(true) {
        tracing::error!(?ok, path = %String::from_utf8_lossy(&r.path), "unix bind outside its decided directory");
        crate::sys_net::write_all(
            2,
            b"sandbox: a unix socket was bound outside the directory its path was decided on \
              (a directory of the path changed during the bind); ending the sandbox\n",
        );
        for pid in crate::family::members() {
            if pid != std::process::id() as i32 {
                sys::kill_process(pid, libc::SIGKILL);
            }
        }
        crate::end_private_tmp_now();
        sys::die_by_signal(libc::SIGKILL, false);
        sys::exit_now(128 + libc::SIGKILL);
    }
}

/// `socket(domain, type, protocol)`: kinds the firewall cannot reason about are refused
/// unless a socket rule names them; UDP sockets are made by the guard, filter attached.
pub fn socket(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let proc = ctx.proc();
    if !proc.policy.mediates_network() {
        return forward(proc, 41, a);
    }
    let kind = SockKind { domain: a[0] as i32, ty: a[1] as i32 & 0xf, protocol: a[2] as i32 };
    proc.policy.decide_socket(caller(ctx), "socket", &kind)?;
    if kind.transport() == Transport::Udp {
        return crate::guard::socket(proc, ctx.thread.tid, kind.domain, a[1] as i32, kind.protocol);
    }
    host(libc::SYS_socket, [a[0], a[1], a[2], 0, 0, 0])
}

/// `socketpair`: unix pairs reach nothing; other families as `socket` decides.
pub fn socketpair(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let proc = ctx.proc();
    if proc.policy.mediates_network() && a[0] as i32 != AF_UNIX {
        let kind = SockKind { domain: a[0] as i32, ty: a[1] as i32 & 0xf, protocol: a[2] as i32 };
        proc.policy.decide_socket(caller(ctx), "socketpair", &kind)?;
    }
    forward(proc, 53, a)
}

/// Whether the process's policy decides socket addresses: a firewall, or filesystem rules
/// (which decide pathname unix sockets).
fn screens(proc: &Process) -> bool {
    proc.policy.mediates_network() || paths::mediated(proc)
}

/// Whether `sa` is decided: always under a firewall; under filesystem rules alone, only a
/// pathname unix address.
fn screened(proc: &Process, sa: &[u8]) -> bool {
    proc.policy.mediates_network() || endpoint::unix_path_of(sa).is_some()
}

/// `bind`, `connect`: the address decided on and handed over as copied.
fn addressed(ctx: &mut Ctx<'_>, nr: u64, syscall: &str, op: Op, a: &[u64; 6]) -> SysResult {
    let proc = ctx.proc();
    let screens = screens(proc);
    if !screens && op != Op::Connect {
        return forward(proc, nr, a);
    }
    // Decided on a copy, which is what the host gets.
    let mut sa = sockaddr::copy_in(proc, a[1], a[2])?;
    if op == Op::Connect && runtime_channel(sa.bytes()) {
        return Err(Errno(libc::ECONNREFUSED));
    }
    if !screens || !screened(proc, sa.bytes()) {
        check_fd(proc, a[0])?;
        return host(nr as i64, [a[0], sa.as_ptr(), sa.len() as u64, 0, 0, 0]);
    }
    // A bind by path under filesystem rules: decided and made while no process of the sandbox
    // can change where the path leads (see unix_by_rules).
    let by_path = op == Op::Bind && paths::mediated(proc);
    let ns =
        (by_path && endpoint::unix_path_of(sa.bytes()).is_some()).then(crate::nslock::exclusive);
    let p = pin(proc, a[0])?;
    let string_safe = ns.as_ref().is_some_and(|g| g.held);
    let mut keep = Held { string_safe, ..Held::default() };
    decide_addr(ctx, syscall, &p, op, &mut sa, &mut keep)?;
    let r = host(nr as i64, [p.fd(), sa.as_ptr(), sa.len() as u64, 0, 0, 0]);
    if r.is_ok()
        && let Some(b) = &keep.bind
    {
        verify_bound(p.dup.raw(), b);
    }
    drop((keep, ns));
    r
}

/// Whether `sa` names a sandbox's own channel (an abstract unix name below `dune-sandbox/`,
/// such as another sandbox's checkpoint channel): no program, whatever its policy, may
/// connect to one (it would have that sandbox's unrestricted supervisor write an image where
/// the program says, or stop it).
fn runtime_channel(sa: &[u8]) -> bool {
    const PREFIX: &[u8] = b"dune-sandbox/";
    sa.len() >= 3 + PREFIX.len()
        && u16::from_ne_bytes([sa[0], sa[1]]) == AF_UNIX as u16
        && sa[2] == 0
        && sa[3..].starts_with(PREFIX)
}

/// `bind(fd, addr, len)`.
pub fn bind(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    addressed(ctx, 49, "bind", Op::Bind, a)
}

/// `connect(fd, addr, len)`.
pub fn connect(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    addressed(ctx, 42, "connect", Op::Connect, a)
}

/// `getsockname`/`getpeername` (call `nr`): a pathname unix address in the run's private
/// `/tmp` is reported as the program named it (`/tmp/...`), as `getcwd` reports the working
/// directory; the value-result length as the kernel's `move_addr_to_user` gives it (the
/// whole length, the address cut to the program's buffer).
fn socket_name(ctx: &mut Ctx<'_>, nr: u64, a: &[u64; 6]) -> SysResult {
    let proc = ctx.proc();
    if proc.policy.redirects().dirs.is_empty() {
        return forward(proc, nr, a);
    }
    check_fd(proc, a[0])?;
    let cap = read_u32(proc, a[2])?;
    if (cap as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let name =
        if nr == 51 { sys_net::sockname(a[0] as i32)? } else { sys_net::peername(a[0] as i32)? };
    deliver_name(proc, a[1], cap, a[2], &unredirected_name(proc, name))?;
    Ok(0)
}

/// Runs `call`, which writes an address to the program's `name` with its value-result length
/// at `len` (`accept`, `recvfrom`), and then reports a pathname unix address in the private
/// `/tmp` as the program named it (as [`socket_name`]). Nothing more without a private `/tmp`.
fn names_unredirected(
    ctx: &mut Ctx<'_>,
    name: u64,
    len: u64,
    call: impl FnOnce(&mut Ctx<'_>) -> SysResult,
) -> SysResult {
    let proc = ctx.proc();
    if proc.policy.redirects().dirs.is_empty() || name == 0 || len == 0 {
        return call(ctx);
    }
    let cap = read_u32(proc, len).ok();
    let r = call(ctx)?;
    if let Some(cap) = cap {
        let _ = unredirect_in_place(ctx.proc(), name, cap, len);
    }
    Ok(r)
}

/// The address the kernel wrote at the program's `name` (length at `len`, buffer of `cap`
/// bytes) with the private `/tmp` taken out of a pathname unix address. Returns the length.
fn unredirect_in_place(proc: &Process, name: u64, cap: u32, len: u64) -> Result<u32, Errno> {
    let n = read_u32(proc, len)?;
    if n > cap || n as usize > SOCKADDR_MAX_UNIX {
        return Ok(n);
    }
    let bytes = copy_in(proc, name, u64::from(n))?;
    let Some(path) = endpoint::unix_path_of(&bytes) else { return Ok(n) };
    let Some(u) = proc.policy.unredirect(path) else { return Ok(n) };
    let sa = unix_addr(&u)?;
    copy_out(proc, name, sa.bytes())?;
    copy_out(proc, len, &(sa.len() as u32).to_ne_bytes())?;
    Ok(sa.len() as u32)
}

/// The longest `sockaddr_un`.
const SOCKADDR_MAX_UNIX: usize = 110;

/// A socket address as the program may see it: a pathname unix address in the private
/// `/tmp` as the program named it.
fn unredirected_name(proc: &Process, raw: Vec<u8>) -> Vec<u8> {
    match endpoint::unix_path_of(&raw).and_then(|p| proc.policy.unredirect(p)) {
        Some(u) => unix_addr(&u).map(|sa| sa.bytes().to_vec()).unwrap_or(raw),
        None => raw,
    }
}

/// Copies address `name` to the program's buffer `addr` of `cap` bytes (cut to it) and its
/// whole length to `len`, as the kernel's `move_addr_to_user` does.
fn deliver_name(proc: &Process, addr: u64, cap: u32, len: u64, name: &[u8]) -> Result<(), Errno> {
    let n = name.len().min(cap as usize);
    if n > 0 {
        copy_out(proc, addr, &name[..n])?;
    }
    copy_out(proc, len, &(name.len() as u32).to_ne_bytes())
}

/// `recvfrom(fd, buf, len, flags, addr, addrlen)`: forwarded as the table describes it; with
/// a private `/tmp` the sender's address is received into the supervisor's buffer and given
/// to the program without the host's directory (nor its length).
pub fn recvfrom(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let proc = ctx.proc();
    if proc.policy.redirects().dirs.is_empty() || a[4] == 0 || a[5] == 0 {
        return forward(proc, 45, a);
    }
    check_fd(proc, a[0])?;
    proc.check(a[1], a[2])?;
    let cap = read_u32(proc, a[5])?;
    if (cap as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let mut buf = [0u8; 128];
    let mut blen: u32 = 128;
    let n = host(
        libc::SYS_recvfrom,
        [a[0], a[1], a[2], a[3], buf.as_mut_ptr() as u64, &raw mut blen as u64],
    )?;
    let name = unredirected_name(proc, buf[..(blen as usize).min(128)].to_vec());
    deliver_name(proc, a[4], cap, a[5], &name)?;
    Ok(n)
}

/// `getsockname(fd, addr, addrlen)`.
pub fn getsockname(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    socket_name(ctx, 51, a)
}

/// `getpeername(fd, addr, addrlen)`.
pub fn getpeername(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    socket_name(ctx, 52, a)
}

/// `listen(fd, backlog)`: decided on the socket's local address; an unbound socket's implicit
/// bind (to an ephemeral port of the wildcard address) is decided as a bind of port 0 first.
pub fn listen(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let proc = ctx.proc();
    if !proc.policy.mediates_network() {
        return forward(proc, 50, a);
    }
    let p = pin(proc, a[0])?;
    let engine = &proc.policy;
    let transport = p.kind.transport();
    let local = match transport {
        Transport::Tcp => {
            let name = sys_net::sockname(p.dup.raw())?;
            let Some((ip, port)) = endpoint::ip_of(&name) else { return Err(Errno::EINVAL) };
            let ep = Endpoint::Ip(ip, port);
            if port == 0 {
                let r = Request {
                    op: Op::Bind,
                    transport,
                    endpoint: &ep,
                    local_port: None,
                    datagram: false,
                };
                engine.decide(caller(ctx), "listen", &r)?;
            }
            Some(ep)
        }
        Transport::Unix => {
            let name = sys_net::sockname(p.dup.raw())?;
            match endpoint::decode(&p.kind, Op::Bind, &name) {
                Decoded::Reach(Endpoint::UnixPath(path)) => {
                    Some(Endpoint::UnixPath(lexical(&path)))
                }
                Decoded::Reach(ep @ Endpoint::UnixAbstract(_)) => Some(ep),
                _ => None, // unbound: the kernel refuses with EINVAL
            }
        }
        Transport::Other => {
            engine.decide_socket(caller(ctx), "listen", &p.kind)?;
            None
        }
        _ => None,
    };
    if let Some(ep) = local {
        let r =
            Request { op: Op::Listen, transport, endpoint: &ep, local_port: None, datagram: false };
        engine.decide(caller(ctx), "listen", &r)?;
    }
    host(libc::SYS_listen, [p.fd(), a[1], 0, 0, 0, 0])
}

/// `accept`/`accept4`: a TCP connection's peer is decided on in the guard ([`crate::guard`]),
/// a denied one closed there; the program gets the first allowed connection.
fn accept_common(ctx: &mut Ctx<'_>, nr: u64, a: &[u64; 6], flags: u64) -> SysResult {
    let proc = ctx.proc();
    if !proc.policy.mediates_network() {
        return forward(proc, nr, a);
    }
    let p = pin(proc, a[0])?;
    if p.kind.transport() != Transport::Tcp {
        if p.kind.transport() == Transport::Other {
            proc.policy.decide_socket(
                caller(ctx),
                if nr == 43 { "accept" } else { "accept4" },
                &p.kind,
            )?;
        }
        let spec = super::spec(nr).ok_or(Errno::ENOSYS)?;
        return super::forward_as(proc, nr, spec, *a, Some((0, p.fd())));
    }
    if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) as u64 != 0 {
        return Err(Errno::EINVAL);
    }
    // The program's address buffer: checked before the connection is taken.
    let cap = if a[1] != 0 {
        let n = read_u32(proc, a[2])?;
        if (n as i32) < 0 {
            return Err(Errno::EINVAL);
        }
        proc.check(a[1], u64::from(n))?;
        Some(n)
    } else {
        None
    };
    let local_port =
        sys_net::sockname(p.dup.raw()).ok().and_then(|b| endpoint::ip_of(&b)).map_or(0, |x| x.1);
    let syscall = if nr == 43 { "accept" } else { "accept4" };
    let (fd, peer) =
        crate::guard::accept(proc, ctx.thread.tid, syscall, p.dup.raw(), local_port, flags as i32)?;
    if let Some(cap) = cap {
        let n = peer.len().min(cap as usize);
        let _ = copy_out(proc, a[1], &peer[..n]);
        let _ = copy_out(proc, a[2], &(peer.len() as u32).to_ne_bytes());
    }
    Ok(fd as u64)
}

/// `accept(fd, addr, addrlen)`.
pub fn accept(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    names_unredirected(ctx, a[1], a[2], |ctx| accept_common(ctx, 43, a, 0))
}

/// `accept4(fd, addr, addrlen, flags)`.
pub fn accept4(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    names_unredirected(ctx, a[1], a[2], |ctx| accept_common(ctx, 288, a, a[3]))
}

/// `sendto(fd, buf, len, flags, addr, addrlen)`: with an address, decided (a stream socket's
/// is a connect); without, nothing new is reached and it is forwarded as it is.
pub fn sendto(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let proc = ctx.proc();
    if a[4] == 0 || !screens(proc) {
        return forward(proc, 44, a);
    }
    proc.check(a[1], a[2])?;
    let mut sa = sockaddr::copy_in(proc, a[4], a[5])?;
    if !screened(proc, sa.bytes()) {
        check_fd(proc, a[0])?;
        let len = sa.len() as u64;
        return host(libc::SYS_sendto, [a[0], a[1], a[2], a[3], sa.as_ptr(), len]);
    }
    let p = pin(proc, a[0])?;
    let mut keep = Held::default();
    decide_addr(ctx, "sendto", &p, endpoint::send_op(&p.kind), &mut sa, &mut keep)?;
    let r = host(libc::SYS_sendto, [p.fd(), a[1], a[2], a[3], sa.as_ptr(), sa.len() as u64]);
    drop(keep);
    r
}

// ---------------------------------------------------------------------------------------------
// Messages: the msghdr, its iovec array, its name and its control data copied and validated.

/// A validated copy of a `struct msghdr` (56 bytes on x86-64).
struct Msg {
    hdr: libc::msghdr,
    iov: Vec<libc::iovec>,
    /// The name the kernel reads (sendmsg), boxed so its address stays put.
    name: Option<Box<SockAddr>>,
    control: Vec<u8>,
    /// The private duplicates the copied `SCM_RIGHTS` data names (see [`copy_control`]).
    _fds: Vec<RuntimeFd>,
}

impl Msg {
    /// Replaces the name the kernel reads.
    fn set_name(&mut self, sa: SockAddr) {
        let b = Box::new(sa);
        self.hdr.msg_name = b.as_ptr() as *mut _;
        self.hdr.msg_namelen = b.len() as u32;
        self.name = Some(b);
    }
}

fn copy_msghdr(ctx: &Ctx<'_>, addr: u64, sending: bool) -> Result<Msg, Errno> {
    let m = crate::uaccess::msghdr::read(ctx.proc(), addr)?;
    let iov = crate::uaccess::iovec::copy_iovecs(ctx.proc(), m.iov, m.iovlen)?;
    // A name the kernel reads (sendmsg) is copied; one it writes (recvmsg) is checked.
    let namelen = u64::from(m.namelen).min(128);
    let (name_ptr, name_copy) = if m.name == 0 {
        (0, None)
    } else if sending {
        let b = Box::new(SockAddr::from_bytes(&copy_in(ctx.proc(), m.name, namelen)?));
        (b.as_ptr(), Some(b))
    } else {
        ctx.proc().check(m.name, namelen)?;
        (m.name, None)
    };
    // Control data the kernel reads (sendmsg) is copied and every descriptor passed with
    // SCM_RIGHTS checked; a buffer it writes (recvmsg) is range-checked.
    let mut fds = Vec::new();
    let (control_ptr, control_copy) = if m.control == 0 {
        (0, Vec::new())
    } else if sending {
        let b = copy_control(ctx, m.control, m.controllen, &mut fds)?;
        (b.as_ptr() as u64, b)
    } else {
        ctx.proc().check(m.control, m.controllen)?;
        (m.control, Vec::new())
    };
    let mut hdr: libc::msghdr = empty_msghdr();
    hdr.msg_name = name_ptr as *mut _;
    hdr.msg_namelen = namelen as u32;
    hdr.msg_iov = iov.as_ptr() as *mut _;
    hdr.msg_iovlen = iov.len();
    hdr.msg_control = control_ptr as *mut _;
    hdr.msg_controllen = m.controllen as usize;
    Ok(Msg { hdr, iov, name: name_copy, control: control_copy, _fds: fds })
}

/// The most control data one sent message may carry (the kernel's own limit,
/// `net.core.optmem_max`, defaults to 20 KiB; more gets `ENOBUFS` there too).
const CONTROL_MAX: u64 = 64 << 10;

/// The `(level, type)` of every control message in `buf`, walked as the kernel does.
fn cmsgs(buf: &[u8]) -> Vec<(i32, i32, std::ops::Range<usize>)> {
    let word = |o: usize| i32::from_ne_bytes(buf[o..o + 4].try_into().unwrap());
    let mut out = Vec::new();
    let mut off = 0usize;
    while buf.len() - off >= 16 {
        let len = u64::from_ne_bytes(buf[off..off + 8].try_into().unwrap());
        if len < 16 || len > (buf.len() - off) as u64 {
            break;
        }
        let len = len as usize;
        out.push((word(off + 8), word(off + 12), off + 16..off + len));
        off = match off.checked_add(len.next_multiple_of(8)) {
            Some(next) if next <= buf.len() => next,
            _ => break,
        };
    }
    out
}

/// Copies the control data of a message to be sent, walking its `cmsghdr`s as the kernel does
/// (`__scm_send`, net/core/scm.c: each `cmsg_len` at least the 16-byte header and within the
/// buffer, the next one 8-aligned) and refusing any SCM_RIGHTS descriptor of the runtime's:
/// passing one to a socket the program reads would hand it a new number for the VM or vCPU.
/// Each descriptor passed is replaced in the copy by a private duplicate (kept in `fds` until
/// the call is done), checked by what it is: another program thread cannot `dup2` something
/// else over a number after the check, and a KVM object the program got hold of (a copy
/// taken while a new vCPU's descriptor still had a program number) is refused, as another
/// process could map its `kvm_run` page.
fn copy_control(
    ctx: &Ctx<'_>,
    control: u64,
    controllen: u64,
    fds: &mut Vec<RuntimeFd>,
) -> Result<Vec<u8>, Errno> {
    if controllen > CONTROL_MAX {
        return Err(Errno(libc::ENOBUFS));
    }
    let mut buf = copy_in(ctx.proc(), control, controllen)?;
    // A header the kernel would reject: EINVAL, as from the kernel.
    let mut off = 0usize;
    while buf.len() - off >= 16 {
        let len = u64::from_ne_bytes(buf[off..off + 8].try_into().unwrap());
        if len < 16 || len > (buf.len() - off) as u64 {
            return Err(Errno::EINVAL);
        }
        off = match off.checked_add((len as usize).next_multiple_of(8)) {
            Some(next) if next <= buf.len() => next,
            _ => break,
        };
    }
    for (level, ty, data) in cmsgs(&buf) {
        if level == libc::SOL_SOCKET && ty == libc::SCM_RIGHTS {
            for at in data.clone().step_by(4).take_while(|&o| o + 4 <= data.end) {
                let fd = i32::from_ne_bytes(buf[at..at + 4].try_into().unwrap());
                check_fd(ctx.proc(), fd as u64)?;
                let dup =
                    crate::fdwin::window().duplicate(fd).map_err(|e| match e.raw_os_error() {
                        Some(libc::EMFILE) => Errno(libc::ENOBUFS),
                        _ => Errno::from_io(&e),
                    })?;
                if crate::fdwin::runtime_object_of(dup.raw())?.is_some() {
                    return Err(Errno::EBADF);
                }
                buf[at..at + 4].copy_from_slice(&dup.raw().to_ne_bytes());
                fds.push(dup);
            }
        }
    }
    Ok(buf)
}

fn empty_msghdr() -> libc::msghdr {
    libc::msghdr {
        msg_name: std::ptr::null_mut(),
        msg_namelen: 0,
        msg_iov: std::ptr::null_mut(),
        msg_iovlen: 0,
        msg_control: std::ptr::null_mut(),
        msg_controllen: 0,
        msg_flags: 0,
    }
}

/// Refuses a message whose control data would route it through other addresses than its
/// destination (see [`crate::policy::Engine::refuses_option`]).
fn check_control(ctx: &Ctx<'_>, syscall: &str, m: &Msg) -> Result<(), Errno> {
    let engine = &ctx.proc().policy;
    for (level, ty, _) in cmsgs(&m.control) {
        if engine.refuses_option(level, ty) {
            let ev = audit::Event {
                address: Some(format!("cmsg level={level} type={ty}")),
                ..audit::Event::default()
            };
            return Err(engine.refuse(caller(ctx), syscall, "source routing", ev));
        }
    }
    Ok(())
}

/// Decides a message to be sent on the pinned socket `p`: control data that would route it
/// elsewhere is refused, its name decided (and replaced where the kernel must get another).
fn decide_msg(
    ctx: &Ctx<'_>,
    syscall: &str,
    p: &Pinned,
    m: &mut Msg,
    keep: &mut Held,
) -> Result<(), Errno> {
    check_control(ctx, syscall, m)?;
    if let Some(name) = &m.name {
        let mut sa = (**name).clone();
        decide_addr(ctx, syscall, p, endpoint::send_op(&p.kind), &mut sa, keep)?;
        m.set_name(sa);
    }
    Ok(())
}

/// `sendmsg(fd, msg, flags)`.
pub fn sendmsg(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    check_fd(ctx.proc(), a[0])?;
    let mut m = copy_msghdr(ctx, a[1], true)?;
    let named = m.name.as_ref().is_some_and(|n| screened(ctx.proc(), n.bytes()));
    if !(ctx.proc().policy.mediates_network() || named && paths::mediated(ctx.proc())) {
        return host(libc::SYS_sendmsg, [a[0], &m.hdr as *const _ as u64, a[2], 0, 0, 0]);
    }
    if m.name.is_none() {
        // No address: only where the socket already goes (nothing to decide, no pinning; a
        // connected socket's sends cost nothing more under a firewall).
        check_control(ctx, "sendmsg", &m)?;
        return host(libc::SYS_sendmsg, [a[0], &m.hdr as *const _ as u64, a[2], 0, 0, 0]);
    }
    let p = pin(ctx.proc(), a[0])?;
    let mut keep = Held::default();
    decide_msg(ctx, "sendmsg", &p, &mut m, &mut keep)?;
    let r = host(libc::SYS_sendmsg, [p.fd(), &m.hdr as *const _ as u64, a[2], 0, 0, 0]);
    drop((m, keep));
    r
}

/// Copies a received message's name and control data (from the guard) into the program's
/// msghdr at `addr`, whose copy is `m`, with the value-result fields.
fn deliver_guarded(
    ctx: &Ctx<'_>,
    addr: u64,
    m: &Msg,
    ans: &crate::guard::Answer,
) -> Result<(), Errno> {
    let proc = ctx.proc();
    let mut hdr = empty_msghdr();
    if !m.hdr.msg_name.is_null() {
        let name = unredirected_name(proc, ans.name.clone());
        let n = name.len().min(m.hdr.msg_namelen as usize);
        copy_out(proc, m.hdr.msg_name as u64, &name[..n])?;
        hdr.msg_namelen = name.len() as u32;
    }
    let cap = m.hdr.msg_controllen;
    let n = ans.control.len().min(cap);
    copy_out(proc, m.hdr.msg_control as u64, &ans.control[..n])?;
    hdr.msg_controllen = n;
    hdr.msg_flags = ans.msg_flags | if n < ans.control.len() { libc::MSG_CTRUNC } else { 0 };
    crate::uaccess::msghdr::write_results(proc, addr, &hdr)
}

/// `recvmsg(fd, msg, flags)`: under a firewall, control data on a unix socket is received by
/// the guard, which vets every descriptor passed with it.
pub fn recvmsg(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    check_fd(ctx.proc(), a[0])?;
    let mut m = copy_msghdr(ctx, a[1], false)?;
    if ctx.proc().policy.mediates_network()
        && m.hdr.msg_controllen > 0
        && !m.hdr.msg_control.is_null()
    {
        let p = pin(ctx.proc(), a[0])?;
        if p.kind.domain == AF_UNIX {
            // All of the name (the program's buffer may be shorter than a host path the
            // private /tmp makes; it gets the name without it, cut to its buffer).
            let namelen = if m.hdr.msg_name.is_null() { 0 } else { 128 };
            let ans = crate::guard::recvmsg(
                ctx.proc(),
                ctx.thread.tid,
                p.dup.raw(),
                &m.iov,
                namelen,
                m.hdr.msg_controllen as u64,
                a[2] as i32,
            )?;
            deliver_guarded(ctx, a[1], &m, &ans)?;
            return Ok(ans.ret);
        }
        let n = host(libc::SYS_recvmsg, [p.fd(), &mut m.hdr as *mut _ as u64, a[2], 0, 0, 0])?;
        crate::uaccess::msghdr::write_results(ctx.proc(), a[1], &m.hdr)?;
        return Ok(n);
    }
    // With a private /tmp the sender's address goes to a buffer of the supervisor's first.
    let private = !m.hdr.msg_name.is_null() && !ctx.proc().policy.redirects().dirs.is_empty();
    let (their_name, cap) = (m.hdr.msg_name, m.hdr.msg_namelen);
    let mut buf = [0u8; 128];
    if private {
        m.hdr.msg_name = buf.as_mut_ptr().cast();
        m.hdr.msg_namelen = 128;
    }
    let n = host(libc::SYS_recvmsg, [a[0], &mut m.hdr as *mut _ as u64, a[2], 0, 0, 0])?;
    if private {
        let name = buf[..(m.hdr.msg_namelen as usize).min(128)].to_vec();
        let name = unredirected_name(ctx.proc(), name);
        let k = name.len().min(cap as usize);
        copy_out(ctx.proc(), their_name as u64, &name[..k])?;
        m.hdr.msg_namelen = name.len() as u32;
    }
    // Value-result fields back into the program's msghdr.
    crate::uaccess::msghdr::write_results(ctx.proc(), a[1], &m.hdr)?;
    Ok(n)
}

/// `UIO_MAXIOV`: the most messages one sendmmsg/recvmmsg handles.
const MMSG_MAX: u64 = 1024;

/// `MSG_WAITFORONE`.
const MSG_WAITFORONE: u64 = 0x10000;

/// `sendmmsg`/`recvmmsg`: every `struct mmsghdr` (a msghdr and `msg_len`, 64 bytes) copied and
/// validated like [`sendmsg`]'s; results copied back.
fn mmsg(ctx: &mut Ctx<'_>, a: &[u64; 6], sending: bool) -> SysResult {
    check_fd(ctx.proc(), a[0])?;
    let mut vlen = a[2].min(MMSG_MAX);
    let mut msgs = Vec::with_capacity(vlen as usize);
    for i in 0..vlen {
        msgs.push(copy_msghdr(ctx, a[1] + crate::uaccess::msghdr::MMSGHDR * i, sending)?);
    }
    let mut mediates = ctx.proc().policy.mediates_network();
    let mut fd = a[0];
    let mut keep = Held::default();
    // Sends without any address go where the socket already goes: nothing to pin.
    let unaddressed = sending && msgs.iter().all(|m| m.name.is_none());
    if sending && !mediates && paths::mediated(ctx.proc()) {
        // Filesystem rules alone decide sends to pathname unix addresses.
        mediates =
            msgs.iter().any(|m| m.name.as_ref().is_some_and(|n| screened(ctx.proc(), n.bytes())));
    }
    if mediates && unaddressed {
        // Those before the first refused one are sent.
        for (i, m) in msgs.iter().enumerate() {
            if let Err(e) = check_control(ctx, "sendmmsg", m) {
                if i == 0 {
                    return Err(e);
                }
                vlen = i as u64;
                break;
            }
        }
    }
    let has_control = |m: &Msg| m.hdr.msg_controllen > 0 && !m.hdr.msg_control.is_null();
    // Receives matter only with control data (descriptors over a unix socket).
    let needs_pin = if sending { !unaddressed } else { msgs.iter().any(has_control) };
    let pinned = if mediates && needs_pin { Some(pin(ctx.proc(), a[0])?) } else { None };
    if let Some(p) = &pinned {
        fd = p.fd();
        if sending {
            // Every message's address decided; those before the first denied one are sent.
            for (i, m) in msgs.iter_mut().enumerate() {
                if let Err(e) = decide_msg(ctx, "sendmmsg", p, m, &mut keep) {
                    if i == 0 {
                        return Err(e);
                    }
                    vlen = i as u64;
                    break;
                }
            }
        } else if p.kind.domain == AF_UNIX && !msgs.first().is_some_and(has_control) {
            // A later message's control data would reach the program unvetted: only the first
            // message (without control data, so the kernel discards any descriptors sent
            // with it) is received.
            vlen = 1;
        } else if p.kind.domain == AF_UNIX {
            // Control data (descriptors) from a unix socket: one message, through the guard.
            let m = &msgs[0];
            // All of the name (the program's buffer may be shorter than a host path the
            // private /tmp makes; it gets the name without it, cut to its buffer).
            let namelen = if m.hdr.msg_name.is_null() { 0 } else { 128 };
            let flags = (a[3] & !MSG_WAITFORONE) as i32;
            let ans = crate::guard::recvmsg(
                ctx.proc(),
                ctx.thread.tid,
                p.dup.raw(),
                &m.iov,
                namelen,
                m.hdr.msg_controllen as u64,
                flags,
            )?;
            deliver_guarded(ctx, a[1], m, &ans)?;
            copy_out(ctx.proc(), a[1] + 56, &(ans.ret as u32).to_ne_bytes())?;
            return Ok(1);
        }
    }
    #[repr(C)]
    struct MMsgHdr {
        hdr: libc::msghdr,
        len: u32,
    }
    let mut vec: Vec<MMsgHdr> = msgs.iter().map(|m| MMsgHdr { hdr: m.hdr, len: 0 }).collect();
    let n = if sending {
        host(libc::SYS_sendmmsg, [fd, vec.as_mut_ptr() as u64, vlen, a[3], 0, 0])?
    } else {
        if a[4] != 0 {
            ctx.proc().check(a[4], 16)?;
        }
        host(libc::SYS_recvmmsg, [fd, vec.as_mut_ptr() as u64, vlen, a[3], a[4], 0])?
    };
    for (i, m) in vec.iter().enumerate().take(n as usize) {
        let base = a[1] + crate::uaccess::msghdr::MMSGHDR * i as u64;
        if !sending {
            crate::uaccess::msghdr::write_results(ctx.proc(), base, &m.hdr)?;
        }
        copy_out(ctx.proc(), base + 56, &m.len.to_ne_bytes())?;
    }
    drop((msgs, keep, pinned));
    Ok(n)
}

/// `sendmmsg(fd, msgvec, vlen, flags)`.
pub fn sendmmsg(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    mmsg(ctx, a, true)
}

/// `recvmmsg(fd, msgvec, vlen, flags, timeout)`.
pub fn recvmmsg(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    mmsg(ctx, a, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_paths() {
        assert_eq!(lexical(b"/a/./b/../c"), b"/a/c");
        assert_eq!(lexical(b"/../x"), b"/x");
        assert_eq!(lexical(b"/"), b"/");
        let cwd = std::env::current_dir().unwrap().into_os_string().into_encoded_bytes();
        let mut want = cwd.clone();
        want.extend_from_slice(b"/s.sock");
        assert_eq!(lexical(b"s.sock"), want);
    }

    #[test]
    fn control_messages_are_walked_like_the_kernel() {
        let mut b = Vec::new();
        b.extend_from_slice(&20u64.to_ne_bytes());
        b.extend_from_slice(&0i32.to_ne_bytes());
        b.extend_from_slice(&7i32.to_ne_bytes());
        b.extend_from_slice(&[0; 4]);
        b.resize(24, 0);
        b.extend_from_slice(&16u64.to_ne_bytes());
        b.extend_from_slice(&41i32.to_ne_bytes());
        b.extend_from_slice(&57i32.to_ne_bytes());
        let c = cmsgs(&b);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].0, c[0].1), (0, 7));
        assert_eq!((c[1].0, c[1].1), (41, 57));
    }
}
