//! Every parser of graphql-guard that sees client bytes, driven by one input: the first byte
//! picks the transport (JSON body, `application/graphql` body, GET query string, WebSocket
//! stream), the rest is the client's bytes. The full check runs (transport, APQ lookup, parse,
//! analysis, limits). No input may panic, trap or allocate without bound.
#![no_main]

use graphql_guard::apq::{ApqStore, NoStore};
use graphql_guard::config::Config;
use graphql_guard::policy::check;
use graphql_guard::transport::{from_body, from_query_string, BodyKind, Extracted};
use graphql_guard::ws::{operation, FrameReader};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

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
    match mode % 4 {
        0 => {
            if let Ok(e) = from_body(BodyKind::Json, rest, 5, &[]) {
                run(e, &NoStore);
            }
        }
        1 => {
            if let Ok(e) = from_body(BodyKind::Graphql, rest, 5, &[]) {
                run(e, &NoStore);
            }
        }
        2 => {
            if let Ok(qs) = std::str::from_utf8(rest) {
                if let Ok(e) = from_query_string(Some(qs), &[]) {
                    run(e, &NoStore);
                }
            }
        }
        _ => {
            // The stream cut into chunks at every 7th byte, as the network might.
            let mut reader = FrameReader::new(64 * 1024);
            for chunk in rest.chunks(7) {
                match reader.feed(chunk) {
                    Ok(messages) => {
                        for m in messages {
                            if let Ok(Some(r)) = operation(&m) {
                                run(Extracted::Single(r), &NoStore);
                            }
                        }
                    }
                    Err(_) => break,
                }
            }
        }
    }
});
