//! `sandbox run [OPTIONS] [--] PROGRAM [ARGS...]`: runs an unmodified Linux x86-64 program in
//! guest ring 3 of a process-level KVM VM under the supervisor's policy.
fn main() {
    std::process::exit(sandbox::cli::main());
}
