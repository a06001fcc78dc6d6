//! gRPC through the suite, end to end: a real tonic client calls the `pets.v1.Pets` service
//! (`src/grpc`) through Envoy running api-key-auth → scope-authz → quota → transform, in every
//! form, beside a REST route to the echo upstream on the same listener.
//!
//! Scope rules name gRPC methods (`match.grpc`): the reads `GetPet` and `ListPets` need
//! `pets:read`, every other method of the service `pets:write`, as does anything else (the
//! default). Quota counts each call once when it opens, streams included. Each refusal is
//! checked as a gRPC client sees it: `grpc-status`, `grpc-message`, and the `google.rpc.Status`
//! in `grpc-status-details-bin` with its `ErrorInfo` (and `RetryInfo` for quota).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use apim_integration::bootstrap::{bootstrap, listener, upstream_cluster};
use apim_integration::chain::{for_each_form, Chain, Filter, Form, PerForm};
use apim_integration::demo_keys::{ALICE, BOB};
use apim_integration::grpc::client::Client;
use apim_integration::grpc::messages::Refusal;
use apim_integration::grpc::server::grpc_port;
use apim_integration::{repo_root, send_h2, Envoy, LogOnFailure, Request};
use serde_json::{json, Value};
use tonic::Code;

/// Carl's key (plan `tiny`: three calls per long window, read and write scopes).
const CARL: &str = "demo-grpc-key-carl-0123456789ab";

fn digest(key: &str) -> String {
    kit::digest::to_hex(&kit::digest::sha256(key.as_bytes()))
}

/// A window size in seconds (at most 366 days) such that now sits in the middle of its
/// epoch-aligned window: no test straddles one (as in `tests/quota.rs`).
fn long_window() -> u64 {
    static N: OnceLock<u64> = OnceLock::new();
    *N.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let k = now / 31_622_400 + 1;
        let n = now * 2 / (2 * k + 1);
        assert!(n <= 31_622_400 && now % n > n / 4 && n - now % n > n / 4);
        n
    })
}

/// A quota key of its own for each call site, so tests sharing an Envoy never share counts.
fn user(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{test}-{}", N.fetch_add(1, Ordering::Relaxed))
}

fn chain() -> Chain {
    let jwks: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("envoy/examples/demo-issuer/jwks.json")).unwrap(),
    )
    .unwrap();
    let pets = |method: &str| json!({"grpc": {"service": "pets.v1.Pets", "method": method}});
    let api_key_auth = json!({
        "realm": "grpc",
        "sources": [{"header": "x-api-key"}],
        "consumers": [
            {"id": "alice", "plan": "gold", "scopes": ["pets:read", "pets:write"],
             "keys": [{"sha256": digest(ALICE)}]},
            {"id": "bob", "plan": "gold", "scopes": ["pets:read"],
             "keys": [{"sha256": digest(BOB)}]},
            {"id": "carl", "plan": "tiny", "scopes": ["pets:read", "pets:write"],
             "keys": [{"sha256": digest(CARL)}]}
        ],
        "forward": {"consumer_id_header": "x-consumer-id"}
    });
    let scope_authz = json!({
        "realm": "grpc",
        "providers": [{"name": "demo", "issuer": "https://demo-issuer.apim.local",
                       "audiences": ["demo-api"], "algorithms": ["RS256"],
                       "jwks": {"inline": jwks}}],
        "rules": [
            {"match": pets("GetPet"), "require": {"all_of": ["pets:read"]}},
            {"match": pets("ListPets"), "require": {"all_of": ["pets:read"]}},
            {"match": {"grpc": {"service": "pets.v1.Pets"}}, "require": {"all_of": ["pets:write"]}},
            {"match": {"path": {"prefix": "/rest"}, "methods": ["POST"]}, "require": {"all_of": ["pets:write"]}},
            {"match": {"path": {"prefix": "/rest"}}, "require": {"all_of": ["pets:read"]}}
        ],
        "default_require": {"all_of": ["pets:write"]}
    });
    let quota = json!({
        "plans": {
            "gold": {"limits": [{"requests": 100000, "per": long_window(), "name": "gold"}]},
            "tiny": {"limits": [{"requests": 3, "per": long_window(), "name": "tiny"}]}
        },
        "key": ["consumer", {"header": "x-user"}],
        "rules": [
            {"match": pets("DeletePet"), "cost": 2},
            {"match": {"grpc": {"service": "pets.v1.Pets", "method": "AddPets"},
                       "hosts": ["metered.example"]}, "message_cost": 1}
        ]
    });
    let transform = json!({
        "rules": [{"match": {"grpc": {"service": "pets.v1.Pets"}},
                   "request": {"headers": {"add": {"x-transform": "grpc {{consumer.id}}"}}},
                   "response": [{"headers": {"add": {"x-served-by": "gateway"}}}]}]
    });
    // GraphQL on the same listener: guarded on /graphql only.
    let graphql_guard = json!({
        "rules": [{"match": {"path": {"prefix": "/graphql"}}}],
        "limits": {"max_depth": 2}
    });
    Chain::new()
        .filter(Filter::ApiKeyAuth, &api_key_auth.to_string())
        .filter(Filter::ScopeAuthz, &scope_authz.to_string())
        .filter(Filter::GraphqlGuard, &graphql_guard.to_string())
        .filter(Filter::Quota, &quota.to_string())
        .filter(Filter::Transform, &transform.to_string())
}

/// The Envoy of `form`: `/pets.v1.Pets/` to the gRPC service (HTTP/2), the rest to the echo
/// upstream.
fn envoy(form: Form) -> &'static Envoy {
    static ENVOYS: PerForm = PerForm::new();
    ENVOYS.get(form, |form| {
        let main = listener("main", "upstream")
            .route_to("grpc", "/pets.v1.Pets/", "grpc")
            .route("rest", "/")
            .chain(&chain(), form);
        let grpc = upstream_cluster("grpc").port(grpc_port()).http2();
        Envoy::start(&bootstrap(&[main], &[upstream_cluster("upstream"), grpc])).unwrap()
    })
}

fn client(form: Form) -> (Client, LogOnFailure) {
    let envoy = envoy(form);
    (Client::connect(envoy.port()).unwrap(), LogOnFailure(envoy))
}

/// A refusal as the client got it: status code, `grpc-message` (decoded by tonic) and the
/// decoded details, which must repeat the code and message.
fn refusal(status: &tonic::Status) -> Refusal {
    let details = Refusal::decode(status.details()).unwrap_or_else(|e| panic!("{e}: {status:?}"));
    assert_eq!(details.code, status.code() as i32, "{status:?}");
    assert_eq!(details.message, status.message(), "{status:?}");
    details
}

fn info(r: &Refusal) -> (&str, &str) {
    let (reason, domain, _) = r.info.as_ref().expect("an ErrorInfo");
    (reason.as_str(), domain.as_str())
}

#[test]
fn a_unary_call_with_a_key_reaches_the_service_with_the_consumer_and_transformed_metadata() {
    for_each_form(|form| {
        let (mut c, _log) = client(form);
        let (pet, metadata) = c
            .unary_with_metadata(
                "GetPet",
                7,
                &[("x-api-key", ALICE), ("x-user", &user("unary"))],
            )
            .unwrap();
        assert_eq!((pet.id, pet.name.as_str()), (7, "pet-7"));
        // transform's response header operation reaches the client as initial metadata.
        assert!(
            metadata.contains(&("x-served-by".to_string(), "gateway".to_string())),
            "{metadata:?}"
        );
        assert!(
            pet.seen.contains(&"x-consumer-id: alice".to_string()),
            "{:?}",
            pet.seen
        );
        assert!(
            pet.seen.contains(&"x-transform: grpc alice".to_string()),
            "{:?}",
            pet.seen
        );
        assert!(
            !pet.seen.iter().any(|h| h.starts_with("x-api-key")),
            "{:?}",
            pet.seen
        );
    });
}

#[test]
fn no_key_is_unauthenticated_with_error_info() {
    for_each_form(|form| {
        let (mut c, _log) = client(form);
        let status = c.unary("GetPet", 1, &[]).unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        let r = refusal(&status);
        assert_eq!(info(&r), ("missing_api_key", "api-key-auth"));
        assert_eq!(r.retry_delay, None);
        assert!(
            status.metadata().get("www-authenticate").is_some(),
            "{status:?}"
        );
    });
}

#[test]
fn a_write_method_without_the_write_scope_is_permission_denied() {
    for_each_form(|form| {
        let (mut c, _log) = client(form);
        let status = c
            .unary(
                "DeletePet",
                1,
                &[("x-api-key", BOB), ("x-user", &user("scope"))],
            )
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        let r = refusal(&status);
        assert_eq!(info(&r), ("insufficient_scope", "scope-authz"));
        // Client streaming is a write too.
        let status = c
            .add_pets(2, &[("x-api-key", BOB), ("x-user", &user("scope"))])
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    });
}

#[test]
fn read_methods_need_only_the_read_scope() {
    for_each_form(|form| {
        let (mut c, _log) = client(form);
        let who = user("read");
        let md = [("x-api-key", BOB), ("x-user", who.as_str())];
        assert_eq!(c.unary("GetPet", 3, &md).unwrap().id, 3);
        let pets = c.list_pets(4, &md).unwrap();
        assert_eq!(pets.iter().map(|p| p.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
    });
}

#[test]
fn the_read_rule_never_loosens_a_request_that_is_not_a_clean_grpc_call() {
    for_each_form(|form| {
        let envoy = envoy(form);
        let _log = LogOnFailure(envoy);
        // GetPet's path with a JSON content type, with a query, with an escape, with a second
        // content-type: the default (write) holds, and the refusal is REST-shaped for the JSON
        // caller, gRPC-shaped (7) for the others.
        const G: (&str, &str) = ("content-type", "application/grpc");
        let cases: [(&str, &[(&str, &str)]); 4] = [
            (
                "/pets.v1.Pets/GetPet",
                &[("content-type", "application/json")],
            ),
            ("/pets.v1.Pets/GetPet?x=1", &[G]),
            ("/pets.v1.Pets/G%65tPet", &[G]),
            (
                "/pets.v1.Pets/GetPet",
                &[G, ("content-type", "application/json")],
            ),
        ];
        for (path, types) in cases {
            let mut headers = vec![("x-api-key", BOB), ("te", "trailers")];
            headers.extend_from_slice(types);
            let r = send_h2(
                envoy.port(),
                "POST",
                path,
                &headers,
                // No body: the headers end the stream, so the early reply races no upload
                // (curl reports a reset of a stream it is still sending as an error).
                None,
            )
            .unwrap();
            if types == [("content-type", "application/json")] {
                assert_eq!(r.status, 403, "{path} {}", r.text());
                assert_eq!(r.json()["code"], "insufficient_scope", "{path}");
            } else {
                assert_eq!(r.status, 200, "{path} {types:?}");
                assert_eq!(r.headers_all("grpc-status"), ["7"], "{path} {types:?}");
            }
        }
    });
}

#[test]
fn a_refusal_carries_one_grpc_status_message_and_details_and_no_body() {
    for_each_form(|form| {
        let envoy = envoy(form);
        let _log = LogOnFailure(envoy);
        let r = send_h2(
            envoy.port(),
            "POST",
            "/pets.v1.Pets/GetPet",
            &[("content-type", "application/grpc"), ("te", "trailers")],
            None,
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.headers_all("content-type"), ["application/grpc"]);
        assert_eq!(r.headers_all("grpc-status"), ["16"]);
        assert_eq!(
            r.headers_all("grpc-message"),
            ["No API key was presented."],
            "{:?}",
            r.headers
        );
        assert_eq!(r.headers_all("grpc-status-details-bin").len(), 1);
        assert!(r.body.is_empty(), "{}", r.text());
    });
}

#[test]
fn quota_counts_a_stream_once_and_refuses_with_resource_exhausted_and_retry_info() {
    for_each_form(|form| {
        let (mut c, _log) = client(form);
        let who = user("quota");
        let md = [("x-api-key", CARL), ("x-user", who.as_str())];
        // Three calls of the three kinds, the streams of several messages each: three counts.
        assert_eq!(c.list_pets(5, &md).unwrap().len(), 5);
        assert_eq!(c.add_pets(4, &md).unwrap().added, 4);
        assert_eq!(c.unary("GetPet", 1, &md).unwrap().id, 1);
        let status = c.unary("GetPet", 1, &md).unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        let r = refusal(&status);
        assert_eq!(info(&r), ("quota_exceeded", "quota"));
        let (_, _, metadata) = r.info.as_ref().unwrap();
        assert_eq!(metadata.get("limit").map(String::as_str), Some("tiny"));
        let retry = r.retry_delay.expect("a RetryInfo");
        assert!(retry > 0 && retry as u64 <= long_window(), "{retry}");
        // The RateLimit fields go out as the reply's headers.
        let ratelimit = status.metadata().get("ratelimit").expect("RateLimit");
        assert!(
            ratelimit.to_str().unwrap().starts_with("\"tiny\";r=0;"),
            "{ratelimit:?}"
        );
        assert_eq!(
            status
                .metadata()
                .get("retry-after")
                .unwrap()
                .to_str()
                .unwrap(),
            retry.to_string()
        );
    });
}

#[test]
fn a_message_cost_charges_each_request_message_and_ends_the_stream_when_exhausted() {
    for_each_form(|form| {
        let envoy = envoy(form);
        let _log = LogOnFailure(envoy);
        let mut c = Client::connect_as(envoy.port(), Some("metered.example")).unwrap();
        // The call (1) and its two messages (1 each): carl's 3.
        let who = user("messages");
        let md = [("x-api-key", CARL), ("x-user", who.as_str())];
        assert_eq!(c.add_pets(2, &md).unwrap().added, 2);
        let status = c.add_pets(1, &md).unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        // Five messages on a fresh count: the call and two messages fit, the third message
        // does not: the stream is ended with RESOURCE_EXHAUSTED, the service never answers.
        let who = user("messages");
        let md = [("x-api-key", CARL), ("x-user", who.as_str())];
        let status = c.add_pets(5, &md).unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        let r = refusal(&status);
        assert_eq!(info(&r), ("quota_exceeded", "quota"));
        assert!(r.retry_delay.is_some_and(|s| s > 0), "{r:?}");
    });
}

#[test]
fn a_method_cost_is_charged_per_call() {
    for_each_form(|form| {
        let (mut c, _log) = client(form);
        let who = user("cost");
        let md = [("x-api-key", CARL), ("x-user", who.as_str())];
        // DeletePet costs 2 of carl's 3: one more call fits, the next does not.
        assert_eq!(c.unary("DeletePet", 9, &md).unwrap().id, 9);
        assert_eq!(c.unary("GetPet", 1, &md).unwrap().id, 1);
        let status = c.unary("DeletePet", 9, &md).unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    });
}

#[test]
fn rest_on_the_same_listener_is_unaffected() {
    for_each_form(|form| {
        let envoy = envoy(form);
        let _log = LogOnFailure(envoy);
        let r = Request::get("/rest/pets")
            .header("x-api-key", BOB)
            .header("x-user", &user("rest"))
            .send(envoy.port())
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["path"], "/rest/pets");
        let r = Request::get("/rest/pets").send(envoy.port()).unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert_eq!(r.json()["code"], "missing_api_key");
        let r = Request::new("POST", "/rest/pets")
            .header("x-api-key", BOB)
            .header("x-user", &user("rest"))
            .send(envoy.port())
            .unwrap();
        assert_eq!(r.status, 403, "{}", r.text());
    });
}

#[test]
fn graphql_on_the_same_listener_is_guarded_as_without_grpc() {
    for_each_form(|form| {
        let envoy = envoy(form);
        let _log = LogOnFailure(envoy);
        let post = |query: &str| {
            Request::new("POST", "/graphql")
                .header("x-api-key", ALICE)
                .header("x-user", &user("graphql"))
                .header("content-type", "application/json")
                .body(json!({ "query": query }).to_string().into_bytes())
                .send(envoy.port())
                .unwrap()
        };
        // Within the limit: it reaches the upstream.
        let r = post("{ pets { name } }");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["path"], "/graphql");
        // Too deep: refused in GraphQL's own shape, not gRPC's.
        let r = post("{ pets { owner { name } } }");
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(
            r.header("content-type"),
            Some("application/graphql-response+json")
        );
        assert_eq!(
            r.json()["errors"][0]["extensions"]["code"],
            "MAX_DEPTH_EXCEEDED"
        );
        // And a gRPC call beside it is untouched by the guard.
        let (mut c, _grpc_log) = client(form);
        let pet = c
            .unary(
                "GetPet",
                1,
                &[("x-api-key", ALICE), ("x-user", &user("graphql"))],
            )
            .unwrap();
        assert_eq!(pet.id, 1);
    });
}
