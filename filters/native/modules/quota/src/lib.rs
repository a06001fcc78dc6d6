//! `libapim_quota.so`: quota's stage alone, as an Envoy dynamic module.

struct Quota;

impl apim_native::Module for Quota {
    const NAME: &'static str = "quota";
    const SPECS: &'static [kit::stage::StageSpec] = &[quota::stage::SPEC];
}

apim_native::export_module!(Quota);
