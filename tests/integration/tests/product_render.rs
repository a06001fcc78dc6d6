//! The product file round trip: `apim render` writes a bootstrap from an `apim.yaml`, Envoy
//! loads it (`--mode validate` in every form), and the rendered gateway makes the decisions
//! the product file declares, checked with requests (including hostile ones: an odd method,
//! a path in capitals) in the Wasm modules, suite and native forms. The demo's own product
//! file is held to `envoy/gateway.yaml` by the apim crate's tests and `apim manifests check`;
//! the demo tour runs against that file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

use apim_integration::demo_keys::{ALICE, BOB};
use apim_integration::echo::{assert_problem, echoed_header, upstream_echo};
use apim_integration::product::{render as render_for, template};
use apim_integration::{apim_bin, repo_root, validate_config, Envoy, LogOnFailure, Request};

fn render(product: &str) -> String {
    render_for(product, "envoy")
}

/// The demo issuer's block of demo/apim.yaml (its inline JWKS), reused as this product's issuer.
fn demo_issuer() -> String {
    let demo = std::fs::read_to_string(repo_root().join("demo/apim.yaml")).unwrap();
    let start = demo.find("\nissuers:\n").unwrap();
    let end = demo.find("\nupstreams:\n").unwrap();
    demo[start + 1..end].to_string()
}

/// A shop API other than the demo: its own plans, consumers (alice and bob, with the demo keys'
/// digests), routes and upstream.
fn shop(form: &str) -> String {
    format!(
        r#"apiVersion: apim/v1
gateway:
  form: {form}
  realm: shop
  api_keys: {{forward: {{consumer_id_header: x-consumer-id}}}}
plans:
  gold: {{limits: [{{requests: 1000, per: 31622400}}]}}
  trial: {{limits: [{{requests: 2, per: 31622400, name: trial-year}}]}}
consumers:
  - id: alice
    plan: gold
    groups: [ops]
    scopes: [orders:read, orders:write]
    keys: [{{sha256: dc275ab1c4bc17899cdfff16563da508be4c9275589ce936577f52f0512f22bb}}]
  - id: bob
    plan: trial
    scopes: [orders:read]
    keys: [{{sha256: 3ddaba5e842f5e66e7dfbc3a318416be5097ae49ffe348fbf2c6f9e815a2df26}}]
  - {{id: visitor, plan: trial}}
{issuer}
upstreams:
  shop: {{address: 127.0.0.1, port: 10080}}
apis:
  - name: shop
    upstream: shop
    routes:
      - name: health
        match: {{exact: /health}}
        respond: {{status: 200, body: "fine\n"}}
        auth: none
        quota: skip
      - name: catalog
        match: {{prefix: /catalog}}
        auth: {{anonymous: visitor}}
        scopes: {{read: [], write: [orders:write]}}
      - name: ops
        match: {{prefix: /ops, ignore_case: true}}
        allow: {{groups: [ops]}}
      - name: orders
        match: {{prefix: /orders}}
        scopes: {{read: [orders:read], write: [orders:write]}}
      - name: rest
        match: {{prefix: /}}
        scopes: []
"#,
        issuer = demo_issuer().replace("pets:read, pets:write", "orders:read, orders:write")
    )
}

#[test]
fn every_form_of_the_rendered_demo_and_shop_passes_envoy_validate() {
    let demo = std::fs::read_to_string(repo_root().join("demo/apim.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for form in ["modules", "suite", "native", "native-suite"] {
        for (name, product) in [
            (
                "demo",
                demo.replace("form: modules", &format!("form: {form}")),
            ),
            ("shop", shop(form)),
        ] {
            let bootstrap = render(&product);
            let path = dir.path().join(format!("{name}-{form}.yaml"));
            std::fs::write(&path, &bootstrap).unwrap();
            validate_config(&path).unwrap_or_else(|e| panic!("{name} {form}: {e}"));
        }
    }
}

#[test]
fn the_rendered_shop_makes_the_declared_decisions_in_each_form() {
    for form in ["modules", "suite", "native"] {
        let envoy: &'static Envoy = Box::leak(Box::new(
            Envoy::builder()
                .concurrency(1)
                .start(&template(&render(&shop(form))))
                .unwrap(),
        ));
        envoy.stop_when_process_exits();
        let _log = LogOnFailure(envoy);
        let port = envoy.port();
        let at = |what: &str| format!("{form}: {what}");

        let r = Request::get("/health").send(port).unwrap();
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "fine\n"),
            "{}",
            at("health")
        );

        // A key is needed on /orders; the consumer reaches the upstream by id, the key does not.
        assert_problem(
            &Request::get("/orders").send(port).unwrap(),
            401,
            "missing_api_key",
            &at("no key"),
        );
        let r = Request::get("/orders/1")
            .header("x-api-key", ALICE)
            .send(port)
            .unwrap();
        let echo = upstream_echo(&r, &at("alice reads"));
        assert_eq!(
            echoed_header(&echo, "x-consumer-id"),
            ["alice"],
            "{}",
            at("consumer id")
        );
        assert!(
            echoed_header(&echo, "x-api-key").is_empty(),
            "{}",
            at("key stripped")
        );

        // Reads need orders:read, every other method orders:write: a client picking an odd
        // method gets the write requirement.
        for method in ["POST", "DELETE", "PURGE"] {
            let r = Request::new(method, "/orders/1")
                .header("x-api-key", BOB)
                .send(port)
                .unwrap();
            assert_problem(&r, 403, "insufficient_scope", &at(&format!("bob {method}")));
        }
        // The ops route ignores case, so its allow list does too.
        for path in ["/ops/x", "/OPS/x", "/Ops/x"] {
            let r = Request::get(path)
                .header("x-api-key", BOB)
                .send(port)
                .unwrap();
            assert_eq!(
                r.status,
                403,
                "{}",
                at(&format!("bob {path}: {}", r.text()))
            );
        }
        upstream_echo(
            &Request::get("/OPS/x")
                .header("x-api-key", ALICE)
                .send(port)
                .unwrap(),
            &at("alice ops"),
        );

        // The catalog reads without a key, as visitor; writes still need orders:write.
        let echo = upstream_echo(
            &Request::get("/catalog").send(port).unwrap(),
            &at("visitor reads"),
        );
        assert_eq!(
            echoed_header(&echo, "x-consumer-id"),
            ["visitor"],
            "{}",
            at("visitor")
        );
        assert_eq!(
            Request::new("POST", "/catalog").send(port).unwrap().status,
            403,
            "{}",
            at("visitor writes")
        );

        // bob's trial plan: 2 requests (the refusals above were never counted).
        upstream_echo(
            &Request::get("/orders/1")
                .header("x-api-key", BOB)
                .send(port)
                .unwrap(),
            &at("bob 1"),
        );
        upstream_echo(
            &Request::get("/orders/2")
                .header("x-api-key", BOB)
                .send(port)
                .unwrap(),
            &at("bob 2"),
        );
        let r = Request::get("/orders/3")
            .header("x-api-key", BOB)
            .send(port)
            .unwrap();
        assert_eq!(r.status, 429, "{}", at(&format!("bob 3: {}", r.text())));
    }
}

/// The Kubernetes renders: each passes `apim validate` (every filter config by its filter's
/// parser, no rule on a generated route name), and the shipped demo renders are current.
/// tests/crd_schemas.rs checks them against the CRDs' schemas with kubeconform.
#[test]
fn the_kubernetes_renders_pass_apim_validate_for_their_target() {
    let dir = tempfile::tempdir().unwrap();
    for form in ["modules", "suite"] {
        for target in ["istio", "gateway-api"] {
            let file = dir.path().join("apim.yaml");
            std::fs::write(&file, shop(form)).unwrap();
            let out = Command::new(apim_bin())
                .arg("render")
                .arg(&file)
                .args(["--target", target, "-o"])
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let rendered = dir.path().join(format!("{target}.yaml"));
            let text = std::fs::read_to_string(&rendered).unwrap();
            let want_modules = if form == "suite" { 1 } else { 3 };
            let modules = text.matches("pluginName: ").count() + text.matches("rootID: ").count();
            assert_eq!(modules, want_modules, "{form} {target}:\n{text}");
            let out = Command::new(apim_bin())
                .args(["validate", "--target", target])
                .arg(&rendered)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{form} {target}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    for file in ["demo/rendered/istio.yaml", "demo/rendered/gateway-api.yaml"] {
        let out = Command::new(apim_bin())
            .arg("validate")
            .arg(repo_root().join(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn apim(args: &[&str], file: &std::path::Path) -> (bool, String, String) {
    let (verb, rest) = args.split_first().unwrap();
    let out = Command::new(apim_bin())
        .args(["keys", verb])
        .arg(file)
        .args(rest)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `apim keys` edits the product file; once rendered, Envoy takes the new key and refuses the
/// revoked one.
#[test]
fn keys_changed_in_the_product_file_take_effect_once_rendered() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("apim.yaml");
    // alice as a block, so `apim keys` can edit her entry.
    std::fs::write(&file, shop("modules")).unwrap();
    let (ok, key, err) = apim(&["add", "alice"], &file);
    assert!(ok, "{err}");
    let key = key.trim().to_string();
    assert_eq!(key.len(), 43, "32 bytes, base64url: {key}");
    assert!(err.contains("shown once"), "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(&key),
        "the product file holds the digest only"
    );
    // The demo key of alice goes: its sha256 starts with dc275ab1.
    let (ok, out, err) = apim(&["revoke", "alice", "--key", "dc275ab1"], &file);
    assert!(ok && out.is_empty(), "{err}");

    let envoy: &'static Envoy = Box::leak(Box::new(
        Envoy::builder()
            .concurrency(1)
            .start(&template(&render(&std::fs::read_to_string(&file).unwrap())))
            .unwrap(),
    ));
    envoy.stop_when_process_exits();
    let _log = LogOnFailure(envoy);
    let r = Request::get("/orders/1")
        .header("x-api-key", &key)
        .send(envoy.port())
        .unwrap();
    let echo = upstream_echo(&r, "the new key");
    assert_eq!(echoed_header(&echo, "x-consumer-id"), ["alice"]);
    let r = Request::get("/orders/1")
        .header("x-api-key", ALICE)
        .send(envoy.port())
        .unwrap();
    assert_problem(&r, 401, "invalid_api_key", "the revoked key");
}
