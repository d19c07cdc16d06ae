//! Support for tests that need `/dev/kvm`, shared by every crate of the workspace.
//!
//! A KVM test calls [`kvm_or_skip`] first. Where `/dev/kvm` is usable it returns true. Where it
//! is not, the test is recorded as skipped and returns early: its name and the reason go to the
//! file named by `DUNE_SKIP_LOG` (one `name<TAB>reason` line each; `cargo xtask test` prints them
//! in its summary) and to stderr. With `DUNE_REQUIRE_KVM=1` a missing or unusable `/dev/kvm`
//! fails the test instead.

use std::io::Write;

/// Returns whether KVM tests can run; records `test` as skipped when they cannot.
///
/// Panics when `DUNE_REQUIRE_KVM=1` and `/dev/kvm` is unusable.
pub fn kvm_or_skip(test: &str) -> bool {
    let Err(e) = crate::check_kvm() else {
        return true;
    };
    if std::env::var("DUNE_REQUIRE_KVM").is_ok_and(|v| v == "1") {
        panic!("{test}: DUNE_REQUIRE_KVM=1 but /dev/kvm is unusable: {e}");
    }
    record_skip(test, &e.to_string());
    false
}

/// Records `test` as skipped for `reason` (see the module docs).
pub fn record_skip(test: &str, reason: &str) {
    eprintln!("SKIPPED {test}: {reason}");
    if let Ok(path) = std::env::var("DUNE_SKIP_LOG")
        && let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path)
    {
        let _ = writeln!(f, "{test}\t{reason}");
    }
}
