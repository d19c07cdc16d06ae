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

fn arg(proc: &Process, kind: Arg, v: u64, all: &[u64; 6], nr: u64) -> String {
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

/// Traces one call after it completed.
pub fn syscall(proc: &Process, tid: i32, sc: &Syscall, res: Result<u64, Errno>) {
    let mut guard = proc.trace.lock().unwrap();
    let Some(t) = guard.as_mut() else { return };
    let line = match syscall::spec(sc.nr) {
        Some(spec) => {
            let args: Vec<String> = spec
                .args
                .iter()
                .enumerate()
                .map(|(i, &k)| arg(proc, k, sc.args[i], &sc.args, sc.nr))
                .collect();
            format!("{}({})", spec.name, args.join(", "))
        }
        None => format!(
            "syscall_{:#x}({:#x}, {:#x}, {:#x}, ...)",
            sc.nr, sc.args[0], sc.args[1], sc.args[2]
        ),
    };
    let result = match res {
        Ok(_) if matches!(sc.nr, 15 | 59 | 60 | 231) => "?".to_string(),
        Ok(v) if matches!(sc.nr, 9 | 12 | 25) => format!("{v:#x}"),
        Ok(v) => (v as i64).to_string(),
        Err(e) => format!("-1 {e}"),
    };
    let prefix = if ROOT_PID.get().is_some_and(|&p| p != tid) {
        format!("[pid {tid}] ")
    } else {
        String::new()
    };
    let _ = writeln!(t.out, "{prefix}{line} = {result}");
}
