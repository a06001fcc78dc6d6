//! Finding the suite's filter configs in a deployment file: an Envoy bootstrap (or ECDS
//! resource, or Istio EnvoyFilter patch) holds them in a Wasm filter's `configuration`
//! (`StringValue` JSON text); an Istio WasmPlugin in `spec.pluginConfig`; an Envoy Gateway
//! EnvoyExtensionPolicy in `spec.wasm[].config` (both YAML). Which filter a plugin runs is read
//! from the module's file name or URL, the `root_id`, the `vm_id` or the plugin's name, in that
//! order, each spelled as crate (`api-key-auth`) or module (`api_key_auth`).

use crate::validate::FILTERS;
use crate::validate_target::Target;
use crate::yaml_pos::{Kind, Node};

pub const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// How a config is written.
#[derive(Debug, Clone, Copy)]
pub enum Config<'a> {
    /// JSON text in a YAML scalar (a `StringValue`'s `value`).
    Text(&'a Node),
    /// A YAML map or other value.
    Yaml(&'a Node),
    /// No config at all: the filter gets an empty one; `Node` is the plugin.
    Missing(&'a Node),
}

/// One plugin of the suite found in a document.
#[derive(Debug)]
pub struct Found<'a> {
    /// The crate name (`api-key-auth`), or what the plugin is called when it is not one of
    /// the suite's filters.
    pub filter: Result<&'static str, String>,
    /// Which resource and plugin, for the report (`WasmPlugin apim-api-key-auth`).
    pub label: String,
    /// The deployment the document is for (an `--target` given overrides it).
    pub target: Target,
    pub config: Config<'a>,
}

/// The suite filter a name means: `api-key-auth`, `api_key_auth`, `api_key_auth.wasm`,
/// `oci://…/api-key-auth:0.1.0`, `/etc/wasm/api_key_auth.wasm`, `apim.api_key_auth`,
/// `apim-api-key-auth`.
pub fn filter_named(name: &str) -> Option<&'static str> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let base = base.split(['@', ':']).next().unwrap_or(base);
    let base = base
        .trim_end_matches(".wasm")
        .to_ascii_lowercase()
        .replace('-', "_");
    let base = base
        .strip_prefix("apim.")
        .or_else(|| base.strip_prefix("apim_"))
        .unwrap_or(&base);
    FILTERS.into_iter().find(|f| f.replace('-', "_") == base)
}

fn str_at<'a>(node: &'a Node, path: &[&str]) -> Option<&'a str> {
    let mut here = node;
    for key in path {
        here = here.get(key)?;
    }
    here.str()
}

/// The filter of a plugin from its candidate names, the first that is a suite filter; else
/// the first name there is (or `?`).
fn identify(names: &[Option<&str>]) -> Result<&'static str, String> {
    let present: Vec<&str> = names.iter().flatten().copied().collect();
    present
        .iter()
        .find_map(|n| filter_named(n))
        .ok_or_else(|| present.first().copied().unwrap_or("?").to_string())
}

/// A Wasm filter's `config` (a `PluginConfig`).
fn plugin<'a>(config: &'a Node, target: Target, label: &str) -> Found<'a> {
    let names = [
        str_at(config, &["vm_config", "code", "local", "filename"]),
        str_at(config, &["vm_config", "code", "remote", "http_uri", "uri"]),
        str_at(config, &["root_id"]),
        str_at(config, &["vm_config", "vm_id"]),
        str_at(config, &["name"]),
    ];
    let filter = identify(&names);
    let shown = names[2].or(names[4]).or(names[3]).unwrap_or("?");
    let configuration = config.get("configuration");
    let text = configuration.and_then(|c| c.get("value"));
    let config = match (configuration, text) {
        (_, Some(v)) if v.str().is_some() => Config::Text(v),
        (Some(c), None) if c.get("@type").is_none() => Config::Yaml(c),
        (_, Some(v)) => Config::Yaml(v),
        _ => Config::Missing(config),
    };
    Found {
        filter,
        label: format!("{label}Wasm plugin {shown}"),
        target,
        config,
    }
}

/// Every Wasm filter config under `node`, wherever it is (listeners, ECDS, patches).
fn walk<'a>(node: &'a Node, target: Target, label: &str, depth: usize, out: &mut Vec<Found<'a>>) {
    if depth > 64 {
        return;
    }
    match &node.kind {
        Kind::Map(members) => {
            if node.get("@type").and_then(Node::str) == Some(WASM_TYPE) {
                if let Some(config) = node.get("config") {
                    out.push(plugin(config, target, label));
                    return;
                }
            }
            for (_, _, child) in members {
                walk(child, target, label, depth + 1, out);
            }
        }
        Kind::Seq(items) => {
            for child in items {
                walk(child, target, label, depth + 1, out);
            }
        }
        Kind::Scalar(..) => {}
    }
}

/// Every suite filter config of one document.
pub fn configs(doc: &Node) -> Vec<Found<'_>> {
    let kind = doc.get("kind").and_then(Node::str);
    let name = str_at(doc, &["metadata", "name"]).unwrap_or("?");
    let mut out = Vec::new();
    match kind {
        Some("WasmPlugin") => {
            let names = [
                str_at(doc, &["spec", "url"]),
                str_at(doc, &["spec", "pluginName"]),
                Some(name),
            ];
            let config = doc.get("spec").and_then(|s| s.get("pluginConfig"));
            out.push(Found {
                filter: identify(&names),
                label: format!("WasmPlugin {name}"),
                target: Target::Istio,
                config: config.map_or(Config::Missing(doc), Config::Yaml),
            });
        }
        Some("EnvoyExtensionPolicy") => {
            let wasm = doc.get("spec").and_then(|s| s.get("wasm"));
            if let Some(Kind::Seq(entries)) = wasm.map(|w| &w.kind) {
                for (i, entry) in entries.iter().enumerate() {
                    let names = [
                        str_at(entry, &["code", "http", "url"]),
                        str_at(entry, &["code", "image", "url"]),
                        str_at(entry, &["rootID"]),
                        str_at(entry, &["name"]),
                    ];
                    out.push(Found {
                        filter: identify(&names),
                        label: format!("EnvoyExtensionPolicy {name} wasm[{i}]"),
                        target: Target::GatewayApi,
                        config: entry
                            .get("config")
                            .map_or(Config::Missing(entry), Config::Yaml),
                    });
                }
            }
        }
        Some(k) => {
            let target = if k == "EnvoyFilter" {
                Target::Istio
            } else {
                Target::Envoy
            };
            walk(doc, target, &format!("{k} {name}: "), 0, &mut out);
        }
        None => walk(doc, Target::Envoy, "", 0, &mut out),
    }
    out
}

/// Whether a document is a deployment file rather than a filter config on its own.
pub fn is_deployment(doc: &Node) -> bool {
    [
        "static_resources",
        "kind",
        "apiVersion",
        "resources",
        "dynamic_resources",
        "admin",
    ]
    .iter()
    .any(|k| doc.get(k).is_some())
}

#[cfg(test)]
#[path = "discover_tests.rs"]
mod tests;
