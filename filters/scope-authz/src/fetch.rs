//! When to fetch a remote JWKS, and how fetched keys are shared by the workers of one Envoy.
//!
//! Every worker has its own VM (root context), but proxy-wasm shared data is common to all the
//! VMs of one `vm_id` in an Envoy process. A fetched document is stored there, stamped with its
//! fetch time ([`encode`]); every worker polls it on its timer and installs a newer one. Before
//! fetching, a worker takes a lease (a compare-and-swap on a second key holding the lease's
//! expiry; the key is created free at `on_configure`, since a set without a CAS on a missing key
//! always succeeds), looks at shared data once more, and fetches only if the document is still
//! missing or old; the fetcher stores the document before it frees the lease. So one fetch per
//! refresh period serves the whole process. Shared data outlives a config push: a new config
//! installs the stored document at once when its JWKS source is the same.
//!
//! Rules, per provider:
//! - no keys yet: fetch at once, then retry every `min_refetch_seconds` while it fails
//!   (requests meanwhile get 503: fail closed);
//! - keys loaded: fetch again `refresh_seconds` after the last success; a failed refresh keeps
//!   the old keys and retries every `min_refetch_seconds`;
//! - a token naming an unknown `kid`: fetch again, at most once per `min_refetch_seconds`.

use crate::config::Remote;

/// Per-worker, per-provider fetch bookkeeping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchState {
    /// Fetch time of the keys in use (from shared data or our own fetch).
    pub loaded_at: Option<u64>,
    /// When this worker last started a fetch.
    pub last_attempt: Option<u64>,
    /// The pending `dispatch_http_call`, if any.
    pub in_flight: Option<u32>,
    /// The CAS token of the shared document last read: unchanged, it is not read again.
    pub seen_cas: Option<u32>,
}

pub fn should_fetch(remote: &Remote, st: &FetchState, refetch_wanted: bool, now: u64) -> bool {
    if st.in_flight.is_some() {
        return false;
    }
    let since = |t: Option<u64>| t.map_or(u64::MAX, |t| now.saturating_sub(t));
    let retry_ok = since(st.last_attempt) >= remote.min_refetch_seconds;
    match st.loaded_at {
        None => retry_ok,
        Some(at) => {
            let age = now.saturating_sub(at);
            (age >= remote.refresh_seconds && retry_ok)
                || (refetch_wanted && age >= remote.min_refetch_seconds && retry_ok)
        }
    }
}

/// Shared-data key of a JWKS document, by where it is fetched from.
pub fn shared_key(remote: &Remote) -> String {
    format!(
        "apim.scope_authz.jwks|{}|{}|{}",
        remote.cluster, remote.authority, remote.path
    )
}

pub fn lease_key(remote: &Remote) -> String {
    format!("{}|lease", shared_key(remote))
}

/// Shared-data key where a worker that met an unknown `kid` stamps the fetch time of the
/// document that lacked it, so that whoever fetches (another worker, or a native module's main
/// thread) fetches a newer one.
pub fn wanted_key(remote: &Remote) -> String {
    format!("{}|wanted", shared_key(remote))
}

/// Whether a stamp under [`wanted_key`] asks for a newer document than the one fetched at
/// `loaded_at`: it names that document (or a later one), not an older one a fetch since has
/// replaced. [`should_fetch`] bounds how often it is honoured.
pub fn wanted_since(stamp: Option<&[u8]>, loaded_at: Option<u64>) -> bool {
    let Some(lacking) = stamp
        .and_then(|b| b.first_chunk::<8>())
        .map(|b| u64::from_be_bytes(*b))
    else {
        return false;
    };
    lacking >= loaded_at.unwrap_or(0)
}

/// `fetched_at` (8 bytes, big-endian) followed by the document.
pub fn encode(fetched_at: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&fetched_at.to_be_bytes());
    out.extend_from_slice(body);
    out
}

pub fn decode(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (at, body) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*at), body))
}

/// Whether a lease (its expiry, as stored) is free at `now`.
pub fn lease_free(stored: Option<&[u8]>, now: u64) -> bool {
    stored
        .and_then(|b| b.first_chunk::<8>())
        .is_none_or(|b| u64::from_be_bytes(*b) <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn remote() -> Remote {
        Remote {
            cluster: "idp".into(),
            authority: "idp".into(),
            path: "/jwks".into(),
            refresh_seconds: 300,
            timeout_ms: 1000,
            min_refetch_seconds: 10,
        }
    }

    #[test]
    fn fetch_rules() {
        let r = remote();
        let st = |loaded: Option<u64>, attempt: Option<u64>, flight: Option<u32>| FetchState {
            loaded_at: loaded,
            last_attempt: attempt,
            in_flight: flight,
            seen_cas: None,
        };
        // (state, refetch wanted, now, expected)
        let cases = [
            (st(None, None, None), false, 100, true),
            (st(None, None, Some(1)), false, 100, false),
            (st(None, Some(95), None), false, 100, false),
            (st(None, Some(90), None), false, 100, true),
            (st(Some(100), Some(100), None), false, 399, false),
            (st(Some(100), Some(100), None), false, 400, true),
            (st(Some(100), Some(395), None), false, 400, false),
            (st(Some(100), Some(100), None), true, 105, false),
            (st(Some(100), Some(100), None), true, 110, true),
            (st(Some(100), Some(100), None), false, 110, false),
        ];
        for (i, (s, want, now, expected)) in cases.iter().enumerate() {
            assert_eq!(should_fetch(&r, s, *want, *now), *expected, "case {i}");
        }
    }

    #[test]
    fn shared_encoding_and_lease() {
        let b = encode(42, b"{}");
        assert_eq!(decode(&b), Some((42, &b"{}"[..])));
        assert_eq!(decode(b"short"), None);
        assert!(lease_free(None, 5));
        assert!(lease_free(Some(&5u64.to_be_bytes()), 5));
        assert!(!lease_free(Some(&6u64.to_be_bytes()), 5));
        assert!(lease_free(Some(b""), 5));
        assert_ne!(shared_key(&remote()), lease_key(&remote()));
        assert_ne!(lease_key(&remote()), wanted_key(&remote()));
        // (stamp, loaded_at, wanted)
        let cases = [
            (None, Some(100), false),
            (Some(&b"short"[..]), Some(100), false),
            (Some(&99u64.to_be_bytes()[..]), Some(100), false),
            (Some(&100u64.to_be_bytes()[..]), Some(100), true),
            (Some(&101u64.to_be_bytes()[..]), Some(100), true),
            (Some(&0u64.to_be_bytes()[..]), None, true),
        ];
        for (stamp, loaded, want) in cases {
            assert_eq!(wanted_since(stamp, loaded), want, "{stamp:?} {loaded:?}");
        }
    }
}
