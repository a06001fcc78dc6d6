//! Tables of configs: good ones and their validated form, bad ones with their exact messages.

use super::*;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

// SHA-256("abc").
const D_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
// SHA-256("") in base64.
const D_EMPTY_B64: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

fn parse(json: &str) -> Result<Config, String> {
    Config::parse(json.as_bytes()).map_err(|e| e.to_string())
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let c = parse(&format!(
        r#"{{"consumers":[{{"id":"alice","keys":[{{"sha256":"{D_ABC}"}}]}}]}}"#
    ))
    .unwrap();
    assert_eq!(c.www_authenticate, "ApiKey realm=\"apim\"");
    assert_eq!(c.sources, vec![Source::Header("x-api-key".into())]);
    assert_eq!(c.max_key_length, 256);
    assert!(c.strip_credential);
    assert!(!c.allow_cors_preflight);
    assert_eq!(c.consumer_id_header, None);
    assert_eq!(c.keys.len(), 1);
    assert!(c.rules.is_empty());
    assert_eq!(
        c.fetch,
        vec!["x-api-key".to_string()],
        "the default costs one header read"
    );
    assert_eq!(
        c.consumers[0].identity,
        br#"{"id":"alice","source":"api-key-auth"}"#.to_vec()
    );
}

#[test]
fn full_config_is_accepted() {
    let json = format!(
        r#"{{
        "realm": "pets",
        "sources": [{{"header":"X-Key"}}, {{"authorization":"ApiKey"}}, {{"query":"api_key"}}, {{"cookie":"k"}}],
        "max_key_length": 128,
        "allow_plaintext_keys": true,
        "consumers": [
          {{"id":"alice","plan":"gold","groups":["partners"],"scopes":["pets:read"],
            "keys":[{{"sha256":"{D_ABC}","not_before":"2026-01-01T00:00:00Z","expires_at":"2027-01-01T00:00:00Z"}},{{"plaintext":"open-sesame"}}]}},
          {{"id":"guest","keys":[]}},
          {{"id":"bob","disabled":true,"keys":[{{"sha256":"{D_EMPTY_B64}"}}]}}
        ],
        "rules": [
          {{"match":{{"path":{{"prefix":"/health"}}}},"skip":true}},
          {{"match":{{"path":{{"prefix":"/admin"}}}},"allow":{{"consumers":["alice"],"groups":["ops"]}}}},
          {{"match":{{"path":{{"prefix":"/public"}}}},"anonymous":"guest"}}
        ],
        "forward": {{"consumer_id_header":"X-Consumer-Id","consumer_plan_header":"x-consumer-plan"}},
        "strip_credential": false,
        "allow_cors_preflight": true
    }}"#
    );
    let c = parse(&json).unwrap();
    assert_eq!(c.sources.len(), 4);
    assert_eq!(
        c.fetch,
        vec!["x-key", "authorization", ":path", "cookie", ":method"]
    );
    assert_eq!(c.sources[0], Source::Header("x-key".into()));
    assert_eq!(c.keys.len(), 3);
    assert_eq!(c.rules.len(), 3);
    assert_eq!(c.consumer_id_header.as_deref(), Some("x-consumer-id"));
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].starts_with("consumers[id=alice].keys[1]: plaintext"));
    let alice = c.keys.get(&kit::digest::sha256(b"abc")).unwrap();
    assert_eq!(
        (alice.consumer, alice.not_before, alice.expires_at),
        (0, Some(1_767_225_600), Some(1_798_761_600))
    );
}

#[test]
fn bad_configs_name_the_field() {
    let key = format!(r#"{{"sha256":"{D_ABC}"}}"#);
    let one = |consumer_extra: &str, top_extra: &str| {
        format!(r#"{{"consumers":[{{"id":"alice","keys":[{key}]{consumer_extra}}}]{top_extra}}}"#)
    };
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "config is empty; expected a JSON object"),
        ("{}".into(), "missing field `consumers`"),
        (
            one("", r#","sourcse":[]"#),
            "sourcse: unknown field `sourcse`",
        ),
        (
            one("", r#","sources":[]"#),
            "sources: at least one key source is needed",
        ),
        (
            one("", r#","sources":[{"header":"x-a"},{"header":"X-A"}]"#),
            "sources[1]: duplicate key source",
        ),
        (
            one("", r#","sources":[{"header":"authorization"}]"#),
            "sources[0].header: use the authorization source for \"authorization\"",
        ),
        (
            one("", r#","sources":[{"header":":path"}]"#),
            "sources[0].header: \":path\" is a pseudo-header",
        ),
        (
            one("", r#","sources":[{"authorization":"Api Key"}]"#),
            "sources[0].authorization: scheme must be a non-empty token",
        ),
        (
            one("", r#","sources":[{"body":"k"}]"#),
            "sources[0]: unknown variant `body`",
        ),
        (
            one("", r#","max_key_length":0"#),
            "max_key_length: must be between 1 and 4096",
        ),
        (
            one("", r#","realm":"a\"b""#),
            "realm: must be 1-256 printable ASCII",
        ),
        (
            r#"{"consumers":[{"id":"","keys":[]}]}"#.into(),
            "consumers[0].id: \"\" must be 1-256 characters",
        ),
        (
            r#"{"consumers":[{"id":"a b","keys":[]}]}"#.into(),
            "consumers[0].id: \"a b\" must be",
        ),
        (
            r#"{"consumers":[{"id":"a"},{"id":"a"}]}"#.into(),
            "consumers[1].id: duplicate consumer id \"a\"",
        ),
        (
            r#"{"consumers":[{"id":"a","keys":[{"sha256":"zz"}]}]}"#.into(),
            "consumers[id=a].keys[0].sha256: not a SHA-256 digest",
        ),
        (
            r#"{"consumers":[{"id":"a","keys":[{"plaintext":"k"}]}]}"#.into(),
            "consumers[id=a].keys[0].plaintext: plaintext keys are refused",
        ),
        (
            r#"{"consumers":[{"id":"a","keys":[{}]}]}"#.into(),
            "consumers[id=a].keys[0]: a key needs sha256",
        ),
        (
            format!(r#"{{"consumers":[{{"id":"a","keys":[{key},{key}]}}]}}"#),
            "consumers[id=a].keys[1]: the same key is already configured at consumers[id=a].keys[0]",
        ),
        (
            format!(
                r#"{{"consumers":[{{"id":"a","keys":[{{"sha256":"{D_ABC}","expires_at":"tomorrow"}}]}}]}}"#
            ),
            "consumers[id=a].keys[0].expires_at: \"tomorrow\" is not an RFC 3339",
        ),
        (
            format!(
                r#"{{"consumers":[{{"id":"a","keys":[{{"sha256":"{D_ABC}","not_before":"2027-01-01T00:00:00Z","expires_at":"2026-01-01T00:00:00Z"}}]}}]}}"#
            ),
            "consumers[id=a].keys[0].expires_at: must be later than not_before",
        ),
        (
            one(r#","scopes":["a b"]"#, ""),
            "consumers[id=alice].scopes[0]: \"a b\" is not a valid OAuth2 scope token",
        ),
        (
            one(r#","keys_":[]"#, ""),
            "consumers[id=alice].keys_: unknown field `keys_`",
        ),
        (
            one("", r#","rules":[{"match":{"path":{"prefix":"x"}}}]"#),
            "rules[0].match.path.prefix: \"x\" must start with '/'",
        ),
        (
            one("", r#","rules":[{"allow":{"consumers":["mallory"]}}]"#),
            "rules[0].allow.consumers[0]: unknown consumer \"mallory\"",
        ),
        (
            one("", r#","rules":[{"allow":{}}]"#),
            "rules[0].allow: allows nobody",
        ),
        (
            one("", r#","rules":[{"anonymous":"nobody"}]"#),
            "rules[0].anonymous: unknown consumer \"nobody\"",
        ),
        (
            format!(
                r#"{{"consumers":[{{"id":"a","keys":[{key}]}},{{"id":"guest","disabled":true}}],"rules":[{{"anonymous":"a"}},{{"match":{{"path":{{"prefix":"/p"}}}},"anonymous":"guest"}}]}}"#
            ),
            "rules[1].anonymous: consumer \"guest\" is disabled; a disabled consumer cannot serve keyless callers",
        ),
        (
            one("", r#","rules":[{"skip":true,"anonymous":"alice"}]"#),
            "rules[0].skip: a skipped route cannot also set allow or anonymous",
        ),
        (
            one("", r#","rules":[{"macth":{}}]"#),
            "rules[0].macth: unknown field `macth`",
        ),
        (
            one("", r#","forward":{"consumer_id_header":"bad header"}"#),
            "forward.consumer_id_header: \"bad header\" is not a valid header name",
        ),
    ];
    for (json, want) in cases {
        let got = parse(&json)
            .err()
            .unwrap_or_else(|| format!("accepted: {json}"));
        assert!(
            got.starts_with(want),
            "config {json}\n got: {got}\nwant: {want}"
        );
    }
}

/// A loosening rule matched by route name alone still needs `:path`: without it the path would
/// read as empty, never ambiguous, and `/public/..%2Fadmin` would get the anonymous pass.
#[test]
fn a_guarded_route_name_rule_fetches_the_path() {
    let c = parse(
        r#"{"sources": [{"header": "x-api-key"}],
            "consumers": [{"id": "guest"}],
            "rules": [{"match": {"route_name": "public"}, "anonymous": "guest"}]}"#,
    )
    .unwrap();
    assert!(c.fetch.iter().any(|h| h == ":path"), "{:?}", c.fetch);
    let strict = parse(
        r#"{"sources": [{"header": "x-api-key"}],
            "consumers": [{"id": "ops", "groups": ["ops"], "keys": []}],
            "rules": [{"match": {"route_name": "admin"}, "allow": {"groups": ["ops"]}}]}"#,
    )
    .unwrap();
    assert!(
        !strict.fetch.iter().any(|h| h == ":path"),
        "{:?}",
        strict.fetch
    );
}

/// Consumers are named by id where the id names one consumer; the index stays where it must
/// (a bad or duplicate id, no id, a rule's `allow.consumers` list of names).
#[test]
fn consumers_are_named_by_id() {
    let ids = consumer_ids(
        br#"{"consumers": [{"id": "alice"}, {"id": "a b"}, {"id": "dup"}, {"id": "dup"}, {}, {"id": 7}]}"#,
    );
    assert_eq!(
        ids,
        [Some("alice".to_string()), None, None, None, None, None]
    );
    let cases = [
        ("consumers[0].keys[1].sha256", "consumers[id=alice].keys[1].sha256"),
        ("consumers[1].id", "consumers[1].id"),
        ("consumers[3].id", "consumers[3].id"),
        ("consumers[9].plan", "consumers[9].plan"),
        ("consumers", "consumers"),
        ("consumers[x]", "consumers[x]"),
        ("consumers[+0]", "consumers[+0]"),
        ("consumers[0", "consumers[0"),
        ("rules[0].allow.consumers[0]", "rules[0].allow.consumers[0]"),
        (
            "consumers[0].keys[1]: the same key is already configured at consumers[0].keys[0]",
            "consumers[id=alice].keys[1]: the same key is already configured at consumers[id=alice].keys[0]",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(name_consumers(text, &ids), want, "{text}");
    }
    assert!(consumer_ids(b"not json").is_empty());
    let huge = format!(
        r#"{{"consumers": [{{"id": "a"}}], "pad": "{}"}}"#,
        " ".repeat(kit::config_error::MAX_CONFIG_BYTES)
    );
    assert!(consumer_ids(huge.as_bytes()).is_empty());
}
