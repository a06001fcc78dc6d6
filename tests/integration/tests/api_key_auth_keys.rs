//! api-key-auth end to end: where a key may be presented (each source is accepted, stripped
//! and forwarded as the consumer), and what a missing, invalid or ambiguous key gets. The
//! Envoy, keys and helpers are in `api_key_auth_common`.

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
// 1, 2: where a key may be presented

#[test]
fn key_in_x_api_key_header_is_accepted_stripped_and_forwarded() {
    for_each_form(|form| {
        let (port, _log) = main_listener(form);
        let r = send(port, &get("/pets/1?x=1").header("x-api-key", ALICE));
        let up = Upstream::of(&r);
        assert_eq!(up.method(), "GET");
        assert_eq!(up.path(), "/pets/1?x=1");
        assert_eq!(up.one("x-consumer-id"), "alice");
        assert_eq!(up.one("x-consumer-plan"), "gold");
        up.lacks("x-api-key");
        assert_eq!(up.one("host"), "localhost");
    });
}

/// A request presenting alice's key one way, and what the upstream must see of it.
struct Source {
    what: &'static str,
    request: Request,
    upstream_path: &'static str,
    upstream_cookie: Vec<&'static str>,
    upstream_authorization: Vec<&'static str>,
}

#[test]
fn every_key_source_authenticates_and_is_stripped() {
    for_each_form(|form| {
        let (port, _log) = main_listener(form);
        let cases = [
            Source {
                what: "authorization ApiKey",
                request: get("/a").header("authorization", &format!("ApiKey {ALICE}")),
                upstream_path: "/a",
                upstream_cookie: vec![],
                upstream_authorization: vec![],
            },
            Source {
                what: "authorization scheme lowercase",
                request: get("/a").header("Authorization", &format!("apikey {ALICE}")),
                upstream_path: "/a",
                upstream_cookie: vec![],
                upstream_authorization: vec![],
            },
            Source {
                what: "authorization scheme uppercase, extra spaces",
                request: get("/a").header("AUTHORIZATION", &format!("APIKEY   {ALICE}")),
                upstream_path: "/a",
                upstream_cookie: vec![],
                upstream_authorization: vec![],
            },
            Source {
                what: "query parameter alone",
                request: get(&format!("/q?api_key={ALICE}")),
                upstream_path: "/q",
                upstream_cookie: vec![],
                upstream_authorization: vec![],
            },
            Source {
                what: "header name in upper case",
                request: get("/h").header("X-API-KEY", ALICE),
                upstream_path: "/h",
                upstream_cookie: vec![],
                upstream_authorization: vec![],
            },
            Source {
                what: "query parameter among others (kept as sent)",
                request: get(&format!("/q?a=1&api_key={ALICE}&b=two%20x&c&d=%26")),
                upstream_path: "/q?a=1&b=two%20x&c&d=%26",
                upstream_cookie: vec![],
                upstream_authorization: vec![],
            },
            Source {
                what: "query parameter percent-encoded",
                request: get("/q?api_key=demo%2Dkey%2Dalice%2D0123456789abcdef&z=9"),
                upstream_path: "/q?z=9",
                upstream_cookie: vec![],
                upstream_authorization: vec![],
            },
            Source {
                what: "cookie among others",
                request: get("/c").header("cookie", &format!("a=1; api_key={ALICE}; b=2")),
                upstream_path: "/c",
                upstream_cookie: vec!["a=1; b=2"],
                upstream_authorization: vec![],
            },
            Source {
                what: "cookie alone",
                request: get("/c").header("cookie", &format!("api_key={ALICE}")),
                upstream_path: "/c",
                upstream_cookie: vec![],
                upstream_authorization: vec![],
            },
            Source {
                what: "header and query, same key",
                request: get(&format!("/hq?api_key={ALICE}&k=v")).header("x-api-key", ALICE),
                upstream_path: "/hq?k=v",
                upstream_cookie: vec![],
                upstream_authorization: vec![],
            },
            Source {
                what: "header twice, same key",
                request: get("/hh")
                    .header("x-api-key", ALICE)
                    .header("x-api-key", ALICE),
                upstream_path: "/hh",
                upstream_cookie: vec![],
                upstream_authorization: vec![],
            },
            Source {
                what: "key in a header, a Bearer token for someone else is left alone",
                request: get("/b")
                    .header("x-api-key", ALICE)
                    .header("authorization", "Bearer some.jwt.token"),
                upstream_path: "/b",
                upstream_cookie: vec![],
                upstream_authorization: vec!["Bearer some.jwt.token"],
            },
        ];
        for case in cases {
            let what = case.what;
            let r = check(
                port,
                REALM,
                what,
                &case.request,
                Want::As("alice", Some("gold")),
            );
            let up = Upstream::of(&r);
            assert_eq!(up.path(), case.upstream_path, "{what}");
            assert_eq!(up.values("cookie"), case.upstream_cookie, "{what}");
            assert_eq!(
                up.values("authorization"),
                case.upstream_authorization,
                "{what}"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 3: missing and invalid keys

#[test]
fn missing_key_is_401_problem_json() {
    for_each_form(|form| {
        let (port, _log) = main_listener(form);
        for (what, request) in [
            ("no credential at all", get("/pets")),
            (
                "a Bearer token is not an API key",
                get("/pets").header("authorization", "Bearer abc"),
            ),
            (
                "the scheme alone",
                get("/pets").header("authorization", "ApiKey"),
            ),
            ("another cookie", get("/pets").header("cookie", "session=1")),
            ("another query parameter", get("/pets?apikey=x&key=y")),
        ] {
            let r = send(port, &request);
            let body = assert_denied(&r, 401, "missing_api_key", REALM);
            assert_eq!(
                body,
                json!({
                    "type": "urn:apim:problem:missing_api_key",
                    "title": "API key required",
                    "status": 401,
                    "detail": "No API key was presented.",
                    "code": "missing_api_key"
                }),
                "{what}"
            );
        }
    });
}

#[test]
fn invalid_keys_are_indistinguishable() {
    for_each_form(|form| {
        let (port, _log) = main_listener(form);
        let mut replies = Vec::new();
        for (what, key) in [
            ("unknown", UNKNOWN),
            ("expired", EXPIRED),
            ("not yet valid", FUTURE),
            ("disabled consumer", DISABLED),
        ] {
            let r = send(port, &get("/pets").header("x-api-key", key));
            let body = assert_denied(&r, 401, "invalid_api_key", REALM);
            assert_eq!(
                body,
                json!({
                    "type": "urn:apim:problem:invalid_api_key",
                    "title": "Invalid API key",
                    "status": 401,
                    "detail": "The API key is not valid.",
                    "code": "invalid_api_key"
                }),
                "{what}"
            );
            // Everything but the date is the same, byte for byte.
            let headers: Vec<(String, String)> = r
                .headers
                .iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
                .cloned()
                .collect();
            replies.push((what, headers, r.body));
        }
        let (_, first_headers, first_body) = &replies[0];
        for (what, headers, body) in &replies[1..] {
            assert_eq!(body, first_body, "{what} differs from unknown");
            assert_eq!(headers, first_headers, "{what} differs from unknown");
        }
        // A key inside its validity window works.
        check(
            port,
            REALM,
            "dave, within not_before..expires_at",
            &get("/pets").header("x-api-key", DAVE),
            Want::As("dave", Some("bronze")),
        );
    });
}

// ---------------------------------------------------------------------------------------------
// 4: more than one key

#[test]
fn two_different_keys_are_ambiguous_the_same_key_twice_is_not() {
    for_each_form(|form| {
        let (port, _log) = main_listener(form);
        let cases: Vec<(&str, Request, Want)> = vec![
            (
                "two x-api-key headers, different keys",
                get("/p")
                    .header("x-api-key", ALICE)
                    .header("x-api-key", BOB),
                Want::Denied(401, "ambiguous_api_key"),
            ),
            (
                "two x-api-key headers, a valid key and an unknown one",
                get("/p")
                    .header("x-api-key", UNKNOWN)
                    .header("x-api-key", ALICE),
                Want::Denied(401, "ambiguous_api_key"),
            ),
            (
                "header and query, different keys",
                get(&format!("/p?api_key={BOB}")).header("x-api-key", ALICE),
                Want::Denied(401, "ambiguous_api_key"),
            ),
            (
                "header and authorization, different keys",
                get("/p")
                    .header("x-api-key", ALICE)
                    .header("authorization", &format!("ApiKey {BOB}")),
                Want::Denied(401, "ambiguous_api_key"),
            ),
            (
                "query twice, different keys",
                get(&format!("/p?api_key={ALICE}&api_key={BOB}")),
                Want::Denied(401, "ambiguous_api_key"),
            ),
            (
                "cookie and header, different keys",
                get("/p")
                    .header("x-api-key", ALICE)
                    .header("cookie", &format!("api_key={BOB}")),
                Want::Denied(401, "ambiguous_api_key"),
            ),
            (
                "one header with two comma-separated keys",
                get("/p").header("x-api-key", &format!("{ALICE},{BOB}")),
                Want::Denied(401, "ambiguous_api_key"),
            ),
            (
                "the same key in header, query, authorization and cookie",
                get(&format!("/p?api_key={ALICE}"))
                    .header("x-api-key", ALICE)
                    .header("authorization", &format!("ApiKey {ALICE}"))
                    .header("cookie", &format!("api_key={ALICE}; keep=1")),
                Want::As("alice", Some("gold")),
            ),
            (
                "the same key in two x-api-key headers",
                get("/p")
                    .header("x-api-key", ALICE)
                    .header("x-api-key", ALICE),
                Want::As("alice", Some("gold")),
            ),
        ];
        for (what, request, want) in cases {
            let r = check(port, REALM, what, &request, want);
            if let Want::Denied(..) = want {
                assert_eq!(
                    r.json()["detail"],
                    "More than one different API key was presented.",
                    "{what}"
                );
            }
        }
    });
}
