//! Issue acceptance 5b, 5c, 5d and 5i: page faults with the right address and error bits,
//! privileged instructions decoded as #GP with the host able to resume elsewhere, #UD, #DE,
//! `vmcall` never hanging, and accesses outside every memory slot decoded as faults.
mod common;
use common::{Env, g, guest_pages, report};
use dune::{IretFrame, Perms, Trap};

fn page_fault(t: Trap) -> dune::PageFault {
    match t {
        Trap::PageFault(pf) => pf,
        other => panic!("expected a page fault, got {other:?}"),
    }
}

#[test]
fn page_faults_carry_address_and_error_bits() {
    let Some(mut env) = Env::new("dune::faults::page_faults_carry_address_and_error_bits") else {
        return;
    };
    // Not present: a page added to the VM but never mapped in the guest.
    let unmapped = common::host_pages(4096);
    // SAFETY: test-owned page.
    unsafe { env.vm.add_memory(unmapped, 4096, false).unwrap() };
    let pf = page_fault(env.call(g::g_load(), &[unmapped + 0x18]));
    assert_eq!(pf.addr, unmapped + 0x18);
    assert_eq!(pf.rip, g::g_load());
    assert!(pf.user && !pf.error.present() && !pf.error.write() && !pf.error.fetch());

    // Write to a read-only page.
    let ro = guest_pages(&env.vm, 4096, Perms::USER_R);
    let pf = page_fault(env.call(g::g_store(), &[ro + 8, 42]));
    assert_eq!(pf.addr, ro + 8);
    assert_eq!(pf.rip, g::g_store());
    assert!(pf.user && pf.error.present() && pf.error.write() && !pf.error.fetch());
    // Reading it works.
    assert_eq!(report(env.call(g::g_load(), &[ro]), 0), 0);

    // Execute from a no-execute page.
    let nx = guest_pages(&env.vm, 4096, Perms::USER_RW);
    let pf = page_fault(env.call(g::g_exec(), &[nx + 0x40]));
    assert_eq!(pf.addr, nx + 0x40);
    assert_eq!(pf.rip, nx + 0x40);
    assert!(pf.user && pf.error.present() && pf.error.fetch());

    // A supervisor-only page (the runtime's own IDT) is not readable from ring 3.
    let idt = env.vm.layout().base;
    let pf = page_fault(env.call(g::g_load(), &[idt]));
    assert!(pf.user && pf.error.present() && !pf.error.write());

    // The host fixes the fault and resumes: the guest's load then completes.
    let _ = page_fault(env.call(g::g_load(), &[unmapped]));
    env.vm.map(unmapped, 4096, Perms::USER_R).unwrap();
    // SAFETY: test-owned page.
    unsafe { *(unmapped as *mut u64) = 77 };
    assert_eq!(report(env.resume(), 0), 77);
}

#[test]
fn protect_and_unmap_reach_the_guest() {
    let Some(mut env) = Env::new("dune::faults::protect_and_unmap_reach_the_guest") else {
        return;
    };
    let p = guest_pages(&env.vm, 4096, Perms::USER_RW);
    assert_eq!(report(env.call(g::g_store(), &[p, 5]), 1), p);
    // Downgrade to read-only: the next store faults (a stale writable translation would not).
    env.vm.protect(p, 4096, Perms::USER_R).unwrap();
    let pf = page_fault(env.call(g::g_store(), &[p, 6]));
    assert!(pf.error.present() && pf.error.write());
    assert_eq!(report(env.call(g::g_load(), &[p]), 0), 5);
    // Unmap: the next load faults as not present.
    env.vm.unmap(p, 4096).unwrap();
    let pf = page_fault(env.call(g::g_load(), &[p]));
    assert!(!pf.error.present());
}

#[test]
fn privileged_instructions_raise_gp_and_the_host_resumes_elsewhere() {
    let Some(mut env) =
        Env::new("dune::faults::privileged_instructions_raise_gp_and_the_host_resumes_elsewhere")
    else {
        return;
    };
    for (name, f) in [
        ("hlt", g::g_hlt()),
        ("cli", g::g_cli()),
        ("out", g::g_out()),
        ("in", g::g_in()),
        ("mov %cr3", g::g_movcr3()),
        ("lgdt", g::g_lgdt()),
        ("wrmsr", g::g_wrmsr()),
        ("swapgs", g::g_swapgs()),
    ] {
        match env.call(f, &[]) {
            Trap::Exception(e) => {
                assert_eq!(e.vector, 13, "{name}: #GP expected, got vector {}", e.vector);
                assert_eq!(e.rip, f, "{name}: faulting RIP");
                assert!(e.user, "{name}");
                assert_eq!(e.error_code, Some(0), "{name}");
            }
            other => panic!("{name}: expected #GP, got {other:?}"),
        }
        // Resume at the report function by rewriting the exception frame.
        let frame = env.vcpu.exception_frame();
        assert_eq!(frame.rip, f);
        assert_eq!(frame.cs & 3, 3);
        env.vcpu.set_exception_frame(&IretFrame { rip: g::g_report(), ..frame });
        assert_eq!(report(env.resume(), 2), 0, "{name}: resumed at the report function");
    }
}

#[test]
fn ud2_divide_error_and_vmcall() {
    let Some(mut env) = Env::new("dune::faults::ud2_divide_error_and_vmcall") else {
        return;
    };
    match env.call(g::g_ud2(), &[]) {
        Trap::Exception(e) => assert_eq!((e.vector, e.rip, e.error_code), (6, g::g_ud2(), None)),
        other => panic!("ud2: {other:?}"),
    }
    match env.call(g::g_div0(), &[]) {
        Trap::Exception(e) => assert_eq!((e.vector, e.rip), (0, g::g_div0_insn())),
        other => panic!("div by zero: {other:?}"),
    }
    // vmcall must never hang the vCPU (the watchdog would fail this test). Where KVM's
    // hypercall-patching quirk is disabled it raises #UD; on VT-x/AMD-V KVM itself answers a
    // CPL-3 vmcall with -KVM_EPERM in RAX (arch/x86/kvm/x86.c, kvm_emulate_hypercall).
    match env.call(g::g_vmcall(), &[]) {
        // AMD-V: KVM intercepts the #UD and its instruction emulator treats `vmcall` as
        // privileged, so CPL 3 gets #GP (arch/x86/kvm/emulate.c, group7_rm0 `Priv`).
        Trap::Exception(e) if e.vector == 13 && e.rip == g::g_vmcall() => {}
        Trap::Exception(e) => assert_eq!((e.vector, e.rip), (6, g::g_vmcall())),
        Trap::Syscall(sc) if sc.nr == common::REPORT + 3 => {
            assert_eq!(sc.args[0] as i64, -1, "vmcall from CPL 3 returns -KVM_EPERM")
        }
        other => panic!("vmcall: {other:?}"),
    }
}

#[test]
fn access_outside_every_slot_is_a_fault() {
    let Some(mut env) = Env::new("dune::faults::access_outside_every_slot_is_a_fault") else {
        return;
    };
    let p = guest_pages(&env.vm, 4096, Perms::USER_RW);
    let gpa = env.vm.hva_to_gpa(p).unwrap();
    // Remove the memory slot but leave the guest mapping: the GPA is now backed by nothing.
    env.vm.remove_memory(p, 4096).unwrap();
    match env.call(g::g_load(), &[p]) {
        Trap::PhysFault { gpa: got, write, .. } => {
            assert_eq!(got, gpa);
            assert!(!write);
        }
        other => panic!("expected a fault on guest-physical {gpa:#x}, got {other:?}"),
    }
    match env.call(g::g_store(), &[p + 8, 1]) {
        Trap::PhysFault { gpa: got, write, .. } => assert_eq!((got, write), (gpa + 8, true)),
        other => panic!("expected a write fault, got {other:?}"),
    }
    // The vCPU is still usable afterwards.
    assert_eq!(report(env.call(g::g_report(), &[9]), 2), 9);
}
