//! Hostile requests against transform in the pinned Envoy (issue 10): each case asserts the
//! exact status and what the upstream did (or did not) receive. Every test starts its own
//! Envoy, so the upstream request counter (`cluster.upstream.upstream_rq_total`) and the
//! filter's counters are exact.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use apim_integration::bootstrap::{bootstrap, listener, upstream_cluster};
use apim_integration::chain::{for_each_form, Chain, Filter, Form};
use apim_integration::echo::{assert_problem, echoed_header, upstream_echo};
use apim_integration::{send_h2, Envoy, Request, Response};
use serde_json::Value;

/// transform alone with `config`, in front of the echo upstream.
fn template(form: Form, config: &str) -> String {
    bootstrap(
        &[listener("main", "upstream")
            .stat_prefix("ingress")
            .chain(&Chain::new().filter(Filter::Transform, config), form)],
        &[upstream_cluster("upstream")],
    )
}

/// One rule per kind of value the filter builds from the request.
const FILTER: &str = r#"{
  "max_body_bytes": 65536,
  "on_oversize": "reject",
  "rules": [
    {"match": {"path": {"prefix": "/hdr"}},
     "request": {"headers": {"add": {"x-name": "{{query.name}}"},
                             "append": {"x-trace": "t-{{header.x-trace-in}}"}}}},
    {"match": {"path": {"prefix": "/resp"}},
     "response": [{"headers": {"add": {"x-echo": "hello {{query.name}}"}}}]},
    {"match": {"path": {"prefix": "/rw"}},
     "request": {"path": "/v2/{{query.to}}", "query": {"set": {"who": "{{query.name}}"}}}},
    {"match": {"path": {"prefix": "/big"}},
     "request": {"headers": {"add": {"x-big": "{{query.v}}{{query.v}}"}}}},
    {"match": {"path": {"prefix": "/m"}, "methods": ["POST"]},
     "request": {"headers": {"remove": ["x-internal"], "add": {"x-m": "{{request.method}}"}}}},
    {"match": {"path": {"prefix": "/body"}},
     "request": {"body": [{"op": "set", "path": "/name", "template": "{{query.name}}"}]}}
  ]
}"#;

fn start(form: Form) -> Envoy {
    Envoy::builder()
        .concurrency(1)
        .start(&template(form, FILTER))
        .unwrap_or_else(|e| panic!("starting Envoy: {e}"))
}

fn send(envoy: &Envoy, request: &Request) -> Response {
    request.send_or_panic(envoy.port())
}

fn upstream_requests(envoy: &Envoy) -> u64 {
    envoy.upstream_requests("upstream")
}

fn counter(envoy: &Envoy, name: &str) -> u64 {
    envoy.count(&format!("wasmcustom.apim.transform.{name}"))
}

/// Item 8: `{{query.name}}` of `%0d%0ax-admin:%201` (and NUL, DEL, a lone LF) rendered into a
/// header is refused by the filter: 400 naming the header without echoing the value, counted
/// as denied and as `unsafe_value`, never as applied; the upstream sees nothing. On the old
/// code Envoy refused to forward the header and the client got a 503 counted as `applied`.
#[test]
fn control_bytes_rendered_into_a_header_are_refused() {
    for_each_form(|form| {
        let envoy = start(form);
        let queries = [
            "name=%0d%0ax-admin:%201",
            "name=a%0ab",
            "name=a%00b",
            "name=a%7fb",
            "name=%1b%5b31m",
        ];
        for q in queries {
            let r = send(&envoy, &Request::get(&format!("/hdr/x?{q}")));
            let body = assert_problem(&r, 400, "unsafe_header_value", q);
            assert_eq!(
                body["detail"],
                "The value computed from the request for header \"x-name\" contains a control character.",
                "{q}"
            );
            assert!(!r.text().contains("x-admin"), "{q}: value echoed");
        }
        let n = queries.len() as u64;
        assert_eq!(upstream_requests(&envoy), 0, "the upstream saw a request");
        assert_eq!(counter(&envoy, "errors.unsafe_value"), n);
        assert_eq!(counter(&envoy, "errors.denied"), n);
        assert_eq!(counter(&envoy, "applied"), 0);

        // Harmless values (a tab, UTF-8, an encoded CR LF that stays encoded in a header copied
        // verbatim) go through.
        let r = send(
            &envoy,
            &Request::get("/hdr/x?name=caf%C3%A9%09ok").header("x-trace-in", "a%0d%0ab"),
        );
        let echo = upstream_echo(&r, "harmless values");
        assert_eq!(echoed_header(&echo, "x-name"), vec!["café\tok"]);
        assert_eq!(echoed_header(&echo, "x-trace"), vec!["t-a%0d%0ab"]);
        assert_eq!(upstream_requests(&envoy), 1);
        assert_eq!(counter(&envoy, "applied"), 1);
    });
}

/// A response header's template reads the request too: it is checked before the request goes
/// upstream (a response cannot be refused cleanly once the backend has acted).
#[test]
fn response_header_values_are_checked_before_the_upstream_is_called() {
    for_each_form(|form| {
        let envoy = start(form);
        let r = send(
            &envoy,
            &Request::get("/resp/x?name=%0d%0aset-cookie:%20s=1"),
        );
        let body = assert_problem(&r, 400, "unsafe_header_value", "response template");
        assert!(body["detail"].as_str().unwrap().contains("\"x-echo\""));
        assert!(r.header("set-cookie").is_none());
        assert_eq!(upstream_requests(&envoy), 0);
        assert_eq!(counter(&envoy, "errors.unsafe_value"), 1);
        let r = send(&envoy, &Request::get("/resp/x?name=bob"));
        upstream_echo(&r, "harmless");
        assert_eq!(r.header("x-echo"), Some("hello bob"));
    });
}

/// Path and query rewrites: a value can neither end the path (`?`, `#`), break the request
/// line (CR LF, space) nor climb out of it (`../`, encoded or not): what would be ambiguous is
/// refused (400 `unsafe_path`), the rest is percent-encoded.
#[test]
fn path_and_query_rewrites_cannot_be_smuggled() {
    for_each_form(|form| {
        let envoy = start(form);
        for to in [
            "..",
            "..%2Fadmin",
            "a%2F..%2F..%2Fadmin",
            "%2e%2e",
            "a%5C..",
            "a/b",
        ] {
            let r = send(&envoy, &Request::get(&format!("/rw/x?to={to}")));
            assert_problem(&r, 400, "unsafe_path", to);
        }
        assert_eq!(upstream_requests(&envoy), 0);
        assert_eq!(counter(&envoy, "errors.unsafe_value"), 6);
        let cases = [
            (
                "to=a%3Fb%23c%0d%0a&name=x",
                "/v2/a%3Fb%23c%0D%0A?to=a%3Fb%23c%0d%0a&name=x&who=x",
            ),
            (
                "to=p&name=%0d%0a%26admin%3D1%23",
                "/v2/p?to=p&name=%0d%0a%26admin%3D1%23&who=%0D%0A%26admin%3D1%23",
            ),
            ("to=a%20b&name=a+b", "/v2/a%20b?to=a%20b&name=a+b&who=a%20b"),
        ];
        for (q, want) in cases {
            let echo = upstream_echo(&send(&envoy, &Request::get(&format!("/rw/x?{q}"))), q);
            assert_eq!(echo["path"], want, "{q}");
        }
    });
}

/// A template producing more than 8 KiB is refused (400, counted), never truncated or sent.
#[test]
fn oversized_rendered_values_are_refused() {
    for_each_form(|form| {
        let envoy = start(form);
        let v = "v".repeat(5000);
        let r = send(&envoy, &Request::get(&format!("/big?v={v}")));
        assert_problem(&r, 400, "transform_value_too_large", "10,000-byte value");
        assert_eq!(upstream_requests(&envoy), 0);
        assert_eq!(counter(&envoy, "errors.unsafe_value"), 1);
        let echo = upstream_echo(
            &send(
                &envoy,
                &Request::get(&format!("/big?v={}", "v".repeat(4000))),
            ),
            "8,000 bytes",
        );
        assert_eq!(echoed_header(&echo, "x-big"), vec!["v".repeat(8000)]);
    });
}

/// Bodies: larger than `max_body_bytes` by declaration (413 before any byte is read) or while
/// streaming (chunked, 413), a JSON nesting bomb (400, the VM survives), control bytes in a
/// body value (JSON-escaped, never raw). The upstream never gets (or answers) a refused body.
#[test]
fn hostile_bodies() {
    for_each_form(|form| {
        let envoy = start(form);
        let json = |body: Vec<u8>| {
            Request::new("POST", "/body?name=x")
                .header("content-type", "application/json")
                .body(body)
        };
        // Declared too large: refused at the headers, the upstream is never called.
        let mut big = b"{\"a\":\"".to_vec();
        big.extend(std::iter::repeat_n(b'x', 200 * 1024));
        big.extend_from_slice(b"\"}");
        let r = send(&envoy, &json(big.clone()));
        assert_problem(&r, 413, "body_too_large", "declared 200 KiB");
        assert_eq!(upstream_requests(&envoy), 0);

        // Nesting bombs within the size limit: refused as invalid JSON; the VM lives on.
        for bomb in [
            "[".repeat(60_000),
            "{\"a\":".repeat(10_000),
            format!("{}1{}", "[".repeat(129), "]".repeat(129)),
        ] {
            let r = send(&envoy, &json(bomb.into_bytes()));
            assert_problem(&r, 400, "invalid_json", "nesting bomb");
        }
        let r = send(
            &envoy,
            &Request::new("POST", "/body?name=%0d%0a%22x%22")
                .header("content-type", "application/json")
                .body(r#"{"a":1}"#),
        );
        let echo = upstream_echo(&r, "after the bombs");
        assert_eq!(echo["body"], r#"{"a":1,"name":"\r\n\"x\""}"#);
        assert_eq!(counter(&envoy, "errors.denied"), 4);
        // A body is judged once it is whole, after the request head went on to the router (Envoy
        // 1.40 withholds body callbacks from a filter that paused its headers): the upstream may
        // have been sent the head of a refused request, never its body, and never answered it.
        assert_eq!(answered(&envoy), 1, "the upstream answered a refused body");

        // Streamed (chunked) too large: 413 once the limit is passed.
        let mut chunked = Request::new("POST", "/body?name=x")
            .header("content-type", "application/json")
            .header("transfer-encoding", "chunked");
        let mut framed = Vec::new();
        for _ in 0..20 {
            let chunk = vec![b' '; 16 * 1024];
            framed.extend(format!("{:x}\r\n", chunk.len()).into_bytes());
            framed.extend(chunk);
            framed.extend(b"\r\n");
        }
        framed.extend(b"0\r\n\r\n");
        chunked = chunked.body(framed);
        let r = send(&envoy, &chunked);
        assert_problem(&r, 413, "body_too_large", "streamed 320 KiB");
        assert_eq!(counter(&envoy, "errors.denied"), 5);
        assert_eq!(counter(&envoy, "applied"), 1);
        assert_eq!(answered(&envoy), 1, "the upstream answered a refused body");
    });
}

/// Requests the upstream answered (it answers only once it has read the whole body).
fn answered(envoy: &Envoy) -> u64 {
    envoy.count("cluster.upstream.upstream_rq_completed")
}

/// Status and body of an HTTP/2 (prior knowledge) request made with curl, which sends `-X`
/// verbatim as `:method`.
fn h2(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let r = send_h2(port, method, path, headers, None).unwrap_or_else(|e| panic!("{e}"));
    (r.status, r.body)
}

/// HTTP/2 lets a client send `:method: post`: a rule written for `POST` still applies (kit's
/// matcher compares methods case-insensitively), so a header the rule removes cannot be slipped
/// past it by changing the method's case.
#[test]
fn lower_case_methods_over_http2_still_meet_their_rules() {
    for_each_form(|form| {
        let envoy = start(form);
        for method in ["POST", "post", "Post"] {
            let (status, body) = h2(envoy.port(), method, "/m", &[("x-internal", "1")]);
            assert_eq!(status, 200, "{method}: {}", String::from_utf8_lossy(&body));
            let echo: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(echo["method"], method);
            assert!(
                echoed_header(&echo, "x-internal").is_empty(),
                "{method}: x-internal reached the upstream"
            );
            assert_eq!(echoed_header(&echo, "x-m"), vec![method]);
        }
        assert_eq!(counter(&envoy, "applied"), 3);
    });
}

/// scope-authz (publishing the verified claims) in front of transform, which renders
/// `{{claim.sub}}` into a header.
const CLAIMS_SCOPE_AUTHZ: &str = r#"{
  "providers": [{"name": "demo", "issuer": "https://demo-issuer.apim.local",
    "audiences": ["demo-api"], "algorithms": ["RS256"],
    "jwks": {"inline": {"keys": [{"kty": "RSA", "kid": "demo-1", "use": "sig", "n": "vXOe55tPMZZuQJtG_aOJT6dcDq8YQk-UhiBdWh9ucExIxDL6G56CKc347sDsuAOu08-HSRZjFEflRzKt-aAco06iz8rd6CKGPyKrwR5kxQQ8-mauQBSX_sRvn5RMeXHzZdhFY-816wmY9BN7F1O8y7mkLrYj1ta6SCBbmEGUl9kV1MDJ_NmkUCniLe68P9J-7Zpq4H7XRUcHeQmTfRo_i4lGP2RQ7ACE9sgl7NKYJGEFcJF-Pxd13G58fNPQO2u-y4wxf6vNS_8_zyA2EHIWEqbxIR3R8kXl2dHqxA8O6-b71lq0lnBqNta9KJh2ahRZJBKkeK2jwN3o00ywBMnb-w", "e": "AQAB"}]}}}],
  "rules": [{"require": {"all_of": ["pets:read"]}}],
  "publish_claims": true
}"#;

fn claims_template(form: Form) -> String {
    let transform =
        r#"{"rules": [{"request": {"headers": {"add": {"x-token-subject": "{{claim.sub}}"}}}}]}"#;
    bootstrap(
        &[listener("main", "upstream").stat_prefix("ingress").chain(
            &Chain::new()
                .filter(Filter::ScopeAuthz, CLAIMS_SCOPE_AUTHZ)
                .filter(Filter::Transform, transform),
            form,
        )],
        &[upstream_cluster("upstream")],
    )
}

fn token(sub: &str) -> String {
    apim_integration::demo_keys::demo_token(sub, "pets:read")
}

/// Item 8, claims: a verified token whose `sub` carries CR LF (an issuer that puts user-chosen
/// text in a claim) rendered into a header is refused by transform (400, counted), never
/// forwarded. On the old code: 503, counted as applied.
#[test]
fn control_bytes_in_a_claim_rendered_into_a_header_are_refused() {
    for_each_form(|form| {
        let envoy = Envoy::builder()
            .concurrency(1)
            .start(&claims_template(form))
            .unwrap_or_else(|e| panic!("starting Envoy: {e}"));
        let bearer = |sub: &str| format!("Bearer {}", token(sub));
        let r = send(
            &envoy,
            &Request::get("/pets").header("authorization", &bearer("carol\r\nx-admin: 1")),
        );
        let body = assert_problem(&r, 400, "unsafe_header_value", "CR LF in sub");
        assert!(body["detail"]
            .as_str()
            .unwrap()
            .contains("\"x-token-subject\""));
        assert!(!r.text().contains("x-admin"));
        assert_eq!(upstream_requests(&envoy), 0);
        assert_eq!(counter(&envoy, "errors.unsafe_value"), 1);
        assert_eq!(counter(&envoy, "applied"), 0);
        let r = send(
            &envoy,
            &Request::get("/pets").header("authorization", &bearer("carol")),
        );
        let echo = upstream_echo(&r, "a plain sub");
        assert_eq!(echoed_header(&echo, "x-token-subject"), vec!["carol"]);
        assert_eq!(counter(&envoy, "applied"), 1);
    });
}

/// The client picks `content-type` and `content-encoding`. On a route whose rule edits the JSON
/// body, a body declared as something else (or encoded) used to go upstream untouched, so
/// `{"name":"forged"}` sent as `text/plain` (which many servers parse as JSON anyway) kept the
/// name the rule overwrites. Now it is refused with 415 `unsupported_body` before the upstream
/// is called; `on_invalid_body: pass` is the operator's explicit opt-out.
#[test]
fn a_body_the_rule_cannot_read_never_slips_past_it() {
    for_each_form(|form| {
        let envoy = start(form);
        let body = r#"{"name":"forged"}"#;
        let post = |headers: &[(&str, &str)]| {
            let mut r = Request::new("POST", "/body?name=set-by-rule").body(body);
            for (k, v) in headers {
                r = r.header(k, v);
            }
            send(&envoy, &r)
        };
        // Control: a JSON body is edited.
        let r = post(&[("content-type", "application/json")]);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("set-by-rule"), "{}", r.text());
        let before = upstream_requests(&envoy);
        for headers in [
            vec![("content-type", "text/plain")],
            vec![],
            vec![
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
        ] {
            let r = post(&headers);
            assert_eq!(r.status, 415, "{headers:?}: {}", r.text());
            assert_eq!(r.json()["code"], "unsupported_body", "{headers:?}");
            assert_eq!(
                upstream_requests(&envoy),
                before,
                "{headers:?} reached the upstream"
            );
        }
    });
}
