//! Shared data as process memory: what proxy-wasm's shared data gives a Wasm VM id (every
//! worker sees the same keys, writes are compare-and-swap), for every worker of the process
//! that loaded this module.
//!
//! Sharded by key so workers touching different keys do not wait on each other; one lock per
//! operation, never held across a host call. Semantics follow Envoy's proxy-wasm shared data,
//! which quota's store and scope-authz's fetch lease were written against: a write with no CAS
//! token (or token 0) always succeeds, a write with a stale token fails with `CasMismatch`, and
//! every successful write gives the key a new non-zero token.

use kit::host::SetResult;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

const SHARDS: usize = 16;

/// Longest key and value kept: a bound on what a config could make the module hold per key.
pub const MAX_KEY_BYTES: usize = 1024;
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

type Shard = Mutex<HashMap<String, (Vec<u8>, u32)>>;

pub struct Store {
    shards: Vec<Shard>,
}

/// FNV-1a: which shard a key lives in. A keyed hash is not needed here: a key picking its
/// shard only decides which lock it waits on, and each shard's map keeps std's keyed hasher
/// against collisions. SipHash here cost a quarter of quota's admission natively.
fn shard_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Store {
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, key: &str) -> Option<&Shard> {
        let index = usize::try_from(shard_hash(key) % SHARDS as u64).unwrap_or(0);
        self.shards.get(index)
    }

    pub fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        let Some(shard) = self.shard(key) else {
            return (None, None);
        };
        // A poisoned shard (a panic while it was held, which the code under it cannot do) is
        // still a consistent map: every write replaces one entry whole.
        let map = shard.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(key) {
            Some((value, cas)) => (Some(value.clone()), Some(*cas)),
            None => (None, None),
        }
    }

    /// The CAS token of `key` alone (no copy of the value).
    pub fn cas(&self, key: &str) -> Option<u32> {
        let shard = self.shard(key)?;
        let map = shard.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).map(|(_, cas)| *cas)
    }

    pub fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> SetResult {
        if key.len() > MAX_KEY_BYTES || value.len() > MAX_VALUE_BYTES {
            return SetResult::Failed;
        }
        let Some(shard) = self.shard(key) else {
            return SetResult::Failed;
        };
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        let current = map.get(key).map(|(_, c)| *c);
        if let (Some(want), Some(have)) = (cas.filter(|c| *c != 0), current) {
            if want != have {
                return SetResult::CasMismatch;
            }
        }
        let next = match current.unwrap_or(0).wrapping_add(1) {
            0 => 1,
            n => n,
        };
        map.insert(key.to_owned(), (value.to_vec(), next));
        SetResult::Ok
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

/// The module's one store (each `.so` has its own, as each Wasm VM id has its own).
pub fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(Store::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_swap_as_envoy_shared_data() {
        let s = Store::new();
        assert_eq!(s.get("k"), (None, None));
        // No token, or token 0: always written.
        assert_eq!(s.set("k", b"a", None), SetResult::Ok);
        let (v, cas) = s.get("k");
        assert_eq!(v.as_deref(), Some(b"a".as_slice()));
        let cas = cas.unwrap();
        assert_ne!(cas, 0);
        assert_eq!(s.set("k", b"b", Some(cas)), SetResult::Ok);
        // The token moved on: the old one is stale.
        assert_eq!(s.set("k", b"c", Some(cas)), SetResult::CasMismatch);
        assert_eq!(s.get("k").0.as_deref(), Some(b"b".as_slice()));
        assert_eq!(s.set("k", b"d", Some(0)), SetResult::Ok);
        assert_eq!(
            s.set("k", &vec![0; MAX_VALUE_BYTES + 1], None),
            SetResult::Failed
        );
    }

    #[test]
    fn workers_counting_at_once_lose_nothing() {
        let s = std::sync::Arc::new(Store::new());
        // Created first, as quota creates its slots: a write without a token always succeeds.
        assert_eq!(s.set("n", &0u64.to_le_bytes(), None), SetResult::Ok);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = std::sync::Arc::clone(&s);
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        loop {
                            let (v, cas) = s.get("n");
                            let n = v.map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
                            if s.set("n", &(n + 1).to_le_bytes(), cas) == SetResult::Ok {
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = u64::from_le_bytes(s.get("n").0.unwrap().try_into().unwrap());
        assert_eq!(n, 2000);
    }
}
