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
                key: "=alice".into(),
                cost: 1,
            },
        ),
        (
            "/reports/1",
            Some(&alice),
            Resolution::Count {
                plan: gold,
                key: "=alice".into(),
                cost: 5,
            },
        ),
        (
            "/partner/x",
            Some(&alice),
            Resolution::Count {
                plan: partner,
                key: "=alice".into(),
                cost: 1,
            },
        ),
        ("/health", Some(&alice), Resolution::Pass),
        // A plan this config does not know is refused (unknown_plan defaults to deny).
        (
            "/pets",
            Some(&nobody),
            Resolution::UnknownPlan(Denial::new(
                403,
                "quota_plan_unknown",
                "No quota plan",
                "No quota plan applies to this caller, so the request cannot be counted.",
            )),
        ),
        // No identity: the default plan; the missing consumer reads "-" without an address.
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
        assert_eq!(resolve(&c, &input).resolution, want, "{path}");
    }
}

#[test]
fn a_caller_without_a_plan_is_refused_unless_the_config_says_otherwise() {
    let head = RequestHead::from_pairs(&[(":path", "/pets")]);
    let platinum = ident("p", Some("platinum"));
    let planless = ident("q", None);
    let free = config("{}").plan_index("free").unwrap();
    // (config, identity, resolution kind): unknown_plan decides when no plan applies.
    let cases: Vec<(&str, Option<&Identity>, &str)> = vec![
        (r#"{"default_plan":null}"#, None, "unknown"),
        (r#"{"default_plan":null}"#, Some(&planless), "unknown"),
        ("{}", Some(&platinum), "unknown"),
        ("{}", Some(&planless), "free"),
        (
            r#"{"default_plan":null,"unknown_plan":"deny"}"#,
            None,
            "unknown",
        ),
        (
            r#"{"default_plan":null,"unknown_plan":"unlimited"}"#,
            None,
            "pass",
        ),
        (r#"{"unknown_plan":"unlimited"}"#, Some(&platinum), "pass"),
        (
            r#"{"default_plan":null,"unknown_plan":"free"}"#,
            None,
            "free",
        ),
        (r#"{"unknown_plan":"free"}"#, Some(&platinum), "free"),
    ];
    for (extra, id, want) in cases {
        let c = config(extra);
        let input = Inputs {
            identity: id,
            ..Inputs::new(&head)
        };
        let got = match resolve(&c, &input).resolution {
            Resolution::UnknownPlan(d) => {
                assert_eq!((d.status, d.code), (403, "quota_plan_unknown"));
                "unknown"
            }
            Resolution::Pass => "pass",
            Resolution::Count { plan, .. } if plan == free => "free",
            other => panic!("{extra} {id:?}: {other:?}"),
        };
        assert_eq!(got, want, "{extra} {id:?}");
    }
}

#[test]
fn anonymous_callers_and_preflights_get_counters_of_their_own() {
    let c = config(r#"{"anonymous_consumers":["guest"]}"#);
    let guest = ident("guest", Some("free"));
    let alice = ident("alice", Some("gold"));
    let get = RequestHead::from_pairs(&[(":method", "GET"), (":path", "/pets")]);
    let preflight = RequestHead::from_pairs(&[
        (":method", "OPTIONS"),
        (":path", "/pets"),
        ("origin", "https://a.example"),
        ("access-control-request-method", "POST"),
    ]);
    let key = |c: &Config, head: &RequestHead, id: Option<&Identity>, addr: Option<&str>| {
        let input = Inputs {
            identity: id,
            client_address: addr,
            ..Inputs::new(head)
        };
        match resolve(c, &input).resolution {
            Resolution::Count { key, .. } => key,
            Resolution::Pass => "PASS".into(),
            other => panic!("{other:?}"),
        }
    };
    /// A request, who sent it and from where, and the counter key it gets.
    struct KeyCase<'a> {
        head: &'a RequestHead,
        identity: Option<&'a Identity>,
        client_address: Option<&'a str>,
        key: &'a str,
    }
    let cases = [
        KeyCase {
            head: &get,
            identity: Some(&alice),
            client_address: Some("10.0.0.1:1"),
            key: "=alice",
        },
        // The anonymous consumer and no identity at all: per client address.
        KeyCase {
            head: &get,
            identity: Some(&guest),
            client_address: Some("10.0.0.1:1"),
            key: "@10.0.0.1",
        },
        KeyCase {
            head: &get,
            identity: None,
            client_address: Some("10.0.0.2:1"),
            key: "@10.0.0.2",
        },
        // An IPv6 host has a /64 to pick from: counted per /64.
        KeyCase {
            head: &get,
            identity: None,
            client_address: Some("[2001:db8:1:2:aa::1]:443"),
            key: "@2001:db8:1:2::/64",
        },
        KeyCase {
            head: &get,
            identity: None,
            client_address: None,
            key: "-",
        },
        // Preflights: their own counter per address, when no one is identified.
        KeyCase {
            head: &preflight,
            identity: None,
            client_address: Some("10.0.0.1:1"),
            key: "!preflight\u{1f}@10.0.0.1",
        },
        KeyCase {
            head: &preflight,
            identity: Some(&guest),
            client_address: Some("10.0.0.1:1"),
            key: "!preflight\u{1f}@10.0.0.1",
        },
        // An identified caller sending what looks like a preflight is counted as itself.
        KeyCase {
            head: &preflight,
            identity: Some(&alice),
            client_address: Some("10.0.0.1:1"),
            key: "=alice",
        },
    ];
    for case in cases {
        let (id, addr) = (case.identity, case.client_address);
        assert_eq!(key(&c, case.head, id, addr), case.key, "{id:?} {addr:?}");
    }
    let skip = config(r#"{"cors_preflight":"skip"}"#);
    assert_eq!(key(&skip, &preflight, None, Some("10.0.0.1:1")), "PASS");
    // `skip` never lets an identified caller's request through uncounted.
    assert_eq!(
        key(&skip, &preflight, Some(&alice), Some("10.0.0.1:1")),
        "=alice"
    );
    let same = config(r#"{"cors_preflight":"same","missing_key":"shared"}"#);
    assert_eq!(key(&same, &preflight, None, Some("10.0.0.1:1")), "-");
}

#[test]
fn client_values_cannot_read_as_another_kind_of_part() {
    let c = config(r#"{"key":[{"header":"x-user"}]}"#);
    let key = |v: &str| {
        let head = RequestHead::from_pairs(&[(":path", "/x"), ("x-user", v)]);
        let input = Inputs {
            client_address: Some("10.0.0.9:1"),
            ..Inputs::new(&head)
        };
        match resolve(&c, &input).resolution {
            Resolution::Count { key, .. } => key,
            other => panic!("{other:?}"),
        }
    };
    let missing = {
        let head = RequestHead::from_pairs(&[(":path", "/x")]);
        let input = Inputs {
            client_address: Some("10.0.0.9:1"),
            ..Inputs::new(&head)
        };
        match resolve(&c, &input).resolution {
            Resolution::Count { key, .. } => key,
            other => panic!("{other:?}"),
        }
    };
    let long = "b".repeat(300);
    let hashed = key(&long);
    for v in ["-", "@10.0.0.9", hashed.as_str(), "!preflight"] {
        let k = key(v);
        assert_ne!(k, missing, "{v}");
        assert_ne!(k, hashed, "{v}");
        assert!(k.starts_with('='), "{k}");
    }
    assert_eq!(missing, "@10.0.0.9");
    assert!(hashed.starts_with('#') && hashed.len() == 65);
    // A value with a control byte is hashed, never stored as sent.
    assert!(key("a\u{1f}b").starts_with('#'));
    // Bytes that are not UTF-8 are hashed as they are: two different ones never read the same
    // (a lossy conversion made both U+FFFD).
    let raw = |v: &[u8]| {
        let head = RequestHead::new(vec![
            (":path".to_string(), b"/x".to_vec()),
            ("x-user".to_string(), v.to_vec()),
        ]);
        match resolve(&c, &Inputs::new(&head)).resolution {
            Resolution::Count { key, .. } => key,
            other => panic!("{other:?}"),
        }
    };
    let (a, b) = (raw(b"\xff"), raw(b"\xfe"));
    assert!(a.starts_with('#') && b.starts_with('#'));
    assert_ne!(a, b);
}

#[test]
fn long_families_are_hashed_whole_never_cut() {
    let c = config(r#"{"key":[{"header":"a"},{"header":"b"},{"header":"c"},{"header":"d"}]}"#);
    let plan = &c.plans[c.plan_index("gold").unwrap()];
    let v = "v".repeat(256);
    let family_of = |last: &str| {
        let head = RequestHead::from_pairs(&[
            (":path", "/x"),
            ("a", &v),
            ("b", &v),
            ("c", &v),
            ("d", last),
        ]);
        let Resolution::Count { key, .. } = resolve(&c, &Inputs::new(&head)).resolution else {
            panic!()
        };
        family(plan, &key)
    };
    // Two keys that differ only past the 1024th byte: the old code cut both to the same name.
    let (x, y) = (
        format!("{}x", "w".repeat(250)),
        format!("{}y", "w".repeat(250)),
    );
    let (fx, fy) = (family_of(&x), family_of(&y));
    assert_ne!(fx, fy);
    assert!(fx.len() <= MAX_FAMILY && fx.starts_with(b"gold\x1f%"));
    let short = family_of("s");
    assert!(short.len() <= MAX_FAMILY);
    let (_, checks) = checks(plan, "=k", 0, &[0; 16]);
    assert!(checks
        .iter()
        .all(|c| c.name.len() <= crate::store::MAX_ENTRY_NAME));
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
    let Resolution::Count { key, .. } = resolve(&c, &input).resolution else {
        panic!()
    };
    assert_eq!(key, "=alice\u{1f}=acme\u{1f}@10.1.2.3\u{1f}=pets");
    let input = Inputs {
        client_address: Some("[::1]:80"),
        ..Inputs::new(&head)
    };
    let Resolution::Count { key, .. } = resolve(&c, &input).resolution else {
        panic!()
    };
    assert_eq!(key, "@::/64\u{1f}=acme\u{1f}@::/64\u{1f}@::/64");
    // An explicit `client_address` part groups IPv6 by /64 as a missing part does: a host
    // cannot get a fresh counter per address of its /64.
    let by_addr = config(r#"{"key":["client_address"]}"#);
    let k = |addr: &str| {
        let input = Inputs {
            client_address: Some(addr),
            ..Inputs::new(&head)
        };
        match resolve(&by_addr, &input).resolution {
            Resolution::Count { key, .. } => key,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(k("[2001:db8:1:2::1]:1"), k("[2001:db8:1:2:ffff::9]:2"));
    assert_eq!(k("[2001:db8:1:2::1]:1"), "@2001:db8:1:2::/64");
    assert_ne!(k("[2001:db8:1:3::1]:1"), k("[2001:db8:1:2::1]:1"));
    let long = "a".repeat(300);
    let head2 = RequestHead::from_pairs(&[(":path", "/x"), ("x-tenant", &long)]);
    let c2 = config(r#"{"key":[{"header":"x-tenant"}]}"#);
    let Resolution::Count { key, .. } = resolve(&c2, &Inputs::new(&head2)).resolution else {
        panic!()
    };
    assert!(key.starts_with('#') && key.len() == 65, "{key}");
    let allow = config(r#"{"missing_key":"allow"}"#);
    assert_eq!(
        resolve(&allow, &Inputs::new(&head)).resolution,
        Resolution::Pass
    );
    let deny = config(r#"{"missing_key":"deny"}"#);
    let Resolution::MissingKey(d) = resolve(&deny, &Inputs::new(&head)).resolution else {
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
    let (slot, checks) = checks(plan, key, now, &[7; 16]);
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
        Verdict::Allow(
            h(&[
                ("ratelimit-policy", policy),
                ("ratelimit", r#""burst";r=1;t=1"#),
                ("x-ratelimit-limit", "2"),
                ("x-ratelimit-remaining", "1"),
                ("x-ratelimit-reset", "1"),
            ],),
            None
        )
    );
    assert!(matches!(run(&c, &s, "alice", 1, now), Verdict::Allow(..)));
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
    let Verdict::Allow(hs, _) = run(&c, &s, "alice", 1, now + 1) else {
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
    assert!(matches!(run(&c, &s, "bob", 1, now + 2), Verdict::Allow(..)));
}

#[test]
fn fields_on_allowed_responses_only_when_asked_and_shadow_never_denies() {
    let c = config("{}");
    let s = MemStore::default();
    assert_eq!(run(&c, &s, "a", 1, 0), Verdict::Allow(vec![], None));
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
        assert_eq!(run(&shadow, &s, "a", 1, 0), Verdict::Allow(vec![], None));
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
    let Verdict::Allow(hs, _) = run(&c, &s, "a", 1, now) else {
        panic!()
    };
    assert_eq!(hs[1].1, r#""gold-month";r=0;t=172800"#);
    let Verdict::Deny(d) = run(&c, &s, "a", 1, now) else {
        panic!()
    };
    assert!(d.headers.contains(&("retry-after".into(), "172800".into())));
}

/// A preflight is decided before the plan: with `unknown_plan: deny` and no default plan, an
/// anonymous preflight is counted under the strictest plan (not refused 403, not let through
/// uncounted); an identified caller's "preflight" uses its own plan and counter.
#[test]
fn preflights_are_decided_before_the_plan_check() {
    let c = Config::parse(
        br#"{"plans":{"a":{"limits":[{"requests":5,"per":"second"}]},
                      "b":{"limits":[{"requests":9,"per":"second"}]}}}"#,
    )
    .unwrap();
    let preflight = RequestHead::from_pairs(&[
        (":method", "OPTIONS"),
        (":path", "/pets"),
        ("origin", "https://a.example"),
        ("access-control-request-method", "POST"),
    ]);
    let input = Inputs {
        client_address: Some("10.0.0.1:1"),
        ..Inputs::new(&preflight)
    };
    match resolve(&c, &input).resolution {
        Resolution::Count { plan, key, .. } => {
            assert_eq!(c.plans[plan].name, "a");
            assert_eq!(key, "!preflight\u{1f}@10.0.0.1");
        }
        other => panic!("{other:?}"),
    }
    let bob = ident("bob", Some("b"));
    let input = Inputs {
        identity: Some(&bob),
        client_address: Some("10.0.0.1:1"),
        ..Inputs::new(&preflight)
    };
    match resolve(&c, &input).resolution {
        Resolution::Count { plan, key, .. } => {
            assert_eq!(c.plans[plan].name, "b");
            assert_eq!(key, "=bob");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn usage_is_published_only_when_asked_and_names_the_closest_limit() {
    let s = MemStore::default();
    let now = 1_800_000_010;
    let quiet = config(r#"{}"#);
    assert!(matches!(
        run(&quiet, &s, "alice", 1, now),
        Verdict::Allow(_, None)
    ));
    let c = config(r#"{"publish_usage":true}"#);
    let s = MemStore::default();
    // burst (2 per second) is the one closest to running out after one request.
    let Verdict::Allow(headers, usage) = run(&c, &s, "alice", 1, now) else {
        panic!("allowed");
    };
    assert!(headers.is_empty(), "publishing needs no response header");
    assert_eq!(usage.as_deref(), Some(r#""burst";q=2;r=1"#));
}
