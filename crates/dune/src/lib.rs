//! Process-level virtualization over `/dev/kvm`, after Dune (Belay et al., OSDI '12).
//!
//! A [`Vm`] gives the calling process a KVM guest whose guest-virtual addresses equal the
//! process's own (GVA == HVA), and [`Vcpu`]s that run the process's own code in guest ring 3.
//! Every system call and fault of that code ends in one VM exit, which [`Vcpu::run`] returns
//! decoded as a [`Trap`]:
//!
//! 1. [`Vm::new`] opens `/dev/kvm`, builds the system area (IDT, trampolines, per-vCPU
//!    GDT/TSS/IST stack) below the guest-physical width, and runs a platform probe that picks
//!    the system-call trampoline and the TLB-flush method this host needs ([`Platform`]).
//! 2. [`Vm::add_memory`] makes host memory guest-physical memory (GPA == HVA below the width)
//!    and [`Vm::map`] maps it in the guest page tables with [`Perms`].
//! 3. [`Vm::create_vcpu`], [`Vcpu::enter_user`], then [`Vcpu::run`] in a loop: handle the
//!    [`Trap`], write results with [`Vcpu::set_syscall_result`], run again.
//! 4. Optionally, on hosts where a ring-3 `syscall` stays at CPL 3 (kvm_pvm), another thread
//!    serves system calls without exits through the vCPU's [`Mailbox`] ([`Vcpu::mailbox`],
//!    design in `trap::switchless`).
//!
//! ```no_run
//! use dune::{Perms, Trap, Vm, VmConfig};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let vm = Vm::new(VmConfig::default())?;
//! # let (code, stack, len) = (0x40_0000u64, 0x50_0000u64, 0x1000u64);
//! // `code`/`stack`: page-aligned host memory below the guest-physical width.
//! unsafe { vm.add_memory(code, len, false)? };
//! unsafe { vm.add_memory(stack, len, false)? };
//! vm.map(code, len, Perms::USER_RX)?;
//! vm.map(stack, len, Perms::USER_RW)?;
//! let mut vcpu = vm.create_vcpu()?;
//! vcpu.enter_user(code, stack + len)?;
//! loop {
//!     match vcpu.run()? {
//!         Trap::Syscall(sc) if sc.nr == 60 => break,
//!         Trap::Syscall(_) => vcpu.set_syscall_result(0)?,
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod error;
mod kvm;
pub mod paging;
mod probe;
#[allow(unsafe_code)]
mod switchless;
#[allow(unsafe_code)]
mod sys;
pub mod testing;
mod vcpu;
mod vm;

pub use error::{IoctlError, KvmError, MapError, VcpuError, VmError};
pub use kvm::{KvmHost, check_kvm};
/// The KVM structure definitions used in this crate's API (`kvm_sregs`, `kvm_fpu`, `kvm_xsave`).
pub use kvm_bindings;
pub use paging::{Perms, Translation, Walk};
pub use switchless::Mailbox;
pub use sys::{
    ForeignKickHook, allow_kick, note_host_signal, set_foreign_kick_hook, with_kick_unblocked,
};
pub use trap::{Exception, PageFault, PfError, RawExit, Regs, Syscall, Trap};
pub use vcpu::{IretFrame, Kicker, USER_RFLAGS, Vcpu};
pub use vm::{FdPlacer, Held, Platform, SyscallPath, SystemLayout, TlbFlush, Vm, VmConfig};
