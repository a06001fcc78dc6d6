//! Hostile requests against graphql-guard in the pinned Envoy (issue 10): GraphQL by another
//! method or in lower case over HTTP/2, WebSocket upgrades, persisted-query hashes alone,
//! ambiguous paths against a `skip` rule, a refusal that must not be charged by quota, duplicate
//! headers, parameters in both URL and body, mixed batches, alias and fragment bombs.
//!
//! Every case asserts the exact status and that the upstream never saw the request: the
//! cluster's `upstream_rq_total` does not move. One Envoy serves every test, and the tests take
//! a lock so that each one's counter deltas are its own (exact, never `≥`).
//!
//! - `main`: api-key-auth (alice gold, bob silver, guest anonymous) → graphql-guard (held
//!   headers, `allow_on_headers_stop_iteration: true`) → quota (counts at the headers) → router.
//!   The HCM accepts WebSocket upgrades and HTTP/2 (extended CONNECT too).
//! - `bare`: the guard alone, `skip` on `/graphql/public`, no path normalisation in the HCM (as
//!   behind a proxy we do not control).
//! - `small`: the guard alone with `max_bytes: 300`, in `main`'s VM (the same APQ registry).
//! - `warn`: the guard alone in warn-only mode, WebSocket upgrades accepted by the HCM.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Mutex, MutexGuard};

use apim_integration::bootstrap::{bootstrap, listener, upstream_cluster};
use apim_integration::chain::{for_each_form, lua, Chain, Filter, Form, PerForm};
use apim_integration::demo_keys::{ALICE, BOB};
use apim_integration::{send_h2, send_raw, Envoy, LogOnFailure, Request, Response};
use serde_json::{json, Value};

const DEEP: &str = include_str!("../fixtures/graphql-guard/deep.graphql");

const API_KEY_AUTH: &str = r#"{"consumers": [
   {"id": "alice", "plan": "gold",
    "keys": [{"sha256": "dc275ab1c4bc17899cdfff16563da508be4c9275589ce936577f52f0512f22bb"}]},
   {"id": "bob", "plan": "silver",
    "keys": [{"sha256": "3ddaba5e842f5e66e7dfbc3a318416be5097ae49ffe348fbf2c6f9e815a2df26"}]},
   {"id": "guest", "plan": "free"}],
 "rules": [{"match": {}, "anonymous": "guest"}]}"#;

const GUARD: &str = r#"{"limits": {"max_depth": 8, "max_aliases": 10, "max_tokens": 5000,
            "max_cost": 10000},
 "plans": {"gold": {"max_depth": 14}},
 "max_batch": 3}"#;

const QUOTA: &str = r#"{"plans": {"gold": {"limits": [{"requests": 1000000000, "per": "second"}]},
           "silver": {"limits": [{"requests": 1000000000, "per": "second"}]},
           "free": {"limits": [{"requests": 1000000000, "per": "second"}]}},
 "key": ["consumer"]}"#;

const GUARD_BARE: &str = r#"{"rules": [{"match": {"path": {"prefix": "/graphql/public"}}, "skip": true},
           {"match": {"path": {"prefix": "/graphql"}}}],
 "limits": {"max_depth": 8}}"#;

/// Copies the published cost for the echo upstream to show.
const LUA_COST: &str = r#"function envoy_on_request(handle)
  handle:body()
  local cost = handle:streamInfo():filterState():get("wasm.apim_cost")
  if cost ~= nil then
    handle:headers():replace("x-apim-cost", tostring(cost))
  end
end
"#;

/// The listeners (see the module docs); `ws` in front of the WebSocket upstream on
/// `ws_port`, the others in front of the echo upstream.
fn config(form: Form, ws_port: u16) -> String {
    let guard = |config: &str| Chain::new().filter(Filter::GraphqlGuard, config);
    let main = listener("main", "upstream")
        .hcm_options(
            "codec_type: AUTO
upgrade_configs: [{upgrade_type: websocket}]
http2_protocol_options: {allow_connect: true}",
        )
        .route_config_name("main")
        .chain(
            &Chain::new()
                .filter(Filter::ApiKeyAuth, API_KEY_AUTH)
                // The headers wait for the guard's verdict on the body (hold_headers).
                .filter(Filter::GraphqlGuard, GUARD)
                .filter(Filter::Quota, QUOTA)
                .other(lua(LUA_COST)),
            form,
        );
    // No path normalisation in this HCM (as behind a proxy we do not control).
    let bare = listener("bare", "upstream")
        .route_config_name("bare")
        .chain(&guard(GUARD_BARE).vm("bare"), form);
    let ws = listener("ws", "ws_upstream")
        .hcm_options("upgrade_configs: [{upgrade_type: websocket}]")
        .route_config_name("ws")
        .chain(
            &guard(r#"{"limits": {"max_depth": 8}, "websocket": "inspect"}"#).vm("ws"),
            form,
        );
    // The VM of `main` (the same APQ registry), with a small size limit.
    let small = listener("small", "upstream")
        .route_config_name("small")
        .chain(&guard(r#"{"limits": {"max_bytes": 300}}"#), form);
    let warn = listener("warn", "upstream")
        .hcm_options("upgrade_configs: [{upgrade_type: websocket}]")
        .route_config_name("warn")
        .chain(
            &guard(r#"{"limits": {"max_depth": 8}, "warn_only": true}"#).vm("warn"),
            form,
        );
    bootstrap(
        &[main, bare, ws, small, warn],
        &[
            upstream_cluster("ws_upstream").port(ws_port),
            upstream_cluster("upstream"),
        ],
    )
}

/// The Envoy the tests share, one per form.
fn shared(form: Form) -> &'static Envoy {
    static SHARED: PerForm = PerForm::new();
    SHARED.get(form, |form| {
        let ws_port = ws_upstream::start();
        Envoy::builder()
            .concurrency(1)
            .start(&config(form, ws_port))
            .unwrap_or_else(|e| panic!("starting the shared Envoy: {e}"))
    })
}

/// One test at a time: the counter deltas a test asserts are its own.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Ctx {
    port: u16,
    _log: LogOnFailure,
    _lock: MutexGuard<'static, ()>,
}

fn ctx(form: Form, listener: &str) -> Ctx {
    let lock = serial();
    let envoy = shared(form);
    Ctx {
        port: envoy.listener_port(listener).unwrap(),
        _log: LogOnFailure(envoy),
        _lock: lock,
    }
}

fn counter(form: Form, name: &str) -> u64 {
    shared(form).count(name)
}

/// Requests the router sent to the echo upstream.
fn upstream_requests(form: Form) -> u64 {
    counter(form, "cluster.upstream.upstream_rq_total")
}

fn guard(form: Form, name: &str) -> u64 {
    counter(form, &format!("wasmcustom.apim.graphql_guard.{name}"))
}

fn send(port: u16, r: &Request) -> Response {
    r.send(port)
        .unwrap_or_else(|e| panic!("request failed: {e}"))
}

fn post_json(body: &Value) -> Request {
    Request::new("POST", "/graphql")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn sha256_hex(s: &str) -> String {
    kit::digest::to_hex(&kit::digest::sha256(s.as_bytes()))
}

/// Asserts a GraphQL-over-HTTP refusal and returns its first error.
fn refused(r: &Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    assert_eq!(v["errors"][0]["extensions"]["code"], code, "{v}");
    v["errors"][0].clone()
}

/// An HTTP/2 (prior knowledge, cleartext) request through curl, which sends the method exactly
/// as given (`post`, `get`).
fn h2(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Response {
    send_h2(port, method, path, headers, body).unwrap_or_else(|e| panic!("{e}"))
}

// ---------------------------------------------------------------------------------------------
// Item 2: GraphQL by another method.

#[test]
fn http2_lower_case_methods_are_checked() {
    for_each_form(|form| {
        let c = ctx(form, "main");
        let before = upstream_requests(form);
        let body = json!({ "query": DEEP }).to_string();
        let r = h2(
            c.port,
            "post",
            "/graphql",
            &[("content-type", "application/json")],
            Some(&body),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(
            r.json()["errors"][0]["extensions"]["code"],
            "MAX_DEPTH_EXCEEDED"
        );
        let r = h2(
            c.port,
            "get",
            &format!("/graphql?query={}", enc(DEEP)),
            &[],
            None,
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(
            r.json()["errors"][0]["extensions"]["code"],
            "MAX_DEPTH_EXCEEDED"
        );
        assert_eq!(
            upstream_requests(form),
            before,
            "the upstream saw a refused request"
        );
        // A fine operation in lower case still passes.
        let r = h2(
            c.port,
            "post",
            "/graphql",
            &[("content-type", "application/json")],
            Some(r#"{"query":"{ pets { id } }"}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(upstream_requests(form), before + 1);
    });
}

#[test]
fn other_methods_are_refused_with_405_and_allow() {
    for_each_form(|form| {
        let c = ctx(form, "main");
        let before = upstream_requests(form);
        let refused_before = guard(form, "rejected.method_not_allowed");
        let body = json!({ "query": DEEP }).to_string();
        for m in ["PUT", "PATCH", "DELETE"] {
            let r = send(
                c.port,
                &Request::new(m, "/graphql")
                    .header("content-type", "application/json")
                    .body(body.clone()),
            );
            let e = refused(&r, 405, "METHOD_NOT_ALLOWED");
            assert_eq!(r.header("allow"), Some("GET, POST"), "{m}");
            assert!(e["message"].as_str().unwrap().contains(m), "{e}");
        }
        // HEAD with a query string (many servers run GET's handler for it), over HTTP/1.
        let r = send(
            c.port,
            &Request::new("HEAD", &format!("/graphql?query={}", enc(DEEP))),
        );
        assert_eq!(r.status, 405);
        // And over HTTP/2 in lower case (without a body: Envoy answers a refusal at the headers
        // and resets the stream still sending one, which curl 7.88 reports as a framing error
        // before it writes the response).
        for m in ["put", "patch"] {
            let r = h2(
                c.port,
                m,
                &format!("/graphql?query={}", enc(DEEP)),
                &[],
                None,
            );
            assert_eq!(r.status, 405, "{m}: {}", r.text());
            assert_eq!(r.header("allow"), Some("GET, POST"));
        }
        assert_eq!(
            guard(form, "rejected.method_not_allowed"),
            refused_before + 6
        );
        assert_eq!(
            upstream_requests(form),
            before,
            "the upstream saw a refused method"
        );
        // A CORS preflight carries nothing and passes.
        let r = send(
            c.port,
            &Request::new("OPTIONS", "/graphql")
                .header("origin", "https://app.example")
                .header("access-control-request-method", "POST"),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(upstream_requests(form), before + 1);
    });
}

// ---------------------------------------------------------------------------------------------
// Item 10: a request the guard refuses is never charged by quota (which decides at the headers).

fn quota(form: Form, name: &str) -> u64 {
    counter(form, &format!("wasmcustom.apim.quota.{name}"))
}

/// The guard holds the headers until it has judged the body: quota, after it in the chain,
/// never sees (and never counts) an operation the guard refuses.
#[test]
fn a_refused_operation_is_not_charged_by_quota() {
    for_each_form(|form| {
        let c = ctx(form, "main");
        let (upstream, allowed, limited) = (
            upstream_requests(form),
            quota(form, "allowed"),
            quota(form, "limited"),
        );
        let deep = json!({ "query": DEEP });
        let r = send(c.port, &post_json(&deep).header("x-api-key", BOB));
        refused(&r, 400, "MAX_DEPTH_EXCEEDED");
        // A body that ends in trailers is judged at the trailers, still before quota.
        let body = deep.to_string();
        let raw = format!(
            "POST /graphql HTTP/1.1\r\nhost: localhost\r\nx-api-key: {BOB}\r\n\
             content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
             {:x}\r\n{body}\r\n0\r\nx-trailer: 1\r\n\r\n",
            body.len()
        );
        refused(
            &send_raw(c.port, raw.as_bytes()).unwrap(),
            400,
            "MAX_DEPTH_EXCEEDED",
        );
        assert_eq!(
            quota(form, "allowed"),
            allowed,
            "quota counted a refused operation"
        );
        assert_eq!(quota(form, "limited"), limited);
        assert_eq!(upstream_requests(form), upstream);
        // An admitted one is counted once, after its body was judged.
        let r = send(
            c.port,
            &post_json(&json!({"query": "{ pets { id } }"})).header("x-api-key", BOB),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(quota(form, "allowed"), allowed + 1);
        assert_eq!(upstream_requests(form), upstream + 1);
    });
}

// ---------------------------------------------------------------------------------------------
// Item 4: a persisted-query hash alone.

fn apq_ext(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

fn cost_seen(r: &Response) -> Option<String> {
    let echo = r.json();
    echo["headers"].as_array()?.iter().find_map(|h| {
        (h[0] == "x-apim-cost").then(|| h[1].as_str().unwrap_or_default().to_string())
    })
}

/// Apollo APQ: the full query registers its hash; a hash alone is then checked as that query
/// under the caller's own plan and charged its cost; an unknown hash is PERSISTED_QUERY_NOT_FOUND.
#[test]
fn a_hash_alone_is_checked_under_the_callers_plan() {
    for_each_form(|form| {
        let c = ctx(form, "main");
        // A document of this test only (the registry is shared by the VM).
        let q = DEEP.replacen("query Deep", "query ApqItem4", 1);
        let hash = sha256_hex(&q);
        let upstream = upstream_requests(form);
        let not_found = guard(form, "rejected.persisted_query_not_found");
        // Unknown hash, POST and GET: the APQ error, status 200 as Apollo sends it.
        let alone = json!({ "extensions": apq_ext(&hash) });
        let r = send(c.port, &post_json(&alone).header("x-api-key", ALICE));
        let e = refused(&r, 200, "PERSISTED_QUERY_NOT_FOUND");
        assert_eq!(e["message"], "PersistedQueryNotFound");
        let get = format!("/graphql?extensions={}", enc(&apq_ext(&hash).to_string()));
        let r = send(c.port, &Request::get(&get).header("x-api-key", ALICE));
        refused(&r, 200, "PERSISTED_QUERY_NOT_FOUND");
        assert_eq!(
            guard(form, "rejected.persisted_query_not_found"),
            not_found + 2
        );
        assert_eq!(upstream_requests(form), upstream);
        // A query that does not hash to the hash it claims registers nothing.
        let lying = json!({ "query": "{ pets { id } }", "extensions": apq_ext(&hash) });
        let r = send(c.port, &post_json(&lying).header("x-api-key", ALICE));
        refused(&r, 400, "PERSISTED_QUERY_HASH_MISMATCH");
        let r = send(c.port, &post_json(&alone).header("x-api-key", ALICE));
        refused(&r, 200, "PERSISTED_QUERY_NOT_FOUND");
        // alice (gold, depth 14) registers the 13-deep query with its full text.
        let full = json!({ "query": q, "extensions": apq_ext(&hash) });
        let r = send(c.port, &post_json(&full).header("x-api-key", ALICE));
        assert_eq!(r.status, 200, "{}", r.text());
        let full_cost = cost_seen(&r).expect("cost published");
        // The default model: twelve object fields (level0..level11) of weight 1, the leaf 0.
        assert_eq!(full_cost, "12");
        assert_eq!(upstream_requests(form), upstream + 1);
        // bob (silver: the default depth 8) by hash alone: refused as the full query would be.
        let r = send(c.port, &post_json(&alone).header("x-api-key", BOB));
        let e = refused(&r, 400, "MAX_DEPTH_EXCEEDED");
        assert_eq!(e["message"], "Depth 13 exceeds the limit of 8 (max_depth)");
        let r = send(c.port, &Request::get(&get).header("x-api-key", BOB));
        refused(&r, 400, "MAX_DEPTH_EXCEEDED");
        // Anonymous (guest, free) too.
        let r = send(c.port, &post_json(&alone));
        refused(&r, 400, "MAX_DEPTH_EXCEEDED");
        assert_eq!(
            upstream_requests(form),
            upstream + 1,
            "the upstream saw a refused hash"
        );
        // alice by hash alone: admitted and charged what the full query costs.
        let r = send(c.port, &post_json(&alone).header("x-api-key", ALICE));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(cost_seen(&r), Some(full_cost));
        assert_eq!(upstream_requests(form), upstream + 2);
    });
}

// ---------------------------------------------------------------------------------------------
// Item 1: an ambiguous path never reaches a rule that turns the guard off.

#[test]
fn an_ambiguous_path_does_not_reach_a_skip_rule() {
    for_each_form(|form| {
        let c = ctx(form, "bare");
        let upstream = upstream_requests(form);
        let ambiguous = guard(form, "path_ambiguous");
        let deep = enc(DEEP);
        for path in [
            format!("/graphql/public/..%2F..%2Fgraphql?query={deep}"),
            format!("/graphql/public/..%5C..%5Cgraphql?query={deep}"),
            format!("/graphql/public/%2E%2E/%2E%2E/graphql?query={deep}"),
        ] {
            let r = send(c.port, &Request::get(&path));
            refused(&r, 400, "MAX_DEPTH_EXCEEDED");
        }
        assert_eq!(
            upstream_requests(form),
            upstream,
            "the upstream saw an unguarded request"
        );
        // The first two reached the skip rule and were counted; the third normalises to /graphql.
        assert_eq!(guard(form, "path_ambiguous"), ambiguous + 2);
        // The skip rule still applies to a plain path under it.
        let r = send(
            c.port,
            &Request::get(&format!("/graphql/public/x?query={deep}")),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(upstream_requests(form), upstream + 1);
    });
}

// ---------------------------------------------------------------------------------------------
// Item 3: GraphQL over WebSocket.

#[test]
fn websocket_upgrades_are_refused_on_guarded_routes() {
    for_each_form(|form| {
        let c = ctx(form, "main");
        let upstream = upstream_requests(form);
        let refused_before = guard(form, "rejected.upgrade_not_allowed");
        for proto in ["graphql-transport-ws", "graphql-ws"] {
            let raw = format!(
                "GET /graphql HTTP/1.1\r\nhost: localhost\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
                 sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 sec-websocket-protocol: {proto}\r\n\r\n"
            );
            let r = send_raw(c.port, raw.as_bytes()).unwrap();
            let e = refused(&r, 403, "UPGRADE_NOT_ALLOWED");
            assert!(e["message"].as_str().unwrap().contains("WebSocket"), "{e}");
        }
        assert_eq!(
            guard(form, "rejected.upgrade_not_allowed"),
            refused_before + 2
        );
        assert_eq!(
            upstream_requests(form),
            upstream,
            "the upstream saw an upgrade"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Beyond the list.

#[test]
fn a_graphql_body_on_a_get_is_checked() {
    for_each_form(|form| {
        let c = ctx(form, "main");
        let upstream = upstream_requests(form);
        let body = json!({ "query": DEEP }).to_string();
        let r = send(
            c.port,
            &Request::new("GET", "/graphql")
                .header("content-type", "application/json")
                .body(body.clone()),
        );
        refused(&r, 400, "MAX_DEPTH_EXCEEDED");
        // A mutation in a GET body is refused as over GET.
        let r = send(
            c.port,
            &Request::new("GET", "/graphql")
                .header("content-type", "application/json")
                .body(r#"{"query":"mutation { addPet { id } }"}"#),
        );
        refused(&r, 405, "MUTATION_NOT_ALLOWED_OVER_GET");
        assert_eq!(upstream_requests(form), upstream);
    });
}

#[test]
fn parameters_in_both_url_and_body_are_refused() {
    for_each_form(|form| {
        let c = ctx(form, "main");
        let upstream = upstream_requests(form);
        let fine = enc("{ pets { id } }");
        let body = json!({ "query": DEEP }).to_string();
        for m in ["POST", "GET"] {
            let r = send(
                c.port,
                &Request::new(m, &format!("/graphql?query={fine}"))
                    .header("content-type", "application/json")
                    .body(body.clone()),
            );
            let e = refused(&r, 400, "BAD_REQUEST");
            assert!(
                e["message"].as_str().unwrap().contains("not the URL"),
                "{m}: {e}"
            );
        }
        assert_eq!(upstream_requests(form), upstream);
    });
}

#[test]
fn duplicate_content_types_are_refused() {
    for_each_form(|form| {
        let c = ctx(form, "main");
        let upstream = upstream_requests(form);
        let body = json!({ "query": DEEP }).to_string();
        for (first, second) in [
            ("text/plain", "application/json"),
            ("application/json", "application/graphql"),
        ] {
            let r = send(
                c.port,
                &Request::new("POST", "/graphql")
                    .header("content-type", first)
                    .header("content-type", second)
                    .body(body.clone()),
            );
            refused(&r, 415, "UNSUPPORTED_MEDIA_TYPE");
        }
        assert_eq!(upstream_requests(form), upstream);
    });
}

#[test]
fn batches_mixing_hashes_and_full_queries_are_checked_per_element() {
    for_each_form(|form| {
        let c = ctx(form, "main");
        let q = DEEP.replacen("query Deep", "query ApqBatch", 1);
        let hash = sha256_hex(&q);
        // alice (gold) registers the deep query.
        let r = send(
            c.port,
            &post_json(&json!({"query": q, "extensions": apq_ext(&hash)}))
                .header("x-api-key", ALICE),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let upstream = upstream_requests(form);
        // bob hides it behind a fine full query in a batch.
        let batch = json!([{"query": "{ pets { id } }"}, {"extensions": apq_ext(&hash)}]);
        let r = send(c.port, &post_json(&batch).header("x-api-key", BOB));
        let e = refused(&r, 400, "MAX_DEPTH_EXCEEDED");
        assert_eq!(e["extensions"]["batchIndex"], 1);
        // An unknown hash in a batch: the whole batch answers PERSISTED_QUERY_NOT_FOUND.
        let unknown = sha256_hex("{ never sent }");
        let batch = json!([{"query": "{ pets { id } }"}, {"extensions": apq_ext(&unknown)}]);
        let r = send(c.port, &post_json(&batch).header("x-api-key", ALICE));
        refused(&r, 200, "PERSISTED_QUERY_NOT_FOUND");
        // A hash and a different query in one element: mismatch.
        let batch = json!([{"query": "{ pets { id } }", "extensions": apq_ext(&hash)}]);
        let r = send(c.port, &post_json(&batch).header("x-api-key", ALICE));
        refused(&r, 400, "PERSISTED_QUERY_HASH_MISMATCH");
        assert_eq!(upstream_requests(form), upstream);
    });
}

#[test]
fn alias_and_fragment_bombs_are_refused() {
    for_each_form(|form| {
        let c = ctx(form, "main");
        let upstream = upstream_requests(form);
        let aliases: String = (0..11).map(|i| format!(" a{i}: pets {{ id }}")).collect();
        let r = send(
            c.port,
            &post_json(&json!({ "query": format!("{{{aliases} }}") })),
        );
        refused(&r, 400, "MAX_ALIASES_EXCEEDED");
        // Each fragment spreads the next twice: 2^30 fields if expanded, 30 deep.
        let mut bomb = String::from("{ ...F0 }");
        for i in 0..30 {
            bomb.push_str(&format!(
                " fragment F{i} on Query {{ a {{ ...F{n} }} b {{ ...F{n} }} }}",
                n = i + 1
            ));
        }
        bomb.push_str(" fragment F30 on Query { z }");
        let r = send(c.port, &post_json(&json!({ "query": bomb })));
        refused(&r, 400, "MAX_DEPTH_EXCEEDED");
        // Mutually recursive fragments through inline fragments.
        let cycle = "{ ...A } fragment A on Query { ... on Query { ...B } } fragment B on Query { ... { ...A } }";
        let r = send(c.port, &post_json(&json!({ "query": cycle })));
        refused(&r, 400, "GRAPHQL_VALIDATION_FAILED");
        assert_eq!(upstream_requests(form), upstream);
        // The VM is alive.
        let r = send(c.port, &post_json(&json!({"query": "{ pets { id } }"})));
        assert_eq!(r.status, 200, "{}", r.text());
    });
}

// ---------------------------------------------------------------------------------------------
// Item 3, `websocket: inspect`: the operations inside a GraphQL WebSocket are checked.

/// A WebSocket upstream of this test: answers every upgrade with 101, then records each text
/// message it receives (client frames, unmasked) and when each connection closed.
mod ws_upstream {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct Seen {
        /// The upgrade requests, as received.
        pub heads: Vec<String>,
        pub messages: Vec<String>,
        pub connections: usize,
        pub closed: usize,
    }

    pub static SEEN: Mutex<Seen> = Mutex::new(Seen {
        heads: Vec::new(),
        messages: Vec::new(),
        connections: 0,
        closed: 0,
    });

    pub fn start() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve(stream));
            }
        });
        port
    }

    fn serve(mut s: TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        {
            let mut seen = SEEN.lock().unwrap();
            seen.connections += 1;
            seen.heads
                .push(String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase());
        }
        buf.drain(..end);
        let _ = s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
              sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
              sec-websocket-protocol: graphql-transport-ws\r\n\r\n",
        );
        loop {
            while let Some((text, used)) = frame(&buf) {
                buf.drain(..used);
                if let Some(t) = text {
                    SEEN.lock().unwrap().messages.push(t);
                }
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        SEEN.lock().unwrap().closed += 1;
    }

    /// One masked client frame at the start of `b`: its text (for text frames) and its length.
    fn frame(b: &[u8]) -> Option<(Option<String>, usize)> {
        let (b0, b1) = (*b.first()?, *b.get(1)?);
        let (len, mut at) = match b1 & 0x7F {
            126 => (u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize, 4),
            127 => return None,
            n => (n as usize, 2),
        };
        let mask = b.get(at..at + 4)?.to_vec();
        at += 4;
        let payload: Vec<u8> = b
            .get(at..at + len)?
            .iter()
            .zip(mask.iter().cycle())
            .map(|(p, m)| p ^ m)
            .collect();
        let text = (b0 & 0x0F == 1).then(|| String::from_utf8_lossy(&payload).into_owned());
        Some((text, at + len))
    }
}

/// A masked text frame, as a client sends it.
fn ws_text(text: &str) -> Vec<u8> {
    let mask = [0xA1u8, 0xB2, 0xC3, 0xD4];
    let p = text.as_bytes();
    let mut out = vec![0x81];
    if p.len() < 126 {
        out.push(0x80 | p.len() as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(p.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

/// Waits (bounded) until `cond` holds on what the WebSocket upstream saw.
fn until_seen(what: &str, cond: impl Fn(&ws_upstream::Seen) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond(&ws_upstream::SEEN.lock().unwrap()) {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn inspected_websockets_close_on_a_refused_operation() {
    for_each_form(|form| {
        use std::io::{Read, Write};
        let c = ctx(form, "ws");
        let refused_before = guard(form, "rejected.max_depth_exceeded");
        let (connections, closed) = {
            let seen = ws_upstream::SEEN.lock().unwrap();
            (seen.connections, seen.closed)
        };
        let mut s = std::net::TcpStream::connect(("127.0.0.1", c.port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        s.write_all(
            b"GET /graphql HTTP/1.1\r\nhost: localhost\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
              sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              sec-websocket-protocol: graphql-transport-ws\r\n\
              sec-websocket-extensions: permessage-deflate\r\n\r\n",
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(
                s.read(&mut byte).unwrap(),
                1,
                "{}",
                String::from_utf8_lossy(&head)
            );
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let fine =
            r#"{"id":"1","type":"subscribe","payload":{"query":"subscription { pets { id } }"}}"#;
        s.write_all(&ws_text(r#"{"type":"connection_init","payload":{}}"#))
            .unwrap();
        s.write_all(&ws_text(fine)).unwrap();
        until_seen("the fine subscription", |seen| {
            seen.messages.iter().any(|m| m == fine)
        });
        // A 13-deep subscription: the guard resets the stream; the upstream never gets it.
        let deep = json!({"id": "2", "type": "subscribe", "payload": {"query": DEEP}}).to_string();
        s.write_all(&ws_text(&deep)).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        until_seen("the upstream connection closed", |seen| {
            seen.closed > closed
        });
        let seen = ws_upstream::SEEN.lock().unwrap();
        assert_eq!(seen.connections, connections + 1);
        // No extension was negotiated: the guard removed the offer, so frames stay readable.
        let upgrade = seen.heads.last().unwrap();
        assert!(upgrade.contains("upgrade: websocket"), "{upgrade}");
        assert!(!upgrade.contains("sec-websocket-extensions"), "{upgrade}");
        assert!(
            !seen.messages.iter().any(|m| m.contains("\"id\":\"2\"")),
            "the upstream saw the refused subscription"
        );
        drop(seen);
        assert_eq!(
            guard(form, "rejected.max_depth_exceeded"),
            refused_before + 1
        );
    });
}

/// WebSocket over HTTP/2 (RFC 8441 extended CONNECT, `:protocol: websocket`) is refused the same
/// way: Envoy hands it to the filters as an upgrade.
#[test]
fn http2_extended_connect_websockets_are_refused() {
    for_each_form(|form| {
        let c = ctx(form, "main");
        let upstream = upstream_requests(form);
        let refused_before = guard(form, "rejected.upgrade_not_allowed");
        let port = c.port;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (status, body) = rt.block_on(async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let (client, conn) = h2::client::handshake(tcp).await.unwrap();
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let mut client = client.ready().await.unwrap();
            // The server's SETTINGS (ENABLE_CONNECT_PROTOCOL) arrive after the handshake.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !client.is_extended_connect_protocol_enabled() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "Envoy never enabled extended CONNECT"
                );
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                client = client.ready().await.unwrap();
            }
            let req = hyper::http::Request::builder()
                .method("CONNECT")
                .uri(format!("http://127.0.0.1:{port}/graphql"))
                .extension(h2::ext::Protocol::from_static("websocket"))
                .header("sec-websocket-version", "13")
                .header("sec-websocket-protocol", "graphql-transport-ws")
                .body(())
                .unwrap();
            let (response, _send) = client.send_request(req, false).unwrap();
            let response = response.await.unwrap();
            let status = response.status().as_u16();
            let mut body = response.into_body();
            let mut bytes = Vec::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.unwrap();
                let _ = body.flow_control().release_capacity(chunk.len());
                bytes.extend_from_slice(&chunk);
            }
            (status, String::from_utf8_lossy(&bytes).into_owned())
        });
        assert_eq!(status, 403, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["errors"][0]["extensions"]["code"], "UPGRADE_NOT_ALLOWED");
        assert_eq!(
            guard(form, "rejected.upgrade_not_allowed"),
            refused_before + 1
        );
        assert_eq!(
            upstream_requests(form),
            upstream,
            "the upstream saw the CONNECT"
        );
    });
}

/// JSON parsers disagree on which copy of a repeated key wins: a repeated key is refused, so the
/// operation (and the variables) checked are the ones run.
#[test]
fn repeated_json_keys_are_refused() {
    for_each_form(|form| {
        let c = ctx(form, "main");
        let upstream = upstream_requests(form);
        let deep = serde_json::to_string(DEEP).unwrap();
        for body in [
            format!(r#"{{"query":{deep},"query":"{{ pets {{ id }} }}"}}"#),
            r#"{"query":"query Q($n: Int) { pets(first: $n) { id } }","variables":{"n":100000,"n":1}}"#
                .to_string(),
            format!(r#"[{{"query":"{{ pets {{ id }} }}"}},{{"query":"{{ a }}","query":{deep}}}]"#),
        ] {
            let r = send(
                c.port,
                &Request::new("POST", "/graphql")
                    .header("content-type", "application/json")
                    .body(body.clone()),
            );
            let e = refused(&r, 400, "BAD_REQUEST");
            assert!(
                e["message"].as_str().unwrap().contains("duplicate key"),
                "{body}: {e}"
            );
        }
        assert_eq!(upstream_requests(form), upstream);
    });
}

/// Rack (and older Go and Python servers) split a query string on `;` too: `?x=1;query=…` holds
/// a GraphQL operation for them and none for a `&`-only reader. Refused.
#[test]
fn semicolon_hidden_parameters_are_refused() {
    for_each_form(|form| {
        let c = ctx(form, "main");
        let upstream = upstream_requests(form);
        let r = send(
            c.port,
            &Request::get(&format!("/graphql?x=1;query={}", enc(DEEP))),
        );
        let e = refused(&r, 400, "BAD_REQUEST");
        assert!(e["message"].as_str().unwrap().contains("';'"), "{e}");
        let r = send(
            c.port,
            &post_json(&json!({"query": "{ pets { id } }"})).header("x-api-key", ALICE),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let r = send(
            c.port,
            &Request::new("POST", &format!("/graphql?x=1;query={}", enc(DEEP)))
                .header("content-type", "application/json")
                .body(json!({"query": "{ pets { id } }"}).to_string()),
        );
        refused(&r, 400, "BAD_REQUEST");
        assert_eq!(upstream_requests(form), upstream + 1);
    });
}

/// `Expect: 100-continue` with held headers: Envoy answers the interim 100 itself, the body then
/// comes and is judged. Smuggling shapes (CL with TE, an unknown coding, two lengths) are refused
/// by Envoy's codec before any filter. None reaches the upstream.
#[test]
fn expect_continue_and_smuggling_shapes_never_reach_the_upstream() {
    for_each_form(|form| {
        use std::io::{Read, Write};
        let c = ctx(form, "main");
        let upstream = upstream_requests(form);
        let body = json!({ "query": DEEP }).to_string();
        let mut s = std::net::TcpStream::connect(("127.0.0.1", c.port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        s.write_all(
            format!(
                "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
        let mut interim = Vec::new();
        let mut byte = [0u8; 1];
        while !interim.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut byte).unwrap(), 1);
            interim.push(byte[0]);
        }
        assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        s.write_all(body.as_bytes()).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        let rest = String::from_utf8_lossy(&rest).into_owned();
        assert!(rest.starts_with("HTTP/1.1 400 "), "{rest}");
        assert!(rest.contains("MAX_DEPTH_EXCEEDED"), "{rest}");
        let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
        let head = "POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnection: close\r\n";
        for (raw, status) in [
            (
                format!("{head}content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n{chunked}"),
                400,
            ),
            (
                format!("{head}transfer-encoding: gzip, chunked\r\n\r\n{chunked}"),
                501,
            ),
            (
                format!(
                    "{head}content-length: {}\r\ncontent-length: 2\r\n\r\n{body}",
                    body.len()
                ),
                400,
            ),
        ] {
            let r = send_raw(c.port, raw.as_bytes()).unwrap();
            assert_eq!(r.status, status, "{raw:.120}: {}", r.text());
        }
        assert_eq!(upstream_requests(form), upstream);
    });
}

// ---------------------------------------------------------------------------------------------
// Review of the hardening (second round).

/// Review 1: an ambiguous path that no rule guards is still the GraphQL route to a server that
/// resolves it (`/api/..;/graphql` to Tomcat, `/api/..%2Fgraphql` to one that decodes `%2F`):
/// the GraphQL it carries is checked; a request without GraphQL on such a path passes.
#[test]
fn an_ambiguous_path_no_rule_guards_is_checked_for_graphql() {
    for_each_form(|form| {
        let c = ctx(form, "bare");
        let upstream = upstream_requests(form);
        let ambiguous = guard(form, "path_ambiguous");
        let deep = enc(DEEP);
        for path in [
            format!("/api/..;/graphql?query={deep}"),
            format!("/api/..%2Fgraphql?query={deep}"),
        ] {
            let r = send(c.port, &Request::get(&path));
            refused(&r, 400, "MAX_DEPTH_EXCEEDED");
        }
        let r = send(
            c.port,
            &Request::new("POST", "/api/..%2Fgraphql")
                .header("content-type", "application/json")
                .body(json!({ "query": DEEP }).to_string()),
        );
        refused(&r, 400, "MAX_DEPTH_EXCEEDED");
        assert_eq!(
            upstream_requests(form),
            upstream,
            "the upstream saw an unguarded request"
        );
        // Their widest reading (`%2F` decoded, `;` dropped) is /graphql: the guarded rule itself
        // meets them (kit reads an ambiguous path both ways for rules that restrict), so no rule was
        // passed over and nothing is counted as ambiguous.
        assert_eq!(guard(form, "path_ambiguous"), ambiguous);
        // Not GraphQL, and no rule's path: passes, counted as an ambiguous path no rule guards.
        let r = send(c.port, &Request::get("/api/..%2Fusers?id=5"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(upstream_requests(form), upstream + 1);
        assert_eq!(guard(form, "path_ambiguous"), ambiguous + 1);
    });
}

/// Review 2: parameter names in another case (ASP.NET reads `?Query=` as `query`), persisted
/// document ids the guard cannot check, and GraphQL parameters without a query are refused.
#[test]
fn miscased_parameters_and_document_ids_are_refused() {
    for_each_form(|form| {
        let c = ctx(form, "main");
        let upstream = upstream_requests(form);
        let bad = guard(form, "rejected.bad_request");
        let deep = enc(DEEP);
        let gets = [
            format!("/graphql?Query={deep}"),
            format!("/graphql?QUERY={deep}"),
            "/graphql?documentId=abc".to_string(),
            "/graphql?doc_id=abc&variables=%7B%7D".to_string(),
            "/graphql?variables=%7B%7D&operationName=A".to_string(),
        ];
        for path in &gets {
            let r = send(c.port, &Request::get(path));
            refused(&r, 400, "BAD_REQUEST");
        }
        let bodies = [
            json!({ "Query": DEEP }),
            json!({ "documentId": "abc" }),
            json!({ "query": "{ pets { id } }", "namedQuery": "Deep" }),
            json!([{ "query": "{ pets { id } }" }, { "id": "abc" }]),
        ];
        for body in &bodies {
            let r = send(c.port, &post_json(body));
            refused(&r, 400, "BAD_REQUEST");
        }
        assert_eq!(guard(form, "rejected.bad_request"), bad + 9);
        assert_eq!(
            upstream_requests(form),
            upstream,
            "the upstream saw a refused request"
        );
    });
}

/// Review 4: a hash alone is held to the caller's `max_bytes` for the document it stands for.
#[test]
fn a_hash_alone_keeps_the_callers_size_limit() {
    for_each_form(|form| {
        let c = ctx(form, "main");
        let q = DEEP.replacen("query Deep", "query ApqSize", 1);
        assert!(q.len() > 300, "the document must be over small's max_bytes");
        let hash = sha256_hex(&q);
        // Registered in the shared VM through `main`.
        let r = send(
            c.port,
            &post_json(&json!({"query": q, "extensions": apq_ext(&hash)}))
                .header("x-api-key", ALICE),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let port = shared(form).listener_port("small").unwrap();
        let upstream = upstream_requests(form);
        let over = guard(form, "rejected.max_bytes_exceeded");
        let alone = json!({ "extensions": apq_ext(&hash) });
        let r = send(port, &post_json(&alone));
        let e = refused(&r, 413, "MAX_BYTES_EXCEEDED");
        assert_eq!(e["extensions"]["limit"], "max_bytes", "{e}");
        let get = format!("/graphql?extensions={}", enc(&apq_ext(&hash).to_string()));
        let r = send(port, &Request::get(&get));
        refused(&r, 413, "MAX_BYTES_EXCEEDED");
        assert_eq!(guard(form, "rejected.max_bytes_exceeded"), over + 2);
        assert_eq!(
            upstream_requests(form),
            upstream,
            "the upstream saw a refused hash"
        );
    });
}

/// Review 8: warn-only does not let an upgrade through uninspected.
#[test]
fn warn_only_still_refuses_upgrades() {
    for_each_form(|form| {
        let c = ctx(form, "warn");
        let upstream = upstream_requests(form);
        let refused_before = guard(form, "rejected.upgrade_not_allowed");
        let raw =
            "GET /graphql HTTP/1.1\r\nhost: localhost\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
                   sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   sec-websocket-protocol: graphql-transport-ws\r\n\r\n";
        let r = send_raw(c.port, raw.as_bytes()).unwrap();
        refused(&r, 403, "UPGRADE_NOT_ALLOWED");
        assert_eq!(
            guard(form, "rejected.upgrade_not_allowed"),
            refused_before + 1
        );
        assert_eq!(
            upstream_requests(form),
            upstream,
            "the upstream saw an upgrade"
        );
    });
}

/// Opens an inspected WebSocket on `ws` through the guard; the stream after the 101.
fn ws_open(port: u16) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    s.write_all(
        b"GET /graphql HTTP/1.1\r\nhost: localhost\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
          sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          sec-websocket-protocol: graphql-transport-ws\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1);
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// Review 3: a subscribe whose payload has no query and no hash (a `documentId`) closes the
/// stream; the upstream never gets it.
#[test]
fn a_websocket_operation_without_a_document_closes_the_stream() {
    for_each_form(|form| {
        use std::io::{Read, Write};
        let c = ctx(form, "ws");
        let bad = guard(form, "rejected.bad_request");
        let closed = ws_upstream::SEEN.lock().unwrap().closed;
        let mut s = ws_open(c.port);
        let init = r#"{"type":"connection_init","payload":{"review":3}}"#;
        s.write_all(&ws_text(init)).unwrap();
        until_seen("the init", |seen| seen.messages.iter().any(|m| m == init));
        let doc = r#"{"id":"r3","type":"subscribe","payload":{"documentId":"abc"}}"#;
        s.write_all(&ws_text(doc)).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        until_seen("the upstream connection closed", |seen| {
            seen.closed > closed
        });
        let seen = ws_upstream::SEEN.lock().unwrap();
        assert!(
            !seen.messages.iter().any(|m| m.contains("\"r3\"")),
            "the upstream saw the unchecked subscription"
        );
        drop(seen);
        assert_eq!(guard(form, "rejected.bad_request"), bad + 1);
    });
}

/// Review 6: an inspected stream buffers at most `websocket_max_message_bytes` (64 KiB by
/// default), not `max_body_bytes`: a larger message resets the stream and never reaches the
/// upstream.
#[test]
fn a_websocket_message_over_the_cap_resets_the_stream() {
    for_each_form(|form| {
        use std::io::{Read, Write};
        let c = ctx(form, "ws");
        let bad = guard(form, "rejected.bad_request");
        let closed = ws_upstream::SEEN.lock().unwrap().closed;
        let mut s = ws_open(c.port);
        let text =
            json!({"type": "connection_init", "payload": {"pad": "x".repeat(70_000)}}).to_string();
        let mask = [0x0Fu8, 0x1E, 0x2D, 0x3C];
        let mut frame = vec![0x81, 0x80 | 127];
        frame.extend_from_slice(&(text.len() as u64).to_be_bytes());
        frame.extend_from_slice(&mask);
        frame.extend(text.bytes().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        let _ = s.write_all(&frame);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        until_seen("the upstream connection closed", |seen| {
            seen.closed > closed
        });
        let seen = ws_upstream::SEEN.lock().unwrap();
        assert!(
            !seen.messages.iter().any(|m| m.contains("\"pad\"")),
            "the upstream saw the oversized message"
        );
        drop(seen);
        assert_eq!(guard(form, "rejected.bad_request"), bad + 1);
    });
}
