//! Filesystem rules (`--ro`, `--rw`, `--exec`, `--hide`, the `workspace` profile): every path
//! call against a writable, a read-only, a hidden and an unlisted area, static and dynamic;
//! the escape tricks (symlinks, `..`, `/proc/self/root`, `/proc/self/cwd`, magic links,
//! `O_PATH` and dirfd forms, hard links, renames); a racing symlink swap; and real programs
//! under the default profile. Natively every call succeeds (the tests run as the tree's
//! owner), so each difference is the policy's.

#[macro_use]
mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Link, WorkDir, build_c};

/// The test tree: `rw`, `ro`, `hidden`, `unlisted`, each with `f`, `t`, `r1`, `u` (files),
/// `d`, `rd` (directories), `l` (a symlink to `f`); and in `rw` symlinks into the others.
fn tree(w: &WorkDir) -> PathBuf {
    let root = w.join("tree");
    for area in ["rw", "ro", "hidden", "unlisted"] {
        let a = root.join(area);
        std::fs::create_dir_all(a.join("d")).unwrap();
        std::fs::create_dir_all(a.join("rd")).unwrap();
        for f in ["f", "t", "r1", "u"] {
            std::fs::write(a.join(f), b"content\n").unwrap();
        }
        symlink("f", a.join("l")).unwrap();
    }
    let rw = root.join("rw");
    symlink(root.join("ro/f"), rw.join("to_ro")).unwrap();
    symlink(root.join("hidden/f"), rw.join("to_hidden")).unwrap();
    symlink("../hidden/f", rw.join("rel_hidden")).unwrap();
    symlink(root.join("hidden/d"), rw.join("to_hidden_dir")).unwrap();
    root
}

/// A listening stream socket `srv` and a bound datagram socket `dsrv` in each area of the
/// tree, for the unix calls (open while the returned value lives).
fn unix_servers(root: &Path) -> Vec<Box<dyn std::any::Any>> {
    use std::os::unix::net::{UnixDatagram, UnixListener};
    let mut v: Vec<Box<dyn std::any::Any>> = Vec::new();
    for area in ["rw", "ro", "hidden", "unlisted"] {
        v.push(Box::new(UnixListener::bind(root.join(area).join("srv")).unwrap()));
        v.push(Box::new(UnixDatagram::bind(root.join(area).join("dsrv")).unwrap()));
    }
    v
}

/// `sandbox run --policy null` with these rules, plus what a program needs to load (the
/// system's libraries and the test binaries, executable).
fn sandboxed(rules: &[String], prog: &Path, args: &[&str]) -> Output {
    sandboxed_with(&[], rules, prog, args)
}

/// [`sandboxed`] with `extra` options first.
fn sandboxed_with(extra: &[&str], rules: &[String], prog: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(common::sandbox_bin());
    c.args(["run", "--policy", "null"]).args(extra);
    for sys in ["/usr", "/lib", "/lib64", "/etc"] {
        c.args(["--exec", sys]);
    }
    c.arg("--exec").arg(prog.parent().unwrap());
    c.args(rules).arg("--").arg(prog).args(args);
    c.output().unwrap()
}

fn lines(o: &Output) -> Vec<(String, String)> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
        .collect()
}

fn rules(root: &Path) -> Vec<String> {
    let r = |o: &str, p: &str| [o.to_string(), root.join(p).to_string_lossy().into_owned()];
    [r("--rw", "rw"), r("--ro", "ro"), r("--hide", "hidden")].concat()
}

/// The calls that change something (the rest look or read).
const WRITES: &[&str] = &[
    "access-w",
    "open-write",
    "open-trunc",
    "creat",
    "creat2",
    "mkdir",
    "mknod",
    "symlink",
    "link",
    "chmod",
    "chown",
    "lchown",
    "utimes",
    "utime",
    "utimensat",
    "truncate",
    "setxattr",
    "removexattr",
    "rename",
    "unlink",
    "rmdir",
    "unix-bind",
    "fchmod",
    "fchown",
    "futimens",
    "setxattrat-null",
    "removexattrat-null",
];

fn every_call(link: Link) {
    let prog = build_c("fs_rules", link);
    // Natively, on a fresh tree: everything succeeds (the baseline the rules change).
    let w = WorkDir::new("fs-calls-native");
    let root = tree(&w);
    let _servers = unix_servers(&root);
    let native = Command::new(&prog).arg("calls").arg(root.join("rw")).output().unwrap();
    // Calls the host kernel does not have (the *xattrat family before Linux 6.13) are left out.
    let native: Vec<_> = lines(&native).into_iter().filter(|(_, r)| r != "ENOSYS").collect();
    assert!(native.len() >= 39, "{native:?}");
    for (call, r) in &native {
        assert_eq!(r, "ok", "natively {call} fails: the test tree is wrong");
    }
    let w = WorkDir::new("fs-calls");
    let root = tree(&w);
    let _servers = unix_servers(&root);
    for (area, read, write) in [
        ("rw", "ok", "ok"),
        ("ro", "ok", "EROFS"),
        ("hidden", "ENOENT", "ENOENT"),
        ("unlisted", "EACCES", "EACCES"),
    ] {
        let out = sandboxed(&rules(&root), &prog, &["calls", &root.join(area).to_string_lossy()]);
        let got: Vec<_> =
            lines(&out).into_iter().filter(|(c, _)| native.iter().any(|(n, _)| n == c)).collect();
        assert_eq!(got.len(), native.len(), "{area}: {}", String::from_utf8_lossy(&out.stderr));
        let wrong: Vec<String> = got
            .iter()
            .filter(|(call, r)| {
                let want = if WRITES.contains(&call.as_str()) { write } else { read };
                // Reaching a unix socket takes write access to its file (as Linux checks
                // it), refused with EACCES even below a read-only path (Linux's connect
                // never fails with EROFS).
                // So does a lease (Linux: EACCES for one who may not take it).
                let want = match call.as_str() {
                    "unix-connect" | "unix-sendto" | "lease" if write == "EROFS" => "EACCES",
                    "unix-connect" | "unix-sendto" | "lease" => write,
                    _ => want,
                };
                r != want
            })
            .map(|(c, r)| format!("{c}={r}"))
            .collect();
        assert!(wrong.is_empty(), "{area} ({link:?}): unexpected results {wrong:?}");
    }
    // Nothing below ro, hidden or unlisted changed.
    for area in ["ro", "hidden", "unlisted"] {
        let a = root.join(area);
        for absent in ["new", "new2", "nd", "fifo", "sl", "hl", "r2", "sk"] {
            assert!(!a.join(absent).exists(), "{area}/{absent} was made");
        }
        assert_eq!(std::fs::read(a.join("t")).unwrap(), b"content\n", "{area}/t truncated");
        assert!(a.join("u").exists() && a.join("rd").exists() && a.join("r1").exists());
    }
}

link_tests!("fs_policy", calls, [static_ => Static, dynamic => Dynamic], |link| {
    every_call(link)
});

link_tests!("fs_policy", escapes, [static_ => Static, dynamic => Dynamic], |link| {
    let prog = build_c("fs_rules", link);
    let w = WorkDir::new("fs-escape");
    let root = tree(&w);
    let out = sandboxed(&rules(&root), &prog, &["escape", &root.to_string_lossy()]);
    let got = lines(&out);
    let want = [
        ("symlink-to-ro-write", "EROFS"),
        ("symlink-to-ro-read", "ok"),
        ("symlink-to-hidden", "ENOENT"),
        ("relative-symlink-to-hidden", "ENOENT"),
        ("dotdot", "ENOENT"),
        ("proc-root", "ENOENT"),
        ("proc-cwd", "ENOENT"),
        ("relative-dotdot", "ENOENT"),
        ("magic-link-write", "EROFS"),
        ("magic-link-read", "ok"),
        ("empty-path-chown", "EROFS"),
        ("dirfd-dotdot", "ENOENT"),
        ("dirfd-dotdot-create", "EROFS"),
        ("linkat-empty-path", "EXDEV"),
        ("hardlink-ro", "EXDEV"),
        ("hardlink-follow", "EXDEV"),
        ("rename-ro-into-rw", "EROFS"),
        ("rename-rw-into-ro", "EROFS"),
        ("rename-hidden-out", "ENOENT"),
        ("rename-parent-of-hidden", "EACCES"),
        ("symlink-trailing-slash", "ENOENT"),
        ("stat-trailing-slash", "ENOENT"),
        ("dirfd-hidden", "ENOENT"),
        ("fstatat-hidden", "ENOENT"),
        ("listing-shows-hidden", "no"),
        ("execve-hidden-dir", "ENOENT"),
        ("execve-below-hidden-file", "ENOENT"),
    ];
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (trick, result) in want {
        let r = got.iter().find(|(t, _)| t == trick).map(|(_, r)| r.as_str());
        assert_eq!(r, Some(result), "{trick}: {got:?}\n{stderr}");
    }
    assert_eq!(std::fs::read(root.join("ro/f")).unwrap(), b"content\n");
    assert!(root.join("ro/d").exists() && root.join("hidden").exists());
});

// A trailing slash makes even a no-follow call follow the final symlink: `slink/` swapped
// between a writable and a read-only directory by a racing thread must never let
// utimensat(AT_SYMLINK_NOFOLLOW) or lsetxattr reach the read-only one (both layers: Landlock
// does not cover times or attributes). They reached it within a few hundred rounds before.
link_tests!("fs_policy", trailing_slash_symlink_race, [static_ => Static], |link| {
    let prog = build_c("fs_rules", link);
    let w = WorkDir::new("fs-slash-race");
    let root = tree(&w);
    let out = sandboxed(&rules(&root), &prog, &["slashrace", &root.to_string_lossy(), "3000"]);
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let value = |k: &str| -> i64 {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("slashrace {k} ")).map(|v| v.parse().unwrap()))
            .unwrap_or_else(|| panic!("no slashrace {k}: {text}"))
    };
    assert!(value("times-set") > 0, "the writable directory's times were never set: {text}");
    assert_eq!(value("ro-times-changed"), 0, "{text}");
    assert_eq!(value("ro-attr-set"), 0, "{text}");
});

link_tests!("fs_policy", symlink_race, [static_ => Static], |link| {
    let prog = build_c("fs_rules", link);
    let w = WorkDir::new("fs-race");
    let root = tree(&w);
    let out = sandboxed(&rules(&root), &prog, &["race", &root.to_string_lossy(), "3000"]);
    let got = lines(&out);
    let value = |k: &str| -> i64 {
        got.iter()
            .find(|(t, _)| t == "race")
            .and_then(|_| {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("race {k} ")).map(|v| v.parse().unwrap()))
            })
            .unwrap_or_else(|| panic!("no race {k}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    assert!(value("opened") > 0, "the writable file was never opened");
    assert_eq!(value("ro-written"), 0, "a write reached the read-only file");
    assert_eq!(std::fs::read(root.join("ro/f")).unwrap(), b"content\n");
});

// A unix bind is made by the program's string (so the socket reports the address it was
// given), which the kernel resolves again: a thread or a child process swapping a directory
// of the path for a symlink to a read-only one must never get a socket made there. Only the
// first layer (Landlock, which refuses such a bind in the kernel, is off). And a path through
// /proc/self/fd/N while a thread dup2s another directory over N (found by an attack run: the
// namespace lock does not cover the descriptor table).
fn bind_race(mode: &str) {
    let prog = build_c("fs_rules", Link::Static);
    let w = WorkDir::new(&format!("fs-bind-race-{mode}"));
    let root = tree(&w);
    let out = sandboxed_with(
        &["--landlock", "off"],
        &rules(&root),
        &prog,
        &["bindrace", &root.to_string_lossy(), "2000", mode],
    );
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let value = |k: &str| -> i64 {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("bindrace {k} ")).map(|v| v.parse().unwrap()))
            .unwrap_or_else(|| panic!("no bindrace {k}: {text}"))
    };
    assert!(out.status.success(), "{text}");
    assert!(value("bound") > 0, "no bind in the writable directory succeeded: {text}");
    assert_eq!(value("ro-sockets"), 0, "{text}");
    assert!(!root.join("ro/d/s").exists(), "{text}");
}

#[test]
fn unix_bind_race_with_a_thread() {
    gated!(unix_bind_race_with_a_thread);
    bind_race("thread");
}

#[test]
fn unix_bind_race_through_a_descriptor() {
    gated!(unix_bind_race_through_a_descriptor);
    bind_race("fd");
}

// Two sandboxes sharing a writable directory: one swaps a directory of the other's bind path
// with a symlink to a read-only one (RENAME_EXCHANGE); found by an attack run (the lock was
// one sandbox's only, so the other's bind made a socket there and the binder was ended).
#[test]
fn unix_bind_race_between_two_sandboxes() {
    gated!(unix_bind_race_between_two_sandboxes);
    let prog = build_c("fs_rules", Link::Static);
    let w = WorkDir::new("fs-bind-race-two");
    let root = tree(&w);
    let mut c = Command::new(common::sandbox_bin());
    c.args(["run", "--policy", "null", "--landlock", "off"]);
    for sys in ["/usr", "/lib", "/lib64", "/etc"] {
        c.args(["--exec", sys]);
    }
    c.arg("--exec").arg(prog.parent().unwrap()).args(rules(&root));
    c.arg("--").arg(&prog).args(["xswap", &root.to_string_lossy()]);
    let mut swapper = c.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = sandboxed_with(
        &["--landlock", "off"],
        &rules(&root),
        &prog,
        &["xbind", &root.to_string_lossy(), "3000"],
    );
    let _ = swapper.kill();
    let _ = swapper.wait();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the binder was ended: {text}");
    assert!(text.contains("xbind bound"), "{text}");
    assert!(!root.join("ro/d/s").exists(), "a socket was made in the read-only directory: {text}");
}

#[test]
fn unix_bind_race_with_a_process() {
    gated!(unix_bind_race_with_a_process);
    bind_race("proc");
}

/// The `workspace` profile and unix sockets by path: decided by the filesystem rules (bind
/// and connect in the working directory and the private /tmp; nothing elsewhere, not even
/// a server the host has below a readable path), each reporting the address the program gave.
#[test]
fn workspace_unix_sockets_follow_the_file_rules() {
    gated!(workspace_unix_sockets_follow_the_file_rules);
    let python = Path::new("/usr/bin/python3");
    if !python.exists() {
        dune::testing::record_skip(
            "sandbox::fs_policy::workspace_unix_sockets_follow_the_file_rules",
            "no /usr/bin/python3",
        );
        return;
    }
    let w = WorkDir::new("fs-unix");
    let cwd = w.join("proj");
    let outside = w.join("outside");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    // A host server below a readable (not writable) path.
    let _host = std::os::unix::net::UnixListener::bind(outside.join("host.sock")).unwrap();
    let script = format!(
        "import socket, tempfile, os\n\
         def pair(path, ty=socket.SOCK_STREAM):\n\
         \x20   s = socket.socket(socket.AF_UNIX, ty); s.bind(path)\n\
         \x20   if ty == socket.SOCK_STREAM:\n\
         \x20       s.listen(); c = socket.socket(socket.AF_UNIX); c.connect(path)\n\
         \x20       a, _ = s.accept(); c.send(b'hi'); assert a.recv(2) == b'hi'\n\
         \x20       print('name', s.getsockname() == path, c.getpeername() == path)\n\
         \x20   else:\n\
         \x20       c = socket.socket(socket.AF_UNIX, ty); c.bind(path + '.c')\n\
         \x20       c.sendto(b'x', path); _, frm = s.recvfrom(4)\n\
         \x20       print('from', frm == path + '.c')\n\
         \x20       c.sendto(b'x', path); _, _, _, frm = s.recvmsg(4, 64)\n\
         \x20       print('from-cmsg', frm == path + '.c')\n\
         pair('rel.sock')\n\
         d = tempfile.mkdtemp(); pair(d + '/t.sock'); pair(d + '/d.sock', socket.SOCK_DGRAM)\n\
         for p in ['{out}/new.sock']:\n\
         \x20   try: socket.socket(socket.AF_UNIX).bind(p); print('bound outside')\n\
         \x20   except OSError as e: print('bind refused', e.errno)\n\
         try: socket.socket(socket.AF_UNIX).connect('{out}/host.sock'); print('reached host')\n\
         except OSError as e: print('connect refused', e.errno)\n",
        out = outside.display()
    );
    let out = Command::new(common::sandbox_bin())
        .args(["run", "--", "/usr/bin/python3", "-c", &script])
        .current_dir(&cwd)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("name True True").count(), 2, "{stdout}\n{stderr}");
    assert!(stdout.contains("from True") && stdout.contains("from-cmsg True"), "{stdout}");
    assert!(stdout.contains(&format!("bind refused {}", libc::EROFS)), "{stdout}");
    assert!(stdout.contains(&format!("connect refused {}", libc::EACCES)), "{stdout}");
    assert!(cwd.join("rel.sock").exists() && !outside.join("new.sock").exists());
}

// ioctls that reach past the sandbox, refused under the profile: the host's network
// configuration (a root program could take interfaces down, rename them, add bridges) and a
// terminal's hang-up (the user's shell dies of SIGHUP), console redirection and stealing.
// Queries still work; under --policy null everything is the kernel's to decide.
link_tests!("fs_policy", host_wide_ioctls_are_refused, [static_ => Static], |link| {
    let prog = build_c("confine_ioctl", link);
    let out = Command::new(common::sandbox_bin())
        .args(["run", "--policy", "workspace", "--"])
        .arg(&prog)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for l in [
        "get-txqlen ok",
        "set-txqlen EPERM",
        "vhangup-own-pty EPERM",
        "console-to-own-pty EPERM",
        "steal-terminal EPERM",
    ] {
        assert!(text.lines().any(|x| x == l), "missing {l:?}:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    }
});

// Another session's terminal is out of reach under the profile (found by an attack run: with
// /dev/pts writable as a whole the program read another session's keystrokes and wrote to its
// screen), while the program's own ptys (openpty: /dev/ptmx, then its slave by name) work.
#[test]
fn other_sessions_terminals_are_out_of_reach() {
    gated!(other_sessions_terminals_are_out_of_reach);
    if !Path::new("/usr/bin/python3").exists() {
        dune::testing::record_skip(
            "sandbox::fs_policy::other_sessions_terminals_are_out_of_reach",
            "no /usr/bin/python3",
        );
        return;
    }
    // A host pty, as another session's terminal.
    #[allow(unsafe_code)]
    // SAFETY: posix_openpt/grantpt/unlockpt/ptsname on a descriptor this test owns; ptsname's
    // static buffer is copied at once.
    let (master, slave) = unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(m >= 0 && libc::grantpt(m) == 0 && libc::unlockpt(m) == 0);
        (m, std::ffi::CStr::from_ptr(libc::ptsname(m)).to_string_lossy().into_owned())
    };
    let w = WorkDir::new("fs-pty");
    let script = format!(
        "import os, pty\n\
         m, s = pty.openpty(); os.write(s, b'own\\n'); print('own', os.read(m, 16) == b'own\\r\\n')\n\
         print('own-name', os.path.basename(os.ttyname(s)) != '')\n\
         try:\n\
         \x20   fd = os.open('{slave}', os.O_RDWR | os.O_NOCTTY); os.write(fd, b'INJECTED'); print('other ok')\n\
         except OSError as e: print('other', e.errno)\n"
    );
    let out = Command::new(common::sandbox_bin())
        .args(["run", "--landlock", "off", "--", "/usr/bin/python3", "-c", &script])
        .current_dir(w.path())
        .output()
        .unwrap();
    #[allow(unsafe_code)]
    // SAFETY: `master` is this test's descriptor.
    unsafe {
        libc::close(master)
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("own True") && stdout.contains("own-name True"), "{text}");
    assert!(stdout.contains(&format!("other {}", libc::EACCES)), "{text}");
}

// A hidden directory passed in by descriptor stays absent to fchdir too (found by an attack
// run: fchdir succeeded and getcwd then named the hidden directory).
#[test]
fn fchdir_into_a_hidden_directory_passed_in() {
    gated!(fchdir_into_a_hidden_directory_passed_in);
    if !Path::new("/usr/bin/python3").exists() {
        dune::testing::record_skip(
            "sandbox::fs_policy::fchdir_into_a_hidden_directory_passed_in",
            "no /usr/bin/python3",
        );
        return;
    }
    let w = WorkDir::new("fs-fchdir");
    let root = tree(&w);
    let mut args = vec!["run".to_string(), "--policy".into(), "null".into()];
    for sys in ["/usr", "/lib", "/lib64", "/etc"] {
        args.extend(["--exec".to_string(), sys.into()]);
    }
    args.extend(rules(&root));
    let script = "import os\n\
                  try:\n\
                  \x20   os.fchdir(3); print('entered', os.getcwd())\n\
                  except OSError as e: print('fchdir', e.errno)\n\
                  os.fchdir(4); print('rw ok')\n";
    let line = format!(
        "exec 3<{hid} 4<{rw}; {sbx} {args} -- /usr/bin/python3 -c \"$S\"",
        hid = root.join("hidden/d").display(),
        rw = root.join("rw/d").display(),
        sbx = common::sandbox_bin().display(),
        args = args.join(" ")
    );
    let out = Command::new("/bin/bash").args(["-c", &line]).env("S", script).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("fchdir {}", libc::ENOENT)), "{text}");
    assert!(stdout.contains("rw ok"), "{text}");
}

/// Runs a shell command under the default profile (no policy option) in `dir`.
fn workspace(dir: &Path, script: &str, extra: &[&str]) -> Output {
    Command::new(common::sandbox_bin())
        .arg("run")
        .args(extra)
        .args(["--", "/bin/sh", "-c", script])
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn workspace_writes_the_working_directory_only() {
    gated!(workspace_writes_the_working_directory_only);
    let w = WorkDir::new("fs-workspace");
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let probe = Path::new(&home).join(format!(".sandbox-fs-probe-{}", std::process::id()));
    let log = w.join("audit.jsonl");
    let script = format!(
        "echo in-cwd > out.txt && cat out.txt; echo x > {p} || echo home-refused; \
         echo t > /tmp/private && cat /tmp/private; ls /tmp",
        p = probe.display()
    );
    let out = workspace(w.path(), &script, &["--audit-log", &log.to_string_lossy()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("in-cwd") && stdout.contains("home-refused"), "{stdout}");
    assert!(stdout.lines().filter(|l| *l == "t" || *l == "private").count() == 2, "{stdout}");
    assert!(!probe.exists(), "the program wrote $HOME");
    assert_eq!(std::fs::read(w.join("out.txt")).unwrap(), b"in-cwd\n");
    // The host's /tmp did not get the file, and the private one is gone.
    assert!(!Path::new("/tmp/private").exists());
    let audit = std::fs::read_to_string(&log).unwrap();
    let line = audit.lines().find(|l| l.contains(&*probe.to_string_lossy())).expect(&audit);
    for field in
        ["\"op\":\"write\"", "\"action\":\"deny\"", "\"errno\":\"EROFS\"", "\"family\":\"file\""]
    {
        assert!(line.contains(field), "{field} in {line}");
    }
    assert!(line.contains("--policy workspace"), "{line}");
}

#[test]
fn workspace_hides_secrets_and_says_once_which_profile_applies() {
    gated!(workspace_hides_secrets_and_says_once_which_profile_applies);
    let w = WorkDir::new("fs-secrets");
    let home = w.join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(home.join(".ssh/id_ed25519"), b"secret").unwrap();
    std::fs::write(home.join(".profile"), b"public").unwrap();
    let cwd = w.join("proj");
    std::fs::create_dir_all(&cwd).unwrap();
    let out = Command::new(common::sandbox_bin())
        .args(["run", "--", "/bin/sh", "-c"])
        .arg(
            "cat ~/.profile; cat ~/.ssh/id_ed25519; ls -a ~; cat ~/.ssh/id_ed25519; \
             cat ~/.ssh/id_ed25519/x 2>&1 | grep -q 'Not a directory' && echo oracle; true",
        )
        .env("HOME", &home)
        .current_dir(&cwd)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("public") && !stdout.contains("secret"), "{stdout}");
    assert!(!stdout.lines().any(|l| l == ".ssh"), "the listing shows .ssh: {stdout}");
    // A path below a hidden file is as absent as the file (ENOTDIR told that it exists).
    assert!(!stdout.lines().any(|l| l == "oracle"), "{stdout}");
    assert!(stderr.contains("No such file"), "{stderr}");
    assert_eq!(stderr.matches("the default policy `workspace`").count(), 1, "{stderr}");
}

#[test]
fn supervisor_files_are_never_writable() {
    gated!(supervisor_files_are_never_writable);
    // Whatever the rules say, and under a policy with no filesystem rules at all.
    supervisor_files_under(&["--policy", "null", "--rw", "/"], "fs-supervisor");
    supervisor_files_under(&["--policy", "deny-net"], "fs-supervisor-deny-net");
}

fn supervisor_files_under(policy: &[&str], label: &str) {
    let w = WorkDir::new(label);
    // A copy of the sandbox is the supervisor here, so a failure cannot harm the real one.
    let sbx = w.join("sandbox-copy");
    std::fs::copy(common::sandbox_bin(), &sbx).unwrap();
    let libc = std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.find(" /").map(|i| l[i + 1..].to_string()).filter(|p| p.contains("libc.so"))
        })
        .map(|p| std::fs::canonicalize(p).unwrap());
    let before = libc.as_ref().map(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    let script = format!(
        "rm -f {s} || echo rm-refused; mv {s} {s}.moved || echo mv-refused; \
         touch {l} || echo touch-refused",
        s = sbx.display(),
        l = libc.as_ref().map_or("/nonexistent".into(), |p| p.display().to_string()),
    );
    let out = Command::new(&sbx)
        .arg("run")
        .args(policy)
        .args(["--", "/bin/sh", "-c", &script])
        .current_dir(w.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(sbx.exists(), "{policy:?}: the supervisor's executable was removed: {stdout}");
    assert!(stdout.contains("rm-refused") && stdout.contains("mv-refused"), "{stdout}");
    if let (Some(p), Some(b)) = (libc, before) {
        assert!(stdout.contains("touch-refused"), "{stdout}");
        assert_eq!(std::fs::metadata(p).unwrap().modified().unwrap(), b);
    }
}

#[test]
fn python_and_tar_under_the_workspace_profile() {
    gated!(python_and_tar_under_the_workspace_profile);
    let python = Path::new("/usr/bin/python3");
    if !python.exists() {
        dune::testing::record_skip(
            "sandbox::fs_policy::python_and_tar_under_the_workspace_profile",
            "no /usr/bin/python3",
        );
        return;
    }
    let w = WorkDir::new("fs-real");
    let cwd = w.join("proj");
    std::fs::create_dir_all(&cwd).unwrap();
    // A crafted archive: a member above the working directory, an absolute one, and a
    // symlink out of it followed by a file through the symlink.
    let outside = w.join(format!("escaped-{}", std::process::id()));
    let make = format!(
        "import io, tarfile\n\
         t = tarfile.open('{cwd}/evil.tar', 'w')\n\
         def add(name, data=b'x', **kw):\n\
         \x20   i = tarfile.TarInfo(name); i.size = len(data)\n\
         \x20   for k, v in kw.items(): setattr(i, k, v)\n\
         \x20   t.addfile(i, io.BytesIO(data) if i.type == tarfile.REGTYPE else None)\n\
         add('../escaped-up')\n\
         add('{outside}')\n\
         add('link', type=tarfile.SYMTYPE, linkname='{wdir}')\n\
         add('link/escaped-link')\n\
         add('inside.txt')\n\
         t.close()\n",
        cwd = cwd.display(),
        outside = outside.display(),
        wdir = w.path().display()
    );
    assert!(Command::new(python).args(["-c", &make]).status().unwrap().success());
    let out =
        workspace(&cwd, "tar -xPf evil.tar; python3 -c \"open('py.txt','w').write('ok')\"", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(cwd.join("inside.txt").exists(), "{stderr}");
    assert_eq!(std::fs::read(cwd.join("py.txt")).unwrap_or_default(), b"ok", "{stderr}");
    assert!(
        !outside.exists() && !w.join("escaped-up").exists() && !w.join("escaped-link").exists()
    );
}

#[test]
fn processes_outside_the_sandbox_cannot_be_signalled_or_seen() {
    gated!(processes_outside_the_sandbox_cannot_be_signalled_or_seen);
    let w = WorkDir::new("fs-processes");
    let mut outside = Command::new("/bin/sleep").arg("60").spawn().unwrap();
    let pid = outside.id();
    let script = format!(
        "kill -TERM {pid}; echo outside=$?; test -e /proc/{pid} && echo seen || echo unseen; \
         ls /proc | grep -qx {pid} && echo listed || echo unlisted; \
         sleep 30 & c=$!; kill $c; echo own=$?; wait $c; echo waited=$?; \
         hostname \"$(hostname)\" 2>/dev/null && echo renamed || echo hostname-refused"
    );
    let out = workspace(w.path(), &script, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let alive = outside.try_wait().unwrap().is_none();
    assert!(alive, "the process outside was killed: {stdout}");
    for want in ["outside=1", "unseen", "unlisted", "own=0", "waited=143", "hostname-refused"] {
        assert!(stdout.lines().any(|l| l == want), "{want}: {stdout}");
    }
    // Nor are its capabilities answered (capget's pid is in a header, decided on a copy).
    let capget = build_c("proc_capget", Link::Static);
    let out = Command::new(common::sandbox_bin())
        .args(["run", "--"])
        .arg(&capget)
        .arg(pid.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("capget-self ok") && text.contains("capget-other ESRCH"), "{text}");
    // A policy without filesystem rules hides it from stat too (not only from open).
    let out = workspace(
        w.path(),
        &format!("stat /proc/{pid} >/dev/null 2>&1 || echo unseen"),
        &["--policy", "deny-net"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "unseen", "under deny-net");
    // Under the null policy the same process is reachable (the confinement is the policy's).
    let out = Command::new(common::sandbox_bin())
        .args(["run", "--policy", "null", "--", "/bin/sh", "-c"])
        .arg(format!("test -e /proc/{pid} && echo seen"))
        .output()
        .unwrap();
    let _ = outside.kill();
    let _ = outside.wait();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "seen", "under the null policy");
}

/// Whether the host kernel has Landlock enabled: `landlock_create_ruleset(NULL, 0,
/// LANDLOCK_CREATE_RULESET_VERSION)` answers its ABI version (landlock_create_ruleset(2); not
/// `/sys/kernel/security/lsm`, which needs securityfs mounted).
fn landlock_enabled() -> bool {
    // SAFETY: with a NULL attribute, size 0 and the VERSION flag the call reads and writes no
    // memory; it only answers the ABI version.
    let abi = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, 0usize, 0usize, 1u32) };
    abi >= 1
}

// The kernel-enforced second layer alone: with the first layer's path decisions switched off
// (a debug build's test switch), the workspace profile still keeps the program from reading a
// secret below a readable directory and from writing outside the working directory, while it
// reads the system and writes the working directory; with `--landlock off` too, everything
// goes through, so the refusals are Landlock's.
#[test]
fn the_kernel_layer_holds_without_the_first() {
    gated!(the_kernel_layer_holds_without_the_first);
    if !landlock_enabled() {
        dune::testing::record_skip(
            "sandbox::fs_policy::the_kernel_layer_holds_without_the_first",
            "this kernel has no Landlock",
        );
        return;
    }
    let w = WorkDir::new("fs-landlock");
    let home = w.join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(home.join(".ssh/id_ed25519"), b"secret\n").unwrap();
    std::fs::write(home.join(".profile"), b"public\n").unwrap();
    let cwd = w.join("proj");
    std::fs::create_dir_all(&cwd).unwrap();
    let outside = w.join("outside.txt");
    let script = format!(
        "cat ~/.ssh/id_ed25519; cat ~/.profile; echo w > {o} && echo outside-written; \
         echo in > in.txt && cat in.txt; cat /etc/hostname > /dev/null && echo etc-read",
        o = outside.display()
    );
    let run = |landlock: &str| {
        let out = Command::new(common::sandbox_bin())
            .args(["run", "--landlock", landlock, "--", "/bin/sh", "-c", &script])
            .env("HOME", &home)
            .env("SANDBOX_TEST_FIRST_LAYER_OFF", "1")
            .current_dir(&cwd)
            .output()
            .unwrap();
        let text = format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (String::from_utf8_lossy(&out.stdout).into_owned(), text)
    };
    let (stdout, text) = run("require");
    assert!(!stdout.contains("secret"), "Landlock let the secret be read: {text}");
    assert!(!stdout.contains("outside-written") && !outside.exists(), "{text}");
    for want in ["public", "in", "etc-read"] {
        assert!(stdout.lines().any(|l| l == want), "{want} missing: {text}");
    }
    assert!(text.contains("Permission denied"), "{text}");
    let (stdout, text) = run("off");
    assert!(stdout.contains("secret") && stdout.contains("outside-written"), "{text}");
}

// Under filesystem rules no device node can be made (a node in the working directory opened
// any device before: a disk, /dev/kmsg), and the workspace profile reaches only the usual
// devices of /dev; a fifo can still be made.
#[test]
fn workspace_makes_no_devices_and_reaches_only_the_usual_ones() {
    gated!(workspace_makes_no_devices_and_reaches_only_the_usual_ones);
    let w = WorkDir::new("fs-nodev");
    let script = "mknod kmsg c 1 11 && echo made-device; mkfifo fifo && echo made-fifo; \
                  cat /dev/null && echo null-read; head -c1 /dev/kmsg > /dev/null || echo kmsg-refused; \
                  echo x > /dev/null && echo null-written";
    let out = workspace(w.path(), script, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in ["made-fifo", "null-read", "kmsg-refused", "null-written"] {
        assert!(stdout.lines().any(|l| l == want), "{want}: {stdout}\n{stderr}");
    }
    assert!(!stdout.contains("made-device") && !w.join("kmsg").exists(), "{stdout}\n{stderr}");
}

// A descriptor's SIGIO owner is a signal sent later on the program's behalf: F_SETOWN,
// F_SETOWN_EX and FIOSETOWN may name only the sandbox's own processes (an outside process was
// killed by a pipe's SIGIO before, with the first layer alone: red-team finding). Checked with
// the kernel layer off, so the refusal is the first layer's.
#[test]
fn sigio_owners_are_confined_to_the_sandbox() {
    gated!(sigio_owners_are_confined_to_the_sandbox);
    if !std::path::Path::new("/usr/bin/python3").exists() {
        dune::testing::record_skip(
            "sandbox::fs_policy::sigio_owners_are_confined_to_the_sandbox",
            "no /usr/bin/python3",
        );
        return;
    }
    let w = WorkDir::new("fs-sigio");
    let mut outside = Command::new("/bin/sleep").arg("60").spawn().unwrap();
    let pid = outside.id();
    let script = format!(
        "import fcntl, os, signal, struct, time\n\
         r, w = os.pipe()\n\
         for what, call in [('setown', lambda: fcntl.fcntl(r, fcntl.F_SETOWN, {pid})),\n\
                            ('setown_ex', lambda: fcntl.fcntl(r, 15, struct.pack('ii', 1, {pid}))),\n\
                            ('own', lambda: fcntl.fcntl(r, fcntl.F_SETOWN, os.getpid()))]:\n\
         \x20   try:\n\
         \x20       call(); print(what, 'ok')\n\
         \x20   except OSError as e:\n\
         \x20       print(what, e.errno)\n\
         fcntl.fcntl(r, 10, signal.SIGKILL)\n\
         fcntl.fcntl(r, fcntl.F_SETFL, os.O_ASYNC | os.O_NONBLOCK)\n"
    );
    let out = Command::new(common::sandbox_bin())
        .args(["run", "--landlock", "off", "--", "/usr/bin/python3", "-c", &script])
        .current_dir(w.path())
        .output()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let alive = outside.try_wait().unwrap().is_none();
    let _ = outside.kill();
    let _ = outside.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(alive, "the outside process was killed: {text}");
    for want in [format!("setown {}", libc::ESRCH), format!("setown_ex {}", libc::ESRCH)] {
        assert!(stdout.lines().any(|l| l == want), "{want}: {text}");
    }
    assert!(stdout.lines().any(|l| l == "own ok"), "{text}");
    // A group the sandbox leads that holds a process outside it: with job control a shell puts
    // a pipeline in its first command's group. SIGIO to that group would reach the next command.
    let script = "import fcntl, os, signal\n\
                  r, w = os.pipe()\n\
                  try:\n\
                  \x20   fcntl.fcntl(r, fcntl.F_SETOWN, -os.getpgrp()); print('group ok')\n\
                  except OSError as e:\n\
                  \x20   print('group', e.errno)\n\
                  fcntl.fcntl(r, 10, signal.SIGTERM)\n\
                  fcntl.fcntl(r, fcntl.F_SETFL, os.O_ASYNC | os.O_NONBLOCK)\n\
                  signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
                  os.write(w, b'x')\n";
    let pipeline = format!(
        "set -m; {sbx} run --landlock off -- /usr/bin/python3 -c \"$S\" | (sleep 1; echo survived)",
        sbx = common::sandbox_bin().display()
    );
    let out = Command::new("/bin/bash")
        .args(["-c", &pipeline])
        .env("S", script)
        .current_dir(w.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("survived"), "the pipeline's next command was signalled: {text}");
}
