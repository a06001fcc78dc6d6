//! The glue's effects on a mock host: what is fetched, replied, published and counted.

use super::*;
use crate::apq::NoStore;
use kit::host::{Call, MockHost};
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn setup(json: &str) -> (Config, MockHost, Counters) {
    let config = Config::parse(json.as_bytes()).unwrap();
    let host = MockHost::new(&[]);
    let names = counter_names();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let counters = Counters::define(&host, &refs);
    (config, host, counters)
}

fn with_headers(host: &mut MockHost, headers: &[(&str, &str)]) {
    host.headers = headers
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.as_bytes().to_vec()))
        .collect();
}

fn post(
    host: &mut MockHost,
    config: &Config,
    counters: &Counters,
    accept: Option<&str>,
    body: &str,
) -> BodyAction {
    let mut h = vec![
        (":method", "POST"),
        (":path", "/graphql"),
        ("content-type", "application/json"),
    ];
    if let Some(a) = accept {
        h.push(("accept", a));
    }
    with_headers(host, &h);
    let HeadersAction::NeedBody(p) =
        on_request_headers(Env::new(host, &NoStore, config, counters), false)
    else {
        panic!("a POST waits for its body");
    };
    assert_eq!(
        on_request_body(
            Env::new(host, &NoStore, config, counters),
            &p,
            body.len() / 2,
            false,
            || None
        ),
        BodyAction::Buffer
    );
    on_request_body(
        Env::new(host, &NoStore, config, counters),
        &p,
        body.len(),
        true,
        || Some(body.as_bytes().to_vec()),
    )
}

const DEEP: &str = r#"{"query":"{ a { b { c } } }"}"#;

#[test]
fn rejected_post_gets_a_graphql_error_and_counts() {
    let (config, mut host, counters) = setup(r#"{"limits":{"max_depth":2}}"#);
    assert_eq!(
        post(&mut host, &config, &counters, None, DEEP),
        BodyAction::Stop
    );
    let r = host.reply().unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.headers[0].1, "application/graphql-response+json");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["errors"][0]["extensions"]["code"], "MAX_DEPTH_EXCEEDED");
    assert_eq!(host.counter("apim.graphql_guard.checked"), 1);
    assert_eq!(
        host.counter("apim.graphql_guard.rejected.max_depth_exceeded"),
        1
    );

    let (config, mut host, counters) = setup(r#"{"limits":{"max_depth":2}}"#);
    post(
        &mut host,
        &config,
        &counters,
        Some("application/json"),
        DEEP,
    );
    let r = host.reply().unwrap();
    assert_eq!(
        (r.status, r.headers[0].1.as_str()),
        (200, "application/json")
    );
}

#[test]
fn passing_post_publishes_the_cost() {
    let (config, mut host, counters) = setup(r#"{"limits":{"max_cost":100}}"#);
    let body = r#"{"query":"{ a(first: 5) { b } }"}"#;
    assert_eq!(
        post(&mut host, &config, &counters, None, body),
        BodyAction::Continue
    );
    assert_eq!(host.reply(), None);
    assert_eq!(host.published(COST_PROPERTY), Some(b"5".to_vec()));
    assert_eq!(host.counter("apim.graphql_guard.passed"), 1);
    // No cost model: nothing published.
    let (config, mut host, counters) = setup("{}");
    post(&mut host, &config, &counters, None, body);
    assert_eq!(host.published(COST_PROPERTY), None);
}

#[test]
fn warn_only_counts_logs_and_passes() {
    let (config, mut host, counters) = setup(r#"{"limits":{"max_depth":2},"warn_only":true}"#);
    assert_eq!(
        post(&mut host, &config, &counters, None, DEEP),
        BodyAction::Continue
    );
    assert_eq!(host.reply(), None);
    assert_eq!(host.counter("apim.graphql_guard.warned"), 1);
    assert!(host
        .calls()
        .iter()
        .any(|c| matches!(c, Call::Log(LogLevel::Warn, m) if m.contains("MAX_DEPTH_EXCEEDED"))));
}

#[test]
fn oversized_bodies_stop_buffering_with_413() {
    let (config, mut host, counters) =
        setup(r#"{"limits":{"max_bytes":10},"warn_only":true,"max_body_bytes":20}"#);
    with_headers(
        &mut host,
        &[
            (":method", "POST"),
            (":path", "/g"),
            ("content-type", "application/json"),
        ],
    );
    let HeadersAction::NeedBody(p) =
        on_request_headers(Env::new(&host, &NoStore, &config, &counters), false)
    else {
        panic!()
    };
    // Over the plan's max_bytes but under the hard cap: warn-only lets it through.
    assert_eq!(
        on_request_body(
            Env::new(&host, &NoStore, &config, &counters),
            &p,
            15,
            false,
            || None
        ),
        BodyAction::Continue
    );
    // Over the hard cap: refused even in warn-only mode.
    assert_eq!(
        on_request_body(
            Env::new(&host, &NoStore, &config, &counters),
            &p,
            21,
            false,
            || None
        ),
        BodyAction::Stop
    );
    assert_eq!(host.reply().unwrap().status, 413);
}

#[test]
fn get_requests_and_methods() {
    let (config, mut host, counters) = setup(r#"{"limits":{"max_depth":1}}"#);
    with_headers(
        &mut host,
        &[(":method", "GET"), (":path", "/graphql?query=%7Ba%7D")],
    );
    assert_eq!(
        on_request_headers(Env::new(&host, &NoStore, &config, &counters), true),
        HeadersAction::Continue
    );
    with_headers(
        &mut host,
        &[
            (":method", "GET"),
            (":path", "/graphql?query=mutation%7Ba%7D"),
        ],
    );
    assert_eq!(
        on_request_headers(Env::new(&host, &NoStore, &config, &counters), true),
        HeadersAction::Stop
    );
    assert_eq!(host.reply().unwrap().status, 405);
    // Not GraphQL: no query parameter, other methods.
    let (config, mut host, counters) = setup(r#"{"limits":{"max_depth":1}}"#);
    for (m, p) in [("GET", "/graphql"), ("OPTIONS", "/graphql"), ("get", "/x")] {
        with_headers(&mut host, &[(":method", m), (":path", p)]);
        assert_eq!(
            on_request_headers(Env::new(&host, &NoStore, &config, &counters), true),
            HeadersAction::Continue
        );
    }
    assert_eq!(host.counter("apim.graphql_guard.checked"), 0);
    // POST: wrong media type, empty body.
    with_headers(
        &mut host,
        &[
            (":method", "POST"),
            (":path", "/g"),
            ("content-type", "text/plain"),
        ],
    );
    assert_eq!(
        on_request_headers(Env::new(&host, &NoStore, &config, &counters), false),
        HeadersAction::Stop
    );
    assert_eq!(host.reply().unwrap().status, 415);
    let (config, mut host, counters) = setup("{}");
    with_headers(
        &mut host,
        &[
            (":method", "POST"),
            (":path", "/g"),
            ("content-type", "application/json"),
        ],
    );
    assert_eq!(
        on_request_headers(Env::new(&host, &NoStore, &config, &counters), true),
        HeadersAction::Stop
    );
    assert_eq!(host.reply().unwrap().status, 400);
    // POST with a query in its URL: some servers run that one, not the body's.
    let (config, mut host, counters) = setup("{}");
    with_headers(
        &mut host,
        &[
            (":method", "POST"),
            (":path", "/g?query=%7Bdeep%7D"),
            ("content-type", "application/json"),
        ],
    );
    assert_eq!(
        on_request_headers(Env::new(&host, &NoStore, &config, &counters), false),
        HeadersAction::Stop
    );
    assert_eq!(host.reply().unwrap().status, 400);
}

#[test]
fn routes_not_configured_pass_untouched() {
    let (config, mut host, counters) = setup(
        r#"{"rules":[{"match":{"path":{"prefix":"/graphql/public"}},"skip":true},{"match":{"path":{"prefix":"/graphql"}}}],
            "limits":{"max_depth":1}}"#,
    );
    for path in ["/pets", "/graphql/public"] {
        with_headers(
            &mut host,
            &[
                (":method", "POST"),
                (":path", path),
                ("content-type", "text/plain"),
            ],
        );
        assert_eq!(
            on_request_headers(Env::new(&host, &NoStore, &config, &counters), false),
            HeadersAction::Continue,
            "{path}"
        );
    }
    with_headers(
        &mut host,
        &[
            (":method", "POST"),
            (":path", "/graphql"),
            ("content-type", "application/json"),
        ],
    );
    assert!(matches!(
        on_request_headers(Env::new(&host, &NoStore, &config, &counters), false),
        HeadersAction::NeedBody(_)
    ));
}

#[test]
fn limits_follow_the_consumer_plan() {
    let (config, mut host, counters) =
        setup(r#"{"limits":{"max_depth":2},"plans":{"gold":{"max_depth":5}}}"#);
    host.properties.insert(
        "apim_consumer".into(),
        br#"{"id":"alice","plan":"gold"}"#.to_vec(),
    );
    assert_eq!(
        post(&mut host, &config, &counters, None, DEEP),
        BodyAction::Continue
    );
    host.properties.insert(
        "apim_consumer".into(),
        br#"{"id":"bob","plan":"silver"}"#.to_vec(),
    );
    assert_eq!(
        post(&mut host, &config, &counters, None, DEEP),
        BodyAction::Stop
    );
    let _ = config;
}

/// An `apim_consumer` that is present but does not decode (junk, or too large) is refused with
/// 403 IDENTITY_INVALID and counted, never read as an anonymous caller.
#[test]
fn an_unreadable_identity_is_refused() {
    let too_large = format!(r#"{{"id":"{}","plan":"gold"}}"#, "a".repeat(70_000));
    let cases: &[(&[u8], Option<u16>)] = &[
        (b"{", Some(403)),
        (b"\xff\xfe", Some(403)),
        (b"5", Some(403)),
        (too_large.as_bytes(), Some(403)),
        (br#"{"id":"alice","plan":"gold"}"#, None),
    ];
    for (identity, want) in cases {
        let (config, mut host, counters) =
            setup(r#"{"limits":{"max_depth":2},"plans":{"gold":{"max_depth":5}}}"#);
        host.properties
            .insert("apim_consumer".into(), identity.to_vec());
        with_headers(
            &mut host,
            &[
                (":method", "POST"),
                (":path", "/graphql"),
                ("content-type", "application/json"),
            ],
        );
        let action = on_request_headers(Env::new(&host, &NoStore, &config, &counters), false);
        match want {
            Some(status) => {
                assert_eq!(action, HeadersAction::Stop);
                let r = host.reply().unwrap();
                assert_eq!(r.status, *status);
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(v["errors"][0]["extensions"]["code"], "IDENTITY_INVALID");
                assert_eq!(
                    host.counter("apim.graphql_guard.rejected.identity_invalid"),
                    1
                );
            }
            None => assert!(matches!(action, HeadersAction::NeedBody(_))),
        }
    }
    // Without per-plan limits the identity is never read.
    let (config, mut host, counters) = setup(r#"{"limits":{"max_depth":2}}"#);
    host.properties
        .insert("apim_consumer".into(), b"{".to_vec());
    with_headers(
        &mut host,
        &[(":method", "GET"), (":path", "/graphql?query=%7Ba%7D")],
    );
    assert_eq!(
        on_request_headers(Env::new(&host, &NoStore, &config, &counters), true),
        HeadersAction::Continue
    );
}

#[test]
fn batches_are_checked_element_by_element() {
    let (config, mut host, counters) = setup(r#"{"limits":{"max_depth":2},"max_batch":2}"#);
    let ok = r#"[{"query":"{ a { b } }"},{"query":"{ c }"}]"#;
    assert_eq!(
        post(&mut host, &config, &counters, None, ok),
        BodyAction::Continue
    );
    let bad = r#"[{"query":"{ a }"},{"query":"{ a { b { c } } }"}]"#;
    let (config, mut host, counters) = setup(r#"{"limits":{"max_depth":2},"max_batch":2}"#);
    assert_eq!(
        post(&mut host, &config, &counters, None, bad),
        BodyAction::Stop
    );
    let v: serde_json::Value = serde_json::from_slice(&host.reply().unwrap().body).unwrap();
    assert_eq!(v["errors"][0]["extensions"]["batchIndex"], 1);
    let (config, mut host, counters) = setup(r#"{"max_batch":2}"#);
    let three = r#"[{"query":"{a}"},{"query":"{a}"},{"query":"{a}"}]"#;
    assert_eq!(
        post(&mut host, &config, &counters, None, three),
        BodyAction::Stop
    );
    assert_eq!(
        host.counter("apim.graphql_guard.rejected.batch_too_large"),
        1
    );
}

/// Every method of a guarded route is handled: compared case-insensitively, a document in any
/// method's body or URL checked, methods outside `methods` refused with 405 and `Allow`.
#[test]
fn methods_are_compared_case_insensitively_and_others_refused() {
    let deep_url = "/graphql?query=%7Ba%7Bb%7D%7D";
    /// A request's head, and what the guard does at the headers.
    struct Case<'a> {
        method: &'a str,
        path: &'a str,
        /// the headers end the stream
        eos: bool,
        /// `None`: Continue, `Some(0)`: NeedBody, `Some(status)`: refused
        want: Option<u16>,
    }
    let cases = vec![
        Case {
            method: "get",
            path: deep_url,
            eos: true,
            want: Some(400),
        },
        Case {
            method: "Get",
            path: "/graphql?query=%7Ba%7D",
            eos: true,
            want: None,
        },
        Case {
            method: "post",
            path: "/graphql",
            eos: false,
            want: Some(0),
        },
        Case {
            method: "post",
            path: "/graphql",
            eos: true,
            want: Some(400),
        },
        Case {
            method: "PUT",
            path: "/graphql",
            eos: false,
            want: Some(405),
        },
        Case {
            method: "patch",
            path: "/graphql",
            eos: false,
            want: Some(405),
        },
        Case {
            method: "DELETE",
            path: "/graphql",
            eos: true,
            want: Some(405),
        },
        Case {
            method: "HEAD",
            path: deep_url,
            eos: true,
            want: Some(405),
        },
        Case {
            method: "HEAD",
            path: "/graphql",
            eos: true,
            want: Some(405),
        },
        Case {
            method: "OPTIONS",
            path: "/graphql",
            eos: true,
            want: None,
        },
        Case {
            method: "OPTIONS",
            path: deep_url,
            eos: true,
            want: Some(405),
        },
        Case {
            method: "OPTIONS",
            path: "/graphql",
            eos: false,
            want: Some(405),
        },
        // A GET with a body: judged once the body is known (see the next test).
        Case {
            method: "GET",
            path: "/graphql",
            eos: false,
            want: Some(0),
        },
        Case {
            method: "GET",
            path: deep_url,
            eos: false,
            want: Some(0),
        },
    ];
    for Case {
        method,
        path,
        eos,
        want,
    } in cases
    {
        let (config, mut host, counters) = setup(r#"{"limits":{"max_depth":1}}"#);
        with_headers(
            &mut host,
            &[
                (":method", method),
                (":path", path),
                ("content-type", "application/json"),
            ],
        );
        let got = on_request_headers(Env::new(&host, &NoStore, &config, &counters), eos);
        let what = format!("{method} {path} eos={eos}");
        match want {
            None => assert_eq!(got, HeadersAction::Continue, "{what}"),
            Some(0) => assert!(matches!(got, HeadersAction::NeedBody(_)), "{what}"),
            Some(status) => {
                assert_eq!(got, HeadersAction::Stop, "{what}");
                let r = host.reply().unwrap();
                assert_eq!(r.status, status, "{what}");
                if status == 405 {
                    assert!(
                        r.headers
                            .iter()
                            .any(|(k, v)| k == "allow" && v == "GET, POST"),
                        "{what}: {:?}",
                        r.headers
                    );
                    assert_eq!(
                        host.counter("apim.graphql_guard.rejected.method_not_allowed"),
                        1
                    );
                }
            }
        }
    }
    // A configured method is handled like POST (body) or GET (URL).
    let (config, mut host, counters) =
        setup(r#"{"limits":{"max_depth":1},"methods":["get","post","put"]}"#);
    with_headers(
        &mut host,
        &[
            (":method", "put"),
            (":path", "/graphql"),
            ("content-type", "application/json"),
        ],
    );
    let HeadersAction::NeedBody(p) =
        on_request_headers(Env::new(&host, &NoStore, &config, &counters), false)
    else {
        panic!("a PUT with a body waits for it");
    };
    let body = br#"{"query":"{ a { b } }"}"#.to_vec();
    assert_eq!(
        on_request_body(
            Env::new(&host, &NoStore, &config, &counters),
            &p,
            body.len(),
            true,
            || { Some(body.clone()) }
        ),
        BodyAction::Stop
    );
    assert_eq!(host.reply().unwrap().status, 400);
    // A mutation in the body of a GET is refused as over GET.
    let (config, mut host, counters) = setup("{}");
    with_headers(
        &mut host,
        &[
            (":method", "GET"),
            (":path", "/graphql"),
            ("content-type", "application/json"),
        ],
    );
    let HeadersAction::NeedBody(p) =
        on_request_headers(Env::new(&host, &NoStore, &config, &counters), false)
    else {
        panic!("a GET with a body waits for it");
    };
    let body = br#"{"query":"mutation { m }"}"#.to_vec();
    on_request_body(
        Env::new(&host, &NoStore, &config, &counters),
        &p,
        body.len(),
        true,
        || Some(body.clone()),
    );
    assert_eq!(host.reply().unwrap().status, 405);
}

#[test]
fn upgrades_are_refused_on_guarded_routes() {
    for headers in [
        [(":method", "GET"), ("upgrade", "websocket")],
        [(":method", "GET"), ("upgrade", "WebSocket")],
        [(":method", "CONNECT"), (":protocol", "websocket")],
    ] {
        let (config, mut host, counters) = setup("{}");
        let mut h = vec![(":path", "/graphql")];
        h.extend_from_slice(&headers);
        with_headers(&mut host, &h);
        assert_eq!(
            on_request_headers(Env::new(&host, &NoStore, &config, &counters), true),
            HeadersAction::Stop,
            "{headers:?}"
        );
        let r = host.reply().unwrap();
        assert_eq!(r.status, 403);
        assert_eq!(
            host.counter("apim.graphql_guard.rejected.upgrade_not_allowed"),
            1
        );
    }
    // Not on a skipped route.
    let (config, mut host, counters) =
        setup(r#"{"rules":[{"match":{"path":{"prefix":"/graphql"}}},{"match":{},"skip":true}]}"#);
    with_headers(
        &mut host,
        &[
            (":method", "GET"),
            (":path", "/ws"),
            ("upgrade", "websocket"),
        ],
    );
    assert_eq!(
        on_request_headers(Env::new(&host, &NoStore, &config, &counters), true),
        HeadersAction::Continue
    );
}

/// A `skip` rule never matches an ambiguous path: the request falls through to the guarded
/// rule, and `path_ambiguous` counts it.
#[test]
fn skip_rules_do_not_apply_to_ambiguous_paths() {
    let json = r#"{"limits":{"max_depth":1},
        "rules":[{"match":{"path":{"prefix":"/public"}},"skip":true},{"match":{}}]}"#;
    for (path, want_stop, ambiguous) in [
        ("/public/x?query=%7Ba%7Bb%7D%7D", false, 0),
        ("/public/..%2Fgraphql?query=%7Ba%7Bb%7D%7D", true, 1),
        // Normalised to /graphql: no skip rule matches it in the first place.
        ("/public/%2e%2e/graphql?query=%7Ba%7Bb%7D%7D", true, 0),
        ("/public/x/..%2F..%2Fgraphql?query=%7Ba%7Bb%7D%7D", true, 1),
        ("/public//x?query=%7Ba%7Bb%7D%7D", true, 1),
        ("/graphql?query=%7Ba%7Bb%7D%7D", true, 0),
    ] {
        let (config, mut host, counters) = setup(json);
        with_headers(&mut host, &[(":method", "GET"), (":path", path)]);
        let got = on_request_headers(Env::new(&host, &NoStore, &config, &counters), true);
        assert_eq!(got == HeadersAction::Stop, want_stop, "{path}");
        assert_eq!(
            host.counter("apim.graphql_guard.path_ambiguous"),
            ambiguous,
            "{path}"
        );
    }
}

/// A request other than POST that announced a body: an empty body leaves the URL to judge; a
/// non-empty one is judged, and GraphQL parameters in the URL beside it are refused.
#[test]
fn a_body_on_another_method_is_judged_at_its_end() {
    let deep_url = "/graphql?query=%7Ba%7Bb%7D%7D";
    /// A GET that announced a body, and the guard's verdict at its end.
    struct Case<'a> {
        path: &'a str,
        /// content-type
        ct: Option<&'a str>,
        body: &'a str,
        /// `None`: Continue, `Some(status)`: refused
        want: Option<u16>,
    }
    let cases = vec![
        Case {
            path: "/graphql",
            ct: None,
            body: "",
            want: None,
        },
        Case {
            path: deep_url,
            ct: None,
            body: "",
            want: Some(400),
        },
        Case {
            path: "/graphql?query=%7Ba%7D",
            ct: None,
            body: "",
            want: None,
        },
        Case {
            path: "/graphql",
            ct: Some("application/json"),
            body: r#"{"query":"{ a { b } }"}"#,
            want: Some(400),
        },
        Case {
            path: "/graphql",
            ct: Some("application/json"),
            body: r#"{"query":"{ a }"}"#,
            want: None,
        },
        Case {
            path: "/graphql?query=%7Ba%7D",
            ct: Some("application/json"),
            body: r#"{"query":"{ a }"}"#,
            want: Some(400),
        },
        Case {
            path: "/graphql",
            ct: Some("text/plain"),
            body: "{ a { b } }",
            want: Some(415),
        },
    ];
    for Case {
        path,
        ct,
        body,
        want,
    } in cases
    {
        let (config, mut host, counters) = setup(r#"{"limits":{"max_depth":1}}"#);
        let mut h = vec![(":method", "get"), (":path", path)];
        if let Some(ct) = ct {
            h.push(("content-type", ct));
        }
        with_headers(&mut host, &h);
        let HeadersAction::NeedBody(p) =
            on_request_headers(Env::new(&host, &NoStore, &config, &counters), false)
        else {
            panic!("{path}: waits for the body");
        };
        let bytes = body.as_bytes().to_vec();
        let got = on_request_body(
            Env::new(&host, &NoStore, &config, &counters),
            &p,
            bytes.len(),
            true,
            || Some(bytes.clone()),
        );
        match want {
            None => assert_eq!(got, BodyAction::Continue, "{path} {body}"),
            Some(status) => {
                assert_eq!(got, BodyAction::Stop, "{path} {body}");
                assert_eq!(host.reply().unwrap().status, status, "{path} {body}");
            }
        }
    }
}

/// `websocket: inspect`: a GraphQL WebSocket is let through and each operation is checked.
#[test]
fn inspected_websockets_check_every_operation() {
    use crate::ws::FrameReader;
    let json = r#"{"limits":{"max_depth":2},"websocket":"inspect"}"#;
    let upgrade = |proto: &str| {
        vec![
            (":method", "GET"),
            (":path", "/graphql"),
            ("upgrade", "websocket"),
            ("sec-websocket-protocol", proto),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<Vec<_>>()
    };
    // An unknown subprotocol is still refused.
    let (config, mut host, counters) = setup(json);
    let h = upgrade("mqtt");
    with_headers(
        &mut host,
        &h.iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        on_request_headers(Env::new(&host, &NoStore, &config, &counters), true),
        HeadersAction::Stop
    );
    assert_eq!(host.reply().unwrap().status, 403);

    let (config, mut host, counters) = setup(json);
    let h = upgrade("graphql-transport-ws");
    with_headers(
        &mut host,
        &h.iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    );
    let HeadersAction::Websocket(limits) =
        on_request_headers(Env::new(&host, &NoStore, &config, &counters), false)
    else {
        panic!("inspected");
    };
    let mut reader = FrameReader::new(config.max_body_bytes);
    let env = Env::new(&host, &NoStore, &config, &counters);
    let msg = |m: &str| crate::ws::tests::frame(true, 1, m.as_bytes());
    let init = msg(r#"{"type":"connection_init"}"#);
    assert_eq!(
        on_websocket_data(env, &limits, &mut reader, &init),
        WsAction::Continue
    );
    let fine =
        msg(r#"{"id":"1","type":"subscribe","payload":{"query":"subscription { a { b } }"}}"#);
    assert_eq!(
        on_websocket_data(env, &limits, &mut reader, &fine),
        WsAction::Continue
    );
    assert_eq!(host.counter("apim.graphql_guard.passed"), 1);
    let deep = msg(
        r#"{"id":"2","type":"subscribe","payload":{"query":"subscription { a { b { c } } }"}}"#,
    );
    // Split across two chunks: the first completes nothing.
    let (a, b) = deep.split_at(10);
    assert_eq!(
        on_websocket_data(env, &limits, &mut reader, a),
        WsAction::Continue
    );
    assert_eq!(
        on_websocket_data(env, &limits, &mut reader, b),
        WsAction::Close
    );
    assert_eq!(
        host.counter("apim.graphql_guard.rejected.max_depth_exceeded"),
        1
    );
    // An unreadable frame closes too.
    let mut reader = FrameReader::new(config.max_body_bytes);
    assert_eq!(
        on_websocket_data(
            env,
            &limits,
            &mut reader,
            &crate::ws::tests::frame(true, 2, b"x")
        ),
        WsAction::Close
    );
    assert_eq!(host.counter("apim.graphql_guard.rejected.bad_request"), 1);
}

/// Runs one request (headers, then the body if any) through the guard: the reply's status and
/// code, or `None` when it went on.
fn run(
    config: &Config,
    host: &mut MockHost,
    counters: &Counters,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Option<(u16, String)> {
    with_headers(host, headers);
    let env = Env::new(host, &NoStore, config, counters);
    let action = on_request_headers(env, body.is_none());
    let stopped = match (action, body) {
        (HeadersAction::Stop, _) => true,
        (HeadersAction::NeedBody(p), Some(b)) => {
            let env = Env::new(host, &NoStore, config, counters);
            on_request_body(env, &p, b.len(), true, || Some(b.as_bytes().to_vec()))
                == BodyAction::Stop
        }
        (HeadersAction::NeedBody(_), None) => panic!("no body to give"),
        (HeadersAction::Continue | HeadersAction::Websocket(_), _) => false,
    };
    stopped.then(|| {
        let r = host.reply().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        (
            r.status,
            v["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        )
    })
}

/// An ambiguous path that no rule guards, or that only a catch-all `skip` matches, is guarded
/// for whatever GraphQL it carries (`/api/..;/graphql` is `/graphql` to Tomcat,
/// `/api/..%2Fgraphql` to servers that decode `%2F`), and counted under `path_ambiguous`;
/// anything else on it passes.
#[test]
fn ambiguous_paths_no_rule_guards_are_checked_for_graphql() {
    let deep_body = r#"{"query":"{ a { b } }"}"#;
    let get = |path: &'static str| vec![(":method", "GET"), (":path", path)];
    let post = |path: &'static str, ct: &'static str| {
        vec![(":method", "POST"), (":path", path), ("content-type", ct)]
    };
    let ws = |proto: &'static str| {
        vec![
            (":method", "GET"),
            (":path", "/api/..%2Fgraphql"),
            ("upgrade", "websocket"),
            ("sec-websocket-protocol", proto),
        ]
    };
    /// A request (headers, body), the guard's answer (`None`: it passes) and how many times
    /// `path_ambiguous` counts it where the guard's own check of ambiguous paths decides.
    struct Case {
        headers: Vec<(&'static str, &'static str)>,
        body: Option<&'static str>,
        refused: Option<(u16, &'static str)>,
        path_ambiguous: i64,
    }
    let cases = [
        Case {
            headers: get("/api/..;/graphql?query=%7Ba%7Bb%7D%7D"),
            body: None,
            refused: Some((400, "MAX_DEPTH_EXCEEDED")),
            path_ambiguous: 1,
        },
        Case {
            headers: get("/api/..%2Fgraphql?query=%7Ba%7Bb%7D%7D"),
            body: None,
            refused: Some((400, "MAX_DEPTH_EXCEEDED")),
            path_ambiguous: 1,
        },
        Case {
            headers: get("/api/..%5Cgraphql?query=%7Ba%7Bb%7D%7D"),
            body: None,
            refused: Some((400, "MAX_DEPTH_EXCEEDED")),
            path_ambiguous: 1,
        },
        Case {
            headers: get("/api//graphql?query=%7Ba%7Bb%7D%7D"),
            body: None,
            refused: Some((400, "MAX_DEPTH_EXCEEDED")),
            path_ambiguous: 1,
        },
        Case {
            headers: get("/api/..%2Fgraphql?Query=%7Ba%7D"),
            body: None,
            refused: Some((400, "BAD_REQUEST")),
            path_ambiguous: 1,
        },
        Case {
            headers: get("/api/..%2Fgraphql?documentId=x"),
            body: None,
            refused: Some((400, "BAD_REQUEST")),
            path_ambiguous: 1,
        },
        Case {
            headers: get("/api/..%2Fgraphql?query=%7Ba%7D"),
            body: None,
            refused: None,
            path_ambiguous: 1,
        },
        Case {
            headers: get("/api/..%2Fusers?id=5"),
            body: None,
            refused: None,
            path_ambiguous: 1,
        },
        Case {
            headers: get("/api/users?query=%7Ba%7Bb%7D%7D"),
            body: None,
            refused: None,
            path_ambiguous: 0,
        },
        Case {
            headers: post("/api/..%2Fgraphql", "application/json"),
            body: Some(deep_body),
            refused: Some((400, "MAX_DEPTH_EXCEEDED")),
            path_ambiguous: 1,
        },
        Case {
            headers: post("/api/..;/graphql", "application/graphql"),
            body: Some("{ a { b } }"),
            refused: Some((400, "MAX_DEPTH_EXCEEDED")),
            path_ambiguous: 1,
        },
        Case {
            headers: post("/api/..%2Fgraphql", "application/json"),
            body: Some(r#"{"Query":"{ a }"}"#),
            refused: Some((400, "BAD_REQUEST")),
            path_ambiguous: 1,
        },
        Case {
            headers: post("/api/..%2Fusers", "application/json"),
            body: Some(r#"{"name":"x"}"#),
            refused: None,
            path_ambiguous: 1,
        },
        Case {
            headers: post("/api/..%2Fusers", "text/plain"),
            body: Some("query=x"),
            refused: None,
            path_ambiguous: 1,
        },
        Case {
            headers: post("/api/users", "application/json"),
            body: Some(deep_body),
            refused: None,
            path_ambiguous: 0,
        },
        Case {
            headers: ws("graphql-transport-ws"),
            body: None,
            refused: Some((403, "UPGRADE_NOT_ALLOWED")),
            path_ambiguous: 1,
        },
    ];
    for rules in [
        r#"[{"match":{"path":{"prefix":"/graphql"}}}]"#,
        r#"[{"match":{"path":{"prefix":"/graphql"}}},{"match":{},"skip":true}]"#,
    ] {
        for case in &cases {
            let headers = &case.headers;
            let json = format!(r#"{{"limits":{{"max_depth":1}},"rules":{rules}}}"#);
            let (config, mut host, counters) = setup(&json);
            let got = run(&config, &mut host, &counters, headers, case.body);
            let path = headers
                .iter()
                .find(|(k, _)| *k == ":path")
                .map_or("", |(_, v)| v.split('?').next().unwrap_or(""));
            let catch_all_skip = rules.contains(r#"{"match":{},"skip":true}"#);
            let wide_meets_graphql = kit::request::path_is_ambiguous(path)
                && kit::request::wide_path(path).starts_with("/graphql");
            // Behind a catch-all skip, a path whose normalised reading is skipped and whose
            // widest reading is /graphql… meets two rules that decide differently (kit's
            // conflict): refused whatever it carries.
            let want = if catch_all_skip && wide_meets_graphql {
                Some((400, "PATH_AMBIGUOUS".to_string()))
            } else {
                case.refused.map(|(s, c)| (s, c.to_string()))
            };
            assert_eq!(got, want, "{rules} {headers:?}");
            // Where no rule meets the normalised path, a path whose widest reading is /graphql…
            // meets the guarded rule itself (kit): nothing unguarded to count. A catch-all skip
            // meets every normalised path first, and the guard's own check of ambiguous
            // unguarded paths counts it.
            let meets_rule = !catch_all_skip && wide_meets_graphql;
            assert_eq!(
                host.counter("apim.graphql_guard.path_ambiguous"),
                if meets_rule { 0 } else { case.path_ambiguous },
                "{headers:?}"
            );
        }
    }
    // A WebSocket that is not GraphQL's on /api/..%2Fgraphql: where the normalised path meets
    // no rule, its widest reading meets the guarded /graphql rule and every upgrade is refused
    // there; behind a catch-all skip the two readings meet different rules: refused too.
    for (rules, want) in [
        (
            r#"[{"match":{"path":{"prefix":"/graphql"}}}]"#,
            Some((403, "UPGRADE_NOT_ALLOWED".to_string())),
        ),
        (
            r#"[{"match":{"path":{"prefix":"/graphql"}}},{"match":{},"skip":true}]"#,
            Some((400, "PATH_AMBIGUOUS".to_string())),
        ),
        // A skip that reads the path is guarded: no conflict, the widest reading decides.
        (
            r#"[{"match":{"path":{"prefix":"/api"}},"skip":true},{"match":{"path":{"prefix":"/graphql"}}}]"#,
            Some((403, "UPGRADE_NOT_ALLOWED".to_string())),
        ),
    ] {
        let json = format!(r#"{{"limits":{{"max_depth":1}},"rules":{rules}}}"#);
        let (config, mut host, counters) = setup(&json);
        let got = run(&config, &mut host, &counters, &ws("chat"), None);
        assert_eq!(got, want, "{rules}");
    }
}

/// Warn-only never lets an upgrade through uninspected: refused (and counted as refused).
#[test]
fn warn_only_still_refuses_upgrades() {
    let (config, mut host, counters) = setup(r#"{"warn_only":true}"#);
    let got = run(
        &config,
        &mut host,
        &counters,
        &[
            (":method", "GET"),
            (":path", "/graphql"),
            ("upgrade", "websocket"),
        ],
        None,
    );
    assert_eq!(got, Some((403, "UPGRADE_NOT_ALLOWED".to_string())));
    assert_eq!(host.counter("apim.graphql_guard.warned"), 0);
    assert_eq!(
        host.counter("apim.graphql_guard.rejected.upgrade_not_allowed"),
        1
    );
}

/// A body Envoy reports but the guard cannot read is refused (even in warn-only mode), never
/// judged as empty; a body reported as zero bytes is empty.
#[test]
fn an_unreadable_body_is_refused() {
    for json in [r#"{}"#, r#"{"warn_only":true}"#] {
        for (method, path) in [("POST", "/graphql"), ("GET", "/graphql?query=%7Ba%7D")] {
            let (config, mut host, counters) = setup(json);
            with_headers(
                &mut host,
                &[
                    (":method", method),
                    (":path", path),
                    ("content-type", "application/json"),
                ],
            );
            let HeadersAction::NeedBody(p) =
                on_request_headers(Env::new(&host, &NoStore, &config, &counters), false)
            else {
                panic!("waits for the body");
            };
            let env = Env::new(&host, &NoStore, &config, &counters);
            assert_eq!(
                on_request_body(env, &p, 20, true, || None),
                BodyAction::Stop,
                "{json} {method}"
            );
            assert_eq!(host.reply().unwrap().status, 400);
            assert_eq!(host.counter("apim.graphql_guard.rejected.bad_request"), 1);
        }
    }
    // Zero bytes: the URL alone is judged (an HTTP/2 GET ending with an empty DATA frame).
    let (config, mut host, counters) = setup(r#"{"limits":{"max_depth":1}}"#);
    with_headers(
        &mut host,
        &[(":method", "GET"), (":path", "/graphql?query=%7Ba%7D")],
    );
    let HeadersAction::NeedBody(p) =
        on_request_headers(Env::new(&host, &NoStore, &config, &counters), false)
    else {
        panic!("waits for the body");
    };
    let env = Env::new(&host, &NoStore, &config, &counters);
    assert_eq!(
        on_request_body(env, &p, 0, true, || None),
        BodyAction::Continue
    );
    assert_eq!(host.counter("apim.graphql_guard.passed"), 1);
    // A WebSocket chunk that cannot be read resets the stream, warn-only or not.
    let (config, host, counters) = setup(r#"{"warn_only":true}"#);
    assert_eq!(
        on_websocket_unreadable(Env::new(&host, &NoStore, &config, &counters)),
        WsAction::Close
    );
    assert_eq!(host.counter("apim.graphql_guard.rejected.bad_request"), 1);
}

/// The plan's `max_bytes` holds for each WebSocket operation as over HTTP; a subscribe without
/// a checkable document closes the stream.
#[test]
fn websocket_operations_keep_the_size_limit_and_need_a_document() {
    use crate::ws::FrameReader;
    let (config, host, counters) = setup(r#"{"limits":{"max_bytes":80},"websocket":"inspect"}"#);
    let limits = config.limits;
    let env = Env::new(&host, &NoStore, &config, &counters);
    let msg = |m: &str| crate::ws::tests::frame(true, 1, m.as_bytes());
    let mut reader = FrameReader::new(config.websocket_max_message_bytes);
    let small = msg(r#"{"id":"1","type":"subscribe","payload":{"query":"{ a }"}}"#);
    assert_eq!(
        on_websocket_data(env, &limits, &mut reader, &small),
        WsAction::Continue
    );
    let fields = "a ".repeat(40);
    let big = msg(&format!(
        r#"{{"id":"2","type":"subscribe","payload":{{"query":"{{ {fields} }}"}}}}"#
    ));
    assert_eq!(
        on_websocket_data(env, &limits, &mut reader, &big),
        WsAction::Close
    );
    assert_eq!(
        host.counter("apim.graphql_guard.rejected.max_bytes_exceeded"),
        1
    );
    let mut reader = FrameReader::new(config.websocket_max_message_bytes);
    let doc = msg(r#"{"id":"3","type":"subscribe","payload":{"documentId":"x"}}"#);
    assert_eq!(
        on_websocket_data(env, &limits, &mut reader, &doc),
        WsAction::Close
    );
    assert_eq!(host.counter("apim.graphql_guard.rejected.bad_request"), 1);
}
