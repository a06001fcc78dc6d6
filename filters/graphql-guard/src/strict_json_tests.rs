//! Duplicate keys are refused at any depth; everything else parses as serde_json does.

use super::*;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn parses_like_serde_json_without_duplicates() {
    for text in [
        r#"{"query":"{ a }","variables":{"n":1,"x":[1,2.5,-3,null,true,"s",{"k":{}}]}}"#,
        r#"[{"query":"{ a }"},{"query":"{ b }"}]"#,
        r#""s""#,
        "12345678901234567890",
        r#"{"a":{"b":1},"c":{"b":2}}"#,
    ] {
        let want: Value = serde_json::from_str(text).unwrap();
        assert_eq!(from_slice(text.as_bytes()).unwrap(), want, "{text}");
    }
}

#[test]
fn duplicate_keys_are_refused_at_any_depth() {
    for text in [
        r#"{"query":"{ a }","query":"{ b }"}"#,
        r#"{"query":"{ a }","variables":{"first":1000,"first":1}}"#,
        r#"[{"query":"{ a }"},{"extensions":{"persistedQuery":{"sha256Hash":"a","sha256Hash":"b"}}}]"#,
        r#"{"q\u0075ery":"{ a }","query":"{ b }"}"#,
    ] {
        let e = from_slice(text.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("duplicate key"), "{text}: {e}");
    }
    // Trailing data and deep nesting are still errors.
    assert!(from_slice(br#"{"query":"{ a }"} {"query":"{ b }"}"#).is_err());
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    assert!(from_slice(deep.as_bytes()).is_err());
}
