//! `sandbox run [OPTIONS] [--] PROGRAM [ARGS...]`: runs an unmodified Linux x86-64 program in
//! guest ring 3 of a process-level KVM VM under the supervisor's policy.
//!
//! `no_main`: Rust's usual start-up sets SIGPIPE to `SIG_IGN` before `main`, which would hide
//! whether the sandbox's own parent left SIGPIPE ignored; the program must inherit exactly the
//! dispositions the sandbox was started with, as it would across `execve`.
//! (The test harness keeps its own `main`: the binary has no unit tests, but `cargo test`
//! still builds and lists them.)
#![cfg_attr(not(test), no_main)]

/// The C entry point (glibc also hands `argc`/`argv` to Rust's `std::env::args`).
#[cfg(not(test))]
#[unsafe(no_mangle)]
pub extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    sandbox::cli::main()
}
