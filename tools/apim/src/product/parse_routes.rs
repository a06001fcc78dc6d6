//! The product file's `apis` and their routes: matches, targets, auth, scopes, quota, GraphQL
//! and transforms.

use super::model::*;
use super::read::{self, index, items, join, members, object, At, Findings, Obj};
use crate::yaml_pos::{Kind, Node};

pub fn api(node: &Node, path: &str, f: &mut Findings) -> Option<Api> {
    let o = object(node, path, &["name", "hosts", "upstream", "routes"], f)?;
    let hosts = o
        .strings("hosts", f)
        .into_iter()
        .map(|h| h.v)
        .collect::<Vec<_>>();
    let upstream = o.string("upstream", f);
    let rp = o.path("routes");
    let routes = match o.get("routes") {
        Some(n) => items(n, &rp, f)
            .iter()
            .enumerate()
            .filter_map(|(i, r)| route(r, &index(&rp, i), upstream.as_ref(), f))
            .collect(),
        None => {
            f.error(o.pos(), &rp, "required (at least one route)");
            Vec::new()
        }
    };
    Some(Api {
        name: o.required("name", f)?,
        hosts: if hosts.is_empty() {
            vec!["*".to_string()]
        } else {
            hosts
        },
        routes,
    })
}

fn route(
    node: &Node,
    path: &str,
    upstream: Option<&At<String>>,
    f: &mut Findings,
) -> Option<Route> {
    let o = object(
        node,
        path,
        &[
            "name",
            "match",
            "grpc",
            "upstream",
            "respond",
            "auth",
            "allow",
            "scopes",
            "quota",
            "graphql",
            "transforms",
        ],
        f,
    )?;
    let name = o.required("name", f)?;
    let (grpc, grpc_methods) = match o.get("grpc") {
        Some(n) => grpc(n, &o.path("grpc"), f),
        None => (None, Vec::new()),
    };
    let path_match = match (o.get("match"), &grpc) {
        (Some(m), None) => path_match(m, &o.path("match"), f)?,
        (None, Some(service)) => PathMatch {
            kind: PathKind::Prefix,
            path: At {
                v: format!("/{}/", service.v),
                pos: service.pos,
            },
            ignore_case: false,
            methods: Vec::new(),
        },
        _ => {
            f.error(o.pos(), &o.path("match"), "exactly one of match, grpc");
            return None;
        }
    };
    let target = match (
        o.get("respond"),
        o.string("upstream", f).or_else(|| upstream.cloned()),
    ) {
        (Some(r), _) => {
            let r = object(r, &o.path("respond"), &["status", "body"], f)?;
            let status = r.uint("status", f).map_or(200, |s| s.v);
            if !(200..=599).contains(&status) {
                f.error(r.pos(), &r.path("status"), "an HTTP status is 200 – 599");
            }
            RouteTarget::Respond {
                status,
                body: r.string("body", f).map(|b| b.v).unwrap_or_default(),
            }
        }
        (None, Some(u)) => RouteTarget::Upstream(u),
        (None, None) => {
            f.error(
                o.pos(),
                &o.path("upstream"),
                "required (here or on the API), or respond",
            );
            return None;
        }
    };
    let allow = o
        .get("allow")
        .and_then(|n| object(n, &o.path("allow"), &["groups", "consumers"], f));
    Some(Route {
        pos: node.pos,
        path: path_match,
        grpc,
        grpc_methods,
        target,
        auth: o
            .get("auth")
            .map_or(Some(Auth::Key), |n| auth(n, &o.path("auth"), f))?,
        allow_groups: allow
            .as_ref()
            .map(|a| a.strings("groups", f))
            .unwrap_or_default(),
        allow_consumers: allow
            .as_ref()
            .map(|a| a.strings("consumers", f))
            .unwrap_or_default(),
        scopes: o
            .get("scopes")
            .and_then(|n| scopes(n, &o.path("scopes"), f)),
        quota: o.get("quota").map_or(
            Some(RouteQuota::Count {
                plan: None,
                cost: None,
            }),
            |n| route_quota(n, &o.path("quota"), f),
        )?,
        graphql: o.boolean("graphql", f).unwrap_or(false),
        transforms: transforms(&o, f),
        name,
    })
}

fn path_match(node: &Node, path: &str, f: &mut Findings) -> Option<PathMatch> {
    let o = object(
        node,
        path,
        &["exact", "prefix", "ignore_case", "methods"],
        f,
    )?;
    let kind = match (o.string("exact", f), o.string("prefix", f)) {
        (Some(p), None) => (PathKind::Exact, p),
        (None, Some(p)) => (PathKind::Prefix, p),
        _ => {
            f.error(node.pos, path, "exactly one of exact, prefix");
            return None;
        }
    };
    if !kind.1.v.starts_with('/') {
        f.error(
            kind.1.pos,
            path,
            format!("\"{}\" does not start with /", kind.1.v),
        );
    }
    Some(PathMatch {
        kind: kind.0,
        path: kind.1,
        ignore_case: o.boolean("ignore_case", f).unwrap_or(false),
        methods: {
            let methods = o.strings("methods", f);
            for m in &methods {
                if !METHODS.contains(&m.v.as_str()) {
                    f.error(
                        m.pos,
                        &o.path("methods"),
                        format!("\"{}\" is not one of: {}", m.v, METHODS.join(", ")),
                    );
                }
            }
            methods
        },
    })
}

fn grpc(node: &Node, path: &str, f: &mut Findings) -> (Option<At<String>>, Vec<GrpcMethod>) {
    let Some(o) = object(node, path, &["service", "methods"], f) else {
        return (None, Vec::new());
    };
    let methods = o
        .get("methods")
        .map(|n| {
            let mp = o.path("methods");
            members(n, &mp, f)
                .iter()
                .filter_map(|(name, at, m)| {
                    let p = join(&mp, name);
                    let m = object(m, &p, &["scopes", "plan", "cost"], f)?;
                    Some(GrpcMethod {
                        name: At {
                            v: name.clone(),
                            pos: *at,
                        },
                        scopes: m.get("scopes").map(|_| m.strings("scopes", f)),
                        plan: m.string("plan", f),
                        cost: m.uint("cost", f).map(|c| c.v),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    (o.required("service", f), methods)
}

fn auth(node: &Node, path: &str, f: &mut Findings) -> Option<Auth> {
    if let Kind::Map(_) = node.kind {
        let o = object(node, path, &["anonymous"], f)?;
        return Some(Auth::Anonymous(o.required("anonymous", f)?));
    }
    match read::string(node, path, f)?.v.as_str() {
        "key" => Some(Auth::Key),
        "token" => Some(Auth::Token),
        "none" => Some(Auth::None),
        other => {
            f.error(
                node.pos,
                path,
                format!("\"{other}\" is not one of: key, token, none, {{anonymous: CONSUMER}}"),
            );
            None
        }
    }
}

fn scopes(node: &Node, path: &str, f: &mut Findings) -> Option<Scopes> {
    if let Kind::Seq(_) = node.kind {
        return Some(Scopes::All(read::strings(node, path, f)));
    }
    let o = object(node, path, &["read", "write"], f)?;
    Some(Scopes::ReadWrite {
        read: o.strings("read", f),
        write: o.strings("write", f),
    })
}

fn route_quota(node: &Node, path: &str, f: &mut Findings) -> Option<RouteQuota> {
    if let Kind::Scalar(..) = node.kind {
        return match read::string(node, path, f)?.v.as_str() {
            "skip" => Some(RouteQuota::Skip),
            other => {
                f.error(
                    node.pos,
                    path,
                    format!("\"{other}\" is not skip or {{plan, cost}}"),
                );
                None
            }
        };
    }
    let o = object(node, path, &["plan", "cost"], f)?;
    Some(RouteQuota::Count {
        plan: o.string("plan", f),
        cost: o.uint("cost", f).map(|c| c.v),
    })
}

fn transforms(o: &Obj, f: &mut Findings) -> Vec<Node> {
    let Some(n) = o.get("transforms") else {
        return Vec::new();
    };
    let tp = o.path("transforms");
    items(n, &tp, f)
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match t.key_pos("match") {
            Some(at) => {
                f.error(
                    at,
                    &join(&index(&tp, i), "match"),
                    "the route's match is the rule's; narrow it with methods",
                );
                None
            }
            None if matches!(t.kind, Kind::Map(_)) => Some(t.clone()),
            None => {
                f.error(
                    t.pos,
                    &index(&tp, i),
                    "expected a mapping (a transform rule)",
                );
                None
            }
        })
        .collect()
}
