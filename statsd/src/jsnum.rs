//! JavaScript number semantics: `Number(string)` and number-to-string, as Etsy StatsD
//! (a Node.js program) applies them to values and writes them to Graphite (spec §4.1, §12).

use std::fmt::Write as _;

/// Whether `c` is JavaScript whitespace (`\s` in a regular expression, and what
/// `String.prototype.trim` and `Number()` strip): WhiteSpace plus LineTerminator.
#[inline]
pub(crate) fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// `String.prototype.trim`.
#[inline]
pub(crate) fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_space)
}

/// JavaScript `Number(s)` for a string: NaN when `s` is not a numeric literal.
///
/// Empty or all-whitespace strings are 0; `Infinity` with optional sign; unsigned
/// `0x`/`0o`/`0b` integers; otherwise a decimal literal (`.5`, `5.`, `1e3`), rounded to the
/// nearest double.
pub fn js_number(s: &str) -> f64 {
    if let Some(v) = small_integer(s.as_bytes()) {
        return v;
    }
    let t = js_trim(s);
    if t.is_empty() {
        return 0.0;
    }
    match t {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    let tb = t.as_bytes();
    if tb.len() > 2 && tb[0] == b'0' {
        let radix_bits = match tb[1] {
            b'x' | b'X' => Some(4),
            b'o' | b'O' => Some(3),
            b'b' | b'B' => Some(1),
            _ => None,
        };
        if let Some(bits) = radix_bits {
            return radix_integer(&tb[2..], bits);
        }
    }
    if is_decimal_literal(tb) {
        t.parse::<f64>().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

/// Hot path of [`js_number`]: 1 to 15 ASCII digits, exact in a double.
#[inline]
pub(crate) fn small_integer(b: &[u8]) -> Option<f64> {
    if b.is_empty() || b.len() > 15 {
        return None;
    }
    let mut v: u64 = 0;
    for &d in b {
        let digit = d.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        v = v * 10 + u64::from(digit);
    }
    Some(v as f64)
}

/// The reference's `isNumber`: non-empty and `Number(s)` is not NaN.
#[inline]
pub fn js_is_number(s: &str) -> bool {
    !s.is_empty() && !js_number(s).is_nan()
}

/// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`
fn is_decimal_literal(b: &[u8]) -> bool {
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

/// An unsigned integer in base 2^`bits`, rounded to the nearest double (ties to even).
fn radix_integer(digits: &[u8], bits: u32) -> f64 {
    let radix = 1u32 << bits;
    let mut acc: u128 = 0;
    let mut shift: i32 = 0;
    let mut sticky = false;
    for &c in digits {
        let d = match (c as char).to_digit(16) {
            Some(d) if d < radix => d,
            _ => return f64::NAN,
        };
        if acc >> 120 != 0 {
            // Keep the top bits only; what falls off only matters as a sticky bit.
            let lost = acc & ((1u128 << bits) - 1);
            sticky |= lost != 0;
            acc >>= bits;
            shift += bits as i32;
        }
        acc = (acc << bits) | u128::from(d);
    }
    if sticky {
        // acc has > 116 significant bits here, so its lowest bit sits far below the
        // rounding position and acts as the sticky bit.
        acc |= 1;
    }
    let v = acc as f64;
    if shift == 0 {
        v
    } else if shift > 1023 {
        if v == 0.0 { 0.0 } else { f64::INFINITY }
    } else {
        v * f64::from_bits(((1023 + shift) as u64) << 52)
    }
}

/// Appends `v` as JavaScript's `String(v)` writes it.
pub fn write_js_number(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if v == 0.0 {
        out.push('0');
        return;
    }
    // Integers below 2^53 print as plain digits in both languages.
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        let _ = write!(out, "{}", v as i64);
        return;
    }
    let mut buf = StackBuf::default();
    let _ = write!(buf, "{:e}", v.abs());
    let sci = buf.as_str();
    let (mant, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits = [0u8; 24];
    let mut k = 0;
    for &c in mant.as_bytes() {
        if c.is_ascii_digit() && k < digits.len() {
            digits[k] = c;
            k += 1;
        }
    }
    let digits = &digits[..k];
    let k = k as i32;
    let n = exp + 1;
    if v < 0.0 {
        out.push('-');
    }
    let push_digits = |out: &mut String, d: &[u8]| {
        for &c in d {
            out.push(c as char);
        }
    };
    if k <= n && n <= 21 {
        push_digits(out, digits);
        for _ in 0..(n - k) {
            out.push('0');
        }
    } else if 0 < n && n <= 21 {
        push_digits(out, &digits[..n as usize]);
        out.push('.');
        push_digits(out, &digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        for _ in 0..(-n) {
            out.push('0');
        }
        push_digits(out, digits);
    } else {
        push_digits(out, &digits[..1]);
        if k > 1 {
            out.push('.');
            push_digits(out, &digits[1..]);
        }
        out.push('e');
        out.push(if n > 0 { '+' } else { '-' });
        let _ = write!(out, "{}", (n - 1).abs());
    }
}

/// `String(v)` as an owned string (tests, names of thresholds and bins).
pub fn js_number_string(v: f64) -> String {
    let mut s = String::new();
    write_js_number(&mut s, v);
    s
}

/// A small fixed buffer for `{:e}` output (at most ~25 bytes for a double).
struct StackBuf {
    buf: [u8; 40],
    len: usize,
}

impl Default for StackBuf {
    fn default() -> Self {
        StackBuf {
            buf: [0; 40],
            len: 0,
        }
    }
}

impl StackBuf {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("0")
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let b = s.as_bytes();
        let end = self.len + b.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(b);
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values: spec §4.1 and §12, and §17 cases 8, 9, 13.
    #[test]
    fn number_parsing_follows_javascript() {
        let cases: &[(&str, f64)] = &[
            ("0x10", 16.0),
            ("0X1f", 31.0),
            ("0o17", 15.0),
            ("0b101", 5.0),
            ("1e3", 1000.0),
            (" 5", 5.0),
            ("  ", 0.0),
            ("", 0.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("-3", -3.0),
            ("+7", 7.0),
            ("1e400", f64::INFINITY),
            ("Infinity", f64::INFINITY),
            ("+Infinity", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("\u{a0}12\u{feff}", 12.0),
            ("1E+2", 100.0),
            ("123456789012345678901234", 1.2345678901234569e23),
            ("0x20000000000001", 9007199254740992.0),
            ("0x20000000000003", 9007199254740996.0),
        ];
        for &(s, want) in cases {
            assert_eq!(js_number(s), want, "Number({s:?})");
        }
        let nan = [
            "NaN", "nan", "inf", "infinity", "1_000", "abc", "+0x10", "-0x10", "0x", "0xg", ".",
            "e5", "1e", "1e+", "1.2.3", "--1", "1 2", "0b2", "0o8",
        ];
        for s in nan {
            assert!(js_number(s).is_nan(), "Number({s:?}) should be NaN");
        }
        assert!(js_number("-0").is_sign_negative());
    }

    #[test]
    fn huge_hex_rounds_to_nearest() {
        // 2^128 + 1 written in hex: rounds to 2^128.
        let s = format!("0x1{}1", "0".repeat(31));
        assert_eq!(js_number(&s), 2f64.powi(128));
        let big = format!("0x{}", "f".repeat(300));
        assert_eq!(js_number(&big), f64::INFINITY);
    }

    #[test]
    fn number_formatting_follows_javascript() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (100.0, "100"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.2345678901234569e23, "1.2345678901234569e+23"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (0.30000000000000004, "0.30000000000000004"),
            (3.3333333333333335, "3.3333333333333335"),
            (9.260833333333332, "9.260833333333332"),
            (81.64965809277261, "81.64965809277261"),
            (-2.5, "-2.5"),
            (1.5e-10, "1.5e-10"),
            (123456.789, "123456.789"),
            (9007199254740993.0, "9007199254740992"),
            (2f64.powi(60), "1152921504606847000"),
            (-1e-7, "-1e-7"),
            (5e-324, "5e-324"),
        ];
        for &(v, want) in cases {
            assert_eq!(js_number_string(v), want, "String({v:e})");
        }
    }
}
