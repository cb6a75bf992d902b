//! Text for graphs without system fonts: DejaVu Sans (graphite-web's default `Sans` resolves to
//! it on Debian) is embedded in the binary and rasterised with `ab_glyph`.
//!
//! plotters 0.3.7's own ab_glyph text path places each glyph at the truncated advance sum and
//! ignores its left bearing, which gives uneven gaps in small labels ("14:1 3"; shared notes,
//! dependencies §2.3). [`Label`] is a plotters text style that lays glyphs out itself (advance,
//! kerning and bearing in floating point), so the bitmap backend's stock `draw_text` renders
//! it correctly and the SVG backend writes it as `<text>`.

use std::convert::Infallible;
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, GlyphId, PxScale, ScaleFont, point};
use plotters_backend::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendTextStyle, FontFamily, FontStyle, FontTransform,
};

use super::GraphError;

/// DejaVu Sans 2.37 (Bitstream Vera licence, `assets/fonts/LICENSE-DejaVu`).
static SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// DejaVu Sans Bold 2.37, for `fontBold=true`.
static SANS_BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// The family name written into SVG output (viewers fall back to any sans-serif face).
const SVG_FAMILY: &str = "DejaVu Sans, Sans, sans-serif";

/// Family names under which the font is also registered with plotters' font table, so any
/// plotters element that sizes text through its own font lookup finds it (notes §2.6 item 2).
const PLOTTERS_NAMES: [&str; 3] = ["sans-serif", "Sans", "DejaVu Sans"];

/// The embedded faces, parsed once per process.
pub(crate) struct Fonts {
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

/// The parsed faces, or the file that failed to parse (only a broken build can fail).
static FONTS: OnceLock<Result<Fonts, &'static str>> = OnceLock::new();

/// The embedded fonts; the first call parses them and registers them with plotters.
pub(crate) fn fonts() -> Result<&'static Fonts, GraphError> {
    FONTS
        .get_or_init(|| {
            let parse = |name: &'static str, bytes: &'static [u8]| {
                FontRef::try_from_slice(bytes).map_err(|_| name)
            };
            let fonts = Fonts {
                regular: parse("DejaVuSans.ttf", SANS)?,
                bold: parse("DejaVuSans-Bold.ttf", SANS_BOLD)?,
            };
            for name in PLOTTERS_NAMES {
                // Cannot fail: the same bytes just parsed above.
                let _ =
                    plotters::style::register_font(name, plotters::style::FontStyle::Normal, SANS);
                let _ = plotters::style::register_font(
                    name,
                    plotters::style::FontStyle::Bold,
                    SANS_BOLD,
                );
            }
            Ok(fonts)
        })
        .as_ref()
        .map_err(|name| GraphError::Font { name })
}

impl Fonts {
    fn face(&self, bold: bool) -> &FontRef<'static> {
        if bold { &self.bold } else { &self.regular }
    }

    /// Vertical metrics of a face at `size` px per em (cairo's `font_extents`).
    pub fn extents(&self, size: f64, bold: bool) -> Extents {
        let font = self.face(bold);
        let scaled = font.as_scaled(px_scale(font, size));
        Extents {
            ascent: f64::from(scaled.ascent()),
            descent: -f64::from(scaled.descent()),
        }
    }

    /// Advance width of `text` at `size` px per em, kerning included.
    pub fn width(&self, text: &str, size: f64, bold: bool) -> f64 {
        let font = self.face(bold);
        let scaled = font.as_scaled(px_scale(font, size));
        let mut width = 0.0f32;
        let mut previous: Option<GlyphId> = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                width += scaled.kern(p, id);
            }
            width += scaled.h_advance(id);
            previous = Some(id);
        }
        f64::from(width)
    }

    /// The glyph outlines of `text` as closed polygons (curves flattened), in pixels from the
    /// baseline origin with y down; filled with the non-zero rule they draw the text.
    pub fn contours(&self, text: &str, size: f64, bold: bool) -> Vec<Vec<(f64, f64)>> {
        let font = self.face(bold);
        let scaled = font.as_scaled(px_scale(font, size));
        let (hs, vs) = (
            f64::from(scaled.h_scale_factor()),
            f64::from(scaled.v_scale_factor()),
        );
        let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut caret = 0.0f64;
        let mut previous: Option<GlyphId> = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                caret += f64::from(scaled.kern(p, id));
            }
            previous = Some(id);
            if let Some(outline) = font.outline(id) {
                let map = |p: ab_glyph::Point| (caret + f64::from(p.x) * hs, -f64::from(p.y) * vs);
                let mut current: Vec<(f64, f64)> = Vec::new();
                for curve in &outline.curves {
                    use ab_glyph::OutlineCurve::{Cubic, Line, Quad};
                    let (start, points): (ab_glyph::Point, Vec<(f64, f64)>) = match *curve {
                        Line(a, b) => (a, vec![map(b)]),
                        Quad(a, b, c) => (a, flatten(&[map(a), map(b), map(c)])),
                        Cubic(a, b, c, d) => (a, flatten(&[map(a), map(b), map(c), map(d)])),
                    };
                    let s = map(start);
                    let joined = current
                        .last()
                        .is_some_and(|l| (l.0 - s.0).abs() < 1e-6 && (l.1 - s.1).abs() < 1e-6);
                    if !joined {
                        if current.len() >= 3 {
                            out.push(std::mem::take(&mut current));
                        }
                        current.clear();
                        current.push(s);
                    }
                    current.extend(points);
                }
                if current.len() >= 3 {
                    out.push(current);
                }
            }
            caret += f64::from(scaled.h_advance(id));
        }
        out
    }

    /// A text style for plotters backends.
    pub fn label(&'static self, size: f64, bold: bool, color: BackendColor) -> Label {
        Label {
            fonts: self,
            size,
            bold,
            color,
            transform: FontTransform::None,
        }
    }
}

/// Points along a quadratic or cubic Bézier curve (control points `c`), its start excluded.
fn flatten(c: &[(f64, f64)]) -> Vec<(f64, f64)> {
    const STEPS: usize = 8;
    (1..=STEPS)
        .map(|i| {
            let t = i as f64 / STEPS as f64;
            let u = 1.0 - t;
            let (w, n): ([f64; 4], usize) = if c.len() == 3 {
                ([u * u, 2.0 * u * t, t * t, 0.0], 3)
            } else {
                ([u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t], 4)
            };
            c.iter()
                .take(n)
                .zip(w)
                .fold((0.0, 0.0), |acc, (p, k)| (acc.0 + p.0 * k, acc.1 + p.1 * k))
        })
        .collect()
}

/// cairo sizes fonts by the em square; ab_glyph by ascent − descent.
fn px_scale(font: &FontRef<'_>, size: f64) -> PxScale {
    let em = font.units_per_em().unwrap_or(2048.0);
    PxScale::from(size as f32 * font.height_unscaled() / em)
}

/// Ascent and descent in pixels (both positive).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Extents {
    pub ascent: f64,
    pub descent: f64,
}

impl Extents {
    pub fn height(&self) -> f64 {
        self.ascent + self.descent
    }
}

/// One run of text: face, size in px per em, colour and rotation. Positioned by the top-left
/// corner of its box (ascent line, start of the advance), in the text's own frame.
#[derive(Clone)]
pub(crate) struct Label {
    fonts: &'static Fonts,
    size: f64,
    bold: bool,
    color: BackendColor,
    transform: FontTransform,
}

impl Label {
    pub fn rotated(mut self, transform: FontTransform) -> Self {
        self.transform = transform;
        self
    }
}

impl BackendTextStyle for Label {
    type FontError = Infallible;

    fn color(&self) -> BackendColor {
        self.color
    }

    /// plotters' SVG backend writes `font-size` as `size / 1.24`.
    fn size(&self) -> f64 {
        self.size * 1.24
    }

    fn transform(&self) -> FontTransform {
        self.transform.clone()
    }

    fn style(&self) -> FontStyle {
        if self.bold {
            FontStyle::Bold
        } else {
            FontStyle::Normal
        }
    }

    fn anchor(&self) -> Pos {
        Pos::new(HPos::Left, VPos::Top)
    }

    fn family(&self) -> FontFamily<'_> {
        FontFamily::Name(SVG_FAMILY)
    }

    /// The box is the advance width by the face's ascent and descent, so positions do not
    /// depend on which glyphs a label happens to contain.
    fn layout_box(&self, text: &str) -> Result<((i32, i32), (i32, i32)), Infallible> {
        let e = self.fonts.extents(self.size, self.bold);
        let w = self.fonts.width(text, self.size, self.bold);
        Ok((
            (0, -(e.ascent.round() as i32)),
            (w.round() as i32, e.descent.round() as i32),
        ))
    }

    /// Calls `draw` for every covered pixel, relative to the baseline origin (y < 0 above it).
    fn draw<E, F: FnMut(i32, i32, BackendColor) -> Result<(), E>>(
        &self,
        text: &str,
        pos: BackendCoord,
        mut draw: F,
    ) -> Result<Result<(), E>, Infallible> {
        let font = self.fonts.face(self.bold);
        let scale = px_scale(font, self.size);
        let scaled = font.as_scaled(scale);
        let mut caret = 0.0f32;
        let mut previous: Option<GlyphId> = None;
        let mut result = Ok(());
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                caret += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scale, point(caret, 0.0));
            caret += scaled.h_advance(id);
            previous = Some(id);
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            let (bx, by) = (bounds.min.x as i32, bounds.min.y as i32);
            outline.draw(|x, y, coverage| {
                if result.is_err() || coverage <= 0.0 {
                    return;
                }
                let color = BackendColor {
                    alpha: self.color.alpha * f64::from(coverage.min(1.0)),
                    rgb: self.color.rgb,
                };
                result = draw(pos.0 + bx + x as i32, pos.1 + by + y as i32, color);
            });
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_fonts_parse_and_measure_like_cairo() {
        let f = fonts().unwrap();
        // DejaVu Sans: ascent 1901, descent 483 units of 2048 (cairo's font_extents at 10 px
        // per em give 9.28 and 2.36).
        let e = f.extents(10.0, false);
        assert!((e.ascent - 9.28).abs() < 0.01, "{e:?}");
        assert!((e.descent - 2.36).abs() < 0.01, "{e:?}");
        // "0" advances 1303 units: 6.36 px at 10 px per em; widths add up.
        assert!((f.width("0", 10.0, false) - 6.362).abs() < 0.01);
        assert!((f.width("00", 10.0, false) - 2.0 * f.width("0", 10.0, false)).abs() < 1e-6);
        assert!(f.width("0", 10.0, true) > f.width("0", 10.0, false));
        assert_eq!(f.width("", 10.0, false), 0.0);
    }

    #[test]
    fn glyphs_sit_on_the_baseline_with_their_bearings() {
        let f = fonts().unwrap();
        let label = f.label(
            20.0,
            false,
            BackendColor {
                alpha: 1.0,
                rgb: (0, 0, 0),
            },
        );
        let mut min_y = i32::MAX;
        let mut max_y = i32::MIN;
        let mut xs = Vec::new();
        label
            .draw("l l", (0, 0), |x, y, _| {
                min_y = min_y.min(y);
                max_y = max_y.max(y);
                xs.push(x);
                Ok::<(), ()>(())
            })
            .unwrap()
            .unwrap();
        // 'l' rises to the ascender and stops at the baseline.
        assert!(min_y < -12 && max_y <= 0, "{min_y}..{max_y}");
        // Two 'l's one advance of "l " apart: the second starts exactly that far right.
        xs.sort_unstable();
        let first = xs[0];
        let second = *xs.iter().find(|&&x| x > first + 4).unwrap();
        let gap = f.width("l ", 20.0, false);
        assert!(
            ((second - first) as f64 - gap).abs() <= 1.0,
            "{first} {second} {gap}"
        );
    }
}
