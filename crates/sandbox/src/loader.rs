//! Loading a program image into the program range: the program's `PT_LOAD` segments, its
//! `PT_INTERP` (ld.so) when it names one, the brk heap and the initial stack, laid out the way
//! Linux does (fs/binfmt_elf.c `load_elf_binary`), with randomized bases.

use std::path::{Path, PathBuf};

use elf_min::{ElfError, ElfFile, ElfKind, LoadPlan};

use crate::mm::{Kind, Mm, PAGE, page_up};
use crate::sys;

/// Why a program could not be loaded: the path, and Linux's verdict.
#[derive(Debug)]
pub struct ExecError {
    /// The file that failed (the program or its interpreter).
    pub path: PathBuf,
    /// What was wrong with it.
    pub source: ElfError,
    /// The script whose `#!` line named `path`, when `path` is a script's interpreter.
    pub script: Option<PathBuf>,
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.script {
            // Quoted with escapes: a stray `\r` from a CRLF script is the usual culprit.
            Some(script) => write!(
                f,
                "{}: bad interpreter {:?} (its #! line): {}",
                script.display(),
                self.path.as_os_str(),
                self.source
            ),
            None => write!(f, "{}: {}", self.path.display(), self.source),
        }
    }
}

impl std::error::Error for ExecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl ExecError {
    /// The errno `execve` would have returned.
    pub fn errno(&self) -> i32 {
        self.source.errno()
    }

    /// The exit status a shell gives: 127 when the file does not exist, 126 otherwise.
    pub fn shell_status(&self) -> i32 {
        if self.errno() == libc::ENOENT { 127 } else { 126 }
    }
}

/// What the loaded program starts with.
#[derive(Clone, Copy, Debug)]
pub struct Loaded {
    /// Where the first instruction is: ld.so's entry for a dynamic program, else the program's.
    pub entry: u64,
    /// The initial stack pointer (argc is at `[sp]`).
    pub sp: u64,
    /// The program's own entry point (AT_ENTRY).
    pub program_entry: u64,
    /// ld.so's load bias (AT_BASE), or 0.
    pub interp_base: u64,
    /// `(st_dev, st_ino)` of the executable: Linux refuses to open it for writing while it
    /// runs (`ETXTBSY`).
    pub exe_id: (u64, u64),
}

/// The argument vectors of the new image.
#[derive(Clone, Debug)]
pub struct Args<'a> {
    /// `argv`, `argv[0]` first.
    pub argv: &'a [Vec<u8>],
    /// `envp`.
    pub envp: &'a [Vec<u8>],
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    sys::random(&mut b);
    u64::from_le_bytes(b)
}

/// A random page-aligned offset below `2^bits` pages... in bytes: `[0, 2^bits) * PAGE`.
fn random_pages(bits: u32) -> u64 {
    (random_u64() & ((1u64 << bits) - 1)) * PAGE
}

fn err(path: &Path, source: ElfError) -> ExecError {
    ExecError { path: path.to_path_buf(), source, script: None }
}

fn nomem(path: &Path) -> ExecError {
    err(path, ElfError::Io { op: elf_min::IoOp::Read, errno: libc::ENOMEM })
}

/// Maps every segment of `plan` (made from the bytes of `file`) as Linux's `elf_map` does: the
/// file part as a private file mapping (shared with the page cache until written, loaded as
/// touched), the rest of a segment with zero fill (`p_memsz > p_filesz`) as anonymous memory,
/// and the file page where the zero fill starts zeroed from there on (`padzero`).
fn map_segments(
    mm: &mut Mm,
    plan: &LoadPlan,
    file: &std::fs::File,
    path: &Path,
) -> Result<(), ExecError> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let meta = file.metadata().map_err(|_| nomem(path))?;
    let file_id = crate::mm::FileId { dev: meta.dev(), ino: meta.ino() };
    for seg in &plan.segments {
        let len = seg.end - seg.start;
        if !mm.is_free(seg.start, len) {
            return Err(nomem(path));
        }
        // The file part: page_up(file_len) bytes (the planner keeps them within the file).
        let file_part = if seg.file_len > 0 {
            page_up(seg.file_len).ok_or_else(|| nomem(path))?.min(len)
        } else {
            0
        };
        if file_part > 0 {
            let kind = Kind::File { offset: seg.file_offset, file: file_id };
            mm.map_fixed(seg.start, file_part, rw, libc::MAP_PRIVATE, file.as_raw_fd(), kind)
                .map_err(|_| nomem(path))?;
        }
        if file_part < len {
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
            mm.map_fixed(seg.start + file_part, len - file_part, rw, flags, -1, Kind::Anon)
                .map_err(|_| nomem(path))?;
        }
        if seg.has_zero_fill {
            // The rest of the page where the file data ends (padzero in fs/binfmt_elf.c).
            let to = page_up(seg.zero_from).ok_or_else(|| nomem(path))?.min(seg.start + file_part);
            if seg.zero_from < to {
                let zeros = vec![0u8; (to - seg.zero_from) as usize];
                sys::write_program(seg.zero_from, &zeros).map_err(|_| nomem(path))?;
            }
        }
        let p = seg.prot;
        let prot = (if p.read { libc::PROT_READ } else { 0 })
            | (if p.write { libc::PROT_WRITE } else { 0 })
            | (if p.exec { libc::PROT_EXEC } else { 0 });
        if prot != rw {
            mm.protect(seg.start, len, prot).map_err(|_| nomem(path))?;
        }
    }
    Ok(())
}

/// Plans `elf` at a bias: 0 for `ET_EXEC`, `pick(span_len, align)` for `ET_DYN`.
fn plan(
    elf: &ElfFile<'_>,
    path: &Path,
    pick: impl FnOnce(u64, u64) -> Option<u64>,
) -> Result<LoadPlan, ExecError> {
    let bias = match elf.kind() {
        ElfKind::Exec => 0,
        ElfKind::Dyn => {
            let span = elf.span();
            let base = pick(span.hi - span.lo, span.align).ok_or_else(|| nomem(path))?;
            base - span.lo
        }
    };
    elf.plan(bias).map_err(|e| err(path, e))
}

/// A program checked and read, ready to replace an image: everything that can fail with an
/// error the caller of `execve` sees has been done.
#[derive(Debug)]
pub struct Prepared {
    /// The ELF executable (after following `#!` lines).
    pub path: PathBuf,
    bytes: Vec<u8>,
    /// The file `bytes` were read from: its segments are mapped from it (taken, and closed,
    /// by [`load_prepared`]).
    file: Option<std::fs::File>,
    interp: Option<(PathBuf, Vec<u8>)>,
    /// The interpreter's file, likewise.
    interp_file: Option<std::fs::File>,
    /// The final argv (with interpreters prepended for scripts).
    pub argv: Vec<Vec<u8>>,
    /// `AT_EXECFN`: the path the caller gave.
    pub execfn: Vec<u8>,
}

/// `BINPRM_BUF_SIZE`: how much of a `#!` line Linux reads.
const BINPRM_BUF_SIZE: usize = 256;
/// Interpreter rewrites allowed before `ELOOP` (fs/exec.c `exec_binprm`: `depth > 5`).
const MAX_SCRIPT_DEPTH: usize = 5;

/// Parses a `#!` line (fs/binfmt_script.c): the interpreter and its optional single argument.
fn parse_shebang(bytes: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let line = &bytes[2..bytes.len().min(BINPRM_BUF_SIZE)];
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !ws(b))?;
    let rest = &line[start..];
    let end = rest.iter().position(ws).unwrap_or(rest.len());
    let interp = rest[..end].to_vec();
    let arg = rest[end..].iter().position(|b| !ws(b)).map(|i| {
        let a = &rest[end + i..];
        let mut a = a.to_vec();
        while a.last().is_some_and(ws) {
            a.pop();
        }
        a
    });
    (!interp.is_empty()).then_some((interp, arg))
}

/// Reads and checks `path` (following `#!` scripts like the kernel) without touching the
/// current image.
pub fn prepare(path: &Path, argv: &[Vec<u8>]) -> Result<Prepared, ExecError> {
    prepare_named(path, path, false, argv, &Ok)
}

/// What a caller does with each file [`prepare_named`] opens, right after `open(2)` and before
/// it is checked or read (see [`elf_min::open_executable_placed`]): return the file to use.
pub type Place<'a> = dyn Fn(std::fs::File) -> std::io::Result<std::fs::File> + 'a;

/// Like [`prepare`] for a file opened through a descriptor (`execveat`): `name` is what the
/// kernel calls it (`/dev/fd/N[/path]`: `AT_EXECFN`, and the script argument of an interpreter),
/// and `inaccessible` says the descriptor is close-on-exec, so an interpreter could not open
/// the script afterwards: Linux refuses a script then (`ENOENT`, fs/binfmt_script.c).
pub fn prepare_named(
    path: &Path,
    name: &Path,
    inaccessible: bool,
    argv: &[Vec<u8>],
    place: &Place<'_>,
) -> Result<Prepared, ExecError> {
    use std::os::unix::ffi::OsStrExt;
    let execfn = name.as_os_str().as_bytes().to_vec();
    let mut argv = argv.to_vec();
    let mut path = path.to_path_buf();
    let mut name = name.to_path_buf();
    let mut script: Option<PathBuf> = None;
    for depth in 0..=MAX_SCRIPT_DEPTH {
        let (file, bytes) = elf_min::open_executable_placed(&path, place)
            .map_err(|e| ExecError { script: script.clone(), ..err(&name, e) })?;
        if bytes.starts_with(b"#!") {
            if depth == MAX_SCRIPT_DEPTH {
                return Err(err(
                    &path,
                    ElfError::Io { op: elf_min::IoOp::Read, errno: libc::ELOOP },
                ));
            }
            if depth == 0 && inaccessible {
                return Err(err(
                    &name,
                    ElfError::Io { op: elf_min::IoOp::Read, errno: libc::ENOENT },
                ));
            }
            let (interp, arg) = parse_shebang(&bytes).ok_or_else(|| {
                err(&path, ElfError::Io { op: elf_min::IoOp::Read, errno: libc::ENOEXEC })
            })?;
            // argv becomes: interpreter, [argument], script path, original argv[1..].
            let mut new = vec![interp.clone()];
            new.extend(arg);
            new.push(name.as_os_str().as_bytes().to_vec());
            new.extend(argv.iter().skip(1).cloned());
            argv = new;
            script = Some(name.clone());
            path = PathBuf::from(std::ffi::OsStr::from_bytes(&interp));
            name = path.clone();
            continue;
        }
        let elf = ElfFile::parse(&bytes).map_err(|e| err(&path, e))?;
        let interp: Option<(PathBuf, Vec<u8>, Option<std::fs::File>)> = match elf.interp() {
            Some(i) => {
                let ipath = PathBuf::from(std::ffi::OsStr::from_bytes(i));
                let (ifile, ib) = elf_min::open_executable_placed(&ipath, place)
                    .map_err(|e| err(&ipath, e.as_interpreter_error()))?;
                ElfFile::parse(&ib).map_err(|e| err(&ipath, e.as_interpreter_error()))?;
                Some((ipath, ib, Some(ifile)))
            }
            None => None,
        };
        let (interp, interp_file) = match interp {
            Some((p, b, f)) => (Some((p, b)), f),
            None => (None, None),
        };
        return Ok(Prepared { path, bytes, file: Some(file), interp, interp_file, argv, execfn });
    }
    unreachable!("the loop returns at depth MAX_SCRIPT_DEPTH")
}

/// Loads the program at `path` into `mm` (which must be empty) and builds its initial stack.
pub fn load(mm: &mut Mm, path: &Path, args: &Args<'_>) -> Result<Loaded, ExecError> {
    let mut p = prepare(path, args.argv)?;
    load_prepared(mm, &mut p, args.envp)
}

/// Maps a prepared program into `mm` (which must be empty) and builds its initial stack. The
/// prepared files are closed when it returns; a second call fails with `EBADF`.
pub fn load_prepared(
    mm: &mut Mm,
    prep: &mut Prepared,
    envp: &[Vec<u8>],
) -> Result<Loaded, ExecError> {
    let ebadf = |p: &Path| err(p, ElfError::Io { op: elf_min::IoOp::Read, errno: libc::EBADF });
    let file = prep.file.take().ok_or_else(|| ebadf(&prep.path))?;
    let interp_file = prep.interp_file.take();
    let path = prep.path.as_path();
    let bytes = &prep.bytes;
    let elf = ElfFile::parse(bytes).map_err(|e| err(path, e))?;
    let range = mm.range();

    // The program: ET_DYN at two thirds of the range plus up to 1 TiB (or 1/16 of the range)
    // of randomness, like Linux's ELF_ET_DYN_BASE.
    let rand_bits = (63 - (range.end / 16).leading_zeros()).min(40) - 12;
    let pie_base = (range.end / 3 * 2) & !(PAGE - 1);
    let program = plan(&elf, path, |len, align| {
        let base = (pie_base + random_pages(rand_bits)) & !(align - 1);
        (base + len <= range.end).then_some(base)
    })?;
    let (lo, hi) = program.span;
    if !mm.contains(lo, hi - lo) {
        return Err(nomem(path));
    }
    map_segments(mm, &program, &file, path)?;
    let exe_id = {
        use std::os::unix::fs::MetadataExt;
        file.metadata().map(|m| (m.dev(), m.ino())).unwrap_or((0, 0))
    };
    drop(file);

    // Stack at the top of the range, below a random gap; mmap area below the stack.
    let stack_size =
        sys::getrlimit(libc::RLIMIT_STACK).rlim_cur.clamp(128 << 10, 64 << 20) & !(PAGE - 1);
    // 2 MiB aligned, so the guest maps it with large pages.
    let stack_top = (range.end - (1 << 20) - random_pages(rand_bits.min(22))) & !((2 << 20) - 1);
    let stack_lo = stack_top - stack_size;
    let exec = if program.stack_exec { libc::PROT_EXEC } else { 0 };
    mm.map_fixed(
        stack_lo,
        stack_size,
        libc::PROT_READ | libc::PROT_WRITE | exec,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        Kind::Stack,
    )
    .map_err(|_| nomem(path))?;
    mm.mmap_top = stack_lo - (256 << 20) - random_pages(rand_bits.min(28));

    // The interpreter, in the mmap area like Linux places it.
    let mut interp_plan = None;
    if let Some((ipath, ibytes)) = &prep.interp {
        let ifile = interp_file.as_ref().ok_or_else(|| ebadf(ipath))?;
        let ielf = ElfFile::parse(ibytes).map_err(|e| err(ipath, e.as_interpreter_error()))?;
        let top = mm.mmap_top;
        let p = plan(&ielf, ipath, |len, align| mm.find_free(len, align, top))?;
        map_segments(mm, &p, ifile, ipath)?;
        interp_plan = Some(p);
    }

    // The vDSO, in the mmap area after the interpreter (Linux maps it before; no matter).
    let vdso = crate::vdso::install(mm);

    // brk after the program image, randomized by up to 32 MiB like Linux's arch_randomize_brk.
    let brk = page_up(program.brk_start).unwrap_or(hi) + random_pages(13);
    mm.brk = crate::mm::Brk { start: brk, cur: brk };

    // The initial stack.
    let mut auxv = elf_min::AuxvParams::for_program(&program, interp_plan.as_ref());
    let ids = process_ids();
    auxv.uid = u64::from(ids.0);
    auxv.euid = u64::from(ids.1);
    auxv.gid = u64::from(ids.2);
    auxv.egid = u64::from(ids.3);
    auxv.hwcap = sys::getauxval(libc::AT_HWCAP);
    auxv.hwcap2 = sys::getauxval(libc::AT_HWCAP2) & hwcap2_supported(mm);
    auxv.minsigstksz = sys::getauxval(51).max(2048); // AT_MINSIGSTKSZ
    auxv.clktck = 100;
    auxv.sysinfo_ehdr = vdso;
    let mut random = [0u8; 16];
    sys::random(&mut random);
    let argv: Vec<&[u8]> = prep.argv.iter().map(Vec::as_slice).collect();
    let envp: Vec<&[u8]> = envp.iter().map(Vec::as_slice).collect();
    let params = elf_min::StackParams {
        stack_top,
        argv: &argv,
        envp: &envp,
        execfn: &prep.execfn,
        random,
        auxv,
        arg_limit: elf_min::arg_limit_for_stack_rlimit(stack_size),
        align_pad: random_u64() % 512 * 16,
    };
    let stack = elf_min::build_initial_stack(&params).map_err(|e| err(path, e))?;
    if stack.sp < stack_lo + PAGE {
        return Err(err(path, ElfError::Io { op: elf_min::IoOp::Read, errno: libc::E2BIG }));
    }
    sys::write_program(stack.sp, &stack.image).map_err(|_| nomem(path))?;
    mm.image = image_of(&program, &stack);
    Ok(Loaded {
        entry: interp_plan.as_ref().map_or(program.entry, |i| i.entry),
        sp: stack.sp,
        program_entry: program.entry,
        interp_base: interp_plan.as_ref().map_or(0, |i| i.load_bias),
        exe_id,
    })
}

/// Where the image's parts are, as `load_elf_binary` records them in `mm_struct` (with
/// page-aligned segment starts: the planner keeps no `p_vaddr`).
fn image_of(program: &LoadPlan, stack: &elf_min::InitialStack) -> crate::mm::Image {
    let (mut start_code, mut end_code, mut start_data, mut end_data) = (u64::MAX, 0, 0, 0);
    for seg in &program.segments {
        let file_end = seg.start + seg.file_len;
        if seg.prot.exec {
            start_code = start_code.min(seg.start);
            end_code = end_code.max(file_end);
        }
        start_data = start_data.max(seg.start);
        end_data = end_data.max(file_end);
    }
    crate::mm::Image {
        start_code: if start_code == u64::MAX { 0 } else { start_code },
        end_code,
        start_data,
        end_data,
        start_stack: stack.sp,
        arg_start: stack.arg_start,
        arg_end: stack.arg_end,
        env_start: stack.arg_end,
        env_end: stack.env_end,
        auxv: stack.auxv.clone(),
    }
}

/// `(uid, euid, gid, egid)` of the supervisor, which the program inherits.
fn process_ids() -> (u32, u32, u32, u32) {
    let s = crate::hostread::read(Path::new("/proc/self/status")).unwrap_or_default();
    let s = String::from_utf8_lossy(&s);
    let field = |name: &str, i: usize| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(i))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Uid:", 1), field("Uid:", 2), field("Gid:", 1), field("Gid:", 2))
}

/// HWCAP2 bits the guest really offers: FSGSBASE (bit 1) only where the vCPU enables it.
fn hwcap2_supported(mm: &Mm) -> u64 {
    let fsgsbase = mm.vm().host().cpuid(7, 0).is_some_and(|e| e.ebx & 1 != 0);
    if fsgsbase { !0 } else { !2 }
}

#[cfg(test)]
mod tests {
    use super::parse_shebang;

    #[test]
    fn shebang_lines() {
        assert_eq!(parse_shebang(b"#!/bin/sh\necho"), Some((b"/bin/sh".to_vec(), None)));
        assert_eq!(
            parse_shebang(b"#! /usr/bin/env  python3 -u \n"),
            Some((b"/usr/bin/env".to_vec(), Some(b"python3 -u".to_vec())))
        );
        assert_eq!(parse_shebang(b"#!\n"), None);
        assert_eq!(parse_shebang(b"#!   \t\n"), None);
    }
}
