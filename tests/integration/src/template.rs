//! Config templates: the tests and the bench write Envoy configs with placeholders so they never
//! hard-code ports or absolute paths.
//!
//! - `{{UPSTREAM_PORT}}`: the shared echo upstream's port (started only if the template uses it)
//! - `{{RATELIMIT_GRPC_PORT}}`: the gRPC port of the process's shared envoyproxy/ratelimit (and
//!   Redis), started only if the template uses it (see [`crate::ratelimit::shared`])
//! - `{{REPO}}`: the absolute repository root
//! - `{{WASM:<name>}}`: the absolute path of `<name>.wasm` (see [`crate::try_wasm_module`])
//! - `{{NATIVE:<name>}}`: the native module `<name>`, once `lib<name>.so` is known to be built
//!   (see [`crate::try_native_module`])

use crate::paths::{repo_root, try_native_module, try_wasm_module};
use crate::upstream::upstream_port;

const WASM_OPEN: &str = "{{WASM:";
const NATIVE_OPEN: &str = "{{NATIVE:";

/// Substitutes every placeholder; an unknown upper-case `{{...}}` or a missing module is an
/// error, so a typo never reaches Envoy as a literal string. Lower-case `{{...}}` are the
/// filters' own templates (transform's `{{path.id}}`, `{{claim.sub}}`) and are left alone.
pub fn render(template: &str) -> Result<String, String> {
    let mut out = template.to_owned();
    if out.contains("{{UPSTREAM_PORT}}") {
        out = out.replace("{{UPSTREAM_PORT}}", &upstream_port().to_string());
    }
    if out.contains("{{RATELIMIT_GRPC_PORT}}") {
        let port = crate::ratelimit::shared(None)?;
        out = out.replace("{{RATELIMIT_GRPC_PORT}}", &port.to_string());
    }
    out = out.replace("{{REPO}}", &repo_root().to_string_lossy());
    while let Some(start) = out.find(WASM_OPEN) {
        let rest = &out[start + WASM_OPEN.len()..];
        let Some(len) = rest.find("}}") else {
            return Err(format!("unterminated {WASM_OPEN} placeholder"));
        };
        let name = &rest[..len];
        let path = try_wasm_module(name)?;
        let end = start + WASM_OPEN.len() + len + 2;
        out.replace_range(start..end, &path.to_string_lossy());
    }
    while let Some(start) = out.find(NATIVE_OPEN) {
        let rest = &out[start + NATIVE_OPEN.len()..];
        let Some(len) = rest.find("}}") else {
            return Err(format!("unterminated {NATIVE_OPEN} placeholder"));
        };
        let name = try_native_module(&rest[..len])?;
        let end = start + NATIVE_OPEN.len() + len + 2;
        out.replace_range(start..end, &name);
    }
    let ours = |at: usize| {
        out.get(at + 2..)
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c.is_ascii_uppercase())
    };
    if let Some((start, _)) = out.match_indices("{{").find(|(i, _)| ours(*i)) {
        let snippet: String = out[start..].chars().take(40).collect();
        return Err(format!("unknown placeholder in config template: {snippet}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_repo() {
        let out = render("path: {{REPO}}/x").unwrap();
        assert_eq!(out, format!("path: {}/x", repo_root().display()));
    }

    #[test]
    fn rejects_unknown_placeholder() {
        let err = render("a: {{NOPE}}").unwrap_err();
        assert!(err.contains("{{NOPE}}"), "{err}");
    }

    #[test]
    fn leaves_filter_templates_alone() {
        let out = render(r#"v: "{{path.id}}/{{claim.sub}}""#).unwrap();
        assert_eq!(out, r#"v: "{{path.id}}/{{claim.sub}}""#);
    }

    #[test]
    fn missing_module_says_make_build() {
        let err = render("f: {{WASM:does_not_exist}}").unwrap_err();
        assert!(err.contains("make build"), "{err}");
    }

    #[test]
    fn missing_native_module_says_make_build() {
        let err = render("f: {{NATIVE:does_not_exist}}").unwrap_err();
        assert!(err.contains("libdoes_not_exist.so"), "{err}");
        assert!(err.contains("make build"), "{err}");
    }

    #[test]
    fn rejects_unterminated_wasm() {
        assert!(render("f: {{WASM:x").is_err());
    }
}
