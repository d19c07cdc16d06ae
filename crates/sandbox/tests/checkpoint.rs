//! Checkpoint and restore, zdtm style (tests/c/ckpt.c): each scenario sets up its state under
//! `sandbox run --checkpoint-on SIGUSR2 -o IMAGE`, prints "ready" and waits for a file "go";
//! the test sends SIGUSR2 (the sandbox writes the image and exits 0), creates "go", runs
//! `sandbox restore IMAGE`, and the restored program checks its state and prints "pass" (or
//! "FAIL: ..."). Then: refusals (a socket, a pipe, a child process: the program carries on),
//! damaged images (truncated, a bit flipped in each section, another version or
//! architecture: refused with a message, never a crash), and hosts that cannot take an image
//! (an XSAVE component or an address width they lack).
#[macro_use]
mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{Link, WorkDir, build_c, sandbox_bin};

const LIMIT: Duration = Duration::from_secs(60);

/// Waits for `child` at most `limit`; kills it (by its pid) and panics past that.
fn wait_for(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        if Instant::now() > deadline {
            // SAFETY: signals our own child by its pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
            panic!("{what} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The sandbox with no descriptors but stdio: whatever the test runner inherited (a pipe of
/// the job that started it) would make every checkpoint refuse it.
fn sandbox_cmd() -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(sandbox_bin());
    // SAFETY: close_range is async-signal-safe and touches no memory of the child.
    unsafe {
        c.pre_exec(|| {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    c
}

/// A program checkpointed while it waits for "go".
struct Taken {
    dir: WorkDir,
    image: PathBuf,
}

/// Runs scenario `scenario` of `ckpt` under `sandbox run --policy null --checkpoint-on
/// SIGUSR2`, waits for "ready", sends SIGUSR2 and waits for the sandbox to exit 0. Returns
/// the working directory (with the image `img`), or the run's stderr when the checkpoint was
/// refused (`expect_refusal`).
fn run_and_signal(bin: &Path, scenario: &str, dir: &WorkDir) -> (ExitStatus, String, String) {
    run_and_signal_to(bin, scenario, dir, Path::new("img"))
}

/// [`run_and_signal`] with the image at `image`.
fn run_and_signal_to(
    bin: &Path,
    scenario: &str,
    dir: &WorkDir,
    image: &Path,
) -> (ExitStatus, String, String) {
    let err_path = dir.join("run.stderr");
    let mut child = sandbox_cmd()
        .args(["run", "--policy", "null", "--checkpoint-on", "SIGUSR2", "-o"])
        .arg(image)
        .arg("--")
        .arg(bin)
        .arg(scenario)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn the sandbox");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut out = String::new();
    let deadline = Instant::now() + LIMIT;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(l) => {
                out.push_str(&l);
                out.push('\n');
                if l == "ready" {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
            Err(e) => {
                // SAFETY: signals our own child by its pid.
                unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
                let _ = child.wait();
                let err = std::fs::read_to_string(&err_path).unwrap_or_default();
                panic!("{scenario}: no \"ready\" ({e:?}); stdout:\n{out}\nstderr:\n{err}");
            }
        }
    }
    // The program is waiting (in nanosleep/access, or computing): interrupt it there.
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: signals our own child by its pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGUSR2) }, 0);
    let refused = |e: &str| e.contains("checkpoint refused");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        if refused(&err) {
            // The program carries on: let it finish.
            std::fs::write(dir.join("go"), b"").unwrap();
            break wait_for(&mut child, LIMIT, "the refused run");
        }
        if Instant::now() > deadline + LIMIT {
            // SAFETY: signals our own child by its pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            panic!("{scenario}: the sandbox did not end after SIGUSR2; stderr:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(500)) {
        out.push_str(&l);
        out.push('\n');
    }
    (status, out, std::fs::read_to_string(&err_path).unwrap_or_default())
}

/// Checkpoints `scenario`; the run must end with status 0 and the message, and leave an
/// image.
fn take(bin: &Path, scenario: &str) -> Taken {
    let dir = WorkDir::new(&format!("ckpt-{scenario}"));
    let (status, out, err) = run_and_signal(bin, scenario, &dir);
    assert!(
        status.success() && err.contains("sandbox: checkpoint written to"),
        "{scenario}: the checkpointed run ended with {status:?}\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(!out.contains("pass"), "{scenario}: the original run went on:\n{out}");
    let image = dir.join("img");
    assert!(image.exists(), "{scenario}: no image");
    Taken { dir, image }
}

/// `sandbox restore [extra] IMAGE` in `dir` (after creating "go"): status, stdout, stderr.
fn restore_in(dir: &Path, image: &Path, extra: &[&str]) -> (ExitStatus, String, String) {
    std::fs::write(dir.join("go"), b"").unwrap();
    let mut child = sandbox_cmd()
        .arg("restore")
        .args(["--policy", "null"])
        .args(extra)
        .arg(image)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sandbox restore");
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut so, &mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut se, &mut s);
        s
    });
    let status = wait_for(&mut child, LIMIT, "sandbox restore");
    (status, t1.join().unwrap(), t2.join().unwrap())
}

/// Restores `t` and requires "pass".
fn restore_passes(t: &Taken, scenario: &str) -> String {
    let (status, out, err) = restore_in(t.dir.path(), &t.image, &[]);
    assert!(
        status.success() && out.lines().any(|l| l == "pass"),
        "{scenario}: the restored program did not pass ({status:?})\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}

/// Checkpoint, restore, "pass".
fn round_trip(link: Link, scenario: &str) -> (Taken, String) {
    let bin = build_c("ckpt", link);
    let t = take(&bin, scenario);
    let out = restore_passes(&t, scenario);
    (t, out)
}

link_tests!("sandbox::checkpoint", counter, [static_ => Static, static_pie => StaticPie, dynamic => Dynamic], |link| {
    let (t, out) = round_trip(link, "counter");
    // The counter continued from where it was, inside its inner loop or between loops.
    assert!(out.contains("counter "), "{out}");
    // Restore twice from one image: the image is not consumed.
    restore_passes(&t, "counter (second restore)");
});

// The vDSO (issue 16.3): the restored program's clock calls still work, through its vDSO,
// and give the restoring host's time.
link_tests!("sandbox::checkpoint", vdso, [static_ => Static, dynamic => Dynamic], |link| {
    round_trip(link, "vdso");
});

link_tests!("sandbox::checkpoint", tls, [static_ => Static, dynamic => Dynamic], |link| {
    round_trip(link, "tls");
});

link_tests!("sandbox::checkpoint", fpu_registers, [static_ => Static, static_pie => StaticPie], |link| {
    let (_, out) = round_trip(link, "fpu");
    assert!(out.contains("registers: "), "{out}");
});

link_tests!("sandbox::checkpoint", open_files, [static_ => Static, dynamic => Dynamic], |link| {
    let (t, _) = round_trip(link, "files");
    assert_eq!(std::fs::read_to_string(t.dir.join("data.txt")).unwrap(), "before\nafter\n");
    // The first restore appended to data.txt: a second one is refused, naming the file...
    let (status, out, err) = restore_in(t.dir.path(), &t.image, &[]);
    assert_eq!(status.code(), Some(125), "{out}\n{err}");
    assert!(err.contains("data.txt changed since the checkpoint"), "{err}");
    assert!(err.contains("--allow-changed-files"), "{err}");
    assert!(!out.contains("pass"), "{out}");
    // ...unless changed files are allowed: the program writes "after\n" at its offset 7
    // again, over the first restore's.
    let (status, out, err) = restore_in(t.dir.path(), &t.image, &["--allow-changed-files"]);
    assert!(status.success() && out.contains("pass"), "{out}\n{err}");
    assert_eq!(std::fs::read_to_string(t.dir.join("data.txt")).unwrap(), "before\nafter\n");
});

link_tests!("sandbox::checkpoint", private_file_mapping, [static_ => Static], |link| {
    round_trip(link, "filemap");
});

link_tests!("sandbox::checkpoint", signal_state, [static_ => Static, dynamic => Dynamic], |link| {
    round_trip(link, "signals");
});

link_tests!("sandbox::checkpoint", pipe_inside_the_program, [static_ => Static, dynamic => Dynamic], |link| {
    let (t, _) = round_trip(link, "pipein");
    let info = inspect(&t.image);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("read end of pipe") && text.contains("(5 bytes waiting)"), "{text}");
    assert!(text.contains("write end of pipe"), "{text}");
    assert!(text.contains("shared with 3 (dup)"), "{text}");
});

link_tests!("sandbox::checkpoint", itimer_armed, [static_ => Static], |link| {
    let (t, _) = round_trip(link, "itimer");
    let info = inspect(&t.image);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("ITIMER_REAL: ") && text.contains("interval 1.000000 s"), "{text}");
});

link_tests!("sandbox::checkpoint", brk_100_mib, [static_ => Static], |link| {
    let (t, _) = round_trip(link, "brk");
    // 1600 words, one per 64 KiB: their pages, not 100 MiB.
    let size = std::fs::metadata(&t.image).unwrap().len();
    assert!(size < 16 << 20, "image of {size} bytes");
});

link_tests!("sandbox::checkpoint", sparse_1_gib, [static_ => Static], |link| {
    let (t, _) = round_trip(link, "sparse");
    let size = std::fs::metadata(&t.image).unwrap().len();
    assert!(size < 4 << 20, "image of {size} bytes for 16 touched pages");
});

link_tests!("sandbox::checkpoint", four_threads, [static_ => Static, dynamic => Dynamic], |link| {
    let (t, out) = round_trip(link, "threads");
    assert!(out.contains("threads: 4 joined"), "{out}");
    let info = inspect(&t.image);
    assert!(info.status.success(), "{}", String::from_utf8_lossy(&info.stderr));
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("threads: 5"), "{text}");
});

/// python3 (dynamically linked, 30-odd mappings) in the middle of a loop.
#[test]
fn python3_in_a_loop() {
    gated!(python3_in_a_loop);
    let py = Path::new("/usr/bin/python3");
    assert!(
        py.exists(),
        "python3 is missing: `cargo xtask test` installs it (apt-get install python3)"
    );
    let dir = WorkDir::new("ckpt-python3");
    std::fs::write(
        dir.join("loop.py"),
        "import os, time\n\
         n = 0\n\
         print('ready', flush=True)\n\
         while not os.path.exists('go'):\n    n += 1\n    if n % 100000 == 0: time.sleep(0.001)\n\
         d = {i: i * i for i in range(1000)}\n\
         print('pass' if n > 0 and sum(d.values()) == 332833500 else 'FAIL', flush=True)\n",
    )
    .unwrap();
    let (status, out, err) = run_and_signal(py, "loop.py", &dir);
    assert!(status.success() && err.contains("checkpoint written"), "{status:?}\n{out}\n{err}");
    let (status, out, err) = restore_in(dir.path(), &dir.join("img"), &[]);
    assert!(status.success() && out.contains("pass"), "{status:?}\n{out}\n{err}");
}

/// `sandbox image inspect IMAGE`.
fn inspect(image: &Path) -> std::process::Output {
    Command::new(sandbox_bin()).args(["image", "inspect"]).arg(image).output().unwrap()
}

link_tests!("sandbox::checkpoint", inspect_shows_the_image, [static_ => Static], |link| {
    let bin = build_c("ckpt", link);
    let t = take(&bin, "files");
    let info = inspect(&t.image);
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(info.status.success(), "{text}{}", String::from_utf8_lossy(&info.stderr));
    for want in [
        "format version 1",
        "checksums verified",
        "policy: null",
        "threads: 1",
        "[stack]",
        "[heap]",
        "data.txt (flags",
        "offset 7",
        "device /dev/null",
        "42: file",
        "shared with 3 (dup)",
        "0: stdio",
        "guest-physical width",
        "XCR0",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
    assert!(text.contains(&format!("executable: {}", bin.display())), "{text}");
});

/// Checkpoint refusals: the message names the descriptor and its kind (or the children), and
/// the program carries on to its end.
fn refused(scenario: &str, want: &[&str]) {
    let bin = build_c("ckpt", Link::Static);
    let dir = WorkDir::new(&format!("ckpt-refuse-{scenario}"));
    let (status, out, err) = run_and_signal(&bin, scenario, &dir);
    assert!(err.contains("sandbox: checkpoint refused: "), "{scenario}: {err}");
    for w in want {
        assert!(err.contains(w), "{scenario}: no {w:?} in:\n{err}");
    }
    assert!(err.contains("the program continues"), "{err}");
    assert!(status.success(), "{scenario}: {status:?}\n{out}\n{err}");
    assert!(out.contains("carried on") && out.contains("pass"), "{out}");
    assert!(!dir.join("img").exists(), "an image was left behind");
}

// An image that cannot be written (no such directory): the program carries on, no temporary
// file is left.
link_tests!("sandbox::checkpoint", unwritable_image_path, [static_ => Static], |link| {
    let bin = build_c("ckpt", link);
    let dir = WorkDir::new("ckpt-unwritable");
    let target = dir.join("missing-dir").join("img");
    let (status, out, err) = run_and_signal_to(&bin, "counter", &dir, &target);
    assert!(err.contains("cannot write the image") && err.contains("missing-dir/img"), "{err}");
    assert!(err.contains("the program continues"), "{err}");
    assert!(status.success() && out.contains("pass"), "{status:?}\n{out}\n{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.iter().all(|n| !n.to_string_lossy().ends_with(".tmp")), "{left:?}");
});

link_tests!("sandbox::checkpoint", refuses_a_socket, [static_ => Static], |_link| {
    refused("socket", &["descriptor 3 is a socket"]);
});

link_tests!("sandbox::checkpoint", refuses_a_pipe, [static_ => Static], |_link| {
    refused("pipe", &["descriptor 3 is a pipe whose other end is outside the program (pipe:["]);
});

link_tests!("sandbox::checkpoint", refuses_child_processes, [static_ => Static], |_link| {
    refused("child", &["the program has child processes ("]);
});

/// `sandbox run --policy null -- bin scenario` in `dir`, once it printed "ready".
fn running(bin: &Path, scenario: &str, dir: &WorkDir) -> Child {
    let mut child = sandbox_cmd()
        .args(["run", "--policy", "null", "--"])
        .arg(bin)
        .arg(scenario)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("run.stdout")).unwrap())
        .stderr(std::fs::File::create(dir.join("run.stderr")).unwrap())
        .spawn()
        .expect("spawn the sandbox");
    let deadline = Instant::now() + LIMIT;
    while !std::fs::read_to_string(dir.join("run.stdout")).unwrap_or_default().contains("ready") {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            // SAFETY: signals our own child by its pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            panic!("{scenario}: no \"ready\"");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    child
}

/// `sandbox checkpoint PID -o IMAGE [extra]`.
fn checkpoint_pid(pid: u32, image: &Path, extra: &[&str]) -> std::process::Output {
    sandbox_cmd()
        .args(["checkpoint", &pid.to_string(), "-o"])
        .arg(image)
        .args(extra)
        .output()
        .unwrap()
}

link_tests!("sandbox::checkpoint", checkpoint_by_pid, [static_ => Static, dynamic => Dynamic], |link| {
    let bin = build_c("ckpt", link);
    let dir = WorkDir::new("ckpt-by-pid");
    let mut child = running(&bin, "threads", &dir);
    // --leave-running: the image is written, the program goes on...
    let a = checkpoint_pid(child.id(), &dir.join("a.img"), &["--leave-running"]);
    let err = String::from_utf8_lossy(&a.stderr);
    assert!(a.status.success() && err.contains("the program continues"), "{a:?}");
    assert!(child.try_wait().unwrap().is_none(), "the sandbox ended");
    std::thread::sleep(Duration::from_millis(300));
    // ...and can be checkpointed again, which ends it.
    let b = checkpoint_pid(child.id(), &dir.join("b.img"), &[]);
    assert!(b.status.success(), "{b:?}");
    assert!(String::from_utf8_lossy(&b.stderr).contains("the program is stopped"), "{b:?}");
    let status = wait_for(&mut child, LIMIT, "the checkpointed sandbox");
    assert!(status.success(), "{status:?}");
    for img in ["a.img", "b.img"] {
        let (status, out, err) = restore_in(dir.path(), &dir.join(img), &[]);
        assert!(status.success() && out.contains("pass"), "{img}: {status:?}\n{out}\n{err}");
        assert!(out.contains("threads: 4 joined"), "{img}: {out}");
    }
});

link_tests!("sandbox::checkpoint", checkpoint_by_pid_refused, [static_ => Static], |link| {
    let bin = build_c("ckpt", link);
    let dir = WorkDir::new("ckpt-by-pid-refused");
    let mut child = running(&bin, "pipe", &dir);
    let r = checkpoint_pid(child.id(), &dir.join("a.img"), &[]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(err.contains("descriptor 3 is a pipe whose other end is outside"), "{err}");
    assert!(!dir.join("a.img").exists());
    std::fs::write(dir.join("go"), b"").unwrap();
    let status = wait_for(&mut child, LIMIT, "the refused sandbox");
    assert!(status.success(), "{status:?}");
    let out = std::fs::read_to_string(dir.join("run.stdout")).unwrap();
    assert!(out.contains("carried on") && out.contains("pass"), "{out}");
    // No sandbox there.
    let r = checkpoint_pid(child.id(), &dir.join("a.img"), &[]);
    assert_eq!(r.status.code(), Some(125), "{r:?}");
    assert!(String::from_utf8_lossy(&r.stderr).contains("cannot reach sandbox"), "{r:?}");
});

link_tests!("sandbox::checkpoint", the_program_cannot_checkpoint_itself, [static_ => Static], |link| {
    let bin = build_c("ckpt", link);
    let dir = WorkDir::new("ckpt-self");
    let out = sandbox_cmd()
        .args(["run", "--policy", "null", "--"])
        .arg(&bin)
        .arg("selfck")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("connect: Connection refused"), "{text}");
});

// Nor can a process it forked that its parent left (an orphan is no child of the sandbox, but
// still one of its processes): the image path would be the program's choice. Neither reaches
// any sandbox's channel (an abstract name below dune-sandbox/) at all.
link_tests!("sandbox::checkpoint", an_orphaned_child_cannot_checkpoint_the_program, [static_ => Static], |link| {
    let bin = build_c("ckpt", link);
    let dir = WorkDir::new("ckpt-orphan");
    let out = sandbox_cmd()
        .args(["run", "--policy", "null", "--"])
        .arg(&bin)
        .arg("orphanck")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    // The connect is refused by the supervisor (no program may reach a sandbox's channel);
    // behind it the channel refuses every process of the sandbox too.
    assert!(text.contains("answer: connect: Connection refused"), "{text}");
    assert!(!dir.join("orphan.img").exists());
});

// A restore reopens the image's files by path: under filesystem rules what it opens is decided
// as the program's own open would be. A file of the image replaced by a symlink to a file the
// rules keep read-only (its size and time made to match) is refused, not written (it was
// written before: red-team finding).
link_tests!("sandbox::checkpoint", restore_reopens_only_what_the_rules_allow, [static_ => Static], |link| {
    let bin = build_c("ckpt", link);
    let dir = WorkDir::new("ckpt-restore-rules");
    let outside = WorkDir::new("ckpt-restore-rules-outside");
    let (status, _out, err) = run_and_signal(&bin, "files", &dir);
    assert!(status.success() && dir.join("img").exists(), "{status:?}\n{err}");
    let data = dir.join("data.txt");
    let victim = outside.join("victim");
    let before = std::fs::metadata(&data).unwrap();
    std::fs::write(&victim, b"VICTIM\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_modified(before.modified().unwrap())
        .unwrap();
    std::fs::remove_file(&data).unwrap();
    std::os::unix::fs::symlink(&victim, &data).unwrap();
    let rw = dir.path().to_string_lossy().into_owned();
    let (status, out, err) =
        restore_in(dir.path(), &dir.join("img"), &["--ro", "/", "--rw", &rw, "--exec", "/"]);
    assert!(!status.success(), "the restore went on: {out}\n{err}");
    assert!(err.contains("not allowed by the policy's filesystem rules"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"VICTIM\n");
});

// ---------------------------------------------------------------------------------------------
// Damaged images and hosts that cannot take them
// ---------------------------------------------------------------------------------------------

/// `(kind, crc, offset, len)` of each section of an image's header.
fn sections(b: &[u8]) -> Vec<(u32, u32, u64, u64)> {
    let n = u32::from_le_bytes(b[16..20].try_into().unwrap()) as usize;
    (0..n)
        .map(|i| {
            let e = 24 + 32 * i;
            let q = |a: usize| u64::from_le_bytes(b[a..a + 8].try_into().unwrap());
            (
                u32::from_le_bytes(b[e..e + 4].try_into().unwrap()),
                u32::from_le_bytes(b[e + 4..e + 8].try_into().unwrap()),
                q(e + 8),
                q(e + 16),
            )
        })
        .collect()
}

/// Restoring (and inspecting) `bytes` as an image fails cleanly: status 125 (1 for
/// inspect), one message containing `want`, no crash report.
fn rejected(t: &Taken, name: &str, bytes: &[u8], want: &str) {
    refused_here(t, name, bytes, want);
    let info = inspect(&t.dir.join(name));
    assert_eq!(info.status.code(), Some(1), "{name}: inspect {:?}", info.status);
    assert!(String::from_utf8_lossy(&info.stderr).contains(want), "{name}");
}

/// Restoring `bytes` fails cleanly (status 125, a message containing `want`, no crash
/// report); the image itself may be sound (`image inspect` reads it).
fn refused_here(t: &Taken, name: &str, bytes: &[u8], want: &str) {
    let p = t.dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    let (status, out, err) = restore_in(t.dir.path(), &p, &[]);
    assert_eq!(status.code(), Some(125), "{name}: {status:?}\n{out}\n{err}");
    assert!(err.contains(want), "{name}: no {want:?} in:\n{err}");
    assert!(!err.contains("internal error") && !err.contains("panicked"), "{name}: {err}");
    assert!(!out.contains("pass"), "{name}: {out}");
}

/// Rewrites the metadata of `bytes` with `edit`, with correct checksums.
fn edit_meta(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let s = sections(bytes);
    let (_, _, off, len) = *s.iter().find(|s| s.0 == 2).expect("a metadata section");
    let (off, len) = (off as usize, len as usize);
    assert_eq!(off + len, bytes.len(), "metadata is the last section");
    let mut meta: serde_json::Value = serde_json::from_slice(&bytes[off..off + len]).unwrap();
    edit(&mut meta);
    let json = serde_json::to_vec(&meta).unwrap();
    let mut out = bytes[..off].to_vec();
    out.extend_from_slice(&json);
    let i = s.iter().position(|s| s.0 == 2).unwrap();
    let e = 24 + 32 * i;
    out[e + 4..e + 8].copy_from_slice(&crc32fast::hash(&json).to_le_bytes());
    out[e + 16..e + 24].copy_from_slice(&(json.len() as u64).to_le_bytes());
    let crc = crc32fast::hash(&out[..4092]);
    out[4092..4096].copy_from_slice(&crc.to_le_bytes());
    out
}

link_tests!("sandbox::checkpoint", damaged_images_are_refused, [static_ => Static], |link| {
    let bin = build_c("ckpt", link);
    let t = take(&bin, "counter");
    let good = std::fs::read(&t.image).unwrap();
    let s = sections(&good);
    assert_eq!(s.len(), 2, "{s:?}");
    // Truncated: inside the header, inside the pages, inside the metadata, one byte short.
    rejected(&t, "short-header", &good[..100], "is truncated: its header");
    rejected(&t, "short-pages", &good[..4096 + 4096 + 100], "is truncated");
    rejected(&t, "short-meta", &good[..good.len() - 10], "is truncated: its metadata");
    rejected(&t, "empty", &[], "is not a checkpoint image");
    rejected(&t, "not-an-image", b"#!/bin/sh\necho hello\n", "is not a checkpoint image");
    // A bit flipped in each section.
    let flip = |at: usize| {
        let mut b = good.clone();
        b[at] ^= 0x10;
        b
    };
    rejected(&t, "flip-header", &flip(40), "the header fails its checksum");
    for (kind, _, off, len) in &s {
        let (name, what) = if *kind == 1 {
            ("flip-pages", "the page data fails its checksum")
        } else {
            ("flip-meta", "the metadata fails its checksum")
        };
        assert!(*len > 0, "{name}: empty section");
        rejected(&t, name, &flip((*off + len / 2) as usize), what);
    }
    // Another format version (whatever its header checksum says).
    let mut v2 = good.clone();
    v2[8..12].copy_from_slice(&2u32.to_le_bytes());
    rejected(&t, "version-2", &v2, "is in image format version 2; this sandbox reads version 1");
    // Another architecture, with a correct header checksum.
    let mut arm = good.clone();
    arm[12..16].copy_from_slice(&183u32.to_le_bytes()); // EM_AARCH64
    let crc = crc32fast::hash(&arm[..4092]);
    arm[4092..4096].copy_from_slice(&crc.to_le_bytes());
    rejected(&t, "aarch64", &arm, "architecture 183");
    // Consistent checksums but nonsense: a page run outside its mapping.
    let bad = edit_meta(&good, |m| {
        let vmas = m["vmas"].as_array_mut().unwrap();
        let v = vmas.iter_mut().find(|v| !v["runs"].as_array().unwrap().is_empty()).unwrap();
        v["runs"][0]["addr"] = serde_json::json!(v["end"].as_u64().unwrap() + 4096);
    });
    rejected(&t, "run-outside", &bad, "is malformed: page run");
    let bad = edit_meta(&good, |m| m["threads"] = serde_json::json!([]));
    rejected(&t, "no-threads", &bad, "is malformed: no threads");
    // A crafted image cannot hand the program what it may not open: KVM, /proc (the
    // supervisor's), a thread context outside user mode.
    for (name, path) in [("kvm", "/dev/kvm"), ("proc", "/proc/self/status")] {
        let bad = edit_meta(&good, |m| {
            let fd = serde_json::json!({"fd": 9, "cloexec": false,
                "kind": {"Device": {"path": path, "flags": 2}}});
            m["fds"].as_array_mut().unwrap().push(fd);
        });
        let want = if name == "kvm" { "one of the runtime's own files" } else { "a /proc file" };
        refused_here(&t, name, &bad, want);
    }
    let bad = edit_meta(&good, |m| {
        m["threads"][0]["regs"][16] = serde_json::json!(0xffff_8000_0000_0000u64);
    });
    refused_here(&t, "kernel-rip", &bad, "saved context is not a user-mode one");
    // The original image still restores after all that.
    restore_passes(&t, "counter");
});

link_tests!("sandbox::checkpoint", hosts_that_cannot_take_the_image, [static_ => Static], |link| {
    let bin = build_c("ckpt", link);
    let t = take(&bin, "counter");
    let good = std::fs::read(&t.image).unwrap();
    // An XSAVE component this host's vCPUs never have (AMX tile data: dune leaves it off).
    let amx = edit_meta(&good, |m| {
        let x = m["host"]["xcr0"].as_u64().unwrap();
        m["host"]["xcr0"] = serde_json::json!(x | 1 << 18);
    });
    refused_here(&t, "amx", &amx, "lack XSAVE state components the image uses: AMX tile data");
    // A larger XSAVE area here than the image's.
    let small = edit_meta(&good, |m| m["host"]["xsave_size"] = serde_json::json!(512));
    refused_here(&t, "xsave-size", &small, "larger than the 512 bytes the image was taken with");
    // Memory beyond this host's guest-physical width (a mapping moved to 2^52).
    let wide = edit_meta(&good, |m| {
        let vmas = m["vmas"].as_array_mut().unwrap();
        let last = vmas.last_mut().unwrap();
        let len = last["end"].as_u64().unwrap() - last["start"].as_u64().unwrap();
        last["start"] = serde_json::json!(1u64 << 52);
        last["end"] = serde_json::json!((1u64 << 52) + len);
        last["runs"] = serde_json::json!([]);
    });
    refused_here(&t, "wide", &wide, "needs a guest-physical address width of at least 54 bits");
});

#[test]
fn usage_errors() {
    let out = Command::new(sandbox_bin())
        .args([
            "run",
            "--policy",
            "null",
            "--checkpoint-on",
            "SIGKILL",
            "-o",
            "x",
            "--",
            "/bin/true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be the checkpoint signal"));
    let out = Command::new(sandbox_bin())
        .args(["run", "--policy", "null", "--checkpoint-on", "USR2", "--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "-o is required: {out:?}");
    let out = Command::new(sandbox_bin())
        .args(["restore", "--policy", "null", "/nonexistent/image"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(out.status.signal().is_none());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the image"));
}
