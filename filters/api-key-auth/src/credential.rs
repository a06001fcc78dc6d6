//! Finding the API key in a request.
//!
//! Every configured source is read, in order, and every copy found is collected, so that a
//! request presenting two different keys (two headers, a header and a query parameter, ...) is
//! refused as ambiguous instead of silently using the first. Copies are bounded.

use crate::config::Source;
use kit::query::{cookie_values, query_values};
use kit::request::RequestHead;

/// Most copies of a credential looked at; more is refused (400) rather than scanned.
pub const MAX_COPIES: usize = 16;

/// Where a key was found, so it can be stripped before forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Header(String),
    Authorization,
    Query(String),
    Cookie(String),
}

/// What the request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    Missing,
    /// One key (possibly sent several times), and every place it was found.
    One {
        key: Vec<u8>,
        locations: Vec<Location>,
    },
    /// Two or more different keys.
    Ambiguous,
    /// More than [`MAX_COPIES`] copies.
    TooMany,
}

pub fn find(sources: &[Source], head: &RequestHead) -> Presented {
    let mut found: Vec<(Vec<u8>, Location)> = Vec::new();
    let mut push = |value: Vec<u8>, loc: Location| -> bool {
        found.push((value, loc));
        found.len() <= MAX_COPIES
    };
    for source in sources {
        let more = match source {
            Source::Header(name) => head
                .all(name)
                .flat_map(copies)
                .all(|v| push(trim(v).to_vec(), Location::Header(name.clone()))),
            Source::Authorization(scheme) => {
                head.all("authorization")
                    .flat_map(copies)
                    .all(|v| match split_scheme(v, scheme) {
                        Some(key) => push(key.to_vec(), Location::Authorization),
                        None => true,
                    })
            }
            Source::Query(name) => head.query().is_none_or(|q| {
                query_values(q, name).all(|v| push(v, Location::Query(name.clone())))
            }),
            Source::Cookie(name) => head.all("cookie").all(|h| {
                cookie_values(h, name).all(|v| push(v.to_vec(), Location::Cookie(name.clone())))
            }),
        };
        if !more {
            return Presented::TooMany;
        }
    }
    let Some((first, _)) = found.first() else {
        return Presented::Missing;
    };
    if found.iter().any(|(v, _)| v != first) {
        return Presented::Ambiguous;
    }
    let key = first.clone();
    let mut locations: Vec<Location> = Vec::new();
    for (_, loc) in found {
        if !locations.contains(&loc) {
            locations.push(loc);
        }
    }
    Presented::One { key, locations }
}

/// The copies of a header the host joined with ','. API keys never contain a comma (they are
/// base64url), so a comma can only separate two presented credentials.
fn copies(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',')
}

/// `<scheme> <credentials>` with the scheme compared case-insensitively (RFC 9110 §11.1).
fn split_scheme<'a>(value: &'a [u8], scheme: &str) -> Option<&'a [u8]> {
    let value = trim(value);
    let space = value.iter().position(|b| *b == b' ')?;
    let (s, rest) = (value.get(..space)?, value.get(space..)?);
    s.eq_ignore_ascii_case(scheme.as_bytes())
        .then(|| trim(rest))
}

/// Whether one `Authorization` value uses `scheme`.
pub fn is_scheme(value: &[u8], scheme: &str) -> bool {
    split_scheme(value, scheme).is_some()
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |e| e + 1);
    s.get(start..end).unwrap_or_default()
}

/// Why a presented key cannot even be looked up. Keys made by `apim key new` are base64url;
/// anything outside visible ASCII cannot be one, and saying so leaks nothing.
pub fn malformed(key: &[u8], max_len: usize) -> Option<String> {
    if key.is_empty() {
        Some("The API key is empty.".into())
    } else if key.len() > max_len {
        Some(format!("The API key is longer than {max_len} bytes."))
    } else if !key.iter().all(|b| (0x21..0x7f).contains(b)) {
        Some("The API key contains characters that are not visible ASCII.".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn all_sources() -> Vec<Source> {
        vec![
            Source::Header("x-api-key".into()),
            Source::Authorization("ApiKey".into()),
            Source::Query("api_key".into()),
            Source::Cookie("api_key".into()),
        ]
    }

    fn one(key: &str, locs: Vec<Location>) -> Presented {
        Presented::One {
            key: key.as_bytes().to_vec(),
            locations: locs,
        }
    }

    #[test]
    fn find_table() {
        let h = || Location::Header("x-api-key".into());
        let q = || Location::Query("api_key".into());
        let c = || Location::Cookie("api_key".into());
        let cases: Vec<(Vec<(&str, &str)>, Presented)> = vec![
            (vec![(":path", "/")], Presented::Missing),
            (
                vec![(":path", "/"), ("x-api-key", "k1")],
                one("k1", vec![h()]),
            ),
            (
                vec![(":path", "/"), ("x-api-key", "  k1 ")],
                one("k1", vec![h()]),
            ),
            (
                vec![(":path", "/"), ("authorization", "apikey k1")],
                one("k1", vec![Location::Authorization]),
            ),
            (
                vec![(":path", "/"), ("authorization", "Bearer tok")],
                Presented::Missing,
            ),
            (
                vec![(":path", "/"), ("authorization", "ApiKey")],
                Presented::Missing,
            ),
            (vec![(":path", "/x?api_key=k%31")], one("k1", vec![q()])),
            (
                vec![(":path", "/"), ("cookie", "a=b; api_key=k1")],
                one("k1", vec![c()]),
            ),
            (
                vec![(":path", "/x?api_key=k1"), ("x-api-key", "k1")],
                one("k1", vec![h(), q()]),
            ),
            (
                vec![(":path", "/"), ("x-api-key", "k1"), ("x-api-key", "k1")],
                one("k1", vec![h()]),
            ),
            (
                vec![(":path", "/"), ("x-api-key", "k1"), ("x-api-key", "k2")],
                Presented::Ambiguous,
            ),
            (
                vec![(":path", "/x?api_key=k2"), ("x-api-key", "k1")],
                Presented::Ambiguous,
            ),
            (vec![(":path", "/"), ("x-api-key", "")], one("", vec![h()])),
            // The host joins repeated headers with ','.
            (
                vec![(":path", "/"), ("x-api-key", "k1,k2")],
                Presented::Ambiguous,
            ),
            (
                vec![(":path", "/"), ("x-api-key", "k1, k1")],
                one("k1", vec![h()]),
            ),
            (
                vec![(":path", "/"), ("authorization", "Bearer t,ApiKey k1")],
                one("k1", vec![Location::Authorization]),
            ),
        ];
        for (headers, want) in cases {
            let head = RequestHead::from_pairs(&headers);
            assert_eq!(find(&all_sources(), &head), want, "{headers:?}");
        }
    }

    #[test]
    fn copies_are_bounded() {
        let mut headers = vec![(":path", "/")];
        headers.extend(std::iter::repeat_n(("x-api-key", "same"), MAX_COPIES + 1));
        assert_eq!(
            find(&all_sources(), &RequestHead::from_pairs(&headers)),
            Presented::TooMany
        );
        headers.truncate(MAX_COPIES + 1);
        assert!(matches!(
            find(&all_sources(), &RequestHead::from_pairs(&headers)),
            Presented::One { .. }
        ));
    }

    /// Every byte a client can put in a query key: found, and either refused as malformed or a
    /// key of visible ASCII only (never trimmed into another key, never a panic).
    #[test]
    fn every_byte_in_a_key_is_found_and_judged() {
        for b in 0u8..=255 {
            let path = format!("/x?api_key=k%{b:02X}k");
            let head = RequestHead::from_pairs(&[(":path", path.as_str())]);
            let Presented::One { key, .. } = find(&all_sources(), &head) else {
                panic!("byte {b:#04x}: not found");
            };
            assert_eq!(key, [b'k', b, b'k'], "byte {b:#04x}");
            let visible = (0x21..0x7f).contains(&b);
            assert_eq!(malformed(&key, 256).is_none(), visible, "byte {b:#04x}");
        }
    }

    #[test]
    fn malformed_table() {
        assert_eq!(malformed(b"abc", 256), None);
        assert!(malformed(b"", 256).unwrap().contains("empty"));
        assert!(malformed(&[b'a'; 257], 256)
            .unwrap()
            .contains("longer than 256"));
        assert!(malformed(b"a b", 256).unwrap().contains("visible ASCII"));
        assert!(malformed(&[0xff, 0xfe], 256)
            .unwrap()
            .contains("visible ASCII"));
    }
}
