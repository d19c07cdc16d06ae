//! The platform probe, run once per [`Vm`]: measures how this host's KVM behaves and picks the
//! paths that fit. Each step runs a few instructions of the ring-3 trampoline page's probe code
//! on a throw-away vCPU and looks at the exit.
//!
//! 1. **System-call path**: LSTAR points at `outb %al, $PROBE_PORT` on a user page and the guest
//!    executes `syscall` in ring 3. An I/O exit (or an SMEP page fault in ring 0) means `syscall`
//!    entered ring 0, as on VT-x/AMD-V; a #GP from ring 3 at LSTAR means it stayed at CPL 3, as on
//!    kvm_pvm (shared/tools/kvm-probe/RESULTS.md, "The model this PVM implements" item 3).
//! 2. **TLB flush**: the guest reads a page; the host unmaps it in the guest page tables and
//!    reloads CR3; the guest reads again. A page fault means a CR3 reload reaches the guest's
//!    translations; a successful read means the host's MMU keeps shadow pages that host writes
//!    do not invalidate, so flushes must zap them ([`TlbFlush::ZapShadow`]).
//! 3. **1 GiB pages**: when CPUID advertises them (0x80000001 EDX bit 26), a 1 GiB page is mapped
//!    and read. kvm_pvm does not advertise them (they fail there with a reserved-bit fault).
//! 4. **The guest's TSC**: the guest executes `rdtsc` in ring 3 between two host `rdtsc`s; it
//!    is the host's TSC when it lies between them ([`Platform::host_tsc`]). On kvm_pvm ring 3
//!    runs natively and reads the host's TSC; on VT-x/AMD-V it does once the vCPU's TSC offset
//!    is 0 (`Vcpu::zero_tsc_offset`) and KVM does not scale it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use trap::tramp::{
    PROBE_LSTAR_OFFSET, PROBE_RDTSC_OFFSET, PROBE_READ_OFFSET, PROBE_SYSCALL_OFFSET,
};

use crate::Trap;
use crate::error::VmError;
use crate::paging::{PAGE_1G, Perms};
use crate::vcpu::Vcpu;
use crate::vm::{Platform, SyscallPath, TlbFlush, Vm};

fn unexpected(step: &'static str, seen: impl std::fmt::Debug) -> VmError {
    VmError::Probe { step, seen: format!("{seen:?}") }
}

/// Reads one byte at `addr` from ring 3. `Ok(true)` when the read succeeded, `Ok(false)` on a
/// user page fault at `addr`.
fn read(vm: &Vm, vcpu: &mut Vcpu, addr: u64, step: &'static str) -> Result<bool, VmError> {
    let code = vm.layout().ring3_code + PROBE_READ_OFFSET;
    let mut r = vcpu.regs()?;
    r.rdi = addr;
    vcpu.set_regs(&r)?;
    vcpu.enter_user(code, 0)?;
    match vcpu.run()? {
        Trap::Exception(e) if e.vector == 6 && e.user && e.rip == code + 2 => Ok(true),
        Trap::PageFault(pf) if pf.user && pf.addr == addr && pf.rip == code => Ok(false),
        other => Err(unexpected(step, other)),
    }
}

pub(crate) fn run(vm: &Arc<Vm>) -> Result<Platform, VmError> {
    let t0 = Instant::now();
    let mut vcpu = vm.probe_vcpu()?;
    vcpu.set_watchdog(Some(Duration::from_secs(10)));
    let l = vm.layout();

    // 1. Where does a ring-3 `syscall` land?
    let lstar = l.ring3_code + PROBE_LSTAR_OFFSET;
    vcpu.set_lstar(lstar, 0)?;
    vcpu.enter_user(l.ring3_code + PROBE_SYSCALL_OFFSET, 0)?;
    let syscall_path = match vcpu.run()? {
        Trap::ProbeRing0 => SyscallPath::Ring0,
        Trap::PageFault(pf) if !pf.user && pf.rip == lstar => SyscallPath::Ring0, // SMEP
        Trap::Exception(e) if e.vector == 13 && e.user && e.rip == lstar => {
            SyscallPath::Ring3Doorbell
        }
        other => return Err(unexpected("syscall from ring 3", other)),
    };

    // 2. Does a CR3 reload make the guest see host changes to its page tables?
    let scratch = vm.scratch_page();
    vm.map_system(scratch, Some(Perms::USER_R))?;
    if !read(vm, &mut vcpu, scratch, "read of a mapped page")? {
        return Err(unexpected("read of a mapped page", "page fault"));
    }
    vm.map_system(scratch, None)?; // requests a flush; with no platform yet it is a CR3 reload
    let tlb_flush = if read(vm, &mut vcpu, scratch, "read after unmap + CR3 reload")? {
        let generation = vm.tlb_gen.load(std::sync::atomic::Ordering::SeqCst);
        vm.zap_shadow(generation)?;
        if read(vm, &mut vcpu, scratch, "read after unmap + shadow zap")? {
            return Err(unexpected(
                "read after unmap + shadow zap",
                "the stale page was still readable",
            ));
        }
        TlbFlush::ZapShadow
    } else {
        TlbFlush::ReloadCr3
    };

    // 3. 1 GiB pages, when advertised.
    let advertised = vm.host().cpuid(0x8000_0001, 0).is_some_and(|e| e.edx & (1 << 26) != 0);
    let huge_1g = if advertised {
        let arena = l.page_tables_start;
        debug_assert!(arena.is_multiple_of(PAGE_1G));
        vm.pt().map_1g(arena, arena, Perms::USER_R)?;
        vm.request_tlb_flush();
        let ok = read(vm, &mut vcpu, arena, "read through a 1 GiB page").unwrap_or(false);
        vm.pt().unmap_1g(arena);
        vm.request_tlb_flush();
        if tlb_flush == TlbFlush::ZapShadow {
            vm.zap_shadow(vm.tlb_gen.load(std::sync::atomic::Ordering::SeqCst))?;
        }
        ok
    } else {
        false
    };
    // 4. Is the guest's TSC the host's?
    let host_tsc = guest_tsc_is_host(vm, &mut vcpu)?;
    Ok(Platform { syscall_path, huge_1g, tlb_flush, host_tsc, probe_time: t0.elapsed() })
}

fn guest_tsc_is_host(vm: &Vm, vcpu: &mut Vcpu) -> Result<bool, VmError> {
    let code = vm.layout().ring3_code + PROBE_RDTSC_OFFSET;
    // Twice: the first run may take page faults into KVM's shadow pages, and a guest TSC
    // that is merely close would pass one try by chance only if it were within the window.
    let mut ok = true;
    for _ in 0..2 {
        vcpu.enter_user(code, 0)?;
        let before = rdtsc();
        let trap = vcpu.run()?;
        let after = rdtsc();
        match trap {
            Trap::Exception(e) if e.vector == 6 && e.user && e.rip == code + 2 => {}
            other => return Err(unexpected("rdtsc in ring 3", other)),
        }
        let r = vcpu.regs()?;
        let guest = (r.rdx << 32) | (r.rax & 0xffff_ffff);
        ok &= before <= guest && guest <= after;
    }
    Ok(ok)
}

fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` reads the time-stamp counter; it has no memory effects.
    #[allow(unsafe_code)]
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
}
