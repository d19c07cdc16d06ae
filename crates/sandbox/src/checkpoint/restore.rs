//! Restoring an image in a new sandbox process: the program continues exactly where it was
//! checkpointed, at the same addresses (GVA == HVA: the program range is the same wherever
//! the guest-physical width is the same or larger).
//!
//! Order: the image is read and checked whole ([`image::read`]), the files it refers to are
//! checked unchanged, then the sandbox starts as `run` does (signal handlers, descriptor
//! window, policy, VM), the host is checked (guest-physical width, XSAVE features), memory is
//! rebuilt (each mapping as it was, then its stored pages: private anonymous runs mapped
//! `MAP_PRIVATE` from the image file, copied otherwise), then descriptors, working directory,
//! umask, limits, dispositions and pending signals, and last one vCPU and host thread per
//! thread with its saved state.

use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};

use crate::policy::Engine;
use crate::policy::fs::Need;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::image::{self, Backing, FdKind, FileRef, Image, ImageError, Meta, ThreadRec, unhex};
use crate::errno::Errno;
use crate::mm::{self, Kind};
use crate::process::{Process, Thread};
use crate::signals::{self, Action};
use crate::{AuditOptions, SandboxError, sys};

/// What `sandbox restore` was asked.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// The image.
    pub image: PathBuf,
    /// The policy the restored program runs under.
    pub policy: crate::policy::Policy,
    /// Audit options.
    pub audit: AuditOptions,
    /// No report line on a fatal signal.
    pub quiet: bool,
    /// Switchless calls ([`crate::switchless`]).
    pub switchless: bool,
    /// Use files that changed since the checkpoint as they are now.
    pub allow_changed_files: bool,
    /// `--checkpoint-on SIG -o IMAGE` for the restored program.
    pub checkpoint_on: Option<(i32, PathBuf)>,
    /// The policy's kernel-enforced second layer ([`crate::landlock_layer`]).
    pub landlock: crate::landlock_layer::Mode,
}

/// Why an image cannot be restored here.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The image is unreadable or damaged.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The host's vCPUs lack XSAVE state the image holds.
    #[error(
        "this host's vCPUs lack XSAVE state components the image uses: {missing} (image XCR0 \
         {image:#x}, here {host:#x}); restore it on a host whose CPU has them"
    )]
    XsaveFeatures {
        /// The components, by name.
        missing: String,
        /// The image's XCR0.
        image: u64,
        /// The vCPU's XCR0 here.
        host: u64,
    },
    /// The image's vDSO is not this host's.
    #[error(
        "the program uses the vDSO of the kernel it was checkpointed on, and this host's \
         differs (another kernel), or this host gives programs none; restore it on a host \
         running the same kernel"
    )]
    Vdso,
    /// The host's XSAVE area is larger than the image's.
    #[error(
        "this host's XSAVE area is {host} bytes, larger than the {image} bytes the image was \
         taken with; restore it on a host with the same XSAVE features"
    )]
    XsaveSize {
        /// The image's size.
        image: u32,
        /// The size here.
        host: u32,
    },
    /// The program's addresses do not fit this host's guest-physical width.
    #[error(
        "the image's memory reaches {addr:#x}, which needs a guest-physical address width of \
         at least {need} bits; this host's is {host} bits"
    )]
    PhysWidth {
        /// The highest address.
        addr: u64,
        /// The width it needs.
        need: u8,
        /// The width here.
        host: u8,
    },
    /// A file changed since the checkpoint.
    #[error(
        "{path} changed since the checkpoint ({what}); restore with --allow-changed-files to \
         use it as it is now"
    )]
    FileChanged {
        /// The file.
        path: String,
        /// What changed.
        what: String,
    },
    /// A file the program had open or mapped cannot be opened.
    #[error("cannot open {path}, which the program had open or mapped: {source}")]
    File {
        /// The file.
        path: String,
        /// What the host said.
        source: std::io::Error,
    },
    /// A descriptor cannot be given its number.
    #[error(
        "cannot give the program descriptor {fd} (this sandbox's program limit is {limit}): \
         {errno}; raise the open-file limit (ulimit -n)"
    )]
    Fd {
        /// The descriptor.
        fd: i32,
        /// The program's descriptor limit here.
        limit: u64,
        /// What the host said.
        errno: Errno,
    },
    /// A mapping cannot be made again.
    #[error("cannot map {start:#x}-{end:#x} again: {errno}")]
    Map {
        /// First byte.
        start: u64,
        /// One past the last.
        end: u64,
        /// What the host said.
        errno: Errno,
    },
    /// Pages cannot be put back.
    #[error("cannot put the program's pages back at {addr:#x}: {source}")]
    Pages {
        /// Where.
        addr: u64,
        /// What the host said.
        source: std::io::Error,
    },
    /// The working directory is gone.
    #[error("cannot change to the program's working directory {path}: {source}")]
    Cwd {
        /// The directory.
        path: String,
        /// What the host said.
        source: std::io::Error,
    },
    /// A thread's saved context is not a user context.
    #[error(
        "thread {tid}'s saved context is not a user-mode one (rip {rip:#x} or a segment base \
         outside user space): the image is damaged"
    )]
    Context {
        /// The thread.
        tid: i32,
        /// Its RIP.
        rip: u64,
    },
    /// A vCPU cannot be given its state.
    #[error("cannot load a thread's state into its vCPU: {0}")]
    Vcpu(#[from] dune::VcpuError),
}

impl From<RestoreError> for SandboxError {
    fn from(e: RestoreError) -> SandboxError {
        SandboxError::Restore(Box::new(e))
    }
}

/// XSAVE state components by XCR0 bit.
const XSTATE: [(u32, &str); 12] = [
    (0, "x87"),
    (1, "SSE"),
    (2, "AVX"),
    (3, "MPX bounds registers"),
    (4, "MPX bounds configuration"),
    (5, "AVX-512 opmask"),
    (6, "AVX-512 ZMM_Hi256"),
    (7, "AVX-512 Hi16_ZMM"),
    (9, "PKRU"),
    (17, "AMX tile configuration"),
    (18, "AMX tile data"),
    (19, "APX"),
];

/// The names of the components in `bits`.
pub fn xstate_names(bits: u64) -> String {
    let mut v: Vec<String> = (0..64)
        .filter(|b| bits & (1u64 << b) != 0)
        .map(|b| {
            XSTATE
                .iter()
                .find(|(n, _)| *n == b)
                .map_or_else(|| format!("component {b}"), |(_, s)| s.to_string())
        })
        .collect();
    if v.is_empty() {
        v.push("none".into());
    }
    v.join(", ")
}

/// Checks that a file is as it was at the checkpoint (size and mtime), unless `allow`.
fn check_file(f: &FileRef, allow: bool) -> Result<(), RestoreError> {
    let st = std::fs::metadata(&f.path)
        .map_err(|source| RestoreError::File { path: f.path.clone(), source })?;
    if allow {
        return Ok(());
    }
    if st.size() != f.size {
        let what = format!("its size was {} bytes, now {}", f.size, st.size());
        return Err(RestoreError::FileChanged { path: f.path.clone(), what });
    }
    if (st.mtime(), st.mtime_nsec()) != f.mtime {
        let what = "it was modified (its mtime differs)".to_string();
        return Err(RestoreError::FileChanged { path: f.path.clone(), what });
    }
    Ok(())
}

/// Every file the image refers to (mappings and descriptors).
fn check_files(m: &Meta, allow: bool) -> Result<(), RestoreError> {
    for v in &m.vmas {
        if let Backing::File(f) = &v.backing {
            check_file(f, allow)?;
        }
    }
    for d in &m.fds {
        if let FdKind::File { file, .. } = &d.kind {
            check_file(file, allow)?;
        }
    }
    Ok(())
}

/// The guest-physical width whose program range ([`crate::run`]'s `hi`) reaches `addr`.
fn width_for(addr: u64) -> u8 {
    // hi = 2^(w-1) - GUARD, rounded down to 1 GiB: addr + GUARD must fit below 2^(w-1).
    let need = addr.saturating_add(crate::GUARD);
    (64 - need.saturating_sub(1).leading_zeros()) as u8 + 1
}

/// Restores the image `opts.image` and runs the program to its end; returns only on errors
/// before it continues.
pub fn restore(opts: &RestoreOptions) -> Result<std::convert::Infallible, SandboxError> {
    let img = image::read(&opts.image).map_err(RestoreError::from)?;
    let meta = img.meta.clone();
    let m = &meta;
    check_files(m, opts.allow_changed_files)?;
    let (ignored, engine) = crate::prepare(
        &opts.policy,
        &opts.audit,
        opts.switchless,
        &crate::EngineOptions::default(),
    )?;
    let _ = ignored;
    let vm = dune::Vm::new(crate::vm_config())?;
    let base = vm.layout().base;
    let hi = (base - crate::GUARD) & !((1 << 30) - 1);
    let top = m.vmas.iter().map(|v| v.end).max().unwrap_or(0);
    if top > hi || m.vmas.iter().any(|v| v.start < mm::PROGRAM_LO) {
        return Err(RestoreError::PhysWidth {
            addr: top,
            need: width_for(top),
            host: vm.phys_bits(),
        }
        .into());
    }
    if super::save::host_xsave_size(&vm) > m.host.xsave_size {
        return Err(RestoreError::XsaveSize {
            image: m.host.xsave_size,
            host: super::save::host_xsave_size(&vm),
        }
        .into());
    }
    let mut mm = mm::Mm::new(vm.clone(), mm::PROGRAM_LO, hi, base)
        .map_err(|e| SandboxError::Reserve(e, base))?;
    // The vCPUs before the memory is rebuilt: the XSAVE check needs one.
    let mut vcpus = Vec::with_capacity(m.threads.len());
    let supported = supported_xstate(&vm);
    for t in &m.threads {
        let mut vcpu = vm.create_vcpu()?;
        load_thread(&mut vcpu, t, m.host.xcr0, supported)?;
        vcpus.push(vcpu);
    }
    memory(&mut mm, &img, &engine)?;
    // The image's descriptor has a number of the program's: closed before the program's
    // descriptors take their numbers (the mappings made from it keep the file).
    let Image { file, path: image_path, .. } = img;
    drop(file);
    descriptors(m, &engine)?;
    std::env::set_current_dir(&m.cwd)
        .map_err(|source| RestoreError::Cwd { path: m.cwd.clone(), source })?;
    sys::set_umask(m.umask);
    for l in &m.rlimits {
        sys::setrlimit(l.resource, l.soft, l.hard);
    }
    let exe = PathBuf::from(&m.exe);
    sys::set_thread_name(crate::comm_of(m.exe.as_bytes()));
    let proc = Process::new(vm.clone(), mm, engine, exe, opts.quiet);
    *proc.exe_id.lock().unwrap() = m.exe_id;
    proc.personality.store(m.personality, std::sync::atomic::Ordering::Relaxed);
    for l in &m.rlimit_views {
        let mut v = l.soft.to_ne_bytes().to_vec();
        v.extend_from_slice(&l.hard.to_ne_bytes());
        proc.set_rlimit_view(l.resource, v);
    }
    {
        let mut actions = proc.actions.lock().unwrap();
        for a in &m.actions {
            actions[a.sig as usize] =
                Action { handler: a.handler, flags: a.flags, restorer: a.restorer, mask: a.mask };
        }
        for sig in 1..=64 {
            let a = actions[sig as usize];
            if signals::host_ignores(sig, &a) {
                sys::mirror_disposition(sig, true, a.flags & signals::SA_NOCLDWAIT != 0);
            }
        }
    }
    let proc = Arc::new(proc);
    if let Some((sig, out)) = &opts.checkpoint_on {
        super::save::arm(&proc, *sig, out.clone(), opts.policy.name.clone())
            .map_err(SandboxError::Window)?;
    }
    if let Err(e) = super::save::listen(&proc, opts.policy.name.clone()) {
        tracing::warn!(%e, "no checkpoint channel (sandbox checkpoint PID will not reach it)");
    }
    // Before the program's threads start: they are made inside the domain.
    crate::second_layer(&proc.policy, opts.landlock)?;
    for p in &m.pending {
        sys::post_signal(p.sig, &info_of(&p.info), false);
    }
    // Armed again with what was left of them (the time the program was stopped not counted).
    for (which, t) in &m.itimers {
        if let Err(errno) = sys::setitimer(*which, *t) {
            tracing::warn!(which, %errno, "an interval timer could not be armed again");
        }
    }
    let mut recs = m.threads.iter().cloned().zip(vcpus);
    let (lead_rec, lead_vcpu) = recs.next().expect("image::read checks for a thread");
    let mut go = Vec::new();
    for (rec, vcpu) in recs {
        let proc = proc.clone();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        go.push(tx);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .spawn(move || {
                let mut t = thread_of(proc, vcpu, &rec);
                let _ = ready_tx.send(());
                if rx.recv().is_err() {
                    return;
                }
                t.run();
                t.stop_server();
                let Thread { proc, vcpu, .. } = t;
                proc.idle_vcpus.lock().unwrap().push(vcpu);
            })
            .map_err(SandboxError::Window)?;
        let _ = ready_rx.recv();
    }
    let mut thread = thread_of(proc, lead_vcpu, &lead_rec);
    for tx in go {
        let _ = tx.send(());
    }
    tracing::debug!(image = %image_path.display(), "restored; entering the program");
    thread.run();
    thread.stop_server();
    loop {
        std::thread::park();
    }
}

/// The XSAVE components KVM can hold for a vCPU here (CPUID.(0DH,0) EDX:EAX of
/// `KVM_GET_SUPPORTED_CPUID`), less the AMX tile state, which `dune` never enables.
fn supported_xstate(vm: &dune::Vm) -> u64 {
    let d = vm.host().cpuid(0xd, 0).unwrap_or_default();
    ((u64::from(d.edx) << 32) | u64::from(d.eax)) & !(3 << 17)
}

fn info_of(hex: &str) -> [u8; 128] {
    let mut info = [0u8; 128];
    if let Some(b) = unhex(hex, 128) {
        info.copy_from_slice(&b);
    }
    info
}

/// A registered thread on the calling host thread, with `rec`'s signal state.
fn thread_of(proc: Arc<Process>, vcpu: dune::Vcpu, rec: &ThreadRec) -> Thread {
    let mut t = Thread::new(proc, vcpu);
    t.sigmask = rec.sigmask;
    if let Some(a) = unhex(&rec.altstack, 24) {
        t.altstack.copy_from_slice(&a);
    }
    t.clear_child_tid = rec.clear_child_tid;
    t.robust_list = rec.robust_list;
    t.register();
    t.proc.set_robust_list(t.tid, rec.robust_list.0);
    for p in &rec.pending {
        sys::post_signal(p.sig, &info_of(&p.info), true);
    }
    t
}

/// Gives `vcpu` the thread's registers, segment bases and XSAVE state, after checking that
/// the vCPU's XCR0 covers the image's.
fn load_thread(
    vcpu: &mut dune::Vcpu,
    t: &ThreadRec,
    xcr0: u64,
    supported: u64,
) -> Result<(), RestoreError> {
    let here = vcpu.xcr0()? | supported;
    if xcr0 & !here != 0 {
        return Err(RestoreError::XsaveFeatures {
            missing: xstate_names(xcr0 & !here),
            image: xcr0,
            host: here,
        });
    }
    let r = t.regs;
    // As rt_sigreturn takes a context from the program: canonical user addresses, and only
    // the RFLAGS bits a program may set (no IOPL, no VM86; IF on).
    let user = |a: u64| a < 1 << 47;
    if !user(r[16]) || !user(t.fs_base) || !user(t.gs_base) {
        return Err(RestoreError::Context { tid: t.tid, rip: r[16] });
    }
    let rflags = (r[17] & signals::FIX_EFLAGS) | dune::USER_RFLAGS;
    let regs = dune::Regs {
        rax: r[0],
        rbx: r[1],
        rcx: r[2],
        rdx: r[3],
        rsi: r[4],
        rdi: r[5],
        rsp: r[6],
        rbp: r[7],
        r8: r[8],
        r9: r[9],
        r10: r[10],
        r11: r[11],
        r12: r[12],
        r13: r[13],
        r14: r[14],
        r15: r[15],
        rip: r[16],
        rflags,
    };
    vcpu.set_user_context(&regs)?;
    let mut s = vcpu.sregs()?;
    s.fs.base = t.fs_base;
    s.gs.base = t.gs_base;
    vcpu.set_sregs(&s)?;
    let mut x = vcpu.xsave()?;
    let bytes = unhex(&t.xsave, 4096).unwrap_or_default();
    for (w, c) in x.region.iter_mut().zip(bytes.chunks_exact(4)) {
        *w = u32::from_ne_bytes(c.try_into().unwrap_or([0; 4]));
    }
    vcpu.set_xsave(&x)?;
    Ok(())
}

fn open_file(
    path: &str,
    write: bool,
    need: Need,
    engine: &Engine,
) -> Result<std::fs::File, RestoreError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| RestoreError::File { path: path.to_string(), source })?;
    screen(f.as_raw_fd(), path, need, engine)?;
    Ok(f)
}

/// An image names files by path, and a crafted one could name what the program may never
/// open: the runtime's own objects (`/dev/kvm`, the trace file, by any name) and procfs
/// (whose `self` is the supervisor), or what the policy's filesystem rules refuse the program
/// (the image's paths may lead elsewhere now: a symlink put in their place). Decided on what
/// was opened, as `open` decides.
fn screen(fd: i32, path: &str, need: Need, engine: &Engine) -> Result<(), RestoreError> {
    let refused = |why: &str| RestoreError::File {
        path: path.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, why.to_string()),
    };
    if !matches!(crate::fdwin::runtime_object_of(fd), Ok(None)) {
        return Err(refused("one of the runtime's own files, which the program may not open"));
    }
    if sys::fs_type(fd) == Ok(crate::syscall::procfs::PROC_SUPER_MAGIC) {
        return Err(refused("a /proc file, which an image cannot hold"));
    }
    if engine.fs().is_some() {
        let real = crate::syscall::paths::path_of(fd)
            .map_err(|_| refused("its path cannot be read back"))?;
        let caller = crate::policy::Caller { pid: std::process::id() as i32, tid: sys::gettid() };
        if engine.decide_path(caller, "restore", &real, need).is_err() {
            return Err(refused(&format!(
                "{} is not allowed by the policy's filesystem rules ({})",
                String::from_utf8_lossy(&real),
                need.name()
            )));
        }
    }
    Ok(())
}

/// Every mapping as it was, then its stored pages.
fn memory(mm: &mut mm::Mm, img: &Image, engine: &Engine) -> Result<(), RestoreError> {
    let m = &img.meta;
    let mem = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/proc/self/mem")
        .map_err(|source| RestoreError::Pages { addr: 0, source })?;
    let mut buf = vec![0u8; 1 << 20];
    for v in &m.vmas {
        let len = v.end - v.start;
        let map_err = |errno| RestoreError::Map { start: v.start, end: v.end, errno };
        let share = if v.shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE };
        match &v.backing {
            Backing::File(f) => {
                let write = v.shared && v.prot & libc::PROT_WRITE != 0;
                // The program's executable is mapped as its loader maps it: executed.
                let need = if write {
                    Need::ReadWrite
                } else if f.path == m.exe {
                    Need::Exec
                } else {
                    Need::Read
                };
                let file = open_file(&f.path, write, need, engine)?;
                let id = sys::file_id(file.as_raw_fd()).map_err(map_err)?;
                let kind = Kind::File { offset: f.offset, file: id };
                mm.map_fixed(v.start, len, v.prot, share, file.as_raw_fd(), kind)
                    .map_err(map_err)?;
            }
            Backing::Vvar { offset } => {
                // This host's data pages, where the program had its host's.
                let fits = |h: &&crate::vdso::HostVdso| {
                    offset.is_multiple_of(mm::PAGE)
                        && offset.checked_add(len).is_some_and(|e| e <= h.data_len)
                };
                let h = crate::vdso::host().filter(fits);
                let Some(h) = h.filter(|_| mm.vm().platform().host_tsc) else {
                    return Err(RestoreError::Vdso);
                };
                mm.map_vvar(v.start, len, h.data_start + offset).map_err(map_err)?;
            }
            b => {
                let kind = match b {
                    Backing::Stack => Kind::Stack,
                    Backing::Heap => Kind::Heap,
                    Backing::Vdso => Kind::Vdso,
                    _ => Kind::Anon,
                };
                mm.map_fixed(v.start, len, v.prot, share | libc::MAP_ANONYMOUS, -1, kind)
                    .map_err(map_err)?;
            }
        }
        let anon_private = !v.shared && !matches!(v.backing, Backing::File(_));
        for r in &v.runs {
            if anon_private
                && mm
                    .overlay_from_file(
                        r.addr,
                        r.pages * image::PAGE,
                        v.prot,
                        img.file.as_raw_fd(),
                        r.offset,
                    )
                    .is_ok()
            {
                continue;
            }
            copy_run(&img.file, &mem, r, &mut buf)?;
        }
        if matches!(v.backing, Backing::Vdso) {
            // The program's libc holds addresses into this code, which reads the data pages
            // at offsets of the kernel it came from: it must be this host's.
            let mut text = vec![0u8; len as usize];
            sys::read_program(v.start, &mut text).map_err(|e| RestoreError::Pages {
                addr: v.start,
                source: std::io::Error::from_raw_os_error(e.0),
            })?;
            if !crate::vdso::matches_host(&text) {
                return Err(RestoreError::Vdso);
            }
        }
    }
    mm.brk = mm::Brk { start: m.mem.brk.0, cur: m.mem.brk.1 };
    mm.mmap_top = m.mem.mmap_top.min(mm.range().end);
    let i = m.mem.image;
    mm.image = mm::Image {
        start_code: i[0],
        end_code: i[1],
        start_data: i[2],
        end_data: i[3],
        start_stack: i[4],
        arg_start: i[5],
        arg_end: i[6],
        env_start: i[7],
        env_end: i[8],
        auxv: m.mem.auxv.clone(),
    };
    mm.limits = mm::MemLimits { address_space: m.mem.limits.0, data: m.mem.limits.1 };
    Ok(())
}

/// Copies one run of pages from the image into program memory (through `/proc/self/mem`,
/// which writes whatever the mapping's protection).
fn copy_run(
    file: &std::fs::File,
    mem: &std::fs::File,
    r: &image::Run,
    buf: &mut [u8],
) -> Result<(), RestoreError> {
    let total = r.pages * image::PAGE;
    let mut done = 0;
    while done < total {
        let n = (total - done).min(buf.len() as u64) as usize;
        let addr = r.addr + done;
        let err = |source| RestoreError::Pages { addr, source };
        file.read_exact_at(&mut buf[..n], r.offset + done).map_err(err)?;
        mem.write_all_at(&buf[..n], addr).map_err(err)?;
        done += n as u64;
    }
    Ok(())
}

/// The program's descriptors at their numbers (0–2 are this sandbox's own stdio, unless the
/// program had closed them).
fn descriptors(m: &Meta, engine: &Engine) -> Result<(), RestoreError> {
    let limit = crate::fdwin::window().program_limit().0;
    for std_fd in 0..=2 {
        if !m.fds.iter().any(|d| d.fd == std_fd) {
            sys::close(std_fd);
        }
    }
    // New pipes by their id in the image: both ends, kept in the runtime's window until every
    // descriptor has its number (a number of the program's could be taken over meanwhile).
    let mut pipes: std::collections::BTreeMap<
        u64,
        (crate::fdwin::RuntimeFd, crate::fdwin::RuntimeFd),
    > = std::collections::BTreeMap::new();
    for d in &m.fds {
        let fd_err = |errno| RestoreError::Fd { fd: d.fd, limit, errno };
        if d.fd as u64 >= limit {
            return Err(fd_err(Errno(libc::EMFILE)));
        }
        if let Some(of) = d.dup_of {
            sys::dup_onto(of, d.fd, d.cloexec).map_err(fd_err)?;
            continue;
        }
        if let FdKind::Pipe { id, write, flags, data, size } = &d.kind {
            if !pipes.contains_key(id) {
                let (r, w) = sys::pipe_cloexec().map_err(fd_err)?;
                let win = crate::fdwin::window();
                let r = win
                    .adopt(r)
                    .map_err(|e| fd_err(Errno(e.raw_os_error().unwrap_or(libc::EMFILE))))?;
                let w = win
                    .adopt(w)
                    .map_err(|e| fd_err(Errno(e.raw_os_error().unwrap_or(libc::EMFILE))))?;
                sys::set_pipe_size(w.raw(), *size);
                pipes.insert(*id, (r, w));
            }
            let (r, w) = &pipes[id];
            let end = if *write { w.raw() } else { r.raw() };
            if let Some(bytes) = data.as_deref().and_then(|h| unhex(h, h.len() / 2)) {
                sys::write_all(w.raw(), &bytes).map_err(fd_err)?;
            }
            sys::dup_onto(end, d.fd, d.cloexec).map_err(fd_err)?;
            sys::set_status_flags(d.fd, *flags).map_err(fd_err)?;
            continue;
        }
        let (path, flags, pos) = match &d.kind {
            FdKind::Stdio | FdKind::Pipe { .. } => continue,
            FdKind::File { file, flags, pos } => (&file.path, *flags, Some(*pos)),
            FdKind::Dir { path, flags, pos } => (path, *flags, Some(*pos)),
            FdKind::Device { path, flags } => (path, *flags, None),
        };
        let acc = flags & libc::O_ACCMODE;
        let keep = libc::O_APPEND
            | libc::O_NONBLOCK
            | libc::O_DIRECTORY
            | libc::O_NOATIME
            | libc::O_DIRECT
            | libc::O_SYNC
            | libc::O_DSYNC
            | libc::O_PATH;
        let f = std::fs::OpenOptions::new()
            .read(acc != libc::O_WRONLY)
            .write(acc != libc::O_RDONLY)
            .custom_flags((flags & keep & !libc::O_APPEND) | libc::O_CLOEXEC)
            .append(flags & libc::O_APPEND != 0)
            .open(Path::new(path))
            .map_err(|source| RestoreError::File { path: path.clone(), source })?;
        let need = if flags & libc::O_PATH != 0 {
            Need::Stat
        } else {
            match acc {
                libc::O_WRONLY => Need::Write,
                libc::O_RDWR => Need::ReadWrite,
                _ => Need::Read,
            }
        };
        screen(std::os::fd::AsRawFd::as_raw_fd(&f), path, need, engine)?;
        let raw = f.into_raw_fd();
        sys::dup_onto(raw, d.fd, d.cloexec).map_err(fd_err)?;
        if raw != d.fd {
            sys::close(raw);
        }
        if let Some(pos) = pos {
            sys::lseek(d.fd, pos as i64, libc::SEEK_SET).map_err(fd_err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_xsave_components() {
        assert_eq!(xstate_names(0b111), "x87, SSE, AVX");
        assert_eq!(xstate_names(1 << 18), "AMX tile data");
        assert_eq!(xstate_names(1 << 40), "component 40");
        assert_eq!(xstate_names(0), "none");
    }

    #[test]
    fn width_covers_the_range() {
        // 46 bits: the program range ends at 2^45 - 1 GiB.
        assert_eq!(width_for((1 << 45) - (1 << 30)), 46);
        assert_eq!(width_for(1 << 45), 47);
        assert_eq!(width_for(0x400000), 32);
    }
}
