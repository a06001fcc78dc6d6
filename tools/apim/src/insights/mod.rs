//! `apim insights ACCESS.LOG [--since WHEN] [--json] [--html REPORT.html]`: what the gateway's
//! JSON access log (written by every bootstrap `apim render` makes) says per consumer, plan and
//! route: requests, refusals by reason, GraphQL cost, latency p50/p99, the most of each quota
//! limit used; the HTML report draws requests over time per consumer and plan.

pub mod html;
pub mod record;
pub mod report;
pub mod text;

use record::MAX_LINE_BYTES;
use report::Report;
use std::io::{BufRead, BufReader, Read};
use std::process::ExitCode;

/// `--since`: an instant (`2026-12-02T00:00:00Z`) or a span back from now (`1h`, `30m`, `7d`).
pub fn since_ms(s: &str, now_ms: u64) -> Result<u64, String> {
    if let Some(ms) = crate::product::time::parse_utc_ms(s) {
        return Ok(ms);
    }
    let secs = crate::product::keys_edit::duration(s).map_err(|_| {
        format!("--since {s}: an instant (2026-12-02T00:00:00Z) or a span (1h, 30m, 7d)")
    })?;
    Ok(now_ms.saturating_sub(secs.saturating_mul(1000)))
}

/// Calls `each` with every line of `reader` (without its newline); a line over
/// [`MAX_LINE_BYTES`] is passed as `None` and the rest of it skipped.
fn for_each_line(reader: impl Read, mut each: impl FnMut(Option<&str>)) -> std::io::Result<()> {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > MAX_LINE_BYTES {
            // Skip the rest of an overlong line.
            let mut rest = Vec::new();
            reader.read_until(b'\n', &mut rest)?;
            each(None);
            continue;
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        each(std::str::from_utf8(&buf).ok());
    }
}

/// The report over the log at `path`, records from `since_ms` on.
pub fn build(path: &str, since_ms: u64) -> Result<Report, String> {
    let open = || std::fs::File::open(path).map_err(|e| format!("{path}: {e}"));
    // First pass: the time span (the series' bucket width follows from it).
    let (mut from, mut to) = (u64::MAX, 0u64);
    for_each_line(open()?, |line| {
        if let Some(r) = line
            .and_then(record::parse)
            .filter(|r| r.time_ms >= since_ms)
        {
            from = from.min(r.time_ms);
            to = to.max(r.time_ms);
        }
    })
    .map_err(|e| format!("{path}: {e}"))?;
    if from == u64::MAX {
        from = since_ms;
        to = since_ms;
    }
    let mut report = Report::new(from, to);
    for_each_line(open()?, |line| {
        report.lines += 1;
        match line.and_then(record::parse) {
            Some(r) if r.time_ms >= since_ms => report.add(&r),
            Some(_) => {}
            None => report.unreadable += 1,
        }
    })
    .map_err(|e| format!("{path}: {e}"))?;
    Ok(report)
}

pub fn run(path: &str, since: Option<&str>, json: bool, html: Option<&str>) -> ExitCode {
    let now_ms = crate::product::time::now_secs() * 1000;
    let since = match since.map(|s| since_ms(s, now_ms)).transpose() {
        Ok(s) => s.unwrap_or(0),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let report = match build(path, since) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(out) = html {
        if let Err(e) = std::fs::write(out, html::render(&report)) {
            eprintln!("{out}: {e}");
            return ExitCode::from(2);
        }
        eprintln!("{out}: the report (open it in a browser)");
    }
    if json {
        crate::write_stdout(&format!("{}\n", report.to_json()));
    } else {
        crate::write_stdout(&format!("{}\n", text::render(&report)));
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> String {
        format!("{}/tests/insights/access.log", env!("CARGO_MANIFEST_DIR"))
    }

    /// tests/insights/access.log: 11 requests of alice (gold), bob (silver), ci-bot (gold, by
    /// token) and keyless callers over four minutes, and one line that is not a record.
    #[test]
    fn the_fixture_log_reports_per_consumer_plan_route_and_limit() {
        let j = build(&fixture(), 0).unwrap().to_json();
        assert_eq!(
            (j["lines"].as_u64(), j["unreadable"].as_u64()),
            (Some(12), Some(1))
        );
        let alice = &j["consumers"]["alice"];
        assert_eq!(alice["requests"], 4);
        assert_eq!(alice["denials"]["graphql-guard:MAX_DEPTH_EXCEEDED"], 1);
        assert_eq!(
            (alice["p50_ms"].as_u64(), alice["p99_ms"].as_u64()),
            (Some(4), Some(12))
        );
        assert_eq!(alice["graphql_cost"], 40);
        assert_eq!(
            j["consumers"]["ci-bot"]["auth"]["token"], 2,
            "ci-bot came with tokens"
        );
        assert_eq!(
            j["consumers"]["(none)"]["denials"]["api-key-auth:missing_api_key"],
            1
        );
        assert_eq!(
            j["plans"]["gold"]["errors"], 1,
            "ci-bot's 503 came from upstream, no filter"
        );
        assert_eq!(
            j["routes"]["quota-demo"]["denials"]["quota:quota_exceeded"],
            1
        );
        let limit = |c: &str| {
            j["limits"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["consumer"] == c)
                .cloned()
                .unwrap()
        };
        assert_eq!(limit("ci-bot")["most_used"], 10);
        assert_eq!(limit("alice")["lowest_remaining"], 97);
        assert_eq!(j["bucket_seconds"], 10, "4 minutes in 10 s buckets");
        assert_eq!(
            j["series"]["plans"]["silver"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(serde_json::Value::as_u64)
                .sum::<u64>(),
            3
        );
        // --since keeps the later requests only.
        let late = build(
            &fixture(),
            crate::product::time::parse_utc_ms("2026-12-01T10:03:00Z").unwrap(),
        )
        .unwrap();
        assert_eq!(late.total.requests, 3);
    }

    #[test]
    fn since_takes_an_instant_or_a_span() {
        assert_eq!(since_ms("1970-01-01T00:00:01Z", 0), Ok(1000));
        assert_eq!(since_ms("1h", 7_200_000), Ok(3_600_000));
        assert!(since_ms("yesterday", 0).is_err());
    }

    #[test]
    fn overlong_and_blank_lines() {
        let text = format!("a\n\n{}\nb", "x".repeat(MAX_LINE_BYTES + 10));
        let mut seen = Vec::new();
        for_each_line(text.as_bytes(), |l| seen.push(l.map(str::to_string))).unwrap();
        assert_eq!(seen, [Some("a".to_string()), None, Some("b".to_string())]);
    }
}
