//! Header validation and the load plan.

use alloc::vec::Vec;

use goblin::elf::header::{
    ELFCLASS64, ELFDATA2LSB, ELFMAG, EM_X86_64, ET_DYN, ET_EXEC, EV_CURRENT,
};
use goblin::elf::program_header::{
    PF_R, PF_W, PF_X, PT_GNU_RELRO, PT_GNU_STACK, PT_INTERP, PT_LOAD, PT_PHDR, PT_TLS,
};
use goblin::elf64::header::{Header, SIZEOF_EHDR};
use goblin::elf64::program_header::ProgramHeader;

use crate::error::ElfError;

/// The x86-64 page size in bytes; every [`Segment`] bound is a multiple of it.
pub const PAGE_SIZE: u64 = 4096;

/// End (exclusive) of the x86-64 user address space with 4-level paging:
/// `TASK_SIZE_MAX = (1 << 47) - PAGE_SIZE` (`arch/x86/include/asm/page_64_types.h`).
/// Every planned address is below it.
pub const USER_END: u64 = (1 << 47) - PAGE_SIZE;

/// Longest `PT_INTERP` contents accepted, including the NUL (Linux `PATH_MAX`).
pub const PATH_MAX: u64 = 4096;

/// `sizeof(Elf64_Phdr)`: the only `e_phentsize` accepted, and `AT_PHENT`.
pub const PHENTSIZE: u16 = 56;

/// Largest program-header table Linux reads: `ELF_MIN_ALIGN` (4096 bytes, i.e. at most 73
/// entries; `load_elf_phdrs` in `fs/binfmt_elf.c`).
pub const MAX_PHDR_TABLE_BYTES: u64 = 4096;

const PAGE_MASK: u64 = PAGE_SIZE - 1;

fn page_down(v: u64) -> u64 {
    v & !PAGE_MASK
}

fn page_up(v: u64) -> Option<u64> {
    v.checked_add(PAGE_MASK).map(page_down)
}

/// The ELF file type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfKind {
    /// `ET_EXEC`: linked at fixed addresses; loads at bias 0 only.
    Exec,
    /// `ET_DYN`: position independent (PIE program or shared object such as `ld.so`);
    /// loads at any suitably aligned bias.
    Dyn,
}

/// The unbiased extent of all `PT_LOAD`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Page-aligned lowest address (first `PT_LOAD`'s `p_vaddr` rounded down).
    pub lo: u64,
    /// Page-aligned end (last `PT_LOAD`'s `p_vaddr + p_memsz` rounded up); `hi > lo`.
    pub hi: u64,
    /// Largest power-of-two `p_align` of the `PT_LOAD`s, at least [`PAGE_SIZE`]
    /// (non-power-of-two values are ignored, as Linux's `maximum_alignment` does). An
    /// `ET_DYN` load bias must be a multiple of it.
    pub align: u64,
}

/// Memory protection of a segment, from `p_flags` (`PF_R`/`PF_W`/`PF_X`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prot {
    /// `PF_R`.
    pub read: bool,
    /// `PF_W`.
    pub write: bool,
    /// `PF_X`.
    pub exec: bool,
}

impl Prot {
    fn from_flags(p_flags: u32) -> Self {
        Prot { read: p_flags & PF_R != 0, write: p_flags & PF_W != 0, exec: p_flags & PF_X != 0 }
    }
}

/// One `PT_LOAD`, page-granular and biased. All fields are byte addresses, offsets or
/// lengths.
///
/// The memory image of `[start, end)` is, exactly as Linux's `elf_load` leaves it:
///
/// 1. `[start, start + page_up(file_len))`: the file's bytes from `file_offset` (a private
///    file mapping: the bytes after `p_filesz` up to the page end are the *file's following
///    bytes*, zeros past the end of the file);
/// 2. then, **only when `p_memsz > p_filesz`**, `[zero_from, end)` is zero — this includes
///    the tail of the last file page (Linux `padzero`), and the anonymous pages after it.
///    When `p_memsz == p_filesz` the tail of the last file page keeps the file's bytes;
/// 3. everything else in `[start, end)` is zero.
///
/// [`write_image`](Self::write_image) produces exactly this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Page-aligned first address (`p_vaddr + bias` rounded down).
    pub start: u64,
    /// Page-aligned end (`p_vaddr + p_memsz + bias` rounded up); `end > start`.
    pub end: u64,
    /// Page-aligned file offset mapped at `start` (`p_offset` rounded down). Meaningful only
    /// when `file_len > 0`.
    pub file_offset: u64,
    /// Bytes of file placed from `start`: `p_vaddr % PAGE_SIZE + p_filesz`, or 0 when
    /// `p_filesz == 0` (pure bss). `file_offset + file_len` never exceeds the file length.
    pub file_len: u64,
    /// Address where zero fill starts: `p_vaddr + p_filesz + bias`. Meaningful only when
    /// [`has_zero_fill`](Self::has_zero_fill) (`p_memsz > p_filesz`); then
    /// `[zero_from, end)` — including the rest of the last file page — is zeroed.
    pub zero_from: u64,
    /// Whether `p_memsz > p_filesz`, i.e. whether `[zero_from, end)` must be zeroed.
    pub has_zero_fill: bool,
    /// Protection from `p_flags`.
    pub prot: Prot,
}

impl Segment {
    /// Length of the segment in bytes (`end - start`, a multiple of [`PAGE_SIZE`]).
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Always false: planned segments are never empty. Present for API symmetry with
    /// [`len`](Self::len).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Writes the exact initial contents of `[start, end)` into `out` (see the type docs):
    /// file bytes, the file's page tail or zeros per the `padzero` rule, zero elsewhere.
    ///
    /// `file` must be the bytes the plan was made from.
    ///
    /// # Panics
    ///
    /// If `out.len() != self.len()`.
    pub fn write_image(&self, file: &[u8], out: &mut [u8]) {
        assert_eq!(
            out.len() as u64,
            self.len(),
            "Segment::write_image: output length must equal end - start"
        );
        out.fill(0);
        if self.file_len > 0 {
            // A private file mapping of page_up(file_len) bytes, clipped at EOF.
            let map_len = page_up(self.file_len).unwrap_or(u64::MAX).min(self.len());
            let from = usize::try_from(self.file_offset).unwrap_or(usize::MAX);
            let avail = file.len().saturating_sub(from);
            let n = usize::try_from(map_len).unwrap_or(usize::MAX).min(avail);
            if n > 0 {
                out[..n].copy_from_slice(&file[from..from + n]);
            }
        }
        if self.has_zero_fill {
            let z = usize::try_from(self.zero_from.saturating_sub(self.start))
                .unwrap_or(usize::MAX)
                .min(out.len());
            out[z..].fill(0);
        }
    }
}

/// The `PT_TLS` template, biased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tls {
    /// `p_vaddr + bias`: address of the initialisation image.
    pub vaddr: u64,
    /// `p_filesz`: bytes of initialised data.
    pub filesz: u64,
    /// `p_memsz`: total TLS block size.
    pub memsz: u64,
    /// `p_align`.
    pub align: u64,
}

/// Everything the supervisor needs to load one ELF file at one bias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    /// The bias added to every `p_vaddr` (0 for `ET_EXEC`).
    pub load_bias: u64,
    /// `e_entry + load_bias`.
    pub entry: u64,
    /// The `PT_LOAD`s with non-zero `p_memsz`, in ascending address order; page ranges are
    /// disjoint.
    pub segments: Vec<Segment>,
    /// `AT_PHDR`: address of the program headers. Linux's rule first (the last `PT_LOAD`
    /// whose file range contains `e_phoff`, mapped to its address), else `PT_PHDR`'s
    /// `p_vaddr`; plus the bias.
    pub phdr: u64,
    /// `AT_PHENT`: 56.
    pub phent: u64,
    /// `AT_PHNUM`: `e_phnum`.
    pub phnum: u64,
    /// The first `PT_TLS`, if any.
    pub tls: Option<Tls>,
    /// Whether the stack is executable: the last `PT_GNU_STACK` has `PF_X`. Without a
    /// `PT_GNU_STACK` the stack is *not* executable on x86-64 since Linux 5.8
    /// (`elf_read_implies_exec` is false for 64-bit; see [`has_gnu_stack`](Self::has_gnu_stack)
    /// to apply older semantics).
    pub stack_exec: bool,
    /// Whether the file has a `PT_GNU_STACK` at all.
    pub has_gnu_stack: bool,
    /// The first `PT_GNU_RELRO` as a biased, page-aligned `[start, end)` — both ends rounded
    /// *down*, as glibc's `_dl_protect_relro` does. `None` when absent, empty after
    /// rounding, or out of range.
    pub relro: Option<(u64, u64)>,
    /// Page-aligned end of the highest `PT_LOAD` (biased): where Linux starts brk before
    /// randomisation (`mm->start_brk = ELF_PAGEALIGN(elf_brk)`).
    pub brk_start: u64,
    /// Biased, page-aligned extent `[lo, hi)` of all segments.
    pub span: (u64, u64),
}

/// A validated view over a whole ELF file's bytes.
///
/// Construct with [`ElfFile::parse`]; the borrow keeps the bytes alive for
/// [`interp`](Self::interp) and [`Segment::write_image`].
#[derive(Clone)]
pub struct ElfFile<'a> {
    bytes: &'a [u8],
    kind: ElfKind,
    entry: u64,
    phoff: u64,
    phnum: u16,
    phdrs: Vec<ProgramHeader>,
    interp: Option<&'a [u8]>,
    span: Span,
}

impl core::fmt::Debug for ElfFile<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Not the file's bytes: only their length.
        f.debug_struct("ElfFile")
            .field("file_len", &self.bytes.len())
            .field("kind", &self.kind)
            .field("entry", &format_args!("{:#x}", self.entry))
            .field("phoff", &self.phoff)
            .field("phnum", &self.phnum)
            .field("interp", &self.interp.map(alloc::string::String::from_utf8_lossy))
            .field("span", &self.span)
            .field("phdrs", &self.phdrs)
            .finish()
    }
}

impl<'a> ElfFile<'a> {
    /// Validates the ELF header and program headers of a whole file.
    ///
    /// Checks, in this order (the first failure is returned): length >= 64
    /// ([`ElfError::TooShort`]), magic, class `ELFCLASS64`, data `ELFDATA2LSB`,
    /// `EI_VERSION`, `e_type` `ET_EXEC`/`ET_DYN`, `e_machine` `EM_X86_64`, `e_version`,
    /// `e_phentsize == 56`, `1 <= e_phnum <= 73`, program headers inside the file; then each
    /// `PT_INTERP` (at most one, 2..=4096 bytes inside the file, NUL-terminated, non-empty
    /// path); then each `PT_LOAD` with non-zero `p_memsz` in header order (`p_memsz >=
    /// p_filesz`, `p_offset ≡ p_vaddr (mod 4096)` when it has file bytes, no wrap and below
    /// [`USER_END`], file bytes inside the file, ascending and not sharing pages with the
    /// previous one); finally at least one such `PT_LOAD`.
    ///
    /// `PT_LOAD`s with `p_memsz == 0` are ignored (Linux maps nothing for them).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ElfError> {
        let file_len = bytes.len() as u64;
        if bytes.len() < SIZEOF_EHDR {
            return Err(ElfError::TooShort { len: file_len });
        }
        if &bytes[..4] != ELFMAG {
            return Err(ElfError::BadMagic { magic: [bytes[0], bytes[1], bytes[2], bytes[3]] });
        }
        let (ei_class, ei_data, ei_version) = (bytes[4], bytes[5], bytes[6]);
        if ei_class != ELFCLASS64 {
            return Err(ElfError::BadClass { ei_class });
        }
        if ei_data != ELFDATA2LSB {
            return Err(ElfError::BadData { ei_data });
        }
        let hdr = Header::parse(bytes).map_err(|_| ElfError::TooShort { len: file_len })?;
        if ei_version != EV_CURRENT {
            return Err(ElfError::BadVersion { ei_version, e_version: hdr.e_version });
        }
        let kind = match hdr.e_type {
            ET_EXEC => ElfKind::Exec,
            ET_DYN => ElfKind::Dyn,
            e_type => return Err(ElfError::BadType { e_type }),
        };
        if hdr.e_machine != EM_X86_64 {
            return Err(ElfError::BadMachine { e_machine: hdr.e_machine });
        }
        if hdr.e_version != u32::from(EV_CURRENT) {
            return Err(ElfError::BadVersion { ei_version, e_version: hdr.e_version });
        }
        if hdr.e_phentsize != PHENTSIZE {
            return Err(ElfError::BadPhentsize { e_phentsize: hdr.e_phentsize });
        }
        let table = u64::from(hdr.e_phnum) * u64::from(PHENTSIZE);
        if table == 0 || table > MAX_PHDR_TABLE_BYTES {
            return Err(ElfError::BadPhnum { e_phnum: hdr.e_phnum });
        }
        let phdrs_outside =
            ElfError::PhdrsOutsideFile { e_phoff: hdr.e_phoff, size: table, file_len };
        match hdr.e_phoff.checked_add(table) {
            Some(end) if end <= file_len => {}
            _ => return Err(phdrs_outside),
        }
        // In bounds (checked above), so the conversions and goblin's reads succeed.
        let phoff = usize::try_from(hdr.e_phoff).map_err(|_| phdrs_outside.clone())?;
        let phdrs = ProgramHeader::parse(bytes, phoff, usize::from(hdr.e_phnum), scroll_le())
            .map_err(|_| phdrs_outside)?;

        let interp = Self::check_interp(bytes, &phdrs)?;
        let span = Self::check_loads(file_len, &phdrs)?;

        Ok(ElfFile {
            bytes,
            kind,
            entry: hdr.e_entry,
            phoff: hdr.e_phoff,
            phnum: hdr.e_phnum,
            phdrs,
            interp,
            span,
        })
    }

    /// `fs/binfmt_elf.c` `load_elf_binary`'s `PT_INTERP` loop, plus the single-interp rule.
    fn check_interp(
        bytes: &'a [u8],
        phdrs: &[ProgramHeader],
    ) -> Result<Option<&'a [u8]>, ElfError> {
        let file_len = bytes.len() as u64;
        let mut found: Option<(usize, &'a [u8])> = None;
        for (index, ph) in phdrs.iter().enumerate() {
            if ph.p_type != PT_INTERP {
                continue;
            }
            if let Some((first, _)) = found {
                return Err(ElfError::MultipleInterp { first, second: index });
            }
            if ph.p_filesz < 2 || ph.p_filesz > PATH_MAX {
                return Err(ElfError::InterpBadSize { index, p_filesz: ph.p_filesz });
            }
            let outside = ElfError::InterpOutsideFile {
                index,
                p_offset: ph.p_offset,
                p_filesz: ph.p_filesz,
                file_len,
            };
            let end = match ph.p_offset.checked_add(ph.p_filesz) {
                Some(end) if end <= file_len => end,
                _ => return Err(outside),
            };
            // Both bounds are <= file_len, which fits in usize.
            let raw = &bytes[ph.p_offset as usize..end as usize];
            if raw.last() != Some(&0) {
                return Err(ElfError::InterpNotTerminated { len: ph.p_filesz });
            }
            // Linux opens the C string, i.e. up to the first NUL.
            let nul = raw.iter().position(|&b| b == 0).unwrap_or(raw.len() - 1);
            if nul == 0 {
                return Err(ElfError::InterpEmpty);
            }
            found = Some((index, &raw[..nul]));
        }
        Ok(found.map(|(_, path)| path))
    }

    fn check_loads(file_len: u64, phdrs: &[ProgramHeader]) -> Result<Span, ElfError> {
        let mut span: Option<Span> = None;
        let mut prev_vaddr = 0;
        for (index, ph) in phdrs.iter().enumerate() {
            if ph.p_type != PT_LOAD || ph.p_memsz == 0 && ph.p_filesz == 0 {
                continue;
            }
            if ph.p_memsz < ph.p_filesz {
                return Err(ElfError::MemszLessThanFilesz {
                    index,
                    p_filesz: ph.p_filesz,
                    p_memsz: ph.p_memsz,
                });
            }
            if ph.p_filesz > 0 && ph.p_offset & PAGE_MASK != ph.p_vaddr & PAGE_MASK {
                return Err(ElfError::SegmentMisaligned {
                    index,
                    p_offset: ph.p_offset,
                    p_vaddr: ph.p_vaddr,
                });
            }
            let end = match ph.p_vaddr.checked_add(ph.p_memsz).and_then(page_up) {
                Some(end) if end <= USER_END => end,
                _ => {
                    return Err(ElfError::SegmentOutOfRange {
                        index,
                        p_vaddr: ph.p_vaddr,
                        p_memsz: ph.p_memsz,
                    });
                }
            };
            if ph.p_filesz > 0 && ph.p_offset.checked_add(ph.p_filesz).is_none_or(|e| e > file_len)
            {
                return Err(ElfError::SegmentOutsideFile {
                    index,
                    p_offset: ph.p_offset,
                    p_filesz: ph.p_filesz,
                    file_len,
                });
            }
            let start = page_down(ph.p_vaddr);
            let align =
                if ph.p_align.is_power_of_two() { ph.p_align.max(PAGE_SIZE) } else { PAGE_SIZE };
            span = Some(match span {
                None => Span { lo: start, hi: end, align },
                Some(s) => {
                    if ph.p_vaddr < prev_vaddr {
                        return Err(ElfError::SegmentsUnordered {
                            index,
                            prev_vaddr,
                            p_vaddr: ph.p_vaddr,
                        });
                    }
                    if start < s.hi {
                        return Err(ElfError::SegmentsOverlap {
                            index,
                            prev_end: s.hi,
                            p_vaddr: ph.p_vaddr,
                        });
                    }
                    Span { lo: s.lo, hi: end, align: s.align.max(align) }
                }
            });
            prev_vaddr = ph.p_vaddr;
        }
        span.ok_or(ElfError::NoLoadSegments)
    }

    /// The file type.
    pub fn kind(&self) -> ElfKind {
        self.kind
    }

    /// `e_entry`, unbiased.
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// The `PT_INTERP` path without its NUL (up to the first NUL, as Linux opens it), or
    /// `None` for a static program.
    pub fn interp(&self) -> Option<&'a [u8]> {
        self.interp
    }

    /// Unbiased page-aligned extent of all `PT_LOAD`s and the required bias alignment.
    pub fn span(&self) -> Span {
        self.span
    }

    /// `e_phoff`: file offset of the program-header table.
    pub fn phoff(&self) -> u64 {
        self.phoff
    }

    /// `e_phnum`: number of program headers (1..=73).
    pub fn phnum(&self) -> u16 {
        self.phnum
    }

    /// The whole file's bytes, as given to [`parse`](Self::parse).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Computes the load plan at `load_bias` (added to every `p_vaddr`).
    ///
    /// # Errors
    ///
    /// * [`ElfError::BadLoadBias`]: non-zero bias for `ET_EXEC`, or for `ET_DYN` a bias that
    ///   is not a multiple of [`Span::align`] (which is itself a multiple of [`PAGE_SIZE`]).
    /// * [`ElfError::BiasedOutOfRange`]: the biased span wraps or ends above [`USER_END`].
    /// * [`ElfError::BadEntry`]: `e_entry + load_bias` wraps or is not below [`USER_END`].
    /// * [`ElfError::PhdrNotMapped`]: no address for `AT_PHDR` (see [`LoadPlan::phdr`]).
    pub fn plan(&self, load_bias: u64) -> Result<LoadPlan, ElfError> {
        let span = self.span;
        let bias_ok = match self.kind {
            ElfKind::Exec => load_bias == 0,
            ElfKind::Dyn => load_bias & (span.align - 1) == 0, // align is a power of two
        };
        if !bias_ok {
            return Err(ElfError::BadLoadBias {
                load_bias,
                kind: self.kind,
                align: match self.kind {
                    ElfKind::Exec => 0,
                    ElfKind::Dyn => span.align,
                },
            });
        }
        match span.hi.checked_add(load_bias) {
            Some(hi) if hi <= USER_END => {}
            _ => {
                return Err(ElfError::BiasedOutOfRange { load_bias, span_hi: span.hi });
            }
        }
        // From here on every p_vaddr + p_memsz + bias of a PT_LOAD is <= USER_END.
        let entry = match self.entry.checked_add(load_bias) {
            Some(e) if e < USER_END => e,
            _ => {
                return Err(ElfError::BadEntry { e_entry: self.entry, load_bias });
            }
        };

        let mut segments = Vec::new();
        let mut linux_phdr = None;
        for ph in self.loads() {
            let vaddr = ph.p_vaddr + load_bias;
            let mem_end = vaddr + ph.p_memsz;
            let file_end = vaddr + ph.p_filesz;
            segments.push(Segment {
                start: page_down(vaddr),
                end: page_up(mem_end).unwrap_or(USER_END),
                file_offset: page_down(ph.p_offset),
                file_len: if ph.p_filesz == 0 { 0 } else { (ph.p_vaddr & PAGE_MASK) + ph.p_filesz },
                zero_from: file_end,
                has_zero_fill: ph.p_memsz > ph.p_filesz,
                prot: Prot::from_flags(ph.p_flags),
            });
            // fs/binfmt_elf.c (since 5.18): the PT_LOAD whose file range holds e_phoff.
            if ph.p_offset <= self.phoff && self.phoff - ph.p_offset < ph.p_filesz {
                linux_phdr = Some(self.phoff - ph.p_offset + vaddr);
            }
        }
        let pt_phdr = self
            .phdrs
            .iter()
            .find(|ph| ph.p_type == PT_PHDR)
            .and_then(|ph| ph.p_vaddr.checked_add(load_bias));
        let phdr = linux_phdr.or(pt_phdr).ok_or(ElfError::PhdrNotMapped { e_phoff: self.phoff })?;

        let tls = self.phdrs.iter().find(|ph| ph.p_type == PT_TLS).map(|ph| Tls {
            vaddr: ph.p_vaddr.wrapping_add(load_bias),
            filesz: ph.p_filesz,
            memsz: ph.p_memsz,
            align: ph.p_align,
        });

        let gnu_stack = self.phdrs.iter().rev().find(|ph| ph.p_type == PT_GNU_STACK);
        let relro = self.phdrs.iter().find(|ph| ph.p_type == PT_GNU_RELRO).and_then(|ph| {
            let start = ph.p_vaddr.checked_add(load_bias)?;
            let end = start.checked_add(ph.p_memsz)?;
            let (start, end) = (page_down(start), page_down(end));
            (end > start && end <= USER_END).then_some((start, end))
        });

        let lo = span.lo + load_bias;
        let hi = span.hi + load_bias;
        Ok(LoadPlan {
            load_bias,
            entry,
            segments,
            phdr,
            phent: u64::from(PHENTSIZE),
            phnum: u64::from(self.phnum),
            tls,
            stack_exec: gnu_stack.is_some_and(|ph| ph.p_flags & PF_X != 0),
            has_gnu_stack: gnu_stack.is_some(),
            relro,
            brk_start: hi,
            span: (lo, hi),
        })
    }

    fn loads(&self) -> impl Iterator<Item = &ProgramHeader> {
        self.phdrs.iter().filter(|ph| ph.p_type == PT_LOAD && ph.p_memsz != 0)
    }
}

fn scroll_le() -> goblin::container::Endian {
    goblin::container::Endian::Little
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_rounding_never_wraps() {
        assert_eq!(page_down(0x1fff), 0x1000);
        assert_eq!(page_up(0x1001), Some(0x2000));
        assert_eq!(page_up(0x2000), Some(0x2000));
        assert_eq!(page_up(u64::MAX - PAGE_SIZE + 1), Some(u64::MAX - PAGE_SIZE + 1));
        assert_eq!(page_up(u64::MAX - PAGE_SIZE + 2), None);
        assert_eq!(USER_END, 0x7fff_ffff_f000);
    }

    #[test]
    fn debug_does_not_dump_the_file() {
        let mut bytes = alloc::vec![0u8; 0x200];
        bytes[..4].copy_from_slice(ELFMAG);
        let text = alloc::format!("{:?}", ElfFile::parse(&bytes).unwrap_err());
        assert!(text.contains("BadClass"));
    }
}
