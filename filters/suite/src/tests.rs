#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use kit::host::{Call, Host, MockHost};
use kit::metrics::Counters;
use kit::stage::{parse_config, Chain, Flow, RequestHost};
use std::rc::Rc;

const ALICE: &str = "demo-key-alice-0123456789abcdef";
const BOB: &str = "demo-key-bob-0123456789abcdef0";

/// The bench chain's configs (tests/integration/bench/chain-*.yaml), bob added without scopes.
fn section(key: &str) -> String {
    match key {
        "api_key_auth" => r#"{"consumers": [
            {"id": "alice", "plan": "gold", "scopes": ["pets:read"], "keys": [{"sha256": "dc275ab1c4bc17899cdfff16563da508be4c9275589ce936577f52f0512f22bb"}]},
            {"id": "bob", "plan": "gold", "keys": [{"sha256": "3ddaba5e842f5e66e7dfbc3a318416be5097ae49ffe348fbf2c6f9e815a2df26"}]}],
            "forward": {"consumer_id_header": "x-consumer-id", "consumer_plan_header": "x-consumer-plan"}}"#.into(),
        "scope_authz" => r#"{"providers": [{"name": "demo", "issuer": "https://demo-issuer.apim.local",
            "audiences": ["demo-api"], "algorithms": ["RS256"],
            "jwks": {"inline": {"keys": [{"kty": "RSA", "kid": "demo-1", "use": "sig", "n": "vXOe55tPMZZuQJtG_aOJT6dcDq8YQk-UhiBdWh9ucExIxDL6G56CKc347sDsuAOu08-HSRZjFEflRzKt-aAco06iz8rd6CKGPyKrwR5kxQQ8-mauQBSX_sRvn5RMeXHzZdhFY-816wmY9BN7F1O8y7mkLrYj1ta6SCBbmEGUl9kV1MDJ_NmkUCniLe68P9J-7Zpq4H7XRUcHeQmTfRo_i4lGP2RQ7ACE9sgl7NKYJGEFcJF-Pxd13G58fNPQO2u-y4wxf6vNS_8_zyA2EHIWEqbxIR3R8kXl2dHqxA8O6-b71lq0lnBqNta9KJh2ahRZJBKkeK2jwN3o00ywBMnb-w", "e": "AQAB"}]}}}],
            "default_require": {"all_of": ["pets:read"]}}"#.into(),
        "graphql_guard" => r#"{"rules": [{"match": {"route_name": "graphql"}}], "limits": {"max_depth": 6, "max_cost": 5000}}"#.into(),
        "quota" => r#"{"plans": {"gold": {"limits": [{"requests": 1000000000, "per": "second", "name": "gold-burst"}]}}, "key": ["consumer"], "headers": {"on_allowed": true}}"#.into(),
        "transform" => r#"{"rules": [{"request": {"headers": {"remove": ["x-debug"], "rename": {"x-old": "x-new"}, "replace": {"x-tenant": "t-{{header.x-tenant}}"}, "add": {"x-added": "{{consumer.id}}"}, "append": {"x-via": "transform"}}}}]}"#.into(),
        other => panic!("no section {other}"),
    }
}

fn suite_config(keys: &[&str]) -> String {
    let sections: Vec<String> = keys
        .iter()
        .map(|k| format!("\"{k}\": {}", section(k)))
        .collect();
    format!("{{{}}}", sections.join(", "))
}

fn bench_request(key: &str) -> MockHost {
    let mut host = MockHost::new(&[
        (":method", "GET"),
        (":path", "/"),
        (":authority", "bench"),
        (":scheme", "http"),
        ("x-api-key", key),
        ("x-old", "moved"),
        ("x-tenant", "acme"),
        ("x-debug", "1"),
    ]);
    host.properties
        .insert("source.address".into(), b"127.0.0.1:40000".to_vec());
    host
}

/// `config` parsed for `specs` and activated on `host`, as the runtime does at configure time.
fn activated(specs: &[StageSpec], config: &str, host: &dyn Host) -> kit::stage::Configured {
    let mut stages = parse_config(specs, config.as_bytes()).unwrap();
    for (index, stage) in &mut stages {
        let names = (specs[*index].counter_names)();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        stage.activate(host, Rc::new(Counters::define(host, &names)));
    }
    stages
}

/// What one request did: its flow, and the host calls it made (after start-up).
struct Served {
    flow: Flow,
    host_calls: usize,
}

/// Runs one request (headers with no body, then the response headers, then the log) through the
/// stages `specs` parses from `config`, as kit's runtime does: several stages share one
/// `RequestHost`, one stage gets the host as it is.
fn serve(specs: &[StageSpec], config: &str, host: &MockHost) -> Served {
    let stages = activated(specs, config, host);
    let before = host.host_calls();
    let shared = RequestHost::for_stages(host, &stages);
    let mut chain = Chain::new(stages.iter().map(|(_, s)| s.exchange(&shared)).collect());
    let flow = chain.on_request_headers(&shared, true);
    if flow != Flow::Done {
        shared.flush();
    }
    shared.forget_headers();
    if flow == Flow::Continue {
        let _ = chain.on_response_headers(&shared, true);
    }
    chain.on_log(&shared);
    if std::env::var_os("SHOW_HOST_CALLS").is_some() {
        println!("{:?}", &host.host_call_names()[before..]);
    }
    Served {
        flow,
        host_calls: host.host_calls() - before,
    }
}

const ALL: [&str; 5] = [
    "api_key_auth",
    "scope_authz",
    "graphql_guard",
    "quota",
    "transform",
];

#[test]
fn the_bench_request_passes_every_stage_and_identity_flows_in_memory() {
    let host = bench_request(ALICE);
    let served = serve(&SPECS, &suite_config(&ALL), &host);
    assert_eq!(served.flow, Flow::Continue);
    assert_eq!(host.reply(), None);
    // api-key-auth's identity satisfied scope-authz and keyed quota without a property read:
    // the mock has no `apim_consumer` property, only what was published during the request.
    assert!(host.published(kit::context::CONSUMER).is_some());
    assert_eq!(host.counter("apim.api_key_auth.allowed"), 1);
    assert_eq!(host.counter("apim.quota.allowed"), 1);
    assert_eq!(host.counter("apim.transform.applied"), 1);
    // transform's template read the consumer from memory too, and its edits went to the map
    // api-key-auth had already edited (the snapshot saw them).
    // The last replacement of the map is what the upstream gets.
    let replaced = host
        .calls()
        .into_iter()
        .rev()
        .find_map(|c| match c {
            Call::ReplaceHeaders(h) => Some(h),
            _ => None,
        })
        .unwrap();
    let value = |name: &str| {
        replaced
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(value("x-added"), ["alice"]);
    assert_eq!(value("x-consumer-id"), ["alice"]);
    assert_eq!(
        value("x-api-key"),
        Vec::<String>::new(),
        "stripped by api-key-auth"
    );
    assert_eq!(value("x-debug"), Vec::<String>::new());
    assert_eq!(value("x-new"), ["moved"]);
    assert_eq!(value("x-tenant"), ["t-acme"]);
}

#[test]
fn a_denial_by_an_early_stage_stops_the_later_ones() {
    struct Case {
        key: &'static str,
        status: u16,
    }
    for case in [
        Case {
            key: "not-a-key-0123456789abcdef0123",
            status: 401,
        },
        // bob's key carries no scope: scope-authz refuses, quota never counts him.
        Case {
            key: BOB,
            status: 403,
        },
    ] {
        let host = bench_request(case.key);
        let served = serve(&SPECS, &suite_config(&ALL), &host);
        assert_eq!(served.flow, Flow::Done, "{}", case.key);
        assert_eq!(host.reply().unwrap().status, case.status, "{}", case.key);
        assert_eq!(host.counter("apim.quota.allowed"), 0, "{}", case.key);
        assert_eq!(host.counter("apim.transform.applied"), 0, "{}", case.key);
    }
}

#[test]
fn the_suite_makes_fewer_host_calls_than_the_five_modules() {
    let mut modules = 0;
    let mut table = Vec::new();
    for (index, key) in ALL.iter().enumerate() {
        let host = bench_request(ALICE);
        // A module after api-key-auth finds the identity it published as filter state.
        if index > 0 {
            let published = bench_request(ALICE);
            serve(&SPECS[..1], &section("api_key_auth"), &published);
            host.set_property(
                kit::context::CONSUMER,
                &published.published(kit::context::CONSUMER).unwrap(),
            );
        }
        let mut host = host;
        if let Some(identity) = host.published(kit::context::CONSUMER) {
            host.properties
                .insert(kit::context::CONSUMER.to_string(), identity);
        }
        let spec = &SPECS[index..=index];
        let served = serve(spec, &section(key), &host);
        assert_eq!(served.flow, Flow::Continue, "{key}");
        table.push(format!("{key:<14} {:>3}", served.host_calls));
        modules += served.host_calls;
    }
    let host = bench_request(ALICE);
    let suite = serve(&SPECS, &suite_config(&ALL), &host).host_calls;
    table.push(format!("{:<14} {modules:>3}", "five modules"));
    table.push(format!("{:<14} {suite:>3}", "suite"));
    // `cargo test -p suite -- --nocapture host_calls` prints the table (README, Performance).
    println!(
        "host calls per request, bench chain request:\n{}",
        table.join("\n")
    );
    assert!(suite < modules, "suite {suite} vs modules {modules}");
}

#[test]
fn suite_config_errors_name_the_section() {
    struct Case {
        config: String,
        error: &'static str,
    }
    let cases = [
        Case {
            config: r#"{"api_key_auth": {"consumers": []}, "qouta": {}}"#.into(),
            error: "qouta: unknown section (known: api_key_auth, scope_authz, graphql_guard, quota, transform)",
        },
        Case {
            config: "{}".into(),
            error: "no section: give at least one of api_key_auth, scope_authz, graphql_guard, quota, transform",
        },
        Case {
            config: r#"{"quota": {"plans": {"gold": {"limits": [{"requests": 1, "per": "fortnight"}]}}}}"#.into(),
            error: "quota.plans.gold.limits[0].per: \"fortnight\" is not one of second, minute, hour, day, month or a number of seconds",
        },
        Case {
            config: r#"{"transform": {"rules": [], "typo": 1}}"#.into(),
            error: "transform.typo",
        },
    ];
    for case in cases {
        let err = validate(case.config.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with(case.error), "{err}");
    }
}

#[test]
fn a_section_is_the_filters_own_config_unchanged() {
    for key in ALL {
        let alone = kit::stage::parse_config(
            &SPECS[ALL.iter().position(|k| *k == key).unwrap()..][..1],
            section(key).as_bytes(),
        );
        assert!(alone.is_ok(), "{key}");
        assert!(validate(suite_config(&[key]).as_bytes()).is_ok(), "{key}");
    }
}

#[test]
fn graphql_guards_cost_reaches_quota_in_memory_and_is_charged() {
    let config = format!(
        "{{\"api_key_auth\": {}, \"graphql_guard\": {}, \"quota\": {}}}",
        section("api_key_auth"),
        r#"{"rules": [{"match": {"path": {"prefix": "/graphql"}}}], "cost": {"default_weight": 2}}"#,
        r#"{"plans": {"gold": {"limits": [{"requests": 1000, "per": "second", "name": "gold-burst"}]}},
            "key": ["consumer"], "cost_from_filter_state": true,
            "rules": [{"match": {"path": {"prefix": "/graphql"}}, "await_cost": true}]}"#,
    );
    let body = br#"{"query": "{ a { b { c } } }"}"#.to_vec();
    let mut host = MockHost::new(&[
        (":method", "POST"),
        (":path", "/graphql"),
        (":authority", "api"),
        ("content-type", "application/json"),
        ("content-length", &body.len().to_string()),
        ("x-api-key", ALICE),
    ]);
    host.body = body.clone();
    let stages = activated(&SPECS, &config, &host);
    let shared = RequestHost::for_stages(&host, &stages);
    let mut chain = Chain::new(stages.iter().map(|(_, s)| s.exchange(&shared)).collect());
    // graphql-guard holds the headers for the body; quota has not seen the request yet.
    assert_eq!(chain.on_request_headers(&shared, false), Flow::WaitBody);
    assert_eq!(host.counter("apim.quota.allowed"), 0);
    assert_eq!(
        chain.on_request_body(&shared, body.len(), true),
        Flow::Continue
    );
    let cost = host.published(kit::context::COST).unwrap();
    assert_eq!(cost, b"4", "two objects of weight 2");
    // quota read the cost from memory (the mock holds no apim_cost property) and charged it.
    assert_eq!(host.counter("apim.quota.allowed"), 1);
    let charged: Vec<u64> = host
        .shared
        .borrow()
        .iter()
        .filter(|(k, _)| k.starts_with(quota::store::SLOT_PREFIX))
        .flat_map(|(_, (v, _))| quota::store::decode(v))
        .map(|e| e.count)
        .collect();
    assert_eq!(charged, [4]);
}

/// A host that answers the bench request and records nothing (for [`profile_loop`]).
struct LeanHost {
    headers: Vec<(String, Vec<u8>)>,
    shared: std::cell::RefCell<std::collections::HashMap<String, (Vec<u8>, u32)>>,
}

impl Host for LeanHost {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.headers.clone()
    }
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
    fn route_name(&self) -> Option<String> {
        None
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        (path == ["source", "address"]).then(|| b"127.0.0.1:40000".to_vec())
    }
    fn set_property(&self, _key: &str, _value: &[u8]) {}
    fn set_request_header(&self, _name: &str, _value: &[u8]) {}
    fn remove_request_header(&self, _name: &str) {}
    fn send_reply(&self, _reply: &kit::denial::Reply) {}
    fn now_unix(&self) -> u64 {
        1_800_000_000
    }
    fn define_counter(&self, _name: &str) -> Option<u32> {
        Some(0)
    }
    fn increment_counter(&self, _id: u32, _by: i64) {}
    fn log(&self, _level: kit::host::LogLevel, _message: &str) {}
    fn shared_data(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.shared.borrow().get(key) {
            Some((v, c)) => (Some(v.clone()), Some(*c)),
            None => (None, None),
        }
    }
    fn set_shared_data(&self, key: &str, value: &[u8], _cas: Option<u32>) -> kit::host::SetResult {
        let mut shared = self.shared.borrow_mut();
        let cas = shared.get(key).map_or(0, |(_, c)| *c) + 1;
        shared.insert(key.to_string(), (value.to_vec(), cas));
        kit::host::SetResult::Ok
    }
}

/// Not a test: `cargo test --release -p suite -- --ignored --nocapture profile_loop` runs the
/// bench request many times natively, for `perf record` to find the stages' hot spots.
#[test]
#[ignore]
fn profile_loop() {
    let mock = bench_request(ALICE);
    let setup = LeanHost {
        headers: mock.headers.clone(),
        shared: std::cell::RefCell::default(),
    };
    let stages = activated(&SPECS, &suite_config(&ALL), &setup);
    let start = std::time::Instant::now();
    let n = 200_000;
    for _ in 0..n {
        let shared = RequestHost::for_stages(&setup, &stages);
        let mut chain = Chain::new(stages.iter().map(|(_, s)| s.exchange(&shared)).collect());
        assert_eq!(chain.on_request_headers(&shared, true), Flow::Continue);
        shared.flush();
        shared.forget_headers();
        let _ = chain.on_response_headers(&shared, true);
        chain.on_log(&shared);
    }
    println!("{:?} per request", start.elapsed() / n);
}

#[test]
fn an_inspected_websocket_behind_which_quota_holds_the_stream_is_refused_as_unreadable() {
    // quota waits for graphql-guard's cost to the end of the body: on a WebSocket it holds the
    // frames the guard already let through, and the next chunk would hand them to it again.
    let config = r#"{
        "graphql_guard": {"rules": [{"match": {"path": {"prefix": "/graphql"}}}], "websocket": "inspect"},
        "quota": {"plans": {"free": {"limits": [{"requests": 100, "per": "minute"}]}},
            "default_plan": "free", "key": ["client_address"], "cost_from_filter_state": true,
            "rules": [{"match": {"path": {"prefix": "/graphql"}}, "await_cost": true}]}
    }"#;
    let mut host = MockHost::new(&[
        (":method", "GET"),
        (":path", "/graphql"),
        (":authority", "api"),
        ("upgrade", "websocket"),
        ("connection", "upgrade"),
        ("sec-websocket-protocol", "graphql-transport-ws"),
    ]);
    host.properties
        .insert("source.address".into(), b"127.0.0.1:40000".to_vec());
    // One masked text frame carrying a ping; Envoy's buffer holds it, then it twice (the kept
    // chunk and a new one). Read twice, the first would pass as two pings.
    let ping = br#"{"type":"ping"}"#;
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | ping.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(ping.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    host.body = [frame.clone(), frame.clone()].concat();
    let stages = activated(&SPECS, config, &host);
    let shared = RequestHost::for_stages(&host, &stages);
    let mut chain = Chain::new(stages.iter().map(|(_, s)| s.exchange(&shared)).collect());
    assert_eq!(chain.on_request_headers(&shared, false), Flow::Continue);
    // The first chunk: read by the guard, then held by quota.
    assert_eq!(
        chain.on_request_body(&shared, frame.len(), false),
        Flow::WaitBody
    );
    assert!(!host.calls().contains(&Call::Reset));
    // The second: Envoy's buffer starts with the first chunk again; the guard refuses.
    assert_eq!(
        chain.on_request_body(&shared, 2 * frame.len(), false),
        Flow::Done
    );
    assert!(host.calls().contains(&Call::Reset));
    assert_eq!(host.counter("apim.graphql_guard.rejected.bad_request"), 1);
    assert!(host.calls().iter().any(
        |c| matches!(c, Call::Log(_, m) if m.contains("the WebSocket stream could not be read"))
    ));
}
