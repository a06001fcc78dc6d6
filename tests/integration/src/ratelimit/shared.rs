//! One Redis + ratelimit pair per process for config templates (`{{RATELIMIT_GRPC_PORT}}`) and
//! the bench rows: started on first use, never dropped (it lives in a static), so a watchdog
//! kills both children and removes their temp dirs when this process ends.

use std::sync::OnceLock;

use super::{Options, RateLimit, Redis};

struct Shared {
    _redis: Redis,
    service: RateLimit,
}

static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();

/// The shared service's gRPC port, starting it (and its Redis) on first call. `cpus` pins both
/// (`taskset -c`); only the first call's choice counts.
pub fn shared(cpus: Option<&str>) -> Result<u16, String> {
    SHARED
        .get_or_init(|| start(cpus))
        .as_ref()
        .map(|s| s.service.grpc_port())
        .map_err(Clone::clone)
}

fn start(cpus: Option<&str>) -> Result<Shared, String> {
    let redis = Redis::start()?;
    let service = RateLimit::start_with(
        &redis,
        Options {
            cpus: cpus.map(str::to_owned),
            ..Options::default()
        },
    )?;
    let pids: Vec<String> = [redis.pid(), service.pid()]
        .into_iter()
        .flatten()
        .map(|p| p.to_string())
        .collect();
    let dirs = [redis.dir(), service.dir()].map(|d| d.to_string_lossy().into_owned());
    kill_when_this_process_exits(&pids, &dirs)?;
    Ok(Shared {
        _redis: redis,
        service,
    })
}

// The watchdog must outlive this process, so it is never waited for; when this process exits
// it is re-parented (and reaped) by init.
#[allow(clippy::zombie_processes)]
fn kill_when_this_process_exits(pids: &[String], dirs: &[String]) -> Result<(), String> {
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.2; done; kill -9 {pids} 2>/dev/null; \
         sleep 0.5; rm -rf '{dirs}'",
        me = std::process::id(),
        pids = pids.join(" "),
        dirs = dirs.join("' '"),
    );
    std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| format!("starting the watchdog for the shared ratelimit: {e}"))
}
