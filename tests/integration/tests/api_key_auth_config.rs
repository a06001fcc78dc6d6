//! api-key-auth end to end: a bad configuration is refused at load, naming the field.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod api_key_auth_common;

use api_key_auth_common::*;
use apim_integration::chain::{for_each_form, Filter};
use apim_integration::Envoy;

// ---------------------------------------------------------------------------------------------
// 12: bad configuration is refused at load

#[test]
fn unknown_config_field_is_refused_and_named() {
    for_each_form(|form| {
        let config = config(form, r#"{"consumers": [], "consumerz": [{"id": "alice"}]}"#);
        let log = Envoy::start_expect_failure(&config).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            log.contains(&format!(
                "{}consumerz: unknown field `consumerz`",
                form.refusal_prefix(Filter::ApiKeyAuth)
            )),
            "{log}"
        );
    });
}

#[test]
fn bad_digest_is_refused_and_its_path_named() {
    for_each_form(|form| {
        let config = config(
            form,
            r#"{"consumers": [{"id": "alice", "keys": [{"sha256": "not-a-digest"}]}]}"#,
        );
        let log = Envoy::start_expect_failure(&config).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            log.contains(&format!(
                "{}consumers[id=alice].keys[0].sha256: ",
                form.refusal_prefix(Filter::ApiKeyAuth)
            )),
            "{log}"
        );
        // on_configure's false made Envoy refuse the plugin, and so the bootstrap.
        assert!(
            log.contains(&form.load_failure(Filter::ApiKeyAuth)),
            "{log}"
        );
    });
}
