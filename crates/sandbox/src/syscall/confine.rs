//! Process confinement (every policy but null): the calls that signal or query a process by
//! its id reach only the sandbox's own processes ([`crate::family`]); another process answers
//! `ESRCH` (it does not exist, as far as the program can tell), a process group or user as a
//! whole `EPERM` where it would reach past the sandbox. What belongs to the whole host (its
//! clock, its names) is not the program's to change (`EPERM`).

use super::Ctx;
use crate::errno::Errno;
use crate::family;
use crate::sys::SysResult;

const ESRCH: Errno = Errno(libc::ESRCH);

/// The outcome of call `nr` with arguments `a` under confinement when it differs from the
/// call's own: `Some(result)` (refused, or carried out here for a group), `None` to go on.
pub fn gate(ctx: &mut Ctx<'_>, nr: u64, a: &[u64; 6]) -> Option<SysResult> {
    if !ctx.proc().policy.confines_processes() {
        return None;
    }
    let pid = a[0] as i32;
    // 0 is the caller; a negative pid names no process for these calls (the kernel answers
    // EINVAL, as natively).
    let ours = |p: i32| p <= 0 || family::contains(p);
    let refuse = |ok: bool| if ok { None } else { Some(Err(ESRCH)) };
    match nr {
        // kill: a process, or a group (0, -1, -PGID) as the sandbox's members of it.
        62 if pid > 0 => refuse(family::contains(pid)),
        62 => Some(kill_group(ctx, pid, a[1])),
        // tkill(tid), tgkill(tgid, tid), rt_sigqueueinfo(tgid), rt_tgsigqueueinfo(tgid, tid).
        200 => refuse(pid <= 0 || family::contains_thread(pid)),
        129 | 234 | 297 => refuse(ours(pid)),
        // pidfd_open(pid): a descriptor to signal or wait for it with.
        434 => refuse(ours(pid)),
        // prlimit64 and the scheduler calls by pid (0: the caller).
        302 | 142..=145 | 148 | 203 | 204 | 314 | 315 => refuse(ours(pid)),
        // getpriority/setpriority(which, who): PRIO_PROCESS only; a group or a user would
        // reach other processes.
        140 | 141 => match a[0] {
            0 => refuse(ours(a[1] as i32)),
            _ => Some(Err(Errno::EPERM)),
        },
        // getpgid(pid), getsid(pid): another process's group or session tells it exists.
        121 | 124 => refuse(ours(pid)),
        // capget(header, data): the pid is in the header.
        125 => Some(capget(ctx, a)),
        // The host's clock and names are the whole system's: settimeofday, clock_settime,
        // sethostname, setdomainname refused; adjtimex, clock_adjtime only as a query.
        170 | 171 => Some(Err(Errno::EPERM)),
        164 => Some(settimeofday(ctx, a)),
        227 => Some(clock_settime(ctx, a)),
        159 | 305 => Some(adjtime_query(ctx, nr, a)),
        _ => None,
    }
}

/// Whether the program may make `owner` the receiver of a descriptor's `SIGIO`/`SIGURG`
/// (`F_SETOWN` and friends: the kernel signals it later, on the program's behalf): `pid > 0`
/// a process (a thread with `thread`), `pid < 0` the group `-pid`, 0 nobody. Under
/// confinement only the sandbox's own processes, and a group one of them leads (`ESRCH`,
/// `EPERM` for another group), as `kill` is confined.
pub fn may_own(ctx: &Ctx<'_>, owner: i32, thread: bool) -> Result<(), Errno> {
    if !ctx.proc().policy.confines_processes() || owner == 0 {
        return Ok(());
    }
    if owner > 0 {
        let ok = if thread { family::contains_thread(owner) } else { family::contains(owner) };
        return if ok { Ok(()) } else { Err(ESRCH) };
    }
    let g = owner.checked_neg().ok_or(Errno::EINVAL)?;
    if family::contains(g) && pgid_of(g) == g && group_is_ours(g) {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// Whether every process of process group `g` is one of the sandbox's. A group the sandbox
/// leads may hold processes outside it: a shell with job control puts a whole pipeline in the
/// group of its first command, the sandbox (found by an attack run: SIGIO to `-pgid` killed
/// the next command of the pipeline). Read from `/proc/PID/stat` (`pgrp`, field 5); a process
/// that cannot be read counts as outside.
fn group_is_ours(g: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else { return false };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let after = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
        let pgrp = after.split_whitespace().nth(2).and_then(|v| v.parse::<i32>().ok());
        match pgrp {
            Some(p) if p == g && !family::contains(pid) => return false,
            None => return false,
            _ => {}
        }
    }
    true
}

/// The process group of process `p` (-1 if there is none).
fn pgid_of(p: i32) -> i32 {
    #[allow(unsafe_code)]
    // SAFETY: getpgid takes no pointers.
    unsafe {
        libc::getpgid(p)
    }
}

/// `capget(header, data)` under confinement: the header (`{ u32 version; int pid; }`) is
/// copied and decided on (another process's capabilities: `ESRCH`), and the kernel gets the
/// copy, which it may write the preferred version into (copied back, as Linux writes it).
fn capget(ctx: &Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let mut hdr = crate::uaccess::copy_in(ctx.proc(), a[0], 8)?;
    let pid = i32::from_ne_bytes(hdr[4..8].try_into().expect("4 bytes"));
    if pid > 0 && !family::contains(pid) {
        return Err(ESRCH);
    }
    if a[1] != 0 {
        ctx.proc().check(a[1], 24)?;
    }
    #[allow(unsafe_code)]
    // SAFETY: `hdr` is a supervisor copy of the 8-byte header alive across the call; `a[1]` is
    // NULL or a range-checked program buffer of the 24 bytes the kernel writes at most.
    let r = unsafe {
        crate::sys::syscall6(libc::SYS_capget, [hdr.as_mut_ptr() as u64, a[1], 0, 0, 0, 0])
    };
    crate::uaccess::copy_out(ctx.proc(), a[0], &hdr)?;
    r
}

/// `clock_settime(clock, tp)` refused as Linux refuses it to a program without
/// `CAP_SYS_TIME` (`kernel/time/posix-timers.c`, `do_sys_settimeofday64`): a clock that cannot
/// be set (every static clock but `CLOCK_REALTIME`) `EINVAL` first, then an unreadable `tp`
/// `EFAULT`, an invalid time `EINVAL`, and `EPERM`; CPU-time and descriptor clocks (negative
/// ids) `EPERM`.
fn clock_settime(ctx: &Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let clock = a[0] as i32;
    if clock < 0 {
        return Err(Errno::EPERM);
    }
    if clock != libc::CLOCK_REALTIME {
        return Err(Errno::EINVAL);
    }
    let tp = crate::uaccess::copy_in(ctx.proc(), a[1], 16)?;
    let sec = i64::from_ne_bytes(tp[0..8].try_into().expect("8 bytes"));
    let nsec = i64::from_ne_bytes(tp[8..16].try_into().expect("8 bytes"));
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Err(Errno::EPERM)
}

/// `settimeofday(tv, tz)` refused as Linux refuses it without `CAP_SYS_TIME`
/// (`kernel/time/time.c`): an unreadable `tv` or `tz` `EFAULT`, an invalid `tv` `EINVAL`
/// (microseconds outside `[0, 10^6)`, negative seconds), then `EPERM`.
fn settimeofday(ctx: &Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[0] != 0 {
        let tv = crate::uaccess::copy_in(ctx.proc(), a[0], 16)?;
        let sec = i64::from_ne_bytes(tv[0..8].try_into().expect("8 bytes"));
        let usec = i64::from_ne_bytes(tv[8..16].try_into().expect("8 bytes"));
        if !(0..1_000_000).contains(&usec) {
            return Err(Errno::EINVAL);
        }
        if a[1] != 0 {
            crate::uaccess::copy_in(ctx.proc(), a[1], 8)?;
        }
        if sec < 0 {
            return Err(Errno::EINVAL);
        }
    } else if a[1] != 0 {
        crate::uaccess::copy_in(ctx.proc(), a[1], 8)?;
    }
    Err(Errno::EPERM)
}

/// `adjtimex(buf)`, `clock_adjtime(clock, buf)` as a query only (`modes` 0), made on a copy of
/// the program's `struct timex` (the kernel reads what was decided on), the result copied back.
fn adjtime_query(ctx: &Ctx<'_>, nr: u64, a: &[u64; 6]) -> SysResult {
    let addr = if nr == 159 { a[0] } else { a[1] };
    let mut buf = crate::uaccess::copy_in(ctx.proc(), addr, super::table::TIMEX)?;
    if u32::from_ne_bytes(buf[0..4].try_into().unwrap()) != 0 {
        return Err(Errno::EPERM);
    }
    let args = if nr == 159 {
        [buf.as_mut_ptr() as u64, 0, 0, 0, 0, 0]
    } else {
        [a[0], buf.as_mut_ptr() as u64, 0, 0, 0, 0]
    };
    #[allow(unsafe_code)]
    // SAFETY: adjtimex/clock_adjtime with a query (modes 0, which changes nothing) on `buf`, a
    // supervisor copy of the size of struct timex alive across the call.
    let r = unsafe { crate::sys::syscall6(nr as i64, args) }?;
    crate::uaccess::copy_out(ctx.proc(), addr, &buf)?;
    Ok(r)
}

/// `kill(pid <= 0, sig)`: 0 is the caller's process group, -1 every process it may signal,
/// -PGID a group; each means the sandbox's members of it only (the caller last, as the
/// kernel signals it too). `ESRCH` when there is none.
fn kill_group(ctx: &mut Ctx<'_>, pid: i32, sig: u64) -> SysResult {
    let me = std::process::id() as i32;
    #[allow(unsafe_code)]
    // SAFETY: getpgrp takes no pointers and cannot fail.
    let mine = unsafe { libc::getpgrp() };
    let mut targets: Vec<i32> = family::members()
        .into_iter()
        .filter(|&p| match pid {
            0 => pgid_of(p) == mine,
            -1 => p != me,
            g => pgid_of(p) == -g,
        })
        .collect();
    targets.sort_by_key(|&p| p == me);
    if targets.is_empty() {
        return Err(ESRCH);
    }
    let (mut sent, mut last) = (false, ESRCH);
    for t in targets {
        match super::emul::kill(ctx, &[t as u64, sig, 0, 0, 0, 0]) {
            Ok(_) => sent = true,
            Err(e) => last = e,
        }
    }
    if sent { Ok(0) } else { Err(last) }
}
