//! Counters, defined once per root context and incremented by index.
//!
//! Envoy 1.40 lists a proxy-wasm counter named `apim.api_key_auth.allowed` in `/stats` as
//! `wasmcustom.apim.api_key_auth.allowed` and in `/stats/prometheus` as
//! `apim_api_key_auth_allowed` (no `envoy_` prefix). Counts are exact as soon as the request
//! is served.

use crate::host::Host;

/// The ids of a filter's counters, in the order of the names given to [`Counters::define`].
#[derive(Debug, Clone, Default)]
pub struct Counters {
    ids: Vec<Option<u32>>,
}

impl Counters {
    /// Defines every counter; a counter the host refuses is skipped later, never fatal.
    pub fn define(host: &dyn Host, names: &[&str]) -> Self {
        Self {
            ids: names.iter().map(|n| host.define_counter(n)).collect(),
        }
    }

    /// Adds one to the counter at `index` (the position of its name in `define`).
    pub fn inc(&self, host: &dyn Host, index: usize) {
        self.add(host, index, 1);
    }

    /// Adds `n` at once (a batch counted in memory).
    pub fn add(&self, host: &dyn Host, index: usize, n: i64) {
        if let Some(Some(id)) = self.ids.get(index) {
            host.increment_counter(*id, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::MockHost;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn counters_increment_by_index() {
        let host = MockHost::default();
        let c = Counters::define(&host, &["a", "b"]);
        c.inc(&host, 1);
        c.inc(&host, 1);
        c.inc(&host, 7); // out of range: ignored, never a trap
        assert_eq!(host.counter("b"), 2);
        assert_eq!(host.counter("a"), 0);
    }
}
