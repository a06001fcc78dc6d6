//! Header operations, applied in a fixed order: remove, rename, replace, add, append.
//!
//! Semantics (names are case-insensitive; they are lowercased at config time):
//! - `remove`: every copy of the header goes.
//! - `rename` `from → to`: if `from` is present, every copy of it becomes a copy of `to`, and any
//!   copy of `to` the request already had is dropped; if `from` is absent, nothing happens.
//! - `replace`: if present, every copy is replaced by one value; if absent, nothing happens.
//! - `add`: if absent, the header is set; if present (after the steps above), it is left alone.
//! - `append`: one more copy is always added.
//!
//! Values are templates rendered against the request as it arrived; a value with a control byte
//! (a `{{query.x}}` of `%0d%0a`, a claim with a newline) refuses the request (see
//! [`crate::template::Refused`]), it is never sent on. Pseudo-headers, `host`,
//! `content-length` and `transfer-encoding` can never be named (refused at config time).

use crate::template::{Ctx, Refused, Template};

/// Header names no operation may touch.
pub const PROTECTED: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

#[derive(Debug, Clone, Default)]
pub struct HeaderOps {
    pub remove: Vec<String>,
    pub rename: Vec<(String, String)>,
    pub replace: Vec<(String, Template)>,
    pub add: Vec<(String, Template)>,
    pub append: Vec<(String, Template)>,
}

/// One change to send to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    Remove(String),
    /// Replaces every copy with this one value (or adds it).
    Set(String, Vec<u8>),
    /// Adds one more copy.
    Append(String, Vec<u8>),
}

impl HeaderOps {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.rename.is_empty()
            && self.replace.is_empty()
            && self.add.is_empty()
            && self.append.is_empty()
    }

    /// Every header name whose presence or value the operations need to know.
    pub fn names_read(&self) -> impl Iterator<Item = &str> {
        self.remove
            .iter()
            .map(String::as_str)
            .chain(
                self.rename
                    .iter()
                    .flat_map(|(f, t)| [f.as_str(), t.as_str()]),
            )
            .chain(self.replace.iter().map(|(n, _)| n.as_str()))
            .chain(self.add.iter().map(|(n, _)| n.as_str()))
    }

    /// Plans the edits on `current` (the headers the operations read, lowercased names, one
    /// entry per copy); `ctx` renders values. A value over the template bound fails the whole
    /// set, so a request is never half-transformed.
    pub fn plan(&self, current: &[(String, Vec<u8>)], ctx: &Ctx<'_>) -> Result<Vec<Edit>, Refused> {
        let mut model: Vec<(String, Vec<u8>)> = current.to_vec();
        let mut edits = Vec::new();
        let has = |m: &[(String, Vec<u8>)], n: &str| m.iter().any(|(k, _)| k == n);
        for name in &self.remove {
            if has(&model, name) {
                model.retain(|(k, _)| k != name);
                edits.push(Edit::Remove(name.clone()));
            }
        }
        for (from, to) in &self.rename {
            if !has(&model, from) || from == to {
                continue;
            }
            let values: Vec<Vec<u8>> = model
                .iter()
                .filter(|(k, _)| k == from)
                .map(|(_, v)| v.clone())
                .collect();
            model.retain(|(k, _)| k != from && k != to);
            edits.push(Edit::Remove(from.clone()));
            for (i, v) in values.into_iter().enumerate() {
                model.push((to.clone(), v.clone()));
                edits.push(if i == 0 {
                    Edit::Set(to.clone(), v)
                } else {
                    Edit::Append(to.clone(), v)
                });
            }
        }
        for (name, tpl) in &self.replace {
            if has(&model, name) {
                let v = tpl.render_header(name, ctx)?;
                model.retain(|(k, _)| k != name);
                model.push((name.clone(), v.clone()));
                edits.push(Edit::Set(name.clone(), v));
            }
        }
        for (name, tpl) in &self.add {
            if !has(&model, name) {
                let v = tpl.render_header(name, ctx)?;
                model.push((name.clone(), v.clone()));
                edits.push(Edit::Set(name.clone(), v));
            }
        }
        for (name, tpl) in &self.append {
            edits.push(Edit::Append(name.clone(), tpl.render_header(name, ctx)?));
        }
        Ok(edits)
    }

    /// Renders every value template that reads the request and checks it, whether or not it
    /// will apply: the response side's values come from the request, so they are checked
    /// before the request goes upstream (a response cannot be refused cleanly later).
    pub fn check_values(&self, ctx: &Ctx<'_>) -> Result<(), Refused> {
        for (name, tpl) in self.replace.iter().chain(&self.add).chain(&self.append) {
            if tpl.vars().next().is_some() {
                tpl.render_header(name, ctx)?;
            }
        }
        Ok(())
    }
}
