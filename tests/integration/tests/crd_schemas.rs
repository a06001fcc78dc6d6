//! Every shipped Istio and Envoy Gateway manifest (`envoy/istio`, `envoy/gateway-api`, and the
//! demo's product file rendered for both, `demo/rendered`) is valid
//! against its CRD's own OpenAPI schema, checked by kubeconform, and the check is not vacuous: a
//! shipped resource with one realistic mistake made in it is refused with the field named.
//!
//! The schemas come from the CRD YAML that istio.io/api, Envoy Gateway and Gateway API publish
//! in their Go modules (pinned in the Makefile), made strict by `apim crd-schemas` (unknown
//! fields refused, as the API server prunes or refuses them). `make setup-crds` installs both
//! and `make` exports where they are (`KUBECONFORM_BIN`, `CRD_SCHEMAS`). CEL rules
//! (`x-kubernetes-validations`) are not evaluated by a JSON Schema validator.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use apim_integration::repo_root;
use serde_json::Value as Json;
use serde_yaml::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn tool(var: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("{var} is not set: run the tests through make (`make setup-crds` installs it)")
        });
    assert!(
        path.exists(),
        "{var}={} is missing: run `make setup-crds`",
        path.display()
    );
    path
}

/// kubeconform's JSON report on `paths`.
fn kubeconform(paths: &[&Path]) -> Json {
    let schemas = tool("CRD_SCHEMAS");
    let location = format!(
        "{}/{{{{.Group}}}}/{{{{.ResourceKind}}}}_{{{{.ResourceAPIVersion}}}}.json",
        schemas.display()
    );
    let out = Command::new(tool("KUBECONFORM_BIN"))
        .args([
            "-strict",
            "-verbose",
            "-output",
            "json",
            "-skip",
            "IstioOperator",
        ])
        .args(["-schema-location", &location])
        .args(paths)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "kubeconform's report: {e}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The report's resources (empty YAML documents left out).
fn resources(report: &Json) -> Vec<&Json> {
    report["resources"]
        .as_array()
        .map(|r| r.iter().filter(|r| r["kind"] != "").collect())
        .unwrap_or_default()
}

#[test]
fn every_shipped_manifest_is_valid_against_its_crd() {
    let root = repo_root();
    let report = kubeconform(&[
        &root.join("envoy/istio"),
        &root.join("envoy/gateway-api"),
        &root.join("demo/rendered"),
    ]);
    let all = resources(&report);
    let invalid: Vec<String> = all
        .iter()
        .filter(|r| r["status"] != "statusValid" && r["status"] != "statusSkipped")
        .map(|r| {
            format!(
                "{} {} {}: {}",
                r["filename"], r["kind"], r["name"], r["msg"]
            )
        })
        .collect();
    assert!(invalid.is_empty(), "{invalid:#?}");
    let count = |kind: &str| {
        all.iter()
            .filter(|r| r["kind"] == kind && r["status"] == "statusValid")
            .count()
    };
    // The walk found what is shipped (a broken walk would pass vacuously).
    assert!(count("WasmPlugin") >= 10, "{report}");
    assert!(count("EnvoyFilter") >= 15, "{report}");
    assert!(count("EnvoyExtensionPolicy") >= 10, "{report}");
    // `apim render --target gateway-api` of demo/apim.yaml: its routes and direct response.
    assert!(
        count("HTTPRoute") >= 1 && count("HTTPRouteFilter") >= 1,
        "{report}"
    );
    let skipped: Vec<&Json> = all
        .iter()
        .filter(|r| r["status"] == "statusSkipped")
        .map(|r| &r["kind"])
        .collect();
    // The IstioOperator's CRD is Istio's operator's, not in istio.io/api.
    assert!(skipped.iter().all(|k| *k == "IstioOperator"), "{skipped:?}");
}

/// The first document of `kind` in the shipped file `file`.
fn shipped(file: &str, kind: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    docs.into_iter()
        .find(|v| v["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} in {file}"))
}

fn set(v: &mut Value, path: &[&str], to: Value) {
    let mut at = v;
    for (i, key) in path.iter().enumerate() {
        at = match key.parse::<usize>() {
            Ok(n) => &mut at[n],
            Err(_) if i + 1 == path.len() => {
                at[*key] = to;
                return;
            }
            Err(_) => &mut at[*key],
        };
    }
    *at = to;
}

fn rename(v: &mut Value, path: &[&str], from: &str, to: &str) {
    let mut at = &mut *v;
    for key in path {
        at = match key.parse::<usize>() {
            Ok(n) => &mut at[n],
            Err(_) => &mut at[*key],
        };
    }
    let map = at.as_mapping_mut().unwrap();
    let value = map.remove(from).unwrap_or_else(|| panic!("no {from}"));
    map.insert(Value::from(to), value);
}

#[test]
fn a_mistake_in_a_shipped_manifest_is_refused_with_the_field_named() {
    struct Case {
        what: &'static str,
        resource: Value,
        /// In kubeconform's message for the resource.
        want: &'static str,
    }
    let wasm_plugin = || shipped("envoy/istio/wasmplugin/api-key-auth.yaml", "WasmPlugin");
    let envoy_filter = || shipped("envoy/istio/envoyfilter/gateway/chain.yaml", "EnvoyFilter");
    let policy = || shipped("envoy/gateway-api/quota.yaml", "EnvoyExtensionPolicy");
    let mut cases = Vec::new();
    let mut r = wasm_plugin();
    rename(&mut r, &["spec"], "url", "urll");
    cases.push(Case {
        what: "a misspelt WasmPlugin field",
        resource: r,
        want: "additional properties 'urll' not allowed",
    });
    let mut r = wasm_plugin();
    set(&mut r, &["spec", "phase"], Value::from("EARLY"));
    cases.push(Case {
        what: "a WasmPlugin phase Istio does not have",
        resource: r,
        want: "value must be one of",
    });
    let mut r = wasm_plugin();
    set(
        &mut r,
        &["spec", "failStrategy"],
        Value::from("FAIL_OPEN_ALWAYS"),
    );
    cases.push(Case {
        what: "a WasmPlugin failure strategy Istio does not have",
        resource: r,
        want: "/spec/failStrategy",
    });
    let mut r = envoy_filter();
    set(
        &mut r,
        &["spec", "configPatches", "0", "patch", "operation"],
        Value::from("INSERT_SOMEWHERE"),
    );
    cases.push(Case {
        what: "an EnvoyFilter patch operation Istio does not have",
        resource: r,
        want: "/spec/configPatches/0/patch/operation",
    });
    let mut r = policy();
    rename(&mut r, &["spec", "wasm", "0"], "code", "kode");
    cases.push(Case {
        what: "a misspelt EnvoyExtensionPolicy field",
        resource: r,
        want: "additional properties 'kode' not allowed",
    });
    let mut r = policy();
    set(
        &mut r,
        &["spec", "wasm", "0", "code", "type"],
        Value::from("Imagee"),
    );
    cases.push(Case {
        what: "an EnvoyExtensionPolicy code type Envoy Gateway does not have",
        resource: r,
        want: "/spec/wasm/0/code/type",
    });

    let dir = tempfile::tempdir().unwrap();
    for (i, case) in cases.iter().enumerate() {
        let file = dir.path().join(format!("case-{i}.yaml"));
        std::fs::write(&file, serde_yaml::to_string(&case.resource).unwrap()).unwrap();
        let report = kubeconform(&[&file]);
        let all = resources(&report);
        assert_eq!(all.len(), 1, "{}: {report}", case.what);
        let r = all[0];
        assert_eq!(r["status"], "statusInvalid", "{}: {report}", case.what);
        assert!(
            r.to_string().contains(case.want),
            "{}: no {:?} in {r}",
            case.what,
            case.want
        );
    }
}
