//! The shipped files rendered from a product file: `demo/apim.yaml` is the source of
//! `envoy/gateway.yaml`. `apim manifests sync` rewrites them, `apim manifests check` (and
//! `make test`) fail while one differs from what `apim render` produces.

use std::path::Path;

use super::RenderTarget;

/// (product file, target, the file `apim render` writes from it), from the repository root.
/// The Kubernetes renders of the demo stay under demo/: they carry the demo's key digests
/// (whose keys the README prints), which no deploy manifest under envoy/ may.
pub const RENDERED: &[(&str, RenderTarget, &str)] = &[
    ("demo/apim.yaml", RenderTarget::Envoy, "envoy/gateway.yaml"),
    (
        "demo/apim.yaml",
        RenderTarget::Istio,
        "demo/rendered/istio.yaml",
    ),
    (
        "demo/apim.yaml",
        RenderTarget::GatewayApi,
        "demo/rendered/gateway-api.yaml",
    ),
];

/// The rendered files that differ from their product file's render; with `write`, rewritten.
pub fn scan(root: &Path, write: bool) -> Result<Vec<String>, String> {
    let mut stale = Vec::new();
    for (source, target, file) in RENDERED {
        let text = crate::manifests::read(&root.join(source))?;
        let want = super::render_text(&text, source, *target, root)?;
        let path = root.join(file);
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            if write {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                std::fs::write(&path, want).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            stale.push((*file).to_string());
        }
    }
    Ok(stale)
}
