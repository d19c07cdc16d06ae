//! Minimal ELF64 x86-64 load **planner** and initial-stack builder.
//!
//! This crate decides *what* a Linux `execve` of an ELF program would put in
//! memory; it never maps anything itself. The supervisor executes the plan:
//! it maps each [`Segment`] at guest-virtual == host-virtual addresses inside
//! the program's reserved range and copies the [`InitialStack`] image below
//! the chosen stack top.
//!
//! * [`ElfFile::parse`] lets goblin decode the ELF header and program headers,
//!   then validates them with the verdicts Linux gives in
//!   `fs/binfmt_elf.c` (`load_elf_binary`, `load_elf_phdrs`, `elf_load`,
//!   `load_elf_interp`) plus a few stricter rules documented on
//!   [`ElfError`].
//! * [`ElfFile::plan`] turns the validated headers into a page-granular
//!   [`LoadPlan`] at a caller-chosen load bias (AT_PHDR, TLS, RELRO, stack
//!   executability, initial brk).
//! * [`build_initial_stack`] lays out `argc`/`argv`/`envp`/auxv and the
//!   string area byte-for-byte like `fs/exec.c` (`do_execveat_common`,
//!   `bprm_stack_limits`, `copy_strings`) and `create_elf_tables` in
//!   `fs/binfmt_elf.c`; the random `arch_align_stack` offset is a parameter.
//! * Every error carries the Linux `errno` execve would return
//!   ([`ElfError::errno`]); an interpreter's errors are re-rated with
//!   [`ElfError::as_interpreter_error`] (Linux answers `ELIBBAD` there).
//!
//! The planner is pure and `no_std` (it needs `alloc`). The default-on `std`
//! feature adds only `read_executable` / `open_executable`, the file-reading edge
//! (existence, regular file, execute permission, whole-file read).
//!
//! ```
//! # fn main() -> Result<(), elf_min::ElfError> {
//! # let bytes = std::fs::read("/bin/ls").unwrap();
//! use elf_min::{ElfFile, ElfKind};
//! let elf = ElfFile::parse(&bytes)?;
//! let bias = match elf.kind() {
//!     ElfKind::Exec => 0,
//!     // Any address aligned to the span's alignment works for ET_DYN.
//!     ElfKind::Dyn => 0x5555_5555_4000_u64.next_multiple_of(elf.span().align),
//! };
//! let plan = elf.plan(bias)?;
//! assert!(plan.segments.iter().all(|s| s.start % elf_min::PAGE_SIZE == 0));
//! # Ok(())
//! # }
//! ```
#![no_std]
#![cfg_attr(not(feature = "std"), forbid(unsafe_code))]
#![cfg_attr(feature = "std", deny(unsafe_code))]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod auxv;
mod elf;
pub mod errno;
mod error;
#[cfg(feature = "std")]
mod file;
mod stack;

pub use elf::{
    ElfFile, ElfKind, LoadPlan, MAX_PHDR_TABLE_BYTES, PAGE_SIZE, PATH_MAX, PHENTSIZE, Prot,
    Segment, Span, Tls, USER_END,
};
pub use error::{ElfError, IoOp, StringKind};
#[cfg(feature = "std")]
pub use file::{open_executable, open_executable_placed, read_executable};
pub use stack::{
    ARG_MAX, AuxvParams, DEFAULT_ARG_LIMIT, InitialStack, MAX_ARG_STRLEN, PLATFORM, ParsedStack,
    StackParams, arg_limit_for_stack_rlimit, build_initial_stack, parse_auxv, parse_initial_stack,
    read_cstr,
};
