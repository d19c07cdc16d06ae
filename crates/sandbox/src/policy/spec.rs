//! The small languages inside rules, shared by policy files and the command line: addresses
//! (`any`, `localhost`, `loopback`, CIDR, a host name), ports (`8080`, `8000-8100`, `any`),
//! endpoint specs (`ADDR[:PORT][/PROTO]`, IPv6 in brackets), errno names, unix paths; and the
//! `--allow-*` shorthands, which build the same rules a file would.

use std::net::{IpAddr, ToSocketAddrs};

use ipnet::IpNet;

use super::endpoint::Op;
use super::firewall::{
    NetRule, Ops, PathMatch, PortRange, Protocol, Target, any_nets, canonical_net, localhost_nets,
    loopback_nets,
};
use super::{Action, Rule};
use crate::errno::Errno;

/// The networks an address names: `any`, `localhost`, `loopback`, an address, a CIDR network,
/// or a host name, resolved now (once, at start: later changes of its addresses are not
/// seen). Canonical ([`canonical_net`]).
pub fn parse_address(s: &str) -> Result<Vec<IpNet>, String> {
    let nets = match s {
        "any" => any_nets(),
        "localhost" => localhost_nets(),
        "loopback" => loopback_nets(),
        _ => {
            if let Ok(n) = s.parse::<IpNet>() {
                vec![n]
            } else if let Ok(a) = s.parse::<IpAddr>() {
                vec![IpNet::from(a)]
            } else if is_host_name(s) {
                let addrs = (s, 0)
                    .to_socket_addrs()
                    .map_err(|e| format!("cannot resolve host name `{s}`: {e}"))?;
                let mut v: Vec<IpNet> = addrs.map(|a| IpNet::from(a.ip())).collect();
                v.sort();
                v.dedup();
                if v.is_empty() {
                    return Err(format!("host name `{s}` has no addresses"));
                }
                v
            } else {
                return Err(format!(
                    "`{s}` is not an address: use any, localhost, loopback, an IPv4 or IPv6 \
                     address or network (10.0.0.0/8, fd00::/8) or a host name"
                ));
            }
        }
    };
    Ok(nets.into_iter().map(canonical_net).collect())
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
        })
        && !s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// A port or range: `8080`, `8000-8100`, `any` (or `*`).
pub fn parse_ports(s: &str) -> Result<PortRange, String> {
    if s == "any" || s == "*" {
        return Ok(PortRange::ANY);
    }
    let num = |t: &str| {
        t.parse::<u16>()
            .map_err(|_| format!("`{t}` is not a port (0-65535); e.g. 8080, 8000-8100, any"))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (lo, hi) = (num(a)?, num(b)?);
            if lo > hi {
                return Err(format!("port range `{s}` is empty (write the lower port first)"));
            }
            Ok(PortRange { lo, hi })
        }
        None => Ok(PortRange::one(num(s)?)),
    }
}

/// A protocol name: `tcp`, `udp`, `any`.
pub fn parse_protocol(s: &str) -> Result<Protocol, String> {
    match s {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "any" => Ok(Protocol::Any),
        _ => Err(format!("unknown protocol `{s}`; expected tcp, udp or any")),
    }
}

/// An errno by name (`EACCES`, `ECONNREFUSED`, ...).
pub fn parse_errno(s: &str) -> Result<Errno, String> {
    (1..=133).map(Errno).find(|e| e.name() == s).ok_or_else(|| {
        format!("unknown errno `{s}`; use a name such as EACCES, EPERM, ECONNREFUSED")
    })
}

/// `ADDR[:PORT][/PROTO]`: IPv6 addresses and networks in brackets (`[::1]:8000-8100/tcp`,
/// `[fd00::/8]:53`); a missing port is any port, a missing protocol `any`.
pub fn parse_endpoint(s: &str) -> Result<(Vec<IpNet>, PortRange, Protocol), String> {
    let (rest, proto) = match s.rsplit_once('/') {
        Some((r, p)) if matches!(p, "tcp" | "udp" | "any") => (r, parse_protocol(p)?),
        _ => (s, Protocol::Any),
    };
    let (addr, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (a, after) =
            inner.split_once(']').ok_or_else(|| format!("`{s}`: a `[` without its `]`"))?;
        // `[fd00::]/8:53` as well as `[fd00::/8]:53`.
        let (prefix, after) = match after.strip_prefix('/') {
            Some(p) => match p.split_once(':') {
                Some((len, port)) => (Some(len), format!(":{port}")),
                None => (Some(p), String::new()),
            },
            None => (None, after.to_string()),
        };
        let a = match prefix {
            Some(len) => format!("{a}/{len}"),
            None => a.to_string(),
        };
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.to_string()),
            None if after.is_empty() => None,
            None => return Err(format!("`{s}`: expected `:PORT` after `]`")),
        };
        (a, port)
    } else {
        match rest.rsplit_once(':') {
            Some((a, _)) if a.contains(':') => {
                return Err(format!("`{s}`: write IPv6 addresses in brackets, e.g. [::1]:8080"));
            }
            Some((a, p)) => (a.to_string(), Some(p.to_string())),
            None => (rest.to_string(), None),
        }
    };
    let nets = parse_address(&addr)?;
    let ports = match port {
        Some(p) => parse_ports(&p)?,
        None => PortRange::ANY,
    };
    Ok((nets, ports, proto))
}

/// A unix path as a rule names it: resolved against the sandbox's working directory, with
/// symlinks followed as far as the path exists; a trailing `/` means every path below.
pub fn parse_unix_path(s: &str) -> Result<PathMatch, String> {
    if s.is_empty() {
        return Err("the path is empty".into());
    }
    let subtree = s.ends_with('/') && s.len() > 1 || s == "/";
    let p = std::path::Path::new(s.trim_end_matches('/'));
    let p = if p.as_os_str().is_empty() { std::path::Path::new("/") } else { p };
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| format!("cannot read the working directory: {e}"))?
            .join(p)
    };
    let resolved = match std::fs::canonicalize(&abs) {
        Ok(r) => r,
        Err(_) => match (abs.parent().map(std::fs::canonicalize), abs.file_name()) {
            (Some(Ok(dir)), Some(name)) => dir.join(name),
            _ => abs.clone(),
        },
    };
    let mut bytes = resolved.into_os_string().into_encoded_bytes();
    if bytes == b"/" {
        bytes.clear();
    }
    Ok(PathMatch { path: bytes, subtree })
}

fn ops(list: &[Op]) -> Ops {
    list.iter().fold(Ops::NONE, |s, &o| s.with(o))
}

/// Which shorthand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shorthand {
    /// `--allow-connect ADDR[:PORT][/PROTO]`: connect (and get answers from) there.
    Connect,
    /// `--allow-bind ADDR[:PORT][/PROTO]`: bind and listen there, accept connections and
    /// datagrams from anyone on those ports.
    Bind,
    /// `--allow-send ADDR[:PORT][/PROTO]`: send datagrams there (and get answers).
    Send,
    /// `--allow-unix PATH|@NAME`: every operation on that unix socket path (a directory with
    /// a trailing `/`: every path below it) or abstract name.
    Unix,
}

impl Shorthand {
    /// The option's name.
    pub fn option(self) -> &'static str {
        match self {
            Shorthand::Connect => "--allow-connect",
            Shorthand::Bind => "--allow-bind",
            Shorthand::Send => "--allow-send",
            Shorthand::Unix => "--allow-unix",
        }
    }
}

/// The rules shorthand `which` with value `value` stands for.
pub fn shorthand(which: Shorthand, value: &str) -> Result<Vec<Rule>, String> {
    let label = format!("{} {value}", which.option());
    let rule = |ops, proto, target, local| {
        Rule::Net(NetRule::new(label.clone(), Action::Allow, ops, proto, target, local))
    };
    Ok(match which {
        Shorthand::Unix => {
            let target = match value.strip_prefix('@') {
                Some(name) => Target::UnixAbstract(Some(name.as_bytes().to_vec())),
                None => Target::UnixPath(Some(parse_unix_path(value)?)),
            };
            vec![rule(ops(&Op::ALL), Protocol::Any, target, None)]
        }
        _ => {
            let (nets, ports, proto) = parse_endpoint(value)?;
            match which {
                Shorthand::Connect => {
                    vec![rule(ops(&[Op::Connect]), proto, Target::Ip { nets, ports }, None)]
                }
                Shorthand::Send => {
                    vec![rule(ops(&[Op::Send]), proto, Target::Ip { nets, ports }, None)]
                }
                _ => vec![
                    rule(ops(&[Op::Bind, Op::Listen]), proto, Target::Ip { nets, ports }, None),
                    rule(
                        ops(&[Op::Accept, Op::Receive]),
                        proto,
                        Target::Ip { nets: any_nets(), ports: PortRange::ANY },
                        Some(ports),
                    ),
                ],
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("127.0.0.1:8080").unwrap(),
            (vec![n("127.0.0.1/32")], PortRange::one(8080), Protocol::Any)
        );
        assert_eq!(
            parse_endpoint("[::1]:8000-8100/tcp").unwrap(),
            (vec![n("::1/128")], PortRange { lo: 8000, hi: 8100 }, Protocol::Tcp)
        );
        assert_eq!(
            parse_endpoint("10.0.0.0/8:53/udp").unwrap(),
            (vec![n("10.0.0.0/8")], PortRange::one(53), Protocol::Udp)
        );
        assert_eq!(parse_endpoint("[fd00::/8]:53").unwrap().0, vec![n("fd00::/8")]);
        assert_eq!(parse_endpoint("[fd00::]/8:53").unwrap().0, vec![n("fd00::/8")]);
        assert_eq!(parse_endpoint("[fd00::]/8").unwrap().1, PortRange::ANY);
        assert_eq!(parse_endpoint("any:443").unwrap().0.len(), 2);
        assert_eq!(parse_endpoint("[::ffff:10.0.0.1]:1").unwrap().0, vec![n("10.0.0.1/32")]);
        assert_eq!(parse_endpoint("0.0.0.0:8000").unwrap().0, vec![n("0.0.0.0/32")]);
        assert!(parse_endpoint("::1:80").unwrap_err().contains("brackets"));
        assert!(parse_endpoint("1.2.3.4:99999").unwrap_err().contains("not a port"));
        assert!(parse_endpoint("1.2.3.4:90-80").unwrap_err().contains("empty"));
        assert!(parse_endpoint("[::1").is_err());
        assert!(parse_endpoint("1.2.3.4.5:80").unwrap_err().contains("not an address"));
    }

    #[test]
    fn errnos_and_paths() {
        assert_eq!(parse_errno("ECONNREFUSED"), Ok(Errno(111)));
        assert!(parse_errno("EFROB").is_err());
        let m = parse_unix_path("/nonexistent-dir-xyz/a.sock").unwrap();
        assert_eq!(m.path, b"/nonexistent-dir-xyz/a.sock");
        assert!(!m.subtree);
        let m = parse_unix_path("/tmp/").unwrap();
        assert!(m.subtree);
        assert!(parse_unix_path("/").unwrap().matches(b"/anything"));
    }

    #[test]
    fn shorthands_make_rules() {
        let r = shorthand(Shorthand::Bind, "0.0.0.0:8000").unwrap();
        assert_eq!(r.len(), 2);
        let Rule::Net(accept) = &r[1] else { panic!() };
        assert!(accept.ops.has(Op::Accept) && accept.ops.has(Op::Receive));
        assert_eq!(accept.local_ports, Some(PortRange::one(8000)));
        let r = shorthand(Shorthand::Unix, "@name").unwrap();
        let Rule::Net(u) = &r[0] else { panic!() };
        assert_eq!(u.target, Target::UnixAbstract(Some(b"name".to_vec())));
        assert_eq!(u.label, "--allow-unix @name");
    }
}
