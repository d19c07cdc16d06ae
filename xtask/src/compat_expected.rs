//! The tests `cargo xtask compat` expects to pass natively and not in the sandbox.
//!
//! Each entry must be explained by one of the documented differences from Linux in README.md
//! ("Known differences from Linux": a refused call such as `ptrace` or `io_uring`, `vfork` as
//! fork-and-wait, `/proc/self` being the supervisor, ...), and the reason names it. A test that
//! fails because of a sandbox bug does not belong here: it stays a failure until the bug is
//! fixed. An entry whose tests pass sandboxed again is reported as stale, so the list only
//! shrinks.

/// A test, or a group of tests, expected to differ, and why.
#[derive(Debug, Clone, Copy)]
pub struct Expected {
    /// The full test name (`test.test_os.TestScandir.test_attributes`), or a prefix ending in
    /// `*` (`test.test_os.PtraceTests.*`).
    pub test: &'static str,
    /// The documented difference that explains it (which README item), in a few words.
    pub reason: &'static str,
}

impl Expected {
    /// Whether this entry covers the test `name`.
    pub fn matches(&self, name: &str) -> bool {
        match self.test.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == self.test,
        }
    }
}

/// The list. Empty: every test that passes natively must pass sandboxed.
pub const EXPECTED: &[Expected] = &[];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_well_formed() {
        for e in EXPECTED {
            assert!(e.test.starts_with("test.test_"), "{}: not a regrtest name", e.test);
            assert!(!e.test[..e.test.len() - 1].contains('*'), "{}: `*` only at the end", e.test);
            assert!(e.reason.trim().len() >= 10, "{}: give the documented reason", e.test);
        }
    }

    #[test]
    fn exact_and_prefix_matches() {
        let exact = Expected { test: "test.test_os.A.b", reason: "r" };
        assert!(exact.matches("test.test_os.A.b") && !exact.matches("test.test_os.A.bc"));
        let prefix = Expected { test: "test.test_os.A.*", reason: "r" };
        assert!(prefix.matches("test.test_os.A.b") && !prefix.matches("test.test_os.B.b"));
    }
}
