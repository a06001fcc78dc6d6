//! Reading the product file's YAML tree into typed values, each remembering where it was
//! written, and the findings (errors and warnings) that `apim check` prints as
//! FILE:LINE:COLUMN. Unknown fields are errors named by their place: a misspelt field is
//! never silently a default.

use crate::yaml_pos::{Kind, Node, Pos};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One thing `apim check` reports: where, how bad, which field, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub pos: Pos,
    pub severity: Severity,
    pub field: String,
    pub message: String,
}

impl Finding {
    /// `FILE:LINE:COL: error: FIELD: MESSAGE`.
    pub fn render(&self, file: &str) -> String {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        format!(
            "{file}:{}: {level}: {}: {}",
            self.pos, self.field, self.message
        )
    }
}

#[derive(Debug, Default)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    pub fn error(&mut self, pos: Pos, field: &str, message: impl Into<String>) {
        self.push(pos, Severity::Error, field, message.into());
    }

    pub fn warn(&mut self, pos: Pos, field: &str, message: impl Into<String>) {
        self.push(pos, Severity::Warning, field, message.into());
    }

    fn push(&mut self, pos: Pos, severity: Severity, field: &str, message: String) {
        self.0.push(Finding {
            pos,
            severity,
            field: field.to_string(),
            message,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|f| f.severity == Severity::Error)
    }

    /// In file order (then errors before warnings), so the output reads top to bottom.
    pub fn sorted(mut self) -> Vec<Finding> {
        self.0.sort_by(|a, b| {
            (a.pos.line, a.pos.col, a.severity, &a.field, &a.message)
                .cmp(&(b.pos.line, b.pos.col, b.severity, &b.field, &b.message))
        });
        self.0.dedup();
        self.0
    }
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<T> {
    pub v: T,
    pub pos: Pos,
}

/// `parent.key`, or `key` at the top.
pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[i]`.
pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// A mapping whose keys are all known; its fields read through the helpers below.
pub struct Obj<'a> {
    pub node: &'a Node,
    pub path: String,
}

/// `node` as a mapping with only `known` keys (each unknown one is an error at the key).
pub fn object<'a>(node: &'a Node, path: &str, known: &[&str], f: &mut Findings) -> Option<Obj<'a>> {
    let Kind::Map(members) = &node.kind else {
        f.error(node.pos, path, "expected a mapping");
        return None;
    };
    for (key, at, _) in members {
        if !known.contains(&key.as_str()) {
            f.error(
                *at,
                &join(path, key),
                format!("unknown field \"{key}\" (known: {})", known.join(", ")),
            );
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for (key, at, _) in members {
        if seen.contains(&key.as_str()) {
            f.error(*at, &join(path, key), "given twice");
        }
        seen.push(key);
    }
    Some(Obj {
        node,
        path: path.to_string(),
    })
}

/// Members of a mapping in file order (a map keyed by name: plans, upstreams).
pub fn members<'a>(node: &'a Node, path: &str, f: &mut Findings) -> &'a [(String, Pos, Node)] {
    match &node.kind {
        Kind::Map(m) => m,
        _ => {
            f.error(node.pos, path, "expected a mapping");
            &[]
        }
    }
}

/// Items of a sequence.
pub fn items<'a>(node: &'a Node, path: &str, f: &mut Findings) -> &'a [Node] {
    match &node.kind {
        Kind::Seq(s) => s,
        _ => {
            f.error(node.pos, path, "expected a list");
            &[]
        }
    }
}

pub fn string(node: &Node, path: &str, f: &mut Findings) -> Option<At<String>> {
    match (&node.kind, node.to_json()) {
        (Kind::Scalar(s, _), Value::String(_)) => Some(At {
            v: s.clone(),
            pos: node.pos,
        }),
        _ => {
            f.error(node.pos, path, "expected a string");
            None
        }
    }
}

pub fn boolean(node: &Node, path: &str, f: &mut Findings) -> Option<bool> {
    match node.to_json() {
        Value::Bool(b) => Some(b),
        _ => {
            f.error(node.pos, path, "expected true or false");
            None
        }
    }
}

pub fn uint(node: &Node, path: &str, f: &mut Findings) -> Option<At<u64>> {
    match node.to_json().as_u64() {
        Some(n) => Some(At {
            v: n,
            pos: node.pos,
        }),
        None => {
            f.error(node.pos, path, "expected a whole number ≥ 0");
            None
        }
    }
}

pub fn strings(node: &Node, path: &str, f: &mut Findings) -> Vec<At<String>> {
    items(node, path, f)
        .iter()
        .enumerate()
        .filter_map(|(i, n)| string(n, &index(path, i), f))
        .collect()
}

impl<'a> Obj<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.node.get(key)
    }

    pub fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    pub fn pos(&self) -> Pos {
        self.node.pos
    }

    pub fn string(&self, key: &str, f: &mut Findings) -> Option<At<String>> {
        self.get(key).and_then(|n| string(n, &self.path(key), f))
    }

    /// A required string: missing is an error at the mapping.
    pub fn required(&self, key: &str, f: &mut Findings) -> Option<At<String>> {
        if self.get(key).is_none() {
            f.error(self.pos(), &self.path(key), "required");
        }
        self.string(key, f)
    }

    pub fn boolean(&self, key: &str, f: &mut Findings) -> Option<bool> {
        self.get(key).and_then(|n| boolean(n, &self.path(key), f))
    }

    pub fn uint(&self, key: &str, f: &mut Findings) -> Option<At<u64>> {
        self.get(key).and_then(|n| uint(n, &self.path(key), f))
    }

    pub fn strings(&self, key: &str, f: &mut Findings) -> Vec<At<String>> {
        self.get(key)
            .map(|n| strings(n, &self.path(key), f))
            .unwrap_or_default()
    }

    /// A field passed to a filter as it is (its own validator checks it).
    pub fn raw(&self, key: &str) -> Option<Node> {
        self.get(key).cloned()
    }

    /// A field that must be a mapping, passed to a filter as it is.
    pub fn raw_object(&self, key: &str, f: &mut Findings) -> Option<Node> {
        let n = self.raw(key)?;
        if matches!(n.kind, Kind::Map(_)) {
            Some(n)
        } else {
            f.error(n.pos, &self.path(key), "expected a mapping");
            None
        }
    }

    /// One of `choices` (default `default`).
    pub fn choice(&self, key: &str, choices: &[&str], default: &str, f: &mut Findings) -> String {
        match self.string(key, f) {
            Some(s) if choices.contains(&s.v.as_str()) => s.v,
            Some(s) => {
                f.error(
                    s.pos,
                    &self.path(key),
                    format!("\"{}\" is not one of: {}", s.v, choices.join(", ")),
                );
                default.to_string()
            }
            None => default.to_string(),
        }
    }
}
