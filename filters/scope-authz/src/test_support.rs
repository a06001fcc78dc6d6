//! Test tokens signed with the fixture keys of `tests/integration/fixtures/scope-authz`.

use crate::config::Config;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub const RSA1: &str = include_str!("../../../tests/integration/fixtures/scope-authz/rsa1.pem");
pub const RSA1_PUB: &str =
    include_str!("../../../tests/integration/fixtures/scope-authz/rsa1.pub.pem");
pub const RSA2: &str = include_str!("../../../tests/integration/fixtures/scope-authz/rsa2.pem");
pub const EC1: &str = include_str!("../../../tests/integration/fixtures/scope-authz/ec1.pem");
pub const ED1: &str = include_str!("../../../tests/integration/fixtures/scope-authz/ed1.pem");
pub const JWKS1: &str = include_str!("../../../tests/integration/fixtures/scope-authz/jwks-1.json");
pub const JWKS2: &str = include_str!("../../../tests/integration/fixtures/scope-authz/jwks-2.json");
/// 32 bytes, base64url: "an-hmac-secret-of-32-bytes-long!".
pub const HMAC_SECRET_B64: &str = "YW4taG1hYy1zZWNyZXQtb2YtMzItYnl0ZXMtbG9uZyE";
pub const NOW: u64 = 1_800_000_000;
pub const ISS: &str = "https://issuer.test";

pub fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(EC1.as_bytes()).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(ED1.as_bytes()).unwrap(),
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            EncodingKey::from_secret(b"an-hmac-secret-of-32-bytes-long!")
        }
        _ if kid == Some("rsa2") => EncodingKey::from_rsa_pem(RSA2.as_bytes()).unwrap(),
        _ => EncodingKey::from_rsa_pem(RSA1.as_bytes()).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// Standard claims valid at [`NOW`], merged with `extra`.
pub fn claims(extra: Value) -> Value {
    let mut c = json!({
        "iss": ISS, "aud": "api", "sub": "user-1", "exp": NOW + 3600, "iat": NOW - 10,
        "scope": "pets:read pets:write"
    });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    c
}

pub fn rs256(extra: Value) -> String {
    sign(Algorithm::RS256, Some("rsa1"), &claims(extra))
}

/// A provider with the inline fixture JWKS, plus `extra` top-level config fields.
pub fn config(extra: Value) -> Config {
    let mut c = json!({
        "providers": [{
            "name": "test", "issuer": ISS, "audiences": ["api"],
            "algorithms": ["RS256", "PS256", "ES256", "EdDSA"],
            "jwks": {"inline": serde_json::from_str::<Value>(JWKS1).unwrap()}
        }]
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    Config::parse(c.to_string().as_bytes()).unwrap()
}

/// Base64url without padding, for hand-made tokens.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
