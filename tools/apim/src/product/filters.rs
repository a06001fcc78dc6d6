//! The five filter configs a product file stands for. Each filter's rules follow the routes'
//! order, as Envoy's route table does: a request meets the rules of the route it takes before
//! those of any later route.
//!
//! Two match forms, as the deployment manifests have always used them:
//! - rules that **restrict** (allow lists, required scopes, a GraphQL guard, a plan or cost)
//!   match the route's path, case ignored when the route ignores it, so the filters read an
//!   ambiguous path their widest way and still meet them;
//! - rules that **loosen** (skip, anonymous) match the route's name where the target keeps the
//!   names (a bootstrap of our own), and where names are generated (Istio, Envoy Gateway) the
//!   route's own paths, element by element, as written (never widened by case). The filters
//!   never let a loosening rule match an ambiguous path.

use super::json::J;
use super::model::*;
use crate::validate_target::Target;

/// Each filter config the product needs, by module name, in the suite's order. A filter nothing
/// uses is left out (a filter that matches no route still costs every request its call):
/// api-key-auth without a route taking keys, scope-authz without issuers or scopes,
/// graphql-guard without a GraphQL route, quota without a plan that has limits, transform
/// without transforms.
pub fn configs(p: &Product, target: Target) -> Vec<(&'static str, J)> {
    let mut out = Vec::new();
    if p.routes()
        .any(|r| matches!(r.auth, Auth::Key | Auth::Anonymous(_)))
    {
        out.push(("api_key_auth", api_key_auth(p, target)));
    }
    let scopes_used = p.routes().any(|r| {
        r.scopes.is_some()
            || matches!(r.auth, Auth::Token)
            || r.grpc_methods.iter().any(|m| m.scopes.is_some())
    });
    if !p.issuers.is_empty() || scopes_used {
        out.push(("scope_authz", scope_authz(p, target)));
    }
    if p.routes().any(|r| r.graphql) {
        out.push(("graphql_guard", graphql_guard(p, target)));
    }
    if p.plans.iter().any(|pl| !pl.limits.is_empty()) {
        out.push(("quota", quota(p, target)));
    }
    if p.routes().any(|r| !r.transforms.is_empty()) {
        out.push(("transform", transform(p)));
    }
    out
}

fn path_of(r: &Route) -> J {
    let kind = match r.path.kind {
        PathKind::Exact => "exact",
        PathKind::Prefix => "prefix",
    };
    J::obj().with(kind, J::str(&r.path.path.v))
}

/// The match of a restricting rule: the route's path (or gRPC service), its case handling and
/// methods (which the filters compare without regard to case: wider than the route, as a
/// restriction should be).
fn wide(r: &Route) -> J {
    if let Some(service) = &r.grpc {
        return J::obj().with("grpc", J::obj().with("service", J::str(&service.v)));
    }
    let mut m = J::obj().with("path", path_of(r));
    if !r.path.methods.is_empty() {
        m.push(
            "methods",
            J::strs(r.path.methods.iter().map(|x| x.v.as_str())),
        );
    }
    if r.path.ignore_case {
        m.push("ignore_case", J::Bool(true));
    }
    m
}

/// `wide(r)` for these methods only.
fn wide_for(r: &Route, methods: &[&str]) -> J {
    let J::Obj(members) = wide(r) else {
        return wide(r);
    };
    let mut m = J::obj();
    for (k, v) in members {
        if k != "methods" {
            m.push(&k, v);
        }
    }
    m.with("methods", J::strs(methods.iter().copied()))
}

/// The match of a loosening rule: the route's name, or, where route names are generated, the
/// paths the route takes and no more: an exact path, or a prefix element by element (`/public`
/// and `/public/…`, never `/publicity`), as a Gateway API `PathPrefix` matches.
fn narrow(r: &Route, target: Target) -> J {
    if target == Target::Envoy {
        return J::obj().with("route_name", J::str(&r.name.v));
    }
    let path = &r.path.path.v;
    let m = match (r.path.kind, r.grpc.is_some()) {
        (PathKind::Exact, _) => J::obj().with("exact", J::str(path)),
        // A gRPC service's prefix ends in `/`: its methods, exactly what the route takes.
        (PathKind::Prefix, true) => J::obj().with("prefix", J::str(path)),
        (PathKind::Prefix, false) => {
            let base = path.trim_end_matches('/');
            J::obj().with("regex", J::str(&format!("^{}(/.*)?$", regex_escape(base))))
        }
    };
    J::obj().with("path", m)
}

/// `s` matched literally in a regular expression.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn raw(n: &Option<crate::yaml_pos::Node>) -> Option<J> {
    n.as_ref().map(J::from_node)
}

fn non_empty(o: &mut J, key: &str, items: &[super::read::At<String>]) {
    if !items.is_empty() {
        o.push(key, J::strs(items.iter().map(|s| s.v.as_str())));
    }
}

fn api_key_auth(p: &Product, target: Target) -> J {
    let g = &p.gateway;
    let mut c = J::obj();
    if let Some(realm) = &g.realm {
        c.push("realm", J::str(realm));
    }
    if let Some(s) = raw(&g.key_sources) {
        c.push("sources", s);
    }
    let consumers = p
        .consumers
        .iter()
        .map(|k| {
            let mut o = J::obj().with("id", J::str(&k.id.v));
            if let Some(plan) = &k.plan {
                o.push("plan", J::str(&plan.v));
            }
            non_empty(&mut o, "groups", &k.groups);
            non_empty(&mut o, "scopes", &k.scopes);
            if k.disabled {
                o.push("disabled", J::Bool(true));
            }
            if !k.keys.is_empty() {
                let keys = k.keys.iter().map(|key| {
                    let mut e = J::obj().with("sha256", J::str(&key.sha256.v));
                    for (name, v) in [
                        ("not_before", &key.not_before),
                        ("expires_at", &key.expires_at),
                    ] {
                        if let Some(v) = v {
                            e.push(name, J::str(&v.v));
                        }
                    }
                    e
                });
                o.push("keys", J::Arr(keys.collect()));
            }
            o
        })
        .collect();
    c.push("consumers", J::Arr(consumers));
    let mut rules = Vec::new();
    for r in p.routes() {
        match &r.auth {
            Auth::None | Auth::Token => {
                rules.push(
                    J::obj()
                        .with("match", narrow(r, target))
                        .with("skip", J::Bool(true)),
                );
            }
            Auth::Anonymous(id) => rules.push(
                J::obj()
                    .with("match", narrow(r, target))
                    .with("anonymous", J::str(&id.v)),
            ),
            Auth::Key if !r.allow_groups.is_empty() || !r.allow_consumers.is_empty() => {
                let mut allow = J::obj();
                non_empty(&mut allow, "consumers", &r.allow_consumers);
                non_empty(&mut allow, "groups", &r.allow_groups);
                rules.push(J::obj().with("match", wide(r)).with("allow", allow));
            }
            Auth::Key => {}
        }
    }
    c.push("rules", J::Arr(rules));
    if let Some(fw) = raw(&g.forward) {
        c.push("forward", fw);
    }
    if g.cors_preflight {
        c.push("allow_cors_preflight", J::Bool(true));
    }
    c
}

fn require(scopes: &[super::read::At<String>]) -> Option<J> {
    (!scopes.is_empty())
        .then(|| J::obj().with("all_of", J::strs(scopes.iter().map(|s| s.v.as_str()))))
}

fn rule(m: J, req: Option<J>) -> J {
    let r = J::obj().with("match", m);
    match req {
        Some(req) => r.with("require", req),
        None => r,
    }
}

fn scope_authz(p: &Product, target: Target) -> J {
    let mut c = J::obj();
    if let Some(realm) = &p.gateway.realm {
        c.push("realm", J::str(realm));
    }
    let providers = p.issuers.iter().map(|i| {
        let mut o = J::obj()
            .with("name", J::str(&i.name.v))
            .with("issuer", J::str(&i.issuer.v));
        non_empty(&mut o, "audiences", &i.audiences);
        non_empty(&mut o, "algorithms", &i.algorithms);
        match &i.jwks {
            Some(Jwks::Inline(doc)) => o.push("jwks", J::obj().with("inline", J::from_node(doc))),
            Some(Jwks::Remote {
                upstream,
                path,
                refresh_seconds,
            }) => {
                let authority = p
                    .upstream(&upstream.v)
                    .and_then(|u| u.tls_sni.clone())
                    .unwrap_or_else(|| upstream.v.clone());
                let mut r = J::obj()
                    .with("cluster", J::str(&upstream.v))
                    .with("path", J::str(path))
                    .with("authority", J::str(&authority));
                if let Some(s) = refresh_seconds {
                    r.push("refresh_seconds", J::num(*s));
                }
                o.push("jwks", J::obj().with("remote", r));
            }
            None => {}
        }
        if let Some(plan) = &i.plan {
            o.push("plan", J::str(&plan.v));
        }
        o
    });
    c.push("providers", J::Arr(providers.collect()));
    let mut rules = Vec::new();
    for r in p.routes() {
        if matches!(r.auth, Auth::None)
            || (matches!(r.auth, Auth::Anonymous(_)) && r.scopes.is_none())
        {
            rules.push(
                J::obj()
                    .with("match", narrow(r, target))
                    .with("skip", J::Bool(true)),
            );
            continue;
        }
        if let Some(service) = &r.grpc {
            for m in &r.grpc_methods {
                if let Some(scopes) = &m.scopes {
                    let g = J::obj()
                        .with("service", J::str(&service.v))
                        .with("method", J::str(&m.name.v));
                    rules.push(rule(J::obj().with("grpc", g), require(scopes)));
                }
            }
        }
        match &r.scopes {
            Some(Scopes::All(s)) if !s.is_empty() => rules.push(rule(wide(r), require(s))),
            Some(Scopes::ReadWrite { read, write }) => {
                rules.push(rule(
                    wide(r).with("methods", J::strs(["GET", "HEAD"])),
                    require(read),
                ));
                rules.push(rule(wide(r), require(write)));
            }
            _ => {}
        }
    }
    c.push("rules", J::Arr(rules));
    if let Some(fc) = raw(&p.gateway.forward_claims) {
        c.push("forward_claims", fc);
    }
    if p.gateway.publish_claims {
        c.push("publish_claims", J::Bool(true));
    }
    if p.gateway.cors_preflight {
        c.push("allow_cors_preflight", J::Bool(true));
    }
    c
}

fn graphql_guard(p: &Product, target: Target) -> J {
    let rules = p
        .routes()
        .filter(|r| r.graphql)
        .map(|r| J::obj().with("match", wide(r)));
    let mut c = J::obj().with("rules", J::Arr(rules.collect()));
    if let Some(J::Obj(members)) = raw(&p.graphql) {
        for (k, v) in members {
            c.push(&k, v);
        }
    }
    let plans: Vec<(String, J)> = p
        .plans
        .iter()
        .filter_map(|pl| {
            pl.graphql
                .as_ref()
                .map(|g| (pl.name.v.clone(), J::from_node(g)))
        })
        .collect();
    if !plans.is_empty() {
        c.push("plans", J::Obj(plans));
    }
    if p.gateway.access_log.is_some() {
        c.push("publish_operation", J::Bool(true));
    }
    if target != Target::Envoy {
        // A WasmPlugin or EnvoyExtensionPolicy cannot set Envoy's
        // allow_on_headers_stop_iteration, so the guard there does not hold the headers.
        c.push("hold_headers", J::Bool(false));
    }
    c
}

fn quota(p: &Product, target: Target) -> J {
    let q = &p.quota;
    let plans = p
        .plans
        .iter()
        .filter(|pl| !pl.limits.is_empty())
        .map(|pl| {
            let limits = J::Arr(pl.limits.iter().map(J::from_node).collect());
            (pl.name.v.clone(), J::obj().with("limits", limits))
        })
        .collect();
    let mut c = J::obj().with("plans", J::Obj(plans));
    if let Some(d) = &q.default_plan {
        c.push("default_plan", J::str(&d.v));
    }
    c.push("unknown_plan", J::str(&q.unknown_plan.v));
    c.push("key", J::strs(["consumer"]));
    let mut anonymous: Vec<&str> = Vec::new();
    for r in p.routes() {
        if let Auth::Anonymous(id) = &r.auth {
            if !anonymous.contains(&id.v.as_str()) {
                anonymous.push(&id.v);
            }
        }
    }
    if !anonymous.is_empty() {
        c.push("anonymous_consumers", J::strs(anonymous));
    }
    c.push("missing_key", J::str(&q.missing_key));
    c.push("cors_preflight", J::str("separate"));
    if q.failure.v == "open" {
        c.push("when_store_fails", J::str("admit"));
    }
    let mut rules = Vec::new();
    for r in p.routes() {
        let weigh = |m: J, plan: &Option<super::read::At<String>>, cost: Option<u64>| {
            let mut o = J::obj().with("match", m);
            if let Some(plan) = plan {
                o.push("plan", J::str(&plan.v));
            }
            if let Some(cost) = cost {
                o.push("cost", J::num(cost));
            }
            o
        };
        if let Some(service) = &r.grpc {
            for m in r
                .grpc_methods
                .iter()
                .filter(|m| m.plan.is_some() || m.cost.is_some())
            {
                let g = J::obj()
                    .with("service", J::str(&service.v))
                    .with("method", J::str(&m.name.v));
                rules.push(weigh(J::obj().with("grpc", g), &m.plan, m.cost));
            }
        }
        match &r.quota {
            RouteQuota::Skip => rules.push(
                J::obj()
                    .with("match", narrow(r, target))
                    .with("skip", J::Bool(true)),
            ),
            RouteQuota::Count { plan, cost } if plan.is_some() || cost.is_some() => {
                rules.push(weigh(wide(r), plan, *cost));
            }
            RouteQuota::Count { .. } => {}
        }
    }
    if !rules.is_empty() {
        c.push("rules", J::Arr(rules));
    }
    if let Some(h) = raw(&q.headers) {
        c.push("headers", h);
    }
    if q.shadow {
        c.push("shadow", J::Bool(true));
    }
    if p.gateway.access_log.is_some() {
        c.push("publish_usage", J::Bool(true));
    }
    c
}

fn transform(p: &Product) -> J {
    let mut c = J::obj();
    if let Some(J::Obj(members)) = raw(&p.transform) {
        for (k, v) in members {
            c.push(&k, v);
        }
    }
    let mut rules = Vec::new();
    for r in p.routes() {
        for t in &r.transforms {
            let J::Obj(members) = J::from_node(t) else {
                continue;
            };
            // The rule's own methods narrow the route's.
            let m = match members.iter().find(|(k, _)| k == "methods") {
                Some((_, J::Arr(methods))) => {
                    let names: Vec<&str> = methods
                        .iter()
                        .filter_map(|x| {
                            if let J::Str(s) = x {
                                Some(s.as_str())
                            } else {
                                None
                            }
                        })
                        .collect();
                    wide_for(r, &names)
                }
                _ => wide(r),
            };
            // `name` first, then the match, then the rule's own steps as written.
            let mut out = J::obj();
            if let Some((_, name)) = members.iter().find(|(k, _)| k == "name") {
                out.push("name", name.clone());
            }
            out.push("match", m);
            for (k, v) in members {
                if k != "name" && k != "methods" {
                    out.push(&k, v);
                }
            }
            rules.push(out);
        }
    }
    c.with("rules", J::Arr(rules))
}
