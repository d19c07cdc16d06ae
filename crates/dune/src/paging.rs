//! Guest page tables: 4-level x86-64 paging (Intel SDM Vol. 3A, 4.5) with 4 KiB and 2 MiB pages.
//!
//! The tables live in the page-table arena, host memory that is inside a memory slot at
//! GPA == HVA but is **not mapped in the guest's own address space**, so the program can neither
//! read nor change them. Entries are accessed atomically because the guest's page walker sets
//! accessed and dirty bits concurrently.
//!
//! Intermediate entries are always present, writable and user (P|RW|US); permissions are enforced
//! at the leaf. 1 GiB pages are never used for mappings (they fail on kvm_pvm, and the start-up
//! probe only tests them).
//!
//! ## Page-table pages are never reused
//! A page-table page, once linked into the tree, stays where it is and covers the same range of
//! guest-virtual addresses for the life of the tables: a 2 MiB slot that has a page table keeps
//! it when the whole slot is mapped again (its 512 entries are rewritten), and unmapping clears
//! entries without detaching tables. A shadow-paging host (kvm_pvm) keeps a shadow page per
//! guest page-table page, keyed by its guest-physical address, and does not see the runtime's
//! writes to the tables (they are host writes, not guest writes): had a freed table been reused
//! for another range, the host's shadow of it, still holding translations of the old range,
//! would have been linked in for the new one, so that guest stores to the new range went to the
//! old range's pages (the `mremap` corruption CPython's test suite found: a restored 2 MiB
//! mapping freed a table, the next mapping got it). Hardware page walkers (EPT/NPT) can cache
//! the same stale paging-structure entries until a flush. The cost: tables are only given back
//! when the whole tree goes (`execve` keeps them; the arena bounds them).
//!
//! ## TLB consistency
//! Adding permissions never needs a flush: a stale, less permissive translation only causes a
//! spurious fault that KVM or the runtime resolves by re-walking. Removing or changing a
//! translation returns [`Flush::Needed`]; the VM then flushes every vCPU's TLB before it next
//! enters the guest (see `Vm::request_tlb_flush`).

use std::sync::atomic::Ordering;

use crate::error::MapError;
use crate::sys::HostMapping;

/// Present.
pub const PTE_P: u64 = 1 << 0;
/// Writable.
pub const PTE_RW: u64 = 1 << 1;
/// User-accessible.
pub const PTE_US: u64 = 1 << 2;
/// Accessed (set by the CPU).
pub const PTE_A: u64 = 1 << 5;
/// Dirty (set by the CPU on a write to a leaf).
pub const PTE_D: u64 = 1 << 6;
/// Page size: a leaf at the PD (2 MiB) or PDPT (1 GiB) level.
pub const PTE_PS: u64 = 1 << 7;
/// Execute-disable (needs EFER.NXE).
pub const PTE_NX: u64 = 1 << 63;
/// Physical-address bits of an entry (bits 12..=51).
pub const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;

/// Size of a small page.
pub const PAGE_4K: u64 = 4096;
/// Size of a large page.
pub const PAGE_2M: u64 = 2 << 20;
/// Size of a huge page (used only by the start-up probe).
pub const PAGE_1G: u64 = 1 << 30;

/// Access rights of a guest mapping. Every mapping is readable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Perms {
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
    /// Accessible from ring 3 (U/S = 1).
    pub user: bool,
}

impl Perms {
    /// User read-only, not executable.
    pub const USER_R: Perms = Perms { write: false, exec: false, user: true };
    /// User read-write, not executable.
    pub const USER_RW: Perms = Perms { write: true, exec: false, user: true };
    /// User read-execute.
    pub const USER_RX: Perms = Perms { write: false, exec: true, user: true };
    /// User read-write-execute.
    pub const USER_RWX: Perms = Perms { write: true, exec: true, user: true };
    /// Supervisor read-only, not executable.
    pub const KERNEL_R: Perms = Perms { write: false, exec: false, user: false };
    /// Supervisor read-write, not executable.
    pub const KERNEL_RW: Perms = Perms { write: true, exec: false, user: false };
    /// Supervisor read-execute.
    pub const KERNEL_RX: Perms = Perms { write: false, exec: true, user: false };

    fn bits(self) -> u64 {
        let mut b = PTE_P;
        if self.write {
            b |= PTE_RW;
        }
        if self.user {
            b |= PTE_US;
        }
        if !self.exec {
            b |= PTE_NX;
        }
        b
    }

    fn from_bits(e: u64) -> Perms {
        Perms { write: e & PTE_RW != 0, exec: e & PTE_NX == 0, user: e & PTE_US != 0 }
    }

    /// Whether `self` grants everything `other` grants.
    pub fn covers(self, other: Perms) -> bool {
        (self.write || !other.write) && (self.exec || !other.exec) && (self.user || !other.user)
    }
}

/// Whether a page-table change requires a TLB flush before the guest runs again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Flush {
    /// Nothing the guest may have cached changed.
    None,
    /// A translation was removed or restricted.
    Needed,
}

impl Flush {
    fn or(self, other: Flush) -> Flush {
        if self == Flush::Needed || other == Flush::Needed { Flush::Needed } else { Flush::None }
    }
}

/// The result of translating one GVA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The guest-physical address the GVA maps to.
    pub gpa: u64,
    /// Effective permissions (the leaf's; intermediate levels grant everything).
    pub perms: Perms,
    /// 4 KiB, 2 MiB or 1 GiB.
    pub page_size: u64,
    /// Leaf accessed bit.
    pub accessed: bool,
    /// Leaf dirty bit.
    pub dirty: bool,
}

/// Every entry met while walking one GVA, from the PML4 (level 4) down to the leaf or the first
/// non-present entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walk {
    /// `(level, entry)` pairs, level 4 first.
    pub entries: Vec<(u8, u64)>,
}

impl Walk {
    /// Whether the CPU set the accessed bit on every level.
    pub fn accessed_all_levels(&self) -> bool {
        !self.entries.is_empty() && self.entries.iter().all(|(_, e)| e & PTE_A != 0)
    }
    /// The leaf entry, if the walk reached a present leaf.
    pub fn leaf(&self) -> Option<u64> {
        let &(level, e) = self.entries.last()?;
        (e & PTE_P != 0 && (level == 1 || e & PTE_PS != 0)).then_some(e)
    }
}

/// Guest page tables in a page-table arena.
#[derive(Debug)]
pub struct PageTables {
    arena: HostMapping,
    next: u64,
    root: u64,
    in_use: u64,
}

fn index(gva: u64, level: u8) -> u64 {
    (gva >> (12 + 9 * (u32::from(level) - 1))) & 511
}

fn level_size(level: u8) -> u64 {
    1u64 << (12 + 9 * (u32::from(level) - 1))
}

/// Lower-half canonical range check (the guest's user half is `[0, 2^47)`).
fn check_range(gva: u64, len: u64) -> Result<(), MapError> {
    if len == 0 || !gva.is_multiple_of(PAGE_4K) || !len.is_multiple_of(PAGE_4K) {
        return Err(MapError::Unaligned { gva, len });
    }
    match gva.checked_add(len) {
        Some(end) if end <= 1 << 47 => Ok(()),
        _ => Err(MapError::NonCanonical { gva, len }),
    }
}

impl PageTables {
    /// Creates empty page tables (one zeroed PML4) in `arena`, whose HVA must equal its GPA.
    pub(crate) fn new(arena: HostMapping) -> Result<Self, MapError> {
        let mut pt = PageTables { arena, next: 0, root: 0, in_use: 0 };
        pt.root = pt.alloc()?;
        Ok(pt)
    }

    /// GPA of the PML4 (the value for CR3).
    pub fn root(&self) -> u64 {
        self.root
    }

    /// Page-table pages in use.
    pub fn pages_in_use(&self) -> u64 {
        self.in_use
    }

    /// The arena's GPA range (== HVA range).
    pub fn arena_range(&self) -> std::ops::Range<u64> {
        self.arena.addr()..self.arena.addr() + self.arena.len()
    }

    fn alloc(&mut self) -> Result<u64, MapError> {
        if self.next + PAGE_4K > self.arena.len() {
            return Err(MapError::OutOfPageTables { pages: self.in_use });
        }
        let off = self.next;
        self.next += PAGE_4K;
        self.arena.zero(off, PAGE_4K);
        self.in_use += 1;
        Ok(self.arena.addr() + off)
    }

    fn entry(&self, table_gpa: u64, idx: u64) -> &std::sync::atomic::AtomicU64 {
        self.arena.atomic_u64(table_gpa - self.arena.addr() + idx * 8)
    }

    fn load(&self, table: u64, idx: u64) -> u64 {
        self.entry(table, idx).load(Ordering::Acquire)
    }

    fn store(&self, table: u64, idx: u64, v: u64) {
        self.entry(table, idx).store(v, Ordering::Release)
    }

    /// The table one level below entry `idx` of `table` (level `level`), created if absent.
    /// A large-page leaf in the way is split into 512 entries with the same attributes.
    fn descend(&mut self, table: u64, idx: u64, level: u8) -> Result<u64, MapError> {
        let e = self.load(table, idx);
        if e & PTE_P != 0 && e & PTE_PS == 0 {
            return Ok(e & PTE_ADDR);
        }
        let child = self.alloc()?;
        if e & PTE_P != 0 {
            // Split a large page: level 2 (2 MiB) into 4 KiB entries, level 3 (1 GiB) into 2 MiB.
            let base = e & PTE_ADDR & !(level_size(level) - 1);
            let step = level_size(level - 1);
            let keep = e & !(PTE_ADDR | PTE_PS);
            let ps = if level - 1 > 1 { PTE_PS } else { 0 };
            for i in 0..512 {
                self.store(child, i, (base + i * step) | keep | ps);
            }
        }
        self.store(table, idx, child | PTE_P | PTE_RW | PTE_US);
        Ok(child)
    }

    /// Maps `[gva, gva + len)` onto `[gpa, gpa + len)` with `perms`, replacing whatever was
    /// mapped there. Uses 2 MiB pages where `huge` is set and GVA, GPA and the remaining length
    /// allow. `len` in bytes, page aligned.
    ///
    /// Errors: [`MapError::Unaligned`], [`MapError::NonCanonical`],
    /// [`MapError::OutOfPageTables`] (the pages mapped so far stay mapped).
    pub fn map(
        &mut self,
        gva: u64,
        gpa: u64,
        len: u64,
        perms: Perms,
        huge: bool,
    ) -> Result<Flush, MapError> {
        check_range(gva, len)?;
        if !gpa.is_multiple_of(PAGE_4K) {
            return Err(MapError::Unaligned { gva: gpa, len });
        }
        let mut flush = Flush::None;
        let mut off = 0;
        while off < len {
            let (va, pa) = (gva + off, gpa + off);
            let pdpt = self.descend(self.root, index(va, 4), 4)?;
            let pd = self.descend(pdpt, index(va, 3), 3)?;
            let fits = huge && va % PAGE_2M == 0 && pa % PAGE_2M == 0 && len - off >= PAGE_2M;
            // A 2 MiB slot that already has a page table keeps it (see the module docs,
            // "Page-table pages are never reused"): its 512 entries are rewritten instead.
            let old = self.load(pd, index(va, 2));
            let big = fits && (old & PTE_P == 0 || old & PTE_PS != 0);
            if big {
                flush = flush.or(Self::replaced(old, pa | perms.bits() | PTE_PS));
                self.store(pd, index(va, 2), pa | perms.bits() | PTE_PS);
                off += PAGE_2M;
            } else {
                let pt = self.descend(pd, index(va, 2), 2)?;
                let old = self.load(pt, index(va, 1));
                flush = flush.or(Self::replaced(old, pa | perms.bits()));
                self.store(pt, index(va, 1), pa | perms.bits());
                off += PAGE_4K;
            }
        }
        Ok(flush)
    }

    /// Whether replacing leaf `old` with `new` can leave a stale, more permissive or different
    /// translation cached.
    fn replaced(old: u64, new: u64) -> Flush {
        if old & PTE_P == 0 {
            return Flush::None;
        }
        let same_target = old & PTE_ADDR == new & PTE_ADDR && (old & PTE_PS) == (new & PTE_PS);
        if same_target && Perms::from_bits(new).covers(Perms::from_bits(old)) {
            Flush::None
        } else {
            Flush::Needed
        }
    }

    /// Applies `f` to every present leaf in `[gva, gva + len)`, splitting 2 MiB pages that the
    /// range covers only partly. `f` returns the new entry (0 to unmap).
    fn update(
        &mut self,
        gva: u64,
        len: u64,
        mut f: impl FnMut(u64) -> u64,
    ) -> Result<Flush, MapError> {
        check_range(gva, len)?;
        let end = gva + len;
        let mut va = gva;
        let mut flush = Flush::None;
        while va < end {
            let e4 = self.load(self.root, index(va, 4));
            if e4 & PTE_P == 0 {
                va = (va | (level_size(4) - 1)) + 1;
                continue;
            }
            let e3 = self.load(e4 & PTE_ADDR, index(va, 3));
            if e3 & PTE_P == 0 {
                va = (va | (level_size(3) - 1)) + 1;
                continue;
            }
            let pd = e3 & PTE_ADDR;
            let e2 = self.load(pd, index(va, 2));
            if e2 & PTE_P == 0 {
                va = (va | (PAGE_2M - 1)) + 1;
                continue;
            }
            if e2 & PTE_PS != 0 {
                if va.is_multiple_of(PAGE_2M) && end - va >= PAGE_2M {
                    let new = f(e2);
                    flush = flush.or(Self::replaced(e2, new));
                    self.store(pd, index(va, 2), new);
                    va += PAGE_2M;
                    continue;
                }
                self.descend(pd, index(va, 2), 2)?;
                continue; // re-examine as 4 KiB entries
            }
            let pt = e2 & PTE_ADDR;
            let e1 = self.load(pt, index(va, 1));
            if e1 & PTE_P != 0 {
                let new = f(e1);
                flush = flush.or(Self::replaced(e1, new));
                self.store(pt, index(va, 1), new);
            }
            va += PAGE_4K;
        }
        Ok(flush)
    }

    /// Unmaps `[gva, gva + len)`; unmapped parts are skipped.
    pub fn unmap(&mut self, gva: u64, len: u64) -> Result<Flush, MapError> {
        self.update(gva, len, |_| 0)
    }

    /// Changes the permissions of every mapped page in `[gva, gva + len)`; unmapped parts are
    /// skipped. Accessed and dirty bits are kept.
    pub fn protect(&mut self, gva: u64, len: u64, perms: Perms) -> Result<Flush, MapError> {
        self.update(gva, len, |e| (e & !(PTE_RW | PTE_US | PTE_NX)) | perms.bits())
    }

    /// Clears the accessed and dirty bits of every mapped page in `[gva, gva + len)`. The caller
    /// must flush TLBs for the CPU to set them again (a cached translation does not re-set them).
    pub fn clear_accessed_dirty(&mut self, gva: u64, len: u64) -> Result<Flush, MapError> {
        let _ = self.update(gva, len, |e| e & !(PTE_A | PTE_D))?;
        Ok(Flush::Needed)
    }

    /// Walks `gva` from the PML4 down.
    pub fn walk(&self, gva: u64) -> Walk {
        let mut entries = Vec::with_capacity(4);
        let mut table = self.root;
        for level in (1..=4u8).rev() {
            let e = self.load(table, index(gva, level));
            entries.push((level, e));
            if e & PTE_P == 0 || (level < 4 && e & PTE_PS != 0) || level == 1 {
                break;
            }
            table = e & PTE_ADDR;
        }
        Walk { entries }
    }

    /// Translates `gva` as the CPU would, or `None` if not mapped.
    pub fn translate(&self, gva: u64) -> Option<Translation> {
        let w = self.walk(gva);
        let &(level, _) = w.entries.last()?;
        let leaf = w.leaf()?;
        let size = level_size(level);
        Some(Translation {
            gpa: (leaf & PTE_ADDR & !(size - 1)) + (gva & (size - 1)),
            perms: Perms::from_bits(leaf),
            page_size: size,
            accessed: leaf & PTE_A != 0,
            dirty: leaf & PTE_D != 0,
        })
    }

    /// Installs a 1 GiB leaf (used only by the start-up probe). `gva` and `gpa` 1 GiB aligned.
    pub(crate) fn map_1g(&mut self, gva: u64, gpa: u64, perms: Perms) -> Result<(), MapError> {
        let pdpt = self.descend(self.root, index(gva, 4), 4)?;
        let old = self.load(pdpt, index(gva, 3));
        if old & PTE_P != 0 && old & PTE_PS == 0 {
            // A page directory is in the way; it is never detached (no table is ever freed).
            return Err(MapError::Reserved { gva, len: PAGE_1G });
        }
        self.store(pdpt, index(gva, 3), gpa | perms.bits() | PTE_PS);
        Ok(())
    }

    /// Removes a 1 GiB leaf installed by [`Self::map_1g`].
    pub(crate) fn unmap_1g(&mut self, gva: u64) {
        let e4 = self.load(self.root, index(gva, 4));
        if e4 & PTE_P != 0 {
            self.store(e4 & PTE_ADDR, index(gva, 3), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> PageTables {
        // Any free address works for a host-only test: the arena is never given to KVM here.
        for i in 0..64u64 {
            let addr = 0x3100_0000_0000 + i * (64 << 20);
            if let Ok(m) = HostMapping::anon_at(addr, 16 << 20) {
                return PageTables::new(m).unwrap();
            }
        }
        panic!("no free address for a test arena");
    }

    #[test]
    fn map_translate_unmap_4k() {
        let mut pt = tables();
        assert_eq!(pt.map(0x40_0000, 0x1234_5000, 0x3000, Perms::USER_RX, false), Ok(Flush::None));
        let t = pt.translate(0x40_1234).unwrap();
        assert_eq!(t.gpa, 0x1234_6234);
        assert_eq!(t.perms, Perms::USER_RX);
        assert_eq!(t.page_size, PAGE_4K);
        assert!(pt.translate(0x40_3000).is_none());
        assert_eq!(pt.unmap(0x40_1000, 0x1000), Ok(Flush::Needed));
        assert!(pt.translate(0x40_1000).is_none());
        assert!(pt.translate(0x40_2000).is_some());
        assert_eq!(pt.unmap(0x50_0000, 0x1000), Ok(Flush::None));
    }

    #[test]
    fn huge_pages_and_split() {
        let mut pt = tables();
        let flush = pt.map(0x4000_0000, 0x8000_0000, 4 * PAGE_2M, Perms::USER_RW, true).unwrap();
        assert_eq!(flush, Flush::None);
        assert_eq!(pt.translate(0x4020_0010).unwrap().page_size, PAGE_2M);
        assert_eq!(pt.translate(0x4020_0010).unwrap().gpa, 0x8020_0010);
        // Protect one 4 KiB page inside a 2 MiB page: the page is split, the rest unchanged.
        assert_eq!(pt.protect(0x4020_1000, 0x1000, Perms::USER_R), Ok(Flush::Needed));
        let t = pt.translate(0x4020_1000).unwrap();
        assert_eq!((t.page_size, t.perms, t.gpa), (PAGE_4K, Perms::USER_R, 0x8020_1000));
        let t = pt.translate(0x4020_2000).unwrap();
        assert_eq!((t.page_size, t.perms, t.gpa), (PAGE_4K, Perms::USER_RW, 0x8020_2000));
        assert_eq!(pt.translate(0x4040_0000).unwrap().page_size, PAGE_2M);
        // Upgrading permissions needs no flush.
        assert_eq!(pt.protect(0x4020_1000, 0x1000, Perms::USER_RWX), Ok(Flush::None));
    }

    #[test]
    fn walk_and_accessed_dirty() {
        let mut pt = tables();
        let _ = pt.map(0x7000, 0x7000, 0x1000, Perms::USER_RW, false).unwrap();
        let w = pt.walk(0x7000);
        assert_eq!(w.entries.len(), 4);
        assert!(!w.accessed_all_levels());
        // Simulate the CPU setting A/D on the leaf.
        let leaf_table = w.entries[2].1 & PTE_ADDR;
        pt.entry(leaf_table, 7).fetch_or(PTE_A | PTE_D, Ordering::SeqCst);
        let t = pt.translate(0x7000).unwrap();
        assert!(t.accessed && t.dirty);
        let _ = pt.clear_accessed_dirty(0x7000, 0x1000).unwrap();
        let t = pt.translate(0x7000).unwrap();
        assert!(!t.accessed && !t.dirty);
    }

    #[test]
    fn errors() {
        let mut pt = tables();
        assert!(matches!(
            pt.map(0x1001, 0, 0x1000, Perms::USER_R, false),
            Err(MapError::Unaligned { .. })
        ));
        assert!(matches!(
            pt.map(0x1000, 0, 0, Perms::USER_R, false),
            Err(MapError::Unaligned { .. })
        ));
        assert!(matches!(
            pt.map(0x7fff_ffff_f000, 0, 0x2000, Perms::USER_R, false),
            Err(MapError::NonCanonical { .. })
        ));
    }

    #[test]
    fn a_slot_with_a_table_keeps_it() {
        let mut pt = tables();
        let _ = pt.map(0x20_0000, 0x20_0000, 0x1000, Perms::USER_R, false).unwrap();
        assert_eq!(pt.pages_in_use(), 4);
        let table = pt.walk(0x20_0000).entries[2].1 & PTE_ADDR;
        // Mapping the whole 2 MiB slot again (huge allowed) rewrites the table's entries.
        let f = pt.map(0x20_0000, 0x40_0000, PAGE_2M, Perms::USER_RW, true).unwrap();
        assert_eq!(f, Flush::Needed);
        assert_eq!(pt.pages_in_use(), 4);
        assert_eq!(pt.walk(0x20_0000).entries[2].1 & PTE_ADDR, table);
        for off in [0, 0x1000, PAGE_2M - 0x1000] {
            let t = pt.translate(0x20_0000 + off).unwrap();
            assert_eq!((t.gpa, t.perms, t.page_size), (0x40_0000 + off, Perms::USER_RW, PAGE_4K));
        }
        // Unmapping and mapping elsewhere never hands the table to another range: a new range
        // gets a new table.
        let _ = pt.unmap(0x20_0000, PAGE_2M).unwrap();
        let _ = pt.map(0x60_0000, 0x60_0000, 0x1000, Perms::USER_R, false).unwrap();
        assert_eq!(pt.pages_in_use(), 5);
        assert_ne!(pt.walk(0x60_0000).entries[2].1 & PTE_ADDR, table);
        // A slot that never had a table still gets a 2 MiB page.
        let _ = pt.map(0x80_0000, 0x80_0000, PAGE_2M, Perms::USER_R, true).unwrap();
        assert_eq!(pt.translate(0x80_0000).unwrap().page_size, PAGE_2M);
    }
}
