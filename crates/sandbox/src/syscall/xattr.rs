//! Extended-attribute writes: `setxattr`, `lsetxattr`, `fsetxattr`, `setxattrat`, and the
//! `removexattr` family. (The reads, `getxattr` and `listxattr` and their variants, are plain
//! table entries; `getxattrat` is here because its value pointer is nested.)
//!
//! Everything the kernel reads is copied into supervisor memory first, in the kernel's own
//! order (fs/xattr.c, `path_setxattrat`, `setxattr_copy`), so the errors come as Linux gives
//! them: the flags (`EINVAL`), the name (`ERANGE` when empty or longer than
//! `XATTR_NAME_MAX`), the value (`E2BIG` over `XATTR_SIZE_MAX`, `EFAULT`), then the path.
//! `setxattrat`/`getxattrat` take a `struct xattr_args` whose `value` is a pointer: the
//! structure is copied, its pointer validated like a direct argument, and the kernel gets a
//! copy of the structure that points at the supervisor's copy of the value (or, for
//! `getxattrat`, at the range-checked program buffer it fills).

use std::ffi::CString;

use super::{Ctx, PATH_MAX, check_fd, copy_cstr, copy_in, paths};
use crate::errno::Errno;
use crate::policy::fs::Need;
use crate::sys::{self, SysResult};

/// Calls the host kernel with already-validated arguments.
#[allow(unsafe_code)]
fn host(nr: i64, a: [u64; 6]) -> SysResult {
    // SAFETY: every caller passes supervisor copies of the path, the name, the value and the
    // `struct xattr_args` (alive across the call), a range-checked program buffer for values
    // the kernel writes, and descriptors checked against the runtime's.
    unsafe { sys::syscall6(nr, a) }
}

/// `sizeof(struct xattr_name::name)`: `XATTR_NAME_MAX` (255) and the NUL.
const NAME_BYTES: usize = 256;
/// `XATTR_SIZE_MAX`: the largest value.
const SIZE_MAX: u64 = 65536;
/// `XATTR_CREATE | XATTR_REPLACE`.
const SET_FLAGS: u64 = 1 | 2;
/// `AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH`: the `*xattrat` calls' `at_flags`.
const AT_FLAGS: u64 = (libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) as u64;
/// `XATTR_ARGS_SIZE_VER0`: `struct xattr_args { u64 value; u32 size; u32 flags; }`.
const ARGS_SIZE: u64 = 16;
/// The longest `struct xattr_args` the kernel accepts (`PAGE_SIZE`; longer is `E2BIG`).
const ARGS_MAX: u64 = 4096;

/// Entry point numbers of the `*xattrat` calls (Linux 6.13).
const SYS_SETXATTRAT: i64 = 463;
const SYS_GETXATTRAT: i64 = 464;
const SYS_REMOVEXATTRAT: i64 = 466;

/// The attribute name at `addr`, as `import_xattr_name` takes it: `ERANGE` when empty or
/// without a NUL in its first 256 bytes.
fn name(ctx: &Ctx<'_>, addr: u64) -> Result<CString, Errno> {
    let n = match copy_cstr(ctx.proc(), addr, NAME_BYTES) {
        Err(Errno(libc::ENAMETOOLONG)) => return Err(Errno(libc::ERANGE)),
        r => r?,
    };
    if n.is_empty() { Err(Errno(libc::ERANGE)) } else { Ok(n) }
}

/// The value the kernel would read (`size` bytes at `addr`), copied: `E2BIG` over
/// `XATTR_SIZE_MAX`; nothing for size 0 (the kernel ignores the pointer then).
fn value(ctx: &Ctx<'_>, addr: u64, size: u64) -> Result<Vec<u8>, Errno> {
    if size == 0 {
        return Ok(Vec::new());
    }
    if size > SIZE_MAX {
        return Err(Errno(libc::E2BIG));
    }
    copy_in(ctx.proc(), addr, size)
}

/// A path argument, copied (NULL stays NULL: the kernel decides what it means).
fn path(ctx: &Ctx<'_>, addr: u64) -> Result<Option<CString>, Errno> {
    if addr == 0 { Ok(None) } else { copy_cstr(ctx.proc(), addr, PATH_MAX).map(Some) }
}

fn ptr(p: &Option<CString>) -> u64 {
    p.as_ref().map_or(0, |s| s.as_ptr() as u64)
}

/// The directory descriptor and path the kernel gets for the program's `dirfd` and copied
/// path `p`: under filesystem rules, the object resolved and decided on (`need`), through the
/// supervisor's probe, which the third element keeps open; otherwise as they are.
fn decided(
    ctx: &Ctx<'_>,
    syscall: &str,
    dirfd: u64,
    p: Option<CString>,
    at_flags: u64,
    need: Need,
) -> Result<(u64, Option<CString>, Option<paths::Resolved>), Errno> {
    let mediated = paths::mediated(ctx.proc());
    let nofollow = at_flags & libc::AT_SYMLINK_NOFOLLOW as u64 != 0;
    // With AT_EMPTY_PATH an empty path, or a NULL one (Linux 6.13, `getname_maybe_null`), is
    // the descriptor's file, or the working directory for AT_FDCWD.
    if mediated
        && at_flags & libc::AT_EMPTY_PATH as u64 != 0
        && p.as_ref().is_none_or(|s| s.is_empty())
    {
        if dirfd as i32 == libc::AT_FDCWD {
            let r = paths::object(ctx, syscall, dirfd, c".", nofollow, need)?;
            return Ok((libc::AT_FDCWD as u64, Some(r.kernel.clone()), Some(r)));
        }
        paths::decide_fd(ctx, syscall, dirfd, need)?;
        return Ok((dirfd, p, None));
    }
    let Some(s) = p.as_ref().filter(|_| mediated) else {
        return Ok((dirfd, p, None));
    };
    let r = paths::object(ctx, syscall, dirfd, s, nofollow, need)?;
    Ok((libc::AT_FDCWD as u64, Some(r.kernel.clone()), Some(r)))
}

/// `AT_SYMLINK_NOFOLLOW` for the `l*` calls.
fn at_flags_of(nr: i64) -> u64 {
    if matches!(nr, libc::SYS_lsetxattr | libc::SYS_lremovexattr) {
        libc::AT_SYMLINK_NOFOLLOW as u64
    } else {
        0
    }
}

/// A directory descriptor argument: `AT_FDCWD` or a descriptor that is not the runtime's.
fn dirfd(ctx: &Ctx<'_>, fd: u64) -> Result<(), Errno> {
    if fd as i32 == libc::AT_FDCWD { Ok(()) } else { check_fd(ctx.proc(), fd) }
}

/// `setxattr`/`lsetxattr` (`nr`): `(path, name, value, size, flags)`.
fn set_path(ctx: &Ctx<'_>, nr: i64, a: &[u64; 6]) -> SysResult {
    if a[4] & !SET_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    let n = name(ctx, a[1])?;
    let v = value(ctx, a[2], a[3])?;
    let p = path(ctx, a[0])?;
    let at = libc::AT_FDCWD as u64;
    let (_, p, _held) = decided(ctx, "setxattr", at, p, at_flags_of(nr), Need::Write)?;
    host(nr, [ptr(&p), n.as_ptr() as u64, v.as_ptr() as u64, a[3], a[4], 0])
}

/// `setxattr(path, name, value, size, flags)`, following symlinks.
pub fn setxattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    set_path(ctx, libc::SYS_setxattr, a)
}

/// `lsetxattr(path, name, value, size, flags)`: of a symlink itself.
pub fn lsetxattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    set_path(ctx, libc::SYS_lsetxattr, a)
}

/// `fsetxattr(fd, name, value, size, flags)`.
pub fn fsetxattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    check_fd(ctx.proc(), a[0])?;
    if a[4] & !SET_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    let n = name(ctx, a[1])?;
    let v = value(ctx, a[2], a[3])?;
    paths::decide_fd(ctx, "fsetxattr", a[0], Need::Write)?;
    host(libc::SYS_fsetxattr, [a[0], n.as_ptr() as u64, v.as_ptr() as u64, a[3], a[4], 0])
}

/// `removexattr`/`lremovexattr` (`nr`): `(path, name)`.
fn remove_path(ctx: &Ctx<'_>, nr: i64, a: &[u64; 6]) -> SysResult {
    let n = name(ctx, a[1])?;
    let p = path(ctx, a[0])?;
    let at = libc::AT_FDCWD as u64;
    let (_, p, _held) = decided(ctx, "removexattr", at, p, at_flags_of(nr), Need::Write)?;
    host(nr, [ptr(&p), n.as_ptr() as u64, 0, 0, 0, 0])
}

/// `removexattr(path, name)`, following symlinks.
pub fn removexattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    remove_path(ctx, libc::SYS_removexattr, a)
}

/// `lremovexattr(path, name)`: of a symlink itself.
pub fn lremovexattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    remove_path(ctx, libc::SYS_lremovexattr, a)
}

/// `fremovexattr(fd, name)`.
pub fn fremovexattr(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    check_fd(ctx.proc(), a[0])?;
    let n = name(ctx, a[1])?;
    paths::decide_fd(ctx, "fremovexattr", a[0], Need::Write)?;
    host(libc::SYS_fremovexattr, [a[0], n.as_ptr() as u64, 0, 0, 0, 0])
}

/// `removexattrat(dfd, path, at_flags, name)`.
pub fn removexattrat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    dirfd(ctx, a[0])?;
    if a[2] & !AT_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    let n = name(ctx, a[3])?;
    let p = path(ctx, a[1])?;
    let (d, p, _held) = decided(ctx, "removexattrat", a[0], p, a[2], Need::Write)?;
    host(SYS_REMOVEXATTRAT, [d, ptr(&p), a[2], n.as_ptr() as u64, 0, 0])
}

/// The program's `struct xattr_args` (`usize` bytes at `addr`) as `copy_struct_from_user`
/// takes it: `EINVAL` under 16 bytes, `E2BIG` over a page or with non-zero bytes past the
/// structure. Returns `(value, size, flags)`.
fn xattr_args(ctx: &Ctx<'_>, addr: u64, usize: u64) -> Result<(u64, u32, u32), Errno> {
    if usize < ARGS_SIZE {
        return Err(Errno::EINVAL);
    }
    if usize > ARGS_MAX {
        return Err(Errno(libc::E2BIG));
    }
    let b = copy_in(ctx.proc(), addr, usize)?;
    if b[ARGS_SIZE as usize..].iter().any(|&x| x != 0) {
        return Err(Errno(libc::E2BIG));
    }
    let value = u64::from_ne_bytes(b[0..8].try_into().unwrap());
    let size = u32::from_ne_bytes(b[8..12].try_into().unwrap());
    let flags = u32::from_ne_bytes(b[12..16].try_into().unwrap());
    Ok((value, size, flags))
}

/// A `struct xattr_args` for the kernel.
#[repr(C)]
struct XattrArgs {
    value: u64,
    size: u32,
    flags: u32,
}

/// `setxattrat(dfd, path, at_flags, name, args, usize)`.
pub fn setxattrat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    dirfd(ctx, a[0])?;
    let (value_at, size, flags) = xattr_args(ctx, a[4], a[5])?;
    if a[2] & !AT_FLAGS != 0 || u64::from(flags) & !SET_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    let n = name(ctx, a[3])?;
    let v = value(ctx, value_at, u64::from(size))?;
    let p = path(ctx, a[1])?;
    let (d, p, _held) = decided(ctx, "setxattrat", a[0], p, a[2], Need::Write)?;
    let args = XattrArgs { value: v.as_ptr() as u64, size, flags };
    let argp = &raw const args as u64;
    host(SYS_SETXATTRAT, [d, ptr(&p), a[2], n.as_ptr() as u64, argp, ARGS_SIZE])
}

/// `getxattrat(dfd, path, at_flags, name, args, usize)`: the kernel writes at most
/// `min(size, XATTR_SIZE_MAX)` bytes at `args.value`, which is range-checked for that.
pub fn getxattrat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    dirfd(ctx, a[0])?;
    let (value_at, size, flags) = xattr_args(ctx, a[4], a[5])?;
    if a[2] & !AT_FLAGS != 0 || flags != 0 {
        return Err(Errno::EINVAL);
    }
    let n = name(ctx, a[3])?;
    ctx.proc().check(value_at, u64::from(size).min(SIZE_MAX))?;
    let p = path(ctx, a[1])?;
    let (d, p, _held) = decided(ctx, "getxattrat", a[0], p, a[2], Need::Stat)?;
    let args = XattrArgs { value: value_at, size, flags };
    let argp = &raw const args as u64;
    host(SYS_GETXATTRAT, [d, ptr(&p), a[2], n.as_ptr() as u64, argp, ARGS_SIZE])
}
