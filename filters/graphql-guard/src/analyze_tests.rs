//! Tables of documents and their measurements: depth, aliases, root fields, height,
//! directives and cost, each with fragments, inline fragments, cycles and introspection.

use super::*;
use crate::config::{Config, CostModel};
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn opts(cost: Option<&CostModel>) -> Options<'_> {
    Options {
        token_cap: 100_000,
        introspection: IntrospectionMode::Allow,
        count_typename: false,
        cost,
    }
}

fn measure(q: &str) -> Measured {
    analyze(q, None, None, &opts(None))
        .unwrap_or_else(|e| panic!("{q}: {e:?}"))
        .measured
}

#[test]
fn depth_follows_apollo_router() {
    let cases: &[(&str, u32)] = &[
        ("{ a }", 1),
        ("{ a { b } }", 2),
        ("{ a { b { c } } d }", 3),
        ("query Q { a { b } }", 2),
        // Inline fragments add nothing.
        ("{ a { ... on T { b { c } } } }", 3),
        ("{ ... { a } }", 1),
        // Named fragments add nothing and are expanded where spread.
        ("{ a { ...F } } fragment F on T { b { c } }", 3),
        ("{ ...F } fragment F on Query { a { b } }", 2),
        // Nested fragments.
        (
            "{ a { ...F } } fragment F on T { b { ...G } } fragment G on T { c { d } }",
            4,
        ),
        // A fragment spread twice at different depths: the deepest use counts.
        ("{ x { ...F } y { z { ...F } } } fragment F on T { b }", 3),
        // __typename is not counted by default.
        ("{ a { __typename } }", 1),
        // Arguments and directives do not nest selections.
        ("{ a(x: {y: {z: [1, [2]]}}) @skip(if: false) }", 1),
    ];
    for (q, want) in cases {
        assert_eq!(measure(q).depth, *want, "{q}");
    }
}

#[test]
fn aliases_root_fields_height_directives() {
    /// A document and what it measures.
    struct Case {
        query: &'static str,
        aliases: u64,
        root_fields: u64,
        height: u64,
        directives: u64,
    }
    let cases = [
        Case {
            query: "{ a b c }",
            aliases: 0,
            root_fields: 3,
            height: 3,
            directives: 0,
        },
        Case {
            query: "{ x: a y: a z: a }",
            aliases: 3,
            root_fields: 3,
            height: 1,
            directives: 0,
        },
        Case {
            query: "{ a { b c } a2: a { b } }",
            aliases: 1,
            root_fields: 2,
            height: 3,
            directives: 0,
        },
        // Root fields through inline fragments and named fragments.
        Case {
            query: "{ ... on Query { a b } ...F } fragment F on Query { c }",
            aliases: 0,
            root_fields: 3,
            height: 3,
            directives: 0,
        },
        // Fragments are counted at each use (memoised, not re-walked).
        Case {
            query: "{ a { ...F } b { ...F } } fragment F on T { x: c y: c }",
            aliases: 4,
            root_fields: 2,
            height: 3,
            directives: 0,
        },
        // Directives everywhere: operation, field, spread, inline fragment, fragment.
        Case {
            query: "query Q @d { a @d @e { ...F @d ... @d { b } } } fragment F on T @d { c }",
            aliases: 0,
            root_fields: 1,
            height: 3,
            directives: 6,
        },
        // __typename is free but its alias and directives still count.
        Case {
            query: "{ t: __typename @d }",
            aliases: 1,
            root_fields: 0,
            height: 0,
            directives: 1,
        },
    ];
    for case in cases {
        let m = measure(case.query);
        assert_eq!(
            (m.aliases, m.root_fields, m.height, m.directives),
            (case.aliases, case.root_fields, case.height, case.directives),
            "{}",
            case.query
        );
    }
}

#[test]
fn typename_counts_when_configured() {
    let o = Options {
        count_typename: true,
        ..opts(None)
    };
    let m = analyze("{ a { __typename } }", None, None, &o)
        .unwrap()
        .measured;
    assert_eq!((m.depth, m.height), (2, 2));
}

#[test]
fn operation_selection() {
    let doc = "query A { a } query B { b { c } } mutation M { m }";
    let kind = |name| analyze(doc, name, None, &opts(None)).map(|a| (a.kind, a.measured.depth));
    assert_eq!(kind(Some("A")).unwrap(), (OpKind::Query, 1));
    assert_eq!(kind(Some("B")).unwrap(), (OpKind::Query, 2));
    assert_eq!(kind(Some("M")).unwrap(), (OpKind::Mutation, 1));
    assert_eq!(kind(None).err(), Some(AnalysisError::OperationNameRequired));
    assert_eq!(
        kind(Some("Z")).err(),
        Some(AnalysisError::OperationNotFound("Z".into()))
    );
    let only = |q: &str| analyze(q, None, None, &opts(None)).map(|a| a.kind);
    assert_eq!(only("subscription S { s }").unwrap(), OpKind::Subscription);
    assert_eq!(
        only("fragment F on T { a }").err(),
        Some(AnalysisError::NoOperation)
    );
    assert!(matches!(
        only("type Query { a: Int }").err(),
        Some(AnalysisError::Syntax(_))
    ));
}

#[test]
fn fragment_errors_are_values() {
    let cases: &[(&str, AnalysisError)] = &[
        (
            "{ ...F } fragment F on Q { ...F }",
            AnalysisError::FragmentCycle("F".into()),
        ),
        (
            "{ ...A } fragment A on Q { a { ...B } } fragment B on T { b { ...A } }",
            AnalysisError::FragmentCycle("A".into()),
        ),
        ("{ ...Nope }", AnalysisError::UnknownFragment("Nope".into())),
        (
            "{ ...F } fragment F on Q { a } fragment F on Q { b }",
            AnalysisError::DuplicateFragment("F".into()),
        ),
        (
            "{ a ",
            AnalysisError::Syntax("expected R_CURLY, got EOF".into()),
        ),
    ];
    for (q, want) in cases {
        let got = analyze(q, None, None, &opts(None)).err();
        match (want, &got) {
            (AnalysisError::Syntax(_), Some(AnalysisError::Syntax(_))) => {}
            _ => assert_eq!(got.as_ref(), Some(want), "{q}"),
        }
    }
}

#[test]
fn reused_fragments_are_not_exponential() {
    // F0 spreads F1 twice, F1 spreads F2 twice ... : 2^40 expansions if re-walked.
    let mut q = String::from("{ ...F0 }");
    for i in 0..40 {
        q.push_str(&format!(
            " fragment F{i} on Query {{ a{i}: x ...F{n} ...F{n} }}",
            n = i + 1
        ));
    }
    q.push_str(" fragment F40 on Query { leaf }");
    let m = measure(&q);
    assert_eq!(m.depth, 1);
    assert!(m.aliases >= 1 << 39, "counted at every use: {}", m.aliases);
}

#[test]
fn pathological_documents_are_refused_cleanly() {
    let deep = format!("{}{}", "{ a ".repeat(10_000), "}".repeat(10_000));
    assert_eq!(
        analyze(&deep, None, None, &opts(None)).err(),
        Some(AnalysisError::TooDeep)
    );
    // 100,000 levels: the token cap or the nesting cap stops it, whichever comes first.
    let deeper = format!("{}{}", "{a".repeat(100_000), "}".repeat(100_000));
    let o = Options {
        token_cap: crate::config::HARD_MAX_TOKENS,
        ..opts(None)
    };
    assert!(matches!(
        analyze(&deeper, None, None, &o).err(),
        Some(AnalysisError::TooDeep | AnalysisError::TooManyTokens)
    ));
    let deep_value = format!("{{ a(x: {}1{}) }}", "[".repeat(5_000), "]".repeat(5_000));
    assert_eq!(
        analyze(&deep_value, None, None, &opts(None)).err(),
        Some(AnalysisError::TooDeep)
    );
    let many = format!("{{ {} }}", "a ".repeat(500_000));
    let o = Options {
        token_cap: 1000,
        ..opts(None)
    };
    assert_eq!(
        analyze(&many, None, None, &o).err(),
        Some(AnalysisError::TooManyTokens)
    );
    // A long chain of fragments nests the walk without nesting selection sets.
    let mut chain = String::from("{ ...F0 }");
    for i in 0..1000 {
        chain.push_str(&format!(" fragment F{i} on Query {{ ...F{} }}", i + 1));
    }
    chain.push_str(" fragment F1000 on Query { a }");
    assert_eq!(
        analyze(&chain, None, None, &opts(None)).err(),
        Some(AnalysisError::TooDeep)
    );
    // Within the limits, a moderately deep document is fine.
    let ok = format!("{}{}", "{ a ".repeat(60), "}".repeat(60));
    assert_eq!(measure(&ok).depth, 60);
}

#[test]
fn introspection_is_exempt_from_depth_but_measured() {
    let q = "{ __schema { types { fields { type { ofType { name } } } } } }";
    let m = measure(q);
    assert_eq!(
        (m.depth, m.introspection, m.introspection_depth),
        (0, true, 6)
    );
    // Nested under a normal field.
    let m = measure("{ a { __type(name: \"X\") { name } } }");
    assert_eq!((m.depth, m.introspection_depth), (1, 2));
    // Disguises: operation and fragment names never unlock anything; the field inside is
    // what counts, and a normal field named like a fragment is normal.
    let m = measure("query __schema { a { b { c } } }");
    assert_eq!((m.depth, m.introspection), (3, false));
    let m = measure("{ ...__schema } fragment __schema on Query { a { b } }");
    assert_eq!((m.depth, m.introspection), (2, false));
    let m = measure("{ __schemas { a { b } } }");
    assert_eq!((m.depth, m.introspection), (3, false));
    // Through a fragment, introspection is still seen.
    let m = measure("{ ...F } fragment F on Query { __schema { types { name } } }");
    assert_eq!((m.introspection, m.introspection_depth), (true, 3));
    // Count mode: no exemption.
    let o = Options {
        introspection: IntrospectionMode::Count,
        ..opts(None)
    };
    let m = analyze(q, None, None, &o).unwrap().measured;
    assert_eq!(m.depth, 6);
}

fn model(json: &str) -> Config {
    Config::parse(json.as_bytes()).unwrap()
}

#[test]
fn static_cost() {
    let c = model(
        r#"{"cost":{"default_weight":1,"scalar_weight":0,
            "fields":{"Query.search":10,"friends":3,"User.avatar":5},
            "types":{"Post":2},
            "returns":{"Query.user":"User","User.posts":"Post","Query.search":"User"}}}"#,
    );
    let m = c.cost.as_ref();
    let cost =
        |q: &str, vars: Option<&Value>| analyze(q, None, vars, &opts(m)).unwrap().measured.cost;
    let cases: &[(&str, u64)] = &[
        ("{ a }", 0),
        ("{ a { b } }", 1),
        ("{ user { name } }", 1),
        // Type-qualified weight, below the root through `returns`.
        ("{ user { avatar } }", 6),
        ("{ user { avatar { url } } }", 6),
        // Per-type weight (User.posts returns Post).
        ("{ user { posts { id } } }", 3),
        // List multipliers: first/last/limit, on the subtree.
        ("{ user { posts(first: 10) { id } } }", 21),
        ("{ search(limit: 5) { name } }", 50),
        ("{ search(limit: 5, first: 7) { name } }", 70),
        // Any-parent field weight.
        ("{ a { friends { b } } }", 4),
        // Inline fragment type conditions give the parent type.
        ("{ node { ... on User { avatar } } }", 6),
        // Fragments are costed at every use.
        (
            "{ u1: user { ...U } u2: user { ...U } } fragment U on User { avatar }",
            12,
        ),
        // A huge multiplier is capped at max_list_size (1000).
        ("{ search(first: 999999999) { name } }", 10_000),
    ];
    for (q, want) in cases {
        assert_eq!(cost(q, None), *want, "{q}");
    }
    let vars = serde_json::json!({"n": 4});
    assert_eq!(
        cost("query($n: Int) { search(first: $n) { name } }", Some(&vars)),
        40
    );
    // An unknown variable counts as the cap.
    assert_eq!(
        cost("query($m: Int) { search(first: $m) { name } }", Some(&vars)),
        10_000
    );
    // Nested multipliers multiply, and saturate instead of overflowing.
    let nested = format!(
        "{{ {}x{} }}",
        "a(first: 1000) { ".repeat(20),
        " }".repeat(20)
    );
    assert_eq!(cost(&nested, None), u64::MAX);
}

#[test]
fn syntax_is_checked_where_it_is_measured() {
    let ok = [
        "query Q($x: [Int!]! = [1, 2] @d, $y: In = {a: {b: [$z]}}) { a(x: $x, y: \"s\", z: 1.5, w: ENUM, v: null, u: {k: [1, {m: true}]}) }",
        "{ a(s: \"\"\"block \"string\" \"\"\") }",
        "# comment only\n{ a, b, c }",
        "{ a ...on T { b } ... @include(if: true) { c } }",
    ];
    for q in ok {
        assert!(analyze(q, None, None, &opts(None)).is_ok(), "{q}");
    }
    let bad = [
        "{ }",
        "{ a } }",
        "{ a(: 1) }",
        "{ a(x: ) }",
        "{ a() }",
        "{ a(x: 1 }",
        "{ a { b }",
        "query Q",
        "query Q ($x: Int { a }",
        "fragment on on T { a }",
        "fragment F T { a }",
        "{ a: }",
        "{ ... }",
        "{ a @ }",
        "\"unterminated",
    ];
    for q in bad {
        assert!(
            matches!(
                analyze(q, None, None, &opts(None)),
                Err(AnalysisError::Syntax(_))
            ),
            "{q}"
        );
    }
}

/// The token vector never reserves more than the token cap allows (1 MiB body, 100 tokens).
#[test]
fn token_reservation_is_bounded_by_the_cap() {
    for (len, cap, want) in [
        (1024 * 1024, 100, 100),
        (1024 * 1024, 200_000, 200_000),
        (30, 200_000, 10),
        (0, 5, 0),
    ] {
        assert_eq!(token_capacity(len, cap), want, "{len} {cap}");
    }
}
