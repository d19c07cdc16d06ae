//! The guard: calls that create descriptors the firewall must look at before the program can
//! name them, carried out by a helper thread whose descriptor table is its own.
//!
//! The program and the runtime share one descriptor table, and the kernel installs a new
//! descriptor at the lowest free number, which is the program's: if the supervisor accepted
//! a connection there and then found its peer denied, another program thread could read from
//! that number before the supervisor closed it. So, under a firewall policy, these calls run
//! on a guard thread (one per program thread that needs one, `sandbox-guard`) that left the
//! shared table (`unshare(CLONE_FILES)`) and closed everything it copied:
//!
//! * `accept`/`accept4` of TCP connections: the peer is decided on in the guard; a denied
//!   connection is closed there (audited) and the next one taken;
//! * `socket` of UDP sockets: the receive filter ([`crate::policy::bpf`]) is attached before
//!   the socket exists in the program's table, so not even a `write` that binds it implicitly
//!   can beat the filter;
//! * `recvmsg` of unix sockets with control data: descriptors received with `SCM_RIGHTS` are
//!   vetted ([`vet`]) as if the program had made them itself; the ones the policy refuses are
//!   closed in the guard and left out of the control data.
//!
//! Descriptors cross between the tables over a `SOCK_SEQPACKET` pair with `SCM_RIGHTS`: the
//! program's socket goes to the guard with the request, the allowed result comes back and
//! lands at the program's lowest free number, as the program's own call would have put it.
//! Requests carry everything inline (no pointers into supervisor memory), and the guard
//! checks the program buffers it writes to against the program range itself, so a request
//! forged on a stolen copy of the channel could do nothing the program could not.
//!
//! The calling thread waits for the answer; a host signal that interrupts the wait is passed
//! on to the guard (the runtime's interrupt signal, which the guard alone unblocks), whose
//! call then returns `EINTR` (or completes), and that answer is the call's.

use std::cell::RefCell;
use std::sync::Arc;

use crate::errno::Errno;
use crate::fdwin::RuntimeFd;
use crate::policy::endpoint::{self, Endpoint, Op, SockKind, Transport};
use crate::policy::firewall::Request;
use crate::policy::{Caller, Engine};
use crate::sys::{self, SysResult};
use crate::sys_net;

const QUIT: u32 = 0;
const ACCEPT: u32 = 1;
const SOCKET: u32 = 2;
const RECVMSG: u32 = 3;

/// The most descriptors one `SCM_RIGHTS` message carries (`SCM_MAX_FD`).
const MAX_FDS: usize = 253;
/// The most control data a guarded `recvmsg` returns.
const CONTROL_MAX: usize = 64 << 10;

/// A request, as sent (little-endian fields, then `iovecs` 16 bytes each).
#[derive(Clone, Copy, Debug, Default)]
struct Req {
    op: u32,
    flags: i32,
    tid: i32,
    /// accept: the listener's local port; socket: domain.
    a: i64,
    /// socket: type; recvmsg: the name length wanted.
    b: i64,
    /// socket: protocol; recvmsg: the control length wanted.
    c: i64,
    /// recvmsg: the number of iovecs that follow.
    n: u64,
}

const REQ_LEN: usize = 48;

impl Req {
    fn encode(&self, iov: &[libc::iovec]) -> Vec<u8> {
        let mut b = Vec::with_capacity(REQ_LEN + 16 * iov.len());
        b.extend_from_slice(&self.op.to_le_bytes());
        b.extend_from_slice(&self.flags.to_le_bytes());
        b.extend_from_slice(&self.tid.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&self.a.to_le_bytes());
        b.extend_from_slice(&self.b.to_le_bytes());
        b.extend_from_slice(&self.c.to_le_bytes());
        b.extend_from_slice(&(iov.len() as u64).to_le_bytes());
        for v in iov {
            b.extend_from_slice(&(v.iov_base as u64).to_le_bytes());
            b.extend_from_slice(&(v.iov_len as u64).to_le_bytes());
        }
        b
    }

    fn decode(b: &[u8]) -> Option<(Req, Vec<libc::iovec>)> {
        if b.len() < REQ_LEN {
            return None;
        }
        let w = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let q = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        let r = Req {
            op: w(0),
            flags: w(4) as i32,
            tid: w(8) as i32,
            a: q(16) as i64,
            b: q(24) as i64,
            c: q(32) as i64,
            n: q(40),
        };
        let n = usize::try_from(r.n).ok()?;
        if b.len() != REQ_LEN + 16 * n {
            return None;
        }
        let iov = (0..n)
            .map(|i| {
                let at = REQ_LEN + 16 * i;
                libc::iovec { iov_base: q(at) as *mut _, iov_len: q(at + 8) as usize }
            })
            .collect();
        Some((r, iov))
    }
}

/// An answer: the result, and for `accept`/`recvmsg` the name, flags and control data.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    /// The call's result (a count; for accept/socket 0 and the descriptor in `fds`).
    pub ret: u64,
    /// The address (accept: the peer; recvmsg: the sender), as the kernel gave it.
    pub name: Vec<u8>,
    /// recvmsg: `msg_flags`.
    pub msg_flags: i32,
    /// recvmsg: the control data, `SCM_RIGHTS` entries renumbered for the program's table.
    pub control: Vec<u8>,
    /// The descriptors installed in the program's table, in order.
    pub fds: Vec<i32>,
    /// Some descriptors could not be installed (the table was full).
    pub truncated: bool,
}

fn encode_answer(res: &Result<Answer, Errno>) -> Vec<u8> {
    let mut b = Vec::new();
    match res {
        Err(e) => {
            b.extend_from_slice(&(-i64::from(e.0)).to_le_bytes());
        }
        Ok(a) => {
            b.extend_from_slice(&(a.ret as i64).to_le_bytes());
            b.extend_from_slice(&a.msg_flags.to_le_bytes());
            b.extend_from_slice(&(a.name.len() as u32).to_le_bytes());
            b.extend_from_slice(&a.name);
            b.extend_from_slice(&(a.control.len() as u32).to_le_bytes());
            b.extend_from_slice(&a.control);
        }
    }
    b
}

fn decode_answer(b: &[u8]) -> Result<Answer, Errno> {
    let bad = Errno(libc::EIO);
    let q = |o: usize| b.get(o..o + 8).map(|x| i64::from_le_bytes(x.try_into().unwrap()));
    let w = |o: usize| b.get(o..o + 4).map(|x| u32::from_le_bytes(x.try_into().unwrap()));
    let ret = q(0).ok_or(bad)?;
    if ret < 0 {
        return Err(Errno(-ret as i32));
    }
    let msg_flags = w(8).ok_or(bad)? as i32;
    let nl = w(12).ok_or(bad)? as usize;
    let name = b.get(16..16 + nl).ok_or(bad)?.to_vec();
    let cl = w(16 + nl).ok_or(bad)? as usize;
    let control = b.get(20 + nl..20 + nl + cl).ok_or(bad)?.to_vec();
    Ok(Answer { ret: ret as u64, name, msg_flags, control, fds: Vec::new(), truncated: false })
}

/// The guard of one program thread.
struct Guard {
    pid: u32,
    chan: RuntimeFd,
    tid: i32,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.pid != std::process::id() {
            // A parent's guard, copied by fork: its thread is not here.
            std::mem::forget(self.thread.take());
            return;
        }
        let _ = sys_net::send_with_fds(
            self.chan.raw(),
            &Req { op: QUIT, ..Req::default() }.encode(&[]),
            &[],
        );
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

thread_local! {
    static GUARD: RefCell<Option<Guard>> = const { RefCell::new(None) };
}

fn start(engine: Arc<Engine>, range: std::ops::Range<u64>) -> Result<Guard, Errno> {
    let win = crate::fdwin::window();
    // The pair is created at the program's lowest free numbers: the window's gate is held
    // until both are in the window, so no program thread can duplicate either meanwhile.
    let (a, b) = {
        let _gate = win.creating();
        let (a, b) = sys_net::seqpacket_pair()?;
        let a = win.adopt(a).map_err(|e| {
            sys::close(b);
            Errno::from_io(&e)
        })?;
        (a, win.adopt(b).map_err(|e| Errno::from_io(&e))?)
    };
    let theirs = b.raw();
    // The guard writes audit lines of its own (denied peers, refused descriptors).
    let audit = engine.sink().fd();
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<i32, Errno>>(1);
    let thread = sys::with_signals_blocked(|_| {
        std::thread::Builder::new().name("sandbox-guard".into()).stack_size(256 << 10).spawn(
            move || {
                // And a learning run's journal (the peers it accepts are noted there).
                let mut keep = vec![theirs, audit.unwrap_or(-1)];
                keep.extend(engine.learner().into_iter().flat_map(|l| l.fds()));
                let ok = sys_net::private_table_keeping(&keep).map(|()| sys::gettid());
                let failed = ok.is_err();
                let _ = ready_tx.send(ok);
                if !failed {
                    sys_net::only_signal(sys::interrupt_signal());
                    serve(theirs, &engine, &range);
                }
            },
        )
    })
    .map_err(|e| Errno::from_io(&e))?;
    let tid = ready_rx.recv().map_err(|_| Errno(libc::EIO))??;
    // The guard has its own copy of its end; ours goes back to the window.
    drop(b);
    Ok(Guard { pid: std::process::id(), chan: a, tid, thread: Some(thread) })
}

/// Sends `req` (with `fd`, the program's socket, to the guard's table) and waits for the
/// answer, passing an interrupting host signal on to the guard.
fn call(
    proc: &crate::process::Process,
    req: Req,
    iov: &[libc::iovec],
    fd: Option<i32>,
    cloexec: bool,
) -> Result<Answer, Errno> {
    GUARD.with(|g| {
        let mut g = g.borrow_mut();
        if g.as_ref().is_none_or(|g| g.pid != std::process::id()) {
            *g = Some(start(proc.policy.clone(), proc.range.clone())?);
        }
        let g = g.as_ref().expect("started above");
        let fds: Vec<i32> = fd.into_iter().collect();
        sys_net::send_with_fds(g.chan.raw(), &req.encode(iov), &fds)?;
        // The wait for the answer is the call's cancellation point (`sys::cancellable`, as
        // for the calls the supervisor forwards): a signal that arrived since the thread last
        // looked makes the guard's call return (EINTR), and the program's call did not start
        // unless the guard completed it first.
        let mut cancelled = false;
        match sys_net::wait_readable(g.chan.raw()) {
            Ok(()) => {}
            Err(e) if e == sys::NOT_STARTED || e == Errno(libc::EINTR) => {
                cancelled = e == sys::NOT_STARTED;
                while !sys_net::readable(g.chan.raw(), 2) {
                    sys::tgkill(g.tid, sys::interrupt_signal());
                }
            }
            Err(e) => return Err(e),
        }
        let mut buf = vec![0u8; 32 + endpoint::SOCKADDR_MAX + CONTROL_MAX];
        loop {
            match sys_net::recv_with_fds(g.chan.raw(), &mut buf, MAX_FDS, cloexec) {
                Ok((n, fds, truncated)) => {
                    let mut a = match decode_answer(&buf[..n]) {
                        Ok(a) => a,
                        Err(e) => {
                            fds.iter().for_each(|&f| sys::close(f));
                            return Err(if cancelled && e == Errno(libc::EINTR) {
                                sys::NOT_STARTED
                            } else {
                                e
                            });
                        }
                    };
                    a.fds = fds;
                    a.truncated = truncated;
                    return Ok(a);
                }
                Err(e) if e == Errno(libc::EINTR) => {
                    // Make the guard's call return too; its answer is ours.
                    while !sys_net::readable(g.chan.raw(), 2) {
                        sys::tgkill(g.tid, sys::interrupt_signal());
                    }
                }
                Err(e) => return Err(e),
            }
        }
    })
}

fn caller(tid: i32) -> Caller {
    Caller { pid: crate::sys::pid(), tid }
}

/// `accept`/`accept4` (`syscall`) of a TCP connection on `listener` (a runtime duplicate of
/// the program's socket) whose local port is `local_port`, for program thread `tid`: the next
/// connection whose peer the policy allows, installed in the program's table with `flags`
/// (`SOCK_NONBLOCK`, `SOCK_CLOEXEC`). Returns the descriptor and the peer's address.
pub fn accept(
    proc: &crate::process::Process,
    tid: i32,
    syscall: &str,
    listener: i32,
    local_port: u16,
    flags: i32,
) -> Result<(i32, Vec<u8>), Errno> {
    let req = Req {
        op: ACCEPT,
        flags,
        tid,
        a: i64::from(local_port),
        b: i64::from(syscall == "accept4"),
        ..Req::default()
    };
    let a = call(proc, req, &[], Some(listener), flags & libc::SOCK_CLOEXEC != 0)?;
    match a.fds.as_slice() {
        [fd] => Ok((*fd, a.name)),
        _ => {
            a.fds.iter().for_each(|&f| sys::close(f));
            Err(Errno(libc::EMFILE))
        }
    }
}

/// `socket(domain, ty, protocol)` of a UDP socket with the receive filter attached before it
/// reaches the program's table.
pub fn socket(
    proc: &crate::process::Process,
    tid: i32,
    domain: i32,
    ty: i32,
    protocol: i32,
) -> SysResult {
    let req = Req {
        op: SOCKET,
        flags: ty,
        tid,
        a: i64::from(domain),
        b: i64::from(ty),
        c: i64::from(protocol),
        ..Req::default()
    };
    let a = call(proc, req, &[], None, ty & libc::SOCK_CLOEXEC != 0)?;
    match a.fds.as_slice() {
        [fd] => Ok(*fd as u64),
        _ => {
            a.fds.iter().for_each(|&f| sys::close(f));
            Err(Errno(libc::EMFILE))
        }
    }
}

/// `recvmsg` on unix socket `fd` (a runtime duplicate) into the program buffers `iov`
/// (checked by the caller), wanting up to `namelen` bytes of name and `controllen` of control
/// data, with `flags`: descriptors received are vetted first ([`vet`]).
pub fn recvmsg(
    proc: &crate::process::Process,
    tid: i32,
    fd: i32,
    iov: &[libc::iovec],
    namelen: u32,
    controllen: u64,
    flags: i32,
) -> Result<Answer, Errno> {
    let controllen = (controllen as usize).min(CONTROL_MAX);
    let req = Req {
        op: RECVMSG,
        flags,
        tid,
        b: i64::from(namelen),
        c: controllen as i64,
        ..Req::default()
    };
    let mut a = call(proc, req, iov, Some(fd), flags & libc::MSG_CMSG_CLOEXEC != 0)?;
    // Renumber the SCM_RIGHTS entries: the guard wrote its own numbers, in order.
    let mut next = a.fds.iter();
    let mut off = 0usize;
    while a.control.len() - off >= 16 {
        let len = u64::from_ne_bytes(a.control[off..off + 8].try_into().unwrap()) as usize;
        if len < 16 || off + len > a.control.len() {
            break;
        }
        let level = i32::from_ne_bytes(a.control[off + 8..off + 12].try_into().unwrap());
        let ty = i32::from_ne_bytes(a.control[off + 12..off + 16].try_into().unwrap());
        if level == libc::SOL_SOCKET && ty == libc::SCM_RIGHTS {
            let mut at = off + 16;
            while at + 4 <= off + len {
                let n = next.next().copied().unwrap_or(-1);
                a.control[at..at + 4].copy_from_slice(&n.to_ne_bytes());
                at += 4;
            }
        }
        off += len.next_multiple_of(8);
    }
    if a.truncated {
        a.msg_flags |= libc::MSG_CTRUNC;
    }
    Ok(a)
}

/// The guard thread: serves requests on `chan` until told to stop or the channel closes.
fn serve(chan: i32, engine: &Engine, range: &std::ops::Range<u64>) {
    let mut buf = vec![0u8; REQ_LEN + 16 * crate::uaccess::iovec::IOV_MAX as usize];
    loop {
        let (n, fds) = match sys_net::recv_with_fds(chan, &mut buf, 1, true) {
            Ok((0, fds, _)) => {
                fds.iter().for_each(|&f| sys::close(f));
                return;
            }
            Ok((n, fds, _)) => (n, fds),
            Err(e) if e == Errno(libc::EINTR) => continue,
            Err(_) => return,
        };
        let Some((req, iov)) = Req::decode(&buf[..n]) else {
            fds.iter().for_each(|&f| sys::close(f));
            continue;
        };
        let fd = fds.first().copied();
        let mut pass = Vec::new();
        let res = match (req.op, fd) {
            (QUIT, _) => {
                fds.iter().for_each(|&f| sys::close(f));
                return;
            }
            (ACCEPT, Some(l)) => serve_accept(engine, &req, l).map(|(fd, peer)| {
                pass.push(fd);
                Answer { name: peer, ..Answer::default() }
            }),
            (SOCKET, _) => serve_socket(engine, &req).map(|fd| {
                pass.push(fd);
                Answer::default()
            }),
            (RECVMSG, Some(s)) => serve_recvmsg(engine, range, &req, &iov, s, &mut pass),
            _ => Err(Errno::EINVAL),
        };
        fds.iter().for_each(|&f| sys::close(f));
        let _ = sys_net::send_with_fds(chan, &encode_answer(&res), &pass);
        pass.iter().for_each(|&f| sys::close(f));
    }
}

fn serve_accept(engine: &Engine, req: &Req, listener: i32) -> Result<(i32, Vec<u8>), Errno> {
    let syscall = if req.b != 0 { "accept4" } else { "accept" };
    let flags = (req.flags & libc::SOCK_NONBLOCK) | libc::SOCK_CLOEXEC;
    loop {
        let (fd, peer) = sys_net::accept4(listener, flags)?;
        let Some((ip, port)) = endpoint::ip_of(&peer) else {
            return Ok((fd, peer));
        };
        let ep = Endpoint::Ip(ip, port);
        let r = Request {
            op: Op::Accept,
            transport: Transport::Tcp,
            endpoint: &ep,
            local_port: Some(req.a as u16),
            datagram: false,
        };
        match engine.decide(caller(req.tid), syscall, &r) {
            Ok(()) => return Ok((fd, peer)),
            // Denied (and audited): the peer never reaches the program.
            Err(_) => sys::close(fd),
        }
    }
}

fn serve_socket(engine: &Engine, req: &Req) -> Result<i32, Errno> {
    let fd = sys_net::socket(req.a as i32, req.b as i32 | libc::SOCK_CLOEXEC, req.c as i32)?;
    if let Some(f) = engine.receive_filter()
        && let Err(e) = sys_net::attach_filter(fd, f)
    {
        sys::close(fd);
        return Err(e);
    }
    Ok(fd)
}

fn serve_recvmsg(
    engine: &Engine,
    range: &std::ops::Range<u64>,
    req: &Req,
    iov: &[libc::iovec],
    sock: i32,
    pass: &mut Vec<i32>,
) -> Result<Answer, Errno> {
    let flags = (req.flags & !libc::MSG_CMSG_CLOEXEC) | libc::MSG_CMSG_CLOEXEC;
    let got = sys_net::recvmsg_checked(
        sock,
        range,
        iov,
        req.b.max(0) as usize,
        req.c.max(0) as usize,
        flags,
    )?;
    let (n, name, raw) = (got.len, got.name, &got.control[..]);
    let mut out = Vec::with_capacity(raw.len());
    let mut off = 0usize;
    while raw.len() - off >= 16 {
        let len = u64::from_ne_bytes(raw[off..off + 8].try_into().unwrap()) as usize;
        if len < 16 || off + len > raw.len() {
            break;
        }
        let level = i32::from_ne_bytes(raw[off + 8..off + 12].try_into().unwrap());
        let ty = i32::from_ne_bytes(raw[off + 12..off + 16].try_into().unwrap());
        if level == libc::SOL_SOCKET && ty == libc::SCM_RIGHTS {
            let mut kept = Vec::new();
            for at in (off + 16..off + len).step_by(4).take_while(|&o| o + 4 <= off + len) {
                let fd = i32::from_ne_bytes(raw[at..at + 4].try_into().unwrap());
                if vet(engine, req.tid, fd) {
                    kept.push(fd);
                } else {
                    sys::close(fd);
                }
            }
            if !kept.is_empty() {
                let clen = 16 + 4 * kept.len();
                out.extend_from_slice(&(clen as u64).to_ne_bytes());
                out.extend_from_slice(&raw[off + 8..off + 16]);
                for &f in &kept {
                    out.extend_from_slice(&f.to_ne_bytes());
                }
                out.resize(out.len().next_multiple_of(8), 0);
                pass.extend(kept);
            }
        } else {
            out.extend_from_slice(&raw[off..off + len]);
            out.resize(out.len().next_multiple_of(8), 0);
        }
        off += len.next_multiple_of(8);
    }
    Ok(Answer {
        ret: n as u64,
        name,
        msg_flags: got.flags,
        control: out,
        fds: Vec::new(),
        truncated: false,
    })
}

/// Whether a descriptor received with `SCM_RIGHTS` may reach the program: what it is decides,
/// as if the program had made it itself. Not a socket, a listening or unconnected socket:
/// yes. A socket of a kind the policy cannot reason about: as `socket` would decide. A
/// connected socket: as a `connect` to its peer would be decided. A UDP socket gets the
/// receive filter. Refusals are audited.
pub fn vet(engine: &Engine, tid: i32, fd: i32) -> bool {
    if sys::file_type(fd as u64) != Some(libc::S_IFSOCK) {
        return true;
    }
    let Ok(kind) = sys_net::socket_kind(fd) else { return false };
    let who = caller(tid);
    if engine.decide_socket(who, "recvmsg", &kind).is_err() {
        return false;
    }
    if kind.transport() == Transport::Udp
        && let Some(f) = engine.receive_filter()
        && sys_net::attach_filter(fd, f).is_err()
    {
        return false;
    }
    peer_allowed(engine, who, "recvmsg", fd, &kind)
}

/// Whether the peer a socket is already connected to is one the program may connect to (no
/// peer: yes).
pub fn peer_allowed(engine: &Engine, who: Caller, syscall: &str, fd: i32, kind: &SockKind) -> bool {
    let Ok(peer) = sys_net::peername(fd) else { return true };
    let transport = kind.transport();
    let ep = match transport {
        Transport::Tcp | Transport::Udp => match endpoint::ip_of(&peer) {
            Some((ip, port)) => Endpoint::Ip(ip, port),
            None => return true,
        },
        Transport::Unix => match endpoint::decode(kind, Op::Connect, &peer) {
            endpoint::Decoded::Reach(e) => e,
            _ => return true,
        },
        _ => return true,
    };
    // A socket file is the filesystem rules' to decide (reaching it takes `w`, as connect).
    if let Endpoint::UnixPath(path) = &ep
        && engine.fs_given().is_some()
        && engine.decide_path(who, syscall, path, crate::policy::fs::Need::Write).is_err()
    {
        return false;
    }
    let r = Request {
        op: Op::Connect,
        transport,
        endpoint: &ep,
        local_port: None,
        datagram: kind.datagram(),
    };
    engine.decide(who, syscall, &r).is_ok()
}

/// Why an inherited descriptor cannot be handed to the program ([`filter_inherited`]).
#[derive(Debug)]
pub enum Inherited {
    /// A UDP socket that could not get the receive filter, and the error.
    Unfiltered(i32, Errno),
    /// A socket already connected to a peer the policy does not let the program reach: the
    /// descriptor and the peer, as text.
    Peer(i32, String),
}

/// Screens the descriptors below `floor` that the sandbox inherited (at start, before the
/// program runs) as descriptors received with `SCM_RIGHTS` are ([`vet`]): every UDP socket
/// gets the receive filter, and a socket connected to a peer the policy denies refuses the
/// start (it would carry the program's data where no `connect` of its own may). Standard
/// input, output and error are the invoker's and are not screened for their peer (a service's
/// journal stream, a socket-activated connection). Errors: the descriptor and why.
pub fn filter_inherited(engine: &Engine, floor: i32) -> Result<(), Inherited> {
    let filter = engine.receive_filter();
    let screens_peers = engine.mediates_network() || engine.fs_given().is_some();
    if filter.is_none() && !screens_peers {
        return Ok(());
    }
    let who = Caller { pid: crate::sys::pid(), tid: crate::sys::pid() };
    // The descriptors open now, from /proc/self/fd (one getdents, not an fstat for each of
    // the ~20,000 numbers below the floor); every number if /proc cannot be read.
    let open: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(rd) => rd
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&fd| fd < floor)
            .collect(),
        Err(_) => (0..floor).collect(),
    };
    for fd in open {
        if sys::file_type(fd as u64) != Some(libc::S_IFSOCK) {
            continue;
        }
        let Ok(kind) = sys_net::socket_kind(fd) else { continue };
        if kind.transport() == Transport::Udp
            && let Some(f) = filter
        {
            sys_net::attach_filter(fd, f).map_err(|e| Inherited::Unfiltered(fd, e))?;
        }
        if screens_peers && fd > 2 && !peer_allowed(engine, who, "inherited", fd, &kind) {
            let peer = sys_net::peername(fd).unwrap_or_default();
            let text = match endpoint::ip_of(&peer) {
                Some((ip, port)) => std::net::SocketAddr::new(ip, port).to_string(),
                None => endpoint::unix_path_of(&peer)
                    .map_or_else(|| "a peer".into(), |p| String::from_utf8_lossy(p).into_owned()),
            };
            return Err(Inherited::Peer(fd, text));
        }
    }
    Ok(())
}
