//! `cargo xtask vtx`: the VT-x test rig. Runs the project's KVM tests on an emulated VT-x host,
//! so the paths the start-up probe picks on VT-x (the ring-0 LSTAR stub with `sysretq`, the
//! CR3-reload TLB flush) run in CI on machines that only have kvm_pvm.
//!
//! 1. **provision**: Bochs, its BIOS images, xorriso, isolinux, gcc and the static libc, from
//!    apt (as root; otherwise the command to run is named). See [`PACKAGES`].
//! 2. **build**: statically linked (glibc `crt-static`, static-pie) release builds with debug
//!    assertions of the `dune` tests and the `sandbox` binary, in their own target directory
//!    (`target/vtx/cargo`), and the static C programs of `xtask/vtx/c` (`gcc -static`).
//! 3. **image**: Debian's current cloud kernel (the dependency of `linux-image-cloud-amd64`) and
//!    busybox-static via `apt-get download`, an initramfs with `xtask/vtx/init` and everything
//!    above, an isolinux ISO ([`vtx_image`]). Cached under `target/vtx/`.
//! 4. **boot**: Bochs with an Intel CPU model with VMX (`corei7_haswell_4770` by default: EPT,
//!    VPID, unrestricted guest, XSAVE/AVX2) boots it headless, once per `--cpu` model; `/init`
//!    loads kvm and kvm-intel (kvm-amd on an AMD model) and runs the checks; the serial console
//!    is streamed here ([`vtx_boot`]).
//! 5. **verdict**: success only if the guest's summary arrived, no check failed, and every
//!    required check (KVM, each dune test binary, the probe's choice, the sandbox's checks)
//!    passed.

use crate::provision::{Check, Package};
use crate::{provision, util, vtx_boot, vtx_image};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

/// What the rig needs on the host, beyond Rust and apt.
pub const PACKAGES: &[Package] = &[
    // Debian's Bochs 2.7 is built with VMX and EPT emulation (and the debugger, and SMP).
    Package { name: "bochs", check: Check::Binary("bochs-bin") },
    Package { name: "bochsbios", check: Check::File("/usr/share/bochs/BIOS-bochs-latest") },
    Package { name: "vgabios", check: Check::File("/usr/share/vgabios/vgabios.bin") },
    Package { name: "xorriso", check: Check::Binary("xorriso") },
    Package { name: "isolinux", check: Check::File("/usr/lib/ISOLINUX/isolinux.bin") },
    Package {
        name: "syslinux-common",
        check: Check::File("/usr/lib/syslinux/modules/bios/ldlinux.c32"),
    },
    Package { name: "gcc", check: Check::Binary("gcc") },
    Package { name: "libc6-dev", check: Check::File("/usr/lib/x86_64-linux-gnu/libc.a") },
    Package { name: "binutils", check: Check::Binary("objcopy") },
];

/// The Rust target of the static builds (glibc; `+crt-static` makes static-pie executables).
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Arguments of `cargo xtask vtx`.
#[derive(Debug, clap::Args)]
pub struct VtxArgs {
    /// Do not check for or install the Debian packages the rig uses.
    #[arg(long)]
    pub no_provision: bool,
    /// Wall-clock limit of the Bochs run, in seconds.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub timeout: u64,
    /// Build the image, but do not boot it.
    #[arg(long)]
    pub build_only: bool,
    /// Leave out the sandbox (its build and its suite); only the dune tests run.
    #[arg(long)]
    pub skip_sandbox: bool,
    /// Bochs CPU models to boot, one run each (comma-separated). corei7_haswell_4770: VT-x with
    /// EPT, VPID, unrestricted guest, XSAVE/AVX2 and SMEP; corei7_skylake_x: the same with SMAP
    /// but without XSAVE/AVX (in Debian's Bochs); zambezi: AMD-V with nested paging, XSAVE/AVX.
    /// (Debian's Bochs runs the ryzen and icelake models at a few MIPS only.)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "corei7_haswell_4770",
        value_name = "MODEL,..."
    )]
    pub cpu: Vec<String>,
    /// Emulated processors. More than one lets vCPU threads run in parallel (and TLB
    /// shootdowns cross CPUs), at a cost in speed.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub cpus: u32,
    /// Emulated instructions per second (Bochs' `ips`): the guest's clock advances by one
    /// second per this many instructions. About the real speed of Bochs keeps guest time close
    /// to wall time.
    #[arg(long, default_value_t = 50_000_000)]
    pub ips: u64,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    pub mem: u32,
    /// Run this shell command in the guest (after loading KVM) instead of the checks, e.g.
    /// `--exec 'sandbox run -- /vtx/bin/fpu'`: for diagnosis. /vtx/bin holds the sandbox and the
    /// C programs, /vtx/dune the dune test binaries.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// Passed to every dune test binary in the guest, after `--test-threads=1` (libtest
    /// arguments: a name filter, `--skip NAME`, ...).
    #[arg(last = true, value_name = "TEST ARGS")]
    pub dune_args: Vec<String>,
}

/// Runs `cargo xtask vtx`.
pub fn main(args: &VtxArgs) -> Result<ExitCode, String> {
    let t_all = Instant::now();
    let vtx = util::target_dir().join("vtx");
    vtx_image::mkdir(&vtx)?;
    let mut times: Vec<(&str, f64)> = Vec::new();
    let timed = |times: &mut Vec<(&str, f64)>, name: &'static str, t: Instant| {
        times.push((name, t.elapsed().as_secs_f64()))
    };

    let t = Instant::now();
    if args.no_provision {
        println!("\n==> provision: skipped (--no-provision)");
    } else {
        println!("\n==> provision");
        provision::provision_packages(PACKAGES)
            .map_err(|e| format!("{e}, or pass --no-provision"))?;
    }
    timed(&mut times, "provision", t);

    println!("\n==> build (static, {TARGET}, target/vtx/cargo)");
    let t = Instant::now();
    let cargo_dir = vtx.join("cargo");
    let dune_tests = build_dune_tests(&cargo_dir)?;
    let sandbox = if args.skip_sandbox {
        println!("    sandbox: skipped (--skip-sandbox)");
        None
    } else {
        Some(build_sandbox(&cargo_dir)?)
    };
    let programs = build_c_programs(&vtx.join("c"))?;
    timed(&mut times, "build", t);

    println!("\n==> image");
    let t = Instant::now();
    let deb = vtx_image::debian_parts(&vtx)?;
    let stage = vtx.join("stage");
    let mut payload = vtx_image::Payload {
        dune_tests: Vec::new(),
        bins: programs,
        env: guest_env(&args.dune_args, sandbox.is_some(), args.exec.as_deref()),
    };
    for (name, exe) in &dune_tests {
        let dst = stage.join("dune").join(name);
        vtx_image::stripped_copy(exe, &dst)?;
        payload.dune_tests.push((name.clone(), dst));
    }
    if let Some(exe) = &sandbox {
        let dst = stage.join("sandbox");
        vtx_image::stripped_copy(exe, &dst)?;
        payload.bins.push(("sandbox".into(), dst));
    }
    let initrd = vtx_image::initramfs(&vtx, &deb, &payload)?;
    let (iso, rebuilt) = vtx_image::iso(&vtx, &deb, &initrd)?;
    println!(
        "    kernel {}; initramfs {:.1} MiB; {} {}",
        deb.kernel,
        initrd.len() as f64 / (1 << 20) as f64,
        iso.display(),
        if rebuilt { "(built)" } else { "(unchanged, cached)" }
    );
    timed(&mut times, "image", t);
    if args.build_only {
        print_times(&times, t_all);
        println!("RESULT: image built (--build-only: not booted)");
        return Ok(ExitCode::SUCCESS);
    }

    if !util::on_path("bochs-bin") {
        return Err(
            "Bochs is missing (no bochs-bin on PATH): run `cargo xtask vtx` as root without \
             --no-provision, which installs it, or `apt-get install bochs bochsbios vgabios`"
                .into(),
        );
    }
    let mut required: Vec<String> = vec!["kvm".into()];
    if args.exec.is_some() {
        required.push("exec".into());
    } else {
        required.push("dune/probe-platform".into());
        required.extend(dune_tests.iter().map(|(n, _)| format!("dune/{n}")));
        if sandbox.is_some() {
            required.extend(
                ["platform", "escape-hlt", "escape-cli", "escape-nosys", "c-mem", "echo"]
                    .iter()
                    .map(|c| format!("sandbox/{c}")),
            );
        }
    }
    let mut results = Vec::new();
    for cpu in &args.cpu {
        let t = Instant::now();
        let ok = boot_and_judge(args, cpu, &iso, &vtx, &required)?;
        times.push(("boot", t.elapsed().as_secs_f64()));
        results.push((cpu.as_str(), ok));
    }

    println!("\n==> vtx result");
    if sandbox.is_none() {
        println!("    note: the sandbox suite did not run (--skip-sandbox)");
    }
    if !args.dune_args.is_empty() {
        println!("    note: dune tests filtered by: {}", args.dune_args.join(" "));
    }
    for (cpu, ok) in &results {
        println!("    {cpu}: {}", if *ok { "PASS" } else { "FAIL" });
    }
    print_times(&times, t_all);
    let ok = results.iter().all(|r| r.1);
    println!("{}", if ok { "RESULT: PASS" } else { "RESULT: FAIL" });
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Boots the image on one CPU model, prints the summary of the run; returns whether it passed.
fn boot_and_judge(
    args: &VtxArgs,
    cpu: &str,
    iso: &Path,
    vtx: &Path,
    required: &[String],
) -> Result<bool, String> {
    println!("\n==> boot (Bochs, CPU model {cpu}, {} CPU)", args.cpus);
    let run_dir = new_run_dir(&vtx.join("runs"))?;
    let console = vtx_boot::run(&vtx_boot::Boot {
        iso,
        run_dir: &run_dir,
        cpu,
        cpus: args.cpus,
        ips: args.ips,
        mem_mib: args.mem,
        timeout: Duration::from_secs(args.timeout),
    })?;
    let lines: Vec<&str> = console.lines.iter().map(|(_, l)| l.as_str()).collect();
    let v = Verdict::of(&lines, required);

    println!("\n==> vtx summary ({cpu})");
    println!("    Bochs: {}", describe_ended(&console.ended));
    print_stages(&console, args.ips);
    for p in &v.platforms {
        println!("    probe inside the rig: {p}");
    }
    let passed = v.checks.iter().filter(|c| c.pass).count();
    println!("    checks: {passed} passed, {} failed", v.checks.len() - passed);
    for c in v.checks.iter().filter(|c| !c.pass) {
        println!("      FAIL {} {}", c.name, c.detail);
    }
    for p in &v.problems {
        println!("    problem: {p}");
    }
    println!("    logs: {} and {}", console.serial_log.display(), console.bochs_log.display());
    Ok(v.problems.is_empty() && v.checks.iter().all(|c| c.pass))
}

/// `/vtx/env`, sourced by `/init`: how to run a dune test binary, whether to run the sandbox
/// suite, and the `--exec` command.
fn guest_env(dune_args: &[String], sandbox: bool, exec: Option<&str>) -> String {
    let quoted: Vec<String> = dune_args.iter().map(|a| util::shell_quote(a)).collect();
    format!(
        "# Written by `cargo xtask vtx`.\n\
         dune_run() {{ \"$1\" --test-threads=1 {}; }}\n\
         VTX_SANDBOX={}\n\
         VTX_EXEC={}\n",
        quoted.join(" "),
        u8::from(sandbox),
        util::shell_quote(exec.unwrap_or_default())
    )
}

/// The static-build environment of `cargo`: own target directory, `+crt-static`, release with
/// debug assertions and overflow checks, no debug info (the binaries are stripped anyway).
fn cargo_static(args: &[&str], cargo_dir: &Path) -> Result<Vec<Artifact>, String> {
    let mut rustflags = std::env::var("RUSTFLAGS").unwrap_or_default();
    if !rustflags.is_empty() {
        rustflags.push(' ');
    }
    rustflags.push_str("-C target-feature=+crt-static");
    let mut c = util::cmd("cargo", args);
    c.args(["--release", "--target", TARGET, "--message-format=json-render-diagnostics"])
        .env("CARGO_TARGET_DIR", cargo_dir)
        .env("RUSTFLAGS", rustflags)
        .env("CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS", "true")
        .env("CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS", "true")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    println!("$ {}", util::command_line(&c));
    let out = c
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    let artifacts = parse_artifacts(&String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        return Err(format!("the static build `cargo {}` failed ({})", args.join(" "), out.status));
    }
    Ok(artifacts)
}

/// An executable cargo built: target name, target kinds, path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Artifact {
    name: String,
    kinds: Vec<String>,
    exe: PathBuf,
}

/// The executables among cargo's JSON messages.
fn parse_artifacts(json_lines: &str) -> Vec<Artifact> {
    json_lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact")
        .filter_map(|v| {
            let exe = v["executable"].as_str()?;
            let kinds = v["target"]["kind"]
                .as_array()?
                .iter()
                .filter_map(|k| k.as_str().map(String::from))
                .collect();
            Some(Artifact {
                name: v["target"]["name"].as_str()?.to_string(),
                kinds,
                exe: PathBuf::from(exe),
            })
        })
        .collect()
}

/// The dune crate's test binaries: its integration tests under their names, the unit tests as
/// `<crate>-unit`.
fn build_dune_tests(cargo_dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let artifacts = cargo_static(&["test", "--no-run", "-p", "dune"], cargo_dir)?;
    let mut tests: Vec<(String, PathBuf)> = artifacts
        .into_iter()
        .map(|a| {
            let name = if a.kinds.iter().any(|k| k == "test") {
                a.name
            } else {
                format!("{}-unit", a.name)
            };
            (name, a.exe)
        })
        .collect();
    tests.sort();
    tests.dedup_by(|a, b| a.0 == b.0);
    if !tests.iter().any(|(n, _)| n == "syscalls") {
        return Err(
            "the dune crate has no `syscalls` test binary (crates/dune/tests/syscalls.rs), \
                    which holds the probe assertion"
                .into(),
        );
    }
    println!(
        "    dune test binaries: {}",
        tests.iter().map(|t| t.0.as_str()).collect::<Vec<_>>().join(" ")
    );
    Ok(tests)
}

fn build_sandbox(cargo_dir: &Path) -> Result<PathBuf, String> {
    let artifacts = cargo_static(&["build", "-p", "sandbox", "--bin", "sandbox"], cargo_dir)?;
    artifacts
        .into_iter()
        .find(|a| a.name == "sandbox" && a.kinds.iter().any(|k| k == "bin"))
        .map(|a| a.exe)
        .ok_or_else(|| "`cargo build -p sandbox` reported no `sandbox` executable".into())
}

/// The differential programs of the sandbox's own test suite (`crates/sandbox/tests/c`) that the
/// rig runs too: memory operations, descriptors around vfork, resource limits, UMIP, the vDSO.
const SUITE_PROGRAMS: [&str; 11] = [
    "mem_ops",
    "mem_realloc",
    "mem_rlimits",
    "proc_spawn_fds",
    "proc_drop_privs",
    "proc_thread_creds",
    "rlimit_runtime",
    "sig_signalfd",
    "thr_fd_stress",
    "insn_umip",
    "vdso_clock",
];

/// Compiles `xtask/vtx/c/*.c` and [`SUITE_PROGRAMS`] with `gcc -static` into `out/` (each only
/// when its source, or a header of the suite, is newer than its binary).
fn build_c_programs(out: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let src_dir = util::root().join("xtask/vtx/c");
    let suite_dir = util::root().join("crates/sandbox/tests/c");
    vtx_image::mkdir(out)?;
    let rd = std::fs::read_dir(&src_dir)
        .map_err(|e| format!("cannot list {}: {e}", src_dir.display()))?;
    let mut sources: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    sources.sort();
    sources.extend(SUITE_PROGRAMS.iter().map(|n| suite_dir.join(format!("{n}.c"))));
    let header = suite_dir.join("common.h");
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut bins = Vec::new();
    let mut compiled = Vec::new();
    for src in sources {
        let name = src.file_stem().expect("a .c file").to_string_lossy().into_owned();
        let bin = out.join(&name);
        let stale = |p: &Path| mtime(&bin).is_none_or(|b| mtime(p).is_none_or(|s| s > b));
        if stale(&src) || stale(&header) {
            let mut gcc = util::cmd("gcc", ["-O2", "-Wall", "-Wextra", "-static", "-pthread"]);
            gcc.arg("-I").arg(&suite_dir).arg("-o").arg(&bin).arg(&src).arg("-lm");
            util::run_ok(&mut gcc).map_err(|e| {
                format!("{e} (gcc and libc6-dev are needed; the provision step installs them)")
            })?;
            compiled.push(name.clone());
        }
        bins.push((name, bin));
    }
    println!(
        "    C programs: {} ({})",
        bins.iter().map(|b| b.0.as_str()).collect::<Vec<_>>().join(" "),
        if compiled.is_empty() {
            "cached".to_string()
        } else {
            format!("compiled {}", compiled.len())
        }
    );
    Ok(bins)
}

/// A fresh `runs/<unix time>-<pid>` directory; `runs/latest` points at it; only the newest
/// five runs are kept.
fn new_run_dir(runs: &Path) -> Result<PathBuf, String> {
    vtx_image::mkdir(runs)?;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = format!("{secs}-{}", std::process::id());
    let dir = runs.join(&name);
    vtx_image::mkdir(&dir)?;
    let mut old: Vec<PathBuf> = std::fs::read_dir(runs)
        .map_err(|e| format!("cannot list {}: {e}", runs.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && !p.is_symlink())
        .collect();
    old.sort();
    for p in old.iter().rev().skip(5) {
        let _ = std::fs::remove_dir_all(p);
    }
    let latest = runs.join("latest");
    let _ = std::fs::remove_file(&latest);
    let _ = std::os::unix::fs::symlink(&name, &latest);
    Ok(dir)
}

/// One `VTX-CHECK` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CheckResult {
    name: String,
    pass: bool,
    detail: String,
}

/// What the console says about the run.
#[derive(Debug, Default)]
struct Verdict {
    checks: Vec<CheckResult>,
    /// The `VTX-PLATFORM` lines: the probe's choice as the dune test and the sandbox saw it.
    platforms: Vec<String>,
    /// Reasons to fail besides failed checks.
    problems: Vec<String>,
}

impl Verdict {
    fn of(lines: &[&str], required: &[String]) -> Verdict {
        let mut v = Verdict::default();
        let mut summary = None;
        for l in lines {
            if let Some(rest) = after(l, "VTX-CHECK ") {
                let (verdict, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                let (name, detail) = rest.split_once(' ').unwrap_or((rest, ""));
                v.checks.push(CheckResult {
                    name: name.to_string(),
                    pass: verdict == "PASS",
                    detail: detail.to_string(),
                });
            } else if let Some(rest) = after(l, "VTX-PLATFORM ") {
                v.platforms.push(rest.to_string());
            } else if let Some(rest) = after(l, "VTX-SUMMARY ") {
                summary = Some(rest.to_string());
            }
        }
        match summary {
            None => v.problems.push(
                "the guest never printed its summary (it crashed, hung or ran out of time)".into(),
            ),
            Some(s) => {
                let passed = v.checks.iter().filter(|c| c.pass).count();
                let expect = format!("pass={passed} fail={}", v.checks.len() - passed);
                if s.trim() != expect {
                    v.problems.push(format!(
                        "the guest's summary `{s}` does not match its check lines ({expect})"
                    ));
                }
            }
        }
        for r in required {
            if !v.checks.iter().any(|c| &c.name == r && c.pass) {
                v.problems.push(format!("required check {r} did not pass"));
            }
        }
        if v.checks.is_empty() {
            v.problems.push("no check ran".into());
        }
        v
    }
}

/// The rest of `line` after `marker`, wherever it is (kernel messages may share the line).
fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|i| line[i + marker.len()..].trim_end())
}

fn describe_ended(e: &vtx_boot::Ended) -> String {
    match e {
        vtx_boot::Ended::Exited(s) => s.clone(),
        vtx_boot::Ended::Killed(why) => format!("killed: {why}"),
    }
}

/// Wall time of each stage of the guest (from its `VTX-STAGE` lines) and Bochs' speed.
fn print_stages(console: &vtx_boot::Console, ips: u64) {
    let stages: Vec<(f64, &str, Option<f64>)> = console
        .lines
        .iter()
        .filter_map(|(t, l)| {
            let rest = after(l, "VTX-STAGE ")?;
            let (name, uptime) = rest.split_once(" uptime=").unwrap_or((rest, ""));
            Some((*t, name, uptime.parse::<f64>().ok()))
        })
        .collect();
    let mut s = String::new();
    for (i, (t, name, _)) in stages.iter().enumerate() {
        let end = stages.get(i + 1).map_or(console.wall, |n| n.0);
        s += &format!(" {name} {:.1}s;", end - t);
    }
    if let Some((t, _, _)) = stages.first() {
        println!("    wall time: boot to /init {t:.1}s;{s} total {:.1}s", console.wall);
    } else {
        println!("    wall time: total {:.1}s (/init never ran)", console.wall);
    }
    if let Some(ticks) = vtx_boot::emulated_ticks(&console.bochs_log) {
        let mips = ticks as f64 / console.wall / 1e6;
        println!(
            "    Bochs: {:.2e} instructions in {:.1}s = {mips:.0} MIPS (guest clock at ips={}M{})",
            ticks as f64,
            console.wall,
            ips / 1_000_000,
            if mips < ips as f64 / 2e6 {
                "; slower than half the ips: guest time lags"
            } else {
                ""
            }
        );
    }
}

fn print_times(times: &[(&str, f64)], t0: Instant) {
    let parts: Vec<String> = times.iter().map(|(n, s)| format!("{n} {s:.1}s")).collect();
    println!("    steps: {}; total {:.1}s", parts.join(", "), t0.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_from_cargo_json() {
        let json = r#"{"reason":"compiler-artifact","target":{"name":"syscalls","kind":["test"]},"executable":"/t/deps/syscalls-1"}
{"reason":"compiler-artifact","target":{"name":"dune","kind":["lib"]},"executable":null}
{"reason":"compiler-artifact","target":{"name":"dune","kind":["lib"]},"executable":"/t/deps/dune-2"}
{"reason":"build-finished","success":true}
not json"#;
        let a = parse_artifacts(json);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].name, "syscalls");
        assert_eq!(a[0].kinds, ["test"]);
        assert_eq!(a[1].exe, PathBuf::from("/t/deps/dune-2"));
    }

    #[test]
    fn guest_env_quotes_test_args() {
        let env = guest_env(&["--skip".into(), "ten thousand".into()], true, None);
        assert!(
            env.contains("dune_run() { \"$1\" --test-threads=1 --skip 'ten thousand'; }"),
            "{env}"
        );
        assert!(env.contains("VTX_SANDBOX=1\n"));
        assert!(env.contains("VTX_EXEC=''\n"));
        let env = guest_env(&[], false, Some("echo \"a b\""));
        assert!(env.contains("VTX_SANDBOX=0\n"));
        assert!(env.contains(r#"VTX_EXEC='echo "a b"'"#), "{env}");
    }

    #[test]
    fn verdict_needs_summary_required_checks_and_no_failure() {
        let required = ["kvm".to_string(), "dune/syscalls".to_string()];
        let good = [
            "VTX-CHECK PASS kvm",
            "[   12.0] kvm: something VTX-CHECK PASS dune/syscalls",
            "VTX-PLATFORM sandbox: Platform { syscall_path: Ring0 }",
            "VTX-SUMMARY pass=2 fail=0",
        ];
        let v = Verdict::of(&good, &required);
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.checks.len(), 2);
        assert_eq!(v.platforms, ["sandbox: Platform { syscall_path: Ring0 }"]);

        let failed = [
            "VTX-CHECK PASS kvm",
            "VTX-CHECK FAIL dune/syscalls (exit 101)",
            "VTX-SUMMARY pass=1 fail=1",
        ];
        let v = Verdict::of(&failed, &required);
        assert_eq!(
            v.checks[1],
            CheckResult { name: "dune/syscalls".into(), pass: false, detail: "(exit 101)".into() }
        );
        assert_eq!(v.problems, ["required check dune/syscalls did not pass"]);

        let v = Verdict::of(&["VTX-CHECK PASS kvm"], &required);
        assert!(v.problems.iter().any(|p| p.contains("never printed its summary")));
        let v = Verdict::of(&["VTX-CHECK PASS kvm", "VTX-SUMMARY pass=3 fail=0"], &required[..1]);
        assert!(v.problems.iter().any(|p| p.contains("does not match")), "{:?}", v.problems);
    }
}
