//! `libapim_test_fault.so`: a native module whose one stage panics when the request asks it
//! to (`x-fault: request` on the request headers, `x-fault: response` on the response
//! headers), and lets everything else through. It exists for
//! `tests/integration/tests/native_failure.rs`: the stages never panic by design, so the
//! runtime's fail-closed path (every hook under `catch_unwind`, a 500 problem reply or a reset,
//! `apim.test_fault.failed_closed`) needs a stage that does. Built beside the real modules by
//! `make build`; never deployed.

use kit::config_error::ConfigError;
use kit::denial::Format;
use kit::host::Host;
use kit::stage::{Exchange, Flow, Stage, StageSpec};

struct Fault;

impl apim_native::Module for Fault {
    const NAME: &'static str = "test-fault";
    const SPECS: &'static [StageSpec] = &[StageSpec {
        name: "test-fault",
        section: "test_fault",
        format: Format::Problem,
        counter_names: Vec::new,
        parse,
    }];
}

fn parse(_bytes: &[u8]) -> Result<Box<dyn Stage>, ConfigError> {
    Ok(Box::new(FaultStage))
}

struct FaultStage;

impl Stage for FaultStage {
    fn exchange(&self, _host: &dyn Host) -> Box<dyn Exchange> {
        Box::new(FaultExchange::default())
    }
}

#[derive(Default)]
struct FaultExchange {
    /// Asked for on the request (its headers are no longer readable on the response side).
    fail_response: bool,
}

fn asked(host: &dyn Host, when: &str) -> bool {
    host.request_header("x-fault").as_deref() == Some(when.as_bytes())
}

#[allow(
    clippy::panic,
    reason = "the point of this module: a stage that panics on request"
)]
impl Exchange for FaultExchange {
    fn on_request_headers(&mut self, host: &dyn Host, _end_of_stream: bool) -> Flow {
        if asked(host, "request") {
            panic!("test-fault: asked to fail on the request headers");
        }
        self.fail_response = asked(host, "response");
        Flow::Continue
    }
    fn on_response_headers(&mut self, _host: &dyn Host, _end_of_stream: bool) -> Flow {
        if self.fail_response {
            panic!("test-fault: asked to fail on the response headers");
        }
        Flow::Continue
    }
}

apim_native::export_module!(Fault);
