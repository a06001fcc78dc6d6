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
//! - the suite module (`apim_suite`: one plugin, a config section per filter) is held to the
//!   same checks, section by section, as the five modules: each form is a row of the same
//!   tables, never a copy of a test;
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
    all_chains, all_manifest_files, bootstrap, deploy_form, ecds_bootstrap, find_typed,
    hcm_path_problems, load_documents, markers, placeholder_digest, wasm_fail_open_problems, Chain,
    MarkerKind, HCM_TYPE, MODULES, SUITE_MODULE, SUITE_ORDER, WASM_TYPE,
};
use apim_integration::{apim_bin, repo_root, validate_config, wasm_module};
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
        SUITE_MODULE => apim_suite::validate(bytes).map(drop),
        other => return Err(format!("unknown module {other}")),
    };
    result.map_err(|e| e.to_string())
}

/// Both forms of the suite: the five modules and the suite module.
const FORMS: [(&str, bool); 2] = [("five modules", false), ("suite module", true)];

#[test]
fn the_manifests_describe_every_filter_in_every_form() {
    let chains = chains();
    let kinds = ["EnvoyFilter", "WasmPlugin", "EnvoyExtensionPolicy"];
    let all: BTreeSet<&str> = SUITE_ORDER.into_iter().collect();
    for kind in kinds {
        for (form, suite) in FORMS {
            let stages: BTreeSet<&str> = chains
                .iter()
                .filter(|c| c.source.contains(kind) && c.is_suite() == suite)
                .flat_map(|c| c.stages())
                .collect();
            assert_eq!(stages, all, "{kind}, {form}: not every filter is covered");
        }
    }
    for context in ["GATEWAY", "SIDECAR_INBOUND"] {
        for (form, suite) in FORMS {
            assert!(
                chains
                    .iter()
                    .any(|c| c.source.ends_with(&format!("/{context}]"))
                        && c.is_suite() == suite
                        && c.stages() == SUITE_ORDER),
                "no EnvoyFilter holds the whole chain for {context} as {form}"
            );
        }
    }
}

#[test]
fn every_chain_follows_the_suite_order() {
    for chain in chains() {
        let positions: Vec<usize> = chain
            .stages()
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
            chain.stages()
        );
        if chain.source.contains("chain") || chain.source.contains("WasmPlugins for") {
            assert_eq!(chain.stages(), SUITE_ORDER, "{}", chain.source);
        }
        // The suite module stands alone (applied instead of the five, never with them: a
        // WasmPlugin directory applied whole holds one form) and its manifests hold every
        // section.
        if chain.is_suite() {
            assert_eq!(chain.modules(), [SUITE_MODULE], "{}", chain.source);
            assert_eq!(chain.stages(), SUITE_ORDER, "{}", chain.source);
        }
    }
}

#[test]
fn every_embedded_envoy_config_passes_envoy_validate() {
    for module in MODULES {
        wasm_module(module); // a clear "run make build" if missing
    }
    // Identical bootstraps (gateway and sidecar contexts, HTTP and Image code) validate once.
    let mut unique: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for chain in chains() {
        unique
            .entry(bootstrap(&chain.filters, &chain.clusters))
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

/// The demo filter configs of `envoy/gateway.yaml`, by module.
fn gateway_configs() -> BTreeMap<String, Value> {
    demo_configs("envoy/gateway.yaml")
}

/// The filter configs of the first listener of a bootstrap, by module.
fn demo_configs(file: &str) -> BTreeMap<String, Value> {
    let docs = load_documents(&repo_root().join(file)).unwrap();
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
    expected
}

/// Every config is the gateway's demo config in deploy form: rules on paths instead of route
/// names, placeholder consumers (`python3 envoy/sync-manifest-configs.py` rewrites them).
#[test]
fn every_filter_config_is_the_deploy_form_of_gateway_yaml() {
    let expected = gateway_configs();
    // quota-global.yaml: the global tier's quota (the compose fragment's).
    let global = demo_configs("demo/compose/global-tier.yaml");
    assert!(global.contains_key("quota_global"), "{global:?}");
    let mut stale = Vec::new();
    for chain in chains() {
        let expected = if chain.source.contains("quota-global") {
            BTreeMap::from([("quota".to_string(), global["quota_global"].clone())])
        } else {
            expected.clone()
        };
        // The suite module's sections are held to the same configs as the five modules.
        for (module, config) in chain.filters.iter().flat_map(|f| f.stages()) {
            let want = expected
                .get(module)
                .map(|c| deploy_form(module, c).unwrap());
            // The one deliberate difference: a WasmPlugin / EnvoyExtensionPolicy cannot set
            // Envoy's `allow_on_headers_stop_iteration`, so graphql-guard's manifests there say
            // `hold_headers: false` (gateway.yaml sets the Envoy knob and keeps the default).
            let mut config = config.clone();
            if module == "graphql_guard" && !chain.source.contains("envoyfilter") {
                let held = config
                    .as_object_mut()
                    .and_then(|o| o.remove("hold_headers"));
                assert_eq!(held, Some(Value::Bool(false)), "{}", chain.source);
            }
            if Some(&config) != want.as_ref() {
                stale.push(format!("{} {module}", chain.source));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "configs differ from the deploy form of envoy/gateway.yaml's (run `python3 envoy/sync-manifest-configs.py`):\n{}",
        stale.join("\n")
    );
}

/// Issue 10, item 9: Istio and Envoy Gateway generate route names, so a `route_name` rule never
/// matches there (graphql-guard checked nothing, `/admin` was open, `/health` needed a key).
#[test]
fn no_manifest_config_matches_on_route_name() {
    for chain in chains() {
        for filter in &chain.filters {
            let text = filter.config.to_string();
            assert!(
                !text.contains("\"route_name\""),
                "{} {}: a route_name rule: {text}",
                chain.source,
                filter.module
            );
        }
    }
}

/// Issue 10, item 9: the demo consumers and keys never appear in a deploy manifest; every key
/// there is a placeholder digest the README says to replace.
#[test]
fn no_demo_consumer_or_key_is_in_a_deploy_manifest() {
    let demo = &gateway_configs()["api_key_auth"];
    let mut demo_digests = Vec::new();
    let mut demo_ids = Vec::new();
    for consumer in demo["consumers"].as_array().unwrap() {
        for key in consumer["keys"].as_array().into_iter().flatten() {
            demo_digests.push(key["sha256"].as_str().unwrap().to_string());
        }
        if consumer.get("keys").is_some() {
            demo_ids.push(consumer["id"].as_str().unwrap().to_string());
        }
    }
    assert!(
        demo_digests.len() >= 4 && demo_ids.len() >= 4,
        "{demo_ids:?}"
    );
    let gateway_text = std::fs::read_to_string(repo_root().join("envoy/gateway.yaml")).unwrap();
    assert!(
        gateway_text.contains("demo-key-alice-"),
        "the demo keys are listed in gateway.yaml"
    );
    for file in all_manifest_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for digest in &demo_digests {
            assert!(
                !text.contains(digest.as_str()),
                "{}: demo key digest {digest}",
                file.display()
            );
        }
        assert!(
            !text.contains("demo-key-"),
            "{}: a demo key",
            file.display()
        );
    }
    let placeholders: Vec<String> = (1..=3).map(placeholder_digest).collect();
    let mut keys = 0;
    for chain in chains() {
        let stages = chain.filters.iter().flat_map(|f| f.stages());
        for (_, config) in stages.filter(|(m, _)| *m == "api_key_auth") {
            for consumer in config["consumers"].as_array().unwrap() {
                let id = consumer["id"].as_str().unwrap();
                assert!(
                    !demo_ids.iter().any(|d| d == id),
                    "{}: demo consumer {id}",
                    chain.source
                );
                for key in consumer["keys"].as_array().into_iter().flatten() {
                    keys += 1;
                    let fields: Vec<&String> = key.as_object().unwrap().keys().collect();
                    assert_eq!(fields, ["sha256"], "{}: {id}: {key}", chain.source);
                    let digest = key["sha256"].as_str().unwrap().to_string();
                    assert!(
                        placeholders.contains(&digest),
                        "{}: {id}: {digest}",
                        chain.source
                    );
                }
            }
        }
    }
    assert!(keys > 0, "no api-key-auth keys found in the manifests");
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
                MODULES.contains(&marker.module.as_str()),
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

/// `apim manifests check` validates every manifest's filter configs for their target (and the
/// sha256 lines): it passes on the shipped manifests.
#[test]
fn apim_manifests_check_passes() {
    let out = Command::new(apim_bin())
        .args(["manifests", "check"])
        .current_dir(repo_root())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("filter configs checked for their target, 0 refused"),
        "{stdout}"
    );
    assert!(stderr.contains("a placeholder digest"), "{stderr}");
}

/// `apim validate --target istio|gateway-api` refuses a route_name rule, naming the field;
/// `--target envoy` (a bootstrap we write, route names ours) accepts it.
#[test]
fn apim_validate_refuses_route_name_for_generated_route_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quota.json");
    std::fs::write(
        &file,
        r#"{"plans": {"free": {"limits": [{"requests": 5, "per": "second"}]}}, "default_plan": "free",
            "rules": [{"match": {"path": {"prefix": "/pets"}}, "plan": "free"},
                      {"match": {"route_name": "health"}, "skip": true}]}"#,
    )
    .unwrap();
    let run = |target: &str| {
        let out = Command::new(apim_bin())
            .args(["validate", "--target", target, "quota"])
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for (target, mesh) in [("istio", "Istio"), ("gateway-api", "Envoy Gateway")] {
        let (code, stderr) = run(target);
        assert_eq!(code, Some(1), "{target}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "rules[1].match.route_name: {mesh} generates route names"
            )),
            "{target}: {stderr}"
        );
    }
    let (code, stderr) = run("envoy");
    assert_eq!(code, Some(0), "envoy: {stderr}");
    let (code, stderr) = run("kong");
    assert_eq!(code, Some(2), "{stderr}");
}

/// Issue 10, item 9: quota's global tier is wired for Istio and Envoy Gateway: each quota config
/// with `global` names a cluster its own file adds (HTTP/2, for gRPC), and the bootstrap built
/// from them passes `envoy --mode validate` (in `every_embedded_envoy_config_passes_envoy_validate`).
/// Every quota manifest says the local tier counts per pod.
#[test]
fn the_global_quota_tier_is_wired_for_istio_and_envoy_gateway() {
    let mut wired = BTreeSet::new();
    for chain in chains() {
        let stages = chain.filters.iter().flat_map(|f| f.stages());
        for (_, config) in stages.filter(|(m, _)| *m == "quota") {
            let Some(cluster) = config.pointer("/global/cluster").and_then(Value::as_str) else {
                continue;
            };
            let added = chain
                .clusters
                .iter()
                .find(|c| c["name"] == cluster)
                .unwrap_or_else(|| panic!("{}: no cluster {cluster} in the file", chain.source));
            assert!(
                added
                    .pointer("/typed_extension_protocol_options/envoy.extensions.upstreams.http.v3.HttpProtocolOptions/explicit_http_config/http2_protocol_options")
                    .is_some(),
                "{}: cluster {cluster} must speak HTTP/2 (gRPC)",
                chain.source
            );
            wired.insert(chain.source.split(" [").next().unwrap().to_string());
        }
    }
    assert_eq!(
        wired,
        BTreeSet::from([
            "envoy/gateway-api/quota-global.yaml".to_string(),
            "envoy/istio/envoyfilter/gateway/quota-global.yaml".to_string(),
        ])
    );
    for file in all_manifest_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("quota.") || name.starts_with("chain") || name.starts_with("suite") {
            assert!(
                text.contains("Quota counts PER POD") && text.contains("N times"),
                "{}: does not say the local tier counts per pod",
                file.display()
            );
        }
    }
}

/// The documents of every manifest file, with the file's path relative to the repo.
fn manifest_documents() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for file in all_manifest_files() {
        let rel = file
            .strip_prefix(repo_root())
            .unwrap()
            .display()
            .to_string();
        for doc in load_documents(&file).unwrap() {
            out.push((rel.clone(), doc));
        }
    }
    out
}

/// Issue 10, item 1 (mesh): Istio and Envoy Gateway ship the path handling of the bootstrap:
/// an EnvoyFilter HCM patch per context (GATEWAY, SIDECAR_INBOUND) with the same three settings,
/// Istio's meshConfig `DECODE_AND_MERGE_SLASHES` (the only Istio normalization that decodes
/// %2F/%5C), and an Envoy Gateway ClientTrafficPolicy that refuses escaped slashes and merges
/// slashes.
#[test]
fn istio_and_envoy_gateway_ship_the_path_handling() {
    let mut contexts = BTreeSet::new();
    let mut mesh = Vec::new();
    let mut client_policies = Vec::new();
    for (file, doc) in manifest_documents() {
        match doc["kind"].as_str() {
            Some("EnvoyFilter") => {
                for p in doc["spec"]["configPatches"].as_array().unwrap() {
                    if p["applyTo"] != "NETWORK_FILTER" {
                        continue;
                    }
                    assert_eq!(p["patch"]["operation"], "MERGE", "{file}");
                    assert_eq!(
                        p["match"]["listener"]["filterChain"]["filter"]["name"],
                        "envoy.filters.network.http_connection_manager",
                        "{file}"
                    );
                    let hcm = &p["patch"]["value"]["typed_config"];
                    assert_eq!(hcm["@type"], HCM_TYPE, "{file}");
                    let problems = hcm_path_problems(hcm);
                    assert!(problems.is_empty(), "{file}: {problems:?}");
                    contexts.insert(p["match"]["context"].as_str().unwrap().to_string());
                }
            }
            Some("IstioOperator") => {
                mesh.push(file.clone());
                assert_eq!(
                    doc.pointer("/spec/meshConfig/pathNormalization/normalization"),
                    Some(&Value::from("DECODE_AND_MERGE_SLASHES")),
                    "{file}"
                );
            }
            Some("ClientTrafficPolicy") => {
                client_policies.push(file.clone());
                let path = &doc["spec"]["path"];
                assert!(
                    matches!(
                        path["escapedSlashesAction"].as_str(),
                        Some("RejectRequest" | "UnescapeAndRedirect")
                    ),
                    "{file}: escapedSlashesAction {}",
                    path["escapedSlashesAction"]
                );
                assert_ne!(path["disableMergeSlashes"], true, "{file}");
                assert!(
                    doc["spec"]["targetRefs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|t| t["kind"] == "Gateway"),
                    "{file}"
                );
            }
            _ => {}
        }
    }
    assert_eq!(
        contexts,
        BTreeSet::from(["GATEWAY".to_string(), "SIDECAR_INBOUND".to_string()])
    );
    assert_eq!(mesh.len(), 1, "{mesh:?}");
    assert_eq!(client_policies.len(), 1, "{client_policies:?}");
}

/// No shipped manifest lets requests through unfiltered when a module fails: every WasmPlugin
/// says `failStrategy: FAIL_CLOSE` or `FAIL_RELOAD` (closed for the request, then a new VM),
/// every EnvoyExtensionPolicy Wasm says `failOpen: false`, and every EnvoyFilter Wasm config says
/// `FAIL_CLOSED` or `FAIL_RELOAD` (never a default, never `fail_open`).
#[test]
fn every_manifest_fails_closed() {
    let mut counts = BTreeMap::new();
    for (file, doc) in manifest_documents() {
        let kind = doc["kind"].as_str().unwrap_or("?").to_string();
        match kind.as_str() {
            "WasmPlugin" => {
                let strategy = doc.pointer("/spec/failStrategy").and_then(Value::as_str);
                assert!(
                    matches!(strategy, Some("FAIL_CLOSE" | "FAIL_RELOAD")),
                    "{file}: failStrategy {strategy:?}, want FAIL_CLOSE or FAIL_RELOAD"
                );
            }
            "EnvoyExtensionPolicy" => {
                for entry in doc["spec"]["wasm"].as_array().unwrap() {
                    assert_eq!(
                        entry.get("failOpen"),
                        Some(&Value::Bool(false)),
                        "{file}: {} must say failOpen: false",
                        entry["name"]
                    );
                }
            }
            "EnvoyFilter" => {
                for (at, wasm) in find_typed(&doc, WASM_TYPE) {
                    let problems = wasm_fail_open_problems(wasm);
                    assert!(problems.is_empty(), "{file} {at}: {problems:?}");
                }
            }
            _ => continue,
        }
        *counts.entry(kind).or_insert(0) += 1;
    }
    for kind in ["WasmPlugin", "EnvoyExtensionPolicy", "EnvoyFilter"] {
        assert!(
            counts.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} found: {counts:?}"
        );
    }
    // And what they stand for, as Envoy gets it.
    for chain in chains() {
        for filter in &chain.filters {
            let problems = wasm_fail_open_problems(&filter.typed_config);
            assert!(
                problems.is_empty(),
                "{} {}: {problems:?}",
                chain.source,
                filter.module
            );
        }
    }
}

/// graphql-guard holds the request headers until it has judged the body (`hold_headers`, the
/// default), which Envoy only allows with `allow_on_headers_stop_iteration: true`. Wherever a
/// manifest can set that knob (an EnvoyFilter's Wasm config, the module or the suite module)
/// it does; where it cannot (WasmPlugin, EnvoyExtensionPolicy: their generated config lacks
/// it) the guard says `hold_headers: false`.
#[test]
fn a_graphql_guard_that_holds_the_headers_is_allowed_to() {
    let mut guards = BTreeMap::new();
    for chain in chains() {
        for filter in &chain.filters {
            let holds = filter.stages().iter().any(|(m, c)| {
                *m == "graphql_guard" && c.get("hold_headers") != Some(&false.into())
            });
            let allowed = filter
                .typed_config
                .pointer("/config/allow_on_headers_stop_iteration")
                == Some(&Value::Bool(true));
            if filter.stages().iter().any(|(m, _)| *m == "graphql_guard") {
                *guards.entry(filter.module.clone()).or_insert(0) += 1;
            }
            assert!(
                !holds || allowed,
                "{} {}: graphql_guard holds the headers without allow_on_headers_stop_iteration",
                chain.source,
                filter.module
            );
        }
    }
    // Both forms have guards to check.
    assert!(
        guards.contains_key("graphql_guard") && guards.contains_key(SUITE_MODULE),
        "{guards:?}"
    );
}
