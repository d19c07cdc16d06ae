//! `struct msghdr` (56 bytes on x86-64) and `struct mmsghdr` (a msghdr and `msg_len`, 64
//! bytes): the fields, copied in once; the buffers they point at are the callers' business
//! (copied or checked by [`super::iovec`], [`super::sockaddr`], the control-data walk).

use super::{Space, copy_in, copy_out};
use crate::errno::Errno;

/// `sizeof(struct msghdr)`.
pub const MSGHDR: u64 = 56;
/// `sizeof(struct mmsghdr)`.
pub const MMSGHDR: u64 = 64;

/// The fields of a program's `struct msghdr`, as copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgHdr {
    /// `msg_name`.
    pub name: u64,
    /// `msg_namelen`.
    pub namelen: u32,
    /// `msg_iov`.
    pub iov: u64,
    /// `msg_iovlen`.
    pub iovlen: u64,
    /// `msg_control`.
    pub control: u64,
    /// `msg_controllen`.
    pub controllen: u64,
    /// `msg_flags`.
    pub flags: i32,
}

/// Copies the `struct msghdr` at `addr`.
pub fn read(m: &(impl Space + ?Sized), addr: u64) -> Result<MsgHdr, Errno> {
    let raw = copy_in(m, addr, MSGHDR)?;
    let q = |o: usize| u64::from_ne_bytes(raw[o..o + 8].try_into().unwrap());
    Ok(MsgHdr {
        name: q(0),
        namelen: u32::from_ne_bytes(raw[8..12].try_into().unwrap()),
        iov: q(16),
        iovlen: q(24),
        control: q(32),
        controllen: q(40),
        flags: i32::from_ne_bytes(raw[48..52].try_into().unwrap()),
    })
}

/// Writes back the value-result fields of a received message: `msg_namelen`,
/// `msg_controllen` and `msg_flags` of the msghdr at `addr`.
pub fn write_results(
    m: &(impl Space + ?Sized),
    addr: u64,
    hdr: &libc::msghdr,
) -> Result<(), Errno> {
    copy_out(m, addr + 8, &hdr.msg_namelen.to_ne_bytes())?;
    copy_out(m, addr + 40, &(hdr.msg_controllen as u64).to_ne_bytes())?;
    copy_out(m, addr + 48, &hdr.msg_flags.to_ne_bytes())
}
