//! Upstream paths for the transform filter's tests, under `/transform/`:
//! - `POST /transform/graphql`: a tiny GraphQL endpoint. It reads `{query, variables}` and
//!   answers a pet derived from `variables.id`: id 404 → `{"data":{"pet":null}}`, a negative id →
//!   a GraphQL error, anything else → `{"data":{"pet":{"id","name","seen":{...}}}}` where `seen`
//!   reports what the call carried (method, content-type, authorization, query).
//! - `/transform/json`: a fixed JSON document (for response-body rules).
//! - `/transform/gzip`: the same document gzip-compressed, with `content-encoding: gzip`.

use super::{EchoRequest, Reply};
use serde_json::{json, Value};
use std::io::Write;

/// The document `/transform/json` and `/transform/gzip` answer.
pub const PET_JSON: &str =
    r#"{"id":1,"name":"Rex","owner":{"email":"owner@example.com"},"secret":"s3cr3t"}"#;

pub fn route(request: &EchoRequest, rest: &str) -> Reply {
    let path = rest.split('?').next().unwrap_or_default();
    match path {
        "graphql" => graphql(request),
        "json" => json_reply(PET_JSON.as_bytes().to_vec(), None),
        "gzip" => json_reply(gzip(PET_JSON.as_bytes()), Some("gzip")),
        _ => Reply::echo(200, request),
    }
}

fn header<'a>(request: &'a EchoRequest, name: &str) -> &'a str {
    request
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

fn json_reply(body: Vec<u8>, encoding: Option<&str>) -> Reply {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(e) = encoding {
        headers.push(("content-encoding".into(), e.into()));
    }
    Reply {
        status: 200,
        headers,
        body,
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

fn graphql(request: &EchoRequest) -> Reply {
    let Ok(call) = serde_json::from_slice::<Value>(&request.body) else {
        return Reply::text(400, "not a GraphQL request");
    };
    let id = call["variables"]["id"].as_i64().unwrap_or_default();
    let body = if id == 404 {
        json!({"data": {"pet": null}})
    } else if id < 0 {
        json!({"data": {"pet": null}, "errors": [{"message": format!("bad id {id}")}]})
    } else {
        json!({"data": {"pet": {
            "id": id,
            "name": format!("pet-{id}"),
            "seen": {
                "method": request.method,
                "content_type": header(request, "content-type"),
                "authorization": header(request, "authorization"),
                "query": call["query"],
                "variables": call["variables"],
            }
        }}})
    };
    json_reply(body.to_string().into_bytes(), None)
}
