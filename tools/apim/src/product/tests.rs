//! The product file's checks, table-driven from files: `tests/product/base.yaml` is valid, and
//! each `tests/product/errors/<name>.yaml` is it with one mistake, its first line naming the one
//! error `apim check` must report (`# expect: LINE:COL: error: FIELD: MESSAGE`).

use super::read::Severity;
use super::*;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/product")
}

fn errors_of(text: &str) -> Vec<String> {
    let checked = load(text).unwrap();
    checked
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.render("F").trim_start_matches("F:").to_string())
        .collect()
}

#[test]
fn the_base_fixture_and_the_demo_are_valid() {
    let base = std::fs::read_to_string(fixtures().join("base.yaml")).unwrap();
    let checked = load(&base).unwrap();
    assert_eq!(checked.findings, vec![], "base.yaml");
    let demo = std::fs::read_to_string(fixtures().join("../../../../demo/apim.yaml")).unwrap();
    assert_eq!(errors_of(&demo), Vec::<String>::new(), "demo/apim.yaml");
}

#[test]
fn every_error_fixture_reports_exactly_its_error() {
    let mut names: Vec<PathBuf> = std::fs::read_dir(fixtures().join("errors"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(names.len() >= 15, "{names:?}");
    let mut wrong = Vec::new();
    for path in names {
        let text = std::fs::read_to_string(&path).unwrap();
        let want = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: no `# expect:` line", path.display()));
        let got = errors_of(&text);
        if got != [want] {
            wrong.push(format!(
                "{}:\n  want {want}\n  got  {got:?}",
                path.display()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn risky_choices_are_warnings() {
    let base = std::fs::read_to_string(fixtures().join("base.yaml")).unwrap();
    let cases = [
        (
            "plan without limits",
            base.replace("plans:\n", "plans:\n  bronze: {}\n"),
            "plans.bronze: a plan without limits",
        ),
        (
            "fail-open quota",
            format!("{base}quota: {{failure: open}}\n"),
            "quota.failure: fail-open",
        ),
        (
            "anonymous with writes",
            base.replace(
                "        scopes: [pets:read]\n",
                "        auth: {anonymous: guest}\n",
            )
            .replace("consumers:\n", "consumers:\n  - {id: guest, plan: gold}\n"),
            "route \"pets\": anonymous callers may send writes",
        ),
        (
            "a route no rule covers",
            base.replace("        scopes: [pets:read]\n", ""),
            "route \"pets\": no rule covers this route",
        ),
        (
            "expired key",
            base.replace("22bb}]", "22bb, expires_at: \"2020-01-01T00:00:00Z\"}]"),
            "consumers.keys.expires_at: consumer \"alice\": this key has expired",
        ),
        (
            "case-dependent overlap",
            base.replace(
                "      - name: pets\n        match: {prefix: /pets}\n",
                "      - name: lower\n        match: {prefix: /pets}\n        scopes: [pets:read]\n      - name: pets\n        match: {prefix: /pets/all, ignore_case: true}\n",
            ),
            "route \"pets\": route \"lower\" before it takes the paths written in its case",
        ),
    ];
    for (name, text, want) in cases {
        let checked = load(&text).unwrap();
        let warnings: Vec<String> = checked
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect();
        assert_eq!(checked.errors(), 0, "{name}: {:?}", checked.findings);
        assert!(
            warnings.iter().any(|w| w.starts_with(want)),
            "{name}: {warnings:?}"
        );
    }
}

#[test]
fn rendering_is_deterministic_and_every_config_passes_its_validator() {
    let demo = std::fs::read_to_string(fixtures().join("../../../../demo/apim.yaml")).unwrap();
    let one = render_text(&demo, "demo/apim.yaml", RenderTarget::Envoy, &fixtures()).unwrap();
    let two = render_text(&demo, "demo/apim.yaml", RenderTarget::Envoy, &fixtures()).unwrap();
    assert_eq!(one, two);
    let checked = load(&demo).unwrap();
    let p = checked.product.unwrap();
    for target in [
        crate::validate_target::Target::Envoy,
        crate::validate_target::Target::Istio,
    ] {
        let configs = filters::configs(&p, target);
        assert_eq!(configs.len(), 5, "the demo uses every filter");
        for (module, config) in configs {
            let text = config.pretty("");
            crate::validate::check(&module.replace('_', "-"), text.as_bytes())
                .unwrap_or_else(|e| panic!("{module}: {e}"));
        }
    }
}

#[test]
fn the_shipped_gateway_is_the_demo_rendered() {
    let root = fixtures().join("../../../..");
    let demo = std::fs::read_to_string(root.join("demo/apim.yaml")).unwrap();
    let shipped = std::fs::read_to_string(root.join("envoy/gateway.yaml")).unwrap();
    assert!(
        render_text(&demo, "demo/apim.yaml", RenderTarget::Envoy, &fixtures()).unwrap() == shipped,
        "envoy/gateway.yaml differs from `apim render demo/apim.yaml --target envoy` (run make manifests-sync)"
    );
}

#[test]
fn forms_render_their_modules() {
    let base = std::fs::read_to_string(fixtures().join("base.yaml")).unwrap();
    for (form, has, lacks) in [
        ("modules", "api_key_auth.wasm", "apim_suite"),
        ("suite", "apim_suite.wasm", "api_key_auth.wasm"),
        ("native", "DynamicModuleFilter", "wasm.v3.Wasm"),
        ("native-suite", "apim_suite", "wasm.v3.Wasm"),
    ] {
        let text = format!("{base}gateway: {{form: {form}}}\n");
        let out = render_text(&text, "p.yaml", RenderTarget::Envoy, &fixtures()).unwrap();
        assert!(out.contains(has) && !out.contains(lacks), "{form}:\n{out}");
        // base uses neither graphql nor transforms nor tokens... but scopes: scope-authz runs.
        assert!(
            !out.contains("graphql_guard") && out.contains("scope_authz"),
            "{form}"
        );
    }
}

/// The published schema agrees with `apim check` on shapes: the demo and the base fixture are
/// valid, and each fixture whose mistake is one of shape is refused by the schema too.
#[test]
fn the_published_schema_matches_the_parser() {
    let root = fixtures().join("../../../..");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("schemas/apim.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let as_json = |path: PathBuf| {
        let text = std::fs::read_to_string(&path).unwrap();
        crate::yaml_pos::load(&text).unwrap()[0].to_json()
    };
    let base = fixtures().join("base.yaml");
    let with_log = std::env::temp_dir().join(format!("apim-schema-{}.yaml", std::process::id()));
    let text = std::fs::read_to_string(&base).unwrap();
    std::fs::write(
        &with_log,
        format!("{text}gateway: {{access_log: {{path: /tmp/a.log}}, form: suite}}\n"),
    )
    .unwrap();
    for valid in [root.join("demo/apim.yaml"), base, with_log.clone()] {
        let doc = as_json(valid.clone());
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", valid.display());
    }
    for shape in [
        "unknown-field",
        "bad-auth",
        "wrong-api-version",
        "match-and-grpc",
        "bad-limit",
    ] {
        let doc = as_json(fixtures().join(format!("errors/{shape}.yaml")));
        assert!(!validator.is_valid(&doc), "{shape}: the schema accepts it");
    }
}

/// Filters nothing uses are left out: a token-only product without limits runs scope-authz
/// alone, in every target, and `apim check` says nothing is rate limited.
#[test]
fn unused_filters_are_left_out() {
    let text = r#"apiVersion: apim/v1
issuers:
  - {name: corp, issuer: https://login.example.com, algorithms: [RS256], scopes: [read], jwks: {remote: {upstream: login, path: /keys}}}
upstreams:
  app: {address: 127.0.0.1, port: 8080}
  login: {address: login.example.com, port: 443, tls: {sni: login.example.com}}
apis:
  - name: app
    upstream: app
    routes:
      - {name: all, match: {prefix: /}, auth: token, scopes: [read]}
"#;
    let checked = load(text).unwrap();
    assert_eq!(checked.errors(), 0, "{:?}", checked.findings);
    assert!(
        checked
            .findings
            .iter()
            .any(|f| f.message.starts_with("no plan has limits")),
        "{:?}",
        checked.findings
    );
    let p = checked.product.unwrap();
    let modules: Vec<&str> = filters::configs(&p, crate::validate_target::Target::Envoy)
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(modules, ["scope_authz"]);
    for (form, target) in [
        ("modules", RenderTarget::Envoy),
        ("suite", RenderTarget::Envoy),
        ("suite", RenderTarget::GatewayApi),
        ("modules", RenderTarget::Istio),
    ] {
        let text = format!("{text}gateway: {{form: {form}}}\n");
        let out = render_text(&text, "p.yaml", target, &fixtures()).unwrap();
        assert!(
            out.contains("scope_authz")
                && !out.contains("api_key_auth")
                && !out.contains("name: quota"),
            "{form} {target:?}:\n{out}"
        );
    }
}

/// The README's worked example is a valid product file, with no warning.
#[test]
fn the_readme_example_checks_clean() {
    let readme = std::fs::read_to_string(fixtures().join("../../../../README.md")).unwrap();
    let at = readme
        .find("A worked example, a shop with two consumers")
        .unwrap();
    let start = at + readme[at..].find("```yaml\n").unwrap() + "```yaml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let checked = load(&readme[start..end]).unwrap();
    assert_eq!(checked.findings, vec![], "{}", &readme[start..end]);
    assert!(checked.product.is_some());
}
