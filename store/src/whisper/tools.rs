//! File-to-file operations behind the whisper tools: merge, diff, fill and resize
//! (spec sections 9 and 10).

use std::path::{Path, PathBuf};

use super::file::{CreateOptions, Whisper};
use super::header::ArchiveInfo;
use crate::aggregation::AggregationMethod;
use crate::error::WhisperError;
use crate::retention::Retention;

fn same_archives(a: &Whisper, b: &Whisper) -> Result<Vec<ArchiveInfo>, WhisperError> {
    if a.header().archives != b.header().archives {
        return Err(WhisperError::ArchivesDiffer {
            a: a.path().to_owned(),
            b: b.path().to_owned(),
        });
    }
    let mut archives = a.header().archives.clone();
    archives.sort_by_key(ArchiveInfo::retention);
    Ok(archives)
}

/// `whisper.merge`: copies every known point of `from` in `[time_from, time_to]` into the same
/// archive of `to` (rolling up as the batch writer does). Points of `to` that `from` lacks stay.
pub fn merge(
    from: &Whisper,
    to: &mut Whisper,
    time_from: Option<i64>,
    time_to: Option<i64>,
    now: i64,
) -> Result<(), WhisperError> {
    let archives = same_archives(from, to)?;
    let until = time_to.unwrap_or(now);
    let since = time_from.unwrap_or(0);
    if until < since {
        return Err(WhisperError::InvalidTimeInterval { from: since, until });
    }
    for archive in archives {
        let oldest = now - archive.retention();
        if until < oldest {
            continue;
        }
        let series = from.read_archive(&archive, since.max(oldest), until)?;
        let points: Vec<(i64, f64)> = series
            .values
            .iter()
            .enumerate()
            .rev()
            .filter_map(|(i, v)| v.map(|v| (series.start + i as i64 * series.step, v)))
            .collect();
        if points.is_empty() {
            continue;
        }
        let index = to
            .header()
            .archives
            .iter()
            .position(|a| *a == archive)
            .unwrap_or(0);
        to.write_archive(index, &points)?;
    }
    Ok(())
}

/// One archive's differences, as `whisper.diff` reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffArchive {
    /// Position of the archive when ordered by retention.
    pub index: usize,
    /// `(timestamp, value in a, value in b)` where the two differ.
    pub differences: Vec<(i64, Option<f64>, Option<f64>)>,
    /// Points compared.
    pub compared: usize,
}

/// `whisper.diff`: compares two files with identical archives, archive by archive. With
/// `ignore_empty` only points known on both sides count; otherwise points known on either.
pub fn diff(
    a: &Whisper,
    b: &Whisper,
    ignore_empty: bool,
    until: Option<i64>,
    now: i64,
) -> Result<Vec<DiffArchive>, WhisperError> {
    let archives = same_archives(a, b)?;
    let mut until = until.unwrap_or(now);
    let mut out = Vec::with_capacity(archives.len());
    for (index, archive) in archives.iter().enumerate() {
        let start = now - archive.retention();
        let sa = a.read_archive(archive, start, until)?;
        let sb = b.read_archive(archive, start, until)?;
        let mut differences = Vec::new();
        let mut compared = 0;
        for (i, (&va, &vb)) in sa.values.iter().zip(&sb.values).enumerate() {
            let counted = if ignore_empty {
                va.is_some() && vb.is_some()
            } else {
                va.is_some() || vb.is_some()
            };
            if !counted {
                continue;
            }
            compared += 1;
            if !same_value(va, vb) {
                differences.push((sa.start + i as i64 * sa.step, va, vb));
            }
        }
        out.push(DiffArchive {
            index,
            differences,
            compared,
        });
        until = until.min(start);
    }
    Ok(out)
}

/// Python's `!=` on floats: NaN differs from everything, including itself.
fn same_value(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y,
        (None, None) => true,
        _ => false,
    }
}

/// `whisper-fill`: copies from `src` into the gaps of `dst` only. Gaps are runs of missing (or
/// zero: the reference tests truthiness) values longer than one step, found archive by archive
/// from the finest; each is filled from the finest archive of `src` still covering it.
pub fn fill(src: &Whisper, dst: &mut Whisper, now: i64) -> Result<(), WhisperError> {
    let mut archives = dst.header().archives.clone();
    archives.sort_by_key(ArchiveInfo::retention);
    let mut start_from = now;
    for archive in archives {
        let from = now - archive.retention();
        if from >= start_from {
            continue;
        }
        let Some(series) = dst.fetch(from, start_from, now)? else {
            start_from = from;
            continue;
        };
        let step = series.step;
        let mut gap_start: Option<i64> = None;
        let mut t = series.start;
        for value in &series.values {
            let truthy = value.is_some_and(|v| v != 0.0);
            match gap_start {
                None if !truthy => gap_start = Some(t),
                Some(gap) if truthy => {
                    if t - gap > i64::from(archive.step) {
                        fill_range(src, dst, gap - step, t, now)?;
                    }
                    gap_start = None;
                }
                Some(gap) if t == series.end - step => {
                    fill_range(src, dst, gap - step, t, now)?;
                }
                _ => {}
            }
            t += step;
        }
        start_from = from;
    }
    Ok(())
}

/// whisper-fill's `fill`: copies `src`'s points in `[start, stop]`, finest archive first,
/// walking back in time.
fn fill_range(
    src: &Whisper,
    dst: &mut Whisper,
    start: i64,
    mut stop: i64,
    now: i64,
) -> Result<(), WhisperError> {
    let oldest = now - i64::from(src.header().max_retention);
    if start < oldest && stop < oldest {
        return Ok(());
    }
    let mut archives = src.header().archives.clone();
    archives.sort_by_key(ArchiveInfo::retention);
    for archive in archives {
        let archive_oldest = now - archive.retention();
        if stop <= archive_oldest {
            continue;
        }
        let from = archive_oldest.max(start);
        if let Some(series) = src.fetch(from, stop, now)? {
            let mut points: Vec<(i64, f64)> = series
                .values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (series.start + i as i64 * series.step, v)))
                .collect();
            dst.update_many(&mut points, now)?;
        }
        stop = from;
        if start == stop {
            break;
        }
    }
    Ok(())
}

/// How to resize.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResizeOptions {
    /// New xFilesFactor; the old one when `None`.
    pub x_files_factor: Option<f64>,
    /// New aggregation method; the old one when `None`.
    pub aggregation: Option<AggregationMethod>,
    /// Re-aggregate old points into the new intervals instead of copying them.
    pub aggregate: bool,
    /// Create the new file sparse.
    pub sparse: bool,
}

/// `whisper-resize`: builds `<path>.tmp` with the new archives and the old data, then swaps it
/// into place keeping the old file as `<path>.bak`. The swap is a rename over `path`, so readers
/// always find a complete file there. Returns the backup's path.
pub fn resize(
    path: &Path,
    retentions: &[Retention],
    options: ResizeOptions,
    now: i64,
) -> Result<PathBuf, WhisperError> {
    let old = Whisper::open_read_only(path)?;
    let header = old.header().clone();
    let x_files_factor = options
        .x_files_factor
        .unwrap_or(f64::from(header.x_files_factor));
    let aggregation = options.aggregation.unwrap_or(header.aggregation);
    let mut coarsest_first = header.archives.clone();
    coarsest_first.sort_by_key(|a| std::cmp::Reverse(a.step));
    let mut data = Vec::with_capacity(coarsest_first.len());
    for archive in &coarsest_first {
        let from = now - archive.retention() + i64::from(archive.step);
        if let Some(series) = old.fetch(from, now, now)? {
            data.push(series);
        }
    }
    let temp = with_suffix(path, ".tmp");
    match std::fs::remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(WhisperError::io(&temp, e)),
    }
    Whisper::create(
        &temp,
        retentions,
        CreateOptions {
            x_files_factor,
            aggregation,
            sparse: options.sparse,
        },
    )?;
    let mut new = Whisper::open(&temp)?;
    if options.aggregate {
        // Merge the old archives into one timeline, finest data preferred.
        let mut timeline: Vec<(i64, Option<f64>)> = Vec::new();
        for series in data.iter().rev() {
            let points = series
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| (series.start + i as i64 * series.step, *v));
            match timeline.first() {
                None => timeline.extend(points),
                Some(&(first, _)) => {
                    let older: Vec<_> = points.filter(|&(t, _)| t < first).collect();
                    timeline.splice(0..0, older);
                }
            }
        }
        let targets = new.header().archives.clone();
        for archive in targets {
            let step = i64::from(archive.step);
            let first = now - archive.retention() + now.rem_euclid(step);
            let last = now + now.rem_euclid(step) + step;
            let mut points = Vec::new();
            let mut left = 0;
            let mut t = first;
            while t + step < last {
                left += timeline[left..].partition_point(|&(ts, _)| ts < t);
                let right = left + timeline[left..].partition_point(|&(ts, _)| ts < t + step);
                let slice = &timeline[left..right];
                let known = slice.iter().filter(|(_, v)| v.is_some()).count();
                if known > 0 && known as f64 / slice.len() as f64 >= x_files_factor {
                    let neighbors: Vec<Option<f64>> = slice.iter().map(|&(_, v)| v).collect();
                    points.push((t, aggregation.aggregate(&neighbors)));
                }
                t += step;
            }
            new.update_many(&mut points, now)?;
        }
    } else {
        for series in &data {
            let mut points: Vec<(i64, f64)> = series
                .values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (series.start + i as i64 * series.step, v)))
                .collect();
            new.update_many(&mut points, now)?;
        }
    }
    new.sync()?;
    drop(new);
    let backup = with_suffix(path, ".bak");
    let _ = std::fs::remove_file(&backup);
    std::fs::hard_link(path, &backup)
        .or_else(|_| std::fs::copy(path, &backup).map(|_| ()))
        .map_err(|e| WhisperError::io(&backup, e))?;
    std::fs::rename(&temp, path).map_err(|e| WhisperError::io(path, e))?;
    Ok(backup)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
