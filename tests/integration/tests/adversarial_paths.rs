//! Issue 10, item 1, the other half: an ambiguous path must not slip past a rule that
//! *restricts*. Behind an HCM that does not normalise (one we do not control), a backend that
//! decodes `%2F`, treats `\\` as `/` or drops `;` parameters (Tomcat, Jetty, Spring) serves
//! `/public/..;/admin/users`, `/.;/admin/users` or `/public/..%2Fadmin/users` as
//! `/admin/users`. The filters read an ambiguous path the widest way as well, so the admin rule
//! (ops only) meets every spelling: alice (partners) is refused and nothing reaches the
//! upstream. On the code before this, each of these reached the upstream as alice.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use apim_integration::bootstrap::{bootstrap, listener, upstream_cluster};
use apim_integration::chain::{for_each_form, Chain, Filter, Form};
use apim_integration::demo_keys::ALICE;
use apim_integration::{send_raw, Envoy, LogOnFailure};

/// Routes `public` and a catch-all, no path normalisation (an HCM we do not control); the admin
/// rule matches on the path, as restricting rules should.
fn config(form: Form) -> String {
    let l = listener("main", "upstream")
        .route("public", "/public")
        .route("everything", "/")
        .chain(
            &Chain::new().filter(Filter::ApiKeyAuth, PLUGIN).vm("paths"),
            form,
        );
    bootstrap(&[l], &[upstream_cluster("upstream")])
}

const PLUGIN: &str = r#"{
  "consumers": [
    {"id": "alice", "plan": "gold", "groups": ["partners"],
     "keys": [{"sha256": "dc275ab1c4bc17899cdfff16563da508be4c9275589ce936577f52f0512f22bb"}]},
    {"id": "guest", "plan": "free"}
  ],
  "rules": [
    {"match": {"path": {"prefix": "/admin"}, "ignore_case": true}, "allow": {"groups": ["ops"]}},
    {"match": {"route_name": "public"}, "anonymous": "guest"}
  ]
}"#;

#[test]
fn every_spelling_of_admin_meets_the_admin_rule() {
    for_each_form(|form| {
        let config = config(form);
        let envoy: &'static Envoy = Box::leak(Box::new(
            Envoy::builder().concurrency(1).start(&config).unwrap(),
        ));
        envoy.stop_when_process_exits();
        let _log = LogOnFailure(envoy);
        let upstream = || {
            envoy
                .counter("cluster.upstream.upstream_rq_total")
                .unwrap_or(0)
        };
        let get = |path: &str| {
            let raw = format!(
                "GET {path} HTTP/1.1\r\nHost: localhost\r\nx-api-key: {ALICE}\r\nConnection: close\r\n\r\n"
            );
            send_raw(envoy.port(), raw.as_bytes()).unwrap()
        };
        // Control: alice does reach the upstream on an ordinary path.
        assert_eq!(get("/pets/1").status, 200);
        assert_eq!(upstream(), 1);
        for path in [
            "/admin/users",
            "/ADMIN/users",
            "/public/..%2Fadmin/users",
            "/public/%2e%2e%2fadmin/users",
            "/public/..%5Cadmin/users",
            "/public/..;/admin/users",
            "/.;/admin/users",
            "/%2Fadmin/users",
            "/x/..%2F..%2Fadmin",
            "/admin;jsessionid=1/users",
        ] {
            let r = get(path);
            assert_eq!(r.status, 403, "GET {path}: {}", r.text());
            assert_eq!(upstream(), 1, "GET {path} reached the upstream");
        }
    });
}
