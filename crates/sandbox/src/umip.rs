//! User-mode `sgdt`, `sidt`, `sldt`, `smsw` and `str`, as Linux answers them.
//!
//! With UMIP (CR4.UMIP) these instructions raise #GP outside ring 0. Linux emulates them for
//! user space with fixed values, so that programs that use them (Wine, DOSEMU, old runtime
//! checks) keep working without learning where the kernel's tables are (arch/x86/kernel/umip.c,
//! `fixup_umip_exception`, Linux 5.10 and later): SGDT and SIDT store a limit of 0 and the
//! bases `0xfffffffffffe0000` and `0xffffffffffff0000`; SMSW gives CR0 as the kernel sets it at
//! boot (PE, MP, ET, NE, WP, AM, PG); STR gives the TSS selector (`GDT_ENTRY_TSS * 8`), SLDT 0
//! (no LDT: the sandbox offers no `modify_ldt`). A memory operand gets 10 bytes (SGDT/SIDT) or
//! 2 (the others); a register operand as many bytes as its size, written over the low end of
//! the register as Linux copies them into the saved registers. The supervisor sees the #GP in
//! its exception exit, decodes the instruction here, and writes the result; anything else
//! stays the #GP it was (SIGSEGV).

use iced_x86::{Decoder, DecoderOptions, Mnemonic, OpKind, Register};

use dune::Regs;

/// SGDT's base (`UMIP_DUMMY_GDT_BASE`).
pub const DUMMY_GDT_BASE: u64 = 0xffff_ffff_fffe_0000;
/// SIDT's base (`UMIP_DUMMY_IDT_BASE`).
pub const DUMMY_IDT_BASE: u64 = 0xffff_ffff_ffff_0000;
/// SMSW's value: `CR0_STATE` (PE | MP | ET | NE | WP | AM | PG).
pub const CR0_STATE: u64 = 0x8005_0033;
/// STR's value: `GDT_ENTRY_TSS * 8` on x86-64.
pub const TSS_SELECTOR: u64 = 8 * 8;

/// What the emulated instruction does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emulated {
    /// The instruction's length: RIP moves past it.
    pub len: u64,
    /// Where the result goes.
    pub to: Target,
    /// The result's bytes (little-endian).
    pub bytes: Vec<u8>,
}

/// Where an emulated instruction's result goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Program memory at this address.
    Memory(u64),
    /// The low bytes of this 64-bit general-purpose register.
    Register(Register),
}

/// The emulation of the instruction in `code` (its bytes at `regs.rip`, up to 15) if it is one
/// of the five; `None` for anything else (and for SGDT/SIDT with a register operand, which
/// the CPU would not even decode as them). `fs_base`/`gs_base` for segment-relative operands.
pub fn emulate(code: &[u8], regs: &Regs, fs_base: u64, gs_base: u64) -> Option<Emulated> {
    let mut decoder = Decoder::with_ip(64, code, regs.rip, DecoderOptions::NONE);
    let instr = decoder.decode();
    if instr.is_invalid() {
        return None;
    }
    let (value, table) = match instr.mnemonic() {
        Mnemonic::Sgdt => (DUMMY_GDT_BASE, true),
        Mnemonic::Sidt => (DUMMY_IDT_BASE, true),
        Mnemonic::Smsw => (CR0_STATE, false),
        Mnemonic::Str => (TSS_SELECTOR, false),
        Mnemonic::Sldt => (0, false),
        _ => return None,
    };
    let len = instr.len() as u64;
    match instr.op0_kind() {
        OpKind::Memory => {
            let reg = |r: Register, _: usize, _: usize| {
                crate::fault_addr::register(regs, fs_base, gs_base, r)
            };
            let mut factory = iced_x86::InstructionInfoFactory::new();
            let info = factory.info(&instr);
            let addr = info.used_memory().first()?.virtual_address(0, reg)?;
            let bytes = if table {
                let mut b = vec![0u8; 2]; // the limit
                b.extend_from_slice(&value.to_le_bytes());
                b
            } else {
                (value as u16).to_le_bytes().to_vec()
            };
            Some(Emulated { len, to: Target::Memory(addr), bytes })
        }
        OpKind::Register if !table => {
            let r = instr.op0_register();
            let size = r.size();
            let bytes = value.to_le_bytes()[..size].to_vec();
            Some(Emulated { len, to: Target::Register(r.full_register()), bytes })
        }
        _ => None,
    }
}

/// Writes `bytes` over the low end of the 64-bit register `reg` in `regs`; `false` if `reg` is
/// not a general-purpose register.
pub fn write_register(regs: &mut Regs, reg: Register, bytes: &[u8]) -> bool {
    let slot = match reg {
        Register::RAX => &mut regs.rax,
        Register::RBX => &mut regs.rbx,
        Register::RCX => &mut regs.rcx,
        Register::RDX => &mut regs.rdx,
        Register::RSI => &mut regs.rsi,
        Register::RDI => &mut regs.rdi,
        Register::RSP => &mut regs.rsp,
        Register::RBP => &mut regs.rbp,
        Register::R8 => &mut regs.r8,
        Register::R9 => &mut regs.r9,
        Register::R10 => &mut regs.r10,
        Register::R11 => &mut regs.r11,
        Register::R12 => &mut regs.r12,
        Register::R13 => &mut regs.r13,
        Register::R14 => &mut regs.r14,
        Register::R15 => &mut regs.r15,
        _ => return false,
    };
    let mut v = slot.to_le_bytes();
    v[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
    *slot = u64::from_le_bytes(v);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs() -> Regs {
        Regs { rip: 0x40_1000, rax: 0x1111_1111_1111_1111, rbx: 0x5000, ..Regs::default() }
    }

    #[test]
    fn sgdt_and_sidt_store_limit_and_dummy_base() {
        // sgdt (%rbx) = 0f 01 03; sidt 8(%rbx) = 0f 01 4b 08
        let e = emulate(&[0x0f, 0x01, 0x03], &regs(), 0, 0).unwrap();
        assert_eq!((e.len, e.to), (3, Target::Memory(0x5000)));
        assert_eq!(e.bytes, [0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let e = emulate(&[0x0f, 0x01, 0x4b, 0x08], &regs(), 0, 0).unwrap();
        assert_eq!((e.len, e.to), (4, Target::Memory(0x5008)));
        assert_eq!(u64::from_le_bytes(e.bytes[2..].try_into().unwrap()), DUMMY_IDT_BASE);
    }

    #[test]
    fn smsw_str_sldt_by_operand_size() {
        // smsw %rax = 48 0f 01 e0; smsw %eax = 0f 01 e0; smsw %ax = 66 0f 01 e0
        let e = emulate(&[0x48, 0x0f, 0x01, 0xe0], &regs(), 0, 0).unwrap();
        assert_eq!((e.to, e.bytes.len()), (Target::Register(Register::RAX), 8));
        let e = emulate(&[0x0f, 0x01, 0xe0], &regs(), 0, 0).unwrap();
        let mut r = regs();
        assert!(write_register(&mut r, Register::RAX, &e.bytes));
        assert_eq!(r.rax, 0x1111_1111_8005_0033, "the low 4 bytes, as Linux copies them");
        let e = emulate(&[0x66, 0x0f, 0x01, 0xe0], &regs(), 0, 0).unwrap();
        assert_eq!(e.bytes, [0x33, 0x00]);
        // str (%rbx) = 0f 00 0b; sldt %ecx = 0f 00 c1
        let e = emulate(&[0x0f, 0x00, 0x0b], &regs(), 0, 0).unwrap();
        assert_eq!((e.to, e.bytes), (Target::Memory(0x5000), vec![0x40, 0]));
        let e = emulate(&[0x0f, 0x00, 0xc1], &regs(), 0, 0).unwrap();
        assert_eq!((e.to, e.bytes), (Target::Register(Register::RCX), vec![0, 0, 0, 0]));
        // smsw (%fs:0x10) = 64 0f 01 24 25 10 00 00 00
        let e =
            emulate(&[0x64, 0x0f, 0x01, 0x24, 0x25, 0x10, 0, 0, 0], &regs(), 0x7000, 0).unwrap();
        assert_eq!(e.to, Target::Memory(0x7010));
    }

    #[test]
    fn other_instructions_are_not_emulated() {
        // lgdt (%rbx) = 0f 01 13; vmcall = 0f 01 c1; nop
        for code in [&[0x0f, 0x01, 0x13][..], &[0x0f, 0x01, 0xc1], &[0x90]] {
            assert_eq!(emulate(code, &regs(), 0, 0), None, "{code:x?}");
        }
    }
}
