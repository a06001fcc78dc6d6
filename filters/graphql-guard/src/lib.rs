//! GraphQL guard filter for Envoy (proxy-wasm): depth, cost and other operation limits.
