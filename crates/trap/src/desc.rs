//! Images of the guest's descriptor tables: GDT, 64-bit TSS and IDT.
//!
//! Pure functions that return the bytes the runtime copies into the system area. Formats follow
//! the Intel SDM Vol. 3A: 3.4.5 (segment descriptors), 7.2.3 / 8.7 (64-bit TSS and its
//! descriptor), 6.14.1 (64-bit IDT gate descriptors).

use crate::layout::{GDT_CPUNODE, GDT_ENTRIES, KERNEL_CS, TSS_SEL, TSS_SIZE};

/// A descriptor-table register value (`lgdt`/`lidt` operand): base GVA and limit in bytes minus one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableRegister {
    /// Guest-virtual address of the table.
    pub base: u64,
    /// Size of the table in bytes, minus one.
    pub limit: u16,
}

/// Builds the GDT for one vCPU whose TSS lives at guest-virtual address `tss_base`.
///
/// Layout (Linux's, arch/x86/include/asm/segment.h): 0x08 unused 32-bit kernel code, 0x10
/// kernel 64-bit code, 0x18 kernel data, 0x23 user 32-bit code, 0x2b user data, 0x33 user 64-bit
/// code, 0x40 TSS (two slots), 0x7b the per-CPU segment (slot [`GDT_CPUNODE`]: read-only user
/// data whose limit is CPU 0, node 0, as `setup_getcpu` in arch/x86/kernel/cpu/common.c
/// builds it, so the host's vDSO `getcpu` answers CPU 0 where it uses `lsl`). Returns the
/// [`GDT_ENTRIES`] 8-byte descriptors.
pub fn gdt(tss_base: u64) -> [u64; GDT_ENTRIES] {
    let mut g = [0u64; GDT_ENTRIES];
    g[1] = 0x00cf_9b00_0000_ffff; // kernel 32-bit code (unused, as in Linux)
    g[2] = 0x00af_9b00_0000_ffff; // kernel 64-bit code: P, DPL0, code, L
    g[3] = 0x00cf_9300_0000_ffff; // kernel data: P, DPL0, writable
    g[4] = 0x00cf_fb00_0000_ffff; // user 32-bit code: P, DPL3, D
    g[5] = 0x00cf_f300_0000_ffff; // user data: P, DPL3, writable
    g[6] = 0x00af_fb00_0000_ffff; // user 64-bit code: P, DPL3, L
    let limit = TSS_SIZE - 1;
    let i = (TSS_SEL / 8) as usize;
    g[i] = (limit & 0xffff)
        | ((tss_base & 0xff_ffff) << 16)
        | (0x89 << 40) // P, DPL0, type 9 = available 64-bit TSS
        | (((limit >> 16) & 0xf) << 48)
        | (((tss_base >> 24) & 0xff) << 56);
    g[i + 1] = tss_base >> 32;
    g[GDT_CPUNODE] = 0x0040_f500_0000_0000; // P, DPL3, S, type 5 (RO data, expand down), D
    g
}

/// The GDT register value for a GDT at `base`.
pub fn gdt_register(base: u64) -> TableRegister {
    TableRegister { base, limit: (GDT_ENTRIES * 8 - 1) as u16 }
}

/// Builds a 64-bit TSS whose IST1 points at `ist_top` (16-byte aligned GVA). RSP0 also points
/// there, although every gate uses IST1. The I/O-map base lies past the TSS limit, so the TSS has
/// no I/O permission bitmap and every ring-3 `in`/`out` raises #GP (SDM Vol. 1, 19.5.2).
pub fn tss(ist_top: u64) -> [u8; TSS_SIZE as usize] {
    let mut t = [0u8; TSS_SIZE as usize];
    t[4..12].copy_from_slice(&ist_top.to_le_bytes()); // RSP0
    t[36..44].copy_from_slice(&ist_top.to_le_bytes()); // IST1
    t[102..104].copy_from_slice(&(TSS_SIZE as u16).to_le_bytes()); // I/O map base
    t
}

/// Vectors whose gate has DPL 3, so a ring-3 `int3` raises #BP (SIGTRAP in Linux) instead of
/// #GP. Linux does the same (arch/x86/kernel/idt.c `def_idts`: X86_TRAP_BP, X86_TRAP_OF).
pub const USER_GATE_VECTORS: [u8; 2] = [3, 4];

/// Builds the IDT: 256 interrupt gates (type 0xE, so IF is cleared on entry), all using IST1 and
/// [`KERNEL_CS`]. `handler(v)` gives the guest-virtual address of vector `v`'s stub.
pub fn idt(handler: impl Fn(u8) -> u64) -> [[u64; 2]; 256] {
    let mut idt = [[0u64; 2]; 256];
    for (v, gate) in idt.iter_mut().enumerate() {
        let v = v as u8;
        let h = handler(v);
        let dpl: u64 = if USER_GATE_VECTORS.contains(&v) { 3 } else { 0 };
        let attr: u64 = 0x80 | (dpl << 5) | 0xe; // P, DPL, 64-bit interrupt gate
        gate[0] = (h & 0xffff)
            | (u64::from(KERNEL_CS) << 16)
            | (1 << 32) // IST1
            | (attr << 40)
            | (((h >> 16) & 0xffff) << 48);
        gate[1] = h >> 32;
    }
    idt
}

/// The IDT register value for an IDT at `base`.
pub fn idt_register(base: u64) -> TableRegister {
    TableRegister { base, limit: (256 * 16 - 1) as u16 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tss_descriptor_round_trips_base_and_limit() {
        let base = 0x2000_0000_4100u64;
        let g = gdt(base);
        let i = (TSS_SEL / 8) as usize;
        let lo = g[i];
        let got = ((lo >> 16) & 0xff_ffff) | (((lo >> 56) & 0xff) << 24) | (g[i + 1] << 32);
        assert_eq!(got, base);
        assert_eq!(lo & 0xffff, TSS_SIZE - 1);
        assert_eq!((lo >> 40) & 0xff, 0x89);
    }

    #[test]
    fn user_code_selector_is_long_mode_dpl3() {
        let g = gdt(0);
        let cs = g[(crate::layout::USER_CS / 8) as usize];
        assert_eq!((cs >> 53) & 1, 1, "L bit");
        assert_eq!((cs >> 45) & 3, 3, "DPL");
        let ds = g[(crate::layout::USER_DS / 8) as usize];
        assert_eq!((ds >> 45) & 3, 3);
    }

    #[test]
    fn idt_gates_decode() {
        let idt = idt(|v| 0x1234_5678_9abc_0000 + u64::from(v) * 8);
        for v in 0..=255u8 {
            let [lo, hi] = idt[v as usize];
            let off = (lo & 0xffff) | (((lo >> 48) & 0xffff) << 16) | (hi << 32);
            assert_eq!(off, 0x1234_5678_9abc_0000 + u64::from(v) * 8);
            assert_eq!((lo >> 16) & 0xffff, u64::from(KERNEL_CS));
            assert_eq!((lo >> 32) & 7, 1, "IST1");
            let dpl = (lo >> 45) & 3;
            assert_eq!(dpl, if v == 3 || v == 4 { 3 } else { 0 });
        }
    }

    #[test]
    fn tss_has_no_io_bitmap() {
        let t = tss(0x8000);
        assert_eq!(u16::from_le_bytes([t[102], t[103]]) as u64, TSS_SIZE);
        assert_eq!(u64::from_le_bytes(t[36..44].try_into().unwrap()), 0x8000);
    }
}
