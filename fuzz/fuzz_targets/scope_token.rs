//! scope-authz on a hostile token: JWT header/payload decoding, verification against a fixed
//! key set (the RSA/EC/Ed fixture JWKS and an HMAC secret), claim checks, scope rules, claim
//! forwarding, and the token cache.
//!
//! Input: a first byte `s` makes the rest `header JSON \n payload JSON`, signed here with the
//! HMAC provider's secret, so the fuzzer reaches the claim checks behind the signature; any
//! other input is a request (header lines) whose token is taken as sent.
#![no_main]

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use scope_authz::config::Config;
use scope_authz::handler::{on_request_headers, Counters, State, COUNTER_NAMES};
use scope_authz::token;

const JWKS: &str = include_str!("../../tests/integration/fixtures/scope-authz/jwks-1.json");
const SECRET: &[u8] = b"an-hmac-secret-of-32-bytes-long!";
const NOW: u64 = 1_800_000_000;

/// The config holds `Rc`s (not `Sync`): one per thread, built once and kept for the run.
fn config() -> &'static Config {
    thread_local! {
        static C: &'static Config = Box::leak(Box::new(build()));
    }
    C.with(|c| *c)
}

fn build() -> Config {
    {
        let json = format!(
            r#"{{
  "sources": ["bearer", {{"header": "x-token"}}, {{"query": "access_token"}}],
  "providers": [
    {{"name": "rsa", "issuer": "https://issuer.test", "audiences": ["api"],
      "algorithms": ["RS256", "PS256", "ES256", "EdDSA"], "jwks": {{"inline": {JWKS}}}}},
    {{"name": "hmac", "issuer": "https://hmac.test", "algorithms": ["HS256", "HS384"],
      "allow_hmac": true, "hmac_secret": "YW4taG1hYy1zZWNyZXQtb2YtMzItYnl0ZXMtbG9uZyE",
      "scope_claim": "realm.scopes", "required_claims": ["sub"]}}
  ],
  "rules": [
    {{"match": {{"path": {{"prefix": "/open"}}}}, "skip": true}},
    {{"match": {{"path": {{"prefix": "/admin"}}}}, "require": {{"all_of": ["admin"]}}}}
  ],
  "default_require": {{"any_of": ["pets:read", "pets:write"]}},
  "forward_claims": [{{"claim": "sub", "header": "x-sub"}}, {{"claim": "org.id", "header": "x-org"}}],
  "publish_claims": true
}}"#
        );
        Config::parse(json.as_bytes()).expect("fixed config")
    }
}

fn signed(data: &[u8]) -> Option<String> {
    let (header, payload) = apim_fuzz::first_line(data);
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let alg = match serde_json::from_slice::<serde_json::Value>(header)
        .ok()?
        .get("alg")
        .and_then(|a| a.as_str())
    {
        Some("HS384") => Algorithm::HS384,
        Some("HS512") => Algorithm::HS512,
        _ => Algorithm::HS256,
    };
    let message = format!("{}.{}", b64(header), b64(payload));
    let sig =
        jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(SECRET), alg)
            .ok()?;
    Some(format!("{message}.{sig}"))
}

fuzz_target!(|data: &[u8]| {
    let config = config();
    let headers = match data.split_first() {
        Some((b's', rest)) => {
            let Some(t) = signed(rest) else { return };
            vec![
                (":method".to_string(), b"GET".to_vec()),
                (":path".to_string(), b"/pets".to_vec()),
                (
                    "authorization".to_string(),
                    format!("Bearer {t}").into_bytes(),
                ),
            ]
        }
        _ => apim_fuzz::request(data).0,
    };

    let mut state = State::new(config);
    for (_, v) in headers.iter().filter(|(k, _)| k == "authorization") {
        if let Some(t) = std::str::from_utf8(v)
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            let _ = token::parse(t, config.max_token_bytes);
            let _ = token::verify(config, &state.keys, t, NOW);
        }
    }

    // Twice on one state: the second answer comes from the token cache and must not differ.
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let host = apim_fuzz::host(headers.clone());
        let counters = Counters::define(&host, &COUNTER_NAMES);
        let action = on_request_headers(&host, config, &mut state, &counters, false);
        apim_fuzz::assert_headers_safe(&host);
        apim_fuzz::assert_reply_sane(&host);
        outcomes.push((
            format!("{action:?}"),
            host.reply().map(|r| r.status),
            host.header_changes(),
        ));
    }
    assert_eq!(outcomes.first(), outcomes.get(1), "cached answer differs");
});
