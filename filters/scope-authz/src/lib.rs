//! Scope authorization filter for Envoy (proxy-wasm): OAuth2/JWT scopes per route.
