//! An open whisper file: update, update_many, fetch and rollup with whisper 1.1's semantics
//! (spec sections 3-9).

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::Mmap;

use super::header::{
    ARCHIVE_INFO_SIZE, ArchiveInfo, Header, METADATA_SIZE, POINT_SIZE, encode_point, read_point,
};
use crate::aggregation::AggregationMethod;
use crate::error::{Corruption, WhisperError};
use crate::retention::{Retention, validate_archive_list};

/// A series as fetched: values for the intervals `start, start+step, ... < end`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// First interval.
    pub start: i64,
    /// One step past the last interval.
    pub end: i64,
    /// Seconds per value.
    pub step: i64,
    /// One value per interval; `None` where nothing valid is stored.
    pub values: Vec<Option<f64>>,
}

/// What to create.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CreateOptions {
    /// Fraction of known points a rollup needs (0..=1). whisper's default is 0.5.
    pub x_files_factor: f64,
    /// How points roll up.
    pub aggregation: AggregationMethod,
    /// Leave the data region as a hole instead of allocating it.
    pub sparse: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            x_files_factor: 0.5,
            aggregation: AggregationMethod::Average,
            sparse: false,
        }
    }
}

/// What a batch update did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpdateOutcome {
    /// Points written to an archive (after removing duplicates within an interval).
    pub written: usize,
    /// Points older than the file's retention, or not storable, dropped as whisper drops them.
    pub dropped: usize,
}

/// How a file is accessed. Writers use positional I/O on a descriptor: mapping and unmapping
/// a file per batch takes the process-wide mmap lock and interrupts every core to flush TLBs,
/// which made a writer with 100k metrics several times slower. Read-only opens map the file
/// and read it in place.
enum Backing {
    Mapped(Mmap),
    File(File),
}

/// An open whisper file.
///
/// Every access is bounds-checked against the header, which was checked against the file
/// length when the file was opened. Another process may write the file at the same time
/// (carbon, whisper's scripts); like whisper itself, we read whatever bytes are there.
/// Truncating a file from outside while it is open is not supported: reads then fail (with
/// positional I/O) or fault (mapped).
pub struct Whisper {
    path: PathBuf,
    backing: Backing,
    header: Header,
    /// Base interval of each archive once known: it never changes after the first write.
    bases: Vec<Cell<u32>>,
    /// Reused buffers of the write path: runs of points, fine slots read for a rollup, and
    /// the coarse intervals a batch touched.
    scratch: Vec<u8>,
    rollup: Vec<u8>,
    intervals: Vec<i64>,
}

impl std::fmt::Debug for Whisper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Whisper")
            .field("path", &self.path)
            .field("header", &self.header)
            .finish()
    }
}

impl Whisper {
    /// Creates a file like `whisper.create`: the archives are validated and sorted, the file is
    /// written under a temporary name in the same directory and then linked into place, so a
    /// crash never leaves a partial file behind and an existing file is never replaced.
    pub fn create(
        path: &Path,
        retentions: &[Retention],
        options: CreateOptions,
    ) -> Result<(), WhisperError> {
        let mut list = retentions.to_vec();
        validate_archive_list(&mut list)?;
        if !(0.0..=1.0).contains(&options.x_files_factor) {
            return Err(WhisperError::XFilesFactor(options.x_files_factor));
        }
        if path.exists() {
            return Err(WhisperError::AlreadyExists {
                path: path.to_owned(),
            });
        }
        let header = Header::new(&list, options.x_files_factor as f32, options.aggregation);
        let temp = temporary_path(path);
        let result = write_new_file(&temp, &header, options.sparse).and_then(|()| {
            match std::fs::hard_link(&temp, path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Err(WhisperError::AlreadyExists {
                        path: path.to_owned(),
                    })
                }
                // Filesystems without hard links: rename is still atomic, it just cannot
                // refuse to replace a file that appeared since the check above.
                Err(_) => std::fs::rename(&temp, path).map_err(|e| WhisperError::io(path, e)),
            }
        });
        let _ = std::fs::remove_file(&temp);
        result
    }

    /// Opens a file for reading and writing (positional I/O).
    pub fn open(path: &Path) -> Result<Whisper, WhisperError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        let file = open_no_atime(&mut options, path)?;
        let len = checked_len(path, &file)?;
        // One read covers the header of any file with up to eight archives; a longer table
        // takes a second read.
        let guess = (METADATA_SIZE + 8 * ARCHIVE_INFO_SIZE).min(len as usize);
        let mut bytes = vec![0u8; guess];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| WhisperError::io(path, e))?;
        let count = u64::from(u32::from_be_bytes([
            bytes[12], bytes[13], bytes[14], bytes[15],
        ]));
        // Read no more than the file holds; a count that does not fit is reported by parse.
        let table = (METADATA_SIZE as u64 + ARCHIVE_INFO_SIZE as u64 * count).min(len) as usize;
        if table > bytes.len() {
            bytes.resize(table, 0);
            file.read_exact_at(&mut bytes[guess..], guess as u64)
                .map_err(|e| WhisperError::io(path, e))?;
        }
        let header = Header::parse_prefix(&bytes, len).map_err(|p| corrupt(path, p))?;
        Ok(Self::with_backing(path, Backing::File(file), header))
    }

    /// Opens a file for reading only, mapped (a data directory owned by someone else works).
    pub fn open_read_only(path: &Path) -> Result<Whisper, WhisperError> {
        let file = open_no_atime(OpenOptions::new().read(true), path)?;
        let len = checked_len(path, &file)?;
        // SAFETY: the mapping is only accessed through slices bounded by the header, which is
        // validated against `len` below. Concurrent writers in other processes can change
        // bytes under us (as with whisper's own reads); that yields stale or torn values,
        // never out-of-bounds access.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| WhisperError::io(path, e))?;
        if map.len() as u64 != len {
            return Err(corrupt(
                path,
                Corruption::Size {
                    len: map.len() as u64,
                    expected: len,
                },
            ));
        }
        let header = Header::parse(&map).map_err(|p| corrupt(path, p))?;
        Ok(Self::with_backing(path, Backing::Mapped(map), header))
    }

    fn with_backing(path: &Path, backing: Backing, header: Header) -> Whisper {
        Whisper {
            path: path.to_owned(),
            backing,
            bases: header.archives.iter().map(|_| Cell::new(0)).collect(),
            header,
            scratch: Vec::new(),
            rollup: Vec::new(),
            intervals: Vec::new(),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    fn io(&self, e: std::io::Error) -> WhisperError {
        WhisperError::io(&self.path, e)
    }

    /// `len` bytes at `offset`: borrowed from the mapping, or read into `scratch`.
    fn region<'a>(
        &'a self,
        offset: usize,
        len: usize,
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], WhisperError> {
        match &self.backing {
            Backing::Mapped(map) => Ok(&map[offset..offset + len]),
            Backing::File(file) => {
                scratch.clear();
                scratch.resize(len, 0);
                file.read_exact_at(scratch, offset as u64)
                    .map_err(|e| self.io(e))?;
                Ok(scratch)
            }
        }
    }

    fn write_at(&self, offset: usize, bytes: &[u8]) -> Result<(), WhisperError> {
        if bytes.is_empty() {
            return Ok(());
        }
        match &self.backing {
            Backing::Mapped(_) => Err(WhisperError::ReadOnly {
                path: self.path.clone(),
            }),
            Backing::File(file) => file
                .write_all_at(bytes, offset as u64)
                .map_err(|e| self.io(e)),
        }
    }

    fn write_point(&self, offset: usize, interval: u32, value: f64) -> Result<(), WhisperError> {
        let mut point = [0u8; POINT_SIZE];
        encode_point(&mut point, interval, value);
        self.write_at(offset, &point)
    }

    /// Forces written data to disk (fdatasync). Not needed for crash safety of the process,
    /// only against a machine crash.
    pub fn sync(&self) -> Result<(), WhisperError> {
        match &self.backing {
            Backing::Mapped(_) => Ok(()),
            Backing::File(file) => file.sync_data().map_err(|e| self.io(e)),
        }
    }

    /// Changes the aggregation method and, if given, the xFilesFactor: rewrites the metadata
    /// only, like `whisper.setAggregationMethod`. Returns the old method.
    pub fn set_aggregation(
        &mut self,
        method: AggregationMethod,
        x_files_factor: Option<f64>,
    ) -> Result<AggregationMethod, WhisperError> {
        let old = self.header.aggregation;
        let mut header = self.header.clone();
        header.aggregation = method;
        if let Some(xff) = x_files_factor {
            if !(0.0..=1.0).contains(&xff) {
                return Err(WhisperError::XFilesFactor(xff));
            }
            header.x_files_factor = xff as f32;
        }
        let mut metadata = Vec::with_capacity(METADATA_SIZE);
        header.encode_metadata(&mut metadata);
        self.write_at(0, &metadata)?;
        self.header = header;
        Ok(old)
    }

    /// Stores one point like `whisper.update`: the timestamp must be within
    /// `[now - maxRetention, now]` (exclusive of the oldest second); the finest archive covering
    /// its age takes it, and coarser archives are rolled up.
    pub fn update(&mut self, timestamp: i64, value: f64, now: i64) -> Result<(), WhisperError> {
        let age = now - timestamp;
        if !(0..i64::from(self.header.max_retention)).contains(&age) {
            return Err(WhisperError::TimestampNotCovered { timestamp });
        }
        let index = self
            .header
            .archives
            .iter()
            .position(|a| a.retention() >= age)
            .ok_or(WhisperError::TimestampNotCovered { timestamp })?;
        let archive = self.header.archives[index];
        let interval = archive.interval(timestamp);
        let Ok(stored) = u32::try_from(interval) else {
            return Err(WhisperError::TimestampNotCovered { timestamp });
        };
        let at = self.slot_offset(index, interval)?;
        self.write_point(at, stored, value)?;
        self.note_base(index, stored);
        for lower in index + 1..self.header.archives.len() {
            let lower_interval = self.header.archives[lower].interval(interval);
            if !self.propagate(&[lower_interval], lower - 1, lower)? {
                break;
            }
        }
        Ok(())
    }

    /// Stores a batch like `whisper.update_many`. Each point goes to the finest archive whose
    /// retention covers its age (future points to the finest); points older than the file's
    /// retention are dropped and counted. Within one interval the latest timestamp wins, and for
    /// equal timestamps the point given first wins (spec V12). `points` is reordered.
    ///
    /// Unlike whisper 1.1.10, a run of future points longer than an archive never writes past
    /// the archive: the newest `points` of it are kept (spec section 6, V29).
    pub fn update_many(
        &mut self,
        points: &mut [(i64, f64)],
        now: i64,
    ) -> Result<UpdateOutcome, WhisperError> {
        let mut outcome = UpdateOutcome::default();
        if points.is_empty() {
            return Ok(outcome);
        }
        // whisper sorts newest first (stable) and then walks each archive's share backwards;
        // sorting the same way and walking backwards gives its duplicate rule exactly.
        points.sort_by_key(|p| std::cmp::Reverse(p.0));
        let mut rest: &[(i64, f64)] = points;
        for index in 0..self.header.archives.len() {
            let retention = self.header.archives[index].retention();
            // Newest-first prefix of the remaining points that this archive covers.
            let covered = rest
                .iter()
                .position(|&(t, _)| now - t > retention)
                .unwrap_or(rest.len());
            let (mine, older) = rest.split_at(covered);
            rest = older;
            if !mine.is_empty() {
                let (written, unstorable) = self.archive_update_many(index, mine)?;
                outcome.written += written;
                outcome.dropped += unstorable;
            }
            if rest.is_empty() {
                break;
            }
        }
        outcome.dropped += rest.len();
        Ok(outcome)
    }

    /// Writes newest-first points into archive `index` whatever their age, then rolls up (what
    /// `whisper.merge` does per archive).
    pub(crate) fn write_archive(
        &mut self,
        index: usize,
        newest_first: &[(i64, f64)],
    ) -> Result<usize, WhisperError> {
        Ok(self.archive_update_many(index, newest_first)?.0)
    }

    /// Writes a newest-first run of points into archive `index` and rolls up. Returns the
    /// number of points written and the number whose interval a whisper file cannot hold
    /// (before 1970 or after 2106). Points in consecutive slots are written together.
    fn archive_update_many(
        &mut self,
        index: usize,
        newest_first: &[(i64, f64)],
    ) -> Result<(usize, usize), WhisperError> {
        let archive = self.header.archives[index];
        let mut written = 0;
        let mut unstorable = 0;
        let mut run = std::mem::take(&mut self.scratch);
        run.clear();
        let mut run_start = 0usize; // byte offset of the run's first slot
        let mut next_slot_offset = usize::MAX;
        // Chronological order is the reverse of `newest_first`; of consecutive points with the
        // same interval, the last in chronological order wins.
        let chronological = newest_first.iter().rev();
        let mut peek = chronological.clone().skip(1);
        let mut result = Ok(());
        for &(timestamp, value) in chronological {
            let interval = archive.interval(timestamp);
            let next_interval = peek.next().map(|&(t, _)| archive.interval(t));
            if next_interval == Some(interval) {
                continue;
            }
            let Ok(stored) = u32::try_from(interval) else {
                unstorable += 1;
                continue;
            };
            if self.bases[index].get() == 0 && run.is_empty() {
                // The first point into an empty archive goes to slot 0 and becomes its base.
                let base = self.base(index)?;
                if base == 0 {
                    self.bases[index].set(stored);
                }
            }
            let at = self.slot_offset(index, interval)?;
            if at != next_slot_offset {
                if let Err(e) = self.write_at(run_start, &run) {
                    result = Err(e);
                    break;
                }
                run.clear();
                run_start = at;
            }
            let mut point = [0u8; POINT_SIZE];
            encode_point(&mut point, stored, value);
            run.extend_from_slice(&point);
            // A run never crosses the end of the ring: slot 0 starts a new one.
            next_slot_offset = at + POINT_SIZE;
            written += 1;
        }
        if result.is_ok() {
            result = self.write_at(run_start, &run);
        }
        self.scratch = run;
        result?;
        // Roll up, level by level, every coarser interval the batch touched (ascending), as
        // whisper does; stop at the first level that got no value.
        let mut intervals = std::mem::take(&mut self.intervals);
        let mut result = Ok(());
        for lower in index + 1..self.header.archives.len() {
            let lower_archive = self.header.archives[lower];
            intervals.clear();
            for &(timestamp, _) in newest_first.iter().rev() {
                let interval = lower_archive.interval(archive.interval(timestamp));
                if intervals.last() != Some(&interval) {
                    intervals.push(interval);
                }
            }
            match self.propagate(&intervals, lower - 1, lower) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.intervals = intervals;
        result?;
        Ok((written, unstorable))
    }

    /// The byte offset of `interval`'s slot in archive `index`; an empty archive puts its
    /// first point in slot 0.
    fn slot_offset(&self, index: usize, interval: i64) -> Result<usize, WhisperError> {
        let archive = &self.header.archives[index];
        let base = self.base(index)?;
        if base == 0 {
            return Ok(archive.offset as usize);
        }
        let slot = (interval - base)
            .div_euclid(i64::from(archive.step))
            .rem_euclid(i64::from(archive.points)) as usize;
        Ok(archive.offset as usize + slot * POINT_SIZE)
    }

    /// The interval in slot 0 of archive `index`; 0 while the archive is empty.
    fn base(&self, index: usize) -> Result<i64, WhisperError> {
        let cached = self.bases[index].get();
        if cached != 0 {
            return Ok(i64::from(cached));
        }
        let mut bytes = [0u8; 4];
        let offset = self.header.archives[index].offset as usize;
        match &self.backing {
            Backing::Mapped(map) => bytes.copy_from_slice(&map[offset..offset + 4]),
            Backing::File(file) => file
                .read_exact_at(&mut bytes, offset as u64)
                .map_err(|e| self.io(e))?,
        }
        let base = u32::from_be_bytes(bytes);
        self.bases[index].set(base);
        Ok(i64::from(base))
    }

    fn note_base(&self, index: usize, interval: u32) {
        if self.bases[index].get() == 0 {
            self.bases[index].set(interval);
        }
    }

    /// whisper's `__propagate`, for several coarse intervals at once: for each interval of
    /// archive `lower` in `intervals` (ascending, distinct), aggregates the slots of archive
    /// `higher` under it and writes the result if enough of them are known. Consecutive
    /// intervals are read and written in single runs. Returns whether any value was written.
    fn propagate(
        &mut self,
        intervals: &[i64],
        higher: usize,
        lower: usize,
    ) -> Result<bool, WhisperError> {
        let (high, low) = (self.header.archives[higher], self.header.archives[lower]);
        let ratio = (low.step / high.step) as usize;
        let mut propagated = false;
        let mut i = 0;
        while i < intervals.len() {
            // A run of consecutive coarse intervals whose fine slots fit in the fine ring.
            let mut j = i + 1;
            while j < intervals.len()
                && intervals[j] == intervals[j - 1] + i64::from(low.step)
                && (j - i + 1) * ratio <= high.points as usize
                && j - i < low.points as usize
            {
                j += 1;
            }
            propagated |= self.propagate_run(intervals[i], j - i, &high, lower)?;
            i = j;
        }
        Ok(propagated)
    }

    /// Rolls up `count` consecutive intervals of archive `lower` starting at `start` from the
    /// archive `high` just above it.
    fn propagate_run(
        &mut self,
        start: i64,
        count: usize,
        high: &ArchiveInfo,
        lower: usize,
    ) -> Result<bool, WhisperError> {
        let low = self.header.archives[lower];
        let higher = lower - 1;
        let ratio = (low.step / high.step) as usize;
        let points = high.points as usize;
        let higher_base = self.base(higher)?;
        let first_slot = if higher_base == 0 {
            0
        } else {
            (start - higher_base)
                .div_euclid(i64::from(high.step))
                .rem_euclid(points as i64) as usize
        };
        // The fine slots, wrapping around the end of the ring at most once.
        let slots = count * ratio;
        let head = slots.min(points - first_slot);
        let mut fine = std::mem::take(&mut self.rollup);
        fine.clear();
        fine.resize(slots * POINT_SIZE, 0);
        let read = self
            .read_into(
                high.offset as usize + first_slot * POINT_SIZE,
                &mut fine[..head * POINT_SIZE],
            )
            .and_then(|()| self.read_into(high.offset as usize, &mut fine[head * POINT_SIZE..]));
        if let Err(e) = read {
            self.rollup = fine;
            return Err(e);
        }
        // Aggregate each coarse interval; write runs of consecutive results.
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let mut run_start: Option<i64> = None;
        let mut wrote = false;
        let mut failure = None;
        let step = i64::from(high.step);
        for k in 0..count {
            let interval = start + k as i64 * i64::from(low.step);
            let neighbors = fine[k * ratio * POINT_SIZE..(k + 1) * ratio * POINT_SIZE]
                .chunks_exact(POINT_SIZE)
                .enumerate()
                .map(|(n, bytes)| {
                    let (stored, value) = read_point(bytes, 0);
                    (i64::from(stored) == interval + n as i64 * step).then_some(value)
                });
            let known = neighbors.clone().flatten().count();
            // whisper compares a double ratio with the f32 factor widened to double (V14).
            let value = (known > 0
                && (known as f64) / (ratio as f64) >= f64::from(self.header.x_files_factor))
            .then(|| self.header.aggregation.aggregate_iter(neighbors));
            if let (Some(value), Ok(stored)) = (value, u32::try_from(interval)) {
                run_start.get_or_insert(interval);
                let mut point = [0u8; POINT_SIZE];
                encode_point(&mut point, stored, value);
                out.extend_from_slice(&point);
            } else if let Some(first) = run_start.take() {
                if let Err(e) = self.write_run(lower, first, &out) {
                    failure = Some(e);
                    break;
                }
                wrote = true;
                out.clear();
            }
        }
        if failure.is_none()
            && let Some(first) = run_start
        {
            match self.write_run(lower, first, &out) {
                Ok(()) => wrote = true,
                Err(e) => failure = Some(e),
            }
        }
        self.scratch = out;
        self.rollup = fine;
        match failure {
            Some(e) => Err(e),
            None => Ok(wrote),
        }
    }

    /// Writes points for consecutive intervals of archive `index`, the first at `first`,
    /// wrapping at the end of the ring. The first write into an empty archive sets its base.
    fn write_run(&mut self, index: usize, first: i64, bytes: &[u8]) -> Result<(), WhisperError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let archive = self.header.archives[index];
        let at = self.slot_offset(index, first)?;
        let ring_end = archive.offset as usize + archive.size();
        let head = bytes.len().min(ring_end - at);
        self.write_at(at, &bytes[..head])?;
        self.write_at(archive.offset as usize, &bytes[head..])?;
        if let Ok(stored) = u32::try_from(first) {
            self.note_base(index, stored);
        }
        Ok(())
    }

    /// Fills `dst` from `offset`.
    fn read_into(&self, offset: usize, dst: &mut [u8]) -> Result<(), WhisperError> {
        if dst.is_empty() {
            return Ok(());
        }
        match &self.backing {
            Backing::Mapped(map) => {
                dst.copy_from_slice(&map[offset..offset + dst.len()]);
                Ok(())
            }
            Backing::File(file) => file
                .read_exact_at(dst, offset as u64)
                .map_err(|e| self.io(e)),
        }
    }

    /// Reads a range like `whisper.fetch`: `None` when the range is entirely in the future or
    /// older than the file's retention; otherwise the archive chosen by the age of `from`.
    pub fn fetch(&self, from: i64, until: i64, now: i64) -> Result<Option<Series>, WhisperError> {
        self.fetch_from(from, until, now, None)
    }

    /// [`fetch`](Self::fetch) from the archive with exactly `step` seconds per point
    /// (whisper's `archiveToSelect`).
    pub fn fetch_archive(
        &self,
        from: i64,
        until: i64,
        now: i64,
        step: u32,
    ) -> Result<Option<Series>, WhisperError> {
        self.fetch_from(from, until, now, Some(step))
    }

    fn fetch_from(
        &self,
        from: i64,
        until: i64,
        now: i64,
        step: Option<u32>,
    ) -> Result<Option<Series>, WhisperError> {
        match plan_fetch(&self.header, from, until, now, step)? {
            Some((archive, from, until)) => self.read_archive(&archive, from, until).map(Some),
            None => Ok(None),
        }
    }

    /// The intervals after `from`'s up to and including `until`'s, from one archive.
    pub(crate) fn read_archive(
        &self,
        archive: &ArchiveInfo,
        from: i64,
        until: i64,
    ) -> Result<Series, WhisperError> {
        let mut series = empty_series(archive, from, until);
        let index = self
            .header
            .archives
            .iter()
            .position(|a| a == archive)
            .unwrap_or(0);
        let base = self.base(index)?;
        if base == 0 {
            return Ok(series);
        }
        let step = series.step;
        let points = archive.points as usize;
        let first_slot = (series.start - base)
            .div_euclid(step)
            .rem_euclid(points as i64) as usize;
        // Read only the slots we need: from the first slot to the end of the ring, then from
        // its start (a range longer than the ring reads the whole ring once).
        let wanted = series.values.len().min(points);
        let first_len = wanted.min(points - first_slot);
        let (mut head_buf, mut tail_buf) = (Vec::new(), Vec::new());
        let head = self.region(
            archive.offset as usize + first_slot * POINT_SIZE,
            first_len * POINT_SIZE,
            &mut head_buf,
        )?;
        let tail = self.region(
            archive.offset as usize,
            (wanted - first_len) * POINT_SIZE,
            &mut tail_buf,
        )?;
        // Each slot is valid only if it holds exactly the interval expected there (stale ring
        // data reads as missing).
        let fill = |bytes: &[u8], values: &mut [Option<f64>], mut expected: i64| {
            for (point, value) in bytes.chunks_exact(POINT_SIZE).zip(values) {
                let (interval, stored) = read_point(point, 0);
                if i64::from(interval) == expected {
                    *value = Some(stored);
                }
                expected += step;
            }
        };
        let (front, back) = series.values.split_at_mut(first_len);
        fill(head, front, series.start);
        fill(tail, back, series.start + first_len as i64 * step);
        // A range longer than the ring (only with a forced archive): the older intervals map
        // onto the same slots again; each is valid only if the slot still holds it.
        if series.values.len() > points {
            let mut expected = series.start + points as i64 * step;
            for i in points..series.values.len() {
                let slot = i % points;
                let bytes = if slot < first_len {
                    &head[slot * POINT_SIZE..]
                } else {
                    &tail[(slot - first_len) * POINT_SIZE..]
                };
                let (interval, stored) = read_point(bytes, 0);
                if i64::from(interval) == expected {
                    series.values[i] = Some(stored);
                }
                expected += step;
            }
        }
        Ok(series)
    }

    /// Every slot of archive `index`, as stored: for dump tools.
    pub fn raw_archive(&self, index: usize) -> Result<Vec<(u32, f64)>, WhisperError> {
        let Some(archive) = self.header.archives.get(index) else {
            return Ok(Vec::new());
        };
        let mut buf = Vec::new();
        let bytes = self.region(archive.offset as usize, archive.size(), &mut buf)?;
        Ok(bytes
            .chunks_exact(POINT_SIZE)
            .map(|p| read_point(p, 0))
            .collect())
    }
}

/// whisper's range logic: `None` when `[from, until]` is wholly in the future or older than
/// the retention; otherwise the archive to read (the finest covering the age of `from`, or the
/// one with exactly `step`) and the range clamped to `[now - maxRetention, now]`.
pub(crate) fn plan_fetch(
    header: &Header,
    from: i64,
    until: i64,
    now: i64,
    step: Option<u32>,
) -> Result<Option<(ArchiveInfo, i64, i64)>, WhisperError> {
    if from > until {
        return Err(WhisperError::InvalidTimeInterval { from, until });
    }
    let oldest = now - i64::from(header.max_retention);
    if from > now || until < oldest {
        return Ok(None);
    }
    let from = from.max(oldest);
    let until = until.min(now);
    let archive = match step {
        Some(step) => *header
            .archives
            .iter()
            .find(|a| a.step == step)
            .ok_or(WhisperError::Granularity(step))?,
        None => {
            let age = now - from;
            *header
                .archives
                .iter()
                .find(|a| a.retention() >= age)
                .unwrap_or(&header.archives[header.archives.len() - 1])
        }
    };
    Ok(Some((archive, from, until)))
}

/// The all-null series of `archive` for `[from, until]`: the intervals after `from`'s up to
/// and including `until`'s (one interval when they coincide).
pub(crate) fn empty_series(archive: &ArchiveInfo, from: i64, until: i64) -> Series {
    let step = i64::from(archive.step);
    let start = archive.interval(from) + step;
    let mut end = archive.interval(until) + step;
    if start == end {
        end += step;
    }
    let count = ((end - start) / step) as usize;
    Series {
        start,
        end,
        step,
        values: vec![None; count],
    }
}

fn corrupt(path: &Path, problem: Corruption) -> WhisperError {
    WhisperError::Corrupt {
        path: path.to_owned(),
        problem,
    }
}

/// Opens without updating the access time: a writer reopening a file it just wrote would
/// otherwise make the filesystem journal an inode change on every batch (relatime updates
/// atime once mtime has moved past it). O_NOATIME needs the file's owner; other users (a
/// shared data directory) fall back to a plain open.
fn open_no_atime(options: &mut OpenOptions, path: &Path) -> Result<File, WhisperError> {
    use std::os::unix::fs::OpenOptionsExt;
    match options.clone().custom_flags(libc::O_NOATIME).open(path) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => options.open(path),
        other => other,
    }
    .map_err(|e| WhisperError::io(path, e))
}

/// The file length, refusing files too short to hold a header before any mapping is made
/// (mapping an empty file fails, and a short one would be misread).
fn checked_len(path: &Path, file: &File) -> Result<u64, WhisperError> {
    let len = file
        .metadata()
        .map_err(|e| WhisperError::io(path, e))?
        .len();
    if len < METADATA_SIZE as u64 {
        return Err(corrupt(path, Corruption::ShortHeader { len }));
    }
    Ok(len)
}

/// A unique temporary name next to `path` (same directory, so the final link is atomic).
fn temporary_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".tmp.{}.{n}", std::process::id()));
    path.with_file_name(name)
}

fn write_new_file(temp: &Path, header: &Header, sparse: bool) -> Result<(), WhisperError> {
    let io = |e| WhisperError::io(temp, e);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp)
        .map_err(io)?;
    file.write_all(&header.encode()).map_err(io)?;
    let size = header.file_size();
    // set_len leaves the data region as a hole that reads as zeros: the same bytes whisper
    // writes. A dense file then gets its blocks allocated up front, as whisper's dense and
    // fallocate modes do, so later writes cannot fail for lack of space.
    file.set_len(size).map_err(io)?;
    if !sparse {
        allocate(&file, header.len() as u64, size - header.len() as u64).map_err(io)?;
    }
    Ok(())
}

fn allocate(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    match nix::fcntl::posix_fallocate(file, offset as i64, len as i64) {
        Ok(()) => Ok(()),
        // Filesystems without fallocate: write the zeros, as whisper's dense mode does.
        Err(nix::errno::Errno::EOPNOTSUPP | nix::errno::Errno::EINVAL) => {
            write_zeros(file, offset, len)
        }
        Err(errno) => Err(std::io::Error::from(errno)),
    }
}

fn write_zeros(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    const CHUNK: u64 = 16 * 1024;
    let zeros = [0u8; CHUNK as usize];
    let mut done = 0;
    while done < len {
        let n = CHUNK.min(len - done);
        file.write_all_at(&zeros[..n as usize], offset + done)?;
        done += n;
    }
    Ok(())
}
