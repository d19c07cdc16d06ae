//! The second, kernel-enforced layer of a policy: Landlock (Documentation/userspace-api/
//! landlock.rst; `landlock_create_ruleset(2)`, `landlock_add_rule(2)`,
//! `landlock_restrict_self(2)`), applied to the supervisor itself just before the program's
//! first instruction.
//!
//! The first layer (`policy::fs` decided in `syscall::paths`) is what the program meets: it
//! knows hidden paths, per-rule errnos and the supervisor's own files. This layer makes the
//! host kernel refuse, to the supervisor process and every process it forks, what no rule
//! grants, so that a flaw in the first layer (a path call it does not screen, a resolution
//! it gets wrong) still cannot reach outside the rules. What it grants is a superset of the
//! first layer's grants, never less:
//!
//! * a rule's `r` is `READ_FILE | READ_DIR`; `x` is `READ_FILE` (the supervisor loads
//!   programs by reading them; it never calls the host's `execve`, so `EXECUTE` is handled
//!   and granted nowhere); `w` is every right that changes the file system (`WRITE_FILE`,
//!   `TRUNCATE`, `MAKE_*`, `REMOVE_*`, `REFER`);
//! * a path below a rule that grants less than that rule (a hidden `~/.ssh` below a
//!   readable `/`) is cut out of a rule that does not write: the rule is granted on each entry
//!   of the directories on the way there (as they are at start; an entry made later is not
//!   covered, its reads fail with `EACCES`), and those directories keep only `READ_DIR` (a
//!   listing shows the hidden name, which the first layer leaves out). A writable rule is
//!   granted whole (Landlock cannot take rights away below a grant, and cutting it would
//!   leave files the program makes in those directories unopenable): what it covers is
//!   guarded by the first layer alone, which is also the case of the supervisor's own files
//!   inside a writable rule;
//! * the supervisor's own needs: `/proc` (read and write: its descriptors' magic links, which
//!   Landlock checks at the file they lead to), `/dev/kvm` (a forked child makes its VM),
//!   `/dev/null`, and the removal of the private `/tmp` at the end;
//! * TCP `bind`/`connect` (Landlock ABI 4) when the network is mediated: the ports some
//!   rule allows (for any address: Landlock knows no addresses), all of them when a rule or
//!   the default allows any port;
//! * signals (ABI 6, `LANDLOCK_SCOPE_SIGNAL`) to processes outside the sandbox when the
//!   policy confines processes.
//!
//! `ioctl` on devices (ABI 5) is not handled: the first layer screens ioctls. Helper threads
//! started before the program runs (the checkpoint coordinator and request channel, the
//! inherited-socket guard) stay outside the domain on kernels without
//! `LANDLOCK_RESTRICT_SELF_TSYNC` (ABI 8), as `landlock_restrict_self` restricts only the
//! calling thread and the ones it creates later; they act only for the sandbox's owner.

use std::collections::BTreeMap;
use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath,
    PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

use crate::policy::fs::{Access as FsRights, FsAccess, FsPolicy, FsRule, parent};

/// Whether the layer is applied (`--landlock`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Where the host kernel has Landlock, as far as its ABI goes.
    #[default]
    Auto,
    /// Always: a kernel without Landlock, or one that cannot enforce all of it, is an error.
    Require,
    /// Never (the first layer alone).
    Off,
}

/// What a kind of directory entry is, for the cut-outs (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory (rules on it cover what is below).
    Dir,
    /// Anything else that is not a symlink.
    File,
    /// A symlink: not granted (what it leads to is checked where it is).
    Symlink,
}

/// A directory lister: the entries (name, kind) of an absolute directory path; empty if it
/// cannot be read.
pub type Lister = dyn Fn(&[u8]) -> Vec<(Vec<u8>, Kind)>;

/// One rule of the ruleset: `rights` on `path` and below.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The path (absolute).
    pub path: Vec<u8>,
    /// The rights (only the file rights apply where `path` is not a directory).
    pub rights: BitFlags<AccessFs>,
}

/// The file system rights this layer handles (ABI 3: Landlock's rights up to `TRUNCATE`).
pub fn handled_fs() -> BitFlags<AccessFs> {
    AccessFs::from_all(ABI::V3)
}

/// Rights that change the file system.
fn write_rights() -> BitFlags<AccessFs> {
    AccessFs::from_write(ABI::V3) & !AccessFs::Execute
}

/// The rights of a first-layer grant.
pub fn rights_of(a: FsRights) -> BitFlags<AccessFs> {
    let mut r = BitFlags::EMPTY;
    if a.has(FsRights::R) {
        r |= AccessFs::ReadFile | AccessFs::ReadDir;
    }
    if a.has(FsRights::X) {
        r |= AccessFs::ReadFile;
    }
    if a.has(FsRights::W) {
        r |= write_rights();
    }
    r
}

/// The rights of the rule deciding exactly `path`'s subtree (empty for hide and none).
fn rule_rights(r: &FsRule) -> BitFlags<AccessFs> {
    match r.access {
        FsAccess::Allow(a) => rights_of(a),
        FsAccess::Hide => BitFlags::EMPTY,
    }
}

/// Joins a directory and an entry name.
fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if p.last() != Some(&b'/') {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// Whether `p` is `dir` or below it (whole components).
fn within(p: &[u8], dir: &[u8]) -> bool {
    crate::policy::is_below(p, dir)
}

/// The grants that carry `fs` into Landlock. `list(dir)` gives a directory's entries (name
/// and kind; empty if it cannot be read), for the cut-outs.
pub fn plan(fs: &FsPolicy, list: &Lister) -> Vec<Grant> {
    // The rule deciding each rule path (the first given on a path wins).
    let deciding: Vec<&FsRule> = fs
        .rules()
        .iter()
        .filter(|r| fs.rule_for(&r.path).is_some_and(|d| std::ptr::eq(d, *r)))
        .collect();
    let mut out = Vec::new();
    for r in &deciding {
        let g = rule_rights(r);
        if g.is_empty() {
            continue;
        }
        // Rules right below this one (it is the nearest rule above them) that grant less.
        let holes: Vec<&[u8]> = deciding
            .iter()
            .filter(|l| {
                l.path != r.path
                    && within(&l.path, &r.path)
                    && parent(&l.path)
                        .and_then(|p| fs.rule_for(p))
                        .is_some_and(|d| std::ptr::eq(d, *r))
                    && !rule_rights(l).contains(g)
            })
            .map(|l| l.path.as_slice())
            .collect();
        if holes.is_empty() || g.intersects(write_rights()) {
            out.push(Grant { path: r.path.clone(), rights: g });
        } else {
            cut(&r.path, g, &holes, list, &mut out);
        }
    }
    out
}

/// Grants `g` below `dir` but for `holes` (paths below `dir`): `dir` itself keeps
/// `READ_DIR`, each entry not on the way to a hole gets `g`.
fn cut(dir: &[u8], g: BitFlags<AccessFs>, holes: &[&[u8]], list: &Lister, out: &mut Vec<Grant>) {
    if g.contains(AccessFs::ReadDir) {
        out.push(Grant { path: dir.to_vec(), rights: AccessFs::ReadDir.into() });
    }
    for (name, kind) in list(dir) {
        let p = join(dir, &name);
        if holes.contains(&p.as_slice()) || kind == Kind::Symlink {
            continue;
        }
        let below: Vec<&[u8]> = holes.iter().copied().filter(|h| within(h, &p)).collect();
        if below.is_empty() {
            out.push(Grant { path: p, rights: g });
        } else if kind == Kind::Dir {
            cut(&p, g, &below, list, out);
        }
    }
}

/// A directory's entries on the host (for [`plan`]).
pub fn host_list(dir: &[u8]) -> Vec<(Vec<u8>, Kind)> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(rd) = std::fs::read_dir(std::ffi::OsStr::from_bytes(dir)) else { return Vec::new() };
    let mut v: Vec<_> = rd
        .filter_map(Result::ok)
        .map(|e| {
            let kind = match e.file_type() {
                Ok(t) if t.is_symlink() => Kind::Symlink,
                Ok(t) if t.is_dir() => Kind::Dir,
                _ => Kind::File,
            };
            (e.file_name().as_bytes().to_vec(), kind)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The TCP ports the network rules may allow for `op` (`None`: any port, or too many to
/// list: the operation is not handled).
pub fn tcp_ports(
    net: &crate::policy::firewall::NetPolicy,
    op: crate::policy::endpoint::Op,
) -> Option<Vec<u16>> {
    use crate::policy::Action;
    use crate::policy::firewall::{Protocol, Target};
    /// More ports than this and the operation is left to the first layer.
    const MAX_PORTS: usize = 1024;
    if !matches!(net.default, Action::Deny(_)) {
        return None;
    }
    let mut ports = std::collections::BTreeSet::new();
    for r in &net.rules {
        if matches!(r.action, Action::Deny(_))
            || !r.ops.has(op)
            || !matches!(r.protocol, Protocol::Tcp | Protocol::Any)
        {
            continue;
        }
        if let Target::Ip { ports: p, .. } = &r.target {
            if usize::from(p.hi - p.lo) >= MAX_PORTS {
                return None;
            }
            ports.extend(p.lo..=p.hi);
            if ports.len() > MAX_PORTS {
                return None;
            }
        }
    }
    Some(ports.into_iter().collect())
}

/// What was applied, for the debug log and `--landlock require`.
#[derive(Debug)]
pub struct Applied {
    /// Landlock's verdict on the ruleset.
    pub status: RulesetStatus,
    /// How many path rules.
    pub rules: usize,
}

/// Why the layer could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The kernel refused a step.
    #[error(
        "Landlock (the kernel-enforced second layer of the policy): {0}; run with --landlock \
         off to rely on the first layer alone"
    )]
    Landlock(#[from] landlock::RulesetError),
    /// `--landlock require` on a kernel that cannot enforce all of it.
    #[error(
        "--landlock require: this kernel {0}; use a kernel with Landlock ABI 6 or later \
         (Linux 6.12), or --landlock auto"
    )]
    NotEnforced(&'static str),
}

/// What the supervisor needs beyond the rules.
#[derive(Clone, Debug, Default)]
pub struct Needs {
    /// The run's private `/tmp` directory (`sandbox-PID-N`), removed at the end.
    pub private_tmp: Option<std::path::PathBuf>,
    /// Signals to processes outside the sandbox are refused.
    pub confine_signals: bool,
}

/// The supervisor's own grants (see the module documentation).
fn supervisor_grants(needs: &Needs) -> Vec<Grant> {
    let b = |p: &Path| p.as_os_str().as_encoded_bytes().to_vec();
    let rw_file = AccessFs::ReadFile | AccessFs::WriteFile;
    let mut v = vec![
        Grant { path: b"/proc".to_vec(), rights: rw_file | AccessFs::ReadDir },
        Grant { path: b"/dev/kvm".to_vec(), rights: rw_file },
        Grant { path: b"/dev/null".to_vec(), rights: rw_file },
    ];
    if let Some(d) = &needs.private_tmp {
        v.push(Grant {
            path: b(d),
            rights: AccessFs::ReadDir | AccessFs::RemoveDir | AccessFs::RemoveFile,
        });
        if let Some(base) = d.parent() {
            v.push(Grant { path: b(base), rights: AccessFs::RemoveDir.into() });
        }
    }
    v
}

/// Applies the layer for `fs` (and `net`, if the network is mediated) to the calling thread
/// and the threads and processes it makes from now on. `Ok(None)`: nothing to apply (no
/// filesystem rules, `--landlock off`, or no Landlock in `auto` mode).
pub fn apply(
    mode: Mode,
    fs: Option<&FsPolicy>,
    net: Option<&crate::policy::firewall::NetPolicy>,
    needs: &Needs,
) -> Result<Option<Applied>, LayerError> {
    use crate::policy::endpoint::Op;
    let Some(fs) = fs else { return Ok(None) };
    if mode == Mode::Off {
        return Ok(None);
    }
    let level =
        if mode == Mode::Require { CompatLevel::HardRequirement } else { CompatLevel::BestEffort };
    let mut grants = plan(fs, &host_list);
    grants.extend(supervisor_grants(needs));
    // One rule per path: the union of its grants.
    let mut merged: BTreeMap<Vec<u8>, BitFlags<AccessFs>> = BTreeMap::new();
    for g in grants {
        *merged.entry(g.path).or_default() |= g.rights;
    }
    let ports = |op| net.and_then(|n| tcp_ports(n, op));
    let (bind, connect) = (ports(Op::Bind), ports(Op::Connect));
    let mut ruleset = Ruleset::default().set_compatibility(level).handle_access(handled_fs())?;
    let mut handled_net = BitFlags::<AccessNet>::EMPTY;
    if bind.is_some() {
        handled_net |= AccessNet::BindTcp;
    }
    if connect.is_some() {
        handled_net |= AccessNet::ConnectTcp;
    }
    if !handled_net.is_empty() {
        ruleset = ruleset.handle_access(handled_net)?;
    }
    if needs.confine_signals {
        ruleset = ruleset.scope(Scope::Signal)?;
    }
    // The rules themselves best effort (the ruleset's handled rights decide what is enforced).
    let mut created = ruleset.create()?.set_compatibility(CompatLevel::BestEffort);
    let mut rules = 0;
    for (path, rights) in &merged {
        use std::os::fd::{AsFd, AsRawFd};
        use std::os::unix::ffi::OsStrExt;
        // A path that does not exist (a rule on something not made yet) grants nothing.
        let Ok(fd) = PathFd::new(std::ffi::OsStr::from_bytes(path)) else { continue };
        // Decided on what was opened: a file takes only the file rights.
        let is_dir = crate::sys::fstat(fd.as_fd().as_raw_fd())
            .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
        let rights = if is_dir { *rights } else { *rights & AccessFs::from_file(ABI::V3) };
        if rights.is_empty() {
            continue;
        }
        created = created.add_rule(PathBeneath::new(fd, rights))?;
        rules += 1;
    }
    for (list, access) in [(bind, AccessNet::BindTcp), (connect, AccessNet::ConnectTcp)] {
        for port in list.into_iter().flatten() {
            created = created.add_rule(NetPort::new(port, access))?;
        }
    }
    let status = created.restrict_self()?;
    if mode == Mode::Require {
        match status.ruleset {
            RulesetStatus::FullyEnforced => {}
            RulesetStatus::PartiallyEnforced => {
                return Err(LayerError::NotEnforced("enforces only part of the Landlock rules"));
            }
            RulesetStatus::NotEnforced => return Err(LayerError::NotEnforced("has no Landlock")),
        }
    }
    if status.ruleset == RulesetStatus::NotEnforced {
        return Ok(None);
    }
    Ok(Some(Applied { status: status.ruleset, rules }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fs::{Access as A, FsAccess, FsRule};

    fn rule(path: &str, access: FsAccess) -> FsRule {
        FsRule {
            label: "test".into(),
            given: path.into(),
            path: path.as_bytes().to_vec(),
            access,
            errno: None,
        }
    }

    /// A fake tree: `/` holds `etc usr home tmp bin@`, `/home` holds `u`, `/home/u` holds
    /// `.ssh proj notes.txt`.
    fn list(dir: &[u8]) -> Vec<(Vec<u8>, Kind)> {
        let e = |n: &str, k| (n.as_bytes().to_vec(), k);
        match dir {
            b"/" => vec![
                e("bin", Kind::Symlink),
                e("etc", Kind::Dir),
                e("home", Kind::Dir),
                e("tmp", Kind::Dir),
                e("usr", Kind::Dir),
            ],
            b"/home" => vec![e("u", Kind::Dir)],
            b"/home/u" => {
                vec![e(".ssh", Kind::Dir), e("notes.txt", Kind::File), e("proj", Kind::Dir)]
            }
            _ => vec![],
        }
    }

    fn grants(rules: &[FsRule]) -> Vec<(String, BitFlags<AccessFs>)> {
        let fs = FsPolicy::new(rules);
        plan(&fs, &list)
            .into_iter()
            .map(|g| (String::from_utf8(g.path).unwrap(), g.rights))
            .collect()
    }

    #[test]
    fn read_only_root_is_cut_around_hidden_paths() {
        let rx = FsAccess::Allow(A::R.with(A::X));
        let g = grants(&[
            rule("/", rx),
            rule("/tmp", FsAccess::Hide),
            rule("/home/u/.ssh", FsAccess::Hide),
        ]);
        let read = AccessFs::ReadFile | AccessFs::ReadDir;
        let paths: Vec<&str> = g.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["/", "/etc", "/home", "/home/u", "/home/u/notes.txt", "/home/u/proj", "/usr"]
        );
        let of = |p: &str| g.iter().find(|(q, _)| q == p).unwrap().1;
        assert_eq!(of("/"), AccessFs::ReadDir);
        assert_eq!(of("/home/u"), AccessFs::ReadDir);
        assert_eq!(of("/etc"), read);
        assert_eq!(of("/home/u/proj"), read);
        // Nothing of /tmp, /home/u/.ssh or the symlink.
        assert!(!paths.iter().any(|p| p.starts_with("/tmp") || p.contains(".ssh") || *p == "/bin"));
    }

    #[test]
    fn a_writable_rule_is_granted_whole_and_wider_rules_below_are_not_holes() {
        let rwx = FsAccess::Allow(A::R.with(A::W).with(A::X));
        let r = FsAccess::Allow(A::R);
        let g = grants(&[
            rule("/home/u", rwx),
            rule("/home/u/.ssh", FsAccess::Hide),
            rule("/usr", r),
            rule("/usr/local", rwx),
        ]);
        let of = |p: &str| g.iter().find(|(q, _)| q == p).map(|x| x.1);
        assert_eq!(of("/home/u"), Some(rights_of(A::R.with(A::W).with(A::X))));
        assert!(of("/home/u").unwrap().contains(AccessFs::RemoveFile | AccessFs::Refer));
        assert!(!of("/home/u").unwrap().contains(AccessFs::Execute));
        // /usr/local grants more than /usr: /usr is granted whole, /usr/local on top.
        assert_eq!(of("/usr"), Some(AccessFs::ReadFile | AccessFs::ReadDir));
        assert!(of("/usr/local").is_some());
        assert_eq!(of("/home/u/.ssh"), None);
    }

    #[test]
    fn hidden_and_none_rules_grant_nothing_and_the_first_rule_on_a_path_decides() {
        let g = grants(&[
            rule("/etc", FsAccess::Hide),
            rule("/etc", FsAccess::Allow(A::R)),
            rule("/usr", FsAccess::Allow(A::NONE)),
        ]);
        assert!(g.is_empty(), "{g:?}");
    }

    #[test]
    fn exec_only_is_read_for_the_loader() {
        assert_eq!(rights_of(A::X), AccessFs::ReadFile);
        assert!(!rights_of(A::R.with(A::W).with(A::X)).contains(AccessFs::Execute));
        assert!(handled_fs().contains(AccessFs::Execute | AccessFs::Truncate | AccessFs::Refer));
    }

    #[test]
    fn tcp_ports_follow_the_allowing_rules() {
        use crate::policy::endpoint::Op;
        use crate::policy::firewall::NetPolicy;
        let deny = NetPolicy::deny_all("test");
        assert_eq!(tcp_ports(&deny, Op::Connect), Some(vec![]));
        assert_eq!(tcp_ports(&deny, Op::Bind), Some(vec![]));
    }
}
