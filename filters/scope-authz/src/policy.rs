//! Pure decisions: where the token is, and the RFC 6750 §3 denials.
//!
//! - No credential: 401 with `WWW-Authenticate: Bearer realm="…"` and no error code.
//! - Two different tokens, or a token in several places: 400 `error="invalid_request"`.
//! - A bad token: 401 `error="invalid_token"` with a fixed description (never token or key
//!   content).
//! - A missing scope: 403 `error="insufficient_scope", scope="<what would do>"` for a token
//!   caller; a caller let in by an API-key consumer (no token presented) gets the same 403 and
//!   code without a Bearer challenge, worded for the key it used ([`consumer_insufficient`]).
//! - Keys not loaded (remote JWKS not fetched yet): 503, fail closed, with `Retry-After`.
//!
//! Bodies are problem+json, rendered by `kit::denial`.

use crate::config::{Config, Requirement, Source};
use crate::token::TokenError;
use kit::denial::Denial;
use kit::query::query_values;
use kit::request::RequestHead;
use serde_json::json;

/// Most credentials looked at in one request.
const MAX_CANDIDATES: usize = 8;

/// Why a request was refused; the handler counts by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    Missing,
    Ambiguous,
    Invalid,
    Expired,
    UnknownKid,
    KeysUnavailable,
    InsufficientScope,
    /// A claim to forward as a header would carry control bytes (or is too long for one).
    UnsafeClaim,
    /// A token without `kid` not verified by the first `max_kidless_keys` keys.
    KidlessCapped,
    /// The identity to publish cannot be: an earlier filter's does not decode, or the merged
    /// one would exceed `kit::identity::MAX_IDENTITY_BYTES`.
    IdentityInvalid,
    /// The path's readings meet rules that require different scopes
    /// ([`kit::matcher::Lookup::conflict`]): which applies depends on the backend.
    PathAmbiguous,
}

impl DenyReason {
    pub const ALL: [DenyReason; 10] = [
        Self::Missing,
        Self::Ambiguous,
        Self::Invalid,
        Self::Expired,
        Self::UnknownKid,
        Self::KeysUnavailable,
        Self::InsufficientScope,
        Self::UnsafeClaim,
        Self::KidlessCapped,
        Self::IdentityInvalid,
    ];
}

/// Where the one token was found: the token, and the indexes (in `Config::sources`) of every
/// source that held a copy, so `strip_credential` removes each copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    None,
    Token { token: String, sources: Vec<usize> },
}

/// Finds the token in the configured sources. Identical copies count once; different ones are
/// refused, and so are more than [`MAX_CANDIDATES`] copies in all: every copy is looked at or the
/// request is refused, so no second token can hide behind the first ones.
pub fn find_token(config: &Config, head: &RequestHead) -> Result<Found, (DenyReason, Denial)> {
    let mut found: Vec<String> = Vec::new();
    let copies = core::cell::Cell::new(0usize);
    // Returns false once there are too many copies to look at.
    let mut add = |t: &str| -> bool {
        copies.set(copies.get() + 1);
        let t = t.trim();
        if !t.is_empty() && !found.iter().any(|x| x == t) {
            found.push(t.to_string());
        }
        copies.get() <= MAX_CANDIDATES
    };
    let mut within_bounds = true;
    let mut holding: Vec<usize> = Vec::new();
    for (index, source) in config.sources.iter().enumerate() {
        let before = copies.get();
        match source {
            Source::Bearer => {
                for value in head.all("authorization") {
                    let Ok(value) = core::str::from_utf8(value) else {
                        continue;
                    };
                    // Copies joined by ',' (a JWT never contains one).
                    for part in value.split(',') {
                        let part = part.trim();
                        if let Some((scheme, rest)) = part.split_once(' ') {
                            if scheme.eq_ignore_ascii_case("bearer") && !add(rest) {
                                within_bounds = false;
                                break;
                            }
                        }
                    }
                }
            }
            Source::Header(name) => {
                for value in head.all(name) {
                    if let Ok(value) = core::str::from_utf8(value) {
                        for part in value.split(',') {
                            if !add(part) {
                                within_bounds = false;
                                break;
                            }
                        }
                    }
                }
            }
            Source::Query(name) => {
                if let Some(q) = head.query() {
                    for v in query_values(q, name) {
                        if !add(&String::from_utf8_lossy(&v)) {
                            within_bounds = false;
                            break;
                        }
                    }
                }
            }
        }
        if !within_bounds {
            return Err((DenyReason::Ambiguous, ambiguous(&config.realm)));
        }
        if copies.get() > before {
            holding.push(index);
        }
    }
    match found.len() {
        0 => Ok(Found::None),
        1 => Ok(found.pop().map_or(Found::None, |token| Found::Token {
            token,
            sources: holding,
        })),
        _ => Err((DenyReason::Ambiguous, ambiguous(&config.realm))),
    }
}

/// Whether one comma-separated part of an `Authorization` value is a `Bearer` credential
/// (scheme compared case-insensitively, RFC 9110 §11.1), for stripping.
pub fn is_bearer(part: &[u8]) -> bool {
    let part = part.trim_ascii();
    let scheme = part
        .split(|b| *b == b' ' || *b == b'\t')
        .next()
        .unwrap_or_default();
    scheme.eq_ignore_ascii_case(b"bearer")
}

pub fn missing(realm: &str) -> Denial {
    Denial::new(
        401,
        "missing_token",
        "Access token required",
        "No access token was presented.",
    )
    .with_header("www-authenticate", format!("Bearer realm=\"{realm}\""))
}

pub fn ambiguous(realm: &str) -> Denial {
    let desc = "More than one access token was presented.";
    Denial::new(400, "invalid_request", "Ambiguous access token", desc).with_header(
        "www-authenticate",
        format!(
            "Bearer realm=\"{realm}\", error=\"invalid_request\", error_description=\"{desc}\""
        ),
    )
}

pub fn invalid(realm: &str, e: TokenError) -> (DenyReason, Denial) {
    let reason = match e {
        TokenError::Expired => DenyReason::Expired,
        TokenError::UnknownKid(_) => DenyReason::UnknownKid,
        TokenError::UnsafeClaim => DenyReason::UnsafeClaim,
        TokenError::KidlessCapped => DenyReason::KidlessCapped,
        TokenError::NoKeys(_) => {
            let d = Denial::new(
                503,
                "keys_unavailable",
                "Token verification unavailable",
                "The issuer's signing keys are not available yet; retry later.",
            )
            .with_header("retry-after", "5");
            return (DenyReason::KeysUnavailable, d);
        }
        _ => DenyReason::Invalid,
    };
    let desc = e.description();
    let d = Denial::new(401, "invalid_token", "Invalid access token", desc).with_header(
        "www-authenticate",
        format!("Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{desc}\""),
    );
    (reason, d)
}

/// The identity to publish cannot be trusted or carried: 403, not 401 — the token itself is
/// valid, so asking the client for another credential would not help; the request cannot be
/// granted with an identity later filters (quota's plan, transform's claims) can rely on.
pub fn identity_invalid(detail: &str) -> (DenyReason, Denial) {
    (
        DenyReason::IdentityInvalid,
        Denial::new(
            403,
            "identity_invalid",
            "Identity cannot be published",
            detail,
        ),
    )
}

pub fn insufficient(realm: &str, req: &Requirement) -> Denial {
    let scope = req.scope_hint();
    Denial::new(
        403,
        "insufficient_scope",
        "Insufficient scope",
        "The access token does not carry the scopes this route requires.",
    )
    .with_header(
        "www-authenticate",
        format!("Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{scope}\""),
    )
    .with_extension(
        "required_scopes",
        json!({"all_of": req.all_of, "any_of": req.any_of}),
    )
}

/// A missing scope when the caller presented no token and was let in as a consumer an earlier
/// filter identified (api-key-auth's key): still 403 `insufficient_scope`, counted alike, but no
/// `WWW-Authenticate: Bearer` challenge (RFC 6750 is about access tokens; asking an API-key
/// caller for a bearer token would mislead them) and a detail naming what they presented.
/// `source` is the identity's `source` (`api-key-auth`, …).
pub fn consumer_insufficient(req: &Requirement, source: &str) -> Denial {
    let detail = if source.split('+').any(|s| s == "api-key-auth") {
        "The consumer's API key does not carry the scopes this route requires."
    } else {
        "The consumer's credential does not carry the scopes this route requires."
    };
    Denial::new(403, "insufficient_scope", "Insufficient scope", detail).with_extension(
        "required_scopes",
        json!({"all_of": req.all_of, "any_of": req.any_of}),
    )
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
