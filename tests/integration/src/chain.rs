//! A listener's filter chain as the tests state it: the suite's filters in order, each with its
//! JSON configuration, among any other HTTP filters a test needs (Lua, Envoy's own filters),
//! rendered into `http_filters` for one [`Form`] of the suite.
//!
//! A test says *what* runs (`Chain::new().filter(Filter::ApiKeyAuth, json)`), not how Envoy
//! loads it: the form decides that, in one place ([`Chain::http_filters`]), so the same test can
//! run against every form ([`for_each_form`]): [`Form::Modules`] (five modules),
//! [`Form::Suite`] (the one module `apim_suite.wasm`), and the same two as native dynamic
//! modules, [`Form::Native`] (`libapim_<filter>.so`) and [`Form::NativeSuite`]
//! (`libapim_suite.so`). Adding another is a variant here, its rendering in `http_filters`, and
//! an entry in [`FORMS`]. What legitimately differs between forms in a test's expectations (the
//! plumbing: log prefixes, Envoy's own refusal line) is said once, by a method of [`Form`].

use std::sync::OnceLock;

use crate::bootstrap::{indent, listener, wasm_filter, Listener, WasmFilter};
use crate::Envoy;

/// One filter of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    ApiKeyAuth,
    ScopeAuthz,
    GraphqlGuard,
    Quota,
    Transform,
}

impl Filter {
    /// The name of its module (`<name>.wasm`), of its counters (`apim.<name>.*`) and of its
    /// section in the suite's configuration.
    pub fn name(self) -> &'static str {
        match self {
            Filter::ApiKeyAuth => "api_key_auth",
            Filter::ScopeAuthz => "scope_authz",
            Filter::GraphqlGuard => "graphql_guard",
            Filter::Quota => "quota",
            Filter::Transform => "transform",
        }
    }

    /// Its place in the suite's order (api-key-auth → scope-authz → graphql-guard → quota →
    /// transform), the order the suite module runs its stages in.
    fn suite_order(self) -> usize {
        match self {
            Filter::ApiKeyAuth => 0,
            Filter::ScopeAuthz => 1,
            Filter::GraphqlGuard => 2,
            Filter::Quota => 3,
            Filter::Transform => 4,
        }
    }

    /// The name it logs under in its own module (`api-key-auth: …`).
    pub fn log_name(self) -> &'static str {
        match self {
            Filter::ApiKeyAuth => "api-key-auth",
            Filter::ScopeAuthz => "scope-authz",
            Filter::GraphqlGuard => "graphql-guard",
            Filter::Quota => "quota",
            Filter::Transform => "transform",
        }
    }

    /// The guard holds the request headers until it has judged the body, so that no later
    /// filter acts on a request it refuses: its Wasm filter needs
    /// `allow_on_headers_stop_iteration`.
    fn holds_headers_for_body(self) -> bool {
        self == Filter::GraphqlGuard
    }
}

/// How Envoy runs the suite's filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// One Wasm filter per suite filter, each its own module (`<name>.wasm`), plugin and
    /// `root_id` `<name>`, `failure_policy: FAIL_CLOSED`.
    Modules,
    /// The one module `apim_suite.wasm` (filter `apim.suite`, plugin, `root_id` and VM
    /// `apim_suite`, `failure_policy: FAIL_CLOSED`): each run of consecutive suite filters (no
    /// other filter between them) is one Wasm filter whose config has a section per filter
    /// (`{"api_key_auth": <its config>, …}`). The module runs its stages in the suite's order
    /// whatever the order of the sections, so a run declared out of that order (quota before
    /// api-key-auth), or naming a filter twice, is split into several suite filters, each a
    /// subset in suite order, placed in the declared order: the behaviour stays the declared
    /// order.
    Suite,
    /// One native dynamic module per suite filter (`libapim_<name>.so`, loaded by
    /// `DynamicModuleFilter` with the same JSON config): rendered as [`Form::Modules`] is.
    Native,
    /// The one native module `libapim_suite.so`, grouped as [`Form::Suite`] is.
    NativeSuite,
}

/// Every form a test of the chain must pass in.
pub const FORMS: [Form; 4] = [Form::Modules, Form::Suite, Form::Native, Form::NativeSuite];

/// The Wasm forms only: for the tests of a feature the native form refuses at load ("not
/// supported in the native form yet": scope-authz's remote JWKS — a timer and callouts outside
/// any request — and its `metadata` mode). A test that runs only these says so by using this
/// list, with its reason.
pub const WASM_FORMS: [Form; 2] = [Form::Modules, Form::Suite];

impl Form {
    /// Whether the form is Envoy dynamic modules (not Wasm).
    pub fn is_native(self) -> bool {
        matches!(self, Form::Native | Form::NativeSuite)
    }

    /// Whether the form runs the suite's filters in one module.
    fn is_suite(self) -> bool {
        matches!(self, Form::Suite | Form::NativeSuite)
    }

    /// The Prometheus name of a filter counter (`apim_api_key_auth_allowed`): Envoy lists a
    /// proxy-wasm counter without its `wasmcustom` namespace and without the `envoy_` prefix; a
    /// native module's counters, in the `wasmcustom` namespace too (same `/stats` names), keep
    /// both (`envoy_wasmcustom_apim_api_key_auth_allowed`).
    pub fn prometheus_counter(self, metric: &str) -> String {
        if self.is_native() {
            format!("envoy_wasmcustom_{metric}")
        } else {
            metric.to_owned()
        }
    }

    /// What Envoy logs when the module refuses a config at load: the Wasm plugin it could not
    /// create, or the dynamic module it could not initialize.
    pub fn load_failure(self, filter: Filter) -> String {
        if self.is_native() {
            "Failed to initialize dynamic module".to_owned()
        } else {
            format!("Unable to create Wasm plugin {}", self.plugin_name(filter))
        }
    }

    /// The start of the line a filter logs when it refuses `filter`'s config, up to the field:
    /// `api-key-auth: invalid configuration: ` for the module, `suite: invalid configuration:
    /// api_key_auth.` for the suite (the field is then named under the section). A test
    /// appends the field and the message, the same in both forms.
    pub fn refusal_prefix(self, filter: Filter) -> String {
        if self.is_suite() {
            format!("suite: invalid configuration: {}.", filter.name())
        } else {
            format!("{}: invalid configuration: ", filter.log_name())
        }
    }

    /// The Wasm plugin that runs `filter` (Envoy names it in `Unable to create Wasm plugin
    /// <name>` when it refuses the config): the filter's module, or the suite.
    pub fn plugin_name(self, filter: Filter) -> &'static str {
        if self.is_suite() {
            SUITE_MODULE
        } else {
            filter.name()
        }
    }
}

/// Runs `test` once per form of [`FORMS`], saying which on stderr, so that a failure names the
/// form it failed in.
pub fn for_each_form(test: impl FnMut(Form)) {
    for_forms(&FORMS, test);
}

/// Runs `test` once per form of `forms` ([`WASM_FORMS`] for a feature the native form refuses).
pub fn for_forms(forms: &[Form], mut test: impl FnMut(Form)) {
    for form in forms {
        eprintln!("--- form: {form:?}");
        test(*form);
    }
}

/// One Envoy per form, started on first use and kept for the test binary's life: what tests
/// that share an Envoy hold in a `static`.
pub struct PerForm {
    envoys: [OnceLock<Envoy>; FORMS.len()],
}

impl PerForm {
    pub const fn new() -> Self {
        Self {
            envoys: [const { OnceLock::new() }; FORMS.len()],
        }
    }

    /// The Envoy of `form`, started by `start(form)` the first time. A static is never dropped,
    /// so the Envoy is stopped when the test process exits
    /// ([`Envoy::stop_when_process_exits`]).
    pub fn get(&self, form: Form, start: impl FnOnce(Form) -> Envoy) -> &Envoy {
        let at = FORMS.iter().position(|f| *f == form).unwrap_or(0);
        self.envoys[at].get_or_init(|| {
            let envoy = start(form);
            envoy.stop_when_process_exits();
            envoy
        })
    }
}

impl Default for PerForm {
    fn default() -> Self {
        Self::new()
    }
}

/// One entry of a chain.
#[derive(Clone, Debug)]
enum Entry {
    /// A suite filter and its JSON configuration.
    Suite(Filter, String),
    /// Any other HTTP filter, as its `http_filters` entry (YAML at column 0), whatever the form.
    Other(String),
}

/// The suite module's name (`apim_suite.wasm`, its plugin, `root_id` and default VM).
const SUITE_MODULE: &str = "apim_suite";

/// The native suite module (`libapim_suite.so`).
const NATIVE_SUITE_MODULE: &str = "apim_suite";

/// The entries as [`Form::Suite`] renders them: a run of suite filters in suite order (one
/// `apim.suite` filter), or another filter.
enum Group<'a> {
    Suite(Vec<(Filter, &'a str)>),
    Other(&'a str),
}

/// The HTTP filters of a listener, before the router, in order.
#[derive(Clone, Debug, Default)]
pub struct Chain {
    entries: Vec<Entry>,
    vm: Option<String>,
}

impl Chain {
    pub fn new() -> Self {
        Self::default()
    }

    /// A suite filter configured with `config_json` (the text the filter reads, as given).
    pub fn filter(mut self, filter: Filter, config_json: &str) -> Self {
        self.entries
            .push(Entry::Suite(filter, config_json.to_owned()));
        self
    }

    /// Another HTTP filter (a [`WasmFilter`], [`lua`], or an Envoy filter's YAML at column 0),
    /// the same in every form.
    pub fn other(mut self, filter: impl Into<String>) -> Self {
        self.entries.push(Entry::Other(filter.into()));
        self
    }

    /// Names this chain's VMs `<module>_<vm>` instead of `<module>`: a VM (and its shared data,
    /// its JWKS fetch, its APQ registry) of its own, apart from other listeners' chains.
    pub fn vm(mut self, vm: &str) -> Self {
        self.vm = Some(vm.to_owned());
        self
    }

    /// The Wasm filters that run the suite's filters in `form`, in order (the entries that are
    /// not the suite's left out). What an ECDS resource delivers.
    pub fn wasm_filters(&self, form: Form) -> Vec<WasmFilter> {
        if form.is_suite() {
            self.suite_groups()
                .into_iter()
                .filter_map(|group| match group {
                    Group::Suite(group) => Some(self.suite_filter(&group, form)),
                    Group::Other(_) => None,
                })
                .collect()
        } else {
            self.entries
                .iter()
                .filter_map(|entry| match entry {
                    Entry::Suite(filter, config) => Some(self.module(*filter, config, form)),
                    Entry::Other(_) => None,
                })
                .collect()
        }
    }

    /// The one Wasm filter that runs this chain's suite filters in `form` (what an ECDS resource
    /// delivers); panics if that takes more than one (more than one suite filter in
    /// [`Form::Modules`], a chain out of the suite's order in [`Form::Suite`]).
    pub fn wasm_filter(&self, form: Form) -> WasmFilter {
        let mut filters = self.wasm_filters(form);
        assert_eq!(
            filters.len(),
            1,
            "{self:?} is not one Wasm filter in {form:?}"
        );
        filters.remove(0)
    }

    /// The `http_filters` entries in `form`, in order, without the router (each at column 0).
    pub fn http_filters(&self, form: Form) -> Vec<String> {
        if form.is_suite() {
            self.suite_groups()
                .into_iter()
                .map(|group| match group {
                    Group::Suite(group) => self.suite_filter(&group, form).yaml(),
                    Group::Other(yaml) => indent(yaml, 0),
                })
                .collect()
        } else {
            self.entries
                .iter()
                .map(|entry| match entry {
                    Entry::Suite(filter, config) => self.module(*filter, config, form).yaml(),
                    Entry::Other(yaml) => indent(yaml, 0),
                })
                .collect()
        }
    }

    /// The entries grouped as [`Form::Suite`] runs them: each run of consecutive suite filters
    /// split wherever the next one does not come later in the suite's order.
    fn suite_groups(&self) -> Vec<Group<'_>> {
        let mut groups = Vec::new();
        let mut run: Vec<(Filter, &str)> = Vec::new();
        for entry in &self.entries {
            match entry {
                Entry::Suite(filter, config) => {
                    if run
                        .last()
                        .is_some_and(|(last, _)| last.suite_order() >= filter.suite_order())
                    {
                        groups.push(Group::Suite(std::mem::take(&mut run)));
                    }
                    run.push((*filter, config));
                }
                Entry::Other(yaml) => {
                    if !run.is_empty() {
                        groups.push(Group::Suite(std::mem::take(&mut run)));
                    }
                    groups.push(Group::Other(yaml));
                }
            }
        }
        if !run.is_empty() {
            groups.push(Group::Suite(run));
        }
        groups
    }

    /// One `apim.suite` filter running `group` (in suite order), in this chain's VM
    /// (`apim_suite` or `apim_suite_<vm>`). Each section is the entry's config text as given:
    /// it is JSON, so the object stays JSON.
    fn suite_filter(&self, group: &[(Filter, &str)], form: Form) -> WasmFilter {
        let sections: Vec<String> = group
            .iter()
            .map(|(filter, config)| format!("\"{}\": {config}", filter.name()))
            .collect();
        let mut suite = wasm_filter(SUITE_MODULE, &format!("{{{}}}", sections.join(", ")))
            .filter_name("apim.suite");
        if let Some(vm) = &self.vm {
            suite = suite.vm_id(&format!("{SUITE_MODULE}_{vm}"));
        }
        if group.iter().any(|(f, _)| f.holds_headers_for_body()) {
            suite = suite.allow_on_headers_stop_iteration();
        }
        if form.is_native() {
            suite = suite.native(NATIVE_SUITE_MODULE);
        }
        suite
    }

    /// `filter`'s own module, in this chain's VM.
    fn module(&self, filter: Filter, config: &str, form: Form) -> WasmFilter {
        let name = filter.name();
        let mut module = wasm_filter(name, config);
        if let Some(vm) = &self.vm {
            module = module.vm_id(&format!("{name}_{vm}"));
        }
        if filter.holds_headers_for_body() {
            module = module.allow_on_headers_stop_iteration();
        }
        if form.is_native() {
            module = module.native(&format!("apim_{name}"));
        }
        module
    }
}

impl Listener {
    /// `chain`'s filters in `form`, after the filters added before.
    pub fn chain(self, chain: &Chain, form: Form) -> Self {
        chain
            .http_filters(form)
            .into_iter()
            .fold(self, |l, f| l.filter(f))
    }
}

/// The listener `main` (stat prefix `main`) running `chain` in `form`, every path to the cluster
/// `upstream`: the common case, to which a test adds routes and options.
pub fn main_listener(chain: &Chain, form: Form) -> Listener {
    listener("main", "upstream").chain(chain, form)
}

/// A Lua HTTP filter running `source` (its `envoy_on_request` and the like).
pub fn lua(source: &str) -> String {
    format!(
        "- name: envoy.filters.http.lua
  typed_config:
    \"@type\": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
    default_source_code:
      inline_string: |
{}",
        indent(source, 8)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_yaml::Value;

    fn parse(yaml: &str) -> Value {
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}:\n{yaml}"))
    }

    #[test]
    fn modules_form_is_one_wasm_filter_per_suite_filter_in_order() {
        let chain = Chain::new()
            .filter(Filter::ApiKeyAuth, "{\"a\": 1}")
            .filter(Filter::GraphqlGuard, "{}")
            .other(lua("function envoy_on_request(h)\nend\n"))
            .filter(Filter::Quota, "{\"q\": 2}");
        let filters: Vec<Value> = chain
            .http_filters(Form::Modules)
            .iter()
            .map(|f| parse(f)[0].clone())
            .collect();
        let names: Vec<&str> = filters
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "apim.api_key_auth",
                "apim.graphql_guard",
                "envoy.filters.http.lua",
                "apim.quota"
            ]
        );
        let config = |i: usize| filters[i]["typed_config"]["config"].clone();
        assert_eq!(config(0)["vm_config"]["vm_id"], "api_key_auth");
        assert_eq!(config(0)["root_id"], "api_key_auth");
        assert_eq!(config(0)["configuration"]["value"], "{\"a\": 1}");
        assert!(config(0).get("allow_on_headers_stop_iteration").is_none());
        // The guard always may hold the headers for the body.
        assert_eq!(config(1)["allow_on_headers_stop_iteration"], true);
        assert_eq!(
            filters[2]["typed_config"]["default_source_code"]["inline_string"],
            "function envoy_on_request(h)\nend\n"
        );
        assert_eq!(
            config(3)["vm_config"]["code"]["local"]["filename"],
            "{{WASM:quota}}"
        );
        // Only the suite's filters are Wasm filters of the chain.
        assert_eq!(chain.wasm_filters(Form::Modules).len(), 3);
    }

    #[test]
    fn a_chain_vm_names_every_module_vm() {
        let chain = Chain::new()
            .filter(Filter::ApiKeyAuth, "{}")
            .filter(Filter::ScopeAuthz, "{}")
            .vm("keys");
        let l = parse(&main_listener(&chain, Form::Modules).yaml());
        let filters = &l[0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"];
        assert_eq!(
            filters[0]["typed_config"]["config"]["vm_config"]["vm_id"],
            "api_key_auth_keys"
        );
        assert_eq!(
            filters[1]["typed_config"]["config"]["vm_config"]["vm_id"],
            "scope_authz_keys"
        );
        assert_eq!(filters[2]["name"], "envoy.filters.http.router");
    }

    /// The `config` block of each `http_filters` entry of `chain` in `form` (`Null` for a
    /// filter that is not Wasm), with the entry's name.
    fn rendered(chain: &Chain, form: Form) -> Vec<(String, Value)> {
        chain
            .http_filters(form)
            .iter()
            .map(|f| {
                let f = parse(f)[0].clone();
                let name = f["name"].as_str().unwrap().to_owned();
                (name, f["typed_config"]["config"].clone())
            })
            .collect()
    }

    /// The sections of a rendered suite filter's configuration, as JSON.
    fn sections(config: &Value) -> serde_json::Value {
        let text = config["configuration"]["value"].as_str().unwrap();
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn suite_form_is_one_suite_filter_per_run_of_suite_filters() {
        let chain = Chain::new()
            .filter(Filter::ApiKeyAuth, "{\"a\": 1}")
            .filter(Filter::Quota, "{\"q\": [2]}")
            .other(lua("function envoy_on_request(h)\nend\n"))
            .filter(Filter::ScopeAuthz, "{}")
            .filter(Filter::Transform, "{\"t\": \"{{path.id}}\"}");
        let filters = rendered(&chain, Form::Suite);
        let names: Vec<&str> = filters.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["apim.suite", "envoy.filters.http.lua", "apim.suite"]
        );
        let (_, first) = &filters[0];
        assert_eq!(first["name"], "apim_suite");
        assert_eq!(first["root_id"], "apim_suite");
        assert_eq!(first["failure_policy"], "FAIL_CLOSED");
        assert_eq!(first["vm_config"]["vm_id"], "apim_suite");
        assert_eq!(
            first["vm_config"]["code"]["local"]["filename"],
            "{{WASM:apim_suite}}"
        );
        assert!(first.get("allow_on_headers_stop_iteration").is_none());
        // Each section is the entry's JSON as given.
        assert_eq!(
            first["configuration"]["value"],
            "{\"api_key_auth\": {\"a\": 1}, \"quota\": {\"q\": [2]}}"
        );
        assert_eq!(
            sections(&filters[2].1),
            serde_json::json!({"scope_authz": {}, "transform": {"t": "{{path.id}}"}})
        );
        assert_eq!(chain.wasm_filters(Form::Suite).len(), 2);
    }

    #[test]
    fn suite_form_splits_a_run_out_of_suite_order_so_the_declared_order_holds() {
        let chain = Chain::new()
            .filter(Filter::Quota, "{\"q\": 1}")
            .filter(Filter::ApiKeyAuth, "{\"a\": 1}")
            .filter(Filter::ScopeAuthz, "{\"s\": 1}")
            .filter(Filter::ScopeAuthz, "{\"s\": 2}")
            .filter(Filter::Transform, "{}");
        let filters = rendered(&chain, Form::Suite);
        let sections: Vec<serde_json::Value> = filters.iter().map(|(_, c)| sections(c)).collect();
        assert_eq!(
            sections,
            [
                serde_json::json!({"quota": {"q": 1}}),
                serde_json::json!({"api_key_auth": {"a": 1}, "scope_authz": {"s": 1}}),
                serde_json::json!({"scope_authz": {"s": 2}, "transform": {}}),
            ]
        );
        assert!(filters.iter().all(|(name, _)| name == "apim.suite"));
    }

    #[test]
    fn suite_form_holds_headers_when_its_run_has_the_guard_and_names_the_chain_vm() {
        let chain = Chain::new()
            .filter(Filter::ApiKeyAuth, "{}")
            .filter(Filter::GraphqlGuard, "{}")
            .filter(Filter::ApiKeyAuth, "{}")
            .vm("keys");
        let filters = rendered(&chain, Form::Suite);
        assert_eq!(filters.len(), 2);
        assert_eq!(filters[0].1["allow_on_headers_stop_iteration"], true);
        assert!(filters[1]
            .1
            .get("allow_on_headers_stop_iteration")
            .is_none());
        for (_, config) in &filters {
            assert_eq!(config["vm_config"]["vm_id"], "apim_suite_keys");
        }
        let one = Chain::new().filter(Filter::GraphqlGuard, "{}");
        assert_eq!(one.wasm_filter(Form::Suite).name(), "apim.suite");
    }

    #[test]
    fn refusal_prefix_names_the_filter_or_the_section() {
        assert_eq!(
            Form::Modules.refusal_prefix(Filter::ApiKeyAuth),
            "api-key-auth: invalid configuration: "
        );
        assert_eq!(
            Form::Suite.refusal_prefix(Filter::ApiKeyAuth),
            "suite: invalid configuration: api_key_auth."
        );
        assert_eq!(Form::Modules.plugin_name(Filter::Quota), "quota");
        assert_eq!(Form::Suite.plugin_name(Filter::Quota), "apim_suite");
        assert_eq!(
            Form::Native.refusal_prefix(Filter::Quota),
            "quota: invalid configuration: "
        );
        assert_eq!(
            Form::NativeSuite.refusal_prefix(Filter::Quota),
            "suite: invalid configuration: quota."
        );
        assert_eq!(
            Form::Suite.load_failure(Filter::Quota),
            "Unable to create Wasm plugin apim_suite"
        );
        assert_eq!(
            Form::Native.load_failure(Filter::Quota),
            "Failed to initialize dynamic module"
        );
    }

    #[test]
    fn native_forms_load_the_dynamic_modules_with_the_same_json() {
        let chain = Chain::new()
            .filter(Filter::ApiKeyAuth, "{\"a\": 1}")
            .filter(Filter::Quota, "{\"q\": 2}")
            .vm("keys");
        let filters: Vec<Value> = chain
            .http_filters(Form::Native)
            .iter()
            .map(|f| parse(f)[0].clone())
            .collect();
        let typed = &filters[0]["typed_config"];
        assert_eq!(
            typed["@type"],
            "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter"
        );
        assert_eq!(
            typed["dynamic_module_config"]["name"],
            "{{NATIVE:apim_api_key_auth}}"
        );
        assert_eq!(
            typed["dynamic_module_config"]["metrics_namespace"],
            "wasmcustom"
        );
        // The chain's VM id names the filter: its shared data is its own.
        assert_eq!(typed["filter_name"], "api_key_auth_keys");
        assert_eq!(typed["filter_config"]["value"], "{\"a\": 1}");
        assert_eq!(filters[1]["name"], "apim.quota");
        let suite = parse(&chain.http_filters(Form::NativeSuite)[0])[0].clone();
        let typed = &suite["typed_config"];
        assert_eq!(
            typed["dynamic_module_config"]["name"],
            "{{NATIVE:apim_suite}}"
        );
        assert_eq!(typed["filter_name"], "apim_suite_keys");
        assert_eq!(
            typed["filter_config"]["value"],
            "{\"api_key_auth\": {\"a\": 1}, \"quota\": {\"q\": 2}}"
        );
    }

    #[test]
    fn for_each_form_runs_every_form_once() {
        let mut seen = Vec::new();
        for_each_form(|form| seen.push(form));
        assert_eq!(seen, FORMS);
    }
}
