//! `apim render --target istio|gateway-api`: the Kubernetes resources of a product file.
//!
//! - **istio**: a WasmPlugin per filter (or one for the suite), on the ingress gateway's
//!   workloads, in the suite's order by phase and priority, each failing closed.
//! - **gateway-api**: an HTTPRoute per API (its routes, backends, a direct response through
//!   Envoy Gateway's HTTPRouteFilter) and one EnvoyExtensionPolicy running the filters on them.
//!
//! Modules come as OCI images (`apim oci build`, `make oci`); each is pinned by the digest of
//! the image built from `target/wasm32-wasip1/release` when it is there (the digest `make oci`
//! prints), otherwise left to pin by hand. The filter configs are the same as the bootstrap's,
//! with loosening rules matching paths (route names are generated here) and graphql-guard not
//! holding the headers (neither resource can set Envoy's allow_on_headers_stop_iteration).

use super::envoy::scalar;
use super::filters;
use super::json::J;
use super::model::*;
use crate::validate_target::Target;
use std::path::Path;

/// The image name of a module (`api_key_auth` → `api-key-auth`, the suite → `apim-suite`).
fn image_name(module: &str) -> String {
    module.replace('_', "-")
}

/// `sha256` of the image built from the module under `root`, as `make oci` prints it (the value
/// `apim manifests sync` pins), if the module is built there.
fn image_digest(root: &Path, module: &str) -> Option<String> {
    crate::manifests::digest(root, crate::manifests::Kind::Image, module).ok()
}

fn pin(root: &Path, module: &str, indent: &str, o: &mut Vec<String>) {
    match image_digest(root, module) {
        Some(d) => o.push(format!("{indent}sha256: {d}  # image: {module}")),
        None => o.push(format!(
            "{indent}# sha256: pin with the digest `make oci` prints for {module}"
        )),
    }
}

/// The product file's `description` speaks of its bootstrap (ports, module paths), so only the
/// render's own lines head these files.
fn header(source: &str, target: &str, o: &mut Vec<String>) {
    o.push(format!(
        "# GENERATED from {source} by `apim render {source} --target {target}`: edit the"
    ));
    o.push(
        "# product file, then render again. Consumers' keys are SHA-256 digests; quota counts per"
            .to_string(),
    );
    o.push("# pod (the filter's local tier).".to_string());
}

/// The filters to load: each module with its config, or the suite with a section per filter.
fn modules(p: &Product, target: Target) -> Vec<(String, J)> {
    let configs = filters::configs(p, target);
    match p.gateway.form {
        Form::Suite | Form::NativeSuite if !configs.is_empty() => {
            let mut sections = J::obj();
            for (module, config) in configs {
                sections.push(module, config);
            }
            vec![("apim_suite".to_string(), sections)]
        }
        _ => configs
            .into_iter()
            .map(|(m, c)| (m.to_string(), c))
            .collect(),
    }
}

/// Istio's phase and priority for each filter, so the chain keeps the suite's order:
/// AUTHN (api-key-auth, scope-authz), AUTHZ (graphql-guard, quota), then transform last.
fn phase(module: &str) -> (Option<&'static str>, Option<u32>) {
    match module {
        "api_key_auth" | "apim_suite" => (Some("AUTHN"), Some(20)),
        "scope_authz" => (Some("AUTHN"), Some(10)),
        "graphql_guard" => (Some("AUTHZ"), Some(20)),
        "quota" => (Some("AUTHZ"), Some(10)),
        _ => (None, None),
    }
}

fn config_block(config: &J, key: &str, indent: &str, o: &mut Vec<String>) {
    o.push(format!("{indent}{key}:"));
    super::envoy::value_block(config, &format!("{indent}  "), o);
}

pub fn istio(p: &Product, source: &str, root: &Path) -> String {
    let d = &p.deploy;
    let mut o = Vec::new();
    header(source, "istio", &mut o);
    for (module, config) in modules(p, Target::Istio) {
        o.push("---".into());
        o.push("apiVersion: extensions.istio.io/v1alpha1".into());
        o.push("kind: WasmPlugin".into());
        o.push("metadata:".into());
        o.push(format!(
            "  name: apim-{}",
            image_name(module.trim_start_matches("apim_"))
        ));
        o.push(format!("  namespace: {}", scalar(&d.istio_namespace)));
        o.push("spec:".into());
        o.push("  selector:".into());
        o.push("    matchLabels:".into());
        for (k, v) in &d.istio_selector {
            o.push(format!("      {}: {}", scalar(k), scalar(v)));
        }
        let url = format!("oci://{}/{}:{}", d.registry, image_name(&module), d.tag);
        o.push(format!("  url: {}", scalar(&url)));
        pin(root, &module, "  ", &mut o);
        o.push("  imagePullPolicy: IfNotPresent".into());
        o.push(format!("  pluginName: {module}"));
        match phase(&module) {
            (Some(ph), Some(prio)) => {
                o.push(format!("  phase: {ph}"));
                o.push(format!("  priority: {prio}"));
            }
            _ => o.push("  # No phase: last, right before the router.".into()),
        }
        o.push("  # Never open: a trapped VM answers 503 and is reloaded.".into());
        o.push("  failStrategy: FAIL_RELOAD".into());
        config_block(&config, "pluginConfig", "  ", &mut o);
    }
    let mut text = o.join("\n");
    text.push('\n');
    text
}

pub fn k8s_name(s: &str) -> String {
    s.to_ascii_lowercase().replace(['_', '.', ' '], "-")
}

pub fn gateway_api(p: &Product, source: &str, root: &Path) -> String {
    let d = &p.deploy;
    let mut o = Vec::new();
    header(source, "gateway-api", &mut o);
    for api in &p.apis {
        http_route(p, api, &mut o);
    }
    let modules = modules(p, Target::GatewayApi);
    // No filter to run, no policy (an EnvoyExtensionPolicy needs one).
    if !modules.is_empty() {
        o.push("---".into());
        o.push("apiVersion: gateway.envoyproxy.io/v1alpha1".into());
        o.push("kind: EnvoyExtensionPolicy".into());
        o.push("metadata:".into());
        o.push("  name: apim".into());
        o.push(format!("  namespace: {}", scalar(&d.namespace)));
        o.push("spec:".into());
        o.push("  targetRefs:".into());
        for api in &p.apis {
            o.push("  - group: gateway.networking.k8s.io".into());
            o.push("    kind: HTTPRoute".into());
            o.push(format!("    name: {}", k8s_name(&api.name.v)));
        }
        o.push("  # The list's order is the filters' order.".into());
        o.push("  wasm:".into());
        for (module, config) in modules {
            o.push(format!("  - name: {module}"));
            o.push(format!("    rootID: {module}"));
            o.push("    code:".into());
            o.push("      type: Image".into());
            o.push("      image:".into());
            let url = format!("{}/{}:{}", d.registry, image_name(&module), d.tag);
            o.push(format!("        url: {}", scalar(&url)));
            pin(root, &module, "        ", &mut o);
            o.push("    # Never open: a broken VM answers 503.".into());
            o.push("    failOpen: false".into());
            config_block(&config, "config", "    ", &mut o);
        }
    }
    let mut text = o.join("\n");
    text.push('\n');
    text
}

fn http_route(p: &Product, api: &Api, o: &mut Vec<String>) {
    let d = &p.deploy;
    let name = k8s_name(&api.name.v);
    let mut filters = Vec::new();
    o.push("---".into());
    o.push("apiVersion: gateway.networking.k8s.io/v1".into());
    o.push("kind: HTTPRoute".into());
    o.push("metadata:".into());
    o.push(format!("  name: {name}"));
    o.push(format!("  namespace: {}", scalar(&d.namespace)));
    o.push("spec:".into());
    o.push("  parentRefs:".into());
    o.push(format!("  - name: {}", scalar(&d.gateway.0)));
    o.push(format!("    namespace: {}", scalar(&d.gateway.1)));
    let hosts: Vec<&String> = api.hosts.iter().filter(|h| h.as_str() != "*").collect();
    if !hosts.is_empty() {
        o.push("  hostnames:".into());
        for h in hosts {
            o.push(format!(
                "  - {}",
                serde_json::to_string(h).unwrap_or_default()
            ));
        }
    }
    o.push(
        "  # Gateway API orders matches by specificity, not by position: each rule is the".into(),
    );
    o.push(
        "  # product file's route, and apim check refuses a route an earlier one shadows.".into(),
    );
    o.push("  rules:".into());
    for r in &api.routes {
        o.push(format!("  - name: {}", k8s_name(&r.name.v)));
        o.push("    matches:".into());
        let path = &r.path.path.v;
        let (kind, value) = match (r.path.kind, r.path.ignore_case) {
            (_, true) => {
                let base = regex_text(path.trim_end_matches('/'));
                let tail = if r.path.kind == PathKind::Exact {
                    ""
                } else {
                    "(/.*)?"
                };
                ("RegularExpression", format!("(?i){base}{tail}"))
            }
            (PathKind::Exact, false) => ("Exact", path.clone()),
            (PathKind::Prefix, false) => ("PathPrefix", path.clone()),
        };
        let value = serde_json::to_string(&value).unwrap_or_default();
        // One match per method (an HTTPRoute match names one), or one for every method.
        let methods: Vec<Option<&str>> = if r.path.methods.is_empty() {
            vec![None]
        } else {
            r.path.methods.iter().map(|m| Some(m.v.as_str())).collect()
        };
        for method in methods {
            o.push("    - path:".into());
            o.push(format!("        type: {kind}"));
            o.push(format!("        value: {value}"));
            if let Some(m) = method {
                o.push(format!("      method: {m}"));
            }
        }
        match &r.target {
            RouteTarget::Upstream(u) => {
                if let Some(up) = p.upstream(&u.v) {
                    o.push("    backendRefs:".into());
                    o.push(format!("    - name: {}", scalar(&up.service.0)));
                    o.push(format!("      port: {}", up.service.1));
                }
            }
            RouteTarget::Respond { status, body } => {
                let filter = format!("{name}-{}", k8s_name(&r.name.v));
                o.push("    filters:".into());
                o.push("    - type: ExtensionRef".into());
                o.push("      extensionRef:".into());
                o.push("        group: gateway.envoyproxy.io".into());
                o.push("        kind: HTTPRouteFilter".into());
                o.push(format!("        name: {filter}"));
                filters.push((filter, *status, body.clone()));
            }
        }
    }
    for (filter, status, body) in filters {
        o.push("---".into());
        o.push("apiVersion: gateway.envoyproxy.io/v1alpha1".into());
        o.push("kind: HTTPRouteFilter".into());
        o.push("metadata:".into());
        o.push(format!("  name: {filter}"));
        o.push(format!("  namespace: {}", scalar(&d.namespace)));
        o.push("spec:".into());
        o.push("  directResponse:".into());
        o.push("    contentType: text/plain".into());
        o.push(format!("    statusCode: {status}"));
        o.push("    body:".into());
        o.push("      type: Inline".into());
        o.push(format!(
            "      inline: {}",
            serde_json::to_string(&body).unwrap_or_default()
        ));
    }
}

/// `s` matched literally in an RE2 expression (Envoy Gateway's regular expressions).
fn regex_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
