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
//!   an allow-list (`allow = [...]`) is a denying rule in every slot it does not name;
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
//! * **filesystem rules** (`[filesystem]`, `--ro`, `--rw`, `--hide`, `--exec`): every call
//!   that names a path ([`crate::syscall::paths`]) resolves it once, in the host kernel, to a
//!   descriptor the supervisor holds, asks the engine about the path that descriptor really
//!   has ([`fs`]), and carries out the call on that descriptor;
//! * **process confinement** (every policy but null): signals, waits and queries reach only
//!   the sandbox's own processes ([`crate::family`]).
//!
//! * **learning** (`run --learn FILE`, [`learn`]): an engine of the null policy that mediates
//!   the file system and the network and rules on every call, allowing everything, and notes
//!   the typed argument of each decision for the policy file it writes at the end.
//!
//! Rule kinds are an enum ([`Rule`]) so that a policy can grow new kinds without changing how
//! the others are written, matched or audited.

pub mod audit;
pub mod bpf;
pub mod endpoint;
pub mod file;
pub mod firewall;
pub mod fs;
pub mod learn;
pub mod show;
pub mod spec;
pub mod syscall_names;

use std::sync::atomic::Ordering;

use crate::errno::Errno;
use endpoint::{Endpoint, Op, SockKind};
use firewall::{NetPolicy, NetRule, Request, SocketRule};
use fs::Access;

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
    /// About a path and what is below it.
    Fs(fs::FsRule),
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
    /// The program gets its own empty `/tmp` (a host directory made for the run).
    pub private_tmp: bool,
    /// Signals, waits and process queries reach only the sandbox's own processes (every
    /// policy but null).
    pub confine_processes: bool,
    /// `[syscalls] allow = [...]`: what every call no system-call rule names gets (the calls
    /// in [`ALWAYS_ALLOWED`] excepted); `None`: such calls are allowed.
    pub syscall_default: Option<SyscallDefault>,
}

/// The verdict for calls no system-call rule names, under an allow-list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallDefault {
    /// What they get (a denial).
    pub action: Action,
    /// Where it was set (`FILE:LINE (not in allow)`).
    pub label: String,
}

/// The calls a program needs to end (and to return from a signal handler): never denied or
/// logged, whatever a policy says.
pub const ALWAYS_ALLOWED: &[&str] = &["exit", "exit_group", "rt_sigreturn"];

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
    (
        "workspace",
        "the default: read the system but not secrets (~/.ssh, ~/.gnupg, ~/.aws, ...), write \
         only the working directory and a private /tmp, no network, no signals outside the sandbox",
    ),
    ("readonly", "workspace without writing the working directory"),
];

/// Credential stores the `workspace` and `readonly` profiles hide, relative to `~`.
pub const SECRETS: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".docker",
    ".netrc",
    ".git-credentials",
    ".pgpass",
    ".password-store",
    ".local/share/keyrings",
    ".config/gh",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".npmrc",
    ".pypirc",
    ".mozilla",
    ".config/google-chrome",
    ".config/chromium",
];

impl Policy {
    /// The null policy.
    pub fn null() -> Policy {
        Policy {
            name: "null".into(),
            rules: Vec::new(),
            network: None,
            private_tmp: false,
            confine_processes: false,
            syscall_default: None,
        }
    }

    /// A policy named `name` with these rules and network default, confining processes.
    pub fn with(name: &str, rules: Vec<Rule>, network: Option<NetDefault>) -> Policy {
        Policy {
            name: name.into(),
            rules,
            network,
            private_tmp: false,
            confine_processes: true,
            syscall_default: None,
        }
    }

    /// Whether the policy is the null policy in effect: no rules, no network mediation, no
    /// process confinement, no system-call default.
    pub fn is_null(&self) -> bool {
        self.rules.is_empty()
            && self.network.is_none()
            && !self.confine_processes
            && self.syscall_default.is_none()
    }

    /// Whether the policy has filesystem rules (and so mediates the file system).
    pub fn mediates_files(&self) -> bool {
        self.rules.iter().any(|r| matches!(r, Rule::Fs(_)))
    }

    /// The built-in policy `name`, if there is one.
    pub fn builtin(name: &str) -> Option<Policy> {
        let label = format!("--policy {name}");
        let deny =
            || Some(NetDefault { action: Action::Deny(Errno::EACCES), label: label.clone() });
        Some(match name {
            "null" => Policy::null(),
            "deny-net" => Policy::with(name, Vec::new(), deny()),
            "workspace" | "readonly" => {
                let mut p = Policy::with(name, profile_rules(name, &label)?, deny());
                p.private_tmp = true;
                p
            }
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
                Policy::with(
                    name,
                    vec![
                        rule(firewall::Target::Ip {
                            nets: firewall::loopback_nets(),
                            ports: firewall::PortRange::ANY,
                        }),
                        rule(firewall::Target::UnixPath(None)),
                        rule(firewall::Target::UnixAbstract(None)),
                    ],
                    deny(),
                )
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
                Rule::Syscall(_) | Rule::Fs(_) => {}
            }
        }
        Some(p)
    }
}

/// The filesystem rules of the profile `name` (`workspace`, `readonly`), made canonical
/// against the working directory and `$HOME` now. The private `/tmp` and `/dev/shm` are
/// added when the run makes them.
fn profile_rules(name: &str, label: &str) -> Option<Vec<Rule>> {
    use fs::{Access, FsAccess, FsRule};
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let (r, rx, rw) = (
        FsAccess::Allow(Access::R),
        FsAccess::Allow(Access::R.with(Access::X)),
        FsAccess::Allow(Access::R.with(Access::W)),
    );
    let rwx = FsAccess::Allow(Access::R.with(Access::W).with(Access::X));
    let mut given: Vec<(String, FsAccess)> = vec![
        ("/".into(), rx),
        // No device but the ones below (a disk, /dev/kmsg, /dev/mem are not the program's).
        ("/dev".into(), FsAccess::Allow(Access::NONE)),
        ("/proc".into(), r),
        ("/sys".into(), r),
        ("/dev/null".into(), rw),
        ("/dev/zero".into(), rw),
        ("/dev/full".into(), rw),
        ("/dev/random".into(), rw),
        ("/dev/urandom".into(), rw),
        ("/dev/tty".into(), rw),
        ("/dev/ptmx".into(), rw),
        ("/dev/pts".into(), rw),
    ];
    if home.is_some() {
        given.extend(SECRETS.iter().map(|s| (format!("~/{s}"), FsAccess::Hide)));
    }
    if name == "workspace" {
        given.push((cwd.to_string_lossy().into_owned(), rwx));
    }
    let mut rules = Vec::new();
    for (p, a) in given {
        let rule = FsRule::new(label, &p, a, None, &cwd, home.as_deref()).ok()?;
        rules.push(Rule::Fs(rule));
    }
    Some(rules)
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
    /// The filesystem rules, when the policy has any.
    fs: Option<fs::FsPolicy>,
    /// Whether `fs` is the one implicit rule (`rwx /`) a policy without filesystem rules gets
    /// so that the supervisor's files are protected ([`Engine::mediate_files`]).
    fs_implicit: bool,
    /// Whether processes are confined to the sandbox's own.
    confine: bool,
    /// Written once, to this descriptor of the runtime's, at the first denial (the default
    /// profile says that it applies).
    notice: Option<(String, i32)>,
    /// Whether the notice was written, in memory shared with forked children.
    noticed: Option<&'static [std::sync::atomic::AtomicU64]>,
    /// The run's private directories.
    redirects: Redirects,
    /// Debug builds, for the tests of the kernel-enforced layer only
    /// (`SANDBOX_TEST_FIRST_LAYER_OFF=1`): path decisions allow everything, so that what the
    /// program meets is the second layer's verdict ([`crate::landlock_layer`]).
    first_layer_off: bool,
    /// `--learn`: every decision allowed and noted ([`learn`]).
    learn: Option<learn::Recorder>,
}

/// The private directories of a run (`--private-tmp`): absolute paths the program names below
/// `from` reach `to`, a host directory made for the run, instead; paths below one of `except`
/// (a rule of their own inside `from`, such as a working directory in `/tmp`) do not.
#[derive(Clone, Debug, Default)]
pub struct Redirects {
    /// `(from, to)`: `/tmp` → the run's directory.
    pub dirs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Paths left as they are.
    pub except: Vec<Vec<u8>>,
}

/// Whether `p` is `dir` or below it (by whole components).
pub fn is_below(p: &[u8], dir: &[u8]) -> bool {
    p == dir || (p.starts_with(dir) && (dir == b"/" || p.get(dir.len()) == Some(&b'/')))
}

/// `p` with empty and `.` components dropped (`//tmp/./x` → `/tmp/x`); `None` when it has
/// `..` components or is relative (left to the kernel, and to the rules on what it resolves).
pub(crate) fn lexical(p: &[u8]) -> Option<Vec<u8>> {
    if p.first() != Some(&b'/') {
        return None;
    }
    let mut out = Vec::with_capacity(p.len());
    for c in p.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return None,
            c => {
                out.push(b'/');
                out.extend_from_slice(c);
            }
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    if p.ends_with(b"/") && out != b"/" {
        out.push(b'/');
    }
    Some(out)
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
        if let Some(d) = &policy.syscall_default {
            // An allow-list: every other call with a name gets the default, by number.
            for (nr, name) in syscall_names::NAMES.iter().enumerate() {
                if table[nr] == 0 && !name.is_empty() && !ALWAYS_ALLOWED.contains(name) {
                    let label = d.label.clone();
                    syscalls.push(SyscallRule { label, nr: nr as u16, action: d.action });
                    table[nr] = syscalls.len() as u16;
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
        let fs_rules: Vec<fs::FsRule> = policy
            .rules
            .iter()
            .filter_map(|r| if let Rule::Fs(f) = r { Some(f.clone()) } else { None })
            .collect();
        let fs = if fs_rules.is_empty() { None } else { Some(fs::FsPolicy::new(&fs_rules)) };
        Ok(Engine {
            name: policy.name.clone(),
            table,
            syscalls,
            net,
            recv_filter,
            audit,
            counters,
            fs,
            fs_implicit: false,
            confine: policy.confine_processes,
            notice: None,
            noticed: None,
            redirects: Redirects::default(),
            first_layer_off: cfg!(debug_assertions)
                && std::env::var_os("SANDBOX_TEST_FIRST_LAYER_OFF").is_some_and(|v| v == "1"),
            learn: None,
        })
    }

    /// For a policy that is not null but has no filesystem rules (`deny-net`, `loopback`, a
    /// firewall of its own): one implicit rule allowing everything (`rwx /`), so that path calls
    /// are resolved and decided as under any filesystem rules, and the supervisor's own files
    /// ([`Engine::protect`]) are never the program's to change, under every policy but null.
    /// Pathname unix sockets stay the firewall's to decide; no Landlock layer is made for it.
    pub fn mediate_files(&mut self) {
        if self.fs.is_some() {
            return;
        }
        self.fs = Some(allow_everything("every path (the policy has no filesystem rules)"));
        self.fs_implicit = true;
    }

    /// The filesystem rules the policy gave (not [`Engine::mediate_files`]'s implicit one).
    pub fn fs_given(&self) -> Option<&fs::FsPolicy> {
        self.fs.as_ref().filter(|_| !self.fs_implicit)
    }

    /// Makes this engine (of the null policy) a learning one ([`learn`]): every decision is
    /// allowed and noted by `rec`. The file system and the network are mediated (allowing
    /// everything) so that paths are resolved and addresses decoded as under a policy, and
    /// every system call reaches [`Engine::apply_syscall`] (a rule per call, each allowing).
    pub fn learn(&mut self, rec: learn::Recorder) {
        self.fs = Some(allow_everything("--learn"));
        let net = NetPolicy {
            default: Action::Allow,
            default_label: "--learn".into(),
            rules: Vec::new(),
            sockets: Vec::new(),
        };
        self.recv_filter = bpf::receive_filter(&net);
        self.net = Some(net);
        self.syscalls.clear();
        for (nr, slot) in self.table.iter_mut().enumerate() {
            self.syscalls.push(SyscallRule {
                label: "--learn".into(),
                nr: nr as u16,
                action: Action::Allow,
            });
            *slot = self.syscalls.len() as u16;
        }
        self.counters = audit::Counters::none();
        self.learn = Some(rec);
    }

    /// The recorder of a learning run.
    pub fn learner(&self) -> Option<&learn::Recorder> {
        self.learn.as_ref()
    }

    /// Sets the run's private directories.
    pub fn set_redirects(&mut self, r: Redirects) {
        self.redirects = r;
    }

    /// The run's private directories.
    pub fn redirects(&self) -> &Redirects {
        &self.redirects
    }

    /// The path the kernel gets for the program's absolute path `p` (a private directory put
    /// in), or `None` to keep `p`.
    pub fn redirect(&self, p: &[u8]) -> Option<Vec<u8>> {
        if self.redirects.dirs.is_empty() || p.first() != Some(&b'/') {
            return None;
        }
        let l = lexical(p)?;
        let bare = l.strip_suffix(b"/").filter(|b| !b.is_empty()).unwrap_or(&l);
        if self.redirects.except.iter().any(|e| is_below(bare, e)) {
            return None;
        }
        let (from, to) = self.redirects.dirs.iter().find(|(f, _)| is_below(bare, f))?;
        Some([&to[..], &l[from.len()..]].concat())
    }

    /// The inverse of [`Engine::redirect`], for paths the kernel reports (`getcwd`).
    pub fn unredirect(&self, p: &[u8]) -> Option<Vec<u8>> {
        let (from, to) = self.redirects.dirs.iter().find(|(_, t)| is_below(p, t))?;
        Some([&from[..], &p[to.len()..]].concat())
    }

    /// Writes `text` to `fd` (a descriptor of the runtime's: the sandbox's stderr) once, at
    /// the first denial of any kind.
    pub fn set_notice(&mut self, text: String, fd: i32) {
        self.notice = Some((text, fd));
        self.noticed = crate::sys_net::shared_counters(1);
    }

    /// Makes the supervisor's own file `path` (canonical) never writable by the program.
    pub fn protect(&mut self, path: &[u8]) {
        if let Some(f) = &mut self.fs {
            f.protect(path);
        }
    }

    /// The filesystem rules, if the policy mediates the file system.
    pub fn fs(&self) -> Option<&fs::FsPolicy> {
        self.fs.as_ref()
    }

    /// Whether signals, waits and queries are confined to the sandbox's own processes.
    pub fn confines_processes(&self) -> bool {
        self.confine
    }

    /// Decides `need` on `path` (as the host kernel resolved it) for `caller`'s call
    /// `syscall`: `Err` with the errno of a denial, audited first. Allowed without filesystem
    /// rules.
    pub fn decide_path(
        &self,
        caller: Caller,
        syscall: &str,
        path: &[u8],
        need: fs::Need,
    ) -> Result<(), Errno> {
        if let Some(l) = &self.learn {
            l.note_path(path, need);
            return Ok(());
        }
        let Some(f) = &self.fs else { return Ok(()) };
        if self.first_layer_off {
            return Ok(());
        }
        match f.decide(path, need) {
            Ok(()) => {
                // The implicit rule of a policy without filesystem rules decides nothing the
                // user asked about: only its denials (the supervisor's files) are audited.
                if self.audit.allowed && !self.fs_implicit {
                    self.audit.write(
                        caller,
                        &audit::Event::fs(syscall, need.name(), path),
                        Action::Allow,
                        "allowed",
                    );
                }
                Ok(())
            }
            Err(r) => Err(self.fs_denied(caller, syscall, need.name(), path, r)),
        }
    }

    /// Whether `caller` may move or link `src` to `dst` ([`fs::FsPolicy::may_move`]).
    pub fn decide_move(
        &self,
        caller: Caller,
        syscall: &str,
        src: &[u8],
        dst: &[u8],
    ) -> Result<(), Errno> {
        let Some(f) = &self.fs else { return Ok(()) };
        if self.learn.is_some() || self.first_layer_off {
            return Ok(());
        }
        f.may_move(src, dst).map_err(|r| self.fs_denied(caller, syscall, "move", src, r))
    }

    fn fs_denied(
        &self,
        caller: Caller,
        syscall: &str,
        op: &'static str,
        path: &[u8],
        r: fs::Refusal,
    ) -> Errno {
        self.audit.write(
            caller,
            &audit::Event::fs(syscall, op, path),
            Action::Deny(r.errno),
            &r.rule,
        );
        self.first_denial();
        r.errno
    }

    /// The notice of the first denial, once.
    pub fn first_denial(&self) {
        if let Some((text, fd)) = &self.notice
            && let Some([once]) = self.noticed
            && once.swap(1, COUNT_ORDER) == 0
        {
            crate::sys_net::write_all(*fd, text.as_bytes());
        }
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

    /// Whether a system-call rule denies or logs a call the vDSO serves (`clock_gettime`,
    /// `clock_getres`, `gettimeofday`, `time`, `getcpu`; an allow list without them denies
    /// them): the program must then make them as system calls, so the rule applies
    /// (`sandbox::vdso::disable`). Natively, seccomp cannot see vDSO calls either; a policy
    /// here says what it says.
    pub fn rules_vdso_calls(&self) -> bool {
        [
            libc::SYS_clock_gettime,
            libc::SYS_clock_getres,
            libc::SYS_gettimeofday,
            libc::SYS_time,
            libc::SYS_getcpu,
        ]
        .iter()
        .any(|&nr| self.syscall_rule(nr as u64).is_some_and(|r| r.action != Action::Allow))
    }

    /// Applies the system-call rule `rule` to a call of `caller`: `Err` with the errno of a
    /// denial; denials and logged calls are audited first.
    pub fn apply_syscall(
        &self,
        caller: Caller,
        rule: &SyscallRule,
        name: &str,
    ) -> Result<(), Errno> {
        if let Some(l) = &self.learn {
            l.note_call(rule.nr);
            return Ok(());
        }
        let index = self.table.get(usize::from(rule.nr)).map_or(0, |&i| usize::from(i).max(1) - 1);
        let slot = self.net.as_ref().map_or(0, |n| n.rules.len() + n.sockets.len() + 1) + index;
        self.finish(caller, rule.action, slot, &rule.label, || audit::Event::call(name))
    }

    /// Decides a network request of `caller`'s call `syscall`: `Err` with the errno of a
    /// denial. Denials, logged requests and (with `--audit-allowed`) every allowed one are
    /// audited before this returns. Without a firewall every request is allowed.
    pub fn decide(&self, caller: Caller, syscall: &str, req: &Request<'_>) -> Result<(), Errno> {
        if let Some(l) = &self.learn {
            l.note_net(req);
            return Ok(());
        }
        let Some(net) = &self.net else { return Ok(()) };
        let (action, slot, label) = match net.first_match(req) {
            Some(i) => (net.rules[i].action, i, net.rules[i].label.as_str()),
            // A pathname unix socket is a file: with filesystem rules, they decided it (the
            // firewall's unix rules, where given, still apply; its default does not).
            None if self.fs_given().is_some() && matches!(req.endpoint, Endpoint::UnixPath(_)) => {
                return Ok(());
            }
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
        if let Some(l) = &self.learn {
            l.note_socket(kind);
            return Ok(());
        }
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
            && self.learn.is_none()
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

    /// Audits a refusal with `errno` outside the rules (`rule` names why), returning it.
    pub fn refuse_with(
        &self,
        caller: Caller,
        rule: &str,
        detail: audit::Event,
        errno: Errno,
    ) -> Errno {
        self.audit.write(caller, &detail, Action::Deny(errno), rule);
        self.first_denial();
        errno
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
        if matches!(action, Action::Deny(_)) {
            self.first_denial();
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

/// Filesystem rules of one rule, `rwx /`, labelled `label`.
fn allow_everything(label: &str) -> fs::FsPolicy {
    let root = fs::FsRule {
        label: label.into(),
        given: "/".into(),
        path: b"/".to_vec(),
        access: fs::FsAccess::Allow(Access::R.with(Access::W).with(Access::X)),
        errno: None,
    };
    fs::FsPolicy::new(&[root])
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
