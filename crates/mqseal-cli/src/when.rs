//! Times and durations on the command line: `--at 2030-01-01T00:00:00Z`, `--at +1d`,
//! `--at 1893456000`, `--valid-for 30d`.

use crate::error::{CliError, Result};

const UNITS: [(char, u64); 5] = [
    ('s', 1),
    ('m', 60),
    ('h', 3_600),
    ('d', 86_400),
    ('w', 604_800),
];

/// A duration: a whole number with an optional unit `s`, `m`, `h`, `d` or `w` (seconds without
/// one), e.g. `90m`, `30d`.
pub fn parse_duration(text: &str) -> Result<u64> {
    let bad = || {
        CliError(format!(
            "not a duration: {text:?}; fix: a whole number with a unit s, m, h, d or w, e.g. 30d \
             or 12h"
        ))
    };
    let (digits, unit) = match text.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => (text.strip_suffix(c).unwrap_or(text), c),
        _ => (text, 's'),
    };
    let scale = UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, s)| *s)
        .ok_or_else(bad)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(bad)
}

/// A point in time, in seconds since 1970-01-01 UTC: `now`, `+DURATION` (from `now`), a number
/// of seconds since the Unix epoch, a date `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_time(text: &str, now: u64) -> Result<u64> {
    if text == "now" {
        return Ok(now);
    }
    if let Some(rest) = text.strip_prefix('+') {
        return now.checked_add(parse_duration(rest)?).ok_or_else(|| {
            CliError(format!(
                "{text:?} is too far in the future; fix: a smaller duration"
            ))
        });
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u64>().map_err(|_| {
            CliError(format!(
                "{text:?} is not a time in seconds since 1970 (too large)"
            ))
        });
    }
    parse_utc(text).ok_or_else(|| {
        CliError(format!(
            "not a time: {text:?}; fix: YYYY-MM-DDTHH:MM:SSZ (UTC), YYYY-MM-DD, seconds since \
             1970, now, or +DURATION such as +1d"
        ))
    })
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ`, UTC, years 1970 to 9999.
fn parse_utc(text: &str) -> Option<u64> {
    let (date, clock) = match text.split_once('T') {
        Some((date, clock)) => (date, Some(clock.strip_suffix('Z')?)),
        None => (text, None),
    };
    let number = |s: &str, len: usize| -> Option<u64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let mut parts = date.split('-');
    let (y, m, d) = (
        number(parts.next()?, 4)?,
        number(parts.next()?, 2)?,
        number(parts.next()?, 2)?,
    );
    if parts.next().is_some() || y < 1970 || !(1..=12).contains(&m) || d < 1 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d > *month_days.get(usize::try_from(m - 1).ok()?)? {
        return None;
    }
    let seconds = match clock {
        None => 0,
        Some(clock) => {
            let mut parts = clock.split(':');
            let (h, min, s) = (
                number(parts.next()?, 2)?,
                number(parts.next()?, 2)?,
                number(parts.next()?, 2)?,
            );
            if parts.next().is_some() || h > 23 || min > 59 || s > 59 {
                return None;
            }
            h * 3_600 + min * 60 + s
        }
    };
    Some(days_from_civil(y, m, d) * 86_400 + seconds)
}

/// Days since 1970-01-01 of a proleptic Gregorian date from 1970 on (H. Hinnant's algorithm).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a time in seconds since 1970 (UTC).
pub fn format_time(t: u64) -> String {
    let (days, secs) = (t / 86_400, t % 86_400);
    // The inverse of days_from_civil.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert_eq!(parse_duration("90m").unwrap(), 5_400);
        assert_eq!(parse_duration("30d").unwrap(), 2_592_000);
        assert_eq!(parse_duration("2w").unwrap(), 1_209_600);
        for bad in ["", "d", "1y", "-1d", "1.5h", "99999999999999999999w", "1 d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(parse_time("1970-01-01", 5).unwrap(), 0);
        assert_eq!(
            parse_time("2030-01-01T00:00:00Z", 5).unwrap(),
            1_893_456_000
        );
        assert_eq!(
            parse_time("2024-02-29T12:34:56Z", 0).unwrap(),
            1_709_210_096
        );
        assert_eq!(parse_time("now", 77).unwrap(), 77);
        assert_eq!(parse_time("+1h", 100).unwrap(), 3_700);
        assert_eq!(parse_time("1800000000", 0).unwrap(), 1_800_000_000);
        for t in [0, 1_709_210_096, 1_893_456_000, 253_402_300_799] {
            assert_eq!(parse_time(&format_time(t), 0).unwrap(), t, "{t}");
        }
        assert_eq!(format_time(1_893_456_000), "2030-01-01T00:00:00Z");
        for bad in [
            "2023-02-29",
            "2030-13-01",
            "2030-01-01T24:00:00Z",
            "2030-01-01T00:00:00",
            "1969-12-31",
            "tomorrow",
            "+x",
            "2030-1-01",
        ] {
            assert!(parse_time(bad, 0).is_err(), "{bad}");
        }
    }
}
