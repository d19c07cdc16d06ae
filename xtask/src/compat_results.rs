//! The pure half of `cargo xtask compat`: reading regrtest's results (the JUnit file and the
//! verbose log), comparing a native run with a sandboxed one test by test, and the tables.
//!
//! Nothing here starts processes or touches KVM, so all of it is unit-tested.

use crate::compat_expected::Expected;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How one test case ended.
///
/// Ordered from best to worst, so the worst of several subtests is their `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// `ok`, or an expected failure (unittest counts both as success).
    Pass,
    /// Skipped (`skipTest`, `@skipIf`, a missing resource).
    Skip,
    /// An assertion failed, or an unexpected success.
    Fail,
    /// The test raised something other than an assertion failure.
    Error,
}

impl Outcome {
    /// A short lower-case name: `pass`, `skip`, `fail`, `error`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Skip => "skip",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
        }
    }
}

/// One test case's result: its outcome and, for failures, errors and skips, one line saying
/// why (the exception line, or the skip reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// How it ended.
    pub outcome: Outcome,
    /// Why, in one line (at most [`DETAIL_MAX`] characters), where known.
    pub detail: Option<String>,
}

/// The most characters of a [`Case::detail`].
pub const DETAIL_MAX: usize = 160;

/// Everything one run of one module said about its tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Results {
    /// Every test case by full name (`test.test_os.FileTests.test_access`), plus fixtures that
    /// failed (`setUpClass (test.test_os.FileTests)`).
    pub cases: BTreeMap<String, Case>,
    /// The test that had started but not ended when the log stops: where a crashed or killed
    /// run was.
    pub running: Option<String>,
    /// regrtest's reason when it skipped the whole module (`test_x skipped -- reason`).
    pub module_skipped: Option<String>,
}

/// Pass/skip/fail/error counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Passed (including expected failures).
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Errors.
    pub error: usize,
    /// Skipped.
    pub skip: usize,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.pass += o.pass;
        self.fail += o.fail;
        self.error += o.error;
        self.skip += o.skip;
    }
}

impl Results {
    /// How many cases ended each way.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for case in self.cases.values() {
            match case.outcome {
                Outcome::Pass => c.pass += 1,
                Outcome::Fail => c.fail += 1,
                Outcome::Error => c.error += 1,
                Outcome::Skip => c.skip += 1,
            }
        }
        c
    }

    /// Records `outcome` for `name`, keeping the worse of two reports of the same test (a
    /// test's subtests report separately).
    fn record(&mut self, name: String, outcome: Outcome, detail: Option<String>) {
        let detail = detail.map(|d| one_line(&d)).filter(|d| !d.is_empty());
        match self.cases.get_mut(&name) {
            Some(c) if c.outcome > outcome => {}
            Some(c) if c.outcome == outcome => {
                if c.detail.is_none() {
                    c.detail = detail;
                }
            }
            _ => {
                self.cases.insert(name, Case { outcome, detail });
            }
        }
    }
}

/// `s` squeezed onto one line (whitespace runs become one space), at most [`DETAIL_MAX`]
/// characters.
fn one_line(s: &str) -> String {
    let squeezed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match squeezed.char_indices().nth(DETAIL_MAX) {
        Some((cut, _)) => format!("{}…", &squeezed[..cut]),
        None => squeezed,
    }
}

/// The unittest fixtures whose errors unittest reports under their own name.
const FIXTURES: &[&str] = &["setUpClass", "tearDownClass", "setUpModule", "tearDownModule"];

/// A verbose-mode test description at the start of `line`: `method (dotted.id)REST`, after
/// two spaces for a subtest. Returns the test's full name, REST, and whether it is a subtest.
fn description(line: &str) -> Option<(String, &str, bool)> {
    let (subtest, line) = match line.strip_prefix("  ") {
        Some(l) if !l.starts_with(' ') => (true, l),
        _ => (false, line),
    };
    let (method, after) = line.split_once(" (")?;
    let ident =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    // (A module that failed to import or was skipped is reported as `test.pkg.mod
    // (unittest.loader.ModuleSkipped.test.pkg.mod)`: dotted.)
    if !method.split('.').all(ident) {
        return None;
    }
    let (id, rest) = after.split_once(')')?;
    if !id.contains('.') || !id.split('.').all(ident) {
        return None;
    }
    let name = if FIXTURES.contains(&method) {
        format!("{method} ({id})")
    } else if id.ends_with(&format!(".{method}")) {
        id.to_string()
    } else {
        // doctests: `name (module)`; their id is `module.name`.
        format!("{id}.{method}")
    };
    Some((name, rest, subtest))
}

/// A verbose-mode status word: `ok`, `FAIL`, `ERROR`, `skipped 'why'`, `expected failure`,
/// `unexpected success`.
fn status(s: &str) -> Option<(Outcome, Option<String>)> {
    let s = s.trim();
    Some(match s {
        "ok" | "expected failure" => (Outcome::Pass, None),
        "FAIL" => (Outcome::Fail, None),
        "ERROR" => (Outcome::Error, None),
        "unexpected success" => (Outcome::Fail, Some("unexpected success".into())),
        _ => {
            let why = s.strip_prefix("skipped")?;
            if !(why.is_empty() || why.starts_with(' ')) {
                return None;
            }
            let why = why.trim();
            let why = why.strip_prefix('\'').and_then(|w| w.strip_suffix('\'')).unwrap_or(why);
            (Outcome::Skip, Some(why.to_string()))
        }
    })
}

/// A separator line of unittest's failure report: 70 `=` or 70 `-`.
fn separator(line: &str, c: char) -> bool {
    line.len() == 70 && line.chars().all(|x| x == c)
}

/// The exception line of a traceback block: the last unindented `Name: message` or bare `Name`
/// line (unittest appends the captured output after it, which this skips when it is indented
/// or introduced by `Stdout:`/`Stderr:`).
fn exception_line(block: &[&str]) -> Option<String> {
    let mut found = None;
    for line in block {
        if *line == "Stdout:" || *line == "Stderr:" {
            break;
        }
        if line.starts_with(' ') || line.starts_with("Traceback ") || line.starts_with("During ") {
            continue;
        }
        let head = line.split_once(':').map_or(*line, |(h, _)| h);
        let exception_name = !head.is_empty()
            && head.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            && head.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
        if exception_name {
            found = Some(line.to_string());
        }
    }
    found
}

/// Reads regrtest's verbose output (`-v`): one status per test (`name (id) ... ok`), subtest
/// failures, fixture errors, and the exception lines of the failure report at the end. Lines
/// that are not unittest's are ignored; a status on a line of its own after a test's output
/// belongs to the test that is waiting for one.
pub fn parse_verbose(log: &str, module: &str) -> Results {
    let mut r = Results::default();
    // The test waiting for its status, and whether its ` ... ` was seen.
    let mut pending: Option<(String, bool)> = None;
    let lines: Vec<&str> = log.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if let Some(why) = line.strip_prefix(module).and_then(|l| l.strip_prefix(" skipped -- ")) {
            r.module_skipped = Some(why.trim().to_string());
            continue;
        }
        // The failure report: `FAIL: description`, a dashed line, the traceback.
        if let Some((outcome, desc)) = line
            .strip_prefix("FAIL: ")
            .map(|d| (Outcome::Fail, d))
            .or_else(|| line.strip_prefix("ERROR: ").map(|d| (Outcome::Error, d)))
            && lines.get(i).is_some_and(|l| separator(l, '-'))
            && let Some((name, _, _)) = description(desc)
        {
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && !separator(lines[end], '=') && !separator(lines[end], '-') {
                end += 1;
            }
            let detail = exception_line(&lines[start..end]);
            match r.cases.get_mut(&name) {
                Some(c) if c.detail.is_none() => c.detail = detail.map(|d| one_line(&d)),
                Some(_) => {}
                None => r.record(name, outcome, detail),
            }
            i = end;
            continue;
        }
        // A doctest: `name (module)` (or `name ()`), then `Doctest: dotted.name ... status`.
        if let Some((name, st)) = line.strip_prefix("Doctest: ").and_then(|l| l.split_once(" ... "))
            && let Some((outcome, detail)) = status(st)
        {
            r.record(name.to_string(), outcome, detail);
            pending = None;
            continue;
        }
        if let Some((name, rest, subtest)) = description(line) {
            if subtest {
                // `  test_x (id) (i=1) ... FAIL`: the parent test takes the worst outcome.
                if let Some((_, st)) = rest.split_once(" ... ")
                    && let Some((outcome, detail)) = status(st)
                {
                    if pending.as_ref().is_some_and(|(p, _)| *p == name) {
                        pending = None;
                    }
                    r.record(name, outcome, detail);
                }
                continue;
            }
            match rest.split_once(" ... ") {
                Some((_, st)) => match status(st) {
                    Some((outcome, detail)) => {
                        r.record(name, outcome, detail);
                        pending = None;
                    }
                    None => pending = Some((name, true)),
                },
                // A docstring follows on the next line, then ` ... status`.
                None if rest.is_empty() => pending = Some((name, false)),
                None => {}
            }
            continue;
        }
        let Some((name, dots)) = pending.take() else { continue };
        let st = if dots { Some(line) } else { line.split_once(" ... ").map(|(_, s)| s) };
        match st.and_then(status) {
            Some((outcome, detail)) => r.record(name, outcome, detail),
            None => pending = Some((name, dots || line.contains(" ... "))),
        }
    }
    r.running = pending.map(|(name, _)| name).filter(|n| !r.cases.contains_key(n));
    r
}

/// Reads the JUnit file of `--junit-xml`: `<testcase name=...>` with an `<error>`, `<failure>`,
/// `<skipped>`, `<outcome>UNEXPECTED_SUCCESS</outcome>` or (expected failure) `<output>` child.
/// A `testcase` without a name (regrtest leaves one for a test whose subtests failed) is left
/// out: the verbose log has it.
pub fn parse_junit(xml: &str) -> Result<Vec<(String, Case)>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not valid XML: {e}"))?;
    let mut out = Vec::new();
    for tc in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        let Some(name) = tc.attribute("name") else { continue };
        let child = |tag: &str| tc.children().find(|c| c.has_tag_name(tag));
        // The exception line (the last `Name: message` line: a chained exception's message
        // has the earlier ones first; an assertion's message can go on over several lines).
        let message = |n: roxmltree::Node<'_, '_>| {
            let m = n.attribute("message").or_else(|| n.text()).unwrap_or_default();
            let lines: Vec<&str> = m.lines().collect();
            let last = || lines.iter().rev().find(|l| !l.trim().is_empty()).map(|l| one_line(l));
            exception_line(&lines).map(|l| one_line(&l)).or_else(last)
        };
        let case = if let Some(e) = child("error") {
            Case { outcome: Outcome::Error, detail: message(e) }
        } else if let Some(f) = child("failure") {
            Case { outcome: Outcome::Fail, detail: message(f) }
        } else if let Some(s) = child("skipped") {
            Case { outcome: Outcome::Skip, detail: s.text().map(one_line) }
        } else if child("outcome").and_then(|o| o.text()) == Some("UNEXPECTED_SUCCESS") {
            Case { outcome: Outcome::Fail, detail: Some("unexpected success".into()) }
        } else {
            Case { outcome: Outcome::Pass, detail: None }
        };
        out.push((name.to_string(), case));
    }
    Ok(out)
}

/// The verbose log's results with the JUnit file's on top: the JUnit outcome of a test wins
/// (its output cannot be mixed up with the test's own), the log adds what the file lacks
/// (subtest failures, fixture errors, the test that was running) and the failure report's
/// exception line where the file gave none.
pub fn merge(mut log: Results, junit: Vec<(String, Case)>) -> Results {
    for (name, mut case) in junit {
        if case.detail.is_none()
            && let Some(old) = log.cases.get(&name)
            && old.outcome == case.outcome
        {
            case.detail = old.detail.clone();
        }
        log.cases.insert(name, case);
    }
    if log.running.as_ref().is_some_and(|r| log.cases.contains_key(r)) {
        log.running = None;
    }
    log
}

/// A test that passed natively and did not pass sandboxed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    /// The test's full name.
    pub test: String,
    /// Its sandboxed result; `None` when the sandboxed run never reported it (crash, timeout,
    /// a fixture error).
    pub sandbox: Option<Case>,
    /// The [`Expected`] entry's reason, when the difference is a documented one.
    pub expected: Option<&'static str>,
}

/// One module's native and sandboxed results side by side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Tests that passed natively.
    pub native_pass: usize,
    /// Of those, the ones that passed sandboxed too.
    pub both_pass: usize,
    /// Tests that passed natively only, by name.
    pub lost: Vec<Lost>,
    /// Tests that passed sandboxed but not natively (reported, never a failure).
    pub gained: Vec<String>,
    /// [`Expected`] entries of this module whose tests passed sandboxed after all.
    pub stale: Vec<&'static str>,
}

impl Comparison {
    /// The lost tests no [`Expected`] entry explains: the regressions that fail the run.
    pub fn unexpected(&self) -> impl Iterator<Item = &Lost> {
        self.lost.iter().filter(|l| l.expected.is_none())
    }
}

/// Compares module `module`'s native and sandboxed results.
pub fn compare(
    module: &str,
    native: &Results,
    sandbox: &Results,
    expected: &'static [Expected],
) -> Comparison {
    let mut c = Comparison::default();
    let mut used = vec![false; expected.len()];
    for (name, case) in &native.cases {
        if case.outcome != Outcome::Pass {
            if sandbox.cases.get(name).is_some_and(|s| s.outcome == Outcome::Pass) {
                c.gained.push(name.clone());
            }
            continue;
        }
        c.native_pass += 1;
        let s = sandbox.cases.get(name);
        let known = expected.iter().position(|e| e.matches(name));
        if s.is_some_and(|s| s.outcome == Outcome::Pass) {
            c.both_pass += 1;
            continue;
        }
        if let Some(k) = known {
            used[k] = true;
        }
        c.lost.push(Lost {
            test: name.clone(),
            sandbox: s.cloned(),
            expected: known.map(|k| expected[k].reason),
        });
    }
    let prefix = format!("test.{module}.");
    let prefix_pkg = format!("test.{module}");
    c.stale = expected
        .iter()
        .zip(used)
        .filter(|(e, used)| {
            !used && (e.test.starts_with(&prefix) || e.test.trim_end_matches('*') == prefix_pkg)
        })
        .map(|(e, _)| e.test)
        .collect();
    c
}

/// How a run of regrtest ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It exited with this status (regrtest: 0 success, 2 failures, 4 no tests ran).
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
    /// It ran past the wall-clock limit and was killed.
    TimedOut,
    /// Its log stopped growing for the stall limit and it was killed.
    Hung,
    /// Ctrl-C stopped it.
    Interrupted,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            End::Exited(0) => f.write_str("ok"),
            End::Exited(2) => f.write_str("failed"),
            End::Exited(4) => f.write_str("no tests"),
            End::Exited(n) => write!(f, "exit {n}"),
            End::Signaled(s) => f.write_str(&signal_name(s)),
            End::TimedOut => f.write_str("TIMEOUT"),
            End::Hung => f.write_str("HUNG"),
            End::Interrupted => f.write_str("stopped"),
        }
    }
}

impl End {
    /// Whether regrtest ended by itself (0: all passed, 2: some failed, 4: none ran, or some
    /// other status it chose), rather than dying or being stopped.
    pub fn finished(self) -> bool {
        matches!(self, End::Exited(_))
    }
}

/// Where a run stopped before its end: the test it was in, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// The test that was running (`None`: the log does not say).
    pub test: Option<String>,
    /// How the run ended.
    pub end: End,
}

/// The test to resume a module's run after: the one the stopped run was in, when the log names
/// it and no earlier part of the run reported it (a test that stops the run twice is not
/// skipped over again and again).
pub fn resume_after(part: &Results, so_far: &Results) -> Option<String> {
    part.running.clone().filter(|t| !so_far.cases.contains_key(t) && !part.cases.contains_key(t))
}

/// Adds one part of a resumed run to the whole: its cases, and, for the test the part stopped
/// in, an error that says so (the test never reported anything itself).
pub fn add_part(whole: &mut Results, part: Results, stop: Option<&Stop>) {
    for (name, case) in part.cases {
        whole.cases.insert(name, case);
    }
    if whole.module_skipped.is_none() {
        whole.module_skipped = part.module_skipped;
    }
    whole.running = part.running;
    if let Some(Stop { test: Some(t), end }) = stop
        && !whole.cases.contains_key(t)
    {
        let detail = format!("the run stopped in this test ({end}) and was resumed after it");
        whole.cases.insert(t.clone(), Case { outcome: Outcome::Error, detail: Some(detail) });
        if whole.running.as_ref() == Some(t) {
            whole.running = None;
        }
    }
}

/// The text of regrtest's `--ignorefile` that leaves out every test `r` has a result for (the
/// ones named by a plain dotted id; fixtures and doctests are named otherwise and run again).
pub fn ignore_list(r: &Results) -> String {
    let mut s = String::new();
    for name in r.cases.keys().filter(|n| n.starts_with("test.") && !n.contains(' ')) {
        s.push_str(name);
        s.push('\n');
    }
    s
}

/// `SIGKILL` for 9, and so on; `signal N` for the rare ones.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// One run's line in the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunSummary {
    /// Its counts.
    pub counts: Counts,
    /// Its wall-clock time in seconds.
    pub secs: f64,
    /// How it ended.
    pub end: End,
    /// How many times it stopped before its end (hung, timed out, crashed), and how it
    /// stopped the first time.
    pub stops: Option<(usize, End)>,
}

impl RunSummary {
    /// The `end` column: how the run ended or, when it stopped before its end, how and how
    /// often (`HUNG×2`).
    pub fn end_column(&self) -> String {
        match self.stops {
            Some((n, first)) => format!("{first}×{n}"),
            None => self.end.to_string(),
        }
    }
}

/// One module's row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The module (`test_os`).
    pub module: String,
    /// The native run.
    pub native: Option<RunSummary>,
    /// The sandboxed run.
    pub sandbox: Option<RunSummary>,
    /// The comparison, where both ran.
    pub comparison: Option<Comparison>,
}

/// The per-module table, a totals line, and the overall ratios.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<26} {:^30} {:^30} {:>8} {:>8} {:>6} {:>5}",
        "", "native", "sandboxed", "native", "sandbox", "time", "lost"
    );
    let _ = writeln!(
        s,
        "{:<26} {:>5} {:>4} {:>4} {:>4} {:<9} {:>5} {:>4} {:>4} {:>4} {:<9} {:>8} {:>8} {:>6} {:>5}",
        "module",
        "pass",
        "fail",
        "err",
        "skip",
        " end",
        "pass",
        "fail",
        "err",
        "skip",
        " end",
        "s",
        "s",
        "ratio",
        "(exp)"
    );
    let run_cols = |r: &Option<RunSummary>| match r {
        Some(r) => format!(
            "{:>5} {:>4} {:>4} {:>4} {:<9}",
            r.counts.pass,
            r.counts.fail,
            r.counts.error,
            r.counts.skip,
            format!(" {}", r.end_column())
        ),
        None => format!("{:^30}", "-"),
    };
    let secs = |r: &Option<RunSummary>| r.map_or("-".to_string(), |r| format!("{:.1}", r.secs));
    let ratio = |n: f64, s: f64| if n > 0.0 { format!("{:.1}×", s / n) } else { "-".into() };
    let mut tn = Counts::default();
    let mut ts = Counts::default();
    let (mut secs_n, mut secs_s, mut secs_n_both, mut secs_s_both) = (0.0, 0.0, 0.0, 0.0);
    let (mut native_pass, mut both_pass, mut lost, mut lost_expected) = (0, 0, 0, 0);
    for row in rows {
        let time_ratio = match (row.native, row.sandbox) {
            (Some(n), Some(s)) => {
                secs_n_both += n.secs;
                secs_s_both += s.secs;
                ratio(n.secs, s.secs)
            }
            _ => "-".into(),
        };
        let lost_col = match &row.comparison {
            Some(c) => {
                let exp = c.lost.len() - c.unexpected().count();
                native_pass += c.native_pass;
                both_pass += c.both_pass;
                lost += c.lost.len();
                lost_expected += exp;
                if exp > 0 { format!("{} ({exp})", c.lost.len()) } else { c.lost.len().to_string() }
            }
            None => "-".into(),
        };
        if let Some(n) = row.native {
            tn += n.counts;
            secs_n += n.secs;
        }
        if let Some(r) = row.sandbox {
            ts += r.counts;
            secs_s += r.secs;
        }
        let _ = writeln!(
            s,
            "{:<26} {} {} {:>8} {:>8} {:>6} {:>5}",
            row.module,
            run_cols(&row.native),
            run_cols(&row.sandbox),
            secs(&row.native),
            secs(&row.sandbox),
            time_ratio,
            lost_col
        );
    }
    let total = |c: Counts, any: bool| {
        if any {
            format!("{:>5} {:>4} {:>4} {:>4} {:<9}", c.pass, c.fail, c.error, c.skip, "")
        } else {
            format!("{:^30}", "-")
        }
    };
    let any_native = rows.iter().any(|r| r.native.is_some());
    let any_sandbox = rows.iter().any(|r| r.sandbox.is_some());
    let _ = writeln!(
        s,
        "{:<26} {} {} {:>8.1} {:>8.1} {:>6} {:>5}",
        format!("total ({} modules)", rows.len()),
        total(tn, any_native),
        total(ts, any_sandbox),
        secs_n,
        secs_s,
        ratio(secs_n_both, secs_s_both),
        if rows.iter().any(|r| r.comparison.is_some()) {
            format!("{lost} ({lost_expected})")
        } else {
            "-".into()
        }
    );
    if native_pass > 0 {
        let _ = writeln!(
            s,
            "\n{both_pass} of the {native_pass} tests that pass natively pass sandboxed: {:.1} % \
             ({lost} lost, {lost_expected} of them expected); sandboxed time {} of native",
            100.0 * both_pass as f64 / native_pass as f64,
            ratio(secs_n_both, secs_s_both)
        );
    }
    s
}

/// The lost tests of `rows`, one per line under its module: name, sandboxed outcome, why.
pub fn lost_listing(rows: &[Row]) -> String {
    let mut s = String::new();
    for row in rows {
        let Some(c) = &row.comparison else { continue };
        if c.lost.is_empty() && c.stale.is_empty() && c.gained.is_empty() {
            continue;
        }
        let _ = writeln!(s, "{}:", row.module);
        for l in &c.lost {
            let (what, detail) = match &l.sandbox {
                Some(case) => (case.outcome.name(), case.detail.as_deref()),
                None => ("missing", None),
            };
            let _ = write!(s, "  {what:<7} {}", l.test);
            if let Some(d) = detail {
                let _ = write!(s, ": {d}");
            }
            if let Some(reason) = l.expected {
                let _ = write!(s, "  [expected: {reason}]");
            }
            s.push('\n');
        }
        for g in &c.gained {
            let _ = writeln!(s, "  gained  {g} (passes sandboxed, not natively)");
        }
        for t in &c.stale {
            let _ = writeln!(s, "  stale   {t}: listed as expected to differ, but passes");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
0:00:00 load avg: 0.50 Run tests sequentially
0:00:00 load avg: 0.50 [1/1] test_demo
test_a (test.test_demo.A.test_a) ... ok
test_b (test.test_demo.A.test_b) ... FAIL
test_c (test.test_demo.A.test_c) ... skipped 'needs root'
test_d (test.test_demo.A.test_d)
The docstring of d. ... ERROR
test_e (test.test_demo.A.test_e) ... some output of the test
ok
test_f (test.test_demo.A.test_f) ... expected failure
test_g (test.test_demo.A.test_g) ... unexpected success
test_h (test.test_demo.A.test_h) ... 
  test_h (test.test_demo.A.test_h) (i=1) ... FAIL
  test_h (test.test_demo.A.test_h) (i=2) ... ERROR
setUpClass (test.test_demo.B) ... ERROR
test_doc (test.test_demo) ... ok
demo ()
Doctest: demo ... ok
encode (demo.Encoder)
Doctest: demo.Encoder.encode ... FAIL
test.test_demo.sub (unittest.loader.ModuleSkipped.test.test_demo.sub) ... skipped 'Windows only'

======================================================================
FAIL: test_b (test.test_demo.A.test_b)
----------------------------------------------------------------------
Traceback (most recent call last):
  File \"/usr/lib/python3.11/test/test_demo.py\", line 9, in test_b
    self.assertEqual(1, 2)
AssertionError: 1 != 2

Stdout:
Error: not this line
======================================================================
ERROR: setUpClass (test.test_demo.B)
----------------------------------------------------------------------
Traceback (most recent call last):
  File \"x.py\", line 1, in setUpClass
OSError: [Errno 38] Function not implemented

----------------------------------------------------------------------
Ran 9 tests in 0.1s

FAILED (failures=2, errors=2, skipped=1)
test_demo failed
";

    fn outcome(r: &Results, name: &str) -> Option<Outcome> {
        r.cases.get(name).map(|c| c.outcome)
    }

    #[test]
    fn verbose_log_statuses() {
        let r = parse_verbose(LOG, "test_demo");
        let p = "test.test_demo.A.";
        assert_eq!(outcome(&r, &format!("{p}test_a")), Some(Outcome::Pass));
        assert_eq!(outcome(&r, &format!("{p}test_b")), Some(Outcome::Fail));
        assert_eq!(outcome(&r, &format!("{p}test_c")), Some(Outcome::Skip));
        assert_eq!(r.cases[&format!("{p}test_c")].detail.as_deref(), Some("needs root"));
        assert_eq!(outcome(&r, &format!("{p}test_d")), Some(Outcome::Error));
        assert_eq!(outcome(&r, &format!("{p}test_e")), Some(Outcome::Pass));
        assert_eq!(outcome(&r, &format!("{p}test_f")), Some(Outcome::Pass));
        assert_eq!(outcome(&r, &format!("{p}test_g")), Some(Outcome::Fail));
        // Subtests: the worst of them.
        assert_eq!(outcome(&r, &format!("{p}test_h")), Some(Outcome::Error));
        assert_eq!(outcome(&r, "setUpClass (test.test_demo.B)"), Some(Outcome::Error));
        assert_eq!(outcome(&r, "test.test_demo.test_doc"), Some(Outcome::Pass));
        assert_eq!(outcome(&r, "demo"), Some(Outcome::Pass));
        assert_eq!(outcome(&r, "demo.Encoder.encode"), Some(Outcome::Fail));
        let skipped_module = "unittest.loader.ModuleSkipped.test.test_demo.sub";
        assert_eq!(outcome(&r, skipped_module), Some(Outcome::Skip));
        assert_eq!(r.cases.len(), 13);
        assert_eq!(r.running, None);
        assert_eq!(r.counts(), Counts { pass: 5, fail: 3, error: 3, skip: 2 });
        // The failure report gives the exception lines.
        assert_eq!(
            r.cases[&format!("{p}test_b")].detail.as_deref(),
            Some("AssertionError: 1 != 2")
        );
        assert_eq!(
            r.cases["setUpClass (test.test_demo.B)"].detail.as_deref(),
            Some("OSError: [Errno 38] Function not implemented")
        );
    }

    #[test]
    fn a_killed_run_names_the_running_test() {
        let log = "test_a (test.test_x.A.test_a) ... ok\ntest_b (test.test_x.A.test_b) ... \n\
                   Fatal Python error: Aborted\n";
        let r = parse_verbose(log, "test_x");
        assert_eq!(r.running.as_deref(), Some("test.test_x.A.test_b"));
        assert_eq!(r.cases.len(), 1);
        let r = parse_verbose("test_a (test.test_x.A.test_a)\nDoc\n", "test_x");
        assert_eq!(r.running.as_deref(), Some("test.test_x.A.test_a"));
    }

    #[test]
    fn module_skip_and_noise() {
        let log = "test_pty skipped -- no pty here\nrandom (text) ... ok\n(a.b) ... ok\n\
                   x (a b) ... ok\n  \n";
        let r = parse_verbose(log, "test_pty");
        assert_eq!(r.module_skipped.as_deref(), Some("no pty here"));
        assert!(r.cases.is_empty(), "{:?}", r.cases);
    }

    const XML: &str = r#"<testsuites tests="6" errors="1" failures="1"><testsuite tests="6">
<testcase name="test.test_demo.A.test_a" status="run" result="completed" time="0.1" />
<testcase name="test.test_demo.A.test_b" status="run" result="completed" time="0.1"><failure type="AssertionError" message="AssertionError: 1 != 2&#10;">Traceback...</failure><system-out /></testcase>
<testcase name="test.test_demo.A.test_c" status="run" result="completed" time="0.1"><skipped>needs root</skipped></testcase>
<testcase name="test.test_demo.A.test_d" status="run" result="completed" time="0.1"><error type="OSError" message="Traceback&#10;OSError: [Errno 38] Function not implemented&#10;" /></testcase>
<testcase name="test.test_demo.A.test_f" status="run" result="completed"><output type="X" message="m" /></testcase>
<testcase name="test.test_demo.A.test_multi" status="run" result="completed"><failure type="AssertionError" message="AssertionError: 0 != 2 : two lines expected:&#10;b''&#10;" /></testcase>
<testcase name="test.test_demo.A.test_g" status="run" result="completed"><outcome>UNEXPECTED_SUCCESS</outcome></testcase>
<testcase />
</testsuite></testsuites>"#;

    #[test]
    fn junit_outcomes() {
        let cases = parse_junit(XML).unwrap();
        let got: Vec<_> = cases.iter().map(|(n, c)| (n.rsplit('.').next().unwrap(), c)).collect();
        assert_eq!(got.len(), 7);
        assert_eq!(got[0], ("test_a", &Case { outcome: Outcome::Pass, detail: None }));
        assert_eq!(got[1].1.outcome, Outcome::Fail);
        assert_eq!(got[1].1.detail.as_deref(), Some("AssertionError: 1 != 2"));
        assert_eq!(got[2].1, &Case { outcome: Outcome::Skip, detail: Some("needs root".into()) });
        assert_eq!(got[3].1.outcome, Outcome::Error);
        assert_eq!(
            got[3].1.detail.as_deref(),
            Some("OSError: [Errno 38] Function not implemented")
        );
        assert_eq!(got[4].1.outcome, Outcome::Pass);
        assert_eq!(
            got[5].1.detail.as_deref(),
            Some("AssertionError: 0 != 2 : two lines expected:")
        );
        assert_eq!(got[6].1.outcome, Outcome::Fail);
        assert!(parse_junit("<testsuites><testcase").is_err());
    }

    #[test]
    fn junit_wins_and_the_log_completes_it() {
        let log = parse_verbose(
            "test_a (test.m.A.test_a) ... FAIL\n  test_h (test.m.A.test_h) (x=1) ... FAIL\n\
             test_z (test.m.A.test_z) ... ",
            "m",
        );
        assert_eq!(log.running.as_deref(), Some("test.m.A.test_z"));
        let junit = vec![
            ("test.m.A.test_a".to_string(), Case { outcome: Outcome::Pass, detail: None }),
            ("test.m.A.test_z".to_string(), Case { outcome: Outcome::Pass, detail: None }),
        ];
        let r = merge(log, junit);
        assert_eq!(outcome(&r, "test.m.A.test_a"), Some(Outcome::Pass));
        assert_eq!(outcome(&r, "test.m.A.test_h"), Some(Outcome::Fail));
        assert_eq!(r.running, None);
    }

    fn results(cases: &[(&str, Outcome)]) -> Results {
        let mut r = Results::default();
        for (n, o) in cases {
            r.cases.insert(n.to_string(), Case { outcome: *o, detail: None });
        }
        r
    }

    static KNOWN: &[Expected] = &[
        Expected { test: "test.test_m.A.test_refused", reason: "refused call" },
        Expected { test: "test.test_m.B.*", reason: "a refused class" },
        Expected { test: "test.test_m.A.test_fine_now", reason: "was refused" },
        Expected { test: "test.test_other.X.y", reason: "another module" },
    ];

    #[test]
    fn comparison_lists_lost_gained_expected_and_stale() {
        use Outcome::*;
        let native = results(&[
            ("test.test_m.A.test_ok", Pass),
            ("test.test_m.A.test_lost", Pass),
            ("test.test_m.A.test_crashed", Pass),
            ("test.test_m.A.test_refused", Pass),
            ("test.test_m.A.test_fine_now", Pass),
            ("test.test_m.B.test_1", Pass),
            ("test.test_m.A.test_native_fail", Fail),
            ("test.test_m.A.test_both_skip", Skip),
        ]);
        let sandbox = results(&[
            ("test.test_m.A.test_ok", Pass),
            ("test.test_m.A.test_lost", Skip),
            ("test.test_m.A.test_refused", Error),
            ("test.test_m.A.test_fine_now", Pass),
            ("test.test_m.B.test_1", Fail),
            ("test.test_m.A.test_native_fail", Pass),
            ("test.test_m.A.test_both_skip", Skip),
            ("test.test_m.A.test_sandbox_only", Fail),
        ]);
        let c = compare("test_m", &native, &sandbox, KNOWN);
        assert_eq!((c.native_pass, c.both_pass), (6, 2));
        let lost: Vec<_> = c
            .lost
            .iter()
            .map(|l| (l.test.as_str(), l.sandbox.as_ref().map(|s| s.outcome)))
            .collect();
        assert_eq!(
            lost,
            [
                ("test.test_m.A.test_crashed", None),
                ("test.test_m.A.test_lost", Some(Skip)),
                ("test.test_m.A.test_refused", Some(Error)),
                ("test.test_m.B.test_1", Some(Fail)),
            ]
        );
        let unexpected: Vec<_> = c.unexpected().map(|l| l.test.as_str()).collect();
        assert_eq!(unexpected, ["test.test_m.A.test_crashed", "test.test_m.A.test_lost"]);
        assert_eq!(c.gained, ["test.test_m.A.test_native_fail"]);
        assert_eq!(c.stale, ["test.test_m.A.test_fine_now"]);
    }

    #[test]
    fn table_rows_totals_and_ratio() {
        let run = |pass, secs, end| RunSummary {
            counts: Counts { pass, fail: 1, error: 0, skip: 2 },
            secs,
            end,
            stops: None,
        };
        let c = Comparison {
            native_pass: 10,
            both_pass: 9,
            lost: vec![Lost { test: "test.test_a.X.y".into(), sandbox: None, expected: None }],
            ..Comparison::default()
        };
        let rows = [
            Row {
                module: "test_a".into(),
                native: Some(run(10, 2.0, End::Exited(2))),
                sandbox: Some(RunSummary {
                    stops: Some((2, End::Hung)),
                    ..run(9, 6.0, End::TimedOut)
                }),
                comparison: Some(c),
            },
            Row {
                module: "test_b".into(),
                native: Some(run(5, 1.0, End::Exited(0))),
                sandbox: None,
                comparison: None,
            },
        ];
        let t = table(&rows);
        let lines: Vec<_> = t.lines().collect();
        assert!(lines[2].starts_with("test_a ") && lines[2].contains(" HUNG×2 "), "{t}");
        assert!(lines[2].contains(" 3.0×") && lines[2].ends_with(" 1"), "{t}");
        assert!(lines[3].starts_with("test_b ") && lines[3].contains(" ok "), "{t}");
        assert!(lines[4].starts_with("total (2 modules)"), "{t}");
        assert!(t.contains("9 of the 10 tests that pass natively pass sandboxed: 90.0 %"), "{t}");
        let listing = lost_listing(&rows);
        assert_eq!(listing, "test_a:\n  missing test.test_a.X.y\n");
    }

    #[test]
    fn a_resumed_run_adds_up() {
        let first =
            parse_verbose("test_a (test.m.A.test_a) ... ok\ntest_b (test.m.A.test_b) ... \n", "m");
        let mut whole = Results::default();
        let after = resume_after(&first, &whole);
        assert_eq!(after.as_deref(), Some("test.m.A.test_b"));
        let stop = Stop { test: after, end: End::Hung };
        add_part(&mut whole, first, Some(&stop));
        assert_eq!(ignore_list(&whole), "test.m.A.test_a\ntest.m.A.test_b\n");
        assert_eq!(whole.cases["test.m.A.test_b"].outcome, Outcome::Error);
        assert!(whole.cases["test.m.A.test_b"].detail.as_ref().unwrap().contains("(HUNG)"));
        assert_eq!(whole.running, None);
        // The second part starts after test_b, and ends.
        let second = parse_verbose("test_c (test.m.A.test_c) ... FAIL\n", "m");
        assert_eq!(resume_after(&second, &whole), None);
        add_part(&mut whole, second, None);
        assert_eq!(whole.counts(), Counts { pass: 1, fail: 1, error: 1, skip: 0 });
        // A test that stops the run again is not resumed after twice.
        let again = parse_verbose("test_b (test.m.A.test_b) ... \n", "m");
        assert_eq!(resume_after(&again, &whole), None);
        assert!(ignore_list(&whole).lines().all(|l| !l.contains(' ')));
    }

    #[test]
    fn ends_and_details() {
        assert!(End::Exited(2).finished() && !End::Hung.finished());
        assert_eq!(End::Hung.to_string(), "HUNG");
        assert_eq!(End::Exited(0).to_string(), "ok");
        assert_eq!(End::Exited(1).to_string(), "exit 1");
        assert_eq!(End::Signaled(libc::SIGSEGV).to_string(), "SIGSEGV");
        assert_eq!(End::Signaled(40).to_string(), "signal 40");
        let long = "x ".repeat(200);
        assert_eq!(one_line(&long).chars().count(), DETAIL_MAX + 1);
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }
}
