//! The command line: `sandbox run [OPTIONS] [--] PROGRAM [ARGS...]`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::errno::Errno;
use crate::policy::{Action, NetDefault, Policy, PolicyError, Rule};
use crate::{AuditOptions, RunOptions, SandboxError};

/// Exit status when the sandbox itself could not run (KVM unusable, internal error).
pub const EXIT_RUNTIME: i32 = 125;

const RUN_EXAMPLES: &str = "\
Examples:
  sandbox run -- /bin/busybox ls -la        run a static program
  sandbox run --trace -- ./hello            print every system call to stderr
  sandbox run --trace=calls.txt -- ./hello  ... or to a file
  sandbox run --env-clear --env HOME=/tmp -- ./prog   start with only HOME set

Policies (README.md, section Policies). Without policy options the program runs
under the `workspace` profile: it reads the system but not ~/.ssh, ~/.gnupg, ~/.aws
and other credential stores, writes only the working directory and a private
/tmp, has no network, and signals only its own processes.
  sandbox run --policy null -- ./prog        validation only: everything else allowed
  sandbox run --policy readonly -- ./prog    workspace, but the working directory read-only
  sandbox run --rw ./out --hide ~/.config -- ./prog   workspace plus two rules
  sandbox policy show workspace              the profile as a policy file
  sandbox run --deny-net -- ./prog           no network (socketpair still works)
  sandbox run --allow-connect 127.0.0.1:8080 -- curl http://127.0.0.1:8080/
  sandbox run --allow-connect '[::1]:8000-8100/tcp' --allow-send 10.0.0.0/8:53/udp -- ./prog
  sandbox run --allow-bind 0.0.0.0:8000 -- python3 -m http.server 8000
  sandbox run --allow-unix /run/app.sock --allow-unix @abstract-name -- ./client
  sandbox run --policy my-policy.toml --audit-log audit.jsonl --stats -- ./prog
  sandbox run --learn prog.toml -- ./prog    learn a policy from one run (null policy) ...
  sandbox run --policy ./prog.toml -- ./prog ... review it, then run under it
Once any network rule is given, every bind, connect, send, listen and accept that
no rule allows is denied (EACCES) and logged as one JSON line (to stderr, or to
--audit-log FILE). Rules are tried in order: the first that matches decides
(--allow-* options come before the policy file's rules).

Exit status: the program's; if it dies of a signal, the sandbox dies of the same
signal (if the signal was a fault, after one line on stderr naming it, the fault
address and RIP, unless --quiet). 127: PROGRAM not found. 126: not executable or
not a valid x86-64 ELF. 125: the sandbox could not start (e.g. /dev/kvm unusable;
the message names the fix). 2: a usage error, or a malformed policy (the
message names the file, line and column).

The sandbox binary is target/release/sandbox after `cargo xtask run` (or
`cargo install --path crates/sandbox` puts it on PATH).";

/// Run untrusted Linux x86-64 programs in a process-level KVM sandbox (Dune): the program runs
/// unmodified in guest ring 3, and every system call and fault reaches this supervisor, which
/// validates the arguments, applies a policy and forwards the call to Linux.
#[derive(Debug, Parser)]
#[command(name = "sandbox", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run PROGRAM in the sandbox under a policy (by default the `workspace` profile: read
    /// the system except secrets, write the working directory and a private /tmp, no network).
    #[command(after_help = RUN_EXAMPLES)]
    Run(Box<RunArgs>),
    /// Resume a program from a checkpoint image (made by `run --checkpoint-on` or `sandbox
    /// checkpoint`) in this new sandbox process, exactly where it stopped; its stdin, stdout and stderr are this
    /// process's. Takes the same policy options as `run`.
    #[command(after_help = RESTORE_EXAMPLES)]
    Restore(Box<RestoreArgs>),
    /// Checkpoint the program of a running sandbox (by the sandbox's pid, as `ps` shows it)
    /// to IMAGE: its threads stop where no system call is half done, the image is written,
    /// and the sandbox exits with status 0 (or, with --leave-running, the program continues).
    /// Only the sandbox's owner (same uid) or root can ask; the program itself cannot. If the
    /// program holds something an image cannot (a socket, a pipe to another process, a child
    /// process), the checkpoint is refused and the program continues; the exit status is then
    /// 1.
    Checkpoint {
        /// The sandbox's pid.
        pid: i32,
        /// The image file to write.
        #[arg(long, short = 'o', value_name = "IMAGE")]
        output: PathBuf,
        /// Let the program continue after the image is written.
        #[arg(long)]
        leave_running: bool,
    },
    /// Work with checkpoint images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Show the built-in policies, or one policy as a policy file.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Print a built-in policy (null, deny-net, loopback, workspace, readonly) or a policy
    /// FILE as a policy file, each rule with its origin.
    Show {
        /// The policy.
        #[arg(value_name = "NAME|FILE")]
        policy: String,
    },
    /// List the built-in policies.
    List,
}

const RESTORE_EXAMPLES: &str = "\
Examples:
  sandbox run --policy null --checkpoint-on SIGUSR2 -o prog.img -- ./prog &
  kill -USR2 $!                      prog stops; prog.img is written; the sandbox exits 0
  sandbox restore prog.img           prog continues where it stopped
  sandbox checkpoint PID -o b.img --leave-running   the same, asked by pid; goes on
  sandbox image inspect prog.img     what the image holds

Exit status: the program's, as for `run`; 125 if the image cannot be restored
(the message names the cause: a damaged image, a changed file, a CPU lacking
an XSAVE feature the image uses, ...). README.md, section Checkpoint and restore.";

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Print what an image holds: where it was taken, threads, mappings, descriptors, signal
    /// state, sizes (every checksum is verified first).
    Inspect {
        /// The image.
        image: PathBuf,
    },
}

#[derive(Debug, Args)]
struct RestoreArgs {
    #[command(flatten)]
    policy: PolicyArgs,
    /// Do not print the one-line report when the program dies of a signal.
    #[arg(long, short)]
    quiet: bool,
    /// Make every system call exit to the supervisor (see `run --help`).
    #[arg(long)]
    no_switchless: bool,
    /// Use files the program had open or mapped even if they changed since the checkpoint
    /// (size or modification time); by default such an image is refused.
    #[arg(long)]
    allow_changed_files: bool,
    #[command(flatten)]
    checkpoint: CheckpointArgs,
    /// The image to restore.
    #[arg(value_name = "IMAGE")]
    image: PathBuf,
}

#[derive(Debug, Args)]
struct CheckpointArgs {
    /// Checkpoint the program when the sandbox receives SIGNAL from another process (e.g.
    /// SIGUSR2, USR2 or 12): every thread stops at a point where no system call is half done,
    /// the image is written (-o) atomically, and the sandbox exits with status 0. If the
    /// program holds something an image cannot (a socket, a pipe to another process, a child
    /// process), the checkpoint is refused with a message and the program continues. The
    /// program never receives SIGNAL from other processes.
    #[arg(long, value_name = "SIGNAL", value_parser = checkpoint_signal, requires = "output")]
    checkpoint_on: Option<i32>,
    /// The image file --checkpoint-on writes.
    #[arg(long, short = 'o', value_name = "IMAGE", requires = "checkpoint_on")]
    output: Option<PathBuf>,
}

/// `--checkpoint-on`: a signal name (`SIGUSR2`, `USR2`) or number, not one the sandbox needs
/// for itself.
fn checkpoint_signal(s: &str) -> Result<i32, String> {
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let sig = match name.parse::<i32>() {
        Ok(n) => n,
        Err(_) => (1..=31)
            .find(|&n| signal_name(n) == format!("SIG{name}"))
            .ok_or_else(|| format!("`{s}` is not a signal (e.g. SIGUSR2, USR2 or 12)"))?,
    };
    let runtime = [libc::SIGRTMAX() - 1, libc::SIGRTMAX() - 2];
    let fault = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE, libc::SIGTRAP];
    if !(1..=libc::SIGRTMAX()).contains(&sig)
        || sig == libc::SIGKILL
        || sig == libc::SIGSTOP
        || runtime.contains(&sig)
        || fault.contains(&sig)
        || sig == libc::SIGABRT
    {
        return Err(format!(
            "{s} cannot be the checkpoint signal (SIGKILL, SIGSTOP, the fault signals, SIGABRT \
             and the runtime's SIGRTMAX-1, SIGRTMAX-2 are taken); use e.g. SIGUSR2"
        ));
    }
    Ok(sig)
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Print every system call strace-style: name, decoded arguments, result or errno. To
    /// stderr, or with `--trace=FILE` to FILE.
    #[arg(
        long,
        value_name = "FILE",
        num_args = 0..=1,
        default_missing_value = "-",
        require_equals = true,
        value_parser = non_empty
    )]
    trace: Option<OsString>,
    /// Do not print the one-line report when the program dies of a signal.
    #[arg(long, short)]
    quiet: bool,
    /// Start the program with an empty environment (then add variables with --env).
    #[arg(long)]
    env_clear: bool,
    /// Set an environment variable for the program, e.g. `--env LANG=C` (repeatable).
    #[arg(long, value_name = "K=V", value_parser = key_value)]
    env: Vec<OsString>,
    /// Make every system call exit to the supervisor's vCPU thread. By default, on hosts where
    /// a guest `syscall` stays in ring 3 (kvm_pvm), simple calls (read of a file, fstat, lseek,
    /// getpid, clock_gettime, ...) in a burst are handed to a polling helper thread without an
    /// exit: about 3-4x faster each, at the cost of a second CPU while the burst lasts.
    #[arg(long)]
    no_switchless: bool,
    /// Give the program no vDSO (no `AT_SYSINFO_EHDR`): `clock_gettime`, `gettimeofday`,
    /// `time` and `getcpu` are then system calls, which `--trace` shows and the policy sees. By
    /// default the program runs the host kernel's vDSO, without an exit, where the probe finds
    /// that the guest reads the host's TSC
    #[arg(long)]
    no_vdso: bool,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Learn a policy: run the program under the null policy (everything allowed, validated)
    /// and, when it ends, write to FILE the narrowest policy file that allows what the run did
    /// (the system calls it made, the network endpoints it bound, connected or sent to, the
    /// paths it reached, grouped by directory), each rule commented, for review and then
    /// `--policy FILE`. FILE is checked at start and written only at the end (replaced
    /// atomically); not at all if the program cannot be started. Takes no other policy option
    /// (`--policy null` excepted).
    #[arg(long, value_name = "FILE")]
    learn: Option<PathBuf>,
    #[command(flatten)]
    checkpoint: CheckpointArgs,
    /// The program and its arguments. The program is found through the PATH of its
    /// environment (after --env-clear/--env) as env(1) finds it; a name with a `/` is used as
    /// it is.
    #[arg(value_name = "PROGRAM [ARGS]", required = true, trailing_var_arg = true)]
    argv: Vec<OsString>,
}

/// The policy options `run` and `restore` share.
#[derive(Debug, Args)]
struct PolicyArgs {
    /// The policy: a built-in one by NAME (workspace, the default; readonly; null, validation
    /// only; deny-net; loopback) or a policy FILE (TOML, see README.md "Policies"). A value
    /// with a `/` or ending in `.toml` is a file (write ./NAME for a file in the working
    /// directory).
    #[arg(long, value_name = "FILE|NAME")]
    policy: Option<String>,
    /// PATH and everything below it readable (not writable, not executable). Once any
    /// filesystem rule applies, paths no rule names are denied; the longest matching rule
    /// wins. Repeatable; relative to the working directory, `~` for $HOME.
    #[arg(long, value_name = "PATH")]
    ro: Vec<String>,
    /// PATH and everything below it readable and writable (create, modify, rename, delete,
    /// change attributes). Repeatable.
    #[arg(long, value_name = "PATH")]
    rw: Vec<String>,
    /// PATH and everything below it readable and executable. Repeatable.
    #[arg(long, value_name = "PATH")]
    exec: Vec<String>,
    /// PATH and everything below it hidden: every call answers ENOENT, as if absent.
    /// Repeatable.
    #[arg(long, value_name = "PATH")]
    hide: Vec<String>,
    /// Give the program its own empty /tmp and /dev/shm (host directories made for the run,
    /// removed after it; the workspace and readonly profiles have it).
    #[arg(long)]
    private_tmp: bool,
    /// Keep the private /tmp after the run (its host path is printed on stderr).
    #[arg(long)]
    keep_tmp: bool,
    /// The filesystem rules' kernel-enforced second layer (Landlock, applied to the sandbox
    /// itself before the program starts): auto (where the host kernel has Landlock), require
    /// (refuse to start where it cannot be fully enforced) or off (the first layer alone).
    #[arg(long, value_name = "MODE", value_parser = ["auto", "require", "off"], default_value = "auto")]
    landlock: String,
    /// Allow connecting to ADDR[:PORT][/PROTO] (and answers from there): an address, CIDR
    /// network, host name (resolved once, at start), any, localhost or loopback; IPv6 in
    /// brackets, e.g. `[::1]:8000-8100/tcp`. Repeatable.
    #[arg(long, value_name = "ADDR[:PORT][/PROTO]")]
    allow_connect: Vec<String>,
    /// Allow binding and listening on ADDR[:PORT][/PROTO], and accepting connections and
    /// datagrams from anyone on those ports, e.g. `0.0.0.0:8000` (exactly the wildcard
    /// address; `any:8000` for any local address). Repeatable.
    #[arg(long, value_name = "ADDR[:PORT][/PROTO]")]
    allow_bind: Vec<String>,
    /// Allow sending datagrams to ADDR[:PORT][/PROTO] (and answers from there), e.g.
    /// `10.0.0.0/8:53/udp`. Repeatable.
    #[arg(long, value_name = "ADDR[:PORT][/PROTO]")]
    allow_send: Vec<String>,
    /// Allow every operation on a unix socket PATH (a directory ending in `/`: every path
    /// below it) or abstract @NAME. Repeatable.
    #[arg(long, value_name = "PATH|@NAME")]
    allow_unix: Vec<String>,
    /// No network: every bind, connect, send, listen and accept is denied (EACCES);
    /// socketpair and descriptors already open still work.
    #[arg(long)]
    deny_net: bool,
    /// `--net=host`: the network is not mediated (the null policy's behaviour, made explicit;
    /// it cannot be combined with network rules).
    #[arg(long, value_name = "MODE", value_parser = ["host"], require_equals = true)]
    net: Option<String>,
    /// Write audit lines (one JSON object per denied or logged call) to FILE, appended,
    /// instead of stderr.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Audit allowed network decisions too, not only denials and `log` rules.
    #[arg(long)]
    audit_allowed: bool,
    /// Count the policy's decisions per rule and print a summary when the program ends (to
    /// stderr, or to the audit log).
    #[arg(long)]
    stats: bool,
}

/// `--trace=FILE`: a file name, not empty.
fn non_empty(s: &str) -> Result<OsString, String> {
    if s.is_empty() {
        Err("the trace file name is empty; use --trace alone for stderr".into())
    } else {
        Ok(s.into())
    }
}

/// `--env K=V`: a name, `=`, a value (possibly empty).
fn key_value(s: &str) -> Result<OsString, String> {
    match s.split_once('=') {
        Some((k, _)) if !k.is_empty() => Ok(s.into()),
        _ => Err(format!("`{s}` is not K=V (e.g. --env LANG=C)")),
    }
}

/// Why PROGRAM could not be found.
#[derive(Debug)]
struct NotFound {
    errno: i32,
}

/// Resolves `name` like execvp(3) in `env(1)`: names with a slash are used as they are; others
/// are looked up in `path`, the `PATH` of the program's environment (default
/// `/usr/local/bin:/usr/bin:/bin`). A candidate that exists but is not executable is
/// remembered (EACCES) if nothing better is found.
fn resolve(name: &OsStr, path: Option<&OsStr>) -> Result<PathBuf, NotFound> {
    if name.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(name));
    }
    if name.is_empty() {
        return Err(NotFound { errno: libc::ENOENT });
    }
    let path = path.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    let mut errno = libc::ENOENT;
    for dir in std::env::split_paths(path) {
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        let cand = dir.join(name);
        let Ok(md) = std::fs::metadata(&cand) else {
            continue;
        };
        use std::os::unix::fs::PermissionsExt;
        if md.is_file() && md.permissions().mode() & 0o111 != 0 {
            return Ok(cand);
        }
        errno = libc::EACCES;
    }
    Err(NotFound { errno })
}

/// The policy the options name: `--policy` (or null), then the `--allow-*` rules in front of
/// its rules, then `--deny-net` or `--net=host`.
fn policy_of(args: &PolicyArgs) -> Result<Policy, PolicyError> {
    use crate::policy::fs::{Access, FsAccess, FsRule};
    use crate::policy::spec::{Shorthand, shorthand};
    let mut policy = match &args.policy {
        None => {
            let mut p = Policy::builtin("workspace").expect("a built-in profile");
            if args.net.is_some() {
                // `--net=host` on the default profile: everything of it but the firewall.
                p.network = None;
            }
            p
        }
        Some(v) => named_policy(v)?,
    };
    let mut rules = Vec::new();
    let mut first = None;
    for (which, values) in [
        (Shorthand::Connect, &args.allow_connect),
        (Shorthand::Bind, &args.allow_bind),
        (Shorthand::Send, &args.allow_send),
        (Shorthand::Unix, &args.allow_unix),
    ] {
        for v in values {
            let made = shorthand(which, v).map_err(|message| PolicyError::Option {
                option: which.option().into(),
                value: v.clone(),
                message,
            })?;
            first.get_or_insert_with(|| format!("{} {v}", which.option()));
            rules.extend(made);
        }
    }
    let net_rules = policy.rules.iter().any(|r| matches!(r, Rule::Net(_) | Rule::Socket(_)));
    if args.deny_net && (first.is_some() || net_rules) {
        return Err(PolicyError::Conflict(
            "--deny-net cannot be combined with network rules (--allow-*, or a policy with \
             [network] rules); drop one or the other"
                .into(),
        ));
    }
    if args.net.is_some() && (first.is_some() || args.deny_net || policy.network.is_some()) {
        return Err(PolicyError::Conflict(
            "--net=host leaves the network unmediated: it cannot be combined with --allow-*, \
             --deny-net or a policy that mediates the network"
                .into(),
        ));
    }
    if let Some(label) = first {
        if policy.name == "null" {
            policy.name = "command line".into();
        }
        let _ = label;
        policy.network.get_or_insert(NetDefault {
            action: Action::Deny(Errno::EACCES),
            label: "default".into(),
        });
        rules.append(&mut policy.rules);
        policy.rules = rules;
    }
    if args.deny_net {
        policy.network =
            Some(NetDefault { action: Action::Deny(Errno::EACCES), label: "--deny-net".into() });
        if policy.name == "null" {
            policy.name = "deny-net".into();
        }
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut fs_rules = Vec::new();
    for (option, list, access) in [
        ("--hide", &args.hide, FsAccess::Hide),
        ("--rw", &args.rw, FsAccess::Allow(Access::R.with(Access::W))),
        ("--exec", &args.exec, FsAccess::Allow(Access::R.with(Access::X))),
        ("--ro", &args.ro, FsAccess::Allow(Access::R)),
    ] {
        for v in list {
            let rule = FsRule::new(format!("{option} {v}"), v, access, None, &cwd, home.as_deref())
                .map_err(|message| PolicyError::Option {
                    option: option.into(),
                    value: v.clone(),
                    message,
                })?;
            fs_rules.push(Rule::Fs(rule));
        }
    }
    if !fs_rules.is_empty() {
        if policy.name == "null" {
            policy.name = "command line".into();
            policy.confine_processes = true;
        }
        // In front: the first rule on a path decides it.
        fs_rules.append(&mut policy.rules);
        policy.rules = fs_rules;
    }
    if args.private_tmp {
        policy.private_tmp = true;
        policy.confine_processes = true;
    }
    // Compiles, or says why not.
    crate::policy::Engine::new(&policy, crate::policy::audit::Sink::none())?;
    Ok(policy)
}

/// The policy `--policy v` names: a file (with a `/` or ending in `.toml`) or a built-in one.
fn named_policy(v: &str) -> Result<Policy, PolicyError> {
    if v.contains('/') || v.ends_with(".toml") {
        return crate::policy::file::load(v);
    }
    Policy::builtin(v).ok_or_else(|| PolicyError::Option {
        option: "--policy".into(),
        value: v.into(),
        message: format!(
            "no built-in policy of that name (built-ins: {}); for a file, write ./{v}",
            crate::policy::BUILTINS.iter().map(|b| b.0).collect::<Vec<_>>().join(", ")
        ),
    })
}

fn environment(args: &RunArgs) -> Vec<Vec<u8>> {
    let mut env: Vec<(OsString, OsString)> =
        if args.env_clear { Vec::new() } else { std::env::vars_os().collect() };
    for kv in &args.env {
        let b = kv.as_bytes();
        let (k, v) = match b.iter().position(|&c| c == b'=') {
            Some(i) => {
                (OsStr::from_bytes(&b[..i]).to_owned(), OsStr::from_bytes(&b[i + 1..]).to_owned())
            }
            None => (kv.clone(), OsString::new()),
        };
        env.retain(|(ek, _)| *ek != k);
        env.push((k, v));
    }
    env.into_iter()
        .map(|(k, v)| {
            let mut e = k.into_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        })
        .collect()
}

/// Entry point of the `sandbox` binary; returns the exit status (or does not return when the
/// program dies of a signal).
pub fn main() -> i32 {
    // A panic is a bug of the supervisor, never the program's doing: it ends the whole
    // sandbox with the runtime's status (a panicking thread would otherwise leave its program
    // thread stopped forever), after a line that says so.
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "sandbox: internal error: the supervisor (not the program) panicked in thread {}: \
             {info}",
            crate::sys::gettid()
        );
        crate::sys::exit_now(EXIT_RUNTIME)
    }));
    let cli = Cli::parse();
    if std::env::var_os("SANDBOX_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("SANDBOX_LOG"))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let args = match cli.command {
        Command::Run(args) => args,
        Command::Policy(PolicyCommand::List) => {
            for (name, what) in crate::policy::BUILTINS {
                println!("{name:<10} {what}");
            }
            return 0;
        }
        Command::Policy(PolicyCommand::Show { policy }) => {
            return match named_policy(&policy) {
                Ok(p) => {
                    print!("{}", crate::policy::show::render(&p));
                    0
                }
                Err(e) => {
                    eprintln!("sandbox: {e}");
                    2
                }
            };
        }
        Command::Restore(args) => return restore_main(&args),
        Command::Checkpoint { pid, output, leave_running } => {
            return match crate::checkpoint::save::request(pid, &output, leave_running) {
                Ok((true, m)) => {
                    eprintln!("sandbox: {pid}: {m}");
                    0
                }
                Ok((false, m)) => {
                    eprintln!("sandbox: {pid}: {m}");
                    1
                }
                Err(e) => {
                    eprintln!("sandbox: {e}");
                    EXIT_RUNTIME
                }
            };
        }
        Command::Image(ImageCommand::Inspect { image }) => {
            return match crate::checkpoint::image::read(&image) {
                Ok(img) => {
                    print!("{}", crate::checkpoint::inspect::describe(&img));
                    0
                }
                Err(e) => {
                    eprintln!("sandbox: {e}");
                    1
                }
            };
        }
    };
    let learn = match &args.learn {
        None => None,
        Some(file) => {
            if let Some(o) = policy_option_given(&args.policy)
                .or(args.checkpoint.checkpoint_on.map(|_| "--checkpoint-on"))
            {
                eprintln!(
                    "sandbox: --learn runs the program under the null policy and writes the                      policy it learned: it cannot be combined with {o}; drop one of them (use                      the learned file with --policy FILE afterwards)"
                );
                return 2;
            }
            match crate::policy::learn::check_target(file) {
                Ok(abs) => Some(abs),
                Err(e) => {
                    eprintln!("sandbox: {e}");
                    return 2;
                }
            }
        }
    };
    let policy = if learn.is_some() {
        Policy::null()
    } else {
        match policy_of(&args.policy) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("sandbox: {e}");
                return 2;
            }
        }
    };
    let name = args.argv[0].clone();
    let envp = environment(&args);
    let search = envp.iter().rev().find_map(|e| e.strip_prefix(b"PATH=")).map(OsStr::from_bytes);
    let path = match resolve(&name, search) {
        Ok(p) => p,
        Err(e) => {
            let msg = std::io::Error::from_raw_os_error(e.errno);
            let name = name.to_string_lossy();
            eprintln!("sandbox: {name}: {}", strip_os_error(&msg.to_string()));
            if args.trace.as_deref() == Some(OsStr::new("-")) && args.argv.len() > 1 {
                // `--trace FILE PROGRAM`: the file was taken for the program.
                eprintln!("sandbox: (for a trace file, write --trace={name})");
            }
            return if e.errno == libc::ENOENT { 127 } else { 126 };
        }
    };
    if args.no_vdso {
        crate::vdso::disable();
    }
    let opts = RunOptions {
        path: path.clone(),
        argv: args.argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
        envp,
        trace: args.trace.clone().map(PathBuf::from),
        quiet: args.quiet,
        switchless: !args.no_switchless,
        default_policy: args.policy.policy.is_none() && learn.is_none(),
        learn,
        keep_tmp: args.policy.keep_tmp,
        policy,
        audit: audit_of(&args.policy),
        checkpoint_on: args.checkpoint.checkpoint_on.zip(args.checkpoint.output.clone()),
        landlock: landlock_of(&args.policy),
    };
    match crate::run(&opts) {
        Ok(never) => match never {},
        Err(SandboxError::Exec(e)) => {
            eprintln!("sandbox: {e}");
            e.shell_status()
        }
        Err(e) => {
            eprintln!("sandbox: {e}");
            EXIT_RUNTIME
        }
    }
}

fn landlock_of(p: &PolicyArgs) -> crate::landlock_layer::Mode {
    use crate::landlock_layer::Mode;
    match p.landlock.as_str() {
        "require" => Mode::Require,
        "off" => Mode::Off,
        _ => Mode::Auto,
    }
}

/// The first policy option given, if any (for `--learn`, which takes none).
fn policy_option_given(p: &PolicyArgs) -> Option<&'static str> {
    [
        // `--policy null` is what a learning run runs under: saying so is no conflict.
        (p.policy.as_deref().is_some_and(|v| v != "null"), "--policy"),
        (!p.ro.is_empty(), "--ro"),
        (!p.rw.is_empty(), "--rw"),
        (!p.exec.is_empty(), "--exec"),
        (!p.hide.is_empty(), "--hide"),
        (p.private_tmp, "--private-tmp"),
        (p.keep_tmp, "--keep-tmp"),
        (!p.allow_connect.is_empty(), "--allow-connect"),
        (!p.allow_bind.is_empty(), "--allow-bind"),
        (!p.allow_send.is_empty(), "--allow-send"),
        (!p.allow_unix.is_empty(), "--allow-unix"),
        (p.deny_net, "--deny-net"),
        (p.net.is_some(), "--net"),
        (p.audit_log.is_some(), "--audit-log"),
        (p.audit_allowed, "--audit-allowed"),
        (p.stats, "--stats"),
    ]
    .into_iter()
    .find_map(|(given, name)| given.then_some(name))
}

fn audit_of(p: &PolicyArgs) -> AuditOptions {
    AuditOptions { log: p.audit_log.clone(), allowed: p.audit_allowed, stats: p.stats }
}

/// `sandbox restore`.
fn restore_main(args: &RestoreArgs) -> i32 {
    let policy = match policy_of(&args.policy) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("sandbox: {e}");
            return 2;
        }
    };
    let opts = crate::checkpoint::restore::RestoreOptions {
        image: args.image.clone(),
        policy,
        audit: audit_of(&args.policy),
        quiet: args.quiet,
        switchless: !args.no_switchless,
        allow_changed_files: args.allow_changed_files,
        checkpoint_on: args.checkpoint.checkpoint_on.zip(args.checkpoint.output.clone()),
        landlock: landlock_of(&args.policy),
    };
    match crate::checkpoint::restore::restore(&opts) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("sandbox: {e}");
            EXIT_RUNTIME
        }
    }
}

fn strip_os_error(s: &str) -> &str {
    s.rfind(" (os error").map_or(s, |i| &s[..i])
}

/// `SIGSEGV` and friends.
pub fn signal_name(sig: i32) -> String {
    // asm-generic/signal.h numbering on x86-64; strace's names.
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match sig {
        1..=31 => NAMES[sig as usize - 1].to_string(),
        32..=64 => format!("SIGRT_{}", sig - 32),
        _ => format!("signal {sig}"),
    }
}
