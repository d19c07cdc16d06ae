//! System calls the supervisor implements itself, or forwards only after custom validation
//! (nested pointers, memory management, process state).

use super::{Ctx, Exit, check_fd, copy_cstr, copy_in, copy_out, read_u64};
use crate::errno::Errno;
use crate::mm::{Kind, PAGE, page_up};
use crate::signals::{self, Action};
use crate::sys::{self, SysResult};

/// Calls the host kernel with already-validated arguments.
#[allow(unsafe_code)]
fn host(nr: i64, a: [u64; 6]) -> SysResult {
    // SAFETY: every caller in this module validated each pointer (program range or a supervisor
    // copy kept alive across the call) and each descriptor before calling.
    unsafe { sys::syscall6(nr, a) }
}

/// Calls that exist but are not supported in the sandbox yet: `ENOSYS`, so libraries fall
/// back where they can (glibc does for `clone3` and `rseq`).
pub fn unsupported(_: &mut Ctx<'_>, _: &[u64; 6]) -> SysResult {
    Err(Errno::ENOSYS)
}

// ---------------------------------------------------------------------------------------------
// Process lifetime.

pub fn exit(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    ctx.exit = Some(Exit::Thread((a[0] & 0xff) as i32));
    Ok(0)
}

pub fn exit_group(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    ctx.exit = Some(Exit::Group((a[0] & 0xff) as i32));
    Ok(0)
}

pub fn set_tid_address(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    ctx.thread.clear_child_tid = a[0];
    Ok(ctx.thread.tid as u64)
}

pub fn set_robust_list(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    // sizeof(struct robust_list_head) on x86-64.
    if a[1] != 24 {
        return Err(Errno::EINVAL);
    }
    ctx.thread.robust_list = (a[0], a[1]);
    ctx.proc().set_robust_list(ctx.thread.tid, a[0]);
    Ok(0)
}

pub fn get_robust_list(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[0] != 0 && a[0] as i32 != sys::gettid() {
        return Err(Errno(libc::ESRCH));
    }
    let (head, len) = ctx.thread.robust_list;
    copy_out(ctx.proc(), a[1], &head.to_ne_bytes())?;
    copy_out(ctx.proc(), a[2], &len.to_ne_bytes())?;
    Ok(0)
}

pub fn personality(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    // Only the query and PER_LINUX are accepted: other personalities change how the *host*
    // kernel treats the supervisor (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, ...).
    let old = ctx.proc().personality.load(std::sync::atomic::Ordering::Relaxed);
    match a[0] as u32 {
        0xffff_ffff => Ok(old),
        0 => {
            ctx.proc().personality.store(0, std::sync::atomic::Ordering::Relaxed);
            Ok(old)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn arch_prctl(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    const ARCH_SET_GS: u64 = 0x1001;
    const ARCH_SET_FS: u64 = 0x1002;
    const ARCH_GET_FS: u64 = 0x1003;
    const ARCH_GET_GS: u64 = 0x1004;
    let canonical = |v: u64| v < (1 << 47);
    let verr = |_| Errno(libc::EIO);
    match a[0] {
        ARCH_SET_FS | ARCH_SET_GS => {
            if !canonical(a[1]) {
                return Err(Errno::EPERM);
            }
            let mut s = ctx.thread.vcpu.sregs().map_err(verr)?;
            if a[0] == ARCH_SET_FS {
                s.fs.base = a[1];
            } else {
                s.gs.base = a[1];
            }
            ctx.thread.vcpu.set_sregs(&s).map_err(verr)?;
            Ok(0)
        }
        ARCH_GET_FS | ARCH_GET_GS => {
            let s = ctx.thread.vcpu.sregs().map_err(verr)?;
            let v = if a[0] == ARCH_GET_FS { s.fs.base } else { s.gs.base };
            copy_out(ctx.proc(), a[1], &v.to_ne_bytes())?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn prctl(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    match a[0] as i32 {
        // Name of the calling thread: 16 bytes.
        libc::PR_SET_NAME => {
            let name = copy_in(ctx.proc(), a[1], 16)
                .or_else(|_| copy_cstr(ctx.proc(), a[1], 16).map(|s| s.into_bytes_with_nul()))?;
            host(libc::SYS_prctl, [a[0], name.as_ptr() as u64, 0, 0, 0, 0])
        }
        libc::PR_GET_NAME => {
            ctx.proc().check(a[1], 16)?;
            host(libc::SYS_prctl, [a[0], a[1], 0, 0, 0, 0])
        }
        libc::PR_GET_DUMPABLE
        | libc::PR_SET_DUMPABLE
        | libc::PR_GET_NO_NEW_PRIVS
        | libc::PR_SET_NO_NEW_PRIVS
        | libc::PR_GET_TIMERSLACK
        | libc::PR_SET_TIMERSLACK
        | libc::PR_CAPBSET_READ
        | libc::PR_GET_KEEPCAPS
        | libc::PR_SET_KEEPCAPS
        | libc::PR_GET_CHILD_SUBREAPER
        | libc::PR_SET_CHILD_SUBREAPER => host(libc::SYS_prctl, *a),
        libc::PR_GET_PDEATHSIG => {
            ctx.proc().check(a[1], 4)?;
            host(libc::SYS_prctl, [a[0], a[1], 0, 0, 0, 0])
        }
        // The parent's death signal comes from the parent: a program signal whatever its
        // number (see the routes of signals, before `kill`).
        libc::PR_SET_PDEATHSIG => host(libc::SYS_prctl, [a[0], a[1], 0, 0, 0, 0]),
        // Everything else (PR_SET_MM, PR_SET_SECCOMP, PR_SET_PTRACER, ...) would change the
        // supervisor, not just the program.
        _ => Err(Errno::EINVAL),
    }
}

pub fn prlimit64(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    rlimit(ctx, a[0], a[1] as u32, a[2], a[3])
}

/// `getrlimit(2)`: the x86-64 `struct rlimit` is `prlimit64`'s, so it shares the path.
pub fn getrlimit(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    rlimit(ctx, 0, a[0] as u32, 0, a[1])
}

/// `setrlimit(2)`, through the same path as `prlimit64`.
pub fn setrlimit(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    rlimit(ctx, 0, a[0] as u32, a[1], 0)
}

/// The one implementation of get/set resource limits for the calling process (`pid` 0, our
/// own or one of our threads; other processes: `prlimit::other`). `new` and `old` are program
/// pointers to 16-byte `struct rlimit64`s.
fn rlimit(ctx: &mut Ctx<'_>, pid: u64, resource: u32, new: u64, old: u64) -> SysResult {
    let pid = pid as i32;
    if !super::prlimit::is_self(pid) {
        return super::prlimit::other(ctx, pid, resource, new, old);
    }
    let new = if new != 0 { Some(copy_in(ctx.proc(), new, 16)?) } else { None };
    if resource == libc::RLIMIT_NOFILE {
        return nofile(ctx, new, old);
    }
    // Limits on the address space or data size would count the supervisor's reservation and
    // starve the supervisor itself, and one on pending signals would stop its kicks (real-time
    // signals between its threads): the program's own view of them is kept apart.
    if matches!(resource, libc::RLIMIT_AS | libc::RLIMIT_DATA | libc::RLIMIT_SIGPENDING) {
        if let Some(n) = &new {
            let cur = u64::from_ne_bytes(n[..8].try_into().unwrap());
            let max = u64::from_ne_bytes(n[8..].try_into().unwrap());
            if cur > max {
                return Err(Errno::EINVAL);
            }
            // Raising the hard limit takes CAP_SYS_RESOURCE (kernel/sys.c, do_prlimit).
            let view = ctx.proc().rlimit_view(resource);
            let old_max = u64::from_ne_bytes(view[8..].try_into().unwrap());
            if max > old_max && !sys::has_effective_cap(24 /* CAP_SYS_RESOURCE */) {
                return Err(Errno::EPERM);
            }
        }
        if old != 0 {
            let view = ctx.proc().rlimit_view(resource);
            copy_out(ctx.proc(), old, &view)?;
        }
        if let Some(n) = new {
            let cur = u64::from_ne_bytes(n[..8].try_into().unwrap());
            let mut mm = ctx.proc().mm.lock().unwrap();
            match resource {
                libc::RLIMIT_AS => mm.limits.address_space = cur,
                libc::RLIMIT_DATA => mm.limits.data = cur,
                _ => {}
            }
            drop(mm);
            ctx.proc().set_rlimit_view(resource, n);
        }
        return Ok(0);
    }
    if old != 0 {
        ctx.proc().check(old, 16)?;
    }
    let newp = new.as_ref().map_or(0, |n| n.as_ptr() as u64);
    host(libc::SYS_prlimit64, [0, u64::from(resource), newp, old, 0, 0])
}

/// `RLIMIT_NOFILE` of the program: its own view ([`crate::fdwin`]), never the host's, which
/// the runtime's descriptors depend on. The hard limit is the runtime's window floor: a program
/// can lower its soft limit (enforced as the kernel would) and raise it back up to that.
fn nofile(ctx: &mut Ctx<'_>, new: Option<Vec<u8>>, old: u64) -> SysResult {
    let win = crate::fdwin::window();
    let (cur, max) = win.program_limit();
    let new = new.map(|n| {
        let word = |i: usize| u64::from_ne_bytes(n[i..i + 8].try_into().unwrap());
        (word(0), word(8))
    });
    if let Some((c, m)) = new {
        if c > m {
            return Err(Errno::EINVAL);
        }
        // Raising the hard limit needs CAP_SYS_RESOURCE natively; here it cannot be done.
        if m > max {
            return Err(Errno::EPERM);
        }
    }
    if old != 0 {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&cur.to_ne_bytes());
        b[8..].copy_from_slice(&max.to_ne_bytes());
        copy_out(ctx.proc(), old, &b)?;
    }
    if let Some((c, _)) = new {
        win.set_program_limit(c);
    }
    Ok(0)
}

pub fn getcpu(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    for &p in &a[..2] {
        if p != 0 {
            ctx.proc().check(p, 4)?;
        }
    }
    host(libc::SYS_getcpu, [a[0], a[1], 0, 0, 0, 0])
}

// ---------------------------------------------------------------------------------------------
// Signals: the program's dispositions and mask are kept by the supervisor and never installed
// in the host process (a program handler address installed on the host would run program code
// with the supervisor's privileges). Delivery to program handlers comes with signal support.

/// Kernel `struct sigaction` on x86-64: handler, flags, restorer, mask (8 bytes each).
const KSIGACTION: u64 = 32;

pub fn rt_sigaction(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let sig = a[0] as i32;
    if a[3] != 8 || !(1..=64).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    let new = if a[1] != 0 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            return Err(Errno::EINVAL);
        }
        let b: [u8; 32] = copy_in(ctx.proc(), a[1], KSIGACTION)?.try_into().unwrap();
        let mut act = Action::from_bytes(&b);
        act.mask &= !signals::UNBLOCKABLE;
        Some(act)
    } else {
        None
    };
    let old = ctx.proc().action(sig);
    if a[2] != 0 {
        copy_out(ctx.proc(), a[2], &old.to_bytes())?;
    }
    if let Some(n) = new {
        ctx.proc().actions.lock().unwrap()[sig as usize] = n;
        let ignored = signals::host_ignores(sig, &n);
        if ignored {
            sys::discard_signal(sig);
        }
        sys::mirror_disposition(sig, ignored, n.flags & signals::SA_NOCLDWAIT != 0);
    }
    Ok(0)
}

pub fn rt_sigprocmask(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[3] != 8 {
        return Err(Errno::EINVAL);
    }
    let set = if a[1] != 0 { Some(read_u64(ctx.proc(), a[1])?) } else { None };
    let old = ctx.thread.sigmask;
    if let Some(set) = set {
        ctx.thread.sigmask = match a[0] as i32 {
            libc::SIG_BLOCK => old | set,
            libc::SIG_UNBLOCK => old & !set,
            libc::SIG_SETMASK => set,
            _ => return Err(Errno::EINVAL),
        } & !signals::UNBLOCKABLE;
    }
    if a[2] != 0 {
        copy_out(ctx.proc(), a[2], &old.to_ne_bytes())?;
    }
    Ok(0)
}

pub fn rt_sigpending(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[1] != 8 {
        return Err(Errno::EINVAL);
    }
    let pending = sys::pending_signals() & ctx.thread.sigmask;
    copy_out(ctx.proc(), a[0], &pending.to_ne_bytes())?;
    Ok(0)
}

fn sigaltstack_bytes_valid(n: &[u8]) -> Result<(), Errno> {
    let flags = i32::from_ne_bytes(n[8..12].try_into().unwrap());
    let size = u64::from_ne_bytes(n[16..24].try_into().unwrap());
    if flags & !(libc::SS_DISABLE | (1 << 31)/* SS_AUTODISARM */) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & libc::SS_DISABLE == 0 && size < libc::MINSIGSTKSZ as u64 {
        return Err(Errno(libc::ENOMEM));
    }
    Ok(())
}

pub fn sigaltstack(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    // stack_t: ss_sp (8), ss_flags (4 + 4 padding), ss_size (8).
    let new = if a[0] != 0 { Some(copy_in(ctx.proc(), a[0], 24)?) } else { None };
    let rsp = ctx.thread.vcpu.regs().map_err(|_| Errno(libc::EIO))?.rsp;
    let mut old = ctx.thread.altstack;
    let base = u64::from_ne_bytes(old[0..8].try_into().unwrap());
    let size = u64::from_ne_bytes(old[16..24].try_into().unwrap());
    let on = rsp > base
        && rsp - base <= size
        && i32::from_ne_bytes(old[8..12].try_into().unwrap()) & libc::SS_DISABLE == 0;
    if on {
        old[8..12].copy_from_slice(&libc::SS_ONSTACK.to_ne_bytes());
    }
    if a[1] != 0 {
        copy_out(ctx.proc(), a[1], &old)?;
    }
    if let Some(n) = new {
        if on {
            return Err(Errno::EPERM);
        }
        sigaltstack_bytes_valid(&n)?;
        ctx.thread.altstack.copy_from_slice(&n);
    }
    Ok(0)
}

/// `rt_sigreturn`: restores the context saved in the frame at RSP - 8 (the handler's `ret`
/// popped `pretcode`).
pub fn rt_sigreturn(ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    let rsp = ctx.thread.vcpu.regs().map_err(|_| Errno(libc::EIO))?.rsp;
    let frame = rsp.wrapping_sub(8);
    let bad = |ctx: &mut Ctx<'_>| {
        // Linux: a corrupt frame kills with SIGSEGV.
        ctx.proc().finish(Ok(crate::process::Outcome::Killed(crate::process::Fatal {
            signal: libc::SIGSEGV,
            addr: frame,
            rip: 0,
            what: "bad rt_sigreturn frame".into(),
        })))
    };
    let Ok(uc) = copy_in(ctx.proc(), frame.wrapping_add(signals::UC), 304) else { bad(ctx) };
    let r = signals::parse_ucontext(&uc);
    let mut regs = r.regs;
    regs.rflags =
        (dune::USER_RFLAGS & !signals::FIX_EFLAGS) | (r.regs.rflags & signals::FIX_EFLAGS);
    if regs.rip >= 1 << 47 || regs.rsp >= 1 << 47 {
        bad(ctx);
    }
    if r.fpstate != 0 {
        let n = ctx.proc().xstate_size as u64;
        let Ok(img) = copy_in(ctx.proc(), r.fpstate, n) else { bad(ctx) };
        let mut x = ctx.thread.vcpu.xsave().map_err(|_| Errno(libc::EIO))?;
        for (i, w) in x.region.iter_mut().enumerate().take(img.len() / 4) {
            *w = u32::from_ne_bytes(img[i * 4..i * 4 + 4].try_into().unwrap());
        }
        // Clear the software-reserved bytes the frame carried (not XSAVE state).
        for w in &mut x.region[116..128] {
            *w = 0;
        }
        if ctx.thread.vcpu.set_xsave(&x).is_err() {
            bad(ctx);
        }
    }
    ctx.thread.sigmask = r.mask & !signals::UNBLOCKABLE;
    if sigaltstack_bytes_valid(&r.stack).is_ok() {
        let mut st = r.stack;
        if i32::from_ne_bytes(st[8..12].try_into().unwrap()) == libc::SS_ONSTACK {
            st[8..12].copy_from_slice(&0i32.to_ne_bytes());
        }
        ctx.thread.altstack = st;
    }
    ctx.thread.vcpu.set_user_context(&regs).map_err(|_| Errno(libc::EIO))?;
    ctx.replaced = true;
    Ok(regs.rax)
}

/// Waits until a signal outside `mask` is pending or the process ends its other threads
/// (`true`), for a blocking emulated call (signalfd's read). See [`wait_unmasked`].
pub(crate) fn wait_for(ctx: &Ctx<'_>, mask: u64) -> bool {
    wait_unmasked(ctx, mask, None)
}

/// Waits for a signal not in `mask` to be recorded; returns false on timeout. The check and the
/// sleep are atomic with respect to host signals (`sys::with_signals_blocked`).
fn wait_unmasked(ctx: &Ctx<'_>, mask: u64, timeout: Option<std::time::Duration>) -> bool {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let done = sys::with_signals_blocked(|usual| {
            // The process is ending its other threads (exit_group, execve): this one must go
            // back to its run loop, which ends it; the kick that said so woke the sleep.
            if sys::pending_signals() & !mask != 0
                || ctx.proc().dying.load(std::sync::atomic::Ordering::SeqCst)
            {
                return Some(true);
            }
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            if left == Some(std::time::Duration::ZERO) {
                return Some(false);
            }
            let ts = left.map(|l| libc::timespec {
                tv_sec: l.as_secs() as libc::time_t,
                tv_nsec: l.subsec_nanos() as libc::c_long,
            });
            sys::sleep_with_mask(ts, usual);
            None
        });
        if let Some(d) = done {
            return d;
        }
    }
}

/// Installs a temporary signal mask for a waiting call (sigsuspend, ppoll, pselect6,
/// epoll_pwait): the old one is restored when the call returns, or, if a handler is entered
/// because of the wait, when the handler returns (the frame saves the old mask).
fn temporary_mask(ctx: &mut Ctx<'_>, mask: u64) {
    let old = ctx.thread.sigmask;
    ctx.thread.sigmask = mask & !signals::UNBLOCKABLE;
    ctx.thread.saved_mask = Some(old);
}

pub fn rt_sigsuspend(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[1] != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = read_u64(ctx.proc(), a[0])?;
    temporary_mask(ctx, mask);
    wait_unmasked(ctx, ctx.thread.sigmask, None);
    Err(Errno(libc::EINTR))
}

pub fn pause(ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    wait_unmasked(ctx, ctx.thread.sigmask, None);
    Err(Errno(libc::EINTR))
}

pub fn rt_sigtimedwait(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[3] != 8 {
        return Err(Errno::EINVAL);
    }
    let set = read_u64(ctx.proc(), a[0])? & !signals::UNBLOCKABLE;
    let timeout = if a[2] != 0 {
        let t = copy_in(ctx.proc(), a[2], 16)?;
        let sec = i64::from_ne_bytes(t[0..8].try_into().unwrap());
        let nsec = i64::from_ne_bytes(t[8..16].try_into().unwrap());
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        Some(std::time::Duration::new(sec as u64, nsec as u32))
    } else {
        None
    };
    if a[1] != 0 {
        ctx.proc().check(a[1], 128)?;
    }
    // Wait for one of `set` (or any signal the thread does not block, which interrupts).
    let wanted = |p: u64| p & set;
    loop {
        let p = sys::pending_signals();
        if wanted(p) != 0 {
            let sig = wanted(p).trailing_zeros() as i32 + 1;
            if let Some(info) = sys::take_signal(sig) {
                if a[1] != 0 {
                    copy_out(ctx.proc(), a[1], &info)?;
                }
                return Ok(sig as u64);
            }
            continue;
        }
        if p & !ctx.thread.sigmask & !set != 0
            || ctx.proc().dying.load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(Errno(libc::EINTR));
        }
        // Wake for a signal in `set` or one the thread does not block.
        if !wait_unmasked(ctx, ctx.thread.sigmask & !set, timeout) {
            return Err(Errno(libc::EAGAIN));
        }
    }
}

/// The routes of signals. A supervisor takes a signal with one of the runtime's own numbers
/// (`SIGRTMAX-1` kicks a vCPU, `SIGRTMAX-2` interrupts a blocking host call) for its own only
/// when it comes from its own process by `tgkill` or `kill`, or from one of its timers (see
/// `sys`); from anywhere else (another process, `sigqueue`, `F_SETSIG`, the parent's death
/// signal) it is the program's. So the program's own calls must never bring such a signal to
/// this process by one of those routes:
///
/// - `kill`, `tgkill` and `tkill` of this process or one of its threads are recorded for the
///   program directly, or sent marked as the program's ([`sys::send_to_own_thread`]), which
///   also keeps the receiving supervisor thread from taking a `SIGABRT` for its own `abort`;
/// - a `kill` of its own process group or of every process, a `pidfd_send_signal` to a process
///   group, and a timer (`timer_create`) with one of the runtime's numbers are refused with
///   `EINVAL`.
///
/// A `siginfo` with `si_code >= 0` claims to come from the kernel (a fault, a timer), and one
/// with `SI_TKILL` from `tgkill`. Linux lets a process send such a one only to itself; the
/// sandbox records it for the program directly, so a forged "fault" or runtime `tgkill` never
/// reaches the supervisor's host handler.
fn is_runtime_signal(sig: u64) -> bool {
    sig as i32 == sys::kick_signal() || sig as i32 == sys::interrupt_signal()
}

/// `EINVAL` for the runtime's own signal numbers on routes that may reach this process from
/// itself.
fn refuse_runtime_signal(sig: u64) -> Result<(), Errno> {
    if is_runtime_signal(sig) { Err(Errno::EINVAL) } else { Ok(()) }
}

/// Whether `tid` is a thread of this process.
fn is_own_thread(tid: i32) -> bool {
    tid > 0 && std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
}

/// Records `sig` with `info` (or a `kill`-style one) for the program.
fn post_to_program(sig: u64, info: Option<&[u8]>, code: i32, thread: bool) -> SysResult {
    if !(1..=64).contains(&(sig as i32)) {
        return Err(Errno::EINVAL);
    }
    let mut buf = [0u8; 128];
    match info {
        Some(i) => buf.copy_from_slice(&i[..128]),
        None => {
            buf[8..12].copy_from_slice(&code.to_ne_bytes());
            buf[16..20].copy_from_slice(&(std::process::id() as i32).to_ne_bytes());
            buf[20..24].copy_from_slice(&own_uid().to_ne_bytes());
        }
    }
    buf[0..4].copy_from_slice(&(sig as i32).to_ne_bytes());
    sys::post_signal(sig as i32, &buf, thread);
    Ok(0)
}

fn own_uid() -> u32 {
    // SAFETY: getuid cannot fail and touches no memory.
    #[allow(unsafe_code)]
    unsafe {
        libc::getuid()
    }
}

/// `si_code` of a copied 128-byte siginfo.
fn si_code(info: &[u8]) -> i32 {
    i32::from_ne_bytes(info[8..12].try_into().unwrap())
}

/// Whether a siginfo claims to come from the kernel or from `tgkill` (which Linux accepts in
/// `rt_sigqueueinfo` and friends only when a process signals itself).
fn kernel_style(info: &[u8]) -> bool {
    si_code(info) >= 0 || si_code(info) == libc::SI_TKILL
}

pub fn kill(_ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (pid, me) = (a[0] as i32, std::process::id() as i32);
    let sig = a[1] as i32;
    if pid == me && sig != 0 && sig != libc::SIGKILL && sig != libc::SIGSTOP {
        // Recorded for the program directly, so that only the runtime's own signals reach
        // this process from itself through the host.
        return post_to_program(a[1], None, libc::SI_USER, false);
    }
    if is_runtime_signal(a[1]) {
        // 0: our process group; -1: every process we may signal; -pgrp: maybe ours.
        // SAFETY: getpgrp cannot fail and touches no memory.
        #[allow(unsafe_code)]
        let pgrp = unsafe { libc::getpgrp() };
        if pid == 0 || pid == -1 || pid == -pgrp {
            return Err(Errno::EINVAL);
        }
    }
    host(libc::SYS_kill, [a[0], a[1], 0, 0, 0, 0])
}

pub fn tkill(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let tid = a[0] as i32;
    if a[1] != 0 && (tid == ctx.thread.tid || is_own_thread(tid)) {
        return own_thread_signal(a[0], a[1]);
    }
    host(libc::SYS_tkill, [a[0], a[1], 0, 0, 0, 0])
}

pub fn tgkill(_ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[2] != 0 && a[0] as i32 == std::process::id() as i32 {
        return own_thread_signal(a[1], a[2]);
    }
    host(libc::SYS_tgkill, [a[0], a[1], a[2], 0, 0, 0])
}

/// `tgkill` of thread `tid` of this process with `sig` (1..=64), marked as the program's.
fn own_thread_signal(tid: u64, sig: u64) -> SysResult {
    if !(1..=64).contains(&(sig as i32)) {
        return Err(Errno::EINVAL);
    }
    if tid as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    sys::send_to_own_thread(tid as i32, sig as i32)
}

pub fn rt_sigqueueinfo(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let info = copy_in(ctx.proc(), a[2], 128)?;
    if a[0] as i32 == std::process::id() as i32 && a[1] != 0 && kernel_style(&info) {
        return post_to_program(a[1], Some(&info), 0, false);
    }
    host(libc::SYS_rt_sigqueueinfo, [a[0], a[1], info.as_ptr() as u64, 0, 0, 0])
}

pub fn rt_tgsigqueueinfo(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let info = copy_in(ctx.proc(), a[3], 128)?;
    if a[0] as i32 == std::process::id() as i32 && a[2] != 0 && kernel_style(&info) {
        if a[1] as i32 == ctx.thread.tid {
            return post_to_program(a[2], Some(&info), 0, true);
        }
        // Linux refuses such a siginfo for any thread but the caller.
        return Err(Errno::EPERM);
    }
    host(libc::SYS_rt_tgsigqueueinfo, [a[0], a[1], a[2], info.as_ptr() as u64, 0, 0])
}

/// The process (or thread) a pidfd refers to (`Pid:` in its fdinfo), if it is one.
fn pidfd_target(fd: u64) -> Option<i32> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd as i32)).ok()?;
    info.lines().find_map(|l| l.strip_prefix("Pid:")).and_then(|p| p.trim().parse().ok())
}

/// `pidfd_send_signal(pidfd, sig, info, flags)`. A signal for this very process (the pidfd
/// names it, without `PIDFD_SIGNAL_PROCESS_GROUP`) is recorded for the program directly, as
/// `kill` of oneself is; to a process group that may include this one, the runtime's signal
/// numbers are refused; a kernel-style `siginfo` (`si_code >= 0` or `SI_TKILL`) for another
/// process gets `EPERM`, as in Linux.
pub fn pidfd_send_signal(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    const THREAD: u64 = 1; // PIDFD_SIGNAL_THREAD
    const GROUP: u64 = 4; // PIDFD_SIGNAL_PROCESS_GROUP
    check_fd(ctx.proc(), a[0])?;
    let info = if a[2] != 0 { Some(copy_in(ctx.proc(), a[2], 128)?) } else { None };
    let sig = a[1] as i32;
    let me = std::process::id() as i32;
    let own = a[3] & !(THREAD | 2 | GROUP) == 0
        && a[3] & GROUP == 0
        && (1..=64).contains(&sig)
        && sig != libc::SIGKILL
        && sig != libc::SIGSTOP
        && pidfd_target(a[0]) == Some(me);
    if own {
        if info.as_deref().is_some_and(|i| i32::from_ne_bytes(i[0..4].try_into().unwrap()) != sig) {
            return Err(Errno::EINVAL);
        }
        if a[3] & THREAD != 0 && info.is_none() {
            return own_thread_signal(me as u64, a[1]);
        }
        return post_to_program(a[1], info.as_deref(), libc::SI_USER, a[3] & THREAD != 0);
    }
    if a[3] & GROUP != 0 {
        refuse_runtime_signal(a[1])?;
    }
    if info.as_deref().is_some_and(kernel_style) {
        return Err(Errno::EPERM);
    }
    let infop = info.as_ref().map_or(0, |i| i.as_ptr() as u64);
    host(libc::SYS_pidfd_send_signal, [a[0], a[1], infop, a[3], 0, 0])
}

/// `timer_create(clock, sevp, timerid)`: `struct sigevent` (64 bytes) copied; a signal
/// notification with one of the runtime's signal numbers is refused.
pub fn timer_create(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let sev = if a[1] != 0 { Some(copy_in(ctx.proc(), a[1], 64)?) } else { None };
    if let Some(s) = &sev {
        let signo = i32::from_ne_bytes(s[8..12].try_into().unwrap());
        let notify = i32::from_ne_bytes(s[12..16].try_into().unwrap());
        if notify != libc::SIGEV_NONE {
            refuse_runtime_signal(signo as u64)?;
        }
    }
    ctx.proc().check(a[2], 4)?;
    let sevp = sev.as_ref().map_or(0, |s| s.as_ptr() as u64);
    host(libc::SYS_timer_create, [a[0], sevp, a[2], 0, 0, 0])
}

// ---------------------------------------------------------------------------------------------
// Files.

use super::open::readlink_common;

pub fn readlink(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    readlink_common(ctx, libc::AT_FDCWD as u64, a[0], a[1], a[2])
}

pub fn readlinkat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    readlink_common(ctx, a[0], a[1], a[2], a[3])
}

pub fn close(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let _gate = crate::fdwin::window().program_change();
    check_fd(ctx.proc(), a[0])?;
    let r = host(libc::SYS_close, [a[0], 0, 0, 0, 0, 0]);
    // Linux frees the number even when close reports an error (other than EBADF).
    crate::fdwin::window().program_closed(a[0] as i32);
    r
}

/// `dup2`/`dup3`: `newfd` must be below the program's `RLIMIT_NOFILE` (`EBADF`, as Linux), which
/// also keeps it out of the runtime's descriptor window.
fn dup_onto(ctx: &mut Ctx<'_>, nr: i64, a: [u64; 6]) -> SysResult {
    let _gate = crate::fdwin::window().program_change();
    check_fd(ctx.proc(), a[0])?;
    let limit = crate::fdwin::window().program_limit().0;
    if a[1] as i32 as i64 >= limit as i64 || (a[1] as i32) < 0 {
        return Err(Errno::EBADF);
    }
    host(nr, a)
}

pub fn dup2(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    dup_onto(ctx, libc::SYS_dup2, [a[0], a[1], 0, 0, 0, 0])
}

pub fn dup3(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    dup_onto(ctx, libc::SYS_dup3, [a[0], a[1], a[2], 0, 0, 0])
}

/// `dup`: forwarded under the window's gate (see `fdwin`).
pub fn dup(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let _gate = crate::fdwin::window().program_change();
    check_fd(ctx.proc(), a[0])?;
    host(libc::SYS_dup, [a[0], 0, 0, 0, 0, 0])
}

pub fn close_range(_ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (first, last, flags) = (a[0] as u32, a[1] as u32, a[2]);
    // CLOSE_RANGE_UNSHARE would give the calling thread a private descriptor table, which the
    // supervisor's other threads (and its runtime descriptors' bookkeeping) would not share.
    if first > last || flags & !CLOSE_RANGE_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    // Close (or mark) the program's descriptors in [first, last]: all below the runtime's
    // window (fdwin). Placeholders that enforce a lowered RLIMIT_NOFILE are put back.
    let win = crate::fdwin::window();
    let _gate = win.program_change();
    let last = last.min(win.floor() as u32 - 1);
    if first <= last {
        host(libc::SYS_close_range, [u64::from(first), u64::from(last), flags, 0, 0, 0])?;
        let limit = win.program_limit().0 as u32;
        for fd in first.max(limit)..=last {
            win.program_closed(fd as i32);
        }
    }
    Ok(0)
}

/// `CLOSE_RANGE_CLOEXEC` from `<linux/close_range.h>`: mark instead of close.
const CLOSE_RANGE_CLOEXEC: u64 = 1 << 2;

/// `F_SETSIG` and `F_GETSIG` (include/uapi/asm-generic/fcntl.h; the libc crate lacks them).
const F_SETSIG: i32 = 10;
const F_GETSIG: i32 = 11;

pub fn fcntl(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let cmd = a[1] as i32;
    let _gate = matches!(cmd, libc::F_DUPFD | libc::F_DUPFD_CLOEXEC)
        .then(|| crate::fdwin::window().program_change());
    check_fd(ctx.proc(), a[0])?;
    // A lowest number at or above the program's RLIMIT_NOFILE: EINVAL, as Linux.
    if matches!(cmd, libc::F_DUPFD | libc::F_DUPFD_CLOEXEC)
        && a[2] as i32 as i64 >= crate::fdwin::window().program_limit().0 as i64
    {
        return Err(Errno::EINVAL);
    }
    match cmd {
        libc::F_SETOWN => {
            super::confine::may_own(ctx, a[2] as i32, false)?;
            host(libc::SYS_fcntl, [a[0], a[1], a[2], 0, 0, 0])
        }
        15 /* F_SETOWN_EX */ => {
            // struct f_owner_ex { int type; pid_t pid; }: decided on a copy, which the kernel
            // gets. F_OWNER_TID 0, F_OWNER_PID 1, F_OWNER_PGRP 2.
            let b = crate::uaccess::copy_in(ctx.proc(), a[2], 8)?;
            let ty = i32::from_ne_bytes(b[0..4].try_into().unwrap());
            let pid = i32::from_ne_bytes(b[4..8].try_into().unwrap());
            match ty {
                0 => super::confine::may_own(ctx, pid, true)?,
                1 => super::confine::may_own(ctx, pid, false)?,
                2 => super::confine::may_own(ctx, pid.wrapping_neg(), false)?,
                _ => {}
            }
            host(libc::SYS_fcntl, [a[0], a[1], b.as_ptr() as u64, 0, 0, 0])
        }
        libc::F_SETLEASE if a[2] != libc::F_UNLCK as u64 => {
            // A lease makes every other opener of the file wait (up to lease-break-time, 45 s):
            // under filesystem rules only on files the program may change (Linux answers
            // EACCES to one who may not).
            super::paths::decide_fd(ctx, "fcntl", a[0], crate::policy::fs::Need::Write)
                .map_err(|e| if e == Errno(libc::EROFS) { Errno::EACCES } else { e })?;
            host(libc::SYS_fcntl, [a[0], a[1], a[2], 0, 0, 0])
        }
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC | libc::F_GETFD | libc::F_SETFD | libc::F_GETFL
        | libc::F_SETFL | libc::F_GETOWN | F_SETSIG | F_GETSIG
        | libc::F_GETLEASE | libc::F_SETLEASE | libc::F_NOTIFY | libc::F_GETPIPE_SZ
        | libc::F_SETPIPE_SZ | libc::F_ADD_SEALS | libc::F_GET_SEALS => {
            host(libc::SYS_fcntl, [a[0], a[1], a[2], 0, 0, 0])
        }
        libc::F_GETLK | libc::F_SETLK | libc::F_SETLKW | libc::F_OFD_GETLK | libc::F_OFD_SETLK
        | libc::F_OFD_SETLKW => {
            ctx.proc().check(a[2], super::table::FLOCK_SIZE)?;
            host(libc::SYS_fcntl, [a[0], a[1], a[2], 0, 0, 0])
        }
        16 /* F_GETOWN_EX */ => {
            ctx.proc().check(a[2], 8)?;
            host(libc::SYS_fcntl, [a[0], a[1], a[2], 0, 0, 0])
        }
        _ => Err(Errno::EINVAL),
    }
}

// ---------------------------------------------------------------------------------------------
// Scatter-gather I/O: the iovec array is copied in, every element checked, and the kernel
// gets the copy.

pub(crate) fn copy_iovecs(ctx: &Ctx<'_>, addr: u64, count: u64) -> Result<Vec<libc::iovec>, Errno> {
    crate::uaccess::iovec::copy_iovecs(ctx.proc(), addr, count)
}

fn vec_io(ctx: &mut Ctx<'_>, nr: i64, a: &[u64; 6]) -> SysResult {
    check_fd(ctx.proc(), a[0])?;
    let iov = copy_iovecs(ctx, a[1], a[2])?;
    host(nr, [a[0], iov.as_ptr() as u64, a[2], a[3], a[4], a[5]])
}

pub fn readv(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if let Some(r) = super::signalfd::readv(ctx, a) {
        return r;
    }
    vec_io(ctx, libc::SYS_readv, a)
}
pub fn writev(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if let Some(r) = super::signalfd::write(ctx, a[0]) {
        return r;
    }
    vec_io(ctx, libc::SYS_writev, a)
}
pub fn preadv(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    vec_io(ctx, libc::SYS_preadv, a)
}
pub fn pwritev(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    vec_io(ctx, libc::SYS_pwritev, a)
}
pub fn preadv2(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    vec_io(ctx, libc::SYS_preadv2, a)
}
pub fn pwritev2(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    vec_io(ctx, libc::SYS_pwritev2, a)
}

// ---------------------------------------------------------------------------------------------
// Waiting calls whose signal mask would be installed on the host thread: the mask is dropped
// (program signal masks are the supervisor's business), the rest validated.

/// A waiting call with an optional signal mask (`sigmask`, 0 for none): the mask becomes the
/// program's for the call (see [`temporary_mask`]); the host call itself runs with host signals
/// unblocked atomically, after a check that nothing deliverable is pending already. A host
/// signal that interrupts it for nothing (see `syscall::restart`) does not end the wait;
/// `timeout_ms` (`epoll_pwait`'s, -1 for none; the others' timeouts are updated by the kernel)
/// keeps counting, and `call` gets what is left of it.
fn masked_wait(
    ctx: &mut Ctx<'_>,
    sigmask: u64,
    timeout_ms: i32,
    mut call: impl FnMut(&libc::sigset_t, u64) -> SysResult,
) -> SysResult {
    if sigmask != 0 {
        let mask = read_u64(ctx.proc(), sigmask)?;
        temporary_mask(ctx, mask);
    }
    let deadline = (timeout_ms >= 0)
        .then(|| std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms as u64));
    let r = loop {
        let blocked = ctx.thread.sigmask;
        let left = deadline.map_or(u64::MAX, |d| {
            let l = d.saturating_duration_since(std::time::Instant::now());
            l.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as u64
        });
        let r = sys::with_signals_blocked(|usual| {
            if sigmask != 0 && sys::pending_signals() & !blocked != 0 {
                return Err(Errno(libc::EINTR));
            }
            call(usual, left)
        });
        if r != Err(Errno(libc::EINTR)) || !ctx.thread.may_resume_call() {
            break r;
        }
    };
    if r != Err(Errno(libc::EINTR))
        && let Some(old) = ctx.thread.saved_mask.take()
    {
        ctx.thread.sigmask = old;
    }
    r
}

pub fn ppoll(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    ctx.proc().check(a[0], a[1].checked_mul(8).ok_or(Errno::EINVAL)?)?;
    if a[2] != 0 {
        ctx.proc().check(a[2], 16)?;
    }
    if a[3] != 0 && a[4] != 8 {
        return Err(Errno::EINVAL);
    }
    masked_wait(ctx, a[3], -1, |usual, _| {
        host(libc::SYS_ppoll, [a[0], a[1], a[2], usual as *const _ as u64, 8, 0])
    })
}

pub fn pselect6(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let n = (a[0] as i32).max(0) as u64 / 64 * 8 + 8;
    for &p in &a[1..4] {
        if p != 0 {
            ctx.proc().check(p, n)?;
        }
    }
    if a[4] != 0 {
        ctx.proc().check(a[4], 16)?;
    }
    // The sixth argument points at { const sigset_t *ss; size_t ss_len; }.
    let sigmask = if a[5] != 0 {
        let d = copy_in(ctx.proc(), a[5], 16)?;
        let ss = u64::from_ne_bytes(d[0..8].try_into().unwrap());
        let len = u64::from_ne_bytes(d[8..16].try_into().unwrap());
        if ss != 0 && len != 8 {
            return Err(Errno::EINVAL);
        }
        ss
    } else {
        0
    };
    masked_wait(ctx, sigmask, -1, |usual, _| {
        let data: [u64; 2] = [usual as *const _ as u64, 8];
        host(libc::SYS_pselect6, [a[0], a[1], a[2], a[3], a[4], data.as_ptr() as u64])
    })
}

pub fn epoll_pwait(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    check_fd(ctx.proc(), a[0])?;
    ctx.proc().check(a[1], a[2].checked_mul(12).ok_or(Errno::EINVAL)?)?;
    if a[4] != 0 && a[5] != 8 {
        return Err(Errno::EINVAL);
    }
    masked_wait(ctx, a[4], a[3] as i32, |usual, left| {
        let timeout = if a[3] as i32 >= 0 { left } else { a[3] };
        host(libc::SYS_epoll_pwait, [a[0], a[1], a[2], timeout, usual as *const _ as u64, 8])
    })
}

pub fn futex(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    const FUTEX_CMD_MASK: u64 = !(128 | 256); // ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
    let cmd = a[1] & FUTEX_CMD_MASK;
    ctx.proc().check(a[0], 4)?;
    // FUTEX_WAIT(0), WAIT_BITSET(9) take a timespec; REQUEUE(3), CMP_REQUEUE(4), WAKE_OP(5)
    // take a second futex word (the 4th argument is then a count).
    let timeout = matches!(cmd, 0 | 9 | 6 | 11);
    let second = matches!(cmd, 3 | 4 | 5 | 11 | 12);
    if timeout && a[3] != 0 {
        ctx.proc().check(a[3], 16)?;
    }
    if second {
        ctx.proc().check(a[4], 4)?;
    }
    if !matches!(cmd, 0 | 1 | 3 | 4 | 5 | 9 | 10) {
        // The PI and requeue-PI operations are not supported.
        return Err(Errno::ENOSYS);
    }
    host(libc::SYS_futex, *a)
}

// ---------------------------------------------------------------------------------------------
// Memory.

pub fn brk(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    Ok(ctx.proc().mm.lock().unwrap().set_brk(a[0]))
}

pub fn mmap(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (addr, len, prot, flags, fd, off) =
        (a[0], a[1], a[2] as i32, a[3] as i32, a[4] as i32, a[5]);
    let map_type = flags & 0xf; // MAP_TYPE
    let known = libc::MAP_SHARED
        | libc::MAP_PRIVATE
        | libc::MAP_SHARED_VALIDATE
        | libc::MAP_FIXED
        | libc::MAP_ANONYMOUS
        | libc::MAP_NORESERVE
        | libc::MAP_POPULATE
        | libc::MAP_STACK
        | libc::MAP_GROWSDOWN
        | libc::MAP_DENYWRITE
        | libc::MAP_EXECUTABLE
        | libc::MAP_LOCKED
        | libc::MAP_NONBLOCK
        | libc::MAP_FIXED_NOREPLACE
        | libc::MAP_32BIT;
    if !matches!(map_type, 1..=3) {
        return Err(Errno::EINVAL);
    }
    if map_type == libc::MAP_SHARED_VALIDATE && flags & !known != 0 {
        return Err(Errno(libc::EOPNOTSUPP));
    }
    if flags & libc::MAP_HUGETLB != 0
        || prot & !(libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) != 0
    {
        return Err(Errno::EINVAL);
    }
    let len = page_up(len).ok_or(Errno::ENOMEM)?;
    if len == 0 || off % PAGE != 0 {
        return Err(Errno::EINVAL);
    }
    let anon = flags & libc::MAP_ANONYMOUS != 0;
    // A file is mapped through a private duplicate, checked first: another program thread
    // cannot dup2 a descriptor over the number in between. A KVM object (a copy taken while a
    // new vCPU's descriptor still had a program number) is refused: a vCPU's kvm_run page
    // would let the program write the registers KVM loads at the next entry.
    let file = if anon {
        None
    } else {
        check_fd(ctx.proc(), fd as u64)?;
        let dup = crate::fdwin::window().duplicate(fd).map_err(|e| Errno::from_io(&e))?;
        let st = sys::fstat(dup.raw())?;
        if crate::fdwin::runtime_object(Some(dup.raw()), &st).is_some() {
            return Err(Errno::EBADF);
        }
        Some((dup, crate::mm::FileId { dev: st.st_dev, ino: st.st_ino }))
    };
    let fixed = flags & (libc::MAP_FIXED | libc::MAP_FIXED_NOREPLACE) != 0;
    let mut mm = ctx.proc().mm.lock().unwrap();
    let at = if fixed {
        if addr % PAGE != 0 {
            return Err(Errno::EINVAL);
        }
        // MAP_FIXED outside the program's range would replace runtime memory: refused, as
        // Linux refuses addresses above TASK_SIZE.
        if !mm.contains(addr, len) {
            return Err(Errno::ENOMEM);
        }
        if flags & libc::MAP_FIXED_NOREPLACE != 0 && !mm.is_free(addr, len) {
            return Err(Errno(libc::EEXIST));
        }
        addr
    } else {
        let hint = addr & !(PAGE - 1);
        if hint != 0 && mm.is_free(hint, len) {
            hint
        } else if flags & libc::MAP_32BIT != 0 {
            mm.find_free(len, PAGE, 1 << 31).ok_or(Errno::ENOMEM)?
        } else {
            let top = mm.mmap_top;
            mm.find_free(len, PAGE, top).ok_or(Errno::ENOMEM)?
        }
    };
    let host_flags = (flags & !(libc::MAP_FIXED_NOREPLACE | libc::MAP_32BIT | libc::MAP_GROWSDOWN))
        | libc::MAP_FIXED;
    let (kind, fd) = match &file {
        None => (Kind::Anon, -1),
        Some((dup, id)) => (Kind::File { offset: off, file: *id }, dup.raw()),
    };
    mm.may_expand(at, len, prot, host_flags & libc::MAP_SHARED != 0, kind)?;
    mm.map_fixed(at, len, prot, host_flags, fd, kind)
}

pub fn munmap(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    ctx.proc().mm.lock().unwrap().unmap(a[0], a[1]).map(|_| 0)
}

pub fn mprotect(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let prot = a[2] as i32;
    if prot
        & !(libc::PROT_READ
            | libc::PROT_WRITE
            | libc::PROT_EXEC
            | libc::PROT_GROWSDOWN
            | libc::PROT_GROWSUP)
        != 0
    {
        return Err(Errno::EINVAL);
    }
    let prot = prot & (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC);
    ctx.proc().mm.lock().unwrap().protect(a[0], a[1], prot).map(|_| 0)
}

pub fn mremap(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    ctx.proc().mm.lock().unwrap().remap(a[0], a[1], a[2], a[3] as i32, a[4])
}

fn range_or(ctx: &Ctx<'_>, addr: u64, len: u64, e: Errno) -> Result<u64, Errno> {
    let len = page_up(len).ok_or(e)?;
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    if ctx.proc().check(addr, len).is_err() {
        return Err(e);
    }
    Ok(len)
}

pub fn msync(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let len = range_or(ctx, a[0], a[1], Errno::ENOMEM)?;
    // The reservation between mappings is a host mapping too: Linux's ENOMEM for unmapped
    // pages comes from the records.
    if len != 0 && !ctx.proc().mm.lock().unwrap().is_mapped(a[0], len) {
        return Err(Errno::ENOMEM);
    }
    host(libc::SYS_msync, [a[0], len, a[2], 0, 0, 0])
}

/// `mlock`, `munlock` and `mlock2`: on program mappings only (Linux: `ENOMEM` for unmapped
/// pages, which the reservation behind them would hide).
fn lock_range(ctx: &mut Ctx<'_>, nr: i64, a: &[u64; 6]) -> SysResult {
    let start = a[0] & !(PAGE - 1);
    let len = a[1].checked_add(a[0] - start).ok_or(Errno::ENOMEM)?;
    let len = range_or(ctx, start, len, Errno::ENOMEM)?;
    if len != 0 && !ctx.proc().mm.lock().unwrap().is_mapped(start, len) {
        return Err(Errno::ENOMEM);
    }
    host(nr, [start, len, a[2], 0, 0, 0])
}

pub fn mlock(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    lock_range(ctx, libc::SYS_mlock, &[a[0], a[1], 0, 0, 0, 0])
}
pub fn munlock(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    lock_range(ctx, libc::SYS_munlock, &[a[0], a[1], 0, 0, 0, 0])
}
pub fn mlock2(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    lock_range(ctx, libc::SYS_mlock2, a)
}

pub fn mincore(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let len = range_or(ctx, a[0], a[1], Errno::ENOMEM)?;
    ctx.proc().check(a[2], len / PAGE)?;
    // Linux: ENOMEM unless every page is mapped (the host would answer for the reservation).
    if !ctx.proc().mm.lock().unwrap().is_mapped(a[0], len) {
        return Err(Errno::ENOMEM);
    }
    host(libc::SYS_mincore, [a[0], len, a[2], 0, 0, 0])
}

pub fn madvise(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let advice = a[2] as i32;
    // Advice that only concerns the program's own pages. MADV_HWPOISON, MADV_SOFT_OFFLINE and
    // the like act on physical pages and are refused.
    let allowed = [
        libc::MADV_NORMAL,
        libc::MADV_RANDOM,
        libc::MADV_SEQUENTIAL,
        libc::MADV_WILLNEED,
        libc::MADV_DONTNEED,
        libc::MADV_FREE,
        libc::MADV_REMOVE,
        libc::MADV_DONTFORK,
        libc::MADV_DOFORK,
        libc::MADV_MERGEABLE,
        libc::MADV_UNMERGEABLE,
        libc::MADV_HUGEPAGE,
        libc::MADV_NOHUGEPAGE,
        libc::MADV_DONTDUMP,
        libc::MADV_DODUMP,
        libc::MADV_WIPEONFORK,
        libc::MADV_KEEPONFORK,
        libc::MADV_COLD,
        libc::MADV_PAGEOUT,
        22, // MADV_POPULATE_READ
        23, // MADV_POPULATE_WRITE
    ];
    if !allowed.contains(&advice) {
        return Err(Errno::EINVAL);
    }
    let len = range_or(ctx, a[0], a[1], Errno::ENOMEM)?;
    if len == 0 {
        return Ok(0);
    }
    // Applied to the mapped parts only (never to the reservation), flags recorded.
    ctx.proc().mm.lock().unwrap().advise(a[0], len, advice).map(|()| 0)
}
