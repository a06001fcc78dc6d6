//! What the echo upstream answers. To add a behaviour, write a `fn(&EchoRequest, &str) -> Reply`
//! and add it to [`HANDLERS`] under a path prefix; everything else is echoed.

use serde_json::json;

#[path = "graphql.rs"]
pub mod graphql;
#[path = "jwks.rs"]
mod jwks;

/// A request as the upstream received it.
pub struct EchoRequest {
    pub method: String,
    /// Full request target: path and query.
    pub path: String,
    /// Lowercase names, values as lossy UTF-8.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What to send back.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(status: u16, text: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: text.as_bytes().to_vec(),
        }
    }

    /// The echo body with a given status.
    pub fn echo(status: u16, request: &EchoRequest) -> Reply {
        let body = json!({
            "method": request.method,
            "path": request.path,
            "headers": request.headers.iter().map(|(n, v)| [n, v]).collect::<Vec<_>>(),
            "body": String::from_utf8_lossy(&request.body),
        });
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }
}

/// A handler gets the request and the rest of the path after its prefix.
type Handler = fn(&EchoRequest, &str) -> Reply;

/// Path prefix → handler; the first match wins, no match echoes with 200.
const HANDLERS: &[(&str, Handler)] = &[
    ("/status/", status),
    ("/jwks/", jwks::serve),
    ("/transform/", graphql::route),
];

pub fn dispatch(request: &EchoRequest) -> Reply {
    for (prefix, handler) in HANDLERS {
        if let Some(rest) = request.path.strip_prefix(prefix) {
            return handler(request, rest);
        }
    }
    Reply::echo(200, request)
}

/// `/status/<code>[?...]`: answers that status, still with the echo body so tests can see what
/// reached the upstream.
fn status(request: &EchoRequest, rest: &str) -> Reply {
    let code = rest.split(['?', '/']).next().unwrap_or_default();
    match code.parse::<u16>() {
        Ok(code) if (200..=599).contains(&code) => Reply::echo(code, request),
        _ => Reply::text(400, &format!("bad status code {code:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str) -> EchoRequest {
        EchoRequest {
            method: "GET".into(),
            path: path.into(),
            headers: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            body: b"hi".to_vec(),
        }
    }

    #[test]
    fn echoes_by_default() {
        let reply = dispatch(&req("/x?q=1"));
        assert_eq!(reply.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(v["path"], "/x?q=1");
        assert_eq!(v["headers"], json!([["a", "1"], ["a", "2"]]));
        assert_eq!(v["body"], "hi");
    }

    #[test]
    fn status_prefix_sets_status() {
        assert_eq!(dispatch(&req("/status/503?x")).status, 503);
        assert_eq!(dispatch(&req("/status/abc")).status, 400);
    }
}
