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

/// Persisted-document id parameters (URL) and keys (JSON body) some servers run a stored
/// document by. The guard cannot check such a document: refused unless the config lets the name
/// pass (`document_id_parameters`).
pub const DOCUMENT_ID_PARAMS: [&str; 4] = ["id", "documentId", "doc_id", "namedQuery"];

/// What a parameter (or JSON key) name is to the guard, compared ASCII-case-insensitively as
/// ASP.NET and other servers bind them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    /// A GraphQL parameter in its exact spelling.
    Graphql,
    /// A GraphQL parameter in another case (`Query`): some servers read it, some do not.
    Miscased,
    /// A persisted-document id the config does not let pass.
    DocumentId,
    Other,
}

fn classify(name: &[u8], pass: &[String]) -> Name {
    if let Some(p) = URL_PARAMS
        .iter()
        .find(|p| p.as_bytes().eq_ignore_ascii_case(name))
    {
        return if p.as_bytes() == name {
            Name::Graphql
        } else {
            Name::Miscased
        };
    }
    let doc = DOCUMENT_ID_PARAMS
        .iter()
        .any(|p| p.as_bytes().eq_ignore_ascii_case(name));
    if doc && !pass.iter().any(|p| p.as_bytes().eq_ignore_ascii_case(name)) {
        return Name::DocumentId;
    }
    Name::Other
}

fn name_error(kind: Name, name: &[u8]) -> Option<TransportError> {
    let shown = String::from_utf8_lossy(name.get(..name.len().min(64)).unwrap_or(&[])).into_owned();
    match kind {
        Name::Miscased => Some(TransportError::BadRequest(format!(
            "GraphQL parameter names are lower camel case exactly (got {shown:?})"
        ))),
        Name::DocumentId => Some(TransportError::BadRequest(format!(
            "persisted-document ids ({shown:?}) cannot be checked and are not accepted"
        ))),
        Name::Graphql | Name::Other => None,
    }
}

/// The decoded names of a query string's parameters, split at `separators`.
fn names<'a>(qs: &'a str, separators: &'a [char]) -> impl Iterator<Item = Vec<u8>> + 'a {
    qs.split(separators).map(|pair| {
        let k = pair.split_once('=').map_or(pair, |(k, _)| k);
        kit::query::percent_decode(k)
    })
}

/// GraphQL parameters in a query string (any case), counted with `&` as the only separator and
/// with `;` as one too (Rack and older Go and Python servers split on `;`).
fn count_params(qs: &str, separators: &[char]) -> usize {
    names(qs, separators)
        .filter(|k| matches!(classify(k, &[]), Name::Graphql | Name::Miscased))
        .count()
}

/// Whether the query string carries a GraphQL parameter (in any case), for any server's
/// reading of it; an error when readings disagree (`?x=1;query=…`).
pub fn has_graphql_params(qs: &str) -> Result<bool, TransportError> {
    let amp = count_params(qs, &['&']);
    if amp != count_params(qs, &['&', ';']) {
        return Err(TransportError::BadRequest(
            "a ';' in the query string hides a GraphQL parameter from some servers".into(),
        ));
    }
    Ok(amp > 0)
}

/// Whether the query string names a persisted-document id the config does not let pass (any
/// case, `&` or `;`), other than plain `id` (too common a name to mean GraphQL off a GraphQL
/// route).
pub fn has_document_id(qs: &str, pass: &[String]) -> bool {
    names(qs, &['&', ';'])
        .any(|k| classify(&k, pass) == Name::DocumentId && !k.eq_ignore_ascii_case(b"id"))
}

/// On a guarded route: refuses a GraphQL parameter in another case and a persisted-document
/// id the config does not let pass.
pub fn check_names(qs: &str, pass: &[String]) -> Result<(), TransportError> {
    for k in names(qs, &['&', ';']) {
        if let Some(e) = name_error(classify(&k, pass), &k) {
            return Err(e);
        }
    }
    Ok(())
}

/// A GET request's parameters.
/// A GraphQL parameter in another case or a persisted-document id (not let `pass`) is refused;
/// so is a URL with GraphQL parameters but neither `query` nor a persisted-query hash.
pub fn from_query_string(
    query: Option<&str>,
    pass: &[String],
) -> Result<Extracted, TransportError> {
    let Some(qs) = query else {
        return Ok(Extracted::NotGraphql);
    };
    check_names(qs, pass)?;
    if !has_graphql_params(qs)? {
        return Ok(Extracted::NotGraphql);
    }
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
    if req.query.is_none() && req.persisted_hash.is_none() {
        return Err(TransportError::BadRequest(
            "GraphQL parameters without a query or a persisted-query hash".into(),
        ));
    }
    Ok(Extracted::Single(req))
}

/// A POST body of the given kind. `max_batch` 0 refuses arrays.
/// `pass`: persisted-document id keys let through (see [`DOCUMENT_ID_PARAMS`]).
pub fn from_body(
    kind: BodyKind,
    body: &[u8],
    max_batch: usize,
    pass: &[String],
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
                            from_object(v, pass).map_err(|e| match e {
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
                other => Ok(Extracted::Single(from_object(other, pass)?)),
            }
        }
    }
}

pub(crate) fn from_object(value: Value, pass: &[String]) -> Result<GqlRequest, TransportError> {
    let Value::Object(mut map) = value else {
        return Err(TransportError::BadRequest(
            "a GraphQL request must be a JSON object".into(),
        ));
    };
    for k in map.keys() {
        if let Some(e) = name_error(classify(k.as_bytes(), pass), k.as_bytes()) {
            return Err(e);
        }
    }
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

/// Whether a JSON body (or a WebSocket payload) looks like GraphQL: an object with a GraphQL or
/// persisted-document key in any case, or an array holding one. Unreadable JSON counts as
/// GraphQL (it is then refused as such).
pub fn looks_like_graphql(kind: BodyKind, body: &[u8]) -> bool {
    if kind == BodyKind::Graphql {
        return true;
    }
    let Ok(value) = crate::strict_json::from_slice(body) else {
        return true;
    };
    let object = |v: &Value| {
        v.as_object()
            .is_some_and(|m| m.keys().any(|k| classify(k.as_bytes(), &[]) != Name::Other))
    };
    match &value {
        Value::Array(items) => items.iter().any(object),
        v => object(v),
    }
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
