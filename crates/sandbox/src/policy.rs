//! Policies: what the program may do. A policy sees every supported system call before its
//! arguments are validated and forwarded, and may refuse it with an errno.

use crate::errno::Errno;

/// A policy's decision about one system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Validate and carry out the call.
    Allow,
    /// Return this errno to the program without carrying out the call.
    Deny(Errno),
}

/// A sandbox policy.
pub trait Policy: Send + std::fmt::Debug {
    /// The policy's name, for messages (and for choosing one on the command line once there
    /// is more than one).
    fn name(&self) -> &'static str;
    /// Decides about call `nr` (`name`) with raw arguments `args`.
    fn check(&mut self, nr: u64, name: &'static str, args: &[u64; 6]) -> Verdict;
    /// A copy for a forked child (which keeps its parent's policy).
    fn boxed_clone(&self) -> Box<dyn Policy>;
}

/// The null policy: every supported call is allowed (and still validated).
#[derive(Clone, Copy, Debug, Default)]
pub struct NullPolicy;

impl Policy for NullPolicy {
    fn name(&self) -> &'static str {
        "null"
    }

    fn check(&mut self, _nr: u64, _name: &'static str, _args: &[u64; 6]) -> Verdict {
        Verdict::Allow
    }

    fn boxed_clone(&self) -> Box<dyn Policy> {
        Box::new(*self)
    }
}
