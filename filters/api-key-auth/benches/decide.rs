//! Criterion benches of the request-path logic: decision for a valid key (header), a missing
//! key and an unknown key, with 1,000 configured consumers; and config parsing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use api_key_auth::config::Config;
use api_key_auth::policy::{decide, Decision};
use criterion::{criterion_group, criterion_main, Criterion};
use kit::digest::{sha256, to_hex};
use kit::request::RequestHead;
use std::hint::black_box;

fn config_json(consumers: usize) -> String {
    let list: Vec<String> = (0..consumers)
        .map(|i| {
            format!(
                r#"{{"id":"c{i}","plan":"gold","keys":[{{"sha256":"{}"}}]}}"#,
                to_hex(&sha256(format!("key-{i}").as_bytes()))
            )
        })
        .collect();
    format!(
        r#"{{"consumers":[{}],"forward":{{"consumer_id_header":"x-consumer-id"}}}}"#,
        list.join(",")
    )
}

fn head(key: Option<&str>) -> RequestHead {
    let mut h = vec![
        (":method", "GET"),
        (":path", "/pets/1"),
        (":authority", "api.example.com"),
        ("user-agent", "wrk"),
        ("accept", "*/*"),
    ];
    if let Some(k) = key {
        h.push(("x-api-key", k));
    }
    RequestHead::from_pairs(&h)
}

fn bench(c: &mut Criterion) {
    let json = config_json(1000);
    let config = Config::parse(json.as_bytes()).unwrap();
    let valid = head(Some("key-500"));
    let missing = head(None);
    let unknown = head(Some("nope"));
    c.bench_function("decide/valid_key", |b| {
        b.iter(|| {
            assert!(matches!(
                decide(black_box(&config), black_box(&valid), None, 0).decision,
                Decision::Allow { .. }
            ))
        })
    });
    c.bench_function("decide/missing_key", |b| {
        b.iter(|| decide(black_box(&config), black_box(&missing), None, 0))
    });
    c.bench_function("decide/unknown_key", |b| {
        b.iter(|| decide(black_box(&config), black_box(&unknown), None, 0))
    });
    c.bench_function("config/parse_1000_consumers", |b| {
        b.iter(|| Config::parse(black_box(json.as_bytes())).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
