//! Criterion benches of the request-path logic: planning five header operations, three JSON
//! Pointer operations on a 1 KB body (the e2e rows' work), RFC 7396 and RFC 6902 patches, a
//! REST → GraphQL call, and config parsing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use kit::request::RequestHead;
use std::hint::black_box;
use transform::config::Config;
use transform::policy::{self, finish_body, plan_request, BodyOutcome, Request, RequestPlan};

const BODY: &str = include_str!("../../../tests/integration/bench/transform-1k.json");

fn request(path: &str, extra: &[(&str, &str)]) -> Request {
    let mut h = vec![
        (":method", "POST"),
        (":path", path),
        (":authority", "api.example.com"),
        ("content-type", "application/json"),
        ("x-api-key", "demo-key-alice-0123456789abcdef"),
        ("x-old", "moved"),
        ("x-tenant", "acme"),
    ];
    h.extend_from_slice(extra);
    Request {
        head: RequestHead::from_pairs(&h),
        ..Request::default()
    }
}

fn bench(c: &mut Criterion) {
    let config_json = r#"{"rules": [
      {"match": {"path": {"prefix": "/h"}}, "request": {"headers": {
        "remove": ["x-api-key"], "rename": {"x-old": "x-new"},
        "replace": {"x-tenant": "t-{{header.x-tenant}}"}, "add": {"x-added": "{{header.x-tenant}}"},
        "append": {"x-via": "transform"}}}},
      {"match": {"path": {"prefix": "/json"}}, "request": {"body": [
        {"op": "remove", "path": "/internal_notes"},
        {"op": "rename", "path": "/customer/email", "to": "contact"},
        {"op": "set", "path": "/meta/tenant", "template": "{{header.x-tenant}}"}]}},
      {"match": {"path": {"prefix": "/merge"}}, "request": {"body": [
        {"op": "merge_patch", "patch": {"customer": {"tier": null, "vip": true}, "currency": "USD"}}]}},
      {"match": {"path": {"prefix": "/patch"}}, "request": {"body": [
        {"op": "json_patch", "patch": [
          {"op": "test", "path": "/currency", "value": "EUR"},
          {"op": "add", "path": "/items/-", "value": {"sku": "x"}},
          {"op": "move", "from": "/internal_notes", "path": "/notes"}]}]}},
      {"match": {"path": {"prefix": "/gql"}}, "captures": "^/gql/pets/(\\d+)$", "graphql": {
        "cluster": "gql", "query": "query($id: Int!) { pet(id: $id) { id name } }",
        "variables": {"id": {"template": "{{path.1}}", "type": "int"}}, "unwrap": "pet"}}
    ]}"#;
    let config = Config::parse(config_json.as_bytes()).unwrap();

    let headers_req = request("/h", &[]);
    let rule = policy::find_rule(&config, &headers_req).unwrap().clone();
    c.bench_function("headers/five_ops", |b| {
        b.iter(|| {
            let plan = plan_request(&config, &rule, black_box(&headers_req), true);
            assert!(matches!(plan, RequestPlan::Apply { .. }));
        })
    });

    for (name, path) in [
        ("body/three_pointer_ops_1k", "/json"),
        ("body/merge_patch_1k", "/merge"),
        ("body/json_patch_1k", "/patch"),
    ] {
        let req = request(path, &[]);
        let rule = policy::find_rule(&config, &req).unwrap().clone();
        c.bench_function(name, |b| {
            b.iter(|| {
                let out = finish_body(
                    &config,
                    &rule.request.body,
                    &req,
                    black_box(BODY.as_bytes()),
                    true,
                );
                assert!(matches!(out, BodyOutcome::Replace(_)));
            })
        });
    }

    let mut gql_req = request("/gql/pets/42", &[]);
    let rule = policy::find_rule(&config, &gql_req).unwrap().clone();
    gql_req.captures = policy::captures(&rule, "/gql/pets/42");
    c.bench_function("graphql/build_call", |b| {
        b.iter(|| {
            let plan = plan_request(&config, &rule, black_box(&gql_req), true);
            assert!(matches!(plan, RequestPlan::GraphQl(_)));
        })
    });

    c.bench_function("config/parse", |b| {
        b.iter(|| Config::parse(black_box(config_json.as_bytes())).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
