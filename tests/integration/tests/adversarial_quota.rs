//! Hostile requests against the quota module in the pinned Envoy (2 workers), one dedicated
//! Envoy per test so every counter delta is exact. Each test names the issue-10 item it proves
//! and fails on the code before the fix (said in its doc). Every test that starts an Envoy runs
//! in each form of the suite (`for_each_form`): its own module, and a stage of `apim_suite.wasm`.
//!
//! Limits use a window of about 360 days whose size is chosen from the current time so that now
//! sits in its middle ([`mid_window`]): no test can see a window end, whatever the date.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apim_integration::bootstrap::upstream_cluster;
use apim_integration::chain::{for_each_form, main_listener, Chain, Filter, Form};
use apim_integration::demo_keys::BOB;
use apim_integration::{Envoy, Request, Response};

/// A window size in seconds (at most 366 days) with now in the middle of its current
/// epoch-aligned window: `now / n` is `k + ½` for an integer `k`, so about `n / 2` remain.
fn mid_window() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let k = now / 31_622_400 + 1;
    let n = now * 2 / (2 * k + 1);
    assert!(n <= 31_622_400 && now % n > n / 4 && n - now % n > n / 4);
    n
}

/// Plan `p`: 2 requests per [`mid_window`], limit name `year`.
fn year_plan() -> String {
    format!(
        r#""plans": {{"p": {{"limits": [{{"requests": 2, "per": {}, "name": "year"}}]}}}}"#,
        mid_window()
    )
}

/// One listener in front of the echo upstream, the chain in `form`: `hcm_extra` goes into the connection manager,
/// `listener_extra` into the listener (YAML, may be empty), `before` is the filters ahead of
/// quota, `quota` the quota filter's JSON config.
fn bootstrap(
    form: Form,
    hcm_extra: &str,
    listener_extra: &str,
    before: Chain,
    quota: &str,
) -> String {
    let compact = serde_json::from_str::<serde_json::Value>(quota)
        .unwrap()
        .to_string();
    let chain = before.filter(Filter::Quota, &compact);
    let l = main_listener(&chain, form)
        .listener_options(listener_extra)
        .hcm_options(hcm_extra);
    apim_integration::bootstrap::bootstrap(
        &[l],
        &[upstream_cluster("upstream").connect_timeout("1s").untyped()],
    )
}

fn start(yaml: &str) -> Envoy {
    Envoy::builder()
        .concurrency(2)
        .start(yaml)
        .unwrap_or_else(|e| panic!("starting Envoy: {e}"))
}

fn get(envoy: &Envoy, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut r = Request::get(path);
    for (k, v) in headers {
        r = r.header(k, v);
    }
    r.send(envoy.port())
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Waits until the counter reaches `want` exactly (counters are flushed asynchronously), and
/// fails if it passes it.
fn counter_is(envoy: &Envoy, name: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = envoy.count(name);
        assert!(got <= want, "{name} = {got}, want {want}");
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} = {got}, want {want}: {:?}",
            envoy.admin_get("/stats?filter=quota|upstream_rq_total")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Requests the upstream received (the echo cluster's stat).
fn upstream_requests(envoy: &Envoy) -> u64 {
    envoy.upstream_requests("upstream")
}

fn wasm(name: &str) -> String {
    format!("wasmcustom.apim.quota.{name}")
}

/// The slot the pre-fix code chose: unkeyed FNV-1a of `<plan> U+001F <key>`, modulo 1024.
fn old_slot(family: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in family {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h % 1024
}

/// `n` header values of 250 bytes whose family shares `target`'s slot under `slot_of`.
fn aimed(n: usize, target: u64, slot_of: impl Fn(&str) -> u64) -> Vec<String> {
    (0u64..)
        .map(|i| format!("{i:0>250}"))
        .filter(|v| slot_of(v) == target)
        .take(n)
        .collect()
}

/// Item 7. 130 keys crafted to share the victim's slot under the old unkeyed FNV hash used to
/// fill it past 32 KiB, evicting the victim's used-up counter: the victim was admitted again
/// inside its window. Now slots are chosen by a keyed hash (a random key per process), so the
/// crafted keys scatter, and the victim stays refused.
#[test]
fn crafted_colliding_keys_no_longer_reset_a_victims_count() {
    for_each_form(|form| {
        let plan = year_plan();
        let config = format!(r#"{{{plan}, "default_plan": "p", "key": [{{"header": "x-user"}}]}}"#);
        let envoy = start(&bootstrap(form, "", "", Chain::new(), &config));
        let victim = "victim";
        for want in [200, 200, 429] {
            assert_eq!(get(&envoy, "/v", &[("x-user", victim)]).status, want);
        }
        let target = old_slot(format!("p\u{1f}{victim}").as_bytes());
        let attackers = aimed(130, target, |v| old_slot(format!("p\u{1f}{v}").as_bytes()));
        for a in &attackers {
            assert_eq!(get(&envoy, "/a", &[("x-user", a)]).status, 200);
        }
        let r = get(&envoy, "/v", &[("x-user", victim)]);
        assert_eq!(
            r.status, 429,
            "the victim's count was reset by colliding keys"
        );
        assert_eq!(r.json()["code"], "quota_exceeded");
        counter_is(&envoy, &wasm("allowed"), 2 + 130);
        counter_is(&envoy, &wasm("limited"), 2);
        counter_is(&envoy, &wasm("store_full"), 0);
        assert_eq!(upstream_requests(&envoy), 132);
    });
}

/// Item 7, the store itself. With a slot key the attacker knows (config `slot_key`, meant for
/// tests), keys aimed at the victim's slot fill it; a live counter is never evicted: new
/// callers in the full slot get 503 `quota_store_full` (counted), and the victim stays refused.
/// Before: `slot_key` did not exist (the config was refused) and the slot evicted the victim.
#[test]
fn a_full_slot_refuses_new_callers_and_never_evicts_a_live_counter() {
    for_each_form(|form| {
        let plan = year_plan();
        let hex = "00112233445566778899aabbccddeeff";
        let key: [u8; 16] =
            core::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap());
        let config = format!(
            r#"{{{plan}, "default_plan": "p", "key": [{{"header": "x-user"}}], "slot_key": "{hex}"}}"#
        );
        let envoy = start(&bootstrap(form, "", "", Chain::new(), &config));
        let slot = |v: &str| quota::store::slot_key(&key, format!("p\u{1f}={v}").as_bytes());
        let victim = "victim";
        for want in [200, 200, 429] {
            assert_eq!(get(&envoy, "/v", &[("x-user", victim)]).status, want);
        }
        let target = slot(victim);
        let attackers: Vec<String> = (0u64..)
            .map(|i| format!("{i:0>250}"))
            .filter(|v| slot(v) == target)
            .take(130)
            .collect();
        let (mut admitted, mut full) = (0u64, 0u64);
        for a in &attackers {
            let r = get(&envoy, "/a", &[("x-user", a)]);
            match r.status {
                200 => admitted += 1,
                503 => {
                    assert_eq!(r.json()["code"], "quota_store_full");
                    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
                    assert!((1..=3600).contains(&retry), "{retry}");
                    full += 1;
                }
                s => panic!("status {s}"),
            }
        }
        // 32 KiB hold ~115 entries of ~283 bytes: the rest of the 130 find no room.
        assert!(
            full >= 10 && admitted >= 100,
            "{admitted} admitted, {full} full"
        );
        assert_eq!(admitted + full, 130);
        // Every admitted attacker is still counted: its second request counts on.
        assert_eq!(get(&envoy, "/a", &[("x-user", &attackers[0])]).status, 200);
        assert_eq!(get(&envoy, "/v", &[("x-user", victim)]).status, 429);
        counter_is(&envoy, &wasm("store_full"), full);
        counter_is(&envoy, &wasm("allowed"), 2 + admitted + 1);
        assert_eq!(upstream_requests(&envoy), 2 + admitted + 1);
    });
}

/// Item 5. A caller with no plan (no `default_plan`) was not limited at all, and a plan the
/// quota config does not know fell silently to `default_plan`. Now: 403 `quota_plan_unknown`,
/// counted, the upstream never sees it; `unknown_plan: "unlimited"` must be said explicitly.
#[test]
fn a_caller_without_a_plan_is_refused_unless_the_config_says_unlimited() {
    for_each_form(|form| {
        let plan = year_plan();
        let config = format!(r#"{{{plan}, "key": [{{"header": "x-user"}}]}}"#);
        let envoy = start(&bootstrap(form, "", "", Chain::new(), &config));
        for _ in 0..3 {
            let r = get(&envoy, "/x", &[("x-user", "nobody")]);
            assert_eq!(r.status, 403);
            assert_eq!(r.header("content-type"), Some("application/problem+json"));
            assert_eq!(r.json()["code"], "quota_plan_unknown");
        }
        counter_is(&envoy, &wasm("plan_unknown"), 3);
        assert_eq!(upstream_requests(&envoy), 0);
        drop(envoy);

        let open = start(&bootstrap(
            form,
            "",
            "",
            Chain::new(),
            &format!(r#"{{{plan}, "key": [{{"header": "x-user"}}], "unknown_plan": "unlimited"}}"#),
        ));
        for _ in 0..3 {
            assert_eq!(get(&open, "/x", &[("x-user", "nobody")]).status, 200);
        }
        counter_is(&open, &wasm("passed"), 3);
        assert_eq!(upstream_requests(&open), 3);
    });
}

const API_KEY_AUTH: &str = r#"{"consumers": [{"id": "bob", "plan": "platinum", "keys": [{"sha256": "3ddaba5e842f5e66e7dfbc3a318416be5097ae49ffe348fbf2c6f9e815a2df26"}]}, {"id": "guest", "plan": "p"}], "rules": [{"match": {"path": {"prefix": "/public"}}, "anonymous": "guest"}], "allow_cors_preflight": true}"#;

fn api_key_auth() -> Chain {
    api_key_auth_with(API_KEY_AUTH)
}

fn api_key_auth_with(config: &str) -> Chain {
    Chain::new().filter(Filter::ApiKeyAuth, config)
}

/// Item 5 behind api-key-auth: bob's identity names plan `platinum`, which quota does not
/// have. Before, he fell to `default_plan` (counted as someone else's plan); now he is refused
/// with 403 `quota_plan_unknown`, and the upstream never sees him.
#[test]
fn an_identity_naming_an_unconfigured_plan_is_refused() {
    for_each_form(|form| {
        let plan = year_plan();
        let config = format!(r#"{{{plan}, "default_plan": "p"}}"#);
        let envoy = start(&bootstrap(form, "", "", api_key_auth(), &config));
        let r = get(&envoy, "/pets", &[("x-api-key", BOB)]);
        assert_eq!(r.status, 403);
        assert_eq!(r.json()["code"], "quota_plan_unknown");
        counter_is(&envoy, &wasm("plan_unknown"), 1);
        assert_eq!(upstream_requests(&envoy), 0);
    });
}

/// Item 10, shipped-config defaults. Anonymous callers (no identity, or api-key-auth's
/// `anonymous` consumer listed in `anonymous_consumers`) are counted per client address, and
/// CORS preflights in counters of their own: one address using up its quota leaves other
/// addresses and its own preflights alone. Before: every anonymous caller shared one counter
/// (`-`, or the guest consumer's), so one flood refused everyone.
///
/// Envoy is told (`use_remote_address`, `xff_num_trusted_hops: 1`) that the test client is a
/// trusted proxy, so `x-forwarded-for` gives each request its client address.
#[test]
fn anonymous_callers_and_preflights_do_not_share_one_bucket() {
    for_each_form(|form| {
        let plan = year_plan();
        let hcm = "use_remote_address: true\nxff_num_trusted_hops: 1\n";
        let config =
            format!(r#"{{{plan}, "default_plan": "p", "anonymous_consumers": ["guest"]}}"#);
        let envoy = start(&bootstrap(form, hcm, "", api_key_auth(), &config));
        let call = |path: &str, addr: &str| get(&envoy, path, &[("x-forwarded-for", addr)]);
        // Address A uses up its 2 on /public (api-key-auth's anonymous guest).
        for want in [200, 200, 429] {
            assert_eq!(call("/public/x", "10.0.0.1").status, want);
        }
        // Address B is another caller.
        assert_eq!(call("/public/x", "10.0.0.2").status, 200);
        // A's preflights have their own counter.
        let preflight = |addr: &str| {
            Request::new("OPTIONS", "/public/x")
                .header("x-forwarded-for", addr)
                .header("origin", "https://app.example")
                .header("access-control-request-method", "POST")
                .send(envoy.port())
                .unwrap()
                .status
        };
        assert_eq!(preflight("10.0.0.1"), 200);
        assert_eq!(preflight("10.0.0.1"), 200);
        assert_eq!(preflight("10.0.0.1"), 429);
        assert_eq!(preflight("10.0.0.2"), 200);
        // An IPv6 host is one caller for its whole /64.
        assert_eq!(call("/public/x", "2001:db8:1:2::1").status, 200);
        assert_eq!(call("/public/x", "2001:db8:1:2::ffff").status, 200);
        assert_eq!(call("/public/x", "2001:db8:1:2:aaaa::9").status, 429);
        counter_is(&envoy, &wasm("allowed"), 2 + 1 + 2 + 1 + 2);
        counter_is(&envoy, &wasm("limited"), 3);
        assert_eq!(upstream_requests(&envoy), 8);
    });
}

/// Item 10: the client address is Envoy's, never the client's word. Without trusted hops an
/// `x-forwarded-for` the client sends does not change its counter.
#[test]
fn a_client_cannot_pick_its_anonymous_counter_with_x_forwarded_for() {
    for_each_form(|form| {
        let plan = year_plan();
        let hcm = "use_remote_address: true\n";
        let config = format!(r#"{{{plan}, "default_plan": "p"}}"#);
        let envoy = start(&bootstrap(form, hcm, "", Chain::new(), &config));
        let statuses: Vec<u16> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
            .iter()
            .map(|a| get(&envoy, "/x", &[("x-forwarded-for", a)]).status)
            .collect();
        assert_eq!(statuses, vec![200, 200, 429]);
        assert_eq!(upstream_requests(&envoy), 2);
    });
}

/// Item 11. Four 256-byte key parts make a counter name longer than the 1024 bytes stored;
/// the old code cut it, so two callers differing only at the end shared a counter (the second
/// was refused for the first's use). Now an overlong family is hashed whole.
#[test]
fn long_keys_never_share_a_counter() {
    for_each_form(|form| {
        let plan = year_plan();
        let config = format!(
            r#"{{{plan}, "default_plan": "p",
                 "key": [{{"header": "x-a"}}, {{"header": "x-b"}}, {{"header": "x-c"}}, {{"header": "x-d"}}]}}"#
        );
        let envoy = start(&bootstrap(form, "", "", Chain::new(), &config));
        let v = "v".repeat(256);
        let send = |last: &str| {
            get(
                &envoy,
                "/x",
                &[("x-a", &v), ("x-b", &v), ("x-c", &v), ("x-d", last)],
            )
            .status
        };
        let (one, two) = (
            format!("{}1", "w".repeat(255)),
            format!("{}2", "w".repeat(255)),
        );
        assert_eq!(send(&one), 200);
        assert_eq!(send(&one), 200);
        assert_eq!(send(&one), 429);
        assert_eq!(send(&two), 200, "another caller, its own counter");
        assert_eq!(upstream_requests(&envoy), 3);
    });
}

/// Item 11. With `cost_from_filter_state`, the old code held every request body until its end,
/// even on routes it does not count: a body past the connection's buffer limit then failed
/// (413) on a skipped route. Now a request not counted whatever its cost is never held.
#[test]
fn skipped_routes_never_hold_the_body() {
    for_each_form(|form| {
        let plan = year_plan();
        let config = format!(
            r#"{{{plan}, "default_plan": "p", "cost_from_filter_state": true,
                 "rules": [{{"match": {{"path": {{"prefix": "/upload"}}}}, "skip": true}}]}}"#
        );
        let listener_extra = "per_connection_buffer_limit_bytes: 16384\n";
        let envoy = start(&bootstrap(form, "", listener_extra, Chain::new(), &config));
        let body = vec![b'x'; 512 * 1024];
        let r = Request::new("POST", "/upload/big")
            .header("content-type", "application/octet-stream")
            .body(body.clone())
            .send(envoy.port())
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let seen = r.json()["body"].as_str().unwrap().len();
        assert_eq!(seen, body.len(), "the upstream received the whole body");
        counter_is(&envoy, &wasm("passed"), 1);
        counter_is(&envoy, &wasm("allowed"), 0);
    });
}

/// Item 1. Behind a connection manager that does not normalise paths, a skip rule for
/// `/public` must not match `/public/..%2Fadmin` (a backend that decodes `%2F` serves
/// `/admin`): it is counted, and the pass-over is counted as `path_ambiguous`. Before: skipped.
#[test]
fn an_ambiguous_path_never_matches_a_skip_rule() {
    for_each_form(|form| {
        let plan = year_plan();
        let hcm = "normalize_path: false\nmerge_slashes: false\n";
        let config = format!(
            r#"{{{plan}, "default_plan": "p", "key": [{{"header": "x-user"}}],
                 "rules": [{{"match": {{"path": {{"prefix": "/public"}}}}, "skip": true}}]}}"#
        );
        let envoy = start(&bootstrap(form, hcm, "", Chain::new(), &config));
        let user = [("x-user", "mallory")];
        for _ in 0..3 {
            assert_eq!(get(&envoy, "/public/x", &user).status, 200);
        }
        let statuses: Vec<u16> = [
            "/public/..%2Fadmin",
            "/public/..%5Cadmin",
            "/public/%2e%2e%2fadmin",
        ]
        .iter()
        .map(|p| get(&envoy, p, &user).status)
        .collect();
        assert_eq!(statuses, vec![200, 200, 429]);
        counter_is(&envoy, &wasm("passed"), 3);
        counter_is(&envoy, &wasm("path_ambiguous"), 3);
        counter_is(&envoy, &wasm("limited"), 1);
        assert_eq!(upstream_requests(&envoy), 5);
    });
}

/// `/pets/..;/admin` meets `/pets`'s rule (cost 1) on Envoy's path and `/admin`'s (cost 2) read
/// as Tomcat or Spring read it: which cost applies is unknown, so it is refused 400
/// `path_ambiguous`, charged nothing and counted `denied.path_ambiguous`; the upstream sees
/// nothing. The caller's full quota (2) is left for `/pets/x`. Before: charged 1 and let
/// through to a backend that serves `/admin`.
#[test]
fn a_path_read_as_two_routes_is_refused_uncharged() {
    for_each_form(|form| {
        let plan = year_plan();
        let hcm = "normalize_path: false\nmerge_slashes: false\n";
        let config = format!(
            r#"{{{plan}, "default_plan": "p", "key": [{{"header": "x-user"}}],
                 "rules": [{{"match": {{"path": {{"prefix": "/pets"}}}}, "cost": 1}},
                           {{"match": {{"path": {{"prefix": "/admin"}}}}, "cost": 2}}]}}"#
        );
        let envoy = start(&bootstrap(form, hcm, "", Chain::new(), &config));
        let user = [("x-user", "mallory")];
        for path in ["/pets/..;/admin", "/pets/..%2Fadmin", "/admin/..;/pets"] {
            let r = get(&envoy, path, &user);
            assert_eq!(r.status, 400, "{path}: {}", r.text());
            assert_eq!(r.json()["code"], "path_ambiguous", "{path}");
        }
        counter_is(&envoy, &wasm("denied.path_ambiguous"), 3);
        assert_eq!(
            upstream_requests(&envoy),
            0,
            "the upstream saw a refused request"
        );
        let statuses: Vec<u16> = ["/pets/x", "/pets/..;/other", "/pets/y"]
            .iter()
            .map(|p| get(&envoy, p, &user).status)
            .collect();
        assert_eq!(statuses, vec![200, 200, 429]);
        counter_is(&envoy, &wasm("allowed"), 2);
        counter_is(&envoy, &wasm("limited"), 1);
        counter_is(&envoy, &wasm("denied.path_ambiguous"), 3);
        assert_eq!(upstream_requests(&envoy), 2);
    });
}

/// The guard holds the headers until it has judged the body (the chain gives it
/// `allow_on_headers_stop_iteration`).
fn graphql_guard() -> Chain {
    Chain::new().filter(Filter::GraphqlGuard, r#"{"limits": {"max_depth": 2}}"#)
}

/// Item 10. A GraphQL operation graphql-guard refuses (at the end of its body) is never
/// charged: quota counts once every filter before it has decided (here at the end of the body,
/// with `cost_from_filter_state`; with graphql-guard holding the headers until it has judged
/// the body, quota sees only what passed). Three refused operations, then the full quota of 2.
#[test]
fn an_operation_refused_by_graphql_guard_is_never_charged() {
    for_each_form(|form| {
        let plan = year_plan();
        let config = format!(
            r#"{{{plan}, "default_plan": "p", "key": [{{"header": "x-user"}}], "cost_from_filter_state": true,
                 "rules": [{{"match": {{"path": {{"prefix": "/graphql"}}}}, "await_cost": true}}]}}"#
        );
        let envoy = start(&bootstrap(form, "", "", graphql_guard(), &config));
        let send = |query: &str| {
            Request::new("POST", "/graphql")
                .header("x-user", "gina")
                .header("content-type", "application/json")
                .body(serde_json::json!({ "query": query }).to_string())
                .send(envoy.port())
                .unwrap()
                .status
        };
        for _ in 0..3 {
            let s = send("{ a { b { c { d } } } }");
            assert!(
                (400..500).contains(&s) && s != 429,
                "refused by the guard: {s}"
            );
        }
        assert_eq!(send("{ a }"), 200);
        assert_eq!(send("{ a }"), 200);
        assert_eq!(send("{ a }"), 429);
        counter_is(&envoy, &wasm("allowed"), 2);
        counter_is(&envoy, &wasm("limited"), 1);
        // The upstream answered exactly the 2 admitted. (The third's headers went on before its
        // body ended, as this graphql-guard publishes the cost only then; the 429 reset it. With
        // the guard holding the headers until it has judged the body, quota decides at the
        // headers and nothing reaches the upstream.)
        assert_eq!(envoy.counter("cluster.upstream.upstream_rq_2xx"), Some(2));
    });
}

/// The quota configs of the shipped bootstraps (`envoy/gateway.yaml`, `envoy/examples/
/// quota.yaml`), as the filter parses them.
fn shipped_quota_configs() -> Vec<(String, quota::config::Config)> {
    let mut out = Vec::new();
    for file in ["envoy/gateway.yaml", "envoy/examples/quota.yaml"] {
        let text = std::fs::read_to_string(apim_integration::repo_root().join(file)).unwrap();
        let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let listeners = yaml["static_resources"]["listeners"].as_sequence().unwrap();
        for l in listeners {
            for chain in l["filter_chains"].as_sequence().unwrap() {
                for f in chain["filters"].as_sequence().unwrap() {
                    let Some(http) = f["typed_config"]["http_filters"].as_sequence() else {
                        continue;
                    };
                    for h in http.iter().filter(|h| h["name"] == "apim.quota") {
                        let value = h["typed_config"]["config"]["configuration"]["value"]
                            .as_str()
                            .unwrap();
                        let c = quota::config::Config::parse(value.as_bytes())
                            .unwrap_or_else(|e| panic!("{file}: {e}"));
                        out.push((file.to_string(), c));
                    }
                }
            }
        }
    }
    out
}

/// Item 10 (and 5, 7) in the shipped configs: anonymous callers are counted per client
/// address, preflights in counters of their own, an unknown plan is refused, and a store that
/// cannot count refuses; nothing loosens a default without a warning.
#[test]
fn shipped_configs_keep_anonymous_callers_and_preflights_apart_and_fail_closed() {
    use quota::config::{MissingKey, Preflight, StoreFallback, UnknownPlan};
    let configs = shipped_quota_configs();
    assert_eq!(
        configs.len(),
        2,
        "one quota filter in each shipped bootstrap"
    );
    for (file, c) in &configs {
        assert_eq!(c.missing_key, MissingKey::ClientAddress, "{file}");
        assert_eq!(c.cors_preflight, Preflight::Separate, "{file}");
        assert_eq!(c.unknown_plan, UnknownPlan::Deny, "{file}");
        assert_eq!(c.when_store_full, StoreFallback::Deny, "{file}");
        assert_eq!(c.when_store_fails, StoreFallback::Deny, "{file}");
        assert!(c.slot_key.is_none() && !c.shadow, "{file}");
        assert!(c.warnings.is_empty(), "{file}: {:?}", c.warnings);
    }
    // The gateway's anonymous consumer (api-key-auth's guest on /public) counts per address.
    let gateway = &configs[0].1;
    assert_eq!(gateway.anonymous_consumers, vec!["guest".to_string()]);
}

/// `target/debug/apim`, built (or found up to date) once (as deploy_manifests.rs does: a test
/// binary cannot name another crate's binary; cargo holds no lock while tests run).
fn apim_bin() -> std::path::PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "-p", "apim"])
        .current_dir(apim_integration::repo_root())
        .status()
        .unwrap();
    assert!(status.success(), "cargo build -p apim failed");
    apim_integration::repo_root().join("target/debug/apim")
}

/// Item 5: `apim validate quota` accepts a config that opts into `unknown_plan: "unlimited"`
/// and warns about it (and about every other choice that loosens a default); the shipped
/// defaults validate without a warning.
#[test]
fn apim_validate_warns_when_a_config_opts_into_unlimited() {
    let plan = year_plan();
    let apim = apim_bin();
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("", &[]),
        (
            r#", "unknown_plan": "unlimited""#,
            &["warning: unknown_plan: \"unlimited\""],
        ),
        (
            r#", "when_store_full": "admit", "when_store_fails": "admit""#,
            &[
                "warning: when_store_full: \"admit\"",
                "warning: when_store_fails: \"admit\"",
            ],
        ),
    ];
    for (i, (extra, warnings)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("q{i}.json"));
        std::fs::write(&file, format!("{{{plan}{extra}}}")).unwrap();
        let out = std::process::Command::new(&apim)
            .args(["validate", "quota"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{extra}: {stderr}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("valid quota config"));
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("warning:"))
            .collect();
        assert_eq!(lines.len(), warnings.len(), "{extra}: {stderr}");
        for (line, want) in lines.iter().zip(warnings.iter()) {
            assert!(line.starts_with(want), "{line}");
        }
    }
}

/// Item 11 (found here): header values that are not UTF-8 were read lossily, so every such
/// value counted as U+FFFD and all their senders shared one counter: a client sending `\xfe`
/// used up the quota of a client sending `\xff`. Now they are hashed as the bytes they are.
#[test]
fn header_values_that_are_not_utf8_never_share_a_counter() {
    for_each_form(|form| {
        let plan = year_plan();
        let config = format!(r#"{{{plan}, "default_plan": "p", "key": [{{"header": "x-user"}}]}}"#);
        let envoy = start(&bootstrap(form, "", "", Chain::new(), &config));
        let send = |v: &[u8]| {
            Request::get("/x")
                .header_bytes("x-user", v)
                .send(envoy.port())
                .unwrap()
                .status
        };
        assert_eq!(send(b"caf\xe9"), 200);
        assert_eq!(send(b"caf\xe9"), 200);
        assert_eq!(send(b"caf\xe9"), 429);
        assert_eq!(send(b"caf\xe8"), 200, "another caller, its own counter");
        assert_eq!(upstream_requests(&envoy), 3);
    });
}

/// An upstream that answers `200 ok` as soon as it has read a request's headers, before its
/// body, except on paths containing `hold`, which it never answers. Returns its port.
fn early_upstream() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let mut answered = false;
                loop {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    let head_done = buf.windows(4).any(|w| w == b"\r\n\r\n");
                    if head_done && !answered {
                        answered = true;
                        let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
                        if !String::from_utf8_lossy(line).contains("hold") {
                            let _ = conn.write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                            );
                        }
                    }
                }
            });
        }
    });
    port
}

/// Review item 1. With `cost_from_filter_state`, a request waiting for its cost (the end of
/// its body) was charged nothing when the upstream answered before the body ended, or when the
/// client never finished the body. Now it is charged then (counted `charged_late`): two such
/// requests use up two of the 3 allowed, so the second GET is refused. Before: 3 GETs passed.
/// Requests on routes without `await_cost` are counted at their headers.
#[test]
fn a_request_waiting_for_its_cost_is_charged_even_if_its_body_never_ends() {
    for_each_form(|form| {
        use std::io::Write;
        let config =
            r#"{"plans": {"p": {"limits": [{"requests": 3, "per": 31622400, "name": "year"}]}},
            "default_plan": "p", "key": [{"header": "x-user"}], "cost_from_filter_state": true,
            "rules": [{"match": {"path": {"prefix": "/graphql"}}, "await_cost": true}]}"#
                .replace("31622400", &mid_window().to_string());
        let yaml = bootstrap(form, "", "", Chain::new(), &config)
            .replace("{{UPSTREAM_PORT}}", &early_upstream().to_string());
        let envoy = start(&yaml);
        let partial = |path: &str| {
            format!(
                "POST {path} HTTP/1.1\r\nhost: x\r\nx-user: eve\r\ncontent-type: application/json\r\n\
                 content-length: 1000\r\n\r\n{{\"query\":"
            )
        };
        // The upstream answers on the headers; the body never ends.
        let r = apim_integration::send_raw(envoy.port(), partial("/graphql").as_bytes()).unwrap();
        assert_eq!(r.status, 200);
        counter_is(&envoy, &wasm("charged_late"), 1);
        counter_is(&envoy, &wasm("allowed"), 1);
        // The client gives up mid-body, no response.
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", envoy.port())).unwrap();
        conn.write_all(partial("/graphql/hold").as_bytes()).unwrap();
        counter_is(&envoy, "cluster.upstream.upstream_rq_total", 2);
        drop(conn);
        counter_is(&envoy, &wasm("charged_late"), 2);
        counter_is(&envoy, &wasm("allowed"), 2);
        // One request left in the window.
        let eve = [("x-user", "eve")];
        assert_eq!(get(&envoy, "/graphql", &eve).status, 200);
        let r = get(&envoy, "/graphql", &eve);
        assert_eq!(r.status, 429, "{}", r.text());
        counter_is(&envoy, &wasm("allowed"), 3);
        counter_is(&envoy, &wasm("limited"), 1);
        counter_is(&envoy, &wasm("charged_late"), 2);
        assert_eq!(upstream_requests(&envoy), 3);
    });
}

/// Review item 1: without an `await_cost` rule the body is never waited for: a request whose
/// upstream answers early is counted (and refused when over) at its headers.
#[test]
fn a_route_without_await_cost_is_counted_at_its_headers() {
    for_each_form(|form| {
        let config =
            r#"{"plans": {"p": {"limits": [{"requests": 1, "per": 31622400, "name": "year"}]}},
            "default_plan": "p", "key": [{"header": "x-user"}], "cost_from_filter_state": true,
            "rules": [{"match": {"path": {"prefix": "/graphql"}}, "await_cost": true}]}"#
                .replace("31622400", &mid_window().to_string());
        let yaml = bootstrap(form, "", "", Chain::new(), &config)
            .replace("{{UPSTREAM_PORT}}", &early_upstream().to_string());
        let envoy = start(&yaml);
        let partial =
            "POST /upload HTTP/1.1\r\nhost: x\r\nx-user: eve\r\ncontent-length: 1000\r\n\r\nabc";
        let r = apim_integration::send_raw(envoy.port(), partial.as_bytes()).unwrap();
        assert_eq!(r.status, 200);
        let r = apim_integration::send_raw(envoy.port(), partial.as_bytes()).unwrap();
        assert_eq!(r.status, 429);
        counter_is(&envoy, &wasm("allowed"), 1);
        counter_is(&envoy, &wasm("limited"), 1);
        counter_is(&envoy, &wasm("charged_late"), 0);
        assert_eq!(upstream_requests(&envoy), 1);
    });
}

/// Review item 5. A preflight is what the client says: bob, identified by his API key, sending
/// `OPTIONS` with `Origin` and `Access-Control-Request-Method` was not counted at all under
/// `cors_preflight: skip` (all 3 reached the upstream). Now a caller with an identity is counted
/// as itself under its plan: 2 admitted, the third 429.
#[test]
fn an_identified_caller_cannot_pass_as_a_preflight() {
    for_each_form(|form| {
        let n = mid_window();
        let config = format!(
            r#"{{"plans": {{"p": {{"limits": [{{"requests": 2, "per": {n}, "name": "year"}}]}},
                           "platinum": {{"limits": [{{"requests": 2, "per": {n}, "name": "plat"}}]}}}},
                 "default_plan": "p", "cors_preflight": "skip"}}"#
        );
        let auth = API_KEY_AUTH.replace(r#", "allow_cors_preflight": true"#, "");
        assert_ne!(auth, API_KEY_AUTH);
        let envoy = start(&bootstrap(form, "", "", api_key_auth_with(&auth), &config));
        let preflight = || {
            Request::new("OPTIONS", "/pets")
                .header("x-api-key", BOB)
                .header("origin", "https://app.example")
                .header("access-control-request-method", "DELETE")
                .send(envoy.port())
                .unwrap()
        };
        let statuses: Vec<u16> = (0..3).map(|_| preflight().status).collect();
        assert_eq!(statuses, vec![200, 200, 429]);
        let r = preflight();
        assert_eq!(r.json()["limit"], "plat");
        counter_is(&envoy, &wasm("allowed"), 2);
        counter_is(&envoy, &wasm("limited"), 2);
        counter_is(&envoy, &wasm("passed"), 0);
        assert_eq!(upstream_requests(&envoy), 2);
    });
}

/// Review item 3. An explicit `client_address` key part used the whole IPv6 address, so one
/// host got a fresh counter per address of its /64 (here 3 × 200). Now it is grouped by /64,
/// as a missing part is: the third address of the same /64 is refused.
#[test]
fn an_explicit_client_address_part_groups_ipv6_by_64() {
    for_each_form(|form| {
        let plan = year_plan();
        let hcm = "use_remote_address: true\nxff_num_trusted_hops: 1\n";
        let config = format!(r#"{{{plan}, "default_plan": "p", "key": ["client_address"]}}"#);
        let envoy = start(&bootstrap(form, hcm, "", Chain::new(), &config));
        let statuses: Vec<u16> = [
            "2001:db8:1:2::1",
            "2001:db8:1:2::ffff",
            "2001:db8:1:2:aaaa::9",
        ]
        .iter()
        .map(|a| get(&envoy, "/x", &[("x-forwarded-for", a)]).status)
        .collect();
        assert_eq!(statuses, vec![200, 200, 429]);
        assert_eq!(
            get(&envoy, "/x", &[("x-forwarded-for", "2001:db8:1:3::1")]).status,
            200
        );
        counter_is(&envoy, &wasm("allowed"), 3);
        counter_is(&envoy, &wasm("limited"), 1);
        assert_eq!(upstream_requests(&envoy), 3);
    });
}

/// Review item 2. A caller already in a slot (its year counter live) whose 2-second counter
/// ended could not re-add that counter once attackers had filled the slot with long-window
/// counters: 503 `quota_store_full`, though the README promised "callers already in the slot
/// keep counting" (once other writes had dropped the ended counter and new callers had taken
/// its room). Now its family has room new families cannot take: 200, while a newcomer
/// still gets 503. (The test waits until the 2-second window has surely ended.)
#[test]
fn a_caller_in_a_full_slot_keeps_counting_after_its_short_window_ends() {
    for_each_form(|form| {
        let n = mid_window();
        let hex = "00112233445566778899aabbccddeeff";
        let key: [u8; 16] =
            core::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap());
        let config = format!(
            r#"{{"plans": {{"p": {{"limits": [{{"requests": 5, "per": 2, "name": "short"}},
                                             {{"requests": 50, "per": {n}, "name": "year"}}]}},
                           "long": {{"limits": [{{"requests": 50, "per": {n}, "name": "long"}}]}}}},
                 "default_plan": "p", "key": [{{"header": "x-user"}}], "slot_key": "{hex}",
                 "rules": [{{"match": {{"path": {{"prefix": "/a"}}}}, "plan": "long"}}]}}"#
        );
        let envoy = start(&bootstrap(form, "", "", Chain::new(), &config));
        let victim = format!("victim-{}", "v".repeat(40));
        let target = quota::store::slot_key(&key, format!("p\u{1f}={victim}").as_bytes());
        let slot = |v: &str| quota::store::slot_key(&key, format!("long\u{1f}={v}").as_bytes());
        assert_eq!(get(&envoy, "/v", &[("x-user", &victim)]).status, 200);
        let after_first = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        // Big counters until the slot refuses one, then small ones until it refuses again: less
        // room is left than the victim's short counter needs.
        let fill = |make: &dyn Fn(u64) -> String| {
            let mut admitted = 0u64;
            for v in (0u64..).map(make).filter(|v| slot(v) == target) {
                match get(&envoy, "/a", &[("x-user", &v)]).status {
                    200 => admitted += 1,
                    503 => return admitted,
                    s => panic!("status {s}"),
                }
            }
            unreachable!()
        };
        let big = fill(&|i| format!("{i:0>250}"));
        let small = fill(&|i| format!("s{i}"));
        assert!(big >= 100, "{big}");
        // The victim's 2-second window (it ends at most at the next even second) is over.
        let end = ((after_first as u64) / 2 + 1) * 2;
        loop {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            if now > end as f64 + 0.2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Attackers' writes drop the victim's ended counter and take its room (here, or already
        // in the fills above if the window ended then: each fill goes on until the slot refuses).
        let taken = fill(&|i| format!("t{i}"));
        let r = get(&envoy, "/v", &[("x-user", &victim)]);
        assert_eq!(r.status, 200, "{}", r.text());
        // A newcomer aimed at the slot is still refused.
        let newcomer = (0u64..)
            .map(|i| format!("new-{}-{i}", "n".repeat(40)))
            .find(|v| slot(v) == target)
            .unwrap();
        let r = get(&envoy, "/a", &[("x-user", &newcomer)]);
        assert_eq!(r.status, 503);
        assert_eq!(r.json()["code"], "quota_store_full");
        counter_is(&envoy, &wasm("store_full"), 4);
        counter_is(&envoy, &wasm("allowed"), 1 + big + small + taken + 1);
        assert_eq!(upstream_requests(&envoy), 1 + big + small + taken + 1);
    });
}
