//! Audit lines and statistics.
//!
//! Every denial (and every `log` verdict, and with `--audit-allowed` every allowed decision)
//! is one JSON object on one line, written with one `write(2)` to the audit destination (the
//! sandbox's stderr as it was at start, or `--audit-log FILE`, opened for appending) before
//! the call returns to the program:
//!
//! ```json
//! {"time":"2026-12-02T10:11:12.123456Z","pid":4242,"tid":4243,"syscall":"connect","op":"connect",
//!  "protocol":"tcp","family":"ipv4","address":"10.1.2.3","port":80,"path":null,
//!  "rule":"policy.toml:12","action":"deny","errno":"EACCES"}
//! ```
//!
//! `time` is UTC with microseconds; `pid`/`tid` are the program's process and thread ids;
//! `op` is the firewall operation (`bind`, `connect`, `send`, `listen`, `accept`, `socket`, or
//! null for a system-call rule); `protocol` is `tcp`, `udp`, `unix`, `netlink` or `other`;
//! `family` is `ipv4`, `ipv6`, `unix-path`, `unix-abstract`, `netlink` or `af-N`; `address`
//! is the canonical IP address (IPv4 for IPv4-mapped ones), `port` its port, `path` a unix
//! path (resolved) or `@name` for an abstract name; `rule` is where the deciding rule comes
//! from (`FILE:LINE`, the option that made it, or the default's origin); `action` is `allow`,
//! `deny` or `log`, and `errno` the errno of a denial. Fields that do not apply are `null`.
//!
//! `--stats` counts the decisions of every rule in memory shared by the whole process tree
//! (forked children included) and prints a summary when the first sandboxed process ends.

use std::sync::atomic::AtomicU64;

use serde::Serialize;

use super::endpoint::{Endpoint, SockKind, Transport};
use super::firewall::Request;
use super::{Action, COUNT_ORDER, Caller};

static ROOT: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// Remembers the current process as the first sandboxed one: the `--stats` summary is printed
/// when it ends.
pub fn set_root() {
    let _ = ROOT.set(std::process::id());
}

/// Whether the current process is the first sandboxed one.
pub fn is_root() -> bool {
    ROOT.get() == Some(&std::process::id())
}

/// What an audit line says about the call (the rest comes from the verdict).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// The system call.
    pub syscall: String,
    /// The firewall operation.
    pub op: Option<&'static str>,
    /// The protocol.
    pub protocol: Option<&'static str>,
    /// The family.
    pub family: Option<String>,
    /// The IP address (or netlink port).
    pub address: Option<String>,
    /// The port.
    pub port: Option<u16>,
    /// The unix path, or `@name`.
    pub path: Option<String>,
}

/// A transport's name in audit lines.
pub(crate) fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Tcp => "tcp",
        Transport::Udp => "udp",
        Transport::Unix => "unix",
        Transport::NetlinkRoute => "netlink",
        Transport::Other => "other",
    }
}

/// A unix name as text: UTF-8 where it is, `\xNN` escapes elsewhere.
fn text(b: &[u8]) -> String {
    let mut s = String::new();
    for chunk in b.utf8_chunks() {
        s.push_str(chunk.valid());
        for &x in chunk.invalid() {
            s.push_str(&format!("\\x{x:02x}"));
        }
    }
    s
}

impl Event {
    /// A call a system-call rule decided.
    pub fn call(syscall: &str) -> Event {
        Event { syscall: syscall.into(), ..Event::default() }
    }

    /// A network request.
    pub fn net(syscall: &str, req: &Request<'_>) -> Event {
        let mut e = Event {
            syscall: syscall.into(),
            op: Some(req.op.name()),
            protocol: Some(transport_name(req.transport)),
            family: Some(req.endpoint.family().into()),
            ..Event::default()
        };
        match req.endpoint {
            Endpoint::Ip(ip, port) => {
                e.address = Some(ip.to_string());
                e.port = Some(*port);
            }
            Endpoint::UnixPath(p) => e.path = Some(text(p)),
            Endpoint::UnixAbstract(n) => e.path = Some(format!("@{}", text(n))),
            Endpoint::UnixAutobind => e.path = Some("@".into()),
            Endpoint::Netlink { pid, groups } => e.address = Some(format!("{pid}/{groups:#x}")),
        }
        e
    }

    /// A filesystem decision: `op` (`stat`, `read`, `write`, `exec`, `move`) on `path` as
    /// the host kernel resolved it.
    pub fn fs(syscall: &str, op: &'static str, path: &[u8]) -> Event {
        Event {
            syscall: syscall.into(),
            op: Some(op),
            protocol: None,
            family: Some("file".into()),
            path: Some(text(path)),
            ..Event::default()
        }
    }

    /// A socket of kind `kind` being created or used.
    pub fn socket(syscall: &str, kind: &SockKind) -> Event {
        let family = match kind.domain {
            super::endpoint::AF_INET => "ipv4".to_string(),
            super::endpoint::AF_INET6 => "ipv6".to_string(),
            super::endpoint::AF_UNIX => "unix".to_string(),
            super::endpoint::AF_NETLINK => "netlink".to_string(),
            d => format!("af-{d}"),
        };
        Event {
            syscall: syscall.into(),
            op: Some("socket"),
            protocol: Some(transport_name(kind.transport())),
            family: Some(family),
            address: Some(format!("type={} protocol={}", kind.ty, kind.protocol)),
            ..Event::default()
        }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    pid: i32,
    tid: i32,
    syscall: &'a str,
    op: Option<&'a str>,
    protocol: Option<&'a str>,
    family: Option<&'a str>,
    address: Option<&'a str>,
    port: Option<u16>,
    path: Option<&'a str>,
    rule: &'a str,
    action: &'a str,
    errno: Option<&'a str>,
}

/// The audit line (without its newline) for `ev` decided by `action` under `rule`, at `time`.
pub fn line(
    time: std::time::SystemTime,
    caller: Caller,
    ev: &Event,
    action: Action,
    rule: &str,
) -> String {
    let errno = match action {
        Action::Deny(e) => Some(e.name()),
        _ => None,
    };
    let l = Line {
        time: rfc3339(time),
        pid: caller.pid,
        tid: caller.tid,
        syscall: &ev.syscall,
        op: ev.op,
        protocol: ev.protocol,
        family: ev.family.as_deref(),
        address: ev.address.as_deref(),
        port: ev.port,
        path: ev.path.as_deref(),
        rule,
        action: action.name(),
        errno,
    };
    serde_json::to_string(&l).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// `time` as RFC 3339 UTC with microseconds: `2026-12-02T10:11:12.123456Z`.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let d = time.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Where audit lines go.
#[derive(Debug)]
pub struct Sink {
    /// The descriptor (the runtime's), `None` for nowhere.
    fd: Option<i32>,
    /// `--audit-allowed`: allowed decisions get a line too.
    pub allowed: bool,
    /// `--stats`: count decisions, print a summary at exit.
    pub stats: bool,
}

impl Sink {
    /// Nowhere (tests; the null policy built without options).
    pub fn none() -> Sink {
        Sink { fd: None, allowed: false, stats: false }
    }

    /// Lines to descriptor `fd` (which the caller keeps open for the process's life).
    pub fn to_fd(fd: i32, allowed: bool, stats: bool) -> Sink {
        Sink { fd: Some(fd), allowed, stats }
    }

    /// The descriptor lines go to, if any (the guard keeps it open in its own table).
    pub fn fd(&self) -> Option<i32> {
        self.fd
    }

    /// Writes the line for `ev` (one `write`).
    pub fn write(&self, caller: Caller, ev: &Event, action: Action, rule: &str) {
        let Some(fd) = self.fd else { return };
        let mut l = line(std::time::SystemTime::now(), caller, ev, action, rule);
        l.push('\n');
        crate::sys_net::write_all(fd, l.as_bytes());
    }

    /// Writes free text (the `--stats` summary).
    pub fn write_text(&self, s: &str) {
        if let Some(fd) = self.fd {
            crate::sys_net::write_all(fd, s.as_bytes());
        }
    }
}

/// Decision counters: (allowed, denied) per rule slot, shared across `fork`.
#[derive(Debug)]
pub struct Counters {
    cells: Option<&'static [AtomicU64]>,
}

impl Counters {
    /// No counting.
    pub fn none() -> Counters {
        Counters { cells: None }
    }

    /// Counters for `slots` rules, in memory shared with forked children (none if the
    /// mapping fails).
    pub fn new(slots: usize) -> Counters {
        Counters { cells: crate::sys_net::shared_counters(2 * slots.max(1)) }
    }

    /// Counts one decision of slot `slot`.
    pub fn count(&self, slot: usize, denied: bool) {
        if let Some(c) = self.cells.and_then(|c| c.get(2 * slot + usize::from(denied))) {
            c.fetch_add(1, COUNT_ORDER);
        }
    }

    /// (allowed, denied) of slot `slot`.
    pub fn get(&self, slot: usize) -> (u64, u64) {
        let at = |i: usize| self.cells.and_then(|c| c.get(i)).map_or(0, |c| c.load(COUNT_ORDER));
        (at(2 * slot), at(2 * slot + 1))
    }
}

/// The `--stats` text: a header, then one line per rule: allowed and denied counts, label.
pub fn summary(policy: &str, rows: &[(String, u64, u64)]) -> String {
    let allowed: u64 = rows.iter().map(|r| r.1).sum();
    let denied: u64 = rows.iter().map(|r| r.2).sum();
    let mut s = format!(
        "sandbox: policy {policy}: {} decisions, {allowed} allowed, {denied} denied\n",
        allowed + denied
    );
    for (label, a, d) in rows {
        s.push_str(&format!("sandbox:   {a:>8} allowed {d:>8} denied  {label}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::Errno;
    use crate::policy::endpoint::Op;

    #[test]
    fn dates() {
        let t = |s: u64| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(rfc3339(t(0)), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(t(951_782_400)), "2000-02-29T00:00:00.000000Z");
        assert_eq!(rfc3339(t(1_600_000_000)), "2020-09-13T12:26:40.000000Z");
        let leap = std::time::UNIX_EPOCH + std::time::Duration::from_micros(4_107_542_399_999_999);
        assert_eq!(rfc3339(leap), "2100-02-28T23:59:59.999999Z");
    }

    #[test]
    fn lines_have_every_field() {
        let ep = Endpoint::Ip("10.1.2.3".parse().unwrap(), 80);
        let req = Request {
            op: Op::Connect,
            transport: Transport::Tcp,
            endpoint: &ep,
            local_port: None,
            datagram: false,
        };
        let ev = Event::net("connect", &req);
        let l = line(
            std::time::UNIX_EPOCH,
            Caller { pid: 7, tid: 8 },
            &ev,
            Action::Deny(Errno::EACCES),
            "p.toml:3",
        );
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["time"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(v["pid"], 7);
        assert_eq!(v["tid"], 8);
        assert_eq!(v["syscall"], "connect");
        assert_eq!(v["op"], "connect");
        assert_eq!(v["protocol"], "tcp");
        assert_eq!(v["family"], "ipv4");
        assert_eq!(v["address"], "10.1.2.3");
        assert_eq!(v["port"], 80);
        assert!(v["path"].is_null());
        assert_eq!(v["rule"], "p.toml:3");
        assert_eq!(v["action"], "deny");
        assert_eq!(v["errno"], "EACCES");
        assert!(!l.contains('\n'));
        let ep = Endpoint::UnixAbstract(b"x\0\xff".to_vec());
        let req = Request {
            op: Op::Connect,
            transport: Transport::Unix,
            endpoint: &ep,
            local_port: None,
            datagram: false,
        };
        let v: serde_json::Value = serde_json::from_str(&line(
            std::time::UNIX_EPOCH,
            Caller { pid: 1, tid: 1 },
            &Event::net("connect", &req),
            Action::Log,
            "r",
        ))
        .unwrap();
        assert_eq!(v["path"], "@x\u{0}\\xff");
        assert!(v["errno"].is_null());
        assert_eq!(v["family"], "unix-abstract");
    }
}
