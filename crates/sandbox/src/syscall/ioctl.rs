//! `ioctl`: only requests the sandbox knows, each with what its argument is. A request number
//! not listed gets `ENOTTY`, as Linux answers a request a file does not implement, so nothing
//! reaches a driver whose reading of the argument the supervisor cannot vouch for.
//!
//! Two families: the terminal and generic file requests of asm-generic/ioctls.h
//! ([`super::tty`]), and the socket and network-interface requests of linux/sockios.h (here).
//! A network request goes only to a socket: it is made on a private duplicate of the
//! program's descriptor, whose type is checked first (another program thread cannot `dup2`
//! something else over it in between), and any other file gets `ENOTTY` as from Linux. On a
//! socket these numbers mean what sockios.h says whatever the protocol; on a device they
//! could mean anything.
//!
//! Most network requests take a `struct ifreq` (40 bytes, copied in and out once by the
//! kernel: a range check suffices). `SIOCGIFCONF` takes a `struct ifconf` whose `ifc_buf`
//! points at the buffer the kernel fills: the structure is copied, the buffer range-checked
//! for the length in the copy, and the kernel gets the copy. Refused (`ENOTTY`), because their
//! argument holds pointers the kernel follows or is driver-defined: `SIOCETHTOOL`,
//! `SIOCWANDEV`, `SIOCSHWTSTAMP`/`SIOCGHWTSTAMP`, `SIOCBONDINFOQUERY`/`SIOCBONDSLAVEINFOQUERY`
//! (all through `ifr_data`), the old bridge calls `SIOCGIFBR`/`SIOCSIFBR`, `SIOCADDRT`/
//! `SIOCDELRT` (`struct rtentry`'s `rt_dev`), the wireless extensions (`SIOCIW*`), and the
//! device- and protocol-private ranges `SIOCDEVPRIVATE`/`SIOCPROTOPRIVATE`.

use super::{Ctx, check_fd, copy_in, copy_out, tty};
use crate::errno::Errno;
use crate::process::Process;
use crate::sys::{self, SysResult};

/// Calls the host kernel with already-validated arguments.
#[allow(unsafe_code)]
fn host(nr: i64, a: [u64; 6]) -> SysResult {
    // SAFETY: the callers below pass a descriptor that is not the runtime's (or the runtime's
    // private duplicate of one that was checked) and an argument that is a value, a
    // range-checked program buffer of the size the request's structure has, or a supervisor
    // copy alive across the call.
    unsafe { sys::syscall6(nr, a) }
}

/// What an ioctl request's argument is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoArg {
    /// An integer, or unused: passed as it is.
    Value,
    /// A structure of this many bytes the kernel reads.
    In(u64),
    /// A structure of this many bytes the kernel writes.
    Out(u64),
    /// A structure of this many bytes the kernel reads and writes back.
    InOut(u64),
    /// Refused with this errno (see the request's table for why).
    Refuse(i32),
}

use IoArg::{In, InOut, Out, Value};

/// `struct ifreq`.
const IFREQ: u64 = 40;
/// `struct arpreq`.
const ARPREQ: u64 = 68;
/// `struct vlan_ioctl_args`.
const VLAN_ARGS: u64 = 56;
/// `IFNAMSIZ`: an interface name (`SIOCBRADDBR` and `SIOCBRDELBR` take one directly).
const IFNAMSIZ: u64 = 16;
/// `SIOCGIFCONF`.
const SIOCGIFCONF: u32 = 0x8912;

/// The argument of socket request `req` (linux/sockios.h), if the sandbox knows it.
/// `SIOCGIFCONF` is handled apart ([`ifconf`]).
fn socket_request(req: u32) -> Option<IoArg> {
    Some(match req {
        0x8901 => In(4),                 // FIOSETOWN
        0x8902 => In(4),                 // SIOCSPGRP
        0x8903 => Out(4),                // FIOGETOWN
        0x8904 => Out(4),                // SIOCGPGRP
        0x8905 => Out(4),                // SIOCATMARK
        0x8906 | 0x8010_8906 => Out(16), // SIOCGSTAMP_OLD, SIOCGSTAMP_NEW
        0x8907 | 0x8010_8907 => Out(16), // SIOCGSTAMPNS_OLD, SIOCGSTAMPNS_NEW
        // SIOCGIFNAME; SIOCGIFFLAGS .. SIOCGIFHWADDR (flags, addresses, metric, MTU, name,
        // hardware address, encapsulation).
        0x8910 | 0x8913..=0x8927 => InOut(IFREQ),
        // SIOCGIFSLAVE, SIOCSIFSLAVE, SIOCADDMULTI, SIOCDELMULTI, SIOCGIFINDEX,
        // SIOCSIFPFLAGS, SIOCGIFPFLAGS, SIOCDIFADDR, SIOCSIFHWBROADCAST.
        0x8929..=0x8937 => InOut(IFREQ),
        0x8942 | 0x8943 => InOut(IFREQ), // SIOCGIFTXQLEN, SIOCSIFTXQLEN
        0x8947..=0x8949 => InOut(IFREQ), // SIOCGMIIPHY, SIOCGMIIREG, SIOCSMIIREG (inline)
        0x894b => Out(4),                // SIOCOUTQNSD
        0x894c => Value,                 // SIOCGSKNS (returns a descriptor)
        0x8953..=0x8955 => InOut(ARPREQ), // SIOCDARP, SIOCGARP, SIOCSARP
        0x8970 | 0x8971 => InOut(IFREQ), // SIOCGIFMAP, SIOCSIFMAP
        0x8982 | 0x8983 => InOut(VLAN_ARGS), // SIOCGIFVLAN, SIOCSIFVLAN
        // SIOCBONDENSLAVE, SIOCBONDRELEASE, SIOCBONDSETHWADDR, SIOCBONDCHANGEACTIVE.
        0x8990..=0x8992 | 0x8995 => InOut(IFREQ),
        0x89a0 | 0x89a1 => In(IFNAMSIZ), // SIOCBRADDBR, SIOCBRDELBR
        0x89a2 | 0x89a3 => InOut(IFREQ), // SIOCBRADDIF, SIOCBRDELIF
        _ => return None,
    })
}

/// The socket requests that change the host's network configuration (an interface's flags,
/// addresses, name, MTU, queue, multicast list, hardware address, slaves, ARP entries, VLANs,
/// bonds and bridges): everything of [`socket_request`] but the queries and the socket's own
/// `SIGIO` owner and timestamps.
fn changes_host_network(req: u32) -> bool {
    /// The queries (`SIOCG*`, `SIOCOUTQNSD`, `SIOCGSKNS`) and the socket's own requests
    /// (`FIOSETOWN`..`SIOCGSTAMPNS`, decided apart).
    const QUERIES: &[u32] = &[
        0x8010_8906,
        0x8010_8907,
        0x8910,
        0x8913,
        0x8915,
        0x8917,
        0x8919,
        0x891b,
        0x891d,
        0x891f,
        0x8921,
        0x8925,
        0x8927,
        0x8929,
        0x8933,
        0x8935,
        0x8942,
        0x8947,
        0x8948,
        0x894b,
        0x894c,
        0x8954,
        0x8970,
        0x8982,
    ];
    socket_request(req).is_some() && !(0x8901..=0x8907).contains(&req) && !QUERIES.contains(&req)
}

/// Under every policy but null, what an ioctl may not do whatever the program's privileges,
/// because it reaches past the sandbox: change the host's network configuration (a root
/// program has `CAP_NET_ADMIN`); hang up the terminal (`TIOCVHANGUP`: the user's shell on it
/// dies of `SIGHUP`), take the system console's output (`TIOCCONS`), steal a terminal that is
/// another session's (`TIOCSCTTY` with a non-zero argument), or change a terminal's line
/// discipline (`TIOCSETD`: a driver the program could not reach otherwise). `EPERM`, Linux's
/// answer without the capability.
fn reaches_past_the_sandbox(req: u32, arg: u64) -> bool {
    let req = u64::from(req);
    changes_host_network(req as u32)
        || req == libc::TIOCVHANGUP
        || req == libc::TIOCCONS
        || (req == libc::TIOCSCTTY && arg != 0)
        || req == libc::TIOCSETD
}

/// `ioctl(fd, request, arg)`.
pub fn ioctl(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    check_fd(ctx.proc(), a[0])?;
    let req = a[1] as u32;
    let policy = &ctx.proc().policy;
    if (policy.confines_processes() || policy.mediates_network())
        && reaches_past_the_sandbox(req, a[2])
    {
        return Err(Errno::EPERM);
    }
    if let Some(arg) = tty::request(req) {
        return forward(ctx.proc(), a[0], req, arg, a[2]);
    }
    let sock = req == SIOCGIFCONF || socket_request(req).is_some();
    if !sock {
        return Err(Errno::ENOTTY);
    }
    let fd = Private::new(ctx.proc(), a[0])?;
    if sys::file_type(fd.0.raw() as u64) != Some(libc::S_IFSOCK) {
        return Err(Errno::ENOTTY);
    }
    if matches!(req, 0x8901 | 0x8902) {
        // FIOSETOWN, SIOCSPGRP: the process (or -group) the socket's SIGIO/SIGURG go to,
        // decided on a copy, which the kernel gets.
        let b = crate::uaccess::copy_in(ctx.proc(), a[2], 4)?;
        super::confine::may_own(ctx, i32::from_ne_bytes(b[..4].try_into().unwrap()), false)?;
        return host(
            libc::SYS_ioctl,
            [fd.0.raw() as u64, u64::from(req), b.as_ptr() as u64, 0, 0, 0],
        );
    }
    match socket_request(req) {
        Some(arg) => forward(ctx.proc(), fd.0.raw() as u64, req, arg, a[2]),
        None => ifconf(ctx.proc(), fd.0.raw() as u64, a[2]),
    }
}

/// Makes request `req` on `fd` after checking its argument as `arg` says.
fn forward(proc: &Process, fd: u64, req: u32, arg: IoArg, ptr: u64) -> SysResult {
    match arg {
        Value => {}
        In(n) | Out(n) | InOut(n) => proc.check(ptr, n)?,
        IoArg::Refuse(e) => return Err(Errno(e)),
    }
    host(libc::SYS_ioctl, [fd, u64::from(req), ptr, 0, 0, 0])
}

/// `struct ifconf` for the kernel.
#[repr(C)]
struct Ifconf {
    len: i32,
    pad: i32,
    buf: u64,
}

/// `SIOCGIFCONF`: the kernel reads `ifc_len` and `ifc_buf`, writes up to `ifc_len` bytes of
/// `struct ifreq`s at `ifc_buf` (or, with a NULL buffer, only the length it would need) and
/// then `ifc_len`. It gets a copy of the structure, with the buffer checked for that length.
fn ifconf(proc: &Process, fd: u64, arg: u64) -> SysResult {
    let raw = copy_in(proc, arg, 16)?;
    let len = i32::from_ne_bytes(raw[0..4].try_into().unwrap());
    let buf = u64::from_ne_bytes(raw[8..16].try_into().unwrap());
    if buf != 0 {
        proc.check(buf, len.max(0) as u64)?;
    }
    let mut c = Ifconf { len, pad: 0, buf };
    host(libc::SYS_ioctl, [fd, u64::from(SIOCGIFCONF), &raw mut c as u64, 0, 0, 0])?;
    copy_out(proc, arg, &c.len.to_ne_bytes())?;
    Ok(0)
}

/// A private duplicate of a program descriptor, protected as the runtime's while it lives, so
/// that the file whose type was checked is the file the request reaches.
struct Private<'a>(crate::fdwin::RuntimeFd, std::marker::PhantomData<&'a Process>);

impl<'a> Private<'a> {
    fn new(_proc: &'a Process, fd: u64) -> Result<Private<'a>, Errno> {
        let dup = crate::fdwin::window().duplicate(fd as i32).map_err(|e| {
            if sys::fd_flags(fd as i32).is_none() { Errno::EBADF } else { Errno::from_io(&e) }
        })?;
        Ok(Private(dup, std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_carrying_requests_are_unknown() {
        for req in [
            0x8946, // SIOCETHTOOL
            0x894a, // SIOCWANDEV
            0x89b0, // SIOCSHWTSTAMP
            0x8993, // SIOCBONDSLAVEINFOQUERY
            0x8994, // SIOCBONDINFOQUERY
            0x8940, // SIOCGIFBR
            0x890b, // SIOCADDRT
            0x8b01, // SIOCGIWNAME
            0x89e0, // SIOCPROTOPRIVATE
            0x89f0, // SIOCDEVPRIVATE
        ] {
            assert_eq!(socket_request(req), None, "{req:#x}");
            assert_eq!(tty::request(req), None, "{req:#x}");
        }
        assert_eq!(socket_request(0x8933), Some(InOut(IFREQ)), "SIOCGIFINDEX");
        assert_eq!(socket_request(SIOCGIFCONF), None, "handled by ifconf");
    }
}
