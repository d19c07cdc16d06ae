//! `open`, `creat`, `openat`, `openat2`, `readlink`, `readlinkat` and `truncate`: the program
//! may open anything the host user may, except what would reach the runtime. The decision is
//! made on *what the path resolves to*, never on the path string:
//!
//! * one of the runtime's own objects, by identity (`fdwin::runtime_object`: the trace file,
//!   KVM's device and its anonymous inodes), by whatever name (`/proc/self/fd/N`, `/dev/fd/N`,
//!   `/proc/thread-self/fd/N`, `openat` on a `/proc/self/fd` directory, a hard link, its own
//!   path): `EACCES`;
//! * a procfs object: what [`super::procfs`] decides (the program's own entries show the
//!   program; a runtime descriptor's or thread's entry is hidden; what would expose the
//!   supervisor is refused).
//!
//! The check happens *before* the program holds a usable descriptor: the path is resolved with
//! `O_PATH` (no read or write access), first without following a final symlink (so a procfs
//! link such as `/proc/self/fd/N` or `/proc/self/exe` is seen as the link it is), then, for a
//! symlink, following it; the object is screened, and only then reopened through
//! `/proc/self/fd/N`, which opens that same file without resolving the path again (so no
//! symlink swap can slip in between). Opening first and closing a bad descriptor afterwards
//! would leave a window in which another program thread could `pwrite` through it. Opens that
//! can only ever create a fresh regular file (`O_CREAT|O_EXCL`, `O_TMPFILE`) need no screening
//! and go to the kernel as they are.

use std::ffi::{CStr, CString};

use super::paths;
use super::procfs::{self, PROC_SUPER_MAGIC, Verdict};
use super::{Ctx, PATH_MAX, check_fd, copy_cstr, copy_in, copy_out};
use crate::errno::Errno;
use crate::policy::fs::Need;
use crate::process::Process;
use crate::sys::{self, SysResult};

/// Calls the host kernel with already-validated arguments.
#[allow(unsafe_code)]
fn host(nr: i64, a: [u64; 6]) -> SysResult {
    // SAFETY: every caller in this module passes pointers to supervisor-owned copies (paths,
    // `struct open_how`, `struct stat`) that outlive the call, and descriptors it checked.
    unsafe { sys::syscall6(nr, a) }
}

/// `O_TMPFILE` includes `O_DIRECTORY`; both bits mean "unnamed temporary file".
const O_TMPFILE: u64 = libc::O_TMPFILE as u64;
const O_CREAT: u64 = libc::O_CREAT as u64;
const O_EXCL: u64 = libc::O_EXCL as u64;
const O_PATH: u64 = libc::O_PATH as u64;
const O_NOFOLLOW: u64 = libc::O_NOFOLLOW as u64;
const O_DIRECTORY: u64 = libc::O_DIRECTORY as u64;
const O_CLOEXEC: u64 = libc::O_CLOEXEC as u64;
/// How often an `O_CREAT` open retries when the file appears or vanishes between our steps.
const CREATE_RETRIES: usize = 16;

/// Whether `path` names this process's executable through procfs (`/proc/self/exe`,
/// `/proc/thread-self/exe`, `/proc/PID/exe`, `/proc/PID/task/TID/exe`). In the sandbox that
/// link would name the supervisor; the program must see its own executable instead.
pub fn is_own_exe(path: &[u8]) -> bool {
    let Some(rest) = path.strip_prefix(b"/proc/") else { return false };
    let pid = std::process::id().to_string();
    let parts: Vec<&[u8]> = rest.split(|&b| b == b'/').collect();
    let me = |p: &[u8]| p == b"self" || p == pid.as_bytes();
    match parts.as_slice() {
        [p, b"exe"] => me(p) || *p == b"thread-self",
        [p, b"task", _, b"exe"] => me(p),
        _ => false,
    }
}

fn close(fd: u64) {
    host(libc::SYS_close, [fd, 0, 0, 0, 0, 0]).ok();
}

fn fstat(fd: u64) -> Result<libc::stat, Errno> {
    // SAFETY: all-zero bytes are a valid `struct stat`.
    #[allow(unsafe_code)]
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    host(libc::SYS_fstat, [fd, &raw mut st as u64, 0, 0, 0, 0])?;
    Ok(st)
}

/// What an open of the `O_PATH` descriptor `fd` (status `st`) gets: `Err(EACCES)` for one of
/// the runtime's objects, else the procfs verdict (`Allow` off procfs). `following`: the
/// program follows a final symlink (only then is a procfs `exe` link the program's executable).
fn screen(proc: &Process, fd: u64, st: &libc::stat, following: bool) -> Result<Verdict, Errno> {
    if crate::fdwin::runtime_object(Some(fd as i32), st).is_some() {
        return Err(Errno::EACCES);
    }
    if proc.policy.confines_processes() && super::tty::foreign_pty(st) {
        // Another session's terminal, under confinement: as another user's.
        return Err(Errno::EACCES);
    }
    if sys::fs_type(fd as i32)? != PROC_SUPER_MAGIC {
        return Ok(Verdict::Allow);
    }
    // Not placeable in procfs (a mount made in a way the supervisor cannot follow): refused.
    let loc = procfs::locate(fd as i32, st, proc).ok_or(Errno::EACCES)?;
    if matches!(loc.who, procfs::Who::Other) && proc.policy.confines_processes() {
        // Another process's entries, under confinement: only the sandbox's own exist.
        let pid = paths::proc_pid(&paths::path_of(fd as i32)?);
        if pid.is_some_and(|p| !crate::family::contains(p)) {
            return Ok(Verdict::Hidden);
        }
    }
    let link = st.st_mode & libc::S_IFMT == libc::S_IFLNK;
    let is_runtime = |n: i32| crate::fdwin::window().is_runtime(n);
    Ok(match procfs::verdict(loc.who, &loc.rest, link, &is_runtime) {
        Verdict::Exe if !following => Verdict::Allow,
        v => v,
    })
}

/// The errors of a verdict that refuses (`Hidden`: `ENOENT`, `Refused`: `EACCES`).
fn refusal(v: Verdict) -> Result<(), Errno> {
    match v {
        Verdict::Hidden => Err(Errno::ENOENT),
        Verdict::Refused => Err(Errno::EACCES),
        _ => Ok(()),
    }
}

/// Which kernel entry point resolves the program's path.
enum How<'a> {
    /// `openat(dirfd, path, flags, mode)`.
    At,
    /// `openat2(dirfd, path, how, size)` with the program's `struct open_how` (copied).
    At2(&'a [u8]),
}

impl How<'_> {
    /// Opens `path` relative to `dirfd` with `flags` and `mode`, keeping everything else
    /// (`openat2`'s `resolve` field and its size) as the program gave it.
    fn open(&self, dirfd: u64, path: &CStr, flags: u64, mode: u64) -> SysResult {
        match self {
            How::At => host(libc::SYS_openat, [dirfd, path.as_ptr() as u64, flags, mode, 0, 0]),
            How::At2(how) => {
                let mut how = how.to_vec();
                how[..8].copy_from_slice(&flags.to_ne_bytes());
                how[8..16].copy_from_slice(&mode.to_ne_bytes());
                let (p, n) = (how.as_ptr() as u64, how.len() as u64);
                host(libc::SYS_openat2, [dirfd, path.as_ptr() as u64, p, n, 0, 0])
            }
        }
    }
}

/// Who opens: the process, the calling thread (for synthesized entries) and the running
/// executable's identity (for `ETXTBSY`).
#[derive(Clone, Copy)]
struct Opener<'a> {
    proc: &'a Process,
    caller: procfs::Caller,
    exe: Option<(u64, u64)>,
    /// The calling thread, for the filesystem rules' decisions (`None`: no rules).
    fs: Option<&'a Ctx<'a>>,
    /// The call's name, for audit lines.
    syscall: &'static str,
}

impl<'a> Opener<'a> {
    fn of(ctx: &'a Ctx<'a>, syscall: &'static str) -> Opener<'a> {
        Opener {
            proc: ctx.proc(),
            caller: procfs::Caller { tid: ctx.thread.tid, sigmask: ctx.thread.sigmask },
            exe: *ctx.proc().exe_id.lock().unwrap(),
            fs: if paths::mediated(ctx.proc()) { Some(ctx) } else { None },
            syscall,
        }
    }

    /// Decides an open with `flags` of the file the runtime's descriptor `fd` holds.
    fn decide_open(&self, fd: u64, flags: u64) -> Result<(), Errno> {
        let Some(ctx) = self.fs else { return Ok(()) };
        let need = open_need(flags);
        paths::decide(ctx, self.syscall, &paths::path_of(fd as i32)?, need)
    }

    /// An open that creates `path` (relative to `dirfd`): decided on the new entry, and made
    /// in the pinned parent directory.
    fn create(&self, dirfd: u64, path: &CStr, flags: u64, mode: u64, how: &How<'_>) -> SysResult {
        let Some(ctx) = self.fs else { return how.open(dirfd, path, flags, mode) };
        // Probes keep the program's `openat2` resolve constraints.
        let probe = |d: u64, p: &CStr, f: u64| how.open(d, p, f, 0);
        if flags & O_TMPFILE == O_TMPFILE {
            // An unnamed file in directory `path`: a write there.
            let dir = paths::pinned(ctx, dirfd, path, O_DIRECTORY, &probe)?;
            paths::decide(ctx, self.syscall, &paths::path_of(dir.raw())?, Need::Write)?;
            return how.open(dir.raw() as u64, c".", flags, mode);
        }
        let e = paths::entry_with(ctx, self.syscall, dirfd, path, Need::Write, &probe)?;
        let name = e.name.as_deref().unwrap_or(c".");
        how.open(e.probe.raw() as u64, name, flags, mode)
    }
}

/// What opening with `flags` needs of the file.
fn open_need(flags: u64) -> Need {
    if flags & O_PATH != 0 {
        return Need::Stat;
    }
    match (flags & libc::O_ACCMODE as u64) as i32 {
        libc::O_RDONLY if flags & libc::O_TRUNC as u64 == 0 => Need::Read,
        libc::O_RDONLY | libc::O_WRONLY => Need::Write,
        _ => Need::ReadWrite,
    }
}

/// Opens `path` as the program asked, screening the file before any usable descriptor exists.
/// Under filesystem rules a path below a hidden one fails with `ENOENT` however the kernel
/// failed ([`paths::hidden_error`]).
fn open_screened(
    me: Opener<'_>,
    dirfd: u64,
    path: &CStr,
    flags: u64,
    mode: u64,
    how: &How<'_>,
) -> SysResult {
    let r = open_screened_as_is(me, dirfd, path, flags, mode, how);
    match (r, me.fs) {
        (Err(e), Some(ctx)) => {
            Err(paths::hidden_error(ctx, dirfd, &paths::redirect(ctx.proc(), path), e))
        }
        (r, _) => r,
    }
}

fn open_screened_as_is(
    me: Opener<'_>,
    dirfd: u64,
    path: &CStr,
    flags: u64,
    mode: u64,
    how: &How<'_>,
) -> SysResult {
    let Opener { proc, caller, exe, .. } = me;
    if flags & O_TMPFILE == O_TMPFILE || flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL {
        return me.create(dirfd, path, flags, mode, how);
    }
    let nofollow = flags & O_NOFOLLOW != 0;
    let mut path = path.to_owned();
    let mut links = 0;
    for _ in 0..CREATE_RETRIES {
        // The probes sit at numbers of the program's until the window takes them: no other
        // thread closes, duplicates or replaces one meanwhile (fdwin's gate).
        let creating = crate::fdwin::window().creating();
        // The final component as it is: a symlink (a procfs link among them) stays one.
        let first =
            O_PATH | O_CLOEXEC | O_NOFOLLOW | if nofollow { flags & O_DIRECTORY } else { 0 };
        let fd = match how.open(dirfd, &path, first, 0) {
            // Nothing there yet: create it, exclusively, so what we open is what we made.
            Err(Errno::ENOENT) if flags & O_CREAT != 0 => {
                // Under filesystem rules the parent is pinned by a probe of its own.
                if me.fs.is_some() {
                    drop(creating);
                }
                match me.create(dirfd, &path, flags | O_EXCL, mode, how) {
                    Err(Errno::EEXIST) => continue, // a racing creator
                    r => return r,
                }
            }
            r => r?,
        };
        let st = fstat(fd).inspect_err(|_| close(fd))?;
        let (fd, st) = if st.st_mode & libc::S_IFMT == libc::S_IFLNK && !nofollow {
            // A procfs link is judged as the link it is (a runtime descriptor's, the exe).
            match screen(proc, fd, &st, true) {
                Ok(Verdict::Exe) => {
                    close(fd);
                    drop(creating);
                    return open_exe(me, flags, mode);
                }
                Ok(v) => {
                    close(fd);
                    refusal(v)?;
                }
                Err(e) => {
                    close(fd);
                    return Err(e);
                }
            }
            // Then the object the link leads to.
            match how.open(dirfd, &path, O_PATH | O_CLOEXEC | (flags & O_DIRECTORY), 0) {
                Err(Errno::ENOENT) if flags & O_CREAT != 0 => {
                    // A dangling symlink: open(2) creates its target.
                    if let Some(target) = dangling_target(dirfd, &path, how)? {
                        links += 1;
                        if links > MAX_SYMLINKS {
                            return Err(Errno(libc::ELOOP));
                        }
                        path = target;
                    }
                    continue;
                }
                r => {
                    let fd = r?;
                    (fd, fstat(fd).inspect_err(|_| close(fd))?)
                }
            }
        } else {
            if flags & O_DIRECTORY != 0 && st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                close(fd);
                return Err(Errno(libc::ENOTDIR));
            }
            (fd, st)
        };
        let verdict = match screen(proc, fd, &st, false) {
            Ok(v) => v,
            Err(e) => {
                close(fd);
                return Err(e);
            }
        };
        if let Err(e) = refusal(verdict).and_then(|()| me.decide_open(fd, flags)) {
            close(fd);
            return Err(e);
        }
        let r = if flags & O_PATH != 0 {
            // The program wants an O_PATH descriptor: this one, at the number it got.
            text_busy(fd, flags, exe)
                .and_then(|()| keep_path(fd, flags))
                .map(|()| fd)
                .inspect_err(|_| close(fd))
        } else {
            // The probe moves to the runtime's window, so the file reopened for the program
            // gets the number open(2) would give (and at the program's descriptor limit, one
            // free number suffices, as natively).
            let probe = crate::fdwin::window().adopt(fd as i32).map_err(|e| Errno::from_io(&e))?;
            drop(creating);
            let fd = probe.raw() as u64;
            match verdict {
                Verdict::Synth(entry) => synthesized(proc, caller, fd, &st, entry, flags),
                _ => text_busy(fd, flags, exe).and_then(|()| reopen(fd, flags)),
            }
        };
        match r {
            Ok(fd) => return Ok(fd),
            // Unlinked between our steps: again.
            Err(Errno::ENOENT) if !matches!(verdict, Verdict::Synth(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Errno::EAGAIN)
}

/// Opens the program's own executable for its `/proc/self/exe` (which names the supervisor's).
fn open_exe(me: Opener<'_>, flags: u64, mode: u64) -> SysResult {
    let path = me.proc.exe.lock().unwrap().as_os_str().as_encoded_bytes().to_vec();
    let path = CString::new(path).map_err(|_| Errno::ENOENT)?;
    let at = libc::AT_FDCWD as u64;
    // The recorded path is canonical: never a link (so never this link again).
    open_screened(me, at, &path, flags | O_NOFOLLOW, mode, &How::At)
}

/// The program's descriptor on synthesized content for the procfs object `fd` (`st`): a
/// memfd filled and sealed, reopened read-only, so the program gets the lowest free number and
/// a file that reads, seeks and maps like any other. Opening it for writing: `EACCES`, as the
/// kernel answers for these read-only entries.
fn synthesized(
    proc: &Process,
    caller: procfs::Caller,
    fd: u64,
    st: &libc::stat,
    entry: procfs::Entry,
    flags: u64,
) -> SysResult {
    if writes(flags) {
        return Err(Errno::EACCES);
    }
    // The kernel's own permission check on the entry, as the caller (`environ` and `auxv` are
    // their owner's only, and a process that is not dumpable owns none of its entries).
    let magic = magic_path(fd as i32);
    let at = libc::AT_FDCWD as u64;
    let (r_ok, eaccess) = (libc::R_OK as u64, libc::AT_EACCESS as u64);
    host(libc::SYS_faccessat2, [at, magic.as_ptr() as u64, r_ok, eaccess, 0, 0])?;
    let loc = procfs::locate(fd as i32, st, proc).ok_or(Errno::EACCES)?;
    let bytes = procfs::synthesize(entry, &loc, proc, caller)?;
    let name = c"procfs";
    let creating = crate::fdwin::window().creating();
    let memfd = host(
        libc::SYS_memfd_create,
        [name.as_ptr() as u64, (libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) as u64, 0, 0, 0, 0],
    )?;
    // In the window while it is written: the program's descriptor is the read-only reopening.
    let memfd = crate::fdwin::window().adopt(memfd as i32).map_err(|e| Errno::from_io(&e))?;
    drop(creating);
    let m = memfd.raw() as u64;
    let mut done = 0;
    while done < bytes.len() {
        let rest = &bytes[done..];
        let n = host(
            libc::SYS_pwrite64,
            [m, rest.as_ptr() as u64, rest.len() as u64, done as u64, 0, 0],
        )?;
        if n == 0 {
            return Err(Errno(libc::EIO));
        }
        done += n as usize;
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    host(libc::SYS_fcntl, [m, libc::F_ADD_SEALS as u64, seals as u64, 0, 0, 0])?;
    let keep = O_CLOEXEC | libc::O_NONBLOCK as u64 | libc::O_LARGEFILE as u64;
    reopen(m, libc::O_RDONLY as u64 | (flags & keep))
}
/// Linux's limit on symlinks followed in one lookup (`MAXSYMLINKS`, include/linux/namei.h).
const MAX_SYMLINKS: usize = 40;

/// When `path` is a symlink, the path its target has relative to `dirfd` (the target itself
/// when absolute, else joined to the link's directory); `None` when it is not a symlink.
fn dangling_target(dirfd: u64, path: &CStr, how: &How<'_>) -> Result<Option<CString>, Errno> {
    let fd = how.open(dirfd, path, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0)?;
    let st = fstat(fd);
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    let empty = c"";
    let n = match st {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => host(
            libc::SYS_readlinkat,
            [fd, empty.as_ptr() as u64, buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0],
        ),
        Ok(_) => {
            close(fd);
            return Ok(None);
        }
        Err(e) => Err(e),
    };
    close(fd);
    buf.truncate(n? as usize);
    let bytes = path.to_bytes();
    let joined = match bytes.iter().rposition(|&b| b == b'/') {
        Some(i) if buf.first() != Some(&b'/') => [&bytes[..=i], &buf[..]].concat(),
        _ => buf,
    };
    Ok(Some(CString::new(joined).map_err(|_| Errno::EINVAL)?))
}

/// Whether `flags` would write to the file: write access, or truncation (which Linux applies
/// even with `O_RDONLY`).
fn writes(flags: u64) -> bool {
    flags & libc::O_ACCMODE as u64 != libc::O_RDONLY as u64 || flags & libc::O_TRUNC as u64 != 0
}

/// `Err(ETXTBSY)` when the open would write to the running executable `exe` (`(st_dev,
/// st_ino)`): Linux denies write access to a file being executed (fs/exec.c,
/// `deny_write_access`), and here its pages are mapped from that file.
fn text_busy(fd: u64, flags: u64, exe: Option<(u64, u64)>) -> Result<(), Errno> {
    let Some((dev, ino)) = exe else { return Ok(()) };
    if flags & O_PATH != 0 || !writes(flags) {
        return Ok(());
    }
    let st = fstat(fd)?;
    if st.st_dev == dev && st.st_ino == ino { Err(Errno(libc::ETXTBSY)) } else { Ok(()) }
}

/// `truncate(path, length)`: `ETXTBSY` for the running executable (see [`text_busy`]), else
/// the host's call on the copied path.
pub fn truncate(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    // Resolved once, in the window while it is checked and truncated through its magic link.
    let p = copy_cstr(ctx.proc(), a[0], PATH_MAX)?;
    let probe = probe_path(ctx, libc::AT_FDCWD as u64, &p, false, "truncate")?;
    let fd = probe.raw() as u64;
    text_busy(fd, libc::O_WRONLY as u64, *ctx.proc().exe_id.lock().unwrap())?;
    host(libc::SYS_truncate, [magic_path(probe.raw()).as_ptr() as u64, a[1], 0, 0, 0, 0])
}

/// Resolves the copied path `p` (relative to `dirfd`; following a final symlink unless
/// `nofollow`) once, to a descriptor in the window: `EACCES` when it is one of the runtime's
/// objects (the trace file, KVM's device, the window's placeholders), whatever name reached it;
/// otherwise the errors of `openat(O_PATH)`.
fn probe_path(
    ctx: &Ctx<'_>,
    dirfd: u64,
    p: &CStr,
    nofollow: bool,
    syscall: &str,
) -> Result<crate::fdwin::RuntimeFd, Errno> {
    let p = &paths::redirect(ctx.proc(), p);
    let flags = if nofollow { O_NOFOLLOW } else { 0 };
    let probe = paths::pinned(ctx, dirfd, p, flags, &paths::plain_open)?;
    // Every caller changes the file (its size, mode or owner).
    if paths::mediated(ctx.proc()) {
        paths::decide(ctx, syscall, &paths::path_of(probe.raw())?, Need::Write)?;
    }
    Ok(probe)
}

/// `chmod(path, mode)` and `fchmodat(dirfd, path, mode)`: on the file the path reaches,
/// screened ([`probe_path`]), through its descriptor's magic link.
pub fn chmod(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    chmod_at(ctx, libc::AT_FDCWD as u64, a[0], a[1])
}

/// See [`chmod`].
pub fn fchmodat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    chmod_at(ctx, a[0], a[1], a[2])
}

fn chmod_at(ctx: &Ctx<'_>, dirfd: u64, path: u64, mode: u64) -> SysResult {
    let p = copy_cstr(ctx.proc(), path, PATH_MAX)?;
    let probe = probe_path(ctx, dirfd, &p, false, "chmod")?;
    let at = libc::AT_FDCWD as u64;
    host(libc::SYS_fchmodat, [at, magic_path(probe.raw()).as_ptr() as u64, mode, 0, 0, 0])
}

/// `/proc/self/fd/N`: the magic link through which a call by path reaches descriptor `fd`'s
/// file itself.
fn magic_path(fd: i32) -> CString {
    CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL in a number")
}

/// `chown`, `lchown` and `fchownat`: on the file the path reaches, screened ([`probe_path`]),
/// through its descriptor (`AT_EMPTY_PATH`). `fchownat` with `AT_EMPTY_PATH` and an empty path
/// changes `dirfd`'s own file, a descriptor of the program's.
pub fn chown(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    chown_at(ctx, libc::AT_FDCWD as u64, a[0], a[1], a[2], 0)
}

/// See [`chown`].
pub fn lchown(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    chown_at(ctx, libc::AT_FDCWD as u64, a[0], a[1], a[2], libc::AT_SYMLINK_NOFOLLOW as u64)
}

/// See [`chown`].
pub fn fchownat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    chown_at(ctx, a[0], a[1], a[2], a[3], a[4])
}

fn chown_at(ctx: &Ctx<'_>, dirfd: u64, path: u64, uid: u64, gid: u64, flags: u64) -> SysResult {
    let (nofollow, empty) = (libc::AT_SYMLINK_NOFOLLOW as u64, libc::AT_EMPTY_PATH as u64);
    if flags & !(nofollow | empty) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = copy_cstr(ctx.proc(), path, PATH_MAX)?;
    if flags & empty != 0 && p.as_bytes().is_empty() {
        check_fd(ctx.proc(), dirfd)?;
        paths::decide_fd(ctx, "fchownat", dirfd, Need::Write)?;
        return host(libc::SYS_fchownat, [dirfd, p.as_ptr() as u64, uid, gid, flags, 0]);
    }
    let probe = probe_path(ctx, dirfd, &p, flags & nofollow != 0, "chown")?;
    let fd = probe.raw() as u64;
    host(libc::SYS_fchownat, [fd, c"".as_ptr() as u64, uid, gid, empty, 0])
}

/// `readlink`/`readlinkat`: the link is resolved once (`O_PATH | O_NOFOLLOW`) and read through
/// that descriptor. A procfs link gets the procfs verdict: the program's `exe` names its own
/// executable, a runtime descriptor's `fd/N` does not exist, `map_files/` is refused.
pub fn readlink_common(ctx: &mut Ctx<'_>, dirfd: u64, path: u64, buf: u64, size: u64) -> SysResult {
    if dirfd as i32 != libc::AT_FDCWD {
        check_fd(ctx.proc(), dirfd)?;
    }
    let p = copy_cstr(ctx.proc(), path, PATH_MAX)?;
    let p = paths::redirect(ctx.proc(), &p);
    ctx.proc().check(buf, size)?;
    if (size as i32) <= 0 {
        return Err(Errno::EINVAL);
    }
    let flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
    let fd = host(libc::SYS_openat, [dirfd, p.as_ptr() as u64, flags, 0, 0, 0])?;
    let r = (|| {
        if paths::mediated(ctx.proc()) {
            paths::decide(ctx, "readlink", &paths::path_of(fd as i32)?, Need::Stat)?;
        }
        let st = fstat(fd)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
            return Err(Errno::EINVAL);
        }
        match screen(ctx.proc(), fd, &st, true)? {
            Verdict::Exe => {
                let exe = ctx.proc().exe.lock().unwrap().as_os_str().as_encoded_bytes().to_vec();
                let n = exe.len().min(size as usize);
                copy_out(ctx.proc(), buf, &exe[..n])?;
                Ok(n as u64)
            }
            v => {
                refusal(v)?;
                let empty = c"";
                host(libc::SYS_readlinkat, [fd, empty.as_ptr() as u64, buf, size, 0, 0])
            }
        }
    })();
    close(fd);
    r
}

/// The screened `O_PATH` descriptor `fd` is the program's, with its close-on-exec choice.
fn keep_path(fd: u64, flags: u64) -> Result<(), Errno> {
    if flags & O_CLOEXEC == 0 {
        host(libc::SYS_fcntl, [fd, libc::F_SETFD as u64, 0, 0, 0, 0])?;
    }
    Ok(())
}

/// Opens the file the screened `O_PATH` descriptor `fd` (the runtime's) holds as the program
/// asked with `flags`: the program gets the lowest free descriptor number, as open(2) gives.
fn reopen(fd: u64, flags: u64) -> SysResult {
    let st = fstat(fd)?;
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        // O_NOFOLLOW on a symlink, which open(2) refuses.
        return Err(Errno(libc::ELOOP));
    }
    let magic = magic_path(fd as i32);
    let flags = flags & !(O_CREAT | O_EXCL | O_NOFOLLOW);
    let at = libc::AT_FDCWD as u64;
    let new = host(libc::SYS_openat, [at, magic.as_ptr() as u64, flags, 0, 0, 0])?;
    // The magic link opens the inode `fd` holds; make sure nothing swapped it underneath.
    match fstat(new) {
        Ok(n) if n.st_dev == st.st_dev && n.st_ino == st.st_ino => Ok(new),
        Ok(_) => {
            close(new);
            Err(Errno::EAGAIN)
        }
        Err(e) => {
            close(new);
            Err(e)
        }
    }
}

fn open_common(
    ctx: &mut Ctx<'_>,
    name: &'static str,
    dirfd: u64,
    path: u64,
    flags: u64,
    mode: u64,
) -> SysResult {
    if dirfd as i32 != libc::AT_FDCWD {
        check_fd(ctx.proc(), dirfd)?;
    }
    let p = copy_cstr(ctx.proc(), path, PATH_MAX)?;
    // openat(2) ignores every flag but these with O_PATH (fs/open.c, build_open_how).
    let flags = if flags & O_PATH != 0 {
        flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    } else {
        flags
    };
    let p = paths::redirect(ctx.proc(), &p);
    let r = open_screened(Opener::of(ctx, name), dirfd, &p, flags, mode, &How::At);
    if let Ok(fd) = r
        && ctx.proc().policy.confines_processes()
    {
        super::tty::opened(p.to_bytes(), fd as i32);
    }
    r
}

pub fn open(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    open_common(ctx, "open", libc::AT_FDCWD as u64, a[0], a[1], a[2])
}

pub fn creat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let flags = (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64;
    open_common(ctx, "creat", libc::AT_FDCWD as u64, a[0], flags, a[1])
}

pub fn openat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    open_common(ctx, "openat", a[0], a[1], a[2], a[3])
}

/// `openat2(dirfd, path, how, size)`; `size` at least `OPEN_HOW_SIZE_VER0` (24) and at most a
/// page. The kernel validates `resolve` and the size on our first step; the flag and mode
/// checks it would make on the program's own values are repeated here (fs/open.c,
/// `build_open_flags`) because our steps use other flags.
pub fn openat2(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[0] as i32 != libc::AT_FDCWD {
        check_fd(ctx.proc(), a[0])?;
    }
    let p = copy_cstr(ctx.proc(), a[1], PATH_MAX)?;
    if a[3] > 4096 {
        return Err(Errno(libc::E2BIG));
    }
    if a[3] < 24 {
        return Err(Errno::EINVAL);
    }
    let how = copy_in(ctx.proc(), a[2], a[3])?;
    let flags = u64::from_ne_bytes(how[..8].try_into().unwrap());
    let mode = u64::from_ne_bytes(how[8..16].try_into().unwrap());
    const VALID: u64 = (libc::O_ACCMODE
        | libc::O_CREAT
        | libc::O_EXCL
        | libc::O_NOCTTY
        | libc::O_TRUNC
        | libc::O_APPEND
        | libc::O_NONBLOCK
        | libc::O_DSYNC
        | libc::O_SYNC
        | libc::O_ASYNC
        | libc::O_DIRECT
        | libc::O_LARGEFILE
        | libc::O_DIRECTORY
        | libc::O_NOFOLLOW
        | libc::O_NOATIME
        | libc::O_CLOEXEC
        | libc::O_PATH
        | libc::O_TMPFILE) as u64;
    let creates = flags & O_CREAT != 0 || flags & O_TMPFILE == O_TMPFILE;
    if flags & !VALID != 0
        || (creates && mode & !0o7777 != 0)
        || (!creates && mode != 0)
        || (flags & O_PATH != 0 && flags & !(O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) != 0)
    {
        return Err(Errno::EINVAL);
    }
    let p = paths::redirect(ctx.proc(), &p);
    let r = open_screened(Opener::of(ctx, "openat2"), a[0], &p, flags, mode, &How::At2(&how));
    if let Ok(fd) = r
        && ctx.proc().policy.confines_processes()
    {
        super::tty::opened(p.to_bytes(), fd as i32);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::is_own_exe;

    #[test]
    fn own_exe_paths() {
        let pid = std::process::id();
        assert!(is_own_exe(b"/proc/self/exe"));
        assert!(is_own_exe(b"/proc/thread-self/exe"));
        assert!(is_own_exe(format!("/proc/{pid}/exe").as_bytes()));
        assert!(is_own_exe(format!("/proc/{pid}/task/{pid}/exe").as_bytes()));
        assert!(!is_own_exe(b"/proc/1/exe"));
        assert!(!is_own_exe(b"/proc/self/exe/x"));
        assert!(!is_own_exe(b"/proc/self/cwd"));
    }
}
