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
    percent_g(x, precision, false)
}

/// `%g` of a finite number; `alternate` (the `#` flag) keeps trailing zeros and the point.
fn percent_g(x: f64, precision: usize, alternate: bool) -> String {
    let precision = precision.max(1);
    if x == 0.0 && !alternate {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{:.*e}", precision - 1, x);
    let (_, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: String| {
        if alternate {
            s
        } else {
            trim_zeros(&s).to_owned()
        }
    };
    if exp < -4 || exp >= precision as i32 {
        let text = percent_e(x, precision - 1);
        let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "+00"));
        let mut mantissa = trim(mantissa.to_owned());
        if alternate && !mantissa.contains('.') {
            mantissa.push('.');
        }
        format!("{mantissa}e{exp}")
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        let mut text = trim(format!("{x:.decimals$}"));
        if alternate && !text.contains('.') {
            text.push('.');
        }
        text
    }
}

/// C's `%.{precision}e` of a finite number: at least two exponent digits, with a sign.
fn percent_e(x: f64, precision: usize) -> String {
    let sci = format!("{x:.precision$e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let esign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{esign}{:02}", exp.abs())
}

/// Why `template % value` fails in Python.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PercentFormatError {
    #[error("not all arguments converted during string formatting")]
    NotAllConverted,
    #[error("not enough arguments for format string")]
    NotEnoughArguments,
    #[error("incomplete format")]
    Incomplete,
    #[error("format requires a mapping")]
    MappingKey,
    #[error("%{conversion} format: an integer is required, not float")]
    NeedsInteger { conversion: char },
    #[error("unsupported format character '{conversion}'")]
    Unsupported { conversion: char },
    #[error("cannot convert float {value} to integer")]
    NotAnInteger { value: &'static str },
}

/// Python's `template % x` with one float argument (aliasQuery's `newName`): flags `-+ #0`,
/// width and precision, conversions `d i u f F e E g G s r a` and `%%`.
pub(crate) fn python_percent_format(template: &str, x: f64) -> Result<String, PercentFormatError> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut used = false;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'(') {
            return Err(PercentFormatError::MappingKey);
        }
        let (mut left, mut plus, mut space, mut alternate, mut zero) =
            (false, false, false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '+' => plus = true,
                ' ' => space = true,
                '#' => alternate = true,
                '0' => zero = true,
                _ => break,
            }
            chars.next();
        }
        // A `*` width or precision takes an argument, which must be an int: the float is not.
        let number = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            if chars.peek() == Some(&'*') {
                return Err(PercentFormatError::NotEnoughArguments);
            }
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
                chars.next();
            }
            Ok(n)
        };
        let width = number(&mut chars)?.unwrap_or(0);
        let precision = if chars.peek() == Some(&'.') {
            chars.next();
            Some(number(&mut chars)?.unwrap_or(0))
        } else {
            None
        };
        while matches!(chars.peek(), Some('h' | 'l' | 'L')) {
            chars.next();
        }
        let conversion = chars.next().ok_or(PercentFormatError::Incomplete)?;
        if conversion == '%' {
            out.push('%');
            continue;
        }
        if used {
            return Err(PercentFormatError::NotEnoughArguments);
        }
        used = true;
        let sign = |negative: bool| {
            if negative {
                "-"
            } else if plus {
                "+"
            } else if space {
                " "
            } else {
                ""
            }
        };
        let upper = conversion.is_ascii_uppercase();
        // (sign, digits, numeric): numeric fields may be zero-padded after the sign.
        let (sign, body, numeric) = match conversion {
            'd' | 'i' | 'u' => {
                if !x.is_finite() {
                    let value = if x.is_nan() { "NaN" } else { "infinity" };
                    return Err(PercentFormatError::NotAnInteger { value });
                }
                let int = x.trunc();
                let mut digits = format!("{:.0}", int.abs());
                if let Some(p) = precision
                    && digits.len() < p
                {
                    digits.insert_str(0, &"0".repeat(p - digits.len()));
                }
                (sign(int < 0.0), digits, true)
            }
            'f' | 'F' | 'e' | 'E' | 'g' | 'G' => {
                let p = precision.unwrap_or(6);
                let a = x.abs();
                let mut body = if let Some(s) = special(a) {
                    s.to_owned()
                } else {
                    match conversion.to_ascii_lowercase() {
                        'f' => format!("{a:.p$}"),
                        'e' => percent_e(a, p),
                        _ => percent_g(a, p, alternate),
                    }
                };
                if alternate && p == 0 && a.is_finite() && !body.contains('.') {
                    match body.find('e') {
                        Some(i) => body.insert(i, '.'),
                        None => body.push('.'),
                    }
                }
                if upper {
                    body = body.to_ascii_uppercase();
                }
                // Python zero-pads inf and nan too ('%05f' % -inf is '-0inf').
                (sign(x.is_sign_negative() && !x.is_nan()), body, true)
            }
            's' | 'r' | 'a' => {
                let mut text = python_repr(x);
                if let Some(p) = precision {
                    text = text.chars().take(p).collect();
                }
                ("", text, false)
            }
            'x' | 'X' | 'o' | 'c' => return Err(PercentFormatError::NeedsInteger { conversion }),
            _ => return Err(PercentFormatError::Unsupported { conversion }),
        };
        let len = sign.chars().count() + body.chars().count();
        let pad = width.saturating_sub(len);
        if left {
            out.push_str(sign);
            out.push_str(&body);
            out.extend(std::iter::repeat_n(' ', pad));
        } else if zero && numeric {
            out.push_str(sign);
            out.extend(std::iter::repeat_n('0', pad));
            out.push_str(&body);
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(sign);
            out.push_str(&body);
        }
    }
    if used {
        Ok(out)
    } else {
        Err(PercentFormatError::NotAllConverted)
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
    fn percent_format_of_one_float() {
        // Expected strings are CPython 3.11's `template % x`.
        let ok =
            |t: &str, x: f64| python_percent_format(t, x).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(ok("Channel %d MHz", 2412.7), "Channel 2412 MHz");
        assert_eq!(ok("%d", -3.9), "-3");
        assert_eq!(ok("%d", -0.5), "0");
        assert_eq!(ok("%05d", 42.0), "00042");
        assert_eq!(ok("%-5d|", 42.0), "42   |");
        assert_eq!(ok("%+d", 42.0), "+42");
        assert_eq!(ok("% d", 42.0), " 42");
        assert_eq!(ok("%.3d", 7.0), "007");
        assert_eq!(ok("%i%%", 99.5), "99%");
        assert_eq!(ok("%s", 3.0), "3.0");
        assert_eq!(ok("%r", 0.1), "0.1");
        assert_eq!(ok("%.2s", 3.25), "3.");
        assert_eq!(ok("%8s|", 1.5), "     1.5|");
        assert_eq!(ok("%.2f", 2.675), "2.67");
        assert_eq!(ok("%08.3f", -4.56789), "-004.568");
        assert_eq!(ok("%f", 1.0), "1.000000");
        assert_eq!(ok("%#.0f", 3.0), "3.");
        assert_eq!(ok("%e", 12345.678), "1.234568e+04");
        assert_eq!(ok("%.2E", 0.000123), "1.23E-04");
        assert_eq!(ok("%g", 0.0001), "0.0001");
        assert_eq!(ok("%g", 1234567.0), "1.23457e+06");
        assert_eq!(ok("%#g", 2.0), "2.00000");
        assert_eq!(ok("%G", 1e-10), "1E-10");
        assert_eq!(ok("%5.1f%%", 12.34), " 12.3%");
        assert_eq!(ok("%f", f64::INFINITY), "inf");
        assert_eq!(ok("%05f", f64::NEG_INFINITY), "-0inf");
        assert_eq!(
            python_percent_format("no conversion", 1.0),
            Err(PercentFormatError::NotAllConverted)
        );
        assert_eq!(
            python_percent_format("%d %d", 1.0),
            Err(PercentFormatError::NotEnoughArguments)
        );
        assert_eq!(
            python_percent_format("%x", 1.0),
            Err(PercentFormatError::NeedsInteger { conversion: 'x' })
        );
        assert_eq!(
            python_percent_format("%(a)s", 1.0),
            Err(PercentFormatError::MappingKey)
        );
        assert_eq!(
            python_percent_format("%y", 1.0),
            Err(PercentFormatError::Unsupported { conversion: 'y' })
        );
        assert_eq!(
            python_percent_format("50%", 1.0),
            Err(PercentFormatError::Incomplete)
        );
        assert_eq!(
            python_percent_format("%d", f64::INFINITY),
            Err(PercentFormatError::NotAnInteger { value: "infinity" })
        );
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
