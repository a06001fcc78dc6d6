//! A chain declared out of the suite's order runs in the declared order in every form: the
//! suite module always runs its stages in suite order, so `chain::Form::Suite` splits such a
//! chain into several suite filters (see `Form::Suite`). Here transform, declared before
//! api-key-auth, adds alice's key: api-key-auth then finds it and lets the request through as
//! alice. Rendered as one suite filter, api-key-auth would run first and refuse it (401).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use apim_integration::bootstrap::{bootstrap, upstream_cluster};
use apim_integration::chain::{for_each_form, main_listener, Chain, Filter};
use apim_integration::demo_keys::ALICE;
use apim_integration::echo::{echoed_header, upstream_echo};
use apim_integration::{Envoy, Request};

const API_KEY_AUTH: &str = r#"{
  "consumers": [
    {"id": "alice", "keys": [{"sha256": "dc275ab1c4bc17899cdfff16563da508be4c9275589ce936577f52f0512f22bb"}]}
  ],
  "forward": {"consumer_id_header": "x-consumer-id"}
}"#;

#[test]
fn transform_declared_before_api_key_auth_runs_before_it() {
    for_each_form(|form| {
        let transform = format!(
            r#"{{"rules": [{{"request": {{"headers": {{"add": {{"x-api-key": "{ALICE}"}}}}}}}}]}}"#
        );
        let chain = Chain::new()
            .filter(Filter::Transform, &transform)
            .filter(Filter::ApiKeyAuth, API_KEY_AUTH)
            .vm("declared_order");
        let config = bootstrap(
            &[main_listener(&chain, form)],
            &[upstream_cluster("upstream")],
        );
        let envoy = Envoy::start(&config).unwrap();
        let r = Request::get("/pets").send(envoy.port()).unwrap();
        assert_eq!(r.status, 200, "{form:?}: {}\n{}", r.text(), envoy.log());
        let echo = upstream_echo(&r, "the key transform added");
        assert_eq!(echoed_header(&echo, "x-consumer-id"), ["alice"], "{form:?}");
    });
}
