//! The file-reading edge (feature `std`): what `execve`'s `do_open_execat` checks before any
//! ELF parsing.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::vec::Vec;

use crate::errno::{EACCES, EINVAL, EIO, ENOENT};
use crate::error::{ElfError, IoOp};

/// Reads a program file whole, after the checks `execve` makes on it.
///
/// 1. `stat(path)` (follows symlinks): missing → `ENOENT` etc. ([`ElfError::Io`] with the
///    OS errno);
/// 2. it must be a regular file: a directory, FIFO, socket or device →
///    [`ElfError::NotRegularFile`] (`EACCES`, as execve answers even for directories);
/// 3. `open(O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)` and `fstat` again (the path may
///    have changed in between);
/// 4. `faccessat(path, X_OK, AT_EACCESS)`: the *effective* ids must be allowed to execute it
///    (mode bits, ACLs, `noexec` mounts; root needs at least one execute bit) →
///    [`ElfError::NotExecutable`] (`EACCES`);
/// 5. read to the end. A truncated or non-ELF file is not detected here: it fails
///    [`ElfFile::parse`](crate::ElfFile::parse).
pub fn read_executable(path: &Path) -> Result<Vec<u8>, ElfError> {
    let md = std::fs::metadata(path).map_err(|e| io_error(IoOp::Stat, &e))?;
    check_regular(&md)?;
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| io_error(IoOp::Open, &e))?;
    let md = file.metadata().map_err(|e| io_error(IoOp::Stat, &e))?;
    check_regular(&md)?;
    match sys::exec_access(path) {
        Ok(()) => {}
        Err(EACCES) => {
            return Err(ElfError::NotExecutable { mode: md.permissions().mode() & 0o7777 });
        }
        Err(errno) => {
            return Err(ElfError::Io { op: IoOp::Access, errno });
        }
    }
    read_all(&mut file, md.len())
}

fn read_all(file: &mut File, len_hint: u64) -> Result<Vec<u8>, ElfError> {
    let mut buf = Vec::new();
    // The hint only sizes the first allocation; a file that grows or shrinks is read as is.
    buf.try_reserve_exact(usize::try_from(len_hint).unwrap_or(0))
        .map_err(|_| ElfError::Io { op: IoOp::Read, errno: crate::errno::ENOMEM })?;
    file.read_to_end(&mut buf).map_err(|e| io_error(IoOp::Read, &e))?;
    Ok(buf)
}

fn check_regular(md: &Metadata) -> Result<(), ElfError> {
    let ft = md.file_type();
    if ft.is_file() { Ok(()) } else { Err(ElfError::NotRegularFile { is_dir: ft.is_dir() }) }
}

fn io_error(op: IoOp, e: &io::Error) -> ElfError {
    let errno = e.raw_os_error().unwrap_or(match e.kind() {
        io::ErrorKind::NotFound => ENOENT,
        io::ErrorKind::PermissionDenied => EACCES,
        // e.g. a path with an interior NUL byte.
        io::ErrorKind::InvalidInput => EINVAL,
        _ => EIO,
    });
    ElfError::Io { op, errno }
}

/// The one libc call `std` does not offer: an effective-id execute-permission check.
#[allow(unsafe_code)]
mod sys {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    /// `faccessat(AT_FDCWD, path, X_OK, AT_EACCESS)`: `Err(errno)` on failure.
    pub(super) fn exec_access(path: &Path) -> Result<(), i32> {
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)?;
        // SAFETY: `c` is a valid NUL-terminated string that lives across the call;
        // faccessat only reads it and takes no other pointers.
        let rc =
            unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::X_OK, libc::AT_EACCESS) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EACCES))
        }
    }
}
