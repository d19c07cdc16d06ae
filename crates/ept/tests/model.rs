//! Property tests: random operation sequences checked against a page-level
//! model and a model of the KVM slot table.

use std::collections::{BTreeMap, HashMap};

use ept::{EptError, GuestPhysMap, Kind, PAGE_SIZE, Plan, Slot};
use proptest::prelude::*;

const P: u64 = PAGE_SIZE;
const BITS: u8 = 36;
const TOP: u64 = 1 << BITS;
/// Window start for 36 bits: 2^36 - 2^34.
const WS: u64 = TOP - (TOP >> 2);
/// Pages per region; ranges may run up to `MAX_PAGES` past the end.
const REGION_PAGES: u64 = 64;
const MAX_PAGES: u64 = 8;
/// Region bases: low memory, straddling the window start, straddling 2^w,
/// far above the width (PIE / mmap area).
const REGIONS: [u64; 4] = [0x10_0000, WS - 32 * P, TOP - 32 * P, 0x7f00_0000_0000];

/// Page hva -> (gpa, readonly).
type Model = BTreeMap<u64, (u64, bool)>;

#[derive(Clone, Copy, Debug)]
enum Op {
    Identity(u64, u64, bool),
    Windowed(u64, u64, bool),
    Insert(u64, u64, bool),
    Remove(u64, u64),
}

fn range() -> impl Strategy<Value = (u64, u64)> {
    (0..REGIONS.len(), 0..REGION_PAGES, 0..=MAX_PAGES)
        .prop_map(|(r, page, n)| (REGIONS[r] + page * P, n * P))
}

fn op() -> impl Strategy<Value = Op> {
    let ro = prop::bool::weighted(0.3);
    prop_oneof![
        3 => (range(), ro).prop_map(|((a, l), r)| Op::Identity(a, l, r)),
        3 => (range(), ro).prop_map(|((a, l), r)| Op::Windowed(a, l, r)),
        2 => (range(), ro).prop_map(|((a, l), r)| Op::Insert(a, l, r)),
        3 => range().prop_map(|(a, l)| Op::Remove(a, l)),
    ]
}

fn pages(hva: u64, len: u64) -> impl Iterator<Item = u64> {
    (0..len / P).map(move |i| hva + i * P)
}

fn is_windowed(gpa: u64) -> bool {
    gpa >= WS
}

/// Number of slots a fully coalesced slot table for `model` has.
fn runs(model: &Model) -> usize {
    let mut count = 0;
    let mut prev: Option<(u64, u64, bool)> = None;
    for (&hva, &(gpa, ro)) in model {
        let joins = prev.is_some_and(|(ph, pg, pr)| {
            ph + P == hva && pg + P == gpa && pr == ro && is_windowed(pg) == is_windowed(gpa)
        });
        if !joins {
            count += 1;
        }
        prev = Some((hva, gpa, ro));
    }
    count
}

/// What the model predicts for an identity insert (`Ok` carries the new model).
fn expect_identity(
    model: &Model,
    hva: u64,
    len: u64,
    ro: bool,
    max: u32,
) -> Result<Model, EptError> {
    if len == 0 {
        return Err(EptError::Empty { addr: hva });
    }
    let end = hva + len;
    if end > TOP {
        return Err(EptError::AboveWidth { addr: hva, len, phys_bits: BITS });
    }
    if end > WS {
        return Err(EptError::WindowConflict { addr: hva, len, window_start: WS });
    }
    let mapped: Vec<(u64, bool)> = pages(hva, len).filter_map(|p| model.get(&p).copied()).collect();
    if mapped.iter().any(|&(gpa, _)| is_windowed(gpa)) {
        return Err(EptError::Overlap { addr: hva, len });
    }
    if mapped.iter().any(|&(_, r)| r != ro) {
        return Err(EptError::ReadonlyMismatch { addr: hva, len, readonly: ro });
    }
    let mut post = model.clone();
    post.extend(pages(hva, len).map(|p| (p, (p, ro))));
    if runs(&post) > max as usize {
        return Err(EptError::TooManySlots { limit: max });
    }
    Ok(post)
}

/// Model prediction for a windowed insert.
enum Windowed {
    /// Already wholly covered by one windowed slot: this GPA, empty plan.
    Covered(u64),
    /// Unmapped: a new GPA is chosen (or the slot limit is hit).
    Fresh,
}

fn expect_windowed(model: &Model, hva: u64, len: u64, ro: bool) -> Result<Windowed, EptError> {
    if len == 0 {
        return Err(EptError::Empty { addr: hva });
    }
    let mapped: Vec<Option<(u64, bool)>> =
        pages(hva, len).map(|p| model.get(&p).copied()).collect();
    if mapped.iter().all(Option::is_none) {
        return Ok(Windowed::Fresh);
    }
    let first = mapped[0];
    let one_slot = first.is_some_and(|(g0, r0)| {
        is_windowed(g0)
            && mapped.iter().enumerate().all(|(i, m)| *m == Some((g0 + i as u64 * P, r0)))
    });
    match first {
        Some((g0, r0)) if one_slot => {
            if r0 == ro {
                Ok(Windowed::Covered(g0))
            } else {
                Err(EptError::ReadonlyMismatch { addr: hva, len, readonly: ro })
            }
        }
        _ => Err(EptError::Overlap { addr: hva, len }),
    }
}

fn expect_remove(model: &Model, hva: u64, len: u64, max: u32) -> Result<Model, EptError> {
    if len == 0 {
        return Err(EptError::Empty { addr: hva });
    }
    let mut post = model.clone();
    for p in pages(hva, len) {
        post.remove(&p);
    }
    if runs(&post) > max as usize {
        return Err(EptError::TooManySlots { limit: max });
    }
    Ok(post)
}

/// Applies `plan` to a model of KVM's slot table, checking what KVM checks
/// (and the lowest-free-id rule).
fn apply(table: &mut HashMap<u32, Slot>, plan: &Plan, max: u32) -> Result<(), TestCaseError> {
    for d in &plan.delete {
        prop_assert_eq!(table.remove(&d.id), Some(*d), "delete of a slot that does not exist");
    }
    for c in &plan.create {
        prop_assert!(c.len > 0 && c.gpa % P == 0 && c.hva % P == 0 && c.len % P == 0);
        prop_assert!(c.id < max, "slot id {} >= limit {}", c.id, max);
        let lowest = (0..).find(|id| !table.contains_key(id)).unwrap();
        prop_assert_eq!(c.id, lowest, "ids must be allocated lowest free first");
        for s in table.values() {
            prop_assert!(
                c.gpa_range().end <= s.gpa || s.gpa_range().end <= c.gpa,
                "GPA overlap: {:?} vs {:?}",
                c,
                s
            );
            prop_assert!(
                c.hva_range().end <= s.hva || s.hva_range().end <= c.hva,
                "HVA overlap: {:?} vs {:?}",
                c,
                s
            );
        }
        table.insert(c.id, *c);
    }
    Ok(())
}

fn check_state(
    map: &GuestPhysMap,
    model: &Model,
    table: &HashMap<u32, Slot>,
    max: u32,
) -> Result<(), TestCaseError> {
    // (2) the KVM table equals slots(), which is sorted by gpa.
    let slots: Vec<Slot> = map.slots().copied().collect();
    let mut want: Vec<Slot> = table.values().copied().collect();
    want.sort_by_key(|s| s.gpa);
    prop_assert_eq!(&slots, &want);
    // (4) slot limit.
    prop_assert!(map.slot_count() <= max as usize);
    prop_assert_eq!(map.slot_count(), slots.len());
    // Fully coalesced (identity and windowed); implies (5).
    prop_assert_eq!(map.slot_count(), runs(model));
    // (5) explicitly: no touching identity slots with equal readonly.
    for w in slots.windows(2) {
        if !is_windowed(w[1].gpa) {
            prop_assert!(
                !(w[0].gpa_range().end == w[1].gpa && w[0].readonly == w[1].readonly),
                "uncoalesced identity slots {:?} {:?}",
                w[0],
                w[1]
            );
        }
    }
    // (3) translations agree with the model both ways.
    let mut bytes = 0;
    for (&hva, &(gpa, ro)) in model {
        prop_assert_eq!(map.hva_to_gpa(hva), Some(gpa));
        prop_assert_eq!(map.hva_to_gpa(hva + P - 1), Some(gpa + P - 1));
        prop_assert_eq!(map.gpa_to_hva(gpa), Some(hva));
        let slot = map.slot_for_gpa(gpa).copied();
        prop_assert_eq!(slot.map(|s| s.readonly), Some(ro));
        let kind = map.kind_of(&slot.unwrap());
        if is_windowed(gpa) {
            prop_assert!(map.window().contains(&gpa));
            prop_assert_eq!(kind, Kind::Windowed);
        } else {
            prop_assert_eq!(gpa, hva, "identity page with gpa != hva");
            prop_assert_eq!(kind, Kind::Identity);
        }
        bytes += P;
    }
    for &base in &REGIONS {
        for p in pages(base, (REGION_PAGES + MAX_PAGES) * P) {
            if !model.contains_key(&p) {
                prop_assert_eq!(map.hva_to_gpa(p), None);
            }
        }
    }
    prop_assert_eq!(
        slots.iter().map(|s| s.len).sum::<u64>(),
        bytes,
        "slots map pages the model lacks"
    );
    Ok(())
}

fn run(ops: &[Op], max: u32) -> Result<(), TestCaseError> {
    let mut map = GuestPhysMap::new(BITS, max).unwrap();
    prop_assert_eq!(map.window(), WS..TOP);
    let mut model = Model::new();
    let mut table = HashMap::new();
    for &op in ops {
        let before = map.clone();
        let (got, want): (Result<Plan, EptError>, Result<Option<Model>, EptError>) = match op {
            Op::Identity(hva, len, ro) => (
                map.insert_identity(hva, len, ro),
                expect_identity(&model, hva, len, ro, max).map(Some),
            ),
            Op::Remove(hva, len) => {
                (map.remove(hva, len), expect_remove(&model, hva, len, max).map(Some))
            }
            Op::Windowed(hva, len, ro) | Op::Insert(hva, len, ro) => {
                let identity = matches!(op, Op::Insert(..)) && len > 0 && hva + len <= WS;
                if identity {
                    let got = map.insert(hva, len, ro).map(|(gpa, kind, plan)| {
                        assert_eq!((gpa, kind), (hva, Kind::Identity));
                        plan
                    });
                    (got, expect_identity(&model, hva, len, ro, max).map(Some))
                } else {
                    let got = if matches!(op, Op::Insert(..)) {
                        map.insert(hva, len, ro).map(|(gpa, kind, plan)| {
                            assert_eq!(kind, Kind::Windowed);
                            (gpa, plan)
                        })
                    } else {
                        map.insert_windowed(hva, len, ro)
                    };
                    let want = match (&got, expect_windowed(&model, hva, len, ro)) {
                        (Ok((gpa, plan)), Ok(Windowed::Covered(g))) => {
                            prop_assert_eq!(*gpa, g);
                            prop_assert!(plan.is_empty());
                            Ok(None)
                        }
                        (Ok((gpa, _)), Ok(Windowed::Fresh)) => {
                            let mut post = model.clone();
                            post.extend(pages(hva, len).zip((0..).map(|i| (gpa + i * P, ro))));
                            Ok(Some(post))
                        }
                        // Only possible when every slot is in use and nothing coalesces.
                        (Err(EptError::TooManySlots { .. }), Ok(Windowed::Fresh)) => {
                            prop_assert_eq!(before.slot_count(), max as usize);
                            Err(EptError::TooManySlots { limit: max })
                        }
                        // Any other success/failure mix is reported by the match below.
                        (_, want) => want.map(|_| None),
                    };
                    (got.map(|(_, plan)| plan), want)
                }
            }
        };
        match (got, want) {
            (Ok(plan), Ok(post)) => {
                apply(&mut table, &plan, max)?;
                if let Some(post) = post {
                    model = post;
                }
            }
            (Err(e), Err(w)) => {
                prop_assert_eq!(e, w, "op {:?}", op);
                // (6) failing calls leave state unchanged.
                prop_assert_eq!(&map, &before, "failed op {:?} changed state", op);
            }
            (got, want) => {
                prop_assert!(false, "op {:?}: got {:?}, model wants {:?}", op, got, want)
            }
        }
        check_state(&map, &model, &table, max)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn matches_model(ops in prop::collection::vec(op(), 1..60), max in 1u32..=10) {
        run(&ops, max)?;
    }

    #[test]
    fn matches_model_roomy(ops in prop::collection::vec(op(), 1..120)) {
        run(&ops, 32764)?;
    }
}
