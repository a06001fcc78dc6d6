//! GraphQL-over-HTTP: finding the operations in a request.
//!
//! GET carries `query`, `operationName`, `variables` and `extensions` url-encoded in the query
//! string (the last two as JSON text); POST carries a JSON object (`application/json`) or an
//! array of them (a batch), or the bare document (`application/graphql`). JSON nesting is bounded
//! by serde_json's recursion limit (128), so deep `variables` are refused, never a trap.

use kit::query::query_values;
use serde_json::Value;

/// One GraphQL request: a document, the operation to run, variables, and the Apollo
/// persisted-query hash if one was sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GqlRequest {
    pub query: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Option<Value>,
    /// `extensions.persistedQuery.sha256Hash`, as sent.
    pub persisted_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Extracted {
    /// Nothing GraphQL here (a GET without `query`): pass untouched.
    NotGraphql,
    Single(GqlRequest),
    Batch(Vec<GqlRequest>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// Not JSON, or JSON of the wrong shape; what was wrong.
    BadRequest(String),
    UnsupportedMediaType,
    /// A JSON array longer than `max_batch`; its length.
    BatchTooLarge(usize),
}

/// What a POST body is, from its `content-type` (parameters ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Graphql,
}

pub fn body_kind(content_type: Option<&str>) -> Result<BodyKind, TransportError> {
    let essence = content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "application/graphql+json" => Ok(BodyKind::Json),
        "application/graphql" => Ok(BodyKind::Graphql),
        _ => Err(TransportError::UnsupportedMediaType),
    }
}

/// The GraphQL-over-HTTP parameters a URL may carry.
pub const URL_PARAMS: [&str; 4] = ["query", "extensions", "operationName", "variables"];

/// GraphQL parameters in a query string, counted with `&` as the only separator and with `;`
/// as one too (Rack and older Go and Python servers split on `;`).
fn count_params(qs: &str, separators: &[char]) -> usize {
    qs.split(separators)
        .filter(|pair| {
            let k = pair.split_once('=').map_or(*pair, |(k, _)| k);
            let k = kit::query::percent_decode(k);
            URL_PARAMS.iter().any(|p| p.as_bytes() == k.as_slice())
        })
        .count()
}

/// Whether the query string carries a GraphQL parameter, for any server's reading of it; an
/// error when readings disagree (`?x=1;query=…`).
pub fn has_graphql_params(qs: &str) -> Result<bool, TransportError> {
    let amp = count_params(qs, &['&']);
    if amp != count_params(qs, &['&', ';']) {
        return Err(TransportError::BadRequest(
            "a ';' in the query string hides a GraphQL parameter from some servers".into(),
        ));
    }
    Ok(amp > 0)
}

/// A GET request's parameters.
pub fn from_query_string(query: Option<&str>) -> Result<Extracted, TransportError> {
    let Some(qs) = query else {
        return Ok(Extracted::NotGraphql);
    };
    has_graphql_params(qs)?;
    // Servers disagree on which copy of a repeated parameter they run (first, last): a repeated
    // GraphQL parameter is refused, so the operation checked is the operation run.
    let text = |name: &str| -> Result<Option<String>, TransportError> {
        let mut values = query_values(qs, name);
        let first = values.next();
        if values.next().is_some() {
            return Err(TransportError::BadRequest(format!(
                "{name} is given more than once"
            )));
        }
        match first {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| TransportError::BadRequest(format!("{name} is not UTF-8"))),
        }
    };
    let query = text("query")?;
    let extensions = text("extensions")?;
    if query.is_none() && extensions.is_none() {
        return Ok(Extracted::NotGraphql);
    }
    let json = |name: &str, v: Option<String>| -> Result<Option<Value>, TransportError> {
        match v {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => crate::strict_json::from_slice(s.as_bytes())
                .map(Some)
                .map_err(|e| TransportError::BadRequest(format!("{name} is not valid JSON: {e}"))),
        }
    };
    let variables = json("variables", text("variables")?)?;
    let extensions = json("extensions", extensions)?;
    let req = GqlRequest {
        query: query.filter(|q| !q.is_empty()),
        operation_name: text("operationName")?.filter(|n| !n.is_empty()),
        variables: check_variables(variables)?,
        persisted_hash: persisted_hash(extensions.as_ref())?,
    };
    Ok(Extracted::Single(req))
}

/// A POST body of the given kind. `max_batch` 0 refuses arrays.
pub fn from_body(
    kind: BodyKind,
    body: &[u8],
    max_batch: usize,
) -> Result<Extracted, TransportError> {
    match kind {
        BodyKind::Graphql => {
            let query = std::str::from_utf8(body)
                .map_err(|_| TransportError::BadRequest("the body is not UTF-8".into()))?;
            Ok(Extracted::Single(GqlRequest {
                query: Some(query.to_string()),
                ..GqlRequest::default()
            }))
        }
        BodyKind::Json => {
            let value: Value = crate::strict_json::from_slice(body).map_err(|e| {
                TransportError::BadRequest(format!("the body is not valid JSON: {e}"))
            })?;
            match value {
                Value::Array(items) => {
                    if items.len() > max_batch {
                        return Err(TransportError::BatchTooLarge(items.len()));
                    }
                    let reqs = items
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| {
                            from_object(v).map_err(|e| match e {
                                TransportError::BadRequest(m) => {
                                    TransportError::BadRequest(format!("batch element {i}: {m}"))
                                }
                                other => other,
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    if reqs.is_empty() {
                        return Err(TransportError::BadRequest("the batch is empty".into()));
                    }
                    Ok(Extracted::Batch(reqs))
                }
                other => Ok(Extracted::Single(from_object(other)?)),
            }
        }
    }
}

pub(crate) fn from_object(value: Value) -> Result<GqlRequest, TransportError> {
    let Value::Object(mut map) = value else {
        return Err(TransportError::BadRequest(
            "a GraphQL request must be a JSON object".into(),
        ));
    };
    let query = match map.remove("query") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(TransportError::BadRequest("query must be a string".into())),
    };
    let operation_name = match map.remove("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            return Err(TransportError::BadRequest(
                "operationName must be a string".into(),
            ))
        }
    };
    let variables = check_variables(map.remove("variables"))?;
    let extensions = map.remove("extensions");
    let persisted_hash = persisted_hash(extensions.as_ref())?;
    if query.is_none() && persisted_hash.is_none() {
        return Err(TransportError::BadRequest("no query in the request".into()));
    }
    Ok(GqlRequest {
        query,
        operation_name,
        variables,
        persisted_hash,
    })
}

fn check_variables(v: Option<Value>) -> Result<Option<Value>, TransportError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v)),
        Some(_) => Err(TransportError::BadRequest(
            "variables must be a JSON object".into(),
        )),
    }
}

fn persisted_hash(ext: Option<&Value>) -> Result<Option<String>, TransportError> {
    let Some(pq) = ext.and_then(|e| e.get("persistedQuery")) else {
        return Ok(None);
    };
    match pq.get("sha256Hash") {
        Some(Value::String(h)) => Ok(Some(h.clone())),
        _ => Err(TransportError::BadRequest(
            "extensions.persistedQuery.sha256Hash must be a string".into(),
        )),
    }
}

#[cfg(test)]
#[path = "transport_tests.rs"]
mod tests;
