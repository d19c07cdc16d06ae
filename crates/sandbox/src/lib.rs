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
//!   kvm_pvm, during bursts: switchless::Server thread ─ Mailbox::try_claim → syscall::serve
//!                           (same policy, validation, trace) → Mailbox::complete, no exit
//! ```
#![deny(unsafe_code)]

pub mod checkpoint;
pub mod cli;
pub mod errno;
pub mod family;
pub mod fault_addr;
pub mod fdwin;
pub mod guard;
pub mod hostread;
pub mod landlock_layer;
pub mod loader;
pub mod mm;
pub mod nslock;
pub mod policy;
pub mod process;
pub mod robust;
pub mod signals;
pub mod switchless;
#[allow(unsafe_code)]
pub mod sys;
#[allow(unsafe_code)]
pub mod sys_net;
pub mod syscall;
pub mod trace;
pub mod uaccess;
pub mod umip;
pub mod vdso;

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
    /// Do not print the report line when the program dies of a fault.
    pub quiet: bool,
    /// Serve simple system calls without exits where the host allows ([`switchless`]).
    pub switchless: bool,
    /// The policy.
    pub policy: policy::Policy,
    /// The policy is the default profile (not asked for): its first denial says so on
    /// stderr, and its audit lines go only to an `--audit-log`.
    pub default_policy: bool,
    /// Keep the private `/tmp` after the run.
    pub keep_tmp: bool,
    /// Where audit lines go, and what else is recorded.
    pub audit: AuditOptions,
    /// `--checkpoint-on SIGNAL -o IMAGE`: that signal, sent by another process, checkpoints
    /// the program to IMAGE ([`checkpoint`]).
    pub checkpoint_on: Option<(i32, PathBuf)>,
    /// The policy's kernel-enforced second layer ([`landlock_layer`]).
    pub landlock: landlock_layer::Mode,
    /// `--learn FILE` (absolute, checked): run under `policy` (the null policy) noting every
    /// decision, and write the learned policy to FILE at the end ([`policy::learn`]).
    pub learn: Option<PathBuf>,
}

/// `--audit-log`, `--audit-allowed`, `--stats`.
#[derive(Clone, Debug, Default)]
pub struct AuditOptions {
    /// Audit lines to this file (appended) instead of stderr.
    pub log: Option<PathBuf>,
    /// Allowed decisions get a line too.
    pub allowed: bool,
    /// Count decisions; print a summary at exit.
    pub stats: bool,
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
    /// The runtime's descriptor window could not be set up.
    #[error("cannot set up the runtime's descriptors: {0}")]
    Window(std::io::Error),
    /// Too few file descriptors to start.
    #[error(
        "the open-file limit (ulimit -n) is {0}; the sandbox needs at least {MIN_NOFILE}, as its \
         own descriptors sit above the program's: raise it, e.g. `ulimit -n 1024`"
    )]
    NoFile(u64),
    /// The audit log could not be opened.
    #[error("cannot open the audit log {0}: {1}")]
    Audit(PathBuf, std::io::Error),
    /// The private `/tmp` could not be made.
    #[error("cannot make the private /tmp in {0}: {1}; set TMPDIR to a writable directory")]
    PrivateTmp(PathBuf, std::io::Error),
    /// The policy's kernel-enforced layer could not be applied.
    #[error(transparent)]
    Landlock(#[from] landlock_layer::LayerError),
    /// The policy could not be compiled.
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
    /// An inherited socket cannot be mediated.
    #[error(
        "descriptor {0} is a UDP socket the firewall cannot filter ({1}); start the sandbox \
         without it, or with --net=host"
    )]
    Inherited(i32, errno::Errno),
    /// An inherited socket is connected to a peer the policy denies.
    #[error(
        "descriptor {0} is a socket connected to {1}, which the policy does not let the program \
         reach; start the sandbox without it (close it: {0}>&-), or allow that peer"
    )]
    InheritedPeer(i32, String),
    /// The runtime failed while the program ran.
    #[error(transparent)]
    Run(#[from] process::RunError),
    /// `--learn` could not start.
    #[error(transparent)]
    Learn(#[from] policy::learn::LearnError),
    /// An image cannot be restored.
    #[error("cannot restore: {0}")]
    Restore(Box<checkpoint::restore::RestoreError>),
}

/// A guard of this many bytes separates the program range from the runtime's system area.
pub(crate) const GUARD: u64 = 1 << 30;

/// Descriptor numbers below the soft `RLIMIT_NOFILE` the sandbox started with that the runtime
/// takes for itself (`/dev/kvm`, the VM, the trace file, the first vCPUs).
const RUNTIME_FDS: u64 = 32;
/// How far the runtime raises the soft `RLIMIT_NOFILE` (as far as the hard limit allows) to
/// make room for one vCPU descriptor per program thread (`vm_config`'s 256 vCPUs).
const VCPU_FDS: u64 = 256;
/// The fewest descriptors the sandbox starts with.
const MIN_NOFILE: u64 = 96;

/// Sets up the runtime's descriptor window ([`fdwin`]): the top [`RUNTIME_FDS`] +
/// [`VCPU_FDS`] numbers below the soft `RLIMIT_NOFILE`, so the program's own descriptors get
/// the numbers they would get natively and a program can have a thread per vCPU. The soft
/// limit is first raised by [`VCPU_FDS`] as far as the hard limit allows, so that where it can
/// be, the program keeps all but [`RUNTIME_FDS`] of the limit it started with. Once per process
/// tree, before anything else opens a descriptor.
fn fd_window() -> std::io::Result<&'static fdwin::FdWindow> {
    let r = sys::getrlimit(libc::RLIMIT_NOFILE);
    let soft = r.rlim_cur.min(1 << 20);
    let raised = (soft + VCPU_FDS).min(r.rlim_max).max(soft);
    if raised > soft {
        sys::setrlimit(libc::RLIMIT_NOFILE, raised, r.rlim_max);
    }
    let floor = (raised.saturating_sub(RUNTIME_FDS + VCPU_FDS) as i32).max(64);
    fdwin::init(floor, raised as i32)
}

/// The name Linux gives a process that executes `path` (fs/exec.c, `__set_task_comm` of the
/// file name's last component; the kernel keeps 15 bytes of it).
pub fn comm_of(path: &[u8]) -> &[u8] {
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    &base[..base.len().min(15)]
}

/// The VM configuration every sandboxed process uses (a forked child builds the same).
/// [`RunOptions::switchless`], for the VMs of this process and its forked children.
static SWITCHLESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

pub fn vm_config() -> VmConfig {
    // 64 MiB of page tables map at least 32 GiB of program memory in 4 KiB pages; a smaller
    // arena and slot make start-up cheaper (KVM sizes its per-slot metadata by the slot).
    // Slots are added in 32 MiB chunks (256 MiB groups) while other vCPUs may run: never merge them (a merge
    // deletes a slot for a moment).
    // 256 concurrent threads (exited threads' vCPUs are reused).
    VmConfig {
        fd_placer: Some(std::sync::Arc::new(fdwin::Placer)),
        page_table_bytes: 64 << 20,
        coalesce_slots: false,
        max_vcpus: 256,
        switchless: SWITCHLESS.load(std::sync::atomic::Ordering::Relaxed),
        ..VmConfig::default()
    }
}

/// Where the policy's audit lines go: the audit log (appended), or the sandbox's stderr as it
/// is now (the program may point its own descriptor 2 elsewhere later); a descriptor of the
/// runtime's either way. Nowhere for a policy that can write none.
fn audit_sink(
    policy: &policy::Policy,
    a: &AuditOptions,
    default_policy: bool,
) -> Result<policy::audit::Sink, SandboxError> {
    use std::os::fd::{AsFd, IntoRawFd};
    // The default profile audits only to a log asked for: its denials are expected, and the
    // first one says so on stderr once (see `engine_for`).
    let quiet =
        (policy.rules.is_empty() && policy.network.is_none()) || (default_policy && !a.allowed);
    let file = match &a.log {
        Some(p) => std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(p)
            .map(|f| f.into_raw_fd())
            .map_err(|e| SandboxError::Audit(p.clone(), e))?,
        None if quiet && !a.stats => return Ok(policy::audit::Sink::none()),
        None => std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map(|f| f.into_raw_fd())
            .map_err(|e| SandboxError::Audit("stderr".into(), e))?,
    };
    let fd = fdwin::window()
        .place(file)
        .map_err(|e| SandboxError::Audit(a.log.clone().unwrap_or_else(|| "stderr".into()), e))?;
    Ok(policy::audit::Sink::to_fd(fd, a.allowed, a.stats))
}

/// The run's private `/tmp` (host directory, kept after the run), removed by the first
/// sandboxed process when it ends.
static PRIVATE_TMP: std::sync::OnceLock<(PathBuf, bool)> = std::sync::OnceLock::new();

/// Removes the run's private `/tmp` (or says where it was kept); once, by the first sandboxed
/// process.
pub fn end_private_tmp() {
    if policy::audit::is_root() {
        end_private_tmp_now();
    }
}

/// Removes the run's private `/tmp` (or says where it was kept) from whichever sandboxed
/// process calls it: for one that ends the whole sandbox.
pub fn end_private_tmp_now() {
    if let Some((dir, keep)) = PRIVATE_TMP.get() {
        if *keep {
            sys_net::write_all(
                2,
                format!("sandbox: the private /tmp is kept in {}\n", dir.display()).as_bytes(),
            );
        } else {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The paths of the supervisor's own files: its executable and every file it has mapped (the
/// libraries it runs from), canonical; the program may never write them.
fn supervisor_files() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Ok(exe) = std::fs::canonicalize("/proc/self/exe") {
        out.push(exe.into_os_string().into_encoded_bytes());
    }
    if let Ok(maps) = std::fs::read_to_string("/proc/self/maps") {
        for line in maps.lines() {
            if let Some(i) = line.find(" /")
                && let Ok(p) = std::fs::canonicalize(line[i + 1..].trim())
            {
                let p = p.into_os_string().into_encoded_bytes();
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// Makes the private `/tmp` and `/dev/shm` of a run: a host directory `sandbox-PID-N` in the
/// host's temporary directory, with `tmp` and `shm` in it (mode 0700 and 1777 inside).
/// Returns the rules and redirects that make the program see them.
fn private_tmp(
    keep: bool,
    rules: &[policy::Rule],
) -> Result<(Vec<policy::Rule>, policy::Redirects), SandboxError> {
    use policy::fs::{Access, FsAccess, FsRule};
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let base = std::fs::canonicalize(std::env::temp_dir()).unwrap_or_else(|_| "/tmp".into());
    let mut dir = None;
    for n in 0..100u32 {
        let d = base.join(format!("sandbox-{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&d) {
            Ok(()) => {
                dir = Some(d);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(SandboxError::PrivateTmp(d, e)),
        }
    }
    let dir = dir.ok_or_else(|| {
        SandboxError::PrivateTmp(base.clone(), std::io::ErrorKind::AlreadyExists.into())
    })?;
    let _ = PRIVATE_TMP.set((dir.clone(), keep));
    let (tmp, shm) = (dir.join("tmp"), dir.join("shm"));
    for d in [&tmp, &shm] {
        std::fs::create_dir(d).map_err(|e| SandboxError::PrivateTmp(d.clone(), e))?;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o1777))
            .map_err(|e| SandboxError::PrivateTmp(d.clone(), e))?;
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let label = "--private-tmp";
    let rwx = FsAccess::Allow(Access::R.with(Access::W).with(Access::X));
    let mut out = Vec::new();
    let mut hide = |p: &str| -> Result<(), SandboxError> {
        let r = FsRule::new(label, p, FsAccess::Hide, None, &cwd, None)
            .map_err(|m| SandboxError::PrivateTmp(p.into(), std::io::Error::other(m)))?;
        out.push(policy::Rule::Fs(r));
        Ok(())
    };
    hide("/tmp")?;
    hide("/dev/shm")?;
    hide(&base.to_string_lossy())?;
    for d in [&tmp, &shm] {
        let r = FsRule::new(label, &d.to_string_lossy(), rwx, None, &cwd, None)
            .map_err(|m| SandboxError::PrivateTmp(d.clone(), std::io::Error::other(m)))?;
        out.push(policy::Rule::Fs(r));
    }
    let bytes = |p: &std::path::Path| p.as_os_str().as_encoded_bytes().to_vec();
    let tmp_canon = std::fs::canonicalize("/tmp").unwrap_or_else(|_| "/tmp".into());
    // Rules of their own below /tmp (a working directory there) stay the host's.
    let except = rules
        .iter()
        .filter_map(|r| match r {
            policy::Rule::Fs(f)
                if policy::is_below(&f.path, &bytes(&tmp_canon))
                    || policy::is_below(&f.path, b"/dev/shm") =>
            {
                Some(f.path.clone())
            }
            _ => None,
        })
        .collect();
    let mut except: Vec<Vec<u8>> = except;
    // Paths already in the run's directory stay there (a path is redirected once).
    except.push(bytes(&dir));
    let redirects = policy::Redirects {
        dirs: vec![(b"/tmp".to_vec(), bytes(&tmp)), (b"/dev/shm".to_vec(), bytes(&shm))],
        except,
    };
    Ok((out, redirects))
}

/// The policy engine of a run: the policy, its private `/tmp` if it has one, the
/// supervisor's own files protected, and the default profile's notice.
fn engine_for(
    policy: &policy::Policy,
    audit: &AuditOptions,
    eo: &EngineOptions,
) -> Result<policy::Engine, SandboxError> {
    let mut policy = policy.clone();
    let mut redirects = None;
    if policy.private_tmp {
        let (mut rules, r) = private_tmp(eo.keep_tmp, &policy.rules)?;
        rules.append(&mut policy.rules);
        policy.rules = rules;
        redirects = Some(r);
    }
    let mut engine = policy::Engine::new(&policy, audit_sink(&policy, audit, eo.default_policy)?)?;
    if let Some(r) = redirects {
        engine.set_redirects(r);
    }
    if let Some((out, command)) = &eo.learn {
        engine.learn(policy::learn::Recorder::new(out.clone(), command.clone())?);
    }
    if engine.rules_vdso_calls() || eo.learn.is_some() {
        // A rule about a clock call, or learning which calls the program makes: the program
        // makes them as system calls, where the policy sees them.
        vdso::disable();
    }
    if !policy.is_null() && eo.learn.is_none() {
        // Under every policy but null the supervisor's files are protected, rules or none.
        engine.mediate_files();
    }
    if engine.fs().is_some() {
        for f in supervisor_files() {
            engine.protect(&f);
        }
        for p in eo.trace.iter().chain(audit.log.iter()) {
            if let Ok(c) = std::fs::canonicalize(p) {
                engine.protect(c.as_os_str().as_encoded_bytes());
            }
        }
    }
    if eo.default_policy {
        use std::os::fd::{AsFd, IntoRawFd};
        if let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned()
            && let Ok(fd) = fdwin::window().place(fd.into_raw_fd())
        {
            let text = format!(
                "sandbox: the default policy `{}` denied a call (it allows reading the system, \
                 writing the working directory and a private /tmp; no network). See `sandbox \
                 policy show {0}`; --policy null allows everything.\n",
                policy.name
            );
            engine.set_notice(text, fd);
        }
    }
    Ok(engine)
}

/// What makes a run's policy engine beyond the policy: whether the policy is the default
/// profile (its first denial says so, its audit lines go only to a log asked for), whether
/// the private `/tmp` is kept, and the trace file (never writable by the program).
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    /// The policy is the default profile, not asked for.
    pub default_policy: bool,
    /// Keep the private `/tmp` after the run.
    pub keep_tmp: bool,
    /// The trace file, if any.
    pub trace: Option<PathBuf>,
    /// `--learn`: the file to write and the command, for its header.
    pub learn: Option<(PathBuf, String)>,
}

/// What `run` and `restore` share before a VM exists: the host signal handlers (returns the
/// signals ignored at start), the runtime's descriptor window, the compiled policy and its
/// audit sink.
pub(crate) fn prepare(
    policy: &policy::Policy,
    audit: &AuditOptions,
    switchless: bool,
    eo: &EngineOptions,
) -> Result<(u64, std::sync::Arc<policy::Engine>), SandboxError> {
    let ignored = sys::install_host_signal_handlers();
    // Default-ignored signals are ignored by the host too (see signals::host_ignores).
    for sig in 1..=64 {
        if signals::host_ignores(sig, &signals::Action::default()) {
            sys::mirror_disposition(sig, true, false);
        }
    }
    #[cfg(debug_assertions)]
    crash_for_test();
    trace::set_root_pid();
    SWITCHLESS.store(switchless, std::sync::atomic::Ordering::Relaxed);
    let nofile = sys::getrlimit(libc::RLIMIT_NOFILE).rlim_cur;
    if nofile < MIN_NOFILE {
        return Err(SandboxError::NoFile(nofile));
    }
    let window = fd_window().map_err(SandboxError::Window)?;
    let engine = std::sync::Arc::new(engine_for(policy, audit, eo)?);
    guard::filter_inherited(&engine, window.floor()).map_err(|e| match e {
        guard::Inherited::Unfiltered(fd, e) => SandboxError::Inherited(fd, e),
        guard::Inherited::Peer(fd, peer) => SandboxError::InheritedPeer(fd, peer),
    })?;
    policy::audit::set_root();
    family::init();
    syscall::tty::note_inherited_ptys();
    if engine.fs().is_some() {
        nslock::init().map_err(SandboxError::Window)?;
    }
    Ok((ignored, engine))
}

/// Runs the program described by `opts` to its end. Returns only on errors before the program
/// starts; afterwards the process ends with the program (exit status or signal).
pub fn run(opts: &RunOptions) -> Result<std::convert::Infallible, SandboxError> {
    let t0 = std::time::Instant::now();
    let eo = EngineOptions {
        default_policy: opts.default_policy,
        keep_tmp: opts.keep_tmp,
        trace: opts.trace.clone().filter(|t| t.as_os_str() != "-"),
        learn: opts.learn.clone().map(|f| {
            let words: Vec<String> =
                opts.argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            (f, words.join(" "))
        }),
    };
    let (ignored, engine) = prepare(&opts.policy, &opts.audit, opts.switchless, &eo)?;
    let vm = Vm::new(vm_config())?;
    tracing::debug!(elapsed = ?t0.elapsed(), platform = ?vm.platform(), "VM created");
    let base = vm.layout().base;
    let hi = (base - GUARD) & !((1 << 30) - 1);
    let mut mm = mm::Mm::new(vm.clone(), mm::PROGRAM_LO, hi, base)
        .map_err(|e| SandboxError::Reserve(e, base))?;
    let loaded =
        loader::load(&mut mm, &opts.path, &loader::Args { argv: &opts.argv, envp: &opts.envp })?;
    tracing::debug!(elapsed = ?t0.elapsed(), ?loaded, "program loaded");
    let mut vcpu = vm.create_vcpu()?;
    let regs = dune::Regs {
        rip: loaded.entry,
        rsp: loaded.sp,
        rflags: dune::USER_RFLAGS,
        ..dune::Regs::default()
    };
    vcpu.set_user_context(&regs).map_err(process::RunError::from)?;
    // The host thread carries the program's name (its `comm`, what /proc shows), as execve
    // names a process after the file it runs.
    sys::set_thread_name(comm_of(opts.path.as_os_str().as_encoded_bytes()));
    let proc = Process::new(vm.clone(), mm, engine, opts.path.clone(), opts.quiet);
    *proc.exe_id.lock().unwrap() = Some(loaded.exe_id);
    if let Some(t) = &opts.trace {
        let out: Box<dyn std::io::Write + Send> = if t.as_os_str() == "-" {
            Box::new(std::io::stderr())
        } else {
            let f = std::fs::File::create(t).map_err(|e| SandboxError::Trace(t.clone(), e))?;
            let fd = fdwin::window()
                .place(std::os::fd::IntoRawFd::into_raw_fd(f))
                .map_err(|e| SandboxError::Trace(t.clone(), e))?;
            // The runtime's: no name (its path, a /proc/self/fd link, a hard link) opens it.
            fdwin::add_runtime_file(fd).map_err(|e| SandboxError::Trace(t.clone(), e))?;
            #[allow(unsafe_code)]
            // SAFETY: `fd` was just created by moving the trace file's descriptor; nothing else
            // owns it.
            let file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            // Line by line, so a trace can be watched live and survives `kill -9`.
            Box::new(std::io::LineWriter::new(file))
        };
        let mut tracer = trace::Tracer::new(out);
        // argc, argv[argc + 1], then envp on the initial stack (System V ABI, 3.4.1); argc
        // counts a `#!` interpreter's arguments too.
        let mut argc = [0u8; 8];
        let _ = sys::read_program(loaded.sp, &mut argc);
        let envp = loaded.sp + 8 * (u64::from_ne_bytes(argc) + 2);
        tracer.line(&trace::first_execve(
            opts.path.as_os_str().as_encoded_bytes(),
            &opts.argv,
            envp,
            opts.envp.len(),
        ));
        *proc.trace.lock().unwrap() = Some(tracer);
    }
    for sig in 1..=64 {
        if ignored & signals::bit(sig) != 0 {
            proc.actions.lock().unwrap()[sig as usize].handler = signals::SIG_IGN;
        }
    }
    let proc = std::sync::Arc::new(proc);
    if let Some((sig, out)) = &opts.checkpoint_on {
        checkpoint::save::arm(&proc, *sig, out.clone(), opts.policy.name.clone())
            .map_err(SandboxError::Window)?;
    }
    if let Err(e) = checkpoint::save::listen(&proc, opts.policy.name.clone()) {
        tracing::warn!(%e, "no checkpoint channel (sandbox checkpoint PID will not reach it)");
    }
    second_layer(&proc.policy, opts.landlock)?;
    let mut thread = process::Thread::new(proc, vcpu);
    thread.register();
    tracing::debug!(elapsed = ?t0.elapsed(), "entering the program");
    thread.run();
    thread.stop_server();
    // The main thread exited while others run: the last one to exit ends the process.
    loop {
        std::thread::park();
    }
}

/// Applies the policy's kernel-enforced second layer ([`landlock_layer`]) to the calling
/// thread, the threads it starts and the processes it forks from now on: the last step before
/// the program runs (helper threads started before stay outside it).
pub(crate) fn second_layer(
    engine: &policy::Engine,
    mode: landlock_layer::Mode,
) -> Result<(), SandboxError> {
    let needs = landlock_layer::Needs {
        private_tmp: PRIVATE_TMP.get().map(|(d, _)| d.clone()),
        confine_signals: engine.confines_processes(),
    };
    match landlock_layer::apply(mode, engine.fs_given(), engine.net(), &needs)? {
        Some(a) => tracing::debug!(?a, "Landlock layer applied"),
        None => tracing::debug!("no Landlock layer"),
    }
    Ok(())
}

/// Debug builds only: `SANDBOX_TEST_CRASH=segv|abort|panic` makes the supervisor crash right
/// after it installed its signal handlers, so that the tests can check how the sandbox reports
/// a crash of its own (see `sys::internal_crash`).
#[cfg(debug_assertions)]
fn crash_for_test() {
    match std::env::var("SANDBOX_TEST_CRASH").as_deref() {
        Ok("segv") => sys::crash_for_test(),
        Ok("abort") => std::process::abort(),
        Ok("panic") => panic!("SANDBOX_TEST_CRASH=panic"),
        _ => {}
    }
}
