//! `execve` and `execveat`: the image is replaced inside the same sandbox — same pid, same
//! policy, same VM; descriptors stay open except close-on-exec ones; `#!` scripts are followed
//! like the kernel does. Everything that can fail with an error the caller sees is done before
//! the old image is touched.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dune::Regs;

use super::{Ctx, PATH_MAX, check_fd, copy_cstr, read_u64};
use crate::errno::Errno;
use crate::loader;
use crate::policy::fs::Need;
use crate::signals::{self, Action};
use crate::sys::{self, SysResult};

/// `MAX_ARG_STRINGS`.
const MAX_ARG_STRINGS: usize = 0x7fff_ffff;
/// Linux's default argument budget with an 8 MiB stack (a quarter of it).
const ARG_MAX: usize = 2 << 20;

/// Reads a NULL-terminated array of string pointers (argv or envp).
fn read_strings(ctx: &Ctx<'_>, addr: u64, total: &mut usize) -> Result<Vec<Vec<u8>>, Errno> {
    let mut v = Vec::new();
    if addr == 0 {
        return Ok(v);
    }
    for i in 0.. {
        if i >= MAX_ARG_STRINGS {
            return Err(Errno(libc::E2BIG));
        }
        let p = read_u64(ctx.proc(), addr + 8 * i as u64)?;
        if p == 0 {
            break;
        }
        let s = copy_cstr(ctx.proc(), p, 128 << 10)
            .map_err(|e| if e.0 == libc::ENAMETOOLONG { Errno(libc::E2BIG) } else { e })?;
        *total += s.as_bytes().len() + 1 + 8;
        if *total > ARG_MAX {
            return Err(Errno(libc::E2BIG));
        }
        v.push(s.into_bytes());
    }
    Ok(v)
}

pub fn execve(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    exec(ctx, libc::AT_FDCWD as u64, a[0], a[1], a[2], 0)
}

pub fn execveat(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    exec(ctx, a[0], a[1], a[2], a[3], a[4])
}

fn exec(ctx: &mut Ctx<'_>, dirfd: u64, path: u64, argv: u64, envp: u64, flags: u64) -> SysResult {
    if flags & !(libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW) as u64 != 0 {
        return Err(Errno::EINVAL);
    }
    let p = copy_cstr(ctx.proc(), path, PATH_MAX)?;
    let p = super::paths::redirect(ctx.proc(), &p);
    let p = p.as_bytes();
    // What to open, and what the kernel would call it (fs/exec.c alloc_bprm: "/dev/fd/N" or
    // "/dev/fd/N/path" for a descriptor-relative execveat).
    let (file, name, fd_based): (PathBuf, PathBuf, bool) = if p.is_empty() {
        if flags & libc::AT_EMPTY_PATH as u64 == 0 {
            return Err(Errno(libc::ENOENT));
        }
        check_fd(ctx.proc(), dirfd)?;
        let fd = dirfd as i32;
        (PathBuf::from(format!("/proc/self/fd/{fd}")), PathBuf::from(format!("/dev/fd/{fd}")), true)
    } else if super::open::is_own_exe(p) {
        // The program's own executable, not the supervisor's.
        let exe = ctx.proc().exe.lock().unwrap().clone();
        (exe.clone(), exe, false)
    } else if p[0] == b'/' || dirfd as i32 == libc::AT_FDCWD {
        let f = PathBuf::from(std::ffi::OsStr::from_bytes(p));
        (f.clone(), f, false)
    } else {
        check_fd(ctx.proc(), dirfd)?;
        let fd = dirfd as i32;
        let rel = std::ffi::OsStr::from_bytes(p);
        (
            PathBuf::from(format!("/proc/self/fd/{fd}")).join(rel),
            PathBuf::from(format!("/dev/fd/{fd}")).join(rel),
            true,
        )
    };
    let inaccessible =
        fd_based && sys::fd_flags(dirfd as i32).is_some_and(|f| f & libc::FD_CLOEXEC != 0);
    let mut total = 0;
    let argv = read_strings(ctx, argv, &mut total)?;
    let envp = read_strings(ctx, envp, &mut total)?;
    // The program's other threads share the descriptor table and run until the point of no
    // return: each file is moved into the runtime's descriptor window the moment it is opened,
    // so the file checked, read and mapped is the one opened (not one a thread dup2'd over it).
    let held = std::cell::RefCell::new(Vec::new());
    let place = |f: std::fs::File| -> std::io::Result<std::fs::File> {
        use std::os::fd::{FromRawFd, IntoRawFd};
        let fd = crate::fdwin::window().place(f.into_raw_fd())?;
        held.borrow_mut().push(fd);
        #[allow(unsafe_code)]
        // SAFETY: `fd` now holds the file just opened, owned by nothing else.
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        // No name of one of the runtime's files (`/proc/self/fd/N` of the trace file) makes
        // it a program: it is not even read.
        if crate::fdwin::runtime_object_of(fd)
            .map_err(|e| std::io::Error::from_raw_os_error(e.0))?
            .is_some()
        {
            return Err(std::io::Error::from_raw_os_error(libc::EACCES));
        }
        // Under filesystem rules, every file execve opens (the program, a script's
        // interpreter, the ELF interpreter) needs execute access, as the kernel's open_exec
        // needs MAY_EXEC.
        if super::paths::mediated(ctx.proc()) {
            let path = super::paths::path_of(fd)
                .and_then(|p| super::paths::decide(ctx, "execve", &p, Need::Exec))
                .map_err(|e| std::io::Error::from_raw_os_error(e.0));
            path?;
        }
        Ok(file)
    };
    // Each file is at a number of the program's from its open to its move (fdwin's gate).
    let prepared = {
        let _creating = crate::fdwin::window().creating();
        loader::prepare_named(&file, &name, inaccessible, &argv, &place)
    };
    let held = held.into_inner();
    let mut prepared = match prepared {
        Ok(p) => p,
        Err(e) => {
            // The files are closed already: placeholders again.
            for &fd in &held {
                crate::fdwin::window().closed(fd);
            }
            // Below a hidden path every failure is ENOENT (EACCES for a directory, ENOTDIR
            // below a file would tell that it exists).
            let c = std::ffi::CString::new(p).expect("copied as a C string");
            return Err(super::paths::hidden_error(ctx, dirfd, &c, Errno(e.errno())));
        }
    };

    // The point of no return. End the other threads first (de_thread in fs/exec.c), and this
    // thread's switchless server (the new image starts with a fresh one).
    end_other_threads(ctx);
    ctx.thread.stop_server();
    // Linux releases the exec'ing thread's robust futexes too (exec_mm_release).
    ctx.thread.proc.release_robust_list(ctx.thread.tid);
    let proc = ctx.thread.proc.clone();
    let loaded = {
        let mut mm = proc.mm.lock().unwrap();
        mm.clear();
        loader::load_prepared(&mut mm, &mut prepared, &envp)
    };
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => {
            // Too late to return an error: Linux kills the process with SIGSEGV here.
            eprintln!("sandbox: execve: {e}");
            sys::die_by_signal(libc::SIGSEGV, true);
            std::process::exit(128 + libc::SIGSEGV);
        }
    };
    *proc.exe_id.lock().unwrap() = Some(loaded.exe_id);
    sys::set_thread_name(crate::comm_of(name.as_os_str().as_bytes()));
    let regs =
        Regs { rip: loaded.entry, rsp: loaded.sp, rflags: dune::USER_RFLAGS, ..Regs::default() };
    let vcpu = &mut ctx.thread.vcpu;
    let fail = |e: dune::VcpuError| -> Errno {
        tracing::warn!(%e, "resetting the vCPU for execve failed");
        Errno(libc::EIO)
    };
    vcpu.set_user_context(&regs).map_err(fail)?;
    let mut s = vcpu.sregs().map_err(fail)?;
    s.fs.base = 0;
    s.gs.base = 0;
    vcpu.set_sregs(&s).map_err(fail)?;
    let fpu = dune::kvm_bindings::kvm_fpu { fcw: 0x37f, mxcsr: 0x1f80, ..Default::default() };
    vcpu.set_fpu(&fpu).map_err(fail)?;

    // Handlers are reset to the default; ignored signals stay ignored (signal(7)).
    for (sig, act) in proc.actions.lock().unwrap().iter_mut().enumerate().skip(1) {
        if act.handler != signals::SIG_IGN {
            *act = Action::default();
        }
        sys::mirror_disposition(sig as i32, signals::host_ignores(sig as i32, act), false);
    }
    ctx.thread.altstack = [0; 24];
    ctx.thread.altstack[8..12].copy_from_slice(&libc::SS_DISABLE.to_ne_bytes());
    ctx.thread.clear_child_tid = 0;
    ctx.thread.robust_list = (0, 0);
    ctx.thread.start_server();
    close_on_exec(&proc);
    *proc.exe.lock().unwrap() =
        std::fs::canonicalize(&prepared.path).unwrap_or(prepared.path.clone());
    // The executable's files are closed with `prepared`: placeholders again.
    drop(prepared);
    for &fd in &held {
        crate::fdwin::window().closed(fd);
    }
    if let Some(h) = proc.vfork_done.lock().unwrap().take() {
        h.release();
    }
    ctx.replaced = true;
    Ok(0)
}

/// Closes every program descriptor marked close-on-exec (the host never sees a real exec).
fn close_on_exec(proc: &crate::process::Process) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<i32> =
        dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
    for fd in fds {
        if proc.is_runtime_fd(fd) {
            continue;
        }
        if sys::fd_flags(fd).is_some_and(|f| f & libc::FD_CLOEXEC != 0) {
            sys::close(fd);
            crate::fdwin::window().program_closed(fd);
        }
    }
}

/// Makes every other thread of the process exit and waits for them.
/// Fails closed: a thread that does not stop within 10 s (stuck in the host kernel) would run
/// on over the new image, so the process dies instead, as it would of a fatal signal.
fn end_other_threads(ctx: &Ctx<'_>) {
    let proc = &ctx.thread.proc;
    proc.end_other_threads(ctx.thread.tid, Duration::from_secs(10), false);
    let left = proc.live.load(Ordering::SeqCst);
    if left > 1 {
        eprintln!(
            "sandbox: execve: {} other thread(s) did not stop within 10 s; ending the process",
            left - 1
        );
        sys::die_by_signal(libc::SIGKILL, false);
        sys::exit_now(128 + libc::SIGKILL);
    }
    proc.dying.store(false, Ordering::SeqCst);
}
