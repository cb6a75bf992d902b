//! Counters to per-second rates with Munin/RRD semantics (spec §5.2) and the agent's
//! wrap/reset rules (spec §6.11). Pure: the caller passes the time of every sample.

use std::collections::HashMap;

/// How a raw value becomes a stored value (Munin's field `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Stored as is.
    Gauge,
    /// Difference over elapsed time; may be negative unless `min` forbids it.
    Derive,
    /// Like DERIVE, but a decrease from below 2^32 is taken as a 32-bit wrap (then 64-bit);
    /// a decrease from 2^32 or more is a reset (no value).
    Counter,
    /// Value over elapsed time (counters reset at every read).
    Absolute,
}

impl Kind {
    /// Parses a Munin `type` attribute (case-insensitive; unknown types are gauges, as the
    /// master does).
    pub(crate) fn from_munin(s: &str) -> Kind {
        if s.eq_ignore_ascii_case("DERIVE") {
            Kind::Derive
        } else if s.eq_ignore_ascii_case("COUNTER") {
            Kind::Counter
        } else if s.eq_ignore_ascii_case("ABSOLUTE") {
            Kind::Absolute
        } else {
            Kind::Gauge
        }
    }
}

/// A raw sample. /proc counters are exact integers; plugin values may be fractional or signed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Raw {
    Int(u64),
    Float(f64),
}

impl Raw {
    fn as_f64(self) -> f64 {
        match self {
            Raw::Int(v) => v as f64,
            Raw::Float(v) => v,
        }
    }

    /// Parses a Munin value: `U` is unknown (None), integers stay exact.
    pub(crate) fn parse_munin(s: &str) -> Option<Raw> {
        if let Ok(v) = s.parse::<u64>() {
            return Some(Raw::Int(v));
        }
        let v: f64 = s.parse().ok()?;
        v.is_finite().then_some(Raw::Float(v))
    }
}

/// Valid range of the stored value (Munin `min`/`max`); values outside become unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Limits {
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
}

impl Limits {
    /// `min 0`: the usual guard that turns counter resets into unknowns.
    pub(crate) const NON_NEGATIVE: Limits = Limits {
        min: Some(0.0),
        max: None,
    };

    fn admits(&self, v: f64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }
}

#[derive(Clone, Copy, Debug)]
struct Prev {
    raw: Raw,
    t: f64,
}

const TWO_32: f64 = 4_294_967_296.0;
const TWO_64: f64 = 18_446_744_073_709_551_616.0;

/// Last sample per series, and the rules to turn the next one into a rate.
#[derive(Debug, Default)]
pub(crate) struct RateTracker {
    prev: HashMap<String, Prev>,
    /// A gap longer than this (seconds) yields no value (RRD's heartbeat).
    max_gap: f64,
}

impl RateTracker {
    /// `max_gap`: twice the collection interval (spec §5.2: "drop when the gap exceeds twice
    /// the interval").
    pub(crate) fn new(max_gap: f64) -> Self {
        RateTracker {
            prev: HashMap::new(),
            max_gap,
        }
    }

    /// Records `raw` for `key` at time `t` (seconds) and returns the value to store, if any.
    pub(crate) fn update(
        &mut self,
        key: &str,
        kind: Kind,
        raw: Raw,
        t: f64,
        limits: Limits,
    ) -> Option<f64> {
        if kind == Kind::Gauge {
            let v = raw.as_f64();
            return limits.admits(v).then_some(v);
        }
        let prev = match self.prev.get_mut(key) {
            Some(p) => std::mem::replace(p, Prev { raw, t }),
            None => {
                self.prev.insert(key.to_owned(), Prev { raw, t });
                return None;
            }
        };
        let dt = t - prev.t;
        // NaN-safe: only a positive, finite, short enough gap gives a rate
        if dt.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || dt > self.max_gap {
            return None;
        }
        let rate = match kind {
            Kind::Gauge => return None,
            Kind::Absolute => raw.as_f64() / dt,
            Kind::Derive => delta(prev.raw, raw) / dt,
            Kind::Counter => {
                let d = delta(prev.raw, raw);
                if d >= 0.0 {
                    d / dt
                } else if prev.raw.as_f64() < TWO_32 {
                    // rrdtool: add 2^32; if still negative add 2^64 - 2^32.
                    let mut w = d + TWO_32;
                    if w < 0.0 {
                        w += TWO_64 - TWO_32;
                    }
                    w / dt
                } else {
                    return None;
                }
            }
        };
        limits.admits(rate).then_some(rate)
    }

    /// Forgets every series (the host rebooted: no delta spans a reboot, spec §6.11).
    pub(crate) fn reset_all(&mut self) {
        self.prev.clear();
    }

    /// Drops series last seen before `t` (interfaces that went away), bounding memory.
    pub(crate) fn prune_before(&mut self, t: f64) {
        self.prev.retain(|_, p| p.t >= t);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.prev.len()
    }
}

/// `cur - prev`, exact for integers.
fn delta(prev: Raw, cur: Raw) -> f64 {
    match (prev, cur) {
        (Raw::Int(a), Raw::Int(b)) => (i128::from(b) - i128::from(a)) as f64,
        (a, b) => b.as_f64() - a.as_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> RateTracker {
        RateTracker::new(20.0)
    }

    #[test]
    fn gauge_is_stored_as_is_within_limits() {
        let mut r = tracker();
        let lim = Limits {
            min: Some(0.0),
            max: Some(100.0),
        };
        assert_eq!(
            r.update("g", Kind::Gauge, Raw::Float(12.5), 0.0, lim),
            Some(12.5)
        );
        assert_eq!(
            r.update("g", Kind::Gauge, Raw::Float(101.0), 1.0, lim),
            None
        );
        assert_eq!(r.len(), 0, "gauges keep no state");
    }

    #[test]
    fn derive_first_sample_only_establishes_the_base() {
        // spec §5.2 example: if_lo.down raw bytes become bytes per second.
        let mut r = tracker();
        let k = Kind::Derive;
        let l = Limits::NON_NEGATIVE;
        assert_eq!(r.update("d", k, Raw::Int(1000), 0.0, l), None);
        assert_eq!(r.update("d", k, Raw::Int(3000), 10.0, l), Some(200.0));
        assert_eq!(r.update("d", k, Raw::Int(3000), 20.0, l), Some(0.0));
    }

    #[test]
    fn derive_reset_with_min_zero_gives_no_value_then_resumes() {
        let mut r = tracker();
        let l = Limits::NON_NEGATIVE;
        r.update("d", Kind::Derive, Raw::Int(5_000_000_000), 0.0, l);
        assert_eq!(r.update("d", Kind::Derive, Raw::Int(10), 10.0, l), None);
        assert_eq!(
            r.update("d", Kind::Derive, Raw::Int(110), 20.0, l),
            Some(10.0)
        );
    }

    #[test]
    fn derive_without_min_may_be_negative() {
        let mut r = tracker();
        r.update("d", Kind::Derive, Raw::Int(100), 0.0, Limits::default());
        assert_eq!(
            r.update("d", Kind::Derive, Raw::Int(50), 10.0, Limits::default()),
            Some(-5.0)
        );
    }

    #[test]
    fn counter_wraps_at_32_bits() {
        let mut r = tracker();
        let l = Limits::default();
        r.update("c", Kind::Counter, Raw::Int(4_294_967_000), 0.0, l);
        // wrapped: 4294967296 - 4294967000 + 704 = 1000 over 10 s
        assert_eq!(
            r.update("c", Kind::Counter, Raw::Int(704), 10.0, l),
            Some(100.0)
        );
    }

    #[test]
    fn counter_wrap_beyond_max_is_a_reset() {
        let mut r = tracker();
        let l = Limits {
            min: None,
            max: Some(1000.0),
        };
        r.update("c", Kind::Counter, Raw::Int(1_000_000), 0.0, l);
        // a wrap would imply ~429 MB/s: implausible against max 1000/s, so no value.
        assert_eq!(r.update("c", Kind::Counter, Raw::Int(5), 10.0, l), None);
    }

    #[test]
    fn counter_decrease_from_64_bit_range_is_a_reset() {
        let mut r = tracker();
        let l = Limits::default();
        r.update("c", Kind::Counter, Raw::Int(10_000_000_000), 0.0, l);
        assert_eq!(r.update("c", Kind::Counter, Raw::Int(3), 10.0, l), None);
    }

    #[test]
    fn counter_near_u64_max_is_exact() {
        let mut r = tracker();
        let l = Limits::default();
        r.update("c", Kind::Counter, Raw::Int(u64::MAX - 100), 0.0, l);
        assert_eq!(
            r.update("c", Kind::Counter, Raw::Int(u64::MAX), 10.0, l),
            Some(10.0)
        );
    }

    #[test]
    fn absolute_is_value_over_time() {
        let mut r = tracker();
        let l = Limits::default();
        assert_eq!(r.update("a", Kind::Absolute, Raw::Int(50), 0.0, l), None);
        assert_eq!(
            r.update("a", Kind::Absolute, Raw::Int(50), 10.0, l),
            Some(5.0)
        );
    }

    #[test]
    fn gap_longer_than_heartbeat_gives_no_value() {
        let mut r = tracker();
        let l = Limits::NON_NEGATIVE;
        r.update("d", Kind::Derive, Raw::Int(0), 0.0, l);
        assert_eq!(r.update("d", Kind::Derive, Raw::Int(100), 25.0, l), None);
        assert_eq!(
            r.update("d", Kind::Derive, Raw::Int(200), 35.0, l),
            Some(10.0)
        );
    }

    #[test]
    fn same_or_earlier_time_gives_no_value() {
        let mut r = tracker();
        let l = Limits::NON_NEGATIVE;
        r.update("d", Kind::Derive, Raw::Int(0), 5.0, l);
        assert_eq!(r.update("d", Kind::Derive, Raw::Int(100), 5.0, l), None);
    }

    #[test]
    fn reboot_forgets_everything_and_prune_bounds_memory() {
        let mut r = tracker();
        let l = Limits::NON_NEGATIVE;
        r.update("a", Kind::Derive, Raw::Int(0), 0.0, l);
        r.update("b", Kind::Derive, Raw::Int(0), 10.0, l);
        r.prune_before(5.0);
        assert_eq!(r.len(), 1);
        r.reset_all();
        assert_eq!(r.update("b", Kind::Derive, Raw::Int(100), 20.0, l), None);
    }

    #[test]
    fn munin_values() {
        assert_eq!(Raw::parse_munin("42"), Some(Raw::Int(42)));
        assert_eq!(Raw::parse_munin("-1.5"), Some(Raw::Float(-1.5)));
        assert_eq!(Raw::parse_munin("1e+06"), Some(Raw::Float(1e6)));
        assert_eq!(Raw::parse_munin("U"), None);
        assert_eq!(Raw::parse_munin("nan"), None);
        assert_eq!(Kind::from_munin("derive"), Kind::Derive);
        assert_eq!(Kind::from_munin("BOGUS"), Kind::Gauge);
    }
}
