use super::*;
use crate::host::{Call, MockHost, Side};
use std::cell::RefCell;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// A stage that answers from a script and records what it saw.
struct Scripted {
    name: &'static str,
    seen: Rc<RefCell<Vec<String>>>,
    headers: Flow,
    /// Answers to body events, in order (then Continue).
    body: Vec<Flow>,
    callout: Flow,
}

impl Exchange for Scripted {
    fn on_request_headers(&mut self, _host: &dyn Host, end_of_stream: bool) -> Flow {
        self.seen
            .borrow_mut()
            .push(format!("{}:headers({end_of_stream})", self.name));
        self.headers
    }
    fn on_request_body(&mut self, _host: &dyn Host, size: usize, end: bool) -> Flow {
        self.seen
            .borrow_mut()
            .push(format!("{}:body({size},{end})", self.name));
        if self.body.is_empty() {
            Flow::Continue
        } else {
            self.body.remove(0)
        }
    }
    fn on_request_trailers(&mut self, _host: &dyn Host) -> Flow {
        self.seen
            .borrow_mut()
            .push(format!("{}:trailers", self.name));
        Flow::Continue
    }
    fn on_response_headers(&mut self, _host: &dyn Host, _end: bool) -> Flow {
        self.seen
            .borrow_mut()
            .push(format!("{}:response", self.name));
        Flow::Continue
    }
    fn on_callout(&mut self, _host: &dyn Host, token: u32, _answer: Callout) -> Flow {
        self.seen
            .borrow_mut()
            .push(format!("{}:callout({token})", self.name));
        self.callout
    }
}

fn chain(stages: Vec<(&'static str, Flow, Vec<Flow>)>) -> (Chain, Rc<RefCell<Vec<String>>>) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let exchanges = stages
        .into_iter()
        .map(|(name, headers, body)| {
            Box::new(Scripted {
                name,
                seen: Rc::clone(&seen),
                headers,
                body,
                callout: Flow::Continue,
            }) as Box<dyn Exchange>
        })
        .collect();
    (Chain::new(exchanges), seen)
}

#[test]
fn a_denial_by_an_early_stage_stops_the_later_ones() {
    let host = MockHost::default();
    let (mut c, seen) = chain(vec![
        ("auth", Flow::Done, vec![]),
        ("quota", Flow::Continue, vec![]),
    ]);
    assert_eq!(c.on_request_headers(&host, true), Flow::Done);
    // The local reply's response reaches only the stages that saw the request.
    assert_eq!(c.on_response_headers(&host, true), Flow::Continue);
    assert_eq!(*seen.borrow(), ["auth:headers(true)", "auth:response"]);
}

#[test]
fn every_stage_sees_the_headers_in_order_and_the_response_in_reverse() {
    let host = MockHost::default();
    let (mut c, seen) = chain(vec![
        ("a", Flow::Continue, vec![]),
        ("b", Flow::Continue, vec![]),
    ]);
    assert_eq!(c.on_request_headers(&host, true), Flow::Continue);
    assert_eq!(c.on_response_headers(&host, true), Flow::Continue);
    assert_eq!(
        *seen.borrow(),
        [
            "a:headers(true)",
            "b:headers(true)",
            "b:response",
            "a:response"
        ]
    );
}

#[test]
fn a_stage_holding_the_headers_keeps_them_from_later_stages_until_the_body_is_judged() {
    let host = MockHost::default();
    let (mut c, seen) = chain(vec![
        (
            "guard",
            Flow::WaitBody,
            vec![Flow::WaitBody, Flow::Continue],
        ),
        ("quota", Flow::Continue, vec![]),
    ]);
    assert_eq!(c.on_request_headers(&host, false), Flow::WaitBody);
    assert_eq!(c.on_request_body(&host, 10, false), Flow::WaitBody);
    assert_eq!(c.on_request_body(&host, 25, true), Flow::Continue);
    assert_eq!(
        *seen.borrow(),
        [
            "guard:headers(false)",
            "guard:body(10,false)",
            "guard:body(25,true)",
            // Behind the guard, as in Envoy: the headers, then the whole body at once.
            "quota:headers(false)",
            "quota:body(25,true)",
        ]
    );
}

#[test]
fn a_stage_waiting_for_the_body_after_passing_the_headers_holds_only_the_body() {
    let host = MockHost::default();
    let (mut c, seen) = chain(vec![
        (
            "guard",
            Flow::Continue,
            vec![Flow::WaitBody, Flow::Continue],
        ),
        ("quota", Flow::Continue, vec![]),
    ]);
    assert_eq!(c.on_request_headers(&host, false), Flow::Continue);
    assert_eq!(c.on_request_body(&host, 10, false), Flow::WaitBody);
    assert_eq!(c.on_request_body(&host, 25, true), Flow::Continue);
    assert_eq!(
        *seen.borrow(),
        [
            "guard:headers(false)",
            "quota:headers(false)",
            "guard:body(10,false)",
            "guard:body(25,true)",
            "quota:body(25,true)",
        ]
    );
}

#[test]
fn a_callout_holds_everything_until_its_answer_then_later_stages_run() {
    let host = MockHost::default();
    let (mut c, seen) = chain(vec![
        ("quota", Flow::WaitCallout(7), vec![]),
        ("transform", Flow::Continue, vec![]),
    ]);
    assert_eq!(c.on_request_headers(&host, false), Flow::WaitCallout(7));
    // A body arriving meanwhile is buffered, seen by nobody yet.
    assert_eq!(c.on_request_body(&host, 5, true), Flow::WaitCallout(7));
    // An answer to another call does not release the request.
    assert_eq!(
        c.on_callout(&host, 8, Callout::Grpc { status: 0, size: 0 }),
        None
    );
    assert_eq!(
        c.on_callout(&host, 7, Callout::Grpc { status: 0, size: 0 }),
        Some(Flow::Continue)
    );
    assert_eq!(
        *seen.borrow(),
        [
            "quota:headers(false)",
            "quota:callout(8)",
            "transform:callout(8)",
            "quota:callout(7)",
            "quota:body(5,true)",
            "transform:headers(false)",
            "transform:body(5,true)",
        ]
    );
}

fn spec_parse_ok(bytes: &[u8]) -> Result<Box<dyn Stage>, ConfigError> {
    let _: serde_json::Value = crate::config_error::parse_json(bytes)?;
    if bytes.starts_with(b"{\"bad\"") {
        return Err(ConfigError::new("bad", "is bad"));
    }
    Ok(Box::new(Nothing))
}

struct Nothing;

impl Stage for Nothing {
    fn exchange(&self, _host: &dyn Host) -> Box<dyn Exchange> {
        Box::new(Passing)
    }
}

struct Passing;

impl Exchange for Passing {
    fn on_request_headers(&mut self, _host: &dyn Host, _end: bool) -> Flow {
        Flow::Continue
    }
}

fn no_counters() -> Vec<String> {
    Vec::new()
}

const SPECS: [StageSpec; 2] = [
    StageSpec {
        name: "first",
        section: "first",
        format: Format::Problem,
        counter_names: no_counters,
        parse: spec_parse_ok,
    },
    StageSpec {
        name: "second",
        section: "second",
        format: Format::Problem,
        counter_names: no_counters,
        parse: spec_parse_ok,
    },
];

#[test]
fn suite_config_sections_parse_in_stage_order_and_errors_name_the_section() {
    struct Case {
        config: &'static str,
        stages: Result<Vec<usize>, (&'static str, &'static str)>,
    }
    let cases = [
        Case {
            config: r#"{"second": {}, "first": {}}"#,
            stages: Ok(vec![0, 1]),
        },
        Case {
            config: r#"{"second": {}}"#,
            stages: Ok(vec![1]),
        },
        Case {
            config: r#"{"thrid": {}}"#,
            stages: Err(("thrid", "unknown section (known: first, second)")),
        },
        Case {
            config: r#"{}"#,
            stages: Err(("", "no section: give at least one of first, second")),
        },
        Case {
            config: r#"{"first": {"bad": 1}}"#,
            stages: Err(("first.bad", "is bad")),
        },
    ];
    for case in cases {
        let got = parse_config(&SPECS, case.config.as_bytes())
            .map(|stages| stages.iter().map(|(i, _)| *i).collect::<Vec<_>>())
            .map_err(|e| (e.path, e.message));
        let want = case
            .stages
            .clone()
            .map_err(|(p, m)| (p.to_string(), m.to_string()));
        assert_eq!(got, want, "{}", case.config);
    }
}

#[test]
fn one_spec_parses_the_filters_own_config() {
    let stages = parse_config(&SPECS[..1], br#"{"any": "thing"}"#).unwrap();
    assert_eq!(stages.len(), 1);
}

#[test]
fn the_shared_request_host_reads_the_headers_once_and_sees_the_edits() {
    let mock = MockHost::new(&[(":path", "/a"), ("x-a", "1"), ("x-a", "2")]);
    let host = RequestHost::new(&mock, true, true);
    assert_eq!(host.request_header("x-a"), Some(b"1,2".to_vec()));
    assert_eq!(host.request_header("x-b"), None);
    host.set_request_header("x-b", b"3");
    host.remove_request_header("x-a");
    assert_eq!(host.request_header("x-b"), Some(b"3".to_vec()));
    assert_eq!(host.request_header("x-a"), None);
    // One map read; the edits wait in the snapshot.
    assert_eq!(mock.host_calls(), 1);
    host.add_header(Side::Request, "x-c", b"4");
    host.flush();
    // Three edits reach Envoy as one replacement of the map.
    assert_eq!(mock.host_calls(), 2);
    assert_eq!(
        mock.calls(),
        [Call::ReplaceHeaders(vec![
            (":path".into(), b"/a".to_vec()),
            ("x-b".into(), b"3".to_vec()),
            ("x-c".into(), b"4".to_vec())
        ])]
    );
    host.flush();
    assert_eq!(mock.host_calls(), 2, "nothing left to flush");
}

#[test]
fn with_cheap_edits_the_batch_reaches_envoy_edit_by_edit() {
    let mut mock = MockHost::new(&[(":path", "/a"), ("x-a", "1")]);
    mock.cheap_edits = true;
    let host = RequestHost::new(&mock, true, true);
    assert!(host.header_edits_are_cheap());
    host.set_request_header("x-b", b"3");
    host.remove_request_header("x-a");
    host.set_request_header("x-c", b"4");
    host.flush();
    assert_eq!(
        mock.host_call_names(),
        [
            "request_headers",
            "set_request_header",
            "remove_request_header",
            "set_request_header"
        ]
    );
}

#[test]
fn a_replaced_map_reaches_envoy_as_one_replacement() {
    let mock = MockHost::new(&[(":path", "/a"), ("x-a", "1"), ("x-b", "2")]);
    let host = RequestHost::new(&mock, true, true);
    let mut headers = host.request_headers();
    headers.retain(|(k, _)| k != "x-a");
    host.replace_headers(Side::Request, &headers);
    assert_eq!(host.request_header("x-a"), None);
    host.flush();
    assert_eq!(
        mock.host_call_names(),
        ["request_headers", "replace_headers"]
    );
}

#[test]
fn one_edit_is_flushed_as_itself_and_the_route_is_read_after_the_edits() {
    let mut mock = MockHost::new(&[(":path", "/a")]);
    mock.route = Some("r".into());
    let host = RequestHost::new(&mock, true, true);
    assert_eq!(host.route_name(), Some("r".into()));
    host.set_request_header("x-b", b"3");
    // The edit may change Envoy's route: it is flushed, then the route read again.
    assert_eq!(host.route_name(), Some("r".into()));
    assert_eq!(
        mock.host_call_names(),
        [
            "route_name",
            "request_headers",
            "set_request_header",
            "route_name"
        ]
    );
    assert_eq!(host.route_name(), Some("r".into()));
    assert_eq!(mock.host_calls(), 4);
}

/// A stage that reads the body chunk by chunk (graphql-guard on a WebSocket).
struct ChunkReader {
    seen: Rc<RefCell<Vec<String>>>,
}

impl Exchange for ChunkReader {
    fn on_request_headers(&mut self, _host: &dyn Host, _end: bool) -> Flow {
        Flow::Continue
    }
    fn on_request_body(&mut self, _host: &dyn Host, size: usize, _end: bool) -> Flow {
        self.seen.borrow_mut().push(format!("ws:body({size})"));
        Flow::Continue
    }
    fn reads_body_in_chunks(&self) -> bool {
        true
    }
    fn on_request_body_unreadable(&mut self, host: &dyn Host) -> Flow {
        self.seen.borrow_mut().push("ws:unreadable".into());
        host.reset_request();
        Flow::Done
    }
}

#[test]
fn a_chunk_reader_is_never_handed_bytes_it_let_through() {
    struct Case {
        /// The later stage's answers to the body events.
        later: Vec<Flow>,
        /// The three events' results.
        flows: [Flow; 3],
        seen: &'static [&'static str],
        /// The buffer's size at each event.
        sizes: [usize; 3],
    }
    let cases = [
        // Each chunk goes on: the buffer holds only the new one, read once each.
        Case {
            later: vec![],
            flows: [Flow::Continue, Flow::Continue, Flow::Continue],
            seen: &[
                "ws:body(10)",
                "later:body(10,false)",
                "ws:body(5)",
                "later:body(5,false)",
                "ws:body(7)",
                "later:body(7,false)",
            ],
            sizes: [10, 5, 7],
        },
        // The later stage holds the first chunk: the second event's buffer starts with it, so
        // the reader refuses instead of reading the first chunk twice.
        Case {
            later: vec![Flow::WaitBody],
            flows: [Flow::WaitBody, Flow::Done, Flow::Done],
            seen: &["ws:body(10)", "later:body(10,false)", "ws:unreadable"],
            // Envoy's buffer: the kept 10 bytes and 5 new ones.
            sizes: [10, 15, 22],
        },
    ];
    for case in cases {
        let host = MockHost::default();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let later = Scripted {
            name: "later",
            seen: Rc::clone(&seen),
            headers: Flow::Continue,
            body: case.later,
            callout: Flow::Continue,
        };
        let reader = ChunkReader {
            seen: Rc::clone(&seen),
        };
        let mut c = Chain::new(vec![Box::new(reader), Box::new(later)]);
        seen.borrow_mut().clear();
        assert_eq!(c.on_request_headers(&host, false), Flow::Continue);
        seen.borrow_mut().clear();
        let got: Vec<Flow> = case
            .sizes
            .iter()
            .map(|size| c.on_request_body(&host, *size, false))
            .collect();
        assert_eq!(got, case.flows);
        assert_eq!(*seen.borrow(), case.seen);
        assert_eq!(
            host.calls().contains(&Call::Reset),
            case.flows.contains(&Flow::Done)
        );
    }
}

#[test]
fn trailers_end_the_stream_for_a_stage_that_was_waiting_for_more_body() {
    // quota waiting for the rest of a body that trailers end: as in Envoy, it gets the
    // trailers next instead of holding the request until the stream times out.
    let host = MockHost::default();
    let (mut c, seen) = chain(vec![
        ("guard", Flow::WaitBody, vec![Flow::WaitBody]),
        ("quota", Flow::Continue, vec![Flow::WaitBody]),
    ]);
    assert_eq!(c.on_request_headers(&host, false), Flow::WaitBody);
    assert_eq!(c.on_request_body(&host, 10, false), Flow::WaitBody);
    assert_eq!(c.on_request_trailers(&host), Flow::Continue);
    assert_eq!(
        *seen.borrow(),
        [
            "guard:headers(false)",
            "guard:body(10,false)",
            "guard:trailers",
            "quota:headers(false)",
            "quota:body(10,false)",
            "quota:trailers",
        ]
    );
}

#[test]
fn trailers_with_no_body_reach_a_stage_that_held_the_headers_for_one() {
    let host = MockHost::default();
    let (mut c, seen) = chain(vec![
        ("guard", Flow::Continue, vec![]),
        ("quota", Flow::WaitBody, vec![]),
    ]);
    assert_eq!(c.on_request_headers(&host, false), Flow::WaitBody);
    assert_eq!(c.on_request_trailers(&host), Flow::Continue);
    assert_eq!(
        *seen.borrow(),
        [
            "guard:headers(false)",
            "quota:headers(false)",
            "guard:trailers",
            "quota:trailers",
        ]
    );
}

#[test]
fn filter_state_is_read_again_in_each_callback() {
    // Another filter may publish between callbacks (the guard's cost while quota waited for
    // the body): an absent value read earlier must not stand for the rest of the request.
    let mock = MockHost::default();
    let host = RequestHost::new(&mock, true, true);
    assert_eq!(host.property(&[crate::context::COST]), None);
    assert_eq!(host.property(&[crate::context::COST]), None);
    assert_eq!(mock.host_calls(), 1, "within a callback, read once");
    host.next_event();
    assert_eq!(host.property(&[crate::context::COST]), None);
    assert_eq!(mock.host_calls(), 2, "a new callback reads it again");
}

#[test]
fn a_published_context_value_is_read_back_from_memory_and_still_published() {
    let mock = MockHost::default();
    let host = RequestHost::new(&mock, true, true);
    host.set_property(crate::context::CONSUMER, b"{\"id\":\"alice\"}");
    assert_eq!(
        host.property(&[crate::context::CONSUMER]),
        Some(b"{\"id\":\"alice\"}".to_vec())
    );
    assert_eq!(mock.host_calls(), 1, "published once, read from memory");
    assert_eq!(
        mock.published(crate::context::CONSUMER),
        Some(b"{\"id\":\"alice\"}".to_vec())
    );
}

#[test]
fn without_a_snapshot_headers_are_read_by_name_and_edits_go_to_envoy_at_once() {
    let mut mock = MockHost::new(&[(":path", "/a"), ("x-a", "1"), ("x-a", "2")]);
    mock.route = Some("r".into());
    let host = RequestHost::new(&mock, true, false);
    assert_eq!(host.request_header("x-a"), Some(b"1,2".to_vec()));
    assert!(!host.has_request_header("x-b"));
    assert_eq!(host.route_name(), Some("r".into()));
    assert_eq!(host.route_name(), Some("r".into()));
    host.set_request_header("x-b", b"3");
    host.remove_request_header("x-a");
    // The edits are Envoy's at once (the mock records them; a later stage reads them back from
    // Envoy), and the route, which Envoy matches again after an edit, is read again.
    let _ = host.request_header("x-b");
    assert_eq!(host.route_name(), Some("r".into()));
    host.flush();
    assert_eq!(
        mock.host_call_names(),
        [
            "request_header",
            // The mock's presence check (Envoy's is one call that copies no value in).
            "request_header",
            "route_name",
            "set_request_header",
            "remove_request_header",
            "request_header",
            "route_name"
        ]
    );
    assert_eq!(
        mock.header_changes(),
        [
            Call::SetHeader("x-b".into(), b"3".to_vec()),
            Call::RemoveHeader("x-a".into())
        ]
    );
}

#[test]
fn a_single_stage_gets_the_host_as_it_is() {
    let mock = MockHost::new(&[("x-a", "1")]);
    let host = RequestHost::new(&mock, false, false);
    assert_eq!(host.request_header("x-a"), Some(b"1".to_vec()));
    assert_eq!(host.request_header("x-a"), Some(b"1".to_vec()));
    assert_eq!(mock.host_calls(), 2);
}

/// A stage that refuses every request.
struct Refusing;

impl Exchange for Refusing {
    fn on_request_headers(&mut self, host: &dyn Host, _end: bool) -> Flow {
        let denial = crate::denial::Denial::new(403, "nope", "No", "Not you.");
        host.send_reply(&denial.render(crate::denial::Format::Problem));
        Flow::Done
    }
}

struct Named(&'static str);

impl Stage for Named {
    fn name(&self) -> &'static str {
        self.0
    }
    fn exchange(&self, _host: &dyn Host) -> Box<dyn Exchange> {
        Box::new(Passing)
    }
}

/// The access log's `apim_decision` names the stage that refused and its code, whichever stage
/// of the chain it is; an answer that is no refusal publishes nothing.
#[test]
fn a_refusal_is_published_under_the_stage_that_sent_it() {
    let stages: Configured = vec![
        (0, Box::new(Named("first"))),
        (1, Box::new(Named("second"))),
    ];
    let mock = MockHost::default();
    let host = RequestHost::for_stages(&mock, &stages);
    let mut chain = Chain::new(vec![Box::new(Passing), Box::new(Refusing)]);
    assert_eq!(chain.on_request_headers(&host, true), Flow::Done);
    let published: Vec<Call> = mock
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::SetProperty(k, _) if k == crate::denial::DECISION))
        .collect();
    assert_eq!(
        published,
        [Call::SetProperty(
            crate::denial::DECISION.to_string(),
            b"second:nope".to_vec()
        )]
    );

    let quiet = MockHost::default();
    let host = RequestHost::for_stages(&quiet, &stages);
    let reply = crate::denial::Reply {
        status: 200,
        headers: Vec::new(),
        body: Vec::new(),
        code: None,
    };
    host.send_reply(&reply);
    assert!(
        !quiet
            .calls()
            .iter()
            .any(|c| matches!(c, Call::SetProperty(..))),
        "{:?}",
        quiet.calls()
    );
}
