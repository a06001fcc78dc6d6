//! The suite module (`apim_suite.wasm`) on its own: its example bootstrap answers as its
//! comment says, and a config it refuses is refused by Envoy with the section and field named.
//! The whole demo chain in both forms is tests/chain.rs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apim_integration::bootstrap::{single_listener_bootstrap, wasm_filter};
use apim_integration::{repo_root, Envoy, LogOnFailure, Request};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

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

/// api-key-auth, scope-authz with a remote JWKS (served by the echo upstream) and quota, in the
/// suite: the JWKS arrives through the suite's one timer and a callout of its root, and a
/// token's subject and the key's consumer both pass.
const REMOTE_JWKS: &str = r#"
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  clusters:
  - name: upstream
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{UPSTREAM_PORT}}}}}
  listeners:
  - name: main
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: main
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /}
                route: {cluster: upstream}
          http_filters:
          - name: apim.suite
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: apim_suite
                failure_policy: FAIL_CLOSED
                vm_config:
                  vm_id: apim_suite_remote_jwks
                  runtime: envoy.wasm.runtime.v8
                  code: {local: {filename: "{{WASM:apim_suite}}"}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: |
                    {
                      "api_key_auth": {
                        "consumers": [{"id": "alice", "plan": "gold", "scopes": ["pets:read"],
                          "keys": [{"sha256": "dc275ab1c4bc17899cdfff16563da508be4c9275589ce936577f52f0512f22bb"}]}],
                        "rules": [{"match": {"path": {"prefix": "/token"}}, "skip": true}],
                        "forward": {"consumer_id_header": "x-consumer-id"}
                      },
                      "scope_authz": {
                        "providers": [{
                          "name": "test", "issuer": "https://issuer.test", "audiences": ["api"],
                          "algorithms": ["RS256"],
                          "jwks": {"remote": {"cluster": "upstream", "path": "/jwks/suite/keys",
                                              "refresh_seconds": 300, "min_refetch_seconds": 1,
                                              "timeout_ms": 1000}}
                        }],
                        "default_require": {"all_of": ["pets:read"]},
                        "forward_claims": [{"claim": "sub", "header": "x-user"}]
                      },
                      "quota": {
                        "plans": {"gold": {"limits": [{"requests": 1000000, "per": "second"}]},
                                  "free": {"limits": [{"requests": 1000000, "per": "second"}]}},
                        "default_plan": "free",
                        "key": ["consumer"]
                      }
                    }
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#;

fn seen(r: &apim_integration::Response, name: &str) -> Vec<String> {
    r.json()["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0] == name)
        .map(|h| h[1].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_remote_jwks_is_fetched_by_the_suites_timer_and_root_callout() {
    let envoy: &'static Envoy = Box::leak(Box::new(Envoy::start(REMOTE_JWKS).unwrap()));
    let _log = LogOnFailure(envoy);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let key =
        EncodingKey::from_rsa_pem(include_str!("../fixtures/scope-authz/rsa1.pem").as_bytes())
            .unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa1".into());
    let claims = json!({"iss": "https://issuer.test", "aud": "api", "sub": "user-1",
        "scope": "pets:read", "iat": now - 5, "exp": now + 3600});
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let send = || {
        Request::get("/token/pets")
            .header("authorization", &format!("Bearer {token}"))
            .send(envoy.port())
            .unwrap()
    };
    // Bounded wait for the first fetch (a tick after start); never a timing decision.
    let deadline = Instant::now() + Duration::from_secs(20);
    let r = loop {
        let r = send();
        if r.status == 200 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(seen(&r, "x-user"), ["user-1"]);
    assert!(envoy.count("wasmcustom.apim.scope_authz.jwks_fetch") >= 1);
    // The API key path in the same module: identity from api-key-auth, scopes from it.
    let r = Request::get("/pets")
        .header("x-api-key", ALICE)
        .send(envoy.port())
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(seen(&r, "x-consumer-id"), ["alice"]);
}
