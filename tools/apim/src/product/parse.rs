//! The product file's YAML tree → [`Product`]: shapes, types, unknown fields and defaults.
//! Cross-references (a plan that is not declared, …) are [`super::check`]'s.

use super::model::*;
use super::read::{self, index, items, join, members, object, At, Findings, Obj};
use crate::yaml_pos::{Kind, Node, Pos};

pub const API_VERSION: &str = "apim/v1";

/// Where the JSON access log goes unless the product file says otherwise.
pub const DEFAULT_ACCESS_LOG: &str = "/dev/stdout";

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

fn address(node: Option<&Node>, path: &str, default: (&str, u64), f: &mut Findings) -> Address {
    let mut out = Address {
        address: default.0.to_string(),
        port: default.1,
        pos: node.map_or(Pos::default(), |n| n.pos),
    };
    if let Some(o) = node.and_then(|n| object(n, path, &["address", "port"], f)) {
        if let Some(a) = o.string("address", f) {
            out.address = a.v;
        }
        if let Some(p) = o.uint("port", f) {
            if p.v == 0 || p.v > 65535 {
                f.error(p.pos, &o.path("port"), "a port is 1 – 65535");
            }
            out.port = p.v;
        }
    }
    out
}

fn gateway(node: Option<&Node>, f: &mut Findings) -> Gateway {
    let mut g = Gateway {
        form: Form::Modules,
        listener: address(None, "", ("127.0.0.1", 10000), f),
        admin: Some(address(None, "", ("127.0.0.1", 9901), f)),
        modules_dir: None,
        hardening: Hardening {
            normalize_path: true,
            merge_slashes: true,
            escaped_slashes: "reject".to_string(),
            use_remote_address: true,
            xff_trusted_hops: 0,
            pos: Pos::default(),
        },
        realm: None,
        cors_preflight: false,
        key_sources: None,
        forward: None,
        forward_claims: None,
        publish_claims: false,
        access_log: Some(DEFAULT_ACCESS_LOG.to_string()),
    };
    let Some(o) = node.and_then(|n| {
        object(
            n,
            "gateway",
            &[
                "form",
                "listener",
                "admin",
                "modules_dir",
                "hardening",
                "realm",
                "cors_preflight",
                "api_keys",
                "tokens",
                "access_log",
            ],
            f,
        )
    }) else {
        return g;
    };
    g.form = Form::parse(&o.choice("form", &Form::NAMES, "modules", f)).unwrap_or(Form::Modules);
    g.listener = address(
        o.get("listener"),
        &o.path("listener"),
        ("127.0.0.1", 10000),
        f,
    );
    g.admin = Some(address(
        o.get("admin"),
        &o.path("admin"),
        ("127.0.0.1", 9901),
        f,
    ));
    g.modules_dir = o.string("modules_dir", f).map(|s| s.v);
    if let Some(h) = o.get("hardening").and_then(|n| {
        object(
            n,
            &o.path("hardening"),
            &[
                "normalize_path",
                "merge_slashes",
                "escaped_slashes",
                "use_remote_address",
                "xff_trusted_hops",
            ],
            f,
        )
    }) {
        let hd = &mut g.hardening;
        hd.pos = h.pos();
        hd.normalize_path = h.boolean("normalize_path", f).unwrap_or(true);
        hd.merge_slashes = h.boolean("merge_slashes", f).unwrap_or(true);
        hd.escaped_slashes = h.choice(
            "escaped_slashes",
            &[
                "reject",
                "unescape_and_redirect",
                "unescape_and_forward",
                "keep",
            ],
            "reject",
            f,
        );
        hd.use_remote_address = h.boolean("use_remote_address", f).unwrap_or(true);
        hd.xff_trusted_hops = h.uint("xff_trusted_hops", f).map_or(0, |n| n.v);
    }
    g.realm = o.string("realm", f).map(|s| s.v);
    match o.get("access_log").map(|n| (n, &n.kind)) {
        None => {}
        Some((n, Kind::Map(_))) => {
            if let Some(a) = object(n, &o.path("access_log"), &["path"], f) {
                g.access_log = Some(
                    a.required("path", f)
                        .map_or_else(|| DEFAULT_ACCESS_LOG.to_string(), |p| p.v),
                );
            }
        }
        Some((n, _)) => match read::string(n, &o.path("access_log"), f) {
            Some(s) if s.v == "off" => g.access_log = None,
            Some(s) => f.error(
                s.pos,
                &o.path("access_log"),
                format!("\"{}\" is not off or {{path: FILE}}", s.v),
            ),
            None => {}
        },
    }
    g.cors_preflight = o.boolean("cors_preflight", f).unwrap_or(false);
    if let Some(k) = o
        .get("api_keys")
        .and_then(|n| object(n, &o.path("api_keys"), &["sources", "forward"], f))
    {
        g.key_sources = k.raw("sources");
        g.forward = k.raw_object("forward", f);
    }
    if let Some(t) = o.get("tokens").and_then(|n| {
        object(
            n,
            &o.path("tokens"),
            &["forward_claims", "publish_claims"],
            f,
        )
    }) {
        g.forward_claims = t.raw("forward_claims");
        g.publish_claims = t.boolean("publish_claims", f).unwrap_or(false);
    }
    g
}

fn deploy(node: Option<&Node>, f: &mut Findings) -> Deploy {
    let mut d = Deploy {
        namespace: "apim".to_string(),
        registry: "ghcr.io/apim-suite".to_string(),
        tag: env!("CARGO_PKG_VERSION").to_string(),
        istio_namespace: "istio-ingress".to_string(),
        istio_selector: vec![("istio".to_string(), "ingressgateway".to_string())],
        gateway: ("apim-gateway".to_string(), "apim".to_string()),
    };
    let Some(o) =
        node.and_then(|n| object(n, "deploy", &["namespace", "images", "istio", "gateway"], f))
    else {
        return d;
    };
    if let Some(ns) = o.string("namespace", f) {
        d.namespace = ns.v;
        d.gateway.1 = d.namespace.clone();
    }
    if let Some(i) = o
        .get("images")
        .and_then(|n| object(n, &o.path("images"), &["registry", "tag"], f))
    {
        if let Some(r) = i.string("registry", f) {
            d.registry = r.v;
        }
        if let Some(t) = i.string("tag", f) {
            d.tag = t.v;
        }
    }
    if let Some(i) = o
        .get("istio")
        .and_then(|n| object(n, &o.path("istio"), &["namespace", "selector"], f))
    {
        if let Some(ns) = i.string("namespace", f) {
            d.istio_namespace = ns.v;
        }
        if let Some(sel) = i.get("selector") {
            let sp = i.path("selector");
            d.istio_selector = members(sel, &sp, f)
                .iter()
                .filter_map(|(k, _, v)| read::string(v, &join(&sp, k), f).map(|v| (k.clone(), v.v)))
                .collect();
        }
    }
    if let Some(g) = o
        .get("gateway")
        .and_then(|n| object(n, &o.path("gateway"), &["name", "namespace"], f))
    {
        if let Some(n) = g.string("name", f) {
            d.gateway.0 = n.v;
        }
        if let Some(ns) = g.string("namespace", f) {
            d.gateway.1 = ns.v;
        }
    }
    d
}

fn quota(node: Option<&Node>, top: Pos, f: &mut Findings) -> QuotaSettings {
    let mut q = QuotaSettings {
        default_plan: None,
        unknown_plan: At {
            v: "deny".to_string(),
            pos: top,
        },
        missing_key: "client_address".to_string(),
        failure: At {
            v: "closed".to_string(),
            pos: top,
        },
        headers: None,
        shadow: false,
    };
    let Some(o) = node.and_then(|n| {
        object(
            n,
            "quota",
            &[
                "default_plan",
                "unknown_plan",
                "missing_key",
                "failure",
                "headers",
                "shadow",
            ],
            f,
        )
    }) else {
        return q;
    };
    q.default_plan = o.string("default_plan", f);
    if let Some(u) = o.string("unknown_plan", f) {
        q.unknown_plan = u;
    }
    q.missing_key = o.choice(
        "missing_key",
        &["client_address", "shared", "allow", "deny"],
        "client_address",
        f,
    );
    if let Some(n) = o.get("failure") {
        let v = o.choice("failure", &["closed", "open"], "closed", f);
        q.failure = At { v, pos: n.pos };
    }
    q.headers = o.raw_object("headers", f);
    q.shadow = o.boolean("shadow", f).unwrap_or(false);
    q
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
        algorithms: o.strings("algorithms", f),
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

fn api(node: &Node, path: &str, f: &mut Findings) -> Option<Api> {
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
