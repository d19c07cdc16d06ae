//! `sandbox image inspect`: what an image holds, as text.

use std::fmt::Write as _;

use super::image::{Backing, FdKind, Image, PAGE, VERSION};
use super::restore::xstate_names;
use crate::cli::signal_name;

fn prot(p: i32, shared: bool) -> String {
    let b = |bit, c| if p & bit != 0 { c } else { '-' };
    [
        b(libc::PROT_READ, 'r'),
        b(libc::PROT_WRITE, 'w'),
        b(libc::PROT_EXEC, 'x'),
        if shared { 's' } else { 'p' },
    ]
    .iter()
    .collect()
}

fn sigs(mask: u64) -> String {
    let v: Vec<String> =
        (1..=64).filter(|s| mask & (1u64 << (s - 1)) != 0).map(signal_name).collect();
    if v.is_empty() { "none".into() } else { v.join(" ") }
}

/// The text `sandbox image inspect` prints.
pub fn describe(img: &Image) -> String {
    let m = &img.meta;
    let h = &m.host;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "image: {} ({} bytes; format version {VERSION}, x86-64; checksums verified)",
        img.path.display(),
        img.size
    );
    let _ = writeln!(
        o,
        "taken: {} s after the epoch on {} (Linux {}), pid {}",
        h.time, h.hostname, h.kernel, h.pid
    );
    let _ = writeln!(
        o,
        "cpu: {}; guest-physical width {} bits; XCR0 {:#x} ({}); XSAVE area {} bytes",
        h.cpu,
        h.phys_bits,
        h.xcr0,
        xstate_names(h.xcr0),
        h.xsave_size
    );
    let _ = writeln!(o, "policy: {}", m.policy);
    let _ = writeln!(o, "executable: {}", m.exe);
    let _ = writeln!(o, "cwd: {}; umask {:04o}", m.cwd, m.umask);
    let stored: u64 = m.vmas.iter().flat_map(|v| &v.runs).map(|r| r.pages).sum();
    let mapped: u64 = m.vmas.iter().map(|v| v.end - v.start).sum();
    let _ = writeln!(
        o,
        "memory: {} mappings, {} KiB mapped, {} KiB stored in {} pages; brk {:#x}-{:#x}",
        m.vmas.len(),
        mapped / 1024,
        stored * PAGE / 1024,
        stored,
        m.mem.brk.0,
        m.mem.brk.1
    );
    let _ = writeln!(o, "threads: {}", m.threads.len());
    for t in &m.threads {
        let _ = writeln!(
            o,
            "  tid {}: rip {:#x} rsp {:#x} fs_base {:#x}; blocked {}; pending {}",
            t.tid,
            t.regs[16],
            t.regs[6],
            t.fs_base,
            sigs(t.sigmask),
            sigs(t.pending.iter().fold(0, |m, p| m | 1u64 << (p.sig - 1)))
        );
    }
    let handled: u64 = m.actions.iter().fold(0, |acc, a| acc | 1u64 << (a.sig - 1));
    let _ = writeln!(o, "signals: dispositions set for {}", sigs(handled));
    let _ = writeln!(
        o,
        "  pending for the process: {}",
        sigs(m.pending.iter().fold(0, |acc, p| acc | 1u64 << (p.sig - 1)))
    );
    for (which, t) in &m.itimers {
        let name = ["ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF"].get(*which as usize);
        let _ = writeln!(
            o,
            "  {}: {}.{:06} s left, interval {}.{:06} s",
            name.unwrap_or(&"ITIMER_?"),
            t[2],
            t[3],
            t[0],
            t[1]
        );
    }
    let _ = writeln!(o, "mappings:");
    for v in &m.vmas {
        let pages: u64 = v.runs.iter().map(|r| r.pages).sum();
        let what = match &v.backing {
            Backing::Anon => "anonymous".to_string(),
            Backing::Stack => "[stack]".to_string(),
            Backing::Heap => "[heap]".to_string(),
            Backing::Vdso => "[vdso]".to_string(),
            Backing::Vvar { .. } => "[vvar]".to_string(),
            Backing::File(f) => format!("{} @ {:#x}", f.path, f.offset),
        };
        let _ = writeln!(
            o,
            "  {:#014x}-{:#014x} {} {:>8} KiB  {:>7} pages stored  {what}",
            v.start,
            v.end,
            prot(v.prot, v.shared),
            (v.end - v.start) / 1024,
            pages
        );
    }
    let _ = writeln!(o, "descriptors:");
    for d in &m.fds {
        let what = match &d.kind {
            FdKind::Stdio => "stdio (the restoring sandbox's own)".to_string(),
            FdKind::File { file, flags, pos } => {
                format!("file {} (flags {flags:#o}, offset {pos}, size {})", file.path, file.size)
            }
            FdKind::Dir { path, pos, .. } => format!("directory {path} (offset {pos})"),
            FdKind::Device { path, .. } => format!("device {path}"),
            FdKind::Pipe { id, write, data, .. } => format!(
                "{} end of pipe {id} ({} bytes waiting)",
                if *write { "write" } else { "read" },
                data.as_ref().map_or(0, |h| h.len() / 2)
            ),
        };
        let what = match d.dup_of {
            Some(of) => format!("{what}, shared with {of} (dup)"),
            None => what,
        };
        let cloexec = if d.cloexec { ", close-on-exec" } else { "" };
        let _ = writeln!(o, "  {}: {what}{cloexec}", d.fd);
    }
    o
}
