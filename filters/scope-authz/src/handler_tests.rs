use super::*;
use crate::test_support::*;
use kit::host::{Call, MockHost};
use serde_json::{json, Value};
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn rules() -> Value {
    json!([
        {"match": {"path": {"prefix": "/public"}}, "skip": true},
        {"match": {"path": {"prefix": "/write"}}, "require": {"all_of": ["pets:write"]}},
        {"match": {"path": {"prefix": "/admin"}}, "require": {"all_of": ["admin"]}},
        {"match": {"path": {"prefix": "/any"}}, "require": {"any_of": ["admin", "pets:read"]}}
    ])
}

fn cfg() -> Config {
    config(json!({"rules": rules(), "allow_cors_preflight": true,
        "forward_claims": [{"claim": "sub", "header": "x-user"}]}))
}

fn run(config: &Config, state: &mut State, host: &MockHost) -> Action {
    let counters = Counters::define(host, &COUNTER_NAMES);
    let action = on_request_headers(host, config, state, &counters);
    state.flush_counters(host, &counters);
    action
}

fn host(path: &str, auth: Option<&str>) -> MockHost {
    let mut h = MockHost::new(&[(":path", path), (":method", "GET")]);
    if let Some(t) = auth {
        h.headers
            .push(("authorization".into(), format!("Bearer {t}").into_bytes()));
    }
    h.now = NOW;
    h
}

fn body(h: &MockHost) -> Value {
    serde_json::from_slice(&h.reply().unwrap().body).unwrap()
}

fn www(h: &MockHost) -> String {
    h.reply()
        .unwrap()
        .headers
        .iter()
        .find(|(k, _)| k == "www-authenticate")
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

#[test]
fn outcomes_by_route_and_token() {
    let c = cfg();
    let read = rs256(json!({"scope": "pets:read"}));
    let substring = rs256(json!({"scope": "pets:writer xpets:write"}));
    let expired = rs256(json!({"exp": NOW - 100}));
    // (path, token, status or 0 for continue, counter)
    let cases: Vec<(&str, Option<&str>, u16, &str)> = vec![
        ("/pets", Some(&read), 0, "apim.scope_authz.allowed"),
        ("/public/x", None, 0, "apim.scope_authz.skipped"),
        ("/pets", None, 401, "apim.scope_authz.denied.missing"),
        (
            "/write",
            Some(&read),
            403,
            "apim.scope_authz.denied.insufficient_scope",
        ),
        (
            "/write",
            Some(&substring),
            403,
            "apim.scope_authz.denied.insufficient_scope",
        ),
        ("/any", Some(&read), 0, "apim.scope_authz.allowed"),
        (
            "/pets",
            Some(&expired),
            401,
            "apim.scope_authz.denied.expired",
        ),
        (
            "/pets",
            Some("a.b.c"),
            401,
            "apim.scope_authz.denied.invalid",
        ),
    ];
    for (path, token, status, counter) in cases {
        let h = host(path, token);
        let mut state = State::new(&c);
        let action = run(&c, &mut state, &h);
        match status {
            0 => assert_eq!(action, Action::Continue, "{path}"),
            s => {
                assert_eq!(action, Action::Stop, "{path}");
                assert_eq!(h.reply().unwrap().status, s, "{path}");
            }
        }
        assert_eq!(h.counter(counter), 1, "{path} {counter}");
    }
}

#[test]
fn denials_carry_rfc6750_headers() {
    let c = cfg();
    let h = host("/pets", None);
    run(&c, &mut State::new(&c), &h);
    assert_eq!(www(&h), "Bearer realm=\"apim\"");
    assert_eq!(body(&h)["code"], "missing_token");
    let h = host("/admin", Some(&rs256(json!({}))));
    run(&c, &mut State::new(&c), &h);
    assert_eq!(
        www(&h),
        "Bearer realm=\"apim\", error=\"insufficient_scope\", scope=\"admin\""
    );
    assert_eq!(
        body(&h)["required_scopes"],
        json!({"all_of": ["admin"], "any_of": []})
    );
    let r = h.reply().unwrap();
    assert!(r
        .headers
        .contains(&("content-type".into(), "application/problem+json".into())));
}

#[test]
fn success_publishes_identity_and_forwards_claims() {
    let c = cfg();
    let h = host("/pets", Some(&rs256(json!({"sub": "alice"}))));
    assert_eq!(run(&c, &mut State::new(&c), &h), Action::Continue);
    let id: Value = serde_json::from_slice(&h.published("apim_consumer").unwrap()).unwrap();
    assert_eq!(
        id,
        json!({"id": "alice", "scopes": ["pets:read", "pets:write"], "source": "scope-authz"})
    );
    assert_eq!(
        h.header_changes(),
        [Call::SetHeader("x-user".into(), b"alice".to_vec())]
    );
    // No sub: the client's copy of the header is removed, nothing published.
    let h = host("/pets", Some(&rs256(json!({"sub": null}))));
    run(&c, &mut State::new(&c), &h);
    assert_eq!(h.header_changes(), [Call::RemoveHeader("x-user".into())]);
    assert!(h.published("apim_consumer").is_none());
    // Skipped routes scrub it too.
    let h = host("/public", None);
    run(&c, &mut State::new(&c), &h);
    assert_eq!(h.header_changes(), [Call::RemoveHeader("x-user".into())]);
}

#[test]
fn claims_are_published_only_when_asked() {
    let token = rs256(json!({"sub": "alice", "tenant": "acme"}));
    let c = cfg();
    let h = host("/pets", Some(&token));
    run(&c, &mut State::new(&c), &h);
    assert!(h.published("apim_claims").is_none(), "off by default");
    let c = config(json!({"rules": rules(), "publish_claims": true}));
    let h = host("/pets", Some(&token));
    assert_eq!(run(&c, &mut State::new(&c), &h), Action::Continue);
    let claims: Value = serde_json::from_slice(&h.published("apim_claims").unwrap()).unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["tenant"], "acme");
}

#[test]
fn repeated_token_hits_the_cache() {
    let c = cfg();
    let mut state = State::new(&c);
    let t = rs256(json!({}));
    for _ in 0..3 {
        let h = host("/pets", Some(&t));
        assert_eq!(run(&c, &mut state, &h), Action::Continue);
    }
    assert_eq!(state.cache.len(), 1);
    let h = host("/pets", Some(&t));
    run(&c, &mut state, &h);
    assert_eq!(h.counter("apim.scope_authz.cache_hit"), 1);
    // The cached grant is still checked against each route's scopes.
    let h = host("/admin", Some(&t));
    assert_eq!(run(&c, &mut state, &h), Action::Stop);
    // After exp the entry is not used: the token is verified again, and refused. (The timer
    // refreshes the clock the cache uses.)
    let mut h = host("/pets", Some(&t));
    h.now = NOW + 3600 + 61;
    state.set_clock(h.now);
    assert_eq!(run(&c, &mut state, &h), Action::Stop);
    assert_eq!(h.counter("apim.scope_authz.cache_hit"), 0);
    // New keys clear the cache.
    let h = host("/pets", Some(&t));
    run(&c, &mut state, &h);
    state.set_keys(0, crate::jwks::KeySet::parse(JWKS2.as_bytes()).unwrap());
    assert!(state.cache.is_empty());
}

#[test]
fn api_key_consumer_scopes_are_used_without_a_token() {
    let c = cfg();
    let alice = r#"{"id":"alice","plan":"gold","scopes":["pets:read","pets:write"],"source":"api-key-auth"}"#;
    let bob = r#"{"id":"bob","plan":"silver","scopes":["pets:read"],"source":"api-key-auth"}"#;
    for (identity, path, want) in [
        (alice, "/write", 0),
        (bob, "/write", 403),
        (bob, "/pets", 0),
    ] {
        let mut h = host(path, None);
        h.properties
            .insert("apim_consumer".into(), identity.as_bytes().to_vec());
        let action = run(&c, &mut State::new(&c), &h);
        if want == 0 {
            assert_eq!(action, Action::Continue, "{identity} {path}");
            assert_eq!(h.counter("apim.scope_authz.allowed_consumer"), 1);
            assert!(h.published("apim_consumer").is_none());
        } else {
            assert_eq!(h.reply().unwrap().status, want);
        }
    }
    // Off by config: the consumer is not enough.
    let c = config(json!({"consumer_scopes": false}));
    let mut h = host("/pets", None);
    h.properties
        .insert("apim_consumer".into(), alice.as_bytes().to_vec());
    run(&c, &mut State::new(&c), &h);
    assert_eq!(h.reply().unwrap().status, 401);
}

#[test]
fn unknown_kid_and_missing_keys_ask_for_a_fetch() {
    let c = Config::parse(
        json!({"providers": [{"name": "r", "issuer": ISS, "algorithms": ["RS256"],
            "jwks": {"remote": {"cluster": "idp", "path": "/jwks"}}}]})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let mut state = State::new(&c);
    let h = host("/pets", Some(&rs256(json!({}))));
    run(&c, &mut state, &h);
    assert_eq!(h.reply().unwrap().status, 503);
    assert!(h
        .reply()
        .unwrap()
        .headers
        .contains(&("retry-after".into(), "5".into())));
    assert_eq!(state.refetch, [true]);
    state.refetch[0] = false;
    state.set_keys(0, crate::jwks::KeySet::parse(JWKS1.as_bytes()).unwrap());
    let t2 = sign(
        jsonwebtoken::Algorithm::RS256,
        Some("rsa2"),
        &claims(json!({})),
    );
    let h = host("/pets", Some(&t2));
    run(&c, &mut state, &h);
    assert_eq!(h.reply().unwrap().status, 401);
    assert_eq!(h.counter("apim.scope_authz.denied.unknown_kid"), 1);
    assert_eq!(state.refetch, [true]);
    state.set_keys(0, crate::jwks::KeySet::parse(JWKS2.as_bytes()).unwrap());
    let h = host("/pets", Some(&t2));
    assert_eq!(run(&c, &mut state, &h), Action::Continue);
}

#[test]
fn cors_preflight_passes_when_configured() {
    let c = cfg();
    let mut h = MockHost::new(&[
        (":path", "/pets"),
        (":method", "OPTIONS"),
        ("origin", "https://app"),
        ("access-control-request-method", "GET"),
    ]);
    h.now = NOW;
    assert_eq!(run(&c, &mut State::new(&c), &h), Action::Continue);
    h.headers.retain(|(k, _)| k != "origin");
    assert_eq!(run(&c, &mut State::new(&c), &h), Action::Stop);
}

#[test]
fn metadata_mode_reads_jwt_authn_payload() {
    let c = Config::parse(
        br#"{"mode":"metadata","metadata":{"payload_key":"jwt"},"rules":[{"require":{"all_of":["pets:write"]}}],
            "forward_claims":[{"claim":"sub","header":"x-user"}]}"#,
    )
    .unwrap();
    let prefix = "metadata.filter_metadata.envoy.filters.http.jwt_authn.jwt";
    let mut h = host("/pets", None);
    h.properties
        .insert(format!("{prefix}.sub"), b"carol".to_vec());
    h.properties
        .insert(format!("{prefix}.scope"), b"pets:read pets:write".to_vec());
    assert_eq!(run(&c, &mut State::new(&c), &h), Action::Continue);
    assert_eq!(
        h.header_changes(),
        [Call::SetHeader("x-user".into(), b"carol".to_vec())]
    );
    let id: Value = serde_json::from_slice(&h.published("apim_consumer").unwrap()).unwrap();
    assert_eq!(id["id"], "carol");
    let mut h = host("/pets", None);
    h.properties
        .insert(format!("{prefix}.scope"), b"pets:read".to_vec());
    run(&c, &mut State::new(&c), &h);
    assert_eq!(h.reply().unwrap().status, 403);
    let h = host("/pets", None);
    run(&c, &mut State::new(&c), &h);
    assert_eq!(h.reply().unwrap().status, 401);
}

#[test]
fn oversized_token_is_refused_before_any_work() {
    let c = cfg();
    let big = "a".repeat(9000);
    let h = host("/pets", Some(&big));
    run(&c, &mut State::new(&c), &h);
    assert_eq!(h.reply().unwrap().status, 401);
    assert!(www(&h).contains("larger than allowed"));
}

#[test]
fn common_path_counters_are_batched() {
    let c = cfg();
    let mut state = State::new(&c);
    let t = rs256(json!({}));
    let h = host("/pets", Some(&t));
    let counters = Counters::define(&h, &COUNTER_NAMES);
    for _ in 0..BATCH - 1 {
        on_request_headers(&h, &c, &mut state, &counters);
    }
    assert_eq!(h.counter("apim.scope_authz.allowed"), 0);
    on_request_headers(&h, &c, &mut state, &counters);
    assert_eq!(h.counter("apim.scope_authz.allowed"), BATCH);
    on_request_headers(&h, &c, &mut state, &counters);
    state.flush_counters(&h, &counters);
    assert_eq!(h.counter("apim.scope_authz.allowed"), BATCH + 1);
    assert_eq!(h.counter("apim.scope_authz.cache_hit"), BATCH);
}

#[test]
fn cached_entries_stop_before_exp_even_with_a_reused_clock() {
    let c = cfg();
    let mut state = State::new(&c);
    let t = rs256(json!({"exp": NOW + 10}));
    let mut h = host("/pets", Some(&t));
    assert_eq!(run(&c, &mut state, &h), Action::Continue);
    // The reused clock says NOW; the entry is used only while NOW + margin < exp.
    state.set_clock(NOW + 10 - CLOCK_MARGIN);
    h.now = NOW + 10 - CLOCK_MARGIN;
    assert_eq!(run(&c, &mut state, &h), Action::Continue);
    assert_eq!(h.counter("apim.scope_authz.cache_hit"), 0);
    // Re-read every CLOCK_REUSE lookups even without the timer.
    let mut state = State::new(&c);
    let t = rs256(json!({}));
    let mut h = host("/pets", Some(&t));
    for _ in 0..=CLOCK_REUSE {
        run(&c, &mut state, &h);
    }
    h.now = NOW + 3600 + 61;
    assert_eq!(run(&c, &mut state, &h), Action::Stop);
}
