//! A JWT (JWS compact serialization) checked against the configured providers.
//!
//! Order of checks: size, three base64url segments, header (`alg` known, never `none`, no
//! `crit`), payload JSON (bounded by the token size and serde_json's nesting limit), provider
//! by exact `iss`, `alg` in the provider's allow-list, a key that accepts that algorithm
//! (RSA keys never verify HS*), the signature, then `exp` (required), `nbf`, `iat`, `aud` and
//! the required claims. Scopes and forwarded claims are extracted once, here, so a cached token
//! costs nothing more.

use crate::config::{parse_algorithm, Config, Provider};
use crate::jwks::{KeySet, MAX_KEYS};
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use kit::identity::Identity;
use serde_json::{Map, Value};
use std::rc::Rc;

/// Most scopes a token may carry; more is refused rather than scanned.
pub const MAX_SCOPES: usize = 1024;
const MAX_HEADER_BYTES: usize = 2048;

/// What a verified token grants, computed once and cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub provider: usize,
    /// The key that verified the signature (its `Key::id`), with the token's `kid` and `alg`:
    /// when the provider's keys change, the cached grant stays only if that same key would
    /// still verify it.
    pub key: Rc<[u8]>,
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub exp: u64,
    pub sub: Option<String>,
    pub scopes: Vec<String>,
    /// One value per `Config::forward` entry; `None` when the claim is absent or not a
    /// string, number or boolean. Every value passed `kit::header_value::check`.
    pub forwarded: Vec<Option<String>>,
    /// The token's own identity (id `sub`, plan from `plan_claim` or the provider's `plan`),
    /// layered over an earlier filter's at request time.
    pub identity: Identity,
    /// `identity` encoded: the `apim_consumer` value when no earlier filter published one.
    pub identity_bytes: Vec<u8>,
    /// The `apim_claims` filter-state value (the payload), when `publish_claims` is set.
    pub claims: Option<Vec<u8>>,
}

/// The filter-state key of the verified claims (read by transform's `{{claim.*}}`).
pub const CLAIMS_PROPERTY: &str = kit::context::CLAIMS;

/// Why a token is refused. The description is safe to send: it never carries key material
/// or token content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    TooLarge,
    Malformed(&'static str),
    /// `alg` is `none`, unknown, or not allowed for the provider.
    Algorithm,
    UnknownIssuer,
    /// The provider's keys are not loaded yet (remote JWKS not fetched).
    NoKeys(usize),
    /// The token names a `kid` the provider's key set lacks.
    UnknownKid(usize),
    BadSignature,
    Expired,
    NotYetValid,
    IssuedInFuture,
    Audience,
    MissingClaim,
    TooManyScopes,
    /// A claim that is forwarded as a header holds control bytes or is too long for one.
    UnsafeClaim,
    /// The `plan_claim` holds something that is not a plan name.
    BadPlan,
    /// A token without `kid` whose signature none of the first `max_kidless_keys` keys
    /// verified while the issuer has more: not tried further.
    KidlessCapped,
}

impl TokenError {
    pub fn description(self) -> &'static str {
        match self {
            Self::TooLarge => "The token is larger than allowed.",
            Self::Malformed(what) => what,
            Self::Algorithm => "The token's signing algorithm is not accepted.",
            Self::UnknownIssuer => "The token's issuer is not accepted.",
            Self::NoKeys(_) => "The issuer's signing keys are not available yet.",
            Self::UnknownKid(_) => "The token's key id is not known.",
            Self::BadSignature => "The token's signature is invalid.",
            Self::Expired => "The token has expired.",
            Self::NotYetValid => "The token is not valid yet.",
            Self::IssuedInFuture => "The token's issue time is in the future.",
            Self::Audience => "The token is not meant for this audience.",
            Self::MissingClaim => "The token lacks a required claim.",
            Self::TooManyScopes => "The token carries too many scopes.",
            Self::UnsafeClaim => {
                "A claim forwarded as a header holds characters a header cannot carry."
            }
            Self::BadPlan => "The token's plan claim is not a valid plan name.",
            Self::KidlessCapped => {
                "The token names no key id and none of the keys tried verified it."
            }
        }
    }
}

fn b64url(segment: &str) -> Result<Vec<u8>, TokenError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed("The token is not valid base64url."))
}

/// The parts of a token read before its signature is checked.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
    /// `header.payload`, the signed bytes.
    pub message: &'a str,
    pub signature: &'a str,
}

pub fn parse(token: &str, max_bytes: usize) -> Result<Parsed<'_>, TokenError> {
    if token.len() > max_bytes {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed(
            "The token is not a JWS in compact form (three segments).",
        ));
    };
    if h.is_empty() || p.is_empty() || s.is_empty() {
        return Err(TokenError::Malformed("The token has an empty segment."));
    }
    if h.len() > MAX_HEADER_BYTES {
        return Err(TokenError::Malformed("The token's header is too large."));
    }
    let header: Value = serde_json::from_slice(&b64url(h)?)
        .map_err(|_| TokenError::Malformed("The token's header is not JSON."))?;
    let header = header.as_object().ok_or(TokenError::Malformed(
        "The token's header is not a JSON object.",
    ))?;
    if header.contains_key("crit") {
        return Err(TokenError::Malformed(
            "The token has critical header parameters.",
        ));
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(parse_algorithm)
        .ok_or(TokenError::Algorithm)?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) if k.len() <= 256 => Some(k.clone()),
        Some(_) => return Err(TokenError::Malformed("The token's key id is malformed.")),
    };
    let claims: Value = serde_json::from_slice(&b64url(p)?)
        .map_err(|_| TokenError::Malformed("The token's payload is not JSON."))?;
    let Value::Object(claims) = claims else {
        return Err(TokenError::Malformed(
            "The token's payload is not a JSON object.",
        ));
    };
    // Checked here so malformed signatures are refused before any key lookup.
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(TokenError::Malformed("The token is not valid base64url."));
    }
    let message = token.get(..h.len() + 1 + p.len()).unwrap_or_default();
    Ok(Parsed {
        alg,
        kid,
        claims,
        message,
        signature: s,
    })
}

/// A claim by dotted path.
pub fn claim<'a>(claims: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut v = claims.get(first)?;
    for name in rest {
        v = v.as_object()?.get(name)?;
    }
    Some(v)
}

fn numeric(v: Option<&Value>) -> Result<Option<u64>, TokenError> {
    match v {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else {
                match n.as_f64() {
                    Some(f) if (0.0..1e15).contains(&f) => Ok(Some(f as u64)),
                    _ => Err(TokenError::Malformed(
                        "A time claim is not a valid NumericDate.",
                    )),
                }
            }
        }
        Some(_) => Err(TokenError::Malformed("A time claim is not a number.")),
    }
}

/// Scopes from a claim value: a space-delimited string or an array of strings.
fn push_scopes(v: &Value, out: &mut Vec<String>) -> Result<(), TokenError> {
    let mut add = |s: &str| {
        if out.len() >= MAX_SCOPES {
            return Err(TokenError::TooManyScopes);
        }
        if !s.is_empty() && !out.iter().any(|x| x == s) {
            out.push(s.to_string());
        }
        Ok(())
    };
    match v {
        Value::String(s) => {
            for part in s.split(' ') {
                add(part)?;
            }
        }
        Value::Array(items) => {
            if items.len() > MAX_SCOPES {
                return Err(TokenError::TooManyScopes);
            }
            for item in items {
                if let Value::String(s) = item {
                    add(s)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

pub fn scopes(provider: &Provider, claims: &Map<String, Value>) -> Result<Vec<String>, TokenError> {
    let mut out = Vec::new();
    match &provider.scope_claim {
        Some(path) => {
            if let Some(v) = claim(claims, path) {
                push_scopes(v, &mut out)?;
            }
        }
        None => {
            for name in ["scope", "scp"] {
                if let Some(v) = claims.get(name) {
                    push_scopes(v, &mut out)?;
                }
            }
        }
    }
    Ok(out)
}

/// A claim value as a header value: strings, numbers and booleans (`Ok(None)` for other
/// types, which are not forwarded). A value `kit::header_value::check` refuses (control bytes,
/// too long) refuses the token: forwarding it would make Envoy fail the request after the
/// filter let it through, and dropping it silently would hide the claim from the upstream.
pub fn header_value(v: &Value) -> Result<Option<String>, TokenError> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return Ok(None),
    };
    kit::header_value::check(s.as_bytes()).map_err(|_| TokenError::UnsafeClaim)?;
    Ok(Some(s))
}

/// The token's plan: the `plan_claim` when the token carries it, else the provider's `plan`.
fn token_plan(
    provider: &Provider,
    claims: &Map<String, Value>,
) -> Result<Option<String>, TokenError> {
    if let Some(v) = provider.plan_claim.as_ref().and_then(|p| claim(claims, p)) {
        // The same rule as a plan named in any config (kit's label check).
        let root = kit::config_error::Field::root();
        return match v {
            Value::String(p) if kit::config_error::check_label(p, &root).is_ok() => {
                Ok(Some(p.clone()))
            }
            _ => Err(TokenError::BadPlan),
        };
    }
    Ok(provider.plan.clone())
}

/// Full verification of a token at `now` (Unix seconds); `keys[i]` is provider `i`'s key set
/// (`None` while a remote JWKS is not loaded).
pub fn verify(
    config: &Config,
    keys: &[Option<Rc<KeySet>>],
    token: &str,
    now: u64,
) -> Result<Verified, TokenError> {
    let parsed = parse(token, config.max_token_bytes)?;
    let iss = parsed
        .claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(TokenError::UnknownIssuer)?;
    let (index, provider) = config
        .providers
        .iter()
        .enumerate()
        .find(|(_, p)| p.issuer == iss)
        .ok_or(TokenError::UnknownIssuer)?;
    if !provider.algorithms.contains(&parsed.alg) {
        return Err(TokenError::Algorithm);
    }
    let set = keys
        .get(index)
        .and_then(Option::as_ref)
        .ok_or(TokenError::NoKeys(index))?;
    // Every key that may have signed it: those named by its `kid`, or, without a `kid`,
    // every key of the provider that accepts its algorithm. A key set holds at most
    // `MAX_KEYS` (+ the HMAC secret), which bounds the work.
    // Without a `kid`, at most `max_kidless_keys` of them (each try is a signature check an
    // attacker gets for free with a garbage signature).
    let cap = if parsed.kid.is_none() {
        config.max_kidless_keys.min(MAX_KEYS + 1)
    } else {
        MAX_KEYS + 1
    };
    let mut tried = 0;
    let mut verified_by = None;
    let mut capped = false;
    for key in set
        .candidates(parsed.kid.as_deref(), parsed.alg)
        .take(MAX_KEYS + 1)
    {
        if tried >= cap {
            capped = true;
            break;
        }
        tried += 1;
        if jsonwebtoken::crypto::verify(
            parsed.signature,
            parsed.message.as_bytes(),
            &key.key,
            parsed.alg,
        )
        .unwrap_or(false)
        {
            verified_by = Some(Rc::clone(&key.id));
            break;
        }
    }
    let Some(key) = verified_by else {
        return Err(match &parsed.kid {
            Some(kid) if tried == 0 && !set.has_kid(kid) => TokenError::UnknownKid(index),
            _ if capped => TokenError::KidlessCapped,
            _ => TokenError::BadSignature,
        });
    };
    let mut v = check_claims(config, index, provider, &parsed.claims, now)?;
    v.key = key;
    v.kid = parsed.kid;
    v.alg = parsed.alg;
    Ok(v)
}

fn check_claims(
    config: &Config,
    index: usize,
    provider: &Provider,
    claims: &Map<String, Value>,
    now: u64,
) -> Result<Verified, TokenError> {
    let leeway = provider.leeway;
    let exp = numeric(claims.get("exp"))?.ok_or(TokenError::MissingClaim)?;
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = numeric(claims.get("nbf"))? {
        if nbf > now.saturating_add(leeway) {
            return Err(TokenError::NotYetValid);
        }
    }
    if let Some(iat) = numeric(claims.get("iat"))? {
        if iat > now.saturating_add(leeway) {
            return Err(TokenError::IssuedInFuture);
        }
    }
    if !provider.audiences.is_empty() {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => provider.audiences.iter().any(|x| x == a),
            Some(Value::Array(list)) => list.iter().take(64).any(|a| {
                a.as_str()
                    .is_some_and(|a| provider.audiences.iter().any(|x| x == a))
            }),
            _ => false,
        };
        if !ok {
            return Err(TokenError::Audience);
        }
    }
    if provider
        .required_claims
        .iter()
        .any(|c| !claims.contains_key(c))
    {
        return Err(TokenError::MissingClaim);
    }
    let scopes = scopes(provider, claims)?;
    let sub = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => Some(s.clone()),
        _ => None,
    };
    let mut forwarded = Vec::with_capacity(config.forward.len());
    for f in &config.forward {
        forwarded.push(match claim(claims, &f.claim) {
            Some(v) => header_value(v)?,
            None => None,
        });
    }
    let identity = Identity {
        id: sub.clone().unwrap_or_default(),
        plan: token_plan(provider, claims)?,
        groups: Vec::new(),
        scopes: scopes.clone(),
        source: "scope-authz".into(),
    };
    let identity_bytes = identity.encode();
    let published = config
        .publish_claims
        .then(|| serde_json::to_vec(claims).ok())
        .flatten();
    Ok(Verified {
        provider: index,
        key: Rc::from(&b""[..]),
        kid: None,
        alg: Algorithm::RS256,
        exp,
        sub,
        scopes,
        forwarded,
        identity,
        identity_bytes,
        claims: published,
    })
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
