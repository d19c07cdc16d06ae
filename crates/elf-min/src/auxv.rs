//! Auxiliary-vector keys (`include/uapi/linux/auxvec.h`, `arch/x86/include/uapi/asm/auxvec.h`).
//!
//! [`build_initial_stack`](crate::build_initial_stack) emits, in this order (the order of
//! `ARCH_DLINFO` + `create_elf_tables` on x86-64): [`AT_SYSINFO_EHDR`] (only when a vDSO is
//! given), [`AT_MINSIGSTKSZ`], [`AT_HWCAP`], [`AT_PAGESZ`], [`AT_CLKTCK`], [`AT_PHDR`],
//! [`AT_PHENT`], [`AT_PHNUM`], [`AT_BASE`], [`AT_FLAGS`], [`AT_ENTRY`], [`AT_UID`],
//! [`AT_EUID`], [`AT_GID`], [`AT_EGID`], [`AT_SECURE`], [`AT_RANDOM`], [`AT_HWCAP2`],
//! [`AT_EXECFN`], [`AT_PLATFORM`], then [`AT_RSEQ_FEATURE_SIZE`] and [`AT_RSEQ_ALIGN`] (only
//! when given; Linux >= 6.3 with `CONFIG_RSEQ`), then [`AT_NULL`].

/// End of vector.
pub const AT_NULL: u64 = 0;
/// Entry should be ignored.
pub const AT_IGNORE: u64 = 1;
/// File descriptor of the program (binfmt_misc only; never emitted here).
pub const AT_EXECFD: u64 = 2;
/// Address of the program headers in memory.
pub const AT_PHDR: u64 = 3;
/// Size of one program header (56).
pub const AT_PHENT: u64 = 4;
/// Number of program headers.
pub const AT_PHNUM: u64 = 5;
/// System page size.
pub const AT_PAGESZ: u64 = 6;
/// Load address of the interpreter (0 when there is none).
pub const AT_BASE: u64 = 7;
/// Flags (`AT_FLAGS_PRESERVE_ARGV0`).
pub const AT_FLAGS: u64 = 8;
/// Entry point of the program (not the interpreter).
pub const AT_ENTRY: u64 = 9;
/// Program is not ELF.
pub const AT_NOTELF: u64 = 10;
/// Real uid.
pub const AT_UID: u64 = 11;
/// Effective uid.
pub const AT_EUID: u64 = 12;
/// Real gid.
pub const AT_GID: u64 = 13;
/// Effective gid.
pub const AT_EGID: u64 = 14;
/// Address of the platform string (`"x86_64"`).
pub const AT_PLATFORM: u64 = 15;
/// CPU capabilities (x86: CPUID.1:EDX).
pub const AT_HWCAP: u64 = 16;
/// Frequency of `times()` (100 on Linux).
pub const AT_CLKTCK: u64 = 17;
/// Secure mode (setuid-like exec).
pub const AT_SECURE: u64 = 23;
/// Address of the base platform string (not on x86).
pub const AT_BASE_PLATFORM: u64 = 24;
/// Address of 16 random bytes.
pub const AT_RANDOM: u64 = 25;
/// Extension of `AT_HWCAP` (x86: ring-3 MONITOR/MWAIT, FSGSBASE).
pub const AT_HWCAP2: u64 = 26;
/// rseq feature size.
pub const AT_RSEQ_FEATURE_SIZE: u64 = 27;
/// rseq allocation alignment.
pub const AT_RSEQ_ALIGN: u64 = 28;
/// Address of the file name passed to execve.
pub const AT_EXECFN: u64 = 31;
/// Address of the vDSO ELF header.
pub const AT_SYSINFO_EHDR: u64 = 33;
/// Minimal signal stack size the kernel's signal frames need.
pub const AT_MINSIGSTKSZ: u64 = 51;

/// `AT_FLAGS` bit: binfmt_misc preserved argv\[0\].
pub const AT_FLAGS_PRESERVE_ARGV0: u64 = 1;
