//! Issue acceptance 5a: a guest ring-3 loop of 10,000 `syscall`s, each seen by the host with the
//! right registers and resumed with a result the guest checks.
mod common;
use common::{Env, g};
use dune::Trap;

#[test]
fn ten_thousand_syscalls_round_trip() {
    let Some(mut env) = Env::new("dune::syscalls::ten_thousand_syscalls_round_trip") else {
        return;
    };
    let n = 10_000u64;
    let mut t = env.call(g::g_syscall_loop(), &[n]);
    let mut i = 0u64;
    loop {
        match t {
            Trap::Syscall(sc) if sc.nr == 60 => {
                // The return address is the instruction after the guest's `syscall`.
                assert!(sc.return_rip > g::g_syscall_loop() && sc.return_rip < g::g_end());
                break;
            }
            Trap::Syscall(sc) => {
                assert_eq!(sc.nr, 0x100 + i, "system call number");
                assert_eq!(
                    sc.args,
                    [i, i + 1, i + 2, i + 3, i + 4, i + 5],
                    "arguments of call {i}"
                );
                env.vcpu.set_syscall_result(3 * i + 7).unwrap();
                i += 1;
            }
            other => panic!("unexpected {other:?} after {i} calls (the guest checks each result)"),
        }
        t = env.resume();
    }
    assert_eq!(i, n);
}

#[test]
fn syscall_can_return_elsewhere() {
    let Some(mut env) = Env::new("dune::syscalls::syscall_can_return_elsewhere") else {
        return;
    };
    let t = env.call(g::g_syscall_loop(), &[5]);
    assert!(matches!(t, Trap::Syscall(sc) if sc.nr == 0x100));
    // Make the system call "return" into the report function instead.
    env.vcpu.set_syscall_return(g::g_report()).unwrap();
    assert_eq!(common::report(env.resume(), 2), 0);
}

#[test]
fn fs_base_is_the_guests() {
    let Some(mut env) = Env::new("dune::syscalls::fs_base_is_the_guests") else {
        return;
    };
    let tls = common::guest_pages(&env.vm, 4096, dune::Perms::USER_RW);
    // SAFETY: test-owned page.
    unsafe { *(tls as *mut u64) = 0x1234_5678_9abc_def0 };
    env.vcpu.set_fs_base(tls).unwrap();
    assert_eq!(common::report(env.call(g::g_fs(), &[]), 5), 0x1234_5678_9abc_def0);
}

/// The VT-x rig (`cargo xtask vtx`) runs this with `DUNE_EXPECT_SYSCALL_PATH=ring0` and
/// `DUNE_EXPECT_TLB_FLUSH=reload-cr3`: the start-up probe must pick the VT-x paths there. Without
/// those variables it only prints the probe's verdict.
#[test]
fn probe_picks_the_expected_platform() {
    let Some(env) = Env::new("dune::syscalls::probe_picks_the_expected_platform") else {
        return;
    };
    let p = env.vm.platform();
    eprintln!("dune platform: {p:?}");
    let syscall_path = match p.syscall_path {
        dune::SyscallPath::Ring0 => "ring0",
        dune::SyscallPath::Ring3Doorbell => "ring3-doorbell",
    };
    let tlb_flush = match p.tlb_flush {
        dune::TlbFlush::ReloadCr3 => "reload-cr3",
        dune::TlbFlush::ZapShadow => "zap-shadow",
    };
    for (var, got) in
        [("DUNE_EXPECT_SYSCALL_PATH", syscall_path), ("DUNE_EXPECT_TLB_FLUSH", tlb_flush)]
    {
        if let Ok(want) = std::env::var(var) {
            assert_eq!(got, want, "{var}: the probe chose {p:?}");
        }
    }
}
