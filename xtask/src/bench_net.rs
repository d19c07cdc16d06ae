//! The firewall's cost (`cargo xtask bench`, after the criterion table; `--net-only` for this
//! part alone): lighttpd serving a 4 KiB file natively, in the sandbox under the null policy
//! and under a firewall policy, loaded with wrk from outside; and the cost of one `connect`
//! and of one `send` on a connected UDP socket under the firewall against the null policy
//! (tests/c/net_probe.c's `connect-loop` and `send-loop`, the median of alternating runs),
//! side by side.

use crate::{provision, util};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long wrk loads each server.
const WRK_SECONDS: u32 = 5;
/// Connects per connect-loop run, sends per send-loop run.
const CONNECTS: u32 = 300;
const SENDS: u32 = 3000;
/// Alternating runs of each connect and send measurement (the median is shown).
const ROUNDS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// What the section needs besides the sandbox.
const PACKAGES: &[provision::Package] = &[
    provision::Package { name: "lighttpd", check: provision::Check::File("/usr/sbin/lighttpd") },
    provision::Package { name: "wrk", check: provision::Check::Binary("wrk") },
];

/// A server started for one measurement, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no loopback port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn wait_listening(port: u16, server: &mut Child) -> Result<(), String> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(s)) = server.try_wait() {
            return Err(format!("lighttpd exited before it listened ({s})"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("lighttpd did not listen on {port} within 30 s"))
}

/// Requests per second wrk measured against `port`.
fn wrk(port: u16) -> Result<f64, String> {
    let mut c = util::cmd(
        "wrk",
        ["-t1", "-c8", &format!("-d{WRK_SECONDS}s"), &format!("http://127.0.0.1:{port}/4k.bin")],
    );
    let (ok, out) = util::run_captured(&mut c);
    if !ok {
        return Err(format!("wrk failed:\n{out}"));
    }
    if out.contains("Non-2xx") || out.contains("Socket errors") {
        return Err(format!("wrk saw errors:\n{out}"));
    }
    out.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk's output:\n{out}"))
}

/// lighttpd's requests/s with `prefix` before its command line (nothing: natively; the
/// sandbox without a policy: the null policy).
fn lighttpd(dir: &Path, prefix: &[String]) -> Result<f64, String> {
    let port = free_port()?;
    let conf = dir.join(format!("lighttpd-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "server.document-root = \"{root}\"\nserver.port = {port}\nserver.bind = \"127.0.0.1\"\n\
             server.errorlog = \"{root}/error.log\"\n",
            root = dir.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut cmd = command(prefix, &["/usr/sbin/lighttpd", "-D", "-f", &conf.to_string_lossy()]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    println!("$ {}", util::command_line(&cmd));
    let child = cmd.spawn().map_err(|e| format!("cannot start lighttpd: {e}"))?;
    let mut server = Server(child);
    wait_listening(port, &mut server.0)?;
    wrk(port)
}

fn command(prefix: &[String], program: &[&str]) -> Command {
    let all: Vec<&str> = prefix.iter().map(String::as_str).chain(program.iter().copied()).collect();
    let mut c = Command::new(all[0]);
    c.args(&all[1..]).stdin(Stdio::null());
    c
}

/// The value of `key: N` in a net_probe run.
fn probe_value(cmd: &mut Command, key: &str) -> Result<f64, String> {
    let (ok, out) = util::run_captured(cmd);
    if !ok {
        return Err(format!("net_probe failed:\n{out}"));
    }
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no `{key}` in net_probe's output:\n{out}"))
}

fn build_probe() -> Result<PathBuf, String> {
    let out = util::target_dir().join("bench-net").join("net_probe");
    std::fs::create_dir_all(out.parent().unwrap()).map_err(|e| e.to_string())?;
    let src = util::root().join("crates/sandbox/tests/c");
    util::run_ok(&mut util::cmd(
        "gcc",
        [
            "-O2".as_ref(),
            "-static".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
            "-I".as_ref(),
            src.as_os_str(),
            src.join("net_probe.c").as_os_str(),
            "-lpthread".as_ref(),
        ],
    ))?;
    Ok(out)
}

fn fmt_ratio(a: f64, b: f64) -> String {
    if b > 0.0 { format!("{:.2}×", a / b) } else { "-".into() }
}

/// Runs the section and prints its table.
pub fn main() -> Result<(), String> {
    println!();
    println!(
        "firewall (lighttpd loaded by wrk -t1 -c8 for {WRK_SECONDS} s, once each; connect and \
         send: median of {ROUNDS} alternating runs):"
    );
    provision::provision_packages(PACKAGES)?;
    util::run_ok(&mut util::cmd(
        "cargo",
        ["build", "--release", "-p", "sandbox", "--bin", "sandbox"],
    ))?;
    let sandbox = util::target_dir().join("release").join("sandbox").to_string_lossy().into_owned();
    let probe = build_probe()?;
    let dir = util::target_dir().join("bench-net").join("www");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("4k.bin"), vec![b'x'; 4096]).map_err(|e| e.to_string())?;

    let run = |opts: &[&str]| -> Vec<String> {
        let mut v = vec![sandbox.clone(), "run".to_string()];
        if !opts.iter().any(|o| o.starts_with("--policy")) {
            // Firewall rules on the null policy: the figures are the firewall's alone.
            v.extend(["--policy".to_string(), "null".to_string()]);
        }
        v.extend(opts.iter().map(|s| s.to_string()));
        v.push("--".into());
        v
    };
    // lighttpd: natively, null, and a firewall that allows its bind (and accepts from
    // loopback only, so every accept is decided).
    let native = lighttpd(&dir, &[])?;
    let null = lighttpd(&dir, &run(&[]))?;
    let fw = lighttpd_firewall(&dir, &sandbox)?;

    // connect and send costs: a listener and a UDP sink on loopback.
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let tport = l.local_addr().map_err(|e| e.to_string())?.port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            drop(c);
        }
    });
    let sink = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let uport = sink.local_addr().map_err(|e| e.to_string())?.port();
    std::thread::spawn(move || {
        let mut b = [0u8; 64];
        while sink.recv(&mut b).is_ok() {}
    });
    let allow_c = format!("--allow-connect=127.0.0.1:{tport}/tcp");
    let allow_s = format!("--allow-send=127.0.0.1:{uport}/udp");
    let p = probe.to_string_lossy().into_owned();
    let connect = |opts: &[&str]| -> Result<f64, String> {
        let argv = if opts == ["native"] { Vec::new() } else { run(opts) };
        let (t, n) = (tport.to_string(), CONNECTS.to_string());
        probe_value(
            &mut command(&argv, &[&p, "connect-loop", "127.0.0.1", &t, &n]),
            "ns-per-connect:",
        )
    };
    let send = |opts: &[&str]| -> Result<f64, String> {
        let argv = if opts == ["native"] { Vec::new() } else { run(opts) };
        let (u, n) = (uport.to_string(), SENDS.to_string());
        probe_value(&mut command(&argv, &[&p, "send-loop", "127.0.0.1", &u, &n]), "ns-per-send:")
    };
    // Alternating runs, the median of each: this host drifts between runs.
    let mut c = [Vec::new(), Vec::new(), Vec::new()];
    let mut snd = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..ROUNDS {
        c[0].push(connect(&["native"])?);
        c[1].push(connect(&[])?);
        c[2].push(connect(&[&allow_c])?);
        snd[0].push(send(&["native"])?);
        snd[1].push(send(&[])?);
        snd[2].push(send(&[&allow_s])?);
    }
    let [c_native, c_null, c_fw] = c.map(median);
    let [s_native, s_null, s_fw] = snd.map(median);

    println!();
    println!(
        "| measurement | native | null policy | firewall | firewall / null | firewall − null |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| lighttpd, 4 KiB file (requests/s) | {native:.0} | {null:.0} ({}) | {fw:.0} ({}) | {} | |",
        fmt_ratio(null, native),
        fmt_ratio(fw, native),
        fmt_ratio(fw, null)
    );
    let us = |ns: f64| format!("{:.1} µs", ns / 1000.0);
    println!(
        "| TCP connect on loopback | {} | {} | {} | {} | {} |",
        us(c_native),
        us(c_null),
        us(c_fw),
        fmt_ratio(c_fw, c_null),
        us(c_fw - c_null)
    );
    println!(
        "| send on a connected UDP socket | {} | {} | {} | {} | {} |",
        us(s_native),
        us(s_null),
        us(s_fw),
        fmt_ratio(s_fw, s_null),
        us(s_fw - s_null)
    );
    println!(
        "(ratios in parentheses: against native. Goal: a mediated call costs under 1 µs more than \
         under the null policy, a send on a connected socket nothing more; this host's noise \
         between runs is ±30 %.)"
    );
    Ok(())
}

/// lighttpd under a firewall policy file: its bind and listen allowed, accepts from loopback.
fn lighttpd_firewall(dir: &Path, sandbox: &str) -> Result<f64, String> {
    let port = free_port()?;
    let policy = dir.join(format!("firewall-{port}.toml"));
    std::fs::write(
        &policy,
        format!(
            "[network]\n\n[[network.rule]]\nop = [\"bind\", \"listen\"]\naddress = \"127.0.0.1\"\n\
             port = {port}\n\n[[network.rule]]\nop = \"accept\"\naddress = \"loopback\"\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let conf = dir.join(format!("lighttpd-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "server.document-root = \"{root}\"\nserver.port = {port}\nserver.bind = \"127.0.0.1\"\n\
             server.errorlog = \"{root}/error.log\"\n",
            root = dir.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let argv = vec![
        sandbox.to_string(),
        "run".into(),
        "--policy".into(),
        policy.to_string_lossy().into_owned(),
        "--".into(),
    ];
    let mut cmd = command(&argv, &["/usr/sbin/lighttpd", "-D", "-f", &conf.to_string_lossy()]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    println!("$ {}", util::command_line(&cmd));
    let child = cmd.spawn().map_err(|e| format!("cannot start lighttpd: {e}"))?;
    let mut server = Server(child);
    wait_listening(port, &mut server.0)?;
    wrk(port)
}
