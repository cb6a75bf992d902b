//! StatsD parser and aggregator throughput (charcoal-statsd).
//! `cargo bench -p charcoal-benches --bench statsd`

use std::hint::black_box;
use std::sync::Arc;

use charcoal_statsd::{
    Aggregator, Config, Encoding, LineHandler, LineParser, ParseOptions, Sample,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

struct Sum(f64, u64);

impl LineHandler for Sum {
    fn sample(&mut self, key: &str, s: Sample<'_>) {
        self.0 += s.value + key.len() as f64;
    }
    fn bad(&mut self, _line: &str, _segment: &str) {
        self.1 += 1;
    }
}

/// 20-line datagrams like the load generator's, over `names` names.
fn datagrams(kind: &str, names: usize, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|d| {
            (0..20)
                .map(|j| {
                    let i = d * 20 + j;
                    let n = i % names;
                    match kind {
                        "timer" => format!("app.request.t{n}:{}|ms|@0.5", i % 1000),
                        "tagged" => format!("app.request.c{n}:1|c|#env:prod,host:web{}", i % 7),
                        "mix" => match i % 4 {
                            0 => format!("app.c{n}:1|c"),
                            1 => format!("app.t{n}:{}|ms", i % 1000),
                            2 => format!("app.g{n}:{}|g", i % 50),
                            _ => format!("app.s{n}:{}|s", i % 300),
                        },
                        _ => format!("app.request.c{n}:1|c"),
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes()
        })
        .collect()
}

fn parser(c: &mut Criterion) {
    let mut g = c.benchmark_group("statsd_parse");
    for kind in ["counter", "timer", "tagged", "mix"] {
        let data = datagrams(kind, 1000, 500);
        let text: Vec<String> = data
            .iter()
            .map(|d| String::from_utf8(d.clone()).unwrap())
            .collect();
        g.throughput(Throughput::Elements(500 * 20));
        g.bench_function(kind, |b| {
            let mut p = LineParser::new(ParseOptions::default());
            b.iter(|| {
                let mut h = Sum(0.0, 0);
                for t in &text {
                    p.packet(t, &mut h);
                }
                black_box(h.0)
            })
        });
    }
    g.finish();
}

fn aggregator(c: &mut Criterion) {
    let mut g = c.benchmark_group("statsd_aggregate");
    for (kind, names) in [
        ("counter", 1000),
        ("counter", 100_000),
        ("timer", 1000),
        ("mix", 10_000),
    ] {
        let data = datagrams(kind, names, 500);
        g.throughput(Throughput::Elements(500 * 20));
        g.bench_function(format!("ingest_{kind}_{names}_names"), |b| {
            let agg = Arc::new(Aggregator::new(Config::default(), 1, 0).unwrap());
            let mut ing = agg.ingester(0);
            let mut n = 0u64;
            b.iter(|| {
                ing.ingest(data.iter().map(|d| d.as_slice()), Encoding::Utf8);
                n += 1;
                // Keep timer sample lists bounded as a real flush interval would.
                if n.is_multiple_of(200) {
                    black_box(agg.flush(n as i64 * 10_000));
                }
            })
        });
    }
    for names in [10_000usize, 100_000] {
        let data = datagrams("mix", names, names / 20 + 1);
        g.throughput(Throughput::Elements(names as u64));
        g.bench_function(format!("flush_mix_{names}_names"), |b| {
            let agg = Arc::new(Aggregator::new(Config::default(), 1, 0).unwrap());
            let mut ing = agg.ingester(0);
            let mut ts = 0;
            b.iter(|| {
                ing.ingest(data.iter().map(|d| d.as_slice()), Encoding::Utf8);
                ts += 10_000;
                black_box(agg.flush(ts).len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parser, aggregator);
criterion_main!(benches);
