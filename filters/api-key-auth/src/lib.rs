//! API-key authentication for Envoy, as a proxy-wasm HTTP filter.
//!
//! Who is calling: the presented API key is hashed (SHA-256) and looked up among the
//! configured consumers' key digests, so no plaintext key sits in config and no comparison runs
//! over secret bytes. On success the consumer's identity is published as the `apim_consumer`
//! filter state for the filters after it (scope-authz, graphql-guard, quota, transform).
//!
//! - [`config`]: raw serde types and their validation into [`config::Config`].
//! - [`credential`]: finding the key in the request (header, `Authorization`, query, cookie).
//! - [`policy`]: the pure decision: pass, allow as a consumer, or a typed denial.
//! - [`handler`]: applying a decision through `kit::host::Host` (testable with the mock).
//! - `filter` (wasm32-wasip1 only): the proxy-wasm root and HTTP contexts.

pub mod config;
pub mod credential;
pub mod handler;
pub mod policy;

pub mod stage;

#[cfg(all(target_arch = "wasm32", target_os = "wasi", feature = "module"))]
mod filter;
