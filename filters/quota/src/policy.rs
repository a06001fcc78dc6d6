//! The pure decision: which plan, which counter, what cost; then, from the counts, allow or a
//! typed 429 with its `Retry-After` / `RateLimit-Policy` / `RateLimit` fields.

use crate::config::{Config, KeyPart, MissingKey, Plan};
use crate::rls;
use crate::store::{Check, Outcome};
use kit::denial::Denial;
use kit::digest::{sha256, to_hex};
use kit::identity::Identity;
use kit::matcher::MatchInput;
use kit::request::RequestHead;
use serde_json::json;

/// A key part longer than this is replaced by its SHA-256 (hex), so counter names stay small.
pub const MAX_KEY_PART: usize = 256;
/// What a missing part reads as when `missing_key` is `shared`.
pub const MISSING_PART: &str = "-";

/// Everything the decision reads from the request, fetched by the glue.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub head: &'a RequestHead,
    pub route: Option<&'a str>,
    pub identity: Option<&'a Identity>,
    pub client_address: Option<&'a str>,
    /// The `apim_cost` filter state, raw.
    pub filter_cost: Option<&'a [u8]>,
}

impl<'a> Inputs<'a> {
    /// Only the request head; everything else absent.
    pub fn new(head: &'a RequestHead) -> Self {
        Self {
            head,
            route: None,
            identity: None,
            client_address: None,
            filter_cost: None,
        }
    }
}

/// What to count, before looking at the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Not limited: a skip rule, no plan for this caller, zero cost, or a missing key part with
    /// `missing_key: allow`.
    Pass,
    /// A key part is missing and `missing_key` is `deny`.
    MissingKey(Denial),
    Count {
        plan: usize,
        /// The counting key, parts joined by U+001F.
        key: String,
        cost: u64,
    },
}

/// Which rule applies, and so which plan, key and cost.
pub fn resolve(config: &Config, input: &Inputs<'_>) -> Resolution {
    let rule = config.rules.first(&MatchInput {
        route_name: input.route,
        head: input.head,
    });
    if rule.is_some_and(|r| r.skip) {
        return Resolution::Pass;
    }
    let plan = rule
        .and_then(|r| r.plan)
        .or_else(|| {
            input
                .identity
                .and_then(|i| i.plan.as_deref())
                .and_then(|p| config.plan_index(p))
        })
        .or(config.default_plan);
    let Some(plan) = plan else {
        return Resolution::Pass;
    };
    let cost = cost_of(config, rule.and_then(|r| r.cost), input.filter_cost);
    if cost == 0 {
        return Resolution::Pass;
    }
    let mut parts: Vec<String> = Vec::with_capacity(config.key.len());
    for part in &config.key {
        let value: Option<String> = match part {
            KeyPart::Consumer => input.identity.map(|i| i.id.clone()),
            KeyPart::ClientAddress => input.client_address.map(strip_port),
            KeyPart::Route => input.route.map(str::to_string),
            KeyPart::Header(h) => input
                .head
                .get(h)
                .map(|v| String::from_utf8_lossy(v).into_owned()),
        };
        match value.filter(|v| !v.is_empty()) {
            Some(v) if v.len() > MAX_KEY_PART => {
                parts.push(format!("#{}", to_hex(&sha256(v.as_bytes()))))
            }
            Some(v) => parts.push(v),
            None => match config.missing_key {
                MissingKey::Shared => parts.push(MISSING_PART.to_string()),
                MissingKey::Allow => return Resolution::Pass,
                MissingKey::Deny => {
                    return Resolution::MissingKey(Denial::new(
                        403,
                        "quota_key_missing",
                        "Quota key missing",
                        format!(
                            "The request carries no {}, which the quota is counted by.",
                            part_label(part)
                        ),
                    ))
                }
            },
        }
    }
    Resolution::Count {
        plan,
        key: parts.join("\u{1f}"),
        cost,
    }
}

/// `apim_cost` (a decimal integer, as graphql-guard writes it) when configured and present,
/// else the route's weight, else the default; capped at `max_cost`.
pub fn cost_of(config: &Config, route_cost: Option<u64>, filter_cost: Option<&[u8]>) -> u64 {
    let published = if config.cost_from_filter_state {
        filter_cost
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            // A published cost of 0 (a trusted persisted query, a scalar-only query) still
            // counts as one request: only a route rule may make requests free.
            .map(|c| c.max(1))
    } else {
        None
    };
    published
        .or(route_cost)
        .unwrap_or(config.default_cost)
        .min(config.max_cost)
}

fn part_label(part: &KeyPart) -> String {
    match part {
        KeyPart::Consumer => "consumer identity".into(),
        KeyPart::ClientAddress => "client address".into(),
        KeyPart::Route => "route name".into(),
        KeyPart::Header(h) => format!("{h} header"),
    }
}

/// `10.0.0.1:4567` → `10.0.0.1`, `[::1]:4567` → `::1`.
fn strip_port(addr: &str) -> String {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    match addr.rsplit_once(':') {
        Some((ip, port)) if !ip.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            ip.to_string()
        }
        _ => addr.to_string(),
    }
}

/// The shared-data slot and the checks for one plan and key at `now`.
pub fn checks(plan: &Plan, key: &str, now: u64) -> (String, Vec<Check>) {
    let family = format!("{}\u{1f}{key}", plan.name);
    let mut family_bytes = family.into_bytes();
    family_bytes.truncate(crate::store::MAX_ENTRY_NAME);
    let slot = crate::store::slot_key(&family_bytes);
    let checks = plan
        .limits
        .iter()
        .map(|l| {
            let mut name = family_bytes.clone();
            name.push(0x1f);
            name.extend_from_slice(l.id.as_bytes());
            Check {
                name,
                requests: l.requests,
                window_end: l.window.end(now),
            }
        })
        .collect();
    (slot, checks)
}

/// The result of counting, ready for the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on; these headers go on the response (empty unless `headers.on_allowed`).
    Allow(Vec<(String, String)>),
    /// Over a limit but in shadow mode: go on, report.
    ShadowLimited(Vec<(String, String)>),
    Deny(Denial),
    /// The local store failed: allowed, counted as an error.
    StoreError,
}

/// The RLS descriptors of one request: one per limit of the plan, each carrying the limit
/// (override) and the cost (`hits_addend`); entries `quota_plan`, `quota_limit` (the window)
/// and `quota_key`.
pub fn descriptors(plan: &Plan, key: &str, cost: u64) -> Vec<rls::Descriptor> {
    plan.limits
        .iter()
        .map(|l| rls::Descriptor {
            entries: vec![
                ("quota_plan".to_string(), plan.name.clone()),
                ("quota_limit".to_string(), l.id.clone()),
                ("quota_key".to_string(), key.to_string()),
            ],
            limit: rls::Unit::from_window(l.window)
                .map(|u| (u32::try_from(l.requests).unwrap_or(u32::MAX), u)),
            hits_addend: Some(cost),
        })
        .collect()
}

/// The verdict from the Rate Limit Service's answer; `None` when the answer says nothing
/// usable (treated as a failure of the service).
pub fn global_verdict(config: &Config, plan: &Plan, resp: &rls::Response) -> Option<Verdict> {
    let allowed = match resp.overall {
        rls::Code::Ok => true,
        rls::Code::OverLimit => false,
        rls::Code::Unknown => return None,
    };
    let states: Vec<LimitState> = plan
        .limits
        .iter()
        .enumerate()
        .map(|(i, l)| match resp.statuses.get(i) {
            Some(s) => LimitState {
                remaining: u64::from(s.limit_remaining),
                reset: s.reset_seconds.max(1),
                over: s.code == rls::Code::OverLimit,
            },
            None => LimitState {
                remaining: l.requests,
                reset: l.window.nominal_seconds(),
                over: false,
            },
        })
        .collect();
    Some(decide_fields(config, plan, &states, allowed))
}

/// Where one limit stands after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitState {
    /// Requests (cost units) left in the window.
    pub remaining: u64,
    /// Seconds until the window resets (at least 1).
    pub reset: u64,
    /// This limit refused the request.
    pub over: bool,
}

/// From the store's outcome to allow/deny with the rate-limit fields.
pub fn verdict(
    config: &Config,
    plan: &Plan,
    checks: &[Check],
    outcome: &Outcome,
    cost: u64,
    now: u64,
) -> Verdict {
    let (counts, allowed) = match outcome {
        Outcome::Error => return Verdict::StoreError,
        Outcome::Allowed(after) => (after, true),
        Outcome::Limited(before) => (before, false),
    };
    let states: Vec<LimitState> = checks
        .iter()
        .zip(counts)
        .map(|(c, n)| LimitState {
            remaining: c.requests.saturating_sub(*n),
            reset: c.window_end.saturating_sub(now).max(1),
            over: !allowed && n.saturating_add(cost) > c.requests,
        })
        .collect();
    decide_fields(config, plan, &states, allowed)
}

/// The verdict and its fields from every limit's state (local counts or the Rate Limit
/// Service's statuses).
pub fn decide_fields(
    config: &Config,
    plan: &Plan,
    states: &[LimitState],
    allowed: bool,
) -> Verdict {
    if allowed {
        // The limit closest to running out decides what `RateLimit` shows.
        let pick = (0..states.len()).min_by_key(|i| {
            states
                .get(*i)
                .map_or((u64::MAX, 0), |s| (s.remaining, u64::MAX - s.reset))
        });
        let headers = if config.headers_on_allowed {
            fields(config, plan, states, pick, false)
        } else {
            Vec::new()
        };
        return Verdict::Allow(headers);
    }
    // Every exceeded limit must reset before a retry can succeed: the latest decides.
    let pick = (0..states.len())
        .filter(|i| states.get(*i).is_some_and(|s| s.over))
        .max_by_key(|i| states.get(*i).map_or(0, |s| s.reset));
    let headers = fields(config, plan, states, pick, true);
    if config.shadow {
        let h = if config.headers_on_allowed {
            headers
        } else {
            Vec::new()
        };
        return Verdict::ShadowLimited(h);
    }
    let (name, requests, reset) = pick
        .and_then(|i| Some((plan.limits.get(i)?, states.get(i)?)))
        .map_or((String::new(), 0, 1), |(l, s)| {
            (l.name.clone(), l.requests, s.reset)
        });
    let mut d = Denial::new(
        429,
        "quota_exceeded",
        "Quota exceeded",
        format!("The \"{name}\" limit of {requests} is used up; retry in {reset} s."),
    )
    .with_extension("limit", json!(name))
    .with_extension("retry_after", json!(reset));
    for (k, v) in headers {
        d = d.with_header(&k, v);
    }
    Verdict::Deny(d)
}

/// `RateLimit-Policy`, `RateLimit` (draft-ietf-httpapi-ratelimit-headers), `Retry-After` on a
/// refusal, and the legacy `X-RateLimit-*` when configured.
fn fields(
    config: &Config,
    plan: &Plan,
    states: &[LimitState],
    pick: Option<usize>,
    limited: bool,
) -> Vec<(String, String)> {
    let mut out = vec![("ratelimit-policy".to_string(), plan.policy_header.clone())];
    let Some((limit, state)) = pick.and_then(|i| Some((plan.limits.get(i)?, states.get(i)?)))
    else {
        return out;
    };
    let (remaining, reset) = (state.remaining, state.reset);
    out.push((
        "ratelimit".to_string(),
        format!("\"{}\";r={remaining};t={reset}", limit.name),
    ));
    if limited {
        out.push(("retry-after".to_string(), reset.to_string()));
    }
    if config.legacy_headers {
        out.push(("x-ratelimit-limit".to_string(), limit.requests.to_string()));
        out.push(("x-ratelimit-remaining".to_string(), remaining.to_string()));
        out.push(("x-ratelimit-reset".to_string(), reset.to_string()));
    }
    out
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
