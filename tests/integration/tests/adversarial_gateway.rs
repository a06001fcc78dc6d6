//! Hostile requests against the shipped gateway itself (`envoy/gateway.yaml`, ports moved to free
//! ones, the demo upstream replaced by the echo upstream): what its HTTP connection manager must
//! settle before any filter runs.
//!
//! Issue 10, item 1 (path confusion): `/public/..%2Fadmin/users` and its spellings matched the
//! `public` route and api-key-auth's `public` rule (anonymous `guest`) on the raw path, and a
//! backend that decodes `%2F` or resolves `..` served `/admin/users`. The gateway's HCM now
//! refuses encoded slashes (`path_with_escaped_slashes_action: REJECT_REQUEST`: 400) and resolves
//! dot segments (`normalize_path`), so `/public/../admin/users` is matched, and refused, as
//! `/admin/users` (401: no key). Each case also proves from the upstream cluster's request
//! counter, on an Envoy of its own, that nothing reached the upstream.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use apim_integration::demo_keys::ALICE;
use apim_integration::shipped::gateway_template;
use apim_integration::{send_raw, Envoy, LogOnFailure, Request};

/// The shipped gateway, on free ports, in front of the echo upstream.
fn gateway() -> Envoy {
    let template = gateway_template("envoy/gateway.yaml").unwrap();
    Envoy::builder().concurrency(1).start(&template).unwrap()
}

fn upstream_requests(envoy: &Envoy) -> u64 {
    envoy.upstream_requests("demo_upstream")
}

/// One test (one Envoy, requests in sequence) so the upstream counter's deltas are exact.
#[test]
fn path_confusion_never_reaches_the_upstream_as_guest() {
    let envoy: &'static Envoy = Box::leak(Box::new(gateway()));
    envoy.stop_when_process_exits();
    let _log = LogOnFailure(envoy);

    // Control: the same gateway does let a keyless request in on /public, as guest, so a 0
    // delta below means "refused", not "the counter does not move".
    let before = upstream_requests(envoy);
    let r = Request::get("/public/users").send(envoy.port()).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["path"], "/public/users");
    assert_eq!(
        upstream_requests(envoy),
        before + 1,
        "the control reached the upstream"
    );

    let cases: [(&str, u16); 9] = [
        // Encoded `/` or `\`: refused by the HCM before routing (REJECT_REQUEST).
        ("/public/..%2Fadmin/users", 400),
        ("/public/%2e%2e%2fadmin/users", 400),
        ("/public/..%5Cadmin/users", 400),
        ("/public/..%2fadmin/users", 400),
        // Dot segments sent as-is: normalised to /admin/users, which needs an ops key.
        ("/public/../admin/users", 401),
        ("/public/%2e%2e/admin/users", 401),
        // A raw backslash: normalize_path makes it `/`, so this is /admin/users too.
        ("/public/..\\admin/users", 401),
        ("/public/.%2e/admin/users", 401),
        // Merged slashes: `//admin` is `/admin`.
        ("//admin/users", 401),
    ];
    for (path, want) in cases {
        let before = upstream_requests(envoy);
        // Raw HTTP/1, exactly these bytes on the request line.
        let raw = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let r = send_raw(envoy.port(), raw.as_bytes()).unwrap();
        assert_eq!(r.status, want, "GET {path}: {}", r.text());
        assert_eq!(
            upstream_requests(envoy),
            before,
            "GET {path} reached the upstream: {}",
            r.text()
        );
        assert!(
            r.header("x-consumer-id").is_none() && !r.text().contains("guest"),
            "GET {path}: {}",
            r.text()
        );
    }
}

/// A backend that routes case-insensitively (Express, ASP.NET, IIS) serves `/ADMIN` as `/admin`
/// and `/GraphQL` as `/graphql`. The gateway's restricting routes (admin: ops group; graphql:
/// guarded) match without regard to case, so neither spelling walks around them: `/ADMIN` with
/// a key of the wrong group is 403, and a query too deep for the guard is refused on `/GraphQL`
/// exactly as on `/graphql`, with nothing reaching the upstream. (On the gateway before this
/// both reached the upstream: `/ADMIN` as an ordinary route, `/GraphQL` unguarded.)
#[test]
fn restricting_routes_ignore_case() {
    let envoy: &'static Envoy = Box::leak(Box::new(gateway()));
    envoy.stop_when_process_exits();
    let _log = LogOnFailure(envoy);

    // Deeper than alice's gold plan allows (max_depth 10).
    let deep = format!("{{{}x{}}}", "a{".repeat(12), "}".repeat(12));
    let query = format!("/graphql?query={}", urlencode(&deep));
    for path in ["/ADMIN/users", "/Admin/users", "/aDmIn"] {
        let before = upstream_requests(envoy);
        let r = Request::get(path)
            .header("x-api-key", ALICE)
            .send(envoy.port())
            .unwrap();
        assert_eq!(r.status, 403, "GET {path} as alice: {}", r.text());
        assert_eq!(
            upstream_requests(envoy),
            before,
            "GET {path} reached the upstream"
        );
    }
    for prefix in ["/graphql", "/GraphQL", "/GRAPHQL"] {
        let path = query.replacen("/graphql", prefix, 1);
        let before = upstream_requests(envoy);
        let r = Request::get(&path)
            .header("x-api-key", ALICE)
            .header("accept", "application/json")
            .send(envoy.port())
            .unwrap();
        // `application/json` callers get GraphQL-over-HTTP's 200 with the error in the body.
        assert_eq!(r.status, 200, "GET {prefix} deep query: {}", r.text());
        assert_eq!(
            r.json()["errors"][0]["extensions"]["code"],
            "MAX_DEPTH_EXCEEDED",
            "{prefix}: {}",
            r.text()
        );
        assert_eq!(
            upstream_requests(envoy),
            before,
            "{prefix} reached the upstream"
        );
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `;` path parameters and `..;` segments pass Envoy's normaliser untouched, and servlet
/// backends (Tomcat, Jetty, Spring) drop them: `/public/..;/admin/users` is served as
/// `/admin/users`. The filters read such an ambiguous path the widest way too, so alice (not in
/// the ops group) meets the admin rule however the path is spelled, and nothing reaches the
/// upstream; a keyless caller gets no anonymous pass on it. (Before: alice reached the
/// upstream on every one of these, a keyless caller as `guest` on the first.)
#[test]
fn path_parameters_never_walk_around_a_restricting_rule() {
    let envoy: &'static Envoy = Box::leak(Box::new(gateway()));
    envoy.stop_when_process_exits();
    let _log = LogOnFailure(envoy);
    let cases: [(&str, Option<&str>, u16); 6] = [
        ("/public/..;/admin/users", Some(ALICE), 403),
        ("/.;/admin/users", Some(ALICE), 403),
        ("/admin;x/users", Some(ALICE), 403),
        ("/Admin;x/users", Some(ALICE), 403),
        ("/public/..;/admin/users", None, 401),
        ("/public/..;/other", None, 401),
    ];
    for (path, key, want) in cases {
        let before = upstream_requests(envoy);
        let key_line = key.map_or(String::new(), |k| format!("x-api-key: {k}\r\n"));
        let raw = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\n{key_line}Connection: close\r\n\r\n"
        );
        let r = send_raw(envoy.port(), raw.as_bytes()).unwrap();
        assert_eq!(r.status, want, "GET {path} key={key:?}: {}", r.text());
        assert_eq!(
            upstream_requests(envoy),
            before,
            "GET {path} reached the upstream: {}",
            r.text()
        );
    }
}
