//! The exchange state machine on a recording mock: what reaches the host, in which phase.

use crate::config::Config;
use crate::graphql::Call;
use crate::handler::{apply_edits, Action, Counter, Exchange, Io, Side};
use crate::headers::Edit;
use kit::denial::Reply;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[derive(Default)]
struct Mock {
    request: Vec<(String, Vec<u8>)>,
    response: Vec<(String, Vec<u8>)>,
    properties: HashMap<String, Vec<u8>>,
    body: RefCell<Vec<u8>>,
    edits: RefCell<Vec<(Side, Edit)>>,
    /// The headers after every change, per side, once the filter changed any.
    after: RefCell<HashMap<bool, Vec<(String, Vec<u8>)>>>,
    new_body: RefCell<Option<Vec<u8>>>,
    replies: RefCell<Vec<Reply>>,
    calls: RefCell<Vec<Call>>,
    counts: RefCell<Vec<Counter>>,
}

impl Mock {
    fn new(request: &[(&str, &str)]) -> Self {
        Self {
            request: request
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            ..Self::default()
        }
    }
    /// One header of one side after the filter's changes (`None` if absent).
    fn after(&self, side: Side, name: &str) -> Option<Vec<u8>> {
        let after = self.after.borrow();
        let list = after
            .get(&(side == Side::Request))
            .cloned()
            .unwrap_or_else(|| self.headers(side));
        list.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
    fn changed(&self, side: Side) -> bool {
        self.after.borrow().contains_key(&(side == Side::Request))
    }
    fn count(&self, c: Counter) -> usize {
        self.counts.borrow().iter().filter(|x| **x == c).count()
    }
    fn reply_json(&self) -> (u16, Value) {
        let r = self.replies.borrow();
        let r = r.last().unwrap();
        (r.status, serde_json::from_slice(&r.body).unwrap())
    }
}

impl Io for Mock {
    fn headers(&self, side: Side) -> Vec<(String, Vec<u8>)> {
        match side {
            Side::Request => self.request.clone(),
            Side::Response => self.response.clone(),
        }
    }
    fn route_name(&self) -> Option<String> {
        Some("pets".into())
    }
    fn property(&self, key: &str) -> Option<Vec<u8>> {
        self.properties.get(key).cloned()
    }
    fn edit(&self, side: Side, edit: &Edit) {
        self.edits.borrow_mut().push((side, edit.clone()));
        let mut after = self.after.borrow_mut();
        let current = after
            .entry(side == Side::Request)
            .or_insert_with(|| self.headers(side));
        apply_edits(current, std::slice::from_ref(edit));
    }
    fn set_headers(&self, side: Side, headers: &[(String, Vec<u8>)]) {
        self.after
            .borrow_mut()
            .insert(side == Side::Request, headers.to_vec());
    }
    fn body(&self, _side: Side, size: usize) -> Option<Vec<u8>> {
        let b = self.body.borrow();
        Some(b.get(..size).unwrap_or(&b).to_vec())
    }
    fn set_body(&self, _side: Side, _size: usize, body: &[u8]) {
        *self.new_body.borrow_mut() = Some(body.to_vec());
    }
    fn send_reply(&self, reply: &Reply) {
        self.replies.borrow_mut().push(reply.clone());
    }
    fn dispatch(&self, call: &Call) -> bool {
        self.calls.borrow_mut().push(call.clone());
        true
    }
    fn count(&self, counter: Counter) {
        self.counts.borrow_mut().push(counter);
    }
    fn warn(&self, _message: &str) {}
}

fn config(v: Value) -> Rc<Config> {
    Rc::new(Config::parse(v.to_string().as_bytes()).unwrap())
}

fn json_post(body: &str) -> Mock {
    let m = Mock::new(&[
        (":method", "POST"),
        (":path", "/orders/7?debug=1"),
        ("content-type", "application/json"),
        ("content-length", &body.len().to_string()),
        ("accept-encoding", "gzip"),
    ]);
    *m.body.borrow_mut() = body.as_bytes().to_vec();
    m
}

#[test]
fn request_head_and_body_are_transformed() {
    let c = config(json!({"rules": [{
        "match": {"route_name": "pets"},
        "captures": "^/orders/(\\d+)$",
        "request": {
            "method": "PUT",
            "path": "/v2/orders/{{path.1}}",
            "query": {"remove": ["debug"]},
            "headers": {"add": {"x-consumer": "{{consumer.id}}"}},
            "body": [{"op": "set", "path": "/id", "template": "{{path.1}}", "type": "int"}]
        }
    }]}));
    let mut m = json_post(r#"{"item":"x"}"#);
    m.properties
        .insert("apim_consumer".into(), br#"{"id":"alice"}"#.to_vec());
    let mut ex = Exchange::new(c);
    assert_eq!(ex.on_request_headers(&m, false), Action::Continue);
    // Several changes go to the host as one new header map.
    assert!(m.edits.borrow().is_empty());
    let after = |n: &str| m.after(Side::Request, n);
    assert_eq!(after("x-consumer"), Some(b"alice".to_vec()));
    assert_eq!(after("content-length"), None);
    assert_eq!(after(":path"), Some(b"/v2/orders/7".to_vec()));
    assert_eq!(after(":method"), Some(b"PUT".to_vec()));
    assert_eq!(after("content-type"), Some(b"application/json".to_vec()));
    assert_eq!(ex.on_request_body(&m, 5, false), Action::Pause);
    assert_eq!(ex.on_request_body(&m, 12, true), Action::Continue);
    let out: Value = serde_json::from_slice(&m.new_body.borrow().clone().unwrap()).unwrap();
    assert_eq!(out, json!({"id": 7, "item": "x"}));
    assert_eq!(m.count(Counter::Applied), 1);
}

#[test]
fn bad_bodies_get_400_or_pass_by_config() {
    let rules = json!([{"request": {"body": [{"op": "remove", "path": "/a"}]}}]);
    let deep = "[".repeat(10_000);
    for (body, code) in [("{oops", "invalid_json"), (deep.as_str(), "invalid_json")] {
        let m = json_post(body);
        let mut ex = Exchange::new(config(json!({"rules": rules})));
        assert_eq!(ex.on_request_headers(&m, false), Action::Continue);
        assert_eq!(ex.on_request_body(&m, body.len(), true), Action::Pause);
        let (status, v) = m.reply_json();
        assert_eq!((status, v["code"].as_str()), (400, Some(code)));
        assert_eq!(m.count(Counter::Denied), 1);

        let m = json_post(body);
        let mut ex = Exchange::new(config(json!({"rules": rules, "on_invalid_body": "pass"})));
        ex.on_request_headers(&m, false);
        assert_eq!(ex.on_request_body(&m, body.len(), true), Action::Continue);
        assert!(m.replies.borrow().is_empty() && m.new_body.borrow().is_none());
        assert_eq!(m.count(Counter::SkippedInvalid), 1);
    }
}

#[test]
fn bodies_ending_in_trailers_are_refused_or_passed_by_config() {
    let rules = json!([{"request": {"body": [{"op": "set", "path": "/caller", "template": "x"}]}}]);
    let m = json_post(r#"{"caller":"forged"}"#);
    let mut ex = Exchange::new(config(json!({"rules": rules})));
    assert_eq!(ex.on_request_headers(&m, false), Action::Continue);
    assert_eq!(ex.on_request_body(&m, 10, false), Action::Pause);
    assert_eq!(ex.on_request_trailers(&m), Action::Pause);
    let (status, v) = m.reply_json();
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("body_with_trailers"))
    );

    let m = json_post(r#"{"caller":"forged"}"#);
    let mut ex = Exchange::new(config(json!({"rules": rules, "on_invalid_body": "pass"})));
    ex.on_request_headers(&m, false);
    assert_eq!(ex.on_request_trailers(&m), Action::Continue);
    assert_eq!(m.count(Counter::SkippedInvalid), 1);
}

#[test]
fn oversize_and_non_json_bodies() {
    let rules = json!([{"request": {"body": [{"op": "remove", "path": "/a"}]}}]);
    let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(200));
    // declared too large, pass (an explicit opt-out): untouched, counted
    let m = json_post(&big);
    let mut ex = Exchange::new(config(
        json!({"rules": rules, "max_body_bytes": 100, "on_oversize": "pass"}),
    ));
    assert_eq!(ex.on_request_headers(&m, false), Action::Continue);
    assert_eq!(ex.on_request_body(&m, big.len(), true), Action::Continue);
    assert_eq!(m.count(Counter::SkippedOversize), 1);
    // declared too large, reject (the default): 413 at once
    let m = json_post(&big);
    let mut ex = Exchange::new(config(json!({"rules": rules, "max_body_bytes": 100})));
    assert_eq!(ex.on_request_headers(&m, false), Action::Pause);
    assert_eq!(m.reply_json().0, 413);
    // chunked (no content-length), grows past the bound while buffering: 413
    let mut m = json_post(&big);
    m.request.retain(|(k, _)| k != "content-length");
    let mut ex = Exchange::new(config(
        json!({"rules": rules, "max_body_bytes": 100, "on_oversize": "reject"}),
    ));
    assert_eq!(ex.on_request_headers(&m, false), Action::Continue);
    assert_eq!(ex.on_request_body(&m, 150, false), Action::Pause);
    assert_eq!(m.reply_json().0, 413);
    // not JSON, or gzip: untouched, counted
    for (name, value, counter) in [
        ("content-type", "text/plain", Counter::SkippedNotJson),
        ("content-encoding", "gzip", Counter::SkippedEncoded),
    ] {
        let mut m = json_post("{}");
        m.request.retain(|(k, _)| k != name);
        m.request.push((name.into(), value.as_bytes().to_vec()));
        // The client picks these: by default the body cannot slip past the edit (415).
        let mut ex = Exchange::new(config(json!({"rules": rules})));
        assert_eq!(ex.on_request_headers(&m, false), Action::Pause);
        let (status, v) = m.reply_json();
        assert_eq!(
            (status, v["code"].as_str()),
            (415, Some("unsupported_body"))
        );
        // With on_invalid_body: pass (an explicit opt-out): untouched, counted.
        let mut m = json_post("{}");
        m.request.retain(|(k, _)| k != name);
        m.request.push((name.into(), value.as_bytes().to_vec()));
        let mut ex = Exchange::new(config(json!({"rules": rules, "on_invalid_body": "pass"})));
        assert_eq!(ex.on_request_headers(&m, false), Action::Continue);
        assert_eq!(ex.on_request_body(&m, 2, true), Action::Continue);
        assert_eq!(m.count(counter), 1, "{value}");
        assert!(m.new_body.borrow().is_none());
    }
}

#[test]
fn response_rules_follow_the_status() {
    let c = config(json!({"rules": [{"response": [
        {"status": [404], "headers": {"add": {"x-missing": "yes"}}},
        {"status": ["2xx"], "headers": {"remove": ["server"]}, "body": [{"op": "rename", "path": "/n", "to": "name"}]}
    ]}]}));
    let mut m = json_post("{}");
    m.response = vec![
        (":status".into(), b"200".to_vec()),
        ("server".into(), b"x".to_vec()),
        ("content-type".into(), b"application/json".to_vec()),
    ];
    *m.body.borrow_mut() = br#"{"n":"rex"}"#.to_vec();
    let mut ex = Exchange::new(Rc::clone(&c));
    assert_eq!(ex.on_request_headers(&m, true), Action::Continue);
    // the upstream is asked for an uncompressed answer
    assert_eq!(m.after(Side::Request, "accept-encoding"), None);
    assert_eq!(ex.on_response_headers(&m, false), Action::Continue);
    assert_eq!(m.after(Side::Response, "server"), None);
    assert_eq!(m.after(Side::Response, "content-length"), None);
    assert_eq!(m.after(Side::Response, ":status"), Some(b"200".to_vec()));
    assert_eq!(ex.on_response_body(&m, 11, true), Action::Continue);
    assert_eq!(
        m.new_body.borrow().clone().unwrap(),
        br#"{"name":"rex"}"#.to_vec()
    );

    m.response = vec![(":status".into(), b"404".to_vec())];
    m.edits.borrow_mut().clear();
    m.after.borrow_mut().clear();
    let mut ex = Exchange::new(Rc::clone(&c));
    ex.on_request_headers(&m, true);
    assert_eq!(ex.on_response_headers(&m, true), Action::Continue);
    // A single change is a single call.
    assert_eq!(
        m.edits.borrow().last(),
        Some(&(
            Side::Response,
            Edit::Set("x-missing".into(), b"yes".to_vec())
        ))
    );

    m.response = vec![(":status".into(), b"500".to_vec())];
    m.after.borrow_mut().clear();
    let mut ex = Exchange::new(c);
    ex.on_request_headers(&m, true);
    ex.on_response_headers(&m, true);
    assert!(!m.changed(Side::Response));
}

#[test]
fn rest_to_graphql() {
    let c = config(json!({"rules": [{
        "match": {"path": {"regex": "/pets/[^/]+"}, "methods": ["GET"]},
        "captures": "^/pets/(?P<id>[^/]+)$",
        "graphql": {
            "cluster": "gql", "path": "/graphql",
            "query": "query($id: Int!) { pet(id: $id) { id name } }",
            "variables": {"id": {"template": "{{path.id}}", "type": "int"}, "v": {"template": "{{query.v}}"}},
            "unwrap": "pet", "forward_headers": ["authorization"]
        }
    }]}));
    let m = Mock::new(&[
        (":method", "GET"),
        (":path", "/pets/5?v=x"),
        ("authorization", "Bearer t"),
    ]);
    let mut ex = Exchange::new(Rc::clone(&c));
    assert_eq!(ex.on_request_headers(&m, true), Action::Pause);
    let call = m.calls.borrow()[0].clone();
    assert_eq!(call.cluster, "gql");
    assert!(call.headers.contains(&(":method".into(), b"POST".to_vec())));
    assert!(call
        .headers
        .contains(&("authorization".into(), b"Bearer t".to_vec())));
    let body: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(body["variables"], json!({"id": 5, "v": "x"}));

    /// What the GraphQL endpoint answered (status, body) and what the client gets: the status
    /// and the unwrapped data (on 200) or the problem code.
    struct Case {
        endpoint_status: Option<u16>,
        endpoint_body: &'static str,
        status: u16,
        data_or_code: Value,
    }
    let cases = [
        Case {
            endpoint_status: Some(200),
            endpoint_body: r#"{"data":{"pet":{"id":5,"name":"Rex"}}}"#,
            status: 200,
            data_or_code: json!({"id":5,"name":"Rex"}),
        },
        Case {
            endpoint_status: Some(200),
            endpoint_body: r#"{"data":{"pet":null}}"#,
            status: 404,
            data_or_code: json!("not_found"),
        },
        Case {
            endpoint_status: Some(200),
            endpoint_body: r#"{"data":null,"errors":[{"message":"boom"}]}"#,
            status: 502,
            data_or_code: json!("graphql_error"),
        },
        Case {
            endpoint_status: Some(500),
            endpoint_body: "{}",
            status: 502,
            data_or_code: json!("graphql_upstream_error"),
        },
        Case {
            endpoint_status: Some(200),
            endpoint_body: "not json",
            status: 502,
            data_or_code: json!("graphql_upstream_error"),
        },
        Case {
            endpoint_status: None,
            endpoint_body: "",
            status: 502,
            data_or_code: json!("graphql_upstream_error"),
        },
    ];
    for case in cases {
        let body = case.endpoint_body;
        let answer = crate::graphql::Answer {
            size: body.len(),
            body: Some(body.as_bytes()),
        };
        ex.on_graphql_response(&m, case.endpoint_status, &answer);
        let (got_status, v) = m.reply_json();
        assert_eq!(got_status, case.status, "{body}");
        if case.status == 200 {
            assert_eq!(v, case.data_or_code);
        } else {
            assert_eq!(v["code"], case.data_or_code, "{body}");
        }
    }
    // An answer over max_body_bytes is refused by its size, its bytes never read.
    let oversized = crate::graphql::Answer {
        size: c.max_body_bytes + 1,
        body: None,
    };
    ex.on_graphql_response(&m, Some(200), &oversized);
    let (status, v) = m.reply_json();
    assert_eq!(
        (status, v["code"].as_str()),
        (502, Some("graphql_upstream_error"))
    );
    assert!(v["detail"].as_str().unwrap().contains("too large"), "{v}");
    // a variable of the wrong type is the client's error
    let m = Mock::new(&[(":method", "GET"), (":path", "/pets/abc")]);
    let mut ex = Exchange::new(c);
    assert_eq!(ex.on_request_headers(&m, true), Action::Pause);
    let (status, v) = m.reply_json();
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("invalid_variable"))
    );
    assert!(m.calls.borrow().is_empty());
}

#[test]
fn no_rule_and_non_utf8_headers() {
    let c = config(json!({"rules": [{"match": {"path": {"prefix": "/only"}},
        "request": {"headers": {"add": {"x-copy": "{{header.x-bin}}"}}}}]}));
    let m = Mock::new(&[(":method", "GET"), (":path", "/other")]);
    let mut ex = Exchange::new(Rc::clone(&c));
    assert_eq!(ex.on_request_headers(&m, true), Action::Continue);
    assert_eq!(m.count(Counter::NoRule), 1);
    let mut m = Mock::new(&[(":method", "GET"), (":path", "/only")]);
    m.request.push(("x-bin".into(), b"caf\xe9".to_vec()));
    let mut ex = Exchange::new(c);
    assert_eq!(ex.on_request_headers(&m, true), Action::Continue);
    assert_eq!(
        m.edits.borrow()[0].1,
        Edit::Set("x-copy".into(), b"caf\xe9".to_vec())
    );
}

/// Issue 10 item 8: a header value rendered from the request with a control byte refuses the
/// request (400 naming the header, not echoing the value), counted as denied and as
/// `unsafe_value`; nothing is edited. A response template is checked before the request goes
/// upstream. A rewritten path that would be ambiguous is refused the same way.
#[test]
fn unsafe_values_refuse_the_request_before_anything_is_sent() {
    let cases = [
        (
            json!({"rules": [{"request": {"headers": {"add": {"x-name": "{{query.name}}"}}}}]}),
            "unsafe_header_value",
            Some("x-name"),
        ),
        (
            json!({"rules": [{"response": [{"headers": {"add": {"x-echo": "hi {{query.name}}"}}}]}]}),
            "unsafe_header_value",
            Some("x-echo"),
        ),
        (
            json!({"rules": [{"request": {"path": "/v2/{{query.to}}"}}]}),
            "unsafe_path",
            None,
        ),
    ];
    for (cfg, code, header) in cases {
        let mut ex = Exchange::new(config(cfg.clone()));
        let m = Mock::new(&[
            (":method", "GET"),
            (":path", "/p?name=%0d%0ax-admin:%201&to=..%2Fadmin"),
        ]);
        assert_eq!(ex.on_request_headers(&m, true), Action::Pause, "{cfg}");
        let (status, body) = m.reply_json();
        assert_eq!((status, body["code"].as_str()), (400, Some(code)), "{cfg}");
        let detail = body["detail"].as_str().unwrap();
        if let Some(h) = header {
            assert!(detail.contains(&format!("\"{h}\"")), "{detail}");
        }
        assert!(!detail.contains("x-admin"), "the value is echoed: {detail}");
        assert_eq!(m.count(Counter::Denied), 1, "{cfg}");
        assert_eq!(m.count(Counter::UnsafeValue), 1, "{cfg}");
        assert_eq!(m.count(Counter::Applied), 0, "{cfg}");
        assert!(
            m.edits.borrow().is_empty() && !m.changed(Side::Request),
            "{cfg}"
        );
    }
    // The same rule with a harmless value applies.
    let mut ex = Exchange::new(config(
        json!({"rules": [{"request": {"headers": {"add": {"x-name": "{{query.name}}"}}}}]}),
    ));
    let m = Mock::new(&[(":method", "GET"), (":path", "/p?name=bob")]);
    assert_eq!(ex.on_request_headers(&m, true), Action::Continue);
    assert_eq!(m.after(Side::Request, "x-name"), Some(b"bob".to_vec()));
    assert_eq!(m.count(Counter::UnsafeValue), 0);
}
