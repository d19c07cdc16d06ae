//! Shared harness for the sandbox's integration tests: builds the C programs of `tests/c`, runs a
//! program natively and under `sandbox run`, each in a fresh working directory, and compares
//! exit status, stdout and the files the program left behind.
//!
//! `SANDBOX_TEST_SELFCHECK=1` makes the "sandboxed" runner run the program natively instead (a
//! check of the harness and of the expectations that do not need the sandbox); tests that can
//! only pass under a real sandbox skip their sandbox-only assertions in that mode.
//! `SANDBOX_TEST_BIN=PATH` runs PATH instead of the built `sandbox` binary.
//!
//! Running: `cargo test -p sandbox` (or `cargo nextest run -p sandbox`, one process per test);
//! `SANDBOX_TEST_SELFCHECK=1 cargo test -p sandbox` checks the harness and the native side.
//! Needs gcc with static glibc (libc6-dev) and, for tests/busybox.rs, Debian's busybox-static.
//! The programs are built into `target/tmp/sandbox-test-bins`; each run gets a fresh working
//! directory under `target/tmp/sandbox-work`, removed afterwards unless the test failed.

#![allow(dead_code)]

/// The fixtures' mtime: 2020-09-13 12:26:40 UTC (so `ls -l`, `stat`, `tar` and `find -newer`
/// print the same natively and sandboxed).
pub const FIXED_TIME: i64 = 1_600_000_000;

/// Returns from the enclosing test unless /dev/kvm is usable: the skip is recorded as
/// `sandbox::<test file>::<name>` (and is a failure under `DUNE_REQUIRE_KVM=1`).
#[allow(unused_macros)]
macro_rules! gated {
    ($name:ident) => {
        if !dune::testing::kvm_or_skip(concat!(
            "sandbox::",
            module_path!(),
            "::",
            stringify!($name)
        )) {
            return;
        }
    };
}

/// Defines the module `$name` with one KVM-gated test per `test_fn => Link::Variant`, each
/// running the body with `$link` set; a skip is reported as `$prefix::$name::test_fn`.
#[allow(unused_macros)]
macro_rules! link_tests {
    ($prefix:literal, $name:ident, [$($test:ident => $variant:ident),+], |$link:ident| $body:block) => {
        mod $name {
            use super::*;

            fn run($link: Link) $body

            $(
                #[test]
                fn $test() {
                    if !dune::testing::kvm_or_skip(concat!(
                        $prefix,
                        "::",
                        stringify!($name),
                        "::",
                        stringify!($test)
                    )) {
                        return;
                    }
                    run(Link::$variant);
                }
            )+
        }
    };
}

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The sandbox binary under test.
pub const SANDBOX: &str = env!("CARGO_BIN_EXE_sandbox");

/// The sandbox binary to run: [`SANDBOX`], or `SANDBOX_TEST_BIN` when set (to check that the
/// tests catch a broken stand-in, e.g. a script that runs the program natively).
pub fn sandbox_bin() -> OsString {
    std::env::var_os("SANDBOX_TEST_BIN").unwrap_or_else(|| SANDBOX.into())
}

/// Default limit for one run; a run that takes longer is killed and the test fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether `SANDBOX_TEST_SELFCHECK=1`: "sandboxed" runs are native runs.
pub fn selfcheck() -> bool {
    std::env::var("SANDBOX_TEST_SELFCHECK").is_ok_and(|v| v == "1")
}

/// Prints (once per test process) that the sandbox is bypassed.
fn note_selfcheck() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        eprintln!(
            "SANDBOX_TEST_SELFCHECK=1: \"sandboxed\" runs are native; sandbox-only assertions \
             are skipped"
        )
    });
}

/// `tests/` of the sandbox package.
pub fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// Scratch space under the target directory (`target/tmp`).
fn target_tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// Where the test programs are built.
pub fn bins_dir() -> PathBuf {
    target_tmp().join("sandbox-test-bins")
}

// ---------------------------------------------------------------------------------------------
// Building the C programs
// ---------------------------------------------------------------------------------------------

/// How a test program is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// `gcc -static`: ET_EXEC at a fixed address.
    Static,
    /// `gcc -static-pie`: ET_DYN without interpreter, self-relocating.
    StaticPie,
    /// Plain `gcc`: dynamically linked (PIE with PT_INTERP, ld.so and libc.so at run time).
    Dynamic,
}

impl Link {
    pub const BOTH: [Link; 2] = [Link::Static, Link::StaticPie];
    /// The static builds and the plain dynamic one.
    pub const ALL: [Link; 3] = [Link::Static, Link::StaticPie, Link::Dynamic];

    pub fn suffix(self) -> &'static str {
        match self {
            Link::Static => "static",
            Link::StaticPie => "static-pie",
            Link::Dynamic => "dynamic",
        }
    }

    fn flags(self) -> &'static [&'static str] {
        match self {
            Link::Static => &["-static"],
            Link::StaticPie => &["-static-pie", "-fPIE"],
            Link::Dynamic => &[],
        }
    }
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Serialises builds inside one test process (parallel test threads); across processes the
/// build goes to a unique temporary name that is renamed into place, which is atomic.
static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Builds `tests/c/<name>.c` (C99, `-Wall -Werror -O2`) linked as `link` into
/// `target/tmp/sandbox-test-bins/<name>-<static|static-pie>`, unless that is newer than the
/// source and every header of `tests/c`. Returns the binary's path.
pub fn build_c(name: &str, link: Link) -> PathBuf {
    let src = tests_dir().join("c").join(format!("{name}.c"));
    let headers = headers_of(&tests_dir().join("c"));
    build(&src, &headers, &format!("{name}-{}", link.suffix()), link.flags())
}

/// Builds the demo (`demo/demo.c`) the way `cargo xtask run` does (`gcc -static -O2`), plus
/// `-Wall -Werror -std=c99`.
pub fn build_demo() -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/demo.c");
    build(&src, &[], "demo-static", &["-static"])
}

fn headers_of(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "h"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn build(src: &Path, deps: &[PathBuf], out_name: &str, link_flags: &[&str]) -> PathBuf {
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = bins_dir();
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let out = dir.join(out_name);
    let Some(src_time) = mtime(src) else {
        panic!("test program source {} does not exist", src.display());
    };
    let newest = deps.iter().filter_map(|d| mtime(d)).fold(src_time, |a, b| a.max(b));
    if mtime(&out).is_some_and(|t| t >= newest) {
        return out;
    }
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let tmp = dir.join(format!(
        ".{out_name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = Command::new("gcc")
        .args(["-std=c99", "-Wall", "-Werror", "-O2"])
        .args(link_flags)
        .arg("-I")
        .arg(src.parent().expect("source has a parent"))
        .arg("-o")
        .arg(&tmp)
        .arg(src)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run gcc ({e}); the tests need gcc and libc6-dev (cargo xtask test installs them)")
        });
    if !result.status.success() {
        let _ = std::fs::remove_file(&tmp);
        panic!(
            "gcc failed to build {} ({}):\n{}",
            src.display(),
            link_flags.join(" "),
            String::from_utf8_lossy(&result.stderr)
        );
    }
    std::fs::rename(&tmp, &out)
        .unwrap_or_else(|e| panic!("cannot rename {} to {}: {e}", tmp.display(), out.display()));
    out
}

// ---------------------------------------------------------------------------------------------
// Working directories
// ---------------------------------------------------------------------------------------------

/// A fresh directory under `target/tmp/sandbox-work`, removed on drop unless the thread is
/// panicking (a failed test keeps it for inspection; the failure message names it).
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    pub fn new(label: &str) -> WorkDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let clean: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .take(80)
            .collect();
        let base = target_tmp().join("sandbox-work");
        std::fs::create_dir_all(&base)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", base.display()));
        let path = base.join(format!(
            "{clean}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        // Programs that print their working directory print the canonical path.
        let path = std::fs::canonicalize(&path).expect("canonicalize a fresh directory");
        WorkDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Commands and runs
// ---------------------------------------------------------------------------------------------

/// A program to run natively and in the sandbox.
#[derive(Clone, Debug)]
pub struct Cmd {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Variables to set (added to the inherited environment unless `env_clear`).
    pub env: Vec<(OsString, OsString)>,
    /// Start from an empty environment: natively `Command::env_clear`, in the sandbox
    /// `--env-clear` and one `--env K=V` per variable.
    pub env_clear: bool,
    /// Pass `env` to the sandbox as `--env K=V` options even without `env_clear` (otherwise the
    /// sandbox process gets them in its own environment, which passes through).
    pub env_flags: bool,
    /// Bytes for stdin (through a pipe); `None` means /dev/null.
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
    /// Extra options for `sandbox run`, before `--` (e.g. `--quiet`).
    pub sandbox_opts: Vec<OsString>,
    /// Serve the started process's real memory map (see [`Cmd::host_maps`]).
    pub host_maps: bool,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            env_clear: false,
            env_flags: false,
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
            sandbox_opts: Vec::new(),
            host_maps: false,
        }
    }

    /// Gives the program the real `/proc/PID/maps` of the process the harness started (the
    /// sandbox itself, in a sandboxed run), read by the harness from outside: through a FIFO
    /// named by `SBX_HOST_MAPS`, opened by the program when it wants the map (escape.h). The
    /// sandbox shows the program only its own mappings in `/proc/self/maps`, so this is how
    /// the escape tests find the runtime's memory to attack.
    pub fn host_maps(mut self) -> Cmd {
        self.host_maps = true;
        self
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Cmd {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Cmd {
        self.env.push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }

    pub fn env_clear(mut self) -> Cmd {
        self.env_clear = true;
        self
    }

    pub fn env_flags(mut self) -> Cmd {
        self.env_flags = true;
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn timeout(mut self, t: Duration) -> Cmd {
        self.timeout = t;
        self
    }

    pub fn sandbox_opt(mut self, o: impl AsRef<OsStr>) -> Cmd {
        self.sandbox_opts.push(o.as_ref().to_owned());
        self
    }

    /// A short description for failure messages.
    pub fn describe(&self) -> String {
        let mut s = self.program.to_string_lossy().into_owned();
        for a in self.args.iter().take(12) {
            let a = a.to_string_lossy();
            if a.len() > 60 {
                let cut: String = a.chars().take(40).collect();
                let _ = write!(s, " '{cut}...'({} bytes)", a.len());
            } else {
                let _ = write!(s, " '{a}'");
            }
        }
        if self.args.len() > 12 {
            let _ = write!(s, " ... ({} args)", self.args.len());
        }
        s
    }

    /// `env` sorted by name (the order Rust's `Command` gives a modified environment).
    fn sorted_env(&self) -> Vec<(OsString, OsString)> {
        let mut m = BTreeMap::new();
        for (k, v) in &self.env {
            m.insert(k.clone(), v.clone());
        }
        m.into_iter().collect()
    }

    fn native_command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        if self.env_clear {
            c.env_clear();
        }
        c.envs(self.sorted_env());
        c
    }

    fn sandbox_command(&self) -> Command {
        let mut c = Command::new(sandbox_bin());
        c.arg("run");
        // Differential tests compare with native Linux: the null policy, unless a test names
        // its own.
        if !self
            .sandbox_opts
            .iter()
            .any(|o| o == "--policy" || o.to_string_lossy().starts_with("--policy="))
        {
            c.args(["--policy", "null"]);
        }
        c.args(&self.sandbox_opts);
        if self.env_clear {
            c.arg("--env-clear");
        }
        if self.env_clear || self.env_flags {
            for (k, v) in self.sorted_env() {
                let mut kv = k.clone();
                kv.push("=");
                kv.push(&v);
                c.arg("--env").arg(kv);
            }
        } else {
            c.envs(self.sorted_env());
        }
        c.arg("--").arg(&self.program).args(&self.args);
        c
    }
}

/// Native or in the sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Native,
    Sandboxed,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Sandboxed => "sandboxed",
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Output {
    pub mode: Mode,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
    pub dir: PathBuf,
    pub what: String,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// Exit code or signal, as text: "exit 3", "signal 11 (SIGSEGV)".
    pub fn status_text(&self) -> String {
        status_text(self.status)
    }

    /// A block for failure messages: status, stdout and stderr (both shortened).
    pub fn report(&self) -> String {
        format!(
            "--- {} run of {} in {}\nstatus: {}\nstdout ({} bytes):\n{}\nstderr ({} bytes):\n{}",
            self.mode.label(),
            self.what,
            self.dir.display(),
            self.status_text(),
            self.stdout.len(),
            shorten(&self.stdout, 3000),
            self.stderr.len(),
            shorten(&self.stderr, 3000),
        )
    }

    /// Panics with the report unless the run exited 0.
    pub fn assert_success(&self) -> &Output {
        assert!(
            self.status.success(),
            "expected exit status 0, got {}\n{}",
            self.status_text(),
            self.report()
        );
        self
    }

    /// Panics unless the stdout's last line is `line`.
    pub fn assert_last_line(&self, line: &str) -> &Output {
        let out = self.stdout_str();
        assert_eq!(out.lines().last(), Some(line), "last line of stdout\n{}", self.report());
        self
    }
}

pub fn status_text(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(n)) => format!("signal {n} ({})", signal_name(n)),
        _ => format!("{s:?}"),
    }
}

/// The usual name of a signal number.
pub fn signal_name(n: i32) -> &'static str {
    match n {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        _ => "?",
    }
}

fn shorten(b: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() <= max {
        return s.into_owned();
    }
    let head: String = s.chars().take(max / 2).collect();
    let tail_start = s.char_indices().map(|(i, _)| i).find(|&i| i >= s.len() - max / 2);
    format!(
        "{head}\n[... {} bytes left out ...]\n{}",
        s.len() - max,
        &s[tail_start.unwrap_or(s.len())..]
    )
}

/// Runs `cmd` natively in a fresh working directory.
pub fn run_native(cmd: &Cmd) -> (Output, WorkDir) {
    let dir = WorkDir::new(&format!("{}-native", program_label(cmd)));
    let out = run_in(Mode::Native, cmd, dir.path());
    (out, dir)
}

/// Runs `cmd` under `sandbox run` in a fresh working directory (natively with
/// `SANDBOX_TEST_SELFCHECK=1`).
pub fn run_sandboxed(cmd: &Cmd) -> (Output, WorkDir) {
    let dir = WorkDir::new(&format!("{}-sandboxed", program_label(cmd)));
    let out = run_in(Mode::Sandboxed, cmd, dir.path());
    (out, dir)
}

fn program_label(cmd: &Cmd) -> String {
    let p = Path::new(&cmd.program);
    let name = p.file_name().unwrap_or(p.as_os_str()).to_string_lossy();
    match cmd.args.first() {
        Some(a) if name == "busybox" => format!("busybox-{}", a.to_string_lossy()),
        _ => name.into_owned(),
    }
}

/// The `Command` that runs `cmd` natively or in the sandbox (natively with
/// `SANDBOX_TEST_SELFCHECK=1`), for tests that drive the process themselves (e.g. send it a
/// signal); stdin, stdout, stderr and the working directory are left to the caller.
pub fn command_for(mode: Mode, cmd: &Cmd) -> Command {
    match mode {
        Mode::Native => cmd.native_command(),
        Mode::Sandboxed if selfcheck() => {
            note_selfcheck();
            cmd.native_command()
        }
        Mode::Sandboxed => cmd.sandbox_command(),
    }
}

/// Runs `cmd` in `dir` natively or in the sandbox; panics when it cannot start or times out.
pub fn run_in(mode: Mode, cmd: &Cmd, dir: &Path) -> Output {
    let mut command = command_for(mode, cmd);
    command.current_dir(dir);
    let what = cmd.describe();
    let t = Instant::now();
    // Outside the working directory, which differential tests compare.
    let fifo = cmd.host_maps.then(|| {
        let mut name = dir.as_os_str().to_owned();
        name.push(".host-maps");
        let fifo = PathBuf::from(name);
        let _ = std::fs::remove_file(&fifo);
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).expect("no NUL in a path");
        // SAFETY: mkfifo reads the NUL-terminated path only.
        let r = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(r, 0, "mkfifo {}: {}", fifo.display(), std::io::Error::last_os_error());
        command.env("SBX_HOST_MAPS", &fifo);
        fifo
    });
    let (status, stdout, stderr) = execute(
        command,
        cmd.stdin.as_deref(),
        cmd.timeout,
        &format!("{} run of {what}", mode.label()),
        fifo.clone(),
    );
    if let Some(f) = fifo {
        let _ = std::fs::remove_file(f);
    }
    Output { mode, status, stdout, stderr, elapsed: t.elapsed(), dir: dir.to_owned(), what }
}

/// Serves `/proc/<pid>/maps` through `fifo` to every reader that opens it until `done`.
fn serve_host_maps(fifo: PathBuf, pid: u32, done: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::os::unix::fs::OpenOptionsExt;
    while !done.load(Ordering::SeqCst) {
        // Non-blocking: ENXIO while no reader has it open.
        match std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&fifo) {
            Ok(mut w) => {
                let maps = std::fs::read(format!("/proc/{pid}/maps")).unwrap_or_default();
                // SAFETY: F_SETFL on the descriptor `w` owns, clearing O_NONBLOCK.
                unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&w), libc::F_SETFL, 0) };
                let _ = w.write_all(&maps);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Spawns `command` with piped stdout/stderr (stdin from `input` or /dev/null), collects the
/// output, and kills it after `timeout`. The command runs in a process group of its own, and a
/// timeout kills the whole group: a forked descendant left behind would keep the output pipes
/// open and the readers waiting forever.
fn execute(
    mut command: Command,
    input: Option<&[u8]>,
    timeout: Duration,
    what: &str,
    host_maps: Option<PathBuf>,
) -> (ExitStatus, Vec<u8>, Vec<u8>) {
    use std::os::unix::process::CommandExt;
    command
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start the {what}: {e}"));
    let pid = child.id() as libc::pid_t;
    let maps_done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let maps_server = host_maps.map(|fifo| {
        let done = maps_done.clone();
        std::thread::spawn(move || serve_host_maps(fifo, pid as u32, done))
    });
    let writer = child.stdin.take().map(|mut w| {
        let data = input.unwrap_or_default().to_vec();
        // A program that exits without reading everything closes the pipe: EPIPE is fine.
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        })
    });
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(timeout) {
        Ok(s) => s.unwrap_or_else(|e| panic!("waiting for the {what}: {e}")),
        Err(_) => {
            // SAFETY: kill(2) on the process group our child leads (it has not been reaped: the
            // waiter thread has not reported an exit, so the group id is still ours) and on the
            // child itself; no memory is involved.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
            }
            let _ = rx.recv();
            let _ = waiter.join();
            maps_done.store(true, Ordering::SeqCst);
            let out = out_reader.join().unwrap_or_default();
            let err = err_reader.join().unwrap_or_default();
            panic!(
                "the {what} did not finish within {timeout:?} and was killed\nstdout:\n{}\nstderr:\n{}",
                shorten(&out, 2000),
                shorten(&err, 2000)
            );
        }
    };
    let _ = waiter.join();
    maps_done.store(true, Ordering::SeqCst);
    if let Some(t) = maps_server {
        let _ = t.join();
    }
    // A descendant that outlived the program (e.g. a forked child that never ended) keeps the
    // pipes open: give it 10 s, then end the group and fail.
    let linger_deadline = Instant::now() + Duration::from_secs(10);
    let open = || !(out_reader.is_finished() && err_reader.is_finished());
    while open() && Instant::now() < linger_deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let lingering = open();
    if lingering {
        // SAFETY: kill(2) on the process group our (reaped) child led; its remaining members
        // are the child's descendants (Linux does not reuse an id while its group exists).
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out_reader.join().expect("stdout reader");
    let stderr = err_reader.join().expect("stderr reader");
    assert!(
        !lingering,
        "the {what} ended ({}), but a descendant kept its stdout or stderr open for 10 s more \
         and was killed\nstdout:\n{}\nstderr:\n{}",
        status_text(status),
        shorten(&stdout, 2000),
        shorten(&stderr, 2000)
    );
    (status, stdout, stderr)
}

// ---------------------------------------------------------------------------------------------
// Differential comparison
// ---------------------------------------------------------------------------------------------

/// The native and the sandboxed output of one step.
#[derive(Debug)]
pub struct Pair {
    pub native: Output,
    pub sandboxed: Output,
}

/// Both runs of a case, with their working directories (kept alive for inspection).
#[derive(Debug)]
pub struct Compared {
    pub steps: Vec<Pair>,
    pub native_dir: WorkDir,
    pub sandboxed_dir: WorkDir,
}

impl Compared {
    /// The only (or last) step.
    pub fn last(&self) -> &Pair {
        self.steps.last().expect("at least one step")
    }
}

/// Runs `cmd` natively and in the sandbox, each in a fresh working directory; asserts equal
/// exit status (code or signal), equal stdout and equal trees left in the working directory
/// (names, kinds, sizes, contents, permission bits, symlink targets). The working directory's
/// path is replaced by `$WORK` in both stdouts before comparing.
pub fn assert_same(name: &str, cmd: &Cmd) -> Compared {
    assert_same_steps(name, |_| {}, std::slice::from_ref(cmd))
}

/// Like [`assert_same`] for a sequence of commands run one after the other in the same working
/// directory, prepared by `setup` (called once per side); compares after every step.
pub fn assert_same_steps(name: &str, setup: impl Fn(&Path), steps: &[Cmd]) -> Compared {
    assert_same_steps_excluding(name, setup, steps, &[])
}

/// Like [`assert_same_steps`], but the paths in `exclude` (relative to the working directory;
/// a directory excludes everything under it) are left out of the tree comparison: files whose
/// bytes legitimately differ between two runs (e.g. a database's header counters), which the
/// test compares some other way.
pub fn assert_same_steps_excluding(
    name: &str,
    setup: impl Fn(&Path),
    steps: &[Cmd],
    exclude: &[&str],
) -> Compared {
    let native_dir = WorkDir::new(&format!("{name}-native"));
    let sandboxed_dir = WorkDir::new(&format!("{name}-sandboxed"));
    setup(native_dir.path());
    setup(sandboxed_dir.path());
    let mut pairs = Vec::new();
    for (i, cmd) in steps.iter().enumerate() {
        let native = run_in(Mode::Native, cmd, native_dir.path());
        let sandboxed = run_in(Mode::Sandboxed, cmd, sandboxed_dir.path());
        let step = if steps.len() > 1 {
            format!(" step {}/{}", i + 1, steps.len())
        } else {
            String::new()
        };
        if let Some(why) = compare_runs(&native, &sandboxed) {
            panic!(
                "{name}{step}: native and sandboxed runs differ: {why}\n\n{}\n\n{}",
                native.report(),
                sandboxed.report()
            );
        }
        if let Some(why) = compare_trees_excluding(native_dir.path(), sandboxed_dir.path(), exclude)
        {
            panic!(
                "{name}{step}: the working directories differ after the run: {why}\n\n{}\n\n{}",
                native.report(),
                sandboxed.report()
            );
        }
        pairs.push(Pair { native, sandboxed });
    }
    Compared { steps: pairs, native_dir, sandboxed_dir }
}

/// Compares status and stdout; checks the sandbox's stderr shows no panic.
fn compare_runs(native: &Output, sandboxed: &Output) -> Option<String> {
    if contains(&sandboxed.stderr, b"panicked") {
        return Some("the sandbox's stderr says \"panicked\"".into());
    }
    let ns = (native.status.code(), native.status.signal());
    let ss = (sandboxed.status.code(), sandboxed.status.signal());
    let no = normalize(&native.stdout, &native.dir);
    let so = normalize(&sandboxed.stdout, &sandboxed.dir);
    let out_diff = diff_bytes(&no, &so);
    match (ns == ss, out_diff) {
        (true, None) => None,
        (false, d) => Some(format!(
            "exit status: native {}, sandboxed {}{}",
            native.status_text(),
            sandboxed.status_text(),
            d.map(|d| format!("; stdout also differs: {d}")).unwrap_or_default()
        )),
        (true, Some(d)) => Some(format!("stdout: {d}")),
    }
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Replaces the working directory's path by `$WORK`.
fn normalize(out: &[u8], dir: &Path) -> Vec<u8> {
    let pat = dir.as_os_str().as_bytes();
    if pat.is_empty() {
        return out.to_vec();
    }
    let mut v = Vec::with_capacity(out.len());
    let mut i = 0;
    while i < out.len() {
        if out[i..].starts_with(pat) {
            v.extend_from_slice(b"$WORK");
            i += pat.len();
        } else {
            v.push(out[i]);
            i += 1;
        }
    }
    v
}

/// Describes the first difference between two outputs: by line for text, by offset for
/// binary data.
pub fn diff_bytes(a: &[u8], b: &[u8]) -> Option<String> {
    if a == b {
        return None;
    }
    let text = |x: &[u8]| std::str::from_utf8(x).is_ok() && !x.contains(&0);
    if text(a) && text(b) {
        let al: Vec<&str> =
            std::str::from_utf8(a).unwrap_or_default().split_inclusive('\n').collect();
        let bl: Vec<&str> =
            std::str::from_utf8(b).unwrap_or_default().split_inclusive('\n').collect();
        let i = al.iter().zip(&bl).position(|(x, y)| x != y).unwrap_or(al.len().min(bl.len()));
        let mut s = format!(
            "first difference at line {} (native {} lines, sandboxed {} lines)\n",
            i + 1,
            al.len(),
            bl.len()
        );
        for l in &al[i.saturating_sub(3)..i] {
            let _ = writeln!(s, "    {}", clip(l));
        }
        let _ =
            writeln!(s, "  native:    {}", al.get(i).map_or("<end of output>".into(), |l| clip(l)));
        let _ =
            writeln!(s, "  sandboxed: {}", bl.get(i).map_or("<end of output>".into(), |l| clip(l)));
        return Some(s);
    }
    let i = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    let hex = |x: &[u8]| {
        let end = (i + 16).min(x.len());
        x[i.min(end)..end].iter().map(|c| format!("{c:02x}")).collect::<Vec<_>>().join(" ")
    };
    Some(format!(
        "first difference at byte {i} (native {} bytes, sandboxed {} bytes)\n  native:    {}\n  sandboxed: {}",
        a.len(),
        b.len(),
        hex(a),
        hex(b)
    ))
}

fn clip(l: &str) -> String {
    let l = l.trim_end_matches('\n');
    if l.chars().count() > 200 {
        format!("{}... ({} chars)", l.chars().take(200).collect::<String>(), l.chars().count())
    } else {
        format!("{l:?}")
    }
}

/// One entry of a directory tree as compared.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    File { mode: u32, size: u64 },
    Dir { mode: u32 },
    Symlink { target: PathBuf },
    Fifo { mode: u32 },
    Other { what: String },
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
    let dir = root.join(rel);
    let mut names: Vec<OsString> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect(),
        Err(e) => panic!("cannot read directory {}: {e}", dir.display()),
    };
    names.sort();
    for name in names {
        let r = rel.join(&name);
        let p = root.join(&r);
        let md =
            std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()));
        let ft = md.file_type();
        let mode = md.permissions().mode() & 0o7777;
        let e = if ft.is_symlink() {
            Entry::Symlink { target: std::fs::read_link(&p).unwrap_or_default() }
        } else if ft.is_dir() {
            walk(root, &r, out);
            Entry::Dir { mode }
        } else if ft.is_file() {
            Entry::File { mode, size: md.len() }
        } else if ft.is_fifo() {
            Entry::Fifo { mode }
        } else {
            Entry::Other { what: format!("{ft:?}") }
        };
        out.insert(r, e);
    }
}

/// Compares two directory trees; describes the first difference.
pub fn compare_trees(a: &Path, b: &Path) -> Option<String> {
    compare_trees_excluding(a, b, &[])
}

/// Like [`compare_trees`], leaving out the relative paths in `exclude` and everything under
/// them.
pub fn compare_trees_excluding(a: &Path, b: &Path, exclude: &[&str]) -> Option<String> {
    let mut ta = BTreeMap::new();
    let mut tb = BTreeMap::new();
    walk(a, Path::new(""), &mut ta);
    walk(b, Path::new(""), &mut tb);
    let excluded = |p: &PathBuf| exclude.iter().any(|x| p.starts_with(x));
    ta.retain(|p, _| !excluded(p));
    tb.retain(|p, _| !excluded(p));
    for (p, ea) in &ta {
        match tb.get(p) {
            None => return Some(format!("{} exists only natively ({ea:?})", p.display())),
            Some(eb) if eb != ea => {
                return Some(format!("{}: native {ea:?}, sandboxed {eb:?}", p.display()));
            }
            Some(Entry::File { .. }) => {
                let ca = std::fs::read(a.join(p))
                    .unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
                let cb = std::fs::read(b.join(p))
                    .unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
                if let Some(d) = diff_bytes(&ca, &cb) {
                    return Some(format!("contents of {}: {d}", p.display()));
                }
            }
            Some(_) => {}
        }
    }
    for (p, eb) in &tb {
        if !ta.contains_key(p) {
            return Some(format!("{} exists only in the sandboxed run ({eb:?})", p.display()));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Expectations about sandbox-only outcomes
// ---------------------------------------------------------------------------------------------

/// Asserts the run died of signal `sig` and (unless `SANDBOX_TEST_SELFCHECK=1`) that stderr
/// has the sandbox's one-line report naming the signal and containing each of `hex_values`
/// (fault address, rip) as hex digits, case-insensitively, with or without `0x` and leading
/// zeros.
pub fn assert_signal_report(out: &Output, sig: i32, hex_values: &[u64]) {
    assert_eq!(
        out.signal(),
        Some(sig),
        "expected death by {} ({sig}), got {}\n{}",
        signal_name(sig),
        out.status_text(),
        out.report()
    );
    if out.mode == Mode::Native || selfcheck() {
        return;
    }
    let err = out.stderr_str();
    assert!(!err.contains("panicked"), "the sandbox panicked\n{}", out.report());
    let name = signal_name(sig);
    let line = err.lines().find(|l| l.contains(name)).unwrap_or_else(|| {
        panic!("stderr has no line naming {name} (the sandbox's fault report)\n{}", out.report())
    });
    let lower = line.to_ascii_lowercase();
    for v in hex_values {
        let hex = format!("{v:x}");
        assert!(
            lower.contains(&hex),
            "the fault report does not contain {v:#x}: {line:?}\n{}",
            out.report()
        );
    }
}

/// Whether `path` is an ELF file without PT_INTERP (statically linked, possibly static-pie).
pub fn is_static_elf(path: &Path) -> Result<bool, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        return Ok(false);
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let u64_at =
        |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().expect("8 bytes")) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > data.len() {
            return Ok(false);
        }
        if u32::from_le_bytes(data[o..o + 4].try_into().expect("4 bytes")) == 3 {
            return Ok(false); // PT_INTERP
        }
    }
    Ok(true)
}

/// Seconds since the epoch now.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Deterministic pseudo-random bytes (xorshift64*), `n` of them from `seed`.
pub fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(n);
    v
}

/// Sets atime and mtime of `path` (not following a symlink) to `secs` since the epoch.
pub fn set_mtime(path: &Path, secs: i64) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL in path");
    let t = libc::timespec { tv_sec: secs as libc::time_t, tv_nsec: 0 };
    let times = [t, t];
    // SAFETY: `c` is a NUL-terminated path and `times` two valid timespecs, both live for the
    // call; utimensat only reads them.
    let r = unsafe {
        libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW)
    };
    assert_eq!(r, 0, "utimensat {}: {}", path.display(), std::io::Error::last_os_error());
}

/// Sets the times of everything under `root` (and `root` itself) to `secs`, children first.
pub fn set_mtimes_recursive(root: &Path, secs: i64) {
    let md = std::fs::symlink_metadata(root).expect("lstat");
    if md.is_dir() {
        let mut names: Vec<PathBuf> = std::fs::read_dir(root)
            .expect("read_dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.sort();
        for p in names {
            set_mtimes_recursive(&p, secs);
        }
    }
    set_mtime(root, secs);
}

/// Writes `contents` to `dir/rel`, creating parent directories.
pub fn write_file(dir: &Path, rel: &str, contents: impl AsRef<[u8]>) {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("create parent directories");
    }
    std::fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
}

/// Sets the permission bits of `dir/rel`.
pub fn chmod(dir: &Path, rel: &str, mode: u32) {
    let p = dir.join(rel);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}
