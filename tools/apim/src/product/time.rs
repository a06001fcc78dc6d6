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

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of [`civil`]).
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

/// Milliseconds since the epoch of a UTC instant `YYYY-MM-DDTHH:MM:SS[.fff]Z` (what the
/// rendered access log writes); `None` for anything else.
pub fn parse_utc_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b.last() != Some(&b'Z')
        || b.get(4) != Some(&b'-')
        || b.get(10) != Some(&b'T')
    {
        return None;
    }
    let num = |from: usize, to: usize| s.get(from..to)?.parse::<u64>().ok();
    let days = days_from_civil(num(0, 4)?, num(5, 7)?, num(8, 10)?)?;
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let millis = match s.get(19..s.len() - 1)? {
        "" => 0,
        frac => {
            let digits = frac.strip_prefix('.')?;
            if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|c| c.is_ascii_digit())
            {
                return None;
            }
            let padded = format!("{digits:0<3}");
            padded.get(..3)?.parse::<u64>().ok()?
        }
    };
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1000) + millis)
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
        assert_eq!(parse_utc_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_utc_ms("2026-12-02T01:55:52.5Z"),
            Some(1_796_176_552_500)
        );
        assert_eq!(
            parse_utc_ms("2000-02-29T00:00:00.123Z"),
            Some(951_782_400_123)
        );
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-12-02 01:55:52Z",
            "2026-12-02T01:55:52",
            "x",
            "2026-12-02T01:55:52.Z",
        ] {
            assert_eq!(parse_utc_ms(bad), None, "{bad}");
        }
    }
}
