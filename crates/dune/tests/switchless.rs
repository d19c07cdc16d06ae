//! Switchless system calls (trap::switchless): on hosts where a ring-3 `syscall` stays at CPL 3,
//! a thread polling a vCPU's mailbox serves its calls with no exit; a stub interrupted while
//! waiting is normalized (completed or rolled back to its `syscall`). On VT-x/AMD-V hosts there
//! is no mailbox and the tests only check that.
mod common;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Env, g};
use dune::{Mailbox, SyscallPath, Trap};
use trap::layout as trap_layout;
use trap::switchless as trap_switchless;

/// The Env's mailbox, or `None` on a host without the ring-3 path (checked to be consistent).
fn mailbox(env: &Env) -> Option<Mailbox> {
    let ring3 = env.vm.platform().syscall_path == SyscallPath::Ring3Doorbell;
    let mb = env.vcpu.mailbox();
    assert_eq!(mb.is_some(), ring3, "a mailbox exactly on ring-3 syscall hosts");
    mb
}

/// Kicks the Env's vCPU from another thread 50 ms from now.
fn kick_soon(env: &Env) -> std::thread::JoinHandle<()> {
    let kicker = env.vcpu.kicker();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        kicker.kick();
    })
}

/// Serves `g_syscall_loop`'s calls (number 0x100 + i → 3i + 7) until `stop`; bounces others.
fn serve(
    mb: Mailbox,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    mb.set_hot(true); // before the guest's first call
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match mb.try_claim() {
                Some(sc) if (0x100..0x100 + 1_000_000).contains(&sc.nr) => {
                    let i = sc.nr - 0x100;
                    assert_eq!(sc.args, [i, i + 1, i + 2, i + 3, i + 4, i + 5]);
                    served.fetch_add(1, Ordering::Relaxed);
                    mb.complete(3 * i + 7);
                }
                Some(_) => mb.bounce(),
                None => std::hint::spin_loop(),
            }
        }
        mb.set_hot(false);
    })
}

#[test]
fn calls_served_without_exits() {
    let Some(mut env) = Env::new("dune::switchless::calls_served_without_exits") else { return };
    let Some(mb) = mailbox(&env) else { return };
    let (stop, served) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let server = serve(mb, stop.clone(), served.clone());
    let n = 10_000u64;
    // The guest checks every result; the only exit is its final exit(2) call (bounced).
    let t = env.call(g::g_syscall_loop(), &[n]);
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    match t {
        Trap::Syscall(sc) if sc.nr == 60 => {}
        other => panic!("expected the bounced exit call, got {other:?}"),
    }
    assert_eq!(served.load(Ordering::Relaxed), n);
}

/// A server that stops polling mid-run: the stub withdraws its request and exits instead, and
/// the calls go on through exits with the same registers.
#[test]
fn cold_server_means_exits() {
    let Some(mut env) = Env::new("dune::switchless::cold_server_means_exits") else { return };
    let Some(mb) = mailbox(&env) else { return };
    mb.set_hot(true); // hot, but nobody claims: the stub must withdraw once it cools
    let cool = {
        let mb = mb.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            mb.set_hot(false);
        })
    };
    let mut t = env.call(g::g_syscall_loop(), &[3]);
    cool.join().unwrap();
    for i in 0..3u64 {
        match t {
            Trap::Syscall(sc) if sc.nr == 0x100 + i => {
                env.vcpu.set_syscall_result(3 * i + 7).unwrap()
            }
            other => panic!("call {i}: {other:?}"),
        }
        t = env.resume();
    }
    assert!(matches!(t, Trap::Syscall(sc) if sc.nr == 60), "{t:?}");
}

/// A kick while the stub waits: a request nobody claimed is rolled back to its `syscall`
/// (which then runs again through an exit); one being carried out is waited for and completed.
#[test]
fn interrupted_stub_is_normalized() {
    let Some(mut env) = Env::new("dune::switchless::interrupted_stub_is_normalized") else {
        return;
    };
    let Some(mb) = mailbox(&env) else { return };
    // Unclaimed: roll back.
    mb.set_hot(true);
    let k = kick_soon(&env);
    let t = env.call(g::g_syscall_loop(), &[2]);
    k.join().unwrap();
    assert!(matches!(t, Trap::Interrupted), "{t:?}");
    let r = env.vcpu.regs().unwrap();
    assert_eq!(r.rip, r.rcx - 2, "back at the syscall instruction");
    assert_eq!(r.rax, 0x100, "the call number again");
    assert!(!mb.posted());
    mb.set_hot(false);
    match env.resume() {
        Trap::Syscall(sc) => {
            assert_eq!((sc.nr, sc.args[0]), (0x100, 0), "the same call, now through an exit");
            env.vcpu.set_syscall_result(7).unwrap();
        }
        other => panic!("{other:?}"),
    }
    // Claimed and carried out slowly: the vCPU thread waits, then completes it.
    mb.set_hot(true);
    let (mb2, kicker) = (mb.clone(), env.vcpu.kicker());
    let slow = std::thread::spawn(move || {
        let sc = loop {
            if let Some(sc) = mb2.try_claim() {
                break sc;
            }
            std::hint::spin_loop();
        };
        kicker.kick();
        std::thread::sleep(Duration::from_millis(50));
        mb2.complete(3 * (sc.nr - 0x100) + 7);
        sc.nr
    });
    let t = env.resume();
    assert_eq!(slow.join().unwrap(), 0x101);
    assert!(matches!(t, Trap::Interrupted), "{t:?}");
    let r = env.vcpu.regs().unwrap();
    assert_eq!((r.rip, r.rax), (r.rcx, 3 + 7), "completed: after the syscall, with its result");
    mb.set_hot(false);
    // The guest checked the result and went on to its exit call.
    assert!(matches!(env.resume(), Trap::Syscall(sc) if sc.nr == 60));
}

/// A program that writes CLAIMED into its own mailbox and waits in the stub is not waited for
/// when a signal comes (no server holds that request): the vCPU is rolled back, never hung.
#[test]
fn forged_claim_is_not_waited_for() {
    let Some(mut env) = Env::new("dune::switchless::forged_claim_is_not_waited_for") else {
        return;
    };
    if mailbox(&env).is_none() {
        return;
    }
    let area = env.vm.layout().cpu_area(env.vcpu.index());
    let mb = area + trap_layout::CPU_SL_MAILBOX_OFFSET;
    let waiting = area + trap_layout::CPU_SL_STUB_OFFSET + trap_switchless::POSTED_OFFSET;
    let k = kick_soon(&env);
    let t = env.call(g::g_forged_claim(), &[mb, waiting]);
    k.join().unwrap();
    assert!(matches!(t, Trap::Interrupted), "{t:?}");
    let r = env.vcpu.regs().unwrap();
    assert_eq!((r.rip, r.rax), (r.rcx - 2, 1006), "rolled back to the syscall");
    assert!(matches!(env.resume(), Trap::Syscall(sc) if sc.nr == 1006));

    // With a non-canonical RCX the rollback target is not a register state at all: the vCPU
    // is sent to fetch from the (no-execute) mailbox page instead, a plain page fault.
    let k = kick_soon(&env);
    let t = env.call(g::g_forged_claim_bad_rcx(), &[mb, waiting]);
    k.join().unwrap();
    assert!(matches!(t, Trap::Interrupted), "{t:?}");
    match env.resume() {
        Trap::PageFault(pf) => assert_eq!((pf.addr, pf.rip), (mb, mb), "{pf:?}"),
        other => panic!("expected a fetch fault at the mailbox page, got {other:?}"),
    }
}
