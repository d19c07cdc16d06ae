//! The trampolines: the only code the runtime ever runs inside the guest.
//!
//! Two pages of position-independent machine code, assembled into the host binary's read-only
//! data (the host never executes them) and copied by the runtime into the system area:
//!
//! * **ring-0 page** (U=0): one 8-byte stub per exception vector 0..=31
//!   (`outb %al, $(EXC_PORT_BASE+v)`, `addq $8,%rsp` when the CPU pushed an error code, `iretq`),
//!   a shared stub for vectors 32..=255, and the ring-0 LSTAR stub
//!   (`outb %al, $SYSCALL_PORT; sysretq`) used on hosts where `syscall` enters ring 0
//!   (VT-x/AMD-V).
//! * **ring-3 page** (U=1, read-only): the LSTAR stub used on hosts where a ring-3 `syscall`
//!   lands at LSTAR still at CPL 3 (kvm_pvm): `movl %eax, doorbell(%rip); jmp *%rcx`. The store
//!   hits the doorbell page, which has no memory slot behind it, so it exits as MMIO; the runtime
//!   writes the result into RAX and the stub returns to the program. Plus the start-up probe's
//!   code (`syscall; ud2`, a probe LSTAR target `outb %al, $PROBE_PORT; ud2`, and a probe read
//!   `movb (%rdi), %al; ud2`).
//!
//! Every stub is a few instructions because on kvm_pvm guest ring 0 is emulated one instruction
//! at a time (~1 µs each). They avoid what that emulator cannot execute: SSE/AVX, `popcnt`,
//! `xsave`, `xgetbv`, `rdtscp`, `int3`/`int $n` in ring 0, and `vmcall`
//! (see shared/tools/kvm-probe/RESULTS.md). They touch no memory except the CPU's own pushes
//! and pops on the per-vCPU IST stack, and in the ring-3 stub the doorbell store.
//!
//! Layout is checked at compile time: every stub is placed with `.org` at an offset taken from a
//! Rust constant, and the assembler rejects an `.org` that would move backwards (a stub that
//! outgrew its slot, or a page that outgrew 4 KiB; each page is padded to exactly 4 KiB).

use crate::layout::{
    DOORBELL_OFFSET, EXC_PORT_BASE, PAGE_SIZE, PROBE_PORT, RING3_CODE_OFFSET, SPURIOUS_PORT,
    SYSCALL_PORT,
};

/// Bytes per exception-vector stub in the ring-0 page.
pub const VECTOR_STUB_SIZE: u64 = 8;
/// Offset in the ring-0 page of the shared stub for vectors 32..=255.
pub const SPURIOUS_STUB_OFFSET: u64 = 0x100;
/// Offset in the ring-0 page of the ring-0 LSTAR stub.
pub const RING0_LSTAR_OFFSET: u64 = 0x110;
/// Offset in the ring-3 page of the ring-3 LSTAR stub.
pub const RING3_LSTAR_OFFSET: u64 = 0x000;
/// Length in bytes of the ring-3 LSTAR stub's doorbell store; after the MMIO exit the guest's
/// RIP is `RING3_LSTAR_OFFSET + RING3_STORE_LEN` (the `jmp *%rcx`).
pub const RING3_STORE_LEN: u64 = 6;
/// Offset in the ring-3 page of the probe's `syscall; ud2`.
pub const PROBE_SYSCALL_OFFSET: u64 = 0x040;
/// Offset in the ring-3 page of the probe's LSTAR target `outb %al, $PROBE_PORT; ud2`.
pub const PROBE_LSTAR_OFFSET: u64 = 0x080;
/// Offset in the ring-3 page of the probe's memory read `movb (%rdi), %al; ud2`: a #UD at
/// `PROBE_READ_OFFSET + 2` means the read succeeded.
pub const PROBE_READ_OFFSET: u64 = 0x0c0;
/// Offset in the ring-3 page of the probe's `rdtsc; ud2`: the `#UD` at
/// `PROBE_RDTSC_OFFSET + 2` leaves the guest's TSC in EDX:EAX.
pub const PROBE_RDTSC_OFFSET: u64 = 0x100;

/// Displacement from the ring-3 page to the doorbell page.
const DOORBELL_DISTANCE: u64 = DOORBELL_OFFSET - RING3_CODE_OFFSET;

const _: () = {
    assert!(32 * VECTOR_STUB_SIZE <= SPURIOUS_STUB_OFFSET);
    assert!(DOORBELL_DISTANCE == PAGE_SIZE);
};

/// Vectors for which the CPU pushes an error code (Intel SDM Vol. 3A, Table 6-1): #DF, #TS, #NP,
/// #SS, #GP, #PF, #AC, #CP, #VC, #SX.
pub const fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21 | 29 | 30)
}

/// Offset in the ring-0 page of the stub for `vector`.
pub const fn vector_stub_offset(vector: u8) -> u64 {
    if vector < 32 { vector as u64 * VECTOR_STUB_SIZE } else { SPURIOUS_STUB_OFFSET }
}

core::arch::global_asm!(
    ".pushsection .rodata.dune_trampolines, \"a\", @progbits",
    ".balign 64",
    ".globl dune_tramp_r0_start",
    ".hidden dune_tramp_r0_start",
    "dune_tramp_r0_start:",
    ".irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
    "  .org dune_tramp_r0_start + {stub} * \\v, 0xf4",
    "  outb %al, ${exc} + \\v",
    "  .if (\\v == 8) || (\\v == 10) || (\\v == 11) || (\\v == 12) || (\\v == 13) || (\\v == 14) || (\\v == 17) || (\\v == 21) || (\\v == 29) || (\\v == 30)",
    "  addq $8, %rsp",
    "  .endif",
    "  iretq",
    ".endr",
    ".org dune_tramp_r0_start + {spurious}, 0xf4",
    "  outb %al, ${spurious_port}",
    "  iretq",
    ".org dune_tramp_r0_start + {lstar0}, 0xf4",
    "  outb %al, ${syscall_port}",
    "  sysretq",
    // Pad to exactly one page; `.org` fails to assemble if the code outgrew it.
    ".org dune_tramp_r0_start + {page}, 0xf4",
    ".globl dune_tramp_r0_end",
    ".hidden dune_tramp_r0_end",
    "dune_tramp_r0_end:",
    ".globl dune_tramp_r3_start",
    ".hidden dune_tramp_r3_start",
    "dune_tramp_r3_start:",
    ".org dune_tramp_r3_start + {lstar3}",
    "  movl %eax, dune_tramp_r3_start + {doorbell}(%rip)",
    // Fails to assemble if the store is longer than RING3_STORE_LEN (a shorter one is caught by
    // the unit test on the exact encoding).
    ".org dune_tramp_r3_start + {lstar3} + {store_len}, 0x90",
    "  jmp *%rcx",
    ".org dune_tramp_r3_start + {probe_sc}, 0xf4",
    "  syscall",
    "  ud2",
    ".org dune_tramp_r3_start + {probe_lstar}, 0xf4",
    "  outb %al, ${probe_port}",
    "  ud2",
    ".org dune_tramp_r3_start + {probe_read}, 0xf4",
    "  movb (%rdi), %al",
    "  ud2",
    ".org dune_tramp_r3_start + {probe_rdtsc}, 0xf4",
    "  rdtsc",
    "  ud2",
    ".org dune_tramp_r3_start + {page}, 0xf4",
    ".globl dune_tramp_r3_end",
    ".hidden dune_tramp_r3_end",
    "dune_tramp_r3_end:",
    ".popsection",
    stub = const VECTOR_STUB_SIZE,
    exc = const EXC_PORT_BASE,
    spurious = const SPURIOUS_STUB_OFFSET,
    spurious_port = const SPURIOUS_PORT,
    lstar0 = const RING0_LSTAR_OFFSET,
    syscall_port = const SYSCALL_PORT,
    lstar3 = const RING3_LSTAR_OFFSET,
    store_len = const RING3_STORE_LEN,
    doorbell = const DOORBELL_DISTANCE,
    probe_sc = const PROBE_SYSCALL_OFFSET,
    probe_lstar = const PROBE_LSTAR_OFFSET,
    probe_port = const PROBE_PORT,
    probe_read = const PROBE_READ_OFFSET,
    probe_rdtsc = const PROBE_RDTSC_OFFSET,
    page = const PAGE_SIZE,
    options(att_syntax)
);

unsafe extern "C" {
    static dune_tramp_r0_start: u8;
    static dune_tramp_r0_end: u8;
    static dune_tramp_r3_start: u8;
    static dune_tramp_r3_end: u8;
}

pub(crate) fn section(start: *const u8, end: *const u8) -> &'static [u8] {
    let len = end as usize - start as usize;
    // SAFETY: every caller passes the start and end symbols of one `global_asm!` block (here
    // or in `switchless`) that emits bytes into a read-only, allocated section of this binary;
    // they are never written and live for the whole program.
    unsafe { core::slice::from_raw_parts(start, len) }
}

/// The ring-0 trampoline page: exactly 4 KiB, padded with `hlt`.
pub fn ring0_code() -> &'static [u8] {
    section(&raw const dune_tramp_r0_start, &raw const dune_tramp_r0_end)
}

/// The ring-3 trampoline page: exactly 4 KiB, padded with `hlt`.
pub fn ring3_code() -> &'static [u8] {
    section(&raw const dune_tramp_r3_start, &raw const dune_tramp_r3_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_stubs_encode_as_documented() {
        let c = ring0_code();
        for v in 0u8..32 {
            let o = vector_stub_offset(v) as usize;
            assert_eq!(c[o], 0xe6, "outb imm8, %al for vector {v}");
            assert_eq!(u16::from(c[o + 1]), EXC_PORT_BASE + u16::from(v));
            let rest = if has_error_code(v) {
                &[0x48, 0x83, 0xc4, 0x08, 0x48, 0xcf][..]
            } else {
                &[0x48, 0xcf][..]
            };
            assert_eq!(&c[o + 2..o + 2 + rest.len()], rest, "vector {v}");
        }
        let l = RING0_LSTAR_OFFSET as usize;
        assert_eq!(&c[l..l + 5], &[0xe6, SYSCALL_PORT as u8, 0x48, 0x0f, 0x07]);
    }

    #[test]
    fn ring3_stub_targets_the_doorbell_page() {
        let c = ring3_code();
        let o = RING3_LSTAR_OFFSET as usize;
        assert_eq!(&c[o..o + 2], &[0x89, 0x05], "movl %eax, disp32(%rip)");
        let disp = i32::from_le_bytes(c[o + 2..o + 6].try_into().unwrap()) as i64;
        let target = RING3_LSTAR_OFFSET as i64 + RING3_STORE_LEN as i64 + disp;
        assert_eq!(target as u64, DOORBELL_OFFSET - RING3_CODE_OFFSET);
        assert_eq!(&c[o + 6..o + 8], &[0xff, 0xe1], "jmp *%rcx");
        let p = PROBE_SYSCALL_OFFSET as usize;
        assert_eq!(&c[p..p + 4], &[0x0f, 0x05, 0x0f, 0x0b]);
        let r = PROBE_READ_OFFSET as usize;
        assert_eq!(&c[r..r + 4], &[0x8a, 0x07, 0x0f, 0x0b], "movb (%rdi),%al; ud2");
        let t = PROBE_RDTSC_OFFSET as usize;
        assert_eq!(&c[t..t + 4], &[0x0f, 0x31, 0x0f, 0x0b], "rdtsc; ud2");
    }

    #[test]
    fn code_has_no_forbidden_instructions() {
        // A crude but useful guard: none of the byte patterns of the instructions the
        // kvm_pvm ring-0 emulator rejects (int3 0xcc, int imm8 0xcd, vmcall 0f 01 c1) appears in
        // the ring-0 page.
        let c = ring0_code();
        assert!(!c.contains(&0xcc) && !c.contains(&0xcd));
        assert!(!c.windows(3).any(|w| w == [0x0f, 0x01, 0xc1]));
        assert!(c.len() == PAGE_SIZE as usize && ring3_code().len() == PAGE_SIZE as usize);
    }
}
