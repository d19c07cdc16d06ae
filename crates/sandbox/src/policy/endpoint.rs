//! What a socket address names: the bytes the kernel will read, decoded the way the kernel
//! will read them for the socket at hand, into a typed [`Endpoint`] in canonical form.
//!
//! Pure functions over copied bytes; the caller ([`crate::syscall::net`]) copies the address
//! out of program memory once, decodes that copy, lets the policy decide on the result and
//! hands the kernel the same copy. How the kernel reads a `struct sockaddr` depends on the
//! socket (its domain and type) and on the call, so the decoder takes both and follows Linux
//! (net/ipv4/af_inet.c, net/ipv4/udp.c, net/ipv6/af_inet6.c, net/ipv6/datagram.c,
//! net/ipv6/udp.c, net/ipv6/tcp_ipv6.c, net/unix/af_unix.c):
//!
//! * `AF_UNSPEC` is a disconnect for `connect` (nothing is reached); for a UDP `sendto` on an
//!   IPv4 socket it is read as `AF_INET` (the address is used), on an IPv6 socket as no
//!   address at all; `bind` of an IPv4 socket reads it as `AF_INET` when the address is
//!   `INADDR_ANY`;
//! * an IPv6 UDP socket takes `AF_INET` addresses for `connect` and `sendto` (IPv4 traffic);
//! * IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible (`::a.b.c.d`) IPv6 addresses are IPv4
//!   ([`canonical_ip`]); flow labels, scope ids and bytes after the structure never matter;
//! * a unix address is a path up to its first NUL, or an abstract name (a leading NUL, then
//!   every byte up to the length given), or nothing (autobind);
//! * a length the kernel would refuse gives the kernel's errno ([`Decoded::Refuse`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::errno::Errno;

/// `AF_UNSPEC`.
pub const AF_UNSPEC: i32 = 0;
/// `AF_UNIX`.
pub const AF_UNIX: i32 = 1;
/// `AF_INET`.
pub const AF_INET: i32 = 2;
/// `AF_INET6`.
pub const AF_INET6: i32 = 10;
/// `AF_NETLINK`.
pub const AF_NETLINK: i32 = 16;
/// `SOCK_STREAM`.
pub const SOCK_STREAM: i32 = 1;
/// `SOCK_DGRAM`.
pub const SOCK_DGRAM: i32 = 2;
/// `SOCK_RAW`.
pub const SOCK_RAW: i32 = 3;
/// `SOCK_SEQPACKET`.
pub const SOCK_SEQPACKET: i32 = 5;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: i32 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: i32 = 17;
/// `NETLINK_ROUTE`.
pub const NETLINK_ROUTE: i32 = 0;
/// `sizeof(struct sockaddr_in)`.
const SIN_LEN: usize = 16;
/// `SIN6_LEN_RFC2133`: a `struct sockaddr_in6` without its scope id, the shortest the kernel
/// takes.
const SIN6_LEN: usize = 24;
/// `sizeof(struct sockaddr_un)`.
const SUN_LEN: usize = 110;
/// `sizeof(struct sockaddr_storage)`: no socket address is longer.
pub const SOCKADDR_MAX: usize = 128;

/// What a socket is, as the kernel reports it (`SO_DOMAIN`, `SO_TYPE`, `SO_PROTOCOL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockKind {
    /// `AF_*`.
    pub domain: i32,
    /// `SOCK_*`, without `SOCK_NONBLOCK`/`SOCK_CLOEXEC`.
    pub ty: i32,
    /// The protocol (`IPPROTO_*`, `NETLINK_*`, ...).
    pub protocol: i32,
}

/// The transports the firewall reasons about; everything else is [`Transport::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP over IPv4 or IPv6.
    Tcp,
    /// UDP over IPv4 or IPv6.
    Udp,
    /// A unix socket of any type.
    Unix,
    /// `NETLINK_ROUTE` (interface and address queries, as `getaddrinfo` and `if_nameindex`
    /// make them).
    NetlinkRoute,
    /// Anything else: raw and packet sockets, SCTP, other netlink protocols, vsock, ...
    Other,
}

impl SockKind {
    /// The transport of this socket.
    pub fn transport(&self) -> Transport {
        let inet = matches!(self.domain, AF_INET | AF_INET6);
        match (self.domain, self.ty, self.protocol) {
            (_, SOCK_STREAM, 0 | IPPROTO_TCP) if inet => Transport::Tcp,
            (_, SOCK_DGRAM, 0 | IPPROTO_UDP) if inet => Transport::Udp,
            (AF_UNIX, _, _) => Transport::Unix,
            (AF_NETLINK, _, NETLINK_ROUTE) => Transport::NetlinkRoute,
            _ => Transport::Other,
        }
    }

    /// Whether the socket sends datagrams with a destination each (UDP, unix datagrams).
    pub fn datagram(&self) -> bool {
        self.ty == SOCK_DGRAM
    }
}

/// An operation that names an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `bind`: the endpoint is the local address.
    Bind,
    /// `connect` (and a stream socket's `sendto`/`sendmsg` with an address: `MSG_FASTOPEN`).
    Connect,
    /// `sendto`, `sendmsg`, `sendmmsg` of a datagram to an address.
    Send,
    /// `listen`: the endpoint is the local address.
    Listen,
    /// `accept`, `accept4`: the endpoint is the peer.
    Accept,
    /// A datagram received on a socket: the endpoint is its sender.
    Receive,
}

impl Op {
    /// Every operation, in the order of [`Op::name`]'s documentation.
    pub const ALL: [Op; 6] = [Op::Bind, Op::Connect, Op::Send, Op::Listen, Op::Accept, Op::Receive];

    /// The name policy files use.
    pub fn name(self) -> &'static str {
        match self {
            Op::Bind => "bind",
            Op::Connect => "connect",
            Op::Send => "send",
            Op::Listen => "listen",
            Op::Accept => "accept",
            Op::Receive => "receive",
        }
    }

    /// The operation named `s`.
    pub fn from_name(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.name() == s)
    }
}

/// A decoded, canonical endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// An IP address and port; IPv4-mapped and -compatible IPv6 addresses are IPv4.
    Ip(IpAddr, u16),
    /// A unix socket path, as named (relative paths are resolved by the caller).
    UnixPath(Vec<u8>),
    /// A unix abstract name (the bytes after the leading NUL).
    UnixAbstract(Vec<u8>),
    /// A unix socket bound to a name the kernel picks (`bind` with only the family).
    UnixAutobind,
    /// A netlink port (`nl_pid`, 0 is the kernel) and multicast groups.
    Netlink {
        /// `nl_pid`.
        pid: u32,
        /// `nl_groups`.
        groups: u32,
    },
}

impl Endpoint {
    /// The family name audit lines and policy files use: `ipv4`, `ipv6`, `unix-path`,
    /// `unix-abstract`, `netlink`.
    pub fn family(&self) -> &'static str {
        match self {
            Endpoint::Ip(IpAddr::V4(_), _) => "ipv4",
            Endpoint::Ip(IpAddr::V6(_), _) => "ipv6",
            Endpoint::UnixPath(_) => "unix-path",
            Endpoint::UnixAbstract(_) | Endpoint::UnixAutobind => "unix-abstract",
            Endpoint::Netlink { .. } => "netlink",
        }
    }
}

/// What a socket address means to the kernel for one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The call reaches (or binds) this endpoint.
    Reach(Endpoint),
    /// The call reaches no endpoint: a disconnect (`AF_UNSPEC`), or an address the kernel
    /// ignores for this socket (a connected unix stream's `sendto`).
    Nothing,
    /// The kernel refuses the address with this errno before it reaches anything; the caller
    /// returns it without making the call.
    Refuse(Errno),
    /// A socket of a kind the firewall cannot reason about (raw, packet, other netlink
    /// protocols, ...): what it reaches is not decoded.
    Opaque,
}

fn u16_be(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn u32_ne(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}

/// The family field of a socket address (`sa_family_t`, host order).
pub fn family_of(bytes: &[u8]) -> Option<i32> {
    (bytes.len() >= 2).then(|| i32::from(u16::from_ne_bytes([bytes[0], bytes[1]])))
}

fn v4(bytes: &[u8]) -> Decoded {
    if bytes.len() < SIN_LEN {
        return Decoded::Refuse(Errno::EINVAL);
    }
    let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
    Decoded::Reach(Endpoint::Ip(IpAddr::V4(ip), u16_be(bytes, 2)))
}

fn v6(bytes: &[u8]) -> Decoded {
    if bytes.len() < SIN6_LEN {
        return Decoded::Refuse(Errno::EINVAL);
    }
    let a: [u8; 16] = bytes[8..24].try_into().unwrap();
    Decoded::Reach(Endpoint::Ip(canonical_ip(IpAddr::V6(Ipv6Addr::from(a))), u16_be(bytes, 2)))
}

/// IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible (`::a.b.c.d`, other than `::` and
/// `::1`) IPv6 addresses as the IPv4 address they carry; every other address as it is.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => {
            let s = a.segments();
            let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
            if s[..5] == [0; 5] && (s[5] == 0xffff || (s[5] == 0 && u32::from(low) > 1)) {
                IpAddr::V4(low)
            } else {
                ip
            }
        }
        v4 => v4,
    }
}

/// Where a `connect` or `sendto` to the unspecified address goes: Linux sends it to the
/// socket's own bound address when that is a specific IPv4 address, else to the loopback
/// address (`127.0.0.1`, or `::1` for IPv6 unless the socket is bound to an IPv4-mapped
/// address): net/ipv4/route.c `ip_route_output_key_hash_rcu`, net/ipv6/tcp_ipv6.c and
/// datagram.c ("connect to self if daddr is unspecified"). `bound` is the socket's local
/// address, canonical ([`canonical_ip`]); other addresses are returned as they are.
pub fn unspecified_destination(ip: IpAddr, bound: Option<IpAddr>) -> IpAddr {
    match ip {
        IpAddr::V4(a) if a.is_unspecified() => match bound {
            Some(IpAddr::V4(b)) if !b.is_unspecified() => IpAddr::V4(b),
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        },
        IpAddr::V6(a) if a.is_unspecified() => match bound {
            Some(IpAddr::V4(_)) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            _ => IpAddr::V6(Ipv6Addr::LOCALHOST),
        },
        other => other,
    }
}

/// The path of a pathname unix address (`sun_path` up to its NUL), `None` for any other.
pub fn unix_path_of(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() <= 2 || u16::from_ne_bytes([bytes[0], bytes[1]]) != AF_UNIX as u16 {
        return None;
    }
    let path = &bytes[2..bytes.len().min(SUN_LEN)];
    if path[0] == 0 {
        return None;
    }
    Some(&path[..path.iter().position(|&b| b == 0).unwrap_or(path.len())])
}

/// Decodes the socket address `bytes` (the program's length, at most [`SOCKADDR_MAX`]
/// bytes) that call `op` hands the kernel for a socket of kind `kind`. For [`Op::Send`] on a
/// stream socket the address is what a `MSG_FASTOPEN` connect would use: call it with
/// [`Op::Connect`] instead (see [`send_op`]).
pub fn decode(kind: &SockKind, op: Op, bytes: &[u8]) -> Decoded {
    let Some(family) = family_of(bytes) else {
        return Decoded::Refuse(Errno::EINVAL);
    };
    let transport = kind.transport();
    match kind.domain {
        AF_INET if matches!(transport, Transport::Tcp | Transport::Udp) => match (op, family) {
            (Op::Connect, AF_UNSPEC) => Decoded::Nothing,
            (Op::Bind, AF_UNSPEC) => {
                // "Compatibility games": AF_UNSPEC with INADDR_ANY binds as AF_INET.
                if bytes.len() >= SIN_LEN && bytes[4..8] == [0; 4] {
                    v4(bytes)
                } else if bytes.len() < SIN_LEN {
                    Decoded::Refuse(Errno::EINVAL)
                } else {
                    Decoded::Refuse(Errno(libc::EAFNOSUPPORT))
                }
            }
            // udp_sendmsg: an AF_UNSPEC destination is used as AF_INET.
            (Op::Send, AF_UNSPEC) => v4(bytes),
            (_, AF_INET) => v4(bytes),
            _ if bytes.len() < SIN_LEN => Decoded::Refuse(Errno::EINVAL),
            _ => Decoded::Refuse(Errno(libc::EAFNOSUPPORT)),
        },
        AF_INET6 if matches!(transport, Transport::Tcp | Transport::Udp) => {
            let udp = transport == Transport::Udp;
            match (op, family) {
                (Op::Connect, AF_UNSPEC) => Decoded::Nothing,
                // udpv6_sendmsg: AF_UNSPEC means "no address" (the connected peer).
                (Op::Send, AF_UNSPEC) if udp => Decoded::Nothing,
                (Op::Send, AF_UNSPEC) => Decoded::Refuse(Errno::EINVAL),
                // An IPv6 UDP socket sends to and connects to IPv4 addresses given as such.
                (Op::Connect | Op::Send, AF_INET) if udp => v4(bytes),
                (_, AF_INET6) => v6(bytes),
                (Op::Send, _) if udp => Decoded::Refuse(Errno::EINVAL),
                _ if bytes.len() < SIN6_LEN => Decoded::Refuse(Errno::EINVAL),
                _ => Decoded::Refuse(Errno(libc::EAFNOSUPPORT)),
            }
        }
        AF_UNIX => {
            let stream = kind.ty != SOCK_DGRAM;
            if op == Op::Send && stream {
                // A stream socket's sendto fails with EISCONN/EOPNOTSUPP; a seqpacket socket
                // drops the name: either way nothing new is reached.
                return Decoded::Nothing;
            }
            if family == AF_UNSPEC && op == Op::Connect && !stream {
                return Decoded::Nothing; // a datagram socket's disconnect
            }
            if family != AF_UNIX || bytes.len() > SUN_LEN {
                return Decoded::Refuse(Errno::EINVAL);
            }
            if bytes.len() == 2 {
                return if op == Op::Bind {
                    Decoded::Reach(Endpoint::UnixAutobind)
                } else {
                    Decoded::Refuse(Errno::EINVAL)
                };
            }
            let path = &bytes[2..];
            if path[0] == 0 {
                Decoded::Reach(Endpoint::UnixAbstract(path[1..].to_vec()))
            } else {
                let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                Decoded::Reach(Endpoint::UnixPath(path[..end].to_vec()))
            }
        }
        AF_NETLINK if transport == Transport::NetlinkRoute => {
            if bytes.len() < 12 {
                return Decoded::Refuse(Errno::EINVAL);
            }
            match (op, family) {
                // Binding a netlink socket subscribes it to groups: it reaches nothing.
                (Op::Bind, _) => Decoded::Nothing,
                (Op::Connect, AF_UNSPEC) => Decoded::Nothing,
                (_, AF_NETLINK) => Decoded::Reach(Endpoint::Netlink {
                    pid: u32_ne(bytes, 4),
                    groups: u32_ne(bytes, 8),
                }),
                _ => Decoded::Refuse(Errno::EINVAL),
            }
        }
        _ => Decoded::Opaque,
    }
}

/// The operation a `sendto`/`sendmsg` with a destination is for a socket of kind `kind`: a
/// stream socket's destination is a connect (`MSG_FASTOPEN`; without it the kernel ignores
/// the address, which is checked all the same), a datagram's a send.
pub fn send_op(kind: &SockKind) -> Op {
    if kind.ty == SOCK_STREAM && kind.domain != AF_UNIX { Op::Connect } else { Op::Send }
}

/// The bytes of a `struct sockaddr_in`/`sockaddr_in6` for `ip:port` (canonical IPv4 as
/// `AF_INET`), for tests and for the addresses the sandbox builds itself.
pub fn encode_ip(ip: IpAddr, port: u16) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => {
            let mut b = vec![0u8; SIN_LEN];
            b[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&port.to_be_bytes());
            b[4..8].copy_from_slice(&a.octets());
            b
        }
        IpAddr::V6(a) => {
            let mut b = vec![0u8; 28];
            b[..2].copy_from_slice(&(AF_INET6 as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&port.to_be_bytes());
            b[8..24].copy_from_slice(&a.octets());
            b
        }
    }
}

/// The address in a `sockaddr_in`/`sockaddr_in6` returned by the kernel (`getsockname`,
/// `accept`), canonical; `None` for other families or short buffers.
pub fn ip_of(bytes: &[u8]) -> Option<(IpAddr, u16)> {
    match family_of(bytes)? {
        AF_INET if bytes.len() >= SIN_LEN => {
            let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
            Some((IpAddr::V4(ip), u16_be(bytes, 2)))
        }
        AF_INET6 if bytes.len() >= SIN6_LEN => {
            let a: [u8; 16] = bytes[8..24].try_into().unwrap();
            Some((canonical_ip(IpAddr::V6(Ipv6Addr::from(a))), u16_be(bytes, 2)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP4: SockKind = SockKind { domain: AF_INET, ty: SOCK_STREAM, protocol: IPPROTO_TCP };
    const UDP4: SockKind = SockKind { domain: AF_INET, ty: SOCK_DGRAM, protocol: IPPROTO_UDP };
    const TCP6: SockKind = SockKind { domain: AF_INET6, ty: SOCK_STREAM, protocol: IPPROTO_TCP };
    const UDP6: SockKind = SockKind { domain: AF_INET6, ty: SOCK_DGRAM, protocol: IPPROTO_UDP };
    const UNIX_DGRAM: SockKind = SockKind { domain: AF_UNIX, ty: SOCK_DGRAM, protocol: 0 };
    const UNIX_STREAM: SockKind = SockKind { domain: AF_UNIX, ty: SOCK_STREAM, protocol: 0 };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn with_family(mut b: Vec<u8>, family: i32) -> Vec<u8> {
        b[..2].copy_from_slice(&(family as u16).to_ne_bytes());
        b
    }

    #[test]
    fn mapped_and_compatible_addresses_are_ipv4() {
        assert_eq!(canonical_ip(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(canonical_ip(ip("::10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(canonical_ip(ip("::")), ip("::"));
        assert_eq!(canonical_ip(ip("::1")), ip("::1"));
        assert_eq!(canonical_ip(ip("::2")), ip("0.0.0.2"));
        assert_eq!(canonical_ip(ip("::ffff:0:0")), ip("0.0.0.0"));
        assert_eq!(canonical_ip(ip("2001:db8::1")), ip("2001:db8::1"));
        assert_eq!(canonical_ip(ip("64:ff9b::1.2.3.4")), ip("64:ff9b::1.2.3.4"));
    }

    #[test]
    fn inet_forms_as_linux_reads_them() {
        let a = encode_ip(ip("10.0.0.1"), 53);
        let reach = Decoded::Reach(Endpoint::Ip(ip("10.0.0.1"), 53));
        assert_eq!(decode(&UDP4, Op::Send, &a), reach);
        // AF_UNSPEC: a disconnect for connect, AF_INET for an IPv4 UDP sendto.
        let unspec = with_family(a.clone(), AF_UNSPEC);
        assert_eq!(decode(&UDP4, Op::Connect, &unspec), Decoded::Nothing);
        assert_eq!(decode(&TCP4, Op::Connect, &unspec), Decoded::Nothing);
        assert_eq!(decode(&UDP4, Op::Send, &unspec), reach);
        assert_eq!(decode(&UDP6, Op::Send, &unspec), Decoded::Nothing);
        // bind: AF_UNSPEC only with INADDR_ANY.
        assert_eq!(decode(&TCP4, Op::Bind, &unspec), Decoded::Refuse(Errno(libc::EAFNOSUPPORT)));
        let any = with_family(encode_ip(ip("0.0.0.0"), 80), AF_UNSPEC);
        assert_eq!(decode(&TCP4, Op::Bind, &any), Decoded::Reach(Endpoint::Ip(ip("0.0.0.0"), 80)));
        // An IPv6 UDP socket takes AF_INET addresses; TCP does not.
        assert_eq!(decode(&UDP6, Op::Send, &a), reach);
        assert_eq!(decode(&UDP6, Op::Connect, &a), reach);
        assert_eq!(decode(&TCP6, Op::Connect, &a), Decoded::Refuse(Errno::EINVAL));
        // Short addresses.
        assert_eq!(decode(&TCP4, Op::Connect, &a[..15]), Decoded::Refuse(Errno::EINVAL));
        assert_eq!(decode(&TCP4, Op::Connect, &a[..1]), Decoded::Refuse(Errno::EINVAL));
        let six = encode_ip(ip("::ffff:10.0.0.1"), 53);
        assert_eq!(decode(&TCP6, Op::Connect, &six[..23]), Decoded::Refuse(Errno::EINVAL));
        assert_eq!(decode(&TCP6, Op::Connect, &six[..24]), reach);
        assert_eq!(decode(&UDP6, Op::Send, &six), reach);
    }

    #[test]
    fn trailing_bytes_flowinfo_and_scope_do_not_matter() {
        let mut six = encode_ip(ip("2001:db8::5"), 443);
        let plain = decode(&TCP6, Op::Connect, &six);
        six[4..8].copy_from_slice(&0x12345u32.to_be_bytes());
        six[24..28].copy_from_slice(&7u32.to_ne_bytes());
        six.extend_from_slice(&[0xaa; 40]);
        assert_eq!(decode(&TCP6, Op::Connect, &six), plain);
        let mut four = encode_ip(ip("1.2.3.4"), 80);
        let plain = decode(&TCP4, Op::Connect, &four);
        four[8..16].copy_from_slice(&[0xff; 8]);
        four.extend_from_slice(&[1; 100]);
        assert_eq!(decode(&TCP4, Op::Connect, &four), plain);
    }

    #[test]
    fn unspecified_destinations_are_where_linux_sends_them() {
        assert_eq!(unspecified_destination(ip("0.0.0.0"), None), ip("127.0.0.1"));
        assert_eq!(unspecified_destination(ip("0.0.0.0"), Some(ip("0.0.0.0"))), ip("127.0.0.1"));
        assert_eq!(unspecified_destination(ip("0.0.0.0"), Some(ip("10.9.8.7"))), ip("10.9.8.7"));
        assert_eq!(unspecified_destination(ip("::"), None), ip("::1"));
        assert_eq!(unspecified_destination(ip("::"), Some(ip("10.0.0.1"))), ip("127.0.0.1"));
        assert_eq!(unspecified_destination(ip("1.2.3.4"), None), ip("1.2.3.4"));
    }

    #[test]
    fn unix_addresses() {
        let mut p = vec![1u8, 0];
        p[..2].copy_from_slice(&(AF_UNIX as u16).to_ne_bytes());
        let mut path = p.clone();
        path.extend_from_slice(b"/run/x.sock\0garbage");
        assert_eq!(
            decode(&UNIX_DGRAM, Op::Send, &path),
            Decoded::Reach(Endpoint::UnixPath(b"/run/x.sock".to_vec()))
        );
        let mut abs = p.clone();
        abs.extend_from_slice(b"\0name\0x");
        assert_eq!(
            decode(&UNIX_STREAM, Op::Connect, &abs),
            Decoded::Reach(Endpoint::UnixAbstract(b"name\0x".to_vec()))
        );
        assert_eq!(decode(&UNIX_STREAM, Op::Bind, &p), Decoded::Reach(Endpoint::UnixAutobind));
        assert_eq!(decode(&UNIX_STREAM, Op::Connect, &p), Decoded::Refuse(Errno::EINVAL));
        assert_eq!(decode(&UNIX_STREAM, Op::Send, &path), Decoded::Nothing);
        let unspec = with_family(path.clone(), AF_UNSPEC);
        assert_eq!(decode(&UNIX_DGRAM, Op::Connect, &unspec), Decoded::Nothing);
        assert_eq!(decode(&UNIX_STREAM, Op::Connect, &unspec), Decoded::Refuse(Errno::EINVAL));
    }

    #[test]
    fn kinds() {
        assert_eq!(TCP6.transport(), Transport::Tcp);
        assert_eq!(UDP4.transport(), Transport::Udp);
        let raw = SockKind { domain: AF_INET, ty: SOCK_RAW, protocol: IPPROTO_TCP };
        assert_eq!(raw.transport(), Transport::Other);
        let sctp = SockKind { domain: AF_INET, ty: SOCK_STREAM, protocol: 132 };
        assert_eq!(sctp.transport(), Transport::Other);
        let icmp = SockKind { domain: AF_INET, ty: SOCK_DGRAM, protocol: 1 };
        assert_eq!(icmp.transport(), Transport::Other);
        assert_eq!(decode(&raw, Op::Send, &encode_ip(ip("1.1.1.1"), 0)), Decoded::Opaque);
        assert_eq!(send_op(&TCP4), Op::Connect);
        assert_eq!(send_op(&UDP6), Op::Send);
        assert_eq!(send_op(&UNIX_STREAM), Op::Send);
    }
}
