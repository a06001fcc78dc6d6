//! Applying the decisions of [`crate::policy`] through the small [`Io`] trait, one exchange
//! (request and its response) at a time. Unit-tested with a recording mock; the proxy-wasm
//! implementation is in `filter.rs`.

use crate::config::{Config, Rule};
use crate::graphql::{self, Call};
use crate::headers::Edit;
use crate::policy::{self, BodyAction, BodyOutcome, Request, RequestPlan, Skip};
use kit::denial::{Denial, Format, Reply};
use kit::identity::{Identity, PROPERTY};
use kit::request::RequestHead;
use std::rc::Rc;

/// The filter-state key where `scope-authz` publishes verified JWT claims (a JSON object).
pub const CLAIMS_PROPERTY: &str = kit::context::CLAIMS;
const MAX_CLAIMS_BYTES: usize = 16 * 1024;

pub use kit::host::Side;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Stop iteration (headers) or buffer (body).
    Pause,
}

/// Counters, in the order of [`COUNTER_NAMES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Applied = 0,
    NoRule,
    SkippedNotJson,
    SkippedEncoded,
    SkippedOversize,
    SkippedInvalid,
    Denied,
    GraphQl,
    GraphQlErrors,
    UnsafeValue,
}

pub const COUNTER_NAMES: [&str; 10] = [
    "apim.transform.applied",
    "apim.transform.skipped.no_rule",
    "apim.transform.skipped.not_json",
    "apim.transform.skipped.encoded",
    "apim.transform.skipped.oversize",
    "apim.transform.errors.invalid_body",
    "apim.transform.errors.denied",
    "apim.transform.graphql.calls",
    "apim.transform.errors.graphql",
    // Also counted in `errors.denied`: a request refused because a value built from it (a
    // header value, a rewritten path) cannot be sent on.
    "apim.transform.errors.unsafe_value",
];

/// The host operations the transform filter needs.
pub trait Io {
    /// Every header of one side, one entry per copy, in one host call.
    fn headers(&self, side: Side) -> Vec<(String, Vec<u8>)>;
    fn route_name(&self) -> Option<String>;
    fn property(&self, key: &str) -> Option<Vec<u8>>;
    /// One request header (copies joined by `,`).
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        let values: Vec<Vec<u8>> = self
            .headers(Side::Request)
            .into_iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v)
            .collect();
        (!values.is_empty()).then(|| values.join(b",".as_slice()))
    }
    /// The published identity, if there is a valid one.
    fn identity(&self) -> Option<Identity> {
        self.property(PROPERTY).and_then(|b| Identity::decode(&b))
    }
    fn edit(&self, side: Side, edit: &Edit);
    /// Whether edits one by one cost no more than replacing the whole map (see
    /// `kit::host::Host::header_edits_are_cheap`).
    fn edits_are_cheap(&self) -> bool {
        false
    }
    /// Replaces every header of one side (pseudo-headers included) in one host call.
    fn set_headers(&self, side: Side, headers: &[(String, Vec<u8>)]);
    /// The buffered body of one side (`size` bytes).
    fn body(&self, side: Side, size: usize) -> Option<Vec<u8>>;
    fn set_body(&self, side: Side, size: usize, body: &[u8]);
    fn send_reply(&self, reply: &Reply);
    /// Starts the GraphQL call; `false` if the host refused it.
    fn dispatch(&self, call: &Call) -> bool;
    fn count(&self, counter: Counter);
    fn warn(&self, message: &str);
}

/// Applies `edits` to a header list (lowercase names, one entry per copy).
pub fn apply_edits(headers: &mut Vec<(String, Vec<u8>)>, edits: &[Edit]) {
    for e in edits {
        match e {
            Edit::Remove(n) => headers.retain(|(k, _)| k != n),
            Edit::Set(n, v) => match headers.iter().position(|(k, _)| k == n) {
                Some(at) => {
                    let mut i = 0;
                    headers.retain(|(k, _)| {
                        let keep = i == at || k != n;
                        i += 1;
                        keep
                    });
                    if let Some(slot) = headers.get_mut(at) {
                        slot.1.clone_from(v);
                    }
                }
                None => headers.push((n.clone(), v.clone())),
            },
            Edit::Append(n, v) => headers.push((n.clone(), v.clone())),
        }
    }
}

/// Sends `edits` to the host: one call each when there is one, otherwise the whole edited map
/// in one call (each host call costs about 2 µs on V8, a map of ~20 headers about the same).
fn send_edits(io: &dyn Io, side: Side, current: Option<Vec<(String, Vec<u8>)>>, edits: &[Edit]) {
    match (edits, current) {
        ([], _) => {}
        (many, Some(mut all))
            if many.len() > 1 && all.len() < kit::request::MAX_HEADERS && !io.edits_are_cheap() =>
        {
            apply_edits(&mut all, many);
            io.set_headers(side, &all);
        }
        (each, _) => {
            for e in each {
                io.edit(side, e);
            }
        }
    }
}

/// One request and its response.
#[derive(Debug)]
pub struct Exchange {
    config: Rc<Config>,
    rule: Option<Rc<Rule>>,
    req: Request,
    request_body: BodyAction,
    response: Option<(usize, BodyAction)>,
}

fn skip_counter(s: Skip) -> Counter {
    match s {
        Skip::NotJson => Counter::SkippedNotJson,
        Skip::Encoded => Counter::SkippedEncoded,
        Skip::Oversize => Counter::SkippedOversize,
        Skip::Invalid => Counter::SkippedInvalid,
    }
}

impl Exchange {
    pub fn new(config: Rc<Config>) -> Self {
        Self {
            config,
            rule: None,
            req: Request::default(),
            request_body: BodyAction::None,
            response: None,
        }
    }

    fn deny(&self, io: &dyn Io, d: &Denial) -> Action {
        io.count(Counter::Denied);
        // The content-type as read with the rest of the head when a rule matched (no refusal
        // comes before that): the request headers may be Envoy's no more (a body refusal), and
        // reading them then would trap.
        let format = Format::for_content_type(
            self.req.head.get("content-type"),
            Format::Problem,
            crate::stage::SPEC.name,
        );
        io.send_reply(&d.render(format));
        Action::Pause
    }

    pub fn on_request_headers(&mut self, io: &dyn Io, end_of_stream: bool) -> Action {
        let config = Rc::clone(&self.config);
        // The rules are matched on the few headers they read; the whole map is copied only
        // once one applies.
        self.req.head = RequestHead::new(
            config
                .fetch
                .match_headers
                .iter()
                .filter_map(|n| io.request_header(n).map(|v| (n.clone(), v)))
                .collect(),
        );
        if config.fetch.route_name {
            self.req.route_name = io.route_name();
        }
        let Some(rule) = policy::find_rule(&config, &self.req).cloned() else {
            io.count(Counter::NoRule);
            return Action::Continue;
        };
        let raw = io.headers(Side::Request);
        self.req.head = RequestHead::new(raw.clone());
        if config.fetch.identity {
            self.req.identity = io.identity();
        }
        if config.fetch.claims {
            self.req.claims = io
                .property(CLAIMS_PROPERTY)
                .filter(|b| b.len() <= MAX_CLAIMS_BYTES)
                .and_then(|b| serde_json::from_slice(&b).ok());
        }
        self.req.captures = policy::captures(&rule, self.req.head.path());
        let plan = policy::plan_request(&config, &rule, &self.req, end_of_stream);
        self.rule = Some(rule);
        match plan {
            RequestPlan::NoRule => Action::Continue,
            RequestPlan::Deny(d) => self.deny(io, &d),
            RequestPlan::Unsafe(d) => {
                io.count(Counter::UnsafeValue);
                self.deny(io, &d)
            }
            RequestPlan::GraphQl(call) => {
                io.count(Counter::GraphQl);
                if io.dispatch(&call) {
                    Action::Pause
                } else {
                    io.count(Counter::GraphQlErrors);
                    io.send_reply(
                        &Denial::new(
                            502,
                            "graphql_upstream_error",
                            "Bad gateway",
                            "The GraphQL server cannot be called.",
                        )
                        .render(Format::Problem),
                    );
                    Action::Pause
                }
            }
            RequestPlan::Apply {
                edits,
                path,
                method,
                body,
            } => {
                let mut edits = edits;
                if let Some(p) = path {
                    edits.push(Edit::Set(":path".into(), p.into_bytes()));
                }
                if let Some(m) = method {
                    edits.push(Edit::Set(":method".into(), m.into_bytes()));
                }
                send_edits(io, Side::Request, Some(raw), &edits);
                self.request_body = body;
                match body {
                    BodyAction::Skip(s) => io.count(skip_counter(s)),
                    BodyAction::None => io.count(Counter::Applied),
                    // Headers go on (Envoy 1.40 withholds body callbacks from a filter that
                    // paused its headers); the body is held in `on_request_body`.
                    BodyAction::Buffer => {}
                }
                Action::Continue
            }
        }
    }

    pub fn on_request_body(&mut self, io: &dyn Io, size: usize, end_of_stream: bool) -> Action {
        if self.request_body != BodyAction::Buffer {
            return Action::Continue;
        }
        let Some(rule) = self.rule.clone() else {
            return Action::Continue;
        };
        self.body_phase(io, Side::Request, &rule.request.body, size, end_of_stream)
    }

    /// A body followed by trailers never reports its end in the body callback, so it cannot be
    /// transformed. Rather than letting the trailers release it untransformed unnoticed, it is
    /// treated as an invalid body: refused under `on_invalid_body: reject` (the default),
    /// otherwise passed and counted.
    pub fn on_request_trailers(&mut self, io: &dyn Io) -> Action {
        if self.request_body != BodyAction::Buffer {
            return Action::Continue;
        }
        self.request_body = BodyAction::None;
        if self.config.on_invalid_body == crate::config::OnInvalid::Reject {
            return self.deny(io, &policy::body_with_trailers());
        }
        io.count(Counter::SkippedInvalid);
        Action::Continue
    }

    /// A response body followed by trailers passes untouched and is counted (a response that
    /// already started cannot be refused).
    pub fn on_response_trailers(&mut self, io: &dyn Io) -> Action {
        if let Some((_, body)) = self.response.as_mut() {
            if *body == BodyAction::Buffer {
                *body = BodyAction::None;
                io.warn("transform: a response body ended in trailers and was not transformed");
                io.count(Counter::SkippedInvalid);
            }
        }
        Action::Continue
    }

    fn body_phase(
        &mut self,
        io: &dyn Io,
        side: Side,
        ops: &[crate::body::BodyOp],
        size: usize,
        end_of_stream: bool,
    ) -> Action {
        let request = side == Side::Request;
        let stop = |this: &mut Self| {
            if request {
                this.request_body = BodyAction::None;
            } else if let Some((_, b)) = this.response.as_mut() {
                *b = BodyAction::None;
            }
        };
        if !end_of_stream {
            if size > self.config.max_body_bytes {
                stop(self);
                if request && self.config.on_oversize == crate::config::OnOversize::Reject {
                    return self.deny(io, &policy::oversize(&self.config));
                }
                io.count(Counter::SkippedOversize);
                return Action::Continue;
            }
            return Action::Pause;
        }
        stop(self);
        let body = io.body(side, size).unwrap_or_default();
        match policy::finish_body(&self.config, ops, &self.req, &body, request) {
            BodyOutcome::Replace(out) => {
                io.set_body(side, size, &out);
                io.count(Counter::Applied);
                Action::Continue
            }
            BodyOutcome::Untouched(s) => {
                io.count(skip_counter(s));
                Action::Continue
            }
            BodyOutcome::Deny(d) => self.deny(io, &d),
        }
    }

    pub fn on_response_headers(&mut self, io: &dyn Io, end_of_stream: bool) -> Action {
        let Some(rule) = self.rule.clone() else {
            return Action::Continue;
        };
        if rule.response.is_empty() || rule.graphql.is_some() {
            return Action::Continue;
        }
        let raw = io.headers(Side::Response);
        let headers = RequestHead::new(raw.clone());
        match policy::plan_response(&self.config, &rule, &self.req, &headers, end_of_stream) {
            Ok(None) => Action::Continue,
            Ok(Some(plan)) => {
                send_edits(io, Side::Response, Some(raw), &plan.edits);
                self.response = Some((plan.index, plan.body));
                match plan.body {
                    BodyAction::Buffer => Action::Continue,
                    BodyAction::Skip(s) => {
                        io.count(skip_counter(s));
                        Action::Continue
                    }
                    BodyAction::None => {
                        io.count(Counter::Applied);
                        Action::Continue
                    }
                }
            }
            Err(_) => {
                io.warn(
                    "transform: a response header value is too large; headers left as they are",
                );
                io.count(Counter::SkippedInvalid);
                Action::Continue
            }
        }
    }

    pub fn on_response_body(&mut self, io: &dyn Io, size: usize, end_of_stream: bool) -> Action {
        let Some((index, BodyAction::Buffer)) = self.response else {
            return Action::Continue;
        };
        let Some(rule) = self.rule.clone() else {
            return Action::Continue;
        };
        let Some(ops) = policy::response_ops(&rule, index) else {
            return Action::Continue;
        };
        self.body_phase(io, Side::Response, &ops.body, size, end_of_stream)
    }

    /// The GraphQL server answered (or not: `status` is `None`).
    /// The most a GraphQL answer may hold: a larger one is refused without being read.
    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    pub fn on_graphql_response(
        &mut self,
        io: &dyn Io,
        status: Option<u16>,
        answer: &graphql::Answer<'_>,
    ) {
        let Some(g) = self.rule.as_ref().and_then(|r| r.graphql.as_ref()) else {
            return;
        };
        let reply = graphql::respond(g, status, answer, self.config.max_body_bytes);
        if reply.status == 200 {
            io.count(Counter::Applied);
        } else {
            io.count(Counter::GraphQlErrors);
        }
        io.send_reply(&reply);
    }
}
