//! Config updates at run time: the filter's config arrives through ECDS (a watched file, the
//! way a control plane pushes it), so a refused update can be seen being refused while the
//! previous config keeps serving, and an accepted one takes effect without a restart.

// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use apim_integration::{Envoy, Request};
use std::path::Path;
use std::time::{Duration, Instant};

const ALICE_KEY: &str = "demo-key-alice-0123456789abcdef";
// sha256("demo-key-alice-0123456789abcdef")
const ALICE_DIGEST: &str = "dc275ab1c4bc17899cdfff16563da508be4c9275589ce936577f52f0512f22bb";
const STAT: &str = "extension_config_discovery.http_filter.apim.api_key_auth";

fn ecds_resource(filter_config: &str) -> String {
    format!(
        r#"resources:
- "@type": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig
  name: apim.api_key_auth
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config:
      name: api_key_auth
      root_id: api_key_auth
      failure_policy: FAIL_CLOSED
      vm_config:
        vm_id: api_key_auth
        runtime: envoy.wasm.runtime.v8
        code: {{ local: {{ filename: "{{{{WASM:api_key_auth}}}}" }} }}
      configuration:
        "@type": type.googleapis.com/google.protobuf.StringValue
        value: '{filter_config}'
"#
    )
}

fn bootstrap(ecds_path: &Path) -> String {
    format!(
        r#"node: {{id: reload-test, cluster: reload-test}}
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
static_resources:
  listeners:
  - name: main
    address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: echo}}
          http_filters:
          - name: apim.api_key_auth
            config_discovery:
              config_source:
                path_config_source: {{path: "{path}"}}
                resource_api_version: V3
              type_urls: ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"]
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: echo
    type: STATIC
    load_assignment:
      cluster_name: echo
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: "{{{{UPSTREAM_PORT}}}}"}}}}}}
"#,
        path = ecds_path.display()
    )
}

/// Writes the resource file the way a control plane must: a complete file moved into place, so
/// Envoy's file watch never sees half a file.
fn publish(path: &Path, filter_config: &str) {
    let rendered = apim_integration::render(&ecds_resource(filter_config)).unwrap();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, rendered).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Polls a counter until it reaches `want` (the deadline only bounds a hang).
fn wait_counter(envoy: &Envoy, name: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if envoy.counter(name).unwrap_or(0) >= want {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never reached {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn consumer_seen(envoy: &Envoy) -> (u16, Option<String>) {
    let r = Request::get("/pets")
        .header("x-api-key", ALICE_KEY)
        .send(envoy.port())
        .unwrap();
    if r.status != 200 {
        return (r.status, None);
    }
    let json = r.json();
    let id = json["headers"]
        .as_array()
        .and_then(|hs| hs.iter().find(|h| h[0] == "x-consumer-id"))
        .and_then(|h| h[1].as_str())
        .map(str::to_string);
    (r.status, id)
}

fn config_for(consumer: &str, digest: &str) -> String {
    format!(
        r#"{{"consumers":[{{"id":"{consumer}","keys":[{{"sha256":"{digest}"}}]}}],"forward":{{"consumer_id_header":"x-consumer-id"}}}}"#
    )
}

#[test]
fn bad_update_is_rejected_and_the_old_config_keeps_serving_then_a_good_one_applies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api_key_auth.ecds.yaml");
    publish(&path, &config_for("alice", ALICE_DIGEST));
    let envoy = Envoy::start(&bootstrap(&path)).unwrap();
    assert_eq!(consumer_seen(&envoy), (200, Some("alice".into())));

    // A digest that is not one: the filter refuses it, so Envoy refuses the update.
    publish(&path, &config_for("alice", "not-a-digest"));
    wait_counter(&envoy, &format!("{STAT}.update_rejected"), 1);
    envoy
        .wait_for_log("api-key-auth: invalid configuration: consumers[id=alice].keys[0].sha256")
        .unwrap();
    assert_eq!(
        consumer_seen(&envoy),
        (200, Some("alice".into())),
        "the old config still serves"
    );

    // A valid update takes effect in place.
    publish(&path, &config_for("alice-v2", ALICE_DIGEST));
    wait_counter(&envoy, &format!("{STAT}.update_success"), 2);
    assert_eq!(consumer_seen(&envoy), (200, Some("alice-v2".into())));
    assert_eq!(envoy.counter(&format!("{STAT}.update_rejected")), Some(1));
}
