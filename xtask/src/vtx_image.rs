//! The VT-x rig's boot image: Debian's cloud kernel and busybox-static (fetched with
//! `apt-get download`, unpacked with `dpkg-deb -x`), an initramfs written here (newc cpio,
//! uncompressed) and an isolinux ISO made with `xorriso`.
//!
//! Everything is cached under `target/vtx/`: `.deb` files by name (package, version,
//! architecture), unpacked packages by a marker file, stripped binaries by mtime, and the ISO by
//! a hash of everything that goes into it (rebuilt only when that changed).

use crate::{provision, util};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The metapackage whose dependency names the current cloud kernel (the kernel is never pinned:
/// Debian replaces point releases).
pub const KERNEL_META: &str = "linux-image-cloud-amd64";

/// Kernel modules the guest may load (path below `lib/modules/<version>/kernel/`): `/init` loads
/// irqbypass, kvm, then kvm-intel or kvm-amd, whichever fits the emulated CPU.
const MODULES: &[(&str, &str)] = &[
    ("irqbypass", "virt/lib/irqbypass.ko"),
    ("kvm", "arch/x86/kvm/kvm.ko"),
    ("kvm-intel", "arch/x86/kvm/kvm-intel.ko"),
    ("kvm-amd", "arch/x86/kvm/kvm-amd.ko"),
];

/// The kernel command line. `cryptomgr.notests` and `loglevel=4` save most of the boot time
/// (crypto self-tests; console output at an emulated 115200 baud); `clocksource=acpi_pm` because
/// Bochs advances the TSC by one per instruction while the kernel takes it for 3.5 GHz, which
/// makes every guest sleep and timeout some 70 times too long; `panic=0`: a panic halts (the host
/// sees it on the console) instead of rebooting into the rig again.
pub const CMDLINE: &str = "console=ttyS0,115200 earlycon=uart8250,io,0x3f8,115200 \
    printk.time=1 loglevel=4 panic=0 mitigations=off cryptomgr.notests clocksource=acpi_pm";

/// One `apt-cache show --no-all-versions` stanza, the fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub package: String,
    pub version: String,
    pub arch: String,
    pub depends: String,
}

impl Candidate {
    /// Parses `apt-cache show` output: one candidate per stanza.
    pub fn parse_all(text: &str) -> Vec<Candidate> {
        text.split("\n\n").filter_map(Candidate::parse_stanza).collect()
    }

    fn parse_stanza(stanza: &str) -> Option<Candidate> {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(|v| v.trim().to_string()))
        };
        Some(Candidate {
            package: field("Package")?,
            version: field("Version")?,
            arch: field("Architecture")?,
            depends: field("Depends").unwrap_or_default(),
        })
    }

    /// The file name `apt-get download` gives the package (`:` of an epoch as `%3a`).
    pub fn deb_name(&self) -> String {
        format!("{}_{}_{}.deb", self.package, self.version.replace(':', "%3a"), self.arch)
    }
}

/// The kernel package `linux-image-cloud-amd64` depends on (`linux-image-6.1.0-NN-cloud-amd64`),
/// with the version when the dependency pins one (`(= 6.1.172-1)`, as Debian's metapackages do).
pub fn kernel_dependency(meta: &Candidate) -> Option<(String, Option<String>)> {
    meta.depends.split(',').flat_map(|alt| alt.split('|')).find_map(|d| {
        let mut words = d.split_whitespace();
        let name = words.next()?;
        if !name.starts_with("linux-image-") || name == meta.package {
            return None;
        }
        let rest: String = words.collect::<Vec<_>>().join(" ");
        let version =
            rest.strip_prefix("(=").and_then(|v| v.strip_suffix(')')).map(|v| v.trim().to_string());
        Some((name.to_string(), version))
    })
}

/// Runs `apt-cache show --no-all-versions PACKAGES...` (one call: each takes a second) and
/// returns the candidates in the order asked.
fn apt_candidates(packages: &[&str]) -> Result<Vec<Candidate>, String> {
    let mut c = util::cmd("apt-cache", ["show", "--no-all-versions"]);
    let out = c
        .args(packages)
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run `apt-cache` ({e}); the rig needs Debian's apt"))?;
    let all = Candidate::parse_all(&String::from_utf8_lossy(&out.stdout));
    packages
        .iter()
        .map(|p| {
            all.iter().find(|c| c.package == *p).cloned().ok_or_else(|| {
                format!(
                    "apt knows no package {p} ({}); run `apt-get update` (as root) first",
                    String::from_utf8_lossy(&out.stderr).trim()
                )
            })
        })
        .collect()
}

fn apt_update(updated: &mut bool) -> Result<(), String> {
    *updated = true;
    let mut c = util::cmd("apt-get", ["update"]);
    c.env("DEBIAN_FRONTEND", "noninteractive");
    util::run_ok(&mut c).map_err(|e| format!("{e}; check the network and the apt sources"))
}

/// The current cloud kernel and busybox-static, as apt sees them.
fn resolve() -> Result<[Candidate; 2], String> {
    let [meta, busybox]: [Candidate; 2] = apt_candidates(&[KERNEL_META, "busybox-static"])?
        .try_into()
        .expect("two packages asked, two answers");
    let (name, version) = kernel_dependency(&meta).ok_or_else(|| {
        format!(
            "{KERNEL_META} {} depends on no linux-image package: {}",
            meta.version, meta.depends
        )
    })?;
    let kernel = match version {
        Some(version) => {
            Candidate { package: name, version, arch: meta.arch.clone(), depends: String::new() }
        }
        None => apt_candidates(&[&name])?.remove(0),
    };
    println!("    {KERNEL_META} {} -> {} {}", meta.version, kernel.package, kernel.version);
    Ok([kernel, busybox])
}

/// Downloads `cand` into `debs` unless it is there already; returns its path.
fn download(cand: &Candidate, debs: &Path) -> Result<PathBuf, String> {
    let deb = debs.join(cand.deb_name());
    if deb.is_file() {
        println!("    {} (cached)", cand.deb_name());
        return Ok(deb);
    }
    let mut c = util::cmd("apt-get", ["download"]);
    c.arg(format!("{}={}", cand.package, cand.version)).current_dir(debs);
    if util::run(&mut c)?.success() && deb.is_file() {
        return Ok(deb);
    }
    Err(format!(
        "`apt-get download {}={}` did not produce {}",
        cand.package,
        cand.version,
        deb.display()
    ))
}

/// Resolves and downloads the kernel and busybox-static. As root, when apt does not know a
/// package or the mirror no longer has the version the package lists name, runs `apt-get
/// update` once and tries again.
fn fetch_debs(debs: &Path) -> Result<[PathBuf; 2], String> {
    let mut updated = false;
    loop {
        let attempt = resolve().and_then(|[k, b]| Ok([download(&k, debs)?, download(&b, debs)?]));
        match attempt {
            Ok(paths) => return Ok(paths),
            Err(e) if !updated && provision::is_root() => {
                println!("    {e}; updating the package lists and trying again");
                apt_update(&mut updated)?;
            }
            Err(e) if provision::is_root() => return Err(e),
            Err(e) => return Err(format!("{e} (as root the rig would run `apt-get update`)")),
        }
    }
}

/// Unpacks `deb` into `x/<deb name>/` (once; a marker file records success).
fn unpack(deb: &Path, x: &Path) -> Result<PathBuf, String> {
    let stem = deb.file_stem().expect("a .deb file").to_string_lossy().into_owned();
    let dir = x.join(&stem);
    let marker = x.join(format!("{stem}.unpacked"));
    if marker.is_file() && dir.is_dir() {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    mkdir(&dir)?;
    let mut c = util::cmd("dpkg-deb", ["-x"]);
    c.arg(deb).arg(&dir);
    util::run_ok(&mut c)?;
    write(&marker, b"")?;
    Ok(dir)
}

/// Removes the packages of earlier runs (Debian replaces the kernel every few weeks) from `debs`
/// and their unpacked trees from `x`: everything not named after one of `keep`.
fn prune(debs: &Path, x: &Path, keep: &[&Path]) {
    let stems: Vec<String> = keep
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    for dir in [debs, x] {
        for p in read_dir_sorted(dir).unwrap_or_default() {
            let name = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let stem = name.trim_end_matches(".deb").trim_end_matches(".unpacked");
            if !stems.iter().any(|s| s == stem) {
                println!("    removing {} (an older package)", p.display());
                let _ =
                    if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            }
        }
    }
}

/// What the Debian packages provide.
#[derive(Debug)]
pub struct DebianParts {
    /// The kernel package's file name (`linux-image-6.1.0-NN-cloud-amd64_<version>_amd64.deb`).
    pub kernel: String,
    pub vmlinuz: PathBuf,
    /// The modules of [`MODULES`], in order: (name, path).
    pub modules: Vec<(&'static str, PathBuf)>,
    pub busybox: PathBuf,
}

/// Fetches and unpacks the kernel and busybox-static.
pub fn debian_parts(vtx: &Path) -> Result<DebianParts, String> {
    let (debs, x) = (vtx.join("debs"), vtx.join("x"));
    mkdir(&debs)?;
    mkdir(&x)?;
    let [kdeb, bdeb] = fetch_debs(&debs)?;
    prune(&debs, &x, &[&kdeb, &bdeb]);
    let kdir = unpack(&kdeb, &x)?;
    let bdir = unpack(&bdeb, &x)?;

    let boot = kdir.join("boot");
    let vmlinuz = read_dir_sorted(&boot)?
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
        .ok_or_else(|| format!("{} has no boot/vmlinuz-*", kdeb.display()))?;
    let moddir = ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|d| kdir.join(d))
        .filter(|d| d.is_dir())
        .flat_map(|d| read_dir_sorted(&d).unwrap_or_default())
        .next()
        .ok_or_else(|| format!("{} has no lib/modules/<version>", kdeb.display()))?;
    let mut modules = Vec::new();
    for (name, rel) in MODULES {
        let p = moddir.join("kernel").join(rel);
        if !p.is_file() {
            return Err(format!(
                "{} has no {} (compressed modules are not supported yet)",
                kdeb.display(),
                p.strip_prefix(&kdir).unwrap_or(&p).display()
            ));
        }
        modules.push((*name, p));
    }
    let busybox = bdir.join("bin/busybox");
    if !busybox.is_file() {
        return Err(format!("{} has no bin/busybox", bdeb.display()));
    }
    let kernel = kdeb.file_name().unwrap_or_default().to_string_lossy().into_owned();
    Ok(DebianParts { kernel, vmlinuz, modules, busybox })
}

/// Drops a module's appended signature (`~Module signature appended~\n` after a
/// `struct module_signature` whose last field is the big-endian signature length). Checking it
/// takes seconds in Bochs; the kernel only taints, as signatures are not enforced.
pub fn strip_module_signature(ko: &[u8]) -> &[u8] {
    const MAGIC: &[u8] = b"~Module signature appended~\n";
    let Some(body) = ko.strip_suffix(MAGIC) else {
        return ko;
    };
    let Some(info_at) = body.len().checked_sub(12) else {
        return ko;
    };
    let sig_len = u32::from_be_bytes(body[body.len() - 4..].try_into().unwrap()) as usize;
    match info_at.checked_sub(sig_len) {
        Some(end) => &ko[..end],
        None => ko,
    }
}

/// A `newc` cpio archive (the initramfs format), built in memory. Every entry has mtime 0 and
/// owner root, so the same inputs give the same bytes.
#[derive(Debug, Default)]
pub struct Cpio {
    buf: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0,
            0,
            if mode & 0o170000 == 0o040000 { 2 } else { 1 },
            0,
            u32::try_from(data.len()).expect("cpio entries are below 4 GiB"),
            0,
            0,
            rdev.0,
            rdev.1,
            u32::try_from(name.len() + 1).expect("short names"),
            0,
        ];
        let mut header = String::from("070701");
        for f in fields {
            let _ = write!(header, "{f:08X}");
        }
        self.buf.extend_from_slice(header.as_bytes());
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// A directory (mode 0755).
    pub fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[], (0, 0));
    }

    /// A regular file, mode 0755 or 0644.
    pub fn file(&mut self, name: &str, data: &[u8], executable: bool) {
        self.entry(name, if executable { 0o100755 } else { 0o100644 }, data, (0, 0));
    }

    /// A character device node (mode 0600).
    pub fn char_dev(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020600, &[], (major, minor));
    }

    /// The archive, with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        self.buf
    }
}

/// 64-bit FNV-1a, for cache keys (stable across Rust versions, unlike `DefaultHasher`).
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn update(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Length-delimited, so ("ab", "c") and ("a", "bc") differ.
        for b in (bytes.len() as u64).to_le_bytes() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }

    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// What goes into the initramfs besides the Debian parts.
#[derive(Debug)]
pub struct Payload {
    /// `/vtx/dune/<name>`: the dune crate's test binaries (stripped).
    pub dune_tests: Vec<(String, PathBuf)>,
    /// `/vtx/bin/<name>`: the sandbox (stripped) and the static C programs.
    pub bins: Vec<(String, PathBuf)>,
    /// `/vtx/env`, sourced by `/init`.
    pub env: String,
}

/// Writes the initramfs to `vtx/initrd.cpio` (only when its bytes changed) and returns it.
pub fn initramfs(vtx: &Path, deb: &DebianParts, payload: &Payload) -> Result<Vec<u8>, String> {
    let rig = util::root().join("xtask/vtx");
    let mut c = Cpio::default();
    for d in ["bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules", "vtx", "vtx/bin"] {
        c.dir(d);
    }
    // The kernel opens /dev/console for init before devtmpfs is mounted.
    c.char_dev("dev/console", 5, 1);
    c.file("init", &read(&rig.join("init"))?, true);
    c.file("vtx/suite.sh", &read(&rig.join("suite.sh"))?, false);
    c.file("vtx/env", payload.env.as_bytes(), false);
    c.file("bin/busybox", &read(&deb.busybox)?, true);
    for (name, path) in &deb.modules {
        let ko = read(path)?;
        c.file(&format!("lib/modules/{name}.ko"), strip_module_signature(&ko), false);
    }
    for (name, path) in &payload.bins {
        c.file(&format!("vtx/bin/{name}"), &read(path)?, true);
    }
    c.dir("vtx/dune");
    for (name, path) in &payload.dune_tests {
        c.file(&format!("vtx/dune/{name}"), &read(path)?, true);
    }
    let bytes = c.finish();
    let out = vtx.join("initrd.cpio");
    if std::fs::read(&out).ok().as_deref() != Some(&bytes[..]) {
        write_atomic(&out, &bytes)?;
    }
    Ok(bytes)
}

/// Builds `vtx/vtx.iso` (isolinux, serial console) unless one from the same inputs exists: the
/// cache key covers the boot configuration and the path, size and mtime of every file that goes
/// in (`initrd.cpio` is only rewritten when its bytes change). Returns the ISO's path and whether
/// it was rebuilt.
pub fn iso(vtx: &Path, deb: &DebianParts, initrd: &[u8]) -> Result<(PathBuf, bool), String> {
    const ISOLINUX_BIN: &str = "/usr/lib/ISOLINUX/isolinux.bin";
    const LDLINUX: &str = "/usr/lib/syslinux/modules/bios/ldlinux.c32";
    let cfg = format!(
        "SERIAL 0 115200\nDEFAULT vtx\nPROMPT 0\nTIMEOUT 0\nLABEL vtx\n  KERNEL /vmlinuz\n  APPEND initrd=/initrd {CMDLINE}\n"
    );
    let mut key = Fnv::default();
    key.update(cfg.as_bytes());
    for p in [&deb.vmlinuz, &vtx.join("initrd.cpio"), Path::new(ISOLINUX_BIN), Path::new(LDLINUX)] {
        let m = std::fs::metadata(p).map_err(|e| format!("cannot stat {}: {e}", p.display()))?;
        let mtime = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        key.update(p.as_os_str().as_encoded_bytes())
            .update(&m.len().to_le_bytes())
            .update(&mtime.unwrap_or_default().as_nanos().to_le_bytes());
    }
    let key = key.hex();
    let iso = vtx.join("vtx.iso");
    let key_file = vtx.join("vtx.iso.key");
    if iso.is_file() && std::fs::read_to_string(&key_file).is_ok_and(|k| k.trim() == key) {
        return Ok((iso, false));
    }
    let tree = vtx.join("iso.d");
    let _ = std::fs::remove_dir_all(&tree);
    mkdir(&tree.join("isolinux"))?;
    write(&tree.join("isolinux/isolinux.bin"), &read(Path::new(ISOLINUX_BIN))?)?;
    write(&tree.join("isolinux/ldlinux.c32"), &read(Path::new(LDLINUX))?)?;
    write(&tree.join("isolinux/isolinux.cfg"), cfg.as_bytes())?;
    write(&tree.join("vmlinuz"), &read(&deb.vmlinuz)?)?;
    write(&tree.join("initrd"), initrd)?;
    let tmp = vtx.join(format!("vtx.iso.{}.tmp", std::process::id()));
    let mut c = util::cmd("xorriso", ["-as", "mkisofs", "-quiet", "-o"]);
    c.arg(&tmp)
        .args(["-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot"])
        .args(["-boot-load-size", "4", "-boot-info-table", "-R", "-J"])
        .arg(&tree);
    util::run_ok(&mut c)?;
    std::fs::rename(&tmp, &iso).map_err(|e| format!("cannot rename {}: {e}", tmp.display()))?;
    write(&key_file, key.as_bytes())?;
    let _ = std::fs::remove_dir_all(&tree);
    Ok((iso, true))
}

/// Copies `src` to `dst` without debug information (`objcopy --strip-debug`; the symbol table
/// stays, so panics still name functions), unless `dst` is newer than `src`.
pub fn stripped_copy(src: &Path, dst: &Path) -> Result<(), String> {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(s), Some(d)) = (mtime(src), mtime(dst))
        && d >= s
    {
        return Ok(());
    }
    if let Some(dir) = dst.parent() {
        mkdir(dir)?;
    }
    let mut c = util::cmd("objcopy", ["--strip-debug"]);
    c.arg(src).arg(dst);
    util::run_ok(&mut c)
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    v.sort();
    Ok(v)
}

pub fn read(p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
}

pub fn write(p: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(p, bytes).map_err(|e| format!("cannot write {}: {e}", p.display()))
}

/// Writes through a temporary file and a rename, so a concurrent reader sees old or new.
fn write_atomic(p: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = p.with_extension(format!("{}.tmp", std::process::id()));
    write(&tmp, bytes)?;
    std::fs::rename(&tmp, p).map_err(|e| format!("cannot rename {}: {e}", tmp.display()))
}

pub fn mkdir(p: &Path) -> Result<(), String> {
    std::fs::create_dir_all(p).map_err(|e| format!("cannot create {}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_and_kernel_dependency() {
        let text = "Package: linux-image-cloud-amd64\nSource: linux-signed-amd64 (6.1.172+1)\n\
            Version: 6.1.172-1\nArchitecture: amd64\n\
            Depends: linux-image-6.1.0-48-cloud-amd64 (= 6.1.172-1)\nDescription: x\n y\n\n\
            Package: busybox-static\nVersion: 1:1.35.0-4+deb12u1+b1\nArchitecture: amd64\n\n";
        let c = Candidate::parse_all(text);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].version, "6.1.172-1");
        assert_eq!(
            kernel_dependency(&c[0]),
            Some(("linux-image-6.1.0-48-cloud-amd64".into(), Some("6.1.172-1".into())))
        );
        assert_eq!(c[1].deb_name(), "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb");
        let unpinned =
            Candidate { depends: "linux-image-6.1.0-9-cloud-amd64, x".into(), ..c[0].clone() };
        assert_eq!(
            kernel_dependency(&unpinned),
            Some(("linux-image-6.1.0-9-cloud-amd64".into(), None))
        );
        assert!(Candidate::parse_all("N: Unable to locate package x\n").is_empty());
    }

    #[test]
    fn module_signature_is_stripped() {
        let mut ko = b"\x7fELF module body".to_vec();
        let body_len = ko.len();
        ko.extend_from_slice(&[0xaa; 40]); // the signature
        ko.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 40]); // struct module_signature
        ko.extend_from_slice(b"~Module signature appended~\n");
        assert_eq!(strip_module_signature(&ko), &ko[..body_len]);
        assert_eq!(strip_module_signature(b"unsigned"), b"unsigned");
        assert_eq!(
            strip_module_signature(b"~Module signature appended~\n"),
            b"~Module signature appended~\n"
        );
    }

    #[test]
    fn cpio_newc_layout() {
        let mut c = Cpio::default();
        c.dir("bin");
        c.file("init", b"#!/bin/sh\n", true);
        c.char_dev("dev/console", 5, 1);
        let a = c.finish();
        assert!(a.len().is_multiple_of(4));
        assert!(a.starts_with(b"070701"));
        // The second entry: header (110 bytes), "init\0" padded to a multiple of 4, the data.
        let second = &a[a.windows(6).skip(1).position(|w| w == b"070701").unwrap() + 1..];
        assert_eq!(&second[14..22], b"000081ED", "mode 0100755");
        assert_eq!(&second[54..62], b"0000000A", "file size");
        assert_eq!(&second[110..115], b"init\0");
        assert_eq!(&second[116..126], b"#!/bin/sh\n");
        assert!(a.windows(11).any(|w| w == b"TRAILER!!!\0"));
        let mut d = Cpio::default();
        d.dir("bin");
        d.file("init", b"#!/bin/sh\n", true);
        d.char_dev("dev/console", 5, 1);
        assert_eq!(d.finish(), a, "deterministic");
    }

    #[test]
    fn fnv_is_length_delimited() {
        let ab_c = Fnv::default().update(b"ab").update(b"c").hex();
        let a_bc = Fnv::default().update(b"a").update(b"bc").hex();
        assert_ne!(ab_c, a_bc);
        assert_eq!(Fnv::default().update(b"x").hex(), Fnv::default().update(b"x").hex());
    }
}
