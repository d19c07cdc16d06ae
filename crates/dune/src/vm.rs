//! The VM: one per host process (KVM binds a VM to the `mm` that created it).
//!
//! A [`Vm`] owns the VM fd, the guest-physical map (`ept`), the guest page tables and the
//! runtime's *system area*: host memory below the guest-physical width holding the IDT, the
//! trampolines, and one GDT/TSS/IST-stack area per vCPU (layout in [`trap::layout`]). Nothing of
//! the system area is mapped in the guest except as the layout says: supervisor-only, apart from
//! the ring-3 trampoline page (user, read-only) and the doorbell page (user, writable, no memory
//! slot behind it).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use kvm_bindings::kvm_enable_cap;
use kvm_ioctls::VmFd;
use trap::layout::{self, PAGE_SIZE};
use trap::tramp;

use crate::error::{IoctlError, MapError, VmError};
use crate::kvm::KvmHost;
pub use crate::paging::Flush;
use crate::paging::{PAGE_1G, PAGE_2M, PAGE_4K, PageTables, Perms, Translation, Walk};
use crate::sys::{self, HostMapping};
use crate::vcpu::{KickHandle, Vcpu};

/// Where a VM puts its descriptors (`/dev/kvm`, the VM, each vCPU): an embedder whose guest
/// program shares the process's descriptor table keeps them apart from the program's.
pub trait FdPlacer: Send + Sync + std::fmt::Debug {
    /// Takes the new descriptor `fd` (the caller's) and returns the number it lives at now,
    /// having closed `fd` if it moved it.
    fn place(&self, fd: std::os::fd::RawFd) -> std::io::Result<std::os::fd::RawFd>;
    /// Creating a descriptor failed with `EMFILE`: frees a number if it can. `true`: try again.
    fn make_room(&self) -> bool;
    /// A descriptor [`FdPlacer::place`] returned was closed.
    fn closed(&self, fd: std::os::fd::RawFd);
    /// Held from just before a descriptor is created until [`FdPlacer::place`] returned: an
    /// embedder whose program can close or duplicate descriptors meanwhile (another thread)
    /// keeps it from touching the new one while it still has a number of the program's.
    fn creating(&self) -> Box<dyn Held + '_> {
        Box::new(())
    }
}

/// Anything held for its `Drop` (a lock guard): see [`FdPlacer::creating`].
pub trait Held {}
impl<T> Held for T {}

/// How a VM is created.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// Most vCPUs the VM will ever have (each costs 20 KiB of the system area).
    pub max_vcpus: u32,
    /// Bytes of host memory reserved (not committed) for guest page tables; 1 GiB maps about
    /// 512 GiB with 4 KiB pages.
    pub page_table_bytes: u64,
    /// Guest-physical (and host-virtual) address of the system area, or `None` for the first free
    /// spot from half the guest-physical width (at most `2^46`) upwards.
    pub system_base: Option<u64>,
    /// Where every KVM descriptor (`/dev/kvm`, the VM, each vCPU) goes once created, so that a
    /// program in the guest sharing the descriptor table gets the numbers it would get natively
    /// and cannot reach the VM's. `None`: wherever the kernel puts them.
    pub fd_placer: Option<Arc<dyn FdPlacer>>,
    /// An open `/dev/kvm` descriptor to duplicate instead of opening `/dev/kvm` (a forked
    /// child's, inherited from its parent: it may no longer be allowed to open the device, for
    /// instance after dropping privileges). `None`: open `/dev/kvm`.
    pub kvm_fd: Option<std::os::fd::RawFd>,
    /// Merge touching memory ranges into one slot ([`ept::GuestPhysMap::set_coalesce`]). Turn
    /// off when vCPUs run while memory is added (a merge briefly deletes a slot).
    pub coalesce_slots: bool,
    /// The probe's verdict from an earlier VM on this host (e.g. a forked parent's): skips the
    /// probe. `None`: probe.
    pub platform: Option<Platform>,
    /// On hosts where `syscall` stays at CPL 3, point each vCPU's LSTAR at its own switchless
    /// stub ([`trap::switchless`]), which hands system calls to a thread polling the vCPU's
    /// [`Mailbox`](crate::Mailbox) while one does, and exits through the doorbell otherwise.
    /// Without a polling thread it costs a few instructions per call. `false`: the shared
    /// doorbell stub. No effect on VT-x/AMD-V hosts.
    pub switchless: bool,
}

/// Where the system area goes unless [`VmConfig::system_base`] says: half the guest-physical
/// width, `2^(w-1)`, so that everything below it (the program's range) is identity mapped and
/// the window above `2^w - 2^(w-2)` stays clear; but never above `2^46`. A host user address
/// space is 47 bits with 4-level paging (`TASK_SIZE_MAX`, arch/x86/include/asm/page_64_types.h;
/// with LA57 the kernel hands out higher addresses only when asked), and the guest's own
/// 4-level page tables reach only the canonical lower half `[0, 2^47)`: on a host reporting 48
/// bits or more (AMD EPYC hosts of kvm_pvm report 48), `2^(w-1)` would lie at or above the top
/// of user space and no mapping could be placed there. `2^46` keeps the program range 64 TiB
/// and stays below where Linux puts PIE executables (`0x55...`) and mmaps (`0x7f...`).
pub(crate) fn default_system_base(width: u8) -> u64 {
    1u64 << (width.min(47) - 1)
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            max_vcpus: 64,
            page_table_bytes: PAGE_1G,
            system_base: None,
            fd_placer: None,
            kvm_fd: None,
            coalesce_slots: true,
            platform: None,
            switchless: true,
        }
    }
}

/// Which LSTAR trampoline this host needs (chosen by the start-up probe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyscallPath {
    /// `syscall` enters ring 0 (VT-x/AMD-V): ring-0 stub exits with `out`, returns with `sysretq`.
    Ring0,
    /// `syscall` stays at CPL 3 (kvm_pvm): ring-3 stub stores to the doorbell, then `jmp *%rcx`.
    Ring3Doorbell,
}

/// How a TLB flush is made to reach the guest after the host changed its page tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlbFlush {
    /// Reload CR3 (toggling its PWT bit through `KVM_SET_SREGS`, which resets KVM's MMU context):
    /// enough wherever the guest's translations live only in the hardware TLB (EPT/NPT).
    ReloadCr3,
    /// Delete and re-create a dedicated one-page memory slot, which makes KVM drop every shadow
    /// page (`kvm_arch_flush_shadow_memslot`): needed on shadow-paging hosts such as kvm_pvm,
    /// where host writes to guest page tables are not write-tracked.
    ZapShadow,
}

/// What the start-up probe measured about this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Platform {
    /// The system-call path.
    pub syscall_path: SyscallPath,
    /// Whether 1 GiB guest pages work (they fail on kvm_pvm).
    pub huge_1g: bool,
    /// The TLB-flush method.
    pub tlb_flush: TlbFlush,
    /// Whether `rdtsc` in guest ring 3 reads the host's TSC (no offset, no scaling): the probe
    /// reads it between two host reads. The host's vDSO gives the host's time in the guest
    /// only then.
    pub host_tsc: bool,
    /// Wall time the probe took.
    pub probe_time: Duration,
}

/// Guest-virtual addresses of the system structures (GVA == HVA == GPA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SystemLayout {
    /// Start of the system area.
    pub base: u64,
    /// Bytes of the system area.
    pub len: u64,
    /// The doorbell page (no memory slot behind it).
    pub doorbell: u64,
    /// The ring-0 trampoline page.
    pub ring0_code: u64,
    /// The ring-3 trampoline page.
    pub ring3_code: u64,
    /// Start of the page-table arena.
    pub page_tables_start: u64,
    /// End of the page-table arena.
    pub page_tables_end: u64,
}

impl SystemLayout {
    /// GVA of vCPU area `index`.
    pub fn cpu_area(&self, index: u32) -> u64 {
        self.base + layout::cpu_area_offset(u64::from(index))
    }
    /// The ring-0 LSTAR stub.
    pub fn lstar_ring0(&self) -> u64 {
        self.ring0_code + tramp::RING0_LSTAR_OFFSET
    }
    /// The ring-3 LSTAR stub.
    pub fn lstar_ring3(&self) -> u64 {
        self.ring3_code + tramp::RING3_LSTAR_OFFSET
    }
    /// Whether `[addr, addr + len)` touches the system area or the page-table arena.
    pub fn overlaps(&self, addr: u64, len: u64) -> bool {
        let end = addr.saturating_add(len);
        (addr < self.base + self.len && end > self.base)
            || (addr < self.page_tables_end && end > self.page_tables_start)
    }
}

/// A process-level VM.
#[derive(Debug)]
pub struct Vm {
    pub(crate) host: KvmHost,
    pub(crate) fd: VmFd,
    mem: Mutex<ept::GuestPhysMap>,
    pt: Mutex<PageTables>,
    pub(crate) system: HostMapping,
    pub(crate) layout: SystemLayout,
    platform: OnceLock<Platform>,
    cfg: VmConfig,
    next_vcpu: AtomicU32,
    pub(crate) tlb_gen: AtomicU64,
    /// Slot id and HVA of the one-page slot deleted and re-created for [`TlbFlush::ZapShadow`].
    zap_slot: (u32, u64),
    zap_lock: Mutex<u64>,
    running: Mutex<Vec<KickHandle>>,
    fds: Mutex<Vec<std::os::fd::RawFd>>,
}

/// The probe's scratch page: the unused bottom page of the probe vCPU's IST stack (the vCPU area
/// after the last real one).
fn scratch_page(layout: &SystemLayout, max_vcpus: u32) -> u64 {
    layout.cpu_area(max_vcpus) + PAGE_SIZE
}

impl Vm {
    /// Creates a VM: opens `/dev/kvm`, builds the system area and page tables, disables the
    /// hypercall-patching quirk, and runs the platform probe.
    ///
    /// Errors: [`VmError::Kvm`] when `/dev/kvm` is missing, not permitted or too old;
    /// [`VmError::Ioctl`] naming the failed ioctl; [`VmError::HostMemory`] when no room below the
    /// guest-physical width is free; [`VmError::Probe`] when the host behaves in a way the runtime
    /// does not know.
    pub fn new(cfg: VmConfig) -> Result<Arc<Vm>, VmError> {
        let host = match cfg.kvm_fd {
            Some(fd) => KvmHost::duplicate(fd, cfg.fd_placer.as_deref())?,
            None => KvmHost::open_at("/dev/kvm", cfg.fd_placer.as_deref())?,
        };
        let fd = sys::create_vm(&host.kvm, cfg.fd_placer.as_deref())
            .map_err(|e| IoctlError::from_io("KVM_CREATE_VM", &e))?;
        Self::disable_hypercall_patching(&host, &fd)?;

        let width = host.phys_bits;
        let mut mem = ept::GuestPhysMap::new(width, host.nr_memslots)?;
        mem.set_coalesce(cfg.coalesce_slots);
        // One vCPU area more than configured: the probe vCPU's, whose unused stack page is also
        // the probe's scratch page.
        // Plus two pages at the end: a gap, then the zap slot's page.
        let sys_len = (layout::system_area_size(u64::from(cfg.max_vcpus) + 1) + 2 * PAGE_SIZE)
            .next_multiple_of(PAGE_2M);
        let pt_len = cfg.page_table_bytes.next_multiple_of(PAGE_2M);
        let (system, arena) = Self::place(&cfg, width, mem.window().start, sys_len, pt_len)?;
        let base = system.addr();
        let layout = SystemLayout {
            base,
            len: sys_len,
            doorbell: base + layout::DOORBELL_OFFSET,
            ring0_code: base + layout::RING0_CODE_OFFSET,
            ring3_code: base + layout::RING3_CODE_OFFSET,
            page_tables_start: arena.addr(),
            page_tables_end: arena.addr() + arena.len(),
        };
        // The system area minus the doorbell page, and the arena, identity-mapped. The last page
        // of the system area gets a slot of its own (the zap slot), kept apart from the vCPU
        // areas by one unslotted page so the two are never coalesced.
        let zap_hva = base + sys_len - PAGE_SIZE;
        let zap_plan = mem.insert_identity(zap_hva, PAGE_SIZE, false)?;
        let zap_slot = (zap_plan.create[0].id, zap_hva);
        let plans = [
            zap_plan,
            mem.insert_identity(base, layout::DOORBELL_OFFSET, false)?,
            mem.insert_identity(
                base + layout::CPU_AREAS_OFFSET,
                sys_len - 2 * PAGE_SIZE - layout::CPU_AREAS_OFFSET,
                false,
            )?,
            mem.insert_identity(arena.addr(), arena.len(), false)?,
        ];
        let pt = PageTables::new(arena)?;
        let vm = Vm {
            host,
            fd,
            mem: Mutex::new(mem),
            pt: Mutex::new(pt),
            system,
            layout,
            platform: OnceLock::new(),
            cfg,
            next_vcpu: AtomicU32::new(0),
            tlb_gen: AtomicU64::new(0),
            zap_slot,
            zap_lock: Mutex::new(0),
            running: Mutex::new(Vec::new()),
            fds: Mutex::new(Vec::new()),
        };
        for plan in &plans {
            vm.apply(plan)?;
        }
        vm.write_system_area()?;
        let vm = Arc::new(vm);
        let platform = match vm.cfg.platform {
            Some(p) => p,
            None => crate::probe::run(&vm)?,
        };
        tracing::debug!(?platform, "dune platform probe");
        vm.platform.set(platform).expect("platform probed twice");
        if platform.syscall_path == SyscallPath::Ring3Doorbell {
            let _ =
                vm.pt().map(layout.doorbell, layout.doorbell, PAGE_SIZE, Perms::USER_RW, false)?;
        }
        Ok(vm)
    }

    fn disable_hypercall_patching(host: &KvmHost, fd: &VmFd) -> Result<(), VmError> {
        let quirk = u64::from(kvm_bindings::KVM_X86_QUIRK_FIX_HYPERCALL_INSN);
        if host.disable_quirks2 & quirk == 0 {
            // Older kernels: a stray vmcall is handled by KVM on VT-x/AMD-V (no hang there).
            tracing::debug!("KVM_CAP_DISABLE_QUIRKS2 lacks FIX_HYPERCALL_INSN; vmcall not guarded");
            return Ok(());
        }
        let mut cap =
            kvm_enable_cap { cap: kvm_bindings::KVM_CAP_DISABLE_QUIRKS2, ..Default::default() };
        cap.args[0] = quirk;
        fd.enable_cap(&cap)
            .map_err(|e| IoctlError::new("KVM_ENABLE_CAP(KVM_CAP_DISABLE_QUIRKS2)", e))?;
        Ok(())
    }

    /// Finds room for the system area and the page-table arena (1 GiB aligned, so the probe can
    /// test a 1 GiB page over it) below the window.
    fn place(
        cfg: &VmConfig,
        width: u8,
        limit: u64,
        sys_len: u64,
        pt_len: u64,
    ) -> Result<(HostMapping, HostMapping), VmError> {
        let stride = (sys_len + pt_len + PAGE_1G).next_multiple_of(PAGE_1G) + PAGE_1G;
        let first = cfg.system_base.unwrap_or_else(|| default_system_base(width));
        let mut last_err = None;
        for k in 0..256u64 {
            let base = first + k * stride;
            let arena_at = (base + sys_len).next_multiple_of(PAGE_1G);
            if arena_at + pt_len > limit {
                break;
            }
            let system = match HostMapping::anon_at(base, sys_len) {
                Ok(m) => m,
                Err(e) => {
                    last_err = Some(e);
                    continue;
                }
            };
            match HostMapping::anon_at(arena_at, pt_len) {
                Ok(arena) => return Ok((system, arena)),
                Err(e) => last_err = Some(e),
            }
            if cfg.system_base.is_some() {
                break;
            }
        }
        Err(VmError::HostMemory {
            what: "the system area and page tables",
            len: sys_len + pt_len,
            source: last_err.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::ENOMEM)),
        })
    }

    /// Writes the IDT and both trampoline pages and maps them in the guest.
    fn write_system_area(&self) -> Result<(), VmError> {
        let l = &self.layout;
        let idt = trap::desc::idt(|v| l.ring0_code + tramp::vector_stub_offset(v));
        let bytes: Vec<u8> = idt.iter().flatten().flat_map(|q| q.to_le_bytes()).collect();
        self.system.write(layout::IDT_OFFSET, &bytes);
        self.system.write(layout::RING0_CODE_OFFSET, tramp::ring0_code());
        self.system.write(layout::RING3_CODE_OFFSET, tramp::ring3_code());
        let mut pt = self.pt();
        let _ = pt.map(
            l.base + layout::IDT_OFFSET,
            l.base + layout::IDT_OFFSET,
            PAGE_SIZE,
            Perms::KERNEL_R,
            false,
        )?;
        let _ = pt.map(l.ring0_code, l.ring0_code, PAGE_SIZE, Perms::KERNEL_RX, false)?;
        let _ = pt.map(l.ring3_code, l.ring3_code, PAGE_SIZE, Perms::USER_RX, false)?;
        Ok(())
    }

    #[allow(unsafe_code)]
    fn apply(&self, plan: &ept::Plan) -> Result<(), VmError> {
        for s in &plan.delete {
            // SAFETY: deleting a slot (size 0) gives KVM no new access to host memory.
            unsafe { sys::set_slot(&self.fd, s.id, s.gpa, s.hva, 0, s.readonly) }
                .map_err(|e| IoctlError::new("KVM_SET_USER_MEMORY_REGION", e))?;
        }
        for s in &plan.create {
            // SAFETY: every range reaching a plan was handed over by `add_memory`'s caller (whose
            // contract covers it) or is runtime memory owned by this VM for its whole life.
            unsafe { sys::set_slot(&self.fd, s.id, s.gpa, s.hva, s.len, s.readonly) }
                .map_err(|e| IoctlError::new("KVM_SET_USER_MEMORY_REGION", e))?;
        }
        Ok(())
    }

    /// The probe's verdict about this host.
    pub fn platform(&self) -> Platform {
        *self.platform.get().expect("platform is probed in Vm::new")
    }

    /// Whether vCPUs use their switchless stubs (ring-3 `syscall` hosts with
    /// [`VmConfig::switchless`]).
    pub fn switchless(&self) -> bool {
        self.cfg.switchless
            && self.platform_opt().is_some_and(|p| p.syscall_path == SyscallPath::Ring3Doorbell)
    }

    pub(crate) fn platform_opt(&self) -> Option<Platform> {
        self.platform.get().copied()
    }

    /// Addresses of the system structures.
    pub fn layout(&self) -> SystemLayout {
        self.layout
    }

    /// Guest-physical address width in bits.
    pub fn phys_bits(&self) -> u8 {
        self.host.phys_bits
    }

    /// The KVM host handle (CPUID, capabilities).
    pub fn host(&self) -> &crate::kvm::KvmHost {
        &self.host
    }

    /// Makes host memory `[hva, hva + len)` guest-physical memory: at GPA == HVA below the
    /// window, at a window GPA above it. Page aligned. Returns the GPA of `hva`. Idempotent for
    /// ranges already added.
    ///
    /// # Safety
    /// The range must remain part of this process's address space while it is added (host
    /// `munmap`/`mmap(MAP_FIXED)` over it are fine: KVM follows them through its MMU notifier),
    /// and the guest may read and write it at any time while a vCPU runs: no Rust reference may
    /// assume the bytes do not change.
    #[allow(unsafe_code)]
    pub unsafe fn add_memory(&self, hva: u64, len: u64, readonly: bool) -> Result<u64, VmError> {
        if self.layout.overlaps(hva, len) {
            return Err(VmError::Memory(ept::EptError::Overlap { addr: hva, len }));
        }
        let mut mem = self.mem.lock().unwrap();
        let (gpa, _, plan) = mem.insert(hva, len, readonly)?;
        self.apply(&plan)?;
        Ok(gpa)
    }

    /// Removes `[hva, hva + len)` from guest-physical memory (parts not added are skipped).
    /// Guest mappings of the range should be removed first.
    pub fn remove_memory(&self, hva: u64, len: u64) -> Result<(), VmError> {
        if self.layout.overlaps(hva, len) {
            return Err(VmError::Memory(ept::EptError::Overlap { addr: hva, len }));
        }
        let mut mem = self.mem.lock().unwrap();
        let plan = mem.remove(hva, len)?;
        self.apply(&plan)
    }

    /// GPA of host address `hva`, if it is guest memory.
    pub fn hva_to_gpa(&self, hva: u64) -> Option<u64> {
        self.mem.lock().unwrap().hva_to_gpa(hva)
    }

    /// Memory slots in use.
    pub fn slot_count(&self) -> usize {
        self.mem.lock().unwrap().slot_count()
    }

    pub(crate) fn pt(&self) -> MutexGuard<'_, PageTables> {
        self.pt.lock().unwrap()
    }

    /// GPA of the PML4.
    pub fn page_table_root(&self) -> u64 {
        self.pt().root()
    }

    /// Maps guest-virtual `[gva, gva + len)` (GVA == HVA) with `perms`, replacing what was there.
    /// Every page must have been added with [`Vm::add_memory`]. Uses 2 MiB pages where the
    /// alignment of GVA and GPA allows. Flushes TLBs if a translation was replaced by a
    /// different or less permissive one.
    ///
    /// Errors: [`MapError::NotBacked`] naming the first page without guest memory (nothing is
    /// mapped then), [`MapError::Reserved`] for a range touching the runtime's own memory,
    /// [`MapError::Unaligned`], [`MapError::NonCanonical`], [`MapError::OutOfPageTables`].
    pub fn map(&self, gva: u64, len: u64, perms: Perms) -> Result<(), MapError> {
        self.map_inner(gva, gva, len, perms, true)
    }

    /// Like [`Vm::map`], but never flushes TLBs: for callers that replace the **host** mapping of
    /// exactly this range right after this call (`mmap(MAP_FIXED)`), before any vCPU depends on
    /// the new contents. KVM's MMU notifier then drops every cached translation of the range on
    /// every host (virt/kvm/kvm_main.c, `kvm_mmu_notifier_invalidate_range_start`), which is far
    /// cheaper than a flush on shadow-paging hosts.
    pub fn map_host_coherent(&self, gva: u64, len: u64, perms: Perms) -> Result<(), MapError> {
        self.map_inner(gva, gva, len, perms, false)
    }

    /// Maps guest-virtual `[gva, gva + len)` onto the guest memory of host memory
    /// `[hva, hva + len)` (`hva == gva` but for [`Vm::map_alias`]).
    fn map_inner(
        &self,
        gva: u64,
        hva: u64,
        len: u64,
        perms: Perms,
        flush: bool,
    ) -> Result<(), MapError> {
        if len == 0 || !(gva | hva | len).is_multiple_of(PAGE_4K) {
            return Err(MapError::Unaligned { gva, len });
        }
        if self.layout.overlaps(gva, len) {
            return Err(MapError::Reserved { gva, len });
        }
        if gva.checked_add(len).is_none() || hva.checked_add(len).is_none() {
            return Err(MapError::NonCanonical { gva, len });
        }
        // Split the range into runs of contiguous GPA (one run per slot piece).
        let mut runs = Vec::new();
        {
            let mem = self.mem.lock().unwrap();
            let mut off = 0;
            while off < len {
                let slot =
                    mem.slot_for_hva(hva + off).ok_or(MapError::NotBacked { gva: gva + off })?;
                let n = (slot.hva + slot.len - (hva + off)).min(len - off);
                runs.push((gva + off, slot.gpa + (hva + off - slot.hva), n));
                off += n;
            }
        }
        let mut pt = self.pt();
        let mut needed = Flush::None;
        for (va, pa, n) in runs {
            if pt.map(va, pa, n, perms, true)? == Flush::Needed {
                needed = Flush::Needed;
            }
        }
        drop(pt);
        if flush {
            self.flush_if(needed);
        }
        Ok(())
    }

    /// Maps guest-virtual `[gva, gva + len)` onto the guest memory of host memory
    /// `[hva, hva + len)` with `perms`: the one exception to GVA == HVA, for host pages the
    /// program must see elsewhere than the runtime has them (the host's vDSO data pages, which
    /// the kernel maps once per process). `hva` must have been added with [`Vm::add_memory`];
    /// flushes TLBs like [`Vm::map`]. The guest view of such a range differs from the host
    /// mapping at `gva`, so it must be removed with [`Vm::unmap`] (which flushes), never by
    /// a host change there.
    ///
    /// Errors as [`Vm::map`].
    pub fn map_alias(&self, gva: u64, hva: u64, len: u64, perms: Perms) -> Result<(), MapError> {
        self.map_inner(gva, hva, len, perms, true)
    }

    /// Unmaps guest-virtual `[gva, gva + len)` and flushes TLBs. Unmapped parts are skipped.
    ///
    /// Errors: [`MapError::Reserved`] for a range touching the runtime's own memory,
    /// [`MapError::Unaligned`], [`MapError::NonCanonical`].
    pub fn unmap(&self, gva: u64, len: u64) -> Result<(), MapError> {
        let f = self.unmap_host_coherent(gva, len)?;
        self.flush_if(f);
        Ok(())
    }

    /// Like [`Vm::unmap`] without the flush, for callers that then unmap or replace the host
    /// mapping of exactly this range (see [`Vm::map_host_coherent`] for why that suffices).
    /// Returns whether a flush would otherwise have been needed.
    pub fn unmap_host_coherent(&self, gva: u64, len: u64) -> Result<Flush, MapError> {
        if self.layout.overlaps(gva, len) {
            return Err(MapError::Reserved { gva, len });
        }
        self.pt().unmap(gva, len)
    }

    /// Changes the permissions of the mapped pages in `[gva, gva + len)`, flushing TLBs when
    /// permissions shrink.
    ///
    /// Errors: [`MapError::Reserved`] for a range touching the runtime's own memory,
    /// [`MapError::Unaligned`], [`MapError::NonCanonical`].
    pub fn protect(&self, gva: u64, len: u64, perms: Perms) -> Result<(), MapError> {
        let f = self.protect_host_coherent(gva, len, perms)?;
        self.flush_if(f);
        Ok(())
    }

    /// Like [`Vm::protect`] without the flush, for callers that then `mprotect` the host mapping
    /// of exactly this range to the same rights (see [`Vm::map_host_coherent`]).
    pub fn protect_host_coherent(
        &self,
        gva: u64,
        len: u64,
        perms: Perms,
    ) -> Result<Flush, MapError> {
        if self.layout.overlaps(gva, len) {
            return Err(MapError::Reserved { gva, len });
        }
        self.pt().protect(gva, len, perms)
    }

    /// Translates `gva` through the guest page tables.
    pub fn translate(&self, gva: u64) -> Option<Translation> {
        self.pt().translate(gva)
    }

    /// Walks `gva` through the guest page tables, reporting every level's entry (with its
    /// accessed and dirty bits).
    pub fn walk(&self, gva: u64) -> Walk {
        self.pt().walk(gva)
    }

    /// Clears accessed and dirty bits in `[gva, gva + len)` and flushes TLBs so the CPU sets them
    /// again on the next access.
    pub fn clear_accessed_dirty(&self, gva: u64, len: u64) -> Result<(), MapError> {
        let f = self.pt().clear_accessed_dirty(gva, len)?;
        self.flush_if(f);
        Ok(())
    }

    fn flush_if(&self, f: Flush) {
        if f == Flush::Needed {
            self.request_tlb_flush();
        }
    }

    /// Makes every vCPU flush its TLB before it next enters the guest, and kicks running vCPUs
    /// so they do so now.
    pub fn request_tlb_flush(&self) {
        self.tlb_gen.fetch_add(1, Ordering::SeqCst);
        for k in self.running.lock().unwrap().iter() {
            k.shootdown();
        }
    }

    /// Performs a [`TlbFlush::ZapShadow`] flush for generation `generation` unless another vCPU already
    /// did one for it or a later generation.
    #[allow(unsafe_code)]
    pub(crate) fn zap_shadow(&self, generation: u64) -> Result<(), IoctlError> {
        let mut done = self.zap_lock.lock().unwrap();
        if *done >= generation {
            return Ok(());
        }
        let (id, hva) = self.zap_slot;
        // SAFETY: the zap page is runtime memory owned by this VM (part of `system`), re-added
        // exactly as before.
        unsafe {
            sys::set_slot(&self.fd, id, hva, hva, 0, false)
                .map_err(|e| IoctlError::new("KVM_SET_USER_MEMORY_REGION", e))?;
            sys::set_slot(&self.fd, id, hva, hva, PAGE_SIZE, false)
                .map_err(|e| IoctlError::new("KVM_SET_USER_MEMORY_REGION", e))?;
        }
        *done = generation;
        Ok(())
    }

    /// Creates a vCPU with the runtime's GDT/TSS/IST for the next free index, ready to
    /// [`Vcpu::enter_user`]. The vCPU may be moved to another thread but is run by one at a time.
    pub fn create_vcpu(self: &Arc<Self>) -> Result<Vcpu, VmError> {
        let index = self.next_vcpu.fetch_add(1, Ordering::SeqCst);
        if index >= self.cfg.max_vcpus {
            return Err(VmError::TooManyVcpus { max: self.cfg.max_vcpus });
        }
        self.new_vcpu(index)
    }

    /// Creates the probe's vCPU: KVM id and area index `max_vcpus`, after every real one.
    pub(crate) fn probe_vcpu(self: &Arc<Self>) -> Result<Vcpu, VmError> {
        self.new_vcpu(self.cfg.max_vcpus)
    }

    fn new_vcpu(self: &Arc<Self>, index: u32) -> Result<Vcpu, VmError> {
        let fd = sys::create_vcpu(&self.fd, u64::from(index), self.cfg.fd_placer.as_deref())
            .map_err(|e| IoctlError::from_io("KVM_CREATE_VCPU", &e))?;
        self.fds.lock().unwrap().push(std::os::fd::AsRawFd::as_raw_fd(&fd));
        self.build_cpu_area(index)?;
        Vcpu::new(self.clone(), fd, index)
    }

    /// A vCPU's descriptor is about to be closed.
    pub(crate) fn forget_fd(&self, fd: std::os::fd::RawFd) {
        self.fds.lock().unwrap().retain(|&f| f != fd);
    }

    /// A vCPU's descriptor was closed.
    pub(crate) fn fd_closed(&self, fd: std::os::fd::RawFd) {
        if let Some(p) = &self.cfg.fd_placer {
            p.closed(fd);
        }
    }

    /// Whether `fd` is one of [`Vm::runtime_fds`] (no allocation).
    pub fn is_runtime_fd(&self, fd: std::os::fd::RawFd) -> bool {
        fd == self.host.raw_fd()
            || fd == std::os::fd::AsRawFd::as_raw_fd(&self.fd)
            || self.fds.lock().unwrap().contains(&fd)
    }

    /// Every file descriptor the VM holds (`/dev/kvm`, the VM, every live vCPU): a
    /// supervisor must keep a program in the guest from closing, duplicating over, mapping or
    /// otherwise using them.
    pub fn runtime_fds(&self) -> Vec<std::os::fd::RawFd> {
        let mut v = vec![self.host.raw_fd(), std::os::fd::AsRawFd::as_raw_fd(&self.fd)];
        v.extend(self.fds.lock().unwrap().iter().copied());
        v
    }

    fn build_cpu_area(&self, index: u32) -> Result<(), MapError> {
        let area = self.layout.cpu_area(index);
        let off = area - self.layout.base;
        let gdt = trap::desc::gdt(area + layout::CPU_TSS_OFFSET);
        let gdt_bytes: Vec<u8> = gdt.iter().flat_map(|q| q.to_le_bytes()).collect();
        self.system.write(off + layout::CPU_GDT_OFFSET, &gdt_bytes);
        self.system.write(
            off + layout::CPU_TSS_OFFSET,
            &trap::desc::tss(area + layout::CPU_IST_TOP_OFFSET),
        );
        self.system.write(off + layout::CPU_SL_STUB_OFFSET, trap::switchless::stub_code());
        // The stub's jump slot (read-only to the guest): the shared doorbell stub. A fresh
        // mailbox (before any vCPU can run): idle, not hot.
        let slot = off + layout::CPU_SL_STUB_OFFSET + trap::switchless::DOORBELL_SLOT_OFFSET;
        self.system.write_u64(slot, self.layout.lstar_ring3());
        self.system.write(off + layout::CPU_SL_MAILBOX_OFFSET, &[0; PAGE_SIZE as usize]);
        let mailbox = area + layout::CPU_SL_MAILBOX_OFFSET;
        let mut pt = self.pt();
        let _ = pt.map(area, area, layout::CPU_SL_STUB_OFFSET, Perms::KERNEL_RW, false)?;
        let stub = area + layout::CPU_SL_STUB_OFFSET;
        let _ = pt.map(stub, stub, PAGE_SIZE, Perms::USER_RX, false)?;
        let _ = pt.map(mailbox, mailbox, PAGE_SIZE, Perms::USER_RW, false)?;
        Ok(())
    }

    /// The probe's scratch page (in the system area, identity-mapped, normally unmapped).
    pub(crate) fn scratch_page(&self) -> u64 {
        scratch_page(&self.layout, self.cfg.max_vcpus)
    }

    /// Maps or unmaps a system page directly (probe use: bypasses the system-area guard).
    pub(crate) fn map_system(&self, gva: u64, perms: Option<Perms>) -> Result<(), MapError> {
        let mut pt = self.pt();
        let f = match perms {
            Some(p) => pt.map(gva, gva, PAGE_SIZE, p, false)?,
            None => pt.unmap(gva, PAGE_SIZE)?,
        };
        drop(pt);
        self.flush_if(f);
        Ok(())
    }

    pub(crate) fn register_running(&self, k: KickHandle) {
        let mut r = self.running.lock().unwrap();
        r.retain(|x| !x.same(&k));
        r.push(k);
    }

    pub(crate) fn unregister_running(&self, k: &KickHandle) {
        self.running.lock().unwrap().retain(|x| !x.same(k));
    }
}

#[cfg(test)]
mod tests {
    use super::default_system_base;

    #[test]
    fn system_base_stays_in_the_user_half() {
        // kvm_pvm on Intel (46 bits), VT-x hosts (39..=46), AMD EPYC hosts (48), LA57-class (52).
        assert_eq!(default_system_base(39), 1 << 38);
        assert_eq!(default_system_base(46), 1 << 45);
        assert_eq!(default_system_base(48), 1 << 46);
        assert_eq!(default_system_base(52), 1 << 46);
        for w in 32..=52 {
            assert!(default_system_base(w) < 1 << 47);
        }
    }
}
