//! Denials are values; this module is the one place that turns them into HTTP replies.
//!
//! A filter's logic returns a [`Denial`] (status, a stable machine code, a human detail and any
//! protocol headers such as `WWW-Authenticate`). The glue sends [`Denial::render`]'s [`Reply`]
//! as an Envoy local reply. REST callers get RFC 9457 `application/problem+json`; GraphQL
//! callers get GraphQL-over-HTTP errors; gRPC callers ([`send`] tells them by their
//! content-type) get a trailers-only gRPC reply: HTTP 200, `grpc-status` mapped from the HTTP
//! status ([`crate::grpc::status_for_http`]), the detail as `grpc-message` and a
//! `google.rpc.Status` with `ErrorInfo{reason: code, domain: filter, metadata: extensions}`
//! (and `RetryInfo` when the denial says when to retry) in `grpc-status-details-bin`. The
//! denial's own headers (`www-authenticate`, the `RateLimit` fields) go out with it. The reply
//! has no body: Envoy turns a body sent to a gRPC caller into its own `grpc-message`, and a
//! `grpc-status` already there is kept, so ours reach the client once and unchanged.
//! Details never carry secrets: filters decide what goes into `detail`, and nothing else is
//! echoed from the request.

use crate::grpc::{self, Flavor};
use crate::host::Host;
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
    /// A trailers-only gRPC reply; `domain` (the filter) goes into `ErrorInfo.domain`.
    Grpc {
        flavor: Flavor,
        domain: &'static str,
    },
}

/// Sends `denial` as the local reply to the request `host` serves: gRPC-shaped when the
/// request's `content-type` is a gRPC one ([`grpc::reply_flavor`]), in `format` otherwise.
/// `domain` names the filter (`ErrorInfo.domain`). The content-type is read only here, on the
/// refusal path (one host call), so an admitted request pays nothing for it.
///
/// Only while Envoy still has the request headers for the filter: in their callback, or while
/// they are held (waiting for a callout or the body). Once they went upstream a read fails, and
/// the proxy-wasm SDK traps on that failure: a later refusal renders with
/// [`Format::for_content_type`] from a content-type recorded at the headers instead.
pub fn send(host: &dyn Host, domain: &'static str, denial: &Denial, format: Format) {
    let content_type = host.request_header("content-type");
    let format = Format::for_content_type(content_type.as_deref(), format, domain);
    host.send_reply(&denial.render(format));
}

/// Filter state naming the stage and code of a refusal (`api-key-auth:missing_api_key`), for
/// the access log (`%FILTER_STATE(wasm.apim_decision:PLAIN)%`): set by the request host when it
/// sends a refusal, so every stage and form publishes it the same way, at the cost of one host
/// call on the refusal path only.
pub const DECISION: &str = "apim_decision";

/// A local reply ready for the host: status, headers, body, and the denial's code (`None` for
/// an answer that is not a refusal, such as transform's GraphQL-backed REST reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub code: Option<&'static str>,
}

impl Format {
    /// [`Format::Grpc`] when `content_type` (the request's) is a gRPC one, else `fallback`.
    pub fn for_content_type(
        content_type: Option<&[u8]>,
        fallback: Format,
        domain: &'static str,
    ) -> Format {
        grpc::reply_flavor(content_type).map_or(fallback, |flavor| Format::Grpc { flavor, domain })
    }

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

    /// The refusal of a request whose ambiguous path reads as different routes, each with its
    /// own rule ([`crate::matcher::Lookup::conflict`]): the filter cannot know which applies.
    /// One wording for every filter.
    pub fn path_ambiguous() -> Self {
        Self::new(
            400,
            "path_ambiguous",
            "Ambiguous path",
            "The request path can be read as different routes; send it in its normalised form.",
        )
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
            Format::Grpc { flavor, domain } => return self.grpc_reply(flavor, domain),
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
            code: Some(self.code),
        }
    }

    /// The trailers-only gRPC reply (see the module docs).
    fn grpc_reply(&self, flavor: Flavor, domain: &'static str) -> Reply {
        let code = grpc::status_for_http(self.status);
        let retry_delay = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| v.trim().parse::<u64>().ok());
        let metadata = self
            .extensions
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                ((*k).to_string(), v)
            })
            .collect();
        let details = grpc::Details {
            code,
            message: &self.detail,
            reason: self.code,
            domain,
            metadata,
            retry_delay,
        };
        let mut headers = Vec::with_capacity(self.headers.len() + 4);
        headers.push((
            "content-type".to_string(),
            flavor.content_type().to_string(),
        ));
        headers.push(("grpc-status".to_string(), code.to_string()));
        headers.push((
            "grpc-message".to_string(),
            grpc::percent_encode_message(&self.detail),
        ));
        headers.push((
            "grpc-status-details-bin".to_string(),
            details.header_value(),
        ));
        headers.extend(self.headers.iter().cloned());
        Reply {
            status: 200,
            headers,
            body: Vec::new(),
            code: Some(self.code),
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
    fn grpc_reply_is_trailers_only_with_status_message_and_details() {
        use base64::Engine as _;
        let quota = Denial::new(
            429,
            "quota_exceeded",
            "Quota exceeded",
            "Used up; retry in 7 s.",
        )
        .with_extension("limit", json!("minute"))
        .with_extension("retry_after", json!(7))
        .with_header("ratelimit", "\"minute\";r=0;t=7")
        .with_header("retry-after", "7");
        /// A denial, and the gRPC reply it makes.
        struct Case<'a> {
            denial: Denial,
            flavor: Flavor,
            /// the reply's content-type
            ct: &'a str,
            /// grpc-status
            status: &'a str,
            /// the details carry RetryInfo
            retry: bool,
        }
        let cases = vec![
            Case {
                denial: sample(),
                flavor: Flavor::Grpc,
                ct: "application/grpc",
                status: "16",
                retry: false,
            },
            Case {
                denial: Denial::new(
                    403,
                    "insufficient_scope",
                    "Insufficient scope",
                    "Needs 100% more.",
                ),
                flavor: Flavor::Grpc,
                ct: "application/grpc",
                status: "7",
                retry: false,
            },
            Case {
                denial: quota,
                flavor: Flavor::Grpc,
                ct: "application/grpc",
                status: "8",
                retry: true,
            },
            Case {
                denial: Denial::new(400, "bad", "Bad", "x"),
                flavor: Flavor::Web,
                ct: "application/grpc-web+proto",
                status: "3",
                retry: false,
            },
        ];
        for Case {
            denial,
            flavor,
            ct,
            status,
            retry,
        } in cases
        {
            let r = denial.render(Format::Grpc {
                flavor,
                domain: "quota",
            });
            assert_eq!(r.status, 200);
            assert!(r.body.is_empty());
            let get = |name: &str| {
                let all: Vec<&String> = r
                    .headers
                    .iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v)
                    .collect();
                assert_eq!(all.len(), 1, "{name} once");
                all[0].clone()
            };
            assert_eq!(get("content-type"), ct);
            assert_eq!(get("grpc-status"), status);
            assert_eq!(
                get("grpc-message"),
                grpc::percent_encode_message(&denial.detail)
            );
            let bin = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(get("grpc-status-details-bin"))
                .unwrap();
            assert!(bin
                .windows(denial.code.len())
                .any(|w| w == denial.code.as_bytes()));
            let has_retry = bin.windows(9).any(|w| w == b"RetryInfo");
            assert_eq!(has_retry, retry, "{}", denial.code);
            for (k, v) in &denial.headers {
                assert_eq!(&get(k), v);
            }
        }
    }

    #[test]
    fn send_shapes_the_reply_by_the_request_content_type() {
        use crate::host::{Call, MockHost};
        for (ct, status) in [
            (Some("application/grpc"), 200),
            (Some("application/grpc+proto"), 200),
            (Some("application/json"), 401),
            (None, 401),
        ] {
            let mut host = MockHost::default();
            if let Some(ct) = ct {
                host.headers
                    .push(("content-type".into(), ct.as_bytes().to_vec()));
            }
            send(&host, "api-key-auth", &sample(), Format::Problem);
            let sent = host.calls().into_iter().find_map(|c| match c {
                Call::Reply(r) => Some(r),
                _ => None,
            });
            assert_eq!(sent.unwrap().status, status, "{ct:?}");
        }
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
