//! proxy-wasm glue: `kit::plugin::Root` parses and swaps the config; the HTTP context hands
//! each request to [`crate::handler`]. Nothing here decides anything.

use crate::config::Config;
use crate::handler::{self, COUNTER_NAMES};
use kit::metrics::Counters;
use kit::plugin::{Plugin, Root};
use kit::proxy_host::ProxyHost;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::Action;
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::<ApiKeyAuth>::default()) });
}}

struct ApiKeyAuth;

impl Plugin for ApiKeyAuth {
    const NAME: &'static str = "api-key-auth";
    type Config = Config;

    fn parse(bytes: &[u8]) -> Result<Config, kit::config_error::ConfigError> {
        Config::parse(bytes)
    }

    fn warnings(config: &Config) -> Vec<String> {
        config.warnings.clone()
    }

    fn counter_names() -> Vec<String> {
        COUNTER_NAMES.iter().map(|n| (*n).to_string()).collect()
    }

    fn http_context(config: Rc<Config>, counters: Rc<Counters>) -> Box<dyn HttpContext> {
        Box::new(Http { config, counters })
    }
}

struct Http {
    config: Rc<Config>,
    counters: Rc<Counters>,
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        match handler::on_request_headers(&ProxyHost, &self.config, &self.counters, !end_of_stream)
        {
            handler::Action::Continue => Action::Continue,
            handler::Action::Stop => Action::Pause,
        }
    }
}
