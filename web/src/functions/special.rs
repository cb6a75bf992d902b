//! Special: consolidation settings, constant and generated series, tag queries, fallbacks,
//! cacti-style legends, event counts.

use super::alias::format_units;
use super::transform::generated;
use super::{Args, Ctx, FunctionDef, Lit, Options, Param, SERIES, T, fstr};
use crate::error::EvalError;
use crate::eval::Value;
use crate::events::split_tags;
use crate::series::{AggFunc, Consolidation, NULL, Series, py_float};

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

const RANDOM_WALK: FunctionDef = def(
    "randomWalk",
    "A generated random walk for trying things out: it starts at 0 and each point adds a uniform random step in [-0.5, 0.5).",
    &[
        Param::new("name", T::String).req(),
        Param::new("step", T::Integer).default(Lit::Int(60)),
    ],
    random_walk,
);

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
    def(
        "cactiStyle",
        "Appends the last, maximum and minimum value to each name in aligned columns ('Current:… Max:… Min:…'). system 'si' or 'binary' writes the values with unit prefixes (k, M… or Ki, Mi…); units is appended to each value.",
        &[
            SERIES,
            Param::new("system", T::String)
                .options(Options::List(&[Lit::Str("binary"), Lit::Str("si")])),
            Param::new("units", T::String),
        ],
        cacti_style,
    ),
    RANDOM_WALK,
    RANDOM_WALK.alias(
        "randomWalkFunction",
        "A generated random walk for trying things out: it starts at 0 and each point adds a uniform random step in [-0.5, 0.5).",
    ),
    SET_XFF,
    SET_XFF.alias("xFilesFactor", "Short alias of setXFilesFactor."),
    def(
        "events",
        "How many events (posted to /events/) carrying every given tag happened in each second of the requested window; '*' alone counts every event. Seconds without one are null; the series consolidates by sum. Pairs well with drawAsInfinite.",
        &[Param::new("tags", T::String).req().multi()],
        events,
    ),
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

/// graphite-web's `events`: a one-second series over the request window named
/// `events("t1", "t2")`, counting the events with all the tags in each second.
fn events(ctx: &mut Ctx<'_>, a: &mut Args) -> Result<Vec<Series>, EvalError> {
    let args: Vec<String> = a.rest.iter().map(Value::py_str).collect();
    let name = format!("events(\"{}\")", args.join("\", \""));
    let tags: Option<Vec<String>> = if args == ["*"] {
        None
    } else {
        Some(args.iter().flat_map(|t| split_tags(t)).collect())
    };
    // One point a second: bounded like fetched points (spec §21).
    let points = usize::try_from(ctx.end - ctx.start).unwrap_or(0);
    if points > ctx.limits.max_points {
        return Err(EvalError::TooManyPoints {
            count: points,
            limit: ctx.limits.max_points,
        });
    }
    let values = match ctx.events {
        Some(store) => store.count_per_second(ctx.start, ctx.end, tags.as_deref()),
        None => vec![NULL; points],
    };
    let mut s = Series::new(name, ctx.start, ctx.end, 1, values);
    s.consolidation = Consolidation::Sum;
    s.xff = ctx.xff;
    Ok(vec![s])
}

fn set_consolidation(s: &mut Series, c: Consolidation, name: &str) {
    s.consolidation = c;
    s.tag("consolidateBy", name);
    s.rename(format!("consolidateBy({},\"{name}\")", s.name));
}

fn set_xff(ctx: &mut Ctx<'_>, a: &mut Args) -> Result<Vec<Series>, EvalError> {
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

/// graphite-web's `cactiStyle`: columns as wide as the widest name and value texts (the value
/// widths measured on the integer part, with 3 standing in for a missing or zero value).
fn cacti_style(_: &mut Ctx<'_>, a: &mut Args) -> Result<Vec<Series>, EvalError> {
    let system = a.str(1).filter(|s| !s.is_empty()).map(str::to_owned);
    let units = a.str(2).filter(|s| !s.is_empty()).map(str::to_owned);
    let fmt = |x: f64| -> String {
        match (&system, &units) {
            (Some(sys), Some(u)) => {
                let (v, prefix) = format_units(x, sys);
                format!("{v:.2} {prefix}{u}")
            }
            (Some(sys), None) => {
                let (v, prefix) = format_units(x, sys);
                format!("{v:.2}{prefix}")
            }
            (None, Some(u)) => format!("{x:.2} {u}"),
            (None, None) => format!("{x:.2}"),
        }
    };
    // Python's `int(v or 3)`: None and 0 become 3, others are truncated (+0.0 turns -0 into 0).
    let width_of = |v: f64| -> usize {
        let int = if v.is_nan() || v == 0.0 {
            3.0
        } else {
            v.trunc() + 0.0
        };
        fmt(int).chars().count()
    };
    let mut l = a.list(0);
    let stats: Vec<[f64; 3]> = l
        .iter()
        .map(|s| [AggFunc::Last, AggFunc::Max, AggFunc::Min].map(|f| f.apply(&s.values)))
        .collect();
    let name_len = l.iter().map(|s| s.name.chars().count()).max().unwrap_or(0);
    let col = |i: usize| stats.iter().map(|st| width_of(st[i])).max().unwrap_or(0) + 3;
    let (last_len, max_len, min_len) = (col(0), col(1), col(2));
    let text = |v: f64| if v.is_nan() { "nan".to_owned() } else { fmt(v) };
    for (s, [last, max, min]) in l.iter_mut().zip(stats) {
        s.name = format!(
            "{:<name_len$} Current:{:<last_len$} Max:{:<max_len$} Min:{:<min_len$} ",
            s.name,
            text(last),
            text(max),
            text(min)
        );
    }
    Ok(l)
}

/// graphite-web's `randomWalkFunction`: the value before each step's increment.
fn random_walk(ctx: &mut Ctx<'_>, a: &mut Args) -> Result<Vec<Series>, EvalError> {
    let name = a.str(0).unwrap_or("randomWalk").to_owned();
    let mut rng = Uniform::seeded();
    let mut current = 0.0;
    Ok(vec![generated(ctx, &name, a.int(1).unwrap_or(60), |_| {
        let v = current;
        current += rng.sample() - 0.5;
        v
    })])
}

/// Uniform floats in [0, 1) for randomWalk: SplitMix64, seeded per call from the standard
/// library's randomly keyed hasher (test data needs no cryptographic source or dependency).
struct Uniform(u64);

impl Uniform {
    fn seeded() -> Self {
        use std::hash::{BuildHasher, Hasher};
        Uniform(
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish(),
        )
    }

    fn sample(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}
