//! Instants as RFC 3339 text in UTC (`2026-12-02T01:55:52Z`): `apim check` warns about expired
//! keys, `apim keys` writes validity windows.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Hinnant's algorithm).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether a UTC instant (`…Z`, as `apim keys` writes them) is before now; other spellings are
/// left to api-key-auth's own parser and never called past here.
pub fn is_past(instant: &str) -> bool {
    instant.len() >= 20
        && instant.ends_with('Z')
        && instant
            .get(..19)
            .is_some_and(|s| s < &rfc3339(now_secs())[..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_176_552), "2026-12-02T01:55:52Z");
        assert!(is_past("2025-01-01T00:00:00Z"));
        assert!(!is_past("2999-01-01T00:00:00Z"));
        assert!(!is_past("2025-01-01T00:00:00+01:00"), "left to the filter");
    }
}
