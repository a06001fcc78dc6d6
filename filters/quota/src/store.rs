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

/// Slot keys in shared data: `apim.quota.slot.<i>`.
pub const SLOTS: usize = 1024;
pub const SLOT_PREFIX: &str = "apim.quota.slot.";
/// A slot never grows past this; the entries nearest their end are evicted first.
pub const MAX_SLOT_BYTES: usize = 32 * 1024;
/// Longest counter name stored.
pub const MAX_ENTRY_NAME: usize = 1024;
/// CAS attempts before giving up on one request.
pub const MAX_ATTEMPTS: usize = 64;

/// What a shared-data `set` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetResult {
    Ok,
    CasMismatch,
    Failed,
}

/// Shared data as the counters need it (implemented over proxy-wasm in `filter.rs`).
pub trait SharedStore {
    /// The value and its CAS token; `(None, None)` when absent.
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> SetResult;
}

/// The slot a counter family lives in: FNV-1a, stable across workers and builds.
pub fn slot_key(name: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let slots = SLOTS as u64;
    format!("{SLOT_PREFIX}{}", h % slots)
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
    /// The store failed or stayed contended; nothing was charged.
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
        if value.len() + others_len > MAX_SLOT_BYTES {
            // Keep ours; evict the entries that end soonest until the slot fits.
            others.sort_by_key(|e| std::cmp::Reverse(e.window_end));
        }
        for e in &others {
            if value.len() + e.name.len() + 18 > MAX_SLOT_BYTES {
                break;
            }
            push_entry(&mut value, e.name, e.window_end, e.count);
        }
        match store.set(slot, &value, cas) {
            SetResult::Ok => return Outcome::Allowed(after),
            SetResult::CasMismatch => continue,
            SetResult::Failed => return Outcome::Error,
        }
    }
    Outcome::Error
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
