//! Where a config error's field is in the file: a filter's field path
//! (`consumers[id=alice].keys[0].sha256`) resolved against the config, then found in the YAML
//! tree (a config written as YAML: Istio's `pluginConfig`, Envoy Gateway's `config`) or in the
//! JSON text of a `StringValue` (Envoy bootstraps, EnvoyFilter patches), whose lines are mapped
//! back to the file's.

use crate::yaml_pos::{Kind, Node, Pos, Style};
use serde_json::Value;

/// Deepest JSON nesting the text scanner walks into.
const MAX_DEPTH: usize = 128;

/// One step from a config's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// A field path split into steps; `[id=X]` becomes the index of the element whose `id` is X
/// in `config`. Stops at the first step that cannot be resolved.
pub fn steps(path: &str, config: &Value) -> Vec<Step> {
    let mut out = Vec::new();
    let mut here = Some(config);
    for part in split_dots(path) {
        let (name, brackets) = part.split_once('[').map_or((part, ""), |(n, b)| (n, b));
        if !name.is_empty() {
            here = here.and_then(|v| v.get(name));
            out.push(Step::Key(name.to_string()));
        }
        for inner in brackets.split('[').filter(|s| !s.is_empty()) {
            let inner = inner.trim_end_matches(']');
            let index = if let Some(id) = inner.strip_prefix("id=") {
                here.and_then(Value::as_array).and_then(|items| {
                    items
                        .iter()
                        .position(|c| c.get("id").and_then(Value::as_str) == Some(id))
                })
            } else {
                inner.parse::<usize>().ok()
            };
            let Some(index) = index else {
                return out;
            };
            here = here.and_then(|v| v.get(index));
            out.push(Step::Index(index));
        }
    }
    out
}

/// `a.b[0].c` → `a`, `b[0]`, `c`; a dot inside brackets (`[id=a.b]`) does not split.
fn split_dots(path: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in path.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '.' if depth == 0 => {
                parts.push(path.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(path.get(start..).unwrap_or(""));
    parts.retain(|p| !p.is_empty());
    parts
}

/// The position of the field `steps` leads to in a config written as YAML: the key of the
/// last member, the element of the last index; the deepest node reached when the rest is not
/// there (a missing field is reported where its parent is).
pub fn in_yaml(node: &Node, steps: &[Step]) -> Pos {
    let mut here = node;
    let mut at = node.pos;
    for step in steps {
        let next = match step {
            Step::Key(k) => here.get(k).map(|n| (here.key_pos(k).unwrap_or(n.pos), n)),
            Step::Index(i) => here.at(*i).map(|n| (n.pos, n)),
        };
        let Some((pos, n)) = next else {
            break;
        };
        at = pos;
        here = n;
    }
    at
}

/// The 1-based line and column, in `text`, of the field `steps` leads to in the JSON `text`
/// (the key of the last member, the start of the last element); the deepest place reached
/// when the rest is not there or the JSON is broken.
pub fn in_json(text: &str, steps: &[Step]) -> (usize, usize) {
    line_col(text, offset(text.as_bytes(), steps))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

/// serde_json's own position at the end of its message (`… at line 3 column 7`): for errors
/// about the whole document (bad JSON), where there is no field path.
pub fn serde_position(message: &str) -> Option<(usize, usize)> {
    let (_, rest) = message.rsplit_once(" at line ")?;
    let (line, col) = rest.split_once(" column ")?;
    Some((line.trim().parse().ok()?, col.trim().parse().ok()?))
}

/// A JSON text's position mapped into the file: `node` is the YAML scalar holding the text.
/// Exact for a `|` block (the text's lines are the file's lines, shifted by the indentation)
/// and for a one-line plain or single-quoted scalar; where the scalar starts otherwise (a
/// double-quoted one has escapes, so its columns are not the file's).
pub fn json_in_file(node: &Node, (line, col): (usize, usize)) -> Pos {
    let Kind::Scalar(text, style) = &node.kind else {
        return node.pos;
    };
    match style {
        Style::Literal | Style::Folded => Pos {
            line: node.pos.line + line - 1,
            col: node.pos.col + col - 1,
        },
        Style::Plain | Style::SingleQuoted if line == 1 && !text.contains('\n') => {
            let quote = usize::from(*style == Style::SingleQuoted);
            Pos {
                line: node.pos.line,
                col: node.pos.col + quote + col - 1,
            }
        }
        _ => node.pos,
    }
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// A string at the cursor, decoded (escapes kept simple: enough to compare keys).
    fn string(&mut self) -> Option<String> {
        self.ws();
        if self.peek() != Some(b'"') {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'u' => {
                            let hex = self.b.get(self.i..self.i + 4)?;
                            self.i += 4;
                            let code = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16);
                            let ch = code.ok().and_then(char::from_u32).unwrap_or('\u{fffd}');
                            out.extend_from_slice(ch.to_string().as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
    }

    /// Skips one value; `None` on broken JSON.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(drop),
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                if self.eat(close) {
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        self.string()?;
                        if !self.eat(b':') {
                            return None;
                        }
                    }
                    self.skip(depth + 1)?;
                    if self.eat(close) {
                        return Some(());
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            _ => {
                while self.peek().is_some_and(|c| !b",}] \t\r\n".contains(&c)) {
                    self.i += 1;
                }
                Some(())
            }
        }
    }

    /// Moves to the member `key` of the object at the cursor; returns where its key starts.
    fn member(&mut self, key: &str) -> Option<usize> {
        if !self.eat(b'{') {
            return None;
        }
        loop {
            self.ws();
            let at = self.i;
            let k = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            if k == key {
                self.ws();
                return Some(at);
            }
            self.skip(0)?;
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// Moves to element `index` of the array at the cursor; returns where it starts.
    fn element(&mut self, index: usize) -> Option<usize> {
        if !self.eat(b'[') {
            return None;
        }
        for _ in 0..index {
            self.skip(0)?;
            if !self.eat(b',') {
                return None;
            }
        }
        self.ws();
        (self.peek() != Some(b']')).then_some(self.i)
    }
}

fn offset(b: &[u8], steps: &[Step]) -> usize {
    let mut s = Scan { b, i: 0 };
    s.ws();
    let mut best = s.i;
    for step in steps {
        let found = match step {
            Step::Key(k) => s.member(k),
            Step::Index(i) => s.element(*i),
        };
        match found {
            Some(at) => best = at,
            None => break,
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn k(s: &str) -> Step {
        Step::Key(s.into())
    }

    #[test]
    fn paths_resolve_ids() {
        let config = json!({"consumers": [{"id": "a"}, {"id": "b.c", "keys": [{}, {}]}],
                            "plans": {"p": {"limits": [{}]}}});
        let cases: Vec<(&str, Vec<Step>)> = vec![
            ("", vec![]),
            (
                "consumers[id=b.c].keys[1].sha256",
                vec![
                    k("consumers"),
                    Step::Index(1),
                    k("keys"),
                    Step::Index(1),
                    k("sha256"),
                ],
            ),
            (
                "consumers[0].x",
                vec![k("consumers"), Step::Index(0), k("x")],
            ),
            ("consumers[id=zz].x", vec![k("consumers")]),
            (
                "plans.p.limits[0].requests",
                vec![
                    k("plans"),
                    k("p"),
                    k("limits"),
                    Step::Index(0),
                    k("requests"),
                ],
            ),
            ("rules[x]", vec![k("rules")]),
        ];
        for (path, want) in cases {
            assert_eq!(steps(path, &config), want, "{path}");
        }
    }

    #[test]
    fn fields_are_found_in_json_text() {
        let text = "{\n  \"a\": {\"x\": [1, {\"y\": \"}\"}, 3]},\n  \"b\\u0041\": [\n    {\"k\": 2}\n  ]\n}";
        let cases: Vec<(Vec<Step>, (usize, usize))> = vec![
            (vec![], (1, 1)),
            (vec![k("a")], (2, 3)),
            (vec![k("a"), k("x"), Step::Index(1), k("y")], (2, 19)),
            (vec![k("a"), k("x"), Step::Index(2)], (2, 30)),
            (vec![k("bA"), Step::Index(0), k("k")], (4, 6)),
            // Not there: the deepest place found.
            (vec![k("a"), k("nope")], (2, 3)),
            (vec![k("a"), k("x"), Step::Index(9)], (2, 9)),
        ];
        for (steps, want) in cases {
            assert_eq!(in_json(text, &steps), want, "{steps:?}");
        }
        // Broken JSON: as far as it goes.
        assert_eq!(in_json("{\"a\": [1, ", &[k("a"), Step::Index(5)]), (1, 2));
    }

    #[test]
    fn positions_map_into_the_file() {
        let docs = crate::yaml_pos::load(
            "x:\n  value: |\n    {\n      \"k\": 1\n    }\n  one: '{\"k\": 1}'\n",
        )
        .unwrap();
        let x = docs[0].get("x").unwrap();
        let block = x.get("value").unwrap();
        assert_eq!(json_in_file(block, (2, 3)), Pos { line: 4, col: 7 });
        let one = x.get("one").unwrap();
        assert_eq!(json_in_file(one, (1, 2)), Pos { line: 6, col: 10 });
        let docs = crate::yaml_pos::load("v: \"{\\\"k\\\": 1}\"\n").unwrap();
        let escaped = docs[0].get("v").unwrap();
        assert_eq!(
            json_in_file(escaped, (1, 2)),
            Pos { line: 1, col: 4 },
            "the scalar's start"
        );
        assert_eq!(
            serde_position("unknown field `x`, expected `y` at line 4 column 12"),
            Some((4, 12))
        );
        assert_eq!(serde_position("no position"), None);
        let yaml = crate::yaml_pos::load("cfg:\n  rules:\n  - a: 1\n    b: 2\n").unwrap();
        let cfg = yaml[0].get("cfg").unwrap();
        let steps = [k("rules"), Step::Index(0), k("b")];
        assert_eq!(in_yaml(cfg, &steps), Pos { line: 4, col: 5 });
        assert_eq!(
            in_yaml(cfg, &[k("rules"), Step::Index(3)]),
            Pos { line: 2, col: 3 }
        );
    }
}
