//! api-key-auth end to end: what reaches the upstream and the filters after it: forged
//! consumer headers replaced, the key kept when `strip_credential` is false (and the
//! defaults), the identity published as filter state.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod api_key_auth_common;

use api_key_auth_common::*;
use apim_integration::chain::for_each_form;
use apim_integration::LogOnFailure;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// 8: forged consumer headers

#[test]
fn forged_consumer_headers_are_replaced_by_the_real_ones() {
    for_each_form(|form| {
        let (port, _log) = main_listener(form);
        let r = send(
            port,
            &get("/pets")
                .header("x-consumer-id", "mallory")
                .header("X-Consumer-Id", "eve")
                .header("x-api-key", ALICE)
                .header("x-consumer-plan", "platinum")
                .header("x-consumer-plan", "diamond"),
        );
        let up = Upstream::of(&r);
        assert_eq!(up.values("x-consumer-id"), ["alice"]);
        assert_eq!(up.values("x-consumer-plan"), ["gold"]);

        // A consumer without a plan: a forged plan header is removed, not kept.
        let r = send(
            port,
            &get("/pets")
                .header("x-consumer-plan", "platinum")
                .header("x-consumer-id", "mallory")
                .header("x-api-key", OPS),
        );
        let up = Upstream::of(&r);
        assert_eq!(up.values("x-consumer-id"), ["ops"]);
        up.lacks("x-consumer-plan");
    });
}

// ---------------------------------------------------------------------------------------------
// 9: strip_credential false, and the defaults

#[test]
fn strip_credential_false_keeps_the_key_and_defaults_apply() {
    for_each_form(|form| {
        let envoy = shared(form);
        let _log = LogOnFailure(envoy);
        let port = envoy.listener_port("defaults").unwrap();

        let r = send(port, &get("/d?api_key=ignored").header("x-api-key", ALICE));
        let up = Upstream::of(&r);
        assert_eq!(up.one("x-api-key"), ALICE);
        // Query keys are not a default source: the parameter is just a parameter.
        assert_eq!(up.path(), "/d?api_key=ignored");
        // No `forward` configured: no consumer headers are added.
        up.lacks("x-consumer-id");
        up.lacks("x-consumer-plan");

        // Default realm "apim"; only x-api-key is a default source.
        for request in [
            get("/d"),
            get(&format!("/d?api_key={ALICE}")),
            get("/d").header("authorization", &format!("ApiKey {ALICE}")),
            get("/d").header("cookie", &format!("api_key={ALICE}")),
        ] {
            let r = send(port, &request);
            assert_denied(&r, 401, "missing_api_key", "apim");
        }
        // Default max_key_length (256).
        let r = send(port, &get("/d").header("x-api-key", &"k".repeat(257)));
        let body = assert_denied(&r, 401, "invalid_api_key", "apim");
        assert_eq!(body["detail"], "The API key is longer than 256 bytes.");
    });
}

// ---------------------------------------------------------------------------------------------
// 10: the identity hand-off

#[test]
fn identity_is_published_as_filter_state_for_later_filters() {
    for_each_form(|form| {
        let (port, _log) = main_listener(form);
        let r = send(port, &get("/pets").header("x-api-key", ALICE));
        let up = Upstream::of(&r);
        // Read by the Lua filter after ours...
        assert_eq!(up.one("x-lua-consumer"), ALICE_IDENTITY);
        // ...and by Envoy's formatter when the router adds the route's headers.
        assert_eq!(up.one("x-filter-state"), ALICE_IDENTITY);
        let identity: Value = serde_json::from_str(&up.one("x-lua-consumer")).unwrap();
        assert_eq!(identity["id"], "alice");
        assert_eq!(identity["plan"], "gold");
        assert_eq!(identity["source"], "api-key-auth");

        // A consumer without plan or groups: those members are left out.
        let r = send(port, &get("/admin").header("x-api-key", OPS));
        assert_eq!(
            Upstream::of(&r).one("x-lua-consumer"),
            r#"{"id":"ops","groups":["ops"],"source":"api-key-auth"}"#
        );

        // Nothing is published when the filter lets a request pass unauthenticated, and a client
        // cannot set filter state with a header.
        let r = send(
            port,
            &get("/health").header("x-filter-state", ALICE_IDENTITY),
        );
        let up = Upstream::of(&r);
        assert_eq!(up.one("x-lua-consumer"), "(none)");
    });
}
