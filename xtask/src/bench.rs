//! `cargo xtask bench`: run the criterion benches, then print one table of the numbers that matter.
//!
//! To add a bench binary, add a row to [`BENCHES`]; to show a result, add a row to [`ROWS`].

use crate::util;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Pass `--quick` to criterion (fewer samples; for a smoke test, not for numbers).
    #[arg(long)]
    pub quick: bool,
    /// Only the firewall section (lighttpd with wrk, connect and send costs), not criterion.
    #[arg(long)]
    pub net_only: bool,
    /// Passed on to the criterion binaries, e.g. a benchmark-id filter.
    #[arg(last = true, value_name = "CRITERION ARGS")]
    pub filter: Vec<String>,
}

/// A criterion bench binary (`[[bench]]` with `harness = false`) of a workspace package.
#[derive(Debug, Clone, Copy)]
pub struct BenchTarget {
    /// The package that declares it.
    pub package: &'static str,
    /// The bench target's name (`cargo bench --bench <name>`).
    pub bench: &'static str,
}

/// The bench binaries `cargo xtask bench` runs; ones not declared yet are skipped with a note.
pub const BENCHES: &[BenchTarget] = &[
    BenchTarget { package: "dune", bench: "exits" },
    BenchTarget { package: "trap", bench: "decode" },
    BenchTarget { package: "sandbox", bench: "sandbox" },
];

/// One row of the results table.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// What the number means.
    pub label: &'static str,
    /// The criterion benchmark id ("group/function", as criterion prints it).
    pub id: &'static str,
    /// The criterion id this one is compared against (ratio = this / baseline); with
    /// alternatives separated by `|`, the first that has a result (e.g. the switchless round
    /// trip where the host has one, else the exit round trip).
    pub baseline: Option<&'static str>,
}

/// The results table, in print order.
pub const ROWS: &[Row] = &[
    Row { label: "host getpid", id: "exits/host_getpid", baseline: None },
    Row {
        label: "raw exit floor (doorbell store, ring 3)",
        id: "exits/floor_doorbell",
        baseline: None,
    },
    Row {
        label: "syscall round trip (trampoline)",
        id: "exits/syscall_round_trip",
        baseline: Some("exits/floor_doorbell"),
    },
    Row {
        label: "syscall round trip (switchless, a polling host thread)",
        id: "exits/syscall_round_trip_switchless",
        baseline: Some("exits/floor_doorbell"),
    },
    Row {
        label: "page fault round trip",
        id: "exits/page_fault_round_trip",
        baseline: Some("exits/floor_doorbell"),
    },
    Row { label: "decode one exit (synthetic)", id: "decode/syscall-doorbell", baseline: None },
    Row { label: "getppid, native", id: "sandbox/getppid_native", baseline: None },
    Row {
        label: "getppid, seccomp RET_TRAP",
        id: "sandbox/getppid_seccomp_trap",
        baseline: Some("sandbox/getppid_native"),
    },
    Row {
        label: "getppid, ptrace PTRACE_SYSEMU",
        id: "sandbox/getppid_ptrace_sysemu",
        baseline: Some("sandbox/getppid_native"),
    },
    Row {
        label: "getppid, sandbox (forwarded)",
        id: "sandbox/getppid_sandboxed",
        baseline: Some("exits/syscall_round_trip_switchless|exits/syscall_round_trip"),
    },
    Row {
        label: "getppid, sandbox --no-switchless",
        id: "sandbox/getppid_sandboxed_exits",
        baseline: Some("exits/syscall_round_trip"),
    },
    Row {
        label: "getppid, gVisor (runsc, ptrace platform)",
        id: "sandbox/getppid_gvisor",
        baseline: Some("sandbox/getppid_native"),
    },
    Row {
        label: "getppid, sandbox against gVisor",
        id: "sandbox/getppid_sandboxed",
        baseline: Some("sandbox/getppid_gvisor"),
    },
    Row {
        label: "firewall: decode and decide one connect (1 rule)",
        id: "sandbox/firewall_decide_1",
        baseline: None,
    },
    Row {
        label: "firewall: decode and decide one connect (16 rules, the last matches)",
        id: "sandbox/firewall_decide_16",
        baseline: None,
    },
    Row {
        label: "firewall: pin a socket (dup, 3 getsockopt, give back)",
        id: "sandbox/firewall_pin",
        baseline: Some("sandbox/getppid_native"),
    },
    Row { label: "open+close /etc/hostname, native", id: "sandbox/open_native", baseline: None },
    Row {
        label: "open+close /etc/hostname, sandbox --policy null",
        id: "sandbox/open_null",
        baseline: Some("sandbox/open_native"),
    },
    Row {
        label: "open+close /etc/hostname, sandbox --policy workspace (goal: 1.3x null)",
        id: "sandbox/open_workspace",
        baseline: Some("sandbox/open_null"),
    },
    Row { label: "stat /etc/hostname, native", id: "sandbox/stat_native", baseline: None },
    Row {
        label: "stat /etc/hostname, sandbox --policy null",
        id: "sandbox/stat_null",
        baseline: Some("sandbox/stat_native"),
    },
    Row {
        label: "stat /etc/hostname, sandbox --policy workspace (goal: 1.3x null)",
        id: "sandbox/stat_workspace",
        baseline: Some("sandbox/stat_null"),
    },
    Row { label: "tar x of 10,000 files, native", id: "sandbox/tar_x_10k_native", baseline: None },
    Row {
        label: "tar x of 10,000 files, sandbox --policy null",
        id: "sandbox/tar_x_10k_null",
        baseline: Some("sandbox/tar_x_10k_native"),
    },
    Row {
        label: "tar x of 10,000 files, sandbox --policy workspace (goal: 1.3x null)",
        id: "sandbox/tar_x_10k_workspace",
        baseline: Some("sandbox/tar_x_10k_null"),
    },
    Row { label: "find /usr, native", id: "sandbox/find_usr_native", baseline: None },
    Row {
        label: "find /usr, sandbox --policy null",
        id: "sandbox/find_usr_null",
        baseline: Some("sandbox/find_usr_native"),
    },
    Row {
        label: "find /usr, sandbox --policy workspace (goal: 1.3x null)",
        id: "sandbox/find_usr_workspace",
        baseline: Some("sandbox/find_usr_null"),
    },
    Row { label: "static hello, native", id: "sandbox/hello_native", baseline: None },
    Row {
        label: "static hello, sandbox",
        id: "sandbox/hello_sandboxed",
        baseline: Some("sandbox/hello_native"),
    },
    Row {
        label: "static hello, gVisor",
        id: "sandbox/hello_gvisor",
        baseline: Some("sandbox/hello_native"),
    },
    Row {
        label: "static hello, sandbox against gVisor",
        id: "sandbox/hello_sandboxed",
        baseline: Some("sandbox/hello_gvisor"),
    },
    Row {
        label: "fork+exec+wait /bin/true, native",
        id: "sandbox/forkexec_native",
        baseline: None,
    },
    Row {
        label: "fork+exec+wait /bin/true, sandbox",
        id: "sandbox/forkexec_sandboxed",
        baseline: Some("sandbox/forkexec_native"),
    },
    Row {
        label: "sh: 50 x fork+exec+wait /bin/true, native",
        id: "sandbox/sh_loop50_native",
        baseline: None,
    },
    Row {
        label: "sh: 50 x fork+exec+wait /bin/true, sandbox",
        id: "sandbox/sh_loop50_sandboxed",
        baseline: Some("sandbox/sh_loop50_native"),
    },
    Row {
        label: "sh: 50 x fork+exec+wait /bin/true, gVisor",
        id: "sandbox/sh_loop50_gvisor",
        baseline: Some("sandbox/sh_loop50_native"),
    },
    Row {
        label: "sh: 50 x fork+exec+wait, sandbox against gVisor",
        id: "sandbox/sh_loop50_sandboxed",
        baseline: Some("sandbox/sh_loop50_gvisor"),
    },
    Row { label: "first touch of 256 MiB, native", id: "sandbox/touch256m_native", baseline: None },
    Row {
        label: "first touch of 256 MiB, sandbox",
        id: "sandbox/touch256m_sandboxed",
        baseline: Some("sandbox/touch256m_native"),
    },
    Row { label: "node -e 0, native", id: "sandbox/node_start_native", baseline: None },
    Row {
        label: "node -e 0, sandbox",
        id: "sandbox/node_start_sandboxed",
        baseline: Some("sandbox/node_start_native"),
    },
    Row { label: "python3 -c pass, native", id: "sandbox/python_pass_native", baseline: None },
    Row {
        label: "python3 -c pass, sandbox",
        id: "sandbox/python_pass_sandboxed",
        baseline: Some("sandbox/python_pass_native"),
    },
    Row {
        label: "python3 -c pass, gVisor",
        id: "sandbox/python_pass_gvisor",
        baseline: Some("sandbox/python_pass_native"),
    },
    Row {
        label: "python3 -c pass, sandbox against gVisor",
        id: "sandbox/python_pass_sandboxed",
        baseline: Some("sandbox/python_pass_gvisor"),
    },
    Row {
        label: "16-thread mutex ping-pong, native",
        id: "sandbox/mutex16_native",
        baseline: None,
    },
    Row {
        label: "16-thread mutex ping-pong, sandbox",
        id: "sandbox/mutex16_sandboxed",
        baseline: Some("sandbox/mutex16_native"),
    },
    Row { label: "busybox gzip -9 64 MiB, native", id: "sandbox/gzip9_64m_native", baseline: None },
    Row {
        label: "busybox gzip -9 64 MiB, sandbox",
        id: "sandbox/gzip9_64m_sandboxed",
        baseline: Some("sandbox/gzip9_64m_native"),
    },
    Row {
        label: "busybox sha256sum 64 MiB, native",
        id: "sandbox/sha256_64m_native",
        baseline: None,
    },
    Row {
        label: "busybox sha256sum 64 MiB, sandbox",
        id: "sandbox/sha256_64m_sandboxed",
        baseline: Some("sandbox/sha256_64m_native"),
    },
    Row {
        label: "busybox sha256sum 64 MiB, gVisor",
        id: "sandbox/sha256_64m_gvisor",
        baseline: Some("sandbox/sha256_64m_native"),
    },
    Row {
        label: "busybox sha256sum 64 MiB, sandbox against gVisor",
        id: "sandbox/sha256_64m_sandboxed",
        baseline: Some("sandbox/sha256_64m_gvisor"),
    },
    Row {
        label: "busybox sha256sum 256 MiB, native",
        id: "sandbox/sha256_256m_native",
        baseline: None,
    },
    Row {
        label: "busybox sha256sum 256 MiB, sandbox",
        id: "sandbox/sha256_256m_sandboxed",
        baseline: Some("sandbox/sha256_256m_native"),
    },
    Row {
        label: "busybox sha256sum 256 MiB, --no-switchless",
        id: "sandbox/sha256_256m_sandboxed_exits",
        baseline: Some("sandbox/sha256_256m_native"),
    },
    Row {
        label: "coreutils sha256sum 256 MiB, native",
        id: "sandbox/coreutils_sha256_256m_native",
        baseline: None,
    },
    Row {
        label: "coreutils sha256sum 256 MiB, sandbox",
        id: "sandbox/coreutils_sha256_256m_sandboxed",
        baseline: Some("sandbox/coreutils_sha256_256m_native"),
    },
];

/// Runs `cargo xtask bench`.
pub fn main(args: &BenchArgs) -> Result<ExitCode, String> {
    println!("host: {}", host_description());
    if args.net_only {
        crate::bench_net::main()?;
        return Ok(ExitCode::SUCCESS);
    }
    let meta = util::Metadata::load()?;
    let mut missing_benches = Vec::new();
    let mut cmd = util::cmd("cargo", ["bench", "--workspace"]);
    for b in BENCHES {
        if meta.has_target(b.package, "bench", b.bench) {
            cmd.args(["--bench", b.bench]);
        } else {
            println!(
                "note: skipping bench `{}` of package `{}`: its Cargo.toml declares no such bench",
                b.bench, b.package
            );
            missing_benches.push(*b);
        }
    }
    let started = SystemTime::now();
    let mut ok = true;
    if missing_benches.len() < BENCHES.len() {
        cmd.args(["--", "--noplot"]);
        if args.quick {
            cmd.arg("--quick");
        }
        cmd.args(&args.filter);
        let skip_log = util::target_dir().join("dune-bench-skips.log");
        if std::fs::write(&skip_log, "").is_ok() {
            cmd.env("DUNE_SKIP_LOG", &skip_log);
        }
        ok = util::run(&mut cmd)?.success();
        let skips = std::fs::read_to_string(&skip_log).unwrap_or_default();
        for line in skips.lines().filter(|l| !l.trim().is_empty()) {
            let (name, reason) = line.split_once('\t').unwrap_or((line, "no reason given"));
            println!("note: bench {name} skipped itself: {reason}");
        }
    }

    let results = collect_results(&util::target_dir().join("criterion"), started);
    let why_missing = |row: &Row| {
        let group = row.id.split('/').next().unwrap_or_default();
        if let Some(b) = missing_benches.iter().find(|b| b.bench == group) {
            format!("bench `{}` of package `{}` does not exist yet", b.bench, b.package)
        } else if !ok {
            "cargo bench failed".into()
        } else if !args.filter.is_empty() {
            "filtered out, or the bench skipped itself".into()
        } else {
            "no result; the bench skipped itself (no usable /dev/kvm?)".into()
        }
    };
    println!();
    print!("{}", table(ROWS, &results, why_missing));
    if !ok {
        return Err("cargo bench failed; see its output above".into());
    }
    if args.filter.is_empty() {
        crate::bench_net::main()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One line about the host: CPU model, kernel, and which KVM module provides /dev/kvm.
fn host_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let module = ["kvm_pvm", "kvm_intel", "kvm_amd"]
        .into_iter()
        .find(|m| Path::new("/sys/module").join(m).exists());
    let kvm = match (Path::new("/dev/kvm").exists(), module) {
        (false, _) => "no /dev/kvm".to_string(),
        (true, Some(m)) => format!("/dev/kvm from {m}"),
        (true, None) => "/dev/kvm from an unknown module".to_string(),
    };
    format!("{cpu}; kernel {kernel}; {kvm}")
}

/// A criterion result: median (else mean) time per iteration, in nanoseconds.
type Results = HashMap<String, f64>;

/// Reads every `<dir>/**/new/benchmark.json` (for the benchmark's full id) with its sibling
/// `estimates.json`, keeping results written at or after `since` (older ones are stale).
fn collect_results(dir: &Path, since: SystemTime) -> Results {
    let mut results = Results::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name() == "new" {
                if let Some((id, ns)) = read_result(&path, since) {
                    results.insert(id, ns);
                }
            } else if e.file_name() != "base"
                && e.file_name() != "change"
                && e.file_name() != "report"
            {
                stack.push(path);
            }
        }
    }
    results
}

/// Reads one criterion `new/` directory: `(full id, median ns)` if fresh and well formed.
fn read_result(new: &Path, since: SystemTime) -> Option<(String, f64)> {
    let estimates: PathBuf = new.join("estimates.json");
    let modified = std::fs::metadata(&estimates).and_then(|m| m.modified()).ok()?;
    if modified < since {
        return None;
    }
    let bench: serde_json::Value =
        serde_json::from_slice(&std::fs::read(new.join("benchmark.json")).ok()?).ok()?;
    let id = bench["full_id"].as_str()?.to_string();
    let est: serde_json::Value = serde_json::from_slice(&std::fs::read(&estimates).ok()?).ok()?;
    Some((id, median_ns(&est)?))
}

/// `median.point_estimate` of a criterion `estimates.json`, else `mean.point_estimate`.
fn median_ns(estimates: &serde_json::Value) -> Option<f64> {
    estimates["median"]["point_estimate"]
        .as_f64()
        .or_else(|| estimates["mean"]["point_estimate"].as_f64())
}

/// Formats a time: nanoseconds below 1 µs, else microseconds with two decimals.
fn format_time(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

/// The results table; `why_missing` explains rows without a result.
fn table(rows: &[Row], results: &Results, why_missing: impl Fn(&Row) -> String) -> String {
    let label_w =
        rows.iter().map(|r| r.label.chars().count()).max().unwrap_or(0).max("benchmark".len());
    let baseline_label =
        |id: &str| rows.iter().find(|r| r.id == id).map_or(id, |r| r.label).to_string();
    let base_w = rows
        .iter()
        .filter_map(|r| r.baseline)
        .flat_map(|b| b.split('|'))
        .map(|b| baseline_label(b).chars().count())
        .max()
        .unwrap_or(0)
        .max("baseline".len());
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
    let mut out = format!(
        "{}  {:>12}  {}  ratio\n",
        pad("benchmark", label_w),
        "median",
        pad("baseline", base_w)
    );
    for row in rows {
        let line = match results.get(row.id) {
            None => format!("n/a (not run: {})", why_missing(row)),
            Some(&ns) => {
                let (base, ratio) = match row.baseline {
                    None => ("-".to_string(), "-".to_string()),
                    Some(alts) => {
                        let b = alts
                            .split('|')
                            .find(|b| results.contains_key(*b))
                            .unwrap_or_else(|| alts.split('|').next().unwrap_or(alts));
                        let ratio = match results.get(b) {
                            Some(&base_ns) if base_ns > 0.0 => format!("{:.2}×", ns / base_ns),
                            _ => "n/a".to_string(),
                        };
                        (baseline_label(b), ratio)
                    }
                };
                format!("{:>12}  {}  {ratio}", format_time(ns), pad(&base, base_w))
            }
        };
        out += &format!("{}  {}\n", pad(row.label, label_w), line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted() {
        assert_eq!(format_time(12.345), "12.3 ns");
        assert_eq!(format_time(999.94), "999.9 ns");
        assert_eq!(format_time(1234.5), "1.23 µs");
        assert_eq!(format_time(250_000.0), "250.00 µs");
    }

    #[test]
    fn median_falls_back_to_mean() {
        let both: serde_json::Value = serde_json::from_str(
            r#"{"mean":{"point_estimate":2.0},"median":{"point_estimate":1.5}}"#,
        )
        .unwrap();
        assert_eq!(median_ns(&both), Some(1.5));
        let mean: serde_json::Value =
            serde_json::from_str(r#"{"mean":{"point_estimate":2.0}}"#).unwrap();
        assert_eq!(median_ns(&mean), Some(2.0));
    }

    #[test]
    fn table_rows_ratios_and_missing() {
        let results: Results = [
            ("exits/floor_doorbell".to_string(), 2000.0),
            ("exits/syscall_round_trip".to_string(), 5000.0),
        ]
        .into_iter()
        .collect();
        let t = table(ROWS, &results, |r| format!("why {}", r.id));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), ROWS.len() + 1);
        assert!(
            lines[1].starts_with("host getpid")
                && lines[1].ends_with("n/a (not run: why exits/host_getpid)")
        );
        assert!(lines[2].contains("2.00 µs") && lines[2].ends_with('-'), "{t}");
        assert!(
            lines[3].contains("5.00 µs")
                && lines[3].contains("raw exit floor")
                && lines[3].ends_with("2.50×")
        );
        assert!(lines[4].ends_with("n/a (not run: why exits/syscall_round_trip_switchless)"));
        assert!(lines[5].ends_with("n/a (not run: why exits/page_fault_round_trip)"));
    }

    #[test]
    fn alternative_baselines_take_the_first_with_a_result() {
        let rows = [
            Row { label: "a", id: "x/a", baseline: None },
            Row { label: "b", id: "x/b", baseline: None },
            Row { label: "c", id: "x/c", baseline: Some("x/a|x/b") },
        ];
        let only_b: Results = [("x/b".to_string(), 2000.0), ("x/c".to_string(), 3000.0)].into();
        let t = table(&rows, &only_b, |_| String::new());
        assert!(t.lines().nth(3).unwrap().ends_with("b         1.50×"), "{t}");
        let both: Results =
            [("x/a".into(), 1000.0), ("x/b".into(), 2000.0), ("x/c".into(), 3000.0)].into();
        let t = table(&rows, &both, |_| String::new());
        assert!(t.lines().nth(3).unwrap().ends_with("3.00×"), "{t}");
    }

    #[test]
    fn every_gvisor_row_is_compared_both_ways() {
        // Each peer result is shown against native, and the sandbox's against it.
        for g in ROWS.iter().filter(|r| r.id.ends_with("_gvisor")) {
            let stem = g.id.trim_end_matches("_gvisor");
            assert_eq!(g.baseline, Some(format!("{stem}_native")).as_deref(), "{}", g.id);
            let sandboxed = format!("{stem}_sandboxed");
            assert!(
                ROWS.iter().any(|r| r.id == sandboxed && r.baseline == Some(g.id)),
                "no row compares {sandboxed} with {}",
                g.id
            );
        }
        assert!(ROWS.iter().filter(|r| r.id.ends_with("_gvisor")).count() >= 5);
    }

    #[test]
    fn results_are_collected_by_full_id_and_fresh_only() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-test-{}", std::process::id()));
        let new = dir.join("decode_syscall-doorbell").join("new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(new.join("benchmark.json"), r#"{"full_id":"decode/syscall-doorbell"}"#)
            .unwrap();
        std::fs::write(new.join("estimates.json"), r#"{"median":{"point_estimate":7.5}}"#).unwrap();
        let r = collect_results(&dir, SystemTime::UNIX_EPOCH);
        assert_eq!(r.get("decode/syscall-doorbell"), Some(&7.5));
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        assert!(collect_results(&dir, later).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
