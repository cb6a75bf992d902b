//! Graphite time specifications (`from`, `until`, `now`, function intervals): a pure port of the
//! behaviour of graphite-web 1.1.10's `attime.py` (spec render-api.md §6). No clock is read here:
//! the caller passes "now" and the time zone.

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};

use crate::error::TimeError;

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Parses a Graphite time specification into Unix seconds.
///
/// `now` is Unix seconds; `tz` is the zone absolute times are read in.
pub(crate) fn parse_at_time(input: &str, tz: &TimeZone, now: i64) -> Result<i64, TimeError> {
    let s: String = input
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !matches!(c, '_' | ',' | ' '))
        .collect();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let plausible_date = s.len() == 8
            && s[..4].parse::<u32>().is_ok_and(|y| y > 1900)
            && s[4..6].parse::<u32>().is_ok_and(|m| m < 13)
            && s[6..].parse::<u32>().is_ok_and(|d| d < 32);
        if !plausible_date {
            return s.parse::<i64>().map_err(|_| TimeError::UnknownReference {
                text: input.to_owned(),
            });
        }
    }
    let (reference, offset) = if let Some(i) = s.find('+') {
        (&s[..i], &s[i..])
    } else if let Some(i) = s.find('-') {
        (&s[..i], &s[i..])
    } else {
        (s.as_str(), "")
    };
    let base = parse_time_reference(reference, tz, now, input)?;
    let delta = parse_time_offset(offset)?;
    base.checked_add(delta)
        .ok_or_else(|| TimeError::OutOfRange {
            text: input.to_owned(),
        })
}

/// The reference part of a time spec (`noon_yesterday`, `20240101`, `monday`…).
fn parse_time_reference(
    reference: &str,
    tz: &TimeZone,
    now: i64,
    raw: &str,
) -> Result<i64, TimeError> {
    if reference.is_empty() || reference == "now" {
        return Ok(now);
    }
    let unknown = || TimeError::UnknownReference {
        text: reference.to_owned(),
    };
    let bad = || TimeError::OutOfRange {
        text: raw.to_owned(),
    };
    let mut rest = reference;
    let (mut hour, mut minute) = (0i64, 0i64);

    // HH:MM, optionally followed by am/pm.
    if let Some(i) = rest.find(':').filter(|&i| 0 < i && i < 3) {
        hour = py_int(&rest[..i]).ok_or_else(unknown)?;
        let end = (i + 3).min(rest.len());
        minute = py_int(rest.get(i + 1..end).ok_or_else(unknown)?).ok_or_else(unknown)?;
        rest = rest.get(end..).unwrap_or("");
        if let Some(r) = rest.strip_prefix("am") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("pm") {
            hour = (hour + 12) % 24;
            rest = r;
        }
    }
    // Xam / XXam
    if let Some(i) = rest.find("am").filter(|&i| 0 < i && i < 3) {
        hour = py_int(&rest[..i]).ok_or_else(unknown)?;
        rest = &rest[i + 2..];
    }
    // Xpm / XXpm
    if let Some(i) = rest.find("pm").filter(|&i| 0 < i && i < 3) {
        hour = (py_int(&rest[..i]).ok_or_else(unknown)? + 12) % 24;
        rest = &rest[i + 2..];
    }
    if let Some(r) = rest.strip_prefix("noon") {
        (hour, minute) = (12, 0);
        rest = r;
    } else if let Some(r) = rest.strip_prefix("midnight") {
        (hour, minute) = (0, 0);
        rest = r;
    } else if let Some(r) = rest.strip_prefix("teatime") {
        (hour, minute) = (16, 0);
        rest = r;
    }
    if !(0..24).contains(&hour) || !(0..60).contains(&minute) {
        return Err(bad());
    }
    let now_local = jiff::Timestamp::from_second(now)
        .map_err(|_| bad())?
        .to_zoned(tz.clone())
        .datetime();
    let today = now_local.date();
    let date: Date = if rest == "yesterday" {
        today.yesterday().map_err(|_| bad())?
    } else if rest == "tomorrow" {
        today.tomorrow().map_err(|_| bad())?
    } else if rest == "today" {
        today
    } else if rest.matches('/').count() == 2 {
        let mut parts = rest.split('/').map(py_int);
        let (Some(Some(m)), Some(Some(d)), Some(Some(mut y))) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(unknown());
        };
        if y < 1900 {
            y += 1900;
        }
        if y < 1970 {
            y += 100;
        }
        civil_date(y, m, d).ok_or_else(bad)?
    } else if rest.len() == 8 && rest.bytes().all(|b| b.is_ascii_digit()) {
        let y = py_int(&rest[..4]).ok_or_else(unknown)?;
        let m = py_int(&rest[4..6]).ok_or_else(unknown)?;
        let d = py_int(&rest[6..8]).ok_or_else(unknown)?;
        civil_date(y, m, d).ok_or_else(bad)?
    } else if let Some(month) = rest
        .get(..3)
        .and_then(|p| MONTHS.iter().position(|m| *m == p))
    {
        let bytes = rest.as_bytes();
        let n = bytes.len();
        let day = if n >= 2 && bytes[n - 2..].iter().all(u8::is_ascii_digit) {
            py_int(&rest[n - 2..])
        } else if n >= 1 && bytes[n - 1].is_ascii_digit() {
            py_int(&rest[n - 1..])
        } else {
            return Err(TimeError::DayOfMonthRequired {
                text: raw.to_owned(),
            });
        };
        let day = day.ok_or_else(unknown)?;
        civil_date(i64::from(today.year()), month as i64 + 1, day).ok_or_else(bad)?
    } else if let Some(wd) = rest
        .get(..3)
        .and_then(|p| WEEKDAYS.iter().position(|w| *w == p))
    {
        let today_idx = sunday_index(today.weekday());
        let mut offset = today_idx as i64 - wd as i64;
        if offset < 0 {
            offset += 7;
        }
        today
            .checked_sub(jiff::Span::new().days(offset))
            .map_err(|_| bad())?
    } else if !rest.is_empty() {
        return Err(unknown());
    } else {
        today
    };
    let local = DateTime::from_parts(
        date,
        jiff::civil::Time::new(hour as i8, minute as i8, 0, 0).map_err(|_| bad())?,
    );
    localize(tz, local).ok_or_else(bad)
}

/// Wall-clock time → Unix seconds the way pytz's `localize(is_dst=False)` does it: in a
/// repeated hour the standard-time (later) offset, in a skipped hour the pre-transition offset.
fn localize(tz: &TimeZone, local: DateTime) -> Option<i64> {
    let amb = tz.to_ambiguous_timestamp(local);
    let offset = match amb.offset() {
        AmbiguousOffset::Unambiguous { offset } => offset,
        AmbiguousOffset::Gap { before, .. } => before,
        AmbiguousOffset::Fold { after, .. } => after,
    };
    offset.to_timestamp(local).ok().map(|t| t.as_second())
}

fn civil_date(y: i64, m: i64, d: i64) -> Option<Date> {
    Date::new(
        i16::try_from(y).ok()?,
        i8::try_from(m).ok()?,
        i8::try_from(d).ok()?,
    )
    .ok()
}

fn sunday_index(w: Weekday) -> usize {
    w.to_sunday_zero_offset() as usize
}

/// Python's `int()` on a short all-ASCII string (optional sign, digits).
fn py_int(s: &str) -> Option<i64> {
    let t = s.strip_prefix('+').unwrap_or(s);
    if t.is_empty() || t == "-" {
        return None;
    }
    t.parse::<i64>().ok()
}

/// Parses an offset like `-1h30min`, `+2d`, `5min` into signed seconds (graphite-web's
/// `parseTimeOffset`): months are 30 days, years 365 days, `m` alone is not a unit.
pub(crate) fn parse_time_offset(offset: &str) -> Result<i64, TimeError> {
    if offset.is_empty() {
        return Ok(0);
    }
    let invalid = || TimeError::InvalidOffset {
        text: offset.to_owned(),
    };
    let bytes = offset.as_bytes();
    let (sign, mut rest) = match bytes[0] {
        b'0'..=b'9' => (1i64, offset),
        b'+' => (1, &offset[1..]),
        b'-' => (-1, &offset[1..]),
        _ => return Err(invalid()),
    };
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let num: i64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let seconds = unit_seconds(unit).ok_or_else(|| TimeError::InvalidUnit {
            unit: unit.to_owned(),
            text: offset.to_owned(),
        })?;
        total = num
            .checked_mul(seconds)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(invalid)?;
    }
    Ok(sign * total)
}

/// Seconds per unit, matched by prefix in graphite-web's order.
fn unit_seconds(unit: &str) -> Option<i64> {
    if unit.starts_with('s') {
        Some(1)
    } else if unit.starts_with("min") {
        Some(60)
    } else if unit.starts_with('h') {
        Some(3600)
    } else if unit.starts_with('d') {
        Some(86_400)
    } else if unit.starts_with('w') {
        Some(7 * 86_400)
    } else if unit.starts_with("mon") {
        Some(30 * 86_400)
    } else if unit.starts_with('y') {
        Some(365 * 86_400)
    } else {
        None
    }
}

/// Which calendar unit `smartSummarize(alignTo=…)` truncates to, using the same prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CalendarUnit {
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

pub(crate) fn calendar_unit(unit: &str) -> Option<CalendarUnit> {
    Some(match unit_seconds(unit)? {
        1 => CalendarUnit::Seconds,
        60 => CalendarUnit::Minutes,
        3600 => CalendarUnit::Hours,
        86_400 => CalendarUnit::Days,
        604_800 => CalendarUnit::Weeks,
        2_592_000 => CalendarUnit::Months,
        _ => CalendarUnit::Years,
    })
}

/// Truncates `ts` (seen in `tz`) to the start of its calendar unit; for weeks, to the most recent
/// ISO weekday `iso_weekday` (1 = Monday).
pub(crate) fn truncate_to(ts: i64, tz: &TimeZone, unit: CalendarUnit, iso_weekday: i8) -> i64 {
    let Ok(t) = jiff::Timestamp::from_second(ts) else {
        return ts;
    };
    let local = t.to_zoned(tz.clone()).datetime();
    let d = local.date();
    let (date, h, m, s) = match unit {
        CalendarUnit::Years => (Date::new(d.year(), 1, 1).unwrap_or(d), 0, 0, 0),
        CalendarUnit::Months => (Date::new(d.year(), d.month(), 1).unwrap_or(d), 0, 0, 0),
        CalendarUnit::Weeks => {
            let mut back = i64::from(d.weekday().to_monday_one_offset()) - i64::from(iso_weekday);
            if back < 0 {
                back += 7;
            }
            (
                d.checked_sub(jiff::Span::new().days(back)).unwrap_or(d),
                0,
                0,
                0,
            )
        }
        CalendarUnit::Days => (d, 0, 0, 0),
        CalendarUnit::Hours => (d, local.hour(), 0, 0),
        CalendarUnit::Minutes => (d, local.hour(), local.minute(), 0),
        CalendarUnit::Seconds => (d, local.hour(), local.minute(), local.second()),
    };
    let Ok(time) = jiff::civil::Time::new(h, m, s, 0) else {
        return ts;
    };
    localize(tz, DateTime::from_parts(date, time)).unwrap_or(ts)
}

/// Formats Unix seconds as `YYYY-MM-DD HH:MM:SS` in `tz` (CSV output).
pub(crate) fn format_local(ts: i64, tz: &TimeZone) -> String {
    match jiff::Timestamp::from_second(ts) {
        Ok(t) => t
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => ts.to_string(),
    }
}

/// [`parse_at_time`] for callers outside the crate (the whisper tools): `tz` is a zone name,
/// UTC when `None` or unknown.
pub fn parse_time(spec: &str, tz: Option<&str>, now: i64) -> Result<i64, TimeError> {
    let zone = zone_or(tz, &TimeZone::UTC);
    parse_at_time(spec, &zone, now)
}

/// Resolves a zone name; unknown names fall back to `default` (graphite-web ignores them).
pub(crate) fn zone_or(name: Option<&str>, default: &TimeZone) -> TimeZone {
    name.and_then(|n| TimeZone::get(n).ok())
        .unwrap_or_else(|| default.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-03-14 15:09:26 UTC, a Thursday.
    const NOW: i64 = 1_710_428_966;

    fn utc(s: &str) -> Result<i64, TimeError> {
        parse_at_time(s, &TimeZone::UTC, NOW)
    }

    fn ts(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> i64 {
        DateTime::from_parts(
            Date::new(y, mo, d).unwrap(),
            jiff::civil::Time::new(h, mi, 0, 0).unwrap(),
        )
        .to_zoned(TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_second()
    }

    // Expected values follow graphite-web's attime.py and its test suite
    // (webapp/tests/test_attime.py): relative offsets are absolute seconds, references
    // without a time of day are midnight, months/years are 30/365 days.
    #[test]
    fn relative_offsets() {
        assert_eq!(utc("now").unwrap(), NOW);
        assert_eq!(utc("").unwrap(), NOW);
        assert_eq!(utc("-6h").unwrap(), NOW - 6 * 3600);
        assert_eq!(utc("-7d").unwrap(), NOW - 7 * 86400);
        assert_eq!(utc("-1mon").unwrap(), NOW - 30 * 86400);
        assert_eq!(utc("-1y").unwrap(), NOW - 365 * 86400);
        assert_eq!(utc("-2w").unwrap(), NOW - 14 * 86400);
        assert_eq!(utc("-30s").unwrap(), NOW - 30);
        assert_eq!(utc("-5min").unwrap(), NOW - 300);
        assert_eq!(utc("-1h30min").unwrap(), NOW - 5400);
        assert_eq!(utc("+1h").unwrap(), NOW + 3600);
        assert_eq!(utc("now-1d").unwrap(), NOW - 86400);
        assert_eq!(utc("-10minutes").unwrap(), NOW - 600);
        assert_eq!(utc("-3hours").unwrap(), NOW - 3 * 3600);
    }

    #[test]
    fn named_times_of_day() {
        assert_eq!(utc("midnight").unwrap(), ts(2024, 3, 14, 0, 0));
        assert_eq!(utc("noon").unwrap(), ts(2024, 3, 14, 12, 0));
        assert_eq!(utc("teatime").unwrap(), ts(2024, 3, 14, 16, 0));
        assert_eq!(utc("noon_yesterday").unwrap(), ts(2024, 3, 13, 12, 0));
        assert_eq!(utc("midnight tomorrow").unwrap(), ts(2024, 3, 15, 0, 0));
        assert_eq!(utc("today").unwrap(), ts(2024, 3, 14, 0, 0));
        assert_eq!(utc("yesterday").unwrap(), ts(2024, 3, 13, 0, 0));
        assert_eq!(utc("midnight-1d").unwrap(), ts(2024, 3, 13, 0, 0));
        assert_eq!(utc("6pm_today").unwrap(), ts(2024, 3, 14, 18, 0));
        assert_eq!(utc("9am").unwrap(), ts(2024, 3, 14, 9, 0));
        assert_eq!(
            utc("12am").unwrap(),
            ts(2024, 3, 14, 12, 0),
            "graphite quirk: 12am is noon"
        );
        assert_eq!(utc("8:50pm").unwrap(), ts(2024, 3, 14, 20, 50));
    }

    #[test]
    fn absolute_forms() {
        assert_eq!(utc("12:00_20240101").unwrap(), ts(2024, 1, 1, 12, 0));
        assert_eq!(utc("04:00_20240101").unwrap(), ts(2024, 1, 1, 4, 0));
        assert_eq!(utc("20240101").unwrap(), ts(2024, 1, 1, 0, 0));
        assert_eq!(utc("01/31/24").unwrap(), ts(2024, 1, 31, 0, 0));
        assert_eq!(utc("01/31/1999").unwrap(), ts(1999, 1, 31, 0, 0));
        assert_eq!(utc("12/31/70").unwrap(), ts(1970, 12, 31, 0, 0));
        assert_eq!(utc("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(utc("jan1").unwrap(), ts(2024, 1, 1, 0, 0));
        assert_eq!(utc("february15").unwrap(), ts(2024, 2, 15, 0, 0));
        assert_eq!(utc("noon_feb29").unwrap(), ts(2024, 2, 29, 12, 0));
        // 8 digits that are not a plausible date are seconds.
        assert_eq!(utc("19000101").unwrap(), 19_000_101);
        assert_eq!(utc("20241301").unwrap(), 20_241_301);
    }

    #[test]
    fn weekdays_are_the_most_recent_one() {
        assert_eq!(utc("thursday").unwrap(), ts(2024, 3, 14, 0, 0));
        assert_eq!(utc("monday").unwrap(), ts(2024, 3, 11, 0, 0));
        assert_eq!(utc("friday").unwrap(), ts(2024, 3, 8, 0, 0));
        assert_eq!(utc("noon_sunday").unwrap(), ts(2024, 3, 10, 12, 0));
    }

    #[test]
    fn time_zones_apply_to_absolute_times_only() {
        let ny = TimeZone::get("America/New_York").unwrap();
        // 2024-01-01 00:00 EST = 05:00 UTC
        assert_eq!(
            parse_at_time("20240101", &ny, NOW).unwrap(),
            ts(2024, 1, 1, 5, 0)
        );
        assert_eq!(parse_at_time("-1h", &ny, NOW).unwrap(), NOW - 3600);
        // midnight in New York on 2024-03-14 (EDT, -4)
        assert_eq!(
            parse_at_time("midnight", &ny, NOW).unwrap(),
            ts(2024, 3, 14, 4, 0)
        );
        // In the skipped hour of 2024-03-10, pytz's is_dst=False uses the EST offset.
        assert_eq!(
            parse_at_time("02:30_20240310", &ny, NOW).unwrap(),
            ts(2024, 3, 10, 7, 30)
        );
        // In the repeated hour of 2024-11-03, standard time (EST) is chosen.
        assert_eq!(
            parse_at_time("01:30_20241103", &ny, NOW).unwrap(),
            ts(2024, 11, 3, 6, 30)
        );
    }

    #[test]
    fn rejects_what_graphite_rejects() {
        assert!(matches!(
            utc("foo"),
            Err(TimeError::UnknownReference { .. })
        ));
        assert!(matches!(utc("-5m"), Err(TimeError::InvalidUnit { .. })));
        assert!(matches!(utc("-5mo"), Err(TimeError::InvalidUnit { .. })));
        assert!(matches!(utc("-5"), Err(TimeError::InvalidUnit { .. })));
        assert!(matches!(utc("-h"), Err(TimeError::InvalidOffset { .. })));
        assert!(
            utc("2024-01-01").is_err(),
            "ISO dates split at the first '-'"
        );
        assert!(utc("13/01/24").is_err());
        assert!(utc("25:00_20240101").is_err());
        assert!(matches!(
            utc("janx"),
            Err(TimeError::DayOfMonthRequired { .. })
        ));
    }

    #[test]
    fn offsets_for_function_intervals() {
        assert_eq!(parse_time_offset("1h").unwrap(), 3600);
        assert_eq!(parse_time_offset("-1d").unwrap(), -86400);
        assert_eq!(parse_time_offset("+30min").unwrap(), 1800);
        assert_eq!(parse_time_offset("1mon").unwrap(), 30 * 86400);
        assert_eq!(parse_time_offset("1hour").unwrap(), 3600);
        assert_eq!(parse_time_offset("").unwrap(), 0);
        assert!(parse_time_offset("1x").is_err());
        assert!(parse_time_offset("abc").is_err());
    }

    #[test]
    fn truncation_for_alignment() {
        let t = ts(2024, 3, 14, 15, 9) + 26;
        assert_eq!(
            truncate_to(t, &TimeZone::UTC, CalendarUnit::Hours, 1),
            ts(2024, 3, 14, 15, 0)
        );
        assert_eq!(
            truncate_to(t, &TimeZone::UTC, CalendarUnit::Days, 1),
            ts(2024, 3, 14, 0, 0)
        );
        assert_eq!(
            truncate_to(t, &TimeZone::UTC, CalendarUnit::Months, 1),
            ts(2024, 3, 1, 0, 0)
        );
        assert_eq!(
            truncate_to(t, &TimeZone::UTC, CalendarUnit::Weeks, 1),
            ts(2024, 3, 11, 0, 0)
        );
        assert_eq!(
            truncate_to(t, &TimeZone::UTC, CalendarUnit::Weeks, 4),
            ts(2024, 3, 14, 0, 0)
        );
        assert_eq!(
            format_local(ts(2024, 3, 14, 15, 9), &TimeZone::UTC),
            "2024-03-14 15:09:00"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = parse_at_time(&s, &TimeZone::UTC, NOW);
            let _ = parse_time_offset(&s);
        }
    }
}
