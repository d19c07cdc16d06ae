//! `open`, `creat`, `openat` and `openat2`: the program may open anything the host user may,
//! except a file that reaches a process's memory through procfs (`/proc/PID/mem`,
//! `/proc/PID/task/TID/mem`, `/proc/PID/map_files/*`). Writes through those bypass page
//! protections, so `/proc/self/mem` would reach the supervisor's memory.
//!
//! The check happens *before* the program holds a usable descriptor: the path is resolved once
//! with `O_PATH` (no read or write access), the file behind it is screened, and only then is it
//! reopened through `/proc/self/fd/N`, which opens that same file without resolving the path
//! again (so no symlink swap can slip in between). Opening first and closing a bad descriptor
//! afterwards would leave a window in which another program thread could `pwrite` through it.
//! Opens that can only ever create a fresh regular file (`O_CREAT|O_EXCL`, `O_TMPFILE`) need no
//! screening and go to the kernel as they are.

use std::ffi::{CStr, CString};

use super::{Ctx, PATH_MAX, check_fd, copy_cstr, copy_in};
use crate::errno::Errno;
use crate::sys::{self, SysResult};

/// Calls the host kernel with already-validated arguments.
#[allow(unsafe_code)]
fn host(nr: i64, a: [u64; 6]) -> SysResult {
    // SAFETY: every caller in this module passes pointers to supervisor-owned copies (paths,
    // `struct open_how`, `struct stat`) that outlive the call, and descriptors it checked.
    unsafe { sys::syscall6(nr, a) }
}

/// `PROC_SUPER_MAGIC` from `<linux/magic.h>`.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;
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

/// The path the kernel should open: the program's executable for its `/proc/self/exe`.
fn redirect_exe(ctx: &Ctx<'_>, p: CString) -> CString {
    if is_own_exe(p.as_bytes()) {
        CString::new(ctx.proc().exe.lock().unwrap().as_os_str().as_encoded_bytes()).unwrap_or(p)
    } else {
        p
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

/// `Err(EACCES)` when the file behind `fd` (an `O_PATH` descriptor) is a procfs file that
/// exposes a process's memory.
fn screen(fd: u64) -> Result<(), Errno> {
    // SAFETY: all-zero bytes are a valid `struct statfs`.
    #[allow(unsafe_code)]
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    host(libc::SYS_fstatfs, [fd, &raw mut fs as u64, 0, 0, 0, 0])?;
    if fs.f_type != PROC_SUPER_MAGIC {
        return Ok(());
    }
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).map_err(|_| Errno::EACCES)?;
    let s = link.to_string_lossy();
    if s.ends_with("/mem") || s.contains("/map_files/") {
        return Err(Errno::EACCES);
    }
    Ok(())
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

/// Opens `path` as the program asked, screening the file before any usable descriptor exists.
fn open_screened(
    dirfd: u64,
    path: &CStr,
    flags: u64,
    mode: u64,
    how: &How<'_>,
    exe: Option<(u64, u64)>,
) -> SysResult {
    if flags & O_TMPFILE == O_TMPFILE || flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL {
        return how.open(dirfd, path, flags, mode);
    }
    let mut path = path.to_owned();
    let mut links = 0;
    for _ in 0..CREATE_RETRIES {
        let probe = O_PATH | O_CLOEXEC | (flags & (O_NOFOLLOW | O_DIRECTORY));
        let fd = match how.open(dirfd, &path, probe, 0) {
            // Nothing there yet: create it, exclusively, so what we open is what we made.
            Err(Errno::ENOENT) if flags & O_CREAT != 0 => {
                match how.open(dirfd, &path, flags | O_EXCL, mode) {
                    // A dangling symlink (open(2) creates its target) or a racing creator.
                    Err(Errno::EEXIST) => {
                        if let Some(target) = dangling_target(dirfd, &path, how)? {
                            if flags & O_NOFOLLOW != 0 {
                                return Err(Errno(libc::ELOOP));
                            }
                            links += 1;
                            if links > MAX_SYMLINKS {
                                return Err(Errno(libc::ELOOP));
                            }
                            path = target;
                        }
                        continue;
                    }
                    r => return r,
                }
            }
            r => r?,
        };
        let checked = |fd: u64| screen(fd).and_then(|()| text_busy(fd, flags, exe));
        let r = if flags & O_PATH != 0 {
            // The program wants an O_PATH descriptor: this one, at the number it got.
            checked(fd).and_then(|()| keep_path(fd, flags)).map(|()| fd).inspect_err(|_| close(fd))
        } else {
            // The probe moves to the runtime's window, so the file reopened for the program
            // gets the number open(2) would give (and at the program's descriptor limit, one
            // free number suffices, as natively).
            let probe = crate::fdwin::window().adopt(fd as i32).map_err(|e| Errno::from_io(&e))?;
            let fd = probe.raw() as u64;
            checked(fd).and_then(|()| reopen(fd, flags))
        };
        match r {
            Ok(fd) => return Ok(fd),
            // Unlinked between our steps: again.
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Err(Errno::EAGAIN)
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
    let p = copy_cstr(ctx.proc(), a[0], PATH_MAX)?;
    let exe = *ctx.proc().exe_id.lock().unwrap();
    if exe.is_some() {
        let at = libc::AT_FDCWD as u64;
        if let Ok(fd) = host(libc::SYS_openat, [at, p.as_ptr() as u64, O_PATH | O_CLOEXEC, 0, 0, 0])
        {
            let busy = text_busy(fd, libc::O_WRONLY as u64, exe);
            close(fd);
            busy?;
        }
    }
    host(libc::SYS_truncate, [p.as_ptr() as u64, a[1], 0, 0, 0, 0])
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
    let magic = CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL in a number");
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

fn open_common(ctx: &mut Ctx<'_>, dirfd: u64, path: u64, flags: u64, mode: u64) -> SysResult {
    if dirfd as i32 != libc::AT_FDCWD {
        check_fd(ctx.proc(), dirfd)?;
    }
    let p = redirect_exe(ctx, copy_cstr(ctx.proc(), path, PATH_MAX)?);
    // openat(2) ignores every flag but these with O_PATH (fs/open.c, build_open_how).
    let flags = if flags & O_PATH != 0 {
        flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    } else {
        flags
    };
    let exe = *ctx.proc().exe_id.lock().unwrap();
    open_screened(dirfd, &p, flags, mode, &How::At, exe)
}

pub fn open(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    open_common(ctx, libc::AT_FDCWD as u64, a[0], a[1], a[2])
}

pub fn creat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let flags = (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64;
    open_common(ctx, libc::AT_FDCWD as u64, a[0], flags, a[1])
}

pub fn openat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    open_common(ctx, a[0], a[1], a[2], a[3])
}

/// `openat2(dirfd, path, how, size)`; `size` at least `OPEN_HOW_SIZE_VER0` (24) and at most a
/// page. The kernel validates `resolve` and the size on our first step; the flag and mode
/// checks it would make on the program's own values are repeated here (fs/open.c,
/// `build_open_flags`) because our steps use other flags.
pub fn openat2(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[0] as i32 != libc::AT_FDCWD {
        check_fd(ctx.proc(), a[0])?;
    }
    let p = redirect_exe(ctx, copy_cstr(ctx.proc(), a[1], PATH_MAX)?);
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
    let exe = *ctx.proc().exe_id.lock().unwrap();
    open_screened(a[0], &p, flags, mode, &How::At2(&how), exe)
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
