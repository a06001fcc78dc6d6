use super::*;

/// A bootstrap with one config as JSON text in a `|` block, one Istio WasmPlugin, one Envoy
/// Gateway policy (YAML configs) and the suite module's WasmPlugin (a section per filter), each
/// with one thing wrong.
const FILE: &str = r#"static_resources:
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
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: |
                    {
                      "consumers": [
                        {"id": "guest"},
                        {"id": "alice", "keys": [{"sha256": "not-a-digest"}]}
                      ]
                    }
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: apim-quota }
spec:
  pluginName: quota
  pluginConfig:
    plans:
      free:
        limits:
        - requests: 0
          per: second
    default_plan: free
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyExtensionPolicy
metadata: { name: apim-chain }
spec:
  wasm:
  - name: api_key_auth
    rootID: api_key_auth
    config:
      consumers:
      - id: partner
        keys:
        - plaintext: secret
      rules:
      - match: { route_name: health }
        skip: true
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: apim-suite }
spec:
  url: oci://ghcr.io/apim-suite/apim-suite:0.1.0
  pluginName: apim_suite
  pluginConfig:
    quota:
      plans:
        free:
          limits:
          - requests: 5
            per: second
      default_plan: free
      rules:
      - match: { route_name: health }
        skip: true
"#;

fn reports(text: &str, target: Option<Target>) -> Vec<(String, Report)> {
    let docs = documents(text).unwrap();
    let mut out = Vec::new();
    for doc in &docs {
        for found in discover::configs(doc) {
            let filter = found.filter.clone().unwrap();
            let target = target.unwrap_or(found.target);
            out.push((found.label.clone(), check_one(&found, filter, target)));
        }
    }
    out
}

#[test]
fn every_error_is_reported_where_it_is_in_the_file() {
    let got = reports(FILE, None);
    let errors: Vec<(String, Vec<(String, String)>)> = got
        .iter()
        .map(|(label, r)| {
            let e = r.errors.iter().map(|(at, e)| (at.to_string(), e.clone()));
            (label.clone(), e.collect())
        })
        .collect();
    let want: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "Wasm plugin api_key_auth",
            // The field inside the JSON text, at its line and column in the file.
            vec![(
                "18:51",
                "consumers[id=alice].keys[0].sha256: ",
            )],
        ),
        (
            "WasmPlugin apim-quota",
            vec![(
                "31:11",
                "plans.free.limits[0].requests: must be between 1 and",
            )],
        ),
        (
            "EnvoyExtensionPolicy apim-chain wasm[0]",
            vec![
                (
                    "46:11",
                    "consumers[id=partner].keys[0].plaintext: a deploy manifest holds API keys as sha256 digests only",
                ),
                ("48:18", "rules[0].match.route_name: Envoy Gateway generates route names"),
                ("46:11", "consumers[id=partner].keys[0].plaintext: plaintext keys are refused"),
            ],
        ),
        (
            // The suite module's config: the target checks reach into its sections.
            "WasmPlugin apim-suite",
            vec![(
                "66:18",
                "quota.rules[0].match.route_name: Istio generates route names",
            )],
        ),
    ];
    assert_eq!(errors.len(), want.len(), "{errors:#?}");
    for ((label, errs), (want_label, want_errs)) in errors.iter().zip(&want) {
        assert_eq!(label, want_label);
        assert_eq!(errs.len(), want_errs.len(), "{label}: {errs:#?}");
        for ((at, e), (want_at, want_e)) in errs.iter().zip(want_errs) {
            assert_eq!(at, want_at, "{label}: {e}");
            assert!(e.starts_with(want_e), "{label}: {e}");
        }
    }
}

#[test]
fn the_target_given_overrides_the_documents() {
    // As a bootstrap of your own (envoy), route names are yours: only the filter's own error.
    let got = reports(FILE, Some(Target::Envoy));
    let policy = &got[2].1;
    assert_eq!(policy.errors.len(), 1, "{policy:?}");
    assert!(policy.errors[0].1.contains("plaintext keys are refused"));
}

#[test]
fn json_syntax_errors_point_into_the_text() {
    let text = "a:\n  typed_config:\n    \"@type\": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm\n    config:\n      root_id: quota\n      configuration:\n        value: |\n          {\"plans\": {\n            \"free\": }\n          }\n";
    let got = reports(text, None);
    let (at, e) = &got[0].1.errors[0];
    // The member whose value is broken (`"free"`, JSON line 2), at its place in the file.
    assert!(e.starts_with("plans.free: expected value"), "{e}");
    assert_eq!(at.to_string(), "9:13", "{e}");
}

#[test]
fn deployment_files_are_told_from_filter_configs() {
    let cases = [
        (FILE, true),
        ("{\"consumers\": []}", false),
        ("kind: WasmPlugin\n", true),
        ("---\nadmin: {}\n", true),
        ("plans: {}\n", false),
    ];
    for (text, want) in cases {
        assert_eq!(
            is_deployment_file(&documents(text).unwrap()),
            want,
            "{text}"
        );
    }
}
