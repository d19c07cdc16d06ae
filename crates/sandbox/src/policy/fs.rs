//! Filesystem rules: which paths the program may read, write, execute, or not see at all.
//!
//! A rule names a path and, with it, everything below it: **readable** (`r`: open for reading,
//! list a directory, read a link, get attributes), **writable** (`w`: open for writing,
//! create, rename, delete, link, change attributes, truncate, bind a unix socket), **executable**
//! (`x`: `execve`, and loading as a program's interpreter), or **hidden** (every call answers
//! as if the path did not exist: `ENOENT`). The rule with the longest path that is a prefix of
//! the file's (by whole components) decides; once a policy has any filesystem rule, a path no
//! rule covers is denied (`EACCES`). Two allowances keep ordinary path handling working: the
//! directories above an allowed path may be looked at (`stat`, `access(F_OK)`, `chdir`,
//! `readlink`: what `realpath(3)` and a shell's `cd` do), though not listed; and a rule's
//! `errno` replaces the default errors (`EACCES`; `EROFS` for a write below a path that is
//! readable but not writable, as a read-only mount answers; `ENOENT` for a hidden one).
//!
//! The paths decided on are those the host kernel resolved (see `syscall::paths`): the rules'
//! own paths are made canonical when the policy is built (symlinks in them followed, `~`
//! expanded, relative to the working directory), so `/lib` on a merged-`/usr` host is the rule
//! on `/usr/lib` it really is.
//!
//! Whatever the rules say, the supervisor's own files (its executable, the libraries it runs
//! from, its trace and audit files) are never writable by the program ([`FsPolicy::protect`]).

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use crate::errno::Errno;

/// Access bits a rule grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Access(u8);

impl Access {
    /// Nothing.
    pub const NONE: Access = Access(0);
    /// Read.
    pub const R: Access = Access(1);
    /// Write.
    pub const W: Access = Access(2);
    /// Execute.
    pub const X: Access = Access(4);

    /// Both.
    pub const fn with(self, o: Access) -> Access {
        Access(self.0 | o.0)
    }

    /// Whether every bit of `o` is granted.
    pub const fn has(self, o: Access) -> bool {
        self.0 & o.0 == o.0
    }

    /// `"rwx"`-style letters (`-` for none).
    pub fn letters(self) -> String {
        let mut s = String::new();
        for (b, c) in [(Access::R, 'r'), (Access::W, 'w'), (Access::X, 'x')] {
            if self.has(b) {
                s.push(c);
            }
        }
        if s.is_empty() { "-".into() } else { s }
    }

    /// Parses letters from `r`, `w`, `x` (each at most once, at least one).
    pub fn parse(s: &str) -> Option<Access> {
        let mut a = Access::NONE;
        if s.is_empty() {
            return None;
        }
        for c in s.chars() {
            let b = match c {
                'r' => Access::R,
                'w' => Access::W,
                'x' => Access::X,
                _ => return None,
            };
            if a.has(b) {
                return None;
            }
            a = a.with(b);
        }
        Some(a)
    }
}

/// What a rule does to the paths it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsAccess {
    /// Grants these accesses (and denies the others).
    Allow(Access),
    /// As if absent: `ENOENT` for everything.
    Hide,
}

/// One filesystem rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsRule {
    /// Where it comes from (`--ro /usr`, `policy.toml:12`, `--policy workspace`).
    pub label: String,
    /// The path as given (for messages and `policy show`).
    pub given: String,
    /// The canonical absolute path it covers (and everything below it).
    pub path: Vec<u8>,
    /// What it does.
    pub access: FsAccess,
    /// The errno of its denials, instead of the default ones.
    pub errno: Option<Errno>,
}

impl FsRule {
    /// A rule on `given` (made canonical against `cwd` and `home`); `None` when `given` is
    /// empty.
    pub fn new(
        label: impl Into<String>,
        given: &str,
        access: FsAccess,
        errno: Option<Errno>,
        cwd: &Path,
        home: Option<&Path>,
    ) -> Result<FsRule, String> {
        let path = canonical(given, cwd, home)?;
        Ok(FsRule {
            label: label.into(),
            given: given.into(),
            path: path.into_os_string().into_encoded_bytes(),
            access,
            errno,
        })
    }
}

/// What a call needs of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Look at it: `stat`, `access(F_OK)`, `readlink`, `chdir`, extended attributes read.
    Stat,
    /// Read it (open for reading, list it, watch it).
    Read,
    /// Change it (open for writing, create, remove, rename, link, attributes, truncate).
    Write,
    /// Read and write it (`O_RDWR`).
    ReadWrite,
    /// Execute it.
    Exec,
}

impl Need {
    /// The audit line's `op`.
    pub fn name(self) -> &'static str {
        match self {
            Need::Stat => "stat",
            Need::Read => "read",
            Need::Write => "write",
            Need::ReadWrite => "read-write",
            Need::Exec => "exec",
        }
    }

    fn bits(self) -> Access {
        match self {
            Need::Stat => Access::NONE,
            Need::Read => Access::R,
            Need::Write => Access::W,
            Need::ReadWrite => Access::R.with(Access::W),
            Need::Exec => Access::X,
        }
    }
}

/// Why a path was refused: the errno and the label of the deciding rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The errno the call returns.
    pub errno: Errno,
    /// The deciding rule's label (or `default`, `supervisor file`).
    pub rule: String,
}

/// The filesystem part of a policy, compiled for lookups by path.
#[derive(Clone, Debug, Default)]
pub struct FsPolicy {
    rules: Vec<FsRule>,
    /// Rule path → index of the rule (the first given wins).
    by_path: HashMap<Vec<u8>, usize>,
    /// Every proper ancestor of a path some rule makes accessible.
    ancestors: HashSet<Vec<u8>>,
    /// Paths never writable (the supervisor's own files).
    protected: HashSet<Vec<u8>>,
    /// Paths below which a rule or a protected file lies: renaming one of them elsewhere
    /// would move that rule's files under another rule.
    above_rules: HashSet<Vec<u8>>,
    /// Directory → the names in it that hidden rules name (left out of its listings).
    hidden_in: HashMap<Vec<u8>, Vec<Vec<u8>>>,
}

/// The parent of an absolute path (`/a/b` → `/a`, `/a` → `/`); `None` for `/`.
pub fn parent(p: &[u8]) -> Option<&[u8]> {
    if p == b"/" || p.is_empty() {
        return None;
    }
    let i = p.iter().rposition(|&b| b == b'/')?;
    Some(if i == 0 { b"/" } else { &p[..i] })
}

impl FsPolicy {
    /// The rules compiled; the first rule on a path decides it.
    pub fn new(rules: &[FsRule]) -> FsPolicy {
        let mut p = FsPolicy { rules: rules.to_vec(), ..FsPolicy::default() };
        for (i, r) in rules.iter().enumerate() {
            p.by_path.entry(r.path.clone()).or_insert(i);
        }
        for r in &p.rules {
            if r.access == FsAccess::Hide
                && let Some(d) = parent(&r.path)
            {
                let name = r.path[d.len()..].strip_prefix(b"/").unwrap_or(&r.path[d.len()..]);
                p.hidden_in.entry(d.to_vec()).or_default().push(name.to_vec());
            }
            let mut a = parent(&r.path);
            while let Some(d) = a {
                if !matches!(r.access, FsAccess::Hide) && r.access != FsAccess::Allow(Access::NONE)
                {
                    p.ancestors.insert(d.to_vec());
                }
                p.above_rules.insert(d.to_vec());
                a = parent(d);
            }
        }
        p
    }

    /// The names in directory `dir` that are hidden (a listing leaves them out).
    pub fn hidden_names_in(&self, dir: &[u8]) -> Option<&[Vec<u8>]> {
        self.hidden_in.get(dir).map(Vec::as_slice)
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[FsRule] {
        &self.rules
    }

    /// Makes `path` (canonical, absolute) never writable, whatever the rules say.
    pub fn protect(&mut self, path: &[u8]) {
        self.protected.insert(path.to_vec());
        let mut a = parent(path);
        while let Some(d) = a {
            self.above_rules.insert(d.to_vec());
            a = parent(d);
        }
    }

    /// The rule deciding `path`: the one on the longest prefix of it.
    pub fn rule_for(&self, path: &[u8]) -> Option<&FsRule> {
        let mut p = Some(path);
        while let Some(q) = p {
            if let Some(&i) = self.by_path.get(q) {
                return Some(&self.rules[i]);
            }
            p = parent(q);
        }
        None
    }

    /// What `path` (absolute, as the kernel resolved it) is granted: `None` when hidden.
    pub fn access_of(&self, path: &[u8]) -> Option<Access> {
        let mut a = match self.rule_for(path) {
            Some(FsRule { access: FsAccess::Hide, .. }) => return None,
            Some(FsRule { access: FsAccess::Allow(a), .. }) => *a,
            None => Access::NONE,
        };
        if self.protected.contains(path) {
            a = Access(a.0 & !Access::W.0);
        }
        Some(a)
    }

    /// Decides `need` on `path`, a path as the host kernel resolved it. Paths that are not
    /// absolute name no file of a file system (`pipe:[N]`, `socket:[N]`, `anon_inode:...`: the
    /// program reached them through a descriptor it holds) and are allowed.
    pub fn decide(&self, path: &[u8], need: Need) -> Result<(), Refusal> {
        if path.first() != Some(&b'/') {
            return Ok(());
        }
        if need == Need::Stat && self.ancestors.contains(path) {
            return Ok(());
        }
        let rule = self.rule_for(path);
        let errno_of = |default: Errno| rule.and_then(|r| r.errno).unwrap_or(default);
        let label = || rule.map_or_else(|| "default".to_string(), |r| r.label.clone());
        let granted = match rule {
            Some(FsRule { access: FsAccess::Hide, .. }) => {
                return Err(Refusal { errno: errno_of(Errno::ENOENT), rule: label() });
            }
            Some(FsRule { access: FsAccess::Allow(a), .. }) => *a,
            None => Access::NONE,
        };
        if need.bits().has(Access::W) && self.protected.contains(path) {
            return Err(Refusal { errno: Errno::EACCES, rule: "supervisor file".into() });
        }
        let ok = match need {
            Need::Stat => granted != Access::NONE,
            n => granted.has(n.bits()),
        };
        if ok {
            return Ok(());
        }
        let default = if need.bits().has(Access::W) && granted.has(Access::R) {
            Errno(libc::EROFS)
        } else {
            Errno::EACCES
        };
        Err(Refusal { errno: errno_of(default), rule: label() })
    }

    /// Whether moving or linking `src` to `dst` could give the file more access than it has:
    /// `Err(EXDEV)` (as Landlock answers; `mv` then copies) when `dst` would grant an access
    /// `src` does not, or when a rule or a protected file lies below either (a renamed
    /// directory would carry that rule's files under another rule).
    pub fn may_move(&self, src: &[u8], dst: &[u8]) -> Result<(), Refusal> {
        let refuse = |why: &str| Err(Refusal { errno: Errno(libc::EXDEV), rule: why.into() });
        let rule_below = |p: &[u8]| self.above_rules.contains(p) || self.protected.contains(p);
        if rule_below(src) || rule_below(dst) {
            return refuse("a rule below the renamed path");
        }
        match (self.access_of(src), self.access_of(dst)) {
            (Some(s), Some(d)) if s.has(d) => Ok(()),
            _ => refuse("a move that would widen access"),
        }
    }
}

/// Makes `given` canonical: `~` and `~/...` from `home`, relative to `cwd`, `.` and `..`
/// removed, and symlinks in the longest existing prefix followed (the rest appended as
/// given). Errors: an empty path, `~` without a home directory.
pub fn canonical(given: &str, cwd: &Path, home: Option<&Path>) -> Result<PathBuf, String> {
    if given.is_empty() {
        return Err("an empty path".into());
    }
    let expanded: PathBuf = if given == "~" || given.starts_with("~/") {
        let home = home.ok_or("`~` needs HOME to be set")?;
        home.join(given.trim_start_matches('~').trim_start_matches('/'))
    } else {
        PathBuf::from(given)
    };
    let abs = if expanded.is_absolute() { expanded } else { cwd.join(expanded) };
    // Lexically normal first, so `a/../b` means what it says even where `a` does not exist.
    let mut norm = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                norm.pop();
            }
            Component::Normal(n) => norm.push(n),
            _ => {}
        }
    }
    // Then the longest existing prefix through the host's symlinks.
    let mut rest = Vec::new();
    let mut head = norm.clone();
    loop {
        if let Ok(c) = std::fs::canonicalize(&head) {
            let mut out = c;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return Ok(out);
        }
        match (head.file_name().map(|n| n.to_owned()), head.parent()) {
            (Some(n), Some(p)) => {
                rest.push(n);
                head = p.to_path_buf();
            }
            _ => return Ok(norm),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(p: &str, a: FsAccess) -> FsRule {
        FsRule {
            label: p.into(),
            given: p.into(),
            path: p.as_bytes().to_vec(),
            access: a,
            errno: None,
        }
    }

    fn policy() -> FsPolicy {
        let rx = FsAccess::Allow(Access::R.with(Access::X));
        let rw = FsAccess::Allow(Access::R.with(Access::W));
        let mut p = FsPolicy::new(&[
            rule("/", rx),
            rule("/home/u/proj", rw),
            rule("/home/u/.ssh", FsAccess::Hide),
            rule("/srv", FsAccess::Allow(Access::NONE)),
        ]);
        p.protect(b"/usr/lib/libc.so.6");
        p
    }

    #[test]
    fn longest_prefix_by_component() {
        let p = policy();
        assert_eq!(p.decide(b"/home/u/proj/a/b", Need::Write), Ok(()));
        assert_eq!(p.decide(b"/home/u/projx", Need::Write).unwrap_err().errno.0, libc::EROFS);
        assert_eq!(p.decide(b"/home/u/.ssh/id", Need::Stat).unwrap_err().errno, Errno::ENOENT);
        assert_eq!(p.decide(b"/home/u/.ssh", Need::Read).unwrap_err().errno, Errno::ENOENT);
        assert_eq!(p.decide(b"/home/u/.sshx", Need::Read), Ok(()));
        assert_eq!(p.decide(b"/etc/passwd", Need::Exec), Ok(()));
        assert_eq!(p.decide(b"/home/u/proj/x", Need::Exec).unwrap_err().errno, Errno::EACCES);
        assert_eq!(p.decide(b"/srv/x", Need::Stat).unwrap_err().errno, Errno::EACCES);
        assert_eq!(p.decide(b"pipe:[12]", Need::Write), Ok(()));
    }

    #[test]
    fn unlisted_paths_are_denied_but_ancestors_can_be_looked_at() {
        let p = FsPolicy::new(&[rule("/w/p", FsAccess::Allow(Access::R))]);
        assert_eq!(p.decide(b"/w", Need::Stat), Ok(()));
        assert_eq!(p.decide(b"/", Need::Stat), Ok(()));
        assert_eq!(p.decide(b"/w", Need::Read).unwrap_err().rule, "default");
        assert_eq!(p.decide(b"/x", Need::Stat).unwrap_err().errno, Errno::EACCES);
        assert_eq!(p.decide(b"/w/p/q", Need::Read), Ok(()));
    }

    #[test]
    fn supervisor_files_are_never_writable() {
        let p = FsPolicy::new(&[rule("/", FsAccess::Allow(Access::R.with(Access::W)))]);
        let mut p = p;
        p.protect(b"/usr/lib/libc.so.6");
        assert_eq!(p.decide(b"/usr/lib/libc.so.6", Need::Read), Ok(()));
        let e = p.decide(b"/usr/lib/libc.so.6", Need::Write).unwrap_err();
        assert_eq!(e.rule, "supervisor file");
        assert_eq!(p.may_move(b"/usr/lib", b"/tmp/lib").unwrap_err().errno.0, libc::EXDEV);
        assert_eq!(p.may_move(b"/tmp/a", b"/usr/lib/libc.so.6").unwrap_err().errno.0, libc::EXDEV);
    }

    #[test]
    fn moves_may_not_widen_access() {
        let p = policy();
        assert_eq!(p.may_move(b"/home/u/proj/a", b"/home/u/proj/b"), Ok(()));
        // Read-execute to read-write: the file would become writable.
        assert!(p.may_move(b"/etc/passwd", b"/home/u/proj/passwd").is_err());
        // A directory with a hidden rule below it.
        assert!(p.may_move(b"/home/u", b"/home/u/proj/u").is_err());
        assert!(p.may_move(b"/home/u/.ssh", b"/home/u/proj/s").is_err());
    }

    #[test]
    fn canonical_paths() {
        let cwd = Path::new("/tmp");
        assert_eq!(
            canonical("/nonexistent/a/../b", cwd, None).unwrap(),
            Path::new("/nonexistent/b")
        );
        assert_eq!(
            canonical("x/y", Path::new("/nonexistent"), None).unwrap(),
            Path::new("/nonexistent/x/y")
        );
        assert_eq!(
            canonical("~/.ssh", cwd, Some(Path::new("/nonexistent-home"))).unwrap(),
            Path::new("/nonexistent-home/.ssh")
        );
        assert!(canonical("~", cwd, None).is_err());
        assert!(canonical("", cwd, None).is_err());
        assert_eq!(Access::parse("rx"), Some(Access::R.with(Access::X)));
        assert_eq!(Access::parse("rr"), None);
        assert_eq!(Access::R.with(Access::W).letters(), "rw");
    }
}
