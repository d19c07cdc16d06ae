//! Exit costs, each beside the raw exit floor measured in the same run (`cargo xtask bench`
//! prints the ratios):
//!
//! * `exits/host_getpid`: a native `getpid` on the host (the cost of a system call at all);
//! * `exits/floor_doorbell`: the raw exit floor, a ring-3 store to a guest-physical page with no
//!   memory slot, KVM_RUN returning MMIO and resuming, without decoding (`Vcpu::run_raw`);
//! * `exits/syscall_round_trip`: guest `syscall` → trampoline → host decode → result → resume;
//! * `exits/syscall_round_trip_switchless` (ring-3 `syscall` hosts only): guest `syscall` →
//!   the vCPU's switchless stub → a host thread polling the mailbox answers → the stub returns,
//!   with no exit (the host thread spins on another CPU while it polls);
//! * `exits/page_fault_round_trip`: guest touches a not-present page → IDT trampoline → host
//!   decode (with CR2) → resume (it faults again).
#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Env, g};
use criterion::{Criterion, criterion_group, criterion_main};
use dune::{Perms, RawExit, Trap};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("exits");
    group.measurement_time(Duration::from_secs(4)).sample_size(30);
    group.bench_function("host_getpid", |b| {
        // SAFETY: getpid has no preconditions.
        b.iter(|| unsafe { libc::syscall(libc::SYS_getpid) })
    });
    let Some(mut env) = Env::new("dune::benches::exits") else {
        return;
    };
    // The tests' watchdog arms a timer around every KVM_RUN; a benchmark measures the exit alone.
    env.vcpu.set_watchdog(None);

    // The floor: a page whose memory slot was removed, so every store exits as MMIO.
    let floor = common::guest_pages(&env.vm, 4096, Perms::USER_RW);
    env.vm.remove_memory(floor, 4096).unwrap();
    env.start(g::g_doorbell_forever(), &[floor]);
    group.bench_function("floor_doorbell", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                let raw = env.vcpu.run_raw().unwrap();
                assert!(matches!(raw, RawExit::Mmio { write: true, .. }), "{raw:?}");
            }
            t.elapsed()
        })
    });

    env.start(g::g_syscall_forever(), &[]);
    group.bench_function("syscall_round_trip", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                match env.vcpu.run().unwrap() {
                    Trap::Syscall(_) => env.vcpu.set_syscall_result(0).unwrap(),
                    other => panic!("{other:?}"),
                }
            }
            t.elapsed()
        })
    });

    if let Some(mb) = env.vcpu.mailbox() {
        let stop = Arc::new(AtomicBool::new(false));
        mb.set_hot(true);
        let server = {
            let (mb, stop) = (mb.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match mb.try_claim() {
                        Some(sc) if sc.nr == 60 => mb.bounce(),
                        Some(sc) => mb.complete(3 * (sc.nr - 0x100) + 7),
                        None => std::hint::spin_loop(),
                    }
                }
            })
        };
        group.bench_function("syscall_round_trip_switchless", |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                // The guest checks every result; only its final exit call leaves the guest.
                match env.call(g::g_syscall_loop(), &[iters]) {
                    Trap::Syscall(sc) if sc.nr == 60 => {}
                    other => panic!("{other:?}"),
                }
                t.elapsed()
            })
        });
        mb.set_hot(false);
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
    }

    let absent = common::host_pages(4096);
    // SAFETY: bench-owned page, never mapped in the guest.
    unsafe { env.vm.add_memory(absent, 4096, false).unwrap() };
    env.start(g::g_touch_forever(), &[absent]);
    group.bench_function("page_fault_round_trip", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                match env.vcpu.run().unwrap() {
                    Trap::PageFault(pf) => assert_eq!(pf.addr, absent),
                    other => panic!("{other:?}"),
                }
            }
            t.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
