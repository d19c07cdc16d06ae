//! Every `unsafe` operation of the supervisor: forwarding a validated system call to the host,
//! host mappings inside the program's reserved range, and fault-tolerant copies of program
//! memory.
//!
//! The invariants that make the forwarding sound are established by the callers (the
//! `syscall` module) and restated at each `unsafe` block: every pointer handed to the host
//! kernel either lies inside the program's reserved range (whose every page is program memory
//! or a `PROT_NONE` reservation, never the runtime's) or points at a copy the supervisor owns.

use std::io;

use crate::errno::Errno;

/// Result of a raw system call: the value, or the errno.
pub type SysResult = Result<u64, Errno>;

fn ret(r: i64) -> SysResult {
    if r < 0 { Err(Errno(-r as i32)) } else { Ok(r as u64) }
}

/// Performs system call `nr` on the host with `args`, exactly as given.
///
/// # Safety
/// Every argument the kernel interprets as a pointer must be NULL, lie wholly inside the
/// program's reserved range, or point at memory the caller owns and keeps alive for the call;
/// every argument interpreted as a file descriptor must not be one of the runtime's; and the
/// call must not change the supervisor's own state (signal handlers, memory outside the
/// program range, credentials the supervisor relies on) — the dispatch table only lists calls
/// for which that holds.
pub unsafe fn syscall6(nr: i64, a: [u64; 6]) -> SysResult {
    if let Some(seen) = CANCEL_IF_ARRIVED.with(Cell::take) {
        let counter = ARRIVALS.with(Cell::as_ptr);
        // SAFETY: forwarded from the caller's contract; `a` and `counter` (this thread's
        // arrivals counter, alive as long as the thread) are valid for the call.
        return ret(unsafe { sandbox_cancellable_syscall(a.as_ptr(), nr as u64, counter, seen) });
    }
    // SAFETY: forwarded from the caller's contract.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    ret(if r == -1 {
        -(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) as i64)
    } else {
        r
    })
}

// ---------------------------------------------------------------------------------------------
// Forwarded calls as cancellation points.
//
// A signal the host records for a thread after its last look at the recorded signals (the
// delivery at its last safe point) but before a blocking call it forwards would leave the call
// blocked with the signal undelivered: a SIGTERM from outside, or an alarm meant to end the
// wait. So a forwarded call can be made through `sandbox_cancellable_syscall`, which compares
// the thread's arrivals counter with the value the supervisor last looked at right before the
// `syscall` instruction, and a host handler that interrupts the thread between that comparison
// and the instruction moves it to the cancel path (as musl and glibc implement thread
// cancellation): either way the call is not made and returns `NOT_STARTED`, and the program
// takes the signal as if it had come before its `syscall`, then makes the call.

/// The forwarded call did not start: a signal arrived first (see above). Kernel-internal
/// `ERESTARTSYS`, which no system call returns to user space.
pub const NOT_STARTED: Errno = Errno(512);

thread_local! {
    /// Host signals this thread's handlers recorded (or runtime interrupts it took).
    static ARRIVALS: Cell<u64> = const { Cell::new(0) };
    /// Set by [`cancellable`]: the next [`syscall6`] is a cancellation point for this value.
    static CANCEL_IF_ARRIVED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// This thread's arrivals counter (see above).
pub fn arrivals() -> u64 {
    ARRIVALS.with(Cell::get)
}

/// A `seen` value for [`cancellable`]: only a signal recorded after the call's last
/// instructions before `syscall` began keeps it from starting (those signals interrupt the
/// host call instead, if it blocks). For a call made again after it did not start: the
/// signals that arrived while the program took the first ones cannot cancel it once more, so
/// a signal storm cannot keep it from ever starting.
pub const FROM_NOW: u64 = u64::MAX;

/// Runs `f`, whose first [`syscall6`] does not start (returns [`NOT_STARTED`]) if this thread
/// recorded a signal since its arrivals counter read `seen` (or, for [`FROM_NOW`], within the
/// few instructions before the `syscall`).
pub fn cancellable<T>(seen: u64, f: impl FnOnce() -> T) -> T {
    CANCEL_IF_ARRIVED.with(|c| c.set(Some(seen)));
    let r = f();
    CANCEL_IF_ARRIVED.with(|c| c.set(None));
    r
}

core::arch::global_asm!(
    ".pushsection .text.sandbox_cancellable,\"ax\",@progbits",
    ".globl sandbox_cancellable_syscall",
    ".type sandbox_cancellable_syscall,@function",
    // rdi: the six arguments, rsi: the number, rdx: &arrivals, rcx: the value last seen
    // (FROM_NOW: the value at `begin`, read inside the range the signal handler watches).
    "sandbox_cancellable_syscall:",
    "    mov r11, rdx",
    "    mov rax, rsi",
    "    mov rsi, [rdi + 8]",
    "    mov rdx, [rdi + 16]",
    "    mov r10, [rdi + 24]",
    "    mov r8, [rdi + 32]",
    "    mov r9, [rdi + 40]",
    "    mov rdi, [rdi]",
    ".globl sandbox_cancellable_begin",
    "sandbox_cancellable_begin:",
    "    cmp rcx, -1",
    "    jne 2f",
    "    mov rcx, qword ptr [r11]",
    "2:",
    "    cmp qword ptr [r11], rcx",
    "    jne sandbox_cancellable_cancel",
    ".globl sandbox_cancellable_insn",
    "sandbox_cancellable_insn:",
    "    syscall",
    "    ret",
    ".globl sandbox_cancellable_cancel",
    "sandbox_cancellable_cancel:",
    "    mov rax, -512",
    "    ret",
    ".size sandbox_cancellable_syscall, . - sandbox_cancellable_syscall",
    ".popsection",
);

unsafe extern "C" {
    /// System call `nr` with `args` unless `*arrivals != seen` (then -512, `NOT_STARTED`).
    fn sandbox_cancellable_syscall(
        args: *const u64,
        nr: u64,
        arrivals: *const u64,
        seen: u64,
    ) -> i64;
    static sandbox_cancellable_begin: u8;
    static sandbox_cancellable_insn: u8;
    static sandbox_cancellable_cancel: u8;
}

/// Counts a host signal for this thread and, if it interrupted the thread inside a
/// cancellation point before its `syscall` instruction, moves the thread to the cancel path.
/// Async-signal-safe; `ctx` is the handler's ucontext (or null).
fn arrived(ctx: *mut libc::c_void) {
    ARRIVALS.with(|c| c.set(c.get().wrapping_add(1)));
    if ctx.is_null() {
        return;
    }
    let begin = &raw const sandbox_cancellable_begin as u64;
    let insn = &raw const sandbox_cancellable_insn as u64;
    let cancel = &raw const sandbox_cancellable_cancel as u64;
    // SAFETY: the kernel passed this ucontext to an SA_SIGINFO handler; returning from the
    // handler resumes the thread with it, so moving RIP from an instruction of
    // `sandbox_cancellable_syscall` before its `syscall` to its cancel path (which only sets
    // RAX and returns, needing nothing the skipped instructions would have set) is sound.
    unsafe {
        let uc = ctx.cast::<libc::ucontext_t>();
        let rip = &mut (*uc).uc_mcontext.gregs[libc::REG_RIP as usize];
        if (begin..=insn).contains(&(*rip as u64)) {
            *rip = cancel as i64;
        }
    }
}

/// Reserves `[addr, addr + len)` with `PROT_NONE`, replacing whatever the program had there
/// (`MAP_FIXED`) or, with `noreplace`, failing if anything is mapped there.
///
/// The range must lie inside the program's reserved range (or be that range, at start-up).
pub fn reserve(addr: u64, len: u64, noreplace: bool) -> SysResult {
    let fixed = if noreplace { libc::MAP_FIXED_NOREPLACE } else { libc::MAP_FIXED };
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | fixed;
    // SAFETY: the caller passes a range inside the program's reserved range (or the range
    // itself), which holds no runtime memory; with MAP_FIXED_NOREPLACE nothing is replaced.
    let p = unsafe { libc::mmap(addr as *mut _, len as usize, libc::PROT_NONE, flags, -1, 0) };
    if p == libc::MAP_FAILED {
        return Err(Errno::last());
    }
    if p as u64 != addr {
        // Pre-4.17 kernels treat MAP_FIXED_NOREPLACE as a hint.
        // SAFETY: `p` is the mapping just created.
        unsafe { libc::munmap(p, len as usize) };
        return Err(Errno(libc::EEXIST));
    }
    Ok(addr)
}

/// `mmap` at exactly `addr` (`MAP_FIXED`) inside the program range.
///
/// # Safety
/// `[addr, addr + len)` must lie inside the program's reserved range and `fd` must not be a
/// runtime descriptor.
pub unsafe fn mmap_fixed(
    addr: u64,
    len: u64,
    prot: i32,
    flags: i32,
    fd: i32,
    off: u64,
) -> SysResult {
    // SAFETY: caller's contract: only program memory is replaced.
    let p = unsafe {
        libc::mmap(
            addr as *mut _,
            len as usize,
            prot,
            flags | libc::MAP_FIXED,
            fd,
            off as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED { Err(Errno::last()) } else { Ok(p as u64) }
}

/// `madvise(MADV_HUGEPAGE)`: transparent huge pages for this range where the host's policy is
/// `madvise` (mm/khugepaged.c, `hugepage_madvise`). Advice only: failure is ignored.
///
/// # Safety
/// `[addr, addr + len)` must lie inside the program's reserved range.
pub unsafe fn advise_huge_pages(addr: u64, len: u64) {
    // SAFETY: caller's contract; the advice changes no contents.
    unsafe { libc::madvise(addr as *mut _, len as usize, libc::MADV_HUGEPAGE) };
}

/// `mprotect` inside the program range.
///
/// # Safety
/// `[addr, addr + len)` must lie inside the program's reserved range.
pub unsafe fn mprotect(addr: u64, len: u64, prot: i32) -> SysResult {
    // SAFETY: caller's contract.
    let r = unsafe { libc::mprotect(addr as *mut _, len as usize, prot) };
    if r < 0 { Err(Errno::last()) } else { Ok(0) }
}

/// `mremap(old, old_len, new_len, MREMAP_MAYMOVE | MREMAP_FIXED [| MREMAP_DONTUNMAP], new)`:
/// moves program pages. `[old, old + old_len)` must lie in one host mapping (VMA) or the host
/// refuses with `EFAULT`, after it has already unmapped `[new, new + new_len)`
/// (mm/mremap.c, `mremap_to`): callers re-reserve the target on any failure. With
/// `dontunmap` (`old_len == new_len`) the source mapping stays, emptied; without, it is a
/// hole afterwards that the caller must reserve again at once.
///
/// # Safety
/// Both ranges must lie inside the program's reserved range.
pub unsafe fn mremap_fixed(
    old: u64,
    old_len: u64,
    new_len: u64,
    new: u64,
    dontunmap: bool,
) -> SysResult {
    let mut flags = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED;
    if dontunmap {
        flags |= MREMAP_DONTUNMAP;
    }
    // SAFETY: caller's contract.
    let p = unsafe {
        libc::mremap(
            old as *mut _,
            old_len as usize,
            new_len as usize,
            flags,
            new as *mut libc::c_void,
        )
    };
    if p == libc::MAP_FAILED { Err(Errno::last()) } else { Ok(p as u64) }
}

/// `mremap(addr, old_len, new_len, 0)`: grows a host mapping in place (the pages after it must
/// be a hole) or shrinks it.
///
/// # Safety
/// `[addr, addr + new_len)` must lie inside the program's reserved range.
pub unsafe fn mremap_in_place(addr: u64, old_len: u64, new_len: u64) -> SysResult {
    // SAFETY: caller's contract; without MREMAP_MAYMOVE nothing moves.
    let p = unsafe { libc::mremap(addr as *mut _, old_len as usize, new_len as usize, 0) };
    if p == libc::MAP_FAILED { Err(Errno::last()) } else { Ok(p as u64) }
}

/// `munmap` inside the program range, leaving a hole (see `mm::reserve_hole`).
///
/// # Safety
/// `[addr, addr + len)` must lie inside the program's reserved range.
pub unsafe fn unmap(addr: u64, len: u64) -> SysResult {
    // SAFETY: caller's contract.
    let r = unsafe { libc::munmap(addr as *mut _, len as usize) };
    if r < 0 { Err(Errno::last()) } else { Ok(0) }
}

/// `madvise` inside the program range.
///
/// # Safety
/// `[addr, addr + len)` must be program memory inside the program's reserved range (advice
/// such as `MADV_DONTNEED` drops its contents).
pub unsafe fn madvise(addr: u64, len: u64, advice: i32) -> SysResult {
    // SAFETY: caller's contract.
    let r = unsafe { libc::madvise(addr as *mut _, len as usize, advice) };
    if r < 0 { Err(Errno::last()) } else { Ok(0) }
}

/// Whether the host kernel's `mremap` moves a range spanning several mappings to a fixed
/// address (Linux 6.17, "mm/mremap: permit mremap() move of multiple VMAs"; before, `EFAULT`).
/// Found out once by trying it on two scratch pages of different protections.
pub fn host_moves_many_vmas() -> bool {
    static ANSWER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANSWER.get_or_init(|| {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: fresh anonymous mappings the kernel places; only they are changed and
        // unmapped below.
        unsafe {
            let p = libc::mmap(std::ptr::null_mut(), 4 * 4096, libc::PROT_READ, flags, -1, 0);
            if p == libc::MAP_FAILED {
                return false;
            }
            let q = p.cast::<u8>().add(2 * 4096).cast::<libc::c_void>();
            libc::munmap(q, 2 * 4096);
            libc::mprotect(p.cast::<u8>().add(4096).cast(), 4096, libc::PROT_NONE);
            let r =
                libc::mremap(p, 2 * 4096, 2 * 4096, libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED, q);
            libc::munmap(p, 4 * 4096);
            r != libc::MAP_FAILED
        }
    })
}

/// `MREMAP_DONTUNMAP` (include/uapi/linux/mman.h; Linux 5.7, any mapping since 5.13).
pub const MREMAP_DONTUNMAP: i32 = 4;

/// The host's own mappings (VMAs) covering `[start, end)`, clipped to it, in address order,
/// from `/proc/self/maps` of this process (the supervisor's own view, never shown to the
/// program). Gaps are left out. Errors: what opening or reading the file gives.
pub fn host_vmas(start: u64, end: u64) -> Result<Vec<(u64, u64)>, Errno> {
    // Through the reader: a descriptor of our own maps must never be the program's to copy.
    let maps = crate::hostread::read(std::path::Path::new("/proc/self/maps"))
        .map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::EIO)))?;
    Ok(parse_vmas(&maps, start, end))
}

/// The `lo-hi` ranges of a `/proc/PID/maps` text that meet `[start, end)`, clipped to it.
/// Lines that do not parse are skipped (the kernel's format: fs/proc/task_mmu.c, `show_map_vma`).
pub fn parse_vmas(maps: &[u8], start: u64, end: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for line in maps.split(|&b| b == b'\n') {
        let Some(range) = line.split(|&b| b == b' ').next() else { continue };
        let mut it = range.split(|&b| b == b'-');
        let (Some(lo), Some(hi)) = (it.next(), it.next()) else { continue };
        let hex =
            |b: &[u8]| std::str::from_utf8(b).ok().and_then(|s| u64::from_str_radix(s, 16).ok());
        let (Some(lo), Some(hi)) = (hex(lo), hex(hi)) else { continue };
        if hi <= start {
            continue;
        }
        if lo >= end {
            break;
        }
        out.push((lo.max(start), hi.min(end)));
    }
    out
}

/// The device and inode of the file open on `fd` (`fstat`). Errors: `EBADF`.
pub fn file_id(fd: i32) -> Result<crate::mm::FileId, Errno> {
    // SAFETY: `st` is a plain C struct the kernel fills; zeroed is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable and sized for `struct stat`.
    if unsafe { libc::fstat(fd, &mut st) } < 0 {
        return Err(Errno::last());
    }
    Ok(crate::mm::FileId { dev: st.st_dev, ino: st.st_ino })
}

/// `mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to)`: moves a mapping the kernel
/// placed outside the program range (a SysV shared memory attachment) into it, replacing what
/// was at `to`.
///
/// # Safety
/// `[from, from + len)` must be one mapping the caller created for this purpose (no runtime
/// memory), and `[to, to + len)` must lie inside the program's reserved range.
pub unsafe fn mremap_into(from: u64, len: u64, to: u64) -> SysResult {
    // SAFETY: caller's contract: the source is the caller's own mapping, the target program
    // memory.
    let p = unsafe {
        libc::mremap(
            from as *mut _,
            len as usize,
            len as usize,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            to as *mut libc::c_void,
        )
    };
    if p == libc::MAP_FAILED { Err(Errno::last()) } else { Ok(p as u64) }
}

/// `munmap` of a mapping outside the program range that the caller created (and no longer
/// wants, e.g. a SysV shared memory attachment that could not be moved into the range).
///
/// # Safety
/// `[addr, addr + len)` must be a mapping the caller created, holding no runtime memory.
pub unsafe fn unmap_own(addr: u64, len: u64) {
    // SAFETY: caller's contract.
    unsafe { libc::munmap(addr as *mut _, len as usize) };
}

/// This process's pid, cached (process_vm_readv/writev need it on every copy, a policy decision
/// names it in its audit line); refreshed in a forked child by [`fork`].
static PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// This process's pid, cached (refreshed in a forked child by [`fork`]).
pub fn pid() -> i32 {
    let p = PID.load(std::sync::atomic::Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: no preconditions.
    let p = unsafe { libc::getpid() };
    PID.store(p, std::sync::atomic::Ordering::Relaxed);
    p
}

/// Copies `buf.len()` bytes of program memory at `addr` into `buf` through the kernel
/// (`process_vm_readv` on this process), so a page that vanished or a file truncated under a
/// shared mapping yields `EFAULT` instead of a fault in the supervisor. The caller has checked
/// that the range lies in the program range.
pub fn read_program(addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
    if buf.is_empty() {
        return Ok(());
    }
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut _, iov_len: buf.len() };
    // SAFETY: `local` describes `buf`, which we own; the kernel validates `remote` itself.
    let n = unsafe { libc::process_vm_readv(pid(), &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(Errno::last());
    }
    if n as usize != buf.len() { Err(Errno(libc::EFAULT)) } else { Ok(()) }
}

/// Copies `buf` into program memory at `addr` (`process_vm_writev`); see [`read_program`].
pub fn write_program(addr: u64, buf: &[u8]) -> Result<(), Errno> {
    if buf.is_empty() {
        return Ok(());
    }
    let local = libc::iovec { iov_base: buf.as_ptr() as *mut _, iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut _, iov_len: buf.len() };
    // SAFETY: `local` describes `buf`; the kernel validates `remote` and honours the program's
    // page protections (a read-only page gives EFAULT).
    let n = unsafe { libc::process_vm_writev(pid(), &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(Errno::last());
    }
    if n as usize != buf.len() { Err(Errno(libc::EFAULT)) } else { Ok(()) }
}

/// Fills `buf` with random bytes from the kernel (`getrandom`).
pub fn random(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: writes at most `buf.len() - done` bytes into `buf`.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n > 0 {
            done += n as usize;
        }
    }
}

/// Ends the supervisor the way the kernel would end the program for `signal`: default
/// disposition, signal unblocked, raised. For a signal whose default action dumps core, the
/// kernel dumps one where the soft `RLIMIT_CORE` allows, as it would for the program, so the
/// parent sees the same status (`WCOREDUMP`, `CLD_DUMPED`); the dump holds no memory
/// (`coredump_filter` 0: the supervisor's memory is not the program's core). Returns only if
/// the signal does not terminate (then the caller exits with 128 + signal).
pub fn die_by_signal(signal: i32, core: bool) {
    if core && getrlimit(libc::RLIMIT_CORE).rlim_cur > 0 {
        let _ = std::fs::write("/proc/self/coredump_filter", "0\n");
    } else {
        setrlimit(libc::RLIMIT_CORE, 0, getrlimit(libc::RLIMIT_CORE).rlim_max);
    }
    // SAFETY: plain libc calls on this process's own state, which is about to end.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
}

/// A store to an unmapped address (debug builds' `SANDBOX_TEST_CRASH=segv`).
#[cfg(debug_assertions)]
pub fn crash_for_test() {
    let addr: usize = std::hint::black_box(0x10);
    // SAFETY: none: this deliberately faults, to test the report of the supervisor's crashes.
    unsafe { std::ptr::write_volatile(addr as *mut u8, 1) };
}

/// Ends the process at once with `status` (`_exit`): no destructors, no `atexit` handlers,
/// nothing that could wait for a lock another thread holds.
pub fn exit_now(status: i32) -> ! {
    // SAFETY: _exit has no preconditions.
    unsafe { libc::_exit(status) }
}

/// The kernel thread id of the calling thread.
pub fn gettid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::gettid() }
}

/// `getauxval` of the supervisor's own process.
pub fn getauxval(key: u64) -> u64 {
    // SAFETY: no preconditions.
    unsafe { libc::getauxval(key) }
}

/// `getrlimit` of the supervisor's own process.
pub fn getrlimit(resource: u32) -> libc::rlimit {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `r` is a valid out-pointer.
    unsafe { libc::getrlimit(resource, &mut r) };
    r
}

/// Sets the calling process's limit `resource` (`setrlimit(2)`); errors are ignored (the
/// callers only try to raise a soft limit within the hard one).
pub fn setrlimit(resource: u32, soft: u64, hard: u64) {
    let r = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: `r` is a valid in-pointer.
    unsafe { libc::setrlimit(resource, &r) };
}

// ---------------------------------------------------------------------------------------------
// Host signals.
//
// The program's signal dispositions live in the supervisor; the host process catches every
// signal it can (without SA_RESTART, so a blocking forwarded call is interrupted) and records it
// here. The run loops deliver recorded signals to the program at safe points. Nothing of the
// program is ever installed as a host handler.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Signals recorded for the process (any thread may deliver them), bit `n - 1` for signal `n`.
pub static PROCESS_PENDING: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Signals recorded for the calling thread only (sent with tgkill/tkill).
    static THREAD_PENDING: Cell<u64> = const { Cell::new(0) };
    /// Queued instances of thread-directed real-time signals.
    static THREAD_COUNT: [Cell<u32>; 65] = const { [const { Cell::new(0) }; 65] };
}

/// Queued instances of process-directed real-time signals (real-time signals queue; standard
/// ones do not, signal(7)).
static PROCESS_COUNT: [AtomicU32; 65] = [const { AtomicU32::new(0) }; 65];

/// The last `siginfo_t` (128 bytes) recorded per signal.
static INFO: [[AtomicU64; 16]; 65] = [const { [const { AtomicU64::new(0) }; 16] }; 65];

/// The kernel's first real-time signal.
const SIGRTMIN_KERNEL: i32 = 32;

/// Queued `siginfo_t`s of one real-time signal (a ring of [`RT_QUEUE`] entries), so each queued
/// instance is delivered with its own value (sigqueue). Guarded by a spin lock taken only with
/// host signals blocked (the handler runs with all blocked; consumers block them), so a thread
/// never spins on a lock it holds itself.
struct RtQueue {
    lock: std::sync::atomic::AtomicBool,
    head: AtomicU32,
    len: AtomicU32,
    slots: [[AtomicU64; 16]; RT_QUEUE],
}

/// Instances kept per real-time signal (more are still counted, with the last value).
const RT_QUEUE: usize = 32;

static RTQ: [RtQueue; 65] = [const {
    RtQueue {
        lock: std::sync::atomic::AtomicBool::new(false),
        head: AtomicU32::new(0),
        len: AtomicU32::new(0),
        slots: [const { [const { AtomicU64::new(0) }; 16] }; RT_QUEUE],
    }
}; 65];

impl RtQueue {
    fn locked<T>(&self, f: impl FnOnce() -> T) -> T {
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        let r = f();
        self.lock.store(false, Ordering::Release);
        r
    }

    fn push(&self, words: &[u64]) {
        self.locked(|| {
            let len = self.len.load(Ordering::Relaxed);
            if (len as usize) < RT_QUEUE {
                let i = (self.head.load(Ordering::Relaxed) + len) as usize % RT_QUEUE;
                for (slot, w) in self.slots[i].iter().zip(words) {
                    slot.store(*w, Ordering::Relaxed);
                }
                self.len.store(len + 1, Ordering::Relaxed);
            }
        });
    }

    fn pop(&self) -> Option<[u8; 128]> {
        self.locked(|| {
            let len = self.len.load(Ordering::Relaxed);
            if len == 0 {
                return None;
            }
            let h = self.head.load(Ordering::Relaxed) as usize;
            let mut out = [0u8; 128];
            for (i, slot) in self.slots[h].iter().enumerate() {
                out[i * 8..i * 8 + 8].copy_from_slice(&slot.load(Ordering::Relaxed).to_ne_bytes());
            }
            self.head.store(((h + 1) % RT_QUEUE) as u32, Ordering::Relaxed);
            self.len.store(len - 1, Ordering::Relaxed);
            Some(out)
        })
    }

    fn clear(&self) {
        self.locked(|| self.len.store(0, Ordering::Relaxed));
    }
}

/// The signal that makes a supervisor thread leave a blocking host call or `KVM_RUN` without
/// meaning anything to the program (used to stop threads on `execve`).
pub fn interrupt_signal() -> i32 {
    libc::SIGRTMAX() - 2
}

/// The vCPU kick signal of `dune` (never a program signal).
pub fn kick_signal() -> i32 {
    libc::SIGRTMAX() - 1
}

/// `si_value` of a thread-directed signal the runtime sends on the program's behalf to a thread
/// of this process ([`send_to_own_thread`], as `SI_QUEUE`: `rt_tgsigqueueinfo` refuses
/// `SI_TKILL` for other threads): it tells such a signal apart from the runtime's own
/// `tgkill`s (kicks, interrupts, `abort`). A program that sends itself `SI_QUEUE` siginfo with
/// this value only gets its signal shown as a `tgkill`'s.
const PROGRAM_TKILL: u64 = 0x5342_5850_524f_4700; // "SBXPROG\0"

/// Whether a signal came from this process's own `tgkill` (`si_code` `SI_TKILL`), or with
/// `any_kill` also its own `kill` (`SI_USER`). Async-signal-safe.
fn from_self(code: i32, pid: i32, any_kill: bool) -> bool {
    let kill = code == libc::SI_TKILL || (any_kill && code == libc::SI_USER);
    // SAFETY: getpid is async-signal-safe.
    kill && pid == unsafe { libc::getpid() }
}

/// `si_code`, `si_pid` (for `SI_USER`/`SI_TKILL`/`SI_QUEUE`) and `si_value` of a siginfo.
fn info_fields(words: &[u64]) -> (i32, i32, u64) {
    (words[1] as i32, words[2] as i32, words[3])
}

/// The `si_band` the kernel sends with `si_code` `POLL_IN`..`POLL_HUP` (`band_table` in
/// fs/fcntl.c), or `None` for other codes.
fn poll_band(code: i32) -> Option<u64> {
    const IN: u64 = 0x1 | 0x40; // EPOLLIN | EPOLLRDNORM
    Some(match code {
        1 => IN,
        2 => 0x4 | 0x100 | 0x200, // EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND
        3 => IN | 0x400,          // | EPOLLMSG
        4 => 0x8,                 // EPOLLERR
        5 => 0x2 | 0x80,          // EPOLLPRI | EPOLLRDBAND
        6 => 0x10 | 0x8,          // EPOLLHUP | EPOLLERR
        _ => return None,
    })
}

thread_local! {
    /// `SIGIO`-style arrivals of a fault signal number at one RIP since the thread's last safe
    /// point (see [`genuine_fault`]).
    static POLL_STREAK: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
}

/// More `SIGIO`-style fault signals than this at one RIP without a safe point in between are
/// a fault that recurs on return, not file events (each of which ends the thread's wait).
const POLL_STREAK_MAX: u32 = 64;

/// Called by the run loop at every safe point: the thread made progress.
pub fn note_safe_point() {
    POLL_STREAK.with(|s| {
        if s.get().1 != 0 {
            s.set((0, 0));
        }
    });
}

/// Whether a fault signal number with `si_code > 0` is a fault of the supervisor itself (the
/// program's faults are VM exits, never host signals), as opposed to a `SIGIO` the kernel
/// sends with that number for a file set up with `F_SETSIG` (`si_code` `POLL_*`, whose values
/// overlap the fault codes; `si_band` holds the event bits, `si_fd` the descriptor). A
/// genuine fault at an address that looks like an event band would recur at once on return:
/// after [`POLL_STREAK_MAX`] of those it counts as genuine.
fn genuine_fault(sig: i32, words: &[u64], rip: u64) -> bool {
    let (code, _, _) = info_fields(words);
    if sig == libc::SIGBUS && code == 5 {
        // BUS_MCEERR_AO: a poisoned page of the process, reported asynchronously: the
        // program's memory is the supervisor's, so it is the program's signal.
        return false;
    }
    let sigio = poll_band(code).is_some_and(|band| words[2] == band && words[3] as i32 >= 0);
    if !sigio {
        return true;
    }
    POLL_STREAK.with(|s| {
        let (at, n) = s.get();
        let n = if at == rip { n + 1 } else { 1 };
        s.set((rip, n));
        n > POLL_STREAK_MAX
    })
}

/// Writes `bytes` to stderr (async-signal-safe).
fn write_stderr(bytes: &[u8]) {
    // SAFETY: write(2) from a buffer we own.
    unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
}

/// A small buffer for messages written from signal handlers (no allocation).
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line { buf: [0; 256], len: 0 }
    }

    fn byte(&mut self, b: u8) -> &mut Line {
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        }
        self
    }

    fn text(&mut self, t: &str) -> &mut Line {
        for &b in t.as_bytes() {
            self.byte(b);
        }
        self
    }

    fn hex(&mut self, v: u64) -> &mut Line {
        self.text("0x");
        let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
        for i in (0..digits).rev() {
            self.byte(b"0123456789abcdef"[((v >> (4 * i)) & 15) as usize]);
        }
        self
    }

    fn dec(&mut self, v: i64) -> &mut Line {
        if v < 0 {
            self.byte(b'-');
        }
        let x = v.unsigned_abs();
        let mut div = 1u64;
        while x / div >= 10 {
            div *= 10;
        }
        while div > 0 {
            self.byte(b'0' + (x / div % 10) as u8);
            div /= 10;
        }
        self
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The name of a signal the supervisor can crash with.
fn crash_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        _ => "a signal",
    }
}

/// The supervisor itself crashed (a fault in its code, or `abort`): says so on stderr, in one
/// line that cannot be taken for the program's death, leaves a core dump of the crashing
/// context where the soft `RLIMIT_CORE` allows one (in a forked copy, so that the status stays
/// the runtime's), and exits with [`crate::cli::EXIT_RUNTIME`]. Async-signal-safe.
fn internal_crash(sig: i32, code: i32, addr: u64, rip: u64) -> ! {
    let mut l = Line::new();
    l.text("sandbox: internal error: the supervisor (not the program) crashed with ")
        .text(crash_name(sig))
        .text(" (si_code ")
        .dec(i64::from(code))
        .text(") at address ")
        .hex(addr)
        .text(", rip ")
        .hex(rip)
        .text("\n");
    write_stderr(l.as_bytes());
    // SAFETY: getrlimit, fork, signal, sigprocmask, raise, waitpid and _exit are
    // async-signal-safe; the forked child only re-raises the signal with its default action.
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::getrlimit(libc::RLIMIT_CORE, &mut r);
        if r.rlim_cur > 0 {
            let child = libc::syscall(libc::SYS_fork);
            if child == 0 {
                libc::signal(sig, libc::SIG_DFL);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, sig);
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                libc::raise(sig);
                libc::_exit(crate::cli::EXIT_RUNTIME);
            }
            if child > 0 {
                let mut st = 0;
                libc::waitpid(child as i32, &mut st, 0);
            }
        }
        libc::_exit(crate::cli::EXIT_RUNTIME)
    }
}

extern "C" fn on_host_signal(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    dune::note_host_signal();
    if !(1..=64).contains(&sig) {
        return;
    }
    // SAFETY: the kernel passes a valid 128-byte siginfo to an SA_SIGINFO handler.
    let words = unsafe { std::slice::from_raw_parts(info.cast::<u64>(), 16) };
    let (code, pid, _) = info_fields(words);
    if sig == CHECKPOINT_SIGNAL.load(Ordering::Relaxed) {
        // `--checkpoint-on`: sent by another process (kill or sigqueue), it is a request to the
        // supervisor, never the program's; the program's own routes to it (a timer, its own
        // kill) stay the program's signal.
        // SAFETY: getpid is async-signal-safe.
        let foreign = pid != unsafe { libc::getpid() };
        if foreign && (code == libc::SI_USER || code == libc::SI_QUEUE) {
            poke(CHECKPOINT_FD.load(Ordering::Relaxed));
            return arrived(ctx);
        }
    }
    // SAFETY: the kernel passes the interrupted context to an SA_SIGINFO handler.
    let rip = unsafe { (*ctx.cast::<libc::ucontext_t>()).uc_mcontext.gregs[libc::REG_RIP as usize] }
        as u64;
    let fault =
        matches!(sig, libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP);
    if fault && code > 0 && genuine_fault(sig, words, rip) {
        internal_crash(sig, code, words[2], rip);
    }
    let (mut copy, marked) = program_info(words);
    if marked {
        record_info(sig, &copy, true);
        return arrived(ctx);
    }
    // A child that ends is announced with the signal its parent chose at clone (CSIGNAL):
    // the host sends SIGCHLD for every child (the supervisor forks with it).
    let sig = if sig == libc::SIGCHLD && is_child_end(code) {
        match take_exit_signal(pid) {
            Some(0) => return arrived(ctx),
            Some(s) => {
                copy[0] = (copy[0] & !0xffff_ffff) | u64::from(s as u32);
                s
            }
            None => sig,
        }
    } else {
        sig
    };
    if from_self(code, pid, false) && sig == libc::SIGABRT {
        // The runtime's own abort() (glibc's heap checks, a Rust abort): the program's tgkills
        // of its own threads come marked, the rest of its signals to this process are
        // recorded without the host or come as SI_USER.
        internal_crash(sig, code, 0, rip);
    }
    record_info(sig, &copy, code == libc::SI_TKILL);
    arrived(ctx);
}

/// `CLD_EXITED`, `CLD_KILLED`, `CLD_DUMPED`: a child's end (not a stop or a continue, which are
/// always `SIGCHLD`).
fn is_child_end(code: i32) -> bool {
    matches!(code, 1..=3)
}

/// Children whose exit signal is not `SIGCHLD` (`clone` with another `CSIGNAL`): `pid << 8 |
/// signal` per slot, 0 when free. Lock-free, so the host signal handler can read it.
static EXIT_SIGNALS: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];

/// Child `pid` ends with `signal` (0: no signal) rather than `SIGCHLD`. `false` if the table
/// is full (the child then ends with `SIGCHLD`).
pub fn set_exit_signal(pid: i32, signal: i32) -> bool {
    let v = (pid as u64) << 8 | (signal as u64 & 0xff);
    EXIT_SIGNALS
        .iter()
        .any(|s| s.compare_exchange(0, v, Ordering::SeqCst, Ordering::SeqCst).is_ok())
}

/// The exit signal of child `pid` if it is not `SIGCHLD`, forgetting it (a child ends once).
/// Async-signal-safe.
fn take_exit_signal(pid: i32) -> Option<i32> {
    EXIT_SIGNALS.iter().find_map(|s| {
        let v = s.load(Ordering::SeqCst);
        (v != 0
            && (v >> 8) as i32 == pid
            && s.compare_exchange(v, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok())
        .then_some((v & 0xff) as i32)
    })
}

/// A forked child has no children yet: its copy of the exit-signal table is its parent's.
pub fn forget_exit_signals() {
    for s in &EXIT_SIGNALS {
        s.store(0, Ordering::SeqCst);
    }
}

/// A program signal's siginfo as the program is to see it, and whether it is one the runtime
/// sent for the program's `tgkill` of one of its threads ([`send_to_own_thread`]): that one
/// shows what the kernel's `tgkill` would have given. Async-signal-safe.
fn program_info(words: &[u64]) -> ([u64; 16], bool) {
    let mut copy = [0u64; 16];
    copy.copy_from_slice(&words[..16]);
    let (code, pid, value) = info_fields(words);
    // SAFETY: getpid is async-signal-safe.
    let marked =
        code == libc::SI_QUEUE && value == PROGRAM_TKILL && pid == unsafe { libc::getpid() };
    if marked {
        copy[1] = (copy[1] & !0xffff_ffff) | u64::from(libc::SI_TKILL as u32);
        copy[3] = 0;
    }
    (copy, marked)
}

/// Records one arrival of `sig` with siginfo `words` for the program (async-signal-safe; call
/// with host signals blocked).
fn record_info(sig: i32, words: &[u64; 16], thread: bool) {
    for (slot, w) in INFO[sig as usize].iter().zip(words) {
        slot.store(*w, Ordering::Relaxed);
    }
    if sig >= SIGRTMIN_KERNEL {
        RTQ[sig as usize].push(words);
    }
    record(sig, thread);
}

/// A kick signal the runtime did not send (dune's [`dune::ForeignKickHook`]): the program's.
fn on_foreign_kick(info: &[u8; 128], ctx: *mut libc::c_void) {
    dune::note_host_signal();
    let mut words = [0u64; 16];
    for (w, c) in words.iter_mut().zip(info.chunks_exact(8)) {
        *w = u64::from_ne_bytes(c.try_into().unwrap());
    }
    let (code, _, _) = info_fields(&words);
    let (copy, marked) = program_info(&words);
    with_signals_blocked(|_| record_info(kick_signal(), &copy, marked || code == libc::SI_TKILL));
    arrived(ctx);
}

/// Sends `sig` to thread `tid` of this process for the program (its `tgkill`/`tkill`), marked
/// (`PROGRAM_TKILL`) so that the receiving supervisor thread records it as the program's,
/// with `si_code` `SI_TKILL` as the kernel's `tgkill` would give.
pub fn send_to_own_thread(tid: i32, sig: i32) -> SysResult {
    let mut info = [0u8; 128];
    info[0..4].copy_from_slice(&sig.to_ne_bytes());
    info[8..12].copy_from_slice(&libc::SI_QUEUE.to_ne_bytes());
    info[16..20].copy_from_slice(&pid().to_ne_bytes());
    // SAFETY: getuid cannot fail.
    info[20..24].copy_from_slice(&unsafe { libc::getuid() }.to_ne_bytes());
    info[24..32].copy_from_slice(&PROGRAM_TKILL.to_ne_bytes());
    // SAFETY: rt_tgsigqueueinfo reads 128 bytes of siginfo we own; it signals a thread of this
    // process only (tgid = our pid).
    let r = unsafe { libc::syscall(libc::SYS_rt_tgsigqueueinfo, pid(), tid, sig, info.as_ptr()) };
    ret(if r == -1 { -(i64::from(Errno::last().0)) } else { r })
}

/// Marks `sig` pending (for the calling thread or the process), counting instances of
/// real-time signals. Async-signal-safe.
fn record(sig: i32, thread: bool) {
    crate::syscall::signalfd::notify(sig);
    let bit = 1u64 << (sig - 1);
    let rt = sig >= SIGRTMIN_KERNEL;
    if thread {
        if rt {
            THREAD_COUNT.with(|c| c[sig as usize].set(c[sig as usize].get() + 1));
        }
        THREAD_PENDING.with(|p| p.set(p.get() | bit));
    } else {
        if rt {
            PROCESS_COUNT[sig as usize].fetch_add(1, Ordering::SeqCst);
        }
        PROCESS_PENDING.fetch_or(bit, Ordering::SeqCst);
    }
}

extern "C" fn on_interrupt(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid 128-byte siginfo to an SA_SIGINFO handler.
    let words = unsafe { std::slice::from_raw_parts(info.cast::<u64>(), 16) };
    let (code, pid, _) = info_fields(words);
    if from_self(code, pid, true) {
        // The runtime's own (`Process::kick_other_threads`; the program's calls that would
        // send this number to this process are refused): it only ends a blocking call, or
        // keeps one from starting.
        return arrived(ctx);
    }
    // From elsewhere (another process's kill, sigqueue, tgkill, SIGIO): the program's signal.
    dune::note_host_signal();
    let (copy, marked) = program_info(words);
    record_info(sig, &copy, marked || code == libc::SI_TKILL);
    arrived(ctx);
}

/// The signals the supervisor itself can crash with (a fault of its own, `abort`): the host
/// always catches them, whatever the program's disposition, so that such a crash is reported
/// as the supervisor's ([`internal_crash`]); one the program ignores is discarded at delivery
/// instead.
fn crash_signal(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP | libc::SIGABRT
    )
}

/// Extra flags of the host handler for `sig`: the fault signals run on the thread's
/// alternate stack (Rust's runtime gives every thread one), so a stack overflow of the
/// supervisor is reported too.
fn handler_flags(sig: i32) -> i32 {
    let fault =
        matches!(sig, libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP);
    if fault { libc::SA_ONSTACK } else { 0 }
}

/// Installs the supervisor's handler for every signal a program may receive: all but SIGKILL,
/// SIGSTOP and the two signals the runtime itself uses. Called once at start-up. Returns the
/// signals that were ignored (`SIG_IGN`) when the sandbox started: the program inherits those as
/// ignored, like a program started with `exec` (they are left ignored on the host).
pub fn install_host_signal_handlers() -> u64 {
    let mut ignored = 0u64;
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || sig == kick_signal() {
            continue;
        }
        // SAFETY: querying a disposition writes only `old`.
        let was_ignored = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut old);
            old.sa_sigaction == libc::SIG_IGN
        };
        if was_ignored && sig != interrupt_signal() {
            ignored |= 1u64 << (sig - 1);
            if !crash_signal(sig) {
                continue;
            }
        }
        // SAFETY: zeroed sigaction is a valid start; both handlers are async-signal-safe
        // (atomics, const thread-local Cells, write, getpid; fork/raise/_exit on a crash).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = if sig == interrupt_signal() {
                on_interrupt as *const () as usize
            } else {
                on_host_signal as *const () as usize
            };
            sa.sa_flags = libc::SA_SIGINFO | handler_flags(sig);
            libc::sigfillset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    dune::set_foreign_kick_hook(on_foreign_kick);
    // Unblock them all in this (the main) thread; threads created later inherit the mask.
    // SAFETY: only changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
    ignored
}

/// Mirrors a program disposition on the host where that is more faithful than recording: a
/// signal the program ignores (`SIG_IGN`, or `SIG_DFL` whose default is to ignore) is ignored
/// by the host too, so it does not interrupt blocking calls and, for `SIGCHLD` set to
/// `SIG_IGN`, children are reaped automatically as the program asked. Everything else is caught
/// and recorded. `SIGCHLD` at `SIG_DFL` stays caught (host `SIG_IGN` would auto-reap).
pub fn mirror_disposition(sig: i32, ignore: bool, nocldwait: bool) {
    if sig == libc::SIGKILL
        || sig == libc::SIGSTOP
        || sig == CHECKPOINT_SIGNAL.load(Ordering::Relaxed)
        || sig == kick_signal()
        || sig == interrupt_signal()
    {
        return;
    }
    let ignore = ignore && !crash_signal(sig);
    // SAFETY: zeroed sigaction is a valid start; the handler is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = if ignore { libc::SIG_IGN } else { on_host_signal as *const () as usize };
        sa.sa_flags = if ignore { 0 } else { libc::SA_SIGINFO | handler_flags(sig) };
        if nocldwait && sig == libc::SIGCHLD {
            // SA_NOCLDWAIT: children are reaped by the kernel, as the program asked.
            sa.sa_flags |= libc::SA_NOCLDWAIT;
        }
        libc::sigfillset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// `--checkpoint-on`'s signal (0: none) and the socket its arrival is announced on.
static CHECKPOINT_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
static CHECKPOINT_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Makes `sig`, sent by another process, a checkpoint request: the host handler writes a byte
/// to the socket `fd` (the runtime's) instead of recording the signal for the program. The
/// handler is installed even where the sandbox started with `sig` ignored.
pub fn set_checkpoint_signal(sig: i32, fd: i32) {
    CHECKPOINT_FD.store(fd, Ordering::SeqCst);
    CHECKPOINT_SIGNAL.store(sig, Ordering::SeqCst);
    // SAFETY: zeroed sigaction is a valid start; the handler is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_host_signal as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigfillset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// Waits until a byte arrives on the socket `fd` (blocking; `EINTR` is retried). `false` when
/// the socket is gone.
pub fn wait_poke(fd: i32) -> bool {
    let mut b = [0u8; 64];
    loop {
        // SAFETY: receives into a local buffer of the length given.
        let r = unsafe { libc::recv(fd, b.as_mut_ptr().cast(), b.len(), 0) };
        if r > 0 {
            return true;
        }
        if r == 0 || Errno::last().0 != libc::EINTR {
            return false;
        }
    }
}

/// A Unix stream socket pair, both ends close-on-exec and blocking.
pub fn socket_pair() -> Result<(i32, i32), Errno> {
    let mut fds = [0i32; 2];
    let ty = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for two descriptors.
    if unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) } < 0 {
        return Err(Errno::last());
    }
    Ok((fds[0], fds[1]))
}

/// The recorded signals, without taking them: one `(signal, siginfo)` per pending instance,
/// of the calling thread (`thread`) or of the process. For a checkpoint, with the program
/// stopped. A queued real-time signal's instances take their values from its queue in order.
pub fn peek_pending(thread: bool) -> Vec<(i32, [u8; 128])> {
    let set = if thread {
        THREAD_PENDING.with(Cell::get)
    } else {
        PROCESS_PENDING.load(Ordering::SeqCst)
    };
    let mut out = Vec::new();
    for sig in 1..=64i32 {
        if set & (1u64 << (sig - 1)) == 0 {
            continue;
        }
        let mut info = [0u8; 128];
        for (i, slot) in INFO[sig as usize].iter().enumerate() {
            info[i * 8..i * 8 + 8].copy_from_slice(&slot.load(Ordering::Relaxed).to_ne_bytes());
        }
        if sig < SIGRTMIN_KERNEL {
            out.push((sig, info));
            continue;
        }
        let n = if thread {
            THREAD_COUNT.with(|c| c[sig as usize].get())
        } else {
            PROCESS_COUNT[sig as usize].load(Ordering::SeqCst)
        }
        .max(1);
        let queued: Vec<[u8; 128]> = with_signals_blocked(|_| {
            let q = &RTQ[sig as usize];
            q.locked(|| {
                let (h, len) = (q.head.load(Ordering::Relaxed), q.len.load(Ordering::Relaxed));
                (0..len)
                    .map(|k| {
                        let mut b = [0u8; 128];
                        let slot = &q.slots[(h + k) as usize % RT_QUEUE];
                        for (i, w) in slot.iter().enumerate() {
                            b[i * 8..i * 8 + 8]
                                .copy_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes());
                        }
                        b
                    })
                    .collect()
            })
        });
        for k in 0..n as usize {
            out.push((sig, queued.get(k).copied().unwrap_or(info)));
        }
    }
    out
}

/// A listening Unix stream socket bound to the abstract name `name` (close-on-exec), its
/// descriptor in the runtime's window. Call before the program runs (the descriptor is
/// created at the program's lowest free number first).
pub fn abstract_listener(name: &[u8]) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::fd::{FromRawFd, IntoRawFd};
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    let l = std::os::unix::net::UnixListener::bind_addr(&addr)?;
    l.set_nonblocking(true)?;
    let fd = crate::fdwin::window().place(l.into_raw_fd())?;
    crate::fdwin::add_runtime_file(fd)?;
    // SAFETY: `fd` was just made by moving the listener's descriptor; nothing else owns it.
    Ok(unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) })
}

/// Waits for a connection on `l` (from [`abstract_listener`]) and accepts it with the
/// window's gate held, so that the new descriptor, which the kernel puts at the program's
/// lowest free number, is in the window before any program call can name it.
pub fn accept_in_window(
    l: &std::os::unix::net::UnixListener,
) -> io::Result<std::os::unix::net::UnixStream> {
    use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
    loop {
        let mut p = libc::pollfd { fd: l.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: polls one pollfd we own.
        let r = unsafe { libc::poll(&mut p, 1, -1) };
        if r < 0 && Errno::last().0 != libc::EINTR {
            return Err(io::Error::last_os_error());
        }
        if r <= 0 {
            continue;
        }
        let gate = crate::fdwin::window().creating();
        let (s, _) = match l.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        let fd = crate::fdwin::window().place(s.into_raw_fd())?;
        // No name opens it (`/proc/self/fd/N` through a symlink, say) while it is served.
        crate::fdwin::set_transient_runtime_file(Some(fd));
        drop(gate);
        // SAFETY: `fd` was just made by moving the accepted socket's descriptor; nothing else
        // owns it.
        let s = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
        s.set_nonblocking(false)?;
        return Ok(s);
    }
}

/// `SO_PEERCRED` of a connected Unix socket: the peer's pid and uid.
pub fn peer_cred(fd: i32) -> Option<(i32, u32)> {
    let mut c = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED writes a `struct ucred` of the length given.
    let r = unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERCRED, (&raw mut c).cast(), &mut len)
    };
    (r == 0).then_some((c.pid, c.uid))
}

/// The real user id of the supervisor.
pub fn getuid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

/// `getitimer(which)`: (interval, value), each as (seconds, microseconds).
pub fn getitimer(which: i32) -> Option<[i64; 4]> {
    // SAFETY: getitimer writes one `struct itimerval` we own.
    let mut v: libc::itimerval = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::getitimer(which, &mut v) } < 0 {
        return None;
    }
    Some([v.it_interval.tv_sec, v.it_interval.tv_usec, v.it_value.tv_sec, v.it_value.tv_usec])
}

/// `setitimer(which, ...)` with (interval, value) as [`getitimer`] gives them.
pub fn setitimer(which: i32, t: [i64; 4]) -> Result<(), Errno> {
    let tv = |sec: i64, usec: i64| libc::timeval { tv_sec: sec, tv_usec: usec };
    let v = libc::itimerval { it_interval: tv(t[0], t[1]), it_value: tv(t[2], t[3]) };
    // SAFETY: setitimer reads one `struct itimerval` we own; no old value is asked for.
    if unsafe { libc::setitimer(which, &v, std::ptr::null_mut()) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Whether descriptors `a` and `b` of this process share one open file description (`kcmp`
/// with `KCMP_FILE`).
pub fn same_description(a: i32, b: i32) -> bool {
    let me = pid();
    // SAFETY: kcmp compares two descriptors of this very process; it touches no memory.
    unsafe { libc::syscall(libc::SYS_kcmp, me, me, 0, a, b) == 0 }
}

/// A new pipe, both ends close-on-exec: (read end, write end).
pub fn pipe_cloexec() -> Result<(i32, i32), Errno> {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(Errno::last());
    }
    Ok((fds[0], fds[1]))
}

/// The bytes waiting in the pipe whose read end is `r`, taken out and written back through
/// its write end `w` (with the program stopped: nothing else reads or writes meanwhile).
pub fn pipe_contents(r: i32, w: i32) -> Result<Vec<u8>, Errno> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes an int.
    if unsafe { libc::ioctl(r, libc::FIONREAD, &mut n) } < 0 {
        return Err(Errno::last());
    }
    let mut buf = vec![0u8; n.max(0) as usize];
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reads into the part of our buffer not yet filled; as many bytes as
        // FIONREAD said are there, so the read does not block.
        let r = unsafe { libc::read(r, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if r <= 0 {
            return Err(Errno::last());
        }
        got += r as usize;
    }
    write_all(w, &buf)?;
    Ok(buf)
}

/// Writes all of `b` to `fd`.
pub fn write_all(fd: i32, b: &[u8]) -> Result<(), Errno> {
    let mut done = 0;
    while done < b.len() {
        // SAFETY: writes from our buffer.
        let r = unsafe { libc::write(fd, b[done..].as_ptr().cast(), b.len() - done) };
        if r < 0 {
            if Errno::last().0 == libc::EINTR {
                continue;
            }
            return Err(Errno::last());
        }
        done += r as usize;
    }
    Ok(())
}

/// `F_GETPIPE_SZ`.
pub fn pipe_size(fd: i32) -> Option<i32> {
    // SAFETY: fcntl reads no memory.
    let r = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    (r > 0).then_some(r)
}

/// `F_SETPIPE_SZ` (best effort).
pub fn set_pipe_size(fd: i32, size: i32) {
    // SAFETY: fcntl reads no memory.
    unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, size) };
}

/// `F_SETFL` (the status flags `fcntl` can change: `O_APPEND`, `O_NONBLOCK`, ...).
pub fn set_status_flags(fd: i32, flags: i32) -> Result<(), Errno> {
    // SAFETY: fcntl reads no memory.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Sets the process's umask; returns the previous one.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask has no preconditions and cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// `lseek(fd, offset, whence)`.
pub fn lseek(fd: i32, offset: i64, whence: i32) -> Result<u64, Errno> {
    // SAFETY: lseek touches no memory.
    let r = unsafe { libc::lseek(fd, offset, whence) };
    if r < 0 { Err(Errno::last()) } else { Ok(r as u64) }
}

/// `dup3(from, to)` with `O_CLOEXEC` as asked (`from == to`: only the flag is set).
pub fn dup_onto(from: i32, to: i32, cloexec: bool) -> Result<(), Errno> {
    // SAFETY: dup3/fcntl touch no memory; the caller owns both numbers.
    let r = unsafe {
        if from == to {
            libc::fcntl(to, libc::F_SETFD, if cloexec { libc::FD_CLOEXEC } else { 0 })
        } else {
            libc::dup3(from, to, if cloexec { libc::O_CLOEXEC } else { 0 })
        }
    };
    if r < 0 { Err(Errno::last()) } else { Ok(()) }
}

/// Signals recorded for the calling thread and for the process, not yet taken.
pub fn pending_signals() -> u64 {
    THREAD_PENDING.with(Cell::get) | PROCESS_PENDING.load(Ordering::SeqCst)
}

/// Takes one instance of `sig` out of the recorded sets (thread first) and returns its
/// `siginfo_t`. Returns `None` if it was not pending. Call with host signals blocked or from the
/// thread's own context only (the thread set is this thread's).
pub fn take_signal(sig: i32) -> Option<[u8; 128]> {
    let bit = 1u64 << (sig - 1);
    let rt = sig >= SIGRTMIN_KERNEL;
    let mine = THREAD_PENDING.with(|p| {
        let v = p.get();
        if v & bit == 0 {
            return false;
        }
        let left = if rt {
            THREAD_COUNT.with(|c| {
                let n = c[sig as usize].get().saturating_sub(1);
                c[sig as usize].set(n);
                n
            })
        } else {
            0
        };
        if left == 0 {
            p.set(v & !bit);
        }
        true
    });
    let process = !mine && {
        if PROCESS_PENDING.load(Ordering::SeqCst) & bit == 0 {
            false
        } else {
            let left = if rt {
                PROCESS_COUNT[sig as usize].fetch_sub(1, Ordering::SeqCst).saturating_sub(1)
            } else {
                0
            };
            if left == 0 {
                PROCESS_PENDING.fetch_and(!bit, Ordering::SeqCst);
                // An instance recorded meanwhile keeps the signal pending.
                if rt && PROCESS_COUNT[sig as usize].load(Ordering::SeqCst) > 0 {
                    PROCESS_PENDING.fetch_or(bit, Ordering::SeqCst);
                }
            }
            true
        }
    };
    if !mine && !process {
        return None;
    }
    if rt && let Some(info) = with_signals_blocked(|_| RTQ[sig as usize].pop()) {
        return Some(info);
    }
    let mut out = [0u8; 128];
    for (i, slot) in INFO[sig as usize].iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&slot.load(Ordering::Relaxed).to_ne_bytes());
    }
    Some(out)
}

/// Forgets every pending instance of `sig` (the program set it to be ignored; signal(7): a
/// pending signal whose disposition becomes "ignore" is discarded). The process set, and the
/// calling thread's.
pub fn discard_signal(sig: i32) {
    let bit = 1u64 << (sig - 1);
    with_signals_blocked(|_| RTQ[sig as usize].clear());
    PROCESS_COUNT[sig as usize].store(0, Ordering::SeqCst);
    PROCESS_PENDING.fetch_and(!bit, Ordering::SeqCst);
    THREAD_COUNT.with(|c| c[sig as usize].set(0));
    THREAD_PENDING.with(|p| p.set(p.get() & !bit));
}

/// Records `sig` as if the host had delivered it (`info` as given): for the calling thread
/// when `thread`, else for the process (any thread not blocking it takes it).
pub fn post_signal(sig: i32, info: &[u8; 128], thread: bool) {
    let words: Vec<u64> =
        info.chunks_exact(8).map(|c| u64::from_ne_bytes(c.try_into().unwrap())).collect();
    for (slot, w) in INFO[sig as usize].iter().zip(&words) {
        slot.store(*w, Ordering::Relaxed);
    }
    with_signals_blocked(|_| {
        if sig >= SIGRTMIN_KERNEL {
            RTQ[sig as usize].push(&words);
        }
        record(sig, thread);
    });
}

/// Clears every recorded signal (a forked child starts with none pending). Only for a freshly
/// forked child, with host signals blocked.
pub fn clear_pending() {
    PROCESS_PENDING.store(0, Ordering::SeqCst);
    for c in &PROCESS_COUNT {
        c.store(0, Ordering::SeqCst);
    }
    THREAD_PENDING.with(|p| p.set(0));
    THREAD_COUNT.with(|c| c.iter().for_each(|x| x.set(0)));
    // Called in a forked child, where only this thread exists: a lock another parent thread
    // held at the fork is released by force.
    for q in &RTQ {
        q.lock.store(false, Ordering::Release);
        q.clear();
    }
}

/// Runs `f` with every host signal blocked in this thread, passing the thread's usual mask
/// with the kick signal allowed ([`dune::allow_kick`]): `f` checks the recorded signals and
/// then makes a waiting call (ppoll, pselect6, epoll_pwait) with that mask, which the kernel
/// installs atomically for the wait. A signal that arrives after the check therefore
/// interrupts the wait instead of being missed.
pub fn with_signals_blocked<T>(f: impl FnOnce(&libc::sigset_t) -> T) -> T {
    // SAFETY: sigfillset/pthread_sigmask on local sets; only this thread's mask changes, and it
    // is restored before returning.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        let mut wait = old;
        dune::allow_kick(&mut wait);
        let r = f(&wait);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        r
    }
}

/// Whether descriptor `fd` is open on a regular file (`fstat`; false on any error).
pub fn is_regular_file(fd: u64) -> bool {
    let Ok(fd) = i32::try_from(fd) else { return false };
    // SAFETY: fstat writes only the local `struct stat`.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG
    }
}

/// The file type (`st_mode & S_IFMT`) of descriptor `fd` (`fstat`; `None` on any error).
pub fn file_type(fd: u64) -> Option<u32> {
    let fd = i32::try_from(fd).ok()?;
    // SAFETY: fstat writes only the local `struct stat`.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some(st.st_mode & libc::S_IFMT)
    }
}

/// Sleeps until a host signal arrives or `timeout` (None: forever) passes, installing `mask`
/// for the sleep (from [`with_signals_blocked`]). Returns false on timeout.
pub fn sleep_with_mask(timeout: Option<libc::timespec>, mask: &libc::sigset_t) -> bool {
    // SAFETY: ppoll with no descriptors, a valid (or null) timeout and a valid mask only sleeps.
    let r = unsafe {
        libc::ppoll(
            std::ptr::null_mut(),
            0,
            timeout.as_ref().map_or(std::ptr::null(), |t| t as *const _),
            mask,
        )
    };
    r < 0
}

/// `tgkill(getpid(), tid, sig)`.
pub fn tgkill(tid: i32, sig: i32) {
    // SAFETY: signals a thread of this process.
    unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, sig) };
}

/// Carries out a program's default stop action for `sig` on the whole sandbox by letting the
/// host kernel take `sig` itself with its default action, so that its rules apply: SIGTSTP,
/// SIGTTIN and SIGTTOU are discarded in an orphaned process group (kernel/signal.c,
/// `get_signal`), and the parent sees the signal that stopped it (`WSTOPSIG`).
pub fn stop_self(sig: i32) {
    if sig == libc::SIGSTOP {
        // SAFETY: no memory is involved.
        unsafe { libc::kill(libc::getpid(), libc::SIGSTOP) };
        return;
    }
    // SAFETY: sigaction/pthread_sigmask on local structures; the previous disposition and
    // mask are restored before returning. A thread-directed signal to oneself is delivered
    // before tgkill returns (on the way back from the system call).
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, &dfl, &mut old);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, &mut mask);
        libc::syscall(libc::SYS_tgkill, libc::getpid(), libc::syscall(libc::SYS_gettid), sig);
        libc::pthread_sigmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
        libc::sigaction(sig, &old, std::ptr::null_mut());
    }
}

/// Wakes `n` waiters of the futex word at program address `addr` (validated by the caller).
pub fn futex_wake(addr: u64, n: i32) {
    // SAFETY: FUTEX_WAKE only reads the address to hash it; the caller checked it lies in the
    // program range.
    unsafe { libc::syscall(libc::SYS_futex, addr, libc::FUTEX_WAKE, n, 0, 0, 0) };
}

/// `fork()` of the supervisor (glibc's wrapper, so its atfork handlers run).
pub fn fork() -> Result<i32, Errno> {
    // SAFETY: the caller holds every supervisor lock across the call, so the child cannot
    // inherit one locked by a thread that does not exist there.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        PID.store(0, std::sync::atomic::Ordering::Relaxed);
    }
    if pid < 0 { Err(Errno::last()) } else { Ok(pid) }
}

/// Whether the calling thread has capability `cap` (`linux/capability.h` number) in its
/// effective set (`capget`, version 3).
pub fn has_effective_cap(cap: u32) -> bool {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header { version: 0x2008_0522, pid: 0 };
    let mut d = [Data::default(); 2];
    // SAFETY: capget writes a header and two data words of the layout above.
    let r = unsafe { libc::syscall(libc::SYS_capget, &raw mut h, d.as_mut_ptr()) };
    r == 0 && cap < 64 && d[(cap / 32) as usize].effective & (1 << (cap % 32)) != 0
}

/// Sends one byte to `fd` (the runtime's end of a signalfd's socket pair), ignoring a full
/// buffer and a peer that is gone (`MSG_NOSIGNAL`: no `SIGPIPE`). Async-signal-safe.
pub fn poke(fd: i32) {
    let b = 1u8;
    // SAFETY: sends one byte from a local; `send` is async-signal-safe.
    unsafe { libc::send(fd, (&raw const b).cast(), 1, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
}

/// Empties the socket `fd` without blocking (as many bytes as `FIONREAD` says are there).
pub fn drain(fd: i32) {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes an int.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) } < 0 || n <= 0 {
        return;
    }
    let mut buf = vec![0u8; n as usize];
    // SAFETY: receives at most `n` bytes, which are there, into a local buffer.
    unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
}

/// A Unix stream socket pair for a signalfd: (the program's end, the runtime's end). The
/// program's end is shut down for writing, close-on-exec and non-blocking as asked; the
/// runtime's is close-on-exec and non-blocking.
pub fn signal_socket_pair(cloexec: bool, nonblock: bool) -> Result<(i32, i32), Errno> {
    let mut fds = [0i32; 2];
    let ty = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for two descriptors.
    if unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) } < 0 {
        return Err(Errno::last());
    }
    let (p, r) = (fds[0], fds[1]);
    // SAFETY: fcntl and shutdown on the two descriptors just created.
    unsafe {
        libc::shutdown(p, libc::SHUT_WR);
        if !cloexec {
            libc::fcntl(p, libc::F_SETFD, 0);
        }
        if nonblock {
            libc::fcntl(p, libc::F_SETFL, libc::O_NONBLOCK);
        }
        libc::fcntl(r, libc::F_SETFL, libc::O_NONBLOCK);
    }
    Ok((p, r))
}

/// A real non-blocking signalfd with an empty mask (for probing the host's), or `None`.
pub fn host_signalfd_probe() -> Option<i32> {
    let mask = 0u64;
    let flags = libc::SFD_NONBLOCK | libc::SFD_CLOEXEC;
    // SAFETY: signalfd4 reads 8 bytes of mask from a local.
    let fd = unsafe { libc::syscall(libc::SYS_signalfd4, -1, &raw const mask, 8, flags) };
    (fd >= 0).then_some(fd as i32)
}

/// `readv` of `fd` into two 100-byte vectors fails with `EAGAIN` (rather than another error).
pub fn readv_would_block(fd: i32) -> bool {
    let mut a = [0u8; 100];
    let mut b = [0u8; 100];
    let iov = [
        libc::iovec { iov_base: a.as_mut_ptr().cast(), iov_len: a.len() },
        libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() },
    ];
    // SAFETY: reads into two local buffers the vectors describe.
    let r = unsafe { libc::readv(fd, iov.as_ptr(), 2) };
    r < 0 && Errno::last().0 == libc::EAGAIN
}

/// Whether the peer of the connected socket `fd` has closed (`POLLHUP`).
pub fn peer_gone(fd: i32) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
    // SAFETY: polls one descriptor without waiting.
    unsafe { libc::poll(&mut p, 1, 0) == 1 && p.revents & libc::POLLHUP != 0 }
}

/// `(st_mode, st_dev, st_ino)` of the file open on `fd`, or `None`.
pub fn file_identity(fd: i32) -> Option<(u32, u64, u64)> {
    // SAFETY: `st` is a plain C struct the kernel fills; zeroed is valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable and sized for `struct stat`.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_mode, st.st_dev, st.st_ino))
}

/// The file status flags (`F_GETFL`) of `fd`, or `None` if it is not open.
pub fn fd_status_flags(fd: i32) -> Option<i32> {
    // SAFETY: F_GETFL reads flags only.
    let r = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    (r >= 0).then_some(r)
}

/// The open descriptors below `floor` (from `/proc/self/fd`; for a process with one thread).
pub fn open_fds_below(floor: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&fd| fd < floor && is_open_fd(fd))
        .collect()
}

fn is_open_fd(fd: i32) -> bool {
    fd_flags(fd).is_some()
}

/// Puts `new` over the program's descriptor `target` (`dup3`), with its close-on-exec and
/// non-blocking state as given.
pub fn replace_fd(new: i32, target: i32, cloexec: bool, nonblock: bool) {
    // SAFETY: the caller (a forked child, one thread) replaces a descriptor of the program's
    // with an equivalent one; no memory is touched.
    unsafe {
        if libc::dup3(new, target, if cloexec { libc::O_CLOEXEC } else { 0 }) >= 0 && nonblock {
            let fl = libc::fcntl(target, libc::F_GETFL);
            libc::fcntl(target, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
}

/// `dup3(from, to, O_CLOEXEC)`, retried on `EINTR` and on `EBUSY` (the kernel was installing a
/// descriptor at `to` for a racing call).
///
/// # Safety
/// `to` must be a number the caller owns: whatever it held is closed.
pub unsafe fn dup3_cloexec(from: i32, to: i32) -> io::Result<()> {
    loop {
        // SAFETY: caller's contract; dup3 touches no memory.
        let r = unsafe { libc::dup3(from, to, libc::O_CLOEXEC) };
        if r >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) {
            return Err(e);
        }
    }
}

/// Closes a descriptor of the supervisor's.
pub fn close(fd: i32) {
    // SAFETY: the caller owns `fd`.
    unsafe { libc::close(fd) };
}

/// The vfork hand-off: a word in a shared anonymous page of the supervisor's own (outside the
/// program range, so no descriptor and nothing the program can name), set to 1 by the child
/// when it calls `execve` or exits, and waited for by the parent. A child that dies without
/// saying so (killed, crashed) is noticed by the parent through `waitid(WNOWAIT)`.
#[derive(Debug)]
pub struct VforkDone {
    word: std::ptr::NonNull<std::sync::atomic::AtomicU32>,
}

// SAFETY: the page is only accessed through the atomic, from any thread.
unsafe impl Send for VforkDone {}
// SAFETY: as above.
unsafe impl Sync for VforkDone {}

impl VforkDone {
    /// A fresh hand-off (one page, shared with a child forked afterwards).
    pub fn new() -> Result<VforkDone, Errno> {
        let flags = libc::MAP_SHARED | libc::MAP_ANONYMOUS;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: a new anonymous mapping where the kernel chooses (never the program range,
        // which is reserved); nothing else refers to it.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), 4096, prot, flags, -1, 0) };
        if p == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let word = std::ptr::NonNull::new(p.cast()).ok_or(Errno::ENOMEM)?;
        Ok(VforkDone { word })
    }

    fn atomic(&self) -> &std::sync::atomic::AtomicU32 {
        // SAFETY: the page stays mapped as long as `self` lives; zero-filled is a valid value.
        unsafe { self.word.as_ref() }
    }

    /// The child: the parent may go on (`execve` succeeded, or the child is exiting).
    pub fn release(&self) {
        self.atomic().store(1, std::sync::atomic::Ordering::Release);
        // A shared (not FUTEX_PRIVATE) wake: the waiter is another process.
        // SAFETY: the word is a valid futex word of this process.
        unsafe {
            libc::syscall(libc::SYS_futex, self.word.as_ptr(), libc::FUTEX_WAKE, i32::MAX, 0, 0, 0)
        };
    }

    /// The parent: waits until the child `pid` releases it or is gone (exited, killed, or
    /// already reaped by another thread of the program), or `stop` says so (a fatal signal:
    /// Linux's vfork wait is killable). A host signal cuts the futex wait short, so `stop` is
    /// asked at once.
    pub fn wait(&self, pid: i32, stop: impl Fn() -> bool) {
        let ts = libc::timespec { tv_sec: 0, tv_nsec: 20_000_000 };
        while self.atomic().load(std::sync::atomic::Ordering::Acquire) == 0 && !stop() {
            // SAFETY: the word is a valid futex word; `ts` outlives the call.
            unsafe {
                libc::syscall(libc::SYS_futex, self.word.as_ptr(), libc::FUTEX_WAIT, 0, &ts, 0, 0)
            };
            // SAFETY: `info` is a plain C struct the kernel fills; zeroed is valid.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let options = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            // SAFETY: `info` is writable; WNOWAIT leaves the child to be reaped by the program.
            let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, options) };
            // SAFETY: si_pid is valid for a waitid result.
            if r < 0 || unsafe { info.si_pid() } == pid {
                return;
            }
        }
    }
}

impl Drop for VforkDone {
    fn drop(&mut self) {
        // SAFETY: the page mapped in `new`, not used after this.
        unsafe { libc::munmap(self.word.as_ptr().cast(), 4096) };
    }
}

/// The descriptor flags (`F_GETFD`) of `fd`, or None if it is not open.
pub fn fd_flags(fd: i32) -> Option<i32> {
    // SAFETY: F_GETFD reads flags only.
    let r = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    (r >= 0).then_some(r)
}

/// Gives the calling thread a descriptor table of its own (`unshare(CLONE_FILES)`) and closes
/// everything it copied: what the thread opens from now on is in no table the program can
/// name (see [`crate::hostread`]).
pub fn private_descriptor_table() -> std::io::Result<()> {
    // SAFETY: unshare(CLONE_FILES) only changes which descriptor table this thread uses.
    if unsafe { libc::unshare(libc::CLONE_FILES) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the table is this thread's alone now; closing the copies touches nobody else's
    // descriptors (the files stay open through the shared table).
    if unsafe { libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `fstat(fd)`. Errors: `EBADF`.
pub fn fstat(fd: i32) -> Result<libc::stat, Errno> {
    // SAFETY: `st` is a plain C struct the kernel fills; zeroed is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable and sized for `struct stat`.
    if unsafe { libc::fstat(fd, &mut st) } < 0 {
        return Err(Errno::last());
    }
    Ok(st)
}

/// `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)`. Errors: the kernel's.
pub fn fstatat_nofollow(dirfd: i32, name: &std::ffi::CStr) -> Result<libc::stat, Errno> {
    // SAFETY: `st` is a plain C struct the kernel fills; zeroed is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated and `st` writable, both alive across the call.
    if unsafe { libc::fstatat(dirfd, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } < 0 {
        return Err(Errno::last());
    }
    Ok(st)
}

/// `memfd_create(name, MFD_CLOEXEC)`: an empty file of the supervisor's. Errors: the kernel's.
pub fn memfd(name: &str) -> Result<i32, Errno> {
    let c = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `c` is a NUL-terminated local string.
    let fd = unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 { Err(Errno::last()) } else { Ok(fd) }
}

/// `fcntl(fd, F_SETLK)` of the whole file with lock type `ty` (`F_RDLCK`, `F_WRLCK`,
/// `F_UNLCK`), tried again (every 200 µs, through `EINTR`) while another process holds a
/// conflicting lock, for at most `wait`. Whether the lock was set; other errors count as not
/// set (the lock is the supervisor's own, on its own file: see [`crate::nslock`]).
pub fn record_lock(fd: i32, ty: i16, wait: std::time::Duration) -> bool {
    // SAFETY: `flock` is a plain C struct; zeroed is a valid value (whole file from 0).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = ty;
    fl.l_whence = libc::SEEK_SET as i16;
    let until = std::time::Instant::now() + wait;
    loop {
        // SAFETY: `fl` is a local, initialised `struct flock`.
        let r = unsafe { libc::fcntl(fd, libc::F_SETLK, &fl) };
        if r == 0 {
            return true;
        }
        let e = Errno::last();
        if e != Errno(libc::EINTR) && e != Errno(libc::EAGAIN) && e != Errno::EACCES {
            return false;
        }
        if std::time::Instant::now() >= until {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// `kill(pid, sig)` of one process the supervisor names (a member of its own family), errors
/// ignored (it may have ended).
pub fn kill_process(pid: i32, sig: i32) {
    if pid > 0 {
        // SAFETY: signals one process by its positive pid; no memory involved.
        unsafe { libc::kill(pid, sig) };
    }
}

/// The file system type (`f_type` of `fstatfs`) of the file open on `fd`.
pub fn fs_type(fd: i32) -> Result<i64, Errno> {
    // SAFETY: `fs` is a plain C struct the kernel fills; zeroed is a valid value.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `fs` is writable and sized for `struct statfs`.
    if unsafe { libc::fstatfs(fd, &mut fs) } < 0 {
        return Err(Errno::last());
    }
    Ok(fs.f_type as i64)
}

/// What `/proc/self/fd/FD` says about descriptor `fd` (its path, `anon_inode:...`, ...).
pub fn fd_path(fd: i32) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStringExt;
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok().map(|p| p.into_os_string().into_vec())
}

/// Sets the calling host thread's name (`comm`, at most 15 bytes: longer names are cut, as
/// Linux's `__set_task_comm` cuts them).
pub fn set_thread_name(name: &[u8]) {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name[..n]);
    // SAFETY: PR_SET_NAME reads 16 bytes from `buf`, which is NUL-terminated.
    unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_line_formats_numbers_without_allocating() {
        let mut l = Line::new();
        l.text("a ").hex(0).text(" ").hex(0x10).text(" ").hex(u64::MAX).text(" ").dec(-6);
        l.text(" ").dec(0).text(" ").dec(1234567890);
        assert_eq!(
            std::str::from_utf8(l.as_bytes()).unwrap(),
            "a 0x0 0x10 0xffffffffffffffff -6 0 1234567890"
        );
        let mut long = Line::new();
        for _ in 0..300 {
            long.text("x");
        }
        assert_eq!(long.as_bytes().len(), 256);
    }

    /// A siginfo as 16 words: si_code, then `si_addr`/`si_band` and the word after it.
    fn words(code: i32, w2: u64, w3: u64) -> [u64; 16] {
        let mut w = [0u64; 16];
        w[1] = code as u32 as u64;
        w[2] = w2;
        w[3] = w3;
        w
    }

    #[test]
    fn sigio_with_a_fault_number_is_not_a_fault() {
        // SIGSEGV POLL_IN from F_SETSIG: si_band EPOLLIN|EPOLLRDNORM, si_fd 5.
        assert!(!genuine_fault(libc::SIGSEGV, &words(1, 0x41, 5), 0x1000));
        // POLL_HUP on descriptor 0.
        assert!(!genuine_fault(libc::SIGBUS, &words(6, 0x18, 0), 0x1000));
        // A real fault: SEGV_MAPERR at 0x10, SEGV_ACCERR, a #GP (SI_KERNEL).
        assert!(genuine_fault(libc::SIGSEGV, &words(1, 0x10, 0), 0x1000));
        assert!(genuine_fault(libc::SIGSEGV, &words(2, 0x7f00_0000_0000, 0), 0x1000));
        assert!(genuine_fault(libc::SIGSEGV, &words(0x80, 0, 0), 0x1000));
        assert!(genuine_fault(libc::SIGILL, &words(2, 0x40_1000, 0), 0x40_1000));
        // BUS_MCEERR_AO is asynchronous: the program's.
        assert!(!genuine_fault(libc::SIGBUS, &words(5, 0x1000, 0), 0x1000));
    }

    #[test]
    fn a_fault_that_looks_like_sigio_but_recurs_is_a_fault() {
        note_safe_point();
        // SEGV_MAPERR at 0x41 with 0 after it: looks like POLL_IN on descriptor 0.
        let w = words(1, 0x41, 0);
        let mut genuine = false;
        for _ in 0..=POLL_STREAK_MAX {
            genuine = genuine_fault(libc::SIGSEGV, &w, 0x5000);
        }
        assert!(genuine);
        // A safe point in between: file events again.
        note_safe_point();
        assert!(!genuine_fault(libc::SIGSEGV, &w, 0x5000));
    }

    #[test]
    fn marked_program_tgkill_shows_as_tgkill() {
        let me = pid();
        let mut w = words(libc::SI_QUEUE, me as u32 as u64, PROGRAM_TKILL);
        w[0] = 10;
        let (seen, marked) = program_info(&w);
        assert!(marked);
        assert_eq!(info_fields(&seen), (libc::SI_TKILL, me, 0));
        // From another process, or without the mark: as it came.
        let other = words(libc::SI_QUEUE, (me + 1) as u32 as u64, PROGRAM_TKILL);
        assert_eq!(program_info(&other), (other, false));
        let plain = words(libc::SI_QUEUE, me as u32 as u64, 42);
        assert_eq!(program_info(&plain), (plain, false));
    }
}
