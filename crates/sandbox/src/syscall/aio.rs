//! Linux AIO: `io_setup`, `io_destroy`, `io_submit`, `io_getevents`, `io_cancel`.
//!
//! The kernel reads each `struct iocb` at submission and then reads or writes its buffer
//! *asynchronously*, after `io_submit` returned, so everything is validated at submission:
//! the array of iocb pointers and every iocb are copied into supervisor memory and the kernel
//! is given the copies; each buffer must lie in the program range (a range check suffices for
//! memory the kernel writes later: the program range only ever holds program memory or the
//! reservation, see `mm`); the iovec array of `IOCB_CMD_PREADV`/`PWRITEV` is copied too (the
//! kernel imports it during the call) with every element range-checked; `aio_fildes` and, with
//! `IOCB_FLAG_RESFD`, `aio_resfd` must not be runtime descriptors. An opcode the kernel may
//! add later gets `EINVAL`, as unknown ones get from Linux.
//!
//! The kernel reports each completion with the address of the iocb it was given, our copy:
//! `io_getevents` translates it back to the program's iocb (and the copies live until then, so
//! no two requests in flight share an address). The context the host creates maps its
//! completion ring where the kernel chooses, outside the program range, with an address as
//! its id; the program gets another id instead: the address of a read-only zero page in its own
//! memory, which is what libaio and others look at to decide whether to read the ring
//! themselves (its magic number is not `AIO_RING_MAGIC`, so they make the system call).
//! Only ids handed out here are accepted, so the program cannot name the host's context
//! directly and bypass the validation.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::{Ctx, check_fd, copy_in, copy_out, read_u32, read_u64};
use crate::errno::Errno;
use crate::mm::{Kind, PAGE};
use crate::sys::{self, SysResult};

/// Calls the host kernel with already-validated arguments.
#[allow(unsafe_code)]
fn host(nr: i64, a: [u64; 6]) -> SysResult {
    // SAFETY: the callers pass the host's context ids (never the program's), supervisor copies
    // of the iocb array, the iocbs and iovec arrays (alive across the call), supervisor event
    // buffers, range-checked program timeouts, and iocbs whose buffers and descriptors were
    // validated as the module docs say.
    unsafe { sys::syscall6(nr, a) }
}

/// `struct iocb`.
const IOCB: u64 = 64;
/// `struct io_event`.
const IO_EVENT: u64 = 32;
/// `UIO_MAXIOV`.
const IOV_MAX: u64 = 1024;
/// `MAX_RW_COUNT`: the most one read or write transfers (longer ones are truncated).
const MAX_RW: u64 = 0x7fff_f000;
/// `IOCB_FLAG_RESFD`: notify the eventfd in `aio_resfd`.
const IOCB_FLAG_RESFD: u32 = 1;
/// iocbs handled per host `io_submit`.
const BATCH: usize = 64;

const IOCB_CMD_PREAD: u16 = 0;
const IOCB_CMD_PWRITE: u16 = 1;
const IOCB_CMD_FSYNC: u16 = 2;
const IOCB_CMD_FDSYNC: u16 = 3;
const IOCB_CMD_POLL: u16 = 5;
const IOCB_CMD_NOOP: u16 = 6;
const IOCB_CMD_PREADV: u16 = 7;
const IOCB_CMD_PWRITEV: u16 = 8;

/// A submitted iocb: the program's address of it, and the copy the kernel was given.
#[derive(Debug)]
struct Inflight {
    program: u64,
    _copy: Box<[u8; IOCB as usize]>,
}

/// One context, by the id the program knows.
#[derive(Debug)]
struct AioCtx {
    /// The host's context id.
    real: u64,
    /// Events the ring holds (the kernel's `nr_events`).
    capacity: u64,
    /// Requests the kernel knows by our copy's address.
    inflight: Table,
}

/// Requests in flight on one context, by the address of the kernel's copy of their iocb.
type Table = Arc<Mutex<HashMap<u64, Inflight>>>;

/// A validated copy of an iocb for the kernel, and the iovec array it points to, if any.
type IocbCopy = (Box<[u8; IOCB as usize]>, Option<Vec<libc::iovec>>);

/// The process's contexts. A forked child inherits the table, but not the host's contexts
/// (Linux's children do not inherit them either): there the host answers `EINVAL`.
static CONTEXTS: Mutex<BTreeMap<u64, AioCtx>> = Mutex::new(BTreeMap::new());

/// The host context and its in-flight table for program id `id`, or `EINVAL`.
fn lookup(id: u64) -> Result<(u64, u64, Table), Errno> {
    let t = CONTEXTS.lock().unwrap();
    let c = t.get(&id).ok_or(Errno::EINVAL)?;
    Ok((c.real, c.capacity, c.inflight.clone()))
}

/// `io_setup(nr_events, ctxp)`: `*ctxp` must be 0; receives the context's id.
pub fn io_setup(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if read_u64(ctx.proc(), a[1])? != 0 || a[0] as u32 == 0 {
        return Err(Errno::EINVAL);
    }
    let mut real = 0u64;
    host(libc::SYS_io_setup, [a[0], &raw mut real as u64, 0, 0, 0, 0])?;
    let destroy = |e| {
        let _ = host(libc::SYS_io_destroy, [real, 0, 0, 0, 0, 0]);
        Err(e)
    };
    // The ring's size gives its capacity (fs/aio.c, aio_setup_ring).
    let Some(size) = super::sysv::maps()
        .ok()
        .and_then(|m| m.iter().find(|l| l.start == real).map(|l| l.end - real))
    else {
        return destroy(Errno(libc::ENOMEM));
    };
    let capacity = size.saturating_sub(32) / IO_EVENT;
    let id = {
        let mut mm = ctx.proc().mm.lock().unwrap();
        let top = mm.mmap_top;
        let Some(at) = mm.find_free(PAGE, PAGE, top) else { return destroy(Errno(libc::ENOMEM)) };
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        match mm.map_fixed(at, PAGE, libc::PROT_READ, flags, -1, Kind::Anon) {
            Ok(at) => at,
            Err(e) => return destroy(e),
        }
    };
    if let Err(e) = copy_out(ctx.proc(), a[1], &id.to_ne_bytes()) {
        let _ = ctx.proc().mm.lock().unwrap().unmap(id, PAGE);
        return destroy(e);
    }
    let inflight = Arc::new(Mutex::new(HashMap::new()));
    CONTEXTS.lock().unwrap().insert(id, AioCtx { real, capacity, inflight });
    Ok(0)
}

/// `io_destroy(ctx)`: the host context goes (the kernel waits for what is in flight), and so
/// does the page whose address was its id, as Linux unmaps the ring.
pub fn io_destroy(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (real, _, _) = lookup(a[0])?;
    host(libc::SYS_io_destroy, [real, 0, 0, 0, 0, 0])?;
    CONTEXTS.lock().unwrap().remove(&a[0]);
    let _ = ctx.proc().mm.lock().unwrap().unmap(a[0], PAGE);
    Ok(0)
}

/// A validated copy of the program's iocb at `at`, and the iovec copy it points to, if any.
fn copy_iocb(ctx: &Ctx<'_>, at: u64) -> Result<IocbCopy, Errno> {
    let proc = ctx.proc();
    let mut b: Box<[u8; IOCB as usize]> = copy_in(proc, at, IOCB)?.try_into().unwrap();
    let u16_at = |o: usize| u16::from_ne_bytes(b[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap());
    let (opcode, fildes, buf, nbytes) = (u16_at(16), u32_at(20), u64_at(24), u64_at(32));
    let (flags, resfd) = (u32_at(56), u32_at(60));
    check_fd(proc, u64::from(fildes))?;
    if flags & IOCB_FLAG_RESFD != 0 {
        check_fd(proc, u64::from(resfd))?;
    }
    let mut iov = None;
    match opcode {
        IOCB_CMD_PREAD | IOCB_CMD_PWRITE => proc.check(buf, nbytes.min(MAX_RW))?,
        IOCB_CMD_PREADV | IOCB_CMD_PWRITEV => {
            if nbytes > IOV_MAX {
                return Err(Errno::EINVAL);
            }
            let raw = copy_in(proc, buf, nbytes * 16)?;
            let mut v = Vec::with_capacity(nbytes as usize);
            let mut total: u64 = 0;
            for c in raw.chunks_exact(16) {
                let base = u64::from_ne_bytes(c[..8].try_into().unwrap());
                let len = u64::from_ne_bytes(c[8..].try_into().unwrap());
                total = total
                    .checked_add(len)
                    .filter(|&t| t <= isize::MAX as u64)
                    .ok_or(Errno::EINVAL)?;
                proc.check(base, len)?;
                v.push(libc::iovec { iov_base: base as *mut _, iov_len: len as usize });
            }
            b[24..32].copy_from_slice(&(v.as_ptr() as u64).to_ne_bytes());
            iov = Some(v);
        }
        IOCB_CMD_FSYNC | IOCB_CMD_FDSYNC | IOCB_CMD_POLL | IOCB_CMD_NOOP => {}
        _ => return Err(Errno::EINVAL),
    }
    Ok((b, iov))
}

/// `io_submit(ctx, nr, iocbpp)`: returns how many were submitted, or the error of the first.
pub fn io_submit(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if (a[1] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let (real, capacity, inflight) = lookup(a[0])?;
    let nr = a[1].min(capacity);
    let mut done = 0u64;
    let mut error = None;
    while done < nr && error.is_none() {
        // Validate up to BATCH iocbs, stopping at the first that fails.
        let mut ptrs: Vec<u64> = Vec::new();
        let mut iovs: Vec<Vec<libc::iovec>> = Vec::new();
        let mut table = inflight.lock().unwrap();
        while ptrs.len() < BATCH && done + (ptrs.len() as u64) < nr {
            let i = done + ptrs.len() as u64;
            let copied = read_u64(ctx.proc(), a[2].wrapping_add(8 * i))
                .and_then(|at| copy_iocb(ctx, at).map(|c| (at, c)));
            match copied {
                Ok((at, (copy, iov))) => {
                    ptrs.push(copy.as_ptr() as u64);
                    iovs.extend(iov);
                    table.insert(copy.as_ptr() as u64, Inflight { program: at, _copy: copy });
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        drop(table);
        if ptrs.is_empty() {
            break;
        }
        let r = host(libc::SYS_io_submit, [real, ptrs.len() as u64, ptrs.as_ptr() as u64, 0, 0, 0]);
        drop(iovs);
        let n = *r.as_ref().unwrap_or(&0) as usize;
        let mut table = inflight.lock().unwrap();
        for p in &ptrs[..n] {
            // The kernel wrote KIOCB_KEY (0) into the iocb it was given: so into the program's.
            if let Some(f) = table.get(p) {
                let _ = copy_out(ctx.proc(), f.program + 8, &0u32.to_ne_bytes());
            }
        }
        for p in &ptrs[n..] {
            table.remove(p);
        }
        done += n as u64;
        if let Err(e) = r {
            error = Some(e);
        } else if n < ptrs.len() {
            break;
        }
    }
    match error {
        Some(e) if done == 0 => Err(e),
        _ => Ok(done),
    }
}

/// `io_getevents(ctx, min_nr, nr, events, timeout)`: the events come into a supervisor buffer,
/// each `obj` is translated back to the program's iocb, and then they are copied out.
pub fn io_getevents(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (min_nr, nr) = (a[1] as i64, a[2] as i64);
    if a[4] != 0 {
        ctx.proc().check(a[4], 16)?;
    }
    let (real, capacity, inflight) = lookup(a[0])?;
    if min_nr > nr || min_nr < 0 || nr < 0 {
        return Err(Errno::EINVAL);
    }
    // No more than the ring holds can come at once; one more keeps a wait for more than
    // that a wait until the timeout, as in Linux.
    let nr = (nr as u64).min(capacity + 1);
    let min_nr = (min_nr as u64).min(nr);
    ctx.proc().check(a[3], nr * IO_EVENT)?;
    let mut events = vec![0u8; (nr * IO_EVENT) as usize];
    let n = host(libc::SYS_io_getevents, [real, min_nr, nr, events.as_mut_ptr() as u64, a[4], 0])?;
    let mut table = inflight.lock().unwrap();
    for ev in events.chunks_exact_mut(IO_EVENT as usize).take(n as usize) {
        let obj = u64::from_ne_bytes(ev[8..16].try_into().unwrap());
        let program = table.remove(&obj).map_or(0, |f| f.program);
        ev[8..16].copy_from_slice(&program.to_ne_bytes());
    }
    drop(table);
    copy_out(ctx.proc(), a[3], &events[..(n * IO_EVENT) as usize])?;
    Ok(n)
}

/// `io_cancel(ctx, iocb, result)`: the request is found by the program's iocb; the kernel
/// reads its key (`EINVAL` unless 0). `result` is unused by Linux (events come through the
/// ring); a completed cancellation is reported as `EINPROGRESS`.
pub fn io_cancel(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (real, _, inflight) = lookup(a[0])?;
    if read_u32(ctx.proc(), a[1].wrapping_add(8))? != 0 {
        return Err(Errno::EINVAL);
    }
    // Held across the call: the kernel reads the key of the copy, which must stay alive.
    let table = inflight.lock().unwrap();
    let copy =
        table.iter().find(|(_, f)| f.program == a[1]).map(|(k, _)| *k).ok_or(Errno::EINVAL)?;
    host(libc::SYS_io_cancel, [real, copy, 0, 0, 0, 0])
}
