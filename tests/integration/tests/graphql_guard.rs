//! End-to-end tests of the graphql-guard module in the pinned Envoy: every transport (GET, POST
//! JSON, POST `application/graphql`, batches), both Accept variants, persisted-only mode,
//! per-plan limits (with api-key-auth in front), warn-only mode, oversized bodies and
//! pathological documents, asserting statuses, GraphQL error bodies and what the echo upstream
//! received (including the published `apim_cost`, copied into `x-apim-cost` by the route).
//!
//! One Envoy (three listeners) serves every test of a form; nothing waits for time to pass.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Mutex, MutexGuard};

use apim_integration::bootstrap::{bootstrap, listener, upstream_cluster};
use apim_integration::chain::{for_each_form, lua, Chain, Filter, Form, PerForm};
use apim_integration::{Envoy, LogOnFailure, Request, Response};
use serde_json::{json, Value};

const ALICE: &str = "demo-key-alice-0123456789abcdef";
const BOB: &str = "demo-key-bob-0123456789abcdef0";
const FINE: &str = include_str!("../fixtures/graphql-guard/fine.graphql");
const DEEP: &str = include_str!("../fixtures/graphql-guard/deep.graphql");
/// SHA-256 of `fine.graphql`, listed on the `persisted` listener.
const FINE_SHA256: &str = "e1a3a04fa496a12b429b9bc1a6a3aebe5e97d51d70ca20488c78d3a9e4a9a249";

/// api-key-auth on `main`: alice gold, bob silver, anonymous guest on /graphql, every other
/// route skipped.
const API_KEY_AUTH: &str = r#"{"consumers": [
   {"id": "alice", "plan": "gold",
    "keys": [{"sha256": "dc275ab1c4bc17899cdfff16563da508be4c9275589ce936577f52f0512f22bb"}]},
   {"id": "bob", "plan": "silver",
    "keys": [{"sha256": "3ddaba5e842f5e66e7dfbc3a318416be5097ae49ffe348fbf2c6f9e815a2df26"}]},
   {"id": "guest", "plan": "free"}],
 "rules": [{"match": {"route_name": "graphql"}, "anonymous": "guest"},
           {"match": {}, "skip": true}]}
"#;

/// The guard on `main`: `/graphql` only, default depth 8 and gold depth 14, cost published.
const GUARD: &str = r#"{"rules": [{"match": {"route_name": "graphql"}}],
 "limits": {"max_depth": 8, "max_aliases": 10, "max_root_fields": 10,
            "max_directives": 20, "max_tokens": 5000, "max_cost": 10000},
 "plans": {"gold": {"max_depth": 14}},
 "introspection": {"mode": "block"},
 "max_batch": 3,
 "max_body_bytes": 2000000}
"#;

/// The guard holds the headers until it has judged the body, so the cost is known when the
/// next filter sees them. This one copies it for the echo upstream to show.
const LUA_COST: &str = r#"function envoy_on_request(handle)
  handle:body()
  local cost = handle:streamInfo():filterState():get("wasm.apim_cost")
  if cost ~= nil then
    handle:headers():replace("x-apim-cost", tostring(cost))
  end
end
"#;

/// - `main`: [`API_KEY_AUTH`] then [`GUARD`], then [`LUA_COST`].
/// - `persisted`: the guard alone (its own VM), persisted-only with `fine.graphql` listed.
/// - `warn`: the guard alone (its own VM) in warn-only mode with depth 2.
fn config(form: Form) -> String {
    let main = listener("main", "upstream")
        .listener_options("per_connection_buffer_limit_bytes: 4194304")
        .hcm_options("http_protocol_options: {enable_trailers: true}")
        .route_config_name("main")
        .route("graphql", "/graphql")
        .route("rest", "/")
        .chain(
            &Chain::new()
                .filter(Filter::ApiKeyAuth, API_KEY_AUTH)
                .filter(Filter::GraphqlGuard, GUARD)
                .other(lua(LUA_COST)),
            form,
        );
    let persisted = listener("persisted", "upstream")
        .route_config_name("persisted")
        .chain(
            &Chain::new()
                .filter(
                    Filter::GraphqlGuard,
                    &format!(r#"{{"persisted": {{"only": true, "sha256": ["{FINE_SHA256}"]}}}}"#),
                )
                .vm("persisted"),
            form,
        );
    let warn = listener("warn", "upstream")
        .route_config_name("warn")
        .chain(
            &Chain::new()
                .filter(
                    Filter::GraphqlGuard,
                    r#"{"limits": {"max_depth": 2}, "warn_only": true}"#,
                )
                .vm("warn"),
            form,
        );
    bootstrap(&[main, persisted, warn], &[upstream_cluster("upstream")])
}

/// The Envoy every test shares, one per form.
fn shared(form: Form) -> &'static Envoy {
    static SHARED: PerForm = PerForm::new();
    SHARED.get(form, |form| {
        Envoy::builder()
            .concurrency(1)
            .start(&config(form))
            .unwrap_or_else(|e| panic!("starting the shared Envoy: {e}"))
    })
}

/// The listener's port, the log on failure, and a lock: one test at a time, so the counter
/// deltas a test asserts are its own (exact, never `≥`).
fn port(form: Form, listener: &str) -> (u16, LogOnFailure, MutexGuard<'static, ()>) {
    static LOCK: Mutex<()> = Mutex::new(());
    let lock = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let envoy = shared(form);
    (
        envoy.listener_port(listener).unwrap(),
        LogOnFailure(envoy),
        lock,
    )
}

fn counter(form: Form, name: &str) -> u64 {
    shared(form)
        .counter(&format!("wasmcustom.apim.graphql_guard.{name}"))
        .unwrap_or(0)
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

fn fine_body() -> Value {
    json!({"query": FINE, "operationName": "StorefrontProduct", "variables": {"handle": "red-shirt", "first": 10}})
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

/// Asserts a GraphQL-over-HTTP refusal and returns its first error.
fn refused(r: &Response, status: u16, content_type: &str, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some(content_type), "{}", r.text());
    let v = r.json();
    assert_eq!(v["errors"][0]["extensions"]["code"], code, "{v}");
    v["errors"][0].clone()
}

#[test]
fn fine_post_reaches_the_upstream_with_its_cost() {
    for_each_form(|form| {
        let (port, _log, _lock) = port(form, "main");
        let r = send(port, &post_json(&fine_body()));
        assert_eq!(r.status, 200, "{}", r.text());
        let echo = r.json();
        assert_eq!(echo["method"], "POST");
        let body: Value = serde_json::from_str(echo["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["operationName"], "StorefrontProduct");
        let headers = echo["headers"].as_array().unwrap();
        let cost = headers
            .iter()
            .find(|h| h[0] == "x-apim-cost")
            .map(|h| h[1].as_str().unwrap().to_string())
            .unwrap_or_default();
        // What the logic computes for this operation under the listener's config (the default cost
        // model: objects 1, leaves 0, `first: 10` multiplies) is what Envoy's filter state carries.
        let config = graphql_guard::config::Config::parse(
            br#"{"limits": {"max_depth": 8, "max_aliases": 10, "max_root_fields": 10,
                            "max_directives": 20, "max_tokens": 5000, "max_cost": 10000}}"#,
        )
        .unwrap();
        let req: graphql_guard::transport::GqlRequest = graphql_guard::transport::GqlRequest {
            query: Some(FINE.to_string()),
            operation_name: Some("StorefrontProduct".into()),
            variables: Some(json!({"handle": "red-shirt", "first": 10})),
            persisted_hash: None,
        };
        let expected = graphql_guard::policy::check(
            &config,
            &config.limits,
            false,
            &[req],
            &graphql_guard::apq::NoStore,
        );
        assert_eq!(expected.violation, None);
        assert_eq!(cost, expected.cost.to_string(), "cost published");
        assert_eq!(cost, "99");
    });
}

#[test]
fn deep_post_is_refused_in_both_accept_variants() {
    for_each_form(|form| {
        let (port, _log, _lock) = port(form, "main");
        let (checked, rejected) = (
            counter(form, "checked"),
            counter(form, "rejected.max_depth_exceeded"),
        );
        let body = json!({ "query": DEEP });
        // No Accept header: application/graphql-response+json and 400.
        let r = send(port, &post_json(&body));
        let e = refused(
            &r,
            400,
            "application/graphql-response+json",
            "MAX_DEPTH_EXCEEDED",
        );
        assert_eq!(e["message"], "Depth 13 exceeds the limit of 8 (max_depth)");
        let r = send(
            port,
            &post_json(&body).header("accept", "application/graphql-response+json"),
        );
        refused(
            &r,
            400,
            "application/graphql-response+json",
            "MAX_DEPTH_EXCEEDED",
        );
        // Only application/json: 200 with the errors.
        let r = send(port, &post_json(&body).header("accept", "application/json"));
        refused(&r, 200, "application/json", "MAX_DEPTH_EXCEEDED");
        assert_eq!(counter(form, "checked"), checked + 3);
        assert_eq!(counter(form, "rejected.max_depth_exceeded"), rejected + 3);
    });
}

#[test]
fn get_transport_and_mutations_over_get() {
    for_each_form(|form| {
        let (port, _log, _lock) = port(form, "main");
        let ok = send(
            port,
            &Request::get(&format!(
                "/graphql?query={}&operationName=StorefrontProduct&variables={}",
                enc(FINE),
                enc(r#"{"handle":"x"}"#)
            )),
        );
        assert_eq!(ok.status, 200, "{}", ok.text());
        let deep = send(
            port,
            &Request::get(&format!("/graphql?query={}", enc(DEEP))),
        );
        refused(
            &deep,
            400,
            "application/graphql-response+json",
            "MAX_DEPTH_EXCEEDED",
        );
        let m = send(
            port,
            &Request::get(&format!(
                "/graphql?query={}",
                enc("mutation { addPet { id } }")
            )),
        );
        refused(
            &m,
            405,
            "application/graphql-response+json",
            "MUTATION_NOT_ALLOWED_OVER_GET",
        );
        // The same mutation over POST is fine.
        let r = send(
            port,
            &post_json(&json!({"query": "mutation { addPet { id } }"})),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    });
}

#[test]
fn application_graphql_bodies() {
    for_each_form(|form| {
        let (port, _log, _lock) = port(form, "main");
        let req = |q: &str| {
            Request::new("POST", "/graphql")
                .header("content-type", "application/graphql")
                .body(q.as_bytes().to_vec())
        };
        assert_eq!(send(port, &req("{ pets { id name } }")).status, 200);
        refused(
            &send(port, &req(DEEP)),
            400,
            "application/graphql-response+json",
            "MAX_DEPTH_EXCEEDED",
        );
        let r = send(
            port,
            &Request::new("POST", "/graphql")
                .header("content-type", "text/plain")
                .body("{ a }"),
        );
        refused(
            &r,
            415,
            "application/graphql-response+json",
            "UNSUPPORTED_MEDIA_TYPE",
        );
    });
}

#[test]
fn batches_are_checked_per_element_and_capped() {
    for_each_form(|form| {
        let (port, _log, _lock) = port(form, "main");
        let ok = send(
            port,
            &post_json(&json!([{"query": "{ a }"}, {"query": "{ b { c } }"}])),
        );
        assert_eq!(ok.status, 200, "{}", ok.text());
        let bad = send(
            port,
            &post_json(&json!([{"query": "{ a }"}, {"query": DEEP}])),
        );
        let e = refused(
            &bad,
            400,
            "application/graphql-response+json",
            "MAX_DEPTH_EXCEEDED",
        );
        assert_eq!(e["extensions"]["batchIndex"], 1);
        let big = send(
            port,
            &post_json(
                &json!([{"query": "{a}"}, {"query": "{a}"}, {"query": "{a}"}, {"query": "{a}"}]),
            ),
        );
        refused(
            &big,
            400,
            "application/graphql-response+json",
            "BATCH_TOO_LARGE",
        );
    });
}

#[test]
fn limits_follow_the_consumer_plan() {
    for_each_form(|form| {
        let (port, _log, _lock) = port(form, "main");
        let body = json!({ "query": DEEP });
        // alice is gold (depth 14): the 13-deep query passes; bob (silver) gets the default.
        let r = send(port, &post_json(&body).header("x-api-key", ALICE));
        assert_eq!(r.status, 200, "{}", r.text());
        let r = send(port, &post_json(&body).header("x-api-key", BOB));
        refused(
            &r,
            400,
            "application/graphql-response+json",
            "MAX_DEPTH_EXCEEDED",
        );
    });
}

#[test]
fn introspection_is_blocked_by_field_not_by_name() {
    for_each_form(|form| {
        let (port, _log, _lock) = port(form, "main");
        let r = send(
            port,
            &post_json(&json!({"query": "{ __schema { types { name } } }"})),
        );
        refused(
            &r,
            400,
            "application/graphql-response+json",
            "INTROSPECTION_DISABLED",
        );
        let r = send(
            port,
            &post_json(
                &json!({"query": "query __schema { ...__type } fragment __type on Query { pets { id } }"}),
            ),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    });
}

#[test]
fn persisted_only_mode() {
    for_each_form(|form| {
        let (port, _log, _lock) = port(form, "persisted");
        let r = send(port, &post_json(&fine_body()));
        assert_eq!(r.status, 200, "{}", r.text());
        let r = send(port, &post_json(&json!({"query": "{ pets { id } }"})));
        refused(
            &r,
            400,
            "application/graphql-response+json",
            "PERSISTED_QUERY_NOT_ALLOWED",
        );
        // Apollo's format, hash only, over GET and POST.
        let ext = json!({"persistedQuery": {"version": 1, "sha256Hash": FINE_SHA256}});
        let r = send(port, &post_json(&json!({"extensions": ext})));
        assert_eq!(r.status, 200, "{}", r.text());
        let r = send(
            port,
            &Request::get(&format!("/graphql?extensions={}", enc(&ext.to_string()))),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let other = json!({"persistedQuery": {"version": 1, "sha256Hash": "00".repeat(32)}});
        let r = send(port, &post_json(&json!({"extensions": other})));
        refused(
            &r,
            400,
            "application/graphql-response+json",
            "PERSISTED_QUERY_NOT_ALLOWED",
        );
        // A query that does not match the hash it claims.
        let r = send(
            port,
            &post_json(&json!({"query": "{ a }", "extensions": ext})),
        );
        refused(
            &r,
            400,
            "application/graphql-response+json",
            "PERSISTED_QUERY_HASH_MISMATCH",
        );
    });
}

#[test]
fn warn_only_mode_passes_and_counts() {
    for_each_form(|form| {
        let (port, _log, _lock) = port(form, "warn");
        let (warned, rejected) = (
            counter(form, "warned"),
            counter(form, "rejected.max_depth_exceeded"),
        );
        let r = send(port, &post_json(&json!({ "query": DEEP })));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(counter(form, "warned"), warned + 1);
        assert_eq!(counter(form, "rejected.max_depth_exceeded"), rejected);
    });
}

#[test]
fn oversized_bodies_get_413() {
    for_each_form(|form| {
        let (port, _log, _lock) = port(form, "main");
        let big = format!(
            "{{\"query\":\"{{ a }}\",\"pad\":\"{}\"}}",
            "x".repeat(2_100_000)
        );
        let r = send(
            port,
            &Request::new("POST", "/graphql")
                .header("content-type", "application/json")
                .body(big.into_bytes()),
        );
        refused(
            &r,
            413,
            "application/graphql-response+json",
            "MAX_BYTES_EXCEEDED",
        );
    });
}

#[test]
fn pathological_inputs_are_refused_and_the_vm_survives() {
    for_each_form(|form| {
        let (port, _log, _lock) = port(form, "main");
        let deep = format!("{}{}", "{a".repeat(100_000), "}".repeat(100_000));
        let r = send(port, &post_json(&json!({ "query": deep })));
        assert_eq!(r.status, 400, "{}", r.text());
        let code = r.json()["errors"][0]["extensions"]["code"].clone();
        assert!(
            code == "MAX_DEPTH_EXCEEDED" || code == "MAX_TOKENS_EXCEEDED",
            "{code}"
        );
        let many = format!("{{ {} }}", "a ".repeat(500_000));
        let r = send(port, &post_json(&json!({ "query": many })));
        refused(
            &r,
            400,
            "application/graphql-response+json",
            "MAX_TOKENS_EXCEEDED",
        );
        let vars = format!(
            r#"{{"query":"{{ a }}","variables":{{"v":{}1{}}}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let r = send(
            port,
            &Request::new("POST", "/graphql")
                .header("content-type", "application/json")
                .body(vars.into_bytes()),
        );
        refused(&r, 400, "application/graphql-response+json", "BAD_REQUEST");
        let cycle = "{ ...A } fragment A on Query { a { ...B } } fragment B on A { b { ...A } }";
        let r = send(port, &post_json(&json!({ "query": cycle })));
        refused(
            &r,
            400,
            "application/graphql-response+json",
            "GRAPHQL_VALIDATION_FAILED",
        );
        let mut chain = String::from("{ ...F0 }");
        for i in 0..2000 {
            chain.push_str(&format!(" fragment F{i} on Query {{ ...F{} }}", i + 1));
        }
        chain.push_str(" fragment F2000 on Query { a }");
        let r = send(port, &post_json(&json!({ "query": chain })));
        assert_eq!(r.status, 400, "{}", r.text());
        // The VM is still alive.
        let r = send(port, &post_json(&fine_body()));
        assert_eq!(r.status, 200, "{}", r.text());
    });
}

#[test]
fn other_routes_and_methods_pass_untouched() {
    for_each_form(|form| {
        let (port, _log, _lock) = port(form, "main");
        let r = send(
            port,
            &Request::new("POST", "/pets")
                .header("content-type", "text/plain")
                .body("not graphql { { {"),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["body"], "not graphql { { {");
        let r = send(port, &Request::get("/graphql"));
        assert_eq!(r.status, 200, "GET without query (a GraphiQL page) passes");
    });
}

/// A chunked POST whose body ends with trailers: the body callback never sees its end, so the
/// check runs at the trailers (an unchecked body must never be released by them).
fn chunked_with_trailers(port: u16, body: &str) -> Response {
    let raw = format!(
        "POST /graphql HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\nx-trailer: 1\r\n\r\n",
        body.len()
    );
    apim_integration::send_raw(port, raw.as_bytes()).unwrap()
}

#[test]
fn bodies_ending_in_trailers_are_checked() {
    for_each_form(|form| {
        let (port, _log, _lock) = port(form, "main");
        let deep = serde_json::to_string(&json!({ "query": DEEP })).unwrap();
        let r = chunked_with_trailers(port, &deep);
        refused(
            &r,
            400,
            "application/graphql-response+json",
            "MAX_DEPTH_EXCEEDED",
        );
        let fine = serde_json::to_string(&fine_body()).unwrap();
        let r = chunked_with_trailers(port, &fine);
        assert_eq!(r.status, 200, "{}", r.text());
    });
}
