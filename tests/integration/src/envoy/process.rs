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
    // `setpriv --pdeathsig KILL` (util-linux) makes the kernel kill Envoy when the thread that
    // started it ends, and `spawn_kept` starts every Envoy from one thread that lives as long as
    // the test process: an Envoy a test leaves running (a shared one in a static, never
    // dropped) dies with the process instead of outliving it. setpriv and taskset exec, so the
    // pid stays Envoy's.
    let mut command = Command::new("setpriv");
    command.args(["--pdeathsig", "KILL", "--"]);
    if let Some(cpus) = launch.cpus {
        command.arg("taskset").arg("-c").arg(cpus);
    }
    command.args(&program);
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
    spawn_kept(command)
        .map_err(|e| format!("cannot run {:?} (through setpriv): {e}", program.first()))
}

/// A command to start, and where its child goes.
type Job = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);

/// Starts `command` from the one spawner thread (see [`spawn`]: the parent death signal is tied
/// to the thread that started the child).
fn spawn_kept(command: Command) -> std::io::Result<Child> {
    use std::sync::mpsc::{channel, Sender};
    use std::sync::{Mutex, OnceLock};
    static SPAWNER: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, inbox) = channel::<Job>();
        std::thread::spawn(move || {
            for (mut command, reply) in inbox {
                let _ = reply.send(command.spawn());
            }
        });
        Mutex::new(jobs)
    });
    let (reply, answer) = channel();
    let sent = spawner
        .lock()
        .map_err(|_| std::io::Error::other("the spawner thread's lock is poisoned"))?
        .send((command, reply));
    if sent.is_err() {
        return Err(std::io::Error::other("the spawner thread is gone"));
    }
    answer
        .recv()
        .map_err(|_| std::io::Error::other("the spawner thread did not answer"))?
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
