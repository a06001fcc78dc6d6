//! The module `api_key_auth.wasm`: kit's one root, running this crate's stage alone.

struct ApiKeyAuth;

impl kit::runtime::Module for ApiKeyAuth {
    const NAME: &'static str = "api-key-auth";
    const SPECS: &'static [kit::stage::StageSpec] = &[crate::stage::SPEC];
}

proxy_wasm::main! {{
    kit::runtime::register::<ApiKeyAuth>();
}}
