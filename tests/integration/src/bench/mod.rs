//! Pieces of the end-to-end CPU-per-request bench (`src/bin/e2e_bench.rs`): the row table, wrk,
//! process CPU time, and the report. The method is in DESIGN.md ("Performance method"). The
//! instructions bench (`src/bin/instructions_bench.rs`) shares the rows and adds `callgrind` and
//! `keepalive`.

pub mod callgrind;
pub mod cpu;
pub mod keepalive;
pub mod proof;
pub mod report;
pub mod rows;
pub mod vm_failure;
pub mod wrk;

/// Median of a non-empty list (mean of the two middle values for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => sorted.get(mid).copied(),
        _ => Some((sorted.get(mid - 1)? + sorted.get(mid)?) / 2.0),
    }
}

/// Responses of `expect_status`'s class between two snapshots of Envoy's per-class counters
/// (1xx..5xx); an error naming the other classes if any other response was sent.
pub fn served_in_class(
    before: &[u64; 5],
    after: &[u64; 5],
    expect_status: u16,
) -> Result<u64, String> {
    let expected = usize::from(expect_status / 100).saturating_sub(1);
    let mut served = 0;
    let mut wrong = Vec::new();
    for (class, (b, a)) in before.iter().zip(after).enumerate() {
        let delta = a.saturating_sub(*b);
        if class == expected {
            served = delta;
        } else if delta > 0 {
            wrong.push(format!("{delta} x {}xx", class + 1));
        }
    }
    if !wrong.is_empty() {
        return Err(format!(
            "unexpected responses ({}), expected only {}xx",
            wrong.join(", "),
            expect_status / 100
        ));
    }
    if served == 0 {
        return Err("Envoy sent no response during the run".into());
    }
    Ok(served)
}

/// Whether an executable is on PATH (the bench needs wrk and taskset).
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn served_counts_only_the_expected_class() {
        let before = [0, 10, 0, 5, 0];
        assert_eq!(served_in_class(&before, &[0, 110, 0, 5, 0], 200), Ok(100));
        assert_eq!(served_in_class(&before, &[0, 10, 0, 50, 0], 401), Ok(45));
        let err = served_in_class(&before, &[0, 110, 0, 5, 3], 200).unwrap_err();
        assert!(err.contains("3 x 5xx"), "{err}");
        assert!(served_in_class(&before, &before, 200).is_err());
    }
}
