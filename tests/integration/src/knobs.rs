//! Settings the bench and soak binaries take from the environment (`BENCH_ROUNDS=3`, …): one
//! parser, so every knob refuses the same things (zero, negatives, words) with the same message.

use std::str::FromStr;

/// The positive number in the environment variable `name`, or `default` when it is unset or
/// blank. Anything else (0, a negative, not a number) is an error naming the variable.
pub fn positive<T>(name: &str, default: T) -> Result<T, String>
where
    T: FromStr + PartialOrd + Default,
{
    parse_positive(name, std::env::var(name).ok().as_deref(), default)
}

fn parse_positive<T>(name: &str, value: Option<&str>, default: T) -> Result<T, String>
where
    T: FromStr + PartialOrd + Default,
{
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => v
            .parse::<T>()
            .ok()
            .filter(|n| *n > T::default())
            .ok_or_else(|| format!("{name}={v:?} is not a positive integer")),
        _ => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_positive;

    #[test]
    fn positive_numbers_or_the_default_everything_else_refused() {
        let cases: &[(Option<&str>, Result<u64, ()>)] = &[
            (None, Ok(7)),
            (Some(""), Ok(7)),
            (Some("  "), Ok(7)),
            (Some("3"), Ok(3)),
            (Some(" 12 "), Ok(12)),
            (Some("0"), Err(())),
            (Some("-1"), Err(())),
            (Some("three"), Err(())),
        ];
        for (value, want) in cases {
            let got = parse_positive("BENCH_X", *value, 7u64).map_err(|e| {
                assert!(e.starts_with("BENCH_X="), "{e}");
            });
            assert_eq!(got, *want, "{value:?}");
        }
    }
}
