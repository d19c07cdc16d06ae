//! The untrusted memory manager: the program's address space.
//!
//! The program lives in a **reserved range** `[lo, hi)` of the supervisor's own address space,
//! below the guest-physical width, which the supervisor reserves with one `PROT_NONE` mapping at
//! start-up and never allocates from. Every program mapping is a host mapping at the same
//! address (GVA == HVA == GPA), mirrored three ways:
//!
//! 1. the host mapping itself (`mmap(MAP_FIXED)` over the reservation, with the program's
//!    protection, so the host kernel enforces it too when it touches program buffers);
//! 2. KVM memory slots covering the range in 256 MiB chunks, never merged (so adding memory
//!    never deletes a slot under a running vCPU);
//! 3. the guest page tables (user pages with the same rights; `PROT_NONE` pages unmapped).
//!
//! Unmapping re-reserves the range with `PROT_NONE`, so the range never has holes the host
//! kernel could place a runtime allocation in. Pointer validation is therefore a range check: a
//! buffer wholly inside `[lo, hi)` can only ever reach program memory or the reservation (which
//! makes the kernel return `EFAULT`), never the runtime.
//!
//! Changes to the guest page tables are followed by the matching host change, so KVM's MMU
//! notifier invalidates cached translations and no explicit TLB flush is needed
//! (see `dune::Vm::map_host_coherent`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use dune::{Perms, Vm};

use crate::errno::Errno;
use crate::sys;

/// Bytes per page.
pub const PAGE: u64 = 4096;
/// Slot granularity: 256 MiB chunks of the reserved range get a memory slot on first use.
/// KVM's per-slot metadata grows with the slot, so a smaller chunk makes start-up cheaper; a
/// larger one means fewer slots (32764 chunks cover 8 TiB of touched address space).
const CHUNK: u64 = 256 << 20;
/// Lowest program address (Linux's default `vm.mmap_min_addr`).
pub const PROGRAM_LO: u64 = 0x10000;

/// Rounds `x` up to a page boundary (`None` on overflow).
pub fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE - 1).map(|v| v & !(PAGE - 1))
}

/// What a mapping is, for `/proc`-style reporting and `mremap` rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Anonymous memory.
    Anon,
    /// A file mapping at a file offset.
    File {
        /// Offset in the file of the mapping's first byte.
        offset: u64,
    },
    /// The main stack.
    Stack,
    /// The brk heap.
    Heap,
}

/// One mapping of the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vma {
    /// First byte (page aligned).
    pub start: u64,
    /// One past the last byte (page aligned).
    pub end: u64,
    /// `PROT_*` bits.
    pub prot: i32,
    /// `MAP_SHARED` or `MAP_PRIVATE`.
    pub shared: bool,
    /// What it is.
    pub kind: Kind,
}

/// The program's brk heap.
#[derive(Clone, Copy, Debug)]
pub struct Brk {
    /// Where the heap starts (page aligned).
    pub start: u64,
    /// The current break (any byte address >= start).
    pub cur: u64,
}

/// The program's address space.
#[derive(Debug)]
pub struct Mm {
    vm: Arc<Vm>,
    lo: u64,
    hi: u64,
    vmas: BTreeMap<u64, Vma>,
    covered: BTreeSet<u64>,
    /// Top-down allocation searches start below this address.
    pub mmap_top: u64,
    /// The brk heap.
    pub brk: Brk,
    /// Ask for transparent huge pages on private anonymous mappings of [`HUGE`] bytes or more
    /// and on the brk heap: on shadow-paging hosts (kvm_pvm) the guest's first touch of a page
    /// the host has not allocated yet costs ~37 µs, of one it has ~10 µs (kvm-probe
    /// RESULTS.md), and a 2 MiB host page behind a 2 MiB guest page is one fault instead of
    /// 512. Off where the probe found hardware-walked guest page tables (EPT/NPT), keeping
    /// memory use as native there.
    huge_pages: bool,
}

/// Private anonymous mappings at least this long get transparent huge pages where
/// [`Mm`]'s `huge_pages` says so (the x86-64 2 MiB page size).
pub const HUGE: u64 = 2 << 20;

/// Whether `b` continues `a` (touching, same rights and sharing, same kind of memory: both
/// anonymous, or the same file at contiguous offsets); returns the merged kind.
fn mergeable(a: &Vma, b: &Vma) -> Option<Kind> {
    if a.end != b.start || a.prot != b.prot || a.shared != b.shared {
        return None;
    }
    match (a.kind, b.kind) {
        (Kind::File { offset: x }, Kind::File { offset: y })
            if !a.shared && y == x + (a.end - a.start) =>
        {
            Some(a.kind)
        }
        (Kind::File { .. }, _) | (_, Kind::File { .. }) => None,
        // Anonymous private memory of any origin.
        (k, _) if !a.shared => Some(k),
        _ => None,
    }
}

/// Guest rights for `prot`, or `None` for `PROT_NONE` (unmapped in the guest).
fn perms(prot: i32) -> Option<Perms> {
    let r = prot & (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) != 0;
    r.then_some(Perms {
        write: prot & libc::PROT_WRITE != 0,
        exec: prot & libc::PROT_EXEC != 0,
        user: true,
    })
}

impl Mm {
    /// Reserves `[lo, reserve_end)` and gives the program `[lo, hi)` of it (page aligned, `hi`
    /// 1 GiB aligned); `[hi, reserve_end)` stays reserved as a guard, so that a length the
    /// supervisor computed too small can only ever reach `PROT_NONE` memory.
    ///
    /// Errors: `EEXIST` if anything is already mapped there, `ENOMEM` under a tight
    /// `RLIMIT_AS`.
    pub fn new(vm: Arc<Vm>, lo: u64, hi: u64, reserve_end: u64) -> Result<Mm, Errno> {
        sys::reserve(lo, reserve_end - lo, true)?;
        let huge_pages = vm.platform().tlb_flush == dune::TlbFlush::ZapShadow;
        Ok(Mm {
            huge_pages,
            vm,
            lo,
            hi,
            vmas: BTreeMap::new(),
            covered: BTreeSet::new(),
            mmap_top: hi,
            brk: Brk { start: 0, cur: 0 },
        })
    }

    /// The reserved range.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.lo..self.hi
    }

    /// The VM.
    pub fn vm(&self) -> &Arc<Vm> {
        &self.vm
    }

    /// Whether `[addr, addr + len)` lies wholly inside the reserved range (`len` 0: always).
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        len == 0 || addr.checked_add(len).is_some_and(|end| addr >= self.lo && end <= self.hi)
    }

    /// `Err(EFAULT)` unless [`Mm::contains`]. This is the whole of pointer validation for a
    /// buffer the host kernel accesses directly; see the module docs for why it suffices.
    pub fn check(&self, addr: u64, len: u64) -> Result<(), Errno> {
        if self.contains(addr, len) { Ok(()) } else { Err(Errno::EFAULT) }
    }

    /// The mappings, in address order.
    pub fn vmas(&self) -> impl Iterator<Item = &Vma> {
        self.vmas.values()
    }

    /// The mapping containing `addr`.
    pub fn vma_at(&self, addr: u64) -> Option<&Vma> {
        self.vmas.range(..=addr).next_back().map(|(_, v)| v).filter(|v| addr < v.end)
    }

    /// Whether `[addr, addr + len)` is free of mappings (and inside the range).
    pub fn is_free(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        if addr < self.lo || end > self.hi {
            return false;
        }
        if let Some(v) = self.vmas.range(..end).next_back().map(|(_, v)| v)
            && v.end > addr
        {
            return false;
        }
        true
    }

    /// Whether every page of `[addr, end)` is mapped.
    fn fully_mapped(&self, addr: u64, end: u64) -> bool {
        let mut at = addr;
        while at < end {
            match self.vma_at(at) {
                Some(v) => at = v.end,
                None => return false,
            }
        }
        true
    }

    /// The highest free, `align`-aligned range of `len` bytes below `below` (top-down, like
    /// Linux's default layout).
    pub fn find_free(&self, len: u64, align: u64, below: u64) -> Option<u64> {
        let align = align.max(PAGE);
        let mut top = below.min(self.hi);
        // Walk the mappings downwards from `top`, trying the gap under each.
        let mut iter = self.vmas.range(..top).rev().peekable();
        loop {
            let floor = iter.peek().map_or(self.lo, |(_, v)| v.end.max(self.lo));
            if top >= len {
                let cand = (top - len) & !(align - 1);
                if cand >= floor && cand >= self.lo {
                    return Some(cand);
                }
            }
            match iter.next() {
                Some((_, v)) => top = top.min(v.start),
                None => return None,
            }
        }
    }

    /// Makes sure every 1 GiB chunk touching `[start, end)` has a memory slot.
    fn cover(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        let mut c = start / CHUNK;
        while c * CHUNK < end {
            if !self.covered.contains(&c) {
                let base = (c * CHUNK).max(self.lo);
                let top = ((c + 1) * CHUNK).min(self.hi);
                // `add_memory` states the contract this chunk meets.
                add_memory(&self.vm, base & !(PAGE - 1), top - (base & !(PAGE - 1)))?;
                self.covered.insert(c);
            }
            c += 1;
        }
        Ok(())
    }

    /// Records `vma`, replacing whatever it overlaps (split at its edges), and merges it with
    /// touching mappings of the same kind and rights, as Linux merges VMAs (so a mapping grown
    /// in place is one mapping again).
    fn insert(&mut self, vma: Vma) {
        self.cut(vma.start, vma.end);
        let mut v = vma;
        if let Some(prev) = self.vmas.range(..v.start).next_back().map(|(_, p)| *p)
            && let Some(kind) = mergeable(&prev, &v)
        {
            self.vmas.remove(&prev.start);
            v = Vma { start: prev.start, kind, ..v };
        }
        if let Some(next) = self.vmas.get(&v.end).copied()
            && let Some(kind) = mergeable(&v, &next)
        {
            self.vmas.remove(&next.start);
            v = Vma { end: next.end, kind, ..v };
        }
        self.vmas.insert(v.start, v);
    }

    /// Removes `[start, end)` from the records, splitting mappings that straddle its edges.
    fn cut(&mut self, start: u64, end: u64) {
        let hits: Vec<Vma> = self
            .vmas
            .range(..end)
            .rev()
            .take_while(|(_, v)| v.end > start)
            .map(|(_, v)| *v)
            .collect();
        for v in hits {
            self.vmas.remove(&v.start);
            if v.start < start {
                self.vmas.insert(v.start, Vma { end: start, ..v });
            }
            if v.end > end {
                let kind = match v.kind {
                    Kind::File { offset } => Kind::File { offset: offset + (end - v.start) },
                    k => k,
                };
                self.vmas.insert(end, Vma { start: end, kind, ..v });
            }
        }
    }

    fn guest_map(&self, addr: u64, len: u64, prot: i32) -> Result<(), Errno> {
        let r = match perms(prot) {
            Some(p) => self.vm.map_host_coherent(addr, len, p),
            None => self.vm.unmap_host_coherent(addr, len).map(|_| ()),
        };
        r.map_err(|e| {
            tracing::warn!(%e, addr, len, "guest page-table update failed");
            Errno::ENOMEM
        })
    }

    /// Maps `[addr, addr + len)` (page aligned, inside the range) with `mmap(MAP_FIXED)` on the
    /// host and mirrors it in the guest. `fd` must already have been checked against the
    /// runtime's descriptors. Returns `addr`.
    pub fn map_fixed(
        &mut self,
        addr: u64,
        len: u64,
        prot: i32,
        flags: i32,
        fd: i32,
        kind: Kind,
    ) -> Result<u64, Errno> {
        debug_assert!(
            self.contains(addr, len) && addr.is_multiple_of(PAGE) && len.is_multiple_of(PAGE)
        );
        self.cover(addr, addr + len)?;
        let off = match kind {
            Kind::File { offset } => offset,
            _ => 0,
        };
        #[allow(unsafe_code)]
        // SAFETY: the range is inside the program range (debug-asserted above, guaranteed by
        // every caller) and `fd` was checked against the runtime's descriptors by the caller.
        unsafe {
            sys::mmap_fixed(addr, len, prot, flags, fd, off)?
        };
        let private_anon = flags & (libc::MAP_ANONYMOUS | libc::MAP_SHARED) == libc::MAP_ANONYMOUS;
        if self.huge_pages && private_anon && (len >= HUGE || kind == Kind::Heap) {
            #[allow(unsafe_code)]
            // SAFETY: the range is inside the program range (see above).
            unsafe {
                sys::advise_huge_pages(addr, len)
            };
        }
        if let Err(e) = self.guest_map(addr, len, prot) {
            let _ = sys::reserve(addr, len, false);
            let _ = self.vm.unmap(addr, len);
            self.cut(addr, addr + len);
            return Err(e);
        }
        let shared = flags & libc::MAP_SHARED != 0;
        self.insert(Vma { start: addr, end: addr + len, prot, shared, kind });
        Ok(addr)
    }

    /// Unmaps `[addr, addr + len)`: the guest mapping first, then the host range is reserved
    /// again. Unmapped parts are fine. Errors: `EINVAL` if misaligned or outside the range.
    pub fn unmap(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        let len = page_up(len).ok_or(Errno::EINVAL)?;
        if !addr.is_multiple_of(PAGE) || len == 0 || !self.contains(addr, len) {
            return Err(Errno::EINVAL);
        }
        let _ = self.vm.unmap_host_coherent(addr, len).map_err(|_| Errno::EINVAL)?;
        sys::reserve(addr, len, false)?;
        self.cut(addr, addr + len);
        Ok(())
    }

    /// `mprotect`: every page of `[addr, addr + len)` must be mapped (`ENOMEM` otherwise,
    /// including any page outside the range, as for addresses the program cannot name).
    pub fn protect(&mut self, addr: u64, len: u64, prot: i32) -> Result<(), Errno> {
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        if !addr.is_multiple_of(PAGE) {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        if !self.contains(addr, len) || !self.fully_mapped(addr, addr + len) {
            return Err(Errno::ENOMEM);
        }
        self.guest_map(addr, len, prot)?;
        #[allow(unsafe_code)]
        // SAFETY: the range is inside the program range (checked above).
        unsafe {
            sys::mprotect(addr, len, prot)?
        };
        let pieces: Vec<Vma> = self
            .vmas
            .range(..addr + len)
            .rev()
            .take_while(|(_, v)| v.end > addr)
            .map(|(_, v)| *v)
            .collect();
        for v in pieces {
            let s = v.start.max(addr);
            let e = v.end.min(addr + len);
            let kind = match v.kind {
                Kind::File { offset } => Kind::File { offset: offset + (s - v.start) },
                k => k,
            };
            self.insert(Vma { start: s, end: e, prot, kind, ..v });
        }
        Ok(())
    }

    /// `mremap`. `new_addr` is used with `MREMAP_FIXED`. Returns the new address.
    pub fn remap(
        &mut self,
        old: u64,
        old_len: u64,
        new_len: u64,
        flags: i32,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        let maymove = flags & libc::MREMAP_MAYMOVE != 0;
        let fixed = flags & libc::MREMAP_FIXED != 0;
        if flags & !(libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED) != 0 || (fixed && !maymove) {
            return Err(Errno::EINVAL);
        }
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
        if !old.is_multiple_of(PAGE) || new_len == 0 || old_len == 0 {
            return Err(Errno::EINVAL);
        }
        let vma = *self.vma_at(old).ok_or(Errno::EFAULT)?;
        if old + old_len > vma.end {
            return Err(Errno::EFAULT);
        }
        if fixed {
            if !new_addr.is_multiple_of(PAGE) || !self.contains(new_addr, new_len) {
                return Err(Errno::EINVAL);
            }
            if new_addr < old + old_len && old < new_addr + new_len {
                return Err(Errno::EINVAL);
            }
            return self.move_pages(vma, old, old_len, new_len, new_addr);
        }
        if new_len <= old_len {
            if new_len < old_len {
                self.unmap(old + new_len, old_len - new_len)?;
            }
            return Ok(old);
        }
        // Grow in place when the pages after it are free and the mapping can simply be
        // extended with the same kind of memory.
        let tail = old + old_len;
        let extra = new_len - old_len;
        if tail == vma.end && self.is_free(tail, extra) {
            let ext = match vma.kind {
                Kind::Anon | Kind::Heap | Kind::Stack if !vma.shared => Some((Kind::Anon, -1)),
                _ => None,
            };
            if let Some((kind, fd)) = ext {
                let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
                self.map_fixed(tail, extra, vma.prot, flags, fd, kind)?;
                return Ok(old);
            }
        }
        if !maymove {
            return Err(Errno::ENOMEM);
        }
        let target = self.find_free(new_len, PAGE, self.mmap_top).ok_or(Errno::ENOMEM)?;
        self.move_pages(vma, old, old_len, new_len, target)
    }

    /// Moves `[old, old + old_len)` of `vma` to `target` with size `new_len` (host `mremap`),
    /// re-reserving the source.
    fn move_pages(
        &mut self,
        vma: Vma,
        old: u64,
        old_len: u64,
        new_len: u64,
        target: u64,
    ) -> Result<u64, Errno> {
        self.cover(target, target + new_len)?;
        let _ = self.vm.unmap_host_coherent(old, old_len);
        #[allow(unsafe_code)]
        // SAFETY: both ranges are inside the program range (checked by the callers).
        let moved = unsafe { sys::mremap_fixed(old, old_len, new_len, target) };
        if let Err(e) = moved {
            let _ = self.guest_map(old, old_len, vma.prot);
            return Err(e);
        }
        // mremap left a hole at the source: reserve it again at once. Failing means something
        // else took the hole, which would put foreign memory in the program range: fail closed.
        if sys::reserve(old, old_len, true).is_err() {
            eprintln!("sandbox: fatal: could not re-reserve {old:#x}+{old_len:#x} after mremap");
            std::process::abort();
        }
        self.cut(old, old + old_len);
        self.guest_map(target, new_len, vma.prot)?;
        let kind = match vma.kind {
            Kind::File { offset } => Kind::File { offset: offset + (old - vma.start) },
            Kind::Heap | Kind::Stack => Kind::Anon,
            k => k,
        };
        self.insert(Vma {
            start: target,
            end: target + new_len,
            prot: vma.prot,
            shared: vma.shared,
            kind,
        });
        Ok(target)
    }

    /// Moves host memory the kernel mapped outside the range, `[from, from + len)` (page
    /// aligned; a SysV shared memory segment attached where the kernel chose), to `addr`
    /// inside it (`[addr, addr + len)` page aligned and inside the range): `mremap` onto the
    /// reservation or the program mappings there, which it replaces, then the guest mapping
    /// with `prot` and the record, a shared mapping of `kind`. The memory is taken over: on
    /// error it has been unmapped, wherever it was. Returns `addr`.
    pub fn adopt(
        &mut self,
        from: u64,
        addr: u64,
        len: u64,
        prot: i32,
        kind: Kind,
    ) -> Result<u64, Errno> {
        debug_assert!(
            self.contains(addr, len) && addr.is_multiple_of(PAGE) && len.is_multiple_of(PAGE)
        );
        let release = |e| {
            #[allow(unsafe_code)]
            // SAFETY: `[from, from + len)` is the caller's mapping outside the range, handed
            // over to us.
            unsafe {
                sys::unmap_own(from, len)
            };
            Err(e)
        };
        if let Err(e) = self.cover(addr, addr + len) {
            return release(e);
        }
        #[allow(unsafe_code)]
        // SAFETY: the source is the caller's own mapping outside the range, the target inside
        // the range (debug-asserted above, guaranteed by the caller).
        if let Err(e) = unsafe { sys::mremap_into(from, len, addr) } {
            return release(e);
        }
        if let Err(e) = self.guest_map(addr, len, prot) {
            let _ = sys::reserve(addr, len, false);
            let _ = self.vm.unmap(addr, len);
            self.cut(addr, addr + len);
            return Err(e);
        }
        self.insert(Vma { start: addr, end: addr + len, prot, shared: true, kind });
        Ok(addr)
    }

    /// Unmaps everything (for `execve`). Memory slots stay.
    pub fn clear(&mut self) {
        let all: Vec<(u64, u64)> = self.vmas.values().map(|v| (v.start, v.end)).collect();
        for (s, e) in all {
            let _ = self.unmap(s, e - s);
        }
        self.brk = Brk { start: 0, cur: 0 };
        self.mmap_top = self.hi;
    }

    /// The same address space in a forked child's new VM: the host memory is the child's copy
    /// already; slots and guest mappings are rebuilt from the records.
    pub fn clone_for(&self, vm: Arc<Vm>) -> Result<Mm, Errno> {
        let mut m = Mm {
            vm,
            lo: self.lo,
            hi: self.hi,
            vmas: self.vmas.clone(),
            covered: BTreeSet::new(),
            mmap_top: self.mmap_top,
            brk: self.brk,
            huge_pages: self.huge_pages,
        };
        for c in &self.covered {
            let (s, e) = (c * CHUNK, (c + 1) * CHUNK);
            m.cover(s.max(m.lo), e.min(m.hi))?;
        }
        let vmas: Vec<Vma> = m.vmas.values().copied().collect();
        for v in vmas {
            m.guest_map(v.start, v.end - v.start, v.prot)?;
        }
        Ok(m)
    }

    /// `brk(new)`: moves the break if the pages it needs are free; returns the break.
    pub fn set_brk(&mut self, new: u64) -> u64 {
        let b = self.brk;
        if new < b.start {
            return b.cur;
        }
        let (Some(old_end), Some(new_end)) = (page_up(b.cur), page_up(new)) else {
            return b.cur;
        };
        if new_end > old_end {
            if !self.is_free(old_end, new_end - old_end) {
                return b.cur;
            }
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
            let prot = libc::PROT_READ | libc::PROT_WRITE;
            if self.map_fixed(old_end, new_end - old_end, prot, flags, -1, Kind::Heap).is_err() {
                return b.cur;
            }
        } else if new_end < old_end && self.unmap(new_end, old_end - new_end).is_err() {
            return b.cur;
        }
        self.brk.cur = new;
        new
    }
}

#[allow(unsafe_code)]
fn add_memory(vm: &Vm, addr: u64, len: u64) -> Result<(), Errno> {
    // SAFETY: `[addr, addr + len)` is inside the program's reserved range, which stays mapped
    // (as program memory or PROT_NONE reservation) as long as the VM exists; the supervisor
    // touches it only through the kernel (process_vm_readv/writev), never through references.
    unsafe { vm.add_memory(addr, len, false) }.map(|_| ()).map_err(|e| {
        tracing::warn!(%e, addr, len, "adding program memory to the VM failed");
        Errno::ENOMEM
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_up_rounds_and_detects_overflow() {
        assert_eq!(page_up(0), Some(0));
        assert_eq!(page_up(1), Some(PAGE));
        assert_eq!(page_up(PAGE), Some(PAGE));
        assert_eq!(page_up(u64::MAX), None);
    }

    #[test]
    fn perms_mirror_prot() {
        assert_eq!(perms(libc::PROT_NONE), None);
        assert_eq!(perms(libc::PROT_READ), Some(Perms::USER_R));
        assert_eq!(perms(libc::PROT_READ | libc::PROT_WRITE), Some(Perms::USER_RW));
        assert_eq!(perms(libc::PROT_READ | libc::PROT_EXEC), Some(Perms::USER_RX));
        // x86 has no write-only or execute-only pages: both imply read.
        assert_eq!(perms(libc::PROT_WRITE), Some(Perms::USER_RW));
    }
}
