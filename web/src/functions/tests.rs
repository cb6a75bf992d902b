//! Per-function tests. Expected values are worked out by hand from graphite-web 1.1.10's
//! algorithms (functions.py, spec §11–12), with nulls, empty lists and mismatched steps; the
//! differential suite (tests/it/interop.rs) checks the same functions against the real thing.

use jiff::tz::TimeZone;

use crate::error::EvalError;
use crate::eval::{Ctx, EvalLimits};
use crate::parse::parse_target;
use crate::series::{NULL, Series};
use crate::source::MemorySource;

const T0: i64 = 1_700_000_040; // a multiple of 60 and of 120
const N: f64 = NULL;

/// Five points at T0..T0+240 (step 60) for most fixtures.
fn source() -> MemorySource {
    let src = MemorySource::new();
    let at = |vals: &[f64]| -> Vec<(i64, f64)> {
        vals.iter()
            .enumerate()
            .filter(|(_, v)| !v.is_nan())
            .map(|(i, v)| (T0 + i as i64 * 60, *v))
            .collect()
    };
    src.insert("a.b.c1", 60, at(&[1.0, 2.0, N, 4.0, 5.0]));
    src.insert("a.b.c2", 60, at(&[10.0, N, 30.0, 40.0, 50.0]));
    src.insert("a.x.c1", 60, at(&[2.0; 5]));
    src.insert("counter", 60, at(&[1.0, 3.0, 6.0, 2.0, 5.0]));
    src.insert("empty.e", 60, Vec::new());
    src.insert("halves", 60, at(&[1.5, 2.5, -0.5, 0.125, 2.675]));
    // v(t) = (t - T0)/60 from T0-600, for look-back functions.
    src.insert("long", 60, (-10..=4).map(|k| (T0 + k * 60, k as f64)));
    // 30-second series over the same window.
    src.insert("s30.m", 30, (-1..=8).map(|k| (T0 + k * 30, 1.0)));
    src.insert("disk.used;dc=east;host=web1", 60, at(&[1.0; 5]));
    src.insert("disk.used;dc=west;host=web2", 60, at(&[3.0; 5]));
    src.insert("disk.used;dc=east;host=db1", 60, at(&[5.0; 5]));
    src
}

fn limits() -> EvalLimits {
    EvalLimits {
        max_series: 1000,
        max_points: 1_000_000,
        deadline: None,
        timeout_ms: 0,
    }
}

fn eval_with(
    src: &MemorySource,
    target: &str,
    limits: EvalLimits,
) -> Result<Vec<Series>, EvalError> {
    let expr = parse_target(target, 64).unwrap_or_else(|e| panic!("{target}: {e}"));
    let mut ctx = Ctx::new(src, T0 - 60, T0 + 240, T0 + 240, TimeZone::UTC, limits);
    ctx.evaluate_targets(&[expr])
}

fn eval(target: &str) -> Vec<Series> {
    eval_with(&source(), target, limits()).unwrap_or_else(|e| panic!("{target}: {e}"))
}

fn err(target: &str) -> EvalError {
    match eval_with(&source(), target, limits()) {
        Ok(s) => panic!("{target}: expected an error, got {} series", s.len()),
        Err(e) => e,
    }
}

/// Asserts names and values (NaN = null, 1e-9 relative tolerance).
fn check(target: &str, expected: &[(&str, &[f64])]) {
    let got = eval(target);
    let names: Vec<&str> = got.iter().map(|s| s.name.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|e| e.0).collect();
    assert_eq!(names, want, "names of {target}");
    for (s, (_, vals)) in got.iter().zip(expected) {
        let v = &s.values[..s.point_count()];
        assert_eq!(
            v.len(),
            vals.len(),
            "{target}: {} has {:?}",
            s.name,
            s.values
        );
        for (a, b) in v.iter().zip(*vals) {
            let ok = (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * b.abs().max(1.0);
            assert!(ok, "{target}: {} = {:?}, want {:?}", s.name, s.values, vals);
        }
    }
}

#[test]
fn sum_average_max_min_diff() {
    check(
        "sumSeries(a.b.*)",
        &[("sumSeries(a.b.*)", &[11.0, 2.0, 30.0, 44.0, 55.0])],
    );
    check(
        "sum(a.b.c1,a.b.c2)",
        &[("sumSeries(a.b.c1,a.b.c2)", &[11.0, 2.0, 30.0, 44.0, 55.0])],
    );
    check(
        "averageSeries(a.b.*)",
        &[("averageSeries(a.b.*)", &[5.5, 2.0, 30.0, 22.0, 27.5])],
    );
    check(
        "avg(a.b.*)",
        &[("averageSeries(a.b.*)", &[5.5, 2.0, 30.0, 22.0, 27.5])],
    );
    check(
        "maxSeries(a.b.*)",
        &[("maxSeries(a.b.*)", &[10.0, 2.0, 30.0, 40.0, 50.0])],
    );
    check(
        "minSeries(a.b.*)",
        &[("minSeries(a.b.*)", &[1.0, 2.0, 30.0, 4.0, 5.0])],
    );
    check(
        "diffSeries(a.b.*)",
        &[("diffSeries(a.b.*)", &[-9.0, 2.0, 30.0, -36.0, -45.0])],
    );
    check(
        "rangeOfSeries(a.b.*)",
        &[("rangeOfSeries(a.b.*)", &[9.0, 0.0, 0.0, 36.0, 45.0])],
    );
    check(
        "stddevSeries(a.b.*)",
        &[("stddevSeries(a.b.*)", &[4.5, 0.0, 0.0, 18.0, 22.5])],
    );
    check(
        "multiplySeries(a.b.*)",
        &[("multiplySeries(a.b.*)", &[10.0, N, N, 160.0, 250.0])],
    );
    check(
        "multiplySeries(a.b.c1)",
        &[("a.b.c1", &[1.0, 2.0, N, 4.0, 5.0])],
    );
    check(
        "aggregate(a.b.*, 'avg_zero')",
        &[("avg_zeroSeries(a.b.*)", &[5.5, 1.0, 15.0, 22.0, 27.5])],
    );
    check(
        "aggregate(a.b.*, 'sumSeries')",
        &[("sumSeries(a.b.*)", &[11.0, 2.0, 30.0, 44.0, 55.0])],
    );
    check(
        "aggregate(a.b.*, 'median')",
        &[("medianSeries(a.b.*)", &[5.5, 2.0, 30.0, 22.0, 27.5])],
    );
}

#[test]
fn aggregates_keep_common_tags() {
    let s = &eval("sumSeries(a.b.*)")[0];
    assert_eq!(s.tags.get("aggregatedBy").map(String::as_str), Some("sum"));
    assert_eq!(
        s.tags.get("name").map(String::as_str),
        Some("sumSeries(a.b.*)")
    );
    let s = &eval("sumSeries(seriesByTag('dc=east'))")[0];
    assert_eq!(s.tags.get("dc").map(String::as_str), Some("east"));
    assert_eq!(s.tags.get("name").map(String::as_str), Some("disk.used"));
    assert!(!s.tags.contains_key("host"));
}

#[test]
fn aggregation_xfilesfactor_and_empty_input() {
    check(
        "aggregate(a.b.*, 'sum', 0.6)",
        &[("sumSeries(a.b.*)", &[11.0, N, N, 44.0, 55.0])],
    );
    check("sumSeries(nothing.*)", &[]);
    check(
        "averageSeries(empty.e)",
        &[("averageSeries(empty.e)", &[N, N, N, N, N])],
    );
    check("countSeries(a.b.*)", &[("countSeries(a.b.*)", &[2.0; 5])]);
    check("countSeries()", &[("0", &[0.0, 0.0, 0.0])]);
}

#[test]
fn mismatched_steps_normalise_to_lcm_by_position() {
    // s30.m has 10 points from T0-30; LCM 60 → averaged in pairs; start = T0-30.
    let got = eval("sumSeries(a.b.c1, s30.m)");
    assert_eq!((got[0].start, got[0].step), (T0 - 30, 60));
    check(
        "sumSeries(a.b.c1, s30.m)",
        &[("sumSeries(a.b.c1,s30.m)", &[2.0, 3.0, 1.0, 5.0, 6.0])],
    );
    check(
        "divideSeries(a.b.c1, s30.m)",
        &[("divideSeries(a.b.c1,s30.m)", &[1.0, 2.0, N, 4.0, 5.0])],
    );
}

#[test]
fn divide_series_cases() {
    check(
        "divideSeries(a.b.c1, a.x.c1)",
        &[("divideSeries(a.b.c1,a.x.c1)", &[0.5, 1.0, N, 2.0, 2.5])],
    );
    check(
        "divideSeries(a.b.c1, nothing)",
        &[("divideSeries(a.b.c1,MISSING)", &[N, N, N, N, N])],
    );
    assert!(matches!(
        err("divideSeries(a.b.c1, a.b.*)"),
        EvalError::Input { .. }
    ));
    check(
        "divideSeriesLists(a.b.*, a.b.*)",
        &[
            ("divideSeries(a.b.c1,a.b.c1)", &[1.0, 1.0, N, 1.0, 1.0]),
            ("divideSeries(a.b.c2,a.b.c2)", &[1.0, N, 1.0, 1.0, 1.0]),
        ],
    );
}

#[test]
fn as_percent_variants() {
    check(
        "asPercent(a.b.*)",
        &[
            (
                "asPercent(a.b.c1,sumSeries(a.b.*))",
                &[100.0 / 11.0, 100.0, N, 100.0 / 11.0, 100.0 / 11.0],
            ),
            (
                "asPercent(a.b.c2,sumSeries(a.b.*))",
                &[1000.0 / 11.0, N, 100.0, 1000.0 / 11.0, 1000.0 / 11.0],
            ),
        ],
    );
    check(
        "asPercent(a.b.c1, 10)",
        &[("asPercent(a.b.c1,10)", &[10.0, 20.0, N, 40.0, 50.0])],
    );
    check(
        "pct(a.b.c1, a.x.c1)",
        &[("asPercent(a.b.c1,a.x.c1)", &[50.0, 100.0, N, 200.0, 250.0])],
    );
    check(
        "asPercent(a.*.c1, None, 2)",
        &[
            (
                "asPercent(a.b.c1,sumSeries(a.*.c1))",
                &[100.0 / 3.0, 50.0, N, 200.0 / 3.0, 500.0 / 7.0],
            ),
            (
                "asPercent(a.x.c1,sumSeries(a.*.c1))",
                &[200.0 / 3.0, 50.0, 100.0, 100.0 / 3.0, 200.0 / 7.0],
            ),
        ],
    );
}

#[test]
fn transforms() {
    check(
        "scale(a.b.c1, 2)",
        &[("scale(a.b.c1,2)", &[2.0, 4.0, N, 8.0, 10.0])],
    );
    assert_eq!(eval("scale(a.b.c1, 2)")[0].tags["scale"], "2.0");
    check(
        "scale(a.b.c1, 0.5)",
        &[("scale(a.b.c1,0.5)", &[0.5, 1.0, N, 2.0, 2.5])],
    );
    check(
        "offset(a.b.c1, -1)",
        &[("offset(a.b.c1,-1)", &[0.0, 1.0, N, 3.0, 4.0])],
    );
    check(
        "absolute(offset(a.b.c1, -3))",
        &[("absolute(offset(a.b.c1,-3))", &[2.0, 1.0, N, 1.0, 2.0])],
    );
    check(
        "pow(a.b.c1, 2)",
        &[("pow(a.b.c1,2)", &[1.0, 4.0, N, 16.0, 25.0])],
    );
    check(
        "squareRoot(a.x.c1)",
        &[("squareRoot(a.x.c1)", &[std::f64::consts::SQRT_2; 5])],
    );
    check("invert(a.x.c1)", &[("invert(a.x.c1)", &[0.5; 5])]);
    check("log(a.x.c1, 2)", &[("log(a.x.c1, 2)", &[1.0; 5])]);
    check(
        "log(offset(a.b.c1,-1))",
        &[(
            "log(offset(a.b.c1,-1), 10)",
            &[N, 0.0, N, 0.47712125471966244, 0.6020599913279624],
        )],
    );
    check(
        "scaleToSeconds(a.x.c1, 1)",
        &[("scaleToSeconds(a.x.c1,1)", &[0.033333; 5])],
    );
    check(
        "offsetToZero(a.b.c2)",
        &[("offsetToZero(a.b.c2)", &[0.0, N, 20.0, 30.0, 40.0])],
    );
    check(
        "minMax(a.b.c1)",
        &[("minMax(a.b.c1)", &[0.0, 0.25, N, 0.75, 1.0])],
    );
    check(
        "isNonNull(a.b.c1)",
        &[("isNonNull(a.b.c1)", &[1.0, 1.0, 0.0, 1.0, 1.0])],
    );
    check(
        "round(halves)",
        &[("round(halves)", &[2.0, 2.0, -0.0, 0.0, 3.0])],
    );
    check(
        "round(halves, 1)",
        &[("round(halves,1)", &[1.5, 2.5, -0.5, 0.1, 2.7])],
    );
    check(
        "add(a.b.c1, 2.5)",
        &[("add(a.b.c1,2)", &[3.5, 4.5, N, 6.5, 7.5])],
    );
    check(
        "changed(a.b.c1)",
        &[("changed(a.b.c1)", &[0.0, 1.0, 0.0, 1.0, 1.0])],
    );
    check(
        "delay(a.b.c1, 1)",
        &[("delay(a.b.c1,1)", &[N, 1.0, 2.0, N, 4.0])],
    );
    check(
        "delay(a.b.c1, -2)",
        &[("delay(a.b.c1,-2)", &[N, 4.0, 5.0, N, N])],
    );
}

#[test]
fn derivatives_and_integrals() {
    check(
        "derivative(a.b.c1)",
        &[("derivative(a.b.c1)", &[N, 1.0, N, N, 1.0])],
    );
    check(
        "nonNegativeDerivative(counter)",
        &[("nonNegativeDerivative(counter)", &[N, 2.0, 3.0, N, 3.0])],
    );
    check(
        "nonNegativeDerivative(counter, 10)",
        &[("nonNegativeDerivative(counter)", &[N, 2.0, 3.0, 7.0, 3.0])],
    );
    check(
        "nonNegativeDerivative(counter, None, 0)",
        &[("nonNegativeDerivative(counter)", &[N, 2.0, 3.0, 2.0, 3.0])],
    );
    check(
        "nonNegativeDerivative(counter, 5)",
        &[("nonNegativeDerivative(counter)", &[N, 2.0, N, N, 3.0])],
    );
    check(
        "perSecond(counter)",
        &[("perSecond(counter)", &[N, 0.033333, 0.05, N, 0.05])],
    );
    check(
        "integral(a.b.c1)",
        &[("integral(a.b.c1)", &[1.0, 3.0, N, 7.0, 12.0])],
    );
    assert_eq!(eval("derivative(a.b.c1)")[0].tags["derivative"], "1");
}

#[test]
fn null_handling() {
    check(
        "keepLastValue(a.b.c1)",
        &[("keepLastValue(a.b.c1)", &[1.0, 2.0, 2.0, 4.0, 5.0])],
    );
    check(
        "keepLastValue(a.b.c1, 0)",
        &[("keepLastValue(a.b.c1)", &[1.0, 2.0, N, 4.0, 5.0])],
    );
    check(
        "keepLastValue(a.b.c2)",
        &[("keepLastValue(a.b.c2)", &[10.0, 10.0, 30.0, 40.0, 50.0])],
    );
    check(
        "transformNull(a.b.c1)",
        &[("transformNull(a.b.c1,0)", &[1.0, 2.0, 0.0, 4.0, 5.0])],
    );
    check(
        "transformNull(a.b.c1, -1)",
        &[("transformNull(a.b.c1,-1)", &[1.0, 2.0, -1.0, 4.0, 5.0])],
    );
    check(
        "transformNull(a.b.c1, 9, a.b.c2)",
        &[(
            "transformNull(a.b.c1,9,referenceSeries)",
            &[1.0, 2.0, 9.0, 4.0, 5.0],
        )],
    );
    check(
        "transformNull(a.b.c2, 9, a.b.c1)",
        &[(
            "transformNull(a.b.c2,9,referenceSeries)",
            &[10.0, 9.0, 30.0, 40.0, 50.0],
        )],
    );
    check(
        "interpolate(a.b.c1)",
        &[("interpolate(a.b.c1)", &[1.0, 2.0, 3.0, 4.0, 5.0])],
    );
    check(
        "removeEmptySeries(group(a.b.c1, empty.e))",
        &[("a.b.c1", &[1.0, 2.0, N, 4.0, 5.0])],
    );
    check("removeEmptySeries(a.b.c1, 0.9)", &[]);
}

#[test]
fn filters_by_value() {
    check(
        "removeBelowValue(a.b.c2, 35)",
        &[("removeBelowValue(a.b.c2, 35)", &[N, N, N, 40.0, 50.0])],
    );
    check(
        "removeAboveValue(a.b.c2, 35)",
        &[("removeAboveValue(a.b.c2, 35)", &[10.0, N, 30.0, N, N])],
    );
    check(
        "removeAbovePercentile(a.b.c2, 50)",
        &[(
            "removeAbovePercentile(a.b.c2, 50)",
            &[10.0, N, 30.0, 40.0, N],
        )],
    );
    check(
        "removeBelowPercentile(a.b.c2, 50)",
        &[("removeBelowPercentile(a.b.c2, 50)", &[N, N, N, 40.0, 50.0])],
    );
    check(
        "nPercentile(a.b.c2, 50)",
        &[("nPercentile(a.b.c2, 50)", &[40.0; 5])],
    );
    check("nPercentile(empty.e, 50)", &[]);
}

fn names(target: &str) -> Vec<String> {
    eval(target).into_iter().map(|s| s.name).collect()
}

#[test]
fn filters_and_sorting_by_series() {
    assert_eq!(names("highestMax(a.*.*, 1)"), ["a.b.c2"]);
    assert_eq!(names("highestCurrent(a.*.*, 2)"), ["a.b.c2", "a.b.c1"]);
    assert_eq!(names("highestAverage(a.*.*, 1)"), ["a.b.c2"]);
    assert_eq!(names("lowestAverage(a.*.*, 1)"), ["a.x.c1"]);
    assert_eq!(names("lowestCurrent(a.*.*, 1)"), ["a.x.c1"]);
    assert_eq!(
        names("lowestCurrent(group(empty.e, a.x.c1), 1)"),
        ["empty.e"],
        "no value sorts first"
    );
    assert_eq!(names("highest(a.*.*, 2, 'sum')"), ["a.b.c2", "a.b.c1"]);
    assert_eq!(names("lowest(a.*.*, 1, 'max')"), ["a.x.c1"]);
    assert_eq!(names("currentAbove(a.*.*, 4)"), ["a.b.c1", "a.b.c2"]);
    assert_eq!(
        names("currentBelow(group(a.*.*, empty.e), 5)"),
        ["a.b.c1", "a.x.c1", "empty.e"]
    );
    assert_eq!(names("averageAbove(a.*.*, 2)"), ["a.b.c1", "a.b.c2"]);
    assert_eq!(names("averageBelow(a.*.*, 3)"), ["a.b.c1", "a.x.c1"]);
    assert_eq!(names("maximumAbove(a.*.*, 5)"), ["a.b.c2"]);
    assert_eq!(names("maximumBelow(a.*.*, 5)"), ["a.b.c1", "a.x.c1"]);
    assert_eq!(names("minimumAbove(a.*.*, 1)"), ["a.b.c2", "a.x.c1"]);
    assert_eq!(names("minimumBelow(a.*.*, 1)"), ["a.b.c1"]);
    assert_eq!(
        names("filterSeries(a.*.*, 'max', '>=', 5)"),
        ["a.b.c1", "a.b.c2"]
    );
    assert_eq!(names("limit(a.*.*, 2)"), ["a.b.c1", "a.b.c2"]);
    assert_eq!(names("limit(a.*.*, 0)"), Vec::<String>::new());
    assert_eq!(names("exclude(a.*.*, 'x')"), ["a.b.c1", "a.b.c2"]);
    assert_eq!(names("grep(a.*.*, 'c2$')"), ["a.b.c2"]);
    assert_eq!(names("mostDeviant(a.*.*, 1)"), ["a.b.c2"]);
    assert_eq!(names("unique(a.b.c1, a.b.*)"), ["a.b.c1", "a.b.c2"]);
    assert_eq!(names("sortByMaxima(a.*.*)"), ["a.b.c2", "a.b.c1", "a.x.c1"]);
    assert_eq!(names("sortByTotal(a.*.*)"), ["a.b.c2", "a.b.c1", "a.x.c1"]);
    assert_eq!(names("sortByMinima(a.*.*)"), ["a.b.c1", "a.x.c1", "a.b.c2"]);
    assert_eq!(
        names("sortBy(a.*.*, 'average', true)"),
        ["a.b.c2", "a.b.c1", "a.x.c1"]
    );
    assert_eq!(
        names("sortByName(a.*.*, false, true)"),
        ["a.x.c1", "a.b.c2", "a.b.c1"]
    );
    assert_eq!(names("fallbackSeries(nothing.*, a.x.c1)"), ["a.x.c1"]);
    assert_eq!(names("fallbackSeries(a.b.c1, a.x.c1)"), ["a.b.c1"]);
    assert_eq!(
        names("group(a.b.c1, nothing, a.x.c1)"),
        ["a.b.c1", "a.x.c1"]
    );
}

#[test]
fn natural_name_sort() {
    let src = MemorySource::new();
    for h in ["host10", "host2", "host1"] {
        src.insert(&format!("n.{h}"), 60, [(T0, 1.0)]);
    }
    let got = eval_with(&src, "sortByName(n.*, true)", limits()).unwrap();
    let n: Vec<&str> = got.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(n, ["n.host1", "n.host2", "n.host10"]);
}

#[test]
fn aliases() {
    assert_eq!(names("alias(a.b.*, 'foo')"), ["foo", "foo"]);
    assert_eq!(names("aliasByNode(a.b.c1, 1, -1)"), ["b.c1"]);
    assert_eq!(names("aliasByNode(scale(a.b.c1, 2), 2)"), ["c1"]);
    assert_eq!(names("aliasByNode(a.b.c1, 9)"), [""]);
    assert_eq!(names("aliasByMetric(scale(a.b.c1, 2))"), ["c1"]);
    assert_eq!(names(r#"aliasSub(a.b.c1, "(^.*$)", "\1 A")"#), ["a.b.c1 A"]);
    assert_eq!(names(r"aliasSub(a.b.c1, 'b\.(c\d)', '\1-x')"), ["a.c1-x"]);
    assert_eq!(
        names(r#"aliasSub(alias(a.b.c1, 'x y'), "(^.*$)", "\1 B")"#),
        ["x y B"]
    );
    assert_eq!(
        names("aliasByTags(seriesByTag('name=disk.used'), 'host')"),
        ["db1", "web1", "web2"]
    );
    assert_eq!(
        names("aliasByTags(seriesByTag('dc=west'), 'name', 'dc')"),
        ["disk.used.west"]
    );
    assert_eq!(
        names("legendValue(a.b.c1, 'avg', 'total')"),
        ["a.b.c1 (avg: 3.0) (total: 12.0)"]
    );
    assert_eq!(
        names("legendValue(a.b.c1, 'bogus')"),
        ["a.b.c1 (bogus: (?))"]
    );
    assert_eq!(names("upper(a.b.c1)"), ["A.B.C1"]);
    assert_eq!(names("lower(upper(a.b.c1), 0)"), ["a.B.C1"]);
    assert_eq!(names("substr(a.b.c1, 1, 2)"), ["b"]);
    let s = &eval("alias(a.b.c1, 'foo')")[0];
    assert_eq!(s.tags["name"], "a.b.c1", "aliases keep tags");
    assert!(matches!(
        err("aliasSub(a.b.c1, '(', 'x')"),
        EvalError::Regex { .. }
    ));
}

#[test]
fn grouping() {
    check(
        "groupByNode(a.*.*, 1, 'sum')",
        &[("b", &[11.0, 2.0, 30.0, 44.0, 55.0]), ("x", &[2.0; 5])],
    );
    check(
        "groupByNode(a.*.*, 1)",
        &[("b", &[5.5, 2.0, 30.0, 22.0, 27.5]), ("x", &[2.0; 5])],
    );
    check(
        "groupByNode(a.*.*, 1, 'sumSeries')",
        &[("b", &[11.0, 2.0, 30.0, 44.0, 55.0]), ("x", &[2.0; 5])],
    );
    check(
        "groupByNodes(a.*.*, 'sum', 0, 2)",
        &[
            ("a.c1", &[3.0, 4.0, 2.0, 6.0, 7.0]),
            ("a.c2", &[10.0, N, 30.0, 40.0, 50.0]),
        ],
    );
    check(
        "sumSeriesWithWildcards(a.*.*, 1)",
        &[
            ("a.c1", &[3.0, 4.0, 2.0, 6.0, 7.0]),
            ("a.c2", &[10.0, N, 30.0, 40.0, 50.0]),
        ],
    );
    check(
        "averageSeriesWithWildcards(a.*.*, 1)",
        &[
            ("a.c1", &[1.5, 2.0, 2.0, 3.0, 3.5]),
            ("a.c2", &[10.0, N, 30.0, 40.0, 50.0]),
        ],
    );
    check(
        "multiplySeriesWithWildcards(a.*.c1, 1)",
        &[("a.c1", &[2.0, 4.0, N, 8.0, 10.0])],
    );
    check(
        "aggregateWithWildcards(a.*.*, 'max', 1)",
        &[
            ("a.c1", &[2.0, 2.0, 2.0, 4.0, 5.0]),
            ("a.c2", &[10.0, N, 30.0, 40.0, 50.0]),
        ],
    );
    check(
        "groupByTags(seriesByTag('name=disk.used'), 'sum', 'dc')",
        &[
            ("disk.used;dc=east", &[6.0; 5]),
            ("disk.used;dc=west", &[3.0; 5]),
        ],
    );
    let g = eval("groupByTags(seriesByTag('name=disk.used'), 'sum', 'dc')");
    assert_eq!(g[0].tags.get("dc").map(String::as_str), Some("east"));
    assert!(matches!(
        err("groupByTags(a.b.c1, 'sum')"),
        EvalError::MissingParam { .. }
    ));
    check(
        "sumSeriesLists(a.b.*, a.b.*)",
        &[
            ("sumSeries(a.b.c1,a.b.c1)", &[2.0, 4.0, N, 8.0, 10.0]),
            ("sumSeries(a.b.c2,a.b.c2)", &[20.0, N, 60.0, 80.0, 100.0]),
        ],
    );
    assert!(matches!(
        err("sumSeriesLists(a.b.*, a.x.c1)"),
        EvalError::Input { .. }
    ));
    check(
        "percentileOfSeries(a.*.*, 50)",
        &[("percentileOfSeries(a.*.*,50)", &[2.0, 2.0, 30.0, 4.0, 5.0])],
    );
    check(
        "applyByNode(a.*.c1, 1, 'sumSeries(%.*)', '%.total')",
        &[
            ("a.b.total", &[11.0, 2.0, 30.0, 44.0, 55.0]),
            ("a.x.total", &[2.0; 5]),
        ],
    );
    check(
        "weightedAverage(a.b.c1, a.x.c1)",
        &[(
            "weightedAverage(a.b.c1, a.x.c1, )",
            &[1.0, 2.0, N, 4.0, 5.0],
        )],
    );
    check(
        "powSeries(a.x.c1, a.x.c1)",
        &[("powSeries(a.x.c1,a.x.c1)", &[4.0; 5])],
    );
}

#[test]
fn tags_and_series_by_tag() {
    let got = eval("seriesByTag('dc=east')");
    let n: Vec<&str> = got.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        n,
        ["disk.used;dc=east;host=db1", "disk.used;dc=east;host=web1"]
    );
    assert_eq!(got[1].tags["host"], "web1");
    assert_eq!(got[1].tags["name"], "disk.used");
    assert_eq!(names("seriesByTag('name=disk.used', 'host=~web')").len(), 2);
    assert_eq!(
        names("seriesByTag('name=disk.used', 'host!=~web')"),
        ["disk.used;dc=east;host=db1"]
    );
    assert!(matches!(
        err("seriesByTag('dc!=east')"),
        EvalError::Input { .. }
    ));
    assert_eq!(
        names("disk.used;dc=east;host=web1"),
        ["disk.used;dc=east;host=web1"]
    );
}

#[test]
fn moving_windows_fetch_history() {
    check(
        "movingAverage(long, 2)",
        &[("movingAverage(long,2)", &[-0.5, 0.5, 1.5, 2.5, 3.5])],
    );
    check(
        "movingAverage(long, '2min')",
        &[("movingAverage(long,\"2min\")", &[-0.5, 0.5, 1.5, 2.5, 3.5])],
    );
    check(
        "movingAverage(long, windowSize=2)",
        &[("movingAverage(long,2)", &[-0.5, 0.5, 1.5, 2.5, 3.5])],
    );
    check(
        "movingSum(long, 2)",
        &[("movingSum(long,2)", &[-1.0, 1.0, 3.0, 5.0, 7.0])],
    );
    check(
        "movingMax(long, 3)",
        &[("movingMax(long,3)", &[0.0, 1.0, 2.0, 3.0, 4.0])],
    );
    check(
        "movingMin(long, 3)",
        &[("movingMin(long,3)", &[-2.0, -1.0, 0.0, 1.0, 2.0])],
    );
    check(
        "movingMedian(long, 3)",
        &[("movingMedian(long,3)", &[-1.0, 0.0, 1.0, 2.0, 3.0])],
    );
    check(
        "movingWindow(long, 2, 'sum')",
        &[("movingSum(long,2)", &[-1.0, 1.0, 3.0, 5.0, 7.0])],
    );
    // a.b.c1 has no history: the first window holds only its first point.
    check(
        "movingAverage(a.b.c1, 2)",
        &[("movingAverage(a.b.c1,2)", &[1.0, 1.5, 2.0, 4.0, 4.5])],
    );
    check(
        "movingAverage(a.b.c1, 2, 0.6)",
        &[("movingAverage(a.b.c1,2)", &[N, 1.5, N, N, 4.5])],
    );
    let e = &eval("exponentialMovingAverage(long, 2)")[0];
    assert_eq!(e.name, "exponentialMovingAverage(long,2)");
    assert_eq!(&e.values[..4], &[-1.5, -0.5, 0.5, 1.5]);
    assert_eq!(e.start, T0);
    check("movingAverage(nothing, 2)", &[]);
}

#[test]
fn summarize_and_hitcount() {
    check(
        "summarize(a.b.c1, '2min')",
        &[("summarize(a.b.c1, \"2min\", \"sum\")", &[3.0, 4.0, 5.0])],
    );
    check(
        "summarize(a.b.c1, '2min', 'max')",
        &[("summarize(a.b.c1, \"2min\", \"max\")", &[2.0, 4.0, 5.0])],
    );
    check(
        "summarize(a.b.c1, '2min', 'avg', true)",
        &[(
            "summarize(a.b.c1, \"2min\", \"avg\", true)",
            &[1.5, 4.0, 5.0],
        )],
    );
    let s = &eval("summarize(a.b.c1, '2min')")[0];
    assert_eq!((s.start, s.end, s.step), (T0, T0 + 360, 120));
    check(
        "hitcount(a.x.c1, '2min')",
        &[("hitcount(a.x.c1, \"2min\")", &[120.0, 240.0, 240.0])],
    );
    let h = &eval("hitcount(a.x.c1, '2min')")[0];
    assert_eq!((h.start, h.step), (T0 - 60, 120));
    check(
        "smartSummarize(a.b.c1, '2min')",
        &[(
            "smartSummarize(a.b.c1, \"2min\", \"sum\")",
            &[3.0, 4.0, 5.0],
        )],
    );
}

#[test]
fn time_shifts() {
    check(
        "timeShift(long, '1min')",
        &[("timeShift(long, \"-1min\")", &[-1.0, 0.0, 1.0, 2.0, 3.0])],
    );
    // `until` is clamped to now, so the shifted window has one point less.
    check(
        "timeShift(long, '+1min')",
        &[("timeShift(long, \"+1min\")", &[1.0, 2.0, 3.0, 4.0])],
    );
    let s = &eval("timeShift(long, '1min')")[0];
    assert_eq!(s.start, T0);
    assert_eq!(eval("timeStack(long, '1min', 0, 3)").len(), 3);
    // graphite-web walks from the request start, not the series start (one step earlier).
    check(
        "timeSlice(a.b.c1, '1700000100', '1700000160')",
        &[(
            "timeSlice(a.b.c1, 1700000100, 1700000160)",
            &[N, N, N, 4.0, N],
        )],
    );
}

#[test]
fn special_and_graph_functions() {
    check("constantLine(5)", &[("5.0", &[5.0, 5.0, 5.0])]);
    let c = &eval("constantLine(5)")[0];
    assert_eq!((c.start, c.step), (T0 - 60, 150));
    check(
        "threshold(5, 'limit', 'red')",
        &[("limit", &[5.0, 5.0, 5.0])],
    );
    assert_eq!(
        eval("threshold(5, 'l', 'red')")[0].options.color.as_deref(),
        Some("red")
    );
    check(
        "consolidateBy(a.b.c1, 'max')",
        &[("consolidateBy(a.b.c1,\"max\")", &[1.0, 2.0, N, 4.0, 5.0])],
    );
    assert_eq!(
        eval("consolidateBy(a.b.c1, 'max')")[0].consolidation,
        crate::series::Consolidation::Max
    );
    check(
        "cumulative(a.b.c1)",
        &[("consolidateBy(a.b.c1,\"sum\")", &[1.0, 2.0, N, 4.0, 5.0])],
    );
    check(
        "stacked(a.b.*)",
        &[
            ("stacked(a.b.c1)", &[1.0, 2.0, N, 4.0, 5.0]),
            ("stacked(a.b.c2)", &[11.0, N, 30.0, 44.0, 55.0]),
        ],
    );
    check(
        "dashed(a.b.c1)",
        &[("dashed(a.b.c1, 5)", &[1.0, 2.0, N, 4.0, 5.0])],
    );
    check(
        "secondYAxis(a.b.c1)",
        &[("secondYAxis(a.b.c1)", &[1.0, 2.0, N, 4.0, 5.0])],
    );
    check(
        "drawAsInfinite(a.b.c1)",
        &[("drawAsInfinite(a.b.c1)", &[1.0, 2.0, N, 4.0, 5.0])],
    );
    check(
        "color(lineWidth(alpha(a.b.c1, 0.5), 3), 'blue')",
        &[("a.b.c1", &[1.0, 2.0, N, 4.0, 5.0])],
    );
    assert_eq!(
        names("areaBetween(a.b.*)"),
        ["areaBetween(a.b.*)", "areaBetween(a.b.*)"]
    );
    assert!(eval("setXFilesFactor(a.b.c1, 0.5)")[0].xff == 0.5);
    assert_eq!(eval("identity('t')")[0].values[0], (T0 - 60) as f64);
    assert_eq!(eval("time('t', 120)")[0].values.len(), 3);
}

#[test]
fn argument_validation_errors() {
    assert!(matches!(
        err("nosuchFunction(a.b.c1)"),
        EvalError::UnknownFunction { .. }
    ));
    assert_eq!(
        err("nosuchFunction(a.b.c1)").to_string(),
        "Received request for unknown function: nosuchFunction"
    );
    assert!(matches!(
        err("scale(a.b.c1, 'x')"),
        EvalError::ParamType { .. }
    ));
    assert!(matches!(
        err("movingAverage(a.b.c1)"),
        EvalError::MissingParam { .. }
    ));
    assert!(matches!(
        err("summarize(a.b.c1, '1x')"),
        EvalError::ParamType { .. }
    ));
    assert!(matches!(
        err("consolidateBy(a.b.c1, 'bogus')"),
        EvalError::ParamOption { .. }
    ));
    assert!(matches!(
        err("absolute(a.b.c1, 2)"),
        EvalError::TooManyParams { .. }
    ));
    assert!(matches!(
        err("scale(a.b.c1, fact=2)"),
        EvalError::MissingParam { .. }
    ));
    assert!(matches!(
        err("scale(a.b.c1, 2, fact=2)"),
        EvalError::TooManyParams { .. }
    ));
    assert!(matches!(
        err("movingAverage(a.b.c1, 2, bogus=1)"),
        EvalError::UnexpectedKwargs { .. }
    ));
    assert!(matches!(
        err("limit(a.b.c1, 1.5)"),
        EvalError::ParamType { .. }
    ));
    assert!(matches!(err("scale(2, 2)"), EvalError::ParamType { .. }));
    assert!(matches!(
        err("aggregate(a.b.c1, 'nope')"),
        EvalError::ParamOption { .. }
    ));
    assert_eq!(
        names("scale(seriesList=a.b.c1, factor=1)"),
        ["scale(a.b.c1,1)"]
    );
    assert_eq!(
        err("scale(a.b.c1, 'x')").to_string(),
        "scale(): parameter factor expects a number, got 'x'"
    );
}

#[test]
fn templates_substitute_paths() {
    check(
        "template(a.$n.c1, n='b')",
        &[("a.b.c1", &[1.0, 2.0, N, 4.0, 5.0])],
    );
    check(
        "template(scale(a.b.$1, 2), 'c1')",
        &[("scale(a.b.c1,2)", &[2.0, 4.0, N, 8.0, 10.0])],
    );
}

#[test]
fn limits_are_enforced() {
    let tight = EvalLimits {
        max_series: 1,
        ..limits()
    };
    assert!(matches!(
        eval_with(&source(), "a.b.*", tight),
        Err(EvalError::TooManySeries { .. })
    ));
    let tight = EvalLimits {
        max_points: 6,
        ..limits()
    };
    assert!(matches!(
        eval_with(&source(), "a.b.*", tight),
        Err(EvalError::TooManyPoints { .. })
    ));
    let past = EvalLimits {
        deadline: Some(std::time::Instant::now() - std::time::Duration::from_secs(1)),
        ..limits()
    };
    assert!(matches!(
        eval_with(&source(), "a.b.*", past),
        Err(EvalError::Timeout { .. })
    ));
}

#[test]
fn every_function_matches_graphite_web_schema() {
    // The reference catalogue as served by graphite-web 1.1.10 (spec data file).
    let text = include_str!("../../tests/data/functions-params-graphite-web-1.1.10.json");
    // graphite-web wrote the bare token Infinity (not JSON) for infinite defaults.
    let text = text.replace(": Infinity", ": \"Infinity\"");
    let reference: serde_json::Value = serde_json::from_str(&text).expect("reference JSON");
    let all = super::all();
    assert!(all.len() >= 100, "only {} functions", all.len());
    for def in all {
        let r = reference
            .get(def.name)
            .unwrap_or_else(|| panic!("{} is not a graphite-web function", def.name));
        let ours = def.to_json();
        assert_eq!(ours["group"], r["group"], "group of {}", def.name);
        let (op, rp) = (
            ours["params"].as_array().unwrap(),
            r["params"].as_array().unwrap(),
        );
        assert_eq!(op.len(), rp.len(), "param count of {}", def.name);
        for (o, r) in op.iter().zip(rp) {
            for key in ["name", "type", "required", "multiple", "suggestions"] {
                assert_eq!(o.get(key), r.get(key), "{}.{} {key}", def.name, r["name"]);
            }
            let inf_default = r.get("default").and_then(|d| d.as_str()) == Some("Infinity");
            if inf_default {
                assert_eq!(o["default"], super::INF_MARKER, "{} default", def.name);
            } else {
                let (od, rd) = (o.get("default"), r.get("default"));
                let same = match (od.and_then(|v| v.as_f64()), rd.and_then(|v| v.as_f64())) {
                    (Some(a), Some(b)) => a == b,
                    _ => od == rd,
                };
                assert!(same, "{}.{} default {od:?} vs {rd:?}", def.name, r["name"]);
            }
            if r["type"] == "aggOrSeriesFunc" {
                // Only implemented functions are offered: ours must be a subset.
                let theirs = r["options"].as_array().unwrap();
                for opt in o["options"].as_array().unwrap() {
                    assert!(theirs.contains(opt), "{} option {opt}", def.name);
                }
            } else {
                assert_eq!(
                    o.get("options"),
                    r.get("options"),
                    "{}.{} options",
                    def.name,
                    r["name"]
                );
            }
        }
    }
}

/// A plausible value for a parameter, used to call every function generically.
fn sample_arg(p: &super::Param, series: &str) -> String {
    use super::{Lit, Options, ParamType};
    if let Options::List(opts) = p.options
        && let Some(Lit::Str(s)) = opts.iter().find(|o| matches!(o, Lit::Str(_)))
    {
        return format!("'{s}'");
    }
    match p.ty {
        ParamType::SeriesList | ParamType::SeriesLists => series.to_owned(),
        ParamType::Integer | ParamType::Node | ParamType::IntOrInf => "1".into(),
        ParamType::Float => "0.5".into(),
        ParamType::Boolean => "false".into(),
        ParamType::Interval | ParamType::IntOrInterval => "'2min'".into(),
        ParamType::AggFunc | ParamType::AggOrSeriesFunc => "'sum'".into(),
        ParamType::NodeOrTag | ParamType::Tag => "'dc'".into(),
        ParamType::Date => format!("'{}'", T0),
        ParamType::String | ParamType::Any => match p.name {
            "tagExpressions" => "'dc=east'".into(),
            "templateFunction" => "'sumSeries(%.*)'".into(),
            "theColor" | "color" => "'red'".into(),
            "pattern" | "search" => "'c'".into(),
            _ => "'x'".into(),
        },
    }
}

/// Every function called with its required arguments on empty input, on series of different
/// steps and on series with nulls: no panic, and no series conjured from an empty list.
#[test]
fn every_function_survives_empty_mismatched_and_null_input() {
    let generators = [
        "constantLine",
        "threshold",
        "countSeries",
        "identity",
        "time",
        "timeFunction",
        "sin",
        "sinFunction",
        "seriesByTag",
        "verticalLine",
        "fallbackSeries",
        "applyByNode",
        "randomWalk",
        "randomWalkFunction",
        "events",
    ];
    for def in super::all() {
        for input in ["nothing.*", "group(a.b.c1, s30.m)", "group(a.b.*, empty.e)"] {
            let args: Vec<String> = def
                .params
                .iter()
                .filter(|p| p.required || p.multiple && p.ty == super::ParamType::SeriesList)
                .map(|p| sample_arg(p, input))
                .collect();
            let target = format!("{}({})", def.name, args.join(", "));
            let result = std::panic::catch_unwind(|| eval_with(&source(), &target, limits()));
            let Ok(result) = result else {
                panic!("{target} panicked")
            };
            if let Ok(list) = result
                && input == "nothing.*"
                && !generators.contains(&def.name)
            {
                assert!(
                    list.is_empty(),
                    "{target} made {} series from nothing",
                    list.len()
                );
            }
        }
    }
}

#[test]
fn less_common_functions() {
    // Buckets count from the request start (T0-60), so resets fall at T0+60 and T0+180.
    check(
        "integralByInterval(a.x.c1, '2min')",
        &[(
            "integralByInterval(a.x.c1,'2min')",
            &[2.0, 2.0, 4.0, 2.0, 4.0],
        )],
    );
    check("stdev(a.x.c1, 2)", &[("stdev(a.x.c1,2)", &[0.0; 5])]);
    check(
        "aggregateLine(a.b.c1)",
        &[("aggregateLine(a.b.c1, 3)", &[3.0, 3.0, 3.0])],
    );
    check(
        "aggregateLine(a.b.c1, 'max', true)",
        &[("aggregateLine(a.b.c1, 5)", &[5.0; 5])],
    );
    check(
        "exp(offset(scale(a.x.c1, 0), -1))",
        &[("exp(offset(scale(a.x.c1,0),-1))", &[(-1.0f64).exp(); 5])],
    );
    check(
        "sigmoid(scale(a.x.c1, 0))",
        &[("sigmoid(scale(a.x.c1,0))", &[0.5; 5])],
    );
    check(
        "logit(scale(a.x.c1, 0.25))",
        &[("logit(scale(a.x.c1,0.25))", &[0.0; 5])],
    );
    check(
        "squareRoot(offset(a.x.c1, -3))",
        &[("squareRoot(offset(a.x.c1,-3))", &[N; 5])],
    );
    check(
        "invert(scale(a.x.c1, 0))",
        &[("invert(scale(a.x.c1,0))", &[N; 5])],
    );
    check(
        "xFilesFactor(a.b.c1, 0.5)",
        &[("a.b.c1", &[1.0, 2.0, N, 4.0, 5.0])],
    );
    check(
        "useSeriesAbove(a.b.c*, 20, 'c2', 'c1')",
        &[("a.b.c1", &[1.0, 2.0, N, 4.0, 5.0])],
    );
    assert_eq!(
        names("legendValue(a.b.c2, 'max', 'si')"),
        ["a.b.c2              max  50.00     "]
    );
    assert_eq!(
        names("legendValue(scale(a.b.c2, 1000), 'max', 'si')"),
        ["scale(a.b.c2,1000)  max  50.00k    "]
    );
    let v = &eval("verticalLine('1700000100', 'deploy', 'blue')")[0];
    assert_eq!(
        (v.name.as_str(), v.start, v.values.len()),
        ("deploy", 1_700_000_100, 2)
    );
    assert!(matches!(
        err("verticalLine('1600000000')"),
        EvalError::Input { .. }
    ));
    let s = &eval("sin('wave', 2)")[0];
    assert_eq!(s.values[0], ((T0 - 60) as f64).sin() * 2.0);
}

#[test]
fn holt_winters_and_linear_regression() {
    // A constant series forecasts itself once it has a previous point.
    check(
        "holtWintersForecast(a.x.c1, '2min', '1min')",
        &[("holtWintersForecast(a.x.c1)", &[N, 2.0, 2.0, 2.0, 2.0])],
    );
    let f = &eval("holtWintersForecast(a.x.c1, '2min', '1min')")[0];
    assert_eq!(f.start, T0);
    assert_eq!(
        f.tags.get("holtWintersDeviation").map(String::as_str),
        Some("1")
    );
    let bands = eval("holtWintersConfidenceBands(a.x.c1, 3, '2min', '1min')");
    let n: Vec<&str> = bands.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        n,
        [
            "holtWintersConfidenceLower(a.x.c1)",
            "holtWintersConfidenceUpper(a.x.c1)"
        ]
    );
    check(
        "holtWintersAberration(a.x.c1, 3, '2min', '1min')",
        &[("holtWintersAberration(a.x.c1)", &[0.0; 5])],
    );
    assert_eq!(
        eval("holtWintersConfidenceArea(a.x.c1, 3, '2min', '1min')").len(),
        2
    );
    // long is the line (t - T0) / 60: the fit reproduces it.
    let name = format!("linearRegression(long, {}, {})", T0 - 60, T0 + 240);
    check(
        "linearRegression(long)",
        &[(name.as_str(), &[0.0, 1.0, 2.0, 3.0, 4.0])],
    );
    check("linearRegression(empty.e)", &[]);
}

/// Evaluates over `[start, end)` of `src` (now = end).
fn eval_over(src: &MemorySource, target: &str, start: i64, end: i64) -> Vec<Series> {
    let expr = parse_target(target, 64).unwrap_or_else(|e| panic!("{target}: {e}"));
    let mut ctx = Ctx::new(src, start, end, end, TimeZone::UTC, limits());
    ctx.evaluate_targets(&[expr])
        .unwrap_or_else(|e| panic!("{target}: {e}"))
}

#[test]
fn percentile_band_filters() {
    // Constants 2, 4, 6, 8, 10: with n = 30 (or 70) the band runs from the 30th percentile (4)
    // to the 70th (10), exclusive, so only the series always strictly inside (6, 8) go.
    let five = "a.x.c1, scale(a.x.c1, 2), scale(a.x.c1, 3), scale(a.x.c1, 4), scale(a.x.c1, 5)";
    let kept = ["a.x.c1", "scale(a.x.c1,2)", "scale(a.x.c1,5)"];
    assert_eq!(
        names(&format!("removeBetweenPercentile(group({five}), 30)")),
        kept
    );
    assert_eq!(
        names(&format!("removeBetweenPercentile(group({five}), 70)")),
        kept
    );
    // A null is never inside the band: the 7-series with a gap is kept, the 8-series is not.
    assert_eq!(
        names(
            "removeBetweenPercentile(group(a.x.c1, scale(a.x.c1, 2), offset(scale(a.b.c1, 0), 7), \
             scale(a.x.c1, 4), scale(a.x.c1, 5)), 30)"
        ),
        [
            "a.x.c1",
            "scale(a.x.c1,2)",
            "offset(scale(a.b.c1,0),7)",
            "scale(a.x.c1,5)"
        ]
    );
    // Positions, not timestamps: the longer 30 s series has values past the common columns,
    // which have no band and count as outside; it takes part in the bands it reaches.
    assert_eq!(
        names(&format!(
            "removeBetweenPercentile(group({five}, s30.m), 30)"
        )),
        [
            "a.x.c1",
            "scale(a.x.c1,2)",
            "scale(a.x.c1,4)",
            "scale(a.x.c1,5)",
            "s30.m"
        ]
    );
    check("removeBetweenPercentile(nothing.*, 30)", &[]);
    // The values themselves are untouched.
    check(
        "removeBetweenPercentile(group(a.b.c1, a.b.c2), 50)",
        &[
            ("a.b.c1", &[1.0, 2.0, N, 4.0, 5.0]),
            ("a.b.c2", &[10.0, N, 30.0, 40.0, 50.0]),
        ],
    );

    // Averages 2, 3, 32.5, 3.4, 1.26: band (2, 32.5) for n = 30 or 70.
    let avgs = "a.x.c1, a.b.c1, a.b.c2, counter, halves";
    let outside = ["a.x.c1", "a.b.c2", "halves"];
    assert_eq!(
        names(&format!("averageOutsidePercentile(group({avgs}), 30)")),
        outside
    );
    assert_eq!(
        names(&format!("averageOutsidePercentile(group({avgs}), 70)")),
        outside
    );
    // A series without values has no average: it is not inside the band.
    assert_eq!(
        names(&format!(
            "averageOutsidePercentile(group({avgs}, empty.e), 30)"
        )),
        ["a.x.c1", "a.b.c2", "halves", "empty.e"]
    );
    // Steps do not matter (each series' own average): s30.m (average 1) moves the band to
    // (2, 3.4), which drops only a.b.c1.
    assert_eq!(
        names(&format!(
            "averageOutsidePercentile(group({avgs}, s30.m), 30)"
        )),
        ["a.x.c1", "a.b.c2", "counter", "halves", "s30.m"]
    );
    check("averageOutsidePercentile(nothing.*, 30)", &[]);
}

#[test]
fn cacti_style_legends() {
    // Expected names are graphite-web 1.1.10's cactiStyle on the same values.
    assert_eq!(
        names("cactiStyle(group(a.b.c1, a.b.c2))"),
        [
            "a.b.c1 Current:5.00     Max:5.00     Min:1.00     ",
            "a.b.c2 Current:50.00    Max:50.00    Min:10.00    "
        ]
    );
    assert_eq!(
        names("cactiStyle(scale(a.b.c2, 1000), 'si', 'b')"),
        ["scale(a.b.c2,1000) Current:50.00 kb    Max:50.00 kb    Min:10.00 kb    "]
    );
    assert_eq!(
        names("cactiStyle(scale(a.b.c2, 1024), 'binary')"),
        ["scale(a.b.c2,1024) Current:50.00Ki    Max:50.00Ki    Min:10.00Ki    "]
    );
    assert_eq!(
        names("cactiStyle(a.x.c1, units='ms')"),
        ["a.x.c1 Current:2.00 ms    Max:2.00 ms    Min:2.00 ms    "]
    );
    let src = source();
    src.insert("zero", 60, [(T0, 0.0), (T0 + 60, -0.5)]);
    src.insert("big", 60, [(T0, 123_456_789.0), (T0 + 60, -2.0)]);
    let names_over = |t: &str| -> Vec<String> {
        eval_over(&src, t, T0 - 60, T0 + 240)
            .into_iter()
            .map(|s| s.name)
            .collect()
    };
    // Nulls: no value prints nan; widths take 3 for a missing or zero value.
    assert_eq!(
        names_over("cactiStyle(group(a.b.c1, empty.e, zero))"),
        [
            "a.b.c1  Current:5.00    Max:5.00    Min:1.00    ",
            "empty.e Current:nan     Max:nan     Min:nan     ",
            "zero    Current:-0.50   Max:0.00    Min:-0.50   "
        ]
    );
    // Widths are measured on the integer part of each value.
    assert_eq!(
        names_over("cactiStyle(group(halves, big), 'si')"),
        [
            "halves Current:2.67     Max:2.67       Min:-0.50    ",
            "big    Current:-2.00    Max:123.46M    Min:-2.00    "
        ]
    );
    // Only the name changes.
    let s = &eval("cactiStyle(a.b.c1)")[0];
    assert_eq!(s.tags["name"], "a.b.c1");
    assert_eq!(s.path_expression, "a.b.c1");
    check("cactiStyle(nothing.*)", &[]);
    assert!(matches!(
        err("cactiStyle(a.b.c1, 'metric')"),
        EvalError::ParamOption { .. }
    ));
}

#[test]
fn compress_periodic_gaps() {
    // Expected series are graphite-web 1.1.10's _compressPeriodicGaps on the same values.
    let src = source();
    let base = T0 + 6000;
    let put = |name: &str, vals: &[f64]| {
        src.insert(
            name,
            60,
            vals.iter()
                .enumerate()
                .filter(|(_, v)| !v.is_nan())
                .map(|(i, v)| (base + i as i64 * 60, *v))
                .collect::<Vec<_>>(),
        );
    };
    put(
        "p.one",
        &[N, 1.0, N, N, 2.0, N, N, 3.0, N, N, 4.0, N, N, 5.0, N],
    );
    // A value at index 0 is passed over by the detection (graphite-web's firstSeen test).
    put(
        "p.first",
        &[1.0, N, N, 2.0, N, N, 3.0, N, N, 4.0, N, N, 5.0, N, N],
    );
    // 0 counts as missing while detecting.
    put(
        "p.zero",
        &[N, 0.0, N, N, 2.0, N, N, 3.0, N, N, 4.0, N, N, 5.0, N],
    );
    let over = |t: &str| eval_over(&src, t, base - 60, base + 14 * 60);
    let got = over("compressPeriodicGaps(p.one)");
    assert_eq!(got[0].name, "compressPeriodicGaps(p.one)");
    assert_eq!(
        (got[0].start, got[0].end, got[0].step),
        (base + 60, base + 780, 180)
    );
    assert_eq!(got[0].values, [1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(got[0].path_expression, "compressPeriodicGaps(p.one)");
    assert_eq!(got[0].tags["name"], "p.one");
    let got = over("compressPeriodicGaps(p.first)");
    assert_eq!(
        (got[0].start, got[0].end, got[0].step),
        (base + 180, base + 720, 180)
    );
    assert_eq!(got[0].values, [2.0, 3.0, 4.0, 5.0]);
    let got = over("compressPeriodicGaps(p.zero)");
    assert_eq!(
        (got[0].start, got[0].end, got[0].step),
        (base + 240, base + 780, 180)
    );
    assert_eq!(got[0].values, [2.0, 3.0, 4.0, 5.0]);
    // Too short to confirm the period (graphite-web needs a value after the third one).
    let short = eval_over(
        &src,
        "compressPeriodicGaps(p.one)",
        base - 60,
        base + 7 * 60,
    );
    assert_eq!((short[0].start, short[0].step), (base, 60));
    assert_eq!(short[0].values.len(), 8);
    // No period: values and timing kept, only the name changes.
    check(
        "compressPeriodicGaps(a.b.c1)",
        &[("compressPeriodicGaps(a.b.c1)", &[1.0, 2.0, N, 4.0, 5.0])],
    );
    check(
        "compressPeriodicGaps(empty.e)",
        &[("compressPeriodicGaps(empty.e)", &[N; 5])],
    );
    check("compressPeriodicGaps(nothing.*)", &[]);
    // Series of different steps are handled one by one.
    let both = over("compressPeriodicGaps(group(p.one, s30.m))");
    assert_eq!((both[0].step, both[1].step), (180, 30));
}

#[test]
fn map_and_reduce_series() {
    // mapSeries: groups by key in order of first appearance, one after another.
    assert_eq!(names("mapSeries(a.*.*, 2)"), ["a.b.c1", "a.x.c1", "a.b.c2"]);
    assert_eq!(names("map(a.*.*, 1)"), ["a.b.c1", "a.b.c2", "a.x.c1"]);
    assert_eq!(
        names("mapSeries(seriesByTag('name=disk.used'), 'dc')"),
        [
            "disk.used;dc=east;host=db1",
            "disk.used;dc=east;host=web1",
            "disk.used;dc=west;host=web2"
        ]
    );
    check("mapSeries(nothing.*, 1)", &[]);

    check(
        "reduceSeries(mapSeries(a.b.*, 1), 'divideSeries', 2, 'c1', 'c2')",
        &[("a.b.reduce.divideSeries", &[0.1, N, N, 0.1, 0.1])],
    );
    let s = &eval("reduce(map(a.b.*, 1), 'asPercent', 2, 'c1', 'c2')")[0];
    assert_eq!(s.name, "a.b.reduce.asPercent");
    // The reducing function's tags stay (graphite-web renames only).
    assert_eq!(s.tags["name"], "asPercent(a.b.c1,a.b.c2)");
    // Arguments follow the matchers' order; a negative node counts from the end. diffSeries
    // rows: 10-1, then only c1 (2), then only c2 (30), …
    check(
        "reduceSeries(a.b.*, 'diffSeries', -1, 'c2', 'c1')",
        &[("a.b.reduce.diffSeries", &[9.0, 2.0, 30.0, 36.0, 45.0])],
    );
    // Each prefix is reduced separately.
    assert_eq!(
        names("reduceSeries(mapSeries(a.*.*, 1), 'sumSeries', 2, 'c1')"),
        ["a.b.reduce.sumSeries", "a.x.reduce.sumSeries"]
    );
    // Mismatched steps: the reducing function normalises as usual.
    let reduced = eval(
        "reduceSeries(group(a.x.c1, aliasSub(s30.m, 's30.m', 'a.x.c2')), 'sumSeries', 2, 'c1', 'c2')",
    );
    let direct = eval("sumSeries(a.x.c1, s30.m)");
    assert_eq!(reduced[0].name, "a.x.reduce.sumSeries");
    assert_eq!(
        (reduced[0].start, reduced[0].step, reduced[0].values.len()),
        (direct[0].start, 60, direct[0].values.len())
    );
    assert_eq!(reduced[0].values, direct[0].values);
    check("reduceSeries(nothing.*, 'sumSeries', 1, 'x')", &[]);
    // A function that is never called need not exist.
    check("reduceSeries(a.b.*, 'nope', 2, 'zz')", &[]);
    // Where graphite-web raises (500), a 400 naming the case.
    assert!(matches!(
        err("reduceSeries(mapSeries(a.*.*, 1), 'asPercent', 2, 'c1', 'c2')"),
        EvalError::Input { .. }
    ));
    assert!(matches!(
        err("reduceSeries(a.b.*, 'sumSeries', 5, 'c1')"),
        EvalError::Input { .. }
    ));
    assert!(matches!(
        err("reduceSeries(a.b.*, 'nope', 2, 'c1')"),
        EvalError::UnknownFunction { .. }
    ));
    assert!(matches!(
        err("mapSeries(a.b.*)"),
        EvalError::MissingParam { .. }
    ));
}

#[test]
fn random_walk() {
    for target in ["randomWalk('walk')", "randomWalkFunction('walk')"] {
        let got = eval(target);
        assert_eq!(got.len(), 1);
        let w = &got[0];
        assert_eq!(w.name, "walk");
        assert_eq!(w.tags["name"], "walk");
        assert_eq!((w.start, w.end, w.step), (T0 - 60, T0 + 240, 60));
        assert_eq!(w.values.len(), 5);
        assert_eq!(w.values[0], 0.0);
        for pair in w.values.windows(2) {
            let d = pair[1] - pair[0];
            assert!((-0.5..0.5).contains(&d), "step {d}");
        }
    }
    let w = &eval("randomWalk('walk', 120)")[0];
    assert_eq!((w.step, w.values.len()), (120, 3));
    // Random: two walks differ.
    assert_ne!(
        eval_over(&source(), "randomWalk('a')", T0, T0 + 6000)[0].values,
        eval_over(&source(), "randomWalk('a')", T0, T0 + 6000)[0].values
    );
}

#[test]
fn alias_query() {
    check(
        "aliasQuery(a.x.c1, 'x', 'b', 'last %d')",
        &[("last 5", &[2.0; 5])],
    );
    // The generated query may be any target; %s prints Python's str() of the value.
    assert_eq!(
        names(r"aliasQuery(a.b.c1, '^(.*)$', 'scale(\1, 2)', '%s units')"),
        ["10.0 units"]
    );
    assert_eq!(
        names(r"aliasQuery(a.b.c*, 'a\.b\.(c\d)', 'a.x.c1', '%.1f')"),
        ["2.0", "2.0"]
    );
    let s = &eval("aliasQuery(a.x.c1, 'x', 'b', 'v%d')")[0];
    assert_eq!(s.tags["name"], "a.x.c1");
    check("aliasQuery(nothing.*, 'x', 'b', '%d')", &[]);
    // Errors graphite-web raises too: no series, no last value, bad format.
    for target in [
        "aliasQuery(a.x.c1, 'x', 'nothing', '%d')",
        "aliasQuery(a.b.c1, 'a.b.c1', 'empty.e', '%d')",
        "aliasQuery(a.x.c1, 'x', 'b', 'no placeholder')",
        "aliasQuery(a.x.c1, 'x', 'b', '%x')",
    ] {
        assert!(matches!(err(target), EvalError::Input { .. }), "{target}");
    }
}
