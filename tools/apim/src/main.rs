//! `apim`: the suite's helper CLI.
//!
//! ```text
//! apim key new [--consumer ID]     a new API key (32 random bytes, base64url) and its config entry
//! apim key hash [KEY]              the config entry for an existing key (KEY or stdin)
//! apim validate [--target T] FILTER FILE
//!                                  check a filter's JSON config (FILE or - for stdin) with the
//!                                  filter's own types; prints the same errors Envoy would log.
//!                                  --target envoy|istio|gateway-api adds what the deployment
//!                                  needs (no `route_name` rules in Istio or Envoy Gateway,
//!                                  key digests only)
//! apim token mint [OPTIONS]        a demo JWT (RS256) signed with the demo issuer's key
//! apim oci build MODULE DIR [TAG]   an OCI image (Wasm compat variant) of MODULE in DIR and DIR.tar
//! apim oci verify DIR              check an image-layout folder's digests, sizes and layer
//! apim manifests sync|check [ROOT] rewrite / check the marked sha256 lines of the deployment
//!                                  manifests (envoy/istio, envoy/gateway-api) from the build;
//!                                  check also validates every filter config in them for its
//!                                  target (istio, gateway-api)
//! ```
//! Exit codes: 0 ok, 1 invalid config, 2 usage or I/O error.

mod keys;
mod manifests;
mod oci;
mod token;
mod validate;
mod validate_target;

use std::process::ExitCode;

const USAGE: &str = "usage:
  apim key new [--consumer ID]   generate an API key and print its config entry
  apim key hash [KEY]            print the config entry for KEY (or the key read from stdin)
  apim validate [--target envoy|istio|gateway-api] FILTER FILE
                                 validate a filter config (FILE may be - for stdin); with
                                 --target istio or gateway-api, `route_name` rules (route names
                                 are generated there) and plaintext keys are refused
  apim token mint [--scope \"a b\"] [--sub ID] [--aud AUD] [--iss ISS] [--ttl SECONDS]
                  [--kid KID] [--key PEM_FILE]
                                 mint a demo JWT (RS256); default key: the DEMO-ONLY issuer key
                                 of envoy/examples/demo-issuer/
  apim oci build MODULE.wasm DIR [TAG]   OCI image (Wasm compat variant) in DIR and DIR.tar
  apim oci verify DIR            verify an OCI image-layout folder
  apim manifests sync [ROOT]     rewrite the marked sha256 lines of envoy/istio and
                                 envoy/gateway-api from the built modules and images
  apim manifests check [ROOT]    list stale marked sha256 lines and filter configs refused
                                 for their target (exit 1 if any)
filters: api-key-auth, scope-authz, quota, graphql-guard, transform";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["key", "new"] => keys::new(None),
        ["key", "new", "--consumer", id] => keys::new(Some(id)),
        ["key", "hash"] => keys::hash_stdin(),
        ["key", "hash", key] => Ok(keys::hash(key)),
        ["validate", filter, file] => return validate::run(filter, file),
        ["validate", "--target", target, filter, file] => {
            return validate_target::run(target, filter, file)
        }
        ["token", "mint", rest @ ..] => token::mint(rest),
        ["oci", "build", module, dir] => oci_build(module, dir, "latest"),
        ["oci", "build", module, dir, tag] => oci_build(module, dir, tag),
        ["oci", "verify", dir] => oci::verify(std::path::Path::new(dir))
            .map(|sha| format!("{dir}: valid image; module sha256 {sha}")),
        ["manifests", "sync"] => manifests::sync(None),
        ["manifests", "sync", root] => manifests::sync(Some(root)),
        ["manifests", "check"] => return manifests::check(None),
        ["manifests", "check", root] => return manifests::check(Some(root)),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// Builds, writes and re-verifies one image; prints what the manifests need.
fn oci_build(module: &str, dir: &str, tag: &str) -> Result<String, String> {
    let bytes = std::fs::read(module).map_err(|e| format!("{module}: {e}"))?;
    let image = oci::build(&bytes, tag)?;
    let dir = std::path::Path::new(dir);
    let tarball = image.write(dir)?;
    oci::verify(dir)?;
    Ok(format!(
        "{}: image {} (tarball {}), module sha256 {}",
        dir.display(),
        image.manifest_digest,
        tarball.display(),
        image.module_sha256
    ))
}
