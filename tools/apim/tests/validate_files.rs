//! `apim validate FILE` on the repository's own deployment files (an Envoy bootstrap, an Istio
//! WasmPlugin, an Istio EnvoyFilter, an Envoy Gateway policy) and on broken copies of them:
//! the shipped files pass, and each broken copy is refused with the error at the line and
//! column of the broken field in the copy. Where the break is, is found in the copy's text, so
//! the expectations follow the files when they change.

// Test helpers: a failure here is a failed test.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn apim(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_apim"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A broken copy: `file` with `from` replaced (once) by `to`.
struct Break {
    file: &'static str,
    from: &'static str,
    to: &'static str,
    /// Where the error must point: the first occurrence of this text after the break's start.
    at: &'static str,
    /// What the error line must say after `FILE:LINE:COL: `.
    says: &'static str,
}

const BREAKS: &[Break] = &[
    Break {
        file: "envoy/gateway.yaml",
        from: r#"{"id": "bob", "plan": "silver""#,
        to: r#"{"id": "bob", "plan": "silver", "x": 1"#,
        at: r#""x""#,
        says: "api-key-auth (Wasm plugin api_key_auth): consumers[id=bob].x: unknown field `x`",
    },
    Break {
        file: "envoy/istio/wasmplugin/api-key-auth.yaml",
        from: "- sha256: '0000000000000000000000000000000000000000000000000000000000000002'",
        to: "- sha256: 'not-hex'",
        at: "sha256",
        says: "api-key-auth (WasmPlugin apim-api-key-auth): consumers[id=example-reader].keys[0].sha256: ",
    },
    Break {
        file: "envoy/gateway-api/chain-http.yaml",
        from: "- requests: 100\n",
        to: "- requests: 0\n",
        at: "requests",
        says: "quota (EnvoyExtensionPolicy apim-chain wasm[3]): plans.",
    },
    Break {
        file: "envoy/istio/envoyfilter/gateway/api-key-auth.yaml",
        from: "\"exact\": \"/health\"\n",
        to: "\"exact\": \"/health\"\n                          }, \"route_name\": \"health\", \"x\": {\n",
        at: "\"route_name\"",
        says: "api-key-auth (EnvoyFilter apim-api-key-auth: Wasm plugin api_key_auth): rules[0].match.route_name: Istio generates route names",
    },
];

/// 1-based line and column of `needle` at or after byte `from` of `text`.
fn line_col(text: &str, from: usize, needle: &str) -> (usize, usize) {
    let at = from + text[from..].find(needle).unwrap();
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = at - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[test]
fn shipped_deployment_files_pass() {
    for b in BREAKS {
        let (code, stdout, stderr) = apim(&["validate", b.file]);
        assert_eq!(code, Some(0), "{}: {stdout}{stderr}", b.file);
        assert!(
            stdout.contains(" refused") && stdout.contains(", 0 refused"),
            "{stdout}"
        );
    }
}

#[test]
fn broken_copies_are_refused_at_the_line_and_column_of_the_field() {
    let dir = std::env::temp_dir().join(format!("apim-validate-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, b) in BREAKS.iter().enumerate() {
        let text = std::fs::read_to_string(repo().join(b.file)).unwrap();
        let start = text
            .find(b.from)
            .unwrap_or_else(|| panic!("{}: no {:?}", b.file, b.from));
        let broken = text.replacen(b.from, b.to, 1);
        let copy = dir.join(format!("{i}.yaml"));
        std::fs::write(&copy, &broken).unwrap();
        let (line, col) = line_col(&broken, start, b.at);
        let copy = copy.to_str().unwrap();
        let (code, stdout, stderr) = apim(&["validate", copy]);
        assert_eq!(code, Some(1), "{}: {stdout}{stderr}", b.file);
        let want = format!("{copy}:{line}:{col}: {}", b.says);
        assert!(
            stderr.lines().any(|l| l.starts_with(&want)),
            "{}: want a line starting {want:?} in:\n{stderr}",
            b.file
        );
        // Named by module instead of crate, the filter's configs alone are checked.
        let module = b.says.split(' ').next().unwrap().replace('-', "_");
        let (code, _, stderr) = apim(&["validate", &module, copy]);
        assert_eq!(code, Some(1), "{module}: {stderr}");
        assert!(stderr.contains(&want), "{module}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let cases: &[(&[&str], i32, &str)] = &[
        (&["key", "--help"], 0, "Usage: apim key"),
        (&["validate", "--help"], 0, "[FILTER] FILE"),
        (&["key", "new", "--plna", "gold"], 2, "--plna"),
        (&["key", "new", "--plan", "gold"], 2, "--consumer"),
        (
            &["validate", "--target", "kong", "quota", "x.json"],
            2,
            "kong",
        ),
        (
            &["validate", "nope", "envoy/gateway.yaml"],
            2,
            "unknown filter \"nope\"",
        ),
        (&["validate", "quota"], 2, "FILE is missing"),
    ];
    for (args, want, says) in cases {
        let (code, stdout, stderr) = apim(args);
        assert_eq!(code, Some(*want), "{args:?}: {stdout}{stderr}");
        assert!(
            format!("{stdout}{stderr}").contains(says),
            "{args:?}: {stdout}{stderr}"
        );
    }
}

#[test]
fn key_new_prints_the_key_once_and_the_consumer_entry() {
    let (code, stdout, stderr) = apim(&[
        "key",
        "new",
        "--consumer",
        "alice",
        "--plan",
        "gold",
        "--scopes",
        "pets:read pets:write",
        "--groups",
        "partners",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let mut lines = stdout.lines();
    let key = lines.next().unwrap().strip_prefix("key:").unwrap().trim();
    let entry = lines
        .next()
        .unwrap()
        .strip_prefix("consumer:")
        .unwrap()
        .trim();
    assert_eq!(
        stdout.matches(key).count(),
        1,
        "the key is printed once: {stdout}"
    );
    let (_, digest, _) = apim(&["key", "hash", key]);
    let digest: serde_json::Value = serde_json::from_str(digest.trim()).unwrap();
    let entry: serde_json::Value = serde_json::from_str(entry).unwrap();
    assert_eq!(
        entry,
        serde_json::json!({"id": "alice", "plan": "gold", "groups": ["partners"],
            "scopes": ["pets:read", "pets:write"], "keys": [digest]})
    );
    // A scope api-key-auth would refuse is refused here, naming the option.
    let (code, _, stderr) = apim(&["key", "new", "--consumer", "a", "--scopes", "a\"b"]);
    assert_eq!(code, Some(2));
    assert!(stderr.starts_with("--scopes: "), "{stderr}");
}
