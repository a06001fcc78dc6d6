//! A redis-server child (Debian's `redis-server`, `make setup-redis`) on a free loopback port,
//! in memory only (no RDB, no AOF): a kill loses every count, as a real Redis without
//! persistence would.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

use super::process::{self, command, free_port, on_path, tail, wait_ready};

/// A running redis-server, killed on drop.
pub struct Redis {
    bin: PathBuf,
    port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl Redis {
    /// Starts redis-server on a free port and waits (bounded) until it answers PING.
    pub fn start() -> Result<Redis, String> {
        let bin = on_path("redis-server", "setup-redis")?;
        on_path("redis-cli", "setup-redis")?;
        let dir = tempfile::Builder::new()
            .prefix("apim-redis-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let mut redis = Redis {
            bin,
            port: free_port()?,
            dir,
            child: None,
        };
        redis.restart()?;
        Ok(redis)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, as ratelimit's `REDIS_URL` wants it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: every count in it is gone.
    pub fn kill(&mut self) {
        process::kill(&mut self.child);
    }

    /// Starts it again on the same port (an empty Redis) and waits until it answers PING.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let log = self.log_path();
        let mut child = command(&self.bin, &log)?
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        let port = self.port;
        let ready = wait_ready(
            "redis-server",
            &mut child,
            || match cli(port, &["PING"]) {
                Ok(answer) if answer.trim() == "PONG" => Ok(()),
                Ok(answer) => Err(format!("PING answered {answer:?}")),
                Err(e) => Err(e),
            },
            || tail(&log, 40),
        );
        self.child = Some(child);
        ready
    }

    /// One command through `redis-cli` (raw output, one value per line).
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        cli(self.port, args)
    }

    /// The keys matching a glob pattern, sorted.
    pub fn keys(&self, pattern: &str) -> Result<Vec<String>, String> {
        let mut keys: Vec<String> = self.cli(&["--raw", "KEYS", pattern]).map(|out| {
            out.lines()
                .map(str::to_owned)
                .filter(|l| !l.is_empty())
                .collect()
        })?;
        keys.sort();
        Ok(keys)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Its temp dir (the log, its working directory).
    pub(crate) fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

fn cli(port: u16, args: &[&str]) -> Result<String, String> {
    // `--raw` goes before the command; a leading `--raw` in `args` is passed through as is.
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("redis-cli: {e} (run `make setup-redis`)"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() && !text.starts_with("Could not connect") {
        Ok(text)
    } else {
        Err(format!(
            "redis-cli {args:?}: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "===== redis-server log (tail) =====\n{}\n===== end =====",
                tail(&self.log_path(), 20)
            );
        }
        self.kill();
    }
}
