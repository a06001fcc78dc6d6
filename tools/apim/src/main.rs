//! `apim`: the suite's helper CLI. `apim --help` lists the commands, `apim <command> --help`
//! explains each; the arguments are declared in [`cli`].
//!
//! ```text
//! apim key new [--consumer ID [--plan P] [--scopes "a b"] [--groups g]]
//!                                  a new API key, printed once, and its config entry (with
//!                                  --consumer, the whole consumer entry for api-key-auth)
//! apim key hash [KEY]              the config entry for an existing key (KEY or stdin)
//! apim validate [--target T] [FILTER] FILE
//!                                  every suite filter config in an Envoy bootstrap, Istio
//!                                  WasmPlugin/EnvoyFilter or Envoy Gateway policy, checked by
//!                                  the filter's own parser and for its deployment, reported as
//!                                  FILE:LINE:COLUMN; or one filter's JSON config (FILE or -)
//! apim check [--strict] apim.yaml the product file: references resolved, risky choices
//!                                  flagged, FILE:LINE:COLUMN; exit 1 on an error
//! apim render apim.yaml --target envoy|istio|gateway-api [-o DIR]
//!                                  the data plane's files from the product file
//! apim keys add|rotate|revoke apim.yaml CONSUMER …
//!                                  a consumer's keys in the product file; a new key printed once
//! apim insights ACCESS.LOG [--since WHEN] [--json] [--html OUT]
//!                                  per consumer, plan and route: requests, refusals by reason,
//!                                  GraphQL cost, quota use, latency; an HTML report over time
//! apim token mint [OPTIONS]        a demo JWT (RS256) signed with the demo issuer's key
//! apim oci build MODULE DIR [TAG]  an OCI image (Wasm compat variant) of MODULE in DIR and DIR.tar
//! apim oci verify DIR              check an image-layout folder's digests, sizes and layer
//! apim manifests sync|check [ROOT] rewrite / check the marked sha256 lines of the deployment
//!                                  manifests and the native examples (twins of the Wasm ones),
//!                                  and (check) validate every filter config in them
//! apim crd-schemas OUT CRD.yaml… JSON Schemas for kubeconform from CRD YAML (unknown fields
//!                                  refused), OUT/<group>/<kind>_<version>.json
//! apim completions SHELL           a completion script (bash, zsh, fish, elvish, powershell)
//! ```
//! Exit codes: 0 ok, 1 invalid config, 2 usage or I/O error.

mod cli;
mod crd_schemas;
mod discover;
mod insights;
mod keys;
mod locate;
mod manifests;
mod native_examples;
mod oci;
mod product;
mod token;
mod validate;
mod validate_file;
mod validate_target;
mod yaml_pos;

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};
use cli::{Cli, Command, KeyCommand, ManifestsCommand, OciCommand, TokenCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Key(KeyCommand::New(args)) => {
            let consumer = args.consumer.map(|id| keys::Consumer {
                id,
                plan: args.plan,
                scopes: cli::words(&args.scopes, &[' ', '\t']),
                groups: cli::words(&args.groups, &[',', ' ', '\t']),
            });
            keys::new(consumer.as_ref())
        }
        Command::Key(KeyCommand::Hash { key: None }) => keys::hash_stdin(),
        Command::Key(KeyCommand::Hash { key: Some(key) }) => Ok(keys::hash(&key)),
        Command::Validate(args) => return validate_cmd(args),
        Command::Check { file, strict } => return product::check_cmd(&file, strict),
        Command::Keys(k) => return keys_cmd(k),
        Command::Insights {
            log,
            since,
            json,
            html,
        } => return insights::run(&log, since.as_deref(), json, html.as_deref()),
        Command::Render { file, target, out } => {
            let target = match target {
                cli::RenderTarget::Envoy => product::RenderTarget::Envoy,
                cli::RenderTarget::Istio => product::RenderTarget::Istio,
                cli::RenderTarget::GatewayApi => product::RenderTarget::GatewayApi,
            };
            return product::render_cmd(&file, target, out.as_deref());
        }
        Command::Token(TokenCommand::Mint(args)) => token::mint(&args),
        Command::Oci(OciCommand::Build { module, dir, tag }) => oci_build(&module, &dir, &tag),
        Command::Oci(OciCommand::Verify { dir }) => oci::verify(std::path::Path::new(&dir))
            .map(|sha| format!("{dir}: valid image; module sha256 {sha}")),
        Command::Manifests(ManifestsCommand::Sync { root }) => manifests::sync(root.as_deref()),
        Command::Manifests(ManifestsCommand::Check { root }) => {
            return manifests::check(root.as_deref())
        }
        Command::CrdSchemas { out, files } => {
            crd_schemas::write(std::path::Path::new(&out), &files)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "apim", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
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

/// `apim validate [--target T] [FILTER] FILE`: a deployment file is searched for the suite's
/// configs ([`validate_file`]); anything else is one filter's config and needs FILTER.
fn validate_cmd(args: cli::ValidateArgs) -> ExitCode {
    let target = args.target.map(|t| match t {
        cli::TargetArg::Envoy => validate_target::Target::Envoy,
        cli::TargetArg::Istio => validate_target::Target::Istio,
        cli::TargetArg::GatewayApi => validate_target::Target::GatewayApi,
    });
    let (filter, file) = match args.args.as_slice() {
        [one] if discover::filter_named(one).is_some() && !std::path::Path::new(one).exists() => {
            eprintln!(
                "apim validate {one}: FILE is missing (apim validate [--target T] [FILTER] FILE)"
            );
            return ExitCode::from(2);
        }
        [file] => (None, file.as_str()),
        [filter, file] => (Some(filter.as_str()), file.as_str()),
        _ => {
            eprintln!("usage: apim validate [--target T] [FILTER] FILE");
            return ExitCode::from(2);
        }
    };
    let only = match filter.map(|f| (f, discover::filter_named(f))) {
        None => None,
        Some((_, Some(known))) => Some(known),
        Some((f, None)) => {
            eprintln!(
                "unknown filter \"{f}\"; known: {} (or their module names: api_key_auth, …)",
                validate::FILTERS.join(", ")
            );
            return ExitCode::from(2);
        }
    };
    let bytes = match validate::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let docs = std::str::from_utf8(&bytes)
        .map_err(|e| e.to_string())
        .and_then(validate_file::documents);
    match (docs, only) {
        (Ok(docs), _) if validate_file::is_deployment_file(&docs) => {
            validate_file::run(target, only, file, &docs)
        }
        (_, Some(filter)) => match target {
            Some(t) => validate_target::run(t, filter, file, bytes),
            None => validate::run_bytes(filter, file, bytes),
        },
        (Err(e), None) => {
            eprintln!("{file}: neither YAML nor JSON: {e}");
            ExitCode::from(1)
        }
        (Ok(_), None) => {
            eprintln!(
                "{file}: not an Envoy bootstrap, Istio resource or Envoy Gateway policy; for one \
                 filter's config name the filter: apim validate FILTER {file}"
            );
            ExitCode::from(2)
        }
    }
}

/// Writes `text` to stdout. A reader that stops early (`apim render … | head`) is not an error:
/// what it did not read is simply not written, where `print!` would panic.
pub fn write_stdout(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// `apim keys add|rotate|revoke FILE CONSUMER …`.
fn keys_cmd(k: cli::KeysCommand) -> ExitCode {
    use product::keys_edit::{run, Change};
    match k {
        cli::KeysCommand::Add {
            file,
            consumer,
            not_before,
            expires_at,
        } => run(
            &file,
            &consumer,
            &Change::Add {
                not_before,
                expires_at,
            },
        ),
        cli::KeysCommand::Rotate {
            file,
            consumer,
            overlap,
        } => match product::keys_edit::duration(&overlap) {
            Ok(overlap_secs) => run(&file, &consumer, &Change::Rotate { overlap_secs }),
            Err(e) => {
                eprintln!("--overlap {e}");
                ExitCode::from(2)
            }
        },
        cli::KeysCommand::Revoke {
            file,
            consumer,
            key,
        } => run(&file, &consumer, &Change::Revoke { digest_prefix: key }),
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
