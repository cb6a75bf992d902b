//! Measures resident memory per active metric name: ingests N distinct names of one type
//! (one sample each, names like `app.service.metric.<i>`), flushes once (so the master table
//! holds them, as between flushes), and prints the RSS growth divided by N.
//! `cargo run --release -p charcoal-statsd --example memory_per_name -- 500000 [counter|timer|gauge|set]`
//! (one type per process gives clean figures: freed memory of an earlier type is reused)

use std::sync::Arc;

use charcoal_statsd::{Aggregator, Config, Encoding};

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(500_000);
    let only = std::env::args().nth(2);
    for (kind, suffix) in [
        ("counter", "1|c"),
        ("timer", "12|ms"),
        ("gauge", "3|g"),
        ("set", "member|s"),
    ] {
        if only.as_deref().is_some_and(|o| o != kind) {
            continue;
        }
        let before = rss_kb();
        let agg = Arc::new(Aggregator::new(Config::default(), 1, 0).unwrap());
        let mut ing = agg.ingester(0);
        let mut batch = String::new();
        for i in 0..n {
            batch.push_str(&format!("app.service.metric.{i}:{suffix}\n"));
            if i % 1000 == 999 {
                ing.ingest_one(batch.as_bytes(), Encoding::Utf8);
                batch.clear();
            }
        }
        ing.ingest_one(batch.as_bytes(), Encoding::Utf8);
        let f = agg.flush(10_000);
        let lines = f.len();
        drop(f);
        // Second interval: every name active again (shard maps refilled, as in steady state).
        batch.clear();
        for i in 0..n {
            batch.push_str(&format!("app.service.metric.{i}:{suffix}\n"));
            if i % 1000 == 999 {
                ing.ingest_one(batch.as_bytes(), Encoding::Utf8);
                batch.clear();
            }
        }
        ing.ingest_one(batch.as_bytes(), Encoding::Utf8);
        let after = rss_kb();
        println!(
            "{kind:8} {n} names: {:.0} bytes/name resident (master + one shard, between flushes; {} flush lines)",
            (after.saturating_sub(before)) as f64 * 1024.0 / n as f64,
            lines
        );
        drop(ing);
        drop(agg);
    }
}
