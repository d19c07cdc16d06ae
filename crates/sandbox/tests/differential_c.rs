//! Differential tests with our own C programs (tests/c/*.c), each built with `gcc -static` and
//! with `gcc -static-pie`: every program runs natively and under `sandbox run`, and exit status,
//! stdout and the files left in the working directory must be equal. Each test also checks the
//! native run's output for what the program is known to print, so a sandbox that runs nothing
//! (or exits 0 with no output) fails, and so does a broken harness.
#[macro_use]
mod common;

use common::{Cmd, Link, assert_same, build_c};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

/// Defines the module `<name>` with tests `static_`, `static_pie`, each running the
/// body with `link` set after the KVM gate.
macro_rules! both_links {
    ($name:ident, |$link:ident| $body:block) => {
        link_tests!("sandbox::differential_c", $name, [static_ => Static, static_pie => StaticPie], |$link| $body);
    };
}

/// Runs a program without arguments both ways; it must succeed natively and end with "done".
fn simple(name: &str, link: Link) -> common::Compared {
    let bin = build_c(name, link);
    let c = assert_same(&format!("{name}-{}", link.suffix()), &Cmd::new(&bin));
    c.last().native.assert_success().assert_last_line("done");
    c
}

fn line_with<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{out}"))
}

// a. File and directory I/O.
both_links!(file_io, |link| {
    let c = simple("file_io", link);
    let out = c.last().native.stdout_str();
    assert!(out.contains("read back: hello, sandbox"), "{out}");
    assert!(out.contains("first open gives descriptor 3: 1"), "{out}");
    assert!(out.contains("cwd: ./d/h (prefix ok 1)"), "{out}");
    // The tree the program left (compared with the sandbox's by assert_same).
    let dir = c.native_dir.path();
    assert_eq!(std::fs::read_link(dir.join("link")).unwrap().to_str(), Some("b.txt"));
    assert_eq!(std::fs::metadata(dir.join("kept/f1")).unwrap().len(), 1111);
});

// Descriptor numbers stay usable around posix_spawn (with file actions) and vfork + execve or
// _exit, in the parent and the children.
link_tests!("sandbox::differential_c", proc_spawn_fds, [static_ => Static, static_pie => StaticPie, dynamic => Dynamic], |link| {
    let c = simple("proc_spawn_fds", link);
    let out = c.last().native.stdout_str();
    for l in ["actions: applied", "child: descriptors ok", "parent: descriptors ok", "vfork _exit: exit 42"] {
        assert!(out.contains(l), "missing {l:?} in:\n{out}");
    }
});

// A vfork parent's wait for its child is killable: a fatal signal ends it (status 142).
both_links!(proc_vfork_killable, |link| {
    let bin = build_c("proc_vfork_killable", link);
    let c = assert_same(&format!("proc_vfork_killable-{}", link.suffix()), &Cmd::new(&bin));
    assert_eq!(
        c.last().native.status.signal(),
        Some(libc::SIGALRM),
        "{}",
        c.last().native.report()
    );
});

// clone's exit signal (CSIGNAL) other than SIGCHLD reaches the parent at the child's end.
both_links!(proc_exit_signal, |link| {
    let c = simple("proc_exit_signal", link);
    let out = c.last().native.stdout_str();
    assert!(out.contains("SIGUSR1 1 (pid matches 1, CLD_EXITED 1, status 7), SIGCHLD 0"), "{out}");
});

// signalfd: records of blocked signals read as Linux gives them (EAGAIN, poll/epoll readiness,
// mask changes, sigqueue values, a blocking read woken from another process, a forked child's
// own signals).
link_tests!("sandbox::differential_c", sig_signalfd, [static_ => Static, static_pie => StaticPie, dynamic => Dynamic], |link| {
    let c = simple("sig_signalfd", link);
    let out = c.last().native.stdout_str();
    for l in [
        "empty: -1 EAGAIN, readable 0",
        "read 256 bytes: signo 10 code 0 pid ok 1 uid ok 1; signo 12 code 0 pid ok 1 uid ok 1;",
        "sigqueue: 128 bytes, signo is RTMIN 1, code SI_QUEUE 1, int 1234",
        "epoll after kill: 1 data 7",
        "blocking read: 128 bytes, signo USR1 1, from child 1",
        "child: exit 9",
        "made and closed 40 in turn",
        "after a closed one's signal: alive, read ",
        "write: -1 EINVAL",
        "reopen for writing: -1 ENXIO",
        "made 1 with every other slot taken",
    ] {
        assert!(out.contains(l), "missing {l:?} in:\n{out}");
    }
    // As the host kernel reads a signalfd into vectors: all at once (read_iter) or one by one.
    assert!(
        out.contains("readv 256 bytes: signo 10 then 12") || out.contains("readv -1 bytes"),
        "{out}"
    );
});

// Credentials are each thread's: a raw setresuid in one thread changes its own only, and every
// call it makes afterwards (a burst of getuid, which could be served from another host thread;
// an open) is answered with them.
both_links!(proc_thread_creds, |link| {
    let c = simple("proc_thread_creds", link);
    let out = c.last().native.stdout_str();
    assert!(out.contains("thread getuid burst wrong: 0"), "{out}");
    if out.contains("root 1") {
        assert!(
            out.contains("thread setresuid: ok")
                && out.contains("thread opens root's file: EACCES")
                && out.contains("root's sysctl read after the drop: 0 of 200"),
            "{out}"
        );
    }
});

// A process that dropped its privileges still forks, vforks and starts threads (the KVM device
// may be root's only: a forked child builds its VM from the descriptor its parent had open).
both_links!(proc_drop_privs, |link| {
    let c = simple("proc_drop_privs", link);
    let out = c.last().native.stdout_str();
    for l in ["fork: exit 7", "vfork: exit 8", "thread: ok", "fork in fork: exit 9"] {
        assert!(out.contains(l), "missing {l:?} in:\n{out}");
    }
});

// fork, open (of /proc/self entries, which look at the process's threads), dup/close and new
// threads from four threads at once: the descriptor window's gate and the process's locks never
// deadlock.
both_links!(thr_fd_stress, |link| {
    let bin = build_c("thr_fd_stress", link);
    let c = assert_same(
        &format!("thr_fd_stress-{}", link.suffix()),
        &Cmd::new(&bin).timeout(Duration::from_secs(60)),
    );
    c.last().native.assert_success().assert_last_line("done");
    let out = c.last().native.stdout_str();
    assert!(out.contains("fork rounds ok: 60") && out.contains("threads rounds ok: 60"), "{out}");
});

// RLIMIT_AS and RLIMIT_DATA hold on the program's mappings as Linux applies them (mmap,
// MAP_FIXED over a mapping, mremap growth, brk; data is private writable memory), and a
// lowered hard limit stays lowered without CAP_SYS_RESOURCE.
link_tests!("sandbox::differential_c", mem_rlimits, [static_ => Static, static_pie => StaticPie, dynamic => Dynamic], |link| {
    let c = simple("mem_rlimits", link);
    let out = c.last().native.stdout_str();
    for l in [
        "AS mmap 48 more: ENOMEM",
        "AS MAP_FIXED over: ok",
        "AS mremap to 72: ENOMEM",
        "DATA private rw 24: ENOMEM",
        "DATA shared rw 24: ok",
        "DATA brk +16: ENOMEM",
        "DATA brk +4: ok",
    ] {
        assert!(out.contains(l), "missing {l:?} in:\n{out}");
    }
});

// fork works with a full descriptor table, and the child's table is as full.
both_links!(proc_fork_fullfd, |link| {
    let c = simple("proc_fork_fullfd", link);
    let out = c.last().native.stdout_str();
    assert!(out.contains("table full: EMFILE") && out.contains("child: exit 7"), "{out}");
});

// The limits the runtime depends on are the program's to set (RLIMIT_NOFILE lowered and
// enforced as Linux does; threads and fork with a full table; RLIMIT_SIGPENDING 0), and none
// stops the runtime (execve from two threads after them, at once).
link_tests!("sandbox::differential_c", rlimit_runtime, [static_ => Static, static_pie => StaticPie, dynamic => Dynamic], |link| {
    let bin = build_c("rlimit_runtime", link);
    let c = assert_same(&format!("rlimit_runtime-{}", link.suffix()), &Cmd::new(&bin).timeout(Duration::from_secs(8)));
    c.last().native.assert_success().assert_last_line("done");
    let out = c.last().native.stdout_str();
    for l in [
        "open at the limit: EMFILE, highest 47",
        "dup2 above it: EBADF",
        "F_DUPFD above it: EINVAL",
        "thread with a full table: ok",
        "fork with a full table: child exit 5",
        "exec from two threads: done",
    ] {
        assert!(out.contains(l), "missing {l:?} in:\n{out}");
    }
});

// A realloc'ed buffer grown to 16 MiB in ~200 KiB steps keeps every byte (glibc grows it with
// mremap, in place or moved).
link_tests!("sandbox::differential_c", mem_realloc, [static_ => Static, static_pie => StaticPie, dynamic => Dynamic], |link| {
    let c = simple("mem_realloc", link);
    let out = c.last().native.stdout_str();
    assert!(out.contains("every byte kept"), "{out}");
});

// A random sequence of mmap/munmap/mremap (in place, moved, fixed, DONTUNMAP, shared pages
// mapped twice)/mprotect/madvise/brk and stores, the contents of every mapping checked after
// every step through the program's own loads and through the kernel (tests/c/mem_ops.c). The
// seeds differ per link mode; each run prints one line per step, so a difference names the step.
fn mem_ops(link: Link, seeds: &[u32], steps: u32) {
    let bin = build_c("mem_ops", link);
    for &seed in seeds {
        let cmd = Cmd::new(&bin).arg(seed.to_string()).arg(steps.to_string());
        let name = format!("mem_ops-{}-{seed}", link.suffix());
        let c = assert_same(&name, &cmd.timeout(Duration::from_secs(240)));
        let n = &c.last().native;
        n.assert_success().assert_last_line("done");
        let out = n.stdout_str();
        // The sequence reaches the paths it is for (the native run proves the model).
        for what in [
            "mremap maymove: ok, moved",
            "mremap fixed: ok",
            "mremap dontunmap: ok",
            "mremap grow in place: ok (f",
        ] {
            assert!(out.contains(what), "seed {seed} never did {what:?}:\n{out}");
        }
    }
}

link_tests!("sandbox::differential_c", mem_ops, [static_ => Static, static_pie => StaticPie, dynamic => Dynamic], |link| {
    match link {
        Link::Static => mem_ops(link, &[1, 9], 2000),
        Link::StaticPie => mem_ops(link, &[5], 2000),
        Link::Dynamic => mem_ops(link, &[2], 2000),
    }
});

// b. Memory: mmap/munmap/mprotect/mremap/MAP_FIXED/file mappings/msync/madvise/exec pages.
both_links!(memory, |link| {
    let c = simple("memory", link);
    let out = c.last().native.stdout_str();
    for l in [
        "read after RO: 1",
        "mremap grow: preserved 1, new part zero 1",
        "file after msync: written through MAP_SHARED",
        "private write not in file: 1",
        "called generated code: 42",
    ] {
        assert!(out.contains(l), "missing {l:?} in:\n{out}");
    }
    // MAP_SHARED writes reached the file; MAP_PRIVATE ones did not.
    let shared = std::fs::read(c.native_dir.join("shared.bin")).unwrap();
    assert_eq!(&shared[10..36], b"written through MAP_SHARED");
    assert_eq!(shared[8191], b'!');
    let private = std::fs::read(c.native_dir.join("private.bin")).unwrap();
    assert_ne!(private[0], b'P');
});

// c. brk to 1 GiB and back; malloc of many sizes.
both_links!(brk_and_malloc, |link| {
    let c = simple("brk", link);
    let out = c.last().native.stdout_str();
    assert!(out.contains("grow to 1024 MiB: 1, contents kept: 1"), "{out}");
    assert!(out.contains("back at start: 1, regrown memory zero: 1"), "{out}");
    assert!(out.contains("intact 1"), "{out}");
});

// d. __thread variables in the main thread, %fs, arch_prctl.
both_links!(tls, |link| {
    let c = simple("tls", link);
    let out = c.last().native.stdout_str();
    assert!(out.starts_with("counter 42, text \"initial tls text\", ratio 1.50\n"), "{out}");
    assert!(out.contains("ARCH_GET_FS: 0, matches %fs:0: 1"), "{out}");
    assert!(out.contains("read through new fs: 1, self 1, restored: 0"), "{out}");
});

/// About 1.1 MiB of arguments and environment: 1000 arguments of varied length (some empty,
/// some with every non-NUL byte, one of 100 KiB) and 300 SBXT_* variables of about 1.5 KiB.
fn big_args_and_env() -> (Vec<Vec<u8>>, Vec<(String, String)>) {
    let mut args: Vec<Vec<u8>> = Vec::new();
    for i in 0..1000usize {
        let len = match i {
            7 | 500 | 999 => 0,
            _ => (i * 37) % 1000 + 1,
        };
        let mut a: Vec<u8> = (0..len).map(|j| b'a' + ((i + j) % 26) as u8).collect();
        if i % 100 == 50 {
            a = (1u8..=255).collect();
        }
        args.push(a);
    }
    args.push(vec![b'L'; 100 * 1024]);
    let mut env = Vec::new();
    for i in 0..300usize {
        let v: String =
            (0..1500 + i % 17).map(|j| (b'A' + ((i * 7 + j) % 26) as u8) as char).collect();
        env.push((format!("SBXT_VAR_{i:04}"), v));
    }
    env.push(("SBXT_PROBE".into(), "probe value with spaces = and ;".into()));
    (args, env)
}

// e. A megabyte of argv and envp.
both_links!(args_and_env, |link| {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let (args, env) = big_args_and_env();
    let mut cmd = Cmd::new(build_c("args_env", link));
    for a in &args {
        cmd = cmd.arg(OsStr::from_bytes(a));
    }
    let total_args: usize = args.iter().map(Vec::len).sum();
    let total_env: usize = env.iter().map(|(k, v)| k.len() + 1 + v.len()).sum();
    assert!(total_args + total_env > 1 << 20, "the test should pass over 1 MiB");
    for (k, v) in &env {
        cmd = cmd.env(k, v);
    }
    let c = assert_same(&format!("args_env-{}", link.suffix()), &cmd);
    let n = &c.last().native;
    n.assert_success().assert_last_line("done");
    let out = n.stdout_str();
    assert_eq!(line_with(&out, "argc: "), format!("argc: {}", args.len() + 1));
    assert!(
        line_with(&out, "argv: ")
            .starts_with(&format!("argv: total {total_args} bytes, longest 102400, empty 3,"))
    );
    assert!(
        line_with(&out, "env SBXT_*: ")
            .starts_with(&format!("env SBXT_*: {} vars, total {total_env} bytes", env.len()))
    );
    assert!(out.contains("getenv(SBXT_PROBE): probe value with spaces = and ;"));
    assert!(out.contains("getenv(SBXT_UNSET_NAME): (unset)"));
});

// e'. The same through --env-clear and --env options: only the given variables arrive.
both_links!(env_clear_and_env_options, |link| {
    let cmd = Cmd::new(build_c("args_env", link))
        .arg("x")
        .env_clear()
        .env("SBXT_A", "1")
        .env("SBXT_PROBE", "from --env")
        .env("OTHER", "ignored by the program");
    let c = assert_same(&format!("env_clear-{}", link.suffix()), &cmd);
    let out = c.last().native.stdout_str();
    assert!(out.contains("env SBXT_*: 2 vars, total 29 bytes"), "{out}");
    assert!(out.contains("getenv(SBXT_PROBE): from --env"), "{out}");
});

/// 1 MiB of stdin.
fn stdin_bytes() -> Vec<u8> {
    common::pseudo_random(1 << 20, 0x5eed)
}

// f. stdin from a pipe.
both_links!(stdin_pipe, |link| {
    let cmd = Cmd::new(build_c("stdin_sum", link)).stdin(stdin_bytes());
    let c = assert_same(&format!("stdin_sum-{}", link.suffix()), &cmd);
    let out = c.last().native.stdout_str();
    c.last().native.assert_success();
    assert!(out.contains("stdin is a fifo: 1"), "{out}");
    assert!(out.contains("stdin: 1048576 bytes, checksum "), "{out}");
    assert!(out.contains("read again at EOF: 0"), "{out}");
});

// f'. stdin is /dev/null: immediate EOF.
both_links!(stdin_null, |link| {
    let c = assert_same(
        &format!("stdin_null-{}", link.suffix()),
        &Cmd::new(build_c("stdin_sum", link)),
    );
    let out = c.last().native.stdout_str();
    assert!(out.contains("stdin: 0 bytes, checksum cbf29ce484222325"), "{out}");
});

// g. Exit statuses 0..=255, through exit(), _exit(), return from main and the raw exit call.
both_links!(exit_statuses, |link| {
    let bin = build_c("exit_with", link);
    let modes = ["exit", "_exit", "return", "raw"];
    let mut mismatches = Vec::new();
    for n in 0..=255u32 {
        let mode = modes[n as usize % modes.len()];
        let cmd = Cmd::new(&bin).arg(n.to_string()).arg(mode);
        let (native, _nd) = common::run_native(&cmd);
        assert_eq!(
            native.code(),
            Some(n as i32),
            "native exit_with {n} {mode}\n{}",
            native.report()
        );
        assert_eq!(native.stdout_str(), format!("exiting with {n} via {mode}\n"));
        let (sandboxed, _sd) = common::run_sandboxed(&cmd);
        if sandboxed.code() != Some(n as i32) || sandboxed.stdout != native.stdout {
            mismatches.push(format!(
                "exit_with {n} {mode}: sandboxed {} stdout {:?}",
                sandboxed.status_text(),
                sandboxed.stdout_str()
            ));
        }
        assert!(!common::contains(&sandboxed.stderr, b"panicked"), "{}", sandboxed.report());
    }
    assert!(
        mismatches.is_empty(),
        "{} of 256 exit statuses differ:\n{}",
        mismatches.len(),
        mismatches.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
});

// System information that is equal natively and sandboxed (no raw pids or times).
both_links!(sysinfo, |link| {
    let now = common::now_secs();
    let cmd = Cmd::new(build_c("sysinfo", link)).arg(now.to_string());
    let c = assert_same(&format!("sysinfo-{}", link.suffix()), &cmd);
    let n = &c.last().native;
    n.assert_success().assert_last_line("done");
    let out = n.stdout_str();
    for l in [
        "sysname: Linux",
        "machine: x86_64",
        "getpid() > 0: 1",
        "time() within a minute of the test's clock: 1",
        "monotonic clock advanced at least 2 ms over nanosleep: 1",
        "AT_PAGESZ: 4096",
        "getrandom: 64",
    ] {
        assert!(out.contains(l), "missing {l:?} in:\n{out}");
    }
    let base = format!("AT_EXECFN basename: sysinfo-{}", link.suffix());
    assert!(out.contains(&base), "missing {base:?} in:\n{out}");
});

// PROGRAM is looked up through PATH like execvp.
both_links!(found_through_path, |link| {
    let bin = build_c("exit_with", link);
    let dir = bin.parent().unwrap().to_owned();
    let name = bin.file_name().unwrap().to_owned();
    let cmd = Cmd::new(name).arg("42").env("PATH", &dir);
    let c = assert_same(&format!("path-{}", link.suffix()), &cmd);
    assert_eq!(c.last().native.code(), Some(42));
});

// The demo `cargo xtask run` shows: builds, runs, prints the same labelled lines both ways.
#[test]
fn demo_runs() {
    gated!(demo_runs);
    let bin = common::build_demo();
    let cmd = Cmd::new(&bin).arg("hello").arg("world").timeout(Duration::from_secs(30));
    let (native, _nd) = common::run_native(&cmd);
    let (sandboxed, _sd) = common::run_sandboxed(&cmd);
    native.assert_success();
    sandboxed.assert_success();
    let labels = |o: &common::Output| -> Vec<String> {
        o.stdout_str()
            .lines()
            .map(|l| l.split(':').next().unwrap_or_default().trim().to_owned())
            .collect()
    };
    assert_eq!(
        labels(&native),
        labels(&sandboxed),
        "\n{}\n{}",
        native.report(),
        sandboxed.report()
    );
    let last = native.stdout_str().lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("done: "), "{}", native.report());
    let argv2 =
        native.stdout_str().lines().any(|l| l.contains("argv[2]:") && l.ends_with(" world"));
    assert!(argv2, "{}", native.report());
}

// The vDSO (issue 16.3): clock_gettime, gettimeofday and time through libc give the host's
// time (each reading lies between two of the host's own, by system call), the monotonic clock
// never goes backwards (threads, fork, execve), and the calls do not reach the supervisor.
link_tests!("sandbox::differential_c", vdso_clock, [static_ => Static, static_pie => StaticPie, dynamic => Dynamic], |link| {
    let bin = build_c("vdso_clock", link);
    let name = format!("vdso_clock-{}", link.suffix());
    let c = assert_same(&name, &Cmd::new(&bin).timeout(Duration::from_secs(120)));
    let n = &c.last().native;
    n.assert_success().assert_last_line("done");
    assert!(n.stdout_str().starts_with("vdso: 1\n"), "the host gives no vDSO:\n{}", n.report());
    if common::selfcheck() {
        return;
    }
    // 10,000 libc clock_gettime calls: none is traced, so none made an exit.
    let dir = common::WorkDir::new(&format!("{name}-burst"));
    // `sandbox run OPTS -- vdso_clock burst N` in `dir`.
    let burst = |opts: &[&str], n: &str| {
        std::process::Command::new(common::sandbox_bin())
            .current_dir(dir.path())
            .arg("run")
            .args(opts)
            .arg("--")
            .arg(&bin)
            .args(["burst", n])
            .output()
            .unwrap()
    };
    let out = burst(&["--policy", "null", "--trace=t.txt"], "10000");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "vdso: 1\n");
    let trace = std::fs::read_to_string(dir.join("t.txt")).unwrap();
    let calls = trace.lines().filter(|l| l.starts_with("clock_gettime(")).count();
    assert!(calls < 10, "{calls} clock_gettime calls reached the supervisor:\n{trace}");
    // --no-vdso: no AT_SYSINFO_EHDR, every call is a system call.
    let out = burst(&["--policy", "null", "--no-vdso", "--trace=t2.txt"], "1000");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "vdso: 0\n");
    let trace = std::fs::read_to_string(dir.join("t2.txt")).unwrap();
    let calls = trace.lines().filter(|l| l.starts_with("clock_gettime(")).count();
    assert!(calls >= 1000, "{calls} clock_gettime calls traced under --no-vdso");
    // A policy with a rule about a clock call gets no vDSO: the rule applies.
    std::fs::write(dir.join("p.toml"), "[syscalls]\ndeny = [\"clock_gettime\"]\nerrno = \"EPERM\"\n").unwrap();
    let out = burst(&["--policy", "./p.toml"], "10");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(err.contains("CHECK(clock_gettime(c, &t) == 0) failed (errno 1:"), "{err}");
    // Learning a policy sees the clock calls too.
    let out = burst(&["--learn", "learned.toml"], "10");
    assert!(out.status.success(), "{out:?}");
    let learned = std::fs::read_to_string(dir.join("learned.toml")).unwrap();
    assert!(learned.contains("\"clock_gettime\""), "{learned}");
});
