//! Whole packets through the aggregator and a flush: the first byte picks the config
//! (DogStatsD, sanitising, deletes, a histogram, thresholds), the rest is split into
//! datagrams at 0xFF bytes. Checks: no panic, and with sanitising every flushed line is
//! `name value timestamp`.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use charcoal_statsd::{Aggregator, Bin, Config, Encoding, HistogramRule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let config = Config {
        flush_interval: Duration::from_secs(1),
        dogstatsd: mode & 1 != 0,
        key_name_sanitize: mode & 2 == 0,
        delete_idle_stats: mode & 4 != 0,
        percent_threshold: if mode & 8 != 0 {
            vec![90.0, -10.0, 99.9]
        } else {
            vec![90.0]
        },
        histogram: if mode & 16 != 0 {
            vec![HistogramRule {
                metric: String::new(),
                bins: vec![Bin::Bound(10.0), Bin::Text("inf".into())],
            }]
        } else {
            Vec::new()
        },
        max_names: if mode & 32 != 0 { 8 } else { 1_000_000 },
        ..Config::default()
    };
    let Ok(agg) = Aggregator::new(config, 2, 1_700_000_000_000) else {
        return;
    };
    let agg = Arc::new(agg);
    let mut a = agg.ingester(0);
    let mut b = agg.ingester(1);
    for (i, packet) in rest.split(|&x| x == 0xff).enumerate() {
        if i % 2 == 0 {
            a.ingest_one(packet, Encoding::Utf8);
        } else {
            b.ingest_one(packet, Encoding::Ascii);
        }
    }
    let sanitized = mode & 2 == 0;
    for k in 1..=2 {
        let flush = agg.flush(1_700_000_000_000 + k * 1000);
        // Without sanitising, names keep their spaces (as in the reference).
        if sanitized {
            for line in flush.text().lines() {
                assert_eq!(line.split(' ').count(), 3, "{line:?}");
            }
        }
    }
});
