//! `apim validate --target envoy|istio|gateway-api`: what a filter config must not hold where it
//! is deployed, on top of the filter's own checks ([`crate::validate`]).
//!
//! - Istio and Envoy Gateway generate route names (`outbound|8080||svc…`, `httproute/ns/name/rule/0/…`),
//!   so a `route_name` condition never matches there: a skip never skips, an `allow` or a guard
//!   never applies. For those targets every `route_name` is an error naming the field; match on
//!   path, methods and hosts instead.
//! - Deploy manifests hold API keys as SHA-256 digests only: a `plaintext` key is an error, and a
//!   placeholder digest (`000…0N`, as the shipped manifests carry) is a warning until replaced.
//!
//! `apim manifests check` runs the same checks over every filter config of `envoy/istio/**`
//! (target istio) and `envoy/gateway-api/**` (target gateway-api), with the filter's parser.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

/// Where a config is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A bootstrap we write: route names are ours.
    Envoy,
    /// Istio (EnvoyFilter or WasmPlugin): route names are generated.
    Istio,
    /// Envoy Gateway (EnvoyExtensionPolicy): route names are generated.
    GatewayApi,
}

impl Target {
    /// As `--target` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Target::Envoy => "envoy",
            Target::Istio => "istio",
            Target::GatewayApi => "gateway-api",
        }
    }

    fn generates_route_names(self) -> Option<&'static str> {
        match self {
            Target::Envoy => None,
            Target::Istio => Some("Istio"),
            Target::GatewayApi => Some("Envoy Gateway"),
        }
    }
}

/// A placeholder digest of the shipped manifests: 62 zeros and a two-digit number.
pub fn is_placeholder_digest(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().take(62).all(|b| b == b'0')
}

/// The errors and warnings of `config` for `target`, each `field: message`.
pub fn check(target: Target, config: &Value) -> (Vec<String>, Vec<String>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    if target == Target::Envoy {
        return (errors, warnings);
    }
    walk(config, String::new(), &mut |field, key, value| {
        let at = join(field, key);
        match key {
            "route_name" => {
                if let Some(mesh) = target.generates_route_names() {
                    errors.push(format!(
                        "{at}: {mesh} generates route names, so this rule would never match there; \
                         match on path, methods or hosts instead"
                    ));
                }
            }
            "plaintext" if field.contains("keys[") => errors.push(format!(
                "{at}: a deploy manifest holds API keys as sha256 digests only (`apim key hash`)"
            )),
            "sha256"
                if field.contains("keys[") && value.as_str().is_some_and(is_placeholder_digest) =>
            {
                warnings.push(format!(
                    "{at}: a placeholder digest: replace it with the digest of a real key \
                     (`apim key new`)"
                ));
            }
            _ => {}
        }
    });
    (errors, warnings)
}

fn join(field: &str, key: &str) -> String {
    if field.is_empty() {
        key.to_string()
    } else {
        format!("{field}.{key}")
    }
}

/// Calls `f(field of the object, key, value)` for every object member under `v`.
fn walk(v: &Value, field: String, f: &mut dyn FnMut(&str, &str, &Value)) {
    match v {
        Value::Object(map) => {
            for (key, child) in map {
                f(&field, key, child);
                walk(child, join(&field, key), f);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, format!("{field}[{i}]"), f);
            }
        }
        _ => {}
    }
}

/// `apim validate --target TARGET FILTER FILE` on one filter's config.
pub fn run(target: Target, filter: &str, file: &str, bytes: Vec<u8>) -> ExitCode {
    // Not JSON: the filter's parser says why, with its own message.
    if let Ok(config) = serde_json::from_slice::<Value>(&bytes) {
        let (errors, warnings) = check(target, &config);
        for w in warnings {
            eprintln!("warning: {w}");
        }
        if !errors.is_empty() {
            for e in errors {
                eprintln!("{file}: {e}");
            }
            return ExitCode::from(1);
        }
    }
    crate::validate::run_bytes(filter, file, bytes)
}

/// The filter (as `apim validate` names it) of a module name (`api_key_auth`; `apim_suite`, the
/// suite module, is `suite`), spelled as `apim validate FILE` reads it.
fn filter_of_module(module: &str) -> Option<&'static str> {
    crate::discover::filter_named(module)
}

/// One filter config found in a manifest.
#[derive(Debug)]
pub struct Embedded {
    pub location: String,
    pub module: String,
    pub config: Value,
}

/// A config as JSON: a `StringValue`'s text parsed, or the value itself.
fn envoy_filter_config(wasm: &Value) -> Option<Value> {
    let configuration = wasm.pointer("/config/configuration")?;
    match configuration.get("value")? {
        Value::String(text) => serde_json::from_str(text).ok(),
        other => Some(other.clone()),
    }
}

/// Every filter config of one manifest document: a WasmPlugin's `pluginConfig`, an
/// EnvoyExtensionPolicy's `wasm[].config`, an EnvoyFilter's Wasm `configuration`.
pub fn embedded_configs(location: &str, doc: &Value) -> Vec<Embedded> {
    let mut out = Vec::new();
    match doc.get("kind").and_then(Value::as_str) {
        Some("WasmPlugin") => {
            if let Some(module) = doc.pointer("/spec/pluginName").and_then(Value::as_str) {
                out.push(Embedded {
                    location: format!("{location} WasmPlugin pluginConfig"),
                    module: module.to_string(),
                    config: doc
                        .pointer("/spec/pluginConfig")
                        .cloned()
                        .unwrap_or(Value::Null),
                });
            }
        }
        Some("EnvoyExtensionPolicy") => {
            let entries = doc.pointer("/spec/wasm").and_then(Value::as_array);
            for (i, entry) in entries.into_iter().flatten().enumerate() {
                let module = entry
                    .get("rootID")
                    .or_else(|| entry.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                out.push(Embedded {
                    location: format!("{location} EnvoyExtensionPolicy wasm[{i}].config"),
                    module: module.to_string(),
                    config: entry.get("config").cloned().unwrap_or(Value::Null),
                });
            }
        }
        Some("EnvoyFilter") => {
            let patches = doc.pointer("/spec/configPatches").and_then(Value::as_array);
            for (i, patch) in patches.into_iter().flatten().enumerate() {
                let Some(wasm) = patch.pointer("/patch/value/typed_config") else {
                    continue;
                };
                if wasm.get("@type").and_then(Value::as_str)
                    != Some("type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm")
                {
                    continue;
                }
                let module = wasm
                    .pointer("/config/root_id")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                out.push(Embedded {
                    location: format!("{location} EnvoyFilter configPatches[{i}]"),
                    module: module.to_string(),
                    config: envoy_filter_config(wasm).unwrap_or(Value::Null),
                });
            }
        }
        _ => {}
    }
    out
}

/// The target of a manifest tree.
fn target_of(dir: &str) -> Target {
    if dir.contains("gateway-api") {
        Target::GatewayApi
    } else {
        Target::Istio
    }
}

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

fn documents(text: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize as _;
    let mut docs = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value =
            serde_yaml::Value::deserialize(doc).map_err(|e| format!("document {i}: {e}"))?;
        if value.is_null() {
            continue;
        }
        docs.push(serde_json::to_value(&value).map_err(|e| format!("document {i}: {e}"))?);
    }
    Ok(docs)
}

/// What `apim manifests check` finds wrong in the manifests' filter configs under `root`:
/// (errors, warnings, configs checked). Each config is checked for its tree's target and by
/// its filter's parser.
pub fn check_manifests(root: &Path) -> Result<(Vec<String>, Vec<String>, usize), String> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut checked = 0;
    for dir in crate::manifests::DIRS {
        let target = target_of(dir);
        let mut files = Vec::new();
        yaml_files(&root.join(dir), &mut files);
        files.sort();
        for file in files {
            let rel = file
                .strip_prefix(root)
                .unwrap_or(&file)
                .display()
                .to_string();
            let text = crate::manifests::read(&file)?;
            let docs = documents(&text).map_err(|e| format!("{rel}: {e}"))?;
            for doc in docs {
                for found in embedded_configs(&rel, &doc) {
                    checked += 1;
                    let (errs, warns) = check(target, &found.config);
                    errors.extend(errs.into_iter().map(|e| format!("{}: {e}", found.location)));
                    warnings.extend(
                        warns
                            .into_iter()
                            .map(|w| format!("{}: {w}", found.location)),
                    );
                    let Some(filter) = filter_of_module(&found.module) else {
                        errors.push(format!(
                            "{}: unknown module \"{}\"",
                            found.location, found.module
                        ));
                        continue;
                    };
                    let bytes = serde_json::to_vec(&found.config).unwrap_or_default();
                    if let Err(e) = crate::validate::check(filter, &bytes) {
                        errors.push(format!("{}: {e}", found.location));
                    }
                }
            }
        }
    }
    Ok((errors, warnings, checked))
}

#[cfg(test)]
#[path = "validate_target_tests.rs"]
mod tests;
