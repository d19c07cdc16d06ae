//! `clone`, `fork`, `vfork`: threads are new vCPUs on new host threads of the same VM; new
//! processes are host `fork`s whose child builds its own VM (KVM binds a VM to the `mm` that
//! created it) over the identical memory and resumes the copied vCPU state with RAX = 0.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use dune::Regs;

use super::Ctx;
use crate::errno::Errno;
use crate::process::{Process, Stop, Thread};
use crate::sys::{self, SysResult};

const CSIGNAL: u64 = 0xff;
const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_THREAD: u64 = 0x1_0000;
const CLONE_SYSVSEM: u64 = 0x4_0000;
const CLONE_SETTLS: u64 = 0x8_0000;
const CLONE_PARENT_SETTID: u64 = 0x10_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
const CLONE_DETACHED: u64 = 0x40_0000;
const CLONE_CHILD_SETTID: u64 = 0x100_0000;

pub fn clone(ctx: &mut Ctx<'_>, a: &[u64; 6]) -> SysResult {
    // x86-64 argument order: flags, newsp, parent_tid, child_tid, tls.
    let (flags, stack, ptid, ctid, tls) = (a[0], a[1], a[2], a[3], a[4]);
    if flags & CLONE_THREAD != 0 {
        new_thread(ctx, flags, stack, ptid, ctid, tls)
    } else if flags & CLONE_VM != 0 && flags & CLONE_VFORK == 0 {
        // A second process sharing memory without being a thread: not supported.
        Err(Errno::EINVAL)
    } else {
        fork_process(ctx, flags, stack, ptid, ctid)
    }
}

pub fn fork(ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    fork_process(ctx, libc::SIGCHLD as u64, 0, 0, 0)
}

pub fn vfork(ctx: &mut Ctx<'_>, _a: &[u64; 6]) -> SysResult {
    fork_process(ctx, CLONE_VM | CLONE_VFORK | libc::SIGCHLD as u64, 0, 0, 0)
}

fn io(_: dune::VcpuError) -> Errno {
    Errno(libc::EIO)
}

/// The tid words of `CLONE_PARENT_SETTID`/`CLONE_CHILD_*TID` must be program memory.
fn check_tid_words(ctx: &Ctx<'_>, flags: u64, ptid: u64, ctid: u64) -> Result<(), Errno> {
    if flags & CLONE_PARENT_SETTID != 0 {
        ctx.proc().check(ptid, 4)?;
    }
    if flags & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID) != 0 {
        ctx.proc().check(ctid, 4)?;
    }
    Ok(())
}

/// The calling thread's state as the child starts with it: the program's registers after the
/// call with RAX = 0 (and RSP = `stack` if given), segment bases, and the XSAVE state.
fn child_state(
    ctx: &mut Ctx<'_>,
    stack: u64,
) -> Result<(Regs, dune::kvm_bindings::kvm_sregs, dune::kvm_bindings::kvm_xsave), Errno> {
    let mut regs = ctx.thread.program_regs().map_err(io)?;
    regs.rax = 0;
    if stack != 0 {
        regs.rsp = stack;
    }
    let sregs = ctx.thread.vcpu.sregs().map_err(io)?;
    let xsave = ctx.thread.vcpu.xsave().map_err(io)?;
    Ok((regs, sregs, xsave))
}

/// A thread: `CLONE_VM | CLONE_SIGHAND | CLONE_THREAD`, sharing descriptors and cwd (host
/// threads share both, so `CLONE_FILES` and `CLONE_FS` are required).
fn new_thread(
    ctx: &mut Ctx<'_>,
    flags: u64,
    stack: u64,
    ptid: u64,
    ctid: u64,
    tls: u64,
) -> SysResult {
    let need = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD | CLONE_FS | CLONE_FILES;
    let known = need
        | CLONE_SYSVSEM
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_CLEARTID
        | CLONE_CHILD_SETTID
        | CLONE_DETACHED;
    if flags & need != need || flags & !known != 0 {
        return Err(Errno::EINVAL);
    }
    check_tid_words(ctx, flags, ptid, ctid)?;
    if flags & CLONE_SETTLS != 0 && tls >= 1 << 47 {
        return Err(Errno::EPERM);
    }
    let (regs, sregs, xsave) = child_state(ctx, stack)?;
    let proc = ctx.thread.proc.clone();
    let idle = proc.idle_vcpus.lock().unwrap().pop();
    let mut vcpu = match idle {
        Some(v) => v,
        None => proc.vm.create_vcpu().map_err(|e| {
            tracing::warn!(%e, "creating a vCPU for a new thread failed");
            Errno(libc::EAGAIN)
        })?,
    };
    vcpu.set_user_context(&regs).map_err(io)?;
    let mut s = vcpu.sregs().map_err(io)?;
    s.fs.base = if flags & CLONE_SETTLS != 0 { tls } else { sregs.fs.base };
    s.gs.base = sregs.gs.base;
    vcpu.set_sregs(&s).map_err(io)?;
    vcpu.set_xsave(&xsave).map_err(io)?;
    let mut child = Thread::new(proc, vcpu);
    child.sigmask = ctx.thread.sigmask;
    child.clear_child_tid = if flags & CLONE_CHILD_CLEARTID != 0 { ctid } else { 0 };
    child.stop = Stop::Interrupted;
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    // No name of its own: the host thread inherits its creator's, which is the program
    // thread's name (`comm`), as a new thread's is on Linux (and what /proc shows of it).
    let spawned = std::thread::Builder::new().spawn(move || {
        child.register();
        let _ = tid_tx.send(child.tid);
        if go_rx.recv().is_err() {
            return;
        }
        if flags & CLONE_CHILD_SETTID != 0 {
            let _ = sys::write_program(ctid, &child.tid.to_ne_bytes());
        }
        child.run();
        child.stop_server();
        // The thread exited: its vCPU serves the next new thread.
        let Thread { proc, vcpu, .. } = child;
        proc.idle_vcpus.lock().unwrap().push(vcpu);
    });
    spawned.map_err(|_| Errno(libc::EAGAIN))?;
    let tid = tid_rx.recv().map_err(|_| Errno(libc::EAGAIN))?;
    if flags & CLONE_PARENT_SETTID != 0 {
        let _ = sys::write_program(ptid, &tid.to_ne_bytes());
    }
    let _ = go_tx.send(());
    Ok(tid as u64)
}

/// A new process. `CLONE_VM | CLONE_VFORK` (vfork, posix_spawn) is carried out as a fork whose
/// parent waits until the child has called `execve` or exited, as vfork's parent does.
fn fork_process(ctx: &mut Ctx<'_>, flags: u64, stack: u64, ptid: u64, ctid: u64) -> SysResult {
    let known = CSIGNAL
        | CLONE_VM
        | CLONE_VFORK
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_SETTID
        | CLONE_CHILD_CLEARTID;
    if flags & !known != 0 {
        return Err(Errno::EINVAL);
    }
    let vfork = flags & CLONE_VFORK != 0;
    check_tid_words(ctx, flags, ptid, ctid)?;
    let (regs, sregs, xsave) = child_state(ctx, stack)?;
    let handoff = if vfork { Some(sys::VforkDone::new()?) } else { None };
    let proc = ctx.thread.proc.clone();
    // Hold every lock across fork, so the child inherits none locked by a thread that does not
    // exist there; flush the trace so buffered lines are not written twice.
    // Host signals are blocked across fork, so none is recorded in the child before it forgets
    // the parent's recorded ones (they stay pending in its kernel state and arrive afterwards).
    // Descriptor lists other threads (switchless servers in a tight loop) lock all the time:
    // the child uses copies instead of locks a thread that does not exist there may hold.
    let vm_fds = proc.vm.runtime_fds();
    let pid = sys::with_signals_blocked(|_| {
        // First the namespace lock: a rename or bind holding it takes the gate and the rest;
        // then the gate: a thread holding it may take any of the locks below (fdwin).
        let _ns = crate::nslock::for_fork();
        let _gate = crate::fdwin::window().creating();
        let mut trace = proc.trace.lock().unwrap();
        if let Some(t) = trace.as_mut() {
            t.flush();
        }
        let _mm = proc.mm.lock().unwrap();
        let _actions = proc.actions.lock().unwrap();
        let _threads = proc.threads.lock().unwrap();
        let _exe = proc.exe.lock().unwrap();
        // Read by the child (child_setup): an open in another thread takes it for a moment.
        let _exe_id = proc.exe_id.lock().unwrap();
        let _vf = proc.vfork_done.lock().unwrap();
        let _rl = proc.rlimits_lock();
        let _fdwin = crate::fdwin::window().lock();
        let _reader = crate::hostread::lock();
        let pid = sys::fork()?;
        if pid == 0 {
            sys::clear_pending();
            sys::forget_exit_signals();
        } else {
            // Recorded while host signals are blocked: the child's end cannot come first.
            let exit_signal = (flags & CSIGNAL) as i32;
            if exit_signal != libc::SIGCHLD && !sys::set_exit_signal(pid, exit_signal) {
                tracing::debug!(
                    pid,
                    exit_signal,
                    "exit-signal table full; the child ends with SIGCHLD"
                );
            }
        }
        Ok::<i32, Errno>(pid)
    })?;
    if pid > 0 {
        // A member of the sandbox before the program learns its pid.
        crate::family::add(pid);
        if flags & CLONE_PARENT_SETTID != 0 {
            let _ = sys::write_program(ptid, &pid.to_ne_bytes());
        }
        if let Some(h) = handoff {
            let mask = ctx.thread.sigmask;
            let fatal = ctx.thread.proc.fatal_signals() & !mask;
            h.wait(pid, || sys::pending_signals() & fatal != 0);
        }
        return Ok(pid as u64);
    }
    // The child: the only thread here. Build its own VM over the copied memory.
    let from = FromParent { vm: vm_fds, handoff };
    match child_setup(ctx, &regs, sregs, &xsave, flags, ctid, from) {
        Ok(()) => {
            ctx.replaced = true;
            Ok(0)
        }
        Err(e) => {
            eprintln!("sandbox: fork: the child could not build its VM: {e}");
            std::process::exit(crate::cli::EXIT_RUNTIME);
        }
    }
}

/// What a forked child gets from its parent: a copy of the parent VM's descriptor list taken
/// before the fork (the rest of the runtime's descriptors, the trace file, stay the child's
/// too, in the same window), and a vfork child's hand-off.
struct FromParent {
    vm: Vec<i32>,
    handoff: Option<sys::VforkDone>,
}

fn child_setup(
    ctx: &mut Ctx<'_>,
    regs: &Regs,
    sregs: dune::kvm_bindings::kvm_sregs,
    xsave: &dune::kvm_bindings::kvm_xsave,
    flags: u64,
    ctid: u64,
    FromParent { vm: vm_fds, handoff }: FromParent,
) -> Result<(), String> {
    let old = ctx.thread.proc.clone();
    // Same host, same verdict: skip the platform probe.
    // The parent's /dev/kvm descriptor serves the new VM (duplicated): the program may have
    // dropped the privileges that opening the device takes.
    let kvm_fd = old.vm.host().raw_fd();
    let cfg = dune::VmConfig {
        platform: Some(old.vm.platform()),
        kvm_fd: Some(kvm_fd),
        ..crate::vm_config()
    };
    // The parent VM's descriptors are the parent's business: closed before the new VM needs
    // descriptors of its own, so that a fork works with a full descriptor table, as Linux's
    // fork needs none. (The parent's VM objects in this copy are never used again.)
    for &fd in vm_fds.iter().filter(|&&fd| fd != kvm_fd) {
        sys::close(fd);
        crate::fdwin::window().closed(fd);
    }
    let vm = dune::Vm::new(cfg).map_err(|e| e.to_string())?;
    sys::close(kvm_fd);
    crate::fdwin::window().closed(kvm_fd);
    let mm = old.mm.lock().unwrap().clone_for(vm.clone()).map_err(|e| e.to_string())?;
    let policy = old.policy.clone();
    let exe = old.exe.lock().unwrap().clone();
    let proc = Process::new(vm.clone(), mm, policy, exe, old.quiet);
    *proc.actions.lock().unwrap() = *old.actions.lock().unwrap();
    *proc.exe_id.lock().unwrap() = *old.exe_id.lock().unwrap();
    *proc.trace.lock().unwrap() = old.trace.lock().unwrap().take();
    proc.personality.store(old.personality.load(Ordering::Relaxed), Ordering::Relaxed);
    for r in [libc::RLIMIT_AS, libc::RLIMIT_DATA, libc::RLIMIT_SIGPENDING] {
        proc.set_rlimit_view(r, old.rlimit_view(r).to_vec());
    }
    *proc.vfork_done.lock().unwrap() = handoff;
    super::signalfd::after_fork();
    let mut vcpu = vm.create_vcpu().map_err(|e| e.to_string())?;
    vcpu.set_user_context(regs).map_err(|e| e.to_string())?;
    let mut s = vcpu.sregs().map_err(|e| e.to_string())?;
    s.fs.base = sregs.fs.base;
    s.gs.base = sregs.gs.base;
    vcpu.set_sregs(&s).map_err(|e| e.to_string())?;
    vcpu.set_xsave(xsave).map_err(|e| e.to_string())?;
    // Replace the thread's process and vCPU; the parent's VM objects in this copy are leaked
    // (their descriptors are closed above; dropping them would act on the parent's VM).
    let old_vcpu = std::mem::replace(&mut ctx.thread.vcpu, vcpu);
    std::mem::forget(old_vcpu);
    // The parent's switchless server thread does not exist here; register() starts ours.
    std::mem::forget(ctx.thread.server.take());
    ctx.thread.proc = Arc::new(proc);
    std::mem::forget(old);
    ctx.thread.register();
    ctx.thread.clear_child_tid = if flags & CLONE_CHILD_CLEARTID != 0 { ctid } else { 0 };
    // A new process starts without a robust list (copy_process); glibc registers its own.
    ctx.thread.robust_list = (0, 0);
    if flags & CLONE_CHILD_SETTID != 0 {
        let _ = sys::write_program(ctid, &ctx.thread.tid.to_ne_bytes());
    }
    ctx.thread.stop = Stop::Interrupted;
    Ok(())
}
