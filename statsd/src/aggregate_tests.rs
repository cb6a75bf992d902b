//! Flush output for the edge cases of spec §17 (values observed on the reference).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::{Bin, HistogramRule};

const VOLATILE: [&str; 3] = ["processing_time", "graphiteStats", "timestamp_lag"];

/// One flush as `name → value text`, volatile internal metrics dropped.
type Out = BTreeMap<String, String>;

struct Run {
    agg: Arc<Aggregator>,
    ing: Ingester,
    now_ms: i64,
}

impl Run {
    /// Like the conformance harness: the input arrives after the first (idle) flush.
    fn new(config: Config) -> Run {
        let mut r = Run::fresh(config);
        r.flush();
        r
    }
    fn fresh(config: Config) -> Run {
        let agg = Arc::new(Aggregator::new(config, 2, 1_700_000_000_000).unwrap());
        let ing = agg.ingester(0);
        Run {
            agg,
            ing,
            now_ms: 1_700_000_000_000,
        }
    }
    fn default1s() -> Run {
        Run::new(cfg1s())
    }
    fn send(&mut self, packet: &str) -> &mut Run {
        self.ing.ingest_one(packet.as_bytes(), Encoding::Utf8);
        self
    }
    /// One datagram per line.
    fn lines(&mut self, lines: &[&str]) -> &mut Run {
        for l in lines {
            self.send(l);
        }
        self
    }
    fn flush(&mut self) -> Out {
        self.now_ms += self.agg.config().flush_interval.as_millis() as i64;
        let f = self.agg.flush(self.now_ms);
        let mut out = Out::new();
        for p in f.points() {
            if VOLATILE.iter().any(|v| p.name.contains(v)) {
                continue;
            }
            let line = f
                .text()
                .lines()
                .find(|l| l.starts_with(&format!("{} ", p.name)))
                .unwrap();
            let value = line.rsplit(' ').nth(1).unwrap().to_string();
            assert_eq!(p.timestamp, (self.now_ms as f64 / 1000.0).round() as i64);
            let prev = out.insert(p.name.to_string(), value);
            assert!(prev.is_none(), "duplicate {}", p.name);
        }
        out
    }
}

fn cfg1s() -> Config {
    Config {
        flush_interval: Duration::from_millis(1000),
        ..Config::default()
    }
}

#[track_caller]
fn has(out: &Out, pairs: &[(&str, &str)]) {
    for (k, v) in pairs {
        assert_eq!(out.get(*k).map(String::as_str), Some(*v), "{k} in {out:#?}");
    }
}

#[track_caller]
fn lacks(out: &Out, names: &[&str]) {
    for k in names {
        assert!(!out.contains_key(*k), "{k} should be absent: {out:#?}");
    }
}

fn bad(out: &Out) -> &str {
    out.get("stats_counts.statsd.bad_lines_seen").unwrap()
}

#[test]
fn case01_sampled_counter() {
    let o = Run::default1s().send("a:1|c|@0.1").flush();
    has(&o, &[("stats.a", "10"), ("stats_counts.a", "10")]);
    let mut r = Run::new(Config::default());
    let o = r.send("a:1|c|@0.1").flush();
    has(&o, &[("stats.a", "1"), ("stats_counts.a", "10")]);
}

#[test]
fn case02_to_06_rates() {
    for (line, want) in [
        ("a:1|c|@2", "0.5"),
        ("a:1|c|@0.3", "3.3333333333333335"),
        ("a:1|c|@1e-1", "1"),
        ("a:1|c|@5e-1", "0.2"),
        ("a:1|c|@.5", "2"),
        ("a:1|c|@0", "Infinity"),
        ("a:1|c|@0x10", "Infinity"),
        ("a:1|c|@0.5|extra", "2"),
    ] {
        let o = Run::default1s().send(line).flush();
        has(&o, &[("stats.a", want), ("stats_counts.a", want)]);
    }
}

#[test]
fn case07_09_bad_lines() {
    for line in [
        "a:1|c|",
        "a:1|c|@1.5.",
        "a:|c",
        "a|c",
        "a",
        "a:NaN|c",
        "a:1_000|c",
        "a:abc|g",
        "a:+0x10|g",
    ] {
        let o = Run::default1s().send(line).flush();
        assert_eq!(bad(&o), "1", "{line}");
        lacks(&o, &["stats.a", "stats.gauges.a"]);
    }
}

#[test]
fn case08_values() {
    for (line, want) in [
        ("a:0x10|c", "16"),
        ("a:1e3|c", "1000"),
        ("a: 5|c", "5"),
        ("a:  |c", "0"),
        ("a:.5|c", "0.5"),
        ("a:5.|c", "5"),
        ("a:-3|c", "-3"),
        ("a:-0|c", "0"),
        ("a:1|C", "1"),
        ("a:5|h", "5"),
        ("a:5|d", "5"),
        ("a:1|MS", "1"),
        ("a:1|c\r", "1"),
        ("a:1|c:2|c", "3"),
        ("a:1e21|c", "1e+21"),
        ("a:123456789012345678901234|c", "1.2345678901234569e+23"),
        ("a:0.0000001|c", "1e-7"),
        ("a:1e400|c", "Infinity"),
        ("a:Infinity|c", "Infinity"),
        ("a:0.1|c\na:0.2|c", "0.30000000000000004"),
    ] {
        let o = Run::default1s().send(line).flush();
        has(&o, &[("stats.a", want)]);
    }
}

#[test]
fn case12_segments() {
    let o = Run::default1s().send("a:1:2|c").flush();
    has(
        &o,
        &[
            ("stats.a", "2"),
            ("stats_counts.statsd.bad_lines_seen", "1"),
        ],
    );
    let o = Run::default1s().send("a:1:2:3|d").flush();
    has(
        &o,
        &[
            ("stats.a", "3"),
            ("stats_counts.statsd.bad_lines_seen", "2"),
        ],
    );
}

#[test]
fn case15_packet_and_line_counts() {
    let o = Run::default1s().send("e:1|c\n\ne:1|c\n").flush();
    has(
        &o,
        &[
            ("stats.e", "2"),
            ("stats_counts.statsd.metrics_received", "2"),
            ("stats_counts.statsd.packets_received", "1"),
        ],
    );
}

#[test]
fn case16_timer() {
    let o = Run::default1s()
        .lines(&["t:100|ms", "t:200|ms", "t:300|ms"])
        .flush();
    has(
        &o,
        &[
            ("stats.timers.t.count", "3"),
            ("stats.timers.t.count_90", "3"),
            ("stats.timers.t.count_ps", "3"),
            ("stats.timers.t.lower", "100"),
            ("stats.timers.t.upper", "300"),
            ("stats.timers.t.upper_90", "300"),
            ("stats.timers.t.mean", "200"),
            ("stats.timers.t.mean_90", "200"),
            ("stats.timers.t.median", "200"),
            ("stats.timers.t.std", "81.64965809277261"),
            ("stats.timers.t.sum", "600"),
            ("stats.timers.t.sum_90", "600"),
            ("stats.timers.t.sum_squares", "140000"),
            ("stats.timers.t.sum_squares_90", "140000"),
        ],
    );
}

#[test]
fn case17_to_21_timers() {
    let o = Run::default1s().send("t:1|ms:2|ms:3|ms").flush();
    has(
        &o,
        &[
            ("stats.timers.t.std", "0.816496580927726"),
            ("stats.timers.t.mean", "2"),
            ("stats.timers.t.sum_squares", "14"),
        ],
    );
    let o = Run::default1s().send("t:100|ms|@0.5").flush();
    has(
        &o,
        &[
            ("stats.timers.t.count", "2"),
            ("stats.timers.t.count_ps", "2"),
            ("stats.timers.t.count_90", "1"),
            ("stats.timers.t.mean", "100"),
            ("stats.timers.t.upper_90", "100"),
        ],
    );
    let o = Run::default1s().send("t:1|ms|@0").flush();
    has(
        &o,
        &[
            ("stats.timers.t.count", "Infinity"),
            ("stats.timers.t.count_ps", "Infinity"),
            ("stats.timers.t.count_90", "1"),
        ],
    );
    let o = Run::default1s().send("t:-5|ms").flush();
    assert_eq!(bad(&o), "1");
    let o = Run::default1s().send("t:-5| ms").flush();
    has(
        &o,
        &[
            ("stats.timers.t.lower", "-5"),
            ("stats.timers.t.upper", "-5"),
            ("stats.timers.t.mean", "-5"),
            ("stats.timers.t.median", "-5"),
            ("stats.timers.t.sum", "-5"),
            ("stats.timers.t.sum_squares", "25"),
            ("stats.timers.t.std", "0"),
        ],
    );
    let o = Run::default1s().send("t:0x1F|ms").flush();
    has(&o, &[("stats.timers.t.upper", "31")]);
    let o = Run::default1s().lines(&["t:1|ms", "t:2|ms"]).flush();
    has(
        &o,
        &[
            ("stats.timers.t.median", "1.5"),
            ("stats.timers.t.mean_90", "1.5"),
            ("stats.timers.t.std", "0.5"),
        ],
    );
}

fn thresholds() -> Config {
    Config {
        percent_threshold: vec![90.0, 50.0, -10.0, 99.9, 0.0, 100.0, -100.0, 150.0, -99.9],
        ..cfg1s()
    }
}

#[test]
fn case22_percent_thresholds() {
    let mut r = Run::new(thresholds());
    for i in 1..=10 {
        r.send(&format!("t:{i}|ms"));
    }
    let o = r.flush();
    let t = |s: &str| format!("stats.timers.t.{s}");
    let want = [
        ("count_90", "9"),
        ("mean_90", "5"),
        ("upper_90", "9"),
        ("sum_90", "45"),
        ("sum_squares_90", "285"),
        ("count_50", "5"),
        ("mean_50", "3"),
        ("upper_50", "5"),
        ("sum_50", "15"),
        ("sum_squares_50", "55"),
        ("count_top10", "1"),
        ("lower_top10", "10"),
        ("mean_top10", "10"),
        ("sum_top10", "10"),
        ("sum_squares_top10", "100"),
        ("count_99_9", "10"),
        ("upper_99_9", "10"),
        ("mean_99_9", "5.5"),
        ("count_100", "10"),
        ("upper_100", "10"),
        ("count_top100", "10"),
        ("lower_top100", "1"),
        ("mean_top100", "NaN"),
        ("sum_top100", "NaN"),
        ("sum_squares_top100", "NaN"),
        ("count_150", "15"),
        ("mean_150", "NaN"),
        ("count_top99_9", "10"),
        ("lower_top99_9", "1"),
        ("mean_top99_9", "NaN"),
        ("median", "5.5"),
        ("std", "2.8722813232690143"),
    ];
    for (k, v) in want {
        has(&o, &[(&t(k), v)]);
    }
    lacks(
        &o,
        &[
            &t("upper_150"),
            &t("sum_150"),
            &t("sum_squares_150"),
            &t("count_0"),
            &t("lower_0"),
        ],
    );
}

#[test]
fn case23_single_sample_all_thresholds() {
    let o = Run::new(thresholds()).send("t:7|ms").flush();
    let t = |s: &str| format!("stats.timers.t.{s}");
    for k in ["count_0", "count_150", "count_90", "count_top100"] {
        has(&o, &[(&t(k), "1")]);
    }
    for k in [
        "lower_0",
        "mean_0",
        "upper_150",
        "lower_top100",
        "mean_150",
        "upper_90",
        "sum_top10",
    ] {
        has(&o, &[(&t(k), "7")]);
    }
    has(&o, &[(&t("sum_squares_0"), "49")]);
}

#[test]
fn case24_histogram() {
    let c = Config {
        percent_threshold: vec![90.0, 50.0],
        histogram: vec![HistogramRule {
            metric: "render".into(),
            bins: vec![
                Bin::Bound(0.01),
                Bin::Bound(0.1),
                Bin::Bound(1.0),
                Bin::Bound(10.0),
            ],
        }],
        ..cfg1s()
    };
    let mut r = Run::new(c);
    for v in ["0.005", "0.05", "0.5", "5", "50", "0.01"] {
        r.send(&format!("render.x:{v}|ms"));
    }
    let o = r.flush();
    let t = |s: &str| format!("stats.timers.render.x.{s}");
    has(
        &o,
        &[
            (&t("histogram.bin_0_01"), "1"),
            (&t("histogram.bin_0_1"), "2"),
            (&t("histogram.bin_1"), "1"),
            (&t("histogram.bin_10"), "1"),
            (&t("mean"), "9.260833333333332"),
            (&t("sum_90"), "5.5649999999999995"),
            (&t("sum_squares_50"), "0.0026250000000000006"),
            (&t("median"), "0.275"),
        ],
    );
}

#[test]
fn case25_histogram_substring_and_inf() {
    let c = Config {
        histogram: vec![HistogramRule {
            metric: "foo".into(),
            bins: vec![Bin::Bound(50.0), Bin::Text("inf".into())],
        }],
        ..cfg1s()
    };
    let o = Run::new(c)
        .lines(&["hfoo:1|ms", "hfoo:60|ms", "hfoo:500|ms"])
        .flush();
    has(
        &o,
        &[
            ("stats.timers.hfoo.histogram.bin_50", "1"),
            ("stats.timers.hfoo.histogram.bin_inf", "2"),
        ],
    );
}

#[test]
fn case26_calculated_timer_metrics() {
    let c = Config {
        legacy_namespace: false,
        global_prefix: String::new(),
        calculated_timer_metrics: vec!["count".into(), "upper_percent".into(), "histogram".into()],
        percent_threshold: vec![90.0, 99.9],
        ..cfg1s()
    };
    let o = Run::new(c).lines(&["tm:5|ms", "tm:15|ms"]).flush();
    let timer_lines: Vec<&String> = o.keys().filter(|k| k.starts_with("timers.")).collect();
    assert_eq!(timer_lines, vec!["timers.tm.count", "timers.tm.upper_90"]);
    has(
        &o,
        &[("timers.tm.count", "2"), ("timers.tm.upper_90", "15")],
    );
}

#[test]
fn case27_gauges() {
    let o = Run::default1s().send("g:-5|g").flush();
    has(&o, &[("stats.gauges.g", "-5")]);
    let o = Run::default1s()
        .lines(&["g:10|g", "g:-3|g", "g:+1|g"])
        .flush();
    has(&o, &[("stats.gauges.g", "8")]);
    let o = Run::default1s().lines(&["g:0|g", "g:-5|g"]).flush();
    has(&o, &[("stats.gauges.g", "-5")]);
    for (l, v) in [
        ("g:1|g|@0.1", "1"),
        ("g:-0|g", "0"),
        ("g:Infinity|g", "Infinity"),
        ("g: -5|g", "-5"),
    ] {
        let o = Run::default1s().send(l).flush();
        has(&o, &[("stats.gauges.g", v)]);
    }
}

#[test]
fn case28_sets() {
    let o = Run::default1s().lines(&["s:a|s", "s:b|s", "s:a|s"]).flush();
    has(&o, &[("stats.sets.s.count", "2")]);
    for lines in [
        &["s:|s"][..],
        &["s:|s", "s:0|s"],
        &["s:1|s|@0.5"],
        &["s:foo bar|s"],
    ] {
        let o = Run::default1s().lines(lines).flush();
        has(&o, &[("stats.sets.s.count", "1")]);
    }
    let o = Run::default1s()
        .lines(&["s:1|s", "s:01|s", "s:1.0|s"])
        .flush();
    has(&o, &[("stats.sets.s.count", "3")]);
}

#[test]
fn case29_to_35_names_and_tags() {
    let o = Run::default1s()
        .lines(&["a b:1|c", "a\tb:1|c", "a  \t b:1|c"])
        .flush();
    has(&o, &[("stats.a_b", "3")]);
    let o = Run::default1s()
        .lines(&["a/b:1|c", "a+b!$%^&*()x:1|c", ":1|c", "\u{fc}n\u{ef}x:1|c"])
        .flush();
    has(
        &o,
        &[
            ("stats.a-b", "1"),
            ("stats.abx", "1"),
            ("stats.", "1"),
            ("stats_counts.", "1"),
            ("stats.nx", "1"),
        ],
    );
    let o = Run::default1s().send("tg:1|c|#env:prod,host:h1").flush();
    has(
        &o,
        &[
            ("stats.tg;env=prod;host=h1", "1"),
            ("stats_counts.tg;env=prod;host=h1", "1"),
        ],
    );
    let o = Run::default1s().send("tt:5|ms|#k:v").flush();
    has(
        &o,
        &[
            ("stats.timers.tt.mean;k=v", "5"),
            ("stats.timers.tt.count_90;k=v", "1"),
        ],
    );
    let o = Run::default1s().send("tagd;b=c:1|c").flush();
    has(&o, &[("stats.tagd;b=c", "1")]);
    let c = Config {
        legacy_namespace: false,
        ..cfg1s()
    };
    let o = Run::new(c)
        .send("foo+bar:250|c|#tag1:val;1,tag3:val3,tag2:val2")
        .flush();
    has(
        &o,
        &[(
            "stats.counters.foobar.count;tag1=val_1;tag3=val3;tag2=val2",
            "250",
        )],
    );
    let c = Config {
        key_name_sanitize: false,
        ..cfg1s()
    };
    let o = Run::new(c).send("a b/c*:1|c|#k:v w,x y:z").flush();
    has(&o, &[("stats.a_b-c;k=v w;x y=z", "1")]);
}

#[test]
fn case36_non_legacy_names() {
    let c = Config {
        legacy_namespace: false,
        ..cfg1s()
    };
    let mut r = Run::new(c);
    r.lines(&["cnt:3|c", "gg:4|g", "st:x|s"]);
    let o = r.flush();
    has(
        &o,
        &[
            ("stats.counters.cnt.rate", "3"),
            ("stats.counters.cnt.count", "3"),
            ("stats.gauges.gg", "4"),
            ("stats.sets.st.count", "1"),
            ("stats.statsd.numStats", "7"),
            ("stats.counters.statsd.metrics_received.count", "3"),
        ],
    );
    let f = r.agg.flush(r.now_ms + 1000);
    assert!(
        f.points()
            .any(|p| p.name == "stats.gauges.statsd.timestamp_lag")
    );
}

#[test]
fn case37_legacy_ignores_prefixes_and_keeps_suffix() {
    let c = Config {
        global_prefix: "ignored".into(),
        global_suffix: Some("sfx".into()),
        prefix_stats: "ps".into(),
        flush_counts: false,
        ..cfg1s()
    };
    let o = Run::new(c)
        .lines(&["cnt:3|c", "tagc:1|c|#k:v", "gg:4|g", "tm:10|ms", "st:x|s"])
        .flush();
    has(
        &o,
        &[
            ("stats.cnt.sfx", "3"),
            ("stats.tagc.sfx;k=v", "1"),
            ("stats.gauges.gg.sfx", "4"),
            ("stats.timers.tm.mean_90.sfx", "10"),
            ("stats.sets.st.count.sfx", "1"),
            ("ps.numStats.sfx", "9"),
            ("stats.ps.metrics_received.sfx", "5"),
        ],
    );
    assert!(!o.keys().any(|k| k.starts_with("stats_counts")));
}

#[test]
fn case38_prefix_table() {
    let c = Config {
        legacy_namespace: false,
        global_prefix: "pre".into(),
        prefix_counter: String::new(),
        prefix_timer: "tmr".into(),
        prefix_gauge: "gau".into(),
        prefix_set: String::new(),
        global_suffix: Some("host1".into()),
        prefix_stats: "mystatsd".into(),
        ..cfg1s()
    };
    let mut r = Run::new(c);
    let o = r
        .lines(&["cnt:3|c", "tm:10|ms", "gg:4|g", "st:x|s", "tagc:1|c|#k:v"])
        .flush();
    has(
        &o,
        &[
            ("pre.cnt.rate.host1", "3"),
            ("pre.tmr.tm.mean_90.host1", "10"),
            ("pre.gau.gg.host1", "4"),
            ("pre.st.count.host1", "1"),
            ("pre.tagc.rate.host1;k=v", "1"),
            ("pre.mystatsd.numStats.host1", "9"),
            ("pre.mystatsd.bad_lines_seen.count.host1", "0"),
        ],
    );
    let f = r.agg.flush(r.now_ms + 1000);
    assert!(
        f.points()
            .any(|p| p.name == "pre.gau.mystatsd.timestamp_lag.host1")
    );
    let c = Config {
        legacy_namespace: false,
        global_prefix: String::new(),
        ..cfg1s()
    };
    let o = Run::new(c)
        .lines(&["cnt:3|c", "tm:10|ms", "gg:4|g", "st:x|s"])
        .flush();
    has(
        &o,
        &[
            ("counters.cnt.rate", "3"),
            ("timers.tm.count", "1"),
            ("gauges.gg", "4"),
            ("sets.st.count", "1"),
            ("statsd.numStats", "8"),
        ],
    );
}

#[test]
fn case39_idle_server() {
    let mut r = Run::fresh(cfg1s());
    let o = r.flush();
    has(
        &o,
        &[
            ("statsd.numStats", "3"),
            ("stats.statsd.bad_lines_seen", "0"),
            ("stats_counts.statsd.packets_received", "0"),
        ],
    );
    assert_eq!(o.len(), 7);
    let f = r.agg.flush(r.now_ms + 1000);
    assert!(f.text().contains("stats.gauges.statsd.timestamp_lag 0 "));
    assert!(f.text().contains("statsd.numStats 4 "));
}

#[test]
fn case40_bad_line_counts() {
    let o = Run::default1s().send("a_bad_test_value|z").flush();
    has(&o, &[("stats_counts.statsd.bad_lines_seen", "1")]);
}

#[test]
fn case41_dogstatsd_in_etsy_mode() {
    let o = Run::default1s()
        .lines(&[
            "_e{5,4}:title|text|#a:b",
            "_sc|svc|0|#a:b",
            "a:1|c|T1700000000",
        ])
        .flush();
    assert_eq!(bad(&o), "3");
    let o = Run::default1s().send("a:1|c|c:abc").flush();
    assert_eq!(bad(&o), "2");
}

#[test]
fn case42_idle_metrics_persist() {
    let mut r = Run::default1s();
    r.lines(&["cnt:3|c", "tm:5|ms", "gg:4|g", "st:x|s"]);
    r.flush();
    let o = r.flush();
    has(
        &o,
        &[
            ("stats.cnt", "0"),
            ("stats_counts.cnt", "0"),
            ("stats.timers.tm.count", "0"),
            ("stats.timers.tm.count_ps", "0"),
            ("stats.gauges.gg", "4"),
            ("stats.sets.st.count", "0"),
            ("statsd.numStats", "8"),
        ],
    );
    lacks(&o, &["stats.timers.tm.mean"]);
}

#[test]
fn case43_delete_idle_stats() {
    let mut r = Run::new(Config {
        delete_idle_stats: true,
        ..cfg1s()
    });
    r.lines(&["cnt:3|c", "tm:5|ms", "gg:4|g", "st:x|s"]);
    has(&r.flush(), &[("statsd.numStats", "8")]);
    r.send("gg:+1|g");
    let o = r.flush();
    has(&o, &[("stats.gauges.gg", "1"), ("statsd.numStats", "5")]);
    lacks(
        &o,
        &["stats.cnt", "stats.timers.tm.count", "stats.sets.st.count"],
    );
    let o = r.flush();
    has(&o, &[("statsd.numStats", "4")]);
    lacks(&o, &["stats.gauges.gg"]);
}

#[test]
fn case44_gauge_ttl() {
    let mut r = Run::new(Config {
        delete_gauges: Some(true),
        gauges_max_ttl: 3,
        ..cfg1s()
    });
    r.lines(&["cnt:3|c", "tm:5|ms", "gg:4|g", "st:x|s"]);
    let o = r.flush();
    has(&o, &[("stats.gauges.gg", "4"), ("statsd.numStats", "8")]);
    r.send("gg:+1|g");
    for _ in 0..3 {
        let o = r.flush();
        has(&o, &[("stats.gauges.gg", "5"), ("statsd.numStats", "8")]);
    }
    let o = r.flush();
    lacks(&o, &["stats.gauges.gg"]);
    has(&o, &[("statsd.numStats", "7")]);
}

#[test]
fn case45_explicit_false_wins() {
    let mut r = Run::new(Config {
        delete_idle_stats: true,
        delete_counters: Some(false),
        delete_sets: Some(false),
        ..cfg1s()
    });
    r.lines(&["cnt:3|c", "tm:5|ms", "gg:4|g", "st:x|s"]);
    r.flush();
    r.send("gg:+1|g");
    let o = r.flush();
    has(
        &o,
        &[
            ("stats.cnt", "0"),
            ("stats.sets.st.count", "0"),
            ("stats.gauges.gg", "1"),
        ],
    );
    lacks(&o, &["stats.timers.tm.count"]);
    let o = r.flush();
    lacks(&o, &["stats.gauges.gg"]);
}

#[test]
fn tcp_ascii_decoding() {
    let mut r = Run::default1s();
    r.ing
        .ingest_one(b"\xc3\xbcn\xc3\xafx:1|c\n", Encoding::Ascii);
    has(&r.flush(), &[("stats.CnC-x", "1")]);
}

#[test]
fn shards_merge_and_name_bound_counts() {
    // 3 internal counters + timestamp_lag + a, b, c; d is one too many.
    let c = Config {
        max_names: 7,
        ..cfg1s()
    };
    let mut r = Run::new(c);
    let mut other = r.agg.ingester(1);
    r.send("a:1|c");
    other.ingest_one(b"a:2|c\nb:1|ms\nc:x|s\nd:1|c", Encoding::Utf8);
    let o = r.flush();
    has(&o, &[("stats.a", "3")]);
    assert_eq!(Stats::get(&r.agg.stats().names_dropped), 1);
    assert_eq!(r.agg.live_names(), 7);
    assert_eq!(o.get("statsd.numStats").map(String::as_str), Some("7"));
}

#[test]
fn admin_delete_and_dump() {
    let mut r = Run::default1s();
    r.lines(&["x.a:1|c", "x.b:2|c", "y:3|c"]);
    let reply = r.agg.delete(Kind::Counter, &["x.*", "nope"]);
    assert_eq!(
        reply,
        "deleted: x.a\ndeleted: x.b\nmetric nope not found\nEND\n\n"
    );
    let counters = r.agg.dump_counters();
    assert!(counters.iter().any(|(k, v)| k == "y" && *v == 3.0));
    assert!(!counters.iter().any(|(k, _)| k.starts_with("x.")));
}

#[test]
fn ingest_lookups_find_exactly_the_stored_key() {
    let keys: Vec<String> = (0..40).map(|n| "k".repeat(n)).collect();
    let mut map: Map<usize> = Map::default();
    for (i, k) in keys.iter().enumerate() {
        map.insert(k.as_str().into(), i);
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(map.get(&Lookup(k)), Some(&i), "{k:?}");
        // The same length, one byte different at each position: never found.
        for at in 0..k.len() {
            let mut other = k.clone().into_bytes();
            other[at] = b'x';
            let other = String::from_utf8(other).unwrap();
            assert_eq!(map.get(&Lookup(&other)), None, "{other:?}");
        }
    }
}

#[test]
fn admin_dumps_follow_javascript_key_order() {
    // Order rules of ECMAScript OrdinaryOwnPropertyKeys (array indices ascending, then
    // insertion); the interop case `admin_dumps_in_object_order` checks the reference.
    let mut r = Run::default1s();
    r.lines(&[
        "b:1|c",
        "a:1|c",
        "10:1|c",
        "9:1|c",
        "01:1|c",
        "4294967295:1|c",
    ]);
    let keys: Vec<String> = r.agg.dump_counters().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "9",
            "10",
            "statsd.bad_lines_seen",
            "statsd.packets_received",
            "statsd.metrics_received",
            "b",
            "a",
            "01",
            "4294967295"
        ]
    );
}
