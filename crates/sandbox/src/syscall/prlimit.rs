//! `prlimit64` on another process. Limits of the calling process (pid 0, its own pid, or the
//! id of any of its threads, which share its limits) are `emul`'s, which keeps the program's
//! view of `RLIMIT_AS` and `RLIMIT_DATA` apart from the supervisor's.
//!
//! Another process's limits are the kernel's business: it finds the process (`ESRCH`) and
//! checks the caller may change it (`EPERM`: same user, or `CAP_SYS_RESOURCE`). The one
//! exception: setting another process's `RLIMIT_AS` or `RLIMIT_DATA` gets `EPERM` after the
//! kernel's own checks passed, and so does setting its `RLIMIT_NOFILE` or `RLIMIT_SIGPENDING`.
//! If that process is sandboxed (every child of a sandboxed program is), the host limit would
//! bind its supervisor (whose reservation for the program far exceeds any address-space limit,
//! whose descriptors sit at the top of the descriptor limit, whose threads kick each other with
//! real-time signals), while the program's view of the limit lives in that supervisor's memory
//! out of our reach. Reading them gives the host's values.

use super::{Ctx, copy_in};
use crate::errno::Errno;
use crate::sys::{self, SysResult};

/// Calls the host kernel with already-validated arguments.
#[allow(unsafe_code)]
fn host(nr: i64, a: [u64; 6]) -> SysResult {
    // SAFETY: the new limit is a supervisor copy alive across the call, the old one a
    // range-checked 16-byte program buffer (or NULL).
    unsafe { sys::syscall6(nr, a) }
}

/// Whether `pid` names the calling process: 0, its pid, or one of its threads.
pub fn is_self(pid: i32) -> bool {
    pid == 0
        || pid == std::process::id() as i32
        || (pid > 0 && std::path::Path::new(&format!("/proc/self/task/{pid}")).exists())
}

/// `prlimit64(pid, resource, new, old)` for a `pid` that is not the calling process.
/// `new` and `old` are program pointers to 16-byte `struct rlimit64`s (or NULL).
pub fn other(ctx: &Ctx<'_>, pid: i32, resource: u32, new: u64, old: u64) -> SysResult {
    let new = if new != 0 { Some(copy_in(ctx.proc(), new, 16)?) } else { None };
    if old != 0 {
        ctx.proc().check(old, 16)?;
    }
    if let Some(n) = &new
        && matches!(
            resource,
            libc::RLIMIT_AS | libc::RLIMIT_DATA | libc::RLIMIT_NOFILE | libc::RLIMIT_SIGPENDING
        )
    {
        // The kernel's answers first, changing nothing: no such process, not permitted.
        host(libc::SYS_prlimit64, [pid as u64, u64::from(resource), 0, 0, 0, 0])?;
        let cur = u64::from_ne_bytes(n[..8].try_into().unwrap());
        let max = u64::from_ne_bytes(n[8..].try_into().unwrap());
        return Err(if cur > max { Errno::EINVAL } else { Errno::EPERM });
    }
    let newp = new.as_ref().map_or(0, |n| n.as_ptr() as u64);
    let r = host(libc::SYS_prlimit64, [pid as u64, u64::from(resource), newp, old, 0, 0])?;
    if resource == libc::RLIMIT_NOFILE && old != 0 && is_our_child(pid) {
        // A child of ours is sandboxed: its program sees its limit less its runtime's
        // descriptor window, as we see ours (the window is the same size in the whole tree).
        let floor = crate::fdwin::window().floor() as u64;
        let window = sys::getrlimit(libc::RLIMIT_NOFILE).rlim_cur.saturating_sub(floor);
        let mut b = [0u8; 16];
        crate::uaccess::copy_in_to(ctx.proc(), old, &mut b)?;
        for half in b.chunks_exact_mut(8) {
            let v = u64::from_ne_bytes(half.try_into().unwrap());
            if v != libc::RLIM_INFINITY {
                half.copy_from_slice(&v.saturating_sub(window).to_ne_bytes());
            }
        }
        super::copy_out(ctx.proc(), old, &b)?;
    }
    Ok(r)
}

/// Whether process `pid` is a child of this one (its parent in `/proc/PID/stat`).
fn is_our_child(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; the last ')' ends it.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { return false };
    rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id())
}
