//! Escape attempts: static C programs (tests/c/escape_*.c) that try to reach the runtime from
//! inside the sandbox. These are not differential: the sandbox must produce a given outcome
//! (death by a signal with a report, EFAULT, a failed call), which differs from what the same
//! program does natively. So a sandbox that just ran the program natively fails them.
//!
//! Every test also runs the program natively first and checks the native outcome, which shows
//! the program does what it claims (e.g. natively the runtime-address finder finds nothing
//! foreign and says so; the own-memory controls work). With `SANDBOX_TEST_SELFCHECK=1` only
//! those native checks run.
//!
//! How the programs find the runtime's memory: the sandbox is one process, and the harness
//! gives the program that process's real memory map, read from outside (`Cmd::host_maps`; the
//! program's own /proc/self/maps shows only its own mappings, see the procfs tests below). It
//! lists the runtime's mappings (its executable, [heap], [stack]) next to the program's own
//! (guest virtual addresses equal the process's). tests/c/escape.h classifies each named
//! mapping as the program's own or foreign.
#[macro_use]
mod common;

use common::{Cmd, Link, Mode, Output, build_c, run_native, run_sandboxed};
use std::time::Duration;

const SIGSEGV: i32 = libc::SIGSEGV;
const SIGILL: i32 = libc::SIGILL;
const SIGFPE: i32 = libc::SIGFPE;
const SIGTRAP: i32 = libc::SIGTRAP;

/// Errors accepted for mmap(MAP_FIXED)/mremap(MREMAP_FIXED) onto the runtime.
const MMAP_ERRORS: [&str; 2] = ["ENOMEM", "EINVAL"];
/// Errors accepted for mprotect of memory the program does not own.
const MPROTECT_ERRORS: [&str; 3] = ["ENOMEM", "EINVAL", "EACCES"];

fn prog(name: &str) -> std::path::PathBuf {
    build_c(name, Link::Static)
}

/// The sandboxed run, or None in selfcheck mode (the sandbox-only assertions are skipped).
fn sandboxed(cmd: &Cmd) -> Option<(Output, common::WorkDir)> {
    if common::selfcheck() {
        eprintln!("SANDBOX_TEST_SELFCHECK=1: skipping the sandboxed run of {}", cmd.describe());
        return None;
    }
    Some(run_sandboxed(cmd))
}

/// Natively there is no runtime: the finder reports "no foreign mapping" and exits 2.
fn assert_native_finds_nothing(out: &Output) {
    assert_eq!(out.mode, Mode::Native);
    assert_eq!(
        out.code(),
        Some(2),
        "natively the program should find no foreign mapping\n{}",
        out.report()
    );
    assert!(out.stdout_str().contains("no foreign mapping"), "{}", out.report());
}

/// The sandboxed run found a foreign mapping (else the test cannot do its job: say why).
fn assert_found_runtime(out: &Output) {
    assert!(
        !out.stdout_str().contains("no foreign mapping"),
        "the program found no runtime mapping in the sandbox's memory map, so this \
         escape test cannot run; the maps it saw (own/foreign) are on stderr\n{}",
        out.report()
    );
}

fn parse_hex_after(line: &str, marker: &str) -> u64 {
    let rest = line.split(marker).nth(1).unwrap_or_else(|| panic!("no {marker:?} in {line:?}"));
    let hex = rest.trim_start().trim_start_matches("0x");
    let end = hex.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(hex.len());
    u64::from_str_radix(&hex[..end], 16).unwrap_or_else(|e| panic!("bad hex in {line:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// a. Reading and writing the runtime's memory directly: SIGSEGV with a report.
// ---------------------------------------------------------------------------------------------

fn deref(op: &str, kind: &str) {
    let cmd = Cmd::new(prog("escape_deref")).host_maps().args([op, kind]);
    let (native, _nd) = run_native(&cmd);
    assert_native_finds_nothing(&native);
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    assert_found_runtime(&out);
    let stdout = out.stdout_str();
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with(&format!("trying {op} 0x")), "{}", out.report());
    assert!(
        !stdout.contains(&format!("{op} ok")),
        "the program {op} the runtime's memory\n{}",
        out.report()
    );
    let addr = parse_hex_after(first, &format!("trying {op} "));
    common::assert_signal_report(&out, SIGSEGV, &[addr]);
}

macro_rules! deref_test {
    ($name:ident, $op:literal, $kind:literal) => {
        #[test]
        fn $name() {
            gated!($name);
            deref($op, $kind);
        }
    };
}

deref_test!(read_runtime_text, "read", "first");
deref_test!(read_runtime_heap, "read", "heap");
deref_test!(read_runtime_stack, "read", "stack");
deref_test!(write_runtime_text, "write", "first");
deref_test!(write_runtime_heap, "write", "heap");
deref_test!(write_runtime_stack, "write", "stack");
// The runtime's anonymous memory: guest page tables and its other allocations.
deref_test!(read_runtime_anon, "read", "anon");
deref_test!(write_runtime_anon, "write", "anon");

/// The control: the same code dereferencing the program's own memory works both ways.
#[test]
fn deref_own_memory_works() {
    gated!(deref_own_memory_works);
    for op in ["read", "write"] {
        let c = common::assert_same(
            &format!("deref-own-{op}"),
            &Cmd::new(prog("escape_deref")).host_maps().args([op, "own"]),
        );
        c.last().native.assert_success();
        assert!(c.last().native.stdout_str().contains(&format!("{op} ok")));
    }
}

// ---------------------------------------------------------------------------------------------
// b. Runtime pointers passed to system calls: EFAULT.
// ---------------------------------------------------------------------------------------------

/// The call lines ("<call>: <result>") of escape_syscall_ptr's output.
fn call_lines(out: &Output) -> Vec<(String, String)> {
    out.stdout_str()
        .lines()
        .filter(|l| l.contains("): "))
        .map(|l| {
            let (a, b) = l.split_once("): ").expect("checked");
            (format!("{a})"), b.to_owned())
        })
        .collect()
}

#[test]
fn syscall_pointers_into_runtime_fault() {
    gated!(syscall_pointers_into_runtime_fault);
    let own = Cmd::new(prog("escape_syscall_ptr")).host_maps().arg("own");
    let (native_own, _d1) = run_native(&own);
    native_own.assert_success().assert_last_line("alive");
    let calls: Vec<String> = call_lines(&native_own).into_iter().map(|(c, _)| c).collect();
    assert!(calls.len() >= 20, "{}", native_own.report());
    let cmd = Cmd::new(prog("escape_syscall_ptr")).host_maps().arg("runtime");
    let (native, _d2) = run_native(&cmd);
    assert_native_finds_nothing(&native);
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    assert_found_runtime(&out);
    assert!(!out.stderr_str().contains("panicked"), "{}", out.report());
    out.assert_success().assert_last_line("alive");
    let got = call_lines(&out);
    let names: Vec<&String> = got.iter().map(|(c, _)| c).collect();
    assert_eq!(
        names,
        calls.iter().collect::<Vec<_>>(),
        "the same calls as the own run\n{}",
        out.report()
    );
    let bad: Vec<String> =
        got.iter().filter(|(_, r)| r != "-1 EFAULT").map(|(c, r)| format!("{c}: {r}")).collect();
    assert!(
        bad.is_empty(),
        "these calls did not fail with EFAULT:\n{}\n\n{}",
        bad.join("\n"),
        out.report()
    );
}

/// The control: the same calls on the program's own buffers behave the same both ways.
#[test]
fn syscall_pointers_own_control() {
    gated!(syscall_pointers_own_control);
    let c = common::assert_same(
        "syscall-ptr-own",
        &Cmd::new(prog("escape_syscall_ptr")).host_maps().arg("own"),
    );
    let n = &c.last().native;
    n.assert_success();
    assert!(!n.stdout_str().contains("EFAULT"), "{}", n.report());
}

// ---------------------------------------------------------------------------------------------
// c. mmap(MAP_FIXED) / mremap(MREMAP_FIXED) onto the runtime: fail; the runtime survives.
// ---------------------------------------------------------------------------------------------

#[test]
fn mmap_fixed_onto_runtime_fails() {
    gated!(mmap_fixed_onto_runtime_fails);
    let cmd = Cmd::new(prog("escape_mmap")).host_maps().arg("runtime");
    let (native, _nd) = run_native(&cmd);
    assert_native_finds_nothing(&native);
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    assert_found_runtime(&out);
    out.assert_success().assert_last_line("alive");
    let stdout = out.stdout_str();
    let attempts: Vec<&str> =
        stdout.lines().filter(|l| l.starts_with("mmap ") || l.starts_with("mremap ")).collect();
    assert!(attempts.len() >= 3, "at least one runtime target\n{}", out.report());
    for l in attempts {
        let ok = l.split_once(": failed ").is_some_and(|(_, e)| MMAP_ERRORS.contains(&e));
        assert!(ok, "expected failure with one of {MMAP_ERRORS:?}: {l:?}\n{}", out.report());
    }
}

#[test]
fn mmap_own_control() {
    gated!(mmap_own_control);
    let c = common::assert_same("mmap-own", &Cmd::new(prog("escape_mmap")).host_maps().arg("own"));
    let out = c.last().native.stdout_str();
    assert!(
        out.contains("mmap MAP_FIXED own: ok") && out.contains("mremap MREMAP_FIXED own: ok"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// d. mprotect of memory the program does not own (trampoline, page tables, runtime): fails.
// ---------------------------------------------------------------------------------------------

fn check_mprotect(out: &Output, min_attempts: usize) {
    out.assert_success().assert_last_line("alive");
    let stdout = out.stdout_str();
    let mut n = 0;
    for l in stdout.lines().filter(|l| l.starts_with("mprotect ")) {
        let (_, result) = l.rsplit_once(": ").expect("mprotect line has a result");
        if result == "skip (mapped)" {
            continue;
        }
        n += 1;
        let ok = result.strip_prefix("failed ").is_some_and(|e| MPROTECT_ERRORS.contains(&e));
        assert!(ok, "expected failure with one of {MPROTECT_ERRORS:?}: {l:?}\n{}", out.report());
    }
    assert!(n >= min_attempts, "only {n} mprotect attempts\n{}", out.report());
}

#[test]
fn mprotect_outside_own_memory_fails() {
    gated!(mprotect_outside_own_memory_fails);
    let cmd = Cmd::new(prog("escape_mprotect")).host_maps();
    let (native, _nd) = run_native(&cmd);
    check_mprotect(&native, 12);
    assert!(native.stdout_str().contains("runtime exe: no foreign mapping"), "{}", native.report());
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    assert!(!out.stderr_str().contains("panicked"), "{}", out.report());
    check_mprotect(&out, 12);
    assert!(
        out.stdout_str().lines().any(|l| l.starts_with("mprotect runtime ")),
        "no runtime mapping was tried (none found in /proc/self/maps)\n{}",
        out.report()
    );
}

// ---------------------------------------------------------------------------------------------
// e. Privileged and trapping instructions: the right signal, with a report; never a hang.
// ---------------------------------------------------------------------------------------------

/// Runs `escape_insn NAME` natively and sandboxed. Natively Linux gives `native_sig` (None: may
/// also return, e.g. vmcall under a hypervisor); sandboxed one of `sandbox_sigs`, or a normal
/// return when `may_return`; the report must name the signal and, where `check_rip`, the
/// instruction's address.
fn insn(
    name: &str,
    native_sig: Option<i32>,
    sandbox_sigs: &[i32],
    may_return: bool,
    check_rip: bool,
) {
    let cmd = Cmd::new(prog("escape_insn")).arg(name).timeout(Duration::from_secs(20));
    let (native, _nd) = run_native(&cmd);
    assert!(
        native.stdout_str().starts_with(&format!("executing {name} at 0x")),
        "{}",
        native.report()
    );
    if let Some(sig) = native_sig {
        assert_eq!(native.signal(), Some(sig), "native {name}\n{}", native.report());
    }
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    let stdout = out.stdout_str();
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with(&format!("executing {name} at 0x")), "{}", out.report());
    let rip = parse_hex_after(first, " at ");
    if may_return && out.code() == Some(0) {
        assert!(stdout.contains(&format!("{name} returned")), "{}", out.report());
        return;
    }
    let sig = out.signal().unwrap_or_else(|| {
        panic!(
            "expected death by one of {sandbox_sigs:?}, got {}\n{}",
            out.status_text(),
            out.report()
        )
    });
    assert!(sandbox_sigs.contains(&sig), "{name}: got {}\n{}", out.status_text(), out.report());
    assert!(!stdout.contains("returned"), "{}", out.report());
    let rips = [rip];
    common::assert_signal_report(&out, sig, if check_rip { &rips } else { &[] });
}

macro_rules! privileged {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                gated!($name);
                // #GP in ring 3: Linux sends SIGSEGV.
                insn(&stringify!($name)[5..], Some(SIGSEGV), &[SIGSEGV], false, true);
            }
        )*
    };
}

privileged!(
    insn_hlt,
    insn_cli,
    insn_sti,
    insn_out,
    insn_in,
    insn_lgdt,
    insn_lidt,
    insn_ltr,
    insn_mov_cr3,
    insn_mov_cr0,
    insn_read_cr3,
    insn_mov_dr7,
    insn_wrmsr,
    insn_rdmsr,
    insn_invlpg,
    insn_wbinvd,
    insn_swapgs,
    insn_sysret,
    insn_clts,
    // `int $n` through a gate with DPL 0 (page fault, #GP, a timer and an unused vector):
    // #GP, not a way into the guest kernel's handlers.
    insn_int_0e,
    insn_int_0d,
    insn_int_20,
    insn_int_81,
);

/// vmcall: #UD on bare metal (SIGILL). Under KVM on VT-x, KVM answers a CPL-3 vmcall itself
/// (an error in rax) and the guest continues; either is fine, a hang is not (20 s limit).
/// Natively, under a hypervisor, it may return too.
#[test]
fn insn_vmcall() {
    gated!(insn_vmcall);
    insn("vmcall", None, &[SIGILL], true, true);
}

#[test]
fn insn_ud2() {
    gated!(insn_ud2);
    insn("ud2", Some(SIGILL), &[SIGILL], false, true);
}

#[test]
fn insn_div0() {
    gated!(insn_div0);
    insn("div0", Some(SIGFPE), &[SIGFPE], false, true);
}

/// int3 is a trap: the reported rip may be the instruction's or the next one's, so it is not
/// checked.
#[test]
fn insn_int3() {
    gated!(insn_int3);
    insn("int3", Some(SIGTRAP), &[SIGTRAP], false, false);
}

/// `--quiet` suppresses the report; the signal stays.
#[test]
fn quiet_suppresses_report() {
    gated!(quiet_suppresses_report);
    let cmd = Cmd::new(prog("escape_insn")).arg("hlt").sandbox_opt("--quiet");
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    assert_eq!(out.signal(), Some(SIGSEGV), "{}", out.report());
    assert!(!out.stderr_str().contains("SIGSEGV"), "--quiet still reported\n{}", out.report());
    let cmd = Cmd::new(prog("escape_insn")).arg("hlt").sandbox_opt("-q");
    let (out, _sd) = run_sandboxed(&cmd);
    assert_eq!(out.signal(), Some(SIGSEGV), "{}", out.report());
    assert!(!out.stderr_str().contains("SIGSEGV"), "-q still reported\n{}", out.report());
}

// ---------------------------------------------------------------------------------------------
// f. System-call numbers that do not exist: -ENOSYS.
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_syscall_numbers_enosys() {
    gated!(unknown_syscall_numbers_enosys);
    let cmd = Cmd::new(prog("escape_nosys"));
    // Natively the result depends on the kernel (x32 support; some kernels define extra
    // numbers: one here answers 335 with SIGILL), so the native run is only logged.
    let (native, _nd) = run_native(&cmd);
    eprintln!("native (for information):\n{}", native.report());
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    out.assert_success().assert_last_line("alive");
    let lines: Vec<String> =
        out.stdout_str().lines().filter(|l| l.starts_with("nr ")).map(str::to_owned).collect();
    assert_eq!(lines.len(), 6, "{}", out.report());
    for l in &lines {
        assert!(l.ends_with(": -38 ENOSYS"), "expected -ENOSYS: {l:?}\n{}", out.report());
    }
}

// ---------------------------------------------------------------------------------------------
// g. /proc/self/mem: no way to the runtime's memory.
// ---------------------------------------------------------------------------------------------

#[test]
fn proc_self_mem_cannot_reach_runtime() {
    gated!(proc_self_mem_cannot_reach_runtime);
    let own = Cmd::new(prog("escape_procmem")).host_maps().arg("own");
    let (native_own, _d1) = run_native(&own);
    native_own.assert_success().assert_last_line("alive");
    assert!(
        native_own.stdout_str().contains("/proc/self/mem: pwrite ok"),
        "{}",
        native_own.report()
    );
    let cmd = Cmd::new(prog("escape_procmem")).host_maps().arg("runtime");
    let (native, _d2) = run_native(&cmd);
    assert_native_finds_nothing(&native);
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    assert_found_runtime(&out);
    out.assert_success().assert_last_line("alive");
    let stdout = out.stdout_str();
    for path in ["/proc/self/mem", "/proc/thread-self/mem", "/proc/<pid>/mem"] {
        assert!(
            stdout.contains(&format!("{path}: open ")),
            "no result for {path}\n{}",
            out.report()
        );
    }
    let leaks: Vec<&str> = stdout.lines().filter(|l| l.ends_with(" ok")).collect();
    assert!(
        leaks.is_empty(),
        "the runtime's memory was reachable:\n{}\n\n{}",
        leaks.join("\n"),
        out.report()
    );
}

/// The control in the sandbox: whatever the sandbox allows for /proc/self/mem, the program
/// keeps running and its own memory stays intact.
#[test]
fn proc_self_mem_own_control() {
    gated!(proc_self_mem_own_control);
    let cmd = Cmd::new(prog("escape_procmem")).host_maps().arg("own");
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    out.assert_success().assert_last_line("alive");
    assert!(out.stdout_str().contains("own bytes intact: 1"), "{}", out.report());
}

// ---------------------------------------------------------------------------------------------
// h. Attacks through the kernel's view of arguments (tests/c/escape_kernel.c).
// ---------------------------------------------------------------------------------------------

/// Runs `escape_kernel CASE` natively and sandboxed; both must end with "alive".
fn kernel_case(case: &str) -> Option<(Output, Output)> {
    let cmd = Cmd::new(prog("escape_kernel")).host_maps().arg(case);
    let (native, _nd) = run_native(&cmd);
    native.assert_success().assert_last_line("alive");
    let (out, _sd) = sandboxed(&cmd)?;
    out.assert_success().assert_last_line("alive");
    Some((native, out))
}

/// The result lines of `out` with those starting with any of `differ` replaced by `expect`.
fn lines_except(out: &Output, differ: &[&str]) -> Vec<String> {
    out.stdout_str()
        .lines()
        .filter(|l| !differ.iter().any(|d| l.starts_with(d)))
        .map(str::to_owned)
        .collect()
}

/// Another thread keeps reading through the descriptor number the next open() will take while
/// the main thread opens /proc/self/mem: no descriptor to it may exist even for a moment.
#[test]
fn proc_self_mem_open_has_no_window() {
    gated!(proc_self_mem_open_has_no_window);
    let cmd = Cmd::new(prog("escape_kernel")).host_maps().arg("memrace");
    let (native, _nd) = run_native(&cmd);
    assert_native_finds_nothing(&native);
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    assert_found_runtime(&out);
    out.assert_success().assert_last_line("alive");
    let s = out.stdout_str();
    assert!(s.contains("opens refused 2000 of 2000"), "{}", out.report());
    assert!(s.contains("leaks 0\n"), "the runtime's memory was read:\n{}", out.report());
}

/// Socket options whose values are pointers or kernel objects (TCP_ZEROCOPY_RECEIVE maps
/// pages, SO_ATTACH_FILTER loads a program) are refused; plain ones behave as natively.
#[test]
fn socket_options_with_pointers_refused() {
    gated!(socket_options_with_pointers_refused);
    let Some((native, out)) = kernel_case("sockopt") else { return };
    let s = out.stdout_str();
    for opt in ["getsockopt TCP_ZEROCOPY_RECEIVE", "setsockopt SO_ATTACH_FILTER"] {
        assert!(s.contains(&format!("{opt}: ENOPROTOOPT\n")), "{opt}\n{}", out.report());
    }
    let differ = ["getsockopt TCP_ZEROCOPY_RECEIVE", "setsockopt SO_ATTACH_FILTER"];
    assert_eq!(lines_except(&out, &differ), lines_except(&native, &differ), "{}", out.report());
}

/// SCM_RIGHTS cannot pass one of the runtime's descriptors; passing the program's own works.
#[test]
fn scm_rights_cannot_pass_runtime_descriptors() {
    gated!(scm_rights_cannot_pass_runtime_descriptors);
    let Some((native, out)) = kernel_case("scmrights") else { return };
    let s = out.stdout_str();
    assert!(s.contains("send foreign: EBADF\n"), "{}", out.report());
    assert!(s.contains("send foreign all EBADF: 1\n"), "{}", out.report());
    assert!(s.contains("through copy: 1\n"), "{}", out.report());
    assert!(native.stdout_str().contains("through copy: 1\n"), "{}", native.report());
}

/// close_range may not unshare the descriptor table (the supervisor's threads share it);
/// CLOEXEC marking and Linux's own errors are as natively.
#[test]
fn close_range_unshare_refused() {
    gated!(close_range_unshare_refused);
    let Some((native, out)) = kernel_case("closerange") else { return };
    assert!(out.stdout_str().contains("close_range UNSHARE: EINVAL\n"), "{}", out.report());
    let differ = ["close_range UNSHARE"];
    assert_eq!(lines_except(&out, &differ), lines_except(&native, &differ), "{}", out.report());
}

/// setrlimit/getrlimit(RLIMIT_AS) act on the program's view, as natively, and do not strangle
/// the supervisor: a big mapping and a thread still work afterwards.
#[test]
fn rlimit_as_through_setrlimit_is_the_programs_view() {
    gated!(rlimit_as_through_setrlimit_is_the_programs_view);
    let Some((native, out)) = kernel_case("rlimit") else { return };
    assert_eq!(out.stdout_str(), native.stdout_str(), "{}", out.report());
}

/// Value-result address lengths (copied once by the supervisor) give the kernel's truncation
/// and reported lengths, as natively.
#[test]
fn socket_address_lengths_as_linux() {
    gated!(socket_address_lengths_as_linux);
    let Some((native, out)) = kernel_case("addrlen") else { return };
    assert_eq!(out.stdout_str(), native.stdout_str(), "{}", out.report());
}

/// The runtime's own signal numbers cannot come back to this process by a side route (they
/// would be taken for the runtime's kicks), and a forged kernel-style SIGSEGV reaches the
/// program's handler like a real one, leaving the supervisor's own fault handling intact.
#[test]
fn runtime_signals_and_forged_faults() {
    gated!(runtime_signals_and_forged_faults);
    let Some((native, out)) = kernel_case("sigroutes") else { return };
    // F_SETSIG and PR_SET_PDEATHSIG with these numbers work as natively (the signals come from
    // the kernel or another process: the program's; tests/processes.rs, runtime_signal_routes).
    let refused = ["kill(0, SIGRTMAX-1)", "timer_create SIGRTMAX-1"];
    let s = out.stdout_str();
    for r in refused {
        assert!(s.contains(&format!("{r}: EINVAL\n")), "{r}\n{}", out.report());
    }
    assert_eq!(lines_except(&out, &refused), lines_except(&native, &refused), "{}", out.report());
}

// ---------------------------------------------------------------------------------------------
// i. execve's own descriptor (tests/c/escape_execfd.c).
// ---------------------------------------------------------------------------------------------

/// A thread replaces execve's file descriptor with a non-executable file while the call is in
/// progress: the new image is never that file (the old supervisor ran it in most rounds).
#[test]
fn execve_descriptor_swapped_by_another_thread() {
    gated!(execve_descriptor_swapped_by_another_thread);
    let cmd = Cmd::new(prog("escape_execfd"));
    let (native, _nd) = run_native(&cmd);
    native.assert_success().assert_last_line("rounds 20, the non-executable file ran 0 times");
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    out.assert_success().assert_last_line("rounds 20, the non-executable file ran 0 times");
}

/// sgdt, sidt, smsw, str and sldt in ring 3 end as Linux ends them with UMIP: its fixed values
/// (memory and registers of each size), SIGSEGV at the address when the result cannot be
/// stored. The runtime's own GDT and IDT addresses never reach the program. Where the host CPU
/// lacks UMIP, Linux itself shows the real tables, and only the sandbox's side is checked.
#[test]
fn umip_instructions_as_linux() {
    gated!(umip_instructions_as_linux);
    let bin = build_c("insn_umip", Link::Static);
    let cmd = Cmd::new(&bin);
    let (native, _d) = run_native(&cmd);
    let out = native.stdout_str();
    assert!(out.contains("done"), "{}", native.report());
    if out.contains("Linux's dummy values: 1") {
        common::assert_same("insn_umip", &cmd);
    } else {
        eprintln!("this CPU has no UMIP: Linux shows its real tables; checking the sandbox only");
    }
    // UMIP needs the host's KVM to offer it (KVM_GET_SUPPORTED_CPUID leaf 7 ECX bit 2): kvm_pvm
    // on a CPU without UMIP does not, and then guest ring 3 runs these instructions natively.
    let kvm_umip = dune::KvmHost::open()
        .ok()
        .and_then(|h| h.cpuid(7, 0))
        .is_some_and(|l7| l7.ecx & (1 << 2) != 0);
    if let Some((s, _d)) = sandboxed(&cmd) {
        let text = s.stdout_str();
        if kvm_umip {
            assert!(text.contains("Linux's dummy values: 1"), "{}", s.report());
            assert!(
                text.contains("sgdt to an unmapped page: si_code 1 at the page 1"),
                "{}",
                s.report()
            );
        } else {
            // What reaches the program is then the guest's own descriptor-table addresses: the
            // runtime's fixed layout in the guest's upper half, never a host address of the
            // supervisor (those are all below 2^47).
            eprintln!("the host's KVM offers no UMIP: checking what sgdt/sidt reveal instead");
            assert!(text.contains("done"), "{}", s.report());
            let tables: Vec<&str> =
                text.lines().filter(|l| l.starts_with("sgdt:") || l.starts_with("sidt:")).collect();
            assert_eq!(tables.len(), 2, "{}", s.report());
            for line in tables {
                let base = line.rsplit("base 0x").next().unwrap_or_default();
                let base = u64::from_str_radix(base.trim(), 16).unwrap_or(0);
                assert!(base >= 0xffff_8000_0000_0000, "{line}: {}", s.report());
            }
        }
    }
}

/// `int $0x80` (the 32-bit system-call gate) ends as on a kernel without IA32 emulation: SIGSEGV
/// with si_code SI_KERNEL; a 32-bit call never runs (natively, with IA32 emulation, it may).
#[test]
fn int80_is_a_gp_fault() {
    gated!(int80_is_a_gp_fault);
    let bin = build_c("insn_int80", Link::Static);
    if let Some((s, _d)) = sandboxed(&Cmd::new(&bin)) {
        let text = s.stdout_str();
        assert!(text.contains("int $0x80: SIGSEGV, si_code 128"), "{}", s.report());
    }
}

// ---------------------------------------------------------------------------------------------
// j. The runtime's descriptors by name, and /proc/self as the program's (tests/c/escape_fdname.c,
//    tests/c/escape_procfs.c). Each case runs the static and the dynamic build, as root and as
//    a user (the program drops to uid 65534 first when the test runs as root).
// ---------------------------------------------------------------------------------------------

/// Defines the module `$name` with the tests `static_root`, `static_user`, `dynamic_root` and
/// `dynamic_user`, each running the body with `$link` and `$user` set.
macro_rules! procfs_tests {
    ($name:ident, |$link:ident, $user:ident| $body:block) => {
        mod $name {
            use super::*;

            fn run($link: Link, $user: bool) $body

            #[test]
            fn static_root() {
                gated!(static_root);
                run(Link::Static, false);
            }

            #[test]
            fn static_user() {
                gated!(static_user);
                run(Link::Static, true);
            }

            #[test]
            fn dynamic_root() {
                gated!(dynamic_root);
                run(Link::Dynamic, false);
            }

            #[test]
            fn dynamic_user() {
                gated!(dynamic_user);
                run(Link::Dynamic, true);
            }
        }
    };
}

/// The program's arguments, with "user" last for the user variant.
fn with_user(args: &[&str], user: bool) -> Vec<String> {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if user {
        v.push("user".into());
    }
    v
}

/// The lines of `out` that report a result for what the program reached for ("<what>: r").
fn result_lines(out: &Output) -> Vec<(String, String)> {
    out.stdout_str()
        .lines()
        .filter_map(|l| l.rsplit_once(": ").map(|(a, b)| (a.to_owned(), b.to_owned())))
        .collect()
}

// The trace file (the runtime's) by every name: /proc/self/fd/N, /dev/fd/N,
// /proc/thread-self/fd/N, /proc/PID/fd/N, /proc/PID/task/TID/fd/N, openat and openat2 on a
// /proc/self/fd directory, a symlink to /proc/self/fd/N (for every number of the window: the
// runtime's descriptors and its placeholders; also chmod and chown through it), its own path,
// a hard link, a
// symlink; read, write, append, O_TRUNC, O_PATH, truncate(2). Nothing opens, nothing is
// written or truncated: the trace is whole at the end. /dev/kvm is refused too.
procfs_tests!(runtime_descriptors_by_name, |link, user| {
    let bin = build_c("escape_fdname", link);
    let scratch = common::WorkDir::new("fdname-trace");
    let trace = scratch.join("trace.log");
    std::fs::write(&trace, "a stand-in for the trace file\n").unwrap();
    common::chmod(scratch.path(), "trace.log", 0o666);
    let t = trace.to_str().unwrap();
    let cmd = Cmd::new(&bin).args(with_user(&["names", t], user));
    let (native, _nd) = run_native(&cmd);
    native.assert_success().assert_last_line("done");
    let routes: Vec<String> = native
        .stdout_str()
        .lines()
        .filter(|l| l.starts_with("route "))
        .map(str::to_owned)
        .collect();
    assert_eq!(routes.len(), 8, "{}", native.report());
    for r in &routes {
        assert!(
            r.ends_with("opened 0 readlink 0 truncated 0"),
            "natively: {r}\n{}",
            native.report()
        );
    }
    assert!(native.stdout_str().contains("trace O_RDONLY: ok\n"), "{}", native.report());
    if common::selfcheck() {
        return;
    }
    std::fs::remove_file(&trace).unwrap();
    let cmd = cmd.sandbox_opt(format!("--trace={t}"));
    let (out, _sd) = run_sandboxed(&cmd);
    out.assert_success().assert_last_line("done");
    let s = out.stdout_str();
    let bad: Vec<String> = result_lines(&out)
        .into_iter()
        .filter(|(what, r)| {
            if what.starts_with("route ") {
                r != "opened 0 readlink 0 truncated 0"
            } else {
                what != "link" && what != "symlink" && r == "ok"
            }
        })
        .map(|(w, r)| format!("{w}: {r}"))
        .collect();
    assert!(bad.is_empty(), "reached the runtime:\n{}\n\n{}", bad.join("\n"), out.report());
    for l in ["trace O_RDONLY: EACCES", "trace O_RDWR: EACCES", "truncate trace: EACCES"] {
        assert!(s.contains(&format!("{l}\n")), "{l}\n{}", out.report());
    }
    assert!(s.contains("/dev/kvm O_RDWR: EACCES\n"), "{}", out.report());
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(
        text.starts_with("execve("),
        "the trace lost its start:\n{}",
        &text[..text.len().min(500)]
    );
    assert!(text.ends_with("+++ exited with 0 +++\n"), "the trace lost its end");
    assert!(!text.contains("PWNED"), "the program wrote into the trace");
});

/// Descriptors of a KVM vCPU and VM handed to the program at numbers of its own (here by the
/// harness, which made them for a VM of its own; in a real run, a copy taken while a new
/// vCPU's descriptor still had a program number): refused by what they are. Natively the
/// vCPU's kvm_run page maps and both can be sent.
fn inherited_kvm(link: Link, user: bool) {
    use std::os::unix::process::CommandExt;
    let bin = build_c("escape_fdname", link);
    // SAFETY: plain system calls on descriptors this test owns; the results are checked.
    let (vcpu, vm) = unsafe {
        let kvm = libc::open(c"/dev/kvm".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        assert!(kvm >= 0, "/dev/kvm: {}", std::io::Error::last_os_error());
        let vm = libc::ioctl(kvm, 0xae01, 0); // KVM_CREATE_VM
        assert!(vm >= 0, "KVM_CREATE_VM: {}", std::io::Error::last_os_error());
        let vcpu = libc::ioctl(vm, 0xae41, 0); // KVM_CREATE_VCPU
        assert!(vcpu >= 0, "KVM_CREATE_VCPU: {}", std::io::Error::last_os_error());
        libc::close(kvm);
        (vcpu, vm)
    };
    // Numbers of the program's, below any window (which starts at 64 or higher).
    const VCPU: i32 = 60;
    const VM: i32 = 61;
    let cmd = Cmd::new(&bin).args(with_user(&["inherited", "60", "61"], user));
    let run = |mode: Mode| -> String {
        let mut c = common::command_for(mode, &cmd);
        // SAFETY: dup2 only, in the child between fork and exec.
        unsafe {
            c.pre_exec(move || {
                if libc::dup2(vcpu, VCPU) < 0 || libc::dup2(vm, VM) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let o = c.stdin(std::process::Stdio::null()).output().expect("run escape_fdname");
        let s = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{mode:?}: {}\n{s}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        s
    };
    let native = run(Mode::Native);
    assert!(native.contains("mmap vcpu: ok\n"), "natively:\n{native}");
    assert!(native.contains("SCM_RIGHTS vcpu: ok\n"), "natively:\n{native}");
    if common::selfcheck() {
        return;
    }
    let out = run(Mode::Sandboxed);
    for l in [
        "mmap vcpu: EBADF",
        "mmap vcpu private: EBADF",
        "SCM_RIGHTS vcpu: EBADF",
        "SCM_RIGHTS vm: EBADF",
        "reopen vcpu O_PATH: EACCES",
        "reopen vm O_PATH: EACCES",
        "KVM_GET_REGS: ENOTTY",
        "KVM_CHECK_EXTENSION on the VM: ENOTTY",
    ] {
        assert!(out.contains(&format!("{l}\n")), "{l}\nsandboxed:\n{out}");
    }
    // SAFETY: closing this test's own descriptors.
    unsafe {
        libc::close(vcpu);
        libc::close(vm);
    }
}

procfs_tests!(kvm_descriptors_of_the_program_are_inert, |link, user| {
    inherited_kvm(link, user);
});

/// Another thread duplicates the lowest free number while threads (each a new vCPU) are made:
/// it catches nothing, since `dup` waits while the runtime has a new descriptor at a number of
/// the program's (fdwin's gate); and were it to catch one, that copy would be inert. (Without
/// the gate the window is a few microseconds and most runs caught none: the deterministic test
/// of inertness is the one above.)
#[test]
fn kvm_copies_taken_while_a_vcpu_is_made_are_inert() {
    gated!(kvm_copies_taken_while_a_vcpu_is_made_are_inert);
    let cmd = Cmd::new(prog("escape_fdname")).arg("kvmrace");
    let (native, _nd) = run_native(&cmd);
    native.assert_success().assert_last_line("done");
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    out.assert_success().assert_last_line("done");
    let s = out.stdout_str();
    eprintln!("{}", s.lines().find(|l| l.starts_with("kvm copies caught")).unwrap_or("?"));
    for l in
        ["threads started: 1", "kvm copies caught: 0", "mmap ok: 0", "scm ok: 0", "ioctl ok: 0"]
    {
        assert!(s.contains(&format!("{l}\n")), "{l}\n{}", out.report());
    }
}

// The program's own /proc entries show the program (maps, smaps, smaps_rollup, cmdline,
// environ, auxv, status, stat, statm, comm, fd/, fdinfo/, task/, exe, limits; through
// /proc/self, /proc/thread-self, /proc/PID, /proc/TID, /proc/self/task/TID): every check
// holds natively, and the sandbox must print the same.
procfs_tests!(proc_self_shows_the_program, |link, user| {
    let bin = build_c("escape_procfs", link);
    let sandbox = common::SANDBOX;
    let cmd = Cmd::new(&bin).args(with_user(&["own", sandbox], user));
    // The program makes files in its working directory, also as the user.
    let writable = |d: &std::path::Path| {
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap()
    };
    let name = format!("procfs-own-{}-{user}", link.suffix());
    let c = common::assert_same_steps(&name, writable, std::slice::from_ref(&cmd));
    let n = &c.last().native;
    n.assert_success().assert_last_line("done");
    let text = n.stdout_str();
    let failed: Vec<&str> = text.lines().filter(|l| l.ends_with(": 0")).collect();
    assert!(failed.is_empty(), "natively these checks fail: {failed:?}\n{}", n.report());
});

// Entries that would expose the supervisor's memory or state are refused through every route
// to the program's own process and thread.
procfs_tests!(proc_self_refuses_supervisor_state, |link, user| {
    let bin = build_c("escape_procfs", link);
    let cmd = Cmd::new(&bin).args(with_user(&["refused"], user));
    let (native, _nd) = run_native(&cmd);
    native.assert_success().assert_last_line("done");
    let ns = native.stdout_str();
    for l in ["/proc/self/pagemap: ok", "/proc/self/syscall: ok", "/proc/self/map_files: ok"] {
        assert!(ns.contains(&format!("{l}\n")), "natively {l}\n{}", native.report());
    }
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    out.assert_success().assert_last_line("done");
    let lines = result_lines(&out);
    assert!(lines.len() >= 40, "{}", out.report());
    let open: Vec<String> =
        lines.iter().filter(|(_, r)| r == "ok").map(|(w, r)| format!("{w}: {r}")).collect();
    assert!(open.is_empty(), "reachable:\n{}\n\n{}", open.join("\n"), out.report());
    for l in ["/proc/self/pagemap: EACCES", "/proc/PID/syscall: EACCES", "/proc/self/mem: EACCES"] {
        assert!(out.stdout_str().contains(&format!("{l}\n")), "{l}\n{}", out.report());
    }
});

// Another sandboxed process (a forked child: a supervisor of its own) shows nothing of its
// memory or layout, its descriptors or its addresses; its status and cmdline stay readable.
procfs_tests!(other_sandboxed_processes_hide_their_supervisor, |link, user| {
    let bin = build_c("escape_procfs", link);
    let cmd = Cmd::new(&bin).args(with_user(&["other"], user));
    let (native, _nd) = run_native(&cmd);
    native.assert_success().assert_last_line("done");
    let ns = native.stdout_str();
    for l in ["child/maps: ok", "child/environ: ok", "child stat addresses hidden: 0"] {
        assert!(ns.contains(&format!("{l}\n")), "natively {l}\n{}", native.report());
    }
    let Some((out, _sd)) = sandboxed(&cmd) else { return };
    out.assert_success().assert_last_line("done");
    let s = out.stdout_str();
    let open: Vec<String> = result_lines(&out)
        .into_iter()
        .filter(|(w, r)| w.starts_with("child/") && r != "EACCES")
        .map(|(w, r)| format!("{w}: {r}"))
        .collect();
    assert!(open.is_empty(), "not refused:\n{}\n\n{}", open.join("\n"), out.report());
    for l in [
        "child stat readable: 1",
        "child stat addresses hidden: 1",
        "child status readable: 1",
        "child cmdline readable: 1",
    ] {
        assert!(s.contains(&format!("{l}\n")), "{l}\n{}", out.report());
    }
});
