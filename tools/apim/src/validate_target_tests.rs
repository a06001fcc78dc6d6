use serde_json::json;

use super::*;

#[test]
fn route_name_rules_are_refused_where_route_names_are_generated() {
    let config = json!({"rules": [
        {"match": {"path": {"prefix": "/pets"}}, "skip": true},
        {"match": {"route_name": "health"}, "skip": true}
    ]});
    let cases: [(Target, Option<&str>); 3] = [
        (Target::Envoy, None),
        (
            Target::Istio,
            Some("rules[1].match.route_name: Istio generates route names"),
        ),
        (
            Target::GatewayApi,
            Some("rules[1].match.route_name: Envoy Gateway generates route names"),
        ),
    ];
    for (target, want) in cases {
        let (errors, warnings) = check(target, &config);
        assert!(warnings.is_empty(), "{target:?}: {warnings:?}");
        match want {
            None => assert!(errors.is_empty(), "{target:?}: {errors:?}"),
            Some(prefix) => {
                assert_eq!(errors.len(), 1, "{target:?}: {errors:?}");
                assert!(errors[0].starts_with(prefix), "{target:?}: {errors:?}");
            }
        }
    }
}

#[test]
fn keys_are_digests_and_placeholders_are_flagged() {
    let placeholder = format!("{}01", "0".repeat(62));
    let real = "ab".repeat(32);
    let config = json!({"consumers": [
        {"id": "a", "keys": [{"sha256": placeholder}]},
        {"id": "b", "keys": [{"sha256": real}, {"plaintext": "secret"}]}
    ]});
    let (errors, warnings) = check(Target::Istio, &config);
    assert_eq!(
        errors,
        ["consumers[1].keys[1].plaintext: a deploy manifest holds API keys as sha256 digests only (`apim key hash`)"]
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("consumers[0].keys[0].sha256: a placeholder digest"),
        "{warnings:?}"
    );
    assert_eq!(check(Target::Envoy, &config), (vec![], vec![]));
    assert!(is_placeholder_digest(&placeholder));
    assert!(!is_placeholder_digest(&real));
    assert!(!is_placeholder_digest("00"));
}

#[test]
fn configs_are_found_in_every_manifest_kind() {
    let docs = [
        json!({"kind": "WasmPlugin", "spec": {"pluginName": "quota", "pluginConfig": {"a": 1}}}),
        json!({"kind": "EnvoyExtensionPolicy", "spec": {"wasm": [
            {"name": "x", "rootID": "transform", "config": {"b": 2}}]}}),
        json!({"kind": "EnvoyFilter", "spec": {"configPatches": [
            {"applyTo": "NETWORK_FILTER", "patch": {"value": {"typed_config": {"@type": "hcm"}}}},
            {"applyTo": "EXTENSION_CONFIG", "patch": {"value": {"typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {"root_id": "graphql_guard", "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": "{\"c\": 3}"}}}}}}]}}),
        json!({"kind": "ClientTrafficPolicy", "spec": {}}),
    ];
    let found: Vec<(String, Value)> = docs
        .iter()
        .flat_map(|d| embedded_configs("f", d))
        .map(|e| (e.module, e.config))
        .collect();
    assert_eq!(
        found,
        [
            ("quota".to_string(), json!({"a": 1})),
            ("transform".to_string(), json!({"b": 2})),
            ("graphql_guard".to_string(), json!({"c": 3})),
        ]
    );
    assert_eq!(filter_of_module("graphql_guard"), Some("graphql-guard"));
    assert_eq!(filter_of_module("apim_suite"), Some("suite"));
    assert_eq!(filter_of_module("nope"), None);
}
