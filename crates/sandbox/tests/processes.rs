//! Processes, threads and signals, differential against native runs: Debian's dynamically
//! linked programs (coreutils, dash, bash, python3, sqlite3), busybox's shell with pipelines and
//! background jobs, and our own C programs (tests/c/proc_*.c, sig_*.c, thr_*.c), each built
//! `-static`, `-static-pie` and plain dynamic. Every case runs natively and under
//! `sandbox run` in fresh working directories; exit status (code or signal), stdout (with the
//! working directory's path replaced by `$WORK`) and the files left behind must be equal. Each
//! test also checks the native output for what the program is known to print, so a sandbox
//! that ignores signals, cannot fork or runs nothing fails, and so does a broken harness.
//!
//! Time-based cases use margins of a second or more (alarm at 1 s, the writer at 3 s); they
//! print only booleans about durations, never times or pids.
//!
//! The Ctrl-C tests drive the process themselves: they wait for "ready" on its stdout, send
//! SIGINT to the process they started (the sandbox, or the program natively), and compare how
//! it ended.
#[macro_use]
mod common;

use common::{
    Cmd, Compared, Link, Mode, assert_same, assert_same_steps, assert_same_steps_excluding,
    build_c, command_for, write_file,
};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Limit for Debian's programs (each side): some fork hundreds of processes or sleep on purpose.
const LONG: Duration = Duration::from_secs(240);

/// Limit for our C programs (each side); the slowest sleeps about 6 s on purpose.
const C_TIMEOUT: Duration = Duration::from_secs(120);

/// Defines the module `<name>` with tests `static_`, `static_pie`, `dynamic`, each running the
/// body with `link` set after the KVM gate.
macro_rules! all_links {
    ($name:ident, |$link:ident| $body:block) => {
        link_tests!("sandbox::processes", $name, [static_ => Static, static_pie => StaticPie, dynamic => Dynamic], |$link| $body);
    };
}

/// Defines a single test with the KVM gate.
macro_rules! kvm_test {
    ($name:ident, $body:block) => {
        #[test]
        fn $name() {
            gated!($name);
            $body
        }
    };
}

/// Runs C program `name` (built as `link`) with `args` both ways in directories prepared by
/// `setup`; returns the comparison.
fn c_case(name: &str, link: Link, args: &[&str], setup: impl Fn(&Path)) -> Compared {
    let bin = build_c(name, link);
    let label = format!("{name}-{}-{}", args.join("-"), link.suffix());
    let cmd = Cmd::new(&bin).args(args).timeout(C_TIMEOUT).env("LC_ALL", "C");
    assert_same_steps(&label, setup, &[cmd])
}

/// Like [`c_case`] without setup.
fn c_run(name: &str, link: Link, args: &[&str]) -> Compared {
    c_case(name, link, args, |_| {})
}

/// The native stdout of the last step.
fn native_out(c: &Compared) -> String {
    c.last().native.stdout_str()
}

/// Asserts that every line of `lines` occurs in `out` (a check of the native run).
fn assert_lines(out: &str, lines: &[&str]) {
    for l in lines {
        assert!(out.lines().any(|x| x == *l), "missing line {l:?} in the native output:\n{out}");
    }
}

/// Asserts the native run exited with `code`.
fn assert_native_code(c: &Compared, code: i32) {
    let n = &c.last().native;
    assert_eq!(n.code(), Some(code), "native exit status\n{}", n.report());
}

/// Asserts the native run died of `sig`.
fn assert_native_signal(c: &Compared, sig: i32) {
    let n = &c.last().native;
    assert_eq!(n.signal(), Some(sig), "native run should die of signal {sig}\n{}", n.report());
}

/// Fails (not skips) unless `path` exists, naming the Debian package that provides it.
fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install the Debian package {package} (a provisioned dependency of \
         these tests: `cargo xtask test` installs it, or `apt-get install {package}`)"
    );
}

// =============================================================================================
// a. Debian's dynamically linked programs
// =============================================================================================

/// A deterministic tree for ls/cat/sort: fixed contents, modes and mtimes.
fn tree_fixture(dir: &Path) {
    write_file(dir, "tree/a.txt", "alpha\nbeta\ngamma\n");
    write_file(dir, "tree/b.txt", "x".repeat(5000));
    write_file(dir, "tree/sub/c.txt", "3\n1\n2\n");
    write_file(dir, "tree/sub/deeper/d.bin", common::pseudo_random(3000, 11));
    write_file(dir, "tree/script.sh", "#!/bin/sh\necho hi\n");
    write_file(dir, "words.txt", words(400));
    write_file(dir, "nums.txt", nums(5000));
    write_file(dir, "big.txt", big_lines(120_000));
    std::fs::create_dir(dir.join("tree/empty")).expect("mkdir tree/empty");
    std::os::unix::fs::symlink("a.txt", dir.join("tree/link")).expect("symlink");
    for f in ["tree/a.txt", "tree/b.txt", "tree/sub/c.txt", "tree/sub/deeper/d.bin"] {
        common::chmod(dir, f, 0o644);
    }
    for f in ["words.txt", "nums.txt", "big.txt"] {
        common::chmod(dir, f, 0o644);
    }
    common::chmod(dir, "tree/script.sh", 0o755);
    common::chmod(dir, "tree/sub/deeper/d.bin", 0o600);
    for d in ["tree", "tree/sub", "tree/sub/deeper"] {
        common::chmod(dir, d, 0o755);
    }
    common::chmod(dir, "tree/empty", 0o700);
    common::set_mtimes_recursive(dir, common::FIXED_TIME);
}

const WORDS: [&str; 10] =
    ["pear", "apple", "fig", "kiwi", "banana", "cherry", "date", "lime", "plum", "grape"];

fn words(n: usize) -> String {
    (0..n).map(|i| format!("{}\n", WORDS[(i * i + 7 * i) % WORDS.len()])).collect()
}

fn nums(n: usize) -> String {
    (0..n).map(|i| format!("{}\n", (i * 7919 + 17) % 10007)).collect()
}

fn big_lines(n: usize) -> String {
    (0..n).map(|i| format!("{} line {i} {}\n", (i * 104_729) % 1_000_003, WORDS[i % 10])).collect()
}

/// A Debian program with TZ=UTC and LC_ALL=C.
fn deb(program: &str, args: &[&str]) -> Cmd {
    Cmd::new(program).args(args).env("TZ", "UTC").env("LC_ALL", "C").timeout(LONG)
}

kvm_test!(debian_ls_la, {
    require("/bin/ls", "coreutils");
    let c = assert_same_steps(
        "deb-ls",
        tree_fixture,
        &[
            deb("/bin/ls", &["-la", "tree"]),
            deb("/bin/ls", &["-laR", "--color=never", "tree"]),
            deb("/bin/ls", &["-la", "tree/missing", "tree/a.txt"]),
        ],
    );
    let out = c.steps[0].native.stdout_str();
    assert!(out.starts_with("total "), "{out}");
    assert!(out.contains(" Sep 13  2020 a.txt\n"), "{out}");
    assert!(out.contains("link -> a.txt\n"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("drwx------ ") && l.ends_with(" empty")), "{out}");
    assert!(c.steps[1].native.stdout_str().contains("tree/sub/deeper:\n"));
    assert_eq!(c.steps[2].native.code(), Some(2));
});

kvm_test!(debian_cat, {
    require("/bin/cat", "coreutils");
    let c = assert_same_steps(
        "deb-cat",
        tree_fixture,
        &[
            deb("/bin/cat", &["tree/a.txt", "tree/sub/c.txt"]),
            deb("/bin/cat", &["-n", "-"]).stdin("one\ntwo\n"),
            deb("/bin/cat", &["tree/sub/deeper/d.bin", "big.txt"]),
            deb("/bin/cat", &["nope.txt"]),
        ],
    );
    assert_eq!(c.steps[0].native.stdout_str(), "alpha\nbeta\ngamma\n3\n1\n2\n");
    assert_eq!(c.steps[1].native.stdout_str(), "     1\tone\n     2\ttwo\n");
    assert_eq!(c.steps[2].native.stdout.len(), 3000 + big_lines(120_000).len());
    assert_eq!(c.steps[3].native.code(), Some(1));
});

kvm_test!(debian_sort, {
    require("/usr/bin/sort", "coreutils");
    let c = assert_same_steps(
        "deb-sort",
        tree_fixture,
        &[
            deb("/usr/bin/sort", &["words.txt"]),
            deb("/usr/bin/sort", &["-n", "-u", "nums.txt"]),
            deb("/usr/bin/sort", &["-k3,3", "-k1,1nr", "-o", "sorted.txt", "big.txt"]),
            // Several threads (GNU sort's --parallel) on 120,000 lines.
            deb("/usr/bin/sort", &["--parallel=4", "-S", "64M", "-n", "big.txt"]),
            // A small buffer: temporary files in the working directory, merged at the end.
            deb("/usr/bin/sort", &["-S", "100K", "-T", ".", "-r", "big.txt"]),
        ],
    );
    let mut w: Vec<String> = words(400).lines().map(|l| format!("{l}\n")).collect();
    w.sort();
    assert_eq!(c.steps[0].native.stdout_str(), w.concat());
    let out3 = c.steps[3].native.stdout_str();
    assert_eq!(out3.lines().count(), 120_000);
    assert!(out3.starts_with("0 line 0 pear\n"), "{}", &out3[..100]);
    assert!(c.native_dir.join("sorted.txt").exists());
});

/// The script for `dash`: pipelines, subshells, command substitution (nested), redirections
/// to files in the working directory, here-documents, traps, `set -e` interplay.
const DASH_SCRIPT: &str = r#"set -e
printf '%s\n' cherry apple banana apple date > fruits.txt
sort fruits.txt | uniq -c | sort -rn > counts.txt
echo "lines: $(wc -l < fruits.txt)"
n=$(grep -c apple fruits.txt)
echo "apples: $n"
( cd /; echo "subshell in $(pwd)"; exit 3 ) || echo "subshell exit $?"
echo "still in $PWD"
{ echo one; echo two >&2; } > out.txt 2> err.txt
cat out.txt err.txt
x=$( (echo inner; echo nested-$(echo deep)) | tr a-z A-Z )
echo "$x"
echo appended >> out.txt
exec 3> fd3.txt; echo "via fd 3" >&3; exec 3>&-
cat < fd3.txt
for f in *.txt; do printf '%s:%s\n' "$f" "$(wc -c < "$f")"; done
false | true && echo "pipeline status is the last command's"
if ! grep -q zebra fruits.txt; then echo "no zebra"; fi
echo "case: $(case banana in b*) echo b-word;; *) echo other;; esac)"
cat <<EOT | tr a-z A-Z
here $n document
EOT
echo "a b c" | while read p q r; do echo "read $r $q $p"; done
seq 1 2000 | tail -n 1
trap 'echo trapped EXIT' EXIT
exit 5
"#;

kvm_test!(debian_dash_script, {
    require("/usr/bin/dash", "dash");
    let c = assert_same_steps(
        "deb-dash-script",
        |d| write_file(d, "script.sh", DASH_SCRIPT),
        &[deb("/usr/bin/dash", &["script.sh"])],
    );
    assert_native_code(&c, 5);
    let out = native_out(&c);
    assert_lines(
        &out,
        &[
            "lines: 5",
            "apples: 2",
            "subshell in /",
            "subshell exit 3",
            "INNER",
            "NESTED-DEEP",
            "via fd 3",
            "pipeline status is the last command's",
            "no zebra",
            "case: b-word",
            "HERE 2 DOCUMENT",
            "read c b a",
            "2000",
            "trapped EXIT",
        ],
    );
    assert!(out.contains(&format!("still in {}\n", c.native_dir.path().display())), "{out}");
    let counts = std::fs::read_to_string(c.native_dir.join("counts.txt")).unwrap();
    assert!(counts.starts_with("      2 apple\n"), "{counts}");
    assert_eq!(std::fs::read_to_string(c.native_dir.join("err.txt")).unwrap(), "two\n");
    assert_eq!(std::fs::read_to_string(c.native_dir.join("out.txt")).unwrap(), "one\nappended\n");
});

kvm_test!(debian_dash_fork_exec_loop, {
    require("/usr/bin/dash", "dash");
    require("/bin/true", "coreutils");
    let script = "i=0; while [ $i -lt 200 ]; do /bin/true || exit 1; i=$((i+1)); done; echo done";
    let c = assert_same("deb-dash-200-forks", &deb("/usr/bin/dash", &["-c", script]));
    c.last().native.assert_success();
    assert_eq!(native_out(&c), "done\n");
    assert_eq!(c.last().sandboxed.stdout_str(), "done\n");
});

const BASH_SCRIPT: &str = r#"f() { local a=$1; echo "f got $a and $#"; return 4; }
f x y; echo "status $?"
arr=(zero one "two words" three); arr+=(four)
echo "${#arr[@]} ${arr[2]} ${arr[@]:1:2}"
declare -A m=([k]=v [a]=b); for k in $(printf '%s\n' "${!m[@]}" | sort); do echo "m[$k]=${m[$k]}"; done
s=$(printf '%s\n' c a b | sort | head -2 | tr '\n' ,); echo "$s"
for i in {1..5}; do echo -n "$i"; done; echo
mapfile -t lines < <(seq 3); echo "${lines[*]}"
(exit 7); echo "subshell $?"
false | true | (exit 3); echo "pipestatus ${PIPESTATUS[*]}"
x=abcdef; echo ${x^^} ${x:2:2} ${x/cd/CD}
coproc { read l; echo "co:$l"; }; echo hi >&${COPROC[1]}; read r <&${COPROC[0]}; echo "$r"; wait
echo "$(( 6 * 7 )) $(echo $(echo nested))"
sleep 0.1 & wait $!; echo "background waited $?"
"#;

kvm_test!(debian_bash_c, {
    require("/usr/bin/bash", "bash");
    let c = assert_same("deb-bash-c", &deb("/usr/bin/bash", &["-c", BASH_SCRIPT]));
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "f got x and 2",
            "status 4",
            "5 two words one two words",
            "m[a]=b",
            "m[k]=v",
            "a,b,",
            "12345",
            "1 2 3",
            "subshell 7",
            "pipestatus 1 0 3",
            "ABCDEF cd abCDef",
            "co:hi",
            "42 nested",
            "background waited 0",
        ],
    );
});

const PYTHON_SCRIPT: &str = r#"
import json, hashlib, threading, subprocess, signal, time
data = {"b": [1, 2, {"c": None}], "a": "text", "n": 1.5}
s = json.dumps(data, sort_keys=True)
print(s)
print("round trip", json.loads(s) == data)
print(hashlib.sha256(b"sandbox" * 1000).hexdigest())
print(hashlib.md5(s.encode()).hexdigest())
lock = threading.Lock()
counter = 0
def work():
    global counter
    for _ in range(10000):
        with lock:
            counter += 1
ts = [threading.Thread(target=work) for _ in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print("counter", counter)
r = subprocess.run(["echo", "x"], capture_output=True, text=True)
print("subprocess", repr(r.stdout), r.returncode)
r = subprocess.run(["sh", "-c", "exit 3"])
print("sh exit", r.returncode)
class Alarm(Exception): pass
def on_alarm(sig, frame):
    raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
signal.alarm(1)
t0 = time.monotonic()
try:
    time.sleep(20)
    print("sleep not interrupted")
except Alarm:
    print("alarm fired during sleep", time.monotonic() - t0 < 15)
fired = []
signal.signal(signal.SIGALRM, lambda s, f: fired.append(s))
signal.setitimer(signal.ITIMER_REAL, 0.2)
time.sleep(1)
print("handler ran and the sleep resumed", fired == [signal.SIGALRM])
"#;

kvm_test!(debian_python3, {
    require("/usr/bin/python3", "python3");
    let cmd = Cmd::new("/usr/bin/python3")
        .args(["-c", PYTHON_SCRIPT])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", "C.UTF-8")
        .timeout(LONG);
    let c = assert_same("deb-python3", &cmd);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            r#"{"a": "text", "b": [1, 2, {"c": null}], "n": 1.5}"#,
            "round trip True",
            "cff72789290e05f2e86b4a7e81f66f66dcff7eb6b4876f6d8f8c187c0a114f05",
            "counter 80000",
            "subprocess 'x\\n' 0",
            "sh exit 3",
            "alarm fired during sleep True",
            "handler ran and the sleep resumed True",
        ],
    );
});

const SQL_CREATE: &str = "CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, val INTEGER, \
     name TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000)
  INSERT INTO t SELECT x, x % 7, (x * 7919) % 10007, 'name-' || x FROM c;
CREATE INDEX t_grp ON t(grp);
SELECT count(*), sum(val), min(val), max(val), avg(val) FROM t;
SELECT grp, count(*), sum(val), max(name) FROM t GROUP BY grp ORDER BY grp;
SELECT name FROM t WHERE val BETWEEN 100 AND 120 ORDER BY id;
SELECT total_changes();";

kvm_test!(debian_sqlite3, {
    require("/usr/bin/sqlite3", "sqlite3");
    let sq = |args: &[&str]| deb("/usr/bin/sqlite3", args);
    // The database's bytes may differ in header counters: compare query results and .dump.
    let c = assert_same_steps_excluding(
        "deb-sqlite3",
        |_| {},
        &[
            sq(&["t.db", SQL_CREATE]),
            sq(&[
                "t.db",
                "UPDATE t SET val = val + 1 WHERE grp = 3; DELETE FROM t WHERE id > 9990; \
                 SELECT count(*), sum(val) FROM t; PRAGMA integrity_check;",
            ]),
            sq(&["t.db", ".dump"]),
            sq(&["-batch", "t.db"]).stdin(".mode csv\nSELECT * FROM t WHERE id % 1000 = 0;\n"),
        ],
        &["t.db", "t.db-journal"],
    );
    for s in &c.steps {
        s.native.assert_success();
    }
    let out0 = c.steps[0].native.stdout_str();
    assert!(out0.starts_with("10000|50041187|1|10006|5004.1187\n"), "{out0}");
    assert!(out0.trim_end().ends_with("\n10000"), "{out0}");
    assert!(c.steps[1].native.stdout_str().ends_with("ok\n"));
    let dump = c.steps[2].native.stdout_str();
    assert!(dump.starts_with("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n"), "{dump:.200}");
    assert_eq!(dump.matches("INSERT INTO t VALUES").count(), 9990);
    assert_eq!(c.steps[3].native.stdout_str().lines().count(), 9);
    assert!(c.sandboxed_dir.join("t.db").exists(), "the sandboxed run left no database");
});

// =============================================================================================
// b. busybox's shell: pipelines and background jobs
// =============================================================================================

const BUSYBOX_SCRIPT: &str = r#"printf '%s\n' delta alpha charlie bravo alpha > w.txt
cat w.txt | sort | uniq -c | sort -rn | head -2
(sleep 0.3; echo slow > bg1.txt) & p1=$!
echo fast > bg2.txt &
wait
cat bg1.txt bg2.txt
sleep 0.2 & wait $!; echo "wait status $?"
(exit 9) & wait $!; echo "background exit $?"
echo a b c | tr ' ' '\n' | wc -l
x=$(echo sub | tr a-z A-Z); echo "$x"
seq 1 1000 | md5sum
yes | head -n 3
for i in 1 2 3 4 5; do (echo "job $i" > job$i.txt) & done; wait; cat job*.txt | sort | tr '\n' ' '; echo
"#;

kvm_test!(busybox_sh_pipes_and_jobs, {
    let bb = "/bin/busybox";
    match common::is_static_elf(Path::new(bb)) {
        Ok(true) => {}
        _ => panic!("{bb} is not a static ELF: install the Debian package busybox-static"),
    }
    let c = assert_same("busybox-sh-jobs", &deb(bb, &["sh", "-c", BUSYBOX_SCRIPT]));
    c.last().native.assert_success();
    assert_eq!(
        native_out(&c),
        "      2 alpha\n      1 delta\nslow\nfast\nwait status 0\nbackground exit 9\n3\nSUB\n\
         53d025127ae99ab79e8502aae2d9bea6  -\ny\ny\ny\njob 1 job 2 job 3 job 4 job 5 \n"
    );
});

// =============================================================================================
// c. Our own C programs
// =============================================================================================

// SIGBUS beyond the end of a mapped file: si_code and si_addr as Linux reports them (loads,
// stores, an access crossing into the page, rep movsb either way, xlatb, a code fetch), and
// death by SIGBUS without a handler.
all_links!(sigbus_beyond_end_of_file, |link| {
    let c = c_run("sig_bus", link, &[]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "shared: byte past EOF in the last page: no fault",
            "shared: 1-byte load: SIGBUS si_code 2 at mapping offset 8269",
            "private: 8-byte load across: SIGBUS si_code 2 at mapping offset 8192",
            "private: rep movsb into it: SIGBUS si_code 2 at mapping offset 8192",
            "shared: xlatb: SIGBUS si_code 2 at mapping offset 8240",
            "shared: rep movsb writing there: SIGBUS si_code 2 at mapping offset 8704",
            "private: code fetch: SIGBUS si_code 2 at mapping offset 8256",
            "done",
        ],
    );
    let c = c_run("sig_bus", link, &["die"]);
    assert_eq!(c.last().native.status.signal(), Some(libc::SIGBUS));
});

// The running executable cannot be written or truncated (ETXTBSY), in a forked child either;
// a copy of it can.
all_links!(running_executable_is_text_busy, |link| {
    let c = c_run("proc_txtbsy", link, &[]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "parent: open O_WRONLY: ETXTBSY",
            "parent: open O_RDONLY|O_TRUNC: ETXTBSY",
            "parent: truncate: ETXTBSY",
            "child: open O_RDWR: ETXTBSY",
            "copy: open O_WRONLY: ok",
            "done",
        ],
    );
});

// Robust mutexes: an owner thread or process that ends holding one (exit, abort, execve, with
// and without a waiter) hands it to the next locker with EOWNERDEAD.
all_links!(robust_mutex_owner_death, |link| {
    let c = c_run("thr_robust", link, &[]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "thread exited holding it: EOWNERDEAD",
            "waiting while the owner thread exits: EOWNERDEAD",
            "process exited holding it: EOWNERDEAD",
            "waiting while the owner process exits: EOWNERDEAD",
            "owner process aborted: EOWNERDEAD",
            "owner process called execve: EOWNERDEAD",
            "exit_group while a thread retakes it: 0 of 8 rounds orphaned",
            "done",
        ],
    );
});

// 16 threads, mutex and condition variables, 1,000,000 increments.
all_links!(threads_mutex_condvar, |link| {
    let c = c_run("thr_counter", link, &[]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "all 16 threads waiting for the start signal; counter 0",
            "total 1000000 (expected 1000000)",
            "join values ok 1, thread ids distinct 1, main tls untouched 1",
            "done",
        ],
    );
});

// 300 threads created and joined in turn, then 40 rounds of 8 at once.
all_links!(thread_churn, |link| {
    let c = c_run("thr_churn", link, &[]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "300 threads one after the other: 300 ran",
            "40 rounds of 8 concurrent threads: 320 ran",
            "done",
        ],
    );
});

// Thread creation while the process is flooded with a handled signal.
all_links!(thread_creation_under_signals, |link| {
    let c = c_run("thr_churn", link, &["storm"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &["40 threads under a signal storm: 40 ran, signals handled 1", "done"],
    );
});

// SIGSEGV handlers that recover (return and siglongjmp), si_code and si_addr.
all_links!(segv_handler_recovers, |link| {
    let c = c_run("sig_segv", link, &[]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "read PROT_NONE, handler returns: handled 1, signo ok 1, si_code 2 (SEGV_ACCERR), \
             si_addr matched 1, mask kept 1, rip 1",
            "  value read after the retry: a",
            "write PROT_NONE, handler returns: handled 1, signo ok 1, si_code 2 (SEGV_ACCERR), \
             si_addr matched 1, mask kept 1, rip 1",
            "  value stored: W",
            "write PROT_READ, siglongjmp: handled 1, signo ok 1, si_code 2 (SEGV_ACCERR), \
             si_addr matched 1, mask kept 1, rip 1",
            "  SIGSEGV blocked after siglongjmp: 0",
            "read unmapped, siglongjmp: handled 1, signo ok 1, si_code 1 (SEGV_MAPERR), \
             si_addr matched 1, mask kept 1, rip 1",
            "200 protect/fault/unprotect rounds: 200 faults handled, 200 addresses matched, \
             200 stores landed",
            "done",
        ],
    );
});

// SIGTSTP to a program in an orphaned process group (its session leader's parent is in another
// session) is discarded, as Linux does, instead of stopping the sandbox forever; elsewhere it
// stops the sandbox with SIGTSTP itself (the parent's WSTOPSIG).
kvm_test!(tstp_in_orphaned_process_group_is_discarded, {
    let sandbox = common::sandbox_bin();
    let script = "$0 \"$@\" & p=$!; sleep 0.3; kill -TSTP $p; wait $p; echo status $?";
    for prefix in
        [vec![], vec![sandbox.clone(), "run".into(), "--policy".into(), "null".into(), "--".into()]]
    {
        let mut cmd = std::process::Command::new("timeout");
        cmd.args(["20", "setsid", "-w", "sh", "-c", script]).args(&prefix);
        cmd.args(["/bin/sleep", "1"]);
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout, "status 0\n", "{prefix:?}: {out:?}");
    }
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new(&sandbox)
        .args(["run", "--policy", "null", "--", "/bin/sleep", "2"])
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    std::thread::sleep(Duration::from_millis(400));
    let mut st = 0;
    // SAFETY: kill/waitpid on our own child, not yet reaped.
    unsafe {
        libc::kill(pid, libc::SIGTSTP);
        assert_eq!(libc::waitpid(pid, &mut st, libc::WUNTRACED), pid);
        libc::kill(pid, libc::SIGCONT);
    }
    let stopped = libc::WIFSTOPPED(st).then(|| libc::WSTOPSIG(st));
    assert_eq!(stopped, Some(libc::SIGTSTP), "status {st:#x}");
    assert!(child.wait().unwrap().success());
});

// --trace=FILE: one strace-style line per call, arguments decoded (paths, the start of written
// data, open flags, execve's argv), errors by name, the exit; written as they happen.
kvm_test!(trace_is_strace_style, {
    require("/bin/busybox", "busybox-static");
    let dir = common::WorkDir::new("trace-lines");
    let out = std::process::Command::new(common::sandbox_bin())
        .current_dir(dir.path())
        .args([
            "run",
            "--policy",
            "null",
            "--trace=t.txt",
            "--",
            "/bin/busybox",
            "cat",
            "missing-file",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let trace = std::fs::read_to_string(dir.join("t.txt")).unwrap();
    let first = trace.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(r#"execve("/bin/busybox", ["/bin/busybox", "cat", "missing-file"], 0x"#)
            && first.ends_with(" vars */) = 0"),
        "the trace starts with the execve that started the program:\n{trace}"
    );
    for line in [
        "openat(AT_FDCWD, \"missing-file\", O_RDONLY, 0) = -1 ENOENT (No such file or directory)",
        "write(2, \"cat: can't open 'missing-file': \"..., 58) = 58",
        "exit_group(1) = ?",
        "+++ exited with 1 +++",
    ] {
        assert!(trace.lines().any(|l| l == line), "no line {line:?} in the trace:\n{trace}");
    }
    // A delivered signal, a forked child's exit, and death by a signal, named.
    let out = std::process::Command::new(common::sandbox_bin())
        .current_dir(dir.path())
        .args(["run", "--policy", "null", "--trace=s.txt", "--", "/bin/busybox", "sh", "-c"])
        .arg("/bin/busybox true; kill -USR1 $$")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGUSR1), "{out:?}");
    let trace = std::fs::read_to_string(dir.join("s.txt")).unwrap();
    let has = |p: &dyn Fn(&str) -> bool| trace.lines().any(p);
    // The shell's own execve of a program: its path and argv, read before the call replaced
    // the memory they were in.
    assert!(
        has(&|l| l.starts_with(r#"[pid "#)
            && l.contains(r#"] execve("/bin/busybox", ["/bin/busybox", "true"], 0x"#)
            && l.ends_with(" vars */) = 0")),
        "{trace}"
    );
    assert!(has(&|l| l.starts_with("[pid ") && l.ends_with("] +++ exited with 0 +++")), "{trace}");
    assert!(
        has(&|l| l.starts_with("--- SIGUSR1 {si_signo=SIGUSR1, si_code=0, si_pid=")),
        "{trace}"
    );
    assert!(has(&|l| l == "+++ killed by SIGUSR1 +++"), "{trace}");
    // An argument longer than PATH_MAX is shown by its start, not the array as an address.
    let long = "a".repeat(5000);
    let out = std::process::Command::new(common::sandbox_bin())
        .current_dir(dir.path())
        .args(["run", "--policy", "null", "--trace=l.txt", "--", "/bin/busybox", "sh", "-c"])
        .arg(format!("exec /bin/busybox true {long}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let trace = std::fs::read_to_string(dir.join("l.txt")).unwrap();
    let shown =
        format!(r#"execve("/bin/busybox", ["/bin/busybox", "true", "{}"...], 0x"#, &long[..32]);
    assert!(trace.lines().any(|l| l.contains(&shown)), "{trace}");
});

// 100 threads at once (each a vCPU with a descriptor of its own), and fork while they live.
all_links!(a_hundred_threads_and_fork, |link| {
    let c = c_run("thr_many", link, &["100"]);
    c.last().native.assert_success();
    assert_lines(&native_out(&c), &["threads 100 child exit 3", "done"]);
});

// Single-stepping over `syscall`: the same traps as Linux, none inside the system-call path.
all_links!(single_step_over_syscall, |link| {
    let c = c_run("sig_singlestep", link, &[]);
    c.last().native.assert_success();
    assert_lines(&native_out(&c), &["traps 300", "done"]);
});

// sigaltstack: SA_ONSTACK handlers run on it; stack overflow caught there (main and thread).
all_links!(sigaltstack_and_overflow, |link| {
    let c = c_run("sig_altstack", link, &[]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "altstack installed: sp matches 1, size matches 1, flags 0",
            "SA_ONSTACK handler: ran 1, local on altstack 1, SS_ONSTACK 1",
            "plain handler: ran 1, local on altstack 0, SS_ONSTACK 0",
            "main: overflow caught on altstack 1, si_code 1, deep 1",
            "main: second overflow caught on altstack 1",
            "thread: overflow caught on the thread's altstack 1, deep 1",
            "done",
        ],
    );
});

// alarm + SA_RESTART around a blocking pipe read: the read completes.
all_links!(alarm_sa_restart_read, |link| {
    let c = c_run("sig_alarm_restart", link, &["restart"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "mode SA_RESTART: read returned 5 (hello), errno 0, alarm handler ran 1 time(s)",
            "read completed after the alarm: 1",
            "waitpid returned child 1, errno 0, alarms 2",
            "child exit status 7",
        ],
    );
});

// The same without SA_RESTART: EINTR.
all_links!(alarm_no_restart_read, |link| {
    let c = c_run("sig_alarm_restart", link, &["norestart"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "mode no SA_RESTART: read returned -1 (-), errno EINTR, alarm handler ran 1 time(s)",
            "read interrupted before the write: 1",
            "second read returned 5 (hello)",
            "waitpid returned child 0, errno EINTR, alarms 2",
            "second waitpid returned child 1",
        ],
    );
});

// Children that die of signals; the parent's WIFSIGNALED/WTERMSIG; stop/continue.
all_links!(child_killed_by_signal, |link| {
    let c = c_run("proc_wait_status", link, &[]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "exit(7): WIFEXITED, status 7",
            "raise(SIGTERM): WIFSIGNALED, WTERMSIG 15 (TERM)",
            "store to address 16: WIFSIGNALED, WTERMSIG 11 (SEGV)",
            "abort(): WIFSIGNALED, WTERMSIG 6 (ABRT)",
            "SIGTERM ignored, then _exit(5): WIFEXITED, status 5",
            "grandchild raised SIGUSR1 (status 40+sig): WIFEXITED, status 50",
            "child wrote 42 to its copy: WIFEXITED, status 42",
            "parent's copy still 1",
            "SIGKILL from the parent: WIFSIGNALED, WTERMSIG 9 (KILL)",
            "WIFSTOPPED 1, WSTOPSIG 19",
            "WIFCONTINUED 1",
            "SIGKILL after SIGCONT: WIFSIGNALED, WTERMSIG 9 (KILL)",
            "no more children: ECHILD 1",
            "done",
        ],
    );
});

// A stopped and continued child dies of the SIGHUP sent right after (200 rounds).
all_links!(stopped_continued_then_sighup, |link| {
    let c = c_run("proc_wait_status", link, &["stopcont"]);
    c.last().native.assert_success();
    assert_eq!(native_out(&c), "stopped, continued, then killed by SIGHUP: 200 of 200\ndone\n");
});

/// The `#!` scripts for proc_exec_script.c, written into the working directory. The nested
/// ones name their interpreter relative to the working directory (Linux opens a relative
/// interpreter path from the current directory), so both sides' trees are identical.
fn scripts_fixture(dir: &Path) {
    write_file(dir, "plain.sh", "#!/bin/sh\necho \"plain: \\$0=$0 args=$*\"\nexit 3\n");
    write_file(dir, "echo_arg", "#!/bin/echo one  two  \n");
    write_file(dir, "nested", "#!./echo_arg nested-arg\n");
    write_file(dir, "nested2", "#!./nested\n");
    for i in 3..=5 {
        write_file(dir, &format!("nested{i}"), format!("#!./nested{}\n", i - 1));
    }
    write_file(dir, "noshebang", "echo hi\n");
    write_file(dir, "badinterp", "#!/nonexistent/interp\n");
    write_file(dir, "notexec", "#!/bin/sh\necho no\n");
    for f in [
        "plain.sh",
        "echo_arg",
        "nested",
        "nested2",
        "nested3",
        "nested4",
        "nested5",
        "noshebang",
        "badinterp",
    ] {
        common::chmod(dir, f, 0o755);
    }
    common::chmod(dir, "notexec", 0o644);
}

// execve of #! scripts: optional argument, nesting, Linux's depth limit, errors.
all_links!(exec_shebang_scripts, |link| {
    let c = c_case("proc_exec_script", link, &[], scripts_fixture);
    assert_native_code(&c, 3);
    assert_lines(
        &native_out(&c),
        &[
            "plain: $0=./plain.sh args=x y z",
            "plain #!/bin/sh: exit 3",
            "one  two ./echo_arg a b",
            "one  two ./echo_arg nested-arg ./nested n1",
            "one  two ./echo_arg nested-arg ./nested ./nested2 deep",
            "one  two ./echo_arg nested-arg ./nested ./nested2 ./nested3 ./nested4 deepest",
            "five #! rewrites (Linux's limit): exit 0",
            "six #! rewrites: execve failed with ELOOP",
            "no #! line: execve failed with ENOEXEC",
            "missing interpreter: execve failed with ENOENT",
            "not executable: execve failed with EACCES",
            "plain: $0=./plain.sh args=q",
            "plain: $0=./plain.sh args=final",
        ],
    );
});

// execveat of #! scripts: the /dev/fd/N names and the close-on-exec refusal.
all_links!(execveat_shebang_scripts, |link| {
    let c = c_case("proc_exec_script", link, &["execveat"], scripts_fixture);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "plain: $0=/dev/fd/3/plain.sh args=via-execveat",
            "execveat(dirfd, \"plain.sh\"): exit 3",
            "one  two /dev/fd/3 fd-arg",
            "execveat of a close-on-exec script descriptor failed with ENOENT",
            "done",
        ],
    );
});

// A SIGCHLD handler that reaps and counts children; sigsuspend.
all_links!(sigchld_handler_counts, |link| {
    let c = c_run("sig_sigchld", link, &[]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "reaped 8 children, exit codes sum 36 (expected 36), handler ran: 1, siginfo ok 1",
            "sigsuspend returned at least once: 1",
            "reads around the child's exit: 1",
            "reaped 9, sum 45",
            "done",
        ],
    );
});

// SIGCHLD ignored / SA_NOCLDWAIT: children are reaped by the kernel.
all_links!(sigchld_ignored_autoreap, |link| {
    let c = c_run("sig_sigchld", link, &["ignore"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &["with SIGCHLD ignored: waitpid ECHILD", "with SA_NOCLDWAIT: waitpid ECHILD", "done"],
    );
});

// sigprocmask / sigpending / unblocking delivers; sigtimedwait.
all_links!(sigprocmask_pending_sigtimedwait, |link| {
    let c = c_run("sig_mask", link, &[]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "SIGUSR1 blocked: 1",
            "after kill: handler ran 0 times, SIGUSR1 pending 1, SIGUSR2 pending 0",
            "after unblocking: handler ran 1 time(s) (standard signals do not queue)",
            "SIGUSR1 still pending: 0",
            "sigtimedwait: 12 (SIGUSR2 12), si_signo 12, si_code SI_USER, si_pid is mine 1, \
             si_uid matches 1",
            "from a child: 12, si_pid is the child 1",
            "timeout: -1, errno EAGAIN, waited at least 0.25 s 1, at most 5 s 1",
            "poll (zero timeout): -1, errno EAGAIN",
            "sigwait after raise: 12",
            "done",
        ],
    );
});

// Setting a blocked pending signal to SIG_IGN (or SIG_DFL of an ignored one) discards it.
all_links!(ignoring_discards_pending, |link| {
    let c = c_run("sig_mask", link, &["ignore"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "pending before SIG_IGN: 1",
            "pending after SIG_IGN: 0",
            "handler ran after unblocking: 0",
            "SIGWINCH pending after SIG_DFL: 0",
        ],
    );
});

// sigqueue's value reaches sigtimedwait.
all_links!(sigqueue_value, |link| {
    let c = c_run("sig_mask", link, &["sigqueue"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "sigqueue: 0, errno 0",
            "sigtimedwait: 12, si_code SI_QUEUE, value 1234, si_pid is mine 1",
        ],
    );
});

// Real-time signals queue.
all_links!(realtime_signals_queue, |link| {
    let c = c_run("sig_mask", link, &["rt"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "real-time signal deliveries after 3 kills: 3",
            "after 3 sigqueues: 3 deliveries, values 11 22 33",
        ],
    );
});

// SA_RESETHAND: the second delivery is the default action.
all_links!(sa_resethand, |link| {
    let c = c_run("sig_actions", link, &["resethand"]);
    assert_native_signal(&c, libc::SIGUSR1);
    assert_eq!(
        native_out(&c),
        "first SIGUSR1: handler calls 1, action reset inside 1, SIGUSR1 blocked inside 1\n\
         action now SIG_DFL: 1\n"
    );
});

// SA_NODEFER nests, the default defers; sa_mask applies inside the handler.
all_links!(sa_nodefer, |link| {
    let c = c_run("sig_actions", link, &["nodefer"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "without SA_NODEFER: calls 2, max depth 1, SIGUSR2 blocked inside 1",
            "with SA_NODEFER: calls 2, max depth 2, SIGUSR2 blocked inside 0",
            "mask restored after the handlers: USR1 0 USR2 0",
        ],
    );
});

// raise(SIGABRT), abort(), abort() past a returning handler: death by SIGABRT.
all_links!(sigabrt_raise_and_abort, |link| {
    for (mode, first) in [
        ("raise_abrt", "raising SIGABRT\n"),
        ("abort", "calling abort()\n"),
        (
            "abort_handler",
            "calling abort() with a returning SIGABRT handler\nSIGABRT handler ran, returning\n",
        ),
    ] {
        let c = c_run("sig_actions", link, &[mode]);
        assert_native_signal(&c, libc::SIGABRT);
        assert_eq!(native_out(&c), first);
    }
});

// Default action of SIGTERM; ignored SIGTERM/SIGINT; siginfo of kill and raise.
all_links!(default_ignored_and_siginfo, |link| {
    let c = c_run("sig_actions", link, &["term"]);
    assert_native_signal(&c, libc::SIGTERM);
    let c = c_run("sig_actions", link, &["ignored"]);
    c.last().native.assert_success();
    let c = c_run("sig_actions", link, &["siginfo"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "kill: signo ok 1, si_code 0 (SI_USER 0), si_pid ok 1, uc_sigmask ok 1",
            "raise: si_code -6 (SI_TKILL -6)",
        ],
    );
});

// fork isolation, vfork, posix_spawn, popen, clone, fork from a thread, nested forks.
all_links!(fork_vfork_spawn, |link| {
    let c = c_run("proc_fork", link, &[]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "fork: child exit 0",
            "parent sees data 10 stack 20 heap 30 shared 41",
            "vfork + _exit: child exit 6",
            "from vfork+execve",
            "vfork + execve: exit 0",
            "from posix_spawn",
            "posix_spawnp with file actions: exit 0",
            "popen read: popen-line",
            "pclose status: 3",
            "clone(SIGCHLD): exit 17",
            "fork from a thread: child exit 21",
            "nested fork chain depth: 5",
            "32 concurrent children, exit codes sum 496",
            "done",
        ],
    );
    let f = std::fs::read_to_string(c.native_dir.join("fork.txt")).unwrap();
    assert_eq!(f, "parent1\nchild\nparent2\n");
});

// fork while the child is flooded with a handled signal from the moment it exists.
all_links!(fork_under_signals, |link| {
    let c = c_run("proc_fork", link, &["signal_storm"]);
    c.last().native.assert_success();
    assert_eq!(
        native_out(&c),
        "children that ran their handler and exited 7: 50 of 50 (exit 8, no signal seen: 0)\n\
         done\n"
    );
});

// What POSIX guarantees of vfork and posix_spawn (the sandbox runs vfork as fork-and-wait;
// see tests/c/proc_fork.c).
all_links!(vfork_posix_semantics, |link| {
    let c = c_run("proc_fork", link, &["vfork_memory"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "vfork + _exit: child exit 6",
            "posix_spawn of a missing program fails (ENOENT or exit 127): 1",
        ],
    );
});

// Signals and threads: pthread_kill, process signals to the unblocked thread, EINTR.
all_links!(thread_directed_signals, |link| {
    let c = c_run("thr_signals", link, &[]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "pthread_kill: handler runs 1, ran in the target thread 1",
            "kill with the main thread blocking: handler runs 1, in the other thread 1",
            "read interrupted: result -1, errno EINTR, handler in reader 1",
            "new thread inherits the blocked SIGUSR2: 1",
            "main thread's own mask kept: USR2 1 USR1 0",
        ],
    );
});

// A sigwait thread receives a process signal the sending (main) thread blocks.
all_links!(sigwait_thread, |link| {
    let c = c_run("thr_signals", link, &["sigwait"]);
    c.last().native.assert_success();
    assert_lines(&native_out(&c), &["sigwait thread got signal 12 (SIGUSR2 12)"]);
});

// exit() from a thread ends the process while the main thread is blocked in read().
all_links!(exit_from_thread, |link| {
    let c = c_run("thr_signals", link, &["exit"]);
    assert_native_code(&c, 7);
});

// No lost wake-ups: 1000 signals, each sent 0-300 us after the previous acknowledgement, to a
// child waiting in sigsuspend / ppoll with a mask / sigtimedwait.
all_links!(wakeup_sigsuspend, |link| {
    let c = c_run("sig_wakeup", link, &["sigsuspend"]);
    c.last().native.assert_success();
    assert_lines(&native_out(&c), &["mode sigsuspend: 1000 signals, every one woke the child"]);
});

all_links!(wakeup_ppoll_sigmask, |link| {
    let c = c_run("sig_wakeup", link, &["ppoll"]);
    c.last().native.assert_success();
    assert_lines(&native_out(&c), &["mode ppoll: 1000 signals, every one woke the child"]);
});

all_links!(wakeup_sigtimedwait, |link| {
    let c = c_run("sig_wakeup", link, &["sigtimedwait"]);
    c.last().native.assert_success();
    assert_lines(&native_out(&c), &["mode sigtimedwait: 1000 signals, every one woke the child"]);
});

// =============================================================================================
// d. Ctrl-C: SIGINT to the sandbox process
// =============================================================================================

/// How an interrupted run ended.
struct Interrupted {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Starts `cmd` (natively or in the sandbox) in `dir` with stdin a pipe kept open and stdout a
/// pipe, waits for the line "ready", waits 300 ms more (so the program is blocked where it
/// means to be), sends `sig` to the process it started, and waits up to 60 s for the end.
fn run_interrupted(mode: Mode, cmd: &Cmd, dir: &Path, sig: i32) -> Interrupted {
    use std::os::unix::process::CommandExt;
    let mut command = command_for(mode, cmd);
    command
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let stdin = child.stdin.take();
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let out_reader = std::thread::spawn(move || {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            match out.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    all.push_str(&line);
                    let _ = tx.send(line);
                }
            }
        }
        all
    });
    let kill_now = |child: &mut std::process::Child, why: &str| -> ! {
        // SAFETY: kill(2) on the process group our child leads and on the child, not yet
        // reaped.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
            libc::kill(pid, libc::SIGKILL);
        }
        let _ = child.wait();
        panic!("{} run of {}: {why}", mode.label(), cmd.describe());
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) if l == "ready\n" => break,
            Ok(_) => {}
            Err(_) => kill_now(&mut child, "no \"ready\" line within 60 s"),
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill: {}", std::io::Error::last_os_error());
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => kill_now(&mut child, &format!("still running 60 s after signal {sig}")),
            Err(e) => panic!("wait: {e}"),
        }
    };
    drop(stdin);
    // A descendant left behind would keep stdout open: give it 10 s, then end the group.
    let linger = Instant::now() + Duration::from_secs(10);
    while !(out_reader.is_finished() && err_reader.is_finished()) && Instant::now() < linger {
        std::thread::sleep(Duration::from_millis(10));
    }
    let lingering = !(out_reader.is_finished() && err_reader.is_finished());
    if lingering {
        // SAFETY: kill(2) on the group our reaped child led: its remaining descendants.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    assert!(
        !lingering,
        "{} run of {}: a descendant outlived the process and kept its output open",
        mode.label(),
        cmd.describe()
    );
    let stdout = out_reader.join().expect("stdout reader");
    let stderr = String::from_utf8_lossy(&err_reader.join().expect("stderr reader")).into_owned();
    Interrupted { status, stdout, stderr }
}

/// Runs `cmd` natively and in the sandbox, each interrupted by `sig` after "ready"; asserts
/// the same stdout and exit status, which must be `expected` (exit code or signal).
fn assert_same_interrupted(name: &str, cmd: &Cmd, sig: i32, expected: Result<i32, i32>) -> String {
    let nd = common::WorkDir::new(&format!("{name}-native"));
    let sd = common::WorkDir::new(&format!("{name}-sandboxed"));
    let native = run_interrupted(Mode::Native, cmd, nd.path(), sig);
    let sandboxed = run_interrupted(Mode::Sandboxed, cmd, sd.path(), sig);
    let describe = |i: &Interrupted| {
        format!(
            "status {}\nstdout:\n{}\nstderr:\n{}",
            common::status_text(i.status),
            i.stdout,
            i.stderr
        )
    };
    let want = |s: ExitStatus| match expected {
        Ok(code) => s.code() == Some(code),
        Err(sig) => s.signal() == Some(sig),
    };
    assert!(
        want(native.status),
        "{name}: the native run ended unexpectedly (wanted {expected:?})\n{}",
        describe(&native)
    );
    assert!(!sandboxed.stderr.contains("panicked"), "{name}: {}", describe(&sandboxed));
    assert!(
        native.status.code() == sandboxed.status.code()
            && native.status.signal() == sandboxed.status.signal()
            && native.stdout == sandboxed.stdout,
        "{name}: native and sandboxed runs differ\n--- native:\n{}\n--- sandboxed:\n{}",
        describe(&native),
        describe(&sandboxed)
    );
    native.stdout
}

all_links!(ctrl_c_handler, |link| {
    let cmd = Cmd::new(build_c("sig_ctrlc", link)).arg("handler");
    let out = assert_same_interrupted(
        &format!("ctrlc-handler-{}", link.suffix()),
        &cmd,
        libc::SIGINT,
        Ok(3),
    );
    assert_eq!(out, "ready\ngot SIGINT\n");
});

all_links!(ctrl_c_default, |link| {
    let cmd = Cmd::new(build_c("sig_ctrlc", link)).arg("default");
    let out = assert_same_interrupted(
        &format!("ctrlc-default-{}", link.suffix()),
        &cmd,
        libc::SIGINT,
        Err(libc::SIGINT),
    );
    assert_eq!(out, "ready\n");
});

all_links!(ctrl_c_interrupts_read, |link| {
    let cmd = Cmd::new(build_c("sig_ctrlc", link)).arg("read");
    let out = assert_same_interrupted(
        &format!("ctrlc-read-{}", link.suffix()),
        &cmd,
        libc::SIGINT,
        Ok(4),
    );
    assert_eq!(out, "ready\nread returned -1, errno EINTR, handler ran 1\n");
});

all_links!(ctrl_c_parent_kills_child, |link| {
    let cmd = Cmd::new(build_c("sig_ctrlc", link)).arg("child");
    let out = assert_same_interrupted(
        &format!("ctrlc-child-{}", link.suffix()),
        &cmd,
        libc::SIGINT,
        Ok(5),
    );
    assert_eq!(out, "ready\ngot SIGINT; child ended by signal 2\n");
});

/// What Python reads of its own /proc: its descriptors (os.listdir of /proc/self/fd, which
/// subprocess's close_fds and os.closerange users rely on), its threads, its maps and stack
/// (threading's stack size, faulthandler), its cmdline, status and limits: as natively.
const PYTHON_PROC_SCRIPT: &str = r#"
import os, resource, subprocess, sys, threading
soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
fds = [int(x) for x in os.listdir("/proc/self/fd")]
print("fds below the limit", all(f < soft for f in fds), "std there", {0, 1, 2} <= set(fds))
r, w = os.pipe()
print("a new pipe is listed", {r, w} <= set(int(x) for x in os.listdir("/proc/self/fd")))
print("subprocess close_fds", subprocess.run(["/bin/sh", "-c", "exit 7"], close_fds=True).returncode)
print("subprocess pass_fds", subprocess.run(["/bin/sh", "-c", "echo x >&%d" % w], pass_fds=[w]).returncode,
      os.read(r, 10))
go = threading.Event()
ts = [threading.Thread(target=go.wait) for _ in range(3)]
for t in ts: t.start()
tasks = os.listdir("/proc/self/task")
print("tasks", len(tasks), "active", threading.active_count())
names = {open("/proc/self/task/%s/comm" % t).read().strip() for t in tasks}
print("thread names", sorted(names))
go.set()
for t in ts: t.join()
maps = open("/proc/self/maps").read().splitlines()
print("maps parse", all(len(l.split()) >= 5 for l in maps), "stack", sum(l.endswith("[stack]") for l in maps))
print("maps has the interpreter", any(l.endswith(os.path.realpath(sys.executable)) for l in maps))
cmd = open("/proc/self/cmdline", "rb").read().split(b"\0")[:-1]
print("cmdline", cmd == [os.fsencode(a) for a in sys.orig_argv])
# A joined thread's host thread may still be on its way out (natively too, for a shorter while).
import time
for _ in range(500):
    status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())
    if status["Threads"].strip() == "1": break
    time.sleep(0.01)
print("status", status["Name"].strip(), status["Threads"].strip(), int(status["VmSize"].split()[0]) < 64 << 20)
lim = [l for l in open("/proc/self/limits") if l.startswith("Max open files")][0].split()
print("limits", int(lim[3]) == soft)
print("stat", open("/proc/self/stat").read().split(") ")[1].split()[17])
"#;

kvm_test!(debian_python3_proc_self, {
    require("/usr/bin/python3", "python3");
    let cmd = Cmd::new("/usr/bin/python3")
        .args(["-c", PYTHON_PROC_SCRIPT])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", "C.UTF-8")
        .timeout(LONG);
    let c = assert_same("deb-python3-proc", &cmd);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "fds below the limit True std there True",
            "a new pipe is listed True",
            "subprocess close_fds 7",
            "subprocess pass_fds 0 b'x\\n'",
            "tasks 4 active 4",
            "thread names ['python3']",
            "maps parse True stack 1",
            "maps has the interpreter True",
            "cmdline True",
            "status python3 1 True",
            "limits True",
            "stat 1",
        ],
    );
});

kvm_test!(ctrl_c_python_keyboard_interrupt, {
    require("/usr/bin/python3", "python3");
    let cmd = Cmd::new("/usr/bin/python3").args([
        "-c",
        "import time\ntry:\n    print('ready', flush=True)\n    time.sleep(60)\nexcept \
         KeyboardInterrupt:\n    print('KeyboardInterrupt', flush=True)\n    raise\n",
    ]);
    // Python re-raises an uncaught KeyboardInterrupt as death by SIGINT.
    let out = assert_same_interrupted("ctrlc-python", &cmd, libc::SIGINT, Err(libc::SIGINT));
    assert_eq!(out, "ready\nKeyboardInterrupt\n");
});

// =============================================================================================
// e. Timers
// =============================================================================================

all_links!(setitimer_three_alarms, |link| {
    let c = c_run("sig_timers", link, &["itimer"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "SIGALRM handled 3 times (at least 3: 1), pause returned each time 1",
            "interval read back 50 ms: 1",
            "took at least 0.14 s: 1, less than 10 s: 1",
            "disarmed: 1",
            "no alarm after disarming: 1",
            "alarm(0) returns the seconds left (about 100): 1",
            "done",
        ],
    );
});

// timer_create is required: ENOSYS from the sandbox fails this test (the outputs differ).
all_links!(posix_timer_create, |link| {
    let c = c_run("sig_timers", link, &["posix"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "timer_create: ok",
            "interval read back 40 ms: 1",
            "timer signal handled 3 times (at least 3: 1), siginfo ok 1",
            "no signal after timer_delete: 1",
            "done",
        ],
    );
});

// =============================================================================================
// f. Signal storms: a 50 us interval timer must not stop the program (each mode runs 0.3 s
//    natively; the time limit catches a hang), nor keep a SIGTERM from ending it
// =============================================================================================

all_links!(signal_storm_busy_loop, |link| {
    let c = c_run("sig_storm", link, &["busy"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &["busy: ran 0.3 s under a 50 us timer, rounds > 0 1, signals handled 1", "done"],
    );
});

all_links!(signal_storm_system_calls, |link| {
    let c = c_run("sig_storm", link, &["calls"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &["calls: ran 0.3 s under a 50 us timer, rounds > 0 1, signals handled 1", "done"],
    );
});

all_links!(signal_storm_sleeps, |link| {
    let c = c_run("sig_storm", link, &["sleep"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &["sleep: ran 0.3 s under a 50 us timer, rounds > 0 1, signals handled 1", "done"],
    );
});

// Calls that may block (the supervisor's cancellation points) make progress under a 20 us
// timer: one that did not start because a signal came first is not stopped again, after the
// handler, by the signals that arrived meanwhile (a single write took up to a second, under
// load more than the harness's 60 s, before).
all_links!(signal_storm_blocking_calls_progress, |link| {
    let c = c_run("sig_storm", link, &["pipes"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "pipes: 300 round trips under a 20 us timer, all bytes back 1, signals handled 1",
            "done",
        ],
    );
});

// A blocked signal, however often the host sees it, neither interrupts a sleep nor makes it
// start over: relative timeouts keep counting (nanosleep, poll, FUTEX_WAIT).
all_links!(signal_storm_blocked_timed_waits, |link| {
    let c = c_run("sig_storm", link, &["blocked"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "main: nanosleep 0.3 s returned 0, took at least 0.3 s 1, less than 5 s 1",
            "main: poll 300 ms returned 0, took at least 0.3 s 1, less than 5 s 1",
            "main: futex wait 0.3 s returned -1 (ETIMEDOUT), took at least 0.3 s 1, less than 5 s 1",
            "SIGALRM pending afterwards 1, handled 0",
            "done",
        ],
    );
});

// The same while another thread takes the storm's signals.
all_links!(signal_storm_other_thread_takes_them, |link| {
    let c = c_run("sig_storm", link, &["thread"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "main: nanosleep 0.3 s returned 0, took at least 0.3 s 1, less than 5 s 1",
            "main: futex wait 0.3 s returned -1 (ETIMEDOUT), took at least 0.3 s 1, less than 5 s 1",
            "the other thread handled signals: 1",
            "done",
        ],
    );
});

// Children dying of SIGSEGV one after the other under a storm: each is counted.
all_links!(signal_storm_children_die_of_sigsegv, |link| {
    let c = c_run("sig_storm", link, &["children"]);
    c.last().native.assert_success();
    assert_lines(&native_out(&c), &["children killed by SIGSEGV: 20 of 20, SIGCHLD handled 1"]);
});

// With core dumps allowed (the soft RLIMIT_CORE raised to the hard one), children that die of
// SIGSEGV dump core as natively: the parent's SIGCHLD says CLD_DUMPED exactly when waitpid
// says WCOREDUMP (the sandbox reported CLD_KILLED and no core dump before).
all_links!(children_dump_core_as_natively, |link| {
    let c = c_run("sig_storm", link, &["dumped"]);
    c.last().native.assert_success();
    let out = native_out(&c);
    assert!(
        out.lines().any(|l| l.starts_with("SIGCHLD says dumped exactly when waitpid does: 1, ")),
        "{out}"
    );
});

// Several pending signals are all delivered at once, the handler of the highest number first,
// as Linux does (one per return to the program before: a storm starved higher numbers).
all_links!(pending_signals_delivered_together, |link| {
    let c = c_run("sig_storm", link, &["order"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &["handlers run before sigprocmask returned: 3, in the order T21", "done"],
    );
});

// SIGTERM from outside ends the program under a 20 us timer storm (it needed SIGKILL before),
// with its default action and with a handler.
all_links!(sigterm_ends_a_signal_storm, |link| {
    for (mode, expected) in [("term", Err(libc::SIGTERM)), ("handler", Ok(3))] {
        let cmd = Cmd::new(build_c("sig_storm", link)).arg(mode);
        let out = assert_same_interrupted(
            &format!("storm-{mode}-{}", link.suffix()),
            &cmd,
            libc::SIGTERM,
            expected,
        );
        assert_eq!(out, "ready\n");
    }
});

// =============================================================================================
// g. Signals with the runtime's numbers between sandboxed processes, and SIGIO with a fault's
//    number: ordinary signals for the program, as natively
// =============================================================================================

// SIGRTMAX-1 and SIGRTMAX-2 by kill, sigqueue, tgkill and pidfd_send_signal end a child that
// waits in pause, a busy loop or a blocking read (their default action terminates).
all_links!(runtime_signal_numbers_from_another_process_kill, |link| {
    let c = c_run("sig_foreign", link, &["kill"]);
    c.last().native.assert_success();
    let out = native_out(&c);
    assert_eq!(out.lines().filter(|l| l.ends_with(": killed by SIGRTMAX-1")).count(), 12, "{out}");
    assert_eq!(out.lines().filter(|l| l.ends_with(": killed by SIGRTMAX-2")).count(), 12, "{out}");
    assert_lines(&out, &["SIGRTMAX-1 by tgkill to a child in read: killed by SIGRTMAX-1", "done"]);
});

// With handlers, each route delivers its siginfo (si_code, sigqueue's value, the sender).
all_links!(runtime_signal_numbers_from_another_process_handled, |link| {
    let c = c_run("sig_foreign", link, &["handler"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "SIGRTMAX-1 by kill: handler got SIGRTMAX-1, si_code SI_USER, value 0, from the parent 1",
            "SIGRTMAX-1 by sigqueue: handler got SIGRTMAX-1, si_code SI_QUEUE, value 4242, from \
             the parent 1",
            "SIGRTMAX-2 by pidfd: handler got SIGRTMAX-2, si_code SI_USER, value 0, from the \
             parent 1",
            "the child: exited with 0",
            "done",
        ],
    );
});

// F_SETSIG(SIGSEGV) with O_ASYNC: SIGSEGV from a pipe's SIGIO reaches the program's handler,
// or ends the program with its default action; the supervisor does not take it for a fault.
all_links!(sigio_with_a_fault_signal_number, |link| {
    let c = c_run("sig_foreign", link, &["setsig"]);
    c.last().native.assert_success();
    let out = native_out(&c);
    assert_lines(
        &out,
        &["F_GETSIG: SIGSEGV", "a child with the default action: killed by SIGSEGV", "done"],
    );
    assert!(
        out.lines().any(|l| l.starts_with("SIGSEGV by SIGIO: 3 handled, si_code ")
            && l.ends_with(", si_fd is the pipe 1, POLLIN in si_band 1")),
        "{out}"
    );
    assert!(
        !common::contains(&c.last().sandboxed.stderr, b"internal error"),
        "{}",
        c.last().sandboxed.report()
    );
});

// The runtime's numbers by F_SETSIG, by pthread_kill within the process and as the parent's
// death signal: delivered to the program (or ending it) as natively.
all_links!(runtime_signal_routes, |link| {
    let c = c_run("sig_foreign", link, &["routes"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "SIGRTMAX-1 by F_SETSIG: handled 1, si_code POLL_IN",
            "SIGRTMAX-2 by F_SETSIG: handled 1, si_code POLL_IN",
            "SIGRTMAX-1 by pthread_kill: handled 1, in the target thread 1, si_code SI_TKILL",
            "SIGRTMAX-2 by pthread_kill: handled 1, in the target thread 1, si_code SI_TKILL",
            "an orphan with PR_SET_PDEATHSIG SIGRTMAX-1: killed by SIGRTMAX-1",
            "done",
        ],
    );
});

// A signal from another process that arrives the moment the target is about to block in a
// forwarded call ends it every time (it stayed blocked with the signal undelivered before,
// a few times in a hundred: a SIGTERM from outside did not end the sandbox).
all_links!(signal_just_before_a_blocking_call, |link| {
    let c = c_run("sig_foreign", link, &["window"]);
    c.last().native.assert_success();
    assert_lines(
        &native_out(&c),
        &[
            "SIGTERM the moment a child is about to block in read: 50 of 50 ended by it",
            "SIGRTMAX-1 the moment a child is about to block in read: 50 of 50 ended by it",
            "SIGRTMAX-2 the moment a child is about to block in read: 50 of 50 ended by it",
            "done",
        ],
    );
});
