//! Configuration: the JSON a user writes (raw serde types) and its validated form.
//!
//! Phase one (`kit::config_error::parse_json`) refuses unknown fields and wrong types; phase two
//! ([`Config::from_raw`]) checks meaning (bounds on every number, plan references, names usable
//! in `RateLimit-Policy`) and precompiles what the request path needs: the plans' windows, the
//! route rules and the list of host reads a request can need.

use crate::window::Window;
use kit::config_error::{check_header_name, parse_json, ConfigError, Field};
use kit::matcher::{RawMatch, RouteMatcher, RuleSet};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Bounds that keep a config (and the shared-data slots) reasonable.
pub const MAX_PLANS: usize = 1000;
pub const MAX_LIMITS_PER_PLAN: usize = 8;
pub const MAX_KEY_PARTS: usize = 4;
pub const MAX_NAME_LENGTH: usize = 64;
pub const MAX_REQUESTS: u64 = 1_000_000_000_000;
/// 366 days: the longest fixed window in seconds (calendar months have their own unit).
pub const MAX_WINDOW_SECONDS: u64 = 366 * 86_400;
pub const MAX_COST_LIMIT: u64 = 1_000_000_000;
pub const DEFAULT_MAX_COST: u64 = 1_000_000;
pub const DEFAULT_TIMEOUT_MS: u64 = 100;
pub const MAX_TIMEOUT_MS: u64 = 10_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Plan name → its limits.
    pub plans: BTreeMap<String, RawPlan>,
    /// The plan of callers whose identity names none (or who have no identity).
    #[serde(default)]
    pub default_plan: Option<String>,
    /// What a caller gets when no plan applies (identity's plan not configured, or no plan
    /// and no `default_plan`): `deny` (default), `unlimited`, or a plan's name.
    #[serde(default)]
    pub unknown_plan: Option<String>,
    /// Identity ids that stand for no one in particular (api-key-auth's `anonymous`
    /// consumer): their `consumer` key part counts as missing (see `missing_key`).
    #[serde(default)]
    pub anonymous_consumers: Vec<String>,
    /// How CORS preflights are counted.
    #[serde(default)]
    pub cors_preflight: Preflight,
    /// A slot with no room for a new counter (evicting a live one is never done).
    #[serde(default)]
    pub when_store_full: StoreFallback,
    /// Shared data failed, or compare-and-swap lost too many times in a row.
    #[serde(default)]
    pub when_store_fails: StoreFallback,
    /// The slot-hash key, 32 hex digits; default a random key per Envoy process. Meant for
    /// tests that must know where counters land; a key an attacker knows lets them aim keys
    /// at one slot (they can then fill it: `when_store_full`), never reset a count.
    #[serde(default)]
    pub slot_key: Option<String>,
    /// What is counted together.
    #[serde(default = "default_key")]
    pub key: Vec<RawKeyPart>,
    #[serde(default)]
    pub missing_key: MissingKey,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    #[serde(default = "one")]
    pub default_cost: u64,
    /// Charge the `apim_cost` filter state (published by graphql-guard) when present.
    #[serde(default)]
    pub cost_from_filter_state: bool,
    #[serde(default = "default_max_cost")]
    pub max_cost: u64,
    /// Count and report, never reject.
    #[serde(default)]
    pub shadow: bool,
    #[serde(default)]
    pub headers: RawHeaders,
    /// Publish the admitting limit and what is left of it (`apim_quota` filter state) for the
    /// access log: one more host call per admitted request, so off by default.
    #[serde(default)]
    pub publish_usage: bool,
    /// The global tier: count in a Rate Limit Service (RLS v3) instead of shared data.
    #[serde(default)]
    pub global: Option<RawGlobal>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGlobal {
    /// The Envoy cluster of the Rate Limit Service (HTTP/2).
    pub cluster: String,
    #[serde(default = "default_domain")]
    pub domain: String,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_domain() -> String {
    "apim".to_string()
}
fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// What a plan does when the Rate Limit Service does not answer in time or fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Allow the request (and count a global error).
    #[default]
    Open,
    /// Refuse it with 503 `quota_unavailable`.
    Closed,
}

/// The validated global tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    pub cluster: String,
    pub domain: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlan {
    pub limits: Vec<RawLimit>,
    /// Global tier only: when the Rate Limit Service fails.
    #[serde(default)]
    pub failure_mode: FailureMode,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    pub requests: u64,
    pub per: RawPer,
    /// Policy name in `RateLimit-Policy`; default `<plan>-<per>`.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawPer {
    Seconds(u64),
    Unit(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawKeyPart {
    /// The consumer id of the `apim_consumer` identity.
    Consumer,
    /// The client address (Envoy's `source.address`, port removed).
    ClientAddress,
    /// Envoy's route name.
    Route,
    /// A request header's value.
    Header(String),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingKey {
    /// The part reads as the caller's client address (an IPv6 address as its /64): each
    /// address has its own counter, so one anonymous flood cannot use up everyone's quota.
    #[default]
    ClientAddress,
    /// Every caller missing a part shares one counter (the part reads `-`).
    Shared,
    /// Not limited at all.
    Allow,
    /// Refused with 403 `quota_key_missing`.
    Deny,
}

/// CORS preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preflight {
    /// Counted under the plan the request resolves to, in counters of their own per client
    /// address: preflights never use up (or are starved by) real requests' quota.
    #[default]
    Separate,
    /// Not counted (counter `passed`).
    Skip,
    /// Counted like any other request.
    Same,
}

/// What a store problem does to the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreFallback {
    /// 503 with a reason and `Retry-After`.
    #[default]
    Deny,
    /// Let it through uncharged (still counted under its reason).
    Admit,
}

/// What a caller without an applicable plan gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownPlan {
    /// 403 `quota_plan_unknown`.
    Deny,
    /// Not limited (counter `passed`).
    Unlimited,
    /// This plan (index into [`Config::plans`]).
    Plan(usize),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(rename = "match", default)]
    pub matcher: RawMatch,
    /// Not limited on these requests.
    #[serde(default)]
    pub skip: bool,
    /// This plan applies whatever the caller's plan.
    #[serde(default)]
    pub plan: Option<String>,
    /// The weight of one request on this route.
    #[serde(default)]
    pub cost: Option<u64>,
    /// With `cost_from_filter_state`: a request with a body on this rule's routes waits for
    /// the end of its body, where graphql-guard publishes `apim_cost`, before it is counted.
    /// Requests of other rules are counted at their headers (with a cost published by then,
    /// else the rule's or the default cost).
    #[serde(default)]
    pub await_cost: bool,
    /// On a rule with a `grpc` match: each request message of the call's stream costs this
    /// much more, charged as the message's gRPC frame starts in the body; when the quota runs
    /// out the stream is ended with RESOURCE_EXHAUSTED (for client-streaming and bidi calls).
    #[serde(default)]
    pub message_cost: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaders {
    /// Send `RateLimit-Policy` / `RateLimit` on allowed responses too.
    #[serde(default)]
    pub on_allowed: bool,
    /// Also send `X-RateLimit-Limit/Remaining/Reset`.
    #[serde(default)]
    pub legacy: bool,
}

fn default_key() -> Vec<RawKeyPart> {
    vec![RawKeyPart::Consumer]
}
fn one() -> u64 {
    1
}
fn default_max_cost() -> u64 {
    DEFAULT_MAX_COST
}

/// One limit of a plan, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub name: String,
    /// The window's label (`minute`, `90s`): the limit's id in storage, so a count survives a
    /// config update that keeps the window.
    pub id: String,
    pub requests: u64,
    pub window: Window,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub name: String,
    pub limits: Vec<Limit>,
    /// `RateLimit-Policy` value, built once.
    pub policy_header: String,
    pub failure_mode: FailureMode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    Consumer,
    ClientAddress,
    Route,
    Header(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub skip: bool,
    /// Wait for graphql-guard's `apim_cost` at the end of the body.
    pub await_cost: bool,
    /// Index into [`Config::plans`].
    pub plan: Option<usize>,
    pub cost: Option<u64>,
    /// The cost of each request message of a gRPC stream (see [`RawRule::message_cost`]).
    pub message_cost: Option<u64>,
}

/// Plan names `unknown_plan` reads as keywords, refused as plan names.
pub const RESERVED_PLAN_NAMES: [&str; 2] = ["deny", "unlimited"];

/// Most `anonymous_consumers`.
pub const MAX_ANONYMOUS_CONSUMERS: usize = 64;

#[derive(Debug, Clone)]
pub struct Config {
    pub plans: Vec<Plan>,
    pub default_plan: Option<usize>,
    pub unknown_plan: UnknownPlan,
    pub anonymous_consumers: Vec<String>,
    pub cors_preflight: Preflight,
    pub when_store_full: StoreFallback,
    pub when_store_fails: StoreFallback,
    pub slot_key: Option<crate::store::HashKey>,
    /// What `apim validate` prints: configured choices that loosen a default.
    pub warnings: Vec<String>,
    pub key: Vec<KeyPart>,
    pub missing_key: MissingKey,
    pub rules: RuleSet<Rule>,
    pub default_cost: u64,
    pub cost_from_filter_state: bool,
    pub max_cost: u64,
    pub shadow: bool,
    pub headers_on_allowed: bool,
    pub legacy_headers: bool,
    pub publish_usage: bool,
    /// Request headers every request needs (rule conditions and header key parts). What tells
    /// a CORS preflight is not among them: the handler reads it only for a request that can be
    /// one (see `handler::gather`).
    pub fetch: Vec<String>,
    /// Whether the route name is read (rules or a `route` key part).
    pub needs_route_name: bool,
    pub global: Option<Global>,
    /// A plan at least as strict as every plan, if one is: what a CORS preflight with no
    /// other plan is counted under.
    pub strictest_plan: Option<usize>,
}

impl Config {
    /// Both phases, from the bytes Envoy hands to `on_configure`.
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::from_raw(parse_json::<RawConfig>(bytes)?)
    }

    pub fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let root = Field::root();
        let plans = build_plans(&raw.plans, &root.key("plans"))?;
        let global = raw
            .global
            .as_ref()
            .map(|g| check_global(g, &plans, &root))
            .transpose()?;
        let find = |name: &str, field: &Field| {
            plans
                .iter()
                .position(|p| p.name == name)
                .ok_or_else(|| field.error(format!("unknown plan \"{name}\"")))
        };
        let default_plan = raw
            .default_plan
            .as_deref()
            .map(|p| find(p, &root.key("default_plan")))
            .transpose()?;
        let mut warnings = Vec::new();
        let unknown_plan = match raw.unknown_plan.as_deref() {
            None | Some("deny") => UnknownPlan::Deny,
            Some("unlimited") => {
                warnings.push(
                    "unknown_plan: \"unlimited\": callers whose plan is not configured (or who \
                     have none and no default_plan applies) are not limited at all"
                        .to_string(),
                );
                UnknownPlan::Unlimited
            }
            Some(p) => UnknownPlan::Plan(find(p, &root.key("unknown_plan"))?),
        };
        if raw.anonymous_consumers.len() > MAX_ANONYMOUS_CONSUMERS {
            return Err(root
                .key("anonymous_consumers")
                .error(format!("at most {MAX_ANONYMOUS_CONSUMERS} consumers")));
        }
        for (i, id) in raw.anonymous_consumers.iter().enumerate() {
            if id.is_empty() || id.len() > 256 {
                return Err(root
                    .key("anonymous_consumers")
                    .index(i)
                    .error("must be 1-256 characters"));
            }
        }
        let slot_key = raw
            .slot_key
            .as_deref()
            .map(|k| parse_slot_key(k, &root.key("slot_key")))
            .transpose()?;
        if slot_key.is_some() {
            warnings.push(
                "slot_key is set: whoever knows it can aim counting keys at one slot and fill \
                 it (never reset a count); leave it unset outside tests"
                    .to_string(),
            );
        }
        for (field, v) in [
            ("when_store_full", raw.when_store_full),
            ("when_store_fails", raw.when_store_fails),
        ] {
            if v == StoreFallback::Admit {
                warnings.push(format!(
                    "{field}: \"admit\": requests the store cannot count are let through"
                ));
            }
        }
        if raw.missing_key == MissingKey::Allow {
            warnings.push(
                "missing_key: \"allow\": requests missing a key part are not limited".to_string(),
            );
        }
        if raw.shadow {
            warnings.push("shadow: true: nothing is ever refused, only counted".to_string());
        }
        if raw.cors_preflight == Preflight::Skip {
            warnings.push(
                "cors_preflight: \"skip\": OPTIONS requests with Origin and \
                 Access-Control-Request-Method are not limited"
                    .to_string(),
            );
        }
        if raw.key.is_empty() || raw.key.len() > MAX_KEY_PARTS {
            return Err(root
                .key("key")
                .error(format!("must have 1 to {MAX_KEY_PARTS} parts")));
        }
        let mut key = Vec::with_capacity(raw.key.len());
        for (i, part) in raw.key.iter().enumerate() {
            let part = match part {
                RawKeyPart::Consumer => KeyPart::Consumer,
                RawKeyPart::ClientAddress => KeyPart::ClientAddress,
                RawKeyPart::Route => KeyPart::Route,
                RawKeyPart::Header(h) => KeyPart::Header(check_header_name(
                    &root.key("key").index(i).key("header"),
                    h,
                )?),
            };
            if key.contains(&part) {
                return Err(root.key("key").index(i).error("repeats an earlier part"));
            }
            key.push(part);
        }
        if raw.max_cost == 0 || raw.max_cost > MAX_COST_LIMIT {
            return Err(root
                .key("max_cost")
                .error(format!("must be between 1 and {MAX_COST_LIMIT}")));
        }
        if raw.default_cost > raw.max_cost {
            return Err(root
                .key("default_cost")
                .error(format!("must be at most max_cost ({})", raw.max_cost)));
        }
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, r) in raw.rules.iter().enumerate() {
            let field = root.key("rules").index(i);
            let matcher = RouteMatcher::compile(&r.matcher, &field.key("match"))?;
            let plan = r
                .plan
                .as_deref()
                .map(|p| find(p, &field.key("plan")))
                .transpose()?;
            if let Some(c) = r.cost {
                if c > raw.max_cost {
                    return Err(field
                        .key("cost")
                        .error(format!("must be at most max_cost ({})", raw.max_cost)));
                }
            }
            if r.skip && (plan.is_some() || r.cost.is_some() || r.await_cost) {
                return Err(field.error("a skip rule takes no plan, cost or await_cost"));
            }
            if let Some(c) = r.message_cost {
                let f = field.key("message_cost");
                if c == 0 || c > raw.max_cost {
                    return Err(
                        f.error(format!("must be between 1 and max_cost ({})", raw.max_cost))
                    );
                }
                if !matcher.has_grpc() {
                    return Err(f.error("counts gRPC messages: the rule needs a match.grpc"));
                }
                if r.skip {
                    return Err(f.error("a skip rule counts nothing"));
                }
                if raw.global.is_some() || raw.cost_from_filter_state {
                    return Err(f.error(
                        "is counted in this Envoy's shared data: not with global or \
                         cost_from_filter_state",
                    ));
                }
            }
            if r.await_cost && !raw.cost_from_filter_state {
                return Err(field
                    .key("await_cost")
                    .error("needs cost_from_filter_state: true"));
            }
            rules.push((
                matcher,
                Rule {
                    skip: r.skip,
                    await_cost: r.await_cost,
                    plan,
                    cost: r.cost,
                    message_cost: r.message_cost,
                },
            ));
        }
        // Loosening rules never match an ambiguous path (kit::matcher): a skip, a cost below
        // the default, or a plan not provably at least as strict as every plan. With
        // `unknown_plan: deny`, any plan a rule sets loosens: without it the caller may have
        // no plan at all, a 403.
        let strict_plan: Vec<bool> = plans
            .iter()
            .map(|p| plans.iter().all(|q| at_least_as_strict(p, q)))
            .collect();
        let strictest_plan = strict_plan.iter().position(|s| *s);
        let default_cost = raw.default_cost;
        let deny_unknown = unknown_plan == UnknownPlan::Deny;
        let rules = RuleSet::with_loosening(rules, |r: &Rule| {
            r.skip
                || r.cost.is_some_and(|c| c < default_cost)
                || r.plan
                    .is_some_and(|p| deny_unknown || !strict_plan.get(p).copied().unwrap_or(false))
        });
        let mut fetch: Vec<String> = rules
            .needed_headers()
            .into_iter()
            .map(str::to_string)
            .collect();
        for part in &key {
            if let KeyPart::Header(h) = part {
                if !fetch.contains(h) {
                    fetch.push(h.clone());
                }
            }
        }
        let needs_route_name = rules.needs_route_name() || key.contains(&KeyPart::Route);
        Ok(Self {
            plans,
            default_plan,
            unknown_plan,
            anonymous_consumers: raw.anonymous_consumers.clone(),
            cors_preflight: raw.cors_preflight,
            when_store_full: raw.when_store_full,
            when_store_fails: raw.when_store_fails,
            slot_key,
            warnings,
            key,
            missing_key: raw.missing_key,
            rules,
            default_cost: raw.default_cost,
            cost_from_filter_state: raw.cost_from_filter_state,
            max_cost: raw.max_cost,
            shadow: raw.shadow,
            headers_on_allowed: raw.headers.on_allowed,
            legacy_headers: raw.headers.legacy,
            publish_usage: raw.publish_usage,
            fetch,
            needs_route_name,
            global,
            strictest_plan,
        })
    }

    pub fn plan_index(&self, name: &str) -> Option<usize> {
        self.plans.iter().position(|p| p.name == name)
    }
}

/// `p` never admits more than `q` in any window of `q`'s: for every limit of `q`, `p` has a
/// limit on the same window with at most as many requests. (Conservative: plans on other
/// windows are not compared, and count as possibly looser.) A plan that fails open is looser
/// than one that fails closed (the global tier lets its requests through when the Rate Limit
/// Service fails).
pub fn at_least_as_strict(p: &Plan, q: &Plan) -> bool {
    if p.failure_mode == FailureMode::Open && q.failure_mode == FailureMode::Closed {
        return false;
    }
    q.limits.iter().all(|lq| {
        p.limits
            .iter()
            .any(|lp| lp.window == lq.window && lp.requests <= lq.requests)
    })
}

fn parse_slot_key(text: &str, field: &Field) -> Result<crate::store::HashKey, ConfigError> {
    let bad = || field.error("must be 32 hex digits");
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let s = std::str::from_utf8(pair).map_err(|_| bad())?;
        *o = u8::from_str_radix(s, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Names go into storage keys and into `RateLimit-Policy` as sf-strings: keep them plain.
fn check_name(name: &str, field: &Field) -> Result<(), ConfigError> {
    if name.is_empty()
        || name.len() > MAX_NAME_LENGTH
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(field.error(format!(
            "\"{name}\" must be 1-{MAX_NAME_LENGTH} characters of A-Z a-z 0-9 - _ ."
        )));
    }
    Ok(())
}

fn build_plans(raw: &BTreeMap<String, RawPlan>, field: &Field) -> Result<Vec<Plan>, ConfigError> {
    if raw.is_empty() {
        return Err(field.error("at least one plan is required"));
    }
    if raw.len() > MAX_PLANS {
        return Err(field.error(format!("more than {MAX_PLANS} plans")));
    }
    let mut plans = Vec::with_capacity(raw.len());
    for (name, plan) in raw {
        let pf = field.key(name);
        check_name(name, &pf)?;
        if RESERVED_PLAN_NAMES.contains(&name.as_str()) {
            return Err(pf.error(format!(
                "\"{name}\" is reserved: unknown_plan reads it as a keyword"
            )));
        }
        let lf = pf.key("limits");
        if plan.limits.is_empty() || plan.limits.len() > MAX_LIMITS_PER_PLAN {
            return Err(lf.error(format!("must have 1 to {MAX_LIMITS_PER_PLAN} limits")));
        }
        let mut limits: Vec<Limit> = Vec::with_capacity(plan.limits.len());
        for (i, l) in plan.limits.iter().enumerate() {
            let f = lf.index(i);
            if l.requests == 0 || l.requests > MAX_REQUESTS {
                return Err(f
                    .key("requests")
                    .error(format!("must be between 1 and {MAX_REQUESTS}")));
            }
            let window = parse_per(&l.per, &f.key("per"))?;
            let limit_name = match &l.name {
                Some(n) => n.clone(),
                None => format!("{name}-{}", window.label()),
            };
            check_name(&limit_name, &f.key("name"))?;
            if limits.iter().any(|o| o.window == window) {
                return Err(f
                    .key("per")
                    .error("another limit of this plan has the same window"));
            }
            if limits.iter().any(|o| o.name == limit_name) {
                return Err(f
                    .key("name")
                    .error(format!("\"{limit_name}\" is used twice")));
            }
            limits.push(Limit {
                name: limit_name,
                id: window.label(),
                requests: l.requests,
                window,
            });
        }
        let policy_header = limits
            .iter()
            .map(|l| {
                format!(
                    "\"{}\";q={};w={}",
                    l.name,
                    l.requests,
                    l.window.nominal_seconds()
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        plans.push(Plan {
            name: name.clone(),
            limits,
            policy_header,
            failure_mode: plan.failure_mode,
        });
    }
    Ok(plans)
}

fn check_global(raw: &RawGlobal, plans: &[Plan], root: &Field) -> Result<Global, ConfigError> {
    let f = root.key("global");
    if raw.cluster.is_empty() || raw.cluster.len() > 256 {
        return Err(f.key("cluster").error("must be 1-256 characters"));
    }
    if raw.domain.is_empty() || raw.domain.len() > 256 {
        return Err(f.key("domain").error("must be 1-256 characters"));
    }
    if raw.timeout_ms == 0 || raw.timeout_ms > MAX_TIMEOUT_MS {
        return Err(f
            .key("timeout_ms")
            .error(format!("must be between 1 and {MAX_TIMEOUT_MS}")));
    }
    for p in plans {
        for (i, l) in p.limits.iter().enumerate() {
            let lf = root.key("plans").key(&p.name).key("limits").index(i);
            if crate::rls::Unit::from_window(l.window).is_none() {
                return Err(lf
                    .key("per")
                    .error("the global tier counts per second, minute, hour, day or month only"));
            }
            if u32::try_from(l.requests).is_err() {
                return Err(lf
                    .key("requests")
                    .error(format!("the global tier takes at most {}", u32::MAX)));
            }
        }
    }
    Ok(Global {
        cluster: raw.cluster.clone(),
        domain: raw.domain.clone(),
        timeout_ms: raw.timeout_ms,
    })
}

fn parse_per(per: &RawPer, field: &Field) -> Result<Window, ConfigError> {
    match per {
        RawPer::Seconds(s) => {
            if *s == 0 || *s > MAX_WINDOW_SECONDS {
                Err(field.error(format!(
                    "must be between 1 and {MAX_WINDOW_SECONDS} seconds"
                )))
            } else {
                Ok(Window::Seconds(*s))
            }
        }
        RawPer::Unit(u) => match u.as_str() {
            "second" => Ok(Window::Seconds(1)),
            "minute" => Ok(Window::Seconds(60)),
            "hour" => Ok(Window::Seconds(3600)),
            "day" => Ok(Window::Seconds(86_400)),
            "month" => Ok(Window::Month),
            other => Err(field.error(format!(
                "\"{other}\" is not one of second, minute, hour, day, month or a number of seconds"
            ))),
        },
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
