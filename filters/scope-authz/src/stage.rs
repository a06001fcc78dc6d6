//! scope-authz as a stage of `kit::stage`: VM-wide it keeps remote JWKS fresh (a timer, an
//! HTTP callout, shared data across workers with a fetch lease) and batches the common path's
//! counts; each request is handed to [`crate::handler`]. The same stage runs in
//! `scope_authz.wasm` and the suite.

use crate::config::Config;
use crate::fetch::{self, FetchState};
use crate::handler::{
    self, Counters, State, COUNTER_NAMES, JWKS_FETCH, JWKS_FETCH_FAILED, JWKS_KEYS_CHANGED,
};
use crate::jwks::{KeySet, MAX_JWKS_BYTES};
use kit::config_error::ConfigError;
use kit::denial::Format;
use kit::host::{Host, LogLevel, SetResult};
use kit::stage::{Callout, Exchange, Flow, Stage, StageSpec};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

pub const SPEC: StageSpec = StageSpec {
    name: "scope-authz",
    section: "scope_authz",
    format: Format::Problem,
    counter_names,
    parse,
};

/// How often the stage looks at shared data and fetch deadlines, and flushes batched counts.
const TICK: Duration = Duration::from_millis(500);

fn counter_names() -> Vec<String> {
    COUNTER_NAMES.iter().map(|n| (*n).to_string()).collect()
}

fn parse(bytes: &[u8]) -> Result<Box<dyn Stage>, ConfigError> {
    let config = Config::parse(bytes)?;
    Ok(Box::new(ScopeAuthz {
        state: Rc::new(RefCell::new(State::new(&config))),
        fetches: vec![FetchState::default(); config.providers.len()],
        config: Rc::new(config),
        counters: Rc::default(),
    }))
}

struct ScopeAuthz {
    config: Rc<Config>,
    /// Requests in flight keep the state (keys, token cache) they started with.
    state: Rc<RefCell<State>>,
    counters: Rc<Counters>,
    /// Provider index → fetch bookkeeping (remote providers only use theirs).
    fetches: Vec<FetchState>,
}

fn log(host: &dyn Host, level: LogLevel, msg: &str) {
    host.log(level, &format!("scope-authz: {msg}"));
}

fn free_lease(host: &dyn Host, lease: &str) {
    let _ = host.set_shared_data(lease, &0u64.to_be_bytes(), None);
}

impl ScopeAuthz {
    fn install(&mut self, host: &dyn Host, index: usize, set: KeySet) {
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
            self.counters.inc(host, JWKS_KEYS_CHANGED);
        }
    }

    /// Installs a newer document from shared data (fetched by any worker, or by an earlier
    /// configuration of this `vm_id`: shared data outlives a config push, so keys fetched
    /// before it are in use again as soon as the new config is, when the JWKS source is the
    /// same).
    fn poll_shared(&mut self, host: &dyn Host, index: usize, key: &str) {
        let cas = host.shared_data_cas(key);
        if cas.is_none() || self.fetches.get(index).is_some_and(|st| st.seen_cas == cas) {
            return;
        }
        let (Some(bytes), cas) = host.shared_data(key) else {
            return;
        };
        if let Some(st) = self.fetches.get_mut(index) {
            st.seen_cas = cas;
        }
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
            Ok(set) => self.install(host, index, set),
            Err(e) => log(host, LogLevel::Warn, &format!("shared JWKS unusable: {e}")),
        }
    }

    /// Creates a provider's fetch lease, free, when it does not exist yet (see `maybe_fetch`).
    fn init_lease(host: &dyn Host, lease: &str) {
        if host.shared_data(lease).0.is_none() {
            free_lease(host, lease);
        }
    }

    /// Whether a token this copy of the stage served named an unknown `kid`.
    fn wanted_here(&self, index: usize) -> bool {
        self.state
            .try_borrow()
            .ok()
            .and_then(|s| s.refetch.get(index).copied())
            .unwrap_or(false)
    }

    /// Whether any copy (this one, or another worker's through shared data) wants a fetch
    /// sooner than the refresh period.
    fn wanted(&self, host: &dyn Host, index: usize, remote: &crate::config::Remote) -> bool {
        let loaded_at = self.fetches.get(index).and_then(|f| f.loaded_at);
        self.wanted_here(index)
            || fetch::wanted_since(
                host.shared_data(&fetch::wanted_key(remote)).0.as_deref(),
                loaded_at,
            )
    }

    /// Stamps shared data when a token here named an unknown `kid` (with the fetch time of the
    /// document that lacked it): the copy that fetches may not be this one (always so on a
    /// native module's workers).
    fn publish_wanted(&self, host: &dyn Host, index: usize, remote: &crate::config::Remote) {
        if self.wanted_here(index) {
            let lacking = self
                .fetches
                .get(index)
                .and_then(|f| f.loaded_at)
                .unwrap_or(0);
            let _ = host.set_shared_data(&fetch::wanted_key(remote), &lacking.to_be_bytes(), None);
        }
    }

    fn maybe_fetch(&mut self, host: &dyn Host, index: usize, now: u64) {
        if !host.calls_from_root() {
            return;
        }
        let config = Rc::clone(&self.config);
        let Some(remote) = config.providers.get(index).and_then(|p| p.remote.as_ref()) else {
            return;
        };
        let Some(st) = self.fetches.get(index).copied() else {
            return;
        };
        if !fetch::should_fetch(remote, &st, self.wanted(host, index, remote), now) {
            return;
        }
        // Another worker may hold the lease: then its result arrives through shared data.
        let lease = fetch::lease_key(remote);
        let (held, cas) = host.shared_data(&lease);
        let Some(cas) = cas else {
            // No lease key yet: shared data has no create-if-absent, and a set without a CAS
            // always succeeds, so two workers could both "take" it. Create it free and take
            // it with a real compare-and-swap on a later tick.
            Self::init_lease(host, &lease);
            return;
        };
        if !fetch::lease_free(held.as_deref(), now) {
            return;
        }
        let until = now + remote.timeout_ms.div_ceil(1000) + 1;
        if host.set_shared_data(&lease, &until.to_be_bytes(), Some(cas)) != SetResult::Ok {
            return;
        }
        // The previous holder stores its document before it frees the lease: look again now
        // that the lease is ours, so a fetch that just finished is not repeated.
        self.poll_shared(host, index, &fetch::shared_key(remote));
        let wanted = self.wanted(host, index, remote);
        let still = self
            .fetches
            .get(index)
            .is_some_and(|st| fetch::should_fetch(remote, st, wanted, now));
        if !still {
            free_lease(host, &lease);
            return;
        }
        if let Some(s) = self.fetches.get_mut(index) {
            s.last_attempt = Some(now);
        }
        let headers = [
            (":method", "GET"),
            (":path", remote.path.as_str()),
            (":authority", remote.authority.as_str()),
            ("accept", "application/json"),
        ];
        match host.http_call(
            &remote.cluster,
            &headers,
            None,
            Duration::from_millis(remote.timeout_ms),
        ) {
            Ok(token) => {
                if let Some(s) = self.fetches.get_mut(index) {
                    s.in_flight = Some(token);
                }
            }
            Err(e) => {
                self.counters.inc(host, JWKS_FETCH_FAILED);
                free_lease(host, &lease);
                log(
                    host,
                    LogLevel::Warn,
                    &format!("JWKS fetch from cluster {} not sent: {e}", remote.cluster),
                );
            }
        }
    }
}

impl Stage for ScopeAuthz {
    fn name(&self) -> &'static str {
        SPEC.name
    }
    fn warnings(&self) -> Vec<String> {
        self.config.warnings.clone()
    }

    fn activate(&mut self, host: &dyn Host, counters: Rc<Counters>) {
        self.counters = counters;
        // Keys fetched under the previous config (by any worker of this vm_id) serve at once
        // when the JWKS source is the same: no 503 until the next tick.
        let sources: Vec<(usize, String, String)> = self
            .config
            .remote_providers()
            .map(|(i, r)| (i, fetch::shared_key(r), fetch::lease_key(r)))
            .collect();
        for (index, key, lease) in sources {
            self.poll_shared(host, index, &key);
            // Every worker configures at start, a tick before any fetch: the lease exists by
            // then, so the first fetch is taken with a compare-and-swap.
            Self::init_lease(host, &lease);
        }
    }

    /// The timer drives JWKS fetches and flushes batched cache-hit counts.
    fn tick_period(&self) -> Option<Duration> {
        Some(TICK)
    }

    fn on_tick(&mut self, host: &dyn Host) {
        let now = host.now_unix();
        if let Ok(mut state) = self.state.try_borrow_mut() {
            state.flush_counters(host, &self.counters);
            state.set_clock(now);
        }
        let config = Rc::clone(&self.config);
        for (index, remote) in config.remote_providers() {
            self.poll_shared(host, index, &fetch::shared_key(remote));
            self.publish_wanted(host, index, remote);
            self.maybe_fetch(host, index, now);
        }
    }

    fn on_root_callout(&mut self, host: &dyn Host, token: u32, answer: Callout) {
        let Callout::Http { body_size } = answer else {
            return;
        };
        let Some(index) = self.fetches.iter().position(|f| f.in_flight == Some(token)) else {
            return;
        };
        let now = host.now_unix();
        if let Some(s) = self.fetches.get_mut(index) {
            s.in_flight = None;
        }
        let config = Rc::clone(&self.config);
        let Some(remote) = config.providers.get(index).and_then(|p| p.remote.as_ref()) else {
            return;
        };
        let lease = fetch::lease_key(remote);
        let status = host.http_call_response_header(":status");
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
            let body = host.http_call_response_body(body_size).unwrap_or_default();
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
                self.counters.inc(host, JWKS_FETCH);
                // Document first, lease after: whoever takes the lease next sees this document.
                let _ = host.set_shared_data(
                    &fetch::shared_key(remote),
                    &fetch::encode(now, &body),
                    None,
                );
                free_lease(host, &lease);
                if let Some(s) = self.fetches.get_mut(index) {
                    s.loaded_at = Some(now);
                }
                self.install(host, index, set);
            }
            Err(e) => {
                free_lease(host, &lease);
                self.counters.inc(host, JWKS_FETCH_FAILED);
                log(
                    host,
                    LogLevel::Warn,
                    &format!("JWKS fetch for provider {} failed: {e}", remote.cluster),
                );
            }
        }
    }

    fn exchange(&self, _host: &dyn Host) -> Box<dyn Exchange> {
        Box::new(Request {
            config: Rc::clone(&self.config),
            state: Rc::clone(&self.state),
            counters: Rc::clone(&self.counters),
        })
    }
}

struct Request {
    config: Rc<Config>,
    state: Rc<RefCell<State>>,
    counters: Rc<Counters>,
}

impl Exchange for Request {
    fn on_request_headers(&mut self, host: &dyn Host, end_of_stream: bool) -> Flow {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            // Unreachable (one request at a time per VM); fail closed all the same.
            host.send_reply(&kit::stage::not_configured(SPEC.name, SPEC.format));
            return Flow::Done;
        };
        handler::on_request_headers(
            host,
            &self.config,
            &mut state,
            &self.counters,
            !end_of_stream,
        )
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kit::host::{Call, MockHost};
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const REMOTE: &str = r#"{
      "providers": [{"name": "idp", "issuer": "https://issuer.test", "algorithms": ["RS256"],
        "jwks": {"remote": {"cluster": "idp", "path": "/keys", "refresh_seconds": 300,
                            "min_refetch_seconds": 1}}}],
      "rules": [{"match": {"path": {"prefix": "/"}}, "require": {"all_of": ["read"]}}]
    }"#;

    fn stage(host: &MockHost) -> ScopeAuthz {
        let config = Rc::new(Config::parse(REMOTE.as_bytes()).unwrap());
        let mut s = ScopeAuthz {
            state: Rc::new(RefCell::new(State::new(&config))),
            fetches: vec![FetchState::default(); config.providers.len()],
            config,
            counters: Rc::default(),
        };
        s.activate(host, Rc::default());
        s
    }

    fn fetches(host: &MockHost) -> usize {
        host.calls()
            .iter()
            .filter(|c| matches!(c, Call::HttpCall(cluster) if cluster == "idp"))
            .count()
    }

    /// A native worker's copy never fetches; the copy that may (the main thread's) does.
    #[test]
    fn only_a_copy_that_may_call_from_root_fetches() {
        let mut host = MockHost::new(&[]);
        host.no_root_calls = true;
        let mut worker = stage(&host);
        worker.on_tick(&host);
        worker.on_tick(&host);
        assert_eq!(fetches(&host), 0);
        host.no_root_calls = false;
        let mut main = stage(&host);
        main.on_tick(&host);
        assert_eq!(fetches(&host), 1, "no keys yet: fetch at once");
    }

    /// An unknown `kid` met by one copy makes another fetch before the refresh period.
    #[test]
    fn an_unknown_kid_elsewhere_asks_for_a_fetch_through_shared_data() {
        let mut host = MockHost::new(&[]);
        let loaded = |s: &mut ScopeAuthz| {
            if let Some(f) = s.fetches.first_mut() {
                f.loaded_at = Some(1_800_000_000 - 5);
            }
        };
        let mut main = stage(&host);
        loaded(&mut main);
        main.on_tick(&host);
        assert_eq!(fetches(&host), 0, "keys 5 s old, nobody asked: no fetch");
        host.no_root_calls = true;
        let mut worker = stage(&host);
        loaded(&mut worker);
        if let Some(flag) = worker.state.borrow_mut().refetch.first_mut() {
            *flag = true;
        }
        worker.on_tick(&host);
        assert_eq!(fetches(&host), 0);
        host.no_root_calls = false;
        main.on_tick(&host);
        assert_eq!(fetches(&host), 1, "the worker's unknown kid");
    }
}
