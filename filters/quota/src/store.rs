//! The local tier: counters in proxy-wasm shared data, updated with compare-and-swap.
//!
//! Shared data is one key-value map per `vm_id`, shared by every worker of the Envoy process
//! and kept across config updates. Envoy's `set` honours a CAS token only for a key that
//! exists: two workers inserting the same new key at once would both succeed and one count
//! would be lost. So keys are never created on the request path: a fixed table of
//! [`SLOTS`] slot keys is created once per worker at `on_configure` (only those missing, so a
//! config update keeps every count), and a counter lives inside the slot its name hashes to.
//!
//! One slot holds every limit of one (plan, counting key), so one read and one CAS write check
//! and charge all the plan's limits at once: a request is admitted only if it fits in all of
//! them, and then charged to all of them, atomically. A CAS mismatch (another worker wrote the
//! slot in between) re-reads and decides again; nothing is ever admitted on a stale count.
//!
//! Slot value: repeated `[u16 name length][name][u64 window end][u64 count]`, big-endian.
//! Entries whose window has ended are dropped on the next write of their slot.
//!
//! Slots are chosen by SipHash-2-4 under a secret 128-bit key ([`HashKey`]), so a client cannot
//! aim many counting keys at one slot. The key is random per Envoy process and shared by all
//! its worker VMs through shared data ([`shared_hash_key`]): every worker must put one counter
//! in the same slot. A live entry (its window not ended) is never evicted: when a slot has no
//! room for a new counter, the request gets [`Outcome::Full`] and the config decides (deny by
//! default), counted. Losing [`MAX_ATTEMPTS`] compare-and-swaps in a row is
//! [`Outcome::Contended`], never an admission by itself.

/// Slot keys in shared data: `apim.quota.slot.<i>`.
pub const SLOTS: usize = 1024;
pub const SLOT_PREFIX: &str = "apim.quota.slot.";
/// A new counter family is never added past this; a live entry is never evicted to make room.
pub const MAX_SLOT_BYTES: usize = 32 * 1024;
/// A family already stored in the slot (any of its entries, live or ended) re-adds its
/// counters up to this: room new families can never take, so callers already in the slot
/// keep counting when others have filled it.
pub const MAX_SLOT_BYTES_ESTABLISHED: usize = MAX_SLOT_BYTES + MAX_SLOT_BYTES / 4;
/// Longest counter name stored.
pub const MAX_ENTRY_NAME: usize = 1024;
/// CAS attempts before giving up on one request.
pub const MAX_ATTEMPTS: usize = 64;

/// What a shared-data `set` answered.
pub use kit::host::SetResult;

/// Shared data as the counters need it (implemented over `kit::host::Host` in `stage.rs`).
pub trait SharedStore {
    /// The value and its CAS token; `(None, None)` when absent.
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> SetResult;
}

/// The secret key of the slot hash.
pub type HashKey = [u8; 16];

/// Where the process's slot-hash key lives in shared data.
pub const HASH_KEY_NAME: &str = "apim.quota.hash_key";

/// SipHash-2-4 (Aumasson & Bernstein) of `data` under `key`: a keyed hash whose outputs a
/// client who does not know the key cannot predict, so it cannot pick keys that share a slot.
pub fn siphash24(key: &HashKey, data: &[u8]) -> u64 {
    let k0 = u64::from_le_bytes(key.first_chunk::<8>().copied().unwrap_or_default());
    let k1 = u64::from_le_bytes(key.last_chunk::<8>().copied().unwrap_or_default());
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        let [mut v0, mut v1, mut v2, mut v3] = *v;
        v0 = v0.wrapping_add(v1);
        v1 = v1.rotate_left(13) ^ v0;
        v0 = v0.rotate_left(32);
        v2 = v2.wrapping_add(v3);
        v3 = v3.rotate_left(16) ^ v2;
        v0 = v0.wrapping_add(v3);
        v3 = v3.rotate_left(21) ^ v0;
        v2 = v2.wrapping_add(v1);
        v1 = v1.rotate_left(17) ^ v2;
        v2 = v2.rotate_left(32);
        *v = [v0, v1, v2, v3];
    }
    let mut compress = |m: u64| {
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    };
    let chunks = data.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        compress(u64::from_le_bytes(c.try_into().unwrap_or_default()));
    }
    let mut last = (data.len() as u64) << 56;
    for (i, b) in rest.iter().enumerate() {
        last |= u64::from(*b) << (8 * i);
    }
    compress(last);
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The slot a counter family lives in, under the process's secret key.
pub fn slot_key(key: &HashKey, name: &[u8]) -> String {
    let slots = SLOTS as u64;
    format!("{SLOT_PREFIX}{}", siphash24(key, name) % slots)
}

/// 16 random bytes from std's `RandomState` (seeded from the OS: WASI `random_get` on
/// wasm32-wasip1, which Envoy serves from its random source), without a new dependency.
pub fn random_key() -> HashKey {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    let mut out = [0u8; 16];
    for (i, half) in out.chunks_exact_mut(8).enumerate() {
        let mut h = state.build_hasher();
        h.write_usize(i);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// The slot-hash key every VM of this Envoy process uses: the one in shared data, or `fresh`
/// stored there by the first VM to configure (Envoy runs the first `on_configure` of a plugin
/// on the main thread, a canary, before any worker VM exists, so workers find it set). After
/// storing, the value is read back and that is what is used, so two writers agree on the last.
pub fn shared_hash_key(store: &dyn SharedStore, fresh: HashKey) -> HashKey {
    let stored = |store: &dyn SharedStore| {
        store
            .get(HASH_KEY_NAME)
            .0
            .and_then(|v| HashKey::try_from(v.as_slice()).ok())
    };
    if let Some(k) = stored(store) {
        return k;
    }
    let _ = store.set(HASH_KEY_NAME, &fresh, None);
    stored(store).unwrap_or(fresh)
}

/// The key this VM should use on its first request: the one in shared data when it holds a
/// valid key (another VM may have stored its own between our store and read-back at
/// configure time), else `current`.
pub fn confirmed_hash_key(store: &dyn SharedStore, current: HashKey) -> HashKey {
    store
        .get(HASH_KEY_NAME)
        .0
        .and_then(|v| HashKey::try_from(v.as_slice()).ok())
        .unwrap_or(current)
}

/// Creates the slots that do not exist yet; existing counts are kept.
pub fn init_slots(store: &dyn SharedStore) -> usize {
    let mut created = 0;
    for i in 0..SLOTS {
        let key = format!("{SLOT_PREFIX}{i}");
        if store.get(&key).0.is_none() && store.set(&key, &[], None) == SetResult::Ok {
            created += 1;
        }
    }
    created
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: Vec<u8>,
    pub window_end: u64,
    pub count: u64,
}

/// An entry read in place from a slot value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntryRef<'a> {
    name: &'a [u8],
    window_end: u64,
    count: u64,
}

/// Reads a slot in place; anything malformed ends the list (a count is lost, never a trap).
fn entries(bytes: &[u8]) -> Vec<EntryRef<'_>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some((len, r)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len));
        let Some((name, r)) = r.split_at_checked(len) else {
            break;
        };
        let Some((end, r)) = r.split_first_chunk::<8>() else {
            break;
        };
        let Some((count, r)) = r.split_first_chunk::<8>() else {
            break;
        };
        out.push(EntryRef {
            name,
            window_end: u64::from_be_bytes(*end),
            count: u64::from_be_bytes(*count),
        });
        rest = r;
    }
    out
}

/// Reads a slot (owned entries, for tests and tools).
pub fn decode(bytes: &[u8]) -> Vec<Entry> {
    entries(bytes)
        .into_iter()
        .map(|e| Entry {
            name: e.name.to_vec(),
            window_end: e.window_end,
            count: e.count,
        })
        .collect()
}

fn push_entry(out: &mut Vec<u8>, name: &[u8], window_end: u64, count: u64) {
    let Ok(len) = u16::try_from(name.len()) else {
        return;
    };
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(name);
    out.extend_from_slice(&window_end.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
}

pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.name.len() + 18).sum());
    for e in entries {
        push_entry(&mut out, &e.name, e.window_end, e.count);
    }
    out
}

/// One limit to check: its counter name, its size and the end of its current window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: Vec<u8>,
    pub requests: u64,
    pub window_end: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Charged; the count of each limit after this request, in order.
    Allowed(Vec<u64>),
    /// Not charged; the count of each limit before this request, in order.
    Limited(Vec<u64>),
    /// The slot has no room for this caller's counters without evicting a live one; nothing
    /// was charged. `free_at`: when the soonest live entry of the slot ends (Unix seconds).
    Full { free_at: u64 },
    /// [`MAX_ATTEMPTS`] compare-and-swaps in a row lost; nothing was charged.
    Contended,
    /// The store failed; nothing was charged.
    Error,
}

/// Checks and charges `cost` to every limit at once. With `shadow`, a request over a limit is
/// reported as limited and not charged, exactly as when enforcing (the caller lets it through).
pub fn admit(
    store: &dyn SharedStore,
    slot: &str,
    checks: &[Check],
    cost: u64,
    now: u64,
) -> Outcome {
    for _ in 0..MAX_ATTEMPTS {
        let (bytes, cas) = store.get(slot);
        let bytes = bytes.unwrap_or_default();
        let mut others = entries(&bytes);
        // Is this family stored here already (an entry of it, even ended)? Then it may use
        // the room kept for established families.
        let established = others
            .iter()
            .any(|e| checks.iter().any(|c| c.name.as_slice() == e.name));
        // Ended windows go; a counter of ours whose window differs (a config change moved it)
        // starts again from zero.
        others.retain(|e| e.window_end > now);
        let mut counts = Vec::with_capacity(checks.len());
        let mut over = false;
        for c in checks {
            let n = others
                .iter()
                .find(|e| e.name == c.name.as_slice() && e.window_end == c.window_end)
                .map_or(0, |e| e.count);
            over |= n.saturating_add(cost) > c.requests;
            counts.push(n);
        }
        if over {
            return Outcome::Limited(counts);
        }
        others.retain(|e| !checks.iter().any(|c| c.name.as_slice() == e.name));
        let mut value = Vec::with_capacity(bytes.len() + 64);
        let mut after = Vec::with_capacity(checks.len());
        for (c, n) in checks.iter().zip(&counts) {
            let n = n.saturating_add(cost);
            push_entry(&mut value, &c.name, c.window_end, n);
            after.push(n);
        }
        let others_len: usize = others.iter().map(|e| e.name.len() + 18).sum();
        let room = if established {
            MAX_SLOT_BYTES_ESTABLISHED
        } else {
            MAX_SLOT_BYTES
        };
        if value.len() + others_len > room {
            // Every entry left is live: evicting one would reset another caller's count
            // inside its window. Refuse to make room; the caller decides what a full slot means.
            let free_at = others.iter().map(|e| e.window_end).min().unwrap_or(now);
            return Outcome::Full { free_at };
        }
        for e in &others {
            push_entry(&mut value, e.name, e.window_end, e.count);
        }
        match store.set(slot, &value, cas) {
            SetResult::Ok => return Outcome::Allowed(after),
            SetResult::CasMismatch => continue,
            SetResult::Failed => return Outcome::Error,
        }
    }
    Outcome::Contended
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
