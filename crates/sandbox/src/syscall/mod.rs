//! Dispatch of every system-call exit: decode → policy → validate → emulate or forward →
//! result in RAX.
//!
//! Validation rules (see `mm` for why a range check is enough for plain buffers):
//! * a buffer the kernel reads or writes must lie wholly inside the program range (or be NULL,
//!   which the kernel rejects itself);
//! * anything the kernel would read *after* the supervisor looked at it — paths, names, socket
//!   addresses, iovec arrays, msghdrs, structures holding pointers (`struct ifconf`, AIO's
//!   iocbs, `struct xattr_args`) — is first copied into supervisor memory, and the kernel is
//!   given the copy, so another thread cannot change it in between; a buffer the kernel uses
//!   after the call returns (AIO) is checked when it is handed over;
//! * a file-descriptor argument naming one of the runtime's own descriptors gets `EBADF`;
//! * a call not in the table gets `ENOSYS`.

pub(crate) mod aio;
pub(crate) mod clone;
mod confine;
pub(crate) mod emul;
pub(crate) mod exec;
pub(crate) mod ioctl;
pub mod net;
pub(crate) mod open;
pub mod paths;
pub(crate) mod prlimit;
pub mod procfs;
mod restart;
pub mod signalfd;
pub(crate) mod sockopt;
pub(crate) mod system;
pub(crate) mod sysv;
pub mod table;
pub(crate) mod tty;
pub(crate) mod xattr;

use std::ffi::CString;

use dune::Syscall;

use crate::errno::Errno;
use crate::policy::Caller;
use crate::process::{Process, Thread};
use crate::sys::{self, SysResult};
use table::{Arg, Imp, Len, Spec, TABLE};

/// An emulated system call.
pub type Handler = fn(&mut Ctx<'_>, &[u64; 6]) -> SysResult;

/// `PATH_MAX`: the longest path (with its NUL) the kernel accepts.
pub const PATH_MAX: usize = 4096;

/// How a system call ends the thread or the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `exit_group`: the whole process, with this status.
    Group(i32),
    /// `exit`: this thread (the process too if it is the last).
    Thread(i32),
}

/// What a handler works on.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The calling thread (its vCPU, signal mask, ...; `thread.proc` is the process).
    pub thread: &'a mut Thread,
    /// Set by `exit`/`exit_group`.
    pub exit: Option<Exit>,
    /// Set when the handler replaced the whole register context (`rt_sigreturn`, `execve`):
    /// no result is written to RAX.
    pub replaced: bool,
}

impl Ctx<'_> {
    /// The process.
    pub fn proc(&self) -> &Process {
        &self.thread.proc
    }
}

/// The spec for `nr`, if the call is supported.
pub fn spec(nr: u64) -> Option<&'static Spec> {
    TABLE.get(usize::try_from(nr).ok()?)?.as_ref()
}

/// Handles one system call; returns the value for RAX (a result or `-errno`).
pub fn dispatch(ctx: &mut Ctx<'_>, sc: &Syscall) -> u64 {
    // A successful execve replaces the memory its arguments point into: render them first.
    let text = if matches!(sc.nr, 59 | 322) {
        crate::trace::call_text_if_traced(ctx.proc(), sc)
    } else {
        None
    };
    let res = allowed(ctx.proc(), ctx.thread.tid, sc.nr).and_then(|()| {
        // A signalfd's read and write are the supervisor's (see signalfd.rs).
        if sc.nr == 0
            && let Some(res) = signalfd::read(ctx, &sc.args)
        {
            return res;
        }
        if sc.nr == 1
            && let Some(res) = signalfd::write(ctx, sc.args[0])
        {
            return res;
        }
        if let Some(res) = confine::gate(ctx, sc.nr, &sc.args) {
            return res;
        }
        // A call that can change where a path resolves waits for a unix bind deciding on one.
        let _ns = crate::nslock::mutates(sc.nr).then(crate::nslock::shared);
        match spec(sc.nr) {
            None => Err(Errno::ENOSYS),
            Some(spec) => restart::call(ctx, sc, spec),
        }
    });
    finish(ctx.proc(), ctx.thread.tid, sc, res, text)
}

/// The policy's system-call rule about call `nr` of program thread `tid`, if it has one: `Err`
/// with the errno of a denial (audited). One table load for a call no rule names. Network
/// rules are applied by the socket calls themselves ([`net`]), on their copied arguments.
#[inline]
fn allowed(proc: &Process, tid: i32, nr: u64) -> Result<(), Errno> {
    match proc.policy.syscall_rule(nr) {
        None => Ok(()),
        Some(rule) => {
            let name = crate::policy::syscall_names::NAMES.get(nr as usize).copied().unwrap_or("?");
            let caller = Caller { pid: std::process::id() as i32, tid };
            proc.policy.apply_syscall(caller, rule, name)
        }
    }
}

/// Traces `sc` with its outcome (for the program thread `tid`) and returns the value for RAX:
/// the result, or `-errno`. `text`: the call as the trace shows it, if rendered before.
fn finish(proc: &Process, tid: i32, sc: &Syscall, res: SysResult, text: Option<String>) -> u64 {
    // A call that did not start is traced when it is made.
    if res != Err(sys::NOT_STARTED) {
        crate::trace::syscall(proc, tid, sc, res, text);
    }
    match res {
        Ok(v) => v,
        Err(e) => (-i64::from(e.0)) as u64,
    }
}

/// Carries out `sc` for the switchless server (on its own host thread, for the program thread
/// `tid`): the same policy check, validation, copies and trace as [`dispatch`], for
/// [`crate::switchless::eligible`] calls the table forwards as they are. `None`: not here (the
/// stub then makes the call through an exit): another call, a CPU-time clock, or
/// `read`/`pread64` of anything but a regular file (which could block). The descriptor of a
/// read is duplicated first and the type checked on the duplicate, so another thread that
/// `dup2`s a pipe over it meanwhile cannot make the server block.
pub fn serve(proc: &Process, tid: i32, sc: &Syscall) -> Option<u64> {
    if !crate::switchless::eligible(sc.nr) {
        return None;
    }
    let spec = spec(sc.nr)?;
    if !matches!(spec.imp, Imp::Forward) {
        return None;
    }
    if matches!(sc.nr, 228 | 229) && !crate::switchless::thread_independent_clock(sc.args[0]) {
        return None;
    }
    let mut private = None;
    if matches!(sc.nr, 0 | 17) {
        check_fd(proc, sc.args[0]).ok()?;
        // The duplicate is the runtime's while it lives: the program cannot dup2 over it.
        let dup = crate::fdwin::window().duplicate(sc.args[0] as i32).ok()?;
        if !sys::is_regular_file(dup.raw() as u64) {
            return None;
        }
        private = Some(dup);
    }
    // Validated as the program named it; carried out on the protected duplicate.
    let replace = private.as_ref().map(|d| (0, d.raw() as u64));
    let res =
        allowed(proc, tid, sc.nr).and_then(|()| forward_as(proc, sc.nr, spec, sc.args, replace));
    drop(private);
    Some(finish(proc, tid, sc, res, None))
}

/// Checks a descriptor argument against the runtime's own descriptors.
pub fn check_fd(proc: &Process, fd: u64) -> Result<(), Errno> {
    if proc.is_runtime_fd(fd as i32) { Err(Errno::EBADF) } else { Ok(()) }
}

/// The byte length `len` designates for the call's arguments `a`; `deref` holds the supervisor
/// copies of value-result lengths ([`Len::DerefU32`]) by argument index.
fn len_of(len: Len, a: &[u64; 6], deref: &[(usize, u64, Box<u32>)]) -> Result<u64, Errno> {
    Ok(match len {
        Len::Fixed(n) => n,
        Len::Of(i) => a[i],
        Len::ArgTimes(i, size) => a[i].checked_mul(size).ok_or(Errno::EINVAL)?,
        Len::DerefU32(i) => deref.iter().find(|d| d.0 == i).map_or(0, |d| u64::from(*d.2)),
        Len::FdSet => (a[0] as i32).max(0) as u64 / 64 * 8 + 8,
    })
}

// Program memory is reached through `uaccess` only; these names stay for the handlers.
pub use crate::uaccess::{copy_cstr, copy_in, copy_out, read_u32, read_u64};

/// Validates the arguments of `spec` and performs the call on the host.
pub fn forward(proc: &Process, nr: u64, spec: &Spec, args: [u64; 6]) -> SysResult {
    forward_as(proc, nr, spec, args, None)
}

/// [`forward`] for the thread of `ctx`: under filesystem rules, every path the call resolves
/// is resolved and decided on first, and the kernel gets a path through the supervisor's
/// probe instead ([`paths`]).
pub fn forward_ctx(ctx: &Ctx<'_>, nr: u64, spec: &Spec, args: [u64; 6]) -> SysResult {
    if paths::mediated(ctx.proc()) {
        forward_checked(ctx.proc(), nr, spec, args, None, Some(ctx))
    } else {
        forward_as(ctx.proc(), nr, spec, args, None)
    }
}

/// [`forward`], validating `args` as they are but making the call with argument `i` replaced
/// by `value` when `replace` is `Some((i, value))` (a descriptor the runtime duplicated).
pub(crate) fn forward_as(
    proc: &Process,
    nr: u64,
    spec: &Spec,
    args: [u64; 6],
    replace: Option<(usize, u64)>,
) -> SysResult {
    forward_checked(proc, nr, spec, args, replace, None)
}

/// [`forward_as`], with the filesystem rules applied to the thread of `fs` when given.
fn forward_checked(
    proc: &Process,
    nr: u64,
    spec: &Spec,
    args: [u64; 6],
    replace: Option<(usize, u64)>,
    fs: Option<&Ctx<'_>>,
) -> SysResult {
    let mut a = args;
    // Probes of the paths decided on (filesystem rules), open until the call is made.
    let mut held: Vec<paths::Resolved> = Vec::new();
    let mut empty = [false; 6];
    // Copies the kernel gets instead of program memory; they must outlive the call.
    let mut strings: Vec<CString> = Vec::new();
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    // Value-result lengths (`socklen_t *`, [`Len::DerefU32`]): the kernel reads the length when
    // it fills the buffer, possibly much later (a blocking `accept`), so it gets a supervisor
    // copy and the buffer is checked against exactly the length it will use. Each entry:
    // (argument index, program address, copy); copied back after a successful call.
    let mut deref: Vec<(usize, u64, Box<u32>)> = Vec::new();
    for kind in spec.args {
        if let Arg::In(Len::DerefU32(li)) | Arg::Out(Len::DerefU32(li)) = *kind
            && args[li] != 0
        {
            let copy = Box::new(read_u32(proc, args[li])?);
            a[li] = &raw const *copy as u64;
            deref.push((li, args[li], copy));
        }
    }
    for (i, kind) in spec.args.iter().enumerate() {
        if deref.iter().any(|d| d.0 == i) {
            continue; // a length word, replaced by its copy above
        }
        match *kind {
            Arg::Int | Arg::Hex => {}
            Arg::Fd => check_fd(proc, a[i])?,
            Arg::AtFd => {
                if a[i] as i32 != libc::AT_FDCWD {
                    check_fd(proc, a[i])?
                }
            }
            Arg::Path | Arg::Str => {
                if a[i] != 0 {
                    let mut s = copy_cstr(proc, a[i], PATH_MAX)?;
                    empty[i] = s.is_empty();
                    if let (Some(ctx), Arg::Path) = (fs, kind)
                        && let Some(k) = paths::forwarded_path(ctx, nr, i, &args, &s, &mut held)?
                    {
                        s = k;
                    }
                    a[i] = s.as_ptr() as u64;
                    strings.push(s);
                }
            }
            Arg::In(len) | Arg::Out(len) | Arg::InOut(len) => {
                if a[i] != 0 {
                    let n = len_of(len, &args, &deref)?;
                    proc.check(a[i], n)?;
                }
            }
            Arg::SockAddr(li) => {
                if a[i] != 0 {
                    // sizeof(struct sockaddr_storage): the kernel refuses longer with EINVAL.
                    let n = (args[li] as u32).min(128);
                    let b = copy_in(proc, a[i], u64::from(n))?;
                    a[i] = b.as_ptr() as u64;
                    blobs.push(b);
                }
            }
        }
    }
    if let Some(ctx) = fs {
        paths::forwarded_checks(ctx, nr, &args, &empty, &held)?;
    }
    if let Some((i, value)) = replace {
        a[i] = value;
    }
    #[allow(unsafe_code)]
    // SAFETY: every pointer argument was checked above to lie in the program range or was
    // replaced by a copy in `strings`/`blobs`/`deref`, alive until after the call; descriptor
    // arguments are not the runtime's (or, with `replace`, the runtime's private duplicate of
    // a program descriptor that was checked); the table lists only calls that leave the
    // supervisor's own state alone (see table.rs).
    let r = unsafe { sys::syscall6(nr as i64, a) };
    drop((strings, blobs, held));
    if r.is_ok() {
        for (_, addr, copy) in &deref {
            // The call happened; a length word the program unmapped meanwhile only loses it
            // the updated length.
            let _ = copy_out(proc, *addr, &copy.to_ne_bytes());
        }
    }
    r
}
