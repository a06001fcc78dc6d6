//! Instants as RFC 3339 text: `apim check` warns about expired keys, `apim keys` writes validity
//! windows, `apim insights` reads the access log's times. The calendar arithmetic is the
//! filters' own (`kit::time`, `quota::window`), so the CLI and Envoy agree on every instant.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: u64) -> String {
    let (y, m, d) = quota::window::civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Milliseconds since the epoch of an RFC 3339 instant (`2026-12-02T02:20:27.840Z`, as the
/// rendered access log writes them; an offset is allowed too).
pub fn parse_utc_ms(s: &str) -> Option<u64> {
    let secs = kit::time::parse_rfc3339(s).ok()?;
    // kit ignores the fraction; its first three digits are the milliseconds.
    let millis = s
        .get(19..)
        .and_then(|rest| rest.strip_prefix('.'))
        .map_or(0, |frac| {
            let digits: String = frac
                .chars()
                .take_while(char::is_ascii_digit)
                .take(3)
                .collect();
            format!("{digits:0<3}").parse::<u64>().unwrap_or(0)
        });
    secs.checked_mul(1000)?.checked_add(millis)
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether an RFC 3339 instant is before now; one that does not parse is left to
/// api-key-auth's own check (the rendered config's validation) and is never called past here.
pub fn is_past(instant: &str) -> bool {
    kit::time::parse_rfc3339(instant).is_ok_and(|t| t < now_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_176_552), "2026-12-02T01:55:52Z");
        assert!(is_past("2025-01-01T00:00:00Z") && is_past("2025-01-01T00:00:00+01:00"));
        assert!(!is_past("2999-01-01T00:00:00Z") && !is_past("soon"));
        assert_eq!(parse_utc_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_utc_ms("2026-12-02T01:55:52.5Z"),
            Some(1_796_176_552_500)
        );
        assert_eq!(
            parse_utc_ms("2000-02-29T00:00:00.123456Z"),
            Some(951_782_400_123)
        );
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-12-02 01:55:52",
            "2026-12-02T01:55:52",
            "x",
        ] {
            assert_eq!(parse_utc_ms(bad), None, "{bad}");
        }
    }
}
