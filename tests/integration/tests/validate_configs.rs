//! Every Envoy config we ship loads in the pinned Envoy (`envoy --mode validate`): the
//! bootstraps under `envoy/` and the bench rows' templates. And every HTTP connection manager
//! we ship (bootstraps under `envoy/` and `demo/`, Istio EnvoyFilter patches, bench rows)
//! normalises paths: `normalize_path`, `merge_slashes`, `path_with_escaped_slashes_action`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use apim_integration::bench::rows::load_rows;
use apim_integration::bootstrap::{bootstrap, listener, upstream_cluster};
use apim_integration::manifests::{
    find_typed, hcm_path_problems, parse_documents, wasm_fail_open_problems, HCM_TYPE, WASM_TYPE,
};
use apim_integration::{render, repo_root, validate_config};

/// `*.yaml`/`*.yml` files under `dir`, recursively, sorted.
fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}

/// An Envoy bootstrap has `static_resources` at the top level; Kubernetes manifests (Istio,
/// Gateway API) under `envoy/` do not and are not Envoy's to validate.
fn is_bootstrap(text: &str) -> bool {
    text.lines()
        .any(|line| line.starts_with("static_resources:"))
}

fn hint(output: &str) -> &'static str {
    if output.contains(".wasm") && output.contains("Invalid path") {
        "\n(hint: a Wasm module is missing: run `make build`)"
    } else {
        ""
    }
}

#[test]
fn every_shipped_bootstrap_validates() {
    // APIM_ENVOY_CONFIG_DIR points the test elsewhere, to check the test itself.
    let dir = std::env::var_os("APIM_ENVOY_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("envoy"));
    let mut files = Vec::new();
    yaml_files(&dir, &mut files);
    files.sort();
    let mut validated = Vec::new();
    let mut failures = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        if !is_bootstrap(&text) {
            continue;
        }
        match validate_config(&file) {
            Ok(()) => validated.push(file),
            Err(output) => failures.push(format!("{output}{}", hint(&output))),
        }
    }
    assert!(
        failures.is_empty(),
        "{} config(s) failed `envoy --mode validate`:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // An empty directory must not pass as "all configs valid".
    assert!(
        !validated.is_empty(),
        "no Envoy bootstrap (*.yaml with top-level `static_resources`) under {}",
        dir.display()
    );
    eprintln!("validated: {validated:#?}");
}

#[test]
fn every_bench_row_config_validates() {
    let scratch = tempfile::tempdir().unwrap();
    for row in load_rows().unwrap() {
        let config = render(&row.config_template().unwrap())
            .unwrap_or_else(|e| panic!("bench row {}: {e}", row.name));
        let path = scratch.path().join(&row.config);
        std::fs::write(&path, config).unwrap();
        if let Err(output) = validate_config(&path) {
            panic!("bench row {} ({}): {output}", row.name, row.config);
        }
    }
}

/// Every shipped YAML file that Envoy or Istio reads (`envoy/**`, `demo/**`) and every bench
/// row's rendered config, as (name, documents).
fn shipped_documents() -> Vec<(String, Vec<serde_json::Value>)> {
    let root = repo_root();
    let mut files = Vec::new();
    yaml_files(&root.join("envoy"), &mut files);
    yaml_files(&root.join("demo"), &mut files);
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        let docs = parse_documents(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        out.push((name, docs));
    }
    for row in load_rows().unwrap() {
        let config = render(&row.config_template().unwrap()).unwrap();
        let name = format!("bench row {} ({})", row.name, row.config);
        let docs = parse_documents(&config).unwrap_or_else(|e| panic!("{name}: {e}"));
        out.push((name, docs));
    }
    out
}

/// Issue 10, item 1: a path Envoy did not normalise (`/public/..%2Fadmin`, `/public/../admin`)
/// matches the route and rules of `/public` while the backend serves `/admin`. Every HCM we ship
/// resolves dot segments, merges slashes and refuses (or redirects) encoded slashes.
#[test]
fn every_shipped_http_connection_manager_normalises_paths() {
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for (name, docs) in shipped_documents() {
        for (i, doc) in docs.iter().enumerate() {
            for (at, hcm) in find_typed(doc, HCM_TYPE) {
                let problems = hcm_path_problems(hcm);
                if problems.is_empty() {
                    checked.push(format!("{name} #{i} {at}"));
                } else {
                    failures.push(format!("{name} #{i} {at}: {}", problems.join("; ")));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "HTTP connection managers without the shipped path handling:\n{}",
        failures.join("\n")
    );
    // The gateway, the six example HCMs, the compose fragment, Istio's patches, the bench rows.
    for must in [
        "envoy/gateway.yaml",
        "envoy/examples/api-key-auth.yaml",
        "envoy/examples/transform.yaml",
        "demo/compose/global-tier.yaml",
        "envoy/istio/envoyfilter/gateway/",
        "envoy/istio/envoyfilter/sidecar/",
        "bench row none",
    ] {
        assert!(
            checked.iter().any(|c| c.starts_with(must)),
            "no HTTP connection manager found in {must}: the walk is broken\n{checked:#?}"
        );
    }
    eprintln!("checked: {checked:#?}");
}

/// Every shipped edge bootstrap takes the client address from the connection, never from a
/// client-sent `X-Forwarded-For`: quota counts keyless callers per address, and with Envoy's
/// default (`use_remote_address: false`) a client could pick a fresh counter per request.
/// Istio's patches and the bench rows are not edge bootstraps (Istio sets it on gateways).
#[test]
fn every_shipped_edge_bootstrap_uses_the_remote_address() {
    let mut checked = 0;
    let mut failures = Vec::new();
    let edge = shipped_documents().into_iter().filter(|(name, _)| {
        name.starts_with("envoy/gateway.yaml")
            || name.starts_with("envoy/examples/")
            || name.starts_with("demo/")
    });
    for (name, docs) in edge {
        for (i, doc) in docs.iter().enumerate() {
            for (at, hcm) in find_typed(doc, HCM_TYPE) {
                checked += 1;
                if hcm.get("use_remote_address") != Some(&serde_json::Value::Bool(true)) {
                    failures.push(format!("{name} #{i} {at}"));
                }
            }
        }
    }
    assert!(
        checked >= 8,
        "only {checked} edge HTTP connection managers found"
    );
    assert!(
        failures.is_empty(),
        "edge HTTP connection managers without use_remote_address: true:\n{}",
        failures.join("\n")
    );
}

/// A shipped config must never let requests through unfiltered when a module fails to load or
/// traps: every Wasm filter in every bootstrap and EnvoyFilter says `FAIL_CLOSED` or
/// `FAIL_RELOAD` (never the default, never `fail_open: true`). The WasmPlugin and
/// EnvoyExtensionPolicy forms are held to the same in `deploy_manifests.rs`.
#[test]
fn every_shipped_wasm_filter_fails_closed() {
    let mut checked = 0;
    let mut failures = Vec::new();
    // The bench rows measure CPU, they are not deployed: not held to this.
    let deployable = shipped_documents()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("bench row"));
    for (name, docs) in deployable {
        for (i, doc) in docs.iter().enumerate() {
            for (at, wasm) in find_typed(doc, WASM_TYPE) {
                checked += 1;
                let problems = wasm_fail_open_problems(wasm);
                if !problems.is_empty() {
                    failures.push(format!("{name} #{i} {at}: {}", problems.join("; ")));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "Wasm filters that can fail open:\n{}",
        failures.join("\n")
    );
    // gateway.yaml alone has five.
    assert!(
        checked >= 5,
        "only {checked} Wasm filters found: the walk is broken"
    );
}

#[test]
fn the_checks_refuse_what_they_must() {
    let good = serde_json::json!({"@type": HCM_TYPE, "normalize_path": true, "merge_slashes": true,
        "path_with_escaped_slashes_action": "REJECT_REQUEST"});
    assert!(hcm_path_problems(&good).is_empty());
    for (field, bad) in [
        ("normalize_path", serde_json::json!(false)),
        ("merge_slashes", serde_json::Value::Null),
        (
            "path_with_escaped_slashes_action",
            serde_json::json!("KEEP_UNCHANGED"),
        ),
        (
            "path_with_escaped_slashes_action",
            serde_json::json!("UNESCAPE_AND_FORWARD"),
        ),
    ] {
        let mut hcm = good.clone();
        hcm[field] = bad.clone();
        let problems = hcm_path_problems(&hcm);
        assert_eq!(problems.len(), 1, "{field}={bad}: {problems:?}");
        assert!(problems[0].starts_with(field), "{problems:?}");
    }
    let nested = serde_json::json!({"a": [{"typed_config": good}]});
    assert_eq!(find_typed(&nested, HCM_TYPE)[0].0, "/a/0/typed_config");
    for (wasm, ok) in [
        (
            serde_json::json!({"config": {"failure_policy": "FAIL_CLOSED"}}),
            true,
        ),
        (
            serde_json::json!({"config": {"failure_policy": "FAIL_RELOAD"}}),
            true,
        ),
        (
            serde_json::json!({"config": {"failure_policy": "FAIL_OPEN"}}),
            false,
        ),
        (serde_json::json!({"config": {}}), false),
        (
            serde_json::json!({"config": {"failure_policy": "FAIL_CLOSED", "fail_open": true}}),
            false,
        ),
    ] {
        assert_eq!(wasm_fail_open_problems(&wasm).is_empty(), ok, "{wasm}");
    }
}

#[test]
fn bootstrap_detection() {
    // What the harness builds for the tests is a bootstrap.
    assert!(is_bootstrap(&bootstrap(
        &[listener("main", "upstream")],
        &[upstream_cluster("upstream")]
    )));
    assert!(!is_bootstrap(
        "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nspec:\n  static_resources: x\n"
    ));
}
