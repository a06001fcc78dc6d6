use super::*;
use crate::test_support::{HMAC_SECRET_B64, JWKS1};
use serde_json::{json, Value};
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn jwks() -> Value {
    serde_json::from_str(JWKS1).unwrap()
}

fn base() -> Value {
    json!({"providers": [{"name": "idp", "issuer": "https://idp", "algorithms": ["RS256"],
        "jwks": {"inline": jwks()}}]})
}

fn with(path: &[&str], v: Value) -> String {
    let mut c = base();
    let mut at = &mut c;
    for (i, p) in path.iter().enumerate() {
        if i + 1 == path.len() {
            break;
        }
        at = if let Ok(n) = p.parse::<usize>() {
            &mut at[n]
        } else {
            &mut at[*p]
        };
    }
    let last = path.last().unwrap();
    if v.is_null() {
        at.as_object_mut().unwrap().remove(*last);
    } else {
        at[*last] = v;
    }
    c.to_string()
}

#[test]
fn defaults_are_safe() {
    let c = Config::parse(base().to_string().as_bytes()).unwrap();
    assert_eq!(c.realm, "apim");
    assert_eq!(c.sources, [Source::Bearer]);
    assert_eq!(c.max_token_bytes, 8192);
    assert_eq!(c.fetch, ["authorization"]);
    assert_eq!(c.default_rule, Rule::Require(Requirement::default()));
    assert!(c.consumer_scopes && c.publish_identity && !c.allow_cors_preflight);
    assert_eq!(c.providers[0].leeway, 60);
    assert_eq!(c.providers[0].inline_keys.as_ref().unwrap().len(), 3);
    assert!(c.metadata.is_none());
    assert!(c.strip_credential);
    assert_eq!(
        c.warnings,
        ["providers[0].audiences: empty, so provider \"idp\" accepts a token issued for any audience (aud is not checked); list this API's audience"]
    );
    let c =
        Config::parse(with(&["providers", "0", "audiences"], json!(["api"])).as_bytes()).unwrap();
    assert!(c.warnings.is_empty());
}

#[test]
fn a_requirement_implies_another_only_when_it_asks_at_least_as_much() {
    let r = |all: &[&str], any: &[&str]| Requirement {
        all_of: all.iter().map(|s| s.to_string()).collect(),
        any_of: any.iter().map(|s| s.to_string()).collect(),
    };
    // (self, other, self implies other)
    let cases = [
        (r(&[], &[]), r(&[], &[]), true),
        (r(&["a"], &[]), r(&[], &[]), true),
        (r(&[], &[]), r(&["a"], &[]), false),
        (r(&["a", "b"], &[]), r(&["a"], &[]), true),
        (r(&["b"], &[]), r(&["a"], &[]), false),
        (r(&["a"], &[]), r(&[], &["a", "b"]), true),
        (r(&[], &["a"]), r(&[], &["a", "b"]), true),
        (r(&[], &["a", "c"]), r(&[], &["a", "b"]), false),
        (r(&[], &["a", "b"]), r(&["a"], &[]), false),
        (r(&[], &["a"]), r(&["a"], &[]), true),
        (r(&["b"], &["a"]), r(&["a", "b"], &[]), true),
        (r(&[], &["a"]), r(&["a", "b"], &[]), false),
    ];
    for (i, (a, b, want)) in cases.iter().enumerate() {
        assert_eq!(a.implies(b), *want, "case {i}");
    }
}

#[test]
fn bad_configs_name_the_field() {
    let cases: Vec<(String, &str)> = vec![
        (r#"{"providers":[],"typo":1}"#.into(), "typo: unknown field `typo`"),
        ("{}".into(), "providers: at least one provider is needed"),
        (with(&["realm"], json!("a\"b")), "realm: must be 1-256 printable ASCII characters without quotes or backslashes"),
        (with(&["max_token_bytes"], json!(10)), "max_token_bytes: must be between 64 and 65536"),
        (with(&["cache_entries"], json!(1_000_000)), "cache_entries: must be at most 100000"),
        (with(&["sources"], json!([])), "sources: at least one token source is needed"),
        (with(&["sources"], json!(["bearer", "bearer"])), "sources[1]: duplicate token source"),
        (with(&["sources"], json!([{"header": "Cookie"}])), "sources[0].header: \"cookie\" cannot be a token header"),
        (with(&["sources"], json!([{"query": "a b"}])), "sources[0].query: \"a b\" is not a valid name"),
        (with(&["providers", "0", "algorithms"], json!([])), "providers[0].algorithms: list the accepted algorithms (e.g. [\"RS256\"])"),
        (with(&["providers", "0", "algorithms"], json!(["none"])), "providers[0].algorithms[0]: \"none\" is never accepted"),
        (with(&["providers", "0", "algorithms"], json!(["RS255"])), "providers[0].algorithms[0]: unknown algorithm \"RS255\" (RS256/384/512, PS256/384/512, ES256/384, EdDSA, HS256/384/512)"),
        (with(&["providers", "0", "algorithms"], json!(["RS256", "RS256"])), "providers[0].algorithms[1]: duplicate algorithm \"RS256\""),
        (with(&["providers", "0", "algorithms"], json!(["HS256"])), "providers[0].algorithms[0]: HS256 needs allow_hmac: true and an hmac_secret"),
        (with(&["providers", "0", "hmac_secret"], json!(HMAC_SECRET_B64)), "providers[0].hmac_secret: an HMAC secret needs allow_hmac: true"),
        (
            {
                let mut c = base();
                c["providers"][0]["allow_hmac"] = json!(true);
                c["providers"][0]["algorithms"] = json!(["RS256", "HS256"]);
                c["providers"][0]["hmac_secret"] = json!(HMAC_SECRET_B64);
                c["providers"][0]["jwks"] = json!({"remote": {"cluster": "idp", "path": "/j"}});
                c.to_string()
            },
            "providers[0].hmac_secret: cannot be combined with jwks.remote; use a separate provider",
        ),
        (with(&["providers", "0", "leeway_seconds"], json!(601)), "providers[0].leeway_seconds: must be at most 600"),
        (with(&["providers", "0", "jwks"], json!(null)), "providers[0].jwks: public-key algorithms need jwks (inline or remote)"),
        (with(&["providers", "0", "jwks"], json!({"inline": {"keys": []}})), "providers[0].jwks.inline: has no usable key"),
        (with(&["providers", "0", "jwks"], json!({"inline": {"k": []}})), "providers[0].jwks.inline: not a JWKS: no \"keys\" array"),
        (with(&["providers", "0", "jwks"], json!({"remote": {"cluster": "idp", "path": "jwks"}})), "providers[0].jwks.remote.path: \"jwks\" must start with '/'"),
        (with(&["providers", "0", "jwks"], json!({"remote": {"cluster": "idp", "path": "/j", "refresh_seconds": 0}})), "providers[0].jwks.remote.refresh_seconds: must be between 1 and 86400"),
        (with(&["providers", "0", "scope_claim"], json!("a..b")), "providers[0].scope_claim: \"a..b\" is not a claim path (names separated by '.', at most 8)"),
        (with(&["providers", "0", "name"], json!("a b")), "providers[0].name: \"a b\" must be 1-256 characters of letters, digits and . _ - ~ : @ + /"),
        (with(&["rules"], json!([{"skip": true, "require": {"all_of": ["a"]}}])), "rules[0].skip: a skipped route cannot also require scopes"),
        (with(&["rules"], json!([{"require": {"all_of": ["a b"]}}])), "rules[0].require.all_of[0]: \"a b\" is not a valid OAuth2 scope token"),
        (with(&["rules"], json!([{"match": {"path": {"prefix": "x"}}}])), "rules[0].match.path.prefix: \"x\" must start with '/'"),
        (with(&["rules"], json!([{"require": {"one_of": []}}])), "rules[0].require.one_of: unknown field `one_of`"),
        (with(&["forward_claims"], json!([{"claim": "sub", "header": "authorization"}])), "forward_claims[0].header: \"authorization\" cannot carry a claim"),
        (with(&["mode"], json!("metadata")), "metadata: mode \"metadata\" needs metadata.payload_key"),
        (with(&["metadata"], json!({"payload_key": "p"})), "metadata: only used with mode \"metadata\""),
        (json!({"mode": "metadata", "metadata": {"payload_key": "p"}, "providers": base()["providers"]}).to_string(), "providers: mode \"metadata\" verifies nothing: remove the providers"),
        (json!({"mode": "metadata", "metadata": {"payload_key": "p"}, "strip_credential": true}).to_string(), "strip_credential: not used in mode \"metadata\""),
        (with(&["providers", "0", "plan"], json!("gold plan")), "providers[0].plan: \"gold plan\" must be 1-256 characters"),
        (with(&["providers", "0", "plan_claim"], json!("a..b")), "providers[0].plan_claim: \"a..b\" is not a claim path"),
    ];
    for (input, want) in cases {
        let got = Config::parse(input.as_bytes()).unwrap_err().to_string();
        assert!(got.starts_with(want), "{input}\n got: {got}\nwant: {want}");
    }
    // Two providers with the same issuer.
    let mut c = base();
    let p = c["providers"][0].clone();
    let mut p2 = p.clone();
    p2["name"] = json!("other");
    c["providers"] = json!([p, p2]);
    assert_eq!(
        Config::parse(c.to_string().as_bytes())
            .unwrap_err()
            .to_string(),
        "providers[1].issuer: issuer \"https://idp\" is already configured"
    );
}

#[test]
fn good_configs_precompile() {
    let c = Config::parse(
        json!({
            "realm": "pets", "allow_cors_preflight": true,
            "sources": ["bearer", {"header": "X-Token"}, {"query": "access_token"}],
            "providers": [
                {"name": "a", "issuer": "https://a", "algorithms": ["RS256", "HS256"], "allow_hmac": true,
                 "hmac_secret": HMAC_SECRET_B64, "jwks": {"inline": jwks()}},
                {"name": "b", "issuer": "https://b", "algorithms": ["ES256"],
                 "jwks": {"remote": {"cluster": "idp", "path": "/jwks"}}}
            ],
            "rules": [
                {"match": {"path": {"prefix": "/public"}}, "skip": true},
                {"match": {"route_name": "write", "methods": ["POST"]}, "require": {"all_of": ["pets:write"]}}
            ]
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(c.fetch, ["authorization", "x-token", ":path", ":method"]);
    assert_eq!(c.providers[0].inline_keys.as_ref().unwrap().len(), 4);
    assert!(c.providers[1].inline_keys.is_none());
    let remotes: Vec<usize> = c.remote_providers().map(|(i, _)| i).collect();
    assert_eq!(remotes, [1]);
    let r = c.providers[1].remote.as_ref().unwrap();
    assert_eq!(
        (
            r.authority.as_str(),
            r.refresh_seconds,
            r.min_refetch_seconds
        ),
        ("idp", 300, 10)
    );
    assert!(c.rules.needs_route_name());
    let md =
        Config::parse(br#"{"mode":"metadata","metadata":{"payload_key":"jwt_payload"}}"#).unwrap();
    assert_eq!(
        md.metadata,
        Some(Metadata {
            namespace: "envoy.filters.http.jwt_authn".into(),
            payload_key: "jwt_payload".into()
        })
    );
}
