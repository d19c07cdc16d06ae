//! `cargo xtask`: provisions, checks, tests, benchmarks and runs the workspace.
//!
//! `cargo xtask test` is all the set-up a fresh Debian machine needs: it installs the Debian
//! packages the tests use (see [`provision::PACKAGES`]), then runs fmt, clippy and every test,
//! and ends with a summary that lists the tests that skipped themselves (no usable `/dev/kvm`).
//! `cargo xtask bench` runs the criterion benches and prints one table of the numbers that
//! matter (see [`bench::ROWS`]). `cargo xtask run` builds the sandbox and runs a program in it.
//! `cargo xtask vtx` boots Debian's kernel in Bochs with an emulated VT-x CPU and runs the KVM
//! tests and a sandbox suite there (see [`vtx`]). `cargo xtask compat` runs CPython's own test
//! modules natively and in the sandbox and compares them test by test (see [`compat`]).

mod bench;
mod bench_net;
mod compat;
mod compat_expected;
mod compat_results;
mod provision;
mod run;
mod test;
mod util;
mod vtx;
mod vtx_boot;
mod vtx_image;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Workspace automation for dune-rs.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install test dependencies, then run fmt, clippy and all tests; print a summary with skips.
    Test(test::TestArgs),
    /// Run the criterion benches and print one table of medians and ratios.
    Bench(bench::BenchArgs),
    /// Build the sandbox (release) and run PROGRAM in it, or the embedded demo without one.
    Run(run::RunArgs),
    /// The VT-x rig: boot Debian's kernel in Bochs (emulated VT-x) and run the KVM tests there.
    Vtx(vtx::VtxArgs),
    /// Run CPython's test modules natively and in the sandbox; compare them test by test.
    Compat(compat::CompatArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Test(args) => test::main(&args),
        Command::Bench(args) => bench::main(&args),
        Command::Run(args) => run::main(&args),
        Command::Vtx(args) => vtx::main(&args),
        Command::Compat(args) => compat::main(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn trailing_args_after_double_dash() {
        let cli = Cli::try_parse_from(["xtask", "test", "--skip-clippy", "--", "-E", "test(foo)"])
            .unwrap();
        let Command::Test(args) = cli.command else { panic!("not test") };
        assert!(args.skip_clippy && !args.no_provision);
        assert_eq!(args.extra, ["-E", "test(foo)"]);

        let cli = Cli::try_parse_from(["xtask", "run", "--", "/bin/echo", "-n", "hi"]).unwrap();
        let Command::Run(args) = cli.command else { panic!("not run") };
        assert_eq!(args.program, ["/bin/echo", "-n", "hi"]);

        let cli =
            Cli::try_parse_from(["xtask", "vtx", "--cpu", "a,b", "--", "--skip", "x"]).unwrap();
        let Command::Vtx(args) = cli.command else { panic!("not vtx") };
        assert_eq!(args.cpu, ["a", "b"]);
        assert_eq!(args.dune_args, ["--skip", "x"]);
        let cli = Cli::try_parse_from(["xtask", "vtx"]).unwrap();
        let Command::Vtx(args) = cli.command else { panic!("not vtx") };
        assert_eq!(args.cpu, ["corei7_haswell_4770"]);

        let cli = Cli::try_parse_from(["xtask", "bench", "--quick", "--", "decode"]).unwrap();
        let Command::Bench(args) = cli.command else { panic!("not bench") };
        assert!(args.quick);
        assert_eq!(args.filter, ["decode"]);

        let cli = Cli::try_parse_from([
            "xtask",
            "compat",
            "--modules",
            "test_os,test_mmap",
            "--sandbox-arg=--no-switchless",
            "--",
            "-u",
            "all",
        ])
        .unwrap();
        let Command::Compat(args) = cli.command else { panic!("not compat") };
        assert_eq!(args.modules, ["test_os", "test_mmap"]);
        assert_eq!(args.sandbox_arg, ["--no-switchless"]);
        assert_eq!(args.regrtest_args, ["-u", "all"]);
        let cli = Cli::try_parse_from(["xtask", "compat", "--subset", "ci"]).unwrap();
        let Command::Compat(args) = cli.command else { panic!("not compat") };
        assert_eq!(args.subset, compat::Subset::Ci);
        assert!(
            Cli::try_parse_from(["xtask", "compat", "--native-only", "--reuse-native"]).is_err()
        );
    }
}
