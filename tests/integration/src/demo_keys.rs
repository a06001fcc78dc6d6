//! The demo API keys (DEMO ONLY, also in the shipped examples): alice (plan gold, group
//! partners) and bob (plan silver) where the tests' api-key-auth configs list them, by their
//! SHA-256 digests `dc275ab1…` and `3ddaba5e…`.

/// Alice's demo key.
pub const ALICE: &str = "demo-key-alice-0123456789abcdef";
/// Bob's demo key.
pub const BOB: &str = "demo-key-bob-0123456789abcdef0";

/// A token from the demo issuer for `sub` with `scope` (RS256, kid `demo-1`, audience
/// `demo-api`), valid for 10 minutes; its DEMO-ONLY key ships in envoy/examples/demo-issuer/.
pub fn demo_token(sub: &str, scope: &str) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let pem = std::fs::read(
        crate::repo_root().join("envoy/examples/demo-issuer/demo-issuer-DEMO-ONLY.pem"),
    )
    .expect("the demo issuer's key");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("demo-1".into());
    let claims = serde_json::json!({"iss": "https://demo-issuer.apim.local", "aud": "demo-api",
        "sub": sub, "scope": scope, "iat": now, "exp": now + 600});
    let key = EncodingKey::from_rsa_pem(&pem).expect("the demo issuer's key is RSA PEM");
    jsonwebtoken::encode(&header, &claims, &key).expect("a signed token")
}
