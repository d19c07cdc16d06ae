//! Unit tests for `ept::GuestPhysMap`: every error variant, coalescing,
//! splitting, window reuse and the slot limit.

use ept::{EptError, GuestPhysMap, Kind, PAGE_SIZE, Plan, Slot};

const P: u64 = PAGE_SIZE;
/// 39 bits: window = [0x60_0000_0000, 0x80_0000_0000).
const W39: u8 = 39;
const HIGH: u64 = 0x5555_5555_0000;

fn map() -> GuestPhysMap {
    GuestPhysMap::new(W39, 32764).unwrap()
}

fn slot(id: u32, gpa: u64, hva: u64, len: u64, readonly: bool) -> Slot {
    Slot { id, gpa, hva, len, readonly }
}

fn ident(id: u32, at: u64, len: u64, readonly: bool) -> Slot {
    slot(id, at, at, len, readonly)
}

fn all(m: &GuestPhysMap) -> Vec<Slot> {
    m.slots().copied().collect()
}

/// Runs `f` on `m`, asserts it fails with `want`, and that `m` is unchanged.
fn fails<T: std::fmt::Debug>(
    m: &mut GuestPhysMap,
    want: EptError,
    f: impl FnOnce(&mut GuestPhysMap) -> Result<T, EptError>,
) {
    let before = m.clone();
    assert_eq!(f(m).unwrap_err(), want);
    assert_eq!(*m, before);
}

#[test]
fn new_validates_width_and_limit() {
    assert_eq!(GuestPhysMap::new(31, 8).unwrap_err(), EptError::InvalidWidth { bits: 31 });
    assert_eq!(GuestPhysMap::new(53, 8).unwrap_err(), EptError::InvalidWidth { bits: 53 });
    assert_eq!(GuestPhysMap::new(0, 8).unwrap_err(), EptError::InvalidWidth { bits: 0 });
    assert_eq!(GuestPhysMap::new(39, 0).unwrap_err(), EptError::InvalidSlotLimit { limit: 0 });
    let m = GuestPhysMap::new(32, 1).unwrap();
    assert_eq!(m.phys_bits(), 32);
    assert_eq!(m.max_slots(), 1);
    assert_eq!(m.window(), 0xC000_0000..0x1_0000_0000);
    assert_eq!(map().window(), 0x60_0000_0000..0x80_0000_0000);
    let m = GuestPhysMap::new(52, 1).unwrap();
    assert_eq!(m.window(), 0xC_0000_0000_0000..0x10_0000_0000_0000);
    assert_eq!(m.slot_count(), 0);
    assert_eq!(m.slots().count(), 0);
}

#[test]
fn range_validation_errors_for_every_operation() {
    let mut m = map();
    m.insert_identity(0x1000, P, false).unwrap();
    let cases = [
        (0x1001, P, EptError::Unaligned { addr: 0x1001, len: P }),
        (0x1000, 0x800, EptError::Unaligned { addr: 0x1000, len: 0x800 }),
        (0x1000, 0, EptError::Empty { addr: 0x1000 }),
        (u64::MAX - P + 1, P, EptError::Wraps { addr: u64::MAX - P + 1, len: P }),
        (0x2000, u64::MAX - P + 1, EptError::Wraps { addr: 0x2000, len: u64::MAX - P + 1 }),
    ];
    for (addr, len, want) in cases {
        fails(&mut m, want, |m| m.insert_identity(addr, len, false));
        fails(&mut m, want, |m| m.insert_windowed(addr, len, false));
        fails(&mut m, want, |m| m.insert(addr, len, false));
        fails(&mut m, want, |m| m.remove(addr, len));
    }
}

#[test]
fn identity_above_width_and_window_conflict() {
    let mut m = map();
    let top = 1u64 << W39;
    let ws = m.window().start;
    fails(&mut m, EptError::AboveWidth { addr: top - P, len: 2 * P, phys_bits: W39 }, |m| {
        m.insert_identity(top - P, 2 * P, false)
    });
    fails(&mut m, EptError::AboveWidth { addr: HIGH, len: P, phys_bits: W39 }, |m| {
        m.insert_identity(HIGH, P, false)
    });
    fails(&mut m, EptError::WindowConflict { addr: ws - P, len: 2 * P, window_start: ws }, |m| {
        m.insert_identity(ws - P, 2 * P, false)
    });
    fails(&mut m, EptError::WindowConflict { addr: top - P, len: P, window_start: ws }, |m| {
        m.insert_identity(top - P, P, false)
    });
    // Ending exactly at the window start is fine.
    let plan = m.insert_identity(ws - P, P, false).unwrap();
    assert_eq!(plan.create, vec![ident(0, ws - P, P, false)]);
}

#[test]
fn identity_create_coalesce_and_idempotence() {
    let mut m = map();
    let plan = m.insert_identity(0x10_0000, 2 * P, false).unwrap();
    assert_eq!(plan, Plan { delete: vec![], create: vec![ident(0, 0x10_0000, 2 * P, false)] });

    // Fully covered: empty plan.
    assert!(m.insert_identity(0x10_1000, P, false).unwrap().is_empty());
    assert!(m.insert_identity(0x10_0000, 2 * P, false).unwrap().is_empty());

    // Touching on the right: merged.
    let plan = m.insert_identity(0x10_2000, P, false).unwrap();
    assert_eq!(plan.delete, vec![ident(0, 0x10_0000, 2 * P, false)]);
    assert_eq!(plan.create, vec![ident(0, 0x10_0000, 3 * P, false)]);

    // Touching on the left.
    let plan = m.insert_identity(0x0F_F000, P, false).unwrap();
    assert_eq!(plan.delete, vec![ident(0, 0x10_0000, 3 * P, false)]);
    assert_eq!(plan.create, vec![ident(0, 0x0F_F000, 4 * P, false)]);

    // Separate slot, then bridge both with an overlapping range.
    m.insert_identity(0x10_5000, 2 * P, false).unwrap();
    assert_eq!(m.slot_count(), 2);
    let plan = m.insert_identity(0x10_2000, 4 * P, false).unwrap();
    assert_eq!(
        plan.delete,
        vec![ident(0, 0x0F_F000, 4 * P, false), ident(1, 0x10_5000, 2 * P, false)]
    );
    assert_eq!(plan.create, vec![ident(0, 0x0F_F000, 8 * P, false)]);
    assert_eq!(all(&m), vec![ident(0, 0x0F_F000, 8 * P, false)]);
}

#[test]
fn identity_readonly_neighbours_do_not_merge() {
    let mut m = map();
    m.insert_identity(0x10_0000, P, false).unwrap();
    let plan = m.insert_identity(0x10_1000, P, true).unwrap();
    assert!(plan.delete.is_empty());
    assert_eq!(plan.create, vec![ident(1, 0x10_1000, P, true)]);
    // Merges with the readonly neighbour only.
    let plan = m.insert_identity(0x10_2000, P, true).unwrap();
    assert_eq!(plan.delete, vec![ident(1, 0x10_1000, P, true)]);
    assert_eq!(plan.create, vec![ident(1, 0x10_1000, 2 * P, true)]);
    assert_eq!(m.slot_count(), 2);
}

#[test]
fn readonly_mismatch() {
    let mut m = map();
    m.insert_identity(0x10_0000, 2 * P, false).unwrap();
    fails(
        &mut m,
        EptError::ReadonlyMismatch { addr: 0x10_1000, len: 2 * P, readonly: true },
        |m| m.insert_identity(0x10_1000, 2 * P, true),
    );
    let (gpa, _) = m.insert_windowed(HIGH, 2 * P, true).unwrap();
    assert_eq!(gpa, m.window().start);
    fails(&mut m, EptError::ReadonlyMismatch { addr: HIGH, len: P, readonly: false }, |m| {
        m.insert_windowed(HIGH, P, false)
    });
    let msg = EptError::ReadonlyMismatch { addr: HIGH, len: P, readonly: false }.to_string();
    assert!(msg.contains("readonly = true"), "{msg}");
}

#[test]
fn overlap_between_kinds_and_layouts() {
    let mut m = map();
    let low = 0x10_0000;
    m.insert_identity(low, 2 * P, false).unwrap();
    // Windowed over identity.
    fails(&mut m, EptError::Overlap { addr: low + P, len: 2 * P }, |m| {
        m.insert_windowed(low + P, 2 * P, false)
    });
    fails(&mut m, EptError::Overlap { addr: low, len: P }, |m| m.insert_windowed(low, P, false));
    // Identity over a windowed range below the window.
    m.insert_windowed(0x20_0000, 2 * P, false).unwrap();
    fails(&mut m, EptError::Overlap { addr: 0x20_1000, len: 2 * P }, |m| {
        m.insert_identity(0x20_1000, 2 * P, false)
    });
    fails(&mut m, EptError::Overlap { addr: 0x20_0000, len: P }, |m| m.insert(0x20_0000, P, false));
    // Windowed partly over windowed.
    m.insert_windowed(HIGH, 2 * P, false).unwrap();
    fails(&mut m, EptError::Overlap { addr: HIGH + P, len: 2 * P }, |m| {
        m.insert_windowed(HIGH + P, 2 * P, false)
    });
    // Windowed over two windowed slots that are not GPA-contiguous.
    m.insert_windowed(HIGH + 2 * P, P, true).unwrap();
    fails(&mut m, EptError::Overlap { addr: HIGH, len: 3 * P }, |m| {
        m.insert_windowed(HIGH, 3 * P, false)
    });
}

#[test]
fn windowed_placement_coalescing_and_lookup() {
    let mut m = map();
    let ws = m.window().start;
    let (gpa, plan) = m.insert_windowed(HIGH, 2 * P, false).unwrap();
    assert_eq!(gpa, ws);
    assert_eq!(plan.create, vec![slot(0, ws, HIGH, 2 * P, false)]);

    // Wholly covered: existing GPA, empty plan.
    let (gpa, plan) = m.insert_windowed(HIGH + P, P, false).unwrap();
    assert_eq!((gpa, plan.is_empty()), (ws + P, true));

    // HVA-adjacent on the right: placed GPA-adjacent and merged.
    let (gpa, plan) = m.insert_windowed(HIGH + 2 * P, P, false).unwrap();
    assert_eq!(gpa, ws + 2 * P);
    assert_eq!(plan.delete, vec![slot(0, ws, HIGH, 2 * P, false)]);
    assert_eq!(plan.create, vec![slot(0, ws, HIGH, 3 * P, false)]);

    // An unrelated range takes the next free GPA.
    let other = 0x7fff_0000_0000;
    let (gpa, _) = m.insert_windowed(other, P, false).unwrap();
    assert_eq!(gpa, ws + 3 * P);

    // HVA-adjacent on the left, but the GPA after it is taken: first fit.
    let (gpa, plan) = m.insert_windowed(HIGH + 3 * P, P, false).unwrap();
    assert_eq!(gpa, ws + 4 * P);
    assert!(plan.delete.is_empty());
    assert_eq!(m.slot_count(), 3);

    // Coalescing with the right neighbour via the free GPA just below it.
    m.remove(HIGH, 3 * P).unwrap();
    m.remove(other, P).unwrap();
    let (gpa, plan) = m.insert_windowed(HIGH + 2 * P, P, false).unwrap();
    assert_eq!(gpa, ws + 3 * P);
    assert_eq!(plan.delete, vec![slot(2, ws + 4 * P, HIGH + 3 * P, P, false)]);
    assert_eq!(plan.create, vec![slot(0, ws + 3 * P, HIGH + 2 * P, 2 * P, false)]);

    assert_eq!(m.hva_to_gpa(HIGH + 3 * P + 5), Some(ws + 4 * P + 5));
    assert_eq!(m.gpa_to_hva(ws + 4 * P + 5), Some(HIGH + 3 * P + 5));
    assert_eq!(m.slot_for_gpa(ws + 3 * P).map(|s| s.hva), Some(HIGH + 2 * P));
    assert_eq!(m.slot_for_hva(HIGH + 2 * P).map(|s| s.gpa), Some(ws + 3 * P));
    assert_eq!(m.hva_to_gpa(HIGH), None);
    assert_eq!(m.hva_to_gpa(other), None);
    assert_eq!(m.gpa_to_hva(ws), None);
    assert!(m.slot_for_gpa(ws + 5 * P).is_none());
}

#[test]
fn windowed_bridge_merges_three() {
    let mut m = map();
    let ws = m.window().start;
    m.insert_windowed(HIGH, 3 * P, false).unwrap();
    m.remove(HIGH + P, P).unwrap();
    assert_eq!(m.slot_count(), 2);
    let (gpa, plan) = m.insert_windowed(HIGH + P, P, false).unwrap();
    assert_eq!(gpa, ws + P);
    assert_eq!(plan.delete.len(), 2);
    assert_eq!(plan.create, vec![slot(0, ws, HIGH, 3 * P, false)]);
    assert_eq!(all(&m), vec![slot(0, ws, HIGH, 3 * P, false)]);
}

#[test]
fn windowed_readonly_neighbours_do_not_merge() {
    let mut m = map();
    let ws = m.window().start;
    m.insert_windowed(HIGH, P, true).unwrap();
    let (gpa, plan) = m.insert_windowed(HIGH + P, P, false).unwrap();
    assert_eq!(gpa, ws + P);
    assert!(plan.delete.is_empty());
    assert_eq!(m.slot_count(), 2);
}

#[test]
fn insert_picks_kind() {
    let mut m = map();
    let ws = m.window().start;
    let (gpa, kind, _) = m.insert(0x40_0000, P, false).unwrap();
    assert_eq!((gpa, kind), (0x40_0000, Kind::Identity));
    // Crossing the window start: windowed.
    let (gpa, kind, plan) = m.insert(ws - P, 2 * P, false).unwrap();
    assert_eq!((gpa, kind), (ws, Kind::Windowed));
    assert_eq!(m.kind_of(&plan.create[0]), Kind::Windowed);
    // Ending exactly at the window start: identity.
    let (gpa, kind, _) = m.insert(ws - 2 * P, P, false).unwrap();
    assert_eq!((gpa, kind), (ws - 2 * P, Kind::Identity));
    assert_eq!(m.kind_of(m.slot_for_hva(ws - 2 * P).unwrap()), Kind::Identity);
    // Far above the width.
    let (gpa, kind, _) = m.insert(HIGH, P, true).unwrap();
    assert_eq!((gpa, kind), (ws + 2 * P, Kind::Windowed));
    // Inside the window's HVA range, touching a windowed slot whose next GPA is taken.
    let (gpa, kind, _) = m.insert(ws + P, P, false).unwrap();
    assert_eq!((gpa, kind), (ws + 3 * P, Kind::Windowed));
    // Already covered: same GPA, empty plan.
    let (gpa, kind, plan) = m.insert(ws, P, false).unwrap();
    assert_eq!((gpa, kind, plan.is_empty()), (ws + P, Kind::Windowed, true));
}

#[test]
fn remove_splits_and_ignores_uncovered() {
    let mut m = map();
    let base = 0x10_0000;
    m.insert_identity(base, 8 * P, false).unwrap();
    assert!(m.remove(0x90_0000, P).unwrap().is_empty());

    // Middle: two pieces.
    let plan = m.remove(base + 2 * P, 2 * P).unwrap();
    assert_eq!(plan.delete, vec![ident(0, base, 8 * P, false)]);
    assert_eq!(
        plan.create,
        vec![ident(0, base, 2 * P, false), ident(1, base + 4 * P, 4 * P, false)]
    );
    // Head of the second piece, spilling into uncovered space.
    let plan = m.remove(base + 3 * P, 2 * P).unwrap();
    assert_eq!(plan.delete, vec![ident(1, base + 4 * P, 4 * P, false)]);
    assert_eq!(plan.create, vec![ident(1, base + 5 * P, 3 * P, false)]);
    // Tail.
    let plan = m.remove(base + 7 * P, P).unwrap();
    assert_eq!(plan.create, vec![ident(1, base + 5 * P, 2 * P, false)]);
    // Spanning both slots entirely.
    let plan = m.remove(base - P, 10 * P).unwrap();
    assert_eq!(plan.delete.len(), 2);
    assert!(plan.create.is_empty());
    assert_eq!(m.slot_count(), 0);

    // Windowed split keeps GPA offsets.
    let ws = m.window().start;
    m.insert_windowed(HIGH, 4 * P, false).unwrap();
    let plan = m.remove(HIGH + P, P).unwrap();
    assert_eq!(
        plan.create,
        vec![slot(0, ws, HIGH, P, false), slot(1, ws + 2 * P, HIGH + 2 * P, 2 * P, false)]
    );
    assert_eq!(m.hva_to_gpa(HIGH + 3 * P), Some(ws + 3 * P));
}

#[test]
fn window_space_and_ids_are_reused() {
    let mut m = map();
    let ws = m.window().start;
    let (a, _) = m.insert_windowed(HIGH, 2 * P, false).unwrap();
    let (b, _) = m.insert_windowed(HIGH + 0x10_0000, P, false).unwrap();
    m.insert_identity(0x1000, P, false).unwrap();
    assert_eq!((a, b), (ws, ws + 2 * P));
    let plan = m.remove(HIGH, 2 * P).unwrap();
    assert_eq!(plan.delete, vec![slot(0, ws, HIGH, 2 * P, false)]);
    // Freed window space and slot id 0 are reused (first fit, lowest id).
    let (c, plan) = m.insert_windowed(0x7f00_0000_0000, P, false).unwrap();
    assert_eq!(c, ws);
    assert_eq!(plan.create[0].id, 0);
    let (d, plan) = m.insert_windowed(0x7f00_1000_0000, 2 * P, false).unwrap();
    assert_eq!(d, ws + 3 * P);
    assert_eq!(plan.create[0].id, 3);
    let (e, _) = m.insert_windowed(0x7f00_2000_0000, P, false).unwrap();
    assert_eq!(e, ws + P);
}

#[test]
fn window_full() {
    let mut m = GuestPhysMap::new(32, 8).unwrap();
    let window = m.window();
    let size = window.end - window.start;
    fails(&mut m, EptError::WindowFull { len: size + P }, |m| {
        m.insert_windowed(HIGH, size + P, false)
    });
    let (gpa, _) = m.insert_windowed(HIGH, size - P, false).unwrap();
    assert_eq!(gpa, window.start);
    fails(&mut m, EptError::WindowFull { len: 2 * P }, |m| {
        m.insert_windowed(HIGH * 2, 2 * P, false)
    });
    // The last page still fits, and then nothing does.
    m.insert_windowed(HIGH * 2, P, false).unwrap();
    fails(&mut m, EptError::WindowFull { len: P }, |m| m.insert_windowed(HIGH * 3, P, false));
    assert!(EptError::WindowFull { len: P }.to_string().contains("0x1000"));
}

#[test]
fn slot_limit() {
    let mut m = GuestPhysMap::new(W39, 2).unwrap();
    m.insert_identity(0x1000, P, false).unwrap();
    m.insert_identity(0x3000, P, false).unwrap();
    fails(&mut m, EptError::TooManySlots { limit: 2 }, |m| m.insert_identity(0x5000, P, false));
    fails(&mut m, EptError::TooManySlots { limit: 2 }, |m| m.insert_windowed(HIGH, P, false));
    fails(&mut m, EptError::TooManySlots { limit: 2 }, |m| m.insert(HIGH, P, false));
    // Coalescing at the limit is fine: merges the two into one.
    let plan = m.insert_identity(0x2000, P, false).unwrap();
    assert_eq!(plan.delete.len(), 2);
    assert_eq!(plan.create, vec![ident(0, 0x1000, 3 * P, false)]);
    m.insert_windowed(HIGH, 3 * P, false).unwrap();
    // Splitting a slot in the middle would need a third slot.
    fails(&mut m, EptError::TooManySlots { limit: 2 }, |m| m.remove(0x2000, P));
    fails(&mut m, EptError::TooManySlots { limit: 2 }, |m| m.remove(HIGH + P, P));
    // Trimming an end does not.
    m.remove(0x1000, P).unwrap();
    m.remove(HIGH + 2 * P, P).unwrap();
    assert_eq!(m.slot_count(), 2);
    assert!(m.slots().all(|s| s.id < 2));
    assert!(EptError::TooManySlots { limit: 2 }.to_string().contains('2'));
}

#[test]
fn single_slot_limit() {
    let mut m = GuestPhysMap::new(W39, 1).unwrap();
    m.insert_identity(0x1000, 4 * P, false).unwrap();
    fails(&mut m, EptError::TooManySlots { limit: 1 }, |m| m.remove(0x2000, P));
    m.remove(0x1000, 4 * P).unwrap();
    m.insert_windowed(HIGH, P, false).unwrap();
    assert_eq!(all(&m), vec![slot(0, m.window().start, HIGH, P, false)]);
}

#[test]
fn slots_sorted_by_gpa_and_plans_sorted() {
    let mut m = map();
    m.insert_windowed(HIGH, P, false).unwrap();
    m.insert_identity(0x9000, P, false).unwrap();
    m.insert_identity(0x1000, P, false).unwrap();
    let gpas: Vec<u64> = m.slots().map(|s| s.gpa).collect();
    assert_eq!(gpas, vec![0x1000, 0x9000, m.window().start]);
    let plan = m.insert_identity(0x2000, 7 * P, false).unwrap();
    // Both neighbours coalesce with the new range: two deletions, in GPA order.
    let deleted: Vec<u64> = plan.delete.iter().map(|s| s.gpa).collect();
    assert_eq!(deleted, vec![0x1000, 0x9000]);
}

#[test]
fn display_names_numbers_and_remedy() {
    let cases: [(EptError, &[&str]); 11] = [
        (EptError::Unaligned { addr: 0x1001, len: 0x10 }, &["0x1001", "0x10", "aligned"]),
        (EptError::Empty { addr: 0x5000 }, &["0x5000", "non-zero"]),
        (EptError::Wraps { addr: 0xffff_f000, len: 0x2000 }, &["0xfffff000", "wraps"]),
        (EptError::AboveWidth { addr: HIGH, len: P, phys_bits: 39 }, &["2^39", "windowed"]),
        (
            EptError::WindowConflict { addr: 1, len: 2, window_start: 0x60_0000_0000 },
            &["0x6000000000", "windowed"],
        ),
        (EptError::Overlap { addr: 0x7000, len: P }, &["0x7000", "remove"]),
        (
            EptError::ReadonlyMismatch { addr: 0x7000, len: P, readonly: true },
            &["0x7000", "remove"],
        ),
        (EptError::WindowFull { len: 0x3000 }, &["0x3000", "window"]),
        (EptError::TooManySlots { limit: 509 }, &["509", "KVM_CAP_NR_MEMSLOTS"]),
        (EptError::InvalidWidth { bits: 60 }, &["60", "CPUID"]),
        (EptError::InvalidSlotLimit { limit: 0 }, &["0", "KVM_CAP_NR_MEMSLOTS"]),
    ];
    for (err, needles) in cases {
        let msg = err.to_string();
        for needle in needles {
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        }
    }
}
