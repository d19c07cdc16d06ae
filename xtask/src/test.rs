//! `cargo xtask test`: provision, fmt, clippy, docs, tests, then a summary with the skipped
//! tests.

use crate::{provision, util};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Do not check for or install the Debian packages the tests use.
    #[arg(long)]
    pub no_provision: bool,
    /// Skip `cargo clippy`.
    #[arg(long)]
    pub skip_clippy: bool,
    /// Passed on to `cargo nextest run` (or `cargo test`), e.g. a test-name filter.
    /// Doc tests always run unfiltered.
    #[arg(last = true, value_name = "TEST ARGS")]
    pub extra: Vec<String>,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail(String),
    Skip(&'static str),
}

/// One row of the summary.
#[derive(Debug)]
struct Step {
    name: &'static str,
    outcome: Outcome,
    secs: f64,
}

/// Runs `cargo xtask test`.
pub fn main(args: &TestArgs) -> Result<ExitCode, String> {
    let skip_log = util::target_dir().join("dune-skips.log");
    let mut nextest = None;
    let mut steps: Vec<Step> = Vec::new();
    let skip_if = |cond: bool, why: &'static str| cond.then_some(why);

    step(&mut steps, "provision", skip_if(args.no_provision, "--no-provision"), || {
        provision::provision().map_err(|e| format!("{e}, or pass --no-provision"))?;
        nextest = Some(provision::have_nextest());
        Ok(())
    });
    step(&mut steps, "fmt", None, || {
        util::run_ok(&mut util::cmd("cargo", ["fmt", "--all", "--", "--check"]))
    });
    step(&mut steps, "clippy", skip_if(args.skip_clippy, "--skip-clippy"), || {
        let clippy = ["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"];
        util::run_ok(&mut util::cmd("cargo", clippy))
    });
    // Broken intra-doc links and malformed doc comments fail the run like clippy warnings.
    step(&mut steps, "docs", None, || {
        let mut doc = util::cmd("cargo", ["doc", "--workspace", "--no-deps"]);
        doc.env("RUSTDOCFLAGS", "-D warnings");
        util::run_ok(&mut doc)
    });
    step(&mut steps, "tests", None, || run_tests(&args.extra, &skip_log, &mut nextest));
    let mut failed = steps.iter().any(|s| matches!(s.outcome, Outcome::Fail(_)));

    println!("\n==> summary");
    print!("{}", summary_table(&steps));
    let tests_ran =
        steps.iter().any(|s| s.name == "tests" && !matches!(s.outcome, Outcome::Skip(_)));
    if tests_ran {
        let log = std::fs::read_to_string(&skip_log).unwrap_or_default();
        let skips = parse_skips(&log);
        print!("{}", skips_listing(&skips));
        let require_kvm = std::env::var("DUNE_REQUIRE_KVM").is_ok_and(|v| v == "1");
        if require_kvm && !skips.is_empty() {
            println!("FAIL: KVM required (DUNE_REQUIRE_KVM=1) but {} tests skipped", skips.len());
            failed = true;
        }
    } else {
        println!("Skipped tests: unknown (the tests did not run)");
    }
    println!("{}", if failed { "RESULT: FAIL" } else { "RESULT: PASS" });
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Runs one step unless `skip` says why not or an earlier step failed; records it in `steps`.
fn step(
    steps: &mut Vec<Step>,
    name: &'static str,
    skip: Option<&'static str>,
    body: impl FnOnce() -> Result<(), String>,
) {
    let skip = skip.or_else(|| {
        steps
            .iter()
            .any(|s| matches!(s.outcome, Outcome::Fail(_)))
            .then_some("an earlier step failed")
    });
    if let Some(why) = skip {
        steps.push(Step { name, outcome: Outcome::Skip(why), secs: 0.0 });
        return;
    }
    println!("\n==> {name}");
    let t = Instant::now();
    let outcome = match body() {
        Ok(()) => Outcome::Pass,
        Err(e) => {
            eprintln!("xtask: {name} failed: {e}");
            Outcome::Fail(e)
        }
    };
    steps.push(Step { name, outcome, secs: t.elapsed().as_secs_f64() });
}

/// The `tests` step: the unit and integration tests (nextest, else cargo test), then doc tests.
fn run_tests(extra: &[String], skip_log: &Path, nextest: &mut Option<bool>) -> Result<(), String> {
    if let Some(dir) = skip_log.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(skip_log, "")
        .map_err(|e| format!("cannot truncate {}: {e}", skip_log.display()))?;
    let nextest = *nextest.get_or_insert_with(provision::have_nextest);
    let runner: &[&str] = if nextest { &["nextest", "run"] } else { &["test"] };
    let mut c = util::cmd("cargo", runner);
    c.args(["--workspace", "--no-fail-fast"]).args(extra).env("DUNE_SKIP_LOG", skip_log);
    let main = util::run_ok(&mut c);
    // Doc tests run even when the others failed, so one run reports everything.
    let mut c = util::cmd("cargo", ["test", "--workspace", "--doc"]);
    c.env("DUNE_SKIP_LOG", skip_log);
    let doc = util::run_ok(&mut c);
    match (main, doc) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Err(a), Err(b)) => Err(format!("{a}; {b}")),
    }
}

/// The summary table: one line per step with its outcome and duration.
fn summary_table(steps: &[Step]) -> String {
    let mut s = format!("{:<10} {:<6} {:>8}\n", "step", "result", "seconds");
    for step in steps {
        let (result, note) = match &step.outcome {
            Outcome::Pass => ("PASS", String::new()),
            Outcome::Fail(e) => ("FAIL", format!("  {}", e.lines().next().unwrap_or_default())),
            Outcome::Skip(why) => ("skip", format!("  ({why})")),
        };
        let secs = if matches!(step.outcome, Outcome::Skip(_)) {
            "-".into()
        } else {
            format!("{:.1}", step.secs)
        };
        s += &format!("{:<10} {:<6} {:>8}{note}\n", step.name, result, secs);
    }
    s
}

/// Parses the skip log (`name<TAB>reason` lines) into unique `(name, reason)` pairs, in order.
fn parse_skips(log: &str) -> Vec<(String, String)> {
    let mut skips: Vec<(String, String)> = Vec::new();
    for line in log.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()) {
        let (name, reason) = line.split_once('\t').unwrap_or((line, "no reason given"));
        let entry = (name.trim().to_string(), reason.trim().to_string());
        if !skips.contains(&entry) {
            skips.push(entry);
        }
    }
    skips
}

/// The "Skipped tests (N):" listing of the summary.
fn skips_listing(skips: &[(String, String)]) -> String {
    let mut s = format!("Skipped tests ({}):\n", skips.len());
    for (name, reason) in skips {
        s += &format!("  {name} — {reason}\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_are_parsed_and_deduplicated() {
        let log =
            "a::one\tno /dev/kvm\nb::two\tpermission denied\n\na::one\tno /dev/kvm\nc::three\n";
        let skips = parse_skips(log);
        assert_eq!(
            skips,
            [
                ("a::one".into(), "no /dev/kvm".into()),
                ("b::two".into(), "permission denied".into()),
                ("c::three".into(), "no reason given".into()),
            ]
        );
        let listing = skips_listing(&skips);
        assert!(listing.starts_with("Skipped tests (3):\n"));
        assert!(listing.contains("  b::two — permission denied\n"));
        assert_eq!(skips_listing(&[]), "Skipped tests (0):\n");
    }

    #[test]
    fn summary_lists_every_step() {
        let steps = [
            Step { name: "provision", outcome: Outcome::Pass, secs: 1.25 },
            Step {
                name: "fmt",
                outcome: Outcome::Fail("`cargo fmt` failed\nmore".into()),
                secs: 0.5,
            },
            Step { name: "clippy", outcome: Outcome::Skip("--skip-clippy"), secs: 0.0 },
        ];
        let t = summary_table(&steps);
        assert!(
            t.contains("provision  PASS        1.2") || t.contains("provision  PASS        1.3"),
            "{t}"
        );
        assert!(t.contains("fmt        FAIL        0.5  `cargo fmt` failed\n"), "{t}");
        assert!(t.contains("clippy     skip          -  (--skip-clippy)\n"), "{t}");
    }
}
