//! Switchless system calls in the sandbox (src/switchless.rs): bursts of simple calls served by
//! a helper thread without exits must behave exactly as the same calls through exits and as
//! natively, including while signal handlers make calls of their own; the helper thread runs
//! exactly where the host has the ring-3 `syscall` path, two CPUs are available, and
//! `--no-switchless` was not given.
#[macro_use]
mod common;

use common::{Cmd, Link, assert_same_steps, build_c, write_file};

/// An 8 MiB input file (pseudo-random bytes) in the working directory.
fn input(dir: &std::path::Path) {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..8_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    write_file(dir, "in.bin", &bytes);
}

fn burst(sandbox_opts: &[&str], name: &str) {
    let bin = build_c("switchless_burst", Link::Static);
    let mut cmd = Cmd::new(&bin).arg("in.bin");
    for o in sandbox_opts {
        cmd = cmd.sandbox_opt(o);
    }
    let c = assert_same_steps(name, input, &[cmd]);
    let out = c.last().native.stdout_str();
    assert!(out.contains("size 8000000 blocks 5862\n"), "{out}");
    assert!(out.contains("all three equal 1\ninconsistencies 0 handler errors 0\n"), "{out}");
}

#[test]
fn bursts_as_natively() {
    gated!(bursts_as_natively);
    burst(&[], "switchless-burst");
}

#[test]
fn bursts_as_natively_without_switchless() {
    gated!(bursts_as_natively_without_switchless);
    burst(&["--no-switchless"], "switchless-burst-off");
}

/// The names of the sandbox's threads after a burst of calls: (as the program sees them in
/// /proc/self/task, as the host has them in /proc/PID/task, read from outside while the
/// program waits).
fn thread_names(opts: &[&str]) -> (Vec<String>, Vec<String>) {
    use std::io::{BufRead, BufReader};
    let bin = build_c("switchless_burst", Link::Static);
    let mut cmd = Cmd::new(&bin).args(["in.bin", "threads"]);
    for o in opts {
        cmd = cmd.sandbox_opt(o);
    }
    let dir = common::WorkDir::new("switchless-threads");
    input(dir.path());
    let mut child = common::command_for(common::Mode::Sandboxed, &cmd)
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the sandbox");
    let mut lines = BufReader::new(child.stdout.take().expect("piped"));
    let mut seen = Vec::new();
    let mut line = String::new();
    while lines.read_line(&mut line).unwrap_or(0) > 0 {
        if line.trim_end() == "waiting" {
            break;
        }
        if let Some(l) = line.strip_prefix("threads:") {
            seen = l.split_whitespace().map(str::to_owned).collect();
        }
        line.clear();
    }
    let mut host = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", child.id())) {
        for t in tasks.flatten() {
            if let Ok(n) = std::fs::read_to_string(t.path().join("comm")) {
                host.push(n.trim_end().to_owned());
            }
        }
    }
    drop(child.stdin.take());
    let status = child.wait().expect("wait for the sandbox");
    assert!(status.success(), "{status}: program view {seen:?}, host {host:?}");
    (seen, host)
}

#[test]
fn server_thread_exactly_where_used() {
    gated!(server_thread_exactly_where_used);
    if common::selfcheck() {
        return;
    }
    let vm = dune::Vm::new(dune::VmConfig::default()).expect("Vm::new");
    let ring3 = vm.platform().syscall_path == dune::SyscallPath::Ring3Doorbell;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The kernel truncates thread names to 15 bytes.
    let server = |names: &[String]| names.iter().any(|n| n == "sandbox-switchl");
    let (seen, on) = thread_names(&[]);
    assert_eq!(server(&on), ring3 && cpus >= 2, "ring3 {ring3}, {cpus} CPUs: {on:?}");
    // The program sees its own thread only, named as the program.
    assert_eq!(seen, ["switchless_burs"], "the program's view of its threads");
    let (seen, off) = thread_names(&["--no-switchless"]);
    assert!(!server(&off), "--no-switchless still has a server: {off:?}");
    assert_eq!(seen, ["switchless_burs"], "the program's view of its threads");
}
