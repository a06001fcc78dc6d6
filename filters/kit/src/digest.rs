//! SHA-256 digests: computing them and reading them from config (hex or base64).

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

pub type Sha256Digest = [u8; 32];

pub fn sha256(data: &[u8]) -> Sha256Digest {
    Sha256::digest(data).into()
}

/// Reads a SHA-256 digest written as 64 hex digits, or as base64 (standard or URL-safe alphabet,
/// padded or not). The error says what was expected, never echoing the value.
pub fn parse_sha256(text: &str) -> Result<Sha256Digest, String> {
    let text = text.trim();
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut out = [0u8; 32];
        for (i, slot) in out.iter_mut().enumerate() {
            let pair = text.get(i * 2..i * 2 + 2).ok_or("bad hex")?;
            *slot = u8::from_str_radix(pair, 16).map_err(|e| e.to_string())?;
        }
        return Ok(out);
    }
    let trimmed = text.trim_end_matches('=');
    let decoded = if trimmed.contains(['-', '_']) {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed)
    } else {
        base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed)
    };
    match decoded {
        Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| format!("decodes to {} bytes; a SHA-256 digest has 32", bytes.len())),
        Err(_) => {
            Err("not a SHA-256 digest: expected 64 hex digits or 43/44 base64 characters".into())
        }
    }
}

pub fn to_hex(bytes: &[u8]) -> String {
    use core::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    // SHA-256("abc"), FIPS 180-2 appendix B.1.
    const ABC_HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn known_vector_in_every_spelling() {
        let d = sha256(b"abc");
        assert_eq!(to_hex(&d), ABC_HEX);
        let std_b64 = base64::engine::general_purpose::STANDARD.encode(d);
        let url_b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d);
        for spelling in [
            ABC_HEX.to_string(),
            ABC_HEX.to_uppercase(),
            std_b64,
            url_b64,
        ] {
            assert_eq!(parse_sha256(&spelling).unwrap(), d, "{spelling}");
        }
    }

    #[test]
    fn wrong_shapes_are_refused() {
        for bad in ["", "abc", &ABC_HEX[..62], "!!!!", "YWJj"] {
            assert!(parse_sha256(bad).is_err(), "{bad}");
        }
    }
}

/// A hasher for maps keyed by SHA-256 digests: the key is already uniformly distributed, so
/// folding its bytes is enough, and cheaper per request than SipHash. Lookups come from
/// clients, inserts only from config, so a client cannot degrade the table.
#[derive(Debug, Default, Clone, Copy)]
pub struct DigestHasher(u64);

impl core::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (dst, src) in word.iter_mut().zip(chunk) {
                *dst = *src;
            }
            self.0 = self.0.rotate_left(23) ^ u64::from_le_bytes(word);
        }
    }
}

/// A map from digests to `V` using [`DigestHasher`].
pub type DigestMap<V> =
    std::collections::HashMap<Sha256Digest, V, core::hash::BuildHasherDefault<DigestHasher>>;
