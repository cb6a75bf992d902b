//! The line graph: graphite-web 1.1.10's `LineGraph` drawing order and geometry (title,
//! vertical titles, legend, axis space, pixel consolidation, Y axes that may widen the margin
//! and so force a re-consolidation, time axis, labels, grid, then series), painted on any
//! [`Painter`].
//!
//! Charcoal decisions (spec §19 allows a look "like" graphite-web's): legend entries that
//! would run past the image edge are shortened with "…"; X labels use the zone's real offset
//! at each tick (graphite-web keeps the offset of the first tick across DST changes); a
//! stacked area whose path has several pieces (connected mode with `connectedLimit`) fills
//! each piece down to the baseline.

use jiff::tz::TimeZone;
use plotters_backend::FontTransform;

use super::GraphError;
use super::axis::{AxisSettings, XAxisConfig, YAxis, format_time, x_axis_config, x_times};
use super::options::{AreaMode, GraphOptions, LineMode, Rgba};
use super::paint::{NO_SPAN, Painter, Rect, Span, TextRun};
use super::text::Fonts;
use crate::series::{Series, consolidate_values};

/// glyph.py draws "No Data" in its `red`.
const NO_DATA_COLOR: Rgba = Rgba::rgb(200, 0, 50);
/// Legend box outlines (`darkgrey`).
const LEGEND_BORDER: Rgba = Rgba::rgb(111, 111, 111);
/// More series than this hide the legend unless `hideLegend=false` (LEGEND_MAX_ITEMS).
const LEGEND_MAX_ITEMS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Align {
    Left,
    Center,
    Right,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VAlign {
    Top,
    Middle,
    Baseline,
}

/// One series as drawn: its raw values (stacked in place by `areaMode=stacked`), the values
/// consolidated to the pixel grid, and its resolved style.
#[derive(Debug, Clone)]
struct Plot {
    name: String,
    start: i64,
    step: i64,
    raw: Vec<f64>,
    vpp: usize,
    values: Vec<f64>,
    x_step: f64,
    color: Rgba,
    right: bool,
    stacked: bool,
    alpha: Option<f64>,
    line_width: Option<f64>,
    dashed: Option<f64>,
    invisible: bool,
    infinite: bool,
    consolidation: crate::series::Consolidation,
    xff: f64,
}

impl Plot {
    fn consolidate(&mut self, vpp: usize) {
        self.vpp = vpp.max(1);
        self.values = if self.vpp > 1 {
            consolidate_values(&self.raw, self.vpp, self.consolidation, self.xff)
        } else {
            self.raw.clone()
        };
    }
}

/// The plotting area, shrunk step by step as titles, legend and labels take space.
#[derive(Debug, Clone, Copy)]
pub(super) struct Area {
    pub(super) xmin: f64,
    pub(super) xmax: f64,
    pub(super) ymin: f64,
    pub(super) ymax: f64,
}

/// A Y axis with its labels, as placed.
#[derive(Debug, Clone)]
struct AxisState {
    axis: YAxis,
    labels: Vec<f64>,
    texts: Vec<String>,
    label_width: f64,
}

pub(super) struct Graph<'a, P: Painter> {
    pub(super) p: &'a mut P,
    pub(super) fonts: &'static Fonts,
    pub(super) o: &'a GraphOptions,
    pub(super) width: f64,
    pub(super) height: f64,
    pub(super) margin: f64,
    pub(super) area: Area,
    pub(super) font_size: f64,
    /// Leftmost and rightmost x the Y labels may use: the margins, or beside a vertical
    /// title (glyph.py lets wide labels run over the title; Charcoal keeps them apart).
    label_left: f64,
    label_right: f64,
    tz: &'a TimeZone,
}

/// The time axis as placed.
struct XAxis {
    start: i64,
    end: i64,
    /// Pixels per second.
    scale: f64,
    conf: XAxisConfig,
}

/// Draws `series` as graphite-web would for options `o`, labels in `tz`.
pub(crate) fn draw<P: Painter>(
    p: &mut P,
    fonts: &'static Fonts,
    series: Vec<Series>,
    o: &GraphOptions,
    tz: &TimeZone,
) -> Result<(), GraphError> {
    let mut g = Graph::new(p, fonts, o, tz);
    let start = series.iter().map(|s| s.start).min();
    let end = series.iter().map(|s| s.end).max();
    match (start, end) {
        (Some(s), Some(e)) if e != s => g.line_graph(series),
        _ => {
            g.no_data();
            Ok(())
        }
    }
}

impl<'a, P: Painter> Graph<'a, P> {
    /// A graph over the whole image, background painted (glyph.py's `Graph.__init__`).
    pub(super) fn new(
        p: &'a mut P,
        fonts: &'static Fonts,
        o: &'a GraphOptions,
        tz: &'a TimeZone,
    ) -> Self {
        let (width, height) = (f64::from(o.width), f64::from(o.height));
        p.fill_rect(
            Rect {
                x0: 0.0,
                y0: 0.0,
                x1: width,
                y1: height,
            },
            o.background,
        );
        Graph {
            p,
            fonts,
            o,
            width,
            height,
            margin: o.margin,
            area: Area {
                xmin: o.margin + 10.0,
                xmax: width - o.margin,
                ymin: o.margin,
                ymax: height - o.margin,
            },
            font_size: o.font_size,
            label_left: o.margin,
            label_right: width,
            tz,
        }
    }
}

impl<P: Painter> Graph<'_, P> {
    pub(super) fn no_data(&mut self) {
        let size = (self.width * self.height).ln().max(1.0);
        self.text(
            "No Data",
            self.width / 2.0,
            self.height / 2.0,
            size,
            NO_DATA_COLOR,
            Align::Center,
            VAlign::Top,
            FontTransform::None,
        );
    }

    /// glyph.py's `drawText`: (x, y) is the anchor named by `align`/`valign`, in a frame
    /// rotated by `rotate`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn text(
        &mut self,
        text: &str,
        x: f64,
        y: f64,
        size: f64,
        color: Rgba,
        align: Align,
        valign: VAlign,
        rotate: FontTransform,
    ) {
        let bold = self.o.font_bold;
        let e = self.fonts.extents(size, bold);
        let w = self.fonts.width(text, size, bold);
        let h = match align {
            Align::Left => 0.0,
            Align::Center => w / 2.0,
            Align::Right => w,
        };
        let v = match valign {
            VAlign::Top => e.ascent,
            VAlign::Middle => e.height() / 2.0 - e.descent,
            VAlign::Baseline => 0.0,
        };
        let (sin, cos, corner) = match rotate {
            FontTransform::Rotate90 => (1.0, 0.0, (-e.ascent, 0.0)),
            FontTransform::Rotate180 => (0.0, -1.0, (0.0, -e.ascent)),
            FontTransform::Rotate270 => (-1.0, 0.0, (e.ascent, 0.0)),
            FontTransform::None => (0.0, 1.0, (0.0, e.ascent)),
        };
        // Baseline origin, then the top-left corner of the box in the rotated frame.
        let bx = x - v * sin - h * cos;
        let by = y + v * cos - h * sin;
        self.p.text(&TextRun {
            text,
            x: bx - corner.0,
            y: by - corner.1,
            size,
            bold,
            color,
            rotate,
        });
    }

    fn line(&mut self, from: (f64, f64), to: (f64, f64), width: f64, color: Rgba) {
        let full = Rect {
            x0: 0.0,
            y0: 0.0,
            x1: self.width,
            y1: self.height,
        };
        self.p.stroke(&[from, to], width, color, full);
    }

    fn line_graph(&mut self, series: Vec<Series>) -> Result<(), GraphError> {
        let o = self.o;
        let second = series.iter().any(|s| s.options.second_y_axis);
        let mut hide_legend = o.hide_legend.unwrap_or(series.len() > LEGEND_MAX_ITEMS);
        let (mut hide_grid, mut hide_axes) = (o.hide_grid, o.hide_axes);
        let (mut hide_x_axis, mut hide_y_axis) = (o.hide_x_axis, o.hide_y_axis);
        let (mut title, mut vtitle) = (o.title.clone(), o.vtitle.clone());
        let mut y_axis_right = o.y_axis_right && !second;
        if o.graph_only {
            hide_legend = true;
            hide_grid = true;
            hide_axes = true;
            hide_x_axis = false;
            hide_y_axis = false;
            y_axis_right = false;
            title = None;
            vtitle = None;
            self.margin = 0.0;
            self.area = Area {
                xmin: 0.0,
                xmax: self.width,
                ymin: 0.0,
                ymax: self.height,
            };
        }
        let mut line_mode = o.line_mode;
        if line_mode == LineMode::Slope && series.iter().any(|s| s.values.len() == 1) {
            line_mode = LineMode::Staircase;
        }

        let mut plots = self.plots(series, second)?;

        // Titles, in the title font.
        let title_size = self.font_size + self.font_size.ln().floor();
        let fg = o.foreground;
        if let Some(t) = &title {
            let line_height = self.fonts.extents(title_size, o.font_bold).height();
            let mut y = self.area.ymin;
            for l in t.split('\n') {
                self.text(
                    l,
                    self.width / 2.0,
                    y,
                    title_size,
                    fg,
                    Align::Center,
                    VAlign::Top,
                    FontTransform::None,
                );
                y += line_height;
            }
            self.area.ymin = if y_axis_right { y } else { y + self.margin };
        }
        if let Some(t) = &vtitle {
            let line_height = self.fonts.extents(title_size, o.font_bold).height();
            let mut x = self.area.xmin + line_height;
            for l in t.split('\n') {
                self.text(
                    l,
                    x,
                    self.height / 2.0,
                    title_size,
                    fg,
                    Align::Center,
                    VAlign::Baseline,
                    FontTransform::Rotate270,
                );
                x += line_height;
            }
            let descent = self.fonts.extents(title_size, o.font_bold).descent;
            self.label_left = x - line_height + descent + 4.0;
            self.area.xmin = x + self.margin + line_height;
        }
        if second && let Some(t) = &o.vtitle_right {
            let line_height = self.fonts.extents(title_size, o.font_bold).height();
            let mut x = self.area.xmax - line_height;
            for l in t.split('\n') {
                self.text(
                    l,
                    x,
                    self.height / 2.0,
                    title_size,
                    fg,
                    Align::Center,
                    VAlign::Baseline,
                    FontTransform::Rotate90,
                );
                x -= line_height;
            }
            let descent = self.fonts.extents(title_size, o.font_bold).descent;
            self.label_right = x + line_height - descent - 4.0;
            self.area.xmax = x - self.margin - line_height;
        }

        if !hide_legend {
            let mut elements: Vec<(String, Rgba, bool)> = plots
                .iter()
                .filter(|p| !p.name.is_empty())
                .filter(|p| !(o.hide_null_from_legend && p.raw.iter().all(|v| v.is_nan())))
                .map(|p| (crate::http::unquote_plus(&p.name), p.color, p.right))
                .collect();
            if o.unique_legend {
                let mut seen = std::collections::HashSet::new();
                elements.retain(|(n, _, _)| seen.insert(n.clone()));
            }
            if !elements.is_empty() {
                self.legend(&elements, second);
            }
        }

        let extents = self.fonts.extents(self.font_size, o.font_bold);
        if !hide_axes && !hide_x_axis {
            self.area.ymax -= extents.ascent * 2.0;
        }

        let start = plots.iter().map(|p| p.start).min().unwrap_or(0);
        let end = if line_mode == LineMode::Staircase {
            plots
                .iter()
                .map(|p| p.start + p.raw.len() as i64 * p.step)
                .max()
        } else {
            plots
                .iter()
                .map(|p| p.start + (p.raw.len() as i64 - 1) * p.step)
                .max()
        }
        .unwrap_or(start);
        let time_range = end - start;
        if time_range <= 0 {
            self.no_data();
            return Ok(());
        }

        let stacked_limits = o.area_mode == AreaMode::Stacked;
        // Labels may widen the margin, which changes the consolidation, which may change the
        // Y range and so the labels: repeat until the plot area settles (glyph.py does too).
        let mut rounds = 0;
        let (graph_width, left, right) = loop {
            let (xmin, xmax) = (self.area.xmin, self.area.xmax);
            let graph_width = self.consolidate(&mut plots, time_range);
            let (left, right) = self.setup_y_axes(
                &plots,
                second,
                hide_axes,
                hide_y_axis,
                y_axis_right,
                stacked_limits,
            )?;
            rounds += 1;
            if (xmin == self.area.xmin && xmax == self.area.xmax) || rounds > 10 {
                break (graph_width, left, right);
            }
        };
        if graph_width <= 0.0 || self.area.ymax <= self.area.ymin {
            // Everything went to titles and legend; graphite-web would fail here.
            return Ok(());
        }

        let seconds_per_pixel = time_range as f64 / graph_width;
        let x_scale = graph_width / time_range as f64;
        let x_conf = x_axis_config(seconds_per_pixel, time_range);
        let x = XAxis {
            start,
            end,
            scale: x_scale,
            conf: x_conf,
        };
        if !hide_axes {
            self.labels(
                &left,
                right.as_ref(),
                &x,
                hide_x_axis,
                hide_y_axis,
                y_axis_right,
            );
            if !hide_grid {
                self.grid(&left, &x);
            }
        }
        self.lines(plots, &left, right.as_ref(), start, line_mode, second);
        Ok(())
    }
}

/// Draws a path piece by piece: `move_to` starts a subpath, `line_to` extends the current
/// one (or starts one, like cairo without a current point).
#[derive(Debug, Default)]
struct Path {
    pieces: Vec<Vec<(f64, f64)>>,
}

impl Path {
    fn move_to(&mut self, p: (f64, f64)) {
        self.pieces.push(vec![p]);
    }

    fn line_to(&mut self, p: (f64, f64)) {
        match self.pieces.last_mut() {
            Some(last) => last.push(p),
            None => self.pieces.push(vec![p]),
        }
    }

    fn take(&mut self) -> Vec<Vec<(f64, f64)>> {
        std::mem::take(&mut self.pieces)
    }
}

/// Splits a polyline into dashes `on` long with gaps as long (cairo `set_dash([on], offset)`).
fn dashes(points: &[(f64, f64)], on: f64, offset: f64) -> Vec<Vec<(f64, f64)>> {
    let on = on.max(0.5);
    let period = 2.0 * on;
    let phase = offset.rem_euclid(period);
    let mut drawing = phase < on;
    let mut remaining = if drawing { on - phase } else { period - phase };
    let mut out = Vec::new();
    let mut current = Vec::new();
    let Some(&first) = points.first() else {
        return out;
    };
    if drawing {
        current.push(first);
    }
    for seg in points.windows(2) {
        let (mut pos, b) = (seg[0], seg[1]);
        let mut len = ((b.0 - pos.0).powi(2) + (b.1 - pos.1).powi(2)).sqrt();
        while len > 0.0 {
            if remaining >= len {
                if drawing {
                    current.push(b);
                }
                remaining -= len;
                break;
            }
            let t = remaining / len;
            let q = (pos.0 + (b.0 - pos.0) * t, pos.1 + (b.1 - pos.1) * t);
            if drawing {
                current.push(q);
                out.push(std::mem::take(&mut current));
            } else {
                current = vec![q];
            }
            drawing = !drawing;
            len -= remaining;
            pos = q;
            remaining = on;
        }
    }
    if drawing && current.len() >= 2 {
        out.push(current);
    }
    out
}

/// Removes repeated points; cairo draws nothing for a zero-length segment with butt caps.
fn dedup(points: &mut Vec<(f64, f64)>) {
    points.dedup_by(|a, b| (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9);
}

/// `interval` minus the intervals of `excluded`; the two largest pieces are kept.
fn subtract(interval: (f64, f64), excluded: &Span) -> Span {
    let mut pieces: Vec<(f64, f64)> = vec![interval];
    for &(a, b) in excluded.iter().filter(|s| !s.0.is_nan()) {
        let mut next = Vec::with_capacity(pieces.len() + 1);
        for (t, u) in pieces {
            if b <= t || a >= u {
                next.push((t, u));
            } else {
                if a > t {
                    next.push((t, a));
                }
                if b < u {
                    next.push((b, u));
                }
            }
        }
        pieces = next;
    }
    pieces.sort_by(|x, y| (y.1 - y.0).total_cmp(&(x.1 - x.0)));
    let mut out = NO_SPAN;
    for (slot, piece) in out.iter_mut().zip(pieces) {
        *slot = piece;
    }
    out
}

/// Adds `interval` to a column's union of filled intervals (kept to two; the closest pair
/// merges when a third appears).
fn add(excluded: &mut Span, interval: (f64, f64)) {
    let mut all: Vec<(f64, f64)> = excluded
        .iter()
        .copied()
        .filter(|s| !s.0.is_nan())
        .chain(std::iter::once(interval))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(3);
    for (a, b) in all {
        match merged.last_mut() {
            Some(last) if a <= last.1 + 1e-9 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    while merged.len() > 2 {
        let i = (0..merged.len() - 1)
            .min_by(|&i, &j| {
                (merged[i + 1].0 - merged[i].1).total_cmp(&(merged[j + 1].0 - merged[j].1))
            })
            .unwrap_or(0);
        merged[i].1 = merged[i + 1].1;
        merged.remove(i + 1);
    }
    *excluded = NO_SPAN;
    for (slot, piece) in excluded.iter_mut().zip(merged) {
        *slot = piece;
    }
}

/// The Y range of the data (glyph.py's `dataLimits`): consolidated values, or per-index sums
/// of the raw values when stacking.
fn data_limits<'p>(
    plots: impl Iterator<Item = &'p Plot>,
    null_as_zero: bool,
    stacked: bool,
) -> (f64, f64) {
    let plots: Vec<&Plot> = plots.collect();
    let missing = plots.iter().any(|p| p.raw.iter().any(|v| v.is_nan()));
    let finite: Vec<&&Plot> = plots.iter().filter(|p| !p.infinite).collect();
    let values = || {
        finite
            .iter()
            .flat_map(|p| p.values.iter().copied())
            .filter(|v| v.is_finite())
    };
    let Some(mut min) = values().reduce(f64::min) else {
        return (0.0, 1.0);
    };
    if min > 0.0 && null_as_zero && missing {
        min = 0.0;
    }
    let max = if stacked {
        let len = finite.iter().map(|p| p.raw.len()).min().unwrap_or(0);
        (0..len)
            .map(|i| {
                finite
                    .iter()
                    .map(|p| p.raw[i])
                    .filter(|v| v.is_finite())
                    .sum::<f64>()
            })
            .reduce(f64::max)
    } else {
        values().reduce(f64::max)
    };
    let mut max = max.unwrap_or(min);
    if max < 0.0 && null_as_zero && missing {
        max = 0.0;
    }
    (min, max)
}

/// `text` shortened with "…" to fit `room` pixels.
fn fit(fonts: &Fonts, text: &str, size: f64, bold: bool, room: f64) -> String {
    if fonts.width(text, size, bold) <= room {
        return text.to_owned();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let candidate: String = chars.iter().chain(std::iter::once(&'…')).collect();
        if fonts.width(&candidate, size, bold) <= room {
            return candidate;
        }
    }
    String::new()
}

impl<P: Painter> Graph<'_, P> {
    /// Resolves colours and styles; the palette is consumed only by series without a colour.
    fn plots(&self, series: Vec<Series>, second: bool) -> Result<Vec<Plot>, GraphError> {
        let o = self.o;
        let mut palette = o.colors.iter().cycle();
        let mut out = Vec::with_capacity(series.len());
        for s in series {
            let right = s.options.second_y_axis;
            let mut line_width = s.options.line_width;
            let mut dashed = s.options.dashed;
            let mut color_name = s.options.color.clone();
            if second {
                let (w, d, c) = if right {
                    (o.right_width, o.right_dashed, &o.right_color)
                } else {
                    (o.left_width, o.left_dashed, &o.left_color)
                };
                line_width = w.or(line_width);
                dashed = d.or(dashed);
                if let Some(c) = c {
                    color_name = Some(c.clone());
                }
            }
            let color = match color_name {
                Some(c) => Rgba::parse(&c).ok_or(GraphError::Color { value: c })?,
                None => palette
                    .next()
                    .and_then(|c| Rgba::parse(c))
                    .unwrap_or(Rgba::rgb(0, 0, 0)),
            };
            // Infinite values cannot be placed; they are drawn as gaps.
            let raw: Vec<f64> = s
                .values
                .iter()
                .map(|v| if v.is_finite() { *v } else { f64::NAN })
                .collect();
            out.push(Plot {
                name: s.name,
                start: s.start,
                step: s.step.max(1),
                values: raw.clone(),
                raw,
                vpp: 1,
                x_step: 1.0,
                color,
                right,
                stacked: s.options.stacked,
                alpha: s.options.alpha,
                line_width,
                dashed: dashed.filter(|d| *d > 0.0),
                invisible: s.options.invisible,
                infinite: s.options.draw_as_infinite,
                consolidation: s.consolidation,
                xff: s.xff,
            });
        }
        Ok(out)
    }

    /// glyph.py's `drawLegend`: coloured boxes and names in columns under the plot.
    pub(super) fn legend(&mut self, elements: &[(String, Rgba, bool)], second: bool) {
        let (size, bold) = (self.font_size, self.o.font_bold);
        let fg = self.o.foreground;
        let padding = 5.0;
        let e = self.fonts.extents(size, bold);
        let longest = elements
            .iter()
            .map(|(n, _, _)| n.as_str())
            .max_by_key(|n| n.chars().count())
            .unwrap_or("");
        let box_size = e.height() - 1.0;
        let line_height = e.height() + 1.0;
        let label_width = self.fonts.width(longest, size, bold) + 2.0 * (box_size + padding);
        let two_columns_fit = self
            .fonts
            .width(&format!("{longest} {longest}"), size, bold)
            + 2.0 * (box_size + padding)
            + 50.0
            < self.width;
        let draw_entry = |g: &mut Self, name: &str, color: Rgba, x: f64, y: f64, right: bool| {
            // Whole pixels keep the small boxes crisp.
            let (x, y) = (x.round(), y.round());
            let (bx, tx, align, room) = if right {
                (
                    x - box_size,
                    x - box_size - padding,
                    Align::Right,
                    x - box_size - padding,
                )
            } else {
                (
                    x,
                    x + box_size + padding,
                    Align::Left,
                    g.width - (x + box_size + padding),
                )
            };
            g.p.fill_rect(
                Rect {
                    x0: bx,
                    y0: y,
                    x1: bx + box_size,
                    y1: y + box_size,
                },
                color,
            );
            let full = Rect {
                x0: 0.0,
                y0: 0.0,
                x1: g.width,
                y1: g.height,
            };
            g.p.stroke(
                &[
                    (bx + 0.5, y + 0.5),
                    (bx + box_size, y + 0.5),
                    (bx + box_size, y + box_size),
                    (bx + 0.5, y + box_size),
                    (bx + 0.5, y + 0.5),
                ],
                1.0,
                LEGEND_BORDER,
                full,
            );
            let text = fit(g.fonts, name, size, bold, room.max(0.0));
            g.text(
                &text,
                tx,
                y,
                size,
                fg,
                align,
                VAlign::Top,
                FontTransform::None,
            );
        };
        if second && two_columns_fit {
            let columns = ((self.width - self.area.xmin) / label_width)
                .floor()
                .max(1.0);
            let columns = (columns / 2.0).floor().max(1.0) as usize;
            let right_count = elements.iter().filter(|e| e.2).count();
            let lines = (elements.len() - right_count)
                .max(right_count)
                .div_ceil(columns);
            self.area.ymax -= lines.max(1) as f64 * line_height + padding;
            let (mut x, mut y) = (self.area.xmin, self.area.ymax + 2.0 * padding);
            let (mut xr, mut yr) = (self.area.xmax, y);
            let (mut n, mut nr) = (0, 0);
            for (name, color, right) in elements {
                if *right {
                    draw_entry(self, name, *color, xr, yr, true);
                    nr += 1;
                    xr -= label_width;
                    if nr % columns == 0 {
                        xr = self.area.xmax;
                        yr += line_height;
                    }
                } else {
                    draw_entry(self, name, *color, x, y, false);
                    n += 1;
                    x += label_width;
                    if n % columns == 0 {
                        x = self.area.xmin;
                        y += line_height;
                    }
                }
            }
            return;
        }
        let columns = ((self.width / label_width).floor() as usize).max(1);
        let lines = elements.len().div_ceil(columns);
        self.area.ymax -= lines as f64 * line_height + padding;
        let (mut x, mut y) = (self.area.xmin, self.area.ymax + 2.0 * padding);
        for (i, (name, color, right)) in elements.iter().enumerate() {
            if *right {
                draw_entry(self, name, *color, x + label_width + padding, y, true);
            } else {
                draw_entry(self, name, *color, x, y, false);
            }
            x += label_width;
            if (i + 1) % columns == 0 {
                x = self.area.xmin;
                y += line_height;
            }
        }
    }

    /// Consolidates every series to at most one point per `minXStep` pixels; returns the
    /// drawable width.
    fn consolidate(&self, plots: &mut [Plot], time_range: i64) -> f64 {
        let pixels = self.area.xmax - self.area.xmin - (self.o.line_width + 1.0);
        for p in plots.iter_mut() {
            let points = time_range as f64 / p.step as f64;
            let best = pixels / points;
            if best < self.o.min_x_step && pixels > 0.0 {
                let drawable = ((pixels / self.o.min_x_step) as i64).max(1);
                let ppp = ((points / drawable as f64).ceil() as usize).max(1);
                if ppp != p.vpp {
                    p.consolidate(ppp);
                }
                p.x_step = pixels * ppp as f64 / points;
            } else {
                p.x_step = best;
            }
        }
        pixels
    }

    fn axis_state(&self, mut axis: YAxis) -> Result<AxisState, GraphError> {
        let labels = axis.label_values()?;
        let texts: Vec<String> = labels.iter().map(|v| axis.label(*v)).collect();
        let label_width = texts
            .iter()
            .map(|t| self.fonts.width(t, self.font_size, self.o.font_bold))
            .fold(0.0, f64::max);
        Ok(AxisState {
            axis,
            labels,
            texts,
            label_width,
        })
    }

    /// Chooses the Y axis (or both) and widens the margins to fit the labels.
    fn setup_y_axes(
        &mut self,
        plots: &[Plot],
        second: bool,
        hide_axes: bool,
        hide_y_axis: bool,
        right_side: bool,
        stacked: bool,
    ) -> Result<(AxisState, Option<AxisState>), GraphError> {
        let o = self.o;
        let null_zero = o.draw_null_as_zero;
        let new_axis = |(min, max): (f64, f64), settings: &AxisSettings| {
            YAxis::new(min, max, o.unit_system, o.log_base, settings, &o.y_divisors)
        };
        if !second {
            let axis = new_axis(data_limits(plots.iter(), null_zero, stacked), &o.y)?;
            if hide_axes {
                return Ok((
                    AxisState {
                        axis,
                        labels: Vec::new(),
                        texts: Vec::new(),
                        label_width: 0.0,
                    },
                    None,
                ));
            }
            let state = self.axis_state(axis)?;
            if !hide_y_axis {
                if right_side {
                    let xmax = self.label_right - state.label_width * 1.02;
                    if self.area.xmax >= xmax {
                        self.area.xmax = xmax;
                    }
                } else {
                    let xmin = self.label_left + state.label_width * 1.02;
                    if self.area.xmin < xmin {
                        self.area.xmin = xmin;
                    }
                }
            }
            return Ok((state, None));
        }
        let left = new_axis(
            data_limits(plots.iter().filter(|p| !p.right), null_zero, stacked),
            &o.y_left,
        )?;
        let right = new_axis(
            data_limits(plots.iter().filter(|p| p.right), null_zero, stacked),
            &o.y_right,
        )?;
        let (left, right) = (self.axis_state(left)?, self.axis_state(right)?);
        let xmin = self.label_left + left.label_width * 1.02;
        if self.area.xmin < xmin {
            self.area.xmin = xmin;
        }
        let xmax = self.label_right - right.label_width * 1.02;
        if self.area.xmax >= xmax {
            self.area.xmax = xmax;
        }
        Ok((left, Some(right)))
    }

    fn y_coord(&self, value: f64, axis: &AxisState) -> Option<f64> {
        axis.axis
            .coord(value, &axis.labels, self.area.ymin, self.area.ymax)
    }

    fn labels(
        &mut self,
        left: &AxisState,
        right: Option<&AxisState>,
        x: &XAxis,
        hide_x_axis: bool,
        hide_y_axis: bool,
        right_side: bool,
    ) {
        let (size, fg) = (self.font_size, self.o.foreground);
        if !hide_y_axis {
            let place = |g: &mut Self, axis: &AxisState, px: f64, align: Align| {
                for (v, t) in axis.labels.iter().zip(&axis.texts) {
                    if let Some(y) = g.y_coord(*v, axis) {
                        g.text(
                            t,
                            px,
                            y.max(0.0),
                            size,
                            fg,
                            align,
                            VAlign::Middle,
                            FontTransform::None,
                        );
                    }
                }
            };
            match right {
                None if right_side => {
                    let px = self.area.xmax + left.label_width * 0.02;
                    place(self, left, px, Align::Left);
                }
                None => {
                    let px = self.area.xmin - left.label_width * 0.02;
                    place(self, left, px, Align::Right);
                }
                Some(r) => {
                    let px = self.area.xmin - left.label_width * 0.02;
                    place(self, left, px, Align::Right);
                    let px = self.area.xmax + r.label_width * 0.02 + 3.0;
                    place(self, r, px, Align::Left);
                }
            }
        }
        if !hide_x_axis {
            let format = self.o.x_format.as_deref().unwrap_or(x.conf.format);
            let ascent = self.fonts.extents(size, self.o.font_bold).ascent;
            let y = self.area.ymax + ascent;
            for t in x_times(x.start, x.end, x.conf.label, self.tz) {
                let label = format_time(t, format, self.tz);
                let px = self.area.xmin + (t - x.start) as f64 * x.scale;
                self.text(
                    &label,
                    px,
                    y,
                    size,
                    fg,
                    Align::Center,
                    VAlign::Top,
                    FontTransform::None,
                );
            }
        }
    }

    fn grid(&mut self, left: &AxisState, x: &XAxis) {
        let o = self.o;
        let (l, r) = (self.area.xmin, self.area.xmax);
        let labels = &left.labels;
        for (i, &v) in labels.iter().enumerate() {
            if let Some(y) = self.y_coord(v, left).filter(|y| *y >= 0.0) {
                self.line((l, y), (r, y), 0.4, o.major_grid);
            }
            if o.minor_y >= 1 && i + 1 < labels.len() {
                let (lo, hi) = (v.min(labels[i + 1]), v.max(labels[i + 1]));
                let distance = (hi - lo) / f64::from(1 + o.minor_y);
                for m in 0..o.minor_y {
                    let value = lo + f64::from(1 + m) * distance;
                    if left.axis.beyond_top(value) {
                        continue;
                    }
                    if let Some(y) = self.y_coord(value, left).filter(|y| *y >= 0.0) {
                        self.line((l, y), (r, y), 0.3, o.minor_grid);
                    }
                }
            }
        }
        let (top, bottom) = (self.area.ymin, self.area.ymax);
        for (step, width, color) in [
            (x.conf.minor, 0.25, o.minor_grid),
            (x.conf.major, 0.33, o.major_grid),
        ] {
            for t in x_times(x.start, x.end, step, self.tz) {
                let px = l + (t - x.start) as f64 * x.scale;
                if px < r {
                    self.line((px, bottom), (px, top), width, color);
                }
            }
        }
        self.line((r, bottom), (r, top), 0.5, o.major_grid);
        self.line((l, bottom), (l, top), 0.5, o.major_grid);
    }

    fn stroke_path(&mut self, path: &mut Path, width: f64, color: Rgba, dash: Option<f64>) {
        let clip = self.plot_rect();
        for mut piece in path.take() {
            dedup(&mut piece);
            if piece.len() < 2 {
                continue;
            }
            match dash {
                Some(d) => {
                    for dash in dashes(&piece, d, 1.0) {
                        self.p.stroke(&dash, width, color, clip);
                    }
                }
                None => self.p.stroke(&piece, width, color, clip),
            }
        }
    }

    fn plot_rect(&self) -> Rect {
        Rect {
            x0: self.area.xmin,
            y0: self.area.ymin,
            x1: self.area.xmax,
            y1: self.area.ymax,
        }
    }

    /// glyph.py's `fillAreaAndClip`: fills between each piece of the path and `base`, minus
    /// what earlier areas filled, and (while areas are being stacked) excludes it from later
    /// areas.
    fn fill_area(
        &mut self,
        path: &mut Path,
        base: f64,
        color: Rgba,
        excluded: &mut [Span],
        clip: bool,
    ) {
        let (ymin, ymax) = (self.area.ymin, self.area.ymax);
        for mut piece in path.take() {
            dedup(&mut piece);
            if piece.len() < 2 {
                continue;
            }
            let (first, last) = (piece[0].0, piece[piece.len() - 1].0);
            if last <= first {
                continue;
            }
            let c0 = first.floor().max(0.0) as i32;
            let c1 = (last.ceil() as i32).min(excluded.len() as i32);
            let mut spans: Vec<Span> = Vec::with_capacity((c1 - c0).max(0) as usize);
            let mut j = 0;
            for c in c0..c1 {
                let cx = (f64::from(c) + 0.5).clamp(first, last);
                while j + 2 < piece.len() && piece[j + 1].0 <= cx {
                    j += 1;
                }
                let (a, b) = (piece[j], piece[j + 1]);
                let y = if b.0 > a.0 {
                    a.1 + (b.1 - a.1) * ((cx - a.0) / (b.0 - a.0)).clamp(0.0, 1.0)
                } else {
                    b.1
                };
                let top = y.min(base).max(ymin);
                let bottom = y.max(base).min(ymax);
                if bottom <= top {
                    spans.push(NO_SPAN);
                    continue;
                }
                let col = &mut excluded[c as usize];
                if clip {
                    spans.push(subtract((top, bottom), col));
                    add(col, (top, bottom));
                } else {
                    let mut s = NO_SPAN;
                    s[0] = (top, bottom);
                    spans.push(s);
                }
            }
            if color.a > 0.0 {
                self.p.fill_spans(c0, &spans, first, last, color);
            }
        }
    }

    /// glyph.py's `drawLines`.
    fn lines(
        &mut self,
        mut plots: Vec<Plot>,
        left: &AxisState,
        right: Option<&AxisState>,
        start: i64,
        mode: LineMode,
        second: bool,
    ) {
        let o = self.o;
        if plots.iter().any(|p| p.stacked) {
            // Stable: stacked series first, then the rest, each in request order.
            plots.sort_by_key(|p| !p.stacked);
        }
        match o.area_mode {
            AreaMode::Stacked if !second => {
                let mut total: Vec<f64> = Vec::new();
                for p in plots.iter_mut().filter(|p| !p.infinite) {
                    p.stacked = true;
                    if total.len() < p.raw.len() {
                        total.resize(p.raw.len(), 0.0);
                    }
                    for (v, t) in p.raw.iter_mut().zip(total.iter_mut()) {
                        if !v.is_nan() {
                            let original = *v;
                            *v += *t;
                            *t += original;
                        }
                    }
                    let vpp = p.vpp;
                    p.consolidate(vpp);
                }
            }
            AreaMode::First => {
                if let Some(p) = plots.first_mut() {
                    p.stacked = true;
                }
            }
            AreaMode::All => plots
                .iter_mut()
                .filter(|p| !p.infinite)
                .for_each(|p| p.stacked = true),
            _ => {}
        }
        if let Some(alpha) = o.area_alpha {
            let mut strokes = Vec::new();
            for p in plots.iter_mut().filter(|p| p.stacked) {
                p.alpha = Some(alpha);
                strokes.push(Plot {
                    stacked: false,
                    alpha: None,
                    line_width: None,
                    dashed: None,
                    invisible: false,
                    infinite: false,
                    ..p.clone()
                });
            }
            plots.extend(strokes);
        }

        let mut excluded: Vec<Span> = vec![NO_SPAN; self.o.width as usize];
        let mut clipping = true;
        for p in &plots {
            if !p.stacked {
                // Areas come first; lines after them are not clipped by the areas.
                clipping = false;
            }
            let width = p.line_width.unwrap_or(o.line_width);
            let color = if p.invisible {
                p.color.with_alpha(0.0)
            } else if p.color.a < 1.0 {
                p.color
            } else {
                p.color.with_alpha(p.alpha.unwrap_or(1.0))
            };
            let axis = match right {
                Some(r) if p.right => r,
                _ => left,
            };
            let base = match self.y_coord(0.0, axis) {
                Some(y) if y != 0.0 => y,
                _ => self.area.ymax,
            };
            let missing = (p.start - start) as f64 / p.step as f64;
            let mut x = self.area.xmin + p.x_step * (missing / p.vpp as f64) + o.line_width / 2.0;
            let mut y = self.area.ymin;
            let mut path = Path::default();
            let mut nones = 0usize;
            let limit = o.connected_limit.unwrap_or(usize::MAX);
            for (index, &raw) in p.values.iter().enumerate() {
                let value = if raw.is_nan() && o.draw_null_as_zero {
                    0.0
                } else {
                    raw
                };
                let placed = if value.is_nan() {
                    None
                } else {
                    self.y_coord(value, axis).map(|y| y.max(0.0))
                };
                let Some(py) = placed else {
                    if nones == 0 {
                        path.line_to((x, y));
                        if p.stacked {
                            self.fill_area(&mut path, base, color, &mut excluded, clipping);
                        }
                    }
                    x += p.x_step;
                    nones += 1;
                    continue;
                };
                y = py;
                if p.infinite && value > 0.0 {
                    path.move_to((x, self.area.ymax));
                    path.line_to((x, self.area.ymin));
                    self.stroke_path(&mut path, width, color, p.dashed);
                    x += p.x_step;
                    continue;
                }
                match mode {
                    LineMode::Staircase => {
                        if nones > 0 {
                            path.move_to((x, y));
                        } else {
                            path.line_to((x, y));
                        }
                        x += p.x_step;
                        path.line_to((x, y));
                    }
                    LineMode::Slope => {
                        if nones > 0 {
                            path.move_to((x, y));
                        }
                        path.line_to((x, y));
                        x += p.x_step;
                    }
                    LineMode::Connected => {
                        if nones > limit || nones == index {
                            path.move_to((x, y));
                        }
                        path.line_to((x, y));
                        x += p.x_step;
                    }
                }
                nones = 0;
            }
            if p.stacked {
                self.fill_area(&mut path, base, color, &mut excluded, clipping);
            } else {
                self.stroke_path(&mut path, width, color, p.dashed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dash_pattern_alternates() {
        let d = dashes(&[(0.0, 0.0), (20.0, 0.0)], 5.0, 1.0);
        // Offset 1 into "5 on, 5 off": 4 on, 5 off, 5 on, 5 off, 1 on.
        let lengths: Vec<f64> = d.iter().map(|p| p[p.len() - 1].0 - p[0].0).collect();
        assert_eq!(lengths, vec![4.0, 5.0, 1.0]);
        assert_eq!(d[1][0].0, 9.0);
    }

    #[test]
    fn area_spans_subtract_and_merge() {
        let mut col = NO_SPAN;
        add(&mut col, (50.0, 100.0));
        let s = subtract((20.0, 100.0), &col);
        assert_eq!(s[0], (20.0, 50.0));
        assert!(s[1].0.is_nan());
        add(&mut col, (20.0, 50.0));
        assert_eq!(col[0], (20.0, 100.0));
        add(&mut col, (0.0, 5.0));
        add(&mut col, (10.0, 12.0));
        assert_eq!(col, [(0.0, 12.0), (20.0, 100.0)]);
        // Overlapping areas in areaMode=all: a later, taller area shows only above.
        let s = subtract((5.0, 150.0), &[(20.0, 100.0), (f64::NAN, f64::NAN)]);
        assert_eq!(s[0], (100.0, 150.0));
        assert_eq!(s[1], (5.0, 20.0));
    }

    #[test]
    fn legend_names_are_shortened_to_fit() {
        let fonts = super::super::text::fonts().unwrap();
        let long = "servers.web-frontend-01.cpu.total.user";
        let short = fit(fonts, long, 10.0, false, 80.0);
        assert!(
            short.ends_with('…') && fonts.width(&short, 10.0, false) <= 80.0,
            "{short}"
        );
        assert_eq!(fit(fonts, "a.b", 10.0, false, 80.0), "a.b");
    }
}
