//! Memory of the two forms of the chain: Envoy's resident set (`VmRSS` in `/proc/<pid>/status`)
//! with 2 workers after 200 requests that pass every filter, for no filter, the five modules
//! (tests/integration/bench/chain-modules.yaml) and the suite module (chain-suite.yaml, the same
//! configs). Each Wasm VM costs its runtime, code and heap once per worker plus one for the
//! root: the suite pays that once instead of five times.
//!
//! `cargo test -p apim-integration --test suite_memory -- --nocapture` prints the figures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use apim_integration::{repo_root, Envoy, LogOnFailure, Request};

const REQUESTS: usize = 200;

/// Envoy's resident set, KiB, after `REQUESTS` bench requests (each answered 200).
fn rss_after_requests(config: &str) -> u64 {
    let template =
        std::fs::read_to_string(repo_root().join("tests/integration/bench").join(config)).unwrap();
    let envoy: &'static Envoy = Box::leak(Box::new(
        Envoy::builder().concurrency(2).start(&template).unwrap(),
    ));
    let _log = LogOnFailure(envoy);
    for _ in 0..REQUESTS {
        let r = Request::get("/")
            .header("x-api-key", "demo-key-alice-0123456789abcdef")
            .header("x-old", "moved")
            .header("x-tenant", "acme")
            .header("x-debug", "1")
            .send(envoy.port())
            .unwrap();
        assert_eq!(r.status, 200, "{config}: {}", r.text());
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", envoy.pid())).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap();
    rss
}

#[test]
fn the_suite_adds_less_memory_than_the_five_modules() {
    let none = rss_after_requests("none.yaml");
    let modules = rss_after_requests("chain-modules.yaml");
    let suite = rss_after_requests("chain-suite.yaml");
    let added = |kib: u64| kib.saturating_sub(none);
    println!(
        "VmRSS, 2 workers, after {REQUESTS} requests: no filter {} MiB, five modules {} MiB \
         (+{} MiB), suite {} MiB (+{} MiB, {}% of the modules' added)",
        none / 1024,
        modules / 1024,
        added(modules) / 1024,
        suite / 1024,
        added(suite) / 1024,
        added(suite) * 100 / added(modules).max(1)
    );
    assert!(
        added(suite) < added(modules),
        "suite +{} KiB, modules +{} KiB",
        added(suite),
        added(modules)
    );
}
