//! Transform: functions that change the values of each series independently (scaling,
//! derivatives, re-bucketing, time shifts, null handling).

use super::{Args, Ctx, FunctionDef, Lit, Param, SERIES, T, fstr, g, map_values};
use crate::attime::{self, parse_time_offset};
use crate::error::EvalError;
use crate::series::{AggFunc, NULL, Series, xff_ok};

group_constructor!(def, "Transform");

const ONLY_SERIES: &[Param] = &[SERIES];
const INTERVAL_SUGGESTIONS: &[Lit] = &[Lit::Str("10min"), Lit::Str("1h"), Lit::Str("1d")];
const SHIFT_SUGGESTIONS: &[Lit] = &[
    Lit::Str("1h"),
    Lit::Str("6h"),
    Lit::Str("12h"),
    Lit::Str("1d"),
    Lit::Str("2d"),
    Lit::Str("7d"),
    Lit::Str("14d"),
    Lit::Str("30d"),
];
const DELTA_PARAMS: &[Param] = &[
    SERIES,
    Param::new("maxValue", T::Float),
    Param::new("minValue", T::Float),
];

const TIME: FunctionDef = def(
    "time",
    "A generated series whose value at each point is its own timestamp.",
    &[
        Param::new("name", T::String).req(),
        Param::new("step", T::Integer).default(Lit::Int(60)),
    ],
    time_function,
);

const SIN: FunctionDef = def(
    "sin",
    "A generated sine wave of the timestamp, times amplitude.",
    &[
        Param::new("name", T::String).req(),
        Param::new("amplitude", T::Integer).default(Lit::Int(1)),
        Param::new("step", T::Integer).default(Lit::Int(60)),
    ],
    sin_function,
);

pub(crate) const DEFS: &[FunctionDef] = &[
    def(
        "scale",
        "Multiplies every value by a constant factor.",
        &[SERIES, Param::new("factor", T::Float).req()],
        |_, a| {
            let f = a.float(1).unwrap_or(1.0);
            let mut l = a.list(0);
            map_values(
                &mut l,
                |n| format!("scale({n},{})", g(f)),
                Some(("scale", fstr(f))),
                |v| v * f,
            );
            Ok(l)
        },
    ),
    def(
        "offset",
        "Adds a constant to every non-null value.",
        &[SERIES, Param::new("factor", T::Float).req()],
        |_, a| {
            let f = a.float(1).unwrap_or(0.0);
            let mut l = a.list(0);
            map_values(
                &mut l,
                |n| format!("offset({n},{})", g(f)),
                Some(("offset", fstr(f))),
                |v| v + f,
            );
            Ok(l)
        },
    ),
    def(
        "add",
        "Adds a constant to every non-null value (the name shows the constant as an integer).",
        &[SERIES, Param::new("constant", T::Float).req()],
        |_, a| {
            let c = a.float(1).unwrap_or(0.0);
            let mut l = a.list(0);
            map_values(
                &mut l,
                |n| format!("add({n},{})", c.trunc() as i64),
                Some(("add", fstr(c))),
                |v| v + c,
            );
            Ok(l)
        },
    ),
    def(
        "scaleToSeconds",
        "Turns per-step values into per-`seconds` values: value × seconds / step, rounded to 6 decimals.",
        &[SERIES, Param::new("seconds", T::Float).req()],
        |_, a| {
            let secs = a.float(1).unwrap_or(1.0);
            let mut l = a.list(0);
            for s in &mut l {
                let factor = secs / s.step as f64;
                for v in s.values.iter_mut().filter(|v| !v.is_nan()) {
                    *v = round_to(*v * factor, 6);
                }
                s.tag("scaleToSeconds", fstr(secs));
                s.rename(format!(
                    "scaleToSeconds({},{})",
                    s.name,
                    secs.trunc() as i64
                ));
            }
            Ok(l)
        },
    ),
    def(
        "absolute",
        "Absolute value of every point.",
        ONLY_SERIES,
        |_, a| {
            let mut l = a.list(0);
            map_values(
                &mut l,
                |n| format!("absolute({n})"),
                Some(("absolute", "1".into())),
                f64::abs,
            );
            Ok(l)
        },
    ),
    def(
        "pow",
        "Raises every value to a power; math errors give null.",
        &[SERIES, Param::new("factor", T::Float).req()],
        |_, a| {
            let f = a.float(1).unwrap_or(1.0);
            let mut l = a.list(0);
            map_values(
                &mut l,
                |n| format!("pow({n},{})", g(f)),
                Some(("pow", fstr(f))),
                |v| super::combine::safe_pow(v, f),
            );
            Ok(l)
        },
    ),
    def(
        "squareRoot",
        "Square root of every value; negative values give null.",
        ONLY_SERIES,
        |_, a| {
            let mut l = a.list(0);
            map_values(
                &mut l,
                |n| format!("squareRoot({n})"),
                Some(("squareRoot", "1".into())),
                |v| super::combine::safe_pow(v, 0.5),
            );
            Ok(l)
        },
    ),
    def(
        "invert",
        "1/x for every value; zero gives null.",
        ONLY_SERIES,
        |_, a| {
            let mut l = a.list(0);
            map_values(
                &mut l,
                |n| format!("invert({n})"),
                Some(("invert", "1".into())),
                |v| super::combine::safe_pow(v, -1.0),
            );
            Ok(l)
        },
    ),
    def(
        "log",
        "Logarithm of every value in the given base (10 by default); values ≤ 0 give null.",
        &[SERIES, Param::new("base", T::Integer).default(Lit::Int(10))],
        |_, a| {
            let base = a.int(1).unwrap_or(10);
            let mut l = a.list(0);
            for s in &mut l {
                for v in s.values.iter_mut() {
                    *v = if v.is_nan() || *v <= 0.0 {
                        NULL
                    } else {
                        v.ln() / (base as f64).ln()
                    };
                }
                s.tag("log", base.to_string());
                s.rename(format!("log({}, {base})", s.name));
            }
            Ok(l)
        },
    ),
    def("exp", "e raised to every value.", ONLY_SERIES, |_, a| {
        let mut l = a.list(0);
        map_values(
            &mut l,
            |n| format!("exp({n})"),
            Some(("exp", "e".into())),
            f64::exp,
        );
        Ok(l)
    }),
    def(
        "sigmoid",
        "The logistic function 1/(1+e^-x) of every value.",
        ONLY_SERIES,
        |_, a| {
            let mut l = a.list(0);
            map_values(
                &mut l,
                |n| format!("sigmoid({n})"),
                Some(("sigmoid", "sigmoid".into())),
                |v| 1.0 / (1.0 + (-v).exp()),
            );
            Ok(l)
        },
    ),
    def(
        "logit",
        "The logit log(x/(1-x)) of every value; out-of-domain values give null.",
        ONLY_SERIES,
        |_, a| {
            let mut l = a.list(0);
            map_values(
                &mut l,
                |n| format!("logit({n})"),
                Some(("logit", "logit".into())),
                |v| {
                    let q = v / (1.0 - v);
                    if v == 1.0 || q <= 0.0 { NULL } else { q.ln() }
                },
            );
            Ok(l)
        },
    ),
    def(
        "offsetToZero",
        "Subtracts the series' minimum from every value, so the lowest point is 0.",
        ONLY_SERIES,
        |_, a| {
            let mut l = a.list(0);
            for s in &mut l {
                let min = AggFunc::Min.apply(&s.values);
                s.values
                    .iter_mut()
                    .filter(|v| !v.is_nan())
                    .for_each(|v| *v -= min);
                s.tag(
                    "offsetToZero",
                    if min.is_nan() {
                        "None".into()
                    } else {
                        fstr(min)
                    },
                );
                s.rename(format!("offsetToZero({})", s.name));
            }
            Ok(l)
        },
    ),
    def(
        "round",
        "Rounds every value to the given number of decimals (0 by default), halves to even.",
        &[
            SERIES,
            Param::new("precision", T::Integer).default(Lit::Int(0)),
        ],
        |_, a| {
            let precision = a.int(1);
            let mut l = a.list(0);
            for s in &mut l {
                let p = precision.unwrap_or(0);
                s.values
                    .iter_mut()
                    .filter(|v| !v.is_nan())
                    .for_each(|v| *v = round_to(*v, p));
                s.tag("round", p.to_string());
                let name = match precision {
                    None => format!("round({})", s.name),
                    Some(p) => format!("round({},{p})", s.name),
                };
                s.rename(name);
            }
            Ok(l)
        },
    ),
    def(
        "minMax",
        "Scales each series to [0, 1] between its minimum and maximum (a constant series gives 0).",
        ONLY_SERIES,
        |_, a| {
            let mut l = a.list(0);
            for s in &mut l {
                let min = nan_to(AggFunc::Min.apply(&s.values), 0.0);
                let max = nan_to(AggFunc::Max.apply(&s.values), 0.0);
                for v in s.values.iter_mut().filter(|v| !v.is_nan()) {
                    *v = if max - min == 0.0 {
                        0.0
                    } else {
                        (*v - min) / (max - min)
                    };
                }
                s.rename(format!("minMax({})", s.name));
            }
            Ok(l)
        },
    ),
    def(
        "isNonNull",
        "1 where the series has a value, 0 where it is null.",
        ONLY_SERIES,
        |_, a| {
            let mut l = a.list(0);
            for s in &mut l {
                s.values
                    .iter_mut()
                    .for_each(|v| *v = if v.is_nan() { 0.0 } else { 1.0 });
                s.tag("isNonNull", "1");
                s.rename(format!("isNonNull({})", s.name));
            }
            Ok(l)
        },
    ),
    def(
        "derivative",
        "Difference between each value and the previous one; null after a gap.",
        ONLY_SERIES,
        |_, a| {
            let l = a.list(0);
            Ok(l.into_iter()
                .map(|mut s| {
                    let mut prev = NULL;
                    let values = s
                        .values
                        .iter()
                        .map(|&v| {
                            let d = if prev.is_nan() || v.is_nan() {
                                NULL
                            } else {
                                v - prev
                            };
                            prev = v;
                            d
                        })
                        .collect();
                    s.tag("derivative", "1");
                    let name = format!("derivative({})", s.name);
                    s.derive_renamed(name, values)
                })
                .collect())
        },
    ),
    def(
        "nonNegativeDerivative",
        "Like derivative, but a decrease (a counter reset) gives null, or wraps around maxValue / restarts from minValue when those are given.",
        DELTA_PARAMS,
        |_, a| {
            let (max, min) = (a.float(1), a.float(2));
            let l = a.list(0);
            Ok(l.into_iter()
                .map(|mut s| {
                    let mut prev = NULL;
                    let values = s
                        .values
                        .iter()
                        .map(|&v| non_negative_delta(v, &mut prev, max, min))
                        .collect();
                    s.tag("nonNegativeDerivative", "1");
                    let name = format!("nonNegativeDerivative({})", s.name);
                    s.derive_renamed(name, values)
                })
                .collect())
        },
    ),
    def(
        "perSecond",
        "nonNegativeDerivative divided by the step: the per-second rate of a counter, rounded to 6 decimals.",
        DELTA_PARAMS,
        |_, a| {
            let (max, min) = (a.float(1), a.float(2));
            let l = a.list(0);
            Ok(l.into_iter()
                .map(|mut s| {
                    let mut prev = NULL;
                    let step = s.step as f64;
                    let values = s
                        .values
                        .iter()
                        .map(|&v| {
                            let d = non_negative_delta(v, &mut prev, max, min);
                            if d.is_nan() {
                                NULL
                            } else {
                                round_to(d / step, 6)
                            }
                        })
                        .collect();
                    s.tag("perSecond", "1");
                    let name = format!("perSecond({})", s.name);
                    s.derive_renamed(name, values)
                })
                .collect())
        },
    ),
    def(
        "integral",
        "Running total of the values; nulls stay null and do not reset it.",
        ONLY_SERIES,
        |_, a| {
            let l = a.list(0);
            Ok(l.into_iter()
                .map(|mut s| {
                    let mut acc = 0.0;
                    let values = s
                        .values
                        .iter()
                        .map(|&v| {
                            if v.is_nan() {
                                NULL
                            } else {
                                acc += v;
                                acc
                            }
                        })
                        .collect();
                    s.tag("integral", "1");
                    let name = format!("integral({})", s.name);
                    s.derive_renamed(name, values)
                })
                .collect())
        },
    ),
    def(
        "integralByInterval",
        "Running total that restarts at every multiple of the interval counted from the start of the request.",
        &[SERIES, Param::new("intervalUnit", T::String).req()],
        |ctx, a| {
            let unit = a.str(1).unwrap_or("1d").to_owned();
            let interval = parse_time_offset(&unit)
                .map_err(|e| EvalError::Time {
                    func: "integralByInterval".into(),
                    source: e,
                })?
                .abs();
            if interval == 0 {
                return Err(a.input_err("interval must not be zero"));
            }
            let start_time = ctx.start;
            let l = a.list(0);
            Ok(l.into_iter()
                .map(|mut s| {
                    let mut t = s.start;
                    let mut acc = 0.0;
                    let step = s.step;
                    let values = s
                        .values
                        .iter()
                        .map(|&v| {
                            if (t - start_time).div_euclid(interval)
                                != (t - start_time - step).div_euclid(interval)
                            {
                                acc = 0.0;
                            }
                            if !v.is_nan() {
                                acc += v;
                            }
                            t += step;
                            acc
                        })
                        .collect();
                    s.tag("integralByInterval", unit.clone());
                    let name = format!("integralByInterval({},'{unit}')", s.name);
                    s.derive_renamed(name, values)
                })
                .collect())
        },
    ),
    def(
        "delay",
        "Shifts values by a number of steps (positive = later), padding with nulls.",
        &[SERIES, Param::new("steps", T::Integer).req()],
        |_, a| {
            let steps = a.int(1).unwrap_or(0);
            let l = a.list(0);
            Ok(l.into_iter()
                .map(|mut s| {
                    let n = s.values.len();
                    let k = (steps.unsigned_abs() as usize).min(n);
                    let values = if steps < 0 {
                        s.values[k..]
                            .iter()
                            .copied()
                            .chain(std::iter::repeat_n(NULL, k))
                            .collect()
                    } else if steps == 0 {
                        // graphite-web's series[:-0] is empty.
                        Vec::new()
                    } else {
                        std::iter::repeat_n(NULL, k)
                            .chain(s.values[..n - k].iter().copied())
                            .collect()
                    };
                    s.tag("delay", steps.to_string());
                    let name = format!("delay({},{steps})", s.name);
                    s.derive_renamed(name, values)
                })
                .collect())
        },
    ),
    def(
        "keepLastValue",
        "Fills runs of at most `limit` nulls with the last value before them (leading nulls stay).",
        &[SERIES, Param::new("limit", T::IntOrInf).default(Lit::Inf)],
        |_, a| {
            let limit = a.float(1).unwrap_or(f64::INFINITY);
            let mut l = a.list(0);
            for s in &mut l {
                s.rename(format!("keepLastValue({})", s.name));
                let mut nulls = 0usize;
                let mut last = NULL;
                for i in 0..s.values.len() {
                    let v = s.values[i];
                    if v.is_nan() {
                        nulls += 1;
                    } else {
                        if nulls > 0 && nulls as f64 <= limit && !last.is_nan() {
                            s.values[i - nulls..i].iter_mut().for_each(|x| *x = last);
                        }
                        nulls = 0;
                        last = v;
                    }
                }
                let n = s.values.len();
                if nulls > 0 && nulls as f64 <= limit && !last.is_nan() {
                    s.values[n - nulls..].iter_mut().for_each(|x| *x = last);
                }
            }
            Ok(l)
        },
    ),
    def(
        "interpolate",
        "Fills runs of at most `limit` nulls that have values on both sides with a straight line.",
        &[SERIES, Param::new("limit", T::IntOrInf).default(Lit::Inf)],
        |_, a| {
            let limit = a.float(1).unwrap_or(f64::INFINITY);
            let mut l = a.list(0);
            for s in &mut l {
                s.rename(format!("interpolate({})", s.name));
                let mut nulls = 0usize;
                for i in 1..s.values.len() {
                    let v = s.values[i];
                    if v.is_nan() {
                        nulls += 1;
                        continue;
                    }
                    if nulls == 0 {
                        continue;
                    }
                    let before = s.values[i - nulls - 1];
                    if !before.is_nan() && nulls as f64 <= limit {
                        for idx in i - nulls..i {
                            let k = (idx - (i - nulls - 1)) as f64;
                            s.values[idx] = before + k * (v - before) / (nulls + 1) as f64;
                        }
                    }
                    nulls = 0;
                }
            }
            Ok(l)
        },
    ),
    def(
        "transformNull",
        "Replaces nulls with a default (0 by default); with referenceSeries, only where at least one reference series has a value.",
        &[
            SERIES,
            Param::new("default", T::Float).default(Lit::Int(0)),
            Param::new("referenceSeries", T::SeriesList),
        ],
        |_, a| {
            let given = a.has(1);
            let d = a.float(1).unwrap_or(0.0);
            let reference = a.list(2);
            let has_ref = !reference.is_empty();
            let defaults: Option<Vec<bool>> = has_ref.then(|| {
                let len = reference.iter().map(|s| s.values.len()).max().unwrap_or(0);
                (0..len)
                    .map(|k| {
                        reference
                            .iter()
                            .any(|s| s.values.get(k).is_some_and(|v| !v.is_nan()))
                    })
                    .collect()
            });
            let mut l = a.list(0);
            for s in &mut l {
                s.tag("transformNull", if given { fstr(d) } else { "0".into() });
                if has_ref {
                    s.tag("referenceSeries", "1");
                    s.rename(format!(
                        "transformNull({},{},referenceSeries)",
                        s.name,
                        g(d)
                    ));
                } else {
                    s.rename(format!("transformNull({},{})", s.name, g(d)));
                }
                match &defaults {
                    None => s
                        .values
                        .iter_mut()
                        .filter(|v| v.is_nan())
                        .for_each(|v| *v = d),
                    Some(mask) => {
                        let len = s.values.len().max(mask.len());
                        s.values.resize(len, NULL);
                        for (k, v) in s.values.iter_mut().enumerate() {
                            if v.is_nan() && mask.get(k).copied().unwrap_or(false) {
                                *v = d;
                            }
                        }
                    }
                }
            }
            Ok(l)
        },
    ),
    def(
        "summarize",
        "Re-buckets each series into fixed intervals aggregated with func (sum by default). Buckets align to multiples of the interval, or to the series start with alignToFrom.",
        &[
            SERIES,
            Param::new("intervalString", T::Interval)
                .req()
                .suggest(INTERVAL_SUGGESTIONS),
            Param::new("func", T::AggFunc).default(Lit::Str("sum")),
            Param::new("alignToFrom", T::Boolean).default(Lit::Bool(false)),
        ],
        |_, a| {
            let text = a.str(1).unwrap_or("1h").to_owned();
            let interval = interval_seconds(a, &text)?;
            let func = a.str(2).unwrap_or("sum").to_owned();
            let agg = agg(a, &func)?;
            let align = a.bool(3).unwrap_or(false);
            let l = a.list(0);
            Ok(l.into_iter()
                .map(|mut s| {
                    let (new_start, mut new_end) = if align {
                        (s.start, s.end)
                    } else {
                        (
                            s.start - s.start.rem_euclid(interval),
                            s.end - s.end.rem_euclid(interval) + interval,
                        )
                    };
                    let (values, aligned_end) =
                        summarize_values(&s, agg, interval, new_start, new_end);
                    if align {
                        new_end = aligned_end;
                    }
                    s.tag("summarize", text.clone());
                    s.tag("summarizeFunction", func.clone());
                    let name = format!(
                        "summarize({}, \"{text}\", \"{func}\"{})",
                        s.name,
                        if align { ", true" } else { "" }
                    );
                    let mut out = s.derive_renamed(name, values);
                    out.start = new_start;
                    out.end = new_end;
                    out.step = interval;
                    out
                })
                .collect())
        },
    ),
    def(
        "smartSummarize",
        "Like summarize, but buckets start at the request's start, optionally truncated to a calendar unit (alignTo: years, months, weeks, days, hours, minutes, seconds).",
        &[
            SERIES,
            Param::new("intervalString", T::Interval)
                .req()
                .suggest(INTERVAL_SUGGESTIONS),
            Param::new("func", T::AggFunc).default(Lit::Str("sum")),
            Param::new("alignTo", T::String).options(super::Options::List(&[
                Lit::Bool(false),
                Lit::Null,
                Lit::Bool(true),
                Lit::Str("days"),
                Lit::Str("hours"),
                Lit::Str("minutes"),
                Lit::Str("months"),
                Lit::Str("seconds"),
                Lit::Str("weeks"),
                Lit::Str("years"),
            ])),
        ],
        |ctx, a| {
            let text = a.str(1).unwrap_or("1h").to_owned();
            let interval = interval_seconds(a, &text)?;
            let func = a.str(2).unwrap_or("sum").to_owned();
            let agg = agg(a, &func)?;
            let mut list = a.list(0);
            if let Some(align) = a.str(3).map(str::to_owned) {
                let unit = attime::calendar_unit(&align)
                    .ok_or_else(|| a.input_err(format!("invalid alignTo unit '{align}'")))?;
                let weekday = align
                    .chars()
                    .last()
                    .and_then(|c| c.to_digit(10))
                    .map_or(1, |d| d as i8);
                let start = attime::truncate_to(ctx.start, &ctx.tz, unit, weekday);
                if let Some(raw) = a.raw_first.clone() {
                    list = ctx.eval_in_window(&raw, start, ctx.end, "smartSummarize")?;
                }
            }
            Ok(list
                .into_iter()
                .map(|mut s| {
                    let (values, aligned_end) = summarize_values(&s, agg, interval, s.start, s.end);
                    s.tag("smartSummarize", text.clone());
                    s.tag("smartSummarizeFunction", func.clone());
                    let name = format!("smartSummarize({}, \"{text}\", \"{func}\")", s.name);
                    let mut out = s.derive_renamed(name, values);
                    out.end = aligned_end;
                    out.step = interval;
                    out
                })
                .collect())
        },
    ),
    def(
        "hitcount",
        "Treats values as per-second rates and totals them into interval buckets (aligned to the end of the series, or to the interval's calendar unit with alignToInterval).",
        &[
            SERIES,
            Param::new("intervalString", T::Interval)
                .req()
                .suggest(INTERVAL_SUGGESTIONS),
            Param::new("alignToInterval", T::Boolean).default(Lit::Bool(false)),
        ],
        |ctx, a| {
            let text = a.str(1).unwrap_or("1h").to_owned();
            let interval = interval_seconds(a, &text)?;
            let align = a.bool(2).unwrap_or(false);
            let mut list = a.list(0);
            if align {
                let unit = if interval >= 86_400 {
                    Some(attime::CalendarUnit::Days)
                } else if interval >= 3600 {
                    Some(attime::CalendarUnit::Hours)
                } else if interval >= 60 {
                    Some(attime::CalendarUnit::Minutes)
                } else {
                    None
                };
                let start =
                    unit.map_or(ctx.start, |u| attime::truncate_to(ctx.start, &ctx.tz, u, 1));
                if let Some(raw) = a.raw_first.clone() {
                    list = ctx.eval_in_window(&raw, start, ctx.end, "hitcount")?;
                }
                for s in &mut list {
                    let count = (s.end - s.start).div_euclid(interval);
                    s.end = s.start + count * interval + interval;
                }
            }
            Ok(list
                .into_iter()
                .map(|s| hitcount(s, interval, &text, align))
                .collect())
        },
    ),
    def(
        "timeShift",
        "Draws the series as it was a given interval earlier (or later with '+'): the target is re-evaluated over the shifted window and relabelled onto the current one.",
        &[
            SERIES,
            Param::new("timeShift", T::Interval)
                .req()
                .suggest(SHIFT_SUGGESTIONS),
            Param::new("resetEnd", T::Boolean).default(Lit::Bool(true)),
            Param::new("alignDst", T::Boolean).default(Lit::Bool(false)),
        ],
        |ctx, a| {
            let mut shift = a.str(1).unwrap_or("1d").to_owned();
            if shift.starts_with(|c: char| c.is_ascii_digit()) {
                shift.insert(0, '-');
            }
            let delta = parse_time_offset(&shift).map_err(|e| EvalError::Time {
                func: "timeShift".into(),
                source: e,
            })?;
            let reset_end = a.bool(2).unwrap_or(true);
            let list = a.list(0);
            let Some(first) = list.first() else {
                return Ok(Vec::new());
            };
            let (start0, end0) = (first.start, first.end);
            let Some(raw) = a.raw_first.clone() else {
                return Ok(Vec::new());
            };
            let shifted =
                ctx.eval_in_window(&raw, ctx.start + delta, ctx.end + delta, "timeShift")?;
            Ok(shifted
                .into_iter()
                .map(|mut s| {
                    s.tag("timeShift", shift.clone());
                    s.name = format!("timeShift({}, \"{shift}\")", s.name);
                    s.end = if reset_end {
                        end0
                    } else {
                        s.end - s.start + start0
                    };
                    s.start = start0;
                    s
                })
                .collect())
        },
    ),
    def(
        "timeStack",
        "One timeShift copy of the series for each multiple k in [timeShiftStart, timeShiftEnd) of the unit.",
        &[
            SERIES,
            Param::new("timeShiftUnit", T::Interval)
                .default(Lit::Str("1d"))
                .suggest(SHIFT_SUGGESTIONS),
            Param::new("timeShiftStart", T::Integer).default(Lit::Int(0)),
            Param::new("timeShiftEnd", T::Integer).default(Lit::Int(7)),
        ],
        |ctx, a| {
            let mut unit = a.str(1).unwrap_or("1d").to_owned();
            if unit.starts_with(|c: char| c.is_ascii_digit()) {
                unit.insert(0, '-');
            }
            let delta = parse_time_offset(&unit).map_err(|e| EvalError::Time {
                func: "timeStack".into(),
                source: e,
            })?;
            let (from, to) = (a.int(2).unwrap_or(0), a.int(3).unwrap_or(7));
            let list = a.list(0);
            let Some(first) = list.first() else {
                return Ok(Vec::new());
            };
            let (start0, end0) = (first.start, first.end);
            let Some(raw) = a.raw_first.clone() else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for k in from..to {
                let d = delta * k;
                for mut s in ctx.eval_in_window(&raw, ctx.start + d, ctx.end + d, "timeStack")? {
                    s.tag("timeShiftUnit", unit.clone());
                    s.tag("timeShift", k.to_string());
                    s.rename(format!("timeShift({}, {unit}, {k})", s.name));
                    s.start = start0;
                    s.end = end0;
                    out.push(s);
                }
            }
            Ok(out)
        },
    ),
    def(
        "timeSlice",
        "Keeps only the points between two absolute times (null elsewhere).",
        &[
            SERIES,
            Param::new("startSliceAt", T::Date).req(),
            Param::new("endSliceAt", T::Date).default(Lit::Str("now")),
        ],
        |ctx, a| {
            let parse = |v: Option<&crate::eval::Value>, d: &str| -> Result<i64, EvalError> {
                let text = v.map_or_else(|| d.to_owned(), crate::eval::Value::py_str);
                attime::parse_at_time(&text, &ctx.tz, ctx.now).map_err(|e| EvalError::Time {
                    func: "timeSlice".into(),
                    source: e,
                })
            };
            let start = parse(a.value(1), "now")?;
            let end = parse(a.value(2), "now")?;
            let mut l = a.list(0);
            for s in &mut l {
                s.tag("timeSliceStart", start.to_string());
                s.tag("timeSliceEnd", end.to_string());
                s.name = format!("timeSlice({}, {start}, {end})", s.name);
                let mut t = ctx.start;
                for v in s.values.iter_mut() {
                    if t < start || t > end {
                        *v = NULL;
                    }
                    t += s.step;
                }
            }
            Ok(l)
        },
    ),
    def(
        "compressPeriodicGaps",
        "For series written less often than their step (a value, then regular runs of nulls): guesses the real interval from the first values and re-buckets to it keeping the last value of each bucket. Series without such a pattern keep their values.",
        ONLY_SERIES,
        |_, a| {
            let mut l = a.list(0);
            for s in &mut l {
                s.rename(format!("compressPeriodicGaps({})", s.name));
                if let Some(c) = compress_periodic_gaps(s) {
                    *s = c;
                }
            }
            Ok(l)
        },
    ),
    TIME,
    TIME.alias(
        "timeFunction",
        "A generated series whose value at each point is its own timestamp.",
    ),
    SIN,
    SIN.alias(
        "sinFunction",
        "A generated sine wave of the timestamp, times amplitude.",
    ),
];

impl Series {
    /// graphite-web's `series.copy(name=…, values=…)`: tags and timing kept, path expression
    /// becomes the new name.
    pub(crate) fn derive_renamed(&self, name: String, values: Vec<f64>) -> Series {
        let mut s = self.derive(name.clone(), values);
        s.path_expression = name;
        s
    }
}

fn nan_to(v: f64, d: f64) -> f64 {
    if v.is_nan() { d } else { v }
}

/// Python's `round(v, p)` (half to even at the decimal position).
pub(crate) fn round_to(v: f64, p: i64) -> f64 {
    if !v.is_finite() {
        return v;
    }
    let p = p.clamp(-300, 300) as i32;
    let m = 10f64.powi(p);
    let scaled = v * m;
    if !scaled.is_finite() {
        return v;
    }
    let r = scaled.round_ties_even() / m;
    // Guard against representation noise turning e.g. 0.1234565 → 0.123456 the wrong way:
    // Python rounds the exact decimal value; this matches within one ulp of the result.
    if r.is_finite() { r } else { v }
}

fn interval_seconds(a: &Args, text: &str) -> Result<i64, EvalError> {
    let v = parse_time_offset(text).map_err(|e| EvalError::Time {
        func: a.func.to_owned(),
        source: e,
    })?;
    if v <= 0 {
        return Err(a.input_err(format!("interval must be positive, got '{text}'")));
    }
    Ok(v)
}

fn agg(a: &Args, func: &str) -> Result<AggFunc, EvalError> {
    AggFunc::parse(func.strip_suffix("Series").unwrap_or(func))
        .ok_or_else(|| a.input_err(format!("Unsupported aggregation function: {func}")))
}

/// graphite-web's `_nonNegativeDelta`; `prev` is updated in place.
fn non_negative_delta(v: f64, prev: &mut f64, max: Option<f64>, min: Option<f64>) -> f64 {
    if !v.is_nan() && (max.is_some_and(|m| v > m) || min.is_some_and(|m| v < m)) {
        *prev = NULL;
        return NULL;
    }
    if prev.is_nan() || v.is_nan() {
        *prev = v;
        return NULL;
    }
    let p = *prev;
    *prev = v;
    if v >= p {
        v - p
    } else if let Some(m) = max {
        m + 1.0 + v - p - min.unwrap_or(0.0)
    } else if let Some(m) = min {
        v - m
    } else {
        NULL
    }
}

/// graphite-web's `_summarizeValues`, including its bucket-start quirk (a bucket may take the
/// last point at or before its start).
pub(crate) fn summarize_values(
    s: &Series,
    agg: AggFunc,
    interval: i64,
    new_start: i64,
    new_end: i64,
) -> (Vec<f64>, i64) {
    let n = if s.step > 0 {
        ((s.end - s.start + s.step - 1) / s.step).max(0) as usize
    } else {
        0
    };
    let num = n.min(s.values.len());
    let ts = |i: usize| s.start + i as i64 * s.step;
    let interval_points = interval as f64 / s.step as f64;
    let mut out = Vec::new();
    let mut i = 0usize;
    let mut t = new_start;
    while t < new_end {
        let mut first = i;
        let mut non_null = 0usize;
        while i < num && ts(i) < t + interval {
            if ts(i) <= t {
                first = i;
            }
            if ts(i) >= t && !s.values[i].is_nan() {
                non_null += 1;
            }
            i += 1;
        }
        out.push(if xff_ok(non_null, interval_points, s.xff) {
            agg.apply(&s.values[first..i])
        } else {
            NULL
        });
        t += interval;
    }
    (out, t)
}

/// graphite-web's `_compressPeriodicGaps`: the compressed series, or `None` when no period is
/// detected. Like graphite-web it tests values for truth, so a 0 counts as missing when
/// detecting, and a value at index 0 is passed over.
fn compress_periodic_gaps(s: &Series) -> Option<Series> {
    let truthy = |v: f64| !v.is_nan() && v != 0.0;
    let (mut first_seen, mut second_seen) = (0usize, 0usize);
    for (i, &v) in s.values.iter().enumerate() {
        if truthy(v) {
            if first_seen > 0 {
                second_seen = i;
                break;
            }
            first_seen = i;
        }
    }
    let guess = second_seen.checked_sub(first_seen).filter(|&g| g > 1)?;
    let third = second_seen + guess;
    let len = s.values.len();
    let periodic = third + 2 <= len
        && truthy(s.values[third])
        && s.values[third - 1].is_nan()
        && s.values[third + 1].is_nan();
    if !periodic {
        return None;
    }
    let interval = guess as i64 * s.step;
    let new_start = s.start + first_seen as i64 * s.step;
    let (values, _) = summarize_values(s, AggFunc::Last, interval, new_start, s.end);
    let new_end = new_start + interval * (values.len() as i64 - 1);
    // A new TimeSeries in graphite-web: name, tags, path expression, consolidation and
    // xFilesFactor carry over; graph options do not.
    let mut out = s.derive(s.name.clone(), values);
    out.start = new_start;
    out.end = new_end;
    out.step = interval;
    Some(out)
}

fn hitcount(s: Series, interval: i64, text: &str, align: bool) -> Series {
    let step = s.step;
    let bucket_count = ((s.end - s.start) as f64 / interval as f64).ceil().max(0.0) as usize;
    let mut buckets: Vec<Option<f64>> = vec![None; bucket_count];
    let new_start = s.end - bucket_count as i64 * interval;
    let mut add = |b: i64, v: f64| {
        if let Some(slot) = usize::try_from(b).ok().and_then(|b| buckets.get_mut(b)) {
            *slot = Some(slot.unwrap_or(0.0) + v);
        }
    };
    for (i, &v) in s.values.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        let start_time = s.start + i as i64 * step;
        let (start_bucket, start_mod) = (
            (start_time - new_start).div_euclid(interval),
            (start_time - new_start).rem_euclid(interval),
        );
        let end_time = start_time + step;
        let (mut end_bucket, mut end_mod) = (
            (end_time - new_start).div_euclid(interval),
            (end_time - new_start).rem_euclid(interval),
        );
        if end_bucket >= bucket_count as i64 {
            end_bucket = bucket_count as i64 - 1;
            end_mod = interval;
        }
        if start_bucket == end_bucket {
            if start_bucket >= 0 {
                add(start_bucket, v * (end_mod - start_mod) as f64);
            }
        } else {
            if start_bucket >= 0 {
                add(start_bucket, v * (interval - start_mod) as f64);
            }
            for j in start_bucket + 1..end_bucket {
                add(j, v * interval as f64);
            }
            if end_mod > 0 {
                add(end_bucket, v * end_mod as f64);
            }
        }
    }
    let values = buckets.into_iter().map(|b| b.unwrap_or(NULL)).collect();
    let mut s = s;
    s.tag("hitcount", text);
    let name = format!(
        "hitcount({}, \"{text}\"{})",
        s.name,
        if align { ", true" } else { "" }
    );
    let mut out = s.derive_renamed(name, values);
    out.start = new_start;
    out.step = interval;
    out
}

/// A series over the request window at `step` (at least 1 s) with `f(timestamp)` as values.
pub(crate) fn generated(ctx: &Ctx<'_>, name: &str, step: i64, f: impl FnMut(i64) -> f64) -> Series {
    let step = step.max(1);
    let values = (ctx.start..ctx.end).step_by(step as usize).map(f).collect();
    let mut s = Series::new(name, ctx.start, ctx.end, step, values);
    s.xff = ctx.xff;
    s
}

fn time_function(ctx: &mut Ctx<'_>, a: &mut Args) -> Result<Vec<Series>, EvalError> {
    let name = a.str(0).unwrap_or("time").to_owned();
    Ok(vec![generated(ctx, &name, a.int(1).unwrap_or(60), |t| {
        t as f64
    })])
}

fn sin_function(ctx: &mut Ctx<'_>, a: &mut Args) -> Result<Vec<Series>, EvalError> {
    let name = a.str(0).unwrap_or("sin").to_owned();
    let amp = a.int(1).unwrap_or(1) as f64;
    Ok(vec![generated(ctx, &name, a.int(2).unwrap_or(60), |t| {
        (t as f64).sin() * amp
    })])
}
