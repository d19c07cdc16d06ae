//! `setsockopt` and `getsockopt`: every option whose value is plain data, per level, as the
//! kernel's option tables define them (include/uapi/asm-generic/socket.h, linux/in.h,
//! linux/in6.h, linux/tcp.h, linux/udp.h, linux/if_packet.h, linux/netlink.h, the netfilter
//! and multicast-routing headers).
//!
//! A value is plain data when the kernel neither follows a pointer stored in it nor takes a
//! descriptor from it. Those options cannot be covered by a range check of the option buffer
//! and are refused with `ENOPROTOOPT`, as for an option the kernel does not know:
//!
//! * `SO_ATTACH_FILTER`, `SO_ATTACH_REUSEPORT_CBPF`, `PACKET_FANOUT_DATA` (set): a
//!   `struct sock_fprog` points at the filter program;
//! * `SO_ATTACH_BPF`, `SO_ATTACH_REUSEPORT_EBPF` (set): a BPF program descriptor;
//! * `TCP_ZEROCOPY_RECEIVE` (get): maps pages at an address in the value and copies to another;
//! * the netfilter table replacements (`IPT_SO_SET_REPLACE`, `IP6T_SO_SET_REPLACE`,
//!   `ARPT_SO_SET_REPLACE` and their `ADD_COUNTERS`, set): `struct ipt_replace` carries a
//!   pointer the kernel writes the old counters to; ebtables (128 and up) carries pointers in
//!   both directions.
//!
//! The reads of those tables (`*_SO_GET_INFO`, `*_SO_GET_ENTRIES`, the revision queries,
//! `SO_ORIGINAL_DST`) are plain and allowed. Anything not listed here, including options newer
//! than this table, gets `ENOPROTOOPT`: fail closed.
//!
//! Levels not listed at all (SCTP, TLS, ALG, Bluetooth, ...) get `ENOPROTOOPT` too.
//!
//! Under a firewall policy, options that would send packets through other addresses than the
//! destination the firewall decided on (`IP_OPTIONS` source routes, IPv6 routing headers and
//! next hops, `IPV6_2292PKTOPTIONS`) and `SO_DETACH_FILTER` (the receive filter) are refused
//! with the policy's errno, audited ([`crate::policy::Engine::refuses_option`]).

use super::{Ctx, check_fd, copy_in, copy_out, read_u32};
use crate::errno::Errno;
use crate::sys::{self, SysResult};

/// Calls the host kernel with already-validated arguments.
#[allow(unsafe_code)]
fn host(nr: i64, a: [u64; 6]) -> SysResult {
    // SAFETY: the callers below pass a descriptor that is not the runtime's, a value buffer
    // that is either a supervisor copy alive across the call or range-checked program memory
    // of exactly the length the kernel is given, and a supervisor copy of the length word.
    unsafe { sys::syscall6(nr, a) }
}

/// The longest option value `setsockopt` copies (the kernel's own largest,
/// `IPV6_2292PKTOPTIONS`, takes up to 64 KiB); longer values get `EINVAL`.
const SET_MAX: u64 = 64 << 10;

/// Whether an option is read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Get,
    Set,
}

const SOL_IP: i32 = libc::IPPROTO_IP;
const SOL_IPV6: i32 = libc::IPPROTO_IPV6;
const SOL_TCP: i32 = libc::IPPROTO_TCP;
const SOL_UDP: i32 = libc::IPPROTO_UDP;
const SOL_UDPLITE: i32 = 136;
const SOL_ICMPV6: i32 = 58;
const SOL_RAW: i32 = 255;
const SOL_PACKET: i32 = 263;
const SOL_NETLINK: i32 = 270;

/// Whether option `name` at `level` has a plain-data value in direction `dir`.
fn plain(level: i32, name: i32, dir: Dir) -> bool {
    let get = dir == Dir::Get;
    match level {
        // 1..=83, SO_DEBUG to SO_PASSRIGHTS; for reading, 26 is SO_GET_FILTER (copies the
        // attached filter out) and 50..=52 are unknown to getsockopt.
        libc::SOL_SOCKET => matches!(name, 1..=83) && (get || !matches!(name, 26 | 50..=52)),
        SOL_IP => match name {
            // IP_TOS .. IP_RECVERR_RFC4884, IP_MULTICAST_IF .. IP_PROTOCOL (multicast
            // membership and source filters included), MRT_INIT .. MRT_FLUSH.
            1..=26 | 32..=52 | 200..=212 => true,
            // IPT_SO_GET_INFO/ENTRIES/REVISION_MATCH/TARGET, SO_ORIGINAL_DST, the arptables
            // reads: plain; the same numbers for setting replace tables (pointers).
            64..=67 | 80 | 96..=99 => get,
            _ => false,
        },
        SOL_IPV6 => match name {
            // IPV6_ADDRFORM .. IPV6_FLOWINFO, IPV6_UNICAST_HOPS .. IPV6_HDRINCL,
            // MCAST_JOIN_GROUP .. MCAST_MSFILTER, the RFC 3542 options (IPV6_RECVPKTINFO ..
            // IPV6_DONTFRAG, IPV6_RECVTCLASS, IPV6_TCLASS), IPV6_AUTOFLOWLABEL,
            // IPV6_ADDR_PREFERENCES .. IPV6_FREEBIND, MRT6_INIT .. MRT6_FLUSH.
            1..=11 | 16..=36 | 42..=63 | 66 | 67 | 70 | 72..=78 | 200..=212 => true,
            // IP6T_SO_GET_INFO/ENTRIES/REVISION_MATCH/TARGET, IP6T_SO_ORIGINAL_DST.
            64 | 65 | 68 | 69 | 80 => get,
            _ => false,
        },
        // TCP_NODELAY .. TCP_DELACK_MAX_US (MD5 and AO keys, repair, ULP, fast-open keys are
        // inline data), except TCP_ZEROCOPY_RECEIVE.
        SOL_TCP => matches!(name, 1..=46) && name != 35,
        // UDP_CORK, UDP_ENCAP .. UDP_GRO; UDPLITE_SEND_CSCOV/RECV_CSCOV besides for UDP-Lite.
        SOL_UDP => matches!(name, 1 | 100..=104),
        SOL_UDPLITE => matches!(name, 1 | 10 | 11 | 100..=104),
        // ICMP_FILTER; IPV6_CHECKSUM and IPV6_HDRINCL of raw IPv6 sockets.
        SOL_RAW => matches!(name, 1 | 7 | 36),
        // ICMPV6_FILTER.
        SOL_ICMPV6 => name == 1,
        // PACKET_ADD_MEMBERSHIP .. PACKET_VNET_HDR_SZ (rings are set up by size and mapped
        // with mmap), except PACKET_FANOUT_DATA.
        SOL_PACKET => matches!(name, 1..=24) && name != 22,
        // NETLINK_ADD_MEMBERSHIP .. NETLINK_GET_STRICT_CHK.
        SOL_NETLINK => matches!(name, 1..=12),
        _ => false,
    }
}

/// `setsockopt(fd, level, name, value, len)`: the value is copied and the kernel gets the copy.
pub fn setsockopt(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    check_fd(ctx.proc(), a[0])?;
    let engine = &ctx.proc().policy;
    if engine.refuses_option(a[1] as i32, a[2] as i32) {
        // Under a firewall: source routes and next hops would send packets through other
        // addresses than the one decided on; the receive filter stays.
        let why = if a[1] as i32 == libc::SOL_SOCKET { "receive filter" } else { "source routing" };
        let ev = crate::policy::audit::Event {
            address: Some(format!("option level={} name={}", a[1] as i32, a[2] as i32)),
            ..Default::default()
        };
        let caller = crate::policy::Caller { pid: std::process::id() as i32, tid: ctx.thread.tid };
        return Err(engine.refuse(caller, "setsockopt", why, ev));
    }
    if !plain(a[1] as i32, a[2] as i32, Dir::Set) {
        return Err(Errno(libc::ENOPROTOOPT));
    }
    let len = u64::from(a[4] as u32);
    if len > SET_MAX {
        return Err(Errno::EINVAL);
    }
    let value = if a[3] == 0 { None } else { Some(copy_in(ctx.proc(), a[3], len)?) };
    let ptr = value.as_ref().map_or(0, |v| v.as_ptr() as u64);
    host(libc::SYS_setsockopt, [a[0], a[1], a[2], ptr, len, 0])
}

/// `getsockopt(fd, level, name, value, lenp)`: `*lenp` is value-result, so the kernel gets a
/// copy and the value buffer is checked against exactly that length.
pub fn getsockopt(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    check_fd(ctx.proc(), a[0])?;
    if !plain(a[1] as i32, a[2] as i32, Dir::Get) {
        return Err(Errno(libc::ENOPROTOOPT));
    }
    if a[4] == 0 {
        return Err(Errno::EFAULT);
    }
    let mut len = read_u32(ctx.proc(), a[4])?;
    if (len as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    ctx.proc().check(a[3], u64::from(len))?;
    host(libc::SYS_getsockopt, [a[0], a[1], a[2], a[3], &raw mut len as u64, 0])?;
    copy_out(ctx.proc(), a[4], &len.to_ne_bytes())?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_options_are_refused_in_the_direction_that_follows_the_pointer() {
        // SO_ATTACH_FILTER sets a program through a pointer; reading it back (SO_GET_FILTER)
        // copies plain instructions.
        assert!(!plain(libc::SOL_SOCKET, 26, Dir::Set));
        assert!(plain(libc::SOL_SOCKET, 26, Dir::Get));
        for bpf in [50, 51, 52] {
            assert!(!plain(libc::SOL_SOCKET, bpf, Dir::Set), "{bpf}");
        }
        assert!(!plain(SOL_TCP, 35, Dir::Get));
        assert!(!plain(SOL_TCP, 35, Dir::Set));
        assert!(!plain(SOL_PACKET, 22, Dir::Set));
        // Netfilter: reads plain, replacements refused.
        for (level, name) in [(SOL_IP, 64), (SOL_IP, 65), (SOL_IPV6, 64), (SOL_IPV6, 65)] {
            assert!(plain(level, name, Dir::Get));
            assert!(!plain(level, name, Dir::Set));
        }
        assert!(!plain(SOL_IP, 128, Dir::Get), "ebtables reads carry pointers");
    }

    #[test]
    fn rfc3542_options_are_plain() {
        // IPV6_RECVPKTINFO .. IPV6_DONTFRAG, IPV6_RECVTCLASS, IPV6_TCLASS.
        for name in (49..=62).chain([66, 67]) {
            assert!(plain(SOL_IPV6, name, Dir::Set), "{name}");
            assert!(plain(SOL_IPV6, name, Dir::Get), "{name}");
        }
        assert!(!plain(SOL_IPV6, 1000, Dir::Get), "unknown options fail closed");
        assert!(!plain(132 /* SOL_SCTP */, 1, Dir::Get), "unlisted levels fail closed");
    }
}
