//! The terminal and generic file ioctls of include/uapi/asm-generic/ioctls.h, with the size of
//! what each one's argument points to (include/uapi/asm-generic/termbits.h, linux/serial.h).
//! The kernel's structures, not the C library's: `struct termios` is 36 bytes (glibc's is
//! 60), `struct termios2` 44, `struct termio` 18.
//!
//! Every structure here is plain data, read or written once by the kernel, so a range check of
//! the argument is its whole validation. Requests that take their argument as a value
//! (`TCSBRK`, `TIOCSCTTY`, `TIOCGPTPEER`, ...) need none.
//!
//! Left out, so refused with `ENOTTY` like any request the sandbox does not know:
//! `TIOCLINUX` (a console multiplexer whose sub-commands include pasting into the input),
//! `TIOCSERGSTRUCT` and `TIOCSER{G,S}ETMULTI` (driver-private structures, removed from Linux),
//! `TCGETX`/`TCSETX*` (removed in Linux 5.12). `TIOCSTI` is refused with `EIO`, as Linux does
//! when `dev.tty.legacy_tiocsti` is off: it pushes bytes into the terminal's input queue, and
//! the terminal is usually the one the sandbox was started from, so a program could type
//! commands into the user's shell once it exits (the classic terminal-injection escape).

use super::ioctl::IoArg::{self, In, InOut, Out, Refuse, Value};

/// `struct termios` (kernel): four `tcflag_t`, `c_line`, `c_cc[19]`.
const TERMIOS: u64 = 36;
/// `struct termios2`: `struct termios` and the two speeds.
const TERMIOS2: u64 = 44;
/// `struct termio`: four `unsigned short`, `c_line`, `c_cc[8]`, padding.
const TERMIO: u64 = 18;
/// `struct winsize`.
const WINSIZE: u64 = 8;
/// `struct serial_struct`.
const SERIAL: u64 = 72;
/// `struct serial_rs485`.
const RS485: u64 = 32;
/// `struct serial_iso7816`.
const ISO7816: u64 = 40;
/// `struct serial_icounter_struct`.
const ICOUNTER: u64 = 80;
/// An `int` (or `pid_t`, `unsigned int`).
const INT: u64 = 4;

/// The argument of terminal or generic file request `req`, if the sandbox knows it.
pub fn request(req: u32) -> Option<IoArg> {
    Some(match req {
        0x5401 => Out(TERMIOS),        // TCGETS
        0x5402 => In(TERMIOS),         // TCSETS
        0x5403 => In(TERMIOS),         // TCSETSW
        0x5404 => In(TERMIOS),         // TCSETSF
        0x5405 => Out(TERMIO),         // TCGETA
        0x5406 => In(TERMIO),          // TCSETA
        0x5407 => In(TERMIO),          // TCSETAW
        0x5408 => In(TERMIO),          // TCSETAF
        0x5409 => Value,               // TCSBRK
        0x540a => Value,               // TCXONC
        0x540b => Value,               // TCFLSH
        0x540c => Value,               // TIOCEXCL
        0x540d => Value,               // TIOCNXCL
        0x540e => Value,               // TIOCSCTTY
        0x540f => Out(INT),            // TIOCGPGRP
        0x5410 => In(INT),             // TIOCSPGRP
        0x5411 => Out(INT),            // TIOCOUTQ (SIOCOUTQ on sockets)
        0x5412 => Refuse(libc::EIO),   // TIOCSTI
        0x5413 => Out(WINSIZE),        // TIOCGWINSZ
        0x5414 => In(WINSIZE),         // TIOCSWINSZ
        0x5415 => Out(INT),            // TIOCMGET
        0x5416 => In(INT),             // TIOCMBIS
        0x5417 => In(INT),             // TIOCMBIC
        0x5418 => In(INT),             // TIOCMSET
        0x5419 => Out(INT),            // TIOCGSOFTCAR
        0x541a => In(INT),             // TIOCSSOFTCAR
        0x541b => Out(INT),            // FIONREAD, TIOCINQ (SIOCINQ on sockets)
        0x541d => Value,               // TIOCCONS
        0x541e => Out(SERIAL),         // TIOCGSERIAL
        0x541f => In(SERIAL),          // TIOCSSERIAL
        0x5420 => In(INT),             // TIOCPKT
        0x5421 => In(INT),             // FIONBIO
        0x5422 => Value,               // TIOCNOTTY
        0x5423 => In(INT),             // TIOCSETD
        0x5424 => Out(INT),            // TIOCGETD
        0x5425 => Value,               // TCSBRKP
        0x5427 => Value,               // TIOCSBRK
        0x5428 => Value,               // TIOCCBRK
        0x5429 => Out(INT),            // TIOCGSID
        0x802c_542a => Out(TERMIOS2),  // TCGETS2
        0x402c_542b => In(TERMIOS2),   // TCSETS2
        0x402c_542c => In(TERMIOS2),   // TCSETSW2
        0x402c_542d => In(TERMIOS2),   // TCSETSF2
        0x542e => Out(RS485),          // TIOCGRS485
        0x542f => InOut(RS485),        // TIOCSRS485
        0x8004_5430 => Out(INT),       // TIOCGPTN
        0x4004_5431 => In(INT),        // TIOCSPTLCK
        0x8004_5432 => Out(INT),       // TIOCGDEV
        0x4004_5436 => Value,          // TIOCSIG (the signal is the argument itself)
        0x5437 => Value,               // TIOCVHANGUP
        0x8004_5438 => Out(INT),       // TIOCGPKT
        0x8004_5439 => Out(INT),       // TIOCGPTLCK
        0x8004_5440 => Out(INT),       // TIOCGEXCL
        0x5441 => Value,               // TIOCGPTPEER (open flags; returns a new descriptor)
        0x8028_5442 => Out(ISO7816),   // TIOCGISO7816
        0xc028_5443 => InOut(ISO7816), // TIOCSISO7816
        0x5450 => Value,               // FIONCLEX
        0x5451 => Value,               // FIOCLEX
        0x5452 => In(INT),             // FIOASYNC
        0x5453 => Value,               // TIOCSERCONFIG
        0x5456 => Out(TERMIOS),        // TIOCGLCKTRMIOS
        0x5457 => In(TERMIOS),         // TIOCSLCKTRMIOS
        0x5459 => Out(INT),            // TIOCSERGETLSR
        0x545c => Value,               // TIOCMIWAIT (a mask of lines)
        0x545d => Out(ICOUNTER),       // TIOCGICOUNT
        0x5460 => Out(8),              // FIOQSIZE (loff_t)
        _ => return None,
    })
}

/// The pseudo-terminals that are the sandbox's own, by number (`/dev/pts/N`): the terminal it
/// was started on (its standard input, output or error) and those whose master a program of
/// it opened (`/dev/ptmx`). Under process confinement no other `/dev/pts/N` may be opened or
/// otherwise reached by path: another session's terminal would give its keystrokes and its
/// screen to the program (found by an attack run).
static OWN_PTYS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// Notes pty `n` as the sandbox's own.
pub fn note_own_pty(n: u32) {
    let mut v = OWN_PTYS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !v.contains(&n) {
        v.push(n);
    }
}

/// Whether the file `st` describes is another session's pty: a UNIX98 pty slave (character
/// device, majors 136 to 143, Documentation/admin-guide/devices.txt; pty number
/// `(major - 136) * 256 + minor`) that is not the sandbox's own. Decided on the device the
/// probe reached, whatever path named it (a bind mount of `/dev/pts`, a magic link).
pub fn foreign_pty(st: &libc::stat) -> bool {
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR {
        return false;
    }
    let (major, minor) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
    if !(136..=143).contains(&major) {
        return false;
    }
    let n = (major - 136) * 256 + minor;
    !OWN_PTYS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&n)
}

/// Whether `/dev/pts/N` may be reached: for `path` below `/dev/pts/` with a number, whether
/// that pty is the sandbox's own; any other path, yes. For the calls decided on a path alone
/// (an entry of a pinned directory); what a probe reached is judged by [`foreign_pty`].
pub fn pty_path_allowed(path: &[u8]) -> bool {
    let Some(n) = path.strip_prefix(b"/dev/pts/") else { return true };
    let Some(n) = std::str::from_utf8(n).ok().and_then(|s| s.parse::<u32>().ok()) else {
        return true;
    };
    OWN_PTYS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&n)
}

/// Notes the terminals the sandbox starts on (descriptors 0, 1, 2 that are `/dev/pts/N`).
pub fn note_inherited_ptys() {
    for fd in 0..3 {
        if let Ok(p) = std::fs::read_link(format!("/proc/self/fd/{fd}"))
            && let Some(n) = p.to_str().and_then(|s| s.strip_prefix("/dev/pts/"))
            && let Ok(n) = n.parse::<u32>()
        {
            note_own_pty(n);
        }
    }
}

/// After the program opened `path` as descriptor `fd`: a pty master (`/dev/ptmx`,
/// `/dev/pts/ptmx`) makes its slave the sandbox's own (`TIOCGPTN`).
pub fn opened(path: &[u8], fd: i32) {
    if !path.ends_with(b"ptmx") {
        return;
    }
    let mut n: u32 = 0;
    #[allow(unsafe_code)]
    // SAFETY: TIOCGPTN writes one unsigned int to `n`, a local; `fd` is the program's new
    // descriptor (on anything else the ioctl fails and nothing is noted).
    let r = unsafe { libc::ioctl(fd, libc::TIOCGPTN, &mut n) };
    if r == 0 {
        note_own_pty(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_the_kernels() {
        assert_eq!(request(0x5401), Some(Out(36)), "TCGETS: struct termios is 36 bytes");
        assert_eq!(request(0x5406), Some(In(18)), "TCSETA: struct termio");
        // The _IOR/_IOW encodings carry the size: check ours against them.
        for req in [0x802c_542a_u32, 0x402c_542b, 0x8004_5430, 0x8028_5442, 0xc028_5443] {
            let encoded = u64::from((req >> 16) & 0x3fff);
            match request(req) {
                Some(In(n) | Out(n) | InOut(n)) => assert_eq!(n, encoded, "{req:#x}"),
                other => panic!("{req:#x}: {other:?}"),
            }
        }
    }

    #[test]
    fn tiocsti_and_unknown_requests_are_refused() {
        assert_eq!(request(0x5412), Some(Refuse(libc::EIO)));
        assert_eq!(request(0x541c), None, "TIOCLINUX");
        assert_eq!(request(0x5432), None, "TCGETX (removed)");
    }
}
