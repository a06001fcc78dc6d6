//! The module `transform.wasm`: kit's one root, running this crate's stage alone.

struct Transform;

impl kit::runtime::Module for Transform {
    const NAME: &'static str = "transform";
    const SPECS: &'static [kit::stage::StageSpec] = &[crate::stage::SPEC];
}

proxy_wasm::main! {{
    kit::runtime::register::<Transform>();
}}
