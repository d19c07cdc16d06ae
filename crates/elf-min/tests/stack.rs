//! The initial stack: layout invariants, limits, and a byte-for-byte comparison with the
//! stack the running kernel builds for a static test program.
mod common;

use common::Scratch;

use elf_min::auxv::*;
use elf_min::errno::{E2BIG, EINVAL, ENOMEM};
use elf_min::{
    ARG_MAX, AuxvParams, DEFAULT_ARG_LIMIT, ElfError, InitialStack, MAX_ARG_STRLEN, PLATFORM,
    StackParams, StringKind, arg_limit_for_stack_rlimit, build_initial_stack, parse_auxv,
    parse_initial_stack, read_cstr,
};

/// The auxv keys in the order Linux's `create_elf_tables` (fs/binfmt_elf.c) writes them;
/// `AT_SYSINFO_EHDR` and the two rseq keys are optional.
const KERNEL_AUXV_ORDER: [u64; 23] = [
    AT_SYSINFO_EHDR,
    AT_MINSIGSTKSZ,
    AT_HWCAP,
    AT_PAGESZ,
    AT_CLKTCK,
    AT_PHDR,
    AT_PHENT,
    AT_PHNUM,
    AT_BASE,
    AT_FLAGS,
    AT_ENTRY,
    AT_UID,
    AT_EUID,
    AT_GID,
    AT_EGID,
    AT_SECURE,
    AT_RANDOM,
    AT_HWCAP2,
    AT_EXECFN,
    AT_PLATFORM,
    AT_RSEQ_FEATURE_SIZE,
    AT_RSEQ_ALIGN,
    AT_NULL,
];

const TOP: u64 = 0x7fff_f000_0000;

fn params<'a>(argv: &'a [&'a [u8]], envp: &'a [&'a [u8]]) -> StackParams<'a> {
    StackParams {
        stack_top: TOP,
        argv,
        envp,
        execfn: b"/usr/bin/prog",
        random: *b"0123456789abcdef",
        auxv: AuxvParams {
            phdr: 0x40_0040,
            phnum: 9,
            entry: 0x40_1000,
            base: 0x7f00_0000_0000,
            uid: 1000,
            euid: 1001,
            gid: 100,
            egid: 101,
            hwcap: 0x1f8b_fbff,
            hwcap2: 2,
            minsigstksz: 2048,
            ..AuxvParams::default()
        },
        arg_limit: DEFAULT_ARG_LIMIT,
        align_pad: 0,
    }
}

/// Checks every structural property of a built stack against its inputs.
fn check(p: &StackParams<'_>, st: &InitialStack) {
    assert_eq!(st.sp % 16, 0, "sp must be 16-byte aligned");
    assert_eq!(st.image.len() as u64, p.stack_top - st.sp);
    assert_eq!(st.argv_addr, st.sp + 8);
    assert!(st.image[st.image.len() - 8..].iter().all(|&b| b == 0), "top gap");
    let parsed = parse_initial_stack(&st.image).expect("parsable");
    let argv: Vec<&[u8]> = if p.argv.is_empty() { vec![b""] } else { p.argv.to_vec() };
    assert_eq!(parsed.argc, argv.len() as u64);
    assert_eq!(st.envp_addr, st.argv_addr + 8 * (argv.len() as u64 + 1));
    assert_eq!(st.auxv_addr, st.envp_addr + 8 * (p.envp.len() as u64 + 1));
    let cstr = |a| read_cstr(&st.image, st.sp, a).expect("string in image");
    for (ptr, want) in parsed.argv.iter().zip(&argv) {
        assert_eq!(cstr(*ptr), *want);
    }
    assert_eq!(parsed.envp.len(), p.envp.len());
    for (ptr, want) in parsed.envp.iter().zip(p.envp) {
        assert_eq!(cstr(*ptr), *want);
    }
    // Strings are contiguous: argv, envp, execfn, then 8 zero bytes up to the top.
    assert_eq!(parsed.argv[0], st.arg_start);
    let env_start = parsed.envp.first().copied().unwrap_or(st.execfn_addr);
    assert_eq!(env_start, st.arg_end);
    assert_eq!(st.env_end, st.execfn_addr);
    assert_eq!(st.execfn_addr + p.execfn.len() as u64 + 1 + 8, p.stack_top);

    let keys: Vec<u64> = parsed.auxv.iter().map(|&(k, _)| k).collect();
    // Every key of the kernel's order, less the optional ones this stack does not carry.
    let want: Vec<u64> = KERNEL_AUXV_ORDER
        .iter()
        .copied()
        .filter(|&k| match k {
            AT_SYSINFO_EHDR => p.auxv.sysinfo_ehdr.is_some(),
            AT_RSEQ_FEATURE_SIZE | AT_RSEQ_ALIGN => p.auxv.rseq.is_some(),
            _ => true,
        })
        .collect();
    assert_eq!(keys, want);
    assert_eq!(parsed.auxv, st.auxv);
    let raw = &st.image[(st.auxv_addr - st.sp) as usize..];
    assert_eq!(parse_auxv(raw).as_ref(), Some(&st.auxv));
    assert_eq!(parse_auxv(&raw[..16 * (st.auxv.len() - 1)]), None, "no AT_NULL");

    let get = |k| parsed.auxv_get(k).unwrap();
    assert_eq!(get(AT_RANDOM), st.random_addr);
    let r = (st.random_addr - st.sp) as usize;
    assert_eq!(&st.image[r..r + 16], &p.random);
    assert_eq!(cstr(get(AT_EXECFN)), p.execfn);
    assert_eq!(cstr(get(AT_PLATFORM)), PLATFORM);
    assert_eq!(get(AT_PLATFORM), st.platform_addr);
    assert_eq!(st.random_addr + 16, st.platform_addr);
    assert_eq!((st.platform_addr + 7) % 16, 0);
    assert!(st.platform_addr + 7 <= st.arg_start - p.align_pad);
    assert!(st.arg_start - p.align_pad - (st.platform_addr + 7) < 16);
    assert_eq!(get(AT_PHDR), p.auxv.phdr);
    assert_eq!(get(AT_ENTRY), p.auxv.entry);
    assert_eq!(get(AT_BASE), p.auxv.base);
    assert_eq!(get(AT_PAGESZ), 4096);
    assert_eq!(get(AT_CLKTCK), 100);
    assert_eq!(get(AT_PHENT), 56);
    assert_eq!(get(AT_SECURE), u64::from(p.auxv.secure));
    // The auxv ends below the random bytes with less than 16 bytes of padding.
    let auxv_end = st.auxv_addr + 16 * parsed.auxv.len() as u64;
    assert!(auxv_end <= st.random_addr && st.random_addr - auxv_end < 16);
}

#[test]
fn aligned_for_every_small_shape() {
    let pool: Vec<Vec<u8>> = (0..8).map(|i| vec![b'a' + i as u8; i * 3 + 1]).collect();
    let strs: Vec<&[u8]> = pool.iter().map(|v| v.as_slice()).collect();
    for argc in 0..=8 {
        for envc in 0..=8 {
            for pad in [0u64, 1, 7, 9, 15, 100] {
                let argv = &strs[..argc.min(8)];
                let envp = &strs[8 - envc..];
                let mut p = params(argv, envp);
                p.align_pad = pad;
                p.auxv.sysinfo_ehdr = (envc % 2 == 0).then_some(0x7fff_f7fc_1000);
                p.auxv.rseq = (argc % 3 == 0).then_some((28, 32));
                p.auxv.secure = argc == 5;
                let st = build_initial_stack(&p).unwrap();
                check(&p, &st);
            }
        }
    }
}

#[test]
fn execfn_lengths_shift_everything_consistently() {
    for n in 0..40 {
        let execfn = vec![b'x'; n];
        let mut p = params(&[b"prog"], &[b"A=1"]);
        p.execfn = &execfn;
        let st = build_initial_stack(&p).unwrap();
        check(&p, &st);
    }
}

#[test]
fn proc_self_auxv_parses_in_our_key_order() {
    let Ok(raw) = std::fs::read("/proc/self/auxv") else {
        eprintln!("skipping: no /proc/self/auxv");
        return;
    };
    let auxv = parse_auxv(&raw).unwrap();
    assert_eq!(auxv.last(), Some(&(AT_NULL, 0)));
    // The kernel's order is the one build_initial_stack emits.
    let st = build_initial_stack(&StackParams {
        auxv: AuxvParams { sysinfo_ehdr: Some(1), rseq: Some((1, 1)), ..AuxvParams::default() },
        ..params(&[b"a"], &[])
    })
    .unwrap();
    let ours: Vec<u64> = st.auxv.iter().map(|&(k, _)| k).collect();
    let theirs: Vec<u64> = auxv.iter().map(|&(k, _)| k).filter(|k| ours.contains(k)).collect();
    let ours: Vec<u64> = ours.into_iter().filter(|k| theirs.contains(k)).collect();
    assert_eq!(ours, theirs);
}

#[test]
fn empty_argv_gets_an_empty_argv0() {
    let p = params(&[], &[b"HOME=/"]);
    let st = build_initial_stack(&p).unwrap();
    let parsed = parse_initial_stack(&st.image).unwrap();
    assert_eq!(parsed.argc, 1);
    assert_eq!(read_cstr(&st.image, st.sp, parsed.argv[0]), Some(&b""[..]));
    check(&p, &st);
}

#[test]
fn one_mib_of_arguments() {
    let arg = vec![b'a'; 64 * 1024 - 1];
    let env = vec![b'e'; 64 * 1024 - 1];
    let argv: Vec<&[u8]> = (0..8).map(|_| arg.as_slice()).collect();
    let envp: Vec<&[u8]> = (0..8).map(|_| env.as_slice()).collect();
    let p = params(&argv, &envp);
    let st = build_initial_stack(&p).unwrap();
    assert!(st.image.len() > 1 << 20);
    check(&p, &st);
}

#[test]
fn argument_budget_is_linuxs() {
    assert_eq!(arg_limit_for_stack_rlimit(8 << 20), DEFAULT_ARG_LIMIT);
    assert_eq!(arg_limit_for_stack_rlimit(u64::MAX), 6 << 20);
    assert_eq!(arg_limit_for_stack_rlimit(64 << 10), ARG_MAX);
    assert_eq!(arg_limit_for_stack_rlimit(0), ARG_MAX);

    // Exactly at the limit passes; one byte more is E2BIG.
    // strings: "/usr/bin/prog\0" (14) + args; pointers: (1 + 0) * 8.
    let limit = 1000u64;
    let fill = vec![b'z'; (limit - 8 - 14 - 1) as usize];
    let argv: [&[u8]; 1] = [&fill];
    let mut p = params(&argv, &[]);
    p.arg_limit = limit;
    check(&p, &build_initial_stack(&p).unwrap());
    let fill2 = vec![b'z'; fill.len() + 1];
    let argv2: [&[u8]; 1] = [&fill2];
    let mut p2 = params(&argv2, &[]);
    p2.arg_limit = limit;
    let e = build_initial_stack(&p2).unwrap_err();
    assert_eq!(e, ElfError::ArgsTooBig { needed: limit + 1, limit });
    assert_eq!(e.errno(), E2BIG);

    // The pointers alone can exhaust it (argc 0 still reserves one pointer).
    let mut p3 = params(&[], &[]);
    p3.arg_limit = 8;
    assert!(matches!(build_initial_stack(&p3), Err(ElfError::ArgsTooBig { .. })));

    // More than 2 MiB fails under the default limit.
    let big = vec![b'b'; 100_000];
    let argv: Vec<&[u8]> = (0..25).map(|_| big.as_slice()).collect();
    let e = build_initial_stack(&params(&argv, &[])).unwrap_err();
    assert!(matches!(e, ElfError::ArgsTooBig { .. }));
}

#[test]
fn single_string_limit() {
    let ok = vec![b'o'; (MAX_ARG_STRLEN - 1) as usize];
    let argv: [&[u8]; 1] = [&ok];
    assert!(build_initial_stack(&params(&argv, &[])).is_ok());
    let long = vec![b'o'; MAX_ARG_STRLEN as usize];
    let envp: [&[u8]; 2] = [b"A=1", &long];
    let e = build_initial_stack(&params(&[b"p"], &envp)).unwrap_err();
    assert_eq!(
        e,
        ElfError::StringTooLong { kind: StringKind::Envp, index: 1, len: MAX_ARG_STRLEN }
    );
    assert_eq!(e.errno(), E2BIG);
}

#[test]
fn bad_inputs() {
    let e = build_initial_stack(&params(&[b"a", b"b\0c"], &[])).unwrap_err();
    assert_eq!(e, ElfError::StringHasNul { kind: StringKind::Argv, index: 1 });
    assert_eq!(e.errno(), EINVAL);
    let mut p = params(&[b"a"], &[]);
    p.execfn = b"x\0";
    assert!(matches!(
        build_initial_stack(&p),
        Err(ElfError::StringHasNul { kind: StringKind::Execfn, .. })
    ));

    let mut p = params(&[b"a"], &[]);
    p.stack_top = TOP + 8;
    let e = build_initial_stack(&p).unwrap_err();
    assert_eq!(e, ElfError::StackTopMisaligned { stack_top: TOP + 8 });
    assert_eq!(e.errno(), EINVAL);

    for top in [0u64, 16, 256] {
        p.stack_top = top;
        let e = build_initial_stack(&p).unwrap_err();
        assert!(matches!(e, ElfError::StackTooLow { .. }), "{e:?}");
        assert_eq!(e.errno(), ENOMEM);
    }
    p.stack_top = TOP;
    p.align_pad = u64::MAX;
    assert!(matches!(build_initial_stack(&p), Err(ElfError::StackTooLow { .. })));
}

#[test]
fn low_but_sufficient_stack_top() {
    // The smallest workable top must not panic or wrap.
    let mut p = params(&[b"a"], &[]);
    let mut ok = 0;
    for top in (0..2048u64).step_by(16) {
        p.stack_top = top;
        if let Ok(st) = build_initial_stack(&p) {
            check(&p, &st);
            ok += 1;
        }
    }
    assert!(ok > 0);
}

/// Runs a static C program that dumps `[sp, stack_top)` of its own initial stack, rebuilds
/// that stack with `build_initial_stack` from the values found in it, and compares bytes.
#[test]
fn matches_the_running_kernel_byte_for_byte() {
    let scratch = Scratch::new("kernel-stack");
    let dir = &scratch.0;
    let src = dir.join("dump.c");
    std::fs::write(
        &src,
        r#"
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
int main(int argc, char **argv, char **envp) {
    (void)argc;
    uintptr_t sp = (uintptr_t)argv - 8;
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    uintptr_t top = (uintptr_t)execfn + strlen(execfn) + 1 + 8;
    printf("%lx %lx\n", (unsigned long)sp, (unsigned long)top);
    for (uintptr_t p = sp; p < top; p++) printf("%02x", *(unsigned char *)p);
    printf("\n");
    (void)envp;
    return 0;
}
"#,
    )
    .unwrap();
    let exe = dir.join("dump");
    if !common::gcc(&["-static", "-O1"], &exe, &src) {
        return;
    }
    let out = std::process::Command::new(&exe)
        .env_clear()
        .env("A", "1")
        .env("LONGER_NAME", "some value with spaces")
        .env("E", "")
        .args(["first", "", "w\u{f6}rld", "4"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let mut hdr = lines.next().unwrap().split(' ');
    let sp = u64::from_str_radix(hdr.next().unwrap(), 16).unwrap();
    let top = u64::from_str_radix(hdr.next().unwrap(), 16).unwrap();
    let hex = lines.next().unwrap();
    let image: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(image.len() as u64, top - sp);
    assert_eq!(top % 4096, 0, "execfn + 8 bytes end at the page-aligned stack top");

    let parsed = parse_initial_stack(&image).unwrap();
    let cstr = |a| read_cstr(&image, sp, a).unwrap();
    let argv: Vec<&[u8]> = parsed.argv.iter().map(|&a| cstr(a)).collect();
    let envp: Vec<&[u8]> = parsed.envp.iter().map(|&a| cstr(a)).collect();
    assert_eq!(argv[1..], [&b"first"[..], b"", "w\u{f6}rld".as_bytes(), b"4"]);
    let get = |k| parsed.auxv_get(k);
    let execfn = cstr(get(AT_EXECFN).unwrap());
    let r = (get(AT_RANDOM).unwrap() - sp) as usize;
    let platform = get(AT_PLATFORM).unwrap();
    for (k, _) in &parsed.auxv {
        assert!(
            KERNEL_AUXV_ORDER.contains(k),
            "kernel emits auxv key {k} this crate does not know"
        );
    }
    let v = |k| get(k).unwrap();
    let p = StackParams {
        stack_top: top,
        argv: &argv,
        envp: &envp,
        execfn,
        random: image[r..r + 16].try_into().unwrap(),
        auxv: AuxvParams {
            phdr: v(AT_PHDR),
            phent: v(AT_PHENT),
            phnum: v(AT_PHNUM),
            pagesz: v(AT_PAGESZ),
            base: v(AT_BASE),
            flags: v(AT_FLAGS),
            entry: v(AT_ENTRY),
            uid: v(AT_UID),
            euid: v(AT_EUID),
            gid: v(AT_GID),
            egid: v(AT_EGID),
            secure: v(AT_SECURE) != 0,
            hwcap: v(AT_HWCAP),
            hwcap2: v(AT_HWCAP2),
            clktck: v(AT_CLKTCK),
            minsigstksz: v(AT_MINSIGSTKSZ),
            sysinfo_ehdr: get(AT_SYSINFO_EHDR),
            rseq: get(AT_RSEQ_FEATURE_SIZE).zip(get(AT_RSEQ_ALIGN)),
        },
        arg_limit: DEFAULT_ARG_LIMIT,
        // Recover the kernel's random arch_align_stack offset.
        align_pad: parsed.argv[0] - (platform + 7),
    };
    let st = build_initial_stack(&p).unwrap();
    assert_eq!(st.sp, sp);
    assert_eq!(st.platform_addr, platform);
    assert_eq!(st.auxv, parsed.auxv);
    assert!(st.image == image, "stack image differs from the kernel's");
    check(&p, &st);
}
