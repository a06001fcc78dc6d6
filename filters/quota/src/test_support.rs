//! Test doubles: an in-memory shared-data store with Envoy's CAS semantics.

use crate::store::{SetResult, SharedStore};
use std::collections::HashMap;
use std::sync::Mutex;

/// Shared data as Envoy keeps it: a CAS token per key, bumped on every write; a token is
/// checked only for a key that exists. `conflicts` makes the next N writes fail with a CAS
/// mismatch after another writer's change, as a racing worker would.
#[derive(Debug, Default)]
pub struct MemStore {
    inner: Mutex<(HashMap<String, (Vec<u8>, u32)>, u32)>,
    pub conflicts: Mutex<usize>,
    pub fail: Mutex<bool>,
}

impl MemStore {
    /// Nothing was ever written: no request was counted.
    pub fn is_untouched(&self) -> bool {
        self.inner.lock().map(|g| g.0.is_empty()).unwrap_or(false)
    }
}

impl SharedStore for MemStore {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        let g = self.inner.lock().unwrap();
        match g.0.get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        }
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> SetResult {
        if *self.fail.lock().unwrap() {
            return SetResult::Failed;
        }
        let mut g = self.inner.lock().unwrap();
        {
            let mut c = self.conflicts.lock().unwrap();
            if *c > 0 {
                *c -= 1;
                g.1 += 1;
                let next = g.1;
                if let Some(e) = g.0.get_mut(key) {
                    e.1 = next;
                }
            }
        }
        g.1 += 1;
        let next = g.1;
        match g.0.get_mut(key) {
            Some(e) => {
                if cas.is_some_and(|c| c != 0 && c != e.1) {
                    return SetResult::CasMismatch;
                }
                *e = (value.to_vec(), next);
            }
            None => {
                g.0.insert(key.to_string(), (value.to_vec(), next));
            }
        }
        SetResult::Ok
    }
}
