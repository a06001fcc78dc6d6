//! API insights end to end: a gateway rendered from a product file writes its JSON access log
//! with what the filters publish, `apim insights` reports it, and the HTML report renders in a
//! real (headless) browser with the numbers of a fixture log, and no markup from the log.
//!
//! The browser is Debian's chromium-headless-shell (`make setup-browser`; `CHROMIUM_BIN`
//! overrides where it is).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use apim_integration::demo_keys::{ALICE, BOB};
use apim_integration::product::{render, template};
use apim_integration::{apim_bin, repo_root, Envoy, LogOnFailure, Request};
use serde_json::Value;

fn browser() -> PathBuf {
    let bin = std::env::var_os("CHROMIUM_BIN")
        .map_or_else(|| PathBuf::from("chromium-headless-shell"), PathBuf::from);
    let found = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{} not found: `make setup-browser` installs it",
        bin.display()
    );
    bin
}

/// The page's DOM after its script ran.
fn rendered_dom(page: &Path) -> String {
    let out = Command::new(browser())
        .args(["--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn insights(log: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(apim_bin())
        .arg("insights")
        .arg(log)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn the_html_report_renders_the_fixture_in_a_headless_browser() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let log = repo_root().join("tools/apim/tests/insights/access.log");
    let out = insights(&log, &["--html", page.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = rendered_dom(&page);
    assert!(
        dom.contains("data-rendered=\"yes\""),
        "the script ran to its end:\n{dom}"
    );
    assert!(dom.contains("11 requests from 2026-12-01T10:00:00Z to 2026-12-01T10:04:00Z: 5 allowed, 5 denied, 1 5xx"), "{dom}");
    // One line per consumer and per plan, each with its total, drawn by the script.
    for (name, total) in [
        ("alice", 4),
        ("bob", 3),
        ("ci-bot", 2),
        ("gold", 6),
        ("silver", 3),
    ] {
        let line = format!("data-name=\"{name}\" data-total=\"{total}\"");
        assert!(
            dom.contains("<polyline") && dom.contains(&line),
            "{line}:\n{dom}"
        );
    }
    // alice's row: requests, allowed, denied, 5xx, p50, p99, GraphQL cost, reasons.
    let alice = "<tr data-name=\"alice\"><td>alice</td><td>4</td><td>3</td><td>1</td><td>0</td><td>4</td><td>12</td><td>40</td><td class=\"reasons\">graphql-guard:MAX_DEPTH_EXCEEDED 1</td><td class=\"reasons\">key 4</td></tr>";
    assert!(dom.contains(alice), "{dom}");
    assert!(
        dom.contains("<td>ci-bot</td><td>gold-burst</td><td>100</td><td>10</td><td>90</td>"),
        "{dom}"
    );
}

#[test]
fn a_hostile_log_cannot_put_markup_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let id = r#"</script><img src=x onerror=alert(1)><b>"#;
    let consumer = serde_json::to_string(
        &serde_json::json!({"id": id, "plan": "gold", "source": "api-key-auth"}),
    )
    .unwrap();
    let line = serde_json::json!({"consumer": consumer, "decision": null, "duration_ms": 1, "route": "<i>r</i>", "status": 200, "time": "2026-12-01T10:00:00.000Z"});
    std::fs::write(&log, format!("{line}\n")).unwrap();
    let page = dir.path().join("report.html");
    assert!(insights(&log, &["--html", page.to_str().unwrap()])
        .status
        .success());
    let dom = rendered_dom(&page);
    assert!(dom.contains("data-rendered=\"yes\""), "{dom}");
    assert!(
        !dom.contains("<img") && !dom.contains("<b>") && !dom.contains("<i>"),
        "{dom}"
    );
    assert!(
        dom.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "shown as text:\n{dom}"
    );
}

/// Waits (bounded) until the log holds `n` lines: Envoy writes a file log at most every 10 s.
fn lines_of(log: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// In the Wasm modules form and the native one: both publish the same filter state.
#[test]
fn a_rendered_gateway_logs_what_the_filters_decided_and_insights_reports_it() {
    for form in ["modules", "native"] {
        logs_and_reports(form);
    }
}

fn logs_and_reports(form: &str) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let demo = std::fs::read_to_string(repo_root().join("demo/apim.yaml")).unwrap();
    let product = demo.replace(
        "  form: modules\n",
        &format!(
            "  form: modules\n  access_log: {{path: {}}}\n",
            log.display()
        ),
    );
    let template = template(&render(&product, "envoy"));
    let envoy: &'static Envoy = Box::leak(Box::new(
        Envoy::builder().concurrency(1).start(&template).unwrap(),
    ));
    envoy.stop_when_process_exits();
    let _log = LogOnFailure(envoy);
    let port = envoy.port();
    let send = |r: Request| r.send(port).unwrap().status;
    assert_eq!(
        send(Request::get("/pets/1").header("x-api-key", ALICE)),
        200
    );
    assert_eq!(
        send(Request::new("POST", "/pets").header("x-api-key", BOB)),
        403
    );
    assert_eq!(send(Request::get("/pets")), 401);
    let gql = Request::new("POST", "/graphql")
        .header("x-api-key", ALICE)
        .header("content-type", "application/json")
        .body(br#"{"query":"query Pets { pets { id } }"}"#.to_vec());
    assert_eq!(send(gql), 200);
    for want in [200, 200, 200, 429] {
        assert_eq!(
            send(Request::get("/quota-demo").header("x-api-key", BOB)),
            want
        );
    }
    let lines = lines_of(&log, 8);
    assert_eq!(lines.len(), 8, "{form}: {lines:#?}");
    let refused: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["decision"].as_str())
        .collect();
    assert_eq!(
        refused,
        [
            "scope-authz:insufficient_scope",
            "api-key-auth:missing_api_key",
            "quota:quota_exceeded"
        ],
        "{lines:#?}"
    );
    let gql_line = lines.iter().find(|l| l["route"] == "graphql").unwrap();
    assert_eq!(gql_line["graphql_operation"], "Pets", "{gql_line}");
    assert!(
        gql_line["graphql_cost"]
            .as_str()
            .is_some_and(|c| c.parse::<u64>().is_ok()),
        "{gql_line}"
    );
    assert_eq!(
        lines[0]["quota"], "\"gold-burst\";q=100;r=99",
        "{}",
        lines[0]
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.to_string().contains(ALICE) && !l.to_string().contains(BOB)),
        "no key is logged"
    );

    let out = insights(&log, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["consumers"]["alice"]["requests"], 2, "{report}");
    assert_eq!(
        report["consumers"]["bob"]["denials"]["quota:quota_exceeded"], 1,
        "{report}"
    );
    assert_eq!(report["routes"]["quota-demo"]["requests"], 4, "{report}");
    let demo_limit = report["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["limit"] == "demo-burst")
        .unwrap();
    assert_eq!(demo_limit["most_used"], 3, "{report}");
}
