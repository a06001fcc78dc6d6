//! The decision table: every outcome, from request heads built by hand.

use super::*;
use kit::digest::to_hex;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

const NOW: u64 = 1_800_000_000; // 2027-01-15

fn d(key: &str) -> String {
    to_hex(&sha256(key.as_bytes()))
}

fn config() -> Config {
    let json = format!(
        r#"{{
        "sources": [{{"header":"x-api-key"}}, {{"authorization":"ApiKey"}}, {{"query":"api_key"}}],
        "consumers": [
          {{"id":"alice","plan":"gold","groups":["partners"],"keys":[{{"sha256":"{}"}},{{"sha256":"{}","expires_at":"2026-01-01T00:00:00Z"}}]}},
          {{"id":"bob","keys":[{{"sha256":"{}","not_before":"2030-01-01T00:00:00Z"}}]}},
          {{"id":"carol","disabled":true,"keys":[{{"sha256":"{}"}}]}},
          {{"id":"dave","groups":["ops"],"keys":[{{"sha256":"{}"}}]}},
          {{"id":"guest"}}
        ],
        "rules": [
          {{"match":{{"path":{{"exact":"/health"}}}},"skip":true}},
          {{"match":{{"path":{{"prefix":"/admin"}}}},"allow":{{"groups":["ops"]}}}},
          {{"match":{{"path":{{"prefix":"/partners"}}}},"allow":{{"consumers":["alice"]}}}},
          {{"match":{{"route_name":"public"}},"anonymous":"guest"}}
        ],
        "allow_cors_preflight": true
    }}"#,
        d("alice-key"),
        d("alice-old"),
        d("bob-key"),
        d("carol-key"),
        d("dave-key")
    );
    Config::parse(json.as_bytes()).unwrap()
}

/// (headers, route name) → expected outcome: consumer id, "pass", or deny reason + status.
#[test]
fn decision_table() {
    let c = config();
    let get = |path: &'static str| vec![(":method", "GET"), (":path", path)];
    let with = |path: &'static str, extra: Vec<(&'static str, &'static str)>| {
        let mut h = get(path);
        h.extend(extra);
        h
    };
    type Case<'a> = (Vec<(&'a str, &'a str)>, Option<&'a str>, &'a str);
    let cases: Vec<Case> = vec![
        (
            with("/pets", vec![("x-api-key", "alice-key")]),
            None,
            "allow alice",
        ),
        (
            with("/pets", vec![("authorization", "ApiKey alice-key")]),
            None,
            "allow alice",
        ),
        (get("/pets?api_key=alice-key"), None, "allow alice"),
        (get("/pets"), None, "deny missing 401"),
        (
            with("/pets", vec![("x-api-key", "nope")]),
            None,
            "deny unknown 401",
        ),
        (
            with("/pets", vec![("x-api-key", "alice-old")]),
            None,
            "deny expired 401",
        ),
        (
            with("/pets", vec![("x-api-key", "bob-key")]),
            None,
            "deny not_yet_valid 401",
        ),
        (
            with("/pets", vec![("x-api-key", "carol-key")]),
            None,
            "deny disabled 401",
        ),
        (
            with("/pets", vec![("x-api-key", "")]),
            None,
            "deny malformed 401",
        ),
        (
            with(
                "/pets",
                vec![
                    ("x-api-key", "alice-key"),
                    ("authorization", "ApiKey dave-key"),
                ],
            ),
            None,
            "deny ambiguous 401",
        ),
        (with("/health", vec![]), None, "pass"),
        (
            with("/admin/x", vec![("x-api-key", "dave-key")]),
            None,
            "allow dave",
        ),
        (
            with("/admin/x", vec![("x-api-key", "alice-key")]),
            None,
            "deny forbidden 403",
        ),
        (
            with("/admin/x", vec![("x-api-key", "nope")]),
            None,
            "deny unknown 401",
        ),
        (
            with("/partners", vec![("x-api-key", "alice-key")]),
            None,
            "allow alice",
        ),
        (
            with("/partners", vec![("x-api-key", "dave-key")]),
            None,
            "deny forbidden 403",
        ),
        (get("/anything"), Some("public"), "allow guest"),
        (
            with("/anything", vec![("x-api-key", "alice-key")]),
            Some("public"),
            "allow alice",
        ),
        (
            with("/anything", vec![("x-api-key", "nope")]),
            Some("public"),
            "deny unknown 401",
        ),
        (
            vec![
                (":method", "OPTIONS"),
                (":path", "/pets"),
                ("origin", "https://a"),
                ("access-control-request-method", "GET"),
            ],
            None,
            "pass",
        ),
        (
            vec![(":method", "OPTIONS"), (":path", "/pets")],
            None,
            "deny missing 401",
        ),
    ];
    for (headers, route, want) in cases {
        let head = RequestHead::from_pairs(&headers);
        let got = match decide(&c, &head, route, NOW).decision {
            Decision::Pass => "pass".to_string(),
            Decision::Allow { consumer, .. } => format!("allow {}", consumer.id),
            Decision::Deny(reason, denial) => format!("deny {} {}", reason.name(), denial.status),
        };
        assert_eq!(got, want, "{headers:?} route={route:?}");
    }
}

#[test]
fn denials_say_missing_or_invalid_and_never_which_key_exists() {
    let c = config();
    let detail = |key: &str| {
        let head =
            RequestHead::from_pairs(&[(":method", "GET"), (":path", "/"), ("x-api-key", key)]);
        match decide(&c, &head, None, NOW).decision {
            Decision::Deny(_, denial) => {
                assert_eq!(
                    denial.headers,
                    vec![(
                        "www-authenticate".to_string(),
                        "ApiKey realm=\"apim\"".to_string()
                    )]
                );
                (denial.code, denial.detail)
            }
            other => panic!("{other:?}"),
        }
    };
    // Unknown, expired, not yet valid and disabled keys are indistinguishable to the caller.
    let unknown = detail("nope");
    assert_eq!(
        unknown,
        ("invalid_api_key", "The API key is not valid.".to_string())
    );
    for key in ["alice-old", "bob-key", "carol-key"] {
        assert_eq!(detail(key), unknown, "{key}");
    }
}

#[test]
fn too_many_copies_is_a_400() {
    let c = config();
    let mut headers = vec![(":method", "GET"), (":path", "/")];
    headers.extend(std::iter::repeat_n(("x-api-key", "alice-key"), 200));
    let head = RequestHead::from_pairs(&headers);
    match decide(&c, &head, None, NOW).decision {
        Decision::Deny(DenyReason::TooMany, denial) => assert_eq!(denial.status, 400),
        other => panic!("{other:?}"),
    }
}

#[test]
fn strip_lists_every_place_the_key_was_found() {
    let c = config();
    let head = RequestHead::from_pairs(&[
        (":method", "GET"),
        (":path", "/p?api_key=alice-key"),
        ("x-api-key", "alice-key"),
    ]);
    match decide(&c, &head, None, NOW).decision {
        Decision::Allow {
            strip, anonymous, ..
        } => {
            assert!(!anonymous);
            assert_eq!(
                strip,
                vec![
                    Location::Header("x-api-key".into()),
                    Location::Query("api_key".into())
                ]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn expiry_boundaries_are_exact() {
    let json = format!(
        r#"{{"consumers":[{{"id":"a","keys":[{{"sha256":"{}","not_before":"2027-01-15T08:00:00Z","expires_at":"2027-01-15T09:00:00Z"}}]}}]}}"#,
        d("k")
    );
    let c = Config::parse(json.as_bytes()).unwrap();
    let start = kit::time::parse_rfc3339("2027-01-15T08:00:00Z").unwrap();
    let end = kit::time::parse_rfc3339("2027-01-15T09:00:00Z").unwrap();
    let head = RequestHead::from_pairs(&[(":method", "GET"), (":path", "/"), ("x-api-key", "k")]);
    let outcome = |now| match decide(&c, &head, None, now).decision {
        Decision::Allow { .. } => "allow",
        Decision::Deny(r, _) => r.name(),
        Decision::Pass => "pass",
    };
    assert_eq!(outcome(start - 1), "not_yet_valid");
    assert_eq!(outcome(start), "allow");
    assert_eq!(outcome(end - 1), "allow");
    assert_eq!(outcome(end), "expired");
}

/// Issue 10 item 1: `skip` and `anonymous` rules never match an ambiguous path; the request
/// gets the stricter default (a key is needed) and the verdict says a rule was passed over.
#[test]
fn ambiguous_paths_never_reach_skip_or_anonymous_rules() {
    let c = config();
    // Ambiguous paths on the public route pass over its anonymous rule (counted); spellings of
    // /admin then meet the admin rule by their widest reading, other paths get the default.
    /// A request, and the verdict.
    struct Case<'a> {
        path: &'a str,
        /// the route Envoy matched
        route: Option<&'a str>,
        /// the `x-api-key` sent
        key: Option<&'a str>,
        /// the verdict in words
        want: &'a str,
        /// a rule was passed over because the path is ambiguous
        ambiguous: bool,
    }
    let cases = vec![
        Case {
            path: "/public/x",
            route: Some("public"),
            key: None,
            want: "allow guest",
            ambiguous: false,
        },
        Case {
            path: "/public/..%2Fother",
            route: Some("public"),
            key: None,
            want: "deny missing 401",
            ambiguous: true,
        },
        Case {
            path: "/public/..;/other",
            route: Some("public"),
            key: None,
            want: "deny missing 401",
            ambiguous: true,
        },
        Case {
            path: "/public/..%2Fadmin/users",
            route: Some("public"),
            key: None,
            want: "deny missing 401",
            ambiguous: true,
        },
        Case {
            path: "/public/%2e%2e%2fadmin/users",
            route: Some("public"),
            key: None,
            want: "deny missing 401",
            ambiguous: true,
        },
        Case {
            path: "/public/..%5Cadmin/users",
            route: Some("public"),
            key: None,
            want: "deny missing 401",
            ambiguous: true,
        },
        // Normalised, this path meets the `/admin` allow rule first (not a loosening rule).
        Case {
            path: "/public/../admin/users",
            route: Some("public"),
            key: None,
            want: "deny missing 401",
            ambiguous: false,
        },
        Case {
            path: "/public/../other",
            route: Some("public"),
            key: None,
            want: "deny missing 401",
            ambiguous: true,
        },
        Case {
            path: "//public/x",
            route: Some("public"),
            key: None,
            want: "deny missing 401",
            ambiguous: true,
        },
        // The admin rule (ops only) also meets the widest reading of an ambiguous path: what a
        // backend that decodes %2F or drops `;` parameters would serve is /admin/users.
        Case {
            path: "/public/..%2Fadmin/users",
            route: Some("public"),
            key: Some("alice-key"),
            want: "deny forbidden 403",
            ambiguous: true,
        },
        Case {
            path: "/public/..;/admin/users",
            route: Some("public"),
            key: Some("alice-key"),
            want: "deny forbidden 403",
            ambiguous: true,
        },
        Case {
            path: "/.;/admin/users",
            route: None,
            key: Some("alice-key"),
            want: "deny forbidden 403",
            ambiguous: false,
        },
        Case {
            path: "/admin;x/users",
            route: None,
            key: Some("alice-key"),
            want: "deny forbidden 403",
            ambiguous: false,
        },
        Case {
            path: "/public/..%2Fother",
            route: Some("public"),
            key: Some("alice-key"),
            want: "allow alice",
            ambiguous: true,
        },
        Case {
            path: "/health",
            route: None,
            key: None,
            want: "pass",
            ambiguous: false,
        },
        Case {
            path: "/x/../health",
            route: None,
            key: None,
            want: "deny missing 401",
            ambiguous: true,
        },
        Case {
            path: "/health?next=/../admin",
            route: None,
            key: None,
            want: "pass",
            ambiguous: false,
        },
        // The two readings meet different rules (normalised /partners lets alice in, the
        // widest reading is /admin, ops only): neither is known to be the stricter, refused
        // whoever calls.
        Case {
            path: "/partners/..;/admin/users",
            route: None,
            key: Some("alice-key"),
            want: "deny path_ambiguous 400",
            ambiguous: false,
        },
        Case {
            path: "/partners/..%2Fadmin",
            route: None,
            key: Some("dave-key"),
            want: "deny path_ambiguous 400",
            ambiguous: false,
        },
        Case {
            path: "/admin/..;/partners",
            route: None,
            key: None,
            want: "deny path_ambiguous 400",
            ambiguous: false,
        },
        // The widest reading meets no rule: the normalised path's rule decides.
        Case {
            path: "/partners/..;/other",
            route: None,
            key: Some("alice-key"),
            want: "allow alice",
            ambiguous: false,
        },
        // A stricter rule (allow) still applies to an ambiguous path.
        Case {
            path: "/admin/..%2Fx",
            route: None,
            key: Some("alice-key"),
            want: "deny forbidden 403",
            ambiguous: false,
        },
        Case {
            path: "/admin/..%2Fx",
            route: None,
            key: Some("dave-key"),
            want: "allow dave",
            ambiguous: false,
        },
    ];
    for Case {
        path,
        route,
        key,
        want,
        ambiguous,
    } in cases
    {
        let mut headers = vec![(":method", "GET"), (":path", path)];
        if let Some(k) = key {
            headers.push(("x-api-key", k));
        }
        let head = RequestHead::from_pairs(&headers);
        let verdict = decide(&c, &head, route, NOW);
        let got = match verdict.decision {
            Decision::Pass => "pass".to_string(),
            Decision::Allow { consumer, .. } => format!("allow {}", consumer.id),
            Decision::Deny(reason, denial) => format!("deny {} {}", reason.name(), denial.status),
        };
        assert_eq!(
            (got.as_str(), verdict.path_ambiguous),
            (want, ambiguous),
            "{path} route={route:?} key={key:?}"
        );
    }
}

/// A preflight is exempt only as `OPTIONS` exactly (the exemption loosens); `options` over
/// HTTP/2 needs a key like any other request.
#[test]
fn only_an_upper_case_options_is_a_preflight() {
    let c = config();
    for (method, want) in [
        ("OPTIONS", "pass"),
        ("options", "deny"),
        ("Options", "deny"),
    ] {
        let head = RequestHead::from_pairs(&[
            (":method", method),
            (":path", "/pets"),
            ("origin", "https://a"),
            ("access-control-request-method", "GET"),
        ]);
        let got = match decide(&c, &head, None, NOW).decision {
            Decision::Pass => "pass",
            Decision::Allow { .. } => "allow",
            Decision::Deny(..) => "deny",
        };
        assert_eq!(got, want, "{method}");
    }
}

/// An `anonymous` rule that also has `allow` is passed over on an ambiguous path, but its
/// `allow` still holds: a key holder it refuses is not let in by the default rule instead.
#[test]
fn a_passed_over_anonymous_rule_still_restricts_who_may_call() {
    let json = format!(
        r#"{{
        "consumers": [
          {{"id":"alice","groups":["partners"],"keys":[{{"sha256":"{}"}}]}},
          {{"id":"bob","keys":[{{"sha256":"{}"}}]}},
          {{"id":"guest","groups":["visitors"]}}
        ],
        "rules": [
          {{"match":{{"route_name":"shop"}},"allow":{{"groups":["partners","visitors"]}},"anonymous":"guest"}}
        ]
    }}"#,
        d("alice-key"),
        d("bob-key")
    );
    let c = Config::parse(json.as_bytes()).unwrap();
    assert_eq!(c.guarded_allows.len(), 1);
    let cases = [
        ("/shop/x", None, "allow guest"),
        ("/shop/x", Some("alice-key"), "allow alice"),
        ("/shop/x", Some("bob-key"), "deny forbidden 403"),
        ("/shop/..%2Fx", None, "deny missing 401"),
        ("/shop/..%2Fx", Some("alice-key"), "allow alice"),
        ("/shop/..%2Fx", Some("bob-key"), "deny forbidden 403"),
    ];
    for (path, key, want) in cases {
        let mut headers = vec![(":method", "GET"), (":path", path)];
        if let Some(k) = key {
            headers.push(("x-api-key", k));
        }
        let head = RequestHead::from_pairs(&headers);
        let got = match decide(&c, &head, Some("shop"), NOW).decision {
            Decision::Pass => "pass".to_string(),
            Decision::Allow { consumer, .. } => format!("allow {}", consumer.id),
            Decision::Deny(reason, denial) => format!("deny {} {}", reason.name(), denial.status),
        };
        assert_eq!(got, want, "{path} {key:?}");
    }
    // Elsewhere (another route) the rule does not apply, ambiguous or not.
    let head = RequestHead::from_pairs(&[
        (":method", "GET"),
        (":path", "/other/..%2Fx"),
        ("x-api-key", "bob-key"),
    ]);
    assert!(matches!(
        decide(&c, &head, Some("other"), NOW).decision,
        Decision::Allow { .. }
    ));
}

/// gRPC rules by method (kit's `match.grpc`): the health service is open to a clean gRPC call
/// only, the admin service is for the ops group whatever the request looks like.
#[test]
fn grpc_rules_skip_a_clean_call_only_and_restrict_every_spelling() {
    let json = format!(
        r#"{{
        "sources": [{{"header":"x-api-key"}}],
        "consumers": [
          {{"id":"alice","keys":[{{"sha256":"{}"}}]}},
          {{"id":"dave","groups":["ops"],"keys":[{{"sha256":"{}"}}]}}
        ],
        "rules": [
          {{"match":{{"grpc":{{"service":"grpc.health.v1.Health"}}}},"skip":true}},
          {{"match":{{"grpc":{{"service":"admin.v1.Admin"}}}},"allow":{{"groups":["ops"]}}}}
        ]
    }}"#,
        d("alice-key"),
        d("dave-key")
    );
    let c = Config::parse(json.as_bytes()).unwrap();
    const G: &str = "application/grpc";
    /// A call, and the verdict.
    struct Case<'a> {
        path: &'a str,
        /// content-type
        ct: &'a str,
        /// the `x-api-key` sent
        key: Option<&'a str>,
        /// the verdict in words
        want: &'a str,
    }
    let cases = vec![
        Case {
            path: "/grpc.health.v1.Health/Check",
            ct: G,
            key: None,
            want: "pass",
        },
        Case {
            path: "/grpc.health.v1.Health/Watch",
            ct: "application/grpc+proto",
            key: None,
            want: "pass",
        },
        // Not a clean call: the skip does not hold, a key is needed.
        Case {
            path: "/grpc.health.v1.Health/Check",
            ct: "application/json",
            key: None,
            want: "deny missing 401",
        },
        Case {
            path: "/grpc.health.v1.Health/Check?x=1",
            ct: G,
            key: None,
            want: "deny missing 401",
        },
        Case {
            path: "/grpc.health.v1.%48ealth/Check",
            ct: G,
            key: None,
            want: "deny missing 401",
        },
        Case {
            path: "/grpc.health.v1.Health/Check",
            ct: "application/grpc, application/json",
            key: None,
            want: "deny missing 401",
        },
        // The restricting rule holds for every spelling of the admin service's paths.
        Case {
            path: "/admin.v1.Admin/Wipe",
            ct: G,
            key: Some("dave-key"),
            want: "allow dave",
        },
        Case {
            path: "/admin.v1.Admin/Wipe",
            ct: G,
            key: Some("alice-key"),
            want: "deny forbidden 403",
        },
        Case {
            path: "/admin.v1.Admin/Wipe",
            ct: "text/plain",
            key: Some("alice-key"),
            want: "deny forbidden 403",
        },
        Case {
            path: "/admin.v1.Admin/Wipe?x",
            ct: G,
            key: Some("alice-key"),
            want: "deny forbidden 403",
        },
        Case {
            path: "/admin.v1.%41dmin/Wipe",
            ct: G,
            key: Some("alice-key"),
            want: "deny forbidden 403",
        },
        Case {
            path: "/pets.v1.Pets/Get",
            ct: G,
            key: Some("alice-key"),
            want: "allow alice",
        },
    ];
    for Case {
        path,
        ct,
        key,
        want,
    } in cases
    {
        let mut headers = vec![(":method", "POST"), (":path", path), ("content-type", ct)];
        if let Some(k) = key {
            headers.push(("x-api-key", k));
        }
        let head = RequestHead::from_pairs(&headers);
        let got = match decide(&c, &head, None, NOW).decision {
            Decision::Pass => "pass".to_string(),
            Decision::Allow { consumer, .. } => format!("allow {}", consumer.id),
            Decision::Deny(reason, denial) => format!("deny {} {}", reason.name(), denial.status),
        };
        assert_eq!(got, want, "{path} {ct} {key:?}");
    }
}
