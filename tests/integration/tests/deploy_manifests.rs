//! The deployment manifests stay true (`envoy/istio/**`, `envoy/gateway-api/**`):
//!
//! - every Envoy config they embed (EnvoyFilter patch values resolved through their ECDS
//!   extension configs; the Wasm filter config a WasmPlugin or EnvoyExtensionPolicy stands for)
//!   is assembled into a bootstrap, in the manifest's order before the router, with the code
//!   pointing at the built module, and passes `envoy --mode validate`;
//! - every filter config in them is accepted by the filter's own parser (the filter crates are
//!   dev-dependencies, so this is exactly the code `apim validate` and `on_configure` run) and
//!   equals the demo config of `envoy/gateway.yaml` it was copied from;
//! - every chain follows the suite's order, and the `chain` manifests hold all five filters;
//! - every `sha256:` line is marked and equals the build: `# module: <m>` the sha256 of
//!   `target/wasm32-wasip1/release/<m>.wasm`, `# image: <m>` the manifest digest of the OCI
//!   image `target/debug/apim oci build` makes of it (deterministic, as `make oci` prints).
//!   `apim manifests sync` rewrites stale ones.
//!
//! Needs `make build` (the modules); builds `apim` itself (for image digests).

// Test code: a failed expectation stops the test with a message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use apim_integration::manifests::{
    all_chains, all_manifest_files, bootstrap, ecds_bootstrap, load_documents, markers, Chain,
    MarkerKind, SUITE_ORDER,
};
use apim_integration::{repo_root, validate_config, wasm_module};
use serde_json::Value;

fn chains() -> &'static [Chain] {
    static CHAINS: OnceLock<Vec<Chain>> = OnceLock::new();
    CHAINS.get_or_init(|| all_chains().unwrap_or_else(|e| panic!("reading the manifests: {e}")))
}

/// The filter's own parser, as `apim validate` calls it.
fn parse_with_filter(module: &str, bytes: &[u8]) -> Result<(), String> {
    let result = match module {
        "api_key_auth" => api_key_auth::config::Config::parse(bytes).map(drop),
        "scope_authz" => scope_authz::config::Config::parse(bytes).map(drop),
        "graphql_guard" => graphql_guard::config::Config::parse(bytes).map(drop),
        "quota" => quota::config::Config::parse(bytes).map(drop),
        "transform" => transform::config::Config::parse(bytes).map(drop),
        other => return Err(format!("unknown module {other}")),
    };
    result.map_err(|e| e.to_string())
}

#[test]
fn the_manifests_describe_every_filter_in_every_form() {
    let chains = chains();
    let kinds = ["EnvoyFilter", "WasmPlugin", "EnvoyExtensionPolicy"];
    for kind in kinds {
        let modules: BTreeSet<&str> = chains
            .iter()
            .filter(|c| c.source.contains(kind))
            .flat_map(|c| c.modules())
            .collect();
        let all: BTreeSet<&str> = SUITE_ORDER.into_iter().collect();
        assert_eq!(modules, all, "{kind}: not every filter is covered");
    }
    for context in ["GATEWAY", "SIDECAR_INBOUND"] {
        assert!(
            chains
                .iter()
                .any(|c| c.source.ends_with(&format!("/{context}]")) && c.modules() == SUITE_ORDER),
            "no EnvoyFilter holds the whole chain for {context}"
        );
    }
}

#[test]
fn every_chain_follows_the_suite_order() {
    for chain in chains() {
        let positions: Vec<usize> = chain
            .modules()
            .iter()
            .map(|m| {
                SUITE_ORDER
                    .iter()
                    .position(|s| s == m)
                    .unwrap_or_else(|| panic!("{}: unknown module {m}", chain.source))
            })
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "{}: order {:?} is not the suite's {SUITE_ORDER:?}",
            chain.source,
            chain.modules()
        );
        if chain.source.contains("chain") || chain.source.contains("WasmPlugins for") {
            assert_eq!(chain.modules(), SUITE_ORDER, "{}", chain.source);
        }
    }
}

#[test]
fn every_embedded_envoy_config_passes_envoy_validate() {
    for module in SUITE_ORDER {
        wasm_module(module); // a clear "run make build" if missing
    }
    // Identical bootstraps (gateway and sidecar contexts, HTTP and Image code) validate once.
    let mut unique: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for chain in chains() {
        unique
            .entry(bootstrap(&chain.filters))
            .or_default()
            .push(chain.source.clone());
        if let Some(ecds) = ecds_bootstrap(&chain.filters) {
            unique
                .entry(ecds)
                .or_default()
                .push(format!("{} (ECDS patches as written)", chain.source));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let jobs: Vec<(usize, (String, Vec<String>))> = unique.into_iter().enumerate().collect();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(jobs.len().div_ceil(2).max(1))
            .map(|batch| {
                let dir = dir.path();
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for (i, (config, sources)) in batch {
                        let path = dir.join(format!("bootstrap-{i}.yaml"));
                        std::fs::write(&path, config).unwrap();
                        if let Err(output) = validate_config(&path) {
                            failures.push(format!("{}:\n{output}", sources.join(", ")));
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "envoy --mode validate refused:\n{}",
        failures.join("\n\n")
    );
}

#[test]
fn every_filter_config_is_accepted_by_its_filter() {
    let mut failures = Vec::new();
    for chain in chains() {
        for filter in &chain.filters {
            let bytes = serde_json::to_vec(&filter.config).unwrap();
            if let Err(e) = parse_with_filter(&filter.module, &bytes) {
                failures.push(format!("{} {}: {e}", chain.source, filter.module));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_filter_config_is_the_one_of_gateway_yaml() {
    let docs = load_documents(&repo_root().join("envoy/gateway.yaml")).unwrap();
    let filters = docs[0]
        .pointer(
            "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters",
        )
        .and_then(Value::as_array)
        .unwrap();
    let mut expected: BTreeMap<String, Value> = BTreeMap::new();
    for f in filters {
        if let Some(config) = f.pointer("/typed_config/config") {
            let name = config["name"].as_str().unwrap().to_string();
            let text = config["configuration"]["value"].as_str().unwrap();
            expected.insert(name, serde_json::from_str(text).unwrap());
        }
    }
    for chain in chains() {
        for filter in &chain.filters {
            // The one deliberate difference: a WasmPlugin / EnvoyExtensionPolicy cannot set
            // Envoy's `allow_on_headers_stop_iteration`, so graphql-guard's manifests there say
            // `hold_headers: false` (gateway.yaml sets the Envoy knob and keeps the default).
            let mut config = filter.config.clone();
            if filter.module == "graphql_guard" && !chain.source.contains("envoyfilter") {
                let held = config
                    .as_object_mut()
                    .and_then(|o| o.remove("hold_headers"));
                assert_eq!(held, Some(Value::Bool(false)), "{}", chain.source);
            }
            assert_eq!(
                Some(&config),
                expected.get(&filter.module),
                "{} {}: config differs from envoy/gateway.yaml's",
                chain.source,
                filter.module
            );
        }
    }
}

/// `target/debug/apim`, built (or found up to date) once: a test binary cannot name another
/// crate's binary, and `make test` runs before anything else builds it. Cargo holds no lock on
/// the target dir while tests run, so this nested build does not wait on the outer one.
fn apim_bin() -> &'static Path {
    static APIM: OnceLock<std::path::PathBuf> = OnceLock::new();
    APIM.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "apim"])
            .current_dir(repo_root())
            .status()
            .unwrap();
        assert!(status.success(), "cargo build -p apim failed");
        repo_root().join("target/debug/apim")
    })
}

/// The manifest digest of the image `apim oci build` makes of a module.
fn image_digest(module: &str, dir: &Path) -> String {
    let apim = apim_bin();
    let out = Command::new(apim)
        .arg("oci")
        .arg("build")
        .arg(wasm_module(module))
        .arg(dir.join(module))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "apim oci build {module}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hex = stdout
        .split_once("image sha256:")
        .map(|(_, rest)| rest.chars().take(64).collect::<String>())
        .unwrap_or_default();
    assert_eq!(hex.len(), 64, "no image digest in: {stdout}");
    hex
}

#[test]
fn every_sha256_matches_the_built_modules_and_images() {
    let dir = tempfile::tempdir().unwrap();
    let mut module_sha: BTreeMap<String, String> = BTreeMap::new();
    let mut image_sha: BTreeMap<String, String> = BTreeMap::new();
    let mut stale = Vec::new();
    let mut count = 0;
    for file in all_manifest_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let rel = file
            .strip_prefix(repo_root())
            .unwrap()
            .display()
            .to_string();
        let found = markers(&text);
        // Every code/image `sha256:` field must be marked, or nothing would keep it true (API-key
        // digests inside filter configs are `- sha256:` or `"sha256":` and are not modules).
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("sha256:") && !found.iter().any(|m| m.line == i + 1) {
                stale.push(format!("{rel}:{}: unmarked sha256 line: {line}", i + 1));
            }
        }
        for marker in found {
            count += 1;
            assert!(
                SUITE_ORDER.contains(&marker.module.as_str()),
                "{rel}:{}: unknown module {}",
                marker.line,
                marker.module
            );
            let want = match marker.kind {
                MarkerKind::Module => module_sha
                    .entry(marker.module.clone())
                    .or_insert_with(|| {
                        let bytes = std::fs::read(wasm_module(&marker.module)).unwrap();
                        kit::digest::to_hex(&kit::digest::sha256(&bytes))
                    })
                    .clone(),
                MarkerKind::Image => image_sha
                    .entry(marker.module.clone())
                    .or_insert_with(|| image_digest(&marker.module, dir.path()))
                    .clone(),
            };
            if marker.hex != want {
                stale.push(format!(
                    "{rel}:{}: {:?} {} is {:?}, the build gives {want}",
                    marker.line, marker.kind, marker.module, marker.hex
                ));
            }
        }
    }
    assert!(count > 0, "no marked sha256 lines found");
    assert!(
        stale.is_empty(),
        "stale sha256 lines (run `cargo run -p apim -- manifests sync`):\n{}",
        stale.join("\n")
    );
}
