//! The module `scope_authz.wasm`: kit's one root, running this crate's stage alone.

struct ScopeAuthz;

impl kit::runtime::Module for ScopeAuthz {
    const NAME: &'static str = "scope-authz";
    const SPECS: &'static [kit::stage::StageSpec] = &[crate::stage::SPEC];
}

proxy_wasm::main! {{
    kit::runtime::register::<ScopeAuthz>();
}}
