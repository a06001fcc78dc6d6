//! `libapim_transform.so`: transform's stage alone, as an Envoy dynamic module.

struct Transform;

impl apim_native::Module for Transform {
    const NAME: &'static str = "transform";
    const SPECS: &'static [kit::stage::StageSpec] = &[transform::stage::SPEC];
}

apim_native::export_module!(Transform);
