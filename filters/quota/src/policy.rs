//! The pure decision: which plan, which counter, what cost; then, from the counts, allow or a
//! typed 429 with its `Retry-After` / `RateLimit-Policy` / `RateLimit` fields.

use crate::config::Rule;
use crate::config::{Config, KeyPart, MissingKey, Plan, Preflight, UnknownPlan};
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
/// A counter family (plan and key) longer than this is replaced by the plan and the SHA-256 of
/// the whole family: two different keys never share a counter, and a stored name is never cut.
pub const MAX_FAMILY: usize = crate::store::MAX_ENTRY_NAME - 64;

// Each key part is tagged by its first character, so no value a client sends can read as
// another kind of part: `=` a value as sent, `#` the SHA-256 of a long or unprintable value,
// `@` the client address standing in for a missing part, `-` the shared missing part, `!` the
// preflight marker.

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
    /// Not limited: a skip rule, `unknown_plan: unlimited`, zero cost, a skipped preflight, or
    /// a missing key part with `missing_key: allow`.
    Pass,
    /// A key part is missing and `missing_key` is `deny`.
    MissingKey(Denial),
    /// No plan applies to this caller and `unknown_plan` is `deny`.
    UnknownPlan(Denial),
    /// The path's readings meet rules with different plans or costs
    /// ([`kit::matcher::Lookup::conflict`]): which applies depends on the backend.
    PathAmbiguous(Denial),
    Count {
        plan: usize,
        /// The counting key, parts joined by U+001F.
        key: String,
        cost: u64,
    },
}

/// [`resolve`]'s answer and whether a loosening rule was passed over for an ambiguous path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub resolution: Resolution,
    pub path_ambiguous: bool,
}

/// Which rule applies, and so which plan, key and cost.
pub fn resolve(config: &Config, input: &Inputs<'_>) -> Resolved {
    let lookup = config.rules.lookup(&MatchInput {
        route_name: input.route,
        head: input.head,
    });
    // Counting under the wrong plan or cost is a looser decision the client picked by spelling.
    let resolution = if lookup.conflict {
        Resolution::PathAmbiguous(Denial::path_ambiguous())
    } else {
        resolve_with(config, input, lookup.rule)
    };
    Resolved {
        resolution,
        path_ambiguous: lookup.refused_ambiguous,
    }
}

fn resolve_with(config: &Config, input: &Inputs<'_>, rule: Option<&Rule>) -> Resolution {
    if rule.is_some_and(|r| r.skip) {
        return Resolution::Pass;
    }
    // A preflight is what the request looks like *and* who sends it: a caller with an
    // identity (not an anonymous consumer) is counted as itself, whatever its method and
    // headers. Preflights are decided before the caller's plan (they carry none).
    let identified = input
        .identity
        .is_some_and(|i| !i.id.is_empty() && !config.anonymous_consumers.contains(&i.id));
    let preflight = !identified && input.head.is_cors_preflight();
    if preflight && config.cors_preflight == Preflight::Skip {
        return Resolution::Pass;
    }
    let identity_plan = if preflight {
        None
    } else {
        input.identity.and_then(|i| i.plan.as_deref())
    };
    let plan = match rule.and_then(|r| r.plan) {
        Some(p) => Some(p),
        None => match identity_plan {
            // A plan this config does not know is never silently another one.
            Some(name) => config.plan_index(name),
            None => config.default_plan,
        },
    };
    // A preflight never carries an identity's plan: with no rule or default plan, the
    // `unknown_plan` plan, else the strictest plan counts it, so an anonymous preflight is
    // never refused for having no plan (nor let through uncounted).
    let plan = match (plan, config.unknown_plan) {
        (None, UnknownPlan::Plan(p)) if preflight => Some(p),
        (None, _) if preflight && config.cors_preflight == Preflight::Separate => {
            config.strictest_plan
        }
        (p, _) => p,
    };
    let plan = match plan.map_or(config.unknown_plan, UnknownPlan::Plan) {
        UnknownPlan::Plan(p) => p,
        UnknownPlan::Unlimited => return Resolution::Pass,
        UnknownPlan::Deny => {
            return Resolution::UnknownPlan(Denial::new(
                403,
                "quota_plan_unknown",
                "No quota plan",
                "No quota plan applies to this caller, so the request cannot be counted.",
            ))
        }
    };
    let cost = cost_of(config, rule.and_then(|r| r.cost), input.filter_cost);
    if cost == 0 {
        return Resolution::Pass;
    }
    if preflight && config.cors_preflight == Preflight::Separate {
        // Preflights carry no credentials: their own counter per client address.
        let by = input
            .client_address
            .map_or_else(|| MISSING_PART.to_string(), address_part);
        return Resolution::Count {
            plan,
            key: format!("!preflight\u{1f}{by}"),
            cost,
        };
    }
    let mut parts: Vec<String> = Vec::with_capacity(config.key.len());
    for part in &config.key {
        // The part as sent, tagged; `None` when absent or empty.
        let value: Option<String> = match part {
            KeyPart::Consumer => input
                .identity
                .filter(|i| !config.anonymous_consumers.contains(&i.id))
                .map(|i| value_part(i.id.as_bytes())),
            // Grouped as a missing part is (an IPv6 address by its /64).
            KeyPart::ClientAddress => input.client_address.map(address_part),
            KeyPart::Route => input.route.map(|r| value_part(r.as_bytes())),
            KeyPart::Header(h) => input.head.get(h).map(value_part),
        };
        match value.filter(|v| v.len() > 1) {
            Some(v) => parts.push(v),
            None => match config.missing_key {
                MissingKey::ClientAddress => parts.push(
                    input
                        .client_address
                        .map_or_else(|| MISSING_PART.to_string(), address_part),
                ),
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

/// A key part as sent: `=value`, or `#<sha256>` when long, not UTF-8 or holding control bytes
/// (never a lossy conversion: two different byte strings never read the same). `=` alone for
/// an empty value, which the caller treats as missing.
fn value_part(v: &[u8]) -> String {
    match std::str::from_utf8(v) {
        Ok(s) if s.len() <= MAX_KEY_PART && !s.bytes().any(|b| b < 0x20 || b == 0x7f) => {
            tagged('=', s)
        }
        _ => format!("#{}", to_hex(&sha256(v))),
    }
}

/// A missing part read as the client address: `@10.0.0.1`, or `@2001:db8:1:2::/64` (one host
/// has a whole /64 to pick addresses from).
fn address_part(addr: &str) -> String {
    let ip = strip_port(addr);
    // Only an IPv6 address has a ':' once the port is gone: the common IPv4 client skips the
    // parse.
    if ip.contains(':') {
        if let Ok(v6) = ip.parse::<std::net::Ipv6Addr>() {
            if v6.to_ipv4_mapped().is_none() {
                let [a, b, c, d, ..] = v6.segments();
                return format!("@{}/64", std::net::Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0));
            }
        }
    }
    tagged('@', ip)
}

/// `tag` then `value`, in one allocation (the request path avoids `format!`'s machinery).
fn tagged(tag: char, value: &str) -> String {
    let mut out = String::with_capacity(value.len() + tag.len_utf8());
    out.push(tag);
    out.push_str(value);
    out
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
fn strip_port(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((ip, port)) if !ip.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => ip,
        _ => addr,
    }
}

/// The counter family of one plan and key: `<plan> U+001F <key>`, or, when that is longer
/// than [`MAX_FAMILY`], `<plan> U+001F %<sha256 of it>`: never cut, so never merged.
pub fn family(plan: &Plan, key: &str) -> Vec<u8> {
    let mut family = Vec::with_capacity(plan.name.len() + 1 + key.len());
    family.extend_from_slice(plan.name.as_bytes());
    family.push(0x1f);
    family.extend_from_slice(key.as_bytes());
    if family.len() <= MAX_FAMILY {
        return family;
    }
    format!("{}\u{1f}%{}", plan.name, to_hex(&sha256(&family))).into_bytes()
}

/// The shared-data slot and the checks for one plan and key at `now`.
pub fn checks(
    plan: &Plan,
    key: &str,
    now: u64,
    hash_key: &crate::store::HashKey,
) -> (String, Vec<Check>) {
    let family_bytes = family(plan, key);
    let slot = crate::store::slot_key(hash_key, &family_bytes);
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
    /// Go on; these headers go on the response (empty unless `headers.on_allowed`), and the
    /// usage to publish (with `publish_usage`).
    Allow(Vec<(String, String)>, Option<String>),
    /// Over a limit but in shadow mode: go on, report.
    ShadowLimited(Vec<(String, String)>),
    Deny(Denial),
    /// The slot had no room for this caller's counters (no live counter is ever evicted);
    /// nothing was charged. `retry_after`: seconds until the slot's soonest entry ends.
    StoreFull {
        retry_after: u64,
    },
    /// Compare-and-swap lost too many times in a row; nothing was charged.
    Contended,
    /// The local store failed; nothing was charged.
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
        Outcome::Contended => return Verdict::Contended,
        Outcome::Full { free_at } => {
            return Verdict::StoreFull {
                retry_after: free_at.saturating_sub(now).clamp(1, 3600),
            }
        }
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
        let usage = if config.publish_usage {
            usage(plan, states, pick)
        } else {
            None
        };
        return Verdict::Allow(headers, usage);
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
/// The admitting limit closest to running out, for the access log (`apim_quota`):
/// `"<name>";q=<requests per window>;r=<remaining>`, the structured-field form of RateLimit.
fn usage(plan: &Plan, states: &[LimitState], pick: Option<usize>) -> Option<String> {
    let (limit, state) = pick.and_then(|i| Some((plan.limits.get(i)?, states.get(i)?)))?;
    Some(format!(
        "\"{}\";q={};r={}",
        limit.name, limit.requests, state.remaining
    ))
}

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
