//! api-key-auth as a stage of `kit::stage`: the config and counters VM-wide, each request
//! handed to [`crate::handler`]. The same stage runs in `api_key_auth.wasm` and the suite.

use crate::config::Config;
use crate::handler::{self, COUNTER_NAMES};
use kit::config_error::ConfigError;
use kit::denial::Format;
use kit::host::Host;
use kit::metrics::Counters;
use kit::stage::{Exchange, Flow, Stage, StageSpec};
use std::rc::Rc;

pub const SPEC: StageSpec = StageSpec {
    name: "api-key-auth",
    section: "api_key_auth",
    format: Format::Problem,
    counter_names,
    parse,
};

fn counter_names() -> Vec<String> {
    COUNTER_NAMES.iter().map(|n| (*n).to_string()).collect()
}

fn parse(bytes: &[u8]) -> Result<Box<dyn Stage>, ConfigError> {
    Ok(Box::new(ApiKeyAuth {
        config: Rc::new(Config::parse(bytes)?),
        counters: Rc::default(),
    }))
}

struct ApiKeyAuth {
    config: Rc<Config>,
    counters: Rc<Counters>,
}

impl Stage for ApiKeyAuth {
    fn name(&self) -> &'static str {
        SPEC.name
    }
    fn warnings(&self) -> Vec<String> {
        self.config.warnings.clone()
    }
    fn activate(&mut self, _host: &dyn Host, counters: Rc<Counters>) {
        self.counters = counters;
    }
    fn exchange(&self, _host: &dyn Host) -> Box<dyn Exchange> {
        Box::new(Request {
            config: Rc::clone(&self.config),
            counters: Rc::clone(&self.counters),
        })
    }
}

struct Request {
    config: Rc<Config>,
    counters: Rc<Counters>,
}

impl Exchange for Request {
    fn on_request_headers(&mut self, host: &dyn Host, end_of_stream: bool) -> Flow {
        handler::on_request_headers(host, &self.config, &self.counters, !end_of_stream).into()
    }
}
