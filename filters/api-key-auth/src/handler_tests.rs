//! What reaches the host for each kind of decision, checked on the mock.

use super::*;
use kit::digest::{sha256, to_hex};
use kit::host::{Call, MockHost};
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn config(extra: &str) -> Config {
    let json = format!(
        r#"{{
        "sources": [{{"header":"x-api-key"}}, {{"query":"api_key"}}, {{"cookie":"api_key"}}],
        "consumers": [
          {{"id":"alice","plan":"gold","keys":[{{"sha256":"{}"}}]}},
          {{"id":"bob","keys":[{{"sha256":"{}"}}]}}
        ],
        "rules": [{{"match":{{"path":{{"prefix":"/open"}}}},"skip":true}}],
        "forward": {{"consumer_id_header":"x-consumer-id","consumer_plan_header":"x-consumer-plan"}}
        {extra}
    }}"#,
        to_hex(&sha256(b"alice-key")),
        to_hex(&sha256(b"bob-key"))
    );
    Config::parse(json.as_bytes()).unwrap()
}

fn run(config: &Config, headers: &[(&str, &str)]) -> (Action, MockHost) {
    let host = MockHost::new(headers);
    let counters = Counters::define(&host, &COUNTER_NAMES);
    let action = on_request_headers(&host, config, &counters, false);
    (action, host)
}

#[test]
fn allowed_request_publishes_identity_forwards_and_strips() {
    let c = config("");
    let (action, host) = run(
        &c,
        &[
            (":method", "GET"),
            (":path", "/pets"),
            ("x-api-key", "alice-key"),
            ("x-consumer-id", "forged"),
        ],
    );
    assert_eq!(action, Action::Continue);
    let published = host.published("apim_consumer").unwrap();
    assert_eq!(
        kit::identity::Identity::decode(&published).unwrap().id,
        "alice"
    );
    assert_eq!(
        host.header_changes(),
        vec![
            Call::SetHeader("x-consumer-id".into(), b"alice".to_vec()),
            Call::SetHeader("x-consumer-plan".into(), b"gold".to_vec()),
            Call::RemoveHeader("x-api-key".into()),
        ]
    );
    assert_eq!(host.counter("apim.api_key_auth.allowed"), 1);
    assert_eq!(host.reply(), None);
}

#[test]
fn consumer_without_plan_scrubs_a_forged_plan_header() {
    let c = config("");
    let (_, host) = run(
        &c,
        &[
            (":path", "/"),
            ("x-api-key", "bob-key"),
            ("x-consumer-plan", "platinum"),
        ],
    );
    assert!(host
        .header_changes()
        .contains(&Call::RemoveHeader("x-consumer-plan".into())));
}

#[test]
fn query_and_cookie_credentials_are_stripped_in_place() {
    let c = config("");
    let (_, host) = run(&c, &[(":path", "/p?a=1&api_key=alice-key&b=2")]);
    assert_eq!(
        host.header_changes().last(),
        Some(&Call::SetHeader(":path".into(), b"/p?a=1&b=2".to_vec()))
    );
    let (_, host) = run(&c, &[(":path", "/p"), ("cookie", "a=1; api_key=alice-key")]);
    assert_eq!(
        host.header_changes().last(),
        Some(&Call::SetHeader("cookie".into(), b"a=1".to_vec()))
    );
    let (_, host) = run(&c, &[(":path", "/p"), ("cookie", "api_key=alice-key")]);
    assert_eq!(
        host.header_changes().last(),
        Some(&Call::RemoveHeader("cookie".into()))
    );
}

#[test]
fn authorization_keeps_other_schemes_when_our_key_is_stripped() {
    let json = format!(
        r#"{{"sources":[{{"authorization":"ApiKey"}}],"consumers":[{{"id":"a","keys":[{{"sha256":"{}"}}]}}]}}"#,
        to_hex(&sha256(b"k"))
    );
    let c = Config::parse(json.as_bytes()).unwrap();
    let (_, host) = run(
        &c,
        &[
            (":path", "/"),
            ("authorization", "Bearer tok"),
            ("authorization", "ApiKey k"),
        ],
    );
    assert_eq!(
        host.header_changes(),
        vec![Call::SetHeader(
            "authorization".into(),
            b"Bearer tok".to_vec()
        )]
    );
    let (_, host) = run(&c, &[(":path", "/"), ("authorization", "apikey k")]);
    assert_eq!(
        host.header_changes(),
        vec![Call::RemoveHeader("authorization".into())]
    );
}

#[test]
fn strip_can_be_turned_off() {
    let c = config(r#","strip_credential": false"#);
    let (_, host) = run(&c, &[(":path", "/"), ("x-api-key", "alice-key")]);
    assert!(!host
        .header_changes()
        .contains(&Call::RemoveHeader("x-api-key".into())));
}

#[test]
fn denial_sends_problem_json_and_counts_the_reason() {
    let c = config("");
    let (action, host) = run(&c, &[(":path", "/pets"), ("x-api-key", "wrong")]);
    assert_eq!(action, Action::Stop);
    let reply = host.reply().unwrap();
    assert_eq!(reply.status, 401);
    assert!(reply
        .headers
        .contains(&("www-authenticate".into(), "ApiKey realm=\"apim\"".into())));
    assert!(reply
        .headers
        .contains(&("content-type".into(), "application/problem+json".into())));
    assert_eq!(host.counter("apim.api_key_auth.denied.unknown"), 1);
    assert_eq!(host.published("apim_consumer"), None);
    assert!(host.header_changes().is_empty());
}

#[test]
fn skipped_route_passes_but_scrubs_forged_consumer_headers() {
    let c = config("");
    let (action, host) = run(&c, &[(":path", "/open/x"), ("x-consumer-id", "admin")]);
    assert_eq!(action, Action::Continue);
    assert_eq!(
        host.header_changes(),
        vec![
            Call::RemoveHeader("x-consumer-id".into()),
            Call::RemoveHeader("x-consumer-plan".into())
        ]
    );
    assert_eq!(host.counter("apim.api_key_auth.passed"), 1);
    assert_eq!(host.published("apim_consumer"), None);
}

#[test]
fn route_name_and_clock_are_fetched_only_when_needed() {
    let c = config("");
    let (_, host) = run(&c, &[(":path", "/"), ("x-api-key", "alice-key")]);
    assert!(!host.calls().contains(&Call::RouteName));
    let named = Config::parse(
        format!(
            r#"{{"consumers":[{{"id":"a","keys":[{{"sha256":"{}"}}]}}],"rules":[{{"match":{{"route_name":"r"}},"skip":true}}]}}"#,
            to_hex(&sha256(b"k"))
        )
        .as_bytes(),
    )
    .unwrap();
    let (_, host) = run(&named, &[(":path", "/"), ("x-api-key", "k")]);
    assert!(host.calls().contains(&Call::RouteName));
}

#[test]
fn only_the_needed_headers_are_read() {
    let c = config("");
    let (_, host) = run(
        &c,
        &[
            (":method", "GET"),
            (":path", "/"),
            ("x-api-key", "alice-key"),
            ("user-agent", "x"),
        ],
    );
    let reads: Vec<Call> = host
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::GetHeader(_)))
        .collect();
    let names = |v: &[&str]| {
        v.iter()
            .map(|n| Call::GetHeader((*n).to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(reads, names(&["x-api-key", ":path", "cookie"]));
    // CORS headers are read only for an OPTIONS request, when preflights are let through.
    let cors = config(r#","allow_cors_preflight": true"#);
    let (_, host) = run(
        &cors,
        &[
            (":method", "GET"),
            (":path", "/"),
            ("x-api-key", "alice-key"),
        ],
    );
    assert!(!host.calls().contains(&Call::GetHeader("origin".into())));
    let (action, host) = run(
        &cors,
        &[
            (":method", "OPTIONS"),
            (":path", "/"),
            ("origin", "https://a"),
            ("access-control-request-method", "GET"),
        ],
    );
    assert_eq!(action, Action::Continue);
    assert!(host.calls().contains(&Call::GetHeader("origin".into())));
    // The same preflight with a body after it (HTTP/2 DATA, no content-length) is not one.
    let host = MockHost::new(&[
        (":method", "OPTIONS"),
        (":path", "/"),
        ("origin", "https://a"),
        ("access-control-request-method", "GET"),
    ]);
    let counters = Counters::define(&host, &COUNTER_NAMES);
    assert_eq!(
        on_request_headers(&host, &cors, &counters, true),
        Action::Stop
    );
    assert_eq!(host.reply().map(|r| r.status), Some(401));
}

#[test]
fn every_reason_has_its_own_counter() {
    for (i, reason) in DenyReason::ALL.iter().enumerate() {
        let name = COUNTER_NAMES[counter_index(*reason)];
        assert!(name.ends_with(reason.name()), "{name}");
        assert_eq!(counter_index(*reason), 3 + i);
    }
}

#[test]
fn an_ambiguous_path_is_counted_and_gets_the_stricter_decision() {
    let c = config("");
    let (action, host) = run(
        &c,
        &[(":path", "/open/..%2Fadmin"), ("x-consumer-id", "admin")],
    );
    assert_eq!(action, Action::Stop);
    assert_eq!(host.reply().unwrap().status, 401);
    assert_eq!(host.counter("apim.api_key_auth.path_ambiguous"), 1);
    assert_eq!(host.counter("apim.api_key_auth.denied.missing"), 1);
    assert_eq!(host.counter("apim.api_key_auth.passed"), 0);
    let (action, host) = run(&c, &[(":path", "/open/x")]);
    assert_eq!(action, Action::Continue);
    assert_eq!(host.counter("apim.api_key_auth.path_ambiguous"), 0);
    assert_eq!(
        COUNTER_NAMES[PATH_AMBIGUOUS],
        "apim.api_key_auth.path_ambiguous"
    );
}

/// An ambiguous path whose two readings meet different rules is refused 400 `path_ambiguous`
/// (gRPC-shaped for a gRPC caller) and counted, even for a key both rules would let in.
#[test]
fn a_path_read_as_two_routes_is_refused_and_counted() {
    let json = format!(
        r#"{{
        "sources": [{{"header":"x-api-key"}}],
        "consumers": [{{"id":"alice","keys":[{{"sha256":"{}"}}]}}, {{"id":"bob"}}],
        "rules": [
          {{"match":{{"path":{{"prefix":"/pets"}}}},"allow":{{"consumers":["alice"]}}}},
          {{"match":{{"path":{{"prefix":"/admin"}}}},"allow":{{"consumers":["bob"]}}}}
        ]
    }}"#,
        to_hex(&sha256(b"alice-key"))
    );
    let c = Config::parse(json.as_bytes()).unwrap();
    /// A request and what the client gets: HTTP status, `grpc-status` (gRPC callers).
    struct Case {
        path: &'static str,
        content_type: Option<&'static str>,
        status: u16,
        grpc_status: Option<&'static str>,
        refused: i64,
    }
    let cases = [
        Case {
            path: "/pets/..;/admin",
            content_type: None,
            status: 400,
            grpc_status: None,
            refused: 1,
        },
        Case {
            path: "/pets/..%2Fadmin",
            content_type: Some("application/grpc"),
            status: 200,
            grpc_status: Some("3"),
            refused: 1,
        },
        Case {
            path: "/pets/x",
            content_type: None,
            status: 0,
            grpc_status: None,
            refused: 0,
        },
    ];
    for case in cases {
        let mut headers = vec![
            (":method", "POST"),
            (":path", case.path),
            ("x-api-key", "alice-key"),
        ];
        headers.extend(case.content_type.map(|t| ("content-type", t)));
        let (action, host) = run(&c, &headers);
        let path = case.path;
        assert_eq!(
            host.counter("apim.api_key_auth.denied.path_ambiguous"),
            case.refused,
            "{path}"
        );
        let Some(reply) = host.reply() else {
            assert_eq!((action, case.status), (Action::Continue, 0), "{path}");
            continue;
        };
        assert_eq!(action, Action::Stop, "{path}");
        assert_eq!(reply.status, case.status, "{path}");
        let grpc_status = reply
            .headers
            .iter()
            .find(|(k, _)| k == "grpc-status")
            .map(|(_, v)| v.as_str());
        assert_eq!(grpc_status, case.grpc_status, "{path}");
        if case.grpc_status.is_none() {
            let body = String::from_utf8_lossy(&reply.body);
            assert!(
                body.contains("\"code\":\"path_ambiguous\""),
                "{path}: {body}"
            );
        }
        assert_eq!(host.counter("apim.api_key_auth.allowed"), 0, "{path}");
    }
}

/// A gRPC caller's refusal is gRPC-shaped, and what that costs: the content-type is read only on
/// the refusal path (one host call); an admitted request reads it only when a rule needs it.
#[test]
fn only_a_refusal_reads_the_content_type_and_a_grpc_caller_gets_a_grpc_refusal() {
    let c = config("");
    let grpc = |key: Option<&'static str>| {
        let mut h = vec![
            (":method", "POST"),
            (":path", "/pets.v1.Pets/GetPet"),
            ("content-type", "application/grpc"),
        ];
        h.extend(key.map(|k| ("x-api-key", k)));
        h
    };
    let reads = |host: &MockHost| {
        host.calls()
            .iter()
            .filter(|c| **c == Call::GetHeader("content-type".into()))
            .count()
    };
    let (action, host) = run(&c, &grpc(Some("alice-key")));
    assert_eq!(action, Action::Continue);
    assert_eq!(reads(&host), 0);
    let allowed_calls = host.host_calls();
    let (action, host) = run(&c, &grpc(None));
    assert_eq!(action, Action::Stop);
    assert_eq!(reads(&host), 1);
    let reply = host
        .calls()
        .into_iter()
        .find_map(|c| match c {
            Call::Reply(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    assert!(reply.headers.contains(&("grpc-status".into(), "16".into())));
    assert!(reply
        .headers
        .contains(&("content-type".into(), "application/grpc".into())));
    println!(
        "host calls: admitted gRPC call {allowed_calls}, refused {}",
        host.host_calls()
    );
}
