//! Automatic persisted queries (Apollo's APQ): the documents the guard has seen in full, so that
//! a later request carrying only `extensions.persistedQuery.sha256Hash` is checked exactly as the
//! full query would be (the caller's plan, operation name and variables), and charged its cost.
//!
//! The registry lives in proxy-wasm shared data (one per VM id, shared by every worker). It is a
//! fixed table of `max_entries` slots; a document goes to the slot its digest names, replacing
//! whatever was there (a cache: a client whose entry was replaced gets
//! `PERSISTED_QUERY_NOT_FOUND` and resends the full query, which is checked). A slot holds the
//! 32-byte digest then the document; a read re-hashes the document and uses it only when both
//! agree with the digest asked for, so nothing but a full query whose SHA-256 is that digest can
//! ever stand for it. Bounded: `max_entries` × (32 + `max_query_bytes`) bytes.

use kit::digest::{sha256, Sha256Digest as Digest};

/// Where the registry's slots are kept: shared data in Envoy, a map in tests.
pub trait ApqStore {
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    fn set(&self, key: &str, value: &[u8]);
}

/// The registry's bounds (see the config's `apq` block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApqLimits {
    /// Slots; 0 turns registration off (every unknown hash is not found).
    pub max_entries: u32,
    /// Documents longer than this are not registered.
    pub max_query_bytes: usize,
}

const KEY_PREFIX: &str = "apim.graphql_guard.apq.";

fn slot_key(limits: &ApqLimits, digest: &Digest) -> Option<String> {
    if limits.max_entries == 0 {
        return None;
    }
    let mut n = [0u8; 4];
    for (d, s) in n.iter_mut().zip(digest.iter()) {
        *d = *s;
    }
    let slot = u32::from_be_bytes(n) % limits.max_entries;
    Some(format!("{KEY_PREFIX}{slot}"))
}

/// Remembers `query` under its own SHA-256 (the caller has checked that it is `digest`).
pub fn register(store: &dyn ApqStore, limits: &ApqLimits, digest: &Digest, query: &str) {
    if query.len() > limits.max_query_bytes {
        return;
    }
    let Some(key) = slot_key(limits, digest) else {
        return;
    };
    if store
        .get(&key)
        .is_some_and(|v| v.get(..32) == Some(&digest[..]))
    {
        return;
    }
    let mut value = Vec::with_capacity(32 + query.len());
    value.extend_from_slice(digest);
    value.extend_from_slice(query.as_bytes());
    store.set(&key, &value);
}

/// The document registered for `digest`, if its slot still holds it.
pub fn lookup(store: &dyn ApqStore, limits: &ApqLimits, digest: &Digest) -> Option<String> {
    let key = slot_key(limits, digest)?;
    let value = store.get(&key)?;
    let (stored, doc) = (value.get(..32)?, value.get(32..)?);
    if stored != &digest[..] || doc.len() > limits.max_query_bytes || sha256(doc) != *digest {
        return None;
    }
    String::from_utf8(doc.to_vec()).ok()
}

/// No registry: every hash is unknown (unit tests of the pure logic).
pub struct NoStore;

impl ApqStore for NoStore {
    fn get(&self, _key: &str) -> Option<Vec<u8>> {
        None
    }
    fn set(&self, _key: &str, _value: &[u8]) {}
}

/// An in-memory registry for unit tests and the fuzz targets.
#[derive(Default)]
pub struct MemStore(pub std::cell::RefCell<std::collections::HashMap<String, Vec<u8>>>);

impl ApqStore for MemStore {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.borrow().get(key).cloned()
    }
    fn set(&self, key: &str, value: &[u8]) {
        self.0.borrow_mut().insert(key.to_string(), value.to_vec());
    }
}

/// Envoy's shared data, through the host.
pub struct SharedData<'a>(pub &'a dyn kit::host::Host);

impl ApqStore for SharedData<'_> {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.shared_data(key).0
    }
    fn set(&self, key: &str, value: &[u8]) {
        // Last writer wins: a slot is a cache entry, never a counter.
        let _ = self.0.set_shared_data(key, value, None);
    }
}

#[cfg(test)]
#[path = "apq_tests.rs"]
mod tests;
