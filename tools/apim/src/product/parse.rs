//! The product file's YAML tree → [`Product`]: shapes, types, unknown fields and defaults.
//! Cross-references (a plan that is not declared, …) are [`super::check`]'s.

use super::model::*;
use super::parse_routes::api;
use super::parse_settings::{deploy, gateway, quota};
use super::read::{index, items, join, members, object, At, Findings, Obj};
use crate::yaml_pos::Node;

pub const API_VERSION: &str = "apim/v1";

/// The product file, or nothing when its top level is not even a mapping.
pub fn product(doc: &Node, f: &mut Findings) -> Option<Product> {
    let top = object(
        doc,
        "",
        &[
            "apiVersion",
            "description",
            "gateway",
            "deploy",
            "quota",
            "graphql",
            "transform",
            "plans",
            "consumers",
            "issuers",
            "upstreams",
            "apis",
        ],
        f,
    )?;
    match top.string("apiVersion", f) {
        Some(v) if v.v == API_VERSION => {}
        Some(v) => f.error(
            v.pos,
            "apiVersion",
            format!("\"{}\" is not {API_VERSION}", v.v),
        ),
        None => f.error(doc.pos, "apiVersion", format!("required ({API_VERSION})")),
    }
    let graphql = top.raw_object("graphql", f);
    let transform = top.raw_object("transform", f);
    for (section, key, instead) in [
        (&graphql, "rules", "a route's `graphql: true`"),
        (&graphql, "plans", "plans.<plan>.graphql"),
        (&transform, "rules", "a route's `transforms`"),
    ] {
        if let Some(at) = section.as_ref().and_then(|s| s.key_pos(key)) {
            let name = if section == &graphql {
                "graphql"
            } else {
                "transform"
            };
            f.error(at, &join(name, key), format!("set with {instead}"));
        }
    }
    if top.get("apis").is_none() {
        f.error(doc.pos, "apis", "required (at least one API)");
    }
    Some(Product {
        description: top.string("description", f).map(|d| d.v),
        gateway: gateway(top.get("gateway"), f),
        deploy: deploy(top.get("deploy"), f),
        quota: quota(top.get("quota"), doc.pos, f),
        graphql,
        transform,
        plans: top.get("plans").map(|n| plans(n, f)).unwrap_or_default(),
        consumers: list(&top, "consumers", f, consumer),
        issuers: list(&top, "issuers", f, issuer),
        upstreams: top
            .get("upstreams")
            .map(|n| upstreams(n, f))
            .unwrap_or_default(),
        apis: list(&top, "apis", f, api),
    })
}

fn list<T>(
    obj: &Obj,
    key: &str,
    f: &mut Findings,
    each: fn(&Node, &str, &mut Findings) -> Option<T>,
) -> Vec<T> {
    let Some(node) = obj.get(key) else {
        return Vec::new();
    };
    let path = obj.path(key);
    items(node, &path, f)
        .iter()
        .enumerate()
        .filter_map(|(i, n)| each(n, &index(&path, i), f))
        .collect()
}

fn plans(node: &Node, f: &mut Findings) -> Vec<Plan> {
    members(node, "plans", f)
        .iter()
        .filter_map(|(name, at, n)| {
            let path = join("plans", name);
            let o = object(n, &path, &["limits", "graphql"], f)?;
            let limits = o
                .get("limits")
                .map(|l| items(l, &o.path("limits"), f).to_vec())
                .unwrap_or_default();
            Some(Plan {
                name: At {
                    v: name.clone(),
                    pos: *at,
                },
                limits,
                graphql: o.raw_object("graphql", f),
            })
        })
        .collect()
}

fn consumer(node: &Node, path: &str, f: &mut Findings) -> Option<Consumer> {
    let o = object(
        node,
        path,
        &["id", "plan", "groups", "scopes", "keys", "disabled"],
        f,
    )?;
    let keys = o
        .get("keys")
        .map(|n| {
            let kp = o.path("keys");
            items(n, &kp, f)
                .iter()
                .enumerate()
                .filter_map(|(i, k)| key(k, &index(&kp, i), f))
                .collect()
        })
        .unwrap_or_default();
    Some(Consumer {
        id: o.required("id", f)?,
        plan: o.string("plan", f),
        groups: o.strings("groups", f),
        scopes: o.strings("scopes", f),
        keys,
        disabled: o.boolean("disabled", f).unwrap_or(false),
    })
}

fn key(node: &Node, path: &str, f: &mut Findings) -> Option<Key> {
    let o = object(node, path, &["sha256", "not_before", "expires_at"], f)?;
    Some(Key {
        pos: node.pos,
        sha256: o.required("sha256", f)?,
        not_before: o.string("not_before", f),
        expires_at: o.string("expires_at", f),
    })
}

fn issuer(node: &Node, path: &str, f: &mut Findings) -> Option<Issuer> {
    let o = object(
        node,
        path,
        &[
            "name",
            "issuer",
            "audiences",
            "algorithms",
            "jwks",
            "scopes",
            "plan",
        ],
        f,
    )?;
    let jwks = match o.get("jwks") {
        None => {
            f.error(o.pos(), &o.path("jwks"), "required (inline or remote)");
            None
        }
        Some(n) => jwks(n, &o.path("jwks"), f),
    };
    Some(Issuer {
        name: o.required("name", f)?,
        issuer: o.required("issuer", f)?,
        audiences: o.strings("audiences", f),
        algorithms: {
            // scope-authz accepts no token without an explicit allow-list of algorithms.
            if o.get("algorithms").is_none() {
                f.error(o.pos(), &o.path("algorithms"), "required (e.g. [RS256])");
            }
            o.strings("algorithms", f)
        },
        jwks,
        scopes: o.strings("scopes", f),
        plan: o.string("plan", f),
    })
}

fn jwks(node: &Node, path: &str, f: &mut Findings) -> Option<Jwks> {
    let o = object(node, path, &["inline", "remote"], f)?;
    match (o.raw_object("inline", f), o.get("remote")) {
        (Some(doc), None) => Some(Jwks::Inline(doc)),
        (None, Some(r)) => {
            let rp = o.path("remote");
            let r = object(r, &rp, &["upstream", "path", "refresh_seconds"], f)?;
            Some(Jwks::Remote {
                upstream: r.required("upstream", f)?,
                path: r.required("path", f)?.v,
                refresh_seconds: r.uint("refresh_seconds", f).map(|n| n.v),
            })
        }
        _ => {
            f.error(node.pos, path, "exactly one of inline, remote");
            None
        }
    }
}

fn upstreams(node: &Node, f: &mut Findings) -> Vec<Upstream> {
    members(node, "upstreams", f)
        .iter()
        .filter_map(|(name, at, n)| {
            let path = join("upstreams", name);
            let o = object(n, &path, &["address", "port", "http2", "tls", "service"], f)?;
            let tls_sni = o
                .get("tls")
                .and_then(|t| object(t, &o.path("tls"), &["sni"], f))
                .and_then(|t| t.required("sni", f))
                .map(|s| s.v);
            let port = o.uint("port", f);
            if port.is_none() && o.get("port").is_none() {
                f.error(o.pos(), &o.path("port"), "required");
            }
            let port = port?.v;
            let mut service = (name.replace('_', "-"), port);
            if let Some(s) = o
                .get("service")
                .and_then(|s| object(s, &o.path("service"), &["name", "port"], f))
            {
                if let Some(n) = s.string("name", f) {
                    service.0 = n.v;
                }
                if let Some(p) = s.uint("port", f) {
                    service.1 = p.v;
                }
            }
            Some(Upstream {
                name: At {
                    v: name.clone(),
                    pos: *at,
                },
                address: o.required("address", f)?.v,
                port,
                service,
                http2: o.boolean("http2", f).unwrap_or(false),
                tls_sni,
            })
        })
        .collect()
}
