//! What the Redis and ratelimit children share: finding the binary, free ports, bounded waits,
//! and a kill that always reaps.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a start or restart may take before it is an error.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A port that was free a moment ago on 127.0.0.1 (the OS picks it; the listener is closed so
/// the child can bind it).
pub fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// `program` on PATH, or an error naming the make target that installs it.
pub fn on_path(program: &str, make_target: &str) -> Result<PathBuf, String> {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| {
            format!("`{program}` is not installed (not on PATH): run `make {make_target}`")
        })
}

/// Polls `ready` every 50 ms until it is Ok, the child exits, or [`START_TIMEOUT`] passes; the
/// error carries the last reason and `log()`.
pub fn wait_ready(
    what: &str,
    child: &mut Child,
    mut ready: impl FnMut() -> Result<(), String>,
    log: impl Fn() -> String,
) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let why = match ready() {
            Ok(()) => return Ok(()),
            Err(why) => why,
        };
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{what} exited ({status}) before it was ready:\n{}",
                log()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{what} not ready within {START_TIMEOUT:?} ({why}):\n{}",
                log()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGKILL (what a crash or an OOM kill looks like to its clients) and reap.
pub fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A `Command` for `program` with no stdin and both outputs appended to `log`.
pub fn command(program: &std::path::Path, log: &std::path::Path) -> Result<Command, String> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut c = Command::new(program);
    c.stdin(Stdio::null()).stdout(out).stderr(err);
    Ok(c)
}

/// The last `lines` lines of a log file (empty if there is none yet).
pub fn tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
