//! The whisper format against the real Python whisper 1.1.10: identical bytes on creation and
//! after the same updates, and identical fetch results on the same files, both ways.

use std::path::Path;

use charcoal_store::{AggregationMethod, CreateOptions, Series, Whisper, parse_retentions};
use serde_json::{Value, json};

use crate::support::{Oracle, Rng};

const NOW: i64 = 1_700_000_000;

/// Retention, xFilesFactor and method combinations used throughout.
const COMBOS: [(&str, f64, &str); 12] = [
    ("60:1440", 0.5, "average"),
    ("10s:6h,1m:7d,10m:5y", 0.5, "average"),
    ("1s:1d", 0.0, "sum"),
    ("1m:1d,1h:30d", 0.1, "absmin"),
    ("1d:1y,1h:1w", 1.0, "max"),
    ("10s:1m,1m:4m", 0.0, "sum"),
    ("10s:10m,1m:1h,5m:1d", 0.3, "min"),
    ("5s:5m,30s:1h", 0.2, "last"),
    ("15s:15m,1m:2h,1h:2d", 0.25, "avg_zero"),
    ("10s:30m,2m:6h", 0.75, "absmax"),
    ("1s:2m,10s:20m,1m:2h", 0.5, "average"),
    ("7s:70s,14s:5m", 0.0, "last"),
];

fn archives_json(retentions: &str) -> Value {
    let list = parse_retentions(retentions).unwrap();
    Value::from(
        list.iter()
            .map(|r| json!([r.step, r.points]))
            .collect::<Vec<_>>(),
    )
}

fn ours(path: &Path, retentions: &str, xff: f64, method: &str, sparse: bool) {
    Whisper::create(
        path,
        &parse_retentions(retentions).unwrap(),
        CreateOptions {
            x_files_factor: xff,
            aggregation: method.parse::<AggregationMethod>().unwrap(),
            sparse,
        },
    )
    .unwrap();
}

fn theirs(
    oracle: &mut Oracle,
    path: &Path,
    retentions: &str,
    xff: f64,
    method: &str,
    sparse: bool,
) {
    oracle.ok(json!({
        "op": "create", "path": path, "archives": archives_json(retentions),
        "xff": xff, "method": method, "sparse": sparse,
    }));
}

fn value_json(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        json!(format!("{v}").to_lowercase())
    }
}

fn series_json(series: Option<Series>) -> Value {
    match series {
        None => Value::Null,
        Some(s) => json!({
            "start": s.start, "end": s.end, "step": s.step,
            "values": s.values.iter().map(|v| v.map_or(Value::Null, value_json)).collect::<Vec<_>>(),
        }),
    }
}

#[test]
fn creation_is_byte_identical() {
    let Some(mut oracle) = Oracle::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (i, (retentions, xff, method)) in COMBOS.iter().enumerate() {
        for sparse in [false, true] {
            let a = dir.path().join(format!("ours-{i}-{sparse}.wsp"));
            let b = dir.path().join(format!("theirs-{i}-{sparse}.wsp"));
            ours(&a, retentions, *xff, method, sparse);
            theirs(&mut oracle, &b, retentions, *xff, method, sparse);
            assert!(
                std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
                "{retentions} xff={xff} {method} sparse={sparse}: files differ"
            );
        }
    }
}

/// Random batches for a file: timestamps spread over every archive's age band (and a little
/// into the future), with duplicates and special values, each batch smaller than the finest
/// ring so that none is a run longer than the ring (the reference's V29 bug).
fn random_batch(rng: &mut Rng, now: i64, max_retention: i64, ring: u64) -> Vec<(i64, f64)> {
    let len = 1 + rng.below(ring.min(200));
    (0..len)
        .map(|_| {
            let age = match rng.below(10) {
                0 => -(rng.below(30) as i64),
                1..=5 => rng.below((max_retention as u64 / 50).max(2)) as i64,
                _ => rng.below(max_retention as u64 + 100) as i64,
            };
            let value = match rng.below(40) {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => -0.0,
                _ => (rng.below(20_000) as f64 - 10_000.0) / 16.0,
            };
            (now - age, value)
        })
        .collect()
}

/// Two files hold the same data when their headers are identical and each archive holds the
/// same (interval, value) slots. Where in the ring a slot sits depends on the archive's base,
/// the first interval written to it; when one batch rolls up into several intervals of an empty
/// archive, whisper picks the first by Python's set iteration order and we pick the oldest. The
/// positions differ, what every read returns does not (a slot is found from its interval).
fn assert_same_content(a: &Path, b: &Path, context: &str) {
    let (fa, fb) = (
        Whisper::open_read_only(a).unwrap(),
        Whisper::open_read_only(b).unwrap(),
    );
    let header = fa.header().clone();
    assert_eq!(header, *fb.header(), "{context}: headers differ");
    let bytes = |p: &Path| std::fs::read(p).unwrap()[..header.len()].to_vec();
    assert_eq!(bytes(a), bytes(b), "{context}: header bytes differ");
    for index in 0..header.archives.len() {
        let slots = |f: &Whisper| {
            let mut s: Vec<(u32, u64)> = f
                .raw_archive(index)
                .unwrap()
                .into_iter()
                .filter(|(t, _)| *t != 0)
                .map(|(t, v)| (t, v.to_bits()))
                .collect();
            s.sort();
            s
        };
        assert_eq!(
            slots(&fa),
            slots(&fb),
            "{context}: archive {index} holds different points"
        );
    }
}

/// Applies the same operations through both implementations to two files and compares their
/// content after every step, then compares fetches of both files by both implementations.
#[test]
fn same_updates_give_the_same_content_and_fetches() {
    let Some(mut oracle) = Oracle::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(0x5eed_1234);
    for (i, (retentions, xff, method)) in COMBOS.iter().enumerate() {
        let a = dir.path().join(format!("ours-{i}.wsp"));
        let b = dir.path().join(format!("theirs-{i}.wsp"));
        ours(&a, retentions, *xff, method, false);
        theirs(&mut oracle, &b, retentions, *xff, method, false);
        let mut file = Whisper::open(&a).unwrap();
        let header = file.header().clone();
        let max_retention = i64::from(header.max_retention);
        let ring = u64::from(header.archives[0].points);
        let mut now = NOW;
        for round in 0..25 {
            // Move the clock on, sometimes by more than the finest ring, so rings wrap.
            now += match round % 3 {
                0 => 0,
                1 => rng.below(header.archives[0].retention() as u64 * 2) as i64,
                _ => rng.below(300) as i64,
            };
            if rng.below(4) == 0 {
                let age = rng.below(max_retention as u64) as i64;
                let value = (rng.below(1000) as f64) / 4.0;
                file.update(now - age, value, now).unwrap();
                oracle.ok(json!({"op": "update", "path": b, "value": value, "timestamp": now - age, "now": now}));
            } else {
                let batch = random_batch(&mut rng, now, max_retention, ring);
                let wire: Vec<Value> = batch
                    .iter()
                    .map(|&(t, v)| json!([t, value_json(v)]))
                    .collect();
                file.update_many(&mut batch.clone(), now).unwrap();
                oracle.ok(json!({"op": "update_many", "path": b, "points": wire, "now": now}));
            }
            assert_same_content(
                &a,
                &b,
                &format!("{retentions} {method} xff={xff}: round {round}"),
            );
        }
        // Fetch ranges that hit every archive, by both implementations on both files.
        let theirs_file = Whisper::open_read_only(&b).unwrap();
        for archive in &header.archives {
            let r = archive.retention();
            for from_age in [r - 1, r, r + 1, r / 2, 3 * i64::from(archive.step)] {
                for until_age in [0, 1, from_age / 3, -5] {
                    let (from, until) = (now - from_age, now - until_age);
                    let mine = file.fetch(from, until, now);
                    let reference = oracle.call(
                        json!({"op": "fetch", "path": a, "from": from, "until": until, "now": now}),
                    );
                    match (mine, reference.get("ok")) {
                        (Ok(s), Some(expected)) => {
                            let expected = expected.clone();
                            assert_eq!(
                                series_json(s),
                                expected,
                                "{retentions}: fetch({from}, {until}) of our file"
                            );
                            let other = theirs_file.fetch(from, until, now).unwrap();
                            assert_eq!(
                                series_json(other),
                                expected,
                                "{retentions}: fetch({from}, {until}) of their file"
                            );
                        }
                        (Err(e), None) => assert_eq!(
                            reference["error"], "InvalidTimeInterval",
                            "{retentions}: we failed with {e}, whisper with {reference}"
                        ),
                        (mine, _) => panic!(
                            "{retentions}: fetch({from}, {until}): ours {mine:?}, whisper {reference}"
                        ),
                    }
                }
            }
        }
    }
}

#[test]
fn info_matches() {
    let Some(mut oracle) = Oracle::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (i, (retentions, xff, method)) in COMBOS.iter().enumerate() {
        let path = dir.path().join(format!("{i}.wsp"));
        ours(&path, retentions, *xff, method, true);
        let info = oracle.ok(json!({"op": "info", "path": path}));
        let file = Whisper::open_read_only(&path).unwrap();
        let h = file.header();
        assert_eq!(info["aggregationMethod"], h.aggregation.name());
        assert_eq!(info["maxRetention"], h.max_retention);
        assert_eq!(info["xFilesFactor"], f64::from(h.x_files_factor));
        let archives: Vec<Value> = h
            .archives
            .iter()
            .map(|a| json!({"offset": a.offset, "secondsPerPoint": a.step, "points": a.points, "retention": a.retention(), "size": a.size()}))
            .collect();
        assert_eq!(info["archives"], Value::from(archives));
    }
}
