//! The system handle: opening `/dev/kvm` with errors a user can act on, and what it offers.

use kvm_bindings::{CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Cap, Kvm};
use std::os::fd::{AsRawFd, RawFd};

use crate::error::{IoctlError, KvmError};

/// An open `/dev/kvm` and the facts the runtime needs from it.
#[derive(Debug)]
pub struct KvmHost {
    pub(crate) kvm: Kvm,
    pub(crate) supported_cpuid: CpuId,
    pub(crate) phys_bits: u8,
    pub(crate) nr_memslots: u32,
    pub(crate) sync_regs: bool,
    pub(crate) disable_quirks2: u64,
}

/// Checks that `/dev/kvm` can be opened and used, without creating a VM. Returns the error a user
/// would get from [`crate::Vm::new`].
pub fn check_kvm() -> Result<(), KvmError> {
    KvmHost::open().map(|_| ())
}

impl KvmHost {
    /// Opens `/dev/kvm` and checks the API version and required capabilities.
    ///
    /// Errors: [`KvmError::Missing`], [`KvmError::NotPermitted`], [`KvmError::Open`],
    /// [`KvmError::ApiVersion`], [`KvmError::MissingCapability`], or a failed
    /// `KVM_GET_SUPPORTED_CPUID`.
    pub fn open() -> Result<Self, KvmError> {
        Self::open_path("/dev/kvm")
    }

    /// Like [`KvmHost::open`] for a KVM device at another path (tests, containers).
    pub fn open_path(path: &str) -> Result<Self, KvmError> {
        Self::open_at(path, None)
    }

    /// Opens `path` with the descriptor where `placer` puts it (see
    /// [`crate::VmConfig::fd_placer`]).
    pub(crate) fn open_at(
        path: &str,
        placer: Option<&dyn crate::FdPlacer>,
    ) -> Result<Self, KvmError> {
        let c = std::ffi::CString::new(path).map_err(|_| KvmError::Missing)?;
        let kvm = crate::sys::open_kvm(&c, placer).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => KvmError::Missing,
            Some(libc::EACCES | libc::EPERM) => {
                KvmError::NotPermitted { path: path.to_owned(), fix: permission_fix(path) }
            }
            _ => KvmError::Open(e),
        })?;
        Self::checked(kvm, path)
    }

    /// A duplicate of the open KVM device descriptor `fd`, placed by `placer`, checked as
    /// [`KvmHost::open`] checks a device it opens. Errors: [`KvmError::Open`] (`EBADF`,
    /// `EMFILE`), then as [`KvmHost::open`].
    pub(crate) fn duplicate(
        fd: RawFd,
        placer: Option<&dyn crate::FdPlacer>,
    ) -> Result<Self, KvmError> {
        let kvm = crate::sys::dup_kvm(fd, placer).map_err(KvmError::Open)?;
        Self::checked(kvm, &format!("/proc/self/fd/{fd}"))
    }

    fn checked(kvm: Kvm, path: &str) -> Result<Self, KvmError> {
        let version = kvm.get_api_version();
        if version < 0 {
            // KVM_GET_API_VERSION failed: the file answers no KVM ioctl (a bind-mounted
            // /dev/null, a device node of another driver, a sandbox without KVM).
            return Err(KvmError::NotKvm { path: path.to_owned() });
        }
        if version != 12 {
            return Err(KvmError::ApiVersion(version));
        }
        for (cap, name, why) in [
            (Cap::UserMemory, "KVM_CAP_USER_MEMORY", "guest memory is the process's own"),
            (Cap::SyncMmu, "KVM_CAP_SYNC_MMU", "host mmap/munmap must reach the guest"),
            (Cap::ImmediateExit, "KVM_CAP_IMMEDIATE_EXIT", "a vCPU kick must never be lost"),
            (Cap::ExtCpuid, "KVM_CAP_EXT_CPUID", "the guest gets the host's CPUID"),
        ] {
            if !kvm.check_extension(cap) {
                return Err(KvmError::MissingCapability { name, why });
            }
        }
        let supported_cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| IoctlError::new("KVM_GET_SUPPORTED_CPUID", e))?;
        let phys_bits = supported_cpuid
            .as_slice()
            .iter()
            .find(|e| e.function == 0x8000_0008)
            .map(|e| (e.eax & 0xff) as u8)
            .filter(|b| (32..=52).contains(b))
            .unwrap_or(36);
        let nr_memslots = kvm.get_nr_memslots().clamp(1, u32::MAX as usize) as u32;
        let sync_regs =
            kvm.check_extension_int(Cap::SyncRegs) as u32 & kvm_bindings::KVM_SYNC_X86_REGS != 0;
        let disable_quirks2 =
            kvm.check_extension_raw(u64::from(kvm_bindings::KVM_CAP_DISABLE_QUIRKS2)).max(0) as u64;
        Ok(KvmHost { kvm, supported_cpuid, phys_bits, nr_memslots, sync_regs, disable_quirks2 })
    }

    /// Guest-physical address width in bits (CPUID 0x80000008 EAX bits 7:0 from
    /// `KVM_GET_SUPPORTED_CPUID`; 36 if the leaf is absent, as the SDM specifies).
    pub fn phys_bits(&self) -> u8 {
        self.phys_bits
    }

    /// The `/dev/kvm` descriptor.
    pub fn raw_fd(&self) -> RawFd {
        self.kvm.as_raw_fd()
    }

    /// `KVM_CAP_NR_MEMSLOTS`.
    pub fn nr_memslots(&self) -> u32 {
        self.nr_memslots
    }

    /// The CPUID entry for `function`/`index`, if KVM supports the leaf.
    pub fn cpuid(&self, function: u32, index: u32) -> Option<kvm_bindings::kvm_cpuid_entry2> {
        self.supported_cpuid
            .as_slice()
            .iter()
            .find(|e| e.function == function && e.index == index)
            .copied()
    }
}

/// The advice for a KVM device this user may not open, from its owner group and mode
/// (stat(2)) and the group's name (/etc/group, group(5)).
fn permission_fix(path: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    const AS_ROOT: &str = "or run as root";
    let Ok(meta) = std::fs::metadata(path) else {
        return format!(
            "add your user to group kvm (`sudo usermod -aG kvm $USER`, then log in again) {AS_ROOT}"
        );
    };
    let group = std::fs::read_to_string("/etc/group").ok().and_then(|groups| {
        groups.lines().find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let gid: u32 = fields.nth(1)?.parse().ok()?;
            (gid == meta.gid()).then(|| name.to_owned())
        })
    });
    let group_rw = meta.mode() & 0o060 == 0o060;
    match group {
        Some(g) if group_rw && meta.gid() != 0 => format!(
            "add your user to group {g} (`sudo usermod -aG {g} $USER`, then log in again) {AS_ROOT}"
        ),
        _ => format!(
            "{path} is mode {:04o} and only root may open it; have an administrator run \
             `sudo chgrp kvm {path} && sudo chmod 0660 {path}` (Debian's udev rule does this when \
             the kvm group exists), then join group kvm (`sudo usermod -aG kvm $USER`), {AS_ROOT}",
            meta.mode() & 0o7777
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn permission_advice_follows_the_device_mode() {
        let dir = std::env::temp_dir().join(format!("dune-kvm-perm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dev = dir.join("kvm");
        std::fs::write(&dev, b"").unwrap();
        let path = dev.to_str().unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dev, std::fs::Permissions::from_mode(0o600)).unwrap();
        let root_only = super::permission_fix(path);
        assert!(root_only.contains("mode 0600") && root_only.contains("chmod 0660"), "{root_only}");
        let missing = super::permission_fix("/nonexistent/kvm");
        assert!(missing.contains("group kvm") && missing.contains("usermod"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
