//! The store as a database: cache visibility, writers, rules, names, index, tags, limits.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use charcoal_store::{
    AggregationMethod, Retention, StorageRules, Store, StoreConfig, StoreError, Whisper,
};

const NOW: i64 = 1_700_000_000;

fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        data_dir: dir.to_owned(),
        writers: 2,
        ..StoreConfig::default()
    }
}

fn open(config: &StoreConfig, rules: StorageRules) -> Store {
    Store::open_with_clock(config, rules, Arc::new(|| NOW)).unwrap()
}

fn values(store: &Store, name: &str, from: i64) -> Vec<Option<f64>> {
    store.fetch(name, from, NOW, NOW).unwrap().unwrap().values
}

#[test]
fn points_are_visible_before_and_after_they_reach_disk() {
    let dir = tempfile::tempdir().unwrap();
    // Writers wait an hour between passes, so the points stay in the cache until flushed.
    let cfg = StoreConfig {
        flush_interval: Duration::from_secs(3600),
        ..config(dir.path())
    };
    let store = open(
        &cfg,
        StorageRules::with_default_retention(vec![Retention::new(10, 360)]),
    );
    store.write("a.b.c", 1.0, NOW - 20).unwrap();
    store.write("a.b.c", 2.0, NOW - 10).unwrap();
    store.write("a.b.c", 3.0, NOW - 10).unwrap(); // same second again: last received wins
    let file = dir.path().join("a/b/c.wsp");
    assert!(!file.exists(), "written before the flush interval");
    let before = values(&store, "a.b.c", NOW - 30);
    assert_eq!(before, [Some(1.0), Some(3.0), None]);
    assert_eq!(store.find("a.b.*").len(), 1, "a cached metric is findable");
    assert!(store.flush(Duration::from_secs(10)));
    assert!(file.exists());
    assert_eq!(values(&store, "a.b.c", NOW - 30), before);
    let on_disk = Whisper::open_read_only(&file).unwrap();
    assert_eq!(
        on_disk.fetch(NOW - 30, NOW, NOW).unwrap().unwrap().values,
        before
    );
    let stats = store.stats();
    assert_eq!(
        (stats.accepted, stats.committed_points, stats.creates),
        (3, 2, 1)
    );
    assert_eq!(stats.cache_size, 0);
    store.close();
}

#[test]
fn new_files_follow_the_storage_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut rules = StorageRules::default();
    rules
        .parse_schemas(
            "[stats]\npattern = ^stats\\.\nretentions = 10s:1h,1m:1d\n[default]\npattern = .*\nretentions = 60:60\n",
            Path::new("schemas"),
        )
        .unwrap();
    rules
        .parse_aggregation(
            "[count]\npattern = \\.count$\nxFilesFactor = 0\naggregationMethod = sum\n",
            Path::new("aggregation"),
        )
        .unwrap();
    let store = open(&config(dir.path()), rules);
    store.write("stats.api.count", 1.0, NOW).unwrap();
    store.write("other.thing", 1.0, NOW).unwrap();
    assert!(store.flush(Duration::from_secs(10)));
    let h = Whisper::open_read_only(&dir.path().join("stats/api/count.wsp")).unwrap();
    let h = h.header();
    assert_eq!(h.archives.len(), 2);
    assert_eq!(
        (h.aggregation, h.x_files_factor),
        (AggregationMethod::Sum, 0.0)
    );
    let o = Whisper::open_read_only(&dir.path().join("other/thing.wsp")).unwrap();
    assert_eq!(o.header().max_retention, 3600);
    assert_eq!(o.header().aggregation, AggregationMethod::Average);
    store.close();
}

#[test]
fn hostile_names_are_refused_and_nothing_escapes_the_data_directory() {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("data");
    let store = open(&config(&root), StorageRules::default());
    let hostile = [
        "",
        "..",
        "../../etc/passwd",
        "a/../../b",
        "/etc/passwd",
        "a..b",
        ".hidden",
        "a.",
        "a\0b",
        "a\nb",
        "_tagged.x.y",
        "x;tag=",
        "x;=v",
        &"n".repeat(5000),
        &format!("a.{}", "b".repeat(300)),
    ];
    for name in hostile {
        match store.write(name, 1.0, NOW) {
            Err(StoreError::Name { .. }) => {}
            other => panic!("{name:?} was not refused: {other:?}"),
        }
        assert!(matches!(
            store.fetch(name, NOW - 60, NOW, NOW),
            Err(StoreError::Name { .. })
        ));
    }
    // A good point next to them is kept.
    store.write("good.one", 5.0, NOW).unwrap();
    assert!(store.flush(Duration::from_secs(10)));
    assert_eq!(store.stats().invalid_names, hostile.len() as u64);
    let mut found = Vec::new();
    let mut stack = vec![base.path().to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    assert_eq!(found, [root.join("good/one.wsp")]);
    store.close();
}

#[test]
fn reopening_indexes_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let store = open(&cfg, StorageRules::default());
    for name in [
        "servers.web1.cpu",
        "servers.web2.cpu",
        "servers.web1.load",
        "disk.used;host=web1;dc=east",
    ] {
        store.write(name, 1.0, NOW).unwrap();
    }
    store.close();
    let store = open(&cfg, StorageRules::default());
    let found: Vec<String> = store
        .find("servers.*.cpu")
        .into_iter()
        .map(|m| m.path)
        .collect();
    assert_eq!(found, ["servers.web1.cpu", "servers.web2.cpu"]);
    assert_eq!(
        store.find_series_by_tag(&["host=web1"]).unwrap(),
        ["disk.used;dc=east;host=web1"]
    );
    assert_eq!(
        values(&store, "disk.used;dc=east;host=web1", NOW - 60),
        [Some(1.0)]
    );
    assert_eq!(
        store.all_metrics(),
        [
            "servers.web1.cpu",
            "servers.web1.load",
            "servers.web2.cpu",
            "disk.used;dc=east;host=web1"
        ]
    );
    store.close();
}

#[test]
fn a_full_cache_refuses_points_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        cache_max_points: 3,
        flush_interval: Duration::from_secs(3600),
        ..config(dir.path())
    };
    let store = open(&cfg, StorageRules::default());
    for i in 0..3 {
        store.write("m", 1.0, NOW - 60 * i).unwrap();
    }
    assert!(!store.has_room());
    assert!(matches!(
        store.write("m", 1.0, NOW - 600),
        Err(StoreError::CacheFull { max_points: 3 })
    ));
    assert!(matches!(
        store.write("n", 1.0, NOW),
        Err(StoreError::CacheFull { .. })
    ));
    assert_eq!(store.stats().cache_full, 2);
    // Writers are woken by the pressure and make room.
    assert!(store.flush(Duration::from_secs(10)));
    store.write("n", 1.0, NOW).unwrap();
    store.close();
}

#[test]
fn creates_beyond_the_budget_wait_in_the_cache_and_are_written_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        max_creates_per_minute: 1,
        ..config(dir.path())
    };
    let store = open(&cfg, StorageRules::default());
    for name in ["one", "two", "three"] {
        store.write(name, 7.0, NOW).unwrap();
    }
    assert!(!store.flush(Duration::from_millis(300)));
    let files = |d: &Path| std::fs::read_dir(d).unwrap().count();
    assert_eq!(files(dir.path()), 1);
    // Waiting points are still readable.
    for name in ["one", "two", "three"] {
        assert_eq!(values(&store, name, NOW - 60), [Some(7.0)], "{name}");
    }
    store.close();
    assert_eq!(files(dir.path()), 3);
}

#[test]
fn an_existing_graphite_directory_is_served_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy/host/cpu.wsp");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    Whisper::create(&path, &[Retention::new(60, 1440)], Default::default()).unwrap();
    Whisper::open(&path)
        .unwrap()
        .update(NOW - 60, 42.0, NOW)
        .unwrap();
    let store = open(&config(dir.path()), StorageRules::default());
    assert_eq!(store.find("legacy.*.*")[0].path, "legacy.host.cpu");
    assert_eq!(
        values(&store, "legacy.host.cpu", NOW - 120),
        [Some(42.0), None]
    );
    // New points go into the existing file, whatever the rules say.
    store.write("legacy.host.cpu", 43.0, NOW).unwrap();
    store.close();
    let file = Whisper::open_read_only(&path).unwrap();
    assert_eq!(
        file.fetch(NOW - 120, NOW, NOW).unwrap().unwrap().values,
        [Some(42.0), Some(43.0)]
    );
}

#[test]
fn unknown_metrics_fetch_as_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&config(dir.path()), StorageRules::default());
    assert_eq!(
        store.fetch("nothing.here", NOW - 60, NOW, NOW).unwrap(),
        None
    );
    store.close();
}

#[test]
fn more_metrics_than_open_files_all_reach_disk() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        open_files: 32,
        ..config(dir.path())
    };
    let store = open(&cfg, StorageRules::default());
    for round in 0..3 {
        for m in 0..200 {
            store
                .write(&format!("many.m{m}"), 1.0, NOW - 60 * round)
                .unwrap();
        }
        assert!(store.flush(Duration::from_secs(10)));
    }
    let stats = store.stats();
    assert_eq!(
        (stats.committed_points, stats.errors, stats.creates),
        (600, 0, 200)
    );
    store.close();
}

#[test]
fn successive_passes_append_to_the_ring() {
    let dir = tempfile::tempdir().unwrap();
    let rules = StorageRules::with_default_retention(vec![
        Retention::new(1, 600),
        Retention::new(10, 8640),
    ]);
    let store = open(&config(dir.path()), rules);
    for i in 0..5 {
        store.write("ring.m", i as f64, NOW - 5 + i).unwrap();
        assert!(store.flush(Duration::from_secs(10)));
    }
    store.close();
    let file = Whisper::open_read_only(&dir.path().join("ring/m.wsp")).unwrap();
    let s = file.fetch(NOW - 6, NOW, NOW).unwrap().unwrap();
    assert_eq!(
        s.values,
        [Some(0.0), Some(1.0), Some(2.0), Some(3.0), Some(4.0), None]
    );
}
