//! `libapim_api_key_auth.so`: api-key-auth's stage alone, as an Envoy dynamic module.

struct ApiKeyAuth;

impl apim_native::Module for ApiKeyAuth {
    const NAME: &'static str = "api-key-auth";
    const SPECS: &'static [kit::stage::StageSpec] = &[api_key_auth::stage::SPEC];
}

apim_native::export_module!(ApiKeyAuth);
