//! Policies: what the program may do beyond what the null policy's validation allows.
//!
//! A [`Policy`] is a list of [`Rule`]s of several kinds, in the order they were given (a policy
//! file, `--allow-*` options, a built-in policy), plus the network default. The [`Engine`] is
//! the policy compiled for the supervisor: immutable once the program starts, shared by every
//! thread (and copied into forked children) without a lock, and consulted only where a rule
//! can apply:
//!
//! * **system-call rules** (`[syscalls]`): one table lookup per call, by number; a call no rule
//!   names costs that load and nothing else, under every policy (the null policy included);
//! * **network rules** (`[network]`, `--allow-*`): the socket calls in
//!   [`crate::syscall::net`] copy and decode their arguments (socket addresses into typed
//!   [`endpoint::Endpoint`]s, the socket itself into its [`endpoint::SockKind`]) and ask the
//!   engine; the kernel then gets the very copy that was decided on. UDP receives are
//!   decided in the kernel by a socket filter compiled from the same rules ([`bpf`]).
//!
//! Verdicts ([`Action`]): allow, deny with an errno (the call is not made), or log (allow, and
//! write an audit line). Every denial writes an audit line ([`audit`]) before the call returns
//! to the program. The null policy's validation (pointers, copies, the runtime's
//! descriptors) always runs as well: a policy can only refuse more.
//!
//! Rule kinds are an enum ([`Rule`]) so that a policy can grow new kinds (a filesystem rule
//! comes next) without changing how the others are written, matched or audited.

pub mod audit;
pub mod bpf;
pub mod endpoint;
pub mod file;
pub mod firewall;
pub mod spec;
pub mod syscall_names;

use std::sync::atomic::Ordering;

use crate::errno::Errno;
use endpoint::{Endpoint, Op, SockKind};
use firewall::{NetPolicy, NetRule, Request, SocketRule};

/// What a rule decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Carry out the call.
    Allow,
    /// Return this errno without carrying out the call (and write an audit line).
    Deny(Errno),
    /// Carry out the call and write an audit line.
    Log,
}

impl Action {
    /// The name audit lines and policy files use: `allow`, `deny`, `log`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny(_) => "deny",
            Action::Log => "log",
        }
    }
}

/// A rule about one system call (by number), whatever its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallRule {
    /// Where it comes from.
    pub label: String,
    /// The call's number (x86-64).
    pub nr: u16,
    /// What it decides.
    pub action: Action,
}

/// One rule of a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// About endpoints the program binds, connects or sends to, or hears from.
    Net(NetRule),
    /// About a kind of socket the program may create beyond TCP, UDP, unix and
    /// `NETLINK_ROUTE`.
    Socket(SocketRule),
    /// About a system call.
    Syscall(SyscallRule),
}

/// The network default of a policy that mediates the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetDefault {
    /// What happens when no network rule matches.
    pub action: Action,
    /// Where it was set.
    pub label: String,
}

/// A policy as given: its rules in order and, when it mediates the network, the default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Its name, for messages (`null`, a file name, `command line`).
    pub name: String,
    /// The rules.
    pub rules: Vec<Rule>,
    /// `None`: the network is not mediated (the null policy, `--net=host`); `Some`: the
    /// firewall is on, with this default for requests no rule matches.
    pub network: Option<NetDefault>,
}

/// The built-in policies, by name (`--policy NAME`), with what each does.
pub const BUILTINS: &[(&str, &str)] = &[
    ("null", "every supported call allowed (and validated); the network is not mediated"),
    (
        "deny-net",
        "no network: every bind, connect, send and accept denied; socketpair and descriptors already open still work",
    ),
    (
        "loopback",
        "the network of this host only: any operation on 127.0.0.0/8, ::1 and unix sockets",
    ),
];

impl Policy {
    /// The null policy.
    pub fn null() -> Policy {
        Policy { name: "null".into(), rules: Vec::new(), network: None }
    }

    /// The built-in policy `name`, if there is one.
    pub fn builtin(name: &str) -> Option<Policy> {
        let label = format!("--policy {name}");
        let deny =
            || Some(NetDefault { action: Action::Deny(Errno::EACCES), label: label.clone() });
        Some(match name {
            "null" => Policy::null(),
            "deny-net" => Policy { name: name.into(), rules: Vec::new(), network: deny() },
            "loopback" => {
                let all = Op::ALL.iter().fold(firewall::Ops::NONE, |s, &o| s.with(o));
                let rule = |target| {
                    Rule::Net(NetRule::new(
                        label.clone(),
                        Action::Allow,
                        all,
                        firewall::Protocol::Any,
                        target,
                        None,
                    ))
                };
                Policy {
                    name: name.into(),
                    rules: vec![
                        rule(firewall::Target::Ip {
                            nets: firewall::loopback_nets(),
                            ports: firewall::PortRange::ANY,
                        }),
                        rule(firewall::Target::UnixPath(None)),
                        rule(firewall::Target::UnixAbstract(None)),
                    ],
                    network: deny(),
                }
            }
            _ => return None,
        })
    }

    /// The network part, compiled; `None` when the network is not mediated.
    pub fn net_policy(&self) -> Option<NetPolicy> {
        let d = self.network.as_ref()?;
        let mut p = NetPolicy {
            default: d.action,
            default_label: d.label.clone(),
            rules: Vec::new(),
            sockets: Vec::new(),
        };
        for r in &self.rules {
            match r {
                Rule::Net(n) => p.rules.push(n.clone()),
                Rule::Socket(s) => p.sockets.push(s.clone()),
                Rule::Syscall(_) => {}
            }
        }
        Some(p)
    }
}

/// Why a policy cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A policy file is malformed.
    #[error("{path}:{line}:{column}: {message}")]
    File {
        /// The file as given.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, and how to fix it.
        message: String,
    },
    /// A policy file cannot be read.
    #[error("cannot read the policy file {path}: {source}")]
    Read {
        /// The file as given.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// An option's value is malformed.
    #[error("{option} {value}: {message}")]
    Option {
        /// The option (`--allow-connect`).
        option: String,
        /// Its value.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// Options that cannot go together.
    #[error("{0}")]
    Conflict(String),
    /// The receive filter would be longer than the kernel takes.
    #[error(
        "the policy's receive rules need more than {max} socket-filter instructions; merge \
         networks into wider ones",
        max = bpf::MAX_INSNS
    )]
    TooLong,
}

/// The calling program thread, for audit lines.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    /// The process id (of the sandboxed process: its supervisor's).
    pub pid: i32,
    /// The thread id.
    pub tid: i32,
}

/// A policy ready for the supervisor.
#[derive(Debug)]
pub struct Engine {
    name: String,
    /// By call number: 0 for no rule, else 1 + an index into `syscalls`.
    table: Vec<u16>,
    syscalls: Vec<SyscallRule>,
    net: Option<NetPolicy>,
    recv_filter: Option<Vec<bpf::Insn>>,
    audit: audit::Sink,
    counters: audit::Counters,
}

/// Socket options and control messages that route a packet through other addresses than the
/// destination decided on, as `(level, option)`: `IP_OPTIONS` and `IP_RETOPTS` (IPv4 source
/// routes), `IPV6_2292RTHDR`, `IPV6_2292PKTOPTIONS` (which may carry one), `IPV6_NEXTHOP`
/// (`IPV6_2292NEXTHOP`) and `IPV6_RTHDR` (routing headers, segment routing).
const ROUTING_OPTIONS: &[(i32, i32)] = &[(0, 4), (0, 7), (41, 5), (41, 6), (41, 9), (41, 57)];

impl Engine {
    /// Compiles `policy`; audit lines go to `audit`. Errors: [`PolicyError::TooLong`].
    pub fn new(policy: &Policy, audit: audit::Sink) -> Result<Engine, PolicyError> {
        let mut table = vec![0u16; syscall_names::NAMES.len().max(512)];
        let mut syscalls = Vec::new();
        for r in &policy.rules {
            if let Rule::Syscall(s) = r {
                // The first rule about a call decides it.
                if table[usize::from(s.nr)] == 0 {
                    syscalls.push(s.clone());
                    table[usize::from(s.nr)] = syscalls.len() as u16;
                }
            }
        }
        let net = policy.net_policy();
        let recv_filter = match &net {
            Some(n) => Some(bpf::receive_filter(n).ok_or(PolicyError::TooLong)?),
            None => None,
        };
        let slots =
            net.as_ref().map_or(0, |n| n.rules.len() + n.sockets.len() + 1) + syscalls.len();
        let counters =
            if audit.stats { audit::Counters::new(slots) } else { audit::Counters::none() };
        Ok(Engine { name: policy.name.clone(), table, syscalls, net, recv_filter, audit, counters })
    }

    /// The null policy, auditing nowhere.
    pub fn null() -> Engine {
        Engine::new(&Policy::null(), audit::Sink::none()).expect("the null policy compiles")
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the network is mediated (a firewall policy).
    pub fn mediates_network(&self) -> bool {
        self.net.is_some()
    }

    /// The network rules, if the network is mediated.
    pub fn net(&self) -> Option<&NetPolicy> {
        self.net.as_ref()
    }

    /// The socket filter every UDP socket gets, if the network is mediated.
    pub fn receive_filter(&self) -> Option<&[bpf::Insn]> {
        self.recv_filter.as_deref()
    }

    /// The system-call rule about call `nr`, if any: one load, for every call.
    #[inline]
    pub fn syscall_rule(&self, nr: u64) -> Option<&SyscallRule> {
        let i = *self.table.get(usize::try_from(nr).ok()?)?;
        if i == 0 { None } else { self.syscalls.get(usize::from(i) - 1) }
    }

    /// Applies the system-call rule `rule` to a call of `caller`: `Err` with the errno of a
    /// denial; denials and logged calls are audited first.
    pub fn apply_syscall(
        &self,
        caller: Caller,
        rule: &SyscallRule,
        name: &str,
    ) -> Result<(), Errno> {
        let slot = self.net.as_ref().map_or(0, |n| n.rules.len() + n.sockets.len() + 1)
            + self.syscalls.iter().position(|r| std::ptr::eq(r, rule)).unwrap_or(0);
        self.finish(caller, rule.action, slot, &rule.label, || audit::Event::call(name))
    }

    /// Decides a network request of `caller`'s call `syscall`: `Err` with the errno of a
    /// denial. Denials, logged requests and (with `--audit-allowed`) every allowed one are
    /// audited before this returns. Without a firewall every request is allowed.
    pub fn decide(&self, caller: Caller, syscall: &str, req: &Request<'_>) -> Result<(), Errno> {
        let Some(net) = &self.net else { return Ok(()) };
        let (action, slot, label) = match net.first_match(req) {
            Some(i) => (net.rules[i].action, i, net.rules[i].label.as_str()),
            None => (net.default, net.rules.len(), net.default_label.as_str()),
        };
        self.finish(caller, action, slot, label, || audit::Event::net(syscall, req))
    }

    /// Whether `caller` may create (with `syscall`: `socket`, `socketpair`) or use a socket
    /// of kind `kind`; see [`NetPolicy::socket_allowed`]. Denials are audited.
    pub fn decide_socket(
        &self,
        caller: Caller,
        syscall: &str,
        kind: &SockKind,
    ) -> Result<(), Errno> {
        let Some(net) = &self.net else { return Ok(()) };
        let (action, slot, label) = match net.socket_allowed(kind) {
            Ok(None) => return Ok(()),
            Ok(Some(i)) => (Action::Allow, net.rules.len() + 1 + i, net.sockets[i].label.as_str()),
            Err(firewall::KindRefused) => {
                let errno = match net.default {
                    Action::Deny(e) => e,
                    _ => Errno::EACCES,
                };
                (Action::Deny(errno), net.rules.len(), "sockets")
            }
        };
        self.finish(caller, action, slot, label, || audit::Event::socket(syscall, kind))
    }

    /// Whether setting socket option `(level, name)`, or sending a control message of that
    /// level and type, is refused: under a firewall, the options that route a packet through
    /// other addresses than its destination (IPv4 source routes, IPv6 routing headers and next
    /// hops), and detaching the receive filter (`SO_DETACH_FILTER`).
    pub fn refuses_option(&self, level: i32, name: i32) -> bool {
        self.net.is_some()
            && (ROUTING_OPTIONS.contains(&(level, name))
                || (level == libc::SOL_SOCKET && name == 27))
    }

    /// The errno for [`Engine::refuses_option`] and other refusals outside the rules.
    pub fn refusal_errno(&self) -> Errno {
        match self.net.as_ref().map(|n| n.default) {
            Some(Action::Deny(e)) => e,
            _ => Errno::EACCES,
        }
    }

    /// Audits a refusal outside the rules (`rule` names why), returning its errno.
    pub fn refuse(&self, caller: Caller, syscall: &str, rule: &str, detail: audit::Event) -> Errno {
        let errno = self.refusal_errno();
        let mut ev = detail;
        ev.syscall = syscall.to_string();
        self.audit.write(caller, &ev, Action::Deny(errno), rule);
        errno
    }

    fn finish(
        &self,
        caller: Caller,
        action: Action,
        slot: usize,
        label: &str,
        event: impl FnOnce() -> audit::Event,
    ) -> Result<(), Errno> {
        self.counters.count(slot, matches!(action, Action::Deny(_)));
        let write = match action {
            Action::Deny(_) | Action::Log => true,
            Action::Allow => self.audit.allowed,
        };
        if write {
            self.audit.write(caller, &event(), action, label);
        }
        match action {
            Action::Deny(e) => Err(e),
            _ => Ok(()),
        }
    }

    /// The `--stats` summary, if asked for: one line per rule that decided something.
    pub fn summary(&self) -> Option<String> {
        if !self.audit.stats {
            return None;
        }
        let mut rows = Vec::new();
        if let Some(n) = &self.net {
            for (i, r) in n.rules.iter().enumerate() {
                rows.push((i, r.label.clone()));
            }
            rows.push((
                n.rules.len(),
                format!("{} (default {})", n.default_label, n.default.name()),
            ));
            for (i, s) in n.sockets.iter().enumerate() {
                rows.push((n.rules.len() + 1 + i, s.label.clone()));
            }
        }
        let base = self.net.as_ref().map_or(0, |n| n.rules.len() + n.sockets.len() + 1);
        for (i, s) in self.syscalls.iter().enumerate() {
            rows.push((base + i, s.label.clone()));
        }
        let counts: Vec<(String, u64, u64)> = rows
            .into_iter()
            .map(|(slot, label)| {
                let (a, d) = self.counters.get(slot);
                (label, a, d)
            })
            .collect();
        Some(audit::summary(&self.name, &counts))
    }

    /// Where audit lines go (for the supervisor's own refusals).
    pub fn sink(&self) -> &audit::Sink {
        &self.audit
    }
}

/// The decision for `req` under `net`, for tests and tools: the action and the deciding
/// rule's label.
pub fn explain<'a>(net: &'a NetPolicy, req: &Request<'_>) -> (Action, &'a str) {
    match net.first_match(req) {
        Some(i) => (net.rules[i].action, &net.rules[i].label),
        None => (net.default, &net.default_label),
    }
}

/// Whether an endpoint is the kernel side of a `NETLINK_ROUTE` socket (always allowed).
pub fn is_kernel_netlink(ep: &Endpoint) -> bool {
    matches!(ep, Endpoint::Netlink { pid: 0, groups: 0 })
}

/// Loads `Ordering` for counters (kept here so `audit` needs no atomics of its own).
pub(crate) const COUNT_ORDER: Ordering = Ordering::Relaxed;
