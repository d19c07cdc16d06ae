//! The sandbox supervisor: runs an unmodified Linux x86-64 program in guest ring 3 of a
//! process-level KVM VM (`dune`), with every system call and fault ending in this process.
//!
//! ```text
//! cli::main ─ resolve PROGRAM (execvp rules) ─ run()
//!   run(): Vm::new ─ Mm::new (reserve the program range) ─ loader::load (ELF + ld.so + stack)
//!          ─ Vcpu::enter_user ─ Process::run:
//!              loop { Vcpu::run() → Trap
//!                     Syscall   → syscall::dispatch: policy → validate → emulate/forward → RAX
//!                     PageFault → spurious? retry : the program dies of SIGSEGV
//!                     Exception → the signal Linux would send (SIGILL, SIGFPE, ...) }
//! ```
#![deny(unsafe_code)]

pub mod cli;
pub mod errno;
pub mod loader;
pub mod mm;
pub mod policy;
pub mod process;
#[allow(unsafe_code)]
pub mod sys;
pub mod syscall;
pub mod trace;

use std::path::PathBuf;

use dune::{Vm, VmConfig};

pub use process::{Fatal, Outcome, Process};

/// What to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The executable (already resolved through PATH).
    pub path: PathBuf,
    /// `argv`, `argv[0]` first.
    pub argv: Vec<Vec<u8>>,
    /// `envp` as `K=V` strings.
    pub envp: Vec<Vec<u8>>,
    /// Trace destination: `-` for stderr, else a file.
    pub trace: Option<PathBuf>,
}

/// Why a run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The program could not be loaded (Linux's execve verdict).
    #[error(transparent)]
    Exec(#[from] loader::ExecError),
    /// The VM could not be created.
    #[error("cannot start the VM: {0}")]
    Vm(#[from] dune::VmError),
    /// The program range could not be reserved.
    #[error(
        "cannot reserve the program's address range: {0}; is RLIMIT_AS (ulimit -v) limited, or \
         is something mapped below {1:#x}?"
    )]
    Reserve(errno::Errno, u64),
    /// The trace file could not be opened.
    #[error("cannot open the trace file {0}: {1}")]
    Trace(PathBuf, std::io::Error),
    /// The runtime failed while the program ran.
    #[error(transparent)]
    Run(#[from] process::RunError),
}

/// A guard of this many bytes separates the program range from the runtime's system area.
const GUARD: u64 = 1 << 30;

/// Where runtime descriptors go: the top of the soft `RLIMIT_NOFILE`, so the program's own
/// descriptors get the numbers they would get natively.
fn fd_floor() -> i32 {
    let soft = sys::getrlimit(libc::RLIMIT_NOFILE).rlim_cur.min(1 << 20) as i32;
    (soft - 32).max(64)
}

/// Runs the program described by `opts` to its end.
pub fn run(opts: &RunOptions) -> Result<Outcome, SandboxError> {
    let t0 = std::time::Instant::now();
    let floor = fd_floor();
    // 64 MiB of page tables map at least 32 GiB of program memory in 4 KiB pages; a smaller
    // arena and slot make start-up cheaper (KVM sizes its per-slot metadata by the slot).
    let cfg = VmConfig { fd_floor: Some(floor), page_table_bytes: 64 << 20, ..VmConfig::default() };
    let vm = Vm::new(cfg)?;
    tracing::debug!(elapsed = ?t0.elapsed(), platform = ?vm.platform(), "VM created");
    let base = vm.layout().base;
    let hi = (base - GUARD) & !((1 << 30) - 1);
    let mut mm = mm::Mm::new(vm.clone(), mm::PROGRAM_LO, hi, base)
        .map_err(|e| SandboxError::Reserve(e, base))?;
    let execfn = opts.path.as_os_str().as_encoded_bytes().to_vec();
    let loaded = loader::load(
        &mut mm,
        &opts.path,
        &loader::Args { argv: &opts.argv, envp: &opts.envp, execfn: &execfn },
    )?;
    tracing::debug!(elapsed = ?t0.elapsed(), ?loaded, "program loaded");
    let mut vcpu = vm.create_vcpu()?;
    vcpu.set_regs(&dune::Regs::default()).map_err(process::RunError::from)?;
    vcpu.enter_user(loaded.entry, loaded.sp).map_err(process::RunError::from)?;
    let name = opts.path.display().to_string();
    let mut proc = Process::new(vm.clone(), mm, Box::new(policy::NullPolicy), name);
    for fd in vm.runtime_fds() {
        proc.protect_fd(fd);
    }
    if let Some(t) = &opts.trace {
        let out: Box<dyn std::io::Write + Send> = if t.as_os_str() == "-" {
            Box::new(std::io::stderr())
        } else {
            let f = std::fs::File::create(t).map_err(|e| SandboxError::Trace(t.clone(), e))?;
            let fd = sys::move_fd_up(std::os::fd::IntoRawFd::into_raw_fd(f), floor)
                .map_err(|e| SandboxError::Trace(t.clone(), e))?;
            proc.protect_fd(fd);
            #[allow(unsafe_code)]
            // SAFETY: `fd` was just created by moving the trace file's descriptor; nothing else
            // owns it.
            let file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            Box::new(std::io::BufWriter::new(file))
        };
        proc.trace = Some(trace::Tracer::new(out));
    }
    tracing::debug!(elapsed = ?t0.elapsed(), "entering the program");
    let outcome = proc.run(&mut vcpu);
    tracing::debug!(elapsed = ?t0.elapsed(), ?outcome, "program ended");
    if let Some(t) = proc.trace.as_mut() {
        match &outcome {
            Ok(Outcome::Exited(s)) => t.line(&format!("+++ exited with {s} +++")),
            Ok(Outcome::Killed(f)) => {
                t.line(&format!("+++ killed by {} +++", cli::signal_name(f.signal)))
            }
            Err(e) => t.line(&format!("+++ runtime error: {e} +++")),
        }
    }
    Ok(outcome?)
}
