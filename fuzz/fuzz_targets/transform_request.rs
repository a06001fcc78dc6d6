//! transform on a hostile exchange: templates rendered from client headers, query and path
//! captures; header, query and path rewrites; JSON body operations (set, remove, rename, copy,
//! move, merge patch, JSON patch), with the integration fixture's rules.
//!
//! Input: a request (header lines, an empty line, the body). The same bytes' body is also
//! offered as the response body (status 200, JSON), for the response rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::rc::Rc;
use transform::config::Config;
use transform::handler::Exchange;

const CONFIG: &str = include_str!("../../tests/integration/fixtures/transform/config.json");

fuzz_target!(|data: &[u8]| {
    thread_local! {
        static C: Rc<Config> = Rc::new(Config::parse(CONFIG.as_bytes()).expect("fixed config"));
    }
    let config = C.with(Rc::clone);
    let (headers, body) = apim_fuzz::request(data);
    let io = apim_fuzz::TransformIo {
        request: headers,
        response: vec![
            (":status".into(), b"200".to_vec()),
            ("content-type".into(), b"application/json".to_vec()),
        ],
        request_body: body.to_vec(),
        response_body: body.to_vec(),
        ..Default::default()
    };
    let mut ex = Exchange::new(config);
    let _ = ex.on_request_headers(&io, body.is_empty());
    if !body.is_empty() {
        let _ = ex.on_request_body(&io, body.len(), true);
    }
    // A REST → GraphQL rule: the body stands for the GraphQL server's answer.
    let answer = transform::graphql::Answer {
        size: body.len(),
        body: Some(body),
    };
    ex.on_graphql_response(&io, Some(200), &answer);
    if io.replies.borrow().is_empty() {
        let _ = ex.on_response_headers(&io, false);
        let _ = ex.on_response_body(&io, body.len(), true);
    }
    for (name, value) in io.set_headers.borrow().iter() {
        if name == ":path" {
            // A rewritten path never gains a control byte or a space from a value taken from
            // the request (template values in a path are percent-encoded).
            assert!(value.iter().all(|b| *b > b' ' && *b != 0x7f), "{value:?}");
            continue;
        }
        apim_fuzz::assert_header_safe(&io.request, name, value);
    }
    for b in io.new_bodies.borrow().iter() {
        assert!(
            serde_json::from_slice::<serde_json::Value>(b).is_ok(),
            "body is not JSON"
        );
    }
    for r in io.replies.borrow().iter() {
        assert!((200..600).contains(&r.status));
    }
});
