//! The series model (spec §10) and the shared numeric machinery: consolidation, LCM
//! normalisation (§11), aggregation functions with graphite-web's None rules, and Python-style
//! number formatting for names and output.
//!
//! Values are `f64` with NaN standing for None (null), as in carbonapi; graphite-web never
//! emits NaN, so a NaN stored in whisper reads as null here.

use std::collections::BTreeMap;

/// The null value.
pub(crate) const NULL: f64 = f64::NAN;

/// Graph-only options set by style functions (used by PNG rendering).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SeriesOptions {
    pub color: Option<String>,
    /// Drawn as a filled area (`stacked`, `areaBetween`, `holtWintersConfidenceArea`).
    pub stacked: bool,
    /// The `stacked()` stack the series belongs to: its values are running totals of that
    /// stack, which the browser UI undoes to show each series' own value.
    pub stack: Option<String>,
    pub second_y_axis: bool,
    pub line_width: Option<f64>,
    pub dashed: Option<f64>,
    pub alpha: Option<f64>,
    pub draw_as_infinite: bool,
    pub invisible: bool,
}

/// One time series: `values[k]` is the value at `start + k*step`; `end` is exclusive.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub name: String,
    /// The glob or expression that produced the series; aggregates are named from it.
    pub path_expression: String,
    pub tags: BTreeMap<String, String>,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub values: Vec<f64>,
    /// How points are merged when the series is consolidated (`consolidateBy`).
    pub consolidation: Consolidation,
    /// Share of non-null values a consolidated point needs (xFilesFactor, 0–1).
    pub xff: f64,
    /// Styling for PNG output.
    pub options: SeriesOptions,
}

impl Series {
    /// A new series whose tags are parsed from its name (`a;b=c` → tags), like graphite-web's
    /// TimeSeries constructor; names that look like function calls get only `name`.
    pub fn new(name: impl Into<String>, start: i64, end: i64, step: i64, values: Vec<f64>) -> Self {
        let name = name.into();
        let tags = tags_from_name(&name);
        Series {
            path_expression: name.clone(),
            name,
            tags,
            start,
            end,
            step,
            values,
            consolidation: Consolidation::Average,
            xff: 0.0,
            options: SeriesOptions::default(),
        }
    }

    /// A copy with new name and values, keeping everything else (graphite-web's `copy`).
    pub fn derive(&self, name: String, values: Vec<f64>) -> Self {
        Series {
            name,
            values,
            options: SeriesOptions::default(),
            ..self.clone()
        }
    }

    /// Sets a tag, stringifying like graphite-web's `Tags.__setitem__`.
    pub fn tag(&mut self, key: &str, value: impl Into<String>) {
        self.tags.insert(key.to_owned(), value.into());
    }

    /// Renames the series and points its path expression at the new name.
    pub fn rename(&mut self, name: String) {
        self.path_expression.clone_from(&name);
        self.name = name;
    }

    /// Timestamps paired with values the way graphite-web's `datapoints()` zips them.
    pub fn datapoints(&self) -> impl Iterator<Item = (f64, i64)> + '_ {
        let n = self.point_count();
        self.values
            .iter()
            .take(n)
            .enumerate()
            .map(move |(i, &v)| (v, self.start + i as i64 * self.step))
    }

    /// How many values `datapoints` yields: `len(range(start, end + 1, step))` capped by the
    /// number of values.
    pub fn point_count(&self) -> usize {
        if self.step <= 0 || self.end < self.start {
            return 0;
        }
        let slots = ((self.end - self.start) / self.step + 1) as usize;
        slots.min(self.values.len())
    }

    /// Consolidates in place by `vpp` values per point (graphite-web's consolidating
    /// iterator); the step grows accordingly.
    pub fn consolidate(&mut self, vpp: usize) {
        if vpp <= 1 {
            return;
        }
        self.values = consolidate_values(&self.values, vpp, self.consolidation, self.xff);
        self.step *= vpp as i64;
    }
}

/// Tags of a plain or tagged name (spec §10).
pub(crate) fn tags_from_name(name: &str) -> BTreeMap<String, String> {
    let parsed = name
        .split_once(';')
        .filter(|(metric, _)| !metric.is_empty() && !looks_like_call(name))
        .and_then(|(metric, rest)| {
            let mut tags = BTreeMap::new();
            for seg in rest.split(';') {
                let (k, v) = seg.split_once('=')?;
                let valid = !k.is_empty()
                    && !v.is_empty()
                    && !k.contains(['!', '^', '='])
                    && !v.starts_with('~');
                if !valid {
                    return None;
                }
                tags.insert(k.to_owned(), v.to_owned());
            }
            tags.insert("name".to_owned(), metric.trim_start_matches('~').to_owned());
            Some(tags)
        });
    parsed.unwrap_or_else(|| BTreeMap::from([("name".to_owned(), name.to_owned())]))
}

/// graphite-web's `^[a-z]+[(].+[)]$` (case-insensitive) test.
fn looks_like_call(name: &str) -> bool {
    let letters = name.bytes().take_while(u8::is_ascii_alphabetic).count();
    letters > 0
        && name.len() > letters + 2
        && name.as_bytes()[letters] == b'('
        && name.ends_with(')')
}

/// Canonical tagged name: metric then tags sorted by name (graphite-web `TaggedSeries.format`).
pub(crate) fn format_tagged(tags: &BTreeMap<String, String>) -> String {
    let mut out = tags.get("name").cloned().unwrap_or_default();
    for (k, v) in tags {
        if k != "name" {
            out.push(';');
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

/// Consolidation functions for maxDataPoints, normalisation and PNG (spec §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Consolidation {
    Average,
    Sum,
    Min,
    Max,
    First,
    Last,
    AvgZero,
}

impl Consolidation {
    /// graphite-web's canonical name (`consolidationFunc` in msgpack output).
    pub fn name(self) -> &'static str {
        match self {
            Consolidation::Average => "average",
            Consolidation::Sum => "sum",
            Consolidation::Min => "min",
            Consolidation::Max => "max",
            Consolidation::First => "first",
            Consolidation::Last => "last",
            Consolidation::AvgZero => "avg_zero",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "average" | "avg" => Consolidation::Average,
            "sum" => Consolidation::Sum,
            "min" => Consolidation::Min,
            "max" => Consolidation::Max,
            "first" => Consolidation::First,
            "last" => Consolidation::Last,
            "avg_zero" => Consolidation::AvgZero,
            _ => return None,
        })
    }
}

/// Buckets of `vpp` values reduced with `func`; a bucket is null without values or when
/// `nonNull / vpp < xff` (the last, short bucket uses the full `vpp` too, like graphite-web).
pub(crate) fn consolidate_values(
    values: &[f64],
    vpp: usize,
    func: Consolidation,
    xff: f64,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(values.len().div_ceil(vpp));
    for chunk in values.chunks(vpp) {
        let mut n = 0usize;
        let mut acc = 0.0;
        let mut first = NULL;
        let mut last = NULL;
        let mut min = f64::INFINITY;
        let mut max = f64::NEG_INFINITY;
        for &v in chunk {
            if v.is_nan() {
                continue;
            }
            if n == 0 {
                first = v;
            }
            n += 1;
            acc += v;
            last = v;
            min = min.min(v);
            max = max.max(v);
        }
        if n == 0 || (n as f64 / vpp as f64) < xff {
            out.push(NULL);
            continue;
        }
        out.push(match func {
            Consolidation::Average => acc / n as f64,
            Consolidation::AvgZero => acc / chunk.len() as f64,
            Consolidation::Sum => acc,
            Consolidation::Min => min,
            Consolidation::Max => max,
            Consolidation::First => first,
            Consolidation::Last => last,
        });
    }
    out
}

/// Aggregation functions of `aggregate()`, `groupByNode`, `summarize`… (graphite-web
/// `aggfuncs.py`), each with its None rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggFunc {
    Average,
    AvgZero,
    Median,
    Sum,
    Min,
    Max,
    Diff,
    Stddev,
    Count,
    Range,
    Multiply,
    Last,
}

/// Names accepted for `aggFunc` parameters, in graphite-web's `options` order (sorted).
pub(crate) const AGG_FUNC_NAMES: &[&str] = &[
    "average", "avg", "avg_zero", "count", "current", "diff", "last", "max", "median", "min",
    "multiply", "range", "rangeOf", "stddev", "sum", "total",
];

impl AggFunc {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "average" | "avg" => AggFunc::Average,
            "avg_zero" => AggFunc::AvgZero,
            "median" => AggFunc::Median,
            "sum" | "total" => AggFunc::Sum,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            "diff" => AggFunc::Diff,
            "stddev" => AggFunc::Stddev,
            "count" => AggFunc::Count,
            "range" | "rangeOf" => AggFunc::Range,
            "multiply" => AggFunc::Multiply,
            "last" | "current" => AggFunc::Last,
            _ => return None,
        })
    }

    /// Applies the function to a row; NaN entries are None.
    pub fn apply(self, row: &[f64]) -> f64 {
        let non_null = || row.iter().copied().filter(|v| !v.is_nan());
        match self {
            AggFunc::Sum => {
                let mut n = 0;
                let s = non_null().inspect(|_| n += 1).sum::<f64>();
                if n == 0 { NULL } else { s }
            }
            AggFunc::Average => {
                let mut n = 0;
                let s = non_null().inspect(|_| n += 1).sum::<f64>();
                if n == 0 { NULL } else { s / n as f64 }
            }
            AggFunc::AvgZero => {
                if row.is_empty() {
                    NULL
                } else {
                    non_null().sum::<f64>() / row.len() as f64
                }
            }
            AggFunc::Median => {
                let mut v: Vec<f64> = non_null().collect();
                if v.is_empty() {
                    return NULL;
                }
                v.sort_by(f64::total_cmp);
                let mid = v.len() / 2;
                if v.len().is_multiple_of(2) {
                    (v[mid - 1] + v[mid]) / 2.0
                } else {
                    v[mid]
                }
            }
            AggFunc::Min => non_null().reduce(f64::min).unwrap_or(NULL),
            AggFunc::Max => non_null().reduce(f64::max).unwrap_or(NULL),
            AggFunc::Diff => {
                let mut it = non_null();
                match it.next() {
                    None => NULL,
                    // Python's safeDiff adds the negated values one by one.
                    Some(first) => it.fold(first, |acc, v| acc - v),
                }
            }
            AggFunc::Stddev => {
                let v: Vec<f64> = non_null().collect();
                if v.is_empty() {
                    return NULL;
                }
                let n = v.len() as f64;
                let avg = v.iter().sum::<f64>() / n;
                (v.iter().map(|x| (x - avg) * (x - avg)).sum::<f64>() / n).sqrt()
            }
            AggFunc::Count => non_null().count() as f64,
            AggFunc::Range => {
                let mut it = non_null();
                match it.next() {
                    None => NULL,
                    Some(f) => {
                        let (mn, mx) = it.fold((f, f), |(a, b), x| (a.min(x), b.max(x)));
                        mx - mn
                    }
                }
            }
            AggFunc::Multiply => {
                if row.iter().any(|v| v.is_nan()) || row.is_empty() {
                    NULL
                } else {
                    row.iter().product()
                }
            }
            AggFunc::Last => row
                .iter()
                .rev()
                .copied()
                .find(|v| !v.is_nan())
                .unwrap_or(NULL),
        }
    }
}

/// graphite-web's `xff()`: enough non-null values out of `total`?
pub(crate) fn xff_ok(non_null: usize, total: f64, xff: f64) -> bool {
    non_null > 0 && total > 0.0 && non_null as f64 / total >= xff
}

pub(crate) fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

pub(crate) fn lcm(a: i64, b: i64) -> i64 {
    if a == b || a == 0 || b == 0 {
        return a.max(b);
    }
    let (a, b) = if a < b { (b, a) } else { (a, b) };
    a / gcd(a, b) * b
}

/// The common grid of a normalised list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grid {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

/// Normalises series to the LCM of their steps in place (spec §11): each series is
/// consolidated by its own function; `start = min`, `end = max` trimmed to whole steps.
/// `None` for an empty list.
pub(crate) fn normalize(series: &mut [Series]) -> Option<Grid> {
    let first = series.first()?;
    let step = series.iter().fold(first.step, |acc, s| lcm(acc, s.step));
    let start = series.iter().map(|s| s.start).min()?;
    let mut end = series.iter().map(|s| s.end).max()?;
    for s in series.iter_mut() {
        if s.step > 0 && step / s.step > 1 {
            let vpp = (step / s.step) as usize;
            s.consolidate(vpp);
        }
    }
    if step > 0 {
        end -= (end - start).rem_euclid(step);
    }
    Some(Grid { start, end, step })
}

/// Combines rows position by position (graphite-web's `izip_longest`): row k holds the k-th
/// value of each series, shorter series padded with null. `f` gets the row.
pub(crate) fn combine_rows(series: &[Series], mut f: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let len = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let mut row = vec![NULL; series.len()];
    let mut out = Vec::with_capacity(len);
    for k in 0..len {
        for (slot, s) in row.iter_mut().zip(series) {
            *slot = s.values.get(k).copied().unwrap_or(NULL);
        }
        out.push(f(&row));
    }
    out
}

/// Column-wise version of `combine_rows` + [`AggFunc::apply`] with graphite-web's row xff
/// check, for the aggregations that can be accumulated one series at a time (sequential memory
/// access instead of gathering a row from every series). `None` for the others (median,
/// stddev), which need whole rows.
pub(crate) fn aggregate_columns(series: &[Series], agg: AggFunc, xff: f64) -> Option<Vec<f64>> {
    if matches!(agg, AggFunc::Median | AggFunc::Stddev) {
        return None;
    }
    let len = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let rows = series.len();
    let mut acc = vec![0.0f64; len];
    let mut extra = vec![0.0f64; len];
    let mut count = vec![0u32; len];
    let mut any_missing = vec![false; len];
    for s in series {
        for (k, &v) in s.values.iter().enumerate() {
            if v.is_nan() {
                any_missing[k] = true;
                continue;
            }
            let first = count[k] == 0;
            count[k] += 1;
            match agg {
                AggFunc::Sum | AggFunc::Average | AggFunc::AvgZero => acc[k] += v,
                AggFunc::Min => acc[k] = if first { v } else { acc[k].min(v) },
                AggFunc::Max => acc[k] = if first { v } else { acc[k].max(v) },
                AggFunc::Last => acc[k] = v,
                AggFunc::Diff => acc[k] = if first { v } else { acc[k] - v },
                AggFunc::Multiply => acc[k] = if first { v } else { acc[k] * v },
                AggFunc::Range => {
                    if first {
                        acc[k] = v;
                        extra[k] = v;
                    } else {
                        acc[k] = acc[k].min(v);
                        extra[k] = extra[k].max(v);
                    }
                }
                AggFunc::Count | AggFunc::Median | AggFunc::Stddev => {}
            }
        }
        // Shorter series are padded with nulls.
        for m in any_missing.iter_mut().skip(s.values.len()) {
            *m = true;
        }
    }
    let out = (0..len)
        .map(|k| {
            let n = count[k] as usize;
            if !xff_ok(n, rows as f64, xff) {
                return NULL;
            }
            match agg {
                AggFunc::Average => acc[k] / n as f64,
                AggFunc::AvgZero => acc[k] / rows as f64,
                AggFunc::Count => n as f64,
                AggFunc::Range => extra[k] - acc[k],
                AggFunc::Multiply if any_missing[k] => NULL,
                _ => acc[k],
            }
        })
        .collect();
    Some(out)
}

/// Python's `repr(float)`, used where graphite-web prints a float into a name.
pub(crate) fn py_float(v: f64) -> String {
    crate::pyfmt::python_repr(v)
}

/// Python's `'%g' % v`.
pub(crate) fn py_g(v: f64) -> String {
    crate::pyfmt::python_percent_g(v, 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(step: i64, start: i64, values: &[f64]) -> Series {
        Series::new(
            "x",
            start,
            start + step * values.len() as i64,
            step,
            values.to_vec(),
        )
    }

    fn same(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x.is_nan() && y.is_nan()) || x == y)
    }

    const N: f64 = NULL;

    #[test]
    fn python_float_text() {
        // Expected strings are CPython's repr() of the same doubles.
        assert_eq!(py_float(36.74), "36.74");
        assert_eq!(py_float(100.0), "100.0");
        assert_eq!(py_float(148.42000000000002), "148.42000000000002");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(py_float(0.0001), "0.0001");
        assert_eq!(py_float(123456789012345.0), "123456789012345.0");
        assert_eq!(py_float(-2.5e-7), "-2.5e-07");
        assert_eq!(py_float(0.1 + 0.2), "0.30000000000000004");
    }

    #[test]
    fn python_percent_g() {
        // Expected strings are CPython's '%g' % v.
        assert_eq!(py_g(0.5), "0.5");
        assert_eq!(py_g(2.0), "2");
        assert_eq!(py_g(100.0), "100");
        assert_eq!(py_g(1e6), "1e+06");
        assert_eq!(py_g(123456.0), "123456");
        assert_eq!(py_g(1234567.0), "1.23457e+06");
        assert_eq!(py_g(0.0001), "0.0001");
        assert_eq!(py_g(0.00001), "1e-05");
        assert_eq!(py_g(-1.23456789), "-1.23457");
        assert_eq!(py_g(0.0), "0");
    }

    #[test]
    fn tags_of_names() {
        let t = tags_from_name("disk.used;host=web1;dc=east");
        assert_eq!(t.get("name").map(String::as_str), Some("disk.used"));
        assert_eq!(t.get("dc").map(String::as_str), Some("east"));
        assert_eq!(format_tagged(&t), "disk.used;dc=east;host=web1");
        let t = tags_from_name("sumSeries(a;b=c)");
        assert_eq!(t.len(), 1);
        assert_eq!(t["name"], "sumSeries(a;b=c)");
        assert_eq!(tags_from_name("a;bad")["name"], "a;bad");
    }

    #[test]
    fn consolidation_rules() {
        let v = [1.0, N, 3.0, N, N, N, 7.0];
        assert!(same(
            &consolidate_values(&v, 3, Consolidation::Average, 0.0),
            &[2.0, N, 7.0]
        ));
        assert!(same(
            &consolidate_values(&v, 3, Consolidation::Sum, 0.0),
            &[4.0, N, 7.0]
        ));
        assert!(same(
            &consolidate_values(&v, 3, Consolidation::AvgZero, 0.0),
            &[4.0 / 3.0, N, 7.0]
        ));
        assert!(same(
            &consolidate_values(&v, 3, Consolidation::First, 0.0),
            &[1.0, N, 7.0]
        ));
        assert!(same(
            &consolidate_values(&v, 3, Consolidation::Last, 0.0),
            &[3.0, N, 7.0]
        ));
        assert!(same(
            &consolidate_values(&v, 3, Consolidation::Max, 0.0),
            &[3.0, N, 7.0]
        ));
        // xff: 2/3 passes 0.5, the short last bucket (1 of 3) fails it.
        assert!(same(
            &consolidate_values(&v, 3, Consolidation::Average, 0.5),
            &[2.0, N, N]
        ));
    }

    #[test]
    fn aggregation_null_rules() {
        let row = [N, 2.0, 5.0];
        assert_eq!(AggFunc::Sum.apply(&row), 7.0);
        assert_eq!(AggFunc::Average.apply(&row), 3.5);
        assert_eq!(AggFunc::AvgZero.apply(&row), 7.0 / 3.0);
        assert_eq!(AggFunc::Diff.apply(&row), -3.0);
        assert!(AggFunc::Multiply.apply(&row).is_nan());
        assert_eq!(AggFunc::Count.apply(&row), 2.0);
        assert_eq!(AggFunc::Range.apply(&row), 3.0);
        assert_eq!(AggFunc::Median.apply(&[4.0, 1.0, N, 2.0, 3.0]), 2.5);
        assert_eq!(
            AggFunc::Stddev.apply(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]),
            2.0
        );
        assert_eq!(AggFunc::Last.apply(&[1.0, 2.0, N]), 2.0);
        assert!(AggFunc::Sum.apply(&[N, N]).is_nan());
        assert!(AggFunc::Max.apply(&[]).is_nan());
    }

    #[test]
    fn normalisation_uses_lcm_and_positions() {
        // 10 s, 30 s and 60 s series: LCM 60, start = min start, values combined by position.
        let mut list = vec![
            s(10, 1000, &[1.0; 12]),
            s(30, 1020, &[3.0, 3.0, 3.0, 3.0]),
            s(60, 1080, &[6.0, 6.0]),
        ];
        let g = normalize(&mut list).unwrap();
        assert_eq!(
            g,
            Grid {
                start: 1000,
                end: 1180,
                step: 60
            }
        );
        assert!(same(&list[0].values, &[1.0, 1.0]));
        assert!(same(&list[1].values, &[3.0, 3.0]));
        assert_eq!(list[0].step, 60);
        let sum = combine_rows(&list, |r| AggFunc::Sum.apply(r));
        assert!(same(&sum, &[10.0, 10.0]));
        assert!(normalize(&mut []).is_none());
        assert_eq!(lcm(10, 15), 30);
    }

    proptest::proptest! {
        #[test]
        fn column_aggregation_matches_rows(
            cols in proptest::collection::vec(proptest::collection::vec(proptest::option::of(-1e6f64..1e6), 0..20), 1..6),
            xff in 0.0f64..1.0,
        ) {
            let series: Vec<Series> = cols
                .iter()
                .map(|c| s(60, 0, &c.iter().map(|v| v.unwrap_or(NULL)).collect::<Vec<_>>()))
                .collect();
            for agg in [AggFunc::Sum, AggFunc::Average, AggFunc::AvgZero, AggFunc::Min, AggFunc::Max,
                        AggFunc::Last, AggFunc::Diff, AggFunc::Multiply, AggFunc::Range, AggFunc::Count] {
                let fast = aggregate_columns(&series, agg, xff).unwrap();
                let slow = combine_rows(&series, |row| {
                    let nn = row.iter().filter(|v| !v.is_nan()).count();
                    if xff_ok(nn, row.len() as f64, xff) { agg.apply(row) } else { NULL }
                });
                proptest::prop_assert_eq!(fast.len(), slow.len());
                for (a, b) in fast.iter().zip(&slow) {
                    let same = (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
                    proptest::prop_assert!(same, "{:?}: {} vs {}", agg, a, b);
                }
            }
        }
    }

    #[test]
    fn datapoints_zip_like_graphite() {
        let mut x = s(60, 600, &[1.0, 2.0, 3.0]);
        assert_eq!(
            x.datapoints().map(|p| p.1).collect::<Vec<_>>(),
            vec![600, 660, 720]
        );
        x.values.push(4.0);
        assert_eq!(
            x.point_count(),
            4,
            "end is inclusive in graphite's range(start, end + 1, step)"
        );
        x.values.push(5.0);
        assert_eq!(x.point_count(), 4);
    }
}
