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
    let action = on_request_headers(host, config, state, &counters, false);
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
    /// A request, and what the filter does with it.
    struct Case<'a> {
        path: &'a str,
        token: Option<&'a str>,
        /// 0: the request goes on
        status: u16,
        /// counted once
        counter: &'a str,
    }
    let cases = vec![
        Case {
            path: "/pets",
            token: Some(&read),
            status: 0,
            counter: "apim.scope_authz.allowed",
        },
        Case {
            path: "/public/x",
            token: None,
            status: 0,
            counter: "apim.scope_authz.skipped",
        },
        Case {
            path: "/pets",
            token: None,
            status: 401,
            counter: "apim.scope_authz.denied.missing",
        },
        Case {
            path: "/write",
            token: Some(&read),
            status: 403,
            counter: "apim.scope_authz.denied.insufficient_scope",
        },
        Case {
            path: "/write",
            token: Some(&substring),
            status: 403,
            counter: "apim.scope_authz.denied.insufficient_scope",
        },
        Case {
            path: "/any",
            token: Some(&read),
            status: 0,
            counter: "apim.scope_authz.allowed",
        },
        Case {
            path: "/pets",
            token: Some(&expired),
            status: 401,
            counter: "apim.scope_authz.denied.expired",
        },
        Case {
            path: "/pets",
            token: Some("a.b.c"),
            status: 401,
            counter: "apim.scope_authz.denied.invalid",
        },
    ];
    for Case {
        path,
        token,
        status,
        counter,
    } in cases
    {
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
        [
            Call::SetHeader("x-user".into(), b"alice".to_vec()),
            Call::RemoveHeader("authorization".into())
        ]
    );
    // No sub: the client's copy of the header is removed, nothing published.
    let h = host("/pets", Some(&rs256(json!({"sub": null}))));
    run(&c, &mut State::new(&c), &h);
    assert_eq!(
        h.header_changes(),
        [
            Call::RemoveHeader("x-user".into()),
            Call::RemoveHeader("authorization".into())
        ]
    );
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
    // New keys that still hold the token's key keep its cached grant; keys without it drop it.
    let h = host("/pets", Some(&t));
    run(&c, &mut state, &h);
    assert!(state.set_keys(0, crate::jwks::KeySet::parse(JWKS2.as_bytes()).unwrap()));
    assert_eq!(state.cache.len(), 1);
    assert!(state.set_keys(0, without_rsa1()));
    assert!(state.cache.is_empty());
}

/// `jwks-2.json` without `rsa1`: the key rotated away.
fn without_rsa1() -> crate::jwks::KeySet {
    let mut doc: Value = serde_json::from_str(JWKS2).unwrap();
    doc["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k["kid"] != "rsa1");
    crate::jwks::KeySet::parse(doc.to_string().as_bytes()).unwrap()
}

#[test]
fn new_keys_drop_only_the_grants_they_no_longer_verify() {
    let c = Config::parse(
        json!({"providers": [
            {"name": "a", "issuer": ISS, "algorithms": ["RS256"],
             "jwks": {"remote": {"cluster": "idp", "path": "/a"}}},
            {"name": "b", "issuer": "https://other.test", "algorithms": ["RS256"],
             "jwks": {"remote": {"cluster": "idp", "path": "/b"}}}]})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let jwks = |d: &str| crate::jwks::KeySet::parse(d.as_bytes()).unwrap();
    let mut state = State::new(&c);
    assert!(state.set_keys(0, jwks(JWKS2)));
    assert!(state.set_keys(1, jwks(JWKS1)));
    let by_rsa1 = rs256(json!({"sub": "one"}));
    let by_rsa2 = sign(
        jsonwebtoken::Algorithm::RS256,
        Some("rsa2"),
        &claims(json!({"sub": "two"})),
    );
    let kidless = sign(
        jsonwebtoken::Algorithm::RS256,
        None,
        &claims(json!({"sub": "three"})),
    );
    let other = sign(
        jsonwebtoken::Algorithm::RS256,
        Some("rsa1"),
        &claims(json!({"iss": "https://other.test", "sub": "four"})),
    );
    for t in [&by_rsa1, &by_rsa2, &kidless, &other] {
        assert_eq!(
            run(&c, &mut state, &host("/pets", Some(t))),
            Action::Continue
        );
    }
    assert_eq!(state.cache.len(), 4);
    // The same document again (a refresh, a re-fetch for an unknown kid): nothing changes.
    assert!(!state.set_keys(0, jwks(JWKS2)));
    assert_eq!(state.cache.len(), 4);
    // rsa1 rotated away from provider a: its two grants go, rsa2's and provider b's stay.
    assert!(state.set_keys(0, without_rsa1()));
    assert_eq!(state.cache.len(), 2);
    let h = host("/pets", Some(&by_rsa2));
    run(&c, &mut state, &h);
    assert_eq!(h.counter("apim.scope_authz.cache_hit"), 1);
    let h = host("/pets", Some(&other));
    run(&c, &mut state, &h);
    assert_eq!(h.counter("apim.scope_authz.cache_hit"), 1);
    let h = host("/pets", Some(&by_rsa1));
    assert_eq!(run(&c, &mut state, &h), Action::Stop);
    assert_eq!(h.counter("apim.scope_authz.denied.unknown_kid"), 1);
    let h = host("/pets", Some(&kidless));
    assert_eq!(run(&c, &mut state, &h), Action::Stop);
    assert_eq!(h.counter("apim.scope_authz.denied.invalid"), 1);
}

#[test]
fn a_token_adds_to_the_api_key_identity_and_never_drops_its_plan() {
    let bob = r#"{"id":"bob","plan":"silver","groups":["partners"],"scopes":["pets:read"],"source":"api-key-auth"}"#;
    let c = config(json!({"rules": rules()}));
    let mut raw: Value = json!({"providers": [{
        "name": "test", "issuer": ISS, "audiences": ["api"], "algorithms": ["RS256"],
        "jwks": {"inline": serde_json::from_str::<Value>(JWKS1).unwrap()},
        "plan_claim": "plan", "plan": "partner"}]});
    let with_plans = Config::parse(raw.to_string().as_bytes()).unwrap();
    raw["providers"][0]["plan_claim"] = Value::Null;
    raw["providers"][0]
        .as_object_mut()
        .unwrap()
        .remove("plan_claim");
    let issuer_plan = Config::parse(raw.to_string().as_bytes()).unwrap();
    /// A token on top of what an earlier filter published, and the identity published then.
    struct Case<'a> {
        config: &'a Config,
        /// the identity an earlier filter published
        earlier: Option<&'a str>,
        /// the token's claims besides the defaults
        extra: Value,
        /// the identity published
        want: Value,
    }
    let cases = vec![
        Case {
            config: &c,
            earlier: Some(bob),
            extra: json!({"sub": "user-7"}),
            want: json!({"id": "bob", "plan": "silver", "groups": ["partners"],
                "scopes": ["pets:read", "pets:write"], "source": "api-key-auth+scope-authz"}),
        },
        Case {
            config: &with_plans,
            earlier: Some(bob),
            extra: json!({"sub": "user-7", "plan": "gold"}),
            want: json!({"id": "bob", "plan": "silver", "groups": ["partners"],
                "scopes": ["pets:read", "pets:write"], "source": "api-key-auth+scope-authz"}),
        },
        Case {
            config: &with_plans,
            earlier: None,
            extra: json!({"sub": "user-7", "plan": "gold"}),
            want: json!({"id": "user-7", "plan": "gold", "scopes": ["pets:read", "pets:write"],
                "source": "scope-authz"}),
        },
        Case {
            config: &with_plans,
            earlier: None,
            extra: json!({"sub": "user-7"}),
            want: json!({"id": "user-7", "plan": "partner", "scopes": ["pets:read", "pets:write"],
                "source": "scope-authz"}),
        },
        Case {
            config: &issuer_plan,
            earlier: None,
            extra: json!({"sub": "user-7", "plan": "gold"}),
            want: json!({"id": "user-7", "plan": "partner", "scopes": ["pets:read", "pets:write"],
                "source": "scope-authz"}),
        },
    ];
    for Case {
        config,
        earlier,
        extra,
        want,
    } in cases
    {
        let mut h = host("/pets", Some(&rs256(extra.clone())));
        if let Some(e) = earlier {
            h.properties
                .insert("apim_consumer".into(), e.as_bytes().to_vec());
        }
        assert_eq!(
            run(config, &mut State::new(config), &h),
            Action::Continue,
            "{extra}"
        );
        let id: Value = serde_json::from_slice(&h.published("apim_consumer").unwrap()).unwrap();
        assert_eq!(id, want, "{extra}");
    }
    // A plan claim that is not a plan name refuses the token.
    let h = host("/pets", Some(&rs256(json!({"plan": "gold\r\n"}))));
    assert_eq!(
        run(&with_plans, &mut State::new(&with_plans), &h),
        Action::Stop
    );
    assert_eq!(h.reply().unwrap().status, 401);
}

/// An earlier identity that does not decode, or a merged identity larger than
/// `MAX_IDENTITY_BYTES`, is refused (403 `identity_invalid`, counted): publishing would drop
/// the earlier identity's plan, or later filters would read no identity at all.
#[test]
fn an_identity_that_cannot_be_published_faithfully_is_refused() {
    let c = config(json!({"rules": rules()}));
    let big_scope = "s".repeat(kit::identity::MAX_IDENTITY_BYTES - 100);
    let near_limit = json!({"id": "bob", "plan": "silver", "scopes": [big_scope],
        "source": "api-key-auth"})
    .to_string();
    assert!(kit::identity::Identity::decode(near_limit.as_bytes()).is_some());
    for earlier in ["{not json", near_limit.as_str()] {
        let mut h = host("/pets", Some(&rs256(json!({"sub": "user-7"}))));
        h.properties
            .insert("apim_consumer".into(), earlier.as_bytes().to_vec());
        assert_eq!(
            run(&c, &mut State::new(&c), &h),
            Action::Stop,
            "{earlier:.20}"
        );
        let reply = h.reply().unwrap();
        assert_eq!(reply.status, 403);
        assert_eq!(body(&h)["code"], "identity_invalid");
        assert_eq!(h.counter("apim.scope_authz.denied.identity_invalid"), 1);
        assert_eq!(h.published("apim_consumer"), None, "nothing published");
    }
}

#[test]
fn the_token_is_stripped_from_where_it_was_found() {
    let t = rs256(json!({}));
    let sources = json!({"sources": ["bearer", {"header": "x-token"}, {"query": "access_token"}]});
    let c = config(sources.clone());
    let kept = {
        let mut raw = sources.clone();
        raw["strip_credential"] = json!(false);
        config(raw)
    };
    let bearer = format!("Bearer {t}");
    let two_schemes = format!("Basic dXNlcjpwdw==, bearer {t}");
    let query = format!("/pets?a=1&access_token={t}&b=2");
    // (config, headers, header changes)
    let cases: Vec<(&Config, Vec<(&str, &str)>, Vec<Call>)> = vec![
        (
            &c,
            vec![("authorization", &bearer)],
            vec![Call::RemoveHeader("authorization".into())],
        ),
        (
            &c,
            vec![("authorization", &two_schemes)],
            vec![Call::SetHeader(
                "authorization".into(),
                b"Basic dXNlcjpwdw==".to_vec(),
            )],
        ),
        (
            &c,
            vec![("x-token", &t)],
            vec![Call::RemoveHeader("x-token".into())],
        ),
        (
            &c,
            vec![(":path", &query)],
            vec![Call::SetHeader(":path".into(), b"/pets?a=1&b=2".to_vec())],
        ),
        (
            &c,
            vec![("x-token", &t), ("authorization", &bearer)],
            vec![
                Call::RemoveHeader("authorization".into()),
                Call::RemoveHeader("x-token".into()),
            ],
        ),
        (
            &kept,
            vec![("authorization", &bearer), ("x-token", &t)],
            vec![],
        ),
    ];
    for (config, headers, want) in cases {
        let mut h = MockHost::new(&[(":method", "GET")]);
        if !headers.iter().any(|(k, _)| *k == ":path") {
            h.headers.push((":path".into(), b"/pets".to_vec()));
        }
        for (k, v) in &headers {
            h.headers.push(((*k).into(), v.as_bytes().to_vec()));
        }
        h.now = NOW;
        assert_eq!(
            run(config, &mut State::new(config), &h),
            Action::Continue,
            "{headers:?}"
        );
        assert_eq!(h.header_changes(), want, "{headers:?}");
    }
}

#[test]
fn a_claim_that_would_put_control_bytes_in_a_header_is_refused_and_counted() {
    let c = cfg();
    let h = host(
        "/pets",
        Some(&rs256(json!({"sub": "alice
x-admin: 1"}))),
    );
    assert_eq!(run(&c, &mut State::new(&c), &h), Action::Stop);
    assert_eq!(h.reply().unwrap().status, 401);
    assert_eq!(body(&h)["code"], "invalid_token");
    assert_eq!(h.counter("apim.scope_authz.denied.unsafe_claim"), 1);
    assert!(h.header_changes().is_empty());
    // Mode metadata: the same check on jwt_authn's payload.
    let c = Config::parse(
        br#"{"mode":"metadata","metadata":{"payload_key":"jwt"},
            "forward_claims":[{"claim":"sub","header":"x-user"}]}"#,
    )
    .unwrap();
    let prefix = "metadata.filter_metadata.envoy.filters.http.jwt_authn.jwt";
    let mut h = host("/pets", None);
    h.properties.insert(
        format!("{prefix}.sub"),
        b"carol
x: 1"
            .to_vec(),
    );
    assert_eq!(run(&c, &mut State::new(&c), &h), Action::Stop);
    assert_eq!(h.reply().unwrap().status, 401);
    assert_eq!(h.counter("apim.scope_authz.denied.unsafe_claim"), 1);
}

#[test]
fn loosening_rules_never_match_an_ambiguous_path() {
    let c = config(json!({"rules": [
        {"match": {"path": {"prefix": "/public"}}, "skip": true},
        {"match": {"path": {"prefix": "/open"}}},
        {"match": {"path": {"prefix": "/strict"}}, "require": {"all_of": ["pets:read", "admin"]}}
    ], "default_require": {"all_of": ["pets:read"]}}));
    let read = rs256(json!({"scope": "pets:read"}));
    let other = rs256(json!({"scope": "other"}));
    /// A request on a path that may be ambiguous, and what the filter does with it.
    struct Case<'a> {
        path: &'a str,
        token: Option<&'a str>,
        /// 0: the request goes on
        status: u16,
        /// `path_ambiguous` counted
        ambiguous: i64,
    }
    let cases = vec![
        Case {
            path: "/public/x",
            token: None,
            status: 0,
            ambiguous: 0,
        },
        Case {
            path: "/public/..%2Fadmin/users",
            token: None,
            status: 401,
            ambiguous: 1,
        },
        Case {
            path: "/public/%2e%2e%2fadmin",
            token: None,
            status: 401,
            ambiguous: 1,
        },
        Case {
            path: "/public/..%5Cadmin",
            token: None,
            status: 401,
            ambiguous: 1,
        },
        Case {
            path: "/public//x",
            token: None,
            status: 401,
            ambiguous: 1,
        },
        Case {
            path: "/open/x",
            token: Some(&other),
            status: 0,
            ambiguous: 0,
        },
        Case {
            path: "/open/..%2Fadmin",
            token: Some(&other),
            status: 403,
            ambiguous: 1,
        },
        // A stricter rule still applies to an ambiguous path.
        Case {
            path: "/strict/..%2Fx",
            token: Some(&read),
            status: 403,
            ambiguous: 0,
        },
    ];
    for Case {
        path,
        token,
        status,
        ambiguous,
    } in cases
    {
        let h = host(path, token);
        let action = run(&c, &mut State::new(&c), &h);
        match status {
            0 => assert_eq!(action, Action::Continue, "{path}"),
            s => assert_eq!(h.reply().map(|r| r.status), Some(s), "{path}"),
        }
        assert_eq!(
            h.counter("apim.scope_authz.path_ambiguous"),
            ambiguous,
            "{path}"
        );
    }
}

/// `/pets/..;/admin` meets `/pets`'s rule normalised and `/admin`'s read as Tomcat reads it:
/// neither is known to be the one the backend serves, so the request is refused 400
/// `path_ambiguous` whatever the token holds, and counted. Readings that meet equal
/// requirements, or no rule, are no conflict.
#[test]
fn a_path_read_as_two_routes_is_refused() {
    let c = config(json!({"rules": [
        {"match": {"path": {"prefix": "/pets"}}, "require": {"all_of": ["pets:read"]}},
        {"match": {"path": {"prefix": "/admin"}}, "require": {"all_of": ["pets:read", "admin"]}},
        {"match": {"path": {"prefix": "/status"}}, "require": {"all_of": ["pets:read", "admin"]}}
    ], "default_require": {"all_of": ["pets:read"]}}));
    let read = rs256(json!({"scope": "pets:read"}));
    let admin = rs256(json!({"scope": "pets:read admin"}));
    /// A request and what the filter does with it.
    struct Case<'a> {
        path: &'a str,
        token: &'a str,
        /// 0: the request goes on
        status: u16,
        /// `denied.path_ambiguous` counted
        refused: i64,
    }
    let cases = [
        Case {
            path: "/pets/..;/admin",
            token: &read,
            status: 400,
            refused: 1,
        },
        Case {
            path: "/pets/..;/admin",
            token: &admin,
            status: 400,
            refused: 1,
        },
        Case {
            path: "/pets/..%2Fadmin/users",
            token: &read,
            status: 400,
            refused: 1,
        },
        Case {
            path: "/admin/..;/pets",
            token: &read,
            status: 400,
            refused: 1,
        },
        Case {
            path: "/pets/x",
            token: &read,
            status: 0,
            refused: 0,
        },
        Case {
            path: "/pets/..;/other",
            token: &read,
            status: 0,
            refused: 0,
        },
        Case {
            path: "/admin/..;/status",
            token: &admin,
            status: 0,
            refused: 0,
        },
        Case {
            path: "/admin/..;/status",
            token: &read,
            status: 403,
            refused: 0,
        },
    ];
    for case in cases {
        let path = case.path;
        let h = host(path, Some(case.token));
        let action = run(&c, &mut State::new(&c), &h);
        match case.status {
            0 => assert_eq!(action, Action::Continue, "{path}"),
            s => assert_eq!(h.reply().map(|r| r.status), Some(s), "{path}"),
        }
        if case.status == 400 {
            assert_eq!(body(&h)["code"], "path_ambiguous", "{path}");
        }
        assert_eq!(
            h.counter("apim.scope_authz.denied.path_ambiguous"),
            case.refused,
            "{path}"
        );
    }
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
            // Worded for the API key the caller used: no Bearer challenge, still counted.
            assert_eq!(h.reply().unwrap().status, want);
            assert_eq!(www(&h), "", "{identity} {path}");
            let b = body(&h);
            assert_eq!(b["code"], "insufficient_scope");
            assert_eq!(
                b["detail"],
                "The consumer's API key does not carry the scopes this route requires."
            );
            assert!(!b.to_string().contains("access token"), "{b}");
            assert_eq!(h.counter("apim.scope_authz.denied.insufficient_scope"), 1);
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
    // The same headers with a body after them (HTTP/2 DATA, no content-length): not a preflight.
    let counters = Counters::define(&h, &COUNTER_NAMES);
    let mut state = State::new(&c);
    assert_eq!(
        on_request_headers(&h, &c, &mut state, &counters, true),
        Action::Stop
    );
    // Nor with a method override a framework would obey.
    h.headers
        .push(("x-http-method-override".into(), b"DELETE".to_vec()));
    assert_eq!(run(&c, &mut State::new(&c), &h), Action::Stop);
    h.headers.retain(|(k, _)| k != "x-http-method-override");
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
        on_request_headers(&h, &c, &mut state, &counters, false);
    }
    assert_eq!(h.counter("apim.scope_authz.allowed"), 0);
    on_request_headers(&h, &c, &mut state, &counters, false);
    assert_eq!(h.counter("apim.scope_authz.allowed"), BATCH);
    on_request_headers(&h, &c, &mut state, &counters, false);
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
