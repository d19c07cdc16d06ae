//! Boots the VT-x rig's ISO in Bochs, headless, and streams the guest's serial console.
//!
//! The serial port is a TCP client (`com1: mode=socket-client`) connecting to a listener this
//! process opens on a free port of 127.0.0.1; every line is printed as it arrives, prefixed with
//! the host seconds since Bochs started, and logged. The run ends when Bochs exits (the guest
//! powers off after its summary line), or is killed: at the wall-clock limit, when the console
//! stays silent too long, when the guest has not reached `/init` in time (Bochs too slow), or on a
//! kernel panic.

use crate::util;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest silence of the serial console before the run counts as hung.
const SILENCE_LIMIT: Duration = Duration::from_secs(240);
/// The guest must reach `/init` within this time (about 20 s at 50 MIPS), else Bochs is too slow.
const INIT_DEADLINE: Duration = Duration::from_secs(240);
/// How long Bochs may take to exit after the guest's summary line (power-off).
const POWEROFF_GRACE: Duration = Duration::from_secs(30);
/// The line `/init` prints first.
pub const INIT_MARK: &str = "VTX-STAGE init";
/// The line `/init` prints last before powering off.
pub const SUMMARY_MARK: &str = "VTX-SUMMARY";

/// How to boot.
#[derive(Debug)]
pub struct Boot<'a> {
    pub iso: &'a Path,
    /// Where bochsrc, the logs and the serial log go.
    pub run_dir: &'a Path,
    /// Bochs CPU model (`corei7_haswell_4770`, `corei7_skylake_x`: VMX; `zambezi`: SVM).
    pub cpu: &'a str,
    /// Emulated processors.
    pub cpus: u32,
    pub ips: u64,
    pub mem_mib: u32,
    pub timeout: Duration,
}

/// Why the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Bochs exited by itself (the guest powered off, or Bochs failed).
    Exited(String),
    /// Killed: the reason.
    Killed(String),
}

/// The serial console of one run.
#[derive(Debug)]
pub struct Console {
    /// (host seconds since Bochs started, line).
    pub lines: Vec<(f64, String)>,
    pub ended: Ended,
    pub wall: f64,
    pub serial_log: PathBuf,
    pub bochs_log: PathBuf,
}

enum Event {
    Line(String),
    Eof,
}

/// Console lines with their host times, and why the watcher gave up on the run (`None`: Bochs
/// exited by itself).
type Watched = (Vec<(f64, String)>, Option<String>);

/// Boots `boot.iso` and returns the console once the run ended.
pub fn run(boot: &Boot<'_>) -> Result<Console, String> {
    let rig = util::root().join("xtask/vtx");
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot open a TCP port for the serial console: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let bochs_log = boot.run_dir.join("bochs.log");
    let serial_log = boot.run_dir.join("serial.log");
    let bochs_out = boot.run_dir.join("bochs.out");
    let out = std::fs::File::create(&bochs_out)
        .map_err(|e| format!("cannot create {}: {e}", bochs_out.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new("bochs-bin");
    // bochs-bin has the internal debugger compiled in and stops at the first instruction: the rc
    // file says "continue". -q: no start menu.
    cmd.arg("-q")
        .arg("-f")
        .arg(rig.join("bochsrc"))
        .arg("-rc")
        .arg(rig.join("bochs.rc"))
        .current_dir(boot.run_dir)
        .env("VTX_ISO", boot.iso)
        .env("VTX_PORT", port.to_string())
        .env("VTX_LOG", &bochs_log)
        .env("VTX_CPU", boot.cpu)
        .env("VTX_CPUS", boot.cpus.to_string())
        .env("VTX_IPS", boot.ips.to_string())
        .env("VTX_MEM", boot.mem_mib.to_string())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    println!("$ {}", util::command_line(&cmd));
    println!(
        "    serial console on 127.0.0.1:{port}; logs in {}; limit {} s",
        boot.run_dir.display(),
        boot.timeout.as_secs()
    );
    let t0 = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "cannot start bochs-bin ({e}): Bochs is missing; run `cargo xtask vtx` as root \
             (it installs it) or `apt-get install bochs bochsbios vgabios`"
        )
    })?;
    let result = watch(boot, &listener, &mut child, t0, &serial_log);
    if matches!(result, Ok((_, None))) {
        // The console closed: Bochs is exiting. Give it a moment to do so by itself.
        let until = Instant::now() + Duration::from_secs(10);
        while child.try_wait().is_ok_and(|s| s.is_none()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = child.kill();
    let status = child.wait().ok();
    let (lines, ended) = result?;
    let ended = match ended {
        None => Ended::Exited(describe_exit(status, &bochs_log, &bochs_out)),
        Some(why) => Ended::Killed(why),
    };
    Ok(Console { lines, ended, wall: t0.elapsed().as_secs_f64(), serial_log, bochs_log })
}

/// The loop: accepts Bochs' serial connection, prints and logs lines, enforces the limits.
/// Returns the lines and, when it gave up on the run, why.
fn watch(
    boot: &Boot<'_>,
    listener: &TcpListener,
    child: &mut Child,
    t0: Instant,
    serial_log: &Path,
) -> Result<Watched, String> {
    let mut log = std::fs::File::create(serial_log)
        .map_err(|e| format!("cannot create {}: {e}", serial_log.display()))?;
    let stream = match accept(listener, child, t0)? {
        Some(s) => s,
        None => return Ok((Vec::new(), None)),
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || read_lines(stream, &tx));
    let mut lines = Vec::new();
    let mut last_output = Instant::now();
    let mut init_seen = false;
    let mut summary_at: Option<Instant> = None;
    let mut eof = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(Event::Line(l)) => {
                let t = t0.elapsed().as_secs_f64();
                println!("vtx {t:7.1} | {l}");
                let _ = writeln!(log, "{t:8.2} {l}");
                last_output = Instant::now();
                init_seen |= l.contains(INIT_MARK);
                if l.contains(SUMMARY_MARK) {
                    summary_at = Some(Instant::now());
                }
                let panicked = l.contains("Kernel panic - not syncing");
                lines.push((t, l));
                if panicked {
                    // Let the panic's backtrace arrive, then stop.
                    drain(&rx, &mut lines, &mut log, t0, Duration::from_secs(5));
                    return Ok((lines, Some("the guest kernel panicked".into())));
                }
            }
            Ok(Event::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => eof = true,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if eof || child.try_wait().map_err(|e| e.to_string())?.is_some() {
            // Bochs exited (or closed the port); collect what is still in flight.
            drain(&rx, &mut lines, &mut log, t0, Duration::from_secs(1));
            return Ok((lines, None));
        }
        let elapsed = t0.elapsed();
        if elapsed > boot.timeout {
            return Ok((
                lines,
                Some(format!(
                    "the wall-clock limit of {} s (--timeout; a full run takes about 2 minutes \
                     where Bochs reaches 35-50 MIPS)",
                    boot.timeout.as_secs()
                )),
            ));
        }
        if !init_seen && elapsed > INIT_DEADLINE {
            return Ok((
                lines,
                Some(format!(
                    "the guest had not reached /init after {} s (about 20 s normally): Bochs is \
                     too slow on this host, or the kernel does not boot (see the console above)",
                    INIT_DEADLINE.as_secs()
                )),
            ));
        }
        if last_output.elapsed() > SILENCE_LIMIT {
            return Ok((
                lines,
                Some(format!(
                    "the serial console was silent for {} s (a hung test or guest)",
                    SILENCE_LIMIT.as_secs()
                )),
            ));
        }
        if summary_at.is_some_and(|t| t.elapsed() > POWEROFF_GRACE) {
            return Ok((lines, Some("Bochs did not exit after the guest powered off".into())));
        }
    }
}

/// Waits for Bochs to connect to the serial port. `None` when Bochs exited first.
fn accept(
    listener: &TcpListener,
    child: &mut Child,
    t0: Instant,
) -> Result<Option<TcpStream>, String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).map_err(|e| e.to_string())?;
                return Ok(Some(s));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("serial console: accept failed: {e}")),
        }
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            return Ok(None);
        }
        if t0.elapsed() > Duration::from_secs(60) {
            return Err("Bochs did not connect to the serial console within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads the serial stream and sends it line by line (control characters other than tab
/// dropped; `\r` ends nothing).
fn read_lines(mut s: TcpStream, tx: &mpsc::Sender<Event>) {
    let mut buf = [0u8; 4096];
    let mut line = Vec::new();
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            match b {
                b'\n' => {
                    let l = String::from_utf8_lossy(&line).into_owned();
                    line.clear();
                    if tx.send(Event::Line(l)).is_err() {
                        return;
                    }
                }
                b'\t' | 0x20.. if b != 0x7f => line.push(b),
                _ => {}
            }
        }
    }
    if !line.is_empty() {
        let _ = tx.send(Event::Line(String::from_utf8_lossy(&line).into_owned()));
    }
    let _ = tx.send(Event::Eof);
}

fn drain(
    rx: &mpsc::Receiver<Event>,
    lines: &mut Vec<(f64, String)>,
    log: &mut std::fs::File,
    t0: Instant,
    wait: Duration,
) {
    let until = Instant::now() + wait;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(Event::Line(l)) => {
                let t = t0.elapsed().as_secs_f64();
                println!("vtx {t:7.1} | {l}");
                let _ = writeln!(log, "{t:8.2} {l}");
                lines.push((t, l));
            }
            Ok(Event::Eof) | Err(_) => break,
        }
    }
}

/// One line on how Bochs ended: its status and its own last words (the power-off message, or a
/// panic from its log).
fn describe_exit(status: Option<ExitStatus>, bochs_log: &Path, bochs_out: &Path) -> String {
    let status = status.map_or_else(|| "unknown status".into(), |s| s.to_string());
    let log = std::fs::read_to_string(bochs_log).unwrap_or_default();
    let panic = log.lines().rev().find(|l| l.contains(">>PANIC<<")).map(str::trim);
    match panic {
        Some(p) if p.contains("soft power off") => {
            format!("Bochs exited ({status}): ACPI power-off")
        }
        Some(p) => format!("Bochs exited ({status}): {p}"),
        None => {
            let out = std::fs::read_to_string(bochs_out).unwrap_or_default();
            let tail: Vec<&str> = out.lines().rev().take(3).collect();
            format!("Bochs exited ({status}); last output: {}", tail.join(" / "))
        }
    }
}

/// Emulated instructions Bochs executed, from the tick count at the start of its log's last
/// line (`01394547003p[ACPI  ] ...`).
pub fn emulated_ticks(bochs_log: &Path) -> Option<u64> {
    let log = std::fs::read_to_string(bochs_log).ok()?;
    log.lines().rev().find_map(|l| {
        let digits: String = l.chars().take_while(char::is_ascii_digit).collect();
        (digits.len() >= 8).then(|| digits.parse().ok()).flatten().filter(|&t| t > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_from_the_last_log_line() {
        let dir = std::env::temp_dir().join(format!("vtx-ticks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("bochs.log");
        std::fs::write(
            &log,
            "00000000000i[      ] reading configuration\n01394547003p[ACPI  ] >>PANIC<< ACPI control: soft power off\n\n",
        )
        .unwrap();
        assert_eq!(emulated_ticks(&log), Some(1_394_547_003));
        let s = describe_exit(None, &log, &dir.join("none"));
        assert!(s.contains("ACPI power-off"), "{s}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn serial_lines_are_split_and_cleaned() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"ISOLINUX\r\n\x1b[2Jhello\tworld\nlast").unwrap();
        });
        let (s, _) = listener.accept().unwrap();
        h.join().unwrap();
        let (tx, rx) = mpsc::channel();
        read_lines(s, &tx);
        let got: Vec<String> = rx
            .try_iter()
            .filter_map(|e| match e {
                Event::Line(l) => Some(l),
                Event::Eof => None,
            })
            .collect();
        assert_eq!(got, ["ISOLINUX", "[2Jhello\tworld", "last"]);
    }
}
