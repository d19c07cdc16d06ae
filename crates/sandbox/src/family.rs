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

/// A slot's value: the pid in the low 32 bits, the low 32 bits of its start time (clock ticks
/// after boot, `/proc/PID/stat` field 22) above: a pid the kernel gave to another process after
/// a member died without leaving (`SIGKILL`) does not match its slot.
fn slot_of(pid: i32, start: u64) -> u64 {
    u64::from(pid as u32) | (start & 0xffff_ffff) << 32
}

/// The start time of process `pid` (`/proc/PID/stat` field 22), if it exists.
fn start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, which may hold spaces and parentheses: field 3 on.
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Adds `pid` (a child just forked).
pub fn add(pid: i32) {
    let Some(t) = TABLE.get() else { return };
    if contains(pid) {
        return;
    }
    let Some(start) = start_time(pid) else { return };
    for slot in t.iter() {
        if slot
            .compare_exchange(0, slot_of(pid, start), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
}

/// Removes this process (it is ending).
pub fn leave() {
    let Some(t) = TABLE.get() else { return };
    let me = std::process::id();
    for slot in t.iter() {
        let v = slot.load(Ordering::Acquire);
        if v != 0 && v as u32 == me {
            let _ = slot.compare_exchange(v, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}

/// Whether `slot`, holding `v` for pid `pid`, is still that process; a stale slot (the process
/// is gone, or its pid now names another) is emptied.
fn live(slot: &AtomicU64, v: u64, pid: i32) -> bool {
    if start_time(pid).is_some_and(|st| slot_of(pid, st) == v) {
        return true;
    }
    let _ = slot.compare_exchange(v, 0, Ordering::AcqRel, Ordering::Relaxed);
    false
}

/// Whether `pid` is a process of this sandbox.
pub fn contains(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    if pid as u32 == std::process::id() {
        return true;
    }
    TABLE.get().is_some_and(|t| {
        t.iter().any(|s| {
            let v = s.load(Ordering::Acquire);
            v != 0 && v as u32 == pid as u32 && live(s, v, pid)
        })
    })
}

/// The processes of this sandbox.
pub fn members() -> Vec<i32> {
    let mut v: Vec<i32> = TABLE
        .get()
        .map(|t| {
            t.iter()
                .filter_map(|s| {
                    let v = s.load(Ordering::Acquire);
                    let pid = v as u32 as i32;
                    (v != 0 && pid > 0 && live(s, v, pid)).then_some(pid)
                })
                .collect()
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_live_only_for_the_process_that_filled_it() {
        let me = std::process::id() as i32;
        let start = start_time(me).expect("our own /proc/PID/stat");
        let ok = AtomicU64::new(slot_of(me, start));
        assert!(live(&ok, ok.load(Ordering::Relaxed), me));
        // The same pid with another start time: a process that reused a dead member's pid.
        let reused = AtomicU64::new(slot_of(me, start + 1));
        assert!(!live(&reused, reused.load(Ordering::Relaxed), me));
        assert_eq!(reused.load(Ordering::Relaxed), 0, "a stale slot is emptied");
        assert_eq!(slot_of(me, start) as u32, me as u32);
    }
}
