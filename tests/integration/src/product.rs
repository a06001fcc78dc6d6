//! Product files in the tests: `apim render` run on one, and its bootstrap made a harness
//! template (the demo's fixed ports moved as [`crate::shipped`] moves the shipped gateway's).

use std::process::Command;

/// `apim render FILE --target TARGET` of `product` (written to a scratch file): the rendered
/// text, or a panic with apim's message.
#[allow(clippy::panic)]
pub fn render(product: &str, target: &str) -> String {
    let run = || -> Result<String, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let file = dir.path().join("apim.yaml");
        std::fs::write(&file, product).map_err(|e| e.to_string())?;
        let out = Command::new(crate::apim_bin())
            .arg("render")
            .arg(&file)
            .args(["--target", target])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        String::from_utf8(out.stdout).map_err(|e| e.to_string())
    };
    run().unwrap_or_else(|e| panic!("apim render --target {target}: {e}"))
}

/// A rendered bootstrap as a template for [`crate::Envoy`]: the listener and admin on free
/// ports, the upstream on 10080 the harness's echo upstream.
pub fn template(bootstrap: &str) -> String {
    bootstrap
        .replacen("port_value: 10000", "port_value: 0", 1)
        .replacen("port_value: 9901", "port_value: 0", 1)
        .replacen("port_value: 10080", "port_value: {{UPSTREAM_PORT}}", 1)
}
