//! Criterion benches of the request path: a full RS256 verification (no cache), the whole
//! handler with the token cached (the common case: a client repeats its token), finding the
//! token in the request, and config parsing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use kit::host::MockHost;
use kit::request::RequestHead;
use scope_authz::config::Config;
use scope_authz::handler::{on_request_headers, Counters, State, COUNTER_NAMES};
use scope_authz::policy::find_token;
use scope_authz::token::verify;
use std::hint::black_box;

/// RS256, kid rsa1 (fixture key), exp 2100-01-01, scope "pets:read pets:write".
const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InJzYTEifQ.eyJpc3MiOiJodHRwczovL2lzc3Vlci50ZXN0IiwiYXVkIjoiYXBpIiwic3ViIjoiYWxpY2UiLCJzY29wZSI6InBldHM6cmVhZCBwZXRzOndyaXRlIiwiaWF0IjoxNzY3MjI1NjAwLCJleHAiOjQxMDI0NDQ4MDB9.jKqJLfg3TJMObnQ-Fgaa2l84_sgweX5-L9yuW9MVT7quLq-Q5N17JeLDBPZP_o29otCMsJf7WEkq_WImAQ7YZRBbWomzma9irr224cJUMBUq0O-KQe0NPWexhr9P-XKXNM0wIHXNxLEKo69KhxEqjt2Rrz0ZMUIhh15rlGuJYvdbLGOFzm0OqKerV1mxM9pLBIu55HYa7q_TcSsNo2plMPC2HXvp-Ce6PzThgnjWeP7UrCH2BWZJW-6sKODFZQ3I_A4MuNdhx6_nlfTvCs4wZ_a8jykYJ9N6jonV-WoSRiuJCQMCRHOp2UTasRuXsIm1q8BIVCsY7Eb5QtURaSAErg";
const JWKS: &str = include_str!("../../../tests/integration/fixtures/scope-authz/jwks-1.json");
const NOW: u64 = 1_800_000_000;

fn config() -> Config {
    let json = format!(
        r#"{{"providers":[{{"name":"t","issuer":"https://issuer.test","audiences":["api"],
            "algorithms":["RS256"],"jwks":{{"inline":{JWKS}}}}}],
            "rules":[{{"match":{{"path":{{"prefix":"/pets"}}}},"require":{{"all_of":["pets:read"]}}}}],
            "forward_claims":[{{"claim":"sub","header":"x-user"}}]}}"#
    );
    Config::parse(json.as_bytes()).unwrap()
}

fn benches(c: &mut Criterion) {
    let config = config();
    let state = State::new(&config);
    c.bench_function("verify_rs256_uncached", |b| {
        b.iter(|| verify(black_box(&config), &state.keys, black_box(TOKEN), NOW).unwrap())
    });
    let mut state = State::new(&config);
    let mut host = MockHost::new(&[
        (":path", "/pets/1"),
        (":method", "GET"),
        ("authorization", &format!("Bearer {TOKEN}")),
    ]);
    host.now = NOW;
    let counters = Counters::define(&host, &COUNTER_NAMES);
    c.bench_function("handler_cached_token", |b| {
        b.iter(|| on_request_headers(black_box(&host), &config, &mut state, &counters, false))
    });
    let head = RequestHead::from_pairs(&[
        (":path", "/pets/1"),
        ("authorization", &format!("Bearer {TOKEN}")),
    ]);
    c.bench_function("find_token", |b| {
        b.iter(|| find_token(black_box(&config), black_box(&head)).unwrap())
    });
    let raw = format!(
        r#"{{"providers":[{{"name":"t","issuer":"https://issuer.test","algorithms":["RS256"],"jwks":{{"inline":{JWKS}}}}}]}}"#
    );
    c.bench_function("config_parse", |b| {
        b.iter(|| Config::parse(black_box(raw.as_bytes())).unwrap())
    });
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(30);
    targets = benches
}
criterion_main!(group);
