//! End-to-end tests of the quota module (local tier) in the pinned Envoy with 2 workers.
//!
//! One Envoy serves two listeners in front of the echo upstream: `main` (the quota filter with
//! the plans of `fixtures/quota/main.json`, counting per `x-user` header) and `shadow` (`fixtures/quota/shadow.json`, shadow
//! mode, in its own VM and so its own counters). Every test counts under its own `x-user`, so
//! tests sharing the Envoy do not see each other's counts. Windows are epoch-aligned; the long
//! limits use a window of about 360 days whose size is chosen from the current time so that
//! now sits in its middle ([`long_window`]): no test can straddle one. The GraphQL-cost test
//! starts its own Envoy with graphql-guard in front (skipped, loudly, if that module is not
//! built). Tests that assert exact counter deltas start their own Envoy. The global tier (two
//! Envoys, envoyproxy/ratelimit, Redis) is in `quota_global.rs`. Every test runs in each form
//! of the suite (`for_each_form`): the shared Envoy is one per form.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use apim_integration::bootstrap::{
    bootstrap, discovered_filter, listener, node, upstream_cluster, WasmFilter,
};
use apim_integration::chain::{for_each_form, main_listener, Chain, Filter, Form, PerForm};
use apim_integration::{Envoy, LogOnFailure, Request, Response};

/// A window size in seconds (at most 366 days) such that now is in the middle of its current
/// epoch-aligned window: `now / n` is `k + ½` for an integer `k`, so about `n / 2` (months)
/// remain. Chosen once per test process; the fixtures' `31622400` stands for it.
fn long_window() -> u64 {
    static N: OnceLock<u64> = OnceLock::new();
    *N.get_or_init(|| mid_window(0))
}

/// The `extra`-th such size below 366 days (0: the largest).
fn mid_window(extra: u64) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let k = now / 31_622_400 + 1 + extra;
    let n = now * 2 / (2 * k + 1);
    assert!(n <= 31_622_400 && now % n > n / 4 && n - now % n > n / 4);
    n
}

/// The fixture `fixtures/quota/<name>`, its `31622400` replaced by [`long_window`], compacted.
fn fixture(name: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/quota/");
    let text = std::fs::read_to_string(format!("{dir}{name}"))
        .unwrap()
        .replace("31622400", &long_window().to_string());
    serde_json::from_str::<serde_json::Value>(&text)
        .unwrap()
        .to_string()
}

/// The two listeners in `form`: `main` (listener stat prefix `main_listener`, HCM stat prefix
/// `main`) running `before` then quota with `main`, and `shadow` running quota with `shadow`,
/// each chain in its own VM (its own counts); every path to the echo upstream.
fn config_with(form: Form, before: Chain, main: &str, shadow: &str) -> String {
    let main = main_listener(&before.filter(Filter::Quota, main).vm("main"), form)
        .listener_options("stat_prefix: main_listener");
    let shadow = listener("shadow", "upstream").chain(
        &Chain::new().filter(Filter::Quota, shadow).vm("shadow"),
        form,
    );
    bootstrap(
        &[main, shadow],
        &[upstream_cluster("upstream").connect_timeout("1s").untyped()],
    )
}

/// The config with the fixtures `main.json` and `shadow.json`.
fn config(form: Form) -> String {
    config_with(
        form,
        Chain::new(),
        &fixture("main.json"),
        &fixture("shadow.json"),
    )
}

/// The Envoy the tests without exact counter deltas share, one per form.
fn shared(form: Form) -> &'static Envoy {
    static SHARED: PerForm = PerForm::new();
    SHARED.get(form, |form| {
        Envoy::builder()
            .concurrency(2)
            .start(&config(form))
            .unwrap_or_else(|e| panic!("starting the shared Envoy: {e}"))
    })
}

fn listener_of(form: Form, name: &str) -> (u16, LogOnFailure) {
    let envoy = shared(form);
    (
        envoy.listener_port(name).expect("listener port"),
        LogOnFailure(envoy),
    )
}

fn call(port: u16, path: &str, user: &str) -> Response {
    Request::get(path)
        .header("x-user", user)
        .send(port)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// A user name no other test (or earlier run against the same Envoy) uses.
fn user(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Both workers serve, and together they admit exactly the limit: one count in shared data.
/// A dedicated Envoy, so every figure is an exact delta: the per-worker connection counters
/// prove both workers took requests (one request per connection).
#[test]
fn two_workers_and_many_clients_admit_exactly_the_limit() {
    for_each_form(|form| {
        let envoy = Envoy::builder()
            .concurrency(2)
            .start(&config(form))
            .unwrap_or_else(|e| panic!("{e}"));
        let port = envoy.listener_port("main").unwrap();
        let who = user("exact");
        let ok = AtomicU64::new(0);
        let limited = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    for _ in 0..10 {
                        match call(port, "/exact", &who).status {
                            200 => ok.fetch_add(1, Ordering::Relaxed),
                            429 => limited.fetch_add(1, Ordering::Relaxed),
                            other => panic!("unexpected status {other}"),
                        };
                    }
                });
            }
        });
        assert_eq!(ok.load(Ordering::Relaxed), 50);
        assert_eq!(limited.load(Ordering::Relaxed), 110);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stats = envoy.stats().unwrap();
            let prefix = "listener.main_listener.worker_";
            let per_worker: Vec<u64> = (0..2)
                .map(|w| {
                    stats
                        .get(&format!("{prefix}{w}.downstream_cx_total"))
                        .copied()
                        .unwrap_or(0)
                })
                .collect();
            let counted = (
                stats.get("wasmcustom.apim.quota.allowed").copied(),
                stats.get("wasmcustom.apim.quota.limited").copied(),
            );
            if per_worker.iter().sum::<u64>() == 160 && counted == (Some(50), Some(110)) {
                assert!(
                    per_worker.iter().all(|n| *n > 0),
                    "both workers served: {per_worker:?}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "per worker {per_worker:?}, counters {counted:?}: {:?}",
                stats
                    .keys()
                    .filter(|k| k.contains("worker"))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

#[test]
fn a_429_carries_retry_after_and_the_ratelimit_fields() {
    for_each_form(|form| {
        let (port, _log) = listener_of(form, "main");
        let who = user("fields");
        let mut last = None;
        for _ in 0..10 {
            let r = call(port, "/weighted", &who);
            if r.status == 429 {
                last = Some(r);
                break;
            }
        }
        let r = last.expect("a 429 within 10 requests");
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        let n = long_window();
        assert!(
            retry > n / 4 && retry < n,
            "the long window ends months from now: {retry}"
        );
        assert_eq!(
            r.header("ratelimit-policy"),
            Some(format!("\"weighted\";q=10;w={n}").as_str())
        );
        assert_eq!(
            r.header("ratelimit"),
            Some(format!("\"weighted\";r=2;t={retry}").as_str())
        );
        assert_eq!(r.header("x-ratelimit-limit"), Some("10"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some("2"));
        let body = r.json();
        assert_eq!(body["code"], "quota_exceeded");
        assert_eq!(body["status"], 429);
        assert_eq!(body["limit"], "weighted");
    });
}

#[test]
fn route_weight_is_charged() {
    for_each_form(|form| {
        let (port, _log) = listener_of(form, "main");
        let who = user("weight");
        // Cost 4 per request against 10: 4, 8, then 12 > 10.
        let statuses: Vec<u16> = (0..3)
            .map(|_| call(port, "/weighted", &who).status)
            .collect();
        assert_eq!(statuses, vec![200, 200, 429]);
    });
}

const GRAPHQL_GUARD: &str =
    r#"{"cost":{"default_weight":0,"scalar_weight":0,"fields":{"heavy":7,"light":3}}}"#;

#[test]
fn graphql_cost_published_by_graphql_guard_is_charged() {
    for_each_form(|form| {
        // A missing module fails the test (never a silent skip): `make build` builds it.
        if let Err(e) = apim_integration::try_wasm_module("graphql_guard") {
            panic!("graphql_guard.wasm is needed (make build): {e}");
        }
        let envoy = Envoy::builder()
            .concurrency(2)
            .start(&config_with(
                form,
                Chain::new().filter(Filter::GraphqlGuard, GRAPHQL_GUARD),
                &fixture("main.json"),
                &fixture("shadow.json"),
            ))
            .unwrap_or_else(|e| panic!("{e}"));
        let port = envoy.listener_port("main").unwrap();
        let who = user("gql");
        let send = |query: &str| {
            let r = Request::new("POST", "/graphql")
                .header("x-user", &who)
                .header("content-type", "application/json")
                .body(serde_json::json!({ "query": query }).to_string())
                .send(port)
                .unwrap();
            (r.status, r.header("ratelimit").map(str::to_string))
        };
        assert_eq!(send("{ heavy }").0, 200, "7 of 10");
        let (status, rl) = send("{ heavy }");
        assert_eq!(status, 429, "7 + 7 > 10");
        assert!(rl.unwrap().starts_with("\"weighted\";r=3;"));
        assert_eq!(send("{ light }").0, 200, "7 + 3 = 10");
        assert_eq!(send("{ light }").0, 429);
    });
}

#[test]
fn a_missing_key_part_and_a_missing_plan_are_refused() {
    for_each_form(|form| {
        let (port, _log) = listener_of(form, "main");
        let r = Request::get("/exact").send(port).unwrap();
        assert_eq!(r.status, 403);
        assert_eq!(r.json()["code"], "quota_key_missing");
        // No rule and no default_plan give a plan here: refused, not unlimited.
        let r = call(port, "/no-plan-here", &user("free"));
        assert_eq!(r.status, 403);
        assert_eq!(r.json()["code"], "quota_plan_unknown");
    });
}

#[test]
fn a_second_window_opens_on_time() {
    for_each_form(|form| {
        let (port, _log) = listener_of(form, "main");
        let who = user("window");
        // 2 per 2 s: sent until refused (a window may end between two of them; a 429 comes within
        // 3 requests of any window start). The deadline only bounds a hang.
        let deadline = Instant::now() + Duration::from_secs(30);
        let first_429 = loop {
            let r = call(port, "/window", &who);
            if r.status == 429 {
                break r;
            }
            assert!(Instant::now() < deadline, "never refused");
        };
        let retry: u64 = first_429.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry), "{retry}");
        assert_eq!(
            first_429.header("ratelimit"),
            Some(format!("\"short\";r=0;t={retry}").as_str())
        );
        // Polling, not sleeping-and-asserting: the deadline only bounds a hang.
        let deadline = Instant::now() + Duration::from_secs(retry + 5);
        loop {
            if call(port, "/window", &who).status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no new window within {retry} s + 5 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

/// Every limit of a plan applies and each request is charged to all of them: whichever limit
/// is smaller refuses first, and the 429 names it. Both windows are long ones, sized from the
/// current time (no boundary can fall inside the test).
#[test]
fn a_burst_limit_and_a_longer_limit_stack() {
    for_each_form(|form| {
        let n = long_window();
        // Another window size with now also in the middle of its window.
        let m = mid_window(1);
        let plan = |a: u64, b: u64| {
            format!(
                r#"{{"plans":{{"s":{{"limits":[{{"requests":{a},"per":{m},"name":"burst"}},{{"requests":{b},"per":{n},"name":"long"}}]}}}},"default_plan":"s","key":[{{"header":"x-user"}}]}}"#
            )
        };
        for (burst, long, refuses) in [(3, 5, "burst"), (5, 3, "long")] {
            let plan = plan(burst, long);
            let cfg = config_with(form, Chain::new(), &plan, &plan);
            let envoy = Envoy::builder()
                .concurrency(2)
                .start(&cfg)
                .unwrap_or_else(|e| panic!("{e}"));
            let port = envoy.listener_port("main").unwrap();
            let statuses: Vec<u16> = (0..4).map(|_| call(port, "/s", "u").status).collect();
            assert_eq!(statuses, vec![200, 200, 200, 429], "{refuses}");
            let r = call(port, "/s", "u");
            assert!(
                r.header("ratelimit")
                    .unwrap()
                    .starts_with(&format!("\"{refuses}\";r=0;")),
                "{:?}",
                r.header("ratelimit")
            );
            assert_eq!(
                r.header("ratelimit-policy"),
                Some(format!("\"burst\";q={burst};w={m}, \"long\";q={long};w={n}").as_str())
            );
        }
    });
}

#[test]
fn shadow_mode_rejects_nothing_and_reports() {
    for_each_form(|form| {
        let (port, _log) = listener_of(form, "shadow");
        let who = user("shadow");
        let rs: Vec<Response> = (0..5).map(|_| call(port, "/anything", &who)).collect();
        assert!(rs.iter().all(|r| r.status == 200));
        assert!(rs[0]
            .header("ratelimit")
            .unwrap()
            .starts_with("\"tiny\";r=1;t="));
        assert!(rs[0].header("retry-after").is_none());
        assert!(
            rs[4].header("retry-after").is_some(),
            "shadow-limited responses say when"
        );
        let envoy = shared(form);
        let deadline = Instant::now() + Duration::from_secs(10);
        // Only this test reaches a shadow-mode limit: exactly 3 of the 5.
        while envoy
            .counter("wasmcustom.apim.quota.shadow_limited")
            .unwrap_or(0)
            != 3
        {
            assert!(
                Instant::now() < deadline,
                "{:?}",
                envoy.admin_get("/stats?filter=quota")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

/// The per-plan counters as one Prometheus metric with a `plan` label, as envoy/gateway.yaml
/// sets it (`stats_config.stats_tags`).
const PLAN_TAG: &str = r#"
stats_config:
  stats_tags:
  - tag_name: plan
    regex: '^wasmcustom\.apim\.quota\.plan\.((.+)\.)(?:allowed|limited)$'
"#;

/// A dedicated Envoy: the counters move by exactly what this test sent, in total and under the
/// request's plan only.
#[test]
fn counters_are_exported() {
    for_each_form(|form| {
        let envoy = Envoy::builder()
            .concurrency(2)
            .start(&format!("{}{PLAN_TAG}", config(form)))
            .unwrap_or_else(|e| panic!("{e}"));
        let port = envoy.listener_port("main").unwrap();
        let who = user("counters");
        let statuses: Vec<u16> = (0..3)
            .map(|_| call(port, "/weighted", &who).status)
            .collect();
        assert_eq!(statuses, vec![200, 200, 429]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let allowed = envoy.counter("wasmcustom.apim.quota.allowed").unwrap_or(0);
            let limited = envoy.counter("wasmcustom.apim.quota.limited").unwrap_or(0);
            assert!(allowed <= 2 && limited <= 1, "{allowed} {limited}");
            if (allowed, limited) == (2, 1) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{:?}",
                envoy.admin_get("/stats?filter=quota")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let plan = |p: &str, outcome: &str| {
            envoy
                .counter(&format!("wasmcustom.apim.quota.plan.{p}.{outcome}"))
                .unwrap_or_else(|| panic!("no counter for plan {p}: {:?}", envoy.stats()))
        };
        assert_eq!(
            (plan("weighted", "allowed"), plan("weighted", "limited")),
            (2, 1)
        );
        assert_eq!((plan("exact", "allowed"), plan("exact", "limited")), (0, 0));
        let prometheus = envoy.stats_prometheus();
        assert!(prometheus.contains("apim_quota_allowed"));
        let labelled = prometheus
            .lines()
            .find(|l| l.contains(r#"apim_quota_plan_allowed{plan="weighted"}"#))
            .unwrap_or_else(|| panic!("no plan label:\n{prometheus}"));
        assert!(labelled.ends_with(" 2"), "{labelled}");
    });
}

// ---------------------------------------------------------------------------------------------
// Counters survive a config update (ECDS, a watched file, as a control plane pushes it).

/// The quota filter ECDS delivers in `form`, configured with `filter_config`.
fn ecds_filter(form: Form, filter_config: &str) -> WasmFilter {
    Chain::new()
        .filter(Filter::Quota, filter_config)
        .wasm_filter(form)
}

/// The listener `main` answering every request itself (200) behind the quota filter whose
/// config Envoy reads, and watches, from the ECDS file at `path`.
fn ecds_bootstrap(form: Form, path: &std::path::Path) -> String {
    let main = listener("main", "upstream")
        .direct_response("all", "/", 200)
        .filter(discovered_filter(ecds_filter(form, "{}").name(), path));
    format!(
        "{}{}",
        node("quota-reload"),
        bootstrap(&[main], &[upstream_cluster("upstream").untyped()])
    )
}

fn publish(form: Form, path: &std::path::Path, filter_config: &str) {
    let rendered =
        apim_integration::render(&ecds_filter(form, filter_config).ecds_resource()).unwrap();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, rendered).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn wait_counter(envoy: &Envoy, name: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while envoy.counter(name).unwrap_or(0) < want {
        assert!(Instant::now() < deadline, "{name} never reached {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn plan_config(requests: u64, extra: &str) -> String {
    format!(
        r#"{{"plans":{{"p":{{"limits":[{{"requests":{requests},"per":{n},"name":"p"}}]}}}},"default_plan":"p","key":[{{"header":"x-user"}}]{extra}}}"#,
        n = long_window()
    )
}

#[test]
fn counters_survive_a_config_update_and_a_bad_update_is_refused() {
    for_each_form(|form| {
        // The discovery stats are named after the filter.
        let ecds_stat = format!(
            "extension_config_discovery.http_filter.{}",
            ecds_filter(form, "{}").name()
        );
        let dir = std::env::temp_dir().join(format!("quota-ecds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("quota.yaml");
        publish(form, &path, &plan_config(3, ""));
        let yaml = ecds_bootstrap(form, &path);
        let envoy = Envoy::builder()
            .concurrency(2)
            .start(&yaml)
            .unwrap_or_else(|e| panic!("{e}"));
        let port = envoy.port();
        let who = user("reload");
        assert_eq!(call(port, "/a", &who).status, 200);
        assert_eq!(call(port, "/a", &who).status, 200);
        // A refused update: the old config keeps serving, the count goes on.
        publish(form, &path, &plan_config(0, ""));
        wait_counter(&envoy, &format!("{ecds_stat}.update_rejected"), 1);
        assert_eq!(call(port, "/a", &who).status, 200, "3 of 3");
        assert_eq!(call(port, "/a", &who).status, 429);
        // An accepted update raising the limit to 5: the 3 already counted stay counted.
        publish(
            form,
            &path,
            &plan_config(5, r#","headers":{"on_allowed":true}"#),
        );
        wait_counter(&envoy, &format!("{ecds_stat}.update_success"), 2);
        let r = call(port, "/a", &who);
        assert_eq!(r.status, 200);
        let rl = r.header("ratelimit").unwrap();
        assert!(rl.starts_with("\"p\";r=1;"), "4 of 5 used: {rl}");
        assert_eq!(call(port, "/a", &who).status, 200, "5 of 5");
        assert_eq!(call(port, "/a", &who).status, 429);
        let _ = std::fs::remove_dir_all(&dir);
    });
}
