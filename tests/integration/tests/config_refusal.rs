//! Issue 13: when Envoy refuses a filter's config, the reason is one `error` line that names
//! the filter and the field, and it is the filter's last word on that config.
//!
//! Every filter of the suite is started with a bad config at Envoy's default log level (`info`)
//! through kit's one root (`kit::runtime`, the same for every filter since issue 11; the suite
//! module's refusals, which name the section, are in tests/suite.rs). What Envoy itself prints
//! after the filter's line (it cannot be helped: the filter has returned false by then) is, in
//! Envoy 1.40: `Wasm VM failed Failed to configure base Wasm plugin`, `Plugin <name> failed to
//! load`, `Plugin configured to fail closed failed to load`, then `error \`Unable to create
//! Wasm plugin <name>\` initializing config '…'` and `exiting`: the reason stays a few lines
//! above Envoy's last word, never buried.

use apim_integration::bootstrap::{single_listener_bootstrap, wasm_filter};
use apim_integration::Envoy;

struct Case {
    module: &'static str,
    filter: &'static str,
    config: &'static str,
    /// The refusal after `<filter>: invalid configuration: `, as the log line holds it.
    want: &'static str,
}

const CASES: &[Case] = &[
    Case {
        module: "api_key_auth",
        filter: "api-key-auth",
        config: r#"{"consumers": [{"id": "guest"}, {"id": "alice", "keys": [{"sha256": "not-a-digest"}]}]}"#,
        // A consumer is named by its id, not its index.
        want: "consumers[id=alice].keys[0].sha256: ",
    },
    Case {
        module: "scope_authz",
        filter: "scope-authz",
        // A field name with a newline in it: serde quotes it, the line stays one line.
        config: r#"{"providers": [], "rul\u000aes": []}"#,
        want: "rul\\nes: unknown field `rul\\nes`",
    },
    Case {
        module: "quota",
        filter: "quota",
        config: r#"{"plans": {"p": {"limits": [{"requests": 0, "per": "second"}]}}, "default_plan": "p"}"#,
        want: "plans.p.limits[0].requests: must be between 1 and",
    },
    Case {
        module: "graphql_guard",
        filter: "graphql-guard",
        config: r#"{"max_depth": 0}"#,
        want: "max_depth: unknown field `max_depth`",
    },
    Case {
        module: "transform",
        filter: "transform",
        config: r#"{"rules": [{"request": {"headers": {"remove": ["host"]}}}]}"#,
        want: "rules[0].request.headers.remove[0]: \"host\" is protected",
    },
];

#[test]
fn a_refused_config_is_one_error_line_naming_filter_and_field_and_the_filters_last_word() {
    for case in CASES {
        let config = single_listener_bootstrap("", &[wasm_filter(case.module, case.config)]);
        let log = Envoy::start_expect_failure(&config).unwrap_or_else(|e| panic!("{e}"));
        let lines: Vec<&str> = log.lines().collect();
        let marker = format!("{}: invalid configuration: ", case.filter);
        let refusals: Vec<usize> = (0..lines.len())
            .filter(|i| lines.get(*i).is_some_and(|l| l.contains(&marker)))
            .collect();
        assert_eq!(refusals.len(), 1, "{}: {refusals:?}\n{log}", case.filter);
        let at = refusals[0];
        let line = lines[at];
        assert!(line.contains("[error]"), "{}: {line}", case.filter);
        assert!(
            line.contains(&format!("{marker}{}", case.want)),
            "{}: {line}",
            case.filter
        );
        // The filter says nothing more about this config (Envoy writes a plugin's lines as
        // `wasm log <plugin> <root_id>: …`).
        let plugin_says = format!("wasm log {} ", case.module);
        let later: Vec<&&str> = lines[at + 1..]
            .iter()
            .filter(|l| l.contains(&plugin_says))
            .collect();
        assert!(later.is_empty(), "{}: {later:?}", case.filter);
        // Envoy's own verdict comes after it, and it is Envoy's line that ends the log.
        let unable = format!("Unable to create Wasm plugin {}", case.module);
        let verdict = lines
            .iter()
            .position(|l| l.contains(&unable))
            .unwrap_or_else(|| panic!("{}: no {unable:?}\n{log}", case.filter));
        assert!(at < verdict, "{}:\n{log}", case.filter);
        // Everything between the two is Envoy's, and there is little of it.
        let between = &lines[at + 1..verdict];
        assert!(
            between.len() <= 8,
            "{}: {} lines between the reason and Envoy's verdict:\n{}",
            case.filter,
            between.len(),
            between.join("\n")
        );
    }
}
