//! The pie chart (`graphType=pie`): graphite-web 1.1.10's `PieGraph` (render/glyph.py) and
//! its pie functions (render/functions.py `pieAverage`, `pieMaximum`, `pieMinimum`).
//!
//! Every series becomes one value ([`reduce`]); slices start at twelve o'clock and run
//! clockwise in target order, coloured from `colorList` in turn, inside a circle of 95 % of
//! the half-size of the area left by the title and the legend. Labels (percentages by
//! default) sit halfway out on each slice's middle angle.
//!
//! Charcoal decisions: where the values add up to zero (or to no finite number)
//! graphite-web fails with a Python `ZeroDivisionError` (an HTTP 500); Charcoal draws the
//! title and legend and an empty pie. SVG output writes `pieLabels=rotated` labels level, as
//! plotters' SVG backend turns text only by quarter turns.

use std::f64::consts::{PI, TAU};

use jiff::tz::TimeZone;
use plotters_backend::FontTransform;

use super::line::{Align, Graph, VAlign};
use super::options::{GraphOptions, PieLabels, Rgba, ValueLabels};
use super::paint::{Painter, TextRun};
use super::text::Fonts;

/// How `pieMode` reduces a series to its slice value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PieMode {
    /// Mean of the non-null points (the default).
    Average,
    /// Largest non-null point.
    Maximum,
    /// Smallest non-null point.
    Minimum,
}

impl PieMode {
    /// graphite-web looks the name up as given (case matters): `average`, `maximum`,
    /// `minimum`.
    pub(crate) fn parse(name: &str) -> Option<PieMode> {
        match name {
            "average" => Some(PieMode::Average),
            "maximum" => Some(PieMode::Maximum),
            "minimum" => Some(PieMode::Minimum),
            _ => None,
        }
    }
}

/// One series' slice value: nulls (NaN) are skipped, and a series without any point counts
/// as 0, as graphite-web's `func(series) or 0` makes it. Negative values are kept.
pub(crate) fn reduce(values: &[f64], mode: PieMode) -> f64 {
    let mut present = values.iter().copied().filter(|v| !v.is_nan());
    let Some(first) = present.next() else {
        return 0.0;
    };
    match mode {
        PieMode::Average => {
            let (sum, n) = present.fold((first, 1usize), |(s, n), v| (s + v, n + 1));
            sum / n as f64
        }
        PieMode::Maximum => present.fold(first, f64::max),
        PieMode::Minimum => present.fold(first, f64::min),
    }
}

/// The text drawn on a slice of `value` that is `percent` (0–1) of the total, or None where
/// glyph.py leaves the slice bare: percentages below `min` per cent, numbers below `min`.
pub(crate) fn value_label(kind: ValueLabels, value: f64, percent: f64, min: f64) -> Option<String> {
    match kind {
        ValueLabels::None => None,
        ValueLabels::Percent => {
            let p = percent * 100.0;
            // Python's comparison with NaN is false too, so NaN is labelled ("%nan").
            (p >= min || p.is_nan()).then(|| format!("%{}", python_fixed2(p)))
        }
        ValueLabels::Number => {
            if value < min || !value.is_finite() {
                None
            } else if value < 10.0 && value != value.trunc() {
                Some(format!("{value:.2}"))
            } else {
                Some(format!("{}", value.trunc() as i64))
            }
        }
    }
}

/// Python's `'%.2f' % x`, including `nan`/`inf` spellings.
fn python_fixed2(x: f64) -> String {
    if x.is_nan() {
        "nan".to_owned()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        format!("{x:.2}")
    }
}

/// A slice as drawn.
struct Slice {
    value: f64,
    percent: f64,
    mid_angle: f64,
}

/// Draws the pie of `slices` (name, value), in request order, as graphite-web would for
/// options `o`.
pub(crate) fn draw<P: Painter>(
    p: &mut P,
    fonts: &'static Fonts,
    slices: &[(String, f64)],
    o: &GraphOptions,
    tz: &TimeZone,
) {
    let mut g = Graph::new(p, fonts, o, tz);
    if slices.is_empty() {
        g.no_data();
        return;
    }
    let total: f64 = slices.iter().map(|s| s.1).sum();
    let alpha = o.area_alpha.unwrap_or(1.0);
    let colors: Vec<Rgba> = o
        .colors
        .iter()
        .map(|c| Rgba::parse(c).unwrap_or(Rgba::rgb(0, 0, 0)))
        .collect();
    let color_of = |i: usize| colors[i % colors.len().max(1)];

    if let Some(title) = &o.title {
        let size = o.font_size + o.font_size.ln().floor();
        let line_height = fonts.extents(size, o.font_bold).height();
        let mut y = g.area.ymin;
        for line in title.split('\n') {
            g.text(
                line,
                g.width / 2.0,
                y,
                size,
                o.foreground,
                Align::Center,
                VAlign::Top,
                FontTransform::None,
            );
            y += line_height;
        }
        g.area.ymin = if o.y_axis_right { y } else { y + g.margin };
    }
    if !o.hide_legend.unwrap_or(false) {
        let elements: Vec<(String, Rgba, bool)> = slices
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), color_of(i), false))
            .collect();
        g.legend(&elements, false);
    }

    let half_x = (g.area.xmax - g.area.xmin) / 2.0;
    let half_y = (g.area.ymax - g.area.ymin) / 2.0;
    let (x0, y0) = (g.area.xmin + half_x, g.area.ymin + half_y);
    let radius = half_x.min(half_y) * 0.95;
    if total == 0.0 || !total.is_finite() || radius <= 0.0 {
        return;
    }

    let mut drawn = Vec::with_capacity(slices.len());
    let mut theta = 3.0 * PI / 2.0;
    for (i, (_, value)) in slices.iter().enumerate() {
        let percent = value / total;
        let color = color_of(i);
        let fill = if color.a < 1.0 {
            color
        } else {
            color.with_alpha(alpha)
        };
        let phi = theta + TAU * percent;
        g.p.fill_path(&[sector((x0, y0), radius, theta, phi)], fill);
        drawn.push(Slice {
            value: *value,
            percent,
            mid_angle: ((theta + phi) / 2.0).rem_euclid(TAU),
        });
        theta = phi;
    }

    let (size, bold) = (o.font_size, o.font_bold);
    let e = fonts.extents(size, bold);
    for s in &drawn {
        let Some(label) = value_label(o.value_labels, s.value, s.percent, o.value_labels_min)
        else {
            continue;
        };
        let mut angle = s.mid_angle;
        let x = x0 + radius / 2.0 * angle.cos();
        let y = y0 + radius / 2.0 * angle.sin();
        match o.pie_labels {
            PieLabels::Horizontal => g.text(
                &label,
                x,
                y,
                size,
                o.value_labels_color,
                Align::Center,
                VAlign::Middle,
                FontTransform::None,
            ),
            PieLabels::Rotated => {
                // Keep the text upright: the left half of the circle reads the other way.
                if angle > PI / 2.0 && angle <= 3.0 * PI / 2.0 {
                    angle -= PI;
                }
                let (sin, cos) = angle.sin_cos();
                let h = fonts.width(&label, size, bold) / 2.0;
                let v = e.height() / 2.0 - e.descent;
                let origin = (x - v * sin - h * cos, y + v * cos - h * sin);
                let run = TextRun {
                    text: &label,
                    x,
                    y,
                    size,
                    bold,
                    color: o.value_labels_color,
                    rotate: FontTransform::None,
                };
                g.p.text_at_angle(&run, origin, angle);
            }
        }
    }
}

/// The slice from `from` to `to` radians (clockwise on screen, 0 = three o'clock) as a
/// polygon: cairo's `move_to(centre); arc(...)`, which sweeps forward from `from`, adding
/// whole turns to `to` when it lies before `from` (so a negative share is drawn as the rest
/// of the circle).
fn sector(centre: (f64, f64), radius: f64, from: f64, to: f64) -> Vec<(f64, f64)> {
    let mut sweep = to - from;
    if sweep < 0.0 {
        sweep = sweep.rem_euclid(TAU);
    }
    let sweep = sweep.min(TAU);
    // Chords within 0.05 px of the circle.
    let max_step = (0.4 / radius.max(1.0)).sqrt();
    let n = ((sweep / max_step).ceil() as usize).max(1);
    let mut points = Vec::with_capacity(n + 2);
    points.push(centre);
    for k in 0..=n {
        let a = from + sweep * k as f64 / n as f64;
        points.push((centre.0 + radius * a.cos(), centre.1 + radius * a.sin()));
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    const NULL: f64 = f64::NAN;

    #[test]
    fn modes_skip_nulls() {
        let v = [NULL, 2.0, 4.0, NULL, 9.0];
        assert_eq!(reduce(&v, PieMode::Average), 5.0);
        assert_eq!(reduce(&v, PieMode::Maximum), 9.0);
        assert_eq!(reduce(&v, PieMode::Minimum), 2.0);
    }

    #[test]
    fn all_null_and_empty_series_count_as_zero() {
        for mode in [PieMode::Average, PieMode::Maximum, PieMode::Minimum] {
            assert_eq!(reduce(&[NULL, NULL], mode), 0.0, "{mode:?}");
            assert_eq!(reduce(&[], mode), 0.0, "{mode:?}");
        }
    }

    #[test]
    fn negative_values_are_kept() {
        let v = [-3.0, NULL, 1.0, -7.0];
        assert_eq!(reduce(&v, PieMode::Average), -3.0);
        assert_eq!(reduce(&v, PieMode::Maximum), 1.0);
        assert_eq!(reduce(&v, PieMode::Minimum), -7.0);
    }

    #[test]
    fn mode_names_are_case_sensitive() {
        assert_eq!(PieMode::parse("average"), Some(PieMode::Average));
        assert_eq!(PieMode::parse("maximum"), Some(PieMode::Maximum));
        assert_eq!(PieMode::parse("minimum"), Some(PieMode::Minimum));
        assert_eq!(PieMode::parse("Average"), None);
        assert_eq!(PieMode::parse("max"), None);
    }

    #[test]
    fn percent_labels_like_glyph_py() {
        let l = |v, p| value_label(ValueLabels::Percent, v, p, 5.0);
        assert_eq!(l(1.0, 0.25).as_deref(), Some("%25.00"));
        assert_eq!(l(1.0, 1.0 / 3.0).as_deref(), Some("%33.33"));
        assert_eq!(l(1.0, 0.05).as_deref(), Some("%5.00"));
        // Below valueLabelsMin (5 %) the slice stays bare.
        assert_eq!(l(1.0, 0.0499), None);
        assert_eq!(l(-1.0, -0.2), None);
        assert_eq!(
            value_label(ValueLabels::Percent, 1.0, 0.02, 1.0).as_deref(),
            Some("%2.00")
        );
        assert_eq!(value_label(ValueLabels::None, 1.0, 0.5, 5.0), None);
    }

    #[test]
    fn number_labels_like_glyph_py() {
        let l = |v| value_label(ValueLabels::Number, v, 0.5, 5.0);
        assert_eq!(l(4.0), None);
        assert_eq!(l(7.25).as_deref(), Some("7.25"));
        assert_eq!(l(7.0).as_deref(), Some("7"));
        assert_eq!(l(12.9).as_deref(), Some("12"));
        assert_eq!(l(1234.5).as_deref(), Some("1234"));
    }

    #[test]
    fn sectors_sweep_forward_like_cairo_arcs() {
        let full = sector((0.0, 0.0), 100.0, 0.0, TAU);
        let last = full.last().unwrap();
        assert!((last.0 - 100.0).abs() < 1e-9 && last.1.abs() < 1e-6);
        // A negative share sweeps the rest of the circle: from 0 to -π/2 is ¾ of a turn.
        let rest = sector((0.0, 0.0), 100.0, 0.0, -PI / 2.0);
        let end = rest.last().unwrap();
        assert!(
            end.0.abs() < 1e-6 && (end.1 + 100.0).abs() < 1e-6,
            "{end:?}"
        );
        assert!(rest.iter().any(|p| p.0 < -99.0), "passes nine o'clock");
    }
}
