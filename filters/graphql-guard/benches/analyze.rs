//! Analysis time (parse + measure + limits) for a realistic 1 KB query and a 10 KB one, as
//! POST bodies through the same path the filter takes (JSON → operations → check).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use criterion::{criterion_group, criterion_main, Criterion};
use graphql_guard::config::Config;
use graphql_guard::policy::check;
use graphql_guard::transport::{from_body, BodyKind, Extracted};
use std::hint::black_box;

const FINE: &str = include_str!("../../../tests/integration/fixtures/graphql-guard/fine.graphql");

const CONFIG: &str = r#"{
  "limits": {"max_depth": 10, "max_aliases": 30, "max_root_fields": 20, "max_height": 200,
             "max_directives": 20, "max_tokens": 20000, "max_cost": 1000000},
  "introspection": {"mode": "block"}
}"#;

/// About 10 KB: the 1 KB query's product selection under ten aliases.
fn ten_kb() -> String {
    let start = FINE.find("  product(").unwrap();
    let end = FINE.find("  recommended:").unwrap();
    let product = &FINE[start..end];
    let mut q = String::from("query Big($handle: String!, $first: Int = 10) {\n");
    for i in 0..14 {
        q.push_str(&product.replacen("  product(", &format!("  p{i}: product("), 1));
    }
    q.push_str("}\nfragment ImageFields on Image { id url altText width height }\n");
    q
}

fn body(query: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "query": query, "variables": {"handle": "red-shirt", "first": 10}
    }))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let config = Config::parse(CONFIG.as_bytes()).unwrap();
    let big = ten_kb();
    for (name, query) in [("analyze_1kb", FINE.to_string()), ("analyze_10kb", big)] {
        let bytes = body(&query);
        eprintln!("{name}: body {} bytes", bytes.len());
        let run = || {
            let Ok(Extracted::Single(req)) = from_body(BodyKind::Json, &bytes, 10, &[]) else {
                panic!("not a single request");
            };
            check(
                &config,
                &config.limits,
                false,
                std::slice::from_ref(&req),
                &graphql_guard::apq::NoStore,
            )
        };
        let checked = run();
        assert!(
            checked.violation.is_none(),
            "{name}: {:?}",
            checked.violation
        );
        c.bench_function(name, |b| b.iter(|| black_box(run())));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
