//! Whisper behaviour against the spec's vectors (produced by the real whisper 1.1.10 at
//! now = 1700000000), and against an in-memory model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;
use crate::aggregation::AggregationMethod;
use crate::error::{Corruption, WhisperError};
use crate::retention::parse_retentions;

const NOW: i64 = 1_700_000_000;

fn create(dir: &Path, name: &str, retentions: &str, xff: f64, method: &str) -> PathBuf {
    let path = dir.join(name);
    Whisper::create(
        &path,
        &parse_retentions(retentions).unwrap(),
        CreateOptions {
            x_files_factor: xff,
            aggregation: method.parse().unwrap(),
            sparse: false,
        },
    )
    .unwrap();
    path
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn slot_hex(path: &Path, at: usize) -> String {
    hex(&std::fs::read(path).unwrap()[at..at + 12])
}

fn fetch(file: &Whisper, from: i64, until: i64, now: i64) -> (i64, i64, i64, Vec<Option<f64>>) {
    let s = file.fetch(from, until, now).unwrap().unwrap();
    (s.start, s.end, s.step, s.values)
}

#[test]
fn v07_update_writes_slot_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "60:1440", 0.5, "average");
    let mut file = Whisper::open(&path).unwrap();
    file.update(NOW, 5.0, NOW).unwrap();
    assert_eq!(slot_hex(&path, 28), "6553f0ec4014000000000000");
    assert_eq!(
        fetch(&file, NOW - 300, NOW, NOW),
        (
            1699999740,
            1700000040,
            60,
            vec![None, None, None, None, Some(5.0)]
        )
    );
}

#[test]
fn v08_updates_after_the_base_wrap_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "60:1440", 0.5, "average");
    let mut file = Whisper::open(&path).unwrap();
    let now = 1_700_000_060;
    file.update(1_700_000_000, 5.0, now).unwrap();
    file.update(1_700_000_060, 6.0, now).unwrap();
    file.update(1_699_999_940, 4.0, now).unwrap();
    assert_eq!(slot_hex(&path, 28 + 12), "6553f1284018000000000000");
    assert_eq!(slot_hex(&path, 28 + 1439 * 12), "6553f0b04010000000000000");
    assert_eq!(
        fetch(&file, now - 240, now, now),
        (
            1699999860,
            1700000100,
            60,
            vec![None, Some(4.0), Some(5.0), Some(6.0)]
        )
    );
}

#[test]
fn v09_ring_wraps_and_drops_old_points() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "60:5", 0.5, "average");
    let mut file = Whisper::open(&path).unwrap();
    for i in 0..7 {
        let t = NOW - 360 + 60 * i;
        file.update(t, i as f64, t).unwrap();
    }
    let expected = (
        1699999740,
        1700000040,
        60,
        vec![Some(2.0), Some(3.0), Some(4.0), Some(5.0), Some(6.0)],
    );
    assert_eq!(fetch(&file, NOW - 300, NOW, NOW), expected);
    assert_eq!(fetch(&file, NOW - 1000, NOW, NOW), expected);
    let slots = file.raw_archive(0).unwrap();
    assert_eq!(
        slots,
        vec![
            (1699999920, 5.0),
            (1699999980, 6.0),
            (1699999740, 2.0),
            (1699999800, 3.0),
            (1699999860, 4.0)
        ]
    );
}

#[test]
fn v10_update_range_checks() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "60:60", 0.5, "average");
    let mut file = Whisper::open(&path).unwrap();
    for t in [NOW + 1, NOW - 3600] {
        let err = file.update(t, 1.0, NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Timestamp not covered by any archives in this database."
        );
    }
    file.update(NOW - 3599, 1.0, NOW).unwrap();
    file.update(1_699_999_999, 2.0, NOW).unwrap();
    assert_eq!(
        fetch(&file, NOW - 120, NOW, NOW),
        (1699999920, 1700000040, 60, vec![None, Some(2.0)])
    );
}

#[test]
fn v11_update_many_keeps_future_and_drops_too_old() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "10s:10m,1m:1h", 0.5, "average");
    let mut file = Whisper::open(&path).unwrap();
    let outcome = file
        .update_many(&mut [(NOW, 1.0), (NOW + 300, 9.0), (NOW - 3601, 5.0)], NOW)
        .unwrap();
    assert_eq!(
        outcome,
        UpdateOutcome {
            written: 2,
            dropped: 1
        }
    );
    let nonzero: Vec<(usize, u32, f64)> = file
        .raw_archive(0)
        .unwrap()
        .into_iter()
        .enumerate()
        .filter(|(_, (t, _))| *t != 0)
        .map(|(i, (t, v))| (i, t, v))
        .collect();
    assert_eq!(nonzero, vec![(0, 1700000000, 1.0), (30, 1700000300, 9.0)]);
    assert_eq!(
        fetch(&file, NOW - 60, NOW + 600, NOW),
        (
            1699999950,
            1700000010,
            10,
            vec![None, None, None, None, None, Some(1.0)]
        )
    );
    let later = NOW + 300;
    assert_eq!(
        fetch(&file, later - 50, later, later),
        (
            1700000260,
            1700000310,
            10,
            vec![None, None, None, None, Some(9.0)]
        )
    );
}

#[test]
fn v12_duplicates_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "10s:10m", 0.5, "average");
    let mut file = Whisper::open(&path).unwrap();
    file.update_many(
        &mut [(NOW, 1.0), (NOW, 2.0), (NOW - 10, 3.0), (NOW - 7, 4.0)],
        NOW,
    )
    .unwrap();
    assert_eq!(
        fetch(&file, NOW - 20, NOW, NOW),
        (1699999990, 1700000010, 10, vec![Some(4.0), Some(1.0)])
    );
}

#[test]
fn v14_x_files_factor_compares_against_the_stored_f32() {
    let cases = [
        (0.1, 1, false),
        (0.1, 2, true),
        (0.2, 2, false),
        (0.3, 3, false),
        (0.3, 4, true),
        (0.5, 5, true),
        (0.5, 4, false),
        (0.0, 0, false),
        (1.0, 10, true),
        (1.0, 9, false),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (xff, known, propagated)) in cases.into_iter().enumerate() {
        let path = create(
            dir.path(),
            &format!("{i}.wsp"),
            "1s:100s,10s:1h",
            xff,
            "average",
        );
        let mut file = Whisper::open(&path).unwrap();
        let start = NOW - 50;
        let mut points: Vec<(i64, f64)> = (0..known).map(|k| (start + k, 1.0)).collect();
        file.update_many(&mut points, NOW).unwrap();
        let coarse = file
            .fetch_archive(start - 10, start, NOW, 10)
            .unwrap()
            .unwrap();
        assert_eq!(
            coarse.values,
            vec![propagated.then_some(1.0)],
            "xff {xff} known {known}"
        );
    }
}

#[test]
fn v15_three_level_rollup() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "10s:10m,1m:1h,5m:1d", 0.5, "average");
    let mut file = Whisper::open(&path).unwrap();
    let start = 1_699_999_500;
    let minute = |m: i64, v: f64| (0..6).map(move |k| (start + 60 * m + 10 * k, v));
    file.update_many(&mut minute(0, 1.0).collect::<Vec<_>>(), NOW)
        .unwrap();
    let five = |f: &Whisper| {
        f.fetch_archive(start - 300, start, NOW, 300)
            .unwrap()
            .unwrap()
            .values
    };
    assert_eq!(five(&file), vec![None]);
    file.update_many(
        &mut minute(1, 2.0).chain(minute(2, 3.0)).collect::<Vec<_>>(),
        NOW,
    )
    .unwrap();
    assert_eq!(five(&file), vec![Some(2.0)]);
    let minutes = file
        .fetch_archive(start - 60, start + 120, NOW, 60)
        .unwrap()
        .unwrap();
    assert_eq!(minutes.values, vec![Some(1.0), Some(2.0), Some(3.0)]);
}

#[test]
fn v16_old_points_go_straight_to_coarser_archives() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "10s:6h,1m:7d,10m:5y", 0.5, "average");
    let mut file = Whisper::open(&path).unwrap();
    file.update_many(
        &mut [(NOW - 86_400, 7.0), (NOW - 40 * 86_400, 8.0), (NOW, 9.0)],
        NOW,
    )
    .unwrap();
    let nonnull = |s: Series| -> Vec<(i64, f64)> {
        s.values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (s.start + i as i64 * s.step, v)))
            .collect()
    };
    let two_days = file
        .fetch(NOW - 2 * 86_400, NOW - 86_400 + 60, NOW)
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            two_days.start,
            two_days.end,
            two_days.step,
            two_days.values.len()
        ),
        (1699827240, 1699913700, 60, 1441)
    );
    assert_eq!(nonnull(two_days), vec![(1699913580, 7.0)]);
    let forty_one = file
        .fetch(NOW - 41 * 86_400, NOW - 40 * 86_400 + 600, NOW)
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            forty_one.start,
            forty_one.end,
            forty_one.step,
            forty_one.values.len()
        ),
        (1696458000, 1696545000, 600, 145)
    );
    assert_eq!(nonnull(forty_one), vec![(1696543800, 8.0)]);
    let hour = file.fetch(NOW - 3600, NOW, NOW).unwrap().unwrap();
    assert_eq!(
        (hour.start, hour.end, hour.step, hour.values.len()),
        (1699996410, 1700000010, 10, 360)
    );
    assert_eq!(nonnull(hour), vec![(1700000000, 9.0)]);
    assert_eq!(slot_hex(&path, 52), "6553f1004022000000000000");
}

#[test]
fn v17_archive_choice_depends_on_from_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "10s:6h,1m:7d,10m:5y", 0.5, "average");
    let file = Whisper::open(&path).unwrap();
    let cases = [
        (NOW - 21_600, (1699978410, 1700000010, 10, 2160)),
        (NOW - 21_601, (1699978440, 1700000040, 60, 360)),
        (NOW - 604_800, (1699395240, 1700000040, 60, 10080)),
        (NOW - 604_801, (1699395600, 1700000400, 600, 1008)),
        (NOW - 10 * 31_536_000, (1542320400, 1700000400, 600, 262800)),
    ];
    for (from, (start, end, step, len)) in cases {
        let s = file.fetch(from, NOW, NOW).unwrap().unwrap();
        assert_eq!(
            (s.start, s.end, s.step, s.values.len()),
            (start, end, step, len),
            "{from}"
        );
        assert!(s.values.iter().all(Option::is_none));
    }
}

#[test]
fn v18_fetch_edge_cases() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "10s:10m,1m:1h", 0.5, "average");
    let mut file = Whisper::open(&path).unwrap();
    file.update(NOW - 10, 1.0, NOW).unwrap();
    file.update(NOW, 2.0, NOW).unwrap();
    assert_eq!(
        fetch(&file, NOW, NOW, NOW),
        (1700000010, 1700000020, 10, vec![None])
    );
    assert_eq!(
        fetch(&file, NOW - 10, NOW, NOW),
        (1700000000, 1700000010, 10, vec![Some(2.0)])
    );
    assert_eq!(
        fetch(&file, NOW - 25, NOW - 5, NOW),
        (1699999980, 1700000000, 10, vec![None, Some(1.0)])
    );
    assert_eq!(file.fetch(NOW + 1, NOW + 10, NOW).unwrap(), None);
    assert_eq!(file.fetch(NOW - 4000, NOW - 3601, NOW).unwrap(), None);
    assert_eq!(
        fetch(&file, NOW - 3600, NOW - 3600, NOW),
        (1699996440, 1699996500, 60, vec![None])
    );
    assert_eq!(
        file.fetch(NOW, NOW - 10, NOW).unwrap_err().to_string(),
        "Invalid time interval: from time '1700000000' is after until time '1699999990'"
    );
    let s = file
        .fetch_archive(NOW - 120, NOW, NOW, 60)
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.start, s.end, s.step, s.values),
        (1699999920, 1700000040, 60, vec![None, None])
    );
    assert_eq!(
        file.fetch_archive(NOW - 120, NOW, NOW, 300)
            .unwrap_err()
            .to_string(),
        "Invalid granularity: 300"
    );
}

#[test]
fn v20_set_aggregation_rewrites_metadata_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "60:10", 0.5, "average");
    let mut file = Whisper::open(&path).unwrap();
    let old = file
        .set_aggregation(AggregationMethod::Max, Some(0.25))
        .unwrap();
    assert_eq!(old, AggregationMethod::Average);
    assert_eq!(
        hex(&std::fs::read(&path).unwrap()[..16]),
        "00000004000002583e80000000000001"
    );
    assert_eq!(
        file.set_aggregation(AggregationMethod::Max, Some(2.0))
            .unwrap_err()
            .to_string(),
        "Invalid xFilesFactor 2, not between 0 and 1"
    );
    drop(file);
    assert_eq!(
        Whisper::open(&path).unwrap().header().aggregation,
        AggregationMethod::Max
    );
}

#[test]
fn v21_create_refuses_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "v20.wsp", "60:10", 0.5, "average");
    let before = std::fs::read(&path).unwrap();
    let err = Whisper::create(
        &path,
        &parse_retentions("1s:10").unwrap(),
        CreateOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("File {} already exists!", path.display())
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn v22_diff_then_merge() {
    let dir = tempfile::tempdir().unwrap();
    let a = create(dir.path(), "a.wsp", "10s:10m,1m:1h", 0.0, "sum");
    let b = create(dir.path(), "b.wsp", "10s:10m,1m:1h", 0.0, "sum");
    let mut fa = Whisper::open(&a).unwrap();
    let mut fb = Whisper::open(&b).unwrap();
    fa.update_many(&mut [(NOW - 30, 1.0), (NOW - 20, 2.0)], NOW)
        .unwrap();
    fb.update_many(&mut [(NOW - 20, 5.0), (NOW - 10, 6.0)], NOW)
        .unwrap();
    let d = diff(&fa, &fb, false, None, NOW).unwrap();
    assert_eq!(
        d,
        vec![
            DiffArchive {
                index: 0,
                differences: vec![
                    (1699999970, Some(1.0), None),
                    (1699999980, Some(2.0), Some(5.0)),
                    (1699999990, None, Some(6.0))
                ],
                compared: 3
            },
            DiffArchive {
                index: 1,
                differences: vec![],
                compared: 0
            }
        ]
    );
    merge(&fa, &mut fb, None, None, NOW).unwrap();
    assert_eq!(
        fetch(&fb, NOW - 40, NOW, NOW).3,
        vec![Some(1.0), Some(2.0), Some(6.0), None]
    );
    let minutes = fb.fetch_archive(NOW - 120, NOW, NOW, 60).unwrap().unwrap();
    assert_eq!(
        (minutes.start, minutes.end, minutes.step, minutes.values),
        (1699999920, 1700000040, 60, vec![Some(1.0), Some(2.0)])
    );
}

#[test]
fn v23_point_exactly_retention_old_overwrites_now() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "10s:10m,1m:1h", 0.5, "average");
    let mut file = Whisper::open(&path).unwrap();
    file.update_many(&mut [(NOW, 1.0)], NOW).unwrap();
    file.update_many(&mut [(NOW - 600, 2.0)], NOW).unwrap();
    assert_eq!(fetch(&file, NOW - 10, NOW, NOW).3, vec![None]);
    assert_eq!(slot_hex(&path, 40), "6553eea84000000000000000");
}

#[test]
fn v24_special_floats_are_stored_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "10s:10m", 0.5, "average");
    let mut file = Whisper::open(&path).unwrap();
    file.update_many(
        &mut [
            (NOW - 20, f64::NAN),
            (NOW - 10, f64::NEG_INFINITY),
            (NOW, -0.0),
        ],
        NOW,
    )
    .unwrap();
    assert_eq!(
        hex(&std::fs::read(&path).unwrap()[28..64]),
        "6553f0ec7ff80000000000006553f0f6fff00000000000006553f1008000000000000000"
    );
    let values = fetch(&file, NOW - 30, NOW, NOW).3;
    assert!(values[0].unwrap().is_nan());
    assert_eq!(values[1], Some(f64::NEG_INFINITY));
    assert!(values[2].unwrap().is_sign_negative() && values[2] == Some(0.0));
}

#[test]
fn v25_whole_file_after_one_update() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "10s:1m,1m:4m", 0.0, "sum");
    Whisper::open(&path).unwrap().update(NOW, 2.5, NOW).unwrap();
    assert_eq!(
        hex(&std::fs::read(&path).unwrap()),
        "00000002000000f00000000000000002000000280000000a00000006000000700000003c000000046553f10040040000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000006553f0ec4004000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    );
}

/// The reference's V29 bug: 20 consecutive future points into a 6-slot archive wrote into the
/// next archive. We keep the newest six in archive 0 and leave archive 1 to rollups only.
#[test]
fn v29_long_future_run_stays_inside_its_archive() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "10s:1m,1m:5m", 0.5, "average");
    let mut file = Whisper::open(&path).unwrap();
    let mut points: Vec<(i64, f64)> = (0..20).map(|i| (NOW + 10 * i, i as f64)).collect();
    file.update_many(&mut points, NOW).unwrap();
    let mut archive0 = file.raw_archive(0).unwrap();
    archive0.sort_by_key(|p| p.0);
    let expected: Vec<(u32, f64)> = (14..20)
        .map(|i| ((NOW + 10 * i) as u32, i as f64))
        .collect();
    assert_eq!(archive0, expected);
    for (interval, _) in file.raw_archive(1).unwrap() {
        assert!(
            interval == 0 || i64::from(interval) % 60 == 0,
            "archive 1 holds {interval}"
        );
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 172);
}

/// The reference's V30 quirk: a range longer than the selected archive's ring returned 6 values
/// for 60 intervals; we return all 60, the ones older than the ring as nulls.
#[test]
fn v30_forced_archive_returns_full_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "10s:1m,1m:1h", 0.5, "average");
    let mut file = Whisper::open(&path).unwrap();
    file.update(NOW, 3.0, NOW).unwrap();
    let s = file
        .fetch_archive(NOW - 600, NOW, NOW, 10)
        .unwrap()
        .unwrap();
    assert_eq!((s.start, s.end, s.step), (1699999410, 1700000010, 10));
    assert_eq!(s.values.len(), 60);
    assert_eq!(s.values.iter().flatten().count(), 1);
    assert_eq!(s.values[59], Some(3.0));
}

#[test]
fn sparse_and_dense_files_have_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let list = parse_retentions("10s:6h,1m:7d,10m:5y").unwrap();
    let dense = dir.path().join("dense.wsp");
    let sparse = dir.path().join("sparse.wsp");
    Whisper::create(&dense, &list, CreateOptions::default()).unwrap();
    Whisper::create(
        &sparse,
        &list,
        CreateOptions {
            sparse: true,
            ..CreateOptions::default()
        },
    )
    .unwrap();
    let (d, s) = (
        std::fs::read(&dense).unwrap(),
        std::fs::read(&sparse).unwrap(),
    );
    assert_eq!(d.len(), 3_300_532);
    assert_eq!(d, s);
    use std::os::unix::fs::MetadataExt;
    let blocks = |p: &Path| std::fs::metadata(p).unwrap().blocks() * 512;
    assert!(blocks(&dense) >= 3_300_532);
    assert!(blocks(&sparse) < 100_000);
}

#[test]
fn corrupt_files_give_typed_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "t.wsp", "60:10", 0.5, "average");
    let good = std::fs::read(&path).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("10 bytes", good[..10].to_vec()),
        ("truncated data", good[..28 + 36].to_vec()),
        ("truncated mid slot", good[..28 + 40].to_vec()),
        ("aggregation 9", [&[0, 0, 0, 9][..], &good[4..]].concat()),
    ];
    for (name, bytes) in cases {
        let p = dir.path().join(format!("{name}.wsp"));
        std::fs::write(&p, &bytes).unwrap();
        for result in [Whisper::open(&p), Whisper::open_read_only(&p)] {
            match result {
                Err(WhisperError::Corrupt { path, problem }) => {
                    assert_eq!(path, p, "{name}");
                    let text = WhisperError::Corrupt {
                        path: path.clone(),
                        problem: problem.clone(),
                    }
                    .to_string();
                    assert!(text.contains(&*p.to_string_lossy()), "{text}");
                    if name == "aggregation 9" {
                        assert_eq!(problem, Corruption::AggregationType(9));
                    }
                }
                other => panic!("{name}: expected a corruption error, got {other:?}"),
            }
        }
        // The file was not modified by the attempt.
        assert_eq!(std::fs::read(&p).unwrap(), bytes);
    }
    assert!(matches!(
        Whisper::open(&dir.path().join("missing.wsp")),
        Err(WhisperError::NotFound { .. })
    ));
}

#[test]
fn read_only_files_refuse_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "60:10", 0.5, "average");
    let mut file = Whisper::open_read_only(&path).unwrap();
    assert!(matches!(
        file.update(NOW, 1.0, NOW),
        Err(WhisperError::ReadOnly { .. })
    ));
}

#[test]
fn resize_keeps_data_and_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "10s:10m,1m:1h", 0.0, "sum");
    let mut file = Whisper::open(&path).unwrap();
    let mut points: Vec<(i64, f64)> = (0..50).map(|i| (NOW - 10 * i, 1.0)).collect();
    file.update_many(&mut points, NOW).unwrap();
    drop(file);
    let backup = resize(
        &path,
        &parse_retentions("10s:1h,1m:1d").unwrap(),
        ResizeOptions::default(),
        NOW,
    )
    .unwrap();
    assert!(backup.exists());
    let file = Whisper::open(&path).unwrap();
    assert_eq!(file.header().archives[0].points, 360);
    let s = file.fetch(NOW - 500, NOW, NOW).unwrap().unwrap();
    assert_eq!(s.values.iter().flatten().count(), 50);
    assert!(!dir.path().join("a.wsp.tmp").exists());
}

/// whisper-resize --aggregate buckets old points into `[t, t + step)` with
/// `t = now - retention + now % step`: not aligned to the step when `now % step != 0`. We do
/// what the reference does (spec: the reference wins), so here (now % 60 = 20) the buckets start
/// at now - 40 and now - 100 and each bucket's sum lands in the interval its start falls in.
#[test]
fn resize_with_aggregate_buckets_like_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let path = create(dir.path(), "a.wsp", "10s:10m", 0.0, "sum");
    let mut file = Whisper::open(&path).unwrap();
    let mut points: Vec<(i64, f64)> = (0..9).map(|i| (NOW - 10 * i, 1.0)).collect();
    file.update_many(&mut points, NOW).unwrap();
    drop(file);
    let options = ResizeOptions {
        aggregate: true,
        ..ResizeOptions::default()
    };
    resize(&path, &parse_retentions("1m:1h").unwrap(), options, NOW).unwrap();
    let file = Whisper::open(&path).unwrap();
    let s = file.fetch(NOW - 180, NOW, NOW).unwrap().unwrap();
    assert_eq!(s.start, 1_699_999_860);
    assert_eq!(s.values, vec![Some(4.0), Some(5.0), None]);
}

/// whisper-fill fetches each gap from `src` through the first known point after it, so that
/// point is rewritten with `src`'s value too (reference behaviour, kept).
#[test]
fn fill_copies_gaps_and_their_closing_point() {
    let dir = tempfile::tempdir().unwrap();
    let src = create(dir.path(), "src.wsp", "10s:10m", 0.5, "average");
    let dst = create(dir.path(), "dst.wsp", "10s:10m", 0.5, "average");
    let mut s = Whisper::open(&src).unwrap();
    let mut d = Whisper::open(&dst).unwrap();
    let mut all: Vec<(i64, f64)> = (0..20).map(|i| (NOW - 10 * i, 1.0)).collect();
    s.update_many(&mut all, NOW).unwrap();
    let mut some: Vec<(i64, f64)> = [0, 1, 2, 10, 11, 12]
        .iter()
        .map(|&i| (NOW - 10 * i, 2.0))
        .collect();
    d.update_many(&mut some, NOW).unwrap();
    fill(&s, &mut d, NOW).unwrap();
    let values = d.fetch(NOW - 200, NOW, NOW).unwrap().unwrap().values;
    let expected: Vec<Option<f64>> = (0..20)
        .rev()
        .map(|i| {
            Some(if [0, 1, 10, 11].contains(&i) {
                2.0
            } else {
                1.0
            })
        })
        .collect();
    assert_eq!(values, expected);
}

/// In-memory model of update_many + fetch for points within the finest archive's retention:
/// the finest archive holds the last value per interval (latest timestamp wins; equal
/// timestamps: first given wins), and the coarse archive holds the aggregate of the fine
/// values under each coarse interval that any write touched, if enough are known.
#[derive(Default)]
struct Model {
    fine: BTreeMap<i64, f64>,
    touched: std::collections::BTreeSet<i64>,
}

impl Model {
    fn apply(&mut self, batch: &[(i64, f64)]) {
        let mut chosen: BTreeMap<i64, (i64, f64)> = BTreeMap::new();
        for &(t, v) in batch {
            let interval = t - t.rem_euclid(10);
            match chosen.get(&interval) {
                Some(&(best, _)) if best >= t => {}
                _ => {
                    chosen.insert(interval, (t, v));
                }
            }
        }
        for (interval, (_, v)) in chosen {
            self.fine.insert(interval, v);
            self.touched.insert(interval - interval.rem_euclid(60));
        }
    }

    fn coarse(&self, minute: i64, xff: f32, method: AggregationMethod) -> Option<f64> {
        if !self.touched.contains(&minute) {
            return None;
        }
        let neighbors: Vec<Option<f64>> = (0..6)
            .map(|k| self.fine.get(&(minute + 10 * k)).copied())
            .collect();
        let known = neighbors.iter().flatten().count();
        (known > 0 && known as f64 / 6.0 >= f64::from(xff)).then(|| method.aggregate(&neighbors))
    }
}

fn method_strategy() -> impl Strategy<Value = AggregationMethod> {
    proptest::sample::select(AggregationMethod::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn update_many_matches_the_model(
        batches in proptest::collection::vec(
            proptest::collection::vec((0i64..590, -1000i32..1000), 0..40), 1..6),
        xff in proptest::sample::select(vec![0.0f64, 0.25, 0.5, 1.0]),
        method in method_strategy(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = create(dir.path(), "m.wsp", "10s:10m,1m:1h", xff, method.name());
        let mut file = Whisper::open(&path).unwrap();
        let mut model = Model::default();
        for batch in &batches {
            let mut points: Vec<(i64, f64)> =
                batch.iter().map(|&(age, v)| (NOW - age, f64::from(v) / 8.0)).collect();
            model.apply(&points);
            let outcome = file.update_many(&mut points, NOW).unwrap();
            prop_assert_eq!(outcome.dropped, 0);
        }
        let fine = file.fetch(NOW - 590, NOW, NOW).unwrap().unwrap();
        prop_assert_eq!(fine.step, 10);
        for (i, value) in fine.values.iter().enumerate() {
            let t = fine.start + i as i64 * 10;
            prop_assert_eq!(*value, model.fine.get(&t).copied(), "fine {}", t);
        }
        let coarse = file.fetch_archive(NOW - 660, NOW, NOW, 60).unwrap().unwrap();
        for (i, value) in coarse.values.iter().enumerate() {
            let minute = coarse.start + i as i64 * 60;
            let expected = model.coarse(minute, xff as f32, method);
            match (value, expected) {
                (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-9, "coarse {} {} {}", minute, a, b),
                (a, b) => prop_assert_eq!(*a, b, "coarse {}", minute),
            }
        }
    }

    /// Corrupting any byte of the header never panics open or reads, and a file that still
    /// opens serves fetches of the right length.
    #[test]
    fn corrupted_files_never_panic(at in 0usize..52, byte in any::<u8>(), extra in 0usize..3) {
        let dir = tempfile::tempdir().unwrap();
        let path = create(dir.path(), "c.wsp", "10s:1m,1m:5m", 0.5, "average");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[at] = byte;
        bytes.extend(std::iter::repeat_n(7u8, extra));
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(mut file) = Whisper::open(&path) {
            if let Ok(Some(s)) = file.fetch(NOW - 300, NOW, NOW) {
                prop_assert_eq!(s.values.len() as i64, (s.end - s.start) / s.step);
            }
            let _ = file.update_many(&mut [(NOW, 1.0), (NOW - 100, 2.0)], NOW);
            let _ = file.update(NOW, 1.0, NOW);
        }
    }
}
