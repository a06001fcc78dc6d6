//! JSON whose objects keep the order they were built or written in, printed the same way every
//! time: the filter configs `apim render` embeds, readable (an object's members one per line,
//! short values on one line) and byte-for-byte deterministic.

use crate::yaml_pos::{Kind, Node};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

/// A member longer than this (key and value, indent not counted) gets a line per item.
const WIDTH: usize = 100;

impl J {
    pub fn obj() -> J {
        J::Obj(Vec::new())
    }

    pub fn str(s: &str) -> J {
        J::Str(s.to_string())
    }

    pub fn strs<'a>(items: impl IntoIterator<Item = &'a str>) -> J {
        J::Arr(items.into_iter().map(J::str).collect())
    }

    pub fn num(n: u64) -> J {
        J::Num(n.into())
    }

    /// Adds a member (builder style).
    pub fn with(mut self, key: &str, value: J) -> J {
        self.push(key, value);
        self
    }

    pub fn push(&mut self, key: &str, value: J) {
        if let J::Obj(m) = self {
            m.push((key.to_string(), value));
        }
    }

    /// A YAML node as written: mapping members in file order, scalars resolved as YAML 1.2's
    /// core schema does (what the filter would get from Envoy's YAML).
    pub fn from_node(n: &Node) -> J {
        match &n.kind {
            Kind::Seq(items) => J::Arr(items.iter().map(J::from_node).collect()),
            Kind::Map(m) => J::Obj(
                m.iter()
                    .map(|(k, _, v)| (k.clone(), J::from_node(v)))
                    .collect(),
            ),
            Kind::Scalar(..) => J::from_value(&n.to_json()),
        }
    }

    pub fn from_value(v: &Value) -> J {
        match v {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) => J::Num(n.clone()),
            Value::String(s) => J::Str(s.clone()),
            Value::Array(a) => J::Arr(a.iter().map(J::from_value).collect()),
            Value::Object(m) => J::Obj(
                m.iter()
                    .map(|(k, v)| (k.clone(), J::from_value(v)))
                    .collect(),
            ),
        }
    }

    /// On one line: `{"a": 1, "b": [2, 3]}`.
    pub fn compact(&self) -> String {
        let mut out = String::new();
        self.write_compact(&mut out);
        out
    }

    fn write_compact(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(&n.to_string()),
            J::Str(s) => out.push_str(&quote(s)),
            J::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write_compact(out);
                }
                out.push(']');
            }
            J::Obj(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&quote(k));
                    out.push_str(": ");
                    v.write_compact(out);
                }
                out.push('}');
            }
        }
    }

    /// Over lines, each after the first prefixed with `indent`: the object's members one per
    /// line; a member's list or object that does not fit in [`WIDTH`] one item per line, each
    /// item on one line (a consumer, a rule, a limit). No trailing newline.
    pub fn pretty(&self, indent: &str) -> String {
        let mut out = String::new();
        self.write_pretty(indent, 0, 0, &mut out);
        out
    }

    fn write_pretty(&self, indent: &str, depth: usize, used: usize, out: &mut String) {
        let one = self.compact();
        let (open, close, parts): (char, char, Vec<(Option<&String>, &J)>) = match self {
            J::Arr(items) if !items.is_empty() => {
                ('[', ']', items.iter().map(|v| (None, v)).collect())
            }
            J::Obj(m) if !m.is_empty() => ('{', '}', m.iter().map(|(k, v)| (Some(k), v)).collect()),
            _ => {
                out.push_str(&one);
                return;
            }
        };
        // The outermost object always opens up: a config reads member by member.
        if depth >= 2 || (depth == 1 && used + one.len() <= WIDTH) {
            out.push_str(&one);
            return;
        }
        let inner = format!("{indent}  ");
        out.push(open);
        for (i, (k, v)) in parts.iter().enumerate() {
            out.push('\n');
            out.push_str(&inner);
            let mut head = String::new();
            if let Some(k) = k {
                head = format!("{}: ", quote(k));
                out.push_str(&head);
            }
            v.write_pretty(&inner, depth + 1, head.len(), out);
            if i + 1 < parts.len() {
                out.push(',');
            }
        }
        out.push('\n');
        out.push_str(indent);
        out.push(close);
    }

    /// As serde_json's value.
    #[cfg(test)]
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.compact()).unwrap_or(Value::Null)
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_stay_on_one_line_and_long_ones_break() {
        let j = J::obj()
            .with("realm", J::str("demo"))
            .with("list", J::Arr((0..40).map(J::num).collect()))
            .with("small", J::obj().with("a", J::Bool(true)));
        let text = j.pretty("  ");
        assert!(
            text.starts_with("{\n    \"realm\": \"demo\",\n    \"list\": [\n      0,"),
            "{text}"
        );
        let deep = J::obj().with(
            "a",
            J::Arr(vec![
                J::obj().with("b", J::Arr((0..40).map(J::num).collect()))
            ]),
        );
        assert_eq!(
            deep.pretty("").lines().count(),
            5,
            "items below a member stay on one line"
        );
        assert!(text.contains("\"small\": {\"a\": true}\n  }"), "{text}");
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, j.to_value());
        assert_eq!(J::obj().pretty(""), "{}");
    }

    #[test]
    fn yaml_order_is_kept() {
        let docs = crate::yaml_pos::load("z: 1\na: [x, 'y']\n").unwrap();
        assert_eq!(
            J::from_node(&docs[0]).compact(),
            r#"{"z": 1, "a": ["x", "y"]}"#
        );
    }
}
