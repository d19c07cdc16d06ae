//! `--trace`: every system call strace-style, `name(args) = result`.

use std::io::Write;

use dune::Syscall;

use crate::errno::Errno;
use crate::process::Process;
use crate::syscall::table::{Arg, Len};
use crate::syscall::{self, PATH_MAX};

/// Where the trace goes.
pub struct Tracer {
    pub(crate) out: Box<dyn Write + Send>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tracer")
    }
}

impl Tracer {
    /// A tracer writing to `out` (buffered by the caller if needed).
    pub fn new(out: Box<dyn Write + Send>) -> Tracer {
        Tracer { out }
    }

    /// Flushes buffered lines.
    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }

    /// Writes a free-form line (process start and end).
    pub fn line(&mut self, s: &str) {
        let _ = writeln!(self.out, "{s}");
        let _ = self.out.flush();
    }
}

/// Quotes bytes the way strace does: printable ASCII as is, the rest escaped; `max` bytes.
fn quote(bytes: &[u8], max: usize) -> String {
    let mut s = String::from("\"");
    for &b in bytes.iter().take(max) {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    if bytes.len() > max {
        s.push_str("...");
    }
    s
}

/// `names` of the bits set in `v`, joined with `|` as strace does; leftover bits in hex.
fn bits(v: u64, names: &[(u64, &str)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut rest = v;
    for &(bit, name) in names {
        if bit != 0 && rest & bit == bit {
            parts.push(name.into());
            rest &= !bit;
        }
    }
    if rest != 0 || parts.is_empty() {
        parts.push(format!("{rest:#x}"));
    }
    parts.join("|")
}

/// `open(2)` flags: the access mode, then the other flags (asm-generic/fcntl.h values).
fn open_flags(v: u64) -> String {
    let mode = match v & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_ACCMODE",
    };
    let others = [
        (libc::O_TMPFILE as u64, "O_TMPFILE"),
        (libc::O_CREAT as u64, "O_CREAT"),
        (libc::O_EXCL as u64, "O_EXCL"),
        (libc::O_NOCTTY as u64, "O_NOCTTY"),
        (libc::O_TRUNC as u64, "O_TRUNC"),
        (libc::O_APPEND as u64, "O_APPEND"),
        (libc::O_NONBLOCK as u64, "O_NONBLOCK"),
        (libc::O_SYNC as u64, "O_SYNC"),
        (libc::O_DSYNC as u64, "O_DSYNC"),
        (libc::O_ASYNC as u64, "O_ASYNC"),
        (libc::O_DIRECT as u64, "O_DIRECT"),
        (libc::O_LARGEFILE as u64, "O_LARGEFILE"),
        (libc::O_DIRECTORY as u64, "O_DIRECTORY"),
        (libc::O_NOFOLLOW as u64, "O_NOFOLLOW"),
        (libc::O_NOATIME as u64, "O_NOATIME"),
        (libc::O_CLOEXEC as u64, "O_CLOEXEC"),
        (libc::O_PATH as u64, "O_PATH"),
    ];
    let rest = v & !3;
    if rest == 0 { mode.into() } else { format!("{mode}|{}", bits(rest, &others)) }
}

fn prot(v: u64) -> String {
    if v == 0 {
        return "PROT_NONE".into();
    }
    let names = [
        (libc::PROT_READ as u64, "PROT_READ"),
        (libc::PROT_WRITE as u64, "PROT_WRITE"),
        (libc::PROT_EXEC as u64, "PROT_EXEC"),
        (libc::PROT_GROWSDOWN as u64, "PROT_GROWSDOWN"),
        (libc::PROT_GROWSUP as u64, "PROT_GROWSUP"),
    ];
    bits(v, &names)
}

fn map_flags(v: u64) -> String {
    let names = [
        (libc::MAP_SHARED_VALIDATE as u64, "MAP_SHARED_VALIDATE"),
        (libc::MAP_SHARED as u64, "MAP_SHARED"),
        (libc::MAP_PRIVATE as u64, "MAP_PRIVATE"),
        (libc::MAP_FIXED_NOREPLACE as u64, "MAP_FIXED_NOREPLACE"),
        (libc::MAP_FIXED as u64, "MAP_FIXED"),
        (libc::MAP_ANONYMOUS as u64, "MAP_ANONYMOUS"),
        (libc::MAP_NORESERVE as u64, "MAP_NORESERVE"),
        (libc::MAP_STACK as u64, "MAP_STACK"),
        (libc::MAP_GROWSDOWN as u64, "MAP_GROWSDOWN"),
        (libc::MAP_DENYWRITE as u64, "MAP_DENYWRITE"),
        (libc::MAP_POPULATE as u64, "MAP_POPULATE"),
        (libc::MAP_HUGETLB as u64, "MAP_HUGETLB"),
    ];
    bits(v, &names)
}

/// Arguments strace shows symbolically: open flags and modes, memory protections and mapping
/// flags. `i` is the argument's index in call `nr`.
fn symbolic(nr: u64, i: usize, v: u64) -> Option<String> {
    Some(match (nr, i) {
        (2, 1) | (257, 2) => open_flags(v),
        (2, 2) | (257, 3) | (85, 1) | (83, 1) | (258, 2) | (90, 1) | (268, 2) => {
            if v == 0 {
                "0".into()
            } else {
                format!("0{:o}", v & 0o7777)
            }
        }
        (9, 2) | (10, 2) => prot(v),
        (9, 3) => map_flags(v),
        _ => return None,
    })
}

fn arg(proc: &Process, kind: Arg, v: u64, all: &[u64; 6], nr: u64, i: usize) -> String {
    if let Some(s) = symbolic(nr, i, v) {
        return s;
    }
    match kind {
        Arg::Int => (v as i64).to_string(),
        Arg::Fd => (v as i32).to_string(),
        Arg::AtFd if v as i32 == libc::AT_FDCWD => "AT_FDCWD".into(),
        Arg::AtFd => (v as i32).to_string(),
        Arg::Hex => format!("{v:#x}"),
        Arg::Path | Arg::Str if v != 0 => match syscall::copy_cstr(proc, v, PATH_MAX) {
            Ok(s) => quote(s.as_bytes(), PATH_MAX),
            Err(_) => format!("{v:#x}"),
        },
        // Data written by the program: show its first bytes (write, sendto, pwrite64).
        Arg::In(Len::Of(i)) if v != 0 && matches!(nr, 1 | 18 | 44) => {
            let n = all[i].min(32);
            match syscall::copy_in(proc, v, n) {
                Ok(b) => {
                    let mut q = quote(&b, 32);
                    if all[i] > 32 && !q.ends_with("...") {
                        q.push_str("...");
                    }
                    q
                }
                Err(_) => format!("{v:#x}"),
            }
        }
        _ if v == 0 => "NULL".into(),
        _ => format!("{v:#x}"),
    }
}

/// The pid of the first sandboxed process: trace lines of every other thread or process are
/// prefixed with `[pid N]`, as `strace -f` does.
static ROOT_PID: std::sync::OnceLock<i32> = std::sync::OnceLock::new();

/// Remembers the current process as the trace's root.
pub fn set_root_pid() {
    let _ = ROOT_PID.set(std::process::id() as i32);
}

/// The line strace prints when a signal is delivered: `--- SIGSEGV {si_signo=SIGSEGV,
/// si_code=1, si_addr=0x10} ---` for faults, with `si_pid`/`si_uid` for the others.
/// `info` is the 128-byte `siginfo_t` (include/uapi/asm-generic/siginfo.h).
pub fn signal_line(sig: i32, info: &[u8; 128]) -> String {
    let name = crate::cli::signal_name(sig);
    let code = i32::from_ne_bytes(info[8..12].try_into().unwrap());
    let fault =
        matches!(sig, libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP);
    let detail = if fault && code > 0 {
        format!("si_addr={:#x}", u64::from_ne_bytes(info[16..24].try_into().unwrap()))
    } else {
        let pid = i32::from_ne_bytes(info[16..20].try_into().unwrap());
        let uid = u32::from_ne_bytes(info[20..24].try_into().unwrap());
        format!("si_pid={pid}, si_uid={uid}")
    };
    format!("--- {name} {{si_signo={name}, si_code={code}, {detail}}} ---")
}

/// `"[pid N] "` for thread or process `tid` unless it is the first sandboxed one, else `""`.
pub fn prefix(tid: i32) -> String {
    if ROOT_PID.get().is_some_and(|&p| p != tid) { format!("[pid {tid}] ") } else { String::new() }
}

/// `name(arguments)` of `sc` as strace shows it.
fn call_text(proc: &Process, sc: &Syscall) -> String {
    match syscall::spec(sc.nr) {
        Some(spec) => {
            let args: Vec<String> = spec
                .args
                .iter()
                .enumerate()
                .map(|(i, &k)| match (sc.nr, i) {
                    (59, 1) | (322, 2) => argv_text(proc, sc.args[i]),
                    (59, 2) | (322, 3) => envp_text(proc, sc.args[i]),
                    _ => arg(proc, k, sc.args[i], &sc.args, sc.nr, i),
                })
                .collect();
            format!("{}({})", spec.name, args.join(", "))
        }
        None => format!(
            "syscall_{:#x}({:#x}, {:#x}, {:#x}, ...)",
            sc.nr, sc.args[0], sc.args[1], sc.args[2]
        ),
    }
}

/// `name(arguments)` of `sc` if the process is traced: for a call that replaces the memory its
/// arguments point into (`execve`), rendered before the call.
pub fn call_text_if_traced(proc: &Process, sc: &Syscall) -> Option<String> {
    if proc.trace.lock().unwrap().is_none() {
        return None;
    }
    Some(call_text(proc, sc))
}

/// The strings of a NULL-terminated pointer array (`argv`, `envp`), at most `max`; `None` if
/// the array cannot be read. The last element is `None` when there were more.
fn string_array(proc: &Process, v: u64, max: usize) -> Option<Vec<Option<Vec<u8>>>> {
    let mut out = Vec::new();
    for i in 0..=max as u64 {
        let p = syscall::copy_in(proc, v.checked_add(i * 8)?, 8).ok()?;
        let p = u64::from_ne_bytes(p.try_into().ok()?);
        if p == 0 {
            return Some(out);
        }
        if i as usize == max {
            out.push(None);
            return Some(out);
        }
        // A string longer than PATH_MAX is shown by its start (quote() marks the cut).
        let s = match syscall::copy_cstr(proc, p, PATH_MAX) {
            Ok(s) => s.into_bytes(),
            Err(_) => syscall::copy_in(proc, p, 64).ok()?,
        };
        out.push(Some(s));
    }
    Some(out)
}

/// `["prog", "arg"]` as strace prints an `argv` (32 elements at most, then `...`).
fn argv_text(proc: &Process, v: u64) -> String {
    if v == 0 {
        return "NULL".into();
    }
    match string_array(proc, v, 32) {
        Some(items) => {
            let parts: Vec<String> =
                items.iter().map(|s| s.as_ref().map_or("...".into(), |b| quote(b, 32))).collect();
            format!("[{}]", parts.join(", "))
        }
        None => format!("{v:#x}"),
    }
}

/// `0x7ffd... /* 20 vars */` as strace prints an `envp` (only the pointers are read).
fn envp_text(proc: &Process, v: u64) -> String {
    if v == 0 {
        return "NULL".into();
    }
    const MAX: u64 = 1 << 16;
    for i in 0..MAX {
        let Some(p) = v.checked_add(i * 8).and_then(|a| syscall::copy_in(proc, a, 8).ok()) else {
            return format!("{v:#x}");
        };
        if p.iter().all(|&b| b == 0) {
            return format!("{v:#x} /* {i} vars */");
        }
    }
    format!("{v:#x} /* {MAX}+ vars */")
}

/// The first line of a trace, as `strace -f` shows the `execve` that started the program:
/// `execve("/usr/bin/true", ["true"], 0x7ffc... /* 20 vars */) = 0`. `envp` is the address of
/// the environment array on the program's initial stack.
pub fn first_execve(path: &[u8], argv: &[Vec<u8>], envp: u64, envc: usize) -> String {
    let mut args: Vec<String> = argv.iter().take(32).map(|a| quote(a, 32)).collect();
    if argv.len() > 32 {
        args.push("...".into());
    }
    format!(
        "execve({}, [{}], {envp:#x} /* {envc} vars */) = 0",
        quote(path, PATH_MAX),
        args.join(", ")
    )
}

/// Traces one call after it completed; `text` is its rendering taken before the call, if any
/// (else it is rendered now).
pub fn syscall(
    proc: &Process,
    tid: i32,
    sc: &Syscall,
    res: Result<u64, Errno>,
    text: Option<String>,
) {
    if proc.trace.lock().unwrap().is_none() {
        return;
    }
    let line = text.unwrap_or_else(|| call_text(proc, sc));
    let result = match res {
        Ok(_) if matches!(sc.nr, 15 | 59 | 60 | 231 | 322) => {
            if matches!(sc.nr, 59 | 322) {
                "0".to_string()
            } else {
                "?".to_string()
            }
        }
        Ok(v) if matches!(sc.nr, 9 | 12 | 25) => format!("{v:#x}"),
        Ok(v) => (v as i64).to_string(),
        Err(e) => format!("-1 {e}"),
    };
    let mut guard = proc.trace.lock().unwrap();
    let Some(t) = guard.as_mut() else { return };
    let _ = writeln!(t.out, "{}{line} = {result}", prefix(tid));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbolic_arguments_as_strace_prints_them() {
        let o = |v: i32| v as u64;
        assert_eq!(open_flags(o(libc::O_RDONLY)), "O_RDONLY");
        assert_eq!(
            open_flags(o(libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC)),
            "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC"
        );
        assert_eq!(open_flags(o(libc::O_RDWR) | 1 << 30), "O_RDWR|0x40000000");
        assert_eq!(symbolic(257, 3, 0o644).as_deref(), Some("0644"));
        assert_eq!(prot(0), "PROT_NONE");
        assert_eq!(prot(3), "PROT_READ|PROT_WRITE");
        assert_eq!(map_flags(0x22), "MAP_PRIVATE|MAP_ANONYMOUS");
        assert_eq!(map_flags(0x3), "MAP_SHARED_VALIDATE");
        assert_eq!(symbolic(0, 0, 5), None);
    }
}
