//! Issue acceptance 5f: two vCPUs on two host threads run concurrently in one VM, and two VMs
//! in one process work too.
mod common;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use common::{Env, g, map_guest_code};
use dune::{Trap, Vm, VmConfig};

/// Runs `n` checked system calls on `env`'s vCPU (the guest verifies every result).
fn syscall_loop(env: &mut Env, n: u64) {
    let mut t = env.call(g::g_syscall_loop(), &[n]);
    let mut i = 0;
    loop {
        match t {
            Trap::Syscall(sc) if sc.nr == 60 => break,
            Trap::Syscall(sc) => {
                assert_eq!(sc.nr, 0x100 + i);
                env.vcpu.set_syscall_result(3 * i + 7).unwrap();
                i += 1;
            }
            Trap::Interrupted => {}
            other => panic!("unexpected {other:?}"),
        }
        t = env.resume();
    }
    assert_eq!(i, n);
}

#[test]
fn two_vcpus_on_two_threads_in_one_vm() {
    if !dune::testing::kvm_or_skip("dune::smp::two_vcpus_on_two_threads_in_one_vm") {
        return;
    }
    let vm = Vm::new(VmConfig::default()).unwrap();
    map_guest_code(&vm);
    let barrier = Arc::new(Barrier::new(2));
    let spans: Vec<_> = (0..2)
        .map(|_| {
            let vm = vm.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let stack = common::guest_pages(&vm, 64 << 10, dune::Perms::USER_RW);
                let mut vcpu = vm.create_vcpu().unwrap();
                vcpu.set_watchdog(Some(std::time::Duration::from_secs(20)));
                let mut env = Env { vm, vcpu, stack_top: stack + (64 << 10) };
                barrier.wait();
                let t0 = Instant::now();
                syscall_loop(&mut env, 2000);
                (t0, Instant::now(), env.vcpu.index())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect::<Vec<_>>();
    assert_ne!(spans[0].2, spans[1].2, "distinct vCPUs");
    // The two runs overlapped in time (they ran concurrently, not one after the other).
    let (a, b) = (&spans[0], &spans[1]);
    assert!(a.0 < b.1 && b.0 < a.1, "runs did not overlap: {a:?} {b:?}");
}

#[test]
fn two_vms_in_one_process() {
    let Some(mut one) = Env::new("dune::smp::two_vms_in_one_process") else {
        return;
    };
    let mut two = Env::with_vm(Vm::new(VmConfig::default()).unwrap());
    assert_ne!(one.vm.layout().base, two.vm.layout().base, "separate system areas");
    syscall_loop(&mut one, 500);
    syscall_loop(&mut two, 500);
    // And concurrently, each on its own thread.
    let h = std::thread::spawn(move || {
        syscall_loop(&mut two, 1000);
        two
    });
    syscall_loop(&mut one, 1000);
    let _two = h.join().unwrap();
}
