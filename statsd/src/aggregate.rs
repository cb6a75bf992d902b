//! Aggregation: per-worker shards that ingest without contention, a master table merged at
//! flush time, and the flush itself (Etsy's `process_metrics` + graphite backend + reset,
//! spec §6–§10).
//!
//! Counters, timers and sets go to the worker's own shard (a mutex only the flusher ever
//! contends for, once per flush). Gauges depend on arrival order (deltas), so each worker
//! buffers its batch's gauge operations and applies them to one shared table under a short
//! lock per batch. The flusher swaps each shard for an empty one (ingest continues at once)
//! and merges into the master table, which holds the state that outlives a flush.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::config::Config;
use crate::error::ConfigError;
use crate::flush::{Flush, FlushWriter, Names};
use crate::jsnum::js_number_string;
use crate::parser::{DogKind, Kind, LineHandler, LineParser, ParseOptions, Sample};
use crate::stats::{LogLimiter, Stats};

type Map<V> = hashbrown::HashMap<Box<str>, V>;
type MemberSet = hashbrown::HashSet<Box<str>>;

/// A key looked up on the ingest path. It hashes exactly like the `str` it wraps (so it
/// finds what `&str` lookups find) but compares keys with inline word loads instead of a
/// `memcmp` call, which showed up as a tenth of the ingest profile.
struct Lookup<'a>(&'a str);

impl std::hash::Hash for Lookup<'_> {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl hashbrown::Equivalent<Box<str>> for Lookup<'_> {
    #[inline]
    fn equivalent(&self, key: &Box<str>) -> bool {
        same_bytes(self.0.as_bytes(), key.as_bytes())
    }
}

#[inline]
fn word(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_ne_bytes(w)
}

/// `a == b` for short byte strings without a library call.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let mut i = 0;
    while i + 8 < n {
        if word(a, i) != word(b, i) {
            return false;
        }
        i += 8;
    }
    // The last (possibly overlapping) word.
    word(a, n - 8) == word(b, n - 8)
}

/// How the bytes of a packet become text (spec §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UDP: UTF-8, invalid sequences become U+FFFD.
    Utf8,
    /// TCP: Node's `ascii` decoding (the high bit of every byte is cleared).
    Ascii,
}

/// A counter's value and when its key was first inserted.
#[derive(Debug, Clone, Copy)]
struct Counter {
    value: f64,
    /// Insertion stamp (see [`Aggregator::order`]).
    seq: u64,
}

#[derive(Debug, Default)]
struct TimerAcc {
    samples: Vec<f64>,
    /// Sample-rate-weighted count.
    count: f64,
    /// Insertion stamp (see [`Aggregator::order`]).
    seq: u64,
}

/// What one worker accumulated since the last flush.
#[derive(Debug, Default)]
struct Shard {
    counters: Map<Counter>,
    timers: Map<TimerAcc>,
    sets: Map<MemberSet>,
    packets: u64,
    lines: u64,
    bad: u64,
}

impl Shard {
    fn names(&self) -> usize {
        self.counters.len() + self.timers.len() + self.sets.len()
    }

    fn clear(&mut self) {
        self.counters.clear();
        self.timers.clear();
        self.sets.clear();
        self.packets = 0;
        self.lines = 0;
        self.bad = 0;
        // Do not keep the capacity of a burst forever.
        if self.counters.capacity() > 65_536 {
            self.counters.shrink_to(1024);
        }
        if self.timers.capacity() > 65_536 {
            self.timers.shrink_to(1024);
        }
        if self.sets.capacity() > 65_536 {
            self.sets.shrink_to(1024);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Gauge {
    value: f64,
    /// Flushes left with `delete_gauges` (0 = no TTL entry).
    ttl: u32,
    /// Insertion stamp (see [`Aggregator::order`]).
    seq: u64,
}

#[derive(Debug, Clone, Copy)]
struct GaugeOp {
    key_end: usize,
    value: f64,
    signed: bool,
}

/// A batch's gauge operations, in arrival order, with their keys in one buffer.
#[derive(Debug, Default)]
struct GaugeOps {
    keys: String,
    ops: Vec<GaugeOp>,
}

#[derive(Debug, Clone, Copy)]
struct GraphiteStats {
    last_flush: i64,
    last_exception: i64,
    flush_time: f64,
    flush_length: usize,
}

#[derive(Debug)]
struct Master {
    /// The settings flushes use; replaced between flushes by [`Aggregator::reconfigure`].
    c: Arc<Compiled>,
    counters: Map<Counter>,
    timers: Map<TimerAcc>,
    sets: Map<MemberSet>,
    spares: Vec<Shard>,
    prev_ts: Option<i64>,
    graphite: GraphiteStats,
    cum: Vec<f64>,
    cumsq: Vec<f64>,
}

/// A percentile threshold with its output names (spec §8.2).
#[derive(Debug)]
struct Pct {
    positive: bool,
    frac: f64,
    /// count_X, mean_X, upper_X|lower_X, sum_X, sum_squares_X
    names: [String; 5],
    keep: [bool; 5],
}

#[derive(Debug, Default)]
struct TimerKeep {
    std: bool,
    upper: bool,
    lower: bool,
    count: bool,
    count_ps: bool,
    sum: bool,
    sum_squares: bool,
    mean: bool,
    median: bool,
    histogram: bool,
}

#[derive(Debug)]
struct HistRule {
    metric: String,
    bins: Vec<(Option<f64>, String)>,
}

/// Config turned into what the flush needs.
#[derive(Debug)]
pub(crate) struct Compiled {
    config: Config,
    names: Names,
    interval_s: f64,
    pcts: Vec<Pct>,
    keep: TimerKeep,
    hist: Vec<HistRule>,
    delete_counters: bool,
    delete_timers: bool,
    delete_gauges: bool,
    delete_sets: bool,
    gauge_ttl: u32,
    key_bad: String,
    key_packets: String,
    key_metrics: String,
    key_lag: String,
    parse: ParseOptions,
}

/// §8.4: `upper_90` → `upper_percent`, `count_top10` → `count_percent`.
fn filter_name(name: &str) -> String {
    if let Some(i) = name.rfind('_') {
        let rest = &name[i + 1..];
        let digits = rest.strip_prefix("top").unwrap_or(rest);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return format!("{}_percent", &name[..i]);
        }
    }
    name.to_string()
}

impl Compiled {
    /// How often flushes with these settings happen.
    pub(crate) fn flush_interval(&self) -> std::time::Duration {
        self.config.flush_interval
    }

    pub(crate) fn new(config: Config) -> Result<Compiled, ConfigError> {
        config.validate()?;
        let list = &config.calculated_timer_metrics;
        let keep = |name: &str| list.is_empty() || list.iter().any(|m| *m == filter_name(name));
        let mut pcts: Vec<Pct> = Vec::new();
        for &pct in &config.percent_threshold {
            let clean = js_number_string(pct)
                .replacen('.', "_", 1)
                .replacen('-', "top", 1);
            let bound = if pct > 0.0 { "upper_" } else { "lower_" };
            let names = [
                format!("count_{clean}"),
                format!("mean_{clean}"),
                format!("{bound}{clean}"),
                format!("sum_{clean}"),
                format!("sum_squares_{clean}"),
            ];
            // The reference stores these in an object: a repeated name keeps one entry.
            if pcts.iter().any(|p| p.names == names) {
                continue;
            }
            let keep = [
                keep(&names[0]),
                keep(&names[1]),
                keep(&names[2]),
                keep(&names[3]),
                keep(&names[4]),
            ];
            pcts.push(Pct {
                positive: pct > 0.0,
                frac: pct.abs() / 100.0,
                names,
                keep,
            });
        }
        let tk = TimerKeep {
            std: keep("std"),
            upper: keep("upper"),
            lower: keep("lower"),
            count: keep("count"),
            count_ps: keep("count_ps"),
            sum: keep("sum"),
            sum_squares: keep("sum_squares"),
            mean: keep("mean"),
            median: keep("median"),
            histogram: keep("histogram"),
        };
        let hist = config
            .histogram
            .iter()
            .map(|r| HistRule {
                metric: r.metric.clone(),
                bins: r.bins.iter().map(|b| (b.bound(), b.name())).collect(),
            })
            .collect();
        let (dc, dt, dg, ds) = config.deletes();
        let p = &config.prefix_stats;
        let ms = config.flush_interval.as_nanos() as f64 / 1e6;
        Ok(Compiled {
            names: Names::new(&config),
            interval_s: ms / 1000.0,
            pcts,
            keep: tk,
            hist,
            delete_counters: dc,
            delete_timers: dt,
            delete_gauges: dg,
            delete_sets: ds,
            gauge_ttl: config.gauge_ttl(),
            key_bad: format!("{p}.bad_lines_seen"),
            key_packets: format!("{p}.packets_received"),
            key_metrics: format!("{p}.metrics_received"),
            key_lag: format!("{p}.timestamp_lag"),
            parse: ParseOptions {
                sanitize: config.key_name_sanitize,
                dogstatsd: config.dogstatsd,
            },
            config,
        })
    }
}

/// The aggregation state of one StatsD server.
#[derive(Debug)]
pub struct Aggregator {
    // Ingest-side settings, fixed for the server's life (the parser options live in each
    // ingester); the flush-side ones are in `Master::c`.
    parse: ParseOptions,
    dump_messages: bool,
    max_names: usize,
    /// Flushes a new gauge lives without updates; 0 when idle gauges are kept forever.
    gauge_ttl: AtomicU32,
    shards: Box<[Mutex<Shard>]>,
    gauges: Mutex<Map<Gauge>>,
    master: Mutex<Master>,
    live_names: AtomicUsize,
    /// Stamps each key when it is inserted into a table, so the admin dumps can list keys
    /// in the reference's order (JavaScript object order: first insertion). Taken only
    /// when a key is new to a table, never per sample.
    order: AtomicU64,
    stats: Arc<Stats>,
    start_time: i64,
}

/// JavaScript's own-property order for a key: array indices (canonical decimal integers
/// below 2^32 - 1) first, ascending; then every other key by insertion.
fn js_key_order(key: &str, seq: u64) -> (bool, u64, u64) {
    let b = key.as_bytes();
    let canonical = !b.is_empty()
        && b.len() <= 10
        && b.iter().all(u8::is_ascii_digit)
        && (b[0] != b'0' || b.len() == 1);
    match key.parse::<u64>() {
        Ok(i) if canonical && i < u64::from(u32::MAX) => (false, i, 0),
        _ => (true, 0, seq),
    }
}

/// `entries` sorted into JavaScript object order by their insertion stamps.
fn in_js_order<T>(mut entries: Vec<(String, u64, T)>) -> Vec<(String, T)> {
    entries.sort_by_key(|(k, seq, _)| js_key_order(k, *seq));
    entries.into_iter().map(|(k, _, v)| (k, v)).collect()
}

/// The TTL new gauges get: 0 (kept forever) unless idle gauges are deleted.
fn gauge_ttl(c: &Compiled) -> u32 {
    if c.delete_gauges { c.gauge_ttl } else { 0 }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock is a bug elsewhere; the data is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// JavaScript `Math.round(ms / 1000)` for the times we see (positive).
pub(crate) fn round_secs(ms: i64) -> i64 {
    (ms as f64 / 1000.0).round() as i64
}

impl Aggregator {
    /// A new aggregator with `shards` ingest shards (one per worker is best; ingesters
    /// created for the same shard share it). `now_ms` is the start time (Unix ms).
    pub fn new(config: Config, shards: usize, now_ms: i64) -> Result<Aggregator, ConfigError> {
        let c = Arc::new(Compiled::new(config)?);
        let shards = shards.max(1);
        let mut counters = Map::default();
        for (seq, k) in [&c.key_bad, &c.key_packets, &c.key_metrics]
            .into_iter()
            .enumerate()
        {
            let seq = seq as u64;
            counters.insert(k.clone().into_boxed_str(), Counter { value: 0.0, seq });
        }
        let start_time = round_secs(now_ms);
        Ok(Aggregator {
            live_names: AtomicUsize::new(3),
            order: AtomicU64::new(3),
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            gauges: Mutex::new(Map::default()),
            parse: c.parse,
            dump_messages: c.config.dump_messages,
            max_names: c.config.max_names,
            gauge_ttl: AtomicU32::new(gauge_ttl(&c)),
            master: Mutex::new(Master {
                c: Arc::clone(&c),
                counters,
                timers: Map::default(),
                sets: Map::default(),
                spares: (0..shards).map(|_| Shard::default()).collect(),
                prev_ts: None,
                graphite: GraphiteStats {
                    last_flush: start_time,
                    last_exception: 0,
                    flush_time: 0.0,
                    flush_length: 0,
                },
                cum: Vec::new(),
                cumsq: Vec::new(),
            }),
            stats: Arc::new(Stats::default()),
            start_time,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        lock(&self.master).c.config.clone()
    }

    /// Makes flushes from now on use `c` (called between flushes). The internal counters
    /// are created anew under their names, as the reference does on a config reload.
    pub(crate) fn reconfigure(&self, c: Arc<Compiled>) {
        let mut m = lock(&self.master);
        self.gauge_ttl.store(gauge_ttl(&c), Ordering::Relaxed);
        for k in [&c.key_bad, &c.key_packets, &c.key_metrics] {
            if !m.counters.contains_key(k.as_str()) {
                self.live_names.fetch_add(1, Ordering::Relaxed);
                let counter = Counter {
                    value: 0.0,
                    seq: self.next_seq(),
                };
                m.counters.insert(k.clone().into_boxed_str(), counter);
            }
        }
        m.c = c;
    }

    /// Lifetime counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Start time, Unix seconds.
    pub fn start_time(&self) -> i64 {
        self.start_time
    }

    /// Number of ingest shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// An ingest handle writing to shard `shard % shard_count()`.
    pub fn ingester(self: &Arc<Self>, shard: usize) -> Ingester {
        Ingester {
            parser: LineParser::new(self.parse),
            shard: shard % self.shards.len(),
            agg: Arc::clone(self),
            gauge_ops: GaugeOps::default(),
            decoded: String::new(),
            log: LogLimiter::new(),
        }
    }

    fn next_seq(&self) -> u64 {
        self.order.fetch_add(1, Ordering::Relaxed)
    }

    fn name_room(&self) -> bool {
        self.live_names.load(Ordering::Relaxed) < self.max_names
    }

    fn apply_gauges(&self, ops: &mut GaugeOps) {
        if ops.ops.is_empty() {
            return;
        }
        let mut dropped = 0;
        {
            let ttl = self.gauge_ttl.load(Ordering::Relaxed);
            let mut g = lock(&self.gauges);
            let mut start = 0;
            for op in &ops.ops {
                let key = &ops.keys[start..op.key_end];
                start = op.key_end;
                match g.get_mut(key) {
                    Some(e) => {
                        // Spec §6: a delta applies only to an existing non-zero, non-NaN gauge.
                        if op.signed && e.value != 0.0 && !e.value.is_nan() {
                            e.value += op.value;
                        } else {
                            e.value = op.value;
                        }
                        if ttl > 0 {
                            e.ttl = ttl;
                        }
                    }
                    None => {
                        if self.name_room() {
                            self.live_names.fetch_add(1, Ordering::Relaxed);
                            g.insert(
                                key.into(),
                                Gauge {
                                    value: op.value,
                                    ttl,
                                    seq: self.next_seq(),
                                },
                            );
                        } else {
                            dropped += 1;
                        }
                    }
                }
            }
        }
        Stats::add(&self.stats.names_dropped, dropped);
        ops.ops.clear();
        ops.keys.clear();
    }

    /// Moves every shard's data into the master table.
    fn collect(&self, m: &mut Master) {
        let mut dropped = 0u64;
        for (i, shard) in self.shards.iter().enumerate() {
            let mut data = std::mem::take(&mut m.spares[i]);
            std::mem::swap(&mut *lock(shard), &mut data);
            for (k, v) in data.counters.drain() {
                match m.counters.get_mut(&k) {
                    Some(c) => {
                        if c.value.is_nan() {
                            c.value = 0.0;
                        }
                        c.value += v.value;
                        c.seq = c.seq.min(v.seq);
                    }
                    None if self.name_room() => {
                        self.live_names.fetch_add(1, Ordering::Relaxed);
                        m.counters.insert(k, v);
                    }
                    None => dropped += 1,
                }
            }
            for (k, mut t) in data.timers.drain() {
                match m.timers.get_mut(&k) {
                    Some(mt) => {
                        if mt.samples.is_empty() {
                            std::mem::swap(&mut mt.samples, &mut t.samples);
                        } else {
                            mt.samples.extend_from_slice(&t.samples);
                        }
                        mt.count += t.count;
                        mt.seq = mt.seq.min(t.seq);
                    }
                    None if self.name_room() => {
                        self.live_names.fetch_add(1, Ordering::Relaxed);
                        m.timers.insert(k, t);
                    }
                    None => dropped += 1,
                }
            }
            for (k, mut s) in data.sets.drain() {
                match m.sets.get_mut(&k) {
                    Some(ms) => {
                        if ms.is_empty() {
                            std::mem::swap(ms, &mut s);
                        } else {
                            ms.extend(s.drain());
                        }
                    }
                    None if self.name_room() => {
                        self.live_names.fetch_add(1, Ordering::Relaxed);
                        m.sets.insert(k, s);
                    }
                    None => dropped += 1,
                }
            }
            // The reference's `counters[k]++` on a deleted key gives NaN (spec §13).
            let c = Arc::clone(&m.c);
            for (key, n) in [
                (&c.key_packets, data.packets),
                (&c.key_metrics, data.lines),
                (&c.key_bad, data.bad),
            ] {
                if n == 0 {
                    continue;
                }
                match m.counters.get_mut(key.as_str()) {
                    Some(c) => c.value += n as f64,
                    None => {
                        self.live_names.fetch_add(1, Ordering::Relaxed);
                        let c = Counter {
                            value: f64::NAN,
                            seq: self.next_seq(),
                        };
                        m.counters.insert(key.clone().into_boxed_str(), c);
                    }
                }
            }
            data.clear();
            m.spares[i] = data;
        }
        Stats::add(&self.stats.names_dropped, dropped);
    }

    /// Computes one flush at `now_ms` (Unix ms) and resets the interval's state as the
    /// reference does after its backends ran (spec §8, §9).
    pub fn flush(&self, now_ms: i64) -> Flush {
        let ts = round_secs(now_ms);
        let mut guard = lock(&self.master);
        let c = Arc::clone(&guard.c);
        let m = &mut *guard;
        if let Some(prev) = m.prev_ts {
            let lag = (ts - prev) as f64 - c.interval_s;
            let mut g = lock(&self.gauges);
            match g.get_mut(c.key_lag.as_str()) {
                Some(e) => e.value = lag,
                None => {
                    self.live_names.fetch_add(1, Ordering::Relaxed);
                    let gauge = Gauge {
                        value: lag,
                        ttl: 0,
                        seq: self.next_seq(),
                    };
                    g.insert(c.key_lag.clone().into_boxed_str(), gauge);
                }
            }
        }
        m.prev_ts = Some(ts);
        self.collect(m);
        let started = Instant::now();
        let names = &c.names;
        let estimate = m.counters.len() * 2 + m.timers.len() * 16 + m.sets.len() + 512;
        let mut w = FlushWriter::new(names, ts, estimate);
        let mut num_stats = 0u64;

        for (k, &Counter { value: v, .. }) in &m.counters {
            let rate = v / c.interval_s;
            if names.legacy {
                w.metric(&names.counter, k, &[], rate);
                if c.config.flush_counts {
                    w.metric(&names.counts, k, &[], v);
                }
            } else {
                w.metric(&names.counter, k, &["rate"], rate);
                if c.config.flush_counts {
                    w.metric(&names.counter, k, &["count"], v);
                }
            }
            num_stats += 1;
        }
        let (mut cum, mut cumsq) = (std::mem::take(&mut m.cum), std::mem::take(&mut m.cumsq));
        for (k, t) in m.timers.iter_mut() {
            write_timer(&mut w, &c, k, t, &mut cum, &mut cumsq);
            num_stats += 1;
        }
        cum.clear();
        cumsq.clear();
        m.cum = cum;
        m.cumsq = cumsq;
        let processing_ms = started.elapsed().as_millis() as f64;
        {
            let mut g = lock(&self.gauges);
            for (k, e) in g.iter() {
                w.metric(&names.gauge, k, &[], e.value);
                num_stats += 1;
            }
            if c.delete_gauges {
                let before = g.len();
                g.retain(|_, e| {
                    if e.ttl == 0 {
                        return true;
                    }
                    e.ttl -= 1;
                    e.ttl >= 1
                });
                self.live_names
                    .fetch_sub(before - g.len(), Ordering::Relaxed);
            }
        }
        for (k, s) in &m.sets {
            w.metric(&names.set, k, &["count"], s.len() as f64);
            num_stats += 1;
        }
        let p = names.prefix_stats.as_str();
        let calc_ms = started.elapsed().as_millis() as f64;
        if names.legacy {
            w.raw(&[p, ".numStats"], num_stats as f64);
            w.raw(&["stats.", p, ".graphiteStats.calculationtime"], calc_ms);
            w.raw(&["stats.", p, ".processing_time"], processing_ms);
        } else {
            w.metric(&names.global, p, &["numStats"], num_stats as f64);
            w.metric(
                &names.global,
                p,
                &["graphiteStats", "calculationtime"],
                calc_ms,
            );
            w.metric(&names.global, p, &["processing_time"], processing_ms);
        }
        let gs = m.graphite;
        let g = names.global.as_str();
        w.raw(
            &[g, p, ".graphiteStats.last_exception"],
            gs.last_exception as f64,
        );
        w.raw(&[g, p, ".graphiteStats.last_flush"], gs.last_flush as f64);
        w.raw(&[g, p, ".graphiteStats.flush_time"], gs.flush_time);
        w.raw(
            &[g, p, ".graphiteStats.flush_length"],
            gs.flush_length as f64,
        );
        let _ = w.text_len();

        // Reset (spec §9).
        let before = m.counters.len() + m.timers.len() + m.sets.len();
        if c.delete_counters {
            m.counters.retain(|k, v| {
                let keep = k.contains("packets_received")
                    || k.contains("metrics_received")
                    || k.contains("bad_lines_seen");
                v.value = 0.0;
                keep
            });
        } else {
            m.counters.values_mut().for_each(|v| v.value = 0.0);
        }
        if c.delete_timers {
            m.timers.clear();
        } else {
            for t in m.timers.values_mut() {
                if t.samples.capacity() > 4096 {
                    t.samples = Vec::new();
                } else {
                    t.samples.clear();
                }
                t.count = 0.0;
            }
        }
        if c.delete_sets {
            m.sets.clear();
        } else {
            for s in m.sets.values_mut() {
                if s.capacity() > 4096 {
                    *s = MemberSet::default();
                } else {
                    s.clear();
                }
            }
        }
        let after = m.counters.len() + m.timers.len() + m.sets.len();
        self.live_names.fetch_sub(before - after, Ordering::Relaxed);
        drop(guard);
        let flush = w.finish_flush();
        Stats::add(&self.stats.flushes, 1);
        Stats::add(&self.stats.points_flushed, flush.len() as u64);
        flush
    }

    /// Records how handing a flush to the sinks went, for the `graphiteStats.*` metrics and
    /// the admin `stats` command.
    pub fn record_delivery(&self, finished_ms: i64, took_ms: f64, length: usize, failed: bool) {
        let mut m = lock(&self.master);
        if failed {
            m.graphite.last_exception = round_secs(finished_ms);
        } else {
            m.graphite.last_flush = round_secs(finished_ms);
        }
        m.graphite.flush_time = took_ms;
        m.graphite.flush_length = length;
    }

    /// `(last_flush, last_exception, flush_time, flush_length)` for the admin `stats`.
    pub(crate) fn graphite_status(&self) -> (i64, i64, f64, usize) {
        let g = lock(&self.master).graphite;
        (g.last_flush, g.last_exception, g.flush_time, g.flush_length)
    }

    /// Current counters (interval so far), in the reference's order.
    pub(crate) fn dump_counters(&self) -> Vec<(String, f64)> {
        let mut m = lock(&self.master);
        self.collect(&mut m);
        let v = m.counters.iter();
        in_js_order(v.map(|(k, c)| (k.to_string(), c.seq, c.value)).collect())
    }

    /// Current timer samples, in the reference's order.
    pub(crate) fn dump_timers(&self) -> Vec<(String, Vec<f64>)> {
        let mut m = lock(&self.master);
        self.collect(&mut m);
        let v = m.timers.iter();
        in_js_order(
            v.map(|(k, t)| (k.to_string(), t.seq, t.samples.clone()))
                .collect(),
        )
    }

    /// Current gauges, in the reference's order.
    pub(crate) fn dump_gauges(&self) -> Vec<(String, f64)> {
        let g = lock(&self.gauges);
        in_js_order(
            g.iter()
                .map(|(k, e)| (k.to_string(), e.seq, e.value))
                .collect(),
        )
    }

    /// Admin `delcounters`/`deltimers`/`delgauges` (spec §13): the reply text.
    pub(crate) fn delete(&self, kind: Kind, params: &[&str]) -> String {
        /// The reference's `existing_stats`: the exact key, then for `x.*` every key
        /// starting with `x.`, in object order.
        fn matches<'k>(keys: impl Iterator<Item = (&'k str, u64)>, bucket: &str) -> Vec<String> {
            let mut keys: Vec<(&str, u64)> = keys.collect();
            keys.sort_by_key(|&(k, seq)| js_key_order(k, seq));
            let mut out = Vec::new();
            if keys.iter().any(|&(k, _)| k == bucket) {
                out.push(bucket.to_string());
            }
            if let Some(folder) = bucket.strip_suffix('*')
                && bucket.ends_with(".*")
            {
                out.extend(
                    keys.iter()
                        .filter(|(k, _)| k.starts_with(folder))
                        .map(|(k, _)| k.to_string()),
                );
            }
            out
        }
        let mut reply = String::new();
        let mut removed = 0usize;
        let mut m = lock(&self.master);
        self.collect(&mut m);
        let mut g = lock(&self.gauges);
        for &param in params {
            let found = match kind {
                Kind::Counter => matches(m.counters.iter().map(|(k, c)| (&**k, c.seq)), param),
                Kind::Timer => matches(m.timers.iter().map(|(k, t)| (&**k, t.seq)), param),
                _ => matches(g.iter().map(|(k, e)| (&**k, e.seq)), param),
            };
            if found.is_empty() {
                reply.push_str(&format!("metric {param} not found\n"));
            }
            for key in found {
                let gone = match kind {
                    Kind::Counter => m.counters.remove(key.as_str()).is_some(),
                    Kind::Timer => m.timers.remove(key.as_str()).is_some(),
                    _ => g.remove(key.as_str()).is_some(),
                };
                removed += usize::from(gone);
                reply.push_str(&format!("deleted: {key}\n"));
            }
        }
        self.live_names.fetch_sub(removed, Ordering::Relaxed);
        reply.push_str("END\n\n");
        reply
    }

    /// Distinct keys held now (all types).
    pub fn live_names(&self) -> usize {
        self.live_names.load(Ordering::Relaxed)
    }
}

fn write_timer(
    w: &mut FlushWriter<'_>,
    c: &Compiled,
    key: &str,
    t: &mut TimerAcc,
    cum: &mut Vec<f64>,
    cumsq: &mut Vec<f64>,
) {
    let ns = w.names().timer.as_str();
    let keep = &c.keep;
    if t.samples.is_empty() {
        if keep.count {
            w.metric(ns, key, &["count"], 0.0);
        }
        if keep.count_ps {
            w.metric(ns, key, &["count_ps"], 0.0);
        }
        return;
    }
    let v = &mut t.samples;
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    let (min, max) = (v[0], v[n - 1]);
    cum.clear();
    cumsq.clear();
    cum.push(min);
    cumsq.push(min * min);
    for i in 1..n {
        cum.push(v[i] + cum[i - 1]);
        cumsq.push(v[i] * v[i] + cumsq[i - 1]);
    }
    let nf = n as f64;
    for p in &c.pcts {
        // (count, mean, boundary, sum, sum_squares); None = undefined, not written.
        let (m, mean, boundary, sum, sq) = if n == 1 {
            (1.0, min, Some(max), Some(min), Some(min * min))
        } else {
            let m = (p.frac * nf).round();
            if m == 0.0 {
                continue;
            }
            if p.positive {
                let (b, s, q) = if m <= nf {
                    let i = m as usize - 1;
                    (Some(v[i]), Some(cum[i]), Some(cumsq[i]))
                } else {
                    (None, None, None)
                };
                (m, s.unwrap_or(f64::NAN) / m, b, s, q)
            } else {
                let b = (m <= nf).then(|| v[n - m as usize]);
                let (s, q) = if m < nf {
                    let j = n - m as usize - 1;
                    (cum[n - 1] - cum[j], cumsq[n - 1] - cumsq[j])
                } else {
                    (f64::NAN, f64::NAN)
                };
                (m, s / m, b, Some(s), Some(q))
            }
        };
        let vals = [Some(m), Some(mean), boundary, sum, sq];
        for (i, val) in vals.iter().enumerate() {
            if p.keep[i]
                && let Some(x) = *val
            {
                w.metric(ns, key, &[&p.names[i]], x);
            }
        }
    }
    let sum = cum[n - 1];
    let sum_squares = cumsq[n - 1];
    let mean = sum / nf;
    let mut diffs = 0.0;
    for &x in v.iter() {
        diffs += (x - mean) * (x - mean);
    }
    let mid = n / 2;
    let median = if n % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    };
    let std = (diffs / nf).sqrt();
    let singles: [(bool, &str, f64); 9] = [
        (keep.std, "std", std),
        (keep.upper, "upper", max),
        (keep.lower, "lower", min),
        (keep.count, "count", t.count),
        (keep.count_ps, "count_ps", t.count / c.interval_s),
        (keep.sum, "sum", sum),
        (keep.sum_squares, "sum_squares", sum_squares),
        (keep.mean, "mean", mean),
        (keep.median, "median", median),
    ];
    for (k, name, x) in singles {
        if k {
            w.metric(ns, key, &[name], x);
        }
    }
    if keep.histogram
        && let Some(rule) = c.hist.iter().find(|r| key.contains(r.metric.as_str()))
    {
        let mut i = 0;
        for (bound, name) in &rule.bins {
            let mut freq = 0u64;
            while i < n && bound.is_none_or(|b| v[i] < b) {
                freq += 1;
                i += 1;
            }
            w.metric(ns, key, &["histogram", name], freq as f64);
        }
    }
}

/// A worker's handle for ingesting packets into its shard.
#[derive(Debug)]
pub struct Ingester {
    agg: Arc<Aggregator>,
    shard: usize,
    parser: LineParser,
    gauge_ops: GaugeOps,
    decoded: String,
    log: LogLimiter,
}

struct ShardHandler<'a> {
    shard: &'a mut Shard,
    order: &'a AtomicU64,
    ops: &'a mut GaugeOps,
    max_names: usize,
    dropped: u64,
    bad: u64,
    events: u64,
    checks: u64,
    log: &'a mut LogLimiter,
}

impl LineHandler for ShardHandler<'_> {
    #[inline]
    fn sample(&mut self, key: &str, s: Sample<'_>) {
        match s.kind {
            Kind::Counter => {
                let add = s.value * s.weight;
                if let Some(c) = self.shard.counters.get_mut(&Lookup(key)) {
                    // `if (!counters[key]) counters[key] = 0;`
                    if c.value == 0.0 || c.value.is_nan() {
                        c.value = 0.0;
                    }
                    c.value += add;
                } else if self.shard.names() < self.max_names {
                    let c = Counter {
                        value: 0.0 + add,
                        seq: self.order.fetch_add(1, Ordering::Relaxed),
                    };
                    self.shard.counters.insert(key.into(), c);
                } else {
                    self.dropped += 1;
                }
            }
            Kind::Timer => {
                if let Some(t) = self.shard.timers.get_mut(&Lookup(key)) {
                    t.samples.push(s.value);
                    t.count += s.weight;
                } else if self.shard.names() < self.max_names {
                    self.shard.timers.insert(
                        key.into(),
                        TimerAcc {
                            samples: vec![s.value],
                            count: s.weight,
                            seq: self.order.fetch_add(1, Ordering::Relaxed),
                        },
                    );
                } else {
                    self.dropped += 1;
                }
            }
            Kind::Set => {
                let member = if s.raw.is_empty() { "0" } else { s.raw };
                if let Some(set) = self.shard.sets.get_mut(&Lookup(key)) {
                    if !set.contains(&Lookup(member)) {
                        set.insert(member.into());
                    }
                } else if self.shard.names() < self.max_names {
                    let mut set = MemberSet::default();
                    set.insert(member.into());
                    self.shard.sets.insert(key.into(), set);
                } else {
                    self.dropped += 1;
                }
            }
            Kind::Gauge => {
                self.ops.keys.push_str(key);
                self.ops.ops.push(GaugeOp {
                    key_end: self.ops.keys.len(),
                    value: s.value,
                    signed: s.signed(),
                });
            }
        }
    }

    fn bad(&mut self, line: &str, segment: &str) {
        self.bad += 1;
        if let Some(suppressed) = self.log.allow() {
            tracing::warn!(
                target: "charcoal_statsd::bad_line",
                segment = segment,
                line = line,
                suppressed,
                "bad line"
            );
        }
    }

    fn dog(&mut self, kind: DogKind) {
        match kind {
            DogKind::Event => self.events += 1,
            DogKind::ServiceCheck => self.checks += 1,
        }
    }
}

impl Ingester {
    /// Ingests packets (one datagram or one TCP chunk each) under a single shard lock.
    pub fn ingest<'p>(&mut self, packets: impl IntoIterator<Item = &'p [u8]>, encoding: Encoding) {
        let agg = Arc::clone(&self.agg);
        let dump = agg.dump_messages;
        let mut shard = lock(&agg.shards[self.shard]);
        let mut h = ShardHandler {
            shard: &mut shard,
            order: &agg.order,
            ops: &mut self.gauge_ops,
            max_names: agg.max_names,
            dropped: 0,
            bad: 0,
            events: 0,
            checks: 0,
            log: &mut self.log,
        };
        let mut packets_n = 0u64;
        let mut lines = 0u64;
        for bytes in packets {
            packets_n += 1;
            let text: &str = match encoding {
                Encoding::Utf8 => match std::str::from_utf8(bytes) {
                    Ok(s) => s,
                    Err(_) => {
                        self.decoded.clear();
                        self.decoded.push_str(&String::from_utf8_lossy(bytes));
                        &self.decoded
                    }
                },
                Encoding::Ascii => {
                    self.decoded.clear();
                    self.decoded
                        .extend(bytes.iter().map(|&b| char::from(b & 0x7f)));
                    &self.decoded
                }
            };
            if dump {
                for line in text.split('\n').filter(|l| !l.is_empty()) {
                    tracing::debug!(target: "charcoal_statsd::dump", line, "received");
                }
            }
            lines += self.parser.packet(text, &mut h);
        }
        let (dropped, bad, events, checks) = (h.dropped, h.bad, h.events, h.checks);
        shard.packets += packets_n;
        shard.lines += lines;
        shard.bad += bad;
        drop(shard);
        agg.apply_gauges(&mut self.gauge_ops);
        let st = &agg.stats;
        Stats::add(&st.packets, packets_n);
        Stats::add(&st.lines, lines);
        Stats::add(&st.bad_lines, bad);
        Stats::add(&st.names_dropped, dropped);
        Stats::add(&st.events, events);
        Stats::add(&st.service_checks, checks);
        if packets_n > 0 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            st.last_msg_seen.store(round_secs(now), Ordering::Relaxed);
        }
    }

    /// Ingests one packet.
    pub fn ingest_one(&mut self, packet: &[u8], encoding: Encoding) {
        self.ingest(std::iter::once(packet), encoding);
    }
}

#[cfg(test)]
#[path = "aggregate_tests.rs"]
mod tests;
