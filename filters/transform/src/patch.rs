//! RFC 7396 JSON Merge Patch and RFC 6902 JSON Patch.
//!
//! Merge patch recursion is bounded by the patch's own depth, which comes from the config
//! (parsed by serde_json, so at most 128 levels). JSON Patch is atomic: it runs on a copy and the
//! document is replaced only if every operation succeeded (RFC 6902 §5).

use crate::pointer::{self, Pointer};
use serde_json::Value;

/// RFC 7396 §2, iteratively over the patch (a work list, not the call stack).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let mut work: Vec<(&mut Value, &Value)> = vec![(target, patch)];
    while let Some((t, p)) = work.pop() {
        let Value::Object(pmap) = p else {
            *t = p.clone();
            continue;
        };
        if !t.is_object() {
            *t = Value::Object(serde_json::Map::new());
        }
        let Value::Object(tmap) = t else { continue };
        for (k, v) in pmap {
            if v.is_null() {
                tmap.remove(k);
            } else if !tmap.contains_key(k) {
                tmap.insert(k.clone(), Value::Null);
            }
        }
        for (k, v) in tmap {
            if let Some(pv) = pmap.get(k).filter(|pv| !pv.is_null()) {
                work.push((v, pv));
            }
        }
    }
}

/// One compiled RFC 6902 operation.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchOp {
    Add(Pointer, Value),
    Remove(Pointer),
    Replace(Pointer, Value),
    Move { from: Pointer, path: Pointer },
    Copy { from: Pointer, path: Pointer },
    Test(Pointer, Value),
}

/// Compiles a JSON Patch document (an array of operation objects), naming the failing element.
pub fn compile(doc: &Value) -> Result<Vec<PatchOp>, (usize, String)> {
    let Value::Array(items) = doc else {
        return Err((0, "a JSON Patch must be an array".into()));
    };
    let mut ops = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        ops.push(compile_one(item).map_err(|e| (i, e))?);
    }
    Ok(ops)
}

fn compile_one(item: &Value) -> Result<PatchOp, String> {
    let Value::Object(map) = item else {
        return Err("an operation must be an object".into());
    };
    let ptr = |key: &str| -> Result<Pointer, String> {
        match map.get(key) {
            Some(Value::String(s)) => Pointer::parse(s),
            Some(_) => Err(format!("\"{key}\" must be a string")),
            None => Err(format!("\"{key}\" is missing")),
        }
    };
    let value = || -> Result<Value, String> {
        map.get("value")
            .cloned()
            .ok_or_else(|| "\"value\" is missing".to_string())
    };
    let op = match map.get("op") {
        Some(Value::String(s)) => s.as_str(),
        _ => return Err("\"op\" must be a string".into()),
    };
    let allowed: &[&str] = match op {
        "add" | "replace" | "test" => &["op", "path", "value"],
        "remove" => &["op", "path"],
        "move" | "copy" => &["op", "path", "from"],
        other => return Err(format!("unknown op \"{other}\"")),
    };
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unexpected member \"{k}\" for op \"{op}\""));
    }
    Ok(match op {
        "add" => PatchOp::Add(ptr("path")?, value()?),
        "replace" => PatchOp::Replace(ptr("path")?, value()?),
        "test" => PatchOp::Test(ptr("path")?, value()?),
        "remove" => PatchOp::Remove(ptr("path")?),
        "move" => {
            let (from, path) = (ptr("from")?, ptr("path")?);
            if from.is_proper_prefix_of(&path) {
                return Err("cannot move a value into one of its own children".into());
            }
            PatchOp::Move { from, path }
        }
        _ => PatchOp::Copy {
            from: ptr("from")?,
            path: ptr("path")?,
        },
    })
}

/// Applies every operation or none: on failure `doc` is unchanged and the error names the
/// failing operation's index.
pub fn apply(doc: &mut Value, ops: &[PatchOp]) -> Result<(), String> {
    let mut work = doc.clone();
    for (i, op) in ops.iter().enumerate() {
        apply_one(&mut work, op).map_err(|e| format!("operation {i}: {e}"))?;
    }
    *doc = work;
    Ok(())
}

fn apply_one(doc: &mut Value, op: &PatchOp) -> Result<(), String> {
    match op {
        PatchOp::Add(path, v) => pointer::add(doc, path, v.clone()),
        PatchOp::Remove(path) => {
            if path.is_root() {
                return Err("cannot remove the whole document".into());
            }
            pointer::remove(doc, path)
                .map(drop)
                .ok_or_else(|| "the path does not exist".into())
        }
        PatchOp::Replace(path, v) => {
            let slot = pointer::get_mut(doc, path).ok_or("the path does not exist")?;
            *slot = v.clone();
            Ok(())
        }
        PatchOp::Move { from, path } => {
            if from == path {
                return pointer::get(doc, from)
                    .map(drop)
                    .ok_or_else(|| "\"from\" does not exist".into());
            }
            let v = if from.is_root() {
                std::mem::take(doc)
            } else {
                pointer::remove(doc, from).ok_or("\"from\" does not exist")?
            };
            pointer::add(doc, path, v)
        }
        PatchOp::Copy { from, path } => {
            let v = pointer::get(doc, from)
                .cloned()
                .ok_or("\"from\" does not exist")?;
            pointer::add(doc, path, v)
        }
        PatchOp::Test(path, want) => match pointer::get(doc, path) {
            Some(got) if got == want => Ok(()),
            Some(_) => Err("test failed: the value differs".into()),
            None => Err("test failed: the path does not exist".into()),
        },
    }
}
