//! What the api-key-auth end-to-end tests (`api_key_auth_*.rs`) share: the demo keys, the
//! Envoy they run against (built with the harness's chain builder, in any [`Form`]) and the
//! helpers that assert what the client got and what the echo upstream received.
//!
//! Demo keys and their SHA-256 digests (`printf %s KEY | sha256sum`):
//!
//! | consumer | key                               | digest                                                             |
//! |----------|-----------------------------------|--------------------------------------------------------------------|
//! | alice    | demo-key-alice-0123456789abcdef   | dc275ab1c4bc17899cdfff16563da508be4c9275589ce936577f52f0512f22bb |
//! | bob      | demo-key-bob-0123456789abcdef0    | 3ddaba5e842f5e66e7dfbc3a318416be5097ae49ffe348fbf2c6f9e815a2df26 |
//! | ops      | demo-key-ops-0123456789abcdef0    | f2f969985aa76e1769f4d8a087af3e7b4838da06abb09626e0d1bb7b162c0739 |
//! | carol    | demo-key-expired-0123456789abc    | 8001d322e75d5c46e82fa8bf6ce7aa3b8cbcd527c55a4f519ba5099a286b875a |
//! | frank    | test-key-future-0123456789abcd    | a3f2a77757bbe278b30255719ebff44103cb271f2d776736830166734c7c96b6 |
//! | dan      | test-key-disabled-0123456789ab    | 3230ebef4230735899d31a9e598b7bba76d4d88611918119f93513e455f05eaf |
//! | dave     | test-key-dave-0123456789abcdef    | 4772bf8cf1b7d6b4031c722438d985ef6620e4928fe2ea983bb50b74175fc4b6 |

// Test-only helpers: a failed expectation should stop the test with a message, so
// unwrap/expect/panic/indexing are the right tools here (as in the harness). Not every test
// file uses every helper.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use apim_integration::bootstrap::{bootstrap, listener, upstream_cluster};
use apim_integration::chain::{lua, Chain, Filter, Form, PerForm};
use apim_integration::{Envoy, LogOnFailure, Request, Response};
use serde_json::Value;

pub const ALICE: &str = "demo-key-alice-0123456789abcdef";
pub const BOB: &str = "demo-key-bob-0123456789abcdef0";
pub const OPS: &str = "demo-key-ops-0123456789abcdef0";
/// carol's key expired on 2020-01-01.
pub const EXPIRED: &str = "demo-key-expired-0123456789abc";
/// frank's key is valid from 2099-01-01 on.
pub const FUTURE: &str = "test-key-future-0123456789abcd";
/// dan is a disabled consumer.
pub const DISABLED: &str = "test-key-disabled-0123456789ab";
/// dave's key has a validity window around now (2020 to 2099).
pub const DAVE: &str = "test-key-dave-0123456789abcdef";
/// Well-formed, but no consumer has it.
pub const UNKNOWN: &str = "demo-key-nobody-0123456789abcd";

/// alice's identity as the filter publishes it (`apim_consumer` filter state).
pub const ALICE_IDENTITY: &str = r#"{"id":"alice","plan":"gold","groups":["partners"],"scopes":["pets:read"],"source":"api-key-auth"}"#;
pub const GUEST_IDENTITY: &str = r#"{"id":"guest","plan":"free","source":"api-key-auth"}"#;

/// The realm of the main listener's filter; the `defaults` listener uses the default, `apim`.
pub const REALM: &str = "test-realm";

/// The `main` listener's filter: every key source, consumers in every state, route rules by
/// Envoy route name (and one by path and method), forwarding of id and plan, CORS preflight.
pub const MAIN_CONFIG: &str = r#"{
  "realm": "test-realm",
  "sources": [
    {"header": "x-api-key"},
    {"authorization": "ApiKey"},
    {"query": "api_key"},
    {"cookie": "api_key"}
  ],
  "consumers": [
    {"id": "alice", "plan": "gold", "groups": ["partners"], "scopes": ["pets:read"],
     "keys": [{"sha256": "dc275ab1c4bc17899cdfff16563da508be4c9275589ce936577f52f0512f22bb"}]},
    {"id": "bob", "plan": "silver",
     "keys": [{"sha256": "3ddaba5e842f5e66e7dfbc3a318416be5097ae49ffe348fbf2c6f9e815a2df26"}]},
    {"id": "ops", "groups": ["ops"],
     "keys": [{"sha256": "f2f969985aa76e1769f4d8a087af3e7b4838da06abb09626e0d1bb7b162c0739"}]},
    {"id": "carol", "plan": "gold",
     "keys": [{"sha256": "8001d322e75d5c46e82fa8bf6ce7aa3b8cbcd527c55a4f519ba5099a286b875a",
               "expires_at": "2020-01-01T00:00:00Z"}]},
    {"id": "frank",
     "keys": [{"sha256": "a3f2a77757bbe278b30255719ebff44103cb271f2d776736830166734c7c96b6",
               "not_before": "2099-01-01T00:00:00Z"}]},
    {"id": "dan", "disabled": true,
     "keys": [{"sha256": "3230ebef4230735899d31a9e598b7bba76d4d88611918119f93513e455f05eaf"}]},
    {"id": "dave", "plan": "bronze",
     "keys": [{"sha256": "4772bf8cf1b7d6b4031c722438d985ef6620e4928fe2ea983bb50b74175fc4b6",
               "not_before": "2020-01-01T00:00:00Z", "expires_at": "2099-01-01T00:00:00Z"}]},
    {"id": "guest", "plan": "free"}
  ],
  "rules": [
    {"match": {"route_name": "health"}, "skip": true},
    {"match": {"route_name": "admin"}, "allow": {"groups": ["ops"], "consumers": ["bob"]}},
    {"match": {"route_name": "public"}, "anonymous": "guest"},
    {"match": {"path": {"prefix": "/docs"}, "methods": ["GET"]}, "skip": true}
  ],
  "forward": {"consumer_id_header": "x-consumer-id", "consumer_plan_header": "x-consumer-plan"},
  "allow_cors_preflight": true
}
"#;

/// The `defaults` listener's filter: the defaults (realm `apim`, only the `x-api-key` header,
/// no forwarding) except `strip_credential: false`.
const DEFAULTS_CONFIG: &str = r#"{
  "consumers": [
    {"id": "alice", "plan": "gold",
     "keys": [{"sha256": "dc275ab1c4bc17899cdfff16563da508be4c9275589ce936577f52f0512f22bb"}]}
  ],
  "strip_credential": false
}
"#;

/// After the filter: copies the `wasm.apim_consumer` filter state into `x-lua-consumer` (and
/// logs a marker for `/__mark/...` paths, see [`flush_log`]).
const LUA_CONSUMER: &str = r#"function envoy_on_request(handle)
  local path = handle:headers():get(":path") or ""
  if string.sub(path, 1, 8) == "/__mark/" then
    handle:logWarn("log-marker " .. path)
  end
  local state = handle:streamInfo():filterState():get("wasm.apim_consumer")
  if state == nil then
    handle:headers():replace("x-lua-consumer", "(none)")
  else
    handle:headers():replace("x-lua-consumer", tostring(state))
  end
end
"#;

/// Two listeners in front of the echo upstream:
///
/// - `main`: the filter configured with `main_config` (normally [`MAIN_CONFIG`]) in its own VM,
///   then [`LUA_CONSUMER`]; the virtual host also adds the same filter state as
///   `x-filter-state` through Envoy's `%FILTER_STATE(...)%` formatter.
/// - `defaults`: the filter with [`DEFAULTS_CONFIG`], in its own VM.
pub fn config(form: Form, main_config: &str) -> String {
    let main = listener("main", "upstream")
        .route_config_name("main")
        .request_header_to_add("x-filter-state", "%FILTER_STATE(wasm.apim_consumer:PLAIN)%")
        .route_path("health", "/health")
        .route("public", "/public")
        .route("admin", "/admin")
        // A second route with the same name: rules follow the name, not the path.
        .route("admin", "/console")
        .route("everything", "/")
        .chain(
            &Chain::new()
                .filter(Filter::ApiKeyAuth, main_config)
                .other(lua(LUA_CONSUMER))
                .vm("main"),
            form,
        );
    let defaults = listener("defaults", "upstream")
        .route_config_name("defaults")
        .chain(
            &Chain::new()
                .filter(Filter::ApiKeyAuth, DEFAULTS_CONFIG)
                .vm("defaults"),
            form,
        );
    bootstrap(&[main, defaults], &[upstream_cluster("upstream")])
}

/// A dedicated Envoy with [`config`] and `workers` workers (for tests that count).
pub fn start(form: Form, workers: u32) -> Envoy {
    Envoy::builder()
        .concurrency(workers)
        .start(&config(form, MAIN_CONFIG))
        .unwrap_or_else(|e| panic!("{e}"))
}

// ---------------------------------------------------------------------------------------------
// The shared Envoy

/// The Envoy most tests of a file share, one per form, started on first use with one worker.
/// It is stopped when the test process exits ([`PerForm`]).
pub fn shared(form: Form) -> &'static Envoy {
    static SHARED: PerForm = PerForm::new();
    SHARED.get(form, |form| {
        Envoy::builder()
            .concurrency(1)
            .start(&config(form, MAIN_CONFIG))
            .unwrap_or_else(|e| panic!("starting the shared Envoy: {e}"))
    })
}

/// The shared Envoy's `main` listener port, and a guard that shows its log on failure.
pub fn main_listener(form: Form) -> (u16, LogOnFailure) {
    let envoy = shared(form);
    (envoy.port(), LogOnFailure(envoy))
}

// ---------------------------------------------------------------------------------------------
// Helpers

pub fn get(path: &str) -> Request {
    Request::get(path)
}

pub fn send(port: u16, request: &Request) -> Response {
    request
        .send(port)
        .unwrap_or_else(|e| panic!("sending {request:?}: {e}"))
}

/// What the echo upstream received, from a 200 response that came from it.
pub struct Upstream(pub Value);

impl Upstream {
    pub fn of(response: &Response) -> Self {
        assert_eq!(
            response.status,
            200,
            "expected the upstream's 200, got: {}",
            response.text()
        );
        assert_eq!(
            response.header("content-type"),
            Some("application/json"),
            "not the echo upstream's answer: {}",
            response.text()
        );
        Self(response.json())
    }

    pub fn path(&self) -> &str {
        self.0["path"].as_str().unwrap()
    }

    pub fn method(&self) -> &str {
        self.0["method"].as_str().unwrap()
    }

    /// Every value the upstream saw for a header, in order.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.0["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h[0] == name)
            .map(|h| h[1].as_str().unwrap().to_owned())
            .collect()
    }

    /// The one value of a header; fails if it was absent or sent more than once.
    pub fn one(&self, name: &str) -> String {
        let values = self.values(name);
        assert_eq!(values.len(), 1, "{name}: {values:?} in {}", self.0);
        values.into_iter().next().unwrap()
    }

    pub fn lacks(&self, name: &str) {
        assert_eq!(
            self.values(name),
            Vec::<String>::new(),
            "{name} reached the upstream: {}",
            self.0
        );
    }

    /// The forwarded consumer headers: `(x-consumer-id, x-consumer-plan)` values.
    pub fn consumer(&self) -> (Vec<String>, Vec<String>) {
        (self.values("x-consumer-id"), self.values("x-consumer-plan"))
    }
}

/// Asserts a local reply from the filter: status, problem+json, code, and `www-authenticate`
/// on (and only on) 401s. Returns the body.
pub fn assert_denied(response: &Response, status: u16, code: &str, realm: &str) -> Value {
    assert_eq!(response.status, status, "body: {}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json"),
        "{response:?}"
    );
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let www = format!("ApiKey realm=\"{realm}\"");
    let want_www = (status == 401).then_some(www.as_str());
    assert_eq!(
        response.header("www-authenticate"),
        want_www,
        "{response:?}"
    );
    let body = response.json();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], format!("urn:apim:problem:{code}"), "{body}");
    body
}

/// The expected outcome of one request in a table.
#[derive(Debug, Clone, Copy)]
pub enum Want {
    /// Reached the upstream as this consumer (id, plan), with no credential left on it.
    As(&'static str, Option<&'static str>),
    /// Reached the upstream with no consumer headers (skipped route or preflight).
    Passed,
    /// A local reply from the filter with this status and code.
    Denied(u16, &'static str),
}

pub fn check(port: u16, realm: &str, what: &str, request: &Request, want: Want) -> Response {
    let response = send(port, request);
    match want {
        Want::As(id, plan) => {
            assert_eq!(response.status, 200, "{what}: {}", response.text());
            let up = Upstream::of(&response);
            let plans: Vec<String> = plan.into_iter().map(str::to_owned).collect();
            assert_eq!(
                up.consumer(),
                (vec![id.to_owned()], plans),
                "{what}: {}",
                up.0
            );
            // The Lua filter after ours read the same consumer from the filter state.
            let identity: Value = serde_json::from_str(&up.one("x-lua-consumer")).unwrap();
            assert_eq!(identity["id"], id, "{what}");
            up.lacks("x-api-key");
            assert!(
                !up.path().contains("api_key="),
                "{what}: key left in {}",
                up.path()
            );
            for cookie in up.values("cookie") {
                assert!(!cookie.contains("api_key="), "{what}: key left in {cookie}");
            }
            for auth in up.values("authorization") {
                assert!(
                    !auth.to_ascii_lowercase().starts_with("apikey"),
                    "{what}: key left in {auth}"
                );
            }
        }
        Want::Passed => {
            assert_eq!(response.status, 200, "{what}: {}", response.text());
            let up = Upstream::of(&response);
            assert_eq!(up.consumer(), (vec![], vec![]), "{what}: {}", up.0);
            assert_eq!(
                up.one("x-lua-consumer"),
                "(none)",
                "{what}: nothing published"
            );
        }
        Want::Denied(status, code) => {
            assert_denied(&response, status, code, realm);
        }
    }
    response
}

/// Sends one request that makes the Lua filter log `log-marker <path>`, and waits (bounded)
/// until that line is in the log: every line logged before it is then in the file too.
pub fn flush_log(envoy: &Envoy, port: u16, tag: &str) -> String {
    let path = format!("/__mark/{tag}");
    let r = send(port, &get(&path).header("x-api-key", ALICE));
    assert_eq!(r.status, 200, "{}", r.text());
    envoy
        .wait_for_log(&format!("log-marker {path}"))
        .unwrap_or_else(|e| panic!("{e}"));
    envoy.log()
}

/// Lines that would mean the module trapped or panicked.
pub fn assert_no_traps(log: &str) {
    for line in log.lines() {
        let lower = line.to_ascii_lowercase();
        for needle in [
            "panicked",
            "wasm trap",
            "function: proxy_on_request_headers failed",
            "uncaught runtimeerror",
            "plugin has been marked as failed",
        ] {
            assert!(!lower.contains(needle), "Envoy logged {line:?}");
        }
    }
}
