//! REST → GraphQL: a matched REST call is answered by calling a GraphQL server with a configured
//! query and variables taken from the request, optionally unwrapping `data.<field>`.
//!
//! The call is made by the filter (an HTTP call to a configured Envoy cluster), not by
//! rewriting the request in flight: a `GET` has no body to rewrite, and Envoy does not let a
//! Wasm filter give a body-less request a body. The answer goes back as the response.

use crate::body::{typed, ValueType};
use crate::template::{Ctx, Template};
use kit::denial::{Denial, Format, Reply};
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    pub template: Template,
    pub kind: ValueType,
}

#[derive(Debug, Clone)]
pub struct GraphQl {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub query: String,
    pub operation_name: Option<String>,
    pub variables: Vec<Variable>,
    pub unwrap: Option<String>,
    pub forward_headers: Vec<String>,
    pub timeout_ms: u64,
}

/// The HTTP call to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub cluster: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub timeout_ms: u64,
}

/// Builds the GraphQL POST; a variable that does not convert to its type is a 400.
pub fn build(g: &GraphQl, ctx: &Ctx<'_>) -> Result<Call, Denial> {
    let mut vars = Map::new();
    for v in &g.variables {
        let rendered = v.template.render(ctx).map_err(|_| {
            Denial::new(
                400,
                "invalid_variable",
                "Invalid request",
                format!("The value for \"{}\" is too large.", v.name),
            )
        })?;
        let value = typed(&rendered, v.kind).map_err(|e| {
            Denial::new(
                400,
                "invalid_variable",
                "Invalid request",
                format!("The value for \"{}\" is invalid: {e}.", v.name),
            )
        })?;
        vars.insert(v.name.clone(), value);
    }
    let mut body = Map::new();
    body.insert("query".into(), Value::String(g.query.clone()));
    if let Some(op) = &g.operation_name {
        body.insert("operationName".into(), Value::String(op.clone()));
    }
    body.insert("variables".into(), Value::Object(vars));
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), b"POST".to_vec()),
        (":path".into(), g.path.as_bytes().to_vec()),
        (":authority".into(), g.authority.as_bytes().to_vec()),
        ("content-type".into(), b"application/json".to_vec()),
        (
            "accept".into(),
            b"application/graphql-response+json, application/json".to_vec(),
        ),
    ];
    for name in &g.forward_headers {
        if let Some(v) = ctx.head.get(name) {
            headers.push((name.clone(), v.to_vec()));
        }
    }
    Ok(Call {
        cluster: g.cluster.clone(),
        headers,
        body: serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
        timeout_ms: g.timeout_ms,
    })
}

fn upstream_error(detail: impl Into<String>) -> Reply {
    Denial::new(502, "graphql_upstream_error", "Bad gateway", detail).render(Format::Problem)
}

/// The GraphQL server's answer body: its size as Envoy gives it, and the bytes, read only when
/// the size is within the limit (an oversized answer is never copied into the VM).
pub struct Answer<'a> {
    pub size: usize,
    pub body: Option<&'a [u8]>,
}

/// Turns the GraphQL server's answer into the client's response.
///
/// - no answer, a non-2xx status, a body over `max` or one that is not JSON: 502;
/// - without `unwrap`: the GraphQL response as is, 200;
/// - with `unwrap`: `data.<field>` when it is not null (200); null with `errors`: 502 carrying
///   the errors; null without errors: 404.
pub fn respond(g: &GraphQl, status: Option<u16>, answer: &Answer<'_>, max: usize) -> Reply {
    let Some(status) = status else {
        return upstream_error("The GraphQL server did not answer.");
    };
    if !(200..300).contains(&status) {
        return upstream_error(format!("The GraphQL server answered {status}."));
    }
    if answer.size > max {
        return upstream_error("The GraphQL response is too large.");
    }
    let body = answer.body.unwrap_or_default();
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return upstream_error("The GraphQL response is not JSON.");
    };
    let json = |v: &Value| Reply {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(v).unwrap_or_default(),
        code: None,
    };
    let Some(field) = &g.unwrap else {
        return json(&doc);
    };
    match doc.get("data").and_then(|d| d.get(field)) {
        Some(v) if !v.is_null() => json(v),
        _ => match doc.get("errors") {
            Some(errors) if errors.as_array().is_some_and(|a| !a.is_empty()) => Denial::new(
                502,
                "graphql_error",
                "Bad gateway",
                "The GraphQL server reported errors.",
            )
            .with_extension("errors", errors.clone())
            .render(Format::Problem),
            _ => Denial::new(
                404,
                "not_found",
                "Not found",
                format!("No {field} was found."),
            )
            .render(Format::Problem),
        },
    }
}
