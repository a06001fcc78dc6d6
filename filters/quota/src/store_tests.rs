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
fn siphash_matches_the_reference() {
    // The reference vectors of the SipHash paper (key 00..0f, message 00..len-1) …
    let key: HashKey = core::array::from_fn(|i| i as u8);
    let msg: Vec<u8> = (0..64u8).collect();
    let cases: &[(usize, u64)] = &[
        (0, 0x726f_db47_dd0e_0e31),
        (1, 0x74f8_39c5_93dc_67fd),
        (15, 0xa129_ca61_49be_45e5),
    ];
    for (len, want) in cases {
        assert_eq!(siphash24(&key, &msg[..*len]), *want, "{len}");
    }
    // … and std's own SipHash-2-4 for every length up to 64 under another key.
    #[allow(deprecated)]
    for len in 0..=64 {
        use std::hash::Hasher;
        let k: HashKey = core::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0x5a);
        let (k0, k1) = (
            u64::from_le_bytes(k[..8].try_into().unwrap()),
            u64::from_le_bytes(k[8..].try_into().unwrap()),
        );
        let mut h = std::hash::SipHasher::new_with_keys(k0, k1);
        h.write(&msg[..len]);
        assert_eq!(siphash24(&k, &msg[..len]), h.finish(), "{len}");
    }
}

#[test]
fn slot_keys_depend_on_the_secret_key_and_are_bounded() {
    let (a, b): (HashKey, HashKey) = ([1; 16], [2; 16]);
    assert_eq!(
        slot_key(&a, b"gold\x1falice"),
        slot_key(&a, b"gold\x1falice")
    );
    let n = |k: &str| -> usize { k.strip_prefix(SLOT_PREFIX).unwrap().parse().unwrap() };
    // Names that share a slot under one key scatter under another: one can only aim at a
    // slot by knowing the key.
    let target = slot_key(&a, b"victim");
    let aimed: Vec<String> = (0..200_000)
        .map(|i| format!("attacker-{i}"))
        .filter(|s| slot_key(&a, s.as_bytes()) == target)
        .take(40)
        .collect();
    assert_eq!(aimed.len(), 40);
    let still = aimed
        .iter()
        .filter(|s| slot_key(&b, s.as_bytes()) == slot_key(&b, b"victim"))
        .count();
    assert!(still <= 2, "{still} of 40 still share the victim's slot");
    for i in 0..1000 {
        assert!(n(&slot_key(&a, format!("{i}").as_bytes())) < SLOTS);
    }
}

#[test]
fn the_hash_key_is_random_and_shared_through_the_store() {
    assert_ne!(random_key(), random_key());
    assert_ne!(random_key(), [0; 16]);
    let s = MemStore::default();
    let first = shared_hash_key(&s, [9; 16]);
    assert_eq!(first, [9; 16]);
    // Every later VM (another worker) gets the stored key, not its own fresh one.
    assert_eq!(shared_hash_key(&s, [4; 16]), [9; 16]);
    // A malformed stored value is replaced, and the stored one is used.
    let s = MemStore::default();
    s.set(HASH_KEY_NAME, b"short", None);
    assert_eq!(shared_hash_key(&s, [5; 16]), [5; 16]);
    assert_eq!(shared_hash_key(&s, [6; 16]), [5; 16]);
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
    // Contention is its own outcome, never an admission.
    assert_eq!(admit(&s, "k", &c, 1, 0), Outcome::Contended);
    *s.conflicts.lock().unwrap() = MAX_ATTEMPTS - 1;
    assert_eq!(admit(&s, "k", &c, 1, 0), Outcome::Allowed(vec![3]));
    *s.conflicts.lock().unwrap() = 0;
    *s.fail.lock().unwrap() = true;
    assert_eq!(admit(&s, "k", &c, 1, 0), Outcome::Error);
}

#[test]
fn ended_windows_are_dropped_and_live_ones_are_never_evicted() {
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
    // The victim is written first and used up; then big live entries fill the slot.
    let s = MemStore::default();
    let victim = [check("victim", 2, 5000)];
    for n in 1..=2 {
        assert_eq!(admit(&s, "k", &victim, 1, 20), Outcome::Allowed(vec![n]));
    }
    let big = "x".repeat(1000);
    let mut full = 0;
    for i in 0..40 {
        let name = format!("{big}{i}");
        match admit(&s, "k", &[check(&name, 5, 1000 + i)], 1, 20) {
            Outcome::Allowed(v) => assert_eq!(v, vec![1]),
            // Refused, never made room for: the soonest live entry says when to retry.
            Outcome::Full { free_at } => {
                assert_eq!(free_at, 1000);
                full += 1;
            }
            other => panic!("{other:?}"),
        }
        assert!(s.get("k").0.unwrap().len() <= MAX_SLOT_BYTES);
    }
    assert!(full >= 8, "{full}");
    // The victim's count survived: still used up.
    assert_eq!(admit(&s, "k", &victim, 1, 20), Outcome::Limited(vec![2]));
    // Existing counters keep counting in a full slot (an update never grows it).
    assert_eq!(
        admit(&s, "k", &[check(&format!("{big}0"), 5, 1000)], 1, 20),
        Outcome::Allowed(vec![2])
    );
    // Once windows end, their room is free again.
    assert_eq!(
        admit(&s, "k", &[check("late", 5, 9000)], 1, 1500),
        Outcome::Allowed(vec![1])
    );
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

/// A family already in the slot (here its long window still live) re-adds its ended short
/// window even when new families have filled the slot: they are refused, it keeps counting.
#[test]
fn a_family_in_a_full_slot_re_adds_its_ended_window() {
    let s = MemStore::default();
    let caller = |short_end: u64| {
        [
            check("me\u{1f}short", 5, short_end),
            check("me\u{1f}year", 50, 90_000),
        ]
    };
    assert_eq!(
        admit(&s, "k", &caller(60), 1, 10),
        Outcome::Allowed(vec![1, 1])
    );
    let big = "x".repeat(1000);
    let mut i = 0;
    loop {
        let name = format!("{big}{i}");
        i += 1;
        if let Outcome::Full { .. } = admit(&s, "k", &[check(&name, 5, 80_000)], 1, 70) {
            break;
        }
        assert!(i < 100);
    }
    // Then small ones, until not even 20 bytes are left.
    for j in 0..100 {
        if let Outcome::Full { .. } = admit(&s, "k", &[check(&format!("s{j}"), 5, 80_000)], 1, 70) {
            break;
        }
        assert!(j < 99);
    }
    // The short window ended at 60: the caller's new short counter needs room.
    assert_eq!(
        admit(&s, "k", &caller(120), 1, 70),
        Outcome::Allowed(vec![1, 2])
    );
    let len = s.get("k").0.unwrap().len();
    assert!(
        len > MAX_SLOT_BYTES - 1100 && len <= MAX_SLOT_BYTES_ESTABLISHED,
        "{len}"
    );
    // A new family still cannot use that room.
    assert!(matches!(
        admit(&s, "k", &[check(&format!("{big}new"), 5, 80_000)], 1, 70),
        Outcome::Full { .. }
    ));
}

/// Two VMs that configured at once may have read back different keys; on its first request a
/// VM adopts the key in shared data.
#[test]
fn the_first_request_adopts_the_stored_hash_key() {
    let s = MemStore::default();
    assert_eq!(confirmed_hash_key(&s, [1; 16]), [1; 16]);
    s.set(HASH_KEY_NAME, &[7; 16], None);
    assert_eq!(confirmed_hash_key(&s, [1; 16]), [7; 16]);
    s.set(HASH_KEY_NAME, b"junk", None);
    assert_eq!(confirmed_hash_key(&s, [1; 16]), [1; 16]);
}

#[test]
fn slot_keys_are_written_in_decimal() {
    let mut out = String::new();
    for n in [0, 7, 10, 99, 100, 1023, u64::MAX] {
        out.clear();
        push_decimal(&mut out, n);
        assert_eq!(out, n.to_string());
    }
    let key = [9; 16];
    let n = siphash24(&key, b"gold\x1f=alice") % SLOTS as u64;
    assert_eq!(
        slot_key(&key, b"gold\x1f=alice"),
        format!("{SLOT_PREFIX}{n}")
    );
}

/// The entry-by-entry `admit` this module had: the reference the one-pass form must equal.
fn reference_admit(
    store: &dyn SharedStore,
    slot: &str,
    checks: &[Check],
    cost: u64,
    now: u64,
) -> Outcome {
    for _ in 0..MAX_ATTEMPTS {
        let (bytes, cas) = store.get(slot);
        let bytes = bytes.unwrap_or_default();
        let mut others = entries(&bytes);
        // Is this family stored here already (an entry of it, even ended)? Then it may use
        // the room kept for established families.
        let established = others
            .iter()
            .any(|e| checks.iter().any(|c| c.name.as_slice() == e.name));
        // Ended windows go; a counter of ours whose window differs (a config change moved it)
        // starts again from zero.
        others.retain(|e| e.window_end > now);
        let mut counts = Vec::with_capacity(checks.len());
        let mut over = false;
        for c in checks {
            let n = others
                .iter()
                .find(|e| e.name == c.name.as_slice() && e.window_end == c.window_end)
                .map_or(0, |e| e.count);
            over |= n.saturating_add(cost) > c.requests;
            counts.push(n);
        }
        if over {
            return Outcome::Limited(counts);
        }
        others.retain(|e| !checks.iter().any(|c| c.name.as_slice() == e.name));
        let mut value = Vec::with_capacity(bytes.len() + 64);
        let mut after = Vec::with_capacity(checks.len());
        for (c, n) in checks.iter().zip(&counts) {
            let n = n.saturating_add(cost);
            push_entry(&mut value, &c.name, c.window_end, n);
            after.push(n);
        }
        let others_len: usize = others.iter().map(|e| e.name.len() + 18).sum();
        let room = if established {
            MAX_SLOT_BYTES_ESTABLISHED
        } else {
            MAX_SLOT_BYTES
        };
        if value.len() + others_len > room {
            // Every entry left is live: evicting one would reset another caller's count
            // inside its window. Refuse to make room; the caller decides what a full slot means.
            let free_at = others.iter().map(|e| e.window_end).min().unwrap_or(now);
            return Outcome::Full { free_at };
        }
        for e in &others {
            push_entry(&mut value, e.name, e.window_end, e.count);
        }
        match store.set(slot, &value, cas) {
            SetResult::Ok => return Outcome::Allowed(after),
            SetResult::CasMismatch => continue,
            SetResult::Failed => return Outcome::Error,
        }
    }
    Outcome::Contended
}

#[test]
fn one_pass_admission_equals_the_entry_by_entry_one() {
    let entry = |name: &str, window_end: u64, count: u64| Entry {
        name: name.as_bytes().to_vec(),
        window_end,
        count,
    };
    let filler: Vec<Entry> = (0..1400)
        .map(|i| {
            entry(
                &format!("gold\x1f=c{i:05}\x1fsecond-limit"),
                100 + (i % 3) * 50,
                7,
            )
        })
        .collect();
    let slots: Vec<Vec<Entry>> = vec![
        vec![],
        vec![entry("a", 200, 3)],
        // Ours live, ours on another window, ours ended, a duplicate of ours, others ended.
        vec![
            entry("x", 100, 1),
            entry("a", 200, 3),
            entry("b", 300, 2),
            entry("a", 200, 9),
            entry("b", 150, 4),
            entry("y", 120, 5),
            entry("z", 400, 6),
        ],
        vec![entry("a", 90, 3), entry("y", 400, 5)],
        // Full slots: established or not.
        filler.clone(),
        [vec![entry("a", 50, 1)], filler.clone()].concat(),
    ];
    let check_sets = [
        vec![check("a", 10, 200)],
        vec![check("a", 10, 200), check("b", 5, 300)],
        vec![check("a", 3, 200)],
        vec![check("b", 1_000, 300), check("a", 1_000, 300)],
    ];
    let mut full = 0;
    for entries in &slots {
        let mut bytes = encode(entries);
        for junk in [&b""[..], b"\x00", b"\x00\x05ab"] {
            bytes.extend_from_slice(junk);
            for checks in &check_sets {
                for cost in [1, 4] {
                    let a = MemStore::default();
                    let b = MemStore::default();
                    a.set("s", &bytes, None);
                    b.set("s", &bytes, None);
                    let got = admit(&a, "s", checks, cost, 120);
                    let want = reference_admit(&b, "s", checks, cost, 120);
                    assert_eq!(got, want, "{checks:?} cost {cost}");
                    full += usize::from(matches!(got, Outcome::Full { .. }));
                    assert_eq!(a.get("s").0, b.get("s").0, "{checks:?} cost {cost}");
                }
            }
        }
    }
    // The full slot refuses a new family and takes an established one.
    assert!(full > 0);
}
