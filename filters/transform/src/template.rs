//! Value templates: literal text with `{{ variable }}` holes, compiled at config time.
//!
//! Variables: `header.<name>`, `query.<name>`, `path.<n>` / `path.<name>` (captures of the
//! rule's `captures` regex), `consumer.id`, `consumer.plan` (the `apim_consumer` identity),
//! `claim.<name>` (the `apim_claims` filter state), `request.method`, `request.path`.
//! A missing value renders as the empty string. Output is bounded by [`MAX_OUTPUT_BYTES`].

use kit::config_error::{check_header_name, ConfigError, Field};
use kit::identity::Identity;
use kit::query::query_values;
use kit::request::RequestHead;
use serde_json::Value;

/// The largest value a template may produce; a larger result is an error, never truncated.
pub const MAX_OUTPUT_BYTES: usize = 8 * 1024;
const MAX_TEMPLATE_LEN: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    Header(String),
    Query(String),
    Capture(usize),
    ConsumerId,
    ConsumerPlan,
    Claim(String),
    Method,
    Path,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(Var),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    parts: Vec<Part>,
}

/// What a template renders from: the request as it arrived (before any operation).
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub head: &'a RequestHead,
    /// Capture groups of the rule's `captures` regex, by index (0 is the whole match).
    pub captures: &'a [Option<String>],
    pub identity: Option<&'a Identity>,
    pub claims: Option<&'a Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// Why a value built from the request cannot be sent on: the request is refused (400) rather
/// than forwarded with it (Envoy would refuse to forward it and answer 503) or half-transformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Longer than [`MAX_OUTPUT_BYTES`].
    TooLarge,
    /// A header value with a control byte (CR, LF, NUL, ...): `kit::header_value::check`.
    UnsafeHeader(String, kit::header_value::Unsafe),
    /// A rewritten path that is ambiguous (`kit::request::path_is_ambiguous`: a dot segment,
    /// an encoded `/`, `\` or `.`, an empty segment), which a backend may resolve elsewhere.
    AmbiguousPath,
}

impl From<TooLarge> for Refused {
    fn from(_: TooLarge) -> Self {
        Refused::TooLarge
    }
}

impl Template {
    /// `names` are the capture-group names of the rule's `captures` regex (index → name);
    /// `None` when the rule has no regex, which makes any `path.*` variable an error.
    pub fn parse(
        text: &str,
        names: Option<&[Option<String>]>,
        field: &Field,
    ) -> Result<Self, ConfigError> {
        if text.len() > MAX_TEMPLATE_LEN {
            return Err(field.error(format!("longer than {MAX_TEMPLATE_LEN} characters")));
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let (lit, after) = rest.split_at(open);
            if !lit.is_empty() {
                parts.push(Part::Lit(lit.to_string()));
            }
            let body = after.get(2..).unwrap_or("");
            let Some(close) = body.find("}}") else {
                return Err(field.error("unclosed \"{{\""));
            };
            let (inner, tail) = body.split_at(close);
            parts.push(Part::Var(parse_var(inner.trim(), names, field)?));
            rest = tail.get(2..).unwrap_or("");
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        Ok(Self { parts })
    }

    pub fn literal(text: &str) -> Self {
        Self {
            parts: vec![Part::Lit(text.to_string())],
        }
    }

    /// The literal text of the template (config-time checks).
    pub fn literals(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Lit(s) => Some(s.as_str()),
            Part::Var(_) => None,
        })
    }

    /// Renders a header value: bounded, and refused when it carries a control byte.
    pub fn render_header(&self, name: &str, ctx: &Ctx<'_>) -> Result<Vec<u8>, Refused> {
        let v = self.render(ctx)?;
        kit::header_value::check(&v).map_err(|why| Refused::UnsafeHeader(name.to_string(), why))?;
        Ok(v)
    }

    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Lit(_) => None,
        })
    }

    /// Renders for a path: each variable's value is percent-encoded except RFC 3986 unreserved
    /// characters, so a value taken from the request can never add a `/`, `?` or `#` to the
    /// path. (Dot segments are refused by the caller: `.` is unreserved.)
    pub fn render_path(&self, ctx: &Ctx<'_>) -> Result<Vec<u8>, TooLarge> {
        let mut out = Vec::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.extend_from_slice(s.as_bytes()),
                Part::Var(v) => {
                    let mut raw = Vec::new();
                    resolve(v, ctx, &mut raw);
                    for b in raw {
                        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                            out.push(b);
                        } else {
                            out.extend_from_slice(format!("%{b:02X}").as_bytes());
                        }
                    }
                }
            }
            if out.len() > MAX_OUTPUT_BYTES {
                return Err(TooLarge);
            }
        }
        Ok(out)
    }

    pub fn render(&self, ctx: &Ctx<'_>) -> Result<Vec<u8>, TooLarge> {
        let mut out = Vec::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.extend_from_slice(s.as_bytes()),
                Part::Var(v) => resolve(v, ctx, &mut out),
            }
            if out.len() > MAX_OUTPUT_BYTES {
                return Err(TooLarge);
            }
        }
        Ok(out)
    }
}

fn parse_var(
    inner: &str,
    names: Option<&[Option<String>]>,
    field: &Field,
) -> Result<Var, ConfigError> {
    let (kind, arg) = inner.split_once('.').unwrap_or((inner, ""));
    let need_arg = |what: &str| -> Result<String, ConfigError> {
        if arg.is_empty() {
            Err(field.error(format!("\"{{{{{inner}}}}}\": {what} name is missing")))
        } else {
            Ok(arg.to_string())
        }
    };
    Ok(match kind {
        "header" => Var::Header(check_header_name(field, arg).or_else(|_| {
            // Pseudo-headers may be read (never written).
            if arg.starts_with(':') && arg.len() > 1 {
                Ok(arg.to_ascii_lowercase())
            } else {
                Err(field.error(format!("\"{{{{{inner}}}}}\": invalid header name")))
            }
        })?),
        "query" => Var::Query(need_arg("parameter")?),
        "claim" => Var::Claim(need_arg("claim")?),
        "consumer" => match arg {
            "id" => Var::ConsumerId,
            "plan" => Var::ConsumerPlan,
            _ => return Err(field.error(format!("\"{{{{{inner}}}}}\": consumer has id and plan"))),
        },
        "request" => match arg {
            "method" => Var::Method,
            "path" => Var::Path,
            _ => {
                return Err(field.error(format!("\"{{{{{inner}}}}}\": request has method and path")))
            }
        },
        "path" => {
            let Some(names) = names else {
                return Err(field.error(format!(
                    "\"{{{{{inner}}}}}\": path captures need the rule's \"captures\" regex"
                )));
            };
            let index = match arg.parse::<usize>() {
                Ok(i) if i < names.len() => Some(i),
                Ok(_) => None,
                Err(_) => names.iter().position(|n| n.as_deref() == Some(arg)),
            };
            Var::Capture(index.ok_or_else(|| {
                field.error(format!("\"{{{{{inner}}}}}\": no such capture group"))
            })?)
        }
        _ => {
            return Err(field.error(format!(
            "unknown variable \"{{{{{inner}}}}}\" (header, query, path, consumer, claim, request)"
        )))
        }
    })
}

fn resolve(var: &Var, ctx: &Ctx<'_>, out: &mut Vec<u8>) {
    match var {
        Var::Header(n) => {
            if let Some(v) = ctx.head.get(n) {
                out.extend_from_slice(v);
            }
        }
        Var::Query(n) => {
            if let Some(v) = ctx.head.query().and_then(|q| query_values(q, n).next()) {
                out.extend_from_slice(&v);
            }
        }
        Var::Capture(i) => {
            if let Some(Some(v)) = ctx.captures.get(*i) {
                out.extend_from_slice(v.as_bytes());
            }
        }
        Var::ConsumerId => {
            if let Some(id) = ctx.identity {
                out.extend_from_slice(id.id.as_bytes());
            }
        }
        Var::ConsumerPlan => {
            if let Some(plan) = ctx.identity.and_then(|i| i.plan.as_deref()) {
                out.extend_from_slice(plan.as_bytes());
            }
        }
        Var::Claim(n) => match ctx.claims.and_then(|c| c.get(n)) {
            Some(Value::String(s)) => out.extend_from_slice(s.as_bytes()),
            Some(Value::Null) | None => {}
            Some(other) => out.extend_from_slice(other.to_string().as_bytes()),
        },
        Var::Method => out.extend_from_slice(ctx.head.method().as_bytes()),
        Var::Path => out.extend_from_slice(ctx.head.path().as_bytes()),
    }
}
