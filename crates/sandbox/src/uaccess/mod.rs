//! Program memory: the one door. Every read or write of the program's memory by the
//! supervisor goes through this module, as Linux's `copy_from_user`/`strncpy_from_user` and
//! gVisor's `usermem.IO` do:
//!
//! * [`check`]: the range check (a buffer wholly inside the program range can only reach
//!   program memory or the reservation, see `mm`; `EFAULT` otherwise);
//! * [`copy_in`], [`read_u32`], [`read_u64`], [`copy_in_to`]: checked copies into supervisor
//!   memory; [`copy_out`]: a checked copy into program memory; [`copy_cstr`]: a bounded
//!   string copy (`EFAULT`, `ENAMETOOLONG`);
//! * typed decoders on top, which never touch raw pointers themselves: [`iovec`] (iovec
//!   arrays, every element checked), [`msghdr`] (`struct msghdr` and `struct mmsghdr`),
//!   [`sockaddr`] (socket addresses, copied whole for the kernel and decoded from that copy).
//!
//! The copies themselves go through the kernel (`process_vm_readv`/`process_vm_writev` on this
//! process, [`crate::sys::read_program`]), so a page that vanished or a file truncated under
//! a mapping gives `EFAULT` instead of a fault in the supervisor. Anything the kernel reads
//! after the supervisor decided on it is given to the kernel as the supervisor's copy, never
//! as the program's pointer: another program thread cannot change it in between.

pub mod iovec;
pub mod msghdr;
pub mod sockaddr;

use std::ffi::CString;
use std::ops::Range;

use crate::errno::Errno;
use crate::sys;

/// Something that knows the program range: the process, its memory manager, or the range.
pub trait Space {
    /// The program range.
    fn program_range(&self) -> &Range<u64>;
}

impl Space for Range<u64> {
    fn program_range(&self) -> &Range<u64> {
        self
    }
}

impl Space for crate::process::Process {
    fn program_range(&self) -> &Range<u64> {
        &self.range
    }
}

/// `Err(EFAULT)` unless `[addr, addr + len)` lies in the program range (`len` 0: always
/// fine). See `mm` for why this is the whole of pointer validation.
#[inline]
pub fn check(m: &(impl Space + ?Sized), addr: u64, len: u64) -> Result<(), Errno> {
    let r = m.program_range();
    let ok = len == 0 || addr.checked_add(len).is_some_and(|end| addr >= r.start && end <= r.end);
    if ok { Ok(()) } else { Err(Errno::EFAULT) }
}

/// Copies `buf.len()` bytes of program memory at `addr` into `buf`. Errors: `EFAULT`.
pub fn copy_in_to(m: &(impl Space + ?Sized), addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
    check(m, addr, buf.len() as u64)?;
    sys::read_program(addr, buf)
}

/// Copies `len` bytes of program memory into a supervisor buffer. Errors: `EFAULT`.
pub fn copy_in(m: &(impl Space + ?Sized), addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
    check(m, addr, len)?;
    let mut v = vec![0u8; usize::try_from(len).map_err(|_| Errno::EFAULT)?];
    sys::read_program(addr, &mut v)?;
    Ok(v)
}

/// Reads a `u32` of program memory.
pub fn read_u32(m: &(impl Space + ?Sized), addr: u64) -> Result<u32, Errno> {
    let mut b = [0u8; 4];
    copy_in_to(m, addr, &mut b)?;
    Ok(u32::from_ne_bytes(b))
}

/// Reads a `u64` of program memory.
pub fn read_u64(m: &(impl Space + ?Sized), addr: u64) -> Result<u64, Errno> {
    let mut b = [0u8; 8];
    copy_in_to(m, addr, &mut b)?;
    Ok(u64::from_ne_bytes(b))
}

/// Copies `bytes` into program memory at `addr`. Errors: `EFAULT` (outside the range, or not
/// writable: the kernel honours the program's protections).
pub fn copy_out(m: &(impl Space + ?Sized), addr: u64, bytes: &[u8]) -> Result<(), Errno> {
    check(m, addr, bytes.len() as u64)?;
    sys::write_program(addr, bytes)
}

/// Copies a NUL-terminated string of at most `max` bytes (NUL included) from program memory,
/// a page at a time so an unmapped next page is never touched needlessly. Errors: `EFAULT`
/// (unreadable or outside the program), `ENAMETOOLONG`.
pub fn copy_cstr(m: &(impl Space + ?Sized), addr: u64, max: usize) -> Result<CString, Errno> {
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < max {
        let chunk = (4096 - (at % 4096)).min((max - out.len()) as u64);
        let mut buf = vec![0u8; chunk as usize];
        copy_in_to(m, at, &mut buf)?;
        if let Some(nul) = buf.iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..nul]);
            return Ok(CString::new(out).expect("no interior NUL"));
        }
        out.extend_from_slice(&buf);
        at += chunk;
    }
    Err(Errno(libc::ENAMETOOLONG))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_checks() {
        let r = 0x1000u64..0x3000;
        assert_eq!(check(&r, 0x1000, 0x2000), Ok(()));
        assert_eq!(check(&r, 0x1000, 0x2001), Err(Errno::EFAULT));
        assert_eq!(check(&r, 0xfff, 1), Err(Errno::EFAULT));
        assert_eq!(check(&r, u64::MAX, 2), Err(Errno::EFAULT));
        assert_eq!(check(&r, 0, 0), Ok(()));
    }
}
