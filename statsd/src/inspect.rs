//! A small `util.inspect` (Node 20, default options) for the admin dumps of counters,
//! gauges (objects of numbers) and timers (objects of number arrays), spec §13.

use crate::jsnum::js_number_string;

const BREAK: usize = 80;

fn number(v: f64) -> String {
    if v == 0.0 && v.is_sign_negative() {
        "-0".into()
    } else {
        js_number_string(v)
    }
}

fn is_identifier(k: &str) -> bool {
    let mut b = k.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn quote(k: &str) -> String {
    let q = if !k.contains('\'') {
        '\''
    } else if !k.contains('"') {
        '"'
    } else if !k.contains('`') {
        '`'
    } else {
        '\''
    };
    let mut s = String::with_capacity(k.len() + 2);
    s.push(q);
    for c in k.chars() {
        match c {
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            '\u{8}' => s.push_str("\\b"),
            '\u{c}' => s.push_str("\\f"),
            '\u{b}' => s.push_str("\\v"),
            '\\' => s.push_str("\\\\"),
            c if c == q => {
                s.push('\\');
                s.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                s.push_str(&format!("\\x{:02X}", c as u32))
            }
            c => s.push(c),
        }
    }
    s.push(q);
    s
}

fn key(k: &str) -> String {
    if is_identifier(k) {
        k.to_string()
    } else {
        quote(k)
    }
}

/// Node's `reduceToSingleString` for one level (`indentation` = enclosing indentation).
fn reduce(output: &[String], open: &str, close: &str, indentation: usize, grouped: bool) -> String {
    if output.is_empty() {
        return format!("{open}{close}");
    }
    if !grouped {
        let start = output.len() + indentation + open.len() + 10;
        let total: usize = output.len() + start + output.iter().map(|o| o.len()).sum::<usize>();
        if total <= BREAK {
            let joined = output.join(", ");
            if !joined.contains('\n') {
                return format!("{open} {joined} {close}");
            }
        }
    }
    let ind = format!("\n{}", " ".repeat(indentation));
    format!(
        "{open}{ind}  {}{ind}{close}",
        output.join(&format!(",{ind}  "))
    )
}

/// Node's `groupArrayElements` for an array of numbers.
fn group(output: Vec<String>, indentation: usize, has_more: bool) -> Vec<String> {
    let output_len = if has_more {
        output.len() - 1
    } else {
        output.len()
    };
    let sep = 2usize;
    let data_len: Vec<usize> = output[..output_len].iter().map(|o| o.len()).collect();
    let total: usize = data_len.iter().map(|l| l + sep).sum();
    let max_len = data_len.iter().copied().max().unwrap_or(0);
    let actual_max = max_len + sep;
    if actual_max * 3 + indentation < BREAK
        && (total as f64 / actual_max as f64 > 5.0 || max_len <= 6)
    {
        let average_bias = (actual_max as f64 - total as f64 / output.len() as f64).sqrt();
        let biased_max = (actual_max as f64 - 3.0 - average_bias).max(1.0);
        let columns = ((2.5 * biased_max * output_len as f64).sqrt() / biased_max)
            .round()
            .min(((BREAK - indentation) / actual_max) as f64)
            .min(12.0)
            .min(15.0) as usize;
        if columns <= 1 {
            return output;
        }
        let mut max_line = Vec::with_capacity(columns);
        for i in 0..columns {
            let mut line = 0;
            let mut j = i;
            while j < output_len {
                line = line.max(data_len[j]);
                j += columns;
            }
            max_line.push(line + sep);
        }
        let mut tmp = Vec::new();
        let mut i = 0;
        while i < output_len {
            let max = (i + columns).min(output_len);
            let mut s = String::new();
            let mut j = i;
            while j < max - 1 {
                let cell = format!("{}, ", output[j]);
                s.push_str(&format!("{cell:>w$}", w = max_line[j - i]));
                j += 1;
            }
            let w = max_line[j - i] - sep;
            s.push_str(&format!("{:>w$}", output[j], w = w));
            tmp.push(s);
            i += columns;
        }
        if has_more {
            tmp.push(output[output_len].clone());
        }
        return tmp;
    }
    output
}

fn array(values: &[f64], indentation: usize) -> String {
    let mut out: Vec<String> = values.iter().take(100).map(|v| number(*v)).collect();
    let more = values.len() > 100;
    if more {
        let n = values.len() - 100;
        out.push(format!("... {n} more item{}", if n > 1 { "s" } else { "" }));
    }
    let entries = out.len();
    let out = if entries > 6 {
        group(out, indentation, more)
    } else {
        out
    };
    reduce(&out, "[", "]", indentation, out.len() != entries)
}

/// `util.inspect({k: number, ...})`.
pub(crate) fn object_of_numbers(entries: &[(String, f64)]) -> String {
    let out: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}: {}", key(k), number(*v)))
        .collect();
    reduce(&out, "{", "}", 0, false)
}

/// `util.inspect({k: [numbers], ...})`.
pub(crate) fn object_of_arrays(entries: &[(String, Vec<f64>)]) -> String {
    let out: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}: {}", key(k), array(v, 2)))
        .collect();
    reduce(&out, "{", "}", 0, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings printed by Node 20's util.inspect (tests/data/inspect.js).
    #[test]
    fn objects_like_node() {
        assert_eq!(object_of_numbers(&[]), "{}");
        assert_eq!(
            object_of_numbers(&[("statsd.timestamp_lag".into(), 0.0)]),
            "{ 'statsd.timestamp_lag': 0 }"
        );
        assert_eq!(
            object_of_numbers(&[
                ("statsd.bad_lines_seen".into(), 0.0),
                ("foo.bar".into(), 1.0),
                ("statsd.packets_received".into(), 12.0)
            ]),
            "{\n  'statsd.bad_lines_seen': 0,\n  'foo.bar': 1,\n  'statsd.packets_received': 12\n}"
        );
        assert_eq!(
            object_of_numbers(&[("abc".into(), -0.0), ("x".into(), f64::NAN)]),
            "{ abc: -0, x: NaN }"
        );
        assert_eq!(
            object_of_arrays(&[("tm.a".into(), vec![])]),
            "{ 'tm.a': [] }"
        );
        assert_eq!(
            object_of_arrays(&[("t".into(), vec![1.0, 2.0, 3.0])]),
            "{ t: [ 1, 2, 3 ] }"
        );
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(
            object_of_arrays(&[("t".into(), ten)]),
            "{\n  t: [\n    1, 2, 3, 4,  5,\n    6, 7, 8, 9, 10\n  ]\n}"
        );
        let thirty: Vec<f64> = (0..30).map(|i| f64::from(i) * 37.5).collect();
        assert_eq!(
            object_of_arrays(&[("timer.name".into(), thirty)]),
            "{\n  'timer.name': [\n        0,  37.5,     75, 112.5,    150,\n    187.5,   225,  262.5,   300,  337.5,\n      375, 412.5,    450, 487.5,    525,\n    562.5,   600,  637.5,   675,  712.5,\n      750, 787.5,    825, 862.5,    900,\n    937.5,   975, 1012.5,  1050, 1087.5\n  ]\n}"
        );
        let many: Vec<f64> = (0..130).map(f64::from).collect();
        let got = object_of_arrays(&[("t".into(), many)]);
        assert!(
            got.starts_with(
                "{\n  t: [\n     0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11,\n    12, 13,"
            ),
            "{got}"
        );
        assert!(
            got.ends_with("    96, 97, 98, 99,\n    ... 30 more items\n  ]\n}"),
            "{got}"
        );
        assert_eq!(
            object_of_arrays(&[
                ("a".into(), vec![1.0, 2.0]),
                ("b".into(), vec![100000.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0]),
                ("c-d".into(), vec![0.001])
            ]),
            "{\n  a: [ 1, 2 ],\n  b: [\n    100000, 2.5,\n         3,   4,\n         5,   6,\n         7\n  ],\n  'c-d': [ 0.001 ]\n}"
        );
    }
}
