//! The image file: what a checkpoint holds and how it lies on disk.
//!
//! ```text
//!  0        4 KiB header: magic "DUNECKPT", format version, architecture (ELF e_machine),
//!           the section table (kind, CRC-32, offset, length per section), the header's CRC-32
//!  4096     pages: the stored program pages, 4 KiB each, in runs the metadata lists
//!           (4 KiB aligned in the file, so a restore can map them)
//!  4096+P   metadata: JSON (serde) of [`Meta`]: threads, mappings, descriptors, signals, ...
//! ```
//!
//! Every section has its own CRC-32 (`crc32fast`); [`read`] checks them all and refuses a
//! truncated, corrupted, foreign-version or foreign-architecture file with a typed
//! [`ImageError`], never a panic. [`write`] writes to a temporary file next to the target,
//! `fsync`s it and renames it into place (then `fsync`s the directory), so an image is
//! either whole or absent.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file's first 8 bytes.
pub const MAGIC: [u8; 8] = *b"DUNECKPT";
/// The format version this sandbox writes and reads.
pub const VERSION: u32 = 1;
/// ELF `e_machine` of x86-64, the only architecture images exist for.
pub const ARCH_X86_64: u32 = 62;
/// Bytes of the header (and the alignment of the page data).
pub const HEADER_LEN: u64 = 4096;
/// Bytes per stored page.
pub const PAGE: u64 = 4096;

/// A section of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionKind {
    /// The stored pages.
    Pages = 1,
    /// The JSON metadata.
    Meta = 2,
}

impl SectionKind {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            SectionKind::Pages => "page data",
            SectionKind::Meta => "metadata",
        }
    }
}

/// One entry of the section table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    /// What it holds.
    pub kind: SectionKind,
    /// CRC-32 of its bytes.
    pub crc: u32,
    /// Where it starts in the file.
    pub offset: u64,
    /// Its length.
    pub len: u64,
}

/// Why an image cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be opened or read.
    #[error("cannot read the image {path}: {source}")]
    Io {
        /// The image.
        path: PathBuf,
        /// What the host said.
        source: std::io::Error,
    },
    /// No magic: not a checkpoint image at all.
    #[error("{path} is not a checkpoint image (it does not start with DUNECKPT)")]
    NotAnImage {
        /// The image.
        path: PathBuf,
    },
    /// The file ends before a part it must hold.
    #[error(
        "{path} is truncated: its {what} needs {need} bytes but the file has {have}; the image \
         was not written completely (take the checkpoint again)"
    )]
    Truncated {
        /// The image.
        path: PathBuf,
        /// Which part.
        what: &'static str,
        /// Bytes that part needs the file to have.
        need: u64,
        /// Bytes the file has.
        have: u64,
    },
    /// Written in another format version.
    #[error(
        "{path} is in image format version {found}; this sandbox reads version {VERSION} only \
         (restore it with the sandbox version that wrote it)"
    )]
    Version {
        /// The image.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
    /// Written for another architecture.
    #[error(
        "{path} holds a program of architecture {found} (ELF e_machine); this sandbox restores \
         x86-64 ({ARCH_X86_64}) images only"
    )]
    Arch {
        /// The image.
        path: PathBuf,
        /// Its `e_machine`.
        found: u32,
    },
    /// A section's bytes do not match their checksum.
    #[error(
        "{path}: the {section} fails its checksum (stored {stored:#010x}, computed \
         {computed:#010x}); the image is corrupted (take the checkpoint again)"
    )]
    Checksum {
        /// The image.
        path: PathBuf,
        /// Which section (`header`, `metadata`, `page data`).
        section: &'static str,
        /// The CRC-32 stored.
        stored: u32,
        /// The CRC-32 of the bytes.
        computed: u32,
    },
    /// The checksums hold but the content makes no sense (a bug of the writer, or a forged
    /// file).
    #[error("{path}: the image is malformed: {what}")]
    Malformed {
        /// The image.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// Where the image came from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Host {
    /// `uname -n`.
    pub hostname: String,
    /// `uname -r`.
    pub kernel: String,
    /// The CPU's model name (`/proc/cpuinfo`).
    pub cpu: String,
    /// Guest-physical address width of the VM (CPUID 0x80000008).
    pub phys_bits: u8,
    /// The XSAVE state components the image's XSAVE areas use: the vCPUs' XCR0 together with
    /// every area's XSTATE_BV.
    pub xcr0: u64,
    /// Bytes of XSAVE state the host's CPU uses for those (CPUID.(0DH,0).EBX).
    pub xsave_size: u32,
    /// The sandbox's pid when it was checkpointed.
    pub pid: i32,
    /// Seconds since the epoch when the image was written.
    pub time: u64,
}

/// A signal instance waiting for delivery.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pending {
    /// The signal.
    pub sig: i32,
    /// Its `siginfo_t`, 128 bytes, hex.
    pub info: String,
}

/// One thread.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ThreadRec {
    /// Its thread id when checkpointed.
    pub tid: i32,
    /// General registers, in `dune::Regs` order: rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip
    /// rflags (the program's context, where it continues).
    pub regs: [u64; 18],
    /// FS base (TLS).
    pub fs_base: u64,
    /// GS base.
    pub gs_base: u64,
    /// The 4 KiB `KVM_GET_XSAVE` area, hex.
    pub xsave: String,
    /// Blocked signals.
    pub sigmask: u64,
    /// The alternate signal stack's `stack_t`, hex.
    pub altstack: String,
    /// `clear_child_tid`.
    pub clear_child_tid: u64,
    /// `set_robust_list` head and length.
    pub robust_list: (u64, u64),
    /// Signals pending for this thread.
    pub pending: Vec<Pending>,
}

/// What a mapping is backed by.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Backing {
    /// Anonymous memory.
    Anon,
    /// The main stack.
    Stack,
    /// The brk heap.
    Heap,
    /// A file.
    File(FileRef),
    /// The copy of the host's vDSO code (stored as anonymous memory; restored only where the
    /// host's code is the same).
    Vdso,
    /// The host's vDSO data pages, `offset` bytes into them: no contents stored, the
    /// restoring host's own are mapped.
    Vvar {
        /// Offset of the mapping's first byte in the data pages.
        offset: u64,
    },
}

/// A file as it was at the checkpoint (checked again at restore).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileRef {
    /// Its path.
    pub path: String,
    /// Offset of the mapping's first byte (mappings; 0 for descriptors).
    pub offset: u64,
    /// `st_size`.
    pub size: u64,
    /// `st_mtime` seconds and nanoseconds.
    pub mtime: (i64, i64),
}

/// A run of stored pages: `pages` pages from `addr` are at `offset` in the file.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Run {
    /// Program address of the first page.
    pub addr: u64,
    /// Pages in the run.
    pub pages: u64,
    /// File offset of the first page (4 KiB aligned).
    pub offset: u64,
}

/// One mapping.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct VmaRec {
    /// First byte.
    pub start: u64,
    /// One past the last.
    pub end: u64,
    /// `PROT_*`.
    pub prot: i32,
    /// `MAP_SHARED`.
    pub shared: bool,
    /// What backs it.
    pub backing: Backing,
    /// The stored pages of it.
    pub runs: Vec<Run>,
}

/// One descriptor.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FdRec {
    /// Its number.
    pub fd: i32,
    /// `FD_CLOEXEC`.
    pub cloexec: bool,
    /// What it is.
    pub kind: FdKind,
    /// A lower descriptor sharing its open file description (a `dup`): restored as a
    /// duplicate of that one, so that they share the offset and flags again.
    #[serde(default)]
    pub dup_of: Option<i32>,
}

/// What a descriptor is.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum FdKind {
    /// 0, 1 or 2: the restoring sandbox's own.
    Stdio,
    /// A regular file: open flags and offset.
    File {
        /// The file.
        file: FileRef,
        /// `F_GETFL`.
        flags: i32,
        /// The file offset.
        pos: u64,
    },
    /// A directory.
    Dir {
        /// Its path.
        path: String,
        /// `F_GETFL`.
        flags: i32,
        /// The directory offset.
        pos: u64,
    },
    /// One end of a pipe whose both ends the program holds.
    Pipe {
        /// The pipe (its inode number at the checkpoint), the same for both ends.
        id: u64,
        /// The write end (else the read end).
        write: bool,
        /// `F_GETFL`.
        flags: i32,
        /// The bytes waiting in it, hex (on the first end of the pipe only).
        data: Option<String>,
        /// `F_GETPIPE_SZ`.
        size: i32,
    },
    /// `/dev/null` and friends: reopened by path.
    Device {
        /// Its path.
        path: String,
        /// `F_GETFL`.
        flags: i32,
    },
}

/// A signal's disposition (non-default ones only are stored).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ActionRec {
    /// The signal.
    pub sig: i32,
    /// `sa_handler`.
    pub handler: u64,
    /// `sa_flags`.
    pub flags: u64,
    /// `sa_restorer`.
    pub restorer: u64,
    /// `sa_mask`.
    pub mask: u64,
}

/// A resource limit.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Limit {
    /// `RLIMIT_*`.
    pub resource: u32,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// The address space's bookkeeping (`mm::Mm` without its mappings).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemRec {
    /// Top-down allocations start below this.
    pub mmap_top: u64,
    /// brk start and current break.
    pub brk: (u64, u64),
    /// `mm::Image`: start_code end_code start_data end_data start_stack arg_start arg_end
    /// env_start env_end.
    pub image: [u64; 9],
    /// The auxiliary vector the program got.
    pub auxv: Vec<(u64, u64)>,
    /// The program's `RLIMIT_AS` and `RLIMIT_DATA` as enforced on its mappings.
    pub limits: (u64, u64),
}

/// Everything but the pages.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Meta {
    /// Where and when it was taken.
    pub host: Host,
    /// The policy's name.
    pub policy: String,
    /// The program's executable.
    pub exe: String,
    /// `(st_dev, st_ino)` of the executable (`ETXTBSY`).
    pub exe_id: Option<(u64, u64)>,
    /// Working directory.
    pub cwd: String,
    /// umask.
    pub umask: u32,
    /// `personality`.
    pub personality: u64,
    /// Host limits set through to the program, restored as they were.
    pub rlimits: Vec<Limit>,
    /// The program's views of the limits the supervisor keeps apart.
    pub rlimit_views: Vec<Limit>,
    /// Address-space bookkeeping.
    pub mem: MemRec,
    /// Mappings, by address.
    pub vmas: Vec<VmaRec>,
    /// Non-default signal dispositions.
    pub actions: Vec<ActionRec>,
    /// Process-directed pending signals.
    pub pending: Vec<Pending>,
    /// Threads; the first is the one that runs on the restoring sandbox's main thread.
    pub threads: Vec<ThreadRec>,
    /// Descriptors.
    pub fds: Vec<FdRec>,
    /// Bytes of stored pages.
    pub page_bytes: u64,
    /// Interval timers (`ITIMER_REAL`, `_VIRTUAL`, `_PROF`) that were armed: which, and
    /// interval and value as (seconds, microseconds) pairs.
    #[serde(default)]
    pub itimers: Vec<(i32, [i64; 4])>,
}

/// `b` as lowercase hex.
pub fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter().fold(String::with_capacity(b.len() * 2), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// The bytes of a hex string, exactly `len` of them.
pub fn unhex(s: &str, len: usize) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() != len * 2 {
        return None;
    }
    b.chunks_exact(2).map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok()).collect()
}

/// An image being written: pages first ([`Writer::page`]), then [`Writer::finish`].
#[derive(Debug)]
pub struct Writer {
    tmp: PathBuf,
    target: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    crc: crc32fast::Hasher,
    page_bytes: u64,
}

impl Writer {
    /// Starts `target` as a temporary file in the same directory (mode 0600: it holds the
    /// program's memory).
    pub fn create(target: &Path) -> std::io::Result<Writer> {
        let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned());
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            name.unwrap_or_else(|| "image".into()),
            std::process::id()
        ));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        let mut file = std::io::BufWriter::with_capacity(1 << 20, f);
        file.write_all(&[0u8; HEADER_LEN as usize])?;
        Ok(Writer {
            tmp,
            target: target.to_path_buf(),
            file,
            crc: crc32fast::Hasher::new(),
            page_bytes: 0,
        })
    }

    /// Appends one page; returns its offset in the file.
    pub fn page(&mut self, page: &[u8]) -> std::io::Result<u64> {
        debug_assert_eq!(page.len() as u64, PAGE);
        let at = HEADER_LEN + self.page_bytes;
        self.file.write_all(page)?;
        self.crc.update(page);
        self.page_bytes += PAGE;
        Ok(at)
    }

    /// Bytes of pages written so far.
    pub fn page_bytes(&self) -> u64 {
        self.page_bytes
    }

    /// Writes the metadata and the header, syncs and renames the file into place. Returns the
    /// image's size.
    pub fn finish(self, meta: &Meta) -> std::io::Result<u64> {
        let tmp = self.tmp.clone();
        let r = self.finish_inner(meta);
        if r.is_err() {
            // No half-written file is left behind.
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }

    fn finish_inner(mut self, meta: &Meta) -> std::io::Result<u64> {
        let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
        self.file.write_all(&json)?;
        let sections = [
            Section {
                kind: SectionKind::Pages,
                crc: self.crc.clone().finalize(),
                offset: HEADER_LEN,
                len: self.page_bytes,
            },
            Section {
                kind: SectionKind::Meta,
                crc: crc32fast::hash(&json),
                offset: HEADER_LEN + self.page_bytes,
                len: json.len() as u64,
            },
        ];
        let header = encode_header(&sections);
        let mut f = self.file.into_inner().map_err(|e| e.into_error())?;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&header)?;
        f.sync_all()?;
        let size = HEADER_LEN + self.page_bytes + json.len() as u64;
        std::fs::rename(&self.tmp, &self.target)?;
        let dir = self.target.parent().filter(|d| !d.as_os_str().is_empty());
        if let Ok(d) = std::fs::File::open(dir.unwrap_or(Path::new("."))) {
            let _ = d.sync_all();
        }
        Ok(size)
    }

    /// Removes the temporary file (the checkpoint failed).
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// The header page for `sections`.
pub fn encode_header(sections: &[Section]) -> Vec<u8> {
    let mut h = vec![0u8; HEADER_LEN as usize];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&ARCH_X86_64.to_le_bytes());
    h[16..20].copy_from_slice(&(sections.len() as u32).to_le_bytes());
    for (i, s) in sections.iter().enumerate() {
        let e = 24 + 32 * i;
        h[e..e + 4].copy_from_slice(&(s.kind as u32).to_le_bytes());
        h[e + 4..e + 8].copy_from_slice(&s.crc.to_le_bytes());
        h[e + 8..e + 16].copy_from_slice(&s.offset.to_le_bytes());
        h[e + 16..e + 24].copy_from_slice(&s.len.to_le_bytes());
    }
    let crc = crc32fast::hash(&h[..HEADER_LEN as usize - 4]);
    h[HEADER_LEN as usize - 4..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Most sections a header may list.
const MAX_SECTIONS: usize = 16;

/// An image read and checked: its metadata, and the open file for its pages.
#[derive(Debug)]
pub struct Image {
    /// The image's path.
    pub path: PathBuf,
    /// The open file.
    pub file: std::fs::File,
    /// The metadata.
    pub meta: Meta,
    /// The page section.
    pub pages: Section,
    /// The metadata section.
    pub meta_section: Section,
    /// The file's size.
    pub size: u64,
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]))
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

/// Reads `path` and checks everything: header, version, architecture, every section's
/// checksum, and that the metadata is consistent (runs inside the page section and inside
/// their mappings, mappings sorted and disjoint, at least one thread, well-formed hex).
pub fn read(path: &Path) -> Result<Image, ImageError> {
    let io = |source| ImageError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let mut head = vec![0u8; HEADER_LEN as usize];
    let got = read_up_to(&mut file, &mut head).map_err(io)?;
    if got < 8 || head[0..8] != MAGIC {
        return Err(ImageError::NotAnImage { path: path.to_path_buf() });
    }
    let version = le32(&head, 8);
    if (got as u64) < HEADER_LEN {
        return Err(ImageError::Truncated {
            path: path.to_path_buf(),
            what: "header",
            need: HEADER_LEN,
            have: size,
        });
    }
    let stored = le32(&head, HEADER_LEN as usize - 4);
    let computed = crc32fast::hash(&head[..HEADER_LEN as usize - 4]);
    if stored != computed {
        // A wrong version with a whole header is reported as such, whatever the checksum
        // (another version may checksum its header differently).
        if version != VERSION {
            return Err(ImageError::Version { path: path.to_path_buf(), found: version });
        }
        return Err(ImageError::Checksum {
            path: path.to_path_buf(),
            section: "header",
            stored,
            computed,
        });
    }
    if version != VERSION {
        return Err(ImageError::Version { path: path.to_path_buf(), found: version });
    }
    let arch = le32(&head, 12);
    if arch != ARCH_X86_64 {
        return Err(ImageError::Arch { path: path.to_path_buf(), found: arch });
    }
    let malformed = |what: String| ImageError::Malformed { path: path.to_path_buf(), what };
    let n = le32(&head, 16) as usize;
    if n > MAX_SECTIONS {
        return Err(malformed(format!("{n} sections")));
    }
    let (mut pages, mut meta_s) = (None, None);
    for i in 0..n {
        let e = 24 + 32 * i;
        let s = |kind| Section {
            kind,
            crc: le32(&head, e + 4),
            offset: le64(&head, e + 8),
            len: le64(&head, e + 16),
        };
        match le32(&head, e) {
            1 => pages = Some(s(SectionKind::Pages)),
            2 => meta_s = Some(s(SectionKind::Meta)),
            k => return Err(malformed(format!("unknown section kind {k}"))),
        }
    }
    let (Some(pages), Some(meta_s)) = (pages, meta_s) else {
        return Err(malformed("a section is missing from the table".into()));
    };
    for s in [pages, meta_s] {
        let end = s.offset.checked_add(s.len).ok_or_else(|| malformed("section end".into()))?;
        if end > size {
            return Err(ImageError::Truncated {
                path: path.to_path_buf(),
                what: s.kind.name(),
                need: end,
                have: size,
            });
        }
    }
    if pages.offset % PAGE != 0 || pages.len % PAGE != 0 {
        return Err(malformed("the page data is not 4 KiB aligned".into()));
    }
    let checksum = |s: Section, computed: u32| {
        if computed == s.crc {
            Ok(())
        } else {
            Err(ImageError::Checksum {
                path: path.to_path_buf(),
                section: s.kind.name(),
                stored: s.crc,
                computed,
            })
        }
    };
    let json_len = usize::try_from(meta_s.len).map_err(|_| malformed("metadata size".into()))?;
    if json_len > 1 << 30 {
        return Err(malformed(format!("{json_len} bytes of metadata")));
    }
    let mut json = vec![0u8; json_len];
    file.read_exact_at(&mut json, meta_s.offset).map_err(io)?;
    checksum(meta_s, crc32fast::hash(&json))?;
    checksum(pages, crc_of(&file, pages).map_err(io)?)?;
    let meta: Meta =
        serde_json::from_slice(&json).map_err(|e| malformed(format!("metadata: {e}")))?;
    validate(&meta, pages).map_err(malformed)?;
    Ok(Image { path: path.to_path_buf(), file, meta, pages, meta_section: meta_s, size })
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// CRC-32 of a section, read in 1 MiB pieces.
fn crc_of(f: &std::fs::File, s: Section) -> std::io::Result<u32> {
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < s.len {
        let n = (s.len - at).min(buf.len() as u64) as usize;
        f.read_exact_at(&mut buf[..n], s.offset + at)?;
        h.update(&buf[..n]);
        at += n as u64;
    }
    Ok(h.finalize())
}

/// The consistency checks of [`read`] on the metadata.
fn validate(m: &Meta, pages: Section) -> Result<(), String> {
    if m.threads.is_empty() {
        return Err("no threads".into());
    }
    let mut last_end = 0;
    for v in &m.vmas {
        if v.start % PAGE != 0 || v.end % PAGE != 0 || v.start >= v.end || v.start < last_end {
            return Err(format!("mapping {:#x}-{:#x} is misaligned or overlaps", v.start, v.end));
        }
        last_end = v.end;
        for r in &v.runs {
            let len = r.pages.checked_mul(PAGE).ok_or("run length")?;
            let end = r.addr.checked_add(len).ok_or("run end")?;
            let fend = r.offset.checked_add(len).ok_or("run offset")?;
            if r.addr % PAGE != 0
                || r.addr < v.start
                || end > v.end
                || r.offset % PAGE != 0
                || r.offset < pages.offset
                || fend > pages.offset + pages.len
            {
                return Err(format!(
                    "page run at {:#x} ({} pages, file offset {:#x}) lies outside its mapping \
                     {:#x}-{:#x} or the page data",
                    r.addr, r.pages, r.offset, v.start, v.end
                ));
            }
        }
    }
    for t in &m.threads {
        if unhex(&t.xsave, 4096).is_none() || unhex(&t.altstack, 24).is_none() {
            return Err(format!("thread {}: malformed XSAVE area or signal stack", t.tid));
        }
        for p in &t.pending {
            check_pending(p)?;
        }
    }
    for p in &m.pending {
        check_pending(p)?;
    }
    let mut ends: std::collections::BTreeMap<u64, (bool, bool)> = Default::default();
    for (i, d) in m.fds.iter().enumerate() {
        if !(0..1 << 20).contains(&d.fd) || m.fds[..i].iter().any(|e| e.fd >= d.fd) {
            return Err(format!("descriptor {} is out of order", d.fd));
        }
        if let Some(of) = d.dup_of
            && !m.fds[..i].iter().any(|e| e.fd == of)
        {
            return Err(format!("descriptor {} duplicates {of}, which is not before it", d.fd));
        }
        if let FdKind::Pipe { id, write, data, .. } = &d.kind {
            let e = ends.entry(*id).or_default();
            if *write {
                e.1 = true
            } else {
                e.0 = true
            }
            if let Some(h) = data
                && unhex(h, h.len() / 2).is_none_or(|b| b.len() > 1 << 20)
            {
                return Err(format!("descriptor {}: malformed pipe contents", d.fd));
            }
        }
    }
    if ends.values().any(|&(r, w)| !(r && w)) {
        return Err("a pipe lacks one of its ends".into());
    }
    for (which, t) in &m.itimers {
        if !(0..=2).contains(which)
            || t.iter().any(|&v| v < 0)
            || t[1] >= 1_000_000
            || t[3] >= 1_000_000
        {
            return Err(format!("interval timer {which}"));
        }
    }
    for a in &m.actions {
        if !(1..=64).contains(&a.sig) {
            return Err(format!("disposition of signal {}", a.sig));
        }
    }
    Ok(())
}

fn check_pending(p: &Pending) -> Result<(), String> {
    if !(1..=64).contains(&p.sig) || unhex(&p.info, 128).is_none() {
        return Err(format!("pending signal {}", p.sig));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_bad_input() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(unhex("00ab10", 3), Some(vec![0, 0xab, 0x10]));
        assert_eq!(unhex("00ab1", 3), None);
        assert_eq!(unhex("zz", 1), None);
        assert_eq!(unhex("é0", 1), None);
    }

    #[test]
    fn header_has_its_checksum_at_the_end() {
        let h = encode_header(&[Section {
            kind: SectionKind::Pages,
            crc: 7,
            offset: HEADER_LEN,
            len: 0,
        }]);
        assert_eq!(&h[..8], b"DUNECKPT");
        assert_eq!(le32(&h, 4092), crc32fast::hash(&h[..4092]));
    }
}
