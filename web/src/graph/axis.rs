//! Axes the way graphite-web 1.1.10's `glyph.py` chooses them: Y ticks that cover the data with
//! the least slop for 4, 5 or 6 divisions (or powers of the base on a log axis), labels with SI
//! or binary prefixes, and the rrdtool-style table of time-axis steps and label formats.

use super::GraphError;
use super::options::UnitSystem;

const EPSILON: f64 = 0.0001;

/// Where a limit of the Y range came from; fixed limits are not rounded outwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Data,
    Min,
    Max,
    Limit,
    Extremum,
}

/// A requested maximum: a number, or `max` (the data's own maximum, not rounded).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AxisMax {
    Value(f64),
    DataMax,
}

/// Ticks of one Y axis.
#[derive(Debug, Clone)]
pub(crate) struct YAxis {
    min: f64,
    min_source: Source,
    max: f64,
    max_source: Source,
    limit: Option<f64>,
    log_base: Option<f64>,
    unit: UnitSystem,
    /// Distance between ticks (None on a log axis).
    pub step: Option<f64>,
    pub bottom: f64,
    pub top: f64,
    span: f64,
}

/// User settings for one axis (`yMin`, `yMax`, `yLimit`, `yStep`, `yDivisors`).
#[derive(Debug, Clone, Default)]
pub(crate) struct AxisSettings {
    pub min: Option<f64>,
    pub max: Option<AxisMax>,
    pub limit: Option<f64>,
    pub step: Option<f64>,
}

impl YAxis {
    /// Chooses ticks for data spanning `min..=max`.
    pub fn new(
        min: f64,
        max: f64,
        unit: UnitSystem,
        log_base: Option<f64>,
        settings: &AxisSettings,
        divisors: &[u32],
    ) -> Result<Self, GraphError> {
        if let Some(b) = log_base
            && b <= 1.0
        {
            return Err(GraphError::Axis {
                reason: "Logarithmic base must be greater than one",
            });
        }
        let mut axis = YAxis {
            min: finite(min)?,
            min_source: Source::Data,
            max: finite(max)?,
            max_source: Source::Data,
            limit: None,
            log_base,
            unit,
            step: None,
            bottom: 0.0,
            top: 0.0,
            span: 0.0,
        };
        axis.apply_settings(settings)?;
        if log_base.is_none() {
            match settings.step {
                Some(s) => axis.step = Some(finite(s)?),
                None => axis.choose_step(divisors, unit == UnitSystem::Binary),
            }
        }
        axis.choose_limits()?;
        Ok(axis)
    }

    fn apply_settings(&mut self, s: &AxisSettings) -> Result<(), GraphError> {
        if let Some(m) = s.min.filter(|m| !m.is_nan()) {
            self.min_source = Source::Min;
            self.min = finite(m)?;
        }
        match s.max {
            Some(AxisMax::DataMax) => self.max_source = Source::Extremum,
            Some(AxisMax::Value(m)) if !m.is_nan() => {
                self.max_source = Source::Max;
                self.max = finite(m)?;
            }
            _ => {}
        }
        match s.limit.filter(|l| !l.is_nan()) {
            None => self.limit = None,
            Some(l) if l < self.max => {
                self.max = finite(l)?;
                self.max_source = Source::Limit;
                self.limit = None;
            }
            Some(l) if l.is_infinite() => self.limit = None,
            Some(l) => self.limit = Some(l),
        }
        self.reconcile()
    }

    /// Makes min < max, moving whichever limit the user did not fix.
    fn reconcile(&mut self) -> Result<(), GraphError> {
        if self.min < self.max {
            return Ok(());
        }
        let min_fixed = self.min_source == Source::Min;
        let max_fixed = matches!(self.max_source, Source::Max | Source::Limit);
        let delta = |x: f64| if x.abs() < 1e-9 { 1.0 } else { 0.1 * x.abs() };
        match (min_fixed, max_fixed) {
            (true, true) => {
                return Err(GraphError::Axis {
                    reason: "the Y minimum must be less than the Y maximum",
                });
            }
            (true, false) => self.max = self.min + delta(self.min),
            (false, true) => self.min = self.max - delta(self.max),
            (false, false) => {
                let d = delta(self.min.abs().max(self.max.abs()));
                let mid = (self.min + self.max) / 2.0;
                self.min = mid - d;
                self.max = mid + d;
            }
        }
        Ok(())
    }

    /// Candidate steps ≥ `min_step`: 1, 2, 5 × 10ⁿ (powers of two for binary units).
    fn steps(min_step: f64, binary: bool) -> impl Iterator<Item = f64> {
        let (base, mantissas): (f64, &[f64]) = if binary {
            (2.0, &[1.0])
        } else {
            (10.0, &[1.0, 2.0, 5.0])
        };
        let mut exponent = (min_step.log(base) - EPSILON).floor();
        std::iter::from_fn(move || {
            let m = base.powf(exponent);
            exponent += 1.0;
            Some(mantissas.iter().map(move |k| k * m))
        })
        .flatten()
        .filter(move |v| *v >= min_step * (1.0 - EPSILON))
    }

    fn slop(&self, step: f64, divisor: u32) -> Option<f64> {
        let bottom = step * (self.min / step + EPSILON).floor();
        let top = bottom + step * f64::from(divisor);
        (top >= self.max - EPSILON * step).then(|| (top - self.max).max(self.min - bottom))
    }

    /// The step whose 4/5/6 divisions cover the range with the least slop.
    fn choose_step(&mut self, divisors: &[u32], binary: bool) {
        if self.min == self.max {
            if self.min == 0.0 {
                self.max = 1.0;
            } else if self.min < 0.0 {
                self.min *= 1.1;
                self.max *= 0.9;
            } else {
                self.min *= 0.9;
                self.max *= 1.1;
            }
        }
        let divisors = if divisors.is_empty() {
            &[4, 5, 6][..]
        } else {
            divisors
        };
        let most = f64::from(*divisors.iter().max().unwrap_or(&6));
        let least = f64::from(*divisors.iter().min().unwrap_or(&4));
        let variance = self.max - self.min;
        let mut best: Option<(f64, f64)> = None;
        // Bounded: at most a few dozen candidates pass before the slop bound stops the loop.
        for step in Self::steps(variance / most, binary).take(200) {
            if let Some((slop, _)) = best
                && step * least >= 2.0 * slop + variance
            {
                break;
            }
            for &d in divisors {
                if let Some(s) = self.slop(step, d)
                    && best.is_none_or(|(b, _)| s < b)
                {
                    best = Some((s, step));
                }
            }
        }
        self.step = best.map(|(_, s)| s).or(Some(variance.max(1.0)));
    }

    fn choose_limits(&mut self) -> Result<(), GraphError> {
        if let Some(base) = self.log_base {
            if self.min <= 0.0 {
                return Err(GraphError::Axis {
                    reason: "Logarithmic scale specified with a dataset with a minimum value less than or equal to zero",
                });
            }
            self.bottom = base.powf(self.min.log(base).floor());
            self.top = base.powf(self.max.log(base).ceil());
            self.span = self.top - self.bottom;
            if self.span == 0.0 {
                self.top *= base;
                self.span = self.top - self.bottom;
            }
            return Ok(());
        }
        let step = self.step.unwrap_or(1.0);
        self.bottom = if self.min_source == Source::Data {
            step * (self.min / step + EPSILON).floor()
        } else {
            self.min
        };
        self.top = if self.max_source == Source::Data {
            let top = step * (self.max / step - EPSILON).ceil();
            match self.limit {
                Some(l) if top > l + EPSILON * step => l,
                _ => top,
            }
        } else {
            self.max
        };
        self.span = self.top - self.bottom;
        if self.span == 0.0 {
            self.top += 1.0;
            self.span += 1.0;
        }
        Ok(())
    }

    /// Values that get a label and a major grid line.
    pub fn label_values(&mut self) -> Result<Vec<f64>, GraphError> {
        if let Some(base) = self.log_base {
            let mut out = Vec::new();
            let mut v = base.powf((self.bottom.log(base) - EPSILON).ceil());
            while v < self.top * (1.0 + EPSILON) && out.len() < 1000 {
                out.push(v);
                v *= base;
            }
            return Ok(out);
        }
        let step = self.step.unwrap_or(1.0);
        if step <= 0.0 || !step.is_finite() {
            return Err(GraphError::Axis {
                reason: "The step size must be positive",
            });
        }
        if self.span > 1000.0 * step {
            self.choose_step(&[4, 5, 6], false);
        }
        let step = self.step.unwrap_or(1.0);
        let start = step * (self.bottom / step - EPSILON).ceil();
        let mut out = Vec::new();
        for i in 0..=1000 {
            let v = start + f64::from(i) * step;
            if v > self.top + EPSILON * step {
                break;
            }
            out.push(v);
        }
        Ok(out)
    }

    /// The text of a tick label (graphite-web's `makeLabel`, trailing space included).
    pub fn label(&self, value: f64) -> String {
        let (v, prefix) = format_units(value, self.step, self.unit);
        let (span, span_prefix) = format_units(self.span, self.step, self.unit);
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix} ")
        };
        // glyph.py compares the span's bare prefix with the value's spaced one, so any
        // prefixed label takes the "%.1f" branch.
        if v < 0.1 {
            format!("{} {prefix}", fmt_g(v))
        } else if v < 1.0 {
            format!("{v:.2} {prefix}")
        } else if span > 3.0 || span_prefix != prefix {
            // glyph.py: "%.1f" when the span exceeds 10 or the prefixes differ, and also
            // when it exceeds 3.
            format!("{v:.1} {prefix}")
        } else if span > 0.1 {
            format!("{v:.2} {prefix}")
        } else {
            format!("{} {prefix}", fmt_g(v))
        }
    }

    /// Pixel row of `value` between `ymin` (top) and `ymax` (bottom), given the label values;
    /// None for non-positive values on a log axis.
    pub fn coord(&self, value: f64, labels: &[f64], ymin: f64, ymax: f64) -> Option<f64> {
        let (lowest, highest) = if labels.is_empty() {
            (self.bottom, self.top)
        } else {
            labels
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                })
        };
        let (relative, range) = match self.log_base {
            Some(base) => {
                if value <= 0.0 {
                    return None;
                }
                (
                    value.log(base) - lowest.log(base),
                    highest.log(base) - lowest.log(base),
                )
            }
            None => (value - lowest, highest - lowest),
        };
        let range = if range == 0.0 { 1.0 } else { range };
        Some(ymax - (ymax - ymin) / range * relative)
    }

    /// Whether a minor grid value lies at or past the top (glyph.py's `yTopFactor` test).
    pub fn beyond_top(&self, value: f64) -> bool {
        let factor = self.log_base.map_or(1.0, |b| b * b);
        value >= factor * self.top
    }
}

fn finite(v: f64) -> Result<f64, GraphError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(GraphError::Axis {
            reason: "axis limits must be finite numbers",
        })
    }
}

/// Scales `v` into the largest prefix of the unit system that both it and `step` reach.
fn format_units(v: f64, step: Option<f64>, unit: UnitSystem) -> (f64, &'static str) {
    for &(prefix, size) in unit.prefixes() {
        if v.abs() >= size && step.is_none_or(|s| s >= size) {
            let mut v2 = v / size;
            if v2 - v2.floor() < 0.000_000_000_01 && v > 1.0 {
                v2 = v2.floor();
            }
            return (v2, prefix);
        }
    }
    let v = if v - v.floor() < 0.000_000_000_01 && v > 1.0 {
        v.floor()
    } else {
        v
    };
    (v, "")
}

/// Python's `%g` (6 significant digits).
pub(crate) fn fmt_g(v: f64) -> String {
    crate::pyfmt::python_percent_g(v, 6)
}

const SEC: i64 = 1;
const MIN: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// One row of the time-axis table: grid and label spacing for a resolution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct XAxisConfig {
    /// Smallest seconds-per-pixel this row is meant for.
    seconds: f64,
    pub minor: (i64, f64),
    pub major: (i64, f64),
    pub label: (i64, f64),
    pub format: &'static str,
    /// Longest time range the row suits (None: any).
    max_interval: Option<i64>,
}

const fn row(
    seconds: f64,
    minor: (i64, f64),
    major: (i64, f64),
    label: (i64, f64),
    format: &'static str,
    max_interval: Option<i64>,
) -> XAxisConfig {
    XAxisConfig {
        seconds,
        minor,
        major,
        label,
        format,
        max_interval,
    }
}

/// graphite-web 1.1.10's `xAxisConfigs` (DATE_FORMAT = `%m/%d`).
const X_AXIS: &[XAxisConfig] = &[
    row(
        0.0,
        (SEC, 5.0),
        (MIN, 1.0),
        (SEC, 5.0),
        "%H:%M:%S",
        Some(10 * MIN),
    ),
    row(
        0.07,
        (SEC, 10.0),
        (MIN, 1.0),
        (SEC, 10.0),
        "%H:%M:%S",
        Some(20 * MIN),
    ),
    row(
        0.14,
        (SEC, 15.0),
        (MIN, 1.0),
        (SEC, 15.0),
        "%H:%M:%S",
        Some(30 * MIN),
    ),
    row(
        0.27,
        (SEC, 30.0),
        (MIN, 2.0),
        (MIN, 1.0),
        "%H:%M",
        Some(2 * HOUR),
    ),
    row(
        0.5,
        (MIN, 1.0),
        (MIN, 2.0),
        (MIN, 1.0),
        "%H:%M",
        Some(2 * HOUR),
    ),
    row(
        1.2,
        (MIN, 1.0),
        (MIN, 4.0),
        (MIN, 2.0),
        "%H:%M",
        Some(3 * HOUR),
    ),
    row(
        2.0,
        (MIN, 1.0),
        (MIN, 10.0),
        (MIN, 5.0),
        "%H:%M",
        Some(6 * HOUR),
    ),
    row(
        5.0,
        (MIN, 2.0),
        (MIN, 10.0),
        (MIN, 10.0),
        "%H:%M",
        Some(12 * HOUR),
    ),
    row(
        10.0,
        (MIN, 5.0),
        (MIN, 20.0),
        (MIN, 20.0),
        "%H:%M",
        Some(DAY),
    ),
    row(
        30.0,
        (MIN, 10.0),
        (HOUR, 1.0),
        (HOUR, 1.0),
        "%H:%M",
        Some(2 * DAY),
    ),
    row(
        60.0,
        (MIN, 30.0),
        (HOUR, 2.0),
        (HOUR, 2.0),
        "%H:%M",
        Some(2 * DAY),
    ),
    row(
        100.0,
        (HOUR, 2.0),
        (HOUR, 4.0),
        (HOUR, 4.0),
        "%a %H:%M",
        Some(6 * DAY),
    ),
    row(
        255.0,
        (HOUR, 6.0),
        (HOUR, 12.0),
        (HOUR, 12.0),
        "%m/%d %H:%M",
        Some(10 * DAY),
    ),
    row(
        600.0,
        (HOUR, 6.0),
        (DAY, 1.0),
        (DAY, 1.0),
        "%m/%d",
        Some(14 * DAY),
    ),
    row(
        1000.0,
        (HOUR, 12.0),
        (DAY, 1.0),
        (DAY, 1.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    row(
        2000.0,
        (DAY, 1.0),
        (DAY, 2.0),
        (DAY, 2.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    row(
        4000.0,
        (DAY, 2.0),
        (DAY, 4.0),
        (DAY, 4.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    row(
        8000.0,
        (DAY, 3.5),
        (DAY, 7.0),
        (DAY, 7.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    row(
        16000.0,
        (DAY, 7.0),
        (DAY, 14.0),
        (DAY, 14.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    row(
        32000.0,
        (DAY, 15.0),
        (DAY, 30.0),
        (DAY, 30.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    row(
        64000.0,
        (DAY, 30.0),
        (DAY, 60.0),
        (DAY, 60.0),
        "%m/%d %Y",
        None,
    ),
    row(
        100_000.0,
        (DAY, 60.0),
        (DAY, 120.0),
        (DAY, 120.0),
        "%m/%d %Y",
        None,
    ),
    row(
        120_000.0,
        (DAY, 120.0),
        (DAY, 240.0),
        (DAY, 240.0),
        "%m/%d %Y",
        None,
    ),
];

/// The finest row whose resolution and range fit.
pub(crate) fn x_axis_config(seconds_per_pixel: f64, time_range: i64) -> XAxisConfig {
    X_AXIS
        .iter()
        .rev()
        .find(|c| c.seconds <= seconds_per_pixel && c.max_interval.is_none_or(|m| m >= time_range))
        .copied()
        .unwrap_or(X_AXIS[X_AXIS.len() - 1])
}

/// Tick times from the first multiple of `unit × step` (in local time) at or after `start`,
/// up to `end` exclusive (glyph.py's `find_x_times`).
pub(crate) fn x_times(
    start: i64,
    end: i64,
    (unit, step): (i64, f64),
    tz: &jiff::tz::TimeZone,
) -> Vec<i64> {
    let delta = (unit as f64 * step).round() as i64;
    if delta <= 0 {
        return Vec::new();
    }
    let Ok(ts) = jiff::Timestamp::from_second(start) else {
        return Vec::new();
    };
    let local = ts.to_zoned(tz.clone());
    let (h, m, s) = (
        i64::from(local.hour()),
        i64::from(local.minute()),
        i64::from(local.second()),
    );
    let whole = step as i64;
    let back = match unit {
        SEC => s % whole.max(1),
        MIN => s + 60 * (m % whole.max(1)),
        HOUR => s + 60 * m + 3600 * (h % whole.max(1)),
        _ => s + 60 * m + 3600 * h,
    };
    let mut t = start - back;
    while t < start {
        t += delta;
    }
    let mut out = Vec::new();
    while t < end && out.len() < 10_000 {
        out.push(t);
        t += delta;
    }
    out
}

/// strftime of `t` in `tz`.
pub(crate) fn format_time(t: i64, format: &str, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_second(t) {
        Ok(ts) => {
            let z = ts.to_zoned(tz.clone());
            jiff::fmt::strtime::format(format, &z).unwrap_or_default()
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(min: f64, max: f64) -> YAxis {
        YAxis::new(
            min,
            max,
            UnitSystem::Si,
            None,
            &AxisSettings::default(),
            &[4, 5, 6],
        )
        .unwrap()
    }

    #[test]
    fn linear_ticks_match_the_reference_images() {
        // ref-800x600-web-cpu-user-1d.png: data ~1.5..58 → 0, 10, ..., 60 labelled
        // "0", "10.0", ..., "60.0".
        let mut a = axis(1.5, 58.0);
        let labels = a.label_values().unwrap();
        assert_eq!(labels, vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
        let text: Vec<String> = labels.iter().map(|v| a.label(*v)).collect();
        assert_eq!(text[0].trim(), "0");
        assert_eq!(text[1].trim(), "10.0");
        assert_eq!(text[6].trim(), "60.0");
        // ref-default-330x250-titled-3h.png: data ~1..49 → 0..50 by 10.
        let mut a = axis(1.0, 49.0);
        assert_eq!(a.label_values().unwrap().last(), Some(&50.0));
    }

    #[test]
    fn unit_prefixes() {
        let mut a = axis(0.0, 3_500_000.0);
        let labels = a.label_values().unwrap();
        assert_eq!(a.label(labels[1]).trim(), "1.0 M");
        // Binary steps are powers of two; the prefix follows the step (0..8 Mi by 2 Mi).
        let mut b = YAxis::new(
            0.0,
            7.5 * 1024.0 * 1024.0,
            UnitSystem::Binary,
            None,
            &AxisSettings::default(),
            &[4, 5, 6],
        )
        .unwrap();
        let labels = b.label_values().unwrap();
        assert!(labels.iter().all(|v| v % 1024.0 == 0.0), "{labels:?}");
        assert_eq!(b.label(*labels.last().unwrap()), "8.0 Mi ");
        let c = YAxis::new(
            0.0,
            3_500_000.0,
            UnitSystem::None,
            None,
            &AxisSettings::default(),
            &[4, 5, 6],
        )
        .unwrap();
        assert_eq!(c.label(1_000_000.0).trim(), "1000000.0");
    }

    #[test]
    fn settings_fix_limits() {
        let s = AxisSettings {
            min: Some(-5.0),
            max: Some(AxisMax::Value(105.0)),
            ..Default::default()
        };
        let a = YAxis::new(3.0, 50.0, UnitSystem::Si, None, &s, &[4, 5, 6]).unwrap();
        assert_eq!((a.bottom, a.top), (-5.0, 105.0));
        let bad = AxisSettings {
            min: Some(10.0),
            max: Some(AxisMax::Value(5.0)),
            ..Default::default()
        };
        assert!(YAxis::new(0.0, 1.0, UnitSystem::Si, None, &bad, &[4, 5, 6]).is_err());
        // A flat series gets a range around it.
        let mut flat = axis(5.0, 5.0);
        let l = flat.label_values().unwrap();
        assert!(
            l.first().unwrap() <= &4.5 && l.last().unwrap() >= &5.5,
            "{l:?}"
        );
    }

    #[test]
    fn log_axis_uses_powers() {
        let mut a = YAxis::new(
            3.0,
            4500.0,
            UnitSystem::Si,
            Some(10.0),
            &AxisSettings::default(),
            &[4, 5, 6],
        )
        .unwrap();
        assert_eq!(
            a.label_values().unwrap(),
            vec![1.0, 10.0, 100.0, 1000.0, 10000.0]
        );
        let labels = a.label_values().unwrap();
        let y = a.coord(100.0, &labels, 0.0, 400.0).unwrap();
        assert!((y - 200.0).abs() < 1e-9);
        assert_eq!(a.coord(0.0, &labels, 0.0, 400.0), None);
        assert!(
            YAxis::new(
                0.0,
                1.0,
                UnitSystem::Si,
                Some(10.0),
                &AxisSettings::default(),
                &[4]
            )
            .is_err()
        );
    }

    #[test]
    fn python_g_format() {
        assert_eq!(fmt_g(0.0), "0");
        assert_eq!(fmt_g(0.05), "0.05");
        assert_eq!(fmt_g(1e-5), "1e-05");
        assert_eq!(fmt_g(123456.0), "123456");
        assert_eq!(fmt_g(1234567.0), "1.23457e+06");
        assert_eq!(fmt_g(-0.025), "-0.025");
    }

    #[test]
    fn time_axis_rows_follow_the_range() {
        // 1 day over ~750 px: "%a %H:%M" every 4 hours (the 800×600 reference image).
        let c = x_axis_config(86_400.0 / 750.0, 86_400);
        assert_eq!(c.format, "%a %H:%M");
        assert_eq!(c.label, (HOUR, 4.0));
        // 3 hours over ~250 px: hourly "%H:%M" (the 330×250 reference image).
        let c = x_axis_config(10_800.0 / 250.0, 10_800);
        assert_eq!((c.format, c.label), ("%H:%M", (HOUR, 1.0)));
        // Ten minutes over 6000 px: seconds in the labels.
        assert_eq!(x_axis_config(0.1, 600).format, "%H:%M:%S");
        assert_eq!(x_axis_config(2.0, 600).format, "%H:%M");
        assert_eq!(x_axis_config(600.0, 7 * DAY).format, "%m/%d");
        assert_eq!(x_axis_config(400_000.0, 5 * 365 * DAY).format, "%m/%d %Y");
    }

    #[test]
    fn time_ticks_are_aligned_in_local_time() {
        let utc = jiff::tz::TimeZone::UTC;
        // 2023-11-14 22:13:20 UTC; hourly ticks start at 23:00.
        let start = 1_700_000_000;
        let ticks = x_times(start, start + 3 * 3600, (HOUR, 1.0), &utc);
        assert_eq!(ticks.len(), 3);
        assert_eq!(format_time(ticks[0], "%H:%M", &utc), "23:00");
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let days = x_times(start, start + 3 * DAY, (DAY, 1.0), &berlin);
        assert!(
            days.iter()
                .all(|t| format_time(*t, "%H:%M", &berlin) == "00:00")
        );
        assert_eq!(format_time(days[0], "%a %m/%d", &berlin), "Wed 11/15");
    }
}
