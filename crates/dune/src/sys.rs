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
    /// Host signals other than kicks taken by this thread (see [`note_host_signal`]).
    static HOST_SIGNALS: Cell<u64> = const { Cell::new(0) };
}

/// The signal used to kick vCPU threads: `SIGRTMAX - 1` (glibc reserves the lowest RT signals).
pub(crate) fn kick_signal() -> i32 {
    libc::SIGRTMAX() - 1
}

/// Tells `dune` that the calling thread took a host signal that is not a kick (the embedder's
/// signal handlers call this): a `KVM_RUN` that such a signal interrupted is reported as
/// [`crate::Trap::Interrupted`] even when a TLB-shootdown kick arrived with it, so no program
/// signal waits for the guest's next exit. Async-signal-safe.
pub fn note_host_signal() {
    HOST_SIGNALS.with(|c| c.set(c.get().wrapping_add(1)));
}

/// How many non-kick host signals the calling thread took so far ([`note_host_signal`]).
pub(crate) fn host_signals() -> u64 {
    HOST_SIGNALS.with(Cell::get)
}

/// Receives instances of the kick signal that the runtime did not send (the runtime sends its
/// kicks with `tgkill` from its own process or from its own timers):
/// another process's `kill`, `sigqueue`, `tgkill`, `pidfd_send_signal`, or an `F_SETOWN`
/// file's `SIGIO` with that number. Called with the 128-byte `siginfo_t` and, from a signal
/// handler, its `ucontext_t` (null when called from the vCPU thread after a run); it must be
/// async-signal-safe.
pub type ForeignKickHook = fn(&[u8; 128], *mut libc::c_void);

static FOREIGN_KICK_HOOK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Registers the receiver of kick signals the runtime did not send; without one they are
/// dropped, as a no-op signal would be.
pub fn set_foreign_kick_hook(hook: ForeignKickHook) {
    FOREIGN_KICK_HOOK.store(hook as usize, std::sync::atomic::Ordering::SeqCst);
}

/// Hands a foreign kick to the registered hook.
fn foreign_kick(info: &[u8; 128], ctx: *mut libc::c_void) {
    let h = FOREIGN_KICK_HOOK.load(std::sync::atomic::Ordering::SeqCst);
    if h != 0 {
        // SAFETY: only `set_foreign_kick_hook` stores here, and it stores a `ForeignKickHook`.
        let hook: ForeignKickHook = unsafe { std::mem::transmute::<usize, ForeignKickHook>(h) };
        hook(info, ctx);
    }
}

/// `sigev_value` of the runtime's POSIX timers, to tell which one fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerTag {
    /// The watchdog that ends a `KVM_RUN` that never exits.
    Watchdog = 1,
    /// The end of a quiet period (`Vcpu::quiet_for`).
    Slice = 2,
}

/// `si_code`, `si_pid` and `si_value` of a 128-byte siginfo (`si_pid` and `si_value` as laid
/// out for `SI_TKILL`/`SI_QUEUE` and `SI_TIMER`; the caller picks the one that applies).
fn info_fields(info: &[u8; 128]) -> (i32, i32, u64) {
    let code = i32::from_ne_bytes(info[8..12].try_into().unwrap());
    let pid = i32::from_ne_bytes(info[16..20].try_into().unwrap());
    let value = u64::from_ne_bytes(info[24..32].try_into().unwrap());
    (code, pid, value)
}

/// Whether an instance of the kick signal is the runtime's own: a `tgkill` from this process
/// (`si_code` `SI_TKILL`; `SI_USER` from this process is taken as the runtime's too, as the
/// embedder refuses or records itself every call of the guest's that would send this number
/// to this process) or one of this process's timers (the embedder refuses guest timers with
/// this number). Anything else — `kill`, `sigqueue`, `tgkill` from another process, `SIGIO` —
/// is a signal meant for whatever runs in the guest.
pub(crate) fn is_own_kick(info: &[u8; 128], own_pid: i32) -> bool {
    let (code, pid, _) = info_fields(info);
    (matches!(code, libc::SI_TKILL | libc::SI_USER) && pid == own_pid) || code == libc::SI_TIMER
}

fn info_bytes(info: *const libc::siginfo_t) -> [u8; 128] {
    let mut b = [0u8; 128];
    // SAFETY: the kernel (or sigtimedwait) filled a whole 128-byte siginfo_t at `info`.
    unsafe { std::ptr::copy_nonoverlapping(info.cast::<u8>(), b.as_mut_ptr(), 128) };
    b
}

extern "C" fn on_kick(_sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // A thread that does not block the kick took it (one that never ran a vCPU): a runtime kick
    // means nothing there; a foreign one is the guest's.
    let b = info_bytes(info);
    // SAFETY: getpid has no preconditions and is async-signal-safe.
    if !is_own_kick(&b, unsafe { libc::getpid() }) {
        foreign_kick(&b, ctx);
    }
}

/// Installs the kick signal's handler once per process, so that a stray kick delivered to a
/// thread that does not block it does not terminate the process (the default action), and a
/// foreign one reaches the [`ForeignKickHook`].
pub(crate) fn install_kick_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid starting value; the handler is
        // async-signal-safe (a copy, getpid, and the hook, which must be).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_kick as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigfillset(&mut sa.sa_mask);
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

/// Runs `f` with the kick signal unblocked in the calling thread, if it is a vCPU thread
/// (which blocks it outside `KVM_RUN`): a kick signal then interrupts the blocking host call
/// `f` makes, as any other signal would, and one the runtime did not send reaches the
/// [`ForeignKickHook`] at once. The runtime's own kicks taken meanwhile are not lost:
/// [`crate::Vcpu::run`] looks for kicks before it enters the guest.
pub fn with_kick_unblocked<T>(f: impl FnOnce() -> T) -> T {
    if !KICK_BLOCKED.with(Cell::get) {
        return f();
    }
    let kick = kick_set();
    // SAFETY: pthread_sigmask with a valid set changes only this thread's mask.
    unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &kick, std::ptr::null_mut()) };
    let r = f();
    // SAFETY: as above.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &kick, std::ptr::null_mut()) };
    r
}

/// Removes the kick signal from `mask`, a mask a waiting call installs for its wait (`ppoll`,
/// `pselect6`): see [`with_kick_unblocked`].
pub fn allow_kick(mask: &mut libc::sigset_t) {
    // SAFETY: `mask` is a valid, initialised sigset_t.
    unsafe { libc::sigdelset(mask, kick_signal()) };
}

/// The first 8 bytes of a glibc `sigset_t`: the kernel's 64-signal mask.
pub(crate) fn mask_bits(set: &libc::sigset_t) -> u64 {
    // SAFETY: a sigset_t is at least 8 bytes of plain data.
    unsafe { std::ptr::read_unaligned((set as *const libc::sigset_t).cast::<u64>()) }
}

/// Blocks the kick signal in the calling thread (once) and returns the thread's signal mask
/// *without* the kick signal: the mask to use while the thread is inside KVM_RUN.
pub(crate) fn block_kick_in_this_thread() -> u64 {
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
        mask_bits(&cur)
    }
}

/// The mask for a quiet `KVM_RUN`: every signal blocked but the kick (SIGKILL and SIGSTOP
/// cannot be blocked; KVM drops them from the set itself).
pub(crate) fn quiet_mask() -> u64 {
    !(1u64 << (kick_signal() - 1))
}

/// `KVM_SET_SIGNAL_MASK`: `_IOW(KVMIO, 0x8b, struct kvm_signal_mask)`.
const KVM_SET_SIGNAL_MASK: libc::c_ulong = 0x4004_ae8b;

/// Sets the signal mask (bit `n - 1` for signal `n`) KVM installs for the duration of KVM_RUN
/// on `vcpu`.
pub(crate) fn set_vcpu_signal_mask(vcpu: &kvm_ioctls::VcpuFd, mask: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // The kernel's sigset_t is 8 bytes on x86-64.
    #[repr(C)]
    struct SignalMask {
        len: u32,
        sigset: [u8; 8],
    }
    let m = SignalMask { len: 8, sigset: mask.to_ne_bytes() };
    // SAFETY: KVM_SET_SIGNAL_MASK reads a kvm_signal_mask of `len` bytes of set from the pointer.
    let rc = unsafe { libc::ioctl(vcpu.as_raw_fd(), KVM_SET_SIGNAL_MASK, &m) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// `KVM_SET_DEVICE_ATTR`: `_IOW(KVMIO, 0xe1, struct kvm_device_attr)`.
const KVM_SET_DEVICE_ATTR: libc::c_ulong = 0x4018_aee1;

/// Sets vCPU attribute `attr` of `group` to the 64-bit `value` (Documentation/virt/kvm/devices/
/// vcpu.rst; on x86 group `KVM_VCPU_TSC_CTRL` only).
pub(crate) fn set_vcpu_attr(
    vcpu: &kvm_ioctls::VcpuFd,
    group: u32,
    attr: u64,
    value: u64,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let a = kvm_bindings::kvm_device_attr { flags: 0, group, attr, addr: &raw const value as u64 };
    // SAFETY: KVM_SET_DEVICE_ATTR reads one kvm_device_attr, and through its `addr` the 8 bytes
    // of `value`, which outlives the call.
    let rc = unsafe { libc::ioctl(vcpu.as_raw_fd(), KVM_SET_DEVICE_ATTR, &a) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Pending kick signals of the calling thread, consumed by [`consume_kicks`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Kicks {
    /// At least one kick signal of the runtime's own was pending.
    pub(crate) any: bool,
    /// One of them came from the watchdog timer.
    pub(crate) watchdog: bool,
    /// One of them ended a quiet period.
    pub(crate) slice: bool,
    /// A kick signal the runtime did not send was pending (handed to the [`ForeignKickHook`]).
    pub(crate) foreign: bool,
}

/// Consumes the calling thread's pending kick signals (its own and the process's).
pub(crate) fn consume_kicks() -> Kicks {
    let set = kick_set();
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    let mut k = Kicks::default();
    // SAFETY: getpid has no preconditions.
    let own_pid = unsafe { libc::getpid() };
    loop {
        // SAFETY: siginfo_t is plain data for which all-zero bytes are a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers; rt_sigtimedwait with a zero timeout never blocks. The system
        // call itself, not glibc's sigtimedwait, which reports SI_TKILL as SI_USER.
        let r = unsafe { libc::syscall(libc::SYS_rt_sigtimedwait, &set, &mut info, &zero, 8usize) };
        if r < 0 {
            return k;
        }
        let b = info_bytes(&info);
        if !is_own_kick(&b, own_pid) {
            k.foreign = true;
            foreign_kick(&b, std::ptr::null_mut());
            continue;
        }
        k.any = true;
        let (code, _, value) = info_fields(&b);
        if code == libc::SI_TIMER {
            k.watchdog |= value as u32 == TimerTag::Watchdog as u32;
            k.slice |= value as u32 == TimerTag::Slice as u32;
        }
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
    /// Creates a CLOCK_MONOTONIC timer that signals the calling thread, with `tag` as its
    /// `sigev_value`.
    pub(crate) fn for_current_thread(tag: TimerTag) -> io::Result<Self> {
        let tid = gettid();
        // SAFETY: zeroed sigevent is valid; fields set below follow timer_create(2) for
        // SIGEV_THREAD_ID.
        let mut ev: libc::sigevent = unsafe { std::mem::zeroed() };
        ev.sigev_notify = libc::SIGEV_THREAD_ID;
        ev.sigev_signo = kick_signal();
        ev.sigev_notify_thread_id = tid;
        ev.sigev_value = libc::sigval { sival_ptr: tag as usize as *mut libc::c_void };
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
    let _creating = placer.map(|p| p.creating());
    let fd = with_room(placer, || {
        // SAFETY: plain open of a NUL-terminated path; the result is checked.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 { Err(io::Error::last_os_error()) } else { Ok(fd) }
    })?;
    let fd = place(fd, placer)?;
    // SAFETY: `fd` is a freshly opened descriptor owned by nobody else.
    Ok(unsafe { kvm_ioctls::Kvm::from_raw_fd(fd) })
}

/// A duplicate of the KVM device descriptor `fd` where `placer` puts it.
pub(crate) fn dup_kvm(
    fd: RawFd,
    placer: Option<&dyn crate::FdPlacer>,
) -> io::Result<kvm_ioctls::Kvm> {
    use std::os::fd::FromRawFd;
    let _creating = placer.map(|p| p.creating());
    let fd = with_room(placer, || {
        // SAFETY: F_DUPFD_CLOEXEC on a descriptor number; the result is checked.
        let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if d < 0 { Err(io::Error::last_os_error()) } else { Ok(d) }
    })?;
    let fd = place(fd, placer)?;
    // SAFETY: `fd` is a fresh duplicate owned by nobody else.
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
    let _creating = placer.map(|p| p.creating());
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
    let _creating = placer.map(|p| p.creating());
    let fd =
        with_room(placer, || ioctl_new_fd(vm.as_raw_fd(), KVM_CREATE_VCPU, id as libc::c_ulong))?;
    let fd = place(fd, placer)?;
    // SAFETY: `fd` is a fresh vCPU descriptor of `vm` owned by nobody else.
    unsafe { vm.create_vcpu_from_rawfd(fd) }.map_err(|e| io::Error::from_raw_os_error(e.errno()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(code: i32, pid: i32, value: u64) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..4].copy_from_slice(&kick_signal().to_ne_bytes());
        b[8..12].copy_from_slice(&code.to_ne_bytes());
        b[16..20].copy_from_slice(&pid.to_ne_bytes());
        b[24..32].copy_from_slice(&value.to_ne_bytes());
        b
    }

    #[test]
    fn only_the_runtime_s_own_kicks_are_its_own() {
        let me = 4321;
        assert!(is_own_kick(&info(libc::SI_TKILL, me, 0), me));
        assert!(is_own_kick(&info(libc::SI_USER, me, 0), me));
        assert!(is_own_kick(&info(libc::SI_TIMER, 0, TimerTag::Slice as u64), me));
        // Another process's kill, tgkill, sigqueue; SIGIO; sigqueue claiming to be us.
        assert!(!is_own_kick(&info(libc::SI_USER, me + 1, 0), me));
        assert!(!is_own_kick(&info(libc::SI_TKILL, me + 1, 0), me));
        assert!(!is_own_kick(&info(libc::SI_QUEUE, me, 0), me));
        assert!(!is_own_kick(&info(1 /* POLL_IN */, 0x41, 3), me));
        assert!(!is_own_kick(&info(libc::SI_SIGIO, 0x41, 3), me));
    }
}
