//! The whole chain, as shipped: `envoy/gateway.yaml` itself (ports moved to free ones, the
//! demo upstream replaced by the test's echo upstream), with one request per hand-off between
//! filters: the api-key identity feeding scope-authz and quota, the plan feeding
//! graphql-guard, the consumer and the token's claims feeding transform.
//!
//! Every test runs against both forms of the same gateway, with the same assertions: the five
//! modules (`envoy/gateway.yaml`) and the suite module (`envoy/gateway-suite.yaml`, generated
//! from it by `envoy/sync-suite-gateway.py`). They must answer alike.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::OnceLock;

use apim_integration::demo_keys::{ALICE, BOB};
use apim_integration::shipped::gateway_template;
use apim_integration::{repo_root, Envoy, LogOnFailure, Request, Response};
use serde_json::{json, Value};

/// The two forms of the demo gateway: its file, and the Envoy running it.
const FORMS: [&str; 2] = ["envoy/gateway.yaml", "envoy/gateway-suite.yaml"];

fn gateway(form: &str) -> &'static Envoy {
    static ENVOYS: [OnceLock<Envoy>; 2] = [OnceLock::new(), OnceLock::new()];
    let slot = FORMS.iter().position(|f| *f == form).unwrap();
    ENVOYS[slot].get_or_init(|| {
        let template = gateway_template(form).unwrap_or_else(|e| panic!("{e}"));
        let envoy = Envoy::builder().concurrency(1).start(&template).unwrap();
        envoy.stop_when_process_exits();
        envoy
    })
}

/// Runs `test` against each form, saying which one a failure is about.
fn each_form(test: impl Fn(&dyn Fn(Request) -> (Response, LogOnFailure))) {
    for form in FORMS {
        eprintln!("--- form: {form}");
        test(&|r: Request| {
            let envoy = gateway(form);
            (r.send(envoy.port()).unwrap(), LogOnFailure(envoy))
        });
    }
}

#[test]
fn the_suite_gateway_is_generated_from_gateway_yaml() {
    let out = std::process::Command::new("python3")
        .arg(repo_root().join("envoy/sync-suite-gateway.py"))
        .arg("--check")
        .output()
        .expect("python3 (the generator needs only its standard library)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The echo upstream's values of one request header.
fn seen(r: &Response, name: &str) -> Vec<String> {
    let echo = r.json();
    echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0] == name)
        .map(|h| h[1].as_str().unwrap().to_string())
        .collect()
}

fn token(sub: &str, scope: &str) -> String {
    apim_integration::demo_keys::demo_token(sub, scope)
}

#[test]
fn api_key_identity_reaches_the_upstream_and_satisfies_scope_authz() {
    each_form(|send| {
        let (r, _log) = send(Request::get("/pets").header("x-api-key", ALICE));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(seen(&r, "x-consumer-id"), ["alice"]);
        assert!(seen(&r, "x-api-key").is_empty(), "the key is stripped");
    });
}

#[test]
fn scope_authz_uses_the_api_key_consumer_scopes() {
    each_form(|send| {
        let (r, _log) = send(Request::new("POST", "/pets").header("x-api-key", BOB));
        assert_eq!(r.status, 403, "{}", r.text());
        // Worded for the API key bob used (issue 13): no Bearer challenge, no "access token".
        assert_eq!(r.header("www-authenticate"), None, "{}", r.text());
        assert_eq!(r.json()["code"], "insufficient_scope");
        assert_eq!(
            r.json()["detail"],
            "The consumer's API key does not carry the scopes this route requires."
        );
        assert_eq!(r.json()["required_scopes"]["all_of"], json!(["pets:write"]));
        let (r, _log) = send(Request::new("POST", "/pets").header("x-api-key", ALICE));
        assert_eq!(r.status, 200, "{}", r.text());
    });
}

#[test]
fn token_claims_feed_transform_templates() {
    each_form(|send| {
        let (r, _log) = send(Request::get("/oauth/pets").header(
            "authorization",
            &format!("Bearer {}", token("carol", "pets:read")),
        ));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            seen(&r, "x-user"),
            ["carol"],
            "scope-authz forwards the claim"
        );
        assert_eq!(
            seen(&r, "x-token-subject"),
            ["carol"],
            "transform reads apim_claims"
        );
    });
}

#[test]
fn graphql_limits_follow_the_plan_from_api_key_auth() {
    each_form(|send| {
        let seven = json!({"query": "{ a { b { c { d { e { f { g } } } } } } }"}).to_string();
        let post = |key: &str| {
            Request::new("POST", "/graphql")
                .header("x-api-key", key)
                .header("content-type", "application/json")
                .body(seven.clone())
        };
        let (r, _log) = send(post(ALICE));
        assert_eq!(r.status, 200, "gold allows depth 10: {}", r.text());
        let (r, _log) = send(post(BOB));
        assert_eq!(r.status, 400, "{}", r.text());
        let body: Value = r.json();
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            "MAX_DEPTH_EXCEEDED"
        );
    });
}

#[test]
fn quota_counts_the_consumer_and_answers_429_with_its_fields() {
    each_form(|send| {
        // The demo plan allows 3 per 10 s window. A window may open while the loop runs, so the
        // test only asks that a 429 comes within two windows' worth of requests.
        let mut statuses = Vec::new();
        for _ in 0..7 {
            let (r, _log) = send(Request::get("/quota-demo/x").header("x-api-key", ALICE));
            statuses.push(r.status);
            if r.status == 429 {
                assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
                assert!(r.header("ratelimit-policy").unwrap().contains("demo-burst"));
                return;
            }
            assert_eq!(r.status, 200, "{}", r.text());
        }
        panic!("no 429 in {statuses:?}");
    });
}

#[test]
fn rest_call_becomes_graphql_with_the_consumer_as_a_variable() {
    each_form(|send| {
        let (r, _log) = send(Request::get("/gql/pets/1").header("x-api-key", ALICE));
        assert_eq!(r.status, 200, "{}", r.text());
        let pet: Value = r.json();
        assert_eq!(pet["id"], 1, "{pet}");
    });
}
