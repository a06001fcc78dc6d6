//! Transformation filter for Envoy (proxy-wasm): reshape requests and responses.
//!
//! Rules are matched per route (`kit::matcher`); the first matching rule applies. A rule may
//! change the request (method, path, query, headers, JSON body), the response (headers and JSON
//! body, conditioned on the status) or answer a REST call from a GraphQL server.
//!
//! - [`config`]: raw serde types and their validation into [`config::Config`].
//! - [`template`]: `{{ variable }}` values from headers, query, path captures, identity, claims.
//! - [`headers`], [`uri`]: header, query and path operations, with their exact semantics.
//! - [`pointer`], [`patch`], [`body`]: JSON Pointer edits, RFC 7396 and RFC 6902, body ops.
//! - [`graphql`]: REST → GraphQL calls and unwrapping of their answers.
//! - [`policy`]: the pure decisions; [`handler`] applies them through [`handler::Io`].
//! - `filter` (wasm32-wasip1 only): the proxy-wasm root and HTTP contexts.

pub mod body;
pub mod config;
pub mod graphql;
pub mod handler;
pub mod headers;
pub mod patch;
pub mod pointer;
pub mod policy;
pub mod template;
pub mod uri;

pub mod stage;

#[cfg(all(target_arch = "wasm32", target_os = "wasi", feature = "module"))]
mod filter;

#[cfg(test)]
mod config_tests;
#[cfg(test)]
mod handler_tests;
#[cfg(test)]
mod ops_tests;
