//! JSON Pointer (RFC 6901), compiled once at config time, and the edits built on it.
//!
//! Every function is iterative over the pointer's tokens (never recursive over the document),
//! returns a value or `None`/`Err`, and never panics on any document.

use serde_json::{Map, Value};

/// A parsed pointer: `""` is the whole document, `/a/0/b~1c` is `["a", "0", "b/c"]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pointer(Vec<String>);

impl Pointer {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(Self(Vec::new()));
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!(
                "\"{text}\" is not a JSON Pointer (it must start with '/')"
            ));
        };
        let mut tokens = Vec::new();
        for raw in rest.split('/') {
            let mut token = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => token.push('~'),
                        Some('1') => token.push('/'),
                        _ => return Err(format!("\"{text}\": '~' must be followed by 0 or 1")),
                    }
                } else {
                    token.push(c);
                }
            }
            tokens.push(token);
        }
        Ok(Self(tokens))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The last token (the member name or index the pointer ends with).
    pub fn last(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    /// Whether `self` is a proper prefix of `other` (moving a value into itself is refused).
    pub fn is_proper_prefix_of(&self, other: &Pointer) -> bool {
        self.0.len() < other.0.len() && other.0.starts_with(&self.0)
    }

    fn split(&self) -> Option<(&[String], &str)> {
        self.0
            .split_last()
            .map(|(last, parent)| (parent, last.as_str()))
    }
}

/// An array index token: digits without a leading zero (RFC 6901 §4).
fn index(token: &str) -> Option<usize> {
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    if !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

fn step<'v>(value: &'v Value, token: &str) -> Option<&'v Value> {
    match value {
        Value::Object(map) => map.get(token),
        Value::Array(items) => index(token).and_then(|i| items.get(i)),
        _ => None,
    }
}

fn step_mut<'v>(value: &'v mut Value, token: &str) -> Option<&'v mut Value> {
    match value {
        Value::Object(map) => map.get_mut(token),
        Value::Array(items) => index(token).and_then(|i| items.get_mut(i)),
        _ => None,
    }
}

pub fn get<'v>(doc: &'v Value, ptr: &Pointer) -> Option<&'v Value> {
    ptr.0.iter().try_fold(doc, |v, t| step(v, t))
}

fn get_tokens_mut<'v>(doc: &'v mut Value, tokens: &[String]) -> Option<&'v mut Value> {
    tokens.iter().try_fold(doc, |v, t| step_mut(v, t))
}

pub fn get_mut<'v>(doc: &'v mut Value, ptr: &Pointer) -> Option<&'v mut Value> {
    get_tokens_mut(doc, &ptr.0)
}

/// Removes and returns the value at `ptr`; `None` if absent. Removing the root is refused.
pub fn remove(doc: &mut Value, ptr: &Pointer) -> Option<Value> {
    let (parent, last) = ptr.split()?;
    match get_tokens_mut(doc, parent)? {
        Value::Object(map) => map.remove(last),
        Value::Array(items) => {
            let i = index(last)?;
            (i < items.len()).then(|| items.remove(i))
        }
        _ => None,
    }
}

/// RFC 6902 `add`: the parent must exist; into an array, inserts at an index `<= len` or
/// appends with `-`; into an object, adds or replaces the member; at the root, replaces all.
pub fn add(doc: &mut Value, ptr: &Pointer, value: Value) -> Result<(), String> {
    let Some((parent, last)) = ptr.split() else {
        *doc = value;
        return Ok(());
    };
    match get_tokens_mut(doc, parent) {
        Some(Value::Object(map)) => {
            map.insert(last.to_string(), value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let i = if last == "-" {
                items.len()
            } else {
                index(last).ok_or_else(|| format!("\"{last}\" is not an array index"))?
            };
            if i > items.len() {
                return Err(format!("index {i} is past the end of the array"));
            }
            items.insert(i, value);
            Ok(())
        }
        Some(_) => Err("the parent is not an object or an array".into()),
        None => Err("the parent does not exist".into()),
    }
}

/// The `set` operation: like `add`, but creates missing intermediate objects, and replaces an
/// existing array element instead of inserting before it.
pub fn set(doc: &mut Value, ptr: &Pointer, value: Value) -> Result<(), String> {
    let Some((parent, last)) = ptr.split() else {
        *doc = value;
        return Ok(());
    };
    let mut cur = doc;
    for token in parent {
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        cur = match cur {
            Value::Object(map) => map
                .entry(token.clone())
                .or_insert_with(|| Value::Object(Map::new())),
            Value::Array(items) => index(token)
                .and_then(|i| items.get_mut(i))
                .ok_or_else(|| format!("no array element \"{token}\""))?,
            _ => return Err(format!("cannot descend into a scalar at \"{token}\"")),
        };
    }
    if cur.is_null() {
        *cur = Value::Object(Map::new());
    }
    match cur {
        Value::Object(map) => {
            map.insert(last.to_string(), value);
            Ok(())
        }
        Value::Array(items) => {
            if last == "-" {
                items.push(value);
                return Ok(());
            }
            let i = index(last).ok_or_else(|| format!("\"{last}\" is not an array index"))?;
            let len = items.len();
            if i == len {
                items.push(value);
            } else if let Some(slot) = items.get_mut(i) {
                *slot = value;
            } else {
                return Err(format!("index {i} is past the end of the array"));
            }
            Ok(())
        }
        _ => Err("the parent is a scalar".into()),
    }
}

impl Pointer {
    /// Replaces the last token (used by `rename`).
    pub fn rename_last(&mut self, to: &str) {
        if let Some(last) = self.0.last_mut() {
            *last = to.to_string();
        }
    }
}
