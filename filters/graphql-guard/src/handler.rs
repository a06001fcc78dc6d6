//! Applying the guard through the host: read what the config needs, find the operations,
//! check them, then send the denial or publish the cost, and count. Generic over
//! `kit::host::Host`, so every effect is unit-tested with the mock; `filter.rs` only wires it to
//! proxy-wasm (and hands over the buffered body).

use crate::apq::ApqStore;
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
        "apim.graphql_guard.path_ambiguous".to_string(),
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
/// A `skip` rule passed over because the path is ambiguous (the request is guarded).
const PATH_AMBIGUOUS: usize = 3;

fn counter_index(code: Code) -> usize {
    4 + Code::ALL.iter().position(|c| *c == code).unwrap_or(0)
}

/// What the request-headers callback decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadersAction {
    /// Not (or no longer) our business: continue.
    Continue,
    /// A local reply was sent.
    Stop,
    /// A body to judge: buffer it and call [`on_request_body`] with this state.
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
    /// A safe method (GET, HEAD) carrying a body: mutations are refused as over GET.
    pub safe: bool,
}

/// The GraphQL-over-HTTP parameters a URL may carry.
const URL_PARAMS: [&str; 4] = ["query", "extensions", "operationName", "variables"];

pub fn on_request_headers(
    host: &dyn Host,
    apq: &dyn ApqStore,
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
        let found = config.rules.lookup(&input);
        if found.refused_ambiguous {
            counters.inc(host, PATH_AMBIGUOUS);
        }
        match found.rule {
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
    // An upgraded stream (WebSocket over HTTP/1 `upgrade`, HTTP/2 extended CONNECT) carries
    // operations in frames the guard does not read: refused, whatever warn-only says.
    let upgrade = head.get("upgrade").is_some_and(|v| !v.is_empty());
    if upgrade || head.contains(":protocol") {
        let v = policy::violation(
            Code::UpgradeNotAllowed,
            "protocol upgrades (GraphQL over WebSocket) are not allowed on this route",
        );
        return refuse(v, false);
    }
    // Methods compare case-insensitively (HTTP/2 lets a client send `post`).
    let method = head.method().to_ascii_uppercase();
    let query = head.query();
    let in_url = query.is_some_and(|q| {
        URL_PARAMS
            .iter()
            .any(|p| kit::query::query_values(q, p).next().is_some())
    });
    if !config.methods.iter().any(|m| *m == method) {
        // A CORS preflight (or any OPTIONS) that carries nothing passes.
        if method == "OPTIONS" && end_of_stream && !in_url {
            return HeadersAction::Continue;
        }
        let mut v = policy::violation(
            Code::MethodNotAllowed,
            format!(
                "GraphQL requests must use one of: {} (got {})",
                config.allow,
                clip_method(&method)
            ),
        );
        v.denial = v.denial.with_header("allow", config.allow.clone());
        return refuse(v, false);
    }
    let safe = method == "GET" || method == "HEAD";
    if end_of_stream {
        if method == "POST" {
            let v = policy::violation(Code::BadRequest, "the request has no body");
            return refuse(v, false);
        }
        // No body: the URL is the request.
        if let Some(v) = check_bytes(config, &limits, query.map_or(0, str::len)) {
            return refuse(v, true);
        }
        return match from_query_string(query) {
            Ok(Extracted::NotGraphql) => HeadersAction::Continue,
            Ok(Extracted::Single(req)) => {
                let checked = check(config, &limits, safe, std::slice::from_ref(&req), apq);
                finish(host, config, counters, format, checked, false)
            }
            Ok(Extracted::Batch(reqs)) => {
                let checked = check(config, &limits, safe, &reqs, apq);
                finish(host, config, counters, format, checked, false)
            }
            Err(e) => refuse(transport_violation(config, &e), false),
        };
    }
    // A body. Some servers prefer GraphQL parameters in the URL to the body: the guard checks
    // the body, so a request with a body may not carry them in its URL.
    if in_url {
        let v = policy::violation(
            Code::BadRequest,
            "a request with a body must carry its GraphQL parameters in the body, not the URL",
        );
        return refuse(v, false);
    }
    let kind = match body_kind(head.get_str("content-type")) {
        Ok(k) => k,
        Err(e) => return refuse(transport_violation(config, &e), false),
    };
    HeadersAction::NeedBody(Pending {
        limits,
        kind,
        format,
        safe,
    })
}

/// Methods echoed in messages are bounded.
fn clip_method(m: &str) -> &str {
    m.get(..m.len().min(32)).unwrap_or("")
}

/// `body_size` is what Envoy has buffered so far; `body` is read only at the end.
pub fn on_request_body(
    host: &dyn Host,
    apq: &dyn ApqStore,
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
        Ok(Extracted::Single(req)) => check(
            config,
            &pending.limits,
            pending.safe,
            std::slice::from_ref(&req),
            apq,
        ),
        Ok(Extracted::Batch(reqs)) => check(config, &pending.limits, pending.safe, &reqs, apq),
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
