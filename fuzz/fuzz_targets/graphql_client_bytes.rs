//! Every parser of graphql-guard that sees client bytes, driven by one input: the first byte
//! picks the transport (JSON body, `application/graphql` body, GET query string, WebSocket
//! stream, a registered hash), the rest is the client's bytes. The full check runs (transport,
//! APQ lookup, parse, analysis, limits) against a registry filled by earlier registrations (a
//! few documents at start, then whatever full query with its hash an input registers). No input
//! may panic, trap or allocate without bound.
#![no_main]

use graphql_guard::apq::{ApqStore, NoStore};
use graphql_guard::config::Config;
use graphql_guard::policy::check;
use graphql_guard::transport::{from_body, from_query_string, BodyKind, Extracted, GqlRequest};
use graphql_guard::ws::{operation, FrameReader};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

/// An in-memory registry, as Envoy's shared data behaves for one worker.
#[derive(Default)]
struct MemStore(RefCell<HashMap<String, Vec<u8>>>);

impl ApqStore for MemStore {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.borrow().get(key).cloned()
    }
    fn set(&self, key: &str, value: &[u8]) {
        self.0.borrow_mut().insert(key.to_string(), value.to_vec());
    }
}

/// Documents registered before any input runs; an input reaches them by hash (mode 4).
const DOCS: [&str; 5] = [
    "{ pets { id name } }",
    "query Q($n: Int) { a(first: $n) { b(last: $n) { c } } }",
    "query A { a { ...F } } query B { b } fragment F on T { x y { z } }",
    "{ a { b { c { d { e { f { g { h { i { j { k { l } } } } } } } } } } } }",
    "subscription S { s @include(if: true) { t: u } }",
];

fn hex(doc: &str) -> String {
    kit::digest::to_hex(&kit::digest::sha256(doc.as_bytes()))
}

thread_local! {
    static STORE: MemStore = {
        let store = MemStore::default();
        let c = config();
        for d in DOCS {
            let full = GqlRequest {
                query: Some(d.to_string()),
                persisted_hash: Some(hex(d)),
                ..GqlRequest::default()
            };
            // Registered whatever its measurements (the deep one is over max_depth).
            let _ = check(c, &c.limits, false, &[full], &store);
        }
        store
    };
}

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| {
        Config::parse(
            br#"{"limits": {"max_depth": 10, "max_aliases": 20, "max_tokens": 5000,
                            "max_cost": 1000},
                 "introspection": {"mode": "allow"}, "max_batch": 5,
                 "websocket": "inspect"}"#,
        )
        .expect("fuzz config")
    })
}

fn run(extracted: Extracted, store: &dyn ApqStore) {
    let c = config();
    match extracted {
        Extracted::NotGraphql => {}
        Extracted::Single(r) => {
            let _ = check(c, &c.limits, false, &[r], store);
        }
        Extracted::Batch(rs) => {
            let _ = check(c, &c.limits, false, &rs, store);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Bit 0x10 of the mode byte: against the filled registry, or against none.
    STORE.with(|filled| {
        let store: &dyn ApqStore = if mode & 0x10 != 0 { filled } else { &NoStore };
        drive(mode, rest, store);
    });
});

fn drive(mode: u8, rest: &[u8], store: &dyn ApqStore) {
    match mode % 5 {
        0 => {
            if let Ok(e) = from_body(BodyKind::Json, rest, 5, &[]) {
                run(e, store);
            }
        }
        1 => {
            if let Ok(e) = from_body(BodyKind::Graphql, rest, 5, &[]) {
                run(e, store);
            }
        }
        2 => {
            if let Ok(qs) = std::str::from_utf8(rest) {
                if let Ok(e) = from_query_string(Some(qs), &[]) {
                    run(e, store);
                }
            }
        }
        3 => {
            // The stream cut into chunks at every 7th byte, as the network might.
            let mut reader = FrameReader::new(64 * 1024);
            for chunk in rest.chunks(7) {
                match reader.feed(chunk) {
                    Ok(messages) => {
                        for m in messages {
                            if let Ok(Some(r)) = operation(&m, &[]) {
                                run(Extracted::Single(r), store);
                            }
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        _ => {
            // A registered document by hash, with the input as its operation name and
            // variables (a JSON object, or none): what a hash-only caller controls.
            let Some((&pick, tail)) = rest.split_first() else {
                return;
            };
            let doc = DOCS[usize::from(pick) % DOCS.len()];
            let (name, vars) = match tail.iter().position(|b| *b == 0) {
                Some(i) => (
                    tail.get(..i).unwrap_or(&[]),
                    tail.get(i + 1..).unwrap_or(&[]),
                ),
                None => (&[][..], tail),
            };
            let req = GqlRequest {
                persisted_hash: Some(hex(doc)),
                operation_name: std::str::from_utf8(name)
                    .ok()
                    .filter(|n| !n.is_empty())
                    .map(str::to_string),
                variables: serde_json::from_slice(vars)
                    .ok()
                    .filter(|v: &serde_json::Value| v.is_object()),
                ..GqlRequest::default()
            };
            // The same hash in a batch, twice (the registered documents' bytes add up).
            let _ = check(
                config(),
                &config().limits,
                false,
                &[req.clone(), req.clone()],
                store,
            );
            run(Extracted::Single(req), store);
        }
    }
}
