//! Instructions per request under callgrind: the steady metric beside the CPU bench's µs, for
//! every row in `tests/integration/bench/rows.json` and `rows.d/*.json` (`make
//! bench-instructions`; `make bench` runs it after the CPU bench).
//!
//! Per row and run: a fresh Envoy with one worker under `valgrind --tool=callgrind` (flags and
//! why: `apim_integration::bench::callgrind`), uninstrumented until ready; one checked request;
//! then on ONE keep-alive connection, sequentially: a warm-up, two idle windows (0.5 s and
//! 2.5 s, no traffic: the background rate of timers), a short window of N_short requests and a
//! long one of N_long. Each window is `callgrind_control --zero`, the requests (or the wait),
//! `--dump`, and counts the whole process (every thread). Instructions per request =
//! (Ir(long) − Ir(short)) / (N_long − N_short) − background: start-up, warm-up and what every
//! window pays once cancel; background is the idle rate times the long window's extra time per
//! extra request (timers run by the clock, and under valgrind a request takes 0.5 to 2 ms).
//! The row's config gets `stats_flush_interval: 299s` (unless it sets one): Envoy's 5 s stats
//! flush is not request work and would land in a window or not by chance.
//!
//! Validity, as in the CPU bench: every response must have the row's exact status, Envoy's own
//! count of responses of that class must equal the requests sent, and the row's `proof` counters
//! must account for them; otherwise the row is INVALID (no figure, exit code 1). So is a run
//! whose Envoy logged a Wasm VM it could not create (`bench::vm_failure`: Envoy then leaves that
//! filter out of the chain, FAIL_CLOSED or not); valgrind 3.19 has room for 14 V8 instances,
//! three per module with one worker, so a row of five modules (`chain-modules`) cannot run
//! here. Each row runs BENCH_INSTR_RUNS times (fresh Envoy each); runs that differ by more
//! than 1 % make the row INVALID too.
//!
//! Env: BENCH_ROWS (comma-separated; `none` always runs as the baseline), BENCH_INSTR_RUNS (2),
//! BENCH_INSTR_WARMUP (100), BENCH_INSTR_SHORT (100), BENCH_INSTR_LONG (600),
//! BENCH_INSTR_DUMPS (a directory: each run's callgrind dumps are kept in
//! `<dir>/<row>-<run>/`, the long window being `callgrind.out.<n>` of the highest n, for
//! `callgrind_annotate`; by default they go to a temporary directory, removed).
//!
//! Output: a table on stdout and `target/bench/instructions.json`:
//! `{"method": {command, runs, warmup, short, long, tolerance}, "rows": [{name, valid, errors,
//! instructions_per_request, added, spread, runs: [{run, instructions_per_request,
//! raw_per_request, background_per_request, idle_rate, idle_short, idle_long, short, long,
//! proof}]}]}`. A row's `instructions_per_request` is the mean of its runs', `added` that minus
//! the `none` row's, `spread` (max − min) / mean of the runs; a run's figure is
//! `raw_per_request` (the window difference) minus `background_per_request`; `idle_rate` is
//! background instructions per second; the windows are `{requests, instructions, seconds}`
//! (seconds of wall clock under valgrind). Figures are null for an invalid row.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use apim_integration::bench::callgrind::{self, Control, Window};
use apim_integration::bench::keepalive::Connection;
use apim_integration::bench::on_path;
use apim_integration::bench::rows::{self, Row};
use apim_integration::bench::vm_failure;
use apim_integration::knobs;
use apim_integration::{repo_root, Envoy, Request};
use serde::Serialize;

const STAT_PREFIX: &str = "http.ingress";
const TOLERANCE: f64 = 0.01;
/// Envoy under valgrind takes 15 s to 90 s to start on a busy machine.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// Two idle windows (no traffic) measure the background rate of timers.
const IDLE_SHORT: Duration = Duration::from_millis(500);
const IDLE_LONG: Duration = Duration::from_millis(2500);
/// Appended to a row's config that does not set it (see the doc above).
const STATS_FLUSH: &str = "\nstats_flush_interval: 299s\n";
/// Bounds the wait for counters a filter flushes on a timer (scope-authz: every 500 ms).
const SETTLE: Duration = Duration::from_secs(20);

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!(
                "instructions_bench: some rows are INVALID (see errors above): no figures for them"
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("instructions_bench: {e}");
            ExitCode::from(2)
        }
    }
}

#[derive(Clone, Debug, Serialize)]
struct Method {
    command: String,
    runs: u64,
    warmup: u64,
    short: u64,
    long: u64,
    tolerance: f64,
}

#[derive(Clone, Debug, Serialize)]
struct Run {
    run: u64,
    instructions_per_request: f64,
    raw_per_request: f64,
    background_per_request: f64,
    idle_rate: f64,
    idle_short: Window,
    idle_long: Window,
    short: Window,
    long: Window,
    proof: String,
}

#[derive(Clone, Debug, Serialize)]
struct RowResult {
    name: String,
    valid: bool,
    errors: Vec<String>,
    instructions_per_request: Option<f64>,
    added: Option<f64>,
    spread: Option<f64>,
    runs: Vec<Run>,
}

#[derive(Serialize)]
struct Output<'a> {
    method: &'a Method,
    rows: &'a [RowResult],
}

/// Ok(false) when some row is invalid.
fn run() -> Result<bool, String> {
    for tool in ["valgrind", "callgrind_control"] {
        if !on_path(tool) {
            return Err(format!(
                "`{tool}` not found on PATH: run `apt-get install valgrind` (`make bench-instructions` does)"
            ));
        }
    }
    let method = Method {
        command: "valgrind --tool=callgrind --smc-check=all-non-file --instr-atstart=no envoy \
                  --concurrency 1"
            .into(),
        runs: knobs::positive("BENCH_INSTR_RUNS", 2)?,
        warmup: knobs::positive("BENCH_INSTR_WARMUP", 100)?,
        short: knobs::positive("BENCH_INSTR_SHORT", 100)?,
        long: knobs::positive("BENCH_INSTR_LONG", 600)?,
        tolerance: TOLERANCE,
    };
    if method.long <= method.short {
        return Err("BENCH_INSTR_LONG must be larger than BENCH_INSTR_SHORT".into());
    }
    let selection = std::env::var("BENCH_ROWS").unwrap_or_default();
    let rows = rows::select(rows::load_rows()?, &selection)?;
    let envoy = callgrind::envoy_executable()?;

    let started = Instant::now();
    let mut results = Vec::new();
    for row in &rows {
        let mut runs = Vec::new();
        let mut errors = Vec::new();
        for n in 1..=method.runs {
            eprint!("run {n}/{}: {:<24}", method.runs, row.name);
            let t = Instant::now();
            match measure(row, n, &method, &envoy) {
                Ok(r) => {
                    eprintln!(
                        " {:>9.0} instructions/req  (raw {:.0}, background {:.0}/req, {:.0} s)  \
                         proof: {}",
                        r.instructions_per_request,
                        r.raw_per_request,
                        r.background_per_request,
                        t.elapsed().as_secs_f64(),
                        r.proof
                    );
                    runs.push(r);
                }
                Err(e) => {
                    eprintln!(" INVALID: {e}");
                    errors.push(format!("run {n}: {e}"));
                }
            }
        }
        results.push(summarize(&row.name, runs, errors));
    }
    fill_added(&mut results);
    println!(
        "\nInstructions per request under callgrind (one worker, {} runs, windows of {} and {} \
         keep-alive requests after {} warm-up; {:.0} min)\n{}",
        method.runs,
        method.short,
        method.long,
        method.warmup,
        started.elapsed().as_secs_f64() / 60.0,
        table(&results)
    );
    let out = repo_root().join("target/bench/instructions.json");
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let json = serde_json::to_string_pretty(&Output {
        method: &method,
        rows: &results,
    })
    .map_err(|e| e.to_string())?;
    std::fs::write(&out, json).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(results.iter().all(|r| r.valid))
}

fn summarize(name: &str, runs: Vec<Run>, mut errors: Vec<String>) -> RowResult {
    let figures: Vec<f64> = runs.iter().map(|r| r.instructions_per_request).collect();
    let spread = callgrind::spread(&figures);
    if !callgrind::agree(&figures, TOLERANCE) {
        errors.push(format!(
            "runs disagree by {:.2} % (> {:.0} %): {}",
            spread * 100.0,
            TOLERANCE * 100.0,
            figures
                .iter()
                .map(|f| format!("{f:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let valid = errors.is_empty() && !runs.is_empty();
    let mean = figures.iter().sum::<f64>() / figures.len().max(1) as f64;
    RowResult {
        name: name.to_owned(),
        valid,
        errors,
        instructions_per_request: valid.then_some(mean),
        added: None,
        spread: valid.then_some(spread),
        runs,
    }
}

fn fill_added(results: &mut [RowResult]) {
    let base = results
        .iter()
        .find(|r| r.name == "none")
        .and_then(|r| r.instructions_per_request);
    for r in results.iter_mut() {
        r.added = match (r.instructions_per_request, base) {
            (Some(v), Some(b)) => Some(v - b),
            _ => None,
        };
    }
}

fn table(results: &[RowResult]) -> String {
    let mut out = format!(
        "{:<24} {:>10} {:>10} {:>7} {:>10} {:>10} {:>8}\n",
        "row", "run 1", "run 2", "spread", "instr/req", "added", "bg/req"
    );
    for r in results {
        let run = |i: usize| {
            r.runs
                .get(i)
                .map_or("-".into(), |x| format!("{:.0}", x.instructions_per_request))
        };
        let bg = r
            .runs
            .iter()
            .map(|x| x.background_per_request)
            .fold(0.0, f64::max);
        match (r.instructions_per_request, r.added, r.spread) {
            (Some(v), added, Some(s)) => out.push_str(&format!(
                "{:<24} {:>10} {:>10} {:>6.2}% {:>10.0} {:>10} {:>8.0}\n",
                r.name,
                run(0),
                run(1),
                s * 100.0,
                v,
                added.map_or("-".into(), |a| format!("{a:+.0}")),
                bg
            )),
            _ => out.push_str(&format!(
                "{:<24} INVALID: {}\n",
                r.name,
                r.errors.join("; ")
            )),
        }
    }
    out
}

/// The row's config template, with the stats flush moved out of the windows.
fn config(row: &Row) -> Result<String, String> {
    let mut template = row.config_template()?;
    if !template.contains("stats_flush_interval") {
        template.push_str(STATS_FLUSH);
    }
    Ok(template)
}

/// The row's request, keep-alive or not.
fn request_bytes(row: &Row, keep_alive: bool) -> Result<Request, String> {
    let mut request = Request::new(&row.method, &row.path);
    for (name, value) in &row.headers {
        request = request.header(name, value);
    }
    if keep_alive {
        request = request.header("connection", "keep-alive");
    }
    if let Some(body) = row.body()? {
        request = request.body(body);
    }
    Ok(request)
}

fn measure(
    row: &Row,
    run: u64,
    method: &Method,
    envoy_exe: &std::path::Path,
) -> Result<Run, String> {
    let dumps = tempfile::Builder::new()
        .prefix("apim-callgrind-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let kept = match std::env::var("BENCH_INSTR_DUMPS") {
        Ok(dir) if !dir.trim().is_empty() => {
            let dir = std::path::Path::new(dir.trim()).join(format!("{}-{run}", row.name));
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            Some(dir)
        }
        _ => None,
    };
    let dump_dir = kept.as_deref().unwrap_or(dumps.path()).to_owned();
    let envoy = Envoy::builder()
        .concurrency(1)
        .log_level("warn")
        .ready_timeout(READY_TIMEOUT)
        .program(callgrind::valgrind_command(envoy_exe, &dump_dir))
        .start(&config(row)?)?;
    let port = envoy.port();

    // One request on its own connection first: a misconfigured row fails here with the body.
    let first = request_bytes(row, false)?.send(port)?;
    if first.status != row.expect_status {
        return Err(format!(
            "first request got status {} (expected {}): {}",
            first.status,
            row.expect_status,
            first.text()
        ));
    }

    no_failed_vm(&envoy)?;

    let control = Control {
        pid: envoy.pid(),
        out_dir: dump_dir.clone(),
        keep_dumps: kept.is_some(),
    };
    control.instrument(true)?;
    let request = request_bytes(row, true)?.to_bytes();
    let mut connection = Connection::open(port)?;
    connection.send_many(&request, method.warmup, row.expect_status)?;

    let idle = |wait: Duration| -> Result<Window, String> {
        control.zero()?;
        let t = Instant::now();
        std::thread::sleep(wait);
        Ok(Window {
            requests: 0,
            instructions: control.dump()?,
            seconds: t.elapsed().as_secs_f64(),
        })
    };
    let idle_short = idle(IDLE_SHORT)?;
    let idle_long = idle(IDLE_LONG)?;
    let idle_rate = callgrind::idle_rate(&idle_short, &idle_long)
        .ok_or("the idle windows did not measure a rate")?;
    let mut window = |requests: u64| -> Result<Window, String> {
        control.zero()?;
        let seconds = connection.send_many(&request, requests, row.expect_status)?;
        Ok(Window {
            requests,
            instructions: control.dump()?,
            seconds,
        })
    };
    let short = window(method.short)?;
    let long = window(method.long)?;
    // The admin reads below are faster uninstrumented.
    control.instrument(false)?;

    let sent = 1 + method.warmup + method.short + method.long;
    no_failed_vm(&envoy)?;
    let proof = prove(row, &envoy, sent)?;
    let raw = callgrind::per_request(&short, &long)?;
    let background = callgrind::background_per_request(idle_rate, &short, &long)
        .ok_or("the windows measured no extra requests")?;
    Ok(Run {
        run,
        instructions_per_request: raw - background,
        raw_per_request: raw,
        background_per_request: background,
        idle_rate,
        idle_short,
        idle_long,
        short,
        long,
        proof,
    })
}

/// A Wasm VM Envoy could not create means its filter was left out of the chain (status and the
/// other filters' counters do not show it; see `bench::vm_failure`): no figure for the row.
fn no_failed_vm(envoy: &Envoy) -> Result<(), String> {
    match vm_failure::failed_vm(&envoy.log()) {
        None => Ok(()),
        Some(line) => Err(format!(
            "Envoy could not create a Wasm VM, so it ran the chain without that filter (under \
             valgrind: more than 14 V8 instances, 3 per module with one worker, pass valgrind's \
             128 GiB address space): {line}"
        )),
    }
}

/// Envoy's count of responses in the row's status class must be exactly the requests sent, and
/// the row's proof counters must account for them (bounded wait for counters flushed on a
/// timer).
fn prove(row: &Row, envoy: &Envoy, sent: u64) -> Result<String, String> {
    let class = format!("{STAT_PREFIX}.downstream_rq_{}xx", row.expect_status / 100);
    let deadline = Instant::now() + SETTLE;
    loop {
        let stats: BTreeMap<String, u64> = envoy.stats()?;
        let served = stats.get(&class).copied().unwrap_or_default();
        if served != sent {
            return Err(format!(
                "Envoy counted {served} responses in {class}, the bench sent {sent} requests"
            ));
        }
        if !row.proof.has_counters() {
            return Ok(format!(
                "none ({})",
                row.proof.none.as_deref().unwrap_or_default()
            ));
        }
        match row.proof.check(&stats, served) {
            Ok(summary) => return Ok(format!("{summary} of {served} responses")),
            Err(e) if Instant::now() > deadline => return Err(format!("proof failed: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}
