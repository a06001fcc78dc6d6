//! The module `graphql_guard.wasm`: kit's one root, running this crate's stage alone.

struct GraphqlGuard;

impl kit::runtime::Module for GraphqlGuard {
    const NAME: &'static str = "graphql-guard";
    const SPECS: &'static [kit::stage::StageSpec] = &[crate::stage::SPEC];
}

proxy_wasm::main! {{
    kit::runtime::register::<GraphqlGuard>();
}}
