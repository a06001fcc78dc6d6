//! proxy-wasm glue: `kit::plugin::Root` parses and swaps the config; the HTTP context hands each
//! callback to [`crate::handler::Exchange`] through [`Host`], the [`Io`] over host calls.
//! Nothing here decides anything.

use crate::config::Config;
use crate::graphql::Call;
use crate::handler::{self, Counter, Exchange, Io, Side, COUNTER_NAMES};
use crate::headers::Edit;
use kit::denial::{Denial, Format, Reply};
use kit::host::{Host as _, LogLevel};
use kit::metrics::Counters;
use kit::plugin::{Plugin, Root};
use kit::proxy_host::ProxyHost;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, MapType};
use std::rc::Rc;
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::<Transform>::default()) });
}}

struct Transform;

impl Plugin for Transform {
    const NAME: &'static str = "transform";
    type Config = Config;

    fn parse(bytes: &[u8]) -> Result<Config, kit::config_error::ConfigError> {
        Config::parse(bytes)
    }

    fn counter_names() -> Vec<String> {
        COUNTER_NAMES.iter().map(|n| (*n).to_string()).collect()
    }

    fn http_context(config: Rc<Config>, counters: Rc<Counters>) -> Box<dyn HttpContext> {
        Box::new(Http {
            exchange: Some(Exchange::new(config)),
            host: Host { counters },
        })
    }
}

/// [`Io`] over proxy-wasm host calls; a failed call is logged or read as absent.
struct Host {
    counters: Rc<Counters>,
}

fn map(side: Side) -> MapType {
    match side {
        Side::Request => MapType::HttpRequestHeaders,
        Side::Response => MapType::HttpResponseHeaders,
    }
}

fn buffer(side: Side) -> BufferType {
    match side {
        Side::Request => BufferType::HttpRequestBody,
        Side::Response => BufferType::HttpResponseBody,
    }
}

impl Io for Host {
    fn headers(&self, side: Side) -> Vec<(String, Vec<u8>)> {
        hostcalls::get_map_bytes(map(side)).unwrap_or_default()
    }
    fn route_name(&self) -> Option<String> {
        ProxyHost.route_name()
    }
    fn property(&self, key: &str) -> Option<Vec<u8>> {
        ProxyHost.property(&[key])
    }
    fn edit(&self, side: Side, edit: &Edit) {
        let result = match edit {
            Edit::Remove(n) => hostcalls::remove_map_value(map(side), n),
            Edit::Set(n, v) => hostcalls::set_map_value_bytes(map(side), n, Some(v)),
            Edit::Append(n, v) => hostcalls::add_map_value_bytes(map(side), n, v),
        };
        if let Err(e) = result {
            self.warn(&format!("transform: header edit {edit:?} failed: {e:?}"));
        }
    }
    fn set_headers(&self, side: Side, headers: &[(String, Vec<u8>)]) {
        let pairs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        if let Err(e) = hostcalls::set_map_bytes(map(side), pairs) {
            self.warn(&format!("transform: replacing the headers failed: {e:?}"));
        }
    }
    fn body(&self, side: Side, size: usize) -> Option<Vec<u8>> {
        hostcalls::get_buffer(buffer(side), 0, size).ok().flatten()
    }
    fn set_body(&self, side: Side, size: usize, body: &[u8]) {
        if let Err(e) = hostcalls::set_buffer(buffer(side), 0, size, body) {
            self.warn(&format!("transform: replacing the body failed: {e:?}"));
        }
    }
    fn send_reply(&self, reply: &Reply) {
        ProxyHost.send_reply(reply);
    }
    fn dispatch(&self, call: &Call) -> bool {
        let headers: Vec<(&str, &str)> = call
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), core::str::from_utf8(v).ok()?)))
            .collect();
        match hostcalls::dispatch_http_call(
            &call.cluster,
            headers,
            Some(&call.body),
            Vec::new(),
            Duration::from_millis(call.timeout_ms),
        ) {
            Ok(_) => true,
            Err(e) => {
                self.warn(&format!(
                    "transform: calling cluster {} failed: {e:?}",
                    call.cluster
                ));
                false
            }
        }
    }
    fn count(&self, counter: Counter) {
        self.counters.inc(&ProxyHost, counter as usize);
    }
    fn warn(&self, message: &str) {
        ProxyHost.log(LogLevel::Warn, message);
    }
}

struct Http {
    exchange: Option<Exchange>,
    host: Host,
}

fn action(a: handler::Action) -> Action {
    match a {
        handler::Action::Continue => Action::Continue,
        handler::Action::Pause => Action::Pause,
    }
}

impl Context for Http {
    fn on_http_call_response(&mut self, _token: u32, _headers: usize, body_size: usize, _t: usize) {
        let Some(ex) = self.exchange.as_mut() else {
            return;
        };
        let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|s| s.parse::<u16>().ok());
        let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten();
        ex.on_graphql_response(&self.host, status, body.as_deref());
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(ex) = self.exchange.as_mut() else {
            // Unreachable while Envoy honours on_configure's false; fail closed all the same.
            let d = Denial::new(
                503,
                "not_configured",
                "Filter not configured",
                "The transform filter has no valid configuration.",
            );
            ProxyHost.send_reply(&d.render(Format::Problem));
            return Action::Pause;
        };
        action(ex.on_request_headers(&self.host, end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match self.exchange.as_mut() {
            Some(ex) => action(ex.on_request_body(&self.host, body_size, end_of_stream)),
            None => Action::Continue,
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        match self.exchange.as_mut() {
            Some(ex) => action(ex.on_request_trailers(&self.host)),
            None => Action::Continue,
        }
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        match self.exchange.as_mut() {
            Some(ex) => action(ex.on_response_trailers(&self.host)),
            None => Action::Continue,
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        match self.exchange.as_mut() {
            Some(ex) => action(ex.on_response_headers(&self.host, end_of_stream)),
            None => Action::Continue,
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match self.exchange.as_mut() {
            Some(ex) => action(ex.on_response_body(&self.host, body_size, end_of_stream)),
            None => Action::Continue,
        }
    }
}
