//! Denials are values; this module is the one place that turns them into HTTP replies.
//!
//! A filter's logic returns a [`Denial`] (status, a stable machine code, a human detail and any
//! protocol headers such as `WWW-Authenticate`). The glue sends [`Denial::render`]'s [`Reply`]
//! as an Envoy local reply. REST callers get RFC 9457 `application/problem+json`; GraphQL
//! callers get GraphQL-over-HTTP errors. Details never carry secrets: filters decide what
//! goes into `detail`, and nothing else is echoed from the request.

use serde_json::{json, Map, Value};

/// Why a request is refused, independent of how the refusal is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// HTTP status (401, 403, 429, ...).
    pub status: u16,
    /// Stable machine-readable code (`missing_api_key`, `MAX_DEPTH_EXCEEDED`, ...).
    pub code: &'static str,
    /// Short summary that does not change between occurrences.
    pub title: &'static str,
    /// What was wrong with this request, safe to show the caller.
    pub detail: String,
    /// Protocol headers that belong to the refusal (`www-authenticate`, `retry-after`).
    pub headers: Vec<(String, String)>,
    /// Extra members for the body (problem extension members / GraphQL `extensions`).
    pub extensions: Vec<(&'static str, Value)>,
}

/// How a denial is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 9457 problem details.
    Problem,
    /// GraphQL-over-HTTP with `application/graphql-response+json`: the HTTP status is kept.
    GraphQlResponse,
    /// GraphQL-over-HTTP for clients that accept only `application/json`: status 200 by spec,
    /// unless the denial is not about the GraphQL document (auth, quota, body size).
    GraphQlJson,
}

/// A local reply ready for the host: status, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Format {
    /// The GraphQL error format a client asked for with its `Accept` header:
    /// `application/graphql-response+json` unless it accepts only `application/json` (no
    /// Accept header counts as the former, as the GraphQL-over-HTTP spec says since 2025).
    pub fn for_graphql_accept(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::GraphQlResponse;
        };
        let lower = accept.to_ascii_lowercase();
        if lower.trim().is_empty()
            || lower.contains("application/graphql-response+json")
            || lower.contains("*/*")
        {
            Format::GraphQlResponse
        } else if lower.contains("application/json") {
            Format::GraphQlJson
        } else {
            Format::GraphQlResponse
        }
    }
}

impl Denial {
    pub fn new(
        status: u16,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            detail: detail.into(),
            headers: Vec::new(),
            extensions: Vec::new(),
        }
    }

    #[must_use]
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    #[must_use]
    pub fn with_extension(mut self, name: &'static str, value: Value) -> Self {
        self.extensions.push((name, value));
        self
    }

    /// The one rendering of every denial of the suite.
    pub fn render(&self, format: Format) -> Reply {
        let (status, content_type, body) = match format {
            Format::Problem => (self.status, "application/problem+json", self.problem_body()),
            Format::GraphQlResponse => (
                self.status,
                "application/graphql-response+json",
                self.graphql_body(),
            ),
            Format::GraphQlJson => {
                // GraphQL-over-HTTP: with application/json, a document the server refuses to
                // execute is still a 200 with an `errors` list; transport-level refusals
                // (401, 403, 413, 429) keep their status so HTTP clients and caches see them.
                let status = if self.status == 400 { 200 } else { self.status };
                (status, "application/json", self.graphql_body())
            }
        };
        let mut headers = Vec::with_capacity(self.headers.len() + 2);
        headers.push(("content-type".to_string(), content_type.to_string()));
        headers.push(("cache-control".to_string(), "no-store".to_string()));
        headers.extend(self.headers.iter().cloned());
        Reply {
            status,
            headers,
            body,
        }
    }

    fn problem_body(&self) -> Vec<u8> {
        let mut body = Map::new();
        body.insert(
            "type".into(),
            json!(format!("urn:apim:problem:{}", self.code)),
        );
        body.insert("title".into(), json!(self.title));
        body.insert("status".into(), json!(self.status));
        body.insert("detail".into(), json!(self.detail));
        body.insert("code".into(), json!(self.code));
        for (k, v) in &self.extensions {
            body.insert((*k).to_string(), v.clone());
        }
        serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
    }

    fn graphql_body(&self) -> Vec<u8> {
        let mut ext = Map::new();
        ext.insert("code".into(), json!(self.code));
        for (k, v) in &self.extensions {
            ext.insert((*k).to_string(), v.clone());
        }
        let body = json!({"errors": [{"message": self.detail, "extensions": ext}]});
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn sample() -> Denial {
        Denial::new(
            401,
            "missing_api_key",
            "API key required",
            "No API key was presented.",
        )
        .with_header("www-authenticate", "ApiKey realm=\"apim\"")
    }

    #[test]
    fn problem_json_carries_status_code_and_headers() {
        let r = sample().render(Format::Problem);
        assert_eq!(r.status, 401);
        assert!(r
            .headers
            .contains(&("content-type".into(), "application/problem+json".into())));
        assert!(r
            .headers
            .contains(&("www-authenticate".into(), "ApiKey realm=\"apim\"".into())));
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["status"], 401);
        assert_eq!(v["code"], "missing_api_key");
        assert_eq!(v["type"], "urn:apim:problem:missing_api_key");
        assert_eq!(v["detail"], "No API key was presented.");
    }

    #[test]
    fn graphql_format_follows_accept() {
        let cases: &[(Option<&str>, Format)] = &[
            (None, Format::GraphQlResponse),
            (Some(""), Format::GraphQlResponse),
            (
                Some("application/graphql-response+json"),
                Format::GraphQlResponse,
            ),
            (
                Some("application/graphql-response+json, application/json;q=0.9"),
                Format::GraphQlResponse,
            ),
            (Some("application/json"), Format::GraphQlJson),
            (Some("Application/JSON"), Format::GraphQlJson),
            (Some("*/*"), Format::GraphQlResponse),
            (Some("text/html"), Format::GraphQlResponse),
        ];
        for (accept, want) in cases {
            assert_eq!(Format::for_graphql_accept(*accept), *want, "{accept:?}");
        }
    }

    #[test]
    fn graphql_status_follows_the_media_type() {
        let d = Denial::new(400, "MAX_DEPTH_EXCEEDED", "Too deep", "depth 12 exceeds 10")
            .with_extension("limit", json!(10));
        let cases = [
            (
                Format::GraphQlResponse,
                400,
                "application/graphql-response+json",
            ),
            (Format::GraphQlJson, 200, "application/json"),
        ];
        for (format, status, ct) in cases {
            let r = d.render(format);
            assert_eq!(r.status, status);
            assert_eq!(r.headers[0].1, ct);
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["errors"][0]["extensions"]["code"], "MAX_DEPTH_EXCEEDED");
            assert_eq!(v["errors"][0]["extensions"]["limit"], 10);
        }
        // Transport-level refusals keep their status even for application/json.
        assert_eq!(sample().render(Format::GraphQlJson).status, 401);
    }
}
