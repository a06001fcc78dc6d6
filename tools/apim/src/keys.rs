//! API keys: made from the OS's randomness, stored in config only as SHA-256 digests.

use base64::Engine as _;
use kit::digest::{sha256, to_hex};
use std::io::Read as _;

/// Who the key is for (`apim key new --consumer ID --plan P --scopes "a b" --groups g`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub id: String,
    pub plan: Option<String>,
    pub scopes: Vec<String>,
    pub groups: Vec<String>,
}

/// `apim key new`: a new key and its config entry (or a whole consumer's).
pub fn new(consumer: Option<&Consumer>) -> Result<String, String> {
    let key = random_key()?;
    Ok(match consumer {
        None => format!("key:   {key}\nentry: {}", entry(&key)),
        Some(c) => {
            let consumer = consumer_entry(c, &key)?;
            // stdout stays what to keep; what to do with it goes to stderr.
            eprintln!("{}", notes(c).join("\n"));
            format!("key:      {key}\nconsumer: {consumer}")
        }
    })
}

/// A new key. 32 random bytes: 256 bits, beyond any guessing; base64url so it fits headers,
/// query parameters and cookies without escaping.
pub fn random_key() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("the OS random source failed: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What to do with a new consumer's key and entry, and what it cannot do yet.
pub fn notes(c: &Consumer) -> Vec<String> {
    let mut notes = vec![
        "note: the key is shown once: give it to the consumer; the config holds only its digest. \
         Add the consumer entry to api-key-auth's \"consumers\"."
            .to_string(),
    ];
    if c.scopes.is_empty() {
        notes.push(
            "note: no --scopes: on routes where scope-authz requires scopes (the demo's /pets \
             needs pets:read) this consumer gets 403 insufficient_scope."
                .to_string(),
        );
    }
    notes
}

/// The consumer's entry for api-key-auth's `consumers`, checked by api-key-auth's own parser
/// (so an id, plan, group or scope it would refuse is refused here, naming the option).
pub fn consumer_entry(c: &Consumer, key: &str) -> Result<String, String> {
    // Written by hand to keep the order a reader expects: id, plan, groups, scopes, keys.
    let q = |v: &str| serde_json::Value::from(v).to_string();
    let list = |items: &[String]| serde_json::Value::from(items.to_vec()).to_string();
    let mut entry = format!("{{\"id\":{}", q(&c.id));
    if let Some(plan) = &c.plan {
        entry.push_str(&format!(",\"plan\":{}", q(plan)));
    }
    if !c.groups.is_empty() {
        entry.push_str(&format!(",\"groups\":{}", list(&c.groups)));
    }
    if !c.scopes.is_empty() {
        entry.push_str(&format!(",\"scopes\":{}", list(&c.scopes)));
    }
    let digest = to_hex(&sha256(key.as_bytes()));
    entry.push_str(&format!(",\"keys\":[{{\"sha256\":\"{digest}\"}}]}}"));
    let config = format!("{{\"consumers\":[{entry}]}}");
    api_key_auth::config::Config::parse(config.as_bytes()).map_err(|e| {
        // `consumers[0].plan: …` → `--plan: …`
        let option = match e.path.split('.').nth(1).map(|f| f.split('[').next()) {
            Some(Some("id")) => "--consumer",
            Some(Some("plan")) => "--plan",
            Some(Some("groups")) => "--groups",
            Some(Some("scopes")) => "--scopes",
            _ => "consumer",
        };
        format!("{option}: {}", e.message)
    })?;
    Ok(entry)
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
        let c = Consumer {
            id: "alice".into(),
            ..Consumer::default()
        };
        let out = new(Some(&c)).unwrap();
        assert!(
            out.contains(r#"consumer: {"id":"alice","keys":[{"sha256":""#),
            "{out}"
        );
    }
}

#[cfg(test)]
mod consumer_tests {
    use super::*;

    fn consumer(id: &str, plan: Option<&str>, scopes: &[&str], groups: &[&str]) -> Consumer {
        Consumer {
            id: id.into(),
            plan: plan.map(str::to_string),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn notes_say_what_a_consumer_without_scopes_meets() {
        let with = consumer("a", None, &["pets:read"], &[]);
        let without = consumer("a", None, &[], &[]);
        assert_eq!(notes(&with).len(), 1);
        let n = notes(&without);
        assert_eq!(n.len(), 2);
        assert!(
            n[1].contains("no --scopes") && n[1].contains("403"),
            "{n:?}"
        );
    }

    #[test]
    fn consumer_entries_are_complete_or_refused_naming_the_option() {
        let digest = to_hex(&sha256(b"k"));
        let cases: Vec<(Consumer, Result<String, &str>)> = vec![
            (
                consumer(
                    "alice",
                    Some("gold"),
                    &["pets:read", "pets:write"],
                    &["partners"],
                ),
                Ok(format!(
                    r#"{{"id":"alice","plan":"gold","groups":["partners"],"scopes":["pets:read","pets:write"],"keys":[{{"sha256":"{digest}"}}]}}"#
                )),
            ),
            (
                consumer("bob", None, &[], &[]),
                Ok(format!(
                    r#"{{"id":"bob","keys":[{{"sha256":"{digest}"}}]}}"#
                )),
            ),
            (
                consumer("a b", None, &[], &[]),
                Err("--consumer: \"a b\" must be"),
            ),
            (consumer("a", Some("gold plan"), &[], &[]), Err("--plan: ")),
            (consumer("a", None, &["a\"b"], &[]), Err("--scopes: ")),
            (consumer("a", None, &[], &["é"]), Err("--groups: ")),
        ];
        for (c, want) in cases {
            let got = consumer_entry(&c, "k");
            match want {
                Ok(json) => assert_eq!(got, Ok(json), "{c:?}"),
                Err(prefix) => {
                    let e = got.unwrap_err();
                    assert!(e.starts_with(prefix), "{c:?}: {e}");
                }
            }
        }
    }
}
