//! `apim token mint`: demo access tokens for the scope-authz demo and tour.
//!
//! The default key is the demo issuer's private key shipped in `envoy/examples/demo-issuer/`
//! (DEMO ONLY: it is public, anyone can mint tokens with it). Its public half is the JWKS next
//! to it, which the demo gateway trusts for issuer `https://demo-issuer.apim.local`.

use crate::cli::MintArgs;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

const DEMO_KEY: &str =
    include_str!("../../../envoy/examples/demo-issuer/demo-issuer-DEMO-ONLY.pem");
pub const DEMO_ISSUER: &str = "https://demo-issuer.apim.local";
pub const DEMO_AUDIENCE: &str = "demo-api";
pub const DEMO_KID: &str = "demo-1";

pub fn mint(args: &MintArgs) -> Result<String, String> {
    let key_pem = match &args.key {
        Some(path) => {
            Some(std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?)
        }
        None => None,
    };
    let (scope, sub, aud, iss, kid, ttl) = (
        &args.scope,
        &args.sub,
        &args.aud,
        &args.iss,
        args.kid.clone(),
        args.ttl,
    );
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
    use clap::Parser as _;

    #[test]
    fn minted_tokens_verify_against_the_demo_jwks() {
        let jwks = include_str!("../../../envoy/examples/demo-issuer/jwks.json");
        let config = format!(
            r#"{{"providers":[{{"name":"demo","issuer":"{DEMO_ISSUER}","audiences":["{DEMO_AUDIENCE}"],
                "algorithms":["RS256"],"jwks":{{"inline":{jwks}}}}}]}}"#
        );
        let config = scope_authz::config::Config::parse(config.as_bytes()).unwrap();
        let state = scope_authz::handler::State::new(&config);
        let args = |extra: &[&str]| {
            let mut argv = vec!["apim", "token", "mint"];
            argv.extend_from_slice(extra);
            match crate::cli::Cli::try_parse_from(argv).unwrap().command {
                crate::cli::Command::Token(crate::cli::TokenCommand::Mint(a)) => a,
                other => panic!("{other:?}"),
            }
        };
        let t = mint(&args(&[
            "--scope",
            "pets:read pets:write",
            "--sub",
            "alice",
        ]))
        .unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let v = scope_authz::token::verify(&config, &state.keys, &t, now).unwrap();
        assert_eq!(v.sub.as_deref(), Some("alice"));
        assert_eq!(v.scopes, ["pets:read", "pets:write"]);
        let missing = args(&["--key", "/nonexistent.pem"]);
        assert!(mint(&missing).unwrap_err().contains("/nonexistent.pem"));
    }
}
