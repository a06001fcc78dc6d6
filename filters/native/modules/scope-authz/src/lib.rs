//! `libapim_scope_authz.so`: scope-authz's stage alone, as an Envoy dynamic module.

struct ScopeAuthz;

impl apim_native::Module for ScopeAuthz {
    const NAME: &'static str = "scope-authz";
    const SPECS: &'static [kit::stage::StageSpec] = &[scope_authz::stage::SPEC];
}

apim_native::export_module!(ScopeAuthz);
