//! Guest-physical address space of a process-level VM.
//!
//! A Dune-style sandbox runs an ordinary host process inside a KVM guest. The
//! guest page tables keep **GVA == HVA** (a pointer means the same thing inside
//! and outside the VM), and this crate decides where each host range sits in
//! guest-physical memory and which KVM memory slots make that true. It is pure
//! bookkeeping: no KVM calls, no I/O, no `unsafe`. The caller executes the
//! returned [`Plan`]s with `KVM_SET_USER_MEMORY_REGION` (kernel
//! `Documentation/virt/kvm/api.rst`, section `KVM_SET_USER_MEMORY_REGION`):
//! every [`Plan::delete`] entry first (same slot id, `memory_size = 0`), then
//! every [`Plan::create`] entry (`slot = id`, `guest_phys_addr = gpa`,
//! `userspace_addr = hva`, `memory_size = len`, `flags = KVM_MEM_READONLY` when
//! `readonly`).
//!
//! # Identity mappings: GPA == HVA
//!
//! A host range that lies wholly below the guest-physical width `w` (CPUID
//! `0x8000_0008` `EAX[7:0]`) and below the window is mapped at
//! **GPA == HVA** ([`Kind::Identity`]). The guest page tables then map each
//! virtual page onto the physical page with the same number, and any tool that
//! sees a guest-physical address can read it as a host address.
//!
//! # The window
//!
//! Host addresses can be far above `2^w`: a PIE executable's text at
//! `0x55..`, `mmap`s and the stack near `0x7f..`. Those cannot be identity
//! mapped, so they get guest-physical addresses from a compact **window**, the
//! top quarter of the physical space, `[2^w - 2^(w-2), 2^w)`
//! ([`Kind::Windowed`]). GVA == HVA still holds in the guest page tables; only
//! the GPA differs, and [`GuestPhysMap::hva_to_gpa`] /
//! [`GuestPhysMap::gpa_to_hva`] translate. Identity ranges may never intersect
//! the window, so the two kinds never collide in GPA space. Window space is
//! allocated first fit (page granular) and reused after [`GuestPhysMap::remove`].
//!
//! # Why coalesce
//!
//! KVM offers a fixed number of memory slots per address space,
//! `KVM_CAP_NR_MEMSLOTS` (32764 on typical x86 hosts), and lookups get slower
//! as slots multiply. A process that maps its heap page by page would run out
//! quickly, so touching or overlapping identity ranges with equal `readonly`
//! are merged into one slot, and windowed ranges are merged when both their
//! HVAs and GPAs are contiguous. Every operation refuses, with
//! [`EptError::TooManySlots`], a result that would need more than `max_slots`
//! slots.
//!
//! Every failing call leaves the map unchanged. While a plan is being applied
//! the affected guest range is briefly unmapped, so apply plans while no vCPU
//! depends on that range (or be ready for the resulting exits).
//!
//! # Example
//!
//! ```
//! use ept::{GuestPhysMap, Kind};
//!
//! // 39-bit guest-physical space: window = [0x60_0000_0000, 0x80_0000_0000).
//! let mut map = GuestPhysMap::new(39, 32764)?;
//!
//! // A low range is identity mapped.
//! let plan = map.insert_identity(0x40_0000, 0x2000, false)?;
//! assert!(plan.delete.is_empty());
//! assert_eq!((plan.create[0].gpa, plan.create[0].len), (0x40_0000, 0x2000));
//!
//! // A touching range coalesces: the old slot is deleted, a merged one created.
//! let plan = map.insert_identity(0x40_2000, 0x1000, false)?;
//! assert_eq!(plan.delete.len(), 1);
//! assert_eq!((plan.create[0].gpa, plan.create[0].len), (0x40_0000, 0x3000));
//! assert_eq!(map.slot_count(), 1);
//!
//! // PIE text far above 2^39 gets a GPA in the window.
//! let (gpa, kind, plan) = map.insert(0x5555_5555_4000, 0x1000, true)?;
//! assert_eq!(kind, Kind::Windowed);
//! assert_eq!(gpa, map.window().start);
//! assert!(plan.create[0].readonly);
//! assert_eq!(map.hva_to_gpa(0x5555_5555_4123), Some(gpa + 0x123));
//! assert_eq!(map.gpa_to_hva(gpa + 0x123), Some(0x5555_5555_4123));
//!
//! // Removing the middle page of the identity slot splits it in two.
//! let plan = map.remove(0x40_1000, 0x1000)?;
//! assert_eq!((plan.delete.len(), plan.create.len()), (1, 2));
//! assert_eq!(map.hva_to_gpa(0x40_1000), None);
//! # Ok::<(), ept::EptError>(())
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

use core::ops::Range;
use std::collections::{BTreeMap, BTreeSet};

/// Page size in bytes. Every address and length handled by this crate is a
/// multiple of it.
pub const PAGE_SIZE: u64 = 4096;

/// Smallest accepted guest-physical width, in bits.
pub const MIN_PHYS_BITS: u8 = 32;
/// Largest accepted guest-physical width, in bits (x86-64 architectural limit).
pub const MAX_PHYS_BITS: u8 = 52;

/// One KVM memory slot (`struct kvm_userspace_memory_region`).
///
/// All fields are bytes / addresses and page aligned: guest-physical
/// `[gpa, gpa + len)` is backed by host virtual `[hva, hva + len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    /// KVM slot id (`slot`); always `< max_slots`.
    pub id: u32,
    /// Guest-physical start address (`guest_phys_addr`).
    pub gpa: u64,
    /// Host virtual start address (`userspace_addr`).
    pub hva: u64,
    /// Length in bytes (`memory_size`); never zero.
    pub len: u64,
    /// Map with `KVM_MEM_READONLY`: guest writes exit to userspace as MMIO.
    pub readonly: bool,
}

impl Slot {
    /// Guest-physical range covered, `[gpa, gpa + len)`.
    pub fn gpa_range(&self) -> Range<u64> {
        self.gpa..self.gpa + self.len
    }

    /// Host virtual range covered, `[hva, hva + len)`.
    pub fn hva_range(&self) -> Range<u64> {
        self.hva..self.hva + self.len
    }

    fn gpa_end(&self) -> u64 {
        self.gpa + self.len
    }

    fn hva_end(&self) -> u64 {
        self.hva + self.len
    }
}

/// Slot operations the caller must perform, in order: every entry of
/// [`delete`](Plan::delete) before every entry of [`create`](Plan::create)
/// (KVM refuses overlapping slots). Each list is sorted by `gpa`.
///
/// A plan never deletes and recreates an identical slot; when nothing changes
/// the plan is empty.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Plan {
    /// Slots to delete (`KVM_SET_USER_MEMORY_REGION` with `memory_size = 0`).
    pub delete: Vec<Slot>,
    /// Slots to create after all deletions.
    pub create: Vec<Slot>,
}

impl Plan {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.create.is_empty()
    }
}

/// How a host range is placed in guest-physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// GPA == HVA.
    Identity,
    /// GPA allocated in the window ([`GuestPhysMap::window`]).
    Windowed,
}

/// Why an operation was refused. The map is unchanged after any error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EptError {
    /// Address or length is not a multiple of [`PAGE_SIZE`].
    #[error(
        "range {addr:#x}+{len:#x} is not page aligned; round the address down and the end up to 4096 bytes"
    )]
    Unaligned {
        /// Start address (bytes).
        addr: u64,
        /// Length (bytes).
        len: u64,
    },
    /// Length is zero.
    #[error("empty range at {addr:#x}; pass a non-zero length")]
    Empty {
        /// Start address (bytes).
        addr: u64,
    },
    /// `addr + len` overflows the 64-bit address space (a range ending
    /// exactly at 2^64 counts as wrapping).
    #[error("range {addr:#x}+{len:#x} wraps past the end of the 64-bit address space; shorten it")]
    Wraps {
        /// Start address (bytes).
        addr: u64,
        /// Length (bytes).
        len: u64,
    },
    /// An identity range reaches at or above `2^phys_bits`.
    #[error(
        "range {addr:#x}+{len:#x} reaches at or above 2^{phys_bits}, the guest-physical width, so it cannot be identity mapped; map it windowed (insert or insert_windowed)"
    )]
    AboveWidth {
        /// Start address (bytes).
        addr: u64,
        /// Length (bytes).
        len: u64,
        /// Guest-physical width in bits.
        phys_bits: u8,
    },
    /// An identity range intersects the window.
    #[error(
        "range {addr:#x}+{len:#x} intersects the GPA window starting at {window_start:#x}, which identity ranges may not touch; map it windowed (insert or insert_windowed)"
    )]
    WindowConflict {
        /// Start address (bytes).
        addr: u64,
        /// Length (bytes).
        len: u64,
        /// First address of the window.
        window_start: u64,
    },
    /// The range is partly or wholly mapped in a way that cannot be extended:
    /// by a slot of the other kind, or (windowed insert) by anything other
    /// than a single windowed slot covering all of it.
    #[error(
        "range {addr:#x}+{len:#x} overlaps an existing mapping of another kind or layout; remove() that part first"
    )]
    Overlap {
        /// Start address (bytes).
        addr: u64,
        /// Length (bytes).
        len: u64,
    },
    /// The range is already mapped with the opposite `readonly` flag.
    #[error(
        "range {addr:#x}+{len:#x} is already mapped with readonly = {}; remove() it first to change its permissions",
        !*.readonly
    )]
    ReadonlyMismatch {
        /// Start address (bytes).
        addr: u64,
        /// Length (bytes).
        len: u64,
        /// The `readonly` flag that was requested.
        readonly: bool,
    },
    /// No free gap of `len` bytes is left in the window.
    #[error(
        "no free gap of {len:#x} bytes in the GPA window; remove() windowed mappings or identity map ranges below the window instead"
    )]
    WindowFull {
        /// Requested length (bytes).
        len: u64,
    },
    /// The result would need more than `limit` KVM memory slots.
    #[error(
        "the plan would need more than {limit} KVM memory slots (KVM_CAP_NR_MEMSLOTS); map larger contiguous ranges so they coalesce, or remove() mappings"
    )]
    TooManySlots {
        /// The slot limit given to [`GuestPhysMap::new`].
        limit: u32,
    },
    /// The guest-physical width is outside `32..=52`.
    #[error(
        "guest-physical width of {bits} bits is outside 32..=52; pass CPUID 0x80000008 EAX[7:0] of the guest"
    )]
    InvalidWidth {
        /// The rejected width in bits.
        bits: u8,
    },
    /// `max_slots` is zero.
    #[error("slot limit {limit} is too small; pass KVM_CAP_NR_MEMSLOTS, which is at least 1")]
    InvalidSlotLimit {
        /// The rejected limit.
        limit: u32,
    },
}

/// A slot to create whose id is not yet allocated.
#[derive(Clone, Copy, Debug)]
struct Pending {
    gpa: u64,
    hva: u64,
    len: u64,
    readonly: bool,
}

/// The guest-physical address space: the set of KVM memory slots and the
/// window allocator.
///
/// Invariants: slots are disjoint in GPA and in HVA; identity slots have
/// `gpa == hva` and lie below the window; windowed slots lie inside the
/// window; no two identity slots touch with equal `readonly`; no two windowed
/// slots are contiguous in both HVA and GPA with equal `readonly`; slot ids
/// are the lowest free ones and `slot_count() <= max_slots`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestPhysMap {
    phys_bits: u8,
    max_slots: u32,
    window: Range<u64>,
    /// gpa start -> slot.
    by_gpa: BTreeMap<u64, Slot>,
    /// hva start -> gpa start.
    by_hva: BTreeMap<u64, u64>,
    /// Free ids below `next_id` (canonical: the largest used id is `next_id - 1`).
    free_ids: BTreeSet<u32>,
    next_id: u32,
    /// Whether identity ranges merge with touching neighbours (see [`GuestPhysMap::set_coalesce`]).
    coalesce: bool,
}

/// Checks alignment, emptiness and wrap-around; returns the end address.
fn check_range(addr: u64, len: u64) -> Result<u64, EptError> {
    if addr & (PAGE_SIZE - 1) != 0 || len & (PAGE_SIZE - 1) != 0 {
        return Err(EptError::Unaligned { addr, len });
    }
    if len == 0 {
        return Err(EptError::Empty { addr });
    }
    addr.checked_add(len).ok_or(EptError::Wraps { addr, len })
}

impl GuestPhysMap {
    /// Creates an empty map.
    ///
    /// `phys_bits` is the guest-physical address width from CPUID
    /// `0x8000_0008` `EAX[7:0]`; `max_slots` is `KVM_CAP_NR_MEMSLOTS`. The
    /// window is `[2^w - 2^(w-2), 2^w)`.
    ///
    /// # Errors
    /// [`EptError::InvalidWidth`] unless `32 <= phys_bits <= 52`;
    /// [`EptError::InvalidSlotLimit`] if `max_slots == 0`.
    pub fn new(phys_bits: u8, max_slots: u32) -> Result<Self, EptError> {
        if !(MIN_PHYS_BITS..=MAX_PHYS_BITS).contains(&phys_bits) {
            return Err(EptError::InvalidWidth { bits: phys_bits });
        }
        if max_slots == 0 {
            return Err(EptError::InvalidSlotLimit { limit: max_slots });
        }
        let top = 1u64 << phys_bits;
        Ok(Self {
            phys_bits,
            max_slots,
            window: top - (top >> 2)..top,
            by_gpa: BTreeMap::new(),
            by_hva: BTreeMap::new(),
            free_ids: BTreeSet::new(),
            next_id: 0,
            coalesce: true,
        })
    }

    /// Turns merging of touching identity ranges on (the default) or off.
    ///
    /// Merging deletes the neighbour's slot and creates a bigger one; between the two ioctls a
    /// vCPU that touches the neighbour's memory sees an access to unbacked memory. Callers
    /// whose vCPUs keep running while memory is added turn merging off and add memory in large
    /// chunks instead, to stay within `max_slots`. Ranges that *overlap* existing ones are
    /// still merged with them.
    pub fn set_coalesce(&mut self, on: bool) {
        self.coalesce = on;
    }

    /// Guest-physical address width in bits.
    pub fn phys_bits(&self) -> u8 {
        self.phys_bits
    }

    /// Slot limit given to [`new`](Self::new).
    pub fn max_slots(&self) -> u32 {
        self.max_slots
    }

    /// The window, `[2^w - 2^(w-2), 2^w)`, in bytes.
    pub fn window(&self) -> Range<u64> {
        self.window.clone()
    }

    /// Which kind of mapping `slot` is (decided by whether its GPA lies in
    /// the window).
    pub fn kind_of(&self, slot: &Slot) -> Kind {
        if slot.gpa >= self.window.start { Kind::Windowed } else { Kind::Identity }
    }

    /// Identity maps `[hva, hva + len)` (GPA == HVA; bytes, page aligned).
    ///
    /// Parts already covered by identity slots with the same `readonly` are
    /// accepted (idempotent). The range is coalesced with every identity slot
    /// it touches or overlaps that has the same `readonly`: the plan deletes
    /// those slots and creates the merged one. Nothing to do yields an empty
    /// plan.
    ///
    /// # Errors
    /// [`Unaligned`](EptError::Unaligned), [`Empty`](EptError::Empty),
    /// [`Wraps`](EptError::Wraps); [`AboveWidth`](EptError::AboveWidth) if any
    /// byte is `>= 2^w`; [`WindowConflict`](EptError::WindowConflict) if it
    /// intersects the window; [`Overlap`](EptError::Overlap) if any part is
    /// windowed; [`ReadonlyMismatch`](EptError::ReadonlyMismatch) if any part
    /// is identity mapped with the other `readonly`;
    /// [`TooManySlots`](EptError::TooManySlots).
    pub fn insert_identity(
        &mut self,
        hva: u64,
        len: u64,
        readonly: bool,
    ) -> Result<Plan, EptError> {
        let end = check_range(hva, len)?;
        if end > self.window.end {
            return Err(EptError::AboveWidth { addr: hva, len, phys_bits: self.phys_bits });
        }
        if end > self.window.start {
            return Err(EptError::WindowConflict {
                addr: hva,
                len,
                window_start: self.window.start,
            });
        }
        let overlapping = self.hva_overlapping(hva, end);
        if overlapping.iter().any(|s| self.kind_of(s) == Kind::Windowed) {
            return Err(EptError::Overlap { addr: hva, len });
        }
        if overlapping.iter().any(|s| s.readonly != readonly) {
            return Err(EptError::ReadonlyMismatch { addr: hva, len, readonly });
        }
        if let [only] = overlapping.as_slice()
            && only.hva <= hva
            && only.hva_end() >= end
        {
            return Ok(Plan::default());
        }
        let mut group = overlapping;
        if !self.coalesce {
            if group.is_empty() {
                let only = Pending { gpa: hva, hva, len, readonly };
                return self.commit(group, vec![only]);
            }
        } else if let Some(left) = self.slot_ending_at(hva)
            && self.kind_of(&left) == Kind::Identity
            && left.readonly == readonly
        {
            group.insert(0, left);
        }
        if self.coalesce
            && let Some(right) = self.slot_at_hva(end)
            && self.kind_of(&right) == Kind::Identity
            && right.readonly == readonly
        {
            group.push(right);
        }
        let start = group.first().map_or(hva, |s| s.hva.min(hva));
        let stop = group.last().map_or(end, |s| s.hva_end().max(end));
        let merged = Pending { gpa: start, hva: start, len: stop - start, readonly };
        self.commit(group, vec![merged])
    }

    /// Maps `[hva, hva + len)` (bytes, page aligned, any host address) at a
    /// GPA in the window and returns the GPA of `hva`.
    ///
    /// The GPA is chosen to coalesce with an HVA-adjacent windowed slot of the
    /// same `readonly` when the GPA space next to it is free; otherwise first
    /// fit in the window. If the range is already wholly covered by one
    /// windowed slot with the same `readonly`, its GPA is returned with an
    /// empty plan.
    ///
    /// # Errors
    /// [`Unaligned`](EptError::Unaligned), [`Empty`](EptError::Empty),
    /// [`Wraps`](EptError::Wraps); [`Overlap`](EptError::Overlap) if any part
    /// is mapped, unless one windowed slot covers all of it;
    /// [`ReadonlyMismatch`](EptError::ReadonlyMismatch) if that slot has the
    /// other `readonly`; [`WindowFull`](EptError::WindowFull);
    /// [`TooManySlots`](EptError::TooManySlots).
    pub fn insert_windowed(
        &mut self,
        hva: u64,
        len: u64,
        readonly: bool,
    ) -> Result<(u64, Plan), EptError> {
        let end = check_range(hva, len)?;
        let overlapping = self.hva_overlapping(hva, end);
        if !overlapping.is_empty() {
            if let [only] = overlapping.as_slice()
                && self.kind_of(only) == Kind::Windowed
                && only.hva <= hva
                && only.hva_end() >= end
            {
                if only.readonly != readonly {
                    return Err(EptError::ReadonlyMismatch { addr: hva, len, readonly });
                }
                return Ok((only.gpa + (hva - only.hva), Plan::default()));
            }
            return Err(EptError::Overlap { addr: hva, len });
        }
        let eligible = |s: &Slot| self.kind_of(s) == Kind::Windowed && s.readonly == readonly;
        let left = self.slot_ending_at(hva).filter(eligible);
        let right = self.slot_at_hva(end).filter(eligible);
        let gpa = left
            .map(|l| l.gpa_end())
            .filter(|&g| self.gpa_free(g, len))
            .or_else(|| {
                right.and_then(|r| r.gpa.checked_sub(len)).filter(|&g| self.gpa_free(g, len))
            })
            .map_or_else(|| self.first_fit(len), Ok)?;
        let mut group = Vec::new();
        let (mut start_hva, mut start_gpa, mut stop) = (hva, gpa, end);
        if let Some(l) = left.filter(|l| l.gpa_end() == gpa) {
            (start_hva, start_gpa) = (l.hva, l.gpa);
            group.push(l);
        }
        if let Some(r) = right.filter(|r| r.gpa == gpa + len) {
            stop = r.hva_end();
            group.push(r);
        }
        let merged = Pending { gpa: start_gpa, hva: start_hva, len: stop - start_hva, readonly };
        let plan = self.commit(group, vec![merged])?;
        Ok((gpa, plan))
    }

    /// Identity maps the range when it lies wholly below the window start,
    /// otherwise maps it windowed. Returns `(gpa_of_hva, kind, plan)`.
    ///
    /// # Errors
    /// As [`insert_identity`](Self::insert_identity) or
    /// [`insert_windowed`](Self::insert_windowed), whichever is used.
    pub fn insert(
        &mut self,
        hva: u64,
        len: u64,
        readonly: bool,
    ) -> Result<(u64, Kind, Plan), EptError> {
        let end = check_range(hva, len)?;
        if end <= self.window.start {
            let plan = self.insert_identity(hva, len, readonly)?;
            Ok((hva, Kind::Identity, plan))
        } else {
            let (gpa, plan) = self.insert_windowed(hva, len, readonly)?;
            Ok((gpa, Kind::Windowed, plan))
        }
    }

    /// Unmaps host range `[hva, hva + len)` (bytes, page aligned) from
    /// whatever covers it. Slots partly covered are split: the plan deletes
    /// them and creates the remaining pieces. Uncovered parts are ignored
    /// (nothing covered yields an empty plan). Freed window space is reused
    /// by later windowed inserts.
    ///
    /// # Errors
    /// [`Unaligned`](EptError::Unaligned), [`Empty`](EptError::Empty),
    /// [`Wraps`](EptError::Wraps); [`TooManySlots`](EptError::TooManySlots)
    /// if splitting one slot in two would exceed the limit.
    pub fn remove(&mut self, hva: u64, len: u64) -> Result<Plan, EptError> {
        let end = check_range(hva, len)?;
        let overlapping = self.hva_overlapping(hva, end);
        let mut pieces = Vec::new();
        for s in &overlapping {
            if s.hva < hva {
                pieces.push(Pending {
                    gpa: s.gpa,
                    hva: s.hva,
                    len: hva - s.hva,
                    readonly: s.readonly,
                });
            }
            if s.hva_end() > end {
                let cut = end - s.hva;
                pieces.push(Pending {
                    gpa: s.gpa + cut,
                    hva: end,
                    len: s.len - cut,
                    readonly: s.readonly,
                });
            }
        }
        self.commit(overlapping, pieces)
    }

    /// Translates a host virtual address to its guest-physical address, if
    /// mapped. O(log n).
    pub fn hva_to_gpa(&self, hva: u64) -> Option<u64> {
        self.slot_for_hva(hva).map(|s| s.gpa + (hva - s.hva))
    }

    /// Translates a guest-physical address to its host virtual address, if
    /// mapped. O(log n).
    pub fn gpa_to_hva(&self, gpa: u64) -> Option<u64> {
        self.slot_for_gpa(gpa).map(|s| s.hva + (gpa - s.gpa))
    }

    /// The slot whose GPA range contains `gpa`. O(log n).
    pub fn slot_for_gpa(&self, gpa: u64) -> Option<&Slot> {
        let (_, s) = self.by_gpa.range(..=gpa).next_back()?;
        (gpa < s.gpa_end()).then_some(s)
    }

    /// The slot whose HVA range contains `hva`. O(log n).
    pub fn slot_for_hva(&self, hva: u64) -> Option<&Slot> {
        let (_, gpa) = self.by_hva.range(..=hva).next_back()?;
        let s = &self.by_gpa[gpa];
        (hva < s.hva_end()).then_some(s)
    }

    /// All slots, sorted by `gpa`.
    pub fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.by_gpa.values()
    }

    /// Number of slots currently in use (`<= max_slots`).
    pub fn slot_count(&self) -> usize {
        self.by_gpa.len()
    }

    /// Slots whose HVA range intersects `[start, end)`, sorted by HVA.
    fn hva_overlapping(&self, start: u64, end: u64) -> Vec<Slot> {
        let mut out = Vec::new();
        if let Some((_, gpa)) = self.by_hva.range(..start).next_back() {
            let s = self.by_gpa[gpa];
            if s.hva_end() > start {
                out.push(s);
            }
        }
        out.extend(self.by_hva.range(start..end).map(|(_, gpa)| self.by_gpa[gpa]));
        out
    }

    /// The slot whose HVA range ends exactly at `hva`.
    fn slot_ending_at(&self, hva: u64) -> Option<Slot> {
        let (_, gpa) = self.by_hva.range(..hva).next_back()?;
        let s = self.by_gpa[gpa];
        (s.hva_end() == hva).then_some(s)
    }

    /// The slot whose HVA range starts exactly at `hva`.
    fn slot_at_hva(&self, hva: u64) -> Option<Slot> {
        self.by_hva.get(&hva).map(|gpa| self.by_gpa[gpa])
    }

    /// Whether `[gpa, gpa + len)` lies inside the window and is unused.
    fn gpa_free(&self, gpa: u64, len: u64) -> bool {
        let Some(end) = gpa.checked_add(len) else {
            return false;
        };
        gpa >= self.window.start
            && end <= self.window.end
            && self.by_gpa.range(..end).next_back().is_none_or(|(_, s)| s.gpa_end() <= gpa)
    }

    /// Lowest window GPA with `len` free bytes.
    fn first_fit(&self, len: u64) -> Result<u64, EptError> {
        let mut cursor = self.window.start;
        for s in self.by_gpa.range(self.window.start..).map(|(_, s)| s) {
            if s.gpa - cursor >= len {
                return Ok(cursor);
            }
            cursor = s.gpa_end();
        }
        if self.window.end - cursor >= len { Ok(cursor) } else { Err(EptError::WindowFull { len }) }
    }

    /// Applies a plan after checking the slot limit; nothing changes on error.
    fn commit(
        &mut self,
        mut delete: Vec<Slot>,
        mut create: Vec<Pending>,
    ) -> Result<Plan, EptError> {
        if self.by_gpa.len() - delete.len() + create.len() > self.max_slots as usize {
            return Err(EptError::TooManySlots { limit: self.max_slots });
        }
        delete.sort_by_key(|s| s.gpa);
        create.sort_by_key(|p| p.gpa);
        for s in &delete {
            self.by_gpa.remove(&s.gpa);
            self.by_hva.remove(&s.hva);
            self.free_id(s.id);
        }
        let create = create
            .into_iter()
            .map(|p| {
                let slot = Slot {
                    id: self.alloc_id(),
                    gpa: p.gpa,
                    hva: p.hva,
                    len: p.len,
                    readonly: p.readonly,
                };
                self.by_gpa.insert(slot.gpa, slot);
                self.by_hva.insert(slot.hva, slot.gpa);
                slot
            })
            .collect();
        Ok(Plan { delete, create })
    }

    fn alloc_id(&mut self) -> u32 {
        self.free_ids.pop_first().unwrap_or_else(|| {
            self.next_id += 1;
            self.next_id - 1
        })
    }

    fn free_id(&mut self, id: u32) {
        if id + 1 == self.next_id {
            self.next_id = id;
            while self.next_id > 0 && self.free_ids.last() == Some(&(self.next_id - 1)) {
                self.free_ids.pop_last();
                self.next_id -= 1;
            }
        } else {
            self.free_ids.insert(id);
        }
    }
}
