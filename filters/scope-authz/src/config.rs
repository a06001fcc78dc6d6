//! Configuration: the JSON a user writes (raw serde types) and its validated form.
//!
//! Phase one (`kit::config_error::parse_json`) refuses unknown fields and wrong types; phase two
//! ([`Config::from_raw`]) checks meaning (algorithms against key material, issuers, scopes,
//! header names) and precompiles what the request path needs: per-provider allow-lists, inline
//! key sets, route requirements as scope sets, the headers to fetch.

use crate::jwks::KeySet;
use crate::provider::check_provider;
pub use crate::provider::parse_algorithm;
use jsonwebtoken::Algorithm;
use kit::config_error::{
    check_header_name, check_label, check_realm, check_scope, parse_json, ConfigError, Field,
};
use kit::matcher::{RawMatch, RouteMatcher, RuleSet};
use serde::Deserialize;

pub const DEFAULT_REALM: &str = "apim";
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
pub const MAX_TOKEN_BYTES_LIMIT: usize = 64 * 1024;
pub const DEFAULT_LEEWAY_SECONDS: u64 = 60;
pub const MAX_LEEWAY_SECONDS: u64 = 600;
pub const DEFAULT_CACHE_ENTRIES: usize = 1024;
pub const MAX_CACHE_ENTRIES: usize = 100_000;
pub const MAX_PROVIDERS: usize = 32;
pub const MAX_NAME_LENGTH: usize = 256;
pub const MAX_SCOPES_PER_RULE: usize = 64;
pub const DEFAULT_JWT_AUTHN_NAMESPACE: &str = "envoy.filters.http.jwt_authn";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Where a token may be presented, tried in order.
    #[serde(default = "default_sources")]
    pub sources: Vec<RawSource>,
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    /// A token without `kid` is tried against at most this many keys of its issuer (those
    /// accepting its algorithm, in key-set order); beyond, refused (`denied.kidless_capped`).
    #[serde(default = "default_max_kidless_keys")]
    pub max_kidless_keys: usize,
    #[serde(default)]
    pub mode: RawMode,
    /// Mode `metadata`: where Envoy's `jwt_authn` put the verified payload.
    #[serde(default)]
    pub metadata: Option<RawMetadata>,
    #[serde(default)]
    pub providers: Vec<RawProvider>,
    /// Accept the API-key consumer published by `api-key-auth` (its scopes) when no token is sent.
    #[serde(default = "yes")]
    pub consumer_scopes: bool,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// What a request that matches no rule needs; default: a valid token (or consumer).
    #[serde(default)]
    pub default_require: Option<RawRequire>,
    /// Claims forwarded upstream as headers (client copies are removed first).
    #[serde(default)]
    pub forward_claims: Vec<RawForward>,
    /// Publish `sub` and the scopes as the `apim_consumer` identity.
    #[serde(default = "yes")]
    pub publish_identity: bool,
    /// Publish the verified token's claims (a JSON object) as the `apim_claims` filter state,
    /// for transform's `{{claim.*}}` templates. Off by default: it costs a host call.
    #[serde(default)]
    pub publish_claims: bool,
    #[serde(default)]
    pub allow_cors_preflight: bool,
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
    /// Remove the token from where it was found (`Authorization` bearer credentials, the token
    /// header, the query parameter) before forwarding; default `true`, as api-key-auth's. Only
    /// in mode `verify` (in mode `metadata` it is `jwt_authn`'s `forward` that decides).
    #[serde(default)]
    pub strip_credential: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawMode {
    /// Verify tokens here (signature, claims).
    #[default]
    Verify,
    /// Trust the payload Envoy's `jwt_authn` filter verified (dynamic metadata).
    Metadata,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetadata {
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// `payload_in_metadata` of the `jwt_authn` provider.
    pub payload_key: String,
}

/// Where a token may be presented.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawSource {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// A request header holding the bare token.
    Header(String),
    /// A query parameter (RFC 6750 §2.3; discouraged, off unless configured).
    Query(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    /// Exact `iss`; selects the provider for a token.
    pub issuer: String,
    /// Accepted `aud` values (any of); empty: `aud` is not checked.
    #[serde(default)]
    pub audiences: Vec<String>,
    pub algorithms: Vec<String>,
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Claims that must be present (besides `exp`, always required).
    #[serde(default)]
    pub required_claims: Vec<String>,
    /// Dotted path of a claim holding scopes (string, space-delimited, or array); default:
    /// `scope`, then `scp`.
    #[serde(default)]
    pub scope_claim: Option<String>,
    #[serde(default)]
    pub jwks: Option<RawJwks>,
    /// HMAC secret, base64url; used only for HS* and only with `allow_hmac`.
    #[serde(default)]
    pub hmac_secret: Option<String>,
    #[serde(default)]
    pub allow_hmac: bool,
    /// Dotted path of a claim naming the caller's plan (for quota and graphql-guard), used
    /// only when no earlier filter (api-key-auth) set a plan.
    #[serde(default)]
    pub plan_claim: Option<String>,
    /// The plan of every caller this issuer vouches for (when `plan_claim` is absent from
    /// the token or not configured); again only when no earlier filter set one.
    #[serde(default)]
    pub plan: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawJwks {
    /// A JWKS document, as JSON.
    Inline(serde_json::Value),
    Remote(RawRemote),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemote {
    /// Envoy cluster that serves the JWKS.
    pub cluster: String,
    pub path: String,
    /// `:authority` of the fetch; default: the cluster name.
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default = "default_refresh")]
    pub refresh_seconds: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Least time between fetches triggered by an unknown `kid` or a failure.
    #[serde(default = "default_min_refetch")]
    pub min_refetch_seconds: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(rename = "match", default)]
    pub matcher: RawMatch,
    /// Let the request through without looking for a token.
    #[serde(default)]
    pub skip: bool,
    /// Scopes needed; absent: a valid token (or consumer) is enough.
    #[serde(default)]
    pub require: Option<RawRequire>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequire {
    #[serde(default)]
    pub all_of: Vec<String>,
    #[serde(default)]
    pub any_of: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForward {
    /// Dotted claim path (`sub`, `tenant.id`).
    pub claim: String,
    pub header: String,
}

fn default_realm() -> String {
    DEFAULT_REALM.to_string()
}
fn default_sources() -> Vec<RawSource> {
    vec![RawSource::Bearer]
}
fn default_max_token_bytes() -> usize {
    DEFAULT_MAX_TOKEN_BYTES
}
/// Default of `max_kidless_keys`.
pub const DEFAULT_MAX_KIDLESS_KEYS: usize = 8;
fn default_max_kidless_keys() -> usize {
    DEFAULT_MAX_KIDLESS_KEYS
}
fn default_leeway() -> u64 {
    DEFAULT_LEEWAY_SECONDS
}
fn default_refresh() -> u64 {
    300
}
fn default_timeout_ms() -> u64 {
    2000
}
fn default_min_refetch() -> u64 {
    10
}
fn default_cache_entries() -> usize {
    DEFAULT_CACHE_ENTRIES
}
fn default_namespace() -> String {
    DEFAULT_JWT_AUTHN_NAMESPACE.to_string()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Bearer,
    Header(String),
    Query(String),
}

#[derive(Debug, Clone)]
pub struct Remote {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub refresh_seconds: u64,
    pub timeout_ms: u64,
    pub min_refetch_seconds: u64,
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    pub leeway: u64,
    pub required_claims: Vec<String>,
    pub scope_claim: Option<Vec<String>>,
    /// Keys known at load: an inline JWKS (and the HMAC secret).
    pub inline_keys: Option<KeySet>,
    pub remote: Option<Remote>,
    pub plan_claim: Option<Vec<String>>,
    pub plan: Option<String>,
}

/// What a route needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirement {
    pub all_of: Vec<String>,
    pub any_of: Vec<String>,
}

impl Requirement {
    /// Exact scope matching: `have` holds whole scope tokens, never substrings.
    pub fn satisfied_by<S: AsRef<str>>(&self, have: &[S]) -> bool {
        let has = |s: &String| have.iter().any(|h| h.as_ref() == s);
        self.all_of.iter().all(has) && (self.any_of.is_empty() || self.any_of.iter().any(has))
    }

    /// Whether every scope set that satisfies `self` also satisfies `other` (`self` is at
    /// least as strict), judged from the lists alone.
    pub fn implies(&self, other: &Requirement) -> bool {
        // A one-scope `any_of` is that scope required.
        let needs = |s: &String| {
            self.all_of.contains(s) || (self.any_of.len() == 1 && self.any_of.contains(s))
        };
        let all = other.all_of.iter().all(needs);
        let any = other.any_of.is_empty()
            || other.any_of.iter().any(needs)
            || (!self.any_of.is_empty() && self.any_of.iter().all(|s| other.any_of.contains(s)));
        all && any
    }

    /// The RFC 6750 `scope` attribute: every scope that would satisfy the route.
    pub fn scope_hint(&self) -> String {
        let mut out: Vec<&str> = self.all_of.iter().map(String::as_str).collect();
        out.extend(self.any_of.iter().map(String::as_str));
        out.join(" ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Skip,
    Require(Requirement),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub claim: Vec<String>,
    pub header: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub namespace: String,
    pub payload_key: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub realm: String,
    pub sources: Vec<Source>,
    pub max_token_bytes: usize,
    pub max_kidless_keys: usize,
    /// `Some` in mode `metadata`.
    pub metadata: Option<Metadata>,
    pub providers: Vec<Provider>,
    pub consumer_scopes: bool,
    pub rules: RuleSet<Rule>,
    pub default_rule: Rule,
    pub forward: Vec<Forward>,
    pub publish_identity: bool,
    pub publish_claims: bool,
    pub allow_cors_preflight: bool,
    pub cache_entries: usize,
    /// Remove the verified token from the request before forwarding it.
    pub strip_credential: bool,
    /// Request headers every request needs fetched.
    pub fetch: Vec<String>,
    /// Accepted but probably not what was meant (logged at load, printed by `apim validate`).
    pub warnings: Vec<String>,
}

impl Config {
    /// Both phases, from the bytes Envoy hands to `on_configure`.
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::from_raw(parse_json::<RawConfig>(bytes)?)
    }

    pub fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let root = Field::root();
        let realm = &raw.realm;
        check_realm(realm, &root.key("realm"))?;
        if raw.max_token_bytes < 64 || raw.max_token_bytes > MAX_TOKEN_BYTES_LIMIT {
            return Err(root
                .key("max_token_bytes")
                .error(format!("must be between 64 and {MAX_TOKEN_BYTES_LIMIT}")));
        }
        if raw.max_kidless_keys == 0 || raw.max_kidless_keys > crate::jwks::MAX_KEYS + 1 {
            return Err(root.key("max_kidless_keys").error(format!(
                "must be between 1 and {}",
                crate::jwks::MAX_KEYS + 1
            )));
        }
        if raw.cache_entries > MAX_CACHE_ENTRIES {
            return Err(root
                .key("cache_entries")
                .error(format!("must be at most {MAX_CACHE_ENTRIES}")));
        }
        let sources = check_sources(&raw.sources, &root.key("sources"))?;
        let metadata = match (raw.mode, &raw.metadata) {
            (RawMode::Verify, None) => None,
            (RawMode::Verify, Some(_)) => {
                return Err(root
                    .key("metadata")
                    .error("only used with mode \"metadata\""))
            }
            (RawMode::Metadata, None) => {
                return Err(root
                    .key("metadata")
                    .error("mode \"metadata\" needs metadata.payload_key"))
            }
            (RawMode::Metadata, Some(m)) => {
                let f = root.key("metadata");
                check_label(&m.namespace, &f.key("namespace"))?;
                check_label(&m.payload_key, &f.key("payload_key"))?;
                if !raw.providers.is_empty() {
                    return Err(root
                        .key("providers")
                        .error("mode \"metadata\" verifies nothing: remove the providers"));
                }
                Some(Metadata {
                    namespace: m.namespace.clone(),
                    payload_key: m.payload_key.clone(),
                })
            }
        };
        if metadata.is_none() && raw.providers.is_empty() {
            return Err(root
                .key("providers")
                .error("at least one provider is needed"));
        }
        if raw.providers.len() > MAX_PROVIDERS {
            return Err(root
                .key("providers")
                .error(format!("more than {MAX_PROVIDERS} providers")));
        }
        let mut providers: Vec<Provider> = Vec::with_capacity(raw.providers.len());
        for (i, p) in raw.providers.iter().enumerate() {
            let f = root.key("providers").index(i);
            let provider = check_provider(p, &f)?;
            if providers.iter().any(|q| q.name == provider.name) {
                return Err(f
                    .key("name")
                    .error(format!("duplicate provider name \"{}\"", provider.name)));
            }
            if providers.iter().any(|q| q.issuer == provider.issuer) {
                return Err(f.key("issuer").error(format!(
                    "issuer \"{}\" is already configured",
                    provider.issuer
                )));
            }
            providers.push(provider);
        }
        let default_require = match &raw.default_require {
            None => Requirement::default(),
            Some(r) => check_require(r, &root.key("default_require"))?,
        };
        let rules = build_rules(&raw.rules, &root.key("rules"), &default_require)?;
        let default_rule = Rule::Require(default_require);
        let strip_credential = match (metadata.is_some(), raw.strip_credential) {
            (true, Some(_)) => {
                return Err(root.key("strip_credential").error(
                    "not used in mode \"metadata\" (jwt_authn's `forward` decides whether the token is forwarded)",
                ))
            }
            (_, s) => s.unwrap_or(true),
        };
        let mut warnings = Vec::new();
        for (i, (p, raw_p)) in providers.iter().zip(&raw.providers).enumerate() {
            if raw_p.audiences.is_empty() {
                warnings.push(format!(
                    "providers[{i}].audiences: empty, so provider \"{}\" accepts a token issued for any audience (aud is not checked); list this API's audience",
                    p.name
                ));
            }
        }
        let mut forward = Vec::with_capacity(raw.forward_claims.len());
        for (i, fw) in raw.forward_claims.iter().enumerate() {
            let f = root.key("forward_claims").index(i);
            let header = check_header_name(&f.key("header"), &fw.header)?;
            if matches!(header.as_str(), "authorization" | "cookie" | "host") {
                return Err(f
                    .key("header")
                    .error(format!("\"{header}\" cannot carry a claim")));
            }
            forward.push(Forward {
                claim: claim_path(&fw.claim, &f.key("claim"))?,
                header,
            });
        }
        let fetch = headers_to_fetch(&sources, &rules, raw.allow_cors_preflight);
        Ok(Self {
            realm: raw.realm,
            sources,
            max_token_bytes: raw.max_token_bytes,
            max_kidless_keys: raw.max_kidless_keys,
            metadata,
            providers,
            consumer_scopes: raw.consumer_scopes,
            rules,
            default_rule,
            forward,
            publish_identity: raw.publish_identity,
            publish_claims: raw.publish_claims,
            allow_cors_preflight: raw.allow_cors_preflight,
            cache_entries: raw.cache_entries,
            strip_credential,
            fetch,
            warnings,
        })
    }

    /// Providers whose keys come from a remote JWKS, by index.
    pub fn remote_providers(&self) -> impl Iterator<Item = (usize, &Remote)> {
        self.providers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.remote.as_ref().map(|r| (i, r)))
    }
}

/// The preflight's own headers, fetched only once `:method` says OPTIONS.
/// What a CORS preflight is judged on (kit: origin, the requested method, no body, no
/// method override).
pub const CORS_HEADERS: [&str; 7] = kit::request::PREFLIGHT_HEADERS;

fn headers_to_fetch(sources: &[Source], rules: &RuleSet<Rule>, cors: bool) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: &str| {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    };
    for s in sources {
        match s {
            Source::Bearer => add("authorization"),
            Source::Header(h) => add(h),
            Source::Query(_) => add(":path"),
        }
    }
    for n in rules.needed_headers() {
        add(n);
    }
    if cors {
        add(":method");
    }
    names
}

fn check_sources(raw: &[RawSource], field: &Field) -> Result<Vec<Source>, ConfigError> {
    if raw.is_empty() {
        return Err(field.error("at least one token source is needed"));
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let f = field.index(i);
        let source = match s {
            RawSource::Bearer => Source::Bearer,
            RawSource::Header(h) => {
                let name = check_header_name(&f.key("header"), h)?;
                if matches!(name.as_str(), "authorization" | "cookie" | "host") {
                    return Err(f
                        .key("header")
                        .error(format!("\"{name}\" cannot be a token header")));
                }
                Source::Header(name)
            }
            RawSource::Query(q) => {
                if q.is_empty()
                    || q.len() > MAX_NAME_LENGTH
                    || !q.bytes().all(kit::config_error::is_token_byte)
                {
                    return Err(f.key("query").error(format!("\"{q}\" is not a valid name")));
                }
                Source::Query(q.clone())
            }
        };
        if out.contains(&source) {
            return Err(f.error("duplicate token source"));
        }
        out.push(source);
    }
    Ok(out)
}

pub(crate) fn claim_path(path: &str, field: &Field) -> Result<Vec<String>, ConfigError> {
    let parts: Vec<String> = path.split('.').map(str::to_string).collect();
    if path.len() > MAX_NAME_LENGTH || parts.len() > 8 || parts.iter().any(String::is_empty) {
        return Err(field.error(format!(
            "\"{path}\" is not a claim path (names separated by '.', at most 8)"
        )));
    }
    Ok(parts)
}

fn check_require(r: &RawRequire, f: &Field) -> Result<Requirement, ConfigError> {
    if r.all_of.len() + r.any_of.len() > MAX_SCOPES_PER_RULE {
        return Err(f.error(format!("more than {MAX_SCOPES_PER_RULE} scopes")));
    }
    for (name, list) in [("all_of", &r.all_of), ("any_of", &r.any_of)] {
        for (i, s) in list.iter().enumerate() {
            check_scope(s, &f.key(name).index(i))?;
        }
    }
    Ok(Requirement {
        all_of: r.all_of.clone(),
        any_of: r.any_of.clone(),
    })
}

fn build_rules(
    raw: &[RawRule],
    field: &Field,
    default_require: &Requirement,
) -> Result<RuleSet<Rule>, ConfigError> {
    let mut rules = Vec::with_capacity(raw.len());
    for (ri, r) in raw.iter().enumerate() {
        let f = field.index(ri);
        let matcher = RouteMatcher::compile(&r.matcher, &f.key("match"))?;
        let rule = match (&r.require, r.skip) {
            (Some(_), true) => {
                return Err(f
                    .key("skip")
                    .error("a skipped route cannot also require scopes"))
            }
            (None, true) => Rule::Skip,
            (None, false) => Rule::Require(Requirement::default()),
            (Some(req), false) => Rule::Require(check_require(req, &f.key("require"))?),
        };
        rules.push((matcher, rule));
    }
    // A rule loosens when it asks less than the default would: `skip`, or scopes that do not
    // imply the default's. Such a rule never matches an ambiguous path (`kit::matcher`).
    Ok(RuleSet::with_loosening(rules, |rule| match rule {
        Rule::Skip => true,
        Rule::Require(r) => !r.implies(default_require),
    }))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
