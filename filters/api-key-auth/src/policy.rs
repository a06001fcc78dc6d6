//! The decision, as a pure function of the config, the request head, the route name and the
//! clock. No host types: everything here is unit-tested natively and in the Wasm lane.

use crate::config::{Allow, Config, Consumer, Rule};
use crate::credential::{self, Location, Presented};
use kit::denial::Denial;
use kit::digest::sha256;
use kit::matcher::MatchInput;
use kit::request::RequestHead;

/// Why a request was refused; each reason has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    Missing,
    Unknown,
    Expired,
    NotYetValid,
    Disabled,
    Malformed,
    Ambiguous,
    TooMany,
    Forbidden,
    /// The path's readings meet rules that decide differently ([`kit::matcher::Lookup::conflict`]).
    PathAmbiguous,
}

impl DenyReason {
    pub const ALL: [DenyReason; 10] = [
        Self::Missing,
        Self::Unknown,
        Self::Expired,
        Self::NotYetValid,
        Self::Disabled,
        Self::Malformed,
        Self::Ambiguous,
        Self::TooMany,
        Self::Forbidden,
        Self::PathAmbiguous,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Disabled => "disabled",
            Self::Malformed => "malformed",
            Self::Ambiguous => "ambiguous",
            Self::TooMany => "too_many",
            Self::Forbidden => "forbidden",
            Self::PathAmbiguous => "path_ambiguous",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Decision<'c> {
    /// Not this filter's to judge: a skipped route or a CORS preflight.
    Pass,
    /// The caller is this consumer; `strip` lists where its key was found.
    Allow {
        consumer: &'c Consumer,
        anonymous: bool,
        strip: Vec<Location>,
    },
    Deny(DenyReason, Denial),
}

/// A decision, and whether a loosening rule (`skip`, `anonymous`) was passed over because the
/// path is ambiguous (counted as `path_ambiguous`; the decision is then the stricter one).
#[derive(Debug, Clone)]
pub struct Verdict<'c> {
    pub decision: Decision<'c>,
    pub path_ambiguous: bool,
}

const DEFAULT_RULE: Rule = Rule {
    skip: false,
    allow: None,
    anonymous: None,
};

pub fn decide<'c>(
    config: &'c Config,
    head: &RequestHead,
    route_name: Option<&str>,
    now: u64,
) -> Verdict<'c> {
    // A preflight passes only as `OPTIONS` exactly: the exemption loosens, so a method a
    // server might read another way (`options` over HTTP/2) does not get it.
    if config.allow_cors_preflight && head.is_cors_preflight() {
        return Verdict {
            decision: Decision::Pass,
            path_ambiguous: false,
        };
    }
    let input = MatchInput { route_name, head };
    let found = config.rules.lookup(&input);
    if found.conflict {
        // Which rule applies depends on how the backend reads the path: refuse, whoever calls.
        return Verdict {
            decision: Decision::Deny(DenyReason::PathAmbiguous, Denial::path_ambiguous()),
            path_ambiguous: found.refused_ambiguous,
        };
    }
    let mut decision = decide_for(config, found.rule.unwrap_or(&DEFAULT_RULE), head, now);
    if found.refused_ambiguous {
        // An `anonymous` rule passed over for the ambiguous path (one before the rule that
        // decided) still restricts who may call: its `allow` holds on top of that rule.
        if let Decision::Allow { consumer, .. } = &decision {
            // A rule met only by the wide reading stands in for the default: every rule passed
            // over still restricts.
            let decided = match (found.wide, found.index) {
                (false, Some(i)) => i,
                _ => usize::MAX,
            };
            let refused = config.guarded_allows.iter().any(|(i, m, allow)| {
                *i < decided && m.matches(&input) && !allowed(config, allow, consumer)
            });
            if refused {
                decision = Decision::Deny(DenyReason::Forbidden, forbidden());
            }
        }
    }
    Verdict {
        decision,
        path_ambiguous: found.refused_ambiguous,
    }
}

fn decide_for<'c>(config: &'c Config, rule: &Rule, head: &RequestHead, now: u64) -> Decision<'c> {
    if rule.skip {
        return Decision::Pass;
    }
    let (key, locations) = match credential::find(&config.sources, head) {
        Presented::Missing => {
            return match rule.anonymous.and_then(|i| config.consumers.get(i)) {
                Some(anon) => authorize(config, rule, anon, true, Vec::new()),
                None => deny(config, DenyReason::Missing, "No API key was presented."),
            }
        }
        Presented::Ambiguous => {
            return deny(
                config,
                DenyReason::Ambiguous,
                "More than one different API key was presented.",
            )
        }
        Presented::TooMany => {
            let detail = format!(
                "The API key was presented more than {} times.",
                credential::MAX_COPIES
            );
            return Decision::Deny(
                DenyReason::TooMany,
                Denial::new(400, "too_many_api_keys", "Too many API keys", detail),
            );
        }
        Presented::One { key, locations } => (key, locations),
    };
    if let Some(why) = credential::malformed(&key, config.max_key_length) {
        return deny(config, DenyReason::Malformed, &why);
    }
    let Some(entry) = config.keys.get(&sha256(&key)) else {
        return invalid(config, DenyReason::Unknown);
    };
    let Some(consumer) = config.consumers.get(entry.consumer) else {
        return invalid(config, DenyReason::Unknown);
    };
    if consumer.disabled {
        return invalid(config, DenyReason::Disabled);
    }
    if entry.not_before.is_some_and(|nb| now < nb) {
        return invalid(config, DenyReason::NotYetValid);
    }
    if entry.expires_at.is_some_and(|exp| now >= exp) {
        return invalid(config, DenyReason::Expired);
    }
    authorize(config, rule, consumer, false, locations)
}

fn authorize<'c>(
    config: &'c Config,
    rule: &Rule,
    consumer: &'c Consumer,
    anonymous: bool,
    strip: Vec<Location>,
) -> Decision<'c> {
    if let Some(allow) = &rule.allow {
        if !allowed(config, allow, consumer) {
            return Decision::Deny(DenyReason::Forbidden, forbidden());
        }
    }
    Decision::Allow {
        consumer,
        anonymous,
        strip,
    }
}

fn allowed(config: &Config, (ids, groups): &Allow, consumer: &Consumer) -> bool {
    let by_id = ids.iter().any(|i| {
        config
            .consumers
            .get(*i)
            .is_some_and(|c| std::ptr::eq(c, consumer))
    });
    by_id || consumer.groups.iter().any(|g| groups.contains(g))
}

fn forbidden() -> Denial {
    Denial::new(
        403,
        "consumer_not_allowed",
        "Consumer not allowed",
        "This consumer may not call this route.",
    )
}

/// Unknown, expired, not yet valid and disabled keys read the same to the caller, so a caller
/// cannot learn which keys exist; the counters and debug log tell the operator which it was.
fn invalid(config: &Config, reason: DenyReason) -> Decision<'_> {
    deny(config, reason, "The API key is not valid.")
}

fn deny<'c>(config: &Config, reason: DenyReason, detail: &str) -> Decision<'c> {
    let (code, title) = match reason {
        DenyReason::Missing => ("missing_api_key", "API key required"),
        DenyReason::Ambiguous => ("ambiguous_api_key", "Ambiguous API key"),
        _ => ("invalid_api_key", "Invalid API key"),
    };
    let denial = Denial::new(401, code, title, detail)
        .with_header("www-authenticate", config.www_authenticate.clone());
    Decision::Deny(reason, denial)
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
