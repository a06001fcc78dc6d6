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
//! Envoys, envoyproxy/ratelimit, Redis) is in `quota_global.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use apim_integration::{Envoy, LogOnFailure, Request, Response};

const CONFIG: &str = r#"
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: main
    stat_prefix: main_listener
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: main
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /}
                route: {cluster: upstream}
          http_filters:
{{GRAPHQL_GUARD}}          - name: apim.quota
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: quota
                failure_policy: FAIL_CLOSED
                vm_config:
                  vm_id: quota_main
                  runtime: envoy.wasm.runtime.v8
                  code: {local: {filename: "{{WASM:quota}}"}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {{FILE:main.json}}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  - name: shadow
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: shadow
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /}
                route: {cluster: upstream}
          http_filters:
          - name: apim.quota
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: quota
                failure_policy: FAIL_CLOSED
                vm_config:
                  vm_id: quota_shadow
                  runtime: envoy.wasm.runtime.v8
                  code: {local: {filename: "{{WASM:quota}}"}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {{FILE:shadow.json}}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: upstream
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint:
            address: {socket_address: {address: 127.0.0.1, port_value: {{UPSTREAM_PORT}}}}
"#;

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

/// The config with each `{{FILE:x}}` replaced by the fixture as a quoted YAML string.
fn config() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/quota/");
    let mut out = CONFIG.replace("{{GRAPHQL_GUARD}}", "");
    for name in ["main.json", "shadow.json"] {
        let text = std::fs::read_to_string(format!("{dir}{name}"))
            .unwrap()
            .replace("31622400", &long_window().to_string());
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let quoted = serde_json::to_string(&json.to_string()).unwrap();
        out = out.replace(&format!("{{{{FILE:{name}}}}}"), &quoted);
    }
    out
}

fn shared() -> &'static Envoy {
    static SHARED: OnceLock<Envoy> = OnceLock::new();
    SHARED.get_or_init(|| {
        let envoy = Envoy::builder()
            .concurrency(2)
            .start(&config())
            .unwrap_or_else(|e| panic!("starting the shared Envoy: {e}"));
        envoy.stop_when_process_exits();
        envoy
    })
}

fn listener(name: &str) -> (u16, LogOnFailure) {
    let envoy = shared();
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
    let envoy = Envoy::builder()
        .concurrency(2)
        .start(&config())
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
}

#[test]
fn a_429_carries_retry_after_and_the_ratelimit_fields() {
    let (port, _log) = listener("main");
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
}

#[test]
fn route_weight_is_charged() {
    let (port, _log) = listener("main");
    let who = user("weight");
    // Cost 4 per request against 10: 4, 8, then 12 > 10.
    let statuses: Vec<u16> = (0..3)
        .map(|_| call(port, "/weighted", &who).status)
        .collect();
    assert_eq!(statuses, vec![200, 200, 429]);
}

const GRAPHQL_GUARD: &str = r#"          - name: apim.graphql_guard
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: graphql_guard
                failure_policy: FAIL_CLOSED
                allow_on_headers_stop_iteration: true
                vm_config:
                  vm_id: graphql_guard
                  runtime: envoy.wasm.runtime.v8
                  code: {local: {filename: "{{WASM:graphql_guard}}"}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{"cost":{"default_weight":0,"scalar_weight":0,"fields":{"heavy":7,"light":3}}}'
"#;

#[test]
fn graphql_cost_published_by_graphql_guard_is_charged() {
    if let Err(e) = apim_integration::try_wasm_module("graphql_guard") {
        eprintln!("SKIPPED graphql_cost_published_by_graphql_guard_is_charged: {e}");
        return;
    }
    let envoy = Envoy::builder()
        .concurrency(2)
        .start(&config().replace(
            "          - name: apim.quota\n",
            &format!("{GRAPHQL_GUARD}          - name: apim.quota\n"),
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
}

#[test]
fn a_missing_key_part_and_a_missing_plan_are_refused() {
    let (port, _log) = listener("main");
    let r = Request::get("/exact").send(port).unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], "quota_key_missing");
    // No rule and no default_plan give a plan here: refused, not unlimited.
    let r = call(port, "/no-plan-here", &user("free"));
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], "quota_plan_unknown");
}

#[test]
fn a_second_window_opens_on_time() {
    let (port, _log) = listener("main");
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
}

/// Every limit of a plan applies and each request is charged to all of them: whichever limit
/// is smaller refuses first, and the 429 names it. Both windows are long ones, sized from the
/// current time (no boundary can fall inside the test).
#[test]
fn a_burst_limit_and_a_longer_limit_stack() {
    let n = long_window();
    // Another window size with now also in the middle of its window.
    let m = mid_window(1);
    let plan = |a: u64, b: u64| {
        format!(
            r#"{{"plans":{{"s":{{"limits":[{{"requests":{a},"per":{m},"name":"burst"}},{{"requests":{b},"per":{n},"name":"long"}}]}}}},"default_plan":"s","key":[{{"header":"x-user"}}]}}"#
        )
    };
    for (burst, long, refuses) in [(3, 5, "burst"), (5, 3, "long")] {
        let quoted = serde_json::to_string(&plan(burst, long)).unwrap();
        let cfg = CONFIG
            .replace("{{GRAPHQL_GUARD}}", "")
            .replace("{{FILE:main.json}}", &quoted)
            .replace("{{FILE:shadow.json}}", &quoted);
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
}

#[test]
fn shadow_mode_rejects_nothing_and_reports() {
    let (port, _log) = listener("shadow");
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
    let envoy = shared();
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
}

/// A dedicated Envoy: the counters move by exactly what this test sent.
#[test]
fn counters_are_exported() {
    let envoy = Envoy::builder()
        .concurrency(2)
        .start(&config())
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
    assert!(envoy.stats_prometheus().contains("apim_quota_allowed"));
}

// ---------------------------------------------------------------------------------------------
// Counters survive a config update (ECDS, a watched file, as a control plane pushes it).

const ECDS_STAT: &str = "extension_config_discovery.http_filter.apim.quota";

fn ecds_resource(filter_config: &str) -> String {
    format!(
        r#"resources:
- "@type": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig
  name: apim.quota
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config:
      name: quota
      failure_policy: FAIL_CLOSED
      vm_config:
        vm_id: quota
        runtime: envoy.wasm.runtime.v8
        code: {{ local: {{ filename: "{{{{WASM:quota}}}}" }} }}
      configuration:
        "@type": type.googleapis.com/google.protobuf.StringValue
        value: '{filter_config}'
"#
    )
}

fn ecds_bootstrap(path: &std::path::Path) -> String {
    format!(
        r#"node: {{id: quota-reload, cluster: quota-reload}}
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
static_resources:
  listeners:
  - name: main
    address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: main
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: /}}
                direct_response: {{status: 200}}
          http_filters:
          - name: apim.quota
            config_discovery:
              config_source:
                path_config_source: {{path: "{path}"}}
                resource_api_version: V3
              type_urls: ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"]
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#,
        path = path.display()
    )
}

fn publish(path: &std::path::Path, filter_config: &str) {
    let rendered = apim_integration::render(&ecds_resource(filter_config)).unwrap();
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
    let dir = std::env::temp_dir().join(format!("quota-ecds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("quota.yaml");
    publish(&path, &plan_config(3, ""));
    let yaml = ecds_bootstrap(&path);
    let envoy = Envoy::builder()
        .concurrency(2)
        .start(&yaml)
        .unwrap_or_else(|e| panic!("{e}"));
    let port = envoy.port();
    let who = user("reload");
    assert_eq!(call(port, "/a", &who).status, 200);
    assert_eq!(call(port, "/a", &who).status, 200);
    // A refused update: the old config keeps serving, the count goes on.
    publish(&path, &plan_config(0, ""));
    wait_counter(&envoy, &format!("{ECDS_STAT}.update_rejected"), 1);
    assert_eq!(call(port, "/a", &who).status, 200, "3 of 3");
    assert_eq!(call(port, "/a", &who).status, 429);
    // An accepted update raising the limit to 5: the 3 already counted stay counted.
    publish(&path, &plan_config(5, r#","headers":{"on_allowed":true}"#));
    wait_counter(&envoy, &format!("{ECDS_STAT}.update_success"), 2);
    let r = call(port, "/a", &who);
    assert_eq!(r.status, 200);
    let rl = r.header("ratelimit").unwrap();
    assert!(rl.starts_with("\"p\";r=1;"), "4 of 5 used: {rl}");
    assert_eq!(call(port, "/a", &who).status, 200, "5 of 5");
    assert_eq!(call(port, "/a", &who).status, 429);
    let _ = std::fs::remove_dir_all(&dir);
}
