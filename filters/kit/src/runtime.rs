//! The one proxy-wasm root for any list of stages: a filter's own module registers its one
//! spec, `apim_suite.wasm` all five (see [`crate::stage`]).
//!
//! The root parses each configuration Envoy delivers: a bad one is logged with the field path
//! (`kit::config_refusal`) and refused, so Envoy exits at bootstrap or rejects the update; a good
//! one replaces the previous stages for new requests while requests in flight keep theirs.
//! Counters are defined once per VM per filter. The timer runs at the shortest period any stage
//! asks for and ticks each stage on its own schedule; answers to the root's callouts go to every
//! stage (each knows its tokens). An HTTP context runs the request's exchanges as a
//! [`Chain`] over one [`RequestHost`].

use crate::host::{Host, LogLevel};
use crate::metrics::Counters;
use crate::proxy_host::ProxyHost;
use crate::stage::{self, Callout, Chain, Flow, RequestHost, StageSpec};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

static HOST: ProxyHost = ProxyHost;

/// A module: its name in logs and the stages it can run, in order.
pub trait Module: 'static {
    const NAME: &'static str;
    const SPECS: &'static [StageSpec];
}

/// Registers the root of module `M`: call it from `proxy_wasm::main!`.
pub fn register<M: Module>() {
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(root::<M>);
}

fn root<M: Module>(_context_id: u32) -> Box<dyn RootContext> {
    Box::new(Root {
        name: M::NAME,
        specs: M::SPECS,
        stages: Vec::new(),
        counters: HashMap::new(),
        configured: false,
        tick: None,
        since_tick: Vec::new(),
    })
}

struct Root {
    /// The module's name in logs (a filter's own name, or `suite`).
    name: &'static str,
    specs: &'static [StageSpec],
    stages: stage::Configured,
    /// Spec index → its counters, defined the first time a config uses it.
    counters: HashMap<usize, Rc<Counters>>,
    configured: bool,
    tick: Option<Duration>,
    /// Per stage: time since its last tick.
    since_tick: Vec<Duration>,
}

impl Root {
    fn counters_for(&mut self, index: usize) -> Rc<Counters> {
        let spec = self.specs.get(index);
        Rc::clone(self.counters.entry(index).or_insert_with(|| {
            let names = spec.map(|s| (s.counter_names)()).unwrap_or_default();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            Rc::new(Counters::define(&HOST, &names))
        }))
    }

    fn stage_name(&self, index: usize) -> &'static str {
        self.specs.get(index).map_or(self.name, |s| s.name)
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        for (_, stage) in &mut self.stages {
            stage.on_root_callout(&HOST, token_id, Callout::Http { body_size });
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = crate::proxy_host::calls::plugin_configuration();
        let mut stages = match stage::parse_config(self.specs, &bytes) {
            Ok(stages) => stages,
            Err(e) => {
                // The filter's last word on this config: Envoy's own lines follow.
                crate::config_refusal::log(&HOST, self.name, &e);
                return false;
            }
        };
        for (index, stage) in &mut stages {
            let name = self.stage_name(*index);
            for w in stage.warnings() {
                HOST.log(LogLevel::Warn, &format!("{name}: {w}"));
            }
            let counters = self.counters_for(*index);
            stage.activate(&HOST, counters);
        }
        let tick = stages.iter().filter_map(|(_, s)| s.tick_period()).min();
        if tick.is_some() && tick != self.tick {
            if let Some(period) = tick {
                if !HOST.set_tick_period(period) {
                    HOST.log(
                        LogLevel::Warn,
                        &format!(
                            "{}: the host refused a timer; periodic work (JWKS refresh, counter flush) cannot run",
                            self.name
                        ),
                    );
                }
            }
        }
        self.tick = tick.or(self.tick);
        self.since_tick = vec![Duration::ZERO; stages.len()];
        self.stages = stages;
        self.configured = true;
        true
    }

    fn on_tick(&mut self) {
        let Some(period) = self.tick else {
            return;
        };
        for ((_, stage), since) in self.stages.iter_mut().zip(self.since_tick.iter_mut()) {
            let Some(own) = stage.tick_period() else {
                continue;
            };
            *since += period;
            if *since >= own {
                *since = Duration::ZERO;
                stage.on_tick(&HOST);
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let host = RequestHost::for_stages(&HOST, &self.stages);
        let chain = if self.configured {
            Some(Chain::new(
                self.stages.iter().map(|(_, s)| s.exchange(&host)).collect(),
            ))
        } else {
            None
        };
        let format = self
            .specs
            .first()
            .map_or(crate::denial::Format::Problem, |s| s.format);
        Some(Box::new(Http {
            chain,
            host,
            name: self.name,
            format,
            headers_released: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    /// `None`: no valid config (unreachable while Envoy honours a refused `on_configure`).
    chain: Option<Chain>,
    host: RequestHost<'static>,
    name: &'static str,
    format: crate::denial::Format,
    /// The request headers went on upstream: Envoy no longer lets them be read or edited.
    headers_released: bool,
}

impl Http {
    fn request_side(&mut self, flow: Flow) -> Action {
        // The stages' header edits reach Envoy before it goes on (a local reply needs none).
        if flow != Flow::Done {
            self.host.flush();
        }
        match flow {
            Flow::Continue => {
                if !self.headers_released {
                    self.headers_released = true;
                    self.host.forget_headers();
                }
                Action::Continue
            }
            Flow::Done | Flow::WaitBody | Flow::WaitCallout(_) => Action::Pause,
        }
    }

    fn callout(&mut self, token: u32, answer: Callout) {
        self.host.next_event();
        let Some(chain) = self.chain.as_mut() else {
            return;
        };
        if let Some(Flow::Continue) = chain.on_callout(&self.host, token, answer) {
            let _ = self.request_side(Flow::Continue);
            if !HOST.resume_request() {
                HOST.log(
                    LogLevel::Warn,
                    &format!("{}: the paused request could not be resumed", self.name),
                );
            }
        }
    }
}

fn response_side(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        Flow::Done | Flow::WaitBody | Flow::WaitCallout(_) => Action::Pause,
    }
}

impl Context for Http {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _t: usize) {
        self.callout(token, Callout::Http { body_size });
    }

    fn on_grpc_call_response(&mut self, token: u32, status_code: u32, response_size: usize) {
        self.callout(
            token,
            Callout::Grpc {
                status: status_code,
                size: response_size,
            },
        );
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.host.next_event();
        let Some(chain) = self.chain.as_mut() else {
            HOST.send_reply(&stage::not_configured(self.name, self.format));
            return Action::Pause;
        };
        let flow = chain.on_request_headers(&self.host, end_of_stream);
        self.request_side(flow)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.host.next_event();
        let Some(chain) = self.chain.as_mut() else {
            return Action::Continue;
        };
        let flow = chain.on_request_body(&self.host, body_size, end_of_stream);
        self.request_side(flow)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.host.next_event();
        let Some(chain) = self.chain.as_mut() else {
            return Action::Continue;
        };
        let flow = chain.on_request_trailers(&self.host);
        self.request_side(flow)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.host.next_event();
        self.host.forget_headers();
        match self.chain.as_mut() {
            Some(chain) => response_side(chain.on_response_headers(&self.host, end_of_stream)),
            None => Action::Continue,
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.host.next_event();
        match self.chain.as_mut() {
            Some(chain) => {
                response_side(chain.on_response_body(&self.host, body_size, end_of_stream))
            }
            None => Action::Continue,
        }
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.host.next_event();
        match self.chain.as_mut() {
            Some(chain) => response_side(chain.on_response_trailers(&self.host)),
            None => Action::Continue,
        }
    }

    fn on_log(&mut self) {
        self.host.next_event();
        if let Some(chain) = self.chain.as_mut() {
            chain.on_log(&self.host);
        }
    }
}
