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
/// 1. `open(O_PATH | O_CLOEXEC)` (follows symlinks; opens nothing, so no device is ever
///    opened by a path that changes underneath): missing → `ENOENT` etc. ([`ElfError::Io`]
///    with the OS errno);
/// 2. `fstat`: it must be a regular file: a directory, FIFO, socket or device →
///    [`ElfError::NotRegularFile`] (`EACCES`, as execve answers even for directories);
/// 3. that very file opened `O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC` (through
///    `/proc/self/fd/N`; where `/proc` is absent, by `path` again, refused with `ENOENT` unless
///    it is the same file) and `fstat` again: from here on only the open file is examined;
/// 4. `faccessat2(fd, "", X_OK, AT_EACCESS | AT_EMPTY_PATH)` on the open file (the path where
///    the kernel lacks `faccessat2`, before Linux 5.8): the *effective* ids must be allowed to
///    execute it (mode bits, ACLs, `noexec` mounts; root needs at least one execute bit) →
///    [`ElfError::NotExecutable`] (`EACCES`);
/// 5. read to the end. A truncated or non-ELF file is not detected here: it fails
///    [`ElfFile::parse`](crate::ElfFile::parse).
pub fn read_executable(path: &Path) -> Result<Vec<u8>, ElfError> {
    let (mut file, len) = open_checked(path, Ok)?;
    read_all(&mut file, len)
}

/// Like [`read_executable`], for a loader that maps the segments of the very file it checked
/// (as Linux's `elf_map` does) instead of copying them: returns the open file (`O_RDONLY |
/// O_CLOEXEC`) and a buffer of the file's length holding what `execve` reads of it — the first
/// page (ELF header, a `#!` line), the program-header table and the `PT_INTERP` path, at their
/// offsets — and zeros elsewhere. [`ElfFile::parse`](crate::ElfFile::parse) reads nothing else,
/// so it gives the same verdict and plan as on the whole file; the untouched rest of the buffer
/// costs no memory (a zeroed allocation). Files of up to 1 MiB are read whole.
pub fn open_executable(path: &Path) -> Result<(File, Vec<u8>), ElfError> {
    open_executable_placed(path, Ok)
}

/// Like [`open_executable`]; `place` gets each descriptor right after it is made, before
/// anything is checked or read through it (first the `O_PATH` handle, then the file opened for
/// reading), and returns the file to use from then on. A supervisor whose untrusted program
/// shares the descriptor table moves the descriptor out of the program's reach there, so that
/// the file checked, read and mapped is the file opened, and can refuse the file before it is
/// opened for reading. An error from `place` is an [`IoOp::Open`] error.
pub fn open_executable_placed(
    path: &Path,
    place: impl Fn(File) -> io::Result<File>,
) -> Result<(File, Vec<u8>), ElfError> {
    let (mut file, len) = open_checked(path, place)?;
    if len <= SPARSE_ABOVE {
        let bytes = read_all(&mut file, len)?;
        return Ok((file, bytes));
    }
    let bytes = read_sparse(&file, len)?;
    Ok((file, bytes))
}

/// Files larger than this are read sparsely by [`open_executable`].
const SPARSE_ABOVE: u64 = 1 << 20;

/// The regions of the file [`ElfFile::parse`](crate::ElfFile::parse) reads, in a zeroed buffer
/// of `len` bytes: the same offsets and bounds it uses (out-of-file or oversized ranges are not
/// read; parse rejects those from the length alone).
fn read_sparse(file: &File, len: u64) -> Result<Vec<u8>, ElfError> {
    use std::os::unix::fs::FileExt;
    let nomem = ElfError::Io { op: IoOp::Read, errno: crate::errno::ENOMEM };
    let mut buf = sys::zeroed(usize::try_from(len).map_err(|_| nomem.clone())?).ok_or(nomem)?;
    let read_at = |off: u64, n: u64, buf: &mut [u8]| -> Result<(), ElfError> {
        let end = off.saturating_add(n).min(len);
        if off >= end {
            return Ok(());
        }
        // A file that shrank meanwhile reads short: the rest stays zero, as if never there.
        let (off, end) = (off as usize, end as usize);
        let mut done = off;
        while done < end {
            match file.read_at(&mut buf[done..end], done as u64) {
                Ok(0) => break,
                Ok(k) => done += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(IoOp::Read, &e)),
            }
        }
        Ok(())
    };
    read_at(0, crate::PAGE_SIZE, &mut buf)?;
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    // Elf64_Ehdr: e_phoff at 0x20, e_phnum at 0x38 (parse rejects any e_phentsize but 56).
    let phoff = u64_at(&buf, 0x20);
    let table = u64::from(u16_at(&buf, 0x38)) * u64::from(crate::PHENTSIZE);
    if table == 0 || table > crate::MAX_PHDR_TABLE_BYTES {
        return Ok(buf);
    }
    read_at(phoff, table, &mut buf)?;
    let Some(table_end) = phoff.checked_add(table).filter(|&e| e <= len) else {
        return Ok(buf);
    };
    // Elf64_Phdr (56 bytes): p_type at 0, p_offset at 8, p_filesz at 32.
    let mut ph = phoff as usize;
    while ph + 56 <= table_end as usize {
        if u32_at(&buf, ph) == 3 {
            // PT_INTERP
            let (off, size) = (u64_at(&buf, ph + 8), u64_at(&buf, ph + 32));
            if size <= crate::PATH_MAX {
                read_at(off, size, &mut buf)?;
            }
        }
        ph += 56;
    }
    Ok(buf)
}

/// The checks of [`read_executable`] up to the read: the open file and its length.
fn open_checked(
    path: &Path,
    place: impl Fn(File) -> io::Result<File>,
) -> Result<(File, u64), ElfError> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let handle = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| io_error(IoOp::Stat, &e))?;
    let handle = place(handle).map_err(|e| io_error(IoOp::Open, &e))?;
    let md = handle.metadata().map_err(|e| io_error(IoOp::Stat, &e))?;
    check_regular(&md)?;
    let reading = || {
        let mut o = OpenOptions::new();
        o.read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC);
        o
    };
    let proc_path = std::format!("/proc/self/fd/{}", handle.as_raw_fd());
    let file = match reading().open(&proc_path) {
        Err(e) if e.raw_os_error() == Some(ENOENT) && !Path::new("/proc/self/fd").exists() => {
            let f = reading().open(path).map_err(|e| io_error(IoOp::Open, &e))?;
            let m = f.metadata().map_err(|e| io_error(IoOp::Stat, &e))?;
            if (m.dev(), m.ino()) != (md.dev(), md.ino()) {
                return Err(ElfError::Io { op: IoOp::Open, errno: ENOENT });
            }
            f
        }
        r => r.map_err(|e| io_error(IoOp::Open, &e))?,
    };
    // The open file takes the handle's place, at the number `place` chose for it.
    let file =
        sys::replace(handle, file).map_err(|errno| ElfError::Io { op: IoOp::Open, errno })?;
    let md = file.metadata().map_err(|e| io_error(IoOp::Stat, &e))?;
    check_regular(&md)?;
    match sys::exec_access(&file, path) {
        Ok(()) => {}
        Err(EACCES) => {
            return Err(ElfError::NotExecutable { mode: md.permissions().mode() & 0o7777 });
        }
        Err(errno) => {
            return Err(ElfError::Io { op: IoOp::Access, errno });
        }
    }
    Ok((file, md.len()))
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

/// What `std` does not offer: an effective-id execute-permission check, and a fallible zeroed
/// allocation.
#[allow(unsafe_code)]
mod sys {
    /// `n` zero bytes, or `None` if they cannot be allocated. Large zeroed allocations come
    /// from fresh anonymous memory, which costs nothing until touched.
    pub(super) fn zeroed(n: usize) -> Option<std::vec::Vec<u8>> {
        if n == 0 {
            return Some(std::vec::Vec::new());
        }
        let layout = std::alloc::Layout::array::<u8>(n).ok()?;
        // SAFETY: `layout` has a non-zero size (checked above).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: `ptr` was allocated by the global allocator with the layout of `[u8; n]`
        // (alignment 1, size n), all `n` bytes are initialised (zeroed), and ownership moves
        // to the Vec, which frees it with the same layout.
        Some(unsafe { std::vec::Vec::from_raw_parts(ptr, n, n) })
    }

    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    /// `dup3(file, at, O_CLOEXEC)`: `file`'s open file at `at`'s descriptor number (what `at`
    /// held is closed in the same step), `file`'s own number closed. `Err(errno)` on failure
    /// (both are closed then).
    pub(super) fn replace(at: std::fs::File, file: std::fs::File) -> Result<std::fs::File, i32> {
        let n = at.into_raw_fd();
        // SAFETY: `n` was `at`'s, whose ownership this function took; dup3 closes what it held
        // and puts `file`'s open file there; `file` stays owned (and is dropped below).
        let rc = unsafe { libc::dup3(file.as_raw_fd(), n, libc::O_CLOEXEC) };
        if rc < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
            // SAFETY: `n` is still the handle's descriptor, owned here.
            drop(unsafe { std::fs::File::from_raw_fd(n) });
            return Err(errno);
        }
        // SAFETY: `n` now holds a duplicate of `file`'s open file, owned by nothing else.
        Ok(unsafe { std::fs::File::from_raw_fd(n) })
    }

    /// `faccessat2(fd, "", X_OK, AT_EACCESS | AT_EMPTY_PATH)` on the open `file`; on kernels
    /// without `faccessat2` (`ENOSYS`), `faccessat(AT_FDCWD, path, X_OK, AT_EACCESS)`.
    /// `Err(errno)` on failure.
    pub(super) fn exec_access(file: &std::fs::File, path: &Path) -> Result<(), i32> {
        use std::os::fd::AsRawFd;
        let flags = libc::AT_EACCESS | libc::AT_EMPTY_PATH;
        // SAFETY: the empty C string literal lives across the call; faccessat2 only reads it
        // and the descriptor, which `file` keeps open.
        let rc = unsafe {
            libc::syscall(libc::SYS_faccessat2, file.as_raw_fd(), c"".as_ptr(), libc::X_OK, flags)
        };
        if rc == 0 {
            return Ok(());
        }
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EACCES);
        if errno != libc::ENOSYS {
            return Err(errno);
        }
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
