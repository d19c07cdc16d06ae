use dune::{Perms, Trap, Vm, VmConfig};

core::arch::global_asm!(
    ".pushsection .text.dune_guest, \"ax\"",
    ".balign 4096",
    ".globl smoke_guest_start",
    "smoke_guest_start:",
    "smoke_syscall_loop:",
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
    ".balign 4096",
    ".popsection",
    options(att_syntax)
);

unsafe extern "C" {
    static smoke_guest_start: u8;
}

#[test]
fn smoke() {
    let t = std::time::Instant::now();
    let vm = Vm::new(VmConfig::default()).unwrap();
    eprintln!("platform {:?} in {:?}", vm.platform(), t.elapsed());
    let code = &raw const smoke_guest_start as u64;
    let stack = vec![0u8; 1 << 16];
    let _ = stack;
    unsafe { vm.add_memory(code, 4096, false).unwrap() };
    vm.map(code, 4096, Perms::USER_RX).unwrap();
    let mut v = vm.create_vcpu().unwrap();
    v.set_watchdog(Some(std::time::Duration::from_secs(10)));
    let mut r = v.regs().unwrap();
    let n = 10_000u64;
    r.rdi = n;
    v.set_regs(&r).unwrap();
    v.enter_user(code, 0).unwrap();
    let mut i = 0u64;
    let t = std::time::Instant::now();
    loop {
        match v.run().unwrap() {
            Trap::Syscall(sc) if sc.nr == 60 => break,
            Trap::Syscall(sc) => {
                assert_eq!(sc.nr, 0x100 + i);
                assert_eq!(sc.args, [i, i + 1, i + 2, i + 3, i + 4, i + 5]);
                v.set_syscall_result(3 * i + 7).unwrap();
                i += 1;
            }
            other => panic!("unexpected {other:?} at i={i}"),
        }
    }
    assert_eq!(i, n);
    eprintln!("{n} syscalls in {:?} ({:?} each)", t.elapsed(), t.elapsed() / n as u32);
}
