//! PNG and SVG graphs (`/render?format=png|svg`, spec §19): graphite-web's look and image
//! parameters, drawn with plotters backends and an embedded font, so a machine without any
//! system font renders the same image.
//!
//! Rendering is CPU-bound (a few ms for 800×600): the HTTP layer calls [`render`] on the
//! blocking pool; each worker thread keeps its RGB and coverage buffers between requests.
//! PNG encoding uses deflate level 1 with the Up filter, which costs about a fifth of the
//! default level for 30 % larger files (shared notes, dependencies §2.4).

mod axis;
mod line;
mod options;
mod paint;
mod pie;
mod text;

use std::cell::RefCell;

use jiff::tz::TimeZone;

pub use crate::error::GraphError;
use crate::series::{NULL, Series};
pub(crate) use options::GraphOptions;
use paint::{Bitmap, Coverage, Svg};
pub(crate) use pie::{PieMode, reduce as pie_value};

/// Image formats of `/render`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageFormat {
    Png,
    Svg,
}

/// What a graph shows: time series as lines (`graphType=line`), or one value per slice
/// (`graphType=pie`: name and value, in request order).
#[derive(Debug, Clone)]
pub(crate) enum Chart {
    Line(Vec<Series>),
    Pie(Vec<(String, f64)>),
}

impl Chart {
    fn draw<P: paint::Painter>(
        self,
        p: &mut P,
        fonts: &'static text::Fonts,
        o: &GraphOptions,
        tz: &TimeZone,
    ) -> Result<(), GraphError> {
        match self {
            Chart::Line(series) => line::draw(p, fonts, series, o, tz),
            Chart::Pie(slices) => {
                pie::draw(p, fonts, &slices, o, tz);
                Ok(())
            }
        }
    }
}

/// Parses and registers the embedded fonts; call once at start-up so the first request does
/// not pay for it. Later calls are free.
pub(crate) fn init() -> Result<(), GraphError> {
    text::fonts().map(|_| ())
}

/// Reads the image parameters of a request (`get` returns a parameter's last value).
pub(crate) fn parse_options<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
) -> Result<GraphOptions, GraphError> {
    options::parse(get, crate::http::unquote_plus)
}

/// A series colour (a name of the PNG palette or hex) as CSS `#rrggbb[aa]`, for the browser
/// UI's chart; None when the PNG renderer would refuse it.
pub(crate) fn css_color(name: &str) -> Option<String> {
    options::Rgba::parse(name).map(options::Rgba::css)
}

/// An RGB drawing surface whose buffers outlive one drawing.
#[derive(Debug, Default)]
struct Canvas {
    rgb: Vec<u8>,
    coverage: Coverage,
    width: u32,
    height: u32,
}

impl Canvas {
    fn draw(&mut self, chart: Chart, o: &GraphOptions, tz: &TimeZone) -> Result<(), GraphError> {
        let fonts = text::fonts()?;
        let len = o.width as usize * o.height as usize * 3;
        self.rgb.clear();
        self.rgb.resize(len, 0);
        self.width = o.width;
        self.height = o.height;
        let mut bitmap = Bitmap::new(&mut self.rgb, o.width, o.height, &mut self.coverage, fonts)
            .ok_or(GraphError::Size {
            key: "width",
            value: f64::from(o.width),
            limit: options::MAX_SIDE,
        })?;
        chart.draw(&mut bitmap, fonts, o, tz)
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), GraphError> {
        out.clear();
        let mut encoder = png::Encoder::new(&mut *out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_deflate_compression(png::DeflateCompression::Level(1));
        encoder.set_filter(png::Filter::Up);
        let mut writer = encoder.write_header().map_err(GraphError::from)?;
        writer
            .write_image_data(&self.rgb)
            .map_err(GraphError::from)?;
        writer.finish().map_err(GraphError::from)
    }
}

/// Buffers larger than this (about a 1920×1080 image) are freed after use.
const KEEP_BYTES: usize = 12 * 1024 * 1024;

thread_local! {
    /// Per-thread buffers of the blocking pool; grown to the largest image drawn there.
    static CANVAS: RefCell<Canvas> = RefCell::new(Canvas::default());
}

/// Draws `chart` and returns the encoded image.
pub(crate) fn render(
    chart: Chart,
    o: &GraphOptions,
    tz: &TimeZone,
    format: ImageFormat,
) -> Result<Vec<u8>, GraphError> {
    match format {
        ImageFormat::Png => CANVAS.with_borrow_mut(|canvas| {
            let drawn = canvas.draw(chart, o, tz);
            let mut out = Vec::with_capacity(canvas.rgb.len() / 8);
            let encoded = drawn.and_then(|()| canvas.encode(&mut out));
            // Keep the buffers of ordinary sizes for the next request on this thread; give
            // back what a rare huge image took.
            if canvas.rgb.capacity() + canvas.coverage.capacity_bytes() > KEEP_BYTES {
                *canvas = Canvas::default();
            }
            encoded.map(|()| out)
        }),
        ImageFormat::Svg => svg(chart, o, tz).map(String::into_bytes),
    }
}

fn svg(chart: Chart, o: &GraphOptions, tz: &TimeZone) -> Result<String, GraphError> {
    let fonts = text::fonts()?;
    let mut out = String::new();
    {
        let mut svg = Svg::new(&mut out, o.width, o.height, fonts);
        chart.draw(&mut svg, fonts, o, tz)?;
        svg.finish();
    }
    Ok(out)
}

/// Draws graphs outside an HTTP request, for benchmarks and embedding: image parameters as
/// in a `/render` query string, series given directly; drawing and PNG encoding are separate
/// steps and the buffers are reused between drawings.
///
/// ```
/// let mut g = charcoal_web::GraphRenderer::new("width=400&height=300&title=Load").unwrap();
/// g.add_series("servers.web1.load.load1", 1_700_000_000, 60, &[Some(0.5), None, Some(0.7)]);
/// g.draw().unwrap();
/// let png = g.encode_png().unwrap();
/// assert_eq!(&png[1..4], b"PNG");
/// ```
#[derive(Debug)]
pub struct GraphRenderer {
    options: GraphOptions,
    series: Vec<Series>,
    tz: TimeZone,
    canvas: Canvas,
    png: Vec<u8>,
}

impl GraphRenderer {
    /// Reads image parameters (`width`, `height`, `title`, `areaMode`, …) from a query string;
    /// labels are in UTC.
    pub fn new(query: &str) -> Result<Self, GraphError> {
        init()?;
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let options = parse_options(|k| {
            pairs
                .iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        })?;
        Ok(GraphRenderer {
            options,
            series: Vec::new(),
            tz: TimeZone::UTC,
            canvas: Canvas::default(),
            png: Vec::new(),
        })
    }

    /// Adds a series of values `step` seconds apart from `start`; `None` is a gap.
    pub fn add_series(&mut self, name: &str, start: i64, step: i64, values: &[Option<f64>]) {
        let values: Vec<f64> = values.iter().map(|v| v.unwrap_or(NULL)).collect();
        let end = start + step * values.len() as i64;
        self.series
            .push(Series::new(name, start, end, step, values));
    }

    /// Draws the series into the RGB buffer.
    pub fn draw(&mut self) -> Result<(), GraphError> {
        self.canvas
            .draw(Chart::Line(self.series.clone()), &self.options, &self.tz)
    }

    /// Encodes the last drawing as PNG (the bytes stay valid until the next call).
    pub fn encode_png(&mut self) -> Result<&[u8], GraphError> {
        self.canvas.encode(&mut self.png)?;
        Ok(&self.png)
    }

    /// The RGB pixels of the last drawing (3 bytes per pixel, rows top to bottom).
    pub fn pixels(&self) -> &[u8] {
        &self.canvas.rgb
    }

    /// The same graph as an SVG document.
    pub fn svg(&self) -> Result<String, GraphError> {
        svg(Chart::Line(self.series.clone()), &self.options, &self.tz)
    }
}
