//! `cargo xtask run`: build the sandbox in release mode and run a program (or the demo) in it.

use crate::{provision, util};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitCode, ExitStatus};

/// Arguments of `cargo xtask run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The program to run in the sandbox and its arguments; without one, the embedded demo
    /// (crates/sandbox/demo/demo.c, built with `gcc -static`).
    #[arg(last = true, value_name = "PROGRAM ARGS")]
    pub program: Vec<String>,
}

/// Runs `cargo xtask run`; exits with the sandbox's status (128+n when killed by signal n).
pub fn main(args: &RunArgs) -> Result<ExitCode, String> {
    let meta = util::Metadata::load()?;
    if !meta.has_package("sandbox") {
        return Err(
            "the workspace has no `sandbox` package (crates/sandbox) yet; nothing to run".into()
        );
    }
    util::run_ok(&mut util::cmd("cargo", ["build", "--release", "-p", "sandbox"]))?;
    let target = util::target_dir();
    let sandbox = target.join("release").join("sandbox");
    if !sandbox.is_file() {
        return Err(format!(
            "`cargo build -p sandbox` made no {}; does the package have a `sandbox` binary?",
            sandbox.display()
        ));
    }
    let program = if args.program.is_empty() {
        let source = util::root().join("crates/sandbox/demo/demo.c");
        let demo = target.join("demo").join("demo");
        println!("==> the demo needs a C toolchain with a static libc");
        provision::provision_packages(provision::c_toolchain())?;
        build_demo(&source, &demo)?;
        vec![demo.to_string_lossy().into_owned()]
    } else {
        args.program.clone()
    };
    let mut cmd = util::cmd(&sandbox.to_string_lossy(), ["run", "--policy", "null", "--"]);
    cmd.args(&program);
    Ok(ExitCode::from(shell_status(util::run(&mut cmd)?)))
}

/// Compiles the demo with `gcc -static -O2` unless `out` is newer than `source`.
fn build_demo(source: &Path, out: &Path) -> Result<(), String> {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(src_time) = mtime(source) else {
        return Err(format!("the demo source {} does not exist", source.display()));
    };
    if mtime(out).is_some_and(|t| t >= src_time) {
        return Ok(());
    }
    let dir = out.parent().expect("the demo path has a parent");
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut gcc = util::cmd("gcc", ["-static", "-O2", "-o"]);
    gcc.arg(out).arg(source);
    util::run_ok(&mut gcc).map_err(|e| {
        format!("{e} (is gcc and libc6-dev installed? `cargo xtask test` installs them)")
    })
}

/// The exit status a shell would report: the exit code, or 128+n for death by signal n.
fn shell_status(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_like_a_shell() {
        assert_eq!(shell_status(ExitStatus::from_raw(0)), 0);
        assert_eq!(shell_status(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(shell_status(ExitStatus::from_raw(9)), 137);
        assert_eq!(shell_status(ExitStatus::from_raw(11 | 0x80)), 139); // core dumped
    }
}
