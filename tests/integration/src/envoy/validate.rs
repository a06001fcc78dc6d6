//! `envoy --mode validate`: load a config fully (filters, Wasm modules) without serving.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::wait_deadline;
use crate::paths::{envoy_bin, repo_root};

/// Validates a bootstrap with cwd = repo root, as shipped configs name modules by repo-relative
/// paths. The error carries Envoy's output.
pub fn validate_config(path: &Path) -> Result<(), String> {
    // Output goes to a file rather than a pipe: a full pipe could block Envoy forever.
    let out = tempfile::tempfile().map_err(|e| format!("temp file: {e}"))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new(envoy_bin())
        .arg("--mode")
        .arg("validate")
        .arg("-c")
        .arg(path)
        // Info lines would bury the one line that says what is wrong.
        .arg("-l")
        .arg("warn")
        .current_dir(repo_root())
        // Where `DynamicModuleFilter` finds the native modules (`make build` puts them there).
        .env(
            "ENVOY_DYNAMIC_MODULES_SEARCH_PATH",
            crate::paths::native_modules_dir(),
        )
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(|e| e.to_string())?)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", envoy_bin().display()))?;
    let status = wait_deadline(&mut child, Duration::from_secs(60));
    let output = read_all(out);
    match status {
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(format!("{} ({s}):\n{output}", path.display())),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!(
                "{}: validation did not finish in 60 s:\n{output}",
                path.display()
            ))
        }
    }
}

fn read_all(mut file: File) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut bytes = Vec::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}
