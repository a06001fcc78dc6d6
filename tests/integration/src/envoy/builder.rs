//! Starting Envoy: settings, readiness, and port discovery.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::process::{self, Launch};
use super::{admin_get, Envoy};
use crate::template::render;

/// Settings for starting Envoy. Defaults: `--concurrency 2`, `-l info`, no CPU pinning, 30 s to
/// become ready.
#[derive(Clone, Debug)]
pub struct EnvoyBuilder {
    concurrency: u32,
    log_level: String,
    cpus: Option<String>,
    ready_timeout: Duration,
    extra_args: Vec<String>,
    program: Option<Vec<String>>,
}

impl Default for EnvoyBuilder {
    fn default() -> Self {
        EnvoyBuilder {
            concurrency: 2,
            log_level: "info".into(),
            cpus: None,
            ready_timeout: Duration::from_secs(30),
            extra_args: Vec::new(),
            program: None,
        }
    }
}

impl EnvoyBuilder {
    /// Worker threads (`--concurrency`).
    pub fn concurrency(mut self, workers: u32) -> Self {
        self.concurrency = workers;
        self
    }

    /// `-l`: trace, debug, info, warn, error, critical, off.
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.into();
        self
    }

    /// Runs Envoy under `taskset -c <cpus>` (the bench pins it to one core).
    pub fn pin_to_cpus(mut self, cpus: &str) -> Self {
        self.cpus = Some(cpus.into());
        self
    }

    /// Bound on the wait for readiness (or, expecting failure, for the exit).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// One more command-line argument for Envoy.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Runs `words` (a program and its arguments, ending with the Envoy executable) with Envoy's
    /// arguments appended, instead of the pinned Envoy: the instructions bench runs Envoy under
    /// valgrind this way. The program must exec or become Envoy, so the pid stays the one to
    /// signal.
    pub fn program(mut self, words: Vec<String>) -> Self {
        self.program = Some(words);
        self
    }

    fn launch(&self) -> Launch<'_> {
        Launch {
            concurrency: self.concurrency,
            log_level: &self.log_level,
            cpus: self.cpus.as_deref(),
            extra_args: &self.extra_args,
            program: self.program.as_deref(),
        }
    }

    fn temp_dir() -> Result<tempfile::TempDir, String> {
        tempfile::Builder::new()
            .prefix("apim-envoy-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))
    }

    /// Starts Envoy and waits until the admin `/ready` says LIVE; the error carries the log.
    pub fn start(&self, config_yaml_template: &str) -> Result<Envoy, String> {
        let config = render(config_yaml_template)?;
        let dir = Self::temp_dir()?;
        let mut child = process::spawn(dir.path(), &config, &self.launch())?;
        let deadline = Instant::now() + self.ready_timeout;
        let admin_port = loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "Envoy exited ({status}) before becoming ready:\n{}",
                    process::read_log(dir.path())
                ));
            }
            if let Some(port) = live_admin_port(dir.path()) {
                break port;
            }
            if Instant::now() > deadline {
                process::stop(&mut child);
                return Err(format!(
                    "Envoy not ready within {:?}:\n{}",
                    self.ready_timeout,
                    process::read_log(dir.path())
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        };
        // Envoy owns the child from here, so an error below still stops it on drop.
        let mut envoy = Envoy {
            child,
            dir,
            admin_port,
            listeners: Vec::new(),
        };
        envoy.listeners =
            listener_ports(admin_port).map_err(|e| format!("{e}\n{}", envoy.log()))?;
        Ok(envoy)
    }

    /// Starts Envoy expecting it to exit non-zero (config refused); returns log and stderr.
    pub fn start_expect_failure(&self, config_yaml_template: &str) -> Result<String, String> {
        let config = render(config_yaml_template)?;
        let dir = Self::temp_dir()?;
        let mut child = process::spawn(dir.path(), &config, &self.launch())?;
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = process::read_log(dir.path());
                return if status.success() {
                    Err(format!("Envoy exited 0, expected a failure:\n{log}"))
                } else {
                    Ok(log)
                };
            }
            let ready = live_admin_port(dir.path()).is_some();
            if ready || Instant::now() > deadline {
                process::stop(&mut child);
                let what = if ready {
                    "became ready (the config was accepted)"
                } else {
                    "neither exited nor became ready"
                };
                return Err(format!(
                    "Envoy {what}, expected it to refuse the config:\n{}",
                    process::read_log(dir.path())
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// The admin port once Envoy has written its address and `/ready` says LIVE.
fn live_admin_port(dir: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(process::admin_address_path(dir)).ok()?;
    let port = text.trim().parse::<SocketAddr>().ok()?.port();
    let ready = admin_get(port, "/ready").ok()?;
    (ready.trim() == "LIVE").then_some(port)
}

/// Listener names and bound ports: with `port_value: 0` in the config, the admin's
/// `/listeners?format=json` reports the port the kernel chose.
fn listener_ports(admin_port: u16) -> Result<Vec<(String, u16)>, String> {
    let text = admin_get(admin_port, "/listeners?format=json")?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("/listeners is not JSON ({e}): {text}"))?;
    let statuses = json
        .get("listener_statuses")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    statuses
        .iter()
        .map(|status| {
            let name = status
                .get("name")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            let port = status
                .pointer("/local_address/socket_address/port_value")
                .and_then(|v| v.as_u64())
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("listener {name:?} reports no bound port: {status}"))?;
            Ok((name.to_owned(), port))
        })
        .collect()
}
