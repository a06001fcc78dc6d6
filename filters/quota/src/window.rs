//! Fixed windows: N seconds aligned on the Unix epoch (so every worker and every replica agrees
//! on where a window starts without talking), or the calendar month in UTC.

/// How long a limit's window lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// `[k·N, (k+1)·N)` in Unix seconds.
    Seconds(u64),
    /// From the 1st of the month 00:00:00 UTC to the 1st of the next.
    Month,
}

impl Window {
    /// `second`, `minute`, `hour`, `day`, `month` or `<N>s`: used in default limit names and
    /// as the limit's id in storage.
    pub fn label(&self) -> String {
        match self {
            Self::Seconds(1) => "second".into(),
            Self::Seconds(60) => "minute".into(),
            Self::Seconds(3600) => "hour".into(),
            Self::Seconds(86_400) => "day".into(),
            Self::Seconds(n) => format!("{n}s"),
            Self::Month => "month".into(),
        }
    }

    /// The `w` of `RateLimit-Policy`: a month is announced as 30 days.
    pub fn nominal_seconds(&self) -> u64 {
        match self {
            Self::Seconds(n) => *n,
            Self::Month => 30 * 86_400,
        }
    }

    /// The end (exclusive, Unix seconds) of the window holding `now`.
    pub fn end(&self, now: u64) -> u64 {
        match self {
            Self::Seconds(n) => {
                let n = (*n).max(1);
                (now / n).saturating_add(1).saturating_mul(n)
            }
            Self::Month => {
                let days = now / 86_400;
                let (y, m, _) = civil_from_days(days);
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(y, m, 1).saturating_mul(86_400)
            }
        }
    }
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31), proleptic Gregorian.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shifted so that the era starts on 0000-03-01 (the leap day ends a year).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// (year ≥ 1970, month, day) → days since 1970-01-01.
pub fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn fixed_windows_align_on_the_epoch() {
        let cases = [
            (60, 0, 60),
            (60, 59, 60),
            (60, 60, 120),
            (1, 7, 8),
            (86_400, 90_000, 172_800),
        ];
        for (n, now, end) in cases {
            assert_eq!(Window::Seconds(n).end(now), end, "{n} {now}");
        }
    }

    #[test]
    fn months_are_calendar_months() {
        // 2024-02-10 12:00 UTC → 2024-03-01 (leap year), 2025-12-31 → 2026-01-01.
        let cases = [
            (1_707_566_400, 1_709_251_200),
            (1_767_139_200, 1_767_225_600),
            (0, 2_678_400),
            (2_678_400, 5_097_600),
        ];
        for (now, end) in cases {
            assert_eq!(Window::Month.end(now), end, "{now}");
        }
        for days in [0, 59, 365, 10_000, 20_000, 50_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn labels() {
        assert_eq!(Window::Seconds(60).label(), "minute");
        assert_eq!(Window::Seconds(10).label(), "10s");
        assert_eq!(Window::Month.label(), "month");
        assert_eq!(Window::Month.nominal_seconds(), 2_592_000);
    }
}
