//! Shared harness for the KVM integration tests: tiny ring-3 guest functions compiled into the
//! test binary (run with GVA == HVA) and an environment that maps them into a fresh VM.
#![allow(dead_code, unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use dune::{Perms, Trap, Vcpu, Vm, VmConfig};

/// Report numbers: the guest ends most functions with `syscall` number `REPORT + k`.
pub const REPORT: u64 = 1000;

core::arch::global_asm!(
    ".pushsection .text.dune_guest, \"ax\"",
    ".balign 4096",
    ".globl g_start",
    "g_start:",
    // rdi = n: n system calls 0x100+i with args i..i+5, each expecting 3i+7 back; then nr 60.
    ".globl g_syscall_loop",
    "g_syscall_loop:",
    "    mov %rdi, %r12",
    "    xor %r13, %r13",
    "1:  lea 0x100(%r13), %rax",
    "    mov %r13, %rdi",
    "    lea 1(%r13), %rsi",
    "    lea 2(%r13), %rdx",
    "    lea 3(%r13), %r10",
    "    lea 4(%r13), %r8",
    "    lea 5(%r13), %r9",
    "    syscall",
    "    lea 7(%r13,%r13,2), %rcx",
    "    cmp %rcx, %rax",
    "    jne 2f",
    "    inc %r13",
    "    cmp %r12, %r13",
    "    jb 1b",
    "    mov $60, %eax",
    "    syscall",
    "2:  ud2",
    // Endless `syscall` loop (benchmarks).
    ".globl g_syscall_forever",
    "g_syscall_forever:",
    "1:  xor %eax, %eax",
    "    syscall",
    "    jmp 1b",
    // rdi = addr: report 1000 with the quadword read.
    ".globl g_load",
    "g_load:",
    "    mov (%rdi), %rdi",
    "    mov $1000, %eax",
    "    syscall",
    "    ud2",
    // rdi = addr, rsi = value: store, report 1001.
    ".globl g_store",
    "g_store:",
    "    mov %rsi, (%rdi)",
    "    mov $1001, %eax",
    "    syscall",
    "    ud2",
    // rdi = addr: jump there.
    ".globl g_exec",
    "g_exec:",
    "    jmp *%rdi",
    // The continue point after a fault: report 1002.
    ".globl g_report",
    "g_report:",
    "    mov $1002, %eax",
    "    syscall",
    "    ud2",
    // Privileged instructions, each followed by a jump to the report (never reached).
    ".globl g_hlt",
    "g_hlt: hlt",
    "    jmp g_report",
    ".globl g_cli",
    "g_cli: cli",
    "    jmp g_report",
    ".globl g_out",
    "g_out: outb %al, $0x80",
    "    jmp g_report",
    ".globl g_in",
    "g_in: inb $0x80, %al",
    "    jmp g_report",
    ".globl g_movcr3",
    "g_movcr3: mov %cr3, %rax",
    "    jmp g_report",
    ".globl g_lgdt",
    "g_lgdt: lgdt (%rsp)",
    "    jmp g_report",
    ".globl g_wrmsr",
    "g_wrmsr: wrmsr",
    "    jmp g_report",
    ".globl g_swapgs",
    "g_swapgs: swapgs",
    "    jmp g_report",
    ".globl g_ud2",
    "g_ud2: ud2",
    "    jmp g_report",
    ".globl g_div0",
    "g_div0:",
    "    xor %ecx, %ecx",
    "    xor %edx, %edx",
    "    mov $1, %eax",
    ".globl g_div0_insn",
    "g_div0_insn:",
    "    div %rcx",
    "    jmp g_report",
    // vmcall; if it returns (KVM on VT-x answers a CPL-3 vmcall itself), report 1003 with rax.
    ".globl g_vmcall",
    "g_vmcall: vmcall",
    "    mov %rax, %rdi",
    "    mov $1003, %eax",
    "    syscall",
    "    ud2",
    // rdi = flag address: spin until the quadword is non-zero, then report 1004.
    ".globl g_spin_flag",
    "g_spin_flag:",
    "1:  cmpq $0, (%rdi)",
    "    je 1b",
    "    mov $1004, %eax",
    "    syscall",
    "    ud2",
    // rdi = this vCPU's switchless mailbox, rsi = its stub's waiting loop: forge a claimed
    // request for call 1006 and wait in the stub as if a server had it; when the runtime rolls
    // it back, the `syscall` below makes call 1006 (through an exit, nobody serving).
    ".globl g_forged_claim",
    "g_forged_claim:",
    "    movq $1006, 0x10(%rdi)",
    "    movq $2, (%rdi)",
    "    lea 2f(%rip), %rcx",
    "    mov $1006, %eax",
    "    jmp *%rsi",
    "1:  syscall",
    "2:  ud2",
    // The same with a non-canonical return address in RCX.
    ".globl g_forged_claim_bad_rcx",
    "g_forged_claim_bad_rcx:",
    "    movq $1006, 0x10(%rdi)",
    "    movq $2, (%rdi)",
    "    movabs $0x8000000000000002, %rcx",
    "    mov $1006, %eax",
    "    jmp *%rsi",
    // Report 1005 with the quadword at %fs:0.
    ".globl g_fs",
    "g_fs:",
    "    mov %fs:0, %rdi",
    "    mov $1005, %eax",
    "    syscall",
    "    ud2",
    // rdi = addr: touch forever (page-fault benchmark: each run faults again).
    ".globl g_touch_forever",
    "g_touch_forever:",
    "1:  mov (%rdi), %rax",
    "    jmp 1b",
    // Doorbell store loop (raw exit floor): rdi = doorbell GVA.
    ".globl g_doorbell_forever",
    "g_doorbell_forever:",
    "1:  movl %eax, (%rdi)",
    "    jmp 1b",
    ".balign 4096",
    ".globl g_end",
    "g_end:",
    ".popsection",
    options(att_syntax)
);

macro_rules! guest_fns {
    ($($name:ident),* $(,)?) => {
        mod sym {
            unsafe extern "C" { $( pub static $name: u8; )* }
        }
        $( pub fn $name() -> u64 { &raw const sym::$name as u64 } )*
    };
}

pub mod g {
    guest_fns!(
        g_start,
        g_end,
        g_syscall_loop,
        g_syscall_forever,
        g_load,
        g_store,
        g_exec,
        g_report,
        g_hlt,
        g_cli,
        g_out,
        g_in,
        g_movcr3,
        g_lgdt,
        g_wrmsr,
        g_swapgs,
        g_ud2,
        g_div0,
        g_div0_insn,
        g_vmcall,
        g_spin_flag,
        g_forged_claim,
        g_forged_claim_bad_rcx,
        g_fs,
        g_touch_forever,
        g_doorbell_forever,
    );
}

/// Host memory for the guest: anonymous, private, read-write on the host.
pub fn host_pages(len: u64) -> u64 {
    // SAFETY: a fresh anonymous mapping; nothing else refers to it.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    p as u64
}

/// A VM with the guest functions mapped (user, read-execute) and a 64 KiB user stack.
pub struct Env {
    pub vm: Arc<Vm>,
    pub vcpu: Vcpu,
    pub stack_top: u64,
}

/// Maps the guest functions' pages into `vm`.
pub fn map_guest_code(vm: &Vm) {
    let (start, end) = (g::g_start(), g::g_end());
    // SAFETY: the test binary's own text, which stays mapped for the whole process; the guest
    // only reads and executes it.
    unsafe { vm.add_memory(start, end - start, false).unwrap() };
    vm.map(start, end - start, Perms::USER_RX).unwrap();
}

/// Host pages added to `vm` and mapped with `perms`.
pub fn guest_pages(vm: &Vm, len: u64, perms: Perms) -> u64 {
    let addr = host_pages(len);
    // SAFETY: memory this test owns and only touches through raw pointers.
    unsafe { vm.add_memory(addr, len, false).unwrap() };
    vm.map(addr, len, perms).unwrap();
    addr
}

impl Env {
    /// `None` (and the test recorded as skipped) when /dev/kvm is unusable.
    pub fn new(test: &str) -> Option<Env> {
        if !dune::testing::kvm_or_skip(test) {
            return None;
        }
        let vm = Vm::new(VmConfig::default()).expect("Vm::new");
        Some(Self::with_vm(vm))
    }

    pub fn with_vm(vm: Arc<Vm>) -> Env {
        map_guest_code(&vm);
        let stack = guest_pages(&vm, 64 << 10, Perms::USER_RW);
        let mut vcpu = vm.create_vcpu().expect("create_vcpu");
        vcpu.set_watchdog(Some(Duration::from_secs(20)));
        Env { vm, vcpu, stack_top: stack + (64 << 10) }
    }

    /// Calls guest function `f` in ring 3 with `args` in rdi, rsi, rdx, rcx and runs to the
    /// first exit.
    pub fn call(&mut self, f: u64, args: &[u64]) -> Trap {
        self.start(f, args);
        self.vcpu.run().expect("run")
    }

    /// Prepares a call without running.
    pub fn start(&mut self, f: u64, args: &[u64]) {
        let mut r = self.vcpu.regs().unwrap();
        for (i, &a) in args.iter().enumerate() {
            *[&mut r.rdi, &mut r.rsi, &mut r.rdx, &mut r.rcx][i] = a;
        }
        self.vcpu.set_regs(&r).unwrap();
        self.vcpu.enter_user(f, self.stack_top).unwrap();
    }

    /// Resumes and runs to the next exit.
    pub fn resume(&mut self) -> Trap {
        self.vcpu.run().expect("run")
    }
}

/// Asserts `t` is the report system call `REPORT + k` and returns its first argument.
#[track_caller]
pub fn report(t: Trap, k: u64) -> u64 {
    match t {
        Trap::Syscall(sc) if sc.nr == REPORT + k => sc.args[0],
        other => panic!("expected report {}, got {other:?}", REPORT + k),
    }
}
