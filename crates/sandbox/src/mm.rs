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
/// Slot granularity: 32 MiB chunks of the reserved range get a memory slot on first use, and
/// a mapping that spans a whole aligned group of [`GROUP`] chunks (256 MiB) one slot for the
/// group. KVM's per-slot metadata grows with the slot (on shadow-paging hosts a reverse map of
/// 8 bytes per 4 KiB page, allocated and zeroed when the slot is added: arch/x86/kvm/x86.c,
/// `memslot_rmap_alloc`), so small chunks keep a small program's start-up and every `execve`
/// cheap (measured on kvm_pvm: 256 MiB chunks cost a static hello world ~0.6 ms more), while
/// groups keep large reservations within KVM's 32764 slots (8 TiB of them in groups).
const CHUNK: u64 = 32 << 20;
/// Chunks per group (see [`CHUNK`]).
const GROUP: u64 = 8;
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
        /// Which file (device and inode).
        file: FileId,
    },
    /// The main stack.
    Stack,
    /// The brk heap.
    Heap,
    /// The copy of the host's vDSO text (`[vdso]`, `sandbox::vdso`): anonymous private memory
    /// the supervisor filled, never merged with other memory.
    Vdso,
    /// The host's vDSO data pages (`[vvar]`, `[vvar_vclock]`), aliased in the guest only: the
    /// guest maps them at this mapping's addresses onto the supervisor's own data pages at
    /// `hva` (the kernel maps them once per process, outside the range), read-only. The host
    /// range under it stays reservation, so the supervisor's accesses on the program's behalf
    /// fail with `EFAULT` there.
    Vvar {
        /// The supervisor's address of the mapping's first byte.
        hva: u64,
    },
}

/// A file's identity: device and inode numbers (`st_dev`, `st_ino`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

impl Kind {
    /// The same kind for the part of a mapping `delta` bytes further on (a file mapping's
    /// offset moves with it).
    pub fn advanced(self, delta: u64) -> Kind {
        match self {
            Kind::File { offset, file } => Kind::File { offset: offset + delta, file },
            Kind::Vvar { hva } => Kind::Vvar { hva: hva + delta },
            k => k,
        }
    }
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
    /// The `madvise` flags the program set on it ([`Advice`] bits): like Linux's VMA flags,
    /// mappings differing in them are not merged, and a mapping grown in place keeps them.
    pub advice: u16,
}

/// `madvise` advice that sets a flag on the mapping rather than acting on its pages
/// (mm/madvise.c, `madvise_update_vma`), as bits of [`Vma::advice`]. Each pair clears the
/// other's bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advice;

impl Advice {
    /// `MADV_RANDOM` (`VM_RAND_READ`).
    pub const RANDOM: u16 = 1 << 0;
    /// `MADV_SEQUENTIAL` (`VM_SEQ_READ`).
    pub const SEQUENTIAL: u16 = 1 << 1;
    /// `MADV_DONTFORK` (`VM_DONTCOPY`): emulated, never given to the host, whose child would
    /// get a hole in the program range; the child's copy reserves the range instead.
    pub const DONTFORK: u16 = 1 << 2;
    /// `MADV_WIPEONFORK` (`VM_WIPEONFORK`).
    pub const WIPEONFORK: u16 = 1 << 3;
    /// `MADV_DONTDUMP` (`VM_DONTDUMP`).
    pub const DONTDUMP: u16 = 1 << 4;
    /// `MADV_HUGEPAGE` (`VM_HUGEPAGE`).
    pub const HUGEPAGE: u16 = 1 << 5;
    /// `MADV_NOHUGEPAGE` (`VM_NOHUGEPAGE`).
    pub const NOHUGEPAGE: u16 = 1 << 6;
    /// `MADV_MERGEABLE` (`VM_MERGEABLE`).
    pub const MERGEABLE: u16 = 1 << 7;

    /// For a flag-setting `advice`: (bits it sets, bits it clears, whether the host gets the
    /// advice). `None` for advice that acts on pages (`MADV_DONTNEED`, ...).
    pub fn of(advice: i32) -> Option<(u16, u16, bool)> {
        let a = |set: u16, clear: u16| Some((set, clear, true));
        match advice {
            libc::MADV_NORMAL => a(0, Self::RANDOM | Self::SEQUENTIAL),
            libc::MADV_RANDOM => a(Self::RANDOM, Self::SEQUENTIAL),
            libc::MADV_SEQUENTIAL => a(Self::SEQUENTIAL, Self::RANDOM),
            libc::MADV_DONTFORK => Some((Self::DONTFORK, 0, false)),
            libc::MADV_DOFORK => Some((0, Self::DONTFORK, false)),
            libc::MADV_WIPEONFORK => a(Self::WIPEONFORK, 0),
            libc::MADV_KEEPONFORK => a(0, Self::WIPEONFORK),
            libc::MADV_DONTDUMP => a(Self::DONTDUMP, 0),
            libc::MADV_DODUMP => a(0, Self::DONTDUMP),
            libc::MADV_HUGEPAGE => a(Self::HUGEPAGE, Self::NOHUGEPAGE),
            libc::MADV_NOHUGEPAGE => a(Self::NOHUGEPAGE, Self::HUGEPAGE),
            libc::MADV_MERGEABLE => a(Self::MERGEABLE, 0),
            libc::MADV_UNMERGEABLE => a(0, Self::MERGEABLE),
            _ => None,
        }
    }

    /// The host advice that re-creates `bits` on a new host mapping (a part grown in place).
    fn host_advice(bits: u16) -> impl Iterator<Item = i32> {
        [
            (Self::RANDOM, libc::MADV_RANDOM),
            (Self::SEQUENTIAL, libc::MADV_SEQUENTIAL),
            (Self::WIPEONFORK, libc::MADV_WIPEONFORK),
            (Self::DONTDUMP, libc::MADV_DONTDUMP),
            (Self::HUGEPAGE, libc::MADV_HUGEPAGE),
            (Self::NOHUGEPAGE, libc::MADV_NOHUGEPAGE),
            (Self::MERGEABLE, libc::MADV_MERGEABLE),
        ]
        .into_iter()
        .filter(move |(b, _)| bits & b != 0)
        .map(|(_, a)| a)
    }
}

/// The program's brk heap.
#[derive(Clone, Copy, Debug)]
pub struct Brk {
    /// Where the heap starts (page aligned).
    pub start: u64,
    /// The current break (any byte address >= start).
    pub cur: u64,
}

/// Where the loaded image's parts are, as Linux keeps them in `mm_struct` for `/proc/PID/stat`,
/// `cmdline`, `environ` and `auxv` (set by the loader; all 0 before).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Image {
    /// Lowest address of the program's executable segments (`start_code`).
    pub start_code: u64,
    /// End of their file contents (`end_code`).
    pub end_code: u64,
    /// Highest segment start (`start_data`, as Linux computes it).
    pub start_data: u64,
    /// End of the highest segment's file contents (`end_data`).
    pub end_data: u64,
    /// The initial stack pointer: where `argc` is (`start_stack`).
    pub start_stack: u64,
    /// The argument strings: `[arg_start, arg_end)`.
    pub arg_start: u64,
    /// End of the argument strings.
    pub arg_end: u64,
    /// The environment strings: `[env_start, env_end)`.
    pub env_start: u64,
    /// End of the environment strings.
    pub env_end: u64,
    /// The auxiliary vector as the program got it, `AT_NULL` included (`saved_auxv`).
    pub auxv: Vec<(u64, u64)>,
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
    /// Where the loaded image's parts are (for `/proc/self`).
    pub image: Image,
    /// The program's `RLIMIT_AS` and `RLIMIT_DATA` (soft, bytes), enforced on its mappings.
    pub limits: MemLimits,
    /// Parts of private anonymous mappings whose host pages are mapped `MAP_PRIVATE` from a
    /// checkpoint image ([`Mm::overlay_from_file`]), start → end: `MADV_DONTNEED` there must
    /// give zeros, not the image's pages back.
    image_backed: BTreeMap<u64, u64>,
}

/// The program's limits on its mappings, as Linux's `may_expand_vm` (mm/mmap.c) applies them:
/// every mapping counts towards `RLIMIT_AS`; private writable ones other than the stack
/// (`is_data_mapping`) towards `RLIMIT_DATA`. `u64::MAX`: no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemLimits {
    /// `RLIMIT_AS`.
    pub address_space: u64,
    /// `RLIMIT_DATA`.
    pub data: u64,
}

impl MemLimits {
    /// The host's soft limits of this process (what the program sees until it sets its own).
    pub fn of_host() -> MemLimits {
        MemLimits {
            address_space: sys::getrlimit(libc::RLIMIT_AS).rlim_cur,
            data: sys::getrlimit(libc::RLIMIT_DATA).rlim_cur,
        }
    }
}

/// Whether a mapping counts as data (`is_data_mapping`: writable, private, not the stack).
fn is_data(prot: i32, shared: bool, kind: Kind) -> bool {
    prot & libc::PROT_WRITE != 0 && !shared && kind != Kind::Stack
}

/// Private anonymous mappings at least this long get transparent huge pages where
/// [`Mm`]'s `huge_pages` says so (the x86-64 2 MiB page size).
pub const HUGE: u64 = 2 << 20;

/// Whether `b` continues `a` (touching, same rights and sharing, same kind of memory: both
/// anonymous, or the same file at contiguous offsets); returns the merged kind.
fn mergeable(a: &Vma, b: &Vma) -> Option<Kind> {
    if a.end != b.start || a.prot != b.prot || a.shared != b.shared || a.advice != b.advice {
        return None;
    }
    match (a.kind, b.kind) {
        // The same file at contiguous offsets. (Linux also wants the same open file
        // description; merging a little more than Linux only ever lets an mremap through
        // that Linux would refuse with EFAULT.)
        (Kind::File { offset: x, file: f }, Kind::File { offset: y, file: g })
            if f == g && y == x + (a.end - a.start) =>
        {
            Some(a.kind)
        }
        (Kind::File { .. }, _) | (_, Kind::File { .. }) => None,
        // The vDSO's mappings stay as the kernel made them (one each, never merged).
        (Kind::Vvar { .. } | Kind::Vdso, _) | (_, Kind::Vvar { .. } | Kind::Vdso) => None,
        // Anonymous private memory of any origin.
        (k, _) if !a.shared => Some(k),
        _ => None,
    }
}

/// Gives the host the advice that re-creates the [`Advice`] bits `bits` on `[addr, addr + len)`
/// (program memory just mapped). Advice only: failures change nothing the program relies on.
fn host_advise(addr: u64, len: u64, bits: u16) {
    for a in Advice::host_advice(bits) {
        #[allow(unsafe_code)]
        // SAFETY: the caller's range is program memory inside the program range; this advice
        // only sets flags on it.
        let _ = unsafe { sys::madvise(addr, len, a) };
    }
}

/// Whether `v` maps a file.
fn is_file(v: &Vma) -> bool {
    matches!(v.kind, Kind::File { .. })
}

/// Moves one host VMA `[s, s + len)` to `t`, growing it by `grow` bytes (the host continues
/// its file or shared object). Returns whether the source stayed mapped (emptied, with
/// `MREMAP_DONTUNMAP`) rather than being reserved again. `dontunmap` is the program's
/// `MREMAP_DONTUNMAP`, which must then hold for every piece.
fn move_piece(s: u64, len: u64, grow: u64, t: u64, dontunmap: bool) -> Result<bool, Errno> {
    if grow == 0 {
        #[allow(unsafe_code)]
        // SAFETY: both ranges are inside the program range (checked by the callers).
        match unsafe { sys::mremap_fixed(s, len, len, t, true) } {
            Ok(_) => return Ok(true),
            // Mappings the host cannot keep (VM_DONTEXPAND, VM_PFNMAP) move the plain way,
            // unless the program asked for MREMAP_DONTUNMAP itself.
            Err(e) if e == Errno::EINVAL && !dontunmap => {}
            Err(e) => return Err(e),
        }
    }
    #[allow(unsafe_code)]
    // SAFETY: both ranges are inside the program range (checked by the callers).
    unsafe { sys::mremap_fixed(s, len, len + grow, t, false) }?;
    reserve_hole(s, len);
    Ok(false)
}

/// Reserves `[addr, addr + len)` again right after the host's `mremap` left it a hole. Another
/// supervisor thread's mapping could only land there by asking for exactly that address: the
/// host's allocator places mappings top-down and always finds room above the system area
/// first. Should it happen anyway, foreign memory would sit in the program range, which the
/// runtime cannot allow: the sandbox ends.
fn reserve_hole(addr: u64, len: u64) {
    if sys::reserve(addr, len, true).is_err() {
        fatal_address_space("the hole mremap left was taken", addr, len);
    }
}

/// Ends the sandbox because the program range can no longer be trusted to hold only program
/// memory (a broken invariant of the runtime, never a decision the program can provoke).
fn fatal_address_space(what: &str, addr: u64, len: u64) -> ! {
    eprintln!("sandbox: internal error: {what} ({addr:#x}+{len:#x}); ending the sandbox");
    sys::exit_now(crate::cli::EXIT_RUNTIME)
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
            image: Image::default(),
            limits: MemLimits::of_host(),
            image_backed: BTreeMap::new(),
        })
    }

    /// `Err(ENOMEM)` when mapping `[addr, addr + len)` with `prot`, sharing and `kind` would
    /// take the program past [`Mm::limits`] (the part already mapped is replaced, so it counts
    /// once), as Linux's `may_expand_vm` refuses it before anything is changed.
    pub fn may_expand(
        &self,
        addr: u64,
        len: u64,
        prot: i32,
        shared: bool,
        kind: Kind,
    ) -> Result<(), Errno> {
        let MemLimits { address_space, data } = self.limits;
        if address_space == u64::MAX && data == u64::MAX {
            return Ok(());
        }
        let end = addr.saturating_add(len);
        let (mut total, mut data_total, mut replaced, mut replaced_data) = (0u64, 0u64, 0u64, 0u64);
        for v in self.vmas.values() {
            let size = v.end - v.start;
            let over = v.end.min(end).saturating_sub(v.start.max(addr));
            total += size;
            replaced += over;
            if is_data(v.prot, v.shared, v.kind) {
                data_total += size;
                replaced_data += over;
            }
        }
        if (total - replaced).saturating_add(len) > address_space {
            return Err(Errno::ENOMEM);
        }
        if is_data(prot, shared, kind) && (data_total - replaced_data).saturating_add(len) > data {
            return Err(Errno::ENOMEM);
        }
        Ok(())
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

    /// Makes sure every [`CHUNK`] touching `[start, end)` has a memory slot: one slot per
    /// aligned group of [`GROUP`] chunks the range spans whole (none of them covered yet), else
    /// one per chunk.
    fn cover(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        let mut c = start / CHUNK;
        while c * CHUNK < end {
            let group = (c * CHUNK).max(self.lo)..((c + GROUP) * CHUNK).min(self.hi);
            let n = if c.is_multiple_of(GROUP)
                && start <= group.start
                && end >= group.end
                && self.covered.range(c..c + GROUP).next().is_none()
            {
                GROUP
            } else {
                1
            };
            if !self.covered.contains(&c) {
                let base = (c * CHUNK).max(self.lo) & !(PAGE - 1);
                let top = ((c + n) * CHUNK).min(self.hi);
                // `add_memory` states the contract this chunk meets.
                add_memory(&self.vm, base, top - base)?;
                self.covered.extend(c..c + n);
            }
            c += n;
        }
        Ok(())
    }

    /// The mappings that meet `[start, end)`, in address order (whole, not clipped).
    fn overlapping(&self, start: u64, end: u64) -> Vec<Vma> {
        let mut v: Vec<Vma> = self
            .vmas
            .range(..end)
            .rev()
            .take_while(|(_, v)| v.end > start)
            .map(|(_, v)| *v)
            .collect();
        v.reverse();
        v
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
        let hits: Vec<Vma> = self.overlapping(start, end);
        for v in hits {
            self.vmas.remove(&v.start);
            if v.start < start {
                self.vmas.insert(v.start, Vma { end: start, ..v });
            }
            if v.end > end {
                let kind = v.kind.advanced(end - v.start);
                self.vmas.insert(end, Vma { start: end, kind, ..v });
            }
        }
    }

    fn guest_map(&self, addr: u64, len: u64, prot: i32) -> Result<(), Errno> {
        self.guest_map_kind(addr, len, prot, Kind::Anon)
    }

    /// [`Mm::guest_map`] of a mapping of `kind` (an alias for [`Kind::Vvar`]).
    fn guest_map_kind(&self, addr: u64, len: u64, prot: i32, kind: Kind) -> Result<(), Errno> {
        let r = match (perms(prot), kind) {
            (Some(p), Kind::Vvar { hva }) => self.vm.map_alias(addr, hva, len, p),
            (None, Kind::Vvar { .. }) => self.vm.unmap(addr, len),
            (p, _) => self.guest_map_plain(addr, len, p),
        };
        r.map_err(|e| {
            tracing::warn!(%e, addr, len, "guest page-table update failed");
            Errno::ENOMEM
        })
    }

    fn guest_map_plain(
        &self,
        addr: u64,
        len: u64,
        p: Option<dune::Perms>,
    ) -> Result<(), dune::MapError> {
        match p {
            Some(p) => self.vm.map_host_coherent(addr, len, p),
            None => self.vm.unmap_host_coherent(addr, len).map(|_| ()),
        }
    }

    /// Whether `[addr, addr + len)` covers part of a vDSO mapping but not all of it: Linux
    /// refuses to split its special mappings (mm/mmap.c, `special_mapping_split`: `EINVAL`).
    fn splits_vdso(&self, addr: u64, len: u64) -> bool {
        self.overlapping(addr, addr + len).iter().any(|v| {
            matches!(v.kind, Kind::Vvar { .. } | Kind::Vdso)
                && (v.start < addr || v.end > addr + len)
        })
    }

    /// Unmaps (with a TLB flush) any [`Kind::Vvar`] alias in `[addr, addr + len)` before a host
    /// change of the range: the host change's MMU notifier reaches the range's own host pages,
    /// never the alias's, so the guest could otherwise keep reading the data pages there.
    fn unmap_aliases(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        if self.splits_vdso(addr, len) {
            return Err(Errno::EINVAL);
        }
        if self.overlapping(addr, addr + len).iter().any(|v| matches!(v.kind, Kind::Vvar { .. })) {
            self.unmap(addr, len)?;
        }
        Ok(())
    }

    /// Maps the host's vDSO data pages `[hva, hva + len)` (the supervisor's own, outside the
    /// range) at `[addr, addr + len)` in the guest, read-only, as a [`Kind::Vvar`] mapping
    /// over the reservation there. Errors: `ENOMEM` (no guest memory or page tables).
    pub fn map_vvar(&mut self, addr: u64, len: u64, hva: u64) -> Result<(), Errno> {
        debug_assert!(self.contains(addr, len) && (addr | len | hva).is_multiple_of(PAGE));
        // SAFETY: the supervisor's vDSO data pages stay mapped for the process's life (nothing
        // of the runtime unmaps them); the guest may only read them (a read-only slot).
        #[allow(unsafe_code)]
        unsafe { self.vm.add_memory(hva, len, true) }.map_err(|e| {
            tracing::warn!(%e, hva, len, "adding the vDSO data pages to the VM failed");
            Errno::ENOMEM
        })?;
        let kind = Kind::Vvar { hva };
        self.guest_map_kind(addr, len, libc::PROT_READ, kind)?;
        self.insert(Vma {
            start: addr,
            end: addr + len,
            prot: libc::PROT_READ,
            shared: false,
            kind,
            advice: 0,
        });
        Ok(())
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
        self.map_fixed_advised(addr, len, prot, flags, fd, kind, 0)
    }

    /// [`Mm::map_fixed`] with the [`Advice`] bits `advice` already set (on the host too), for
    /// the part of a mapping grown in place, which keeps its mapping's flags as in Linux.
    #[allow(clippy::too_many_arguments)]
    fn map_fixed_advised(
        &mut self,
        addr: u64,
        len: u64,
        prot: i32,
        flags: i32,
        fd: i32,
        kind: Kind,
        advice: u16,
    ) -> Result<u64, Errno> {
        debug_assert!(
            self.contains(addr, len) && addr.is_multiple_of(PAGE) && len.is_multiple_of(PAGE)
        );
        self.unmap_aliases(addr, len)?;
        self.cover(addr, addr + len)?;
        let off = match kind {
            Kind::File { offset, .. } => offset,
            _ => 0,
        };
        #[allow(unsafe_code)]
        // SAFETY: the range is inside the program range (debug-asserted above, guaranteed by
        // every caller) and `fd` was checked against the runtime's descriptors by the caller.
        unsafe {
            sys::mmap_fixed(addr, len, prot, flags, fd, off)?
        };
        if flags & (libc::MAP_ANONYMOUS | libc::MAP_SHARED) == libc::MAP_ANONYMOUS {
            self.advise_huge(addr, len, kind, advice);
        }
        host_advise(addr, len, advice);
        if let Err(e) = self.guest_map(addr, len, prot) {
            let _ = sys::reserve(addr, len, false);
            let _ = self.vm.unmap(addr, len);
            self.cut(addr, addr + len);
            return Err(e);
        }
        let shared = flags & libc::MAP_SHARED != 0;
        self.insert(Vma { start: addr, end: addr + len, prot, shared, kind, advice });
        Ok(addr)
    }

    /// Asks for transparent huge pages on new private anonymous memory `[addr, addr + len)`
    /// where [`Mm`]'s `huge_pages` says so: mappings of [`HUGE`] bytes or more, and the heap.
    /// Not the stack: a program touches a few pages of it, and the 2 MiB page its top would
    /// get is allocated and zeroed at every `execve` when the initial stack is written there
    /// (measured on kvm_pvm: ~1 ms of each fork+exec of a shell loop).
    fn advise_huge(&self, addr: u64, len: u64, kind: Kind, advice: u16) {
        if self.huge_pages
            && advice & Advice::NOHUGEPAGE == 0
            && kind != Kind::Stack
            && (len >= HUGE || kind == Kind::Heap)
        {
            #[allow(unsafe_code)]
            // SAFETY: the range is program memory inside the program range (every caller has
            // just mapped it there); the advice changes no contents.
            unsafe {
                sys::advise_huge_pages(addr, len)
            };
        }
    }

    /// Unmaps `[addr, addr + len)`: the guest mapping first, then the host range is reserved
    /// again. Unmapped parts are fine. Errors: `EINVAL` if misaligned or outside the range.
    pub fn unmap(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        let len = page_up(len).ok_or(Errno::EINVAL)?;
        if !addr.is_multiple_of(PAGE) || len == 0 || !self.contains(addr, len) {
            return Err(Errno::EINVAL);
        }
        if self.splits_vdso(addr, len) {
            return Err(Errno::EINVAL);
        }
        if self.overlapping(addr, addr + len).iter().any(|v| matches!(v.kind, Kind::Vvar { .. })) {
            // An alias: no host change below reaches its translations.
            self.vm.unmap(addr, len).map_err(|_| Errno::EINVAL)?;
        } else {
            let _ = self.vm.unmap_host_coherent(addr, len).map_err(|_| Errno::EINVAL)?;
        }
        sys::reserve(addr, len, false)?;
        self.cut(addr, addr + len);
        Ok(())
    }

    /// `mprotect`: every page of `[addr, addr + len)` must be mapped (`ENOMEM` otherwise,
    /// including any page outside the range, as for addresses the program cannot name). A
    /// mapping the host refuses ends the call, the ones before it changed (as in Linux).
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
        let pieces: Vec<Vma> = self.overlapping(addr, addr + len);
        // The data pages cannot be made writable or executable (no VM_MAYWRITE, VM_MAYEXEC:
        // lib/vdso/datastore.c): EACCES as mprotect gives, before anything changed.
        if prot & (libc::PROT_WRITE | libc::PROT_EXEC) != 0
            && pieces.iter().any(|v| matches!(v.kind, Kind::Vvar { .. }))
        {
            return Err(Errno::EACCES);
        }
        if self.splits_vdso(addr, len) {
            return Err(Errno::EINVAL);
        }
        // Mapping by mapping, in address order, as Linux does (mm/mprotect.c): a mapping the
        // host refuses (`PROT_WRITE` on a read-only file or a SHM_RDONLY attachment) ends the
        // call with the mappings before it changed and it and the rest as they were.
        for v in pieces {
            let s = v.start.max(addr);
            let e = v.end.min(addr + len);
            let kind = v.kind.advanced(s - v.start);
            if let Kind::Vvar { .. } = kind {
                // Guest only: the host range stays reservation.
                self.guest_map_kind(s, e - s, prot, kind)?;
                self.insert(Vma { start: s, end: e, prot, kind, ..v });
                continue;
            }
            self.guest_map(s, e - s, prot)?;
            #[allow(unsafe_code)]
            // SAFETY: the range is a program mapping inside the program range (checked above).
            if let Err(err) = unsafe { sys::mprotect(s, e - s, prot) } {
                let _ = self.guest_map(s, e - s, v.prot);
                return Err(err);
            }
            let kind = v.kind.advanced(s - v.start);
            self.insert(Vma { start: s, end: e, prot, kind, ..v });
        }
        Ok(())
    }

    /// `mremap` (mm/mremap.c): `new_addr` is used with `MREMAP_FIXED`. Returns the new address.
    ///
    /// Growing in place, shrinking, moving (`MREMAP_MAYMOVE`, `MREMAP_FIXED`),
    /// `MREMAP_DONTUNMAP`, and a second mapping of a shared mapping's pages (`old_len` 0) work
    /// as in Linux. A move is carried out by the host's own `mremap`, one host mapping (VMA) at a
    /// time (a program mapping grown in place is several host VMAs, which one host `mremap`
    /// refuses with `EFAULT`), so pages move and are never copied. Errors as Linux gives them;
    /// on any error the program's memory is as it was, except that a `MREMAP_FIXED` target is
    /// unmapped (as in Linux, which unmaps it first).
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
        let dontunmap = flags & sys::MREMAP_DONTUNMAP != 0;
        let known = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED | sys::MREMAP_DONTUNMAP;
        if flags & !known != 0 || ((fixed || dontunmap) && !maymove) {
            return Err(Errno::EINVAL);
        }
        if !old.is_multiple_of(PAGE) {
            return Err(Errno::EINVAL);
        }
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
        if new_len == 0 || (dontunmap && old_len != new_len) {
            return Err(Errno::EINVAL);
        }
        if fixed
            && (!new_addr.is_multiple_of(PAGE)
                || !self.contains(new_addr, new_len)
                || (new_addr < old + old_len && old < new_addr + new_len))
        {
            return Err(Errno::EINVAL);
        }
        // Linux looks up the mapping at `old` first (mm/mremap.c, `vma_lookup`).
        let vma = *self.vma_at(old).ok_or(Errno::EFAULT)?;
        if let Kind::Vvar { .. } = vma.kind {
            // Moving the vDSO's data pages is not supported (Linux moves them; only CRIU does).
            return Err(Errno::EINVAL);
        }
        if fixed {
            self.unmap_aliases(new_addr, new_len)?;
        }
        if old_len == 0 {
            // A second mapping of the same pages: shared mappings only (Linux refuses private
            // ones with EINVAL).
            if !vma.shared {
                return Err(Errno::EINVAL);
            }
            let target = if fixed { new_addr } else { self.free_for(new_len)? };
            return self.duplicate_shared(vma, old, new_len, target);
        }
        if fixed && old + old_len > vma.end && old_len == new_len && sys::host_moves_many_vmas() {
            // Linux 6.17 and later move a range of several mappings (and the gaps between
            // them) to a fixed address when its size stays; the host kernel says whether
            // this one does, so that the program sees its semantics.
            return self.move_many(old, old_len, new_addr, dontunmap);
        }
        if fixed && new_len < old_len {
            // The end is unmapped and what is left moves (mm/mremap.c, `mremap_to`); what is
            // left must be one mapping, which Linux 6.17 and later check before unmapping
            // anything (6.1 unmapped the end first).
            if old + new_len > vma.end {
                return Err(Errno::EFAULT);
            }
            self.unmap(old + new_len, old_len - new_len)?;
            let vma = *self.vma_at(old).ok_or(Errno::EFAULT)?;
            return self.move_pages(vma, old, new_len, new_len, new_addr, false);
        }
        if (fixed || dontunmap || new_len > old_len) && old + old_len > vma.end {
            return Err(Errno::EFAULT);
        }
        // The growth, or with MREMAP_DONTUNMAP the copy, counts towards the limits
        // (`vma_to_resize`, `mremap_to`).
        let more = if dontunmap { old_len } else { new_len.saturating_sub(old_len) };
        if more > 0 {
            self.may_expand(u64::MAX, more, vma.prot, vma.shared, vma.kind)?;
        }
        if fixed {
            return self.move_pages(vma, old, old_len, new_len, new_addr, dontunmap);
        }
        if dontunmap {
            let target = self.free_for(new_len)?;
            return self.move_pages(vma, old, old_len, new_len, target, true);
        }
        if new_len <= old_len {
            // Shrinking only unmaps the end, whatever mappings it spans.
            if new_len < old_len {
                self.unmap(old + new_len, old_len - new_len)?;
            }
            return Ok(old);
        }
        // Grow in place when the pages after it are free and the mapping can simply be
        // extended with the same kind of memory (private anonymous: zero pages).
        let tail = old + old_len;
        let extra = new_len - old_len;
        if tail == vma.end && self.is_free(tail, extra) {
            if !vma.shared && !is_file(&vma) {
                let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
                self.map_fixed_advised(tail, extra, vma.prot, flags, -1, Kind::Anon, vma.advice)?;
            } else {
                self.grow_in_place(vma, tail, extra)?;
            }
            return Ok(old);
        }
        if !maymove {
            return Err(Errno::ENOMEM);
        }
        let target = self.free_for(new_len)?;
        self.move_pages(vma, old, old_len, new_len, target, false)
    }

    /// Grows a file or shared mapping `vma` in place by `[tail, tail + extra)` (free in the
    /// records): the host's own `mremap` grows its last host VMA, which continues the file or
    /// shared object. That needs the pages after it to be a hole for the length of one call;
    /// see [`reserve_hole`] for why nothing else can land there.
    fn grow_in_place(&mut self, vma: Vma, tail: u64, extra: u64) -> Result<(), Errno> {
        let pieces = sys::host_vmas(vma.start, tail)?;
        let &(s, e) = pieces.last().ok_or(Errno::EFAULT)?;
        if e != tail {
            return Err(Errno::EFAULT);
        }
        self.cover(tail, tail + extra)?;
        self.guest_map(tail, extra, vma.prot)?;
        #[allow(unsafe_code)]
        // SAFETY: `[tail, tail + extra)` is reservation inside the program range (free in the
        // records); `[s, tail)` is program memory. Both calls only change those ranges.
        let grown = unsafe {
            sys::unmap(tail, extra).and_then(|_| sys::mremap_in_place(s, e - s, e - s + extra))
        };
        if let Err(err) = grown {
            reserve_hole(tail, extra);
            let _ = self.vm.unmap_host_coherent(tail, extra);
            return Err(err);
        }
        let kind = vma.kind.advanced(tail - vma.start);
        self.insert(Vma { start: tail, end: tail + extra, kind, ..vma });
        Ok(())
    }

    /// `madvise(addr, len, advice)` on the program's mappings (mm/madvise.c): the advice goes to
    /// each mapped part, never to the reservation between them, and flag-setting advice is
    /// recorded ([`Advice`]; `MADV_DONTFORK` only recorded, see there). `len` is page aligned,
    /// the range inside the program range. Errors: the host's for the advice, then `ENOMEM` if
    /// part of the range is not mapped (after the mapped parts got the advice, as in Linux).
    pub fn advise(&mut self, addr: u64, len: u64, advice: i32) -> Result<(), Errno> {
        let end = addr + len;
        if matches!(advice, libc::MADV_DONTNEED | libc::MADV_FREE | libc::MADV_REMOVE | 24) {
            self.drop_image_pages(addr, end)?;
        }
        let parts: Vec<Vma> = self
            .overlapping(addr, end)
            .into_iter()
            .map(|v| {
                let start = v.start.max(addr);
                Vma { start, end: v.end.min(end), kind: v.kind.advanced(start - v.start), ..v }
            })
            .collect();
        let mapped: u64 = parts.iter().map(|v| v.end - v.start).sum();
        let flags = Advice::of(advice);
        for v in &parts {
            let n = v.end - v.start;
            if flags.is_none_or(|(_, _, host)| host) {
                #[allow(unsafe_code)]
                // SAFETY: `v` is a program mapping (clipped to the range), inside the program
                // range.
                unsafe { sys::madvise(v.start, n, advice) }?;
            }
            if let Some((set, clear, _)) = flags {
                self.cut(v.start, v.end);
                self.insert(Vma { advice: (v.advice & !clear) | set, ..*v });
            }
        }
        if mapped < len { Err(Errno::ENOMEM) } else { Ok(()) }
    }

    /// Maps `[addr, addr + len)`, part of one private anonymous mapping, `MAP_PRIVATE` from
    /// `fd` at `offset` with the mapping's `prot` (a checkpoint image's pages, which then load
    /// as the program touches them, copied on write). The record stays anonymous. `EINVAL` if
    /// the range is not inside one such mapping.
    pub fn overlay_from_file(
        &mut self,
        addr: u64,
        len: u64,
        prot: i32,
        fd: i32,
        offset: u64,
    ) -> Result<(), Errno> {
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        let ok = self.vma_at(addr).is_some_and(|v| {
            end <= v.end && !v.shared && v.prot == prot && !matches!(v.kind, Kind::File { .. })
        });
        if !ok || !addr.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) {
            return Err(Errno::EINVAL);
        }
        #[allow(unsafe_code)]
        // SAFETY: the range is inside one of the program's mappings (checked above), so inside
        // the program range; `fd` is the runtime's image file, mapped privately: the program
        // gets copies of its pages, never the file.
        unsafe {
            sys::mmap_fixed(addr, len, prot, libc::MAP_PRIVATE, fd, offset)?
        };
        self.image_backed.insert(addr, end);
        Ok(())
    }

    /// Gives the parts of `[start, end)` whose pages came from a checkpoint image fresh
    /// anonymous memory (what `MADV_DONTNEED` leaves in anonymous memory: zeros).
    fn drop_image_pages(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        let hit: Vec<(u64, u64)> = self
            .image_backed
            .range(..end)
            .filter(|(_, e)| **e > start)
            .map(|(s, e)| (*s, *e))
            .collect();
        for (s, e) in hit {
            self.image_backed.remove(&s);
            let (a, b) = (s.max(start), e.min(end));
            if s < a {
                self.image_backed.insert(s, a);
            }
            if b < e {
                self.image_backed.insert(b, e);
            }
            let anon = |v: &Vma| !v.shared && !matches!(v.kind, Kind::File { .. });
            for v in self.overlapping(a, b).into_iter().filter(anon) {
                let (x, y) = (v.start.max(a), v.end.min(b));
                let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
                #[allow(unsafe_code)]
                // SAFETY: `[x, y)` is part of a program mapping inside the program range; it
                // gets fresh anonymous memory with the mapping's rights.
                unsafe {
                    sys::mmap_fixed(x, y - x, v.prot, flags, -1, 0)?
                };
            }
        }
        Ok(())
    }

    /// Whether every page of `[addr, addr + len)` is mapped (`len` page aligned), as calls that
    /// act on mappings (`msync`, `mincore`) require (`ENOMEM` otherwise).
    pub fn is_mapped(&self, addr: u64, len: u64) -> bool {
        self.contains(addr, len) && self.fully_mapped(addr, addr + len)
    }

    /// `mremap(old, len, len, MREMAP_MAYMOVE | MREMAP_FIXED [| MREMAP_DONTUNMAP], target)`
    /// of a range that spans several mappings: the target is unmapped, then every mapping in
    /// the range moves to the same offset from `target` (gaps stay gaps). A failure leaves the
    /// mappings moved so far where they went, as in Linux (mm/mremap.c, `remap_move`).
    fn move_many(
        &mut self,
        old: u64,
        len: u64,
        target: u64,
        dontunmap: bool,
    ) -> Result<u64, Errno> {
        self.unmap(target, len)?;
        let parts: Vec<Vma> = self.overlapping(old, old + len);
        for v in parts {
            let (s, e) = (v.start.max(old), v.end.min(old + len));
            self.move_pages(v, s, e - s, e - s, target + (s - old), dontunmap)?;
        }
        Ok(target)
    }

    /// A free range of `len` bytes for a moved mapping, top-down as Linux places mappings.
    fn free_for(&self, len: u64) -> Result<u64, Errno> {
        self.find_free(len, PAGE, self.mmap_top).ok_or(Errno::ENOMEM)
    }

    /// Moves `[old, old + old_len)` of `vma` to `[target, target + new_len)`, growing (with
    /// zero pages, or the continuation of the file or shared object) or shrinking it. Each host
    /// VMA of the source moves with its own host `mremap` (`MREMAP_DONTUNMAP` where the host
    /// allows, so the source is never a hole: it stays mapped, emptied, until it is reserved
    /// again in one `mmap(MAP_FIXED)`); `dontunmap` keeps the emptied source for the program,
    /// as `MREMAP_DONTUNMAP` does. On failure every piece moved so far goes back.
    fn move_pages(
        &mut self,
        vma: Vma,
        old: u64,
        old_len: u64,
        new_len: u64,
        target: u64,
        dontunmap: bool,
    ) -> Result<u64, Errno> {
        self.cover(target, target + new_len)?;
        let keep = old_len.min(new_len);
        let pieces = sys::host_vmas(old, old + keep)?;
        let contiguous = pieces.first().map(|p| p.0) == Some(old)
            && pieces.last().map(|p| p.1) == Some(old + keep)
            && pieces.windows(2).all(|w| w[0].1 == w[1].0);
        if !contiguous {
            // The records hold memory the host does not have: never expected.
            tracing::warn!(old, keep, ?pieces, "mremap: host mappings do not match the records");
            return Err(Errno::EFAULT);
        }
        let extra = new_len.saturating_sub(old_len);
        let anon_growth = extra > 0 && !vma.shared && !is_file(&vma);
        // Guest page tables first; every page of both ranges then changes on the host.
        self.guest_map(target, new_len, vma.prot)?;
        let _ = self.vm.unmap_host_coherent(old, old_len);
        let restore = |mm: &mut Mm| {
            let _ = mm.guest_map(old, old_len, vma.prot);
            // Linux unmaps a MREMAP_FIXED target before it fails; a chosen target was free.
            let _ = mm.vm.unmap_host_coherent(target, new_len);
            let _ = sys::reserve(target, new_len, false);
            mm.cut(target, target + new_len);
        };
        if anon_growth {
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
            #[allow(unsafe_code)]
            // SAFETY: the target range is inside the program range (checked by the callers).
            let grown = unsafe { sys::mmap_fixed(target + old_len, extra, vma.prot, flags, -1, 0) };
            if let Err(e) = grown {
                restore(self);
                return Err(e);
            }
            self.advise_huge(target + old_len, extra, Kind::Anon, vma.advice);
            host_advise(target + old_len, extra, vma.advice);
        }
        // (source, destination, length, whether the source stayed mapped) of each moved piece.
        let mut moved: Vec<(u64, u64, u64, bool)> = Vec::with_capacity(pieces.len());
        for (i, &(s, e)) in pieces.iter().enumerate() {
            let t = target + (s - old);
            let grow = if i + 1 == pieces.len() && !anon_growth { extra } else { 0 };
            match move_piece(s, e - s, grow, t, dontunmap) {
                Ok(kept) => moved.push((s, t, e - s, kept)),
                Err(err) => {
                    for &(s, t, len, _) in moved.iter().rev() {
                        #[allow(unsafe_code)]
                        // SAFETY: both ranges are inside the program range; the pages go back
                        // over their emptied (or reserved) source.
                        if unsafe { sys::mremap_fixed(t, len, len, s, false) }.is_err() {
                            fatal_address_space(
                                "could not move pages back after a failed mremap",
                                s,
                                len,
                            );
                        }
                    }
                    restore(self);
                    return Err(err);
                }
            }
        }
        if !dontunmap {
            // The emptied source (and a shrunk mapping's tail) becomes reservation again.
            let _ = sys::reserve(old, old_len, false);
            self.cut(old, old + old_len);
        } else {
            let _ = self.guest_map(old, old_len, vma.prot);
        }
        let kind = match vma.kind {
            Kind::Heap | Kind::Stack => Kind::Anon,
            k => k.advanced(old - vma.start),
        };
        self.insert(Vma { start: target, end: target + new_len, kind, ..vma });
        Ok(target)
    }

    /// `mremap(old, 0, new_len)` of a shared mapping: `[target, target + new_len)` maps the same
    /// pages (the same file or shared object from the same offset).
    fn duplicate_shared(
        &mut self,
        vma: Vma,
        old: u64,
        new_len: u64,
        target: u64,
    ) -> Result<u64, Errno> {
        self.cover(target, target + new_len)?;
        self.guest_map(target, new_len, vma.prot)?;
        #[allow(unsafe_code)]
        // SAFETY: the target is inside the program range (checked by the caller); the source
        // is a program mapping.
        if let Err(e) = unsafe { sys::mremap_fixed(old, 0, new_len, target, false) } {
            let _ = self.vm.unmap_host_coherent(target, new_len);
            let _ = sys::reserve(target, new_len, false);
            self.cut(target, target + new_len);
            return Err(e);
        }
        let kind = vma.kind.advanced(old - vma.start);
        self.insert(Vma { start: target, end: target + new_len, kind, ..vma });
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
        if let Err(e) = self.unmap_aliases(addr, len).and_then(|()| self.cover(addr, addr + len)) {
            return release(e);
        }
        #[allow(unsafe_code)]
        // SAFETY: the source is the caller's own mapping outside the range, the target inside
        // the range (debug-asserted above, guaranteed by the caller).
        if let Err(e) = unsafe { sys::mremap_into(from, len, addr) } {
            // The host may have unmapped the target before it failed (mm/mremap.c,
            // `mremap_to`): reservation again either way.
            let _ = sys::reserve(addr, len, false);
            return release(e);
        }
        if let Err(e) = self.guest_map(addr, len, prot) {
            let _ = sys::reserve(addr, len, false);
            let _ = self.vm.unmap(addr, len);
            self.cut(addr, addr + len);
            return Err(e);
        }
        self.insert(Vma { start: addr, end: addr + len, prot, shared: true, kind, advice: 0 });
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
        self.image = Image::default();
    }

    /// The same address space in a forked child's new VM: the host memory is the child's copy
    /// already; slots and guest mappings are rebuilt from the records. Mappings the program
    /// marked `MADV_DONTFORK` become reservation.
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
            image: self.image.clone(),
            limits: self.limits,
            image_backed: self.image_backed.clone(),
        };
        // The parent's chunks, run by run (whole groups of a run get one slot each).
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for &c in &self.covered {
            match runs.last_mut() {
                Some(r) if r.1 == c => r.1 = c + 1,
                _ => runs.push((c, c + 1)),
            }
        }
        for (a, b) in runs {
            m.cover((a * CHUNK).max(m.lo), (b * CHUNK).min(m.hi))?;
        }
        let vmas: Vec<Vma> = m.vmas.values().copied().collect();
        for v in vmas {
            if v.advice & Advice::DONTFORK != 0 {
                // Not the child's (MADV_DONTFORK): reservation again, as if never mapped.
                sys::reserve(v.start, v.end - v.start, false)?;
                m.vmas.remove(&v.start);
                continue;
            }
            if let Kind::Vvar { hva } = v.kind {
                // The child's data pages are where its parent's were (fork keeps the layout).
                // SAFETY: as in `map_vvar`.
                #[allow(unsafe_code)]
                unsafe { m.vm.add_memory(hva, v.end - v.start, true) }
                    .map_err(|_| Errno::ENOMEM)?;
            }
            m.guest_map_kind(v.start, v.end - v.start, v.prot, v.kind)?;
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
            let rw = libc::PROT_READ | libc::PROT_WRITE;
            if !self.is_free(old_end, new_end - old_end)
                || self.may_expand(old_end, new_end - old_end, rw, false, Kind::Heap).is_err()
            {
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
