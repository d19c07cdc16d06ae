//! The single error type and its Linux `errno` verdicts.

use alloc::boxed::Box;
use core::fmt;

use crate::elf::ElfKind;
use crate::errno::{
    E2BIG, EACCES, EINVAL, EIO, ELIBBAD, ENOENT, ENOEXEC, ENOMEM, name as errno_name,
};

/// The C library's message for the errnos reading a file can give (strerror(3) wording).
fn errno_message(errno: i32) -> &'static str {
    match errno {
        2 => "No such file or directory",
        13 => "Permission denied",
        20 => "Not a directory",
        21 => "Is a directory",
        40 => "Too many levels of symbolic links",
        36 => "File name too long",
        5 => "Input/output error",
        12 => "Cannot allocate memory",
        7 => "Argument list too long",
        8 => "Exec format error",
        26 => "Text file busy",
        _ => "error",
    }
}

/// Which step of `read_executable` (feature `std`) failed with an OS error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    /// `stat`/`fstat` of the path or the opened file.
    Stat,
    /// `open(O_RDONLY)`.
    Open,
    /// The `faccessat(X_OK, AT_EACCESS)` permission check.
    Access,
    /// Reading the file's contents.
    Read,
}

impl fmt::Display for IoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoOp::Stat => "stat",
            IoOp::Open => "open",
            IoOp::Access => "execute-permission check",
            IoOp::Read => "read",
        })
    }
}

/// Which string list of the initial stack an error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringKind {
    /// An `argv` entry.
    Argv,
    /// An `envp` entry.
    Envp,
    /// The exec file name (`AT_EXECFN`).
    Execfn,
}

impl fmt::Display for StringKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StringKind::Argv => "argv",
            StringKind::Envp => "envp",
            StringKind::Execfn => "execfn",
        })
    }
}

/// Everything that can make a program unloadable, with the field and value at fault.
///
/// [`errno`](Self::errno) gives the value Linux's `execve` returns for the same file
/// (references are to `fs/binfmt_elf.c` and `fs/exec.c`). Where Linux has no verdict
/// because it accepts the file and fails later (a segment past the end of the file faults
/// with `SIGBUS`; overlapping segments silently clobber each other), this crate rejects the
/// file up front with `ENOEXEC`; those variants say so.
///
/// An error found while validating the *interpreter* (the `PT_INTERP` target) must be wrapped
/// with [`as_interpreter_error`](Self::as_interpreter_error): Linux rates the same format
/// problems `ELIBBAD`/`EINVAL`/`EIO`/`ENOMEM` there instead of `ENOEXEC`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ElfError {
    /// The file is shorter than the 64-byte ELF64 header. `ENOEXEC` (Linux reads a
    /// zero-padded header and rejects it); `EIO` for an interpreter (short `elf_read`).
    #[error(
        "file is {len} bytes, shorter than the 64-byte ELF64 header: it is not an executable \
         (empty or truncated file?)"
    )]
    TooShort {
        /// File length in bytes.
        len: u64,
    },
    /// `e_ident[0..4]` is not `"\x7fELF"`. `ENOEXEC`.
    #[error(
        "not an ELF file (magic {magic:02x?}, expected [7f, 45, 4c, 46]): only x86-64 ELF \
         programs and scripts starting with a #! line can be run"
    )]
    BadMagic {
        /// The first four bytes of the file.
        magic: [u8; 4],
    },
    /// `e_ident[EI_CLASS]` is not `ELFCLASS64`. `ENOEXEC`.
    #[error("{}", class_message(*.ei_class))]
    BadClass {
        /// `e_ident[EI_CLASS]`.
        ei_class: u8,
    },
    /// `e_ident[EI_DATA]` is not `ELFDATA2LSB`. `ENOEXEC`.
    #[error(
        "ELF data encoding {ei_data} is not little-endian (ELFDATA2LSB = 1): x86-64 programs \
         are little-endian; this file is for another machine or corrupt"
    )]
    BadData {
        /// `e_ident[EI_DATA]`.
        ei_data: u8,
    },
    /// `e_ident[EI_VERSION]` or `e_version` is not `EV_CURRENT` (1). `ENOEXEC`.
    /// (Linux does not look at either; rejecting them is this crate's stricter rule.)
    #[error(
        "ELF version is not EV_CURRENT (e_ident[EI_VERSION] = {ei_version}, e_version = \
         {e_version}, both must be 1): the file is corrupt"
    )]
    BadVersion {
        /// `e_ident[EI_VERSION]`.
        ei_version: u8,
        /// `e_version`.
        e_version: u32,
    },
    /// `e_type` is neither `ET_EXEC` nor `ET_DYN`. `ENOEXEC`; `EINVAL` for an interpreter
    /// (`load_elf_interp`).
    #[error("{}", type_message(*.e_type))]
    BadType {
        /// `e_type`.
        e_type: u16,
    },
    /// `e_machine` is not `EM_X86_64` (`elf_check_arch`). `ENOEXEC`.
    #[error("{}", machine_message(*.e_machine))]
    BadMachine {
        /// `e_machine`.
        e_machine: u16,
    },
    /// `e_phentsize` is not 56 (`load_elf_phdrs`). `ENOEXEC`.
    #[error(
        "e_phentsize is {e_phentsize}, expected 56 (sizeof(Elf64_Phdr)): the header is corrupt"
    )]
    BadPhentsize {
        /// `e_phentsize`.
        e_phentsize: u16,
    },
    /// `e_phnum` is 0, or the table is larger than Linux's 4096-byte limit (73 entries;
    /// `load_elf_phdrs`: `size > ELF_MIN_ALIGN`). `ENOEXEC`.
    #[error(
        "e_phnum is {e_phnum}: Linux needs 1..=73 program headers (at most 4096 bytes of \
         table); a program without program headers cannot be loaded"
    )]
    BadPhnum {
        /// `e_phnum`.
        e_phnum: u16,
    },
    /// The program-header table `[e_phoff, e_phoff + e_phnum * 56)` is not inside the file.
    /// `ENOEXEC` (Linux's short `elf_read` in `load_elf_phdrs`).
    #[error(
        "program headers at e_phoff {e_phoff:#x} ({size} bytes) extend past the end of the \
         {file_len}-byte file: the file is truncated or corrupt"
    )]
    PhdrsOutsideFile {
        /// `e_phoff`.
        e_phoff: u64,
        /// `e_phnum * 56`.
        size: u64,
        /// File length in bytes.
        file_len: u64,
    },
    /// A second `PT_INTERP`. `ENOEXEC` (Linux silently uses the first; stricter here).
    #[error(
        "program headers {first} and {second} are both PT_INTERP: a program names at most one \
         interpreter"
    )]
    MultipleInterp {
        /// Index of the first `PT_INTERP`.
        first: usize,
        /// Index of the second one.
        second: usize,
    },
    /// `PT_INTERP` `p_filesz` is below 2 or above `PATH_MAX` (4096). `ENOEXEC`.
    #[error(
        "PT_INTERP (program header {index}) is {p_filesz} bytes: the interpreter path must be \
         2..=4096 bytes including its NUL"
    )]
    InterpBadSize {
        /// Program-header index.
        index: usize,
        /// `p_filesz`.
        p_filesz: u64,
    },
    /// The `PT_INTERP` bytes are not inside the file. `EIO` (Linux's short `elf_read`).
    #[error(
        "PT_INTERP (program header {index}) at offset {p_offset:#x}, {p_filesz} bytes, \
         extends past the end of the {file_len}-byte file: the file is truncated"
    )]
    InterpOutsideFile {
        /// Program-header index.
        index: usize,
        /// `p_offset`.
        p_offset: u64,
        /// `p_filesz`.
        p_filesz: u64,
        /// File length in bytes.
        file_len: u64,
    },
    /// The last byte of the `PT_INTERP` contents is not NUL. `ENOEXEC`.
    #[error("PT_INTERP path ({len} bytes) does not end in a NUL byte: the file is corrupt")]
    InterpNotTerminated {
        /// `p_filesz`.
        len: u64,
    },
    /// The interpreter path is empty (its first byte is NUL). `ENOENT` (Linux's
    /// `open_exec("")`).
    #[error("PT_INTERP names an empty interpreter path")]
    InterpEmpty,
    /// A `PT_LOAD` with file contents has `p_offset % 4096 != p_vaddr % 4096`, so it
    /// cannot be mapped. `EINVAL` (`vm_mmap` rejects the unaligned offset).
    #[error(
        "PT_LOAD {index}: p_offset {p_offset:#x} and p_vaddr {p_vaddr:#x} differ modulo the \
         4096-byte page size, so the segment cannot be mapped; relink with a page-aligned \
         layout (e.g. default `ld` settings)"
    )]
    SegmentMisaligned {
        /// Program-header index.
        index: usize,
        /// `p_offset`.
        p_offset: u64,
        /// `p_vaddr`.
        p_vaddr: u64,
    },
    /// A `PT_LOAD` has `p_memsz < p_filesz`. `EINVAL`; `ENOMEM` for an interpreter.
    #[error(
        "PT_LOAD {index}: p_memsz {p_memsz:#x} is smaller than p_filesz {p_filesz:#x}: the \
         file is corrupt"
    )]
    MemszLessThanFilesz {
        /// Program-header index.
        index: usize,
        /// `p_filesz`.
        p_filesz: u64,
        /// `p_memsz`.
        p_memsz: u64,
    },
    /// A `PT_LOAD`'s `[p_vaddr, p_vaddr + p_memsz)` wraps or ends above the 47-bit user
    /// address space ([`USER_END`](crate::USER_END)). `EINVAL` (`BAD_ADDR`/`TASK_SIZE`
    /// checks); `ENOMEM` for an interpreter.
    #[error(
        "PT_LOAD {index}: p_vaddr {p_vaddr:#x} + p_memsz {p_memsz:#x} wraps or ends above the \
         x86-64 user address space (0x7ffffffff000)"
    )]
    SegmentOutOfRange {
        /// Program-header index.
        index: usize,
        /// `p_vaddr`.
        p_vaddr: u64,
        /// `p_memsz`.
        p_memsz: u64,
    },
    /// A `PT_LOAD`'s file bytes `[p_offset, p_offset + p_filesz)` are not inside the file.
    /// `ENOEXEC` (Linux maps past EOF and the program dies with `SIGBUS`; rejected up front).
    #[error(
        "PT_LOAD {index}: file bytes at offset {p_offset:#x}, {p_filesz:#x} bytes, extend past \
         the end of the {file_len}-byte file: the file is truncated"
    )]
    SegmentOutsideFile {
        /// Program-header index.
        index: usize,
        /// `p_offset`.
        p_offset: u64,
        /// `p_filesz`.
        p_filesz: u64,
        /// File length in bytes.
        file_len: u64,
    },
    /// A `PT_LOAD` has a lower `p_vaddr` than the one before it. `ENOEXEC` (the ELF spec
    /// requires ascending order; Linux does not check).
    #[error(
        "PT_LOAD {index} at p_vaddr {p_vaddr:#x} comes after a PT_LOAD at {prev_vaddr:#x}: \
         loadable segments must be sorted by address"
    )]
    SegmentsUnordered {
        /// Program-header index of the offending `PT_LOAD`.
        index: usize,
        /// `p_vaddr` of the previous `PT_LOAD`.
        prev_vaddr: u64,
        /// `p_vaddr` of this one.
        p_vaddr: u64,
    },
    /// A `PT_LOAD` starts on a page the previous one already covers. `ENOEXEC` (Linux maps
    /// the later segment over the earlier one; rejected here so every page has one owner).
    #[error(
        "PT_LOAD {index} at p_vaddr {p_vaddr:#x} overlaps the page-rounded end {prev_end:#x} of \
         the previous PT_LOAD: segments must not share pages"
    )]
    SegmentsOverlap {
        /// Program-header index of the offending `PT_LOAD`.
        index: usize,
        /// Page-aligned end of the previous `PT_LOAD`.
        prev_end: u64,
        /// `p_vaddr` of this one.
        p_vaddr: u64,
    },
    /// No `PT_LOAD` with a non-zero `p_memsz`. `EINVAL` (Linux: `total_mapping_size() == 0`).
    #[error("the file has no loadable (PT_LOAD) segment: there is nothing to run")]
    NoLoadSegments,
    /// Neither a `PT_LOAD` covering `e_phoff` nor a `PT_PHDR` gives the program headers'
    /// address, so `AT_PHDR` cannot be computed. `ENOEXEC`.
    #[error(
        "the program headers (e_phoff {e_phoff:#x}) are not inside any PT_LOAD and there is no \
         PT_PHDR: the C runtime could not find them (AT_PHDR)"
    )]
    PhdrNotMapped {
        /// `e_phoff`.
        e_phoff: u64,
    },
    /// `e_entry + load_bias` wraps or is not a user address. `EINVAL` (`BAD_ADDR(elf_entry)`).
    #[error(
        "entry point e_entry {e_entry:#x} + load bias {load_bias:#x} is outside the user \
         address space"
    )]
    BadEntry {
        /// `e_entry` (unbiased).
        e_entry: u64,
        /// The load bias asked for.
        load_bias: u64,
    },
    /// The load bias is not acceptable for this file: non-zero for `ET_EXEC`, or not a
    /// multiple of the span alignment for `ET_DYN`. `EINVAL` (a caller error).
    #[error("{}", bias_message(*.load_bias, *.kind, *.align))]
    BadLoadBias {
        /// The load bias asked for.
        load_bias: u64,
        /// The file's type.
        kind: ElfKind,
        /// Required alignment (`Span::align`; 0 for `ET_EXEC`, which only accepts bias 0).
        align: u64,
    },
    /// The biased image `[lo, hi)` wraps or ends above [`USER_END`](crate::USER_END).
    /// `ENOMEM` (Linux's `mmap` has no room).
    #[error(
        "load bias {load_bias:#x} puts the image end ({span_hi:#x} unbiased) outside the user \
         address space; choose a lower bias"
    )]
    BiasedOutOfRange {
        /// The load bias asked for.
        load_bias: u64,
        /// Unbiased page-aligned end of the image.
        span_hi: u64,
    },
    /// The stack top passed to [`build_initial_stack`](crate::build_initial_stack) is not
    /// 16-byte aligned. `EINVAL` (a caller error).
    #[error("stack top {stack_top:#x} is not 16-byte aligned")]
    StackTopMisaligned {
        /// The stack top asked for.
        stack_top: u64,
    },
    /// An argv/envp/execfn string contains a NUL byte; C strings cannot. `EINVAL`.
    #[error("{kind}[{index}] contains a NUL byte; arguments are C strings")]
    StringHasNul {
        /// Which list.
        kind: StringKind,
        /// Index in that list (0 for execfn).
        index: usize,
    },
    /// One string is longer than `MAX_ARG_STRLEN` (131072 bytes with its NUL). `E2BIG`.
    #[error(
        "{kind}[{index}] is {len} bytes: Linux limits a single argument or environment string \
         to 131071 bytes"
    )]
    StringTooLong {
        /// Which list.
        kind: StringKind,
        /// Index in that list (0 for execfn).
        index: usize,
        /// String length without the NUL.
        len: u64,
    },
    /// Strings plus pointers exceed the argument budget (`bprm_stack_limits`). `E2BIG`.
    #[error(
        "argument list too long: arguments and environment need {needed} bytes, the limit is \
         {limit} (a quarter of the stack rlimit, at most 6 MiB); pass less, or raise the stack \
         limit"
    )]
    ArgsTooBig {
        /// Bytes needed: all strings with NULs plus `(max(argc, 1) + envc) * 8`.
        needed: u64,
        /// The limit that applied.
        limit: u64,
    },
    /// The stack image does not fit below `stack_top` (the address would wrap). `ENOMEM`.
    #[error("the initial stack ({size} bytes) does not fit below stack top {stack_top:#x}")]
    StackTooLow {
        /// The stack top asked for.
        stack_top: u64,
        /// Bytes the image needs (a lower bound when the computation itself overflowed).
        size: u64,
    },
    /// The path is not a regular file. `EACCES`, as execve answers (also for directories).
    #[error("{}", if *.is_dir {
        "is a directory: only regular files can be executed"
    } else {
        "not a regular file (device, FIFO or socket): only regular files can be executed"
    })]
    NotRegularFile {
        /// The path is a directory.
        is_dir: bool,
    },
    /// The caller may not execute the file (no matching execute bit, an ACL, or a `noexec`
    /// mount). `EACCES`.
    #[error(
        "permission denied: the file (mode {mode:#o}) is not executable by this user; \
         `chmod +x` it, or check for a noexec mount"
    )]
    NotExecutable {
        /// `st_mode & 0o7777`.
        mode: u32,
    },
    /// An OS error while reading the file; `errno` is returned as is.
    #[error("{op} failed: {} ({})", errno_message(*.errno), errno_name(*.errno).unwrap_or("unknown errno"))]
    Io {
        /// The failed step.
        op: IoOp,
        /// The OS `errno`.
        errno: i32,
    },
    /// An error in the program's interpreter (see
    /// [`as_interpreter_error`](Self::as_interpreter_error)).
    #[error("the program's interpreter (PT_INTERP) is unusable: {inner}")]
    Interpreter {
        /// The interpreter's own error.
        inner: Box<ElfError>,
    },
}

impl ElfError {
    /// The `errno` Linux's `execve` returns for this problem (see each variant).
    pub fn errno(&self) -> i32 {
        self.errno_in(false)
    }

    /// Marks this error as found in the interpreter named by `PT_INTERP`, so that
    /// [`errno`](Self::errno) gives the interpreter verdicts of `load_elf_binary` /
    /// `load_elf_interp`: format problems become `ELIBBAD`, a bad `e_type` `EINVAL`, a file
    /// shorter than its header `EIO`, an impossible segment size `ENOMEM`; OS errors
    /// (`ENOENT`, `EACCES`, ...) are unchanged. Idempotent.
    pub fn as_interpreter_error(self) -> ElfError {
        match self {
            ElfError::Interpreter { .. } => self,
            other => ElfError::Interpreter { inner: Box::new(other) },
        }
    }

    /// Whether this error came from the interpreter (see
    /// [`as_interpreter_error`](Self::as_interpreter_error)).
    pub fn is_interpreter_error(&self) -> bool {
        matches!(self, ElfError::Interpreter { .. })
    }

    fn errno_in(&self, interp: bool) -> i32 {
        use ElfError::*;
        match self {
            TooShort { .. } => {
                if interp {
                    EIO
                } else {
                    ENOEXEC
                }
            }
            BadType { .. } => {
                if interp {
                    EINVAL
                } else {
                    ENOEXEC
                }
            }
            BadMagic { .. }
            | BadClass { .. }
            | BadData { .. }
            | BadVersion { .. }
            | BadMachine { .. }
            | BadPhentsize { .. }
            | BadPhnum { .. }
            | PhdrsOutsideFile { .. }
            | MultipleInterp { .. }
            | InterpBadSize { .. }
            | InterpNotTerminated { .. }
            | SegmentOutsideFile { .. }
            | SegmentsUnordered { .. }
            | SegmentsOverlap { .. }
            | PhdrNotMapped { .. } => {
                if interp {
                    ELIBBAD
                } else {
                    ENOEXEC
                }
            }
            InterpOutsideFile { .. } => {
                if interp {
                    ELIBBAD
                } else {
                    EIO
                }
            }
            InterpEmpty => {
                if interp {
                    ELIBBAD
                } else {
                    ENOENT
                }
            }
            MemszLessThanFilesz { .. } | SegmentOutOfRange { .. } => {
                if interp {
                    ENOMEM
                } else {
                    EINVAL
                }
            }
            SegmentMisaligned { .. }
            | NoLoadSegments
            | BadEntry { .. }
            | BadLoadBias { .. }
            | StackTopMisaligned { .. }
            | StringHasNul { .. } => EINVAL,
            BiasedOutOfRange { .. } | StackTooLow { .. } => ENOMEM,
            StringTooLong { .. } | ArgsTooBig { .. } => E2BIG,
            NotRegularFile { .. } | NotExecutable { .. } => EACCES,
            Io { errno, .. } => *errno,
            Interpreter { inner } => inner.errno_in(true),
        }
    }
}

fn class_message(ei_class: u8) -> alloc::string::String {
    match ei_class {
        1 => "32-bit ELF (ELFCLASS32): only x86-64 ELF64 programs are supported; rebuild it for \
              x86-64"
            .into(),
        _ => alloc::format!(
            "invalid ELF class {ei_class} (ELFCLASS64 = 2 expected): the header is corrupt; only \
             x86-64 ELF64 programs are supported"
        ),
    }
}

fn type_message(e_type: u16) -> alloc::string::String {
    match e_type {
        1 => "relocatable object file (ET_REL): link it into an executable first".into(),
        4 => "core dump (ET_CORE): core files cannot be executed".into(),
        _ => alloc::format!(
            "ELF type {e_type} is not ET_EXEC (2) or ET_DYN (3): the file is not an executable \
             program"
        ),
    }
}

fn machine_message(e_machine: u16) -> alloc::string::String {
    let what = match e_machine {
        3 => "i386 (EM_386)",
        40 => "32-bit ARM (EM_ARM)",
        183 => "AArch64 (EM_AARCH64)",
        243 => "RISC-V (EM_RISCV)",
        _ => "another machine",
    };
    alloc::format!(
        "ELF for {what}, e_machine {e_machine}: only x86-64 (EM_X86_64 = 62) programs are \
         supported; rebuild it for x86-64"
    )
}

fn bias_message(load_bias: u64, kind: ElfKind, align: u64) -> alloc::string::String {
    match kind {
        ElfKind::Exec => alloc::format!(
            "load bias {load_bias:#x} for an ET_EXEC program: fixed-address executables load at \
             bias 0 only"
        ),
        ElfKind::Dyn => alloc::format!(
            "load bias {load_bias:#x} is not a multiple of the segment alignment {align:#x}: \
             round it to a multiple of Span::align"
        ),
    }
}
