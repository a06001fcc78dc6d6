//! Scope authorization for Envoy, as a proxy-wasm HTTP filter.
//!
//! May this caller use this route: the OAuth2 scopes of a JWT (verified here, or by Envoy's
//! own `jwt_authn` in mode `metadata`) or of the API-key consumer that `api-key-auth`
//! published, checked against per-route requirements (all-of / any-of scope sets, exact
//! matching). Denials follow RFC 6750 §3 with problem+json bodies.
//!
//! - [`config`]: raw serde types and their validation into [`config::Config`] (`provider`:
//!   one provider's algorithms, keys and HMAC opt-in).
//! - [`jwks`]: JWKS documents → keys bound to their algorithm family.
//! - [`token`]: parsing and verifying a JWT, extracting scopes and forwarded claims.
//! - [`cache`]: the bounded cache of verified tokens.
//! - [`policy`]: finding the token, the RFC 6750 denials.
//! - [`handler`]: applying a decision through `kit::host::Host` (testable with the mock).
//! - [`fetch`]: when to fetch a remote JWKS (pure timing rules, shared across workers).
//! - `filter` (wasm32-wasip1 only): the proxy-wasm root and HTTP contexts, JWKS fetches.

pub mod cache;
pub mod config;
pub mod fetch;
pub mod handler;
pub mod jwks;
pub mod policy;
mod provider;
pub mod token;

#[cfg(test)]
mod test_support;

pub mod stage;

#[cfg(all(target_arch = "wasm32", target_os = "wasi", feature = "module"))]
mod filter;
