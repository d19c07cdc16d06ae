//! The address a faulting instruction could not access, found by decoding it, for faults whose
//! exit carries no address.
//!
//! When KVM cannot back a guest page with host memory (a file mapping touched beyond the end of
//! its file, a page the host kernel answers with SIGBUS), `KVM_RUN` fails with `EFAULT`; only
//! hosts with `KVM_CAP_MEMORY_FAULT_INFO` say which guest-physical address it was, and kvm_pvm
//! does not. Linux reports such a fault as SIGBUS with `si_addr` = the byte the access could
//! not reach (arch/x86/mm/fault.c, `do_sigbus`), so the supervisor decodes the instruction at
//! RIP (iced-x86), computes each memory operand's address from the registers, and asks which
//! of those bytes the host cannot read.

use iced_x86::{Decoder, DecoderOptions, InstructionInfoFactory, Register};

use dune::Regs;

const PAGE: u64 = 4096;

/// Pages of a `rep` string operand scanned for the unbacked one.
const REP_SCAN_PAGES: u64 = 1024;

/// The first byte the instruction at `regs.rip` could not reach: `code` holds its bytes as far
/// as they could be read (up to 15; fewer where the code's page ends and the next is not
/// backed). A fetch that failed is the fault (RIP itself, or the first byte after `code` for
/// an instruction that continues there); else the first byte, among its memory operands, for
/// which `backed` is false. `fs_base`/`gs_base` are the segment bases. An access that crosses
/// into an unbacked page faults at that page's first byte, as the CPU reports it. `None` if
/// the instruction is invalid or every byte it touches is backed.
pub fn unbacked_access(
    code: &[u8],
    regs: &Regs,
    fs_base: u64,
    gs_base: u64,
    backed: impl Fn(u64) -> bool,
) -> Option<u64> {
    if code.is_empty() {
        return Some(regs.rip);
    }
    let mut decoder = Decoder::with_ip(64, code, regs.rip, DecoderOptions::NONE);
    let instr = decoder.decode();
    if instr.is_invalid() {
        // Cut short by the end of what could be read: the fetch of the rest is what faulted
        // (an invalid instruction raises #UD, never a host fault, so it is not one here).
        return (code.len() < 15).then(|| regs.rip + code.len() as u64);
    }
    let rep = (instr.has_rep_prefix() || instr.has_repne_prefix()) && instr.is_string_instruction();
    let mut factory = InstructionInfoFactory::new();
    let info = factory.info(&instr);
    let value = |reg: Register, _: usize, _: usize| register(regs, fs_base, gs_base, reg);
    let operands: Vec<(u64, u64)> = info
        .used_memory()
        .iter()
        .filter_map(|mem| {
            let addr = mem.virtual_address(0, value)?;
            Some((addr, (mem.memory_size().size() as u64).max(1)))
        })
        .collect();
    // The access the instruction is making now: each operand's first and last byte.
    for &(addr, size) in &operands {
        if !backed(addr) {
            return Some(addr);
        }
        let last = addr.wrapping_add(size - 1);
        if !backed(last) {
            return Some(last & !(PAGE - 1));
        }
    }
    if !rep {
        return None;
    }
    // A string instruction faults where its count has taken it: the unbacked page that the
    // fewest further bytes reach, over all its operands (downwards with DF set).
    let down = regs.rflags & (1 << 10) != 0;
    let mut best: Option<(u64, u64)> = None; // (bytes ahead, address)
    for &(addr, size) in &operands {
        let len = regs.rcx.saturating_mul(size);
        let page = addr & !(PAGE - 1);
        for i in 1..=REP_SCAN_PAGES {
            let (ahead, fault) = if down {
                let Some(p) = page.checked_sub(i * PAGE) else { break };
                let top = p + (PAGE - 1);
                (addr - top, top)
            } else {
                let Some(p) = page.checked_add(i * PAGE) else { break };
                (p - addr, p)
            };
            if ahead >= len || best.is_some_and(|(b, _)| b <= ahead) {
                break;
            }
            if !backed(fault) {
                best = Some((ahead, fault));
                break;
            }
        }
    }
    best.map(|(_, fault)| fault)
}

/// The value of a general-purpose register (any width: the full register, truncated), or a
/// segment's base (ES, CS, SS and DS are flat in 64-bit mode).
pub(crate) fn register(regs: &Regs, fs_base: u64, gs_base: u64, reg: Register) -> Option<u64> {
    match reg {
        Register::ES | Register::CS | Register::SS | Register::DS => return Some(0),
        Register::FS => return Some(fs_base),
        Register::GS => return Some(gs_base),
        _ => {}
    }
    let full = match reg.full_register() {
        Register::RAX => regs.rax,
        Register::RBX => regs.rbx,
        Register::RCX => regs.rcx,
        Register::RDX => regs.rdx,
        Register::RSI => regs.rsi,
        Register::RDI => regs.rdi,
        Register::RSP => regs.rsp,
        Register::RBP => regs.rbp,
        Register::R8 => regs.r8,
        Register::R9 => regs.r9,
        Register::R10 => regs.r10,
        Register::R11 => regs.r11,
        Register::R12 => regs.r12,
        Register::R13 => regs.r13,
        Register::R14 => regs.r14,
        Register::R15 => regs.r15,
        Register::RIP => regs.rip,
        _ => return None,
    };
    Some(match reg {
        Register::AH | Register::BH | Register::CH | Register::DH => (full >> 8) & 0xff,
        _ => match reg.size() {
            4 => full & 0xffff_ffff,
            2 => full & 0xffff,
            1 => full & 0xff,
            _ => full,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLE: u64 = 0x10_2000; // an unbacked page; everything else is backed

    fn backed(a: u64) -> bool {
        a & !(PAGE - 1) != HOLE
    }

    fn at(code: &[u8], regs: Regs) -> Option<u64> {
        unbacked_access(code, &Regs { rip: 0x40_0000, ..regs }, 0x7000_0000, 0, backed)
    }

    #[test]
    fn plain_loads_and_stores() {
        // mov al, [rdi]
        assert_eq!(
            at(&[0x8a, 0x07], Regs { rdi: HOLE + 100, ..Regs::default() }),
            Some(HOLE + 100)
        );
        // mov [rbx + rcx*4 + 8], eax
        let r = Regs { rbx: HOLE, rcx: 2, ..Regs::default() };
        assert_eq!(at(&[0x89, 0x44, 0x8b, 0x08], r), Some(HOLE + 16));
        // mov rax, [rdi] across into the hole: the hole's first byte
        assert_eq!(at(&[0x48, 0x8b, 0x07], Regs { rdi: HOLE - 4, ..Regs::default() }), Some(HOLE));
        // backed: nothing to report
        assert_eq!(at(&[0x8a, 0x07], Regs { rdi: HOLE + PAGE, ..Regs::default() }), None);
    }

    #[test]
    fn rip_relative_and_segment_bases() {
        // mov eax, [rip + disp32]: next ip 0x400006 + disp
        let disp = (HOLE + 8).wrapping_sub(0x40_0006) as u32;
        let mut code = vec![0x8b, 0x05];
        code.extend_from_slice(&disp.to_le_bytes());
        assert_eq!(at(&code, Regs::default()), Some(HOLE + 8));
        // mov eax, fs:[rdi] with fs base 0x7000_0000
        let r = Regs { rdi: HOLE.wrapping_sub(0x7000_0000), ..Regs::default() };
        assert_eq!(at(&[0x64, 0x8b, 0x07], r), Some(HOLE));
    }

    #[test]
    fn string_instructions_scan_ahead() {
        // rep movsb from 3 pages before the hole, count reaching into it
        let r = Regs { rsi: HOLE - 3 * PAGE, rdi: 0x20_0000, rcx: 4 * PAGE, ..Regs::default() };
        assert_eq!(at(&[0xf3, 0xa4], r), Some(HOLE));
        // a count that stops short never reaches it, even when the page after is a hole
        let r = Regs { rsi: HOLE - 3 * PAGE, rdi: 0x20_0000, rcx: 100, ..Regs::default() };
        assert_eq!(at(&[0xf3, 0xa4], r), None);
        let r = Regs { rsi: HOLE - PAGE + 8, rdi: 0x20_0000, rcx: PAGE - 8, ..Regs::default() };
        assert_eq!(at(&[0xf3, 0xa4], r), None);
        let r = Regs { rsi: HOLE - PAGE + 8, rdi: 0x20_0000, rcx: PAGE - 7, ..Regs::default() };
        assert_eq!(at(&[0xf3, 0xa4], r), Some(HOLE));
        // std; rep movsb: downwards from 2 pages above the hole
        let r = Regs {
            rsi: HOLE + 2 * PAGE + 8,
            rdi: 0x20_0000,
            rcx: PAGE + 16,
            rflags: 1 << 10,
            ..Regs::default()
        };
        assert_eq!(at(&[0xf3, 0xa4], r), Some(HOLE + PAGE - 1));
    }

    #[test]
    fn two_operand_string_instructions_fault_on_the_nearer_page() {
        // rep movsb: the source is unbacked right now, the destination only further on
        let r = Regs { rsi: HOLE + 16, rdi: HOLE - 2 * PAGE, rcx: 4 * PAGE, ..Regs::default() };
        assert_eq!(at(&[0xf3, 0xa4], r), Some(HOLE + 16));
        // the destination reaches the hole after 8 bytes, the source never does
        let r = Regs { rsi: 0x20_0000, rdi: HOLE - 8, rcx: 64, ..Regs::default() };
        assert_eq!(at(&[0xf3, 0xa4], r), Some(HOLE));
    }

    #[test]
    fn byte_registers_and_xlat() {
        // xlatb: [rbx + al]; AL is the low byte of a RAX with garbage above it
        let r = Regs { rbx: HOLE, rax: 0xdead_beef_0000_0010, ..Regs::default() };
        assert_eq!(at(&[0xd7], r), Some(HOLE + 0x10));
    }

    #[test]
    fn huge_counts_near_the_ends_of_the_address_space() {
        // std; rep movsb from low memory with a huge count: no overflow, nothing found
        let r =
            Regs { rsi: 0x3000, rdi: 0x5000, rcx: u64::MAX, rflags: 1 << 10, ..Regs::default() };
        assert_eq!(at(&[0xf3, 0xa4], r), None);
        let top = u64::MAX - 0x3000;
        let r = Regs { rsi: top, rdi: top - 0x10000, rcx: u64::MAX, ..Regs::default() };
        assert_eq!(at(&[0xf3, 0xa4], r), None);
    }

    #[test]
    fn invalid_code_gives_none() {
        let mut code = [0x90u8; 15];
        code[0] = 0x06; // push es: invalid in 64-bit mode
        assert_eq!(at(&code, Regs::default()), None);
    }

    #[test]
    fn failed_fetches_are_the_fault() {
        // nothing readable at RIP: the fetch of RIP itself
        assert_eq!(at(&[], Regs::default()), Some(0x40_0000));
        // mov rax, [rdi] cut after 2 of its 3 bytes: the fetch of the next page
        assert_eq!(at(&[0x48, 0x8b], Regs::default()), Some(0x40_0002));
    }
}
