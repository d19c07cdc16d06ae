//! Escape attempts through pointers the kernel follows from inside a structure or through
//! the buffers of the calls added with their nested validation (tests/c/escape_nested_ptr.c):
//! `struct ifconf`'s `ifc_buf`, the io_submit iocb array, an iocb and its `aio_buf` and iovec
//! array, `struct msgbuf`, `struct sembuf` arrays, the SysV control structures, xattr values
//! and `struct xattr_args`. Pointed into the runtime's memory, every call must fail with
//! `EFAULT` (the runtime stays intact and the program alive); a runtime descriptor as
//! `aio_fildes`, `aio_resfd` or an ioctl or xattr descriptor must give `EBADF`. As in
//! tests/escape.rs, each test also runs the program natively (where there is no runtime) and
//! the "own" control, whose calls succeed the same way natively and sandboxed.
#[macro_use]
mod common;

use common::{Cmd, Link, Output, build_c, run_native, run_sandboxed};

fn prog() -> std::path::PathBuf {
    build_c("escape_nested_ptr", Link::Static)
}

/// The sandboxed run, or None in selfcheck mode (the sandbox-only assertions are skipped).
fn sandboxed(cmd: &Cmd) -> Option<(Output, common::WorkDir)> {
    if common::selfcheck() {
        eprintln!("SANDBOX_TEST_SELFCHECK=1: skipping the sandboxed run of {}", cmd.describe());
        return None;
    }
    Some(run_sandboxed(cmd))
}

/// The call lines ("<call>: <result>") of the output.
fn call_lines(out: &Output) -> Vec<(String, String)> {
    out.stdout_str()
        .lines()
        .filter(|l| l.contains("): "))
        .map(|l| {
            let (a, b) = l.split_once("): ").expect("checked");
            (format!("{a})"), b.to_owned())
        })
        .collect()
}

/// Asserts that `out` made the calls `calls`, in order, each failing with `errno`.
fn assert_all_fail(out: &Output, calls: &[String], errno: &str) {
    assert!(!out.stderr_str().contains("panicked"), "{}", out.report());
    out.assert_success().assert_last_line("alive");
    let got = call_lines(out);
    let names: Vec<&String> = got.iter().map(|(c, _)| c).collect();
    assert_eq!(names, calls.iter().collect::<Vec<_>>(), "the same calls\n{}", out.report());
    let want = format!("-1 {errno}");
    let bad: Vec<String> =
        got.iter().filter(|(_, r)| *r != want).map(|(c, r)| format!("{c}: {r}")).collect();
    assert!(
        bad.is_empty(),
        "these calls did not fail with {errno}:\n{}\n\n{}",
        bad.join("\n"),
        out.report()
    );
}

#[test]
fn nested_pointers_into_runtime_fault() {
    gated!(nested_pointers_into_runtime_fault);
    let (own, _d1) = run_native(&Cmd::new(prog()).host_maps().arg("own"));
    own.assert_success().assert_last_line("alive");
    let calls: Vec<String> = call_lines(&own).into_iter().map(|(c, _)| c).collect();
    assert!(calls.len() >= 30, "{}", own.report());
    let cmd = Cmd::new(prog()).host_maps().arg("runtime");
    let (native, _d2) = run_native(&cmd);
    assert_eq!(native.code(), Some(2), "natively there is no runtime\n{}", native.report());
    assert!(native.stdout_str().contains("no foreign mapping"), "{}", native.report());
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    assert!(
        !out.stdout_str().contains("no foreign mapping"),
        "no runtime mapping found in /proc/self/maps: this test cannot run\n{}",
        out.report()
    );
    assert_all_fail(&out, &calls, "EFAULT");
}

/// The control: the same calls on the program's own buffers, the same both ways, none EFAULT.
#[test]
fn nested_pointers_own_control() {
    gated!(nested_pointers_own_control);
    let c = common::assert_same("nested-ptr-own", &Cmd::new(prog()).host_maps().arg("own"));
    let n = &c.last().native;
    n.assert_success().assert_last_line("alive");
    assert!(!n.stdout_str().contains("EFAULT"), "{}", n.report());
    assert!(n.stdout_str().contains("io_submit(iocb array): 1\n"), "{}", n.report());
}

#[test]
fn runtime_descriptors_in_nested_arguments_ebadf() {
    gated!(runtime_descriptors_in_nested_arguments_ebadf);
    let cmd = Cmd::new(prog()).host_maps().arg("fds");
    // Natively nothing is open at the program's RLIMIT_NOFILE: EBADF there too.
    let (native, _nd) = run_native(&cmd);
    assert!(matches!(native.code(), Some(0 | 2)), "{}", native.report());
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    let calls: Vec<String> = [
        "io_submit(aio_fildes)",
        "io_submit(fsync aio_fildes)",
        "io_submit(aio_resfd)",
        "ioctl(TCGETS fd)",
        "ioctl(SIOCGIFCONF fd)",
        "ioctl(SIOCGIFFLAGS fd)",
        "fsetxattr(fd)",
        "fremovexattr(fd)",
        "setxattrat(dirfd)",
    ]
    .map(str::to_owned)
    .to_vec();
    assert_all_fail(&out, &calls, "EBADF");
}

/// TIOCSTI (typing into a terminal's input) is refused with EIO, and nothing is typed.
#[test]
fn tiocsti_refused() {
    gated!(tiocsti_refused);
    let cmd = Cmd::new(prog()).host_maps().arg("tiocsti");
    let (native, _nd) = run_native(&cmd);
    native.assert_success().assert_last_line("alive");
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    out.assert_success().assert_last_line("alive");
    let s = out.stdout_str();
    assert!(s.contains("ioctl(TIOCSTI): -1 EIO\n"), "{}", out.report());
    assert!(s.contains("input queued: 0\n"), "{}", out.report());
}
