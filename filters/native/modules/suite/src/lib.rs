//! `libapim_suite.so`: the five stages in one Envoy dynamic module, configured as
//! `apim_suite.wasm` is (a section per filter, each that filter's own config).

struct Suite;

impl apim_native::Module for Suite {
    const NAME: &'static str = "suite";
    const SPECS: &'static [kit::stage::StageSpec] = &apim_suite::SPECS;
}

apim_native::export_module!(Suite);
