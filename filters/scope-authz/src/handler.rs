//! Applying a decision through the host: find the token, verify it (or take it from the cache,
//! the API-key consumer, or `jwt_authn`'s metadata), check the route's scopes, then publish the
//! identity, forward claims, send the denial, count. Generic over `kit::host::Host`, so every
//! effect is unit-tested with the mock; `filter.rs` only wires it to proxy-wasm.

use crate::cache::TokenCache;
use crate::config::{Config, Metadata, Requirement, Rule, Source, CORS_HEADERS};
use crate::jwks::KeySet;
use crate::policy::{self, find_token, DenyReason, Found};
use crate::token::{self, Verified};
use kit::denial::{Denial, Format};
use kit::host::Host;
use kit::identity::{self, Identity};
use kit::matcher::MatchInput;
use kit::query::remove_query_param;
use kit::request::RequestHead;
use std::rc::Rc;

/// Counter names, in the order the constants below use.
pub const COUNTER_NAMES: [&str; 19] = [
    "apim.scope_authz.allowed",
    "apim.scope_authz.allowed_consumer",
    "apim.scope_authz.skipped",
    "apim.scope_authz.cache_hit",
    "apim.scope_authz.jwks_fetch",
    "apim.scope_authz.jwks_fetch_failed",
    "apim.scope_authz.denied.missing",
    "apim.scope_authz.denied.ambiguous",
    "apim.scope_authz.denied.invalid",
    "apim.scope_authz.denied.expired",
    "apim.scope_authz.denied.unknown_kid",
    "apim.scope_authz.denied.keys_unavailable",
    "apim.scope_authz.denied.insufficient_scope",
    "apim.scope_authz.jwks_keys_changed",
    "apim.scope_authz.denied.unsafe_claim",
    "apim.scope_authz.path_ambiguous",
    "apim.scope_authz.denied.kidless_capped",
    "apim.scope_authz.denied.identity_invalid",
    "apim.scope_authz.denied.path_ambiguous",
];
pub const ALLOWED: usize = 0;
pub const ALLOWED_CONSUMER: usize = 1;
pub const SKIPPED: usize = 2;
pub const CACHE_HIT: usize = 3;
pub const JWKS_FETCH: usize = 4;
pub const JWKS_FETCH_FAILED: usize = 5;
pub const JWKS_KEYS_CHANGED: usize = 13;
/// A loosening rule (`skip`, or less than `default_require`) matched an ambiguous path and was
/// passed over.
pub const PATH_AMBIGUOUS: usize = 15;

fn counter_index(reason: DenyReason) -> usize {
    match reason {
        DenyReason::Missing => 6,
        DenyReason::Ambiguous => 7,
        DenyReason::Invalid => 8,
        DenyReason::Expired => 9,
        DenyReason::UnknownKid => 10,
        DenyReason::KeysUnavailable => 11,
        DenyReason::InsufficientScope => 12,
        DenyReason::UnsafeClaim => 14,
        DenyReason::KidlessCapped => 16,
        DenyReason::IdentityInvalid => 17,
        DenyReason::PathAmbiguous => 18,
    }
}

/// Per-worker runtime state: the key sets in use and the token cache.
#[derive(Debug, Default)]
pub struct State {
    /// Provider index → keys (inline from the config, or the last fetched JWKS).
    pub keys: Vec<Option<Rc<KeySet>>>,
    pub cache: TokenCache,
    /// Provider index → a request saw an unknown `kid` or no keys: fetch again soon.
    pub refetch: Vec<bool>,
    /// Counts of the common path (allowed, cache hits) not yet added to their counters.
    batched: Batched,
    /// Wall clock (Unix seconds) as last read, and how many cache lookups used it since.
    clock: u64,
    clock_uses: u32,
}

/// A cached grant is used with the clock read at most this many lookups ago (or by the 500 ms
/// timer), and only while `clock + CLOCK_MARGIN < exp`: one host call saved on 15 of 16
/// requests, and a cached entry still never outlives the token's `exp`.
pub const CLOCK_REUSE: u32 = 16;
pub const CLOCK_MARGIN: u64 = 2;

/// The common path (allowed, cache hit) is counted in batches, so it makes two host calls
/// fewer; a counter lags by at most this many less one, and the timer flushes it.
pub const BATCH: i64 = 16;

/// Pending increments by counter index: one host call per [`BATCH`] requests instead of one
/// per request.
#[derive(Debug, Default)]
struct Batched {
    pending: [i64; COUNTER_NAMES.len()],
}

/// The filter's counters: kit's, incremented by index, by one or by a batch.
pub use kit::metrics::Counters;

impl State {
    pub fn new(config: &Config) -> Self {
        Self {
            keys: config
                .providers
                .iter()
                .map(|p| p.inline_keys.clone().map(Rc::new))
                .collect(),
            cache: TokenCache::new(config.cache_entries),
            refetch: vec![false; config.providers.len()],
            batched: Batched::default(),
            clock: 0,
            clock_uses: 0,
        }
    }

    /// The timer's fresh reading of the clock.
    pub fn set_clock(&mut self, now: u64) {
        self.clock = now;
        self.clock_uses = 0;
    }

    /// The clock for a cache lookup: re-read every [`CLOCK_REUSE`] uses.
    fn cached_clock(&mut self, host: &dyn Host) -> u64 {
        if self.clock == 0 || self.clock_uses >= CLOCK_REUSE {
            self.set_clock(host.now_unix());
        }
        self.clock_uses += 1;
        self.clock
    }

    /// Adds one to a batched counter (flushed every [`BATCH`] and on the timer).
    pub fn count(&mut self, host: &dyn Host, counters: &Counters, index: usize) {
        let Some(n) = self.batched.pending.get_mut(index) else {
            return;
        };
        *n += 1;
        if *n >= BATCH {
            counters.add(host, index, *n);
            *n = 0;
        }
    }

    /// Adds every pending count to its counter.
    pub fn flush_counters(&mut self, host: &dyn Host, counters: &Counters) {
        for (index, n) in self.batched.pending.iter_mut().enumerate() {
            if *n > 0 {
                counters.add(host, index, *n);
                *n = 0;
            }
        }
    }

    /// Installs a fetched key set and says whether it changed anything. The same keys as
    /// before (a refresh, a re-fetch for an unknown `kid`): nothing changes, the cache stays.
    /// Other keys: cached grants of this provider whose key would no longer verify them are
    /// dropped (a removed key stops verifying at once); the rest stay cached.
    pub fn set_keys(&mut self, provider: usize, keys: KeySet) -> bool {
        let Some(slot) = self.keys.get_mut(provider) else {
            return false;
        };
        if slot.as_deref().is_some_and(|old| old.same_keys(&keys)) {
            return false;
        }
        self.cache.retain_verifiable(provider, &keys);
        *slot = Some(Rc::new(keys));
        true
    }
}

/// Whether the request goes on to the next filter (kit's one type for it).
pub use kit::stage::Verdict as Action;

/// What let the caller in.
enum Grant {
    /// The verified token, and the sources (indexes in `Config::sources`) that held it.
    Token(Rc<Verified>, Vec<usize>),
    Consumer(Identity),
    Metadata {
        sub: Option<String>,
        scopes: Vec<String>,
    },
}

impl Grant {
    fn scopes(&self) -> &[String] {
        match self {
            Grant::Token(v, _) => &v.scopes,
            Grant::Consumer(id) => &id.scopes,
            Grant::Metadata { scopes, .. } => scopes,
        }
    }
}

/// `body_follows`: the headers did not end the stream (Envoy's `!end_of_stream`): a preflight
/// never has a body.
pub fn on_request_headers(
    host: &dyn Host,
    config: &Config,
    state: &mut State,
    counters: &Counters,
    body_follows: bool,
) -> Action {
    let mut head = RequestHead::fetch(host, &config.fetch);
    head.set_body_follows(body_follows);
    if config.allow_cors_preflight && head.method() == "OPTIONS" {
        let cors: Vec<String> = CORS_HEADERS.iter().map(|s| (*s).to_string()).collect();
        head.fetch_more(host, &cors);
        if head.is_cors_preflight() {
            scrub_forwarded(host, config);
            counters.inc(host, SKIPPED);
            return Action::Continue;
        }
    }
    let route = if config.rules.needs_route_name() {
        host.route_name()
    } else {
        None
    };
    let input = MatchInput {
        route_name: route.as_deref(),
        head: &head,
    };
    let lookup = config.rules.lookup(&input);
    if lookup.refused_ambiguous {
        counters.inc(host, PATH_AMBIGUOUS);
    }
    if lookup.conflict {
        // The backend may serve either route: which scopes apply is unknown, so neither does.
        counters.inc(host, counter_index(DenyReason::PathAmbiguous));
        let denial = Denial::path_ambiguous();
        kit::denial::send(host, crate::stage::SPEC.name, &denial, Format::Problem);
        return Action::Stop;
    }
    let requirement = match lookup.rule.unwrap_or(&config.default_rule) {
        Rule::Skip => {
            scrub_forwarded(host, config);
            counters.inc(host, SKIPPED);
            return Action::Continue;
        }
        Rule::Require(r) => r,
    };
    let grant = match &config.metadata {
        Some(md) => metadata_grant(host, config, md),
        None => token_grant(host, config, &head, state, counters),
    };
    match grant
        .and_then(|g| check_scopes(config, requirement, g))
        .and_then(|g| metadata_forwarded(host, config, g))
    {
        Ok((grant, forwarded)) => {
            if let Err((reason, denial)) = apply(host, config, &head, &grant, &forwarded) {
                counters.inc(host, counter_index(reason));
                kit::denial::send(host, crate::stage::SPEC.name, &denial, Format::Problem);
                return Action::Stop;
            }
            let idx = if matches!(grant, Grant::Consumer(_)) {
                ALLOWED_CONSUMER
            } else {
                ALLOWED
            };
            state.count(host, counters, idx);
            Action::Continue
        }
        Err((reason, denial)) => {
            counters.inc(host, counter_index(reason));
            kit::denial::send(host, crate::stage::SPEC.name, &denial, Format::Problem);
            Action::Stop
        }
    }
}

type Refusal = (DenyReason, Denial);

fn check_scopes(config: &Config, req: &Requirement, grant: Grant) -> Result<Grant, Refusal> {
    if req.satisfied_by(grant.scopes()) {
        return Ok(grant);
    }
    // Worded for the credential presented: a Bearer challenge only to a token caller.
    let denial = match &grant {
        Grant::Consumer(id) => policy::consumer_insufficient(req, &id.source),
        Grant::Token(..) | Grant::Metadata { .. } => policy::insufficient(&config.realm, req),
    };
    Err((DenyReason::InsufficientScope, denial))
}

fn consumer_or_missing(host: &dyn Host, config: &Config) -> Result<Grant, Refusal> {
    if config.consumer_scopes {
        if let Some(Some(id)) = host.identity() {
            return Ok(Grant::Consumer(id));
        }
    }
    Err((DenyReason::Missing, policy::missing(&config.realm)))
}

fn token_grant(
    host: &dyn Host,
    config: &Config,
    head: &RequestHead,
    state: &mut State,
    counters: &Counters,
) -> Result<Grant, Refusal> {
    let (token, sources) = match find_token(config, head)? {
        Found::None => return consumer_or_missing(host, config),
        Found::Token { token, sources } => (token, sources),
    };
    if token.len() > config.max_token_bytes {
        return Err(policy::invalid(&config.realm, token::TokenError::TooLarge));
    }
    let clock = state.cached_clock(host);
    if let Some(v) = state.cache.get(&token, clock.saturating_add(CLOCK_MARGIN)) {
        state.count(host, counters, CACHE_HIT);
        return Ok(Grant::Token(v, sources));
    }
    // A signature check is worth a fresh clock.
    let now = host.now_unix();
    state.set_clock(now);
    match token::verify(config, &state.keys, &token, now) {
        Ok(v) => {
            let v = Rc::new(v);
            state.cache.insert(&token, Rc::clone(&v), now);
            Ok(Grant::Token(v, sources))
        }
        Err(e) => {
            if let token::TokenError::UnknownKid(i) | token::TokenError::NoKeys(i) = e {
                if let Some(flag) = state.refetch.get_mut(i) {
                    *flag = true;
                }
            }
            Err(policy::invalid(&config.realm, e))
        }
    }
}

fn metadata_string(host: &dyn Host, md: &Metadata, claim: &[&str]) -> Option<String> {
    let mut path = vec![
        "metadata",
        "filter_metadata",
        md.namespace.as_str(),
        md.payload_key.as_str(),
    ];
    path.extend_from_slice(claim);
    host.property(&path)
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.is_empty() && s.len() <= 8 * 1024)
}

/// Mode `metadata`: `jwt_authn` verified the token; its payload is read claim by claim from
/// dynamic metadata (`sub`, `scope`: strings).
fn metadata_grant(host: &dyn Host, config: &Config, md: &Metadata) -> Result<Grant, Refusal> {
    let sub = metadata_string(host, md, &["sub"]);
    let scope = metadata_string(host, md, &["scope"]);
    if sub.is_none() && scope.is_none() {
        return consumer_or_missing(host, config);
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in scope.as_deref().unwrap_or("").split(' ') {
        if scopes.len() >= token::MAX_SCOPES {
            return Err(policy::invalid(
                &config.realm,
                token::TokenError::TooManyScopes,
            ));
        }
        if !s.is_empty() && !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    Ok(Grant::Metadata { sub, scopes })
}

/// Mode `metadata`: the claim headers to forward, read from `jwt_authn`'s payload and
/// checked like any header built from client data (`kit::header_value::check`); a value that
/// fails refuses the request (see [`token::header_value`]). Other grants forward nothing here.
fn metadata_forwarded(
    host: &dyn Host,
    config: &Config,
    grant: Grant,
) -> Result<(Grant, Vec<Option<String>>), Refusal> {
    let (Grant::Metadata { .. }, Some(md)) = (&grant, &config.metadata) else {
        return Ok((grant, Vec::new()));
    };
    let mut out = Vec::with_capacity(config.forward.len());
    for f in &config.forward {
        let claim: Vec<&str> = f.claim.iter().map(String::as_str).collect();
        let value = metadata_string(host, md, &claim);
        if let Some(v) = &value {
            if kit::header_value::check(v.as_bytes()).is_err() {
                return Err(policy::invalid(
                    &config.realm,
                    token::TokenError::UnsafeClaim,
                ));
            }
        }
        out.push(value);
    }
    Ok((grant, out))
}

/// The identity to publish: `own` layered over the one an earlier filter published (which
/// keeps its id, plan and groups: a token never moves a key holder to another plan). Refused
/// (nothing published) when an earlier identity is present but does not decode (replacing it
/// would drop its plan) or the result would be larger than `MAX_IDENTITY_BYTES` (later filters
/// would read it as no identity at all).
fn publish_identity(
    host: &dyn Host,
    own: Identity,
    own_bytes: Option<&[u8]>,
) -> Result<(), Refusal> {
    let found = host.identity();
    let invalid = matches!(found, Some(None));
    let earlier = found.flatten();
    if invalid {
        return Err(policy::identity_invalid(
            "The identity an earlier filter published cannot be read.",
        ));
    }
    let bytes = match (earlier, own_bytes) {
        (None, Some(bytes)) => bytes.to_vec(),
        (earlier, _) => own.layered_over(earlier.as_ref()).encode(),
    };
    if bytes.is_empty() || bytes.len() > identity::MAX_IDENTITY_BYTES {
        return Err(policy::identity_invalid(
            "The caller's identity is too large to publish.",
        ));
    }
    host.set_property(identity::PROPERTY, &bytes);
    Ok(())
}

fn apply(
    host: &dyn Host,
    config: &Config,
    head: &RequestHead,
    grant: &Grant,
    from_metadata: &[Option<String>],
) -> Result<(), Refusal> {
    match grant {
        Grant::Token(v, sources) => {
            if config.publish_identity && v.sub.is_some() {
                publish_identity(host, v.identity.clone(), Some(&v.identity_bytes))?;
            }
            if let Some(claims) = &v.claims {
                host.set_property(crate::token::CLAIMS_PROPERTY, claims);
            }
            for (f, value) in config.forward.iter().zip(&v.forwarded) {
                match value {
                    Some(value) => host.set_request_header(&f.header, value.as_bytes()),
                    None => host.remove_request_header(&f.header),
                }
            }
            if config.strip_credential {
                strip_token(host, config, head, sources);
            }
        }
        Grant::Consumer(_) => scrub_forwarded(host, config),
        Grant::Metadata { sub, scopes } => {
            if let (true, Some(sub)) = (config.publish_identity, sub) {
                let id = Identity {
                    id: sub.clone(),
                    scopes: scopes.clone(),
                    source: "scope-authz".into(),
                    ..Identity::default()
                };
                publish_identity(host, id, None)?;
            }
            for (f, value) in config.forward.iter().zip(from_metadata) {
                match value {
                    Some(v) => host.set_request_header(&f.header, v.as_bytes()),
                    None => host.remove_request_header(&f.header),
                }
            }
        }
    }
    Ok(())
}

/// Removes every copy of the verified token before the request goes on: the bearer
/// credentials of `Authorization` (another scheme's credentials stay), the token header, the
/// query parameter. Only the sources that held a copy are touched.
fn strip_token(host: &dyn Host, config: &Config, head: &RequestHead, sources: &[usize]) {
    for source in sources.iter().filter_map(|i| config.sources.get(*i)) {
        match source {
            Source::Bearer => {
                let rest: Vec<&[u8]> = head
                    .all("authorization")
                    .flat_map(|v| v.split(|b| *b == b','))
                    .filter(|part| !policy::is_bearer(part))
                    .collect();
                if rest.is_empty() {
                    host.remove_request_header("authorization");
                } else {
                    host.set_request_header("authorization", &rest.join(b",".as_slice()));
                }
            }
            Source::Header(name) => host.remove_request_header(name),
            Source::Query(name) => {
                let path = remove_query_param(head.path_and_query(), name);
                host.set_request_header(":path", path.as_bytes());
            }
        }
    }
}

/// On routes let through without a token, claim headers can only be forged.
fn scrub_forwarded(host: &dyn Host, config: &Config) {
    for f in &config.forward {
        host.remove_request_header(&f.header);
    }
}

#[cfg(test)]
#[path = "handler_tests.rs"]
mod tests;
