//! What the native form cannot run yet, refused at load with the field named.
//!
//! One feature needs a host service the native host does not offer: nested dynamic metadata
//! (scope-authz's `metadata` mode reads `jwt_authn`'s payload struct, which the ABI's metadata
//! callbacks cannot reach). A config that uses one is refused
//! like any invalid config — never accepted to silently do nothing. Runs after the config has
//! parsed, so a config with a real error gets that error first.

use kit::config_error::{ConfigError, Field};
use kit::stage::StageSpec;
use serde_json::Value;

const NOT_YET: &str = "not supported in the native form yet";

/// The first feature of `bytes` (a module config, as `kit::stage::parse_config` reads it) the
/// native form cannot run.
pub fn check(specs: &[StageSpec], bytes: &[u8]) -> Result<(), ConfigError> {
    let Ok(doc) = serde_json::from_slice::<Value>(bytes) else {
        // It parsed as the filters' config; anything else is not ours to judge.
        return Ok(());
    };
    if let [spec] = specs {
        return check_section(spec.section, &doc);
    }
    for spec in specs {
        if let Some(section) = doc.get(spec.section) {
            check_section(spec.section, section).map_err(|e| e.under(spec.section))?;
        }
    }
    Ok(())
}

fn check_section(section: &str, config: &Value) -> Result<(), ConfigError> {
    let root = Field::root();
    if section == "scope_authz" && config.get("mode").and_then(Value::as_str) == Some("metadata") {
        return Err(root.key("mode").error(format!(
            "\"metadata\" (jwt_authn's payload from dynamic metadata) is {NOT_YET}; use the Wasm form for it"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kit::denial::Format;

    fn spec(section: &'static str) -> StageSpec {
        StageSpec {
            name: "x",
            section,
            format: Format::Problem,
            counter_names: Vec::new,
            parse: |_| Err(ConfigError::new("", "unused")),
        }
    }

    #[test]
    fn each_unsupported_feature_is_refused_by_field() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("quota", r#"{"plans": {}}"#, None),
            // The global tier's gRPC call is an HTTP/2 stream from the request (`grpc`).
            ("quota", r#"{"global": {"cluster": "rls"}}"#, None),
            ("quota", r#"{"global": null}"#, None),
            ("scope_authz", r#"{"mode": "verify"}"#, None),
            ("scope_authz", r#"{"mode": "metadata"}"#, Some("mode")),
            // A remote JWKS is fetched by root work through the config (`crate::root`).
            (
                "scope_authz",
                r#"{"providers": [{"jwks": {"inline": {}}}, {"jwks": {"remote": {"cluster": "idp"}}}]}"#,
                None,
            ),
            // REST→GraphQL is an HTTP callout from the request: the native form makes it.
            (
                "transform",
                r#"{"rules": [{}, {}, {"graphql": {"cluster": "g"}}]}"#,
                None,
            ),
            ("api_key_auth", r#"{"global": 1}"#, None),
        ];
        for (section, json, want) in cases {
            let got = check(&[spec(section)], json.as_bytes()).err();
            assert_eq!(
                got.as_ref().map(|e| e.path.as_str()),
                *want,
                "{section} {json}"
            );
            if let Some(e) = got {
                assert!(
                    e.message.contains("not supported in the native form yet"),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn a_suite_section_is_named_under_its_section() {
        let specs = [spec("api_key_auth"), spec("scope_authz"), spec("quota")];
        let e = check(
            &specs,
            br#"{"api_key_auth": {}, "scope_authz": {"mode": "metadata"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.path, "scope_authz.mode");
        assert!(check(&specs, br#"{"quota": {"global": {}}}"#).is_ok());
    }
}
