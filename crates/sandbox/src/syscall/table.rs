//! The table of supported system calls: for each number, its name, what each argument is, and
//! how it is implemented. Validation, forwarding and tracing are all driven by this table, so a
//! call's description exists exactly once. A number missing here gets `ENOSYS`: nothing is ever
//! forwarded unchecked.
//!
//! Struct sizes are x86-64 Linux's (include/uapi/asm-generic, arch/x86/include/uapi).

use super::Handler;
use super::{
    aio, clone, emul, exec, ioctl, net, open, paths, procfs, signalfd, sockopt, system, sysv, xattr,
};

/// How many bytes a pointer argument covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Len {
    /// A fixed size in bytes.
    Fixed(u64),
    /// The value of argument `i`.
    Of(usize),
    /// The value of argument `i` times `size`.
    ArgTimes(usize, u64),
    /// The `socklen_t` that argument `i` points to (value-result lengths).
    DerefU32(usize),
    /// `fd_set` for `nfds` in argument 0: `(nfds + 63) / 64 * 8` bytes.
    FdSet,
}

/// What one argument is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// An integer (traced in decimal).
    Int,
    /// Flags or a mask (traced in hex).
    Hex,
    /// A file descriptor: the runtime's own are refused with `EBADF`.
    Fd,
    /// A directory descriptor for `*at` calls: `AT_FDCWD` or an [`Arg::Fd`].
    AtFd,
    /// A NUL-terminated path (at most `PATH_MAX` bytes), copied in; the kernel gets the copy.
    Path,
    /// A NUL-terminated string other than a path (a name), copied in like [`Arg::Path`].
    Str,
    /// A buffer the kernel reads (or NULL).
    In(Len),
    /// A buffer the kernel writes (or NULL).
    Out(Len),
    /// A buffer the kernel reads and writes (or NULL).
    InOut(Len),
    /// A socket address the kernel reads, length in argument `i`: copied into supervisor
    /// memory before the kernel sees it, so another thread cannot change it after the check.
    /// The socket calls that take one are emulated (`syscall::net`): the policy decides on
    /// that copy, decoded, and the kernel gets the same copy.
    SockAddr(usize),
}

/// How a call is carried out.
#[derive(Clone, Copy, Debug)]
pub enum Imp {
    /// Validate the arguments per the table, then perform the call on the host.
    Forward,
    /// The supervisor implements it (memory, process state, nested pointers).
    Emulate(Handler),
}

/// One supported system call.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Name, as in arch/x86/entry/syscalls/syscall_64.tbl.
    pub name: &'static str,
    /// Argument kinds.
    pub args: &'static [Arg],
    /// Implementation.
    pub imp: Imp,
}

use self::Arg::{AtFd, Fd, Hex, In, InOut, Int, Out, Path, SockAddr, Str};
use self::Len::{ArgTimes, DerefU32, FdSet, Fixed, Of};

const STAT: u64 = 144;
const STATX: u64 = 256;
const STATFS: u64 = 120;
const TIMESPEC: u64 = 16;
const TIMEVAL: u64 = 16;
const ITIMER: u64 = 32;
const RLIMIT: u64 = 16;
const RUSAGE: u64 = 144;
const EPOLL_EVENT: u64 = 12;
const POLLFD: u64 = 8;
const FLOCK: u64 = 32;
pub(super) const TIMEX: u64 = 208;
const TIMEZONE: u64 = 8;

macro_rules! table {
    ($($nr:literal $name:literal [$($arg:expr),*] $imp:expr;)*) => {
        /// The table, indexed by system-call number.
        pub static TABLE: [Option<Spec>; 512] = {
            let mut t: [Option<Spec>; 512] = [None; 512];
            $( t[$nr] = Some(Spec { name: $name, args: &[$($arg),*], imp: $imp }); )*
            t
        };
    };
}

const F: Imp = Imp::Forward;
const fn e(h: Handler) -> Imp {
    Imp::Emulate(h)
}

table! {
    0 "read" [Fd, Out(Of(2)), Int] F;
    1 "write" [Fd, In(Of(2)), Int] F;
    2 "open" [Path, Hex, Hex] e(open::open);
    3 "close" [Fd] e(emul::close);
    4 "stat" [Path, Out(Fixed(STAT))] F;
    5 "fstat" [Fd, Out(Fixed(STAT))] F;
    6 "lstat" [Path, Out(Fixed(STAT))] F;
    7 "poll" [InOut(ArgTimes(1, POLLFD)), Int, Int] F;
    8 "lseek" [Fd, Int, Int] F;
    9 "mmap" [Hex, Int, Hex, Hex, Fd, Hex] e(emul::mmap);
    10 "mprotect" [Hex, Int, Hex] e(emul::mprotect);
    11 "munmap" [Hex, Int] e(emul::munmap);
    12 "brk" [Hex] e(emul::brk);
    13 "rt_sigaction" [Int, Hex, Hex, Int] e(emul::rt_sigaction);
    14 "rt_sigprocmask" [Int, Hex, Hex, Int] e(emul::rt_sigprocmask);
    15 "rt_sigreturn" [] e(emul::rt_sigreturn);
    16 "ioctl" [Fd, Hex, Hex] e(ioctl::ioctl);
    17 "pread64" [Fd, Out(Of(2)), Int, Int] F;
    18 "pwrite64" [Fd, In(Of(2)), Int, Int] F;
    19 "readv" [Fd, Hex, Int] e(emul::readv);
    20 "writev" [Fd, Hex, Int] e(emul::writev);
    21 "access" [Path, Hex] F;
    22 "pipe" [Out(Fixed(8))] F;
    23 "select" [Int, InOut(FdSet), InOut(FdSet), InOut(FdSet), InOut(Fixed(TIMEVAL))] F;
    24 "sched_yield" [] F;
    25 "mremap" [Hex, Int, Int, Hex, Hex] e(emul::mremap);
    26 "msync" [Hex, Int, Hex] e(emul::msync);
    27 "mincore" [Hex, Int, Hex] e(emul::mincore);
    28 "madvise" [Hex, Int, Int] e(emul::madvise);
    29 "shmget" [Int, Int, Hex] F;
    30 "shmat" [Int, Hex, Hex] e(sysv::shmat);
    31 "shmctl" [Int, Int, Hex] e(sysv::shmctl);
    32 "dup" [Fd] e(emul::dup);
    33 "dup2" [Fd, Fd] e(emul::dup2);
    34 "pause" [] e(emul::pause);
    35 "nanosleep" [In(Fixed(TIMESPEC)), Out(Fixed(TIMESPEC))] F;
    36 "getitimer" [Int, Out(Fixed(ITIMER))] F;
    37 "alarm" [Int] F;
    38 "setitimer" [Int, In(Fixed(ITIMER)), Out(Fixed(ITIMER))] F;
    39 "getpid" [] F;
    40 "sendfile" [Fd, Fd, InOut(Fixed(8)), Int] F;
    41 "socket" [Int, Hex, Int] e(net::socket);
    42 "connect" [Fd, SockAddr(2), Int] e(net::connect);
    43 "accept" [Fd, Out(DerefU32(2)), InOut(Fixed(4))] e(net::accept);
    44 "sendto" [Fd, In(Of(2)), Int, Hex, SockAddr(5), Int] e(net::sendto);
    45 "recvfrom" [Fd, Out(Of(2)), Int, Hex, Out(DerefU32(5)), InOut(Fixed(4))] e(net::recvfrom);
    46 "sendmsg" [Fd, Hex, Hex] e(net::sendmsg);
    47 "recvmsg" [Fd, Hex, Hex] e(net::recvmsg);
    48 "shutdown" [Fd, Int] F;
    49 "bind" [Fd, SockAddr(2), Int] e(net::bind);
    50 "listen" [Fd, Int] e(net::listen);
    51 "getsockname" [Fd, Out(DerefU32(2)), InOut(Fixed(4))] e(net::getsockname);
    52 "getpeername" [Fd, Out(DerefU32(2)), InOut(Fixed(4))] e(net::getpeername);
    53 "socketpair" [Int, Hex, Int, Out(Fixed(8))] e(net::socketpair);
    54 "setsockopt" [Fd, Int, Int, In(Of(4)), Int] e(sockopt::setsockopt);
    55 "getsockopt" [Fd, Int, Int, Out(DerefU32(4)), InOut(Fixed(4))] e(sockopt::getsockopt);
    56 "clone" [Hex, Hex, Hex, Hex, Hex] e(clone::clone);
    57 "fork" [] e(clone::fork);
    58 "vfork" [] e(clone::vfork);
    59 "execve" [Path, Hex, Hex] e(exec::execve);
    60 "exit" [Int] e(emul::exit);
    61 "wait4" [Int, Out(Fixed(4)), Hex, Out(Fixed(RUSAGE))] F;
    62 "kill" [Int, Int] e(emul::kill);
    63 "uname" [Out(Fixed(390))] F;
    64 "semget" [Int, Int, Hex] F;
    65 "semop" [Int, Hex, Int] e(sysv::semop);
    66 "semctl" [Int, Int, Int, Hex] e(sysv::semctl);
    67 "shmdt" [Hex] e(sysv::shmdt);
    68 "msgget" [Int, Hex] F;
    69 "msgsnd" [Int, Hex, Int, Hex] e(sysv::msgsnd);
    70 "msgrcv" [Int, Hex, Int, Int, Hex] e(sysv::msgrcv);
    71 "msgctl" [Int, Int, Hex] e(sysv::msgctl);
    72 "fcntl" [Fd, Int, Hex] e(emul::fcntl);
    73 "flock" [Fd, Int] F;
    74 "fsync" [Fd] F;
    75 "fdatasync" [Fd] F;
    76 "truncate" [Path, Int] e(open::truncate);
    77 "ftruncate" [Fd, Int] F;
    78 "getdents" [Fd, Out(Of(2)), Int] e(procfs::getdents);
    79 "getcwd" [Out(Of(1)), Int] e(paths::getcwd);
    80 "chdir" [Path] F;
    81 "fchdir" [Fd] F;
    82 "rename" [Path, Path] F;
    83 "mkdir" [Path, Hex] F;
    84 "rmdir" [Path] F;
    85 "creat" [Path, Hex] e(open::creat);
    86 "link" [Path, Path] F;
    87 "unlink" [Path] F;
    88 "symlink" [Path, Path] F;
    89 "readlink" [Path, Out(Of(2)), Int] e(emul::readlink);
    90 "chmod" [Path, Hex] e(open::chmod);
    91 "fchmod" [Fd, Hex] F;
    92 "chown" [Path, Int, Int] e(open::chown);
    93 "fchown" [Fd, Int, Int] F;
    94 "lchown" [Path, Int, Int] e(open::lchown);
    95 "umask" [Hex] F;
    96 "gettimeofday" [Out(Fixed(TIMEVAL)), Out(Fixed(8))] F;
    97 "getrlimit" [Int, Out(Fixed(RLIMIT))] e(emul::getrlimit);
    98 "getrusage" [Int, Out(Fixed(RUSAGE))] F;
    99 "sysinfo" [Out(Fixed(112))] F;
    100 "times" [Out(Fixed(32))] F;
    102 "getuid" [] F;
    104 "getgid" [] F;
    105 "setuid" [Int] F;
    106 "setgid" [Int] F;
    107 "geteuid" [] F;
    108 "getegid" [] F;
    109 "setpgid" [Int, Int] F;
    110 "getppid" [] F;
    111 "getpgrp" [] F;
    112 "setsid" [] F;
    113 "setreuid" [Int, Int] F;
    114 "setregid" [Int, Int] F;
    115 "getgroups" [Int, Out(ArgTimes(0, 4))] F;
    116 "setgroups" [Int, In(ArgTimes(0, 4))] F;
    117 "setresuid" [Int, Int, Int] F;
    118 "getresuid" [Out(Fixed(4)), Out(Fixed(4)), Out(Fixed(4))] F;
    119 "setresgid" [Int, Int, Int] F;
    120 "getresgid" [Out(Fixed(4)), Out(Fixed(4)), Out(Fixed(4))] F;
    121 "getpgid" [Int] F;
    124 "getsid" [Int] F;
    125 "capget" [InOut(Fixed(8)), Out(Fixed(24))] F;
    126 "capset" [InOut(Fixed(8)), In(Fixed(24))] F;
    127 "rt_sigpending" [Hex, Int] e(emul::rt_sigpending);
    128 "rt_sigtimedwait" [Hex, Hex, Hex, Int] e(emul::rt_sigtimedwait);
    129 "rt_sigqueueinfo" [Int, Int, Hex] e(emul::rt_sigqueueinfo);
    130 "rt_sigsuspend" [Hex, Int] e(emul::rt_sigsuspend);
    131 "sigaltstack" [Hex, Hex] e(emul::sigaltstack);
    132 "utime" [Path, In(Fixed(16))] F;
    133 "mknod" [Path, Hex, Hex] F;
    135 "personality" [Hex] e(emul::personality);
    137 "statfs" [Path, Out(Fixed(STATFS))] F;
    138 "fstatfs" [Fd, Out(Fixed(STATFS))] F;
    140 "getpriority" [Int, Int] F;
    141 "setpriority" [Int, Int, Int] F;
    142 "sched_setparam" [Int, In(Fixed(4))] F;
    143 "sched_getparam" [Int, Out(Fixed(4))] F;
    144 "sched_setscheduler" [Int, Int, In(Fixed(4))] F;
    145 "sched_getscheduler" [Int] F;
    146 "sched_get_priority_max" [Int] F;
    147 "sched_get_priority_min" [Int] F;
    148 "sched_rr_get_interval" [Int, Out(Fixed(TIMESPEC))] F;
    149 "mlock" [Hex, Int] e(emul::mlock);
    150 "munlock" [Hex, Int] e(emul::munlock);
    151 "mlockall" [Hex] F;
    152 "munlockall" [] F;
    157 "prctl" [Int, Hex, Hex, Hex, Hex] e(emul::prctl);
    158 "arch_prctl" [Hex, Hex] e(emul::arch_prctl);
    159 "adjtimex" [InOut(Fixed(TIMEX))] F;
    160 "setrlimit" [Int, In(Fixed(RLIMIT))] e(emul::setrlimit);
    161 "chroot" [Path] e(emul::unsupported);
    162 "sync" [] F;
    164 "settimeofday" [In(Fixed(TIMEVAL)), In(Fixed(TIMEZONE))] F;
    170 "sethostname" [In(Of(1)), Int] e(system::sethostname);
    171 "setdomainname" [In(Of(1)), Int] e(system::setdomainname);
    186 "gettid" [] F;
    187 "readahead" [Fd, Int, Int] F;
    188 "setxattr" [Path, Str, In(Of(3)), Int, Hex] e(xattr::setxattr);
    189 "lsetxattr" [Path, Str, In(Of(3)), Int, Hex] e(xattr::lsetxattr);
    190 "fsetxattr" [Fd, Str, In(Of(3)), Int, Hex] e(xattr::fsetxattr);
    191 "getxattr" [Path, Str, Out(Of(3)), Int] F;
    192 "lgetxattr" [Path, Str, Out(Of(3)), Int] F;
    193 "fgetxattr" [Fd, Str, Out(Of(3)), Int] F;
    194 "listxattr" [Path, Out(Of(2)), Int] F;
    195 "llistxattr" [Path, Out(Of(2)), Int] F;
    196 "flistxattr" [Fd, Out(Of(2)), Int] F;
    197 "removexattr" [Path, Str] e(xattr::removexattr);
    198 "lremovexattr" [Path, Str] e(xattr::lremovexattr);
    199 "fremovexattr" [Fd, Str] e(xattr::fremovexattr);
    200 "tkill" [Int, Int] e(emul::tkill);
    201 "time" [Out(Fixed(8))] F;
    202 "futex" [InOut(Fixed(4)), Int, Int, In(Fixed(TIMESPEC)), InOut(Fixed(4)), Int] e(emul::futex);
    203 "sched_setaffinity" [Int, Int, In(Of(1))] F;
    204 "sched_getaffinity" [Int, Int, Out(Of(1))] F;
    217 "getdents64" [Fd, Out(Of(2)), Int] e(procfs::getdents64);
    218 "set_tid_address" [Hex] e(emul::set_tid_address);
    206 "io_setup" [Int, Hex] e(aio::io_setup);
    207 "io_destroy" [Hex] e(aio::io_destroy);
    208 "io_getevents" [Hex, Int, Int, Hex, Hex] e(aio::io_getevents);
    209 "io_submit" [Hex, Int, Hex] e(aio::io_submit);
    210 "io_cancel" [Hex, Hex, Hex] e(aio::io_cancel);
    213 "epoll_create" [Int] F;
    220 "semtimedop" [Int, Hex, Int, Hex] e(sysv::semtimedop);
    221 "fadvise64" [Fd, Int, Int, Int] F;
    222 "timer_create" [Int, In(Fixed(64)), Out(Fixed(4))] e(emul::timer_create);
    223 "timer_settime" [Int, Hex, In(Fixed(ITIMER)), Out(Fixed(ITIMER))] F;
    224 "timer_gettime" [Int, Out(Fixed(ITIMER))] F;
    225 "timer_getoverrun" [Int] F;
    226 "timer_delete" [Int] F;
    227 "clock_settime" [Int, In(Fixed(TIMESPEC))] F;
    228 "clock_gettime" [Int, Out(Fixed(TIMESPEC))] F;
    229 "clock_getres" [Int, Out(Fixed(TIMESPEC))] F;
    230 "clock_nanosleep" [Int, Hex, In(Fixed(TIMESPEC)), Out(Fixed(TIMESPEC))] F;
    231 "exit_group" [Int] e(emul::exit_group);
    232 "epoll_wait" [Fd, Out(ArgTimes(2, EPOLL_EVENT)), Int, Int] F;
    233 "epoll_ctl" [Fd, Int, Fd, In(Fixed(EPOLL_EVENT))] F;
    234 "tgkill" [Int, Int, Int] e(emul::tgkill);
    235 "utimes" [Path, In(Fixed(32))] F;
    247 "waitid" [Int, Int, Out(Fixed(128)), Hex, Out(Fixed(RUSAGE))] F;
    253 "inotify_init" [] F;
    254 "inotify_add_watch" [Fd, Path, Hex] F;
    255 "inotify_rm_watch" [Fd, Int] F;
    257 "openat" [AtFd, Path, Hex, Hex] e(open::openat);
    258 "mkdirat" [AtFd, Path, Hex] F;
    259 "mknodat" [AtFd, Path, Hex, Hex] F;
    260 "fchownat" [AtFd, Path, Int, Int, Hex] e(open::fchownat);
    261 "futimesat" [AtFd, Path, In(Fixed(32))] F;
    262 "newfstatat" [AtFd, Path, Out(Fixed(STAT)), Hex] F;
    263 "unlinkat" [AtFd, Path, Hex] F;
    264 "renameat" [AtFd, Path, AtFd, Path] F;
    265 "linkat" [AtFd, Path, AtFd, Path, Hex] F;
    266 "symlinkat" [Path, AtFd, Path] F;
    267 "readlinkat" [AtFd, Path, Out(Of(3)), Int] e(emul::readlinkat);
    268 "fchmodat" [AtFd, Path, Hex] e(open::fchmodat);
    269 "faccessat" [AtFd, Path, Hex] F;
    270 "pselect6" [Int, InOut(FdSet), InOut(FdSet), InOut(FdSet), InOut(Fixed(TIMESPEC)), Hex] e(emul::pselect6);
    271 "ppoll" [InOut(ArgTimes(1, POLLFD)), Int, InOut(Fixed(TIMESPEC)), Hex, Int] e(emul::ppoll);
    273 "set_robust_list" [Hex, Int] e(emul::set_robust_list);
    274 "get_robust_list" [Int, Out(Fixed(8)), Out(Fixed(8))] e(emul::get_robust_list);
    275 "splice" [Fd, InOut(Fixed(8)), Fd, InOut(Fixed(8)), Int, Hex] F;
    276 "tee" [Fd, Fd, Int, Hex] F;
    277 "sync_file_range" [Fd, Int, Int, Hex] F;
    280 "utimensat" [AtFd, Path, In(Fixed(32)), Hex] F;
    281 "epoll_pwait" [Fd, Out(ArgTimes(2, EPOLL_EVENT)), Int, Int, Hex, Int] e(emul::epoll_pwait);
    282 "signalfd" [Int, Hex, Int] e(signalfd::signalfd);
    283 "timerfd_create" [Int, Hex] F;
    284 "eventfd" [Int] F;
    285 "fallocate" [Fd, Hex, Int, Int] F;
    286 "timerfd_settime" [Fd, Hex, In(Fixed(ITIMER)), Out(Fixed(ITIMER))] F;
    287 "timerfd_gettime" [Fd, Out(Fixed(ITIMER))] F;
    288 "accept4" [Fd, Out(DerefU32(2)), InOut(Fixed(4)), Hex] e(net::accept4);
    289 "signalfd4" [Int, Hex, Int, Hex] e(signalfd::signalfd4);
    290 "eventfd2" [Int, Hex] F;
    291 "epoll_create1" [Hex] F;
    292 "dup3" [Fd, Fd, Hex] e(emul::dup3);
    293 "pipe2" [Out(Fixed(8)), Hex] F;
    294 "inotify_init1" [Hex] F;
    295 "preadv" [Fd, Hex, Int, Int, Int] e(emul::preadv);
    296 "pwritev" [Fd, Hex, Int, Int, Int] e(emul::pwritev);
    297 "rt_tgsigqueueinfo" [Int, Int, Int, Hex] e(emul::rt_tgsigqueueinfo);
    299 "recvmmsg" [Fd, Hex, Int, Hex, Hex] e(net::recvmmsg);
    302 "prlimit64" [Int, Int, In(Fixed(RLIMIT)), Out(Fixed(RLIMIT))] e(emul::prlimit64);
    305 "clock_adjtime" [Int, InOut(Fixed(TIMEX))] F;
    306 "syncfs" [Fd] F;
    307 "sendmmsg" [Fd, Hex, Int, Hex] e(net::sendmmsg);
    309 "getcpu" [Out(Fixed(4)), Out(Fixed(4)), Hex] e(emul::getcpu);
    316 "renameat2" [AtFd, Path, AtFd, Path, Hex] F;
    318 "getrandom" [Out(Of(1)), Int, Hex] F;
    322 "execveat" [AtFd, Path, Hex, Hex, Hex] e(exec::execveat);
    319 "memfd_create" [Str, Hex] F;
    325 "mlock2" [Hex, Int, Hex] e(emul::mlock2);
    326 "copy_file_range" [Fd, InOut(Fixed(8)), Fd, InOut(Fixed(8)), Int, Hex] F;
    327 "preadv2" [Fd, Hex, Int, Int, Int, Hex] e(emul::preadv2);
    328 "pwritev2" [Fd, Hex, Int, Int, Int, Hex] e(emul::pwritev2);
    314 "sched_setattr" [Int, In(Fixed(48)), Hex] F;
    315 "sched_getattr" [Int, Out(Of(2)), Int, Hex] F;
    332 "statx" [AtFd, Path, Hex, Hex, Out(Fixed(STATX))] F;
    334 "rseq" [Hex, Int, Hex, Hex] e(emul::unsupported);
    424 "pidfd_send_signal" [Fd, Int, In(Fixed(128)), Hex] e(emul::pidfd_send_signal);
    434 "pidfd_open" [Int, Hex] F;
    435 "clone3" [Hex, Int] e(emul::unsupported);
    436 "close_range" [Int, Int, Hex] e(emul::close_range);
    437 "openat2" [AtFd, Path, In(Of(3)), Int] e(open::openat2);
    439 "faccessat2" [AtFd, Path, Hex, Hex] F;
    463 "setxattrat" [AtFd, Path, Hex, Str, Hex, Int] e(xattr::setxattrat);
    464 "getxattrat" [AtFd, Path, Hex, Str, Hex, Int] e(xattr::getxattrat);
    465 "listxattrat" [AtFd, Path, Hex, Out(Of(4)), Int] F;
    466 "removexattrat" [AtFd, Path, Hex, Str] e(xattr::removexattrat);
}

/// `F_GETLK`-style `struct flock` size, for `fcntl`.
pub const FLOCK_SIZE: u64 = FLOCK;
