//! `struct iovec` arrays: copied in, every element range-checked; the kernel gets the copy.

use super::{Space, check, copy_in};
use crate::errno::Errno;

/// `IOV_MAX`: the most elements an array may have.
pub const IOV_MAX: u64 = 1024;

/// Copies the array of `count` iovecs at `addr` and checks every element (and that the total
/// fits in `ssize_t`). Errors: `EINVAL` (too many, or too long in total), `EFAULT`.
pub fn copy_iovecs(
    m: &(impl Space + ?Sized),
    addr: u64,
    count: u64,
) -> Result<Vec<libc::iovec>, Errno> {
    if count > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let raw = copy_in(m, addr, count * 16)?;
    let mut v = Vec::with_capacity(count as usize);
    let mut total: u64 = 0;
    for c in raw.chunks_exact(16) {
        let base = u64::from_ne_bytes(c[..8].try_into().unwrap());
        let len = u64::from_ne_bytes(c[8..].try_into().unwrap());
        total = total.checked_add(len).filter(|&t| t <= isize::MAX as u64).ok_or(Errno::EINVAL)?;
        check(m, base, len)?;
        v.push(libc::iovec { iov_base: base as *mut _, iov_len: len as usize });
    }
    Ok(v)
}
