//! api-key-auth end to end: hostile input (over-long keys, bytes that are not visible ASCII,
//! empty values, too many copies) is refused with the right reply and never traps the VM.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod api_key_auth_common;

use api_key_auth_common::*;
use apim_integration::chain::for_each_form;
use apim_integration::LogOnFailure;

// ---------------------------------------------------------------------------------------------
// 5: hostile input

#[test]
fn bad_input_is_refused_and_never_traps() {
    for_each_form(|form| {
        let envoy = shared(form);
        let _log = LogOnFailure(envoy);
        let port = envoy.port();

        // Over the default max_key_length (256): malformed, a 401 that says why.
        let long = "k".repeat(257);
        let r = send(port, &get("/x").header("x-api-key", &long));
        let body = assert_denied(&r, 401, "invalid_api_key", REALM);
        assert_eq!(body["detail"], "The API key is longer than 256 bytes.");
        // Exactly 256 is looked up (and is unknown): the usual invalid reply.
        let r = send(port, &get("/x").header("x-api-key", &"k".repeat(256)));
        let body = assert_denied(&r, 401, "invalid_api_key", REALM);
        assert_eq!(body["detail"], "The API key is not valid.");

        // Bytes that are not visible ASCII. Envoy 1.40's HTTP/1 codec passes obs-text (0x80-0xff)
        // in header values through to filters, so these reach the filter, which refuses them as
        // malformed (never a trap, never a lookup).
        let not_ascii = "The API key contains characters that are not visible ASCII.";
        for (what, request) in [
            (
                "0xff 0xfe",
                get("/x").header_bytes("x-api-key", b"\xff\xfe"),
            ),
            (
                "invalid UTF-8 around ASCII",
                get("/x").header_bytes("x-api-key", b"abc\xff\xfedef"),
            ),
            (
                "valid UTF-8, not ASCII",
                get("/x").header("x-api-key", "cl\u{e9}-\u{1f511}"),
            ),
            ("a space inside", get("/x").header("x-api-key", "abc def")),
            (
                "0xff in Authorization",
                get("/x").header_bytes("authorization", b"ApiKey \xff\xfe\xfd"),
            ),
            (
                "invalid UTF-8 in the cookie",
                get("/x").header_bytes("cookie", b"api_key=\xc3\x28"),
            ),
            // Percent-decoding a query parameter can produce any byte, NUL included.
            ("percent-encoded 0xff and NUL", get("/x?api_key=%FF%FE%00")),
        ] {
            let r = send(port, &request);
            let body = assert_denied(&r, 401, "invalid_api_key", REALM);
            assert_eq!(body["detail"], not_ascii, "{what}");
        }
        // A control character (DEL) is not a valid header byte: Envoy's codec answers 400 itself,
        // before any filter runs (its own plain-text body, not our problem+json).
        let r = send(port, &get("/x").header_bytes("x-api-key", b"abc\x7fdef"));
        assert_eq!(r.status, 400, "{}", r.text());
        assert_ne!(r.header("content-type"), Some("application/problem+json"));

        // Empty values. A query parameter or cookie with an empty value is a malformed key. An
        // empty (or, after Envoy trims it, blank) header reads as no header at all: see
        // `empty_key_header_is_an_empty_key_not_a_missing_one` for why that is a filter bug.
        for (what, request) in [
            ("empty query value", get("/x?api_key=")),
            ("empty cookie value", get("/x").header("cookie", "api_key=")),
        ] {
            let r = send(port, &request);
            let body = assert_denied(&r, 401, "invalid_api_key", REALM);
            assert_eq!(body["detail"], "The API key is empty.", "{what}");
        }
        for request in [
            get("/x").header("x-api-key", ""),
            get("/x").header("x-api-key", "   "),
        ] {
            let r = send(port, &request);
            assert_eq!(r.status, 401, "{}", r.text());
        }

        // 16 copies are looked at; 50 are refused without scanning them all.
        let mut sixteen = get("/x");
        for _ in 0..16 {
            sixteen = sixteen.header("x-api-key", ALICE);
        }
        check(
            port,
            REALM,
            "16 identical copies",
            &sixteen,
            Want::As("alice", Some("gold")),
        );
        let mut fifty = get("/x");
        for _ in 0..50 {
            fifty = fifty.header("x-api-key", ALICE);
        }
        let r = send(port, &fifty);
        let body = assert_denied(&r, 400, "too_many_api_keys", REALM);
        assert_eq!(
            body["detail"],
            "The API key was presented more than 16 times."
        );

        // The VM is alive and well after all of that.
        check(
            port,
            REALM,
            "a valid request afterwards",
            &get("/after").header("x-api-key", ALICE),
            Want::As("alice", Some("gold")),
        );
        let log = flush_log(envoy, port, "bad-input");
        assert_no_traps(&log);
    });
}

/// An empty `x-api-key` header is a presented, empty (so malformed) key, as an empty
/// `?api_key=` or `api_key=` cookie is: 401 `invalid_api_key`, "The API key is empty.", and on
/// an anonymous route it must not fall back to the anonymous consumer. That is what the filter's
/// own unit tests specify (`credential::find` turns `x-api-key: ""` into an empty key).
///
/// FILTER BUG (fails against the current module): in Envoy the filter reads non-pseudo headers
/// with `get_property(["request", "headers", name])`; Envoy returns an empty value as a
/// zero-length result and proxy-wasm 0.2.5's `get_property` maps that to `None`, so an empty
/// header looks absent: 401 `missing_api_key` on ordinary routes, 200 as `guest` on the
/// anonymous route (with the empty `x-api-key` forwarded upstream).
#[test]
fn empty_key_header_is_an_empty_key_not_a_missing_one() {
    for_each_form(|form| {
        let (port, _log) = main_listener(form);
        for (what, request) in [
            ("empty", get("/pets").header("x-api-key", "")),
            ("blank", get("/pets").header("x-api-key", "   ")),
            (
                "empty, anonymous route",
                get("/public/info").header("x-api-key", ""),
            ),
        ] {
            let r = send(port, &request);
            let body = assert_denied(&r, 401, "invalid_api_key", REALM);
            assert_eq!(body["detail"], "The API key is empty.", "{what}");
        }
    });
}
