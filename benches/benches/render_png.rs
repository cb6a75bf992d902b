//! PNG graphs: an 800×600 image of 3 series × 1,000 points with title, axis labels and
//! legend (issue target: a few milliseconds). Drawing into the RGB buffer and PNG encoding
//! (deflate level 1, Up filter) are measured separately, then the whole `/render?format=png`
//! request through the router.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use charcoal_web::{AppState, Config, GraphRenderer, MemorySource, app};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tower::ServiceExt;

const NOW: i64 = 1_795_737_600;
const POINTS: usize = 1000;
const STEP: i64 = 60;
const QUERY: &str = "width=800&height=600&title=Three%20series&vtitle=percent";

/// Deterministic wiggly values in 0..100.
fn value(series: usize, k: usize) -> f64 {
    let x = k as f64 / 40.0 + series as f64;
    50.0 + 30.0 * x.sin() + 10.0 * ((k * 7919 + series * 104_729) % 97) as f64 / 97.0
}

fn renderer() -> GraphRenderer {
    let mut g = GraphRenderer::new(QUERY).unwrap();
    let start = NOW - POINTS as i64 * STEP;
    for s in 0..3 {
        let values: Vec<Option<f64>> = (0..POINTS).map(|k| Some(value(s, k))).collect();
        g.add_series(&format!("bench.host{s}.cpu.user"), start, STEP, &values);
    }
    g
}

fn png(c: &mut Criterion) {
    let mut group = c.benchmark_group("render_png");
    let mut g = renderer();
    group.bench_function("draw_800x600_3x1000", |b| b.iter(|| g.draw().unwrap()));
    g.draw().unwrap();
    group.bench_function("encode_800x600", |b| {
        b.iter(|| g.encode_png().unwrap().len())
    });
    group.bench_function("draw_and_encode_800x600_3x1000", |b| {
        b.iter(|| {
            g.draw().unwrap();
            g.encode_png().unwrap().len()
        })
    });

    let src = Arc::new(MemorySource::new());
    for s in 0..3 {
        src.insert(
            &format!("bench.host{s}.cpu.user"),
            STEP,
            (0..POINTS).map(|k| (NOW - (POINTS - k) as i64 * STEP, value(s, k))),
        );
    }
    let router = app(AppState::with_clock(src, Config::default(), || NOW).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let uri = format!("/render?target=bench.*.cpu.user&from=-{POINTS}min&format=png&{QUERY}");
    group.bench_function("request_800x600_3x1000", |b| {
        b.iter(|| {
            rt.block_on(async {
                let req = Request::get(&uri).body(Body::empty()).unwrap();
                let resp = router.clone().oneshot(req).await.unwrap();
                assert!(resp.status().is_success());
                resp.into_body().collect().await.unwrap().to_bytes().len()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, png);
criterion_main!(benches);
