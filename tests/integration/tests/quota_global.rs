//! The quota filter's global tier against the reference Rate Limit Service: envoyproxy/ratelimit
//! (built by `make setup-ratelimit`) counting in a real redis-server (`make setup-redis`), both
//! started here with the compose demo's ratelimit configuration as is
//! (`demo/compose/ratelimit/config/apim.yaml`), and two Envoy processes (2 workers each) with
//! the quota filter in global mode sharing them, as replicas would.
//!
//! Every test starts its own Redis, ratelimit and Envoys, so killing one never disturbs
//! another test, and counts under its own `x-user`.
//!
//! Windows are the service's, aligned on the epoch (a minute plan counts in 12:34:00-12:34:59).
//! No test may straddle one by luck: before its counted requests a test waits, bounded, until
//! enough of the window remains ([`window_with_margin`]: at most the margin), and the exact
//! tests then check in Redis that every hit landed under one window's key.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apim_integration::bootstrap::{bootstrap, upstream_cluster};
use apim_integration::chain::{main_listener, Chain, Filter, Form};
use apim_integration::ratelimit::{Options, RateLimit, Redis};
use apim_integration::{Envoy, Request, Response};

/// Plans: `burst` (20 per minute) for the exact count under load, hourly ones for the rest
/// (a test with restarts in it takes seconds, an hour leaves room). Every plan but `open` fails
/// closed, so a Rate Limit Service failure in a counting test shows as a 503, never as a
/// silent admission. The 2 s timeout is for a loaded 2-core machine, not a deployment.
const FILTER: &str = r#"{
  "plans": {
    "open": {"limits": [{"requests": 5, "per": "hour", "name": "hourly"}], "failure_mode": "open"},
    "closed": {"limits": [{"requests": 5, "per": "hour", "name": "hourly"}], "failure_mode": "closed"},
    "burst": {"limits": [{"requests": 20, "per": "minute", "name": "minute"}], "failure_mode": "closed"},
    "costly": {"limits": [{"requests": 10, "per": "hour", "name": "costly"}], "failure_mode": "closed"}
  },
  "default_plan": "open",
  "key": [{"header": "x-user"}],
  "rules": [
    {"match": {"path": {"prefix": "/closed"}}, "plan": "closed"},
    {"match": {"path": {"prefix": "/burst"}}, "plan": "burst"},
    {"match": {"path": {"prefix": "/cost"}}, "plan": "costly", "cost": 4}
  ],
  "headers": {"on_allowed": true, "legacy": true},
  "global": {"cluster": "ratelimit", "domain": "apim", "timeout_ms": 2000}
}"#;

/// The listener `main` answering every request itself (200, no upstream) behind the quota
/// filter in global mode, and the Rate Limit Service's gRPC cluster at `rls_port`. Modules
/// only but for one test per native form (`costs_add_up_in_the_native_forms`): each test starts
/// two Envoys plus ratelimit, so a run per form would double the file.
fn config(rls_port: u16, form: Form) -> String {
    let filter: serde_json::Value = serde_json::from_str(FILTER).unwrap();
    let chain = Chain::new().filter(Filter::Quota, &filter.to_string());
    bootstrap(
        &[main_listener(&chain, form).direct_response("all", "/", 200)],
        &[upstream_cluster("ratelimit")
            .port(rls_port)
            .connect_timeout("1s")
            .http2()],
    )
}

/// Redis, ratelimit and two Envoys pointed at it. Fields drop in reverse order of need:
/// Envoys first.
struct Stack {
    a: Envoy,
    b: Envoy,
    service: RateLimit,
    redis: Redis,
}

fn stack(options: Options) -> Stack {
    stack_in(options, Form::Modules)
}

fn stack_in(options: Options, form: Form) -> Stack {
    let redis = Redis::start().unwrap_or_else(|e| panic!("{e}"));
    let service = RateLimit::start_with(&redis, options).unwrap_or_else(|e| panic!("{e}"));
    let config = config(service.grpc_port(), form);
    let start = || {
        Envoy::builder()
            .concurrency(2)
            .start(&config)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let (a, b) = (start(), start());
    Stack {
        a,
        b,
        service,
        redis,
    }
}

impl Stack {
    fn envoys(&self) -> [&Envoy; 2] {
        [&self.a, &self.b]
    }
}

fn call(envoy: &Envoy, path: &str, user: &str) -> Response {
    Request::get(path)
        .header("x-user", user)
        .send(envoy.port())
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// A user name no other test (or earlier run against the same Redis) uses.
fn user(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Returns once at least `margin` seconds remain of the current epoch-aligned window of `unit`
/// seconds, waiting for the next window if fewer do (the wait is at most `margin` + 1 s); the
/// seconds left. What follows must take less than `margin`, which the Redis checks prove.
fn window_with_margin(unit: u64, margin: u64) -> u64 {
    assert!(margin < unit);
    let deadline = Instant::now() + Duration::from_secs(margin + 2);
    loop {
        let left = unit - now() % unit;
        if left >= margin {
            return left;
        }
        assert!(Instant::now() < deadline, "the clock did not move on");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// ratelimit's Redis keys for `user` (`apim_quota_plan_<p>_quota_limit_<l>_quota_key_=<user>_<window start>`).
fn keys_of(redis: &Redis, user: &str) -> Vec<String> {
    redis
        .keys(&format!("apim_*_quota_key_={user}_*"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Polls `counter` on `envoy` until it is `want` (bounded, 10 s): counters are not read in the
/// same instant the response is sent.
fn wait_counter(envoy: &Envoy, counter: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = envoy.count(counter);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{counter} is {got}, expected {want}: {:?}",
            envoy.admin_get("/stats?filter=quota")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn header<'a>(r: &'a Response, name: &str) -> &'a str {
    r.header(name)
        .unwrap_or_else(|| panic!("no {name} header (status {})", r.status))
}

/// `"<limit>";r=<remaining>;t=<seconds>` → (remaining, seconds).
fn ratelimit_field(r: &Response, limit: &str) -> (u64, u64) {
    let value = header(r, "ratelimit");
    let rest = value
        .strip_prefix(&format!("\"{limit}\";r="))
        .unwrap_or_else(|| panic!("ratelimit: {value}"));
    let (remaining, t) = rest.split_once(";t=").unwrap();
    (remaining.parse().unwrap(), t.parse().unwrap())
}

/// A plan of 20 per minute admits exactly 20 across both Envoys together, under 8 concurrent
/// clients each alternating between them (48 requests), all in one minute window. The
/// `RateLimit` fields agree with the count: the admitted answers carry every remaining count
/// from 19 down to 0 exactly once (each was one increment in Redis), the refusals carry 0, and
/// every answer names the plan's policy.
#[test]
fn a_minute_plan_admits_exactly_its_limit_across_two_envoys_under_concurrent_load() {
    let s = stack(Options::default());
    let who = user("burst");
    let left = window_with_margin(60, 30);
    let answers = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for client in 0..8 {
            let (answers, who, s) = (&answers, &who, &s);
            scope.spawn(move || {
                for i in 0..6 {
                    let r = call(s.envoys()[(client + i) % 2], "/burst", who);
                    answers.lock().unwrap().push(r);
                }
            });
        }
    });
    let answers = answers.into_inner().unwrap();
    let statuses = |code: u16| answers.iter().filter(|r| r.status == code).count();
    assert_eq!(
        (statuses(200), statuses(429), answers.len()),
        (20, 28, 48),
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let mut remaining = Vec::new();
    for r in &answers {
        assert_eq!(header(r, "ratelimit-policy"), "\"minute\";q=20;w=60");
        let (r_left, t) = ratelimit_field(r, "minute");
        assert!((1..=left).contains(&t), "t={t}, {left} s were left");
        if r.status == 200 {
            remaining.push(r_left);
        } else {
            assert_eq!(r_left, 0);
            assert_eq!(header(r, "retry-after"), t.to_string());
            assert_eq!(r.json()["code"], "quota_exceeded");
        }
    }
    remaining.sort_unstable();
    assert_eq!(remaining, (0..20).collect::<Vec<u64>>());
    // One window's key, every request counted in it (ratelimit counts refused hits too).
    let keys = keys_of(&s.redis, &who);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(s.redis.cli(&["GET", &keys[0]]).unwrap().trim(), "48");
    // Both Envoys decided half of them: 24 each, whatever the split of 200s.
    for envoy in s.envoys() {
        let deadline = Instant::now() + Duration::from_secs(10);
        while envoy.count("wasmcustom.apim.quota.allowed")
            + envoy.count("wasmcustom.apim.quota.limited")
            != 24
        {
            assert!(
                Instant::now() < deadline,
                "{:?}",
                envoy.admin_get("/stats?filter=quota")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(envoy.count("wasmcustom.apim.quota.global_errors"), 0);
    }
}

/// Costs travel as `hits_addend` and add up across replicas: 4 + 4 of 10 admitted, the next 4
/// refused wherever it is sent, with Retry-After and the RateLimit fields from the service.
#[test]
fn costs_add_up_across_envoys_and_a_refusal_carries_the_fields() {
    costs_add_up(Form::Modules);
}

/// The native forms make the global tier's gRPC call as an HTTP/2 stream (the ABI has no gRPC
/// client): the same counts and answers.
#[test]
fn costs_add_up_in_the_native_forms() {
    for form in [Form::Native, Form::NativeSuite] {
        eprintln!("--- form: {form:?}");
        costs_add_up(form);
    }
}

fn costs_add_up(form: Form) {
    let s = stack_in(Options::default(), form);
    let who = user("cost");
    window_with_margin(3600, 120);
    let first = call(&s.a, "/cost", &who);
    assert_eq!(first.status, 200);
    assert_eq!(ratelimit_field(&first, "costly").0, 6);
    let second = call(&s.b, "/cost", &who);
    assert_eq!(second.status, 200);
    assert_eq!(ratelimit_field(&second, "costly").0, 2);
    assert_eq!(header(&second, "x-ratelimit-remaining"), "2");
    for envoy in s.envoys() {
        let r = call(envoy, "/cost", &who);
        assert_eq!(r.status, 429);
        let retry: u64 = header(&r, "retry-after").parse().unwrap();
        assert!((1..=3600).contains(&retry), "{retry}");
        assert_eq!(header(&r, "ratelimit-policy"), "\"costly\";q=10;w=3600");
        assert_eq!(header(&r, "ratelimit"), format!("\"costly\";r=0;t={retry}"));
        assert_eq!(header(&r, "x-ratelimit-limit"), "10");
        assert_eq!(header(&r, "x-ratelimit-remaining"), "0");
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        let body = r.json();
        assert_eq!(body["code"], "quota_exceeded");
        assert_eq!(body["limit"], "costly");
    }
    let keys = keys_of(&s.redis, &who);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(s.redis.cli(&["GET", &keys[0]]).unwrap().trim(), "16");
}

/// While the service (or its Redis) is down, each plan's `failure_mode` holds on both Envoys:
/// `open` admits, `closed` answers 503 `quota_unavailable` with `Retry-After: 1`; each failure
/// counts `global_errors`. Fresh users, so nothing here touches the counts under test.
fn failure_modes_hold(s: &Stack, test: &str) {
    for envoy in s.envoys() {
        let before = envoy.count("wasmcustom.apim.quota.global_errors");
        let open = call(envoy, "/open", &user(&format!("{test}-open")));
        assert_eq!(open.status, 200, "open: {}", open.text());
        let closed = call(envoy, "/closed", &user(&format!("{test}-closed")));
        assert_eq!(closed.status, 503, "closed: {}", closed.text());
        assert_eq!(closed.json()["code"], "quota_unavailable");
        assert_eq!(closed.header("retry-after"), Some("1"));
        wait_counter(envoy, "wasmcustom.apim.quota.global_errors", before + 2);
    }
}

/// Kill ratelimit: the failure modes hold. Restart it: counting resumes where it was, since
/// the counts live in Redis (3 of 5 used before, the 4th and 5th admitted after, the 6th
/// refused).
#[test]
fn killing_ratelimit_fails_each_plan_its_way_and_a_restart_resumes_the_count() {
    ratelimit_down_and_back(Form::Modules);
}

/// The native suite's gRPC stream to a dead service: each plan's failure mode, as in Wasm.
#[test]
fn killing_ratelimit_in_the_native_suite_fails_each_plan_its_way() {
    ratelimit_down_and_back(Form::NativeSuite);
}

fn ratelimit_down_and_back(form: Form) {
    let mut s = stack_in(Options::default(), form);
    let who = user("rl-restart");
    window_with_margin(3600, 300);
    for envoy in [&s.a, &s.b, &s.a] {
        assert_eq!(call(envoy, "/closed", &who).status, 200);
    }
    s.service.kill();
    failure_modes_hold(&s, "rl-down");
    s.service.restart().unwrap_or_else(|e| panic!("{e}"));
    let fourth = call(&s.b, "/closed", &who);
    assert_eq!(fourth.status, 200, "{}", fourth.text());
    assert_eq!(ratelimit_field(&fourth, "hourly").0, 1, "4 of 5 used");
    assert_eq!(call(&s.a, "/closed", &who).status, 200);
    assert_eq!(call(&s.b, "/closed", &who).status, 429);
    assert_eq!(keys_of(&s.redis, &who).len(), 1);
}

/// Kill Redis under a running ratelimit: its errors reach the filter and the failure modes
/// hold. Restart Redis (empty: no persistence): once ratelimit has reconnected, counting starts
/// over and is exact again (5 admitted, the 6th refused).
///
/// ratelimit keeps a pool of Redis connections and finds a dead one only by using it (or its
/// periodic ping), one at a time and at random: with the default 10, requests after the restart
/// could still meet an old connection. A pool of 1 makes "ratelimit answered once" mean "every
/// connection is new".
#[test]
fn killing_redis_fails_each_plan_its_way_and_a_restart_resumes_counting() {
    let mut s = stack(Options {
        env: vec![("REDIS_POOL_SIZE".into(), "1".into())],
        ..Options::default()
    });
    let who = user("redis-restart");
    window_with_margin(3600, 300);
    for envoy in s.envoys() {
        assert_eq!(call(envoy, "/closed", &who).status, 200);
    }
    s.redis.kill();
    failure_modes_hold(&s, "redis-down");
    s.redis.restart().unwrap_or_else(|e| panic!("{e}"));
    // Bounded: ratelimit reconnects with a backoff of at most 4 s.
    let probe = serde_json::json!({
        "domain": "apim",
        "descriptors": [{"entries": [{"key": "quota_plan", "value": "probe"}],
                         "limit": {"requests_per_unit": 1000000, "unit": "HOUR"}}]
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(e) = s.service.should_rate_limit_json(&probe) {
        assert!(
            Instant::now() < deadline,
            "ratelimit never reconnected: {e}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let statuses: Vec<u16> = (0..6)
        .map(|i| call(s.envoys()[i % 2], "/closed", &who).status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    let keys = keys_of(&s.redis, &who);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(s.redis.cli(&["GET", &keys[0]]).unwrap().trim(), "6");
}

/// A missing binary fails with the make target that builds it (never a silent skip).
#[test]
fn a_missing_ratelimit_binary_names_its_make_target() {
    let missing = std::path::Path::new("/nonexistent/ratelimit");
    let err = apim_integration::ratelimit::ratelimit_bin_at(missing).unwrap_err();
    assert!(err.contains("make setup-ratelimit"), "{err}");
}
