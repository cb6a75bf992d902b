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

/// A JSON string the way Python's `json.dumps` writes it (`ensure_ascii=True`): non-ASCII as
/// `\uXXXX` (surrogate pairs above the BMP), control characters escaped.
fn push_py_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// A value as Python's `json.dumps` writes a float: `NaN` (graphite-web's None, here NaN) is
/// `null`, ±∞ is `Infinity`/`-Infinity` (not valid JSON; graphite-web writes them anyway).
fn push_py_json_number(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("null");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        out.push_str(&py_float(v));
    }
}

/// How many points `zip(range(start, end, step), series)` pairs: graphite-web's dygraph and
/// rickshaw writers stop at the end (exclusive) or at the last value, whichever comes first.
fn range_count(s: &Series) -> usize {
    if s.step <= 0 || s.end <= s.start {
        return 0;
    }
    let slots = ((s.end - s.start + s.step - 1) / s.step) as usize;
    slots.min(s.values.len())
}

/// `format=dygraph` (spec §3.4, graphite-web 1.1.10 `renderViewDygraph`):
/// `{"labels" : ["Time", names...], "data" : [[<ts>000, v1, v2...], ...]}`, one row per
/// timestamp of the **first** series (`range(start, end, step)`), milliseconds written by
/// appending `000` to the seconds as graphite-web does; `{}` for no series.
///
/// graphite-web fails with a 500 (a Python `IndexError`/`TypeError` in its row template) when
/// a later series has a different number of values than the first series has rows; Charcoal
/// answers instead, padding a short series with `null` and dropping a longer one's extra values.
pub(crate) fn dygraph(series: &[Series]) -> String {
    let Some(first) = series.first() else {
        return "{}".to_owned();
    };
    let rows = if first.step > 0 && first.end > first.start {
        ((first.end - first.start + first.step - 1) / first.step) as usize
    } else {
        0
    };
    let mut out = String::with_capacity(64 + rows * (16 + 12 * series.len()));
    out.push_str("{\"labels\" : [\"Time\"");
    for s in series {
        out.push_str(", ");
        push_py_json_str(&mut out, &s.name);
    }
    out.push_str("], \"data\" : [");
    let mut ts_buf = itoa::Buffer::new();
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('[');
        out.push_str(ts_buf.format(first.start + row as i64 * first.step));
        out.push_str("000");
        for s in series {
            out.push_str(", ");
            push_py_json_number(&mut out, s.values.get(row).copied().unwrap_or(f64::NAN));
        }
        out.push(']');
    }
    out.push_str("]}");
    out
}

/// `format=rickshaw` (spec §3.5, graphite-web 1.1.10 `renderViewRickshaw`): Python's
/// `json.dumps` of `[{"target": name, "datapoints": [{"x": ts, "y": value}, ...]}]`, with its
/// `", "`/`": "` separators, or indented by 2 with `pretty`.
pub(crate) fn rickshaw(series: &[Series], pretty: bool) -> String {
    let mut out = String::new();
    let mut ts_buf = itoa::Buffer::new();
    if series.is_empty() {
        return "[]".to_owned();
    }
    // Python's indent=2 layout: newline + indentation before each item and each closing bracket.
    let nl = |out: &mut String, depth: usize| {
        if pretty {
            out.push('\n');
            out.push_str(&"  ".repeat(depth));
        }
    };
    let item_sep = if pretty { "," } else { ", " };
    out.push('[');
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push_str(item_sep);
        }
        nl(&mut out, 1);
        out.push('{');
        nl(&mut out, 2);
        out.push_str("\"target\": ");
        push_py_json_str(&mut out, &s.name);
        out.push_str(item_sep);
        nl(&mut out, 2);
        out.push_str("\"datapoints\": [");
        let n = range_count(s);
        for (k, &v) in s.values.iter().take(n).enumerate() {
            if k > 0 {
                out.push_str(item_sep);
            }
            nl(&mut out, 3);
            out.push('{');
            nl(&mut out, 4);
            out.push_str("\"x\": ");
            out.push_str(ts_buf.format(s.start + k as i64 * s.step));
            out.push_str(item_sep);
            nl(&mut out, 4);
            out.push_str("\"y\": ");
            push_py_json_number(&mut out, v);
            nl(&mut out, 3);
            out.push('}');
        }
        if n > 0 {
            nl(&mut out, 2);
        }
        out.push(']');
        nl(&mut out, 1);
        out.push('}');
    }
    nl(&mut out, 0);
    out.push(']');
    out
}

/// One series as graphite-web's `TimeSeries.getInfo()` (render/datalib.py): what
/// `format=msgpack` carries, in graphite-web's key order.
#[derive(serde::Serialize)]
struct SeriesInfo<'a> {
    name: &'a str,
    start: i64,
    end: i64,
    step: i64,
    /// `list(self)`: every value, `None` (msgpack nil) for null.
    values: Vec<Option<f64>>,
    #[serde(rename = "pathExpression")]
    path_expression: &'a str,
    /// Always 1: `/render` consolidates only JSON output (`maxDataPoints`), never msgpack.
    #[serde(rename = "valuesPerPoint")]
    values_per_point: u32,
    #[serde(rename = "consolidationFunc")]
    consolidation_func: &'static str,
    #[serde(rename = "xFilesFactor")]
    x_files_factor: f64,
}

/// `format=msgpack` (spec §3.6, graphite-web 1.1.10 `renderViewMsgPack`): a msgpack array of
/// maps with string keys (`use_bin_type=True`: text is msgpack str, never bin). This is what
/// graphite-web's `RemoteReader.fetch_multi` decodes when a `CLUSTER_SERVERS` entry carries
/// `?format=msgpack`; it reads `name`, `start`, `end`, `step`, `values` and `pathExpression`,
/// and the latter must be the target it sent (it files the answer under it).
pub(crate) fn msgpack(series: &[Series]) -> Vec<u8> {
    let infos: Vec<SeriesInfo<'_>> = series
        .iter()
        .map(|s| SeriesInfo {
            name: &s.name,
            start: s.start,
            end: s.end,
            step: s.step,
            values: s
                .values
                .iter()
                .map(|&v| (!v.is_nan()).then_some(v))
                .collect(),
            path_expression: &s.path_expression,
            values_per_point: 1,
            consolidation_func: s.consolidation.name(),
            x_files_factor: s.xff,
        })
        .collect();
    // Serialising plain structs of strings and numbers into a Vec cannot fail.
    rmp_serde::to_vec_named(&infos).unwrap_or_default()
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

    #[test]
    fn dygraph_rows_from_first_series() {
        // graphite-web 1.1.10 renderViewDygraph: "%s000" milliseconds, Python floats,
        // null/Infinity, ", " separators and the spaced `" : "` after the two keys.
        let a = series(60, 60, vec![1.5, NULL, f64::INFINITY]);
        let mut b = series(60, 60, vec![100.0, -2.0, f64::NEG_INFINITY]);
        b.name = "é\"x".into();
        assert_eq!(
            dygraph(&[a.clone(), b]),
            r#"{"labels" : ["Time", "a.b", "\u00e9\"x"], "data" : [[60000, 1.5, 100.0], [120000, null, -2.0], [180000, Infinity, -Infinity]]}"#
        );
        // A shorter later series is padded (graphite-web fails with a 500 there).
        let short = series(60, 60, vec![7.0]);
        assert_eq!(
            dygraph(&[a, short]),
            r#"{"labels" : ["Time", "a.b", "a.b"], "data" : [[60000, 1.5, 7.0], [120000, null, null], [180000, Infinity, null]]}"#
        );
        // Timestamp 0 keeps graphite-web's text concatenation.
        assert!(dygraph(&[series(0, 60, vec![1.0])]).contains("[[0000, 1.0]]"));
        assert_eq!(dygraph(&[]), "{}");
        assert_eq!(
            dygraph(&[series(60, 60, vec![])]),
            r#"{"labels" : ["Time", "a.b"], "data" : []}"#
        );
    }

    #[test]
    fn rickshaw_is_python_json_dumps() {
        // Compared with CPython's json.dumps output of graphite-web's structure.
        let a = series(60, 60, vec![1.5, NULL, f64::INFINITY]);
        assert_eq!(
            rickshaw(std::slice::from_ref(&a), false),
            r#"[{"target": "a.b", "datapoints": [{"x": 60, "y": 1.5}, {"x": 120, "y": null}, {"x": 180, "y": Infinity}]}]"#
        );
        let mut b = series(60, 60, vec![]);
        b.name = "é".into();
        let one = series(60, 60, vec![1.5]);
        assert_eq!(
            rickshaw(&[one, b], true),
            "[\n  {\n    \"target\": \"a.b\",\n    \"datapoints\": [\n      {\n        \"x\": 60,\n        \"y\": 1.5\n      }\n    ]\n  },\n  {\n    \"target\": \"\\u00e9\",\n    \"datapoints\": []\n  }\n]"
        );
        assert_eq!(rickshaw(&[], false), "[]");
        assert_eq!(rickshaw(&[], true), "[]");
        // zip(range(start, end, step), values): the shorter of the two.
        let mut long = series(60, 60, vec![1.0, 2.0, 3.0]);
        long.end = 120;
        assert_eq!(
            rickshaw(&[long], false),
            r#"[{"target": "a.b", "datapoints": [{"x": 60, "y": 1.0}]}]"#
        );
    }

    #[test]
    fn msgpack_is_graphite_series_info() {
        let mut a = series(60, 60, vec![1.5, NULL]);
        a.path_expression = "a.*".into();
        a.consolidation = crate::series::Consolidation::Max;
        a.xff = 0.5;
        let bytes = msgpack(&[a]);
        let v: serde_json::Value = rmp_serde::from_slice(&bytes).expect("decode");
        assert_eq!(
            v,
            serde_json::json!([{
                "name": "a.b", "start": 60, "end": 180, "step": 60, "values": [1.5, null],
                "pathExpression": "a.*", "valuesPerPoint": 1, "consolidationFunc": "max",
                "xFilesFactor": 0.5
            }])
        );
        // Keys in graphite-web's order, as msgpack str (0xa0..0xbf fixstr), not bin.
        assert_eq!(bytes[0], 0x91); // fixarray of 1
        assert_eq!(bytes[1], 0x89); // fixmap of 9
        assert_eq!(&bytes[2..7], b"\xa4name");
        assert_eq!(msgpack(&[]), vec![0x90]);
    }
}
