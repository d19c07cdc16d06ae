//! The guest's system layout: segment selectors, I/O ports the trampolines exit through, and
//! where each system structure lives inside the runtime's system area.
//!
//! The system area is host memory that the runtime maps into the guest **supervisor-only**
//! (U=0), except for the ring-3 trampoline page (U=1, read-only, executable) and the doorbell
//! page (U=1, writable, but backed by no memory slot, so every write to it exits). Offsets are
//! in bytes from the start of the area; every region is page aligned.
//!
//! ```text
//! +0x0000  IDT                 (4 KiB, 256 gates, U=0 RO NX)
//! +0x1000  ring-0 code page    (4 KiB, vector stubs + LSTAR ring-0 stub, U=0 RX)
//! +0x2000  ring-3 code page    (4 KiB, LSTAR ring-3 stub + probe code, U=1 RX)
//! +0x3000  doorbell page       (4 KiB, U=1 RW NX, GPA with no memory slot behind it)
//! +0x4000  vCPU area 0         (CPU_AREA_SIZE, below)
//! +0x4000 + i * CPU_AREA_SIZE  vCPU area i
//! ```
//!
//! A vCPU area:
//!
//! ```text
//! +0x0000  GDT + TSS           (4 KiB, U=0 RW NX)
//! +0x1000  IST stack           (8 KiB, U=0 RW NX; top at +0x3000)
//! +0x3000  switchless stub     (4 KiB, U=1 RX: this vCPU's ring-3 LSTAR stub, see `switchless`)
//! +0x4000  switchless mailbox  (4 KiB, U=1 RW NX: the stub's requests to a host thread)
//! ```

/// Size of a guest page, in bytes.
pub const PAGE_SIZE: u64 = 4096;

/// Kernel (ring-0) 64-bit code selector; also `STAR[47:32]`, so `syscall` loads it (Linux layout,
/// arch/x86/include/asm/segment.h: `__KERNEL_CS`).
pub const KERNEL_CS: u16 = 0x10;
/// Kernel data/stack selector (`__KERNEL_DS`); `syscall` loads `STAR[47:32] + 8`.
pub const KERNEL_DS: u16 = 0x18;
/// User 32-bit code selector with RPL 3 (`__USER32_CS`); also `STAR[63:48]`, the base from which
/// `sysretq` derives the user selectors (Intel SDM Vol. 2B, SYSRET).
pub const USER32_CS: u16 = 0x23;
/// User data/stack selector with RPL 3 (`__USER_DS`); `sysretq` loads `STAR[63:48] + 8`.
pub const USER_DS: u16 = 0x2b;
/// User 64-bit code selector with RPL 3 (`__USER_CS`); `sysretq` loads `STAR[63:48] + 16`.
pub const USER_CS: u16 = 0x33;
/// Task-state segment selector (a 16-byte system descriptor in GDT slots 8 and 9).
pub const TSS_SEL: u16 = 0x40;
/// Number of 8-byte GDT slots the image uses (up to Linux's per-CPU slot, 15).
pub const GDT_ENTRIES: usize = 16;
/// The slot of Linux's per-CPU segment (`GDT_ENTRY_CPUNODE`), whose limit the vDSO's
/// `getcpu` reads with `lsl` where the CPU lacks `rdpid` (arch/x86/include/asm/segment.h).
pub const GDT_CPUNODE: usize = 15;

/// The value for `IA32_STAR`: `syscall` enters with [`KERNEL_CS`]/[`KERNEL_DS`], `sysretq`
/// returns with [`USER_CS`]/[`USER_DS`] (Intel SDM Vol. 2B, SYSCALL/SYSRET).
pub const STAR: u64 = ((USER32_CS as u64) << 48) | ((KERNEL_CS as u64) << 32);
/// `IA32_FMASK` for the ring-0 system-call path: clears TF, IF, DF, AC, NT, IOPL and the
/// arithmetic flags on entry, as Linux does (arch/x86/kernel/cpu/common.c `syscall_init`).
/// `sysretq` restores the program's flags from R11.
pub const FMASK_RING0: u64 = 0x257fd5;
/// `IA32_FMASK` for the ring-3 path (hosts where `syscall` stays at CPL 3): nothing is masked,
/// so the program's flags survive the stub exactly as `sysretq` would have restored them.
pub const FMASK_RING3: u64 = 0;

/// First of 32 I/O ports, one per exception vector: the stub for vector `v` executes
/// `outb %al, $(EXC_PORT_BASE + v)`.
pub const EXC_PORT_BASE: u16 = 0xa0;
/// The ring-0 LSTAR stub's port (`outb %al, $SYSCALL_PORT; sysretq`).
pub const SYSCALL_PORT: u16 = 0xc0;
/// Port of the start-up probe code (`syscall` landing in ring 0 executes it).
pub const PROBE_PORT: u16 = 0xc1;
/// Port of the shared stub for vectors 32..=255 (the runtime never injects interrupts, so any
/// such exit is spurious).
pub const SPURIOUS_PORT: u16 = 0xc2;

/// Offset of the IDT in the system area.
pub const IDT_OFFSET: u64 = 0x0000;
/// Offset of the ring-0 code page.
pub const RING0_CODE_OFFSET: u64 = 0x1000;
/// Offset of the ring-3 code page.
pub const RING3_CODE_OFFSET: u64 = 0x2000;
/// Offset of the doorbell page. The ring-3 stub's RIP-relative store targets it, so it must
/// directly follow the ring-3 code page (checked at compile time in `tramp`).
pub const DOORBELL_OFFSET: u64 = 0x3000;
/// Offset of vCPU area 0.
pub const CPU_AREAS_OFFSET: u64 = 0x4000;
/// Bytes per vCPU area: the GDT and TSS page, the IST stack, the switchless stub and mailbox.
pub const CPU_AREA_SIZE: u64 = 0x5000;
/// Offset of the GDT inside a vCPU area.
pub const CPU_GDT_OFFSET: u64 = 0x000;
/// Offset of the TSS inside a vCPU area.
pub const CPU_TSS_OFFSET: u64 = 0x100;
/// Offset of the top of the IST stack inside a vCPU area (16-byte aligned; the CPU pushes the
/// exception frame just below it).
pub const CPU_IST_TOP_OFFSET: u64 = 0x3000;
/// Offset of the vCPU's switchless ring-3 LSTAR stub page inside a vCPU area.
pub const CPU_SL_STUB_OFFSET: u64 = 0x3000;
/// Offset of the vCPU's switchless mailbox page; it must directly follow the stub page, which
/// reaches it RIP-relatively.
pub const CPU_SL_MAILBOX_OFFSET: u64 = 0x4000;
/// Size in bytes of a 64-bit TSS (Intel SDM Vol. 3A, 8.7 "Task Management in 64-bit Mode").
pub const TSS_SIZE: u64 = 104;

/// Bytes of the system area for `max_vcpus` vCPUs.
pub const fn system_area_size(max_vcpus: u64) -> u64 {
    CPU_AREAS_OFFSET + max_vcpus * CPU_AREA_SIZE
}

/// Offset of vCPU area `index`.
pub const fn cpu_area_offset(index: u64) -> u64 {
    CPU_AREAS_OFFSET + index * CPU_AREA_SIZE
}

const _: () = {
    assert!(DOORBELL_OFFSET == RING3_CODE_OFFSET + PAGE_SIZE);
    assert!(CPU_TSS_OFFSET + TSS_SIZE <= PAGE_SIZE);
    assert!(CPU_GDT_OFFSET + (GDT_ENTRIES as u64) * 8 <= CPU_TSS_OFFSET);
    assert!(CPU_IST_TOP_OFFSET.is_multiple_of(16));
    assert!(CPU_IST_TOP_OFFSET <= CPU_SL_STUB_OFFSET);
    assert!(CPU_SL_MAILBOX_OFFSET == CPU_SL_STUB_OFFSET + PAGE_SIZE);
    assert!(CPU_SL_MAILBOX_OFFSET + PAGE_SIZE == CPU_AREA_SIZE);
    assert!(CPU_AREA_SIZE.is_multiple_of(PAGE_SIZE));
    assert!((EXC_PORT_BASE as u32) + 32 <= SYSCALL_PORT as u32);
    assert!((TSS_SEL as usize) / 8 + 2 <= GDT_ENTRIES);
};
