//! `sandbox run --learn FILE`: a run under the null policy writes the policy that allows what
//! it did; the same run under `--policy FILE` succeeds with the same output, and variants that
//! read another file, connect to another port or make another call are refused. Also the
//! usage errors (FILE not writable, other policy options) and a program that cannot start.

#[macro_use]
mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use common::{Cmd, Mode, Output, WorkDir, run_in, selfcheck};

const PYTHON: &str = "/usr/bin/python3";

/// Whether `PYTHON` is there; records the test as skipped when it is not.
fn python_or_skip() -> bool {
    let there = Path::new(PYTHON).exists();
    if !there {
        dune::testing::record_skip("sandbox::learn (python tests)", "no /usr/bin/python3");
    }
    there
}

/// A TCP listener on 127.0.0.1 that greets every connection with `hello\n`, until dropped
/// (the thread ends with the test process).
fn greeter() -> u16 {
    let l = TcpListener::bind(("127.0.0.1", 0)).expect("a loopback listener");
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let _ = c.write_all(b"hello\n");
        }
    });
    port
}

fn run(dir: &Path, opts: &[&str], program: &str, args: &[&str]) -> Output {
    let mut c = Cmd::new(program).args(args);
    for o in opts {
        c = c.sandbox_opt(o);
    }
    run_in(Mode::Sandboxed, &c, dir)
}

fn learn(dir: &Path, file: &Path, program: &str, args: &[&str]) -> (Output, String) {
    let f = file.to_string_lossy().into_owned();
    let o = run(dir, &["--learn", &f], program, args);
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("no learned file {}: {e}\n{}", file.display(), o.report()));
    (o, text)
}

fn under(dir: &Path, file: &Path, program: &str, args: &[&str]) -> Output {
    let f = file.to_string_lossy().into_owned();
    run(dir, &["--policy", &f], program, args)
}

/// A directory outside the working directory with two files, `a.txt` and `b.txt`.
fn secrets() -> (WorkDir, PathBuf, PathBuf) {
    let d = WorkDir::new("learn-secrets");
    let (a, b) = (d.join("a.txt"), d.join("b.txt"));
    std::fs::write(&a, "alpha\n").unwrap();
    std::fs::write(&b, "beta\n").unwrap();
    (d, a, b)
}

#[test]
fn a_shell_run_across_fork_and_exec_is_learned_and_replayed() {
    gated!(a_shell_run_across_fork_and_exec_is_learned_and_replayed);
    if selfcheck() {
        return;
    }
    let work = WorkDir::new("learn-shell");
    let (_s, a, b) = secrets();
    let policy = work.join("learned.toml");
    let script = |f: &Path| {
        format!("cat {} > out.txt; cat /etc/hostname >> out.txt; cat out.txt", f.display())
    };
    let (o, text) = learn(work.path(), &policy, "/bin/sh", &["-c", &script(&a)]);
    o.assert_success();
    let learned_out = o.stdout_str();
    assert!(learned_out.starts_with("alpha\n"), "{}", o.report());
    assert!(o.stderr_str().contains("--learn: wrote"), "{}", o.report());
    // What the children did is in the file: cat's exec, the file it read, the one written.
    assert!(text.contains("\"/usr/bin/cat\""), "{text}");
    assert!(text.contains(&format!("\"{}\"", a.display())), "{text}");
    assert!(text.contains("\"/etc/hostname\""), "{text}");
    assert!(text.contains("rw = [\n  # the working directory"), "{text}");
    assert!(
        text.contains("\"vfork\"") || text.contains("\"clone\"") || text.contains("\"fork\""),
        "{text}"
    );
    assert!(text.contains("\"execve\""), "{text}");
    assert!(!text.contains("\"/\","), "never the whole file system: {text}");
    std::fs::remove_file(work.join("out.txt")).unwrap();

    // The same run under the learned policy: the same output.
    let o = under(work.path(), &policy, "/bin/sh", &["-c", &script(&a)]);
    o.assert_success();
    assert_eq!(o.stdout_str(), learned_out, "{}", o.report());

    // Another file outside the working directory: refused.
    let o = under(work.path(), &policy, "/bin/sh", &["-c", &script(&b)]);
    assert!(!o.stdout_str().contains("beta"), "{}", o.report());
    assert!(o.stderr_str().contains("Permission denied"), "{}", o.report());
    // Another program: not executable under the learned policy.
    let o = under(work.path(), &policy, "/bin/sh", &["-c", "/usr/bin/id -u"]);
    assert_ne!(o.code(), Some(0), "{}", o.report());
    // `policy show` reads it.
    let f = policy.to_string_lossy().into_owned();
    let shown = std::process::Command::new(common::sandbox_bin())
        .args(["policy", "show", &f])
        .output()
        .unwrap();
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("allow = [\"") && shown.contains("(not in allow)"), "{shown}");
}

#[test]
fn python_reading_writing_and_connecting_is_learned_and_replayed() {
    gated!(python_reading_writing_and_connecting_is_learned_and_replayed);
    if selfcheck() || !python_or_skip() {
        return;
    }
    let (port, other) = (greeter(), greeter());
    let work = WorkDir::new("learn-python");
    let (_s, a, b) = secrets();
    let policy = work.join("py.toml");
    let code = |f: &Path, port: u16| {
        format!(
            "import socket\n\
             s = socket.create_connection(('127.0.0.1', {port}))\n\
             got = s.recv(6).decode()\n\
             data = open('{}').read()\n\
             open('out.txt', 'w').write(got + data)\n\
             print(open('out.txt').read(), end='')\n",
            f.display()
        )
    };
    let (o, text) = learn(work.path(), &policy, PYTHON, &["-c", &code(&a, port)]);
    o.assert_success();
    assert_eq!(o.stdout_str(), "hello\nalpha\n", "{}", o.report());
    assert!(
        text.contains(&format!(
            "op = [\"connect\"]\nprotocol = \"tcp\"\naddress = \"127.0.0.1\"\nport = {port}\n"
        )),
        "{text}"
    );
    assert!(text.contains("\"socket\"") && text.contains("\"connect\""), "{text}");

    let o = under(work.path(), &policy, PYTHON, &["-c", &code(&a, port)]);
    o.assert_success();
    assert_eq!(o.stdout_str(), "hello\nalpha\n", "{}", o.report());

    // Another port: the connect is refused (and audited).
    let o = under(work.path(), &policy, PYTHON, &["-c", &code(&a, other)]);
    assert_ne!(o.code(), Some(0), "{}", o.report());
    assert!(o.stderr_str().contains("PermissionError"), "{}", o.report());
    assert!(o.stderr_str().contains(&format!("\"port\":{other}")), "{}", o.report());
    // Another file: refused.
    let o = under(work.path(), &policy, PYTHON, &["-c", &code(&b, port)]);
    assert_ne!(o.code(), Some(0), "{}", o.report());
    assert!(o.stderr_str().contains("PermissionError"), "{}", o.report());
    assert!(!o.stdout_str().contains("beta"), "{}", o.report());
}

#[test]
fn a_server_on_a_port_the_kernel_picks_is_learned_and_replayed() {
    gated!(a_server_on_a_port_the_kernel_picks_is_learned_and_replayed);
    if selfcheck() || !python_or_skip() {
        return;
    }
    let work = WorkDir::new("learn-server");
    let policy = work.join("server.toml");
    // A listener on port 0 (the kernel's pick), a connection to it, accepted (through the
    // guard's helper thread), a greeting over it.
    let code = "import socket\n\
                l = socket.socket()\n\
                l.bind(('127.0.0.1', 0))\n\
                l.listen(1)\n\
                c = socket.create_connection(l.getsockname())\n\
                s, _ = l.accept()\n\
                s.sendall(b'hi')\n\
                print(c.recv(2).decode())\n";
    let (o, text) = learn(work.path(), &policy, PYTHON, &["-c", code]);
    o.assert_success();
    assert_eq!(o.stdout_str(), "hi\n", "{}", o.report());
    assert!(
        text.contains("op = [\"bind\"]\nprotocol = \"tcp\"\naddress = \"127.0.0.1\"\nport = 0\n"),
        "{text}"
    );
    // Its own listening port (the kernel's pick), and the connection accepted (noted by
    // the guard's helper thread): one rule, for any port of that address.
    assert!(
        text.contains(
            "op = [\"connect\", \"listen\", \"accept\"]\nprotocol = \"tcp\"\naddress = \"127.0.0.1\"\nport = \"any\"\n"
        ),
        "{text}"
    );
    assert!(text.contains("; accept tcp 127.0.0.1:"), "{text}");
    let o = under(work.path(), &policy, PYTHON, &["-c", code]);
    o.assert_success();
    assert_eq!(o.stdout_str(), "hi\n", "{}", o.report());
    // Another address to listen on: refused.
    let other = code.replace("127.0.0.1", "127.0.0.2");
    let o = under(work.path(), &policy, PYTHON, &["-c", &other]);
    assert!(o.stderr_str().contains("PermissionError"), "{}", o.report());
}

#[test]
fn a_call_the_run_did_not_make_fails_with_enosys() {
    gated!(a_call_the_run_did_not_make_fails_with_enosys);
    if selfcheck() || !python_or_skip() {
        return;
    }
    let work = WorkDir::new("learn-calls");
    let policy = work.join("calls.toml");
    let (o, text) = learn(work.path(), &policy, PYTHON, &["-c", "print('ok')"]);
    o.assert_success();
    assert!(!text.contains("\"getsid\""), "{text}");
    let code = "import os\ntry:\n    os.getsid(0)\n    print('made')\nexcept OSError as e:\n    print(e.errno)\n";
    let o = under(work.path(), &policy, PYTHON, &["-c", code]);
    assert_eq!(o.stdout_str(), format!("{}\n", libc::ENOSYS), "{}", o.report());
}

#[test]
fn usage_errors_come_before_the_program_runs() {
    if selfcheck() {
        return;
    }
    let work = WorkDir::new("learn-usage");
    let marker = work.join("ran");
    let touch = format!("touch {}", marker.display());
    // A file in a directory that does not exist.
    let o = run(work.path(), &["--learn", "/nonexistent-dir/p.toml"], "/bin/sh", &["-c", &touch]);
    assert_eq!(o.code(), Some(2), "{}", o.report());
    assert!(
        o.stderr_str().contains("cannot write in its directory /nonexistent-dir"),
        "{}",
        o.report()
    );
    // A directory.
    let d = work.path().to_string_lossy().into_owned();
    let o = run(work.path(), &["--learn", &d], "/bin/sh", &["-c", &touch]);
    assert_eq!(o.code(), Some(2), "{}", o.report());
    assert!(o.stderr_str().contains("is a directory"), "{}", o.report());
    // With another policy option.
    let o = run(work.path(), &["--learn", "p.toml", "--ro", "/etc"], "/bin/sh", &["-c", &touch]);
    assert_eq!(o.code(), Some(2), "{}", o.report());
    assert!(o.stderr_str().contains("cannot be combined with --ro"), "{}", o.report());
    let o = run(
        work.path(),
        &["--learn", "p.toml", "--policy", "workspace"],
        "/bin/sh",
        &["-c", &touch],
    );
    assert_eq!(o.code(), Some(2), "{}", o.report());
    assert!(!marker.exists(), "the program ran");
    assert!(!work.join("p.toml").exists());
    // A program that cannot be started: FILE is left as it was.
    std::fs::write(work.join("keep.toml"), "# mine\n").unwrap();
    let o = run(work.path(), &["--learn", "keep.toml"], "/nonexistent/prog", &[]);
    assert_eq!(o.code(), Some(127), "{}", o.report());
    assert_eq!(std::fs::read_to_string(work.join("keep.toml")).unwrap(), "# mine\n");
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".learn-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
