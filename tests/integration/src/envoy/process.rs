//! The Envoy child process and its files: spawn, log collection, bounded waits, shutdown.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::paths::{envoy_bin, repo_root};

const CONFIG: &str = "envoy.yaml";
const ADMIN_ADDRESS: &str = "admin-address.txt";
const LOG: &str = "envoy.log";
const STDIO: &str = "stdio.txt";

pub fn config_path(dir: &Path) -> PathBuf {
    dir.join(CONFIG)
}

pub fn admin_address_path(dir: &Path) -> PathBuf {
    dir.join(ADMIN_ADDRESS)
}

/// What Envoy starts with, beyond the config.
pub struct Launch<'a> {
    pub concurrency: u32,
    pub log_level: &'a str,
    /// `taskset -c <cpus>` wrapper; taskset execs Envoy, so the pid stays Envoy's.
    pub cpus: Option<&'a str>,
    pub extra_args: &'a [String],
    /// A program (with its arguments) that runs Envoy instead of [`envoy_bin`]: Envoy's
    /// arguments follow it (say `valgrind --tool=callgrind … /path/to/envoy`).
    pub program: Option<&'a [String]>,
}

/// Writes the rendered config into `dir` and starts Envoy on it, cwd = repo root (shipped
/// configs name modules by repo-relative paths).
pub fn spawn(dir: &Path, config: &str, launch: &Launch<'_>) -> Result<Child, String> {
    let config_path = config_path(dir);
    std::fs::write(&config_path, config).map_err(|e| format!("writing config: {e}"))?;
    let stdio = File::create(dir.join(STDIO)).map_err(|e| format!("creating {STDIO}: {e}"))?;
    let stderr = stdio.try_clone().map_err(|e| e.to_string())?;
    let program: Vec<std::ffi::OsString> = match launch.program {
        Some(words) if !words.is_empty() => words.iter().map(Into::into).collect(),
        _ => vec![envoy_bin().into_os_string()],
    };
    let mut command = match launch.cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpus).args(&program);
            c
        }
        None => {
            let mut words = program.iter();
            let mut c = Command::new(words.next().cloned().unwrap_or_default());
            c.args(words);
            c
        }
    };
    command
        .arg("-c")
        .arg(&config_path)
        .arg("--disable-hot-restart")
        .arg("--concurrency")
        .arg(launch.concurrency.to_string())
        .arg("-l")
        .arg(launch.log_level)
        .arg("--admin-address-path")
        .arg(admin_address_path(dir))
        .arg("--log-path")
        .arg(dir.join(LOG))
        // The log file is otherwise flushed only every 10 s: a failing test would show a stale log.
        .arg("--file-flush-interval-msec")
        .arg("50")
        .args(launch.extra_args)
        .current_dir(repo_root())
        // Where `DynamicModuleFilter` finds the native modules (`make build` puts them there).
        .env(
            "ENVOY_DYNAMIC_MODULES_SEARCH_PATH",
            crate::paths::native_modules_dir(),
        )
        .stdin(Stdio::null())
        .stdout(stdio)
        .stderr(stderr);
    command
        .spawn()
        .map_err(|e| format!("cannot run {:?}: {e}", program.first()))
}

/// The log file followed by whatever went to stdout/stderr (early fatal errors go there too).
pub fn read_log(dir: &Path) -> String {
    let mut out = std::fs::read(dir.join(LOG))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let stdio = std::fs::read(dir.join(STDIO)).unwrap_or_default();
    if !stdio.is_empty() {
        out.push_str("\n----- stdout/stderr -----\n");
        out.push_str(&String::from_utf8_lossy(&stdio));
    }
    out
}

/// Waits for the child to exit, at most `timeout`.
pub fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM (a clean exit flushes the log), then SIGKILL if it lingers; always reaps.
pub fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // std offers only SIGKILL, and the crate forbids unsafe, so ask kill(1).
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if wait_deadline(child, Duration::from_secs(5)).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}
