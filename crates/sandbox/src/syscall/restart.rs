//! Host calls a host signal interrupted for nothing.
//!
//! The supervisor catches every signal the program may receive, so a forwarded call that
//! blocks on the host returns `EINTR` whenever a host signal arrives, also when Linux would
//! not have disturbed the program's call at all: the signal is blocked by the calling
//! thread, another thread takes it, it is the runtime's own (a kick meant for another thread,
//! `exec` ending threads), or its disposition does nothing (`SIGCHLD` at `SIG_DFL`). Then the
//! call is carried on here, without a trip through the guest, and a relative timeout keeps
//! counting from the first attempt, as Linux's `restart_syscall` does: without that, a
//! `nanosleep` interrupted every few milliseconds would never end. Calls whose timeout the
//! kernel updates itself (`select`, `pselect6`, `ppoll`) and absolute deadlines need no
//! adjustment; other relative ones (`io_getevents`, `recvmmsg`, `SO_RCVTIMEO`) start over.

use std::time::{Duration, Instant};

use dune::Syscall;

use super::table::{Imp, Spec};
use super::{Ctx, forward_as};
use crate::errno::Errno;
use crate::sys::{self, SysResult};

/// `TIMER_ABSTIME` for `clock_nanosleep`.
const TIMER_ABSTIME: u64 = 1;
/// `FUTEX_WAIT` (without `FUTEX_CLOCK_REALTIME`), `FUTEX_WAIT_BITSET`,
/// `FUTEX_BITSET_MATCH_ANY`; `FUTEX_PRIVATE_FLAG` is 128.
const FUTEX_WAIT: u64 = 0;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_BITSET_MATCH_ANY: u64 = 0xffff_ffff;

/// Emulated calls that only validate (and decide) and forward, so that running them again is
/// running the host call again: the vector and message I/O calls, `fcntl` (`F_SETLKW`),
/// `ioctl`, `futex`, and the socket calls the firewall mediates (`syscall::net`: their first
/// host call through `sys::syscall6` is the call itself, or the wait for the guard's answer).
fn emulated_forwarder(nr: u64) -> bool {
    matches!(nr, 16 | 19 | 20 | 46 | 47 | 72 | 202 | 295 | 296 | 299 | 307 | 327 | 328)
        || NET_CALLS.contains(&nr)
}

/// `socket`, `connect`, `accept`, `sendto`, `bind`, `listen`, `socketpair`, `accept4`.
const NET_CALLS: [u64; 8] = [41, 42, 43, 44, 49, 50, 53, 288];

/// A relative timeout being counted down across attempts.
#[derive(Clone, Copy, Debug)]
enum Timeout {
    /// The call has none, or the kernel keeps it itself.
    Kept,
    /// Milliseconds in argument `arg` (`poll`, `epoll_wait`).
    Millis { arg: usize, deadline: Instant },
    /// A `struct timespec` that argument `arg` points to (`nanosleep`, `clock_nanosleep`).
    Timespec { arg: usize, deadline: Instant },
    /// `FUTEX_WAIT`'s relative timeout: later attempts wait for the same absolute deadline
    /// (`FUTEX_WAIT_BITSET` on `CLOCK_MONOTONIC`, which is what `FUTEX_WAIT` is).
    Futex { deadline: libc::timespec },
}

/// Reads a relative `struct timespec` of the program; `None` if it is unreadable or invalid
/// (the call then fails by itself).
fn duration_at(ctx: &Ctx<'_>, addr: u64) -> Option<Duration> {
    let b = super::copy_in(ctx.proc(), addr, 16).ok()?;
    let sec = i64::from_ne_bytes(b[0..8].try_into().unwrap());
    let nsec = i64::from_ne_bytes(b[8..16].try_into().unwrap());
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return None;
    }
    Some(Duration::new(sec as u64, nsec as u32))
}

/// Wall clocks, whose relative sleeps count real time (not the CPU-time clocks).
fn wall_clock(id: u64) -> bool {
    matches!(id as i32, 0 | 1 | 7 | 8 | 9 | 11) // REALTIME MONOTONIC BOOTTIME *_ALARM TAI
}

fn monotonic_now() -> libc::timespec {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    #[allow(unsafe_code)]
    // SAFETY: clock_gettime writes only `ts`.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts)
    };
    ts
}

/// `ts + d`, saturating (a program may ask for any timeout).
fn add(ts: libc::timespec, d: Duration) -> libc::timespec {
    let nsec = ts.tv_nsec + i64::from(d.subsec_nanos());
    let sec = ts.tv_sec.saturating_add(d.as_secs().min(i64::MAX as u64) as i64);
    libc::timespec {
        tv_sec: sec.saturating_add(nsec / 1_000_000_000),
        tv_nsec: nsec % 1_000_000_000,
    }
}

impl Timeout {
    fn of(ctx: &Ctx<'_>, sc: &Syscall) -> Timeout {
        let a = &sc.args;
        let now = Instant::now();
        let ms = |arg: usize| {
            let ms = a[arg] as i32;
            if ms < 0 {
                Timeout::Kept
            } else {
                Timeout::Millis { arg, deadline: now + Duration::from_millis(ms as u64) }
            }
        };
        let ts = |arg: usize| match duration_at(ctx, a[arg]) {
            Some(d) => Timeout::Timespec { arg, deadline: now + d },
            None => Timeout::Kept,
        };
        match sc.nr {
            7 => ms(2),                                                    // poll
            232 => ms(3),                                                  // epoll_wait
            35 => ts(0),                                                   // nanosleep
            230 if a[1] & TIMER_ABSTIME == 0 && wall_clock(a[0]) => ts(2), // clock_nanosleep
            202 if (a[1] & !128) == FUTEX_WAIT && a[3] != 0 => match duration_at(ctx, a[3]) {
                Some(d) => Timeout::Futex { deadline: add(monotonic_now(), d) },
                None => Timeout::Kept,
            },
            _ => Timeout::Kept,
        }
    }
}

/// Performs `sc` (already allowed by the policy), carrying it on while a host signal
/// interrupts it for nothing (see the module documentation). Host calls that may block are
/// cancellation points ([`sys::cancellable`]: a signal recorded since the thread's last safe
/// point keeps the call from starting, [`sys::NOT_STARTED`], and the program takes the signal
/// first), and run with the kick signal unblocked ([`dune::with_kick_unblocked`]), so that one
/// another process sends with that number interrupts them as any program signal would.
pub(super) fn call(ctx: &mut Ctx<'_>, sc: &Syscall, spec: &Spec) -> SysResult {
    let resumable = matches!(spec.imp, Imp::Forward) || emulated_forwarder(sc.nr);
    if !resumable {
        return once(ctx, sc, spec, None);
    }
    let timeout = Timeout::of(ctx, sc);
    // The calls the switchless server may serve never block (but `read` and `pread64` of
    // anything but a regular file): no need to unblock the kick for them, nor to make them
    // cancellation points.
    let may_block = !crate::switchless::eligible(sc.nr) || matches!(sc.nr, 0 | 17);
    let attempt = |ctx: &mut Ctx<'_>, again, seen| {
        if may_block {
            dune::with_kick_unblocked(|| sys::cancellable(seen, || once(ctx, sc, spec, again)))
        } else {
            once(ctx, sc, spec, again)
        }
    };
    let seen = ctx.thread.arrivals_seen(sc.return_rip);
    let mut r = attempt(ctx, None, seen);
    while r == Err(Errno(libc::EINTR)) || r == Err(sys::NOT_STARTED) {
        let seen = sys::arrivals();
        if !ctx.thread.may_resume_call() {
            break;
        }
        r = attempt(ctx, Some(timeout), seen);
    }
    r
}

/// One attempt; `again` carries the timeout of a later attempt.
fn once(ctx: &mut Ctx<'_>, sc: &Syscall, spec: &Spec, again: Option<Timeout>) -> SysResult {
    let mut args = sc.args;
    let left = |deadline: Instant| deadline.saturating_duration_since(Instant::now());
    match again {
        Some(Timeout::Millis { arg, deadline }) => {
            // Rounded up, as the kernel rounds a poll timeout.
            let l = left(deadline);
            args[arg] = (l.as_nanos().div_ceil(1_000_000)).min(i32::MAX as u128) as u64;
        }
        Some(Timeout::Timespec { arg, deadline }) => {
            let l = left(deadline);
            let ts = libc::timespec {
                tv_sec: l.as_secs() as libc::time_t,
                tv_nsec: l.subsec_nanos() as libc::c_long,
            };
            // Validated as the program passed it; the host sleeps for what is left.
            return forward_as(ctx.proc(), sc.nr, spec, args, Some((arg, &raw const ts as u64)));
        }
        Some(Timeout::Futex { deadline }) => {
            ctx.proc().check(args[0], 4)?;
            let op = FUTEX_WAIT_BITSET | (args[1] & 128);
            #[allow(unsafe_code)]
            // SAFETY: the futex word was checked to lie in the program range; `deadline` is a
            // local that outlives the call; FUTEX_WAIT_BITSET reads nothing else.
            return unsafe {
                sys::syscall6(
                    libc::SYS_futex,
                    [args[0], op, args[2], &raw const deadline as u64, 0, FUTEX_BITSET_MATCH_ANY],
                )
            };
        }
        Some(Timeout::Kept) | None => {}
    }
    match spec.imp {
        Imp::Forward => super::forward_ctx(ctx, sc.nr, spec, args),
        Imp::Emulate(h) => h(ctx, &args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_carry_nanoseconds() {
        let t =
            add(libc::timespec { tv_sec: 5, tv_nsec: 900_000_000 }, Duration::new(1, 200_000_000));
        assert_eq!((t.tv_sec, t.tv_nsec), (7, 100_000_000));
        let t = add(libc::timespec { tv_sec: 1, tv_nsec: 900_000_000 }, Duration::MAX);
        assert_eq!(t.tv_sec, i64::MAX);
    }

    #[test]
    fn cpu_time_clocks_are_not_wall_clocks() {
        assert!(wall_clock(libc::CLOCK_MONOTONIC as u64));
        assert!(wall_clock(libc::CLOCK_REALTIME as u64));
        assert!(!wall_clock(libc::CLOCK_PROCESS_CPUTIME_ID as u64));
        assert!(!wall_clock(libc::CLOCK_THREAD_CPUTIME_ID as u64));
    }
}
