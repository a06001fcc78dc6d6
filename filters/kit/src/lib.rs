//! `kit`: what every filter of the suite shares, written once.
//!
//! - [`config_error`]: two-phase config parsing whose errors name the field path;
//!   [`config_refusal`]: the one `error` line a filter logs when it refuses a config.
//! - [`denial`]: typed denials and their one rendering (problem+json, GraphQL errors).
//! - [`matcher`]: per-route rule matching on Envoy's route name, path, method, host and gRPC
//!   method; [`grpc`]: what a gRPC call is, and the parts of a gRPC-shaped refusal.
//! - [`request`]: a read-only view of the request head, fetched from the host in one call;
//!   [`query`]: query parameters and cookies, read and removed.
//! - [`identity`]: the `apim_consumer` hand-off between filters (Envoy filter state).
//! - [`header_value`]: the check every header value built from client data passes.
//! - [`digest`], [`time`]: SHA-256 digests and RFC 3339 timestamps.
//! - [`host`]: the small trait the glue talks to, with a recording mock for unit tests;
//!   [`metrics`]: counters defined once per root context.
//! - [`stage`]: the shape every filter has (a stage, its per-request exchange), the chain that
//!   runs several in one VM and the host they share; [`context`]: the names of the values they
//!   hand each other (`apim_consumer`, `apim_cost`, `apim_claims`).
//! - `proxy_host` (wasm32-wasip1 only): the trait implemented over proxy-wasm host calls, and
//!   non-panicking forms of the SDK's context helpers; `runtime`: the one root context for any
//!   list of stages.
//!
//! Nothing here panics on input: every failure is a value.

pub mod config_error;
pub mod config_refusal;
pub mod context;
pub mod denial;
pub mod digest;
pub mod grpc;
pub mod header_value;
pub mod host;
pub mod identity;
pub mod matcher;
pub mod metrics;
pub mod query;
pub mod request;
pub mod stage;
pub mod time;

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
pub mod proxy_host;
#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
pub mod runtime;
