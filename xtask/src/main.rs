//! `cargo xtask`: builds, provisions and tests the workspace. See README.md.
fn main() {
    eprintln!("usage: cargo xtask <test|bench|run>");
    std::process::exit(2);
}
