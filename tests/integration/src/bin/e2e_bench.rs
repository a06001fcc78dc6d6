//! End-to-end CPU per request: how much Envoy worker CPU each configuration in
//! `tests/integration/bench/rows.json` costs per request (method: DESIGN.md, "Performance method").
//!
//! For each round, each row (interleaved, order rotated per round) gets a fresh Envoy with one
//! worker pinned to CPU 0, a 1 s wrk warm-up, then a measured wrk run from CPU 1. CPU is
//! utime+stime from /proc across the measured run only; requests are Envoy's own count of
//! responses of the expected status class (`http.ingress.downstream_rq_<N>xx`) over that run.
//! A row whose responses were not the expected status is INVALID and the exit code is 1.
//!
//! Each row also proves that its filter did its job (`proof` in the row, see
//! `apim_integration::bench::proof`): after the run, the filter's own counters in `/stats` must
//! account for every response Envoy sent with the row's status (say `apim.quota.allowed` ==
//! responses) and its other outcomes must be 0. A row whose proof fails is INVALID too: no
//! figure for a filter that passed requests through untouched or took its error path.
//!
//! Rows whose config names `{{RATELIMIT_GRPC_PORT}}` (the quota filter's global tier, Envoy's
//! own ratelimit filter) share one envoyproxy/ratelimit + Redis (`make setup-ratelimit`,
//! `make setup-redis`), pinned to the load generator's core.
//!
//! Env: BENCH_ROUNDS (3), BENCH_SECONDS (5), BENCH_ROWS (comma-separated names; `none` always
//! runs as the baseline). Writes `target/bench/e2e.json`. A quick check that every row runs and
//! passes its proof (figures meaningless): `BENCH_SECONDS=1 BENCH_ROUNDS=1`; add
//! `BENCH_SHOW_STATS=1` to print each row's non-zero stats (to write a new row's proof).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use apim_integration::bench::report::{self, Round, RowResult};
use apim_integration::bench::rows::{self, Row};
use apim_integration::bench::{cpu, on_path, served_in_class, wrk};
use apim_integration::knobs;
use apim_integration::{repo_root, Envoy, Request};
use std::collections::BTreeMap;

const ENVOY_CPU: &str = "0";
const WRK_CPU: &str = "1";
const CONNECTIONS: u32 = 8;
const WARMUP_SECONDS: u32 = 1;
const STAT_PREFIX: &str = "http.ingress";
/// Bounds the wait for counters a filter flushes on a timer (scope-authz: every 500 ms).
const SETTLE: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("e2e_bench: some rows are INVALID (see errors above): no figures for them");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("e2e_bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// Ok(false) when some row is invalid.
fn run() -> Result<bool, String> {
    for tool in ["wrk", "taskset"] {
        if !on_path(tool) {
            return Err(format!(
                "`{tool}` not found on PATH: run `apt-get install wrk util-linux` (`make bench` does)"
            ));
        }
    }
    let rounds = knobs::positive("BENCH_ROUNDS", 3)?;
    let seconds = knobs::positive("BENCH_SECONDS", 5)?;
    let selection = std::env::var("BENCH_ROWS").unwrap_or_default();
    let rows = rows::select(rows::load_rows()?, &selection)?;
    // The global-tier rows share one envoyproxy/ratelimit + Redis for the whole run, started
    // here so that it runs on the load generator's core, not on Envoy's.
    let needs_ratelimit = rows.iter().any(|row| {
        row.config_template()
            .is_ok_and(|t| t.contains("{{RATELIMIT_GRPC_PORT}}"))
    });
    if needs_ratelimit {
        apim_integration::ratelimit::shared(Some(WRK_CPU))?;
    }
    let ticks = cpu::clock_ticks_per_second()?;

    let mut measured: Vec<(Vec<Round>, Vec<String>)> = vec![(Vec::new(), Vec::new()); rows.len()];
    for round in 0..rounds {
        // Rotating the order spreads any drift (thermal, background load) across rows.
        for k in 0..rows.len() {
            let i = (k + round as usize) % rows.len();
            let (Some(row), Some(slot)) = (rows.get(i), measured.get_mut(i)) else {
                continue;
            };
            eprint!("round {}/{rounds}: {:<24}", round + 1, row.name);
            match measure(row, round + 1, seconds, ticks) {
                Ok(r) => {
                    eprintln!(
                        " {:>7.2} µs/req  {:>8.0} req/s  proof: {}",
                        r.cpu_us_per_request, r.rps, r.proof
                    );
                    slot.0.push(r);
                }
                Err(e) => {
                    eprintln!(" INVALID: {e}");
                    slot.1.push(format!("round {}: {e}", round + 1));
                }
            }
        }
    }

    let mut results: Vec<RowResult> = rows
        .iter()
        .zip(measured)
        .map(|(row, (r, errors))| RowResult::new(&row.name, r, errors))
        .collect();
    report::fill_added(&mut results);
    println!(
        "\nEnvoy CPU per request ({rounds} rounds x {seconds} s, wrk -t1 -c{CONNECTIONS}, medians)\n{}",
        report::table(&results)
    );
    let out = repo_root().join("target/bench/e2e.json");
    report::write_json(&out, &results)?;
    println!("wrote {}", out.display());
    Ok(results.iter().all(|r| r.valid))
}

/// Responses sent so far by status class (1xx..5xx), from one stats snapshot.
fn responses_by_class(envoy: &Envoy) -> Result<[u64; 5], String> {
    classes(&envoy.stats()?)
}

fn classes(stats: &BTreeMap<String, u64>) -> Result<[u64; 5], String> {
    let mut out = [0; 5];
    for (class, slot) in out.iter_mut().enumerate() {
        let name = format!("{STAT_PREFIX}.downstream_rq_{}xx", class + 1);
        *slot = *stats
            .get(&name)
            .ok_or_else(|| format!("Envoy has no counter {name}"))?;
    }
    Ok(out)
}

/// One request before the load: the exact status must match (the counters only see its class),
/// and a misconfigured row fails here with the response body to show why.
fn check_first_request(row: &Row, port: u16) -> Result<(), String> {
    let mut request = Request::new(&row.method, &row.path);
    for (name, value) in &row.headers {
        request = request.header(name, value);
    }
    if let Some(body) = row.body()? {
        request = request.body(body);
    }
    let first = request.send(port)?;
    if first.status == row.expect_status {
        Ok(())
    } else {
        Err(format!(
            "first request got status {} (expected {}): {}",
            first.status,
            row.expect_status,
            first.text()
        ))
    }
}

fn measure(row: &Row, round: u32, seconds: u32, ticks: u64) -> Result<Round, String> {
    let envoy = Envoy::builder()
        .concurrency(1)
        .log_level("warn")
        .pin_to_cpus(ENVOY_CPU)
        .start(&row.config_template()?)?;

    check_first_request(row, envoy.port())?;

    let scratch = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let script = if row.method != "GET" || row.body_file.is_some() {
        Some(wrk::write_script(
            scratch.path(),
            &row.method,
            row.body_path().as_deref(),
        )?)
    } else {
        None
    };
    let load = |seconds| wrk::Load {
        port: envoy.port(),
        path: &row.path,
        headers: &row.headers,
        script: script.as_deref(),
        seconds,
        connections: CONNECTIONS,
        cpus: WRK_CPU,
    };
    wrk::run(&load(WARMUP_SECONDS))?;

    // Counted by response class rather than downstream_rq_completed: the requests in flight
    // when wrk closes its connections complete without a response and would look like errors.
    let before = responses_by_class(&envoy)?;
    let cpu0 = cpu::cpu_ticks(envoy.pid())?;
    let report = wrk::run(&load(seconds))?;
    let cpu1 = cpu::cpu_ticks(envoy.pid())?;
    let after = responses_by_class(&envoy)?;

    let requests = served_in_class(&before, &after, row.expect_status)?;
    let expect_success = (200..400).contains(&row.expect_status);
    let wrk_wrong = if expect_success {
        report.non_2xx_3xx
    } else {
        report.requests - report.non_2xx_3xx.min(report.requests)
    };
    if wrk_wrong > 0 {
        return Err(format!(
            "wrk saw {wrk_wrong} of {} responses with an unexpected status class",
            report.requests
        ));
    }
    let proof = prove(row, &envoy)?;
    let cpu_seconds = cpu1.saturating_sub(cpu0) as f64 / ticks as f64;
    Ok(Round {
        round,
        cpu_us_per_request: cpu_seconds * 1e6 / requests as f64,
        rps: report.requests_per_second,
        requests,
        cpu_seconds,
        wrk_socket_errors: report.socket_errors,
        proof,
    })
}

/// The row's proof over the whole life of its Envoy (first request, warm-up, measured run):
/// the filter's counters against every response of the expected class. Counters flushed on a
/// timer get a bounded wait to settle; the load is over, so nothing else moves them.
fn prove(row: &Row, envoy: &Envoy) -> Result<String, String> {
    if std::env::var_os("BENCH_SHOW_STATS").is_some() {
        // For writing a row's proof: every non-zero stat but Envoy's own server/cluster ones.
        for (name, value) in envoy.stats()? {
            if value != 0 && !name.starts_with("server.") && !name.starts_with("cluster_manager.") {
                eprintln!("    {name} = {value}");
            }
        }
    }
    if !row.proof.has_counters() {
        return Ok(format!(
            "none ({})",
            row.proof.none.as_deref().unwrap_or_default()
        ));
    }
    let class = usize::from(row.expect_status / 100).saturating_sub(1);
    let deadline = Instant::now() + SETTLE;
    loop {
        let stats = envoy.stats()?;
        let served = classes(&stats)?.get(class).copied().unwrap_or_default();
        match row.proof.check(&stats, served) {
            Ok(summary) => return Ok(format!("{summary} of {served} responses")),
            Err(e) if Instant::now() > deadline => return Err(format!("proof failed: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
