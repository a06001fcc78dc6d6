//! A bounded cache of verified tokens, keyed by the token itself.
//!
//! A repeated token costs one hash and one lookup instead of a signature check. Like Envoy's
//! own `jwt_cache`, the key is the token (compared in full), not a digest: a digest of a
//! ~600-byte token costs more than the whole lookup in Wasm, and an exact compare means no
//! collision can ever hand one caller another's grant. The map's hash is a fast non-keyed one;
//! only tokens that passed a signature check are inserted, so a client cannot fill the map
//! with crafted collisions. An entry
//! never outlives the token's `exp` (leeway is not extended to cached entries), the cache holds
//! at most `capacity` entries, and when a provider's keys change, its entries whose verifying
//! key is no longer served (or no longer selected by the token's `kid` and `alg`) are dropped,
//! so a key removed from a JWKS stops verifying cached tokens at once, while tokens of the keys
//! that stay (and of other providers) keep their cached verdicts. Each Envoy worker has its
//! own.

use crate::jwks::KeySet;
use crate::token::Verified;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

/// FxHash-style: 8 bytes at a time, one rotate, xor and multiply each.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        for b in chunks.remainder() {
            self.add(u64::from(*b));
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FastHasher {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type TokenMap = HashMap<Box<str>, Entry, BuildHasherDefault<FastHasher>>;

#[derive(Debug)]
struct Entry {
    until: u64,
    verified: Rc<Verified>,
}

#[derive(Debug, Default)]
pub struct TokenCache {
    map: TokenMap,
    capacity: usize,
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            map: TokenMap::default(),
            capacity,
        }
    }

    pub fn get(&mut self, token: &str, now: u64) -> Option<Rc<Verified>> {
        let entry = self.map.get(token)?;
        if now < entry.until {
            return Some(Rc::clone(&entry.verified));
        }
        self.map.remove(token);
        None
    }

    pub fn insert(&mut self, token: &str, verified: Rc<Verified>, now: u64) {
        let until = verified.exp;
        if self.capacity == 0 || now >= until {
            return;
        }
        if self.map.len() >= self.capacity {
            self.map.retain(|_, e| now < e.until);
        }
        if self.map.len() >= self.capacity {
            // Still full of live entries: drop one (any) rather than grow.
            if let Some(k) = self.map.keys().next().cloned() {
                self.map.remove(&k);
            }
        }
        self.map.insert(token.into(), Entry { until, verified });
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Provider `provider` now has the keys `keys`: drops its entries that `keys` would not
    /// verify with the same key; other providers' entries stay.
    pub fn retain_verifiable(&mut self, provider: usize, keys: &KeySet) {
        self.map.retain(|_, e| {
            let v = &e.verified;
            v.provider != provider || keys.still_verifies(v.kid.as_deref(), v.alg, &v.key)
        });
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn v(exp: u64) -> Rc<Verified> {
        Rc::new(Verified {
            provider: 0,
            key: Rc::from(&b""[..]),
            kid: None,
            alg: jsonwebtoken::Algorithm::RS256,
            exp,
            sub: None,
            scopes: vec![],
            forwarded: vec![],
            identity: kit::identity::Identity::default(),
            identity_bytes: vec![],
            claims: None,
        })
    }

    #[test]
    fn entries_never_outlive_exp() {
        let mut c = TokenCache::new(4);
        c.insert("a", v(100), 50);
        assert!(c.get("a", 99).is_some());
        assert!(c.get("ab", 99).is_none());
        assert!(c.get("a", 100).is_none());
        assert!(c.is_empty());
        // Already expired (accepted within leeway): not cached.
        c.insert("a", v(100), 100);
        assert!(c.is_empty());
    }

    #[test]
    fn capacity_is_a_bound() {
        let mut c = TokenCache::new(3);
        for i in 0..10u64 {
            c.insert(&i.to_string(), v(1000), 1);
            assert!(c.len() <= 3);
        }
        // Expired entries go first.
        let mut c = TokenCache::new(2);
        c.insert("old", v(10), 1);
        c.insert("live", v(1000), 1);
        c.insert("new", v(1000), 20);
        assert!(c.get("live", 20).is_some());
        assert!(c.get("new", 20).is_some());
        let mut off = TokenCache::new(0);
        off.insert("x", v(1000), 1);
        assert!(off.is_empty());
    }
}
