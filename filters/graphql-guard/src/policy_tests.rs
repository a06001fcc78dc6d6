//! Each limit with its code and message, introspection, persisted operations, batches.

use super::*;
use crate::apq::NoStore;
use crate::config::Config;
use crate::transport::GqlRequest;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn config(json: &str) -> Config {
    Config::parse(json.as_bytes()).unwrap()
}

fn req(q: &str) -> GqlRequest {
    GqlRequest {
        query: Some(q.to_string()),
        ..GqlRequest::default()
    }
}

fn outcome(c: &Config, q: &str) -> Result<u64, (Code, String)> {
    let checked = check(c, &c.limits, false, &[req(q)], &NoStore);
    match checked.violation {
        None => Ok(checked.cost),
        Some(v) => Err((v.code, v.denial.detail)),
    }
}

#[test]
fn each_limit_has_its_code_and_message() {
    let c = config(
        r#"{"limits":{"max_depth":3,"max_aliases":2,"max_root_fields":2,"max_height":4,
            "max_directives":1,"max_tokens":40,"max_cost":5}}"#,
    );
    let cases: &[(&str, Result<u64, (Code, &str)>)] = &[
        ("{ a { b { c } } }", Ok(2)),
        (
            "{ a { b { c { d } } } }",
            Err((Code::MaxDepth, "Depth 4 exceeds the limit of 3 (max_depth)")),
        ),
        (
            "{ x: a y: a z: a }",
            Err((
                Code::MaxAliases,
                "Alias count 3 exceeds the limit of 2 (max_aliases)",
            )),
        ),
        (
            "{ a b c }",
            Err((
                Code::MaxRootFields,
                "Root field count 3 exceeds the limit of 2 (max_root_fields)",
            )),
        ),
        (
            "{ a { b c d e } }",
            Err((
                Code::MaxHeight,
                "Height 5 exceeds the limit of 4 (max_height)",
            )),
        ),
        (
            "{ a @x @y }",
            Err((
                Code::MaxDirectives,
                "Directive count 2 exceeds the limit of 1 (max_directives)",
            )),
        ),
        (
            "{ a(first: 10) { b } }",
            Err((Code::MaxCost, "Cost 10 exceeds the limit of 5 (max_cost)")),
        ),
        (
            "# comment\n{ a(x: 1, y: 2, z: 3, w: 4, v: 5, u: 6, t: 7) }",
            Err((
                Code::MaxTokens,
                "Token count exceeds the limit of 40 (max_tokens)",
            )),
        ),
        ("{ a ", Err((Code::ParseFailed, "syntax error: "))),
        (
            "{ ...F } fragment F on Q { ...F }",
            Err((Code::ValidationFailed, "fragment \"F\" spreads itself")),
        ),
        (
            "query A { a } query B { b }",
            Err((
                Code::OperationResolution,
                "the document has several operations: operationName is required",
            )),
        ),
    ];
    for (q, want) in cases {
        let got = outcome(&c, q);
        match (want, &got) {
            (Ok(w), Ok(g)) => assert_eq!(w, g, "{q}"),
            (Err((code, msg)), Err((gc, gm))) => {
                assert_eq!(code, gc, "{q}: {gm}");
                assert!(gm.starts_with(msg), "{q}: {gm:?}");
            }
            _ => panic!("{q}: {got:?}"),
        }
    }
}

#[test]
fn hidden_values_and_extensions() {
    let c = config(r#"{"limits":{"max_depth":1},"hide_values":true}"#);
    let v = check(&c, &c.limits, false, &[req("{ a { b } }")], &NoStore)
        .violation
        .unwrap();
    assert_eq!(v.denial.detail, "Depth exceeds the limit (max_depth)");
    assert_eq!(v.denial.code, "MAX_DEPTH_EXCEEDED");
    let c = config(r#"{"limits":{"max_depth":1}}"#);
    let v = check(&c, &c.limits, false, &[req("{ a { b } }")], &NoStore)
        .violation
        .unwrap();
    let body: serde_json::Value =
        serde_json::from_slice(&v.denial.render(kit::denial::Format::GraphQlResponse).body)
            .unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "MAX_DEPTH_EXCEEDED"
    );
    assert_eq!(body["errors"][0]["extensions"]["measured"], 2);
    assert_eq!(body["errors"][0]["extensions"]["max"], 1);
}

#[test]
fn introspection_modes() {
    let deep_intro = "{ __schema { types { fields { type { ofType { ofType { name } } } } } } }";
    let allow = config(r#"{"limits":{"max_depth":2},"introspection":{"max_depth":7}}"#);
    assert_eq!(
        outcome(&allow, deep_intro),
        Ok(0),
        "exempt from max_depth, within its own"
    );
    let tight = config(r#"{"limits":{"max_depth":2},"introspection":{"max_depth":3}}"#);
    assert_eq!(
        outcome(&tight, deep_intro).unwrap_err().0,
        Code::IntrospectionTooDeep
    );
    let block = config(r#"{"introspection":{"mode":"block"}}"#);
    for q in [
        "{ __schema { queryType { name } } }",
        "{ __type(name: \"User\") { name } }",
        "{ a { ...F } } fragment F on T { __type(name: \"X\") { name } }",
        "{ ... on Query { s: __schema { types { name } } } }",
    ] {
        assert_eq!(
            outcome(&block, q).unwrap_err().0,
            Code::IntrospectionDisabled,
            "{q}"
        );
    }
    // Disguises: names of operations and fragments are not fields.
    assert_eq!(outcome(&block, "query __schema { a }"), Ok(0));
    assert_eq!(
        outcome(&block, "{ ...__type } fragment __type on Query { a }"),
        Ok(0)
    );
    assert_eq!(outcome(&block, "{ __typename }"), Ok(0));
    // An operation named __schema does not unlock depth.
    let c = config(r#"{"limits":{"max_depth":2}}"#);
    assert_eq!(
        outcome(&c, "query __schema { a { b { c } } }")
            .unwrap_err()
            .0,
        Code::MaxDepth
    );
    // Count mode: introspection is an ordinary field.
    let count = config(r#"{"limits":{"max_depth":2},"introspection":{"mode":"count"}}"#);
    assert_eq!(outcome(&count, deep_intro).unwrap_err().0, Code::MaxDepth);
}

#[test]
fn persisted_operations() {
    let q = "{ a { b { c } } }";
    let digest = kit::digest::to_hex(&kit::digest::sha256(q.as_bytes()));
    let only = config(&format!(
        r#"{{"limits":{{"max_depth":1}},"persisted":{{"only":true,"sha256":["{digest}"]}}}}"#
    ));
    // Listed: trusted, limits not applied.
    assert_eq!(outcome(&only, q), Ok(0));
    assert_eq!(
        outcome(&only, "{ a }").unwrap_err().0,
        Code::PersistedNotAllowed
    );
    // Apollo format, hash alone.
    let apq = |h: &str| GqlRequest {
        persisted_hash: Some(h.to_string()),
        ..GqlRequest::default()
    };
    assert!(check(&only, &only.limits, false, &[apq(&digest)], &NoStore)
        .violation
        .is_none());
    let other = kit::digest::to_hex(&kit::digest::sha256(b"x"));
    assert_eq!(
        check(&only, &only.limits, false, &[apq(&other)], &NoStore)
            .violation
            .unwrap()
            .code,
        Code::PersistedNotAllowed
    );
    // A query sent with the wrong hash.
    let mut lying = req("{ a }");
    lying.persisted_hash = Some(digest.clone());
    assert_eq!(
        check(&only, &only.limits, false, &[lying], &NoStore)
            .violation
            .unwrap()
            .code,
        Code::PersistedHashMismatch
    );
    assert_eq!(
        check(&only, &only.limits, false, &[apq("zz")], &NoStore)
            .violation
            .unwrap()
            .code,
        Code::BadRequest
    );
    // Allow-list without only: listed ones skip the limits, others are checked.
    let list = config(&format!(
        r#"{{"limits":{{"max_depth":1}},"persisted":{{"sha256":["{digest}"]}}}}"#
    ));
    assert_eq!(outcome(&list, q), Ok(0));
    assert_eq!(outcome(&list, "{ x { y } }").unwrap_err().0, Code::MaxDepth);
    // An unknown APQ hash alone is never forwarded unchecked.
    let v = check(&list, &list.limits, false, &[apq(&other)], &NoStore)
        .violation
        .unwrap();
    assert_eq!((v.code, v.denial.status), (Code::PersistedNotFound, 200));
}

/// Apollo APQ: a full query sent with its hash registers it; a hash alone is then checked as
/// that query would be, under the caller's own limits, and charged its cost.
#[test]
fn hash_alone_is_checked_as_the_registered_query() {
    let c = config(r#"{"limits":{"max_depth":2,"max_cost":100},"plans":{"gold":{"max_depth":5}}}"#);
    let gold = *c.limits_for(Some("gold"));
    let q = "{ a { b { c(first: 7) { d } } } }";
    let hash = kit::digest::to_hex(&kit::digest::sha256(q.as_bytes()));
    let full = GqlRequest {
        query: Some(q.to_string()),
        persisted_hash: Some(hash.clone()),
        ..GqlRequest::default()
    };
    let alone = GqlRequest {
        persisted_hash: Some(hash.clone()),
        ..GqlRequest::default()
    };
    let store = crate::apq::MemStore::default();
    // Before registration: not found, for everyone.
    for limits in [&gold, &c.limits] {
        let v = check(&c, limits, false, std::slice::from_ref(&alone), &store)
            .violation
            .unwrap();
        assert_eq!(v.code, Code::PersistedNotFound);
        assert_eq!(v.denial.detail, "PersistedQueryNotFound");
    }
    // Gold registers it (depth 4, cost 1 + 1 + 7 = 9).
    let r = check(&c, &gold, false, std::slice::from_ref(&full), &store);
    assert_eq!((r.cost, r.violation), (9, None));
    // Gold by hash: checked and charged the same.
    let r = check(&c, &gold, false, std::slice::from_ref(&alone), &store);
    assert_eq!((r.cost, r.violation), (9, None));
    // The default plan by hash: the same refusal as for the full query.
    let v = check(&c, &c.limits, false, std::slice::from_ref(&alone), &store)
        .violation
        .unwrap();
    assert_eq!(v.code, Code::MaxDepth);
    // A query that lies about its hash registers nothing.
    let store = crate::apq::MemStore::default();
    let lying = GqlRequest {
        query: Some("{ x }".to_string()),
        persisted_hash: Some(hash.clone()),
        ..GqlRequest::default()
    };
    assert_eq!(
        check(&c, &gold, false, &[lying], &store)
            .violation
            .unwrap()
            .code,
        Code::PersistedHashMismatch
    );
    assert!(store.0.borrow().is_empty());
    // A query refused for its caller is still registered (its measurements are facts).
    let r = check(&c, &c.limits, false, std::slice::from_ref(&full), &store);
    assert_eq!(r.violation.unwrap().code, Code::MaxDepth);
    assert_eq!(
        check(&c, &gold, false, std::slice::from_ref(&alone), &store).violation,
        None
    );
    // A full query without a hash registers nothing (Apollo registers only with the hash).
    let store = crate::apq::MemStore::default();
    check(&c, &gold, false, &[req(q)], &store);
    assert!(store.0.borrow().is_empty());
    // Variables of the hash-only request count: first: $n.
    let vq = "query Q($n: Int) { a(first: $n) { b } }";
    let vhash = kit::digest::to_hex(&kit::digest::sha256(vq.as_bytes()));
    let reg = GqlRequest {
        query: Some(vq.to_string()),
        persisted_hash: Some(vhash.clone()),
        variables: Some(serde_json::json!({"n": 2})),
        ..GqlRequest::default()
    };
    let store = crate::apq::MemStore::default();
    assert_eq!(check(&c, &gold, false, &[reg], &store).cost, 2);
    let big = GqlRequest {
        persisted_hash: Some(vhash),
        variables: Some(serde_json::json!({"n": 5000})),
        ..GqlRequest::default()
    };
    assert_eq!(
        check(&c, &gold, false, &[big], &store)
            .violation
            .unwrap()
            .code,
        Code::MaxCost
    );
}

#[test]
fn batches_mutations_over_get_and_bytes() {
    let c = config(r#"{"limits":{"max_depth":2,"max_cost":100,"max_bytes":100}}"#);
    let ok = check(
        &c,
        &c.limits,
        false,
        &[req("{ a { b } }"), req("{ c(first: 3) { d } }")],
        &NoStore,
    );
    assert_eq!(
        ok,
        Checked {
            cost: 4,
            violation: None,
            operations: Vec::new(),
        }
    );
    let bad = check(
        &c,
        &c.limits,
        false,
        &[req("{ a }"), req("{ a { b { c } } }")],
        &NoStore,
    );
    let v = bad.violation.unwrap();
    assert_eq!(v.code, Code::MaxDepth);
    assert!(
        v.denial.detail.starts_with("batch element 1: Depth 3"),
        "{}",
        v.denial.detail
    );
    let m = check(&c, &c.limits, true, &[req("mutation { m }")], &NoStore)
        .violation
        .unwrap();
    assert_eq!((m.code, m.denial.status), (Code::MutationOverGet, 405));
    assert!(check(&c, &c.limits, true, &[req("query { m }")], &NoStore)
        .violation
        .is_none());
    assert!(check_bytes(&c, &c.limits, 100).is_none());
    let v = check_bytes(&c, &c.limits, 101).unwrap();
    assert_eq!((v.code, v.denial.status), (Code::MaxBytes, 413));
    // Without max_bytes the hard body cap applies.
    let c = config(r#"{"max_body_bytes":50}"#);
    assert!(check_bytes(&c, &c.limits, 51).is_some());
}

/// A hash alone is held to the caller's `max_bytes` for the document it stands for, summed
/// over a batch, as if the documents had been sent.
#[test]
fn a_hash_alone_keeps_the_size_limit() {
    let c = config(r#"{"limits":{"max_bytes":40},"plans":{"big":{"max_bytes":1000}}}"#);
    let big = c.plans["big"];
    let store = crate::apq::MemStore::default();
    let doc = |n: usize| format!("{{ {} }}", "a ".repeat(n));
    let alone = |q: &str| GqlRequest {
        persisted_hash: Some(kit::digest::to_hex(&kit::digest::sha256(q.as_bytes()))),
        ..GqlRequest::default()
    };
    let full = |q: &str| GqlRequest {
        query: Some(q.to_string()),
        ..alone(q)
    };
    let (long, short) = (doc(30), doc(10)); // 64 and 24 bytes
    for q in [&long, &short] {
        assert_eq!(check(&c, &big, false, &[full(q)], &store).violation, None);
    }
    let cases: Vec<(&Limits, Vec<GqlRequest>, Option<Code>)> = vec![
        (&c.limits, vec![alone(&short)], None),
        (&c.limits, vec![alone(&long)], Some(Code::MaxBytes)),
        (&big, vec![alone(&long)], None),
        // 24 + 24 = 48 > 40: the batch's documents together.
        (
            &c.limits,
            vec![alone(&short), alone(&short)],
            Some(Code::MaxBytes),
        ),
        (&big, vec![alone(&short), alone(&long), alone(&short)], None),
    ];
    for (limits, reqs, want) in cases {
        let got = check(&c, limits, false, &reqs, &store)
            .violation
            .map(|v| v.code);
        assert_eq!(got, want, "{} requests", reqs.len());
    }
}

#[test]
fn operation_names_are_kept_for_the_access_log_when_they_are_graphql_names() {
    let c = config(r#"{}"#);
    let named = check(
        &c,
        &c.limits,
        false,
        &[
            req("query Pets { a }"),
            req("{ b }"),
            req("mutation AddPet { c }"),
        ],
        &NoStore,
    );
    assert_eq!(
        named.operations,
        ["Pets", "AddPet"],
        "unnamed operations are left out"
    );
    assert!(super::loggable_name("_x9") && !super::loggable_name("9x"));
    assert!(!super::loggable_name("a b") && !super::loggable_name(&"a".repeat(129)));
}
