//! envoyproxy/ratelimit (Envoy's reference Rate Limit Service, RLS v3 over gRPC) and the Redis
//! it counts in, as child processes for the quota filter's global-tier tests and bench rows.
//!
//! The service runs the compose demo's configuration as is: `RUNTIME_ROOT=<repo>/demo/compose`,
//! `RUNTIME_SUBDIRECTORY=ratelimit`, so it loads `demo/compose/ratelimit/config/apim.yaml`
//! (domain `apim`; the limits travel in each request as overrides). Its settings are the compose
//! file's environment with free loopback ports instead of 8080/8081/6070 and Redis's. Each can
//! be killed (SIGKILL) and restarted on the same ports, which is what the failure-mode tests do;
//! both are killed on drop.
//!
//! The binary is `$RATELIMIT_BIN`, else `~/.cache/apim-filters/tools/bin/ratelimit`, built by
//! `make setup-ratelimit` (`go install github.com/envoyproxy/ratelimit/src/service_cmd@<pin>`);
//! redis-server comes from Debian (`make setup-redis`). A missing one is an error naming the
//! make target.

mod process;
mod redis;
mod shared;

use std::path::PathBuf;
use std::process::Child;

use tempfile::TempDir;

use crate::client::Request;
use crate::paths::repo_root;
use process::{command, free_port, tail, wait_ready};

pub use redis::Redis;
pub use shared::shared;

/// The ratelimit binary, or an error saying how to build it.
pub fn ratelimit_bin() -> Result<PathBuf, String> {
    let bin = std::env::var_os("RATELIMIT_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".cache/apim-filters/tools/bin/ratelimit"))
        })
        .ok_or("neither RATELIMIT_BIN nor HOME is set: run `make setup-ratelimit`")?;
    ratelimit_bin_at(&bin)
}

/// `bin` if it is a file, or an error naming the make target that builds it.
pub fn ratelimit_bin_at(bin: &std::path::Path) -> Result<PathBuf, String> {
    if bin.is_file() {
        Ok(bin.to_path_buf())
    } else {
        Err(format!(
            "envoyproxy/ratelimit is not built ({} is missing): run `make setup-ratelimit`",
            bin.display()
        ))
    }
}

/// A running envoyproxy/ratelimit, killed on drop.
pub struct RateLimit {
    bin: PathBuf,
    http_port: u16,
    grpc_port: u16,
    debug_port: u16,
    redis: String,
    env: Vec<(String, String)>,
    cpus: Option<String>,
    dir: TempDir,
    child: Option<Child>,
}

/// Settings beyond the compose file's, for [`RateLimit::start_with`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// More environment (`("REDIS_POOL_SIZE", "1")`), after the compose file's.
    pub env: Vec<(String, String)>,
    /// Run it under `taskset -c <cpus>` (the bench keeps it off Envoy's core).
    pub cpus: Option<String>,
}

impl RateLimit {
    /// Starts ratelimit against `redis` with the compose demo's settings and waits (bounded)
    /// until it serves.
    pub fn start(redis: &Redis) -> Result<RateLimit, String> {
        Self::start_with(redis, Options::default())
    }

    pub fn start_with(redis: &Redis, options: Options) -> Result<RateLimit, String> {
        let dir = tempfile::Builder::new()
            .prefix("apim-ratelimit-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let mut service = RateLimit {
            bin: ratelimit_bin()?,
            http_port: free_port()?,
            grpc_port: free_port()?,
            debug_port: free_port()?,
            redis: redis.address(),
            env: options.env,
            cpus: options.cpus,
            dir,
            child: None,
        };
        service.restart()?;
        Ok(service)
    }

    /// The gRPC port (the Envoy cluster's endpoint).
    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }

    /// The HTTP port (`/healthcheck`, `/json`).
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        process::kill(&mut self.child);
    }

    /// Starts it again on the same ports and waits (bounded) until it serves: `/healthcheck`
    /// answers 200 and the gRPC port accepts connections.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let log = self.log_path();
        let runtime_root = repo_root().join("demo/compose");
        let mut c = match &self.cpus {
            Some(cpus) => {
                let mut c = command(std::path::Path::new("taskset"), &log)?;
                c.arg("-c").arg(cpus).arg(&self.bin);
                c
            }
            None => command(&self.bin, &log)?,
        };
        // The compose file's environment (demo/docker-compose.yaml), ports and paths aside.
        c.env("USE_STATSD", "false")
            .env("LOG_LEVEL", "info")
            .env("REDIS_SOCKET_TYPE", "tcp")
            .env("REDIS_URL", &self.redis)
            .env("HOST", "127.0.0.1")
            .env("GRPC_HOST", "127.0.0.1")
            .env("DEBUG_HOST", "127.0.0.1")
            .env("PORT", self.http_port.to_string())
            .env("GRPC_PORT", self.grpc_port.to_string())
            .env("DEBUG_PORT", self.debug_port.to_string())
            .env("RUNTIME_ROOT", &runtime_root)
            .env("RUNTIME_SUBDIRECTORY", "ratelimit")
            .env("RUNTIME_WATCH_ROOT", "false")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut child = c
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        let (http, grpc) = (self.http_port, self.grpc_port);
        let ready = wait_ready(
            "ratelimit",
            &mut child,
            || {
                let r = Request::get("/healthcheck").send(http)?;
                if r.status != 200 {
                    return Err(format!("/healthcheck answered {}", r.status));
                }
                std::net::TcpStream::connect(("127.0.0.1", grpc))
                    .map(drop)
                    .map_err(|e| format!("gRPC port {grpc}: {e}"))
            },
            || tail(&log, 40),
        );
        self.child = Some(child);
        ready
    }

    /// One `ShouldRateLimit` through the service's HTTP `/json` endpoint (the request as
    /// protobuf JSON): the decoded answer, or an error with the status and body. For probing the
    /// service itself; the filter speaks gRPC.
    pub fn should_rate_limit_json(
        &self,
        request: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        let r = Request::new("POST", "/json")
            .header("content-type", "application/json")
            .body(request.to_string())
            .send(self.http_port)?;
        if r.status != 200 {
            return Err(format!("/json answered {}: {}", r.status, r.text().trim()));
        }
        serde_json::from_str(&r.text()).map_err(|e| format!("/json: {e}: {}", r.text()))
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path(), lines)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("ratelimit.log")
    }

    /// Its temp dir (the log).
    pub(crate) fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for RateLimit {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "===== ratelimit log (tail) =====\n{}\n===== end =====",
                self.log_tail(30)
            );
        }
        self.kill();
    }
}
