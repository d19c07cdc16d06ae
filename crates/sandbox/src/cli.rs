//! Command line.
use std::ffi::OsString;

use clap::{Args, Parser, Subcommand};

/// Run untrusted Linux x86-64 programs in a process-level KVM sandbox.
#[derive(Debug, Parser)]
#[command(name = "sandbox", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run PROGRAM in the sandbox.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Print every system call strace-style (to FILE, or to stderr).
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-", require_equals = true)]
    pub trace: Option<OsString>,
    /// Do not print the one-line report when the program dies of a signal.
    #[arg(long, short)]
    pub quiet: bool,
    /// Start the program with an empty environment.
    #[arg(long)]
    pub env_clear: bool,
    /// Set an environment variable for the program (repeatable).
    #[arg(long, value_name = "K=V")]
    pub env: Vec<OsString>,
    /// The program (found through PATH like execvp) and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub argv: Vec<OsString>,
}

pub fn main() -> i32 {
    let _cli = Cli::parse();
    eprintln!("sandbox: not yet implemented");
    70
}
