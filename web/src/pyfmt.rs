//! Python's float formatting (`repr`, `%f`, `%g`): graphite-web prints floats Python's way
//! (series names, legends, JSON-ish text), and so do whisper's scripts.

/// `repr(x)` for a Python float: shortest round-trip digits, `1e-05` / `1e+16` outside
/// [1e-4, 1e16), and `.0` on integral values.
pub fn python_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // `{:e}` gives the shortest round-trip digits as d.ddd e N.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

/// `"%f" % x`.
pub fn python_percent_f(x: f64) -> String {
    match special(x) {
        Some(s) => s.into(),
        None => format!("{x:.6}"),
    }
}

fn special(x: f64) -> Option<&'static str> {
    if x.is_nan() {
        Some("nan")
    } else if x.is_infinite() {
        Some(if x > 0.0 { "inf" } else { "-inf" })
    } else {
        None
    }
}

/// C's `%.{precision}g` (no `#` flag): `precision` significant digits, trailing zeros removed,
/// scientific notation when the exponent is below -4 or at least `precision`.
pub fn python_percent_g(x: f64, precision: usize) -> String {
    if let Some(s) = special(x) {
        return s.into();
    }
    let precision = precision.max(1);
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{:.*e}", precision - 1, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= precision as i32 {
        let mantissa = trim_zeros(mantissa);
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{esign}{:02}", exp.abs())
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{x:.decimals$}")).to_owned()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected strings are what CPython 3.11 prints for the same values.
    #[test]
    fn repr_like_cpython() {
        let cases = [
            (0.5, "0.5"),
            (1.0, "1.0"),
            (0.10000000149011612, "0.10000000149011612"),
            (1e-05, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (123456789012345.0, "123456789012345.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (-2.5, "-2.5"),
            (1.5e-7, "1.5e-07"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
            (-0.0, "-0.0"),
            (100.0, "100.0"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ];
        for (x, s) in cases {
            assert_eq!(python_repr(x), s, "{x}");
        }
    }

    #[test]
    fn percent_f_and_g() {
        assert_eq!(python_percent_f(2.5), "2.500000");
        assert_eq!(python_percent_f(f64::NAN), "nan");
        assert_eq!(python_percent_g(0.5, 6), "0.5");
        assert_eq!(python_percent_g(0.10000000149011612, 6), "0.1");
        assert_eq!(python_percent_g(5.0, 35), "5");
        assert_eq!(
            python_percent_g(0.1, 35),
            "0.1000000000000000055511151231257827"
        );
        assert_eq!(python_percent_g(1e-5, 6), "1e-05");
        assert_eq!(python_percent_g(1234567.0, 6), "1.23457e+06");
        assert_eq!(python_percent_g(0.0, 6), "0");
        assert_eq!(python_percent_g(-0.0, 6), "-0");
        assert_eq!(python_percent_g(2.0, 6), "2");
        assert_eq!(python_percent_g(1e6, 6), "1e+06");
        assert_eq!(python_percent_g(123456.0, 6), "123456");
        assert_eq!(python_percent_g(0.0001, 6), "0.0001");
        assert_eq!(python_percent_g(-1.23456789, 6), "-1.23457");
        assert_eq!(python_percent_g(f64::NEG_INFINITY, 6), "-inf");
    }
}
