//! Socket addresses: copied whole (at most `sizeof(struct sockaddr_storage)`, the most the
//! kernel reads) into a buffer the kernel is then given, and decoded from that same copy
//! ([`crate::policy::endpoint::decode`]).

use super::{Space, copy_in_to};
use crate::errno::Errno;
use crate::policy::endpoint::SOCKADDR_MAX;

/// A copied socket address: what the kernel will read.
#[derive(Clone, Debug)]
pub struct SockAddr {
    buf: [u8; SOCKADDR_MAX],
    len: usize,
}

impl SockAddr {
    /// An address made of `bytes` (at most [`SOCKADDR_MAX`]).
    pub fn from_bytes(bytes: &[u8]) -> SockAddr {
        let mut buf = [0u8; SOCKADDR_MAX];
        let len = bytes.len().min(SOCKADDR_MAX);
        buf[..len].copy_from_slice(&bytes[..len]);
        SockAddr { buf, len }
    }

    /// The bytes, as long as the program said.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The pointer to give the kernel (valid while `self` lives and is not moved).
    pub fn as_ptr(&self) -> u64 {
        self.buf.as_ptr() as u64
    }

    /// The length to give the kernel.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the address is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Copies the socket address of `len` bytes at `addr`. Errors: `EINVAL` for a length the
/// kernel refuses (negative, or longer than `struct sockaddr_storage`: `move_addr_to_kernel`),
/// `EFAULT`.
pub fn copy_in(m: &(impl Space + ?Sized), addr: u64, len: u64) -> Result<SockAddr, Errno> {
    let len = len as u32 as i32;
    if len < 0 || len as usize > SOCKADDR_MAX {
        return Err(Errno::EINVAL);
    }
    let mut a = SockAddr { buf: [0u8; SOCKADDR_MAX], len: len as usize };
    copy_in_to(m, addr, &mut a.buf[..len as usize])?;
    Ok(a)
}
