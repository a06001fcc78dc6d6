//! transform as a stage of `kit::stage`: each request and its response are handed to
//! [`crate::handler::Exchange`] through [`Io`] over the host. The same stage runs in
//! `transform.wasm` and the suite.

use crate::config::Config;
use crate::graphql::Call;
use crate::handler::{self, Counter, Io, Side, COUNTER_NAMES};
use crate::headers::Edit;
use kit::config_error::ConfigError;
use kit::denial::{Format, Reply};
use kit::host::{Host, LogLevel};
use kit::metrics::Counters;
use kit::stage::{Callout, Exchange, Flow, Stage, StageSpec};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

pub const SPEC: StageSpec = StageSpec {
    name: "transform",
    section: "transform",
    format: Format::Problem,
    counter_names,
    parse,
};

fn counter_names() -> Vec<String> {
    COUNTER_NAMES.iter().map(|n| (*n).to_string()).collect()
}

fn parse(bytes: &[u8]) -> Result<Box<dyn Stage>, ConfigError> {
    Ok(Box::new(Transform {
        config: Rc::new(Config::parse(bytes)?),
        counters: Rc::default(),
    }))
}

struct Transform {
    config: Rc<Config>,
    counters: Rc<Counters>,
}

impl Stage for Transform {
    fn name(&self) -> &'static str {
        SPEC.name
    }
    fn activate(&mut self, _host: &dyn Host, counters: Rc<Counters>) {
        self.counters = counters;
    }
    fn reads_request_header_map(&self) -> bool {
        // Every request a rule matches has its whole header map read (`handler::Exchange`).
        !self.config.rules.is_empty()
    }
    fn exchange(&self, _host: &dyn Host) -> Box<dyn Exchange> {
        Box::new(Request {
            exchange: handler::Exchange::new(Rc::clone(&self.config)),
            counters: Rc::clone(&self.counters),
            awaited: None,
        })
    }
}

/// [`Io`] over the host, noting what a `Pause` means: a reply was sent, or a GraphQL call is
/// waited for, or else the body is.
struct HostIo<'a> {
    host: &'a dyn Host,
    counters: &'a Counters,
    replied: Cell<bool>,
    called: Cell<Option<u32>>,
}

impl<'a> HostIo<'a> {
    fn new(host: &'a dyn Host, counters: &'a Counters) -> Self {
        Self {
            host,
            counters,
            replied: Cell::new(false),
            called: Cell::new(None),
        }
    }

    fn flow(&self, action: handler::Action) -> Flow {
        match action {
            handler::Action::Continue => Flow::Continue,
            handler::Action::Pause if self.replied.get() => Flow::Done,
            handler::Action::Pause => match self.called.get() {
                Some(token) => Flow::WaitCallout(token),
                None => Flow::WaitBody,
            },
        }
    }
}

impl Io for HostIo<'_> {
    fn headers(&self, side: Side) -> Vec<(String, Vec<u8>)> {
        self.host.headers(side)
    }
    fn route_name(&self) -> Option<String> {
        self.host.route_name()
    }
    fn property(&self, key: &str) -> Option<Vec<u8>> {
        self.host.property(&[key])
    }
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        self.host.request_header(name)
    }
    fn identity(&self) -> Option<kit::identity::Identity> {
        self.host.identity().flatten()
    }
    fn edit(&self, side: Side, edit: &Edit) {
        match edit {
            Edit::Remove(n) => self.host.remove_header(side, n),
            Edit::Set(n, v) => self.host.set_header(side, n, v),
            Edit::Append(n, v) => self.host.add_header(side, n, v),
        }
    }
    fn set_headers(&self, side: Side, headers: &[(String, Vec<u8>)]) {
        self.host.replace_headers(side, headers);
    }
    fn edits_are_cheap(&self) -> bool {
        self.host.header_edits_are_cheap()
    }
    fn body(&self, side: Side, size: usize) -> Option<Vec<u8>> {
        self.host.body(side, 0, size)
    }
    fn set_body(&self, side: Side, size: usize, body: &[u8]) {
        self.host.set_body(side, 0, size, body);
    }
    fn send_reply(&self, reply: &Reply) {
        self.replied.set(true);
        self.host.send_reply(reply);
    }
    fn dispatch(&self, call: &Call) -> bool {
        let headers: Vec<(&str, &str)> = call
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), core::str::from_utf8(v).ok()?)))
            .collect();
        match self.host.http_call(
            &call.cluster,
            &headers,
            Some(&call.body),
            Duration::from_millis(call.timeout_ms),
        ) {
            Ok(token) => {
                self.called.set(Some(token));
                true
            }
            Err(e) => {
                self.warn(&format!(
                    "transform: calling cluster {} failed: {e}",
                    call.cluster
                ));
                false
            }
        }
    }
    fn count(&self, counter: Counter) {
        self.counters.inc(self.host, counter as usize);
    }
    fn warn(&self, message: &str) {
        self.host.log(LogLevel::Warn, message);
    }
}

struct Request {
    exchange: handler::Exchange,
    counters: Rc<Counters>,
    /// The token of the GraphQL call this request waits for: only its answer is turned into
    /// the client's response.
    awaited: Option<u32>,
}

impl Request {
    fn track(&mut self, flow: Flow) -> Flow {
        if let Flow::WaitCallout(token) = flow {
            self.awaited = Some(token);
        }
        flow
    }
}

impl Exchange for Request {
    fn on_request_headers(&mut self, host: &dyn Host, end_of_stream: bool) -> Flow {
        let io = HostIo::new(host, &self.counters);
        let flow = io.flow(self.exchange.on_request_headers(&io, end_of_stream));
        self.track(flow)
    }
    fn on_request_body(&mut self, host: &dyn Host, size: usize, end_of_stream: bool) -> Flow {
        let io = HostIo::new(host, &self.counters);
        let flow = io.flow(self.exchange.on_request_body(&io, size, end_of_stream));
        self.track(flow)
    }
    fn on_request_trailers(&mut self, host: &dyn Host) -> Flow {
        let io = HostIo::new(host, &self.counters);
        let flow = io.flow(self.exchange.on_request_trailers(&io));
        self.track(flow)
    }
    fn on_response_headers(&mut self, host: &dyn Host, end_of_stream: bool) -> Flow {
        let io = HostIo::new(host, &self.counters);
        let flow = io.flow(self.exchange.on_response_headers(&io, end_of_stream));
        self.track(flow)
    }
    fn on_response_body(&mut self, host: &dyn Host, size: usize, end_of_stream: bool) -> Flow {
        let io = HostIo::new(host, &self.counters);
        let flow = io.flow(self.exchange.on_response_body(&io, size, end_of_stream));
        self.track(flow)
    }
    fn on_response_trailers(&mut self, host: &dyn Host) -> Flow {
        let io = HostIo::new(host, &self.counters);
        let flow = io.flow(self.exchange.on_response_trailers(&io));
        self.track(flow)
    }
    /// The GraphQL server answered: the reply is sent from its answer.
    fn on_callout(&mut self, host: &dyn Host, token: u32, answer: Callout) -> Flow {
        let Callout::Http { body_size } = answer else {
            return Flow::Continue;
        };
        if self.awaited != Some(token) {
            // Not the answer this request waits for: it must not become the response.
            return Flow::Continue;
        }
        self.awaited = None;
        let io = HostIo::new(host, &self.counters);
        let status = host
            .http_call_response_header(":status")
            .and_then(|s| s.parse::<u16>().ok());
        // An answer over the body limit is refused without copying it into the VM.
        let body = (body_size <= self.exchange.max_body_bytes())
            .then(|| host.http_call_response_body(body_size))
            .flatten();
        let answer = crate::graphql::Answer {
            size: body_size,
            body: body.as_deref(),
        };
        self.exchange.on_graphql_response(&io, status, &answer);
        Flow::Done
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use kit::host::MockHost;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn run(config: &str, host: &MockHost) -> Flow {
        let mut stage = parse(config.as_bytes()).unwrap();
        let names = counter_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        stage.activate(host, Rc::new(Counters::define(host, &names)));
        stage.exchange(host).on_request_headers(host, true)
    }

    #[test]
    fn only_the_awaited_graphql_answer_is_read_and_never_one_over_the_body_limit() {
        let config = r#"{"max_body_bytes": 1024, "rules": [{
            "match": {"path": {"prefix": "/pets"}, "methods": ["GET"]},
            "graphql": {"cluster": "gql", "path": "/graphql", "query": "{ pets { id } }"}}]}"#;
        for (size, read) in [(1024, true), (1025, false), (usize::MAX, false)] {
            let host = MockHost::new(&[(":path", "/pets"), (":method", "GET")]);
            let mut stage = parse(config.as_bytes()).unwrap();
            stage.activate(&host, Rc::default());
            let mut exchange = stage.exchange(&host);
            let Flow::WaitCallout(token) = exchange.on_request_headers(&host, true) else {
                panic!("a GraphQL call")
            };
            let answer = Callout::Http { body_size: size };
            // Another call's answer is not this request's response.
            let other = exchange.on_callout(&host, token.wrapping_add(1), answer);
            assert_eq!(other, Flow::Continue, "{size}");
            assert!(host.reply().is_none(), "{size}");
            let flow = exchange.on_callout(&host, token, answer);
            assert_eq!(flow, Flow::Done, "{size}");
            assert_eq!(
                host.host_call_names().contains(&"http_call_response_body"),
                read,
                "{size}"
            );
            // The mock's answer has no status: 502 either way.
            assert_eq!(host.reply().map(|r| r.status), Some(502), "{size}");
        }
    }

    #[test]
    fn edits_go_one_by_one_where_they_are_cheap_and_as_one_map_where_not() {
        let config = r#"{"rules": [{"request": {"headers": {"remove": ["x-debug"],
            "rename": {"x-old": "x-new"}, "add": {"x-added": "1"}}}}]}"#;
        for cheap in [false, true] {
            let mut host = MockHost::new(&[
                (":path", "/"),
                (":method", "GET"),
                ("x-debug", "1"),
                ("x-old", "moved"),
            ]);
            host.cheap_edits = cheap;
            assert_eq!(run(config, &host), Flow::Continue);
            let calls = host.host_call_names();
            assert_eq!(calls.contains(&"replace_headers"), !cheap, "{calls:?}");
            assert_eq!(calls.contains(&"remove_request_header"), cheap, "{calls:?}");
            assert_eq!(host.counter("apim.transform.applied"), 1);
        }
    }

    #[test]
    fn a_request_no_rule_matches_costs_no_copy_of_the_header_map() {
        let config = r#"{"rules": [{"match": {"path": {"prefix": "/v2/"}},
            "request": {"headers": {"add": {"x-a": "1"}}}}]}"#;
        let host = MockHost::new(&[(":path", "/v1/x"), (":method", "GET"), ("x-b", "2")]);
        assert_eq!(run(config, &host), Flow::Continue);
        assert_eq!(host.counter("apim.transform.skipped.no_rule"), 1);
        let calls = host.host_call_names();
        assert_eq!(
            calls[calls.len() - 2..],
            ["request_header", "increment_counter"]
        );
        // A match reads the whole map to edit it.
        let host = MockHost::new(&[(":path", "/v2/x"), (":method", "GET")]);
        assert_eq!(run(config, &host), Flow::Continue);
        assert!(host.host_call_names().contains(&"request_headers"));
        assert_eq!(host.counter("apim.transform.applied"), 1);
    }
}
