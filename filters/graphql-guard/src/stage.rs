//! graphql-guard as a stage of `kit::stage`: each request is handed to [`crate::handler`],
//! which may hold the headers (`hold_headers`) and the body until it has judged the operation,
//! or read a WebSocket's frames as they pass; the APQ registry lives in shared data. The same
//! stage runs in `graphql_guard.wasm` and the suite.

use crate::apq::SharedData;
use crate::config::{Config, Limits};
use crate::handler::{self, BodyAction, Env, HeadersAction, Pending, WsAction};
use crate::ws::FrameReader;
use kit::config_error::ConfigError;
use kit::denial::Format;
use kit::host::{Host, Side};
use kit::metrics::Counters;
use kit::stage::{Exchange, Flow, Stage, StageSpec};
use std::rc::Rc;

pub const SPEC: StageSpec = StageSpec {
    name: "graphql-guard",
    section: "graphql_guard",
    format: Format::GraphQlResponse,
    counter_names: handler::counter_names,
    parse,
};

fn parse(bytes: &[u8]) -> Result<Box<dyn Stage>, ConfigError> {
    Ok(Box::new(GraphqlGuard {
        config: Rc::new(Config::parse(bytes)?),
        counters: Rc::default(),
    }))
}

struct GraphqlGuard {
    config: Rc<Config>,
    counters: Rc<Counters>,
}

impl Stage for GraphqlGuard {
    fn name(&self) -> &'static str {
        SPEC.name
    }
    fn activate(&mut self, _host: &dyn Host, counters: Rc<Counters>) {
        self.counters = counters;
    }
    fn exchange(&self, _host: &dyn Host) -> Box<dyn Exchange> {
        Box::new(Request {
            config: Rc::clone(&self.config),
            counters: Rc::clone(&self.counters),
            pending: None,
            body_size: 0,
            ws: None,
        })
    }
}

struct Request {
    config: Rc<Config>,
    counters: Rc<Counters>,
    pending: Option<Pending>,
    /// What Envoy has buffered so far, for a check that ends at the trailers.
    body_size: usize,
    /// An inspected WebSocket: the plan's limits and the frame reader.
    ws: Option<(Limits, FrameReader)>,
}

impl Exchange for Request {
    fn on_request_headers(&mut self, host: &dyn Host, end_of_stream: bool) -> Flow {
        let apq = SharedData(host);
        let env = Env::new(host, &apq, &self.config, &self.counters);
        match handler::on_request_headers(env, end_of_stream) {
            HeadersAction::Continue => Flow::Continue,
            HeadersAction::Stop => Flow::Done,
            HeadersAction::Websocket(limits) => {
                // No extension (permessage-deflate) may be negotiated: the frames must be
                // readable as sent.
                host.remove_request_header("sec-websocket-extensions");
                self.ws = Some((
                    limits,
                    FrameReader::new(self.config.websocket_max_message_bytes),
                ));
                Flow::Continue
            }
            HeadersAction::NeedBody(p) => {
                self.pending = Some(p);
                if self.config.hold_headers {
                    // StopIteration: the headers wait here until the body is judged, so no
                    // later filter (quota) sees a request the guard then refuses. Envoy
                    // passes it through only with `allow_on_headers_stop_iteration: true`
                    // in the Wasm config; otherwise it becomes StopAllIterationAndWatermark
                    // and the body callback never runs (proxy-wasm-cpp-host#143).
                    Flow::WaitBody
                } else {
                    // The headers go on; the body is held (Pause in the body callback) until
                    // it is complete and checked. A refusal resets the upstream request.
                    Flow::Continue
                }
            }
        }
    }

    fn reads_body_in_chunks(&self) -> bool {
        self.ws.is_some()
    }

    /// In the suite, a later stage holds the WebSocket's bytes: the frames cannot be read once
    /// each, so the stream is refused as unreadable (counted, logged, reset).
    fn on_request_body_unreadable(&mut self, host: &dyn Host) -> Flow {
        let apq = SharedData(host);
        let env = Env::new(host, &apq, &self.config, &self.counters);
        let _ = handler::on_websocket_unreadable(env);
        host.reset_request();
        Flow::Done
    }

    fn on_request_body(&mut self, host: &dyn Host, body_size: usize, end_of_stream: bool) -> Flow {
        if let Some((limits, reader)) = &mut self.ws {
            // Each chunk is passed on once read (Continue), so the buffer holds only this one.
            let read = if body_size == 0 {
                Some(Vec::new())
            } else {
                host.body(Side::Request, 0, body_size)
            };
            let apq = SharedData(host);
            let env = Env::new(host, &apq, &self.config, &self.counters);
            let action = match read {
                Some(bytes) => handler::on_websocket_data(env, limits, reader, &bytes),
                None => handler::on_websocket_unreadable(env),
            };
            return match action {
                WsAction::Continue => Flow::Continue,
                WsAction::Close => {
                    host.reset_request();
                    Flow::Done
                }
            };
        }
        let Some(pending) = &self.pending else {
            return Flow::Continue;
        };
        self.body_size = body_size;
        let action = handler::on_request_body(
            Env::new(host, &SharedData(host), &self.config, &self.counters),
            pending,
            body_size,
            end_of_stream,
            || host.body(Side::Request, 0, body_size),
        );
        match action {
            BodyAction::Buffer => Flow::WaitBody,
            BodyAction::Continue => {
                self.pending = None;
                Flow::Continue
            }
            BodyAction::Stop => {
                self.pending = None;
                Flow::Done
            }
        }
    }

    /// A body followed by trailers never reports its end in the body callback: check it here,
    /// or the trailers' Continue would release an unchecked body. A body that cannot be read
    /// here is refused (fail closed).
    fn on_request_trailers(&mut self, host: &dyn Host) -> Flow {
        let Some(pending) = &self.pending else {
            return Flow::Continue;
        };
        let size = self.body_size;
        let action = handler::on_request_body(
            Env::new(host, &SharedData(host), &self.config, &self.counters),
            pending,
            size,
            true,
            || host.body(Side::Request, 0, size),
        );
        self.pending = None;
        match action {
            BodyAction::Continue => Flow::Continue,
            BodyAction::Buffer | BodyAction::Stop => Flow::Done,
        }
    }
}
