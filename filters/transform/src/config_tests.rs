//! Bad configs with their exact messages, and what a good config compiles to.

use crate::config::{Config, OnInvalid, OnOversize};
use serde_json::json;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn err(v: serde_json::Value) -> String {
    Config::parse(v.to_string().as_bytes())
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_configs_name_the_field() {
    let rule = |r: serde_json::Value| json!({"rules": [{}, r]});
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (json!({}), "missing field `rules`"),
        (json!({"rules": [], "max_body_bytes": 0}), "max_body_bytes: must be between 1 and 16777216"),
        (json!({"rules": [], "on_oversize": "drop"}), "on_oversize: unknown variant `drop`, expected `pass` or `reject`"),
        (rule(json!({"requst": {}})), "rules[1].requst: unknown field `requst`"),
        (rule(json!({"match": {"path": {"regex": "("}}})), "rules[1].match.path.regex: invalid regex"),
        (rule(json!({"captures": "(["})), "rules[1].captures: invalid regex"),
        (rule(json!({"request": {"method": "GE T"}})), "rules[1].request.method: \"GE T\" is not an HTTP method"),
        (rule(json!({"request": {"headers": {"remove": ["host"]}}})), "rules[1].request.headers.remove[0]: \"host\" is protected"),
        (rule(json!({"request": {"headers": {"add": {":path": "/x"}}}})), "rules[1].request.headers.add.:path: \":path\" is a pseudo-header"),
        (rule(json!({"request": {"headers": {"rename": {"x-a": "Content-Length"}}}})), "rules[1].request.headers.rename.x-a: \"content-length\" is protected"),
        (rule(json!({"request": {"headers": {"replace": {"x-a": "{{bogus}}"}}}})), "rules[1].request.headers.replace.x-a: unknown variable \"{{bogus}}\""),
        (rule(json!({"request": {"headers": {"add": {"x-a": "a\r\nx-admin: 1"}}}})), "rules[1].request.headers.add.x-a: a header value cannot contain control characters"),
        (rule(json!({"response": [{"headers": {"append": {"x-a": "{{query.q}}\u{0}"}}}]})), "rules[1].response[0].headers.append.x-a: a header value cannot contain control characters"),
        (rule(json!({"request": {"path": "/v2/{{path.1}}"}})), "rules[1].request.path: \"{{path.1}}\": path captures need the rule's \"captures\" regex"),
        (rule(json!({"captures": "^/p/(?P<id>\\d+)$", "request": {"path": "/{{path.nope}}"}})), "rules[1].request.path: \"{{path.nope}}\": no such capture group"),
        (rule(json!({"request": {"query": {"remove": [""]}}})), "rules[1].request.query.remove[0]: parameter name is empty"),
        (rule(json!({"request": {"body": [{"op": "set", "path": "a", "value": 1}]}})), "rules[1].request.body[0].path: \"a\" is not a JSON Pointer (it must start with '/')"),
        (rule(json!({"request": {"body": [{"op": "set", "path": "/a"}]}})), "rules[1].request.body[0]: set needs exactly one of \"value\" and \"template\""),
        (rule(json!({"request": {"body": [{"op": "set", "path": "/a", "value": 1, "type": "int"}]}})), "rules[1].request.body[0].type: only applies to \"template\""),
        (rule(json!({"request": {"body": [{"op": "remove", "path": ""}]}})), "rules[1].request.body[0].path: cannot remove the whole document"),
        (rule(json!({"request": {"body": [{"op": "move", "from": "/a", "path": "/a/b"}]}})), "rules[1].request.body[0].path: cannot move a value into itself"),
        (rule(json!({"request": {"body": [{"op": "frobnicate"}]}})), "rules[1].request.body[0].op: unknown variant `frobnicate`"),
        (rule(json!({"request": {"body": [{"op": "json_patch", "patch": [{"op": "add", "path": "/a"}]}]}})), "rules[1].request.body[0].patch[0]: \"value\" is missing"),
        (rule(json!({"match": {"grpc": {"service": "pets.v1.Pets"}}, "request": {"body": [{"op": "remove", "path": "/a"}]}})), "rules[1].request.body: body operations read JSON and this rule matches gRPC calls (match.grpc)"),
        (rule(json!({"match": {"grpc": {"service": "pets.v1.Pets", "method": "Get"}}, "response": [{"headers": {"add": {"x-a": "1"}}}, {"body": [{"op": "remove", "path": "/a"}]}]})), "rules[1].response[1].body: body operations read JSON"),
        (rule(json!({"match": {"grpc": {"service": "pets.v1.Pets"}}, "graphql": {"cluster": "g", "query": "{a}"}})), "rules[1].graphql: REST→GraphQL cannot serve a gRPC call (match.grpc)"),
        (rule(json!({"match": {"grpc": {"service": "pets/Pets"}}})), "rules[1].match.grpc.service: \"pets/Pets\" is not a gRPC service name"),
        (rule(json!({"response": [{"status": [600]}]})), "rules[1].response[0].status[0]: 600 is not a status code (100-599) or class (\"2xx\")"),
        (rule(json!({"response": [{"status": ["2xy"]}]})), "rules[1].response[0].status[0]: \"2xy\" is not a status code"),
        (rule(json!({"graphql": {"cluster": "", "query": "{a}"}})), "rules[1].graphql.cluster: must not be empty"),
        (rule(json!({"graphql": {"cluster": "g", "query": " "}})), "rules[1].graphql.query: must not be empty"),
        (rule(json!({"graphql": {"cluster": "g", "query": "{a}", "timeout_ms": 0}})), "rules[1].graphql.timeout_ms: must be between 1 and 60000"),
        (rule(json!({"graphql": {"cluster": "g", "query": "{a}", "variables": {"id": {"template": "{{path.1}}", "type": "int"}}}})), "rules[1].graphql.variables.id.template: \"{{path.1}}\": path captures need"),
        (rule(json!({"graphql": {"cluster": "g", "query": "{a}", "variables": {"id": {"template": "x", "type": "date"}}}})), "unknown variant `date`"),
    ];
    for (config, want) in cases {
        let got = err(config.clone());
        assert!(
            got.starts_with(want) || got.contains(want),
            "{config}\n got: {got}\nwant: {want}"
        );
    }
}

#[test]
fn good_config_compiles_and_knows_what_to_fetch() {
    let c = Config::parse(
        json!({
            "max_body_bytes": 2048,
            "on_oversize": "reject",
            "on_invalid_body": "pass",
            "rules": [
                {"match": {"route_name": "pets"}, "request": {"headers": {"add": {"x-plan": "{{consumer.plan}}"}}}},
                {"request": {"headers": {"add": {"x-sub": "{{claim.sub}}"}}},
                 "response": [{"status": ["2xx", 404], "body": [{"op": "remove", "path": "/secret"}]}]}
            ]
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(c.max_body_bytes, 2048);
    assert_eq!(c.on_oversize, OnOversize::Reject);
    assert_eq!(c.on_invalid_body, OnInvalid::Pass);
    assert!(c.fetch.route_name && c.fetch.identity && c.fetch.claims);
    assert_eq!(c.rules.len(), 2);
    let plain =
        Config::parse(br#"{"rules":[{"request":{"headers":{"remove":["x-a"]}}}]}"#).unwrap();
    assert_eq!(plain.fetch, crate::config::Fetch::default());
}

#[test]
fn shipped_configs_parse() {
    for text in [include_str!(
        "../../../tests/integration/fixtures/transform/config.json"
    )] {
        if let Err(e) = Config::parse(text.as_bytes()) {
            panic!("{e}\n{text}");
        }
    }
}
