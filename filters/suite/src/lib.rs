//! The whole suite in one proxy-wasm module, `apim_suite.wasm`.
//!
//! It runs any subset of the five filters' stages in the suite's order (api-key-auth →
//! scope-authz → graphql-guard → quota → transform, the order of `envoy/gateway.yaml`) in one
//! VM, configured by one JSON object with a section per filter whose value is exactly that
//! filter's own module config (`{"api_key_auth": {…}, "quota": {…}}`): a config moves between
//! the two forms unchanged and answers the same. Within a request the stages share one
//! `kit::stage::RequestHost`: the request headers are read in one host call, and the identity,
//! claims and cost one stage publishes are read back by the next from memory (they are still
//! published as filter state, for access logs and other filters). See `kit::stage` for how
//! the stages are sequenced, and README.md for the config.

use kit::config_error::ConfigError;
use kit::stage::StageSpec;

/// The stages, in the order they run.
pub const SPECS: [StageSpec; 5] = [
    api_key_auth::stage::SPEC,
    scope_authz::stage::SPEC,
    graphql_guard::stage::SPEC,
    quota::stage::SPEC,
    transform::stage::SPEC,
];

/// Validates a suite config as the module would (each section with its filter's own rules;
/// errors name the section: `quota.plans.gold.limits[0].per: …`), without loading it.
pub fn validate(bytes: &[u8]) -> Result<Vec<String>, ConfigError> {
    let stages = kit::stage::parse_config(&SPECS, bytes)?;
    Ok(stages
        .iter()
        .flat_map(|(index, stage)| {
            let name = SPECS.get(*index).map_or("suite", |s| s.name);
            stage
                .warnings()
                .into_iter()
                .map(move |w| format!("{name}: {w}"))
        })
        .collect())
}

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod filter;

#[cfg(test)]
mod tests;
