//! Differential tests of system calls and options the sandbox forwards with validation or
//! emulates (tests/c/net_*.c, tty_*.c, xattr.c, sysv_*.c, aio.c, time_*.c, mem_mincore.c,
//! proc_prlimit.c): each program runs natively and under `sandbox run`, built `-static`,
//! `-static-pie` and, where glibc's dynamic build takes another path, plain dynamic. Exit
//! status, stdout and the files left behind must be equal, and each test checks the native
//! output for what the program is known to print, so a sandbox that refuses the call (what it
//! did before these calls were supported) fails.
//!
//! None of the programs changes anything outside its working directory: the clock and host
//! name calls only take error paths (invalid values the kernel rejects before any
//! permission or change), and SysV IPC objects are private and removed.
#[macro_use]
mod common;

use common::{Cmd, Link, assert_same, build_c};
use std::process::Command;
use std::time::Duration;

/// Limit for one run (each side).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Defines the module `<name>` with tests `static_` and `static_pie`.
macro_rules! both_links {
    ($name:ident, |$link:ident| $body:block) => {
        link_tests!("sandbox::calls", $name, [static_ => Static, static_pie => StaticPie], |$link| $body);
    };
}

/// Defines the module `<name>` with tests `static_`, `static_pie` and `dynamic`.
macro_rules! all_links {
    ($name:ident, |$link:ident| $body:block) => {
        link_tests!("sandbox::calls", $name, [static_ => Static, static_pie => StaticPie, dynamic => Dynamic], |$link| $body);
    };
}

/// Runs C program `name` with `args` both ways; it must succeed natively and end with "done".
/// Returns the native stdout.
fn c_run(name: &str, link: Link, args: &[&str]) -> String {
    let bin = build_c(name, link);
    let cmd = Cmd::new(&bin).args(args).timeout(TIMEOUT).env("LC_ALL", "C");
    let c = assert_same(&format!("{name}-{}", link.suffix()), &cmd);
    c.last().native.assert_success().assert_last_line("done");
    c.last().native.stdout_str()
}

/// Asserts that every line of `lines` occurs in `out` (the native run's output).
fn assert_lines(out: &str, lines: &[&str]) {
    for l in lines {
        assert!(out.lines().any(|x| x == *l), "missing line {l:?} in the native output:\n{out}");
    }
}

// RFC 3542 options and the rest of the plain socket options (tests/c/net_sockopt.c).
both_links!(socket_options, |link| {
    let out = c_run("net_sockopt", link, &[]);
    assert_lines(
        &out,
        &[
            "set IPV6_RECVHOPLIMIT=1: 0",
            "get IPV6_RECVHOPLIMIT: 0 len 4 value 1",
            "set IPV6_RECVTCLASS=1: 0",
            "get IPV6_RECVTCLASS: 0 len 4 value 1",
            "datagram one: pktinfo=::1 hoplimit=17 tclass=0x28 origdstaddr",
            "datagram two: pktinfo=::1 hoplimit=5 tclass=0x28 origdstaddr",
            "get IPV6_PATHMTU connected: 0 len 32 mtu 65536",
            "get IP_LOCAL_PORT_RANGE: 0 30000-40000",
            "get SO_COOKIE: 0 len 8 nonzero 1",
            "get SO_PEERPIDFD: 0 descriptor 1",
            "get TCP_INQ: 0 len 4 value 1",
            "get NETLINK_EXT_ACK: 0 len 4 value 1",
        ],
    );
});

// Extended-attribute writes and their errors (tests/c/xattr.c).
both_links!(xattr_writes, |link| {
    let out = c_run("xattr", link, &[]);
    assert_lines(
        &out,
        &[
            "setxattr user.a: 0",
            "getxattr user.a: 8 \"replaced\"",
            "setxattr XATTR_REPLACE missing: ENODATA",
            "setxattr long name: ERANGE",
            "setxattr 65537 bytes: E2BIG",
            "lsetxattr symlink: EPERM",
            "fgetxattr: 5 \"by fd\"",
            "listxattr: 39 user.a user.empty user.fd user.through",
            "removexattr user.a again: ENODATA",
            "getxattrat: 8 \"at value\"",
            "setxattrat non-zero tail: E2BIG",
            "listxattr: 50 user.empty user.empty_path user.tail user.through",
        ],
    );
});

// Network-interface ioctls: SIOCGIFCONF with its nested buffer, SIOCGIFINDEX/NAME/FLAGS/...,
// if_nametoindex and if_nameindex (tests/c/net_ifconf.c).
all_links!(network_interface_ioctls, |link| {
    let out = c_run("net_ifconf", link, &[]);
    assert_lines(
        &out,
        &[
            "SIOCGIFCONF NULL buffer: 0 length multiple of ifreq 1, some 1",
            "SIOCGIFCONF: 0 length as queried 1",
            "SIOCGIFCONF lo: 127.0.0.1",
            "SIOCGIFCONF one entry: 0 length 40",
            "if_nametoindex(lo) > 0: 1",
            "if_indextoname: lo",
            "if_nametoindex(nosuch0): 0 ENODEV",
            "SIOCGIFINDEX: 0 same as if_nametoindex 1",
            "SIOCGIFNAME: 0 lo",
            "SIOCGIFFLAGS: 0 up 1 loopback 1",
            "SIOCGIFADDR: 0 127.0.0.1",
            "SIOCGIFINDEX nosuch0: ENODEV",
            "SIOCGIFFLAGS on a file: ENOTTY",
            "SIOCGIFCONF on a file: ENOTTY",
        ],
    );
});

// The termios and pty ioctls, and forkpty (tests/c/tty_pty.c).
all_links!(terminal_ioctls_and_forkpty, |link| {
    let out = c_run("tty_pty", link, &[]);
    assert_lines(
        &out,
        &[
            "locked: 0",
            "ptsname matches TIOCGPTN: 1",
            "TIOCGPTPEER: ok isatty 1",
            "after raw: echo 0 icanon 0",
            "after TCSETA: echo 1 icanon 1",
            "TCGETS2: 0",
            "window 24x80",
            "queued some 1",
            "exclusive 1",
            "TIOCSCTTY not session leader: EPERM",
            "from pty: child isatty 111",
            "from pty: child session leader 1, TIOCGSID 1, foreground TIOCGPGRP 1",
            "from pty: child window 1 30x100, /dev/tty opens 1",
            "child exit 3",
            "TCGETS on a file: ENOTTY",
        ],
    );
});

/// The answer the kernel gives to an invalid setting: `EINVAL` for a privileged caller, `EPERM`
/// otherwise (it checks the privilege first).
fn invalid_setting() -> &'static str {
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let root = unsafe { libc::geteuid() } == 0;
    if root { "EINVAL" } else { "EPERM" }
}

// adjtimex (with its read-only query), clock_adjtime, clock_settime, settimeofday,
// sethostname and setdomainname: forwarded, the kernel checks (tests/c/time_settings.c).
both_links!(clock_and_host_name_settings, |link| {
    let out = c_run("time_settings", link, &[]);
    let e = invalid_setting();
    let lines = [
        "adjtimex read: a clock state 1".to_owned(),
        "adjtimex tick plausible 1".to_owned(),
        "adjtimex ADJ_OFFSET_SS_READ: a clock state 1".to_owned(),
        "adjtimex ADJ_ADJTIME without SINGLESHOT: EINVAL".to_owned(),
        format!("adjtimex ADJ_TICK out of range: {e}"),
        "adjtimex NULL: EFAULT".to_owned(),
        "clock_adjtime REALTIME read: a clock state 1".to_owned(),
        "clock_adjtime MONOTONIC: EOPNOTSUPP".to_owned(),
        "clock_settime negative nanoseconds: EINVAL".to_owned(),
        "settimeofday negative microseconds: EINVAL".to_owned(),
        format!("settimeofday time zone beyond 15 hours: {e}"),
        format!("sethostname 100 bytes: {e}"),
        format!("sethostname negative length: {e}"),
        format!("setdomainname 100 bytes: {e}"),
        "host name unchanged 1, domain name unchanged 1".to_owned(),
    ];
    assert_lines(&out, &lines.iter().map(String::as_str).collect::<Vec<_>>());
});

// Under process confinement the host's clock and names are refused, but in the order and with
// the errnos Linux gives a program without the capability: invalid requests EINVAL or EFAULT
// first (as a program without CAP_SYS_TIME sees them natively).
both_links!(clock_settings_refused_as_linux_refuses_them, |link| {
    let bin = build_c("time_settings", link);
    let out = Command::new(common::sandbox_bin())
        .args(["run", "--policy", "deny-net", "--"])
        .arg(&bin)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for l in [
        "clock_settime negative nanoseconds: EINVAL",
        "clock_settime MONOTONIC: EINVAL",
        "clock_settime NULL: EFAULT",
        "settimeofday negative microseconds: EINVAL",
        "settimeofday bad time pointer: EFAULT",
        "settimeofday time zone beyond 15 hours: EPERM",
        "sethostname 100 bytes: EPERM",
        "host name unchanged 1, domain name unchanged 1",
    ] {
        assert!(text.lines().any(|x| x == l), "missing {l:?}:\n{text}");
    }
});

// prlimit64 on a forked child and on one's own thread ids (tests/c/proc_prlimit.c).
all_links!(prlimit_children_and_threads, |link| {
    let out = c_run("proc_prlimit", link, &[]);
    assert_lines(
        &out,
        &[
            "child sees RLIMIT_CORE soft 0",
            "prlimit child NOFILE read: 0",
            "child NOFILE equals ours 1",
            "prlimit child CORE set: 0",
            "child CORE soft 0",
            "prlimit child soft above hard: EINVAL",
            "prlimit no such process: ESRCH",
            "prlimit reaped child: ESRCH",
            "thread sees AS soft 2^40 1",
        ],
    );
});

// mincore of unmapped memory: ENOMEM (tests/c/mem_mincore.c).
both_links!(mincore_of_unmapped_memory, |link| {
    let out = c_run("mem_mincore", link, &[]);
    assert_lines(
        &out,
        &[
            "mincore all mapped: 0",
            "mincore with a hole: ENOMEM",
            "mincore the hole: ENOMEM",
            "mincore after the hole: 0",
            "mincore PROT_NONE page: 0",
            "mincore read-only vector: EFAULT",
            "mincore after munmap: ENOMEM",
        ],
    );
});

// SysV semaphores, message queues and shared memory (tests/c/sysv_ipc.c).
all_links!(sysv_ipc, |link| {
    let out = c_run("sysv_ipc", link, &[]);
    assert_lines(
        &out,
        &[
            "values 1 2 3",
            "GETVAL: 7",
            "mode 640",
            "SETALL above SEMVMX: ERANGE",
            "semtimedop timeout: EAGAIN",
            "semop too many operations: E2BIG",
            "semop waits for the child: 0",
            "msgrcv type 1: 11 type 1 \"first type\"",
            "msgrcv MSG_NOERROR: 3 \"sec\"",
            "msgrcv empty: ENOMSG",
            "msgsnd negative size: EINVAL",
            "msgrcv waits for the child: 15 type 5 \"from the child\"",
            "attached, nattch 1, zero-filled 1",
            "child: second attachment sees \"written by the parent\", nattch 3",
            "parent sees \"written by the child\", nattch 1",
            "shmat over a mapping: EINVAL",
            "shmat SHM_REMAP at the address 1, sees \"written by the parent\"",
            "mincore after shmdt: ENOMEM",
            "shmat SHM_RND rounds down 1, sees \"written by the parent\"",
            "after shmdt nattch 1",
            "mincore of the last piece: ENOMEM",
            "shmdt not an attachment: EINVAL",
            "mremap moved 1, sees \"written by the parent\"",
            "nattch 0",
            "still readable after IPC_RMID \"last page\"",
            "shmat removed: EINVAL",
        ],
    );
});

// Linux AIO: io_setup/io_submit/io_getevents/io_cancel/io_destroy (tests/c/aio.c).
both_links!(linux_aio, |link| {
    let out = c_run("aio", link, &[]);
    assert_lines(
        &out,
        &[
            "io_setup: 0",
            "context id nonzero 1, ring header readable 1",
            "pwrite: events 1, obj is the iocb 1, data 0x11, res 9",
            "aio_key after submit 0",
            "read back \"hello aio\"",
            "pieces \"hell\" \"o aio\"",
            "written by pwritev \"ABCDE\"",
            "io_getevents three: 3, matching their iocbs 3",
            "eventfd count 1",
            "io_submit good then bad opcode: 1",
            "io_submit bad descriptor: EBADF",
            "io_cancel pending poll: EINPROGRESS",
            "cancelled poll event: 1 obj is the iocb 1",
            "poll event: 1 data 0x301 POLLIN 1",
            "child io_submit on the parent's context: EINVAL",
            "io_destroy again: EINVAL",
        ],
    );
});
