//! RFC 3339 timestamps (`2026-01-31T23:59:59Z`, `…+02:00`, fractions ignored) → Unix seconds.
//! Written here because the filters need only this one conversion, not a date library.

pub fn parse_rfc3339(s: &str) -> Result<u64, String> {
    let err = || format!("\"{s}\" is not an RFC 3339 timestamp like 2026-01-31T23:59:59Z");
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 40 {
        return Err(err());
    }
    let num = |from: usize, len: usize| -> Result<i64, String> {
        let part = s.get(from..from + len).ok_or_else(err)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err());
        }
        part.parse::<i64>().map_err(|_| err())
    };
    let sep = |at: usize, allowed: &[u8]| -> Result<(), String> {
        b.get(at)
            .filter(|c| allowed.contains(c))
            .map(|_| ())
            .ok_or_else(err)
    };
    sep(4, b"-")?;
    sep(7, b"-")?;
    sep(10, b"Tt ")?;
    sep(13, b":")?;
    sep(16, b":")?;
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(err());
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(err());
    }
    // Skip a fraction, then read the offset.
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(err());
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() => {
            sep(i + 3, b":")?;
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return Err(err());
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return Err(err()),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset;
    u64::try_from(secs).map_err(|_| format!("\"{s}\" is before 1970"))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (era-based, exact for all years here).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn good_timestamps() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("2000-02-29T12:00:00Z", 951_825_600),
            ("2026-11-26T20:54:23Z", 1_795_726_463),
            ("2026-11-26T22:54:23+02:00", 1_795_726_463),
            ("2026-11-26T20:54:23.123456Z", 1_795_726_463),
            ("2038-01-19T03:14:08Z", 2_147_483_648),
        ];
        for (s, want) in cases {
            assert_eq!(parse_rfc3339(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn bad_timestamps() {
        for s in [
            "2026-11-26",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-26T24:00:00Z",
            "2026-11-26T20:54:23",
            "2026-11-26T20:54:23+0200",
            "1969-12-31T23:59:59Z",
            "2026-11-26T20:54:23.Z",
            "２０２６-11-26T20:54:23Z",
        ] {
            assert!(parse_rfc3339(s).is_err(), "{s}");
        }
    }
}
