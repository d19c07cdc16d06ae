//! The host side of switchless system calls (see [`trap::switchless`] for the design and the
//! protocol): a [`Mailbox`] handle that a *server* thread uses to take requests a vCPU's stub
//! posted and to answer them, and the normalization of a vCPU stopped inside its stub.
//!
//! Only on hosts whose [`SyscallPath`](crate::SyscallPath) is `Ring3Doorbell` (kvm_pvm), and
//! only while [`VmConfig::switchless`](crate::VmConfig::switchless) is set; elsewhere a mailbox
//! exists but no stub ever posts to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use trap::Syscall;
use trap::switchless::{BOUNCED, CLAIMED, DONE, IDLE, POSTED, mailbox};

use crate::vm::Vm;

/// A handle on one vCPU's mailbox page, for the one thread that serves it. Cheap to clone;
/// keeps the VM (and so the page) alive.
#[derive(Clone, Debug)]
pub struct Mailbox {
    /// Keeps the system area (and so the page) mapped while the handle lives.
    _vm: Arc<Vm>,
    /// HVA (== GVA) of the mailbox page.
    page: u64,
    /// Set by the server from just before it claims a request until just after it answered:
    /// host memory the program cannot write, so a `CLAIMED` the program forged in the mailbox
    /// is never waited for.
    serving: Arc<AtomicBool>,
}

impl Mailbox {
    pub(crate) fn new(vm: Arc<Vm>, page: u64, serving: Arc<AtomicBool>) -> Mailbox {
        Mailbox { _vm: vm, page, serving }
    }

    fn word(&self, offset: u64) -> &AtomicU64 {
        debug_assert!(offset.is_multiple_of(8) && offset < 4096);
        // SAFETY: `page` is a page of the VM's system area (host memory mapped read-write for
        // the VM's whole life, which `self.vm` extends), 8-byte aligned at `offset`. The guest
        // and other host threads access it concurrently, which is what atomics are for; no
        // Rust reference to this memory is ever created other than these atomics.
        unsafe { &*((self.page + offset) as *const AtomicU64) }
    }

    fn hot_word(&self) -> &AtomicU32 {
        // SAFETY: as in `word`; the `hot` flag is a 4-byte aligned u32 (the stub compares it
        // with `cmpl`).
        unsafe { &*((self.page + mailbox::HOT) as *const AtomicU32) }
    }

    /// Says whether a server polls this mailbox. While `false` the stub never posts and every
    /// system call exits to the vCPU thread as usual. Clear it before the serving thread stops
    /// polling; a request posted just before is then withdrawn by the stub or can still be
    /// taken with [`Mailbox::try_claim`].
    pub fn set_hot(&self, hot: bool) {
        self.hot_word().store(u32::from(hot), Ordering::SeqCst);
    }

    /// Whether a request is waiting (a cheap poll; [`Mailbox::try_claim`] decides).
    pub fn posted(&self) -> bool {
        self.word(mailbox::STATE).load(Ordering::Acquire) == POSTED
    }

    /// Takes the waiting request, if any. The returned call's values are the program's, as
    /// untrusted as the registers of a system-call exit; `return_rip` is 0 (unknown here).
    /// After a `Some`, exactly one of [`Mailbox::complete`] or [`Mailbox::bounce`] must follow
    /// (the vCPU spins until then).
    pub fn try_claim(&self) -> Option<Syscall> {
        let state = self.word(mailbox::STATE);
        if state.load(Ordering::Relaxed) != POSTED {
            return None;
        }
        self.serving.store(true, Ordering::SeqCst);
        if state.compare_exchange(POSTED, CLAIMED, Ordering::SeqCst, Ordering::Relaxed).is_err() {
            self.serving.store(false, Ordering::SeqCst);
            return None;
        }
        let nr = self.word(mailbox::NR).load(Ordering::Relaxed);
        let args = std::array::from_fn(|i| {
            self.word(mailbox::ARGS + 8 * i as u64).load(Ordering::Relaxed)
        });
        Some(Syscall { nr, args, return_rip: 0 })
    }

    /// Answers the claimed request with `value` for RAX; the stub returns it to the program.
    pub fn complete(&self, value: u64) {
        self.word(mailbox::RET).store(value, Ordering::Relaxed);
        self.word(mailbox::STATE).store(DONE, Ordering::SeqCst);
        self.serving.store(false, Ordering::SeqCst);
    }

    /// Declines the claimed request: the stub makes it through the doorbell exit instead.
    pub fn bounce(&self) {
        self.word(mailbox::STATE).store(BOUNCED, Ordering::SeqCst);
        self.serving.store(false, Ordering::SeqCst);
    }

    /// Returns the mailbox to its initial state (idle, not hot): for a vCPU that starts
    /// serving a new program thread or image. Only while the vCPU is not running.
    pub fn reset(&self) {
        self.hot_word().store(0, Ordering::SeqCst);
        self.word(mailbox::STATE).store(IDLE, Ordering::SeqCst);
    }

    /// The vCPU thread's side of normalizing a stub stopped while waiting: decides the outcome
    /// of the posted request, waiting while a server carries it out.
    pub(crate) fn settle(&self) -> Settled {
        let state = self.word(mailbox::STATE);
        loop {
            match state.load(Ordering::Acquire) {
                POSTED => {
                    if state
                        .compare_exchange(POSTED, IDLE, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                    {
                        return Settled::NotDone;
                    }
                }
                CLAIMED => {
                    if self.serving.load(Ordering::SeqCst) {
                        std::thread::yield_now();
                    } else if state.load(Ordering::SeqCst) == CLAIMED {
                        // Nobody is serving: the program wrote CLAIMED itself.
                        state.store(IDLE, Ordering::Release);
                        return Settled::NotDone;
                    }
                }
                DONE => return Settled::Done,
                // BOUNCED, withdrawn (the program's RCX) or IDLE again: not carried out.
                _ => {
                    state.store(IDLE, Ordering::Release);
                    return Settled::NotDone;
                }
            }
        }
    }

    pub(crate) fn number(&self) -> u64 {
        self.word(mailbox::NR).load(Ordering::Relaxed)
    }

    pub(crate) fn result(&self) -> u64 {
        self.word(mailbox::RET).load(Ordering::Relaxed)
    }

    pub(crate) fn saved_rsp(&self) -> u64 {
        self.word(mailbox::SAVED_RSP).load(Ordering::Relaxed)
    }

    pub(crate) fn idle(&self) {
        self.word(mailbox::STATE).store(IDLE, Ordering::Release);
    }
}

/// What became of a request whose stub was interrupted while waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Carried out: complete it.
    Done,
    /// Not carried out (and now never will be): roll it back.
    NotDone,
}
