//! The suite module (`apim_suite.wasm`) on its own: its example bootstrap answers as its
//! comment says, and a config it refuses is refused by Envoy with the section and field named.
//! The whole demo chain in both forms is tests/chain.rs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use apim_integration::bootstrap::{single_listener_bootstrap, wasm_filter};
use apim_integration::{repo_root, Envoy, LogOnFailure, Request};

const ALICE: &str = "demo-key-alice-0123456789abcdef";

#[test]
fn the_suite_example_answers_as_documented() {
    let shipped = std::fs::read_to_string(repo_root().join("envoy/examples/suite.yaml")).unwrap();
    let template = shipped
        .replace("port_value: 10000", "port_value: 0")
        .replace("port_value: 9901", "port_value: 0");
    let envoy: &'static Envoy = Box::leak(Box::new(Envoy::start(&template).unwrap()));
    let _log = LogOnFailure(envoy);
    let r = Request::get("/anything").send(envoy.port()).unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["code"], "missing_api_key");
    let r = Request::get("/anything")
        .header("x-api-key", ALICE)
        .send(envoy.port())
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-consumer-id"), Some("alice"));
    assert_eq!(r.header("x-greeting"), Some("hello alice (gold)"));
    assert!(
        r.header("ratelimit-policy")
            .is_some_and(|p| p.contains("gold-burst")),
        "{:?}",
        r.headers
    );
}

#[test]
fn a_refused_suite_config_names_the_section_and_the_field() {
    struct Case {
        config: &'static str,
        want: &'static str,
    }
    let cases = [
        Case {
            config: r#"{"api_key_auth": {"consumers": []}, "qouta": {}}"#,
            want: "suite: invalid configuration: qouta: unknown section (known: api_key_auth, \
                   scope_authz, graphql_guard, quota, transform)",
        },
        Case {
            config: r#"{"quota": {"plans": {"p": {"limits": [{"requests": 0, "per": "second"}]}}, "default_plan": "p"}}"#,
            want: "suite: invalid configuration: quota.plans.p.limits[0].requests: must be between 1 and",
        },
        Case {
            config: "{}",
            want: "suite: invalid configuration: (whole config): no section: give at least one of",
        },
    ];
    for case in cases {
        let config = single_listener_bootstrap("", &[wasm_filter("apim_suite", case.config)]);
        let log = Envoy::start_expect_failure(&config).unwrap_or_else(|e| panic!("{e}"));
        let line = log
            .lines()
            .find(|l| l.contains("suite: invalid configuration: "))
            .unwrap_or_else(|| panic!("no refusal line for {}:\n{log}", case.config));
        assert!(line.contains("[error]"), "{line}");
        assert!(line.contains(case.want), "{line}");
    }
}
