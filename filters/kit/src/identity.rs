//! The caller's identity, handed from the authenticating filter to the others.
//!
//! It travels as Envoy filter state under the single-segment key `apim_consumer` (multi-segment
//! keys do not round-trip in Envoy 1.40), written with `set_property` and read with
//! `get_property`. A client cannot forge filter state, unlike a header. The value is compact
//! JSON so that any filter, Lua script or access log can read it.

use serde::{Deserialize, Serialize};

/// The filter-state key.
pub const PROPERTY: &str = crate::context::CONSUMER;

/// Largest encoded identity a reader accepts.
pub const MAX_IDENTITY_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Consumer id (the API-key consumer, or a JWT `sub`).
    pub id: String,
    /// Commercial plan, used by `quota` and `graphql-guard` for per-plan limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Which filter established it (`api-key-auth`, `scope-authz`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

impl Identity {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// This identity, established by a later filter, layered over the one an earlier filter
    /// published. An identity only ever grows: the earlier consumer id, plan and groups stay
    /// (a token must not move a key holder to another plan or out of a group); this one's plan
    /// fills in only where the earlier had none; groups and scopes are the union; the source
    /// names both filters. Without an earlier identity this one is returned as it is.
    pub fn layered_over(self, earlier: Option<&Identity>) -> Identity {
        let Some(earlier) = earlier else {
            return self;
        };
        let mut merged = earlier.clone();
        if merged.plan.is_none() {
            merged.plan = self.plan;
        }
        for g in self.groups {
            if !merged.groups.contains(&g) {
                merged.groups.push(g);
            }
        }
        for s in self.scopes {
            if !merged.scopes.contains(&s) {
                merged.scopes.push(s);
            }
        }
        if !self.source.is_empty() && !merged.source.split('+').any(|s| s == self.source) {
            merged.source = if merged.source.is_empty() {
                self.source
            } else {
                format!("{}+{}", merged.source, self.source)
            };
        }
        merged
    }

    /// `None` for anything that is not a well-formed identity of bounded size.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > MAX_IDENTITY_BYTES {
            return None;
        }
        serde_json::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn round_trip_and_compact_form() {
        let id = Identity {
            id: "alice".into(),
            plan: Some("gold".into()),
            groups: vec!["partners".into()],
            scopes: vec![],
            source: "api-key-auth".into(),
        };
        let bytes = id.encode();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"id":"alice","plan":"gold","groups":["partners"],"source":"api-key-auth"}"#
        );
        assert_eq!(Identity::decode(&bytes), Some(id));
    }

    #[test]
    fn a_later_identity_adds_and_never_takes_away() {
        let key = Identity {
            id: "bob".into(),
            plan: Some("silver".into()),
            groups: vec!["partners".into()],
            scopes: vec!["pets:read".into()],
            source: "api-key-auth".into(),
        };
        let token = Identity {
            id: "user-7".into(),
            plan: Some("gold".into()),
            groups: vec!["ops".into(), "partners".into()],
            scopes: vec!["pets:write".into(), "pets:read".into()],
            source: "scope-authz".into(),
        };
        let merged = token.clone().layered_over(Some(&key));
        assert_eq!(merged.id, "bob");
        assert_eq!(merged.plan.as_deref(), Some("silver"));
        assert_eq!(merged.groups, vec!["partners", "ops"]);
        assert_eq!(merged.scopes, vec!["pets:read", "pets:write"]);
        assert_eq!(merged.source, "api-key-auth+scope-authz");
        // No plan before: the token's plan fills in.
        let planless = Identity {
            plan: None,
            ..key.clone()
        };
        assert_eq!(
            token.clone().layered_over(Some(&planless)).plan.as_deref(),
            Some("gold")
        );
        // Nothing before: the token's identity as it is; applied twice, no change.
        assert_eq!(token.clone().layered_over(None), token);
        assert_eq!(token.clone().layered_over(Some(&merged)), merged);
    }

    #[test]
    fn junk_is_refused() {
        for bad in [&b""[..], b"{", b"[]", b"{\"plan\":\"x\"}"] {
            assert_eq!(Identity::decode(bad), None, "{bad:?}");
        }
        let huge = vec![b' '; MAX_IDENTITY_BYTES + 1];
        assert_eq!(Identity::decode(&huge), None);
    }
}
