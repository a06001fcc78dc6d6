//! proxy-wasm glue: `kit::plugin::Root` parses and swaps the config; the HTTP context hands
//! each request to [`crate::handler`], holds the headers (with `hold_headers`) and buffers the
//! body it must judge, and backs the APQ registry with shared data. Nothing here decides anything.

use crate::apq::SharedData;
use crate::config::Config;
use crate::config::Limits;
use crate::handler::{self, BodyAction, Env, HeadersAction, Pending, WsAction};
use crate::ws::FrameReader;
use kit::denial::Format;
use kit::host::Host;
use kit::metrics::Counters;
use kit::plugin::{Plugin, Root};
use kit::proxy_host::ProxyHost;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::Action;
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::<GraphqlGuard>::default()) });
}}

struct GraphqlGuard;

impl Plugin for GraphqlGuard {
    const NAME: &'static str = "graphql-guard";
    const FORMAT: Format = Format::GraphQlResponse;
    type Config = Config;

    fn parse(bytes: &[u8]) -> Result<Config, kit::config_error::ConfigError> {
        Config::parse(bytes)
    }

    fn counter_names() -> Vec<String> {
        handler::counter_names()
    }

    fn http_context(config: Rc<Config>, counters: Rc<Counters>) -> Box<dyn HttpContext> {
        Box::new(Http {
            config,
            counters,
            pending: None,
            body_size: 0,
            ws: None,
        })
    }
}

struct Http {
    config: Rc<Config>,
    counters: Rc<Counters>,
    pending: Option<Pending>,
    /// What Envoy has buffered so far, for a check that ends at the trailers.
    body_size: usize,
    /// An inspected WebSocket: the plan's limits and the frame reader.
    ws: Option<(Limits, FrameReader)>,
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let host = ProxyHost;
        let env = Env::new(&host, &SharedData, &self.config, &self.counters);
        match handler::on_request_headers(env, end_of_stream) {
            HeadersAction::Continue => Action::Continue,
            HeadersAction::Stop => Action::Pause,
            HeadersAction::Websocket(limits) => {
                // No extension (permessage-deflate) may be negotiated: the frames must be
                // readable as sent.
                host.remove_request_header("sec-websocket-extensions");
                self.ws = Some((
                    limits,
                    FrameReader::new(self.config.websocket_max_message_bytes),
                ));
                Action::Continue
            }
            HeadersAction::NeedBody(p) => {
                self.pending = Some(p);
                if self.config.hold_headers {
                    // StopIteration: the headers wait here until the body is judged, so no
                    // later filter (quota) sees a request the guard then refuses. Envoy
                    // passes it through only with `allow_on_headers_stop_iteration: true`
                    // in the Wasm config; otherwise it becomes StopAllIterationAndWatermark
                    // and the body callback never runs (proxy-wasm-cpp-host#143).
                    Action::Pause
                } else {
                    // The headers go on; the body is held (Pause in the body callback) until
                    // it is complete and checked. A refusal resets the upstream request.
                    Action::Continue
                }
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some((limits, reader)) = &mut self.ws {
            // Each chunk is passed on once read (Continue), so the buffer holds only this one.
            let read = if body_size == 0 {
                Some(Vec::new())
            } else {
                kit::proxy_host::calls::request_body(0, body_size)
            };
            let host = ProxyHost;
            let env = Env::new(&host, &SharedData, &self.config, &self.counters);
            let action = match read {
                Some(bytes) => handler::on_websocket_data(env, limits, reader, &bytes),
                None => handler::on_websocket_unreadable(env),
            };
            return match action {
                WsAction::Continue => Action::Continue,
                WsAction::Close => {
                    let _ = proxy_wasm::hostcalls::reset_http_request();
                    Action::Pause
                }
            };
        }
        let (config, Some(pending)) = (&self.config, &self.pending) else {
            return Action::Continue;
        };
        self.body_size = body_size;
        let host = ProxyHost;
        let action = handler::on_request_body(
            Env::new(&host, &SharedData, config, &self.counters),
            pending,
            body_size,
            end_of_stream,
            || kit::proxy_host::calls::request_body(0, body_size),
        );
        match action {
            BodyAction::Buffer => Action::Pause,
            BodyAction::Continue => {
                self.pending = None;
                Action::Continue
            }
            BodyAction::Stop => {
                self.pending = None;
                Action::Pause
            }
        }
    }

    /// A body followed by trailers never reports its end in the body callback: check it here,
    /// or the trailers' Continue would release an unchecked body. A body that cannot be read
    /// here is refused (fail closed).
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let (config, Some(pending)) = (&self.config, &self.pending) else {
            return Action::Continue;
        };
        let host = ProxyHost;
        let size = self.body_size;
        let action = handler::on_request_body(
            Env::new(&host, &SharedData, config, &self.counters),
            pending,
            size,
            true,
            || kit::proxy_host::calls::request_body(0, size),
        );
        self.pending = None;
        match action {
            BodyAction::Continue => Action::Continue,
            BodyAction::Buffer | BodyAction::Stop => Action::Pause,
        }
    }
}
