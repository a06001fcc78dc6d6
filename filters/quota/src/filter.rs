//! proxy-wasm glue: the root context parses and swaps the config and creates the shared-data
//! slots; the HTTP context hands each request to [`crate::handler`] and adds the rate-limit
//! fields to the response. Nothing here decides anything.

use crate::config::Config;
use crate::handler::{self, COUNTER_NAMES};
use crate::store::{
    confirmed_hash_key, init_slots, random_key, shared_hash_key, HashKey, SetResult, SharedStore,
};
use kit::denial::{Denial, Format};
use kit::host::{Host, LogLevel};
use kit::metrics::Counters;
use kit::proxy_host::ProxyHost;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, MapType, Status};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// Shared data of this VM id over proxy-wasm.
struct ProxyStore;

impl SharedStore for ProxyStore {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> SetResult {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => SetResult::Ok,
            Err(Status::CasMismatch) => SetResult::CasMismatch,
            Err(_) => SetResult::Failed,
        }
    }
}

#[derive(Default)]
struct Root {
    config: Option<Rc<Config>>,
    counters: Rc<Counters>,
    /// The slot-hash key: the config's `slot_key`, or the process's random one.
    hash_key: Cell<HashKey>,
    /// The random key was re-read from shared data on the first request (two VMs configuring
    /// at once could each have kept their own).
    key_confirmed: Cell<bool>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let host = ProxyHost;
        let bytes = kit::proxy_host::calls::plugin_configuration();
        match Config::parse(&bytes) {
            Ok(config) => {
                if self.config.is_none() {
                    self.counters = Rc::new(Counters::define(&host, &COUNTER_NAMES));
                }
                // Only missing slots are created: counts survive a config update.
                init_slots(&ProxyStore);
                let (key, confirmed) = match config.slot_key {
                    Some(k) => (k, true),
                    None => (shared_hash_key(&ProxyStore, random_key()), false),
                };
                self.hash_key.set(key);
                self.key_confirmed.set(confirmed);
                for w in &config.warnings {
                    host.log(LogLevel::Warn, &format!("quota: {w}"));
                }
                self.config = Some(Rc::new(config));
                true
            }
            Err(e) => {
                // The filter's last word on this config: Envoy's own lines follow.
                kit::config_refusal::log(&host, "quota", &e);
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        if !self.key_confirmed.get() && self.config.is_some() {
            self.hash_key
                .set(confirmed_hash_key(&ProxyStore, self.hash_key.get()));
            self.key_confirmed.set(true);
        }
        Some(Box::new(Http {
            config: self.config.clone(),
            counters: Rc::clone(&self.counters),
            hash_key: self.hash_key.get(),
            response_headers: Vec::new(),
            deferred: None,
            pending_global: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    config: Option<Rc<Config>>,
    counters: Rc<Counters>,
    hash_key: HashKey,
    response_headers: Vec<(String, String)>,
    /// Waiting for the end of the body before counting (see `on_http_request_headers`), with
    /// what the headers callback read.
    deferred: Option<handler::Gathered>,
    /// The plan a `ShouldRateLimit` call in flight is about.
    pending_global: Option<usize>,
}

const RLS_SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
const RLS_METHOD: &str = "ShouldRateLimit";

impl Http {
    /// The backstop: a request still waiting for its cost when the response starts or the
    /// stream ends is charged now (counted `charged_late`), never left uncharged.
    fn charge_deferred_late(&mut self) {
        let (Some(gathered), Some(config)) = (self.deferred.take(), self.config.clone()) else {
            return;
        };
        let host = ProxyHost;
        let cost = handler::published_cost(&host, &config);
        let call = handler::charge_late(
            &host,
            &ProxyStore,
            &self.hash_key,
            &config,
            &self.counters,
            &gathered,
            cost.as_deref(),
        );
        if let (Some(call), Some(global)) = (call, &config.global) {
            // Sent without waiting: the response is the upstream's already.
            let _ = self.dispatch_grpc_call(
                &global.cluster,
                RLS_SERVICE,
                RLS_METHOD,
                Vec::<(&str, &[u8])>::new(),
                Some(&call.message),
                Duration::from_millis(global.timeout_ms),
            );
        }
    }

    /// Counts a request whose cost was waiting for the end of its body.
    fn count_deferred(&mut self) -> Action {
        let (Some(gathered), Some(config)) = (self.deferred.take(), self.config.clone()) else {
            return Action::Continue;
        };
        let host = ProxyHost;
        let cost = handler::published_cost(&host, &config);
        let action = handler::decide(
            &host,
            &ProxyStore,
            &self.hash_key,
            &config,
            &self.counters,
            &gathered,
            cost.as_deref(),
        );
        self.apply(action)
    }

    fn apply(&mut self, action: handler::Action) -> Action {
        match action {
            handler::Action::Continue(headers) => {
                self.response_headers = headers;
                Action::Continue
            }
            handler::Action::Stop => Action::Pause,
            handler::Action::Global(call) => self.ask_global(call),
        }
    }

    /// Sends `ShouldRateLimit` and holds the request until the answer (or the timeout).
    fn ask_global(&mut self, call: handler::GlobalCall) -> Action {
        let Some(config) = self.config.clone() else {
            return Action::Continue;
        };
        let Some(global) = &config.global else {
            return Action::Continue;
        };
        let sent = self.dispatch_grpc_call(
            &global.cluster,
            RLS_SERVICE,
            RLS_METHOD,
            Vec::<(&str, &[u8])>::new(),
            Some(&call.message),
            Duration::from_millis(global.timeout_ms),
        );
        match sent {
            Ok(_) => {
                self.pending_global = Some(call.plan);
                Action::Pause
            }
            Err(e) => {
                let action = handler::on_global_response(
                    &ProxyHost,
                    &config,
                    &self.counters,
                    call.plan,
                    Err(format!("dispatch to cluster {}: {e:?}", global.cluster)),
                );
                self.apply(action)
            }
        }
    }
}

impl Context for Http {
    fn on_grpc_call_response(&mut self, _token_id: u32, status_code: u32, response_size: usize) {
        let (Some(plan), Some(config)) = (self.pending_global.take(), self.config.clone()) else {
            return;
        };
        let answer = if status_code == 0 {
            kit::proxy_host::calls::grpc_response_body(0, response_size)
                .ok_or_else(|| "an empty answer".to_string())
                .and_then(|b| {
                    crate::rls::decode_response(&b).map_err(|_| "a malformed answer".to_string())
                })
        } else {
            Err(format!("gRPC status {status_code}"))
        };
        let action = handler::on_global_response(&ProxyHost, &config, &self.counters, plan, answer);
        if let Action::Continue = self.apply(action) {
            if !kit::proxy_host::calls::resume_request() {
                ProxyHost.log(
                    LogLevel::Warn,
                    "quota: the paused request could not be resumed",
                );
            }
        }
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let host = ProxyHost;
        let Some(config) = self.config.clone() else {
            let d = Denial::new(
                503,
                "not_configured",
                "Filter not configured",
                "The quota filter has no valid configuration.",
            );
            host.send_reply(&d.render(Format::Problem));
            return Action::Pause;
        };
        if config.cost_from_filter_state && !end_of_stream {
            // graphql-guard publishes `apim_cost` once it has read the whole body. When it is
            // already here (the guard held the headers until it had judged the body) or the
            // request is not counted whatever its cost (a skip rule…), decide now and never
            // hold the body. Otherwise count at the end of the body, holding it until then (a
            // Pause on headers would stop Envoy from calling the body callbacks,
            // proxy-wasm-cpp-host#143).
            return match handler::at_headers_with_body(
                &host,
                &ProxyStore,
                &self.hash_key,
                &config,
                &self.counters,
            ) {
                handler::AtHeaders::Defer(gathered) => {
                    self.deferred = Some(*gathered);
                    Action::Continue
                }
                handler::AtHeaders::Decided(action) => self.apply(action),
            };
        }
        let action = handler::on_request_headers(
            &host,
            &ProxyStore,
            &self.hash_key,
            &config,
            &self.counters,
        );
        self.apply(action)
    }

    fn on_http_request_body(&mut self, _body_size: usize, end_of_stream: bool) -> Action {
        if self.deferred.is_none() {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.count_deferred()
    }

    /// A body followed by trailers never reports its end in the body callback: the request is
    /// counted here, or the trailers' Continue would release it uncounted.
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.deferred.is_none() {
            return Action::Continue;
        }
        self.count_deferred()
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.charge_deferred_late();
        for (name, value) in std::mem::take(&mut self.response_headers) {
            let _ = hostcalls::add_map_value(MapType::HttpResponseHeaders, &name, &value);
        }
        Action::Continue
    }

    /// A stream that ends without a response (the client reset it mid-body).
    fn on_log(&mut self) {
        self.charge_deferred_late();
    }
}
