//! Tables of configs: good ones and their validated form, bad ones with their exact messages.

use super::*;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

// SHA-256("abc").
const D_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

fn parse(json: &str) -> Result<Config, String> {
    Config::parse(json.as_bytes()).map_err(|e| e.to_string())
}

#[test]
fn empty_object_gets_the_documented_defaults() {
    let c = parse("{}").unwrap();
    assert_eq!(c.limits, Limits::default());
    assert!(c.plans.is_empty() && !c.needs_identity());
    assert!(c.cost.is_none());
    assert_eq!(c.introspection.mode, IntrospectionMode::Allow);
    assert_eq!(c.introspection.max_depth, DEFAULT_INTROSPECTION_DEPTH);
    assert!(!c.count_typename && !c.warn_only && !c.hide_values && c.publish_cost);
    assert_eq!(c.max_batch, DEFAULT_MAX_BATCH);
    assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    assert!(c.rules.is_empty());
    assert_eq!(
        c.fetch,
        vec![
            ":method",
            ":path",
            "content-type",
            "accept",
            "upgrade",
            ":protocol",
            "sec-websocket-protocol"
        ]
    );
    assert_eq!(c.methods, vec!["GET", "POST"]);
    assert_eq!(c.allow, "GET, POST");
    assert!(c.hold_headers);
    assert_eq!(
        c.apq,
        crate::apq::ApqLimits {
            max_entries: DEFAULT_APQ_ENTRIES,
            max_query_bytes: DEFAULT_APQ_QUERY_BYTES
        }
    );
}

#[test]
fn full_config_is_accepted() {
    let c = parse(&format!(
        r#"{{
        "rules": [{{"match":{{"path":{{"prefix":"/graphql"}}}}}}, {{"match":{{"hosts":["x"]}},"skip":true}}],
        "limits": {{"max_depth":10,"max_aliases":0,"max_root_fields":5,"max_height":100,
                    "max_directives":20,"max_tokens":2000,"max_bytes":65536,"max_cost":500}},
        "plans": {{"gold": {{"max_depth":15,"max_cost":5000}}, "free": {{"max_depth":5}}}},
        "cost": {{"default_weight":2,"scalar_weight":1,"fields":{{"Query.search":10,"friends":3}},
                  "types":{{"User":4}},"returns":{{"Query.me":"User"}},"list_arguments":["first","take"],
                  "max_list_size":100}},
        "introspection": {{"mode":"block","max_depth":5}},
        "count_typename": true,
        "persisted": {{"only": true, "sha256": ["{D_ABC}"]}},
        "max_batch": 0, "max_body_bytes": 100000, "warn_only": true, "hide_values": true,
        "publish_cost": false
    }}"#
    ))
    .unwrap();
    assert_eq!(c.limits.max_aliases, Some(0));
    let gold = c.limits_for(Some("gold"));
    assert_eq!(
        (gold.max_depth, gold.max_cost, gold.max_root_fields),
        (Some(15), Some(5000), Some(5))
    );
    assert_eq!(c.limits_for(Some("free")).max_depth, Some(5));
    assert_eq!(c.limits_for(Some("unknown")).max_depth, Some(10));
    assert_eq!(c.limits_for(None).max_depth, Some(10));
    let cost = c.cost.unwrap();
    assert_eq!(cost.typed_fields.get("Query.search"), Some(&10));
    assert_eq!(cost.fields.get("friends"), Some(&3));
    assert_eq!(cost.list_arguments, vec!["first", "take"]);
    assert!(c.persisted.unwrap().only);
}

#[test]
fn methods_hold_headers_and_apq() {
    let c = parse(
        r#"{"methods":["get","Post","PUT","put"],"hold_headers":false,
            "apq":{"max_entries":0,"max_query_bytes":100}}"#,
    )
    .unwrap();
    assert_eq!(c.methods, vec!["GET", "POST", "PUT"]);
    assert_eq!(c.allow, "GET, POST, PUT");
    assert!(!c.hold_headers);
    assert_eq!(c.websocket, WebsocketMode::Refuse);
    assert_eq!(
        parse(r#"{"websocket":"inspect"}"#).unwrap().websocket,
        WebsocketMode::Inspect
    );
    assert_eq!(
        c.apq,
        crate::apq::ApqLimits {
            max_entries: 0,
            max_query_bytes: 100
        }
    );
}

#[test]
fn rules_and_plans_validate() {
    let c = parse(
        r#"{"rules":[{"match":{"path":{"prefix":"/graphql"}}},{"match":{"hosts":["x.example"]},"skip":true}],
            "limits":{"max_cost":10},"plans":{"gold":{"max_depth":3}}}"#,
    )
    .unwrap();
    assert_eq!(c.rules.len(), 2);
    assert!(c.needs_identity());
    // A bare max_cost brings the default cost model.
    let m = c.cost.as_ref().unwrap();
    assert_eq!(
        (m.default_weight, m.scalar_weight, m.max_list_size),
        (1, 0, 1000)
    );
    assert_eq!(c.limits_for(Some("gold")).max_cost, Some(10));
}

#[test]
fn websocket_and_registry_bounds() {
    let c = parse("{}").unwrap();
    assert_eq!(c.websocket_max_message_bytes, 64 * 1024);
    assert!(c.document_id_parameters.is_empty());
    // At the registry bound exactly: accepted.
    let c = parse(r#"{"apq":{"max_entries":2048,"max_query_bytes":32736}}"#).unwrap();
    assert_eq!(c.apq.max_entries, 2048);
    let c = parse(
        r#"{"websocket_max_message_bytes":1048576,"document_id_parameters":["id","documentId"]}"#,
    )
    .unwrap();
    assert_eq!(c.websocket_max_message_bytes, 1024 * 1024);
    assert_eq!(c.document_id_parameters, vec!["id", "documentId"]);
}

#[test]
fn bad_configs_name_the_field() {
    let cases: &[(&str, &str)] = &[
        (r#"{"limts":{}}"#, "limts: unknown field `limts`"),
        (r#"{"limits":{"max_depht":3}}"#, "limits.max_depht: unknown field `max_depht`"),
        (r#"{"limits":{"max_depth":0}}"#, "limits.max_depth: must be at least 1"),
        (r#"{"limits":{"max_depth":-1}}"#, "limits.max_depth: invalid value: integer `-1`"),
        (
            r#"{"limits":{"max_depth":500}}"#,
            "limits.max_depth: must be below the parser's nesting limit (200)",
        ),
        (r#"{"limits":{"max_tokens":0}}"#, "limits.max_tokens: must be at least 1"),
        (r#"{"limits":{"max_tokens":999999}}"#, "limits.max_tokens: must be at most 200000"),
        (r#"{"limits":{"max_bytes":99999999}}"#, "limits.max_bytes: must be at most 8388608"),
        (r#"{"plans":{"gold":{"max_root_fields":0}}}"#, "plans.gold.max_root_fields: must be at least 1"),
        (
            r#"{"plans":{"go ld":{}}}"#,
            "plans.go ld: \"go ld\" must be 1-256 characters of letters, digits and . _ - ~ : @ + /",
        ),
        (r#"{"max_batch":5000}"#, "max_batch: must be at most 1000"),
        (r#"{"max_body_bytes":0}"#, "max_body_bytes: must be between 1 and 8388608"),
        (r#"{"introspection":{"mode":"maybe"}}"#, "introspection.mode: unknown variant `maybe`"),
        (r#"{"introspection":{"max_depth":0}}"#, "introspection.max_depth: must be at least 1"),
        (r#"{"cost":{"fields":{"a.b.c":1}}}"#, "cost.fields.a.b.c: must be \"Type.field\""),
        (r#"{"cost":{"fields":{"1a":1}}}"#, "cost.fields.1a: must be \"field\" or \"Type.field\""),
        (r#"{"cost":{"types":{"Us-er":1}}}"#, "cost.types.Us-er: must be a GraphQL type name"),
        (r#"{"cost":{"returns":{"Query.me":"1"}}}"#, "cost.returns.Query.me: \"1\" is not a GraphQL type name"),
        (r#"{"cost":{"list_arguments":["ok","no way"]}}"#, "cost.list_arguments[1]: \"no way\" is not a GraphQL name"),
        (r#"{"cost":{"max_list_size":0}}"#, "cost.max_list_size: must be at least 1"),
        (r#"{"cost":{"default_weight":-2}}"#, "cost.default_weight: invalid value: integer `-2`"),
        (
            r#"{"persisted":{"only":true}}"#,
            "persisted.sha256: persisted-only mode with no digests would refuse every operation",
        ),
        (r#"{"persisted":{"sha256":["nothex"]}}"#, "persisted.sha256[0]: "),
        (r#"{"rules":[{"match":{"path":{"regex":"("}}}]}"#, "rules[0].match.path"),
        (r#"{"rules":[{"match":{},"skip":"yes"}]}"#, "rules[0].skip: invalid type"),
        (r#"{"warn_only":1}"#, "warn_only: invalid type"),
        (r#"{"methods":[]}"#, "methods: between 1 and 16 methods"),
        (r#"{"methods":["GET","PO ST"]}"#, "methods[1]: \"PO ST\" is not an HTTP method"),
        (r#"{"methods":[""]}"#, "methods[0]: \"\" is not an HTTP method"),
        (r#"{"methods":"GET"}"#, "methods: invalid type"),
        (r#"{"hold_headers":"no"}"#, "hold_headers: invalid type"),
        (r#"{"apq":{"max_entries":100001}}"#, "apq.max_entries: must be at most 100000"),
        (r#"{"apq":{"max_query_bytes":0}}"#, "apq.max_query_bytes: must be between 1 and 262144"),
        (r#"{"apq":{"entries":5}}"#, "apq.entries: unknown field `entries`"),
        (r#"{"websocket":"allow"}"#, "websocket: unknown variant `allow`"),
        // The registry's bound: entries × (32 + document bytes) at most 64 MiB.
        (
            r#"{"apq":{"max_entries":100000,"max_query_bytes":262144}}"#,
            "apq: max_entries × (32 + max_query_bytes) is 26217600000 bytes, more than 67108864",
        ),
        (
            r#"{"apq":{"max_entries":4096,"max_query_bytes":16384}}"#,
            "apq: max_entries × (32 + max_query_bytes) is 67239936 bytes",
        ),
        (r#"{"websocket_max_message_bytes":0}"#, "websocket_max_message_bytes: must be between 1 and 1048576"),
        (r#"{"websocket_max_message_bytes":1048577}"#, "websocket_max_message_bytes: must be between 1 and 1048576"),
        (r#"{"document_id_parameters":["Id"]}"#, "document_id_parameters[0]: \"Id\" is not one of: id, documentId, doc_id, namedQuery"),
        (r#"{"document_id_parameters":["query"]}"#, "document_id_parameters[0]: \"query\" is not one of"),
        ("", "config is empty"),
    ];
    for (json, want) in cases {
        let err = parse(json)
            .err()
            .unwrap_or_else(|| panic!("accepted: {json}"));
        assert!(err.starts_with(want), "{json}: got {err:?}, want {want:?}");
    }
}

#[test]
fn looser_choices_are_warned_about() {
    assert!(parse("{}").unwrap().warnings().is_empty());
    let c = parse(
        r#"{"warn_only": true, "hold_headers": false, "document_id_parameters": ["id"],
            "persisted": {"sha256": ["ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"]}}"#,
    )
    .unwrap();
    let w = c.warnings();
    let prefixes: Vec<&str> = w
        .iter()
        .map(|m| m.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        prefixes,
        [
            "warn_only",
            "hold_headers",
            "document_id_parameters",
            "persisted.sha256"
        ]
    );
}
