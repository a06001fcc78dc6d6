//! Applying the decision through the host: read only what the config needs, count in shared
//! data, send the 429 or hand back the headers for the response. Generic over
//! `kit::host::Host` and [`SharedStore`], so every effect is unit-tested with mocks.

use crate::config::{Config, FailureMode, KeyPart, MissingKey, Preflight, StoreFallback};
use crate::policy::{self, Inputs, Resolution, Verdict};
use crate::store::{admit, HashKey, SharedStore};
use kit::denial::Format;
use kit::host::{Host, LogLevel};
use kit::identity::Identity;
use kit::metrics::Counters;
use kit::request::RequestHead;

/// Counter names, in the order of the index constants below.
pub const COUNTER_NAMES: [&str; 14] = [
    "apim.quota.allowed",
    "apim.quota.limited",
    "apim.quota.shadow_limited",
    "apim.quota.passed",
    "apim.quota.key_missing",
    "apim.quota.errors",
    "apim.quota.global_errors",
    "apim.quota.plan_unknown",
    "apim.quota.store_full",
    "apim.quota.contended",
    "apim.quota.path_ambiguous",
    "apim.quota.charged_late",
    "apim.quota.identity_invalid",
    // Refused (400): the path's readings meet rules with different plans or costs.
    "apim.quota.denied.path_ambiguous",
];
const ALLOWED: usize = 0;
const LIMITED: usize = 1;
const SHADOW_LIMITED: usize = 2;
const PASSED: usize = 3;
const KEY_MISSING: usize = 4;
const ERRORS: usize = 5;
const GLOBAL_ERRORS: usize = 6;
const PLAN_UNKNOWN: usize = 7;
const STORE_FULL: usize = 8;
const CONTENDED: usize = 9;
const PATH_AMBIGUOUS: usize = 10;
const CHARGED_LATE: usize = 11;
const IDENTITY_INVALID: usize = 12;
const DENIED_PATH_AMBIGUOUS: usize = 13;

/// Where the per-plan counters start among a stage's counters: plan `p` (its index in the
/// config) has `allowed` at `PER_PLAN + 2p` and `limited` at `PER_PLAN + 2p + 1`. One pair per
/// plan, never per consumer: what Prometheus stores stays bounded by the config.
pub const PER_PLAN: usize = COUNTER_NAMES.len();

/// The per-plan counter names of `config`, in the order [`PER_PLAN`] sets:
/// `apim.quota.plan.<plan>.allowed` and `apim.quota.plan.<plan>.limited`.
pub fn plan_counter_names(config: &Config) -> Vec<String> {
    config
        .plans
        .iter()
        .flat_map(|p| {
            [
                format!("apim.quota.plan.{}.allowed", p.name),
                format!("apim.quota.plan.{}.limited", p.name),
            ]
        })
        .collect()
}

/// Counts a request allowed or limited, also under its plan (`plan`: its index).
fn count_outcome(host: &dyn Host, counters: &Counters, index: usize, plan: Option<usize>) {
    counters.inc(host, index);
    let per_plan = match index {
        ALLOWED => 0,
        LIMITED => 1,
        _ => return,
    };
    if let Some(p) = plan {
        counters.inc(host, PER_PLAN + 2 * p + per_plan);
    }
}

/// The filter-state key graphql-guard publishes the operation's cost under.
pub const COST_PROPERTY: &str = kit::context::COST;

/// Whether the request goes on, and what to add to its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Continue(Vec<(String, String)>),
    /// A local reply was sent.
    Stop,
    /// Ask the Rate Limit Service (global tier), then call [`on_global_response`].
    Global(GlobalCall),
}

/// How a refusal finds its shape (gRPC or problem+json).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The request headers can still be read (their callback, or while they are held for a
    /// callout): the request's content-type decides ([`kit::denial::send`]).
    Request,
    /// They cannot (they went upstream, the body followed): reading them would trap the VM, so
    /// the refusal takes the flavour recorded earlier, or problem+json without one.
    Known(Option<kit::grpc::Flavor>),
}

/// Filter state for the access log: the admitting limit and what is left (`publish_usage`).
pub const USAGE_PROPERTY: &str = "apim_quota";

fn send(host: &dyn Host, shape: Shape, denial: &kit::denial::Denial) {
    let domain = crate::stage::SPEC.name;
    match shape {
        Shape::Request => kit::denial::send(host, domain, denial, Format::Problem),
        Shape::Known(Some(flavor)) => {
            host.send_reply(&denial.render(Format::Grpc { flavor, domain }));
        }
        Shape::Known(None) => host.send_reply(&denial.render(Format::Problem)),
    }
}

/// A `ShouldRateLimit` call to make, and what its answer is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalCall {
    pub plan: usize,
    /// The serialized `RateLimitRequest`.
    pub message: Vec<u8>,
}

/// What the decision reads from the request head, fetched in the headers callback (Envoy
/// refuses request-header reads in the body callback).
#[derive(Debug, Default)]
pub struct Gathered {
    pub head: RequestHead,
    pub route: Option<String>,
    pub identity: Option<Identity>,
    /// The identity property is present but does not decode: refused, never "no identity".
    pub identity_invalid: bool,
    pub client_address: Option<String>,
}

/// The header without which a request is not a CORS preflight
/// ([`RequestHead::is_cors_preflight`]).
const PREFLIGHT_MARKER: &str = "access-control-request-method";

/// Reads only what this config can use: host calls cost more than the logic, and a call that
/// returns a value costs most (the host calls back into the module to allocate it).
pub fn gather(host: &dyn Host, config: &Config) -> Gathered {
    let mut head = RequestHead::fetch(host, &config.fetch);
    // What tells a CORS preflight, read only when the request can be one: every preflight
    // carries `Access-Control-Request-Method`, so a request without it is not one and its
    // method is never read (a presence check returns no value: a fraction of a read's cost).
    if config.cors_preflight != Preflight::Same && host.has_request_header(PREFLIGHT_MARKER) {
        head.fetch_more(host, &[":method".to_string()]);
        if head.method() == "OPTIONS" {
            let names: Vec<String> = kit::request::PREFLIGHT_HEADERS
                .iter()
                .map(|h| (*h).to_string())
                .collect();
            head.fetch_more(host, &names);
        }
    }
    let route = if config.needs_route_name {
        host.route_name()
    } else {
        None
    };
    let found = host.identity();
    let identity_invalid = matches!(found, Some(None));
    let identity = found.flatten();
    let client_address = if needs_client_address(config, &head, route.as_deref(), identity.as_ref())
    {
        host.property(&["source", "address"])
            .and_then(|b| String::from_utf8(b).ok())
    } else {
        None
    };
    Gathered {
        head,
        route,
        identity,
        identity_invalid,
        client_address,
    }
}

/// Whether this request's key can use the client address (one host call saved for the common
/// identified caller): a `client_address` part, a preflight counted apart, or a part that is
/// missing with `missing_key: client_address`.
pub fn needs_client_address(
    config: &Config,
    head: &RequestHead,
    route: Option<&str>,
    identity: Option<&Identity>,
) -> bool {
    if config.key.contains(&KeyPart::ClientAddress)
        || (config.cors_preflight == Preflight::Separate && head.is_cors_preflight())
    {
        return true;
    }
    config.missing_key == MissingKey::ClientAddress
        && config.key.iter().any(|part| match part {
            KeyPart::Consumer => identity
                .is_none_or(|i| i.id.is_empty() || config.anonymous_consumers.contains(&i.id)),
            KeyPart::Route => route.is_none_or(str::is_empty),
            KeyPart::Header(h) => head.get(h).is_none_or(<[u8]>::is_empty),
            KeyPart::ClientAddress => true,
        })
}

/// The `apim_cost` filter state, when the config charges it.
pub fn published_cost(host: &dyn Host, config: &Config) -> Option<Vec<u8>> {
    if config.cost_from_filter_state {
        host.property(&[COST_PROPERTY])
    } else {
        None
    }
}

/// Everything at once, for requests counted in the headers callback.
pub fn on_request_headers(
    host: &dyn Host,
    store: &dyn SharedStore,
    hash_key: &HashKey,
    config: &Config,
    counters: &Counters,
) -> Action {
    let gathered = gather(host, config);
    let cost = published_cost(host, config);
    decide(
        host,
        store,
        hash_key,
        config,
        counters,
        &gathered,
        cost.as_deref(),
        Shape::Request,
    )
}

/// What the headers callback does with a request that has a body.
#[derive(Debug)]
pub enum AtHeaders {
    Decided(Action),
    /// Count at the end of the body: a cost may still be published.
    Defer(Box<Gathered>),
}

/// The headers callback of a request with a body: wait for the end of the body only when a
/// cost can still come (its rule says `await_cost`), it is not published yet and the request
/// is counted whatever its cost. Everything else is counted (or refused) now and its body is
/// never held.
pub fn at_headers_with_body(
    host: &dyn Host,
    store: &dyn SharedStore,
    hash_key: &HashKey,
    config: &Config,
    counters: &Counters,
) -> AtHeaders {
    let gathered = gather(host, config);
    let cost = published_cost(host, config);
    if config.cost_from_filter_state && cost.is_none() && awaits_cost(config, &gathered) {
        return AtHeaders::Defer(Box::new(gathered));
    }
    AtHeaders::Decided(decide(
        host,
        store,
        hash_key,
        config,
        counters,
        &gathered,
        cost.as_deref(),
        Shape::Request,
    ))
}

/// Whether this request's rule waits for a published cost and it would be counted then.
fn awaits_cost(config: &Config, g: &Gathered) -> bool {
    if g.identity_invalid {
        return false;
    }
    let head_input = kit::matcher::MatchInput {
        route_name: g.route.as_deref(),
        head: &g.head,
    };
    if !config
        .rules
        .lookup(&head_input)
        .rule
        .is_some_and(|r| r.await_cost)
    {
        return false;
    }
    let input = Inputs {
        head: &g.head,
        route: g.route.as_deref(),
        identity: g.identity.as_ref(),
        client_address: g.client_address.as_deref(),
        filter_cost: Some(b"1"),
    };
    matches!(
        policy::resolve(config, &input).resolution,
        Resolution::Count { .. }
    )
}

/// Counts the request and applies the verdict; a refusal is shaped by `shape`.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    host: &dyn Host,
    store: &dyn SharedStore,
    hash_key: &HashKey,
    config: &Config,
    counters: &Counters,
    gathered: &Gathered,
    filter_cost: Option<&[u8]>,
    shape: Shape,
) -> Action {
    if gathered.identity_invalid {
        let d = kit::denial::Denial::new(
            403,
            "quota_identity_invalid",
            "Identity unreadable",
            "The caller's identity cannot be read, so its quota cannot be counted.",
        );
        return refuse(host, config, counters, IDENTITY_INVALID, &d, shape);
    }
    let input = Inputs {
        head: &gathered.head,
        route: gathered.route.as_deref(),
        identity: gathered.identity.as_ref(),
        client_address: gathered.client_address.as_deref(),
        filter_cost,
    };
    let resolved = policy::resolve(config, &input);
    if resolved.path_ambiguous {
        counters.inc(host, PATH_AMBIGUOUS);
    }
    let (plan, key, cost) = match resolved.resolution {
        Resolution::Pass => {
            counters.inc(host, PASSED);
            return Action::Continue(Vec::new());
        }
        Resolution::MissingKey(denial) => {
            return refuse(host, config, counters, KEY_MISSING, &denial, shape)
        }
        Resolution::UnknownPlan(denial) => {
            return refuse(host, config, counters, PLAN_UNKNOWN, &denial, shape)
        }
        Resolution::PathAmbiguous(denial) => {
            return refuse(
                host,
                config,
                counters,
                DENIED_PATH_AMBIGUOUS,
                &denial,
                shape,
            )
        }
        Resolution::Count { plan, key, cost } => (plan, key, cost),
    };
    let plan_index = plan;
    let Some(plan) = config.plans.get(plan) else {
        counters.inc(host, PASSED);
        return Action::Continue(Vec::new());
    };
    if let Some(global) = &config.global {
        let descriptors = policy::descriptors(plan, &key, cost);
        let hits = u32::try_from(cost).unwrap_or(u32::MAX);
        let message = crate::rls::encode_request(&global.domain, &descriptors, hits);
        let plan = config.plan_index(&plan.name).unwrap_or_default();
        return Action::Global(GlobalCall { plan, message });
    }
    let now = host.now_unix();
    let (slot, checks) = policy::checks(plan, &key, now, hash_key);
    let outcome = admit(store, &slot, &checks, cost, now);
    apply(
        host,
        config,
        counters,
        policy::verdict(config, plan, &checks, &outcome, cost, now),
        shape,
        Some(plan_index),
    )
}

/// The rule's `message_cost` when this request is a gRPC call (a stream whose request
/// messages are each charged as they flow, [`charge_messages`]), with the gRPC flavour its
/// refusal takes.
pub fn message_cost(config: &Config, g: &Gathered) -> Option<(u64, kit::grpc::Flavor)> {
    let input = kit::matcher::MatchInput {
        route_name: g.route.as_deref(),
        head: &g.head,
    };
    let cost = config.rules.lookup(&input).rule?.message_cost?;
    let flavor = kit::grpc::reply_flavor(g.head.get("content-type"))?;
    Some((cost, flavor))
}

/// Charges `cost` for request messages of a gRPC stream already admitted at its headers. Over
/// the limit, the stream is ended with a RESOURCE_EXHAUSTED reply (rendered here in `flavor`:
/// the request headers, and so their content-type, are no longer readable) and `false` comes
/// back. Messages admitted move no counter: `allowed` counts calls.
#[allow(clippy::too_many_arguments)]
pub fn charge_messages(
    host: &dyn Host,
    store: &dyn SharedStore,
    hash_key: &HashKey,
    config: &Config,
    counters: &Counters,
    gathered: &Gathered,
    cost: u64,
    flavor: kit::grpc::Flavor,
) -> bool {
    let input = Inputs {
        head: &gathered.head,
        route: gathered.route.as_deref(),
        identity: gathered.identity.as_ref(),
        client_address: gathered.client_address.as_deref(),
        filter_cost: None,
    };
    let Resolution::Count { plan, key, .. } = policy::resolve(config, &input).resolution else {
        return true;
    };
    let plan_index = plan;
    let Some(plan) = config.plans.get(plan) else {
        return true;
    };
    let now = host.now_unix();
    let (slot, checks) = policy::checks(plan, &key, now, hash_key);
    let outcome = admit(store, &slot, &checks, cost, now);
    match policy::verdict(config, plan, &checks, &outcome, cost, now) {
        Verdict::Deny(denial) => {
            count_outcome(host, counters, LIMITED, Some(plan_index));
            send(host, Shape::Known(Some(flavor)), &denial);
            false
        }
        Verdict::Allow(..) => true,
        other => !matches!(
            apply(
                host,
                config,
                counters,
                other,
                Shape::Known(Some(flavor)),
                Some(plan_index)
            ),
            Action::Stop
        ),
    }
}

/// A request still waiting for its cost when the response starts (the upstream answered
/// before the body ended) or the stream ends (the client never finished the body): it is
/// charged now, with the cost published by then or the rule's / default cost, and counted as
/// `charged_late`. Nothing is sent (the response is already the upstream's); a request over
/// the limit is charged up to nothing more (the store never charges past a limit) and counted
/// as `limited`. Global tier: the returned call is sent without waiting for its answer.
/// Whether the response is a local reply of a filter (once a status exists, Envoy's
/// `response.code_details` is anything but `via_upstream`, or absent): the upstream never saw that request,
/// so it is not charged late (a body refused by graphql-guard, say). A stream reset before
/// any response has no status and is charged.
pub fn answered_locally(host: &dyn Host) -> bool {
    let status = host
        .property(&["response", "code"])
        .and_then(|b| b.first_chunk::<8>().map(|c| u64::from_le_bytes(*c)))
        .unwrap_or(0);
    if status == 0 {
        return false;
    }
    // Absent counts as local: Envoy 1.40 leaves it unset for a Wasm filter's local reply.
    host.property(&["response", "code_details"]).as_deref() != Some(b"via_upstream".as_slice())
}

pub fn charge_late(
    host: &dyn Host,
    store: &dyn SharedStore,
    hash_key: &HashKey,
    config: &Config,
    counters: &Counters,
    gathered: &Gathered,
    filter_cost: Option<&[u8]>,
) -> Option<GlobalCall> {
    if answered_locally(host) {
        return None;
    }
    counters.inc(host, CHARGED_LATE);
    let input = Inputs {
        head: &gathered.head,
        route: gathered.route.as_deref(),
        identity: gathered.identity.as_ref(),
        client_address: gathered.client_address.as_deref(),
        filter_cost,
    };
    let Resolution::Count { plan, key, cost } = policy::resolve(config, &input).resolution else {
        return None;
    };
    let plan_index = plan;
    let plan = config.plans.get(plan)?;
    if let Some(global) = &config.global {
        let descriptors = policy::descriptors(plan, &key, cost);
        let hits = u32::try_from(cost).unwrap_or(u32::MAX);
        let message = crate::rls::encode_request(&global.domain, &descriptors, hits);
        let plan = config.plan_index(&plan.name).unwrap_or_default();
        return Some(GlobalCall { plan, message });
    }
    let now = host.now_unix();
    let (slot, checks) = policy::checks(plan, &key, now, hash_key);
    let index = match admit(store, &slot, &checks, cost, now) {
        crate::store::Outcome::Allowed(_) => ALLOWED,
        crate::store::Outcome::Limited(_) => LIMITED,
        crate::store::Outcome::Full { .. } => STORE_FULL,
        crate::store::Outcome::Contended => CONTENDED,
        crate::store::Outcome::Error => ERRORS,
    };
    count_outcome(host, counters, index, Some(plan_index));
    None
}

/// A refusal before counting, counted under its reason; shadow mode reports it and lets the
/// request through.
fn refuse(
    host: &dyn Host,
    config: &Config,
    counters: &Counters,
    index: usize,
    denial: &kit::denial::Denial,
    shape: Shape,
) -> Action {
    counters.inc(host, index);
    if config.shadow {
        return Action::Continue(Vec::new());
    }
    send(host, shape, denial);
    Action::Stop
}

/// The Rate Limit Service answered (`Ok`: the decoded `RateLimitResponse`) or failed (`Err`:
/// what went wrong, for the log): decide, or follow the plan's failure mode.
pub fn on_global_response(
    host: &dyn Host,
    config: &Config,
    counters: &Counters,
    plan: usize,
    answer: Result<crate::rls::Response, String>,
    shape: Shape,
) -> Action {
    let plan_index = plan;
    let Some(plan) = config.plans.get(plan) else {
        return Action::Continue(Vec::new());
    };
    let verdict = match &answer {
        Ok(resp) => policy::global_verdict(config, plan, resp),
        Err(_) => None,
    };
    if let Some(v) = verdict {
        return apply(host, config, counters, v, shape, Some(plan_index));
    }
    counters.inc(host, GLOBAL_ERRORS);
    let why = answer
        .err()
        .unwrap_or_else(|| "an answer without a decision".into());
    match plan.failure_mode {
        FailureMode::Open => {
            host.log(
                LogLevel::Warn,
                &format!(
                    "quota: rate limit service failed ({why}); plan {} fails open",
                    plan.name
                ),
            );
            Action::Continue(Vec::new())
        }
        FailureMode::Closed => {
            host.log(
                LogLevel::Warn,
                &format!(
                    "quota: rate limit service failed ({why}); plan {} fails closed",
                    plan.name
                ),
            );
            let d = kit::denial::Denial::new(
                503,
                "quota_unavailable",
                "Quota service unavailable",
                "The quota of this plan cannot be checked right now; retry later.",
            )
            .with_header("retry-after", "1");
            send(host, shape, &d);
            Action::Stop
        }
    }
}

/// Acts on a verdict for a request of plan `plan` (its index), counted under its outcome.
fn apply(
    host: &dyn Host,
    config: &Config,
    counters: &Counters,
    verdict: Verdict,
    shape: Shape,
    plan: Option<usize>,
) -> Action {
    let (index, fallback, denial) = match verdict {
        Verdict::Allow(headers, usage) => {
            count_outcome(host, counters, ALLOWED, plan);
            if let Some(usage) = usage {
                host.set_property(USAGE_PROPERTY, usage.as_bytes());
            }
            return Action::Continue(headers);
        }
        Verdict::ShadowLimited(headers) => {
            counters.inc(host, SHADOW_LIMITED);
            return Action::Continue(headers);
        }
        Verdict::Deny(denial) => {
            count_outcome(host, counters, LIMITED, plan);
            send(host, shape, &denial);
            return Action::Stop;
        }
        Verdict::StoreFull { retry_after } => (
            STORE_FULL,
            config.when_store_full,
            kit::denial::Denial::new(
                503,
                "quota_store_full",
                "Quota store full",
                "There is no room to count this caller's requests right now; retry later.",
            )
            .with_header("retry-after", retry_after.to_string()),
        ),
        Verdict::Contended => (
            CONTENDED,
            config.when_store_fails,
            kit::denial::Denial::new(
                503,
                "quota_contended",
                "Quota store busy",
                "This caller's counter is too busy to update right now; retry later.",
            )
            .with_header("retry-after", "1"),
        ),
        Verdict::StoreError => (
            ERRORS,
            config.when_store_fails,
            kit::denial::Denial::new(
                503,
                "quota_store_error",
                "Quota store failed",
                "This caller's requests cannot be counted right now; retry later.",
            )
            .with_header("retry-after", "1"),
        ),
    };
    // A request the store could not count: counted under its reason, then admitted only when
    // the config says so (or in shadow mode, which never refuses).
    counters.inc(host, index);
    if fallback == StoreFallback::Admit || config.shadow {
        host.log(
            LogLevel::Warn,
            &format!(
                "quota: {} ({}); request admitted uncounted",
                denial.code, denial.title
            ),
        );
        return Action::Continue(Vec::new());
    }
    send(host, shape, &denial);
    Action::Stop
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
