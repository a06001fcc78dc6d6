//! `apim insights`' tables on the terminal.

use super::report::{Report, Stats};
use std::collections::BTreeMap;

fn row(name: &str, s: &Stats) -> String {
    let reasons: Vec<String> = s.reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
    format!(
        "  {name:<24} {:>8} {:>8} {:>7} {:>6} {:>7} {:>7} {:>9}  {}",
        s.requests,
        s.requests - s.denied - s.errors,
        s.denied,
        s.errors,
        s.percentile(0.5),
        s.percentile(0.99),
        s.graphql_cost,
        reasons.join(", ")
    )
}

fn table(title: &str, m: &BTreeMap<String, Stats>, out: &mut Vec<String>) {
    out.push(String::new());
    out.push(format!(
        "{title:<26} {:>8} {:>8} {:>7} {:>6} {:>7} {:>7} {:>9}  denials by reason",
        "requests", "allowed", "denied", "5xx", "p50 ms", "p99 ms", "gql cost"
    ));
    for (k, s) in m {
        out.push(row(k, s));
    }
}

pub fn render(r: &Report) -> String {
    let mut out = vec![format!(
        "{} requests from {} to {} ({} lines, {} unreadable)",
        r.total.requests,
        crate::product::time::rfc3339(r.from_ms / 1000),
        crate::product::time::rfc3339(r.to_ms / 1000),
        r.lines,
        r.unreadable
    )];
    table("consumer", &r.consumers, &mut out);
    table("plan", &r.plans, &mut out);
    table("route", &r.routes, &mut out);
    if !r.limits.is_empty() {
        out.push(String::new());
        out.push(format!(
            "{:<26} {:<24} {:>10} {:>10}",
            "consumer", "quota limit", "limit", "most used"
        ));
        for ((consumer, limit), u) in &r.limits {
            out.push(format!(
                "  {consumer:<24} {limit:<24} {:>10} {:>10}",
                u.requests,
                u.requests.saturating_sub(u.lowest_remaining)
            ));
        }
    }
    out.join("\n")
}
