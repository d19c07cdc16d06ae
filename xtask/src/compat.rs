//! `cargo xtask compat`: CPython's own regression tests (Debian's `libpython3.11-testsuite`),
//! natively and then in the sandbox, module by module, compared test by test.
//!
//! Each module runs as one `python3.11 -m test --junit-xml FILE -v MODULE` process, first
//! natively, then as `sandbox run -- python3.11 -m test ...`, one after the other, each under a
//! wall-clock limit (`--timeout`): at the limit the run gets `SIGABRT` (regrtest's faulthandler
//! prints every thread's Python stack to the log), then its whole process group `SIGKILL`, and
//! the module is reported as TIMEOUT. Per test case the outcome comes from the JUnit file,
//! completed by the verbose log ([`compat_results`](crate::compat_results)). A test that passes natively but not
//! sandboxed is a regression unless [`EXPECTED`] lists it with the documented
//! difference that explains it; any other regression makes the command exit with status 1.
//!
//! Logs: `target/compat/<module>/{native,sandbox}.{log,xml,json}` and the table in
//! `target/compat/summary.txt`.

use crate::compat_expected::EXPECTED;
use crate::compat_results::{
    self as results, Comparison, Counts, End, Results, Row, RunSummary, Stop,
};
use crate::provision::{self, Check, Package};
use crate::util;
use std::fmt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The interpreter whose test suite `libpython3.11-testsuite` is.
pub const PYTHON: &str = "/usr/bin/python3.11";

/// Where that package puts the tests.
const TEST_DIR: &str = "/usr/lib/python3.11/test";

/// What `cargo xtask compat` needs: the interpreter and its test suite.
pub const PACKAGES: &[Package] = &[
    Package { name: "python3.11", check: Check::File(PYTHON) },
    Package {
        name: "libpython3.11-testsuite",
        check: Check::File("/usr/lib/python3.11/test/test_os.py"),
    },
];

/// The modules of a full run (the issue's list), in the order they run.
pub const FULL: &[&str] = &[
    "test_os",
    "test_posix",
    "test_signal",
    "test_subprocess",
    "test_threading",
    "test_select",
    "test_mmap",
    "test_fcntl",
    "test_time",
    "test_tempfile",
    "test_shutil",
    "test_io",
    "test_fileio",
    "test_socket",
    "test_selectors",
    "test_pty",
    "test_resource",
    "test_faulthandler",
    "test_sys",
    "test_thread",
    "test_zlib",
    "test_hashlib",
    "test_re",
    "test_pathlib",
    "test_stat",
    "test_random",
    "test_json",
    "test_glob",
    "test_uuid",
    "test_struct",
    "test_concurrent_futures",
    "test_asyncio",
    "test_multiprocessing_fork",
];

/// The CI subset: the modules that take seconds natively and at most about a minute sandboxed
/// (about 5 minutes together on our 2-core kvm_pvm machine, 10 with its worst noise): files,
/// descriptors, memory, processes, threads, signals, time, terminals, limits.
pub const CI: &[&str] = &[
    "test_fcntl",
    "test_stat",
    "test_struct",
    "test_json",
    "test_glob",
    "test_select",
    "test_mmap",
    "test_tempfile",
    "test_fileio",
    "test_posix",
    "test_os",
    "test_shutil",
    "test_pathlib",
    "test_thread",
    "test_zlib",
    "test_time",
    "test_pty",
    "test_resource",
    "test_sys",
    "test_re",
    "test_hashlib",
    "test_uuid",
    "test_signal",
];

/// A pattern of tests left out of both runs of a module (regrtest's `-i PATTERN`, an `fnmatch`
/// pattern over the full test name), and why.
#[derive(Debug, Clone, Copy)]
pub struct Deselected {
    /// The module it applies to (and its submodules).
    pub module: &'static str,
    /// The pattern.
    pub pattern: &'static str,
    /// Why it cannot run, in a few words.
    pub reason: &'static str,
}

/// Tests that hang or cannot run *natively* on our machines, so they say nothing about the
/// sandbox. Only native trouble belongs here; a sandboxed difference goes to
/// [`EXPECTED`] (documented) or stays a failure (a bug).
pub const DESELECTED: &[Deselected] = &[Deselected {
    module: "test_socket",
    pattern: "test.test_socket.*VSOCK*",
    reason: "our VMs have /dev/vsock, but natively an AF_VSOCK connect() to the local CID never \
             completes (ThreadedVSOCKSocketStreamTest.testStream hangs the module)",
}];

/// The [`DESELECTED`] entries of `module`.
fn deselected(module: &str) -> impl Iterator<Item = &'static Deselected> {
    DESELECTED.iter().filter(move |d| {
        module == d.module
            || module.strip_prefix(d.module).is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Named module lists for `--subset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Subset {
    /// The 33 modules of the issue (see [`FULL`]): about an hour.
    Full,
    /// The CI subset (see [`CI`]): about 5 minutes.
    Ci,
}

/// Arguments of `cargo xtask compat`.
#[derive(Debug, clap::Args)]
pub struct CompatArgs {
    /// The modules to run, comma-separated (`test_os,test_mmap`; a package's submodule such as
    /// `test_asyncio.test_events` works too). Overrides --subset.
    #[arg(long, value_delimiter = ',', value_name = "MODULE,...")]
    pub modules: Vec<String>,
    /// A named list of modules.
    #[arg(long, value_enum, default_value = "full")]
    pub subset: Subset,
    /// Wall-clock limit of one module's native or sandboxed run, resumptions included, in
    /// seconds (TIMEOUT).
    #[arg(long, default_value_t = 1200, value_name = "SECONDS")]
    pub timeout: u64,
    /// A run whose log has not grown for this many seconds is stopped like one past
    /// --timeout (HUNG); 0: never.
    #[arg(long, default_value_t = 240, value_name = "SECONDS")]
    pub stall: u64,
    /// How many times a run that stopped in a test (hung, timed out, crashed) is resumed
    /// after it, without the tests already reported; the test it stopped in counts as an
    /// error.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub resumes: u32,
    /// Only the native runs (no sandbox build, no comparison).
    #[arg(long, conflicts_with = "reuse_native")]
    pub native_only: bool,
    /// Take each module's native results from the previous run's files in target/compat,
    /// where they are (run it natively otherwise).
    #[arg(long)]
    pub reuse_native: bool,
    /// Do not check for or install the Debian packages (python3.11, its test suite).
    #[arg(long)]
    pub no_provision: bool,
    /// Do not run `cargo build --release -p sandbox` first; use target/release/sandbox as is.
    #[arg(long)]
    pub no_build: bool,
    /// Keep regrtest's working directories (target/compat/tmp) instead of removing them.
    #[arg(long)]
    pub keep: bool,
    /// An option for `sandbox run` (repeatable), e.g. `--sandbox-arg=--no-switchless`.
    #[arg(long, value_name = "OPTION", allow_hyphen_values = true)]
    pub sandbox_arg: Vec<String>,
    /// Passed to regrtest in both runs, before the module (e.g. `-u all`, `-m test_name`).
    #[arg(last = true, value_name = "REGRTEST ARGS")]
    pub regrtest_args: Vec<String>,
}

/// What can stop `cargo xtask compat` before it has results.
#[derive(Debug)]
pub enum CompatError {
    /// A module name that is not a test module of the installed suite.
    UnknownModule(String),
    /// A file or directory could not be read or written.
    Io {
        /// What was being done, with the path.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// Provisioning, the sandbox build or starting a process failed.
    Setup(String),
}

impl fmt::Display for CompatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompatError::UnknownModule(m) => write!(
                f,
                "`{m}` is not a test module of {TEST_DIR} (a name like test_os, or \
                 test_asyncio.test_events; is libpython3.11-testsuite installed?)"
            ),
            CompatError::Io { what, source } => write!(f, "cannot {what}: {source}"),
            CompatError::Setup(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for CompatError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CompatError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An [`CompatError::Io`] for doing `what` with `path`.
fn io_err(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> CompatError {
    let what = format!("{what} {}", path.display());
    move |source| CompatError::Io { what, source }
}

/// Runs `cargo xtask compat`: 0 when every test that passes natively passes sandboxed (or is
/// expected not to), 1 otherwise, 130 when interrupted.
pub fn main(args: &CompatArgs) -> Result<ExitCode, String> {
    run(args).map_err(|e| e.to_string())
}

fn run(args: &CompatArgs) -> Result<ExitCode, CompatError> {
    let modules: Vec<String> = if args.modules.is_empty() {
        let list = match args.subset {
            Subset::Full => FULL,
            Subset::Ci => CI,
        };
        list.iter().map(|m| m.to_string()).collect()
    } else {
        args.modules.iter().map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect()
    };
    if let Some(bad) = modules.iter().find(|m| !valid_module_name(m)) {
        return Err(CompatError::UnknownModule(bad.clone()));
    }
    if !args.no_provision {
        println!("==> provision");
        provision::provision_packages(PACKAGES)
            .map_err(|e| CompatError::Setup(format!("{e}, or pass --no-provision")))?;
    }
    if let Some(missing) = modules.iter().find(|m| !module_exists(m)) {
        return Err(CompatError::UnknownModule(missing.clone()));
    }
    let sandbox = util::target_dir().join("release").join("sandbox");
    if !args.native_only {
        if !args.no_build {
            println!("==> build");
            util::run_ok(&mut util::cmd("cargo", ["build", "--release", "-p", "sandbox"]))
                .map_err(CompatError::Setup)?;
        }
        if !sandbox.is_file() {
            return Err(CompatError::Setup(format!(
                "{} does not exist; run without --no-build",
                sandbox.display()
            )));
        }
    }
    let out = util::target_dir().join("compat");
    let tmp = out.join("tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err("remove", &tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
    install_sigint_handler();

    let limit = Duration::from_secs(args.timeout.max(1));
    let t0 = Instant::now();
    let mut rows = Vec::new();
    for (i, module) in modules.iter().enumerate() {
        println!("==> [{}/{}] {module}", i + 1, modules.len());
        for d in deselected(module) {
            println!("    left out of both runs: {} ({})", d.pattern, d.reason);
        }
        let dir = out.join(module);
        std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let reused =
            if args.reuse_native { Stored::load(&dir, Mode::Native, module) } else { None };
        let native = match reused {
            Some(stored) => {
                println!("    native: reusing {}", dir.join("native.log").display());
                stored
            }
            None => run_mode(args, Mode::Native, module, &dir, &tmp, &sandbox, limit)?,
        };
        print_run(Mode::Native, &native);
        let mut row = Row {
            module: module.clone(),
            native: Some(native.summary()),
            sandbox: None,
            comparison: None,
        };
        if !args.native_only && !interrupted() {
            let sandboxed = run_mode(args, Mode::Sandbox, module, &dir, &tmp, &sandbox, limit)?;
            print_run(Mode::Sandbox, &sandboxed);
            let c = results::compare(module, &native.results, &sandboxed.results, EXPECTED);
            print_comparison(&c, &native, &sandboxed);
            row.sandbox = Some(sandboxed.summary());
            row.comparison = Some(c);
        }
        rows.push(row);
        if interrupted() {
            println!("    interrupted: stopping after {module}");
            break;
        }
    }
    if !args.keep {
        let _ = std::fs::remove_dir_all(&tmp);
    }

    let table = results::table(&rows);
    let listing = results::lost_listing(&rows);
    let summary = format!(
        "cargo xtask compat: {} module(s) in {:.0} s\n\n{table}{}{listing}",
        rows.len(),
        t0.elapsed().as_secs_f64(),
        if listing.is_empty() { "" } else { "\ntests that pass natively and not sandboxed:\n" },
    );
    println!("\n{summary}");
    let summary_path = out.join("summary.txt");
    std::fs::write(&summary_path, &summary).map_err(io_err("write", &summary_path))?;
    println!("(also in {}; logs in {}/<module>/)", summary_path.display(), out.display());

    let unexpected: usize =
        rows.iter().filter_map(|r| r.comparison.as_ref()).map(|c| c.unexpected().count()).sum();
    if interrupted() {
        return Ok(ExitCode::from(130));
    }
    if unexpected > 0 {
        println!(
            "FAILED: {unexpected} test(s) pass natively and not sandboxed, and \
             xtask/src/compat_expected.rs does not explain them"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// A dotted module name whose parts are identifiers, the first starting with `test_`.
fn valid_module_name(m: &str) -> bool {
    m.starts_with("test_")
        && m.split('.').all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !p.as_bytes()[0].is_ascii_digit()
        })
}

/// Whether the installed test suite has module `m` (a file or a package).
fn module_exists(m: &str) -> bool {
    let rel = m.replace('.', "/");
    let base = Path::new(TEST_DIR).join(rel);
    base.with_extension("py").is_file() || base.join("__init__.py").is_file()
}

/// Native or sandboxed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Native,
    Sandbox,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Sandbox => "sandbox",
        }
    }
}

/// One part of a module's run: regrtest from the start, or resumed after the test the previous
/// part stopped in.
#[derive(Debug, Clone, PartialEq)]
struct Part {
    end: End,
    secs: f64,
    /// The test it was in when it stopped before its end (hung, timed out, crashed).
    stopped_in: Option<String>,
}

/// A module's finished run, native or sandboxed, in one part or more: how it ended, how long
/// it took in all, and what its files say.
#[derive(Debug)]
struct Stored {
    parts: Vec<Part>,
    results: Results,
    /// The first part's log.
    log: PathBuf,
}

impl Stored {
    fn end(&self) -> End {
        self.parts.last().map_or(End::Exited(-1), |p| p.end)
    }

    fn secs(&self) -> f64 {
        self.parts.iter().map(|p| p.secs).sum()
    }

    /// The parts that stopped before their end.
    fn stops(&self) -> impl Iterator<Item = &Part> {
        self.parts.iter().filter(|p| !p.end.finished())
    }

    fn summary(&self) -> RunSummary {
        let stops = self.stops().count();
        RunSummary {
            counts: self.results.counts(),
            secs: self.secs(),
            end: self.end(),
            stops: self.stops().next().map(|first| (stops, first.end)),
        }
    }

    /// The run a previous `cargo xtask compat` left in `dir`, if it left all of its files.
    fn load(dir: &Path, mode: Mode, module: &str) -> Option<Stored> {
        let meta = std::fs::read_to_string(dir.join(format!("{}.json", mode.name()))).ok()?;
        let parts = parts_from_json(&meta)?;
        let mut results = Results::default();
        for (i, part) in parts.iter().enumerate() {
            let r = read_part(dir, mode, module, i).ok()?;
            let resumed = i + 1 < parts.len();
            let stop = resumed.then(|| Stop { test: part.stopped_in.clone(), end: part.end });
            results::add_part(&mut results, r, stop.as_ref());
        }
        Some(Stored { parts, results, log: part_files(dir, mode, 0).0 })
    }
}

/// `End` as a JSON kind and value.
fn end_to_json(end: End) -> (&'static str, i32) {
    match end {
        End::Exited(c) => ("exited", c),
        End::Signaled(s) => ("signaled", s),
        End::TimedOut => ("timeout", 0),
        End::Hung => ("hung", 0),
        End::Interrupted => ("interrupted", 0),
    }
}

/// The inverse of [`end_to_json`].
fn end_from_json(kind: &str, value: i32) -> Option<End> {
    Some(match kind {
        "exited" => End::Exited(value),
        "signaled" => End::Signaled(value),
        "timeout" => End::TimedOut,
        "hung" => End::Hung,
        "interrupted" => End::Interrupted,
        _ => return None,
    })
}

/// `{"parts": [{"end": "hung", "value": 0, "secs": 1.5, "stopped_in": "test.x.Y.z"}, ...]}`.
fn parts_to_json(parts: &[Part]) -> String {
    let parts: Vec<_> = parts
        .iter()
        .map(|p| {
            let (end, value) = end_to_json(p.end);
            serde_json::json!({
                "end": end, "value": value, "secs": p.secs, "stopped_in": p.stopped_in
            })
        })
        .collect();
    serde_json::json!({ "parts": parts }).to_string()
}

/// The inverse of [`parts_to_json`]; `None` for anything else (or no parts).
fn parts_from_json(json: &str) -> Option<Vec<Part>> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let parts = v["parts"].as_array()?;
    let parts = parts
        .iter()
        .map(|p| {
            let value = i32::try_from(p["value"].as_i64()?).ok()?;
            Some(Part {
                end: end_from_json(p["end"].as_str()?, value)?,
                secs: p["secs"].as_f64()?,
                stopped_in: p["stopped_in"].as_str().map(String::from),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    (!parts.is_empty()).then_some(parts)
}

/// The log and JUnit file of part `i` (0 first): `native.log`, `native.xml`, then
/// `native.1.log`, ...
fn part_files(dir: &Path, mode: Mode, i: usize) -> (PathBuf, PathBuf) {
    let stem = if i == 0 { mode.name().to_string() } else { format!("{}.{i}", mode.name()) };
    (dir.join(format!("{stem}.log")), dir.join(format!("{stem}.xml")))
}

/// Reads part `i`'s log and, when the part got to write it, its JUnit file.
fn read_part(dir: &Path, mode: Mode, module: &str, i: usize) -> Result<Results, CompatError> {
    let (log_path, xml_path) = part_files(dir, mode, i);
    let bytes = std::fs::read(&log_path).map_err(io_err("read", &log_path))?;
    let log = results::parse_verbose(&String::from_utf8_lossy(&bytes), module);
    let junit = match std::fs::read(&xml_path) {
        Ok(xml) => match results::parse_junit(&String::from_utf8_lossy(&xml)) {
            Ok(cases) => cases,
            Err(e) => {
                println!("    warning: {}: {e}; using the log only", xml_path.display());
                Vec::new()
            }
        },
        Err(_) => Vec::new(),
    };
    Ok(results::merge(log, junit))
}

/// Runs `module` natively or sandboxed, with its files in `dir`, within `limit` in all. A part
/// that stops in a test before its end (hung, past the limit, crashed) is followed by another
/// that leaves out every test reported so far and that one (regrtest's `--ignorefile`), up to
/// `--resumes` times, while time is left.
fn run_mode(
    args: &CompatArgs,
    mode: Mode,
    module: &str,
    dir: &Path,
    tmp: &Path,
    sandbox: &Path,
    limit: Duration,
) -> Result<Stored, CompatError> {
    let name = mode.name();
    // The previous run's files of this mode.
    let entries = std::fs::read_dir(dir).map_err(io_err("list", dir))?;
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&format!("{name}.")) {
            let p = e.path();
            std::fs::remove_file(&p).map_err(io_err("remove", &p))?;
        }
    }
    let started = Instant::now();
    let stall = (args.stall > 0).then(|| Duration::from_secs(args.stall));
    let mut parts = Vec::new();
    let mut whole = Results::default();
    loop {
        let i = parts.len();
        let (log, xml) = part_files(dir, mode, i);
        let work = tmp.join(format!("{module}.{name}.{i}"));
        std::fs::create_dir_all(&work).map_err(io_err("create", &work))?;
        let mut cmd = match mode {
            Mode::Native => Command::new(PYTHON),
            Mode::Sandbox => {
                let mut c = Command::new(sandbox);
                c.arg("run");
                // CPython's suite against native Linux: the null policy unless asked otherwise.
                if !args.sandbox_arg.iter().any(|a| a.starts_with("--policy")) {
                    c.args(["--policy", "null"]);
                }
                c.args(&args.sandbox_arg).arg("--").arg(PYTHON);
                c
            }
        };
        cmd.args(["-m", "test", "--tempdir"])
            .arg(&work)
            .arg("--junit-xml")
            .arg(&xml)
            .arg("-v")
            .args(deselected(module).flat_map(|d| ["-i", d.pattern]));
        if i > 0 {
            let ignore = dir.join(format!("{name}.{i}.ignore"));
            std::fs::write(&ignore, results::ignore_list(&whole))
                .map_err(io_err("write", &ignore))?;
            cmd.arg("--ignorefile").arg(&ignore);
        }
        cmd.args(&args.regrtest_args).arg(module).current_dir(dir);
        println!("    $ {}", util::command_line(&cmd));
        let left = limit.saturating_sub(started.elapsed());
        let (end, secs) = run_logged(&mut cmd, &log, left, stall)?;
        let part = read_part(dir, mode, module, i)?;
        let stopped_in = if end.finished() { None } else { part.running.clone() };
        let resume = !end.finished()
            && end != End::Interrupted
            && i < args.resumes as usize
            && started.elapsed() < limit;
        let after = if resume { results::resume_after(&part, &whole) } else { None };
        let stop = after.as_ref().map(|t| Stop { test: Some(t.clone()), end });
        results::add_part(&mut whole, part, stop.as_ref());
        parts.push(Part { end, secs, stopped_in });
        let meta = dir.join(format!("{name}.json"));
        std::fs::write(&meta, parts_to_json(&parts)).map_err(io_err("write", &meta))?;
        match after {
            Some(t) => println!("    {name}: {end} in {t} after {secs:.1} s; resuming after it"),
            None => break,
        }
    }
    Ok(Stored { parts, results: whole, log: part_files(dir, mode, 0).0 })
}

/// Set by the SIGINT handler: stop the running module and report what ran.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Ctrl-C sets [`INTERRUPTED`] instead of killing xtask: the runs are in process groups of
/// their own (so that a timeout can kill all of a run), which the terminal's SIGINT does not
/// reach, and xtask must kill them itself.
#[allow(unsafe_code)]
fn install_sigint_handler() {
    let handler: extern "C" fn(libc::c_int) = on_sigint;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe; `signal` has no
    // memory preconditions.
    unsafe { libc::signal(libc::SIGINT, handler as libc::sighandler_t) };
}

/// Sends `sig` to process group `pgid`, ignoring errors (the group may be gone).
#[allow(unsafe_code)]
fn kill_group(pgid: i32, sig: i32) {
    // SAFETY: kill(2) touches no memory of ours; a negative pid names a process group, and
    // `pgid` is the id of a child we started as the leader of a group of its own.
    unsafe { libc::kill(-pgid, sig) };
}

/// Runs `cmd` in a process group of its own with stdout and stderr to `log` and stdin from
/// /dev/null, for at most `limit`, and while the log grows at least once per `stall`. At the
/// limit, past the stall limit or on Ctrl-C, the leader gets `SIGABRT` (Python's faulthandler
/// then writes every thread's stack to the log) and 10 s to go, then the group gets `SIGKILL`.
/// When the leader ends, what is left of its group is killed too.
fn run_logged(
    cmd: &mut Command,
    log: &Path,
    limit: Duration,
    stall: Option<Duration>,
) -> Result<(End, f64), CompatError> {
    let file = std::fs::File::create(log).map_err(io_err("create", log))?;
    let err = file.try_clone().map_err(io_err("duplicate the descriptor of", log))?;
    let watch = file.try_clone().map_err(io_err("duplicate the descriptor of", log))?;
    let (mut size, mut grew) = (0, Instant::now());
    cmd.stdin(Stdio::null()).stdout(file).stderr(err).process_group(0);
    let t0 = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        CompatError::Setup(format!("cannot start {}: {e}", cmd.get_program().to_string_lossy()))
    })?;
    let Ok(pgid) = i32::try_from(child.id()) else {
        let _ = child.kill();
        return Err(CompatError::Setup("child process id out of range".into()));
    };
    let wait = |child: &mut std::process::Child| {
        child.try_wait().map_err(|e| CompatError::Setup(format!("cannot wait for a child: {e}")))
    };
    let mut stopping: Option<(Instant, End)> = None;
    let status: ExitStatus = loop {
        if let Some(status) = wait(&mut child)? {
            break status;
        }
        let now_size = watch.metadata().map_or(size, |m| m.len());
        if now_size != size {
            (size, grew) = (now_size, Instant::now());
        }
        let hung = stall.is_some_and(|s| grew.elapsed() > s);
        match stopping {
            None if interrupted() || t0.elapsed() > limit || hung => {
                let why = if interrupted() {
                    End::Interrupted
                } else if t0.elapsed() > limit {
                    End::TimedOut
                } else {
                    End::Hung
                };
                // SIGABRT to the leader only: faulthandler's dump, then its own death.
                // SAFETY: see `kill_group`; a positive pid is the child itself.
                #[allow(unsafe_code)]
                unsafe {
                    libc::kill(pgid, libc::SIGABRT)
                };
                stopping = Some((Instant::now(), why));
            }
            Some((since, _)) if since.elapsed() > Duration::from_secs(10) => {
                kill_group(pgid, libc::SIGKILL);
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let secs = t0.elapsed().as_secs_f64();
    kill_group(pgid, libc::SIGKILL);
    let end = match (stopping, status.code(), status.signal()) {
        (Some((_, why)), _, _) => why,
        (None, Some(code), _) => End::Exited(code),
        (None, None, Some(sig)) => End::Signaled(sig),
        (None, None, None) => End::Exited(-1),
    };
    Ok((end, secs))
}

/// `    native: 312 pass, 0 fail, 0 error, 20 skip in 12.3 s (ok)`, and where a run stopped.
fn print_run(mode: Mode, run: &Stored) {
    let Counts { pass, fail, error, skip } = run.results.counts();
    println!(
        "    {:<7} {pass} pass, {fail} fail, {error} error, {skip} skip in {:.1} s ({})",
        format!("{}:", mode.name()),
        run.secs(),
        run.summary().end_column()
    );
    if let Some(why) = &run.results.module_skipped {
        println!("            the whole module was skipped: {why}");
    }
    for stop in run.stops() {
        let test = stop.stopped_in.as_deref().unwrap_or("a test the log does not name");
        println!("            {} after {:.1} s in {test}", stop.end, stop.secs);
    }
    if run.stops().next().is_some() {
        println!(
            "            (faulthandler's stacks are in {} and the parts after it)",
            run.log.display()
        );
    }
}

/// The module's lost tests, as they come (the table at the end repeats them).
fn print_comparison(c: &Comparison, native: &Stored, sandboxed: &Stored) {
    let ratio = if native.secs() > 0.0 { sandboxed.secs() / native.secs() } else { 0.0 };
    println!(
        "    {} of {} native passes pass sandboxed; time {ratio:.1}×",
        c.both_pass, c.native_pass
    );
    for l in &c.lost {
        let what = l.sandbox.as_ref().map_or("missing", |s| s.outcome.name());
        let detail = l.sandbox.as_ref().and_then(|s| s.detail.as_deref()).unwrap_or("");
        let exp = if l.expected.is_some() { " [expected]" } else { "" };
        println!("      {what:<7} {}{exp} {detail}", l.test);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_lists() {
        assert_eq!(FULL.len(), 33);
        assert!(FULL.iter().chain(CI).all(|m| valid_module_name(m)));
        assert!(CI.iter().all(|m| FULL.contains(m)), "the CI subset is part of the full run");
        let mut sorted = FULL.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), FULL.len(), "no module twice");
    }

    #[test]
    fn deselection_applies_to_the_module_and_its_submodules() {
        assert_eq!(deselected("test_socket").count(), 1);
        assert_eq!(deselected("test_socket.sub").count(), 1);
        assert_eq!(deselected("test_socketserver").count(), 0);
        assert!(DESELECTED.iter().all(|d| FULL.contains(&d.module) && d.pattern.contains('*')));
    }

    #[test]
    fn module_names() {
        assert!(valid_module_name("test_os"));
        assert!(valid_module_name("test_asyncio.test_events"));
        assert!(!valid_module_name("os"));
        assert!(!valid_module_name("test_os;rm -rf /"));
        assert!(!valid_module_name("test_x..y"));
        assert!(!valid_module_name("test_x.1y"));
        assert!(!valid_module_name("../test_x"));
    }

    #[test]
    fn parts_round_trip_through_json() {
        let parts: Vec<Part> =
            [End::Hung, End::Signaled(9), End::TimedOut, End::Interrupted, End::Exited(2)]
                .into_iter()
                .enumerate()
                .map(|(i, end)| Part {
                    end,
                    secs: i as f64 + 0.5,
                    stopped_in: (!end.finished()).then(|| format!("test.m.A.test_{i}")),
                })
                .collect();
        assert_eq!(parts_from_json(&parts_to_json(&parts)), Some(parts));
        assert_eq!(parts_from_json(r#"{"parts":[]}"#), None);
        assert_eq!(parts_from_json("not json"), None);
        assert_eq!(parts_from_json(r#"{"parts":[{"secs":1,"end":"what","value":0}]}"#), None);
    }

    #[test]
    fn a_run_past_its_limit_is_killed_with_its_group() {
        let dir = std::env::temp_dir().join(format!("xtask-compat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("log");
        // A child of the shell that would outlive it holds the group until killed.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; sleep 30 & sleep 30"]);
        let t0 = Instant::now();
        let (end, secs) = run_logged(&mut cmd, &log, Duration::from_millis(300), None).unwrap();
        assert_eq!(end, End::TimedOut);
        assert!(secs < 15.0 && t0.elapsed() < Duration::from_secs(15), "{secs}");
        assert!(std::fs::read_to_string(&log).unwrap().contains("started"));
        // Output keeps a run alive past the stall limit; silence ends it.
        let mut talks = Command::new("sh");
        talks.args(["-c", "for i in 1 2 3 4 5; do echo $i; sleep 0.2; done; sleep 30"]);
        let stall = Some(Duration::from_millis(700));
        let (end, secs) = run_logged(&mut talks, &log, Duration::from_secs(20), stall).unwrap();
        assert_eq!(end, End::Hung);
        assert!((1.5..15.0).contains(&secs), "{secs}");
        let mut ok = Command::new("sh");
        ok.args(["-c", "exit 3"]);
        let (end, _) = run_logged(&mut ok, &log, Duration::from_secs(30), stall).unwrap();
        assert_eq!(end, End::Exited(3));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
