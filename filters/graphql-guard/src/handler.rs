//! Applying the guard through the host: read what the config needs, find the operations,
//! check them, then send the denial or publish the cost, and count. Generic over
//! `kit::host::Host`, so every effect is unit-tested with the mock; `filter.rs` only wires it to
//! proxy-wasm (and hands over the buffered body).

use crate::config::{Config, Limits, COST_PROPERTY};
use crate::policy::{self, check, check_bytes, transport_violation, Checked, Code, Violation};
use crate::transport::{body_kind, from_body, from_query_string, BodyKind, Extracted};
use kit::denial::Format;
use kit::host::{Host, LogLevel};
use kit::identity::{Identity, PROPERTY};
use kit::matcher::MatchInput;
use kit::metrics::Counters;
use kit::request::RequestHead;

/// Counter names: the three totals, then one per [`Code`] in `Code::ALL` order.
pub fn counter_names() -> Vec<String> {
    let mut names = vec![
        "apim.graphql_guard.checked".to_string(),
        "apim.graphql_guard.passed".to_string(),
        "apim.graphql_guard.warned".to_string(),
    ];
    for c in Code::ALL {
        names.push(format!(
            "apim.graphql_guard.rejected.{}",
            c.counter_suffix()
        ));
    }
    names
}
const CHECKED: usize = 0;
const PASSED: usize = 1;
const WARNED: usize = 2;

fn counter_index(code: Code) -> usize {
    3 + Code::ALL.iter().position(|c| *c == code).unwrap_or(0)
}

/// What the request-headers callback decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadersAction {
    /// Not (or no longer) our business: continue.
    Continue,
    /// A local reply was sent.
    Stop,
    /// A POST: buffer the body and call [`on_request_body`] with this state.
    NeedBody(Pending),
}

/// What the request-body callback decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyAction {
    Continue,
    /// Keep buffering.
    Buffer,
    Stop,
}

/// What the headers told us about a POST, kept until its body is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub limits: Limits,
    pub kind: BodyKind,
    pub format: Format,
}

pub fn on_request_headers(
    host: &dyn Host,
    config: &Config,
    counters: &Counters,
    end_of_stream: bool,
) -> HeadersAction {
    let head = RequestHead::fetch(host, &config.fetch);
    if !config.rules.is_empty() {
        let route = if config.rules.needs_route_name() {
            host.route_name()
        } else {
            None
        };
        let input = MatchInput {
            route_name: route.as_deref(),
            head: &head,
        };
        match config.rules.first(&input) {
            Some(false) => {}
            // A skipped route, or no rule for it: not a GraphQL route.
            Some(true) | None => return HeadersAction::Continue,
        }
    }
    let format = Format::for_graphql_accept(head.get_str("accept"));
    let limits = *config.limits_for(plan(host, config).as_deref());
    let refuse = |v, always_reject| {
        finish(
            host,
            config,
            counters,
            format,
            Checked::refused(v),
            always_reject,
        )
    };
    match head.method() {
        "GET" => {
            let query = head.query();
            if let Some(v) = check_bytes(config, &limits, query.map_or(0, str::len)) {
                return refuse(v, true);
            }
            match from_query_string(query) {
                Ok(Extracted::NotGraphql) => HeadersAction::Continue,
                Ok(Extracted::Single(req)) => {
                    let checked = check(config, &limits, true, std::slice::from_ref(&req));
                    finish(host, config, counters, format, checked, false)
                }
                Ok(Extracted::Batch(reqs)) => {
                    let checked = check(config, &limits, true, &reqs);
                    finish(host, config, counters, format, checked, false)
                }
                Err(e) => refuse(transport_violation(config, &e), false),
            }
        }
        "POST" => {
            // Some servers prefer GraphQL parameters in the URL to the body: the guard checks
            // the body, so a POST may not carry them in its URL.
            let in_url = head.query().is_some_and(|q| {
                ["query", "extensions", "operationName", "variables"]
                    .iter()
                    .any(|p| kit::query::query_values(q, p).next().is_some())
            });
            if in_url {
                let v = policy::violation(
                    Code::BadRequest,
                    "a POST must carry its GraphQL parameters in the body, not the URL",
                );
                return refuse(v, false);
            }
            let kind = match body_kind(head.get_str("content-type")) {
                Ok(k) => k,
                Err(e) => return refuse(transport_violation(config, &e), false),
            };
            if end_of_stream {
                let v = policy::violation(Code::BadRequest, "the request has no body");
                return refuse(v, false);
            }
            HeadersAction::NeedBody(Pending {
                limits,
                kind,
                format,
            })
        }
        // Preflights, HEAD and other methods carry no GraphQL operation.
        _ => HeadersAction::Continue,
    }
}

/// `body_size` is what Envoy has buffered so far; `body` is read only at the end.
pub fn on_request_body(
    host: &dyn Host,
    config: &Config,
    counters: &Counters,
    pending: &Pending,
    body_size: usize,
    end_of_stream: bool,
    body: impl FnOnce() -> Option<Vec<u8>>,
) -> BodyAction {
    if let Some(v) = check_bytes(config, &pending.limits, body_size) {
        // Beyond the size limit nothing is buffered further, even in warn-only mode.
        let hard = body_size > config.max_body_bytes;
        let checked = Checked::refused(v);
        return match finish(host, config, counters, pending.format, checked, hard) {
            HeadersAction::Stop => BodyAction::Stop,
            _ => BodyAction::Continue,
        };
    }
    if !end_of_stream {
        return BodyAction::Buffer;
    }
    let bytes = body().unwrap_or_default();
    let checked = match from_body(pending.kind, &bytes, config.max_batch) {
        Ok(Extracted::Single(req)) => {
            check(config, &pending.limits, false, std::slice::from_ref(&req))
        }
        Ok(Extracted::Batch(reqs)) => check(config, &pending.limits, false, &reqs),
        Ok(Extracted::NotGraphql) => return BodyAction::Continue,
        Err(e) => Checked::refused(transport_violation(config, &e)),
    };
    match finish(host, config, counters, pending.format, checked, false) {
        HeadersAction::Stop => BodyAction::Stop,
        _ => BodyAction::Continue,
    }
}

fn plan(host: &dyn Host, config: &Config) -> Option<String> {
    if !config.needs_identity() {
        return None;
    }
    host.property(&[PROPERTY])
        .and_then(|b| Identity::decode(&b))
        .and_then(|id| id.plan)
}

/// Counts, then rejects, warns or publishes the cost. `always_reject` is for the hard body cap,
/// which warn-only mode cannot lift (the body would have to be buffered).
fn finish(
    host: &dyn Host,
    config: &Config,
    counters: &Counters,
    format: Format,
    checked: Checked,
    always_reject: bool,
) -> HeadersAction {
    counters.inc(host, CHECKED);
    match checked.violation {
        Some(Violation { code, denial }) => {
            if config.warn_only && !always_reject {
                counters.inc(host, WARNED);
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "graphql-guard: warn-only: {}: {}",
                        code.as_str(),
                        denial.detail
                    ),
                );
                publish_cost(host, config, checked.cost);
                HeadersAction::Continue
            } else {
                counters.inc(host, counter_index(code));
                host.send_reply(&denial.render(format));
                HeadersAction::Stop
            }
        }
        None => {
            counters.inc(host, PASSED);
            publish_cost(host, config, checked.cost);
            HeadersAction::Continue
        }
    }
}

fn publish_cost(host: &dyn Host, config: &Config, cost: u64) {
    if config.publish_cost && config.cost.is_some() {
        host.set_property(COST_PROPERTY, cost.to_string().as_bytes());
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
