//! Policy files (TOML; README.md, "Policies", is the reference):
//!
//! ```toml
//! [network]                   # present: the network is mediated (default deny)
//! default = "deny"            # deny | allow | log, for requests no rule matches
//! errno = "EACCES"            # the default's errno
//! sockets = ["netlink"]       # socket kinds beyond tcp, udp, unix, NETLINK_ROUTE
//!
//! [[network.rule]]            # tried in order: the first that matches decides
//! op = ["connect"]            # bind, connect, send, listen, accept, receive
//! protocol = "tcp"            # tcp, udp, any (the default)
//! address = "127.0.0.1"       # any, localhost, loopback, CIDR, host name; or a list
//! port = "8000-8100"          # a port, a range, or any (the default)
//! action = "allow"            # allow (the default), deny, log
//! errno = "ECONNREFUSED"      # a denial's errno (default: the [network] errno)
//!
//! [syscalls]
//! deny = ["ptrace", "kill"]
//! errno = "EPERM"
//! log = ["execve"]
//! allow = ["read", "write"]   # present: only these (and the calls the rules above name);
//!                             #   any other gets errno (default ENOSYS)
//!
//! [filesystem]                # present: the file system is mediated (default deny)
//! ro = ["/"]                  # readable (shorthands; relative paths from the working
//! exec = ["/usr"]             #   directory at start, `~` for $HOME)
//! rw = ["."]                  # readable and writable
//! hide = ["~/.ssh"]           # as if absent (ENOENT)
//! private-tmp = true          # an empty /tmp (and /dev/shm) of the program's own
//!
//! [[filesystem.rule]]         # the longest path that is a prefix decides
//! path = "/srv/data"
//! access = "rw"               # letters of r, w, x; or "hide", or "none"
//! errno = "EPERM"             # its denials' errno
//! ```
//!
//! Unknown keys, unknown names and values of the wrong type are errors, reported as
//! `FILE:LINE:COLUMN: what is wrong` ([`super::PolicyError::File`]).

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use super::endpoint::Op;
use super::firewall::{NetRule, Ops, PortRange, Protocol, SocketKindName, SocketRule, Target};
use super::{
    Action, NetDefault, Policy, PolicyError, Rule, SyscallDefault, SyscallRule, spec, syscall_names,
};
use crate::errno::Errno;

/// A string or a list of strings.
#[derive(Debug)]
struct OneOrMany(Vec<Spanned<String>>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                // A lone string: its span is the whole value's (given by the outer Spanned).
                Ok(OneOrMany(vec![Spanned::new(0..0, v.to_string())]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<Spanned<String>>()? {
                    v.push(s);
                }
                Ok(OneOrMany(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A port: an integer or a string (`"8000-8100"`, `"any"`).
#[derive(Debug)]
struct Port(String);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a port number or a string such as \"8000-8100\" or \"any\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                Ok(Port(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                Ok(Port(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                Ok(Port(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    network: Option<Spanned<NetworkToml>>,
    syscalls: Option<SyscallsToml>,
    filesystem: Option<FilesystemToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FilesystemToml {
    ro: Option<Vec<Spanned<String>>>,
    rw: Option<Vec<Spanned<String>>>,
    exec: Option<Vec<Spanned<String>>>,
    hide: Option<Vec<Spanned<String>>>,
    private_tmp: Option<bool>,
    rule: Option<Vec<Spanned<FsRuleToml>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FsRuleToml {
    path: Spanned<String>,
    access: Spanned<String>,
    errno: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkToml {
    default: Option<Spanned<String>>,
    errno: Option<Spanned<String>>,
    sockets: Option<Vec<Spanned<String>>>,
    rule: Option<Vec<Spanned<RuleToml>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RuleToml {
    action: Option<Spanned<String>>,
    op: Spanned<OneOrMany>,
    protocol: Option<Spanned<String>>,
    family: Option<Spanned<String>>,
    address: Option<Spanned<OneOrMany>>,
    port: Option<Spanned<Port>>,
    local_port: Option<Spanned<Port>>,
    path: Option<Spanned<String>>,
    #[serde(rename = "abstract")]
    abstract_name: Option<Spanned<String>>,
    errno: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyscallsToml {
    allow: Option<Spanned<Vec<Spanned<String>>>>,
    deny: Option<Vec<Spanned<String>>>,
    log: Option<Vec<Spanned<String>>>,
    errno: Option<Spanned<String>>,
    rule: Option<Vec<Spanned<SyscallRuleToml>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyscallRuleToml {
    call: Spanned<String>,
    action: Option<Spanned<String>>,
    errno: Option<Spanned<String>>,
}

/// Reports errors at byte offsets of one file.
struct Src<'a> {
    path: &'a str,
    text: &'a str,
}

impl Src<'_> {
    fn at(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn err(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> PolicyError {
        let (line, column) = self.at(span.start);
        PolicyError::File { path: self.path.into(), line, column, message: message.into() }
    }

    fn label(&self, span: std::ops::Range<usize>) -> String {
        format!("{}:{}", self.path, self.at(span.start).0)
    }
}

/// The span of `item` in a list given whole: its own when it has one, else the list's.
fn item_span(item: &Spanned<String>, whole: std::ops::Range<usize>) -> std::ops::Range<usize> {
    if item.span() == (0..0) { whole } else { item.span() }
}

fn action_of(
    src: &Src<'_>,
    action: Option<&Spanned<String>>,
    errno: Option<&Spanned<String>>,
    default_errno: Errno,
) -> Result<Action, PolicyError> {
    let name = action.map_or("allow", |a| a.get_ref().as_str());
    let errno = match errno {
        Some(e) => Some(spec::parse_errno(e.get_ref()).map_err(|m| src.err(e.span(), m))?),
        None => None,
    };
    let a = match name {
        "allow" => Action::Allow,
        "log" => Action::Log,
        "deny" => Action::Deny(errno.unwrap_or(default_errno)),
        other => {
            let span = action.map_or(0..0, |a| a.span());
            return Err(
                src.err(span, format!("unknown action `{other}`; expected allow, deny or log"))
            );
        }
    };
    if let (Some(e), false) = (errno, matches!(a, Action::Deny(_))) {
        let _ = e;
        let span = action.map_or(0..0, |a| a.span());
        return Err(
            src.err(span, "errno applies to deny only; set action = \"deny\" or remove errno")
        );
    }
    Ok(a)
}

/// Parses the policy file `path` whose text is `text`.
pub fn parse(path: &str, text: &str) -> Result<Policy, PolicyError> {
    let src = Src { path, text };
    let file: FileToml = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        src.err(span, e.message().trim_end().to_string())
    })?;
    let mut rules = Vec::new();
    let mut network = None;
    if let Some(net) = &file.network {
        let net_span = net.span();
        let net = net.get_ref();
        let errno = match &net.errno {
            Some(e) => spec::parse_errno(e.get_ref()).map_err(|m| src.err(e.span(), m))?,
            None => Errno::EACCES,
        };
        let (action, label) = match &net.default {
            None => (Action::Deny(errno), format!("{} (default)", src.label(net_span.clone()))),
            Some(d) => {
                let a = match d.get_ref().as_str() {
                    "deny" => Action::Deny(errno),
                    "allow" => Action::Allow,
                    "log" => Action::Log,
                    other => {
                        return Err(src.err(
                            d.span(),
                            format!("unknown default `{other}`; expected deny, allow or log"),
                        ));
                    }
                };
                (a, format!("{} (default)", src.label(d.span())))
            }
        };
        network = Some(NetDefault { action, label });
        for s in net.sockets.iter().flatten() {
            let kind = SocketKindName::parse(s.get_ref()).ok_or_else(|| {
                src.err(
                    s.span(),
                    format!(
                        "unknown socket kind `{}`; expected one of {}",
                        s.get_ref(),
                        SocketKindName::known()
                    ),
                )
            })?;
            rules.push(Rule::Socket(SocketRule { label: src.label(s.span()), kind }));
        }
        for r in net.rule.iter().flatten() {
            rules.push(Rule::Net(net_rule(&src, r, errno)?));
        }
    }
    let mut syscall_default = None;
    if let Some(sc) = &file.syscalls {
        let given_errno = match &sc.errno {
            Some(e) => Some(spec::parse_errno(e.get_ref()).map_err(|m| src.err(e.span(), m))?),
            None => None,
        };
        let errno = given_errno.unwrap_or(Errno::EACCES);
        let mut add = |name: &Spanned<String>, action: Action| -> Result<(), PolicyError> {
            let nr = syscall_nr(name.get_ref()).map_err(|m| src.err(name.span(), m))?;
            rules.push(Rule::Syscall(SyscallRule { label: src.label(name.span()), nr, action }));
            Ok(())
        };
        for r in sc.rule.iter().flatten() {
            let rr = r.get_ref();
            let action = action_of(&src, rr.action.as_ref(), rr.errno.as_ref(), errno)?;
            add(&rr.call, action)?;
        }
        for d in sc.deny.iter().flatten() {
            add(d, Action::Deny(errno))?;
        }
        for l in sc.log.iter().flatten() {
            add(l, Action::Log)?;
        }
        if let Some(allow) = &sc.allow {
            for name in allow.get_ref() {
                if super::ALWAYS_ALLOWED.contains(&name.get_ref().as_str()) {
                    continue;
                }
                add(name, Action::Allow)?;
            }
            syscall_default = Some(SyscallDefault {
                action: Action::Deny(given_errno.unwrap_or(Errno::ENOSYS)),
                label: format!("{} (not in allow)", src.label(allow.span())),
            });
        }
    }
    let mut private_tmp = false;
    if let Some(fs) = &file.filesystem {
        use super::fs::{Access, FsAccess, FsRule};
        let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        let mut add = |p: &Spanned<String>,
                       access: FsAccess,
                       errno: Option<Errno>|
         -> Result<(), PolicyError> {
            let r =
                FsRule::new(src.label(p.span()), p.get_ref(), access, errno, &cwd, home.as_deref())
                    .map_err(|m| src.err(p.span(), m))?;
            rules.push(Rule::Fs(r));
            Ok(())
        };
        for r in fs.rule.iter().flatten() {
            let rr = r.get_ref();
            let access = match rr.access.get_ref().as_str() {
                "hide" => FsAccess::Hide,
                "none" => FsAccess::Allow(Access::NONE),
                a => FsAccess::Allow(Access::parse(a).ok_or_else(|| {
                    src.err(
                        rr.access.span(),
                        format!(
                            "unknown access `{a}`; expected letters of r, w, x, or hide, or none"
                        ),
                    )
                })?),
            };
            let errno = match &rr.errno {
                Some(e) => Some(spec::parse_errno(e.get_ref()).map_err(|m| src.err(e.span(), m))?),
                None => None,
            };
            add(&rr.path, access, errno)?;
        }
        let rx = Access::R.with(Access::X);
        for (list, access) in [
            (&fs.hide, FsAccess::Hide),
            (&fs.rw, FsAccess::Allow(Access::R.with(Access::W))),
            (&fs.exec, FsAccess::Allow(rx)),
            (&fs.ro, FsAccess::Allow(Access::R)),
        ] {
            for p in list.iter().flatten() {
                add(p, access, None)?;
            }
        }
        private_tmp = fs.private_tmp.unwrap_or(false);
    }
    let mut p = Policy::with(path, rules, network);
    p.private_tmp = private_tmp;
    p.syscall_default = syscall_default;
    Ok(p)
}

/// The number of the system call `name`; the calls the sandbox itself needs to end a program
/// cannot be named.
fn syscall_nr(name: &str) -> Result<u16, String> {
    if matches!(name, "exit" | "exit_group" | "rt_sigreturn") {
        return Err(format!(
            "`{name}` cannot be denied or logged: the program could not end or return from handlers"
        ));
    }
    syscall_names::NAMES
        .iter()
        .position(|n| !n.is_empty() && *n == name)
        .map(|i| i as u16)
        .ok_or_else(|| format!("unknown system call `{name}` (x86-64 names, as in syscall_64.tbl)"))
}

fn net_rule(
    src: &Src<'_>,
    r: &Spanned<RuleToml>,
    default_errno: Errno,
) -> Result<NetRule, PolicyError> {
    let span = r.span();
    let rr = r.get_ref();
    let action = action_of(src, rr.action.as_ref(), rr.errno.as_ref(), default_errno)?;
    let mut ops = Ops::NONE;
    for o in &rr.op.get_ref().0 {
        let s = item_span(o, rr.op.span());
        let op = Op::from_name(o.get_ref()).ok_or_else(|| {
            src.err(s, format!("unknown operation `{}`; expected bind, connect, send, listen, accept or receive", o.get_ref()))
        })?;
        ops = ops.with(op);
    }
    if ops.is_empty() {
        return Err(src.err(rr.op.span(), "op is empty: name at least one operation"));
    }
    let protocol = match &rr.protocol {
        Some(p) => spec::parse_protocol(p.get_ref()).map_err(|m| src.err(p.span(), m))?,
        None => Protocol::Any,
    };
    let family = rr.family.as_ref().map(|f| (f.get_ref().as_str(), f.span()));
    if let Some((f, s)) = &family
        && !matches!(*f, "ipv4" | "ipv6" | "unix-path" | "unix-abstract")
    {
        return Err(src.err(
            s.clone(),
            format!("unknown family `{f}`; expected ipv4, ipv6, unix-path or unix-abstract"),
        ));
    }
    let local_ports = match &rr.local_port {
        Some(p) => {
            if ops.iter().any(|o| !matches!(o, Op::Accept | Op::Receive)) {
                return Err(src.err(
                    p.span(),
                    "local-port applies to rules whose op is accept or receive only",
                ));
            }
            Some(spec::parse_ports(&p.get_ref().0).map_err(|m| src.err(p.span(), m))?)
        }
        None => None,
    };
    let unix_family = matches!(family, Some(("unix-path" | "unix-abstract", _)));
    let target = if let Some(p) = &rr.path {
        if rr.address.is_some()
            || rr.abstract_name.is_some()
            || !matches!(family, None | Some(("unix-path", _)))
        {
            return Err(src.err(
                p.span(),
                "a rule names one of address, path or abstract (and a matching family)",
            ));
        }
        Target::UnixPath(Some(
            spec::parse_unix_path(p.get_ref()).map_err(|m| src.err(p.span(), m))?,
        ))
    } else if let Some(a) = &rr.abstract_name {
        if rr.address.is_some() || !matches!(family, None | Some(("unix-abstract", _))) {
            return Err(src.err(
                a.span(),
                "a rule names one of address, path or abstract (and a matching family)",
            ));
        }
        Target::UnixAbstract(Some(a.get_ref().as_bytes().to_vec()))
    } else if unix_family {
        match family {
            Some(("unix-path", _)) => Target::UnixPath(None),
            _ => Target::UnixAbstract(None),
        }
    } else {
        if rr.address.is_none() && rr.port.is_none() && family.is_none() {
            return Err(src.err(
                span,
                "the rule names no endpoint: give address (e.g. \"any\"), port, path or abstract",
            ));
        }
        let mut nets = Vec::new();
        match &rr.address {
            Some(list) => {
                for a in &list.get_ref().0 {
                    let s = item_span(a, list.span());
                    let got =
                        spec::parse_address(a.get_ref()).map_err(|m| src.err(s.clone(), m))?;
                    let keep: Vec<_> = got
                        .iter()
                        .filter(|n| match family {
                            Some(("ipv4", _)) => n.addr().is_ipv4(),
                            Some(("ipv6", _)) => n.addr().is_ipv6(),
                            _ => true,
                        })
                        .copied()
                        .collect();
                    if keep.is_empty() {
                        return Err(src.err(
                            s,
                            format!(
                                "`{}` has no {} address",
                                a.get_ref(),
                                family.map_or("", |f| f.0)
                            ),
                        ));
                    }
                    nets.extend(keep);
                }
            }
            None => {
                nets = super::firewall::any_nets();
                match family {
                    Some(("ipv4", _)) => nets.truncate(1),
                    Some(("ipv6", _)) => {
                        nets.remove(0);
                    }
                    _ => {}
                }
            }
        }
        if list_empty(&rr.address) {
            return Err(src.err(
                rr.address.as_ref().map_or(span.clone(), |a| a.span()),
                "address is an empty list",
            ));
        }
        let ports = match &rr.port {
            Some(p) => spec::parse_ports(&p.get_ref().0).map_err(|m| src.err(p.span(), m))?,
            None => PortRange::ANY,
        };
        Target::Ip { nets, ports }
    };
    if !matches!(target, Target::Ip { .. }) {
        if let Some(p) = &rr.port {
            return Err(src.err(p.span(), "port applies to IP rules only"));
        }
        if let Some(p) = &rr.protocol {
            return Err(src.err(
                p.span(),
                "protocol applies to IP rules only (unix rules match any unix socket)",
            ));
        }
    }
    Ok(NetRule::new(src.label(span), action, ops, protocol, target, local_ports))
}

fn list_empty(l: &Option<Spanned<OneOrMany>>) -> bool {
    l.as_ref().is_some_and(|l| l.get_ref().0.is_empty())
}

/// Reads and parses the policy file at `path`.
pub fn load(path: &str) -> Result<Policy, PolicyError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| PolicyError::Read { path: path.into(), source })?;
    parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::endpoint::{Endpoint, Transport};
    use crate::policy::firewall::Request;

    fn err(text: &str) -> String {
        match parse("p.toml", text) {
            Err(e) => e.to_string(),
            Ok(p) => panic!("parsed: {p:?}"),
        }
    }

    #[test]
    fn a_full_file() {
        let p = parse(
            "p.toml",
            r#"
[network]
errno = "ECONNREFUSED"
sockets = ["netlink"]

[[network.rule]]
op = "connect"
protocol = "tcp"
address = ["127.0.0.1", "::1"]
port = 8080

[[network.rule]]
op = ["bind", "listen"]
address = "0.0.0.0"
port = "8000-8100"

[[network.rule]]
op = "connect"
path = "/run/app.sock"

[[network.rule]]
op = "send"
action = "deny"
errno = "EPERM"
family = "ipv6"

[syscalls]
deny = ["ptrace", "getppid"]
errno = "EPERM"
log = ["execve"]
"#,
        )
        .unwrap();
        assert_eq!(p.network.as_ref().unwrap().action, Action::Deny(Errno(111)));
        let net = p.net_policy().unwrap();
        assert_eq!(net.rules.len(), 4);
        assert_eq!(net.sockets.len(), 1);
        assert_eq!(net.rules[0].label, "p.toml:6", "the line of its [[network.rule]]");
        let ep = Endpoint::Ip("::1".parse().unwrap(), 8080);
        let r = Request {
            op: Op::Connect,
            transport: Transport::Tcp,
            endpoint: &ep,
            local_port: None,
            datagram: false,
        };
        assert_eq!(net.decide(&r), Action::Allow);
        let ep = Endpoint::Ip("2001:db8::1".parse().unwrap(), 53);
        let r = Request {
            op: Op::Send,
            transport: Transport::Udp,
            endpoint: &ep,
            local_port: None,
            datagram: false,
        };
        assert_eq!(net.decide(&r), Action::Deny(Errno::EPERM));
        let sys: Vec<_> = p
            .rules
            .iter()
            .filter_map(|r| if let Rule::Syscall(s) = r { Some(s) } else { None })
            .collect();
        assert_eq!(sys.len(), 3);
        assert_eq!(sys[0].nr, 101);
        assert_eq!(sys[1].action, Action::Deny(Errno::EPERM));
        assert_eq!(sys[2].action, Action::Log);
    }

    #[test]
    fn malformed_files_say_where_and_why() {
        assert!(
            err("[network]\nfoo = 1\n").starts_with("p.toml:2:1: unknown field `foo`"),
            "{}",
            err("[network]\nfoo = 1\n")
        );
        let e = err("[[network.rule]]\nop = \"conect\"\naddress = \"any\"\n");
        assert!(e.starts_with("p.toml:2:6: unknown operation `conect`"), "{e}");
        let e = err("[[network.rule]]\nop = [\"bind\", \"lisen\"]\naddress = \"any\"\n");
        assert!(e.starts_with("p.toml:2:15: unknown operation `lisen`"), "{e}");
        let e = err("[[network.rule]]\nop = \"connect\"\naddress = \"10.0.0.0/33\"\n");
        assert!(e.starts_with("p.toml:3:11:") && e.contains("not an address"), "{e}");
        let e = err("[[network.rule]]\nop = \"connect\"\nport = 70000\n");
        assert!(e.starts_with("p.toml:3:8:") && e.contains("not a port"), "{e}");
        let e = err(
            "[[network.rule]]\nop = \"connect\"\naddress = \"any\"\nerrno = \"EWHAT\"\naction = \"deny\"\n",
        );
        assert!(e.starts_with("p.toml:4:9: unknown errno"), "{e}");
        let e = err("[[network.rule]]\nop = \"connect\"\n");
        assert!(e.contains("names no endpoint"), "{e}");
        let e = err("[syscalls]\ndeny = [\"ptrce\"]\n");
        assert!(e.starts_with("p.toml:2:9: unknown system call `ptrce`"), "{e}");
        let e = err("[syscalls]\ndeny = [\"exit_group\"]\n");
        assert!(e.contains("cannot be denied"), "{e}");
        let e = err("[network\n");
        assert!(e.starts_with("p.toml:1:"), "{e}");
        let e = err("network = 3\n");
        assert!(e.starts_with("p.toml:1:11:"), "{e}");
        let e = err("[[network.rule]]\nop = \"connect\"\npath = \"/x\"\nport = 3\n");
        assert!(e.contains("port applies to IP rules only"), "{e}");
        let e = err("[[network.rule]]\nop = \"connect\"\naddress = \"any\"\nerrno = \"EPERM\"\n");
        assert!(e.contains("errno applies to deny only"), "{e}");
        let e = err("[network]\nsockets = [\"bogus\"]\n");
        assert!(e.starts_with("p.toml:2:12: unknown socket kind"), "{e}");
        let e = err("[[network.rule]]\nop = \"connect\"\naddress = \"::1\"\nfamily = \"ipv4\"\n");
        assert!(e.contains("has no ipv4 address"), "{e}");
        let e = err("[[network.rule]]\nop = \"connect\"\naddress = \"any\"\nlocal-port = 3\n");
        assert!(e.contains("local-port applies"), "{e}");
    }

    #[test]
    fn an_allow_list_denies_every_other_call() {
        let p = parse(
            "p.toml",
            "[syscalls]\ndeny = [\"ptrace\"]\nallow = [\"read\", \"write\", \"exit_group\"]\n",
        )
        .unwrap();
        let d = p.syscall_default.as_ref().unwrap();
        assert_eq!(d.action, Action::Deny(Errno::ENOSYS));
        assert_eq!(d.label, "p.toml:3 (not in allow)");
        let e = crate::policy::Engine::new(&p, crate::policy::audit::Sink::none()).unwrap();
        let action = |nr: u64| e.syscall_rule(nr).map(|r| r.action);
        assert_eq!(action(0), Some(Action::Allow));
        assert_eq!(action(1), Some(Action::Allow));
        assert_eq!(action(101), Some(Action::Deny(Errno::EACCES)), "the deny list keeps its errno");
        assert_eq!(action(39), Some(Action::Deny(Errno::ENOSYS)));
        for always in [15, 60, 231] {
            assert_eq!(action(always), None, "call {always}");
        }
        let p = parse("p.toml", "[syscalls]\nerrno = \"EPERM\"\nallow = []\n").unwrap();
        assert_eq!(p.syscall_default.unwrap().action, Action::Deny(Errno::EPERM));
        let e = err("[syscalls]\nallow = [\"reed\"]\n");
        assert!(e.starts_with("p.toml:2:10: unknown system call `reed`"), "{e}");
        assert!(
            parse("p.toml", "[syscalls]\nlog = [\"read\"]\n").unwrap().syscall_default.is_none()
        );
    }

    #[test]
    fn no_network_table_means_no_firewall() {
        let p = parse("p.toml", "[syscalls]\nlog = [\"getpid\"]\n").unwrap();
        assert!(p.network.is_none());
        let p = parse("p.toml", "[network]\n").unwrap();
        assert_eq!(p.network.unwrap().action, Action::Deny(Errno::EACCES));
    }
}
