//! System-wide settings the kernel guards with capabilities: the host and domain names. The
//! kernel decides who may change them (`CAP_SYS_ADMIN` in the UTS namespace's owner), so they
//! are forwarded, with the name validated; an unprivileged program gets `EPERM` as natively.
//!
//! (The clock calls `adjtimex`, `clock_adjtime`, `clock_settime` and `settimeofday` need only
//! their table entries: `struct timex`, `struct timespec`, `struct timeval` and
//! `struct timezone` are plain data the kernel copies once, in its own order, so a range check
//! is their whole validation and the kernel's checks, `CAP_SYS_TIME` included, give every
//! error.)

use super::Ctx;
use crate::sys::{self, SysResult};

/// Calls the host kernel with already-validated arguments.
#[allow(unsafe_code)]
fn host(nr: i64, a: [u64; 6]) -> SysResult {
    // SAFETY: the name pointer is a range-checked program buffer of the length given, or NULL
    // (nothing is ever mapped at address 0 in the supervisor, so the kernel's copy fails).
    unsafe { sys::syscall6(nr, a) }
}

/// `__NEW_UTS_LEN`: the longest name.
const UTS_LEN: i32 = 64;

/// `sethostname`/`setdomainname` (`nr`): `(name, len)`. The kernel checks the privilege, then
/// the length (`EINVAL` unless 0..=64), and only then reads the name. A name outside the
/// program range is passed on as NULL, so the kernel gives its own answer in its own order:
/// `EPERM`, `EINVAL`, or `EFAULT` where it would read the name.
fn set_name(ctx: &Ctx<'_>, nr: i64, a: &[u64; 6]) -> SysResult {
    let len = a[1] as i32;
    let readable = (0..=UTS_LEN).contains(&len) && ctx.proc().check(a[0], len as u64).is_ok();
    host(nr, [if readable { a[0] } else { 0 }, a[1], 0, 0, 0, 0])
}

/// `sethostname(name, len)`.
pub fn sethostname(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    set_name(ctx, libc::SYS_sethostname, a)
}

/// `setdomainname(name, len)`.
pub fn setdomainname(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    set_name(ctx, libc::SYS_setdomainname, a)
}
