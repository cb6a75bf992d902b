//! Image parameters of `/render` (spec §19), read the way graphite-web reads them: all-digit
//! values are integers (except colours), decimals are floats, `true`/`false` are booleans, and
//! an empty value or `default` means "not given". Colours are names from glyph.py's table or
//! `RRGGBB[AA]` hex.

use super::GraphError;
use super::axis::{AxisMax, AxisSettings};

/// Largest accepted width or height (Charcoal limit; graphite-web has none).
pub(crate) const MAX_SIDE: u32 = 8000;
/// Most pixels in one image (a 4K screen is 8.3 million): bounds the memory of a request.
pub(crate) const MAX_PIXELS: u64 = 10_000_000;

/// An RGBA colour, alpha 0–1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rgba {
    pub r: u8,
    pub g: u8,
    pub b: u8,
    pub a: f64,
}

impl Rgba {
    pub const fn rgb(r: u8, g: u8, b: u8) -> Self {
        Rgba { r, g, b, a: 1.0 }
    }

    pub fn with_alpha(self, a: f64) -> Self {
        Rgba { a, ..self }
    }

    /// A colour name or hex string; None when it is neither.
    pub fn parse(text: &str) -> Option<Rgba> {
        let t = text.trim();
        if let Some(c) = named(t) {
            return Some(c);
        }
        let hex = t
            .strip_prefix('#')
            .or_else(|| t.strip_prefix("%23"))
            .unwrap_or(t);
        if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        let mut c = Rgba::rgb(byte(0)?, byte(2)?, byte(4)?);
        if hex.len() == 8 {
            c.a = f64::from(byte(6)?) / 255.0;
        }
        Some(c)
    }

    /// CSS hex form, `#rrggbb`, or `#rrggbbaa` when not opaque.
    pub fn css(self) -> String {
        let mut out = format!("#{:02x}{:02x}{:02x}", self.r, self.g, self.b);
        if self.a < 1.0 {
            out.push_str(&format!(
                "{:02x}",
                (self.a.clamp(0.0, 1.0) * 255.0).round() as u8
            ));
        }
        out
    }
}

/// glyph.py's `colorAliases`.
fn named(name: &str) -> Option<Rgba> {
    Some(match name {
        "black" => Rgba::rgb(0, 0, 0),
        "white" => Rgba::rgb(255, 255, 255),
        "blue" => Rgba::rgb(100, 100, 255),
        "green" => Rgba::rgb(0, 200, 0),
        "red" => Rgba::rgb(200, 0, 50),
        "yellow" => Rgba::rgb(255, 255, 0),
        "orange" => Rgba::rgb(255, 165, 0),
        "purple" => Rgba::rgb(200, 100, 255),
        "brown" => Rgba::rgb(150, 100, 50),
        "cyan" => Rgba::rgb(0, 255, 255),
        "aqua" => Rgba::rgb(0, 150, 150),
        "gray" | "grey" => Rgba::rgb(175, 175, 175),
        "magenta" => Rgba::rgb(255, 0, 255),
        "pink" => Rgba::rgb(255, 100, 100),
        "gold" => Rgba::rgb(200, 200, 0),
        "rose" => Rgba::rgb(200, 150, 200),
        "darkblue" => Rgba::rgb(0, 0, 255),
        "darkgreen" => Rgba::rgb(0, 255, 0),
        "darkred" => Rgba::rgb(255, 0, 0),
        "darkgray" | "darkgrey" => Rgba::rgb(111, 111, 111),
        _ => return None,
    })
}

/// graphite-web's default `colorList`.
pub(crate) const DEFAULT_COLORS: &str =
    "blue,green,red,purple,brown,yellow,aqua,grey,magenta,pink,gold,rose";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineMode {
    Slope,
    Staircase,
    Connected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AreaMode {
    None,
    First,
    All,
    Stacked,
}

/// Prefixes of Y labels (`yUnitSystem`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnitSystem {
    Si,
    Binary,
    Sec,
    Msec,
    None,
}

impl UnitSystem {
    /// (prefix, size) from the largest down.
    pub fn prefixes(self) -> &'static [(&'static str, f64)] {
        const K: f64 = 1024.0;
        const Y: f64 = 365.0 * 86_400.0;
        const MO: f64 = 30.0 * 86_400.0;
        match self {
            UnitSystem::Si => &[("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)],
            UnitSystem::Binary => &[
                ("Pi", K * K * K * K * K),
                ("Ti", K * K * K * K),
                ("Gi", K * K * K),
                ("Mi", K * K),
                ("Ki", K),
            ],
            UnitSystem::Sec => &[
                ("Y", Y),
                ("M", MO),
                ("D", 86_400.0),
                ("H", 3600.0),
                ("m", 60.0),
            ],
            UnitSystem::Msec => &[
                ("Y", Y * 1000.0),
                ("M", MO * 1000.0),
                ("D", 86_400_000.0),
                ("H", 3_600_000.0),
                ("m", 60_000.0),
                ("s", 1000.0),
            ],
            UnitSystem::None => &[],
        }
    }
}

/// How pie slice labels are turned (`pieLabels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PieLabels {
    /// Level text (the default; also any value other than `rotated`).
    Horizontal,
    /// Along each slice's middle angle, kept upright.
    Rotated,
}

/// What pie slice labels show (`valueLabels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueLabels {
    None,
    Number,
    Percent,
}

/// Every image option of one request, defaults applied.
#[derive(Debug, Clone)]
pub(crate) struct GraphOptions {
    pub width: u32,
    pub height: u32,
    pub margin: f64,
    pub title: Option<String>,
    pub vtitle: Option<String>,
    pub vtitle_right: Option<String>,
    pub background: Rgba,
    pub foreground: Rgba,
    pub major_grid: Rgba,
    pub minor_grid: Rgba,
    /// Raw colour names, resolved when a series takes one.
    pub colors: Vec<String>,
    pub font_size: f64,
    pub font_bold: bool,
    pub line_width: f64,
    pub line_mode: LineMode,
    pub connected_limit: Option<usize>,
    pub area_mode: AreaMode,
    pub area_alpha: Option<f64>,
    pub draw_null_as_zero: bool,
    /// None: automatic (hidden above 10 series).
    pub hide_legend: Option<bool>,
    pub hide_null_from_legend: bool,
    pub unique_legend: bool,
    pub hide_axes: bool,
    pub hide_x_axis: bool,
    pub hide_y_axis: bool,
    pub hide_grid: bool,
    pub graph_only: bool,
    pub y_axis_right: bool,
    pub y: AxisSettings,
    pub y_left: AxisSettings,
    pub y_right: AxisSettings,
    pub y_divisors: Vec<u32>,
    pub unit_system: UnitSystem,
    pub log_base: Option<f64>,
    pub minor_y: u32,
    pub min_x_step: f64,
    pub x_format: Option<String>,
    pub left_width: Option<f64>,
    pub right_width: Option<f64>,
    pub left_color: Option<String>,
    pub right_color: Option<String>,
    pub left_dashed: Option<f64>,
    pub right_dashed: Option<f64>,
    /// Pie charts only (read when `graphType=pie`).
    pub pie_labels: PieLabels,
    pub value_labels: ValueLabels,
    /// Slices below this (per cent, or value with `valueLabels=number`) get no label.
    pub value_labels_min: f64,
    pub value_labels_color: Rgba,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            width: 330,
            height: 250,
            margin: 10.0,
            title: None,
            vtitle: None,
            vtitle_right: None,
            background: Rgba::rgb(255, 255, 255),
            foreground: Rgba::rgb(0, 0, 0),
            major_grid: Rgba::rgb(200, 150, 200),
            minor_grid: Rgba::rgb(175, 175, 175),
            colors: DEFAULT_COLORS.split(',').map(str::to_owned).collect(),
            font_size: 10.0,
            font_bold: false,
            line_width: 1.2,
            line_mode: LineMode::Slope,
            connected_limit: None,
            area_mode: AreaMode::None,
            area_alpha: None,
            draw_null_as_zero: false,
            hide_legend: None,
            hide_null_from_legend: false,
            unique_legend: false,
            hide_axes: false,
            hide_x_axis: false,
            hide_y_axis: false,
            hide_grid: false,
            graph_only: false,
            y_axis_right: false,
            y: AxisSettings::default(),
            y_left: AxisSettings::default(),
            y_right: AxisSettings::default(),
            y_divisors: vec![4, 5, 6],
            unit_system: UnitSystem::Si,
            log_base: None,
            minor_y: 1,
            min_x_step: 1.0,
            x_format: None,
            left_width: None,
            right_width: None,
            left_color: None,
            right_color: None,
            left_dashed: None,
            right_dashed: None,
            pie_labels: PieLabels::Horizontal,
            value_labels: ValueLabels::Percent,
            value_labels_min: 5.0,
            value_labels_color: Rgba::rgb(0, 0, 0),
        }
    }
}

/// A parameter value typed like graphite-web's `parseOptions`.
#[derive(Debug, Clone, PartialEq)]
enum Value<'a> {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(&'a str),
}

impl Value<'_> {
    fn truthy(&self) -> bool {
        match self {
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Bool(b) => *b,
            Value::Text(t) => !t.is_empty(),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::Text(_) => None,
        }
    }
}

fn typed<'a>(key: &str, raw: &'a str) -> Option<Value<'a>> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = raw.strip_prefix('-').unwrap_or(raw);
    if raw.is_empty() || raw.eq_ignore_ascii_case("default") {
        return None;
    }
    if digits(unsigned) && !key.to_ascii_lowercase().contains("color") {
        return Some(raw.parse().map_or(Value::Text(raw), Value::Int));
    }
    if raw.contains('.') && digits(&unsigned.replacen('.', "", 1)) {
        return Some(raw.parse().map_or(Value::Text(raw), Value::Float));
    }
    if raw.eq_ignore_ascii_case("true") || raw.eq_ignore_ascii_case("false") {
        return Some(Value::Bool(raw.eq_ignore_ascii_case("true")));
    }
    Some(Value::Text(raw))
}

/// Reads options through `get` (last value of a request parameter) and `unquote` (graphite's
/// second URL-decoding of titles and colour lists).
pub(crate) fn parse<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    unquote: impl Fn(&str) -> String,
) -> Result<GraphOptions, GraphError> {
    let value = |key: &'static str| get(key).and_then(|raw| typed(key, raw));
    let number = |key: &'static str| -> Result<Option<f64>, GraphError> {
        match get(key).and_then(|raw| typed(key, raw).map(|v| (raw, v))) {
            None => Ok(None),
            Some((raw, v)) => v
                .number()
                .filter(|n| n.is_finite())
                .map(Some)
                .ok_or_else(|| bad(key, raw, "a number")),
        }
    };
    let flag = |key: &'static str| value(key).is_some_and(|v| v.truthy());
    let text = |key: &'static str| {
        get(key)
            .filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("default"))
            .map(&unquote)
            .filter(|t| !t.is_empty())
    };
    let color = |key: &'static str| -> Result<Option<Rgba>, GraphError> {
        match get(key).filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("default")) {
            None => Ok(None),
            Some(raw) => Rgba::parse(raw)
                .map(Some)
                .ok_or_else(|| GraphError::Color { value: raw.into() }),
        }
    };

    let mut o = GraphOptions::default();
    for (key, slot) in [("width", &mut o.width), ("height", &mut o.height)] {
        if let Some(v) = number(key)? {
            if v < 1.0 || v > f64::from(MAX_SIDE) {
                return Err(GraphError::Size {
                    key,
                    value: v,
                    limit: MAX_SIDE,
                });
            }
            *slot = v as u32;
        }
    }
    if u64::from(o.width) * u64::from(o.height) > MAX_PIXELS {
        return Err(GraphError::Param {
            key: "width",
            value: format!("{}x{}", o.width, o.height),
            expected: "at most 10 million pixels (width × height)",
        });
    }
    if let Some(m) = number("margin")? {
        o.margin = if m < 0.0 { 10.0 } else { m.trunc() };
    }
    o.title = text("title");
    o.vtitle = text("vtitle");
    o.vtitle_right = text("vtitleRight");
    if let Some(c) = color("bgcolor")? {
        o.background = c;
    }
    if let Some(c) = color("fgcolor")? {
        o.foreground = c;
    }
    if let Some(c) = color("majorGridLineColor")? {
        o.major_grid = c;
    }
    if let Some(c) = color("minorGridLineColor")? {
        o.minor_grid = c;
    }
    if let Some(list) = text("colorList") {
        let colors: Vec<String> = list
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        if let Some(bad) = colors.iter().find(|c| Rgba::parse(c).is_none()) {
            return Err(GraphError::Color { value: bad.clone() });
        }
        if !colors.is_empty() {
            o.colors = colors;
        }
    }
    if let Some(size) = number("fontSize")? {
        if !(1.0..=200.0).contains(&size) {
            return Err(bad("fontSize", &size.to_string(), "a size from 1 to 200"));
        }
        o.font_size = size.trunc();
    }
    o.font_bold = flag("fontBold");
    if let Some(w) = number("lineWidth")?.or(number("thickness")?) {
        o.line_width = w.clamp(0.0, 100.0);
    }
    if let Some(m) = get("lineMode").filter(|m| !m.is_empty()) {
        o.line_mode = match m.to_ascii_lowercase().as_str() {
            "slope" => LineMode::Slope,
            "staircase" => LineMode::Staircase,
            "connected" => LineMode::Connected,
            _ => return Err(bad("lineMode", m, "slope, staircase or connected")),
        };
    }
    if let Some(l) = number("connectedLimit")? {
        o.connected_limit = Some(l.max(0.0) as usize);
    }
    if let Some(m) = get("areaMode").filter(|m| !m.is_empty()) {
        o.area_mode = match m.to_ascii_lowercase().as_str() {
            "none" => AreaMode::None,
            "first" => AreaMode::First,
            "all" => AreaMode::All,
            "stacked" => AreaMode::Stacked,
            _ => return Err(bad("areaMode", m, "none, first, all or stacked")),
        };
    }
    // graphite-web: an unreadable areaAlpha means 0.5.
    o.area_alpha = value("areaAlpha")
        .map(|v| v.number().unwrap_or(0.5).clamp(0.0, 1.0))
        .filter(|a| *a > 0.0);
    o.draw_null_as_zero = flag("drawNullAsZero");
    o.hide_legend = value("hideLegend").map(|v| v.truthy());
    o.hide_null_from_legend = flag("hideNullFromLegend");
    o.unique_legend = flag("uniqueLegend");
    o.hide_axes = flag("hideAxes");
    o.hide_x_axis = flag("hideXAxis");
    o.hide_y_axis = flag("hideYAxis");
    o.hide_grid = flag("hideGrid");
    o.graph_only = flag("graphOnly");
    o.y_axis_right = get("yAxisSide").is_some_and(|s| s.eq_ignore_ascii_case("right"));
    // glyph.py's PieGraph reads these (and fails on bad ones) only for pie charts.
    if get("graphType") == Some("pie") {
        if get("pieLabels") == Some("rotated") {
            o.pie_labels = PieLabels::Rotated;
        }
        if let Some(v) = get("valueLabels").filter(|v| !v.is_empty()) {
            o.value_labels = match v {
                "none" => ValueLabels::None,
                "number" => ValueLabels::Number,
                "percent" => ValueLabels::Percent,
                _ => return Err(bad("valueLabels", v, "none, number or percent")),
            };
        }
        if let Some(m) = number("valueLabelsMin")? {
            o.value_labels_min = m;
        }
        if let Some(c) = color("valueLabelsColor")? {
            o.value_labels_color = c;
        }
    }

    let axis_max = |key: &'static str| -> Result<Option<AxisMax>, GraphError> {
        if get(key) == Some("max") {
            return Ok(Some(AxisMax::DataMax));
        }
        Ok(number(key)?.map(AxisMax::Value))
    };
    o.y = AxisSettings {
        min: number("yMin")?.or(number("min")?),
        max: axis_max("yMax")?.or(axis_max("max")?),
        limit: number("yLimit")?,
        step: number("yStep")?,
    };
    o.y_left = AxisSettings {
        min: number("yMinLeft")?,
        max: axis_max("yMaxLeft")?,
        limit: number("yLimitLeft")?,
        step: number("yStepLeft")?,
    };
    o.y_right = AxisSettings {
        min: number("yMinRight")?,
        max: axis_max("yMaxRight")?,
        limit: number("yLimitRight")?,
        step: number("yStepRight")?,
    };
    if let Some(s) = o.y.step.or(o.y_left.step).or(o.y_right.step)
        && s <= 0.0
    {
        return Err(bad("yStep", &s.to_string(), "a positive number"));
    }
    if let Some(d) = get("yDivisors").filter(|d| !d.is_empty()) {
        let parsed: Option<Vec<u32>> = d
            .split(',')
            .map(|x| {
                x.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
            })
            .collect();
        o.y_divisors = parsed.ok_or_else(|| bad("yDivisors", d, "integers from 1 to 100"))?;
    }
    o.unit_system = match get("yUnitSystem").map(str::to_ascii_lowercase).as_deref() {
        Some("binary") => UnitSystem::Binary,
        Some("sec") => UnitSystem::Sec,
        Some("msec") => UnitSystem::Msec,
        Some("none") => UnitSystem::None,
        _ => UnitSystem::Si,
    };
    if let Some(b) = get("logBase").filter(|b| !b.is_empty() && *b != "default") {
        let base = if b == "e" {
            std::f64::consts::E
        } else {
            b.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 1.0)
                .ok_or_else(|| bad("logBase", b, "'e' or a number greater than 1"))?
        };
        o.log_base = Some(base);
    }
    if let Some(m) = number("minorY")? {
        o.minor_y = m.clamp(0.0, 100.0) as u32;
    }
    if let Some(m) = number("minXStep")? {
        o.min_x_step = m.max(0.01);
    }
    o.x_format = text("xFormat");
    o.left_width = number("leftWidth")?;
    o.right_width = number("rightWidth")?;
    o.left_dashed = number("leftDashed")?;
    o.right_dashed = number("rightDashed")?;
    for (key, slot) in [
        ("leftColor", &mut o.left_color),
        ("rightColor", &mut o.right_color),
    ] {
        if let Some(c) = get(key).filter(|c| !c.is_empty()) {
            Rgba::parse(c).ok_or_else(|| GraphError::Color { value: c.into() })?;
            *slot = Some(c.to_owned());
        }
    }
    Ok(o)
}

fn bad(key: &'static str, value: &str, expected: &'static str) -> GraphError {
    GraphError::Param {
        key,
        value: value.to_owned(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(query: &str) -> Result<GraphOptions, GraphError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        parse(
            |k| {
                pairs
                    .iter()
                    .rev()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.as_str())
            },
            |s| s.to_owned(),
        )
    }

    #[test]
    fn defaults_are_graphite_web_1_1_10() {
        let o = opts("").unwrap();
        assert_eq!((o.width, o.height), (330, 250));
        assert_eq!(o.line_width, 1.2);
        assert_eq!(o.colors[0], "blue");
        assert_eq!(o.colors.len(), 12);
        assert_eq!(o.major_grid, Rgba::rgb(200, 150, 200));
        assert_eq!(o.hide_legend, None);
        assert_eq!(o.y_divisors, vec![4, 5, 6]);
    }

    #[test]
    fn values_are_typed_like_parse_options() {
        let o = opts("width=800&height=600&hideLegend=false&yMin=-5&yMax=max&lineWidth=2.5&areaMode=stacked&lineMode=staircase&yUnitSystem=BINARY&fontSize=default&title=").unwrap();
        assert_eq!((o.width, o.height), (800, 600));
        assert_eq!(o.hide_legend, Some(false));
        assert_eq!(o.y.min, Some(-5.0));
        assert_eq!(o.y.max, Some(AxisMax::DataMax));
        assert_eq!(o.line_width, 2.5);
        assert_eq!(o.area_mode, AreaMode::Stacked);
        assert_eq!(o.line_mode, LineMode::Staircase);
        assert_eq!(o.unit_system, UnitSystem::Binary);
        assert_eq!(o.font_size, 10.0);
        assert_eq!(o.title, None);
        assert!(opts("hideLegend=1").unwrap().hide_legend == Some(true));
        assert!(opts("hideAxes=0").unwrap().hide_axes.eq(&false));
        assert_eq!(opts("min=3&thickness=4").unwrap().y.min, Some(3.0));
        assert_eq!(opts("thickness=4").unwrap().line_width, 4.0);
        assert_eq!(
            opts("logBase=e").unwrap().log_base,
            Some(std::f64::consts::E)
        );
        assert_eq!(
            opts("yUnitSystem=bogus").unwrap().unit_system,
            UnitSystem::Si
        );
    }

    #[test]
    fn colours() {
        assert_eq!(Rgba::parse("red"), Some(Rgba::rgb(200, 0, 50)));
        assert_eq!(Rgba::parse("#ff0080"), Some(Rgba::rgb(255, 0, 128)));
        assert_eq!(Rgba::parse("%23000000"), Some(Rgba::rgb(0, 0, 0)));
        assert_eq!(
            Rgba::parse("00ff0080").map(|c| (c.g, (c.a * 255.0).round())),
            Some((255, 128.0))
        );
        assert_eq!(Rgba::parse("nocolour"), None);
        assert_eq!(
            Rgba::parse("red").map(Rgba::css).as_deref(),
            Some("#c80032")
        );
        assert_eq!(
            Rgba::parse("%2300ff0080").map(Rgba::css).as_deref(),
            Some("#00ff0080")
        );
        assert_eq!(Rgba::parse("12345"), None);
        let o = opts("bgcolor=000000&fgcolor=white&colorList=red,%23112233").unwrap();
        assert_eq!(o.background, Rgba::rgb(0, 0, 0));
        assert_eq!(o.colors, vec!["red", "#112233"]);
        assert!(matches!(
            opts("bgcolor=mauve"),
            Err(GraphError::Color { .. })
        ));
        assert!(matches!(
            opts("colorList=red,nope"),
            Err(GraphError::Color { .. })
        ));
    }

    #[test]
    fn bad_values_name_the_parameter() {
        for q in [
            "width=abc",
            "width=0",
            "height=100000",
            "lineMode=curvy",
            "areaMode=some",
            "logBase=1",
            "yDivisors=4,x",
            "yStep=-1",
            "fontSize=1000",
            "width=8000&height=8000",
        ] {
            let e = opts(q).expect_err(q);
            let text = e.to_string();
            let key = q.split('=').next().unwrap();
            assert!(text.contains(key), "{q}: {text}");
        }
    }
}
