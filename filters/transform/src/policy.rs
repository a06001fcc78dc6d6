//! The pure decisions: which rule applies, what changes on the request, what changes on the
//! response, and what happens to a body. No host calls here; the glue applies the results.

use crate::body::{self, is_json, BodyError};
use crate::config::{Config, OnInvalid, OnOversize, ResponseOps, Rule};
use crate::graphql::{self, Call};
use crate::headers::Edit;
use crate::template::{Ctx, Refused};
use kit::denial::Denial;
use kit::identity::Identity;
use kit::matcher::MatchInput;
use kit::request::RequestHead;
use serde_json::Value;
use std::rc::Rc;

/// The request as the filter saw it, kept for the body and response phases.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub head: RequestHead,
    pub route_name: Option<String>,
    pub identity: Option<Identity>,
    pub claims: Option<Value>,
    pub captures: Vec<Option<String>>,
}

impl Request {
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            head: &self.head,
            captures: &self.captures,
            identity: self.identity.as_ref(),
            claims: self.claims.as_ref(),
        }
    }
}

/// Why a body was forwarded untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    NotJson,
    Encoded,
    Oversize,
    Invalid,
}

/// What to do with the body that follows a set of headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyAction {
    /// No body operation applies (or there is no body).
    None,
    /// Buffer the body and call [`finish_body`] at its end.
    Buffer,
    /// A body operation applies, but this body is forwarded untouched.
    Skip(Skip),
}

#[derive(Debug, Clone, PartialEq)]
pub enum RequestPlan {
    /// No rule matched.
    NoRule,
    /// Answer from a GraphQL call instead of the upstream.
    GraphQl(Call),
    Deny(Denial),
    /// A value built from the request cannot be sent on (counted as `errors.unsafe_value`).
    Unsafe(Denial),
    Apply {
        edits: Vec<Edit>,
        /// The new `:path`, if it changed.
        path: Option<String>,
        method: Option<String>,
        body: BodyAction,
    },
}

/// The first matching rule.
pub fn find_rule<'c>(config: &'c Config, req: &Request) -> Option<&'c Rc<Rule>> {
    config.rules.first(&MatchInput {
        route_name: req.route_name.as_deref(),
        head: &req.head,
    })
}

/// Capture groups of the rule's `captures` regex on the request path (empty when it does not
/// match, so `{{path.1}}` renders empty).
pub fn captures(rule: &Rule, path: &str) -> Vec<Option<String>> {
    rule.captures
        .as_ref()
        .and_then(|re| re.captures(path))
        .map(|c| {
            c.iter()
                .map(|m| m.map(|m| m.as_str().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The 400 for a value built from the request that cannot be sent on. The detail names the
/// header, never the value (it may carry whatever the client wanted echoed).
pub fn refused(r: &Refused) -> Denial {
    match r {
        Refused::TooLarge => Denial::new(
            400,
            "transform_value_too_large",
            "Invalid request",
            "A value computed from the request is too large.",
        ),
        Refused::UnsafeHeader(name, why) => Denial::new(
            400,
            "unsafe_header_value",
            "Invalid request",
            format!(
                "The value computed from the request for header \"{name}\" {}.",
                why.describe()
            ),
        ),
        Refused::AmbiguousPath => Denial::new(
            400,
            "unsafe_path",
            "Invalid request",
            "The path computed from the request would contain a dot segment, an encoded \
             separator or an empty segment.",
        ),
    }
}

/// Whether the body described by these headers can be transformed.
fn body_action(
    config: &Config,
    headers: &RequestHead,
    end_of_stream: bool,
) -> Result<BodyAction, Denial> {
    if end_of_stream {
        return Ok(BodyAction::None);
    }
    if !headers.get("content-type").is_some_and(is_json) {
        return Ok(BodyAction::Skip(Skip::NotJson));
    }
    if headers
        .get("content-encoding")
        .is_some_and(|e| !e.eq_ignore_ascii_case(b"identity"))
    {
        return Ok(BodyAction::Skip(Skip::Encoded));
    }
    let declared = headers
        .get_str("content-length")
        .and_then(|l| l.trim().parse::<usize>().ok());
    if declared.is_some_and(|l| l > config.max_body_bytes) {
        return match config.on_oversize {
            OnOversize::Pass => Ok(BodyAction::Skip(Skip::Oversize)),
            OnOversize::Reject => Err(oversize(config)),
        };
    }
    Ok(BodyAction::Buffer)
}

/// A request body that ends in trailers is never seen whole by the body callback.
pub fn body_with_trailers() -> Denial {
    Denial::new(
        400,
        "body_with_trailers",
        "Invalid request",
        "A request body followed by trailers cannot be transformed.",
    )
}

/// A request body this rule would edit but cannot read: not declared JSON, or encoded.
pub fn unsupported_body() -> Denial {
    Denial::new(
        415,
        "unsupported_body",
        "Unsupported body",
        "This route edits JSON request bodies: send an unencoded application/json body.",
    )
}

pub fn oversize(config: &Config) -> Denial {
    Denial::new(
        413,
        "body_too_large",
        "Payload too large",
        format!(
            "The request body is larger than {} bytes.",
            config.max_body_bytes
        ),
    )
}

/// Plans the request side for `rule` (found with [`find_rule`]; `req.captures` filled).
pub fn plan_request(
    config: &Config,
    rule: &Rule,
    req: &Request,
    end_of_stream: bool,
) -> RequestPlan {
    let ctx = req.ctx();
    if let Some(g) = &rule.graphql {
        return match graphql::build(g, &ctx) {
            Ok(call) => RequestPlan::GraphQl(call),
            Err(d) => RequestPlan::Deny(d),
        };
    }
    let ops = &rule.request;
    let current: Vec<(String, Vec<u8>)> = ops
        .headers
        .names_read()
        .flat_map(|n| req.head.all(n).map(move |v| (n.to_string(), v.to_vec())))
        .collect();
    let mut edits = match ops.headers.plan(&current, &ctx) {
        Ok(e) => e,
        Err(r) => return RequestPlan::Unsafe(refused(&r)),
    };
    let path = match crate::uri::rewrite(
        req.head.path_and_query(),
        ops.path.as_ref(),
        &ops.query,
        &ctx,
    ) {
        Ok(p) => p,
        Err(r) => return RequestPlan::Unsafe(refused(&r)),
    };
    for resp in &rule.response {
        if let Err(r) = resp.headers.check_values(&ctx) {
            return RequestPlan::Unsafe(refused(&r));
        }
    }
    let body = if ops.body.is_empty() {
        BodyAction::None
    } else {
        match body_action(config, &req.head, end_of_stream) {
            // The client picks its content type and encoding: on a rule that edits the body,
            // one the filter cannot read must not carry the body past the edit.
            Ok(BodyAction::Skip(Skip::NotJson | Skip::Encoded))
                if config.on_invalid_body == OnInvalid::Reject =>
            {
                return RequestPlan::Deny(unsupported_body());
            }
            Ok(b) => b,
            Err(d) => return RequestPlan::Deny(d),
        }
    };
    if body == BodyAction::Buffer {
        edits.push(Edit::Remove("content-length".into()));
    }
    if rule.response_bodies && req.head.contains("accept-encoding") {
        edits.push(Edit::Remove("accept-encoding".into()));
    }
    RequestPlan::Apply {
        edits,
        path,
        method: ops.method.clone(),
        body,
    }
}

/// What happened to a buffered body.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyOutcome {
    Replace(Vec<u8>),
    Untouched(Skip),
    Deny(Denial),
}

/// Transforms a complete buffered body. `request` says which side (a response is never
/// refused: an upstream's unexpected body is forwarded as it is and counted).
pub fn finish_body(
    config: &Config,
    ops: &[body::BodyOp],
    req: &Request,
    body: &[u8],
    request: bool,
) -> BodyOutcome {
    if body.len() > config.max_body_bytes {
        return match (request, config.on_oversize) {
            (true, OnOversize::Reject) => BodyOutcome::Deny(oversize(config)),
            _ => BodyOutcome::Untouched(Skip::Oversize),
        };
    }
    match body::transform(ops, body, &req.ctx()) {
        Ok(out) => BodyOutcome::Replace(out),
        Err(e) if !request || config.on_invalid_body == OnInvalid::Pass => {
            let _ = e;
            BodyOutcome::Untouched(Skip::Invalid)
        }
        Err(BodyError::Invalid(why)) => BodyOutcome::Deny(Denial::new(
            400,
            "invalid_json",
            "Invalid request body",
            format!("The request body is not valid JSON: {why}."),
        )),
        Err(BodyError::Failed(why)) => BodyOutcome::Deny(Denial::new(
            400,
            "transform_failed",
            "Invalid request body",
            format!("The request body cannot be transformed: {why}."),
        )),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResponsePlan {
    /// Index of the response rule that applied.
    pub index: usize,
    pub edits: Vec<Edit>,
    pub body: BodyAction,
}

/// Plans the response side: the first response rule of `rule` whose status matches.
/// `headers` are the response headers (`:status` included).
pub fn plan_response(
    config: &Config,
    rule: &Rule,
    req: &Request,
    headers: &RequestHead,
    end_of_stream: bool,
) -> Result<Option<ResponsePlan>, Denial> {
    let status = headers
        .get_str(":status")
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    let Some((index, ops)) = rule
        .response
        .iter()
        .enumerate()
        .find(|(_, r)| r.applies_to(status))
    else {
        return Ok(None);
    };
    let current: Vec<(String, Vec<u8>)> = ops
        .headers
        .names_read()
        .flat_map(|n| headers.all(n).map(move |v| (n.to_string(), v.to_vec())))
        .collect();
    let mut edits = ops
        .headers
        .plan(&current, &req.ctx())
        .map_err(|r| refused(&r))?;
    let body = if ops.body.is_empty() {
        BodyAction::None
    } else {
        // A response is never refused for its size: it passes untouched.
        body_action(config, headers, end_of_stream).unwrap_or(BodyAction::Skip(Skip::Oversize))
    };
    if body == BodyAction::Buffer {
        edits.push(Edit::Remove("content-length".into()));
    }
    Ok(Some(ResponsePlan { index, edits, body }))
}

/// The response rule a plan refers to.
pub fn response_ops(rule: &Rule, index: usize) -> Option<&ResponseOps> {
    rule.response.get(index)
}
