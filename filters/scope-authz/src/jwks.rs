//! Verification keys: a JWKS document (RFC 7517) parsed into keys bound to an algorithm family.
//!
//! Every key carries the algorithms it may verify: an RSA key only RS*/PS*, a P-256 key only
//! ES256, an Ed25519 key only EdDSA, and the configured HMAC secret only HS*. So an RSA public
//! key can never be used as an HMAC secret, whatever a token's header says. Symmetric (`oct`)
//! keys in a JWKS are never accepted: HMAC needs the explicit inline secret.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::Value;
use std::rc::Rc;

/// Largest JWKS document accepted (inline or fetched).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most keys kept from one document.
pub const MAX_KEYS: usize = 64;
const MAX_KID_BYTES: usize = 256;

#[derive(Clone)]
pub struct Key {
    pub kid: Option<String>,
    /// The algorithms this key may verify.
    pub algorithms: &'static [Algorithm],
    pub key: DecodingKey,
    /// The key's type and public material (decoded), so two documents can be compared and a
    /// cached token can tell whether the key that verified it is still served.
    pub id: Rc<[u8]>,
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

impl Key {
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg) && self.key.family() == alg.family()
    }
}

#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
    /// Keys of the document that were skipped (unsupported type, encryption keys, too weak).
    pub skipped: usize,
}

const RSA_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
const HMAC_ALGS: &[Algorithm] = &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

impl KeySet {
    /// Parses a JWKS document. Unusable keys are skipped (counted in `skipped`); a document
    /// that is not a JWKS is an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(format!("JWKS is larger than {MAX_JWKS_BYTES} bytes"));
        }
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| "not a JWKS: no \"keys\" array".to_string())?;
        let mut set = KeySet::default();
        for k in keys {
            if set.keys.len() >= MAX_KEYS {
                set.skipped += 1;
                continue;
            }
            match parse_key(k) {
                Some(key) => set.keys.push(key),
                None => set.skipped += 1,
            }
        }
        Ok(set)
    }

    pub fn add_hmac(&mut self, secret: DecodingKey) {
        self.keys.push(Key {
            kid: None,
            algorithms: HMAC_ALGS,
            key: secret,
            id: Rc::from(&b"oct"[..]),
        });
    }

    /// Whether both sets hold the same keys (kid, algorithms, material) in the same order, so
    /// installing `other` would change nothing.
    pub fn same_keys(&self, other: &KeySet) -> bool {
        self.keys.len() == other.keys.len()
            && self
                .keys
                .iter()
                .zip(&other.keys)
                .all(|(a, b)| a.kid == b.kid && a.algorithms == b.algorithms && a.id == b.id)
    }

    /// Whether a token with this `kid` and `alg`, verified by the key `id`, would still be
    /// verified by that same key in this set.
    pub fn still_verifies(&self, kid: Option<&str>, alg: Algorithm, id: &[u8]) -> bool {
        self.candidates(kid, alg).any(|k| &*k.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Candidate keys for a token: by `kid` when the token names one (HMAC secrets have no
    /// kid and match any), else every key that accepts the algorithm.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys.iter().filter(move |k| {
            k.accepts(alg)
                && match (kid, &k.kid) {
                    (Some(want), Some(have)) => want == have,
                    (Some(_), None) => alg.family() == AlgorithmFamily::Hmac,
                    (None, _) => true,
                }
        })
    }

    /// Whether the set names this `kid` at all (for any algorithm).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

fn b64(v: &Value, name: &str) -> Option<Vec<u8>> {
    let s = v.get(name)?.as_str()?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

fn parse_key(k: &Value) -> Option<Key> {
    if k.get("use")
        .and_then(Value::as_str)
        .is_some_and(|u| u != "sig")
    {
        return None;
    }
    let kid = match k.get("kid") {
        None => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_KID_BYTES => Some(s.clone()),
        Some(_) => return None,
    };
    let declared = match k.get("alg") {
        None => None,
        Some(Value::String(s)) => Some(crate::config::parse_algorithm(s)?),
        Some(_) => return None,
    };
    let (algorithms, key, id): (&'static [Algorithm], DecodingKey, Vec<u8>) =
        match k.get("kty").and_then(Value::as_str)? {
            "RSA" => {
                let n = b64(k, "n")?;
                let e = b64(k, "e")?;
                let n_len = n.iter().skip_while(|b| **b == 0).count();
                // 2048 to 4096 bits: weaker keys are refused, and the RSA implementation
                // (rsa 0.9 under jsonwebtoken) refuses larger ones at verification time.
                if !(256..=512).contains(&n_len) || e.is_empty() || e.len() > 8 {
                    return None;
                }
                let id = material(b"RSA", &[&n, &e]);
                (RSA_ALGS, DecodingKey::from_rsa_raw_components(&n, &e), id)
            }
            "EC" => {
                let (algs, len): (&'static [Algorithm], usize) =
                    match k.get("crv").and_then(Value::as_str)? {
                        "P-256" => (&[Algorithm::ES256], 32),
                        "P-384" => (&[Algorithm::ES384], 48),
                        _ => return None,
                    };
                let x = b64(k, "x")?;
                let y = b64(k, "y")?;
                if x.len() != len || y.len() != len {
                    return None;
                }
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let id = material(b"EC", &[&point]);
                (algs, DecodingKey::from_ec_der(&point), id)
            }
            "OKP" => {
                if k.get("crv").and_then(Value::as_str)? != "Ed25519" {
                    return None;
                }
                let x = b64(k, "x")?;
                if x.len() != 32 {
                    return None;
                }
                let id = material(b"OKP", &[&x]);
                (&[Algorithm::EdDSA], DecodingKey::from_ed_der(&x), id)
            }
            // `oct` (HMAC) keys are never taken from a JWKS.
            _ => return None,
        };
    let algorithms: &'static [Algorithm] = match declared {
        None => algorithms,
        Some(alg) => {
            let pos = algorithms.iter().position(|a| *a == alg)?;
            algorithms.get(pos..=pos)?
        }
    };
    Some(Key {
        kid,
        algorithms,
        key,
        id: Rc::from(id),
    })
}

/// `kty` then each part, length-prefixed: equal only for the same key.
fn material(kty: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(kty.len() + parts.iter().map(|p| p.len() + 4).sum::<usize>());
    out.extend_from_slice(kty);
    for p in parts {
        out.extend_from_slice(&u32::try_from(p.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const JWKS: &str = include_str!("../../../tests/integration/fixtures/scope-authz/jwks-1.json");

    #[test]
    fn fixture_keys_parse_with_their_algorithms() {
        let set = KeySet::parse(JWKS.as_bytes()).unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(set.skipped, 0);
        assert_eq!(set.candidates(Some("rsa1"), Algorithm::RS256).count(), 1);
        assert_eq!(set.candidates(Some("rsa1"), Algorithm::PS512).count(), 1);
        assert_eq!(set.candidates(Some("rsa1"), Algorithm::ES256).count(), 0);
        assert_eq!(set.candidates(Some("rsa1"), Algorithm::HS256).count(), 0);
        assert_eq!(set.candidates(Some("ec1"), Algorithm::ES256).count(), 1);
        assert_eq!(set.candidates(Some("ec1"), Algorithm::ES384).count(), 0);
        assert_eq!(set.candidates(Some("ed1"), Algorithm::EdDSA).count(), 1);
        assert_eq!(set.candidates(None, Algorithm::RS256).count(), 1);
        assert!(set.has_kid("ec1"));
        assert!(!set.has_kid("rsa2"));
    }

    #[test]
    fn unusable_keys_are_skipped_and_junk_refused() {
        let doc = r#"{"keys":[
            {"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
            {"kty":"RSA","n":"AQAB","e":"AQAB"},
            {"kty":"EC","crv":"P-521","x":"AA","y":"AA"},
            {"kty":"OKP","crv":"X25519","x":"AA"},
            {"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"},
            {"kty":"RSA","alg":"none","n":"AQAB","e":"AQAB"},
            {"kid":7},
            "x"
        ]}"#;
        let set = KeySet::parse(doc.as_bytes()).unwrap();
        assert_eq!((set.len(), set.skipped), (0, 8));
        for bad in ["", "[]", "{}", r#"{"keys":{}}"#, "{\"keys\":["] {
            assert!(KeySet::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        let huge = vec![b' '; MAX_JWKS_BYTES + 1];
        assert!(KeySet::parse(&huge).is_err());
    }

    #[test]
    fn declared_alg_narrows_the_key() {
        let mut v: Value = serde_json::from_str(JWKS).unwrap();
        v["keys"][0]["alg"] = "PS256".into();
        let set = KeySet::parse(v.to_string().as_bytes()).unwrap();
        assert_eq!(set.candidates(Some("rsa1"), Algorithm::RS256).count(), 0);
        assert_eq!(set.candidates(Some("rsa1"), Algorithm::PS256).count(), 1);
        // An RSA key declared as ES256 is inconsistent: skipped.
        v["keys"][0]["alg"] = "ES256".into();
        let set = KeySet::parse(v.to_string().as_bytes()).unwrap();
        assert_eq!(set.skipped, 1);
    }
}
