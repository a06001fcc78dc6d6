//! api-key-auth on a hostile request: credential extraction (header, Authorization, query,
//! cookie; duplicates, commas), the rules, and what the handler does to the request.
#![no_main]

use api_key_auth::config::Config;
use api_key_auth::credential;
use api_key_auth::handler::{on_request_headers, COUNTER_NAMES};
use kit::metrics::Counters;
use kit::request::RequestHead;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const CONFIG: &str = r#"{
  "realm": "fuzz",
  "sources": [{"header": "x-api-key"}, {"authorization": "ApiKey"},
              {"query": "api_key"}, {"cookie": "api_key"}],
  "allow_plaintext_keys": true,
  "consumers": [
    {"id": "alice", "plan": "gold", "groups": ["staff"], "keys": [{"plaintext": "alice-key"}]},
    {"id": "bob", "keys": [{"plaintext": "bob-key", "expires_at": "2030-01-01T00:00:00Z"}]},
    {"id": "anon", "plan": "free"}
  ],
  "rules": [
    {"match": {"path": {"prefix": "/open"}}, "skip": true},
    {"match": {"path": {"prefix": "/public"}}, "anonymous": "anon"},
    {"match": {"path": {"regex": "/admin(/.*)?"}, "methods": ["POST", "DELETE"]},
     "allow": {"groups": ["staff"]}},
    {"match": {"route_name": "pets", "hosts": ["*.example.com"]}, "allow": {"consumers": ["bob"]}}
  ],
  "forward": {"consumer_id_header": "x-consumer-id", "consumer_plan_header": "x-consumer-plan"}
}"#;

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| Config::parse(CONFIG.as_bytes()).expect("fixed config"))
}

fuzz_target!(|data: &[u8]| {
    let config = config();
    let (headers, body) = apim_fuzz::request(data);
    let head = RequestHead::new(headers.clone());
    let _ = credential::find(&config.sources, &head);
    for v in head.all("authorization") {
        let _ = credential::is_scheme(v, "ApiKey");
    }

    let host = apim_fuzz::host(headers);
    let counters = Counters::define(&host, &COUNTER_NAMES);
    let _ = on_request_headers(&host, config, &counters, !body.is_empty());
    apim_fuzz::assert_headers_safe(&host);
    apim_fuzz::assert_reply_sane(&host);
});
