//! The shipped files rendered from a product file: `demo/apim.yaml` is the source of
//! `envoy/gateway.yaml`. `apim manifests sync` rewrites them, `apim manifests check` (and
//! `make test`) fail while one differs from what `apim render` produces.

use std::path::Path;

/// (product file, what `apim render --target envoy` writes from it), from the repository root.
pub const RENDERED: &[(&str, &str)] = &[("demo/apim.yaml", "envoy/gateway.yaml")];

/// The rendered files that differ from their product file's render; with `write`, rewritten.
pub fn scan(root: &Path, write: bool) -> Result<Vec<String>, String> {
    let mut stale = Vec::new();
    for (source, target) in RENDERED {
        let text = crate::manifests::read(&root.join(source))?;
        let want = super::render_text(&text, source)?;
        let path = root.join(target);
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            if write {
                std::fs::write(&path, want).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            stale.push((*target).to_string());
        }
    }
    Ok(stale)
}
