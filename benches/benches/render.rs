//! Render API: target parsing, and parse + evaluate + JSON through the router for the issue's
//! goal workload — 100 series × 7 days at 1-minute resolution, summed (< 20 ms). Compare with
//! graphite-web on the same files via `benches/render-vs-graphite-web.sh`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use charcoal_store::{CreateOptions, StorageRules, Store, StoreConfig, Whisper, parse_retentions};
use charcoal_web::{AppState, Config, MemorySource, MetricSource, app, check_target};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tower::ServiceExt;

const NOW: i64 = 1_795_012_380;
const SERIES: usize = 100;
const POINTS: i64 = 7 * 1440;

fn points(i: usize) -> impl Iterator<Item = (i64, f64)> {
    (0..POINTS + 1440).map(move |k| (NOW - k * 60, ((k * 7 + i as i64) % 1000) as f64))
}

fn memory() -> Arc<MemorySource> {
    let src = Arc::new(MemorySource::new());
    for i in 0..SERIES {
        src.insert(&format!("bench.host{i:03}.value"), 60, points(i));
    }
    src
}

/// The same shape as whisper files (8 days at 60 s), written by charcoal-store and read
/// through its `Store`.
fn store(dir: &std::path::Path) -> Store {
    for i in 0..SERIES {
        let path = dir.join(format!("bench/host{i:03}/value.wsp"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        Whisper::create(
            &path,
            &parse_retentions("1m:8d").unwrap(),
            CreateOptions::default(),
        )
        .unwrap();
        let mut pts: Vec<(i64, f64)> = points(i).collect();
        Whisper::open(&path)
            .unwrap()
            .update_many(&mut pts, NOW)
            .unwrap();
    }
    let config = StoreConfig {
        data_dir: dir.to_owned(),
        ..StoreConfig::default()
    };
    Store::open(&config, StorageRules::default()).unwrap()
}

fn router(source: Arc<dyn MetricSource>) -> axum::Router {
    app(AppState::with_clock(source, Config::default(), || NOW).unwrap())
}

async fn render(router: &axum::Router, query: &str) -> usize {
    let req = Request::get(format!("/render?{query}"))
        .body(Body::empty())
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    assert!(resp.status().is_success());
    resp.into_body().collect().await.unwrap().to_bytes().len()
}

const GRAFANA_TARGET: &str = r#"aliasSub(aliasByNode(movingAverage(scaleToSeconds(nonNegativeDerivative(sumSeriesWithWildcards(servers.{web1,web2,db1}.interfaces.eth*.if_octets.rx, 3)), 1), '5min'), 1), "(^.*$)", "\1 A")"#;

fn parse(c: &mut Criterion) {
    c.bench_function("render/parse_grafana_target", |b| {
        b.iter(|| check_target(GRAFANA_TARGET).unwrap())
    });
}

fn evaluate(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sum = "target=sumSeries(bench.*.value)&from=-7d&format=json";
    let grafana = "target=aliasSub(sumSeries(bench.*.value),%20%22(%5E.*%24)%22,%20%22%5C1%20A%22)&from=-7d&until=now&format=json&maxDataPoints=1200";
    let mut group = c.benchmark_group("render");
    group.sample_size(30);
    let mem = router(memory());
    group.bench_function("sum_100x7d_json/memory", |b| {
        b.iter(|| rt.block_on(render(&mem, sum)))
    });
    let store = store(dir.path());
    let disk = router(Arc::new(store.clone()));
    group.bench_function("sum_100x7d_json/store", |b| {
        b.iter(|| rt.block_on(render(&disk, sum)))
    });
    group.bench_function("grafana_sum_100x7d_maxdatapoints/store", |b| {
        b.iter(|| rt.block_on(render(&disk, grafana)))
    });
    group.bench_function("raw_100x7d_json/store", |b| {
        b.iter(|| rt.block_on(render(&disk, "target=bench.*.value&from=-7d&format=json")))
    });
    group.finish();
    store.close();
}

criterion_group!(benches, parse, evaluate);
criterion_main!(benches);
