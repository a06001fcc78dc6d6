//! Config updates at run time: the filter's config arrives through ECDS (a watched file, the
//! way a control plane pushes it), so a refused update can be seen being refused while the
//! previous config keeps serving, and an accepted one takes effect without a restart.

// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use apim_integration::bootstrap::{
    bootstrap, discovered_filter, listener, node, upstream_cluster, WasmFilter,
};
use apim_integration::chain::{for_each_form, Chain, Filter, Form};
use apim_integration::{Envoy, Request};
use std::path::Path;
use std::time::{Duration, Instant};

const ALICE_KEY: &str = "demo-key-alice-0123456789abcdef";
// sha256("demo-key-alice-0123456789abcdef")
const ALICE_DIGEST: &str = "dc275ab1c4bc17899cdfff16563da508be4c9275589ce936577f52f0512f22bb";

/// The Wasm filter that runs api-key-auth with `filter_config` in `form` (what the ECDS
/// resource delivers).
fn wasm_filter(form: Form, filter_config: &str) -> WasmFilter {
    Chain::new()
        .filter(Filter::ApiKeyAuth, filter_config)
        .wasm_filter(form)
}

/// The listener's filter reads its config from the ECDS file at `ecds_path`.
fn config(form: Form, ecds_path: &Path) -> String {
    let name = wasm_filter(form, "{}").name().to_owned();
    let main = listener("main", "echo")
        .stat_prefix("ingress")
        .filter(discovered_filter(&name, ecds_path));
    format!(
        "{}{}",
        node("reload-test"),
        bootstrap(&[main], &[upstream_cluster("echo")])
    )
}

/// Writes the resource file the way a control plane must: a complete file moved into place, so
/// Envoy's file watch never sees half a file.
fn publish(form: Form, path: &Path, filter_config: &str) {
    let rendered =
        apim_integration::render(&wasm_filter(form, filter_config).ecds_resource()).unwrap();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, rendered).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Polls a counter until it reaches `want` (the deadline only bounds a hang).
fn wait_counter(envoy: &Envoy, name: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if envoy.counter(name).unwrap_or(0) >= want {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never reached {want}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn consumer_seen(envoy: &Envoy) -> (u16, Option<String>) {
    let r = Request::get("/pets")
        .header("x-api-key", ALICE_KEY)
        .send(envoy.port())
        .unwrap();
    if r.status != 200 {
        return (r.status, None);
    }
    let json = r.json();
    let id = json["headers"]
        .as_array()
        .and_then(|hs| hs.iter().find(|h| h[0] == "x-consumer-id"))
        .and_then(|h| h[1].as_str())
        .map(str::to_string);
    (r.status, id)
}

fn config_for(consumer: &str, digest: &str) -> String {
    format!(
        r#"{{"consumers":[{{"id":"{consumer}","keys":[{{"sha256":"{digest}"}}]}}],"forward":{{"consumer_id_header":"x-consumer-id"}}}}"#
    )
}

#[test]
fn bad_update_is_rejected_and_the_old_config_keeps_serving_then_a_good_one_applies() {
    for_each_form(|form| {
        // The discovery stats are named after the filter.
        let stat = format!(
            "extension_config_discovery.http_filter.{}",
            wasm_filter(form, "{}").name()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api_key_auth.ecds.yaml");
        publish(form, &path, &config_for("alice", ALICE_DIGEST));
        let envoy = Envoy::start(&config(form, &path)).unwrap();
        assert_eq!(consumer_seen(&envoy), (200, Some("alice".into())));

        // A digest that is not one: the filter refuses it, so Envoy refuses the update.
        publish(form, &path, &config_for("alice", "not-a-digest"));
        wait_counter(&envoy, &format!("{stat}.update_rejected"), 1);
        envoy
            .wait_for_log(&format!(
                "{}consumers[id=alice].keys[0].sha256",
                form.refusal_prefix(Filter::ApiKeyAuth)
            ))
            .unwrap();
        assert_eq!(
            consumer_seen(&envoy),
            (200, Some("alice".into())),
            "the old config still serves"
        );

        // A valid update takes effect in place.
        publish(form, &path, &config_for("alice-v2", ALICE_DIGEST));
        wait_counter(&envoy, &format!("{stat}.update_success"), 2);
        assert_eq!(consumer_seen(&envoy), (200, Some("alice-v2".into())));
        assert_eq!(envoy.counter(&format!("{stat}.update_rejected")), Some(1));
    });
}
