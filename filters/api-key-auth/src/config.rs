//! Configuration: the JSON a user writes (raw serde types) and its validated form.
//!
//! Phase one (`kit::config_error::parse_json`) refuses unknown fields and wrong types; phase two
//! ([`Config::from_raw`]) checks meaning (digests, timestamps, references between consumers and
//! rules) and precompiles what the request path needs: a digest → key map, the identity bytes
//! each consumer publishes, the route rules.

use kit::config_error::{
    check_header_name, check_label, check_realm, check_scope, parse_json, ConfigError, Field,
};
use kit::digest::{parse_sha256, sha256, DigestMap};
use kit::identity::Identity;
use kit::matcher::{RawMatch, RouteMatcher, RuleSet};
use kit::time::parse_rfc3339;
use serde::Deserialize;
use std::collections::HashMap;

pub const DEFAULT_REALM: &str = "apim";
pub const DEFAULT_HEADER: &str = "x-api-key";
pub const DEFAULT_MAX_KEY_LENGTH: usize = 256;
/// Bounds that keep a config (and so the VM's memory) reasonable.
pub const MAX_KEY_LENGTH_LIMIT: usize = 4096;
pub const MAX_CONSUMERS: usize = 100_000;
pub const MAX_KEYS_PER_CONSUMER: usize = 64;
pub const MAX_NAME_LENGTH: usize = 256;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default = "default_realm")]
    pub realm: String,
    #[serde(default = "default_sources")]
    pub sources: Vec<RawSource>,
    #[serde(default = "default_max_key_length")]
    pub max_key_length: usize,
    #[serde(default)]
    pub allow_plaintext_keys: bool,
    pub consumers: Vec<RawConsumer>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    #[serde(default)]
    pub forward: RawForward,
    #[serde(default = "yes")]
    pub strip_credential: bool,
    #[serde(default)]
    pub allow_cors_preflight: bool,
}

/// Where a key may be presented.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawSource {
    /// A request header, e.g. `x-api-key`.
    Header(String),
    /// `Authorization: <scheme> <key>`, scheme compared case-insensitively.
    Authorization(String),
    /// A query parameter.
    Query(String),
    /// A cookie.
    Cookie(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsumer {
    pub id: String,
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub keys: Vec<RawKey>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    /// SHA-256 of the key: 64 hex digits or base64.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The key itself; refused unless `allow_plaintext_keys`.
    #[serde(default)]
    pub plaintext: Option<String>,
    /// RFC 3339; the key is refused before this instant.
    #[serde(default)]
    pub not_before: Option<String>,
    /// RFC 3339; the key is refused from this instant on.
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(rename = "match", default)]
    pub matcher: RawMatch,
    /// Let the request through without looking for a key.
    #[serde(default)]
    pub skip: bool,
    /// Only these consumers / groups may call (403 for other known consumers).
    #[serde(default)]
    pub allow: Option<RawAllow>,
    /// A consumer id used when no key is presented.
    #[serde(default)]
    pub anonymous: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllow {
    #[serde(default)]
    pub consumers: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForward {
    #[serde(default)]
    pub consumer_id_header: Option<String>,
    #[serde(default)]
    pub consumer_plan_header: Option<String>,
}

fn default_realm() -> String {
    DEFAULT_REALM.to_string()
}
fn default_sources() -> Vec<RawSource> {
    vec![RawSource::Header(DEFAULT_HEADER.to_string())]
}
fn default_max_key_length() -> usize {
    DEFAULT_MAX_KEY_LENGTH
}
fn yes() -> bool {
    true
}

/// A validated key source (names lowercased where HTTP ignores case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Header(String),
    Authorization(String),
    Query(String),
    Cookie(String),
}

#[derive(Debug, Clone)]
pub struct Consumer {
    pub id: String,
    pub plan: Option<String>,
    pub groups: Vec<String>,
    pub disabled: bool,
    /// The `apim_consumer` filter-state value, encoded once here.
    pub identity: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
pub struct KeyEntry {
    pub consumer: usize,
    pub not_before: Option<u64>,
    pub expires_at: Option<u64>,
}

/// Indexes of allowed consumers, and allowed groups.
pub type Allow = (Vec<usize>, Vec<String>);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub skip: bool,
    /// Allowed consumers and groups; `None` allows every consumer.
    pub allow: Option<Allow>,
    pub anonymous: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `ApiKey realm="…"`, sent with every 401.
    pub www_authenticate: String,
    pub sources: Vec<Source>,
    pub max_key_length: usize,
    pub consumers: Vec<Consumer>,
    pub keys: DigestMap<KeyEntry>,
    pub rules: RuleSet<Rule>,
    /// The `allow` of each path-dependent rule that also sets `anonymous`: such a rule is passed
    /// over on an ambiguous path (it loosens), but its `allow` must still hold there, or a key
    /// holder it refuses would be let in by a later rule. Checked only for ambiguous paths.
    pub guarded_allows: Vec<(usize, RouteMatcher, Allow)>,
    pub consumer_id_header: Option<String>,
    pub consumer_plan_header: Option<String>,
    pub strip_credential: bool,
    pub allow_cors_preflight: bool,
    /// The request headers every request needs fetched (key sources, rule conditions).
    pub fetch: Vec<String>,
    /// Whether any key has `not_before`/`expires_at`: only then is the clock read per request.
    pub needs_clock: bool,
    /// Things worth a warning in Envoy's log (plaintext keys).
    pub warnings: Vec<String>,
}

impl Config {
    /// Both phases, from the bytes Envoy hands to `on_configure`. Errors and warnings name a
    /// consumer by its id (`consumers[id=alice].keys[0]`), which a user finds in a long list,
    /// rather than by index ([`name_consumers`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        let parsed = parse_json::<RawConfig>(bytes).and_then(Self::from_raw);
        match parsed {
            Ok(mut config) if !config.warnings.is_empty() => {
                let ids = consumer_ids(bytes);
                for w in &mut config.warnings {
                    *w = name_consumers(w, &ids);
                }
                Ok(config)
            }
            Ok(config) => Ok(config),
            Err(e) => {
                let ids = consumer_ids(bytes);
                Err(ConfigError {
                    path: name_consumers(&e.path, &ids),
                    message: name_consumers(&e.message, &ids),
                })
            }
        }
    }

    pub fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let root = Field::root();
        let realm = &raw.realm;
        check_realm(realm, &root.key("realm"))?;
        if raw.max_key_length == 0 || raw.max_key_length > MAX_KEY_LENGTH_LIMIT {
            return Err(root
                .key("max_key_length")
                .error(format!("must be between 1 and {MAX_KEY_LENGTH_LIMIT}")));
        }
        let sources = check_sources(&raw.sources, &root.key("sources"))?;
        let mut warnings = Vec::new();
        let (consumers, keys, by_id) = build_consumers(&raw, &mut warnings)?;
        let (rules, guarded_allows) =
            build_rules(&raw.rules, &by_id, &consumers, &root.key("rules"))?;
        let fwd = root.key("forward");
        let consumer_id_header = raw
            .forward
            .consumer_id_header
            .as_deref()
            .map(|h| check_header_name(&fwd.key("consumer_id_header"), h))
            .transpose()?;
        let consumer_plan_header = raw
            .forward
            .consumer_plan_header
            .as_deref()
            .map(|h| check_header_name(&fwd.key("consumer_plan_header"), h))
            .transpose()?;
        let fetch = headers_to_fetch(&sources, &rules, raw.allow_cors_preflight);
        Ok(Self {
            fetch,
            www_authenticate: format!("ApiKey realm=\"{realm}\""),
            sources,
            max_key_length: raw.max_key_length,
            consumers,
            rules,
            guarded_allows,
            consumer_id_header,
            consumer_plan_header,
            strip_credential: raw.strip_credential,
            allow_cors_preflight: raw.allow_cors_preflight,
            needs_clock: keys
                .values()
                .any(|k| k.not_before.is_some() || k.expires_at.is_some()),
            keys,
            warnings,
        })
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
            Source::Header(h) => add(h),
            Source::Authorization(_) => add("authorization"),
            Source::Query(_) => add(":path"),
            Source::Cookie(_) => add("cookie"),
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
        return Err(field.error("at least one key source is needed"));
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let f = field.index(i);
        let source = match s {
            RawSource::Header(h) => {
                let name = check_header_name(&f.key("header"), h)?;
                if matches!(name.as_str(), "authorization" | "cookie" | "host") {
                    return Err(f
                        .key("header")
                        .error(format!("use the {name} source for \"{name}\"")));
                }
                Source::Header(name)
            }
            RawSource::Authorization(scheme) => {
                if scheme.is_empty() || !scheme.bytes().all(kit::config_error::is_token_byte) {
                    return Err(f
                        .key("authorization")
                        .error("scheme must be a non-empty token such as \"ApiKey\""));
                }
                Source::Authorization(scheme.clone())
            }
            RawSource::Query(q) => Source::Query(check_plain_name(q, &f.key("query"))?),
            RawSource::Cookie(c) => Source::Cookie(check_plain_name(c, &f.key("cookie"))?),
        };
        if out.contains(&source) {
            return Err(f.error("duplicate key source"));
        }
        out.push(source);
    }
    Ok(out)
}

fn check_plain_name(name: &str, field: &Field) -> Result<String, ConfigError> {
    if name.is_empty()
        || name.len() > MAX_NAME_LENGTH
        || !name.bytes().all(kit::config_error::is_token_byte)
    {
        return Err(field.error(format!("\"{name}\" is not a valid name")));
    }
    Ok(name.to_string())
}

type Built = (Vec<Consumer>, DigestMap<KeyEntry>, HashMap<String, usize>);

fn build_consumers(raw: &RawConfig, warnings: &mut Vec<String>) -> Result<Built, ConfigError> {
    let field = Field::root().key("consumers");
    if raw.consumers.len() > MAX_CONSUMERS {
        return Err(field.error(format!("more than {MAX_CONSUMERS} consumers")));
    }
    let mut consumers = Vec::with_capacity(raw.consumers.len());
    let mut keys = DigestMap::default();
    let mut by_id = HashMap::new();
    // Where each digest was first seen, to name both places on a duplicate.
    let mut seen_at: DigestMap<String> = DigestMap::default();
    for (ci, c) in raw.consumers.iter().enumerate() {
        let f = field.index(ci);
        check_label(&c.id, &f.key("id"))?;
        if by_id.insert(c.id.clone(), ci).is_some() {
            return Err(f
                .key("id")
                .error(format!("duplicate consumer id \"{}\"", c.id)));
        }
        if let Some(plan) = &c.plan {
            check_label(plan, &f.key("plan"))?;
        }
        for (gi, g) in c.groups.iter().enumerate() {
            check_label(g, &f.key("groups").index(gi))?;
        }
        for (si, s) in c.scopes.iter().enumerate() {
            check_scope(s, &f.key("scopes").index(si))?;
        }
        if c.keys.len() > MAX_KEYS_PER_CONSUMER {
            return Err(f
                .key("keys")
                .error(format!("more than {MAX_KEYS_PER_CONSUMER} keys")));
        }
        for (ki, k) in c.keys.iter().enumerate() {
            let kf = f.key("keys").index(ki);
            let digest = key_digest(k, raw, &kf, warnings)?;
            let not_before = k
                .not_before
                .as_deref()
                .map(parse_rfc3339)
                .transpose()
                .map_err(|e| kf.key("not_before").error(e))?;
            let expires_at = k
                .expires_at
                .as_deref()
                .map(parse_rfc3339)
                .transpose()
                .map_err(|e| kf.key("expires_at").error(e))?;
            if let (Some(nb), Some(exp)) = (not_before, expires_at) {
                if exp <= nb {
                    return Err(kf.key("expires_at").error("must be later than not_before"));
                }
            }
            if let Some(first) = seen_at.insert(digest, kf.as_str().to_string()) {
                return Err(kf.error(format!("the same key is already configured at {first}")));
            }
            keys.insert(
                digest,
                KeyEntry {
                    consumer: ci,
                    not_before,
                    expires_at,
                },
            );
        }
        let identity = Identity {
            id: c.id.clone(),
            plan: c.plan.clone(),
            groups: c.groups.clone(),
            scopes: c.scopes.clone(),
            source: "api-key-auth".into(),
        };
        consumers.push(Consumer {
            id: c.id.clone(),
            plan: c.plan.clone(),
            groups: c.groups.clone(),
            disabled: c.disabled,
            identity: identity.encode(),
        });
    }
    Ok((consumers, keys, by_id))
}

fn key_digest(
    k: &RawKey,
    raw: &RawConfig,
    kf: &Field,
    warnings: &mut Vec<String>,
) -> Result<[u8; 32], ConfigError> {
    match (&k.sha256, &k.plaintext) {
        (Some(d), None) => parse_sha256(d).map_err(|e| kf.key("sha256").error(e)),
        (None, Some(p)) => {
            if !raw.allow_plaintext_keys {
                return Err(kf.key("plaintext").error("plaintext keys are refused; store the SHA-256 digest (`apim key hash`) or set allow_plaintext_keys"));
            }
            if p.is_empty() || p.len() > raw.max_key_length {
                return Err(kf.key("plaintext").error(format!(
                    "must be 1 to max_key_length ({}) bytes",
                    raw.max_key_length
                )));
            }
            warnings.push(format!(
                "{}: plaintext API key in config (allow_plaintext_keys is set)",
                kf.as_str()
            ));
            Ok(sha256(p.as_bytes()))
        }
        (Some(_), Some(_)) => Err(kf.error("give either sha256 or plaintext, not both")),
        (None, None) => {
            Err(kf.error("a key needs sha256 (or plaintext with allow_plaintext_keys)"))
        }
    }
}

fn build_rules(
    raw: &[RawRule],
    by_id: &HashMap<String, usize>,
    consumers: &[Consumer],
    field: &Field,
) -> Result<(RuleSet<Rule>, Vec<(usize, RouteMatcher, Allow)>), ConfigError> {
    let mut rules = Vec::with_capacity(raw.len());
    let mut guarded_allows = Vec::new();
    for (ri, r) in raw.iter().enumerate() {
        let f = field.index(ri);
        let matcher = RouteMatcher::compile(&r.matcher, &f.key("match"))?;
        if r.skip && (r.allow.is_some() || r.anonymous.is_some()) {
            return Err(f
                .key("skip")
                .error("a skipped route cannot also set allow or anonymous"));
        }
        let lookup = |id: &str, at: Field| {
            by_id
                .get(id)
                .copied()
                .ok_or_else(|| at.error(format!("unknown consumer \"{id}\"")))
        };
        let allow = match &r.allow {
            None => None,
            Some(a) => {
                if a.consumers.is_empty() && a.groups.is_empty() {
                    return Err(f
                        .key("allow")
                        .error("allows nobody: list consumers or groups (or remove allow)"));
                }
                let ids = a
                    .consumers
                    .iter()
                    .enumerate()
                    .map(|(i, id)| lookup(id, f.key("allow.consumers").index(i)))
                    .collect::<Result<Vec<_>, _>>()?;
                for (gi, g) in a.groups.iter().enumerate() {
                    check_label(g, &f.key("allow.groups").index(gi))?;
                }
                Some((ids, a.groups.clone()))
            }
        };
        let anonymous = r
            .anonymous
            .as_deref()
            .map(|id| lookup(id, f.key("anonymous")))
            .transpose()?;
        if let (Some(id), Some(true)) = (
            r.anonymous.as_deref(),
            anonymous.and_then(|i| consumers.get(i)).map(|c| c.disabled),
        ) {
            // A disabled consumer's keys are refused; letting keyless callers in as it would
            // make no key looser than its key.
            return Err(f.key("anonymous").error(format!(
                "consumer \"{id}\" is disabled; a disabled consumer cannot serve keyless callers"
            )));
        }
        let path_dependent =
            matcher.needs_route_name() || matcher.needed_headers().contains(&":path");
        if let (Some(a), Some(_), true) = (&allow, anonymous, path_dependent) {
            guarded_allows.push((ri, matcher.clone(), a.clone()));
        }
        rules.push((
            matcher,
            Rule {
                skip: r.skip,
                allow,
                anonymous,
            },
        ));
    }
    // `skip` and `anonymous` let a request in without a key: they loosen, so an ambiguous
    // path never reaches them (kit::matcher).
    let rules = RuleSet::with_loosening(rules, |r: &Rule| r.skip || r.anonymous.is_some());
    Ok((rules, guarded_allows))
}

/// The id by which each consumer (by index) can be named in a message: its `id` when that is a
/// valid label (no `]` in it) held by no other consumer, else `None` (the index stays, as it
/// must for "duplicate consumer id" or a bad id). Read from the JSON itself, so errors of
/// phase one (unknown fields, wrong types) get names too. Only on the error and warning paths.
pub fn consumer_ids(bytes: &[u8]) -> Vec<Option<String>> {
    // A document too large to be a config is not read twice.
    if bytes.len() > kit::config_error::MAX_CONFIG_BYTES {
        return Vec::new();
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Vec::new();
    };
    let ids: Vec<Option<&str>> = value
        .get("consumers")
        .and_then(serde_json::Value::as_array)
        .map(|list| {
            list.iter()
                .map(|c| c.get("id").and_then(serde_json::Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    ids.iter()
        .map(|id| {
            let id = (*id)?;
            let unique = ids.iter().filter(|other| **other == Some(id)).count() == 1;
            (unique && check_label(id, &Field::root()).is_ok()).then(|| id.to_string())
        })
        .collect()
}

/// `text` with every `consumers[N]` whose consumer has a usable id (see [`consumer_ids`])
/// written `consumers[id=ID]`.
pub fn name_consumers(text: &str, ids: &[Option<String>]) -> String {
    const MARK: &str = "consumers[";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        let (before, after) = rest.split_at(at + MARK.len());
        out.push_str(before);
        rest = after;
        let Some(close) = rest.find(']') else {
            continue;
        };
        let (digits, tail) = rest.split_at(close);
        let id = digits
            .parse::<usize>()
            .ok()
            .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|i| ids.get(i).cloned().flatten());
        // Only the top-level list: `rules[0].allow.consumers[1]` is a list of names, its index
        // stays.
        let top_level = before
            .strip_suffix(MARK)
            .and_then(|b| b.chars().last())
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
        match id {
            Some(id) if top_level => {
                out.push_str("id=");
                out.push_str(&id);
            }
            _ => out.push_str(digits),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
