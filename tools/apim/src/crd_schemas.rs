//! `apim crd-schemas OUT CRD.yaml…`: the JSON Schemas kubeconform validates manifests with,
//! taken from the CRDs' own OpenAPI schemas (Istio, Envoy Gateway and Gateway API publish their
//! CRD YAML in their Go modules; `make setup-crds` downloads pinned releases).
//!
//! One file per CRD version, `OUT/<group>/<kind, lower case>_<version>.json`, which kubeconform
//! finds with `-schema-location 'OUT/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json'`
//! (the group keeps Istio's `Gateway` apart from Gateway API's). Two changes to each schema,
//! because the API server is stricter than the schema as written:
//! - an object with declared `properties` gets `additionalProperties: false` (the API server
//!   prunes or refuses unknown fields; a misspelt field must fail here, not vanish there),
//!   unless it is marked `x-kubernetes-preserve-unknown-fields` (free-form: a WasmPlugin's
//!   `pluginConfig`, an EnvoyFilter's `patch.value`);
//! - the root declares `apiVersion`, `kind` and `metadata` when it does not (Istio's declare only
//!   `spec` and `status`), so the first change does not refuse them.
//!
//! CEL rules (`x-kubernetes-validations`) are not evaluated: a JSON Schema validator has no CEL.

use serde_json::{json, Map, Value};
use std::path::Path;

/// Closes every object schema with declared properties, but free-form ones.
fn close_objects(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let is_object = map.get("type").and_then(Value::as_str) == Some("object");
            let free_form = map
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true);
            if is_object
                && map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && !free_form
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(close_objects);
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// The schemas of one CRD document: (path under OUT, schema), one per version.
pub fn schemas_of(crd: &Value) -> Result<Vec<(String, Value)>, String> {
    let spec = crd
        .get("spec")
        .ok_or("a CustomResourceDefinition without spec")?;
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .ok_or("spec.group missing")?;
    let kind = spec
        .pointer("/names/kind")
        .and_then(Value::as_str)
        .ok_or("spec.names.kind missing")?
        .to_ascii_lowercase();
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("spec.versions missing")?;
    let mut out = Vec::new();
    for v in versions {
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a version without name")?;
        let Some(schema) = v.pointer("/schema/openAPIV3Schema") else {
            return Err(format!("{kind} {name}: no schema.openAPIV3Schema"));
        };
        let mut schema = schema.clone();
        close_objects(&mut schema);
        if let Some(root) = schema.as_object_mut() {
            let props = root
                .entry("properties")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(props) = props.as_object_mut() {
                props
                    .entry("apiVersion")
                    .or_insert_with(|| json!({"type": "string"}));
                props
                    .entry("kind")
                    .or_insert_with(|| json!({"type": "string"}));
                props
                    .entry("metadata")
                    .or_insert_with(|| json!({"type": "object"}));
            }
        }
        out.push((format!("{group}/{kind}_{name}.json"), schema));
    }
    Ok(out)
}

/// Writes the schemas of every CRD in `files` under `out`; what was written, one per line.
pub fn write(out: &Path, files: &[String]) -> Result<String, String> {
    let mut written = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc)
                .map_err(|e| format!("{file}: not YAML: {e}"))?;
            if value.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
                continue;
            }
            for (rel, schema) in schemas_of(&value).map_err(|e| format!("{file}: {e}"))? {
                let path = out.join(&rel);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                let body = serde_json::to_vec(&schema).map_err(|e| e.to_string())?;
                std::fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))?;
                written.push(rel);
            }
        }
    }
    if written.is_empty() {
        return Err("no CustomResourceDefinition in the files given".to_string());
    }
    written.sort();
    Ok(format!("{} schemas in {}", written.len(), out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "kind": "CustomResourceDefinition",
            "spec": {
                "group": "extensions.istio.io",
                "names": {"kind": "WasmPlugin"},
                "versions": [{"name": "v1alpha1", "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {
                        "type": "object",
                        "properties": {
                            "url": {"type": "string"},
                            "pluginConfig": {"type": "object",
                                             "x-kubernetes-preserve-unknown-fields": true,
                                             "properties": {}},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}}
                        }
                    }}
                }}}]
            }
        })
    }

    #[test]
    fn objects_are_closed_but_free_form_ones_and_the_root_keeps_its_header() {
        let got = schemas_of(&crd()).unwrap();
        let [(path, schema)] = got.as_slice() else {
            panic!("{got:?}")
        };
        assert_eq!(path, "extensions.istio.io/wasmplugin_v1alpha1.json");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["spec"]["additionalProperties"], false);
        assert!(schema["properties"]["spec"]["properties"]["pluginConfig"]
            .get("additionalProperties")
            .is_none());
        assert_eq!(
            schema["properties"]["spec"]["properties"]["labels"]["additionalProperties"],
            json!({"type": "string"}),
            "a declared additionalProperties is kept"
        );
        for key in ["apiVersion", "kind", "metadata"] {
            assert!(schema["properties"].get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn a_crd_without_what_kubeconform_needs_is_refused_by_field() {
        let mut c = crd();
        c["spec"]["versions"][0]["schema"] = json!({});
        assert!(schemas_of(&c).unwrap_err().contains("openAPIV3Schema"));
        let mut c = crd();
        c["spec"].as_object_mut().unwrap().remove("group");
        assert!(schemas_of(&c).unwrap_err().contains("spec.group"));
    }
}
