use super::*;
use crate::config::Config;
use crate::store::admit;
use crate::test_support::MemStore;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

const CONFIG: &str = r#"{
  "plans": {
    "gold": {"limits": [{"requests": 2, "per": "second", "name": "burst"}, {"requests": 3, "per": "minute", "name": "minute"}]},
    "free": {"limits": [{"requests": 1, "per": 60}]},
    "partner": {"limits": [{"requests": 100, "per": "day"}]}
  },
  "default_plan": "free",
  "rules": [
    {"match": {"path": {"prefix": "/health"}}, "skip": true},
    {"match": {"path": {"prefix": "/reports"}}, "cost": 5},
    {"match": {"path": {"prefix": "/partner"}}, "plan": "partner"}
  ]
}"#;

fn config(extra: &str) -> Config {
    let mut v: serde_json::Value = serde_json::from_str(CONFIG).unwrap();
    let e: serde_json::Value = serde_json::from_str(extra).unwrap();
    for (k, x) in e.as_object().unwrap() {
        v[k] = x.clone();
    }
    Config::parse(v.to_string().as_bytes()).unwrap()
}

fn ident(id: &str, plan: Option<&str>) -> Identity {
    Identity {
        id: id.into(),
        plan: plan.map(str::to_string),
        ..Identity::default()
    }
}

#[test]
fn plan_key_and_cost_are_resolved() {
    let c = config("{}");
    let gold = c.plan_index("gold").unwrap();
    let free = c.plan_index("free").unwrap();
    let partner = c.plan_index("partner").unwrap();
    let alice = ident("alice", Some("gold"));
    let nobody = ident("x", Some("platinum"));
    let cases: Vec<(&str, Option<&Identity>, Resolution)> = vec![
        (
            "/pets",
            Some(&alice),
            Resolution::Count {
                plan: gold,
                key: "alice".into(),
                cost: 1,
            },
        ),
        (
            "/reports/1",
            Some(&alice),
            Resolution::Count {
                plan: gold,
                key: "alice".into(),
                cost: 5,
            },
        ),
        (
            "/partner/x",
            Some(&alice),
            Resolution::Count {
                plan: partner,
                key: "alice".into(),
                cost: 1,
            },
        ),
        ("/health", Some(&alice), Resolution::Pass),
        // An unknown plan and no identity both fall to the default plan; the missing consumer reads "-".
        (
            "/pets",
            Some(&nobody),
            Resolution::Count {
                plan: free,
                key: "x".into(),
                cost: 1,
            },
        ),
        (
            "/pets",
            None,
            Resolution::Count {
                plan: free,
                key: "-".into(),
                cost: 1,
            },
        ),
    ];
    for (path, id, want) in cases {
        let head = RequestHead::from_pairs(&[(":path", path)]);
        let input = Inputs {
            identity: id,
            ..Inputs::new(&head)
        };
        assert_eq!(resolve(&c, &input), want, "{path}");
    }
}

#[test]
fn without_a_default_plan_callers_without_one_pass() {
    let mut c = config("{}");
    c.default_plan = None;
    let head = RequestHead::from_pairs(&[(":path", "/pets")]);
    assert_eq!(resolve(&c, &Inputs::new(&head)), Resolution::Pass);
}

#[test]
fn key_parts_and_missing_key_policies() {
    let head = RequestHead::from_pairs(&[(":path", "/x"), ("x-tenant", "acme")]);
    let alice = ident("alice", Some("gold"));
    let c = config(r#"{"key":["consumer",{"header":"x-tenant"},"client_address","route"]}"#);
    let input = Inputs {
        head: &head,
        identity: Some(&alice),
        client_address: Some("10.1.2.3:5555"),
        route: Some("pets"),
        filter_cost: None,
    };
    let Resolution::Count { key, .. } = resolve(&c, &input) else {
        panic!()
    };
    assert_eq!(key, "alice\u{1f}acme\u{1f}10.1.2.3\u{1f}pets");
    let input = Inputs {
        client_address: Some("[::1]:80"),
        ..Inputs::new(&head)
    };
    let Resolution::Count { key, .. } = resolve(&c, &input) else {
        panic!()
    };
    assert_eq!(key, "-\u{1f}acme\u{1f}::1\u{1f}-");
    let long = "a".repeat(300);
    let head2 = RequestHead::from_pairs(&[(":path", "/x"), ("x-tenant", &long)]);
    let c2 = config(r#"{"key":[{"header":"x-tenant"}]}"#);
    let Resolution::Count { key, .. } = resolve(&c2, &Inputs::new(&head2)) else {
        panic!()
    };
    assert!(key.starts_with('#') && key.len() == 65, "{key}");
    let allow = config(r#"{"missing_key":"allow"}"#);
    assert_eq!(resolve(&allow, &Inputs::new(&head)), Resolution::Pass);
    let deny = config(r#"{"missing_key":"deny"}"#);
    let Resolution::MissingKey(d) = resolve(&deny, &Inputs::new(&head)) else {
        panic!()
    };
    assert_eq!((d.status, d.code), (403, "quota_key_missing"));
    assert_eq!(
        d.detail,
        "The request carries no consumer identity, which the quota is counted by."
    );
}

#[test]
fn cost_sources() {
    let c = config(r#"{"cost_from_filter_state":true,"max_cost":50}"#);
    let cases: &[(Option<u64>, Option<&[u8]>, u64)] = &[
        (None, None, 1),
        (Some(5), None, 5),
        (Some(5), Some(b"12"), 12),
        (None, Some(b"0"), 1), // a published 0 still counts: only a route rule makes requests free
        (None, Some(b"junk"), 1),
        (Some(3), Some(b"-4"), 3),
        (None, Some(b"99999"), 50),
    ];
    for (route, fs, want) in cases {
        assert_eq!(cost_of(&c, *route, *fs), *want, "{route:?} {fs:?}");
    }
    // Without the option, apim_cost is ignored.
    let c = config("{}");
    assert_eq!(cost_of(&c, None, Some(b"12")), 1);
}

fn run(c: &Config, store: &MemStore, key: &str, cost: u64, now: u64) -> Verdict {
    let plan = &c.plans[c.plan_index("gold").unwrap()];
    let (slot, checks) = checks(plan, key, now);
    let outcome = admit(store, &slot, &checks, cost, now);
    verdict(c, plan, &checks, &outcome, cost, now)
}

fn h(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
        .collect()
}

#[test]
fn burst_and_minute_limits_stack_with_their_fields() {
    let c = config(r#"{"headers":{"on_allowed":true,"legacy":true}}"#);
    let s = MemStore::default();
    let policy = r#""burst";q=2;w=1, "minute";q=3;w=60"#;
    let now = 1_800_000_010;
    assert_eq!(
        run(&c, &s, "alice", 1, now),
        Verdict::Allow(h(&[
            ("ratelimit-policy", policy),
            ("ratelimit", r#""burst";r=1;t=1"#),
            ("x-ratelimit-limit", "2"),
            ("x-ratelimit-remaining", "1"),
            ("x-ratelimit-reset", "1"),
        ]))
    );
    assert!(matches!(run(&c, &s, "alice", 1, now), Verdict::Allow(_)));
    let Verdict::Deny(d) = run(&c, &s, "alice", 1, now) else {
        panic!()
    };
    assert_eq!((d.status, d.code), (429, "quota_exceeded"));
    assert_eq!(
        d.detail,
        "The \"burst\" limit of 2 is used up; retry in 1 s."
    );
    assert_eq!(
        d.headers,
        h(&[
            ("ratelimit-policy", policy),
            ("ratelimit", r#""burst";r=0;t=1"#),
            ("retry-after", "1"),
            ("x-ratelimit-limit", "2"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1"),
        ])
    );
    // Next second: the burst is free again, the minute has one left; then the minute decides.
    let Verdict::Allow(hs) = run(&c, &s, "alice", 1, now + 1) else {
        panic!()
    };
    assert_eq!(hs[1], ("ratelimit".into(), r#""minute";r=0;t=49"#.into()));
    let Verdict::Deny(d) = run(&c, &s, "alice", 1, now + 2) else {
        panic!()
    };
    assert!(
        d.headers.contains(&("retry-after".into(), "48".into())),
        "{:?}",
        d.headers
    );
    // Others have their own counters.
    assert!(matches!(run(&c, &s, "bob", 1, now + 2), Verdict::Allow(_)));
}

#[test]
fn fields_on_allowed_responses_only_when_asked_and_shadow_never_denies() {
    let c = config("{}");
    let s = MemStore::default();
    assert_eq!(run(&c, &s, "a", 1, 0), Verdict::Allow(vec![]));
    let Verdict::Deny(d) = run(&c, &s, "a", 2, 0) else {
        panic!()
    };
    assert_eq!(
        d.headers,
        h(&[
            ("ratelimit-policy", r#""burst";q=2;w=1, "minute";q=3;w=60"#),
            ("ratelimit", r#""burst";r=1;t=1"#),
            ("retry-after", "1"),
        ])
    );
    let shadow = config(r#"{"shadow":true}"#);
    let s = MemStore::default();
    for _ in 0..2 {
        assert_eq!(run(&shadow, &s, "a", 1, 0), Verdict::Allow(vec![]));
    }
    assert_eq!(run(&shadow, &s, "a", 1, 0), Verdict::ShadowLimited(vec![]));
    let shadow = config(r#"{"shadow":true,"headers":{"on_allowed":true}}"#);
    let Verdict::ShadowLimited(hs) = run(&shadow, &s, "a", 1, 0) else {
        panic!()
    };
    assert!(hs.contains(&("retry-after".into(), "1".into())));
}

#[test]
fn a_month_window_reports_its_real_reset() {
    let c = Config::parse(br#"{"plans":{"gold":{"limits":[{"requests":1,"per":"month"}]}},"headers":{"on_allowed":true}}"#).unwrap();
    let s = MemStore::default();
    // 2026-02-27 00:00 UTC: 2 days to 2026-03-01.
    let now = 1_772_150_400;
    let Verdict::Allow(hs) = run(&c, &s, "a", 1, now) else {
        panic!()
    };
    assert_eq!(hs[1].1, r#""gold-month";r=0;t=172800"#);
    let Verdict::Deny(d) = run(&c, &s, "a", 1, now) else {
        panic!()
    };
    assert!(d.headers.contains(&("retry-after".into(), "172800".into())));
}
