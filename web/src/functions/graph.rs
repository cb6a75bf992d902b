//! Graph: styling functions for PNG output (colour, width, stacking, axes). Data is unchanged
//! except where graphite-web also changes it (stacked) or renames the series.

use super::{FunctionDef, Lit, Param, SERIES, T, g};
use crate::attime;
use crate::error::EvalError;
use crate::series::Series;

group_constructor!(def, "Graph");

pub(crate) const DEFS: &[FunctionDef] = &[
    def(
        "color",
        "Draws the series in this colour (a name or RRGGBB[AA] hex).",
        &[SERIES, Param::new("theColor", T::String).req()],
        |_, a| {
            let c = a.str(1).unwrap_or("").to_owned();
            let mut l = a.list(0);
            l.iter_mut().for_each(|s| s.options.color = Some(c.clone()));
            Ok(l)
        },
    ),
    def(
        "alpha",
        "Draws the series with this opacity (0–1).",
        &[SERIES, Param::new("alpha", T::Float).req()],
        |_, a| {
            let x = a.float(1);
            let mut l = a.list(0);
            l.iter_mut().for_each(|s| s.options.alpha = x);
            Ok(l)
        },
    ),
    def(
        "lineWidth",
        "Draws the series with this line width in pixels.",
        &[SERIES, Param::new("width", T::Float).req()],
        |_, a| {
            let w = a.float(1);
            let mut l = a.list(0);
            l.iter_mut().for_each(|s| s.options.line_width = w);
            Ok(l)
        },
    ),
    def(
        "dashed",
        "Draws the series as a dashed line.",
        &[
            SERIES,
            Param::new("dashLength", T::Integer).default(Lit::Int(5)),
        ],
        |_, a| {
            let d = a.float(1).unwrap_or(5.0);
            let mut l = a.list(0);
            for s in &mut l {
                s.tag(
                    "dashed",
                    if a.has(1) {
                        (d as i64).to_string()
                    } else {
                        "5".into()
                    },
                );
                s.name = format!("dashed({}, {})", s.name, g(d));
                s.options.dashed = Some(d);
            }
            Ok(l)
        },
    ),
    def(
        "secondYAxis",
        "Plots the series against a second Y axis on the right.",
        &[SERIES],
        |_, a| {
            let mut l = a.list(0);
            for s in &mut l {
                s.options.second_y_axis = true;
                s.tag("secondYAxis", "1");
                s.name = format!("secondYAxis({})", s.name);
            }
            Ok(l)
        },
    ),
    def(
        "drawAsInfinite",
        "Draws every non-zero point as a vertical line across the whole graph.",
        &[SERIES],
        |_, a| {
            let mut l = a.list(0);
            for s in &mut l {
                s.options.draw_as_infinite = true;
                s.tag("drawAsInfinite", "1");
                s.name = format!("drawAsInfinite({})", s.name);
            }
            Ok(l)
        },
    ),
    def(
        "stacked",
        "Stacks the series on top of each other: each value becomes the running total of the stack at that position (stacks persist across the targets of a request).",
        &[SERIES, Param::new("stack", T::String)],
        |ctx, a| {
            let stack = a.str(1).unwrap_or("__DEFAULT__").to_owned();
            let mut totals = ctx.stacks.remove(&stack).unwrap_or_default();
            let l = a.list(0);
            let out = l
                .into_iter()
                .map(|mut s| {
                    if totals.len() < s.values.len() {
                        totals.resize(s.values.len(), 0.0);
                    }
                    let values = s
                        .values
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| {
                            if v.is_nan() {
                                v
                            } else {
                                totals[i] += v;
                                totals[i]
                            }
                        })
                        .collect();
                    let name = if stack == "__DEFAULT__" {
                        s.tag("stacked", stack.clone());
                        format!("stacked({})", s.name)
                    } else {
                        s.name.clone()
                    };
                    let mut n = s.derive_renamed(name, values);
                    n.options.stacked = true;
                    n.options.stack = Some(stack.clone());
                    n
                })
                .collect();
            ctx.stacks.insert(stack, totals);
            Ok(out)
        },
    ),
    def(
        "areaBetween",
        "Fills the area between exactly two series (the lower one is drawn invisibly).",
        &[SERIES],
        |_, a| {
            let mut l = a.list(0);
            if l.len() != 2 {
                return Err(a.input_err(format!(
                    "areaBetween series argument must reference *exactly* 2 series (got {})",
                    l.len()
                )));
            }
            let name = format!("areaBetween({})", l[1].path_expression);
            l[1].tag("areaBetween", "1");
            let tags = l[1].tags.clone();
            l[0].tags = tags;
            for (i, s) in l.iter_mut().enumerate() {
                s.options.stacked = true;
                s.options.invisible = i == 0;
                s.name.clone_from(&name);
            }
            Ok(l)
        },
    ),
    def(
        "threshold",
        "A horizontal line at the value across the graph, optionally labelled and coloured.",
        &[
            Param::new("value", T::Float).req(),
            Param::new("label", T::String),
            Param::new("color", T::String),
        ],
        |ctx, a| {
            let mut s = super::special::constant_line(ctx, a.float(0).unwrap_or(0.0));
            if let Some(label) = a.str(1).filter(|l| !l.is_empty()) {
                s.name = label.to_owned();
            }
            s.options.color = a.str(2).map(str::to_owned);
            Ok(vec![s])
        },
    ),
    def(
        "verticalLine",
        "A vertical line at a point in time inside the requested range, optionally labelled and coloured.",
        &[
            Param::new("ts", T::Date).req(),
            Param::new("label", T::String),
            Param::new("color", T::String),
        ],
        |ctx, a| {
            let text = a
                .value(0)
                .map(crate::eval::Value::py_str)
                .unwrap_or_default();
            let ts =
                attime::parse_at_time(&text, &ctx.tz, ctx.now).map_err(|e| EvalError::Time {
                    func: "verticalLine".into(),
                    source: e,
                })?;
            if ts < ctx.start {
                return Err(a.input_err(format!("timestamp {ts} exists before start of range")));
            }
            if ts > ctx.end {
                return Err(a.input_err(format!("timestamp {ts} exists after end of range")));
            }
            let mut s = Series::new(a.str(1).unwrap_or(""), ts, ts, 1, vec![1.0, 1.0]);
            s.options.draw_as_infinite = true;
            s.options.color = a.str(2).map(str::to_owned);
            s.xff = ctx.xff;
            Ok(vec![s])
        },
    ),
];
