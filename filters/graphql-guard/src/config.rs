//! Configuration: the JSON a user writes (raw serde types) and its validated form.
//!
//! Phase one (`kit::config_error::parse_json`) refuses unknown fields and wrong types; phase two
//! ([`Config::from_raw`]) checks meaning (limits in range, digests, plan names, weights) and
//! precompiles what the request path needs: the effective limits per plan, the cost tables, the
//! persisted-operation digest set, the route rules.

use crate::apq::ApqLimits;
use kit::config_error::{check_label, parse_json, ConfigError, Field};
use kit::digest::{parse_sha256, DigestMap};
use kit::matcher::{RawMatch, RouteMatcher, RuleSet};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// Hard caps that hold whatever the config says: the parser never sees more than this.
pub const HARD_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
pub const HARD_MAX_TOKENS: u32 = 200_000;
/// Nesting the parser accepts (selection sets, list and object values). Bounded so the
/// parser's and the analyser's recursion fit the Wasm stack with a wide margin.
pub const PARSER_RECURSION_LIMIT: usize = 200;
pub const DEFAULT_MAX_BATCH: usize = 10;
pub const HARD_MAX_BATCH: usize = 1000;
pub const DEFAULT_INTROSPECTION_DEPTH: u32 = 15;
pub const MAX_NAME_LENGTH: usize = 256;
pub const MAX_TABLE_ENTRIES: usize = 100_000;
pub const DEFAULT_LIST_ARGUMENTS: [&str; 3] = ["first", "last", "limit"];
pub const DEFAULT_MAX_LIST_SIZE: u64 = 1000;
pub const DEFAULT_METHODS: [&str; 2] = ["GET", "POST"];
pub const MAX_METHODS: usize = 16;
pub const DEFAULT_APQ_ENTRIES: u32 = 1000;
pub const HARD_MAX_APQ_ENTRIES: u32 = 100_000;
pub const DEFAULT_APQ_QUERY_BYTES: usize = 16 * 1024;
pub const HARD_MAX_APQ_QUERY_BYTES: usize = 256 * 1024;
/// What the APQ registry may hold at most: `max_entries × (32 + max_query_bytes)`.
pub const HARD_MAX_APQ_TOTAL_BYTES: u64 = 64 * 1024 * 1024;
pub const DEFAULT_WEBSOCKET_MAX_MESSAGE_BYTES: usize = 64 * 1024;
pub const HARD_MAX_WEBSOCKET_MESSAGE_BYTES: usize = 1024 * 1024;

/// The filter-state key the operation's cost is published under (decimal ASCII).
pub const COST_PROPERTY: &str = kit::context::COST;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Which requests are GraphQL: the first matching rule decides; none → every request.
    #[serde(default)]
    pub rules: Vec<RawRule>,
    #[serde(default)]
    pub limits: RawLimits,
    /// Per consumer plan (`apim_consumer.plan`): fields given here replace the default's.
    #[serde(default)]
    pub plans: BTreeMap<String, RawLimits>,
    #[serde(default)]
    pub cost: Option<RawCost>,
    #[serde(default)]
    pub introspection: RawIntrospection,
    /// Whether `__typename` counts towards depth, height, root fields and cost.
    #[serde(default)]
    pub count_typename: bool,
    #[serde(default)]
    pub persisted: Option<RawPersisted>,
    /// Largest JSON array batch; 0 refuses batches.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Hard cap on a buffered request body, whatever the plan's `max_bytes`.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Count and log violations, never reject.
    #[serde(default)]
    pub warn_only: bool,
    /// Leave the measured value and the limit out of error messages.
    #[serde(default)]
    pub hide_values: bool,
    /// Publish the operation's cost as `apim_cost` filter state.
    #[serde(default = "yes")]
    pub publish_cost: bool,
    /// Publish the operations' names as `apim_operation` filter state, for the access log (one
    /// more host call per checked request, so off by default).
    #[serde(default)]
    pub publish_operation: bool,
    /// Methods a guarded route accepts (compared case-insensitively); any other is refused with
    /// 405, except an `OPTIONS` that carries nothing (no body, no GraphQL parameter).
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// Hold the request headers (Pause) until the body is judged, so no later filter (quota)
    /// acts on a request the guard then refuses. Needs Envoy's
    /// `allow_on_headers_stop_iteration: true` in the Wasm filter config.
    #[serde(default = "yes")]
    pub hold_headers: bool,
    /// The automatic-persisted-query registry.
    #[serde(default)]
    pub apq: RawApq,
    /// WebSocket upgrades on a guarded route: refused, or read frame by frame.
    #[serde(default)]
    pub websocket: WebsocketMode,
    /// Largest WebSocket message (fragments together, or one frame) an inspected stream may
    /// buffer; beyond it the stream is reset.
    #[serde(default = "default_websocket_max_message_bytes")]
    pub websocket_max_message_bytes: usize,
    /// Persisted-document id names (`id`, `documentId`, `doc_id`, `namedQuery`) let through on a
    /// guarded route, in the URL and as body keys; any other is refused (the guard cannot check
    /// a stored document).
    #[serde(default)]
    pub document_id_parameters: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebsocketMode {
    /// Every upgrade on a guarded route: 403.
    #[default]
    Refuse,
    /// A WebSocket offering only `graphql-transport-ws` / `graphql-ws` is let through and its
    /// operations are checked; the stream is closed on a violation.
    Inspect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApq {
    /// Slots in the registry; 0 registers nothing (every hash alone is not found).
    #[serde(default = "default_apq_entries")]
    pub max_entries: u32,
    /// Longest document registered, in bytes.
    #[serde(default = "default_apq_query_bytes")]
    pub max_query_bytes: usize,
}

impl Default for RawApq {
    fn default() -> Self {
        Self {
            max_entries: DEFAULT_APQ_ENTRIES,
            max_query_bytes: DEFAULT_APQ_QUERY_BYTES,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(rename = "match", default)]
    pub matcher: RawMatch,
    /// Not a GraphQL route: pass untouched.
    #[serde(default)]
    pub skip: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    #[serde(default)]
    pub max_depth: Option<u32>,
    #[serde(default)]
    pub max_aliases: Option<u32>,
    #[serde(default)]
    pub max_root_fields: Option<u32>,
    #[serde(default)]
    pub max_height: Option<u32>,
    #[serde(default)]
    pub max_directives: Option<u32>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub max_bytes: Option<usize>,
    #[serde(default)]
    pub max_cost: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCost {
    /// Weight of a field with a selection set (an object) that no table names.
    #[serde(default = "one")]
    pub default_weight: u64,
    /// Weight of a leaf field that no table names.
    #[serde(default)]
    pub scalar_weight: u64,
    /// `"Type.field"` or `"field"` (any parent) → weight.
    #[serde(default)]
    pub fields: BTreeMap<String, u64>,
    /// `"Type"` → weight of every field known to return it (through `returns`).
    #[serde(default)]
    pub types: BTreeMap<String, u64>,
    /// `"Type.field"` → the type it returns: lets per-type weights and `Type.field` keys
    /// apply below the root without a schema.
    #[serde(default)]
    pub returns: BTreeMap<String, String>,
    /// Arguments whose integer value multiplies the cost of a field's subtree.
    #[serde(default = "default_list_arguments")]
    pub list_arguments: Vec<String>,
    /// A multiplier larger than this counts as this.
    #[serde(default = "default_max_list_size")]
    pub max_list_size: u64,
}

impl RawCost {
    /// The model a bare `max_cost` uses: objects 1, leaves 0, `first`/`last`/`limit` multiply.
    pub fn defaults() -> Self {
        Self {
            default_weight: 1,
            scalar_weight: 0,
            fields: BTreeMap::new(),
            types: BTreeMap::new(),
            returns: BTreeMap::new(),
            list_arguments: default_list_arguments(),
            max_list_size: DEFAULT_MAX_LIST_SIZE,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntrospectionMode {
    /// Allowed, bounded by `introspection.max_depth` and exempt from `max_depth`.
    #[default]
    Allow,
    /// Any `__schema` / `__type` field is refused.
    Block,
    /// Counted like any other field: no exemption.
    Count,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntrospection {
    #[serde(default)]
    pub mode: IntrospectionMode,
    #[serde(default = "default_introspection_depth")]
    pub max_depth: u32,
}

impl Default for RawIntrospection {
    fn default() -> Self {
        Self {
            mode: IntrospectionMode::Allow,
            max_depth: DEFAULT_INTROSPECTION_DEPTH,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPersisted {
    /// Accept only operations whose SHA-256 is listed.
    #[serde(default)]
    pub only: bool,
    /// SHA-256 of the exact query text (64 hex digits or base64). Listed operations are
    /// trusted: the limits are not applied to them.
    #[serde(default)]
    pub sha256: Vec<String>,
}

fn default_max_batch() -> usize {
    DEFAULT_MAX_BATCH
}
fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}
fn default_introspection_depth() -> u32 {
    DEFAULT_INTROSPECTION_DEPTH
}
fn default_list_arguments() -> Vec<String> {
    DEFAULT_LIST_ARGUMENTS
        .iter()
        .map(|s| (*s).to_string())
        .collect()
}
fn default_max_list_size() -> u64 {
    DEFAULT_MAX_LIST_SIZE
}
fn default_methods() -> Vec<String> {
    DEFAULT_METHODS.iter().map(|s| (*s).to_string()).collect()
}
fn default_apq_entries() -> u32 {
    DEFAULT_APQ_ENTRIES
}
fn default_apq_query_bytes() -> usize {
    DEFAULT_APQ_QUERY_BYTES
}
fn default_websocket_max_message_bytes() -> usize {
    DEFAULT_WEBSOCKET_MAX_MESSAGE_BYTES
}
fn one() -> u64 {
    1
}
fn yes() -> bool {
    true
}

/// Effective limits for one plan; `None` is "no limit".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_depth: Option<u32>,
    pub max_aliases: Option<u32>,
    pub max_root_fields: Option<u32>,
    pub max_height: Option<u32>,
    pub max_directives: Option<u32>,
    pub max_tokens: Option<u32>,
    pub max_bytes: Option<usize>,
    pub max_cost: Option<u64>,
}

impl Limits {
    fn from_raw(raw: &RawLimits) -> Self {
        Self {
            max_depth: raw.max_depth,
            max_aliases: raw.max_aliases,
            max_root_fields: raw.max_root_fields,
            max_height: raw.max_height,
            max_directives: raw.max_directives,
            max_tokens: raw.max_tokens,
            max_bytes: raw.max_bytes,
            max_cost: raw.max_cost,
        }
    }

    /// `over`'s fields where given, `self`'s elsewhere.
    fn overlay(self, over: &RawLimits) -> Self {
        Self {
            max_depth: over.max_depth.or(self.max_depth),
            max_aliases: over.max_aliases.or(self.max_aliases),
            max_root_fields: over.max_root_fields.or(self.max_root_fields),
            max_height: over.max_height.or(self.max_height),
            max_directives: over.max_directives.or(self.max_directives),
            max_tokens: over.max_tokens.or(self.max_tokens),
            max_bytes: over.max_bytes.or(self.max_bytes),
            max_cost: over.max_cost.or(self.max_cost),
        }
    }
}

/// The precompiled static-cost model.
#[derive(Debug, Clone, Default)]
pub struct CostModel {
    pub default_weight: u64,
    pub scalar_weight: u64,
    /// `Type.field` → weight.
    pub typed_fields: HashMap<String, u64>,
    /// `field` → weight, any parent.
    pub fields: HashMap<String, u64>,
    pub types: HashMap<String, u64>,
    pub returns: HashMap<String, String>,
    pub list_arguments: Vec<String>,
    pub max_list_size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Introspection {
    pub mode: IntrospectionMode,
    pub max_depth: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Persisted {
    pub only: bool,
    pub digests: DigestMap<()>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub rules: RuleSet<bool>,
    pub limits: Limits,
    pub plans: HashMap<String, Limits>,
    pub cost: Option<CostModel>,
    pub introspection: Introspection,
    pub count_typename: bool,
    pub persisted: Option<Persisted>,
    pub max_batch: usize,
    pub max_body_bytes: usize,
    pub warn_only: bool,
    pub hide_values: bool,
    pub publish_cost: bool,
    pub publish_operation: bool,
    /// Accepted methods, upper case.
    pub methods: Vec<String>,
    /// The `Allow` header of a 405: the methods, comma-separated.
    pub allow: String,
    pub hold_headers: bool,
    pub apq: ApqLimits,
    pub websocket: WebsocketMode,
    pub websocket_max_message_bytes: usize,
    /// Persisted-document id names let through (as configured).
    pub document_id_parameters: Vec<String>,
    /// The request headers a request needs fetched (rule conditions, method, path, media types).
    pub fetch: Vec<String>,
}

impl Config {
    /// What `apim validate` prints: configured choices that loosen a default or depend on
    /// something outside the filter.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.warn_only {
            w.push("warn_only: violations are counted and logged, never refused".to_string());
        }
        if !self.hold_headers {
            w.push(
                "hold_headers: false: the headers go on before the body is judged, so a quota \
                 after the guard that counts at the headers also counts refused operations"
                    .to_string(),
            );
        }
        if !self.document_id_parameters.is_empty() {
            w.push(format!(
                "document_id_parameters: {:?} pass unchecked (the guard cannot see the document \
                 an id names)",
                self.document_id_parameters
            ));
        }
        if self
            .persisted
            .as_ref()
            .is_some_and(|p| !p.digests.is_empty())
        {
            w.push(
                "persisted.sha256: listed documents are trusted and run without limits".to_string(),
            );
        }
        w
    }

    /// Both phases, from the bytes Envoy hands to `on_configure`.
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::from_raw(parse_json::<RawConfig>(bytes)?)
    }

    pub fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let root = Field::root();
        check_limits(&raw.limits, &root.key("limits"))?;
        let limits = Limits::from_raw(&raw.limits);
        let mut plans = HashMap::with_capacity(raw.plans.len());
        for (name, over) in &raw.plans {
            let f = root.key("plans").key(name);
            check_label(name, &f)?;
            check_limits(over, &f)?;
            plans.insert(name.clone(), limits.overlay(over));
        }
        if raw.max_batch > HARD_MAX_BATCH {
            return Err(root
                .key("max_batch")
                .error(format!("must be at most {HARD_MAX_BATCH}")));
        }
        if raw.max_body_bytes == 0 || raw.max_body_bytes > HARD_MAX_BODY_BYTES {
            return Err(root
                .key("max_body_bytes")
                .error(format!("must be between 1 and {HARD_MAX_BODY_BYTES}")));
        }
        let intro = &raw.introspection;
        if intro.max_depth == 0 {
            return Err(root
                .key("introspection.max_depth")
                .error("must be at least 1"));
        }
        // A max_cost without a cost block uses the default model.
        let wants_cost = limits.max_cost.is_some() || plans.values().any(|l| l.max_cost.is_some());
        let cost = match (&raw.cost, wants_cost) {
            (Some(c), _) => Some(build_cost(c, &root.key("cost"))?),
            (None, true) => Some(build_cost(&RawCost::defaults(), &root.key("cost"))?),
            (None, false) => None,
        };
        let persisted = raw
            .persisted
            .as_ref()
            .map(|p| build_persisted(p, &root.key("persisted")))
            .transpose()?;
        let rules = build_rules(&raw.rules, &root.key("rules"))?;
        let methods = build_methods(&raw.methods, &root.key("methods"))?;
        let apq = build_apq(&raw.apq, &root.key("apq"))?;
        if raw.websocket_max_message_bytes == 0
            || raw.websocket_max_message_bytes > HARD_MAX_WEBSOCKET_MESSAGE_BYTES
        {
            return Err(root.key("websocket_max_message_bytes").error(format!(
                "must be between 1 and {HARD_MAX_WEBSOCKET_MESSAGE_BYTES}"
            )));
        }
        let document_id_parameters = build_document_ids(
            &raw.document_id_parameters,
            &root.key("document_id_parameters"),
        )?;
        let mut fetch: Vec<String> = [
            ":method",
            ":path",
            "content-type",
            "accept",
            "upgrade",
            ":protocol",
            "sec-websocket-protocol",
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        for n in rules.needed_headers() {
            if !fetch.iter().any(|x| x == n) {
                fetch.push(n.to_string());
            }
        }
        Ok(Self {
            rules,
            limits,
            plans,
            cost,
            introspection: Introspection {
                mode: intro.mode,
                max_depth: intro.max_depth,
            },
            count_typename: raw.count_typename,
            persisted,
            max_batch: raw.max_batch,
            max_body_bytes: raw.max_body_bytes,
            warn_only: raw.warn_only,
            hide_values: raw.hide_values,
            publish_cost: raw.publish_cost,
            publish_operation: raw.publish_operation,
            allow: methods.join(", "),
            methods,
            hold_headers: raw.hold_headers,
            apq,
            websocket: raw.websocket,
            websocket_max_message_bytes: raw.websocket_max_message_bytes,
            document_id_parameters,
            fetch,
        })
    }

    /// The limits for a consumer plan (the default when the plan has none of its own).
    pub fn limits_for(&self, plan: Option<&str>) -> &Limits {
        plan.and_then(|p| self.plans.get(p)).unwrap_or(&self.limits)
    }

    /// Whether per-plan limits exist, i.e. whether the identity must be read at all.
    pub fn needs_identity(&self) -> bool {
        !self.plans.is_empty()
    }
}

fn check_limits(raw: &RawLimits, field: &Field) -> Result<(), ConfigError> {
    let positive: [(&str, Option<u64>); 5] = [
        ("max_depth", raw.max_depth.map(u64::from)),
        ("max_root_fields", raw.max_root_fields.map(u64::from)),
        ("max_height", raw.max_height.map(u64::from)),
        ("max_tokens", raw.max_tokens.map(u64::from)),
        (
            "max_bytes",
            raw.max_bytes.and_then(|b| u64::try_from(b).ok()),
        ),
    ];
    for (name, value) in positive {
        if value == Some(0) {
            return Err(field.key(name).error("must be at least 1"));
        }
    }
    if raw.max_tokens.is_some_and(|t| t > HARD_MAX_TOKENS) {
        return Err(field
            .key("max_tokens")
            .error(format!("must be at most {HARD_MAX_TOKENS}")));
    }
    if raw.max_bytes.is_some_and(|b| b > HARD_MAX_BODY_BYTES) {
        return Err(field
            .key("max_bytes")
            .error(format!("must be at most {HARD_MAX_BODY_BYTES}")));
    }
    if raw
        .max_depth
        .is_some_and(|d| d as usize >= PARSER_RECURSION_LIMIT)
    {
        return Err(field.key("max_depth").error(format!(
            "must be below the parser's nesting limit ({PARSER_RECURSION_LIMIT})"
        )));
    }
    Ok(())
}

/// A GraphQL name: `[_A-Za-z][_0-9A-Za-z]*`.
pub fn is_graphql_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b == b'_' || b.is_ascii_alphabetic())
        && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
        && s.len() <= MAX_NAME_LENGTH
}

fn check_type_field(key: &str, field: &Field) -> Result<(), ConfigError> {
    let ok = match key.split_once('.') {
        Some((t, f)) => is_graphql_name(t) && is_graphql_name(f),
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(field.error("must be \"Type.field\""))
    }
}

fn build_cost(raw: &RawCost, field: &Field) -> Result<CostModel, ConfigError> {
    if raw.fields.len() + raw.types.len() + raw.returns.len() > MAX_TABLE_ENTRIES {
        return Err(field.error(format!("more than {MAX_TABLE_ENTRIES} entries")));
    }
    let mut typed_fields = HashMap::new();
    let mut fields = HashMap::new();
    for (key, weight) in &raw.fields {
        let f = field.key("fields").key(key);
        if key.contains('.') {
            check_type_field(key, &f)?;
            typed_fields.insert(key.clone(), *weight);
        } else {
            if !is_graphql_name(key) {
                return Err(f.error("must be \"field\" or \"Type.field\""));
            }
            fields.insert(key.clone(), *weight);
        }
    }
    for key in raw.types.keys() {
        if !is_graphql_name(key) {
            return Err(field
                .key("types")
                .key(key)
                .error("must be a GraphQL type name"));
        }
    }
    for (key, ty) in &raw.returns {
        let f = field.key("returns").key(key);
        check_type_field(key, &f)?;
        if !is_graphql_name(ty) {
            return Err(f.error(format!("\"{ty}\" is not a GraphQL type name")));
        }
    }
    if raw.list_arguments.len() > 16 {
        return Err(field.key("list_arguments").error("at most 16 names"));
    }
    for (i, a) in raw.list_arguments.iter().enumerate() {
        if !is_graphql_name(a) {
            return Err(field
                .key("list_arguments")
                .index(i)
                .error(format!("\"{a}\" is not a GraphQL name")));
        }
    }
    if raw.max_list_size == 0 {
        return Err(field.key("max_list_size").error("must be at least 1"));
    }
    Ok(CostModel {
        default_weight: raw.default_weight,
        scalar_weight: raw.scalar_weight,
        typed_fields,
        fields,
        types: raw.types.clone().into_iter().collect(),
        returns: raw.returns.clone().into_iter().collect(),
        list_arguments: raw.list_arguments.clone(),
        max_list_size: raw.max_list_size,
    })
}

fn build_persisted(raw: &RawPersisted, field: &Field) -> Result<Persisted, ConfigError> {
    if raw.sha256.len() > MAX_TABLE_ENTRIES {
        return Err(field
            .key("sha256")
            .error(format!("more than {MAX_TABLE_ENTRIES} digests")));
    }
    if raw.only && raw.sha256.is_empty() {
        return Err(field
            .key("sha256")
            .error("persisted-only mode with no digests would refuse every operation"));
    }
    let mut digests = DigestMap::default();
    for (i, d) in raw.sha256.iter().enumerate() {
        let digest = parse_sha256(d).map_err(|e| field.key("sha256").index(i).error(e))?;
        digests.insert(digest, ());
    }
    Ok(Persisted {
        only: raw.only,
        digests,
    })
}

fn build_methods(raw: &[String], field: &Field) -> Result<Vec<String>, ConfigError> {
    if raw.is_empty() || raw.len() > MAX_METHODS {
        return Err(field.error(format!("between 1 and {MAX_METHODS} methods")));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, m) in raw.iter().enumerate() {
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if m.is_empty() || m.len() > 32 || !m.bytes().all(tchar) {
            return Err(field
                .index(i)
                .error(format!("\"{}\" is not an HTTP method", m.escape_debug())));
        }
        let up = m.to_ascii_uppercase();
        if !out.contains(&up) {
            out.push(up);
        }
    }
    Ok(out)
}

fn build_apq(raw: &RawApq, field: &Field) -> Result<ApqLimits, ConfigError> {
    if raw.max_entries > HARD_MAX_APQ_ENTRIES {
        return Err(field
            .key("max_entries")
            .error(format!("must be at most {HARD_MAX_APQ_ENTRIES}")));
    }
    if raw.max_query_bytes == 0 || raw.max_query_bytes > HARD_MAX_APQ_QUERY_BYTES {
        return Err(field
            .key("max_query_bytes")
            .error(format!("must be between 1 and {HARD_MAX_APQ_QUERY_BYTES}")));
    }
    let total = u64::from(raw.max_entries).saturating_mul(
        u64::try_from(raw.max_query_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(32),
    );
    if total > HARD_MAX_APQ_TOTAL_BYTES {
        return Err(field.error(format!(
            "max_entries × (32 + max_query_bytes) is {total} bytes, more than {HARD_MAX_APQ_TOTAL_BYTES}"
        )));
    }
    Ok(ApqLimits {
        max_entries: raw.max_entries,
        max_query_bytes: raw.max_query_bytes,
    })
}

fn build_document_ids(raw: &[String], field: &Field) -> Result<Vec<String>, ConfigError> {
    use crate::transport::DOCUMENT_ID_PARAMS;
    for (i, name) in raw.iter().enumerate() {
        if !DOCUMENT_ID_PARAMS.contains(&name.as_str()) {
            return Err(field.index(i).error(format!(
                "\"{}\" is not one of: {}",
                name.escape_debug(),
                DOCUMENT_ID_PARAMS.join(", ")
            )));
        }
    }
    Ok(raw.to_vec())
}

fn build_rules(raw: &[RawRule], field: &Field) -> Result<RuleSet<bool>, ConfigError> {
    let mut rules = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let f = field.index(i);
        let matcher = RouteMatcher::compile(&r.matcher, &f.key("match"))?;
        rules.push((matcher, r.skip));
    }
    // `skip` turns the guard off: it never applies to an ambiguous path.
    Ok(RuleSet::with_loosening(rules, |skip| *skip))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
