//! Path and query operations: the new `:path` (path and query) is computed from the old one.
//!
//! Query operations run in the order remove, rename, set, add; names are compared after
//! percent-decoding, exactly (query names are case-sensitive):
//! - `remove`: every copy of the parameter goes.
//! - `rename` `from → to`: every copy of `from` is renamed (values kept, position kept); copies
//!   of `to` already present stay.
//! - `set`: every copy is replaced by one `name=value` (at the first copy's place), or it is
//!   appended when absent.
//! - `add`: one more `name=value` is always appended.
//!
//! Values are templates, percent-encoded on output. The path itself may be replaced by a
//! template (typically using the captures of the rule's `captures` regex); the query is kept.

use crate::template::{Ctx, Refused, Template};
use kit::query::percent_decode;

#[derive(Debug, Clone, Default)]
pub struct QueryOps {
    pub remove: Vec<String>,
    pub rename: Vec<(String, String)>,
    pub set: Vec<(String, Template)>,
    pub add: Vec<(String, Template)>,
}

impl QueryOps {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.rename.is_empty()
            && self.set.is_empty()
            && self.add.is_empty()
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(
                HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
            ));
            out.push(char::from(
                HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0'),
            ));
        }
    }
}

fn name_of(pair: &str) -> Vec<u8> {
    percent_decode(pair.split_once('=').map_or(pair, |(k, _)| k))
}

fn pair(name: &str, value: &[u8]) -> String {
    let mut s = String::new();
    encode(name.as_bytes(), &mut s);
    s.push('=');
    encode(value, &mut s);
    s
}

/// A rendered path made safe for `:path`: it starts with `/`, and bytes that would end the
/// path or break the request line (controls, space, `?`, `#`, non-ASCII) are percent-encoded.
fn safe_path(rendered: &[u8]) -> String {
    let mut out = String::with_capacity(rendered.len() + 1);
    if rendered.first() != Some(&b'/') {
        out.push('/');
    }
    for &b in rendered {
        if (0x21..0x7f).contains(&b) && b != b'?' && b != b'#' {
            out.push(char::from(b));
        } else {
            encode(&[b], &mut out);
        }
    }
    out
}

/// The new path-and-query, or `None` when nothing changed.
pub fn rewrite(
    path_and_query: &str,
    new_path: Option<&Template>,
    ops: &QueryOps,
    ctx: &Ctx<'_>,
) -> Result<Option<String>, Refused> {
    if new_path.is_none() && ops.is_empty() {
        return Ok(None);
    }
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let path = match new_path {
        Some(t) => {
            let p = safe_path(&t.render_path(ctx)?);
            // A `.` or `..` segment (also as `%2E`), an encoded `/` or `\` (a value's `/` is
            // encoded as `%2F`) or an empty segment would let a value climb out of the path the
            // rule meant once the upstream decodes or normalises it: refused.
            if kit::request::path_is_ambiguous(&p) {
                return Err(Refused::AmbiguousPath);
            }
            p
        }
        None => path.to_string(),
    };
    let mut pairs: Vec<String> = query
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    for name in &ops.remove {
        pairs.retain(|p| name_of(p) != name.as_bytes());
    }
    for (from, to) in &ops.rename {
        for p in pairs.iter_mut() {
            if name_of(p) == from.as_bytes() {
                let value = p.split_once('=').map(|(_, v)| v.to_string());
                let mut renamed = String::new();
                encode(to.as_bytes(), &mut renamed);
                if let Some(v) = value {
                    renamed.push('=');
                    renamed.push_str(&v);
                }
                *p = renamed;
            }
        }
    }
    for (name, tpl) in &ops.set {
        let fresh = pair(name, &tpl.render(ctx)?);
        match pairs.iter().position(|p| name_of(p) == name.as_bytes()) {
            Some(at) => {
                let mut i = 0;
                pairs.retain(|p| {
                    let keep = i == at || name_of(p) != name.as_bytes();
                    i += 1;
                    keep
                });
                if let Some(slot) = pairs.get_mut(at) {
                    *slot = fresh;
                }
            }
            None => pairs.push(fresh),
        }
    }
    for (name, tpl) in &ops.add {
        pairs.push(pair(name, &tpl.render(ctx)?));
    }
    let mut out = path;
    if !pairs.is_empty() {
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    Ok((out != path_and_query).then_some(out))
}
