//! Decoding of every VM exit into one [`Trap`].
//!
//! The vCPU layer turns `struct kvm_run` (or the errno of `KVM_RUN`) into a [`RawExit`] and hands
//! it here with the registers and the top of the vCPU's IST stack. Decoding is pure: no ioctls,
//! no allocation, so it can be tested and benchmarked with synthetic exits. The only value that
//! may need an ioctl, CR2, is asked for through a closure and only for page faults.

use crate::layout::{EXC_PORT_BASE, PROBE_PORT, SPURIOUS_PORT, SYSCALL_PORT};
use crate::tramp::has_error_code;

/// General-purpose registers, in the order of `struct kvm_regs` (linux/arch/x86/include/uapi/asm/kvm.h).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
#[allow(missing_docs)]
pub struct Regs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
}

/// The exit as the vCPU layer saw it, before interpretation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawExit {
    /// `KVM_EXIT_IO`, direction out, from `port`.
    IoOut {
        /// I/O port number.
        port: u16,
    },
    /// `KVM_EXIT_IO`, direction in, from `port`.
    IoIn {
        /// I/O port number.
        port: u16,
    },
    /// `KVM_EXIT_MMIO`: an access to a guest-physical address with no memory slot.
    Mmio {
        /// Guest-physical address of the access.
        gpa: u64,
        /// Access size in bytes (1..=8).
        len: u32,
        /// True for a store.
        write: bool,
    },
    /// `KVM_EXIT_HLT`.
    Hlt,
    /// `KVM_EXIT_SHUTDOWN` (triple fault).
    Shutdown,
    /// `KVM_EXIT_INTERNAL_ERROR` (e.g. `KVM_INTERNAL_ERROR_EMULATION` = 1).
    InternalError {
        /// `kvm_run.internal.suberror`.
        suberror: u32,
    },
    /// `KVM_EXIT_FAIL_ENTRY`.
    FailEntry {
        /// `hardware_entry_failure_reason` (VMX exit reason with bit 31 set, or SVM code).
        reason: u64,
    },
    /// `KVM_RUN` returned `EINTR` (a host signal) or `KVM_EXIT_INTR`.
    Interrupted,
    /// `KVM_RUN` returned `EFAULT`: KVM could not access the host memory behind a slot (a
    /// read-only or unmapped host page).
    HostFault {
        /// The faulting GPA when KVM reported one (`KVM_EXIT_MEMORY_FAULT`).
        gpa: Option<u64>,
    },
    /// Any other exit reason, raw.
    Other {
        /// `kvm_run.exit_reason`.
        reason: u32,
    },
}

/// What the runtime knows at the exit besides the exit itself.
#[derive(Clone, Copy, Debug)]
pub struct ExitContext<'a> {
    /// The vCPU's registers at the exit.
    pub regs: &'a Regs,
    /// The six quadwords just below the vCPU's IST top, lowest address first:
    /// `[error code, rip, cs, rflags, rsp, ss]`. The CPU writes the frame there when it takes an
    /// exception (the error-code slot is stale for vectors that push none).
    pub ist: &'a [u64; 6],
    /// Guest-physical address of the doorbell page (4 KiB).
    pub doorbell_gpa: u64,
}

/// The six arguments of a Linux x86-64 system call and its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syscall {
    /// RAX at the `syscall` instruction.
    pub nr: u64,
    /// RDI, RSI, RDX, R10, R8, R9.
    pub args: [u64; 6],
    /// Where the program continues: RCX, which `syscall` loaded with the next RIP.
    pub return_rip: u64,
}

/// Page-fault error code (Intel SDM Vol. 3A, 4.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PfError(pub u64);

impl PfError {
    /// P: the fault was a protection violation (set) or a not-present page (clear).
    pub fn present(self) -> bool {
        self.0 & 1 != 0
    }
    /// W/R: the access was a write.
    pub fn write(self) -> bool {
        self.0 & 2 != 0
    }
    /// U/S: the access was made in user mode (CPL 3).
    pub fn user(self) -> bool {
        self.0 & 4 != 0
    }
    /// RSVD: a reserved bit was set in a paging-structure entry.
    pub fn reserved(self) -> bool {
        self.0 & 8 != 0
    }
    /// I/D: the access was an instruction fetch.
    pub fn fetch(self) -> bool {
        self.0 & 16 != 0
    }
}

/// A page fault (#PF, vector 14).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFault {
    /// The faulting linear address (CR2).
    pub addr: u64,
    /// The error code.
    pub error: PfError,
    /// RIP of the faulting instruction.
    pub rip: u64,
    /// True when the fault was taken in ring 3.
    pub user: bool,
}

/// An exception other than #PF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception {
    /// Vector 0..=31 (e.g. 0 #DE, 6 #UD, 13 #GP).
    pub vector: u8,
    /// The error code, for vectors that push one.
    pub error_code: Option<u64>,
    /// RIP of the faulting instruction (or the next one, for traps such as #BP).
    pub rip: u64,
    /// True when the exception was taken in ring 3.
    pub user: bool,
}

/// One decoded VM exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// The program executed `syscall`.
    Syscall(Syscall),
    /// A page fault.
    PageFault(PageFault),
    /// Any other exception.
    Exception(Exception),
    /// A host signal interrupted `KVM_RUN`; the vCPU can simply be resumed.
    Interrupted,
    /// KVM could not access the host memory behind a slot (`KVM_RUN` returned `EFAULT`), e.g. a
    /// guest write to a page the host mapped read-only.
    HostFault {
        /// The guest-physical address, when KVM reported it.
        gpa: Option<u64>,
    },
    /// An access to guest-physical memory outside every memory slot (other than a doorbell
    /// store). The access has not completed; see the vCPU layer before resuming.
    PhysFault {
        /// Guest-physical address.
        gpa: u64,
        /// Access size in bytes.
        len: u32,
        /// True for a store.
        write: bool,
    },
    /// The start-up probe's code ran in ring 0 (see `dune`'s platform probe).
    ProbeRing0,
    /// An interrupt vector 32..=255 was delivered; the runtime never injects one.
    SpuriousInterrupt,
    /// The guest shut down (triple fault).
    Shutdown,
    /// `KVM_EXIT_INTERNAL_ERROR`, e.g. an instruction the host's emulator cannot execute.
    InternalError {
        /// `kvm_run.internal.suberror`.
        suberror: u32,
    },
    /// `KVM_EXIT_FAIL_ENTRY`: the CPU refused the guest state.
    FailEntry {
        /// Hardware entry-failure reason.
        reason: u64,
    },
    /// An exit the runtime does not expect.
    Unknown {
        /// `kvm_run.exit_reason`.
        reason: u32,
        /// The port (I/O exits) or 0.
        detail: u64,
    },
}

impl Trap {
    /// Whether the vCPU can be resumed as it stands after the host has handled this trap.
    ///
    /// The match is exhaustive on purpose: a new variant does not compile until someone decides.
    pub fn resumable(&self) -> bool {
        match self {
            Trap::Syscall(_)
            | Trap::PageFault(_)
            | Trap::Exception(_)
            | Trap::Interrupted
            | Trap::ProbeRing0
            | Trap::SpuriousInterrupt => true,
            // The access is pending inside KVM: the host must complete or abandon it first.
            Trap::PhysFault { .. } => false,
            Trap::HostFault { .. }
            | Trap::Shutdown
            | Trap::InternalError { .. }
            | Trap::FailEntry { .. }
            | Trap::Unknown { .. } => false,
        }
    }
}

/// `KVM_EXIT_IO` and `KVM_EXIT_HLT` (include/uapi/linux/kvm.h), reported in [`Trap::Unknown`].
const KVM_EXIT_IO: u32 = 2;
const KVM_EXIT_HLT: u32 = 5;

/// Decodes one exit. `cr2` is called only for a page fault.
#[inline]
pub fn decode(raw: RawExit, cx: &ExitContext<'_>, cr2: impl FnOnce() -> u64) -> Trap {
    match raw {
        RawExit::IoOut { port } => decode_port(port, cx, cr2),
        RawExit::Mmio { gpa, len, write } => {
            if write && gpa & !0xfff == cx.doorbell_gpa {
                syscall(cx.regs)
            } else {
                Trap::PhysFault { gpa, len, write }
            }
        }
        RawExit::Interrupted => Trap::Interrupted,
        RawExit::HostFault { gpa } => Trap::HostFault { gpa },
        RawExit::Shutdown => Trap::Shutdown,
        RawExit::InternalError { suberror } => Trap::InternalError { suberror },
        RawExit::FailEntry { reason } => Trap::FailEntry { reason },
        RawExit::IoIn { port } => Trap::Unknown { reason: KVM_EXIT_IO, detail: u64::from(port) },
        RawExit::Hlt => Trap::Unknown { reason: KVM_EXIT_HLT, detail: 0 },
        RawExit::Other { reason } => Trap::Unknown { reason, detail: 0 },
    }
}

#[inline]
fn syscall(r: &Regs) -> Trap {
    Trap::Syscall(Syscall {
        nr: r.rax,
        args: [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9],
        return_rip: r.rcx,
    })
}

#[inline]
fn decode_port(port: u16, cx: &ExitContext<'_>, cr2: impl FnOnce() -> u64) -> Trap {
    if port == SYSCALL_PORT {
        return syscall(cx.regs);
    }
    if (EXC_PORT_BASE..EXC_PORT_BASE + 32).contains(&port) {
        let vector = (port - EXC_PORT_BASE) as u8;
        let [err, rip, cs, ..] = *cx.ist;
        let user = cs & 3 == 3;
        if vector == 14 {
            return Trap::PageFault(PageFault { addr: cr2(), error: PfError(err), rip, user });
        }
        let error_code = has_error_code(vector).then_some(err);
        return Trap::Exception(Exception { vector, error_code, rip, user });
    }
    match port {
        PROBE_PORT => Trap::ProbeRing0,
        SPURIOUS_PORT => Trap::SpuriousInterrupt,
        _ => Trap::Unknown { reason: KVM_EXIT_IO, detail: u64::from(port) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx<'a>(regs: &'a Regs, ist: &'a [u64; 6]) -> ExitContext<'a> {
        ExitContext { regs, ist, doorbell_gpa: 0x2000_0000_3000 }
    }

    #[test]
    fn syscall_from_both_paths() {
        let regs = Regs {
            rax: 39,
            rdi: 1,
            rsi: 2,
            rdx: 3,
            r10: 4,
            r8: 5,
            r9: 6,
            rcx: 0x401000,
            ..Regs::default()
        };
        let ist = [0; 6];
        let want =
            Trap::Syscall(Syscall { nr: 39, args: [1, 2, 3, 4, 5, 6], return_rip: 0x401000 });
        let c = cx(&regs, &ist);
        assert_eq!(decode(RawExit::IoOut { port: SYSCALL_PORT }, &c, || unreachable!()), want);
        let mmio = RawExit::Mmio { gpa: 0x2000_0000_3000, len: 4, write: true };
        assert_eq!(decode(mmio, &c, || unreachable!()), want);
        // A read of the doorbell is not a system call.
        let read = RawExit::Mmio { gpa: 0x2000_0000_3000, len: 4, write: false };
        assert!(matches!(decode(read, &c, || 0), Trap::PhysFault { write: false, .. }));
    }

    #[test]
    fn page_fault_reads_cr2_and_frame() {
        let regs = Regs::default();
        let ist = [0x6, 0x40_1234, 0x33, 0x202, 0x7fff_0000, 0x2b];
        let t = decode(RawExit::IoOut { port: EXC_PORT_BASE + 14 }, &cx(&regs, &ist), || 0xdead);
        let Trap::PageFault(pf) = t else { panic!("{t:?}") };
        assert_eq!(pf.addr, 0xdead);
        assert_eq!(pf.rip, 0x40_1234);
        assert!(pf.user && pf.error.write() && pf.error.user() && !pf.error.present());
    }

    #[test]
    fn exceptions_with_and_without_error_code() {
        let regs = Regs::default();
        let ist = [0x18, 0x1000, 0x10, 0x2, 0x5000, 0x18];
        let c = cx(&regs, &ist);
        let gp = decode(RawExit::IoOut { port: EXC_PORT_BASE + 13 }, &c, || unreachable!());
        assert_eq!(
            gp,
            Trap::Exception(Exception {
                vector: 13,
                error_code: Some(0x18),
                rip: 0x1000,
                user: false
            })
        );
        let ud = decode(RawExit::IoOut { port: EXC_PORT_BASE + 6 }, &c, || unreachable!());
        assert_eq!(
            ud,
            Trap::Exception(Exception { vector: 6, error_code: None, rip: 0x1000, user: false })
        );
    }

    #[test]
    fn everything_else() {
        let regs = Regs::default();
        let ist = [0; 6];
        let c = cx(&regs, &ist);
        let d = |r| decode(r, &c, || 0);
        assert_eq!(d(RawExit::Interrupted), Trap::Interrupted);
        assert_eq!(d(RawExit::Shutdown), Trap::Shutdown);
        assert_eq!(d(RawExit::HostFault { gpa: None }), Trap::HostFault { gpa: None });
        assert_eq!(d(RawExit::IoOut { port: PROBE_PORT }), Trap::ProbeRing0);
        assert_eq!(d(RawExit::IoOut { port: SPURIOUS_PORT }), Trap::SpuriousInterrupt);
        assert_eq!(d(RawExit::IoOut { port: 0x3f8 }), Trap::Unknown { reason: 2, detail: 0x3f8 });
        assert_eq!(d(RawExit::IoIn { port: 0x60 }), Trap::Unknown { reason: 2, detail: 0x60 });
        assert_eq!(d(RawExit::Other { reason: 99 }), Trap::Unknown { reason: 99, detail: 0 });
        assert_eq!(
            d(RawExit::Mmio { gpa: 0x1000, len: 8, write: true }),
            Trap::PhysFault { gpa: 0x1000, len: 8, write: true }
        );
        assert!(!d(RawExit::Shutdown).resumable());
        assert!(d(RawExit::Interrupted).resumable());
    }
}
