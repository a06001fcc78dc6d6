//! GraphQL-over-HTTP shapes: GET parameters, JSON and `application/graphql` bodies, batches.

use super::*;
use serde_json::json;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn media_types() {
    let cases: &[(Option<&str>, Result<BodyKind, TransportError>)] = &[
        (Some("application/json"), Ok(BodyKind::Json)),
        (Some("Application/JSON; charset=utf-8"), Ok(BodyKind::Json)),
        (Some("application/graphql"), Ok(BodyKind::Graphql)),
        (
            Some("text/plain"),
            Err(TransportError::UnsupportedMediaType),
        ),
        (
            Some("multipart/form-data; boundary=x"),
            Err(TransportError::UnsupportedMediaType),
        ),
        (None, Err(TransportError::UnsupportedMediaType)),
    ];
    for (ct, want) in cases {
        assert_eq!(&body_kind(*ct), want, "{ct:?}");
    }
}

#[test]
fn get_parameters() {
    assert_eq!(from_query_string(None, &[]), Ok(Extracted::NotGraphql));
    assert_eq!(
        from_query_string(Some("a=1"), &[]),
        Ok(Extracted::NotGraphql)
    );
    let got = from_query_string(
        Some("query=query%20Q(%24n%3A%20Int)%7Ba%7D&operationName=Q&variables=%7B%22n%22%3A3%7D"),
        &[],
    );
    assert_eq!(
        got,
        Ok(Extracted::Single(GqlRequest {
            query: Some("query Q($n: Int){a}".into()),
            operation_name: Some("Q".into()),
            variables: Some(json!({"n": 3})),
            persisted_hash: None,
        }))
    );
    let apq = from_query_string(Some(
        "extensions=%7B%22persistedQuery%22%3A%7B%22version%22%3A1%2C%22sha256Hash%22%3A%22ab%22%7D%7D",
    ), &[]);
    assert!(
        matches!(apq, Ok(Extracted::Single(GqlRequest { query: None, persisted_hash: Some(ref h), .. })) if h == "ab")
    );
    let bad: &[&str] = &[
        "query={a}&variables=%7B",
        "query={a}&variables=%5B1%5D",
        "query=%FF",
        // Servers differ on which copy of a repeated parameter they run.
        "query={a}&query={b{c{d}}}",
        "query=&query={b}",
        "query={a}&operationName=A&operationName=B",
    ];
    for qs in bad {
        assert!(
            matches!(
                from_query_string(Some(qs), &[]),
                Err(TransportError::BadRequest(_))
            ),
            "{qs}"
        );
    }
}

#[test]
fn json_bodies() {
    let ok = from_body(
        BodyKind::Json,
        br#"{"query":"{a}","operationName":null,"variables":{"x":1}}"#,
        10,
        &[],
    );
    assert_eq!(
        ok,
        Ok(Extracted::Single(GqlRequest {
            query: Some("{a}".into()),
            variables: Some(json!({"x": 1})),
            ..GqlRequest::default()
        }))
    );
    let batch = from_body(
        BodyKind::Json,
        br#"[{"query":"{a}"},{"query":"{b}"}]"#,
        2,
        &[],
    );
    assert!(matches!(batch, Ok(Extracted::Batch(ref v)) if v.len() == 2));
    assert_eq!(
        from_body(
            BodyKind::Json,
            br#"[{"query":"{a}"},{"query":"{b}"},{"query":"{c}"}]"#,
            2,
            &[]
        ),
        Err(TransportError::BatchTooLarge(3))
    );
    assert_eq!(
        from_body(BodyKind::Json, br#"[{"query":"{a}"}]"#, 0, &[]),
        Err(TransportError::BatchTooLarge(1))
    );
    let deep_vars = format!(
        r#"{{"query":"{{a}}","variables":{{"v":{}1{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (b"{".to_vec(), "the body is not valid JSON"),
        (b"42".to_vec(), "a GraphQL request must be a JSON object"),
        (br#"{"query":7}"#.to_vec(), "query must be a string"),
        (
            br#"{"query":"{a}","operationName":1}"#.to_vec(),
            "operationName must be a string",
        ),
        (
            br#"{"query":"{a}","variables":"x"}"#.to_vec(),
            "variables must be a JSON object",
        ),
        (
            br#"{"operationName":"x"}"#.to_vec(),
            "no query in the request",
        ),
        (br#"[]"#.to_vec(), "the batch is empty"),
        (
            br#"[{"query":"{a}"},3]"#.to_vec(),
            "batch element 1: a GraphQL request must be a JSON object",
        ),
        (
            br#"{"extensions":{"persistedQuery":{"sha256Hash":5}}}"#.to_vec(),
            "extensions.persistedQuery.sha256Hash must be a string",
        ),
        (
            deep_vars.into_bytes(),
            "the body is not valid JSON: recursion limit exceeded",
        ),
    ];
    for (body, want) in bad {
        match from_body(BodyKind::Json, &body, 10, &[]) {
            Err(TransportError::BadRequest(m)) => assert!(m.starts_with(want), "{m:?} vs {want:?}"),
            other => panic!("{want}: {other:?}"),
        }
    }
    assert_eq!(
        from_body(BodyKind::Graphql, b"{ a }", 10, &[]),
        Ok(Extracted::Single(GqlRequest {
            query: Some("{ a }".into()),
            ..GqlRequest::default()
        }))
    );
    assert!(from_body(BodyKind::Graphql, b"\xff", 10, &[]).is_err());
}

/// A key given twice (body or GET JSON parameters) is refused: servers disagree on which wins.
#[test]
fn duplicate_json_keys_are_refused() {
    for body in [
        r#"{"query":"{ a { b { c } } }","query":"{ a }"}"#,
        r#"{"query":"{ a(first: $n) { b } }","variables":{"n":1000,"n":1}}"#,
        r#"[{"query":"{ a }"},{"query":"{ b }","operationName":"A","operationName":"B"}]"#,
    ] {
        match from_body(BodyKind::Json, body.as_bytes(), 10, &[]) {
            Err(TransportError::BadRequest(m)) => assert!(m.contains("duplicate key"), "{m}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    let qs = "query=%7Ba%7D&variables=%7B%22n%22%3A1%2C%22n%22%3A2%7D";
    match from_query_string(Some(qs), &[]) {
        Err(TransportError::BadRequest(m)) => assert!(m.contains("duplicate key"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// Some servers (Rack, older Go and Python) also split a query string on `;`: a GraphQL
/// parameter only they would see is refused.
#[test]
fn semicolon_hidden_parameters_are_refused() {
    for (qs, want) in [
        ("query=%7Ba%7D", Ok(true)),
        ("x=1&y=2", Ok(false)),
        ("x=1;y=2", Ok(false)),
        ("query=%7Ba%7D%3Bx", Ok(true)),
        ("x=1;query=%7Ba%7D", Err(())),
        ("query=%7Ba%7D;query=%7Bb%7D", Err(())),
        ("x=1;qu%65ry=%7Ba%7D", Err(())),
    ] {
        assert_eq!(has_graphql_params(qs).map_err(|_| ()), want, "{qs}");
    }
    assert!(matches!(
        from_query_string(Some("x=1;query=%7Ba%7D"), &[]),
        Err(TransportError::BadRequest(_))
    ));
}

/// Parameter names compare ASCII-case-insensitively (ASP.NET binds `?Query=` as `query`): any
/// spelling other than the exact one is refused, as are persisted-document ids the guard cannot
/// check and GraphQL parameters without a query or a hash.
#[test]
fn parameter_names_in_any_case_and_document_ids() {
    let pass_id = vec!["id".to_string()];
    let none: &[String] = &[];
    let cases: &[(&str, &[String], Result<bool, &str>)] = &[
        ("Query=%7Ba%7D", none, Err("lower camel case")),
        ("QUERY=%7Ba%7D", none, Err("lower camel case")),
        (
            "query=%7Ba%7D&OperationName=A",
            none,
            Err("lower camel case"),
        ),
        ("%51uery=%7Ba%7D", none, Err("lower camel case")),
        (
            "query=%7Ba%7D&Variables=%7B%7D",
            none,
            Err("lower camel case"),
        ),
        ("documentId=abc", none, Err("persisted-document ids")),
        ("DocumentID=abc", none, Err("persisted-document ids")),
        ("doc_id=abc", none, Err("persisted-document ids")),
        ("namedQuery=abc", none, Err("persisted-document ids")),
        ("id=7", none, Err("persisted-document ids")),
        ("query=%7Ba%7D&id=7", none, Err("persisted-document ids")),
        ("id=7", &pass_id, Ok(false)),
        ("query=%7Ba%7D&id=7", &pass_id, Ok(true)),
        ("variables=%7B%7D", none, Err("without a query")),
        ("operationName=A", none, Err("without a query")),
        ("extensions=%7B%7D", none, Err("without a query")),
        ("query=&operationName=A", none, Err("without a query")),
        ("a=1&queryx=2", none, Ok(false)),
        ("query=%7Ba%7D", none, Ok(true)),
    ];
    for (qs, pass, want) in cases {
        let got = from_query_string(Some(qs), pass);
        match (want, got) {
            (Ok(true), Ok(Extracted::Single(_))) | (Ok(false), Ok(Extracted::NotGraphql)) => {}
            (Err(msg), Err(TransportError::BadRequest(m))) => assert!(m.contains(msg), "{qs}: {m}"),
            (want, got) => panic!("{qs}: want {want:?}, got {got:?}"),
        }
    }
    // Any spelling counts as a GraphQL parameter (for the ambiguous-path and URL+body checks).
    assert_eq!(has_graphql_params("Query=x"), Ok(true));
    assert_eq!(has_graphql_params("a=1;QUERY=x").map_err(|_| ()), Err(()));
    assert!(has_document_id("DocumentId=x", none));
    assert!(!has_document_id("id=x", none));
    assert!(!has_document_id(
        "documentId=x",
        &["documentId".to_string()]
    ));
}

#[test]
fn body_keys_in_any_case_and_document_ids() {
    let none: &[String] = &[];
    let pass = vec!["documentId".to_string()];
    let cases: &[(&str, &[String], Option<&str>)] = &[
        (r#"{"Query":"{ a }"}"#, none, Some("lower camel case")),
        (
            r#"{"query":"{ a }","OPERATIONNAME":"A"}"#,
            none,
            Some("lower camel case"),
        ),
        (
            r#"[{"query":"{ a }"},{"query":"{ a }","Variables":{}}]"#,
            none,
            Some("batch element 1"),
        ),
        (
            r#"{"documentId":"abc"}"#,
            none,
            Some("persisted-document ids"),
        ),
        (
            r#"{"query":"{ a }","id":"abc"}"#,
            none,
            Some("persisted-document ids"),
        ),
        (
            r#"{"query":"{ a }","doc_id":"abc"}"#,
            none,
            Some("persisted-document ids"),
        ),
        (
            r#"{"query":"{ a }","namedQuery":"abc"}"#,
            none,
            Some("persisted-document ids"),
        ),
        (r#"{"variables":{"a":1}}"#, none, Some("no query")),
        (r#"{"operationName":"A"}"#, none, Some("no query")),
        (r#"{"query":"{ a }","documentId":"abc"}"#, &pass, None),
        (r#"{"query":"{ a }","other":1}"#, none, None),
    ];
    for (body, pass, want) in cases {
        match (from_body(BodyKind::Json, body.as_bytes(), 10, pass), want) {
            (Ok(_), None) => {}
            (Err(TransportError::BadRequest(m)), Some(w)) => assert!(m.contains(w), "{body}: {m}"),
            (got, want) => panic!("{body}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn what_looks_like_graphql() {
    let cases: &[(BodyKind, &str, bool)] = &[
        (BodyKind::Graphql, "{ a }", true),
        (BodyKind::Json, r#"{"query":"{ a }"}"#, true),
        (BodyKind::Json, r#"{"Query":"{ a }"}"#, true),
        (BodyKind::Json, r#"{"documentId":"x"}"#, true),
        (BodyKind::Json, r#"[{"name":1},{"extensions":{}}]"#, true),
        (BodyKind::Json, "not json", true),
        (BodyKind::Json, r#"{"name":"x","count":2}"#, false),
        (BodyKind::Json, "[1,2]", false),
    ];
    for (kind, body, want) in cases {
        assert_eq!(looks_like_graphql(*kind, body.as_bytes()), *want, "{body}");
    }
}
