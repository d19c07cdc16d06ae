//! Property tests: `parse` + `plan` + `build_initial_stack` never panic on mutated images,
//! and every accepted plan satisfies the load-plan invariants.

mod common;

use common::{Img, Ph};
use elf_min::{
    AuxvParams, DEFAULT_ARG_LIMIT, ElfFile, ElfKind, LoadPlan, PAGE_SIZE, StackParams, USER_END,
    build_initial_stack, parse_initial_stack, read_cstr,
};
use proptest::prelude::*;

fn check_plan(bytes: &[u8], elf: &ElfFile<'_>, plan: &LoadPlan) {
    let segs = &plan.segments;
    assert!(!segs.is_empty());
    for s in segs {
        assert_eq!(s.start % PAGE_SIZE, 0);
        assert_eq!(s.end % PAGE_SIZE, 0);
        assert!(s.start < s.end && s.end <= USER_END);
        assert!(!s.is_empty());
        assert_eq!(s.file_offset % PAGE_SIZE, 0);
        if s.file_len > 0 {
            assert!(s.file_offset + s.file_len <= bytes.len() as u64, "file range in file");
            assert!(s.file_len <= s.len());
        }
        assert!(s.start <= s.zero_from && s.zero_from <= s.end, "zero_from in segment");
        if s.len() <= 1 << 16 {
            let mut out = vec![0xAA; s.len() as usize];
            s.write_image(bytes, &mut out);
            if s.has_zero_fill {
                let z = (s.zero_from - s.start) as usize;
                assert!(out[z..].iter().all(|&b| b == 0));
            }
        }
    }
    for w in segs.windows(2) {
        assert!(w[0].end <= w[1].start, "sorted and disjoint");
    }
    assert_eq!(plan.span, (segs[0].start, segs[segs.len() - 1].end));
    assert_eq!(plan.brk_start, plan.span.1);
    assert_eq!(plan.span.0, elf.span().lo + plan.load_bias);
    assert!(plan.entry < USER_END);
    assert_eq!(plan.phent, 56);
    if let Some((a, b)) = plan.relro {
        assert!(a < b && a % PAGE_SIZE == 0 && b % PAGE_SIZE == 0);
    }
    if let Some(path) = elf.interp() {
        assert!(!path.is_empty() && !path.contains(&0));
    }
}

/// Parses, plans at a few biases, builds a stack: must never panic.
fn exercise(bytes: &[u8], extra_bias: u64) {
    let Ok(elf) = ElfFile::parse(bytes) else {
        return;
    };
    let span = elf.span();
    assert!(span.lo < span.hi && span.hi <= USER_END);
    assert!(span.align.is_power_of_two() && span.align >= PAGE_SIZE);
    let biases = match elf.kind() {
        ElfKind::Exec => vec![0, PAGE_SIZE],
        ElfKind::Dyn => vec![
            0,
            span.align,
            0x5555_5555_4000u64.next_multiple_of(span.align),
            extra_bias,
            extra_bias & !(span.align - 1),
        ],
    };
    for bias in biases {
        if let Ok(plan) = elf.plan(bias) {
            check_plan(bytes, &elf, &plan);
            let argv: [&[u8]; 2] = [b"prog", elf.interp().unwrap_or(b"none")];
            let p = StackParams {
                stack_top: 0x7fff_ffff_e000,
                argv: &argv,
                envp: &[b"A=B"],
                execfn: b"/prog",
                random: [7; 16],
                auxv: AuxvParams::for_program(&plan, None),
                arg_limit: DEFAULT_ARG_LIMIT,
                align_pad: bias % 8192,
            };
            let st = build_initial_stack(&p).unwrap();
            assert_eq!(st.sp % 16, 0);
        }
    }
}

fn base_image() -> impl Strategy<Value = Img> {
    prop_oneof![Just(Img::pie()), Just(Img::static_pie()), Just(Img::exec())]
}

fn interesting_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..0x3000,
        Just(0),
        Just(u64::MAX),
        Just(USER_END),
        (0u64..64).prop_map(|k| USER_END - k * PAGE_SIZE),
        (0u64..64).prop_map(|k| u64::MAX - k * 0x800),
        (0u32..64).prop_map(|k| 1u64 << k),
    ]
}

/// A field mutation: (phdr index, field 0..7, value).
fn ph_mutation() -> impl Strategy<Value = (usize, usize, u64)> {
    (0usize..12, 0usize..7, interesting_u64())
}

fn apply(img: &mut Img, (i, f, v): (usize, usize, u64)) {
    if img.phdrs.len() <= i {
        img.phdrs.resize(i + 1, Ph::default());
    }
    let ph = &mut img.phdrs[i];
    match f {
        0 => ph.p_type = [1, 3, 6, 7, 0x6474_e551, 0x6474_e552, v as u32][(v % 7) as usize],
        1 => ph.p_flags = v as u32,
        2 => ph.p_offset = v,
        3 => ph.p_vaddr = v,
        4 => ph.p_filesz = v,
        5 => ph.p_memsz = v,
        _ => ph.p_align = v,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Byte flips (mostly in the headers) and truncation.
    #[test]
    fn byte_flips_and_truncation_never_panic(
        img in base_image(),
        flips in prop::collection::vec((0usize..0x2100, any::<u8>()), 0..12),
        head_flips in prop::collection::vec((0usize..0x200, any::<u8>()), 0..6),
        cut in prop::option::of(0usize..0x2100),
        bias in any::<u64>(),
    ) {
        let mut bytes = img.build();
        for (at, b) in flips.into_iter().chain(head_flips) {
            if let Some(slot) = bytes.get_mut(at) {
                *slot ^= b;
            }
        }
        if let Some(n) = cut {
            bytes.truncate(n);
        }
        exercise(&bytes, bias);
    }

    /// Structured mutations of program-header fields and header fields.
    #[test]
    fn field_mutations_never_panic(
        img in base_image(),
        muts in prop::collection::vec(ph_mutation(), 1..5),
        entry in prop::option::of(interesting_u64()),
        phoff in prop::option::of(interesting_u64()),
        phnum in prop::option::of(0u16..80),
        bias in interesting_u64(),
    ) {
        let mut img = img;
        for m in muts {
            apply(&mut img, m);
        }
        if let Some(e) = entry {
            img.e_entry = e;
        }
        if let Some(p) = phoff {
            img.e_phoff = p % 0x2100;
        }
        img.e_phnum = phnum;
        let bytes = img.build();
        exercise(&bytes, bias);
    }

    /// Any argv/envp shape: sp is 16-aligned and the tables read back.
    #[test]
    fn stacks_round_trip(
        argv in prop::collection::vec(prop::collection::vec(1u8..=255, 0..40), 0..12),
        envp in prop::collection::vec(prop::collection::vec(1u8..=255, 0..40), 0..12),
        execfn in prop::collection::vec(1u8..=255, 0..60),
        pad in 0u64..8192,
        top_pages in 1u64..1000,
    ) {
        let argv: Vec<&[u8]> = argv.iter().map(|v| v.as_slice()).collect();
        let envp: Vec<&[u8]> = envp.iter().map(|v| v.as_slice()).collect();
        let p = StackParams {
            stack_top: top_pages * PAGE_SIZE,
            argv: &argv,
            envp: &envp,
            execfn: &execfn,
            random: [3; 16],
            auxv: AuxvParams::default(),
            arg_limit: DEFAULT_ARG_LIMIT,
            align_pad: pad,
        };
        let Ok(st) = build_initial_stack(&p) else { return Ok(()) };
        prop_assert_eq!(st.sp % 16, 0);
        let parsed = parse_initial_stack(&st.image).unwrap();
        prop_assert_eq!(parsed.argc as usize, argv.len().max(1));
        for (ptr, s) in parsed.argv.iter().zip(&argv) {
            prop_assert_eq!(read_cstr(&st.image, st.sp, *ptr).unwrap(), *s);
        }
        prop_assert_eq!(parsed.envp.len(), envp.len());
        for (ptr, s) in parsed.envp.iter().zip(&envp) {
            prop_assert_eq!(read_cstr(&st.image, st.sp, *ptr).unwrap(), *s);
        }
    }
}
