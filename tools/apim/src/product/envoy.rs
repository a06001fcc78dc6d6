//! `apim render --target envoy`: a complete, runnable Envoy bootstrap (listener, named routes,
//! clusters, the filters with each one's config) in the layout of the shipped
//! `envoy/gateway.yaml`, which is this output for `demo/apim.yaml`. Text is built line by line
//! so the same product file always gives the same bytes, comments included.

use super::filters;
use super::json::J;
use super::model::*;
use crate::validate_target::Target;

const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const FILTER_INDENT: &str = "          ";
const WASM_DIR: &str = "target/wasm32-wasip1/release";

/// A YAML scalar: plain when no YAML reader (1.2's core schema, or 1.1's, as Kubernetes tools
/// read) could take it for anything but this string, JSON-quoted (valid YAML) otherwise. Plain
/// means: letters, digits and `/._-~` only, starting with a letter or `/` (no number, date or
/// `.inf`), not a boolean or null word in any case; or an IP address.
pub fn scalar(s: &str) -> String {
    let word = s.to_ascii_lowercase();
    let plain = s.parse::<std::net::IpAddr>().is_ok()
        || (s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-~".contains(c))
            && !matches!(
                word.as_str(),
                "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
            )
            && s.parse::<f64>().is_err());
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

/// Why each filter fails closed, said where it is configured.
fn failure_comment(module: &str) -> &'static [&'static str] {
    match module {
        "api_key_auth" => &["# An auth filter must never fail open: a broken VM answers 503."],
        "scope_authz" => &["# Authorization must never be skipped because the module failed."],
        "graphql_guard" => &["# A guard that fails open is no guard: a broken VM answers 503."],
        "quota" => &[
            "# A VM that cannot load answers 503: a broken quota filter must not silently",
            "# lift every plan's limits.",
        ],
        _ => &["# A reshaping that cannot run must not forward the request unreshaped."],
    }
}

/// The bootstrap for `p` in the form its gateway names.
pub fn render(p: &Product, source: &str) -> String {
    let wasm = match p.gateway.form {
        Form::Modules | Form::Native => modules_bootstrap(p, source, false),
        Form::Suite | Form::NativeSuite => modules_bootstrap(p, source, true),
    };
    match p.gateway.form {
        Form::Native | Form::NativeSuite => {
            match crate::native_examples::twin(&wasm, source, "<this file>") {
                // The twin's own first line names `apim manifests sync`; here it is the render.
                Ok(native) => native.replacen(
                    "by `apim manifests sync` (make manifests-sync): edit",
                    "by `apim render --target envoy`: edit",
                    1,
                ),
                Err(_) => wasm,
            }
        }
        _ => wasm,
    }
}

fn header(p: &Product, source: &str, out: &mut Vec<String>) {
    out.push(format!(
        "# GENERATED from {source} by `apim render {source} --target envoy`: edit the product file,"
    ));
    out.push("# then render again (`make manifests-sync` for the shipped demo).".to_string());
    out.push("#".to_string());
    if let Some(d) = &p.description {
        for line in d.trim_end().lines() {
            out.push(if line.is_empty() {
                "#".to_string()
            } else {
                format!("# {line}")
            });
        }
    }
}

fn socket(a: &Address) -> String {
    format!(
        "socket_address: {{ address: {}, port_value: {} }}",
        scalar(&a.address),
        a.port
    )
}

fn modules_bootstrap(p: &Product, source: &str, suite: bool) -> String {
    let mut o = Vec::new();
    header(p, source, &mut o);
    if let Some(admin) = &p.gateway.admin {
        o.push("admin:".into());
        o.push("  address:".into());
        o.push(format!("    {}", socket(admin)));
        o.push(String::new());
    }
    o.extend(
        [
            "# quota's per-plan counters (wasmcustom.apim.quota.plan.<plan>.allowed|limited) as one metric",
            "# with a `plan` label in Prometheus: apim_quota_plan_limited{plan=\"demo\"}. One series per plan,",
            "# never per consumer.",
            "stats_config:",
            "  stats_tags:",
            "  - tag_name: plan",
            "    regex: '^wasmcustom\\.apim\\.quota\\.plan\\.((.+)\\.)(?:allowed|limited)$'",
            "",
            "static_resources:",
            "  listeners:",
            "  - name: gateway",
            "    address:",
        ]
        .map(String::from),
    );
    o.push(format!("      {}", socket(&p.gateway.listener)));
    o.extend(
        [
            "    filter_chains:",
            "    - filters:",
            "      - name: envoy.filters.network.http_connection_manager",
            "        typed_config:",
            "          \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "          stat_prefix: ingress",
        ]
        .map(String::from),
    );
    hardening(&p.gateway.hardening, &mut o);
    if let Some(path) = &p.gateway.access_log {
        access_log(path, &mut o);
    }
    routes(p, &mut o);
    o.push("          http_filters:".into());
    let configs = filters::configs(p, Target::Envoy);
    let dir = p
        .gateway
        .modules_dir
        .clone()
        .unwrap_or_else(|| WASM_DIR.to_string());
    if suite && !configs.is_empty() {
        suite_filter(&configs, &dir, &mut o);
    } else {
        for (module, config) in &configs {
            module_filter(module, config, &dir, &mut o);
        }
    }
    o.extend(
        [
            "          - name: envoy.filters.http.router",
            "            typed_config:",
            "              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
            "",
            "  clusters:",
        ]
        .map(String::from),
    );
    for u in &p.upstreams {
        cluster(u, &mut o);
    }
    let mut text = o.join("\n");
    text.push('\n');
    text
}

fn hardening(h: &Hardening, o: &mut Vec<String>) {
    let escaped = match h.escaped_slashes.as_str() {
        "reject" => "REJECT_REQUEST",
        "unescape_and_redirect" => "UNESCAPE_AND_REDIRECT",
        "unescape_and_forward" => "UNESCAPE_AND_FORWARD",
        _ => "KEEP_UNCHANGED",
    };
    o.extend(
        [
            "          # Path handling: routes and the filters' path rules see one canonical path",
            "          # (`.`/`..` resolved, `//` merged), and a path with an encoded `/` or `\\`",
            "          # (%2F, %5C) is refused with 400 instead of being matched raw and decoded",
            "          # by the backend (README, Deploy: path handling).",
        ]
        .map(String::from),
    );
    o.push(format!("          normalize_path: {}", h.normalize_path));
    o.push(format!("          merge_slashes: {}", h.merge_slashes));
    o.push(format!(
        "          path_with_escaped_slashes_action: {escaped}"
    ));
    if h.use_remote_address {
        o.push("          # An edge proxy: the client address is the connection's own, never taken from a".into());
        o.push(
            "          # client-sent X-Forwarded-For (quota counts keyless callers per address)."
                .into(),
        );
    }
    o.push(format!(
        "          use_remote_address: {}",
        h.use_remote_address
    ));
    if h.xff_trusted_hops > 0 {
        o.push(format!(
            "          xff_num_trusted_hops: {}",
            h.xff_trusted_hops
        ));
    }
}

/// The access log's fields (`apim insights` reads them): Envoy's own formatters over what the
/// filters publish as filter state. No key, token or query string is logged.
pub const ACCESS_LOG_FIELDS: [(&str, &str); 11] = [
    ("time", "%START_TIME(%Y-%m-%dT%H:%M:%S.%3fZ)%"),
    ("route", "%ROUTE_NAME%"),
    ("method", "%REQ(:METHOD)%"),
    ("status", "%RESPONSE_CODE%"),
    ("duration_ms", "%DURATION%"),
    ("consumer", "%FILTER_STATE(wasm.apim_consumer:PLAIN)%"),
    ("decision", "%FILTER_STATE(wasm.apim_decision:PLAIN)%"),
    (
        "graphql_operation",
        "%FILTER_STATE(wasm.apim_operation:PLAIN)%",
    ),
    ("graphql_cost", "%FILTER_STATE(wasm.apim_cost:PLAIN)%"),
    ("quota", "%FILTER_STATE(wasm.apim_quota:PLAIN)%"),
    ("response_flags", "%RESPONSE_FLAGS%"),
];

fn access_log(path: &str, o: &mut Vec<String>) {
    o.extend(
        [
            "          # Insights: one JSON line per request (`apim insights` reads them): the route, the",
            "          # consumer and plan, which filter refused and why, GraphQL operation and cost, the",
            "          # quota limit and what is left, status and duration. No key or query string.",
            "          access_log:",
            "          - name: envoy.access_loggers.file",
            "            typed_config:",
            "              \"@type\": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        ]
        .map(String::from),
    );
    o.push(format!("              path: {}", scalar(path)));
    o.push("              log_format:".into());
    o.push("                json_format:".into());
    for (k, v) in ACCESS_LOG_FIELDS {
        o.push(format!(
            "                  {k}: {}",
            serde_json::to_string(v).unwrap_or_default()
        ));
    }
}

fn routes(p: &Product, o: &mut Vec<String>) {
    o.push("          route_config:".into());
    o.push("            name: gateway".into());
    o.push("            virtual_hosts:".into());
    for api in &p.apis {
        o.push(format!("            - name: {}", scalar(&api.name.v)));
        let hosts: Vec<String> = api
            .hosts
            .iter()
            .map(|h| serde_json::to_string(h).unwrap_or_default())
            .collect();
        o.push(format!("              domains: [{}]", hosts.join(", ")));
        o.push("              routes:".into());
        for r in &api.routes {
            let kind = match r.path.kind {
                PathKind::Exact => "path",
                PathKind::Prefix => "prefix",
            };
            let case = if r.path.ignore_case {
                ", case_sensitive: false"
            } else {
                ""
            };
            // Methods as Envoy reads `:method`: exactly (a client's `get` takes a later route).
            let methods = if r.path.methods.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = r.path.methods.iter().map(|m| m.v.as_str()).collect();
                format!(
                    ", headers: [{{ name: \":method\", string_match: {{ safe_regex: {{ regex: \"^({})$\" }} }} }}]",
                    names.join("|")
                )
            };
            o.push(format!("              - name: {}", scalar(&r.name.v)));
            o.push(format!(
                "                match: {{ {kind}: {}{case}{methods} }}",
                scalar(&r.path.path.v)
            ));
            match &r.target {
                RouteTarget::Upstream(u) => o.push(format!("                route: {{ cluster: {} }}", scalar(&u.v))),
                RouteTarget::Respond { status, body } => o.push(format!(
                    "                direct_response: {{ status: {status}, body: {{ inline_string: {} }} }}",
                    serde_json::to_string(body).unwrap_or_default()
                )),
            }
        }
    }
}

/// A config line block starts where `pretty` put its first line (without the indent).
pub fn value_block(config: &J, indent: &str, o: &mut Vec<String>) {
    let text = config.pretty(indent);
    let mut lines = text.lines();
    if let Some(first) = lines.next() {
        o.push(format!("{indent}{first}"));
    }
    o.extend(lines.map(str::to_string));
}

/// One Wasm filter of the chain, as a module or as the suite: what differs between the two.
struct WasmFilter<'a> {
    /// `apim.<filter>` in the chain.
    filter: &'a str,
    /// The config's name, root id and VM id, and the module file's stem.
    id: &'a str,
    /// Comment lines above the filter.
    intro: &'a [&'a str],
    /// Why it fails closed.
    failure: &'a [&'a str],
    /// Why the headers wait for the body, when they do.
    holds_headers: &'a [&'a str],
    config: &'a J,
}

fn wasm_filter(w: &WasmFilter, dir: &str, o: &mut Vec<String>) {
    let i = FILTER_INDENT;
    let id = w.id;
    o.extend(w.intro.iter().map(|c| format!("{i}{c}")));
    o.push(format!("{i}- name: apim.{}", w.filter));
    o.push(format!("{i}  typed_config:"));
    o.push(format!("{i}    \"@type\": {WASM_TYPE}"));
    o.push(format!("{i}    config:"));
    o.push(format!("{i}      name: {id}"));
    o.push(format!("{i}      root_id: {id}"));
    o.extend(w.failure.iter().map(|c| format!("{i}      {c}")));
    o.push(format!("{i}      failure_policy: FAIL_CLOSED"));
    if !w.holds_headers.is_empty() {
        o.extend(w.holds_headers.iter().map(|c| format!("{i}      {c}")));
        o.push(format!("{i}      allow_on_headers_stop_iteration: true"));
    }
    o.push(format!("{i}      vm_config:"));
    o.push(format!("{i}        vm_id: {id}"));
    o.push(format!("{i}        runtime: envoy.wasm.runtime.v8"));
    o.push(format!(
        "{i}        code: {{ local: {{ filename: {} }} }}",
        scalar(&format!("{dir}/{id}.wasm"))
    ));
    o.push(format!("{i}      configuration:"));
    o.push(format!(
        "{i}        \"@type\": type.googleapis.com/google.protobuf.StringValue"
    ));
    o.push(format!("{i}        value: |"));
    value_block(w.config, &format!("{i}          "), o);
}

/// The filter of one module, with its config.
fn module_filter(module: &str, config: &J, dir: &str, o: &mut Vec<String>) {
    let intro: &[&str] = if module == "quota" {
        &["# quota: after auth (it reads the apim_consumer identity) and graphql-guard (apim_cost)."]
    } else {
        &[]
    };
    let holds_headers: &[&str] = if module == "graphql_guard" {
        &[
            "# Pause on the headers reaches Envoy as StopIteration: the headers wait for the",
            "# guard's verdict on the body, so quota never counts a refused operation (Envoy >= 1.35).",
        ]
    } else {
        &[]
    };
    let w = WasmFilter {
        filter: module,
        id: module,
        intro,
        failure: failure_comment(module),
        holds_headers,
        config,
    };
    wasm_filter(&w, dir, o);
}

/// The suite module, a section per filter.
fn suite_filter(configs: &[(&str, J)], dir: &str, o: &mut Vec<String>) {
    let mut sections = J::obj();
    for (module, config) in configs {
        sections.push(module, config.clone());
    }
    let w = WasmFilter {
        filter: "suite",
        id: "apim_suite",
        intro: &[
            "# The whole suite in one module: api-key-auth → scope-authz → graphql-guard → quota →",
            "# transform, a section per filter, each exactly that filter's config.",
        ],
        failure: &["# Every stage fails closed, as each module does: a broken VM answers 503."],
        holds_headers: &[
            "# graphql-guard holds the headers until it has judged the body (StopIteration).",
        ],
        config: &sections,
    };
    wasm_filter(&w, dir, o);
}

fn cluster(u: &Upstream, o: &mut Vec<String>) {
    let is_ip = u.address.parse::<std::net::IpAddr>().is_ok();
    o.push(format!("  - name: {}", scalar(&u.name.v)));
    o.push(format!(
        "    type: {}",
        if is_ip { "STATIC" } else { "STRICT_DNS" }
    ));
    o.push("    connect_timeout: 1s".into());
    if u.http2 {
        o.extend(
            [
                "    typed_extension_protocol_options:",
                "      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:",
                "        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "        explicit_http_config: { http2_protocol_options: {} }",
            ]
            .map(String::from),
        );
    }
    if let Some(sni) = &u.tls_sni {
        o.push("    transport_socket:".into());
        o.push("      name: envoy.transport_sockets.tls".into());
        o.push("      typed_config:".into());
        o.push("        \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext".into());
        o.push(format!("        sni: {}", scalar(sni)));
    }
    o.push("    load_assignment:".into());
    o.push(format!("      cluster_name: {}", scalar(&u.name.v)));
    o.push("      endpoints:".into());
    o.push("      - lb_endpoints:".into());
    o.push("        - endpoint:".into());
    o.push("            address:".into());
    o.push(format!(
        "              socket_address: {{ address: {}, port_value: {} }}",
        scalar(&u.address),
        u.port
    ));
}

#[cfg(test)]
mod tests {
    use super::scalar;

    #[test]
    fn scalars_that_could_be_misread_are_quoted() {
        for plain in [
            "demo_upstream",
            "/pets",
            "127.0.0.1",
            "::1",
            "api-key-auth",
            "a.b~c",
        ] {
            assert_eq!(scalar(plain), plain);
        }
        for quoted in [
            "",
            "yes",
            "Off",
            "N",
            "true",
            "null",
            "2026-12-02",
            "0x1F",
            "1_000",
            ".inf",
            "inf",
            "a b",
            "a: b",
            "{x}",
            "#c",
            "-x",
            "oci://x:1",
        ] {
            assert_eq!(
                scalar(quoted),
                serde_json::to_string(quoted).unwrap(),
                "{quoted}"
            );
        }
    }
}
