//! `libapim_graphql_guard.so`: graphql-guard's stage alone, as an Envoy dynamic module.

struct GraphqlGuard;

impl apim_native::Module for GraphqlGuard {
    const NAME: &'static str = "graphql-guard";
    const SPECS: &'static [kit::stage::StageSpec] = &[graphql_guard::stage::SPEC];
}

apim_native::export_module!(GraphqlGuard);
