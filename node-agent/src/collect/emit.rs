//! Turns collector values into StatsD or Carbon lines, through the rate tracker.
//!
//! Naming scheme (spec §7): `<prefix>.<area>.<instance>.<quantity>`, base units (bytes,
//! seconds), counters sent as per-second rates. Instance names that are not path-safe are
//! escaped reversibly by [`escape_component`].

use std::fmt::{self, Write as _};

use crate::rate::{Kind, Limits, RateTracker, Raw};

/// Wire format of the lines written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineFormat {
    /// `name:value|g` (a negative gauge is sent as `name:0|g` then `name:-v|g`, because a
    /// leading sign means "adjust" to StatsD).
    Statsd,
    /// `name value timestamp`.
    Carbon {
        /// Unix seconds of the round.
        timestamp: i64,
    },
}

/// Writes one round's values as lines into `out`.
pub(crate) struct Emitter<'a> {
    rates: &'a mut RateTracker,
    /// Monotonic seconds of this round (rates divide by differences of it).
    t: f64,
    prefix: &'a str,
    format: LineFormat,
    out: &'a mut String,
    /// Scratch for the name being built; reused.
    name: String,
    /// Lines written.
    lines: usize,
}

impl<'a> Emitter<'a> {
    pub(crate) fn new(
        rates: &'a mut RateTracker,
        t: f64,
        prefix: &'a str,
        format: LineFormat,
        out: &'a mut String,
    ) -> Self {
        Emitter {
            rates,
            t,
            prefix,
            format,
            out,
            name: String::with_capacity(128),
            lines: 0,
        }
    }

    pub(crate) fn lines(&self) -> usize {
        self.lines
    }

    /// A value sent as is.
    pub(crate) fn gauge(&mut self, name: fmt::Arguments<'_>, v: f64) {
        self.set_name(name);
        self.write_line(v, None);
    }

    /// A monotonically increasing counter sent as `scale ×` its per-second rate; a decrease is a
    /// reset (no value), since /proc counters are 64-bit on 64-bit kernels (spec §6.11).
    pub(crate) fn counter(&mut self, name: fmt::Arguments<'_>, raw: u64, scale: f64) {
        self.set_name(name);
        if let Some(rate) = self.rates.update(
            &self.name,
            Kind::Derive,
            Raw::Int(raw),
            self.t,
            Limits::NON_NEGATIVE,
        ) {
            self.write_line(rate * scale, None);
        }
    }

    /// A counter that may wrap at 32 bits (driver statistics): a decrease from below 2^32 is a
    /// wrap only if the implied rate is at most `max_rate` (e.g. the link speed), else a reset.
    pub(crate) fn counter_wrapping(
        &mut self,
        name: fmt::Arguments<'_>,
        raw: u64,
        max_rate: Option<f64>,
    ) {
        self.set_name(name);
        let (kind, limits) = match max_rate {
            Some(max) => (
                Kind::Counter,
                Limits {
                    min: Some(0.0),
                    max: Some(max),
                },
            ),
            None => (Kind::Derive, Limits::NON_NEGATIVE),
        };
        if let Some(rate) = self
            .rates
            .update(&self.name, kind, Raw::Int(raw), self.t, limits)
        {
            self.write_line(rate, None);
        }
    }

    /// A Munin field value with its type and limits (script plugins); `at` is the plugin's
    /// `epoch:` timestamp when it gave one (used for the rate and the Carbon timestamp).
    pub(crate) fn munin_value(
        &mut self,
        name: fmt::Arguments<'_>,
        kind: Kind,
        raw: Raw,
        limits: Limits,
        at: Option<i64>,
    ) {
        self.set_name(name);
        let t = at.map_or(self.t, |e| e as f64);
        if let Some(v) = self.rates.update(&self.name, kind, raw, t, limits) {
            self.write_line(v, at);
        }
    }

    fn set_name(&mut self, name: fmt::Arguments<'_>) {
        self.name.clear();
        let _ = self.name.write_fmt(name);
    }

    fn write_line(&mut self, v: f64, at: Option<i64>) {
        if !v.is_finite() {
            return;
        }
        let (p, n) = (self.prefix, &self.name);
        match self.format {
            LineFormat::Statsd => {
                if v < 0.0 {
                    let _ = writeln!(self.out, "{p}.{n}:0|g");
                    self.lines += 1;
                }
                let _ = writeln!(self.out, "{p}.{n}:{v}|g");
            }
            LineFormat::Carbon { timestamp } => {
                let ts = at.unwrap_or(timestamp);
                let _ = writeln!(self.out, "{p}.{n} {v} {ts}");
            }
        }
        self.lines += 1;
    }
}

/// Escapes a name for use as one Graphite path component, reversibly: bytes other than
/// `[A-Za-z0-9_-]` become `%XX`. For mount points (`slash_as_underscore`), `/` becomes `_`
/// and a literal `_` is escaped, so `/` → `_`, `/var/lib` → `_var_lib`, `/mnt/my_disk` →
/// `_mnt_my%5Fdisk`.
pub(crate) fn escape_component(name: &str, slash_as_underscore: bool) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for b in name.bytes() {
        match b {
            b'/' if slash_as_underscore => out.push('_'),
            b'_' if slash_as_underscore => out.push_str("%5F"),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carbon_and_statsd_lines() {
        let mut rates = RateTracker::new(20.0);
        let mut out = String::new();
        let mut e = Emitter::new(
            &mut rates,
            0.0,
            "servers.vm",
            LineFormat::Carbon {
                timestamp: 1700000000,
            },
            &mut out,
        );
        e.gauge(format_args!("load.load1"), 0.5);
        e.counter(format_args!("kernel.interrupts"), 100, 1.0);
        assert_eq!(e.lines(), 1, "first counter sample has no rate");
        assert_eq!(out, "servers.vm.load.load1 0.5 1700000000\n");

        let mut out = String::new();
        let mut e = Emitter::new(&mut rates, 10.0, "p", LineFormat::Statsd, &mut out);
        e.counter(format_args!("kernel.interrupts"), 300, 1.0);
        e.gauge(format_args!("temp"), -4.5);
        assert_eq!(out, "p.kernel.interrupts:20|g\np.temp:0|g\np.temp:-4.5|g\n");
    }

    #[test]
    fn munin_values_with_epoch_use_it() {
        let mut rates = RateTracker::new(20.0);
        let mut out = String::new();
        let mut e = Emitter::new(
            &mut rates,
            0.0,
            "p",
            LineFormat::Carbon { timestamp: 99 },
            &mut out,
        );
        e.munin_value(
            format_args!("munin.t.c"),
            Kind::Gauge,
            Raw::Int(5),
            Limits::default(),
            Some(1700000000),
        );
        assert_eq!(out, "p.munin.t.c 5 1700000000\n");
    }

    #[test]
    fn escaping_is_reversible_and_path_safe() {
        assert_eq!(escape_component("/", true), "_");
        assert_eq!(escape_component("/var/lib", true), "_var_lib");
        assert_eq!(escape_component("/mnt/my_disk", true), "_mnt_my%5Fdisk");
        assert_eq!(escape_component("/mnt/a b.c", true), "_mnt_a%20b%2Ec");
        assert_eq!(escape_component("eth0.100", false), "eth0%2E100");
        assert_eq!(escape_component("cciss/c0d0", false), "cciss%2Fc0d0");
        assert_eq!(escape_component("dm-0", false), "dm-0");
        assert_eq!(escape_component("veth_x", false), "veth_x");
    }
}
