//! Configuration: the JSON a user writes (raw serde types) and its validated, precompiled form.
//!
//! Phase one (`kit::config_error::parse_json`) refuses unknown fields and wrong types; phase two
//! ([`Config::from_raw`]) checks meaning (header names, pointers, regexes, template variables)
//! and compiles everything the request path needs.

use crate::body::{BodyOp, SetValue, ValueType};
use crate::graphql::{GraphQl, Variable};
use crate::headers::{HeaderOps, PROTECTED};
use crate::patch;
use crate::pointer::Pointer;
use crate::template::{Template, Var};
use crate::uri::QueryOps;
use kit::config_error::{check_header_name, parse_json, ConfigError, Field};
use kit::matcher::{RawMatch, RouteMatcher, RuleSet};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::rc::Rc;

pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
pub const MAX_BODY_BYTES_LIMIT: usize = 16 * 1024 * 1024;
pub const MAX_RULES: usize = 1024;
pub const MAX_OPS: usize = 256;
const MAX_REGEX_LEN: usize = 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub rules: Vec<RawRule>,
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    #[serde(default)]
    pub on_oversize: OnOversize,
    #[serde(default)]
    pub on_invalid_body: OnInvalid,
}

fn default_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

/// A body larger than `max_body_bytes`: forwarded untouched (and counted), or refused with 413.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnOversize {
    /// Forwarded untouched (counted): an operator's explicit opt-out.
    Pass,
    /// Refused with 413. The default: otherwise a client could send a large body to get past a
    /// transform that removes or rewrites something in it.
    #[default]
    Reject,
}

/// A body that is not JSON or that an operation cannot apply to: refused (400 for a request,
/// 502 for a response), or forwarded untouched (and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalid {
    #[default]
    Reject,
    Pass,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "match")]
    pub matcher: RawMatch,
    #[serde(default)]
    pub captures: Option<String>,
    #[serde(default)]
    pub request: RawRequest,
    #[serde(default)]
    pub response: Vec<RawResponse>,
    #[serde(default)]
    pub graphql: Option<RawGraphQl>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub query: RawQuery,
    #[serde(default)]
    pub headers: RawHeaders,
    #[serde(default)]
    pub body: Vec<RawBodyOp>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaders {
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    #[serde(default)]
    pub replace: BTreeMap<String, String>,
    #[serde(default)]
    pub add: BTreeMap<String, String>,
    #[serde(default)]
    pub append: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuery {
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub add: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResponse {
    /// Status codes (`200`) or classes (`"2xx"`); empty means every status.
    #[serde(default)]
    pub status: Vec<Value>,
    #[serde(default)]
    pub headers: RawHeaders,
    #[serde(default)]
    pub body: Vec<RawBodyOp>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawBodyOp {
    Set {
        path: String,
        #[serde(default)]
        value: Option<Value>,
        #[serde(default)]
        template: Option<String>,
        #[serde(default, rename = "type")]
        kind: Option<RawType>,
    },
    Remove {
        path: String,
    },
    Rename {
        path: String,
        to: String,
    },
    Copy {
        from: String,
        path: String,
    },
    Move {
        from: String,
        path: String,
    },
    MergePatch {
        patch: Value,
    },
    JsonPatch {
        patch: Value,
    },
}

#[derive(Debug, Clone, Copy, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RawType {
    #[default]
    String,
    Int,
    Float,
    Bool,
    Json,
}

impl From<RawType> for ValueType {
    fn from(t: RawType) -> Self {
        match t {
            RawType::String => ValueType::String,
            RawType::Int => ValueType::Int,
            RawType::Float => ValueType::Float,
            RawType::Bool => ValueType::Bool,
            RawType::Json => ValueType::Json,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGraphQl {
    /// The Envoy cluster of the GraphQL server.
    pub cluster: String,
    /// `:authority` of the call; the cluster name by default.
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default = "default_graphql_path")]
    pub path: String,
    pub query: String,
    #[serde(default)]
    pub operation_name: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, RawVariable>,
    /// Answer with `data.<unwrap>` instead of the whole GraphQL response.
    #[serde(default)]
    pub unwrap: Option<String>,
    /// Request headers copied onto the GraphQL call (e.g. `authorization`).
    #[serde(default)]
    pub forward_headers: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_graphql_path() -> String {
    "/graphql".into()
}

fn default_timeout() -> u64 {
    5000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariable {
    pub template: String,
    #[serde(default, rename = "type")]
    pub kind: RawType,
}

/// Which response a response rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMatch {
    Code(u16),
    Class(u16),
}

impl StatusMatch {
    pub fn matches(self, status: u16) -> bool {
        match self {
            Self::Code(c) => c == status,
            Self::Class(c) => status / 100 == c,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RequestOps {
    pub method: Option<String>,
    pub path: Option<Template>,
    pub query: QueryOps,
    pub headers: HeaderOps,
    pub body: Vec<BodyOp>,
}

#[derive(Debug, Clone)]
pub struct ResponseOps {
    pub status: Vec<StatusMatch>,
    pub headers: HeaderOps,
    pub body: Vec<BodyOp>,
}

impl ResponseOps {
    pub fn applies_to(&self, status: u16) -> bool {
        self.status.is_empty() || self.status.iter().any(|s| s.matches(status))
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub captures: Option<regex_lite::Regex>,
    pub request: RequestOps,
    pub response: Vec<ResponseOps>,
    pub graphql: Option<GraphQl>,
    /// Some response rule edits bodies: the request's `accept-encoding` is removed so the
    /// upstream answers uncompressed.
    pub response_bodies: bool,
}

/// What the request path must fetch from the host, computed once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetch {
    /// The request headers the rules' matchers read: a request no rule matches costs these
    /// reads, never a copy of the whole header map.
    pub match_headers: Vec<String>,
    pub route_name: bool,
    pub identity: bool,
    pub claims: bool,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub rules: RuleSet<Rc<Rule>>,
    pub max_body_bytes: usize,
    pub on_oversize: OnOversize,
    pub on_invalid_body: OnInvalid,
    pub fetch: Fetch,
}

impl Config {
    /// What `apim validate` prints: configured choices that let a body through untransformed.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.on_oversize == OnOversize::Pass {
            w.push(
                "on_oversize: pass: a body over max_body_bytes goes upstream untransformed"
                    .to_string(),
            );
        }
        if self.on_invalid_body == OnInvalid::Pass {
            w.push(
                "on_invalid_body: pass: a body that is not valid JSON goes upstream untransformed"
                    .to_string(),
            );
        }
        w
    }
}

impl Config {
    /// The entry point (also used by `apim validate`).
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        Self::from_raw(parse_json(bytes)?)
    }

    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        let root = Field::root();
        if raw.max_body_bytes == 0 || raw.max_body_bytes > MAX_BODY_BYTES_LIMIT {
            return Err(root
                .key("max_body_bytes")
                .error(format!("must be between 1 and {MAX_BODY_BYTES_LIMIT}")));
        }
        if raw.rules.len() > MAX_RULES {
            return Err(root
                .key("rules")
                .error(format!("more than {MAX_RULES} rules")));
        }
        let mut fetch = Fetch::default();
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, r) in raw.rules.iter().enumerate() {
            let f = root.key("rules").index(i);
            let matcher = RouteMatcher::compile(&r.matcher, &f.key("match"))?;
            if matcher.has_grpc() {
                refuse_body_ops_on_grpc(r, &f)?;
            }
            let mut vars = Vec::new();
            let rule = compile_rule(r, i, &f, &mut vars)?;
            for v in &vars {
                match v {
                    Var::ConsumerId | Var::ConsumerPlan => fetch.identity = true,
                    Var::Claim(_) => fetch.claims = true,
                    _ => {}
                }
            }
            rules.push((matcher, Rc::new(rule)));
        }
        let rules = RuleSet::new(rules);
        fetch.route_name = rules.needs_route_name();
        fetch.match_headers = rules
            .needed_headers()
            .into_iter()
            .map(str::to_string)
            .collect();
        Ok(Config {
            rules,
            max_body_bytes: raw.max_body_bytes,
            on_oversize: raw.on_oversize,
            on_invalid_body: raw.on_invalid_body,
            fetch,
        })
    }
}

/// A rule with a `grpc` condition may edit headers (gRPC metadata), path and method, but no
/// body: a gRPC body is length-prefixed protobuf frames, not JSON, and REST→GraphQL needs a
/// JSON answer. (A rule without one keeps its body operations: they apply to JSON bodies only,
/// and no gRPC content type, `application/grpc+json` included, counts as JSON.)
fn refuse_body_ops_on_grpc(r: &RawRule, f: &Field) -> Result<(), ConfigError> {
    const WHY: &str = "body operations read JSON and this rule matches gRPC calls \
                       (match.grpc), whose bodies are protobuf frames";
    if !r.request.body.is_empty() {
        return Err(f.key("request").key("body").error(WHY));
    }
    for (j, resp) in r.response.iter().enumerate() {
        if !resp.body.is_empty() {
            return Err(f.key("response").index(j).key("body").error(WHY));
        }
    }
    if r.graphql.is_some() {
        return Err(f
            .key("graphql")
            .error("REST→GraphQL cannot serve a gRPC call (match.grpc)"));
    }
    Ok(())
}

/// Compiles templates of one rule, collecting the variables they use.
struct Ctx<'a> {
    names: Option<Vec<Option<String>>>,
    vars: &'a mut Vec<Var>,
}

impl Ctx<'_> {
    fn template(&mut self, text: &str, field: &Field) -> Result<Template, ConfigError> {
        let t = Template::parse(text, self.names.as_deref(), field)?;
        self.vars.extend(t.vars().cloned());
        Ok(t)
    }
}

fn compile_rule(
    r: &RawRule,
    i: usize,
    f: &Field,
    vars: &mut Vec<Var>,
) -> Result<Rule, ConfigError> {
    let captures = match &r.captures {
        None => None,
        Some(re) => {
            let cf = f.key("captures");
            if re.len() > MAX_REGEX_LEN {
                return Err(cf.error(format!("longer than {MAX_REGEX_LEN} characters")));
            }
            Some(regex_lite::Regex::new(re).map_err(|e| cf.error(format!("invalid regex: {e}")))?)
        }
    };
    let names = captures
        .as_ref()
        .map(|re| re.capture_names().map(|n| n.map(str::to_string)).collect());
    let mut cx = Ctx { names, vars };
    let rf = f.key("request");
    let method = match &r.request.method {
        None => None,
        Some(m) if !m.is_empty() && m.bytes().all(kit::config_error::is_token_byte) => {
            Some(m.clone())
        }
        Some(m) => {
            return Err(rf
                .key("method")
                .error(format!("\"{m}\" is not an HTTP method")))
        }
    };
    let path = match &r.request.path {
        None => None,
        Some(p) => Some(cx.template(p, &rf.key("path"))?),
    };
    let request = RequestOps {
        method,
        path,
        query: compile_query(&r.request.query, &rf.key("query"), &mut cx)?,
        headers: compile_headers(&r.request.headers, &rf.key("headers"), &mut cx)?,
        body: compile_body(&r.request.body, &rf.key("body"), &mut cx)?,
    };
    let mut response = Vec::with_capacity(r.response.len());
    for (j, resp) in r.response.iter().enumerate() {
        let sf = f.key("response").index(j);
        let mut status = Vec::new();
        for (k, s) in resp.status.iter().enumerate() {
            status.push(parse_status(s).ok_or_else(|| {
                sf.key("status").index(k).error(format!(
                    "{s} is not a status code (100-599) or class (\"2xx\")"
                ))
            })?);
        }
        response.push(ResponseOps {
            status,
            headers: compile_headers(&resp.headers, &sf.key("headers"), &mut cx)?,
            body: compile_body(&resp.body, &sf.key("body"), &mut cx)?,
        });
    }
    let graphql = match &r.graphql {
        None => None,
        Some(g) => Some(compile_graphql(g, &f.key("graphql"), &mut cx)?),
    };
    let response_bodies = response.iter().any(|r| !r.body.is_empty());
    Ok(Rule {
        name: r.name.clone().unwrap_or_else(|| format!("rules[{i}]")),
        captures,
        request,
        response,
        graphql,
        response_bodies,
    })
}

fn parse_status(v: &Value) -> Option<StatusMatch> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| (100..=599).contains(c))
            .map(StatusMatch::Code),
        Value::String(s) => {
            let b = s.as_bytes();
            match b {
                [d @ b'1'..=b'5', b'x' | b'X', b'x' | b'X'] => {
                    Some(StatusMatch::Class(u16::from(d - b'0')))
                }
                _ => s
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .map(StatusMatch::Code),
            }
        }
        _ => None,
    }
}

fn header_name(field: &Field, name: &str) -> Result<String, ConfigError> {
    let lower = check_header_name(field, name)?;
    if PROTECTED.contains(&lower.as_str()) {
        return Err(field.error(format!("\"{lower}\" is protected")));
    }
    Ok(lower)
}

fn compile_headers(
    raw: &RawHeaders,
    f: &Field,
    cx: &mut Ctx<'_>,
) -> Result<HeaderOps, ConfigError> {
    let mut ops = HeaderOps::default();
    for (i, n) in raw.remove.iter().enumerate() {
        ops.remove.push(header_name(&f.key("remove").index(i), n)?);
    }
    for (from, to) in &raw.rename {
        let rf = f.key("rename").key(from);
        ops.rename
            .push((header_name(&rf, from)?, header_name(&rf, to)?));
    }
    let mut templated = |map: &BTreeMap<String, String>,
                         key: &str|
     -> Result<Vec<(String, Template)>, ConfigError> {
        let mut out = Vec::with_capacity(map.len());
        for (name, value) in map {
            let vf = f.key(key).key(name);
            let t = cx.template(value, &vf)?;
            if t.literals()
                .any(|l| kit::header_value::check(l.as_bytes()).is_err())
            {
                return Err(vf.error("a header value cannot contain control characters"));
            }
            out.push((header_name(&vf, name)?, t));
        }
        Ok(out)
    };
    ops.replace = templated(&raw.replace, "replace")?;
    ops.add = templated(&raw.add, "add")?;
    ops.append = templated(&raw.append, "append")?;
    if ops.remove.len() + ops.rename.len() + ops.replace.len() + ops.add.len() + ops.append.len()
        > MAX_OPS
    {
        return Err(f.error(format!("more than {MAX_OPS} operations")));
    }
    Ok(ops)
}

fn query_name(field: &Field, name: &str) -> Result<String, ConfigError> {
    if name.is_empty() {
        return Err(field.error("parameter name is empty"));
    }
    Ok(name.to_string())
}

fn compile_query(raw: &RawQuery, f: &Field, cx: &mut Ctx<'_>) -> Result<QueryOps, ConfigError> {
    let mut ops = QueryOps::default();
    for (i, n) in raw.remove.iter().enumerate() {
        ops.remove.push(query_name(&f.key("remove").index(i), n)?);
    }
    for (from, to) in &raw.rename {
        let rf = f.key("rename").key(from);
        ops.rename
            .push((query_name(&rf, from)?, query_name(&rf, to)?));
    }
    for (name, value) in &raw.set {
        let vf = f.key("set").key(name);
        ops.set
            .push((query_name(&vf, name)?, cx.template(value, &vf)?));
    }
    for (name, value) in &raw.add {
        let vf = f.key("add").key(name);
        ops.add
            .push((query_name(&vf, name)?, cx.template(value, &vf)?));
    }
    Ok(ops)
}

fn pointer(text: &str, f: &Field) -> Result<Pointer, ConfigError> {
    Pointer::parse(text).map_err(|e| f.error(e))
}

fn compile_body(
    raw: &[RawBodyOp],
    f: &Field,
    cx: &mut Ctx<'_>,
) -> Result<Vec<BodyOp>, ConfigError> {
    if raw.len() > MAX_OPS {
        return Err(f.error(format!("more than {MAX_OPS} operations")));
    }
    let mut ops = Vec::with_capacity(raw.len());
    for (i, op) in raw.iter().enumerate() {
        let of = f.index(i);
        ops.push(match op {
            RawBodyOp::Set {
                path,
                value,
                template,
                kind,
            } => {
                let p = pointer(path, &of.key("path"))?;
                match (value, template) {
                    (Some(v), None) => {
                        if kind.is_some() {
                            return Err(of.key("type").error("only applies to \"template\""));
                        }
                        BodyOp::Set(p, SetValue::Json(v.clone()))
                    }
                    (None, Some(t)) => BodyOp::Set(
                        p,
                        SetValue::Template(
                            cx.template(t, &of.key("template"))?,
                            kind.unwrap_or_default().into(),
                        ),
                    ),
                    _ => {
                        return Err(of.error("set needs exactly one of \"value\" and \"template\""))
                    }
                }
            }
            RawBodyOp::Remove { path } => {
                let p = pointer(path, &of.key("path"))?;
                if p.is_root() {
                    return Err(of.key("path").error("cannot remove the whole document"));
                }
                BodyOp::Remove(p)
            }
            RawBodyOp::Rename { path, to } => {
                let p = pointer(path, &of.key("path"))?;
                if p.is_root() {
                    return Err(of.key("path").error("cannot rename the whole document"));
                }
                if to.is_empty() {
                    return Err(of.key("to").error("must not be empty"));
                }
                BodyOp::Rename(p, to.clone())
            }
            RawBodyOp::Copy { from, path } => BodyOp::Copy {
                from: pointer(from, &of.key("from"))?,
                path: pointer(path, &of.key("path"))?,
            },
            RawBodyOp::Move { from, path } => {
                let from = pointer(from, &of.key("from"))?;
                let path = pointer(path, &of.key("path"))?;
                if from.is_root() || from.is_proper_prefix_of(&path) {
                    return Err(of.key("path").error("cannot move a value into itself"));
                }
                BodyOp::Move { from, path }
            }
            RawBodyOp::MergePatch { patch } => BodyOp::MergePatch(patch.clone()),
            RawBodyOp::JsonPatch { patch: doc } => BodyOp::JsonPatch(
                patch::compile(doc).map_err(|(j, e)| of.key("patch").index(j).error(e))?,
            ),
        });
    }
    Ok(ops)
}

fn compile_graphql(g: &RawGraphQl, f: &Field, cx: &mut Ctx<'_>) -> Result<GraphQl, ConfigError> {
    if g.cluster.is_empty() {
        return Err(f.key("cluster").error("must not be empty"));
    }
    if g.query.trim().is_empty() {
        return Err(f.key("query").error("must not be empty"));
    }
    if !g.path.starts_with('/') {
        return Err(f.key("path").error("must start with '/'"));
    }
    if g.timeout_ms == 0 || g.timeout_ms > 60_000 {
        return Err(f.key("timeout_ms").error("must be between 1 and 60000"));
    }
    let mut variables = Vec::with_capacity(g.variables.len());
    for (name, v) in &g.variables {
        let vf = f.key("variables").key(name);
        variables.push(Variable {
            name: name.clone(),
            template: cx.template(&v.template, &vf.key("template"))?,
            kind: v.kind.into(),
        });
    }
    let mut forward = Vec::with_capacity(g.forward_headers.len());
    for (i, h) in g.forward_headers.iter().enumerate() {
        forward.push(check_header_name(&f.key("forward_headers").index(i), h)?);
    }
    if let Some(u) = &g.unwrap {
        if u.is_empty() {
            return Err(f.key("unwrap").error("must not be empty"));
        }
    }
    Ok(GraphQl {
        cluster: g.cluster.clone(),
        authority: g.authority.clone().unwrap_or_else(|| g.cluster.clone()),
        path: g.path.clone(),
        query: g.query.clone(),
        operation_name: g.operation_name.clone(),
        variables,
        unwrap: g.unwrap.clone(),
        forward_headers: forward,
        timeout_ms: g.timeout_ms,
    })
}
