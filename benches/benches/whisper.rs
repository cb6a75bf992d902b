//! Whisper file operations: update, update_many and fetch on the `10s:6h,1m:7d,10m:5y` layout
//! the issue names. Compare with Python's whisper via `benches/whisper-vs-python.sh`.

use charcoal_store::{CreateOptions, Whisper, parse_retentions};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const NOW: i64 = 1_700_000_000;
const LAYOUT: &str = "10s:6h,1m:7d,10m:5y";

fn new_file(dir: &std::path::Path, name: &str) -> Whisper {
    let path = dir.join(name);
    Whisper::create(
        &path,
        &parse_retentions(LAYOUT).unwrap(),
        CreateOptions::default(),
    )
    .unwrap();
    Whisper::open(&path).unwrap()
}

/// A file with a year of data: 10 s points for the last 6 h, minutes for a week, 10 min beyond.
fn populated(dir: &std::path::Path) -> Whisper {
    let mut file = new_file(dir, "full.wsp");
    let mut points: Vec<(i64, f64)> = (0..2160).map(|i| (NOW - 10 * i, i as f64)).collect();
    points.extend((0..10080).map(|i| (NOW - 21_600 - 60 * i, i as f64)));
    points.extend((0..52_560).map(|i| (NOW - 604_800 - 600 * i, i as f64)));
    file.update_many(&mut points, NOW).unwrap();
    file
}

fn update(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut file = new_file(dir.path(), "u.wsp");
    let mut t = NOW;
    c.bench_function("whisper/update", |b| {
        b.iter(|| {
            t += 10;
            file.update(t, 1.0, t).unwrap();
        })
    });
}

fn update_many(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut file = new_file(dir.path(), "m.wsp");
    let mut group = c.benchmark_group("whisper/update_many");
    for batch in [10usize, 360] {
        group.throughput(Throughput::Elements(batch as u64));
        let mut clock = NOW;
        group.bench_function(format!("{batch}_points"), |b| {
            b.iter_batched_ref(
                || {
                    clock += 10 * batch as i64;
                    let now = clock;
                    let points: Vec<(i64, f64)> = (0..batch as i64)
                        .map(|i| (now - 10 * i, i as f64))
                        .collect();
                    (points, now)
                },
                |(points, now)| file.update_many(points, *now).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn fetch(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let file = populated(dir.path());
    let mut group = c.benchmark_group("whisper/fetch");
    for (name, seconds) in [("1h", 3_600), ("1d", 86_400), ("1y", 31_536_000)] {
        group.bench_function(name, |b| {
            b.iter(|| file.fetch(NOW - seconds, NOW, NOW).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, update, update_many, fetch);
criterion_main!(benches);
