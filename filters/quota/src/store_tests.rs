use super::*;
use crate::test_support::MemStore;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn check(name: &str, requests: u64, window_end: u64) -> Check {
    Check {
        name: name.as_bytes().to_vec(),
        requests,
        window_end,
    }
}

#[test]
fn encoding_round_trips_and_junk_is_empty() {
    let e = vec![
        Entry {
            name: b"a".to_vec(),
            window_end: 60,
            count: 3,
        },
        Entry {
            name: b"gold\x1falice\x1fmonth".to_vec(),
            window_end: 99,
            count: 1 << 40,
        },
    ];
    assert_eq!(decode(&encode(&e)), e);
    assert_eq!(decode(b""), vec![]);
    assert_eq!(decode(b"\x00"), vec![]);
    assert_eq!(decode(b"\xff\xff abc"), vec![]);
    let mut cut = encode(&e);
    cut.truncate(cut.len() - 1);
    assert_eq!(decode(&cut).len(), 1);
}

#[test]
fn slot_keys_are_stable_and_bounded() {
    assert_eq!(slot_key(b"gold\x1falice"), slot_key(b"gold\x1falice"));
    let k = slot_key(b"x");
    let n: usize = k.strip_prefix(SLOT_PREFIX).unwrap().parse().unwrap();
    assert!(n < SLOTS);
}

#[test]
fn init_creates_only_missing_slots() {
    let s = MemStore::default();
    assert_eq!(init_slots(&s), SLOTS);
    let slot = format!("{SLOT_PREFIX}3");
    assert_eq!(
        admit(&s, &slot, &[check("a", 5, 60)], 1, 0),
        Outcome::Allowed(vec![1])
    );
    assert_eq!(init_slots(&s), 0);
    assert_eq!(
        admit(&s, &slot, &[check("a", 5, 60)], 1, 0),
        Outcome::Allowed(vec![2])
    );
}

#[test]
fn admits_up_to_the_limit_then_limits_without_charging() {
    let s = MemStore::default();
    let c = [check("burst", 3, 60)];
    for n in 1..=3 {
        assert_eq!(admit(&s, "k", &c, 1, 10), Outcome::Allowed(vec![n]));
    }
    assert_eq!(admit(&s, "k", &c, 1, 10), Outcome::Limited(vec![3]));
    assert_eq!(admit(&s, "k", &c, 1, 59), Outcome::Limited(vec![3]));
    // The next window starts at 60.
    let c2 = [check("burst", 3, 120)];
    assert_eq!(admit(&s, "k", &c2, 1, 60), Outcome::Allowed(vec![1]));
}

#[test]
fn every_limit_applies_and_is_charged_together() {
    let s = MemStore::default();
    let c = [check("sec", 2, 11), check("min", 3, 60)];
    assert_eq!(admit(&s, "k", &c, 1, 10), Outcome::Allowed(vec![1, 1]));
    assert_eq!(admit(&s, "k", &c, 1, 10), Outcome::Allowed(vec![2, 2]));
    assert_eq!(admit(&s, "k", &c, 1, 10), Outcome::Limited(vec![2, 2]));
    let c = [check("sec", 2, 12), check("min", 3, 60)];
    assert_eq!(admit(&s, "k", &c, 1, 11), Outcome::Allowed(vec![1, 3]));
    assert_eq!(admit(&s, "k", &c, 1, 11), Outcome::Limited(vec![1, 3]));
}

#[test]
fn cost_is_charged_and_a_too_large_cost_is_refused() {
    let s = MemStore::default();
    let c = [check("m", 10, 60)];
    assert_eq!(admit(&s, "k", &c, 4, 0), Outcome::Allowed(vec![4]));
    assert_eq!(admit(&s, "k", &c, 7, 0), Outcome::Limited(vec![4]));
    assert_eq!(admit(&s, "k", &c, 6, 0), Outcome::Allowed(vec![10]));
    assert_eq!(admit(&s, "k", &c, u64::MAX, 0), Outcome::Limited(vec![10]));
}

#[test]
fn cas_conflicts_are_retried_and_failures_reported() {
    let s = MemStore::default();
    let c = [check("m", 10, 60)];
    assert_eq!(admit(&s, "k", &c, 1, 0), Outcome::Allowed(vec![1]));
    *s.conflicts.lock().unwrap() = 3;
    assert_eq!(admit(&s, "k", &c, 1, 0), Outcome::Allowed(vec![2]));
    *s.conflicts.lock().unwrap() = MAX_ATTEMPTS;
    assert_eq!(admit(&s, "k", &c, 1, 0), Outcome::Error);
    *s.conflicts.lock().unwrap() = 0;
    *s.fail.lock().unwrap() = true;
    assert_eq!(admit(&s, "k", &c, 1, 0), Outcome::Error);
}

#[test]
fn ended_windows_are_dropped_and_full_slots_evict_others_first() {
    let s = MemStore::default();
    assert_eq!(
        admit(&s, "k", &[check("old", 5, 10)], 1, 0),
        Outcome::Allowed(vec![1])
    );
    assert_eq!(
        admit(&s, "k", &[check("new", 5, 100)], 1, 20),
        Outcome::Allowed(vec![1])
    );
    let (bytes, _) = s.get("k");
    let names: Vec<Vec<u8>> = decode(&bytes.unwrap())
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec![b"new".to_vec()]);
    let big = "x".repeat(1000);
    for i in 0..40 {
        let name = format!("{big}{i}");
        assert_eq!(
            admit(&s, "k", &[check(&name, 5, 1000 + i)], 1, 20),
            Outcome::Allowed(vec![1])
        );
        assert!(s.get("k").0.unwrap().len() <= MAX_SLOT_BYTES);
    }
}

/// Many threads racing on one slot never admit more than the limit (native only: the Wasm lane
/// has no threads).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn no_over_admission_under_concurrency() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let s = MemStore::default();
    init_slots(&s);
    let allowed = AtomicU64::new(0);
    let c = [check("a", 500, 60), check("b", 700, 3600)];
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..200 {
                    if let Outcome::Allowed(_) = admit(&s, &format!("{SLOT_PREFIX}1"), &c, 1, 0) {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(allowed.load(Ordering::Relaxed), 500);
}
