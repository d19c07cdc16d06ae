//! Helpers shared by the commands: workspace paths, echoed subprocesses, `cargo metadata`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// The workspace root (the parent of this crate's directory).
pub fn root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().expect("xtask lives in the workspace root").to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` when set, else `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                std::env::current_dir().map(|cwd| cwd.join(&dir)).unwrap_or(dir)
            }
        }
        _ => root().join("target"),
    }
}

/// Quotes `s` for a POSIX shell when it needs it, so echoed commands can be pasted back.
pub fn shell_quote(s: &str) -> String {
    let plain =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-./=:,+@%".contains(&b));
    if plain { s.to_string() } else { format!("'{}'", s.replace('\'', r"'\''")) }
}

/// The shell-style command line of `cmd`, with the environment variables it sets in front.
pub fn command_line(cmd: &Command) -> String {
    let mut parts = Vec::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            parts.push(format!("{}={}", k.to_string_lossy(), shell_quote(&v.to_string_lossy())));
        }
    }
    parts.push(shell_quote(&cmd.get_program().to_string_lossy()));
    parts.extend(cmd.get_args().map(|a| shell_quote(&a.to_string_lossy())));
    parts.join(" ")
}

/// A command run from the workspace root.
pub fn cmd<I, S>(program: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(program);
    c.args(args).current_dir(root());
    c
}

/// Prints `cmd`'s command line, then runs it with inherited stdio and waits for it.
pub fn run(cmd: &mut Command) -> Result<ExitStatus, String> {
    println!("$ {}", command_line(cmd));
    cmd.status().map_err(|e| format!("cannot start `{}`: {e}", cmd.get_program().to_string_lossy()))
}

/// Like [`run`], but a non-zero exit is an error too.
pub fn run_ok(cmd: &mut Command) -> Result<(), String> {
    let status = run(cmd)?;
    if status.success() { Ok(()) } else { Err(format!("`{}` failed: {status}", command_line(cmd))) }
}

/// Prints `cmd`'s command line, then runs it quietly; returns whether it succeeded and its stdout.
pub fn run_captured(cmd: &mut Command) -> (bool, String) {
    println!("$ {}", command_line(cmd));
    match cmd.stdin(Stdio::null()).stderr(Stdio::null()).output() {
        Ok(out) => (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned()),
        Err(_) => (false, String::new()),
    }
}

/// The workspace's packages and their targets, from `cargo metadata --no-deps`.
#[derive(Debug)]
pub struct Metadata {
    packages: Vec<(String, Vec<Target>)>,
}

/// A package's target: its name and kinds ("lib", "bin", "bench", ...).
type Target = (String, Vec<String>);

impl Metadata {
    /// Runs `cargo metadata --no-deps --format-version 1` (echoed) and parses its output.
    pub fn load() -> Result<Metadata, String> {
        let mut c = cmd("cargo", ["metadata", "--no-deps", "--format-version", "1"]);
        println!("$ {}", command_line(&c));
        let out = c
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot start `cargo metadata`: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`cargo metadata` failed ({}); is every Cargo.toml valid?",
                out.status
            ));
        }
        Self::parse(&out.stdout)
    }

    /// Parses `cargo metadata` JSON.
    pub fn parse(json: &[u8]) -> Result<Metadata, String> {
        let v: serde_json::Value = serde_json::from_slice(json)
            .map_err(|e| format!("cannot parse `cargo metadata` output: {e}"))?;
        let strs = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        };
        let packages = v["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let targets = p["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| (t["name"].as_str().unwrap_or_default().to_string(), strs(&t["kind"])))
                    .collect();
                (p["name"].as_str().unwrap_or_default().to_string(), targets)
            })
            .collect();
        Ok(Metadata { packages })
    }

    /// Whether the workspace has a package called `name`.
    pub fn has_package(&self, name: &str) -> bool {
        self.packages.iter().any(|(n, _)| n == name)
    }

    /// Whether package `package` declares a target `target` of kind `kind` ("bench", "bin", ...).
    pub fn has_target(&self, package: &str, kind: &str, target: &str) -> bool {
        self.packages
            .iter()
            .filter(|(n, _)| n == package)
            .flat_map(|(_, targets)| targets)
            .any(|(n, kinds)| n == target && kinds.iter().any(|k| k == kind))
    }
}

/// Whether a command called `name` is on `$PATH`.
pub fn on_path(name: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(dir.join(name))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("cargo"), "cargo");
        assert_eq!(shell_quote("--no-fail-fast"), "--no-fail-fast");
        assert_eq!(shell_quote("test(a b)"), "'test(a b)'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn command_line_shows_env_and_args() {
        let mut c = Command::new("cargo");
        c.args(["test", "a b"]).env("X", "1");
        assert_eq!(command_line(&c), "X=1 cargo test 'a b'");
    }

    #[test]
    fn metadata_targets() {
        let json = br#"{"packages":[
            {"name":"trap","targets":[{"name":"trap","kind":["lib"]},{"name":"decode","kind":["bench"]}]},
            {"name":"dune","targets":[{"name":"dune","kind":["lib"]}]}]}"#;
        let m = Metadata::parse(json).unwrap();
        assert!(m.has_package("dune") && !m.has_package("sandbox"));
        assert!(m.has_target("trap", "bench", "decode"));
        assert!(!m.has_target("trap", "bin", "decode"));
        assert!(!m.has_target("dune", "bench", "exits"));
    }
}
