//! The sandbox's own processes ("the family"), for process confinement: under every policy
//! but null the program may signal, wait for and query only the processes started inside the
//! same sandbox (`kill`, `tkill`, `tgkill`, `rt_sigqueueinfo`, `rt_tgsigqueueinfo`,
//! `pidfd_open`, `getpriority`/`setpriority`, `prlimit64` and the `sched_*` calls with a pid,
//! `ioprio_get`/`ioprio_set`, and `/proc/PID` of another process, which is hidden). Another
//! process answers `ESRCH`, as Linux answers for a process that does not exist.
//!
//! The family is a table of process ids in memory shared by every sandboxed process (made
//! before the first `fork`, inherited by each child): a parent adds its child when `fork`
//! returns (before the program sees the child's pid), and a process removes itself when it
//! ends. A process group or `-1` as the target of `kill` means the members of that group (or
//! all members) only.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The most processes one sandbox tracks at once (a fork beyond that is not tracked: its
/// signals and queries are refused, failing closed).
const SLOTS: usize = 4096;

static TABLE: OnceLock<&'static [AtomicU64]> = OnceLock::new();

/// Makes the table and adds this process (the first sandboxed one). Once, before any fork.
pub fn init() {
    if let Some(t) = crate::sys_net::shared_counters(SLOTS) {
        let _ = TABLE.set(t);
        add(std::process::id() as i32);
    }
}

/// Adds `pid` (a child just forked).
pub fn add(pid: i32) {
    let Some(t) = TABLE.get() else { return };
    if contains(pid) {
        return;
    }
    for slot in t.iter() {
        if slot.compare_exchange(0, pid as u64, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            return;
        }
    }
}

/// Removes this process (it is ending).
pub fn leave() {
    let Some(t) = TABLE.get() else { return };
    let me = u64::from(std::process::id());
    for slot in t.iter() {
        let _ = slot.compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// Whether `pid` is a process of this sandbox.
pub fn contains(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    if pid as u32 == std::process::id() {
        return true;
    }
    TABLE.get().is_some_and(|t| t.iter().any(|s| s.load(Ordering::Acquire) == pid as u64))
}

/// The processes of this sandbox.
pub fn members() -> Vec<i32> {
    let mut v: Vec<i32> = TABLE
        .get()
        .map(|t| t.iter().map(|s| s.load(Ordering::Acquire) as i32).filter(|&p| p > 0).collect())
        .unwrap_or_default();
    let me = std::process::id() as i32;
    if !v.contains(&me) {
        v.push(me);
    }
    v
}

/// The thread group of thread `tid` (from `/proc/TID/status`), if it exists.
pub fn tgid_of(tid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix("Tgid:")).and_then(|v| v.trim().parse().ok())
}

/// Whether thread `tid` belongs to a process of this sandbox.
pub fn contains_thread(tid: i32) -> bool {
    contains(tid) || tgid_of(tid).is_some_and(contains)
}
