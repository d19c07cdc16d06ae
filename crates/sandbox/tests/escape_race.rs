//! A time-of-check to time-of-use attack from a second program thread on a nested pointer
//! (tests/c/escape_race.c): the supervisor must copy an iovec array before checking it, so the
//! kernel never sees a pointer that was not checked.
#[macro_use]
mod common;

use common::{Cmd, Link, build_c, run_native, run_sandboxed};

#[test]
fn iovec_flipped_by_another_thread_never_leaks() {
    gated!(iovec_flipped_by_another_thread_never_leaks);
    let prog = build_c("escape_race", Link::Static);
    let native = run_native(&Cmd::new(&prog).host_maps());
    assert_eq!(native.0.code(), Some(2), "natively there is no runtime\n{}", native.0.report());
    if common::selfcheck() {
        return;
    }
    let (out, _dir) = run_sandboxed(&Cmd::new(&prog).host_maps());
    assert_eq!(out.code(), Some(0), "{}", out.report());
    let s = out.stdout_str();
    assert!(
        s.contains("no leak (some writes, some faults)"),
        "both outcomes must occur:\n{}",
        out.report()
    );
}
