//! The program's view of procfs.
//!
//! The program runs inside the supervisor's process, so its `/proc/self` is the supervisor:
//! the kernel would show the supervisor's layout (`maps`), read the supervisor's stack for
//! `environ`, list the runtime's descriptors (`fd/`) and helper threads (`task/`). Every open
//! (and `readlink`, and directory listing) of a procfs object is therefore decided on *what
//! the object is*, never on the path string the program passed: the path is resolved once
//! into an `O_PATH` descriptor (`syscall::open`), and that descriptor is placed here:
//!
//! 1. its canonical path (`/proc/self/fd/N`, `d_path`) is taken apart below the procfs mount it
//!    belongs to (`/proc/self/mountinfo`: mount point and root, matched by device), giving the
//!    components inside procfs, e.g. `["1234", "task", "1240", "maps"]`;
//! 2. a leading pid is the program's own process (the sandbox's pid as that procfs instance
//!    numbers it), one of its program threads (top level or under `task/`), a helper thread of
//!    the runtime (hidden: `ENOENT`), or another process;
//! 3. the entry below it gets a [`Verdict`]: the real file, a synthesized one, the program's
//!    executable, hidden or refused.
//!
//! **The program's own entries** show the program: `maps`, `smaps`, `smaps_rollup` from the
//! memory manager's records (names, devices and inodes of file mappings from the host's view
//! of the same addresses), `environ`, `cmdline` from the program's own memory and `auxv` as
//! the loader built it, `status`, `stat`, `statm` with the program's sizes, thread count and
//! signal dispositions (names are right as they are: the runtime names its host threads after
//! the program), `limits` with the program's `RLIMIT_NOFILE`, `RLIMIT_AS`, `RLIMIT_DATA` and
//! `RLIMIT_SIGPENDING`; `fd/`, `fdinfo/` and `task/` are the real directories, listed without
//! the runtime's descriptors and threads (`getdents64`, see [`filter_dirents`]); `exe` names
//! the program's executable. Entries that would expose the supervisor's memory or state are
//! refused with `EACCES`: `mem`, `pagemap`, `map_files/`, `syscall`, `stack`, `wchan`,
//! `personality`, `numa_maps`, `timers`, `clear_refs`, the fault-injection files; and so is
//! any entry not known to be harmless (the list is an allow-list, so an entry a newer kernel
//! adds is refused until someone looks at it).
//!
//! **Other processes' entries** may be other sandboxes' supervisors: what exposes memory or
//! layout is refused for every other process (`mem`, `maps`, `smaps`, `smaps_rollup`,
//! `numa_maps`, `pagemap`, `map_files/`, `environ`, `auxv`, `syscall`, `stack`, `wchan`,
//! `personality`, `timers`, `fd/`, `fdinfo/`), and `stat` shows the address fields as Linux
//! shows them to a reader without ptrace access (`startcode`/`endcode` 1, the rest 0). Their
//! `status`, `cmdline`, `comm`, `io`, ... are the real files (`ps` and `top` work).
//!
//! Synthesized content is a snapshot taken at open time in a sealed memfd the program gets
//! read-only, so `read`, `lseek`, `pread`, `fstat` and `mmap` work as on any file.

use std::ffi::OsStr;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;

use crate::errno::Errno;
use crate::mm::{Brk, Image, Kind, PAGE, Vma};
use crate::process::Process;
use crate::sys;

/// `PROC_SUPER_MAGIC` from `<linux/magic.h>`.
pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// What the program gets for a procfs object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The real object.
    Allow,
    /// Synthesized content.
    Synth(Entry),
    /// The program's own executable (its `exe` link).
    Exe,
    /// As if it did not exist (`ENOENT`): a runtime descriptor's or thread's entry.
    Hidden,
    /// `EACCES`: it would expose the supervisor.
    Refused,
}

/// A synthesized entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// `maps`.
    Maps,
    /// `smaps`.
    Smaps,
    /// `smaps_rollup`.
    SmapsRollup,
    /// `status`.
    Status,
    /// `stat` of the program's own process or thread.
    Stat,
    /// `statm`.
    Statm,
    /// `cmdline`.
    Cmdline,
    /// `environ`.
    Environ,
    /// `auxv`.
    Auxv,
    /// `limits`.
    Limits,
    /// `stat` of another process, its address fields hidden.
    ForeignStat,
}

/// Whose entry a procfs object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// Not below a pid directory (`/proc/cpuinfo`, `/proc/sys/...`, the root).
    Nobody,
    /// The program's own process; `thread` when below a program thread's directory.
    Own {
        /// The program thread (host thread id), for `task/TID/...` and `/proc/TID/...`.
        thread: Option<i32>,
    },
    /// A helper thread of the runtime (or a thread that cannot be told apart from one).
    Helper,
    /// Another process.
    Other,
}

/// A procfs object, placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// Whose it is.
    pub who: Who,
    /// The components below the pid (or `task/TID`) directory; below the procfs root for
    /// [`Who::Nobody`].
    pub rest: Vec<Vec<u8>>,
    /// The object's path as the supervisor can read it (its `d_path`).
    pub path: Vec<u8>,
}

/// What the classification needs to know about the program.
#[allow(missing_debug_implementations)]
pub struct Me<'a> {
    /// The sandbox's pid as the procfs instance numbers it.
    pub pid: i32,
    /// Whether the host thread id is one of the program's threads (only meaningful where the
    /// procfs instance numbers threads as the host does).
    pub program_thread: &'a dyn Fn(i32) -> bool,
    /// Whether the number is a thread of the sandbox's own thread group.
    pub in_group: &'a dyn Fn(i32) -> bool,
}

fn number(c: &[u8]) -> Option<i32> {
    if c.is_empty() || c.len() > 10 || !c.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(c).ok()?.parse().ok()
}

/// Places the components `comps` of a procfs object (below the procfs root).
pub fn classify(comps: &[Vec<u8>], me: &Me<'_>) -> (Who, Vec<Vec<u8>>) {
    let Some(p) = comps.first().and_then(|c| number(c)) else {
        return (Who::Nobody, comps.to_vec());
    };
    let task = |comps: &[Vec<u8>]| -> Option<i32> {
        (comps.len() >= 3 && comps[1] == b"task").then(|| number(&comps[2])).flatten()
    };
    if p == me.pid || (me.program_thread)(p) {
        // Our process (or a thread's top-level directory, which shows the same entries).
        let top = if p == me.pid { None } else { Some(p) };
        if let Some(t) = task(comps) {
            // The leader's directory stays while the process lives (a zombie leader's too).
            return if t == me.pid || (me.program_thread)(t) {
                (Who::Own { thread: Some(t) }, comps[3..].to_vec())
            } else {
                (Who::Helper, comps[3..].to_vec())
            };
        }
        return (Who::Own { thread: top }, comps[1..].to_vec());
    }
    if (me.in_group)(p) {
        return (Who::Helper, comps[1..].to_vec());
    }
    match task(comps) {
        Some(_) => (Who::Other, comps[3..].to_vec()),
        None => (Who::Other, comps[1..].to_vec()),
    }
}

/// Entries whose real content is the same for the program as for any process: nothing of the
/// supervisor's memory or private state (first component; the whole subtree for directories).
const HARMLESS: &[&[u8]] = &[
    b"arch_status",
    b"attr",
    b"autogroup",
    b"cgroup",
    b"children",
    b"comm",
    b"coredump_filter",
    b"cpu_resctrl_groups",
    b"cpuset",
    b"cwd",
    b"gid_map",
    b"io",
    b"ksm_merging_pages",
    b"ksm_stat",
    b"loginuid",
    b"mountinfo",
    b"mounts",
    b"mountstats",
    b"net",
    b"ns",
    b"oom_adj",
    b"oom_score",
    b"oom_score_adj",
    b"patch_state",
    b"projid_map",
    b"root",
    b"sched",
    b"schedstat",
    b"sessionid",
    b"setgroups",
    b"task",
    b"timens_offsets",
    b"timerslack_ns",
    b"uid_map",
];

/// Entries of other processes shown as they are (besides [`HARMLESS`]): sizes and names, no
/// addresses.
const OTHERS_REAL: &[&[u8]] = &[b"cmdline", b"exe", b"limits", b"status", b"statm"];

/// The verdict on an object `rest` of `who` (`link`: the object is a symlink, not followed;
/// `is_runtime_fd`: whether a descriptor number is the runtime's).
pub fn verdict(
    who: Who,
    rest: &[Vec<u8>],
    link: bool,
    is_runtime_fd: &dyn Fn(i32) -> bool,
) -> Verdict {
    let first = rest.first().map(Vec::as_slice);
    match who {
        Who::Nobody => Verdict::Allow,
        Who::Helper => Verdict::Hidden,
        Who::Own { .. } => {
            let Some(first) = first else { return Verdict::Allow };
            let synth = |e| if rest.len() == 1 { Verdict::Synth(e) } else { Verdict::Refused };
            match first {
                b"maps" => synth(Entry::Maps),
                b"smaps" => synth(Entry::Smaps),
                b"smaps_rollup" => synth(Entry::SmapsRollup),
                b"status" => synth(Entry::Status),
                b"stat" => synth(Entry::Stat),
                b"statm" => synth(Entry::Statm),
                b"cmdline" => synth(Entry::Cmdline),
                b"environ" => synth(Entry::Environ),
                b"auxv" => synth(Entry::Auxv),
                b"limits" => synth(Entry::Limits),
                b"exe" if link && rest.len() == 1 => Verdict::Exe,
                b"exe" => Verdict::Allow,
                b"fd" | b"fdinfo" => match rest.get(1) {
                    None => Verdict::Allow,
                    Some(n) if rest.len() == 2 => match number(n) {
                        Some(fd) if is_runtime_fd(fd) => Verdict::Hidden,
                        _ => Verdict::Allow,
                    },
                    Some(_) => Verdict::Allow,
                },
                f if HARMLESS.contains(&f) => Verdict::Allow,
                _ => Verdict::Refused,
            }
        }
        Who::Other => {
            let Some(first) = first else { return Verdict::Allow };
            match first {
                b"stat" if rest.len() == 1 => Verdict::Synth(Entry::ForeignStat),
                f if HARMLESS.contains(&f) || OTHERS_REAL.contains(&f) => Verdict::Allow,
                _ => Verdict::Refused,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Where an object is: its procfs mount, and its components inside procfs.

/// A procfs mount: its device, root inside procfs, mount point, and the sandbox's pid as that
/// instance numbers it (`self`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mount {
    dev: u64,
    root: Vec<u8>,
    point: Vec<u8>,
    self_pid: Option<i32>,
}

/// The procfs mounts, from `/proc/self/mountinfo`, and the process they were read for (a
/// forked child's `self` is another pid); read again when an object's device is not among
/// them (a mount made since).
static MOUNTS: Mutex<(u32, Vec<Mount>)> = Mutex::new((0, Vec::new()));

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let d = |k: usize| u32::from(b[i + k] - b'0');
            let v = d(1) * 64 + d(2) * 8 + d(3);
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The procfs mounts of a mountinfo text: (device, root, mount point).
fn parse_mountinfo(text: &[u8]) -> Vec<(u64, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let f: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let Some(sep) = f.iter().position(|x| *x == b"-") else { continue };
        if sep < 6 || f.get(sep + 1) != Some(&&b"proc"[..]) {
            continue;
        }
        let Some((maj, min)) = std::str::from_utf8(f[2]).ok().and_then(|d| d.split_once(':'))
        else {
            continue;
        };
        let (Ok(maj), Ok(min)) = (maj.parse::<u32>(), min.parse::<u32>()) else { continue };
        out.push((libc::makedev(maj, min), unescape(f[3]), unescape(f[4])));
    }
    out
}

fn load_mounts() -> Vec<Mount> {
    let Ok(text) = crate::hostread::read(std::path::Path::new("/proc/self/mountinfo")) else {
        return Vec::new();
    };
    parse_mountinfo(&text)
        .into_iter()
        .map(|(dev, root, point)| {
            let mut link = point.clone();
            link.extend_from_slice(b"/self");
            let self_pid =
                std::fs::read_link(os(&link)).ok().and_then(|p| number(p.as_os_str().as_bytes()));
            Mount { dev, root, point, self_pid }
        })
        .collect()
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

/// The components of `path` (split at `/`, empty ones and `.` left out).
fn split(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").map(<[u8]>::to_vec).collect()
}

/// The components inside procfs of `path`, on the procfs mount `m` (None when `path` is not
/// below its mount point).
fn inside(m: &Mount, path: &[u8]) -> Option<Vec<Vec<u8>>> {
    let point = if m.point == b"/" { &b""[..] } else { &m.point[..] };
    let below = path.strip_prefix(point)?;
    if !below.is_empty() && below[0] != b'/' {
        return None;
    }
    let mut comps = split(&m.root);
    comps.extend(split(below));
    Some(comps)
}

/// Places the procfs object open on `fd` (status `st`) for the process `proc`.
/// `None`: it cannot be placed (a mount the supervisor does not know): fail closed.
pub fn locate(fd: RawFd, st: &libc::stat, proc: &Process) -> Option<Located> {
    let mut path = sys::fd_path(fd)?;
    if let Some(p) = path.strip_suffix(b" (deleted)") {
        path = p.to_vec();
    }
    let find = |ms: &[Mount]| -> Option<(Mount, Vec<Vec<u8>>)> {
        ms.iter()
            .filter(|m| m.dev == st.st_dev)
            .filter_map(|m| inside(m, &path).map(|c| (m.clone(), c)))
            .max_by_key(|(m, _)| m.point.len())
    };
    // The cache is only tried (never waited for): a forked child may find it held by a
    // thread it does not have, and then reads the mounts afresh.
    let me = std::process::id();
    let found = match MOUNTS.try_lock() {
        Ok(mut ms) => match find(&ms.1).filter(|_| ms.0 == me) {
            Some(f) => Some(f),
            None => {
                *ms = (me, load_mounts());
                find(&ms.1)
            }
        },
        Err(_) => find(&load_mounts()),
    };
    let (mount, comps) = found?;
    let host_pid = std::process::id() as i32;
    // Threads are numbered as the host numbers them only in the instance of our own pid
    // namespace; in another one, only the process itself is recognised, and every other
    // thread of ours is hidden.
    let same_ns = mount.self_pid == Some(host_pid);
    let own_pid = mount.self_pid.unwrap_or(host_pid);
    let threads: Vec<i32> = proc.threads.lock().unwrap().keys().copied().collect();
    let program_thread = |t: i32| same_ns && threads.contains(&t);
    let mut group = mount.point.clone();
    group.extend_from_slice(format!("/{own_pid}/task/").as_bytes());
    let in_group = |t: i32| {
        let mut p = group.clone();
        p.extend_from_slice(t.to_string().as_bytes());
        std::fs::symlink_metadata(os(&p)).is_ok()
    };
    let me = Me { pid: own_pid, program_thread: &program_thread, in_group: &in_group };
    let (who, rest) = classify(&comps, &me);
    Some(Located { who, rest, path })
}

// ---------------------------------------------------------------------------------------------
// Synthesized content.

/// One host mapping (a line of the host's `/proc/self/maps`): what names a program mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostMap {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// The file offset of `start`.
    pub offset: u64,
    /// `MAJ:MIN` as the kernel prints it.
    pub dev: String,
    /// The inode (0: none).
    pub ino: u64,
    /// The name (a path, maybe with ` (deleted)`; empty for anonymous memory).
    pub name: Vec<u8>,
}

/// Parses one maps (or smaps header) line: `start-end perms offset dev inode [name]`.
pub fn parse_map_line(line: &[u8]) -> Option<HostMap> {
    let mut rest = line;
    let mut field = || -> Option<&[u8]> {
        let t = rest.iter().position(|&b| b != b' ')?;
        rest = &rest[t..];
        let e = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let (f, r) = rest.split_at(e);
        rest = r;
        Some(f)
    };
    let range = field()?;
    let _perms = field()?;
    let offset = field()?;
    let dev = field()?;
    let ino = field()?;
    let hex = |b: &[u8]| u64::from_str_radix(std::str::from_utf8(b).ok()?, 16).ok();
    let dash = range.iter().position(|&b| b == b'-')?;
    let start = hex(&range[..dash])?;
    let end = hex(&range[dash + 1..])?;
    let offset = hex(offset)?;
    let ino = std::str::from_utf8(ino).ok()?.parse().ok()?;
    let dev = std::str::from_utf8(dev).ok()?.to_owned();
    if !dev.contains(':') {
        return None;
    }
    let name = match rest.iter().position(|&b| b != b' ') {
        Some(i) => rest[i..].to_vec(),
        None => Vec::new(),
    };
    Some(HostMap { start, end, offset, dev, ino, name })
}

/// The host mappings of a maps text that meet `[lo, hi)`, in address order.
pub fn parse_maps(text: &[u8], lo: u64, hi: u64) -> Vec<HostMap> {
    text.split(|&b| b == b'\n')
        .filter_map(parse_map_line)
        .filter(|m| m.end > lo && m.start < hi)
        .collect()
}

/// One field line of an smaps block: its name (with the colon), its value in kB when it is a
/// size, and the line itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// `Rss:`, `VmFlags:`, ...
    pub name: Vec<u8>,
    /// The size in kB, for `NAME: N kB` lines.
    pub kb: Option<u64>,
    /// The whole line.
    pub line: Vec<u8>,
}

/// One mapping of the host's smaps with its fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostBlock {
    /// The mapping.
    pub map: HostMap,
    /// Its fields, in the kernel's order.
    pub fields: Vec<Field>,
}

/// Parses an smaps text, keeping the blocks that meet `[lo, hi)`.
pub fn parse_smaps(text: &[u8], lo: u64, hi: u64) -> Vec<HostBlock> {
    let mut out: Vec<HostBlock> = Vec::new();
    let mut keep = false;
    for line in text.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        if let Some(map) = parse_map_line(line) {
            keep = map.end > lo && map.start < hi;
            if keep {
                out.push(HostBlock { map, fields: Vec::new() });
            }
            continue;
        }
        let Some(c) = line.iter().position(|&b| b == b':') else { continue };
        if !keep {
            continue;
        }
        let value = std::str::from_utf8(&line[c + 1..]).unwrap_or("").trim();
        let kb = value.strip_suffix(" kB").and_then(|v| v.trim().parse().ok());
        if let Some(b) = out.last_mut() {
            b.fields.push(Field { name: line[..=c].to_vec(), kb, line: line.to_vec() });
        }
    }
    out
}

/// A program mapping with what the host says about it.
struct Mapped<'a> {
    vma: &'a Vma,
    /// The host mapping at its start.
    host: Option<&'a HostMap>,
}

/// The maps header of a program mapping (fs/proc/task_mmu.c, `show_vma_header_prefix` and
/// `show_map_vma`): `start-end perms offset dev inode`, then, when it has a name, spaces up to
/// column 73 and the name.
fn header(m: &Mapped<'_>, brk: &Brk, img: &Image) -> Vec<u8> {
    let v = m.vma;
    let (offset, dev, ino, name): (u64, String, u64, Vec<u8>) = match (v.kind, m.host) {
        (Kind::File { offset, file }, host) => (
            offset,
            format!("{:02x}:{:02x}", libc::major(file.dev), libc::minor(file.dev)),
            file.ino,
            host.map(|h| h.name.clone()).unwrap_or_default(),
        ),
        // Memory the host backs with an object of its own (shared anonymous memory is
        // `/dev/zero (deleted)`, a SysV segment `/SYSV...`): as the host shows it.
        (_, Some(h)) if h.ino != 0 => {
            (h.offset + (v.start - h.start), h.dev.clone(), h.ino, h.name.clone())
        }
        (Kind::Vdso, _) => (0, "00:00".into(), 0, b"[vdso]".to_vec()),
        (Kind::Vvar { hva }, _) => (0, "00:00".into(), 0, crate::vdso::data_name(hva).to_vec()),
        _ => {
            let name: &[u8] = if v.start < brk.cur && v.end > brk.start {
                b"[heap]"
            } else if img.start_stack != 0 && v.start <= img.start_stack && v.end >= img.start_stack
            {
                b"[stack]"
            } else {
                b""
            };
            (0, "00:00".into(), 0, name.to_vec())
        }
    };
    let r = |bit, c| if v.prot & bit != 0 { c } else { '-' };
    let mut line = format!(
        "{:08x}-{:08x} {}{}{}{} {:08x} {} {} ",
        v.start,
        v.end,
        r(libc::PROT_READ, 'r'),
        r(libc::PROT_WRITE, 'w'),
        r(libc::PROT_EXEC, 'x'),
        if v.shared { 's' } else { 'p' },
        offset,
        dev,
        ino
    )
    .into_bytes();
    if !name.is_empty() {
        while line.len() < 72 {
            line.push(b' ');
        }
        line.push(b' ');
        line.extend_from_slice(&name);
    }
    line
}

/// Each program mapping with the host mapping at its start (both lists in address order).
fn mapped<'a>(vmas: &'a [Vma], host: &'a [HostMap]) -> Vec<Mapped<'a>> {
    vmas.iter()
        .map(|v| Mapped {
            vma: v,
            host: host.iter().find(|h| h.start <= v.start && v.start < h.end),
        })
        .collect()
}

/// `maps`: one line per program mapping, from the records, named as the host names the same
/// addresses.
pub fn maps_text(vmas: &[Vma], brk: &Brk, img: &Image, host: &[HostMap]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in mapped(vmas, host) {
        out.extend(header(&m, brk, img));
        out.push(b'\n');
    }
    out
}

/// The fields of program mapping `v`, from the host blocks that overlap it: sizes summed (a
/// block only partly inside counts in proportion), `Size` the mapping's, the rest (page sizes,
/// `THPeligible`, `VmFlags`, ...) the first block's.
fn fields_of(v: &Vma, blocks: &[HostBlock]) -> Vec<Field> {
    let over: Vec<&HostBlock> =
        blocks.iter().filter(|b| b.map.end > v.start && b.map.start < v.end).collect();
    let Some(first) = over.first() else { return Vec::new() };
    let size_kb = (v.end - v.start) / 1024;
    first
        .fields
        .iter()
        .map(|f| {
            let Some(_) = f.kb else { return f.clone() };
            let kb = match f.name.as_slice() {
                b"Size:" => size_kb,
                b"KernelPageSize:" | b"MMUPageSize:" => f.kb.unwrap_or(4),
                _ => over
                    .iter()
                    .map(|b| {
                        let n = b.fields.iter().find(|g| g.name == f.name).and_then(|g| g.kb);
                        let (s, e) = (b.map.start.max(v.start), b.map.end.min(v.end));
                        let len = b.map.end - b.map.start;
                        n.unwrap_or(0).saturating_mul(e - s) / len.max(1)
                    })
                    .sum(),
            };
            Field { name: f.name.clone(), kb: Some(kb), line: kb_line(&f.name, kb) }
        })
        .collect()
}

/// `NAME:` padded to 16 columns, the value right-aligned in 8, ` kB` (task_mmu.c's layout).
fn kb_line(name: &[u8], kb: u64) -> Vec<u8> {
    let mut l = name.to_vec();
    while l.len() < 16 {
        l.push(b' ');
    }
    l.extend(format!("{kb:>8} kB").into_bytes());
    l
}

fn field(fields: &[Field], name: &[u8]) -> u64 {
    fields.iter().find(|f| f.name == name).and_then(|f| f.kb).unwrap_or(0)
}

/// `smaps`: each mapping's header and fields.
pub fn smaps_text(
    vmas: &[Vma],
    brk: &Brk,
    img: &Image,
    host: &[HostMap],
    blocks: &[HostBlock],
) -> Vec<u8> {
    let mut out = Vec::new();
    for m in mapped(vmas, host) {
        out.extend(header(&m, brk, img));
        out.push(b'\n');
        for f in fields_of(m.vma, blocks) {
            out.extend(f.line);
            out.push(b'\n');
        }
    }
    out
}

/// Whether the host backs `m` with shared memory (tmpfs: shared anonymous memory, SysV
/// segments, memfds), which Linux counts as `RssShmem`/`Pss_Shmem`.
fn is_shmem(m: &Mapped<'_>) -> bool {
    m.host.is_some_and(|h| h.ino != 0 && h.dev == "00:01")
}

/// `smaps_rollup`: the sums over every mapping, under one `[rollup]` header spanning them
/// (the rollup's fields are the host's own rollup's).
pub fn rollup_text(
    vmas: &[Vma],
    host: &[HostMap],
    blocks: &[HostBlock],
    names: &[Vec<u8>],
) -> Vec<u8> {
    let (lo, hi) = (vmas.first().map_or(0, |v| v.start), vmas.last().map_or(0, |v| v.end));
    let mut out = format!("{lo:08x}-{hi:08x} ---p 00000000 00:00 0").into_bytes();
    while out.len() < 72 {
        out.push(b' ');
    }
    out.extend_from_slice(b" [rollup]\n");
    let per: Vec<(bool, bool, Vec<Field>)> = mapped(vmas, host)
        .iter()
        .map(|m| {
            let file = matches!(m.vma.kind, Kind::File { .. }) && !is_shmem(m);
            (file, is_shmem(m), fields_of(m.vma, blocks))
        })
        .collect();
    for name in names {
        let sum = |pick: &dyn Fn(bool, bool) -> bool, n: &[u8]| -> u64 {
            per.iter().filter(|(f, s, _)| pick(*f, *s)).map(|(_, _, fs)| field(fs, n)).sum()
        };
        let kb = match name.as_slice() {
            b"Pss_Anon:" => sum(&|f, s| !f && !s, b"Pss:"),
            b"Pss_File:" => sum(&|f, _| f, b"Pss:"),
            b"Pss_Shmem:" => sum(&|_, s| s, b"Pss:"),
            n => sum(&|_, _| true, n),
        };
        out.extend(kb_line(name, kb));
        out.push(b'\n');
    }
    out
}

/// The program's memory sizes in kB, as `status` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sizes {
    /// All mappings (`VmSize`).
    pub size: u64,
    /// Locked (`VmLck`).
    pub locked: u64,
    /// Resident (`VmRSS`).
    pub rss: u64,
    /// Resident anonymous (`RssAnon`).
    pub rss_anon: u64,
    /// Resident file pages (`RssFile`).
    pub rss_file: u64,
    /// Resident shared memory (`RssShmem`).
    pub rss_shmem: u64,
    /// Private writable mappings but the stack (`VmData`).
    pub data: u64,
    /// The stack (`VmStk`).
    pub stack: u64,
    /// The executable's code (`VmExe`).
    pub exe: u64,
    /// Other executable mappings (`VmLib`).
    pub lib: u64,
    /// Swapped out (`VmSwap`).
    pub swap: u64,
}

/// The program's sizes from the records (and the host blocks, for what is resident).
pub fn sizes(vmas: &[Vma], img: &Image, host: &[HostMap], blocks: &[HostBlock]) -> Sizes {
    let mut s = Sizes::default();
    for m in mapped(vmas, host) {
        let v = m.vma;
        let kb = (v.end - v.start) / 1024;
        let f = fields_of(v, blocks);
        s.size += kb;
        s.locked += field(&f, b"Locked:");
        let rss = field(&f, b"Rss:");
        let anon = field(&f, b"Anonymous:");
        s.rss += rss;
        s.rss_anon += anon;
        if is_shmem(&m) {
            s.rss_shmem += rss;
        } else {
            s.rss_file += rss.saturating_sub(anon);
        }
        s.swap += field(&f, b"Swap:");
        let stack = v.kind == Kind::Stack
            || (img.start_stack != 0 && v.start <= img.start_stack && v.end >= img.start_stack);
        let w = v.prot & libc::PROT_WRITE != 0;
        let x = v.prot & libc::PROT_EXEC != 0;
        if stack {
            s.stack += kb;
        } else if w && !v.shared {
            s.data += kb;
        }
        if x && !w && !stack {
            s.lib += kb;
        }
    }
    if img.end_code > img.start_code {
        let code = (page_up(img.end_code) - (img.start_code & !(PAGE - 1))) / 1024;
        s.exe = code;
        s.lib = s.lib.saturating_sub(code);
    }
    s
}

fn page_up(x: u64) -> u64 {
    crate::mm::page_up(x).unwrap_or(x)
}

/// What the program's `status` and `stat` show of its signals: (blocked, ignored, caught).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Signals {
    /// The thread's blocked mask (0 for a thread other than the caller's).
    pub blocked: u64,
    /// Signals whose disposition is `SIG_IGN`.
    pub ignored: u64,
    /// Signals with a handler.
    pub caught: u64,
}

/// `status` with the program's sizes, thread count and signals in place of the host's.
pub fn status_text(real: &[u8], s: &Sizes, threads: usize, sig: &Signals) -> Vec<u8> {
    let mut out = Vec::with_capacity(real.len());
    for line in real.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let Some(c) = body.iter().position(|&b| b == b':') else {
            out.extend_from_slice(line);
            continue;
        };
        let name = &body[..c];
        let kb = |v: u64| format!("{}:\t{v:>8} kB\n", String::from_utf8_lossy(name)).into_bytes();
        let mask = |v: u64| format!("{}:\t{v:016x}\n", String::from_utf8_lossy(name)).into_bytes();
        let new = match name {
            b"VmPeak" | b"VmSize" => kb(s.size),
            b"VmLck" => kb(s.locked),
            b"VmPin" => kb(0),
            b"VmHWM" | b"VmRSS" => kb(s.rss),
            b"RssAnon" => kb(s.rss_anon),
            b"RssFile" => kb(s.rss_file),
            b"RssShmem" => kb(s.rss_shmem),
            b"VmData" => kb(s.data),
            b"VmStk" => kb(s.stack),
            b"VmExe" => kb(s.exe),
            b"VmLib" => kb(s.lib),
            b"VmSwap" => kb(s.swap),
            b"Threads" => format!("Threads:\t{threads}\n").into_bytes(),
            b"SigBlk" => mask(sig.blocked),
            b"SigIgn" => mask(sig.ignored),
            b"SigCgt" => mask(sig.caught),
            _ => line.to_vec(),
        };
        out.extend(new);
    }
    out
}

/// The fields of a `stat` line after `comm`: (the part up to and including `) `, the fields
/// from `state` on).
fn stat_fields(real: &[u8]) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let close = real.iter().rposition(|&b| b == b')')?;
    let head = real.get(..close + 2)?.to_vec();
    let rest = real.get(close + 2..)?;
    let rest = rest.strip_suffix(b"\n").unwrap_or(rest);
    Some((head, rest.split(|&b| b == b' ').map(<[u8]>::to_vec).collect()))
}

fn join_stat(head: Vec<u8>, fields: &[Vec<u8>]) -> Vec<u8> {
    let mut out = head;
    out.extend(fields.join(&b' '));
    out.push(b'\n');
    out
}

/// Sets field `n` (1-based, as proc(5) numbers them) of the fields after `comm`.
fn set_field(fields: &mut [Vec<u8>], n: usize, v: u64) {
    if let Some(f) = n.checked_sub(3).and_then(|i| fields.get_mut(i)) {
        *f = v.to_string().into_bytes();
    }
}

/// The program's `stat` (fs/proc/array.c, `do_task_stat`): the host's line with the thread
/// count, sizes, signal masks and the image's addresses of the program.
pub fn stat_text(
    real: &[u8],
    img: &Image,
    brk_start: u64,
    s: &Sizes,
    threads: usize,
    sig: &Signals,
) -> Option<Vec<u8>> {
    let (head, mut f) = stat_fields(real)?;
    for (n, v) in [
        (20, threads as u64),
        (23, s.size * 1024),
        (24, s.rss / (PAGE / 1024)),
        (26, img.start_code),
        (27, img.end_code),
        (28, img.start_stack),
        (29, 0),
        (30, 0),
        (32, sig.blocked),
        (33, sig.ignored),
        (34, sig.caught),
        (45, img.start_data),
        (46, img.end_data),
        (47, brk_start),
        (48, img.arg_start),
        (49, img.arg_end),
        (50, img.env_start),
        (51, img.env_end),
    ] {
        set_field(&mut f, n, v);
    }
    Some(join_stat(head, &f))
}

/// Another process's `stat` as Linux shows it to a reader without ptrace access
/// (`do_task_stat` with `permitted` false): `startcode`/`endcode` 1 where there is code, the
/// stack and the other addresses 0.
pub fn foreign_stat_text(real: &[u8]) -> Option<Vec<u8>> {
    let (head, mut f) = stat_fields(real)?;
    let nonzero = |f: &[Vec<u8>], n: usize| f.get(n - 3).is_some_and(|v| v.as_slice() != b"0");
    for n in [26, 27] {
        if nonzero(&f, n) {
            set_field(&mut f, n, 1);
        }
    }
    for n in [28, 29, 30, 45, 46, 47, 48, 49, 50, 51] {
        set_field(&mut f, n, 0);
    }
    Some(join_stat(head, &f))
}

/// `statm`: size, resident, shared, text, lib (0), data, dt (0), in pages.
pub fn statm_text(s: &Sizes) -> Vec<u8> {
    let p = PAGE / 1024;
    format!(
        "{} {} {} {} 0 {} 0\n",
        s.size / p,
        s.rss / p,
        (s.rss_file + s.rss_shmem) / p,
        s.exe / p,
        (s.data + s.stack) / p
    )
    .into_bytes()
}

/// The program's (soft, hard) view of the limit a `limits` row names, if it has its own.
pub type LimitView<'a> = dyn Fn(&[u8]) -> Option<(u64, u64)> + 'a;

/// `limits` with the program's view of the limits the sandbox keeps apart.
pub fn limits_text(real: &[u8], view: &LimitView<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(real.len());
    for line in real.split_inclusive(|&b| b == b'\n') {
        let v = line.get(..25).and_then(|name| {
            let name = std::str::from_utf8(name).ok()?.trim_end();
            view(name.as_bytes())
        });
        match (v, line.get(68..)) {
            (Some((soft, hard)), Some(units)) => {
                let show = |v: u64| {
                    if v == libc::RLIM_INFINITY { "unlimited".to_owned() } else { v.to_string() }
                };
                out.extend_from_slice(&line[..26]);
                out.extend(format!("{:<20} {:<20} ", show(soft), show(hard)).into_bytes());
                out.extend_from_slice(units);
            }
            _ => out.extend_from_slice(line),
        }
    }
    out
}

/// `auxv`: the vector as the loader wrote it, `AT_NULL` included.
pub fn auxv_bytes(auxv: &[(u64, u64)]) -> Vec<u8> {
    auxv.iter().flat_map(|(k, v)| k.to_ne_bytes().into_iter().chain(v.to_ne_bytes())).collect()
}

/// Reads program memory `[start, end)` as far as it is readable.
fn read_range(proc: &Process, start: u64, end: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end && out.len() < (1 << 24) {
        let n = (PAGE - at % PAGE).min(end - at);
        let mut buf = vec![0u8; n as usize];
        if crate::uaccess::copy_in_to(proc, at, &mut buf).is_err() {
            break;
        }
        out.extend(buf);
        at += n;
    }
    out
}

/// `cmdline` (fs/proc/base.c, `get_mm_cmdline`): the argument strings; when the program wrote
/// over their final NUL (`setproctitle`), what follows up to the first NUL, into the
/// environment strings.
pub fn cmdline_bytes(proc: &Process, img: &Image) -> Vec<u8> {
    if img.arg_start >= img.arg_end {
        return Vec::new();
    }
    let args = read_range(proc, img.arg_start, img.arg_end);
    if args.len() as u64 == img.arg_end - img.arg_start && args.last().is_some_and(|&c| c != 0) {
        let all = read_range(proc, img.arg_start, img.env_end.max(img.arg_end));
        let n = all.iter().position(|&c| c == 0).unwrap_or(all.len());
        return all[..n].to_vec();
    }
    args
}

/// `environ`: the environment strings as they are in program memory now.
pub fn environ_bytes(proc: &Process, img: &Image) -> Vec<u8> {
    read_range(proc, img.env_start, img.env_end)
}

/// What the synthesis needs to know about the caller.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    /// Its thread id.
    pub tid: i32,
    /// Its blocked signals.
    pub sigmask: u64,
}

fn read_host(path: &[u8]) -> Result<Vec<u8>, Errno> {
    crate::hostread::read(std::path::Path::new(os(path))).map_err(|_| Errno::ENOENT)
}

/// The synthesized content of `entry` for the object `loc`.
pub fn synthesize(
    entry: Entry,
    loc: &Located,
    proc: &Process,
    caller: Caller,
) -> Result<Vec<u8>, Errno> {
    let thread = match loc.who {
        Who::Own { thread } => thread,
        _ => None,
    };
    let signals = || {
        let mut s = Signals::default();
        let leader = std::process::id() as i32;
        if thread.unwrap_or(leader) == caller.tid {
            s.blocked = caller.sigmask;
        }
        for sig in 1..=64 {
            let h = proc.action(sig).handler;
            if h == crate::signals::SIG_IGN {
                s.ignored |= crate::signals::bit(sig);
            } else if h != crate::signals::SIG_DFL {
                s.caught |= crate::signals::bit(sig);
            }
        }
        s
    };
    let threads = || proc.threads.lock().unwrap().len();
    let range = proc.range.clone();
    // The host's view of the program range, read while the records cannot change.
    struct View<'a> {
        vmas: &'a [Vma],
        brk: Brk,
        img: &'a Image,
        host: &'a [HostMap],
        blocks: &'a [HostBlock],
    }
    let with_mm = |smaps: bool, f: &dyn Fn(&View<'_>) -> Option<Vec<u8>>| {
        let mm = proc.mm.lock().unwrap();
        let maps = read_host(b"/proc/self/maps")?;
        let host = parse_maps(&maps, range.start, range.end);
        let blocks = if smaps {
            parse_smaps(&read_host(b"/proc/self/smaps")?, range.start, range.end)
        } else {
            Vec::new()
        };
        let vmas: Vec<Vma> = mm.vmas().copied().collect();
        let v = View { vmas: &vmas, brk: mm.brk, img: &mm.image, host: &host, blocks: &blocks };
        f(&v).ok_or(Errno::ENOENT)
    };
    let sizes_of = |v: &View<'_>| sizes(v.vmas, v.img, v.host, v.blocks);
    match entry {
        Entry::Maps => with_mm(false, &|v| Some(maps_text(v.vmas, &v.brk, v.img, v.host))),
        Entry::Smaps => {
            with_mm(true, &|v| Some(smaps_text(v.vmas, &v.brk, v.img, v.host, v.blocks)))
        }
        Entry::SmapsRollup => {
            let real = read_host(b"/proc/self/smaps_rollup")?;
            let names: Vec<Vec<u8>> = real
                .split(|&b| b == b'\n')
                .skip(1)
                .filter_map(|l| l.iter().position(|&b| b == b':').map(|c| l[..=c].to_vec()))
                .collect();
            with_mm(true, &|v| Some(rollup_text(v.vmas, v.host, v.blocks, &names)))
        }
        Entry::Status => {
            let real = read_host(&loc.path)?;
            let (n, sig) = (threads(), signals());
            with_mm(true, &|v| Some(status_text(&real, &sizes_of(v), n, &sig)))
        }
        Entry::Stat => {
            let real = read_host(&loc.path)?;
            let (n, sig) = (threads(), signals());
            with_mm(true, &|v| stat_text(&real, v.img, v.brk.start, &sizes_of(v), n, &sig))
        }
        Entry::Statm => with_mm(true, &|v| Some(statm_text(&sizes_of(v)))),
        Entry::Cmdline => {
            let img = proc.mm.lock().unwrap().image.clone();
            Ok(cmdline_bytes(proc, &img))
        }
        Entry::Environ => {
            let img = proc.mm.lock().unwrap().image.clone();
            Ok(environ_bytes(proc, &img))
        }
        Entry::Auxv => Ok(auxv_bytes(&proc.mm.lock().unwrap().image.auxv)),
        Entry::Limits => {
            let real = read_host(&loc.path)?;
            let pair = |r: [u8; 16]| {
                (
                    u64::from_ne_bytes(r[..8].try_into().unwrap()),
                    u64::from_ne_bytes(r[8..].try_into().unwrap()),
                )
            };
            let view = |name: &[u8]| -> Option<(u64, u64)> {
                match name {
                    b"Max open files" => Some(crate::fdwin::window().program_limit()),
                    b"Max address space" => Some(pair(proc.rlimit_view(libc::RLIMIT_AS))),
                    b"Max data size" => Some(pair(proc.rlimit_view(libc::RLIMIT_DATA))),
                    b"Max pending signals" => Some(pair(proc.rlimit_view(libc::RLIMIT_SIGPENDING))),
                    _ => None,
                }
            };
            Ok(limits_text(&real, &view))
        }
        Entry::ForeignStat => foreign_stat_text(&read_host(&loc.path)?).ok_or(Errno::ENOENT),
    }
}

// ---------------------------------------------------------------------------------------------
// Directory listings.

/// Which entries of a procfs directory the program may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listing {
    /// All (not a directory of the program's own that holds runtime entries).
    All,
    /// `fd/`, `fdinfo/`: only the program's descriptor numbers.
    Fds,
    /// `task/`: only program threads (and the leader).
    Tasks(Vec<i32>),
    /// A directory with entries the filesystem rules hide: all but these names.
    Hidden(Vec<Vec<u8>>),
    /// `/proc` under process confinement: the names that are not numbers, and these pids.
    Pids(Vec<i32>),
}

/// What the program may see of the directory open on `fd` (a private duplicate).
pub fn listing(fd: RawFd, proc: &Process) -> Listing {
    if sys::fs_type(fd) != Ok(PROC_SUPER_MAGIC) {
        return Listing::All;
    }
    let Ok(st) = sys::fstat(fd) else { return Listing::All };
    let Some(loc) = locate(fd, &st, proc) else {
        // Not placeable: show nothing of it.
        return Listing::Tasks(Vec::new());
    };
    match (loc.who, loc.rest.as_slice()) {
        (Who::Own { .. }, [d]) if d == b"fd" || d == b"fdinfo" => Listing::Fds,
        (Who::Own { .. }, [d]) if d == b"task" => {
            let mut t: Vec<i32> = proc.threads.lock().unwrap().keys().copied().collect();
            t.push(std::process::id() as i32);
            Listing::Tasks(t)
        }
        _ => Listing::All,
    }
}

/// Keeps the records of a `getdents64` (or, with `old`, `getdents`) buffer whose name `keep`
/// accepts.
pub fn filter_dirents(buf: &[u8], old: bool, keep: &dyn Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len());
    let mut off = 0;
    while off + 19 <= buf.len() {
        let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
        if reclen < 19 || off + reclen > buf.len() {
            break;
        }
        let rec = &buf[off..off + reclen];
        let name_at = if old { 18 } else { 19 };
        let name = &rec[name_at..];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if keep(name) {
            out.extend_from_slice(rec);
        }
        off += reclen;
    }
    out
}

/// The keep rule of a listing.
pub fn keeps(listing: &Listing, name: &[u8]) -> bool {
    if name == b"." || name == b".." {
        return true;
    }
    match listing {
        Listing::All => true,
        Listing::Fds => number(name).is_some_and(|fd| !crate::fdwin::window().is_runtime(fd)),
        Listing::Tasks(t) => number(name).is_some_and(|n| t.contains(&n)),
        Listing::Hidden(h) => !h.iter().any(|n| n == name),
        Listing::Pids(p) => number(name).is_none_or(|n| p.contains(&n)),
    }
}

/// `getdents64` (and `getdents`): listed through a private duplicate of the program's
/// descriptor (another thread cannot `dup2` a procfs directory over it after the check), with
/// the runtime's descriptors and threads left out of the program's own `fd/`, `fdinfo/` and
/// `task/` ([`listing`]). A buffer whose every record was left out is filled again, so an
/// empty answer still means the end.
pub fn getdents64(ctx: &mut super::Ctx<'_>, a: &[u64; 6]) -> sys::SysResult {
    dirents(ctx, a, libc::SYS_getdents64, false)
}

/// `getdents`: see [`getdents64`].
pub fn getdents(ctx: &mut super::Ctx<'_>, a: &[u64; 6]) -> sys::SysResult {
    dirents(ctx, a, libc::SYS_getdents, true)
}

fn dirents(ctx: &mut super::Ctx<'_>, a: &[u64; 6], nr: i64, old: bool) -> sys::SysResult {
    super::check_fd(ctx.proc(), a[0])?;
    let count = u64::from(a[2] as u32);
    ctx.proc().check(a[1], count)?;
    let dup = crate::fdwin::window().duplicate(a[0] as i32).map_err(|e| Errno::from_io(&e))?;
    let fd = dup.raw() as u64;
    let mut listing = listing(dup.raw(), ctx.proc());
    if listing == Listing::All
        && let Some(fs) = ctx.proc().policy.fs()
        && let Ok(dir) = super::paths::path_of(dup.raw())
        && let Some(names) = fs.hidden_names_in(&dir)
    {
        listing = Listing::Hidden(names.to_vec());
    }
    if listing == Listing::All
        && ctx.proc().policy.confines_processes()
        && super::paths::path_of(dup.raw()).is_ok_and(|d| d == b"/proc")
    {
        listing = Listing::Pids(crate::family::members());
    }
    #[allow(unsafe_code)]
    if listing == Listing::All {
        // SAFETY: the buffer was range-checked for `count` bytes; the descriptor is the
        // runtime's private duplicate of a checked program descriptor.
        return unsafe { sys::syscall6(nr, [fd, a[1], count, 0, 0, 0]) };
    }
    let mut buf = vec![0u8; count.min(1 << 20) as usize];
    loop {
        #[allow(unsafe_code)]
        // SAFETY: `buf` is ours, `buf.len()` bytes; the descriptor as above.
        let n =
            unsafe { sys::syscall6(nr, [fd, buf.as_mut_ptr() as u64, buf.len() as u64, 0, 0, 0]) }?;
        if n == 0 {
            return Ok(0);
        }
        let kept = filter_dirents(&buf[..n as usize], old, &|name| keeps(&listing, name));
        if !kept.is_empty() {
            super::copy_out(ctx.proc(), a[1], &kept)?;
            return Ok(kept.len() as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::FileId;

    fn comps(p: &str) -> Vec<Vec<u8>> {
        split(p.as_bytes())
    }

    fn me_classify(p: &str) -> (Who, Vec<Vec<u8>>) {
        // Process 100 with program threads 100 and 101; 102 is a helper of its group.
        let program = |t: i32| t == 100 || t == 101;
        let group = |t: i32| (100..=102).contains(&t);
        classify(&comps(p), &Me { pid: 100, program_thread: &program, in_group: &group })
    }

    #[test]
    fn classification() {
        let own = |t| Who::Own { thread: t };
        assert_eq!(me_classify("100/maps"), (own(None), comps("maps")));
        assert_eq!(me_classify("100"), (own(None), vec![]));
        assert_eq!(me_classify("100/task/101/maps"), (own(Some(101)), comps("maps")));
        assert_eq!(me_classify("100/task/100/stat"), (own(Some(100)), comps("stat")));
        assert_eq!(me_classify("100/task/102/comm").0, Who::Helper);
        assert_eq!(me_classify("101/status"), (own(Some(101)), comps("status")));
        assert_eq!(me_classify("102/status").0, Who::Helper);
        assert_eq!(me_classify("7/maps"), (Who::Other, comps("maps")));
        assert_eq!(me_classify("7/task/8/environ"), (Who::Other, comps("environ")));
        assert_eq!(me_classify("cpuinfo"), (Who::Nobody, comps("cpuinfo")));
        assert_eq!(me_classify("sys/kernel/ostype").0, Who::Nobody);
        assert_eq!(me_classify("").0, Who::Nobody);
    }

    #[test]
    fn verdicts() {
        let own = Who::Own { thread: None };
        let rt = |fd: i32| fd >= 1000;
        let v = |who, p: &str, link| verdict(who, &comps(p), link, &rt);
        assert_eq!(v(own, "maps", false), Verdict::Synth(Entry::Maps));
        assert_eq!(v(own, "environ", false), Verdict::Synth(Entry::Environ));
        assert_eq!(v(own, "exe", true), Verdict::Exe);
        assert_eq!(v(own, "fd", false), Verdict::Allow);
        assert_eq!(v(own, "fd/3", true), Verdict::Allow);
        assert_eq!(v(own, "fd/1000", true), Verdict::Hidden);
        assert_eq!(v(own, "fdinfo/1003", false), Verdict::Hidden);
        assert_eq!(v(own, "net/tcp", false), Verdict::Allow);
        assert_eq!(v(own, "ns/mnt", true), Verdict::Allow);
        for refused in [
            "mem",
            "pagemap",
            "map_files",
            "map_files/1000-2000",
            "syscall",
            "stack",
            "wchan",
            "personality",
            "numa_maps",
            "timers",
            "clear_refs",
            "fail-nth",
            "newthing",
        ] {
            assert_eq!(v(own, refused, false), Verdict::Refused, "{refused}");
        }
        assert_eq!(v(Who::Other, "stat", false), Verdict::Synth(Entry::ForeignStat));
        assert_eq!(v(Who::Other, "status", false), Verdict::Allow);
        assert_eq!(v(Who::Other, "cmdline", false), Verdict::Allow);
        for refused in ["maps", "smaps", "environ", "auxv", "mem", "fd", "fd/0", "fdinfo/0"] {
            assert_eq!(v(Who::Other, refused, false), Verdict::Refused, "{refused}");
        }
        assert_eq!(v(Who::Helper, "status", false), Verdict::Hidden);
        assert_eq!(v(Who::Nobody, "kcore", false), Verdict::Allow);
    }

    #[test]
    fn mountinfo_and_components() {
        let text = b"22 27 0:21 / /proc rw,relatime - proc proc rw\n\
            30 22 0:21 /sys /proc/sys ro,relatime - proc proc rw\n\
            31 27 0:40 / /srv/with\\040space/proc rw shared:5 - proc proc rw\n\
            32 27 8:1 / / rw - ext4 /dev/sda1 rw\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0], (libc::makedev(0, 21), b"/".to_vec(), b"/proc".to_vec()));
        assert_eq!(m[2].2, b"/srv/with space/proc".to_vec());
        let mount = |(dev, root, point): (u64, Vec<u8>, Vec<u8>)| Mount {
            dev,
            root,
            point,
            self_pid: None,
        };
        let proc_ = mount(m[0].clone());
        let sys_ = mount(m[1].clone());
        assert_eq!(inside(&proc_, b"/proc/12/maps"), Some(comps("12/maps")));
        assert_eq!(inside(&proc_, b"/proc"), Some(vec![]));
        assert_eq!(inside(&proc_, b"/procx/12"), None);
        assert_eq!(inside(&sys_, b"/proc/sys/kernel/ostype"), Some(comps("sys/kernel/ostype")));
        assert_eq!(unescape(b"a\\134b\\011"), b"a\\b\t".to_vec());
    }

    fn vma(start: u64, end: u64, prot: i32, shared: bool, kind: Kind) -> Vma {
        Vma { start, end, prot, shared, kind, advice: 0 }
    }

    #[test]
    fn maps_lines_as_the_kernel_prints_them() {
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let rx = libc::PROT_READ | libc::PROT_EXEC;
        let file =
            Kind::File { offset: 0x2000, file: FileId { dev: libc::makedev(254, 0), ino: 247030 } };
        let vmas = [
            vma(0x400000, 0x402000, rx, false, file),
            vma(0x600000, 0x621000, rw, false, Kind::Heap),
            vma(0x700000, 0x701000, rw, true, Kind::Anon),
            vma(0x7f0000, 0x800000, rw, false, Kind::Stack),
            vma(0x900000, 0x901000, 0, false, Kind::Anon),
        ];
        let host = parse_maps(
            b"00400000-00402000 r-xp 00002000 fe:00 247030                     /usr/bin/cat\n\
              00700000-00701000 rw-s 00000000 00:01 4242                       /dev/zero (deleted)\n\
              55d0c3a8e000-55d0c3a90000 r--p 00000000 08:01 1234567            /usr/bin/sandbox\n",
            0x10000,
            0x1000_0000,
        );
        assert_eq!(host.len(), 2);
        let brk = Brk { start: 0x600000, cur: 0x620123 };
        let img = Image { start_stack: 0x7ffe00, ..Image::default() };
        let text = String::from_utf8(maps_text(&vmas, &brk, &img, &host)).unwrap();
        let named = |h: &str, n: &str| format!("{h:<73}{n}\n");
        let want = [
            named("00400000-00402000 r-xp 00002000 fe:00 247030 ", "/usr/bin/cat"),
            named("00600000-00621000 rw-p 00000000 00:00 0 ", "[heap]"),
            named("00700000-00701000 rw-s 00000000 00:01 4242 ", "/dev/zero (deleted)"),
            named("007f0000-00800000 rw-p 00000000 00:00 0 ", "[stack]"),
            "00900000-00901000 ---p 00000000 00:00 0 \n".to_owned(),
        ]
        .concat();
        assert_eq!(text, want);
        for l in text.lines().filter(|l| l.ends_with(']') || l.contains('/')) {
            assert_eq!(&l[72..73], " ", "{l}");
            assert_ne!(&l[73..74], " ", "{l}");
        }
    }

    #[test]
    fn smaps_fields_from_the_host() {
        let smaps = b"00400000-00402000 r-xp 00002000 fe:00 7 /x\n\
Size:                  8 kB\n\
KernelPageSize:        4 kB\n\
Rss:                   8 kB\n\
Anonymous:             0 kB\n\
THPeligible:    0\n\
VmFlags: rd ex mr mw me \n\
00402000-00404000 rw-p 00000000 00:00 0 \n\
Size:                  8 kB\n\
KernelPageSize:        4 kB\n\
Rss:                   4 kB\n\
Anonymous:             4 kB\n\
THPeligible:    0\n\
VmFlags: rd wr mr mw me ac \n";
        let blocks = parse_smaps(smaps, 0x10000, 0x1000_0000);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[1].fields[2].kb, Some(4));
        // A record spanning the second host mapping's first half only.
        let v = vma(0x402000, 0x403000, libc::PROT_READ | libc::PROT_WRITE, false, Kind::Anon);
        let f = fields_of(&v, &blocks);
        assert_eq!(field(&f, b"Size:"), 4);
        assert_eq!(field(&f, b"KernelPageSize:"), 4);
        assert_eq!(field(&f, b"Rss:"), 2);
        assert_eq!(String::from_utf8(f[2].line.clone()).unwrap(), "Rss:                   2 kB");
        assert_eq!(f.last().unwrap().line, b"VmFlags: rd wr mr mw me ac ".to_vec());
        let s = sizes(&[v], &Image::default(), &[], &blocks);
        assert_eq!((s.size, s.rss, s.rss_anon, s.data), (4, 2, 2, 4));
    }

    #[test]
    fn status_and_stat_rewritten() {
        let real = b"Name:\tcat\nThreads:\t3\nVmSize:\t34359738368 kB\nVmRSS:\t   99 kB\nSigBlk:\tfffffffe7ffbfeff\nSigIgn:\t0000000000001000\nSigCgt:\t00000001000044ea\nCpus_allowed:\t3\n";
        let s = Sizes { size: 1234, rss: 56, ..Sizes::default() };
        let sig = Signals { blocked: 1 << 9, ignored: 1 << 12, caught: 0 };
        let out = String::from_utf8(status_text(real, &s, 1, &sig)).unwrap();
        assert_eq!(
            out,
            "Name:\tcat\nThreads:\t1\nVmSize:\t    1234 kB\nVmRSS:\t      56 kB\nSigBlk:\t0000000000000200\nSigIgn:\t0000000000001000\nSigCgt:\t0000000000000000\nCpus_allowed:\t3\n"
        );
        let stat = b"42 (a b) c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 5 0 100 999999 77 18446744073709551615 93824992231424 93824992235000 140737488346000 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 93824992240000 93824992241000 93824994000000 140737488347000 140737488347100 140737488347100 140737488348000 0\n";
        let img = Image {
            start_code: 0x400000,
            end_code: 0x401000,
            start_data: 0x600000,
            end_data: 0x601000,
            start_stack: 0x7ff000,
            arg_start: 0x7ff100,
            arg_end: 0x7ff200,
            env_start: 0x7ff200,
            env_end: 0x7ff300,
            auxv: vec![],
        };
        let out = String::from_utf8(stat_text(stat, &img, 0x602000, &s, 2, &sig).unwrap()).unwrap();
        let (head, rest) = out.split_once(") S ").unwrap();
        assert_eq!(head, "42 (a b) c");
        let f: Vec<i128> = rest.trim_end().split(' ').map(|x| x.parse().unwrap()).collect();
        let at = |n: usize| f[n - 4];
        assert_eq!((at(20), at(23), at(24)), (2, 1234 * 1024, 14));
        assert_eq!((at(26), at(27), at(28), at(29), at(30)), (0x400000, 0x401000, 0x7ff000, 0, 0));
        assert_eq!((at(32), at(33), at(34)), (1 << 9, 1 << 12, 0));
        assert_eq!((at(47), at(48), at(51)), (0x602000, 0x7ff100, 0x7ff300));
        let foreign = String::from_utf8(foreign_stat_text(stat).unwrap()).unwrap();
        let f: Vec<i128> = foreign
            .split_once(") S ")
            .unwrap()
            .1
            .trim_end()
            .split(' ')
            .map(|x| x.parse().unwrap())
            .collect();
        let at = |n: usize| f[n - 4];
        assert_eq!((at(23), at(26), at(27), at(28)), (999999, 1, 1, 0));
        assert!((45..=51).all(|n| at(n) == 0));
    }

    #[test]
    fn limits_rows() {
        let real =
            b"Limit                     Soft Limit           Hard Limit           Units     \n\
Max open files            19712                19712                files     \n\
Max address space         unlimited            unlimited            bytes     \n";
        let view = |n: &[u8]| match n {
            b"Max open files" => Some((19424, 19424)),
            b"Max address space" => Some((1 << 30, libc::RLIM_INFINITY)),
            _ => None,
        };
        let out = String::from_utf8(limits_text(real, &view)).unwrap();
        assert_eq!(
            out,
            "Limit                     Soft Limit           Hard Limit           Units     \n\
Max open files            19424                19424                files     \n\
Max address space         1073741824           unlimited            bytes     \n"
        );
    }

    fn dirent64(name: &str) -> Vec<u8> {
        let reclen = (19 + name.len() + 1).next_multiple_of(8);
        let mut r = vec![0u8; reclen];
        r[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
        r[19..19 + name.len()].copy_from_slice(name.as_bytes());
        r
    }

    #[test]
    fn dirents_filtered() {
        let buf: Vec<u8> =
            [".", "..", "0", "1000", "7", "1001"].iter().flat_map(|n| dirent64(n)).collect();
        let keep = |n: &[u8]| number(n).is_none_or(|fd| fd < 1000);
        let out = filter_dirents(&buf, false, &keep);
        let expect: Vec<u8> = [".", "..", "0", "7"].iter().flat_map(|n| dirent64(n)).collect();
        assert_eq!(out, expect);
        // A truncated record ends the walk.
        assert_eq!(filter_dirents(&buf[..30], false, &keep), dirent64("."));
        assert_eq!(auxv_bytes(&[(6, 4096), (0, 0)]).len(), 32);
    }
}
