//! `open_executable` reads only what `execve` reads of a large file (the first page, the
//! program headers, the interpreter path); `ElfFile::parse` must then give exactly the verdict
//! and plan it gives on the whole file. Checked on hand-made images of 2 MiB with the headers
//! and the interpreter path placed far from the first page, valid and broken, and on real
//! programs.
mod common;

use common::{Img, PT_INTERP, Scratch, idx};

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use elf_min::{ElfFile, open_executable, read_executable};

const BIG: usize = 2 << 20;

/// The parse verdict and, if valid, the plan at a fixed bias, as text.
fn verdict(bytes: &[u8]) -> String {
    match ElfFile::parse(bytes) {
        Ok(elf) => {
            let bias = if elf.kind() == elf_min::ElfKind::Dyn { 0x5555_0000_0000 } else { 0 };
            format!("ok interp={:?} plan={:?}", elf.interp(), elf.plan(bias))
        }
        Err(e) => format!("err {e:?}"),
    }
}

fn same_verdict(dir: &Scratch, name: &str, bytes: &[u8]) -> String {
    let path = dir.0.join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let whole = read_executable(&path).unwrap();
    let (_file, sparse) = open_executable(&path).unwrap();
    assert_eq!(sparse.len(), whole.len(), "{name}: the buffer has the file's length");
    let (a, b) = (verdict(&whole), verdict(&sparse));
    assert_eq!(a, b, "{name}: the sparse read changed the verdict");
    a
}

/// A 2 MiB PIE whose program headers sit at `phoff` and interpreter path at `interp_off`.
fn big(phoff: u64, interp_off: u64) -> Img {
    let mut img = Img::pie();
    img.size = BIG;
    img.e_phoff = phoff;
    img.phdrs[idx::PHDR].p_offset = phoff;
    img.phdrs[idx::INTERP].p_offset = interp_off;
    let interp = common::INTERP.to_vec();
    img.patches.push((interp_off as usize, interp));
    img
}

#[test]
fn sparse_reads_give_the_whole_file_verdict() {
    let dir = Scratch::new("sparse");
    let far = (BIG - 0x2000) as u64;
    // Valid: headers and interpreter path in the first page, or far away.
    assert!(same_verdict(&dir, "near", &big(64, 0x300).build()).starts_with("ok"));
    // ... having read only those parts (the body pattern is non-zero everywhere).
    let (_f, sparse) = open_executable(&dir.0.join("near")).unwrap();
    assert_ne!(common::pattern(BIG / 2), 0);
    assert_eq!(sparse[BIG / 2], 0, "the middle of the file was not read");
    assert!(same_verdict(&dir, "far-interp", &big(64, far).build()).starts_with("ok"));
    assert!(same_verdict(&dir, "far-phdrs", &big(far, 0x300).build()).starts_with("ok"));
    // Broken: headers past the end, interpreter path past the end or not terminated, too
    // many headers, a second interpreter.
    let v = same_verdict(&dir, "phdrs-outside", &big(BIG as u64 - 100, 0x300).build());
    assert!(v.contains("PhdrsOutsideFile"), "{v}");
    let v = same_verdict(&dir, "interp-outside", &big(64, BIG as u64 - 10).build());
    assert!(v.contains("InterpOutsideFile"), "{v}");
    let mut img = big(64, far);
    img.patches.push((far as usize + common::INTERP.len() - 1, b"x".to_vec()));
    let v = same_verdict(&dir, "interp-unterminated", &img.build());
    assert!(v.contains("InterpNotTerminated"), "{v}");
    let mut img = big(64, 0x300);
    img.e_phnum = Some(200);
    let v = same_verdict(&dir, "phnum", &img.build());
    assert!(v.contains("BadPhnum"), "{v}");
    let mut img = big(64, far);
    img.phdrs[idx::STACK].p_type = PT_INTERP;
    img.phdrs[idx::STACK].p_offset = far;
    img.phdrs[idx::STACK].p_filesz = common::INTERP.len() as u64;
    let v = same_verdict(&dir, "two-interps", &img.build());
    assert!(v.contains("MultipleInterp"), "{v}");
}

#[test]
fn real_programs_parse_the_same() {
    let dir = Scratch::new("sparse-real");
    for p in ["/bin/busybox", "/usr/bin/node", "/usr/bin/python3", "/bin/ls"] {
        let path = Path::new(p);
        if !path.exists() {
            continue;
        }
        let bytes = read_executable(path).unwrap();
        let name = p.rsplit('/').next().unwrap();
        assert!(same_verdict(&dir, name, &bytes).starts_with("ok"), "{p}");
    }
}
