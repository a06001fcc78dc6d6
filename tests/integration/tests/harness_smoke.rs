//! Proves the harness itself: Envoy with the empty Wasm filter in front of the echo upstream,
//! the raw client, the admin helpers, and refusal of a bad config.

use apim_integration::bootstrap::{bootstrap, listener, upstream_cluster, wasm_filter};
use apim_integration::{send_raw, upstream_port, Envoy, Request};

/// Listener (stat prefix `ingress`) → Wasm noop → router → the echo upstream. The noop module
/// is no filter of the suite, so it is the same in every form: a plain Wasm filter.
fn noop_proxy() -> String {
    let main = listener("main", "upstream")
        .stat_prefix("ingress")
        .filter(wasm_filter("wasm_noop", ""));
    bootstrap(&[main], &[upstream_cluster("upstream")])
}

#[test]
fn request_reaches_echo_through_wasm_noop() {
    let envoy = Envoy::start(&noop_proxy()).unwrap();
    let response = Request::new("POST", "/hello/world?q=1&q=2")
        .header("x-dup", "first")
        .header("x-dup", "second")
        .header_bytes("x-bytes", b"caf\xe9")
        .body("payload")
        .send(envoy.port())
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("Content-Type"), Some("application/json"));

    let echo = response.json();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/hello/world?q=1&q=2");
    assert_eq!(echo["body"], "payload");
    let headers = echo["headers"].as_array().unwrap();
    let values = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|h| h[0] == name)
            .map(|h| h[1].as_str().unwrap())
            .collect()
    };
    assert_eq!(values("x-dup"), ["first", "second"]);
    assert_eq!(values("x-bytes"), ["caf\u{fffd}"]);
    assert_eq!(values(":authority"), Vec::<&str>::new());
    assert_eq!(values("host"), ["localhost"]);

    assert_eq!(envoy.counter("http.ingress.downstream_rq_2xx"), Some(1));
    assert_eq!(envoy.counter("no.such.stat"), None);
    assert!(envoy.stats_prometheus().contains(
        "envoy_http_downstream_rq_completed{envoy_http_conn_manager_prefix=\"ingress\"}"
    ));
    // Envoy may write the line after it already serves: wait for it (bounded), never race it.
    envoy.wait_for_log("starting main dispatch loop").unwrap();
}

#[test]
fn upstream_status_handler_through_envoy() {
    let envoy = Envoy::builder()
        .concurrency(1)
        .log_level("warn")
        .start(&noop_proxy())
        .unwrap();
    let response = Request::get("/status/418").send(envoy.port()).unwrap();
    assert_eq!(response.status, 418);
    assert_eq!(response.json()["path"], "/status/418");
    assert_eq!(envoy.counter("http.ingress.downstream_rq_4xx"), Some(1));
}

#[test]
fn raw_client_talks_to_the_upstream_directly() {
    let response = send_raw(
        upstream_port(),
        b"GET /raw HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json()["headers"][1],
        serde_json::json!(["x-a", "1"])
    );
}

#[test]
fn malformed_request_gets_400_from_envoy() {
    let envoy = Envoy::start(&noop_proxy()).unwrap();
    let response = send_raw(
        envoy.port(),
        b"GET / HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n",
    )
    .unwrap();
    assert_eq!(response.status, 400);
}

#[test]
fn bad_config_is_refused_with_a_message() {
    let bad = noop_proxy().replacen(
        "static_resources:",
        "no_such_field: 1\nstatic_resources:",
        1,
    );
    let log = Envoy::start_expect_failure(&bad).unwrap();
    assert!(log.contains("no_such_field"), "{log}");
    assert!(log.contains("unknown fields"), "{log}");
}

#[test]
fn good_config_is_not_a_failure() {
    let err = Envoy::start_expect_failure(&noop_proxy()).unwrap_err();
    assert!(err.contains("became ready"), "{err}");
}
