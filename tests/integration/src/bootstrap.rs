//! Builders for the Envoy bootstrap blocks the end-to-end tests share: the admin block, a
//! listener with its HTTP connection manager, a proxy-wasm filter, the router and a cluster.
//!
//! They render config *templates* (see [`crate::render`]): a module is `{{WASM:<module>}}` and
//! the echo upstream's port `{{UPSTREAM_PORT}}`, substituted when Envoy is started. A filter's
//! JSON configuration goes into its `StringValue` as a YAML double-quoted scalar (a JSON string
//! literal), so the filter reads exactly the text it was given, whatever it contains.
//!
//! Every block is rendered at column 0 and indented where it is placed; extra YAML handed in
//! (HCM options, a non-Wasm filter) is written at column 0 too.

/// The admin interface, on a free port.
pub const ADMIN: &str =
    "admin:\n  address: {socket_address: {address: 127.0.0.1, port_value: 0}}\n";

/// The router, the last HTTP filter of every listener built here.
pub const ROUTER: &str = "- name: envoy.filters.http.router
  typed_config:
    \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
";

/// `text` with every non-empty line moved right by `by` spaces.
pub fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if !line.is_empty() {
            out.push_str(&pad);
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `text` as a YAML double-quoted scalar (a JSON string literal): read back exactly as given.
fn yaml_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// One proxy-wasm HTTP filter (an entry of `http_filters`), or the same filter as a native
/// dynamic module ([`WasmFilter::native`]): one type, so tests that build a suite filter (an ECDS
/// resource, a refused config) do it once for every form.
#[derive(Clone, Debug)]
pub struct WasmFilter {
    /// Rendered as `DynamicModuleFilter` loading `lib<module>.so` instead of a Wasm filter.
    native: bool,
    filter_name: String,
    plugin_name: String,
    module: String,
    root_id: Option<String>,
    vm_id: Option<String>,
    allow_on_headers_stop_iteration: bool,
    config: String,
}

/// The filter `apim.<module>` running `<module>.wasm` with `config_json` as its configuration;
/// plugin name, `root_id` and `vm_id` are `<module>`, `failure_policy: FAIL_CLOSED`.
pub fn wasm_filter(module: &str, config_json: &str) -> WasmFilter {
    WasmFilter {
        native: false,
        filter_name: format!("apim.{module}"),
        plugin_name: module.to_owned(),
        module: module.to_owned(),
        root_id: Some(module.to_owned()),
        vm_id: Some(module.to_owned()),
        allow_on_headers_stop_iteration: false,
        config: config_json.to_owned(),
    }
}

impl WasmFilter {
    /// The HTTP filter's name (default `apim.<module>`).
    pub fn filter_name(mut self, name: &str) -> Self {
        self.filter_name = name.to_owned();
        self
    }

    /// The VM's id (default `<module>`): filters with the same id and code share one VM.
    pub fn vm_id(mut self, id: &str) -> Self {
        self.vm_id = Some(id.to_owned());
        self
    }

    /// No `vm_id` at all.
    pub fn no_vm_id(mut self) -> Self {
        self.vm_id = None;
        self
    }

    /// No `root_id` at all.
    pub fn no_root_id(mut self) -> Self {
        self.root_id = None;
        self
    }

    /// `allow_on_headers_stop_iteration: true`: the filter may hold the request headers until
    /// it has judged the body.
    pub fn allow_on_headers_stop_iteration(mut self) -> Self {
        self.allow_on_headers_stop_iteration = true;
        self
    }

    /// The HTTP filter's name (`apim.<module>` unless changed).
    pub fn name(&self) -> &str {
        &self.filter_name
    }

    /// The same filter as the native dynamic module `lib<module>.so`
    /// (`envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter`), with the same
    /// JSON config. Its `filter_name` is the VM id (default `<module>`): native filters with the
    /// same one share shared data, as Wasm filters of one VM id do. Its counters are in the
    /// `wasmcustom` namespace, so they have the Wasm form's stat names
    /// (`wasmcustom.apim.<filter>.<counter>`). The root id and `allow_on_headers_stop_iteration`
    /// are Wasm's and mean nothing here.
    pub fn native(mut self, module: &str) -> Self {
        self.native = true;
        self.module = module.to_owned();
        self
    }

    /// Its `typed_config` (the `DynamicModuleFilter` message), at column 0.
    fn native_typed_config(&self) -> String {
        let vm = self.vm_id.as_deref().unwrap_or(&self.module);
        format!(
            "\"@type\": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter
dynamic_module_config: {{name: \"{{{{NATIVE:{}}}}}\", metrics_namespace: wasmcustom}}
filter_name: {vm}
filter_config:
  \"@type\": type.googleapis.com/google.protobuf.StringValue
  value: {}
",
            self.module,
            yaml_string(&self.config)
        )
    }

    /// Its `typed_config` (the `Wasm` message, or the `DynamicModuleFilter` one), at column 0.
    fn typed_config(&self) -> String {
        if self.native {
            return self.native_typed_config();
        }
        let mut config = format!("name: {}\n", self.plugin_name);
        if let Some(root_id) = &self.root_id {
            config.push_str(&format!("root_id: {root_id}\n"));
        }
        config.push_str("failure_policy: FAIL_CLOSED\n");
        if self.allow_on_headers_stop_iteration {
            config.push_str("allow_on_headers_stop_iteration: true\n");
        }
        config.push_str("vm_config:\n");
        if let Some(vm_id) = &self.vm_id {
            config.push_str(&format!("  vm_id: {vm_id}\n"));
        }
        config.push_str(&format!(
            "  runtime: envoy.wasm.runtime.v8
  code: {{local: {{filename: \"{{{{WASM:{}}}}}\"}}}}
configuration:
  \"@type\": type.googleapis.com/google.protobuf.StringValue
  value: {}
",
            self.module,
            yaml_string(&self.config)
        ));
        format!(
            "\"@type\": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm\nconfig:\n{}",
            indent(&config, 2)
        )
    }

    /// The `http_filters` entry, at column 0.
    pub fn yaml(&self) -> String {
        format!(
            "- name: {}\n  typed_config:\n{}",
            self.filter_name,
            indent(&self.typed_config(), 4)
        )
    }

    /// A whole ECDS resource file (what a control plane pushes) delivering this filter's
    /// config to the [`discovered_filter`] of the same name.
    pub fn ecds_resource(&self) -> String {
        format!(
            "resources:
- \"@type\": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig
  name: {}
  typed_config:
{}",
            self.filter_name,
            indent(&self.typed_config(), 4)
        )
    }
}

/// The `http_filters` entry `name` (at column 0) whose Wasm config Envoy reads, and watches,
/// from the ECDS resource file at `path` (see [`WasmFilter::ecds_resource`]).
pub fn discovered_filter(name: &str, path: &std::path::Path) -> String {
    format!(
        "- name: {name}
  config_discovery:
    config_source:
      path_config_source: {{path: {}}}
      resource_api_version: V3
    type_urls:
    - \"type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm\"
    - \"type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter\"
",
        yaml_string(&path.display().to_string())
    )
}

/// The bootstrap's `node` block (`id` and `cluster` both `id`), to put before [`bootstrap`]'s
/// text: config sources such as ECDS files want one.
pub fn node(id: &str) -> String {
    format!("node: {{id: {id}, cluster: {id}}}\n")
}

impl From<&WasmFilter> for String {
    fn from(filter: &WasmFilter) -> String {
        filter.yaml()
    }
}

impl From<WasmFilter> for String {
    fn from(filter: WasmFilter) -> String {
        filter.yaml()
    }
}

/// A listener on a free port: one HTTP connection manager whose routes all go to one cluster,
/// its HTTP filters in the order added, then the router.
#[derive(Clone, Debug)]
pub struct Listener {
    name: String,
    stat_prefix: String,
    listener_extra: String,
    hcm_extra: String,
    route_config_name: Option<String>,
    request_headers_to_add: Vec<(String, String)>,
    /// Each route's name, `match` and action (`None`: to the listener's cluster).
    routes: Vec<(Option<String>, String, Option<String>)>,
    cluster: String,
    filters: Vec<String>,
}

/// The listener `name` (also its `stat_prefix`) sending every path to `cluster`, with no HCM
/// options: Envoy's defaults, so no path normalisation.
pub fn listener(name: &str, cluster: &str) -> Listener {
    Listener {
        name: name.to_owned(),
        stat_prefix: name.to_owned(),
        listener_extra: String::new(),
        hcm_extra: String::new(),
        route_config_name: None,
        request_headers_to_add: Vec::new(),
        routes: Vec::new(),
        cluster: cluster.to_owned(),
        filters: Vec::new(),
    }
}

impl Listener {
    /// The HCM's `stat_prefix` (default: the listener's name).
    pub fn stat_prefix(mut self, prefix: &str) -> Self {
        self.stat_prefix = prefix.to_owned();
        self
    }

    /// YAML added to the listener itself (e.g. `per_connection_buffer_limit_bytes: 16384`).
    pub fn listener_options(mut self, yaml: &str) -> Self {
        self.listener_extra.push_str(&indent(yaml, 0));
        self
    }

    /// YAML added to the HTTP connection manager (e.g. `normalize_path: true`).
    pub fn hcm_options(mut self, yaml: &str) -> Self {
        self.hcm_extra.push_str(&indent(yaml, 0));
        self
    }

    /// The route configuration's `name`.
    pub fn route_config_name(mut self, name: &str) -> Self {
        self.route_config_name = Some(name.to_owned());
        self
    }

    /// A route named `name` for paths starting with `prefix`, after those added before. With
    /// none added, the listener has one unnamed route for `/`.
    pub fn route(mut self, name: &str, prefix: &str) -> Self {
        self.routes.push((
            Some(name.to_owned()),
            format!("{{prefix: {}}}", yaml_string(prefix)),
            None,
        ));
        self
    }

    /// A route named `name` for paths starting with `prefix` that Envoy answers itself with
    /// `status` and no body (`direct_response`), after those added before: no upstream.
    pub fn direct_response(mut self, name: &str, prefix: &str, status: u16) -> Self {
        self.routes.push((
            Some(name.to_owned()),
            format!("{{prefix: {}}}", yaml_string(prefix)),
            Some(format!("direct_response: {{status: {status}}}")),
        ));
        self
    }

    /// A route named `name` for paths starting with `prefix` to another cluster than the
    /// listener's (a gRPC service beside the echo upstream), after those added before.
    pub fn route_to(mut self, name: &str, prefix: &str, cluster: &str) -> Self {
        self.routes.push((
            Some(name.to_owned()),
            format!("{{prefix: {}}}", yaml_string(prefix)),
            Some(format!("route: {{cluster: {cluster}}}")),
        ));
        self
    }

    /// A route named `name` for the path `path` exactly, after those added before.
    pub fn route_path(mut self, name: &str, path: &str) -> Self {
        self.routes.push((
            Some(name.to_owned()),
            format!("{{path: {}}}", yaml_string(path)),
            None,
        ));
        self
    }

    /// The virtual host sets the request header `key` to `value` (an Envoy format string, e.g.
    /// `%FILTER_STATE(wasm.apim_consumer:PLAIN)%`) before the request goes upstream, replacing
    /// any value the client sent.
    pub fn request_header_to_add(mut self, key: &str, value: &str) -> Self {
        self.request_headers_to_add
            .push((key.to_owned(), value.to_owned()));
        self
    }

    /// An HTTP filter (a [`WasmFilter`] or YAML at column 0), after those added before.
    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        self.filters.push(filter.into());
        self
    }

    /// The `listeners` entry, at column 0.
    pub fn yaml(&self) -> String {
        let routes: Vec<(Option<String>, String, Option<String>)> = if self.routes.is_empty() {
            vec![(None, "{prefix: \"/\"}".to_owned(), None)]
        } else {
            self.routes.clone()
        };
        let mut route_config = String::new();
        if let Some(name) = &self.route_config_name {
            route_config.push_str(&format!("name: {name}\n"));
        }
        route_config.push_str("virtual_hosts:\n- name: all\n  domains: [\"*\"]\n");
        if !self.request_headers_to_add.is_empty() {
            route_config.push_str("  request_headers_to_add:\n");
            for (key, value) in &self.request_headers_to_add {
                route_config.push_str(&format!(
                    "  - header: {{key: {}, value: {}}}\n    append_action: OVERWRITE_IF_EXISTS_OR_ADD\n",
                    yaml_string(key),
                    yaml_string(value)
                ));
            }
        }
        route_config.push_str("  routes:\n");
        for (name, matcher, action) in &routes {
            let route = match name {
                Some(name) => format!("- name: {name}\n  match: {matcher}\n"),
                None => format!("- match: {matcher}\n"),
            };
            route_config.push_str(&indent(&route, 2));
            match action {
                Some(action) => route_config.push_str(&format!("    {action}\n")),
                None => {
                    route_config.push_str(&format!("    route: {{cluster: {}}}\n", self.cluster))
                }
            }
        }
        let mut filters: String = self.filters.iter().map(|f| indent(f, 0)).collect();
        filters.push_str(ROUTER);
        let hcm = format!(
            "stat_prefix: {}\n{}route_config:\n{}http_filters:\n{}",
            self.stat_prefix,
            self.hcm_extra,
            indent(&route_config, 2),
            filters
        );
        format!(
            "- name: {}
  address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
{}  filter_chains:
  - filters:
    - name: envoy.filters.network.http_connection_manager
      typed_config:
        \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
{}",
            self.name,
            indent(&self.listener_extra, 2),
            indent(&hcm, 8)
        )
    }
}

/// A static cluster of one endpoint on 127.0.0.1.
#[derive(Clone, Debug)]
pub struct Cluster {
    name: String,
    port: String,
    connect_timeout: String,
    typed: bool,
    http2: bool,
}

/// The cluster `name` in front of the echo upstream (`{{UPSTREAM_PORT}}`), `type: STATIC`,
/// `connect_timeout: 5s`.
pub fn upstream_cluster(name: &str) -> Cluster {
    Cluster {
        name: name.to_owned(),
        port: "{{UPSTREAM_PORT}}".to_owned(),
        connect_timeout: "5s".to_owned(),
        typed: true,
        http2: false,
    }
}

impl Cluster {
    /// Another port than the echo upstream's.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port.to_string();
        self
    }

    /// The `connect_timeout` (default `5s`).
    pub fn connect_timeout(mut self, timeout: &str) -> Self {
        self.connect_timeout = timeout.to_owned();
        self
    }

    /// No `type` line (Envoy's default, `STATIC`, all the same).
    pub fn untyped(mut self) -> Self {
        self.typed = false;
        self
    }

    /// Speaks HTTP/2 to its endpoint (a gRPC service such as the Rate Limit Service).
    pub fn http2(mut self) -> Self {
        self.http2 = true;
        self
    }

    /// The `clusters` entry, at column 0.
    pub fn yaml(&self) -> String {
        let typed = if self.typed { "  type: STATIC\n" } else { "" };
        let http2 = if self.http2 {
            "  typed_extension_protocol_options:
    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
      \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
      explicit_http_config: {http2_protocol_options: {}}
"
        } else {
            ""
        };
        format!(
            "- name: {name}
{typed}  connect_timeout: {timeout}
{http2}  load_assignment:
    cluster_name: {name}
    endpoints:
    - lb_endpoints:
      - endpoint:
          address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
",
            name = self.name,
            timeout = self.connect_timeout,
            port = self.port,
        )
    }
}

/// A whole bootstrap: [`ADMIN`], then the listeners and clusters.
pub fn bootstrap(listeners: &[Listener], clusters: &[Cluster]) -> String {
    let mut out = format!("{ADMIN}static_resources:\n  listeners:\n");
    for l in listeners {
        out.push_str(&indent(&l.yaml(), 2));
    }
    out.push_str("  clusters:\n");
    for c in clusters {
        out.push_str(&indent(&c.yaml(), 2));
    }
    out
}

/// The common case: the listener `main` (stat prefix `main`) with `hcm_options` (YAML, may be
/// empty) and `filters` then the router, every path to the cluster `upstream` in front of the
/// echo upstream.
pub fn single_listener_bootstrap(hcm_options: &str, filters: &[WasmFilter]) -> String {
    let l = filters.iter().fold(
        listener("main", "upstream").hcm_options(hcm_options),
        |l, f| l.filter(f),
    );
    bootstrap(&[l], &[upstream_cluster("upstream")])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_yaml::Value;

    fn parse(yaml: &str) -> Value {
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}:\n{yaml}"))
    }

    /// The names of an HTTP connection manager's filters, in order.
    fn filter_names(hcm: &Value) -> Vec<&str> {
        hcm["http_filters"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn indent_moves_every_non_empty_line() {
        assert_eq!(indent("a:\n  b\n\nc", 2), "  a:\n    b\n\n  c\n");
        assert_eq!(indent("", 4), "");
    }

    #[test]
    fn admin_and_router_parse() {
        let admin = parse(ADMIN);
        assert_eq!(admin["admin"]["address"]["socket_address"]["port_value"], 0);
        let router = parse(ROUTER);
        assert_eq!(router[0]["name"], "envoy.filters.http.router");
    }

    #[test]
    fn wasm_filter_defaults_and_options() {
        // A config with everything a YAML scalar could trip on: it must arrive as given.
        let config = "{\"a\": \"x: 'y' #z\\n\",\n  \"t\": \"{{claim.sub}}\", \"é\": \"\u{1}\"}\n";
        let f = parse(&wasm_filter("quota", config).yaml());
        let c = &f[0]["typed_config"]["config"];
        assert_eq!(f[0]["name"], "apim.quota");
        assert_eq!(
            f[0]["typed_config"]["@type"],
            "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
        );
        assert_eq!(c["name"], "quota");
        assert_eq!(c["root_id"], "quota");
        assert_eq!(c["failure_policy"], "FAIL_CLOSED");
        assert!(c.get("allow_on_headers_stop_iteration").is_none());
        assert_eq!(c["vm_config"]["vm_id"], "quota");
        assert_eq!(c["vm_config"]["runtime"], "envoy.wasm.runtime.v8");
        assert_eq!(
            c["vm_config"]["code"]["local"]["filename"],
            "{{WASM:quota}}"
        );
        assert_eq!(
            c["configuration"]["@type"],
            "type.googleapis.com/google.protobuf.StringValue"
        );
        assert_eq!(c["configuration"]["value"], config);

        let f = parse(
            &wasm_filter("graphql_guard", "{}")
                .filter_name("envoy.filters.http.wasm")
                .vm_id("graphql_guard_bare")
                .no_root_id()
                .allow_on_headers_stop_iteration()
                .yaml(),
        );
        let c = &f[0]["typed_config"]["config"];
        assert_eq!(f[0]["name"], "envoy.filters.http.wasm");
        assert!(c.get("root_id").is_none());
        assert_eq!(c["allow_on_headers_stop_iteration"], true);
        assert_eq!(c["vm_config"]["vm_id"], "graphql_guard_bare");
        let f = parse(&wasm_filter("t", "{}").no_vm_id().yaml());
        assert!(f[0]["typed_config"]["config"]["vm_config"]
            .get("vm_id")
            .is_none());
    }

    #[test]
    fn listener_defaults_and_options() {
        let hcm_of = |l: &Value| l[0]["filter_chains"][0]["filters"][0]["typed_config"].clone();
        let l = parse(&listener("main", "upstream").yaml());
        assert_eq!(l[0]["name"], "main");
        assert_eq!(l[0]["address"]["socket_address"]["port_value"], 0);
        let hcm = hcm_of(&l);
        assert_eq!(hcm["stat_prefix"], "main");
        // No path settings unless asked for.
        assert!(hcm.get("normalize_path").is_none() && hcm.get("merge_slashes").is_none());
        assert!(hcm["route_config"].get("name").is_none());
        let vh = &hcm["route_config"]["virtual_hosts"][0];
        assert_eq!(vh["domains"][0], "*");
        assert_eq!(vh["routes"].as_sequence().unwrap().len(), 1);
        assert_eq!(vh["routes"][0]["match"]["prefix"], "/");
        assert_eq!(vh["routes"][0]["route"]["cluster"], "upstream");
        let filters = hcm["http_filters"].as_sequence().unwrap();
        assert_eq!(filters.len(), 1);
        assert_eq!(filters[0]["name"], "envoy.filters.http.router");

        let lua = "- name: envoy.filters.http.lua\n  typed_config:\n    inline_string: |\n      a\n        b\n";
        let l = parse(
            &listener("bare", "ws_upstream")
                .stat_prefix("ingress")
                .listener_options("per_connection_buffer_limit_bytes: 16384")
                .hcm_options("normalize_path: false\nmerge_slashes: false\n")
                .route_config_name("bare")
                .route("health", "/health")
                .route("everything", "/")
                .filter(wasm_filter("api_key_auth", "{}"))
                .filter(lua)
                .yaml(),
        );
        assert_eq!(l[0]["per_connection_buffer_limit_bytes"], 16384);
        let hcm = hcm_of(&l);
        assert_eq!(hcm["stat_prefix"], "ingress");
        assert_eq!(hcm["normalize_path"], false);
        assert_eq!(hcm["merge_slashes"], false);
        assert_eq!(hcm["route_config"]["name"], "bare");
        let routes = &hcm["route_config"]["virtual_hosts"][0]["routes"];
        assert_eq!(routes[0]["name"], "health");
        assert_eq!(routes[0]["match"]["prefix"], "/health");
        assert_eq!(routes[1]["name"], "everything");
        assert_eq!(routes[1]["route"]["cluster"], "ws_upstream");
        assert_eq!(
            filter_names(&hcm),
            [
                "apim.api_key_auth",
                "envoy.filters.http.lua",
                "envoy.filters.http.router"
            ]
        );
        assert_eq!(
            hcm["http_filters"][1]["typed_config"]["inline_string"],
            "a\n  b\n"
        );
    }

    #[test]
    fn exact_path_routes_and_vhost_request_headers() {
        let hcm_of = |l: &Value| l[0]["filter_chains"][0]["filters"][0]["typed_config"].clone();
        let l = parse(
            &listener("main", "upstream")
                .request_header_to_add("x-state", "%FILTER_STATE(wasm.apim_consumer:PLAIN)%")
                .route_path("health", "/health")
                .route("everything", "/")
                .yaml(),
        );
        let vh = &hcm_of(&l)["route_config"]["virtual_hosts"][0];
        let add = &vh["request_headers_to_add"][0];
        assert_eq!(add["header"]["key"], "x-state");
        assert_eq!(
            add["header"]["value"],
            "%FILTER_STATE(wasm.apim_consumer:PLAIN)%"
        );
        assert_eq!(add["append_action"], "OVERWRITE_IF_EXISTS_OR_ADD");
        assert_eq!(vh["routes"][0]["match"]["path"], "/health");
        assert!(vh["routes"][0]["match"].get("prefix").is_none());
        assert_eq!(vh["routes"][1]["match"]["prefix"], "/");
        let l = parse(
            &listener("main", "upstream")
                .direct_response("all", "/", 200)
                .yaml(),
        );
        let route = &hcm_of(&l)["route_config"]["virtual_hosts"][0]["routes"][0];
        assert_eq!(route["match"]["prefix"], "/");
        assert_eq!(route["direct_response"]["status"], 200);
        assert!(route.get("route").is_none());
        // None asked for, none rendered.
        let l = parse(&listener("main", "upstream").yaml());
        assert!(hcm_of(&l)["route_config"]["virtual_hosts"][0]
            .get("request_headers_to_add")
            .is_none());
    }

    #[test]
    fn ecds_resource_and_discovered_filter_match() {
        let f = wasm_filter("api_key_auth", "{\"a\": 'b'}").vm_id("v");
        let r = parse(&f.ecds_resource());
        let resource = &r["resources"][0];
        assert_eq!(
            resource["@type"],
            "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
        );
        assert_eq!(resource["name"], f.name());
        // The same typed config as the filter's own entry.
        assert_eq!(
            resource["typed_config"],
            parse(&f.yaml())[0]["typed_config"]
        );
        assert_eq!(
            resource["typed_config"]["config"]["configuration"]["value"],
            "{\"a\": 'b'}"
        );
        let d = parse(&discovered_filter(
            "apim.api_key_auth",
            std::path::Path::new("/tmp/x y.yaml"),
        ));
        assert_eq!(d[0]["name"], "apim.api_key_auth");
        let discovery = &d[0]["config_discovery"];
        assert_eq!(
            discovery["config_source"]["path_config_source"]["path"],
            "/tmp/x y.yaml"
        );
        assert_eq!(
            discovery["type_urls"][0],
            "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
        );
        let b = parse(&format!("{}{}", node("n"), bootstrap(&[], &[])));
        assert_eq!(b["node"]["id"], "n");
        assert_eq!(b["node"]["cluster"], "n");
    }

    #[test]
    fn cluster_defaults_and_options() {
        let c = parse(
            &upstream_cluster("upstream")
                .yaml()
                .replace("{{UPSTREAM_PORT}}", "1"),
        );
        assert_eq!(c[0]["name"], "upstream");
        assert_eq!(c[0]["type"], "STATIC");
        assert_eq!(c[0]["connect_timeout"], "5s");
        assert_eq!(c[0]["load_assignment"]["cluster_name"], "upstream");
        let addr = &c[0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
            ["address"]["socket_address"];
        assert_eq!(addr["address"], "127.0.0.1");
        assert_eq!(addr["port_value"], 1);

        let c = parse(
            &upstream_cluster("ws")
                .port(4242)
                .connect_timeout("1s")
                .untyped()
                .yaml(),
        );
        assert!(c[0].get("type").is_none());
        assert_eq!(c[0]["connect_timeout"], "1s");
        let addr = &c[0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
            ["address"]["socket_address"];
        assert_eq!(addr["port_value"], 4242);
        assert!(c[0].get("typed_extension_protocol_options").is_none());

        let c = parse(&upstream_cluster("ratelimit").port(1).http2().yaml());
        assert_eq!(
            c[0]["typed_extension_protocol_options"]
                ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["explicit_http_config"]
                ["http2_protocol_options"],
            parse("{}")
        );
        assert_eq!(c[0]["load_assignment"]["cluster_name"], "ratelimit");
    }

    #[test]
    fn single_listener_bootstrap_is_whole_and_renders() {
        let yaml = single_listener_bootstrap(
            "use_remote_address: true\n",
            &[
                wasm_filter("api_key_auth", "{\"a\": 1}"),
                wasm_filter("quota", "{}"),
            ],
        );
        let b = parse(&yaml.replace("{{UPSTREAM_PORT}}", "1"));
        assert_eq!(b["admin"]["address"]["socket_address"]["port_value"], 0);
        let l = &b["static_resources"]["listeners"];
        assert_eq!(l.as_sequence().unwrap().len(), 1);
        let hcm = &l[0]["filter_chains"][0]["filters"][0]["typed_config"];
        assert_eq!(hcm["use_remote_address"], true);
        assert_eq!(
            filter_names(hcm),
            [
                "apim.api_key_auth",
                "apim.quota",
                "envoy.filters.http.router"
            ]
        );
        assert_eq!(b["static_resources"]["clusters"][0]["name"], "upstream");
        // Every placeholder is one `render` knows (a module missing is the only error).
        match crate::render(&yaml.replace("{{UPSTREAM_PORT}}", "1")) {
            Ok(out) => assert!(!out.contains("{{")),
            Err(e) => assert!(e.contains("make build"), "{e}"),
        }
    }
}
