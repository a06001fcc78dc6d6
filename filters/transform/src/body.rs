//! JSON body operations, applied in the configured order to the parsed document.
//!
//! - `set` `path` (+ `value` or `template`): writes the value, creating missing intermediate
//!   objects; `-` appends to an array; an existing array element is replaced.
//! - `remove` `path`: removes it; absent is not an error.
//! - `rename` `path` `to`: renames the object member the pointer ends at, keeping its value;
//!   absent is not an error.
//! - `copy` / `move` `from` `path`: the value at `from` is written at `path` with `set`
//!   semantics (move removes it first); an absent `from` is not an error.
//! - `merge_patch`: RFC 7396. `json_patch`: RFC 6902, atomic.
//!
//! All or nothing: if any operation cannot apply (a scalar in the way, a failed patch `test`),
//! the body is left exactly as it was and the error is reported. JSON nesting is bounded by
//! serde_json's recursion limit (128), so a 10,000-deep document is an error, not a trap.

use crate::patch::{self, PatchOp};
use crate::pointer::{self, Pointer};
use crate::template::{Ctx, Template};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueType {
    #[default]
    String,
    Int,
    Float,
    Bool,
    /// The rendered text parsed as JSON.
    Json,
}

#[derive(Debug, Clone)]
pub enum SetValue {
    Json(Value),
    Template(Template, ValueType),
}

#[derive(Debug, Clone)]
pub enum BodyOp {
    Set(Pointer, SetValue),
    Remove(Pointer),
    Rename(Pointer, String),
    Copy { from: Pointer, path: Pointer },
    Move { from: Pointer, path: Pointer },
    MergePatch(Value),
    JsonPatch(Vec<PatchOp>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The body is not JSON (or nests deeper than 128).
    Invalid(String),
    /// An operation could not apply; the message names it.
    Failed(String),
}

/// Whether a `content-type` value is JSON: `application/json` or any `<type>/<sub>+json`,
/// but no gRPC type: `application/grpc+json` frames JSON messages in gRPC's length prefixes.
pub fn is_json(content_type: &[u8]) -> bool {
    if kit::grpc::reply_flavor(Some(content_type)).is_some() {
        return false;
    }
    let Ok(ct) = core::str::from_utf8(content_type) else {
        return false;
    };
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.split_once('/') {
        Some((t, sub)) => !t.is_empty() && (media == "application/json" || sub.ends_with("+json")),
        None => false,
    }
}

/// Converts a rendered template to a JSON value of the wanted type.
pub fn typed(rendered: &[u8], kind: ValueType) -> Result<Value, String> {
    let text = core::str::from_utf8(rendered).map_err(|_| "the value is not UTF-8".to_string())?;
    match kind {
        ValueType::String => Ok(Value::String(text.to_string())),
        ValueType::Int => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("\"{text}\" is not an integer")),
        ValueType::Float => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("\"{text}\" is not a number")),
        ValueType::Bool => match text.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("\"{text}\" is not true or false")),
        },
        ValueType::Json => {
            serde_json::from_str(text).map_err(|e| format!("the value is not JSON: {e}"))
        }
    }
}

/// Parses `body`, applies `ops`, serialises the result.
pub fn transform(ops: &[BodyOp], body: &[u8], ctx: &Ctx<'_>) -> Result<Vec<u8>, BodyError> {
    let mut doc: Value =
        serde_json::from_slice(body).map_err(|e| BodyError::Invalid(e.to_string()))?;
    for (i, op) in ops.iter().enumerate() {
        apply(&mut doc, op, ctx).map_err(|e| BodyError::Failed(format!("body[{i}]: {e}")))?;
    }
    serde_json::to_vec(&doc).map_err(|e| BodyError::Failed(e.to_string()))
}

fn apply(doc: &mut Value, op: &BodyOp, ctx: &Ctx<'_>) -> Result<(), String> {
    match op {
        BodyOp::Set(path, SetValue::Json(v)) => pointer::set(doc, path, v.clone()),
        BodyOp::Set(path, SetValue::Template(t, kind)) => {
            let rendered = t
                .render(ctx)
                .map_err(|_| "the template output is too large".to_string())?;
            pointer::set(doc, path, typed(&rendered, *kind)?)
        }
        BodyOp::Remove(path) => {
            pointer::remove(doc, path);
            Ok(())
        }
        BodyOp::Rename(path, to) => {
            let Some(v) = pointer::remove(doc, path) else {
                return Ok(());
            };
            let mut target = path.clone();
            target.rename_last(to);
            pointer::add(doc, &target, v)
        }
        BodyOp::Copy { from, path } => match pointer::get(doc, from).cloned() {
            Some(v) => pointer::set(doc, path, v),
            None => Ok(()),
        },
        BodyOp::Move { from, path } => match pointer::remove(doc, from) {
            Some(v) => pointer::set(doc, path, v),
            None => Ok(()),
        },
        BodyOp::MergePatch(p) => {
            patch::merge_patch(doc, p);
            Ok(())
        }
        BodyOp::JsonPatch(ops) => patch::apply(doc, ops),
    }
}
