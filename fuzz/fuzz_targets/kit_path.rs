//! kit's path normaliser and ambiguity check, on any path a client can send.
//!
//! Invariants: the normalised path is absolute, has no empty or dot segments, and is a fixed
//! point (normalising twice changes nothing: rules and backends see one meaning); a path that
//! is not ambiguous keeps its segment structure (so every form the normaliser collapses is one
//! that `path_is_ambiguous` reports, and loosening rules refuse).
#![no_main]

use kit::request::{normalize_path, path_is_ambiguous, RequestHead};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let n = normalize_path(path);
    assert!(n.starts_with('/'), "{path:?} -> {n:?}");
    assert!(!n.contains("//"), "{path:?} -> {n:?}");
    assert!(
        !n.split('/').any(|s| s == "." || s == ".."),
        "{path:?} -> {n:?}"
    );
    assert_eq!(normalize_path(&n), n, "not idempotent for {path:?}");

    let ambiguous = path_is_ambiguous(path);
    if !ambiguous && path.starts_with('/') {
        let slashes = |s: &str| s.bytes().filter(|b| *b == b'/').count();
        assert_eq!(
            slashes(path),
            slashes(&n),
            "{path:?} -> {n:?} changed structure but is not ambiguous"
        );
    }

    // The request view: the query is not part of the path.
    let head = RequestHead::new(vec![(":path".into(), data.to_vec())]);
    let p = head.path();
    assert!(!p.contains('?'));
    assert_eq!(head.match_path(), normalize_path(p));
    assert_eq!(head.path_is_ambiguous(), path_is_ambiguous(p));
});
