//! Quota for Envoy, as a proxy-wasm HTTP filter: per-consumer request quotas and rate limits.
//!
//! How much may this caller call: each caller's plan is a list of limits (a burst limit and a
//! monthly quota at once, every one applies), counted per configured key (the consumer of the
//! `apim_consumer` identity, a header, the client address, the route, or a combination) in
//! fixed windows, charging 1 per request, a route's weight, or the GraphQL operation cost that
//! graphql-guard publishes (`apim_cost`). Over a limit: 429 with `Retry-After` and the IETF
//! `RateLimit-Policy` / `RateLimit` fields. Local tier: counters in proxy-wasm shared data,
//! updated with compare-and-swap, so all workers of one Envoy process share one exact count;
//! slots chosen by a keyed hash (a secret per process), a live counter never evicted, and a
//! store that cannot count refuses (503) unless configured to admit. A caller without a plan is
//! refused unless the config says `unknown_plan: "unlimited"`.
//! Global tier: Envoy's Rate Limit Service v3 over `dispatch_grpc_call`, so many replicas share
//! one count (fail-open or fail-closed per plan).
//!
//! - [`config`]: raw serde types and their validation into [`config::Config`].
//! - [`window`]: fixed windows (N seconds, calendar month).
//! - [`store`]: the shared-data slots and the CAS admission of a request.
//! - [`policy`]: the pure decision: plan, key, cost; allow or a typed 429 with its fields.
//! - [`handler`]: applying it through `kit::host::Host` (testable with the mock).
//! - [`rls`]: the Rate Limit Service v3 messages (global tier), hand-encoded.
//! - [`frames`]: counting a gRPC stream's request messages for a rule's `message_cost`.
//! - `filter` (wasm32-wasip1 only): the proxy-wasm root and HTTP contexts.

pub mod config;
pub mod frames;
pub mod handler;
pub mod policy;
pub mod rls;
pub mod store;
pub mod window;

pub mod stage;

#[cfg(all(target_arch = "wasm32", target_os = "wasi", feature = "module"))]
mod filter;

#[cfg(test)]
mod test_support;
