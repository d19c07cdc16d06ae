//! Every call that names a file by path, under a policy with filesystem rules
//! ([`crate::policy::fs`]): the rules are applied to what the host kernel *resolves*, and the
//! call is carried out on exactly that, so no string trick and no race changes the outcome.
//!
//! For each path argument the supervisor first resolves it itself, in the host kernel, to a
//! descriptor of its own (`O_PATH`, in the runtime's window), then asks the kernel for the path
//! that descriptor has (`/proc/self/fd/N`, what `d_path` gives: `..`, symlinks, magic links
//! such as `/proc/self/root` or `/proc/self/fd/N`, bind mounts and descriptor-relative forms
//! are all already resolved in it), decides on that path, and hands the kernel, instead of the
//! program's string, a path through the very descriptor it decided on:
//!
//! * **the object itself** (`stat`, `access`, `chdir`, `utimes`, `statfs`, `getxattr`,
//!   `inotify_add_watch`, `chmod`, `truncate`, ...: calls that follow a final symlink):
//!   `openat(O_PATH)` of the whole path, and the call goes to `/proc/self/fd/N`, which reaches
//!   that inode without resolving anything again;
//! * **an entry of a directory** (`lstat`, `unlink`, `rmdir`, `mkdir`, `mknod`, `rename`, `link`,
//!   `symlink`, `lgetxattr`, ...: calls that do not follow, or create): `openat(O_PATH |
//!   O_DIRECTORY)` of the parent, the path decided on is the parent's path and the last
//!   component, and the call goes to `/proc/self/fd/N/NAME`: the parent is pinned, and the
//!   rules are by path, so whatever file another thread puts at `NAME` meanwhile is governed by
//!   the same rule.
//!
//! Calls on descriptors that change a file (`fchmod`, `fchown`, `fsetxattr`, `futimens`, ...)
//! are decided on the descriptor's path too: a file opened for reading below a read-only path
//! does not get its mode changed through its descriptor. A rename or link that would give a
//! file more access than it has, or move a directory that has a rule below it, is refused with
//! `EXDEV` (as Landlock answers; `mv` then copies, which the rules decide file by file).
//!
//! Under the null policy (no filesystem rules) none of this runs: the table forwards the
//! program's copied strings as before.

use std::ffi::{CStr, CString};

use super::{Ctx, check_fd};
use crate::errno::Errno;
use crate::fdwin::RuntimeFd;
use crate::policy::Caller;
use crate::policy::fs::Need;
use crate::process::Process;
use crate::sys::{self, SysResult};

/// Calls the host kernel with already-validated arguments.
#[allow(unsafe_code)]
fn host(nr: i64, a: [u64; 6]) -> SysResult {
    // SAFETY: every caller passes supervisor-owned strings and structures that outlive the
    // call, and descriptors that are the runtime's own probes or checked program descriptors.
    unsafe { sys::syscall6(nr, a) }
}

const O_PATH: u64 = libc::O_PATH as u64;
const O_CLOEXEC: u64 = libc::O_CLOEXEC as u64;
const O_DIRECTORY: u64 = libc::O_DIRECTORY as u64;

/// Whether the process's policy mediates the file system.
pub fn mediated(proc: &Process) -> bool {
    proc.policy.fs().is_some()
}

fn caller(ctx: &Ctx<'_>) -> Caller {
    Caller { pid: crate::sys::pid(), tid: ctx.thread.tid }
}

/// The path the host kernel has for descriptor `fd` (`d_path`, as `/proc/self/fd/N` reads).
/// A file deleted meanwhile reads `PATH (deleted)`: the suffix goes when the file has no link
/// left (a file really named so keeps it).
pub fn path_of(fd: i32) -> Result<Vec<u8>, Errno> {
    let link = CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL");
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 16];
    let n = host(
        libc::SYS_readlinkat,
        [
            libc::AT_FDCWD as u64,
            link.as_ptr() as u64,
            buf.as_mut_ptr() as u64,
            buf.len() as u64,
            0,
            0,
        ],
    )?;
    buf.truncate(n as usize);
    const DELETED: &[u8] = b" (deleted)";
    if buf.ends_with(DELETED) && sys::fstat(fd).is_ok_and(|st| st.st_nlink == 0) {
        buf.truncate(buf.len() - DELETED.len());
    }
    Ok(buf)
}

/// Decides `need` on `path` for the calling thread's call `syscall` (audited).
pub fn decide(ctx: &Ctx<'_>, syscall: &str, path: &[u8], need: Need) -> Result<(), Errno> {
    if ctx.proc().policy.confines_processes()
        && let Some(pid) = proc_pid(path)
        && !crate::family::contains(pid)
    {
        // Another process's /proc entries, under confinement: absent.
        return Err(Errno::ENOENT);
    }
    if ctx.proc().policy.confines_processes() && !super::tty::pty_path_allowed(path) {
        // Another session's terminal, under confinement: as another user's.
        let detail = crate::policy::audit::Event::fs(syscall, need.name(), path);
        let rule = "another session's terminal";
        return Err(ctx.proc().policy.refuse_with(caller(ctx), rule, detail, Errno::EACCES));
    }
    ctx.proc().policy.decide_path(caller(ctx), syscall, path, need)
}

/// The pid of a `/proc/PID[/...]` path.
pub fn proc_pid(path: &[u8]) -> Option<i32> {
    let rest = path.strip_prefix(b"/proc/")?;
    let n = rest.split(|&b| b == b'/').next()?;
    std::str::from_utf8(n).ok()?.parse().ok()
}

/// Decides `need` on the file of the program's descriptor `fd`; nothing without rules.
pub fn decide_fd(ctx: &Ctx<'_>, syscall: &str, fd: u64, need: Need) -> Result<(), Errno> {
    if !mediated(ctx.proc()) {
        return Ok(());
    }
    check_fd(ctx.proc(), fd)?;
    // A descriptor that is not open has no /proc/self/fd link: EBADF, as the call itself would
    // answer (not readlink's ENOENT).
    let path = path_of(fd as i32).map_err(|e| if e == Errno::ENOENT { Errno::EBADF } else { e })?;
    decide(ctx, syscall, &path, need)
}

/// The magic link of descriptor `fd`.
pub fn magic(fd: i32) -> CString {
    CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL in a number")
}

/// A path the supervisor resolved and decided on: `kernel` is what the host kernel gets
/// instead of the program's string (absolute, through `_probe`, held until the call is made).
#[derive(Debug)]
pub struct Resolved {
    /// The path to hand the kernel.
    pub kernel: CString,
    /// The path decided on.
    pub path: Vec<u8>,
    /// The pinned object or parent directory.
    pub probe: RuntimeFd,
    /// For an entry: its name in `probe`, with the trailing slashes the program gave.
    pub name: Option<CString>,
}

/// How a probe is opened: `(dirfd, path, flags)`, `O_PATH | O_CLOEXEC` included in `flags`
/// (`openat`, or `openat2` with the program's `resolve` constraints).
pub type Opener<'a> = dyn Fn(u64, &CStr, u64) -> SysResult + 'a;

/// `openat(dirfd, path, flags)`.
pub fn plain_open(dirfd: u64, p: &CStr, flags: u64) -> SysResult {
    host(libc::SYS_openat, [dirfd, p.as_ptr() as u64, flags, 0, 0, 0])
}

/// Opens `p` relative to `dirfd` with `flags | O_PATH | O_CLOEXEC` through `open`, as a
/// descriptor of the runtime's, screened: one of the runtime's own objects is `EACCES`.
pub fn pinned(
    ctx: &Ctx<'_>,
    dirfd: u64,
    p: &CStr,
    flags: u64,
    open: &Opener<'_>,
) -> Result<RuntimeFd, Errno> {
    if dirfd as i32 != libc::AT_FDCWD {
        check_fd(ctx.proc(), dirfd)?;
    }
    pinned_at(dirfd, p, flags, open, ctx.proc().policy.confines_processes())
}

/// [`pinned`] relative to a descriptor of the runtime's own (a probe) or `AT_FDCWD`.
/// `confine`: another session's pty is refused too (`EACCES`, [`super::tty::foreign_pty`]).
fn pinned_at(
    dirfd: u64,
    p: &CStr,
    flags: u64,
    open: &Opener<'_>,
    confine: bool,
) -> Result<RuntimeFd, Errno> {
    let creating = crate::fdwin::window().creating();
    let fd = open(dirfd, p, flags | O_PATH | O_CLOEXEC)?;
    let probe = crate::fdwin::window().adopt(fd as i32).map_err(|e| Errno::from_io(&e))?;
    drop(creating);
    let st = sys::fstat(probe.raw())?;
    if crate::fdwin::runtime_object(Some(probe.raw()), &st).is_some()
        || (confine && super::tty::foreign_pty(&st))
    {
        return Err(Errno::EACCES);
    }
    Ok(probe)
}

/// The program's path `p` (relative to `dirfd`) resolved to the object it names, following a
/// final symlink unless `nofollow`, and `need` decided on its path.
pub fn object(
    ctx: &Ctx<'_>,
    syscall: &str,
    dirfd: u64,
    p: &CStr,
    nofollow: bool,
    need: Need,
) -> Result<Resolved, Errno> {
    if p.is_empty() {
        return Err(Errno::ENOENT);
    }
    // `NAME/` is followed even by a call that does not follow a final symlink (fs/namei.c,
    // `lookup_last`: trailing slashes set LOOKUP_FOLLOW; the calls that make or remove NAME
    // itself, which never follow it, resolve through `entry`): such a path is resolved to the
    // object it leads to and carried out on it (`/proc/self/fd/N/`, the magic link followed),
    // or a thread swapping the symlink between the decision and the call would have the kernel
    // follow it elsewhere.
    let trailing = p.to_bytes().len() > 1 && p.to_bytes().ends_with(b"/");
    if nofollow && !trailing {
        return entry(ctx, syscall, dirfd, p, need);
    }
    let p = redirect(ctx.proc(), p);
    let probe =
        pinned(ctx, dirfd, &p, 0, &plain_open).map_err(|e| hidden_error(ctx, dirfd, &p, e))?;
    let path = path_of(probe.raw())?;
    decide(ctx, syscall, &path, need)?;
    let kernel = if nofollow {
        CString::new(format!("/proc/self/fd/{}/", probe.raw())).expect("no NUL in a number")
    } else {
        magic(probe.raw())
    };
    Ok(Resolved { kernel, path, probe, name: None })
}

/// The error of a path that could not be resolved, as the program sees it: `ENOENT` for one
/// that names something below a hidden path (else `ENOTDIR` below a hidden file, `ELOOP` or
/// `EACCES` would tell that it exists), judged on the path as written (made absolute against
/// `dirfd`, without `..`); the kernel's error otherwise.
pub fn hidden_error(ctx: &Ctx<'_>, dirfd: u64, p: &CStr, e: Errno) -> Errno {
    let Some(fs) = ctx.proc().policy.fs() else { return e };
    if e == Errno::ENOENT {
        return e;
    }
    let p = p.to_bytes();
    let full = if p.first() == Some(&b'/') {
        p.to_vec()
    } else {
        let base = if dirfd as i32 == libc::AT_FDCWD {
            std::env::current_dir().ok().map(|d| d.into_os_string().into_encoded_bytes())
        } else {
            path_of(dirfd as i32).ok()
        };
        match base {
            Some(b) => join(&b, p),
            None => return e,
        }
    };
    let Some(l) = crate::policy::lexical(&full) else { return e };
    match fs.rule_for(&l) {
        Some(r) if r.access == crate::policy::fs::FsAccess::Hide => Errno::ENOENT,
        _ => e,
    }
}

/// Splits `p` into its directory part (`.` when it has none, `/` for the root) and its last
/// component without trailing slashes (`.` for `/`), and whether it had trailing slashes.
fn split(p: &[u8]) -> (&[u8], &[u8], bool) {
    let end = p.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let trailing = end < p.len();
    if end == 0 {
        return (b"/", b".", trailing);
    }
    let body = &p[..end];
    match body.iter().rposition(|&b| b == b'/') {
        None => (b".", body, trailing),
        Some(i) => {
            let dir = &body[..=i];
            (dir, &body[i + 1..], trailing)
        }
    }
}

/// Joins directory path `dir` (absolute) and `name`, with `.` and `..` applied.
fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    match name {
        b"." => dir.to_vec(),
        b".." => crate::policy::fs::parent(dir).unwrap_or(b"/").to_vec(),
        _ if dir == b"/" => [b"/", name].concat(),
        _ => [dir, b"/", name].concat(),
    }
}

/// The program's path `p` (relative to `dirfd`) as an entry of its parent directory, which is
/// resolved and pinned; `need` is decided on the parent's path and the name. With trailing
/// slashes the kernel follows a final symlink: then the object it leads to is decided on too.
pub fn entry(
    ctx: &Ctx<'_>,
    syscall: &str,
    dirfd: u64,
    p: &CStr,
    need: Need,
) -> Result<Resolved, Errno> {
    entry_with(ctx, syscall, dirfd, p, need, &plain_open)
}

/// [`entry`], the parent opened through `open`.
pub fn entry_with(
    ctx: &Ctx<'_>,
    syscall: &str,
    dirfd: u64,
    p: &CStr,
    need: Need,
    open: &Opener<'_>,
) -> Result<Resolved, Errno> {
    if p.is_empty() {
        return Err(Errno::ENOENT);
    }
    let p = redirect(ctx.proc(), p);
    let (dir, name, trailing) = split(p.to_bytes());
    let dir = CString::new(dir).expect("a part of a C string");
    let parent =
        pinned(ctx, dirfd, &dir, O_DIRECTORY, open).map_err(|e| hidden_error(ctx, dirfd, &p, e))?;
    let path = join(&path_of(parent.raw())?, name);
    decide(ctx, syscall, &path, need)?;
    let name = CString::new(name).expect("a part of a C string");
    if trailing {
        // `NAME/` follows NAME if it is a symlink: decide on where it leads too.
        let pf = parent.raw() as u64;
        if let Ok(target) = pinned_at(pf, &name, 0, open, ctx.proc().policy.confines_processes()) {
            decide(ctx, syscall, &path_of(target.raw())?, need)?;
        }
    }
    let slash: &[u8] = if trailing { b"/" } else { b"" };
    let name = CString::new([name.as_bytes(), slash].concat()).expect("no NUL");
    let kernel = CString::new(
        [format!("/proc/self/fd/{}/", parent.raw()).as_bytes(), name.as_bytes()].concat(),
    )
    .expect("no NUL");
    Ok(Resolved { kernel, path, probe: parent, name: Some(name) })
}

/// The program's string with the private `/tmp` (and `/dev/shm`) put in: an absolute path
/// below `/tmp` names the run's own directory instead (except below a rule of its own there,
/// such as a working directory in `/tmp`).
pub fn redirect(proc: &Process, p: &CStr) -> CString {
    match proc.policy.redirect(p.to_bytes()) {
        Some(r) => CString::new(r).expect("built from a C string"),
        None => p.to_owned(),
    }
}

/// How a forwarded call resolves a path argument's last component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Last {
    /// A final symlink is followed.
    Follow,
    /// A final symlink is not followed (`AT_SYMLINK_NOFOLLOW`, `lstat`), unless the path ends
    /// in `/`.
    NoFollow,
    /// The entry itself is made, removed or renamed: never followed, trailing slash or not.
    Entry,
}

/// What a forwarded call needs of its path argument `i` (`a`: the call's arguments): how its
/// last component is resolved, and the access. `None`: argument `i` is not a path to decide on
/// (a symlink's target text).
fn needs(nr: u64, i: usize, a: &[u64; 6]) -> Option<(Last, Need)> {
    let follow = |yes: bool| if yes { Last::Follow } else { Last::NoFollow };
    let nofollow = |flags: u64| follow(flags & libc::AT_SYMLINK_NOFOLLOW as u64 == 0);
    let access = |mode: u64| -> Need {
        if mode & libc::W_OK as u64 != 0 {
            if mode & libc::R_OK as u64 != 0 { Need::ReadWrite } else { Need::Write }
        } else if mode & libc::R_OK as u64 != 0 {
            Need::Read
        } else {
            // X_OK is decided by the kernel on the file's mode; a directory's search is what
            // every path walk does.
            Need::Stat
        }
    };
    Some(match (nr, i) {
        (4, 0) | (80, 0) | (137, 0) | (191, 0) | (194, 0) => (Last::Follow, Need::Stat),
        (6, 0) | (192, 0) | (195, 0) => (Last::NoFollow, Need::Stat),
        (21, 0) => (Last::Follow, access(a[1])),
        (269, 1) => (Last::Follow, access(a[2])),
        (439, 1) => (nofollow(a[3]), access(a[2])),
        (132, 0) | (235, 0) | (261, 1) => (Last::Follow, Need::Write),
        (280, 1) => (nofollow(a[3]), Need::Write),
        (262, 1) => (nofollow(a[3]), Need::Stat),
        (332, 1) | (465, 1) => (nofollow(a[2]), Need::Stat),
        (254, 1) => (follow(a[2] & 0x0200_0000 == 0), Need::Read), // IN_DONT_FOLLOW
        // Entries that are made, removed or renamed.
        (82, 0 | 1) | (83, 0) | (84, 0) | (87, 0) | (133, 0) => (Last::Entry, Need::Write),
        (258, 1) | (259, 1) | (263, 1) | (264, 1 | 3) | (316, 1 | 3) => (Last::Entry, Need::Write),
        (86, 1) | (88, 1) | (265, 3) | (266, 2) => (Last::Entry, Need::Write),
        // A link's source: looked at here, its access compared with the new name's below.
        (86, 0) => (Last::NoFollow, Need::Stat),
        (265, 1) => (follow(a[4] & libc::AT_SYMLINK_FOLLOW as u64 != 0), Need::Stat),
        _ => return None,
    })
}

/// The descriptor argument that an empty path with `AT_EMPTY_PATH` (or a NULL path for the
/// `utimes` family) makes the call act on, if `a` says so, with what is decided on its file
/// (`None`: nothing; looking at a file the program holds needs no rule). `empty[i]`: whether
/// the program's path argument `i` is the empty string.
fn on_descriptor(nr: u64, a: &[u64; 6], empty: &[bool; 6]) -> Option<(u64, Option<Need>)> {
    let at_empty = |flags: u64| flags & libc::AT_EMPTY_PATH as u64 != 0;
    match nr {
        262 | 439 if at_empty(a[3]) && empty[1] => Some((a[0], None)),
        332 | 465 if at_empty(a[2]) && empty[1] => Some((a[0], None)),
        280 if a[1] == 0 || (at_empty(a[3]) && empty[1]) => Some((a[0], Some(Need::Write))),
        261 if a[1] == 0 => Some((a[0], Some(Need::Write))),
        265 if at_empty(a[4]) && empty[1] => Some((a[0], None)),
        91 | 93 => Some((a[0], Some(Need::Write))),
        // fchdir: a directory passed in by descriptor is decided as chdir decides its path
        // (a hidden one stays absent: getcwd would name it).
        81 => Some((a[0], Some(Need::Stat))),
        _ => None,
    }
}

/// Paths for a forwarded call under filesystem rules: each path argument the call resolves is
/// resolved here first, decided on, and replaced by a path through the supervisor's probe
/// ([`Resolved::kernel`]); `hold` keeps the probes open until the call has been made.
/// `copied`: the program's string of argument `i`, already copied. Returns the string the
/// kernel gets, or `None` to keep the copy (a symlink's target text, an empty path on a
/// descriptor).
pub fn forwarded_path(
    ctx: &Ctx<'_>,
    nr: u64,
    i: usize,
    a: &[u64; 6],
    copied: &CStr,
    hold: &mut Vec<Resolved>,
) -> Result<Option<CString>, Errno> {
    let name = super::spec(nr).map_or("?", |s| s.name);
    let Some((last, need)) = needs(nr, i, a) else { return Ok(None) };
    if copied.is_empty() && on_descriptor(nr, a, &[true; 6]).is_some() {
        return Ok(None);
    }
    // The directory descriptor of a `*at` call is the argument before the path.
    let dirfd = if i > 0 && is_at(nr, i) { a[i - 1] } else { libc::AT_FDCWD as u64 };
    let r = match last {
        Last::Entry => entry(ctx, name, dirfd, copied, need)?,
        _ => object(ctx, name, dirfd, copied, last == Last::NoFollow, need)?,
    };
    let kernel = r.kernel.clone();
    hold.push(r);
    Ok(Some(kernel))
}

/// Whether argument `i - 1` of call `nr` is the directory descriptor of path argument `i`.
fn is_at(nr: u64, i: usize) -> bool {
    matches!(
        (nr, i),
        (258 | 259 | 261 | 262 | 263 | 269 | 280 | 332 | 439 | 465, 1)
            | (264 | 265 | 316, 1 | 3)
            | (266, 2)
    )
}

/// The checks of a forwarded call under filesystem rules that concern more than one path (a
/// rename's or link's two ends) or a descriptor rather than a path, made once every path has
/// been resolved (`hold`, in argument order).
pub fn forwarded_checks(
    ctx: &Ctx<'_>,
    nr: u64,
    a: &[u64; 6],
    empty: &[bool; 6],
    hold: &[Resolved],
) -> Result<(), Errno> {
    let name = super::spec(nr).map_or("?", |s| s.name);
    if let Some((fd, Some(need))) = on_descriptor(nr, a, empty)
        && fd as i32 != libc::AT_FDCWD
    {
        decide_fd(ctx, name, fd, need)?;
    }
    let policy = &ctx.proc().policy;
    match (nr, hold) {
        // rename, renameat, renameat2 (RENAME_EXCHANGE moves both ways).
        (82 | 264 | 316, [src, dst]) => {
            policy.decide_move(caller(ctx), name, &src.path, &dst.path)?;
            if nr == 316 && a[4] & libc::RENAME_EXCHANGE as u64 != 0 {
                policy.decide_move(caller(ctx), name, &dst.path, &src.path)?;
            }
        }
        // link, linkat: the new name may not grant what the file does not have.
        (86 | 265, [src, dst]) => policy.decide_move(caller(ctx), name, &src.path, &dst.path)?,
        // linkat(fd, "", ..., AT_EMPTY_PATH): the source is the descriptor's file.
        (265, [dst]) if a[0] as i32 != libc::AT_FDCWD => {
            let src = path_of(a[0] as i32)?;
            policy.decide_move(caller(ctx), name, &src, &dst.path)?;
        }
        // mknod, mknodat of a device: under filesystem rules every writable directory is
        // `nodev`, or a node made there would open any device the rules keep the program
        // from (a disk, /dev/kmsg), whatever its path.
        (133 | 259, [made]) => {
            let mode = if nr == 133 { a[1] } else { a[2] } as u32;
            if matches!(mode & libc::S_IFMT, libc::S_IFCHR | libc::S_IFBLK) {
                let detail = crate::policy::audit::Event::fs(name, "write", &made.path);
                let rule = "device nodes (nodev)";
                return Err(policy.refuse_with(caller(ctx), rule, detail, Errno::EPERM));
            }
        }
        _ => {}
    }
    Ok(())
}

/// `getcwd(buf, size)` with a private `/tmp`: the run's directory shows as `/tmp`.
pub fn getcwd(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    let n = host(libc::SYS_getcwd, [buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0, 0])?;
    buf.truncate((n as usize).saturating_sub(1));
    let shown = ctx.proc().policy.unredirect(&buf).unwrap_or(buf);
    let mut out = shown;
    out.push(0);
    if (out.len() as u64) > a[1] {
        return Err(Errno(libc::ERANGE));
    }
    super::copy_out(ctx.proc(), a[0], &out)?;
    Ok(out.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_paths() {
        assert_eq!(split(b"a"), (&b"."[..], &b"a"[..], false));
        assert_eq!(split(b"/a"), (&b"/"[..], &b"a"[..], false));
        assert_eq!(split(b"/a/b/"), (&b"/a/"[..], &b"b"[..], true));
        assert_eq!(split(b"a//b//"), (&b"a//"[..], &b"b"[..], true));
        assert_eq!(split(b"/"), (&b"/"[..], &b"."[..], true));
        assert_eq!(split(b"x/.."), (&b"x/"[..], &b".."[..], false));
        assert_eq!(join(b"/a/b", b".."), b"/a".to_vec());
        assert_eq!(join(b"/", b"x"), b"/x".to_vec());
        assert_eq!(join(b"/a", b"."), b"/a".to_vec());
    }
}
