use super::*;
use crate::test_support::MemStore;
use kit::host::{Call, MockHost};
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

const CONFIG: &str = r#"{
  "plans": {
    "gold": {"limits": [{"requests": 2, "per": "minute", "name": "gold-min"}]},
    "free": {"limits": [{"requests": 1, "per": "minute"}]}
  },
  "default_plan": "free",
  "cost_from_filter_state": true,
  "rules": [
    {"match": {"route_name": "health"}, "skip": true},
    {"match": {"route_name": "graphql"}, "await_cost": true}
  ]
}"#;

fn setup(config: &str) -> (Config, (), MemStore) {
    let c = Config::parse(config.as_bytes()).unwrap();
    (c, (), MemStore::default())
}

/// Counters are defined on each mock host, as the root context defines them on the real one.
fn run(h: &MockHost, store: &MemStore, c: &Config, _: &()) -> Action {
    let counters = Counters::define(h, &COUNTER_NAMES);
    on_request_headers(h, store, &KEY, c, &counters)
}

const KEY: HashKey = [3; 16];

fn host_for(identity: Option<&str>, route: Option<&str>) -> MockHost {
    let mut h = MockHost::new(&[(":path", "/pets")]);
    if let Some(i) = identity {
        h.properties
            .insert("apim_consumer".into(), i.as_bytes().to_vec());
    }
    h.route = route.map(str::to_string);
    h
}

const ALICE: &str = r#"{"id":"alice","plan":"gold"}"#;

#[test]
fn counts_then_replies_429_and_counts_it() {
    let (c, counters, store) = setup(CONFIG);
    for _ in 0..2 {
        let h = host_for(Some(ALICE), None);
        assert_eq!(run(&h, &store, &c, &counters), Action::Continue(vec![]));
        assert_eq!(h.counter("apim.quota.allowed"), 1);
        // Only `:path` (the skip rule must see whether it is ambiguous), whether an
        // `access-control-request-method` is there (a CORS preflight? no: the method is not
        // read) and the route name.
        assert_eq!(
            h.calls()[..3],
            [
                Call::GetHeader(":path".into()),
                Call::GetHeader("access-control-request-method".into()),
                Call::RouteName
            ]
        );
        assert!(!h.calls().contains(&Call::GetHeader(":method".into())));
    }
    let h = host_for(Some(ALICE), None);
    assert_eq!(run(&h, &store, &c, &counters), Action::Stop);
    let r = h.reply().unwrap();
    assert_eq!(r.status, 429);
    assert!(
        r.headers.contains(&("retry-after".into(), "60".into())),
        "{:?}",
        r.headers
    );
    assert!(r
        .headers
        .contains(&("ratelimit".into(), r#""gold-min";r=0;t=60"#.into())));
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["code"], "quota_exceeded");
    assert_eq!(body["limit"], "gold-min");
    assert_eq!(h.counter("apim.quota.limited"), 1);
}

/// Each plan has its own allowed/limited pair beside the totals; a request of one plan never
/// moves another's.
#[test]
fn allowed_and_limited_are_counted_per_plan_too() {
    let (c, _, store) = setup(CONFIG);
    assert_eq!(
        plan_counter_names(&c),
        [
            "apim.quota.plan.free.allowed",
            "apim.quota.plan.free.limited",
            "apim.quota.plan.gold.allowed",
            "apim.quota.plan.gold.limited"
        ]
    );
    let names: Vec<String> = COUNTER_NAMES
        .iter()
        .map(|n| (*n).to_string())
        .chain(plan_counter_names(&c))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    // gold: 2 per minute; the anonymous caller's plan is free: 1 per minute.
    let cases: &[(Option<&str>, &str, Action)] = &[
        (
            Some(ALICE),
            "apim.quota.plan.gold.allowed",
            Action::Continue(vec![]),
        ),
        (
            Some(ALICE),
            "apim.quota.plan.gold.allowed",
            Action::Continue(vec![]),
        ),
        (Some(ALICE), "apim.quota.plan.gold.limited", Action::Stop),
        (
            None,
            "apim.quota.plan.free.allowed",
            Action::Continue(vec![]),
        ),
        (None, "apim.quota.plan.free.limited", Action::Stop),
    ];
    for (i, (identity, moved, action)) in cases.iter().enumerate() {
        let h = host_for(*identity, None);
        let counters = Counters::define(&h, &names);
        assert_eq!(
            on_request_headers(&h, &store, &KEY, &c, &counters),
            *action,
            "case {i}"
        );
        for name in &names[PER_PLAN..] {
            let want = i64::from(name == moved);
            assert_eq!(h.counter(name), want, "case {i}: {name}");
        }
    }
}

#[test]
fn skip_rules_pass_uncounted_but_a_published_zero_cost_counts_one() {
    let (c, counters, store) = setup(CONFIG);
    let h = host_for(Some(ALICE), Some("health"));
    assert_eq!(run(&h, &store, &c, &counters), Action::Continue(vec![]));
    assert_eq!(h.counter("apim.quota.passed"), 1);
    // A trusted persisted query (cost 0 from graphql-guard) must not be free to replay.
    let mut h = host_for(Some(ALICE), None);
    h.properties.insert("apim_cost".into(), b"0".to_vec());
    run(&h, &store, &c, &counters);
    assert_eq!(h.counter("apim.quota.passed"), 0);
    assert_eq!(h.counter("apim.quota.allowed"), 1);
}

#[test]
fn graphql_cost_is_charged() {
    let (c, counters, store) = setup(CONFIG);
    let mut h = host_for(Some(ALICE), None);
    h.properties.insert("apim_cost".into(), b"3".to_vec());
    assert_eq!(run(&h, &store, &c, &counters), Action::Stop);
    let mut h = host_for(Some(ALICE), None);
    h.properties.insert("apim_cost".into(), b"2".to_vec());
    assert_eq!(run(&h, &store, &c, &counters), Action::Continue(vec![]));
    let h = host_for(Some(ALICE), None);
    assert_eq!(run(&h, &store, &c, &counters), Action::Stop);
}

#[test]
fn anonymous_callers_share_the_default_plan_and_an_unreadable_identity_is_refused() {
    let (c, counters, store) = setup(CONFIG);
    let h = host_for(None, None);
    assert_eq!(run(&h, &store, &c, &counters), Action::Continue(vec![]));
    // Present but undecodable: never "no identity" (keyed by address, default plan), a 403,
    // counted, even on a skipped route.
    for route in [None, Some("health")] {
        let h = host_for(Some("{not json"), route);
        assert_eq!(run(&h, &store, &c, &counters), Action::Stop);
        assert_eq!(h.counter("apim.quota.identity_invalid"), 1);
        let reply = h.reply().unwrap();
        assert_eq!(reply.status, 403);
        assert!(String::from_utf8_lossy(&reply.body).contains("quota_identity_invalid"));
    }
}

/// What the filter answers when the store fails (or stays contended) under one
/// `when_store_fails` mode.
struct StoreCase {
    when_store_fails: &'static str,
    /// Every store call fails.
    store_fails: bool,
    /// Compare-and-swap conflicts before each write lands.
    conflicts: usize,
    /// The reply's status; 200 for a request let through.
    status: u16,
    /// The counter moved by one.
    counter: &'static str,
    /// The problem+json code of a refusal.
    code: &'static str,
}

#[test]
fn missing_key_deny_and_store_failures_deny_unless_configured_to_admit() {
    let cfg = CONFIG.replace(
        r#""default_plan": "free","#,
        r#""default_plan": "free", "missing_key": "deny","#,
    );
    let (c, counters, store) = setup(&cfg);
    let h = host_for(None, None);
    assert_eq!(run(&h, &store, &c, &counters), Action::Stop);
    assert_eq!(h.reply().unwrap().status, 403);
    assert_eq!(h.counter("apim.quota.key_missing"), 1);
    let cases = [
        StoreCase {
            when_store_fails: "deny",
            store_fails: true,
            conflicts: 0,
            status: 503,
            counter: "apim.quota.errors",
            code: "quota_store_error",
        },
        StoreCase {
            when_store_fails: "admit",
            store_fails: true,
            conflicts: 0,
            status: 200,
            counter: "apim.quota.errors",
            code: "",
        },
        StoreCase {
            when_store_fails: "deny",
            store_fails: false,
            conflicts: 64,
            status: 503,
            counter: "apim.quota.contended",
            code: "quota_contended",
        },
        StoreCase {
            when_store_fails: "admit",
            store_fails: false,
            conflicts: 64,
            status: 200,
            counter: "apim.quota.contended",
            code: "",
        },
    ];
    for case in &cases {
        let mode = case.when_store_fails;
        let cfg = CONFIG.replace(
            r#""default_plan": "free","#,
            &format!(r#""default_plan": "free", "when_store_fails": "{mode}","#),
        );
        let (c, counters, store) = setup(&cfg);
        crate::store::init_slots(&store);
        *store.fail.lock().unwrap() = case.store_fails;
        *store.conflicts.lock().unwrap() = case.conflicts;
        let h = host_for(Some(ALICE), None);
        let action = run(&h, &store, &c, &counters);
        assert_eq!(h.counter(case.counter), 1, "{mode} {}", case.store_fails);
        assert_eq!(
            h.counter("apim.quota.allowed"),
            0,
            "never counted as allowed"
        );
        if case.status == 200 {
            assert_eq!(action, Action::Continue(vec![]), "{mode}");
        } else {
            assert_eq!(action, Action::Stop);
            let r = h.reply().unwrap();
            assert_eq!(r.status, case.status);
            assert!(r.headers.contains(&("retry-after".into(), "1".into())));
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body["code"], case.code);
        }
    }
}

#[test]
fn a_full_slot_denies_by_default_and_never_evicts() {
    for (mode, want) in [("deny", 503), ("admit", 200)] {
        let cfg = CONFIG.replace(
            r#""default_plan": "free","#,
            &format!(
                r#""default_plan": "free", "when_store_full": "{mode}", "key": [{{"header": "x-user"}}],"#
            ),
        );
        let (c, (), store) = setup(&cfg);
        let counters_for = |h: &MockHost| Counters::define(h, &COUNTER_NAMES);
        // Fill alice's slot with other live counters, written straight into the store.
        let family = |k: &str| format!("gold\x1f={k}");
        let slot = crate::store::slot_key(&KEY, family("alice").as_bytes());
        let mut entries = Vec::new();
        let mut i = 0;
        while crate::store::encode(&entries).len() < crate::store::MAX_SLOT_BYTES - 60 {
            entries.push(crate::store::Entry {
                name: format!("{}{i}", "z".repeat(300)).into_bytes(),
                window_end: 1_800_000_050,
                count: 1,
            });
            i += 1;
        }
        store.set(&slot, &crate::store::encode(&entries), None);
        let mut h = MockHost::new(&[(":path", "/pets"), ("x-user", "alice")]);
        h.properties
            .insert("apim_consumer".into(), ALICE.as_bytes().to_vec());
        let action = on_request_headers(&h, &store, &KEY, &c, &counters_for(&h));
        assert_eq!(h.counter("apim.quota.store_full"), 1, "{mode}");
        if want == 200 {
            assert_eq!(action, Action::Continue(vec![]));
        } else {
            let r = h.reply().unwrap();
            assert_eq!(r.status, 503);
            // Retry when the soonest entry of the slot ends (now is 1_800_000_000).
            assert!(r.headers.contains(&("retry-after".into(), "50".into())));
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body["code"], "quota_store_full");
        }
        // Nothing in the slot was evicted.
        let kept = crate::store::decode(&store.get(&slot).0.unwrap());
        assert_eq!(kept, entries);
    }
}

#[test]
fn unknown_plans_are_refused_and_counted() {
    let cfg = CONFIG.replace(r#""default_plan": "free","#, "");
    let (c, counters, store) = setup(&cfg);
    let h = host_for(None, None);
    assert_eq!(run(&h, &store, &c, &counters), Action::Stop);
    let r = h.reply().unwrap();
    assert_eq!(r.status, 403);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["code"], "quota_plan_unknown");
    assert_eq!(h.counter("apim.quota.plan_unknown"), 1);
    let (c, counters, store) = setup(&cfg.replace(
        r#""cost_from_filter_state""#,
        r#""unknown_plan": "unlimited", "cost_from_filter_state""#,
    ));
    let h = host_for(Some(r#"{"id":"p","plan":"platinum"}"#), None);
    assert_eq!(run(&h, &store, &c, &counters), Action::Continue(vec![]));
    assert_eq!(h.counter("apim.quota.passed"), 1);
}

#[test]
fn shadow_mode_reports_refusals_before_counting_and_lets_them_through() {
    let cfg = CONFIG.replace(
        r#""default_plan": "free","#,
        r#""default_plan": "free", "shadow": true, "missing_key": "deny","#,
    );
    let (c, counters, store) = setup(&cfg);
    // (identity, counter): no identity → key missing; an unconfigured plan → plan unknown.
    let cases = [
        (None, "apim.quota.key_missing"),
        (
            Some(r#"{"id":"p","plan":"platinum"}"#),
            "apim.quota.plan_unknown",
        ),
    ];
    for (id, counter) in cases {
        let h = host_for(id, None);
        assert_eq!(run(&h, &store, &c, &counters), Action::Continue(vec![]));
        assert_eq!(h.counter(counter), 1, "{id:?}");
        assert_eq!(h.reply(), None);
    }
}

#[test]
fn a_cors_preflight_is_recognised_from_the_headers_read_for_it() {
    let (c, counters, store) = setup(CONFIG);
    let preflight = |addr: &str| {
        let mut h = MockHost::new(&[
            (":method", "OPTIONS"),
            (":path", "/pets"),
            ("origin", "https://a.example"),
            ("access-control-request-method", "POST"),
        ]);
        h.properties
            .insert("source.address".into(), addr.as_bytes().to_vec());
        h
    };
    // The free plan (1 per minute) for preflights, per address, apart from alice's requests.
    let h = host_for(Some(r#"{"id":"alice","plan":"free"}"#), None);
    assert_eq!(run(&h, &store, &c, &counters), Action::Continue(vec![]));
    let h = preflight("10.0.0.1:5");
    assert_eq!(run(&h, &store, &c, &counters), Action::Continue(vec![]));
    assert!(h
        .calls()
        .contains(&Call::GetHeader("access-control-request-method".into())));
    assert_eq!(
        run(&preflight("10.0.0.1:6"), &store, &c, &counters),
        Action::Stop
    );
    assert_eq!(
        run(&preflight("10.0.0.2:5"), &store, &c, &counters),
        Action::Continue(vec![])
    );
    // A GET never reads the preflight headers.
    let h = host_for(Some(ALICE), None);
    run(&h, &store, &c, &counters);
    assert!(!h.calls().contains(&Call::GetHeader("origin".into())));
}

#[test]
fn the_method_is_read_only_for_a_request_that_can_be_a_preflight() {
    struct Case {
        headers: &'static [(&'static str, &'static str)],
        reads_method: bool,
        reads_origin: bool,
    }
    let cases = [
        // No `access-control-request-method`: not a preflight, whatever the method.
        Case {
            headers: &[(":method", "OPTIONS"), ("origin", "https://a.example")],
            reads_method: false,
            reads_origin: false,
        },
        Case {
            headers: &[(":method", "GET")],
            reads_method: false,
            reads_origin: false,
        },
        // Present, even empty: the method decides whether the rest is read.
        Case {
            headers: &[(":method", "GET"), ("access-control-request-method", "")],
            reads_method: true,
            reads_origin: false,
        },
        Case {
            headers: &[
                (":method", "OPTIONS"),
                ("access-control-request-method", "POST"),
            ],
            reads_method: true,
            reads_origin: true,
        },
    ];
    let (c, counters, store) = setup(CONFIG);
    for case in cases {
        let h = MockHost::new(case.headers);
        run(&h, &store, &c, &counters);
        let calls = h.calls();
        assert_eq!(
            calls.contains(&Call::GetHeader(":method".into())),
            case.reads_method,
            "{:?}",
            case.headers
        );
        assert_eq!(
            calls.contains(&Call::GetHeader("origin".into())),
            case.reads_origin,
            "{:?}",
            case.headers
        );
    }
}

#[test]
fn the_client_address_is_read_only_when_the_key_can_use_it() {
    let alice = Identity {
        id: "alice".into(),
        ..Identity::default()
    };
    let guest = Identity {
        id: "guest".into(),
        ..Identity::default()
    };
    let get = RequestHead::from_pairs(&[(":method", "GET"), ("x-t", "acme")]);
    let preflight = RequestHead::from_pairs(&[
        (":method", "OPTIONS"),
        ("origin", "o"),
        ("access-control-request-method", "GET"),
    ]);
    let base = r#"{"plans":{"p":{"limits":[{"requests":1,"per":60}]}}"#;
    let cfg = |extra: &str| Config::parse(format!("{base}{extra}}}").as_bytes()).unwrap();
    let cases: Vec<(Config, &RequestHead, Option<&Identity>, bool)> = vec![
        (cfg(""), &get, Some(&alice), false),
        (cfg(""), &get, None, true),
        (
            cfg(r#","anonymous_consumers":["guest"]"#),
            &get,
            Some(&guest),
            true,
        ),
        (cfg(""), &preflight, Some(&alice), true),
        (
            cfg(r#","cors_preflight":"same""#),
            &preflight,
            Some(&alice),
            false,
        ),
        (cfg(r#","missing_key":"shared""#), &get, None, false),
        (
            cfg(r#","key":["client_address"],"missing_key":"shared""#),
            &get,
            Some(&alice),
            true,
        ),
        (cfg(r#","key":[{"header":"x-t"}]"#), &get, None, false),
        (cfg(r#","key":[{"header":"x-u"}]"#), &get, None, true),
        (cfg(r#","key":["route"]"#), &get, None, true),
    ];
    for (i, (c, head, id, want)) in cases.iter().enumerate() {
        assert_eq!(needs_client_address(c, head, None, *id), *want, "case {i}");
    }
}

#[test]
fn the_body_is_held_only_when_a_published_cost_can_still_come() {
    let (c, _, store) = setup(CONFIG);
    /// The route, the cost already published, the caller's identity; whether the body is held.
    struct Hold {
        route: Option<&'static str>,
        published_cost: Option<&'static str>,
        identity: Option<&'static str>,
        held: bool,
    }
    let cases = [
        // Only a rule saying `await_cost` waits for the body.
        Hold {
            route: Some("graphql"),
            published_cost: None,
            identity: Some(ALICE),
            held: true,
        },
        Hold {
            route: None,
            published_cost: None,
            identity: Some(ALICE),
            held: false,
        },
        // A skip rule never waits for the body.
        Hold {
            route: Some("health"),
            published_cost: None,
            identity: Some(ALICE),
            held: false,
        },
        // The cost is already published (graphql-guard judged the body first): count now.
        Hold {
            route: Some("graphql"),
            published_cost: Some("1"),
            identity: Some(ALICE),
            held: false,
        },
        // Refused whatever the cost: refused now.
        Hold {
            route: Some("graphql"),
            published_cost: None,
            identity: Some(r#"{"id":"p","plan":"platinum"}"#),
            held: false,
        },
        Hold {
            route: Some("graphql"),
            published_cost: None,
            identity: Some("{junk"),
            held: false,
        },
    ];
    for case in cases {
        let (route, cost, id, deferred) =
            (case.route, case.published_cost, case.identity, case.held);
        let mut h = host_for(id, route);
        if let Some(cost) = cost {
            h.properties
                .insert("apim_cost".into(), cost.as_bytes().to_vec());
        }
        let counters = Counters::define(&h, &COUNTER_NAMES);
        let got = at_headers_with_body(&h, &store, &KEY, &c, &counters);
        assert_eq!(
            matches!(got, AtHeaders::Defer(_)),
            deferred,
            "{route:?} {cost:?} {id:?}: {got:?}"
        );
        if !deferred {
            assert_eq!(
                h.counter("apim.quota.allowed")
                    + h.counter("apim.quota.passed")
                    + h.counter("apim.quota.plan_unknown")
                    + h.counter("apim.quota.identity_invalid"),
                1
            );
        }
    }
}

#[test]
fn a_loosening_rule_never_matches_an_ambiguous_path_and_it_is_counted() {
    let cfg = r#"{
      "plans": {"free": {"limits": [{"requests": 10, "per": "minute"}]},
                "big": {"limits": [{"requests": 1000, "per": "minute"}]},
                "tiny": {"limits": [{"requests": 5, "per": "minute"}, {"requests": 5, "per": "second"}]}},
      "default_plan": "free",
      "key": [{"header": "x-user"}],
      "default_cost": 2,
      "rules": [
        {"match": {"path": {"prefix": "/public"}}, "skip": true},
        {"match": {"path": {"prefix": "/cheap"}}, "cost": 1},
        {"match": {"path": {"prefix": "/generous"}}, "plan": "big"},
        {"match": {"path": {"prefix": "/strict"}}, "plan": "tiny"},
        {"match": {"path": {"prefix": "/dear"}}, "cost": 3}
      ]
    }"#;
    let c = Config::parse(cfg.as_bytes()).unwrap();
    // (path, passes-uncounted?, ambiguous counted?)
    let cases: &[(&str, &str, bool)] = &[
        ("/public/x", "passed", false),
        ("/public/..%2Fadmin", "allowed", true),
        // Dot-segments are resolved before matching: `/admin` matches no rule at all.
        ("/public/../admin", "allowed", false),
        ("/cheap/..%2Fx", "allowed", true),
        ("/generous/..%5Cx", "allowed", true),
        // Rules that make the decision stricter still apply to an ambiguous path; but with
        // `unknown_plan: deny` (the default) every rule setting a plan is passed over (without
        // it the caller could have no plan: a 403).
        ("/strict/..%2Fx", "allowed", true),
        ("/dear/..%2Fx", "allowed", false),
    ];
    for (i, (path, counter, ambiguous)) in cases.iter().enumerate() {
        let store = MemStore::default();
        let user = format!("u{i}");
        let h = MockHost::new(&[(":path", path), ("x-user", &user)]);
        let counters = Counters::define(&h, &COUNTER_NAMES);
        on_request_headers(&h, &store, &KEY, &c, &counters);
        assert_eq!(
            h.counter(&format!("apim.quota.{counter}")),
            1,
            "{path}: {:?}",
            h.calls()
        );
        assert_eq!(
            h.counter("apim.quota.path_ambiguous"),
            i64::from(*ambiguous),
            "{path}"
        );
    }
}

/// `/dear/..;/admin` meets `/dear`'s rule (cost 3) normalised and `/admin`'s (cost 5) read as
/// Tomcat reads it: which cost applies is unknown, so the request is refused 400
/// `path_ambiguous` before anything is counted (in shadow mode it is counted and goes on).
#[test]
fn a_path_read_as_two_routes_is_refused_uncounted() {
    let cfg = r#"{
      "plans": {"free": {"limits": [{"requests": 10, "per": "minute"}]}},
      "default_plan": "free",
      "key": [{"header": "x-user"}],
      "default_cost": 2,
      "rules": [
        {"match": {"path": {"prefix": "/dear"}}, "cost": 3},
        {"match": {"path": {"prefix": "/admin"}}, "cost": 5},
        {"match": {"path": {"prefix": "/also-dear"}}, "cost": 3}
      ]
    }"#;
    /// A request, and the one counter it moves.
    struct Case {
        path: &'static str,
        shadow: bool,
        counter: &'static str,
        /// the local reply's status, none when the request goes on
        status: Option<u16>,
    }
    let refused = "denied.path_ambiguous";
    let cases = [
        Case {
            path: "/dear/..;/admin",
            shadow: false,
            counter: refused,
            status: Some(400),
        },
        Case {
            path: "/dear/..%2Fadmin",
            shadow: false,
            counter: refused,
            status: Some(400),
        },
        Case {
            path: "/admin/..;/dear",
            shadow: false,
            counter: refused,
            status: Some(400),
        },
        Case {
            path: "/dear/..;/admin",
            shadow: true,
            counter: refused,
            status: None,
        },
        // Equal costs, or no rule for the widest reading: the normalised path's rule.
        Case {
            path: "/dear/..;/also-dear",
            shadow: false,
            counter: "allowed",
            status: None,
        },
        Case {
            path: "/dear/..;/other",
            shadow: false,
            counter: "allowed",
            status: None,
        },
    ];
    for case in cases {
        let cfg = if case.shadow {
            cfg.replace(
                r#""default_cost": 2,"#,
                r#""default_cost": 2, "shadow": true,"#,
            )
        } else {
            cfg.to_string()
        };
        let c = Config::parse(cfg.as_bytes()).unwrap();
        let store = MemStore::default();
        let path = case.path;
        let h = MockHost::new(&[(":path", path), ("x-user", "u")]);
        let counters = Counters::define(&h, &COUNTER_NAMES);
        let action = on_request_headers(&h, &store, &KEY, &c, &counters);
        assert_eq!(
            h.counter(&format!("apim.quota.{}", case.counter)),
            1,
            "{path}"
        );
        assert_eq!(h.reply().map(|r| r.status), case.status, "{path}");
        if case.status.is_some() {
            assert_eq!(action, Action::Stop, "{path}");
            let body: serde_json::Value = serde_json::from_slice(&h.reply().unwrap().body).unwrap();
            assert_eq!(body["code"], "path_ambiguous", "{path}");
        }
        if case.counter == refused {
            assert_eq!(h.counter("apim.quota.allowed"), 0, "{path}");
            assert!(store.is_untouched(), "{path}: nothing counted");
        }
    }
}

#[test]
fn shadow_mode_reports_and_never_denies() {
    let cfg = CONFIG.replace(
        r#""default_plan": "free","#,
        r#""default_plan": "free", "shadow": true, "headers": {"on_allowed": true},"#,
    );
    let (c, counters, store) = setup(&cfg);
    for _ in 0..2 {
        let h = host_for(Some(ALICE), None);
        let Action::Continue(hs) = run(&h, &store, &c, &counters) else {
            panic!()
        };
        assert_eq!(
            hs[0],
            ("ratelimit-policy".into(), r#""gold-min";q=2;w=60"#.into())
        );
    }
    let h = host_for(Some(ALICE), None);
    let Action::Continue(hs) = run(&h, &store, &c, &counters) else {
        panic!()
    };
    assert!(hs.contains(&("retry-after".into(), "60".into())));
    assert_eq!(h.counter("apim.quota.shadow_limited"), 1);
    assert_eq!(h.reply(), None);
}

const GLOBAL: &str = r#"{
  "plans": {
    "gold": {"limits": [{"requests": 2, "per": "minute", "name": "gold-min"}, {"requests": 100, "per": "month"}]},
    "strict": {"limits": [{"requests": 1, "per": "day"}], "failure_mode": "closed"}
  },
  "default_plan": "strict",
  "rules": [{"match": {"route_name": "reports"}, "cost": 3}],
  "global": {"cluster": "rls", "domain": "shop"}
}"#;

#[test]
fn the_global_tier_asks_the_rate_limit_service() {
    let (c, counters, store) = setup(GLOBAL);
    let h = host_for(Some(ALICE), Some("reports"));
    let Action::Global(call) = run(&h, &store, &c, &counters) else {
        panic!("a global call")
    };
    assert_eq!(call.plan, c.plan_index("gold").unwrap());
    let req = crate::rls::decode_request(&call.message).unwrap();
    assert_eq!(req.domain, "shop");
    assert_eq!(req.hits_addend, 3);
    let want = |id: &str, n: u32, unit| crate::rls::Descriptor {
        entries: vec![
            ("quota_plan".into(), "gold".into()),
            ("quota_limit".into(), id.into()),
            ("quota_key".into(), "=alice".into()),
        ],
        limit: Some((n, unit)),
        hits_addend: Some(3),
    };
    assert_eq!(
        req.descriptors,
        vec![
            want("minute", 2, crate::rls::Unit::Minute),
            want("month", 100, crate::rls::Unit::Month)
        ]
    );
    // Nothing was counted locally.
    assert!(store
        .get(&crate::store::slot_key(&KEY, b"gold\x1f=alice"))
        .0
        .is_none());
}

fn status(code: crate::rls::Code, remaining: u32, reset: u64) -> crate::rls::Status {
    crate::rls::Status {
        code,
        requests_per_unit: 0,
        limit_name: String::new(),
        limit_remaining: remaining,
        reset_seconds: reset,
    }
}

#[test]
fn global_answers_and_failures() {
    use crate::rls::{Code, Response};
    let (c, _, _) = setup(GLOBAL);
    let gold = c.plan_index("gold").unwrap();
    let strict = c.plan_index("strict").unwrap();
    let answer = |h: &MockHost, plan, a| {
        let counters = Counters::define(h, &COUNTER_NAMES);
        on_global_response(h, &c, &counters, plan, a, Shape::Request)
    };
    let h = MockHost::default();
    let over = Response {
        overall: Code::OverLimit,
        statuses: vec![
            status(Code::OverLimit, 0, 42),
            status(Code::Ok, 50, 900_000),
        ],
    };
    assert_eq!(answer(&h, gold, Ok(over)), Action::Stop);
    let r = h.reply().unwrap();
    assert_eq!(r.status, 429);
    assert!(r.headers.contains(&("retry-after".into(), "42".into())));
    assert!(r
        .headers
        .contains(&("ratelimit".into(), r#""gold-min";r=0;t=42"#.into())));
    assert_eq!(h.counter("apim.quota.limited"), 1);

    let h = MockHost::default();
    let ok = Response {
        overall: Code::Ok,
        statuses: vec![status(Code::Ok, 1, 42), status(Code::Ok, 50, 900_000)],
    };
    assert_eq!(answer(&h, gold, Ok(ok)), Action::Continue(vec![]));
    assert_eq!(h.counter("apim.quota.allowed"), 1);

    // Failures: gold fails open, strict fails closed; an answer without a code is a failure.
    let h = MockHost::default();
    assert_eq!(
        answer(&h, gold, Err("timeout".into())),
        Action::Continue(vec![])
    );
    assert_eq!(h.counter("apim.quota.global_errors"), 1);
    let h = MockHost::default();
    let empty = Response {
        overall: Code::Unknown,
        statuses: vec![],
    };
    assert_eq!(answer(&h, strict, Ok(empty)), Action::Stop);
    let r = h.reply().unwrap();
    assert_eq!(r.status, 503);
    assert!(String::from_utf8_lossy(&r.body).contains("quota_unavailable"));
    assert_eq!(h.counter("apim.quota.global_errors"), 1);
}

/// A deferred request the upstream answered before its body ended (or whose stream ended
/// first) is charged then, counted `charged_late`; a local reply of another filter (the
/// upstream never saw the request) is not charged.
#[test]
fn a_deferred_request_is_charged_late_never_left_uncharged() {
    let (c, _, store) = setup(CONFIG);
    let late = |status: Option<(u64, &str)>, cost: Option<&str>| {
        let mut h = host_for(Some(ALICE), Some("graphql"));
        let counters = Counters::define(&h, &COUNTER_NAMES);
        let AtHeaders::Defer(g) = at_headers_with_body(&h, &store, &KEY, &c, &counters) else {
            panic!("deferred")
        };
        if let Some((code, details)) = status {
            h.properties
                .insert("response.code".into(), code.to_le_bytes().to_vec());
            h.properties
                .insert("response.code_details".into(), details.as_bytes().to_vec());
        }
        let cost = cost.map(|c| c.as_bytes().to_vec());
        let call = charge_late(&h, &store, &KEY, &c, &counters, &g, cost.as_deref());
        assert_eq!(call, None);
        assert_eq!(h.reply(), None, "nothing is sent");
        (
            h.counter("apim.quota.charged_late"),
            h.counter("apim.quota.allowed"),
            h.counter("apim.quota.limited"),
        )
    };
    // graphql-guard refused the body: not charged.
    assert_eq!(late(Some((400, "wasm_fail_stream")), None), (0, 0, 0));
    // The upstream answered early: charged (gold: 2 per minute).
    assert_eq!(late(Some((200, "via_upstream")), None), (1, 1, 0));
    // The client reset the stream mid-body: charged.
    assert_eq!(late(None, None), (1, 1, 0));
    // Used up: counted as limited.
    assert_eq!(late(Some((200, "via_upstream")), None), (1, 0, 1));
    let h = host_for(Some(ALICE), None);
    let counters = Counters::define(&h, &COUNTER_NAMES);
    assert_eq!(
        on_request_headers(&h, &store, &KEY, &c, &counters),
        Action::Stop
    );
}

#[test]
fn a_response_without_code_details_is_a_local_reply() {
    let mut h = MockHost::new(&[]);
    assert!(!answered_locally(&h), "no response yet");
    h.properties
        .insert("response.code".into(), 400u64.to_le_bytes().to_vec());
    assert!(answered_locally(&h));
    h.properties
        .insert("response.code_details".into(), b"via_upstream".to_vec());
    assert!(!answered_locally(&h));
}
