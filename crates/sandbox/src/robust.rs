//! Robust futex lists (`set_robust_list(2)`): what Linux does for a thread that ends while it
//! holds a robust mutex, so that the next locker gets `EOWNERDEAD` instead of waiting forever.
//!
//! Linux walks the list in `exit_robust_list` / `handle_futex_death` (kernel/futex/core.c) when
//! a thread exits, when it calls `execve`, and for every thread of a process that dies. The
//! host kernel cannot do it for the program: the host thread's own list is glibc's (the
//! runtime's), and handing the kernel the program's list would let the program point it at
//! runtime memory. So the supervisor walks it, at the same moments, over program memory only.
//!
//! The list (`struct robust_list_head`, 24 bytes, include/uapi/linux/futex.h):
//! `{ list.next, futex_offset, list_op_pending }`; each entry's first word is the next
//! entry's address, bit 0 marking a PI futex; the futex word lives at `entry + futex_offset`.
//!
//! One difference from Linux: the word is updated with a copy, not a `cmpxchg`, to
//! `FUTEX_WAITERS | FUTEX_OWNER_DIED` (Linux keeps `FUTEX_WAITERS` only if it was set), and a
//! waiter is always woken. While the dead owner's TID is in the word, no other thread can take
//! the lock; a locker can only add `FUTEX_WAITERS` meanwhile, and the unconditional bit and
//! wake-up make sure no such waiter is lost. The cost is at most one spare `FUTEX_WAKE` at the
//! next unlock.

/// `FUTEX_WAITERS` (include/uapi/linux/futex.h).
pub const FUTEX_WAITERS: u32 = 0x8000_0000;
/// `FUTEX_OWNER_DIED`.
pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
/// `FUTEX_TID_MASK`.
pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// `ROBUST_LIST_LIMIT`: at most this many entries are walked (a circular list ends too).
pub const ROBUST_LIST_LIMIT: usize = 2048;
/// `sizeof(struct robust_list_head)` on x86-64.
pub const HEAD_SIZE: u64 = 24;

/// Program memory as the walk sees it; every access may fail (unmapped, outside the program
/// range), which ends the walk as it ends Linux's.
pub trait RobustMem {
    /// The 8 bytes at `addr`.
    fn read_u64(&self, addr: u64) -> Option<u64>;
    /// The 4 bytes at `addr`.
    fn read_u32(&self, addr: u64) -> Option<u32>;
    /// Stores 4 bytes at `addr`; false if it cannot.
    fn write_u32(&self, addr: u64, value: u32) -> bool;
    /// `FUTEX_WAKE` one waiter on `addr`.
    fn wake_one(&self, addr: u64);
}

/// Marks every futex on `tid`'s robust list at `head` that `tid` still holds as
/// `FUTEX_OWNER_DIED` and wakes a waiter (Linux's `exit_robust_list`). `head` 0: nothing.
pub fn release(mem: &impl RobustMem, tid: i32, head: u64) {
    if head == 0 {
        return;
    }
    let at = |off: u64| head.checked_add(off).and_then(|a| mem.read_u64(a));
    let (Some(first), Some(offset), Some(pending)) = (at(0), at(8), at(16)) else {
        return;
    };
    let offset = offset as i64;
    let (pending, pending_pi) = (pending & !1, pending & 1 != 0);
    let (mut entry, mut pi) = (first & !1, first & 1 != 0);
    let mut limit = ROBUST_LIST_LIMIT;
    while entry != head {
        // The next entry is read before this one is released (the owner may free it then);
        // an unreadable one ends the walk after this entry, as in Linux.
        let next = mem.read_u64(entry);
        if entry != pending && !futex_death(mem, entry.wrapping_add_signed(offset), tid, pi, false)
        {
            return;
        }
        let Some(next) = next else { return };
        (entry, pi) = (next & !1, next & 1 != 0);
        limit -= 1;
        if limit == 0 {
            break;
        }
    }
    if pending != 0 {
        futex_death(mem, pending.wrapping_add_signed(offset), tid, pending_pi, true);
    }
}

/// Whether the list at `head` has nothing to release: no entries and no pending operation (or
/// it cannot be read, which ends a walk at once anyway).
pub fn is_empty(mem: &impl RobustMem, head: u64) -> bool {
    if head == 0 {
        return true;
    }
    let (Some(first), Some(pending)) =
        (mem.read_u64(head), head.checked_add(16).and_then(|a| mem.read_u64(a)))
    else {
        return true;
    };
    first & !1 == head && pending & !1 == 0
}

/// Linux's `handle_futex_death` for the word at `uaddr`: false if the walk must stop there.
fn futex_death(mem: &impl RobustMem, uaddr: u64, tid: i32, pi: bool, pending_op: bool) -> bool {
    if !uaddr.is_multiple_of(4) {
        return false;
    }
    let Some(uval) = mem.read_u32(uaddr) else { return false };
    // A lock or unlock interrupted before the word changed: a waiter may be sleeping with no
    // one left to wake it.
    if pending_op && !pi && uval == 0 {
        mem.wake_one(uaddr);
        return true;
    }
    if uval & FUTEX_TID_MASK != tid as u32 {
        return true;
    }
    if !mem.write_u32(uaddr, FUTEX_WAITERS | FUTEX_OWNER_DIED) {
        return false;
    }
    // PI futexes' waiters are the kernel's business (its pi_state goes with the host thread).
    if !pi {
        mem.wake_one(uaddr);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// Memory as a map of 4-byte words; `wakes` records wake-ups.
    #[derive(Default)]
    struct Fake {
        words: RefCell<BTreeMap<u64, u32>>,
        wakes: RefCell<Vec<u64>>,
    }

    impl Fake {
        fn put64(&self, a: u64, v: u64) {
            self.words.borrow_mut().insert(a, v as u32);
            self.words.borrow_mut().insert(a + 4, (v >> 32) as u32);
        }
        fn put32(&self, a: u64, v: u32) {
            self.words.borrow_mut().insert(a, v);
        }
        fn get32(&self, a: u64) -> u32 {
            self.words.borrow()[&a]
        }
    }

    impl RobustMem for Fake {
        fn read_u64(&self, a: u64) -> Option<u64> {
            Some(self.read_u32(a)? as u64 | (self.read_u32(a + 4)? as u64) << 32)
        }
        fn read_u32(&self, a: u64) -> Option<u32> {
            self.words.borrow().get(&a).copied()
        }
        fn write_u32(&self, a: u64, v: u32) -> bool {
            self.words.borrow_mut().get_mut(&a).map(|w| *w = v).is_some()
        }
        fn wake_one(&self, a: u64) {
            self.wakes.borrow_mut().push(a);
        }
    }

    const HEAD: u64 = 0x1000;
    const TID: i32 = 77;

    /// A list at HEAD of entries at `entries` (with `pi` bits), futex word 8 bytes before each
    /// entry (glibc's layout: offset -8 is illustrative), `pending` as list_op_pending.
    fn list(entries: &[(u64, bool)], pending: u64, words: &[u32]) -> Fake {
        let m = Fake::default();
        let link = |(a, pi): (u64, bool)| a | pi as u64;
        m.put64(HEAD, entries.first().map_or(HEAD, |&e| link(e)));
        m.put64(HEAD + 8, (-8i64) as u64);
        m.put64(HEAD + 16, pending);
        for (i, &(a, _)) in entries.iter().enumerate() {
            m.put64(a, entries.get(i + 1).map_or(HEAD, |&e| link(e)));
            m.put32(a - 8, words[i]);
        }
        m
    }

    #[test]
    fn held_futexes_are_marked_and_woken_others_left() {
        let m = list(
            &[(0x2008, false), (0x3008, false), (0x4008, true)],
            0,
            &[TID as u32, 5, TID as u32 | FUTEX_WAITERS],
        );
        release(&m, TID, HEAD);
        assert_eq!(m.get32(0x2000), FUTEX_WAITERS | FUTEX_OWNER_DIED);
        assert_eq!(m.get32(0x3000), 5, "another thread's lock is not touched");
        assert_eq!(m.get32(0x4000), FUTEX_WAITERS | FUTEX_OWNER_DIED);
        assert_eq!(*m.wakes.borrow(), vec![0x2000], "PI waiters are the kernel's to wake");
    }

    #[test]
    fn pending_unlocked_futex_gets_a_wake_up() {
        let m = list(&[(0x2008, false)], 0x5008, &[0]);
        m.put32(0x5000, 0);
        release(&m, TID, HEAD);
        assert_eq!(*m.wakes.borrow(), vec![0x5000]);
    }

    #[test]
    fn pending_entry_on_the_list_is_handled_once() {
        let m = list(&[(0x2008, false)], 0x2008, &[TID as u32]);
        release(&m, TID, HEAD);
        assert_eq!(m.get32(0x2000), FUTEX_WAITERS | FUTEX_OWNER_DIED);
        assert_eq!(m.wakes.borrow().len(), 1);
    }

    #[test]
    fn circular_list_stops_at_the_limit() {
        let m = list(&[(0x2008, false)], 0, &[TID as u32]);
        m.put64(0x2008, 0x2008); // points at itself, never back at the head
        release(&m, TID, HEAD);
        assert_eq!(m.get32(0x2000), FUTEX_WAITERS | FUTEX_OWNER_DIED);
        assert_eq!(m.wakes.borrow().len(), 1, "later visits find the word no longer held");
    }

    #[test]
    fn unreadable_or_misaligned_entries_end_the_walk() {
        let m = list(&[(0x2008, false), (0x3008, false)], 0, &[TID as u32, TID as u32]);
        m.put64(0x2008, 0x9_0000); // next is unmapped
        release(&m, TID, HEAD);
        assert_eq!(m.get32(0x2000), FUTEX_WAITERS | FUTEX_OWNER_DIED);
        assert_eq!(m.get32(0x3000), TID as u32);

        let m = list(&[(0x2009, false)], 0, &[TID as u32]);
        release(&m, TID, HEAD);
        assert!(m.wakes.borrow().is_empty());
        release(&m, TID, 0);

        // An entry whose own next pointer cannot be read is still released (then the walk
        // ends), as Linux does.
        let m = list(&[(0x2008, false)], 0, &[TID as u32]);
        m.put64(0x2008, 0x4008);
        m.put32(0x4000, TID as u32);
        release(&m, TID, HEAD);
        assert_eq!(m.get32(0x4000), FUTEX_WAITERS | FUTEX_OWNER_DIED);
    }

    #[test]
    fn heads_at_the_top_of_the_address_space_do_not_overflow() {
        let m = Fake::default();
        release(&m, TID, u64::MAX - 7);
        assert!(is_empty(&m, u64::MAX - 7));
    }

    #[test]
    fn empty_lists_are_recognised() {
        let m = list(&[], 0, &[]);
        assert!(is_empty(&m, HEAD));
        let m = list(&[(0x2008, false)], 0, &[TID as u32]);
        assert!(!is_empty(&m, HEAD));
        let m = list(&[], 0x5008, &[]);
        assert!(!is_empty(&m, HEAD), "a pending operation counts");
    }
}
