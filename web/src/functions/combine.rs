//! Combine: functions that merge several series into fewer (aggregates, grouping, ratios).
//! All normalise their inputs to a common step first (spec §11).

use std::collections::{BTreeMap, HashMap};

use super::{Args, Ctx, FunctionDef, Lit, Param, SERIES, SERIES_LISTS, T, agg_key, g, group_by};
use crate::error::EvalError;
use crate::eval::{Value, call_function};
use crate::series::{AggFunc, NULL, Series, combine_rows, normalize};

group_constructor!(def, "Combine");

const fn agg_def(
    name: &'static str,
    description: &'static str,
    params: &'static [Param],
    eval: super::EvalFn,
) -> FunctionDef {
    def(name, description, params, eval).aggregator()
}

const LISTS_PAIR: &[Param] = &[
    Param::new("seriesListFirstPos", T::SeriesList).req(),
    Param::new("seriesListSecondPos", T::SeriesList).req(),
];
const WILDCARDS: &[Param] = &[SERIES, Param::new("position", T::Node).multi()];

const SUM_SERIES: FunctionDef = agg_def(
    "sumSeries",
    "Adds the series together point by point; nulls are skipped and a row with no values stays null.",
    &[SERIES_LISTS],
    |ctx, a| {
        let l = a.rest_lists();
        aggregate(ctx, l, "sum", None)
    },
);

const AVERAGE_SERIES: FunctionDef = agg_def(
    "averageSeries",
    "Mean of the non-null values of the series at each point.",
    &[SERIES_LISTS],
    |ctx, a| {
        let l = a.rest_lists();
        aggregate(ctx, l, "average", None)
    },
);

const AS_PERCENT: FunctionDef = agg_def(
    "asPercent",
    "Each series as a percentage of a total: by default the point-wise sum of the list; or a number; or a single series; or a list of the same length (paired by name). With nodes, series are grouped by those nodes and taken as a percentage of their group's total.",
    &[
        SERIES,
        Param::new("total", T::Any),
        Param::new("nodes", T::NodeOrTag).multi(),
    ],
    as_percent,
);

/// graphite-web's mapSeries returns a list of series lists, which only reduceSeries can take
/// (elsewhere graphite-web fails on it). reduceSeries walks those lists in order and re-keys
/// every series by its own name, so the grouping is carried by order alone: Charcoal's
/// mapSeries returns one list with the groups one after another.
const MAP_SERIES: FunctionDef = def(
    "mapSeries",
    "Groups the series by the given nodes (or tag names) for reduceSeries: one group per distinct key in order of first appearance, each keeping its members' order. The groups come back one after another in a single list.",
    &[SERIES, Param::new("mapNodes", T::NodeOrTag).req().multi()],
    |_, a| {
        let nodes = a.rest.clone();
        Ok(group_by(a.list(0), |s| agg_key(s, &nodes))
            .into_iter()
            .flat_map(|(_, members)| members)
            .collect())
    },
);

const REDUCE_SERIES: FunctionDef = def(
    "reduceSeries",
    "For each name prefix before node reduceNode, calls reduceFunction (e.g. asPercent, divideSeries, diffSeries) with one argument per matcher: the series whose node reduceNode equals that matcher. Each result is named '<prefix>.reduce.<reduceFunction>'. Usually fed by mapSeries.",
    &[
        Param::new("seriesLists", T::SeriesLists).req(),
        Param::new("reduceFunction", T::String).req(),
        Param::new("reduceNode", T::Node).req(),
        Param::new("reduceMatchers", T::String).req().multi(),
    ],
    reduce_series,
);

pub(crate) const DEFS: &[FunctionDef] = &[
    def(
        "aggregate",
        "Combines the series point by point with the named aggregation (average, sum, min, max, median, diff, stddev, count, range, multiply, last, avg_zero). Inputs of different steps are first brought to their least common multiple.",
        &[
            SERIES,
            Param::new("func", T::AggFunc).req(),
            Param::new("xFilesFactor", T::Float),
        ],
        |ctx, a| {
            let list = a.list(0);
            let func = a.str(1).unwrap_or("average").to_owned();
            aggregate(ctx, list, &func, a.float(2))
        },
    ),
    SUM_SERIES,
    SUM_SERIES.alias("sum", "Short alias of sumSeries."),
    AVERAGE_SERIES,
    AVERAGE_SERIES.alias("avg", "Short alias of averageSeries."),
    agg_def(
        "maxSeries",
        "Largest value of the series at each point.",
        &[SERIES_LISTS],
        |ctx, a| {
            let l = a.rest_lists();
            aggregate(ctx, l, "max", None)
        },
    ),
    agg_def(
        "minSeries",
        "Smallest value of the series at each point.",
        &[SERIES_LISTS],
        |ctx, a| {
            let l = a.rest_lists();
            aggregate(ctx, l, "min", None)
        },
    ),
    agg_def(
        "diffSeries",
        "First non-null value of each point minus the other non-null values.",
        &[SERIES_LISTS],
        |ctx, a| {
            let l = a.rest_lists();
            aggregate(ctx, l, "diff", None)
        },
    ),
    agg_def(
        "stddevSeries",
        "Population standard deviation of the series at each point.",
        &[SERIES_LISTS],
        |ctx, a| {
            let l = a.rest_lists();
            aggregate(ctx, l, "stddev", None)
        },
    ),
    agg_def(
        "rangeOfSeries",
        "Maximum minus minimum of the series at each point.",
        &[SERIES_LISTS],
        |ctx, a| {
            let l = a.rest_lists();
            aggregate(ctx, l, "rangeOf", None)
        },
    ),
    agg_def(
        "multiplySeries",
        "Product of the series at each point; a null anywhere gives null. A single series is returned unchanged.",
        &[SERIES_LISTS],
        |ctx, a| {
            let single = a.rest.len() == 1 && matches!(&a.rest[0], Value::List(l) if l.len() == 1);
            let l = a.rest_lists();
            if single {
                return Ok(l);
            }
            aggregate(ctx, l, "multiply", None)
        },
    ),
    agg_def(
        "countSeries",
        "Number of input series at each point (series are counted, not values); with no input, a constant line of 0.",
        &[Param::new("seriesLists", T::SeriesList).multi()],
        |ctx, a| {
            let had_args = !a.rest.is_empty();
            let mut list = a.rest_lists();
            if !had_args {
                // graphite-web calls constantLine with the int 0, so the name is "0".
                let mut s = super::special::constant_line(ctx, 0.0);
                s.name = "0".into();
                s.tags = crate::series::tags_from_name("0");
                s.path_expression = "countSeries()".into();
                return Ok(vec![s]);
            }
            let name = format!("countSeries({})", format_path_expressions(&list));
            let Some(grid) = normalize(&mut list) else {
                return Ok(Vec::new());
            };
            let n = list.len() as f64;
            let values = combine_rows(&list, |_| n);
            let mut s = Series::new(name, grid.start, grid.end, grid.step, values);
            s.xff = ctx.xff;
            Ok(vec![s])
        },
    ),
    def(
        "group",
        "Concatenates series lists into one list without changing any data.",
        &[Param::new("seriesLists", T::SeriesList).multi()],
        |_, a| Ok(a.rest_lists()),
    ),
    def(
        "groupByNode",
        "Groups series by one node of their name (or a tag) and aggregates each group with the callback (an aggregation name or an aggregating function such as sumSeries). The group key becomes the name.",
        &[
            SERIES,
            Param::new("nodeNum", T::NodeOrTag).req(),
            Param::new("callback", T::AggOrSeriesFunc).default(Lit::Str("average")),
        ],
        |ctx, a| {
            let list = a.list(0);
            let node = a.value(1).cloned().unwrap_or(Value::Int(0));
            let cb = a.str(2).unwrap_or("average").to_owned();
            group_by_nodes(ctx, list, &cb, &[node])
        },
    ),
    def(
        "groupByNodes",
        "Like groupByNode with a key made of several nodes (or tags) joined by dots.",
        &[
            SERIES,
            Param::new("callback", T::AggOrSeriesFunc).req(),
            Param::new("nodes", T::NodeOrTag).multi(),
        ],
        |ctx, a| {
            let list = a.list(0);
            let cb = a.str(1).unwrap_or("average").to_owned();
            let nodes = std::mem::take(&mut a.rest);
            group_by_nodes(ctx, list, &cb, &nodes)
        },
    ),
    def(
        "groupByTags",
        "Groups series by the values of the given tags and aggregates each group with the callback; the result is named like a tagged series (name;tag=value…).",
        &[
            SERIES,
            Param::new("callback", T::AggOrSeriesFunc).req(),
            Param::new("tags", T::Tag).req().multi(),
        ],
        group_by_tags,
    ),
    agg_def(
        "sumSeriesWithWildcards",
        "Sums series whose names are equal once the given node positions are removed.",
        WILDCARDS,
        |ctx, a| with_wildcards(ctx, a, "sum"),
    ),
    agg_def(
        "averageSeriesWithWildcards",
        "Averages series whose names are equal once the given node positions are removed.",
        WILDCARDS,
        |ctx, a| with_wildcards(ctx, a, "average"),
    ),
    agg_def(
        "multiplySeriesWithWildcards",
        "Multiplies series whose names are equal once the given node positions are removed.",
        WILDCARDS,
        |ctx, a| with_wildcards(ctx, a, "multiply"),
    ),
    def(
        "aggregateWithWildcards",
        "Aggregates, with the named function, series whose names are equal once the given node positions are removed.",
        &[
            SERIES,
            Param::new("func", T::AggFunc).req(),
            Param::new("position", T::Node).multi(),
        ],
        |ctx, a| {
            let func = a.str(1).unwrap_or("sum").to_owned();
            with_wildcards(ctx, a, &func)
        },
    ),
    AS_PERCENT,
    AS_PERCENT.alias("pct", "Short alias of asPercent."),
    def(
        "divideSeries",
        "Divides every series of the first list by the single series of the second; division by zero or null gives null. A missing divisor makes every result null.",
        &[
            Param::new("dividendSeriesList", T::SeriesList).req(),
            Param::new("divisorSeries", T::SeriesList).req(),
        ],
        |ctx, a| {
            let dividends = a.list(0);
            let divisors = a.list(1);
            if divisors.is_empty() {
                let mut out = dividends;
                for s in &mut out {
                    s.rename(format!("divideSeries({},MISSING)", s.name));
                    s.values.iter_mut().for_each(|v| *v = NULL);
                }
                return Ok(out);
            }
            if divisors.len() > 1 {
                return Err(a.input_err(format!(
                    "divideSeries second argument must reference exactly 1 series (got {})",
                    divisors.len()
                )));
            }
            let divisor = &divisors[0];
            Ok(dividends
                .into_iter()
                .map(|d| divide_pair(ctx, d, divisor.clone()))
                .collect())
        },
    ),
    def(
        "divideSeriesLists",
        "Divides the series of the first list by the series at the same position of the second list.",
        &[
            Param::new("dividendSeriesList", T::SeriesList).req(),
            Param::new("divisorSeriesList", T::SeriesList).req(),
        ],
        |ctx, a| {
            let first = a.list(0);
            let second = a.list(1);
            if first.len() != second.len() {
                return Err(a.input_err(
                    "dividendSeriesList and divisorSeriesList argument must have equal length",
                ));
            }
            Ok(first
                .into_iter()
                .zip(second)
                .map(|(d, v)| divide_pair(ctx, d, v))
                .collect())
        },
    ),
    agg_def(
        "sumSeriesLists",
        "Sums the series of two lists pairwise, by position.",
        LISTS_PAIR,
        |ctx, a| series_lists(ctx, a, "sum"),
    ),
    agg_def(
        "diffSeriesLists",
        "Subtracts the series of the second list from those of the first, pairwise.",
        LISTS_PAIR,
        |ctx, a| series_lists(ctx, a, "diff"),
    ),
    agg_def(
        "multiplySeriesLists",
        "Multiplies the series of two lists pairwise, by position.",
        LISTS_PAIR,
        |ctx, a| series_lists(ctx, a, "multiply"),
    ),
    def(
        "aggregateSeriesLists",
        "Combines the series of two lists pairwise, by position, with the named aggregation.",
        &[
            Param::new("seriesListFirstPos", T::SeriesList).req(),
            Param::new("seriesListSecondPos", T::SeriesList).req(),
            Param::new("func", T::AggFunc).req(),
            Param::new("xFilesFactor", T::Float),
        ],
        |ctx, a| {
            let func = a.str(2).unwrap_or("sum").to_owned();
            series_lists(ctx, a, &func)
        },
    ),
    def(
        "percentileOfSeries",
        "The n-th percentile of the series' values at each point (nearest rank, or interpolated between ranks).",
        &[
            SERIES,
            Param::new("n", T::Float).req(),
            Param::new("interpolate", T::Boolean).default(Lit::Bool(false)),
        ],
        |ctx, a| {
            let n = a.float(1).unwrap_or(0.0);
            if n <= 0.0 {
                return Err(a.input_err("The requested percent is required to be greater than 0"));
            }
            let interpolate = a.bool(2).unwrap_or(false);
            let mut list = a.list(0);
            if list.is_empty() {
                return Ok(Vec::new());
            }
            let name = format!("percentileOfSeries({},{})", list[0].path_expression, g(n));
            let Some(grid) = normalize(&mut list) else {
                return Ok(Vec::new());
            };
            let values = combine_rows(&list, |row| percentile(row, n, interpolate));
            let mut s = Series::new(name, grid.start, grid.end, grid.step, values);
            s.xff = ctx.xff;
            Ok(vec![s])
        },
    ),
    agg_def(
        "powSeries",
        "Raises the first series to the power of the second, the result to the third, and so on, point by point.",
        &[Param::new("seriesList", T::SeriesList).req().multi()],
        |ctx, a| {
            let mut list = a.rest_lists();
            let name = format!(
                "powSeries({})",
                list.iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let Some(grid) = normalize(&mut list) else {
                return Ok(Vec::new());
            };
            let values = combine_rows(&list, |row| {
                let mut it = row.iter();
                let first = it.next().copied().unwrap_or(NULL);
                it.fold(first, |acc, &x| safe_pow(acc, x))
            });
            let mut s = Series::new(name, grid.start, grid.end, grid.step, values);
            s.xff = ctx.xff;
            Ok(vec![s])
        },
    ),
    def(
        "applyByNode",
        "For each distinct name prefix (nodes 0..nodeNum), evaluates the template target with '%' replaced by the prefix; optionally renames the results with newName (also with '%').",
        &[
            SERIES,
            Param::new("nodeNum", T::Node).req(),
            Param::new("templateFunction", T::String).req(),
            Param::new("newName", T::String),
        ],
        |ctx, a| {
            let list = a.list(0);
            let node = a.int(1).unwrap_or(0);
            let template = a.str(2).unwrap_or("").to_owned();
            let new_name = a.str(3).map(str::to_owned);
            let Some(last) = list.last() else {
                return Ok(Vec::new());
            };
            let (start, end) = (last.start, last.end);
            let mut prefixes: Vec<String> = list
                .iter()
                .map(|s| {
                    let nodes: Vec<&str> = s.name.split('.').collect();
                    let k = usize::try_from(node + 1).unwrap_or(0).min(nodes.len());
                    nodes[..k].join(".")
                })
                .collect();
            prefixes.sort();
            prefixes.dedup();
            let mut out = Vec::new();
            for prefix in prefixes {
                for mut s in ctx.eval_text(&template.replace('%', &prefix), "applyByNode")? {
                    if let Some(n) = &new_name {
                        s.name = n.replace('%', &prefix);
                    }
                    s.path_expression.clone_from(&prefix);
                    s.start = start;
                    s.end = end;
                    out.push(s);
                }
            }
            Ok(out)
        },
    ),
    MAP_SERIES,
    MAP_SERIES.alias("map", "Short alias of mapSeries."),
    REDUCE_SERIES,
    REDUCE_SERIES.alias("reduce", "Short alias of reduceSeries."),
    def(
        "weightedAverage",
        "Weighted average of the first list using the second list as weights, pairing series by the given nodes: sum(value × weight) / sum(weight) at each point.",
        &[
            Param::new("seriesListAvg", T::SeriesList).req(),
            Param::new("seriesListWeight", T::SeriesList).req(),
            Param::new("nodes", T::NodeOrTag).multi(),
        ],
        weighted_average,
    ),
];

/// `'a,b'` from the distinct path expressions in order (graphite-web `formatPathExpressions`).
pub(crate) fn format_path_expressions(list: &[Series]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for s in list {
        if !seen.contains(&s.path_expression.as_str()) {
            seen.push(&s.path_expression);
        }
    }
    seen.join(",")
}

/// graphite-web's `aggregate()`: normalise, combine rows with `func`, name
/// `<func>Series(<path expressions>)`, keep common tags, add `aggregatedBy`.
pub(crate) fn aggregate(
    ctx: &Ctx<'_>,
    mut list: Vec<Series>,
    func: &str,
    xff: Option<f64>,
) -> Result<Vec<Series>, EvalError> {
    let raw = func;
    let func = func.strip_suffix("Series").unwrap_or(func);
    let agg = AggFunc::parse(func).ok_or_else(|| EvalError::Input {
        func: "aggregate".into(),
        message: format!("Unsupported aggregation function: {raw}"),
    })?;
    let Some(grid) = normalize(&mut list) else {
        return Ok(Vec::new());
    };
    let xff = xff.unwrap_or(ctx.xff);
    let name = format!("{func}Series({})", format_path_expressions(&list));
    let values = crate::series::aggregate_columns(&list, agg, xff).unwrap_or_else(|| {
        combine_rows(&list, |row| {
            let non_null = row.iter().filter(|v| !v.is_nan()).count();
            if crate::series::xff_ok(non_null, row.len() as f64, xff) {
                agg.apply(row)
            } else {
                NULL
            }
        })
    });
    let mut tags: BTreeMap<String, String> = list[0].tags.clone();
    for s in &list[1..] {
        tags.retain(|k, v| s.tags.get(k) == Some(v));
    }
    tags.entry("name".into()).or_insert_with(|| name.clone());
    tags.insert("aggregatedBy".into(), func.to_owned());
    let mut s = Series::new(name, grid.start, grid.end, grid.step, values);
    s.tags = tags;
    s.xff = xff;
    Ok(vec![s])
}

fn group_by_nodes(
    ctx: &mut Ctx<'_>,
    list: Vec<Series>,
    callback: &str,
    nodes: &[Value],
) -> Result<Vec<Series>, EvalError> {
    let groups = group_by(list, |s| agg_key(s, nodes));
    let mut out = Vec::with_capacity(groups.len());
    for (key, members) in groups {
        if let Some(mut s) = apply_callback(ctx, callback, members)? {
            s.name = key;
            out.push(s);
        }
    }
    Ok(out)
}

/// A callback is a registered function name (called with the group) or an aggregation name.
fn apply_callback(
    ctx: &mut Ctx<'_>,
    callback: &str,
    members: Vec<Series>,
) -> Result<Option<Series>, EvalError> {
    let result = match super::lookup(callback) {
        Some(def) => call_function(ctx, def, vec![Value::List(members)])?,
        None => aggregate(ctx, members, callback, None)?,
    };
    Ok(result.into_iter().next())
}

/// graphite-web's `reduceSeries`. Charcoal decision: where graphite-web fails with a Python
/// exception (500) — a name without node reduceNode, a prefix lacking one of the matchers, a
/// function returning nothing — this is a 400 naming the case.
fn reduce_series(ctx: &mut Ctx<'_>, a: &mut Args) -> Result<Vec<Series>, EvalError> {
    let func = a.str(1).unwrap_or("").to_owned();
    let node = a.int(2).unwrap_or(0);
    let matchers: Vec<String> = a.rest.iter().map(Value::py_str).collect();
    // Reduced name → one slot per matcher, names in order of first appearance.
    let mut groups: Vec<(String, Vec<Option<Series>>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for s in a.list(0) {
        let nodes: Vec<&str> = s.name.split('.').collect();
        let len = nodes.len() as i64;
        let at = if node < 0 { len + node } else { node };
        let Some(value) = usize::try_from(at).ok().and_then(|i| nodes.get(i)) else {
            return Err(a.input_err(format!(
                "reduceNode {node} is out of range for '{}'",
                s.name
            )));
        };
        let Some(slot) = matchers.iter().position(|m| m == value) else {
            continue;
        };
        let key = format!("{}.reduce.{func}", nodes[..at as usize].join("."));
        let i = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, vec![None; matchers.len()]));
            groups.len() - 1
        });
        groups[i].1[slot] = Some(s);
    }
    let mut out = Vec::with_capacity(groups.len());
    for (key, members) in groups {
        let def = super::lookup(&func)
            .ok_or_else(|| EvalError::UnknownFunction { name: func.clone() })?;
        let mut args = Vec::with_capacity(members.len());
        for (m, matcher) in members.into_iter().zip(&matchers) {
            let Some(s) = m else {
                return Err(a.input_err(format!("no series matched '{matcher}' for {key}")));
            };
            args.push(Value::List(vec![s]));
        }
        let Some(mut s) = call_function(ctx, def, args)?.into_iter().next() else {
            return Err(a.input_err(format!("{func} returned no series for {key}")));
        };
        s.name = key;
        out.push(s);
    }
    Ok(out)
}

fn group_by_tags(ctx: &mut Ctx<'_>, a: &mut Args) -> Result<Vec<Series>, EvalError> {
    let list = a.list(0);
    let callback = a.str(1).unwrap_or("average").to_owned();
    let tags: Vec<String> = a.rest.iter().map(Value::py_str).collect();
    if tags.is_empty() {
        return Err(a.input_err("groupByTags(): no tags specified"));
    }
    let has_name = tags.iter().any(|t| t == "name");
    let common_name = {
        let mut names: Vec<&str> = list
            .iter()
            .filter_map(|s| s.tags.get("name").map(String::as_str))
            .collect();
        names.sort_unstable();
        names.dedup();
        if names.len() == 1 {
            names[0].to_owned()
        } else {
            callback.clone()
        }
    };
    let groups = group_by(list, |s| {
        let mut parts: Vec<String> = tags
            .iter()
            .filter(|t| !has_name || *t != "name")
            .map(|t| format!("{t}={}", s.tags.get(t).map_or("", String::as_str)))
            .collect();
        parts.sort();
        let head = if has_name {
            s.tags.get("name").cloned().unwrap_or_default()
        } else {
            common_name.clone()
        };
        std::iter::once(head)
            .chain(parts)
            .collect::<Vec<_>>()
            .join(";")
    });
    let mut out = Vec::new();
    for (key, members) in groups {
        if let Some(mut s) = apply_callback(ctx, &callback, members)? {
            s.tags = crate::series::tags_from_name(&key);
            s.name.clone_from(&key);
            s.path_expression = key;
            out.push(s);
        }
    }
    Ok(out)
}

fn with_wildcards(ctx: &mut Ctx<'_>, a: &mut Args, func: &str) -> Result<Vec<Series>, EvalError> {
    let list = a.list(0);
    let positions: Vec<i64> = a
        .rest
        .iter()
        .filter_map(|v| {
            if let Value::Int(i) = v {
                Some(*i)
            } else {
                None
            }
        })
        .collect();
    let groups = group_by(list, |s| {
        s.name
            .split('.')
            .enumerate()
            .filter(|(i, _)| !positions.contains(&(*i as i64)))
            .map(|(_, n)| n)
            .collect::<Vec<_>>()
            .join(".")
    });
    let mut out = Vec::new();
    for (key, members) in groups {
        if let Some(mut s) = aggregate(ctx, members, func, None)?.into_iter().next() {
            s.name = key;
            out.push(s);
        }
    }
    Ok(out)
}

fn series_lists(ctx: &mut Ctx<'_>, a: &mut Args, func: &str) -> Result<Vec<Series>, EvalError> {
    let first = a.list(0);
    let second = a.list(1);
    let xff = a.float(3);
    if first.len() != second.len() {
        return Err(a.input_err(
            "seriesListFirstPos and seriesListSecondPos argument must have equal length",
        ));
    }
    let mut out = Vec::new();
    for (x, y) in first.into_iter().zip(second) {
        let names = format!("{},{}", x.name, y.name);
        if let Some(mut s) = aggregate(ctx, vec![x, y], func, xff)?.into_iter().next() {
            let cut = s.name.find("Series(").unwrap_or(s.name.len());
            s.name = format!("{}Series({names})", &s.name[..cut]);
            out.push(s);
        }
    }
    Ok(out)
}

fn divide_pair(ctx: &Ctx<'_>, dividend: Series, divisor: Series) -> Series {
    let name = format!("divideSeries({},{})", dividend.name, divisor.name);
    let mut both = vec![dividend, divisor];
    let grid = normalize(&mut both).unwrap_or(crate::series::Grid {
        start: 0,
        end: 0,
        step: 1,
    });
    let values = combine_rows(&both, |r| safe_div(r[0], r[1]));
    let mut s = Series::new(name, grid.start, grid.end, grid.step, values);
    s.xff = ctx.xff;
    s
}

pub(crate) fn safe_div(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() || b == 0.0 {
        NULL
    } else {
        a / b
    }
}

/// math.pow with graphite's error handling: domain errors and overflow become null.
pub(crate) fn safe_pow(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return NULL;
    }
    if a == 0.0 && b < 0.0 {
        return NULL;
    }
    let r = a.powf(b);
    if r.is_infinite() && a.is_finite() && b.is_finite() {
        NULL
    } else {
        r
    }
}

fn percent(v: f64, total: f64) -> f64 {
    let q = safe_div(v, total);
    if q.is_nan() { NULL } else { q * 100.0 }
}

fn sum_row(row: &[f64]) -> f64 {
    AggFunc::Sum.apply(row)
}

fn as_percent(ctx: &mut Ctx<'_>, a: &mut Args) -> Result<Vec<Series>, EvalError> {
    let mut list = a.list(0);
    let total = a.value(1).cloned().unwrap_or(Value::None);
    let nodes: Vec<Value> = a.rest.clone();
    let xff = ctx.xff;
    normalize(&mut list);
    let mk = |name: String, start: i64, end: i64, step: i64, values: Vec<f64>| {
        let mut s = Series::new(name, start, end, step, values);
        s.xff = xff;
        s
    };
    if !nodes.is_empty() {
        let groups = group_by(list, |s| agg_key(s, &nodes));
        let mut keys: Vec<String> = groups.iter().map(|(k, _)| k.clone()).collect();
        let mut totals: BTreeMap<String, Series> = BTreeMap::new();
        let sum_group = |members: Vec<Series>| -> Series {
            if members.len() == 1 {
                return members
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| Series::new("", 0, 0, 1, vec![]));
            }
            let name = format!("sumSeries({})", format_path_expressions(&members));
            let mut m = members;
            let grid = normalize(&mut m).unwrap_or(crate::series::Grid {
                start: 0,
                end: 0,
                step: 1,
            });
            let values = combine_rows(&m, sum_row);
            mk(name, grid.start, grid.end, grid.step, values)
        };
        match &total {
            Value::None => {
                for (k, members) in &groups {
                    totals.insert(k.clone(), sum_group(members.clone()));
                }
            }
            Value::List(tl) => {
                let tgroups = group_by(tl.clone(), |s| agg_key(s, &nodes));
                for (k, members) in tgroups {
                    if !keys.contains(&k) {
                        keys.push(k.clone());
                    }
                    totals.insert(k, sum_group(members));
                }
            }
            _ => return Err(a.input_err("total must be None or a seriesList")),
        }
        let members_of: BTreeMap<String, Vec<Series>> = groups.into_iter().collect();
        let mut out = Vec::new();
        for key in keys {
            let Some(members) = members_of.get(&key) else {
                if let Some(t) = totals.get(&key) {
                    let values = vec![NULL; t.values.len()];
                    out.push(mk(
                        format!("asPercent(MISSING,{})", t.name),
                        t.start,
                        t.end,
                        t.step,
                        values,
                    ));
                }
                continue;
            };
            for m in members {
                match totals.get(&key) {
                    None => {
                        let values = vec![NULL; m.values.len()];
                        out.push(mk(
                            format!("asPercent({},MISSING)", m.name),
                            m.start,
                            m.end,
                            m.step,
                            values,
                        ));
                    }
                    Some(t) => {
                        let name = format!("asPercent({},{})", m.name, t.name);
                        let mut pair = vec![m.clone(), t.clone()];
                        let grid = normalize(&mut pair).unwrap_or(crate::series::Grid {
                            start: 0,
                            end: 0,
                            step: 1,
                        });
                        let values = combine_rows(&pair, |r| percent(r[0], r[1]));
                        out.push(mk(name, grid.start, grid.end, grid.step, values));
                    }
                }
            }
        }
        return Ok(out);
    }
    let (total_values, total_text): (Vec<f64>, String) = match &total {
        Value::None => (
            combine_rows(&list, sum_row),
            format!("sumSeries({})", format_path_expressions(&list)),
        ),
        Value::List(tl) => {
            if tl.len() != 1 && tl.len() != list.len() {
                return Err(a.input_err("asPercent second argument must be missing, a single digit, reference exactly 1 series or reference the same number of series as the first argument"));
            }
            if tl.len() == 1 {
                let mut both: Vec<Series> = list.clone();
                both.push(tl[0].clone());
                normalize(&mut both);
                let t = both.pop().unwrap_or_else(|| tl[0].clone());
                (t.values, t.name)
            } else {
                let mut firsts = list;
                let mut seconds = tl.clone();
                firsts.sort_by(|x, y| x.name.cmp(&y.name));
                seconds.sort_by(|x, y| x.name.cmp(&y.name));
                let mut out = Vec::new();
                for (x, y) in firsts.into_iter().zip(seconds) {
                    let name = format!("asPercent({},{})", x.name, y.name);
                    let mut pair = vec![x, y];
                    let grid = normalize(&mut pair).unwrap_or(crate::series::Grid {
                        start: 0,
                        end: 0,
                        step: 1,
                    });
                    let values = combine_rows(&pair, |r| percent(r[0], r[1]));
                    out.push(mk(name, grid.start, grid.end, grid.step, values));
                }
                return Ok(out);
            }
        }
        Value::Float(_) | Value::Int(_) => {
            let t = match total {
                Value::Float(f) => f,
                Value::Int(i) => i as f64,
                _ => 0.0,
            };
            let n = list.first().map_or(0, |s| s.values.len());
            (vec![t; n], total.py_str())
        }
        other => {
            return Err(a.input_err(format!(
                "total must be a number or a series list, got {}",
                other.py_str()
            )));
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for s in list {
        let len = s.values.len().max(total_values.len());
        let values = (0..len)
            .map(|k| {
                percent(
                    s.values.get(k).copied().unwrap_or(NULL),
                    total_values.get(k).copied().unwrap_or(NULL),
                )
            })
            .collect();
        let name = format!(
            "asPercent({},{})",
            s.name,
            if total_text.is_empty() {
                &s.path_expression
            } else {
                &total_text
            }
        );
        out.push(mk(name, s.start, s.end, s.step, values));
    }
    Ok(out)
}

/// graphite-web's `_getPercentile` over the non-null values of `points`.
pub(crate) fn percentile(points: &[f64], n: f64, interpolate: bool) -> f64 {
    let mut sorted: Vec<f64> = points.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return NULL;
    }
    sorted.sort_by(f64::total_cmp);
    let fractional = n / 100.0 * (sorted.len() as f64 + 1.0);
    let mut rank = fractional.trunc() as i64;
    let frac = fractional - rank as f64;
    if !interpolate {
        rank += frac.ceil() as i64;
    }
    let len = sorted.len() as i64;
    let mut p = if rank <= 0 {
        sorted[0]
    } else if rank >= len {
        sorted[(len - 1) as usize]
    } else {
        sorted[(rank - 1) as usize]
    };
    if interpolate && rank != len && rank >= 0 && rank < len {
        let next = sorted[rank as usize];
        p += frac * (next - p);
    }
    p
}

fn weighted_average(ctx: &mut Ctx<'_>, a: &mut Args) -> Result<Vec<Series>, EvalError> {
    let avgs = a.list(0);
    let weights = a.list(1);
    let nodes: Vec<Value> = a.rest.clone();
    if avgs.len() != weights.len() {
        return Err(a.input_err(format!(
            "weightedAverage must receive the same number of series for seriesListAvg and seriesListWeight but received respectively {} and {}",
            avgs.len(),
            weights.len()
        )));
    }
    let mut pairs: BTreeMap<String, (Option<Series>, Option<Series>)> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (x, w) in avgs.iter().zip(&weights) {
        for (s, is_avg) in [(x, true), (w, false)] {
            let k = agg_key(s, &nodes);
            if !pairs.contains_key(&k) {
                order.push(k.clone());
            }
            let e = pairs.entry(k).or_default();
            if is_avg {
                e.0 = Some(s.clone());
            } else {
                e.1 = Some(s.clone());
            }
        }
    }
    let mut products = Vec::new();
    for k in &order {
        if let Some((Some(x), Some(w))) = pairs.get(k) {
            let len = x.values.len().max(w.values.len());
            let values = (0..len)
                .map(|i| {
                    let (p, q) = (
                        x.values.get(i).copied().unwrap_or(NULL),
                        w.values.get(i).copied().unwrap_or(NULL),
                    );
                    if p.is_nan() || q.is_nan() {
                        NULL
                    } else {
                        p * q
                    }
                })
                .collect();
            let mut s = Series::new(
                format!("product({},{})", w.name, x.name),
                x.start,
                x.end,
                x.step,
                values,
            );
            s.xff = ctx.xff;
            products.push(s);
        }
    }
    if products.is_empty() {
        return Ok(Vec::new());
    }
    let Some(sum_products) = aggregate(ctx, products, "sum", None)?.into_iter().next() else {
        return Ok(Vec::new());
    };
    let Some(sum_weights) = aggregate(ctx, weights.clone(), "sum", None)?
        .into_iter()
        .next()
    else {
        return Ok(Vec::new());
    };
    let len = sum_products.values.len().max(sum_weights.values.len());
    let values = (0..len)
        .map(|i| {
            safe_div(
                sum_products.values.get(i).copied().unwrap_or(NULL),
                sum_weights.values.get(i).copied().unwrap_or(NULL),
            )
        })
        .collect();
    let set = |l: &[Series]| {
        let mut v: Vec<&str> = l.iter().map(|s| s.path_expression.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v.join(",")
    };
    let name = format!(
        "weightedAverage({}, {}, {})",
        set(&avgs),
        set(&weights),
        nodes
            .iter()
            .map(Value::py_str)
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut s = Series::new(
        name,
        sum_products.start,
        sum_products.end,
        sum_products.step,
        values,
    );
    s.xff = ctx.xff;
    Ok(vec![s])
}
