//! The registry: only a document whose SHA-256 is the digest asked for ever stands for it.

use super::*;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

const LIMITS: ApqLimits = ApqLimits {
    max_entries: 8,
    max_query_bytes: 64,
};

#[test]
fn a_registered_document_is_found_by_its_digest_only() {
    let store = MemStore::default();
    let q = "{ pets { id } }";
    let d = sha256(q.as_bytes());
    assert_eq!(lookup(&store, &LIMITS, &d), None);
    register(&store, &LIMITS, &d, q);
    assert_eq!(lookup(&store, &LIMITS, &d).as_deref(), Some(q));
    let other = sha256(b"{ other }");
    assert_eq!(lookup(&store, &LIMITS, &other), None);
}

#[test]
fn a_slot_that_does_not_hash_to_the_digest_is_not_trusted() {
    let store = MemStore::default();
    let q = "{ pets { id } }";
    let d = sha256(q.as_bytes());
    register(&store, &LIMITS, &d, q);
    // Someone (another filter in the VM, a bug) writes the digest with another document.
    let key = store.0.borrow().keys().next().cloned().unwrap();
    let mut forged = d.to_vec();
    forged.extend_from_slice(b"{ a }");
    store.set(&key, &forged);
    assert_eq!(lookup(&store, &LIMITS, &d), None);
    // Truncated and empty values.
    store.set(&key, &d[..10]);
    assert_eq!(lookup(&store, &LIMITS, &d), None);
    store.set(&key, b"");
    assert_eq!(lookup(&store, &LIMITS, &d), None);
}

#[test]
fn bounds_hold() {
    let store = MemStore::default();
    let long = format!("{{ {} }}", "a ".repeat(40));
    let d = sha256(long.as_bytes());
    register(&store, &LIMITS, &d, &long);
    assert!(store.0.borrow().is_empty(), "longer than max_query_bytes");
    let off = ApqLimits {
        max_entries: 0,
        max_query_bytes: 64,
    };
    register(&store, &off, &sha256(b"{ a }"), "{ a }");
    assert!(store.0.borrow().is_empty(), "max_entries 0 is off");
    // Never more slots than max_entries, whatever is registered.
    for i in 0..200 {
        let q = format!("{{ f{i} }}");
        register(&store, &LIMITS, &sha256(q.as_bytes()), &q);
    }
    assert!(store.0.borrow().len() <= 8);
    assert!(store.0.borrow().values().all(|v| v.len() <= 32 + 64));
}
