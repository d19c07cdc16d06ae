//! The program's vDSO: the host kernel's own, so `clock_gettime`, `gettimeofday`, `time` and
//! `getcpu` run in guest ring 3 without an exit, and give exactly the host's answers.
//!
//! The kernel maps its vDSO once per process (arch/x86/entry/vdso/vma.c, `map_vdso`): the code
//! (`[vdso]`, found by `AT_SYSINFO_EHDR`) right after its data pages (`[vvar]`: the time data
//! `vdso_time_data`, the `getrandom` state, then `[vvar_vclock]`: the paravirtual clock pages;
//! lib/vdso/datastore.c), which the code reads at fixed RIP-relative offsets and the kernel
//! updates at every tick. For the program the supervisor
//!
//! * copies the code into a private anonymous mapping of the program range ([`Kind::Vdso`]:
//!   it is position-independent and reads nothing else), and
//! * maps the supervisor's own data pages in the guest right below it, read-only
//!   ([`Kind::Vvar`]: a guest alias onto a read-only memory slot; the host pages cannot be
//!   mapped twice).
//!
//! The code computes the time from `rdtsc` and those pages, so the guest's TSC must be the
//! host's: the start-up probe checks it (`dune::Platform::host_tsc`), and without it the
//! program gets no vDSO (no `AT_SYSINFO_EHDR`; libc then makes the system calls, as under
//! `sandbox run --no-vdso`). A clock the host's vDSO does not serve (no TSC clocksource) makes the
//! code fall back to the `syscall` instruction itself, which the sandbox serves as usual.
//! `getcpu` reads the CPU number with `rdpid` or `lsl` of the per-CPU GDT entry as the host
//! patched it; in the guest that is the vCPU's `TSC_AUX` (kvm_pvm: the host's) or an entry the
//! guest GDT lacks, so `getcpu` through the vDSO may report CPU 0 on VT-x/AMD-V.

use std::os::unix::fs::FileExt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::errno::Errno;
use crate::mm::{Kind, Mm, PAGE};
use crate::sys;

/// The supervisor's vDSO, as the kernel mapped it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostVdso {
    /// First byte of the data pages (`[vvar]`).
    pub data_start: u64,
    /// Bytes of data pages (`[vvar]` and `[vvar_vclock]`), up to the code.
    pub data_len: u64,
    /// Bytes of them that are `[vvar]` (the rest, if any, is `[vvar_vclock]`): two mappings
    /// for Linux, each unsplittable.
    pub vvar_len: u64,
    /// The code (`[vdso]`), a whole number of pages, which starts at `data_start + data_len`.
    pub text: Vec<u8>,
}

static HOST: OnceLock<Option<HostVdso>> = OnceLock::new();

/// `--no-vdso`: set once at start-up, before the first program is loaded; kept by the
/// sandbox's forked processes and across `execve` (one supervisor process each).
static DISABLED: AtomicBool = AtomicBool::new(false);

/// Gives programs loaded from now on no vDSO (`--no-vdso`).
pub fn disable() {
    DISABLED.store(true, Ordering::Relaxed);
}

/// The supervisor's vDSO, read once (fork keeps it where it was), or `None` when the kernel
/// gave none or laid it out otherwise than described above.
pub fn host() -> Option<&'static HostVdso> {
    HOST.get_or_init(|| {
        let found = find();
        if found.is_none() {
            tracing::debug!("no usable host vDSO: the program makes its clock calls");
        }
        found
    })
    .as_ref()
}

fn find() -> Option<HostVdso> {
    let ehdr = sys::getauxval(libc::AT_SYSINFO_EHDR);
    if ehdr == 0 {
        return None;
    }
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let range = |name: &str| {
        maps.lines().find(|l| l.split_whitespace().nth(5) == Some(name)).and_then(|l| {
            let (a, b) = l.split_whitespace().next()?.split_once('-')?;
            Some((u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(b, 16).ok()?))
        })
    };
    let (text_start, text_end) = range("[vdso]")?;
    let (data_start, mut data_end) = range("[vvar]")?;
    let vvar_len = data_end - data_start;
    if let Some((s, e)) = range("[vvar_vclock]")
        && s == data_end
    {
        data_end = e;
    }
    if text_start != ehdr || data_end != text_start || text_end <= text_start {
        return None;
    }
    let mut text = vec![0u8; (text_end - text_start) as usize];
    let mem = std::fs::File::open("/proc/self/mem").ok()?;
    mem.read_exact_at(&mut text, text_start).ok()?;
    if !text.starts_with(b"\x7fELF") {
        return None;
    }
    Some(HostVdso { data_start, data_len: data_end - data_start, vvar_len, text })
}

/// Maps the vDSO (data pages, then code) in the program's mmap area below `mm.mmap_top`, as
/// Linux places it, and returns the code's address for `AT_SYSINFO_EHDR`. `None` (the program
/// gets no vDSO) where the host has none, the guest's TSC is not the host's, or the area has
/// no room, or after [`disable`].
pub fn install(mm: &mut Mm) -> Option<u64> {
    if DISABLED.load(Ordering::Relaxed) || !mm.vm().platform().host_tsc {
        return None;
    }
    let h = host()?;
    let text_len = h.text.len() as u64;
    let base = mm.find_free(h.data_len + text_len, PAGE, mm.mmap_top)?;
    match map_at(mm, h, base) {
        Ok(text) => Some(text),
        Err(e) => {
            tracing::warn!(%e, base, "mapping the vDSO failed; the program makes its clock calls");
            let _ = mm.unmap(base, h.data_len + text_len);
            None
        }
    }
}

fn map_at(mm: &mut Mm, h: &HostVdso, base: u64) -> Result<u64, Errno> {
    let text = base + h.data_len;
    let len = h.text.len() as u64;
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    mm.map_fixed(text, len, rw, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, Kind::Vdso)?;
    sys::write_program(text, &h.text)?;
    mm.protect(text, len, libc::PROT_READ | libc::PROT_EXEC)?;
    mm.map_vvar(base, h.vvar_len, h.data_start)?;
    if h.data_len > h.vvar_len {
        mm.map_vvar(base + h.vvar_len, h.data_len - h.vvar_len, h.data_start + h.vvar_len)?;
    }
    Ok(text)
}

/// The name `/proc/self/maps` gives the data pages at supervisor address `hva`.
pub fn data_name(hva: u64) -> &'static [u8] {
    match host() {
        Some(h) if hva >= h.data_start + h.vvar_len => b"[vvar_vclock]",
        _ => b"[vvar]",
    }
}

/// Whether a restored program's vDSO code `text` can run with this host's data pages: it must
/// be this host's code, byte for byte (the layout of the data it reads is the kernel's).
pub fn matches_host(text: &[u8]) -> bool {
    host().is_some_and(|h| h.text == text)
}
