//! transform's JSON Pointer (RFC 6901), JSON Patch (RFC 6902) and merge patch (RFC 7396) on any
//! document, with any patch: the first line is a JSON Patch (or merge patch, or a pointer),
//! the rest the document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use transform::patch::{apply, compile, merge_patch};
use transform::pointer::{self, Pointer};

/// Most operations a fuzzed patch may have: config patches are bounded (`MAX_OPS`), and a
/// chain of `copy` doubling the document is a config's choice, not a client's.
const MAX_OPS: usize = 8;

fuzz_target!(|data: &[u8]| {
    let (first, rest) = apim_fuzz::first_line(data);
    let Ok(doc) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(first) {
        if let Ok(ptr) = Pointer::parse(text) {
            let mut d = doc.clone();
            let got = pointer::get(&d, &ptr).cloned();
            if let Some(v) = got.clone() {
                // Setting a value where it already is changes nothing.
                assert!(pointer::set(&mut d, &ptr, v).is_ok());
                assert_eq!(d, doc);
            }
            let removed = pointer::remove(&mut d, &ptr);
            if ptr.is_root() {
                let _ = removed;
            } else {
                assert_eq!(removed, got);
            }
            let mut d = doc.clone();
            let _ = pointer::add(&mut d, &ptr, Value::Bool(true));
            // (`-` names the slot past an array's end: `set` appends there, `get` finds nothing.)
            if pointer::set(&mut d, &ptr, Value::Null).is_ok() && ptr.last() != Some("-") {
                assert_eq!(pointer::get(&d, &ptr), Some(&Value::Null));
            }
        }
    }
    let Ok(patch) = serde_json::from_slice::<Value>(first) else {
        return;
    };
    let mut merged = doc.clone();
    merge_patch(&mut merged, &patch);
    if let Ok(ops) = compile(&patch) {
        if ops.len() <= MAX_OPS {
            let mut d = doc.clone();
            let before = d.clone();
            if apply(&mut d, &ops).is_err() {
                // RFC 6902 §5: a failed patch leaves the document as it was.
                assert_eq!(d, before, "a failed patch changed the document");
            }
            let _ = serde_json::to_vec(&d);
        }
    }
});
