//! System V IPC: semaphores, message queues and shared memory.
//!
//! Semaphores and message queues share no memory with the program: every buffer (the
//! `struct sembuf` array, a `struct msgbuf`, the `*_ds` and `*info` structures, the `GETALL`/
//! `SETALL` array) is plain data the kernel copies once, so a range check is its whole
//! validation. Where the kernel looks at a buffer only after its own checks (a structure it
//! fills, the message it delivers), a buffer outside the program range is passed on as NULL,
//! so the kernel gives its own errors in its own order and `EFAULT` where it would have
//! touched the buffer (nothing is ever mapped at address 0 in the supervisor). A command the
//! kernel does not know gets `EINVAL` here, as there, so no unknown argument reaches it.
//!
//! Shared memory is mapped into the program: `shmat` attaches the segment where the host
//! kernel chooses (outside the program range, so the program cannot reach it yet), reads the
//! attachment's real size from `/proc/self/maps` (a segment's id can name another, larger one
//! by the time the kernel attaches it), and moves it into the program range through the memory
//! manager ([`crate::mm::Mm::adopt`]), at the program's address or one the memory manager
//! chooses. `shmdt` finds the attachment's pieces as Linux does (the shared memory mappings
//! from the address on whose file offset matches their distance from it) and unmaps them
//! through the memory manager, which puts the reservation back.

use super::Ctx;
use crate::errno::Errno;
use crate::mm::{Kind, PAGE, page_up};
use crate::process::Process;
use crate::sys::{self, SysResult};

/// Calls the host kernel with already-validated arguments.
#[allow(unsafe_code)]
fn host(nr: i64, a: [u64; 6]) -> SysResult {
    // SAFETY: every pointer the callers pass is a range-checked program buffer of the size the
    // kernel uses, NULL (never mapped in the supervisor: the kernel's access fails), or a
    // supervisor buffer alive across the call; `shmat` is only asked for a kernel-chosen
    // address, which lies outside the program range and is then taken over by the memory
    // manager.
    unsafe { sys::syscall6(nr, a) }
}

/// `addr` if `[addr, addr + len)` lies in the program range, else NULL (see the module docs).
fn or_null(proc: &Process, addr: u64, len: u64) -> u64 {
    if proc.check(addr, len).is_ok() { addr } else { 0 }
}

/// `struct sembuf`.
const SEMBUF: u64 = 6;
/// `struct semid64_ds` (x86-64); `sem_nsems` at offset 80.
const SEMID_DS: u64 = 104;
/// `struct seminfo`.
const SEMINFO: u64 = 40;
/// `struct msqid64_ds`.
const MSQID_DS: u64 = 120;
/// `struct msginfo`.
const MSGINFO: u64 = 32;
/// `struct shmid64_ds`; `shm_segsz` at offset 48.
const SHMID_DS: u64 = 112;
/// `struct shminfo64` (`IPC_INFO`).
const SHMINFO: u64 = 72;
/// `struct shm_info` (`SHM_INFO`).
const SHM_INFO_SIZE: u64 = 48;

const IPC_RMID: i32 = 0;
const IPC_SET: i32 = 1;
const IPC_STAT: i32 = 2;
const IPC_INFO: i32 = 3;

/// `semop(semid, sops, nsops)`.
pub fn semop(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let nsops = u64::from(a[2] as u32);
    let sops = or_null(ctx.proc(), a[1], nsops * SEMBUF);
    host(libc::SYS_semop, [a[0], sops, a[2], 0, 0, 0])
}

/// `semtimedop(semid, sops, nsops, timeout)`: the kernel reads the timeout first.
pub fn semtimedop(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    if a[3] != 0 {
        ctx.proc().check(a[3], 16)?;
    }
    let nsops = u64::from(a[2] as u32);
    let sops = or_null(ctx.proc(), a[1], nsops * SEMBUF);
    host(libc::SYS_semtimedop, [a[0], sops, a[2], a[3], 0, 0])
}

/// The number of semaphores in set `semid` (`IPC_STAT` into a supervisor buffer), if the
/// caller may read it.
fn nsems(semid: u64) -> Option<u64> {
    let mut ds = [0u8; SEMID_DS as usize];
    host(libc::SYS_semctl, [semid, 0, IPC_STAT as u64, ds.as_mut_ptr() as u64, 0, 0]).ok()?;
    Some(u64::from_ne_bytes(ds[80..88].try_into().unwrap()))
}

/// `semctl(semid, semnum, cmd, arg)`.
pub fn semctl(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    const GETPID: i32 = 11;
    const GETVAL: i32 = 12;
    const GETALL: i32 = 13;
    const GETNCNT: i32 = 14;
    const GETZCNT: i32 = 15;
    const SETVAL: i32 = 16;
    const SETALL: i32 = 17;
    const SEM_STAT: i32 = 18;
    const SEM_INFO: i32 = 19;
    const SEM_STAT_ANY: i32 = 20;
    if (a[0] as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let proc = ctx.proc();
    let arg = match a[2] as i32 {
        IPC_RMID | GETPID | GETVAL | GETNCNT | GETZCNT | SETVAL => a[3],
        IPC_STAT | SEM_STAT | SEM_STAT_ANY => or_null(proc, a[3], SEMID_DS),
        IPC_INFO | SEM_INFO => or_null(proc, a[3], SEMINFO),
        IPC_SET => or_null(proc, a[3], SEMID_DS),
        // The array has one `unsigned short` per semaphore. Should the id name a larger set
        // by the time the kernel looks (removed and re-created meanwhile), the kernel's
        // accesses run on into the program range or the guard after it, never elsewhere.
        GETALL | SETALL => match nsems(a[0]) {
            Some(n) => or_null(proc, a[3], n.saturating_mul(2)),
            None => 0,
        },
        _ => return Err(Errno::EINVAL),
    };
    host(libc::SYS_semctl, [a[0], a[1], a[2], arg, 0, 0])
}

/// `msgsnd(msqid, msgp, msgsz, msgflg)`: `struct msgbuf` is a `long` type and `msgsz` bytes.
pub fn msgsnd(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    // The kernel reads the type first, then checks the size and the id.
    ctx.proc().check(a[1], 8)?;
    if (a[2] as i64) < 0 || (a[0] as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    ctx.proc().check(a[1], 8 + a[2])?;
    host(libc::SYS_msgsnd, [a[0], a[1], a[2], a[3], 0, 0])
}

/// `msgrcv(msqid, msgp, msgsz, msgtyp, msgflg)`: the kernel writes the type and up to `msgsz`
/// bytes (with `MSG_COPY` it reads the buffer first).
pub fn msgrcv(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let buf = if (a[2] as i64) < 0 { 0 } else { or_null(ctx.proc(), a[1], 8 + a[2]) };
    host(libc::SYS_msgrcv, [a[0], buf, a[2], a[3], a[4], 0])
}

/// `msgctl(msqid, cmd, buf)`.
pub fn msgctl(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    const MSG_STAT: i32 = 11;
    const MSG_INFO: i32 = 12;
    const MSG_STAT_ANY: i32 = 13;
    if (a[0] as i32) < 0 || (a[1] as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let buf = match a[1] as i32 {
        IPC_RMID => a[2],
        IPC_STAT | MSG_STAT | MSG_STAT_ANY | IPC_SET => or_null(ctx.proc(), a[2], MSQID_DS),
        IPC_INFO | MSG_INFO => or_null(ctx.proc(), a[2], MSGINFO),
        _ => return Err(Errno::EINVAL),
    };
    host(libc::SYS_msgctl, [a[0], a[1], buf, 0, 0, 0])
}

/// `shmctl(shmid, cmd, buf)`.
pub fn shmctl(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    const SHM_LOCK: i32 = 11;
    const SHM_UNLOCK: i32 = 12;
    const SHM_STAT: i32 = 13;
    const SHM_INFO: i32 = 14;
    const SHM_STAT_ANY: i32 = 15;
    if (a[0] as i32) < 0 || (a[1] as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let buf = match a[1] as i32 {
        IPC_RMID | SHM_LOCK | SHM_UNLOCK => a[2],
        IPC_STAT | SHM_STAT | SHM_STAT_ANY | IPC_SET => or_null(ctx.proc(), a[2], SHMID_DS),
        IPC_INFO => or_null(ctx.proc(), a[2], SHMINFO),
        SHM_INFO => or_null(ctx.proc(), a[2], SHM_INFO_SIZE),
        _ => return Err(Errno::EINVAL),
    };
    host(libc::SYS_shmctl, [a[0], a[1], buf, 0, 0, 0])
}

const SHM_RDONLY: u64 = 0o10000;
const SHM_RND: u64 = 0o20000;
const SHM_REMAP: u64 = 0o40000;
const SHM_EXEC: u64 = 0o100000;

/// One line of `/proc/self/maps`.
#[derive(Clone, Copy, Debug)]
pub(super) struct MapLine {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// File offset of `start`.
    pub offset: u64,
    /// Inode of the file mapped (for a SysV segment: its id).
    pub inode: u64,
    /// A SysV shared memory segment (`/SYSV<key> (deleted)`).
    pub sysv: bool,
}

/// The supervisor's mappings (`/proc/self/maps`), in address order.
pub(super) fn maps() -> Result<Vec<MapLine>, Errno> {
    // Through the reader: a descriptor of our own maps must never be the program's to copy.
    let text = crate::hostread::read(std::path::Path::new("/proc/self/maps"))
        .map_err(|_| Errno(libc::ENOMEM))?;
    let text = String::from_utf8_lossy(&text);
    let hex = |s: &str| u64::from_str_radix(s, 16).ok();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(_perms), Some(off), Some(_dev), Some(ino)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let Some((s, e)) = range.split_once('-') else { continue };
        let (Some(start), Some(end), Some(offset), Ok(inode)) =
            (hex(s), hex(e), hex(off), ino.parse::<u64>())
        else {
            continue;
        };
        let sysv = f.next().is_some_and(|p| p.starts_with("/SYSV"));
        out.push(MapLine { start, end, offset, inode, sysv });
    }
    Ok(out)
}

/// `shmat(shmid, shmaddr, shmflg)`: returns the address the segment is attached at.
pub fn shmat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let (flags, mut addr) = (a[2], a[1]);
    if (a[0] as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    // SHMLBA is the page size on x86-64.
    if addr != 0 {
        if !addr.is_multiple_of(PAGE) {
            if flags & SHM_RND == 0 {
                return Err(Errno::EINVAL);
            }
            addr &= !(PAGE - 1);
            if addr == 0 {
                return Err(Errno::EINVAL);
            }
        }
    } else if flags & SHM_REMAP != 0 {
        return Err(Errno::EINVAL);
    }
    let mut prot = libc::PROT_READ;
    if flags & SHM_RDONLY == 0 {
        prot |= libc::PROT_WRITE;
    }
    if flags & SHM_EXEC != 0 {
        prot |= libc::PROT_EXEC;
    }
    let mut mm = ctx.proc().mm.lock().unwrap();
    // The kernel's own checks (id, permission) and its attachment, outside the program range.
    let from = host(libc::SYS_shmat, [a[0], 0, flags & (SHM_RDONLY | SHM_EXEC), 0, 0, 0])?;
    let Some(len) =
        maps().ok().and_then(|m| m.iter().find(|l| l.start == from).map(|l| l.end - from))
    else {
        host(libc::SYS_shmdt, [from, 0, 0, 0, 0, 0])?;
        return Err(Errno(libc::ENOMEM));
    };
    let placed = if addr != 0 {
        if flags & SHM_REMAP == 0 && (addr.checked_add(len).is_none() || !mm.is_free(addr, len)) {
            Err(Errno::EINVAL)
        } else if !mm.contains(addr, len) {
            Err(Errno(libc::ENOMEM))
        } else {
            Ok(addr)
        }
    } else {
        // Huge-page segments can only move to huge-page-aligned addresses.
        let huge = crate::mm::HUGE;
        let align = if from.is_multiple_of(huge) && len.is_multiple_of(huge) { huge } else { PAGE };
        let top = mm.mmap_top;
        mm.find_free(len, align, top).ok_or(Errno(libc::ENOMEM))
    };
    match placed {
        Ok(at) => {
            // A segment is a file of the kernel's shm mount; its id stands for the inode.
            let file = crate::mm::FileId { dev: u64::MAX, ino: a[0] };
            mm.adopt(from, at, len, prot, Kind::File { offset: 0, file })
        }
        Err(e) => {
            host(libc::SYS_shmdt, [from, 0, 0, 0, 0, 0])?;
            Err(e)
        }
    }
}

/// `shmdt(shmaddr)`: detaches the attachment made at `shmaddr`, all its pieces (Linux,
/// ipc/shm.c `ksys_shmdt`): the first shared memory mapping at or after the address whose
/// file offset is its distance from the address, and after it every mapping of the same
/// segment with that property that ends within the segment's size of the address.
pub fn shmdt(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    let addr = a[0];
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let mut mm = ctx.proc().mm.lock().unwrap();
    let range = mm.range();
    let lines: Vec<MapLine> = maps()?
        .into_iter()
        .filter(|l| l.sysv && l.start >= addr && l.start >= range.start && l.end <= range.end)
        .collect();
    let matches = |l: &MapLine| l.start - addr == l.offset;
    let Some(first) = lines.iter().position(matches) else {
        return Err(Errno::EINVAL);
    };
    let inode = lines[first].inode;
    // The segment's size bounds where its pieces can be (unknown once removed: no bound).
    let mut ds = [0u8; SHMID_DS as usize];
    let size = host(libc::SYS_shmctl, [inode, IPC_STAT as u64, ds.as_mut_ptr() as u64, 0, 0, 0])
        .ok()
        .and_then(|_| page_up(u64::from_ne_bytes(ds[48..56].try_into().unwrap())))
        .unwrap_or(u64::MAX);
    let mut pieces = vec![lines[first]];
    pieces.extend(
        lines[first + 1..]
            .iter()
            .take_while(|l| l.end - addr <= size)
            .filter(|l| matches(l) && l.inode == inode),
    );
    for p in pieces {
        mm.unmap(p.start, p.end - p.start)?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_parse_finds_mappings() {
        let m = maps().unwrap();
        assert!(!m.is_empty());
        assert!(m.windows(2).all(|w| w[0].start <= w[1].start));
        assert!(m.iter().all(|l| l.start < l.end));
    }
}
