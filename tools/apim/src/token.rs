//! `apim token mint`: demo access tokens for the scope-authz demo and tour.
//!
//! The default key is the demo issuer's private key shipped in `envoy/examples/demo-issuer/`
//! (DEMO ONLY: it is public, anyone can mint tokens with it). Its public half is the JWKS next
//! to it, which the demo gateway trusts for issuer `https://demo-issuer.apim.local`.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

const DEMO_KEY: &str =
    include_str!("../../../envoy/examples/demo-issuer/demo-issuer-DEMO-ONLY.pem");
pub const DEMO_ISSUER: &str = "https://demo-issuer.apim.local";
pub const DEMO_AUDIENCE: &str = "demo-api";
pub const DEMO_KID: &str = "demo-1";

pub fn mint(args: &[&str]) -> Result<String, String> {
    let mut scope = "pets:read".to_string();
    let mut sub = "demo-user".to_string();
    let mut aud = DEMO_AUDIENCE.to_string();
    let mut iss = DEMO_ISSUER.to_string();
    let mut kid = DEMO_KID.to_string();
    let mut ttl: i64 = 3600;
    let mut key_pem: Option<String> = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .to_string();
        match *flag {
            "--scope" => scope = value,
            "--sub" => sub = value,
            "--aud" => aud = value,
            "--iss" => iss = value,
            "--kid" => kid = value,
            "--ttl" => {
                ttl = value
                    .parse()
                    .map_err(|_| format!("--ttl: \"{value}\" is not a number of seconds"))?;
            }
            "--key" => {
                key_pem = Some(
                    std::fs::read_to_string(&value).map_err(|e| format!("reading {value}: {e}"))?,
                );
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let now = i64::try_from(now).map_err(|e| e.to_string())?;
    let claims = json!({
        "iss": iss, "aud": aud, "sub": sub, "scope": scope,
        "iat": now, "nbf": now, "exp": now.saturating_add(ttl),
    });
    let pem = key_pem.as_deref().unwrap_or(DEMO_KEY);
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| format!("key: {e}"))?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid);
    jsonwebtoken::encode(&header, &claims, &key).map_err(|e| format!("signing: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_against_the_demo_jwks() {
        let jwks = include_str!("../../../envoy/examples/demo-issuer/jwks.json");
        let config = format!(
            r#"{{"providers":[{{"name":"demo","issuer":"{DEMO_ISSUER}","audiences":["{DEMO_AUDIENCE}"],
                "algorithms":["RS256"],"jwks":{{"inline":{jwks}}}}}]}}"#
        );
        let config = scope_authz::config::Config::parse(config.as_bytes()).unwrap();
        let state = scope_authz::handler::State::new(&config);
        let t = mint(&["--scope", "pets:read pets:write", "--sub", "alice"]).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let v = scope_authz::token::verify(&config, &state.keys, &t, now).unwrap();
        assert_eq!(v.sub.as_deref(), Some("alice"));
        assert_eq!(v.scopes, ["pets:read", "pets:write"]);
        assert!(mint(&["--ttl", "x"]).is_err());
        assert!(mint(&["--bogus", "1"]).is_err());
    }
}
