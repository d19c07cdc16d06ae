//! `sandbox policy show NAME|FILE`: a policy written out as a policy file (TOML) that
//! [`super::file::parse`] reads back to the same rules, with each rule's origin as a comment.

use std::fmt::Write;

use super::firewall::{NetRule, Target};
use super::fs::{FsAccess, FsRule};
use super::{Action, Policy, Rule, syscall_names};

/// `s` as a TOML basic string (quotes, backslashes and control characters escaped).
pub(crate) fn quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04X}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn errno_line(a: Action) -> String {
    match a {
        Action::Deny(e) => format!("errno = {}\n", quote(e.name())),
        _ => String::new(),
    }
}

fn net_rule(out: &mut String, r: &NetRule) {
    let _ = writeln!(out, "\n[[network.rule]]   # {}", r.label);
    let ops: Vec<String> = super::endpoint::Op::ALL
        .iter()
        .filter(|o| r.ops.has(**o))
        .map(|o| quote(o.name()))
        .collect();
    let _ = writeln!(out, "op = [{}]", ops.join(", "));
    if r.action != Action::Allow {
        let _ = writeln!(out, "action = {}", quote(r.action.name()));
        out.push_str(&errno_line(r.action));
    }
    match &r.target {
        Target::Ip { nets, ports } => {
            let _ = writeln!(out, "protocol = {}", quote(r.protocol.name()));
            let nets: Vec<String> = nets.iter().map(|n| quote(&n.to_string())).collect();
            let _ = writeln!(out, "address = [{}]", nets.join(", "));
            let _ = writeln!(out, "port = {}", quote(&ports.to_string()));
        }
        Target::UnixPath(None) => out.push_str("family = \"unix-path\"\n"),
        Target::UnixPath(Some(m)) => {
            let mut p = String::from_utf8_lossy(&m.path).into_owned();
            if m.subtree {
                p.push('/');
            }
            let _ = writeln!(out, "path = {}", quote(&p));
        }
        Target::UnixAbstract(None) => out.push_str("family = \"unix-abstract\"\n"),
        Target::UnixAbstract(Some(n)) => {
            let _ = writeln!(out, "abstract = {}", quote(&String::from_utf8_lossy(n)));
        }
    }
    if let Some(l) = r.local_ports {
        let _ = writeln!(out, "local-port = {}", quote(&l.to_string()));
    }
}

fn fs_rule(out: &mut String, r: &FsRule) {
    let access = match r.access {
        FsAccess::Hide => "hide".to_string(),
        FsAccess::Allow(a) if a == super::fs::Access::NONE => "none".to_string(),
        FsAccess::Allow(a) => a.letters(),
    };
    let _ = writeln!(out, "\n[[filesystem.rule]]   # {} ({})", r.label, r.given);
    let _ = writeln!(out, "path = {}", quote(&String::from_utf8_lossy(&r.path)));
    let _ = writeln!(out, "access = {}", quote(&access));
    if let Some(e) = r.errno {
        let _ = writeln!(out, "errno = {}", quote(e.name()));
    }
}

/// The policy as a policy file.
pub fn render(p: &Policy) -> String {
    let mut out =
        format!("# The policy `{}`, as a policy file (README.md, \"Policies\").\n", p.name);
    if !p.confine_processes {
        out.push_str(
            "# Processes are not confined (the null policy): this file would confine them.\n",
        );
    }
    match &p.network {
        None => out.push_str("# [network]: not mediated (no [network] table).\n"),
        Some(d) => {
            let _ = writeln!(out, "\n[network]   # {}", d.label);
            let _ = writeln!(out, "default = {}", quote(d.action.name()));
            out.push_str(&errno_line(d.action));
            let kinds: Vec<String> = p
                .rules
                .iter()
                .filter_map(|r| match r {
                    Rule::Socket(s) => Some(quote(&s.kind.name())),
                    _ => None,
                })
                .collect();
            if !kinds.is_empty() {
                let _ = writeln!(out, "sockets = [{}]", kinds.join(", "));
            }
            for r in &p.rules {
                if let Rule::Net(n) = r {
                    net_rule(&mut out, n);
                }
            }
        }
    }
    let calls: Vec<&super::SyscallRule> = p
        .rules
        .iter()
        .filter_map(|r| if let Rule::Syscall(s) = r { Some(s) } else { None })
        .collect();
    if !calls.is_empty() || p.syscall_default.is_some() {
        out.push_str("\n[syscalls]\n");
        let name_of = |c: &super::SyscallRule| syscall_names::NAMES.get(usize::from(c.nr)).copied();
        if let Some(d) = &p.syscall_default {
            let _ =
                writeln!(out, "# every call not allowed here: {} ({})", d.action.name(), d.label);
            out.push_str(&errno_line(d.action));
            let allowed: Vec<String> = calls
                .iter()
                .filter(|c| c.action == Action::Allow)
                .filter_map(|c| name_of(c))
                .map(quote)
                .collect();
            let _ = writeln!(out, "allow = [{}]", allowed.join(", "));
        }
        for c in calls {
            if p.syscall_default.is_some() && c.action == Action::Allow {
                continue;
            }
            let name = syscall_names::NAMES.get(usize::from(c.nr)).copied().unwrap_or("?");
            let _ = writeln!(out, "\n[[syscalls.rule]]   # {}", c.label);
            let _ = writeln!(out, "call = {}", quote(name));
            let _ = writeln!(out, "action = {}", quote(c.action.name()));
            out.push_str(&errno_line(c.action));
        }
    }
    if p.mediates_files() || p.private_tmp {
        out.push_str("\n[filesystem]\n");
        if p.private_tmp {
            out.push_str("private-tmp = true\n");
        }
        for r in &p.rules {
            if let Rule::Fs(f) = r {
                fs_rule(&mut out, f);
            }
        }
    } else {
        out.push_str("# [filesystem]: not mediated (no [filesystem] table).\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_read_back_to_the_same_rules() {
        for (name, _) in super::super::BUILTINS {
            let p = Policy::builtin(name).unwrap();
            let text = render(&p);
            let back = super::super::file::parse("shown.toml", &text)
                .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
            let strip = |p: &Policy| -> Vec<String> {
                p.rules
                    .iter()
                    .map(|r| match r {
                        Rule::Net(n) => {
                            format!("{:?}{:?}{:?}{:?}", n.action, n.ops, n.protocol, n.target)
                        }
                        Rule::Fs(f) => format!("{:?}{:?}{:?}", f.path, f.access, f.errno),
                        Rule::Socket(s) => format!("{:?}", s.kind),
                        Rule::Syscall(s) => format!("{:?}{:?}", s.nr, s.action),
                    })
                    .collect()
            };
            assert_eq!(strip(&p), strip(&back), "{name}:\n{text}");
            assert_eq!(p.network.map(|n| n.action), back.network.map(|n| n.action), "{name}");
            assert_eq!(p.private_tmp, back.private_tmp, "{name}");
        }
    }

    #[test]
    fn an_allow_list_reads_back() {
        let text =
            "[syscalls]\ndeny = [\"ptrace\"]\nerrno = \"EPERM\"\nallow = [\"read\", \"write\"]\n";
        let p = super::super::file::parse("a.toml", text).unwrap();
        let shown = render(&p);
        assert!(shown.contains("allow = [\"read\", \"write\"]"), "{shown}");
        let back = super::super::file::parse("shown.toml", &shown)
            .unwrap_or_else(|e| panic!("{e}\n{shown}"));
        let calls = |p: &Policy| -> Vec<(u16, Action)> {
            let mut v: Vec<_> = p
                .rules
                .iter()
                .filter_map(
                    |r| if let Rule::Syscall(s) = r { Some((s.nr, s.action)) } else { None },
                )
                .collect();
            v.sort_by_key(|c| c.0);
            v
        };
        assert_eq!(calls(&p), calls(&back), "{shown}");
        assert_eq!(
            p.syscall_default.map(|d| d.action),
            back.syscall_default.map(|d| d.action),
            "{shown}"
        );
    }
}
