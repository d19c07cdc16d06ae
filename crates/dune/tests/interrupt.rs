//! Issue acceptance 5e: a guest spinning in ring 3 is interrupted by a host signal, the exit is
//! decoded as interrupted, and the vCPU resumes. In its own test binary: it installs a
//! process-wide signal handler.
mod common;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Env, g, guest_pages, report};
use dune::{Perms, Trap};

static HANDLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_usr1(_: i32) {
    HANDLED.store(true, Ordering::SeqCst);
}

fn set_flag(flag: u64) {
    // SAFETY: the flag is a test-owned guest page; the guest only reads it.
    unsafe { std::ptr::write_volatile(flag as *mut u64, 1) };
}

#[test]
fn kick_interrupts_a_spinning_guest_and_it_resumes() {
    let Some(mut env) =
        Env::new("dune::interrupt::kick_interrupts_a_spinning_guest_and_it_resumes")
    else {
        return;
    };
    let flag = guest_pages(&env.vm, 4096, Perms::USER_R);
    let kicker = env.vcpu.kicker();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        kicker.kick();
    });
    assert_eq!(env.call(g::g_spin_flag(), &[flag]), Trap::Interrupted);
    t.join().unwrap();
    // Still spinning where it was; let it finish.
    set_flag(flag);
    assert_eq!(report(env.resume(), 4), flag);
}

#[test]
fn host_signal_interrupts_a_spinning_guest() {
    let Some(mut env) = Env::new("dune::interrupt::host_signal_interrupts_a_spinning_guest") else {
        return;
    };
    // SAFETY: installs a handler that only stores to an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_usr1 as *const () as usize;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    let flag = guest_pages(&env.vm, 4096, Perms::USER_R);
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as usize;
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: `me` is the live test thread.
        unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGUSR1) };
    });
    assert_eq!(env.call(g::g_spin_flag(), &[flag]), Trap::Interrupted);
    t.join().unwrap();
    assert!(HANDLED.load(Ordering::SeqCst), "the host's own handler ran");
    set_flag(flag);
    assert_eq!(report(env.resume(), 4), flag);
}

#[test]
fn kick_before_run_is_not_lost() {
    let Some(mut env) = Env::new("dune::interrupt::kick_before_run_is_not_lost") else {
        return;
    };
    let flag = guest_pages(&env.vm, 4096, Perms::USER_R);
    // Run once so the vCPU is bound to this thread, then kick while it is outside the guest.
    assert_eq!(report(env.call(g::g_report(), &[1]), 2), 1);
    env.vcpu.kicker().kick();
    assert_eq!(env.call(g::g_spin_flag(), &[flag]), Trap::Interrupted);
}

#[test]
fn watchdog_ends_a_run_that_never_exits() {
    let Some(mut env) = Env::new("dune::interrupt::watchdog_ends_a_run_that_never_exits") else {
        return;
    };
    let flag = guest_pages(&env.vm, 4096, Perms::USER_R);
    env.vcpu.set_watchdog(Some(Duration::from_millis(200)));
    env.start(g::g_spin_flag(), &[flag]);
    match env.vcpu.run() {
        Err(dune::VcpuError::Watchdog(d)) => assert_eq!(d, Duration::from_millis(200)),
        other => panic!("expected the watchdog, got {other:?}"),
    }
}

static USR2: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn on_usr2(_: i32) {
    USR2.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn quiet_period_holds_host_signals_back_until_it_ends() {
    let Some(mut env) =
        Env::new("dune::interrupt::quiet_period_holds_host_signals_back_until_it_ends")
    else {
        return;
    };
    // SAFETY: installs a handler that only counts in an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_usr2 as *const () as usize;
        libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut());
    }
    let flag = guest_pages(&env.vm, 4096, Perms::USER_R);
    // Bound to this thread first (the quiet period's timer kicks the thread that starts it).
    assert_eq!(report(env.call(g::g_report(), &[1]), 2), 1);
    env.vcpu.quiet_for(Duration::from_millis(300)).unwrap();
    assert!(env.vcpu.is_quiet());
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() } as usize;
    let t = std::thread::spawn(move || {
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(2));
            // SAFETY: `me` is the live test thread.
            unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGUSR2) };
        }
    });
    let t0 = std::time::Instant::now();
    assert_eq!(env.call(g::g_spin_flag(), &[flag]), Trap::Interrupted);
    let took = t0.elapsed();
    t.join().unwrap();
    // The signals waited until the period ended; then they were taken at once.
    assert!(took >= Duration::from_millis(250), "interrupted after {took:?}");
    assert!(!env.vcpu.is_quiet());
    assert!(USR2.load(Ordering::SeqCst) >= 1);
    set_flag(flag);
    assert_eq!(report(env.resume(), 4), flag);
}

static FOREIGN: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

fn on_foreign(info: &[u8; 128], _ctx: *mut libc::c_void) {
    FOREIGN.store(i32::from_ne_bytes(info[16..20].try_into().unwrap()), Ordering::SeqCst);
}

#[test]
fn a_kick_signal_from_another_process_is_not_a_kick() {
    let Some(mut env) =
        Env::new("dune::interrupt::a_kick_signal_from_another_process_is_not_a_kick")
    else {
        return;
    };
    dune::set_foreign_kick_hook(on_foreign);
    let flag = guest_pages(&env.vm, 4096, Perms::USER_R);
    assert_eq!(report(env.call(g::g_report(), &[1]), 2), 1);
    // SAFETY: getpid and gettid have no preconditions.
    let (parent, me) = unsafe { (libc::getpid(), libc::gettid()) };
    // SAFETY: the child only sleeps, sends one signal and exits (async-signal-safe calls).
    let child = unsafe { libc::fork() };
    if child == 0 {
        // To this thread (a process-directed one may go to another thread of the test binary,
        // which does not block the kick).
        // SAFETY: as above.
        unsafe {
            libc::usleep(100_000);
            libc::syscall(libc::SYS_tgkill, parent, me, libc::SIGRTMAX() - 1);
            libc::_exit(0);
        }
    }
    assert!(child > 0);
    assert_eq!(env.call(g::g_spin_flag(), &[flag]), Trap::Interrupted);
    let mut st = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(child, &mut st, 0) };
    assert_eq!(FOREIGN.load(Ordering::SeqCst), child, "the hook got the sender's siginfo");
    set_flag(flag);
    assert_eq!(report(env.resume(), 4), flag);
}
