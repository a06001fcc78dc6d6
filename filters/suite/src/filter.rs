//! The module `apim_suite.wasm`: kit's one root, running the stages the config has sections for.

struct Suite;

impl kit::runtime::Module for Suite {
    const NAME: &'static str = "suite";
    const SPECS: &'static [kit::stage::StageSpec] = &crate::SPECS;
}

proxy_wasm::main! {{
    kit::runtime::register::<Suite>();
}}
