//! Output formats of `/render` (spec §3) and JSON-time consolidation (`maxDataPoints`,
//! `noNullPoints`, §4), all pure functions from series to bytes.

use std::fmt::Write as _;

use jiff::tz::TimeZone;

use crate::attime::format_local;
use crate::series::{Series, SeriesOptions, py_float};

/// Options of the JSON writer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonOptions {
    pub max_data_points: Option<usize>,
    pub no_null_points: bool,
    pub pretty: bool,
    /// `styles=1`, a Charcoal extension for its own browser chart: each series object gains a
    /// `"style"` key after `datapoints` with what the style functions set (see [`style`]).
    /// graphite-web 1.1.10's `renderViewJson` writes only target, tags and datapoints, so the
    /// colour or line width a target asks for is otherwise invisible in JSON; without the
    /// parameter the output stays byte-identical to graphite-web's (tests/it/interop.rs).
    pub styles: bool,
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

/// The `"style"` object of `styles=1`: only the keys a style function set, each named like
/// the graph parameter or function it comes from.
/// - `color`: CSS `#rrggbb[aa]`, resolved from graphite's colour names (`color()`,
///   `threshold(…, color)`); left out when the PNG renderer would refuse the colour.
/// - `alpha` (`alpha()`), `lineWidth` (`lineWidth()`), `dashed` (dash length, `dashed()`).
/// - `area: true`: drawn as a filled area (`stacked()`, `areaBetween()`,
///   `holtWintersConfidenceArea()`); `stack`: the `stacked()` stack name, whose values are
///   running totals across the series of that stack in output order.
/// - `secondYAxis`, `invisible`, `drawAsInfinite`: `true` when set.
fn style(o: &SeriesOptions) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        m.insert(k.to_owned(), v);
    };
    if let Some(c) = o.color.as_deref().and_then(crate::graph::css_color) {
        put("color", c.into());
    }
    let numbers = [
        ("alpha", o.alpha),
        ("lineWidth", o.line_width),
        ("dashed", o.dashed),
    ];
    for (k, v) in numbers {
        if let Some(n) = v.and_then(serde_json::Number::from_f64) {
            put(k, n.into());
        }
    }
    if let Some(stack) = &o.stack {
        put("stack", stack.as_str().into());
    }
    let flags = [
        ("area", o.stacked),
        ("secondYAxis", o.second_y_axis),
        ("invisible", o.invisible),
        ("drawAsInfinite", o.draw_as_infinite),
    ];
    for (k, on) in flags {
        if on {
            put(k, true.into());
        }
    }
    serde_json::Value::Object(m)
}

/// `format=json`: `[{"target", "tags", "datapoints"}]`, plus `"style"` with `styles=1`.
pub(crate) fn json(mut series: Vec<Series>, opts: JsonOptions) -> String {
    if let Some(max) = opts.max_data_points {
        apply_max_data_points(&mut series, max);
    }
    if opts.pretty {
        return json_pretty(&series, opts);
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
        out.push(']');
        if opts.styles {
            out.push_str(", \"style\": ");
            out.push_str(&style(&s.options).to_string());
        }
        out.push('}');
    }
    out.push(']');
    out
}

fn json_pretty(series: &[Series], opts: JsonOptions) -> String {
    let no_null = opts.no_null_points;
    let list: Vec<serde_json::Value> = series
        .iter()
        .filter(|s| !(no_null && s.datapoints().all(|(v, _)| v.is_nan())))
        .map(|s| {
            let points: Vec<serde_json::Value> = s
                .datapoints()
                .filter(|(v, _)| !(no_null && v.is_nan()))
                .map(|(v, t)| serde_json::json!([if v.is_finite() { Some(v) } else { None }, t]))
                .collect();
            let mut o = serde_json::json!({"target": s.name, "tags": s.tags, "datapoints": points});
            if opts.styles {
                o["style"] = style(&s.options);
            }
            o
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
    fn json_styles_only_when_asked() {
        let mut s = series(60, 60, vec![1.0]);
        s.end = 60;
        s.options.color = Some("blue".into());
        s.options.second_y_axis = true;
        let plain = r#"[{"target": "a.b", "tags": {"name": "a.b"}, "datapoints": [[1.0, 60]]}]"#;
        assert_eq!(json(vec![s.clone()], JsonOptions::default()), plain);
        let styles = JsonOptions {
            styles: true,
            ..Default::default()
        };
        assert_eq!(
            json(vec![s.clone()], styles),
            r##"[{"target": "a.b", "tags": {"name": "a.b"}, "datapoints": [[1.0, 60]], "style": {"color":"#6464ff","secondYAxis":true}}]"##
        );
        s.options = SeriesOptions::default();
        assert!(json(vec![s], styles).ends_with(r#"]], "style": {}}]"#));
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
