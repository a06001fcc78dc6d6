//! The deployment manifests (`envoy/istio/**`, `envoy/gateway-api/**`) read back as the Envoy
//! configuration they stand for, so tests can hold them to what Envoy and the filters accept.
//!
//! - Istio `EnvoyFilter`: every `HTTP_FILTER` patch (INSERT_BEFORE the router), per context,
//!   resolved through its `EXTENSION_CONFIG` (ECDS) patch to the Wasm filter config istio-agent
//!   hands Envoy, with the remote code swapped for the built module.
//! - Istio `WasmPlugin`: the Wasm filter config Istio generates from `pluginName`,
//!   `pluginConfig` and `failStrategy`, ordered by phase then priority, per selector.
//! - Envoy Gateway `EnvoyExtensionPolicy`: one Wasm filter per `wasm[]` entry, in list order.
//!
//! A [`Chain`] is then assembled into a bootstrap ([`bootstrap`]) for `envoy --mode validate`.
//! [`markers`] finds the `sha256: <hex>  # module: <name>` / `# image: <name>` lines.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::paths::{repo_root, try_wasm_module};

/// The suite's filter order; every chain in the manifests is a subsequence of it.
pub const SUITE_ORDER: [&str; 5] = [
    "api_key_auth",
    "scope_authz",
    "graphql_guard",
    "quota",
    "transform",
];

/// The suite module (`apim_suite.wasm`, all five filters in one VM): its config has a section
/// per filter, keyed by the module name, each exactly that filter's module config.
pub const SUITE_MODULE: &str = "apim_suite";

/// Every module a manifest may load (and pin by sha256): the five, and the suite module.
pub const MODULES: [&str; 6] = [
    "api_key_auth",
    "scope_authz",
    "graphql_guard",
    "quota",
    "transform",
    SUITE_MODULE,
];

/// The two manifest trees.
pub fn manifest_dirs() -> [PathBuf; 2] {
    let root = repo_root();
    [root.join("envoy/istio"), root.join("envoy/gateway-api")]
}

/// `*.yaml`/`*.yml` under `dir`, recursively, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// Every manifest file of both trees.
pub fn all_manifest_files() -> Vec<PathBuf> {
    manifest_dirs().iter().flat_map(|d| yaml_files(d)).collect()
}

/// The YAML documents of a file, as JSON values (empty documents skipped).
pub fn load_documents(path: &Path) -> Result<Vec<Value>, String> {
    use serde::Deserialize as _;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut docs = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let value = serde_yaml::Value::deserialize(doc)
            .map_err(|e| format!("{} document {i}: {e}", path.display()))?;
        if value.is_null() {
            continue;
        }
        let json = serde_json::to_value(&value)
            .map_err(|e| format!("{} document {i}: {e}", path.display()))?;
        docs.push(json);
    }
    Ok(docs)
}

/// The YAML documents of a text, as JSON values (empty documents skipped).
pub fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
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

/// The `@type` of an HTTP connection manager config.
pub const HCM_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
/// The `@type` of a Wasm HTTP filter config.
pub const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// Every object under `value` whose `@type` is `type_url`, with its JSON pointer: finds them
/// wherever they are (a bootstrap's listeners, an EnvoyFilter patch, an ECDS extension config).
pub fn find_typed<'a>(value: &'a Value, type_url: &str) -> Vec<(String, &'a Value)> {
    fn walk<'a>(v: &'a Value, at: String, type_url: &str, out: &mut Vec<(String, &'a Value)>) {
        match v {
            Value::Object(map) => {
                if map.get("@type").and_then(Value::as_str) == Some(type_url) {
                    out.push((at.clone(), v));
                }
                for (k, child) in map {
                    let key = k.replace('~', "~0").replace('/', "~1");
                    walk(child, format!("{at}/{key}"), type_url, out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, format!("{at}/{i}"), type_url, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, String::new(), type_url, &mut out);
    out
}

/// The escaped-slash actions that keep `%2F`/`%5C` from reaching a route or a filter rule
/// undecoded: refuse (400) or decode and redirect (the client's next request is matched on the
/// decoded path).
pub const SAFE_ESCAPED_SLASH_ACTIONS: [&str; 2] = ["REJECT_REQUEST", "UNESCAPE_AND_REDIRECT"];

/// What an HTTP connection manager config lacks of the path handling every shipped HCM has
/// (`normalize_path`, `merge_slashes`, `path_with_escaped_slashes_action`); empty if nothing.
pub fn hcm_path_problems(hcm: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for field in ["normalize_path", "merge_slashes"] {
        if hcm.get(field).and_then(Value::as_bool) != Some(true) {
            problems.push(format!("{field} is {:?}, want true", hcm.get(field)));
        }
    }
    let action = hcm
        .get("path_with_escaped_slashes_action")
        .and_then(Value::as_str);
    if !action.is_some_and(|a| SAFE_ESCAPED_SLASH_ACTIONS.contains(&a)) {
        problems.push(format!(
            "path_with_escaped_slashes_action is {action:?}, want one of {SAFE_ESCAPED_SLASH_ACTIONS:?}"
        ));
    }
    problems
}

/// What a Wasm HTTP filter config (`envoy.extensions.filters.http.wasm.v3.Wasm`) has that would
/// let requests through when its VM is broken: a `failure_policy` other than `FAIL_CLOSED` or
/// `FAIL_RELOAD` (the default, `UNSPECIFIED`, is fail closed today but must be said), or the
/// deprecated `fail_open: true`. Empty if nothing.
pub fn wasm_fail_open_problems(wasm: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let policy = wasm
        .pointer("/config/failure_policy")
        .and_then(Value::as_str);
    if !matches!(policy, Some("FAIL_CLOSED" | "FAIL_RELOAD")) {
        problems.push(format!(
            "config.failure_policy is {policy:?}, want FAIL_CLOSED or FAIL_RELOAD"
        ));
    }
    if wasm.pointer("/config/fail_open").and_then(Value::as_bool) == Some(true) {
        problems.push("config.fail_open is true".to_string());
    }
    problems
}

/// The demo gateway's routes (`envoy/gateway.yaml`) as the path matches the deploy manifests use
/// instead of `route_name` (Istio and Envoy Gateway generate route names). Loosening rules
/// (public: anonymous; health, oauth: skip) get the tightest form, restricting ones (admin,
/// graphql) the widest, case ignored (a case-insensitive backend serves `/ADMIN` as `/admin`).
/// `envoy/sync-manifest-configs.py` has the same table.
pub const ROUTE_PATHS: [(&str, &str, &str, bool); 5] = [
    ("health", "exact", "/health", false),
    ("public", "prefix", "/public/", false),
    ("admin", "prefix", "/admin", true),
    ("oauth", "prefix", "/oauth/", false),
    ("graphql", "prefix", "/graphql", true),
];

/// The placeholder digest number `n` (`000…0n`), never a real key's.
pub fn placeholder_digest(n: u8) -> String {
    format!("{}{n:02x}", "0".repeat(62))
}

/// The consumers every api-key-auth config of the manifests has instead of the demo ones.
pub fn placeholder_consumers() -> Vec<Value> {
    vec![
        json!({"id": "example-partner", "plan": "gold", "groups": ["partners"],
               "scopes": ["pets:read", "pets:write"], "keys": [{"sha256": placeholder_digest(1)}]}),
        json!({"id": "example-reader", "plan": "silver", "scopes": ["pets:read"],
               "keys": [{"sha256": placeholder_digest(2)}]}),
        json!({"id": "example-ops", "groups": ["ops"], "keys": [{"sha256": placeholder_digest(3)}]}),
    ]
}

/// The deploy form of a demo filter config of `envoy/gateway.yaml`: every `route_name`
/// condition replaced by its route's path match, and (api-key-auth) every consumer with keys
/// replaced by [`placeholder_consumers`] (keyless ones, the anonymous identity, stay).
pub fn deploy_form(module: &str, config: &Value) -> Result<Value, String> {
    fn walk(v: &mut Value) -> Result<(), String> {
        match v {
            Value::Object(map) => {
                if let Some(name) = map.get("route_name").and_then(Value::as_str) {
                    let (_, kind, path, ignore_case) = ROUTE_PATHS
                        .iter()
                        .find(|(n, _, _, _)| *n == name)
                        .ok_or(format!("route_name {name} has no path in ROUTE_PATHS"))?;
                    // Same position as route_name, as the manifests have it.
                    let entries: Vec<(String, Value)> = std::mem::take(map)
                        .into_iter()
                        .flat_map(|(k, x)| {
                            if k == "route_name" {
                                let mut path = vec![("path".to_string(), json!({ *kind: path }))];
                                if *ignore_case {
                                    path.push(("ignore_case".to_string(), json!(true)));
                                }
                                path
                            } else {
                                vec![(k, x)]
                            }
                        })
                        .collect();
                    map.extend(entries);
                }
                map.values_mut().try_for_each(walk)
            }
            Value::Array(items) => items.iter_mut().try_for_each(walk),
            _ => Ok(()),
        }
    }
    let mut config = config.clone();
    walk(&mut config)?;
    if module == "api_key_auth" {
        let keyless: Vec<Value> = config
            .get("consumers")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter(|c| {
                        c.get("keys")
                            .and_then(Value::as_array)
                            .is_none_or(Vec::is_empty)
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut consumers = placeholder_consumers();
        consumers.extend(keyless);
        config["consumers"] = Value::Array(consumers);
    }
    Ok(config)
}

/// The Kubernetes kinds the manifest trees hold besides the Wasm ones: path handling
/// (ClientTrafficPolicy, Istio's mesh config), the global quota tier's wiring (EnvoyPatchPolicy,
/// Backend, ServiceEntry, DestinationRule). Anything else is an error, so nothing goes unchecked.
pub const OTHER_KINDS: [&str; 7] = [
    "ClientTrafficPolicy",
    "EnvoyPatchPolicy",
    "Backend",
    "ServiceEntry",
    "DestinationRule",
    "IstioOperator",
    "ConfigMap",
];

/// One Wasm filter of a chain.
#[derive(Debug, Clone)]
pub struct WasmFilter {
    /// The HTTP filter name (e.g. `apim.api_key_auth`).
    pub name: String,
    /// The module (file stem under `target/wasm32-wasip1/release/`).
    pub module: String,
    /// The filter's own JSON config, as the plugin receives it.
    pub config: Value,
    /// The `envoy.extensions.filters.http.wasm.v3.Wasm` typed config, code pointing at the
    /// built module.
    pub typed_config: Value,
    /// For an EnvoyFilter: the HTTP_FILTER patch value as written (the ECDS
    /// `config_discovery` reference), for [`ecds_bootstrap`].
    pub patch_value: Option<Value>,
}

impl WasmFilter {
    /// The filter configs this plugin runs, as (module, config), in order: the plugin's own, or
    /// for the suite module each section present, in the suite's order.
    pub fn stages(&self) -> Vec<(&str, &Value)> {
        if self.module != SUITE_MODULE {
            return vec![(self.module.as_str(), &self.config)];
        }
        SUITE_ORDER
            .iter()
            .filter_map(|s| self.config.get(*s).map(|c| (*s, c)))
            .collect()
    }
}

/// The filters one manifest (or one group of manifests) puts before the router, in order.
#[derive(Debug, Clone)]
pub struct Chain {
    /// Where it comes from, for messages: `file [kind/context or selector]`.
    pub source: String,
    pub filters: Vec<WasmFilter>,
    /// Clusters the same file adds (an EnvoyFilter `CLUSTER` ADD patch, an EnvoyPatchPolicy
    /// Cluster `add`): the Rate Limit Service of the global quota tier.
    pub clusters: Vec<Value>,
}

impl Chain {
    pub fn modules(&self) -> Vec<&str> {
        self.filters.iter().map(|f| f.module.as_str()).collect()
    }

    /// The filters the chain runs, in order, the suite module's sections counted one by one.
    pub fn stages(&self) -> Vec<&str> {
        self.filters
            .iter()
            .flat_map(|f| f.stages().into_iter().map(|(m, _)| m))
            .collect()
    }

    /// Whether the chain loads the suite module (else the per-filter modules).
    pub fn is_suite(&self) -> bool {
        self.filters.iter().any(|f| f.module == SUITE_MODULE)
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn rel(path: &Path) -> String {
    path.strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The built module's absolute path (or where it should be, if not built: validation then
/// says so).
fn module_path(module: &str) -> String {
    match try_wasm_module(module) {
        Ok(p) => p.display().to_string(),
        Err(_) => repo_root()
            .join("target/wasm32-wasip1/release")
            .join(format!("{module}.wasm"))
            .display()
            .to_string(),
    }
}

/// The module a code source names: the file stem of its URL/filename (`…/api_key_auth.wasm`).
fn module_from_url(url: &str) -> Option<String> {
    let last = url.rsplit('/').next()?;
    let stem = last.strip_suffix(".wasm")?;
    Some(stem.to_string())
}

/// A plugin's config as JSON: a `StringValue`'s text parsed, or a `Struct` as is.
fn plugin_config(configuration: &Value) -> Result<Value, String> {
    match str_at(configuration, "/@type") {
        Some("type.googleapis.com/google.protobuf.StringValue") => {
            let text = str_at(configuration, "/value").ok_or("StringValue without value")?;
            serde_json::from_str(text).map_err(|e| format!("configuration is not JSON: {e}"))
        }
        Some("type.googleapis.com/google.protobuf.Struct") => {
            Ok(configuration.get("value").cloned().unwrap_or(Value::Null))
        }
        other => Err(format!("unexpected configuration type {other:?}")),
    }
}

/// The Wasm typed config Istio / Envoy Gateway generate for a plugin (v8, local code).
fn generated_wasm(module: &str, root_id: &str, config: &Value, failure_policy: &str) -> Value {
    json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": module,
            "root_id": root_id,
            "failure_policy": failure_policy,
            "vm_config": {
                "vm_id": module,
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": module_path(module)}},
            },
            "configuration": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": config.to_string(),
            },
        },
    })
}

/// The chains of one Istio `EnvoyFilter`, one per context with HTTP_FILTER patches.
fn envoy_filter_chains(file: &Path, doc: &Value) -> Result<Vec<Chain>, String> {
    let name = str_at(doc, "/metadata/name").unwrap_or("?");
    let patches = doc
        .pointer("/spec/configPatches")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{}: EnvoyFilter {name} has no configPatches", rel(file)))?;
    // ECDS extension configs by name.
    let mut extensions: Vec<(&str, &Value)> = Vec::new();
    for p in patches {
        if str_at(p, "/applyTo") == Some("EXTENSION_CONFIG") {
            let ext_name = str_at(p, "/patch/value/name").ok_or("EXTENSION_CONFIG without name")?;
            let typed = p
                .pointer("/patch/value/typed_config")
                .ok_or("EXTENSION_CONFIG without typed_config")?;
            extensions.push((ext_name, typed));
        }
    }
    let mut chains: Vec<Chain> = Vec::new();
    for p in patches {
        if str_at(p, "/applyTo") != Some("HTTP_FILTER") {
            continue;
        }
        let ctx = str_at(p, "/match/context").unwrap_or("ANY");
        let where_ = format!("{} [EnvoyFilter {name}/{ctx}]", rel(file));
        if str_at(p, "/patch/operation") != Some("INSERT_BEFORE")
            || str_at(p, "/match/listener/filterChain/filter/subFilter/name")
                != Some("envoy.filters.http.router")
        {
            return Err(format!(
                "{where_}: every HTTP_FILTER patch must be INSERT_BEFORE envoy.filters.http.router"
            ));
        }
        let filter_name = str_at(p, "/patch/value/name").ok_or(format!("{where_}: no name"))?;
        let typed = match p.pointer("/patch/value/typed_config") {
            Some(t) => t.clone(),
            None => {
                let found = extensions
                    .iter()
                    .find(|(n, _)| *n == filter_name)
                    .ok_or(format!(
                        "{where_}: {filter_name} has no EXTENSION_CONFIG of that name"
                    ))?;
                found.1.clone()
            }
        };
        let mut filter = localize(&where_, filter_name, typed)?;
        filter.patch_value = p.pointer("/patch/value").cloned();
        match chains.iter_mut().find(|c| c.source == where_) {
            Some(chain) => chain.filters.push(filter),
            None => chains.push(Chain {
                source: where_,
                filters: vec![filter],
                clusters: Vec::new(),
            }),
        }
    }
    Ok(chains)
}

/// A manifest's Wasm typed config with its code (remote or local) replaced by the built module.
fn localize(where_: &str, filter_name: &str, mut typed: Value) -> Result<WasmFilter, String> {
    let code = typed
        .pointer("/config/vm_config/code")
        .ok_or(format!("{where_}: {filter_name} has no vm_config.code"))?;
    let url = str_at(code, "/remote/http_uri/uri")
        .or_else(|| str_at(code, "/local/filename"))
        .ok_or(format!(
            "{where_}: {filter_name}: code is neither remote nor local"
        ))?;
    let module = module_from_url(url).ok_or(format!("{where_}: {url} names no .wasm"))?;
    let config = plugin_config(
        typed
            .pointer("/config/configuration")
            .ok_or(format!("{where_}: {filter_name} has no configuration"))?,
    )
    .map_err(|e| format!("{where_}: {filter_name}: {e}"))?;
    if let Some(code) = typed.pointer_mut("/config/vm_config/code") {
        *code = json!({"local": {"filename": module_path(&module)}});
    }
    Ok(WasmFilter {
        name: filter_name.to_string(),
        module,
        config,
        typed_config: typed,
        patch_value: None,
    })
}

/// Istio's failStrategy → Envoy's failure_policy.
fn istio_failure_policy(strategy: Option<&str>) -> Result<&'static str, String> {
    match strategy {
        None | Some("FAIL_CLOSE") => Ok("FAIL_CLOSED"),
        Some("FAIL_OPEN") => Ok("FAIL_OPEN"),
        Some("FAIL_RELOAD") => Ok("FAIL_RELOAD"),
        Some(other) => Err(format!("unknown failStrategy {other}")),
    }
}

/// Istio's phase order: AUTHN, AUTHZ, STATS, then no phase (right before the router).
fn phase_rank(phase: Option<&str>) -> Result<u8, String> {
    match phase {
        Some("AUTHN") => Ok(0),
        Some("AUTHZ") => Ok(1),
        Some("STATS") => Ok(2),
        None | Some("UNSPECIFIED_PHASE") => Ok(3),
        Some(other) => Err(format!("unknown phase {other}")),
    }
}

/// A WasmPlugin as (chain source: its directory and selector, sort key, filter).
fn wasm_plugin(file: &Path, doc: &Value) -> Result<(String, (u8, i64), WasmFilter), String> {
    let name = str_at(doc, "/metadata/name").unwrap_or("?");
    let where_ = format!("{} [WasmPlugin {name}]", rel(file));
    let spec = doc.get("spec").ok_or(format!("{where_}: no spec"))?;
    let module = str_at(spec, "/pluginName").ok_or(format!("{where_}: no pluginName"))?;
    let config = spec.get("pluginConfig").cloned().unwrap_or(json!({}));
    let policy = istio_failure_policy(str_at(spec, "/failStrategy"))
        .map_err(|e| format!("{where_}: {e}"))?;
    let rank = phase_rank(str_at(spec, "/phase")).map_err(|e| format!("{where_}: {e}"))?;
    let priority = spec.get("priority").and_then(Value::as_i64).unwrap_or(0);
    // A directory is applied whole (`kubectl apply -f envoy/istio/wasmplugin/`): its plugins for
    // one selector are one chain, as Istio merges them.
    let source = format!(
        "{} [WasmPlugins for {}/{}]",
        file.parent().map(rel).unwrap_or_default(),
        str_at(doc, "/metadata/namespace").unwrap_or("default"),
        spec.get("selector")
            .map(Value::to_string)
            .unwrap_or_default()
    );
    let typed_config = generated_wasm(module, module, &config, policy);
    // Higher priority first within a phase.
    Ok((
        source,
        (rank, -priority),
        WasmFilter {
            name: format!("apim.{module}"),
            module: module.to_string(),
            config,
            typed_config,
            patch_value: None,
        },
    ))
}

/// The chain of one EnvoyExtensionPolicy (its `wasm` list order).
fn extension_policy_chain(file: &Path, doc: &Value) -> Result<Chain, String> {
    let name = str_at(doc, "/metadata/name").unwrap_or("?");
    let where_ = format!("{} [EnvoyExtensionPolicy {name}]", rel(file));
    let entries = doc
        .pointer("/spec/wasm")
        .and_then(Value::as_array)
        .ok_or(format!("{where_}: no spec.wasm"))?;
    let mut filters = Vec::new();
    for entry in entries {
        let url = match str_at(entry, "/code/type") {
            Some("HTTP") => str_at(entry, "/code/http/url"),
            Some("Image") => str_at(entry, "/code/image/url"),
            other => return Err(format!("{where_}: unknown code type {other:?}")),
        }
        .ok_or(format!("{where_}: code without url"))?;
        let root_id = str_at(entry, "/rootID").ok_or(format!("{where_}: no rootID"))?;
        // HTTP urls name the module file; images are named after the module (dashes).
        let module = module_from_url(url).unwrap_or_else(|| root_id.to_string());
        let config = entry.get("config").cloned().unwrap_or(json!({}));
        let fail_open = entry
            .get("failOpen")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let policy = if fail_open {
            "FAIL_OPEN"
        } else {
            "FAIL_CLOSED"
        };
        filters.push(WasmFilter {
            name: format!("apim.{module}"),
            typed_config: generated_wasm(&module, root_id, &config, policy),
            module,
            config,
            patch_value: None,
        });
    }
    Ok(Chain {
        source: where_,
        filters,
        clusters: Vec::new(),
    })
}

/// Every chain the manifests describe: one per EnvoyFilter context, one per WasmPlugin
/// directory and selector (the WasmPlugin files of a directory together, as Istio merges
/// them: `envoy/istio/wasmplugin/` the five, `envoy/istio/wasmplugin-suite/` the suite module
/// that replaces them), one per EnvoyExtensionPolicy. Unknown kinds are an error, so nothing
/// goes unchecked.
pub fn all_chains() -> Result<Vec<Chain>, String> {
    let mut chains = Vec::new();
    let mut plugins: Vec<(String, (u8, i64), WasmFilter)> = Vec::new();
    for file in all_manifest_files() {
        let docs = load_documents(&file)?;
        let clusters: Vec<Value> = docs.iter().flat_map(added_clusters).collect();
        let first = chains.len();
        for doc in docs {
            match str_at(&doc, "/kind") {
                Some("EnvoyFilter") => chains.extend(envoy_filter_chains(&file, &doc)?),
                Some("WasmPlugin") => plugins.push(wasm_plugin(&file, &doc)?),
                Some("EnvoyExtensionPolicy") => chains.push(extension_policy_chain(&file, &doc)?),
                Some(kind) if OTHER_KINDS.contains(&kind) => {}
                other => return Err(format!("{}: unexpected kind {other:?}", rel(&file))),
            }
        }
        for chain in chains.iter_mut().skip(first) {
            chain.clusters.clone_from(&clusters);
        }
    }
    // Stable sort: equal keys keep file order, as Istio keeps creation order.
    plugins.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    for (source, _, filter) in plugins {
        match chains.iter_mut().find(|c: &&mut Chain| c.source == source) {
            Some(chain) => chain.filters.push(filter),
            None => chains.push(Chain {
                source,
                filters: vec![filter],
                clusters: Vec::new(),
            }),
        }
    }
    Ok(chains)
}

/// The clusters a manifest document adds: EnvoyFilter `CLUSTER` ADD patch values and
/// EnvoyPatchPolicy Cluster `add` values.
pub fn added_clusters(doc: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    match str_at(doc, "/kind") {
        Some("EnvoyFilter") => {
            for p in doc
                .pointer("/spec/configPatches")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if str_at(p, "/applyTo") == Some("CLUSTER")
                    && str_at(p, "/patch/operation") == Some("ADD")
                {
                    out.extend(p.pointer("/patch/value").cloned());
                }
            }
        }
        Some("EnvoyPatchPolicy") => {
            for p in doc
                .pointer("/spec/jsonPatches")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if str_at(p, "/type") == Some("type.googleapis.com/envoy.config.cluster.v3.Cluster")
                    && str_at(p, "/operation/op") == Some("add")
                {
                    out.extend(p.pointer("/operation/value").cloned());
                }
            }
        }
        _ => {}
    }
    out
}

/// A bootstrap (JSON, which Envoy reads as YAML) with one listener on port 0 whose HCM runs
/// `filters` then the router, in front of a static upstream, plus `clusters` (a chain's added
/// clusters).
pub fn bootstrap(filters: &[WasmFilter], clusters: &[Value]) -> String {
    let http_filters: Vec<Value> = filters
        .iter()
        .map(|f| json!({"name": f.name, "typed_config": f.typed_config}))
        .collect();
    let mut config: Value =
        serde_json::from_str(&assemble(http_filters, false)).unwrap_or_default();
    if let Some(all) = config
        .pointer_mut("/static_resources/clusters")
        .and_then(Value::as_array_mut)
    {
        all.extend(clusters.iter().cloned());
    }
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

/// For an EnvoyFilter chain: the HTTP_FILTER patch values exactly as written (each an ECDS
/// `config_discovery` over ADS), in a bootstrap with an ADS source as istiod provides: checks
/// the shape of the patches themselves. `None` if a filter has no patch value.
pub fn ecds_bootstrap(filters: &[WasmFilter]) -> Option<String> {
    let http_filters: Option<Vec<Value>> = filters.iter().map(|f| f.patch_value.clone()).collect();
    Some(assemble(http_filters?, true))
}

fn assemble(mut http_filters: Vec<Value>, ads: bool) -> String {
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }));
    let mut config = json!({
        "static_resources": {
            "listeners": [{
                "name": "manifest",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "manifest",
                        "route_config": {"name": "manifest", "virtual_hosts": [{
                            "name": "all", "domains": ["*"],
                            "routes": [{"name": "all", "match": {"prefix": "/"}, "route": {"cluster": "upstream"}}],
                        }]},
                        "http_filters": http_filters,
                    },
                }]}],
            }],
            "clusters": [{
                "name": "upstream",
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {"cluster_name": "upstream", "endpoints": [{"lb_endpoints": [{
                    "endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9}}},
                }]}]},
            }],
        },
    });
    if ads {
        config["dynamic_resources"] = json!({"ads_config": {
            "api_type": "GRPC",
            "transport_api_version": "V3",
            "grpc_services": [{"envoy_grpc": {"cluster_name": "xds"}}],
        }});
        config["node"] = json!({"id": "manifest", "cluster": "manifest"});
        if let Some(clusters) = config
            .pointer_mut("/static_resources/clusters")
            .and_then(Value::as_array_mut)
        {
            clusters.push(json!({
                "name": "xds",
                "type": "STATIC",
                "connect_timeout": "1s",
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": {"http2_protocol_options": {}},
                    },
                },
                "load_assignment": {"cluster_name": "xds", "endpoints": [{"lb_endpoints": [{
                    "endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 15010}}},
                }]}]},
            }));
        }
    }
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

/// What a marked line pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    /// `# module: <name>`: sha256 of `target/wasm32-wasip1/release/<name>.wasm`.
    Module,
    /// `# image: <name>`: digest of the OCI image manifest `make oci` builds for `<name>`.
    Image,
}

/// A `sha256: <hex>  # module|image: <name>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// 1-based.
    pub line: usize,
    pub kind: MarkerKind,
    pub module: String,
    pub hex: String,
}

/// The marked lines of a manifest's text. A line with a marker comment but no 64-hex value
/// after `sha256:` is returned with an empty `hex`, so a check fails on it.
pub fn markers(text: &str) -> Vec<Marker> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some((value, comment)) = line.split_once('#') else {
            continue;
        };
        let comment = comment.trim();
        let (kind, module) = if let Some(m) = comment.strip_prefix("module:") {
            (MarkerKind::Module, m.trim())
        } else if let Some(m) = comment.strip_prefix("image:") {
            (MarkerKind::Image, m.trim())
        } else {
            continue;
        };
        let hex = value
            .split_once("sha256:")
            .map(|(_, rest)| rest.trim().trim_matches('"'))
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .unwrap_or("")
            .to_ascii_lowercase();
        out.push(Marker {
            line: i + 1,
            kind,
            module: module.to_string(),
            hex,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_with_their_kind() {
        let hex = "ab".repeat(32);
        let text = format!(
            "a: 1\n  sha256: {hex}  # module: quota\n  sha256: \"{hex}\" # image: transform\n  sha256: nothex  # module: x\n# just a comment\n"
        );
        let found = markers(&text);
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].line, 2);
        assert_eq!(found[0].kind, MarkerKind::Module);
        assert_eq!(found[0].module, "quota");
        assert_eq!(found[0].hex, hex);
        assert_eq!(found[1].kind, MarkerKind::Image);
        assert_eq!(found[1].hex, hex);
        assert_eq!(found[2].hex, "");
    }

    #[test]
    fn module_names_come_from_urls() {
        assert_eq!(
            module_from_url("https://x/y/api_key_auth.wasm").as_deref(),
            Some("api_key_auth")
        );
        assert_eq!(module_from_url("ghcr.io/x/quota:0.1.0"), None);
    }
}
