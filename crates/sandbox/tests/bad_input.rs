//! `sandbox run` on things that are not runnable programs: exit 127 (not found) or 126 (found
//! but not executable, or not a supported executable), with one line on stderr that starts with
//! `sandbox:` and names the path (as given), nothing on stdout, and never a panic.
//!
//! For reference each case also records what bash says for `exec PATH` (`bash -c 'exec "$0"'`);
//! bash and the sandbox agree except where noted: bash runs a file without `#!` whose execve
//! fails with ENOEXEC as a shell script (a text file without `#!`, an empty file), which the
//! sandbox must not do (it runs ELF programs only).
#[macro_use]
mod common;

use common::{Cmd, Link, Mode, Output, WorkDir, build_c, run_in};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What bash does with `exec PATH` (its exit status), run in `dir`; None without bash.
fn bash_status(dir: &Path, program: &OsStr) -> Option<i32> {
    if !Path::new("/bin/bash").exists() {
        return None;
    }
    let cmd = Cmd::new("/bin/bash").arg("-c").arg("exec \"$0\"").arg(program);
    let out = run_in(Mode::Native, &cmd, dir);
    out.code()
}

/// Runs `sandbox run -- PROGRAM` in `dir` and checks the verdict.
fn check(dir: &WorkDir, program: &OsStr, expected: i32, bash_expected: Option<i32>) {
    let bash = bash_status(dir.path(), program);
    if let (Some(b), Some(e)) = (bash, bash_expected) {
        assert_eq!(b, e, "bash's status for exec {}", program.to_string_lossy());
    }
    if common::selfcheck() {
        eprintln!("SANDBOX_TEST_SELFCHECK=1: skipping the sandbox run (bash said {bash:?})");
        return;
    }
    let out = run_in(Mode::Sandboxed, &Cmd::new(program), dir.path());
    assert_verdict(&out, program, expected);
}

fn assert_verdict(out: &Output, program: &OsStr, expected: i32) {
    let err = out.stderr_str();
    assert!(!err.contains("panicked"), "the sandbox panicked\n{}", out.report());
    assert_eq!(out.code(), Some(expected), "exit status\n{}", out.report());
    assert!(out.stdout.is_empty(), "nothing on stdout\n{}", out.report());
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr\n{}", out.report());
    assert!(
        lines[0].starts_with("sandbox:"),
        "the line starts with \"sandbox:\"\n{}",
        out.report()
    );
    let path = program.to_string_lossy();
    assert!(lines[0].contains(path.as_ref()), "the line names {path}\n{}", out.report());
}

/// A static binary's bytes, to corrupt.
fn static_elf() -> Vec<u8> {
    std::fs::read(build_c("exit_with", Link::Static)).expect("read the test binary")
}

/// Writes `bytes` to `dir/name` with mode 0755; returns the absolute path.
fn executable(dir: &WorkDir, name: &str, bytes: &[u8]) -> PathBuf {
    common::write_file(dir.path(), name, bytes);
    common::chmod(dir.path(), name, 0o755);
    dir.join(name)
}

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn get_u64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

#[test]
fn missing_file() {
    gated!(missing_file);
    let dir = WorkDir::new("bad-missing");
    let p = dir.join("does-not-exist");
    check(&dir, p.as_os_str(), 127, Some(127));
}

#[test]
fn not_found_in_path() {
    gated!(not_found_in_path);
    let dir = WorkDir::new("bad-not-in-path");
    check(&dir, OsStr::new("no-such-program-for-the-sandbox-test"), 127, Some(127));
}

#[test]
fn directory() {
    gated!(directory);
    let dir = WorkDir::new("bad-directory");
    std::fs::create_dir(dir.join("subdir")).unwrap();
    common::chmod(dir.path(), "subdir", 0o755);
    check(&dir, dir.join("subdir").as_os_str(), 126, Some(126));
}

/// bash runs it as a shell script (status 0 here); the sandbox refuses: 126.
#[test]
fn text_file_without_shebang() {
    gated!(text_file_without_shebang);
    let dir = WorkDir::new("bad-text");
    let p = executable(&dir, "script", b"exit 0\n");
    check(&dir, p.as_os_str(), 126, Some(0));
}

/// An empty executable file: bash runs it as an empty script (0); the sandbox: 126.
#[test]
fn empty_file() {
    gated!(empty_file);
    let dir = WorkDir::new("bad-empty");
    let p = executable(&dir, "empty", b"");
    check(&dir, p.as_os_str(), 126, Some(0));
}

/// The first 100 bytes of a static binary: a whole ELF header, program headers cut off.
#[test]
fn truncated_elf() {
    gated!(truncated_elf);
    let dir = WorkDir::new("bad-truncated");
    let p = executable(&dir, "truncated", &static_elf()[..100]);
    check(&dir, p.as_os_str(), 126, Some(126));
}

/// EI_CLASS patched to ELFCLASS32. Linux's 64-bit ELF loader does not look at EI_CLASS and
/// runs this file anyway (bash: exit_with's usage message, status 2), so there is no bash
/// expectation; the sandbox refuses a header that says 32-bit: 126.
#[test]
fn elf32_class() {
    gated!(elf32_class);
    let dir = WorkDir::new("bad-elf32");
    let mut b = static_elf();
    b[4] = 1;
    let p = executable(&dir, "elf32", &b);
    check(&dir, p.as_os_str(), 126, None);
}

/// e_machine patched to EM_AARCH64 (183).
#[test]
fn foreign_machine() {
    gated!(foreign_machine);
    let dir = WorkDir::new("bad-machine");
    let mut b = static_elf();
    put_u16(&mut b, 0x12, 183);
    let p = executable(&dir, "aarch64", &b);
    check(&dir, p.as_os_str(), 126, Some(126));
}

/// e_phoff pointing past the end of the file.
#[test]
fn phoff_past_end() {
    gated!(phoff_past_end);
    let dir = WorkDir::new("bad-phoff");
    let mut b = static_elf();
    let past = b.len() as u64 + 4096;
    put_u64(&mut b, 0x20, past);
    let p = executable(&dir, "phoff", &b);
    check(&dir, p.as_os_str(), 126, Some(126));
}

/// e_phentsize not the size of an Elf64_Phdr.
#[test]
fn bad_phentsize() {
    gated!(bad_phentsize);
    let dir = WorkDir::new("bad-phentsize");
    let mut b = static_elf();
    put_u16(&mut b, 0x36, 0x10);
    let p = executable(&dir, "phentsize", &b);
    check(&dir, p.as_os_str(), 126, Some(126));
}

/// A dynamic binary whose PT_INTERP string lost its terminating NUL (Linux: ENOEXEC).
#[test]
fn pt_interp_without_nul() {
    gated!(pt_interp_without_nul);
    let dir = WorkDir::new("bad-interp");
    let mut b = std::fs::read(build_c("exit_with", Link::Dynamic)).unwrap();
    let (phoff, phentsize, phnum) = (
        get_u64(&b, 0x20) as usize,
        u16::from_le_bytes([b[0x36], b[0x37]]) as usize,
        u16::from_le_bytes([b[0x38], b[0x39]]) as usize,
    );
    let interp = (0..phnum)
        .map(|i| phoff + i * phentsize)
        .find(|&o| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) == 3)
        .expect("a dynamic binary has PT_INTERP");
    let (off, filesz) = (get_u64(&b, interp + 8) as usize, get_u64(&b, interp + 0x20) as usize);
    assert_eq!(b[off + filesz - 1], 0, "PT_INTERP ends with its NUL");
    b[off + filesz - 1] = b'X';
    let p = executable(&dir, "interp", &b);
    check(&dir, p.as_os_str(), 126, Some(126));
}

/// A valid static binary without any execute bit (EACCES even for root).
#[test]
fn no_execute_permission() {
    gated!(no_execute_permission);
    let dir = WorkDir::new("bad-noexec");
    common::write_file(dir.path(), "noexec", static_elf());
    common::chmod(dir.path(), "noexec", 0o644);
    let p = dir.join("noexec");
    check(&dir, p.as_os_str(), 126, Some(126));
}

/// The path in the message is the one given, also when it is relative.
#[test]
fn relative_path_named_as_given() {
    gated!(relative_path_named_as_given);
    let dir = WorkDir::new("bad-relative");
    std::fs::create_dir(dir.join("d")).unwrap();
    check(&dir, OsStr::from_bytes(b"./d"), 126, Some(126));
    check(&dir, OsStr::from_bytes(b"./missing"), 127, Some(127));
}

/// Usage errors (an unknown or misspelt option, `--env` without `=`, no program) exit 2 like
/// any getopt-style tool, with clap's message on stderr, before anything runs; no KVM needed.
#[test]
fn usage_errors_exit_2() {
    for args in [
        &["run", "--trcae", "--", "/bin/true"][..],
        &["run", "--env", "NOEQUALS", "/bin/true"],
        &["run", "--trace=", "/bin/true"],
        &["run"],
        &["frobnicate"],
    ] {
        let out = std::process::Command::new(common::sandbox_bin()).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "sandbox {args:?}: {err}");
        assert!(err.contains("error:") && !err.contains("panicked"), "sandbox {args:?}: {err}");
        assert!(out.stdout.is_empty(), "sandbox {args:?} printed on stdout");
    }
}

/// Options after PROGRAM are the program's, not the sandbox's.
#[test]
fn options_after_the_program_are_its_own() {
    gated!(options_after_the_program_are_its_own);
    let out = run_in(
        Mode::Sandboxed,
        &Cmd::new("/bin/echo").args(["--trcae", "-q"]),
        std::env::temp_dir().as_path(),
    );
    assert_eq!(out.stdout_str(), "--trcae -q\n", "{}", out.report());
    assert_eq!(out.code(), Some(0), "{}", out.report());
}

/// A program writing to a pipe whose reader has gone dies of SIGPIPE, as natively (`yes | head
/// -1` must end, and a shell sees 141): the sandbox leaves SIGPIPE at its default.
#[test]
fn a_closed_pipe_kills_the_writer_with_sigpipe() {
    gated!(a_closed_pipe_kills_the_writer_with_sigpipe);
    if common::selfcheck() {
        return;
    }
    let mut child = std::process::Command::new(common::sandbox_bin())
        .args(["run", "--", "/bin/busybox", "yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 2];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    assert_eq!(&first, b"y\n");
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "status {status:?}");
}

/// PROGRAM is looked up in the PATH the program gets (`--env PATH=...`), as env(1) does.
#[test]
fn program_found_through_the_programs_path() {
    gated!(program_found_through_the_programs_path);
    let run = |args: &[&str]| {
        std::process::Command::new(common::sandbox_bin()).args(args).output().unwrap()
    };
    let out = run(&["run", "--env", "PATH=/nonexistent", "--", "true"]);
    assert_eq!(out.status.code(), Some(127), "{}", String::from_utf8_lossy(&out.stderr));
    let native =
        std::process::Command::new("env").args(["PATH=/nonexistent", "true"]).status().unwrap();
    assert_eq!(native.code(), Some(127), "env(1) agrees");
    let out = run(&["run", "--env-clear", "--env", "PATH=/bin", "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Too few descriptors to start: exit 125 with a message naming the limit and the fix, not a
/// failure deep inside KVM set-up.
#[test]
fn too_few_descriptors_named() {
    gated!(too_few_descriptors_named);
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(common::sandbox_bin());
    cmd.args(["run", "--", "/bin/true"]);
    // SAFETY: setrlimit is async-signal-safe; the closure touches only a local.
    unsafe {
        cmd.pre_exec(|| {
            let r = libc::rlimit { rlim_cur: 64, rlim_max: 64 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains("ulimit -n") && err.contains("64"), "{err}");
}

/// `--trace FILE PROGRAM` (a space instead of `=`) takes FILE for the program: the error says
/// how to name a trace file.
#[test]
fn trace_file_without_equals_gets_a_hint() {
    let out = std::process::Command::new(common::sandbox_bin())
        .args(["run", "--trace", "no-such-trace-file.txt", "--", "/bin/true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{err}");
    assert!(err.contains("write --trace=no-such-trace-file.txt"), "{err}");
}

/// A script whose `#!` interpreter does not exist (here: a CRLF line, `/bin/sh\r`): 127 as a
/// shell gives, and the message names the script and shows the interpreter with its `\r`.
#[test]
fn bad_interpreter_names_the_script() {
    gated!(bad_interpreter_names_the_script);
    let dir = WorkDir::new("bad-interpreter");
    let script = executable(&dir, "crlf.sh", b"#!/bin/sh\r\necho hi\n");
    let out = std::process::Command::new(common::sandbox_bin())
        .args(["run", "--"])
        .arg(&script)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{err}");
    let expected = format!("{}: bad interpreter \"/bin/sh\\r\" (its #! line)", script.display());
    assert!(err.contains(&expected), "{err}");
}

/// A crash of the supervisor itself (a fault in its code, `abort`, a panic) is reported as the
/// runtime's, never as the program's death: one `sandbox: internal error:` line that names the
/// signal (with the address and RIP for a fault) and exit status 125, not death by a signal.
/// Debug builds of the sandbox crash on purpose with `SANDBOX_TEST_CRASH`.
#[test]
fn supervisor_crash_is_reported_as_its_own() {
    if !cfg!(debug_assertions)
        || common::selfcheck()
        || std::env::var_os("SANDBOX_TEST_BIN").is_some()
    {
        eprintln!("skipped: needs a debug build of the sandbox itself");
        return;
    }
    for (crash, what) in [
        ("segv", "crashed with SIGSEGV (si_code 1) at address 0x10, rip 0x"),
        ("abort", "crashed with SIGABRT"),
        ("panic", "panicked in thread "),
    ] {
        let out = std::process::Command::new(common::sandbox_bin())
            .env("SANDBOX_TEST_CRASH", crash)
            .args(["run", "--", "/bin/true"])
            .output()
            .expect("run the sandbox");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{crash}: {out:?}");
        let line = err.lines().find(|l| l.starts_with("sandbox: internal error: ")).unwrap_or("");
        assert!(line.contains("the supervisor (not the program)"), "{crash}: {err}");
        assert!(line.contains(what), "{crash}: {err}");
    }
}
