//! Taking a checkpoint: stopping every thread at a consistent point, reading the program's
//! state, writing the image.
//!
//! What is refused, and how: descriptors other than regular files, directories, a few
//! character devices and stdio (pipes, sockets, eventfds, ...), child processes, file
//! mappings of deleted or replaced files. A refusal is printed (`sandbox: checkpoint
//! refused: ...`) and the program carries on as if nothing had happened; so does a failure
//! to write the image. A checkpoint that succeeds ends the sandbox with status 0.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::image::{
    self, ActionRec, Backing, FdKind, FdRec, FileRef, Host, Limit, MemRec, Meta, Pending, Run,
    ThreadRec, VmaRec, hex,
};
use super::{Captured, CheckpointError};
use crate::mm::Kind;
use crate::process::{Process, Stop, Thread};
use crate::signals::Action;
use crate::sys;

/// How long the coordinator waits for every thread to park.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// `--checkpoint-on SIG -o IMAGE`: from now on, `sig` sent to the sandbox by another process
/// checkpoints the program to `out`. Starts the coordinator thread. Call before the program
/// runs.
pub fn arm(proc: &Arc<Process>, sig: i32, out: PathBuf, policy: String) -> std::io::Result<()> {
    // Relative to where the sandbox started, not to where the program may chdir.
    let out = absolute(&out);
    let (rx, tx) = sys::socket_pair().map_err(|e| std::io::Error::from_raw_os_error(e.0))?;
    let rx = crate::fdwin::window().place(rx)?;
    let tx = crate::fdwin::window().place(tx)?;
    // The runtime's: no name opens them.
    crate::fdwin::add_runtime_file(rx)?;
    crate::fdwin::add_runtime_file(tx)?;
    sys::set_checkpoint_signal(sig, tx);
    let proc = proc.clone();
    // Host signals blocked, as in every helper thread: the program's signals go to its threads.
    sys::with_signals_blocked(|_| {
        std::thread::Builder::new().name("checkpoint".into()).spawn(move || {
            while sys::wait_poke(rx) {
                let _ = answer(&proc, &out, &policy, false, true);
            }
        })
    })?;
    Ok(())
}

/// One checkpoint at a time, whoever asks.
static TAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes a checkpoint to `out` and reports it on stderr. With `exit`, success ends the
/// sandbox with status 0, unless `leave_running` (the program goes on); a refusal always lets
/// the program go on. Returns the report line (the request channel sends it to the
/// requester, then ends the sandbox itself).
fn answer(
    proc: &Arc<Process>,
    out: &Path,
    policy: &str,
    leave_running: bool,
    exit: bool,
) -> Result<String, String> {
    let _one = TAKING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let r = match take(proc, out, policy) {
        Ok(s) => {
            let line = format!(
                "checkpoint written to {} ({} threads, {} mappings, {} KiB of pages, image {} \
                 KiB); the program {}",
                out.display(),
                s.threads,
                s.vmas,
                s.page_bytes / 1024,
                s.size / 1024,
                if leave_running { "continues" } else { "is stopped" }
            );
            eprintln!("sandbox: {line}");
            if leave_running {
                proc.ckpt.release();
                return Ok(line);
            }
            proc.trace_line(&format!("+++ checkpointed to {} +++", out.display()));
            if let Some(t) = proc.trace.lock().unwrap().as_mut() {
                t.flush();
            }
            Ok(line)
        }
        Err(e) => {
            eprintln!("sandbox: checkpoint refused: {e}; the program continues");
            proc.ckpt.release();
            Err(format!("checkpoint refused: {e}; the program continues"))
        }
    };
    if r.is_ok() && !leave_running && exit {
        sys::exit_now(0);
    }
    r
}

/// The abstract Unix socket name of the checkpoint channel of sandbox `pid`.
pub fn channel_name(pid: i32) -> String {
    format!("dune-sandbox/checkpoint/{pid}")
}

/// The request channel of `sandbox checkpoint PID`: a Unix socket on the abstract name
/// [`channel_name`] of this sandbox's pid, its descriptors in the runtime's window. A
/// request is served only for a peer with the sandbox's uid (or root) that is not one of the
/// sandbox's processes ([`crate::family`]: the program runs in them). Call before the program
/// runs.
pub fn listen(proc: &Arc<Process>, policy: String) -> std::io::Result<()> {
    let l = sys::abstract_listener(channel_name(std::process::id() as i32).as_bytes())?;
    let proc = proc.clone();
    // Host signals blocked, as in every helper thread: the program's signals go to its threads.
    sys::with_signals_blocked(|_| {
        std::thread::Builder::new().name("checkpoint-channel".into()).spawn(move || {
            loop {
                match sys::accept_in_window(&l) {
                    Ok(s) => {
                        serve(&proc, s, &policy);
                        crate::fdwin::set_transient_runtime_file(None);
                    }
                    Err(e) => {
                        tracing::warn!(%e, "checkpoint channel: accept failed");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })
    })?;
    Ok(())
}

/// The request: `checkpoint v1`, `leave-running 0|1`, the image's absolute path, one per
/// line. The answer: `ok MESSAGE` or `refused MESSAGE`, one line.
fn serve(proc: &Arc<Process>, s: std::os::unix::net::UnixStream, policy: &str) {
    use std::io::{BufRead, Write};
    use std::os::fd::AsRawFd;
    let reply = |ok: bool, msg: &str| {
        let mut w = &s;
        let _ = writeln!(w, "{} {msg}", if ok { "ok" } else { "refused" });
        let _ = w.flush();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut lines = Vec::new();
    let mut r = std::io::BufReader::new(std::io::Read::take(&s, 16 << 10));
    for _ in 0..3 {
        let mut l = String::new();
        if r.read_line(&mut l).is_err() || l.len() > 4096 {
            return reply(false, "malformed request");
        }
        lines.push(l.trim_end_matches('\n').to_string());
    }
    drop(r);
    // The whole request is read first: an answer before it would meet a peer still writing.
    let Some((pid, uid)) = sys::peer_cred(s.as_raw_fd()) else { return };
    if uid != sys::getuid() && uid != 0 {
        return reply(false, "only the sandbox's owner (its uid) may checkpoint it");
    }
    // Not the program, nor a process it forked (one orphaned by its parent is no child of the
    // sandbox any more, but still in the family): the image's path would be the program's
    // choice, written by this thread, outside the policy's rules.
    if pid == std::process::id() as i32 || crate::family::contains(pid) {
        return reply(false, "the sandboxed program cannot checkpoint itself");
    }
    let leave = match (lines[0].as_str(), lines[1].as_str()) {
        ("checkpoint v1", "leave-running 0") => false,
        ("checkpoint v1", "leave-running 1") => true,
        _ => return reply(false, "malformed request (another version of sandbox?)"),
    };
    let out = PathBuf::from(&lines[2]);
    if !out.is_absolute() {
        return reply(false, "the image path must be absolute");
    }
    let res = answer(proc, &out, policy, leave, false);
    match &res {
        Ok(line) => reply(true, line),
        Err(line) => reply(false, line),
    }
    if res.is_ok() && !leave {
        sys::exit_now(0);
    }
}

/// Why `sandbox checkpoint PID` could not ask.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No sandbox listens for that pid.
    #[error("cannot reach sandbox {pid}: {source} (is it a sandbox of this user, still running?)")]
    Connect {
        /// The pid.
        pid: i32,
        /// What the host said.
        source: std::io::Error,
    },
    /// The conversation broke off.
    #[error("sandbox {pid} did not answer: {source}")]
    Io {
        /// The pid.
        pid: i32,
        /// What the host said.
        source: std::io::Error,
    },
}

/// `sandbox checkpoint PID -o IMAGE [--leave-running]`: asks sandbox `pid` through its
/// channel. `Ok((true, message))` when the image was written, `Ok((false, message))` when
/// the sandbox refused.
pub fn request(pid: i32, out: &Path, leave_running: bool) -> Result<(bool, String), RequestError> {
    use std::io::{BufRead, Write};
    use std::os::linux::net::SocketAddrExt;
    let connect = |source| RequestError::Connect { pid, source };
    let io = |source| RequestError::Io { pid, source };
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(channel_name(pid).as_bytes())
        .map_err(connect)?;
    let mut s = std::os::unix::net::UnixStream::connect_addr(&addr).map_err(connect)?;
    let out = absolute(out);
    write!(s, "checkpoint v1\nleave-running {}\n{}\n", u8::from(leave_running), out.display())
        .map_err(io)?;
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line).map_err(io)?;
    let line = line.trim_end();
    match line.split_once(' ') {
        Some(("ok", m)) => Ok((true, m.to_string())),
        Some(("refused", m)) => Ok((false, m.to_string())),
        _ => Err(io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "no answer (the sandbox may have ended)",
        ))),
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// What was written.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// Threads.
    pub threads: usize,
    /// Mappings.
    pub vmas: usize,
    /// Bytes of stored pages.
    pub page_bytes: u64,
    /// Bytes of the image.
    pub size: u64,
}

/// Called by every thread at the top of its run loop while a checkpoint is requested: parks
/// it if it is at a consistent point (see the module documentation of
/// [`crate::checkpoint`]); otherwise it runs on until the next kick.
pub fn at_loop_top(t: &mut Thread) {
    let regs = match t.vcpu.regs() {
        Ok(r) => r,
        Err(e) => return t.proc.ckpt.park(Err(e)),
    };
    let mut ctx = regs;
    match t.stop {
        Stop::Syscall { .. } => {
            // Both trampolines return through RCX, with the program's RFLAGS from R11.
            ctx.rip = regs.rcx;
            ctx.rflags = regs.r11;
        }
        Stop::Interrupted => {
            let l = t.proc.vm.layout();
            if regs.rip >= l.base && regs.rip < l.base + l.len {
                return;
            }
        }
        Stop::Exception(_) => return,
    }
    let state = capture(t, ctx);
    t.proc.ckpt.park(state);
}

fn capture(t: &mut Thread, ctx: dune::Regs) -> Result<Captured, dune::VcpuError> {
    let s = t.vcpu.sregs()?;
    let x = t.vcpu.xsave()?;
    let xsave: Vec<u8> = x.region.iter().flat_map(|w| w.to_ne_bytes()).collect();
    // XCR0, and the components the area holds (XSTATE_BV, at byte 512): on kvm_pvm the guest's
    // XCR0 reads as x87 only while its ring-3 code uses the host's AVX state.
    let xstate_bv = u64::from_le_bytes(xsave[512..520].try_into().unwrap_or([0; 8]));
    let xcr0 = t.vcpu.xcr0()? | xstate_bv;
    // A temporary mask of a call that was rolled back (sigsuspend, ppoll) goes back: the call
    // installs it again when it is made again.
    let sigmask = t.saved_mask.unwrap_or(t.sigmask);
    let pending = sys::peek_pending(true)
        .into_iter()
        .map(|(sig, info)| Pending { sig, info: hex(&info) })
        .collect();
    Ok(Captured {
        rec: ThreadRec {
            tid: t.tid,
            regs: regs_array(&ctx),
            fs_base: s.fs.base,
            gs_base: s.gs.base,
            xsave: hex(&xsave),
            sigmask,
            altstack: hex(&t.altstack),
            clear_child_tid: t.clear_child_tid,
            robust_list: t.robust_list,
            pending,
        },
        xcr0,
    })
}

/// `r` in [`ThreadRec::regs`] order.
pub fn regs_array(r: &dune::Regs) -> [u64; 18] {
    [
        r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12,
        r.r13, r.r14, r.r15, r.rip, r.rflags,
    ]
}

/// Stops every thread, checks what can be stored and writes the image. On error the
/// threads are still parked: the caller releases them.
pub fn take(proc: &Arc<Process>, out: &Path, policy: &str) -> Result<Summary, CheckpointError> {
    let pid = std::process::id() as i32;
    // Children first, before any thread is stopped (a vfork parent would never stop); again
    // below, once no thread can fork any more.
    let children = children_of(pid);
    if !children.is_empty() {
        return Err(CheckpointError::Children { pids: children });
    }
    proc.ckpt.request();
    let live = || proc.live.load(Ordering::SeqCst);
    let parked = proc
        .ckpt
        .wait_all(live, || proc.kick_other_threads(0, false), STOP_WITHIN)
        .map_err(|parked| CheckpointError::Stop { parked, live: live(), within: STOP_WITHIN })?;
    let mut threads = Vec::with_capacity(parked.len());
    for t in parked {
        threads.push(t?);
    }
    // The thread-group leader first: it runs on the restoring sandbox's main thread.
    threads.sort_by_key(|c| c.rec.tid != pid);
    let children = children_of(pid);
    if !children.is_empty() {
        return Err(CheckpointError::Children { pids: children });
    }
    let fds = descriptors()?;
    let mm = proc.mm.lock().unwrap();
    let paths = host_file_paths()?;
    let mut vmas = Vec::new();
    let mut writer = image::Writer::create(out).map_err(|e| write_err(out, e))?;
    let r = memory(&mm, &paths, &mut writer, &mut vmas);
    if let Err(e) = r {
        writer.abandon();
        return Err(e);
    }
    let actions = proc.actions.lock().unwrap();
    let actions: Vec<ActionRec> = (1..=64)
        .filter(|&s| actions[s as usize] != Action::default())
        .map(|s| {
            let a = actions[s as usize];
            ActionRec {
                sig: s,
                handler: a.handler,
                flags: a.flags,
                restorer: a.restorer,
                mask: a.mask,
            }
        })
        .collect();
    let xcr0 = threads.iter().fold(0, |acc, c| acc | c.xcr0);
    let meta = Meta {
        host: host_info(proc, xcr0),
        policy: policy.to_string(),
        exe: utf8("the executable", proc.exe.lock().unwrap().as_os_str())?,
        exe_id: *proc.exe_id.lock().unwrap(),
        cwd: utf8(
            "the working directory",
            std::env::current_dir()
                .map_err(|e| CheckpointError::Read {
                    what: "the working directory".into(),
                    source: e,
                })?
                .as_os_str(),
        )?,
        umask: umask(),
        personality: proc.personality.load(Ordering::Relaxed),
        rlimits: HOST_LIMITS
            .iter()
            .map(|&r| {
                let l = sys::getrlimit(r);
                Limit { resource: r, soft: l.rlim_cur, hard: l.rlim_max }
            })
            .collect(),
        rlimit_views: [libc::RLIMIT_AS, libc::RLIMIT_DATA, libc::RLIMIT_SIGPENDING]
            .iter()
            .map(|&r| {
                let v = proc.rlimit_view(r);
                let q = |i: usize| u64::from_ne_bytes(v[i..i + 8].try_into().unwrap());
                Limit { resource: r, soft: q(0), hard: q(8) }
            })
            .collect(),
        mem: MemRec {
            mmap_top: mm.mmap_top,
            brk: (mm.brk.start, mm.brk.cur),
            image: [
                mm.image.start_code,
                mm.image.end_code,
                mm.image.start_data,
                mm.image.end_data,
                mm.image.start_stack,
                mm.image.arg_start,
                mm.image.arg_end,
                mm.image.env_start,
                mm.image.env_end,
            ],
            auxv: mm.image.auxv.clone(),
            limits: (mm.limits.address_space, mm.limits.data),
        },
        vmas,
        actions,
        pending: sys::peek_pending(false)
            .into_iter()
            .map(|(sig, info)| Pending { sig, info: hex(&info) })
            .collect(),
        threads: threads.into_iter().map(|c| c.rec).collect(),
        fds,
        page_bytes: writer.page_bytes(),
        // Forwarded to the host as they are: the host's timers are the program's.
        itimers: (0..=2)
            .filter_map(|w| sys::getitimer(w).map(|t| (w, t)))
            .filter(|(_, t)| t[2] != 0 || t[3] != 0)
            .collect(),
    };
    drop(mm);
    let page_bytes = writer.page_bytes();
    let size = writer.finish(&meta).map_err(|e| write_err(out, e))?;
    Ok(Summary { threads: meta.threads.len(), vmas: meta.vmas.len(), page_bytes, size })
}

fn write_err(out: &Path, source: std::io::Error) -> CheckpointError {
    CheckpointError::Write { path: out.to_path_buf(), source }
}

/// Host limits that act on the program as they are (README, "Resource limits").
pub const HOST_LIMITS: [u32; 12] = [
    libc::RLIMIT_CPU,
    libc::RLIMIT_FSIZE,
    libc::RLIMIT_CORE,
    libc::RLIMIT_STACK,
    libc::RLIMIT_NPROC,
    libc::RLIMIT_MEMLOCK,
    libc::RLIMIT_LOCKS,
    libc::RLIMIT_MSGQUEUE,
    libc::RLIMIT_NICE,
    libc::RLIMIT_RTPRIO,
    libc::RLIMIT_RTTIME,
    libc::RLIMIT_RSS,
];

fn utf8(what: &'static str, s: &std::ffi::OsStr) -> Result<String, CheckpointError> {
    s.to_str()
        .map(str::to_string)
        .ok_or_else(|| CheckpointError::Path { what, path: s.to_string_lossy().into_owned() })
}

fn first_line_with(file: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find(|l| l.starts_with(key)).map(|l| l[key.len()..].trim().to_string())
}

/// The umask, from `/proc/self/status` (reading it with `umask(2)` would change it).
fn umask() -> u32 {
    first_line_with("/proc/self/status", "Umask:")
        .and_then(|v| u32::from_str_radix(&v, 8).ok())
        .unwrap_or(0o022)
}

fn host_info(proc: &Process, xcr0: u64) -> Host {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default().trim().to_string();
    let cpu = first_line_with("/proc/cpuinfo", "model name")
        .map(|v| v.trim_start_matches(':').trim().to_string())
        .unwrap_or_default();
    Host {
        hostname: read("/proc/sys/kernel/hostname"),
        kernel: read("/proc/sys/kernel/osrelease"),
        cpu,
        phys_bits: proc.vm.phys_bits(),
        xcr0,
        xsave_size: host_xsave_size(&proc.vm),
        pid: std::process::id() as i32,
        time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    }
}

/// Bytes of XSAVE state for the enabled components (CPUID.(0DH,0).EBX).
pub fn host_xsave_size(vm: &dune::Vm) -> u32 {
    vm.host().cpuid(0xd, 0).map_or(512 + 64, |e| e.ebx)
}

/// Host pids whose parent is `pid` (the program's children: the supervisor's helpers are
/// threads, never processes).
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut kids: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                return false;
            };
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            let after = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
            after.split_whitespace().nth(1).and_then(|v| v.parse::<i32>().ok()) == Some(pid)
        })
        .collect();
    kids.sort_unstable();
    kids
}

/// Character devices reopened by path: (major, minor).
const DEVICES: [(u32, u32); 6] = [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0)];

/// The program's descriptors (those below its soft `RLIMIT_NOFILE`; the runtime's sit above).
fn descriptors() -> Result<Vec<FdRec>, CheckpointError> {
    let limit = crate::fdwin::window().program_limit().0.min(i32::MAX as u64) as i32;
    let mut fds = sys::open_fds_below(limit);
    fds.sort_unstable();
    let mut out: Vec<FdRec> = Vec::new();
    // Pipes: inode → (a read end, a write end) among the program's descriptors.
    let mut pipes: BTreeMap<u64, (Option<i32>, Option<i32>)> = BTreeMap::new();
    for &fd in &fds {
        if let Ok(st) = sys::fstat(fd)
            && st.st_mode & libc::S_IFMT == libc::S_IFIFO
            && sys::fd_path(fd).is_some_and(|l| l.starts_with(b"pipe:["))
        {
            let e = pipes.entry(st.st_ino).or_default();
            match sys::fd_status_flags(fd).unwrap_or(0) & libc::O_ACCMODE {
                libc::O_WRONLY => e.1 = e.1.or(Some(fd)),
                _ => e.0 = e.0.or(Some(fd)),
            }
        }
    }
    let mut pipe_data_taken = std::collections::BTreeSet::new();
    for &fd in &fds {
        let cloexec = sys::fd_flags(fd).is_some_and(|f| f & libc::FD_CLOEXEC != 0);
        let Ok(st) = sys::fstat(fd) else { continue };
        let link = sys::fd_path(fd).unwrap_or_default();
        let link = String::from_utf8_lossy(&link).into_owned();
        if fd <= 2 {
            out.push(FdRec { fd, cloexec, kind: FdKind::Stdio, dup_of: None });
            continue;
        }
        let dup_of = out.iter().find(|d| d.fd > 2 && sys::same_description(d.fd, fd)).map(|d| d.fd);
        let flags = sys::fd_status_flags(fd).unwrap_or(0);
        let refuse = |kind: String| Err(CheckpointError::Descriptor { fd, kind });
        if sys::fs_type(fd) == Ok(crate::syscall::procfs::PROC_SUPER_MAGIC) {
            return refuse(format!("a /proc file ({link})"));
        }
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG if link.starts_with('/') && !link.ends_with(" (deleted)") => {
                FdKind::File {
                    file: FileRef {
                        path: link,
                        offset: 0,
                        size: st.st_size as u64,
                        mtime: (st.st_mtime, st.st_mtime_nsec),
                    },
                    flags,
                    pos: sys::lseek(fd, 0, libc::SEEK_CUR).unwrap_or(0),
                }
            }
            libc::S_IFREG => return refuse(format!("a deleted or unnamed file ({link})")),
            libc::S_IFDIR if link.starts_with('/') => FdKind::Dir {
                path: link,
                flags,
                pos: sys::lseek(fd, 0, libc::SEEK_CUR).unwrap_or(0),
            },
            libc::S_IFCHR
                if DEVICES.contains(&(libc::major(st.st_rdev), libc::minor(st.st_rdev)))
                    && link.starts_with("/dev/") =>
            {
                FdKind::Device { path: link, flags }
            }
            libc::S_IFCHR => return refuse(format!("the character device {link}")),
            libc::S_IFIFO if link.starts_with("pipe:[") => {
                let Some(&(Some(r), Some(w))) = pipes.get(&st.st_ino) else {
                    return refuse(format!(
                        "a pipe whose other end is outside the program ({link})"
                    ));
                };
                let data = if dup_of.is_none() && pipe_data_taken.insert(st.st_ino) {
                    let b = sys::pipe_contents(r, w).map_err(|e| CheckpointError::Read {
                        what: format!("the bytes in {link}"),
                        source: std::io::Error::from_raw_os_error(e.0),
                    })?;
                    Some(hex(&b))
                } else {
                    None
                };
                FdKind::Pipe {
                    id: st.st_ino,
                    write: flags & libc::O_ACCMODE == libc::O_WRONLY,
                    flags,
                    data,
                    size: sys::pipe_size(fd).unwrap_or(65536),
                }
            }
            libc::S_IFIFO => return refuse(format!("a FIFO ({link})")),
            libc::S_IFSOCK => return refuse(format!("a socket ({link})")),
            libc::S_IFBLK => return refuse(format!("the block device {link}")),
            _ => return refuse(link),
        };
        out.push(FdRec { fd, cloexec, kind, dup_of });
    }
    Ok(out)
}

/// The path of the file mapped at each host mapping's start, from the supervisor's own
/// `/proc/self/maps` (program mappings are host mappings at the same addresses).
fn host_file_paths() -> Result<BTreeMap<u64, (u64, String)>, CheckpointError> {
    let maps = std::fs::read_to_string("/proc/self/maps")
        .map_err(|e| CheckpointError::Read { what: "/proc/self/maps".into(), source: e })?;
    let mut out = BTreeMap::new();
    for l in maps.lines() {
        let mut it = l.splitn(6, ' ');
        let (Some(range), Some(_), Some(_), Some(_), Some(_)) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        let path = it.next().unwrap_or("").trim_start();
        let Some((s, e)) = range.split_once('-') else { continue };
        let (Ok(s), Ok(e)) = (u64::from_str_radix(s, 16), u64::from_str_radix(e, 16)) else {
            continue;
        };
        if !path.is_empty() {
            out.insert(s, (e, path.to_string()));
        }
    }
    Ok(out)
}

/// The file mapped at `addr`, as the host names it.
fn path_at(paths: &BTreeMap<u64, (u64, String)>, addr: u64) -> Option<&str> {
    let (_, (end, path)) = paths.range(..=addr).next_back()?;
    (addr < *end).then_some(path.as_str())
}

/// pagemap bits (Documentation/admin-guide/mm/pagemap.rst).
const PM_PRESENT: u64 = 1 << 63;
const PM_SWAPPED: u64 = 1 << 62;
const PM_FILE: u64 = 1 << 61;

/// Pages read at once.
const CHUNK_PAGES: u64 = 512;

/// Every mapping, and the pages worth storing: present (or swapped) pages of anonymous
/// memory that are not all zero, and the pages of private file mappings that are no longer
/// the file's (written, hence copied). Shared file mappings keep their contents in the file.
fn memory(
    mm: &crate::mm::Mm,
    paths: &BTreeMap<u64, (u64, String)>,
    w: &mut image::Writer,
    vmas: &mut Vec<VmaRec>,
) -> Result<(), CheckpointError> {
    let read = |what: &str| {
        let what = what.to_string();
        move |source| CheckpointError::Read { what, source }
    };
    let pagemap = std::fs::File::open("/proc/self/pagemap").map_err(read("/proc/self/pagemap"))?;
    // /proc/self/mem reads what the host's protections forbid too (PROT_NONE pages that hold
    // data, as ptrace does).
    let mem = std::fs::File::open("/proc/self/mem").map_err(read("/proc/self/mem"))?;
    let mut entries = vec![0u8; CHUNK_PAGES as usize * 8];
    let mut data = vec![0u8; (CHUNK_PAGES * image::PAGE) as usize];
    for v in mm.vmas() {
        let mapping = |why: String| CheckpointError::Mapping { start: v.start, end: v.end, why };
        let backing = match v.kind {
            Kind::Anon => Backing::Anon,
            Kind::Stack => Backing::Stack,
            Kind::Heap => Backing::Heap,
            Kind::Vdso => Backing::Vdso,
            Kind::Vvar { hva } => {
                let data = crate::vdso::host().map_or(hva, |h| h.data_start);
                Backing::Vvar { offset: hva - data }
            }
            Kind::File { offset, file } => {
                let Some(path) = path_at(paths, v.start) else {
                    return Err(mapping("the host shows no file there".into()));
                };
                if !path.starts_with('/') || path.ends_with(" (deleted)") {
                    return Err(mapping(format!("its file {path} was deleted or has no name")));
                }
                let st = std::fs::metadata(path)
                    .map_err(|e| mapping(format!("its file {path}: {e}")))?;
                use std::os::unix::fs::MetadataExt;
                if st.dev() != file.dev || st.ino() != file.ino {
                    return Err(mapping(format!("its file {path} was replaced")));
                }
                Backing::File(FileRef {
                    path: path.to_string(),
                    offset,
                    size: st.size(),
                    mtime: (st.mtime(), st.mtime_nsec()),
                })
            }
        };
        let file_backed = matches!(backing, Backing::File(_));
        let mut runs: Vec<Run> = Vec::new();
        let stored = !(file_backed && v.shared || matches!(backing, Backing::Vvar { .. }));
        if stored {
            let mut addr = v.start;
            while addr < v.end {
                let n = ((v.end - addr) / image::PAGE).min(CHUNK_PAGES);
                let e = &mut entries[..n as usize * 8];
                pagemap
                    .read_exact_at(e, addr / image::PAGE * 8)
                    .map_err(read("/proc/self/pagemap"))?;
                let flags: Vec<u64> =
                    e.chunks_exact(8).map(|c| u64::from_ne_bytes(c.try_into().unwrap())).collect();
                let wanted = |f: u64| {
                    f & (PM_PRESENT | PM_SWAPPED) != 0 && !(file_backed && f & PM_FILE != 0)
                };
                let mut i = 0;
                while i < n as usize {
                    if !wanted(flags[i]) {
                        i += 1;
                        continue;
                    }
                    let mut j = i;
                    while j < n as usize && wanted(flags[j]) {
                        j += 1;
                    }
                    let at = addr + i as u64 * image::PAGE;
                    let buf = &mut data[..(j - i) * image::PAGE as usize];
                    mem.read_exact_at(buf, at)
                        .map_err(read(&format!("program memory at {at:#x}")))?;
                    for (k, page) in buf.chunks_exact(image::PAGE as usize).enumerate() {
                        if !file_backed && page.chunks_exact(8).all(|c| c == [0u8; 8]) {
                            continue;
                        }
                        let pa = at + k as u64 * image::PAGE;
                        let off = w.page(page).map_err(|e| CheckpointError::Write {
                            path: PathBuf::from("(image)"),
                            source: e,
                        })?;
                        match runs.last_mut() {
                            Some(r)
                                if r.addr + r.pages * image::PAGE == pa
                                    && r.offset + r.pages * image::PAGE == off =>
                            {
                                r.pages += 1
                            }
                            _ => runs.push(Run { addr: pa, pages: 1, offset: off }),
                        }
                    }
                    i = j;
                }
                addr += n * image::PAGE;
            }
        }
        vmas.push(VmaRec {
            start: v.start,
            end: v.end,
            prot: v.prot,
            shared: v.shared,
            backing,
            runs,
        });
    }
    Ok(())
}
