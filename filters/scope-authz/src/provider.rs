//! Phase two for one `providers[]` entry: algorithms against key material, the HMAC opt-in,
//! inline or remote JWKS. Split from `config.rs` to keep files short.

use crate::config::{
    claim_path, Provider, RawJwks, RawProvider, RawRemote, Remote, MAX_LEEWAY_SECONDS,
    MAX_NAME_LENGTH,
};
use crate::jwks::KeySet;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use kit::config_error::{check_label, ConfigError, Field};

pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        _ => return None,
    })
}

pub(crate) fn check_provider(p: &RawProvider, f: &Field) -> Result<Provider, ConfigError> {
    check_label(&p.name, &f.key("name"))?;
    if p.issuer.is_empty() || p.issuer.len() > 1024 {
        return Err(f.key("issuer").error("must be 1-1024 characters"));
    }
    for (i, a) in p.audiences.iter().enumerate() {
        if a.is_empty() || a.len() > 1024 {
            return Err(f
                .key("audiences")
                .index(i)
                .error("must be 1-1024 characters"));
        }
    }
    if p.algorithms.is_empty() {
        return Err(f
            .key("algorithms")
            .error("list the accepted algorithms (e.g. [\"RS256\"])"));
    }
    let mut algorithms = Vec::with_capacity(p.algorithms.len());
    for (i, name) in p.algorithms.iter().enumerate() {
        let af = f.key("algorithms").index(i);
        let alg = parse_algorithm(name).ok_or_else(|| {
            if name.eq_ignore_ascii_case("none") {
                af.error("\"none\" is never accepted")
            } else {
                af.error(format!(
                    "unknown algorithm \"{name}\" (RS256/384/512, PS256/384/512, ES256/384, EdDSA, HS256/384/512)"
                ))
            }
        })?;
        if alg.family() == AlgorithmFamily::Hmac {
            if !p.allow_hmac {
                return Err(af.error(format!("{name} needs allow_hmac: true and an hmac_secret")));
            }
            if p.hmac_secret.is_none() {
                return Err(af.error(format!("{name} needs an hmac_secret")));
            }
        }
        if algorithms.contains(&alg) {
            return Err(af.error(format!("duplicate algorithm \"{name}\"")));
        }
        algorithms.push(alg);
    }
    let has_hmac = algorithms
        .iter()
        .any(|a| a.family() == AlgorithmFamily::Hmac);
    let has_public = algorithms
        .iter()
        .any(|a| a.family() != AlgorithmFamily::Hmac);
    if p.leeway_seconds > MAX_LEEWAY_SECONDS {
        return Err(f
            .key("leeway_seconds")
            .error(format!("must be at most {MAX_LEEWAY_SECONDS}")));
    }
    for (i, c) in p.required_claims.iter().enumerate() {
        if c.is_empty() || c.len() > MAX_NAME_LENGTH {
            return Err(f
                .key("required_claims")
                .index(i)
                .error("must be 1-256 characters"));
        }
    }
    let scope_claim = p
        .scope_claim
        .as_deref()
        .map(|c| claim_path(c, &f.key("scope_claim")))
        .transpose()?;
    let hmac = match (&p.hmac_secret, p.allow_hmac) {
        (None, _) => None,
        (Some(_), false) => {
            return Err(f
                .key("hmac_secret")
                .error("an HMAC secret needs allow_hmac: true"))
        }
        (Some(s), true) => {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s.trim_end_matches('='))
                .map_err(|e| f.key("hmac_secret").error(format!("not base64url: {e}")))?;
            if bytes.len() < 32 {
                return Err(f
                    .key("hmac_secret")
                    .error("must be at least 32 bytes (256 bits)"));
            }
            if !has_hmac {
                return Err(f.key("hmac_secret").error("no HS256/384/512 in algorithms"));
            }
            Some(DecodingKey::from_secret(&bytes))
        }
    };
    let (inline_keys, remote) = match &p.jwks {
        None => {
            if has_public {
                return Err(f
                    .key("jwks")
                    .error("public-key algorithms need jwks (inline or remote)"));
            }
            (Some(KeySet::default()), None)
        }
        Some(RawJwks::Inline(doc)) => {
            let bytes = serde_json::to_vec(doc).unwrap_or_default();
            let set = KeySet::parse(&bytes).map_err(|e| f.key("jwks.inline").error(e))?;
            if set.is_empty() {
                return Err(f.key("jwks.inline").error("has no usable key"));
            }
            (Some(set), None)
        }
        Some(RawJwks::Remote(r)) => {
            // Fetched key sets replace the provider's keys, so an inline secret would be lost.
            if hmac.is_some() {
                return Err(f
                    .key("hmac_secret")
                    .error("cannot be combined with jwks.remote; use a separate provider"));
            }
            (None, Some(check_remote(r, &f.key("jwks.remote"))?))
        }
    };
    let inline_keys = match (inline_keys, hmac) {
        (Some(mut set), Some(secret)) => {
            set.add_hmac(secret);
            Some(set)
        }
        (set, _) => set,
    };
    let plan_claim = p
        .plan_claim
        .as_deref()
        .map(|c| claim_path(c, &f.key("plan_claim")))
        .transpose()?;
    if let Some(plan) = &p.plan {
        check_label(plan, &f.key("plan"))?;
    }
    Ok(Provider {
        name: p.name.clone(),
        issuer: p.issuer.clone(),
        audiences: p.audiences.clone(),
        algorithms,
        leeway: p.leeway_seconds,
        required_claims: p.required_claims.clone(),
        scope_claim,
        inline_keys,
        remote,
        plan_claim,
        plan: p.plan.clone(),
    })
}

fn check_remote(r: &RawRemote, f: &Field) -> Result<Remote, ConfigError> {
    if r.cluster.is_empty() || r.cluster.len() > MAX_NAME_LENGTH {
        return Err(f.key("cluster").error("must be 1-256 characters"));
    }
    if !r.path.starts_with('/') {
        return Err(f
            .key("path")
            .error(format!("\"{}\" must start with '/'", r.path)));
    }
    if !(1..=86_400).contains(&r.refresh_seconds) {
        return Err(f
            .key("refresh_seconds")
            .error("must be between 1 and 86400"));
    }
    if !(1..=60_000).contains(&r.timeout_ms) {
        return Err(f.key("timeout_ms").error("must be between 1 and 60000"));
    }
    if !(1..=3600).contains(&r.min_refetch_seconds) {
        return Err(f
            .key("min_refetch_seconds")
            .error("must be between 1 and 3600"));
    }
    Ok(Remote {
        cluster: r.cluster.clone(),
        authority: r.authority.clone().unwrap_or_else(|| r.cluster.clone()),
        path: r.path.clone(),
        refresh_seconds: r.refresh_seconds,
        timeout_ms: r.timeout_ms,
        min_refetch_seconds: r.min_refetch_seconds,
    })
}
