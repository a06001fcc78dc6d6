//! GraphQL guard for Envoy, as a proxy-wasm HTTP filter.
//!
//! Refuses GraphQL operations that are too expensive or too dangerous before they reach the
//! server: depth, aliases, root fields, height, directives, tokens, bytes and a static cost,
//! each an optional limit with its own error code, per consumer plan; introspection control;
//! persisted-operation allow-lists (Apollo `persistedQuery` understood); a warn-only mode. The
//! operation's cost is published as the `apim_cost` filter state for `quota`.
//!
//! - [`config`]: raw serde types and their validation into [`config::Config`].
//! - [`transport`]: GraphQL-over-HTTP (GET parameters, JSON / `application/graphql` bodies,
//!   batches).
//! - [`strict_json`]: JSON with duplicate object keys refused (parsers disagree on which wins).
//! - [`analyze`]: parsing (apollo-parser, with token and recursion limits) and measuring the
//!   selected operation, fragments memoised and cycle-guarded.
//! - [`apq`]: the automatic-persisted-query registry (documents seen in full, by SHA-256).
//! - [`ws`]: GraphQL over WebSocket (`websocket: inspect`): frames and the operations they carry.
//! - [`policy`]: the pure decision: total cost or the first violation as a typed denial.
//! - [`handler`]: applying it through `kit::host::Host` (testable with the mock).
//! - `filter` (wasm32-wasip1 only): the proxy-wasm root and HTTP contexts.

pub mod analyze;
pub mod apq;
pub mod config;
pub mod handler;
pub mod policy;
pub mod strict_json;
pub mod transport;
pub mod ws;

pub mod stage;

#[cfg(all(target_arch = "wasm32", target_os = "wasi", feature = "module"))]
mod filter;
