//! End-to-end tests of the scope-authz module in the pinned Envoy. Tokens are signed here with
//! the fixture keys of `fixtures/scope-authz/`; the JWKS is served by the echo upstream
//! (`/jwks/<instance>/keys`, see `src/upstream/jwks.rs`) through a real Envoy cluster, so the
//! remote-JWKS path is what every test exercises: in Wasm a timer, `dispatch_http_call` and
//! shared data; natively root work through the config's scheduler and callouts
//! (`apim_native::root`) and process memory.
//!
//! Every test runs in every form (`for_each_form`), as does `adversarial_scope_authz.rs`, but
//! the `metadata` mode's, which runs in each Wasm form (`WASM_FORMS`: the native form refuses
//! it at load, which a test here checks by field). One Envoy per
//! config and form, shared via `PerForm`. Waits only bound hangs: a test polls for the state it
//! needs (keys loaded, key rotated) and fails after a deadline.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apim_integration::bootstrap::{
    bootstrap, discovered_filter, listener, node, upstream_cluster, Cluster, WasmFilter,
};
use apim_integration::chain::{for_each_form, for_forms, Chain, Filter, Form, PerForm, WASM_FORMS};
use apim_integration::{upstream_port, Envoy, Request, Response};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const RSA1: &str = include_str!("../fixtures/scope-authz/rsa1.pem");
const RSA2: &str = include_str!("../fixtures/scope-authz/rsa2.pem");
const RSA1_PUB: &str = include_str!("../fixtures/scope-authz/rsa1.pub.pem");
const ISS: &str = "https://issuer.test";
/// `jwks-1.json` on one line, for YAML single-quoted strings.
const JWKS_1_INLINE: &str = r#"{"keys": [{"kty": "RSA", "kid": "rsa1", "use": "sig", "n": "xp_lIfDjBiKiOfQTeskmnLhTV9kLLC4NSVC20_CAIgcHjTU-Vwd4lFd1mJBgBIzvs17rk962HtVXOAD_itLuP_A1HBpaQm9StKFpqoJeAzQoBLmPQMB9jQTdFICMtOItl9xAQPdjm4LUjoFVRIZFUUN6N60m0C_PQTLDdnDMSFMidU68H2TeFn3mti5uq91bFHz91TWWYnkmS4LjIE9lHuGUa4Iq3amLjZXslFzZdKZKsIKnNX5zb0vQKbz5XSEdXlohMz79Do1-_OXDjaDvaRaLufjvWudChMzA2B1rwqpqKAQ5DnSbYq1hT3RbxozJ3m3ct2lF2n6Mp7cas8IvwQ", "e": "AQAB"}, {"kty": "EC", "kid": "ec1", "crv": "P-256", "x": "pOY1-FW3uzf8hIm9Z9oslFpbl2IwbmqttI4MnyBF8TE", "y": "CCOwh5JxntIXFP7_9oZYbbAZIkhrUJYnI3wKG5bpctY"}, {"kty": "OKP", "kid": "ed1", "crv": "Ed25519", "x": "lHSo9SQb3FkCC89nXUaQQr8AeRINaenuO3YDqMC6An4"}]}"#;
const ALICE: &str = "demo-key-alice-0123456789abcdef";
const BOB: &str = "demo-key-bob-0123456789abcdef0";

/// scope-authz on `main`: bearer, `x-token` header and `access_token` query sources; remote
/// JWKS from the `{{INSTANCE}}` instance, refreshed every `{{REFRESH}}` seconds.
const MAIN_SCOPE_AUTHZ: &str = r#"{
  "realm": "pets",
  "sources": ["bearer", {"header": "x-token"}, {"query": "access_token"}],
  "providers": [{
    "name": "test", "issuer": "https://issuer.test", "audiences": ["api"],
    "algorithms": ["RS256", "ES256", "EdDSA"],
    "jwks": {"remote": {"cluster": "upstream", "path": "/jwks/{{INSTANCE}}/keys",
                        "refresh_seconds": {{REFRESH}}, "min_refetch_seconds": 1,
                        "timeout_ms": 1000}}
  }],
  "rules": [
    {"match": {"path": {"prefix": "/public"}}, "skip": true},
    {"match": {"path": {"prefix": "/write"}}, "require": {"all_of": ["pets:write"]}},
    {"match": {"path": {"prefix": "/read"}}, "require": {"all_of": ["pets:read"]}}
  ],
  "forward_claims": [{"claim": "sub", "header": "x-user"}]
}
"#;

/// api-key-auth on `keys`: alice (pets:read pets:write), bob (pets:read).
const KEYS_API_KEY_AUTH: &str = r#"{"consumers": [
  {"id": "alice", "plan": "gold", "scopes": ["pets:read", "pets:write"],
   "keys": [{"sha256": "dc275ab1c4bc17899cdfff16563da508be4c9275589ce936577f52f0512f22bb"}]},
  {"id": "bob", "plan": "silver", "scopes": ["pets:read"],
   "keys": [{"sha256": "3ddaba5e842f5e66e7dfbc3a318416be5097ae49ffe348fbf2c6f9e815a2df26"}]}
]}
"#;

/// scope-authz on `keys`: the same provider as `main`'s.
const KEYS_SCOPE_AUTHZ: &str = r#"{
  "providers": [{
    "name": "test", "issuer": "https://issuer.test", "algorithms": ["RS256"],
    "jwks": {"remote": {"cluster": "upstream", "path": "/jwks/{{INSTANCE}}/keys",
                        "min_refetch_seconds": 1}}
  }],
  "rules": [{"match": {"path": {"prefix": "/write"}}, "require": {"all_of": ["pets:write"]}}]
}
"#;

/// The cluster of the echo upstream (which also serves the JWKS), as these tests had it.
fn upstream() -> Cluster {
    upstream_cluster("upstream").connect_timeout("1s").untyped()
}

/// `main`: [`MAIN_SCOPE_AUTHZ`]; the route copies the published identity into
/// `x-filter-state`. `keys`: [`KEYS_API_KEY_AUTH`] then [`KEYS_SCOPE_AUTHZ`]. Each chain in
/// VMs of its own; the JWKS from the echo upstream's instance `instance`.
fn config(form: Form, instance: &str, refresh: u32) -> String {
    let fill = |json: &str| {
        json.replace("{{INSTANCE}}", instance)
            .replace("{{REFRESH}}", &refresh.to_string())
    };
    let main = listener("main", "upstream")
        .request_header_to_add("x-filter-state", "%FILTER_STATE(wasm.apim_consumer:PLAIN)%")
        .chain(
            &Chain::new()
                .filter(Filter::ScopeAuthz, &fill(MAIN_SCOPE_AUTHZ))
                .vm("main"),
            form,
        );
    let keys = listener("keys", "upstream").chain(
        &Chain::new()
            .filter(Filter::ApiKeyAuth, KEYS_API_KEY_AUTH)
            .filter(Filter::ScopeAuthz, &fill(KEYS_SCOPE_AUTHZ))
            .vm("keys"),
        form,
    );
    bootstrap(&[main, keys], &[upstream()])
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&h, claims, key).unwrap()
}

fn claims(extra: Value) -> Value {
    let mut c = json!({"iss": ISS, "aud": "api", "sub": "user-1", "exp": now() + 3600,
        "iat": now() - 5, "scope": "pets:read"});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn token(extra: Value) -> String {
    let key = EncodingKey::from_rsa_pem(RSA1.as_bytes()).unwrap();
    sign(Algorithm::RS256, Some("rsa1"), &key, &claims(extra))
}

fn control(path: &str) {
    let r = Request::get(path).send(upstream_port()).unwrap();
    assert_eq!(r.status, 200, "{path}: {}", r.text());
}

fn hits(instance: &str) -> u64 {
    let r = Request::get(&format!("/jwks/{instance}/hits"))
        .send(upstream_port())
        .unwrap();
    r.text().trim().parse().unwrap()
}

/// Sends until `done` holds, or fails with the last response and Envoy's log.
fn poll(
    envoy: &Envoy,
    what: &str,
    send: impl Fn() -> Response,
    done: impl Fn(&Response) -> bool,
) -> Response {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = send();
        if done(&r) {
            return r;
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: last response {} {}\n{}",
                r.status,
                r.text(),
                envoy.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bearer(port: u16, path: &str, t: &str) -> Response {
    Request::get(path)
        .header("authorization", &format!("Bearer {t}"))
        .send(port)
        .unwrap()
}

/// The echo upstream's JWKS instance `base` for `form`'s Envoy: each form's Envoys read (and
/// the tests rotate or take down) an instance of their own.
fn instance(form: Form, base: &str) -> String {
    format!("{base}-{form:?}").to_lowercase()
}

/// The shared Envoy of `form`, with its keys loaded.
fn shared(form: Form) -> &'static Envoy {
    static ENVOYS: PerForm = PerForm::new();
    ENVOYS.get(form, |form| {
        let envoy = Envoy::start(&config(form, &instance(form, "main"), 300)).unwrap();
        let t = token(json!({}));
        let port = envoy.port();
        poll(
            &envoy,
            "keys loaded",
            || bearer(port, "/x", &t),
            |r| r.status == 200,
        );
        envoy
    })
}

fn www(r: &Response) -> String {
    r.header("www-authenticate").unwrap_or_default().to_string()
}

fn assert_invalid(r: &Response, description: &str) {
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        www(r),
        format!(
            "Bearer realm=\"pets\", error=\"invalid_token\", error_description=\"{description}\""
        )
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["code"], "invalid_token");
}

#[test]
fn valid_token_reaches_upstream_with_identity_and_claims() {
    for_each_form(|form| {
        let envoy = shared(form);
        let r = bearer(envoy.port(), "/read", &token(json!({"sub": "alice"})));
        assert_eq!(r.status, 200, "{}", r.text());
        let headers = r.json()["headers"].clone();
        let get = |n: &str| {
            headers
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h[0] == n)
                .map(|h| h[1].as_str().unwrap().to_string())
        };
        assert_eq!(get("x-user").as_deref(), Some("alice"));
        assert_eq!(
            get("x-filter-state").as_deref(),
            Some(r#"{"id":"alice","scopes":["pets:read"],"source":"scope-authz"}"#)
        );
        // A forged x-user from the client never reaches the upstream.
        let r = Request::get("/read")
            .header(
                "authorization",
                &format!("Bearer {}", token(json!({"sub": null}))),
            )
            .header("x-user", "root")
            .send(envoy.port())
            .unwrap();
        assert_eq!(r.status, 200);
        assert!(!r.text().contains("root"), "{}", r.text());
    });
}

#[test]
fn missing_token_gets_a_bare_bearer_challenge() {
    for_each_form(|form| {
        let envoy = shared(form);
        let r = Request::get("/read").send(envoy.port()).unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(www(&r), "Bearer realm=\"pets\"");
        assert_eq!(r.json()["code"], "missing_token");
        // Skipped routes need nothing.
        assert_eq!(
            Request::get("/public/x").send(envoy.port()).unwrap().status,
            200
        );
    });
}

#[test]
fn bad_tokens_are_refused() {
    for_each_form(|form| {
        let envoy = shared(form);
        let port = envoy.port();
        let good = token(json!({}));
        let parts: Vec<&str> = good.split('.').collect();
        let b64 = |v: &Value| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let forged_payload = b64(&claims(json!({"scope": "pets:read pets:write"})));
        let none_header = b64(&json!({"alg": "none", "typ": "JWT"}));
        let confused = sign(
            Algorithm::HS256,
            Some("rsa1"),
            &EncodingKey::from_secret(RSA1_PUB.as_bytes()),
            &claims(json!({})),
        );
        let cases: Vec<(&str, String, &str)> = vec![
            (
                "expired",
                token(json!({"exp": now() - 3600})),
                "The token has expired.",
            ),
            (
                "not yet valid",
                token(json!({"nbf": now() + 3600})),
                "The token is not valid yet.",
            ),
            (
                "wrong issuer",
                token(json!({"iss": "https://evil.test"})),
                "The token's issuer is not accepted.",
            ),
            (
                "wrong audience",
                token(json!({"aud": "other"})),
                "The token is not meant for this audience.",
            ),
            (
                "bad signature",
                format!("{}.{}.{}", parts[0], forged_payload, parts[2]),
                "The token's signature is invalid.",
            ),
            (
                "alg none",
                format!("{none_header}.{}.AAAA", parts[1]),
                "The token's signing algorithm is not accepted.",
            ),
            (
                "HS256 with the RSA public key",
                confused,
                "The token's signing algorithm is not accepted.",
            ),
            (
                "malformed segments",
                format!("{}.{}", parts[0], parts[1]),
                "The token is not a JWS in compact form (three segments).",
            ),
            (
                "bad base64",
                format!("{}.{}$.{}", parts[0], parts[1], parts[2]),
                "The token is not valid base64url.",
            ),
            (
                "oversized",
                format!("{}.{}.{}", parts[0], "A".repeat(9000), parts[2]),
                "The token is larger than allowed.",
            ),
        ];
        for (name, t, description) in cases {
            let r = bearer(port, "/read", &t);
            assert_invalid(&r, description);
            assert!(!r.text().contains(&t), "{name}: token echoed");
        }
    });
}

#[test]
fn token_in_query_and_two_different_tokens() {
    for_each_form(|form| {
        let envoy = shared(form);
        let t = token(json!({}));
        let r = Request::get(&format!("/read?access_token={t}"))
            .send(envoy.port())
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let r = Request::get("/read")
            .header("x-token", &t)
            .send(envoy.port())
            .unwrap();
        assert_eq!(r.status, 200);
        // The same token twice is fine; two different ones are not.
        let r = Request::get(&format!("/read?access_token={t}"))
            .header("authorization", &format!("Bearer {t}"))
            .send(envoy.port())
            .unwrap();
        assert_eq!(r.status, 200);
        let other = token(json!({"sub": "other"}));
        let r = Request::get(&format!("/read?access_token={other}"))
            .header("authorization", &format!("Bearer {t}"))
            .send(envoy.port())
            .unwrap();
        assert_eq!(r.status, 400);
        assert!(www(&r).contains("error=\"invalid_request\""), "{}", www(&r));
    });
}

#[test]
fn scopes_present_absent_and_substring() {
    for_each_form(|form| {
        let envoy = shared(form);
        let port = envoy.port();
        let cases = [
            ("pets:read pets:write", 200),
            ("pets:read", 403),
            ("pets:writer xpets:write pets:write:all", 403),
            ("", 403),
        ];
        for (scope, status) in cases {
            let r = bearer(port, "/write", &token(json!({"scope": scope})));
            assert_eq!(r.status, status, "{scope:?}: {}", r.text());
            if status == 403 {
                assert_eq!(
                    www(&r),
                    "Bearer realm=\"pets\", error=\"insufficient_scope\", scope=\"pets:write\""
                );
                assert_eq!(r.json()["code"], "insufficient_scope");
            }
        }
        // `scp` as an array works too.
        let r = bearer(
            port,
            "/write",
            &token(json!({"scope": null, "scp": ["pets:write"]})),
        );
        assert_eq!(r.status, 200);
    });
}

#[test]
fn api_key_consumer_with_and_without_the_scope() {
    for_each_form(|form| {
        let envoy = shared(form);
        let port = envoy.listener_port("keys").unwrap();
        let send = |key: &str, path: &str| {
            Request::get(path)
                .header("x-api-key", key)
                .send(port)
                .unwrap()
        };
        assert_eq!(send(ALICE, "/write").status, 200);
        let r = send(BOB, "/write");
        assert_eq!(r.status, 403);
        // Worded for the API key bob presented (issue 13): no Bearer challenge, no "access token";
        // still counted as insufficient_scope.
        assert_eq!(r.header("www-authenticate"), None, "{}", r.text());
        assert_eq!(r.json()["code"], "insufficient_scope");
        assert_eq!(
            r.json()["detail"],
            "The consumer's API key does not carry the scopes this route requires."
        );
        assert!(!r.text().contains("access token"), "{}", r.text());
        assert!(envoy.count("wasmcustom.apim.scope_authz.denied.insufficient_scope") >= 1);
        assert_eq!(send(BOB, "/read").status, 200);
    });
}

#[test]
fn unknown_kid_then_key_rotation() {
    for_each_form(|form| {
        let envoy = shared(form);
        let key2 = EncodingKey::from_rsa_pem(RSA2.as_bytes()).unwrap();
        let t = sign(Algorithm::RS256, Some("rsa2"), &key2, &claims(json!({})));
        let r = bearer(envoy.port(), "/read", &t);
        assert_invalid(&r, "The token's key id is not known.");
        control(&format!("/jwks/{}/rotate/2", instance(form, "main")));
        // The unknown kid triggers a (rate-limited) re-fetch; the rotated set then verifies it.
        poll(
            envoy,
            "rotated key accepted",
            || bearer(envoy.port(), "/read", &t),
            |r| r.status == 200,
        );
        // The old key still works (it is in the new set too).
        assert_eq!(bearer(envoy.port(), "/read", &token(json!({}))).status, 200);
    });
}

#[test]
fn jwks_down_at_start_then_up_then_down_again() {
    for_each_form(|form| {
        let flaky = instance(form, "flaky");
        control(&format!("/jwks/{flaky}/down"));
        let envoy = Envoy::start(&config(form, &flaky, 1)).unwrap();
        let t = token(json!({}));
        let port = envoy.port();
        // Fail closed while no keys are loaded: 503 with Retry-After, after at least one attempt.
        poll(
            &envoy,
            "a fetch attempt",
            || bearer(port, "/read", &t),
            |_| hits(&flaky) >= 1,
        );
        let r = bearer(port, "/read", &t);
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(r.header("retry-after"), Some("5"));
        assert_eq!(r.json()["code"], "keys_unavailable");
        control(&format!("/jwks/{flaky}/up"));
        poll(
            &envoy,
            "keys loaded after the endpoint came up",
            || bearer(port, "/read", &t),
            |r| r.status == 200,
        );
        // Down again later: refreshes fail (refresh_seconds 1), the loaded keys stay in use.
        control(&format!("/jwks/{flaky}/down"));
        let before = hits(&flaky);
        poll(
            &envoy,
            "failed refreshes",
            || bearer(port, "/read", &t),
            |_| hits(&flaky) >= before + 2,
        );
        let fresh = token(json!({"sub": "fresh"}));
        assert_eq!(bearer(port, "/read", &fresh).status, 200);
        let failed = envoy
            .counter("wasmcustom.apim.scope_authz.jwks_fetch_failed")
            .unwrap_or(0);
        assert!(failed >= 2, "jwks_fetch_failed = {failed}");
        control(&format!("/jwks/{flaky}/up"));
    });
}

/// Exact counter deltas on an Envoy of its own (one worker, nothing else sending): the
/// common path (allowed, cache hits) is counted in batches flushed by the 500 ms timer, so the
/// test waits (bounded) for the exact values; an overshoot never matches and fails.
#[test]
fn counters_move() {
    for_each_form(|form| {
        let server = JwksServer::start(JWKS_1);
        let envoy = own_jwks_envoy(form, &server, "counters_", 3600, 1);
        let port = envoy.port();
        let t = token(json!({"sub": "counted"}));
        poll(
            &envoy,
            "keys loaded",
            || bearer(port, "/x", &t),
            |r| r.status == 200,
        );
        // Listener `b` (its own vm_id) only settles its fetch.
        let b = envoy.listener_port("b").unwrap();
        poll(
            &envoy,
            "keys loaded (b)",
            || bearer(b, "/x", &t),
            |r| r.status == 200,
        );
        let get = |n: &str| wasm_counter(&envoy, n);
        // Each load ends with one allowed request (a verification, no cache hit).
        wait_until(&envoy, "the loads' requests counted", || {
            get("allowed") == 2
        });
        let (missing, unavailable) = (get("denied.missing"), get("denied.keys_unavailable"));
        for _ in 0..3 {
            assert_eq!(bearer(port, "/x", &t).status, 200);
        }
        assert_eq!(Request::get("/x").send(port).unwrap().status, 401);
        let other = token(json!({"sub": "other", "scope": ""}));
        assert_eq!(bearer(port, "/x", &other).status, 200);
        wait_until(&envoy, "batched counters flushed", || {
            get("allowed") == 6 && get("cache_hit") == 3
        });
        assert_eq!(get("denied.missing"), missing + 1);
        assert_eq!(get("denied.keys_unavailable"), unavailable);
        assert_eq!(get("jwks_fetch"), 2, "one per vm_id (two listeners)");
        assert_eq!(server.hits(), 2);
    });
}

/// Mode `metadata`: Envoy's `jwt_authn` verifies (local JWKS, `payload_in_metadata`), the
/// filter reads `sub` and `scope` from dynamic metadata and applies its rules.
/// Envoy's `jwt_authn` in front: verifies with the inline JWKS `jwks`, puts the payload in the
/// dynamic metadata, lets requests without a token through.
fn jwt_authn(jwks: &str) -> String {
    format!(
        r#"- name: envoy.filters.http.jwt_authn
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
    providers:
      test:
        issuer: https://issuer.test
        audiences: [api]
        payload_in_metadata: jwt_payload
        local_jwks:
          inline_string: '{jwks}'
    rules:
    - match: {{prefix: /}}
      requires: {{requires_any: {{requirements: [{{provider_name: test}}, {{allow_missing: {{}}}}]}}}}
"#
    )
}

/// [`jwt_authn`], then scope-authz reading the payload it left.
fn metadata_config(form: Form) -> String {
    let main = listener("main", "upstream").chain(
        &Chain::new()
            .other(jwt_authn(JWKS_1_INLINE))
            .filter(
                Filter::ScopeAuthz,
                r#"{"realm": "pets", "mode": "metadata", "metadata": {"payload_key": "jwt_payload"},
 "rules": [{"match": {"path": {"prefix": "/write"}}, "require": {"all_of": ["pets:write"]}}],
 "forward_claims": [{"claim": "sub", "header": "x-user"}]}
"#,
            )
            .vm("metadata"),
        form,
    );
    bootstrap(&[main], &[upstream()])
}

#[test]
fn metadata_mode_trusts_jwt_authn() {
    // scope-authz's `metadata` mode: refused by the native form at load (see
    // `metadata_mode_is_refused_in_the_native_forms_by_field`): Wasm forms.
    for_forms(&WASM_FORMS, |form| {
        let envoy = Envoy::start(&metadata_config(form)).unwrap();
        let port = envoy.port();
        let r = bearer(
            port,
            "/write",
            &token(json!({"sub": "meta", "scope": "pets:read pets:write"})),
        );
        assert_eq!(r.status, 200, "{}\n{}", r.text(), envoy.log());
        assert!(r.text().contains(r#"["x-user","meta"]"#), "{}", r.text());
        let r = bearer(port, "/write", &token(json!({})));
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(www(&r).contains("insufficient_scope"));
        // A claim with control bytes is refused here too (item 8), before any header is set.
        let r = bearer(
            port,
            "/write",
            &token(json!({"sub": "meta\r\nx-admin: 1", "scope": "pets:write"})),
        );
        assert_eq!(r.status, 401, "{}", r.text());
        assert_eq!(r.json()["code"], "invalid_token");
        assert_eq!(
            envoy.counter("wasmcustom.apim.scope_authz.denied.unsafe_claim"),
            Some(1)
        );
        // No token: jwt_authn lets it through (allow_missing), the filter answers 401.
        let r = Request::get("/write").send(port).unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(www(&r), "Bearer realm=\"pets\"");
    });
}

// ---------------------------------------------------------------------------------------------
// Issue 10: identities, stripping, key rotation, fetch counts, config pushes.

/// api-key-auth of the layered chain: bob (plan silver); `/token-only` skipped.
const LAYERED_API_KEY_AUTH: &str = r#"{"consumers": [
  {"id": "bob", "plan": "silver", "scopes": ["pets:read"],
   "keys": [{"sha256": "3ddaba5e842f5e66e7dfbc3a318416be5097ae49ffe348fbf2c6f9e815a2df26"}]}
],
"rules": [{"match": {"path": {"prefix": "/token-only"}}, "skip": true}]}
"#;

/// api-key-auth ([`LAYERED_API_KEY_AUTH`]) then scope-authz configured with `scope_authz`
/// (JSON), whose provider has no `audiences` (warned at load). The config uses no field the old
/// filter lacked, so the tests below fail on it for the behaviour, not the config. The route
/// copies the published identity into `x-filter-state` for the upstream.
fn layered_config(form: Form, scope_authz: &str) -> String {
    let main = listener("main", "upstream")
        .request_header_to_add("x-filter-state", "%FILTER_STATE(wasm.apim_consumer:PLAIN)%")
        .chain(
            &Chain::new()
                .filter(Filter::ApiKeyAuth, LAYERED_API_KEY_AUTH)
                .filter(Filter::ScopeAuthz, scope_authz)
                .vm("layered"),
            form,
        );
    bootstrap(&[main], &[upstream()])
}

fn layered(form: Form) -> &'static Envoy {
    static ENVOYS: PerForm = PerForm::new();
    ENVOYS.get(form, |form| {
        let jwks: Value = serde_json::from_str(JWKS_1_INLINE).unwrap();
        let config = json!({
            "providers": [{"name": "test", "issuer": ISS, "algorithms": ["RS256"],
                           "jwks": {"inline": jwks}}],
            "sources": ["bearer", {"query": "access_token"}]
        });
        Envoy::start(&layered_config(form, &config.to_string())).unwrap()
    })
}

/// What the upstream received in header `name` (from the echo body).
fn seen(r: &Response, name: &str) -> Vec<String> {
    r.json()["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0] == name)
        .map(|h| h[1].as_str().unwrap().to_string())
        .collect()
}

/// Issue 10, item 5: a token adds to the API-key identity and never drops its plan.
#[test]
fn a_token_never_moves_a_key_holder_to_another_plan() {
    for_each_form(|form| {
        let envoy = layered(form);
        let port = envoy.port();
        let t = token(json!({"sub": "user-7", "plan": "gold"}));
        let r = Request::get("/pets")
            .header("x-api-key", BOB)
            .header("authorization", &format!("Bearer {t}"))
            .send(port)
            .unwrap();
        assert_eq!(r.status, 200, "{}\n{}", r.text(), envoy.log());
        let id: Value = serde_json::from_str(&seen(&r, "x-filter-state")[0]).unwrap();
        assert_eq!(
            id,
            json!({"id": "bob", "plan": "silver", "scopes": ["pets:read"],
                   "source": "api-key-auth+scope-authz"}),
            "what quota and the upstream see"
        );
        // Without an API key, the token's identity as it is (no `plan_claim` configured here: the
        // token's `plan` claim means nothing; see the unit tests for `plan_claim` and `plan`).
        let r = bearer(port, "/token-only", &t);
        assert_eq!(r.status, 200, "{}", r.text());
        let id: Value = serde_json::from_str(&seen(&r, "x-filter-state")[0]).unwrap();
        assert_eq!(
            id,
            json!({"id": "user-7", "scopes": ["pets:read"], "source": "scope-authz"})
        );
        // Issue 10, item 11: a provider without audiences is warned about at load.
        envoy
            .wait_for_log("scope-authz: providers[0].audiences: empty, so provider \"test\" accepts a token issued for any audience")
            .unwrap();
    });
}

/// Issue 10, item 11: the verified token is not forwarded (`strip_credential`, default true),
/// from the `Authorization` header or the query string.
#[test]
fn the_upstream_never_sees_the_bearer_token() {
    for_each_form(|form| {
        let envoy = layered(form);
        let t = token(json!({}));
        let r = Request::get("/token-only/pets?a=1")
            .header("authorization", &format!("Bearer {t}"))
            .send(envoy.port())
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(seen(&r, "authorization").is_empty(), "{}", r.text());
        assert!(!r.text().contains(&t));
        let r = Request::get(&format!("/token-only/pets?access_token={t}&a=1"))
            .send(envoy.port())
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["path"], "/token-only/pets?a=1");
        assert!(!r.text().contains(&t));
    });
}

/// A JWKS endpoint this test controls: the document it serves and how often it was asked.
struct JwksServer {
    port: u16,
    doc: std::sync::Arc<std::sync::Mutex<String>>,
    hits: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl JwksServer {
    fn start(doc: &str) -> JwksServer {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let doc = std::sync::Arc::new(std::sync::Mutex::new(doc.to_string()));
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (d, h) = (doc.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let body = d.lock().unwrap().clone();
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        JwksServer { port, doc, hits }
    }

    fn serve(&self, doc: &str) {
        *self.doc.lock().unwrap() = doc.to_string();
    }

    fn hits(&self) -> u64 {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Two listeners, each with scope-authz in its own VM (`<vm>a`, `<vm>b`), both reading
/// the JWKS from the test's own server (cluster `jwks`).
fn own_jwks_config(form: Form, jwks_port: u16, vm: &str, scope_authz: &str) -> String {
    let listener_with_vm = |name: &str| {
        listener(name, "upstream").chain(
            &Chain::new()
                .filter(Filter::ScopeAuthz, scope_authz)
                .vm(&format!("{vm}{name}")),
            form,
        )
    };
    bootstrap(
        &[listener_with_vm("a"), listener_with_vm("b")],
        &[
            upstream(),
            upstream_cluster("jwks")
                .port(jwks_port)
                .connect_timeout("1s")
                .untyped(),
        ],
    )
}

const JWKS_1: &str = include_str!("../fixtures/scope-authz/jwks-1.json");
const JWKS_2: &str = include_str!("../fixtures/scope-authz/jwks-2.json");

fn own_jwks_envoy(form: Form, server: &JwksServer, vm: &str, refresh: u64, workers: u32) -> Envoy {
    let config = json!({
        "realm": "pets",
        "providers": [{"name": "test", "issuer": ISS, "audiences": ["api"], "algorithms": ["RS256"],
            "jwks": {"remote": {"cluster": "jwks", "path": "/keys", "refresh_seconds": refresh,
                                "min_refetch_seconds": 1, "timeout_ms": 1000}}}]
    });
    Envoy::builder()
        .concurrency(workers)
        .start(&own_jwks_config(form, server.port, vm, &config.to_string()))
        .unwrap()
}

fn wasm_counter(envoy: &Envoy, name: &str) -> u64 {
    envoy
        .counter(&format!("wasmcustom.apim.scope_authz.{name}"))
        .unwrap_or(0)
}

/// A key rotated away from the JWKS stops verifying the tokens it signed, cached or not; the
/// tokens of the key that stays keep working. The refresh is observed, not waited for: the
/// test polls (bounded) until the JWKS server was asked again and the filter counted a change.
#[test]
fn a_key_rotated_away_stops_verifying_its_cached_tokens() {
    for_each_form(|form| {
        let server = JwksServer::start(JWKS_2);
        // One worker: once it refuses the old token it holds the new keys, so every later request
        // is decided by them (with two, the other worker installs them at its own next tick).
        let envoy = own_jwks_envoy(form, &server, "rotation_", 1, 1);
        let port = envoy.port();
        let key2 = EncodingKey::from_rsa_pem(RSA2.as_bytes()).unwrap();
        let old = sign(
            Algorithm::RS256,
            Some("rsa2"),
            &key2,
            &claims(json!({"sub": "old"})),
        );
        let kept = token(json!({"sub": "kept"}));
        poll(
            &envoy,
            "keys loaded",
            || bearer(port, "/x", &old),
            |r| r.status == 200,
        );
        // Both cached.
        for _ in 0..8 {
            assert_eq!(bearer(port, "/x", &old).status, 200);
            assert_eq!(bearer(port, "/x", &kept).status, 200);
        }
        let (hits, changed) = (server.hits(), wasm_counter(&envoy, "jwks_keys_changed"));
        server.serve(JWKS_1);
        poll(
            &envoy,
            "a refetch installed the rotated keys",
            || bearer(port, "/public", &kept),
            |_| server.hits() > hits && wasm_counter(&envoy, "jwks_keys_changed") > changed,
        );
        let r = poll(
            &envoy,
            "the old key's token refused",
            || bearer(port, "/x", &old),
            |r| r.status == 401,
        );
        assert_eq!(r.json()["code"], "invalid_token");
        assert!(
            www(&r).contains("The token's key id is not known."),
            "{}",
            www(&r)
        );
        for _ in 0..8 {
            assert_eq!(bearer(port, "/x", &old).status, 401);
            assert_eq!(bearer(port, "/x", &kept).status, 200);
        }
    });
}

/// Two vm_ids with two workers each (plus Envoy's main thread) read one JWKS: shared data and
/// the fetch lease make that exactly one fetch per vm_id, counted by the JWKS server itself
/// and by the filter.
#[test]
fn one_jwks_fetch_per_vm_id() {
    for_each_form(|form| {
        let server = JwksServer::start(JWKS_1);
        let envoy = own_jwks_envoy(form, &server, "once_", 3600, 2);
        let t = token(json!({}));
        for listener in ["a", "b"] {
            let port = envoy.listener_port(listener).unwrap();
            poll(
                &envoy,
                listener,
                || bearer(port, "/x", &t),
                |r| r.status == 200,
            );
        }
        // Every worker of both listeners has the keys (a worker without them would answer 503).
        let unavailable = wasm_counter(&envoy, "denied.keys_unavailable");
        for listener in ["a", "b"] {
            let port = envoy.listener_port(listener).unwrap();
            for i in 0..20 {
                let r = bearer(port, "/x", &token(json!({"sub": format!("u{i}")})));
                assert_eq!(r.status, 200, "{listener}: {}", r.text());
            }
        }
        assert_eq!(server.hits(), 2, "JWKS requests");
        assert_eq!(wasm_counter(&envoy, "jwks_fetch"), 2, "jwks_fetch counter");
        assert_eq!(wasm_counter(&envoy, "denied.keys_unavailable"), unavailable);
    });
}

/// scope-authz configured with `filter_config`, as the ECDS resource delivers it.
fn ecds_filter(form: Form, filter_config: &str) -> WasmFilter {
    Chain::new()
        .filter(Filter::ScopeAuthz, filter_config)
        .vm("ecds")
        .wasm_filter(form)
}

/// scope-authz's config delivered through ECDS (a watched file, as a control plane pushes it).
fn ecds_bootstrap(form: Form, ecds_path: &std::path::Path, jwks_port: u16) -> String {
    let main = listener("main", "upstream")
        .stat_prefix("ingress")
        .filter(discovered_filter(ecds_filter(form, "{}").name(), ecds_path));
    format!(
        "{}{}",
        node("reload-test"),
        bootstrap(
            &[main],
            &[
                upstream_cluster("upstream").untyped(),
                upstream_cluster("jwks").port(jwks_port).untyped(),
            ]
        )
    )
}

fn publish_ecds(form: Form, path: &std::path::Path, realm: &str) {
    let config = json!({
        "realm": realm,
        "providers": [{"name": "test", "issuer": ISS, "audiences": ["api"], "algorithms": ["RS256"],
            "jwks": {"remote": {"cluster": "jwks", "path": "/keys", "refresh_seconds": 3600,
                                "min_refetch_seconds": 1}}}]
    });
    let rendered =
        apim_integration::render(&ecds_filter(form, &config.to_string()).ecds_resource()).unwrap();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, rendered).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Issue 10, item 11: a config push keeps the keys already fetched when the provider's JWKS
/// source is the same (no `keys_unavailable` until the next timer tick, no new fetch).
#[test]
fn a_config_push_keeps_the_fetched_keys() {
    for_each_form(|form| {
        // The discovery stats are named after the filter.
        let stat = format!(
            "extension_config_discovery.http_filter.{}.update_success",
            ecds_filter(form, "{}").name()
        );
        let server = JwksServer::start(JWKS_1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scope_authz.ecds.yaml");
        publish_ecds(form, &path, "v1");
        let envoy = Envoy::start(&ecds_bootstrap(form, &path, server.port)).unwrap();
        let port = envoy.port();
        let t = token(json!({}));
        poll(
            &envoy,
            "keys loaded",
            || bearer(port, "/x", &t),
            |r| r.status == 200,
        );
        let hits = server.hits();
        for realm in ["v2", "v3"] {
            let updates = envoy.counter(&stat).unwrap_or(0);
            publish_ecds(form, &path, realm);
            // The new config is in use once a request without a token names the new realm.
            poll(
                &envoy,
                "config pushed",
                || Request::get("/x").send(port).unwrap(),
                |r| envoy.counter(&stat).unwrap_or(0) > updates && www(r).contains(realm),
            );
            let unavailable = wasm_counter(&envoy, "denied.keys_unavailable");
            for i in 0..10 {
                let r = bearer(port, "/x", &token(json!({"sub": format!("{realm}-{i}")})));
                assert_eq!(r.status, 200, "{realm}: {}\n{}", r.text(), envoy.log());
            }
            assert_eq!(wasm_counter(&envoy, "denied.keys_unavailable"), unavailable);
        }
        assert_eq!(server.hits(), hits, "no new fetch for an unchanged source");
    });
}

/// Polls a condition on counters only (no request: a request could itself change the state
/// under test); the deadline only bounds a hang.
fn wait_until(envoy: &Envoy, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "{what}\n{}", envoy.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 10, item 11: a token naming an unknown `kid` triggers a re-fetch, and a re-fetch that
/// brings the same keys flushes nothing: the cached token stays a cache hit. One worker, so
/// the token's cache entry and the re-fetch are on the same worker; the test waits for the
/// filter's own `jwks_fetch` counter (counted when the fetched keys are installed).
#[test]
fn an_unknown_kid_refetches_without_flushing_the_cache() {
    for_each_form(|form| {
        let server = JwksServer::start(JWKS_1);
        let config = json!({
            "providers": [{"name": "test", "issuer": ISS, "audiences": ["api"], "algorithms": ["RS256"],
                "jwks": {"remote": {"cluster": "jwks", "path": "/keys", "refresh_seconds": 3600,
                                    "min_refetch_seconds": 1}}}]
        });
        let envoy = Envoy::builder()
            .concurrency(1)
            .start(&own_jwks_config(
                form,
                server.port,
                "kid_",
                &config.to_string(),
            ))
            .unwrap();
        let port = envoy.port();
        let t = token(json!({"sub": "cached"}));
        poll(
            &envoy,
            "keys loaded",
            || bearer(port, "/x", &t),
            |r| r.status == 200,
        );
        // Two listeners, two vm_ids: two fetches at start (listener `b` only settles the count).
        let b = envoy.listener_port("b").unwrap();
        poll(
            &envoy,
            "keys loaded (b)",
            || bearer(b, "/x", &t),
            |r| r.status == 200,
        );
        let hits = || wasm_counter(&envoy, "cache_hit");
        let fetches = wasm_counter(&envoy, "jwks_fetch");
        let loaded = server.hits();
        let key2 = EncodingKey::from_rsa_pem(RSA2.as_bytes()).unwrap();
        let unknown = sign(Algorithm::RS256, Some("rsa2"), &key2, &claims(json!({})));
        let r = bearer(port, "/x", &unknown);
        assert_eq!(r.status, 401);
        assert!(www(&r).contains("The token's key id is not known."));
        wait_until(&envoy, "the unknown kid's re-fetch", || {
            wasm_counter(&envoy, "jwks_fetch") > fetches
        });
        let before = hits();
        assert_eq!(bearer(port, "/x", &t).status, 200);
        wait_until(&envoy, "the cached token was a cache hit", || {
            hits() > before
        });
        assert_eq!(server.hits(), loaded + 1, "one re-fetch");
    });
}

/// Issue 10, item 5: the token's own plan (`plan_claim`, else the issuer's `plan`) applies only
/// when no earlier filter set one.
#[test]
fn a_token_plan_applies_only_without_an_earlier_plan() {
    for_each_form(|form| {
        let jwks: Value = serde_json::from_str(JWKS_1_INLINE).unwrap();
        let config = json!({
            "providers": [{"name": "test", "issuer": ISS, "audiences": ["api"], "algorithms": ["RS256"],
                           "plan_claim": "org.plan", "plan": "partner", "jwks": {"inline": jwks}}]
        });
        let envoy = Envoy::start(&layered_config(form, &config.to_string())).unwrap();
        let port = envoy.port();
        let identity = |r: &Response| -> Value {
            assert_eq!(r.status, 200, "{}", r.text());
            serde_json::from_str(&seen(r, "x-filter-state")[0]).unwrap()
        };
        let gold = token(json!({"sub": "user-7", "org": {"plan": "gold"}}));
        let plain = token(json!({"sub": "user-8"}));
        let id = identity(&bearer(port, "/token-only", &gold));
        assert_eq!(
            (id["id"].as_str(), id["plan"].as_str()),
            (Some("user-7"), Some("gold"))
        );
        let id = identity(&bearer(port, "/token-only", &plain));
        assert_eq!(
            (id["id"].as_str(), id["plan"].as_str()),
            (Some("user-8"), Some("partner"))
        );
        let r = Request::get("/pets")
            .header("x-api-key", BOB)
            .header("authorization", &format!("Bearer {gold}"))
            .send(port)
            .unwrap();
        let id = identity(&r);
        assert_eq!(
            (id["id"].as_str(), id["plan"].as_str()),
            (Some("bob"), Some("silver"))
        );
        // A plan claim that is not a plan name refuses the token.
        let bad = token(json!({"org": {"plan": "gold\r\nx: 1"}}));
        let r = bearer(port, "/token-only", &bad);
        assert_eq!(r.status, 401, "{}", r.text());
        assert!(www(&r).contains("The token's plan claim is not a valid plan name."));
    });
}

#[test]
fn metadata_mode_is_refused_in_the_native_forms_by_field() {
    for_forms(&[Form::Native, Form::NativeSuite], |form| {
        let log = Envoy::start_expect_failure(&metadata_config(form)).unwrap();
        assert!(
            log.contains(&format!(
                "{}mode: \"metadata\" (jwt_authn's payload from dynamic metadata) is not supported in the native form yet",
                form.refusal_prefix(Filter::ScopeAuthz)
            )),
            "{log}"
        );
        assert!(
            log.contains(&form.load_failure(Filter::ScopeAuthz)),
            "{log}"
        );
    });
}
