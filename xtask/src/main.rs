//! `cargo xtask`: provisions, checks, tests, benchmarks and runs the workspace.
//!
//! `cargo xtask test` is all the set-up a fresh Debian machine needs: it installs the Debian
//! packages the tests use (see [`provision::PACKAGES`]), then runs fmt, clippy and every test,
//! and ends with a summary that lists the tests that skipped themselves (no usable `/dev/kvm`).
//! `cargo xtask bench` runs the criterion benches and prints one table of the numbers that
//! matter (see [`bench::ROWS`]). `cargo xtask run` builds the sandbox and runs a program in it.

mod bench;
mod provision;
mod run;
mod test;
mod util;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Test(args) => test::main(&args),
        Command::Bench(args) => bench::main(&args),
        Command::Run(args) => run::main(&args),
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

        let cli = Cli::try_parse_from(["xtask", "bench", "--quick", "--", "decode"]).unwrap();
        let Command::Bench(args) = cli.command else { panic!("not bench") };
        assert!(args.quick);
        assert_eq!(args.filter, ["decode"]);
    }
}
