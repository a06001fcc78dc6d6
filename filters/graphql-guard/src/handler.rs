//! Applying the guard through the host: read what the config needs, find the operations,
//! check them, then send the denial or publish the cost, and count. Generic over
//! `kit::host::Host`, so every effect is unit-tested with the mock; `filter.rs` only wires it to
//! proxy-wasm (and hands over the buffered body).

use crate::apq::ApqStore;
use crate::config::{Config, Limits, WebsocketMode, COST_PROPERTY};
use crate::policy::{self, check, check_bytes, transport_violation, Checked, Code, Violation};
use crate::transport::{
    body_kind, check_names, from_body, from_query_string, has_document_id, has_graphql_params,
    looks_like_graphql, BodyKind, Extracted, TransportError,
};
use crate::ws::{self, FrameReader};
use kit::denial::Format;
use kit::host::{Host, LogLevel};
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
/// An ambiguous path that would have passed untouched (a `skip` rule, or no rule): its
/// GraphQL, if it carries any, is checked.
const PATH_AMBIGUOUS: usize = 3;

fn counter_index(code: Code) -> usize {
    4 + Code::ALL.iter().position(|c| *c == code).unwrap_or(0)
}

/// What every check reaches through: the host, the APQ registry, the config, the counters.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub host: &'a dyn Host,
    pub apq: &'a dyn ApqStore,
    pub config: &'a Config,
    pub counters: &'a Counters,
}

impl<'a> Env<'a> {
    pub fn new(
        host: &'a dyn Host,
        apq: &'a dyn ApqStore,
        config: &'a Config,
        counters: &'a Counters,
    ) -> Self {
        Self {
            host,
            apq,
            config,
            counters,
        }
    }
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
    /// A WebSocket to inspect (`websocket: inspect`): remove `sec-websocket-extensions`, let the
    /// upgrade through and hand every chunk of the client's stream to [`on_websocket_data`].
    Websocket(Limits),
}

/// What the WebSocket data callback decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsAction {
    Continue,
    /// A violation or an unreadable frame: drop this chunk and reset the stream.
    Close,
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
    /// What `content-type` says the body is (an unsupported type is refused once the body
    /// proves not to be empty).
    pub kind: Result<BodyKind, TransportError>,
    pub format: Format,
    /// A safe method (GET, HEAD): mutations are refused as over GET.
    pub safe: bool,
    /// A method other than POST: its URL, judged instead if the body turns out empty (an HTTP/2
    /// GET may end with an empty DATA frame).
    pub url: Option<String>,
    /// An ambiguous path no rule guards: the body is checked only if it looks like GraphQL.
    pub soft: bool,
}

pub fn on_request_headers(env: Env<'_>, end_of_stream: bool) -> HeadersAction {
    let Env {
        host,
        config,
        counters,
        ..
    } = env;
    let head = RequestHead::fetch(host, &config.fetch);
    // An ambiguous path that no rule guards (or that only a `skip` rule matches) may still be
    // the GraphQL route to the upstream (`/api/..;/graphql`, `/api/..%2Fgraphql`): whatever
    // GraphQL it carries is checked (`soft`), anything else passes.
    let mut soft = false;
    // The normalised path meets a `skip` rule that does not read the path (`methods`, `hosts`
    // only: it is not guarded), its widest reading an earlier guarding rule. The only way two
    // readings meet different values here: every path-dependent `skip` is guarded.
    let mut conflict = false;
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
        conflict = found.conflict;
        match found.rule {
            Some(false) => {}
            // A skipped route, or no rule for it: not a GraphQL route, unless the path is
            // ambiguous.
            Some(true) | None => {
                if !head.path_is_ambiguous() {
                    return HeadersAction::Continue;
                }
                soft = true;
            }
        }
        if found.refused_ambiguous || soft {
            counters.inc(host, PATH_AMBIGUOUS);
        }
    }
    let format = Format::for_graphql_accept(head.get_str("accept"));
    let (limits, identity_ok) = match plan(host, config) {
        Ok(p) => (*config.limits_for(p.as_deref()), true),
        Err(()) => (config.limits, false),
    };
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
    if conflict {
        // The server may serve the guarded route: checking only what looks like GraphQL
        // (`soft`) would let through what the guarded route refuses (a form-encoded body).
        let detail = kit::denial::Denial::path_ambiguous().detail;
        return refuse(policy::violation(Code::PathAmbiguous, detail), false);
    }
    let identity_refused = || {
        let v = policy::violation(
            Code::IdentityInvalid,
            "the consumer identity (apim_consumer) cannot be read",
        );
        refuse(v, false)
    };
    // An upgraded stream (WebSocket over HTTP/1 `upgrade`, HTTP/2 extended CONNECT) carries
    // operations in frames the guard reads only with `websocket: inspect`: refused otherwise,
    // whatever warn-only says.
    let upgrade = head.get("upgrade").is_some_and(|v| !v.is_empty());
    if upgrade || head.contains(":protocol") {
        let offered = head.get_str("sec-websocket-protocol");
        if soft && !offered.is_some_and(|p| p.to_ascii_lowercase().contains("graphql")) {
            return HeadersAction::Continue;
        }
        if !identity_ok {
            return identity_refused();
        }
        let websocket = [head.get_str("upgrade"), head.get_str(":protocol")]
            .into_iter()
            .flatten()
            .any(|v| v.trim().eq_ignore_ascii_case("websocket"));
        if config.websocket == WebsocketMode::Inspect
            && websocket
            && ws::subprotocols_understood(offered)
        {
            return HeadersAction::Websocket(limits);
        }
        let v = policy::violation(
            Code::UpgradeNotAllowed,
            "protocol upgrades (GraphQL over WebSocket) are not allowed on this route",
        );
        return refuse(v, true);
    }
    // Methods compare case-insensitively (HTTP/2 lets a client send `post`).
    let method = head.method().to_ascii_uppercase();
    let safe = method == "GET" || method == "HEAD";
    let query = head.query();
    let pass = &config.document_id_parameters;
    if soft {
        let carries = query
            .is_some_and(|q| has_graphql_params(q).unwrap_or(true) || has_document_id(q, pass));
        if !carries {
            if end_of_stream {
                return HeadersAction::Continue;
            }
            let Ok(kind) = body_kind(head.get_str("content-type")) else {
                return HeadersAction::Continue;
            };
            return HeadersAction::NeedBody(Pending {
                limits,
                kind: Ok(kind),
                format,
                safe,
                url: (method != "POST").then(|| query.unwrap_or("").to_string()),
                soft: true,
            });
        }
    }
    if !identity_ok {
        return identity_refused();
    }
    let in_url = match query.map(|q| check_names(q, pass).and_then(|()| has_graphql_params(q))) {
        None => false,
        Some(Ok(found)) => found,
        Some(Err(e)) => return refuse(transport_violation(config, &e), false),
    };
    if !config.methods.contains(&method) {
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
    if end_of_stream {
        if method == "POST" {
            let v = policy::violation(Code::BadRequest, "the request has no body");
            return refuse(v, false);
        }
        return check_url(env, format, &limits, safe, query);
    }
    // A body. Some servers prefer GraphQL parameters in the URL to the body: the guard checks
    // the body, so a POST with a body may not carry them in its URL (another method's URL is
    // judged once its body is known: refused beside a non-empty body, checked alone otherwise).
    if in_url && method == "POST" {
        return refuse(both_url_and_body(), false);
    }
    let kind = body_kind(head.get_str("content-type"));
    if method == "POST" {
        if let Err(e) = &kind {
            return refuse(transport_violation(config, e), false);
        }
    }
    HeadersAction::NeedBody(Pending {
        limits,
        kind,
        format,
        safe,
        url: (method != "POST").then(|| query.unwrap_or("").to_string()),
        soft: false,
    })
}

fn both_url_and_body() -> policy::Violation {
    policy::violation(
        Code::BadRequest,
        "a request with a body must carry its GraphQL parameters in the body, not the URL",
    )
}

/// A request without a body: the URL is the request.
fn check_url(
    env: Env<'_>,
    format: Format,
    limits: &Limits,
    safe: bool,
    query: Option<&str>,
) -> HeadersAction {
    let Env {
        host,
        apq,
        config,
        counters,
    } = env;
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
    if let Some(v) = check_bytes(config, limits, query.map_or(0, str::len)) {
        return refuse(v, true);
    }
    match from_query_string(query, &config.document_id_parameters) {
        Ok(Extracted::NotGraphql) => HeadersAction::Continue,
        Ok(Extracted::Single(req)) => {
            let checked = check(config, limits, safe, std::slice::from_ref(&req), apq);
            finish(host, config, counters, format, checked, false)
        }
        Ok(Extracted::Batch(reqs)) => {
            let checked = check(config, limits, safe, &reqs, apq);
            finish(host, config, counters, format, checked, false)
        }
        Err(e) => refuse(transport_violation(config, &e), false),
    }
}

/// Methods echoed in messages are bounded.
fn clip_method(m: &str) -> &str {
    m.get(..m.len().min(32)).unwrap_or("")
}

/// One chunk of an inspected WebSocket's client stream: every operation it completes is checked.
pub fn on_websocket_data(
    env: Env<'_>,
    limits: &Limits,
    reader: &mut FrameReader,
    bytes: &[u8],
) -> WsAction {
    let Env {
        host,
        apq,
        config,
        counters,
    } = env;
    let messages = match reader.feed(bytes) {
        Ok(m) => m,
        Err(e) => return ws_refused(env, policy::violation(Code::BadRequest, e.message()), true),
    };
    for message in messages {
        let req = match ws::operation(&message, &config.document_id_parameters) {
            Ok(Some(req)) => req,
            Ok(None) => continue,
            Err(e) => {
                return ws_refused(env, policy::violation(Code::BadRequest, e.message()), false)
            }
        };
        // The plan's size limit holds for each operation, as over HTTP.
        if let Some(v) = check_bytes(config, limits, message.len()) {
            counters.inc(host, CHECKED);
            if ws_refused(env, v, false) == WsAction::Close {
                return WsAction::Close;
            }
            continue;
        }
        let checked = check(config, limits, false, std::slice::from_ref(&req), apq);
        counters.inc(host, CHECKED);
        match checked.violation {
            None => counters.inc(host, PASSED),
            Some(v) => {
                if ws_refused(env, v, false) == WsAction::Close {
                    return WsAction::Close;
                }
            }
        }
    }
    WsAction::Continue
}

/// A chunk of an inspected WebSocket that could not be read: the stream is reset.
pub fn on_websocket_unreadable(env: Env<'_>) -> WsAction {
    let v = policy::violation(Code::BadRequest, "the WebSocket stream could not be read");
    ws_refused(env, v, true)
}

/// Counts and logs a refusal on a WebSocket; closes unless warn-only (and the stream is still
/// readable).
fn ws_refused(env: Env<'_>, v: Violation, unreadable: bool) -> WsAction {
    let Env {
        host,
        config,
        counters,
        ..
    } = env;
    let warn = config.warn_only && !unreadable;
    counters.inc(host, if warn { WARNED } else { counter_index(v.code) });
    host.log(
        LogLevel::Warn,
        &format!(
            "graphql-guard: websocket{}: {}: {}",
            if warn { " (warn-only)" } else { "" },
            v.code.as_str(),
            v.denial.detail
        ),
    );
    if warn {
        WsAction::Continue
    } else {
        WsAction::Close
    }
}

/// `body_size` is what Envoy has buffered so far; `body` is read only at the end.
pub fn on_request_body(
    env: Env<'_>,
    pending: &Pending,
    body_size: usize,
    end_of_stream: bool,
    body: impl FnOnce() -> Option<Vec<u8>>,
) -> BodyAction {
    let Env {
        host,
        apq,
        config,
        counters,
    } = env;
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
    // A body that cannot be read is refused, never judged as empty (only a body Envoy reports
    // as zero bytes is empty).
    let read = if body_size == 0 {
        Some(Vec::new())
    } else {
        body()
    };
    let Some(bytes) = read else {
        let v = policy::violation(Code::BadRequest, "the request body could not be read");
        return match finish(
            host,
            config,
            counters,
            pending.format,
            Checked::refused(v),
            true,
        ) {
            HeadersAction::Stop => BodyAction::Stop,
            _ => BodyAction::Continue,
        };
    };
    // An ambiguous path no rule guards: only a body that looks like GraphQL is checked.
    if pending.soft {
        let graphql = pending
            .kind
            .as_ref()
            .is_ok_and(|k| !bytes.is_empty() && looks_like_graphql(*k, &bytes));
        if !graphql {
            return BodyAction::Continue;
        }
    }
    if let Some(url) = &pending.url {
        let query = (!url.is_empty()).then_some(url.as_str());
        if bytes.is_empty() {
            let action = check_url(env, pending.format, &pending.limits, pending.safe, query);
            return match action {
                HeadersAction::Stop => BodyAction::Stop,
                _ => BodyAction::Continue,
            };
        }
        // A `;`-hidden parameter was refused at the headers: only `&` is left here.
        if query.is_some_and(|q| has_graphql_params(q).unwrap_or(true)) {
            let checked = Checked::refused(both_url_and_body());
            return match finish(host, config, counters, pending.format, checked, false) {
                HeadersAction::Stop => BodyAction::Stop,
                _ => BodyAction::Continue,
            };
        }
    }
    let kind = match &pending.kind {
        Ok(k) => *k,
        Err(e) => {
            let checked = Checked::refused(transport_violation(config, e));
            return match finish(host, config, counters, pending.format, checked, false) {
                HeadersAction::Stop => BodyAction::Stop,
                _ => BodyAction::Continue,
            };
        }
    };
    let checked = match from_body(
        kind,
        &bytes,
        config.max_batch,
        &config.document_id_parameters,
    ) {
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

/// The caller's plan; an error when `apim_consumer` is present but does not decode (too large,
/// or not an identity): the plan, and so the limits, cannot be known.
fn plan(host: &dyn Host, config: &Config) -> Result<Option<String>, ()> {
    if !config.needs_identity() {
        return Ok(None);
    }
    match host.identity() {
        None => Ok(None),
        Some(id) => id.map(|id| id.plan).ok_or(()),
    }
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
    publish_operation(host, config, &checked.operations);
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
                // GraphQL errors for a GraphQL client, whatever the phase: the body may be judged
                // after the request headers went upstream, when reading them would trap.
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

/// Filter state for the access log: the checked operations' names, comma-separated
/// (`publish_operation`). Names are GraphQL names, each at most 128 bytes; at most 8 are kept.
pub const OPERATION_PROPERTY: &str = "apim_operation";

fn publish_operation(host: &dyn Host, config: &Config, operations: &[String]) {
    if config.publish_operation && !operations.is_empty() {
        let kept: Vec<&str> = operations.iter().take(8).map(String::as_str).collect();
        host.set_property(OPERATION_PROPERTY, kept.join(",").as_bytes());
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
