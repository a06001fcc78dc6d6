//! The soak's traffic mix against the shipped gateway (`envoy/gateway.yaml`): valid callers
//! and hostile requests, each with what its answers may be.
//!
//! Hostile cases are judged by what must never happen rather than by today's exact status, since
//! fixes on other branches change some of them (a path Envoy now normalises or rejects, a method
//! graphql-guard now refuses): a hostile request never reaches the upstream, never gets a 2xx
//! (but a GraphQL error answer, which GraphQL-over-HTTP sends with 200), never a 5xx. `today` records the status each gets on the current code, for the report.

use crate::client::Request;

/// The demo keys (plaintext in `envoy/gateway.yaml`'s header comment).
pub const ALICE: &str = "demo-key-alice-0123456789abcdef"; // gold, partners, pets:read+write
pub const BOB: &str = "demo-key-bob-0123456789abcdef0"; // silver, pets:read
pub const OPS: &str = "demo-key-ops-0123456789abcdef0"; // group ops, no plan
pub const CAROL_EXPIRED: &str = "demo-key-expired-0123456789abc";

/// 12 levels: over every plan's max_depth (default 6, gold 10).
pub const DEEP_QUERY: &str =
    r#"{"query":"{ a { b { c { d { e { f { g { h { i { j { k { l } } } } } } } } } } } }"}"#;
const FINE_QUERY: &str = r#"{"query":"query Pets { pets(first: 10) { id name } }"}"#;
const INTROSPECTION: &str = r#"{"query":"{ __schema { types { name } } }"}"#;

/// Bearer tokens from the demo issuer (`apim token mint`, DEMO-ONLY key), for the OAuth cases.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    /// `pets:read`, sub carol.
    pub read: String,
    /// `pets:read pets:write`, sub dora.
    pub write: String,
    /// `pets:writer pets:read`: a scope that only looks like `pets:write`.
    pub substring: String,
    /// Expired an hour ago.
    pub expired: String,
}

/// How a case's request is sent.
#[derive(Clone, Debug)]
pub enum Send {
    /// HTTP/1.1 through the harness client (one connection per request).
    H1(Request),
    /// Raw bytes, as malformed as the case wants.
    Raw(Vec<u8>),
    /// HTTP/2 (prior knowledge) through curl, which sends the method exactly as given.
    H2 {
        method: &'static str,
        path: &'static str,
        headers: Vec<(&'static str, String)>,
        body: Option<&'static str>,
    },
}

/// What a case's answers may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Valid traffic: one of these statuses, or quota's 429 (`quota_exceeded`).
    Valid(&'static [u16]),
    /// Valid traffic on a route quota skips: exactly these statuses.
    Exact(&'static [u16]),
    /// Hostile: never the upstream, never 2xx (but a GraphQL error answer), never 5xx.
    /// `today`: the statuses the current code gives (documentation, not asserted).
    Hostile { today: &'static [u16] },
}

#[derive(Clone, Debug)]
pub struct Case {
    pub name: &'static str,
    /// How many times the case appears in one pass over the mix.
    pub weight: u32,
    pub send: Send,
    pub expect: Expect,
}

fn get(path: &str) -> Request {
    Request::get(path)
}

fn key(r: Request, key: &str) -> Request {
    r.header("x-api-key", key)
}

fn graphql(key_value: &str, body: &str) -> Request {
    key(Request::new("POST", "/graphql"), key_value)
        .header("content-type", "application/json")
        .body(body.as_bytes().to_vec())
}

fn valid(name: &'static str, send: Send, ok: &'static [u16]) -> Case {
    Case {
        name,
        weight: 3,
        send,
        expect: Expect::Valid(ok),
    }
}

fn hostile(name: &'static str, send: Send, today: &'static [u16]) -> Case {
    Case {
        name,
        weight: 1,
        send,
        expect: Expect::Hostile { today },
    }
}

fn bearer(r: Request, token: &str) -> Request {
    r.header("authorization", &format!("Bearer {token}"))
}

/// The mix. Every case names the consumer it runs as, so a status is easy to explain.
pub fn all(tokens: &Tokens) -> Vec<Case> {
    use self::Send::{Raw, H1, H2};
    let big = "x".repeat(70 * 1024); // over Envoy's default 60 KiB of request headers
    let mut many = get("/pets");
    for i in 0..120 {
        // over Envoy's default of 100 request headers
        many = many.header(&format!("x-filler-{i}"), "1");
    }
    vec![
        // ---- valid ----
        valid("alice GET /pets", H1(key(get("/pets"), ALICE)), &[200]),
        valid(
            "bob GET /pets?api_key=",
            H1(get(&format!("/pets?api_key={BOB}&page=2"))),
            &[200],
        ),
        valid(
            "alice POST /pets (pets:write)",
            H1(key(Request::new("POST", "/pets"), ALICE)
                .header("content-type", "application/json")
                .body(b"{\"name\":\"rex\"}".to_vec())),
            &[200],
        ),
        valid("ops GET /admin/users", H1(key(get("/admin/users"), OPS)), &[200]),
        valid("anonymous GET /public/catalog", H1(get("/public/catalog")), &[200]),
        Case {
            name: "GET /health",
            weight: 3,
            send: H1(get("/health")),
            expect: Expect::Exact(&[200]),
        },
        valid("alice GraphQL fine query", H1(graphql(ALICE, FINE_QUERY)), &[200]),
        valid(
            "alice GET /v2/pets/7 (transform)",
            H1(key(get("/v2/pets/7?debug=1"), ALICE)),
            &[200],
        ),
        valid(
            "CORS preflight OPTIONS /pets",
            H1(Request::new("OPTIONS", "/pets")
                .header("origin", "https://app.example")
                .header("access-control-request-method", "GET")),
            &[200],
        ),
        valid(
            "alice GET /status/503 (upstream 503, expected)",
            H1(key(get("/status/503"), ALICE)),
            &[503],
        ),
        valid(
            "bob GET /pets over HTTP/2",
            H2 {
                method: "GET",
                path: "/pets",
                headers: vec![("x-api-key", BOB.into())],
                body: None,
            },
            &[200],
        ),
        valid(
            "carol's token (pets:read) GET /oauth/pets",
            H1(bearer(get("/oauth/pets"), &tokens.read)),
            &[200],
        ),
        valid(
            "dora's token (pets:write) POST /oauth/pets",
            H1(bearer(Request::new("POST", "/oauth/pets"), &tokens.write).body(b"{}".to_vec())),
            &[200],
        ),
        // ---- hostile: credentials ----
        hostile("no key GET /pets", H1(get("/pets")), &[401]),
        hostile("bad key", H1(key(get("/pets"), "not-a-real-key")), &[401]),
        hostile("expired key", H1(key(get("/pets"), CAROL_EXPIRED)), &[401]),
        hostile(
            "two different keys",
            H1(key(get(&format!("/pets?api_key={OPS}")), ALICE)),
            &[401],
        ),
        hostile(
            "forged x-consumer-id, no key",
            H1(get("/pets").header("x-consumer-id", "alice")),
            &[401],
        ),
        hostile(
            "control byte in the key",
            H1(get("/pets").header_bytes("x-api-key", b"demo-key\x01alice")),
            &[400],
        ),
        hostile("alice GET /admin/users (not ops)", H1(key(get("/admin/users"), ALICE)), &[403]),
        hostile(
            "bob POST /pets (no pets:write)",
            H1(key(Request::new("POST", "/pets"), BOB).body(b"{}".to_vec())),
            &[403],
        ),
        hostile(
            "invalid bearer on /oauth/",
            H1(get("/oauth/pets").header("authorization", "Bearer not.a.jwt")),
            &[401],
        ),
        hostile(
            "read-only token POST /oauth/pets",
            H1(bearer(Request::new("POST", "/oauth/pets"), &tokens.read).body(b"{}".to_vec())),
            &[403],
        ),
        hostile(
            "pets:writer token POST /oauth/pets",
            H1(bearer(Request::new("POST", "/oauth/pets"), &tokens.substring).body(b"{}".to_vec())),
            &[403],
        ),
        hostile(
            "expired token GET /oauth/pets",
            H1(bearer(get("/oauth/pets"), &tokens.expired)),
            &[401],
        ),
        hostile(
            "alg none bearer on /oauth/",
            H1(get("/oauth/pets").header(
                "authorization",
                "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJldmUiLCJzY29wZSI6InBldHM6cmVhZCJ9.",
            )),
            &[401],
        ),
        // ---- hostile: path confusion (issue 10 item 1) ----
        hostile("no key /public/..%2Fadmin/users", H1(get("/public/..%2Fadmin/users")), &[200]),
        hostile(
            "no key /public/%2e%2e%2fadmin/users",
            H1(get("/public/%2e%2e%2fadmin/users")),
            &[200],
        ),
        hostile("no key /public/..%5Cadmin/users", H1(get("/public/..%5Cadmin/users")), &[200]),
        hostile("no key /public/../admin/users", H1(get("/public/../admin/users")), &[200]),
        hostile(
            "alice /public/..%2Fadmin/users (not ops)",
            H1(key(get("/public/..%2Fadmin/users"), ALICE)),
            &[200],
        ),
        // ---- hostile: GraphQL (items 2 and 10) ----
        hostile("bob deep GraphQL POST", H1(graphql(BOB, DEEP_QUERY)), &[400]),
        hostile(
            "alice introspection",
            H1(graphql(ALICE, INTROSPECTION)),
            &[400, 403],
        ),
        hostile(
            "alice mutation over GET",
            H1(key(get("/graphql?query=mutation%7BaddPet%7Bid%7D%7D"), ALICE)),
            &[405],
        ),
        hostile(
            "bob deep GraphQL by PUT",
            H1(key(Request::new("PUT", "/graphql"), BOB)
                .header("content-type", "application/json")
                .body(DEEP_QUERY.as_bytes().to_vec())),
            &[200],
        ),
        hostile(
            "bob deep GraphQL, HTTP/2 :method post",
            H2 {
                method: "post",
                path: "/graphql",
                headers: vec![
                    ("x-api-key", BOB.into()),
                    ("content-type", "application/json".into()),
                ],
                body: Some(DEEP_QUERY),
            },
            &[200],
        ),
        hostile(
            "bob deep GraphQL, HTTP/2 :method get ?query=",
            H2 {
                method: "get",
                path: "/graphql?query=%7B%20a%20%7B%20b%20%7B%20c%20%7B%20d%20%7B%20e%20%7B%20f%20%7B%20g%20%7B%20h%20%7B%20i%20%7B%20j%20%7B%20k%20%7B%20l%20%7D%20%7D%20%7D%20%7D%20%7D%20%7D%20%7D%20%7D%20%7D%20%7D%20%7D%20%7D",
                headers: vec![("x-api-key", BOB.into())],
                body: None,
            },
            &[200],
        ),
        hostile(
            "bob persisted-query hash only (unknown hash)",
            H1(graphql(
                BOB,
                r#"{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"5e1f0c8a7d9b3e2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f"}}}"#,
            )),
            &[200],
        ),
        hostile(
            "bob WebSocket upgrade on /graphql",
            H1(key(get("/graphql"), BOB)
                .header("connection", "Upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-version", "13")
                .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
                .header("sec-websocket-protocol", "graphql-transport-ws")),
            &[],
        ),
        hostile(
            "alice 100 KiB GraphQL body",
            H1(graphql(ALICE, &format!("{{\"query\":\"{{ a }}\",\"x\":\"{}\"}}", "y".repeat(100 * 1024)))),
            &[413],
        ),
        // ---- hostile: protocol ----
        hostile("oversized header (70 KiB)", H1(key(get("/pets"), ALICE).header("x-big", &big)), &[431]),
        hostile("120 headers", H1(key(many, ALICE)), &[431]),
        hostile(
            "lower-case method over HTTP/1",
            Raw(format!("get /pets HTTP/1.1\r\nHost: x\r\nx-api-key: {ALICE}\r\nConnection: close\r\n\r\n").into_bytes()),
            &[400],
        ),
        hostile(
            "Content-Length with Transfer-Encoding, no key",
            Raw(b"POST /pets HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n".to_vec()),
            &[400],
        ),
    ]
}

/// One pass over the mix: each case repeated by its weight, interleaved (case order, then
/// again for the cases with weight left), so every stretch of the run sees every case.
pub fn schedule(cases: &[Case]) -> Vec<usize> {
    let max = cases.iter().map(|c| c.weight).max().unwrap_or(0);
    (0..max)
        .flat_map(|round| {
            cases
                .iter()
                .enumerate()
                .filter(move |(_, c)| c.weight > round)
                .map(|(i, _)| i)
        })
        .collect()
}
