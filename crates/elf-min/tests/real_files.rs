//! Real binaries: /bin/ls (dynamic PIE), ld.so (ET_DYN interpreter), and a static and a
//! static-pie program built with gcc. Plans are checked against goblin's raw headers
//! (what `readelf -lW` shows) and, for programs we can run, against the auxv values the
//! kernel really passed.
mod common;

use common::Scratch;

use std::path::{Path, PathBuf};
use std::process::Command;

use elf_min::{ElfError, ElfFile, ElfKind, LoadPlan, PAGE_SIZE, read_executable};
use goblin::elf::Elf;
use goblin::elf::program_header::{PT_LOAD, PT_PHDR};

const LD_SO: &str = "/lib64/ld-linux-x86-64.so.2";

fn page_down(v: u64) -> u64 {
    v & !(PAGE_SIZE - 1)
}

fn page_up(v: u64) -> u64 {
    page_down(v + PAGE_SIZE - 1)
}

/// Recomputes every segment from goblin's view of the same bytes, readelf-style.
fn check_against_goblin(bytes: &[u8], elf: &ElfFile<'_>, plan: &LoadPlan) {
    let g = Elf::parse(bytes).expect("goblin parses it");
    let bias = plan.load_bias;
    assert_eq!(elf.entry(), g.header.e_entry);
    assert_eq!(plan.entry, g.header.e_entry + bias);
    assert_eq!(plan.phnum, u64::from(g.header.e_phnum));
    assert_eq!(plan.phent, 56);
    let loads: Vec<_> =
        g.program_headers.iter().filter(|ph| ph.p_type == PT_LOAD && ph.p_memsz > 0).collect();
    assert_eq!(plan.segments.len(), loads.len());
    for (seg, ph) in plan.segments.iter().zip(&loads) {
        assert_eq!(seg.start, page_down(ph.p_vaddr + bias));
        assert_eq!(seg.end, page_up(ph.p_vaddr + ph.p_memsz + bias));
        assert_eq!(seg.file_offset, page_down(ph.p_offset));
        if ph.p_filesz > 0 {
            assert_eq!(seg.file_len, ph.p_vaddr % PAGE_SIZE + ph.p_filesz);
            assert!(seg.file_offset + seg.file_len <= bytes.len() as u64);
        }
        assert_eq!(seg.zero_from, ph.p_vaddr + ph.p_filesz + bias);
        assert_eq!(seg.has_zero_fill, ph.p_memsz > ph.p_filesz);
        assert_eq!(seg.prot.read, ph.is_read());
        assert_eq!(seg.prot.write, ph.is_write());
        assert_eq!(seg.prot.exec, ph.is_executable());
    }
    assert_eq!(plan.span.0, plan.segments[0].start);
    assert_eq!(plan.span.1, plan.segments.last().unwrap().end);
    assert_eq!(plan.brk_start, plan.span.1);
    if let Some(ph) = g.program_headers.iter().find(|ph| ph.p_type == PT_PHDR) {
        assert_eq!(plan.phdr, ph.p_vaddr + bias, "AT_PHDR agrees with PT_PHDR");
    }
    // Linux's rule: the PT_LOAD whose file range holds e_phoff.
    let holder = loads
        .iter()
        .rev()
        .find(|ph| ph.p_offset <= g.header.e_phoff && g.header.e_phoff < ph.p_offset + ph.p_filesz)
        .expect("a PT_LOAD maps the program headers");
    assert_eq!(plan.phdr, g.header.e_phoff - holder.p_offset + holder.p_vaddr + bias);
}

#[test]
fn bin_ls_is_a_dynamic_pie() {
    let bytes = read_executable(Path::new("/bin/ls")).unwrap();
    let elf = ElfFile::parse(&bytes).unwrap();
    assert_eq!(elf.kind(), ElfKind::Dyn);
    assert_eq!(elf.interp(), Some(LD_SO.as_bytes()));
    let bias = 0x5555_5555_4000u64.next_multiple_of(elf.span().align);
    let plan = elf.plan(bias).unwrap();
    check_against_goblin(&bytes, &elf, &plan);
    assert!(plan.relro.is_some());
    assert!(!plan.stack_exec);
}

#[test]
fn ld_so_is_an_et_dyn_interpreter() {
    let bytes = read_executable(Path::new(LD_SO)).unwrap();
    let elf = ElfFile::parse(&bytes).unwrap();
    assert_eq!(elf.kind(), ElfKind::Dyn);
    assert_eq!(elf.interp(), None);
    let bias = 0x7f00_0000_0000u64.next_multiple_of(elf.span().align);
    let plan = elf.plan(bias).unwrap();
    check_against_goblin(&bytes, &elf, &plan);
    assert_eq!(plan.segments[0].start, bias);
}

/// Runs `exe` with LD_SHOW_AUXV-free auxv printing (getauxval) and returns
/// (AT_PHDR, AT_ENTRY, AT_PHNUM, AT_BASE).
fn run_auxv(exe: &Path) -> (u64, u64, u64, u64) {
    let out = Command::new(exe).env_clear().output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let v: Vec<u64> =
        text.split_whitespace().map(|w| u64::from_str_radix(w, 16).unwrap()).collect();
    (v[0], v[1], v[2], v[3])
}

const AUXV_C: &str = r#"
#include <stdio.h>
#include <sys/auxv.h>
int main(void) {
    printf("%lx %lx %lx %lx\n", getauxval(AT_PHDR), getauxval(AT_ENTRY),
           getauxval(AT_PHNUM), getauxval(AT_BASE));
    return 0;
}
"#;

/// Compiles AUXV_C with `flags`; `None` when gcc is not installed (see [`common::gcc`]).
fn build(dir: &Scratch, flags: &[&str]) -> Option<PathBuf> {
    let src = dir.0.join("auxv.c");
    std::fs::write(&src, AUXV_C).unwrap();
    let exe = dir.0.join("prog");
    common::gcc(flags, &exe, &src).then_some(exe)
}

#[test]
fn static_exec_matches_the_kernel() {
    let dir = Scratch::new("static");
    let Some(exe) = build(&dir, &["-static", "-no-pie", "-O1"]) else {
        return;
    };
    let bytes = read_executable(&exe).unwrap();
    let elf = ElfFile::parse(&bytes).unwrap();
    assert_eq!(elf.kind(), ElfKind::Exec);
    assert_eq!(elf.interp(), None);
    assert!(matches!(elf.plan(PAGE_SIZE), Err(ElfError::BadLoadBias { .. })));
    let plan = elf.plan(0).unwrap();
    check_against_goblin(&bytes, &elf, &plan);
    let (phdr, entry, phnum, base) = run_auxv(&exe);
    assert_eq!(phdr, plan.phdr, "AT_PHDR");
    assert_eq!(entry, plan.entry, "AT_ENTRY");
    assert_eq!(phnum, plan.phnum, "AT_PHNUM");
    assert_eq!(base, 0, "AT_BASE");
}

#[test]
fn static_pie_matches_the_kernel() {
    let dir = Scratch::new("static-pie");
    let Some(exe) = build(&dir, &["-static-pie", "-fPIE", "-O1"]) else {
        return;
    };
    let bytes = read_executable(&exe).unwrap();
    let elf = ElfFile::parse(&bytes).unwrap();
    assert_eq!(elf.kind(), ElfKind::Dyn);
    assert_eq!(elf.interp(), None);
    let (phdr, entry, phnum, _) = run_auxv(&exe);
    let bias = entry - elf.entry();
    assert_eq!(bias % elf.span().align, 0, "the kernel's bias is aligned");
    let plan = elf.plan(bias).unwrap();
    check_against_goblin(&bytes, &elf, &plan);
    assert_eq!(phdr, plan.phdr, "AT_PHDR");
    assert_eq!(phnum, plan.phnum, "AT_PHNUM");
}

#[test]
fn dynamic_pie_matches_the_kernel() {
    let dir = Scratch::new("dyn-pie");
    let Some(exe) = build(&dir, &["-pie", "-fPIE", "-O1"]) else {
        return;
    };
    let bytes = read_executable(&exe).unwrap();
    let elf = ElfFile::parse(&bytes).unwrap();
    assert_eq!(elf.interp(), Some(LD_SO.as_bytes()));
    let (phdr, entry, phnum, base) = run_auxv(&exe);
    let plan = elf.plan(entry - elf.entry()).unwrap();
    check_against_goblin(&bytes, &elf, &plan);
    assert_eq!(phdr, plan.phdr, "AT_PHDR");
    assert_eq!(phnum, plan.phnum, "AT_PHNUM");
    // AT_BASE is the interpreter's bias: a valid plan for ld.so.
    let ld = read_executable(Path::new(LD_SO)).unwrap();
    let ld_elf = ElfFile::parse(&ld).unwrap();
    let ld_plan = ld_elf.plan(base).unwrap();
    assert_eq!(ld_plan.segments[0].start, base);
}

#[test]
fn read_executable_verdicts() {
    use elf_min::errno::{EACCES, ENOENT, ENOTDIR};
    let scratch = Scratch::new("read");
    let dir = scratch.0.clone();

    let e = read_executable(&dir).unwrap_err();
    assert_eq!(e, ElfError::NotRegularFile { is_dir: true });
    assert_eq!(e.errno(), EACCES);

    let e = read_executable(&dir.join("missing")).unwrap_err();
    assert_eq!(e.errno(), ENOENT);
    assert!(matches!(e, ElfError::Io { .. }));

    let e = read_executable(Path::new("/dev/null")).unwrap_err();
    assert_eq!(e, ElfError::NotRegularFile { is_dir: false });
    assert_eq!(e.errno(), EACCES);

    // Not executable: no x bit at all (refused even for root).
    use std::os::unix::fs::PermissionsExt;
    let plain = dir.join("plain");
    std::fs::write(&plain, b"\x7fELF").unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = read_executable(&plain).unwrap_err();
    assert_eq!(e, ElfError::NotExecutable { mode: 0o644 });
    assert_eq!(e.errno(), EACCES);

    let e = read_executable(&plain.join("x")).unwrap_err();
    assert_eq!(e.errno(), ENOTDIR);

    // Executable but truncated: read succeeds, parse fails.
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bytes = read_executable(&plain).unwrap();
    assert_eq!(bytes, b"\x7fELF");
    assert!(matches!(ElfFile::parse(&bytes), Err(ElfError::TooShort { len: 4 })));

    // A FIFO is refused without blocking.
    let fifo = dir.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status();
    assert!(made.as_ref().is_ok_and(|s| s.success()), "mkfifo (coreutils): {made:?}");
    let e = read_executable(&fifo).unwrap_err();
    assert_eq!(e, ElfError::NotRegularFile { is_dir: false });
}
