//! `apim check`: the product file's cross-references and risky choices. Shapes and types are
//! [`super::parse`]'s; every filter config rendered from the file is also run through that
//! filter's own validator ([`super::filters`]), so what passes here loads in Envoy.

use super::model::*;
use super::read::{At, Findings};
use std::collections::{BTreeMap, BTreeSet};

/// Every finding about `p`'s references and choices.
pub fn check(p: &Product, f: &mut Findings) {
    duplicates(p, f);
    k8s_names(p, f);
    plans(p, f);
    consumers(p, f);
    issuers(p, f);
    routes(p, f);
    shadowing(p, f);
    risky(p, f);
}

fn dup<'a>(names: impl Iterator<Item = &'a At<String>>, what: &str, field: &str, f: &mut Findings) {
    let mut seen = BTreeSet::new();
    for n in names {
        if !seen.insert(n.v.as_str()) {
            f.error(
                n.pos,
                field,
                format!("{what} \"{}\" is declared twice", n.v),
            );
        }
    }
}

/// Names the Kubernetes renders use: an API's names its HTTPRoute, a route's its rule. Each must
/// be an RFC 1123 label once `_`, `.` and spaces become `-` and letters are lower-cased, and two
/// names must not become the same one.
fn k8s_names(p: &Product, f: &mut Findings) {
    let label = |n: &str| {
        n.len() <= 63
            && n.starts_with(|c: char| c.is_ascii_alphanumeric())
            && n.ends_with(|c: char| c.is_ascii_alphanumeric())
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let apis: Vec<&At<String>> = p.apis.iter().map(|a| &a.name).collect();
    let routes: Vec<&At<String>> = p.routes().map(|r| &r.name).collect();
    for (what, names) in [("API", apis), ("route", routes)] {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for name in names {
            let k8s = super::k8s::k8s_name(&name.v);
            if !label(&k8s) {
                f.error(
                    name.pos,
                    "apis",
                    format!("{what} \"{}\" cannot name a Kubernetes object (letters, digits, -, _ and ., at most 63)", name.v),
                );
            } else if let Some(other) = seen.get(&k8s).filter(|o| **o != name.v) {
                f.error(
                    name.pos,
                    "apis",
                    format!(
                        "{what} \"{}\" and \"{other}\" are both {k8s} in Kubernetes",
                        name.v
                    ),
                );
            }
            seen.entry(k8s).or_insert(&name.v);
        }
    }
}

fn duplicates(p: &Product, f: &mut Findings) {
    dup(p.plans.iter().map(|x| &x.name), "plan", "plans", f);
    dup(
        p.consumers.iter().map(|x| &x.id),
        "consumer",
        "consumers",
        f,
    );
    dup(p.issuers.iter().map(|x| &x.name), "issuer", "issuers", f);
    dup(
        p.issuers.iter().map(|x| &x.issuer),
        "issuer URL",
        "issuers",
        f,
    );
    dup(
        p.upstreams.iter().map(|x| &x.name),
        "upstream",
        "upstreams",
        f,
    );
    dup(p.apis.iter().map(|x| &x.name), "API", "apis", f);
    dup(p.routes().map(|x| &x.name), "route", "apis.routes", f);
    let mut hosts = BTreeSet::new();
    for api in &p.apis {
        for h in &api.hosts {
            if !hosts.insert(h.to_ascii_lowercase()) {
                f.error(
                    api.name.pos,
                    "apis.hosts",
                    format!("host \"{h}\" is served by two APIs"),
                );
            }
        }
    }
}

fn plan_names(p: &Product) -> String {
    let names: Vec<&str> = p.plans.iter().map(|x| x.name.v.as_str()).collect();
    if names.is_empty() {
        "none declared".to_string()
    } else {
        names.join(", ")
    }
}

/// A plan reference resolves.
fn plan_ref(p: &Product, plan: &At<String>, field: &str, f: &mut Findings) {
    if p.plan(&plan.v).is_none() {
        f.error(
            plan.pos,
            field,
            format!(
                "plan \"{}\" is not declared (plans: {})",
                plan.v,
                plan_names(p)
            ),
        );
    }
}

fn plans(p: &Product, f: &mut Findings) {
    if let Some(d) = &p.quota.default_plan {
        plan_ref(p, d, "quota.default_plan", f);
    }
    let u = &p.quota.unknown_plan;
    if u.v != "deny" && u.v != "unlimited" {
        plan_ref(p, u, "quota.unknown_plan", f);
    }
}

fn consumers(p: &Product, f: &mut Findings) {
    for c in &p.consumers {
        if let Some(plan) = &c.plan {
            plan_ref(p, plan, "consumers.plan", f);
        }
    }
}

fn issuers(p: &Product, f: &mut Findings) {
    for i in &p.issuers {
        if let Some(plan) = &i.plan {
            plan_ref(p, plan, "issuers.plan", f);
        }
        if let Some(Jwks::Remote { upstream, .. }) = &i.jwks {
            upstream_ref(p, upstream, "issuers.jwks.remote.upstream", f);
        }
    }
}

fn upstream_ref(p: &Product, u: &At<String>, field: &str, f: &mut Findings) {
    if p.upstream(&u.v).is_none() {
        let names: Vec<&str> = p.upstreams.iter().map(|x| x.name.v.as_str()).collect();
        f.error(
            u.pos,
            field,
            format!(
                "upstream \"{}\" is not declared (upstreams: {})",
                u.v,
                names.join(", ")
            ),
        );
    }
}

/// Scopes something can grant on a route with this auth: consumers' (API keys) and issuers'
/// declared `scopes` (tokens).
fn grantable(p: &Product, auth: &Auth) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if !matches!(auth, Auth::Token) {
        for c in &p.consumers {
            out.extend(c.scopes.iter().map(|s| s.v.clone()));
        }
    }
    for i in &p.issuers {
        out.extend(i.scopes.iter().map(|s| s.v.clone()));
    }
    out
}

fn routes(p: &Product, f: &mut Findings) {
    let groups: BTreeSet<&str> = p
        .consumers
        .iter()
        .flat_map(|c| c.groups.iter().map(|g| g.v.as_str()))
        .collect();
    for r in p.routes() {
        let field = format!("route \"{}\"", r.name.v);
        if let RouteTarget::Upstream(u) = &r.target {
            // Field `upstream` for all: routes inheriting their API's are reported once, there.
            upstream_ref(p, u, "upstream", f);
        }
        if let Auth::Anonymous(id) = &r.auth {
            match p.consumer(&id.v) {
                None => f.error(id.pos, &field, format!("consumer \"{}\" is not declared", id.v)),
                Some(c) if !c.keys.is_empty() => f.error(
                    id.pos,
                    &field,
                    format!(
                        "anonymous consumer \"{}\" has keys: every keyless caller would get the rights of its key holder",
                        id.v
                    ),
                ),
                Some(_) => {}
            }
        }
        for c in &r.allow_consumers {
            if p.consumer(&c.v).is_none() {
                f.error(
                    c.pos,
                    &field,
                    format!("consumer \"{}\" is not declared", c.v),
                );
            }
        }
        for g in &r.allow_groups {
            if !groups.contains(g.v.as_str()) {
                f.error(
                    g.pos,
                    &field,
                    format!(
                        "no consumer is in group \"{}\": nobody could call this route",
                        g.v
                    ),
                );
            }
        }
        let restricts = !r.allow_groups.is_empty() || !r.allow_consumers.is_empty();
        if restricts && !matches!(r.auth, Auth::Key) {
            f.error(
                r.name.pos,
                &field,
                "allow needs auth: key (only an API key names a consumer and its groups)",
            );
        }
        let can = grantable(p, &r.auth);
        let mut required: Vec<&At<String>> = r.scopes.as_ref().map(Scopes::all).unwrap_or_default();
        for m in &r.grpc_methods {
            required.extend(m.scopes.iter().flatten());
        }
        for s in required {
            if !can.contains(&s.v) {
                let by = if matches!(r.auth, Auth::Token) {
                    "no issuer"
                } else {
                    "no consumer or issuer"
                };
                f.error(
                    s.pos,
                    &field,
                    format!(
                        "scope \"{}\" is granted by {by}: nobody could call this route",
                        s.v
                    ),
                );
            }
        }
        if matches!(r.auth, Auth::None)
            && (r.scopes.is_some() || r.grpc_methods.iter().any(|m| m.scopes.is_some()))
        {
            f.error(
                r.name.pos,
                &field,
                "scopes on a route with auth: none are never checked",
            );
        }
        let checks_scopes = r.scopes.as_ref().is_some_and(|s| !s.all().is_empty())
            || r.grpc_methods.iter().any(|m| m.scopes.is_some());
        if matches!(r.auth, Auth::Token) && p.issuers.is_empty() {
            f.error(r.name.pos, &field, "auth: token, but no issuer is declared");
        } else if checks_scopes && p.issuers.is_empty() {
            // scope-authz checks the scopes of keys and tokens alike, and runs with an issuer.
            f.error(
                r.name.pos,
                &field,
                "scopes are checked by scope-authz, which needs an issuer: declare one in issuers",
            );
        }
        let plans = match &r.quota {
            RouteQuota::Count {
                plan: Some(plan), ..
            } => vec![plan],
            _ => Vec::new(),
        };
        for plan in plans
            .into_iter()
            .chain(r.grpc_methods.iter().filter_map(|m| m.plan.as_ref()))
        {
            plan_ref(p, plan, &field, f);
        }
        for t in &r.transforms {
            if let Some(cluster) = t
                .to_json()
                .pointer("/graphql/cluster")
                .and_then(|c| c.as_str())
            {
                upstream_ref(
                    p,
                    &At {
                        v: cluster.to_string(),
                        pos: t.pos,
                    },
                    &field,
                    f,
                );
            }
        }
        let loosens = matches!(r.auth, Auth::None | Auth::Token | Auth::Anonymous(_))
            || r.quota == RouteQuota::Skip;
        if let (true, Some(first)) = (loosens, r.path.methods.first()) {
            // Where route names are generated, a loosening rule matches the route's path and
            // methods, and the filters compare methods without regard to case (`get` is GET):
            // the rule would let in what the route does not take.
            f.error(
                first.pos,
                &field,
                "methods on a route that loosens (auth: none, token or anonymous, quota: skip): a client picks the method; give reads and writes their scopes instead (scopes: {read, write})",
            );
        }
        if r.grpc.is_some() && matches!(r.scopes, Some(Scopes::ReadWrite { .. })) {
            f.error(
                r.name.pos,
                &field,
                "every gRPC call is a POST, so {read, write} would ask the write scopes of every method: give methods their scopes in grpc.methods",
            );
        }
        if r.graphql && matches!(r.target, RouteTarget::Respond { .. }) {
            f.error(
                r.name.pos,
                &field,
                "graphql: true on a route that answers itself guards nothing",
            );
        }
    }
}

/// Whether route `a` takes the requests of route `b`, compared as Envoy compares paths (lower-cased
/// when case is ignored) and methods (a route without methods takes every one).
fn covers(a: &PathMatch, b: &PathMatch) -> Cover {
    let fold = |s: &str, ci: bool| {
        if ci {
            s.to_ascii_lowercase()
        } else {
            s.to_string()
        }
    };
    let ci = a.ignore_case;
    let (pa, pb) = (fold(&a.path.v, ci), fold(&b.path.v, ci));
    let inside = match (a.kind, b.kind) {
        (PathKind::Exact, PathKind::Exact) => pa == pb,
        (PathKind::Exact, PathKind::Prefix) => false,
        (PathKind::Prefix, _) => pb.starts_with(&pa),
    };
    let methods = a.methods.is_empty()
        || (!b.methods.is_empty()
            && b.methods
                .iter()
                .all(|m| a.methods.iter().any(|x| x.v == m.v)));
    if !inside || !methods {
        return Cover::No;
    }
    // B ignores case and A does not: A takes only B's paths written in A's case.
    if b.ignore_case && !a.ignore_case && b.path.v.chars().any(|c| c.is_ascii_alphabetic()) {
        Cover::Partly
    } else {
        Cover::Fully
    }
}

#[derive(PartialEq)]
enum Cover {
    No,
    Partly,
    Fully,
}

/// A route an earlier one of its API always takes first is dead; one it sometimes takes
/// (by letter case) gets a decision that depends on how the client spells the path.
fn shadowing(p: &Product, f: &mut Findings) {
    for api in &p.apis {
        for (j, b) in api.routes.iter().enumerate() {
            for a in api.routes.iter().take(j) {
                let field = format!("route \"{}\"", b.name.v);
                match covers(&a.path, &b.path) {
                    Cover::Fully => f.error(
                        b.path.path.pos,
                        &field,
                        format!("never reached: route \"{}\" before it takes every request it would take", a.name.v),
                    ),
                    Cover::Partly => f.warn(
                        b.path.path.pos,
                        &field,
                        format!(
                            "route \"{}\" before it takes the paths written in its case: the decision depends on the client's spelling",
                            a.name.v
                        ),
                    ),
                    Cover::No => {}
                }
            }
        }
    }
}

const WRITES: &str = "POST, PUT, PATCH, DELETE and any other method but GET and HEAD";

fn risky(p: &Product, f: &mut Findings) {
    for plan in &p.plans {
        if plan.limits.is_empty() {
            f.warn(
                plan.name.pos,
                &format!("plans.{}", plan.name.v),
                format!(
                    "a plan without limits: quota treats its callers by unknown_plan ({})",
                    p.quota.unknown_plan.v
                ),
            );
        }
    }
    if !p.plans.iter().any(|pl| !pl.limits.is_empty()) && !p.apis.is_empty() {
        f.warn(
            p.quota.failure.pos,
            "plans",
            "no plan has limits: nothing is rate limited (quota is left out)",
        );
    }
    if p.quota.failure.v == "open" {
        f.warn(
            p.quota.failure.pos,
            "quota.failure",
            "fail-open: when the counter store fails, every request is admitted without a limit",
        );
    }
    if p.quota.unknown_plan.v == "unlimited" {
        f.warn(
            p.quota.unknown_plan.pos,
            "quota.unknown_plan",
            "a caller whose plan is unknown is never limited",
        );
    }
    let anonymous: BTreeSet<&str> = p
        .routes()
        .filter_map(|r| match &r.auth {
            Auth::Anonymous(id) => Some(id.v.as_str()),
            _ => None,
        })
        .collect();
    for c in &p.consumers {
        if c.keys.is_empty() && !c.disabled && !anonymous.contains(c.id.v.as_str()) {
            f.warn(
                c.id.pos,
                "consumers",
                format!(
                    "consumer \"{}\" has no key and no route admits it anonymously",
                    c.id.v
                ),
            );
        }
        for k in &c.keys {
            if let Some(e) = &k.expires_at {
                if super::time::is_past(&e.v) {
                    f.warn(
                        e.pos,
                        "consumers.keys.expires_at",
                        format!("consumer \"{}\": this key has expired", c.id.v),
                    );
                }
            }
        }
    }
    for r in p.routes() {
        let field = format!("route \"{}\"", r.name.v);
        let writes_guarded =
            matches!(&r.scopes, Some(Scopes::ReadWrite { write, .. }) if !write.is_empty());
        if matches!(r.auth, Auth::Anonymous(_)) && !writes_guarded {
            f.warn(r.name.pos, &field, format!("anonymous callers may send writes ({WRITES}); require a write scope (scopes: {{read: [], write: [...]}})"));
        }
        if matches!(r.auth, Auth::None)
            && matches!(r.target, RouteTarget::Upstream(_))
            && !writes_guarded
        {
            f.warn(
                r.name.pos,
                &field,
                "auth: none forwards every caller and method to the upstream",
            );
        }
        if matches!(r.auth, Auth::Key | Auth::Token)
            && r.scopes.is_none()
            && r.allow_groups.is_empty()
            && r.allow_consumers.is_empty()
            && r.grpc_methods.is_empty()
        {
            f.warn(r.name.pos, &field, "no rule covers this route: any authenticated caller may call it (scopes: [] says so on purpose)");
        }
    }
    let h = &p.gateway.hardening;
    if !h.normalize_path || h.escaped_slashes != "reject" {
        f.warn(h.pos, "gateway.hardening", "path rules may see a path the upstream reads differently (keep normalize_path and escaped_slashes: reject)");
    }
    if let Some(a) = &p.gateway.admin {
        if a.address != "127.0.0.1" && a.address != "::1" && a.address != "localhost" {
            f.warn(a.pos, "gateway.admin", "Envoy's admin interface off loopback lets anyone who reaches it change the gateway");
        }
    }
}
