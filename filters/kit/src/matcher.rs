//! Per-route rule matching, shared by every filter.
//!
//! A rule's `match` block selects requests by Envoy's route name (`xds.route_name`), path
//! (prefix, exact, or a regex that must match the whole path), methods, hosts and gRPC method
//! (`grpc: {service, method}`: a clean gRPC call to that method, see [`crate::grpc`]; a rule
//! that restricts also holds for any other request whose normalised path names the method, so
//! a client cannot walk around it by changing the content type). Every
//! condition present must hold; an empty block matches everything. Rules are tried in order
//! and the first match wins, as Envoy's own routes do.
//!
//! A filter marks the rules that *loosen* its decision (skip the check, let anonymous callers
//! in, charge less, allow more). A loosening rule that depends on the path (a `path` or
//! `route_name` condition: Envoy picks the route from the path) never matches a request whose
//! path is ambiguous ([`RequestHead::path_is_ambiguous`]: `%2F`, `%5C`, `%2E`, `\`, `//`,
//! dot segments, `;` parameters, bytes that are not UTF-8), because the backend may resolve
//! such a path to a resource the rule was never written for. The request falls through to the
//! next rule, so the stricter decision holds. Where the normalised path then meets no rule at
//! all, the first rule its widest reading meets ([`RequestHead::wide_match_path`]) stands in for
//! the filter's default: every rule not marked loosening is at least as strict as the default,
//! so `/public/..;/admin` meets `/admin`'s rule, and the wide reading never pre-empts a rule the
//! normalised path met. When the normalised path meets a rule and the widest reading first
//! meets another (neither guarded) with a different value, the two readings ask for different
//! decisions and neither is known to be the stricter: `/pets/..;/admin` meets `/pets`'s rule
//! normalised, `/admin`'s read as Tomcat reads it. [`Lookup::conflict`] says so, and the
//! filter refuses the request (400 `path_ambiguous`) rather than let the client's spelling
//! pick the looser rule. Two rules with equal values are no conflict.
//! Behind an HCM with `normalize_path`, `merge_slashes` and `path_with_escaped_slashes_action`
//! (every shipped bootstrap), Envoy has already removed these forms but `;` parameters
//! (`..;`, `/admin;x`), which RFC 3986 and Envoy keep: those still reach the filters.

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
    /// Compare the path without regard to ASCII case. For a rule that restricts (`/admin`
    /// needs the ops group, `/graphql` is guarded) in front of a backend that routes
    /// case-insensitively (Express, ASP.NET, IIS…), so `/ADMIN` cannot walk around it.
    #[serde(default)]
    pub ignore_case: bool,
    /// HTTP methods, any of, compared without regard to case (a server may read HTTP/2's
    /// `post` as POST).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Hosts, any of: exact (`api.example.com`) or a leading wildcard (`*.example.com`),
    /// compared without port and case-insensitively.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// A gRPC method (`{"service": "pets.v1.Pets", "method": "GetPet"}`) or, without `method`,
    /// every method of a service: see [`crate::grpc`] for what counts as a gRPC call.
    #[serde(default)]
    pub grpc: Option<RawGrpcMatch>,
}

/// The raw `grpc` condition of a `match` block.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawGrpcMatch {
    /// Full service name, package included: `pets.v1.Pets`.
    pub service: String,
    /// One method of it, exactly; absent: every method.
    #[serde(default)]
    pub method: Option<String>,
}

/// A compiled `grpc` condition.
#[derive(Debug, Clone)]
struct GrpcMatch {
    service: String,
    method: Option<String>,
}

impl GrpcMatch {
    fn holds(&self, service: &str, method: &str) -> bool {
        self.service == service && self.method.as_deref().is_none_or(|m| m == method)
    }

    /// Read from a path that is not a clean call's (normalised, or its widest reading): the
    /// method's path exactly, or for a whole service anything under `/service/`.
    fn holds_on_path(&self, path: &str) -> bool {
        let Some(rest) = path
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(self.service.as_str()))
            .and_then(|p| p.strip_prefix('/'))
        else {
            return false;
        };
        self.method.as_deref().is_none_or(|m| m == rest)
    }
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
    ignore_case: bool,
    methods: Vec<String>,
    hosts: Vec<HostMatch>,
    grpc: Option<GrpcMatch>,
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
        if raw.ignore_case && raw.path.is_none() {
            return Err(field
                .key("ignore_case")
                .error("applies to a path condition and there is none"));
        }
        // With ignore_case the literal is lowered once here and the request path per request.
        let literal = |p: &str| {
            if raw.ignore_case {
                p.to_ascii_lowercase()
            } else {
                p.to_string()
            }
        };
        let path = match &raw.path {
            None => None,
            Some(RawPathMatch::Prefix(p)) => Some(PathMatch::Prefix(literal(&check_path(
                p,
                &field.key("path.prefix"),
            )?))),
            Some(RawPathMatch::Exact(p)) => Some(PathMatch::Exact(literal(&check_path(
                p,
                &field.key("path.exact"),
            )?))),
            Some(RawPathMatch::Regex(r)) => {
                let f = field.key("path.regex");
                if r.len() > MAX_REGEX_LEN {
                    return Err(f.error(format!("longer than {MAX_REGEX_LEN} characters")));
                }
                let flags = if raw.ignore_case { "(?i)" } else { "" };
                let re = regex_lite::Regex::new(&format!("{flags}^(?:{r})$"))
                    .map_err(|e| f.error(format!("invalid regex: {e}")))?;
                Some(PathMatch::Regex(re))
            }
        };
        let grpc = match &raw.grpc {
            None => None,
            Some(g) => Some(compile_grpc(raw, g, field)?),
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
            ignore_case: raw.ignore_case,
            methods,
            hosts,
            grpc,
        })
    }

    pub fn needs_route_name(&self) -> bool {
        self.route_name.is_some()
    }

    /// Whether the path decides this match, directly or through Envoy's route choice.
    fn depends_on_path(&self) -> bool {
        self.path.is_some() || self.route_name.is_some() || self.grpc.is_some()
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
        if self.grpc.is_some() {
            for n in [":path", ":method", "content-type"] {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        names
    }

    /// Whether this matcher has a `grpc` condition (transform refuses body operations on it).
    pub fn has_grpc(&self) -> bool {
        self.grpc.is_some()
    }

    /// Whether this matcher holds, reading an ambiguous path both ways (as a restricting rule
    /// must: see [`RuleSet`]).
    pub fn matches(&self, input: &MatchInput<'_>) -> bool {
        self.matches_with(input, &mut Paths::default(), Reading::Either, true)
    }

    /// Whether this matcher holds, as a restricting rule, on one reading of the path alone:
    /// the normalised path, or with `widest` the widest reading of an ambiguous path (for a
    /// path that is not ambiguous, the normalised one). [`RuleSet::lookup`] compares the rules
    /// the two readings meet; the fuzz reference models it with this.
    pub fn matches_reading(&self, input: &MatchInput<'_>, widest: bool) -> bool {
        let reading = if widest {
            Reading::Wide
        } else {
            Reading::Normal
        };
        self.matches_with(input, &mut Paths::default(), reading, true)
    }

    /// `paths` caches the normalised (and wide) path, so a rule set computes each once per
    /// request. `reading` says which readings of the path a path condition compares
    /// ([`Reading`]). With `strict` (a rule that restricts), a `grpc` condition also holds for a
    /// request that is not a clean gRPC call but whose path (in a reading compared) names the
    /// method: a backend may serve it whatever its content type.
    fn matches_with(
        &self,
        input: &MatchInput<'_>,
        paths: &mut Paths,
        reading: Reading,
        strict: bool,
    ) -> bool {
        if let Some(g) = &self.grpc {
            let ok = match crate::grpc::clean_call(input.head) {
                Some((service, method)) => g.holds(service, method),
                None if strict => paths.any(input.head, reading, |p| g.holds_on_path(p)),
                None => false,
            };
            if !ok {
                return false;
            }
        }
        if let Some(want) = &self.route_name {
            if input.route_name != Some(want.as_str()) {
                return false;
            }
        }
        if let Some(p) = &self.path {
            if !paths.any(input.head, reading, |path| self.path_holds(p, path)) {
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

    fn path_holds(&self, p: &PathMatch, path: &str) -> bool {
        let lowered;
        let literal_side = if self.ignore_case {
            lowered = path.to_ascii_lowercase();
            &lowered
        } else {
            path
        };
        match p {
            PathMatch::Prefix(prefix) => literal_side.starts_with(prefix.as_str()),
            PathMatch::Exact(exact) => literal_side == exact,
            PathMatch::Regex(re) => re.is_match(path),
        }
    }
}

/// Which reading of the request's path a path (or strict `grpc`) condition compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Envoy's normalised path ([`RequestHead::match_path`]).
    Normal,
    /// The widest reading of an ambiguous path ([`RequestHead::wide_match_path`]); for a path
    /// that is not ambiguous it is the normalised one.
    Wide,
    /// Either of the two holds.
    Either,
}

/// The request's path in the forms rules compare, each computed at most once per request.
#[derive(Default)]
struct Paths {
    normal: Option<String>,
    /// `Some(None)`: computed, the path is not ambiguous.
    wide: Option<Option<String>>,
}

impl Paths {
    /// Whether `holds` is true of the path in `reading`. The wide reading is computed only
    /// when asked for, and only once.
    fn any(&mut self, head: &RequestHead, reading: Reading, holds: impl Fn(&str) -> bool) -> bool {
        if reading != Reading::Wide {
            let normal = self.normal.get_or_insert_with(|| head.match_path());
            if holds(normal) {
                return true;
            }
            if reading == Reading::Normal {
                return false;
            }
        }
        match self.wide.get_or_insert_with(|| head.wide_match_path()) {
            Some(wide) => holds(wide),
            // Not ambiguous: the widest reading is the normalised path.
            None if reading == Reading::Wide => {
                holds(self.normal.get_or_insert_with(|| head.match_path()))
            }
            None => false,
        }
    }
}

fn compile_grpc(raw: &RawMatch, g: &RawGrpcMatch, field: &Field) -> Result<GrpcMatch, ConfigError> {
    let f = field.key("grpc");
    if raw.path.is_some() {
        return Err(f.error("a gRPC method is matched on its path: give grpc or path, not both"));
    }
    if !crate::grpc::is_service_name(&g.service) {
        return Err(f.key("service").error(format!(
            "\"{}\" is not a gRPC service name (package.Service: letters, digits, '_', '.')",
            g.service
        )));
    }
    if let Some(m) = &g.method {
        if !crate::grpc::is_method_name(m) {
            return Err(f.key("method").error(format!(
                "\"{m}\" is not a gRPC method name (letters, digits, '_')"
            )));
        }
    }
    Ok(GrpcMatch {
        service: g.service.clone(),
        method: g.method.clone(),
    })
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
    rules: Vec<Entry<T>>,
    needs_route_name: bool,
    /// `Some` when the filter said which rules loosen ([`RuleSet::with_loosening`]): only then
    /// is every other rule known to be at least as strict as the default, so that reading an
    /// ambiguous path wide can only tighten the decision. It compares two rules' values, to
    /// tell whether the two readings of an ambiguous path meet different decisions.
    same: Option<fn(&T, &T) -> bool>,
    /// Whether some rule that is not guarded compares the path (a `path` or `grpc` condition):
    /// otherwise both readings of a path meet the same rules and the wide one is never read.
    reads_path: bool,
}

#[derive(Debug, Clone)]
struct Entry<T> {
    matcher: RouteMatcher,
    value: T,
    /// A loosening rule that an ambiguous path must not reach (see the module docs).
    guarded: bool,
    /// When this rule meets the normalised path, the widest reading may meet another with a
    /// different value ([`Lookup::conflict`]): only then is the path checked for ambiguity.
    /// False when every other unguarded rule has an equal value, or neither this rule nor a
    /// differing one reads the path (a rule that does not read it, placed before this one,
    /// would have met the normalised path first).
    may_conflict: bool,
}

/// What [`RuleSet::lookup`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup<'a, T> {
    /// The first rule that matched, if any.
    pub rule: Option<&'a T>,
    /// Its position in the rule set.
    pub index: Option<usize>,
    /// It was met by the widest reading of an ambiguous path, where the normalised path met no
    /// rule (it stands in for the filter's default).
    pub wide: bool,
    /// A loosening rule would have matched but the path is ambiguous: the filter counts this.
    pub refused_ambiguous: bool,
    /// The path is ambiguous and its two readings meet different decisions: the normalised
    /// path meets `rule`, its widest reading first meets another rule (not guarded) whose value
    /// differs. Neither is known to be the stricter one (`/pets/..;/admin` meets `/pets`'s rule
    /// normalised and `/admin`'s read wide), so the filter must refuse the request rather than
    /// pick one. `rule` is still the normalised path's, as without this check. Only for a set
    /// built with [`RuleSet::with_loosening`].
    pub conflict: bool,
}

impl<T> Default for RuleSet<T> {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            needs_route_name: false,
            same: None,
            reads_path: false,
        }
    }
}

impl<T> RuleSet<T> {
    /// Rules that select what a filter does rather than how strict it is (transform): matched
    /// on the normalised path only.
    pub fn new(rules: Vec<(RouteMatcher, T)>) -> Self {
        Self::build(rules, |_| false, None)
    }

    /// Rules of which `loosens` picks those that make the decision looser (skip, anonymous,
    /// cheaper, more allowed): those never match an ambiguous path. Two rules with equal
    /// values make the same decision: an ambiguous path whose readings meet them is no
    /// conflict ([`Lookup::conflict`]).
    pub fn with_loosening(rules: Vec<(RouteMatcher, T)>, loosens: impl Fn(&T) -> bool) -> Self
    where
        T: PartialEq,
    {
        Self::build(rules, loosens, Some(<T as PartialEq>::eq))
    }

    fn build(
        rules: Vec<(RouteMatcher, T)>,
        loosens: impl Fn(&T) -> bool,
        same: Option<fn(&T, &T) -> bool>,
    ) -> Self {
        let needs_route_name = rules.iter().any(|(m, _)| m.needs_route_name());
        let mut rules: Vec<Entry<T>> = rules
            .into_iter()
            .map(|(matcher, value)| Entry {
                guarded: loosens(&value) && matcher.depends_on_path(),
                matcher,
                value,
                may_conflict: false,
            })
            .collect();
        let reads =
            |e: &Entry<T>| !e.guarded && (e.matcher.path.is_some() || e.matcher.grpc.is_some());
        let reads_path = rules.iter().any(reads);
        if let Some(same) = same {
            let may: Vec<bool> = rules
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    !e.guarded
                        && rules.iter().enumerate().any(|(j, o)| {
                            j != i
                                && !o.guarded
                                && !same(&e.value, &o.value)
                                && (reads(o) || (j > i && reads(e)))
                        })
                })
                .collect();
            for (e, may) in rules.iter_mut().zip(may) {
                e.may_conflict = may;
            }
        }
        Self {
            rules,
            needs_route_name,
            same,
            reads_path,
        }
    }

    /// Whether the glue must fetch `xds.route_name` (a host call) before matching.
    pub fn needs_route_name(&self) -> bool {
        self.needs_route_name
    }

    /// Every request header some rule reads (`:path` also for a guarded `route_name` rule,
    /// which must see whether the path is ambiguous).
    pub fn needed_headers(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        let guarded = self.rules.iter().any(|e| e.guarded).then_some(":path");
        for n in self
            .rules
            .iter()
            .flat_map(|e| e.matcher.needed_headers())
            .chain(guarded)
        {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        names
    }

    /// The first matching rule. When the path is ambiguous, guarded (loosening) rules are
    /// passed over; and when no other rule meets the normalised path either, the first rule
    /// that meets its widest reading decides (for a set built with
    /// [`RuleSet::with_loosening`]). The wide reading only ever replaces the filter's default,
    /// never a rule the normalised path met, so `/admin/..;/status` stays under `/admin`'s rule
    /// while `/public/..;/admin` meets it: the decision is never looser than the normalised
    /// path's. Where both readings meet a rule and the two differ, [`Lookup::conflict`] says
    /// so. A path that is not ambiguous is read once.
    pub fn lookup(&self, input: &MatchInput<'_>) -> Lookup<'_, T> {
        let mut paths = Paths::default();
        let mut ambiguous = None;
        let mut refused_ambiguous = false;
        let mut found = None;
        for (index, e) in self.rules.iter().enumerate() {
            let strict = self.same.is_some() && !e.guarded;
            if !e
                .matcher
                .matches_with(input, &mut paths, Reading::Normal, strict)
            {
                continue;
            }
            if e.guarded && *ambiguous.get_or_insert_with(|| input.head.path_is_ambiguous()) {
                refused_ambiguous = true;
                continue;
            }
            found = Some((index, e));
            break;
        }
        let mut lookup = Lookup {
            rule: found.map(|(_, e)| &e.value),
            index: found.map(|(i, _)| i),
            refused_ambiguous,
            wide: false,
            conflict: false,
        };
        let Some(same) = self.same else {
            return lookup;
        };
        // Where no other rule can decide differently, the path is not even checked.
        let may_conflict = match found {
            Some((_, e)) => e.may_conflict,
            None => self.reads_path,
        };
        if !may_conflict || !*ambiguous.get_or_insert_with(|| input.head.path_is_ambiguous()) {
            return lookup;
        }
        let wide = self.first_unguarded(input, &mut paths);
        match (found, wide) {
            (Some((index, e)), Some((wide_index, w))) => {
                lookup.conflict = !e.guarded && wide_index != index && !same(&e.value, &w.value);
            }
            (None, Some((wide_index, w))) => {
                lookup.rule = Some(&w.value);
                lookup.index = Some(wide_index);
                lookup.wide = true;
            }
            (_, None) => {}
        }
        lookup
    }

    /// The first rule that is not guarded and meets the widest reading of the path.
    fn first_unguarded(
        &self,
        input: &MatchInput<'_>,
        paths: &mut Paths,
    ) -> Option<(usize, &Entry<T>)> {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, e)| !e.guarded && e.matcher.matches_with(input, paths, Reading::Wide, true))
    }

    pub fn first(&self, input: &MatchInput<'_>) -> Option<&T> {
        self.lookup(input).rule
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
        /// A matcher (JSON), a request (method, path, host, Envoy's route name) and whether it
        /// matches.
        struct Case {
            matcher: &'static str,
            method: &'static str,
            path: &'static str,
            host: &'static str,
            route: Option<&'static str>,
            matches: bool,
        }
        let cases = [
            Case {
                matcher: r#"{}"#,
                method: "GET",
                path: "/x",
                host: "a",
                route: None,
                matches: true,
            },
            Case {
                matcher: r#"{"path":{"prefix":"/api"}}"#,
                method: "GET",
                path: "/api/v1?q=1",
                host: "a",
                route: None,
                matches: true,
            },
            Case {
                matcher: r#"{"path":{"prefix":"/api"}}"#,
                method: "GET",
                path: "/ap?api",
                host: "a",
                route: None,
                matches: false,
            },
            Case {
                matcher: r#"{"path":{"exact":"/health"}}"#,
                method: "GET",
                path: "/health?x",
                host: "a",
                route: None,
                matches: true,
            },
            Case {
                matcher: r#"{"path":{"exact":"/health"}}"#,
                method: "GET",
                path: "/health/x",
                host: "a",
                route: None,
                matches: false,
            },
            Case {
                matcher: r#"{"path":{"regex":"/pets/[0-9]+"}}"#,
                method: "GET",
                path: "/pets/12",
                host: "a",
                route: None,
                matches: true,
            },
            Case {
                matcher: r#"{"path":{"regex":"/pets/[0-9]+"}}"#,
                method: "GET",
                path: "/pets/12/x",
                host: "a",
                route: None,
                matches: false,
            },
            Case {
                matcher: r#"{"methods":["GET","HEAD"]}"#,
                method: "HEAD",
                path: "/",
                host: "a",
                route: None,
                matches: true,
            },
            Case {
                matcher: r#"{"methods":["POST"]}"#,
                method: "post",
                path: "/",
                host: "a",
                route: None,
                matches: true,
            },
            Case {
                matcher: r#"{"path":{"prefix":"/admin"}}"#,
                method: "GET",
                path: "//admin/x",
                host: "a",
                route: None,
                matches: true,
            },
            Case {
                matcher: r#"{"path":{"prefix":"/admin"}}"#,
                method: "GET",
                path: "/%61dmin",
                host: "a",
                route: None,
                matches: true,
            },
            Case {
                matcher: r#"{"path":{"prefix":"/admin"}}"#,
                method: "GET",
                path: "/x/../admin",
                host: "a",
                route: None,
                matches: true,
            },
            Case {
                matcher: r#"{"path":{"exact":"/health"}}"#,
                method: "GET",
                path: "/health/.",
                host: "a",
                route: None,
                matches: false,
            },
            Case {
                matcher: r#"{"hosts":["example.com"]}"#,
                method: "GET",
                path: "/",
                host: "example.com.",
                route: None,
                matches: true,
            },
            Case {
                matcher: r#"{"hosts":["*.example.com"]}"#,
                method: "GET",
                path: "/",
                host: "API.example.com:443",
                route: None,
                matches: true,
            },
            Case {
                matcher: r#"{"hosts":["*.example.com"]}"#,
                method: "GET",
                path: "/",
                host: "example.com",
                route: None,
                matches: false,
            },
            Case {
                matcher: r#"{"hosts":["example.com"]}"#,
                method: "GET",
                path: "/",
                host: "example.com",
                route: None,
                matches: true,
            },
            Case {
                matcher: r#"{"route_name":"pets"}"#,
                method: "GET",
                path: "/",
                host: "a",
                route: Some("pets"),
                matches: true,
            },
            Case {
                matcher: r#"{"route_name":"pets"}"#,
                method: "GET",
                path: "/",
                host: "a",
                route: None,
                matches: false,
            },
            Case {
                matcher: r#"{"path":{"prefix":"/admin"}}"#,
                method: "GET",
                path: "/ADMIN/x",
                host: "a",
                route: None,
                matches: false,
            },
            Case {
                matcher: r#"{"path":{"prefix":"/Admin"},"ignore_case":true}"#,
                method: "GET",
                path: "/aDMIN/x",
                host: "a",
                route: None,
                matches: true,
            },
            Case {
                matcher: r#"{"path":{"exact":"/graphql"},"ignore_case":true}"#,
                method: "GET",
                path: "/GraphQL",
                host: "a",
                route: None,
                matches: true,
            },
            Case {
                matcher: r#"{"path":{"regex":"/gql/[a-z]+"},"ignore_case":true}"#,
                method: "GET",
                path: "/GQL/Pets",
                host: "a",
                route: None,
                matches: true,
            },
            Case {
                matcher: r#"{"route_name":"pets","methods":["POST"]}"#,
                method: "GET",
                path: "/",
                host: "a",
                route: Some("pets"),
                matches: false,
            },
        ];
        for case in cases {
            let h = head(case.method, case.path, case.host);
            let input = MatchInput {
                route_name: case.route,
                head: &h,
            };
            assert_eq!(
                m(case.matcher).matches(&input),
                case.matches,
                "{} {} {} {}",
                case.matcher,
                case.method,
                case.path,
                case.host
            );
        }
    }

    #[test]
    fn grpc_rules_loosen_only_for_a_clean_call_and_restrict_for_any_spelling() {
        // Rule 1 loosens (a read-only method), rule 2 restricts (a whole service), rule 3 is
        // the strict catch-all: what a request that is not a clean call falls to.
        let rules = RuleSet::with_loosening(
            vec![
                (
                    m(r#"{"grpc":{"service":"pets.v1.Pets","method":"GetPet"}}"#),
                    1,
                ),
                (m(r#"{"grpc":{"service":"admin.v1.Admin"}}"#), 2),
                (m(r#"{}"#), 3),
            ],
            |v| *v == 1,
        );
        assert_eq!(
            rules.needed_headers(),
            vec![":path", ":method", "content-type"]
        );
        const G: &str = "application/grpc";
        // Request headers beyond `:authority`, and the rule they meet.
        let cases: &[(&[(&str, &str)], i32)] = &[
            (
                &[
                    (":method", "POST"),
                    (":path", "/pets.v1.Pets/GetPet"),
                    ("content-type", G),
                ],
                1,
            ),
            (
                &[
                    (":method", "POST"),
                    (":path", "/pets.v1.Pets/GetPet"),
                    ("content-type", "application/grpc+proto"),
                ],
                1,
            ),
            (
                &[
                    (":method", "POST"),
                    (":path", "/pets.v1.Pets/GetPet"),
                    ("content-type", "application/grpc-web-text"),
                ],
                1,
            ),
            // Another method of the service, another service: not the loosening rule.
            (
                &[
                    (":method", "POST"),
                    (":path", "/pets.v1.Pets/DeletePet"),
                    ("content-type", G),
                ],
                3,
            ),
            (
                &[
                    (":method", "POST"),
                    (":path", "/pets.v1.PetsX/GetPet"),
                    ("content-type", G),
                ],
                3,
            ),
            // The method's path on a request that is not a clean gRPC call: never loosened.
            (
                &[
                    (":method", "POST"),
                    (":path", "/pets.v1.Pets/GetPet"),
                    ("content-type", "application/json"),
                ],
                3,
            ),
            (&[(":method", "POST"), (":path", "/pets.v1.Pets/GetPet")], 3),
            (
                &[
                    (":method", "GET"),
                    (":path", "/pets.v1.Pets/GetPet"),
                    ("content-type", G),
                ],
                3,
            ),
            (
                &[
                    (":method", "POST"),
                    (":path", "/pets.v1.Pets/GetPet?x=1"),
                    ("content-type", G),
                ],
                3,
            ),
            (
                &[
                    (":method", "POST"),
                    (":path", "/pets.v1.Pets/%47etPet"),
                    ("content-type", G),
                ],
                3,
            ),
            (
                &[
                    (":method", "POST"),
                    (":path", "//pets.v1.Pets/GetPet"),
                    ("content-type", G),
                ],
                3,
            ),
            (
                &[
                    (":method", "POST"),
                    (":path", "/pets.v1.Pets/GetPet"),
                    ("content-type", "Application/GRPC"),
                ],
                3,
            ),
            (
                &[
                    (":method", "POST"),
                    (":path", "/pets.v1.Pets/GetPet"),
                    ("content-type", G),
                    ("content-type", "application/json"),
                ],
                3,
            ),
            (
                &[
                    (":method", "POST"),
                    (":path", "/pets.v1.Pets/GetPet"),
                    ("content-type", "application/grpc,application/json"),
                ],
                3,
            ),
            // The restricting rule holds for every spelling of its paths, whatever the type.
            (
                &[
                    (":method", "POST"),
                    (":path", "/admin.v1.Admin/Wipe"),
                    ("content-type", G),
                ],
                2,
            ),
            (
                &[
                    (":method", "POST"),
                    (":path", "/admin.v1.Admin/Wipe"),
                    ("content-type", "text/plain"),
                ],
                2,
            ),
            (&[(":method", "POST"), (":path", "/admin.v1.Admin/Wipe")], 2),
            (
                &[
                    (":method", "POST"),
                    (":path", "/admin.v1.Admin/Wipe?x"),
                    ("content-type", G),
                ],
                2,
            ),
            (
                &[
                    (":method", "POST"),
                    (":path", "/admin.v1.%41dmin/Wipe"),
                    ("content-type", G),
                ],
                2,
            ),
            (
                &[
                    (":method", "POST"),
                    (":path", "//admin.v1.Admin//Wipe"),
                    ("content-type", G),
                ],
                2,
            ),
            (
                &[
                    (":method", "POST"),
                    (":path", "/x/../admin.v1.Admin/Wipe"),
                    ("content-type", G),
                ],
                2,
            ),
            // As for path rules, the widest reading of an ambiguous path stands in only for
            // the default: here the strict catch-all met the normalised path.
            (
                &[
                    (":method", "POST"),
                    (":path", "/x/..%2Fadmin.v1.Admin/Wipe"),
                    ("content-type", G),
                ],
                3,
            ),
            (
                &[
                    (":method", "GET"),
                    (":path", "/admin.v1.Admin/Wipe"),
                    ("content-type", "application/json"),
                ],
                2,
            ),
            (
                &[
                    (":method", "POST"),
                    (":path", "/admin.v1.Admin"),
                    ("content-type", G),
                ],
                3,
            ),
        ];
        for (pairs, want) in cases {
            let mut all = vec![(":authority", "a")];
            all.extend_from_slice(pairs);
            let h = RequestHead::from_pairs(&all);
            let found = rules.lookup(&MatchInput {
                route_name: None,
                head: &h,
            });
            assert_eq!(found.rule, Some(want), "{pairs:?}");
        }
        // Rules that select rather than restrict (transform) hold only for a clean call.
        let plain = RuleSet::new(vec![(m(r#"{"grpc":{"service":"admin.v1.Admin"}}"#), 1)]);
        for (pairs, want) in [
            (
                vec![
                    (":method", "POST"),
                    (":path", "/admin.v1.Admin/Wipe"),
                    ("content-type", G),
                ],
                Some(&1),
            ),
            (
                vec![
                    (":method", "POST"),
                    (":path", "/admin.v1.Admin/Wipe"),
                    ("content-type", "application/json"),
                ],
                None,
            ),
        ] {
            let h = RequestHead::from_pairs(&pairs);
            let input = MatchInput {
                route_name: None,
                head: &h,
            };
            assert_eq!(plain.first(&input), want, "{pairs:?}");
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
            (
                r#"{"ignore_case":true}"#,
                "match.ignore_case: applies to a path condition and there is none",
            ),
            (
                r#"{"grpc":{"service":"pets.Pets"},"path":{"prefix":"/"}}"#,
                "match.grpc: a gRPC method is matched on its path: give grpc or path, not both",
            ),
            (
                r#"{"grpc":{"service":"/pets.Pets"}}"#,
                "match.grpc.service: \"/pets.Pets\" is not a gRPC service name",
            ),
            (
                r#"{"grpc":{"service":""}}"#,
                "match.grpc.service: \"\" is not a gRPC service name",
            ),
            (
                r#"{"grpc":{"service":"pets.Pets","method":"Get/Pet"}}"#,
                "match.grpc.method: \"Get/Pet\" is not a gRPC method name",
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

    #[test]
    fn loosening_rules_never_match_an_ambiguous_path() {
        // rule 1 loosens (anonymous on /public), rule 2 is strict, rule 3 loosens by method only.
        let rules = RuleSet::with_loosening(
            vec![
                (m(r#"{"path":{"prefix":"/public"}}"#), 1),
                (m(r#"{"route_name":"public"}"#), 2),
                (m(r#"{"route_name":"public"}"#), 3),
                (m(r#"{"methods":["OPTIONS"]}"#), 4),
                (m(r#"{"path":{"prefix":"/"}}"#), 5),
            ],
            |v| *v != 2 && *v != 5,
        );
        assert_eq!(rules.needed_headers(), vec![":path", ":method"]);
        /// A request (method, path, Envoy's route name), the rule it meets, and whether an
        /// ambiguous reading of its path kept a loosening rule from matching.
        struct Case {
            method: &'static str,
            path: &'static str,
            route: Option<&'static str>,
            rule: Option<i32>,
            refused_ambiguous: bool,
        }
        let cases = [
            Case {
                method: "GET",
                path: "/public/x",
                route: None,
                rule: Some(1),
                refused_ambiguous: false,
            },
            Case {
                method: "GET",
                path: "/public/..%2Fadmin/users",
                route: None,
                rule: Some(5),
                refused_ambiguous: true,
            },
            Case {
                method: "GET",
                path: "/public/%2e%2e%2fadmin",
                route: None,
                rule: Some(5),
                refused_ambiguous: true,
            },
            Case {
                method: "GET",
                path: "/public/..%5Cadmin",
                route: None,
                rule: Some(5),
                refused_ambiguous: true,
            },
            Case {
                method: "GET",
                path: "/public/../admin/users",
                route: None,
                rule: Some(5),
                refused_ambiguous: false,
            },
            Case {
                method: "GET",
                path: "/public/./../admin",
                route: None,
                rule: Some(5),
                refused_ambiguous: false,
            },
            Case {
                method: "GET",
                path: "/other/../public/x",
                route: None,
                rule: Some(5),
                refused_ambiguous: true,
            },
            Case {
                method: "GET",
                path: "/x/..%2F",
                route: Some("public"),
                rule: Some(2),
                refused_ambiguous: false,
            },
            Case {
                method: "OPTIONS",
                path: "/x/..%2F",
                route: None,
                rule: Some(4),
                refused_ambiguous: false,
            },
            Case {
                method: "GET",
                path: "/x",
                route: Some("public"),
                rule: Some(2),
                refused_ambiguous: false,
            },
        ];
        for case in cases {
            let (method, path, route) = (case.method, case.path, case.route);
            let h = head(method, path, "a");
            let found = rules.lookup(&MatchInput {
                route_name: route,
                head: &h,
            });
            assert_eq!(found.rule, case.rule.as_ref(), "{method} {path} {route:?}");
            assert_eq!(
                found.refused_ambiguous, case.refused_ambiguous,
                "{method} {path}"
            );
        }
        // Where the normalised path meets no rule (the filter's default would decide), the
        // first rule its widest reading meets decides instead; it never pre-empts a rule the
        // normalised path met (`/admin/..;/status` stays under /admin).
        let rules = RuleSet::with_loosening(
            vec![
                (m(r#"{"path":{"prefix":"/public"}}"#), 1),
                (m(r#"{"path":{"prefix":"/status"}}"#), 2),
                (m(r#"{"path":{"prefix":"/admin"}}"#), 3),
            ],
            |v| *v == 1,
        );
        for (path, want, wide) in [
            ("/public/x", Some(1), false),
            ("/public/..%2Fadmin/users", Some(3), true),
            ("/public/..;/admin/users", Some(3), true),
            ("/.;/admin/users", Some(3), true),
            ("/%2Fadmin/users", Some(3), true),
            ("/admin;x/users", Some(3), false),
            ("/x/..%2F..%2Fadmin", Some(3), true),
            ("/admin/..;/status", Some(3), false),
            // Resolved as Envoy and RFC 3986 do (`admin;` is a segment `..` removes): /status.
            ("/admin;/../status", Some(2), false),
            ("/admin/x%2F..%2F..%2Fstatus", Some(3), false),
            ("/public/..%2Fother", None, false),
            ("/other", None, false),
        ] {
            let h = head("GET", path, "a");
            let found = rules.lookup(&MatchInput {
                route_name: None,
                head: &h,
            });
            assert_eq!(found.rule, want.as_ref(), "{path}");
            assert_eq!(found.wide, wide, "{path}");
        }
        // Without a loosening declaration (transform's rules) there is no wide reading.
        let plain = RuleSet::new(vec![(m(r#"{"path":{"prefix":"/admin"}}"#), 1)]);
        let h = head("GET", "/public/..;/admin", "a");
        let input = MatchInput {
            route_name: None,
            head: &h,
        };
        assert_eq!(plain.first(&input), None);
        // Strict rules still match an ambiguous path: it only ever tightens.
        let strict = RuleSet::new(vec![(m(r#"{"path":{"prefix":"/public"}}"#), 1)]);
        let h = head("GET", "/public/..%2Fadmin", "a");
        let input = MatchInput {
            route_name: None,
            head: &h,
        };
        assert_eq!(strict.first(&input), Some(&1));
    }

    #[test]
    fn readings_that_meet_different_rules_conflict() {
        // scope-authz's shape: the default asks pets:read; `/admin` and `/status` ask more
        // (the same: equal values), `/public` loosens (guarded).
        let rules = RuleSet::with_loosening(
            vec![
                (m(r#"{"path":{"prefix":"/public"}}"#), "open"),
                (m(r#"{"path":{"prefix":"/pets"}}"#), "pets"),
                (m(r#"{"path":{"prefix":"/admin"}}"#), "admin"),
                (m(r#"{"path":{"prefix":"/status"}}"#), "admin"),
                (m(r#"{"route_name":"named"}"#), "named"),
                (m(r#"{"grpc":{"service":"ops.v1.Ops"}}"#), "grpc"),
            ],
            |v| *v == "open",
        );
        /// A request, the rule its lookup decides on, and how.
        struct Case {
            path: &'static str,
            content_type: Option<&'static str>,
            route: Option<&'static str>,
            rule: Option<&'static str>,
            wide: bool,
            conflict: bool,
        }
        let case = |path, rule, conflict| Case {
            path,
            content_type: None,
            route: None,
            rule,
            wide: false,
            conflict,
        };
        let cases = [
            // Tomcat reads `..;` as `..`: /admin, which asks more than /pets.
            case("/pets/..;/admin", Some("pets"), true),
            case("/pets/..%2Fadmin", Some("pets"), true),
            case("/pets/..%2fadmin/users", Some("pets"), true),
            case("/pets/..%5Cadmin", Some("pets"), true),
            case("/pets/..\\admin", Some("pets"), true),
            case("/pets/%2e%2e%2fadmin", Some("pets"), true),
            // The other way round: neither reading is known to be the stricter.
            case("/admin/..;/pets", Some("admin"), true),
            // Envoy resolves `%2e%2e` too: both readings are /admin.
            case("/pets/%2e%2e/admin", Some("admin"), false),
            // `//` is merged in both readings.
            case("//pets//x", Some("pets"), false),
            case("/pets//..;/admin", Some("pets"), true),
            // The module docs' cases: the widest reading meets the same value, or no rule.
            case("/admin/..;/status", Some("admin"), false),
            case("/status/..;/admin", Some("admin"), false),
            case("/admin/..;/other", Some("admin"), false),
            case("/pets/..;/other", Some("pets"), false),
            case("/pets/x", Some("pets"), false),
            case("/admin/x", Some("admin"), false),
            // The wide reading stands in for the default: no conflict, it only tightens.
            Case {
                wide: true,
                ..case("/public/..;/admin", Some("admin"), false)
            },
            Case {
                wide: true,
                ..case("/x/..;/admin", Some("admin"), false)
            },
            case("/x/..;/other", None, false),
            // A route_name rule holds in both readings (Envoy named the route from the raw
            // path); the wide reading meets /admin's rule before it.
            Case {
                route: Some("named"),
                ..case("/x/..;/admin", Some("named"), true)
            },
            Case {
                route: Some("named"),
                ..case("/x/..;/y", Some("named"), false)
            },
            Case {
                route: Some("named"),
                ..case("/x/y", Some("named"), false)
            },
            // The restricting grpc rule holds on the reading that names the method.
            case("/pets/..;/ops.v1.Ops/Wipe", Some("pets"), true),
            Case {
                wide: true,
                ..case("/x/..;/ops.v1.Ops/Wipe", Some("grpc"), false)
            },
            case("/ops.v1.Ops/..;/pets", Some("grpc"), true),
            Case {
                content_type: Some("application/grpc"),
                ..case("/ops.v1.Ops/Wipe", Some("grpc"), false)
            },
            case("/ops.v1.Ops/Wipe", Some("grpc"), false),
        ];
        for c in cases {
            let mut pairs = vec![(":method", "POST"), (":path", c.path), (":authority", "a")];
            if let Some(t) = c.content_type {
                pairs.push(("content-type", t));
            }
            let h = RequestHead::from_pairs(&pairs);
            let found = rules.lookup(&MatchInput {
                route_name: c.route,
                head: &h,
            });
            let path = c.path;
            assert_eq!(found.rule.copied(), c.rule, "{path}");
            assert_eq!(found.wide, c.wide, "{path} wide");
            assert_eq!(found.conflict, c.conflict, "{path} conflict");
        }
        // Rules that select (transform) never read the path wide, so never conflict.
        let plain = RuleSet::new(vec![
            (m(r#"{"path":{"prefix":"/pets"}}"#), 1),
            (m(r#"{"path":{"prefix":"/admin"}}"#), 2),
        ]);
        let h = head("GET", "/pets/..;/admin", "a");
        let found = plain.lookup(&MatchInput {
            route_name: None,
            head: &h,
        });
        assert_eq!((found.rule, found.conflict), (Some(&1), false));
        // A rule that does not read the path (methods only) and one that does: either can be
        // the one a reading meets first, before or after the other.
        let mixed = RuleSet::with_loosening(
            vec![
                (m(r#"{"path":{"prefix":"/pets"}}"#), 1),
                (m(r#"{"methods":["GET"]}"#), 2),
            ],
            |_| false,
        );
        for (path, rule, conflict) in [
            ("/x/..;/pets", Some(&2), true),
            ("/pets/..;/x", Some(&1), true),
            ("/pets/..;/pets/x", Some(&1), false),
            ("/pets/x", Some(&1), false),
        ] {
            let h = head("GET", path, "a");
            let found = mixed.lookup(&MatchInput {
                route_name: None,
                head: &h,
            });
            assert_eq!((found.rule, found.conflict), (rule, conflict), "{path}");
        }
        // Rules that do not read the path meet the same rule in every reading.
        let unread = RuleSet::with_loosening(
            vec![
                (m(r#"{"methods":["POST"]}"#), 1),
                (m(r#"{"route_name":"r"}"#), 2),
            ],
            |_| false,
        );
        let h = head("POST", "/pets/..;/admin", "a");
        let found = unread.lookup(&MatchInput {
            route_name: Some("r"),
            head: &h,
        });
        assert_eq!((found.rule, found.conflict), (Some(&1), false));
    }
}
