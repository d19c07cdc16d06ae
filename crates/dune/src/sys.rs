//! Every `unsafe` operation of the crate: host mappings, raw access to guest-visible memory,
//! memory-slot registration, and the signal plumbing of the vCPU kick.

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::Once;
use std::sync::atomic::AtomicU64;

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;

/// An anonymous host mapping owned by the runtime; unmapped on drop.
#[derive(Debug)]
pub(crate) struct HostMapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; all accesses go through raw pointers
// with their own synchronisation (atomics for page-table entries), so moving or sharing the
// handle between threads is sound.
unsafe impl Send for HostMapping {}
// SAFETY: through `&HostMapping` the bytes are written non-atomically only by `write`,
// `write_u64` and `zero`, and the runtime never lets two threads do that to the same bytes:
// the system area is written while the `Vm` is built (before it is shared) and per vCPU in that
// vCPU's own area (its GDT/TSS and IST stack, by the thread that owns the `Vcpu`); page-table
// pages are zeroed under `&mut PageTables` and otherwise accessed only through `atomic_u64`.
unsafe impl Sync for HostMapping {}

impl HostMapping {
    /// Maps `len` bytes (page multiple) of private anonymous read-write memory exactly at `addr`
    /// (`MAP_FIXED_NOREPLACE`), committed lazily (`MAP_NORESERVE`). Fails with `EEXIST` if any
    /// page there is already mapped.
    pub(crate) fn anon_at(addr: u64, len: u64) -> io::Result<Self> {
        Self::map(addr, len, libc::PROT_READ | libc::PROT_WRITE)
    }

    fn map(addr: u64, len: u64, prot: i32) -> io::Result<Self> {
        let flags = libc::MAP_PRIVATE
            | libc::MAP_ANONYMOUS
            | libc::MAP_NORESERVE
            | libc::MAP_FIXED_NOREPLACE;
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping, so no memory the
        // process uses can be affected; the result is checked below.
        let p = unsafe { libc::mmap(addr as *mut _, len as usize, prot, flags, -1, 0) };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        if p as u64 != addr {
            // Kernels before 4.17 ignore MAP_FIXED_NOREPLACE and treat `addr` as a hint.
            // SAFETY: `p` is the mapping just created, `len` its length.
            unsafe { libc::munmap(p, len as usize) };
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        Ok(HostMapping {
            ptr: NonNull::new(p.cast()).expect("mmap returned NULL"),
            len: len as usize,
        })
    }

    pub(crate) fn addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    pub(crate) fn len(&self) -> u64 {
        self.len as u64
    }

    fn check(&self, offset: u64, len: usize) {
        assert!(
            offset.checked_add(len as u64).is_some_and(|end| end <= self.len as u64),
            "access {offset:#x}+{len:#x} outside a {:#x}-byte host mapping",
            self.len
        );
    }

    /// Copies `bytes` into the mapping at `offset`. Panics if out of bounds (a runtime bug).
    pub(crate) fn write(&self, offset: u64, bytes: &[u8]) {
        self.check(offset, bytes.len());
        // SAFETY: bounds checked above; the destination is writable memory of this mapping that
        // no Rust reference aliases (only raw-pointer and atomic access is ever used).
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(offset as usize),
                bytes.len(),
            )
        };
    }

    /// Reads `N` quadwords at `offset` (8-aligned) with volatile loads, since the guest may
    /// have written them.
    pub(crate) fn read_u64s<const N: usize>(&self, offset: u64) -> [u64; N] {
        self.check(offset, N * 8);
        assert!(offset.is_multiple_of(8));
        let mut out = [0u64; N];
        for (i, v) in out.iter_mut().enumerate() {
            // SAFETY: in bounds and 8-aligned (checked above); plain memory of this mapping.
            *v = unsafe {
                std::ptr::read_volatile(
                    self.ptr.as_ptr().add(offset as usize + i * 8).cast::<u64>(),
                )
            };
        }
        out
    }

    /// Writes one quadword at `offset` (8-aligned) with a volatile store.
    pub(crate) fn write_u64(&self, offset: u64, value: u64) {
        self.check(offset, 8);
        assert!(offset.is_multiple_of(8));
        // SAFETY: in bounds and aligned (checked above).
        unsafe {
            std::ptr::write_volatile(self.ptr.as_ptr().add(offset as usize).cast::<u64>(), value)
        };
    }

    /// The quadword at `offset` (8-aligned) as an atomic: page-table entries are read and
    /// written concurrently by the guest's page walker (accessed/dirty bits).
    pub(crate) fn atomic_u64(&self, offset: u64) -> &AtomicU64 {
        self.check(offset, 8);
        assert!(offset.is_multiple_of(8));
        // SAFETY: in bounds and 8-aligned; the memory lives as long as `self`, and every access
        // to it from the host is atomic, so a shared `&AtomicU64` is sound.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(offset as usize).cast()) }
    }

    /// Zeroes `len` bytes at `offset`.
    pub(crate) fn zero(&self, offset: u64, len: u64) {
        self.check(offset, len as usize);
        // SAFETY: bounds checked; raw write to memory of this mapping.
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(offset as usize), 0, len as usize) };
    }
}

impl Drop for HostMapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping this value created and still owns.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Registers (or, with `len == 0`, deletes) memory slot `slot` with KVM.
///
/// # Safety
/// `[hva, hva + len)` must stay a valid range of this process's address space for as long as the
/// slot exists, and the caller accepts that the guest may read and write it at any time: no Rust
/// reference may assume its contents are unchanged. Slots must not overlap in GPA.
pub(crate) unsafe fn set_slot(
    vm: &VmFd,
    slot: u32,
    gpa: u64,
    hva: u64,
    len: u64,
    readonly: bool,
) -> Result<(), kvm_ioctls::Error> {
    let region = kvm_userspace_memory_region {
        slot,
        flags: if readonly { kvm_bindings::KVM_MEM_READONLY } else { 0 },
        guest_phys_addr: gpa,
        memory_size: len,
        userspace_addr: hva,
    };
    loop {
        // SAFETY: forwarded from the caller's contract.
        match unsafe { vm.set_user_memory_region(region) } {
            // Interrupted by a signal before the slot changed: try again.
            Err(e) if e.errno() == libc::EINTR => continue,
            r => return r,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Kicking a vCPU out of KVM_RUN.
//
// The kick signal is blocked in every thread that runs a vCPU, and unblocked only *inside*
// KVM_RUN through KVM_SET_SIGNAL_MASK (Documentation/virt/kvm/api.rst). A kick sent while the
// thread is outside the guest therefore stays pending, and the next KVM_RUN returns EINTR at once:
// no kick is ever lost, and no signal handler has to touch vCPU state. After an EINTR the pending
// kicks are consumed with sigtimedwait, as QEMU does (`kvm_eat_signals`).

thread_local! {
    static KICK_BLOCKED: Cell<bool> = const { Cell::new(false) };
}

/// The signal used to kick vCPU threads: `SIGRTMAX - 1` (glibc reserves the lowest RT signals).
pub(crate) fn kick_signal() -> i32 {
    libc::SIGRTMAX() - 1
}

extern "C" fn on_kick(_sig: i32) {}

/// Installs a no-op handler for the kick signal once per process, so that a stray kick delivered
/// to a thread that does not block it does not terminate the process (the default action).
pub(crate) fn install_kick_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid starting value; the handler does nothing.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_kick as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            let rc = libc::sigaction(kick_signal(), &sa, std::ptr::null_mut());
            assert_eq!(rc, 0, "sigaction for the vCPU kick signal failed");
        }
    });
}

fn kick_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise the set fully.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, kick_signal());
        set
    }
}

/// Blocks the kick signal in the calling thread (once) and returns the thread's signal mask
/// *without* the kick signal: the mask to use while the thread is inside KVM_RUN.
pub(crate) fn block_kick_in_this_thread() -> libc::sigset_t {
    let kick = kick_set();
    // SAFETY: valid sigset pointers; pthread_sigmask only changes this thread's mask.
    unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        if !KICK_BLOCKED.with(Cell::get) {
            libc::pthread_sigmask(libc::SIG_BLOCK, &kick, &mut old);
            KICK_BLOCKED.with(|b| b.set(true));
        }
        let mut cur: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur);
        libc::sigdelset(&mut cur, kick_signal());
        cur
    }
}

/// `KVM_SET_SIGNAL_MASK`: `_IOW(KVMIO, 0x8b, struct kvm_signal_mask)`.
const KVM_SET_SIGNAL_MASK: libc::c_ulong = 0x4004_ae8b;

/// Sets the signal mask KVM installs for the duration of KVM_RUN on `vcpu`.
pub(crate) fn set_vcpu_signal_mask(
    vcpu: &kvm_ioctls::VcpuFd,
    mask: &libc::sigset_t,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // The kernel's sigset_t is 8 bytes on x86-64 (the first 8 bytes of glibc's 128-byte set).
    #[repr(C)]
    struct SignalMask {
        len: u32,
        sigset: [u8; 8],
    }
    let mut m = SignalMask { len: 8, sigset: [0; 8] };
    // SAFETY: `mask` is a valid sigset_t of at least 8 bytes.
    let bytes =
        unsafe { std::slice::from_raw_parts((mask as *const libc::sigset_t).cast::<u8>(), 8) };
    m.sigset.copy_from_slice(bytes);
    // SAFETY: KVM_SET_SIGNAL_MASK reads a kvm_signal_mask of `len` bytes of set from the pointer.
    let rc = unsafe { libc::ioctl(vcpu.as_raw_fd(), KVM_SET_SIGNAL_MASK, &m) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Pending kick signals of the calling thread, consumed by [`consume_kicks`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Kicks {
    /// At least one kick signal was pending.
    pub(crate) any: bool,
    /// One of them came from a watchdog timer (`si_code == SI_TIMER`).
    pub(crate) timer: bool,
}

/// Consumes the calling thread's pending kick signals.
pub(crate) fn consume_kicks() -> Kicks {
    let set = kick_set();
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    let mut k = Kicks::default();
    loop {
        // SAFETY: siginfo_t is plain data for which all-zero bytes are a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers; sigtimedwait with a zero timeout never blocks.
        let r = unsafe { libc::sigtimedwait(&set, &mut info, &zero) };
        if r < 0 {
            return k;
        }
        k.any = true;
        k.timer |= info.si_code == libc::SI_TIMER;
    }
}

/// The kernel thread id of the calling thread.
pub(crate) fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Sends the kick signal to thread `tid` of this process. ESRCH (thread gone) is ignored.
pub(crate) fn send_kick(tid: i32) {
    // SAFETY: tgkill with our own pid only signals a thread of this process; the handler is
    // installed before any vCPU runs.
    unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, kick_signal()) };
}

/// `kvm_run.internal.suberror` of a `KVM_EXIT_INTERNAL_ERROR` exit.
pub(crate) fn internal_suberror(run: &kvm_bindings::kvm_run) -> u32 {
    // SAFETY: only called when exit_reason is KVM_EXIT_INTERNAL_ERROR, for which the kernel
    // fills the `internal` member of the union; every bit pattern is a valid u32.
    unsafe { run.__bindgen_anon_1.internal.suberror }
}

/// `KVM_SET_XSAVE` with the 4 KiB legacy structure.
pub(crate) fn set_xsave(
    vcpu: &kvm_ioctls::VcpuFd,
    x: &kvm_bindings::kvm_xsave,
) -> Result<(), kvm_ioctls::Error> {
    // SAFETY: `x` is a full 4 KiB kvm_xsave. KVM copies `guest_fpu.uabi_size` bytes from it
    // (arch/x86/kvm/x86.c, kvm_vcpu_ioctl_x86_set_xsave), which exceeds 4 KiB only when this
    // process was granted dynamic guest features (AMX, ARCH_REQ_XCOMP_GUEST_PERM); the runtime
    // never requests them, so 4 KiB is the whole size KVM reads.
    unsafe { vcpu.set_xsave(x) }
}

/// A per-thread POSIX timer that delivers the kick signal to one thread (the watchdog).
#[derive(Debug)]
pub(crate) struct ThreadTimer {
    id: libc::timer_t,
    tid: i32,
}

// SAFETY: a timer id is a plain handle; timer_settime/timer_delete may be called from any thread.
unsafe impl Send for ThreadTimer {}

impl ThreadTimer {
    /// Creates a CLOCK_MONOTONIC timer that signals the calling thread.
    pub(crate) fn for_current_thread() -> io::Result<Self> {
        let tid = gettid();
        // SAFETY: zeroed sigevent is valid; fields set below follow timer_create(2) for
        // SIGEV_THREAD_ID.
        let mut ev: libc::sigevent = unsafe { std::mem::zeroed() };
        ev.sigev_notify = libc::SIGEV_THREAD_ID;
        ev.sigev_signo = kick_signal();
        ev.sigev_notify_thread_id = tid;
        let mut id: libc::timer_t = std::ptr::null_mut();
        // SAFETY: valid pointers to initialised values.
        let rc = unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut ev, &mut id) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ThreadTimer { id, tid })
    }

    pub(crate) fn tid(&self) -> i32 {
        self.tid
    }

    /// Arms the timer to fire once after `d` (zero disarms).
    pub(crate) fn arm(&self, d: std::time::Duration) {
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec {
                tv_sec: d.as_secs() as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `id` is a live timer created by this value.
        unsafe { libc::timer_settime(self.id, 0, &spec, std::ptr::null_mut()) };
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        // SAFETY: `id` is a live timer created by this value.
        unsafe { libc::timer_delete(self.id) };
    }
}

// ---------------------------------------------------------------------------------------------
// KVM file descriptors where the embedder wants them (VmConfig::fd_placer), so that a program
// run in the guest gets the same fd numbers from its own open() calls as it would natively.

/// Hands the new descriptor `fd` to `placer`, if any.
fn place(fd: RawFd, placer: Option<&dyn crate::FdPlacer>) -> io::Result<RawFd> {
    match placer {
        Some(p) => p.place(fd),
        None => Ok(fd),
    }
}

/// Runs `create` (which makes a descriptor or fails with an `io::Error`) again after `EMFILE`
/// when `placer` could make room.
fn with_room(
    placer: Option<&dyn crate::FdPlacer>,
    mut create: impl FnMut() -> io::Result<RawFd>,
) -> io::Result<RawFd> {
    let mut r = create();
    for _ in 0..3 {
        match (&r, placer) {
            (Err(e), Some(p)) if e.raw_os_error() == Some(libc::EMFILE) && p.make_room() => {
                r = create();
            }
            _ => break,
        }
    }
    r
}

/// Opens `path` (a KVM device) with its descriptor where `placer` puts it.
pub(crate) fn open_kvm(
    path: &std::ffi::CStr,
    placer: Option<&dyn crate::FdPlacer>,
) -> io::Result<kvm_ioctls::Kvm> {
    use std::os::fd::FromRawFd;
    let fd = with_room(placer, || {
        // SAFETY: plain open of a NUL-terminated path; the result is checked.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 { Err(io::Error::last_os_error()) } else { Ok(fd) }
    })?;
    let fd = place(fd, placer)?;
    // SAFETY: `fd` is a freshly opened descriptor owned by nobody else.
    Ok(unsafe { kvm_ioctls::Kvm::from_raw_fd(fd) })
}

/// `KVM_CREATE_VM` (`_IO(KVMIO, 0x01)`) and `KVM_CREATE_VCPU` (`_IO(KVMIO, 0x41)`).
const KVM_CREATE_VM: libc::c_ulong = 0xae01;
const KVM_CREATE_VCPU: libc::c_ulong = 0xae41;

fn ioctl_new_fd(fd: RawFd, req: libc::c_ulong, arg: libc::c_ulong) -> io::Result<RawFd> {
    loop {
        // SAFETY: both requests take an integer argument and return a new descriptor or -1.
        let r = unsafe { libc::ioctl(fd, req, arg) };
        if r >= 0 {
            return Ok(r);
        }
        // KVM_CREATE_VM registers an MMU notifier, which gives up with EINTR when a signal is
        // pending (mm_take_all_locks); nothing was created then, so try again.
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Creates a VM whose descriptor sits where `placer` puts it.
pub(crate) fn create_vm(
    kvm: &kvm_ioctls::Kvm,
    placer: Option<&dyn crate::FdPlacer>,
) -> io::Result<VmFd> {
    use std::os::fd::AsRawFd;
    let fd = with_room(placer, || ioctl_new_fd(kvm.as_raw_fd(), KVM_CREATE_VM, 0))?;
    let fd = place(fd, placer)?;
    // SAFETY: `fd` is a fresh VM descriptor owned by nobody else.
    unsafe { kvm.create_vmfd_from_rawfd(fd) }.map_err(|e| io::Error::from_raw_os_error(e.errno()))
}

/// Creates vCPU `id` whose descriptor sits where `placer` puts it.
pub(crate) fn create_vcpu(
    vm: &VmFd,
    id: u64,
    placer: Option<&dyn crate::FdPlacer>,
) -> io::Result<kvm_ioctls::VcpuFd> {
    use std::os::fd::AsRawFd;
    let fd =
        with_room(placer, || ioctl_new_fd(vm.as_raw_fd(), KVM_CREATE_VCPU, id as libc::c_ulong))?;
    let fd = place(fd, placer)?;
    // SAFETY: `fd` is a fresh vCPU descriptor of `vm` owned by nobody else.
    unsafe { vm.create_vcpu_from_rawfd(fd) }.map_err(|e| io::Error::from_raw_os_error(e.errno()))
}
