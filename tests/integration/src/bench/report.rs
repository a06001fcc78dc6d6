//! Bench results: per-round figures, per-row medians, the printed table and `e2e.json`.

use std::path::Path;

use serde::Serialize;

use super::median;

/// One measured run of one row.
#[derive(Clone, Debug, Serialize)]
pub struct Round {
    pub round: u32,
    pub cpu_us_per_request: f64,
    pub rps: f64,
    /// Requests Envoy completed in the load window (admin counter delta).
    pub requests: u64,
    pub cpu_seconds: f64,
    pub wrk_socket_errors: u64,
    /// What the row's counters proved (`api_key_auth.allowed=1234 of 1234 responses`).
    pub proof: String,
}

/// A row's summary: medians over its rounds. A row with any error is invalid and gets no
/// figures, so a broken filter never shows up as a fast one.
#[derive(Clone, Debug, Serialize)]
pub struct RowResult {
    pub name: String,
    pub valid: bool,
    pub errors: Vec<String>,
    pub cpu_us_per_request: Option<f64>,
    /// Median CPU µs/request minus the `none` row's.
    pub added_us: Option<f64>,
    pub rps: Option<f64>,
    pub rounds: Vec<Round>,
}

impl RowResult {
    pub fn new(name: &str, rounds: Vec<Round>, errors: Vec<String>) -> RowResult {
        let valid = errors.is_empty() && !rounds.is_empty();
        let pick = |f: fn(&Round) -> f64| {
            if valid {
                median(&rounds.iter().map(f).collect::<Vec<_>>())
            } else {
                None
            }
        };
        RowResult {
            name: name.to_owned(),
            valid,
            errors,
            cpu_us_per_request: pick(|r| r.cpu_us_per_request),
            added_us: None,
            rps: pick(|r| r.rps),
            rounds,
        }
    }
}

/// Sets `added_us` on every valid row from the `none` row's median.
pub fn fill_added(results: &mut [RowResult]) {
    let baseline = results
        .iter()
        .find(|r| r.name == "none")
        .and_then(|r| r.cpu_us_per_request);
    for row in results.iter_mut() {
        row.added_us = baseline.zip(row.cpu_us_per_request).map(|(b, c)| c - b);
    }
}

fn fmt(value: Option<f64>, signed: bool) -> String {
    match value {
        Some(v) if signed => format!("{v:+.1}"),
        Some(v) => format!("{v:.1}"),
        None => "-".into(),
    }
}

/// A plain-text table, one line per row, with the per-round CPU figures.
pub fn table(results: &[RowResult]) -> String {
    let width = results
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:<width$}  {:>12}  {:>9}  {:>9}  per-round CPU µs/req\n",
        "row", "CPU µs/req", "added µs", "req/s"
    );
    for row in results {
        let rounds: Vec<String> = row
            .rounds
            .iter()
            .map(|r| format!("{:.1}", r.cpu_us_per_request))
            .collect();
        let status = if row.valid { "" } else { "  INVALID" };
        out.push_str(&format!(
            "{:<width$}  {:>12}  {:>9}  {:>9}  {}{status}\n",
            row.name,
            fmt(row.cpu_us_per_request, false),
            fmt(row.added_us, true),
            row.rps.map_or("-".into(), |r| format!("{r:.0}")),
            rounds.join(" "),
        ));
    }
    out
}

pub fn write_json(path: &Path, results: &[RowResult]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let json = serde_json::to_string_pretty(results).map_err(|e| e.to_string())?;
    std::fs::write(path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(cpu: f64) -> Round {
        Round {
            round: 1,
            cpu_us_per_request: cpu,
            rps: 1000.0,
            requests: 10,
            cpu_seconds: 0.1,
            wrk_socket_errors: 0,
            proof: String::new(),
        }
    }

    #[test]
    fn medians_and_added() {
        let mut results = vec![
            RowResult::new("none", vec![round(20.0), round(24.0), round(22.0)], vec![]),
            RowResult::new("x", vec![round(30.0), round(31.0), round(29.0)], vec![]),
            RowResult::new("broken", vec![round(1.0)], vec!["status 500".into()]),
        ];
        fill_added(&mut results);
        assert_eq!(results[0].cpu_us_per_request, Some(22.0));
        assert_eq!(results[1].added_us, Some(8.0));
        assert_eq!(results[2].cpu_us_per_request, None);
        assert!(table(&results).contains("INVALID"));
    }
}
