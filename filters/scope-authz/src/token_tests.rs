use super::*;
use crate::handler::State;
use crate::test_support::*;
use jsonwebtoken::Algorithm;
use serde_json::json;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn check(config: &Config, token: &str, now: u64) -> Result<Verified, TokenError> {
    let state = State::new(config);
    verify(config, &state.keys, token, now)
}

#[test]
fn valid_tokens_of_every_family_verify() {
    let c = config(json!({}));
    for (alg, kid) in [
        (Algorithm::RS256, Some("rsa1")),
        (Algorithm::PS256, Some("rsa1")),
        (Algorithm::RS256, None),
        (Algorithm::ES256, Some("ec1")),
        (Algorithm::EdDSA, Some("ed1")),
    ] {
        let t = sign(alg, kid, &claims(json!({})));
        let v = check(&c, &t, NOW).unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
        assert_eq!(v.sub.as_deref(), Some("user-1"));
        assert_eq!(v.scopes, ["pets:read", "pets:write"]);
        assert_eq!(v.exp, NOW + 3600);
        assert_eq!(
            std::str::from_utf8(&v.identity_bytes).unwrap(),
            r#"{"id":"user-1","scopes":["pets:read","pets:write"],"source":"scope-authz"}"#
        );
    }
}

#[test]
fn bad_tokens_are_refused_with_the_reason() {
    let c = config(json!({}));
    let header_none = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(claims(json!({})).to_string().as_bytes());
    let good = rs256(json!({}));
    let (gh, gp, gs) = {
        let mut it = good.split('.');
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    };
    let other_payload = b64(claims(json!({"sub": "mallory"})).to_string().as_bytes());
    // HS256 signed with the RSA public key's PEM bytes (the classic key-confusion attack).
    let confused = {
        let key = jsonwebtoken::EncodingKey::from_secret(RSA1_PUB.as_bytes());
        let mut h = jsonwebtoken::Header::new(Algorithm::HS256);
        h.kid = Some("rsa1".into());
        jsonwebtoken::encode(&h, &claims(json!({})), &key).unwrap()
    };
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let bomb = b64(format!(r#"{{"iss":"{ISS}","x":{deep}}}"#).as_bytes());
    let cases: Vec<(&str, String, TokenError)> = vec![
        (
            "expired",
            rs256(json!({"exp": NOW - 61})),
            TokenError::Expired,
        ),
        (
            "not yet valid",
            rs256(json!({"nbf": NOW + 61})),
            TokenError::NotYetValid,
        ),
        (
            "issued in future",
            rs256(json!({"iat": NOW + 3000})),
            TokenError::IssuedInFuture,
        ),
        (
            "wrong issuer",
            rs256(json!({"iss": "https://evil.test"})),
            TokenError::UnknownIssuer,
        ),
        (
            "no issuer",
            rs256(json!({"iss": null})),
            TokenError::UnknownIssuer,
        ),
        (
            "wrong audience",
            rs256(json!({"aud": "other"})),
            TokenError::Audience,
        ),
        (
            "no audience",
            rs256(json!({"aud": null})),
            TokenError::Audience,
        ),
        (
            "no exp",
            rs256(json!({"exp": null})),
            TokenError::MissingClaim,
        ),
        (
            "string exp",
            rs256(json!({"exp": "soon"})),
            TokenError::Malformed("A time claim is not a number."),
        ),
        (
            "alg none",
            format!("{header_none}.{payload}."),
            TokenError::Malformed("The token has an empty segment."),
        ),
        (
            "alg none signed",
            format!("{header_none}.{payload}.AAAA"),
            TokenError::Algorithm,
        ),
        ("HS256 with RSA public key", confused, TokenError::Algorithm),
        (
            "PS512 not allowed",
            sign(Algorithm::PS512, Some("rsa1"), &claims(json!({}))),
            TokenError::Algorithm,
        ),
        (
            "bad signature",
            format!("{gh}.{other_payload}.{gs}"),
            TokenError::BadSignature,
        ),
        (
            "unknown kid",
            sign(Algorithm::RS256, Some("rsa2"), &claims(json!({}))),
            TokenError::UnknownKid(0),
        ),
        (
            "kid of another family",
            sign(Algorithm::RS256, Some("ec1"), &claims(json!({}))),
            TokenError::BadSignature,
        ),
        (
            "two segments",
            format!("{gh}.{gp}"),
            TokenError::Malformed("The token is not a JWS in compact form (three segments)."),
        ),
        (
            "JWE-like",
            format!("{gh}.{gp}.{gs}.x.y"),
            TokenError::Malformed("The token is not a JWS in compact form (three segments)."),
        ),
        (
            "bad base64",
            format!("{gh}.{gp}!.{gs}"),
            TokenError::Malformed("The token is not valid base64url."),
        ),
        (
            "bad signature base64",
            format!("{gh}.{gp}.{gs}*"),
            TokenError::Malformed("The token is not valid base64url."),
        ),
        (
            "payload not JSON",
            format!("{gh}.{}.{gs}", b64(b"nope")),
            TokenError::Malformed("The token's payload is not JSON."),
        ),
        (
            "payload array",
            format!("{gh}.{}.{gs}", b64(b"[1]")),
            TokenError::Malformed("The token's payload is not a JSON object."),
        ),
        (
            "JSON bomb",
            format!("{gh}.{bomb}.{gs}"),
            TokenError::Malformed("The token's payload is not JSON."),
        ),
        (
            "crit header",
            format!("{}.{gp}.{gs}", b64(br#"{"alg":"RS256","crit":["x"]}"#)),
            TokenError::Malformed("The token has critical header parameters."),
        ),
        ("oversized", "a".repeat(8193), TokenError::TooLarge),
        (
            "too many scopes",
            rs256(json!({"scope": (0..1100).map(|i| i.to_string()).collect::<Vec<_>>().join(" ")})),
            TokenError::TooManyScopes,
        ),
    ];
    for (name, token, want) in cases {
        assert_eq!(check(&c, &token, NOW), Err(want), "{name}");
    }
}

#[test]
fn leeway_applies_to_exp_and_nbf() {
    let c = config(json!({}));
    assert!(check(&c, &rs256(json!({"exp": NOW - 59})), NOW).is_ok());
    assert!(check(&c, &rs256(json!({"nbf": NOW + 59})), NOW).is_ok());
    assert!(check(&c, &rs256(json!({"exp": (NOW + 10) as f64 + 0.5})), NOW).is_ok());
}

#[test]
fn no_keys_loaded_is_its_own_error() {
    let c = Config::parse(
        json!({"providers": [{"name": "r", "issuer": ISS, "algorithms": ["RS256"],
            "jwks": {"remote": {"cluster": "idp", "path": "/jwks"}}}]})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        check(&c, &rs256(json!({})), NOW),
        Err(TokenError::NoKeys(0))
    );
    let mut state = State::new(&c);
    state.set_keys(0, crate::jwks::KeySet::parse(JWKS1.as_bytes()).unwrap());
    assert!(verify(&c, &state.keys, &rs256(json!({})), NOW).is_ok());
}

#[test]
fn hmac_needs_the_inline_secret() {
    let c = Config::parse(
        json!({"providers": [{"name": "h", "issuer": ISS, "algorithms": ["HS256"],
            "allow_hmac": true, "hmac_secret": HMAC_SECRET_B64}]})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let t = sign(Algorithm::HS256, None, &claims(json!({})));
    assert!(check(&c, &t, NOW).is_ok());
    let t = sign(Algorithm::HS256, Some("any"), &claims(json!({})));
    assert!(check(&c, &t, NOW).is_ok());
    // An RS256 token is not accepted by an HMAC-only provider.
    assert_eq!(
        check(&c, &rs256(json!({})), NOW),
        Err(TokenError::Algorithm)
    );
}

#[test]
fn scopes_from_every_claim_shape() {
    let c = config(json!({}));
    let cases = [
        (json!({"scope": "a b  a"}), vec!["a", "b"]),
        (json!({"scope": null, "scp": ["x", "y", 3]}), vec!["x", "y"]),
        (json!({"scope": "a", "scp": "b c"}), vec!["a", "b", "c"]),
        (json!({"scope": null}), vec![]),
        (json!({"scope": {"nested": 1}}), vec![]),
    ];
    for (extra, want) in cases {
        let v = check(&c, &rs256(extra.clone()), NOW).unwrap();
        assert_eq!(v.scopes, want, "{extra}");
    }
    // A configured claim path replaces the defaults.
    let mut raw: Value = json!({
        "providers": [{"name": "t", "issuer": ISS, "algorithms": ["RS256"],
            "scope_claim": "realm_access.roles",
            "jwks": {"inline": serde_json::from_str::<Value>(JWKS1).unwrap()}}],
        "forward_claims": [{"claim": "realm_access.tenant", "header": "x-tenant"},
                           {"claim": "sub", "header": "x-sub"}]
    });
    let c = Config::parse(raw.to_string().as_bytes()).unwrap();
    let t = rs256(json!({"realm_access": {"roles": ["admin"], "tenant": 7}}));
    let v = check(&c, &t, NOW).unwrap();
    assert_eq!(v.scopes, ["admin"]);
    assert_eq!(
        v.forwarded,
        [Some("7".to_string()), Some("user-1".to_string())]
    );
    raw["providers"][0]["required_claims"] = json!(["tenant"]);
    let c = Config::parse(raw.to_string().as_bytes()).unwrap();
    assert_eq!(check(&c, &t, NOW), Err(TokenError::MissingClaim));
}

#[test]
fn descriptions_leak_nothing() {
    for e in [
        TokenError::BadSignature,
        TokenError::UnknownKid(0),
        TokenError::Algorithm,
        TokenError::TooLarge,
    ] {
        let d = e.description();
        assert!(!d.contains('"') && !d.contains('\\'), "{d}");
    }
}

/// A JWKS document whose keys are `keys` (by kid) taken from the two fixture documents, in
/// that order, each renamed to `kid`.
fn jwks_of(keys: &[(&str, &str)]) -> Value {
    let both: Vec<Value> = [JWKS1, JWKS2]
        .iter()
        .flat_map(|d| {
            serde_json::from_str::<Value>(d).unwrap()["keys"]
                .as_array()
                .unwrap()
                .clone()
        })
        .collect();
    let pick = |from: &str, kid: &str| {
        let mut k = both.iter().find(|k| k["kid"] == from).unwrap().clone();
        k["kid"] = kid.into();
        k
    };
    json!({"keys": keys.iter().map(|(from, kid)| pick(from, kid)).collect::<Vec<_>>()})
}

fn provider_with(jwks: Value, extra: Value) -> Config {
    let mut p = json!({"name": "t", "issuer": ISS, "audiences": ["api"], "algorithms": ["RS256"],
        "jwks": {"inline": jwks}});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    Config::parse(
        json!({"providers": [p], "forward_claims": [{"claim": "sub", "header": "x-sub"}]})
            .to_string()
            .as_bytes(),
    )
    .unwrap()
}

#[test]
fn a_kid_less_token_is_tried_against_every_key_of_its_algorithm() {
    // rsa1 (which signs) is the fifth RSA key, after four copies of rsa2 (which does not).
    let c = provider_with(
        jwks_of(&[
            ("rsa2", "a"),
            ("rsa2", "b"),
            ("ec1", "e"),
            ("rsa2", "c"),
            ("rsa2", "d"),
            ("rsa1", "signer"),
        ]),
        json!({}),
    );
    let kidless = sign(Algorithm::RS256, None, &claims(json!({})));
    let v = check(&c, &kidless, NOW).expect("the fifth key verifies");
    assert_eq!(v.kid, None);
    // Named by kid: only that key is tried; a kid-less token no key signed is refused.
    let named = sign(Algorithm::RS256, Some("signer"), &claims(json!({})));
    assert!(check(&c, &named, NOW).is_ok());
    let c = provider_with(jwks_of(&[("rsa2", "a"), ("rsa2", "b")]), json!({}));
    assert_eq!(check(&c, &kidless, NOW), Err(TokenError::BadSignature));
}

/// A kid-less token is tried against at most `max_kidless_keys` keys (default 8): a garbage
/// signature costs at most that many verifications, and the refusal says why.
#[test]
fn a_kid_less_token_is_tried_against_at_most_max_kidless_keys() {
    let mut keys: Vec<(&str, String)> = (0..9).map(|i| ("rsa2", format!("k{i}"))).collect();
    keys.push(("rsa1", "signer".to_string()));
    let refs: Vec<(&str, &str)> = keys.iter().map(|(f, k)| (*f, k.as_str())).collect();
    let jwks = jwks_of(&refs);
    let with = |cap: Option<usize>| {
        let mut raw = json!({"providers": [{"name": "t", "issuer": ISS, "audiences": ["api"],
            "algorithms": ["RS256"], "jwks": {"inline": jwks.clone()}}]});
        if let Some(cap) = cap {
            raw["max_kidless_keys"] = cap.into();
        }
        Config::parse(raw.to_string().as_bytes()).unwrap()
    };
    let kidless = sign(Algorithm::RS256, None, &claims(json!({})));
    // The signer is the tenth key: past the default cap of 8.
    assert_eq!(
        check(&with(None), &kidless, NOW),
        Err(TokenError::KidlessCapped)
    );
    assert!(check(&with(Some(10)), &kidless, NOW).is_ok());
    // A kid names its key whatever the cap.
    let named = sign(Algorithm::RS256, Some("signer"), &claims(json!({})));
    assert!(check(&with(Some(1)), &named, NOW).is_ok());
    // Fewer keys than the cap, none verifies: a bad signature, not a cap.
    let c = provider_with(jwks_of(&[("rsa2", "a"), ("rsa2", "b")]), json!({}));
    assert_eq!(check(&c, &kidless, NOW), Err(TokenError::BadSignature));
    for bad in [0, 66] {
        let raw = json!({"max_kidless_keys": bad, "providers": [{"name": "t", "issuer": ISS,
            "audiences": ["api"], "algorithms": ["RS256"], "jwks": {"inline": jwks.clone()}}]});
        let e = Config::parse(raw.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("max_kidless_keys: must be between 1 and 65"),
            "{e}"
        );
    }
}

#[test]
fn claims_with_control_bytes_refuse_the_token() {
    let c = provider_with(jwks_of(&[("rsa1", "rsa1")]), json!({}));
    let cases: Vec<(Value, Result<Option<&str>, TokenError>)> = vec![
        (json!("alice"), Ok(Some("alice"))),
        (json!("caf\u{e9} a\tb"), Ok(Some("caf\u{e9} a\tb"))),
        (json!(7), Ok(Some("7"))),
        (json!(["a"]), Ok(None)),
        (json!("alice\r\nx-admin: 1"), Err(TokenError::UnsafeClaim)),
        (json!("a\u{0}b"), Err(TokenError::UnsafeClaim)),
        (json!("a\u{7f}b"), Err(TokenError::UnsafeClaim)),
        (
            json!("x".repeat(kit::header_value::MAX_HEADER_VALUE + 1)),
            Err(TokenError::UnsafeClaim),
        ),
    ];
    for (sub, want) in cases {
        let t = sign(Algorithm::RS256, Some("rsa1"), &claims(json!({"sub": sub})));
        let c = Config {
            max_token_bytes: 64 * 1024,
            ..c.clone()
        };
        let got = check(&c, &t, NOW).map(|v| v.forwarded[0].clone());
        assert_eq!(got, want.map(|o| o.map(str::to_string)), "{sub}");
    }
}

#[test]
fn the_token_plan_comes_from_its_claim_or_its_issuer() {
    let jwks = || jwks_of(&[("rsa1", "rsa1")]);
    let plan = |c: &Config, extra: Value| check(c, &rs256(extra), NOW).map(|v| v.identity.plan);
    let none = provider_with(jwks(), json!({}));
    assert_eq!(
        plan(&none, json!({"plan": "gold"})),
        Ok(None),
        "no plan_claim: ignored"
    );
    let issuer = provider_with(jwks(), json!({"plan": "partner"}));
    assert_eq!(plan(&issuer, json!({})), Ok(Some("partner".into())));
    let claim = provider_with(jwks(), json!({"plan_claim": "org.plan", "plan": "partner"}));
    let cases: Vec<(Value, Result<Option<String>, TokenError>)> = vec![
        (json!({"org": {"plan": "gold"}}), Ok(Some("gold".into()))),
        (json!({}), Ok(Some("partner".into()))),
        (
            json!({"org": {"plan": "gold plan"}}),
            Err(TokenError::BadPlan),
        ),
        (json!({"org": {"plan": 3}}), Err(TokenError::BadPlan)),
        (json!({"org": {"plan": ""}}), Err(TokenError::BadPlan)),
    ];
    for (extra, want) in cases {
        assert_eq!(plan(&claim, extra.clone()), want, "{extra}");
    }
}

/// A cheap deterministic fuzz: single-byte changes, truncations and splices of a valid token
/// never panic and never verify (a change to the signed bytes or the signature is always
/// caught; base64url's unused trailing bits are the one change that can decode the same).
#[test]
fn mutated_tokens_never_verify() {
    let c = config(json!({}));
    let good = rs256(json!({}));
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \"{}";
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let bytes = good.as_bytes();
    for i in 0..600 {
        let mut t = bytes.to_vec();
        let at = (next() as usize) % t.len();
        match i % 3 {
            0 => t[at] = alphabet[(next() as usize) % alphabet.len()],
            1 => t.truncate(at),
            _ => {
                let from = (next() as usize) % t.len();
                let piece = t[from..].to_vec();
                t.splice(at..at, piece);
            }
        }
        let Ok(s) = String::from_utf8(t) else {
            continue;
        };
        if s == good {
            continue;
        }
        if let Ok(v) = check(&c, &s, NOW) {
            // Only a change confined to the last base64url character's unused bits decodes
            // to the same signed bytes and signature.
            let (a, b) = (s.rsplit_once('.').unwrap(), good.rsplit_once('.').unwrap());
            assert_eq!(a.0, b.0, "mutation {i} verified: {s}");
            assert_eq!(
                b64url(a.1).unwrap(),
                b64url(b.1).unwrap(),
                "mutation {i} verified: {s}"
            );
            assert_eq!(v.sub.as_deref(), Some("user-1"));
        }
    }
}
