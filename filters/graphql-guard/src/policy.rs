//! The pure decision: given the GraphQL requests found in an HTTP request, the effective limits
//! and the config, either the total cost or the first violation as a typed denial.

use crate::analyze::{analyze, AnalysisError, Measured, OpKind, Options};
use crate::apq::{self, ApqStore};
use crate::config::{Config, IntrospectionMode, Limits, HARD_MAX_TOKENS};
use crate::transport::{GqlRequest, TransportError};
use kit::denial::Denial;
use kit::digest::{parse_sha256, sha256};
use serde_json::json;

/// Every refusal, with its GraphQL `extensions.code` and HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    MaxBytes,
    MaxTokens,
    MaxDepth,
    MaxAliases,
    MaxRootFields,
    MaxHeight,
    MaxDirectives,
    MaxCost,
    IntrospectionDisabled,
    IntrospectionTooDeep,
    PersistedNotAllowed,
    PersistedHashMismatch,
    BatchTooLarge,
    ParseFailed,
    OperationResolution,
    ValidationFailed,
    MutationOverGet,
    BadRequest,
    UnsupportedMediaType,
    PersistedNotFound,
    MethodNotAllowed,
    UpgradeNotAllowed,
    /// `apim_consumer` is present but does not decode: the plan cannot be known.
    IdentityInvalid,
    /// The path's normalised reading meets a `skip` rule that does not depend on the path, its
    /// widest reading an earlier guarding rule ([`kit::matcher::Lookup::conflict`]).
    PathAmbiguous,
}

impl Code {
    pub const ALL: [Code; 24] = [
        Code::MaxBytes,
        Code::MaxTokens,
        Code::MaxDepth,
        Code::MaxAliases,
        Code::MaxRootFields,
        Code::MaxHeight,
        Code::MaxDirectives,
        Code::MaxCost,
        Code::IntrospectionDisabled,
        Code::IntrospectionTooDeep,
        Code::PersistedNotAllowed,
        Code::PersistedHashMismatch,
        Code::BatchTooLarge,
        Code::ParseFailed,
        Code::OperationResolution,
        Code::ValidationFailed,
        Code::MutationOverGet,
        Code::BadRequest,
        Code::UnsupportedMediaType,
        Code::PersistedNotFound,
        Code::MethodNotAllowed,
        Code::UpgradeNotAllowed,
        Code::IdentityInvalid,
        Code::PathAmbiguous,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::MaxBytes => "MAX_BYTES_EXCEEDED",
            Code::MaxTokens => "MAX_TOKENS_EXCEEDED",
            Code::MaxDepth => "MAX_DEPTH_EXCEEDED",
            Code::MaxAliases => "MAX_ALIASES_EXCEEDED",
            Code::MaxRootFields => "MAX_ROOT_FIELDS_EXCEEDED",
            Code::MaxHeight => "MAX_HEIGHT_EXCEEDED",
            Code::MaxDirectives => "MAX_DIRECTIVES_EXCEEDED",
            Code::MaxCost => "MAX_COST_EXCEEDED",
            Code::IntrospectionDisabled => "INTROSPECTION_DISABLED",
            Code::IntrospectionTooDeep => "INTROSPECTION_TOO_DEEP",
            Code::PersistedNotAllowed => "PERSISTED_QUERY_NOT_ALLOWED",
            Code::PersistedHashMismatch => "PERSISTED_QUERY_HASH_MISMATCH",
            Code::BatchTooLarge => "BATCH_TOO_LARGE",
            Code::ParseFailed => "GRAPHQL_PARSE_FAILED",
            Code::OperationResolution => "OPERATION_RESOLUTION_FAILURE",
            Code::ValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Code::MutationOverGet => "MUTATION_NOT_ALLOWED_OVER_GET",
            Code::BadRequest => "BAD_REQUEST",
            Code::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Code::PersistedNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Code::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Code::UpgradeNotAllowed => "UPGRADE_NOT_ALLOWED",
            Code::IdentityInvalid => "IDENTITY_INVALID",
            Code::PathAmbiguous => "PATH_AMBIGUOUS",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Code::MaxBytes => 413,
            Code::MutationOverGet | Code::MethodNotAllowed => 405,
            Code::UnsupportedMediaType => 415,
            // Apollo's APQ protocol: a cache miss the client answers by resending the full
            // query, reported as a GraphQL error with status 200 (Apollo Server and Router).
            Code::PersistedNotFound => 200,
            Code::UpgradeNotAllowed | Code::IdentityInvalid => 403,
            _ => 400,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Code::MaxBytes => "Request too large",
            Code::UnsupportedMediaType => "Unsupported media type",
            Code::MutationOverGet => "Mutation over GET",
            Code::MethodNotAllowed => "Method not allowed",
            Code::UpgradeNotAllowed => "Upgrade not allowed",
            Code::IdentityInvalid => "Identity unreadable",
            Code::PathAmbiguous => "Ambiguous path",
            Code::PersistedNotFound => "PersistedQueryNotFound",
            _ => "GraphQL operation refused",
        }
    }

    /// The counter name's last segment.
    pub fn counter_suffix(self) -> String {
        self.as_str().to_ascii_lowercase()
    }
}

/// A refusal: which rule, and the denial to send (or to log in warn-only mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub code: Code,
    pub denial: Denial,
}

/// The outcome of checking every operation of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Sum of the operations' costs (0 without a cost model or for trusted operations).
    pub cost: u64,
    /// The first violation, if any.
    pub violation: Option<Violation>,
    /// The names of the operations checked, in order (unnamed ones left out).
    pub operations: Vec<String>,
}

impl Checked {
    /// A request refused before any operation was measured (transport, size).
    pub fn refused(violation: Violation) -> Self {
        Self {
            cost: 0,
            violation: Some(violation),
            operations: Vec::new(),
        }
    }
}

/// A GraphQL name (`[_A-Za-z][_0-9A-Za-z]*`) of at most 128 bytes: what may be logged of a
/// client-sent operation name.
fn loggable_name(name: &str) -> bool {
    name.len() <= 128
        && name
            .bytes()
            .next()
            .is_some_and(|b| b == b'_' || b.is_ascii_alphabetic())
        && name.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

pub fn violation(code: Code, message: impl Into<String>) -> Violation {
    Violation {
        code,
        denial: Denial::new(code.status(), code.as_str(), code.title(), message),
    }
}

/// A limit exceeded: the message names the limit and, unless hidden, both numbers.
fn over_limit(
    config: &Config,
    code: Code,
    what: &str,
    key: &str,
    value: u64,
    limit: u64,
) -> Violation {
    if config.hide_values {
        let mut v = violation(code, format!("{what} exceeds the limit ({key})"));
        v.denial = v.denial.with_extension("limit", json!(key));
        return v;
    }
    let mut v = violation(
        code,
        format!("{what} {value} exceeds the limit of {limit} ({key})"),
    );
    v.denial = v
        .denial
        .with_extension("limit", json!(key))
        .with_extension("measured", json!(value))
        .with_extension("max", json!(limit));
    v
}

pub fn transport_violation(config: &Config, e: &TransportError) -> Violation {
    match e {
        TransportError::BadRequest(m) => violation(Code::BadRequest, m.clone()),
        TransportError::UnsupportedMediaType => violation(
            Code::UnsupportedMediaType,
            "GraphQL requests must be application/json or application/graphql",
        ),
        TransportError::BatchTooLarge(n) => over_limit(
            config,
            Code::BatchTooLarge,
            "Batch size",
            "max_batch",
            u64::try_from(*n).unwrap_or(u64::MAX),
            u64::try_from(config.max_batch).unwrap_or(u64::MAX),
        ),
    }
}

/// Bytes of the document (POST body or GET query string), checked before any parsing.
pub fn check_bytes(config: &Config, limits: &Limits, bytes: usize) -> Option<Violation> {
    let limit = limits
        .max_bytes
        .unwrap_or(config.max_body_bytes)
        .min(config.max_body_bytes);
    (bytes > limit).then(|| {
        over_limit(
            config,
            Code::MaxBytes,
            "Request size",
            "max_bytes",
            u64::try_from(bytes).unwrap_or(u64::MAX),
            u64::try_from(limit).unwrap_or(u64::MAX),
        )
    })
}

/// Checks every operation of the request, in order; the first violation wins.
/// `apq` is the automatic-persisted-query registry: full queries sent with their hash are
/// remembered there, hash-only requests are checked against what it holds.
pub fn check(
    config: &Config,
    limits: &Limits,
    is_get: bool,
    reqs: &[GqlRequest],
    apq: &dyn ApqStore,
) -> Checked {
    let mut cost = 0u64;
    let mut operations = Vec::new();
    let batch = reqs.len() > 1;
    // Bytes of the registered documents hashes stand for, summed over the batch.
    let mut registered_bytes = 0usize;
    for (i, req) in reqs.iter().enumerate() {
        match check_one(config, limits, is_get, req, apq, &mut registered_bytes) {
            Ok((c, name)) => {
                cost = cost.saturating_add(c);
                operations.extend(name.filter(|n| loggable_name(n)));
            }
            Err(mut v) => {
                if batch {
                    v.denial.detail = format!("batch element {i}: {}", v.denial.detail);
                    v.denial = v.denial.with_extension("batchIndex", json!(i));
                }
                return Checked {
                    cost,
                    violation: Some(v),
                    operations,
                };
            }
        }
    }
    Checked {
        cost,
        violation: None,
        operations,
    }
}

fn check_one(
    config: &Config,
    limits: &Limits,
    is_get: bool,
    req: &GqlRequest,
    apq: &dyn ApqStore,
    registered_bytes: &mut usize,
) -> Result<(u64, Option<String>), Violation> {
    let claimed = match &req.persisted_hash {
        Some(h) => Some(parse_sha256(h).map_err(|_| {
            violation(
                Code::BadRequest,
                "extensions.persistedQuery.sha256Hash is not a SHA-256 digest",
            )
        })?),
        None => None,
    };
    let digest = match (&req.query, claimed) {
        (Some(q), claimed) if claimed.is_some() || config.persisted.is_some() => {
            let d = sha256(q.as_bytes());
            if claimed.is_some_and(|c| c != d) {
                return Err(violation(
                    Code::PersistedHashMismatch,
                    "the query does not match extensions.persistedQuery.sha256Hash",
                ));
            }
            Some(d)
        }
        (_, claimed) => claimed,
    };
    if let Some(p) = &config.persisted {
        let listed = digest.is_some_and(|d| p.digests.contains_key(&d));
        if listed {
            // A trusted operation: no limits, no cost.
            return Ok((0, req.operation_name.clone()));
        }
        if p.only {
            return Err(violation(
                Code::PersistedNotAllowed,
                "only persisted operations are accepted",
            ));
        }
    }
    // An Apollo persisted-query hash alone: the document registered for it (when its full
    // text was last seen here) is checked exactly as if it had been sent, under this caller's
    // plan, operation name and variables. An unknown hash is never forwarded unchecked.
    let registered;
    let (query, register) = match (&req.query, digest) {
        (Some(q), d) => (q, d.filter(|_| req.persisted_hash.is_some())),
        (None, Some(d)) => {
            registered = apq::lookup(apq, &config.apq, &d)
                .ok_or_else(|| violation(Code::PersistedNotFound, "PersistedQueryNotFound"))?;
            // The caller's size limit holds for what the hash stands for, as if it had been
            // sent (the whole batch's hashed documents together).
            *registered_bytes = registered_bytes.saturating_add(registered.len());
            if let Some(v) = check_bytes(config, limits, *registered_bytes) {
                return Err(v);
            }
            (&registered, None)
        }
        (None, None) => {
            return Err(violation(Code::BadRequest, "no query in the request"));
        }
    };
    let token_cap = limits
        .max_tokens
        .map_or(HARD_MAX_TOKENS, |t| t.min(HARD_MAX_TOKENS));
    let opts = Options {
        token_cap,
        introspection: config.introspection.mode,
        count_typename: config.count_typename,
        cost: config.cost.as_ref(),
    };
    let analysis = analyze(
        query,
        req.operation_name.as_deref(),
        req.variables.as_ref(),
        &opts,
    )
    .map_err(|e| analysis_violation(config, limits, token_cap, &e))?;
    // A document that parses is remembered under its (verified) hash, whatever this caller's
    // limits say of it: a later hash-only request is checked under its own caller's plan.
    if let Some(d) = register {
        apq::register(apq, &config.apq, &d, query);
    }
    if is_get && analysis.kind == OpKind::Mutation {
        return Err(violation(
            Code::MutationOverGet,
            "mutations must be sent with POST",
        ));
    }
    check_limits(config, limits, &analysis.measured)?;
    Ok((analysis.measured.cost, analysis.name))
}

fn analysis_violation(config: &Config, limits: &Limits, cap: u32, e: &AnalysisError) -> Violation {
    match e {
        AnalysisError::TooManyTokens => {
            let limit = u64::from(limits.max_tokens.unwrap_or(cap));
            if config.hide_values {
                over_limit(
                    config,
                    Code::MaxTokens,
                    "Token count",
                    "max_tokens",
                    0,
                    limit,
                )
            } else {
                violation(
                    Code::MaxTokens,
                    format!("Token count exceeds the limit of {limit} (max_tokens)"),
                )
            }
        }
        AnalysisError::TooDeep => violation(
            Code::MaxDepth,
            "the document nests deeper than the parser accepts",
        ),
        AnalysisError::Syntax(m) => violation(Code::ParseFailed, format!("syntax error: {m}")),
        AnalysisError::NoOperation => {
            violation(Code::OperationResolution, "the document has no operation")
        }
        AnalysisError::OperationNameRequired => violation(
            Code::OperationResolution,
            "the document has several operations: operationName is required",
        ),
        AnalysisError::OperationNotFound(n) => violation(
            Code::OperationResolution,
            format!("no operation named \"{}\"", clip(n)),
        ),
        AnalysisError::UnknownFragment(n) => violation(
            Code::ValidationFailed,
            format!("unknown fragment \"{}\"", clip(n)),
        ),
        AnalysisError::FragmentCycle(n) => violation(
            Code::ValidationFailed,
            format!("fragment \"{}\" spreads itself", clip(n)),
        ),
        AnalysisError::DuplicateFragment(n) => violation(
            Code::ValidationFailed,
            format!("fragment \"{}\" is defined twice", clip(n)),
        ),
    }
}

/// Names echoed in messages are bounded.
fn clip(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

fn check_limits(config: &Config, limits: &Limits, m: &Measured) -> Result<(), Violation> {
    let intro = config.introspection;
    if m.introspection {
        match intro.mode {
            IntrospectionMode::Block => {
                return Err(violation(
                    Code::IntrospectionDisabled,
                    "introspection is disabled",
                ))
            }
            IntrospectionMode::Allow if m.introspection_depth > intro.max_depth => {
                return Err(over_limit(
                    config,
                    Code::IntrospectionTooDeep,
                    "Introspection depth",
                    "introspection.max_depth",
                    u64::from(m.introspection_depth),
                    u64::from(intro.max_depth),
                ))
            }
            _ => {}
        }
    }
    let checks: [(Option<u64>, u64, Code, &str, &str); 6] = [
        (
            limits.max_tokens.map(u64::from),
            u64::from(m.tokens),
            Code::MaxTokens,
            "Token count",
            "max_tokens",
        ),
        (
            limits.max_depth.map(u64::from),
            u64::from(m.depth),
            Code::MaxDepth,
            "Depth",
            "max_depth",
        ),
        (
            limits.max_aliases.map(u64::from),
            m.aliases,
            Code::MaxAliases,
            "Alias count",
            "max_aliases",
        ),
        (
            limits.max_root_fields.map(u64::from),
            m.root_fields,
            Code::MaxRootFields,
            "Root field count",
            "max_root_fields",
        ),
        (
            limits.max_height.map(u64::from),
            m.height,
            Code::MaxHeight,
            "Height",
            "max_height",
        ),
        (
            limits.max_directives.map(u64::from),
            m.directives,
            Code::MaxDirectives,
            "Directive count",
            "max_directives",
        ),
    ];
    for (limit, value, code, what, key) in checks {
        if let Some(limit) = limit {
            if value > limit {
                return Err(over_limit(config, code, what, key, value, limit));
            }
        }
    }
    if let Some(limit) = limits.max_cost {
        if config.cost.is_some() && m.cost > limit {
            return Err(over_limit(
                config,
                Code::MaxCost,
                "Cost",
                "max_cost",
                m.cost,
                limit,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
