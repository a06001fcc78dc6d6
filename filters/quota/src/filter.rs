//! The module `quota.wasm`: kit's one root, running this crate's stage alone.

struct Quota;

impl kit::runtime::Module for Quota {
    const NAME: &'static str = "quota";
    const SPECS: &'static [kit::stage::StageSpec] = &[crate::stage::SPEC];
}

proxy_wasm::main! {{
    kit::runtime::register::<Quota>();
}}
