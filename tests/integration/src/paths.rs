//! Where things are: the repo, the Envoy binary, the built Wasm and native modules.

use std::path::{Path, PathBuf};

/// The repository root (two levels above this crate), resolved at compile time so tests work
/// from any working directory.
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("../..");
    // Canonical so the path substituted into configs has no `..` in it.
    root.canonicalize().unwrap_or(root)
}

/// The helper CLI `target/debug/apim`, built (or found up to date) once per test process: a
/// test binary cannot name another crate's binary, and `make test` runs before anything else
/// builds it. Cargo holds no lock on the target dir while tests run, so this nested build does
/// not wait on the outer one.
pub fn apim_bin() -> &'static Path {
    static APIM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    APIM.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let built = std::process::Command::new(cargo)
            .args(["build", "--quiet", "-p", "apim"])
            .current_dir(repo_root())
            .status()
            .is_ok_and(|s| s.success());
        assert!(built, "cargo build -p apim failed");
        repo_root().join("target/debug/apim")
    })
}

/// The Envoy to run: `$ENVOY_BIN`, else the pinned wheel's `<repo>/.venv/bin/envoy`, else `envoy`
/// on PATH.
pub fn envoy_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ENVOY_BIN").filter(|v| !v.is_empty()) {
        return PathBuf::from(bin);
    }
    let venv = repo_root().join(".venv/bin/envoy");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("envoy")
}

/// The built module `<repo>/target/wasm32-wasip1/release/<name>.wasm`, or an error saying how to
/// build it.
pub fn try_wasm_module(name: &str) -> Result<PathBuf, String> {
    let path = repo_root()
        .join("target/wasm32-wasip1/release")
        .join(format!("{name}.wasm"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "Wasm module {} is missing: run `make build` (or `cargo build --release --target wasm32-wasip1`) first",
            path.display()
        ))
    }
}

/// Like [`try_wasm_module`], panicking with the build hint: for tests.
pub fn wasm_module(name: &str) -> PathBuf {
    match try_wasm_module(name) {
        Ok(path) => path,
        Err(msg) => panic!("{msg}"),
    }
}

/// Where `make build` gathers the native dynamic modules (`libapim_<filter>.so`,
/// `libapim_suite.so`): the harness starts every Envoy with `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`
/// set to it.
pub fn native_modules_dir() -> PathBuf {
    repo_root().join("target/native-modules")
}

/// The name Envoy loads the native module `<name>` by (`lib<name>.so` in
/// [`native_modules_dir`]), or an error saying how to build it.
pub fn try_native_module(name: &str) -> Result<String, String> {
    let path = native_modules_dir().join(format!("lib{name}.so"));
    if path.is_file() {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "native module {} is missing: run `make build` first",
            path.display()
        ))
    }
}
