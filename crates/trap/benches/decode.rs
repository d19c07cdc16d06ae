//! Host-side cost of decoding one exit (synthetic exits, no KVM).
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use trap::layout::{EXC_PORT_BASE, SYSCALL_PORT};
use trap::{ExitContext, RawExit, Regs, decode};

fn bench(c: &mut Criterion) {
    let regs = Regs { rax: 39, rcx: 0x401000, ..Regs::default() };
    let ist = [4, 0x401000, 0x33, 0x202, 0x7fff_0000, 0x2b];
    let cx = ExitContext { regs: &regs, ist: &ist, doorbell_gpa: 0x2000_0000_3000 };
    c.bench_function("decode/syscall-out", |b| {
        b.iter(|| decode(black_box(RawExit::IoOut { port: SYSCALL_PORT }), black_box(&cx), || 0))
    });
    c.bench_function("decode/syscall-doorbell", |b| {
        let raw = RawExit::Mmio { gpa: 0x2000_0000_3000, len: 4, write: true };
        b.iter(|| decode(black_box(raw), black_box(&cx), || 0))
    });
    c.bench_function("decode/page-fault", |b| {
        b.iter(|| {
            decode(black_box(RawExit::IoOut { port: EXC_PORT_BASE + 14 }), black_box(&cx), || {
                0x1000
            })
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
