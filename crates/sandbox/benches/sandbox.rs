//! Whole-process measurements of the sandbox, each beside its baseline from the same run
//! (`cargo xtask bench` prints the ratios):
//!
//! * per forwarded system call (a `getppid` loop): native, seccomp `RET_TRAP`, a ptrace
//!   `PTRACE_SYSEMU` interposer, and the sandbox with and without switchless calls — each
//!   `(T(N) - T(0)) / N`, so process start-up cancels out;
//! * CPU-bound work: busybox `gzip -9` of 64 MiB, busybox `sha256sum` and coreutils'
//!   `sha256sum` of 256 MiB, native and sandboxed;
//! * a static hello world end to end, native and sandboxed;
//! * the first touch of 256 MiB of fresh memory, and node's start-up, native and sandboxed;
//! * the filesystem rules' cost: a checked `open` and `stat`, `tar x` of 10,000 files and
//!   `find /usr`, native, under the null policy and under the `workspace` profile;
//! * the peer: gVisor (Debian's `runsc`, `--platform=ptrace --network=none`, the one gVisor
//!   platform that runs on kvm_pvm) beside native and sandboxed for `getppid`, the static hello
//!   world, a shell loop of 50 fork+exec+wait, `python3 -c pass` and busybox `sha256sum` of
//!   64 MiB, measured in the same turns (`<id>_gvisor`); skipped with a note where `runsc` is
//!   missing or cannot start a sandbox (it needs root).
//!
//! A custom harness (process-level timings do not fit criterion's iteration model), writing
//! criterion's result layout (`target/criterion/<id>/new/{benchmark,estimates}.json`) so the
//! results land in the same table. `--quick` takes fewer samples.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().to_path_buf()
}

/// Builds `c/<name>.c` statically into the target directory.
fn build(name: &str) -> PathBuf {
    build_with(name, &[])
}

/// Like [`build`] with extra compiler flags.
fn build_with(name: &str, flags: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/c").join(format!("{name}.c"));
    let out = target_dir().join("bench-bins").join(name);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let st = Command::new("gcc")
        .args(["-static", "-O2"])
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status();
    assert!(st.is_ok_and(|s| s.success()), "gcc failed for {}", src.display());
    out
}

fn time(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let st = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().expect("spawn");
    let d = t.elapsed();
    assert!(st.success() || st.code().is_some(), "{cmd:?}: {st}");
    d
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median of `runs` timings of `make()`.
fn measure(runs: usize, make: impl Fn() -> Command) -> Duration {
    median((0..runs).map(|_| time(&mut make())).collect())
}

/// A named way to start a process: (result id, command maker).
type Variant = (String, Box<dyn Fn() -> Command>);

/// Median timings of several variants measured in turns (native, sandboxed, native, ...), so
/// that the host's speed drifting during the run (it does, by tens of percent, on shared cloud
/// hosts) moves every variant alike and their ratios stay fair. Reports each under its id.
fn measure_interleaved(runs: usize, variants: &[Variant]) {
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); variants.len()];
    for _ in 0..runs {
        for (i, (_, make)) in variants.iter().enumerate() {
            times[i].push(time(&mut make()));
        }
    }
    for ((id, _), t) in variants.iter().zip(times) {
        report(id, median(t).as_nanos() as f64);
    }
}

/// Starts a program given as `[program]` one way or another (natively, sandboxed).
type Start = fn(&[&Path]) -> Command;

/// Which runs of `prog args` to compare (`<id>_native`, `<id>_sandboxed`, with `exits`
/// `<id>_sandboxed_exits` under `--no-switchless`, with `peer` `<id>_gvisor` where gVisor
/// runs), those `wanted`, appended to `variants`.
fn variants_of(
    variants: &mut Vec<Variant>,
    wanted: &dyn Fn(&str) -> bool,
    id: &str,
    prog: &Path,
    args: &[&OsStr],
    (exits, peer): (bool, bool),
) {
    let ways: [(&str, Start, bool); 4] = [
        ("native", |p| Command::new(p[0]), true),
        ("sandboxed", sandboxed, true),
        ("sandboxed_exits", sandboxed_exits, exits),
        ("gvisor", gvisor, peer),
    ];
    for (suffix, start, _) in ways.into_iter().filter(|w| w.2) {
        let full = format!("sandbox/{id}_{suffix}");
        if !wanted(&full) || (suffix == "gvisor" && !gvisor_usable()) {
            continue;
        }
        let prog = prog.to_path_buf();
        let args: Vec<std::ffi::OsString> = args.iter().map(|a| a.to_os_string()).collect();
        variants.push((
            full,
            Box::new(move || {
                let mut c = start(&[&prog]);
                c.args(&args);
                c
            }),
        ));
    }
}

/// Writes a result where `cargo xtask bench` finds it.
fn report(id: &str, ns: f64) {
    let dir = target_dir().join("criterion").join(id.replace('/', "_")).join("new");
    std::fs::create_dir_all(&dir).unwrap();
    let bench = format!("{{\"full_id\":\"{id}\",\"group_id\":\"sandbox\"}}");
    let est =
        format!("{{\"median\":{{\"point_estimate\":{ns}}},\"mean\":{{\"point_estimate\":{ns}}}}}");
    std::fs::write(dir.join("benchmark.json"), bench).unwrap();
    std::fs::write(dir.join("estimates.json"), est).unwrap();
    let shown = if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    };
    println!("{id:<40} {shown}");
}

/// Per-call cost of `program N` run through `wrap`: (T(N) - T(0)) / N.
fn per_call(id: &str, n: u64, runs: usize, wrap: impl Fn(&[String]) -> Command) {
    let t0 = measure(runs, || wrap(&["0".into()]));
    let tn = measure(runs, || wrap(&[n.to_string()]));
    let ns = tn.saturating_sub(t0).as_nanos() as f64 / n as f64;
    report(id, ns);
}

fn sandboxed(args: &[&Path]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sandbox"));
    c.args(["run", "--policy", "null", "--"]).args(args);
    c
}

/// gVisor's `runsc do` with the ptrace platform and no network: the program runs in a gVisor
/// sandbox over an overlay of the host's root.
fn gvisor(args: &[&Path]) -> Command {
    let mut c = Command::new("runsc");
    c.args(["--platform=ptrace", "--network=none", "do"]).args(args);
    c
}

/// Whether `runsc` can run a program here; prints why not once when it cannot.
fn gvisor_usable() -> bool {
    static USABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *USABLE.get_or_init(|| {
        let out = gvisor(&[Path::new("/bin/true")]).stdout(Stdio::null()).output();
        match out {
            Ok(o) if o.status.success() => true,
            Ok(o) => {
                let stderr = String::from_utf8_lossy(&o.stderr);
                let why = stderr.lines().last().unwrap_or("no message").trim();
                eprintln!("note: runsc cannot start a sandbox here ({why}); gVisor rows skipped");
                false
            }
            Err(e) => {
                eprintln!("note: runsc not found ({e}; Debian package runsc); gVisor rows skipped");
                false
            }
        }
    })
}

/// `sandbox run --policy workspace`: the default profile's filesystem rules (and its
/// kernel-enforced layer, where the host has Landlock).
fn sandboxed_workspace(args: &[&Path]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sandbox"));
    c.args(["run", "--policy", "workspace", "--"]).args(args);
    c
}

/// The filesystem rules' cost (issue 14.7): a checked `open` and `stat` per call, `tar x` of
/// a 10,000-file archive and `find` over `/usr`, each native, under the null policy and under
/// the `workspace` profile, run from a scratch directory (the profile's writable one).
fn filesystem_benches(wanted: &dyn Fn(&str) -> bool, quick: bool, runs: usize) {
    let scratch = target_dir().join("bench-bins").join("fs-scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let openstat = build("openstat");
    type Wrap = fn(&[&Path]) -> Command;
    let ways: [(&str, Wrap); 3] = [
        ("native", |p| Command::new(p[0])),
        ("null", sandboxed),
        ("workspace", sandboxed_workspace),
    ];
    for mode in ["open", "stat"] {
        for (way, wrap) in ways {
            let id = format!("sandbox/{mode}_{way}");
            if !wanted(&id) {
                continue;
            }
            let n = if way == "native" { 200_000 } else { 20_000 };
            per_call(&id, n, runs, |a| {
                let mut c = wrap(&[&openstat]);
                c.args(a).args([mode, "/etc/hostname"]).current_dir(&scratch);
                c
            });
        }
    }
    // A 10,000-file archive (100 directories of 100 files of 1 KiB), made once.
    let tar = Path::new("/usr/bin/tar");
    let archive = target_dir().join("bench-bins").join("files-10k.tar");
    if tar.exists() && !archive.exists() {
        let src = scratch.join("src");
        for d in 0..100 {
            let dir = src.join(format!("d{d:03}"));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..100 {
                std::fs::write(dir.join(format!("f{f:03}")), [b'x'; 1024]).unwrap();
            }
        }
        let st = Command::new(tar).arg("cf").arg(&archive).arg("-C").arg(&src).arg(".").status();
        assert!(st.is_ok_and(|s| s.success()), "tar cf failed");
        let _ = std::fs::remove_dir_all(&src);
    }
    let mut variants: Vec<Variant> = Vec::new();
    if tar.exists() {
        for (way, wrap) in ways {
            let id = format!("sandbox/tar_x_10k_{way}");
            if !wanted(&id) {
                continue;
            }
            let (archive, scratch) = (archive.clone(), scratch.clone());
            let round = std::cell::Cell::new(0u32);
            variants.push((
                id,
                Box::new(move || {
                    // A fresh directory per run, made (and the last one removed) before the
                    // clock starts.
                    let n = round.get();
                    round.set(n + 1);
                    let _ = std::fs::remove_dir_all(
                        scratch.join(format!("x{way}{}", n.wrapping_sub(1))),
                    );
                    let out = scratch.join(format!("x{way}{n}"));
                    std::fs::create_dir_all(&out).unwrap();
                    let mut c = wrap(&[tar]);
                    c.arg("xf").arg(&archive).current_dir(&out);
                    c
                }),
            ));
        }
    }
    let find = Path::new("/usr/bin/find");
    if find.exists() {
        for (way, wrap) in ways {
            let id = format!("sandbox/find_usr_{way}");
            if wanted(&id) {
                let scratch = scratch.clone();
                variants.push((
                    id,
                    Box::new(move || {
                        let mut c = wrap(&[find]);
                        c.args(["/usr", "-name", "no-such-file-anywhere"]).current_dir(&scratch);
                        c
                    }),
                ));
            }
        }
    }
    measure_interleaved(if quick { 1 } else { 5 }, &variants);
    let _ = std::fs::remove_dir_all(&scratch);
}

/// `sandbox run --no-switchless`: every system call exits to the vCPU thread.
fn sandboxed_exits(args: &[&Path]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sandbox"));
    c.args(["run", "--policy", "null", "--no-switchless", "--"]).args(args);
    c
}

/// A minimal PTRACE_SYSEMU interposer: runs `program args` as a tracee, lets its start-up
/// system calls run (PTRACE_SYSCALL) until the first getppid, then answers every getppid
/// itself with one SYSEMU stop each, and ends the tracee at exit_group.
#[allow(unsafe_code)]
fn ptrace_sysemu(program: &Path, arg: &str) -> Duration {
    use std::ffi::CString;
    let prog = CString::new(program.as_os_str().as_encoded_bytes()).unwrap();
    let a = CString::new(arg).unwrap();
    let t = Instant::now();
    // SAFETY: fork in a single-threaded bench helper; the child only calls async-signal-safe
    // functions before execv.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: child side: request tracing, stop so the parent can set options, exec.
        unsafe {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::raise(libc::SIGSTOP);
            let argv = [prog.as_ptr(), a.as_ptr(), std::ptr::null()];
            libc::execv(prog.as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
    }
    let mut status = 0;
    // SAFETY: plain waitpid/ptrace calls on our own child.
    unsafe {
        libc::waitpid(pid, &mut status, 0);
        libc::ptrace(
            libc::PTRACE_SETOPTIONS,
            pid,
            0,
            libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL,
        );
        let mut emulate = false;
        let mut req = libc::PTRACE_SYSCALL;
        loop {
            libc::ptrace(req, pid, 0, 0);
            if libc::waitpid(pid, &mut status, 0) < 0
                || libc::WIFEXITED(status)
                || libc::WIFSIGNALED(status)
            {
                break;
            }
            if !libc::WIFSTOPPED(status) || libc::WSTOPSIG(status) != (libc::SIGTRAP | 0x80) {
                continue;
            }
            let mut regs: libc::user_regs_struct = std::mem::zeroed();
            libc::ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs);
            let nr = regs.orig_rax as i64;
            if nr == libc::SYS_getppid {
                emulate = true;
            }
            if nr == libc::SYS_exit_group && emulate {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
                break;
            }
            if emulate && nr == libc::SYS_getppid {
                regs.rax = 1;
                libc::ptrace(libc::PTRACE_SETREGS, pid, 0, &regs);
                req = libc::PTRACE_SYSEMU;
            } else {
                req = if emulate { libc::PTRACE_SYSEMU } else { libc::PTRACE_SYSCALL };
            }
        }
    }
    t.elapsed()
}

/// The supervisor's own work for one mediated `connect` under a firewall of `rules` rules
/// (the last one matching): decoding the copied address and the first-match decision (no
/// audit line: an allowed call writes none).
fn firewall_decide_ns(rules: usize) -> f64 {
    use sandbox::policy::Action;
    use sandbox::policy::endpoint::{self, Decoded, Op, SockKind};
    use sandbox::policy::firewall::{self, NetPolicy, NetRule, Ops, PortRange, Protocol, Target};
    let mut p = NetPolicy::deny_all("default");
    for i in 0..rules {
        let net = format!("10.{}.0.0/16", i % 256).parse().unwrap();
        let last = i + 1 == rules;
        let nets = if last { firewall::loopback_nets() } else { vec![net] };
        let target = Target::Ip { nets, ports: PortRange::one(8080) };
        let ops = Ops::of(Op::Connect);
        p.rules.push(NetRule::new("r".into(), Action::Allow, ops, Protocol::Tcp, target, None));
    }
    let kind = SockKind { domain: 10, ty: 1, protocol: 6 };
    let ip = "::ffff:127.0.0.1".parse().unwrap();
    let mut addr = endpoint::encode_ip(ip, 8080);
    addr.resize(28, 0);
    let n = 2_000_000u32;
    let t = Instant::now();
    let mut allowed = 0u32;
    for _ in 0..n {
        let a = std::hint::black_box(&addr);
        if let Decoded::Reach(ep) = endpoint::decode(&kind, Op::Connect, a) {
            let r = firewall::Request {
                op: Op::Connect,
                transport: kind.transport(),
                endpoint: &ep,
                local_port: None,
                datagram: false,
            };
            allowed += u32::from(p.decide(&r) == Action::Allow);
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / f64::from(n);
    assert_eq!(allowed, n, "the last rule allows the connect");
    ns
}

/// The host calls that pin a program socket for a decision: a duplicate (`dup`), its kind
/// (three `getsockopt`s), the duplicate given back (`close`; the sandbox puts a placeholder
/// back with `dup3`, the same cost).
#[allow(unsafe_code)]
fn pin_ns() -> f64 {
    // SAFETY: plain socket calls on descriptors this function creates and closes, with local
    // buffers.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(s >= 0);
        let n = 200_000u32;
        let t = Instant::now();
        for _ in 0..n {
            let d = libc::dup(s);
            for opt in [libc::SO_DOMAIN, libc::SO_TYPE, libc::SO_PROTOCOL] {
                let mut v = 0i32;
                let mut len = 4u32;
                libc::getsockopt(d, libc::SOL_SOCKET, opt, (&raw mut v).cast(), &mut len);
            }
            libc::close(d);
        }
        let ns = t.elapsed().as_nanos() as f64 / f64::from(n);
        libc::close(s);
        ns
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    // Substrings of ids; `a|b` for either (criterion's filter is a regex: one filter, with
    // alternatives, selects the same ids in every bench binary of `cargo xtask bench`).
    let wanted = |id: &str| {
        filter.is_empty() || filter.iter().flat_map(|f| f.split('|')).any(|f| id.contains(f))
    };
    let runs = if quick { 3 } else { 7 };
    // Pure supervisor work, without KVM.
    for rules in [1usize, 16] {
        let id = format!("sandbox/firewall_decide_{rules}");
        if wanted(&id) {
            report(&id, firewall_decide_ns(rules));
        }
    }
    if wanted("sandbox/firewall_pin") {
        report("sandbox/firewall_pin", pin_ns());
    }
    if !dune::testing::kvm_or_skip("sandbox::benches::sandbox") {
        return;
    }
    let getppid = build("getppid_loop");
    let seccomp = build("seccomp_trap");

    if wanted("sandbox/getppid_native") {
        per_call("sandbox/getppid_native", 2_000_000, runs, |a| {
            let mut c = Command::new(&getppid);
            c.args(a);
            c
        });
    }
    if wanted("sandbox/getppid_seccomp_trap") {
        per_call("sandbox/getppid_seccomp_trap", 500_000, runs, |a| {
            let mut c = Command::new(&seccomp);
            c.args(a);
            c
        });
    }
    if wanted("sandbox/getppid_ptrace_sysemu") {
        let n = 100_000u64;
        let t0 = median((0..runs).map(|_| ptrace_sysemu(&getppid, "0")).collect());
        let tn = median((0..runs).map(|_| ptrace_sysemu(&getppid, &n.to_string())).collect());
        report("sandbox/getppid_ptrace_sysemu", tn.saturating_sub(t0).as_nanos() as f64 / n as f64);
    }
    if wanted("sandbox/getppid_sandboxed") {
        per_call("sandbox/getppid_sandboxed", 40_000, runs, |a| {
            let mut c = sandboxed(&[&getppid]);
            c.args(a);
            c
        });
    }
    if wanted("sandbox/getppid_sandboxed_exits") {
        per_call("sandbox/getppid_sandboxed_exits", 40_000, runs, |a| {
            let mut c = sandboxed_exits(&[&getppid]);
            c.args(a);
            c
        });
    }

    if wanted("sandbox/getppid_gvisor") && gvisor_usable() {
        per_call("sandbox/getppid_gvisor", 40_000, runs, |a| {
            let mut c = gvisor(&[&getppid]);
            c.args(a);
            c
        });
    }

    filesystem_benches(&wanted, quick, runs);

    let hello = build("hello");
    let mut variants = Vec::new();
    variants_of(&mut variants, &wanted, "hello", &hello, &[], (false, true));
    measure_interleaved(if quick { 11 } else { 51 }, &variants);

    // Processes and threads.
    let forkexec = build("forkexec");
    if wanted("sandbox/forkexec_native") {
        per_call("sandbox/forkexec_native", 200, runs, |a| {
            let mut c = Command::new(&forkexec);
            c.args(a);
            c
        });
    }
    if wanted("sandbox/forkexec_sandboxed") {
        per_call("sandbox/forkexec_sandboxed", if quick { 10 } else { 30 }, runs, |a| {
            let mut c = sandboxed(&[&forkexec]);
            c.args(a);
            c
        });
    }
    // A shell's loop of 50 fork+exec+wait of /bin/true (dash runs each with vfork), and
    // python's start-up, each native, sandboxed and under gVisor in turns.
    let mut variants = Vec::new();
    let sh = Path::new("/bin/sh");
    let lp = "i=0; while [ $i -lt 50 ]; do /bin/true; i=$((i+1)); done";
    variants_of(
        &mut variants,
        &wanted,
        "sh_loop50",
        sh,
        &["-c".as_ref(), lp.as_ref()],
        (false, true),
    );
    let python = Path::new("/usr/bin/python3");
    if python.exists() {
        let pass: [&OsStr; 2] = ["-c".as_ref(), "pass".as_ref()];
        variants_of(&mut variants, &wanted, "python_pass", python, &pass, (false, true));
    }
    measure_interleaved(if quick { 3 } else { 9 }, &variants);
    // First touch of 256 MiB, and a large dynamic program's start-up (node maps ~90 MiB of
    // its own executable: loaded as touched, not copied).
    let touch = build("touch");
    let mut variants = Vec::new();
    variants_of(&mut variants, &wanted, "touch256m", &touch, &[], (false, false));
    let node = Path::new("/usr/bin/node");
    if node.exists() {
        variants_of(
            &mut variants,
            &wanted,
            "node_start",
            node,
            &["-e".as_ref(), "0".as_ref()],
            (false, false),
        );
    }
    measure_interleaved(if quick { 3 } else { 9 }, &variants);
    let pingpong = build_with("mutex_pingpong", &["-pthread"]);
    let total = 200_000u64;
    if wanted("sandbox/mutex16_native") {
        let d = measure(runs, || {
            let mut c = Command::new(&pingpong);
            c.arg(total.to_string());
            c
        });
        report("sandbox/mutex16_native", d.as_nanos() as f64);
    }
    if wanted("sandbox/mutex16_sandboxed") {
        let d = measure(runs.min(3), || {
            let mut c = sandboxed(&[&pingpong]);
            c.arg(total.to_string());
            c
        });
        report("sandbox/mutex16_sandboxed", d.as_nanos() as f64);
    }

    // CPU-bound work on deterministic data.
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        eprintln!("note: /bin/busybox missing (package busybox-static); CPU-bound benches skipped");
        return;
    }
    let data = target_dir().join("bench-bins").join("data-64m");
    if std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0) != 64 << 20 {
        // Half compressible text, half pseudo-random bytes (xorshift), like a mixed tarball.
        let mut v = Vec::with_capacity(64 << 20);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        while v.len() < 64 << 20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (v.len() >> 16) % 2 == 0 {
                v.extend_from_slice(
                    format!("line {} of the benchmark input\n", x % 100_000).as_bytes(),
                );
            } else {
                v.extend_from_slice(&x.to_le_bytes());
            }
        }
        v.truncate(64 << 20);
        std::fs::write(&data, v).unwrap();
    }
    let big = target_dir().join("bench-bins").join("data-256m");
    if std::fs::metadata(&big).map(|m| m.len()).unwrap_or(0) != 256 << 20 {
        let chunk = std::fs::read(&data).unwrap();
        let mut f = std::fs::File::create(&big).unwrap();
        for _ in 0..4 {
            std::io::Write::write_all(&mut f, &chunk).unwrap();
        }
    }
    let cpu_runs = if quick { 1 } else { 5 };
    // Busybox reads in 4 KiB blocks (65,537 reads of 256 MiB), coreutils' dynamically linked
    // `sha256sum` in 32 KiB blocks (8,196): the same work at two system-call rates.
    let coreutils = Path::new("/usr/bin/sha256sum");
    for (id, prog, args) in [
        ("gzip9_64m", busybox, vec!["gzip", "-9", "-c"]),
        ("sha256_64m", busybox, vec!["sha256sum"]),
        ("sha256_256m", busybox, vec!["sha256sum"]),
        ("coreutils_sha256_256m", coreutils, vec![]),
    ] {
        if !prog.exists() {
            eprintln!("note: {} missing; {id} skipped", prog.display());
            continue;
        }
        let input: &Path = if id.contains("256m") { &big } else { &data };
        let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        all.push(input.as_os_str());
        // The exit-heavy one also without switchless calls, for comparison.
        let mut variants = Vec::new();
        variants_of(
            &mut variants,
            &wanted,
            id,
            prog,
            &all,
            (id == "sha256_256m", id == "sha256_64m"),
        );
        measure_interleaved(cpu_runs, &variants);
    }
}
