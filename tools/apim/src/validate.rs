//! Offline config validation with the filters' own parsers, so the message is exactly the one
//! Envoy would log when refusing the config.

use kit::config_error::ConfigError;
use std::io::Read as _;
use std::process::ExitCode;

const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// The filters whose configs `apim validate` knows, and the suite module (`apim_suite.wasm`:
/// a section per filter, each checked by that filter's parser, errors under the section name).
pub const FILTERS: [&str; 6] = [
    "api-key-auth",
    "scope-authz",
    "quota",
    "graphql-guard",
    "transform",
    "suite",
];

/// The filter's own parser: its warnings, or the error Envoy would log. `filter` is a crate
/// name (see [`crate::discover::filter_named`] for the other spellings).
pub fn check(filter: &str, bytes: &[u8]) -> Result<Vec<String>, ConfigError> {
    match filter {
        "api-key-auth" => api_key_auth::config::Config::parse(bytes).map(|c| c.warnings),
        "scope-authz" => scope_authz::config::Config::parse(bytes).map(|c| c.warnings),
        "graphql-guard" => graphql_guard::config::Config::parse(bytes).map(|c| c.warnings()),
        "transform" => transform::config::Config::parse(bytes).map(|c| c.warnings()),
        "quota" => quota::config::Config::parse(bytes).map(|c| c.warnings),
        "suite" => apim_suite::validate(bytes),
        other => Err(ConfigError::new("", format!("unknown filter \"{other}\""))),
    }
}

/// [`run`] on a config already read (`apim validate --target`, which checks it first).
pub fn run_bytes(filter: &str, file: &str, bytes: Vec<u8>) -> ExitCode {
    let Some(filter) = crate::discover::filter_named(filter) else {
        eprintln!(
            "unknown filter \"{filter}\"; known: {} (or their module names: api_key_auth, …)",
            FILTERS.join(", ")
        );
        return ExitCode::from(2);
    };
    match check(filter, &bytes) {
        Ok(warnings) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            println!("{file}: valid {filter} config");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{file}: {e}");
            ExitCode::from(1)
        }
    }
}

pub fn read(file: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let res = if file == "-" {
        std::io::stdin()
            .take(MAX_FILE_BYTES)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(MAX_FILE_BYTES).read_to_end(&mut bytes))
    };
    res.map_err(|e| format!("reading {file}: {e}"))?;
    Ok(bytes)
}
