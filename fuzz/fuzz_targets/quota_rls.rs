//! quota's Rate Limit Service v3 decoder (hand-written protobuf) on any answer, and what the
//! filter does with it for a fail-open and a fail-closed plan. Also the request decoder (the
//! unit tests' service side), and the `apim_cost` filter-state parser.
//!
//! Invariants: an answer that says neither OK nor OVER_LIMIT never lets a fail-closed plan's
//! request through; OVER_LIMIT never lets any request through (no shadow mode here).
#![no_main]

use kit::metrics::Counters;
use libfuzzer_sys::fuzz_target;
use quota::config::Config;
use quota::handler::{on_global_response, Action, COUNTER_NAMES};
use quota::rls::{self, Code};
use std::sync::OnceLock;

const CONFIG: &str = r#"{
  "plans": {
    "gold": {"limits": [{"requests": 2, "per": "minute", "name": "gold-min"}, {"requests": 100, "per": "month"}]},
    "strict": {"limits": [{"requests": 1, "per": "day"}], "failure_mode": "closed"}
  },
  "default_plan": "strict",
  "cost_from_filter_state": true,
  "headers": {"on_allowed": true, "legacy": true},
  "global": {"cluster": "rls", "domain": "shop"}
}"#;

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| Config::parse(CONFIG.as_bytes()).expect("fixed config"))
}

fuzz_target!(|data: &[u8]| {
    let config = config();
    let _ = rls::decode_request(data);
    let _ = quota::policy::cost_of(config, None, Some(data));

    let decoded = rls::decode_response(data);
    if let Ok(resp) = &decoded {
        assert!(resp.statuses.len() <= rls::MAX_STATUSES);
    }
    for (plan, closed) in [("gold", false), ("strict", true)] {
        let Some(index) = config.plan_index(plan) else {
            return;
        };
        let host = apim_fuzz::host(Vec::new());
        let counters = Counters::define(&host, &COUNTER_NAMES);
        let answer = decoded.clone().map_err(|_| "malformed".to_string());
        let action = on_global_response(
            &host,
            config,
            &counters,
            index,
            answer,
            quota::handler::Shape::Request,
        );
        apim_fuzz::assert_reply_sane(&host);
        if let Some(r) = host.reply() {
            for (name, value) in &r.headers {
                assert!(
                    kit::header_value::check(value.as_bytes()).is_ok(),
                    "{name}: {value}"
                );
            }
        }
        let overall = decoded.as_ref().map(|r| r.overall).unwrap_or(Code::Unknown);
        let let_through = matches!(action, Action::Continue(_));
        if overall == Code::OverLimit {
            assert!(!let_through, "an over-limit answer let the request through");
        }
        if closed && overall == Code::Unknown {
            assert!(
                !let_through,
                "a fail-closed plan let a request through on a bad answer"
            );
        }
    }
});
