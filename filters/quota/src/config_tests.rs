use super::*;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

const GOOD: &str = r#"{
  "plans": {
    "gold": {"limits": [{"requests": 10, "per": "second"}, {"requests": 100000, "per": "month", "name": "monthly"}]},
    "free": {"limits": [{"requests": 5, "per": 90}]}
  },
  "default_plan": "free",
  "key": ["consumer", {"header": "X-Tenant"}],
  "rules": [
    {"match": {"path": {"prefix": "/health"}}, "skip": true},
    {"match": {"route_name": "reports"}, "cost": 5},
    {"match": {"path": {"prefix": "/partner"}}, "plan": "gold"}
  ],
  "headers": {"on_allowed": true, "legacy": true}
}"#;

#[test]
fn a_good_config_is_precompiled() {
    let c = Config::parse(GOOD.as_bytes()).unwrap();
    assert_eq!(c.plans.len(), 2);
    let free = &c.plans[c.default_plan.unwrap()];
    assert_eq!(free.name, "free");
    assert_eq!(free.limits[0].name, "free-90s");
    assert_eq!(free.limits[0].window, Window::Seconds(90));
    let gold = &c.plans[c.plan_index("gold").unwrap()];
    assert_eq!(
        gold.policy_header,
        r#""gold-second";q=10;w=1, "monthly";q=100000;w=2592000"#
    );
    assert_eq!(
        c.key,
        vec![KeyPart::Consumer, KeyPart::Header("x-tenant".into())]
    );
    assert_eq!(c.fetch, [":path", "x-tenant"]);
    assert!(c.needs_route_name);
    assert!(c.headers_on_allowed && c.legacy_headers && !c.shadow);
    assert_eq!(c.default_cost, 1);
    assert_eq!(c.max_cost, DEFAULT_MAX_COST);
}

#[test]
fn the_global_tier_is_validated() {
    let c = Config::parse(
        br#"{"plans":{"p":{"limits":[{"requests":1,"per":"day"}],"failure_mode":"closed"}},
             "global":{"cluster":"rls"}}"#,
    )
    .unwrap();
    assert_eq!(
        c.global,
        Some(Global {
            cluster: "rls".into(),
            domain: "apim".into(),
            timeout_ms: DEFAULT_TIMEOUT_MS
        })
    );
    assert_eq!(c.plans[0].failure_mode, FailureMode::Closed);
}

#[test]
fn minimal_config_reads_nothing_it_does_not_need() {
    let c =
        Config::parse(br#"{"plans":{"p":{"limits":[{"requests":1,"per":"minute"}]}}}"#).unwrap();
    // No header for every request: what tells a CORS preflight is read only for a request
    // that carries `access-control-request-method` (handler::gather).
    assert!(c.fetch.is_empty());
    assert!(!c.needs_route_name);
    assert_eq!(c.key, vec![KeyPart::Consumer]);
    // Callers missing a key part are counted per client address; no plan means refused.
    assert_eq!(c.missing_key, MissingKey::ClientAddress);
    assert_eq!(c.unknown_plan, UnknownPlan::Deny);
    assert_eq!(c.cors_preflight, Preflight::Separate);
    assert_eq!(c.when_store_full, StoreFallback::Deny);
    assert_eq!(c.when_store_fails, StoreFallback::Deny);
    assert_eq!(c.slot_key, None);
    assert!(c.warnings.is_empty());
}

#[test]
fn choices_that_loosen_a_default_are_warned_about() {
    let p = r#""plans":{"p":{"limits":[{"requests":1,"per":"minute"}]}}"#;
    let cases: &[(&str, &str)] = &[
        (
            r#""unknown_plan":"unlimited""#,
            "unknown_plan: \"unlimited\"",
        ),
        (r#""when_store_full":"admit""#, "when_store_full: \"admit\""),
        (
            r#""when_store_fails":"admit""#,
            "when_store_fails: \"admit\"",
        ),
        (r#""cors_preflight":"skip""#, "cors_preflight: \"skip\""),
        (r#""missing_key":"allow""#, "missing_key: \"allow\""),
        (r#""shadow":true"#, "shadow: true"),
        (
            r#""slot_key":"000102030405060708090a0b0c0d0e0f""#,
            "slot_key is set",
        ),
    ];
    for (extra, want) in cases {
        let c = Config::parse(format!("{{{p},{extra}}}").as_bytes()).unwrap();
        assert_eq!(c.warnings.len(), 1, "{extra}");
        assert!(c.warnings[0].starts_with(want), "{:?}", c.warnings);
    }
    let c = Config::parse(format!("{{{p},\"unknown_plan\":\"p\"}}").as_bytes()).unwrap();
    assert_eq!(c.unknown_plan, UnknownPlan::Plan(0));
    let c = Config::parse(
        format!("{{{p},\"slot_key\":\"000102030405060708090a0b0c0d0eff\"}}").as_bytes(),
    )
    .unwrap();
    assert_eq!(
        c.slot_key,
        Some([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 255])
    );
}

#[test]
fn plans_are_compared_for_strictness() {
    let c = Config::parse(
        br#"{"plans":{
          "a":{"limits":[{"requests":5,"per":"second"},{"requests":100,"per":"day"}]},
          "b":{"limits":[{"requests":10,"per":"second"}]},
          "c":{"limits":[{"requests":3,"per":10}]}}}"#,
    )
    .unwrap();
    let p = |n: &str| &c.plans[c.plan_index(n).unwrap()];
    let cases = [
        ("a", "b", true),
        ("b", "a", false),
        ("a", "a", true),
        ("c", "b", false),
        ("b", "c", false),
    ];
    for (x, y, want) in cases {
        assert_eq!(at_least_as_strict(p(x), p(y)), want, "{x} vs {y}");
    }
}

/// A plan that fails open is looser than the same limits failing closed; with
/// `unknown_plan: deny` every rule that sets a plan loosens (without it: a 403).
#[test]
fn fail_open_is_looser_and_plan_rules_are_guarded_when_unknown_plans_are_denied() {
    let c = Config::parse(
        br#"{"plans":{
          "open":{"limits":[{"requests":5,"per":"second"}]},
          "closed":{"limits":[{"requests":5,"per":"second"}],"failure_mode":"closed"}}}"#,
    )
    .unwrap();
    let p = |n: &str| &c.plans[c.plan_index(n).unwrap()];
    assert!(!at_least_as_strict(p("open"), p("closed")));
    assert!(at_least_as_strict(p("closed"), p("open")));
    let head = kit::request::RequestHead::from_pairs(&[(":path", "/a/..%2Fb")]);
    let input = kit::matcher::MatchInput {
        route_name: None,
        head: &head,
    };
    for (unknown, guarded) in [("deny", true), ("unlimited", false)] {
        let c = Config::parse(
            format!(
                r#"{{"plans":{{"p":{{"limits":[{{"requests":1,"per":1}}]}}}},
                  "unknown_plan":"{unknown}",
                  "rules":[{{"match":{{"path":{{"prefix":"/a"}}}},"plan":"p"}}]}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        let l = c.rules.lookup(&input);
        assert_eq!(l.rule.is_none(), guarded, "{unknown}");
        assert_eq!(l.refused_ambiguous, guarded, "{unknown}");
    }
}

#[test]
fn bad_configs_name_the_field() {
    let p = r#""plans":{"p":{"limits":[{"requests":1,"per":"minute"}]}}"#;
    let cases: Vec<(String, &str)> = vec![
        ("{}".into(), "missing field `plans`"),
        (r#"{"plans":{}}"#.into(), "plans: at least one plan is required"),
        (format!("{{{p},\"shadw\":true}}"), "unknown field `shadw`"),
        (r#"{"plans":{"p":{"limits":[]}}}"#.into(), "plans.p.limits: must have 1 to 8 limits"),
        (r#"{"plans":{"a b":{"limits":[{"requests":1,"per":1}]}}}"#.into(), "plans.a b: \"a b\" must be 1-64 characters of A-Z a-z 0-9 - _ ."),
        (r#"{"plans":{"p":{"limits":[{"requests":0,"per":"minute"}]}}}"#.into(), "plans.p.limits[0].requests: must be between 1 and 1000000000000"),
        (r#"{"plans":{"p":{"limits":[{"requests":1,"per":"week"}]}}}"#.into(), "plans.p.limits[0].per: \"week\" is not one of second, minute, hour, day, month or a number of seconds"),
        (r#"{"plans":{"p":{"limits":[{"requests":1,"per":0}]}}}"#.into(), "plans.p.limits[0].per: must be between 1 and 31622400 seconds"),
        (r#"{"plans":{"p":{"limits":[{"requests":1,"per":99999999999}]}}}"#.into(), "plans.p.limits[0].per: must be between 1 and 31622400 seconds"),
        (r#"{"plans":{"p":{"limits":[{"requests":1,"per":60},{"requests":2,"per":"minute"}]}}}"#.into(), "plans.p.limits[1].per: another limit of this plan has the same window"),
        (r#"{"plans":{"p":{"limits":[{"requests":1,"per":1,"name":"x"},{"requests":2,"per":2,"name":"x"}]}}}"#.into(), "plans.p.limits[1].name: \"x\" is used twice"),
        (r#"{"plans":{"p":{"limits":[{"requests":1,"per":1,"name":"\"q\""}]}}}"#.into(), "plans.p.limits[0].name: \"\"q\"\" must be"),
        (r#"{"plans":{"p":{"limits":[{"requests":-1,"per":1}]}}}"#.into(), "plans.p.limits[0].requests: invalid value"),
        (format!("{{{p},\"default_plan\":\"gold\"}}"), "default_plan: unknown plan \"gold\""),
        (format!("{{{p},\"key\":[]}}"), "key: must have 1 to 4 parts"),
        (format!("{{{p},\"key\":[\"consumer\",\"consumer\"]}}"), "key[1]: repeats an earlier part"),
        (format!("{{{p},\"key\":[{{\"header\":\":path\"}}]}}"), "key[0].header: \":path\" is a pseudo-header"),
        (format!("{{{p},\"key\":[\"user\"]}}"), "key[0]: unknown variant `user`"),
        (format!("{{{p},\"missing_key\":\"ignore\"}}"), "missing_key: unknown variant `ignore`"),
        (format!("{{{p},\"unknown_plan\":\"gold\"}}"), "unknown_plan: unknown plan \"gold\""),
        (format!("{{{p},\"cors_preflight\":\"count\"}}"), "cors_preflight: unknown variant `count`"),
        (format!("{{{p},\"when_store_full\":\"evict\"}}"), "when_store_full: unknown variant `evict`"),
        (format!("{{{p},\"when_store_fails\":\"open\"}}"), "when_store_fails: unknown variant `open`"),
        (format!("{{{p},\"rules\":[{{\"match\":{{\"path\":{{\"prefix\":\"/\"}}}},\"message_cost\":1}}]}}"), "rules[0].message_cost: counts gRPC messages: the rule needs a match.grpc"),
        (format!("{{{p},\"rules\":[{{\"match\":{{\"grpc\":{{\"service\":\"a.B\"}}}},\"message_cost\":0}}]}}"), "rules[0].message_cost: must be between 1 and max_cost"),
        (format!("{{{p},\"cost_from_filter_state\":true,\"rules\":[{{\"match\":{{\"grpc\":{{\"service\":\"a.B\"}}}},\"message_cost\":1}}]}}"), "rules[0].message_cost: is counted in this Envoy's shared data: not with global or cost_from_filter_state"),
        (format!("{{{p},\"rules\":[{{\"match\":{{\"grpc\":{{\"service\":\"a.B\"}}}},\"skip\":true,\"message_cost\":1}}]}}"), "rules[0].message_cost: a skip rule counts nothing"),
        (format!("{{{p},\"slot_key\":\"00\"}}"), "slot_key: must be 32 hex digits"),
        (format!("{{{p},\"slot_key\":\"+00102030405060708090a0b0c0d0e0f\"}}"), "slot_key: must be 32 hex digits"),
        (format!("{{{p},\"anonymous_consumers\":[\"\"]}}"), "anonymous_consumers[0]: must be 1-256 characters"),
        (format!("{{{p},\"max_cost\":0}}"), "max_cost: must be between 1 and 1000000000"),
        (format!("{{{p},\"default_cost\":20,\"max_cost\":10}}"), "default_cost: must be at most max_cost (10)"),
        (format!("{{{p},\"rules\":[{{\"plan\":\"nope\"}}]}}"), "rules[0].plan: unknown plan \"nope\""),
        (format!("{{{p},\"rules\":[{{\"cost\":2000000}}]}}"), "rules[0].cost: must be at most max_cost (1000000)"),
        (format!("{{{p},\"rules\":[{{\"skip\":true,\"cost\":2}}]}}"), "rules[0]: a skip rule takes no plan, cost or await_cost"),
        (format!("{{{p},\"rules\":[{{\"await_cost\":true}}]}}"), "rules[0].await_cost: needs cost_from_filter_state: true"),
        (r#"{"plans":{"unlimited":{"limits":[{"requests":1,"per":1}]}}}"#.into(), "plans.unlimited: \"unlimited\" is reserved"),
        (r#"{"plans":{"deny":{"limits":[{"requests":1,"per":1}]}}}"#.into(), "plans.deny: \"deny\" is reserved"),
        (format!("{{{p},\"rules\":[{{\"match\":{{\"path\":{{\"prefix\":\"x\"}}}}}}]}}"), "rules[0].match.path"),
        (format!("{{{p},\"headers\":{{\"lgacy\":true}}}}"), "headers.lgacy: unknown field"),
        (format!("{{{p},\"global\":{{}}}}"), "global: missing field `cluster`"),
        (format!("{{{p},\"global\":{{\"cluster\":\"\"}}}}"), "global.cluster: must be 1-256 characters"),
        (format!("{{{p},\"global\":{{\"cluster\":\"rls\",\"timeout_ms\":0}}}}"), "global.timeout_ms: must be between 1 and 10000"),
        (format!("{{{p},\"global\":{{\"cluster\":\"rls\",\"domain\":\"\"}}}}"), "global.domain: must be 1-256 characters"),
        (r#"{"plans":{"p":{"limits":[{"requests":1,"per":90}]}},"global":{"cluster":"rls"}}"#.into(), "plans.p.limits[0].per: the global tier counts per second, minute, hour, day or month only"),
        (r#"{"plans":{"p":{"limits":[{"requests":5000000000,"per":"day"}]}},"global":{"cluster":"rls"}}"#.into(), "plans.p.limits[0].requests: the global tier takes at most 4294967295"),
        (r#"{"plans":{"p":{"limits":[{"requests":1,"per":"day"}],"failure_mode":"maybe"}}}"#.into(), "plans.p.failure_mode: unknown variant `maybe`"),
    ];
    for (input, want) in cases {
        let err = Config::parse(input.as_bytes()).unwrap_err().to_string();
        assert!(
            err.starts_with(want) || err.contains(want),
            "{input}\n got: {err}\nwant: {want}"
        );
    }
}
