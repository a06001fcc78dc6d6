//! A running Envoy: started from a config template by [`EnvoyBuilder`], queried through its
//! admin API, stopped on drop (printing its log if the test is failing).

mod builder;
mod process;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::client::Request;

pub use builder::EnvoyBuilder;
pub use validate::validate_config;

/// An Envoy process with its own temp dir (config, admin address file, log).
pub struct Envoy {
    child: Child,
    dir: TempDir,
    admin_port: u16,
    /// (listener name, bound port) as the admin reports them, in config order.
    listeners: Vec<(String, u16)>,
}

impl Envoy {
    /// Default settings: `--concurrency 2`, `-l info`.
    pub fn builder() -> EnvoyBuilder {
        EnvoyBuilder::default()
    }

    /// Starts Envoy from a template (see [`crate::render`]) and waits until it is LIVE.
    pub fn start(config_yaml_template: &str) -> Result<Envoy, String> {
        EnvoyBuilder::default().start(config_yaml_template)
    }

    /// Starts Envoy expecting it to refuse the config and exit non-zero; returns its log and
    /// stderr. An error if it becomes ready (the config was accepted) or exits 0.
    pub fn start_expect_failure(config_yaml_template: &str) -> Result<String, String> {
        EnvoyBuilder::default().start_expect_failure(config_yaml_template)
    }

    /// The port of the first listener.
    pub fn port(&self) -> u16 {
        self.listeners.first().map_or(0, |(_, port)| *port)
    }

    /// The port of a listener by name, for configs with several.
    pub fn listener_port(&self, name: &str) -> Option<u16> {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, port)| *port)
    }

    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// For an Envoy kept in a `static` and shared by a test binary's tests: a static is never
    /// dropped, so a small watchdog waits for this process to end, then stops that Envoy and
    /// removes its temp dir. No Envoy outlives `cargo test`.
    // The watchdog must outlive this process, so it is never waited for; when this process
    // exits it is re-parented (and reaped) by init.
    #[allow(clippy::zombie_processes)]
    pub fn stop_when_process_exits(&self) {
        let dir = self
            .config_path()
            .parent()
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default();
        let script = format!(
            "while kill -0 {tests} 2>/dev/null; do sleep 0.2; done; kill {envoy} 2>/dev/null; \
             sleep 1; rm -rf '{dir}'",
            tests = std::process::id(),
            envoy = self.pid(),
        );
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting the watchdog for a shared Envoy");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The rendered config Envoy was started with.
    pub fn config_path(&self) -> PathBuf {
        process::config_path(self.dir.path())
    }

    /// Envoy's log so far (plus anything it wrote to stdout/stderr). The file is flushed every
    /// few tens of milliseconds: use [`Envoy::wait_for_log`] to wait for a line.
    pub fn log(&self) -> String {
        process::read_log(self.dir.path())
    }

    /// Waits (bounded, 10 s) until the log contains `needle`; the error carries the log.
    pub fn wait_for_log(&self, needle: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{needle:?} not in Envoy's log:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// GET on the admin API; the body if the status is 200.
    pub fn admin_get(&self, path_and_query: &str) -> Result<String, String> {
        admin_get(self.admin_port, path_and_query)
    }

    /// The admin `/stats/prometheus` text; panics if the admin does not answer.
    pub fn stats_prometheus(&self) -> String {
        match self.admin_get("/stats/prometheus") {
            Ok(text) => text,
            Err(e) => panic!("GET /stats/prometheus: {e}"),
        }
    }

    /// Every counter and gauge from the admin `/stats?format=json`, by Envoy stat name, read in
    /// one request so related values are consistent with each other.
    pub fn stats(&self) -> Result<BTreeMap<String, u64>, String> {
        let text = self.admin_get("/stats?format=json")?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("/stats is not JSON ({e})"))?;
        let stats = json.get("stats").and_then(|s| s.as_array());
        Ok(stats
            .into_iter()
            .flatten()
            .filter_map(|s| {
                Some((
                    s.get("name")?.as_str()?.to_owned(),
                    s.get("value")?.as_u64()?,
                ))
            })
            .collect())
    }

    /// A counter or gauge by its Envoy stat name (`http.ingress.downstream_rq_completed`), or
    /// None if there is no such stat (or the admin does not answer).
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.stats().ok()?.get(name).copied()
    }

    /// A counter by its stat name, 0 if there is no such stat: Envoy creates a filter's own
    /// counters when first counted, so "not there yet" is 0.
    pub fn count(&self, name: &str) -> u64 {
        self.counter(name).unwrap_or(0)
    }

    /// The requests the cluster `cluster` has sent upstream (`upstream_rq_total`).
    pub fn upstream_requests(&self, cluster: &str) -> u64 {
        self.count(&format!("cluster.{cluster}.upstream_rq_total"))
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        // Stop first so the log file is flushed, then show it if the test is failing.
        process::stop(&mut self.child);
        if std::thread::panicking() {
            eprintln!(
                "===== Envoy log =====\n{}\n===== end of Envoy log =====",
                self.log()
            );
        }
    }
}

pub(crate) fn admin_get(admin_port: u16, path_and_query: &str) -> Result<String, String> {
    let response = Request::get(path_and_query).send(admin_port)?;
    if response.status == 200 {
        Ok(response.text())
    } else {
        Err(format!(
            "admin {path_and_query}: status {}: {}",
            response.status,
            response.text()
        ))
    }
}

/// Prints a shared Envoy's log if the test holding it fails. A shared Envoy lives in a static
/// whose `Drop` never runs, so it cannot print its own log the way a test's own Envoy does.
pub struct LogOnFailure(pub &'static Envoy);

impl Drop for LogOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "===== shared Envoy log =====\n{}\n===== end of shared Envoy log =====",
                self.0.log()
            );
        }
    }
}
