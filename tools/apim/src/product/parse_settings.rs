//! The product file's settings: `gateway` (listener, admin, hardening, keys, tokens, access
//! log), `deploy` (where the Kubernetes renders go) and `quota`.

use super::model::*;
use super::read::{self, join, members, object, At, Findings};
use crate::yaml_pos::{Kind, Node, Pos};

/// Where the JSON access log goes unless the product file says otherwise.
pub const DEFAULT_ACCESS_LOG: &str = "/dev/stdout";

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

pub fn gateway(node: Option<&Node>, f: &mut Findings) -> Gateway {
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

pub fn deploy(node: Option<&Node>, f: &mut Findings) -> Deploy {
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

pub fn quota(node: Option<&Node>, top: Pos, f: &mut Findings) -> QuotaSettings {
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
