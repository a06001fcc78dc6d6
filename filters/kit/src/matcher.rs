//! Per-route rule matching, shared by every filter.
//!
//! A rule's `match` block selects requests by Envoy's route name (`xds.route_name`), path
//! (prefix, exact, or a regex that must match the whole path), methods and hosts. Every
//! condition present must hold; an empty block matches everything. Rules are tried in order
//! and the first match wins, as Envoy's own routes do.

use crate::config_error::{ConfigError, Field};
use crate::request::RequestHead;
use serde::Deserialize;

const MAX_REGEX_LEN: usize = 1024;

/// The raw `match` block of a rule.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    /// Envoy route name, exact.
    #[serde(default)]
    pub route_name: Option<String>,
    /// Path condition (the query string is not part of it).
    #[serde(default)]
    pub path: Option<RawPathMatch>,
    /// HTTP methods, any of (case-sensitive, as HTTP says).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Hosts, any of: exact (`api.example.com`) or a leading wildcard (`*.example.com`),
    /// compared without port and case-insensitively.
    #[serde(default)]
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawPathMatch {
    Prefix(String),
    Exact(String),
    Regex(String),
}

#[derive(Debug, Clone)]
enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(regex_lite::Regex),
}

#[derive(Debug, Clone)]
enum HostMatch {
    Exact(String),
    /// `*.example.com` stored as `.example.com`.
    Suffix(String),
}

/// A compiled `match` block.
#[derive(Debug, Clone, Default)]
pub struct RouteMatcher {
    route_name: Option<String>,
    path: Option<PathMatch>,
    methods: Vec<String>,
    hosts: Vec<HostMatch>,
}

/// What a matcher looks at. The route name is fetched only when some rule needs it.
#[derive(Debug, Clone, Copy)]
pub struct MatchInput<'a> {
    pub route_name: Option<&'a str>,
    pub head: &'a RequestHead,
}

impl RouteMatcher {
    /// Phase two for a `match` block; `field` is where it sits in the config.
    pub fn compile(raw: &RawMatch, field: &Field) -> Result<Self, ConfigError> {
        if let Some(name) = &raw.route_name {
            if name.is_empty() {
                return Err(field.key("route_name").error("must not be empty"));
            }
        }
        let path = match &raw.path {
            None => None,
            Some(RawPathMatch::Prefix(p)) => {
                Some(PathMatch::Prefix(check_path(p, &field.key("path.prefix"))?))
            }
            Some(RawPathMatch::Exact(p)) => {
                Some(PathMatch::Exact(check_path(p, &field.key("path.exact"))?))
            }
            Some(RawPathMatch::Regex(r)) => {
                let f = field.key("path.regex");
                if r.len() > MAX_REGEX_LEN {
                    return Err(f.error(format!("longer than {MAX_REGEX_LEN} characters")));
                }
                let re = regex_lite::Regex::new(&format!("^(?:{r})$"))
                    .map_err(|e| f.error(format!("invalid regex: {e}")))?;
                Some(PathMatch::Regex(re))
            }
        };
        let mut methods = Vec::with_capacity(raw.methods.len());
        for (i, m) in raw.methods.iter().enumerate() {
            if m.is_empty() || !m.bytes().all(crate::config_error::is_token_byte) {
                return Err(field
                    .key("methods")
                    .index(i)
                    .error(format!("\"{m}\" is not an HTTP method")));
            }
            methods.push(m.clone());
        }
        let mut hosts = Vec::with_capacity(raw.hosts.len());
        for (i, h) in raw.hosts.iter().enumerate() {
            let h = h.to_ascii_lowercase();
            let f = field.key("hosts").index(i);
            if let Some(rest) = h.strip_prefix("*.") {
                if rest.is_empty() || rest.contains('*') {
                    return Err(f.error(format!("\"{h}\" is not a valid wildcard host")));
                }
                hosts.push(HostMatch::Suffix(format!(".{rest}")));
            } else if h.is_empty() || h.contains('*') {
                return Err(f.error(format!(
                    "\"{h}\" is not a valid host (a wildcard must lead: *.example.com)"
                )));
            } else {
                hosts.push(HostMatch::Exact(h));
            }
        }
        Ok(Self {
            route_name: raw.route_name.clone(),
            path,
            methods,
            hosts,
        })
    }

    pub fn needs_route_name(&self) -> bool {
        self.route_name.is_some()
    }

    /// The request headers this matcher reads, so the glue fetches only those.
    pub fn needed_headers(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.path.is_some() {
            names.push(":path");
        }
        if !self.methods.is_empty() {
            names.push(":method");
        }
        if !self.hosts.is_empty() {
            names.push(":authority");
        }
        names
    }

    pub fn matches(&self, input: &MatchInput<'_>) -> bool {
        self.matches_with(input, &mut None)
    }

    /// `path` caches the normalised path, so a rule set normalises it once per request.
    fn matches_with(&self, input: &MatchInput<'_>, path: &mut Option<String>) -> bool {
        if let Some(want) = &self.route_name {
            if input.route_name != Some(want.as_str()) {
                return false;
            }
        }
        if let Some(p) = &self.path {
            let path = path.get_or_insert_with(|| input.head.match_path());
            let ok = match p {
                PathMatch::Prefix(prefix) => path.starts_with(prefix.as_str()),
                PathMatch::Exact(exact) => path == exact,
                PathMatch::Regex(re) => re.is_match(path),
            };
            if !ok {
                return false;
            }
        }
        if !self.methods.is_empty() {
            let method = input.head.method();
            // Methods are case-sensitive in HTTP, but a server that accepts `post` as POST must
            // not see it pass a rule written for POST.
            if !self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)) {
                return false;
            }
        }
        if !self.hosts.is_empty() {
            let host = input.head.host().to_ascii_lowercase();
            let ok = self.hosts.iter().any(|h| match h {
                HostMatch::Exact(e) => *e == host,
                HostMatch::Suffix(s) => host.ends_with(s.as_str()) && host.len() > s.len(),
            });
            if !ok {
                return false;
            }
        }
        true
    }
}

fn check_path(p: &str, field: &Field) -> Result<String, ConfigError> {
    if !p.starts_with('/') {
        return Err(field.error(format!("\"{p}\" must start with '/'")));
    }
    Ok(p.to_string())
}

/// Ordered rules; the first whose matcher holds decides.
#[derive(Debug, Clone)]
pub struct RuleSet<T> {
    rules: Vec<(RouteMatcher, T)>,
    needs_route_name: bool,
}

impl<T> Default for RuleSet<T> {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            needs_route_name: false,
        }
    }
}

impl<T> RuleSet<T> {
    pub fn new(rules: Vec<(RouteMatcher, T)>) -> Self {
        let needs_route_name = rules.iter().any(|(m, _)| m.needs_route_name());
        Self {
            rules,
            needs_route_name,
        }
    }

    /// Whether the glue must fetch `xds.route_name` (a host call) before matching.
    pub fn needs_route_name(&self) -> bool {
        self.needs_route_name
    }

    /// Every request header some rule reads.
    pub fn needed_headers(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        for n in self.rules.iter().flat_map(|(m, _)| m.needed_headers()) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        names
    }

    pub fn first(&self, input: &MatchInput<'_>) -> Option<&T> {
        let mut path = None;
        self.rules
            .iter()
            .find(|(m, _)| m.matches_with(input, &mut path))
            .map(|(_, t)| t)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn m(json: &str) -> RouteMatcher {
        let raw: RawMatch = serde_json::from_str(json).unwrap();
        RouteMatcher::compile(&raw, &Field::root().key("match")).unwrap()
    }

    fn head(method: &str, path: &str, host: &str) -> RequestHead {
        RequestHead::from_pairs(&[(":method", method), (":path", path), (":authority", host)])
    }

    #[test]
    fn match_table() {
        let cases: &[(&str, &str, &str, &str, Option<&str>, bool)] = &[
            (r#"{}"#, "GET", "/x", "a", None, true),
            (
                r#"{"path":{"prefix":"/api"}}"#,
                "GET",
                "/api/v1?q=1",
                "a",
                None,
                true,
            ),
            (
                r#"{"path":{"prefix":"/api"}}"#,
                "GET",
                "/ap?api",
                "a",
                None,
                false,
            ),
            (
                r#"{"path":{"exact":"/health"}}"#,
                "GET",
                "/health?x",
                "a",
                None,
                true,
            ),
            (
                r#"{"path":{"exact":"/health"}}"#,
                "GET",
                "/health/x",
                "a",
                None,
                false,
            ),
            (
                r#"{"path":{"regex":"/pets/[0-9]+"}}"#,
                "GET",
                "/pets/12",
                "a",
                None,
                true,
            ),
            (
                r#"{"path":{"regex":"/pets/[0-9]+"}}"#,
                "GET",
                "/pets/12/x",
                "a",
                None,
                false,
            ),
            (
                r#"{"methods":["GET","HEAD"]}"#,
                "HEAD",
                "/",
                "a",
                None,
                true,
            ),
            (r#"{"methods":["POST"]}"#, "post", "/", "a", None, true),
            (
                r#"{"path":{"prefix":"/admin"}}"#,
                "GET",
                "//admin/x",
                "a",
                None,
                true,
            ),
            (
                r#"{"path":{"prefix":"/admin"}}"#,
                "GET",
                "/%61dmin",
                "a",
                None,
                true,
            ),
            (
                r#"{"path":{"prefix":"/admin"}}"#,
                "GET",
                "/x/../admin",
                "a",
                None,
                true,
            ),
            (
                r#"{"path":{"exact":"/health"}}"#,
                "GET",
                "/health/.",
                "a",
                None,
                false,
            ),
            (
                r#"{"hosts":["example.com"]}"#,
                "GET",
                "/",
                "example.com.",
                None,
                true,
            ),
            (
                r#"{"hosts":["*.example.com"]}"#,
                "GET",
                "/",
                "API.example.com:443",
                None,
                true,
            ),
            (
                r#"{"hosts":["*.example.com"]}"#,
                "GET",
                "/",
                "example.com",
                None,
                false,
            ),
            (
                r#"{"hosts":["example.com"]}"#,
                "GET",
                "/",
                "example.com",
                None,
                true,
            ),
            (
                r#"{"route_name":"pets"}"#,
                "GET",
                "/",
                "a",
                Some("pets"),
                true,
            ),
            (r#"{"route_name":"pets"}"#, "GET", "/", "a", None, false),
            (
                r#"{"route_name":"pets","methods":["POST"]}"#,
                "GET",
                "/",
                "a",
                Some("pets"),
                false,
            ),
        ];
        for (json, method, path, host, route, want) in cases {
            let h = head(method, path, host);
            let input = MatchInput {
                route_name: *route,
                head: &h,
            };
            assert_eq!(
                m(json).matches(&input),
                *want,
                "{json} {method} {path} {host}"
            );
        }
    }

    #[test]
    fn bad_matchers_name_the_field() {
        let cases = [
            (
                r#"{"path":{"prefix":"api"}}"#,
                "match.path.prefix: \"api\" must start with '/'",
            ),
            (
                r#"{"path":{"regex":"("}}"#,
                "match.path.regex: invalid regex",
            ),
            (
                r#"{"methods":["GE T"]}"#,
                "match.methods[0]: \"GE T\" is not an HTTP method",
            ),
            (
                r#"{"hosts":["a.*.com"]}"#,
                "match.hosts[0]: \"a.*.com\" is not a valid host",
            ),
            (
                r#"{"route_name":""}"#,
                "match.route_name: must not be empty",
            ),
        ];
        for (json, want) in cases {
            let raw: RawMatch = serde_json::from_str(json).unwrap();
            let err = RouteMatcher::compile(&raw, &Field::root().key("match"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(want), "{json}: {err}");
        }
    }

    #[test]
    fn first_rule_wins_and_route_name_need_is_known() {
        let rules = RuleSet::new(vec![(m(r#"{"path":{"prefix":"/a"}}"#), 1), (m(r#"{}"#), 2)]);
        assert!(!rules.needs_route_name());
        let h = head("GET", "/a/b", "x");
        assert_eq!(
            rules.first(&MatchInput {
                route_name: None,
                head: &h
            }),
            Some(&1)
        );
        let h = head("GET", "/b", "x");
        assert_eq!(
            rules.first(&MatchInput {
                route_name: None,
                head: &h
            }),
            Some(&2)
        );
        let named = RuleSet::new(vec![(m(r#"{"route_name":"r"}"#), 1)]);
        assert!(named.needs_route_name());
        assert!(named.needed_headers().is_empty());
        let full = RuleSet::new(vec![
            (m(r#"{"path":{"prefix":"/"},"methods":["GET"]}"#), 1),
            (m(r#"{"hosts":["a"],"path":{"exact":"/"}}"#), 2),
        ]);
        assert_eq!(
            full.needed_headers(),
            vec![":path", ":method", ":authority"]
        );
    }
}
