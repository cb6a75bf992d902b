//! Retention definitions (`10s:6h`, `60:1440`) and archive-list validation, with whisper's rules
//! (spec `whisper-carbon.md` section 2).

use std::fmt;
use std::str::FromStr;

use crate::error::RetentionError;

/// One archive of a whisper file: a step (seconds per point) and a number of points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Retention {
    /// Seconds per point.
    pub step: u32,
    /// Number of slots in the ring.
    pub points: u32,
}

impl Retention {
    /// A retention of `points` slots of `step` seconds.
    pub const fn new(step: u32, points: u32) -> Self {
        Retention { step, points }
    }

    /// The time the archive covers, in seconds.
    pub const fn seconds(&self) -> u64 {
        self.step as u64 * self.points as u64
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.step, self.points)
    }
}

impl FromStr for Retention {
    type Err = RetentionError;

    /// Parses one definition the way whisper's `parseRetentionDef` does: whisper's unit words and
    /// prefixes (`1min`, `2hours`) and carbon's single letters (`1m`) both work, and both give the
    /// same pairs as the reference parsers. Unlike whisper, a step or point count of 0 is refused.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (precision, points) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| RetentionError::Definition(text.to_owned()))?;
        let step = match precision.parse_digits() {
            Some(n) => n,
            None => {
                let (n, unit) = number_and_unit(precision)
                    .ok_or_else(|| RetentionError::Precision(precision.to_owned()))?;
                n.checked_mul(unit_seconds(unit)?)
                    .ok_or_else(|| RetentionError::Overflow(text.to_owned()))?
            }
        };
        let points = match points.parse_digits() {
            Some(n) => n,
            None => {
                let (n, unit) = number_and_unit(points)
                    .ok_or_else(|| RetentionError::Retention(points.to_owned()))?;
                let seconds = n
                    .checked_mul(unit_seconds(unit)?)
                    .ok_or_else(|| RetentionError::Overflow(text.to_owned()))?;
                if step == 0 {
                    return Err(RetentionError::ZeroStep(text.to_owned()));
                }
                seconds / step
            }
        };
        if step == 0 {
            return Err(RetentionError::ZeroStep(text.to_owned()));
        }
        if points == 0 {
            return Err(RetentionError::ZeroPoints(text.to_owned()));
        }
        let step = u32::try_from(step).map_err(|_| RetentionError::Overflow(text.to_owned()))?;
        let points =
            u32::try_from(points).map_err(|_| RetentionError::Overflow(text.to_owned()))?;
        Ok(Retention { step, points })
    }
}

trait ParseDigits {
    /// `Some(n)` when the whole text is ASCII digits (Python's `isdigit` for our purposes).
    fn parse_digits(&self) -> Option<u64>;
}

impl ParseDigits for str {
    fn parse_digits(&self) -> Option<u64> {
        if self.is_empty() || !self.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // All digits but too large for u64: treat as a very large number so the caller's
        // overflow check names it; u64::MAX is out of range for u32 anyway.
        Some(self.parse().unwrap_or(u64::MAX))
    }
}

/// Splits `^(\d+)([a-z]+)$`.
fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() || unit.is_empty() || !unit.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    Some((number.parse().unwrap_or(u64::MAX), unit))
}

/// whisper's `getUnitString`: the unit is any prefix of one of these words, tried in order.
fn unit_seconds(unit: &str) -> Result<u64, RetentionError> {
    const UNITS: [(&str, u64); 6] = [
        ("seconds", 1),
        ("minutes", 60),
        ("hours", 3_600),
        ("days", 86_400),
        ("weeks", 604_800),
        ("years", 31_536_000),
    ];
    UNITS
        .iter()
        .find(|(word, _)| word.starts_with(unit))
        .map(|&(_, seconds)| seconds)
        .ok_or_else(|| RetentionError::Unit(unit.to_owned()))
}

/// Parses a comma-separated list (`10s:6h,1m:7d,10m:5y`) as carbon's storage-schemas.conf does,
/// then validates it. The result is sorted finest first.
pub fn parse_retentions(text: &str) -> Result<Vec<Retention>, RetentionError> {
    let mut list = text
        .split(',')
        .map(|piece| piece.trim().parse())
        .collect::<Result<Vec<Retention>, _>>()?;
    validate_archive_list(&mut list)?;
    Ok(list)
}

/// whisper's `validateArchiveList`: sorts by precision, then checks each adjacent pair.
/// Also refuses archive lists whose file would not fit whisper's 32-bit offsets.
pub fn validate_archive_list(list: &mut [Retention]) -> Result<(), RetentionError> {
    if list.is_empty() {
        return Err(RetentionError::Empty);
    }
    list.sort_by_key(|r| r.step);
    for r in list.iter() {
        if r.step == 0 {
            return Err(RetentionError::ZeroStep(r.to_string()));
        }
        if r.points == 0 {
            return Err(RetentionError::ZeroPoints(r.to_string()));
        }
    }
    for (index, pair) in list.windows(2).enumerate() {
        let (a, b) = (pair[0], pair[1]);
        if a.step == b.step {
            return Err(RetentionError::SamePrecision {
                index,
                step: a.step,
                points: a.points,
                next_step: b.step,
                next_points: b.points,
            });
        }
        if b.step % a.step != 0 {
            return Err(RetentionError::NotDivisible {
                index,
                step: a.step,
                next_step: b.step,
            });
        }
        if b.seconds() <= a.seconds() {
            return Err(RetentionError::NotLonger {
                index,
                retention: a.seconds(),
                next_retention: b.seconds(),
            });
        }
        let ratio = b.step / a.step;
        if a.points < ratio {
            return Err(RetentionError::TooFewPoints {
                index,
                ratio,
                points: a.points,
            });
        }
    }
    let size = crate::whisper::file_size(list);
    if size > u64::from(u32::MAX) || list.iter().any(|r| r.seconds() > u64::from(u32::MAX)) {
        return Err(RetentionError::TooLarge);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(u32, u32), String> {
        text.parse::<Retention>()
            .map(|r| (r.step, r.points))
            .map_err(|e| e.to_string())
    }

    /// Spec vector V01 (whisper.parseRetentionDef), minus the `1m:30s` case that whisper accepts
    /// as 0 points and Charcoal refuses.
    #[test]
    fn whisper_parse_retention_def_vector_v01() {
        let ok = [
            ("60:1440", (60, 1440)),
            ("10s:6h", (10, 2160)),
            ("1m:7d", (60, 10080)),
            ("10m:5y", (600, 262800)),
            ("1h:1w", (3600, 168)),
            ("1d:1y", (86400, 365)),
            ("15min:1d", (900, 96)),
            ("1hour:2days", (3600, 48)),
            ("7s:1m", (7, 8)),
            (" 10s:6h ", (10, 2160)),
        ];
        for (text, pair) in ok {
            assert_eq!(parse(text), Ok(pair), "{text}");
        }
        let bad = [
            ("10x:1d", "Invalid unit 'x'"),
            ("10S:6h", "Invalid precision specification '10S'"),
            ("60", "Invalid retention definition '60'"),
            ("1.5m:1d", "Invalid precision specification '1.5m'"),
            ("10s: 6h", "Invalid retention specification ' 6h'"),
        ];
        for (text, message) in bad {
            assert_eq!(parse(text), Err(message.to_owned()), "{text}");
        }
    }

    /// Spec vector V02 (carbon's parser) agrees wherever carbon accepts the text.
    #[test]
    fn carbon_single_letter_units_agree() {
        assert_eq!(parse("10s:6h"), Ok((10, 2160)));
        assert_eq!(parse("7s:1m"), Ok((7, 8)));
    }

    #[test]
    fn zero_step_and_zero_points_are_refused() {
        assert!(parse("1m:30s").unwrap_err().contains("at least one point"));
        assert!(parse("0:10").unwrap_err().contains("at least one second"));
        assert!(parse("10s:0").unwrap_err().contains("at least one point"));
        assert!(parse("0s:1h").unwrap_err().contains("at least one second"));
    }

    #[test]
    fn huge_numbers_are_errors_not_panics() {
        assert!(parse("99999999999999999999999:10").is_err());
        assert!(parse("10:99999999999999").is_err());
        assert!(parse("5000000y:1").is_err());
    }

    /// Spec vector V03 (validateArchiveList).
    #[test]
    fn validate_archive_list_vector_v03() {
        type Case = (&'static [(u32, u32)], Result<(), &'static str>);
        let cases: [Case; 6] = [
            (
                &[],
                Err("You must specify at least one archive configuration!"),
            ),
            (
                &[(60, 10), (60, 20)],
                Err(
                    "A Whisper database may not be configured having two archives with the same \
                     precision (archive0: (60, 10), archive1: (60, 20))",
                ),
            ),
            (
                &[(60, 1440), (90, 1000)],
                Err(
                    "Higher precision archives' precision must evenly divide all lower precision \
                     archives' precision (archive0: 60, archive1: 90)",
                ),
            ),
            (
                &[(10, 100), (60, 10)],
                Err(
                    "Lower precision archives must cover larger time intervals than higher \
                     precision archives (archive0: 1000 seconds, archive1: 600 seconds)",
                ),
            ),
            (
                &[(10, 5), (60, 100)],
                Err(
                    "Each archive must have at least enough points to consolidate to the next \
                     archive (archive1 consolidates 6 of archive0's points but it has only 5 \
                     total points)",
                ),
            ),
            (&[(60, 1440), (10, 360)], Ok(())),
        ];
        for (input, expected) in cases {
            let mut list: Vec<Retention> =
                input.iter().map(|&(s, p)| Retention::new(s, p)).collect();
            let got = validate_archive_list(&mut list).map_err(|e| e.to_string());
            assert_eq!(got, expected.map_err(str::to_owned), "{input:?}");
        }
    }

    #[test]
    fn list_is_sorted_finest_first() {
        let list = parse_retentions("1d:1y, 1h:1w").unwrap();
        assert_eq!(
            list,
            vec![Retention::new(3600, 168), Retention::new(86400, 365)]
        );
    }

    #[test]
    fn oversized_file_is_refused() {
        assert_eq!(
            parse_retentions("1s:20y").unwrap_err(),
            RetentionError::TooLarge
        );
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(text in "\\PC{0,24}") {
            let _ = text.parse::<Retention>();
            let _ = parse_retentions(&text);
        }

        #[test]
        fn digits_round_trip(step in 1u32..100_000, points in 1u32..100_000) {
            let r: Retention = format!("{step}:{points}").parse().unwrap();
            proptest::prop_assert_eq!(r, Retention::new(step, points));
        }
    }
}
