//! Issue acceptance 5g and 5h: guest and host see each other's writes, also after the host
//! replaces the memory with `mmap(MAP_FIXED)` or drops it with `madvise(MADV_DONTNEED)`; the
//! page-table walk reports accessed and dirty bits.
mod common;
use common::{Env, g, guest_pages, report};
use dune::Perms;

fn read(p: u64) -> u64 {
    // SAFETY: test-owned guest page.
    unsafe { std::ptr::read_volatile(p as *const u64) }
}

fn write(p: u64, v: u64) {
    // SAFETY: test-owned guest page.
    unsafe { std::ptr::write_volatile(p as *mut u64, v) }
}

#[test]
fn host_and_guest_share_memory() {
    let Some(mut env) = Env::new("dune::memory::host_and_guest_share_memory") else {
        return;
    };
    let p = guest_pages(&env.vm, 2 * 4096, Perms::USER_RW);
    write(p, 0xfeed);
    assert_eq!(report(env.call(g::g_load(), &[p]), 0), 0xfeed, "guest sees host write");
    let _ = report(env.call(g::g_store(), &[p + 4096, 0xbeef]), 1);
    assert_eq!(read(p + 4096), 0xbeef, "host sees guest write");

    // Replace the first page on the host with a fresh mapping holding other data.
    // SAFETY: replaces a test-owned page.
    let q = unsafe {
        libc::mmap(
            p as *mut _,
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    assert_eq!(q as u64, p);
    write(p, 0x1111);
    assert_eq!(report(env.call(g::g_load(), &[p]), 0), 0x1111, "guest sees the new mapping");
    let _ = report(env.call(g::g_store(), &[p, 0x2222]), 1);
    assert_eq!(read(p), 0x2222, "host sees guest write to the new mapping");

    // Drop the second page: anonymous private memory reads back as zeros, in the guest too.
    // SAFETY: test-owned page.
    let rc = unsafe { libc::madvise((p + 4096) as *mut _, 4096, libc::MADV_DONTNEED) };
    assert_eq!(rc, 0);
    assert_eq!(report(env.call(g::g_load(), &[p + 4096]), 0), 0, "guest sees the zeroed page");
    let _ = report(env.call(g::g_store(), &[p + 4096, 7]), 1);
    assert_eq!(read(p + 4096), 7);
}

#[test]
fn walk_reports_accessed_and_dirty_bits() {
    let Some(mut env) = Env::new("dune::memory::walk_reports_accessed_and_dirty_bits") else {
        return;
    };
    let p = guest_pages(&env.vm, 2 * 4096, Perms::USER_RW);
    env.vm.clear_accessed_dirty(p, 2 * 4096).unwrap();
    let t = env.vm.translate(p).unwrap();
    assert!(!t.accessed && !t.dirty);

    let _ = report(env.call(g::g_load(), &[p]), 0);
    let t = env.vm.translate(p).unwrap();
    assert!(t.accessed, "read sets A");
    assert!(!t.dirty, "read does not set D");
    assert!(env.vm.walk(p).accessed_all_levels(), "A on every level");
    let untouched = env.vm.translate(p + 4096).unwrap();
    assert!(!untouched.accessed && !untouched.dirty);

    let _ = report(env.call(g::g_store(), &[p + 4096, 1]), 1);
    let t = env.vm.translate(p + 4096).unwrap();
    assert!(t.accessed && t.dirty, "write sets A and D");

    // Cleared again, a further write sets them again.
    env.vm.clear_accessed_dirty(p, 2 * 4096).unwrap();
    let _ = report(env.call(g::g_store(), &[p, 2]), 1);
    let t = env.vm.translate(p).unwrap();
    assert!(t.accessed && t.dirty);
    assert!(!env.vm.translate(p + 4096).unwrap().dirty);
}

/// Page-table pages are never reused for another range (paging.rs, "Page-table pages are never
/// reused"). The sequence below is the one that corrupted CPython's buffers on a shadow-paging
/// host: a 2 MiB slot whose 4 KiB pages the guest has used is mapped again as a whole without a
/// host change (the old code replaced its page table by a 2 MiB page and freed the table), then
/// another slot gets a table (the old code handed it the freed one, whose shadow still held the
/// first slot's translations), and the guest's stores to the second slot landed in the first.
#[test]
fn remapping_a_slot_never_moves_its_page_table_to_another_range() {
    let Some(mut env) =
        Env::new("dune::memory::remapping_a_slot_never_moves_its_page_table_to_another_range")
    else {
        return;
    };
    const M2: u64 = 2 << 20;
    let raw = common::host_pages(4 * M2);
    let base = raw.next_multiple_of(M2);
    let (r1, r2) = (base, base + M2);
    // SAFETY: memory this test owns and only touches through raw pointers.
    unsafe { env.vm.add_memory(raw, 4 * M2, false).unwrap() };
    // r1 in 4 KiB pages (the first page alone, so the slot gets a page table); the guest
    // touches 16 of them.
    env.vm.map(r1, 4096, Perms::USER_RW).unwrap();
    env.vm.map(r1 + 4096, M2 - 4096, Perms::USER_RW).unwrap();
    for i in 0..16 {
        let _ = report(env.call(g::g_store(), &[r1 + i * 4096 + 8, 0x1000 + i]), 1);
    }
    // The whole slot again, same rights, nothing changed on the host.
    env.vm.map_host_coherent(r1, M2, Perms::USER_RW).unwrap();
    // r2 gets a page table; the guest stores into its first 16 pages.
    env.vm.map(r2, 4096, Perms::USER_RW).unwrap();
    env.vm.map(r2 + 4096, M2 - 4096, Perms::USER_RW).unwrap();
    for i in 0..16 {
        let _ = report(env.call(g::g_store(), &[r2 + i * 4096 + 8, 0x2000 + i]), 1);
    }
    for i in 0..16 {
        assert_eq!(read(r2 + i * 4096 + 8), 0x2000 + i, "r2 page {i}: the guest store is lost");
        assert_eq!(read(r1 + i * 4096 + 8), 0x1000 + i, "r1 page {i} was overwritten");
        assert_eq!(report(env.call(g::g_load(), &[r2 + i * 4096 + 8]), 0), 0x2000 + i);
    }
}
