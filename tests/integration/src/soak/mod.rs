//! Pieces of the soak driver (`src/bin/soak.rs`, `make soak`): the traffic mix, how one answer
//! is judged, the tallies, and the checks made on Envoy afterwards (its counters, its log, its
//! memory). Everything here is plain data and functions so it is unit-tested without Envoy.

pub mod cases;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::client::{send_raw, Response};
use cases::{Case, Expect, Send};

/// What the soak keeps of one answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub status: u16,
    /// Envoy's router answered from the upstream (`x-envoy-upstream-service-time`): the request
    /// passed every filter.
    pub upstream: bool,
    /// The problem+json `code` (or the first GraphQL error's `extensions.code`), if any.
    pub code: Option<String>,
    /// HTTP/2 only: Envoy answered early (at the request headers, while the body was on its
    /// way) and reset the stream, and curl 7.88 dropped the answer it had (exit 92, nothing
    /// printed). Only a local reply can do that: the upstream is sent the whole body first.
    pub reset: bool,
}

impl Outcome {
    pub fn from_response(r: &Response) -> Outcome {
        let json: Option<serde_json::Value> = serde_json::from_slice(&r.body).ok();
        let code = json.as_ref().and_then(|j| {
            j.get("code")
                .or_else(|| j.pointer("/errors/0/extensions/code"))
                .and_then(|c| c.as_str())
                .map(str::to_owned)
        });
        Outcome {
            status: r.status,
            upstream: r.header("x-envoy-upstream-service-time").is_some(),
            code,
            reset: false,
        }
    }

    fn reset() -> Outcome {
        Outcome {
            status: 0,
            upstream: false,
            code: None,
            reset: true,
        }
    }

    /// graphql-guard's refusal: a GraphQL error code (upper case) on a local reply.
    pub fn guard_refused(&self) -> bool {
        !self.upstream
            && self.code.as_deref().is_some_and(|c| {
                !c.is_empty() && c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
            })
    }

    /// Quota's own refusal.
    pub fn quota_limited(&self) -> bool {
        self.status == 429 && self.code.as_deref() == Some("quota_exceeded")
    }
}

/// Ok, or what is wrong with this answer to this case.
pub fn judge(expect: &Expect, o: &Outcome) -> Result<(), String> {
    match expect {
        Expect::Hostile { .. } if o.reset => Ok(()),
        Expect::Valid(_) | Expect::Exact(_) if o.reset => {
            Err("the stream was reset without an answer".into())
        }
        Expect::Valid(ok) if ok.contains(&o.status) || o.quota_limited() => Ok(()),
        Expect::Exact(ok) if ok.contains(&o.status) => Ok(()),
        Expect::Valid(_) | Expect::Exact(_) if o.status >= 500 => {
            Err(format!("unexpected {} ({:?})", o.status, o.code))
        }
        Expect::Valid(ok) | Expect::Exact(ok) => Err(format!(
            "status {} ({:?}), expected one of {ok:?}",
            o.status, o.code
        )),
        Expect::Hostile { .. } if o.upstream => Err(format!(
            "BYPASS: a hostile request reached the upstream (status {})",
            o.status
        )),
        Expect::Hostile { .. } if (200..300).contains(&o.status) && !o.guard_refused() => {
            Err(format!("a hostile request got {} ({:?})", o.status, o.code))
        }
        Expect::Hostile { .. } if o.status >= 500 => {
            Err(format!("unexpected {} ({:?})", o.status, o.code))
        }
        Expect::Hostile { .. } => Ok(()),
    }
}

/// Sends one case's request to the gateway on `port`.
pub fn send(case: &Case, port: u16) -> Result<Outcome, String> {
    match &case.send {
        Send::H1(request) => request.send(port).map(|r| Outcome::from_response(&r)),
        Send::Raw(bytes) => send_raw(port, bytes).map(|r| Outcome::from_response(&r)),
        Send::H2 {
            method,
            path,
            headers,
            body,
        } => h2_curl(port, method, path, headers, *body),
    }
}

/// One HTTP/2 (prior knowledge, cleartext) request through curl; the method goes out as given,
/// lower case included.
fn h2_curl(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<&str>,
) -> Result<Outcome, String> {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-i",
        "--http2-prior-knowledge",
        "--max-time",
        "10",
        "-X",
        method,
    ]);
    for (name, value) in headers {
        cmd.arg("-H").arg(format!("{name}: {value}"));
    }
    if body.is_some() {
        cmd.args(["--data-binary", "@-"]);
    }
    cmd.arg(format!("http://127.0.0.1:{port}{path}"));
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("curl: {e}"))?;
    if let (Some(b), Some(mut stdin)) = (body, child.stdin.take()) {
        stdin
            .write_all(b.as_bytes())
            .map_err(|e| format!("curl stdin: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("curl: {e}"))?;
    // 92: HTTP/2 stream error (here the server's RST_STREAM after an early local reply).
    if out.stdout.is_empty() && out.status.code() == Some(92) {
        return Ok(Outcome::reset());
    }
    parse_curl_i(&out.stdout).map(|r| Outcome::from_response(&r))
}

/// `curl -i` output (`HTTP/2 200`, headers, blank line, body) as a [`Response`].
pub fn parse_curl_i(out: &[u8]) -> Result<Response, String> {
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("curl gave no response: {:?}", String::from_utf8_lossy(out)))?;
    let head = String::from_utf8_lossy(out.get(..split).unwrap_or_default());
    let body = out.get(split + 4..).unwrap_or_default().to_vec();
    let (status, headers) = crate::client::parse_head_block(&head)?;
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Per-case counts, merged across the load threads.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// case index → status → count (0 = no response: a client error, or an HTTP/2 reset).
    pub statuses: BTreeMap<usize, BTreeMap<u16, u64>>,
    /// case index → (count, first few messages) of answers that broke the case's rule.
    pub violations: BTreeMap<usize, (u64, Vec<String>)>,
    /// Answers from the upstream: requests quota admitted (/health, the one route quota skips,
    /// is a direct response and never has the upstream's mark).
    pub upstream_answers: u64,
    /// Quota's own 429s.
    pub quota_limited: u64,
    /// HTTP/2 streams reset before curl showed an answer (see [`Outcome::reset`]); some may be
    /// quota 429s, so quota's refusal count is bounded by `quota_limited + resets`.
    pub resets: u64,
    /// graphql-guard's refusals by (status, GraphQL error code): never from the upstream.
    pub guard_refusals: BTreeMap<(u16, String), u64>,
    pub requests: u64,
    /// Requests that got no answer (connection errors), by case.
    pub errors: BTreeMap<usize, (u64, Vec<String>)>,
}

const KEEP_MESSAGES: usize = 3;

impl Tally {
    pub fn record(&mut self, index: usize, case: &Case, result: Result<Outcome, String>) {
        self.requests += 1;
        let o = match result {
            Ok(o) => o,
            Err(e) => {
                *self
                    .statuses
                    .entry(index)
                    .or_default()
                    .entry(0)
                    .or_default() += 1;
                push(self.errors.entry(index).or_default(), e);
                return;
            }
        };
        *self
            .statuses
            .entry(index)
            .or_default()
            .entry(o.status)
            .or_default() += 1;
        if o.reset {
            self.resets += 1;
        }
        if o.upstream {
            self.upstream_answers += 1;
        }
        if o.quota_limited() {
            self.quota_limited += 1;
        }
        if let (true, Some(code)) = (o.guard_refused(), &o.code) {
            *self
                .guard_refusals
                .entry((o.status, code.clone()))
                .or_default() += 1;
        }
        if let Err(e) = judge(&case.expect, &o) {
            push(self.violations.entry(index).or_default(), e);
        }
    }

    pub fn merge(&mut self, other: Tally) {
        for (i, m) in other.statuses {
            let mine = self.statuses.entry(i).or_default();
            for (s, n) in m {
                *mine.entry(s).or_default() += n;
            }
        }
        for (i, (n, msgs)) in other.violations {
            merge_msgs(self.violations.entry(i).or_default(), n, msgs);
        }
        for (i, (n, msgs)) in other.errors {
            merge_msgs(self.errors.entry(i).or_default(), n, msgs);
        }
        self.upstream_answers += other.upstream_answers;
        self.quota_limited += other.quota_limited;
        self.resets += other.resets;
        for (k, n) in other.guard_refusals {
            *self.guard_refusals.entry(k).or_default() += n;
        }
        self.requests += other.requests;
    }
}

fn push(slot: &mut (u64, Vec<String>), message: String) {
    slot.0 += 1;
    if slot.1.len() < KEEP_MESSAGES {
        slot.1.push(message);
    }
}

fn merge_msgs(slot: &mut (u64, Vec<String>), n: u64, msgs: Vec<String>) {
    slot.0 += n;
    for m in msgs {
        if slot.1.len() < KEEP_MESSAGES {
            slot.1.push(m);
        }
    }
}

/// Stat deltas between two `/stats` snapshots (counters only grow; gauges may shrink: kept
/// as the end value minus the start value, saturating at 0).
pub fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, name: &str) -> u64 {
    after
        .get(name)
        .copied()
        .unwrap_or_default()
        .saturating_sub(before.get(name).copied().unwrap_or_default())
}

/// Envoy's own Wasm stats (not the filters' `wasmcustom.*` counters) whose name says something
/// failed, and that moved during the run: a VM that trapped, failed to start or was reloaded.
pub fn wasm_failures(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Vec<String> {
    const BAD: [&str; 5] = ["fail", "crash", "abort", "error", "reload"];
    after
        .keys()
        .filter(|n| n.contains("wasm") && !n.starts_with("wasmcustom."))
        .filter(|n| BAD.iter().any(|b| n.contains(b)))
        .filter_map(|n| {
            let d = delta(before, after, n);
            (d > 0).then(|| format!("{n} +{d}"))
        })
        .collect()
}

/// Lines of Envoy's log that say a VM failed: any `[critical]`, and `[error]` lines from the
/// Wasm runtime itself (a filter's own log lines, `wasm log …`, are counted apart).
pub fn vm_failure_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains("[critical]")
                || (l.contains("[error]")
                    && (l.contains("[wasm]") || l.contains("wasm"))
                    && !l.contains("wasm log"))
        })
        .collect()
}

/// Mints the OAuth cases' tokens with the helper CLI (`target/debug/apim`, DEMO-ONLY issuer key).
pub fn mint_tokens(apim: &std::path::Path) -> Result<cases::Tokens, String> {
    let mint = |args: &[&str]| -> Result<String, String> {
        let out = Command::new(apim)
            .args(["token", "mint"])
            .args(args)
            .output()
            .map_err(|e| format!("{}: {e} (build it: cargo build -p apim)", apim.display()))?;
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && token.split('.').count() == 3 {
            Ok(token)
        } else {
            Err(format!(
                "apim token mint {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    Ok(cases::Tokens {
        read: mint(&["--scope", "pets:read", "--sub", "carol", "--ttl", "86400"])?,
        write: mint(&[
            "--scope",
            "pets:read pets:write",
            "--sub",
            "dora",
            "--ttl",
            "86400",
        ])?,
        substring: mint(&[
            "--scope",
            "pets:writer pets:read",
            "--sub",
            "eve",
            "--ttl",
            "86400",
        ])?,
        expired: mint(&["--scope", "pets:read", "--sub", "carol", "--ttl", "-3600"])?,
    })
}

/// `VmRSS` of a process in KiB, from `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    parse_vm_rss(&status).ok_or_else(|| format!("/proc/{pid}/status has no VmRSS"))
}

pub fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(status: u16, upstream: bool, code: Option<&str>) -> Outcome {
        Outcome {
            status,
            upstream,
            code: code.map(str::to_owned),
            reset: false,
        }
    }

    #[test]
    fn judging_answers() {
        let valid = Expect::Valid(&[200]);
        let exact = Expect::Exact(&[200]);
        let hostile = Expect::Hostile { today: &[401] };
        let table: &[(&Expect, Outcome, Option<&str>)] = &[
            (&valid, o(200, true, None), None),
            (&valid, o(429, false, Some("quota_exceeded")), None),
            (
                &valid,
                o(429, false, Some("other")),
                Some("expected one of"),
            ),
            (
                &valid,
                o(503, false, Some("not_configured")),
                Some("unexpected 503"),
            ),
            (&Expect::Valid(&[503]), o(503, true, None), None),
            (
                &exact,
                o(429, false, Some("quota_exceeded")),
                Some("expected one of"),
            ),
            (&hostile, o(401, false, None), None),
            (&hostile, o(404, false, None), None),
            (&hostile, o(307, false, None), None),
            (&hostile, o(200, true, None), Some("BYPASS")),
            (&hostile, o(404, true, None), Some("BYPASS")),
            (
                &hostile,
                o(200, false, None),
                Some("hostile request got 200"),
            ),
            (&hostile, o(503, false, None), Some("unexpected 503")),
            (&hostile, Outcome::reset(), None),
            (&valid, Outcome::reset(), Some("reset")),
        ];
        for (expect, outcome, err) in table {
            match (judge(expect, outcome), err) {
                (Ok(()), None) => {}
                (Err(e), Some(needle)) if e.contains(needle) => {}
                (got, want) => panic!("{expect:?} {outcome:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn outcome_reads_codes_and_the_upstream_mark() {
        let r = Response {
            status: 429,
            headers: vec![],
            body: br#"{"code":"quota_exceeded"}"#.to_vec(),
        };
        assert!(Outcome::from_response(&r).quota_limited());
        let r = Response {
            status: 400,
            headers: vec![("x-envoy-upstream-service-time".into(), "1".into())],
            body: br#"{"errors":[{"message":"m","extensions":{"code":"MAX_DEPTH_EXCEEDED"}}]}"#
                .to_vec(),
        };
        assert_eq!(
            Outcome::from_response(&r),
            o(400, true, Some("MAX_DEPTH_EXCEEDED"))
        );
        assert!(!Outcome::from_response(&r).guard_refused()); // from the upstream
        assert!(o(400, false, Some("MAX_DEPTH_EXCEEDED")).guard_refused());
        assert!(!o(401, false, Some("invalid_api_key")).guard_refused());
    }

    #[test]
    fn curl_output_parses() {
        let r =
            parse_curl_i(b"HTTP/2 401 \r\nwww-authenticate: ApiKey\r\ncontent-type: x\r\n\r\n{}")
                .unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(r.header("www-authenticate"), Some("ApiKey"));
        assert_eq!(r.body, b"{}");
        assert!(parse_curl_i(b"").is_err());
    }

    #[test]
    fn tally_counts_quota_and_violations() {
        let all = cases::all(&cases::Tokens::default());
        let (i, case) = all
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == "no key GET /pets")
            .unwrap();
        let mut t = Tally::default();
        t.record(i, case, Ok(o(401, false, None)));
        t.record(i, case, Ok(o(200, true, None)));
        t.record(i, case, Err("refused".into()));
        t.record(i, case, Ok(Outcome::reset()));
        assert_eq!(t.requests, 4);
        assert_eq!(t.resets, 1);
        assert_eq!(t.upstream_answers, 1);
        assert_eq!(t.violations[&i].0, 1);
        assert_eq!(t.errors[&i].0, 1);
        let mut sum = Tally::default();
        sum.merge(t.clone());
        sum.merge(t);
        assert_eq!(sum.statuses[&i][&401], 2);
        assert_eq!(sum.statuses[&i][&0], 4);
        assert_eq!(sum.violations[&i].0, 2);
    }

    #[test]
    fn wasm_failure_stats_and_log_lines() {
        let before: BTreeMap<String, u64> = [
            ("wasm.envoy.wasm.runtime.v8.created".to_string(), 15),
            ("wasmcustom.apim.quota.errors".to_string(), 0),
        ]
        .into();
        let mut after = before.clone();
        after.insert("wasmcustom.apim.quota.errors".into(), 3); // a filter's own counter
        assert!(wasm_failures(&before, &after).is_empty());
        after.insert("wasm.remote_load_fetch_failures".into(), 1);
        assert_eq!(
            wasm_failures(&before, &after),
            ["wasm.remote_load_fetch_failures +1"]
        );
        let log = "[info] ok\n[2026][error][wasm] Function: proxy_on_request_headers failed\n\
                   [error][wasm] wasm log quota: bad\n[critical][main] boom";
        assert_eq!(vm_failure_lines(log).len(), 2);
    }

    #[test]
    fn schedule_and_rss() {
        let all = cases::all(&cases::Tokens::default());
        let s = cases::schedule(&all);
        let total: u32 = all.iter().map(|c| c.weight).sum();
        assert_eq!(s.len(), total as usize);
        assert_eq!(
            parse_vm_rss("Name:\tenvoy\nVmRSS:\t  123456 kB\n"),
            Some(123_456)
        );
        assert_eq!(parse_vm_rss("Name: x"), None);
    }
}
