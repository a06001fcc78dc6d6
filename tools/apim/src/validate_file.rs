//! `apim validate [--target T] [FILTER] FILE` on a deployment file: an Envoy bootstrap, an Istio
//! WasmPlugin or EnvoyFilter, an Envoy Gateway EnvoyExtensionPolicy (YAML or JSON, any number
//! of documents). Every suite filter config in it is checked by that filter's own parser and
//! for its deployment (`--target`, else what the document is: a bootstrap `envoy`, an Istio
//! resource `istio`, an Envoy Gateway policy `gateway-api`), and each finding is reported at
//! its place in the file, compiler-style:
//!
//! ```text
//! envoy/gateway.yaml:97:26: api-key-auth (Wasm plugin api_key_auth): consumers[id=bob].keys[0].sha256: not a SHA-256 digest
//! ```
//!
//! With FILTER (crate or module name), only that filter's configs are checked.

use std::process::ExitCode;

use kit::config_error::ConfigError;
use serde_json::Value;

use crate::discover::{self, Config, Found};
use crate::locate::{self, Step};
use crate::validate_target::{self, Target};
use crate::yaml_pos::{self, Node, Pos};

/// What checking one config gave: (position, message) lines.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub errors: Vec<(Pos, String)>,
    pub warnings: Vec<(Pos, String)>,
}

/// The config's bytes as the filter receives them, and its JSON value (for the target checks
/// and to resolve `[id=…]`), if it is JSON.
fn bytes_of(config: Config<'_>) -> (Vec<u8>, Value) {
    match config {
        Config::Text(node) => {
            let text = node.str().unwrap_or_default();
            let value = serde_json::from_str(text).unwrap_or(Value::Null);
            (text.as_bytes().to_vec(), value)
        }
        Config::Yaml(node) => {
            let value = node.to_json();
            (serde_json::to_vec(&value).unwrap_or_default(), value)
        }
        Config::Missing(_) => (Vec::new(), Value::Null),
    }
}

/// Where the field at the start of `message` (`path: what`) is; the config's start if the
/// path leads nowhere.
fn position(config: Config<'_>, value: &Value, path: &str, message: &str) -> Pos {
    let steps: Vec<Step> = locate::steps(path, value);
    match config {
        Config::Text(node) => {
            let text = node.str().unwrap_or_default();
            let at = if steps.is_empty() {
                locate::serde_position(message).unwrap_or((1, 1))
            } else {
                locate::in_json(text, &steps)
            };
            locate::json_in_file(node, at)
        }
        Config::Yaml(node) => locate::in_yaml(node, &steps),
        Config::Missing(node) => node.pos,
    }
}

/// Splits a target check's `field: message`.
fn field_of(line: &str) -> &str {
    line.split_once(": ").map_or("", |(f, _)| f)
}

/// Checks one config found in the file.
pub fn check_one(found: &Found<'_>, filter: &'static str, target: Target) -> Report {
    let (bytes, value) = bytes_of(found.config);
    let mut report = Report::default();
    // api-key-auth names consumers by id; the target checks say the same.
    let ids = (filter == "api-key-auth").then(|| api_key_auth::config::consumer_ids(&bytes));
    let named = |s: String| match &ids {
        Some(ids) => api_key_auth::config::name_consumers(&s, ids),
        None => s,
    };
    let (target_errors, target_warnings) = validate_target::check(target, &value);
    for e in target_errors.into_iter().map(named) {
        report
            .errors
            .push((position(found.config, &value, field_of(&e), &e), e));
    }
    for w in target_warnings.into_iter().map(named) {
        report
            .warnings
            .push((position(found.config, &value, field_of(&w), &w), w));
    }
    match crate::validate::check(filter, &bytes) {
        Ok(warnings) => {
            for w in warnings {
                let at = position(found.config, &value, field_of(&w), &w);
                report.warnings.push((at, w));
            }
        }
        Err(ConfigError { path, message }) => {
            let at = position(found.config, &value, &path, &message);
            // serde's `at line L column C` counts in the embedded text: the file's position
            // is the one that helps.
            let message = match message.rsplit_once(" at line ") {
                Some((m, _)) if locate::serde_position(&message).is_some() => m.to_string(),
                _ => message,
            };
            let text = ConfigError::new(path, message).to_string();
            report.errors.push((at, text));
        }
    }
    report
}

/// The documents of a file, or why it cannot be read as YAML (or JSON).
pub fn documents(text: &str) -> Result<Vec<Node>, String> {
    yaml_pos::load(text)
}

/// `apim validate [--target T] [FILTER] FILE` when FILE is a deployment file (see
/// [`is_deployment_file`]).
pub fn run(
    target: Option<Target>,
    only: Option<&'static str>,
    file: &str,
    docs: &[Node],
) -> ExitCode {
    let (mut checked, mut refused) = (0usize, 0usize);
    for doc in docs {
        for found in discover::configs(doc) {
            let filter = match &found.filter {
                Ok(f) => *f,
                Err(name) => {
                    if only.is_none() {
                        eprintln!(
                            "note: {file}: {}: skipped, not a filter of the suite ({name})",
                            found.label
                        );
                    }
                    continue;
                }
            };
            if only.is_some_and(|o| o != filter) {
                continue;
            }
            let target = target.unwrap_or(found.target);
            checked += 1;
            let report = check_one(&found, filter, target);
            let what = format!("{filter} ({})", found.label);
            for (at, w) in &report.warnings {
                eprintln!("warning: {file}:{at}: {what}: {w}");
            }
            for (at, e) in &report.errors {
                eprintln!("{file}:{at}: {what}: {e}");
            }
            if report.errors.is_empty() {
                let at = match found.config {
                    Config::Text(n) | Config::Yaml(n) | Config::Missing(n) => n.pos,
                };
                println!("{file}:{at}: {what}: valid for {}", target.name());
            } else {
                refused += 1;
            }
        }
    }
    if checked == 0 {
        let which = only.unwrap_or("suite filter");
        eprintln!("{file}: no {which} config found (looked for Wasm filters of the suite in Envoy bootstraps, EnvoyFilters, WasmPlugins and EnvoyExtensionPolicies)");
        return ExitCode::from(1);
    }
    println!("{file}: {checked} filter configs checked, {refused} refused");
    if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Whether the documents are a deployment file (else FILE is one filter's config).
pub fn is_deployment_file(docs: &[Node]) -> bool {
    docs.iter().any(discover::is_deployment)
}

#[cfg(test)]
#[path = "validate_file_tests.rs"]
mod tests;
