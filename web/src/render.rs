//! Output formats of `/render` (spec §3) and JSON-time consolidation (`maxDataPoints`,
//! `noNullPoints`, §4), all pure functions from series to bytes.

use std::fmt::Write as _;

use jiff::tz::TimeZone;

use crate::attime::format_local;
use crate::series::{Series, py_float};

/// Options of the JSON writer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonOptions {
    pub max_data_points: Option<usize>,
    pub no_null_points: bool,
    pub pretty: bool,
}

/// graphite-web 1.1.10 `renderViewJson` consolidation, including its off-by-one when dropping
/// leading values after the nudge.
pub(crate) fn apply_max_data_points(series: &mut [Series], max: usize) {
    let Some(start) = series.iter().map(|s| s.start).min() else {
        return;
    };
    let Some(end) = series.iter().map(|s| s.end).max() else {
        return;
    };
    let time_range = (end - start) as f64;
    for s in series.iter_mut() {
        if s.step <= 0 {
            continue;
        }
        if max == 1 {
            let n = s.values.len();
            if n > 1 {
                s.consolidate(n);
            }
            continue;
        }
        let points = time_range / s.step as f64;
        if (max as f64) < points {
            let vpp = (points / max as f64).ceil() as usize;
            let spp = vpp as i64 * s.step;
            let nudge = spp + s.start.rem_euclid(s.step) - s.start.rem_euclid(spp);
            s.start += nudge;
            let lose = (nudge / s.step - 1).max(0) as usize;
            s.values.drain(..lose.min(s.values.len()));
            s.consolidate(vpp);
        }
    }
}

/// Appends a JSON number the way graphite-web's output parses: NaN → null, ±∞ → ±1e9999.
fn push_number(out: &mut String, v: f64, buf: &mut ryu::Buffer) {
    if v.is_nan() {
        out.push_str("null");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "1e9999" } else { "-1e9999" });
    } else {
        out.push_str(buf.format_finite(v));
    }
}

fn push_json_str(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(q) => out.push_str(&q),
        Err(_) => out.push_str("\"\""),
    }
}

/// `format=json`: `[{"target", "tags", "datapoints"}]`.
pub(crate) fn json(mut series: Vec<Series>, opts: JsonOptions) -> String {
    if let Some(max) = opts.max_data_points {
        apply_max_data_points(&mut series, max);
    }
    if opts.pretty {
        return json_pretty(&series, opts.no_null_points);
    }
    let points: usize = series.iter().map(|s| s.values.len()).sum();
    let mut out = String::with_capacity(64 + points * 24);
    out.push('[');
    let mut first = true;
    for s in &series {
        if opts.no_null_points && s.datapoints().all(|(v, _)| v.is_nan()) {
            continue;
        }
        if !first {
            out.push_str(", ");
        }
        first = false;
        out.push_str("{\"target\": ");
        push_json_str(&mut out, &s.name);
        out.push_str(", \"tags\": {");
        for (i, (k, v)) in s.tags.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            push_json_str(&mut out, k);
            out.push_str(": ");
            push_json_str(&mut out, v);
        }
        out.push_str("}, \"datapoints\": [");
        let mut first_point = true;
        let (mut float_buf, mut int_buf) = (ryu::Buffer::new(), itoa::Buffer::new());
        for (v, t) in s.datapoints() {
            if opts.no_null_points && v.is_nan() {
                continue;
            }
            if !first_point {
                out.push_str(", ");
            }
            first_point = false;
            out.push('[');
            push_number(&mut out, v, &mut float_buf);
            out.push_str(", ");
            out.push_str(int_buf.format(t));
            out.push(']');
        }
        out.push_str("]}");
    }
    out.push(']');
    out
}

fn json_pretty(series: &[Series], no_null: bool) -> String {
    let list: Vec<serde_json::Value> = series
        .iter()
        .filter(|s| !(no_null && s.datapoints().all(|(v, _)| v.is_nan())))
        .map(|s| {
            let points: Vec<serde_json::Value> = s
                .datapoints()
                .filter(|(v, _)| !(no_null && v.is_nan()))
                .map(|(v, t)| serde_json::json!([if v.is_finite() { Some(v) } else { None }, t]))
                .collect();
            serde_json::json!({"target": s.name, "tags": s.tags, "datapoints": points})
        })
        .collect();
    serde_json::to_string_pretty(&list).unwrap_or_else(|_| "[]".to_owned())
}

/// `format=csv`: `name,YYYY-MM-DD HH:MM:SS,value` rows in CRLF (Excel dialect).
pub(crate) fn csv(series: &[Series], tz: &TimeZone) -> String {
    let mut out = String::new();
    for s in series {
        let name = csv_field(&s.name);
        for (i, &v) in s.values.iter().enumerate() {
            out.push_str(&name);
            out.push(',');
            out.push_str(&format_local(s.start + i as i64 * s.step, tz));
            out.push(',');
            if !v.is_nan() {
                out.push_str(&py_float(v));
            }
            out.push_str("\r\n");
        }
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `format=raw`: `name,start,end,step|v1,v2,...` per series, `None` for nulls.
pub(crate) fn raw(series: &[Series]) -> String {
    let mut out = String::new();
    for s in series {
        let _ = write!(out, "{},{},{},{}|", s.name, s.start, s.end, s.step);
        for (i, &v) in s.values.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if v.is_nan() {
                out.push_str("None");
            } else {
                out.push_str(&py_float(v));
            }
        }
        out.push('\n');
    }
    out
}

/// `format=rickshaw`: `[{"target", "datapoints": [{"x", "y"}]}]`.
pub(crate) fn rickshaw(series: &[Series]) -> String {
    let list: Vec<serde_json::Value> = series
        .iter()
        .map(|s| {
            let n = if s.step > 0 { ((s.end - s.start + s.step - 1) / s.step).max(0) as usize } else { 0 };
            let points: Vec<serde_json::Value> = s
                .values
                .iter()
                .take(n)
                .enumerate()
                .map(|(i, &v)| serde_json::json!({"x": s.start + i as i64 * s.step, "y": if v.is_finite() { Some(v) } else { None }}))
                .collect();
            serde_json::json!({"target": s.name, "datapoints": points})
        })
        .collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::NULL;

    fn series(start: i64, step: i64, values: Vec<f64>) -> Series {
        let end = start + step * values.len() as i64;
        Series::new("a.b", start, end, step, values)
    }

    #[test]
    fn max_data_points_matches_graphite_observation() {
        // Spec §4, observed: 1 day at 60 s, maxDataPoints=100 → 96 points 900 s apart,
        // first timestamp a multiple of 900.
        let start = 1_795_673_340; // a minute boundary, not a multiple of 900
        let mut l = vec![series(start, 60, vec![1.0; 1440])];
        apply_max_data_points(&mut l, 100);
        let s = &l[0];
        assert_eq!(s.step, 900);
        assert_eq!(s.start % 900, 0);
        assert_eq!(s.datapoints().count(), 96);
    }

    #[test]
    fn json_shape_and_special_numbers() {
        let mut s = series(60, 60, vec![1.5, NULL, f64::INFINITY, 100.0]);
        s.end = 240;
        let out = json(vec![s], JsonOptions::default());
        assert_eq!(
            out,
            r#"[{"target": "a.b", "tags": {"name": "a.b"}, "datapoints": [[1.5, 60], [null, 120], [1e9999, 180], [100.0, 240]]}]"#
        );
        let out = json(
            vec![series(60, 60, vec![NULL, 2.0])],
            JsonOptions {
                no_null_points: true,
                ..Default::default()
            },
        );
        assert!(out.contains("[[2.0, 120]]"));
        let out = json(
            vec![series(60, 60, vec![NULL])],
            JsonOptions {
                no_null_points: true,
                ..Default::default()
            },
        );
        assert_eq!(out, "[]");
        assert_eq!(json(Vec::new(), JsonOptions::default()), "[]");
    }

    #[test]
    fn raw_and_csv_text() {
        // Spec §3.3/§3.2 observed shapes.
        let s = series(1_795_759_740, 60, vec![37.668, 36.696, NULL]);
        assert_eq!(
            raw(std::slice::from_ref(&s)),
            "a.b,1795759740,1795759920,60|37.668,36.696,None\n"
        );
        let c = csv(&[s], &TimeZone::UTC);
        assert!(c.starts_with("a.b,2026-11-27 06:09:00,37.668\r\n"));
        assert!(c.ends_with(",\r\n"));
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
