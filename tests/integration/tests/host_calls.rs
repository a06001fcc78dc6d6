//! Host calls per request of every bench row that runs our stages: the row's own filter configs
//! (read from its Envoy YAML) and its own request, served through kit's `MockHost`, where each
//! `Host` method is one crossing of the VM boundary in Envoy. A host call that returns a value
//! costs about 8k instructions in Envoy 1.40 (docs/performance.md), so this count is the cost
//! model beside the bench's figures.
//!
//! `cargo test -p apim-integration --test host_calls -- --nocapture` prints the table (README,
//! Performance). The second of two identical requests is counted: the first pays once-per-VM
//! work (quota confirms the slot-hash key).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use apim_integration::bench::rows::{load_rows, Row};
use kit::host::{Call, MockHost};
use kit::metrics::Counters;
use kit::stage::{parse_config, Chain, Configured, Flow, RequestHost, StageSpec};
use std::rc::Rc;

/// One of our Wasm filters in a row's chain: its module and its JSON config.
struct Filter {
    module: String,
    config: String,
}

/// Our Wasm filters in `template`'s HTTP filter chain, in order (`{{WASM:<module>}}`).
fn our_filters(template: &str) -> Vec<Filter> {
    let doc: serde_yaml::Value = serde_yaml::from_str(template).unwrap();
    let mut found = Vec::new();
    collect(&doc, &mut found);
    found
}

fn collect(v: &serde_yaml::Value, found: &mut Vec<Filter>) {
    match v {
        serde_yaml::Value::Mapping(m) => {
            let config = m.get("config");
            let module = config
                .and_then(|c| c.get("vm_config"))
                .and_then(|c| c.get("code"))
                .and_then(|c| c.get("local"))
                .and_then(|c| c.get("filename"))
                .and_then(|f| f.as_str())
                .and_then(|f| f.strip_prefix("{{WASM:"))
                .and_then(|f| f.strip_suffix("}}"));
            let json = config
                .and_then(|c| c.get("configuration"))
                .and_then(|c| c.get("value"))
                .and_then(|c| c.as_str());
            if let (Some(module), Some(json)) = (module, json) {
                found.push(Filter {
                    module: module.to_string(),
                    config: json.to_string(),
                });
                return;
            }
            for (_, child) in m {
                collect(child, found);
            }
        }
        serde_yaml::Value::Sequence(s) => s.iter().for_each(|c| collect(c, found)),
        _ => {}
    }
}

/// The stages a module runs: the suite all five, a filter's own module its one.
fn specs(module: &str) -> Option<&'static [StageSpec]> {
    if module == "apim_suite" {
        return Some(&apim_suite::SPECS);
    }
    apim_suite::SPECS
        .iter()
        .position(|s| s.section == module)
        .map(|i| &apim_suite::SPECS[i..=i])
}

/// One module of the chain with its own host, as a VM with its own view of the request.
struct Module {
    host: MockHost,
    stages: Configured,
}

impl Module {
    fn new(specs: &[StageSpec], config: &str, row: &Row) -> Module {
        let mut headers = vec![
            (":method".to_string(), row.method.clone()),
            (":path".to_string(), row.path.clone()),
            (":authority".to_string(), "bench".to_string()),
            (":scheme".to_string(), "http".to_string()),
        ];
        headers.extend(row.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut host = MockHost::new(&pairs);
        host.now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        host.properties
            .insert("source.address".into(), b"127.0.0.1:40000".to_vec());
        host.body = row.body().unwrap().unwrap_or_default();
        let mut stages = parse_config(specs, config.as_bytes()).unwrap();
        for (index, stage) in &mut stages {
            let names = (specs[*index].counter_names)();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            stage.activate(&host, Rc::new(Counters::define(&host, &names)));
        }
        Module { host, stages }
    }

    /// Serves one request as kit's runtime does; the host calls it made and whether it passed.
    fn serve(&self) -> (usize, bool) {
        let before = self.host.host_calls();
        let host = RequestHost::for_stages(&self.host, &self.stages);
        let mut chain = Chain::new(self.stages.iter().map(|(_, s)| s.exchange(&host)).collect());
        let body = self.host.body.len();
        let mut flow = chain.on_request_headers(&host, body == 0);
        if body > 0 && flow != Flow::Done {
            host.next_event();
            flow = chain.on_request_body(&host, body, true);
        }
        if flow != Flow::Done {
            host.flush();
        }
        host.forget_headers();
        if flow == Flow::Continue {
            host.next_event();
            let _ = chain.on_response_headers(&host, true);
        }
        chain.on_log(&host);
        (self.host.host_calls() - before, flow == Flow::Continue)
    }

    /// What this module left for the next one: its header edits and published context.
    fn hand_on(&self, from: usize, next: &mut Module) {
        next.host.headers = self.host.headers.clone();
        next.host.properties = self.host.properties.clone();
        let calls = self.host.calls();
        for call in calls.iter().skip(from) {
            match call {
                Call::SetHeader(n, v) => {
                    next.host.headers.retain(|(k, _)| k != n);
                    next.host.headers.push((n.clone(), v.clone()));
                }
                Call::RemoveHeader(n) => next.host.headers.retain(|(k, _)| k != n),
                Call::ReplaceHeaders(all) => next.host.headers = all.clone(),
                Call::SetProperty(k, v) => {
                    next.host.properties.insert(k.clone(), v.clone());
                }
                _ => {}
            }
        }
    }
}

/// Host calls of the second request through the row's chain, per module.
fn count(row: &Row) -> Option<Vec<(String, usize)>> {
    let filters = our_filters(&row.config_template().unwrap());
    if filters.is_empty() {
        return None;
    }
    let mut modules: Vec<Module> = Vec::new();
    for f in &filters {
        // A filter that is not ours (the empty one) has no stage to count.
        let specs = specs(&f.module)?;
        modules.push(Module::new(specs, &f.config, row));
    }
    let mut counts = Vec::new();
    for _ in 0..2 {
        counts.clear();
        for i in 0..modules.len() {
            let from = modules[i].host.calls().len();
            let (calls, passed) = modules[i].serve();
            assert!(
                passed,
                "{}: {} refused the row's request",
                row.name, filters[i].module
            );
            counts.push((filters[i].module.clone(), calls));
            // The next module sees the request as this one left it.
            if i + 1 < modules.len() {
                let (head, tail) = modules.split_at_mut(i + 1);
                head[i].hand_on(from, &mut tail[0]);
            }
        }
    }
    Some(counts)
}

#[test]
fn host_calls_per_request_of_every_bench_row() {
    let mut table = Vec::new();
    let mut totals = std::collections::BTreeMap::new();
    for row in load_rows().unwrap() {
        // The global tier's answer comes from the Rate Limit Service, not from a mock.
        if row.name.contains("global") {
            continue;
        }
        let Some(counts) = count(&row) else {
            continue;
        };
        let total: usize = counts.iter().map(|(_, n)| n).sum();
        let parts: Vec<String> = counts.iter().map(|(m, n)| format!("{m} {n}")).collect();
        table.push(format!(
            "{:<18} {total:>3}  ({})",
            row.name,
            parts.join(", ")
        ));
        totals.insert(row.name.clone(), total);
    }
    println!(
        "host calls per request, per bench row:\n{}",
        table.join("\n")
    );
    for (suite, modules) in [
        ("chain-suite", "chain-modules"),
        ("pair-suite", "pair-modules"),
    ] {
        assert!(
            totals[suite] < totals[modules],
            "{suite} {} vs {modules} {}",
            totals[suite],
            totals[modules]
        );
    }
    for row in [
        "api-key-auth",
        "scope-authz",
        "quota",
        "transform-headers",
        "graphql-guard",
    ] {
        assert!(totals.contains_key(row), "{row} not counted");
    }
}
