//! One error enum per subsystem, each variant with structured payloads and a message that names
//! the cause and, where there is one, the fix.

use std::fmt;

/// A failed KVM ioctl: which one, and the errno the kernel returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoctlError {
    /// The ioctl's name as in include/uapi/linux/kvm.h, e.g. `"KVM_SET_USER_MEMORY_REGION"`.
    pub ioctl: &'static str,
    /// The errno value.
    pub errno: i32,
}

impl fmt::Display for IoctlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.ioctl, std::io::Error::from_raw_os_error(self.errno))
    }
}

impl std::error::Error for IoctlError {}

impl IoctlError {
    pub(crate) fn new(ioctl: &'static str, e: kvm_ioctls::Error) -> Self {
        IoctlError { ioctl, errno: e.errno() }
    }

    pub(crate) fn from_io(ioctl: &'static str, e: &std::io::Error) -> Self {
        IoctlError { ioctl, errno: e.raw_os_error().unwrap_or(libc::EIO) }
    }
}

/// Opening `/dev/kvm` and checking what it offers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvmError {
    /// `/dev/kvm` does not exist.
    #[error(
        "/dev/kvm does not exist: load the KVM module (`modprobe kvm_intel` or `modprobe kvm_amd`) \
         and enable virtualization (VT-x/AMD-V) in the firmware, or run on a host that offers nested KVM"
    )]
    Missing,
    /// The KVM device exists but this user may not open it read-write.
    #[error("permission denied opening {path}: {fix}")]
    NotPermitted {
        /// The device path, normally `/dev/kvm`.
        path: String,
        /// What to do, from the device's owner group and mode: join the group that may open
        /// it, or have an administrator give it one (Debian's udev rule makes it `root:kvm
        /// 0660`), or run as root.
        fix: String,
    },
    /// Opening `/dev/kvm` failed for another reason.
    #[error("cannot open /dev/kvm: {0}")]
    Open(std::io::Error),
    /// The file opened as `/dev/kvm` is not a KVM device (`KVM_GET_API_VERSION` fails).
    #[error(
        "{path} is not a KVM device (it answers no KVM ioctl): check that the kvm module is \
         loaded (`lsmod | grep kvm`) and that {path} is the character device 10:232 it creates"
    )]
    NotKvm {
        /// The path opened.
        path: String,
    },
    /// The KVM API version is not 12 (the only stable version, Documentation/virt/kvm/api.rst).
    #[error("/dev/kvm reports API version {0}, expected 12: this kernel's KVM is not supported")]
    ApiVersion(i32),
    /// A capability the runtime cannot work without is missing.
    #[error("/dev/kvm lacks {name} ({why}); a newer host kernel is needed")]
    MissingCapability {
        /// Capability name, e.g. `"KVM_CAP_IMMEDIATE_EXIT"`.
        name: &'static str,
        /// What the runtime needs it for.
        why: &'static str,
    },
    /// An ioctl on the system fd failed.
    #[error(transparent)]
    Ioctl(#[from] IoctlError),
}

/// Creating or changing a VM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VmError {
    /// Opening or probing `/dev/kvm` failed.
    #[error(transparent)]
    Kvm(#[from] KvmError),
    /// An ioctl on the VM fd failed.
    #[error(transparent)]
    Ioctl(#[from] IoctlError),
    /// Planning guest-physical memory failed.
    #[error(transparent)]
    Memory(#[from] ept::EptError),
    /// Changing the guest page tables failed.
    #[error(transparent)]
    Map(#[from] MapError),
    /// A host `mmap` for the runtime's own guest structures failed.
    #[error(
        "cannot reserve {len:#x} bytes of host memory for {what} below the guest-physical width: {source}"
    )]
    HostMemory {
        /// What the memory was for.
        what: &'static str,
        /// Bytes requested.
        len: u64,
        /// The mmap error.
        source: std::io::Error,
    },
    /// The start-up probe saw behaviour it cannot classify.
    #[error(
        "platform probe: {step} gave an unexpected result ({seen}); this host's KVM is not supported"
    )]
    Probe {
        /// Which probe step.
        step: &'static str,
        /// What was observed.
        seen: String,
    },
    /// A vCPU operation failed during set-up or the probe.
    #[error(transparent)]
    Vcpu(#[from] Box<VcpuError>),
    /// All vCPU slots of the system area are in use.
    #[error("too many vCPUs: this VM was created for at most {max}; raise VmConfig::max_vcpus")]
    TooManyVcpus {
        /// The configured maximum.
        max: u32,
    },
}

impl From<VcpuError> for VmError {
    fn from(e: VcpuError) -> Self {
        VmError::Vcpu(Box::new(e))
    }
}

/// Running or inspecting a vCPU.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VcpuError {
    /// An ioctl on the vCPU fd failed.
    #[error(transparent)]
    Ioctl(#[from] IoctlError),
    /// The watchdog fired: one `KVM_RUN` lasted longer than the configured limit.
    #[error("vCPU watchdog: the guest ran for {0:?} without an exit")]
    Watchdog(std::time::Duration),
    /// A guest address the host had to read or write is not backed by host memory.
    #[error("guest address {0:#x} is not backed by guest memory")]
    NotBacked(u64),
}

/// Changing the guest page tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// An address or length is not 4 KiB aligned, or the range is empty.
    #[error("range {gva:#x}+{len:#x} is not page aligned or is empty")]
    Unaligned {
        /// Start GVA.
        gva: u64,
        /// Length in bytes.
        len: u64,
    },
    /// The range is not canonical or wraps.
    #[error("range {gva:#x}+{len:#x} is not a canonical lower-half range")]
    NonCanonical {
        /// Start GVA.
        gva: u64,
        /// Length in bytes.
        len: u64,
    },
    /// The range is not backed by guest-physical memory (register it first).
    #[error("GVA {gva:#x} is not backed by any memory slot; add the host memory to the VM first")]
    NotBacked {
        /// First GVA without backing.
        gva: u64,
    },
    /// The range overlaps the runtime's system area (GDT/IDT/TSS, trampolines, exception
    /// stacks) or its page-table arena, which guest mappings may never cover, remove or
    /// re-protect.
    #[error(
        "range {gva:#x}+{len:#x} overlaps the runtime's system area or page-table arena; \
         choose guest addresses outside them (see Vm::layout)"
    )]
    Reserved {
        /// Start GVA.
        gva: u64,
        /// Length in bytes.
        len: u64,
    },
    /// The page-table arena is full.
    #[error("out of page-table memory ({pages} pages in use); raise VmConfig::page_table_bytes")]
    OutOfPageTables {
        /// Pages in use.
        pages: u64,
    },
}
