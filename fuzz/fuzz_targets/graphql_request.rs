//! graphql-guard on a hostile request: GraphQL-over-HTTP transport (GET parameters, JSON and
//! `application/graphql` bodies, batches), the document analysis (depth, aliases, cost,
//! fragments, introspection) and the policy, through the handler, with two fixed configs.
//!
//! Input: a request (header lines, an empty line, the body).
#![no_main]

use graphql_guard::analyze::{analyze, Options};
use graphql_guard::apq::MemStore;
use graphql_guard::config::Config;
use graphql_guard::handler::{
    counter_names, on_request_body, on_request_headers, Env, HeadersAction,
};
use kit::metrics::Counters;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const CONFIGS: [&str; 2] = [
    r#"{
  "limits": {"max_depth": 6, "max_aliases": 15, "max_root_fields": 10, "max_height": 50,
             "max_directives": 20, "max_tokens": 5000, "max_bytes": 65536, "max_cost": 5000},
  "plans": {"gold": {"max_depth": 10, "max_cost": 50000}},
  "cost": {"fields": {"Query.search": 10}, "returns": {"Query.pets": "Pet"}},
  "introspection": {"mode": "count", "max_depth": 4},
  "max_batch": 5
}"#,
    r#"{
  "limits": {"max_depth": 3},
  "introspection": {"mode": "block"},
  "persisted": {"sha256": ["ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"]},
  "count_typename": true,
  "max_batch": 0,
  "max_body_bytes": 4096,
  "hide_values": true
}"#,
];

fn configs() -> &'static [Config] {
    static C: OnceLock<Vec<Config>> = OnceLock::new();
    C.get_or_init(|| {
        CONFIGS
            .iter()
            .map(|c| Config::parse(c.as_bytes()).expect("fixed config"))
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let (headers, body) = apim_fuzz::request(data);
    let names = counter_names();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for config in configs() {
        let host = apim_fuzz::host(headers.clone());
        let counters = Counters::define(&host, &names);
        // A registry that remembers across the two requests below: the same bytes are sent
        // twice, so a full query registered by the first is looked up by the second.
        let apq = MemStore::default();
        for _ in 0..2 {
            let env = Env::new(&host, &apq, config, &counters);
            if let HeadersAction::NeedBody(pending) = on_request_headers(env, false) {
                let _ = on_request_body(env, &pending, body.len(), true, || Some(body.to_vec()));
            }
        }
        apim_fuzz::assert_headers_safe(&host);
        apim_fuzz::assert_reply_sane(&host);
        if let Some(cost) = host.published(graphql_guard::config::COST_PROPERTY) {
            assert!(std::str::from_utf8(&cost).is_ok_and(|c| c.parse::<u64>().is_ok()));
        }
        // The body as a bare document, straight to the analyser.
        if let Ok(doc) = std::str::from_utf8(body) {
            let opts = Options {
                token_cap: 5000,
                introspection: config.introspection.mode,
                count_typename: true,
                cost: config.cost.as_ref(),
            };
            let _ = analyze(doc, None, None, &opts);
        }
    }
});
