//! Transformation filter for Envoy (proxy-wasm): reshape requests and responses.
