use super::*;
use crate::config::Requirement;
use crate::test_support::config;
use serde_json::json;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn tokens_are_found_in_every_source_and_ambiguity_is_refused() {
    let c =
        config(json!({"sources": ["bearer", {"header": "x-token"}, {"query": "access_token"}]}));
    let cases: Vec<(Vec<(&str, &str)>, Result<Option<&str>, u16>)> = vec![
        (vec![], Ok(None)),
        (vec![("authorization", "Bearer abc")], Ok(Some("abc"))),
        (vec![("authorization", "bearer   abc ")], Ok(Some("abc"))),
        (vec![("authorization", "Basic dXNlcjpwdw==")], Ok(None)),
        (vec![("authorization", "Bearer")], Ok(None)),
        (vec![("x-token", "abc")], Ok(Some("abc"))),
        (vec![(":path", "/p?access_token=abc&x=1")], Ok(Some("abc"))),
        (vec![(":path", "/p?access_token=a%2Bc")], Ok(Some("a+c"))),
        (
            vec![("authorization", "Bearer abc"), ("x-token", "abc")],
            Ok(Some("abc")),
        ),
        (
            vec![("authorization", "Bearer abc"), ("x-token", "def")],
            Err(400),
        ),
        (vec![("authorization", "Bearer abc,Bearer def")], Err(400)),
        (
            vec![
                ("authorization", "Bearer abc"),
                ("authorization", "Bearer def"),
            ],
            Err(400),
        ),
        (
            vec![(":path", "/p?access_token=a&access_token=b")],
            Err(400),
        ),
    ];
    for (headers, want) in cases {
        let head = RequestHead::from_pairs(&headers);
        let got = match find_token(&c, &head) {
            Ok(Found::None) => Ok(None),
            Ok(Found::Token { token, .. }) => Ok(Some(token)),
            Err((reason, d)) => {
                assert_eq!(reason, DenyReason::Ambiguous);
                Err(d.status)
            }
        };
        assert_eq!(got, want.map(|o| o.map(str::to_string)), "{headers:?}");
    }
}

#[test]
fn a_token_cannot_hide_behind_many_copies_of_another() {
    let c = config(json!({"sources": ["bearer", {"query": "access_token"}]}));
    let eight = ["Bearer A"; MAX_CANDIDATES].join(",");
    let head = RequestHead::from_pairs(&[("authorization", eight.as_str())]);
    assert_eq!(
        find_token(&c, &head).ok(),
        Some(Found::Token {
            token: "A".into(),
            sources: vec![0]
        })
    );
    let hidden = format!("{eight},Bearer EVIL");
    let head = RequestHead::from_pairs(&[("authorization", hidden.as_str())]);
    assert_eq!(find_token(&c, &head).unwrap_err().1.status, 400);
    let query = format!(
        "/p?{}&access_token=EVIL",
        ["access_token=A"; MAX_CANDIDATES].join("&")
    );
    let head = RequestHead::from_pairs(&[(":path", query.as_str())]);
    assert_eq!(find_token(&c, &head).unwrap_err().1.status, 400);
}

#[test]
fn scope_matching_is_exact() {
    let r = |all: &[&str], any: &[&str]| Requirement {
        all_of: all.iter().map(|s| s.to_string()).collect(),
        any_of: any.iter().map(|s| s.to_string()).collect(),
    };
    let cases: Vec<(Requirement, Vec<&str>, bool)> = vec![
        (r(&[], &[]), vec![], true),
        (r(&["pets:read"], &[]), vec!["pets:read"], true),
        (r(&["pets:read"], &[]), vec!["pets:read-only"], false),
        (
            r(&["pets:read"], &[]),
            vec!["pets:readwrite", "xpets:read"],
            false,
        ),
        (r(&["pets:read"], &[]), vec!["pets"], false),
        (r(&["a", "b"], &[]), vec!["a"], false),
        (r(&["a", "b"], &[]), vec!["b", "a"], true),
        (r(&[], &["a", "b"]), vec!["b"], true),
        (r(&[], &["a", "b"]), vec!["c"], false),
        (r(&["a"], &["b", "c"]), vec!["a", "c"], true),
        (r(&["a"], &["b", "c"]), vec!["b", "c"], false),
    ];
    for (req, have, want) in cases {
        assert_eq!(req.satisfied_by(&have), want, "{req:?} {have:?}");
    }
}

#[test]
fn denials_follow_rfc6750() {
    let m = missing("apim");
    assert_eq!(m.status, 401);
    assert_eq!(
        m.headers,
        [(
            "www-authenticate".to_string(),
            "Bearer realm=\"apim\"".to_string()
        )]
    );
    let (reason, d) = invalid("apim", TokenError::Expired);
    assert_eq!((reason, d.status), (DenyReason::Expired, 401));
    assert_eq!(
        d.headers[0].1,
        "Bearer realm=\"apim\", error=\"invalid_token\", error_description=\"The token has expired.\""
    );
    let (reason, d) = invalid("apim", TokenError::NoKeys(0));
    assert_eq!(
        (reason, d.status, d.code),
        (DenyReason::KeysUnavailable, 503, "keys_unavailable")
    );
    let req = Requirement {
        all_of: vec!["a".into()],
        any_of: vec!["b".into(), "c".into()],
    };
    let d = insufficient("apim", &req);
    assert_eq!(d.status, 403);
    assert_eq!(
        d.headers[0].1,
        "Bearer realm=\"apim\", error=\"insufficient_scope\", scope=\"a b c\""
    );
    assert_eq!(ambiguous("apim").status, 400);
}

/// A consumer let in without a token (api-key-auth's key) gets the 403 worded for the credential
/// it presented: no Bearer challenge, no "access token"; other identity sources get a neutral
/// wording. The code and the required scopes stay those of the token form.
#[test]
fn a_consumer_without_a_token_is_refused_without_a_bearer_challenge() {
    let req = Requirement {
        all_of: vec!["pets:write".into()],
        any_of: vec![],
    };
    let cases = [
        (
            "api-key-auth",
            "The consumer's API key does not carry the scopes this route requires.",
        ),
        (
            "api-key-auth+scope-authz",
            "The consumer's API key does not carry the scopes this route requires.",
        ),
        (
            "mtls",
            "The consumer's credential does not carry the scopes this route requires.",
        ),
        (
            "",
            "The consumer's credential does not carry the scopes this route requires.",
        ),
    ];
    for (source, detail) in cases {
        let d = consumer_insufficient(&req, source);
        assert_eq!((d.status, d.code), (403, "insufficient_scope"), "{source}");
        assert_eq!(d.detail, detail, "{source}");
        assert!(d.headers.is_empty(), "{source}: {:?}", d.headers);
        assert_eq!(
            d.extensions,
            [(
                "required_scopes",
                json!({"all_of": ["pets:write"], "any_of": []})
            )]
        );
    }
}
