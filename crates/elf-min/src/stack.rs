//! The initial process stack: strings, `argc`/`argv`/`envp` and the auxiliary vector.

use alloc::vec;
use alloc::vec::Vec;

use crate::auxv::*;
use crate::elf::{LoadPlan, PAGE_SIZE};
use crate::error::{ElfError, StringKind};

/// Longest single argv/envp/execfn string Linux copies, *including* its NUL:
/// `MAX_ARG_STRLEN = 32 * PAGE_SIZE` (`include/uapi/linux/binfmts.h`).
pub const MAX_ARG_STRLEN: u64 = 32 * PAGE_SIZE;

/// The argument budget Linux guarantees even with a tiny stack rlimit:
/// `ARG_MAX = 32 * PAGE_SIZE` bytes.
pub const ARG_MAX: u64 = 32 * PAGE_SIZE;

/// The argument budget under the default 8 MiB stack rlimit: 2 MiB
/// (`arg_limit_for_stack_rlimit(8 << 20)`).
pub const DEFAULT_ARG_LIMIT: u64 = 2 << 20;

/// The platform string Linux x86-64 places on the stack (`ELF_PLATFORM`, `AT_PLATFORM`).
pub const PLATFORM: &[u8] = b"x86_64";

/// `_STK_LIM`: 8 MiB.
const STK_LIM: u64 = 8 << 20;

/// Linux's argument budget for a stack rlimit (`bprm_stack_limits` in `fs/exec.c`):
/// `max(min(_STK_LIM / 4 * 3, rlim_cur / 4), ARG_MAX)` bytes, covering all strings (with
/// NULs, execfn included) plus `(max(argc, 1) + envc) * 8` bytes of pointers.
///
/// `rlim_stack_cur` is `RLIMIT_STACK`'s soft limit in bytes (`u64::MAX` for unlimited).
pub fn arg_limit_for_stack_rlimit(rlim_stack_cur: u64) -> u64 {
    (STK_LIM / 4 * 3).min(rlim_stack_cur / 4).max(ARG_MAX)
}

/// The auxiliary-vector values the caller decides. Addresses are biased user addresses.
///
/// The string/random addresses (`AT_RANDOM`, `AT_EXECFN`, `AT_PLATFORM`) are filled in by
/// [`build_initial_stack`]. [`Default`] gives Linux's constants (`pagesz` 4096, `clktck`
/// 100) and zero/`None` elsewhere; [`for_program`](Self::for_program) fills the program's
/// fields from its [`LoadPlan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuxvParams {
    /// `AT_PHDR`: address of the program's headers ([`LoadPlan::phdr`]).
    pub phdr: u64,
    /// `AT_PHENT`: 56.
    pub phent: u64,
    /// `AT_PHNUM`: number of program headers.
    pub phnum: u64,
    /// `AT_PAGESZ`: 4096.
    pub pagesz: u64,
    /// `AT_BASE`: the interpreter's load bias, or 0 without an interpreter.
    pub base: u64,
    /// `AT_FLAGS`: 0 (or [`AT_FLAGS_PRESERVE_ARGV0`]).
    pub flags: u64,
    /// `AT_ENTRY`: the *program's* biased entry point (not the interpreter's).
    pub entry: u64,
    /// `AT_UID`.
    pub uid: u64,
    /// `AT_EUID`.
    pub euid: u64,
    /// `AT_GID`.
    pub gid: u64,
    /// `AT_EGID`.
    pub egid: u64,
    /// `AT_SECURE` (emitted as 0 or 1).
    pub secure: bool,
    /// `AT_HWCAP` (x86: CPUID.1:EDX).
    pub hwcap: u64,
    /// `AT_HWCAP2`.
    pub hwcap2: u64,
    /// `AT_CLKTCK`: 100.
    pub clktck: u64,
    /// `AT_MINSIGSTKSZ`: the signal frame size the supervisor's signal delivery needs.
    pub minsigstksz: u64,
    /// `AT_SYSINFO_EHDR`: the vDSO's address; emitted only when `Some`.
    pub sysinfo_ehdr: Option<u64>,
    /// `(AT_RSEQ_FEATURE_SIZE, AT_RSEQ_ALIGN)`; emitted (after `AT_PLATFORM`) only when
    /// `Some`, as Linux >= 6.3 does.
    pub rseq: Option<(u64, u64)>,
}

impl Default for AuxvParams {
    fn default() -> Self {
        AuxvParams {
            phdr: 0,
            phent: 56,
            phnum: 0,
            pagesz: PAGE_SIZE,
            base: 0,
            flags: 0,
            entry: 0,
            uid: 0,
            euid: 0,
            gid: 0,
            egid: 0,
            secure: false,
            hwcap: 0,
            hwcap2: 0,
            clktck: 100,
            minsigstksz: 0,
            sysinfo_ehdr: None,
            rseq: None,
        }
    }
}

impl AuxvParams {
    /// Defaults with `phdr`, `phent`, `phnum`, `entry` from the program's plan and `base`
    /// from the interpreter's plan (its load bias), if any.
    pub fn for_program(program: &LoadPlan, interp: Option<&LoadPlan>) -> Self {
        AuxvParams {
            phdr: program.phdr,
            phent: program.phent,
            phnum: program.phnum,
            entry: program.entry,
            base: interp.map_or(0, |i| i.load_bias),
            ..AuxvParams::default()
        }
    }

    /// The auxv pairs in Linux x86-64 order, `AT_NULL` included.
    fn entries(&self, random: u64, execfn: u64, platform: u64) -> Vec<(u64, u64)> {
        let mut v = Vec::with_capacity(24);
        if let Some(vdso) = self.sysinfo_ehdr {
            v.push((AT_SYSINFO_EHDR, vdso));
        }
        v.extend_from_slice(&[
            (AT_MINSIGSTKSZ, self.minsigstksz),
            (AT_HWCAP, self.hwcap),
            (AT_PAGESZ, self.pagesz),
            (AT_CLKTCK, self.clktck),
            (AT_PHDR, self.phdr),
            (AT_PHENT, self.phent),
            (AT_PHNUM, self.phnum),
            (AT_BASE, self.base),
            (AT_FLAGS, self.flags),
            (AT_ENTRY, self.entry),
            (AT_UID, self.uid),
            (AT_EUID, self.euid),
            (AT_GID, self.gid),
            (AT_EGID, self.egid),
            (AT_SECURE, u64::from(self.secure)),
            (AT_RANDOM, random),
            (AT_HWCAP2, self.hwcap2),
            (AT_EXECFN, execfn),
            (AT_PLATFORM, platform),
        ]);
        if let Some((size, align)) = self.rseq {
            v.push((AT_RSEQ_FEATURE_SIZE, size));
            v.push((AT_RSEQ_ALIGN, align));
        }
        v.push((AT_NULL, 0));
        v
    }
}

/// Inputs of [`build_initial_stack`]. Strings are raw bytes without NULs.
#[derive(Debug, Clone, Copy)]
pub struct StackParams<'a> {
    /// Highest stack address (exclusive; Linux's `vm_end` after `setup_arg_pages`).
    /// Must be 16-byte aligned.
    pub stack_top: u64,
    /// Argument strings. An empty list gets Linux's `""` as `argv[0]` (argc becomes 1,
    /// since Linux 5.18).
    pub argv: &'a [&'a [u8]],
    /// Environment strings.
    pub envp: &'a [&'a [u8]],
    /// The file name execve was given (`AT_EXECFN`).
    pub execfn: &'a [u8],
    /// The 16 bytes `AT_RANDOM` points at.
    pub random: [u8; 16],
    /// The auxiliary-vector values.
    pub auxv: AuxvParams,
    /// Argument budget in bytes (strings with NULs plus `(max(argc, 1) + envc) * 8`);
    /// use [`DEFAULT_ARG_LIMIT`] or [`arg_limit_for_stack_rlimit`].
    pub arg_limit: u64,
    /// Bytes subtracted below the strings before rounding down to 16 (x86
    /// `arch_align_stack`). Linux subtracts a random value below 8192 when address-space
    /// randomisation is on; 0 gives the unrandomised layout.
    pub align_pad: u64,
}

/// The initial stack image and the addresses in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialStack {
    /// Initial `%rsp`: address of `argc`; 16-byte aligned.
    pub sp: u64,
    /// The bytes of `[sp, stack_top)`; byte `i` belongs at address `sp + i`.
    pub image: Vec<u8>,
    /// Address of `argv[0]`'s pointer (`sp + 8`).
    pub argv_addr: u64,
    /// Address of `envp[0]`'s pointer.
    pub envp_addr: u64,
    /// Address of the first auxv pair.
    pub auxv_addr: u64,
    /// `AT_RANDOM`: address of the 16 random bytes.
    pub random_addr: u64,
    /// `AT_PLATFORM`: address of `"x86_64\0"`.
    pub platform_addr: u64,
    /// `AT_EXECFN`: address of the execfn string.
    pub execfn_addr: u64,
    /// Start of the argv strings (Linux `mm->arg_start`).
    pub arg_start: u64,
    /// End of the argv strings = start of the envp strings (`mm->arg_end`, `mm->env_start`).
    pub arg_end: u64,
    /// End of the envp strings (`mm->env_end`).
    pub env_end: u64,
    /// The auxv pairs written, `AT_NULL` included (for `/proc/<pid>/auxv`-like uses).
    pub auxv: Vec<(u64, u64)>,
}

/// Builds the initial stack exactly as Linux x86-64 `execve` does.
///
/// From `stack_top` down (`fs/exec.c`, then `create_elf_tables` in `fs/binfmt_elf.c`):
/// 8 zero bytes; the execfn string; the envp strings, the argv strings (`argv[0]` lowest;
/// all NUL-terminated and contiguous); `align_pad` bytes and alignment down to 16
/// (`arch_align_stack`); `"x86_64\0"`; the 16 `AT_RANDOM` bytes; padding so that `sp` is 16-byte
/// aligned; then upward from `sp`: `argc`, `argv` pointers, NULL, `envp` pointers, NULL, the
/// auxv pairs (see [`crate::auxv`] for the order) ending in `AT_NULL`.
///
/// # Errors
///
/// [`ElfError::StackTopMisaligned`], [`ElfError::StringHasNul`],
/// [`ElfError::StringTooLong`] (a string of `MAX_ARG_STRLEN` bytes or more),
/// [`ElfError::ArgsTooBig`] (over `arg_limit`, Linux's accounting), [`ElfError::StackTooLow`].
pub fn build_initial_stack(p: &StackParams<'_>) -> Result<InitialStack, ElfError> {
    let top = p.stack_top;
    if top & 15 != 0 {
        return Err(ElfError::StackTopMisaligned { stack_top: top });
    }
    check_strings(StringKind::Execfn, core::slice::from_ref(&p.execfn))?;
    check_strings(StringKind::Envp, p.envp)?;
    check_strings(StringKind::Argv, p.argv)?;

    // bprm_stack_limits: reserve the pointers, then the strings must fit in the rest.
    let argc = p.argv.len().max(1) as u64;
    let envc = p.envp.len() as u64;
    let too_big = |needed| ElfError::ArgsTooBig { needed, limit: p.arg_limit };
    let ptr_size =
        argc.checked_add(envc).and_then(|n| n.checked_mul(8)).ok_or(too_big(u64::MAX))?;
    let strlen = |s: &[&[u8]]| s.iter().map(|a| a.len() as u64 + 1).sum::<u64>();
    let argv_bytes = if p.argv.is_empty() { 1 } else { strlen(p.argv) };
    let env_bytes = strlen(p.envp);
    let exec_bytes = p.execfn.len() as u64 + 1;
    let strings = argv_bytes + env_bytes + exec_bytes;
    if p.arg_limit <= ptr_size || strings > p.arg_limit - ptr_size {
        return Err(too_big(strings.saturating_add(ptr_size)));
    }

    let items = (argc + 1) + (envc + 1) + 1;
    let auxv_len_bound = 2 * 24 * 8;
    let low = |size: u64| ElfError::StackTooLow { stack_top: top, size };
    // Generous bound of everything below the strings; fail before any subtraction wraps.
    let bound = (8 + strings + 15 + 7 + 16 + auxv_len_bound + items * 8 + 15)
        .checked_add(p.align_pad)
        .ok_or(low(u64::MAX))?;
    if top < bound {
        return Err(low(bound));
    }

    let execfn_addr = top - 8 - exec_bytes;
    let arg_start = execfn_addr - env_bytes - argv_bytes;
    let arg_end = arg_start + argv_bytes;
    let env_end = arg_end + env_bytes;

    let mut q = (arg_start - p.align_pad) & !15; // arch_align_stack
    q -= PLATFORM.len() as u64 + 1;
    let platform_addr = q;
    q -= 16;
    let random_addr = q;
    let auxv = p.auxv.entries(random_addr, execfn_addr, platform_addr);
    let ei = auxv.len() as u64 * 2;
    let sp = (q - ei * 8 - items * 8) & !15; // STACK_ADD then STACK_ROUND
    let argv_addr = sp + 8;
    let envp_addr = argv_addr + (argc + 1) * 8;
    let auxv_addr = envp_addr + (envc + 1) * 8;

    let size = top - sp;
    let mut image = vec![0u8; usize::try_from(size).map_err(|_| low(size))?];
    let mut w = Writer { base: sp, image: &mut image };

    // Strings: argv, envp, execfn, contiguous from arg_start.
    let mut argv_ptrs = Vec::with_capacity(argc as usize);
    let mut at = arg_start;
    if p.argv.is_empty() {
        argv_ptrs.push(at);
        at += 1; // "" — the image is already zero.
    }
    for s in p.argv {
        argv_ptrs.push(at);
        w.bytes(at, s);
        at += s.len() as u64 + 1;
    }
    let mut envp_ptrs = Vec::with_capacity(envc as usize);
    for s in p.envp {
        envp_ptrs.push(at);
        w.bytes(at, s);
        at += s.len() as u64 + 1;
    }
    debug_assert_eq!(at, execfn_addr);
    w.bytes(execfn_addr, p.execfn);
    w.bytes(platform_addr, PLATFORM);
    w.bytes(random_addr, &p.random);

    // Tables.
    w.u64(sp, argc);
    let mut at = argv_addr;
    for ptr in argv_ptrs.iter().chain(Some(&0)) {
        w.u64(at, *ptr);
        at += 8;
    }
    debug_assert_eq!(at, envp_addr);
    for ptr in envp_ptrs.iter().chain(Some(&0)) {
        w.u64(at, *ptr);
        at += 8;
    }
    debug_assert_eq!(at, auxv_addr);
    for &(k, v) in &auxv {
        w.u64(at, k);
        w.u64(at + 8, v);
        at += 16;
    }
    debug_assert!(at <= random_addr);

    Ok(InitialStack {
        sp,
        image,
        argv_addr,
        envp_addr,
        auxv_addr,
        random_addr,
        platform_addr,
        execfn_addr,
        arg_start,
        arg_end,
        env_end,
        auxv,
    })
}

fn check_strings(kind: StringKind, list: &[&[u8]]) -> Result<(), ElfError> {
    for (index, s) in list.iter().enumerate() {
        if s.contains(&0) {
            return Err(ElfError::StringHasNul { kind, index });
        }
        if s.len() as u64 + 1 > MAX_ARG_STRLEN {
            return Err(ElfError::StringTooLong { kind, index, len: s.len() as u64 });
        }
    }
    Ok(())
}

struct Writer<'b> {
    base: u64,
    image: &'b mut [u8],
}

impl Writer<'_> {
    fn bytes(&mut self, addr: u64, b: &[u8]) {
        let off = (addr - self.base) as usize;
        self.image[off..off + b.len()].copy_from_slice(b);
    }

    fn u64(&mut self, addr: u64, v: u64) {
        self.bytes(addr, &v.to_le_bytes());
    }
}

/// The tables of an initial stack image, read back (see [`parse_initial_stack`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedStack {
    /// `argc`.
    pub argc: u64,
    /// The `argv` pointers (without the terminating NULL).
    pub argv: Vec<u64>,
    /// The `envp` pointers (without the terminating NULL).
    pub envp: Vec<u64>,
    /// The auxv pairs, `AT_NULL` included.
    pub auxv: Vec<(u64, u64)>,
}

impl ParsedStack {
    /// The value of the first auxv pair with key `key` (an `AT_*` constant).
    pub fn auxv_get(&self, key: u64) -> Option<u64> {
        self.auxv.iter().find(|&&(k, _)| k == key).map(|&(_, v)| v)
    }
}

/// Reads `argc`, `argv`, `envp` and auxv back from a stack image whose first byte is `argc`
/// (as [`InitialStack::image`] holds it). `None` if the tables run off the image or `argc`
/// disagrees with the NULL-terminated `argv`.
pub fn parse_initial_stack(image: &[u8]) -> Option<ParsedStack> {
    let word = |i: usize| -> Option<u64> {
        let b = image.get(i.checked_mul(8)?..i.checked_mul(8)?.checked_add(8)?)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    };
    let argc = word(0)?;
    let mut i = 1;
    let mut argv = Vec::new();
    loop {
        let v = word(i)?;
        i += 1;
        if v == 0 {
            break;
        }
        argv.push(v);
    }
    if argv.len() as u64 != argc {
        return None;
    }
    let mut envp = Vec::new();
    loop {
        let v = word(i)?;
        i += 1;
        if v == 0 {
            break;
        }
        envp.push(v);
    }
    let auxv = parse_auxv(image.get(i.checked_mul(8)?..)?)?;
    Some(ParsedStack { argc, argv, envp, auxv })
}

/// Reads auxv pairs (two little-endian `u64`s each) from the start of `raw` up to and
/// including `AT_NULL` — the layout of the auxv on the stack and of `/proc/<pid>/auxv`.
/// `None` if `raw` ends before an `AT_NULL` key.
pub fn parse_auxv(raw: &[u8]) -> Option<Vec<(u64, u64)>> {
    let mut auxv = Vec::new();
    for pair in raw.chunks_exact(16) {
        let k = u64::from_le_bytes(pair[..8].try_into().ok()?);
        let v = u64::from_le_bytes(pair[8..].try_into().ok()?);
        auxv.push((k, v));
        if k == AT_NULL {
            return Some(auxv);
        }
    }
    None
}

/// The NUL-terminated string at address `addr` in an image whose first byte is at address
/// `base`, without the NUL; `None` if `addr` is outside the image or there is no NUL.
pub fn read_cstr(image: &[u8], base: u64, addr: u64) -> Option<&[u8]> {
    let off = usize::try_from(addr.checked_sub(base)?).ok()?;
    let rest = image.get(off..)?;
    let n = rest.iter().position(|&b| b == 0)?;
    Some(&rest[..n])
}
