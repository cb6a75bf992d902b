//! Drawing surfaces. The graph layout speaks in floating-point pixels to a [`Painter`]; the
//! bitmap painter draws through plotters' `BitMapBackend` (RGB buffer, alpha blending, text via
//! [`Label`]) with its own anti-aliased strokes and area spans, which plotters' integer
//! rasteriser lacks; the SVG painter maps the same calls onto plotters' `SVGBackend`.

use plotters::backend::{BitMapBackend, RGBPixel, SVGBackend};
use plotters::style::ShapeStyle;
use plotters_backend::{BackendColor, DrawingBackend, FontTransform};

use super::options::Rgba;
use super::text::Fonts;

/// An axis-aligned rectangle in pixels: `x0 <= x < x1`, `y0 <= y < y1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rect {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

/// The filled part of one pixel column of an area: up to two vertical intervals (top, bottom).
pub(crate) type Span = [(f64, f64); 2];

/// An empty column.
pub(crate) const NO_SPAN: Span = [(f64::NAN, f64::NAN); 2];

/// Where a text run goes: the top-left corner of its box in the text's own frame, and the
/// rotation of that frame.
#[derive(Clone)]
pub(crate) struct TextRun<'t> {
    pub text: &'t str,
    pub x: f64,
    pub y: f64,
    pub size: f64,
    pub bold: bool,
    pub color: Rgba,
    pub rotate: FontTransform,
}

pub(crate) trait Painter {
    /// Fills a rectangle.
    fn fill_rect(&mut self, r: Rect, color: Rgba);
    /// Strokes an open polyline `width` pixels wide, clipped to `clip`.
    fn stroke(&mut self, points: &[(f64, f64)], width: f64, color: Rgba, clip: Rect);
    /// Fills `spans[i]` in the pixel column `x0 + i`; `left`/`right` are the exact horizontal
    /// extent (partial first and last columns).
    fn fill_spans(&mut self, x0: i32, spans: &[Span], left: f64, right: f64, color: Rgba);
    /// Draws one run of text.
    fn text(&mut self, run: &TextRun<'_>);
    /// Fills closed polygons (each contour implicitly closed) with the non-zero winding rule,
    /// anti-aliased like cairo's fills.
    fn fill_path(&mut self, contours: &[Vec<(f64, f64)>], color: Rgba);
    /// Draws `run` turned by `angle` radians (clockwise on screen) about its baseline origin
    /// `origin`; `run.x`/`run.y`/`run.rotate` are ignored.
    fn text_at_angle(&mut self, run: &TextRun<'_>, origin: (f64, f64), angle: f64);
}

/// Sub-scanlines per pixel row of [`fill_coverage`].
const SUBSAMPLES: usize = 16;

/// Coverage (0–1) of every pixel of the image `width`×`height` by `contours` under the
/// non-zero winding rule, as rows of the bounding box: returns (x0, y0, row width, cells).
/// Vertically sampled at [`SUBSAMPLES`] lines per row, horizontally exact per crossing.
pub(crate) fn fill_coverage(
    contours: &[Vec<(f64, f64)>],
    width: u32,
    height: u32,
) -> Option<(i32, i32, usize, Vec<f32>)> {
    let mut edges: Vec<((f64, f64), (f64, f64))> = Vec::new();
    let (mut minx, mut miny, mut maxx, mut maxy) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for c in contours.iter().filter(|c| c.len() >= 3) {
        for (i, &a) in c.iter().enumerate() {
            let b = c[(i + 1) % c.len()];
            if !(a.0.is_finite() && a.1.is_finite()) {
                return None;
            }
            minx = minx.min(a.0);
            maxx = maxx.max(a.0);
            miny = miny.min(a.1);
            maxy = maxy.max(a.1);
            if a.1 != b.1 {
                edges.push((a, b));
            }
        }
    }
    if edges.is_empty() {
        return None;
    }
    let x0 = (minx.floor().max(0.0)) as i32;
    let y0 = (miny.floor().max(0.0)) as i32;
    let x1 = (maxx.ceil().min(f64::from(width))) as i32;
    let y1 = (maxy.ceil().min(f64::from(height))) as i32;
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let w = (x1 - x0) as usize;
    let mut cells = vec![0f32; w * (y1 - y0) as usize];
    let mut crossings: Vec<(f64, i32)> = Vec::new();
    let weight = 1.0 / SUBSAMPLES as f64;
    for y in y0..y1 {
        let row = &mut cells[(y - y0) as usize * w..][..w];
        for s in 0..SUBSAMPLES {
            let yc = f64::from(y) + (s as f64 + 0.5) * weight;
            crossings.clear();
            for &(a, b) in &edges {
                let (lo, hi, dir) = if a.1 < b.1 { (a, b, 1) } else { (b, a, -1) };
                if yc < lo.1 || yc >= hi.1 {
                    continue;
                }
                let t = (yc - lo.1) / (hi.1 - lo.1);
                crossings.push((lo.0 + t * (hi.0 - lo.0), dir));
            }
            crossings.sort_by(|p, q| p.0.total_cmp(&q.0));
            let mut winding = 0;
            for pair in crossings.windows(2) {
                winding += pair[0].1;
                if winding == 0 {
                    continue;
                }
                let (l, r) = (
                    (pair[0].0 - f64::from(x0)).max(0.0),
                    (pair[1].0 - f64::from(x0)).min(w as f64),
                );
                if r <= l {
                    continue;
                }
                let (li, ri) = (l.floor() as usize, (r.ceil() as usize).min(w));
                for (i, cell) in row.iter_mut().enumerate().take(ri).skip(li) {
                    let px = i as f64;
                    let cover = ((px + 1.0).min(r) - px.max(l)).clamp(0.0, 1.0);
                    *cell += (cover * weight) as f32;
                }
            }
        }
    }
    Some((x0, y0, w, cells))
}

fn backend_color(c: Rgba) -> BackendColor {
    BackendColor {
        alpha: c.a,
        rgb: (c.r, c.g, c.b),
    }
}

/// Per-pixel coverage already painted by the current stroke (in 1/255 steps), so overlapping
/// segments of one polyline do not darken their joins. Each cell is (generation, coverage):
/// a new stroke bumps the generation instead of clearing the buffer.
#[derive(Debug, Default)]
pub(crate) struct Coverage {
    cells: Vec<[u8; 2]>,
    generation: u8,
}

impl Coverage {
    fn begin(&mut self, len: usize) {
        if self.cells.len() < len {
            self.cells.resize(len, [0, 0]);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.cells.iter_mut().for_each(|c| *c = [0, 0]);
            self.generation = 1;
        }
    }

    /// Raises the coverage of `i` to `c` (0–1); returns the alpha that blends the difference.
    fn raise(&mut self, i: usize, c: f32) -> Option<f64> {
        let cell = &mut self.cells[i];
        let old = if cell[0] == self.generation {
            cell[1]
        } else {
            0
        };
        let new = (c.clamp(0.0, 1.0) * 255.0).round() as u8;
        if new <= old {
            return None;
        }
        *cell = [self.generation, new];
        // Composite (1 - new) = (1 - old)(1 - a): blending a on top of old gives new.
        Some(f64::from(new - old) / f64::from(255 - old))
    }

    /// Bytes held.
    pub fn capacity_bytes(&self) -> usize {
        self.cells.capacity() * 2
    }
}

/// The PNG surface: an RGB buffer. Text and rectangles go through plotters' bitmap backend
/// over the same pixels; lines and areas are rasterised here with coverage-based
/// anti-aliasing at sub-pixel positions, which plotters' integer rasteriser lacks.
pub(crate) struct Bitmap<'a> {
    rgb: &'a mut [u8],
    coverage: &'a mut Coverage,
    fonts: &'static Fonts,
    width: u32,
    height: u32,
}

impl<'a> Bitmap<'a> {
    /// `rgb` must hold `width * height * 3` bytes.
    pub fn new(
        rgb: &'a mut [u8],
        width: u32,
        height: u32,
        coverage: &'a mut Coverage,
        fonts: &'static Fonts,
    ) -> Option<Self> {
        (rgb.len() >= width as usize * height as usize * 3).then_some(Bitmap {
            rgb,
            coverage,
            fonts,
            width,
            height,
        })
    }

    /// plotters' backend over the same pixels.
    fn backend(&mut self) -> Option<BitMapBackend<'_, RGBPixel>> {
        BitMapBackend::with_buffer_and_format(self.rgb, (self.width, self.height)).ok()
    }

    /// Blends `color` at `alpha` (times the colour's own alpha) into one pixel.
    #[inline]
    fn blend(&mut self, x: i32, y: i32, color: Rgba, alpha: f32) {
        if x < 0 || y < 0 || x >= self.width as i32 || y >= self.height as i32 {
            return;
        }
        let a = (color.a as f32 * alpha).clamp(0.0, 1.0);
        let i = (y as usize * self.width as usize + x as usize) * 3;
        for (d, s) in self.rgb[i..i + 3]
            .iter_mut()
            .zip([color.r, color.g, color.b])
        {
            let dv = f32::from(*d);
            *d = (dv + (f32::from(s) - dv) * a + 0.5) as u8;
        }
    }

    fn clip_to_image(&self, r: Rect) -> (i32, i32, i32, i32) {
        (
            r.x0.max(0.0).floor() as i32,
            r.y0.max(0.0).floor() as i32,
            r.x1.min(f64::from(self.width)).ceil() as i32,
            r.y1.min(f64::from(self.height)).ceil() as i32,
        )
    }

    /// A horizontal or vertical line (grid, borders): each pixel is covered by the exact
    /// area of the line's rectangle over it, as cairo's are.
    fn axis_line(&mut self, a: (f64, f64), b: (f64, f64), width: f64, color: Rgba, clip: Rect) {
        let half = width / 2.0;
        let r = if a.1 == b.1 {
            Rect {
                x0: a.0.min(b.0),
                x1: a.0.max(b.0),
                y0: a.1 - half,
                y1: a.1 + half,
            }
        } else {
            Rect {
                x0: a.0 - half,
                x1: a.0 + half,
                y0: a.1.min(b.1),
                y1: a.1.max(b.1),
            }
        };
        let r = Rect {
            x0: r.x0.max(clip.x0),
            y0: r.y0.max(clip.y0),
            x1: r.x1.min(clip.x1),
            y1: r.y1.min(clip.y1),
        };
        let (x0, y0, x1, y1) = self.clip_to_image(r);
        let overlap = |p: i32, lo: f64, hi: f64| {
            let p = f64::from(p);
            ((p + 1.0).min(hi) - p.max(lo)).max(0.0) as f32
        };
        for y in y0..y1 {
            let cy = overlap(y, r.y0, r.y1);
            for x in x0..x1 {
                let c = cy * overlap(x, r.x0, r.x1);
                if c > 0.0 {
                    self.blend(x, y, color, c);
                }
            }
        }
    }
}

/// Coverage of a pixel whose centre is `d` from a line `w` wide (box filter approximation;
/// lines thinner than a pixel fade instead of shrinking, as cairo's do).
fn line_coverage(d: f64, w: f64) -> f32 {
    let c = if w >= 1.0 {
        (w / 2.0 + 0.5 - d).clamp(0.0, 1.0)
    } else {
        w * (1.0 - d).clamp(0.0, 1.0)
    };
    c as f32
}

/// How far from a line `w` wide a pixel centre can be and still be touched.
fn line_reach(w: f64) -> f64 {
    (w / 2.0 + 0.5).max(1.0)
}

impl Painter for Bitmap<'_> {
    fn fill_rect(&mut self, r: Rect, color: Rgba) {
        let (x0, y0, x1, y1) = (
            r.x0.round() as i32,
            r.y0.round() as i32,
            r.x1.round() as i32,
            r.y1.round() as i32,
        );
        if x1 <= x0 || y1 <= y0 {
            return;
        }
        if let Some(mut backend) = self.backend() {
            // The bitmap backend fills up to, not including, the bottom-right corner.
            let _ = backend.draw_rect((x0, y0), (x1, y1), &backend_color(color), true);
        }
    }

    fn stroke(&mut self, points: &[(f64, f64)], width: f64, color: Rgba, clip: Rect) {
        if points.len() < 2 || width <= 0.0 || color.a <= 0.0 {
            return;
        }
        if let [a, b] = points
            && (a.0 == b.0 || a.1 == b.1)
        {
            self.axis_line(*a, *b, width, color, clip);
            return;
        }
        let w = self.width as usize;
        self.coverage.begin(w * self.height as usize);
        let reach = line_reach(width);
        let reach2 = reach * reach;
        let (cx0, cy0, cx1, cy1) = self.clip_to_image(clip);
        for seg in points.windows(2) {
            let ((ax, ay), (bx, by)) = (seg[0], seg[1]);
            let (dx, dy) = (bx - ax, by - ay);
            let len2 = dx * dx + dy * dy;
            let inv = if len2 > 0.0 { 1.0 / len2 } else { 0.0 };
            let y0 = ((ay.min(by) - reach).floor() as i32).max(cy0);
            let y1 = ((ay.max(by) + reach).ceil() as i32).min(cy1);
            for y in y0..y1 {
                let yc = f64::from(y) + 0.5;
                // The part of the segment within `reach` rows of this one bounds the columns.
                let (t0, t1) = if dy == 0.0 {
                    (0.0, 1.0)
                } else {
                    let u = (yc - reach - ay) / dy;
                    let v = (yc + reach - ay) / dy;
                    (u.min(v).clamp(0.0, 1.0), u.max(v).clamp(0.0, 1.0))
                };
                let (xa, xb) = (ax + t0 * dx, ax + t1 * dx);
                let x0 = ((xa.min(xb) - reach).floor() as i32).max(cx0);
                let x1 = ((xa.max(xb) + reach).ceil() as i32).min(cx1);
                for x in x0..x1 {
                    let xc = f64::from(x) + 0.5;
                    let t = (((xc - ax) * dx + (yc - ay) * dy) * inv).clamp(0.0, 1.0);
                    let (ex, ey) = (ax + t * dx - xc, ay + t * dy - yc);
                    let d2 = ex * ex + ey * ey;
                    if d2 >= reach2 {
                        continue;
                    }
                    let c = line_coverage(d2.sqrt(), width);
                    if c <= 0.0 {
                        continue;
                    }
                    let i = y as usize * w + x as usize;
                    if let Some(alpha) = self.coverage.raise(i, c) {
                        self.blend(x, y, color, alpha as f32);
                    }
                }
            }
        }
    }

    fn fill_spans(&mut self, x0: i32, spans: &[Span], left: f64, right: f64, color: Rgba) {
        let h = f64::from(self.height);
        for (i, span) in spans.iter().enumerate() {
            let x = x0 + i as i32;
            if x < 0 || x >= self.width as i32 {
                continue;
            }
            let fx = f64::from(x);
            let horizontal = ((fx + 1.0).min(right) - fx.max(left)).clamp(0.0, 1.0);
            if horizontal <= 0.0 {
                continue;
            }
            for &(top, bottom) in span {
                if top.is_nan() || bottom <= top {
                    continue;
                }
                let (top, bottom) = (top.max(0.0), bottom.min(h));
                let mut y = top.floor();
                while y < bottom {
                    let v = ((y + 1.0).min(bottom) - y.max(top)).clamp(0.0, 1.0);
                    if v > 0.0 {
                        self.blend(x, y as i32, color, (v * horizontal) as f32);
                    }
                    y += 1.0;
                }
            }
        }
    }

    fn fill_path(&mut self, contours: &[Vec<(f64, f64)>], color: Rgba) {
        let Some((x0, y0, w, cells)) = fill_coverage(contours, self.width, self.height) else {
            return;
        };
        for (k, &c) in cells.iter().enumerate() {
            if c > 0.0 {
                let (x, y) = (x0 + (k % w) as i32, y0 + (k / w) as i32);
                self.blend(x, y, color, c.min(1.0));
            }
        }
    }

    fn text_at_angle(&mut self, run: &TextRun<'_>, origin: (f64, f64), angle: f64) {
        let (sin, cos) = angle.sin_cos();
        let contours: Vec<Vec<(f64, f64)>> = self
            .fonts
            .contours(run.text, run.size, run.bold)
            .into_iter()
            .map(|c| {
                c.into_iter()
                    .map(|(x, y)| (origin.0 + x * cos - y * sin, origin.1 + x * sin + y * cos))
                    .collect()
            })
            .collect();
        self.fill_path(&contours, run.color);
    }

    fn text(&mut self, run: &TextRun<'_>) {
        let label = self
            .fonts
            .label(run.size, run.bold, backend_color(run.color))
            .rotated(run.rotate.clone());
        if let Some(mut backend) = self.backend() {
            let _ = backend.draw_text(
                run.text,
                &label,
                (run.x.round() as i32, run.y.round() as i32),
            );
        }
    }
}

/// The SVG surface (integer coordinates; thin lines are drawn 1 px wide and faded).
pub(crate) struct Svg<'a> {
    backend: SVGBackend<'a>,
    fonts: &'static Fonts,
}

impl<'a> Svg<'a> {
    pub fn new(out: &'a mut String, width: u32, height: u32, fonts: &'static Fonts) -> Self {
        Svg {
            backend: SVGBackend::with_string(out, (width, height)),
            fonts,
        }
    }

    /// Writes the document into the string given to [`Svg::new`].
    pub fn finish(mut self) {
        let _ = self.backend.present();
    }
}

fn clip_segment(a: (f64, f64), b: (f64, f64), r: Rect) -> Option<((f64, f64), (f64, f64))> {
    // Liang–Barsky.
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - r.x0),
        (dx, r.x1 - a.0),
        (-dy, a.1 - r.y0),
        (dy, r.y1 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    (t0 <= t1).then_some((
        (a.0 + t0 * dx, a.1 + t0 * dy),
        (a.0 + t1 * dx, a.1 + t1 * dy),
    ))
}

impl Painter for Svg<'_> {
    fn fill_rect(&mut self, r: Rect, color: Rgba) {
        let _ = self.backend.draw_rect(
            (r.x0.round() as i32, r.y0.round() as i32),
            (r.x1.round() as i32, r.y1.round() as i32),
            &backend_color(color),
            true,
        );
    }

    fn stroke(&mut self, points: &[(f64, f64)], width: f64, color: Rgba, clip: Rect) {
        let faded = if width < 1.0 {
            color.with_alpha(color.a * width)
        } else {
            color
        };
        let style = ShapeStyle {
            color: plotters::style::RGBAColor(faded.r, faded.g, faded.b, faded.a),
            filled: false,
            stroke_width: width.round().max(1.0) as u32,
        };
        let mut run: Vec<(i32, i32)> = Vec::new();
        let round = |p: (f64, f64)| (p.0.round() as i32, p.1.round() as i32);
        let flush = |run: &mut Vec<(i32, i32)>, backend: &mut SVGBackend<'_>| {
            if run.len() >= 2 {
                let _ = backend.draw_path(run.drain(..), &style);
            }
            run.clear();
        };
        for seg in points.windows(2) {
            match clip_segment(seg[0], seg[1], clip) {
                Some((a, b)) => {
                    let (a, b) = (round(a), round(b));
                    if run.last() != Some(&a) {
                        flush(&mut run, &mut self.backend);
                        run.push(a);
                    }
                    run.push(b);
                }
                None => flush(&mut run, &mut self.backend),
            }
        }
        flush(&mut run, &mut self.backend);
    }

    fn fill_spans(&mut self, x0: i32, spans: &[Span], _left: f64, _right: f64, color: Rgba) {
        // Each maximal run of columns with a non-empty k-th interval becomes one polygon.
        for k in 0..2 {
            let mut i = 0;
            while i < spans.len() {
                if spans[i][k].0.is_nan() {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < spans.len() && !spans[i][k].0.is_nan() {
                    i += 1;
                }
                let mut poly: Vec<(i32, i32)> = Vec::with_capacity(2 * (i - start) + 2);
                for (j, s) in spans.iter().enumerate().take(i).skip(start) {
                    let x = x0 + j as i32;
                    poly.push((x, s[k].0.round() as i32));
                    poly.push((x + 1, s[k].0.round() as i32));
                }
                for (j, s) in spans.iter().enumerate().take(i).skip(start).rev() {
                    let x = x0 + j as i32;
                    poly.push((x + 1, s[k].1.round() as i32));
                    poly.push((x, s[k].1.round() as i32));
                }
                let _ = self.backend.fill_polygon(poly, &backend_color(color));
            }
        }
    }

    fn fill_path(&mut self, contours: &[Vec<(f64, f64)>], color: Rgba) {
        for c in contours.iter().filter(|c| c.len() >= 3) {
            let poly: Vec<(i32, i32)> = c
                .iter()
                .map(|p| (p.0.round() as i32, p.1.round() as i32))
                .collect();
            let _ = self.backend.fill_polygon(poly, &backend_color(color));
        }
    }

    /// plotters' SVG backend only turns text by quarter turns: the run is written level,
    /// centred where the turned run would be centred.
    fn text_at_angle(&mut self, run: &TextRun<'_>, origin: (f64, f64), angle: f64) {
        let e = self.fonts.extents(run.size, run.bold);
        let w = self.fonts.width(run.text, run.size, run.bold);
        let (sin, cos) = angle.sin_cos();
        // Centre of the turned box, from the baseline origin.
        let (dx, dy) = (w / 2.0, (e.descent - e.ascent) / 2.0);
        let centre = (
            origin.0 + dx * cos - dy * sin,
            origin.1 + dx * sin + dy * cos,
        );
        let level = TextRun {
            x: centre.0 - w / 2.0,
            y: centre.1 - e.height() / 2.0,
            rotate: FontTransform::None,
            ..run.clone()
        };
        self.text(&level);
    }

    fn text(&mut self, run: &TextRun<'_>) {
        let label = self
            .fonts
            .label(run.size, run.bold, backend_color(run.color))
            .rotated(run.rotate.clone());
        let _ = self.backend.draw_text(
            run.text,
            &label,
            (run.x.round() as i32, run.y.round() as i32),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_blends_once_per_pixel() {
        let mut c = Coverage::default();
        c.begin(4);
        let a = c.raise(0, 0.5).unwrap();
        assert!((a - 128.0 / 255.0).abs() < 1e-6);
        // Raising 0.5 → 1.0 needs alpha 1 on top of the half-covered pixel.
        assert!((c.raise(0, 1.0).unwrap() - 1.0).abs() < 1e-6);
        assert_eq!(c.raise(0, 0.8), None, "already fully covered");
        c.begin(4);
        assert!(
            c.raise(0, 0.3).is_some(),
            "a new stroke starts from nothing"
        );
    }

    #[test]
    fn thin_lines_fade() {
        // cairo spreads a 0.4 px horizontal line at an integer y over two rows, 0.2 each.
        assert!((line_coverage(0.5, 0.4) - 0.2).abs() < 1e-6);
        assert_eq!(line_coverage(0.0, 3.0), 1.0);
        assert_eq!(line_coverage(3.0, 1.2), 0.0);
    }

    #[test]
    fn segments_clip_to_the_rectangle() {
        let r = Rect {
            x0: 0.0,
            y0: 0.0,
            x1: 10.0,
            y1: 10.0,
        };
        assert_eq!(
            clip_segment((-5.0, 5.0), (5.0, 5.0), r),
            Some(((0.0, 5.0), (5.0, 5.0)))
        );
        assert_eq!(clip_segment((-5.0, -5.0), (-1.0, -1.0), r), None);
    }
}
