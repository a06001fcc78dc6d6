//! proxy-wasm glue: the root context parses and swaps the config, keeps remote JWKS fresh
//! (timer, `dispatch_http_call`, shared data across workers); the HTTP context hands each
//! request to [`crate::handler`]. Nothing here decides anything.

use crate::config::Config;
use crate::fetch::{self, FetchState};
use crate::handler::{
    self, Counters, State, COUNTER_NAMES, JWKS_FETCH, JWKS_FETCH_FAILED, JWKS_KEYS_CHANGED,
};
use crate::jwks::{KeySet, MAX_JWKS_BYTES};
use kit::denial::{Denial, Format};
use kit::host::{Host, LogLevel};
use kit::proxy_host::ProxyHost;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// How often the root context looks at shared data and fetch deadlines.
const TICK: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Root {
    config: Option<Rc<Config>>,
    state: Rc<RefCell<State>>,
    counters: Rc<Counters>,
    /// Provider index → fetch bookkeeping (remote providers only use theirs).
    fetches: Vec<FetchState>,
}

fn log(level: LogLevel, msg: &str) {
    ProxyHost.log(level, &format!("scope-authz: {msg}"));
}

impl Root {
    /// Installs a newer document from shared data (fetched by any worker, or by an earlier
    /// configuration of this `vm_id`: shared data outlives a config push, so keys fetched
    /// before it are in use again as soon as the new config is, when the JWKS source is the
    /// same).
    fn poll_shared(&mut self, index: usize, key: &str) {
        let (Some(bytes), _) = kit::proxy_host::calls::shared_data(key) else {
            return;
        };
        let Some((at, body)) = fetch::decode(&bytes) else {
            return;
        };
        let Some(st) = self.fetches.get_mut(index) else {
            return;
        };
        if st.loaded_at.is_some_and(|loaded| loaded >= at) {
            return;
        }
        st.loaded_at = Some(at);
        match KeySet::parse(body) {
            Ok(set) => {
                let changed = match self.state.try_borrow_mut() {
                    Ok(mut state) => {
                        if let Some(flag) = state.refetch.get_mut(index) {
                            *flag = false;
                        }
                        state.set_keys(index, set)
                    }
                    Err(_) => false,
                };
                if changed {
                    self.counters.inc(&ProxyHost, JWKS_KEYS_CHANGED);
                }
            }
            Err(e) => log(LogLevel::Warn, &format!("shared JWKS unusable: {e}")),
        }
    }

    /// Creates a provider's fetch lease, free, when it does not exist yet (see `maybe_fetch`).
    fn init_lease(&self, lease: &str) {
        if kit::proxy_host::calls::shared_data(lease).0.is_none() {
            let _ = self.set_shared_data(lease, Some(&0u64.to_be_bytes()), None);
        }
    }

    fn maybe_fetch(&mut self, index: usize, now: u64) {
        let Some(config) = self.config.clone() else {
            return;
        };
        let Some(remote) = config.providers.get(index).and_then(|p| p.remote.as_ref()) else {
            return;
        };
        let wanted = self
            .state
            .try_borrow()
            .ok()
            .and_then(|s| s.refetch.get(index).copied())
            .unwrap_or(false);
        let Some(st) = self.fetches.get(index).copied() else {
            return;
        };
        if !fetch::should_fetch(remote, &st, wanted, now) {
            return;
        }
        // Another worker may hold the lease: then its result arrives through shared data.
        let lease = fetch::lease_key(remote);
        let (held, cas) = kit::proxy_host::calls::shared_data(&lease);
        let Some(cas) = cas else {
            // No lease key yet: shared data has no create-if-absent, and a set without a CAS
            // always succeeds, so two workers could both "take" it. Create it free and take
            // it with a real compare-and-swap on a later tick.
            self.init_lease(&lease);
            return;
        };
        if !fetch::lease_free(held.as_deref(), now) {
            return;
        }
        let until = now + remote.timeout_ms.div_ceil(1000) + 1;
        if self
            .set_shared_data(&lease, Some(&until.to_be_bytes()), Some(cas))
            .is_err()
        {
            return;
        }
        // The previous holder stores its document before it frees the lease: look again now
        // that the lease is ours, so a fetch that just finished is not repeated.
        self.poll_shared(index, &fetch::shared_key(remote));
        let wanted = self
            .state
            .try_borrow()
            .ok()
            .and_then(|s| s.refetch.get(index).copied())
            .unwrap_or(false);
        let still = self
            .fetches
            .get(index)
            .is_some_and(|st| fetch::should_fetch(remote, st, wanted, now));
        if !still {
            let _ = self.set_shared_data(&lease, Some(&0u64.to_be_bytes()), None);
            return;
        }
        if let Some(s) = self.fetches.get_mut(index) {
            s.last_attempt = Some(now);
        }
        let headers = vec![
            (":method", "GET"),
            (":path", remote.path.as_str()),
            (":authority", remote.authority.as_str()),
            ("accept", "application/json"),
        ];
        match self.dispatch_http_call(
            &remote.cluster,
            headers,
            None,
            vec![],
            Duration::from_millis(remote.timeout_ms),
        ) {
            Ok(token) => {
                if let Some(s) = self.fetches.get_mut(index) {
                    s.in_flight = Some(token);
                }
            }
            Err(e) => {
                self.counters.inc(&ProxyHost, JWKS_FETCH_FAILED);
                let _ = self.set_shared_data(&lease, Some(&0u64.to_be_bytes()), None);
                log(
                    LogLevel::Warn,
                    &format!("JWKS fetch from cluster {} not sent: {e:?}", remote.cluster),
                );
            }
        }
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
        let Some(index) = self
            .fetches
            .iter()
            .position(|f| f.in_flight == Some(token_id))
        else {
            return;
        };
        let now = ProxyHost.now_unix();
        if let Some(s) = self.fetches.get_mut(index) {
            s.in_flight = None;
        }
        let Some(config) = self.config.clone() else {
            return;
        };
        let Some(remote) = config.providers.get(index).and_then(|p| p.remote.as_ref()) else {
            return;
        };
        let lease = fetch::lease_key(remote);
        let status = kit::proxy_host::calls::http_call_response_header(":status");
        let result = if status.as_deref() != Some("200") {
            Err(format!(
                "status {}",
                status.as_deref().unwrap_or("none (no response)")
            ))
        } else if body_size > MAX_JWKS_BYTES {
            Err(format!(
                "body of {body_size} bytes is over {MAX_JWKS_BYTES}"
            ))
        } else {
            let body =
                kit::proxy_host::calls::http_call_response_body(0, body_size).unwrap_or_default();
            KeySet::parse(&body).and_then(|set| {
                if set.is_empty() {
                    Err("no usable key".to_string())
                } else {
                    Ok((set, body))
                }
            })
        };
        match result {
            Ok((set, body)) => {
                self.counters.inc(&ProxyHost, JWKS_FETCH);
                // Document first, lease after: whoever takes the lease next sees this document.
                let _ = self.set_shared_data(
                    &fetch::shared_key(remote),
                    Some(&fetch::encode(now, &body)),
                    None,
                );
                let _ = self.set_shared_data(&lease, Some(&0u64.to_be_bytes()), None);
                if let Some(s) = self.fetches.get_mut(index) {
                    s.loaded_at = Some(now);
                }
                let changed = match self.state.try_borrow_mut() {
                    Ok(mut state) => {
                        if let Some(flag) = state.refetch.get_mut(index) {
                            *flag = false;
                        }
                        state.set_keys(index, set)
                    }
                    Err(_) => false,
                };
                if changed {
                    self.counters.inc(&ProxyHost, JWKS_KEYS_CHANGED);
                }
            }
            Err(e) => {
                let _ = self.set_shared_data(&lease, Some(&0u64.to_be_bytes()), None);
                self.counters.inc(&ProxyHost, JWKS_FETCH_FAILED);
                log(
                    LogLevel::Warn,
                    &format!("JWKS fetch for provider {} failed: {e}", remote.cluster),
                );
            }
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let host = ProxyHost;
        let bytes = kit::proxy_host::calls::plugin_configuration();
        match Config::parse(&bytes) {
            Ok(config) => {
                if self.config.is_none() {
                    self.counters = Rc::new(Counters::define(&host, &COUNTER_NAMES));
                }
                for w in &config.warnings {
                    host.log(LogLevel::Warn, &format!("scope-authz: {w}"));
                }
                // Requests in flight keep the config and keys they started with.
                self.state = Rc::new(RefCell::new(State::new(&config)));
                self.fetches = vec![FetchState::default(); config.providers.len()];
                // Keys fetched under the previous config (by any worker of this vm_id) serve
                // at once when the JWKS source is the same: no 503 until the next tick.
                let sources: Vec<(usize, String, String)> = config
                    .remote_providers()
                    .map(|(i, r)| (i, fetch::shared_key(r), fetch::lease_key(r)))
                    .collect();
                for (index, key, lease) in sources {
                    self.poll_shared(index, &key);
                    // Every worker configures at start, a tick before any fetch: the lease
                    // exists by then, so the first fetch is taken with a compare-and-swap.
                    self.init_lease(&lease);
                }
                // The timer drives JWKS fetches and flushes batched cache-hit counts.
                if !kit::proxy_host::calls::set_tick_period(TICK) {
                    host.log(
                        LogLevel::Warn,
                        "scope-authz: the host refused a timer; remote JWKS cannot be fetched or refreshed",
                    );
                }
                self.config = Some(Rc::new(config));
                true
            }
            Err(e) => {
                // The filter's last word on this config: Envoy's own lines follow.
                kit::config_refusal::log(&host, "scope-authz", &e);
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Some(config) = self.config.clone() else {
            return;
        };
        let now = ProxyHost.now_unix();
        if let Ok(mut state) = self.state.try_borrow_mut() {
            state.flush_counters(&ProxyHost, &self.counters);
            state.set_clock(now);
        }
        for (index, remote) in config.remote_providers() {
            self.poll_shared(index, &fetch::shared_key(remote));
            self.maybe_fetch(index, now);
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            config: self.config.clone(),
            state: Rc::clone(&self.state),
            counters: Rc::clone(&self.counters),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    config: Option<Rc<Config>>,
    state: Rc<RefCell<State>>,
    counters: Rc<Counters>,
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let host = ProxyHost;
        let (Some(config), Ok(mut state)) = (&self.config, self.state.try_borrow_mut()) else {
            // Unreachable while Envoy honours on_configure's false; fail closed all the same.
            let d = Denial::new(
                503,
                "not_configured",
                "Filter not configured",
                "The scope authorization filter has no valid configuration.",
            );
            host.send_reply(&d.render(Format::Problem));
            return Action::Pause;
        };
        match handler::on_request_headers(&host, config, &mut state, &self.counters, !end_of_stream)
        {
            handler::Action::Continue => Action::Continue,
            handler::Action::Stop => Action::Pause,
        }
    }
}
