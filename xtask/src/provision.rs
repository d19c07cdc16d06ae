//! The `provision` step: make sure the Debian packages the tests use are installed.
//!
//! To add a package, add a row to [`PACKAGES`].

use crate::util;
use std::path::Path;

/// How to tell whether a package's files are present.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// A command of this name is on `$PATH`.
    Binary(&'static str),
    /// This file exists.
    File(&'static str),
    /// This file exists and is a statically linked ELF executable (no `PT_INTERP`).
    StaticElf(&'static str),
}

/// A Debian package the tests need, and how to see that it is installed.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    /// The Debian package name given to `apt-get install`.
    pub name: &'static str,
    /// How to check that it is installed.
    pub check: Check,
}

/// What the tests need. Keep it sorted by why: toolchain first, then guest programs.
pub const PACKAGES: &[Package] = &[
    Package { name: "gcc", check: Check::Binary("gcc") },
    // `gcc -static` needs the static libc.
    Package { name: "libc6-dev", check: Check::File("/usr/lib/x86_64-linux-gnu/libc.a") },
    // The Debian `busybox` package also installs /bin/busybox, but dynamically linked.
    Package { name: "busybox-static", check: Check::StaticElf("/bin/busybox") },
    Package { name: "sqlite3", check: Check::Binary("sqlite3") },
    Package { name: "python3", check: Check::Binary("python3") },
    Package { name: "dash", check: Check::Binary("dash") },
    Package { name: "bash", check: Check::Binary("bash") },
    Package { name: "coreutils", check: Check::Binary("cat") },
    // A server inside the sandbox under a firewall policy (tests/policy.rs, `xtask bench`).
    Package { name: "lighttpd", check: Check::File("/usr/sbin/lighttpd") },
    // gVisor, the peer `cargo xtask bench` measures beside the sandbox (its `_gvisor` rows).
    Package { name: "runsc", check: Check::Binary("runsc") },
];

/// The C toolchain of [`PACKAGES`] (`gcc -static`): what building the demo needs.
pub fn c_toolchain() -> &'static [Package] {
    &PACKAGES[..2]
}

impl Check {
    /// Whether the check passes on this machine.
    pub fn ok(self) -> bool {
        match self {
            Check::Binary(name) => util::on_path(name),
            Check::File(path) => Path::new(path).is_file(),
            Check::StaticElf(path) => std::fs::read(path).is_ok_and(|elf| is_static_elf(&elf)),
        }
    }
}

/// Whether `elf` is a 64-bit little-endian ELF executable without a `PT_INTERP` program header.
pub fn is_static_elf(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| elf.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
    let u64_at = |o: usize| elf.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()));
    // ELFCLASS64, ELFDATA2LSB.
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..usize::from(phnum)).all(|i| {
        let p_type = phoff.checked_add(i * usize::from(phentsize)).and_then(u32_at);
        p_type.is_some_and(|t| t != PT_INTERP)
    })
}

/// Whether this process runs as root.
#[allow(unsafe_code)]
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() == 0 }
}

/// The packages of `packages` whose check fails.
pub fn missing(packages: &[Package]) -> Vec<&'static str> {
    packages.iter().filter(|p| !p.check.ok()).map(|p| p.name).collect()
}

/// Installs the missing packages of [`PACKAGES`] (see [`provision_packages`]).
pub fn provision() -> Result<(), String> {
    provision_packages(PACKAGES)
}

/// Installs the missing packages of `packages` (as root, with apt-get), or explains how to when
/// not root.
pub fn provision_packages(packages: &[Package]) -> Result<(), String> {
    let missing = missing(packages);
    for p in packages {
        let state = if missing.contains(&p.name) { "missing" } else { "ok" };
        println!("    {:<16} {state}", p.name);
    }
    if missing.is_empty() {
        return Ok(());
    }
    let install_args = |prefix: &[&'static str]| -> Vec<&'static str> {
        let mut a = prefix.to_vec();
        a.extend(["apt-get", "install", "-y", "--no-install-recommends"]);
        a.extend(&missing);
        a
    };
    if !is_root() {
        return Err(format!(
            "missing Debian packages: {}. Install them with:\n    {}\nor re-run as root",
            missing.join(" "),
            install_args(&["sudo"]).join(" ")
        ));
    }
    let apt = |args: &[&str]| {
        let mut c = util::cmd(args[0], &args[1..]);
        c.env("DEBIAN_FRONTEND", "noninteractive");
        util::run(&mut c).map(|s| s.success())
    };
    let install = install_args(&[]);
    if !apt(&install)? {
        println!("    apt-get install failed; updating the package lists and retrying");
        if !apt(&["apt-get", "update"])? {
            return Err(
                "`apt-get update` failed; check the network and /etc/apt/sources.list".into()
            );
        }
        if !apt(&install)? {
            return Err(format!("`{}` failed", install.join(" ")));
        }
    }
    let still = self::missing(packages);
    if !still.is_empty() {
        return Err(format!(
            "installed, but these packages' checks still fail: {}",
            still.join(" ")
        ));
    }
    Ok(())
}

/// Whether `cargo nextest` is available (echoing the check).
pub fn have_nextest() -> bool {
    let (ok, out) = util::run_captured(&mut util::cmd("cargo", ["nextest", "--version"]));
    match out.lines().next() {
        Some(v) if ok => println!("    {v}"),
        _ => println!("    cargo-nextest not found; tests will run with `cargo test`"),
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_c_toolchain_is_gcc_and_the_static_libc() {
        let names: Vec<_> = c_toolchain().iter().map(|p| p.name).collect();
        assert_eq!(names, ["gcc", "libc6-dev"]);
    }

    fn elf(phdr_types: &[u32]) -> Vec<u8> {
        let mut e = vec![0u8; 64 + 56 * phdr_types.len()];
        e[..6].copy_from_slice(b"\x7fELF\x02\x01");
        e[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        e[0x38..0x3a].copy_from_slice(&(phdr_types.len() as u16).to_le_bytes());
        for (i, t) in phdr_types.iter().enumerate() {
            e[64 + 56 * i..68 + 56 * i].copy_from_slice(&t.to_le_bytes());
        }
        e
    }

    #[test]
    fn static_elf_detection() {
        assert!(is_static_elf(&elf(&[1, 1, 4])));
        assert!(!is_static_elf(&elf(&[6, 3, 1])));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
        let mut truncated = elf(&[1, 1]);
        truncated.truncate(100);
        assert!(!is_static_elf(&truncated));
    }
}
