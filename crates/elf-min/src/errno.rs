//! The Linux x86-64 `errno` values this crate reports (`include/uapi/asm-generic/errno*.h`).
//!
//! Defined here so the planner stays `no_std` without a libc dependency.

/// No such file or directory.
pub const ENOENT: i32 = 2;
/// I/O error (Linux: a short read of the interpreter's header or path).
pub const EIO: i32 = 5;
/// Argument list too long.
pub const E2BIG: i32 = 7;
/// Exec format error.
pub const ENOEXEC: i32 = 8;
/// Out of memory / address space.
pub const ENOMEM: i32 = 12;
/// Permission denied (not executable, not a regular file).
pub const EACCES: i32 = 13;
/// Bad address.
pub const EFAULT: i32 = 14;
/// Not a directory (a path component).
pub const ENOTDIR: i32 = 20;
/// Is a directory.
pub const EISDIR: i32 = 21;
/// Invalid argument.
pub const EINVAL: i32 = 22;
/// File name too long.
pub const ENAMETOOLONG: i32 = 36;
/// Too many levels of symbolic links.
pub const ELOOP: i32 = 40;
/// Accessing a corrupted shared library (an unusable ELF interpreter).
pub const ELIBBAD: i32 = 80;

/// The symbolic name of `errno` (`"ENOEXEC"`), or `None` for values this crate does not name.
pub fn name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        ENOENT => "ENOENT",
        EIO => "EIO",
        E2BIG => "E2BIG",
        ENOEXEC => "ENOEXEC",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EFAULT => "EFAULT",
        ENOTDIR => "ENOTDIR",
        EISDIR => "EISDIR",
        EINVAL => "EINVAL",
        ENAMETOOLONG => "ENAMETOOLONG",
        ELOOP => "ELOOP",
        ELIBBAD => "ELIBBAD",
        _ => return None,
    })
}
