//! Every Envoy config we ship loads in the pinned Envoy (`envoy --mode validate`): the
//! bootstraps under `envoy/` and the bench rows' templates.

use std::path::{Path, PathBuf};

use apim_integration::bench::rows::load_rows;
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

#[test]
fn bootstrap_detection() {
    assert!(is_bootstrap(
        "admin: {}\nstatic_resources:\n  listeners: []\n"
    ));
    assert!(!is_bootstrap(
        "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nspec:\n  static_resources: x\n"
    ));
}
