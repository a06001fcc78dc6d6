//! The native examples answer as their Wasm twins: each pair (`envoy/examples/<name>.yaml`,
//! `native-<name>.yaml`, written from it by `apim manifests sync`) is started as shipped, its
//! fixed ports moved, and the requests its comment documents are sent to both; status, problem
//! code and the headers the filters set must be the same, and the documented answer.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use apim_integration::{repo_root, Envoy, Request, Response};
use serde_json::json;

const ALICE: &str = "demo-key-alice-0123456789abcdef";

/// One documented request: what to send, and the status the example's comment promises.
struct Case {
    request: fn() -> Request,
    status: u16,
}

/// What two answers must share: status, the problem `code` (or the body when it is not a
/// problem), and the headers the filters set.
fn answer(r: &Response) -> (u16, String, Vec<(String, Option<String>)>) {
    let body = serde_json::from_slice::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|v| v.get("code").map(ToString::to_string))
        .unwrap_or_else(|| r.text());
    let headers = [
        "x-consumer-id",
        "www-authenticate",
        "x-user",
        "x-greeting",
        "ratelimit-policy",
        "x-seen-path",
        "x-seen-tenant",
    ]
    .iter()
    .map(|h| ((*h).to_string(), r.header(h).map(str::to_string)))
    .collect();
    (r.status, body, headers)
}

fn token(scope: &str) -> String {
    apim_integration::demo_keys::demo_token("alice", scope)
}

fn graphql(query: &str) -> Request {
    Request::new("POST", "/graphql")
        .header("content-type", "application/json")
        .body(json!({ "query": query }).to_string())
}

/// A free local port for an example's second listener (its fixed port moved).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(file: &str) -> Envoy {
    let shipped = std::fs::read_to_string(repo_root().join(file)).unwrap();
    let backend = free_port().to_string();
    let template = shipped
        .replace("port_value: 10000", "port_value: 0")
        .replace("port_value: 9901", "port_value: 0")
        .replace("port_value: 10001", &format!("port_value: {backend}"));
    Envoy::start(&template).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn cases(name: &str) -> Vec<Case> {
    let c = |request: fn() -> Request, status| Case { request, status };
    match name {
        "api-key-auth" => vec![
            c(|| Request::get("/anything"), 401),
            c(|| Request::get("/anything").header("x-api-key", ALICE), 200),
        ],
        "scope-authz" => vec![
            c(|| Request::get("/pets"), 401),
            c(
                || {
                    Request::get("/pets")
                        .header("authorization", &format!("Bearer {}", token("pets:read")))
                },
                200,
            ),
            c(
                || {
                    Request::new("POST", "/pets")
                        .header("authorization", &format!("Bearer {}", token("pets:read")))
                },
                403,
            ),
        ],
        "quota" => {
            let mut v: Vec<Case> = (0..5)
                .map(|_| c(|| Request::get("/pets").header("x-api-key", ALICE), 200))
                .collect();
            v.push(c(|| Request::get("/pets").header("x-api-key", ALICE), 429));
            v
        }
        "graphql-guard" => vec![
            c(|| graphql("{ pets { id name owner { name } } }"), 200),
            c(|| graphql("{ a { b { c { d { e { f { g } } } } } } }"), 400),
            c(|| Request::get("/graphql?query=mutation%7Bx%7D"), 405),
        ],
        "transform" => vec![
            c(
                || Request::get("/v1/pets/7?debug=1").header("x-tenant", "acme"),
                200,
            ),
            c(|| Request::get("/gql/pets/7"), 200),
            c(|| Request::get("/gql/pets/abc"), 400),
        ],
        "suite" => vec![
            c(|| Request::get("/anything"), 401),
            c(|| Request::get("/anything").header("x-api-key", ALICE), 200),
        ],
        other => panic!("no documented requests for {other}"),
    }
}

#[test]
fn every_native_example_answers_as_its_wasm_twin() {
    // Every twin shipped (a new one fails in `cases` until its requests are written here).
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("envoy/examples"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| {
            Some(
                f.strip_prefix("native-")?
                    .strip_suffix(".yaml")?
                    .to_string(),
            )
        })
        .collect();
    names.sort();
    assert!(names.len() >= 6, "native examples: {names:?}");
    for name in &names {
        let name = name.as_str();
        let wasm = start(&format!("envoy/examples/{name}.yaml"));
        let native = start(&format!("envoy/examples/native-{name}.yaml"));
        for (i, case) in cases(name).iter().enumerate() {
            let w = (case.request)().send(wasm.port()).unwrap();
            let n = (case.request)().send(native.port()).unwrap();
            assert_eq!(
                w.status,
                case.status,
                "{name} #{i} (Wasm): {}\n{}",
                w.text(),
                wasm.log()
            );
            assert_eq!(
                answer(&n),
                answer(&w),
                "{name} #{i}: native vs Wasm\n{}",
                native.log()
            );
        }
    }
}
