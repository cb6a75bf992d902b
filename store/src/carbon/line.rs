//! The Carbon plaintext line, `<path> <value> <timestamp>` (spec `whisper-carbon.md` 12.2),
//! parsed without allocating.

/// One parsed line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CarbonLine<'a> {
    /// The metric path, not yet validated as a name.
    pub path: &'a str,
    /// The value (may be ±inf; NaN is reported as [`LineError::NaN`]).
    pub value: f64,
    /// Unix seconds, truncated toward zero; `None` means "now" (Carbon's `-1`).
    pub timestamp: Option<i64>,
}

/// Why a line was not a datapoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    #[error("expected 3 fields (path value timestamp), found {0}")]
    Fields(usize),
    #[error("the value is not a number")]
    Value,
    #[error("the timestamp is not a number")]
    Timestamp,
    #[error("the line is not valid UTF-8")]
    Utf8,
    #[error("the line is longer than {0} bytes")]
    TooLong(usize),
    #[error("the line was cut off when the receiver stopped")]
    Truncated,
    /// Not an error to the sender: Carbon drops NaN values silently.
    #[error("the value is NaN")]
    NaN,
}

/// Python's `str.split()` separators that can occur in ASCII: space, \t, \n, \r, \v, \f and
/// the information separators \x1c-\x1f.
fn is_python_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f)
}

/// Parses one line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<CarbonLine<'_>, LineError> {
    let mut fields = line
        .split(|&b| is_python_space(b))
        .filter(|f| !f.is_empty());
    let (Some(path), Some(value), Some(timestamp)) = (fields.next(), fields.next(), fields.next())
    else {
        let count = line
            .split(|&b| is_python_space(b))
            .filter(|f| !f.is_empty())
            .count();
        return Err(LineError::Fields(count));
    };
    let extra = fields.count();
    if extra > 0 {
        return Err(LineError::Fields(3 + extra));
    }
    let path = std::str::from_utf8(path).map_err(|_| LineError::Utf8)?;
    let value = python_float(value).ok_or(LineError::Value)?;
    let timestamp = python_float(timestamp).ok_or(LineError::Timestamp)?;
    let timestamp = datapoint_time(value, timestamp)?;
    Ok(CarbonLine {
        path,
        value,
        timestamp,
    })
}

/// Carbon's rules for a received datapoint, whatever the protocol: NaN values are dropped,
/// the timestamp is truncated to whole seconds and `-1` means now (`None`).
pub(crate) fn datapoint_time(value: f64, timestamp: f64) -> Result<Option<i64>, LineError> {
    if !timestamp.is_finite() {
        return Err(LineError::Timestamp);
    }
    if value.is_nan() {
        return Err(LineError::NaN);
    }
    // `int(timestamp) == -1` means now, so -1.5 does too.
    let seconds = timestamp.trunc();
    if !(-9.0e15..=9.0e15).contains(&seconds) {
        return Err(LineError::Timestamp);
    }
    let seconds = seconds as i64;
    Ok((seconds != -1).then_some(seconds))
}

/// Python's `float()` grammar: sign, digits with single underscores between them, a decimal
/// point, an exponent, or `inf`/`infinity`/`nan` in any case. Hex and empty strings are refused.
pub fn python_float(text: &[u8]) -> Option<f64> {
    if let Some(value) = small_integer(text) {
        return Some(value);
    }
    let unsigned = text
        .strip_prefix(b"+")
        .or_else(|| text.strip_prefix(b"-"))
        .unwrap_or(text);
    if unsigned.eq_ignore_ascii_case(b"inf")
        || unsigned.eq_ignore_ascii_case(b"infinity")
        || unsigned.eq_ignore_ascii_case(b"nan")
    {
        let negative = text.first() == Some(&b'-');
        return Some(match unsigned[0].to_ascii_lowercase() {
            b'n' => f64::NAN,
            _ if negative => f64::NEG_INFINITY,
            _ => f64::INFINITY,
        });
    }
    // Validate the grammar and drop the underscores; numbers are short, so the copy lives on
    // the stack unless the text is unusually long.
    let mut stack = [0u8; 64];
    let mut heap = Vec::new();
    let mut len = 0;
    let mut digits = 0;
    let mut previous = 0u8;
    for (i, &b) in text.iter().enumerate() {
        match b {
            b'_' => {
                // Only between two digits.
                let next = text.get(i + 1).copied().unwrap_or(0);
                if !previous.is_ascii_digit() || !next.is_ascii_digit() {
                    return None;
                }
            }
            b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-' => {
                if len < stack.len() {
                    stack[len] = b;
                } else {
                    if heap.is_empty() {
                        heap.extend_from_slice(&stack);
                    }
                    heap.push(b);
                }
                digits += usize::from(b.is_ascii_digit());
                len += 1;
            }
            _ => return None,
        }
        previous = b;
    }
    if digits == 0 {
        return None;
    }
    let cleaned = if heap.is_empty() {
        &stack[..len]
    } else {
        &heap[..]
    };
    std::str::from_utf8(cleaned).ok()?.parse().ok()
}

/// The common case, a plain integer of up to 15 digits (timestamps, counts): exact in an f64,
/// so the general float parser is not needed.
fn small_integer(text: &[u8]) -> Option<f64> {
    let (negative, digits) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0i64, |n, d| n * 10 + i64::from(d - b'0')) as f64;
    Some(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> (String, f64, Option<i64>) {
        let l = parse_line(line.as_bytes()).unwrap();
        (l.path.to_owned(), l.value, l.timestamp)
    }

    #[test]
    fn plaintext_lines() {
        assert_eq!(
            ok("a.b.c 1.5 1700000000"),
            ("a.b.c".into(), 1.5, Some(1_700_000_000))
        );
        assert_eq!(
            ok("  a\t2  1700000000.9\r"),
            ("a".into(), 2.0, Some(1_700_000_000))
        );
        assert_eq!(
            ok("a 1e3 1700000000"),
            ("a".into(), 1000.0, Some(1_700_000_000))
        );
        assert_eq!(
            ok("a 1_000 1700000000"),
            ("a".into(), 1000.0, Some(1_700_000_000))
        );
        assert_eq!(ok("a -Infinity 1700000000").1, f64::NEG_INFINITY);
        assert_eq!(ok("a inf 1700000000").1, f64::INFINITY);
        assert_eq!(ok("a 1 -1").2, None);
        assert_eq!(ok("a 1 -1.5").2, None);
        assert_eq!(ok("a 1 -2").2, Some(-2));
    }

    #[test]
    fn bad_lines() {
        assert_eq!(parse_line(b"a 1"), Err(LineError::Fields(2)));
        assert_eq!(parse_line(b""), Err(LineError::Fields(0)));
        assert_eq!(parse_line(b"a 1 2 3"), Err(LineError::Fields(4)));
        assert_eq!(parse_line(b"a x 2"), Err(LineError::Value));
        assert_eq!(parse_line(b"a 0x10 2"), Err(LineError::Value));
        assert_eq!(parse_line(b"a 1 now"), Err(LineError::Timestamp));
        assert_eq!(parse_line(b"a 1 inf"), Err(LineError::Timestamp));
        assert_eq!(parse_line(b"a nan 2"), Err(LineError::NaN));
        assert_eq!(parse_line(b"a NaN 2"), Err(LineError::NaN));
        assert_eq!(parse_line(b"\xff 1 2"), Err(LineError::Utf8));
        assert_eq!(parse_line(b"a 1__0 2"), Err(LineError::Value));
        assert_eq!(parse_line(b"a _1 2"), Err(LineError::Value));
        assert_eq!(parse_line(b"a 1e400 1e300"), Err(LineError::Timestamp));
    }

    #[test]
    fn python_float_grammar() {
        for (text, value) in [
            ("1", 1.0),
            ("-1.5", -1.5),
            (".5", 0.5),
            ("5.", 5.0),
            ("1E-2", 0.01),
            ("+3", 3.0),
        ] {
            assert_eq!(python_float(text.as_bytes()), Some(value), "{text}");
        }
        for text in [
            "", "-", ".", "e5", "1e", "1_", "0x1", "1.2.3", "--1", "infinit",
        ] {
            assert_eq!(python_float(text.as_bytes()), None, "{text}");
        }
        assert_eq!(python_float(b"-0").map(f64::is_sign_negative), Some(true));
        assert_eq!(python_float(b"123456789012345"), Some(123456789012345.0));
        assert_eq!(
            python_float(b"1234567890123456789"),
            Some(1234567890123456789.0)
        );
        let long = format!("0.{}1", "0".repeat(300));
        assert_eq!(python_float(long.as_bytes()), Some(1e-301));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let _ = parse_line(&line);
        }

        #[test]
        fn round_trips_numbers(v in proptest::num::f64::NORMAL, t in 0i64..4_000_000_000) {
            let line = format!("x.y {v} {t}");
            let parsed = parse_line(line.as_bytes()).unwrap();
            proptest::prop_assert_eq!(parsed.value, v);
            proptest::prop_assert_eq!(parsed.timestamp, Some(t));
        }
    }
}
