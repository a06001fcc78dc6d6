//! The native twins of the shipped bootstraps: `envoy/examples/native-<name>.yaml` is
//! `envoy/examples/<name>.yaml`, and `envoy/gateway-native.yaml` the demo's `envoy/gateway.yaml`,
//! with every Wasm filter replaced by the same module as an Envoy dynamic module
//! (`DynamicModuleFilter`) carrying the same JSON. Written by `apim manifests sync`, checked by
//! `apim manifests check`, so the two forms cannot drift apart;
//! `tests/integration/tests/native_examples.rs` runs the examples in both and compares their
//! answers, and the demo's tour runs against the native gateway (`make smoke NATIVE=1`).

use std::path::Path;

/// The demo gateway and its native twin.
pub const GATEWAY: (&str, &str) = ("envoy/gateway.yaml", "envoy/gateway-native.yaml");

/// The Wasm examples that have a native twin (`native-<name>.yaml`).
pub const EXAMPLES: &[&str] = &[
    "api-key-auth",
    "scope-authz",
    "quota",
    "graphql-guard",
    "transform",
    "suite",
];

const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const DYNAMIC_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter";

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The value of `key: value` on `line` (trimmed, unquoted), if the line holds that key.
fn value_of<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.trim_start().strip_prefix(key)?.strip_prefix(':')?;
    Some(rest.trim().trim_matches('"'))
}

/// Every (Wasm bootstrap, its native twin), relative to the repository root.
pub fn pairs() -> Vec<(String, String)> {
    EXAMPLES
        .iter()
        .map(|n| {
            (
                format!("envoy/examples/{n}.yaml"),
                format!("envoy/examples/native-{n}.yaml"),
            )
        })
        .chain(std::iter::once((
            GATEWAY.0.to_string(),
            GATEWAY.1.to_string(),
        )))
        .collect()
}

/// The native twin `twin` (its path, for the header) of the Wasm bootstrap `wasm`, read from
/// `source`.
pub fn twin(wasm: &str, source: &str, twin: &str) -> Result<String, String> {
    let lines: Vec<&str> = wasm.lines().collect();
    let mut out = vec![
        format!("# GENERATED from {source} by `apim manifests sync` (make manifests-sync): edit"),
        "# that file. The same filters and JSON as native Envoy dynamic modules".to_string(),
        "# (target/native-modules/libapim_<filter>.so) loaded by the stock Envoy's".to_string(),
        "# DynamicModuleFilter instead of Wasm VMs (README, \"Which form?\"). Run it from the repo"
            .to_string(),
        "# root with".to_string(),
        "#   make build && ENVOY_DYNAMIC_MODULES_SEARCH_PATH=target/native-modules \\".to_string(),
        format!("#     .venv/bin/envoy -c {twin}"),
        "# The Wasm file's notes follow; its requests get the same answers here.".to_string(),
        "#".to_string(),
    ];
    let mut replaced = 0;
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        if value_of(line, "\"@type\"") != Some(WASM_TYPE) {
            out.push((*line).to_string());
            i += 1;
            continue;
        }
        let indent = indent_of(line);
        // The typed_config's block: every line deeper than `"@type"`'s parent, i.e. from here
        // to the first non-blank line indented less.
        let end = lines
            .iter()
            .enumerate()
            .skip(i + 1)
            .find(|(_, l)| !l.trim().is_empty() && indent_of(l) < indent)
            .map_or(lines.len(), |(at, _)| at);
        let block = lines.get(i + 1..end).unwrap_or_default();
        out.extend(
            dynamic_block(block, indent).map_err(|e| format!("{source} line {}: {e}", i + 1))?,
        );
        replaced += 1;
        i = end;
    }
    if replaced == 0 {
        return Err(format!("{source} has no Wasm filter"));
    }
    let mut text = out.join("\n");
    text.push('\n');
    Ok(text)
}

/// The `DynamicModuleFilter` lines for one Wasm filter's `config:` block.
fn dynamic_block(block: &[&str], indent: usize) -> Result<Vec<String>, String> {
    let find = |key: &str| block.iter().find_map(|l| value_of(l, key));
    let vm_id = find("vm_id").ok_or("no vm_config.vm_id")?;
    let code = block
        .iter()
        .find(|l| l.contains("filename:"))
        .ok_or("no vm_config.code.local.filename")?;
    let stem = code
        .split("filename:")
        .nth(1)
        .and_then(|f| f.split(".wasm").next())
        .and_then(|f| f.rsplit('/').next())
        .ok_or("the module file is not a .wasm")?;
    let module = if stem.starts_with("apim_") {
        stem.to_string()
    } else {
        format!("apim_{stem}")
    };
    // The JSON: the lines under `value: |` in `configuration:`.
    let value_at = block
        .iter()
        .position(|l| l.trim_start() == "value: |")
        .ok_or("no configuration value (`value: |`)")?;
    let value_indent = block.get(value_at).map_or(0, |l| indent_of(l));
    let json: Vec<&str> = block
        .iter()
        .skip(value_at + 1)
        .take_while(|l| l.trim().is_empty() || indent_of(l) > value_indent)
        .copied()
        .collect();
    let pad = " ".repeat(indent);
    let mut out = vec![
        format!("{pad}\"@type\": {DYNAMIC_TYPE}"),
        format!("{pad}# lib{module}.so, found on ENVOY_DYNAMIC_MODULES_SEARCH_PATH; its counters keep"),
        format!("{pad}# the Wasm form's /stats names (wasmcustom.apim.<filter>.<counter>)."),
        format!("{pad}dynamic_module_config: {{ name: {module}, metrics_namespace: wasmcustom }}"),
        format!("{pad}# Like the Wasm vm_id: filters with the same filter_name share their shared data."),
        format!("{pad}filter_name: {vm_id}"),
        format!("{pad}filter_config:"),
        format!("{pad}  \"@type\": type.googleapis.com/google.protobuf.StringValue"),
        format!("{pad}  value: |"),
    ];
    // Re-indented under the shallower `value:` (two levels less deep than in `config:`).
    let shift = value_indent.saturating_sub(indent + 2);
    for l in json {
        out.push(if l.trim().is_empty() {
            String::new()
        } else {
            l.get(shift..).unwrap_or(l).to_string()
        });
    }
    Ok(out)
}

/// Each twin that differs from what its Wasm example makes: (twin path, content it should
/// have). With `write`, they are written.
pub fn scan(root: &Path, write: bool) -> Result<Vec<(String, String)>, String> {
    let mut stale = Vec::new();
    for (source, rel) in pairs() {
        let text = crate::manifests::read(&root.join(&source))?;
        let want = twin(&text, &source, &rel)?;
        let path = root.join(&rel);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
            if write {
                std::fs::write(&path, &want).map_err(|e| format!("{rel}: {e}"))?;
            }
            stale.push((rel, want));
        }
    }
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WASM: &str = r#"# notes
          http_filters:
          - name: apim.quota
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: quota
                vm_config:
                  vm_id: quota_vm
                  code: { local: { filename: target/wasm32-wasip1/release/quota.wasm } }
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: |
                    {
                      "plans": {}
                    }
          - name: envoy.filters.http.router
"#;

    #[test]
    fn a_wasm_filter_becomes_the_same_module_natively() {
        let got = twin(
            WASM,
            "envoy/examples/quota.yaml",
            "envoy/examples/native-quota.yaml",
        )
        .unwrap();
        let body: Vec<&str> = got.lines().skip_while(|l| l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "          http_filters:",
                "          - name: apim.quota",
                "            typed_config:",
                "              \"@type\": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
                "              # libapim_quota.so, found on ENVOY_DYNAMIC_MODULES_SEARCH_PATH; its counters keep",
                "              # the Wasm form's /stats names (wasmcustom.apim.<filter>.<counter>).",
                "              dynamic_module_config: { name: apim_quota, metrics_namespace: wasmcustom }",
                "              # Like the Wasm vm_id: filters with the same filter_name share their shared data.",
                "              filter_name: quota_vm",
                "              filter_config:",
                "                \"@type\": type.googleapis.com/google.protobuf.StringValue",
                "                value: |",
                "                  {",
                "                    \"plans\": {}",
                "                  }",
                "          - name: envoy.filters.http.router",
            ]
        );
        assert!(got.starts_with("# GENERATED from envoy/examples/quota.yaml"));
        assert!(got.contains("-c envoy/examples/native-quota.yaml\n"));
        assert!(
            got.contains("\n# notes\n"),
            "the Wasm example's notes are kept"
        );
    }

    #[test]
    fn the_suite_keeps_its_name_and_a_file_without_wasm_is_refused() {
        let suite = WASM.replace("quota.wasm", "apim_suite.wasm");
        assert!(twin(&suite, "s", "t")
            .unwrap()
            .contains("name: apim_suite,"));
        assert!(twin("static_resources: {}\n", "x", "y").is_err());
        let no_json = WASM.replace("value: |", "value: x");
        assert!(twin(&no_json, "q", "t").unwrap_err().contains("value"));
    }
}
