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
    assert_eq!(c.fetch, vec![":path".to_string(), "x-tenant".to_string()]);
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
    assert!(c.fetch.is_empty());
    assert!(!c.needs_route_name);
    assert_eq!(c.key, vec![KeyPart::Consumer]);
    assert_eq!(c.missing_key, MissingKey::Shared);
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
        (format!("{{{p},\"max_cost\":0}}"), "max_cost: must be between 1 and 1000000000"),
        (format!("{{{p},\"default_cost\":20,\"max_cost\":10}}"), "default_cost: must be at most max_cost (10)"),
        (format!("{{{p},\"rules\":[{{\"plan\":\"nope\"}}]}}"), "rules[0].plan: unknown plan \"nope\""),
        (format!("{{{p},\"rules\":[{{\"cost\":2000000}}]}}"), "rules[0].cost: must be at most max_cost (1000000)"),
        (format!("{{{p},\"rules\":[{{\"skip\":true,\"cost\":2}}]}}"), "rules[0]: a skip rule takes no plan or cost"),
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
