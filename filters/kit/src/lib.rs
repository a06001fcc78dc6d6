//! `kit`: what every filter of the suite shares, written once.
//!
//! - [`config_error`]: two-phase config parsing whose errors name the field path;
//!   [`config_refusal`]: the one `error` line a filter logs when it refuses a config.
//! - [`denial`]: typed denials and their one rendering (problem+json, GraphQL errors).
//! - [`matcher`]: per-route rule matching on Envoy's route name, path, method and host.
//! - [`request`]: a read-only view of the request head, fetched from the host in one call;
//!   [`query`]: query parameters and cookies, read and removed.
//! - [`identity`]: the `apim_consumer` hand-off between filters (Envoy filter state).
//! - [`header_value`]: the check every header value built from client data passes.
//! - [`digest`], [`time`]: SHA-256 digests and RFC 3339 timestamps.
//! - [`host`]: the small trait the glue talks to, with a recording mock for unit tests;
//!   [`metrics`]: counters defined once per root context.
//! - `proxy_host` (wasm32-wasip1 only): the trait implemented over proxy-wasm host calls, and
//!   non-panicking forms of the SDK's context helpers; `plugin`: the shared root context.
//!
//! Nothing here panics on input: every failure is a value.

pub mod config_error;
pub mod config_refusal;
pub mod denial;
pub mod digest;
pub mod header_value;
pub mod host;
pub mod identity;
pub mod matcher;
pub mod metrics;
pub mod query;
pub mod request;
pub mod time;

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
pub mod plugin;
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
pub mod proxy_host;
