//! The native runtime's fail-closed path, end to end: a stage that panics inside Envoy must not
//! abort it. `libapim_test_fault.so` (tests/native-fault) panics when asked; the request it
//! panics on gets a 500 problem reply without reaching the upstream, a panic on the response
//! side resets the stream, each is counted on `apim.test_fault.failed_closed` and logged, and
//! the next request is served as usual.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use apim_integration::bootstrap::{single_listener_bootstrap, wasm_filter};
use apim_integration::{Envoy, Request};

const FAILED: &str = "wasmcustom.apim.test_fault.failed_closed";

#[test]
fn a_panicking_stage_fails_the_request_closed_and_envoy_serves_on() {
    let filter = wasm_filter("test_fault", "{}").native("apim_test_fault");
    let envoy = Envoy::start(&single_listener_bootstrap("", &[filter])).unwrap();
    let port = envoy.port();
    let ok = |what: &str| {
        let r = Request::get("/pets").send(port).unwrap();
        assert_eq!(r.status, 200, "{what}: {}\n{}", r.text(), envoy.log());
    };
    ok("before any fault");
    let upstream = envoy.upstream_requests("upstream");

    let r = Request::get("/pets")
        .header("x-fault", "request")
        .send(port)
        .unwrap();
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["code"], "internal_error");
    assert_eq!(
        envoy.upstream_requests("upstream"),
        upstream,
        "the request the stage failed on never reached the upstream"
    );
    assert_eq!(envoy.counter(FAILED), Some(1), "{:?}", envoy.stats());
    ok("after a request-side fault");

    // On the response side the answer may already be on its way: the stream is reset, so the
    // client never gets the upstream's 200 as if nothing happened.
    let r = Request::get("/pets")
        .header("x-fault", "response")
        .send(port);
    assert!(
        r.as_ref().map_or(true, |r| r.status != 200),
        "a response-side fault must not answer 200: {:?}",
        r.map(|r| r.status)
    );
    assert_eq!(envoy.counter(FAILED), Some(2));
    ok("after a response-side fault");

    // Envoy writes its log asynchronously: wait (bounded) for each line.
    for line in [
        "test-fault: internal failure in a stage; the request was refused (500)",
        "test-fault: internal failure in a stage; the stream was reset",
    ] {
        envoy.wait_for_log(line).unwrap();
    }
}
