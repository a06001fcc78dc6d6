//! The root context of a filter whose state is just its config and counters, written once.
//!
//! A filter describes itself with [`Plugin`] (its name, config parser, counters, and how to
//! make an HTTP context) and registers `Root::<MyPlugin>::default()`. The root parses each
//! configuration Envoy delivers: a bad one is logged with the field path and refused (Envoy
//! exits at bootstrap or rejects the update); a good one replaces the previous one for new
//! requests, while requests in flight keep theirs. Filters that also run timers or fetches
//! (scope-authz, quota, transform's counter flush) keep a root of their own.

use crate::config_error::ConfigError;
use crate::denial::{Denial, Format};
use crate::host::{Host, LogLevel};
use crate::metrics::Counters;
use crate::proxy_host::{calls, ProxyHost};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::marker::PhantomData;
use std::rc::Rc;

pub trait Plugin: 'static {
    /// The filter's name in logs: `api-key-auth: invalid configuration: …`.
    const NAME: &'static str;
    /// How a refusal is written when the filter has no config (which Envoy should prevent).
    const FORMAT: Format = Format::Problem;
    type Config: 'static;

    fn parse(bytes: &[u8]) -> Result<Self::Config, ConfigError>;

    /// Things a valid config still deserves a warning for.
    fn warnings(_config: &Self::Config) -> Vec<String> {
        Vec::new()
    }

    /// Counter names, defined once per VM; indexes into [`Counters`] follow this order.
    fn counter_names() -> Vec<String>;

    fn http_context(config: Rc<Self::Config>, counters: Rc<Counters>) -> Box<dyn HttpContext>;
}

pub struct Root<P: Plugin> {
    config: Option<Rc<P::Config>>,
    counters: Rc<Counters>,
    plugin: PhantomData<P>,
}

impl<P: Plugin> Default for Root<P> {
    fn default() -> Self {
        Self {
            config: None,
            counters: Rc::default(),
            plugin: PhantomData,
        }
    }
}

impl<P: Plugin> Context for Root<P> {}

impl<P: Plugin> RootContext for Root<P> {
    fn on_configure(&mut self, _size: usize) -> bool {
        let host = ProxyHost;
        match P::parse(&calls::plugin_configuration()) {
            Ok(config) => {
                for w in P::warnings(&config) {
                    host.log(LogLevel::Warn, &format!("{}: {w}", P::NAME));
                }
                if self.config.is_none() {
                    let names = P::counter_names();
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    self.counters = Rc::new(Counters::define(&host, &names));
                }
                self.config = Some(Rc::new(config));
                true
            }
            Err(e) => {
                // The filter's last word on this config: Envoy's own lines follow.
                crate::config_refusal::log(&host, P::NAME, &e);
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(match &self.config {
            Some(config) => P::http_context(Rc::clone(config), Rc::clone(&self.counters)),
            None => Box::new(NotConfigured::<P>(PhantomData)),
        })
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Unreachable while Envoy honours `on_configure`'s false; fails closed all the same.
struct NotConfigured<P: Plugin>(PhantomData<P>);

impl<P: Plugin> Context for NotConfigured<P> {}

impl<P: Plugin> HttpContext for NotConfigured<P> {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let detail = format!("The {} filter has no valid configuration.", P::NAME);
        let denial = Denial::new(503, "not_configured", "Filter not configured", detail);
        ProxyHost.send_reply(&denial.render(P::FORMAT));
        Action::Pause
    }
}
