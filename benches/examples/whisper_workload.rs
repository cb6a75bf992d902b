//! The update_many workload of `benches/whisper-vs-python.sh`, for side-by-side comparison with
//! Python's whisper: BATCHES batches of 360 ten-second points (one hour each) into a fresh
//! `10s:6h,1m:7d,10m:5y` file, the clock moving one hour per batch. Prints points per second.

use std::time::Instant;

use charcoal_store::{CreateOptions, Whisper, parse_retentions};

fn main() {
    let batches: i64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("w.wsp");
    let layout = parse_retentions("10s:6h,1m:7d,10m:5y").expect("layout");
    Whisper::create(&path, &layout, CreateOptions::default()).expect("create");
    let mut file = Whisper::open(&path).expect("open");
    let start_clock = 1_700_000_000;
    let mut points = Vec::with_capacity(360);
    let started = Instant::now();
    for batch in 0..batches {
        let now = start_clock + 3600 * batch;
        points.clear();
        points.extend((0..360).map(|i| (now - 10 * i, (batch * 360 + i) as f64)));
        file.update_many(&mut points, now).expect("update_many");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = batches * 360;
    println!(
        "charcoal update_many: {total} points in {elapsed:.4} s = {:.0} points/s",
        total as f64 / elapsed
    );
}
