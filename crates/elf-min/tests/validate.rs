//! Hand-made images: the valid baselines plan as expected, and each malformed field gives its
//! own `ElfError` with Linux's errno (main program and interpreter roles).

mod common;

use common::{INTERP, Img, PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_NULL, Ph, idx, pattern};
use elf_min::errno::*;
use elf_min::{ElfError, ElfFile, ElfKind, PAGE_SIZE, Prot, Segment, Tls, USER_END};

fn parse_err(bytes: &[u8]) -> ElfError {
    match ElfFile::parse(bytes) {
        Ok(_) => panic!("expected a parse error"),
        Err(e) => e,
    }
}

fn err_of(img: &Img) -> ElfError {
    parse_err(&img.build())
}

/// Asserts both verdicts: as the main program and as the interpreter.
fn assert_errno(e: &ElfError, main: i32, interp: i32) {
    assert_eq!(e.errno(), main, "main-program errno of {e:?}");
    let ie = e.clone().as_interpreter_error();
    assert!(ie.is_interpreter_error());
    assert_eq!(ie.errno(), interp, "interpreter errno of {e:?}");
    assert_eq!(ie.clone().as_interpreter_error(), ie, "idempotent");
    // Every message names a cause.
    assert!(!e.to_string().is_empty());
    assert!(ie.to_string().contains(&e.to_string()));
}

#[test]
fn pie_baseline_plans_as_expected() {
    let bytes = Img::pie().build();
    let elf = ElfFile::parse(&bytes).unwrap();
    assert_eq!(elf.kind(), ElfKind::Dyn);
    assert_eq!(elf.entry(), 0x1040);
    assert_eq!(elf.interp(), Some(&INTERP[..INTERP.len() - 1]));
    assert_eq!(elf.phnum(), 8);
    assert_eq!(elf.phoff(), 64);
    let span = elf.span();
    assert_eq!((span.lo, span.hi, span.align), (0, 0x5000, PAGE_SIZE));

    let bias = 0x5555_5555_4000;
    let plan = elf.plan(bias).unwrap();
    assert_eq!(plan.load_bias, bias);
    assert_eq!(plan.entry, bias + 0x1040);
    assert_eq!(plan.phdr, bias + 64);
    assert_eq!((plan.phent, plan.phnum), (56, 8));
    assert_eq!(plan.span, (bias, bias + 0x5000));
    assert_eq!(plan.brk_start, bias + 0x5000);
    assert_eq!(plan.relro, Some((bias + 0x3000, bias + 0x4000)));
    assert!(!plan.stack_exec);
    assert!(plan.has_gnu_stack);
    assert_eq!(plan.tls, Some(Tls { vaddr: bias + 0x3010, filesz: 0x10, memsz: 0x30, align: 16 }));
    let r = Prot { read: true, ..Prot::default() };
    assert_eq!(
        plan.segments,
        vec![
            Segment {
                start: bias,
                end: bias + 0x1000,
                file_offset: 0,
                file_len: 0x400,
                zero_from: bias + 0x400,
                has_zero_fill: false,
                prot: r,
            },
            Segment {
                start: bias + 0x1000,
                end: bias + 0x2000,
                file_offset: 0x1000,
                file_len: 0x180,
                zero_from: bias + 0x1180,
                has_zero_fill: false,
                prot: Prot { exec: true, ..r },
            },
            Segment {
                start: bias + 0x3000,
                end: bias + 0x5000,
                file_offset: 0x2000,
                file_len: 0x50,
                zero_from: bias + 0x3050,
                has_zero_fill: true,
                prot: Prot { write: true, ..r },
            },
        ]
    );
}

#[test]
fn static_pie_and_exec_baselines() {
    let bytes = Img::static_pie().build();
    let elf = ElfFile::parse(&bytes).unwrap();
    assert_eq!(elf.interp(), None);
    assert_eq!(elf.plan(0).unwrap().entry, 0x1040);

    let bytes = Img::exec().build();
    let elf = ElfFile::parse(&bytes).unwrap();
    assert_eq!(elf.kind(), ElfKind::Exec);
    let plan = elf.plan(0).unwrap();
    assert_eq!(plan.entry, 0x40_1040);
    // No PT_PHDR: Linux's rule (the PT_LOAD whose file range holds e_phoff).
    assert_eq!(plan.phdr, 0x40_0040);
    assert_eq!(plan.segments[0].start, 0x40_0000);
    assert_eq!(plan.brk_start, 0x40_5000);
}

/// The padzero rule: the tail of the last file page is zeroed only when p_memsz > p_filesz;
/// otherwise it shows the file's following bytes, like a private file mapping.
#[test]
fn segment_image_tail_follows_padzero_rule() {
    let mut img = Img::pie();
    img.size = 0x2800; // file bytes after the data segment's p_filesz
    let bytes = img.build();
    let plan = ElfFile::parse(&bytes).unwrap().plan(0).unwrap();

    // Text: p_memsz == p_filesz (0x180): the rest of the page is the file's next bytes.
    let text = plan.segments[1];
    let mut out = vec![0xAA; text.len() as usize];
    text.write_image(&bytes, &mut out);
    assert_eq!(&out[..], &bytes[0x1000..0x2000]);
    assert!(out[0x180..].iter().all(|&b| b != 0), "tail keeps file bytes");

    // Data: p_memsz > p_filesz: file bytes up to zero_from, zeros to the end, including
    // the rest of the last file page.
    let data = plan.segments[2];
    let mut out = vec![0xAA; data.len() as usize];
    data.write_image(&bytes, &mut out);
    let z = (data.zero_from - data.start) as usize;
    assert_eq!(z, 0x50);
    assert_eq!(&out[..z], &bytes[0x2000..0x2050]);
    assert!(out[z..].iter().all(|&b| b == 0), "bss and page tail are zero");

    // Without bss on the data segment, its page tail shows the file (up to EOF, then 0).
    let mut img2 = img.clone();
    img2.phdrs[idx::DATA].p_memsz = 0x40;
    img2.phdrs[idx::RELRO].p_memsz = 0x40;
    let bytes2 = img2.build();
    let data2 = ElfFile::parse(&bytes2).unwrap().plan(0).unwrap().segments[2];
    assert!(!data2.has_zero_fill);
    let mut out = vec![0xAA; data2.len() as usize];
    data2.write_image(&bytes2, &mut out);
    assert_eq!(&out[..0x800], &bytes2[0x2000..0x2800]);
    assert!(out[0x800..].iter().all(|&b| b == 0), "past EOF reads as zero");
    assert_eq!(out[0x60], pattern(0x2060));
}

#[test]
fn pure_bss_segment_and_empty_load() {
    let mut img = Img::static_pie();
    // A pure-bss PT_LOAD: no file bytes, offset irrelevant (even misaligned/out of file).
    img.phdrs.push(Ph::load(PF_R | PF_W, 0xdead_beef, 0x6000, 0, 0x2345));
    // A PT_LOAD with p_memsz == 0 maps nothing and is ignored, wherever it points.
    img.phdrs.push(Ph::load(PF_R, 0x1_0000_0000, 0x10, 0, 0));
    let bytes = img.build();
    let elf = ElfFile::parse(&bytes).unwrap();
    let plan = elf.plan(0).unwrap();
    let bss = *plan.segments.last().unwrap();
    assert_eq!((bss.start, bss.end, bss.file_len), (0x6000, 0x9000, 0));
    assert!(bss.has_zero_fill);
    assert_eq!(bss.zero_from, 0x6000);
    assert_eq!(plan.segments.len(), 4);
    let mut out = vec![1; bss.len() as usize];
    bss.write_image(&bytes, &mut out);
    assert!(out.iter().all(|&b| b == 0));
}

#[test]
fn too_short_at_several_lengths() {
    let bytes = Img::pie().build();
    for len in [0usize, 1, 3, 4, 16, 52, 63] {
        let e = parse_err(&bytes[..len]);
        assert_eq!(e, ElfError::TooShort { len: len as u64 });
        assert_errno(&e, ENOEXEC, EIO);
    }
}

#[test]
fn truncated_file_at_several_lengths() {
    let bytes = Img::pie().build();
    let phdr_end = 64 + 8 * 56;
    for len in [64usize, 100, 64 + 56, phdr_end - 1] {
        let e = parse_err(&bytes[..len]);
        assert!(matches!(e, ElfError::PhdrsOutsideFile { .. }), "{len}: {e:?}");
        assert_errno(&e, ENOEXEC, ELIBBAD);
    }
    for len in [phdr_end, 0x301, 0x31b] {
        let e = parse_err(&bytes[..len]);
        assert!(matches!(e, ElfError::InterpOutsideFile { .. }), "{len}: {e:?}");
        assert_errno(&e, EIO, ELIBBAD);
    }
    for len in [0x31c, 0x3ff, 0x1000, 0x117f, 0x2000, 0x204f] {
        let e = parse_err(&bytes[..len]);
        assert!(matches!(e, ElfError::SegmentOutsideFile { .. }), "{len}: {e:?}");
        assert_errno(&e, ENOEXEC, ELIBBAD);
    }
    assert!(ElfFile::parse(&bytes[..0x2050]).is_ok());
}

#[test]
fn bad_magic() {
    let mut img = Img::pie();
    img.ident[1] = b'X';
    let e = err_of(&img);
    assert_eq!(e, ElfError::BadMagic { magic: *b"\x7fXLF" });
    assert_errno(&e, ENOEXEC, ELIBBAD);
    // A shell script is not an ELF file either.
    let mut script = b"#!/bin/sh\necho hi\n".to_vec();
    script.resize(100, b' ');
    assert!(matches!(parse_err(&script), ElfError::BadMagic { .. }));
}

#[test]
fn elfclass32_is_rejected_with_a_clear_message() {
    let mut img = Img::pie();
    img.ident[4] = 1;
    let e = err_of(&img);
    assert_eq!(e, ElfError::BadClass { ei_class: 1 });
    assert_eq!(
        e.to_string(),
        "32-bit ELF (ELFCLASS32): only x86-64 ELF64 programs are supported; rebuild it for x86-64"
    );
    assert_errno(&e, ENOEXEC, ELIBBAD);
    img.ident[4] = 7;
    assert_eq!(err_of(&img), ElfError::BadClass { ei_class: 7 });
}

#[test]
fn big_endian_is_rejected() {
    let mut img = Img::pie();
    img.ident[5] = 2;
    let e = err_of(&img);
    assert_eq!(e, ElfError::BadData { ei_data: 2 });
    assert_errno(&e, ENOEXEC, ELIBBAD);
}

#[test]
fn bad_versions() {
    let mut img = Img::pie();
    img.ident[6] = 0;
    let e = err_of(&img);
    assert_eq!(e, ElfError::BadVersion { ei_version: 0, e_version: 1 });
    assert_errno(&e, ENOEXEC, ELIBBAD);
    let mut img = Img::pie();
    img.e_version = 2;
    assert_eq!(err_of(&img), ElfError::BadVersion { ei_version: 1, e_version: 2 });
}

#[test]
fn bad_types() {
    for (e_type, needle) in [(1u16, "ET_REL"), (4, "ET_CORE"), (0, "ET_EXEC"), (0xfe00, "ET_DYN")] {
        let mut img = Img::pie();
        img.e_type = e_type;
        let e = err_of(&img);
        assert_eq!(e, ElfError::BadType { e_type });
        assert!(e.to_string().contains(needle), "{e}");
        assert_errno(&e, ENOEXEC, EINVAL);
    }
}

#[test]
fn foreign_machines() {
    for (m, needle) in [(3u16, "EM_386"), (183, "EM_AARCH64"), (40, "EM_ARM"), (0, "another")] {
        let mut img = Img::pie();
        img.e_machine = m;
        let e = err_of(&img);
        assert_eq!(e, ElfError::BadMachine { e_machine: m });
        assert!(e.to_string().contains(needle), "{e}");
        assert!(e.to_string().contains("x86-64"), "{e}");
        assert_errno(&e, ENOEXEC, ELIBBAD);
    }
}

#[test]
fn bad_phentsize() {
    let mut img = Img::pie();
    img.e_phentsize = 32;
    let e = err_of(&img);
    assert_eq!(e, ElfError::BadPhentsize { e_phentsize: 32 });
    assert_errno(&e, ENOEXEC, ELIBBAD);
}

#[test]
fn bad_phnum() {
    let mut img = Img::pie();
    img.e_phnum = Some(0);
    let e = err_of(&img);
    assert_eq!(e, ElfError::BadPhnum { e_phnum: 0 });
    assert_errno(&e, ENOEXEC, ELIBBAD);

    // Linux's limit is 4096 bytes of table: 73 entries pass, 74 do not.
    let mut img = Img::static_pie();
    img.e_phoff = 0x1200;
    img.phdrs[idx::PHDR] = Ph::default();
    img.phdrs.resize(73, Ph::default());
    img.size = 0x1200 + 74 * 56;
    // Keep e_phoff outside the PT_LOADs' file ranges: AT_PHDR must come from PT_PHDR.
    img.phdrs[idx::PHDR] = Ph {
        p_type: 6,
        p_offset: 0x1200,
        p_vaddr: 0x1200,
        p_filesz: 73 * 56,
        p_memsz: 73 * 56,
        ..Ph::default()
    };
    assert!(ElfFile::parse(&img.build()).is_ok());
    img.phdrs.push(Ph::default());
    let e = err_of(&img);
    assert_eq!(e, ElfError::BadPhnum { e_phnum: 74 });
    img.e_phnum = Some(u16::MAX);
    assert_eq!(err_of(&img), ElfError::BadPhnum { e_phnum: u16::MAX });
}

#[test]
fn phdrs_outside_the_file() {
    let mut img = Img::pie();
    img.e_phoff = 0x10_0000;
    let e = err_of(&img);
    assert_eq!(
        e,
        ElfError::PhdrsOutsideFile { e_phoff: 0x10_0000, size: 8 * 56, file_len: 0x2050 }
    );
    assert_errno(&e, ENOEXEC, ELIBBAD);
    img.e_phoff = u64::MAX - 8;
    assert!(matches!(err_of(&img), ElfError::PhdrsOutsideFile { .. }), "overflow");
    img.e_phoff = 0x2050 - 8 * 56 + 1;
    assert!(matches!(err_of(&img), ElfError::PhdrsOutsideFile { .. }), "one byte short");
}

#[test]
fn multiple_interp() {
    let mut img = Img::pie();
    img.phdrs[idx::PHDR] = img.phdrs[idx::INTERP];
    let e = err_of(&img);
    assert_eq!(e, ElfError::MultipleInterp { first: 0, second: 1 });
    assert_errno(&e, ENOEXEC, ELIBBAD);
}

#[test]
fn interp_size_limits() {
    for p_filesz in [0u64, 1, 4097] {
        let mut img = Img::pie();
        img.phdrs[idx::INTERP].p_filesz = p_filesz;
        let e = err_of(&img);
        assert_eq!(e, ElfError::InterpBadSize { index: idx::INTERP, p_filesz });
        assert_errno(&e, ENOEXEC, ELIBBAD);
    }
    // 4096 bytes (PATH_MAX) is accepted when NUL-terminated.
    let mut img = Img::pie();
    img.size = 0x4000;
    img.phdrs[idx::INTERP].p_offset = 0x2100;
    img.phdrs[idx::INTERP].p_filesz = 4096;
    img.patches.push((0x2100 + 4095, vec![0]));
    let bytes = img.build();
    assert_eq!(ElfFile::parse(&bytes).unwrap().interp().unwrap().len(), 4095);
}

#[test]
fn interp_outside_file() {
    let mut img = Img::pie();
    img.phdrs[idx::INTERP].p_offset = 0x2040;
    let e = err_of(&img);
    assert_eq!(
        e,
        ElfError::InterpOutsideFile {
            index: idx::INTERP,
            p_offset: 0x2040,
            p_filesz: INTERP.len() as u64,
            file_len: 0x2050
        }
    );
    assert_errno(&e, EIO, ELIBBAD);
    img.phdrs[idx::INTERP].p_offset = u64::MAX - 4;
    assert!(matches!(err_of(&img), ElfError::InterpOutsideFile { .. }));
}

#[test]
fn interp_without_nul() {
    let mut img = Img::pie();
    img.phdrs[idx::INTERP].p_filesz -= 1; // drop the NUL
    let e = err_of(&img);
    assert_eq!(e, ElfError::InterpNotTerminated { len: INTERP.len() as u64 - 1 });
    assert_errno(&e, ENOEXEC, ELIBBAD);
}

#[test]
fn interp_empty_and_interior_nul() {
    let mut img = Img::pie();
    img.patches.push((0x300, vec![0]));
    let e = err_of(&img);
    assert_eq!(e, ElfError::InterpEmpty);
    assert_errno(&e, ENOENT, ELIBBAD);
    // An interior NUL ends the path, as the kernel's C-string open does.
    let mut img = Img::pie();
    img.patches.push((0x306, vec![0]));
    let bytes = img.build();
    assert_eq!(ElfFile::parse(&bytes).unwrap().interp(), Some(&b"/lib64"[..]));
}

#[test]
fn misaligned_segment() {
    let mut img = Img::pie();
    img.phdrs[idx::TEXT].p_offset = 0x1010;
    let e = err_of(&img);
    assert_eq!(
        e,
        ElfError::SegmentMisaligned { index: idx::TEXT, p_offset: 0x1010, p_vaddr: 0x1000 }
    );
    assert_errno(&e, EINVAL, EINVAL);
    let mut img = Img::pie();
    img.phdrs[idx::DATA].p_vaddr = 0x3000;
    assert!(matches!(err_of(&img), ElfError::SegmentMisaligned { index: 4, .. }));
}

#[test]
fn memsz_below_filesz() {
    let mut img = Img::pie();
    img.phdrs[idx::TEXT].p_memsz = 0x17f;
    let e = err_of(&img);
    assert_eq!(
        e,
        ElfError::MemszLessThanFilesz { index: idx::TEXT, p_filesz: 0x180, p_memsz: 0x17f }
    );
    assert_errno(&e, EINVAL, ENOMEM);
    img.phdrs[idx::TEXT].p_memsz = 0;
    assert!(matches!(err_of(&img), ElfError::MemszLessThanFilesz { .. }));
}

#[test]
fn segment_out_of_range() {
    // Ends above the 47-bit user space.
    let mut img = Img::pie();
    img.phdrs[idx::DATA].p_vaddr = USER_END - 0x1000 + 0x10;
    img.phdrs[idx::DATA].p_memsz = 0x1000;
    let e = err_of(&img);
    assert_eq!(
        e,
        ElfError::SegmentOutOfRange {
            index: idx::DATA,
            p_vaddr: USER_END - 0x1000 + 0x10,
            p_memsz: 0x1000
        }
    );
    assert_errno(&e, EINVAL, ENOMEM);
    // Wraps the address space.
    img.phdrs[idx::DATA].p_vaddr = u64::MAX - 0xfef;
    assert!(matches!(err_of(&img), ElfError::SegmentOutOfRange { .. }));
    // Ends exactly at USER_END: accepted.
    img.phdrs[idx::DATA].p_vaddr = USER_END - 0x1000 + 0x10;
    img.phdrs[idx::DATA].p_memsz = 0xff0;
    img.phdrs[idx::RELRO].p_vaddr = 0;
    assert!(ElfFile::parse(&img.build()).is_ok());
}

#[test]
fn segment_outside_file() {
    let mut img = Img::pie();
    img.phdrs[idx::DATA].p_filesz = 0x41;
    let e = err_of(&img);
    assert_eq!(
        e,
        ElfError::SegmentOutsideFile {
            index: idx::DATA,
            p_offset: 0x2010,
            p_filesz: 0x41,
            file_len: 0x2050
        }
    );
    assert_errno(&e, ENOEXEC, ELIBBAD);
    img.phdrs[idx::DATA].p_filesz = 0x40;
    img.phdrs[idx::DATA].p_offset = u64::MAX - 0xfef; // ≡ p_vaddr mod 4096, far past EOF
    assert!(matches!(err_of(&img), ElfError::SegmentOutsideFile { .. }));
}

#[test]
fn unordered_segments() {
    let mut img = Img::pie();
    img.phdrs.swap(idx::TEXT, idx::DATA);
    let e = err_of(&img);
    assert_eq!(
        e,
        ElfError::SegmentsUnordered { index: idx::DATA, prev_vaddr: 0x3010, p_vaddr: 0x1000 }
    );
    assert_errno(&e, ENOEXEC, ELIBBAD);
}

#[test]
fn overlapping_segments() {
    // Byte overlap.
    let mut img = Img::pie();
    img.phdrs[idx::TEXT].p_memsz = 0x2100;
    let e = err_of(&img);
    assert_eq!(
        e,
        ElfError::SegmentsOverlap { index: idx::DATA, prev_end: 0x4000, p_vaddr: 0x3010 }
    );
    assert_errno(&e, ENOEXEC, ELIBBAD);
    // Sharing a page without byte overlap is rejected too (each page has one owner).
    let mut img = Img::pie();
    img.phdrs[idx::TEXT].p_memsz = 0x2008;
    assert!(matches!(err_of(&img), ElfError::SegmentsOverlap { .. }));
    // Identical start.
    let mut img = Img::pie();
    img.phdrs[idx::TEXT].p_vaddr = 0;
    img.phdrs[idx::TEXT].p_offset = 0;
    assert!(matches!(err_of(&img), ElfError::SegmentsOverlap { .. }));
}

#[test]
fn no_load_segments() {
    let mut img = Img::pie();
    for ph in &mut img.phdrs {
        if ph.p_type == PT_LOAD {
            ph.p_type = PT_NULL;
        }
    }
    let e = err_of(&img);
    assert_eq!(e, ElfError::NoLoadSegments);
    assert_errno(&e, EINVAL, EINVAL);
}

#[test]
fn alignment_from_p_align() {
    let mut img = Img::pie();
    img.phdrs[idx::TEXT].p_align = 0x20_0000;
    img.phdrs[idx::DATA].p_align = 0x3000; // not a power of two: ignored
    let bytes = img.build();
    let elf = ElfFile::parse(&bytes).unwrap();
    assert_eq!(elf.span().align, 0x20_0000);
    assert!(elf.plan(0x40_0000).is_ok());
    let e = elf.plan(0x40_1000).unwrap_err();
    assert_eq!(
        e,
        ElfError::BadLoadBias { load_bias: 0x40_1000, kind: ElfKind::Dyn, align: 0x20_0000 }
    );
    assert_errno(&e, EINVAL, EINVAL);
    assert!(e.to_string().contains("multiple"), "{e}");
}

#[test]
fn exec_needs_zero_bias() {
    let bytes = Img::exec().build();
    let elf = ElfFile::parse(&bytes).unwrap();
    let e = elf.plan(0x1000).unwrap_err();
    assert_eq!(e, ElfError::BadLoadBias { load_bias: 0x1000, kind: ElfKind::Exec, align: 0 });
    assert!(e.to_string().contains("ET_EXEC"), "{e}");
}

#[test]
fn biased_out_of_range() {
    let bytes = Img::pie().build();
    let elf = ElfFile::parse(&bytes).unwrap();
    assert!(elf.plan(USER_END - 0x5000).is_ok());
    let e = elf.plan(USER_END - 0x4000).unwrap_err();
    assert_eq!(e, ElfError::BiasedOutOfRange { load_bias: USER_END - 0x4000, span_hi: 0x5000 });
    assert_errno(&e, ENOMEM, ENOMEM);
    assert!(matches!(elf.plan(u64::MAX - 0xfff).unwrap_err(), ElfError::BiasedOutOfRange { .. }));
}

#[test]
fn bad_entry() {
    let mut img = Img::exec();
    img.e_entry = USER_END;
    let bytes = img.build();
    let e = ElfFile::parse(&bytes).unwrap().plan(0).unwrap_err();
    assert_eq!(e, ElfError::BadEntry { e_entry: USER_END, load_bias: 0 });
    assert_errno(&e, EINVAL, EINVAL);
    let mut img = Img::pie();
    img.e_entry = u64::MAX - 0xfff;
    let bytes = img.build();
    let e = ElfFile::parse(&bytes).unwrap().plan(0x1000).unwrap_err();
    assert!(matches!(e, ElfError::BadEntry { .. }));
}

#[test]
fn phdr_sources() {
    // No PT_PHDR and e_phoff outside every PT_LOAD's file bytes: no AT_PHDR.
    let mut img = Img::exec();
    img.e_phoff = 0x2050;
    img.size = 0x2050 + 8 * 56;
    let bytes = img.build();
    let elf = ElfFile::parse(&bytes).unwrap();
    let e = elf.plan(0).unwrap_err();
    assert_eq!(e, ElfError::PhdrNotMapped { e_phoff: 0x2050 });
    assert_errno(&e, ENOEXEC, ELIBBAD);

    // With a PT_PHDR, that address is used.
    img.phdrs[idx::PHDR] = Ph {
        p_type: 6,
        p_flags: PF_R,
        p_offset: 0x2050,
        p_vaddr: 0x70_0000,
        p_filesz: 8 * 56,
        p_memsz: 8 * 56,
        p_align: 8,
    };
    let bytes = img.build();
    assert_eq!(ElfFile::parse(&bytes).unwrap().plan(0).unwrap().phdr, 0x70_0000);

    // Linux's rule wins when a PT_LOAD holds e_phoff, even against PT_PHDR.
    let mut img = Img::pie();
    img.phdrs[idx::PHDR].p_vaddr = 0x9999;
    let bytes = img.build();
    assert_eq!(ElfFile::parse(&bytes).unwrap().plan(0x10000).unwrap().phdr, 0x10040);
}

#[test]
fn gnu_stack_semantics() {
    let mut img = Img::pie();
    img.phdrs[idx::STACK].p_flags = PF_R | PF_W | PF_X;
    let plan = ElfFile::parse(&img.build()).unwrap().plan(0).unwrap();
    assert!(plan.stack_exec && plan.has_gnu_stack);
    // Without PT_GNU_STACK, x86-64 Linux >= 5.8 keeps the stack non-executable.
    img.phdrs[idx::STACK] = Ph::default();
    let plan = ElfFile::parse(&img.build()).unwrap().plan(0).unwrap();
    assert!(!plan.stack_exec && !plan.has_gnu_stack);
    assert!(plan.tls.is_some());
    assert!(plan.relro.is_some());
}

#[test]
fn interp_path_is_read_from_pt_interp() {
    let img = Img::pie();
    assert_eq!(img.phdrs[idx::INTERP].p_type, PT_INTERP);
    let bytes = img.build();
    let elf = ElfFile::parse(&bytes).unwrap();
    assert_eq!(elf.interp(), Some(&INTERP[..INTERP.len() - 1]));
}

/// Covers the variants that only the std edge and the stack builder produce.
#[test]
fn remaining_variants_errno() {
    use elf_min::{IoOp, StringKind};
    let cases = [
        (ElfError::StackTopMisaligned { stack_top: 8 }, EINVAL, EINVAL),
        (ElfError::StringHasNul { kind: StringKind::Argv, index: 0 }, EINVAL, EINVAL),
        (ElfError::StringTooLong { kind: StringKind::Envp, index: 0, len: 1 << 20 }, E2BIG, E2BIG),
        (ElfError::ArgsTooBig { needed: 2, limit: 1 }, E2BIG, E2BIG),
        (ElfError::StackTooLow { stack_top: 0, size: 16 }, ENOMEM, ENOMEM),
        (ElfError::NotRegularFile { is_dir: true }, EACCES, EACCES),
        (ElfError::NotRegularFile { is_dir: false }, EACCES, EACCES),
        (ElfError::NotExecutable { mode: 0o644 }, EACCES, EACCES),
        (ElfError::Io { op: IoOp::Open, errno: ENOENT }, ENOENT, ENOENT),
    ];
    for (e, main, interp) in cases {
        assert_errno(&e, main, interp);
    }
    assert!(ElfError::NotRegularFile { is_dir: true }.to_string().contains("directory"));
    assert!(ElfError::Io { op: IoOp::Open, errno: ENOENT }.to_string().contains("ENOENT"));
}
