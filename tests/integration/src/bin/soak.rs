//! The soak (`make soak`, not in CI by default): the shipped chain (`envoy/gateway.yaml`, ports
//! moved to free ones, the demo upstream replaced by the harness's echo upstream) on Envoy with
//! 2 workers, under a mix of valid and hostile traffic (`apim_integration::soak::cases`) from a
//! few threads for a bounded time. It fails (exit 1) if:
//! - any answer breaks its case's rule: a valid case gets a status it should not (5xx included,
//!   but for the one case whose upstream answers 503 on purpose), a hostile case reaches the
//!   upstream, gets a 2xx or a 5xx (a filter's `not_configured` 503 among them);
//! - a request gets no answer at all;
//! - a Wasm VM failed: Envoy's own `wasm` stats with failure in their name moved, or its log has
//!   a `[critical]` line or an `[error]` from the Wasm runtime; or Envoy is no longer ready;
//! - quota's counters disagree with what the clients saw: `apim.quota.allowed` must equal the
//!   answers that came from the upstream (every request quota admitted, none it did not) and
//!   `apim.quota.limited` the 429 `quota_exceeded` answers;
//! - Envoy's resident memory grew past the bound (see `RSS_GROWTH_MIB`).
//!
//! Env: SOAK_SECONDS (120), SOAK_THREADS (4), SOAK_RPS (total request rate, 300),
//! SOAK_RSS_GROWTH_MIB, SOAK_RSS_MAX_MIB (the bounds below), SOAK_SKIP (comma-separated parts
//! of case names to leave out, to look at the rest alone).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apim_integration::knobs;
use apim_integration::soak::cases::{self, Case, Expect};
use apim_integration::soak::{self, Tally};
use apim_integration::{repo_root, Envoy};

/// The bound on resident memory growth, from the end of the warm-up to the end of the run.
///
/// After the warm-up every cache the chain has is warm and bounded: the V8 heaps of the
/// 3 × 5 VMs (a main-thread VM and one per worker for each filter) have been through their first
/// collections, quota's shared-data slots hold every key the mix uses (a handful of consumers ×
/// a few windows), scope-authz's token cache is keyed by the few tokens the mix sends, Envoy's
/// stats are a fixed set (no per-request names). What may still grow is allocator slack and
/// V8's heap settling, a few MiB. A leak of 1 KiB per request at the default 300 req/s over
/// the 100 s after the warm-up would add ~29 MiB, so 24 MiB of growth is the line between noise
/// and a leak.
const RSS_GROWTH_MIB: u64 = 24;
/// An absolute ceiling: the whole chain (2 workers, 5 filters) sat at ~157 MiB resident here,
/// idle and under load alike; twice that is a runaway whatever the start was.
const RSS_MAX_MIB: u64 = 320;
/// Part of the run spent warming up before the reference RSS is read.
const WARMUP_FRACTION: u64 = 6;
const RSS_SAMPLE: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    match run() {
        Ok(true) => {
            println!("soak: PASSED");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("soak: FAILED (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(2)
        }
    }
}

/// The shipped gateway with free ports and the harness's echo upstream (as tests/chain.rs).
fn gateway_template() -> Result<String, String> {
    let path = repo_root().join("envoy/gateway.yaml");
    let shipped = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    for fixed in [
        "port_value: 10000",
        "port_value: 9901",
        "port_value: 10080",
        "path: /dev/stdout",
    ] {
        if shipped.matches(fixed).count() != 1 {
            return Err(format!("envoy/gateway.yaml: expected one `{fixed}`"));
        }
    }
    // The access log is formatted and written as shipped, to /dev/null: hours of it would
    // otherwise fill the scratch folder.
    Ok(shipped
        .replace("port_value: 10000", "port_value: 0")
        .replace("port_value: 9901", "port_value: 0")
        .replace("port_value: 10080", "port_value: {{UPSTREAM_PORT}}")
        .replace("path: /dev/stdout", "path: /dev/null"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn run() -> Result<bool, String> {
    let seconds = knobs::positive("SOAK_SECONDS", 120)?;
    let threads = knobs::positive("SOAK_THREADS", 4)?;
    let rps = knobs::positive("SOAK_RPS", 300)?;
    let growth_bound = knobs::positive("SOAK_RSS_GROWTH_MIB", RSS_GROWTH_MIB)?;
    let max_bound = knobs::positive("SOAK_RSS_MAX_MIB", RSS_MAX_MIB)?;
    if !apim_integration::bench::on_path("curl") {
        return Err("`curl` not found on PATH (the HTTP/2 cases use it)".into());
    }

    let envoy = Envoy::builder()
        .concurrency(2)
        .log_level("warn")
        .start(&gateway_template()?)?;
    let port = envoy.port();
    let pid = envoy.pid();
    let tokens = soak::mint_tokens(&repo_root().join("target/debug/apim"))?;
    // SOAK_SKIP: comma-separated parts of case names to leave out (to look at the rest alone).
    let skip: Vec<String> = std::env::var("SOAK_SKIP")
        .unwrap_or_default()
        .split(',')
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    let (skipped, kept): (Vec<Case>, Vec<Case>) = cases::all(&tokens)
        .into_iter()
        .partition(|c| skip.iter().any(|p| c.name.contains(p.as_str())));
    if !skipped.is_empty() {
        let names: Vec<&str> = skipped.iter().map(|c| c.name).collect();
        println!("soak: SOAK_SKIP leaves out: {}", names.join("; "));
    }
    let cases = Arc::new(kept);
    let schedule = Arc::new(cases::schedule(&cases));
    println!(
        "soak: envoy/gateway.yaml on Envoy pid {pid}, 2 workers, port {port}; {} cases, \
         {threads} threads, {rps} req/s for {seconds} s",
        cases.len()
    );

    let stats0 = envoy.stats()?;
    let rss_idle = soak::rss_kib(pid)?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let interval = Duration::from_secs_f64(threads as f64 / rps as f64);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let cases = Arc::clone(&cases);
            let schedule = Arc::clone(&schedule);
            std::thread::spawn(move || load(&cases, &schedule, t, port, interval, deadline))
        })
        .collect();

    // RSS: the reference after the warm-up, then samples until the end.
    let warm_at = started + Duration::from_secs(seconds / WARMUP_FRACTION);
    let mut rss_warm = None;
    let mut samples: Vec<u64> = Vec::new();
    while Instant::now() < deadline {
        std::thread::sleep(RSS_SAMPLE.min(deadline.saturating_duration_since(Instant::now())));
        let now = soak::rss_kib(pid)?;
        if rss_warm.is_none() && Instant::now() >= warm_at {
            rss_warm = Some(now);
        }
        samples.push(now);
    }
    let mut tally = Tally::default();
    for w in workers {
        tally.merge(w.join().map_err(|_| "a load thread panicked".to_string())?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rss_end = soak::rss_kib(pid)?;
    let rss_warm = rss_warm.unwrap_or(rss_idle);
    let stats1 = envoy.stats()?;
    let ready = envoy.admin_get("/ready").is_ok();
    let log = envoy.log();

    let mut ok = true;
    println!(
        "\n{} requests in {elapsed:.0} s ({:.0} req/s)\n",
        tally.requests,
        tally.requests as f64 / elapsed
    );
    ok &= report_cases(&cases, &tally);
    ok &= report_quota(&stats0, &stats1, &tally);
    ok &= report_vms(&stats0, &stats1, &log, ready);

    let growth = rss_end.saturating_sub(rss_warm);
    let peak = samples.iter().copied().max().unwrap_or(rss_end);
    println!(
        "\nEnvoy RSS: idle {:.1} MiB, after warm-up {:.1} MiB, end {:.1} MiB, peak {:.1} MiB; \
         growth after warm-up {:.1} MiB (bound {growth_bound} MiB), ceiling {max_bound} MiB",
        mib(rss_idle),
        mib(rss_warm),
        mib(rss_end),
        mib(peak),
        mib(growth),
    );
    if growth > growth_bound * 1024 || peak > max_bound * 1024 {
        println!("  FAIL: Envoy's memory grew past the bound");
        ok = false;
    }
    Ok(ok)
}

/// One load thread: walks the schedule from its own offset at its share of the rate.
fn load(
    cases: &[Case],
    schedule: &[usize],
    thread: u64,
    port: u16,
    interval: Duration,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let offset = usize::try_from(thread).unwrap_or_default() * 7;
    let mut next = Instant::now();
    let mut k = 0usize;
    while Instant::now() < deadline {
        let Some(&index) = schedule.get((offset + k) % schedule.len().max(1)) else {
            break;
        };
        k += 1;
        if let Some(case) = cases.get(index) {
            tally.record(index, case, soak::send(case, port));
        }
        next += interval;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now; // behind: do not burst to catch up
        }
    }
    tally
}

fn report_cases(cases: &[Case], tally: &Tally) -> bool {
    let mut ok = true;
    println!("{:<48} {:<8} statuses (count)", "case", "rule");
    for (i, case) in cases.iter().enumerate() {
        let statuses = tally.statuses.get(&i).cloned().unwrap_or_default();
        let rule = match case.expect {
            Expect::Valid(_) => "valid",
            Expect::Exact(_) => "exact",
            Expect::Hostile { .. } => "hostile",
        };
        let list: Vec<String> = statuses
            .iter()
            .map(|(s, n)| {
                if *s == 0 {
                    format!("no answer/reset x{n}")
                } else {
                    format!("{s} x{n}")
                }
            })
            .collect();
        println!("{:<48} {rule:<8} {}", case.name, list.join(", "));
        if let Some((n, msgs)) = tally.violations.get(&i) {
            ok = false;
            println!(
                "  FAIL: {n} answer(s) broke the rule, e.g. {}",
                msgs.join(" | ")
            );
        }
        if let Some((n, msgs)) = tally.errors.get(&i) {
            ok = false;
            println!(
                "  FAIL: {n} request(s) got no answer, e.g. {}",
                msgs.join(" | ")
            );
        }
        if statuses.is_empty() {
            ok = false;
            println!("  FAIL: never sent (run longer)");
        }
    }
    ok
}

fn report_quota(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, t: &Tally) -> bool {
    let d = |name: &str| soak::delta(before, after, &format!("wasmcustom.apim.quota.{name}"));
    let (allowed, limited, errors) = (d("allowed"), d("limited"), d("errors"));
    println!(
        "\nquota: allowed {allowed} vs {} answers from the upstream; limited {limited} vs {} \
         quota_exceeded answers (+ {} HTTP/2 resets); errors {errors}; passed {}; key_missing {}",
        t.upstream_answers,
        t.quota_limited,
        t.resets,
        d("passed"),
        d("key_missing"),
    );
    let mut ok = true;
    if allowed != t.upstream_answers {
        ok = false;
        println!(
            "  FAIL: quota admitted {allowed} requests but {} reached the upstream",
            t.upstream_answers
        );
        let refusals: Vec<String> = t
            .guard_refusals
            .iter()
            .map(|((status, code), n)| format!("{status} {code} x{n}"))
            .collect();
        println!(
            "    graphql-guard's refusals, for comparison (a quota that charges before the \
             guard's verdict, issue 10 item 10, admits those too): {}",
            refusals.join(", ")
        );
    }
    // An HTTP/2 answer lost to a stream reset may have been a quota 429: it bounds the count.
    if limited < t.quota_limited || limited > t.quota_limited + t.resets {
        ok = false;
        println!(
            "  FAIL: quota counted {limited} refusals, the clients saw {} (+ up to {} HTTP/2 \
             resets)",
            t.quota_limited, t.resets
        );
    }
    if errors != 0 {
        ok = false;
        println!("  FAIL: quota took its error path {errors} times");
    }
    ok
}

fn report_vms(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    log: &str,
    ready: bool,
) -> bool {
    let mut ok = true;
    let runtime: Vec<String> = after
        .iter()
        .filter(|(n, _)| n.contains("wasm") && !n.starts_with("wasmcustom."))
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    println!("\nEnvoy's Wasm stats at the end: {}", runtime.join(", "));
    let created = "wasm.envoy.wasm.runtime.v8.created";
    let recreated = soak::delta(before, after, created);
    if recreated > 0 {
        ok = false;
        println!(
            "  FAIL: {recreated} Wasm VM(s) created during the run (a VM failed and was replaced)"
        );
    }
    let failures = soak::wasm_failures(before, after);
    if !failures.is_empty() {
        ok = false;
        println!("  FAIL: Wasm failure stats moved: {}", failures.join(", "));
    }
    let lines = soak::vm_failure_lines(log);
    if !lines.is_empty() {
        ok = false;
        println!(
            "  FAIL: {} VM failure line(s) in Envoy's log, e.g.:",
            lines.len()
        );
        for l in lines.iter().take(5) {
            println!("    {l}");
        }
    }
    let plugin_errors = log
        .lines()
        .filter(|l| l.contains("[error]") && l.contains("wasm log"))
        .count();
    println!("filters' own [error] log lines: {plugin_errors}");
    if !ready {
        ok = false;
        println!("  FAIL: Envoy no longer answers /ready");
    }
    ok
}
