//! Special: consolidation settings, constant and generated series, tag queries, fallbacks.

use super::{Ctx, FunctionDef, Lit, Options, Param, SERIES, T, fstr};
use crate::eval::Value;
use crate::series::{Consolidation, NULL, Series, py_float};

group_constructor!(def, "Special");

const CONSOLIDATIONS: &[Lit] = &[
    Lit::Str("average"),
    Lit::Str("avg"),
    Lit::Str("avg_zero"),
    Lit::Str("first"),
    Lit::Str("last"),
    Lit::Str("max"),
    Lit::Str("min"),
    Lit::Str("sum"),
];

const SET_XFF: FunctionDef = def(
    "setXFilesFactor",
    "Sets the minimum share of non-null values (0–1) a consolidated point needs, for these series and for later aggregation in the request.",
    &[SERIES, Param::new("xFilesFactor", T::Float).req()],
    set_xff,
);

pub(crate) const DEFS: &[FunctionDef] = &[
    def(
        "consolidateBy",
        "Sets how points are merged when a series is drawn or returned with fewer points than it has (maxDataPoints, step normalisation): sum, average/avg, avg_zero, min, max, first or last.",
        &[
            SERIES,
            Param::new("consolidationFunc", T::String)
                .req()
                .options(Options::List(CONSOLIDATIONS)),
        ],
        |_, a| {
            let name = a.str(1).unwrap_or("average").to_owned();
            let Some(c) = Consolidation::parse(&name) else {
                return Err(a.input_err(format!("Invalid consolidation function: '{name}'")));
            };
            let mut l = a.list(0);
            for s in &mut l {
                set_consolidation(s, c, &name);
            }
            Ok(l)
        },
    ),
    def(
        "cumulative",
        "Same as consolidateBy(seriesList, 'sum').",
        &[SERIES],
        |_, a| {
            let mut l = a.list(0);
            for s in &mut l {
                set_consolidation(s, Consolidation::Sum, "sum");
            }
            Ok(l)
        },
    ),
    def(
        "constantLine",
        "A horizontal line at the given value across the requested time range (three points: start, middle, end).",
        &[Param::new("value", T::Float).req()],
        |ctx, a| Ok(vec![constant_line(ctx, a.float(0).unwrap_or(0.0))]),
    ),
    def(
        "fallbackSeries",
        "The first list if it has any series, otherwise the fallback list.",
        &[SERIES, Param::new("fallback", T::SeriesList).req()],
        |_, a| {
            let l = a.list(0);
            Ok(if l.is_empty() { a.list(1) } else { l })
        },
    ),
    def(
        "seriesByTag",
        "Tagged series matching every expression: tag=value, tag!=value, tag=~regex, tag!=~regex (regexes anchored at the start; 'name' is the metric name).",
        &[Param::new("tagExpressions", T::String).req().multi()],
        |ctx, a| {
            let specs: Vec<String> = a.rest.iter().map(Value::py_str).collect();
            ctx.fetch_by_tags(&specs)
        },
    ),
    SET_XFF,
    SET_XFF.alias("xFilesFactor", "Short alias of setXFilesFactor."),
    def(
        "changed",
        "1 where the value differs from the previous non-null value, else 0.",
        &[SERIES],
        |_, a| {
            let mut l = a.list(0);
            for s in &mut l {
                s.rename(format!("changed({})", s.name));
                let mut prev = NULL;
                for v in s.values.iter_mut() {
                    if prev.is_nan() {
                        prev = *v;
                        *v = 0.0;
                    } else if !v.is_nan() && *v != prev {
                        prev = *v;
                        *v = 1.0;
                    } else {
                        *v = 0.0;
                    }
                }
            }
            Ok(l)
        },
    ),
    def(
        "substr",
        "Names each series after nodes start..stop of its innermost path (stop 0 = to the end).",
        &[
            SERIES,
            Param::new("start", T::Node).default(Lit::Int(0)),
            Param::new("stop", T::Node).default(Lit::Int(0)),
        ],
        |_, a| {
            let (start, stop) = (a.int(1).unwrap_or(0), a.int(2).unwrap_or(0));
            let mut l = a.list(0);
            for s in &mut l {
                s.name = super::alias::substr(&s.name, start, stop);
            }
            Ok(l)
        },
    ),
    FunctionDef {
        group: "Calculate",
        ..def(
            "identity",
            "A generated series whose value is its own timestamp, one point a minute.",
            &[Param::new("name", T::String).req()],
            |ctx, a| {
                let name = a.str(0).unwrap_or("identity").to_owned();
                let values = (ctx.start..ctx.end).step_by(60).map(|t| t as f64).collect();
                let mut s = Series::new(name.clone(), ctx.start, ctx.end, 60, values);
                s.path_expression = format!("identity(\"{name}\")");
                s.xff = ctx.xff;
                Ok(vec![s])
            },
        )
    },
];

fn set_consolidation(s: &mut Series, c: Consolidation, name: &str) {
    s.consolidation = c;
    s.tag("consolidateBy", name);
    s.rename(format!("consolidateBy({},\"{name}\")", s.name));
}

fn set_xff(ctx: &mut Ctx<'_>, a: &mut super::Args) -> Result<Vec<Series>, crate::error::EvalError> {
    let x = a.float(1).unwrap_or(0.0);
    ctx.xff = x;
    let mut l = a.list(0);
    for s in &mut l {
        s.xff = x;
        s.tag("xFilesFactor", fstr(x));
    }
    Ok(l)
}

/// graphite-web's `constantLine`: three points at start, middle and end of the request.
pub(crate) fn constant_line(ctx: &Ctx<'_>, value: f64) -> Series {
    let step = ((ctx.end - ctx.start) / 2).max(1);
    let mut s = Series::new(py_float(value), ctx.start, ctx.end, step, vec![value; 3]);
    s.path_expression = format!("constantLine({})", py_float(value));
    s.xff = ctx.xff;
    s
}
