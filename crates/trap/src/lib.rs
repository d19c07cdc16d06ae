//! Trap plumbing for a process-level KVM VM (Dune-style): everything between "the program
//! executed `syscall` or faulted" and "the host holds a typed [`Trap`]".
//!
//! * [`layout`]: selectors, exit ports and the system area's layout.
//! * [`desc`]: GDT, TSS and IDT images.
//! * [`tramp`]: the guest trampolines (ring-0 exception stubs, both LSTAR variants).
//! * [`switchless`]: the per-vCPU ring-3 LSTAR stub that posts system calls to a polling host
//!   thread instead of exiting (kvm_pvm), and how to normalize a vCPU stopped inside it.
//! * [`decode`](mod@decode): pure decoding of a raw exit into [`Trap`].
//!
//! The crate performs no ioctls and needs no `/dev/kvm`; `dune` drives the vCPU and feeds exits
//! in. The only `unsafe` is in [`tramp`] and [`switchless`], reading the assembled stub bytes.
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod decode;
pub mod desc;
pub mod layout;
#[allow(unsafe_code)]
pub mod switchless;
#[allow(unsafe_code)]
pub mod tramp;

pub use decode::{
    Exception, ExitContext, PageFault, PfError, RawExit, Regs, Syscall, Trap, decode,
};
