//! quota as a stage of `kit::stage`: VM-wide it creates the shared-data slots and keeps the
//! slot-hash key; each request is handed to [`crate::handler`], counted at the headers, at the
//! end of the body (when it waits for graphql-guard's cost), or after the Rate Limit Service
//! answers, and the rate-limit fields are added to the response. The same stage runs in
//! `quota.wasm` and the suite.

use crate::config::Config;
use crate::handler::{self, COUNTER_NAMES};
use crate::store::{
    confirmed_hash_key, init_slots, random_key, shared_hash_key, HashKey, SetResult, SharedStore,
};
use kit::config_error::ConfigError;
use kit::denial::Format;
use kit::host::{Host, Side};
use kit::metrics::Counters;
use kit::stage::{Callout, Exchange, Flow, Stage, StageSpec};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

pub const SPEC: StageSpec = StageSpec {
    name: "quota",
    section: "quota",
    format: Format::Problem,
    counter_names,
    parse,
};

const RLS_SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
const RLS_METHOD: &str = "ShouldRateLimit";

fn counter_names() -> Vec<String> {
    COUNTER_NAMES.iter().map(|n| (*n).to_string()).collect()
}

fn parse(bytes: &[u8]) -> Result<Box<dyn Stage>, ConfigError> {
    Ok(Box::new(Quota {
        config: Rc::new(Config::parse(bytes)?),
        counters: Rc::default(),
        hash_key: Cell::new([0; 16]),
        key_confirmed: Cell::new(false),
    }))
}

/// Shared data of this VM id, through the host.
pub struct HostStore<'a>(pub &'a dyn Host);

impl SharedStore for HostStore<'_> {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.0.shared_data(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> SetResult {
        self.0.set_shared_data(key, value, cas)
    }
}

struct Quota {
    config: Rc<Config>,
    counters: Rc<Counters>,
    /// The slot-hash key: the config's `slot_key`, or the process's random one.
    hash_key: Cell<HashKey>,
    /// The random key was re-read from shared data on the first request (two VMs configuring
    /// at once could each have kept their own).
    key_confirmed: Cell<bool>,
}

impl Stage for Quota {
    fn name(&self) -> &'static str {
        SPEC.name
    }
    fn warnings(&self) -> Vec<String> {
        self.config.warnings.clone()
    }

    fn config_counter_names(&self) -> Vec<String> {
        handler::plan_counter_names(&self.config)
    }

    fn activate(&mut self, host: &dyn Host, _counters: Rc<Counters>) {
        // The fixed counters, then this config's per-plan ones (`handler::PER_PLAN`): defining
        // a name again gives the counter it already has.
        let names: Vec<String> = COUNTER_NAMES
            .iter()
            .map(|n| (*n).to_string())
            .chain(handler::plan_counter_names(&self.config))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.counters = Rc::new(Counters::define(host, &names));
        let store = HostStore(host);
        // Only missing slots are created: counts survive a config update.
        init_slots(&store);
        let (key, confirmed) = match self.config.slot_key {
            Some(k) => (k, true),
            None => (shared_hash_key(&store, random_key()), false),
        };
        self.hash_key.set(key);
        self.key_confirmed.set(confirmed);
    }

    fn exchange(&self, host: &dyn Host) -> Box<dyn Exchange> {
        if !self.key_confirmed.get() {
            self.hash_key
                .set(confirmed_hash_key(&HostStore(host), self.hash_key.get()));
            self.key_confirmed.set(true);
        }
        Box::new(Request {
            config: Rc::clone(&self.config),
            counters: Rc::clone(&self.counters),
            hash_key: self.hash_key.get(),
            response_headers: Vec::new(),
            deferred: None,
            pending_global: None,
            messages: None,
            shape: handler::Shape::Request,
        })
    }
}

struct Request {
    config: Rc<Config>,
    counters: Rc<Counters>,
    hash_key: HashKey,
    response_headers: Vec<(String, String)>,
    /// Waiting for the end of the body before counting (see `on_request_headers`), with what
    /// the headers callback read.
    deferred: Option<handler::Gathered>,
    /// The `ShouldRateLimit` call in flight: its token and the plan it is about. Only the
    /// answer with that token is taken as the service's verdict.
    pending_global: Option<(u32, usize)>,
    /// A gRPC stream whose request messages are charged as they flow (`message_cost`).
    messages: Option<Box<Messages>>,
    /// How a refusal is shaped: from the request's headers while Envoy still has them for us,
    /// problem+json once they went upstream (a deferred count).
    shape: handler::Shape,
}

/// What charging a stream's messages needs: the request as read at its headers, the cost of
/// one message, the refusal's gRPC flavour and where the framing stands.
struct Messages {
    gathered: handler::Gathered,
    cost: u64,
    flavor: kit::grpc::Flavor,
    frames: crate::frames::Frames,
}

impl Request {
    fn send_rls(&self, host: &dyn Host, message: &[u8]) -> Result<u32, String> {
        let Some(global) = &self.config.global else {
            return Err("no global tier".to_string());
        };
        host.grpc_call(
            &global.cluster,
            RLS_SERVICE,
            RLS_METHOD,
            message,
            Duration::from_millis(global.timeout_ms),
        )
        .map_err(|e| format!("dispatch to cluster {}: {e}", global.cluster))
    }

    /// The backstop: a request still waiting for its cost when the response starts or the
    /// stream ends is charged now (counted `charged_late`), never left uncharged.
    fn charge_deferred_late(&mut self, host: &dyn Host) {
        let Some(gathered) = self.deferred.take() else {
            return;
        };
        let config = Rc::clone(&self.config);
        let cost = handler::published_cost(host, &config);
        let call = handler::charge_late(
            host,
            &HostStore(host),
            &self.hash_key,
            &config,
            &self.counters,
            &gathered,
            cost.as_deref(),
        );
        if let Some(call) = call {
            // Sent without waiting: the response is the upstream's already.
            let _ = self.send_rls(host, &call.message);
        }
    }

    /// Counts a request whose cost was waiting for the end of its body.
    fn count_deferred(&mut self, host: &dyn Host) -> Flow {
        let Some(gathered) = self.deferred.take() else {
            return Flow::Continue;
        };
        let config = Rc::clone(&self.config);
        let cost = handler::published_cost(host, &config);
        let action = handler::decide(
            host,
            &HostStore(host),
            &self.hash_key,
            &config,
            &self.counters,
            &gathered,
            cost.as_deref(),
            self.shape,
        );
        self.apply(host, action)
    }

    fn apply(&mut self, host: &dyn Host, action: handler::Action) -> Flow {
        match action {
            handler::Action::Continue(headers) => {
                self.response_headers = headers;
                Flow::Continue
            }
            handler::Action::Stop => Flow::Done,
            handler::Action::Global(call) => self.ask_global(host, call),
        }
    }

    /// Sends `ShouldRateLimit` and holds the request until the answer (or the timeout).
    fn ask_global(&mut self, host: &dyn Host, call: handler::GlobalCall) -> Flow {
        if self.config.global.is_none() {
            return Flow::Continue;
        }
        match self.send_rls(host, &call.message) {
            Ok(token) => {
                self.pending_global = Some((token, call.plan));
                Flow::WaitCallout(token)
            }
            Err(e) => {
                let config = Rc::clone(&self.config);
                let action = handler::on_global_response(
                    host,
                    &config,
                    &self.counters,
                    call.plan,
                    Err(e),
                    self.shape,
                );
                self.apply(host, action)
            }
        }
    }
}

impl Exchange for Request {
    fn on_request_headers(&mut self, host: &dyn Host, end_of_stream: bool) -> Flow {
        let config = Rc::clone(&self.config);
        if config.cost_from_filter_state && !end_of_stream {
            // graphql-guard publishes `apim_cost` once it has read the whole body. When it is
            // already here (the guard held the headers until it had judged the body) or the
            // request is not counted whatever its cost (a skip rule…), decide now and never
            // hold the body. Otherwise count at the end of the body, holding it until then (a
            // Pause on headers would stop Envoy from calling the body callbacks,
            // proxy-wasm-cpp-host#143).
            return match handler::at_headers_with_body(
                host,
                &HostStore(host),
                &self.hash_key,
                &config,
                &self.counters,
            ) {
                handler::AtHeaders::Defer(gathered) => {
                    self.deferred = Some(*gathered);
                    // Counted at the end of the body: the headers will have gone upstream.
                    self.shape = handler::Shape::Known(None);
                    Flow::Continue
                }
                handler::AtHeaders::Decided(action) => self.apply(host, action),
            };
        }
        let gathered = handler::gather(host, &config);
        let cost = handler::published_cost(host, &config);
        let action = handler::decide(
            host,
            &HostStore(host),
            &self.hash_key,
            &config,
            &self.counters,
            &gathered,
            cost.as_deref(),
            handler::Shape::Request,
        );
        if !end_of_stream && matches!(action, handler::Action::Continue(_)) {
            if let Some((cost, flavor)) = handler::message_cost(&config, &gathered) {
                self.messages = Some(Box::new(Messages {
                    gathered,
                    cost,
                    flavor,
                    frames: crate::frames::Frames::default(),
                }));
            }
        }
        self.apply(host, action)
    }

    fn on_request_body(&mut self, host: &dyn Host, size: usize, end_of_stream: bool) -> Flow {
        if let Some(m) = &mut self.messages {
            // Each chunk is let through as it comes: this is the chunk, not the whole body. (In
            // the suite, a later stage buffering the same body would hand it over again from
            // its start, see kit::stage::Chain; only transform buffers, and never a gRPC body.)
            let chunk = host.body(Side::Request, 0, size).unwrap_or_default();
            let started = m.frames.feed(&chunk);
            if started > 0 {
                let config = Rc::clone(&self.config);
                let admitted = handler::charge_messages(
                    host,
                    &HostStore(host),
                    &self.hash_key,
                    &config,
                    &self.counters,
                    &m.gathered,
                    m.cost.saturating_mul(started),
                    m.flavor,
                );
                if !admitted {
                    self.messages = None;
                    return Flow::Done;
                }
            }
            return Flow::Continue;
        }
        if self.deferred.is_none() {
            return Flow::Continue;
        }
        if !end_of_stream {
            return Flow::WaitBody;
        }
        self.count_deferred(host)
    }

    /// A body followed by trailers never reports its end in the body callback: the request is
    /// counted here, or the trailers' Continue would release it uncounted.
    fn on_request_trailers(&mut self, host: &dyn Host) -> Flow {
        if self.deferred.is_none() {
            return Flow::Continue;
        }
        self.count_deferred(host)
    }

    fn on_callout(&mut self, host: &dyn Host, token: u32, answer: Callout) -> Flow {
        let Callout::Grpc { status, size } = answer else {
            return Flow::Continue;
        };
        let plan = match self.pending_global {
            Some((awaited, plan)) if awaited == token => plan,
            // Not the answer this request waits for (none, or another call's): never a verdict.
            _ => return Flow::Continue,
        };
        self.pending_global = None;
        let answer = if status == 0 && size > crate::rls::MAX_RESPONSE_BYTES {
            Err(format!("an answer of {size} bytes"))
        } else if status == 0 {
            host.grpc_response_body(size)
                .ok_or_else(|| "an empty answer".to_string())
                .and_then(|b| {
                    crate::rls::decode_response(&b).map_err(|_| "a malformed answer".to_string())
                })
        } else {
            Err(format!("gRPC status {status}"))
        };
        let config = Rc::clone(&self.config);
        let action =
            handler::on_global_response(host, &config, &self.counters, plan, answer, self.shape);
        self.apply(host, action)
    }

    fn on_response_headers(&mut self, host: &dyn Host, _end_of_stream: bool) -> Flow {
        self.charge_deferred_late(host);
        for (name, value) in std::mem::take(&mut self.response_headers) {
            host.add_header(Side::Response, &name, value.as_bytes());
        }
        Flow::Continue
    }

    /// A stream that ends without a response (the client reset it mid-body).
    fn on_log(&mut self, host: &dyn Host) {
        self.charge_deferred_late(host);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use kit::host::MockHost;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// gold fails open, strict (the default plan) fails closed.
    const GLOBAL: &str = r#"{
      "plans": {
        "gold": {"limits": [{"requests": 2, "per": "minute"}]},
        "strict": {"limits": [{"requests": 1, "per": "day"}], "failure_mode": "closed"}
      },
      "default_plan": "strict",
      "key": ["consumer"],
      "global": {"cluster": "rls", "domain": "shop"}
    }"#;

    #[test]
    fn only_the_awaited_answer_counts_and_an_oversized_one_is_a_failure_never_read() {
        struct Case {
            consumer: &'static str,
            size: usize,
            read: bool,
            flow: Flow,
            status: Option<u16>,
        }
        let max = crate::rls::MAX_RESPONSE_BYTES;
        let cases = [
            // Within the bound the answer is read (the mock's is empty: a failure as well).
            Case {
                consumer: r#"{"id":"alice","plan":"gold"}"#,
                size: max,
                read: true,
                flow: Flow::Continue,
                status: None,
            },
            Case {
                consumer: r#"{"id":"alice","plan":"gold"}"#,
                size: max + 1,
                read: false,
                flow: Flow::Continue,
                status: None,
            },
            Case {
                consumer: r#"{"id":"bob","plan":"strict"}"#,
                size: usize::MAX,
                read: false,
                flow: Flow::Done,
                status: Some(503),
            },
        ];
        for case in cases {
            let mut host = MockHost::new(&[(":path", "/pets")]);
            host.properties
                .insert(kit::context::CONSUMER.into(), case.consumer.into());
            let mut stage = parse(GLOBAL.as_bytes()).unwrap();
            let names = counter_names();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            stage.activate(&host, Rc::new(Counters::define(&host, &names)));
            let mut exchange = stage.exchange(&host);
            let Flow::WaitCallout(token) = exchange.on_request_headers(&host, true) else {
                panic!("a call to the Rate Limit Service")
            };
            let answer = Callout::Grpc {
                status: 0,
                size: case.size,
            };
            // Another call's answer is no verdict: the request still waits for its own.
            assert_eq!(
                exchange.on_callout(&host, token.wrapping_add(1), answer),
                Flow::Continue
            );
            assert_eq!(host.counter("apim.quota.global_errors"), 0, "{}", case.size);
            assert_eq!(
                exchange.on_callout(&host, token, answer),
                case.flow,
                "{}",
                case.size
            );
            assert_eq!(
                host.host_call_names().contains(&"grpc_response_body"),
                case.read,
                "{}",
                case.size
            );
            assert_eq!(host.counter("apim.quota.global_errors"), 1, "{}", case.size);
            assert_eq!(host.reply().map(|r| r.status), case.status, "{}", case.size);
        }
    }
}
