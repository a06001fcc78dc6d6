//! Applying a decision through the host: publish the identity, forward or scrub consumer
//! headers, strip the credential, send the denial, count. Generic over `kit::host::Host`, so
//! every effect is unit-tested with the mock; `filter.rs` only wires it to proxy-wasm.

use crate::config::{Config, CORS_HEADERS};
use crate::credential::{self, Location};
use crate::policy::{decide, Decision, DenyReason};
use kit::denial::Format;
use kit::host::Host;
use kit::identity;
use kit::metrics::Counters;
use kit::query::{remove_cookie, remove_query_param};
use kit::request::RequestHead;

/// Counter names, in the order [`counter_index`] uses.
pub const COUNTER_NAMES: [&str; 14] = [
    "apim.api_key_auth.allowed",
    "apim.api_key_auth.anonymous",
    "apim.api_key_auth.passed",
    "apim.api_key_auth.denied.missing",
    "apim.api_key_auth.denied.unknown",
    "apim.api_key_auth.denied.expired",
    "apim.api_key_auth.denied.not_yet_valid",
    "apim.api_key_auth.denied.disabled",
    "apim.api_key_auth.denied.malformed",
    "apim.api_key_auth.denied.ambiguous",
    "apim.api_key_auth.denied.too_many",
    "apim.api_key_auth.denied.forbidden",
    // The path's readings meet rules that decide differently: refused 400 whoever calls.
    "apim.api_key_auth.denied.path_ambiguous",
    // Not an outcome: a `skip`/`anonymous` rule passed over for an ambiguous path (the request
    // is also counted under the stricter outcome it got).
    "apim.api_key_auth.path_ambiguous",
];
const ALLOWED: usize = 0;
const ANONYMOUS: usize = 1;
const PASSED: usize = 2;
const PATH_AMBIGUOUS: usize = 13;

fn counter_index(reason: DenyReason) -> usize {
    3 + DenyReason::ALL
        .iter()
        .position(|r| *r == reason)
        .unwrap_or(0)
}

/// Whether the request goes on to the next filter (kit's one type for it).
pub use kit::stage::Verdict as Action;

/// `body_follows`: the headers did not end the stream (Envoy's `!end_of_stream`).
pub fn on_request_headers(
    host: &dyn Host,
    config: &Config,
    counters: &Counters,
    body_follows: bool,
) -> Action {
    let mut head = RequestHead::fetch(host, &config.fetch);
    head.set_body_follows(body_follows);
    if config.allow_cors_preflight && head.method() == "OPTIONS" {
        let cors: Vec<String> = CORS_HEADERS.iter().map(|s| (*s).to_string()).collect();
        head.fetch_more(host, &cors);
    }
    // Host calls cost more than the logic: fetch the route name and clock only when used.
    let route = if config.rules.needs_route_name() {
        host.route_name()
    } else {
        None
    };
    let now = if config.needs_clock {
        host.now_unix()
    } else {
        0
    };
    let verdict = decide(config, &head, route.as_deref(), now);
    if verdict.path_ambiguous {
        counters.inc(host, PATH_AMBIGUOUS);
    }
    match verdict.decision {
        Decision::Pass => {
            scrub_consumer_headers(host, config);
            counters.inc(host, PASSED);
            Action::Continue
        }
        Decision::Allow {
            consumer,
            anonymous,
            strip,
        } => {
            host.set_property(identity::PROPERTY, &consumer.identity);
            // Setting replaces every copy the client sent; a header with nothing to say is
            // removed so the client's copy cannot stand in for ours.
            if let Some(h) = &config.consumer_id_header {
                host.set_request_header(h, consumer.id.as_bytes());
            }
            if let Some(h) = &config.consumer_plan_header {
                match &consumer.plan {
                    Some(plan) => host.set_request_header(h, plan.as_bytes()),
                    None => host.remove_request_header(h),
                }
            }
            if config.strip_credential {
                strip_credential(host, config, &head, &strip);
            }
            counters.inc(host, if anonymous { ANONYMOUS } else { ALLOWED });
            Action::Continue
        }
        Decision::Deny(reason, denial) => {
            counters.inc(host, counter_index(reason));
            kit::denial::send(host, crate::stage::SPEC.name, &denial, Format::Problem);
            Action::Stop
        }
    }
}

/// On routes this filter lets through unauthenticated, consumer headers can only be forged.
/// (Removing unconditionally costs one host call; checking first would cost one too.)
fn scrub_consumer_headers(host: &dyn Host, config: &Config) {
    for h in [&config.consumer_id_header, &config.consumer_plan_header]
        .into_iter()
        .flatten()
    {
        host.remove_request_header(h);
    }
}

fn strip_credential(host: &dyn Host, config: &Config, head: &RequestHead, locations: &[Location]) {
    for loc in locations {
        match loc {
            Location::Header(name) => host.remove_request_header(name),
            Location::Authorization => strip_authorization(host, head, config),
            Location::Query(name) => {
                let path = remove_query_param(head.path_and_query(), name);
                host.set_request_header(":path", path.as_bytes());
            }
            Location::Cookie(name) => {
                let rest: Vec<Vec<u8>> = head
                    .all("cookie")
                    .filter_map(|c| remove_cookie(c, name))
                    .collect();
                if rest.is_empty() {
                    host.remove_request_header("cookie");
                } else {
                    host.set_request_header("cookie", &rest.join(b"; ".as_slice()));
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;

/// Removes only our scheme's credentials from `Authorization`: another scheme's credentials
/// (a Bearer token for the next filter) sent alongside stay, rejoined as Envoy joined them.
fn strip_authorization(host: &dyn Host, head: &RequestHead, config: &Config) {
    let ours = |part: &[u8]| {
        config.sources.iter().any(|s| match s {
            crate::config::Source::Authorization(scheme) => credential::is_scheme(part, scheme),
            _ => false,
        })
    };
    let rest: Vec<&[u8]> = head
        .all("authorization")
        .flat_map(|v| v.split(|b| *b == b','))
        .filter(|part| !ours(part))
        .collect();
    if rest.is_empty() {
        host.remove_request_header("authorization");
    } else {
        host.set_request_header("authorization", &rest.join(b",".as_slice()));
    }
}
