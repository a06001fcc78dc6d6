//! Driving wrk: pinned to its own core, keep-alive, one thread, and parsing what it reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One wrk run against Envoy.
pub struct Load<'a> {
    pub port: u16,
    pub path: &'a str,
    pub headers: &'a BTreeMap<String, String>,
    /// Lua script for a method other than GET or a body (see [`write_script`]).
    pub script: Option<&'a Path>,
    pub seconds: u32,
    pub connections: u32,
    /// `taskset -c` list for wrk: never the core Envoy runs on.
    pub cpus: &'a str,
}

/// What wrk reported.
#[derive(Clone, Debug, PartialEq)]
pub struct WrkReport {
    pub requests: u64,
    pub requests_per_second: f64,
    /// "Non-2xx or 3xx responses" (0 when wrk omits the line).
    pub non_2xx_3xx: u64,
    /// connect + read + write + timeout errors.
    pub socket_errors: u64,
}

pub fn run(load: &Load<'_>) -> Result<WrkReport, String> {
    let mut command = Command::new("taskset");
    command
        .arg("-c")
        .arg(load.cpus)
        .arg("wrk")
        .arg("-t1")
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.seconds));
    for (name, value) in load.headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    if let Some(script) = load.script {
        command.arg("-s").arg(script);
    }
    command.arg(format!("http://127.0.0.1:{}{}", load.port, load.path));
    // wrk stops itself after -d seconds, so waiting on it is bounded.
    let out = command.output().map_err(|e| format!("running wrk: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("wrk failed ({}):\n{text}", out.status));
    }
    parse(&text)
}

/// A wrk Lua script setting the method and, from a file read at wrk start, the body (binary
/// safe, no escaping). wrk adds Content-Length itself.
pub fn write_script(dir: &Path, method: &str, body: Option<&Path>) -> Result<PathBuf, String> {
    let mut lua = format!("wrk.method = \"{method}\"\n");
    if let Some(body) = body {
        let body = body.to_string_lossy();
        if body.contains("]==]") {
            return Err(format!("body file path {body:?} cannot be quoted for Lua"));
        }
        lua.push_str(&format!(
            "local f = assert(io.open([==[{body}]==], \"rb\"))\nwrk.body = f:read(\"*a\")\nf:close()\n"
        ));
    }
    let path = dir.join("request.lua");
    std::fs::write(&path, lua).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn parse(text: &str) -> Result<WrkReport, String> {
    let mut report = WrkReport {
        requests: 0,
        requests_per_second: 0.0,
        non_2xx_3xx: 0,
        socket_errors: 0,
    };
    let mut seen_requests = false;
    let mut seen_rate = false;
    for line in text.lines().map(str::trim) {
        if let Some((count, _)) = line.split_once(" requests in ") {
            report.requests = count.trim().parse().map_err(|_| bad(text))?;
            seen_requests = true;
        } else if let Some(rate) = line.strip_prefix("Requests/sec:") {
            report.requests_per_second = rate.trim().parse().map_err(|_| bad(text))?;
            seen_rate = true;
        } else if let Some(count) = line.strip_prefix("Non-2xx or 3xx responses:") {
            report.non_2xx_3xx = count.trim().parse().map_err(|_| bad(text))?;
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            for part in errors.split(',') {
                let n = part.split_whitespace().nth(1).ok_or_else(|| bad(text))?;
                report.socket_errors += n.parse::<u64>().map_err(|_| bad(text))?;
            }
        }
    }
    if seen_requests && seen_rate {
        Ok(report)
    } else {
        Err(bad(text))
    }
}

fn bad(text: &str) -> String {
    format!("cannot read wrk's output:\n{text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "Running 3s test @ http://127.0.0.1:1/
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   190.25us   50.00us   2.00ms   90.00%
    Req/Sec    40.00k     1.00k   42.00k    70.00%
  120000 requests in 3.00s, 10.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  40000.50
Transfer/sec:      3.33MB
";

    #[test]
    fn parses_full_output() {
        let r = parse(OUTPUT).unwrap();
        assert_eq!(
            r,
            WrkReport {
                requests: 120000,
                requests_per_second: 40000.5,
                non_2xx_3xx: 7,
                socket_errors: 3
            }
        );
    }

    #[test]
    fn optional_lines_default_to_zero() {
        let text: String = OUTPUT
            .lines()
            .filter(|l| !l.contains("Socket") && !l.contains("Non-2xx"))
            .map(|l| format!("{l}\n"))
            .collect();
        let r = parse(&text).unwrap();
        assert_eq!((r.non_2xx_3xx, r.socket_errors), (0, 0));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse("wrk: command failed").is_err());
    }

    #[test]
    fn script_sets_method_and_body() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_script(dir.path(), "POST", Some(Path::new("/b/body.json"))).unwrap();
        let lua = std::fs::read_to_string(path).unwrap();
        assert!(lua.contains("wrk.method = \"POST\""));
        assert!(lua.contains("[==[/b/body.json]==]"));
    }
}
