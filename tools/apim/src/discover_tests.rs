use super::*;
use crate::yaml_pos::{load, Pos};

#[test]
fn filters_are_named_by_crate_module_file_or_url() {
    let cases = [
        ("api-key-auth", Some("api-key-auth")),
        ("api_key_auth", Some("api-key-auth")),
        (
            "target/wasm32-wasip1/release/scope_authz.wasm",
            Some("scope-authz"),
        ),
        (
            "oci://ghcr.io/apim-suite/graphql-guard:0.1.0",
            Some("graphql-guard"),
        ),
        ("ghcr.io/apim-suite/quota@sha256:abc", Some("quota")),
        ("https://example.com/v1/transform.wasm", Some("transform")),
        ("apim.api_key_auth", Some("api-key-auth")),
        ("apim-scope-authz", Some("scope-authz")),
        ("Quota", Some("quota")),
        // The suite module (issue 11): a config with a section per filter.
        ("apim_suite", Some("suite")),
        (
            "target/wasm32-wasip1/release/apim_suite.wasm",
            Some("suite"),
        ),
        // As the suite manifests name it (envoy/istio, envoy/gateway-api).
        ("oci://ghcr.io/apim-suite/apim-suite:0.1.0", Some("suite")),
        (
            "https://github.com/apim-suite/apim/releases/download/v0.1.0/apim_suite.wasm",
            Some("suite"),
        ),
        ("noop", None),
        ("", None),
    ];
    for (name, want) in cases {
        assert_eq!(filter_named(name), want, "{name}");
    }
}

const BOOTSTRAP: &str = r#"static_resources:
  listeners:
  - filter_chains:
    - filters:
      - typed_config:
          http_filters:
          - name: apim.api_key_auth
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                root_id: api_key_auth
                vm_config:
                  code: { local: { filename: target/wasm32-wasip1/release/api_key_auth.wasm } }
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: |
                    {"consumers": []}
          - name: noop
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                root_id: noop
                vm_config: { code: { local: { filename: noop.wasm } } }
          - name: router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
"#;

const MANIFESTS: &str = r#"apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: apim-quota }
spec:
  url: oci://ghcr.io/apim-suite/quota:0.1.0
  pluginName: quota
  pluginConfig:
    default_plan: free
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyExtensionPolicy
metadata: { name: chain }
spec:
  wasm:
  - name: a
    rootID: transform
    config: { rules: [] }
  - name: b
    code: { type: HTTP, http: { url: "https://x/graphql_guard.wasm" } }
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: { name: apim-scope-authz }
spec:
  configPatches:
  - applyTo: EXTENSION_CONFIG
    patch:
      value:
        name: apim.scope_authz
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
          config:
            root_id: scope_authz
            configuration:
              "@type": type.googleapis.com/google.protobuf.StringValue
              value: '{"providers": []}'
"#;

/// (filter, label, target, config kind and where it is).
fn summary(found: &[Found<'_>]) -> Vec<(Result<&'static str, String>, String, Target, String)> {
    found
        .iter()
        .map(|f| {
            let config = match f.config {
                Config::Text(n) => format!("text@{}", n.pos),
                Config::Yaml(n) => format!("yaml@{}", n.pos),
                Config::Missing(n) => format!("missing@{}", n.pos),
            };
            (f.filter.clone(), f.label.clone(), f.target, config)
        })
        .collect()
}

#[test]
fn configs_are_found_in_a_bootstrap() {
    let docs = load(BOOTSTRAP).unwrap();
    assert!(is_deployment(&docs[0]));
    let found = configs(&docs[0]);
    assert_eq!(
        summary(&found),
        [
            (
                Ok("api-key-auth"),
                "Wasm plugin api_key_auth".to_string(),
                Target::Envoy,
                "text@17:21".to_string()
            ),
            (
                Err("noop.wasm".to_string()),
                "Wasm plugin noop".to_string(),
                Target::Envoy,
                format!("missing@{}", Pos { line: 22, col: 17 })
            ),
        ]
    );
}

#[test]
fn configs_are_found_in_every_manifest_kind() {
    let docs = load(MANIFESTS).unwrap();
    let found: Vec<_> = docs.iter().flat_map(configs).collect();
    assert_eq!(
        summary(&found),
        [
            (
                Ok("quota"),
                "WasmPlugin apim-quota".to_string(),
                Target::Istio,
                "yaml@8:5".to_string()
            ),
            (
                Ok("transform"),
                "EnvoyExtensionPolicy chain wasm[0]".to_string(),
                Target::GatewayApi,
                "yaml@17:15".to_string()
            ),
            (
                Ok("graphql-guard"),
                "EnvoyExtensionPolicy chain wasm[1]".to_string(),
                Target::GatewayApi,
                "missing@18:5".to_string()
            ),
            (
                Ok("scope-authz"),
                "EnvoyFilter apim-scope-authz: Wasm plugin scope_authz".to_string(),
                Target::Istio,
                "text@36:22".to_string()
            ),
        ]
    );
    let plain = load(r#"{"consumers": []}"#).unwrap();
    assert!(!is_deployment(&plain[0]));
}
