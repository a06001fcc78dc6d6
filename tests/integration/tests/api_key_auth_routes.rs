//! api-key-auth end to end: route rules (skip, allow-list, anonymous consumer, by route name
//! and by path and method) and CORS preflights.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod api_key_auth_common;

use api_key_auth_common::*;
use apim_integration::chain::for_each_form;
use apim_integration::Request;
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// 6: route rules

#[test]
fn skipped_route_needs_no_key_and_scrubs_forged_consumer_headers() {
    for_each_form(|form| {
        let (port, _log) = main_listener(form);
        let cases: Vec<(&str, Request)> = vec![
            ("no key", get("/health")),
            (
                "forged consumer headers",
                get("/health")
                    .header("x-consumer-id", "admin")
                    .header("x-consumer-plan", "platinum"),
            ),
            (
                "an unknown key is not even looked at",
                get("/health")
                    .header("x-api-key", UNKNOWN)
                    .header("x-consumer-id", "admin"),
            ),
            (
                "skip by path and method: GET /docs",
                get("/docs/openapi.json").header("x-consumer-id", "admin"),
            ),
        ];
        for (what, request) in cases {
            let r = check(port, REALM, what, &request, Want::Passed);
            Upstream::of(&r).lacks("x-filter-state");
        }
        // The rule says GET: a POST to /docs needs a key.
        check(
            port,
            REALM,
            "POST /docs",
            &Request::new("POST", "/docs/x"),
            Want::Denied(401, "missing_api_key"),
        );
        // On a skipped route the key is left where it was: the filter did not look at it.
        let r = send(port, &get("/health").header("x-api-key", UNKNOWN));
        assert_eq!(Upstream::of(&r).one("x-api-key"), UNKNOWN);
    });
}

#[test]
fn allow_list_route_admits_listed_consumers_and_groups_only() {
    for_each_form(|form| {
        let (port, _log) = main_listener(form);
        let forbidden = Want::Denied(403, "consumer_not_allowed");
        let cases: Vec<(&str, Request, Want)> = vec![
            (
                "alice is neither listed nor in group ops",
                get("/admin/users").header("x-api-key", ALICE),
                forbidden,
            ),
            (
                "dave neither",
                get("/admin/users").header("x-api-key", DAVE),
                forbidden,
            ),
            (
                "ops by group",
                get("/admin/users").header("x-api-key", OPS),
                Want::As("ops", None),
            ),
            (
                "bob by id",
                get("/admin/users").header("x-api-key", BOB),
                Want::As("bob", Some("silver")),
            ),
            (
                "no key is still 401",
                get("/admin/users"),
                Want::Denied(401, "missing_api_key"),
            ),
            (
                "an invalid key is still 401",
                get("/admin/users").header("x-api-key", EXPIRED),
                Want::Denied(401, "invalid_api_key"),
            ),
            (
                "another path, same route name: alice",
                get("/console").header("x-api-key", ALICE),
                forbidden,
            ),
            (
                "another path, same route name: ops",
                get("/console").header("x-api-key", OPS),
                Want::As("ops", None),
            ),
        ];
        for (what, request, want) in cases {
            let r = check(port, REALM, what, &request, want);
            if let Want::Denied(403, _) = want {
                assert_eq!(
                    r.json(),
                    json!({
                        "type": "urn:apim:problem:consumer_not_allowed",
                        "title": "Consumer not allowed",
                        "status": 403,
                        "detail": "This consumer may not call this route.",
                        "code": "consumer_not_allowed"
                    }),
                    "{what}"
                );
            }
        }
        // /adm matches neither admin route: the catch-all route, no allow-list.
        check(
            port,
            REALM,
            "/adm is the catch-all route",
            &get("/adm").header("x-api-key", ALICE),
            Want::As("alice", Some("gold")),
        );
    });
}

#[test]
fn anonymous_route_serves_callers_without_a_key_as_the_anonymous_consumer() {
    for_each_form(|form| {
        let (port, _log) = main_listener(form);
        let cases: Vec<(&str, Request, Want)> = vec![
            (
                "no key",
                get("/public/info"),
                Want::As("guest", Some("free")),
            ),
            (
                "no key, forged consumer headers",
                get("/public/info")
                    .header("x-consumer-id", "alice")
                    .header("x-consumer-plan", "gold"),
                Want::As("guest", Some("free")),
            ),
            (
                "a valid key still identifies its consumer",
                get("/public/info").header("x-api-key", ALICE),
                Want::As("alice", Some("gold")),
            ),
            (
                "an unknown key is not downgraded to anonymous",
                get("/public/info").header("x-api-key", UNKNOWN),
                Want::Denied(401, "invalid_api_key"),
            ),
            (
                "an expired key neither",
                get("/public/info").header("x-api-key", EXPIRED),
                Want::Denied(401, "invalid_api_key"),
            ),
            (
                "an empty key in the query neither",
                get("/public/info?api_key="),
                Want::Denied(401, "invalid_api_key"),
            ),
            (
                "two different keys neither",
                get("/public/info")
                    .header("x-api-key", ALICE)
                    .header("x-api-key", BOB),
                Want::Denied(401, "ambiguous_api_key"),
            ),
        ];
        for (what, request, want) in cases {
            check(port, REALM, what, &request, want);
        }
        let r = send(port, &get("/public/info"));
        assert_eq!(Upstream::of(&r).one("x-filter-state"), GUEST_IDENTITY);
    });
}

// ---------------------------------------------------------------------------------------------
// 7: CORS preflight

#[test]
fn cors_preflight_passes_without_a_key_other_options_do_not() {
    for_each_form(|form| {
        let (port, _log) = main_listener(form);
        let options = |path: &str| Request::new("OPTIONS", path);
        let cases: Vec<(&str, Request, Want)> = vec![
            (
                "a preflight",
                options("/pets")
                    .header("origin", "https://app.example")
                    .header("access-control-request-method", "POST")
                    .header("x-consumer-id", "forged"),
                Want::Passed,
            ),
            (
                "a preflight with a (wrong) key: not looked at",
                options("/pets")
                    .header("origin", "https://app.example")
                    .header("access-control-request-method", "DELETE")
                    .header("x-api-key", UNKNOWN),
                Want::Passed,
            ),
            (
                "OPTIONS without Origin or Access-Control-Request-Method",
                options("/pets"),
                Want::Denied(401, "missing_api_key"),
            ),
            (
                "OPTIONS with Origin only",
                options("/pets").header("origin", "https://app.example"),
                Want::Denied(401, "missing_api_key"),
            ),
            (
                "OPTIONS with Access-Control-Request-Method only",
                options("/pets").header("access-control-request-method", "POST"),
                Want::Denied(401, "missing_api_key"),
            ),
            (
                "a GET with preflight headers is no preflight",
                get("/pets")
                    .header("origin", "https://app.example")
                    .header("access-control-request-method", "POST"),
                Want::Denied(401, "missing_api_key"),
            ),
            (
                "OPTIONS with a key",
                options("/pets").header("x-api-key", ALICE),
                Want::As("alice", Some("gold")),
            ),
        ];
        for (what, request, want) in cases {
            let r = check(port, REALM, what, &request, want);
            if let Want::Passed | Want::As(..) = want {
                assert_eq!(Upstream::of(&r).method(), "OPTIONS", "{what}");
            }
        }
    });
}
