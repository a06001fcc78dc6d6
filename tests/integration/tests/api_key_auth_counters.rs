//! api-key-auth end to end, each test with an Envoy of its own so that no other test moves its
//! counters: every outcome counted exactly (admin and Prometheus forms), and two workers
//! giving the same answers with their counters adding up.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod api_key_auth_common;

use api_key_auth_common::*;
use apim_integration::chain::for_each_form;
use apim_integration::Request;

// ---------------------------------------------------------------------------------------------
// 11: counters (a dedicated Envoy, so that no other test moves them)

#[test]
fn counters_count_each_outcome_exactly() {
    for_each_form(|form| {
        let envoy = start(form, 1);
        let port = envoy.port();
        // (request, expected status) in a known sequence.
        let sequence: Vec<(Request, u16)> = vec![
            (get("/c").header("x-api-key", ALICE), 200),
            (get("/c").header("x-api-key", ALICE), 200),
            (get(&format!("/c?api_key={BOB}")), 200),
            (get("/c"), 401),
            (get("/c"), 401),
            (get("/c"), 401),
            (get("/c").header("x-api-key", UNKNOWN), 401),
            (get("/c").header("x-api-key", UNKNOWN), 401),
            (get("/c").header("x-api-key", EXPIRED), 401),
            (get("/c").header("x-api-key", FUTURE), 401),
            (get("/c").header("x-api-key", DISABLED), 401),
            (get("/c").header("x-api-key", DISABLED), 401),
            (get("/c").header("x-api-key", &"k".repeat(300)), 401),
            (
                get("/c")
                    .header("x-api-key", ALICE)
                    .header("x-api-key", BOB),
                401,
            ),
            (get("/admin").header("x-api-key", ALICE), 403),
            (get("/public"), 200),
            (get("/health"), 200),
            (
                Request::new("OPTIONS", "/c")
                    .header("origin", "https://a.example")
                    .header("access-control-request-method", "PUT"),
                200,
            ),
        ];
        let mut too_many = get("/c");
        for _ in 0..17 {
            too_many = too_many.header("x-api-key", BOB);
        }
        let mut all = sequence;
        all.push((too_many, 400));
        for (request, status) in &all {
            let r = send(port, request);
            assert_eq!(r.status, *status, "{request:?}: {}", r.text());
        }
        let want: [(&str, u64); 12] = [
            ("allowed", 3),
            ("anonymous", 1),
            ("passed", 2),
            ("denied.missing", 3),
            ("denied.unknown", 2),
            ("denied.expired", 1),
            ("denied.not_yet_valid", 1),
            ("denied.disabled", 2),
            ("denied.malformed", 1),
            ("denied.ambiguous", 1),
            ("denied.too_many", 1),
            ("denied.forbidden", 1),
        ];
        // Wasm counters are plain Envoy counters, incremented before the filter returns, so the
        // admin shows them as soon as the responses are in: no flush, no wait. `/stats` lists a
        // proxy-wasm counter under Envoy's `wasmcustom.` namespace.
        let stats = envoy.stats().unwrap();
        for (name, value) in want {
            let full = format!("wasmcustom.apim.api_key_auth.{name}");
            assert_eq!(stats.get(&full).copied(), Some(value), "{full}");
        }
        // The same in Prometheus form: `apim_api_key_auth_<name>{} <value>` style lines, no
        // `envoy_` prefix.
        let prom = envoy.stats_prometheus();
        for (name, value) in want {
            let metric =
                form.prometheus_counter(&format!("apim_api_key_auth_{}", name.replace('.', "_")));
            let line = prom
                .lines()
                .find(|l| {
                    l.split(['{', ' '])
                        .next()
                        .is_some_and(|m| m == metric.as_str())
                })
                .unwrap_or_else(|| panic!("{metric} not in /stats/prometheus:\n{prom}"));
            assert_eq!(
                line.rsplit(' ').next(),
                Some(value.to_string().as_str()),
                "{line}"
            );
            assert!(
                prom.contains(&format!("# TYPE {metric} counter")),
                "{metric} is not a counter"
            );
        }
    });
}
// ---------------------------------------------------------------------------------------------
// 13: two workers

#[test]
fn two_workers_give_the_same_answers() {
    for_each_form(|form| {
        let envoy = start(form, 2);
        let port = envoy.port();
        let table: Vec<(&str, Request, Want)> = vec![
            (
                "header",
                get("/w").header("x-api-key", ALICE),
                Want::As("alice", Some("gold")),
            ),
            (
                "query",
                get(&format!("/w?api_key={BOB}&x=1")),
                Want::As("bob", Some("silver")),
            ),
            ("missing", get("/w"), Want::Denied(401, "missing_api_key")),
            (
                "expired",
                get("/w").header("x-api-key", EXPIRED),
                Want::Denied(401, "invalid_api_key"),
            ),
            (
                "ambiguous",
                get("/w")
                    .header("x-api-key", ALICE)
                    .header("x-api-key", BOB),
                Want::Denied(401, "ambiguous_api_key"),
            ),
            (
                "forbidden",
                get("/admin").header("x-api-key", ALICE),
                Want::Denied(403, "consumer_not_allowed"),
            ),
            ("anonymous", get("/public"), Want::As("guest", Some("free"))),
            ("skipped", get("/health"), Want::Passed),
        ];
        // Each request is a new connection; the kernel spreads connections over the two workers'
        // sockets. Go on (bounded) until both workers have served requests, so that both VMs were
        // exercised.
        let listener_stat = |worker: u32| -> u64 {
            envoy
                .stats()
                .unwrap()
                .iter()
                .filter(|(name, _)| {
                    name.starts_with("listener.127.0.0.1_")
                        && name.ends_with(&format!(".worker_{worker}.downstream_cx_total"))
                })
                .map(|(_, v)| *v)
                .sum()
        };
        let mut rounds = 0u64;
        while rounds < 3 || (listener_stat(0) == 0 || listener_stat(1) == 0) {
            assert!(rounds < 50, "the kernel never used the second worker");
            for (what, request, want) in &table {
                check(port, REALM, what, request, *want);
            }
            rounds += 1;
        }
        // Each worker runs its own VM; their counters add up in one Envoy counter.
        assert_eq!(
            envoy.counter("wasmcustom.apim.api_key_auth.allowed"),
            Some(2 * rounds)
        );
        assert_eq!(
            envoy.counter("wasmcustom.apim.api_key_auth.anonymous"),
            Some(rounds)
        );
        assert_eq!(
            envoy.counter("wasmcustom.apim.api_key_auth.denied.missing"),
            Some(rounds)
        );
        assert_no_traps(&envoy.log());
    });
}
