//! The render API over real whisper files (written by charcoal-store) read through the
//! store's `Store`: its index for find and tags, its write cache for fresh points.

use std::path::Path;
use std::sync::Arc;

use charcoal_store::{CreateOptions, StorageRules, Store, StoreConfig, Whisper, parse_retentions};
use charcoal_web::{AppState, Config, app};
use serde_json::json;

use crate::util::get;

const NOW: i64 = 1_700_002_800;

fn write(root: &Path, rel: &str, retention: &str, points: &mut [(i64, f64)]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    Whisper::create(
        &path,
        &parse_retentions(retention).unwrap(),
        CreateOptions::default(),
    )
    .unwrap();
    Whisper::open(&path)
        .unwrap()
        .update_many(points, NOW)
        .unwrap();
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    app: axum::Router,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.store.close();
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut pts: Vec<(i64, f64)> = (0..120).map(|k| (NOW - k * 60, k as f64)).collect();
    write(root, "servers/web1/load.wsp", "1m:1d,5m:30d", &mut pts);
    let mut pts: Vec<(i64, f64)> = (0..120).map(|k| (NOW - k * 60, 2.0 * k as f64)).collect();
    write(root, "servers/web2/load.wsp", "1m:1d,5m:30d", &mut pts);
    let mut pts: Vec<(i64, f64)> = (0..720).map(|k| (NOW - k * 10, 1.0)).collect();
    write(root, "servers/db1/load.wsp", "10s:1d", &mut pts);
    // The canonical location of a tagged series (spec §9).
    let mut pts = vec![(NOW, 5.0)];
    write(
        root,
        "_tagged/f75/ad7/disk_DOT_used;dc=east;host=web1.wsp",
        "1m:1d",
        &mut pts,
    );
    let config = StoreConfig {
        data_dir: root.to_owned(),
        ..StoreConfig::default()
    };
    let store = Store::open_with_clock(&config, StorageRules::default(), Arc::new(|| NOW)).unwrap();
    let state = AppState::with_clock(Arc::new(store.clone()), Config::default(), || NOW).unwrap();
    Fixture {
        _dir: dir,
        store,
        app: app(state),
    }
}

#[tokio::test]
async fn renders_and_finds_over_whisper_files() {
    let f = fixture();
    let app = &f.app;
    let r = get(
        app,
        "/render?target=servers.web1.load&from=-3min&format=json",
    )
    .await;
    assert_eq!(
        r.json()[0]["datapoints"],
        json!([[2.0, NOW - 120], [1.0, NOW - 60], [0.0, NOW]])
    );
    // 10 s and 60 s files summed: LCM 60, positional combination (spec §11).
    let r = get(
        app,
        "/render?target=sumSeries(servers.{web1,db1}.load)&from=-3min&format=json",
    )
    .await;
    let j = r.json();
    assert_eq!(j[0]["target"], "sumSeries(servers.{web1,db1}.load)");
    assert_eq!(j[0]["datapoints"][0][1], json!(NOW - 170));
    let r = get(app, "/metrics/find?query=servers.*").await;
    let names: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["db1", "web1", "web2"]);
    let r = get(app, "/metrics/expand?query=servers.web*.load").await;
    assert_eq!(
        r.json(),
        json!({"results": ["servers.web1.load", "servers.web2.load"]})
    );
    // A 7-day query starts beyond the 1-day archive and reads the 5-minute one.
    let r = get(app, "/render?target=servers.web1.load&from=-7d&format=json").await;
    let p = r.json()[0]["datapoints"].as_array().unwrap().clone();
    assert_eq!(p[1][1].as_i64().unwrap() - p[0][1].as_i64().unwrap(), 300);
}

#[tokio::test]
async fn tagged_files_are_found_by_tags() {
    let f = fixture();
    let r = get(
        &f.app,
        "/render?target=seriesByTag('host=web1')&from=-1min&format=json",
    )
    .await;
    let j = r.json();
    assert_eq!(j[0]["target"], "disk.used;dc=east;host=web1");
    assert_eq!(j[0]["datapoints"], json!([[5.0, NOW]]));
    let r = get(
        &f.app,
        "/render?target=disk.used;dc=east;host=web1&from=-1min&format=json",
    )
    .await;
    assert_eq!(r.json()[0]["datapoints"], json!([[5.0, NOW]]));
    let r = get(&f.app, "/tags/autoComplete/values?tag=dc").await;
    assert_eq!(r.json(), json!(["east"]));
    let r = get(&f.app, "/metrics/find?query=*").await;
    assert_eq!(
        r.json()[0]["text"],
        "_tagged",
        "graphite-web lists _tagged at the root"
    );
    let r = get(&f.app, "/metrics/index.json").await;
    assert!(
        r.json()
            .as_array()
            .unwrap()
            .contains(&json!("disk.used;dc=east;host=web1"))
    );
}

#[tokio::test]
async fn points_are_graphable_the_moment_they_arrive() {
    let f = fixture();
    f.store.write("servers.web1.load", 42.0, NOW).unwrap();
    f.store.write("servers.new.metric", 7.0, NOW - 60).unwrap();
    let r = get(
        &f.app,
        "/render?target=servers.web1.load&from=-1min&format=json",
    )
    .await;
    assert_eq!(r.json()[0]["datapoints"], json!([[42.0, NOW]]));
    let r = get(
        &f.app,
        "/render?target=servers.new.*&from=-2min&format=json",
    )
    .await;
    assert_eq!(
        r.json()[0]["datapoints"],
        json!([[7.0, NOW - 60], [null, NOW]])
    );
}
