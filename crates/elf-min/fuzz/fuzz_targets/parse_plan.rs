//! Fuzz `ElfFile::parse` + `plan` + `build_initial_stack` on arbitrary bytes.
//!
//! Any panic is a bug. Accepted plans are checked against the plan invariants.
#![no_main]

use elf_min::{
    AuxvParams, DEFAULT_ARG_LIMIT, ElfFile, ElfKind, PAGE_SIZE, StackParams, USER_END,
    build_initial_stack, parse_initial_stack,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(elf) = ElfFile::parse(data) else {
        return;
    };
    let span = elf.span();
    assert!(span.lo < span.hi && span.hi <= USER_END);
    let bias = match elf.kind() {
        ElfKind::Exec => 0,
        ElfKind::Dyn => 0x5555_5555_4000u64.next_multiple_of(span.align),
    };
    let Ok(plan) = elf.plan(bias) else {
        return;
    };
    let mut prev_end = 0;
    for s in &plan.segments {
        assert!(s.start % PAGE_SIZE == 0 && s.end % PAGE_SIZE == 0);
        assert!(prev_end <= s.start && s.start < s.end && s.end <= USER_END);
        assert!(s.start <= s.zero_from && s.zero_from <= s.end);
        if s.file_len > 0 {
            assert!(s.file_offset + s.file_len <= data.len() as u64);
        }
        if s.len() <= 1 << 16 {
            let mut out = vec![0u8; s.len() as usize];
            s.write_image(data, &mut out);
        }
        prev_end = s.end;
    }
    // Use the file's own bytes as argument strings (split at NULs).
    let strings: Vec<&[u8]> = data.split(|&b| b == 0).take(16).collect();
    let (argv, envp) = strings.split_at(strings.len() / 2);
    let params = StackParams {
        stack_top: 0x7fff_ffff_e000,
        argv,
        envp,
        execfn: elf.interp().unwrap_or(b"/fuzz"),
        random: [0x5a; 16],
        auxv: AuxvParams::for_program(&plan, None),
        arg_limit: DEFAULT_ARG_LIMIT,
        align_pad: data.len() as u64 % 8192,
    };
    if let Ok(st) = build_initial_stack(&params) {
        assert_eq!(st.sp % 16, 0);
        let parsed = parse_initial_stack(&st.image).expect("own stack parses");
        assert_eq!(parsed.argc as usize, argv.len().max(1));
    }
});
