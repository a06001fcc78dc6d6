//! `apim keys add|rotate|revoke FILE CONSUMER`: a consumer's keys changed inside the product
//! file, the rest of the file left as written. A new key is printed once (stdout) and only its
//! SHA-256 digest is written. The file is checked again before it is replaced, and replaced
//! whole (a temporary file renamed over it), so an interrupted run leaves the old file.
//!
//! The consumer's `keys` field is rewritten as a block list (comments inside it are not kept);
//! when the consumer has none, one is added after its last line.

use super::model::{Consumer, Key};
use super::time::{now_secs, rfc3339};
use crate::yaml_pos::{Kind, Node};
use kit::digest::{sha256, to_hex};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new key, with an optional validity window.
    Add {
        not_before: Option<String>,
        expires_at: Option<String>,
    },
    /// A new key valid now; every key still valid expires after `overlap_secs` (or keeps an
    /// earlier expiry of its own), so clients move over without an outage.
    Rotate { overlap_secs: u64 },
    /// Remove the key whose digest starts with this (at least 8 hex digits, one key only).
    Revoke { digest_prefix: String },
}

/// What a change did: the new text, the plaintext key (add, rotate), and a summary.
pub struct Edited {
    pub text: String,
    pub key: Option<String>,
    pub summary: String,
}

/// `7d`, `36h`, `90m`, `600s` or plain seconds.
pub fn duration(s: &str) -> Result<u64, String> {
    let (n, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at_checked(i).unwrap_or((s, "")),
        None => (s, "s"),
    };
    let n: u64 = n
        .parse()
        .map_err(|_| format!("\"{s}\": expected a duration like 7d, 36h, 90m or 600s"))?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("\"{s}\": the unit is s, m, h or d")),
    };
    n.checked_mul(unit)
        .ok_or_else(|| format!("\"{s}\": too long"))
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The item of `consumers` whose `id` is `id`.
fn consumer_node<'a>(doc: &'a Node, id: &str) -> Result<&'a Node, String> {
    let Some(Kind::Seq(items)) = doc.get("consumers").map(|c| &c.kind) else {
        return Err("the file has no consumers list".to_string());
    };
    items
        .iter()
        .find(|c| c.get("id").and_then(Node::str) == Some(id))
        .ok_or_else(|| format!("no consumer \"{id}\""))
}

/// Lines (0-based, end exclusive) a block value that starts after line `key_line` spans: the
/// lines indented deeper than `col` (0-based column of its key), an indentless `- ` list at
/// `col` for a sequence, and blank lines between them.
fn value_end(lines: &[&str], key_line: usize, col: usize, seq: bool) -> usize {
    let mut end = key_line + 1;
    let mut i = key_line + 1;
    while let Some(line) = lines.get(i) {
        let t = line.trim_start_matches(' ');
        if t.is_empty() || t.starts_with('#') && indent_of(line) > col {
            i += 1;
            continue;
        }
        let ind = indent_of(line);
        if ind > col || (seq && ind == col && (t.starts_with("- ") || t == "-")) {
            i += 1;
            end = i;
        } else {
            break;
        }
    }
    end
}

fn key_line(k: &Key) -> String {
    let mut parts = vec![format!("sha256: {}", k.sha256.v)];
    for (name, v) in [("not_before", &k.not_before), ("expires_at", &k.expires_at)] {
        if let Some(v) = v {
            parts.push(format!("{name}: \"{}\"", v.v));
        }
    }
    format!("- {{{}}}", parts.join(", "))
}

/// A new key and its digest (hex).
fn new_key() -> Result<(String, String), String> {
    let key = crate::keys::random_key()?;
    let digest = to_hex(&sha256(key.as_bytes()));
    Ok((key, digest))
}

/// Applies `change` to consumer `id` of the product file `text`.
pub fn edit(text: &str, id: &str, change: &Change) -> Result<Edited, String> {
    let checked = super::load(text)?;
    let product = checked
        .product
        .as_ref()
        .ok_or("the file is not a product file")?;
    let consumer: &Consumer = product
        .consumer(id)
        .ok_or_else(|| format!("no consumer \"{id}\""))?;
    let docs = crate::yaml_pos::load(text)?;
    let doc = docs.first().ok_or("empty file")?;
    let node = consumer_node(doc, id)?;
    let at = |v: String| super::read::At { v, pos: node.pos };
    let mut keys: Vec<Key> = consumer.keys.clone();
    let (plaintext, summary) = match change {
        Change::Add {
            not_before,
            expires_at,
        } => {
            let (key, digest) = new_key()?;
            let summary = format!("consumer \"{id}\": new key {digest}");
            keys.push(Key {
                pos: node.pos,
                sha256: at(digest),
                not_before: not_before.clone().map(at),
                expires_at: expires_at.clone().map(at),
            });
            (Some(key), summary)
        }
        Change::Rotate { overlap_secs } => {
            let until = rfc3339(now_secs().saturating_add(*overlap_secs));
            for k in &mut keys {
                // A key already expired, or expiring sooner, keeps its own expiry.
                let sooner = k
                    .expires_at
                    .as_ref()
                    .is_some_and(|e| e.v.as_str() <= until.as_str());
                if !sooner {
                    k.expires_at = Some(at(until.clone()));
                }
            }
            let (key, digest) = new_key()?;
            let summary =
                format!("consumer \"{id}\": new key {digest}; the others expire by {until}");
            keys.push(Key {
                pos: node.pos,
                sha256: at(digest),
                not_before: None,
                expires_at: None,
            });
            (Some(key), summary)
        }
        Change::Revoke { digest_prefix } => {
            let prefix = digest_prefix.to_ascii_lowercase();
            if prefix.len() < 8 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("--key: at least 8 hex digits of the key's sha256".to_string());
            }
            let matching: Vec<usize> = keys
                .iter()
                .enumerate()
                .filter(|(_, k)| k.sha256.v.to_ascii_lowercase().starts_with(&prefix))
                .map(|(i, _)| i)
                .collect();
            let [one] = matching.as_slice() else {
                return Err(format!(
                    "consumer \"{id}\": {} keys' sha256 start with {prefix}, one must",
                    matching.len()
                ));
            };
            let removed = keys.remove(*one);
            (
                None,
                format!("consumer \"{id}\": key {} removed", removed.sha256.v),
            )
        }
    };
    let new_text = splice(text, node, &keys)?;
    // The edit must leave the product file no less valid than it was.
    let after = super::load(&new_text)?;
    let new_error = after.findings.iter().find(|f| {
        f.severity == super::read::Severity::Error
            && !checked
                .findings
                .iter()
                .any(|b| b.field == f.field && b.message == f.message)
    });
    if let Some(e) = new_error {
        return Err(format!(
            "the edit would break the file: {}",
            e.render("FILE")
        ));
    }
    Ok(Edited {
        text: new_text,
        key: plaintext,
        summary,
    })
}

/// `text` with consumer `node`'s `keys` replaced by `keys` (or added).
fn splice(text: &str, node: &Node, keys: &[Key]) -> Result<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let Kind::Map(members) = &node.kind else {
        return Err("a consumer is not a mapping".to_string());
    };
    let first = node
        .pos
        .line
        .checked_sub(1)
        .and_then(|l| lines.get(l))
        .ok_or("a consumer without a line")?;
    if first.trim_start().starts_with("- {") {
        return Err(
            "a consumer written on one line ({id: …}) cannot be edited: write it as a block"
                .to_string(),
        );
    }
    // The consumer's own keys are at the column of its first key.
    let col = node.pos.col.saturating_sub(1);
    let pad = " ".repeat(col);
    let mut block = vec![format!("{pad}keys:")];
    block.extend(keys.iter().map(|k| format!("{pad}  {}", key_line(k))));
    if keys.is_empty() {
        block = vec![format!("{pad}keys: []")];
    }
    let (start, end) = match members.iter().find(|(k, _, _)| k == "keys") {
        Some((_, at, value)) => {
            let line = at.line.saturating_sub(1);
            // `keys: [...]` on the key's line may go on over deeper lines; a block list may be
            // indentless (`- ` at the key's column).
            let flow = value.pos.line == at.line;
            (line, value_end(&lines, line, col, !flow))
        }
        None => {
            // After the consumer's last line: the end of its last member's value.
            let last = members
                .last()
                .map_or(node.pos.line, |m| m.1.line)
                .saturating_sub(1);
            let end = value_end(&lines, last, col, true);
            (end, end)
        }
    };
    let mut out: Vec<String> = lines.iter().take(start).map(|s| s.to_string()).collect();
    out.extend(block);
    out.extend(lines.iter().skip(end).map(|s| s.to_string()));
    let mut text = out.join("\n");
    text.push('\n');
    Ok(text)
}

/// `apim keys …`: edits FILE in place, prints the new key (if any) on stdout, once.
pub fn run(file: &str, id: &str, change: &Change) -> std::process::ExitCode {
    let fail = |e: String, code: u8| {
        eprintln!("{file}: {e}");
        std::process::ExitCode::from(code)
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return fail(e.to_string(), 2),
    };
    let edited = match edit(&text, id, change) {
        Ok(e) => e,
        Err(e) => return fail(e, 1),
    };
    let tmp = format!("{file}.apim-keys.tmp");
    if let Err(e) = std::fs::write(&tmp, &edited.text).and_then(|()| std::fs::rename(&tmp, file)) {
        let _ = std::fs::remove_file(&tmp);
        return fail(e.to_string(), 2);
    }
    eprintln!("{file}: {}", edited.summary);
    if let Some(key) = edited.key {
        eprintln!("note: the key is shown once: give it to the consumer; {file} holds only its digest. Render and deploy to put it in effect.");
        println!("{key}");
    }
    std::process::ExitCode::SUCCESS
}

#[cfg(test)]
#[path = "keys_edit_tests.rs"]
mod tests;
