//! YAML documents as trees that remember where each node is (line and column, 1-based), so
//! `apim validate FILE` reports an error in an embedded filter config at its place in the file
//! the user gave. Built from yaml-rust2's events (safe Rust, keeps marks); values resolve as
//! YAML 1.2's core schema does (what Kubernetes and Envoy read): `null`/`~`/empty, booleans,
//! integers and floats for plain scalars, strings for everything quoted or in a block.

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Deepest nesting accepted: a bound on recursion over a user's file.
const MAX_DEPTH: usize = 256;
/// Most nodes one file may hold (aliases expanded count too).
const MAX_NODES: usize = 1_000_000;

/// Where a node starts (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    /// `'…'`: JSON text in it reads as written (a `'` is doubled, rare in JSON).
    SingleQuoted,
    /// `"…"`: escapes, so the text's columns are not the file's.
    DoubleQuoted,
    /// A `|` block: its lines are the file's lines.
    Literal,
    Folded,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Scalar(String, Style),
    Seq(Vec<Node>),
    /// Members in file order: key, where the key is, value.
    Map(Vec<(String, Pos, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(members) => members.iter().find(|(k, _, _)| k == key).map(|m| &m.2),
            _ => None,
        }
    }

    /// Where the member `key` of this map is written (the key, not the value).
    pub fn key_pos(&self, key: &str) -> Option<Pos> {
        match &self.kind {
            Kind::Map(members) => members.iter().find(|(k, _, _)| k == key).map(|m| m.1),
            _ => None,
        }
    }

    pub fn at(&self, index: usize) -> Option<&Node> {
        match &self.kind {
            Kind::Seq(items) => items.get(index),
            _ => None,
        }
    }

    pub fn str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    /// The node as JSON (what a filter receives once the YAML is read).
    pub fn to_json(&self) -> Value {
        match &self.kind {
            Kind::Scalar(s, Style::Plain) => resolve_plain(s),
            Kind::Scalar(s, _) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(members) => {
                let mut map = Map::new();
                for (k, _, v) in members {
                    map.insert(k.clone(), v.to_json());
                }
                Value::Object(map)
            }
        }
    }
}

/// A plain scalar by YAML 1.2's core schema.
fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let numeric = s
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
        && s.bytes().any(|b| b.is_ascii_digit());
    if numeric {
        if let Ok(i) = s.parse::<i64>() {
            return Value::Number(i.into());
        }
        if let Ok(u) = s.parse::<u64>() {
            return Value::Number(u.into());
        }
        if let Some(n) = s.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(s.to_string())
}

fn pos(m: Marker) -> Pos {
    // yaml-rust2 counts lines from 1 and columns from 0.
    Pos {
        line: m.line(),
        col: m.col() + 1,
    }
}

/// Open collections while events arrive.
enum Open {
    Seq(Pos, Vec<Node>, usize),
    /// Members so far, and a key read whose value has not come yet.
    Map(Pos, Vec<(String, Pos, Node)>, Option<(String, Pos)>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    docs: Vec<Node>,
    anchors: std::collections::HashMap<usize, Node>,
    nodes: usize,
    error: Option<String>,
}

impl Builder {
    fn fail(&mut self, e: String) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// A finished node goes into its parent (or becomes a document).
    fn push(&mut self, node: Node) {
        self.nodes = self.nodes.saturating_add(1);
        if self.nodes > MAX_NODES {
            self.fail(format!("more than {MAX_NODES} YAML nodes"));
            return;
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Open::Seq(_, items, _)) => items.push(node),
            Some(Open::Map(_, members, pending, _)) => match pending.take() {
                Some((key, at)) => members.push((key, at, node)),
                None => match &node.kind {
                    Kind::Scalar(key, _) => *pending = Some((key.clone(), node.pos)),
                    _ => {
                        let at = node.pos;
                        self.fail(format!("{at}: a mapping key that is not a scalar"));
                    }
                },
            },
        }
    }

    fn open(&mut self, o: Open) {
        if self.stack.len() >= MAX_DEPTH {
            self.fail(format!("YAML nested deeper than {MAX_DEPTH}"));
        }
        self.stack.push(o);
    }

    fn close(&mut self) {
        let node = match self.stack.pop() {
            Some(Open::Seq(at, items, anchor)) => (
                Node {
                    pos: at,
                    kind: Kind::Seq(items),
                },
                anchor,
            ),
            Some(Open::Map(at, members, _, anchor)) => (
                Node {
                    // The parser marks a block map after its first key: the key is where a
                    // reader looks.
                    pos: members.first().map_or(at, |m| m.1),
                    kind: Kind::Map(members),
                },
                anchor,
            ),
            None => return,
        };
        self.finish(node.0, node.1);
    }

    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        self.push(node);
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let at = pos(mark);
        match ev {
            Event::Scalar(value, style, anchor, _) => {
                let style = match style {
                    TScalarStyle::Plain => Style::Plain,
                    TScalarStyle::Literal => Style::Literal,
                    TScalarStyle::Folded => Style::Folded,
                    TScalarStyle::SingleQuoted => Style::SingleQuoted,
                    _ => Style::DoubleQuoted,
                };
                let node = Node {
                    pos: at,
                    kind: Kind::Scalar(value, style),
                };
                self.finish(node, anchor);
            }
            Event::SequenceStart(anchor, _) => self.open(Open::Seq(at, Vec::new(), anchor)),
            Event::MappingStart(anchor, _) => {
                self.open(Open::Map(at, Vec::new(), None, anchor));
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(node) => self.push(node),
                None => self.fail(format!("{at}: unknown alias")),
            },
            _ => {}
        }
    }
}

/// Every document of `text` (empty documents left out).
pub fn load(text: &str) -> Result<Vec<Node>, String> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| e.to_string())?;
    if let Some(e) = builder.error {
        return Err(e);
    }
    Ok(builder
        .docs
        .into_iter()
        .filter(|d| !matches!(&d.kind, Kind::Scalar(s, Style::Plain) if s.is_empty() || s == "~"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn positions_and_values() {
        let text = "a: 1\nb:\n  - x\n  - \"y\"\n  - {c: true, d: ~}\nlit: |\n  {\"k\": 2}\n---\n---\nz: 1.5\n";
        let docs = load(text).unwrap();
        assert_eq!(docs.len(), 2);
        let d = &docs[0];
        assert_eq!(
            d.to_json(),
            json!({"a": 1, "b": ["x", "y", {"c": true, "d": null}], "lit": "{\"k\": 2}\n"})
        );
        assert_eq!(d.key_pos("b"), Some(Pos { line: 2, col: 1 }));
        let b = d.get("b").unwrap();
        assert_eq!(b.at(1).unwrap().pos, Pos { line: 4, col: 5 });
        assert_eq!(
            b.at(2).unwrap().key_pos("d"),
            Some(Pos { line: 5, col: 15 })
        );
        let lit = d.get("lit").unwrap();
        assert!(matches!(lit.kind, Kind::Scalar(_, Style::Literal)));
        // A block scalar starts at its first line of content.
        assert_eq!(lit.pos, Pos { line: 7, col: 3 });
        assert_eq!(
            d.pos,
            Pos { line: 1, col: 1 },
            "a map is where its first key is"
        );
        assert_eq!(docs[1].to_json(), json!({"z": 1.5}));
    }

    #[test]
    fn plain_scalars_resolve_like_the_core_schema() {
        let cases = [
            ("5", json!(5)),
            ("-3", json!(-3)),
            ("2.5", json!(2.5)),
            ("null", Value::Null),
            ("True", json!(true)),
            ("yes", json!("yes")),
            ("1.2.3", json!("1.2.3")),
            ("pets:read", json!("pets:read")),
            ("e", json!("e")),
        ];
        for (plain, want) in cases {
            assert_eq!(resolve_plain(plain), want, "{plain}");
        }
    }

    #[test]
    fn aliases_expand_and_bad_yaml_is_an_error() {
        let docs = load("a: &x {k: 1}\nb: *x\n").unwrap();
        assert_eq!(docs[0].to_json(), json!({"a": {"k": 1}, "b": {"k": 1}}));
        assert!(load("a: [1, 2\n").is_err());
        assert!(load("? [a]\n: 1\n").is_err());
    }
}
