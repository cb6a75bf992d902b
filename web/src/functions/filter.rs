//! Filter Series, Filter Data and Sorting: functions that choose, order or blank out series
//! by a statistic, a name pattern or a threshold.

use std::cmp::Ordering;

use super::{Args, Ctx, FunctionDef, Lit, Options, Param, SERIES, T, g, regex};
use crate::error::EvalError;
use crate::series::{AggFunc, NULL, Series};

group_constructor!(filt, "Filter Series");
group_constructor!(data, "Filter Data");
group_constructor!(sorting, "Sorting");

const N_INT: &[Param] = &[SERIES, Param::new("n", T::Integer).req()];
const N_FLOAT: &[Param] = &[SERIES, Param::new("n", T::Float).req()];

pub(crate) const DEFS: &[FunctionDef] = &[
    filt(
        "highestCurrent",
        "The n series with the greatest last value, largest first.",
        N_INT,
        |_, a| top(a, AggFunc::Last, true),
    ),
    filt(
        "highestMax",
        "The n series with the greatest maximum, largest first.",
        N_INT,
        |_, a| top(a, AggFunc::Max, true),
    ),
    filt(
        "highestAverage",
        "The n series with the greatest average, largest first.",
        N_INT,
        |_, a| top(a, AggFunc::Average, true),
    ),
    filt(
        "lowestCurrent",
        "The n series with the smallest last value, smallest first.",
        N_INT,
        |_, a| top(a, AggFunc::Last, false),
    ),
    filt(
        "lowestAverage",
        "The n series with the smallest average, smallest first.",
        N_INT,
        |_, a| top(a, AggFunc::Average, false),
    ),
    filt(
        "highest",
        "The n series with the greatest value of an aggregation (average by default).",
        &[
            SERIES,
            Param::new("n", T::Integer).req(),
            Param::new("func", T::AggFunc).default(Lit::Str("average")),
        ],
        |_, a| {
            let f = agg_arg(a, 2)?;
            top(a, f, true)
        },
    ),
    filt(
        "lowest",
        "The n series with the smallest value of an aggregation (average by default).",
        &[
            SERIES,
            Param::new("n", T::Integer).req(),
            Param::new("func", T::AggFunc).default(Lit::Str("average")),
        ],
        |_, a| {
            let f = agg_arg(a, 2)?;
            top(a, f, false)
        },
    ),
    filt(
        "currentAbove",
        "Series whose last value is above n.",
        N_FLOAT,
        |_, a| threshold(a, AggFunc::Last, ">"),
    ),
    filt(
        "currentBelow",
        "Series whose last value is at or below n (series without values are kept).",
        N_FLOAT,
        |_, a| threshold(a, AggFunc::Last, "<="),
    ),
    filt(
        "averageAbove",
        "Series whose average is above n.",
        N_FLOAT,
        |_, a| threshold(a, AggFunc::Average, ">"),
    ),
    filt(
        "averageBelow",
        "Series whose average is at or below n.",
        N_FLOAT,
        |_, a| threshold(a, AggFunc::Average, "<="),
    ),
    filt(
        "maximumAbove",
        "Series whose maximum is above n.",
        N_FLOAT,
        |_, a| threshold(a, AggFunc::Max, ">"),
    ),
    filt(
        "maximumBelow",
        "Series whose maximum is at or below n.",
        N_FLOAT,
        |_, a| threshold(a, AggFunc::Max, "<="),
    ),
    filt(
        "minimumAbove",
        "Series whose minimum is above n.",
        N_FLOAT,
        |_, a| threshold(a, AggFunc::Min, ">"),
    ),
    filt(
        "minimumBelow",
        "Series whose minimum is at or below n.",
        N_FLOAT,
        |_, a| threshold(a, AggFunc::Min, "<="),
    ),
    filt(
        "filterSeries",
        "Series whose aggregate compares true against a threshold with the operator (=, !=, >, >=, <, <=).",
        &[
            SERIES,
            Param::new("func", T::AggFunc).req(),
            Param::new("operator", T::String)
                .req()
                .options(Options::List(&[
                    Lit::Str("!="),
                    Lit::Str("<"),
                    Lit::Str("<="),
                    Lit::Str("="),
                    Lit::Str(">"),
                    Lit::Str(">="),
                ])),
            Param::new("threshold", T::Float).req(),
        ],
        |_, a| {
            let f = agg_arg(a, 1)?;
            let op = a.str(2).unwrap_or("=").to_owned();
            let t = a.float(3).unwrap_or(0.0);
            let l = a.list(0);
            Ok(l.into_iter()
                .filter(|s| compare(f.apply(&s.values), &op, t))
                .collect())
        },
    ),
    filt("limit", "The first n series of the list.", N_INT, |_, a| {
        let n = a.int(1).unwrap_or(0).max(0) as usize;
        let mut l = a.list(0);
        l.truncate(n);
        Ok(l)
    }),
    filt(
        "removeEmptySeries",
        "Drops series with no values (or whose share of values is below xFilesFactor).",
        &[SERIES, Param::new("xFilesFactor", T::Float)],
        |_, a| {
            let xff = a.float(1).unwrap_or(0.0);
            let l = a.list(0);
            Ok(l.into_iter()
                .filter(|s| {
                    let nn = s.values.iter().filter(|v| !v.is_nan()).count();
                    crate::series::xff_ok(nn, s.values.len() as f64, xff)
                })
                .collect())
        },
    ),
    filt(
        "exclude",
        "Drops series whose name contains a match of the regular expression.",
        &[SERIES, Param::new("pattern", T::String).req()],
        |_, a| {
            let re = regex("exclude", a.str(1).unwrap_or(""))?;
            Ok(a.list(0)
                .into_iter()
                .filter(|s| !re.is_match(&s.name))
                .collect())
        },
    ),
    filt(
        "grep",
        "Keeps only series whose name contains a match of the regular expression.",
        &[SERIES, Param::new("pattern", T::String).req()],
        |_, a| {
            let re = regex("grep", a.str(1).unwrap_or(""))?;
            Ok(a.list(0)
                .into_iter()
                .filter(|s| re.is_match(&s.name))
                .collect())
        },
    ),
    filt(
        "mostDeviant",
        "The n series with the greatest variance, largest first.",
        N_INT,
        |_, a| {
            let n = a.int(1).unwrap_or(0).max(0) as usize;
            let mut scored: Vec<(f64, Series)> = a
                .list(0)
                .into_iter()
                .filter_map(|s| {
                    let mean = AggFunc::Average.apply(&s.values);
                    if mean.is_nan() {
                        return None;
                    }
                    let vals: Vec<f64> = s.values.iter().copied().filter(|v| !v.is_nan()).collect();
                    let sigma = vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>()
                        / vals.len() as f64;
                    Some((sigma, s))
                })
                .collect();
            scored.sort_by(|x, y| key_cmp(y.0, x.0));
            Ok(scored.into_iter().take(n).map(|(_, s)| s).collect())
        },
    ),
    filt(
        "unique",
        "Drops later series whose name was already seen.",
        &[Param::new("seriesLists", T::SeriesList).req().multi()],
        |_, a| {
            let mut seen = std::collections::HashSet::new();
            Ok(a.rest_lists()
                .into_iter()
                .filter(|s| seen.insert(s.name.clone()))
                .collect())
        },
    ),
    filt(
        "averageOutsidePercentile",
        "Drops series whose average lies strictly between the (100-n)-th and n-th percentiles of all the series' averages (n below 50 is read as 100-n).",
        N_FLOAT,
        |_, a| average_outside_percentile(a),
    ),
    filt(
        "removeBetweenPercentile",
        "Keeps only series with at least one value outside the band between the (100-n)-th and n-th percentiles of all series at that point (n below 50 is read as 100-n).",
        N_FLOAT,
        |_, a| remove_between_percentile(a),
    ),
    filt(
        "useSeriesAbove",
        "For series whose maximum exceeds value, fetches the series named by applying search→replace to their names.",
        &[
            SERIES,
            Param::new("value", T::Float).req(),
            Param::new("search", T::String).req(),
            Param::new("replace", T::String).req(),
        ],
        use_series_above,
    ),
    data(
        "removeAboveValue",
        "Sets values above n to null.",
        N_FLOAT,
        |_, a| {
            let n = a.float(1).unwrap_or(0.0);
            let mut l = a.list(0);
            for s in &mut l {
                s.rename(format!("removeAboveValue({}, {})", s.name, g(n)));
                s.values
                    .iter_mut()
                    .filter(|v| **v > n)
                    .for_each(|v| *v = NULL);
            }
            Ok(l)
        },
    ),
    data(
        "removeBelowValue",
        "Sets values below n to null.",
        N_FLOAT,
        |_, a| {
            let n = a.float(1).unwrap_or(0.0);
            let mut l = a.list(0);
            for s in &mut l {
                s.rename(format!("removeBelowValue({}, {})", s.name, g(n)));
                s.values
                    .iter_mut()
                    .filter(|v| **v < n)
                    .for_each(|v| *v = NULL);
            }
            Ok(l)
        },
    ),
    data(
        "removeAbovePercentile",
        "Sets values above the series' own n-th percentile to null.",
        N_FLOAT,
        |_, a| remove_percentile(a, true),
    ),
    data(
        "removeBelowPercentile",
        "Sets values below the series' own n-th percentile to null.",
        N_FLOAT,
        |_, a| remove_percentile(a, false),
    ),
    sorting(
        "sortBy",
        "Sorts ascending by an aggregation (average by default); reverse sorts descending.",
        &[
            SERIES,
            Param::new("func", T::AggFunc).default(Lit::Str("average")),
            Param::new("reverse", T::Boolean).default(Lit::Bool(false)),
        ],
        |_, a| {
            let f = agg_arg(a, 1)?;
            let rev = a.bool(2).unwrap_or(false);
            Ok(sort_by_key(a.list(0), |s| f.apply(&s.values), rev))
        },
    ),
    sorting(
        "sortByTotal",
        "Sorts by the sum of each series, largest first.",
        &[SERIES],
        |_, a| {
            Ok(sort_by_key(
                a.list(0),
                |s| AggFunc::Sum.apply(&s.values),
                true,
            ))
        },
    ),
    sorting(
        "sortByMaxima",
        "Sorts by the maximum of each series, largest first.",
        &[SERIES],
        |_, a| {
            Ok(sort_by_key(
                a.list(0),
                |s| AggFunc::Max.apply(&s.values),
                true,
            ))
        },
    ),
    sorting(
        "sortByMinima",
        "Drops series whose maximum is not above 0, then sorts by minimum, smallest first.",
        &[SERIES],
        |_, a| {
            let l: Vec<Series> = a
                .list(0)
                .into_iter()
                .filter(|s| {
                    let m = AggFunc::Max.apply(&s.values);
                    (if m.is_nan() { 0.0 } else { m }) > 0.0
                })
                .collect();
            Ok(sort_by_key(l, |s| AggFunc::Min.apply(&s.values), false))
        },
    ),
    sorting(
        "sortByName",
        "Sorts by name; natural sorting orders embedded numbers numerically (host2 before host10).",
        &[
            SERIES,
            Param::new("natural", T::Boolean).default(Lit::Bool(false)),
            Param::new("reverse", T::Boolean).default(Lit::Bool(false)),
        ],
        |_, a| {
            let natural = a.bool(1).unwrap_or(false);
            let rev = a.bool(2).unwrap_or(false);
            let mut l = a.list(0);
            let key = |s: &Series| {
                if natural {
                    natural_key(&s.name)
                } else {
                    s.name.clone()
                }
            };
            l.sort_by(|x, y| {
                let o = key(x).cmp(&key(y));
                if rev { o.reverse() } else { o }
            });
            Ok(l)
        },
    ),
];

fn agg_arg(a: &Args, slot: usize) -> Result<AggFunc, EvalError> {
    let name = a.str(slot).unwrap_or("average");
    AggFunc::parse(name.strip_suffix("Series").unwrap_or(name))
        .ok_or_else(|| a.input_err(format!("Unsupported aggregation function: {name}")))
}

/// graphite-web's `keyFunc`: None sorts as -inf.
fn key_cmp(a: f64, b: f64) -> Ordering {
    let f = |v: f64| if v.is_nan() { f64::NEG_INFINITY } else { v };
    f(a).total_cmp(&f(b))
}

/// Stable sort by key; `reverse` keeps equal keys in input order like Python's sort.
fn sort_by_key(mut l: Vec<Series>, key: impl Fn(&Series) -> f64, reverse: bool) -> Vec<Series> {
    let mut keyed: Vec<(f64, Series)> = l.drain(..).map(|s| (key(&s), s)).collect();
    keyed.sort_by(|x, y| {
        if reverse {
            key_cmp(y.0, x.0)
        } else {
            key_cmp(x.0, y.0)
        }
    });
    keyed.into_iter().map(|(_, s)| s).collect()
}

fn top(a: &mut Args, f: AggFunc, highest: bool) -> Result<Vec<Series>, EvalError> {
    let n = a.int(1).unwrap_or(1).max(0) as usize;
    let mut l = sort_by_key(a.list(0), |s| f.apply(&s.values), highest);
    l.truncate(n);
    Ok(l)
}

fn compare(v: f64, op: &str, t: f64) -> bool {
    let none = v.is_nan();
    match op {
        "=" => !none && v == t,
        "!=" => none || v != t,
        ">" => !none && v > t,
        ">=" => !none && v >= t,
        "<" => none || v < t,
        "<=" => none || v <= t,
        _ => false,
    }
}

fn threshold(a: &mut Args, f: AggFunc, op: &str) -> Result<Vec<Series>, EvalError> {
    let t = a.float(1).unwrap_or(0.0);
    Ok(a.list(0)
        .into_iter()
        .filter(|s| compare(f.apply(&s.values), op, t))
        .collect())
}

fn remove_percentile(a: &mut Args, above: bool) -> Result<Vec<Series>, EvalError> {
    let n = a.float(1).unwrap_or(0.0);
    if n == 0.0 {
        return Err(a.input_err("The requested percent is required to be greater than 0"));
    }
    let fname = if above {
        "removeAbovePercentile"
    } else {
        "removeBelowPercentile"
    };
    let mut l = a.list(0);
    for s in &mut l {
        s.rename(format!("{fname}({}, {})", s.name, g(n)));
        let p = super::combine::percentile(&s.values, n, false);
        if p.is_nan() {
            continue;
        }
        // graphite-web computes the percentile with nPercentile, which tags the input series.
        s.tag("nPercentile", super::fstr(n));
        for v in s.values.iter_mut() {
            if above {
                if *v > p {
                    *v = NULL;
                }
            } else if v.is_nan() || *v < p {
                *v = NULL;
            }
        }
    }
    Ok(l)
}

/// graphite-web's `n < 50 → 100 - n` for the two percentile-band filters: the band runs from
/// the returned low to the high percentile rank.
fn percentile_band(n: f64) -> (f64, f64) {
    let n = if n < 50.0 { 100.0 - n } else { n };
    (100.0 - n, n)
}

/// Strictly inside `(low, high)`. A null value, or a band without percentiles (no values), is
/// never inside. Charcoal decision: graphite-web 1.1.10 compares None with floats there and
/// fails with a TypeError (500) on Python 3; Python 2 ordered None below every number, which
/// gives these results.
fn inside(low: f64, v: f64, high: f64) -> bool {
    low < v && v < high
}

fn average_outside_percentile(a: &mut Args) -> Result<Vec<Series>, EvalError> {
    let (low_n, high_n) = percentile_band(a.float(1).unwrap_or(0.0));
    let list = a.list(0);
    let averages: Vec<f64> = list
        .iter()
        .map(|s| AggFunc::Average.apply(&s.values))
        .collect();
    let low = super::combine::percentile(&averages, low_n, false);
    let high = super::combine::percentile(&averages, high_n, false);
    Ok(list
        .into_iter()
        .zip(averages)
        .filter(|(_, avg)| !inside(low, *avg, high))
        .map(|(s, _)| s)
        .collect())
}

fn remove_between_percentile(a: &mut Args) -> Result<Vec<Series>, EvalError> {
    let (low_n, high_n) = percentile_band(a.float(1).unwrap_or(0.0));
    let list = a.list(0);
    // Bands by position, as far as the shortest series reaches (graphite-web zips the raw
    // lists: no step normalisation). Charcoal decision: a value past that has no band and so
    // counts as outside; graphite-web indexes past its band list there and fails (500).
    let columns = list.iter().map(|s| s.values.len()).min().unwrap_or(0);
    let mut bands = Vec::with_capacity(columns);
    let mut column = Vec::with_capacity(list.len());
    for k in 0..columns {
        column.clear();
        column.extend(list.iter().map(|s| s.values[k]));
        bands.push((
            super::combine::percentile(&column, low_n, false),
            super::combine::percentile(&column, high_n, false),
        ));
    }
    Ok(list
        .into_iter()
        .filter(|s| {
            s.values.iter().enumerate().any(|(k, &v)| {
                bands
                    .get(k)
                    .is_none_or(|&(low, high)| !inside(low, v, high))
            })
        })
        .collect())
}

/// Zero-pads digit runs to 10 places (graphite-web's natural sort key).
fn natural_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 16);
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if !digits.is_empty() {
            let trimmed = digits.trim_start_matches('0');
            let t = if trimmed.is_empty() { "0" } else { trimmed };
            for _ in t.len()..10 {
                out.push('0');
            }
            out.push_str(t);
            digits.clear();
        }
    };
    for c in name.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

fn use_series_above(ctx: &mut Ctx<'_>, a: &mut Args) -> Result<Vec<Series>, EvalError> {
    let value = a.float(1).unwrap_or(0.0);
    let re = regex("useSeriesAbove", a.str(2).unwrap_or(""))?;
    let replace = super::alias::python_replacement(a.str(3).unwrap_or(""));
    let names: Vec<String> = a
        .list(0)
        .iter()
        .filter(|s| AggFunc::Max.apply(&s.values) > value)
        .map(|s| re.replace_all(&s.name, replace.as_str()).into_owned())
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let l = ctx.eval_text(&format!("group({})", names.join(",")), "useSeriesAbove")?;
    Ok(l.into_iter().filter(|s| !s.values.is_empty()).collect())
}
