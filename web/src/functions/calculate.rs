//! Calculate: moving windows, percentiles and other statistics computed along each series.

use super::{Args, Ctx, FunctionDef, Lit, Param, SERIES, T, g};
use crate::attime::parse_time_offset;
use crate::error::EvalError;
use crate::eval::Value;
use crate::series::{AggFunc, NULL, Series, xff_ok};

group_constructor!(def, "Calculate");

const WINDOW_SUGGESTIONS: &[Lit] = &[
    Lit::Int(5),
    Lit::Int(7),
    Lit::Int(10),
    Lit::Str("1min"),
    Lit::Str("5min"),
    Lit::Str("10min"),
    Lit::Str("30min"),
    Lit::Str("1hour"),
];
const WINDOW: Param = Param::new("windowSize", T::IntOrInterval)
    .req()
    .suggest(WINDOW_SUGGESTIONS);
const MOVING: &[Param] = &[SERIES, WINDOW, Param::new("xFilesFactor", T::Float)];

pub(crate) const DEFS: &[FunctionDef] = &[
    def(
        "movingAverage",
        "Average of a sliding window ending at each point: a number of points, or a time interval like '5min'. Data before the request start is fetched so the first points are complete.",
        MOVING,
        |ctx, a| moving(ctx, a, "average", 2),
    ),
    def(
        "movingSum",
        "Sum of a sliding window ending at each point (points or interval).",
        MOVING,
        |ctx, a| moving(ctx, a, "sum", 2),
    ),
    def(
        "movingMin",
        "Minimum of a sliding window ending at each point (points or interval).",
        MOVING,
        |ctx, a| moving(ctx, a, "min", 2),
    ),
    def(
        "movingMax",
        "Maximum of a sliding window ending at each point (points or interval).",
        MOVING,
        |ctx, a| moving(ctx, a, "max", 2),
    ),
    def(
        "movingMedian",
        "Median of a sliding window ending at each point (points or interval).",
        MOVING,
        |ctx, a| moving(ctx, a, "median", 2),
    ),
    def(
        "movingWindow",
        "A sliding window ending at each point, aggregated with any aggregation function.",
        &[
            SERIES,
            WINDOW,
            Param::new("func", T::AggFunc).default(Lit::Str("average")),
            Param::new("xFilesFactor", T::Float),
        ],
        |ctx, a| {
            let func = a.str(2).unwrap_or("average").to_owned();
            moving(ctx, a, &func, 3)
        },
    ),
    def(
        "exponentialMovingAverage",
        "Exponential moving average with smoothing 2/(N+1), seeded with the mean of the first window; values rounded to 6 decimals.",
        &[SERIES, WINDOW],
        exponential_moving_average,
    ),
    def(
        "nPercentile",
        "Replaces each series by a constant line at its n-th percentile (nearest rank); series without values are dropped.",
        &[SERIES, Param::new("n", T::Float).req()],
        |_, a| {
            let n = a.float(1).unwrap_or(0.0);
            if n == 0.0 {
                return Err(a.input_err("The requested percent is required to be greater than 0"));
            }
            let l = a.list(0);
            Ok(l.into_iter().filter_map(|s| n_percentile(&s, n)).collect())
        },
    ),
    def(
        "aggregateLine",
        "A constant line at the series' aggregate value (average by default); keepStep keeps the series' own timestamps.",
        &[
            SERIES,
            Param::new("func", T::AggFunc).default(Lit::Str("average")),
            Param::new("keepStep", T::Boolean).default(Lit::Bool(false)),
        ],
        |ctx, a| {
            let func = a.str(1).unwrap_or("average").to_owned();
            let agg = AggFunc::parse(func.strip_suffix("Series").unwrap_or(&func))
                .ok_or_else(|| a.input_err(format!("Unsupported aggregation function: {func}")))?;
            let keep = a.bool(2).unwrap_or(false);
            let l = a.list(0);
            Ok(l.into_iter()
                .map(|s| {
                    let v = agg.apply(&s.values);
                    let name = if v.is_nan() {
                        format!("aggregateLine({}, None)", s.name)
                    } else {
                        format!("aggregateLine({}, {})", s.name, g(v))
                    };
                    if keep {
                        s.derive_renamed(name, vec![v; s.values.len()])
                    } else {
                        let mut c = super::special::constant_line(ctx, v);
                        c.rename(name);
                        c
                    }
                })
                .collect())
        },
    ),
    def(
        "stdev",
        "Moving standard deviation over a window of points; a point is null when fewer than windowTolerance of the window's points have values.",
        &[
            SERIES,
            Param::new("points", T::Integer).req(),
            Param::new("windowTolerance", T::Float).default(Lit::Float(0.1)),
        ],
        |_, a| {
            let points = a.int(1).unwrap_or(1).max(1) as usize;
            let tolerance = a.float(2).unwrap_or(0.1);
            let l = a.list(0);
            Ok(l.into_iter()
                .map(|mut s| {
                    let (mut valid, mut sum, mut sq) = (0usize, 0.0, 0.0);
                    let values: Vec<f64> = (0..s.values.len())
                        .map(|i| {
                            let new = s.values[i];
                            if i >= points {
                                let dropped = s.values[i - points];
                                if !dropped.is_nan() {
                                    valid -= 1;
                                    sum -= dropped;
                                    sq -= dropped * dropped;
                                }
                            }
                            if !new.is_nan() {
                                valid += 1;
                                sum += new;
                                sq += new * new;
                            }
                            if valid > 0 && valid as f64 / points as f64 >= tolerance {
                                let d = valid as f64 * sq - sum * sum;
                                if d < 0.0 {
                                    NULL
                                } else {
                                    d.sqrt() / valid as f64
                                }
                            } else {
                                NULL
                            }
                        })
                        .collect();
                    s.tag("stdev", points.to_string());
                    let name = format!("stdev({},{points})", s.name);
                    s.derive_renamed(name, values)
                })
                .collect())
        },
    ),
];

/// graphite-web's `movingWindow`: re-evaluates the first argument from `start - window`.
fn moving(
    ctx: &mut Ctx<'_>,
    a: &mut Args,
    func: &str,
    xff_slot: usize,
) -> Result<Vec<Series>, EvalError> {
    let list = a.list(0);
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let agg = AggFunc::parse(func)
        .ok_or_else(|| a.input_err(format!("Unsupported aggregation function: {func}")))?;
    let xff_arg = a.float(xff_slot);
    let window = a.value(1).cloned().unwrap_or(Value::Int(1));
    let (preview, text) = window_preview(a, &window, &list)?;
    let tag_name = format!("moving{}", capitalize(func));
    let Some(raw) = a.raw_first.clone() else {
        return Ok(Vec::new());
    };
    let preview_list = ctx.eval_in_window(&raw, ctx.start - preview, ctx.end, a.func)?;
    let mut out = Vec::with_capacity(preview_list.len());
    for mut s in preview_list {
        let (name, points) = match &window {
            Value::Str(w) => (
                format!("{tag_name}({},\"{w}\")", s.name),
                (preview / s.step.max(1)) as usize,
            ),
            _ => (
                format!("{tag_name}({},{text})", s.name),
                window_int(&window) as usize,
            ),
        };
        s.tag(&tag_name, text.clone());
        let xff = xff_arg.unwrap_or(s.xff);
        let n = s.values.len();
        let mut values = Vec::with_capacity(n.saturating_sub(points));
        let mut window = Vec::with_capacity(points);
        if points == 0 {
            values.resize(n, NULL);
        } else {
            for i in points + 1..=n {
                // graphite-web aggregates only the non-null values of the window (so avg_zero
                // behaves like average here).
                window.clear();
                window.extend(
                    s.values[i - points..i]
                        .iter()
                        .copied()
                        .filter(|v| !v.is_nan()),
                );
                let non_null = window.len();
                values.push(if non_null > 0 && xff_ok(non_null, points as f64, xff) {
                    agg.apply(&window)
                } else {
                    NULL
                });
            }
        }
        let mut m = s.derive_renamed(name, values);
        m.start = s.start + preview;
        out.push(m);
    }
    Ok(out)
}

fn window_int(w: &Value) -> i64 {
    match w {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        _ => 0,
    }
}

/// Seconds of look-back and the window's text (for names and tags).
fn window_preview(a: &Args, window: &Value, list: &[Series]) -> Result<(i64, String), EvalError> {
    match window {
        Value::Str(w) => {
            let d = parse_time_offset(w).map_err(|e| EvalError::Time {
                func: a.func.to_owned(),
                source: e,
            })?;
            Ok((d.abs(), w.clone()))
        }
        other => {
            let n = window_int(other);
            if n < 0 {
                return Err(a.input_err("windowSize must not be negative"));
            }
            let max_step = list.iter().map(|s| s.step).max().unwrap_or(1);
            Ok((max_step * n, n.to_string()))
        }
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f
            .to_uppercase()
            .chain(c.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

fn exponential_moving_average(ctx: &mut Ctx<'_>, a: &mut Args) -> Result<Vec<Series>, EvalError> {
    let list = a.list(0);
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let window = a.value(1).cloned().unwrap_or(Value::Int(1));
    let (preview, text) = window_preview(a, &window, &list)?;
    let constant = match &window {
        Value::Str(_) => 2.0 / (preview as f64 + 1.0),
        other => 2.0 / (window_int(other) as f64 + 1.0),
    };
    let Some(raw) = a.raw_first.clone() else {
        return Ok(Vec::new());
    };
    let preview_list = ctx.eval_in_window(&raw, ctx.start - preview, ctx.end, a.func)?;
    let mut out = Vec::new();
    for mut s in preview_list {
        let (name, points) = match &window {
            Value::Str(w) => (
                format!("exponentialMovingAverage({},\"{w}\")", s.name),
                (preview / s.step.max(1)) as usize,
            ),
            _ => (
                format!("exponentialMovingAverage({},{text})", s.name),
                window_int(&window) as usize,
            ),
        };
        s.tag("exponentialMovingAverage", text.clone());
        let seed_window = &s.values[..points.min(s.values.len())];
        let mut ema = AggFunc::Average.apply(seed_window);
        if ema.is_nan() || ema == 0.0 {
            ema = 0.0;
        }
        let mut values = vec![super::transform::round_to(ema, 6)];
        for &v in s.values.iter().skip(points) {
            if v.is_nan() {
                values.push(NULL);
            } else {
                ema = constant * v + (1.0 - constant) * ema;
                values.push(super::transform::round_to(ema, 6));
            }
        }
        let mut m = s.derive_renamed(name, values);
        m.start = s.start + preview;
        out.push(m);
    }
    Ok(out)
}

fn n_percentile(s: &Series, n: f64) -> Option<Series> {
    let p = super::combine::percentile(&s.values, n, false);
    if p.is_nan() {
        return None;
    }
    let count = if s.step > 0 {
        ((s.end - s.start) / s.step).max(0) as usize
    } else {
        0
    };
    let mut out = s.derive_renamed(format!("nPercentile({}, {})", s.name, g(n)), vec![p; count]);
    out.tag("nPercentile", super::fstr(n));
    Some(out)
}

const HW_PARAMS: &[Param] = &[
    SERIES,
    Param::new("delta", T::Integer).default(Lit::Int(3)),
    Param::new("bootstrapInterval", T::Interval)
        .default(Lit::Str("7d"))
        .suggest(&[Lit::Str("7d"), Lit::Str("30d")]),
    Param::new("seasonality", T::Interval)
        .default(Lit::Str("1d"))
        .suggest(&[Lit::Str("1d"), Lit::Str("7d")]),
];

pub(crate) const HOLT_WINTERS: &[FunctionDef] = &[
    def(
        "holtWintersForecast",
        "Holt-Winters forecast of each series (α = γ = 0.1, β = 0.0035), fitted on data from bootstrapInterval before the request with the given seasonality.",
        &[
            SERIES,
            Param::new("bootstrapInterval", T::Interval)
                .default(Lit::Str("7d"))
                .suggest(&[Lit::Str("7d"), Lit::Str("30d")]),
            Param::new("seasonality", T::Interval)
                .default(Lit::Str("1d"))
                .suggest(&[Lit::Str("1d"), Lit::Str("7d")]),
        ],
        |ctx, a| {
            let bootstrap = interval_arg(a, 1, "7d")?;
            let season = interval_arg(a, 2, "1d")?;
            let mut out = Vec::new();
            for mut s in bootstrap_series(ctx, a, bootstrap)? {
                let fit = HoltWinters::fit(&s.values, season / s.step.max(1));
                add_hw_tags(&mut s);
                let skip = (bootstrap / s.step.max(1)) as usize;
                let mut f = s.derive_renamed(
                    format!("holtWintersForecast({})", s.name),
                    tail(&fit.predictions, skip),
                );
                f.start = s.start + bootstrap;
                out.push(f);
            }
            Ok(out)
        },
    ),
    def(
        "holtWintersConfidenceBands",
        "Upper and lower Holt-Winters confidence bands: the forecast ± delta × the predicted deviation.",
        HW_PARAMS,
        |ctx, a| {
            Ok(confidence_bands(ctx, a)?
                .into_iter()
                .flat_map(|(_, l, u)| [l, u])
                .collect())
        },
    ),
    def(
        "holtWintersAberration",
        "How far each point lies outside its Holt-Winters confidence bands (0 inside them).",
        HW_PARAMS,
        |ctx, a| {
            let originals = a.list(0);
            let bands = confidence_bands(ctx, a)?;
            let mut out = Vec::new();
            for mut s in originals {
                let Some((_, lower, upper)) = bands.iter().find(|(n, _, _)| *n == s.name) else {
                    continue;
                };
                let values = s
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let (lo, hi) = (
                            lower.values.get(i).copied().unwrap_or(NULL),
                            upper.values.get(i).copied().unwrap_or(NULL),
                        );
                        if v.is_nan() {
                            0.0
                        } else if !hi.is_nan() && v > hi {
                            v - hi
                        } else if !lo.is_nan() && v < lo {
                            v - lo
                        } else {
                            0.0
                        }
                    })
                    .collect();
                s.tag("holtWintersAberration", "1");
                let name = format!("holtWintersAberration({})", s.name);
                out.push(s.derive_renamed(name, values));
            }
            Ok(out)
        },
    ),
    def(
        "holtWintersConfidenceArea",
        "The Holt-Winters confidence bands drawn as a filled area (PNG).",
        HW_PARAMS,
        |ctx, a| {
            let mut out = Vec::new();
            for (_, mut lower, mut upper) in confidence_bands(ctx, a)? {
                let name = format!("holtWintersConfidenceArea({})", upper.path_expression);
                upper.tag("holtWintersConfidenceArea", "1");
                lower.tags = upper.tags.clone();
                for (i, s) in [&mut lower, &mut upper].into_iter().enumerate() {
                    s.options.stacked = true;
                    s.options.invisible = i == 0;
                    s.rename(name.clone());
                }
                out.push(lower);
                out.push(upper);
            }
            Ok(out)
        },
    ),
    def(
        "linearRegression",
        "Least-squares line fitted over a source window (the request window by default) and drawn over the request window.",
        &[
            SERIES,
            Param::new("startSourceAt", T::Date),
            Param::new("endSourceAt", T::Date),
        ],
        |ctx, a| {
            let time =
                |v: Option<&Value>, d: i64| -> Result<i64, EvalError> {
                    match v {
                        None | Some(Value::None) => Ok(d),
                        Some(v) => crate::attime::parse_at_time(&v.py_str(), &ctx.tz, ctx.now)
                            .map_err(|e| EvalError::Time {
                                func: "linearRegression".into(),
                                source: e,
                            }),
                    }
                };
            let (src_start, src_end) = (time(a.value(1), ctx.start)?, time(a.value(2), ctx.end)?);
            let targets = a.list(0);
            let Some(raw) = a.raw_first.clone() else {
                return Ok(Vec::new());
            };
            let sources = ctx.eval_in_window(&raw, src_start, src_end, "linearRegression")?;
            let mut out = Vec::new();
            for (source, mut s) in sources.into_iter().zip(targets) {
                s.tag("linearRegressions", format!("{src_start}, {src_end}"));
                let Some((factor, offset)) = regression(&source) else {
                    continue;
                };
                let values = (0..s.values.len())
                    .map(|i| offset + (s.start + i as i64 * s.step) as f64 * factor)
                    .collect();
                let name = format!("linearRegression({}, {src_start}, {src_end})", s.name);
                out.push(s.derive_renamed(name, values));
            }
            Ok(out)
        },
    ),
];

fn interval_arg(a: &Args, slot: usize, default: &str) -> Result<i64, EvalError> {
    let text = a.str(slot).unwrap_or(default);
    parse_time_offset(text).map_err(|e| EvalError::Time {
        func: a.func.to_owned(),
        source: e,
    })
}

fn tail(v: &[f64], skip: usize) -> Vec<f64> {
    v.get(skip..).map(<[f64]>::to_vec).unwrap_or_default()
}

/// The first argument re-evaluated from `bootstrap` seconds before the request.
fn bootstrap_series(ctx: &mut Ctx<'_>, a: &Args, bootstrap: i64) -> Result<Vec<Series>, EvalError> {
    let Some(raw) = a.raw_first.clone() else {
        return Ok(Vec::new());
    };
    ctx.eval_in_window(&raw, ctx.start - bootstrap, ctx.end, a.func)
}

/// graphite-web's analysis shares one tag dict between the input and every output series.
fn add_hw_tags(s: &mut Series) {
    s.tag("holtWintersForecast", "1");
    s.tag("holtWintersDeviation", "1");
}

/// `(input name, lower, upper)` per series.
fn confidence_bands(
    ctx: &mut Ctx<'_>,
    a: &mut Args,
) -> Result<Vec<(String, Series, Series)>, EvalError> {
    let delta = a.int(1).unwrap_or(3) as f64;
    let bootstrap = interval_arg(a, 2, "7d")?;
    let season = interval_arg(a, 3, "1d")?;
    let mut out = Vec::new();
    for mut s in bootstrap_series(ctx, a, bootstrap)? {
        let fit = HoltWinters::fit(&s.values, season / s.step.max(1));
        let skip = (bootstrap / s.step.max(1)) as usize;
        let (forecast, deviation) = (tail(&fit.predictions, skip), tail(&fit.deviations, skip));
        let band = |sign: f64| -> Vec<f64> {
            forecast
                .iter()
                .zip(&deviation)
                .map(|(&f, &d)| {
                    if f.is_nan() || d.is_nan() {
                        NULL
                    } else {
                        f + sign * delta * d
                    }
                })
                .collect()
        };
        add_hw_tags(&mut s);
        s.tag("holtWintersConfidenceUpper", "1");
        s.tag("holtWintersConfidenceLower", "1");
        let mk = |prefix: &str, values: Vec<f64>| {
            let mut b = s.derive(format!("{prefix}({})", s.name), values);
            b.start = s.start + bootstrap;
            b
        };
        let (lower, upper) = (
            mk("holtWintersConfidenceLower", band(-1.0)),
            mk("holtWintersConfidenceUpper", band(1.0)),
        );
        out.push((s.name.clone(), lower, upper));
    }
    Ok(out)
}

/// Holt-Winters triple exponential smoothing as graphite-web computes it.
struct HoltWinters {
    predictions: Vec<f64>,
    deviations: Vec<f64>,
}

impl HoltWinters {
    fn fit(series: &[f64], season_length: i64) -> HoltWinters {
        const ALPHA: f64 = 0.1;
        const GAMMA: f64 = 0.1;
        const BETA: f64 = 0.0035;
        let n = series.len();
        let (mut intercepts, mut slopes, mut seasonals) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut predictions, mut deviations) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let back = |v: &[f64], i: usize| -> f64 {
            usize::try_from(i as i64 - season_length)
                .ok()
                .and_then(|j| v.get(j))
                .copied()
                .unwrap_or(0.0)
        };
        let mut next_pred = NULL;
        for (i, &actual) in series.iter().enumerate() {
            if actual.is_nan() {
                intercepts.push(NULL);
                slopes.push(0.0);
                seasonals.push(0.0);
                predictions.push(next_pred);
                deviations.push(0.0);
                next_pred = NULL;
                continue;
            }
            let (last_intercept, last_slope, prediction) = if i == 0 {
                (actual, 0.0, actual)
            } else {
                let li: f64 = intercepts.last().copied().unwrap_or(NULL);
                (
                    if li.is_nan() { actual } else { li },
                    slopes.last().copied().unwrap_or(0.0),
                    next_pred,
                )
            };
            let last_seasonal = back(&seasonals, i);
            let next_last_seasonal = back(&seasonals, i + 1);
            let last_seasonal_dev = back(&deviations, i);
            let intercept =
                ALPHA * (actual - last_seasonal) + (1.0 - ALPHA) * (last_intercept + last_slope);
            let slope = BETA * (intercept - last_intercept) + (1.0 - BETA) * last_slope;
            let seasonal = GAMMA * (actual - intercept) + (1.0 - GAMMA) * last_seasonal;
            next_pred = intercept + slope + next_last_seasonal;
            let p = if prediction.is_nan() { 0.0 } else { prediction };
            let deviation = GAMMA * (actual - p).abs() + (1.0 - GAMMA) * last_seasonal_dev;
            intercepts.push(intercept);
            slopes.push(slope);
            seasonals.push(seasonal);
            predictions.push(prediction);
            deviations.push(deviation);
        }
        HoltWinters {
            predictions,
            deviations,
        }
    }
}

/// graphite-web's `_linearRegressionAnalysis`: (factor per second, offset) or None.
fn regression(s: &Series) -> Option<(f64, f64)> {
    let (mut n, mut si, mut sv, mut sii, mut siv) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, &v) in s.values.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        let i = i as f64;
        n += 1.0;
        si += i;
        sv += v;
        sii += i * i;
        siv += i * v;
    }
    let denominator = n * sii - si * si;
    if denominator == 0.0 {
        return None;
    }
    let factor = (n * siv - si * sv) / denominator / s.step as f64;
    let offset = (sii * sv - siv * si) / denominator - factor * s.start as f64;
    Some((factor, offset))
}
