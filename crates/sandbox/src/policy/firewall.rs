//! The firewall: network rules and how a request is matched against them.
//!
//! A request is one operation ([`Op`]) on one socket ([`Transport`]) naming one canonical
//! [`Endpoint`] (see [`super::endpoint`]). Rules are tried in order and **the first rule that
//! matches decides**; when none does, the policy's default does (deny with `EACCES` unless the
//! file says otherwise). A rule matches when its operations include the request's, its protocol
//! is the socket's (or `any`), its target contains the endpoint and, if it names local ports,
//! the socket's local port is one of them.
//!
//! A `connect` or `send` rule also matches `receive` from the same endpoints: a datagram
//! socket needs that to get its answers (see [`NetRule::new`]). A `send` rule also matches a
//! datagram socket's `connect`, which only sets where its datagrams go (resolvers connect
//! their UDP sockets).

use std::net::IpAddr;

use ipnet::IpNet;

use super::Action;
use super::endpoint::{Endpoint, Op, SockKind, Transport};

/// A set of [`Op`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Ops(u8);

impl Ops {
    /// No operation.
    pub const NONE: Ops = Ops(0);

    /// The set holding only `op`.
    pub fn of(op: Op) -> Ops {
        Ops(1 << op as u8)
    }

    /// This set and `op`.
    pub fn with(self, op: Op) -> Ops {
        Ops(self.0 | Ops::of(op).0)
    }

    /// Whether `op` is in the set.
    pub fn has(self, op: Op) -> bool {
        self.0 & Ops::of(op).0 != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The operations in the set, in [`Op::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Op> {
        Op::ALL.into_iter().filter(move |&o| self.has(o))
    }
}

/// The protocol a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP only.
    Tcp,
    /// UDP only.
    Udp,
    /// Any socket (unix rules are always `any`).
    Any,
}

impl Protocol {
    /// Whether a socket of transport `t` is one this protocol means.
    pub fn matches(self, t: Transport) -> bool {
        match self {
            Protocol::Tcp => t == Transport::Tcp,
            Protocol::Udp => t == Transport::Udp,
            Protocol::Any => true,
        }
    }

    /// The name policy files use.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Any => "any",
        }
    }
}

/// An inclusive range of ports; `0..=65535` is any port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

impl PortRange {
    /// Every port (0 included: an ephemeral `bind`).
    pub const ANY: PortRange = PortRange { lo: 0, hi: u16::MAX };

    /// One port.
    pub fn one(p: u16) -> PortRange {
        PortRange { lo: p, hi: p }
    }

    /// Whether `p` is in the range.
    pub fn contains(self, p: u16) -> bool {
        (self.lo..=self.hi).contains(&p)
    }

    /// Whether this is every port.
    pub fn is_any(self) -> bool {
        self == PortRange::ANY
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_any() {
            f.write_str("any")
        } else if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// A unix path a rule names: exactly this path, or (`subtree`) every path below a directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathMatch {
    /// An absolute path, resolved when the policy was loaded (symlinks followed where the
    /// path exists), without a trailing `/`.
    pub path: Vec<u8>,
    /// Every path below `path` rather than `path` itself.
    pub subtree: bool,
}

impl PathMatch {
    /// Whether `p` (absolute, resolved) is this path, or below it.
    pub fn matches(&self, p: &[u8]) -> bool {
        if self.subtree {
            p.len() > self.path.len()
                && p.starts_with(&self.path)
                && (p[self.path.len()] == b'/' || self.path.is_empty())
        } else {
            p == self.path.as_slice()
        }
    }
}

/// What endpoints a rule is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// IP endpoints: any of these networks (canonical: no IPv4-mapped ones), these ports.
    Ip {
        /// The networks; `any` is `0.0.0.0/0` and `::/0`.
        nets: Vec<IpNet>,
        /// The ports.
        ports: PortRange,
    },
    /// Unix socket paths (`None`: any path).
    UnixPath(Option<PathMatch>),
    /// Unix abstract names (`None`: any name, autobind included).
    UnixAbstract(Option<Vec<u8>>),
}

impl Target {
    /// Whether `ep` is one of this target's endpoints.
    pub fn matches(&self, ep: &Endpoint) -> bool {
        match (self, ep) {
            (Target::Ip { nets, ports }, Endpoint::Ip(ip, port)) => {
                ports.contains(*port) && nets.iter().any(|n| n.contains(ip))
            }
            (Target::UnixPath(None), Endpoint::UnixPath(_)) => true,
            (Target::UnixPath(Some(m)), Endpoint::UnixPath(p)) => m.matches(p),
            (Target::UnixAbstract(None), Endpoint::UnixAbstract(_) | Endpoint::UnixAutobind) => {
                true
            }
            (Target::UnixAbstract(Some(n)), Endpoint::UnixAbstract(a)) => n == a,
            _ => false,
        }
    }
}

/// A socket of a kind the firewall cannot reason about, which no socket rule names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindRefused;

/// One network rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetRule {
    /// Where the rule comes from (`policy.toml:12`, `--allow-connect 127.0.0.1:80`), for
    /// audit lines and errors.
    pub label: String,
    /// What it decides.
    pub action: Action,
    /// The operations it is about.
    pub ops: Ops,
    /// The protocol it is about.
    pub protocol: Protocol,
    /// The endpoints it is about.
    pub target: Target,
    /// For `accept`/`receive`: the local ports it is about (`None`: any).
    pub local_ports: Option<PortRange>,
}

impl NetRule {
    /// A rule; `connect` and `send` imply `receive` from the same endpoints (answers).
    pub fn new(
        label: String,
        action: Action,
        ops: Ops,
        protocol: Protocol,
        target: Target,
        local_ports: Option<PortRange>,
    ) -> NetRule {
        let ops =
            if ops.has(Op::Connect) || ops.has(Op::Send) { ops.with(Op::Receive) } else { ops };
        NetRule { label, action, ops, protocol, target, local_ports }
    }

    /// Whether the rule decides `req`.
    pub fn matches(&self, req: &Request<'_>) -> bool {
        (self.ops.has(req.op) || (req.datagram && req.op == Op::Connect && self.ops.has(Op::Send)))
            && self.protocol.matches(req.transport)
            && self.target.matches(req.endpoint)
            && self.local_ports.is_none_or(|r| req.local_port.is_some_and(|p| r.contains(p)))
    }
}

/// One decision to make.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The operation.
    pub op: Op,
    /// The socket's transport.
    pub transport: Transport,
    /// The endpoint it names (canonical; unix paths absolute and resolved).
    pub endpoint: &'a Endpoint,
    /// The socket's local port, for `accept` and `receive`.
    pub local_port: Option<u16>,
    /// Whether the socket is a datagram socket: its `connect` only sets where its datagrams
    /// go, so `send` rules decide it as well as `connect` rules.
    pub datagram: bool,
}

/// Socket kinds beyond TCP, UDP, unix and `NETLINK_ROUTE` that a policy may let the program
/// create (`[network] sockets = [...]`). The firewall cannot mediate what they reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocketKindName {
    /// `SOCK_RAW` in `AF_INET`/`AF_INET6`.
    Raw,
    /// ICMP "ping" sockets (`SOCK_DGRAM` with `IPPROTO_ICMP`/`IPPROTO_ICMPV6`).
    Icmp,
    /// SCTP.
    Sctp,
    /// UDP-Lite.
    UdpLite,
    /// Multipath TCP.
    Mptcp,
    /// `AF_PACKET`.
    Packet,
    /// `AF_NETLINK` of any protocol.
    Netlink,
    /// Any other address family, by number (`af-40` is `AF_VSOCK`).
    Family(i32),
}

/// Named address families: (name, `AF_*`).
const FAMILY_NAMES: &[(&str, i32)] = &[
    ("vsock", 40),
    ("xdp", 44),
    ("bluetooth", 31),
    ("can", 29),
    ("tipc", 30),
    ("alg", 38),
    ("key", 15),
    ("rds", 21),
    ("smc", 43),
    ("mctp", 45),
    ("qipcrtr", 42),
    ("kcm", 41),
    ("llc", 26),
    ("appletalk", 5),
    ("ax25", 3),
    ("x25", 9),
    ("ipx", 4),
    ("ieee802154", 36),
    ("phonet", 35),
    ("rxrpc", 33),
    ("nfc", 39),
    ("pppox", 24),
    ("atmpvc", 8),
    ("atmsvc", 20),
    ("caif", 37),
    ("isdn", 34),
    ("netrom", 6),
    ("rose", 11),
];

impl SocketKindName {
    /// The names a policy file may use, for error messages.
    pub fn known() -> String {
        let mut v = vec!["raw", "icmp", "sctp", "udplite", "mptcp", "packet", "netlink"];
        v.extend(FAMILY_NAMES.iter().map(|(n, _)| *n));
        v.push("af-N");
        v.join(", ")
    }

    /// The name a policy file uses for this kind ([`SocketKindName::parse`] reads it back).
    pub fn name(self) -> String {
        match self {
            SocketKindName::Raw => "raw".into(),
            SocketKindName::Icmp => "icmp".into(),
            SocketKindName::Sctp => "sctp".into(),
            SocketKindName::UdpLite => "udplite".into(),
            SocketKindName::Mptcp => "mptcp".into(),
            SocketKindName::Packet => "packet".into(),
            SocketKindName::Netlink => "netlink".into(),
            SocketKindName::Family(af) => FAMILY_NAMES
                .iter()
                .find(|(_, n)| *n == af)
                .map_or_else(|| format!("af-{af}"), |(name, _)| (*name).to_string()),
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<SocketKindName> {
        Some(match s {
            "raw" => SocketKindName::Raw,
            "icmp" => SocketKindName::Icmp,
            "sctp" => SocketKindName::Sctp,
            "udplite" => SocketKindName::UdpLite,
            "mptcp" => SocketKindName::Mptcp,
            "packet" => SocketKindName::Packet,
            "netlink" => SocketKindName::Netlink,
            _ => {
                if let Some(&(_, af)) = FAMILY_NAMES.iter().find(|(n, _)| *n == s) {
                    SocketKindName::Family(af)
                } else {
                    let n: i32 = s.strip_prefix("af-")?.parse().ok()?;
                    if !(3..64).contains(&n) || matches!(n, 10 | 16 | 17) {
                        return None;
                    }
                    SocketKindName::Family(n)
                }
            }
        })
    }

    /// Whether a socket of kind `k` is of this kind.
    pub fn matches(self, k: &SockKind) -> bool {
        use super::endpoint::{AF_INET, AF_INET6, AF_NETLINK, SOCK_DGRAM, SOCK_RAW, SOCK_STREAM};
        let inet = matches!(k.domain, AF_INET | AF_INET6);
        match self {
            SocketKindName::Raw => inet && k.ty == SOCK_RAW,
            SocketKindName::Icmp => inet && k.ty == SOCK_DGRAM && matches!(k.protocol, 1 | 58),
            SocketKindName::Sctp => inet && k.protocol == 132,
            SocketKindName::UdpLite => inet && k.ty == SOCK_DGRAM && k.protocol == 136,
            SocketKindName::Mptcp => inet && k.ty == SOCK_STREAM && k.protocol == 262,
            SocketKindName::Packet => k.domain == 17,
            SocketKindName::Netlink => k.domain == AF_NETLINK,
            SocketKindName::Family(af) => k.domain == af,
        }
    }
}

/// A named socket kind the program may create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketRule {
    /// Where it comes from.
    pub label: String,
    /// The kind.
    pub kind: SocketKindName,
}

/// The network part of a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetPolicy {
    /// What happens when no rule matches.
    pub default: Action,
    /// Where the default was set (`default` if nowhere).
    pub default_label: String,
    /// The rules, in order.
    pub rules: Vec<NetRule>,
    /// Extra socket kinds.
    pub sockets: Vec<SocketRule>,
}

impl NetPolicy {
    /// No network: every endpoint denied with `EACCES`.
    pub fn deny_all(label: &str) -> NetPolicy {
        NetPolicy {
            default: Action::Deny(crate::errno::Errno::EACCES),
            default_label: label.into(),
            rules: Vec::new(),
            sockets: Vec::new(),
        }
    }

    /// The first rule matching `req` (its index), or `None` for the default.
    pub fn first_match(&self, req: &Request<'_>) -> Option<usize> {
        self.rules.iter().position(|r| r.matches(req))
    }

    /// The action for `req`.
    pub fn decide(&self, req: &Request<'_>) -> Action {
        self.first_match(req).map_or(self.default, |i| self.rules[i].action)
    }

    /// Whether a socket of kind `k` may be created (or used, when it came from elsewhere):
    /// TCP, UDP, unix and `NETLINK_ROUTE` always; other kinds when a socket rule names them
    /// (its index); [`KindRefused`] otherwise.
    pub fn socket_allowed(&self, k: &SockKind) -> Result<Option<usize>, KindRefused> {
        match k.transport() {
            Transport::Tcp | Transport::Udp | Transport::Unix | Transport::NetlinkRoute => Ok(None),
            Transport::Other => {
                self.sockets.iter().position(|s| s.kind.matches(k)).map(Some).ok_or(KindRefused)
            }
        }
    }
}

/// `any`: every IPv4 and IPv6 address.
pub fn any_nets() -> Vec<IpNet> {
    vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()]
}

/// `localhost`: `127.0.0.1` and `::1`.
pub fn localhost_nets() -> Vec<IpNet> {
    vec!["127.0.0.1/32".parse().unwrap(), "::1/128".parse().unwrap()]
}

/// `loopback`: `127.0.0.0/8` and `::1`.
pub fn loopback_nets() -> Vec<IpNet> {
    vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()]
}

/// A network in canonical form: an IPv4-mapped IPv6 network (`::ffff:0:0/96` or narrower) is
/// the IPv4 network it maps, as addresses are matched in canonical form.
pub fn canonical_net(n: IpNet) -> IpNet {
    if let IpNet::V6(v6) = n {
        let s = v6.network().segments();
        if v6.prefix_len() >= 96 && s[..6] == [0, 0, 0, 0, 0, 0xffff] {
            let IpAddr::V4(a) = super::endpoint::canonical_ip(IpAddr::V6(v6.network())) else {
                return n;
            };
            return IpNet::V4(ipnet::Ipv4Net::new(a, v6.prefix_len() - 96).unwrap());
        }
    }
    n.trunc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::Errno;

    fn ip_rule(
        action: Action,
        ops: &[Op],
        proto: Protocol,
        nets: &[&str],
        ports: PortRange,
    ) -> NetRule {
        let ops = ops.iter().fold(Ops::NONE, |s, &o| s.with(o));
        let nets = nets.iter().map(|n| canonical_net(n.parse().unwrap())).collect();
        NetRule::new("t".into(), action, ops, proto, Target::Ip { nets, ports }, None)
    }

    fn req<'a>(op: Op, t: Transport, ep: &'a Endpoint) -> Request<'a> {
        Request { op, transport: t, endpoint: ep, local_port: None, datagram: false }
    }

    #[test]
    fn first_match_wins_and_default_denies() {
        let p = NetPolicy {
            default: Action::Deny(Errno::EACCES),
            default_label: "default".into(),
            rules: vec![
                ip_rule(
                    Action::Deny(Errno(111)),
                    &[Op::Connect],
                    Protocol::Any,
                    &["10.0.0.5/32"],
                    PortRange::ANY,
                ),
                ip_rule(
                    Action::Allow,
                    &[Op::Connect],
                    Protocol::Tcp,
                    &["10.0.0.0/8"],
                    PortRange { lo: 80, hi: 90 },
                ),
            ],
            sockets: vec![],
        };
        let ep = |s: &str, port| Endpoint::Ip(s.parse().unwrap(), port);
        assert_eq!(
            p.decide(&req(Op::Connect, Transport::Tcp, &ep("10.0.0.5", 80))),
            Action::Deny(Errno(111))
        );
        assert_eq!(p.decide(&req(Op::Connect, Transport::Tcp, &ep("10.1.0.5", 85))), Action::Allow);
        assert_eq!(
            p.decide(&req(Op::Connect, Transport::Udp, &ep("10.1.0.5", 85))),
            Action::Deny(Errno::EACCES)
        );
        assert_eq!(
            p.decide(&req(Op::Connect, Transport::Tcp, &ep("10.1.0.5", 91))),
            Action::Deny(Errno::EACCES)
        );
        assert_eq!(
            p.decide(&req(Op::Bind, Transport::Tcp, &ep("10.1.0.5", 85))),
            Action::Deny(Errno::EACCES)
        );
        // connect implies receive.
        assert_eq!(p.decide(&req(Op::Receive, Transport::Tcp, &ep("10.1.0.5", 85))), Action::Allow);
    }

    #[test]
    fn mapped_networks_are_ipv4() {
        assert_eq!(
            canonical_net("::ffff:10.0.0.0/104".parse().unwrap()),
            "10.0.0.0/8".parse().unwrap()
        );
        assert_eq!(canonical_net("10.1.2.3/8".parse().unwrap()), "10.0.0.0/8".parse().unwrap());
        assert_eq!(canonical_net("::/0".parse().unwrap()), "::/0".parse().unwrap());
    }

    #[test]
    fn paths_and_names() {
        let m = PathMatch { path: b"/run/app".to_vec(), subtree: true };
        assert!(m.matches(b"/run/app/x.sock"));
        assert!(!m.matches(b"/run/app"));
        assert!(!m.matches(b"/run/apple/x"));
        let root = PathMatch { path: Vec::new(), subtree: true };
        assert!(root.matches(b"/x"));
        let exact = PathMatch { path: b"/run/x.sock".to_vec(), subtree: false };
        assert!(exact.matches(b"/run/x.sock") && !exact.matches(b"/run/x.sock2"));
        assert!(Target::UnixAbstract(None).matches(&Endpoint::UnixAutobind));
        assert!(!Target::UnixAbstract(Some(b"a".to_vec())).matches(&Endpoint::UnixAutobind));
    }

    #[test]
    fn socket_kinds() {
        assert_eq!(SocketKindName::parse("af-40"), Some(SocketKindName::Family(40)));
        assert_eq!(SocketKindName::parse("vsock"), Some(SocketKindName::Family(40)));
        assert_eq!(SocketKindName::parse("af-2"), None);
        assert_eq!(SocketKindName::parse("af-16"), None);
        assert_eq!(SocketKindName::parse("frob"), None);
        let packet = SockKind { domain: 17, ty: 3, protocol: 0 };
        let mut p = NetPolicy::deny_all("x");
        assert!(p.socket_allowed(&packet).is_err());
        p.sockets.push(SocketRule { label: "s".into(), kind: SocketKindName::Packet });
        assert_eq!(p.socket_allowed(&packet), Ok(Some(0)));
        let tcp = SockKind { domain: 2, ty: 1, protocol: 6 };
        assert_eq!(p.socket_allowed(&tcp), Ok(None));
    }

    mod equivalent_addresses {
        use super::*;
        use crate::policy::endpoint::{
            self, AF_INET, AF_INET6, Decoded, IPPROTO_TCP, IPPROTO_UDP, SOCK_DGRAM, SOCK_STREAM,
            SockKind,
        };
        use proptest::prelude::*;
        use std::net::{Ipv4Addr, Ipv6Addr};

        /// A policy of up to 6 rules over IPv4 networks written as such or as IPv4-mapped IPv6
        /// networks (`::ffff:a.b.c.d/96+n`), near 127.0.0.0/8 and 10.0.0.0/8 so that they
        /// often match, with actions that differ.
        fn policy() -> impl Strategy<Value = NetPolicy> {
            let rule = (
                prop_oneof![Just(127u8), Just(10u8), any::<u8>()],
                any::<[u8; 3]>(),
                0u8..=32,
                any::<bool>(),
                0u16..4,
                prop_oneof![Just(Protocol::Any), Just(Protocol::Tcp), Just(Protocol::Udp)],
                0usize..3,
            )
                .prop_map(|(a, rest, prefix, as_mapped, port, protocol, action)| {
                    let v4 = Ipv4Addr::new(a, rest[0], rest[1], rest[2]);
                    let net: IpNet = if as_mapped {
                        format!("{}/{}", v4.to_ipv6_mapped(), 96 + prefix).parse().unwrap()
                    } else {
                        format!("{v4}/{prefix}").parse().unwrap()
                    };
                    let ports =
                        if port == 0 { PortRange::ANY } else { PortRange::one(8000 + port) };
                    let action = [Action::Allow, Action::Deny(Errno(111)), Action::Log][action];
                    let ops = Ops::NONE.with(Op::Connect).with(Op::Send).with(Op::Bind);
                    let target = Target::Ip { nets: vec![canonical_net(net)], ports };
                    NetRule::new("p".into(), action, ops, protocol, target, None)
                });
            proptest::collection::vec(rule, 0..6).prop_map(|rules| NetPolicy {
                default: Action::Deny(Errno::EACCES),
                default_label: "default".into(),
                rules,
                sockets: Vec::new(),
            })
        }

        fn verdict(p: &NetPolicy, kind: &SockKind, op: Op, bytes: &[u8]) -> Option<Action> {
            match endpoint::decode(kind, op, bytes) {
                Decoded::Reach(ep) => {
                    let r = Request {
                        op,
                        transport: kind.transport(),
                        endpoint: &ep,
                        local_port: None,
                        datagram: kind.datagram(),
                    };
                    Some(p.decide(&r))
                }
                _ => None,
            }
        }

        /// A `sockaddr_in6` for `a` with this flow label and scope id, then trailing bytes.
        fn in6(a: Ipv6Addr, port: u16, flow: u32, scope: u32, trailing: &[u8]) -> Vec<u8> {
            let mut b = (AF_INET6 as u16).to_ne_bytes().to_vec();
            b.extend_from_slice(&port.to_be_bytes());
            b.extend_from_slice(&flow.to_be_bytes());
            b.extend_from_slice(&a.octets());
            b.extend_from_slice(&scope.to_ne_bytes());
            b.extend_from_slice(trailing);
            b.truncate(endpoint::SOCKADDR_MAX);
            b
        }

        proptest! {
            /// Canonicalisation never changes the verdict of an equivalent address: an IPv4
            /// destination decides the same whether written as `sockaddr_in` (with garbage in
            /// `sin_zero` and after it), as an IPv4-mapped or (for addresses above 0.0.0.1)
            /// IPv4-compatible IPv6 address with any flow label, scope id and trailing bytes,
            /// or, for UDP, as `AF_UNSPEC` on an IPv4 socket and `AF_INET` on an IPv6 one.
            #[test]
            fn verdicts_of_equivalent_forms_agree(
                p in policy(),
                a in prop_oneof![Just(127u8), Just(10u8), any::<u8>()],
                rest in any::<[u8; 3]>(),
                port in prop_oneof![8000u16..8004, any::<u16>()],
                flow in any::<u32>(),
                scope in any::<u32>(),
                zero in any::<[u8; 8]>(),
                trailing in proptest::collection::vec(any::<u8>(), 0..100),
                udp in any::<bool>(),
                op in prop_oneof![Just(Op::Connect), Just(Op::Send), Just(Op::Bind)],
            ) {
                let v4 = Ipv4Addr::new(a, rest[0], rest[1], rest[2]);
                let (ty, protocol) = if udp { (SOCK_DGRAM, IPPROTO_UDP) } else { (SOCK_STREAM, IPPROTO_TCP) };
                let k4 = SockKind { domain: AF_INET, ty, protocol };
                let k6 = SockKind { domain: AF_INET6, ty, protocol };
                let op = if op == Op::Send && !udp { Op::Connect } else { op };
                let plain = endpoint::encode_ip(IpAddr::V4(v4), port);
                let want = verdict(&p, &k4, op, &plain).expect("a plain sockaddr_in decodes");
                // Garbage in sin_zero and bytes after the structure.
                let mut odd = plain.clone();
                odd[8..16].copy_from_slice(&zero);
                odd.extend_from_slice(&trailing);
                odd.truncate(endpoint::SOCKADDR_MAX);
                prop_assert_eq!(verdict(&p, &k4, op, &odd), Some(want));
                // IPv4-mapped on an IPv6 socket, flow label, scope id and trailing bytes.
                let mapped = in6(v4.to_ipv6_mapped(), port, flow, scope, &trailing);
                prop_assert_eq!(verdict(&p, &k6, op, &mapped), Some(want));
                // IPv4-compatible.
                if u32::from(v4) > 1 {
                    let compat = in6(v4.to_ipv6_compatible(), port, flow, scope, &trailing);
                    prop_assert_eq!(verdict(&p, &k6, op, &compat), Some(want));
                }
                if udp && op != Op::Bind {
                    // AF_INET on an IPv6 UDP socket.
                    prop_assert_eq!(verdict(&p, &k6, op, &odd), Some(want));
                }
                if udp && op == Op::Send {
                    // AF_UNSPEC on an IPv4 UDP socket is read as AF_INET.
                    let mut unspec = odd.clone();
                    unspec[..2].copy_from_slice(&0u16.to_ne_bytes());
                    prop_assert_eq!(verdict(&p, &k4, op, &unspec), Some(want));
                }
            }

            /// The decision depends on the canonical endpoint only: an IPv6 address that is
            /// not IPv4 in disguise never takes an IPv4 rule's verdict by accident, and the
            /// same IPv6 address decides the same with any flow label and scope id.
            #[test]
            fn ipv6_scope_and_flow_never_matter(
                p in policy(),
                segs in any::<[u16; 8]>(),
                port in any::<u16>(),
                flow in any::<u32>(),
                scope in any::<u32>(),
                trailing in proptest::collection::vec(any::<u8>(), 0..100),
            ) {
                let a = Ipv6Addr::from(segs);
                let k6 = SockKind { domain: AF_INET6, ty: SOCK_STREAM, protocol: IPPROTO_TCP };
                let base = verdict(&p, &k6, Op::Connect, &in6(a, port, 0, 0, &[]));
                prop_assert_eq!(verdict(&p, &k6, Op::Connect, &in6(a, port, flow, scope, &trailing)), base);
                if endpoint::canonical_ip(IpAddr::V6(a)).is_ipv6() {
                    // Every rule of `policy()` is an IPv4 network: only the default decides.
                    prop_assert_eq!(base, Some(Action::Deny(Errno::EACCES)));
                }
            }
        }
    }
}
