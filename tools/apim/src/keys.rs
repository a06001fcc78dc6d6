//! API keys: made from the OS's randomness, stored in config only as SHA-256 digests.

use base64::Engine as _;
use kit::digest::{sha256, to_hex};
use std::io::Read as _;

/// 32 random bytes: 256 bits, beyond any guessing; base64url so it fits headers, query
/// parameters and cookies without escaping.
pub fn new(consumer: Option<&str>) -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("the OS random source failed: {e}"))?;
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let entry = entry(&key);
    Ok(match consumer {
        None => format!("key:   {key}\nentry: {entry}"),
        Some(id) => {
            let consumer = serde_json::json!({"id": id, "keys": [serde_json::from_str::<serde_json::Value>(&entry).unwrap_or_default()]});
            format!("key:      {key}\nconsumer: {consumer}")
        }
    })
}

pub fn hash(key: &str) -> String {
    entry(key)
}

pub fn hash_stdin() -> Result<String, String> {
    let mut key = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut key)
        .map_err(|e| format!("reading stdin: {e}"))?;
    // A trailing newline from `echo` or a file is not part of the key.
    Ok(entry(key.trim_end_matches(['\n', '\r'])))
}

fn entry(key: &str) -> String {
    serde_json::json!({"sha256": to_hex(&sha256(key.as_bytes()))}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_holds_the_digest() {
        assert_eq!(
            hash("abc"),
            r#"{"sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}"#
        );
    }

    #[test]
    fn new_keys_are_random_and_their_entry_matches() {
        let a = new(None).unwrap();
        let b = new(None).unwrap();
        assert_ne!(a, b);
        let key = a.lines().next().unwrap().trim_start_matches("key:").trim();
        assert_eq!(key.len(), 43);
        assert!(a.ends_with(&hash(key)));
        let c = new(Some("alice")).unwrap();
        assert!(c.contains(r#""id":"alice""#), "{c}");
    }
}
