//! `sandbox run --learn FILE`: run the program under the null policy's verdicts (everything
//! allowed, validated) while the engine notes what each decision was about, and write the
//! narrowest policy file that allows all of it.
//!
//! **Recording** ([`Recorder`]). The learning engine ([`super::Engine::learn`]) mediates the
//! file system and the network without refusing anything, so that the paths layer
//! ([`crate::syscall::paths`]) resolves every path in the host kernel and the socket calls
//! ([`crate::syscall::net`]) decode every address into a typed [`Endpoint`], exactly as under
//! a policy; each decision is noted instead of judged:
//!
//! * system calls: a bit per call number, in memory shared by the whole process tree (one
//!   atomic `or` per call);
//! * paths (as the kernel resolved them, with what was needed: looked at, read, written,
//!   executed), endpoints (operation, transport, endpoint, local port) and socket kinds: one
//!   line per distinct record and process, appended (`O_APPEND`, one `write(2)`) to a journal
//!   file, unlinked at start and held by the runtime, that forked children inherit; a set in
//!   each process keeps a record from being written twice.
//!
//! When the first sandboxed process ends, it reads the journal and the call bits back
//! ([`Learned`]), groups the paths ([`plan_paths`]), renders the file ([`render`]) and writes
//! it atomically (a temporary file in the same directory, renamed over FILE). Records of a
//! process still running then (one its parent did not wait for) are those it made so far.
//!
//! Journal lines (text, paths and names hex-encoded so that no byte can break a line):
//!
//! ```text
//! f ACCESS HEXPATH                  ACCESS: s (looked at), r, w, rw, x
//! n OP TRANSPORT LOCALPORT|- ENDPOINT   ENDPOINT: ip ADDR PORT | path HEX | abstract HEX |
//!                                                 autobind | netlink PID GROUPS
//! k SOCKETKIND                      a kind beyond tcp, udp, unix, NETLINK_ROUTE (file name)
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::endpoint::{Endpoint, Op, SockKind, Transport};
use super::firewall::{Request, SocketKindName};
use super::fs::{Access, Need};
use super::show::quote;
use super::syscall_names;

/// A directory is made one rule when this many of its entries (files, or groups below it) were
/// used with the same access.
pub const GROUP_AT: usize = 3;

/// Why learning cannot start or its file cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// FILE is a directory.
    #[error("--learn {0}: is a directory; name a file to write the policy to")]
    IsDir(PathBuf),
    /// FILE exists and is read-only.
    #[error("--learn {0}: the file exists and is read-only; make it writable or name another")]
    ReadOnly(PathBuf),
    /// FILE's directory does not exist or cannot be written.
    #[error(
        "--learn {0}: cannot write in its directory {1}: {2}; name a file in a writable directory"
    )]
    Dir(PathBuf, PathBuf, std::io::Error),
    /// The journal could not be made.
    #[error("--learn: cannot make the journal in {0}: {1}; set TMPDIR to a writable directory")]
    Journal(PathBuf, std::io::Error),
    /// The file could not be written at the end.
    #[error("--learn: cannot write {0}: {1}")]
    Write(PathBuf, std::io::Error),
}

/// `--learn FILE`: FILE made absolute (against the working directory now), after checking that
/// it can be written: not a directory, not read-only, in a directory where a file can be made
/// (checked by making and removing one). Nothing is written to FILE itself until the end.
pub fn check_target(file: &Path) -> Result<PathBuf, LearnError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let abs = if file.is_absolute() { file.to_path_buf() } else { cwd.join(file) };
    if let Ok(md) = std::fs::metadata(&abs) {
        if md.is_dir() {
            return Err(LearnError::IsDir(file.into()));
        }
        if md.permissions().readonly() {
            return Err(LearnError::ReadOnly(file.into()));
        }
    }
    let dir = abs.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let probe = temp_name(&abs, "probe");
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(abs)
        }
        Err(e) => Err(LearnError::Dir(file.into(), dir, e)),
    }
}

/// `DIR/.NAME.learn-PID-WHAT` next to `file`.
fn temp_name(file: &Path, what: &str) -> PathBuf {
    let name = file.file_name().map_or_else(|| "policy".into(), |n| n.to_string_lossy());
    let dir = file.parent().unwrap_or(Path::new("/"));
    dir.join(format!(".{name}.learn-{}-{what}", std::process::id()))
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn need_code(n: Need) -> &'static str {
    match n {
        Need::Stat => "s",
        Need::Read => "r",
        Need::Write => "w",
        Need::ReadWrite => "rw",
        Need::Exec => "x",
    }
}

/// A transport's name in journal lines (the audit log's).
fn transport_code(t: Transport) -> &'static str {
    super::audit::transport_name(t)
}

fn transport_of(s: &str) -> Option<Transport> {
    Some(match s {
        "tcp" => Transport::Tcp,
        "udp" => Transport::Udp,
        "unix" => Transport::Unix,
        "netlink" => Transport::NetlinkRoute,
        "other" => Transport::Other,
        _ => return None,
    })
}

/// One network operation of the run.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NetUse {
    /// The operation.
    pub op: Op,
    /// The socket's transport.
    pub transport: Transport,
    /// The endpoint, as the firewall decoded it.
    pub endpoint: Endpoint,
    /// The socket's local port (`accept`).
    pub local_port: Option<u16>,
}

/// The journal line of a network operation (without newline).
pub fn net_line(u: &NetUse) -> String {
    let lp = u.local_port.map_or_else(|| "-".to_string(), |p| p.to_string());
    let ep = match &u.endpoint {
        Endpoint::Ip(ip, port) => format!("ip {ip} {port}"),
        Endpoint::UnixPath(p) => format!("path {}", hex(p)),
        Endpoint::UnixAbstract(n) => format!("abstract {}", hex(n)),
        Endpoint::UnixAutobind => "autobind".into(),
        Endpoint::Netlink { pid, groups } => format!("netlink {pid} {groups}"),
    };
    format!("n {} {} {lp} {ep}", u.op.name(), transport_code(u.transport))
}

/// The journal line of a path (without newline).
pub fn path_line(path: &[u8], need: Need) -> String {
    format!("f {} {}", need_code(need), hex(path))
}

/// What a run did, read back from the journal and the call bits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Learned {
    /// System-call numbers made.
    pub calls: BTreeSet<u16>,
    /// Paths as the kernel resolved them, with the accesses needed (`Access::NONE`: looked
    /// at only).
    pub paths: BTreeMap<Vec<u8>, Access>,
    /// Network operations, in first-seen order.
    pub net: Vec<NetUse>,
    /// Socket kinds beyond the ones always allowed (policy-file names).
    pub sockets: BTreeSet<String>,
}

impl Learned {
    /// Adds the records of journal text `text`; lines that do not parse are skipped.
    pub fn add_journal(&mut self, text: &str) {
        for line in text.lines() {
            let w: Vec<&str> = line.split(' ').collect();
            match w.as_slice() {
                ["f", need, path] => {
                    let Some(p) = unhex(path) else { continue };
                    let a = match *need {
                        "s" => Access::NONE,
                        "r" => Access::R,
                        "w" => Access::W,
                        "rw" => Access::R.with(Access::W),
                        "x" => Access::X,
                        _ => continue,
                    };
                    let e = self.paths.entry(p).or_default();
                    *e = e.with(a);
                }
                ["n", op, tr, lp, rest @ ..] => {
                    let (Some(op), Some(transport)) = (Op::from_name(op), transport_of(tr)) else {
                        continue;
                    };
                    let local_port = lp.parse().ok();
                    let endpoint = match rest {
                        ["ip", a, p] => match (a.parse::<IpAddr>(), p.parse()) {
                            (Ok(a), Ok(p)) => Endpoint::Ip(a, p),
                            _ => continue,
                        },
                        ["path", h] => match unhex(h) {
                            Some(p) => Endpoint::UnixPath(p),
                            None => continue,
                        },
                        ["abstract", h] => match unhex(h) {
                            Some(n) => Endpoint::UnixAbstract(n),
                            None => continue,
                        },
                        ["autobind"] => Endpoint::UnixAutobind,
                        ["netlink", pid, groups] => match (pid.parse(), groups.parse()) {
                            (Ok(pid), Ok(groups)) => Endpoint::Netlink { pid, groups },
                            _ => continue,
                        },
                        _ => continue,
                    };
                    let u = NetUse { op, transport, endpoint, local_port };
                    if !self.net.contains(&u) {
                        self.net.push(u);
                    }
                }
                ["k", kind] if SocketKindName::parse(kind).is_some() => {
                    self.sockets.insert((*kind).to_string());
                }
                _ => {}
            }
        }
    }
}

/// The recorder of a learning run, shared by its threads (in the engine) and inherited by its
/// forked children.
#[derive(Debug)]
pub struct Recorder {
    /// One bit per call number, shared with forked children.
    calls: &'static [AtomicU64],
    /// The journal: a runtime descriptor, opened for appending, its file unlinked.
    journal: i32,
    /// Records this process already wrote.
    seen: Mutex<HashSet<String>>,
    /// Where the policy goes (absolute).
    out: PathBuf,
    /// The sandbox's stderr at start (a runtime descriptor), for the closing line.
    stderr: Option<i32>,
    /// For the file's header and its rules: the command, the working directory and `$HOME`
    /// at start.
    context: Context,
}

/// What the rules are made against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// The program and its arguments, as text.
    pub command: String,
    /// The working directory at start (canonical).
    pub cwd: Vec<u8>,
    /// `$HOME` (canonical), if set.
    pub home: Option<Vec<u8>>,
    /// `/tmp` as the host resolves it.
    pub tmp: Vec<u8>,
}

impl Context {
    /// The context of this process now.
    pub fn now(command: String) -> Context {
        let canon = |p: &Path| {
            std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .into_os_string()
                .into_encoded_bytes()
        };
        Context {
            command,
            cwd: canon(&std::env::current_dir().unwrap_or_else(|_| "/".into())),
            home: std::env::var_os("HOME").map(|h| canon(Path::new(&h))),
            tmp: canon(Path::new("/tmp")),
        }
    }
}

const CALL_WORDS: usize = 8;

impl Recorder {
    /// A recorder writing the policy to `out` (from [`check_target`]) at the end: makes the
    /// journal in the host's temporary directory (unlinked at once) and the shared call bits.
    pub fn new(out: PathBuf, command: String) -> Result<Recorder, LearnError> {
        use std::os::fd::{AsFd, IntoRawFd};
        let base = std::env::temp_dir();
        let err = |e| LearnError::Journal(base.clone(), e);
        let mut made = None;
        for n in 0..100u32 {
            let p = base.join(format!("sandbox-learn-{}-{n}", std::process::id()));
            match std::fs::OpenOptions::new().read(true).append(true).create_new(true).open(&p) {
                Ok(f) => {
                    let _ = std::fs::remove_file(&p);
                    made = Some(f);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(err(e)),
            }
        }
        let file = made.ok_or_else(|| err(std::io::ErrorKind::AlreadyExists.into()))?;
        let journal = crate::fdwin::window().place(file.into_raw_fd()).map_err(err)?;
        let calls = crate::sys_net::shared_counters(CALL_WORDS)
            .ok_or_else(|| err(std::io::Error::other("no shared memory for the call bits")))?;
        let stderr = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .and_then(|fd| crate::fdwin::window().place(fd.into_raw_fd()).ok());
        Ok(Recorder {
            calls,
            journal,
            seen: Mutex::new(HashSet::new()),
            out,
            stderr,
            context: Context::now(command),
        })
    }

    /// The runtime descriptors it holds (the journal, the saved stderr).
    pub fn fds(&self) -> impl Iterator<Item = i32> {
        std::iter::once(self.journal).chain(self.stderr)
    }

    /// Notes system call `nr`.
    #[inline]
    pub fn note_call(&self, nr: u16) {
        if let Some(w) = self.calls.get(usize::from(nr / 64)) {
            w.fetch_or(1 << (nr % 64), Ordering::Relaxed);
        }
    }

    fn note(&self, line: String) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(&line) {
            return;
        }
        let mut l = line.clone().into_bytes();
        l.push(b'\n');
        crate::sys_net::write_all(self.journal, &l);
        seen.insert(line);
    }

    /// Notes `need` on `path` (as the kernel resolved it).
    pub fn note_path(&self, path: &[u8], need: Need) {
        self.note(path_line(path, need));
    }

    /// Notes a network request.
    pub fn note_net(&self, req: &Request<'_>) {
        let u = NetUse {
            op: req.op,
            transport: req.transport,
            endpoint: req.endpoint.clone(),
            local_port: if req.op == Op::Accept { req.local_port } else { None },
        };
        self.note(net_line(&u));
    }

    /// Notes a socket of kind `kind` (only kinds beyond the ones always allowed matter).
    pub fn note_socket(&self, kind: &SockKind) {
        if kind.transport() != Transport::Other {
            return;
        }
        if let Some(name) = socket_kind_name(kind) {
            self.note(format!("k {name}"));
        }
    }

    /// What the run did so far (every process's journal lines, the shared call bits).
    pub fn learned(&self) -> Learned {
        let mut l = Learned::default();
        for (i, w) in self.calls.iter().enumerate() {
            let bits = w.load(Ordering::Relaxed);
            for b in 0..64 {
                if bits & (1 << b) != 0 {
                    l.calls.insert((i * 64 + b) as u16);
                }
            }
        }
        // The journal's file is unlinked: its descriptor's magic link still opens it.
        let text = std::fs::read(format!("/proc/self/fd/{}", self.journal)).unwrap_or_default();
        l.add_journal(&String::from_utf8_lossy(&text));
        l
    }

    /// Writes the policy file (the run ended with `ending`, e.g. `exit status 0`) and says so
    /// on the sandbox's stderr as it was at start.
    pub fn finish(&self, ending: &str) {
        let learned = self.learned();
        let text = render(&learned, &self.context, ending);
        let msg = match write_atomically(&self.out, &text) {
            Ok(()) => {
                let plan = plan_paths(&learned.paths, &self.context);
                format!(
                    "sandbox: --learn: wrote {} ({} system calls, {} filesystem rules, {} \
                     network operations); review it, then run with --policy {}\n",
                    self.out.display(),
                    allowed_names(&learned.calls).len(),
                    plan.rules.len(),
                    learned.net.len(),
                    self.out.display()
                )
            }
            Err(e) => format!("sandbox: {}\n", LearnError::Write(self.out.clone(), e)),
        };
        if let Some(fd) = self.stderr {
            crate::sys_net::write_all(fd, msg.as_bytes());
        }
    }
}

/// The policy-file name of socket kind `kind`.
fn socket_kind_name(kind: &SockKind) -> Option<String> {
    let named = [
        SocketKindName::Raw,
        SocketKindName::Icmp,
        SocketKindName::Sctp,
        SocketKindName::UdpLite,
        SocketKindName::Mptcp,
        SocketKindName::Packet,
        SocketKindName::Netlink,
    ];
    if let Some(k) = named.into_iter().find(|k| k.matches(kind)) {
        return Some(k.name());
    }
    let k = SocketKindName::Family(kind.domain);
    SocketKindName::parse(&k.name()).map(|_| k.name())
}

/// Writes `text` to `path` through a temporary file in its directory, renamed over it.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = temp_name(path, "new");
    std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The names of the calls in `calls` a policy file can allow, sorted (the calls a program
/// needs to end are always allowed and cannot be named).
pub fn allowed_names(calls: &BTreeSet<u16>) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = calls
        .iter()
        .filter_map(|&nr| syscall_names::NAMES.get(usize::from(nr)).copied())
        .filter(|n| !n.is_empty() && !super::ALWAYS_ALLOWED.contains(n))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

// ---------------------------------------------------------------------------------------------
// Paths grouped into rules.

/// One filesystem rule of the learned policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRule {
    /// The path (canonical, absolute).
    pub path: Vec<u8>,
    /// What it grants.
    pub access: Access,
    /// How many recorded paths it covers.
    pub count: usize,
    /// A few of them.
    pub examples: Vec<Vec<u8>>,
    /// Why it has this shape, when not a single path used as it is.
    pub why: Option<&'static str>,
}

/// The filesystem part of the learned policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathPlan {
    /// The rules, by path.
    pub rules: Vec<PlannedRule>,
    /// Everything under `/tmp` was written by the program: a private `/tmp` instead of rules.
    pub private_tmp: Option<usize>,
}

fn below(p: &[u8], dir: &[u8]) -> bool {
    super::is_below(p, dir)
}

fn depth(p: &[u8]) -> usize {
    p.split(|&b| b == b'/').filter(|c| !c.is_empty()).count()
}

#[derive(Clone, Debug)]
struct Node {
    access: Access,
    count: usize,
    examples: Vec<Vec<u8>>,
    /// Made from several paths (a directory grouped), not a path used as it is.
    group: bool,
    why: Option<&'static str>,
}

impl Node {
    fn leaf(p: &[u8], a: Access) -> Node {
        Node { access: a, count: 1, examples: vec![p.to_vec()], group: false, why: None }
    }

    fn absorb(&mut self, o: Node) {
        self.access = self.access.with(o.access);
        self.count += o.count;
        for e in o.examples {
            if self.examples.len() < 3 && !self.examples.contains(&e) {
                self.examples.push(e);
            }
        }
    }
}

fn is_pid_dir(p: &[u8]) -> bool {
    let Some(rest) = p.strip_prefix(b"/proc/") else { return false };
    let first = rest.split(|&b| b == b'/').next().unwrap_or(b"");
    !first.is_empty()
        && (first.iter().all(u8::is_ascii_digit) || first == b"self" || first == b"thread-self")
}

/// Groups the recorded paths into rules, narrowest reasonable:
///
/// * the rule of a path grants what was needed of it (`r` for a path only looked at, as a
///   rule without access would refuse even that); a directory only looked at that is above
///   another rule needs none (the directories above a rule may always be looked at);
/// * below the working directory, when anything there was written: one rule on the working
///   directory, with every access used below it;
/// * under `/tmp` (outside the working directory), when every path used there was written by
///   the program: no rule, a private `/tmp` instead;
/// * `/proc/PID/...` (the process's own entries, whose number changes from run to run, and
///   the rules have no wildcards): one `r` rule on `/proc` (other processes' entries stay
///   hidden by process confinement); `/dev/pts/N`: `/dev/pts`;
/// * then, bottom-up, a directory becomes one rule for an access when [`GROUP_AT`] or more of
///   its entries were used with exactly that access: never `/` or a top-level directory
///   (`/usr`, `/etc`, `/home`), never `$HOME` or a directory above it, and a second-level
///   directory (`/usr/lib`) only for paths used in it directly, not for groups below it; a
///   path with other access below such a directory keeps its own rule (the longest rule
///   decides), one with the same access is dropped.
pub fn plan_paths(paths: &BTreeMap<Vec<u8>, Access>, ctx: &Context) -> PathPlan {
    let mut plan = PathPlan::default();
    let mut nodes: BTreeMap<Vec<u8>, Node> = BTreeMap::new();
    let abs: Vec<(&Vec<u8>, Access)> =
        paths.iter().filter(|(p, _)| p.first() == Some(&b'/')).map(|(p, a)| (p, *a)).collect();
    let cwd_written = ctx.cwd != b"/"
        && depth(&ctx.cwd) >= 2
        && abs.iter().any(|(p, a)| below(p, &ctx.cwd) && a.has(Access::W));
    let tmp_paths: Vec<&(&Vec<u8>, Access)> = abs
        .iter()
        .filter(|(p, _)| below(p, &ctx.tmp) && !(cwd_written && below(p, &ctx.cwd)))
        .collect();
    let private_tmp = !tmp_paths.is_empty() && tmp_paths.iter().all(|(_, a)| a.has(Access::W));
    if private_tmp {
        plan.private_tmp = Some(tmp_paths.len());
    }
    let mut add = |key: Vec<u8>, mut n: Node| {
        if let Some(old) = nodes.get_mut(&key) {
            old.absorb(n);
        } else {
            if key != n.examples[0] {
                n.group = true;
            }
            nodes.insert(key, n);
        }
    };
    for &(p, a) in &abs {
        // A directory only looked at, above other paths used: needs no rule.
        if a == Access::NONE
            && abs.iter().any(|(q, _)| q.len() > p.len() && below(q, p))
            && !(cwd_written && below(p, &ctx.cwd))
        {
            continue;
        }
        let a = a.with(Access::R);
        let leaf = Node::leaf(p, a);
        if cwd_written && below(p, &ctx.cwd) {
            let mut n = leaf;
            n.why = Some("working directory");
            add(ctx.cwd.clone(), n);
        } else if private_tmp && below(p, &ctx.tmp) {
            continue;
        } else if is_pid_dir(p) {
            let mut n = Node::leaf(p, Access::R);
            n.why = Some("proc");
            add(b"/proc".to_vec(), n);
        } else if p.starts_with(b"/dev/pts/") {
            let mut n = leaf;
            n.why = Some("pts");
            add(b"/dev/pts".to_vec(), n);
        } else {
            add(p.clone(), leaf);
        }
    }
    // The working directory's rule gets the access its files needed (its own listing too).
    if let Some(n) = nodes.get_mut(&ctx.cwd)
        && n.why == Some("working directory")
    {
        n.group = true;
    }
    let collapsible = |d: &[u8], n_leaves: usize, n_all: usize| -> bool {
        let dd = depth(d);
        if dd < 2 {
            return false;
        }
        if let Some(h) = &ctx.home
            && below(h, d)
        {
            return false;
        }
        if dd == 2 { n_leaves >= GROUP_AT } else { n_all >= GROUP_AT }
    };
    loop {
        // Per directory and exact access: (entries, leaves).
        let mut counts: BTreeMap<(Vec<u8>, u8), (usize, usize)> = BTreeMap::new();
        for (p, n) in &nodes {
            if n.why.is_some() {
                continue;
            }
            if let Some(d) = super::fs::parent(p) {
                let c = counts.entry((d.to_vec(), access_key(n.access))).or_default();
                c.0 += 1;
                if !n.group {
                    c.1 += 1;
                }
            }
        }
        let Some(((dir, key), _)) =
            counts.into_iter().find(|((d, _), (all, leaves))| collapsible(d, *leaves, *all))
        else {
            break;
        };
        let members: Vec<Vec<u8>> = nodes
            .iter()
            .filter(|(p, n)| {
                n.why.is_none()
                    && access_key(n.access) == key
                    && super::fs::parent(p) == Some(dir.as_slice())
            })
            .map(|(p, _)| p.clone())
            .collect();
        let mut group =
            Node { access: Access::NONE, count: 0, examples: Vec::new(), group: true, why: None };
        for m in members {
            if let Some(n) = nodes.remove(&m) {
                group.absorb(n);
            }
        }
        match nodes.get_mut(&dir) {
            Some(old) => {
                old.absorb(group);
                old.group = true;
            }
            None => {
                nodes.insert(dir, group);
            }
        }
    }
    // A rule whose nearest rule above grants the same is not needed.
    let keys: Vec<Vec<u8>> = nodes.keys().cloned().collect();
    for k in keys {
        let mut up = super::fs::parent(&k);
        while let Some(d) = up {
            if let Some(a) = nodes.get(d).map(|n| n.access) {
                if nodes.get(&k).is_some_and(|n| n.access == a)
                    && let Some(n) = nodes.remove(&k)
                    && let Some(parent) = nodes.get_mut(d)
                {
                    parent.absorb(n);
                }
                break;
            }
            up = super::fs::parent(d);
        }
    }
    plan.rules = nodes
        .into_iter()
        .map(|(path, n)| PlannedRule {
            path,
            access: n.access,
            count: n.count,
            examples: n.examples,
            why: n.why.or(if n.group { Some("grouped") } else { None }),
        })
        .collect();
    plan
}

fn access_key(a: Access) -> u8 {
    u8::from(a.has(Access::R)) | u8::from(a.has(Access::W)) << 1 | u8::from(a.has(Access::X)) << 2
}

// ---------------------------------------------------------------------------------------------
// The file.

fn text(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

fn verb(a: Access) -> &'static str {
    match (a.has(Access::W), a.has(Access::X)) {
        (false, false) => "read or looked at",
        (false, true) => "executed (and read)",
        (true, false) => "written (and read)",
        (true, true) => "written, read and executed",
    }
}

/// `s` made safe for a comment line: control characters (a newline in a file name would end
/// the comment and make the rest TOML, rules included) are written as `\u{..}` escapes.
fn comment_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

fn rule_comment(r: &PlannedRule, ctx: &Context) -> String {
    comment_safe(&rule_comment_text(r, ctx))
}

fn rule_comment_text(r: &PlannedRule, ctx: &Context) -> String {
    let examples: Vec<String> = r.examples.iter().map(|e| text(e)).collect();
    let eg =
        if examples.is_empty() { String::new() } else { format!(", e.g. {}", examples.join(", ")) };
    match r.why {
        Some("working directory") => format!(
            "# the working directory at learning time ({}): {} paths {} below it{eg}",
            text(&ctx.cwd),
            r.count,
            verb(r.access)
        ),
        Some("proc") => format!(
            "# /proc/PID of the program's own processes ({} paths{eg}): PID changes from run \
             to run and rules have no wildcards; other processes' entries stay hidden",
            r.count
        ),
        Some("pts") => format!("# the terminal ({} paths{eg})", r.count),
        Some(_) => {
            format!("# {} by the program: {} paths in this directory{eg}", verb(r.access), r.count)
        }
        None => format!("# {} by the program", verb(r.access)),
    }
}

/// How a rule's path is written: `.` for the working directory, else absolute.
fn given(p: &[u8], ctx: &Context) -> String {
    if p == ctx.cwd.as_slice() { ".".into() } else { text(p) }
}

fn net_rules(out: &mut String, net: &[NetUse]) {
    // (protocol key, target lines, local port) → ops, with what was seen.
    let mut rules: Vec<(String, Vec<Op>, Vec<String>)> = Vec::new();
    let bind_ports: Vec<(IpAddr, u16)> = net
        .iter()
        .filter_map(|u| match (&u.op, &u.endpoint) {
            (Op::Bind, Endpoint::Ip(ip, p)) => Some((*ip, *p)),
            _ => None,
        })
        .collect();
    let mut skipped = Vec::new();
    for u in net {
        let proto = match u.transport {
            Transport::Tcp => Some("tcp"),
            Transport::Udp => Some("udp"),
            _ => None,
        };
        let (target, seen) = match (&u.endpoint, proto) {
            (Endpoint::Ip(ip, port), Some(proto)) => {
                // A port the kernel picked (a listening socket bound to port 0) changes from
                // run to run: rules about it are for any port.
                let picked = |ip: &IpAddr, port: u16| {
                    !bind_ports.contains(&(*ip, port))
                        && net
                            .iter()
                            .any(|o| o.op == Op::Listen && o.endpoint == Endpoint::Ip(*ip, port))
                };
                let port_text = match u.op {
                    Op::Listen if !bind_ports.contains(&(*ip, *port)) => "\"any\"".to_string(),
                    // Its own listening socket, at the port the kernel picked.
                    Op::Connect if picked(ip, *port) => "\"any\"".to_string(),
                    // A connection's peer: its port is the peer's pick.
                    Op::Accept => "\"any\"".to_string(),
                    _ => port.to_string(),
                };
                let mut t = format!(
                    "protocol = {}\naddress = {}\nport = {port_text}\n",
                    quote(proto),
                    quote(&ip.to_string())
                );
                if u.op == Op::Accept
                    && let Some(lp) = u.local_port
                    && lp != 0
                    && bind_ports.iter().any(|b| b.1 == lp)
                {
                    let _ = writeln!(t, "local-port = {lp}");
                }
                let shown = match ip {
                    IpAddr::V6(_) => format!("[{ip}]:{port}"),
                    IpAddr::V4(_) => format!("{ip}:{port}"),
                };
                (t, format!("{} {proto} {shown}", u.op.name()))
            }
            (Endpoint::UnixPath(p), None) if !p.is_empty() => (
                format!("path = {}\n", quote(&text(p))),
                format!("{} unix {}", u.op.name(), text(p)),
            ),
            (Endpoint::UnixAbstract(n), None) => (
                format!("abstract = {}\n", quote(&text(n))),
                format!("{} unix @{}", u.op.name(), text(n)),
            ),
            (Endpoint::UnixAutobind, None) => (
                "family = \"unix-abstract\"\n".to_string(),
                format!("{} unix (a name the kernel picks)", u.op.name()),
            ),
            _ => {
                skipped.push(format!("{} {}", u.op.name(), net_line(u)));
                continue;
            }
        };
        match rules.iter_mut().find(|r| r.0 == target) {
            Some(r) => {
                if !r.1.contains(&u.op) {
                    r.1.push(u.op);
                }
                r.2.push(seen);
            }
            None => rules.push((target, vec![u.op], vec![seen])),
        }
    }
    for (target, ops, seen) in rules {
        let _ = writeln!(out, "\n# seen: {}", seen.join("; "));
        out.push_str("[[network.rule]]\n");
        let ops: Vec<String> =
            Op::ALL.iter().filter(|o| ops.contains(o)).map(|o| quote(o.name())).collect();
        let _ = writeln!(out, "op = [{}]", ops.join(", "));
        out.push_str(&target);
    }
    for s in skipped {
        let _ = writeln!(out, "# not expressible as a rule, left out: {}", comment_safe(&s));
    }
}

/// The learned policy as a policy file: header, `[network]`, `[syscalls]`, `[filesystem]`,
/// each rule commented with what it allows and why. `ending`: how the run ended.
pub fn render(l: &Learned, ctx: &Context, ending: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Learned by `sandbox run --learn` from one run of:");
    let _ = writeln!(out, "#   {}", comment_safe(&ctx.command));
    let _ = writeln!(out, "# in {} ({ending}).", comment_safe(&text(&ctx.cwd)));
    out.push_str(
        "# It allows what that run did and nothing else: review it (other inputs may need \
         more),\n# then use it with `sandbox run --policy FILE -- ...` (README.md, \"Learning \
         a policy\").\n",
    );
    out.push_str("\n# The network: only the operations the run made (default deny).\n[network]\n");
    out.push_str("default = \"deny\"\n");
    if !l.sockets.is_empty() {
        let kinds: Vec<String> = l.sockets.iter().map(|s| quote(s)).collect();
        let _ = writeln!(out, "sockets = [{}]", kinds.join(", "));
    }
    if l.net.is_empty() {
        out.push_str("# (the run reached no network endpoint)\n");
    }
    net_rules(&mut out, &l.net);
    let names = allowed_names(&l.calls);
    let _ = writeln!(
        out,
        "\n# System calls: the {} the run made; any other fails with ENOSYS (exit, exit_group \
         and\n# rt_sigreturn are always allowed).\n[syscalls]",
        names.len()
    );
    out.push_str("errno = \"ENOSYS\"\nallow = [\n");
    let mut line = String::from(" ");
    for n in names {
        if line.len() + n.len() + 4 > 92 {
            let _ = writeln!(out, "{line}");
            line = String::from(" ");
        }
        let _ = write!(line, " {},", quote(n));
    }
    if line.trim().is_empty() {
        out.push_str("]\n");
    } else {
        let _ = writeln!(out, "{line}\n]");
    }
    let plan = plan_paths(&l.paths, ctx);
    out.push_str(
        "\n# Files: the paths the run reached, as the kernel resolved them, grouped by directory\n\
         # (a directory is one rule when 3 or more of its entries were used alike; the\n\
         # directories above a rule may always be looked at). Paths no rule covers: EACCES.\n\
         [filesystem]\n",
    );
    if let Some(n) = plan.private_tmp {
        let _ = writeln!(
            out,
            "# everything the run used under /tmp ({n} paths) it wrote itself: an empty /tmp of \
             its own\nprivate-tmp = true"
        );
    }
    let short =
        [("ro", Access::R), ("exec", Access::R.with(Access::X)), ("rw", Access::R.with(Access::W))];
    for (key, a) in short {
        let rules: Vec<&PlannedRule> = plan.rules.iter().filter(|r| r.access == a).collect();
        if rules.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{key} = [");
        for r in rules {
            let _ = writeln!(out, "  {}", rule_comment(r, ctx));
            let _ = writeln!(out, "  {},", quote(&given(&r.path, ctx)));
        }
        out.push_str("]\n");
    }
    for r in plan.rules.iter().filter(|r| !short.iter().any(|(_, a)| *a == r.access)) {
        let _ = writeln!(out, "\n{}", rule_comment(r, ctx));
        out.push_str("[[filesystem.rule]]\n");
        let _ = writeln!(out, "path = {}", quote(&given(&r.path, ctx)));
        let _ = writeln!(out, "access = {}", quote(&r.access.letters()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            command: "prog".into(),
            cwd: b"/home/u/proj".to_vec(),
            home: Some(b"/home/u".to_vec()),
            tmp: b"/tmp".to_vec(),
        }
    }

    fn paths(list: &[(&str, Access)]) -> BTreeMap<Vec<u8>, Access> {
        list.iter().map(|(p, a)| (p.as_bytes().to_vec(), *a)).collect()
    }

    fn rules(plan: &PathPlan) -> Vec<(String, String)> {
        plan.rules.iter().map(|r| (text(&r.path), r.access.letters())).collect()
    }

    const R: Access = Access::R;
    const W: Access = Access::W;
    const X: Access = Access::X;
    const S: Access = Access::NONE;

    #[test]
    fn siblings_group_into_their_directory_but_not_above_the_second_level() {
        let plan = plan_paths(
            &paths(&[
                ("/usr/lib/x86_64-linux-gnu/libc.so.6", R),
                ("/usr/lib/x86_64-linux-gnu/libm.so.6", R),
                ("/usr/lib/x86_64-linux-gnu/libz.so.1", R),
                ("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", X),
                ("/usr/lib/python3/a/1.py", R),
                ("/usr/lib/python3/a/2.py", R),
                ("/usr/lib/python3/a/3.py", R),
                ("/usr/lib/python3/b/1.py", R),
                ("/usr/lib/python3/b/2.py", R),
                ("/usr/lib/python3/b/3.py", R),
                ("/usr/lib/python3/c/1.py", R),
                ("/usr/lib/python3/c/2.py", R),
                ("/usr/lib/python3/c/3.py", R),
                ("/srv/one/a/x", R),
                ("/srv/one/b/x", R),
                ("/srv/one/c/x", R),
                ("/usr/lib/locale/C.utf8/LC_CTYPE", R),
                ("/etc/hostname", R),
                ("/etc/passwd", R),
                ("/etc/ld.so.cache", R),
                ("/usr", S),
                ("/usr/lib", S),
            ]),
            &ctx(),
        );
        assert_eq!(
            rules(&plan),
            [
                ("/etc/hostname", "r"),
                ("/etc/ld.so.cache", "r"),
                ("/etc/passwd", "r"),
                ("/srv/one/a/x", "r"),
                ("/srv/one/b/x", "r"),
                ("/srv/one/c/x", "r"),
                ("/usr/lib/locale/C.utf8/LC_CTYPE", "r"),
                ("/usr/lib/python3", "r"),
                ("/usr/lib/x86_64-linux-gnu", "r"),
                ("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "rx"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let g = plan.rules.iter().find(|r| r.path == b"/usr/lib/x86_64-linux-gnu").unwrap();
        assert_eq!(g.count, 3);
        let g = plan.rules.iter().find(|r| r.path == b"/usr/lib/python3").unwrap();
        assert_eq!(g.count, 9, "groups of groups below the second level");
        assert_eq!(g.why, Some("grouped"));
        assert!(plan.private_tmp.is_none());
    }

    #[test]
    fn never_the_root_a_top_level_directory_or_home() {
        let plan = plan_paths(
            &paths(&[
                ("/a", R),
                ("/b", R),
                ("/c", R),
                ("/etc/x/1", R),
                ("/etc/y/1", R),
                ("/etc/z/1", R),
                ("/home/u/.a", R),
                ("/home/u/.b", R),
                ("/home/u/.c", R),
            ]),
            &Context { cwd: b"/work".to_vec(), ..ctx() },
        );
        let got = rules(&plan);
        assert_eq!(got.len(), 9, "{got:?}");
        assert!(!got.iter().any(|(p, _)| p == "/" || p == "/etc" || p == "/home/u"));
    }

    #[test]
    fn writes_in_the_working_directory_make_one_rule_there() {
        let plan = plan_paths(
            &paths(&[
                ("/home/u/proj", R),
                ("/home/u/proj/out.txt", W),
                ("/home/u/proj/src/a.c", R),
                ("/home/u/proj/build/run", X),
                ("/etc/hostname", R),
            ]),
            &ctx(),
        );
        assert_eq!(
            rules(&plan),
            [("/etc/hostname", "r"), ("/home/u/proj", "rwx")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let text = render(
            &Learned { paths: paths(&[("/home/u/proj/out.txt", W)]), ..Learned::default() },
            &ctx(),
            "exit status 0",
        );
        assert!(text.contains("rw = [\n  # the working directory"), "{text}");
        assert!(text.contains("  \".\",\n"), "{text}");
    }

    #[test]
    fn only_writes_under_tmp_make_a_private_tmp() {
        let c = Context { cwd: b"/work/p".to_vec(), ..ctx() };
        let plan = plan_paths(&paths(&[("/tmp/x", W), ("/tmp/y", R.with(W))]), &c);
        assert_eq!(plan.private_tmp, Some(2));
        assert!(plan.rules.is_empty());
        let plan = plan_paths(&paths(&[("/tmp/x", W), ("/tmp/given", R)]), &c);
        assert_eq!(plan.private_tmp, None);
        assert_eq!(plan.rules.len(), 2);
    }

    #[test]
    fn own_proc_entries_become_proc_and_lookups_above_rules_need_none() {
        let plan = plan_paths(
            &paths(&[
                ("/proc/4242/maps", R),
                ("/proc/4243/status", R),
                ("/proc/cpuinfo", R),
                ("/", S),
                ("/etc", S),
                ("/etc/hostname", R),
                ("/nonexistent", S),
                ("pipe:[123]", W),
            ]),
            &ctx(),
        );
        assert_eq!(
            rules(&plan),
            [("/etc/hostname", "r"), ("/nonexistent", "r"), ("/proc", "r")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn narrower_paths_keep_their_rule_same_ones_are_dropped() {
        let plan = plan_paths(
            &paths(&[
                ("/srv/data/a/1", R.with(W)),
                ("/srv/data/a/2", R.with(W)),
                ("/srv/data/a/3", R.with(W)),
                ("/srv/data/a/ro", R),
                ("/srv/data/a/sub/4", R.with(W)),
            ]),
            &ctx(),
        );
        assert_eq!(
            rules(&plan),
            [("/srv/data/a", "rw"), ("/srv/data/a/ro", "r")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(plan.rules[0].count, 4);
    }

    #[test]
    fn file_names_cannot_break_out_of_comments() {
        // A name made to end the comment and add `"/",` to the list (the red team's).
        let l = Learned {
            paths: paths(&[
                ("/home/u/proj/a", W),
                ("/home/u/proj/b", W),
                ("/home/u/proj/0\n  \"/\",\n  #", W),
            ]),
            ..Learned::default()
        };
        let text = render(&l, &ctx(), "exit status 0");
        assert!(text.lines().all(|line| line.trim() != "\"/\","), "{text}");
        let p = crate::policy::file::parse("learned.toml", &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let e = crate::policy::Engine::new(&p, crate::policy::audit::Sink::none()).unwrap();
        let fs = e.fs().unwrap();
        assert!(fs.decide(b"/etc/passwd", Need::Read).is_err(), "{text}");
        assert!(fs.decide(b"/etc/passwd", Need::Write).is_err(), "{text}");
    }

    #[test]
    fn journal_lines_read_back() {
        let ep = Endpoint::Ip("::1".parse().unwrap(), 8080);
        let u =
            NetUse { op: Op::Connect, transport: Transport::Tcp, endpoint: ep, local_port: None };
        let u2 = NetUse {
            op: Op::Bind,
            transport: Transport::Unix,
            endpoint: Endpoint::UnixPath(b"/run/a b\n.sock".to_vec()),
            local_port: None,
        };
        let j = format!(
            "{}\n{}\n{}\n{}\ngarbage line\nf r zz\nk raw\nk nonsense\n{}\n",
            path_line(b"/etc/a\nb", Need::Read),
            path_line(b"/etc/a\nb", Need::Exec),
            net_line(&u),
            net_line(&u2),
            net_line(&u)
        );
        let mut l = Learned::default();
        l.add_journal(&j);
        assert_eq!(l.paths.get(&b"/etc/a\nb"[..]), Some(&R.with(X)));
        assert_eq!(l.paths.len(), 1);
        assert_eq!(l.net, vec![u, u2]);
        assert_eq!(l.sockets.iter().collect::<Vec<_>>(), ["raw"]);
    }

    #[test]
    fn the_file_parses_back_and_allows_what_was_done() {
        use crate::policy::firewall::Request;
        let mut l = Learned::default();
        l.calls.extend([0u16, 1, 2, 3, 60, 231, 15, 59]);
        l.paths = paths(&[("/etc/hostname", R), ("/home/u/proj/out.txt", W), ("/usr/bin/cat", X)]);
        l.net.push(NetUse {
            op: Op::Connect,
            transport: Transport::Tcp,
            endpoint: Endpoint::Ip("127.0.0.1".parse().unwrap(), 4444),
            local_port: None,
        });
        l.net.push(NetUse {
            op: Op::Connect,
            transport: Transport::Unix,
            endpoint: Endpoint::UnixPath(b"/run/x.sock".to_vec()),
            local_port: None,
        });
        let text = render(&l, &ctx(), "exit status 0");
        let p = crate::policy::file::parse("learned.toml", &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(
            text.contains("allow = [\n  \"close\", \"execve\", \"open\", \"read\", \"write\",\n]"),
            "{text}"
        );
        let net = p.net_policy().unwrap();
        fn req(ep: &Endpoint, t: Transport) -> Request<'_> {
            Request {
                op: Op::Connect,
                transport: t,
                endpoint: ep,
                local_port: None,
                datagram: false,
            }
        }
        let ok = Endpoint::Ip("127.0.0.1".parse().unwrap(), 4444);
        let other = Endpoint::Ip("127.0.0.1".parse().unwrap(), 4445);
        assert_eq!(net.decide(&req(&ok, Transport::Tcp)), crate::policy::Action::Allow);
        assert!(matches!(net.decide(&req(&other, Transport::Tcp)), crate::policy::Action::Deny(_)));
        let sock = Endpoint::UnixPath(b"/run/x.sock".to_vec());
        assert_eq!(net.decide(&req(&sock, Transport::Unix)), crate::policy::Action::Allow);
        let e = crate::policy::Engine::new(&p, crate::policy::audit::Sink::none()).unwrap();
        assert_eq!(e.syscall_rule(0).map(|r| r.action), Some(crate::policy::Action::Allow));
        assert_eq!(
            e.syscall_rule(101).map(|r| r.action),
            Some(crate::policy::Action::Deny(crate::errno::Errno::ENOSYS))
        );
        assert!(e.syscall_rule(231).is_none(), "exit_group is never ruled on");
        let fs = e.fs().unwrap();
        assert!(fs.decide(b"/etc/hostname", Need::Read).is_ok());
        assert!(fs.decide(b"/etc/shadow", Need::Read).is_err());
        assert!(fs.decide(b"/usr/bin/cat", Need::Exec).is_ok());
        assert!(fs.decide(b"/usr/bin/rm", Need::Exec).is_err());
    }

    #[test]
    fn socket_kind_names_are_the_files() {
        let raw = SockKind { domain: 2, ty: 3, protocol: 1 };
        assert_eq!(socket_kind_name(&raw).as_deref(), Some("raw"));
        let vsock = SockKind { domain: 40, ty: 1, protocol: 0 };
        assert_eq!(socket_kind_name(&vsock).as_deref(), Some("vsock"));
    }
}
