//! Parsing one GraphQL document and measuring the operation it runs.
//!
//! The document is lexed by `apollo-parser`'s lexer with a token limit, then parsed by a small
//! recursive-descent parser that measures as it goes (no syntax tree is built: that is 6-8x
//! cheaper than apollo-parser's CST, see the README). Every nesting (selection sets, list and
//! object values, fragment spreads) is bounded, so a deep document is an error, never a stack
//! overflow. A first pass finds the operations and fragments (their bodies skipped with a
//! bounded bracket count); the selected operation is then parsed and measured; every fragment is
//! measured once (memoised) wherever it is spread, and a fragment met again while it is being
//! measured is a cycle, reported as an error. Sums saturate: no counter can overflow. Only what
//! the selected operation reaches is parsed in full: syntax errors elsewhere are the server's
//! to report.
//!
//! Depth follows Apollo Router: a root field is depth 1, leaf fields count, named and inline
//! fragments add nothing.

use crate::config::{CostModel, IntrospectionMode, PARSER_RECURSION_LIMIT};
use apollo_parser::{Lexer, TokenKind};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// How far the analyser's walk may nest (selection sets, values, fragment spreads together)
/// before it gives up: chains of fragments nest without any selection-set nesting.
pub const WALK_LIMIT: u32 = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Query,
    Mutation,
    Subscription,
}

/// What the analyser needs to know besides the document.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The lexer stops after this many tokens (whitespace and comments count, as in Apollo).
    pub token_cap: u32,
    pub introspection: IntrospectionMode,
    pub count_typename: bool,
    pub cost: Option<&'a CostModel>,
}

/// The measurements of the selected operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Measured {
    pub depth: u32,
    pub aliases: u64,
    pub root_fields: u64,
    /// Distinct field names in the operation (fragments included).
    pub height: u64,
    pub directives: u64,
    pub tokens: u32,
    pub cost: u64,
    /// A `__schema` or `__type` field is reachable.
    pub introspection: bool,
    /// Deepest introspection subtree (the `__schema`/`__type` field counts 1).
    pub introspection_depth: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnalysisError {
    /// A syntax error; what was expected.
    Syntax(String),
    /// The lexer's token cap was reached.
    TooManyTokens,
    /// Nesting beyond the parser's (or the walk's) limit.
    TooDeep,
    /// The document holds no operation.
    NoOperation,
    /// Several operations and no `operationName`.
    OperationNameRequired,
    /// `operationName` names no operation of the document.
    OperationNotFound(String),
    UnknownFragment(String),
    FragmentCycle(String),
    DuplicateFragment(String),
}

pub struct Analysis {
    pub kind: OpKind,
    pub measured: Measured,
    /// The selected operation's name (for the access log, with `publish_operation`).
    pub name: Option<String>,
}

/// A significant token: whitespace, comments and commas are dropped after counting.
#[derive(Debug, Clone, Copy)]
struct Tok<'q> {
    kind: TokenKind,
    data: &'q str,
}

/// An operation or fragment found by the first pass: where its selection set starts.
#[derive(Debug, Clone, Copy)]
struct Def<'q> {
    name: Option<&'q str>,
    kind: OpKind,
    /// Fragments: the type condition.
    type_cond: Option<&'q str>,
    directives: u64,
    selection_set: usize,
}

/// The token vector's first reservation: a guess from the length, never more than the token
/// cap allows (a 1 MiB body must not reserve megabytes when `max_tokens` is 100).
pub fn token_capacity(len: usize, token_cap: u32) -> usize {
    (len / 3).min(usize::try_from(token_cap).unwrap_or(usize::MAX))
}

fn syntax(what: &str) -> AnalysisError {
    AnalysisError::Syntax(what.to_string())
}

/// Lexes `query` (apollo-parser's lexer, with its token limit), then parses the executable
/// document by recursive descent while measuring, with every nesting bounded.
pub fn analyze(
    query: &str,
    operation_name: Option<&str>,
    variables: Option<&Value>,
    opts: &Options<'_>,
) -> Result<Analysis, AnalysisError> {
    let mut toks = Vec::with_capacity(token_capacity(query.len(), opts.token_cap));
    let mut count: u32 = 0;
    let lexer = Lexer::new(query).with_limit(usize::try_from(opts.token_cap).unwrap_or(usize::MAX));
    for t in lexer {
        let t = match t {
            Ok(t) => t,
            Err(e) if e.is_limit() => return Err(AnalysisError::TooManyTokens),
            Err(e) => return Err(AnalysisError::Syntax(e.message().to_string())),
        };
        count = count.saturating_add(1);
        match t.kind() {
            TokenKind::Whitespace | TokenKind::Comment | TokenKind::Comma => {}
            kind => toks.push(Tok {
                kind,
                data: t.data(),
            }),
        }
    }
    let mut w = Walker {
        toks: &toks,
        opts,
        variables,
        fragments: HashMap::new(),
        memo: HashMap::new(),
        names: HashSet::new(),
        nesting: 0,
    };
    let ops = w.definitions()?;
    let op = select_operation(&ops, operation_name)?;
    let root_type = match op.kind {
        OpKind::Query => "Query",
        OpKind::Mutation => "Mutation",
        OpKind::Subscription => "Subscription",
    };
    let mut pos = op.selection_set;
    let mut summary = w.selection_set(&mut pos, Some(root_type), true)?;
    summary.directives = summary.directives.saturating_add(op.directives);
    let measured = Measured {
        depth: summary.depth,
        aliases: summary.aliases,
        root_fields: summary.root_fields,
        height: u64::try_from(w.names.len()).unwrap_or(u64::MAX),
        directives: summary.directives,
        tokens: count.saturating_sub(1), // the end-of-file token
        cost: summary.cost,
        introspection: summary.introspection,
        introspection_depth: summary.introspection_depth,
    };
    Ok(Analysis {
        kind: op.kind,
        measured,
        name: op.name.map(str::to_string),
    })
}

fn select_operation<'d, 'q>(
    ops: &'d [Def<'q>],
    name: Option<&str>,
) -> Result<&'d Def<'q>, AnalysisError> {
    match name {
        Some(wanted) => ops
            .iter()
            .find(|op| op.name == Some(wanted))
            .ok_or_else(|| AnalysisError::OperationNotFound(wanted.to_string())),
        None => match ops {
            [op] => Ok(op),
            [] => Err(AnalysisError::NoOperation),
            _ => Err(AnalysisError::OperationNameRequired),
        },
    }
}

/// The measurements of a selection set (or of a fragment, memoised).
#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    depth: u32,
    aliases: u64,
    root_fields: u64,
    directives: u64,
    cost: u64,
    introspection: bool,
    introspection_depth: u32,
}

impl Summary {
    /// `other` as a sibling: sums add, depths take the maximum.
    fn add(&mut self, other: &Summary) {
        self.depth = self.depth.max(other.depth);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.root_fields = self.root_fields.saturating_add(other.root_fields);
        self.directives = self.directives.saturating_add(other.directives);
        self.cost = self.cost.saturating_add(other.cost);
        self.introspection |= other.introspection;
        self.introspection_depth = self.introspection_depth.max(other.introspection_depth);
    }
}

#[derive(Debug, Clone, Copy)]
enum Memo {
    InProgress,
    /// Measured as if at the root; `root_fields` is zeroed for uses below the root.
    Done(Summary),
}

struct Walker<'t, 'q, 'o> {
    toks: &'t [Tok<'q>],
    opts: &'t Options<'o>,
    variables: Option<&'t Value>,
    fragments: HashMap<&'q str, Def<'q>>,
    memo: HashMap<&'q str, Memo>,
    names: HashSet<&'q str>,
    nesting: u32,
}

impl<'q> Walker<'_, 'q, '_> {
    fn kind_at(&self, pos: usize) -> TokenKind {
        self.toks.get(pos).map_or(TokenKind::Eof, |t| t.kind)
    }

    fn name_at(&self, pos: usize) -> Option<&'q str> {
        self.toks
            .get(pos)
            .filter(|t| t.kind == TokenKind::Name)
            .map(|t| t.data)
    }

    fn expect(&self, pos: &mut usize, kind: TokenKind, what: &str) -> Result<(), AnalysisError> {
        if self.kind_at(*pos) == kind {
            *pos += 1;
            Ok(())
        } else {
            Err(syntax(&format!("expected {what}")))
        }
    }

    fn name(&self, pos: &mut usize) -> Result<&'q str, AnalysisError> {
        let n = self
            .name_at(*pos)
            .ok_or_else(|| syntax("expected a name"))?;
        *pos += 1;
        Ok(n)
    }

    fn enter(&mut self) -> Result<(), AnalysisError> {
        self.nesting += 1;
        if self.nesting > WALK_LIMIT || self.nesting as usize > PARSER_RECURSION_LIMIT {
            return Err(AnalysisError::TooDeep);
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting = self.nesting.saturating_sub(1);
    }

    /// First pass: every definition, its selection set skipped (balanced and bounded).
    fn definitions(&mut self) -> Result<Vec<Def<'q>>, AnalysisError> {
        let mut ops = Vec::new();
        let mut pos = 0;
        loop {
            match (self.kind_at(pos), self.name_at(pos)) {
                (TokenKind::Eof, _) => break,
                (TokenKind::LCurly, _) => {
                    let start = pos;
                    self.skip_balanced(&mut pos)?;
                    ops.push(Def {
                        name: None,
                        kind: OpKind::Query,
                        type_cond: None,
                        directives: 0,
                        selection_set: start,
                    });
                }
                (_, Some(kw @ ("query" | "mutation" | "subscription"))) => {
                    pos += 1;
                    let kind = match kw {
                        "mutation" => OpKind::Mutation,
                        "subscription" => OpKind::Subscription,
                        _ => OpKind::Query,
                    };
                    let name = self.name_at(pos);
                    if name.is_some() {
                        pos += 1;
                    }
                    if self.kind_at(pos) == TokenKind::LParen {
                        self.skip_balanced(&mut pos)?;
                    }
                    let directives = self.directives(&mut pos)?;
                    if self.kind_at(pos) != TokenKind::LCurly {
                        return Err(syntax("expected a selection set"));
                    }
                    let start = pos;
                    self.skip_balanced(&mut pos)?;
                    ops.push(Def {
                        name,
                        kind,
                        type_cond: None,
                        directives,
                        selection_set: start,
                    });
                }
                (_, Some("fragment")) => {
                    pos += 1;
                    let name = self.name(&mut pos)?;
                    if name == "on" {
                        return Err(syntax("a fragment cannot be named \"on\""));
                    }
                    if self.name(&mut pos)? != "on" {
                        return Err(syntax("expected \"on\""));
                    }
                    let type_cond = self.name(&mut pos)?;
                    let directives = self.directives(&mut pos)?;
                    if self.kind_at(pos) != TokenKind::LCurly {
                        return Err(syntax("expected a selection set"));
                    }
                    let start = pos;
                    self.skip_balanced(&mut pos)?;
                    let def = Def {
                        name: Some(name),
                        kind: OpKind::Query,
                        type_cond: Some(type_cond),
                        directives,
                        selection_set: start,
                    };
                    if self.fragments.insert(name, def).is_some() {
                        return Err(AnalysisError::DuplicateFragment(name.to_string()));
                    }
                }
                _ => return Err(syntax("only operations and fragments may be sent")),
            }
        }
        Ok(ops)
    }

    /// Skips from an opening `{`, `(` or `[` to just after its match.
    fn skip_balanced(&mut self, pos: &mut usize) -> Result<(), AnalysisError> {
        let mut stack: Vec<TokenKind> = Vec::new();
        loop {
            let kind = self.kind_at(*pos);
            *pos += 1;
            match kind {
                TokenKind::LCurly | TokenKind::LParen | TokenKind::LBracket => {
                    if stack.len() >= PARSER_RECURSION_LIMIT {
                        return Err(AnalysisError::TooDeep);
                    }
                    stack.push(kind);
                }
                TokenKind::RCurly | TokenKind::RParen | TokenKind::RBracket => {
                    let open = match kind {
                        TokenKind::RCurly => TokenKind::LCurly,
                        TokenKind::RParen => TokenKind::LParen,
                        _ => TokenKind::LBracket,
                    };
                    if stack.pop() != Some(open) {
                        return Err(syntax("unbalanced brackets"));
                    }
                    if stack.is_empty() {
                        return Ok(());
                    }
                }
                TokenKind::Eof => return Err(syntax("unexpected end of document")),
                _ => {
                    if stack.is_empty() {
                        return Err(syntax("expected a bracket"));
                    }
                }
            }
        }
    }

    /// `(@name arguments?)*`, counted.
    fn directives(&mut self, pos: &mut usize) -> Result<u64, AnalysisError> {
        let mut n = 0u64;
        while self.kind_at(*pos) == TokenKind::At {
            *pos += 1;
            self.name(pos)?;
            if self.kind_at(*pos) == TokenKind::LParen {
                self.arguments(pos, None)?;
            }
            n = n.saturating_add(1);
        }
        Ok(n)
    }

    /// `(name: value ...)`; returns the largest list multiplier among `list` arguments.
    fn arguments(
        &mut self,
        pos: &mut usize,
        list: Option<&CostModel>,
    ) -> Result<u64, AnalysisError> {
        self.expect(pos, TokenKind::LParen, "(")?;
        let mut mult = 1u64;
        let mut any = false;
        while self.kind_at(*pos) != TokenKind::RParen {
            let name = self.name(pos)?;
            self.expect(pos, TokenKind::Colon, ":")?;
            let at = *pos;
            self.value(pos)?;
            any = true;
            if let Some(model) = list {
                if model.list_arguments.iter().any(|a| a == name) {
                    mult = mult.max(self.list_size(model, at));
                }
            }
        }
        if !any {
            return Err(syntax("empty argument list"));
        }
        *pos += 1;
        Ok(mult)
    }

    /// The value at `at` as a list size: an integer literal or a variable's value.
    fn list_size(&self, model: &CostModel, at: usize) -> u64 {
        let n = match self.toks.get(at) {
            Some(Tok {
                kind: TokenKind::Int,
                data,
            }) => data.parse::<u64>().unwrap_or(model.max_list_size),
            Some(Tok {
                kind: TokenKind::Dollar,
                ..
            }) => match self
                .name_at(at + 1)
                .and_then(|v| self.variables.and_then(|vars| vars.get(v)))
            {
                Some(Value::Number(n)) => n.as_u64().unwrap_or(model.max_list_size),
                // An absent variable may have a default in the document: count the cap.
                _ => model.max_list_size,
            },
            _ => 1,
        };
        n.min(model.max_list_size)
    }

    fn value(&mut self, pos: &mut usize) -> Result<(), AnalysisError> {
        match self.kind_at(*pos) {
            TokenKind::Dollar => {
                *pos += 1;
                self.name(pos)?;
            }
            TokenKind::Int | TokenKind::Float | TokenKind::StringValue | TokenKind::Name => {
                *pos += 1;
            }
            TokenKind::LBracket => {
                self.enter()?;
                *pos += 1;
                while self.kind_at(*pos) != TokenKind::RBracket {
                    self.value(pos)?;
                }
                *pos += 1;
                self.leave();
            }
            TokenKind::LCurly => {
                self.enter()?;
                *pos += 1;
                while self.kind_at(*pos) != TokenKind::RCurly {
                    self.name(pos)?;
                    self.expect(pos, TokenKind::Colon, ":")?;
                    self.value(pos)?;
                }
                *pos += 1;
                self.leave();
            }
            _ => return Err(syntax("expected a value")),
        }
        Ok(())
    }

    /// `parent` is the type the selections apply to, when known (root type, type condition,
    /// or a `returns` entry of the cost model).
    fn selection_set(
        &mut self,
        pos: &mut usize,
        parent: Option<&str>,
        root: bool,
    ) -> Result<Summary, AnalysisError> {
        self.enter()?;
        self.expect(pos, TokenKind::LCurly, "{")?;
        let mut total = Summary::default();
        let mut empty = true;
        while self.kind_at(*pos) != TokenKind::RCurly {
            empty = false;
            let s = if self.kind_at(*pos) == TokenKind::Spread {
                *pos += 1;
                match self.name_at(*pos) {
                    Some(name) if name != "on" => {
                        *pos += 1;
                        let directives = self.directives(pos)?;
                        let mut s = self.fragment(name, root)?;
                        s.directives = s.directives.saturating_add(directives);
                        s
                    }
                    _ => {
                        let mut cond = None;
                        if self.name_at(*pos) == Some("on") {
                            *pos += 1;
                            cond = Some(self.name(pos)?);
                        }
                        let directives = self.directives(pos)?;
                        let mut s = self.selection_set(pos, cond.or(parent), root)?;
                        s.directives = s.directives.saturating_add(directives);
                        s
                    }
                }
            } else {
                self.field(pos, parent, root)?
            };
            total.add(&s);
        }
        if empty {
            return Err(syntax("empty selection set"));
        }
        *pos += 1;
        self.leave();
        Ok(total)
    }

    fn fragment(&mut self, name: &'q str, root: bool) -> Result<Summary, AnalysisError> {
        match self.memo.get(name) {
            Some(Memo::InProgress) => return Err(AnalysisError::FragmentCycle(name.to_string())),
            Some(Memo::Done(s)) => {
                let mut s = *s;
                if !root {
                    s.root_fields = 0;
                }
                return Ok(s);
            }
            None => {}
        }
        let def = *self
            .fragments
            .get(name)
            .ok_or_else(|| AnalysisError::UnknownFragment(name.to_string()))?;
        self.memo.insert(name, Memo::InProgress);
        self.enter()?;
        let mut pos = def.selection_set;
        let mut s = self.selection_set(&mut pos, def.type_cond, true)?;
        self.leave();
        s.directives = s.directives.saturating_add(def.directives);
        self.memo.insert(name, Memo::Done(s));
        if !root {
            s.root_fields = 0;
        }
        Ok(s)
    }

    fn field(
        &mut self,
        pos: &mut usize,
        parent: Option<&str>,
        root: bool,
    ) -> Result<Summary, AnalysisError> {
        let mut name = self.name(pos)?;
        let mut aliases = 0;
        if self.kind_at(*pos) == TokenKind::Colon {
            *pos += 1;
            name = self.name(pos)?;
            aliases = 1;
        }
        let model = self.opts.cost;
        let mult = if self.kind_at(*pos) == TokenKind::LParen {
            self.arguments(pos, model)?
        } else {
            1
        };
        let mut s = Summary {
            aliases,
            directives: self.directives(pos)?,
            ..Summary::default()
        };
        let has_children = self.kind_at(*pos) == TokenKind::LCurly;
        let typename = name == "__typename" && !self.opts.count_typename;
        let returns = if typename {
            None
        } else {
            self.returns(parent, name)
        };
        let child = if has_children {
            self.selection_set(pos, returns.as_deref(), false)?
        } else {
            Summary::default()
        };
        s.aliases = s.aliases.saturating_add(child.aliases);
        s.directives = s.directives.saturating_add(child.directives);
        if typename {
            return Ok(s);
        }
        let is_introspection = name == "__schema" || name == "__type";
        let depth = child.depth.saturating_add(1);
        s.introspection = is_introspection || child.introspection;
        s.introspection_depth = child.introspection_depth;
        if is_introspection && self.opts.introspection != IntrospectionMode::Count {
            // Exempt from max_depth, bounded by its own limit instead.
            s.introspection_depth = s.introspection_depth.max(depth);
        } else {
            s.depth = depth;
        }
        if root {
            s.root_fields = 1;
        }
        self.names.insert(name);
        if let Some(model) = model {
            let own = weight(model, parent, name, returns.as_deref(), has_children);
            s.cost = own.saturating_add(child.cost).saturating_mul(mult);
        }
        Ok(s)
    }

    fn returns(&self, parent: Option<&str>, name: &str) -> Option<String> {
        let model = self.opts.cost?;
        let parent = parent?;
        if model.returns.is_empty() {
            return None;
        }
        model.returns.get(&format!("{parent}.{name}")).cloned()
    }
}

fn weight(
    model: &CostModel,
    parent: Option<&str>,
    name: &str,
    returns: Option<&str>,
    object: bool,
) -> u64 {
    if let Some(p) = parent {
        if !model.typed_fields.is_empty() {
            if let Some(w) = model.typed_fields.get(&format!("{p}.{name}")) {
                return *w;
            }
        }
    }
    if let Some(w) = model.fields.get(name) {
        return *w;
    }
    if let Some(w) = returns.and_then(|t| model.types.get(t)) {
        return *w;
    }
    if object {
        model.default_weight
    } else {
        model.scalar_weight
    }
}

#[cfg(test)]
#[path = "analyze_tests.rs"]
mod tests;
