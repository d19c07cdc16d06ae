//! Issue acceptance 6: errors a user can act on, never a panic.
use dune::{KvmError, MapError, Perms, Vm, VmConfig};

#[test]
fn kvm_errors_name_the_cause_and_the_fix() {
    let missing = KvmError::Missing.to_string();
    assert!(missing.contains("/dev/kvm does not exist") && missing.contains("modprobe"));
    let denied = KvmError::NotPermitted {
        path: "/dev/kvm".into(),
        fix: "add your user to group kvm".into(),
    };
    assert!(denied.to_string().contains("permission denied opening /dev/kvm: add your user"));
    let cap = KvmError::MissingCapability { name: "KVM_CAP_IMMEDIATE_EXIT", why: "x" }.to_string();
    assert!(cap.contains("KVM_CAP_IMMEDIATE_EXIT"));
    let e = dune::IoctlError { ioctl: "KVM_SET_USER_MEMORY_REGION", errno: libc::EEXIST };
    let s = e.to_string();
    assert!(s.contains("KVM_SET_USER_MEMORY_REGION") && s.contains("File exists"), "{s}");
}

#[test]
fn opening_a_path_that_is_not_kvm_fails_cleanly() {
    assert!(matches!(dune::KvmHost::open_path("/nonexistent/kvm"), Err(KvmError::Missing)));
    match dune::KvmHost::open_path("/dev/null") {
        Err(e @ KvmError::NotKvm { .. }) => {
            let s = e.to_string();
            assert!(s.contains("/dev/null is not a KVM device") && s.contains("lsmod"), "{s}");
        }
        other => panic!("expected 'not a KVM device', got {other:?}"),
    }
}

#[test]
fn bad_mappings_are_typed_errors() {
    if !dune::testing::kvm_or_skip("dune::errors::bad_mappings_are_typed_errors") {
        return;
    }
    let vm = Vm::new(VmConfig::default()).unwrap();
    assert!(matches!(vm.map(0x1001, 4096, Perms::USER_R), Err(MapError::Unaligned { .. })));
    assert!(matches!(
        vm.map(0x40_0000, 4096, Perms::USER_R),
        Err(MapError::NotBacked { gva: 0x40_0000 })
    ));
    // The runtime's own system area can be neither mapped over nor added as guest memory.
    let base = vm.layout().base;
    for e in [
        vm.map(base, 4096, Perms::USER_RW).unwrap_err(),
        vm.unmap(base, 4096).unwrap_err(),
        vm.protect(base, 4096, Perms::USER_R).unwrap_err(),
    ] {
        assert_eq!(e, MapError::Reserved { gva: base, len: 4096 });
        assert!(e.to_string().contains("system area"), "{e}");
    }
    // SAFETY: refused before KVM sees it.
    let e = unsafe { vm.add_memory(base, 4096, false) }.unwrap_err();
    assert!(
        matches!(e, dune::VmError::Memory(ept::EptError::Overlap { addr, .. }) if addr == base),
        "{e:?}"
    );
    // Not page aligned.
    // SAFETY: refused before KVM sees it.
    let e = unsafe { vm.add_memory(0x1234, 4096, false) }.unwrap_err();
    assert!(
        matches!(e, dune::VmError::Memory(ept::EptError::Unaligned { addr: 0x1234, len: 4096 })),
        "{e:?}"
    );
}

#[test]
fn too_many_vcpus() {
    if !dune::testing::kvm_or_skip("dune::errors::too_many_vcpus") {
        return;
    }
    let vm = Vm::new(VmConfig { max_vcpus: 1, ..VmConfig::default() }).unwrap();
    let _a = vm.create_vcpu().unwrap();
    assert!(matches!(vm.create_vcpu(), Err(dune::VmError::TooManyVcpus { max: 1 })));
}
