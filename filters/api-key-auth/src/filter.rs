//! proxy-wasm glue: the root context parses and swaps the config, the HTTP context hands each
//! request to [`crate::handler`]. Nothing here decides anything.

use crate::config::Config;
use crate::handler::{self, COUNTER_NAMES};
use kit::denial::{Denial, Format};
use kit::host::{Host, LogLevel};
use kit::metrics::Counters;
use kit::proxy_host::ProxyHost;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Root {
    config: Option<Rc<Config>>,
    counters: Rc<Counters>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let host = ProxyHost;
        let bytes = kit::proxy_host::calls::plugin_configuration();
        match Config::parse(&bytes) {
            Ok(config) => {
                for w in &config.warnings {
                    host.log(LogLevel::Warn, &format!("api-key-auth: {w}"));
                }
                if self.config.is_none() {
                    self.counters = Rc::new(Counters::define(&host, &COUNTER_NAMES));
                }
                // Requests in flight keep the config they started with; new ones get this.
                self.config = Some(Rc::new(config));
                true
            }
            Err(e) => {
                // Returning false makes Envoy refuse the config (bootstrap exits, xDS update is
                // rejected); the message names the field.
                host.log(
                    LogLevel::Error,
                    &format!("api-key-auth: invalid configuration: {e}"),
                );
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            config: self.config.clone(),
            counters: Rc::clone(&self.counters),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    config: Option<Rc<Config>>,
    counters: Rc<Counters>,
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let host = ProxyHost;
        let Some(config) = &self.config else {
            // Unreachable while Envoy honours on_configure's false; fail closed all the same.
            let d = Denial::new(
                503,
                "not_configured",
                "Filter not configured",
                "The API-key filter has no valid configuration.",
            );
            host.send_reply(&d.render(Format::Problem));
            return Action::Pause;
        };
        match handler::on_request_headers(&host, config, &self.counters) {
            handler::Action::Continue => Action::Continue,
            handler::Action::Stop => Action::Pause,
        }
    }
}
