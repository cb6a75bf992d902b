//! An open whisper file on a memory mapping: update, update_many, fetch and rollup with
//! whisper 1.1's semantics (spec sections 3-9).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{Mmap, MmapMut};

use super::header::{ArchiveInfo, Header, METADATA_SIZE, POINT_SIZE, read_point, write_point};
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

enum Mapping {
    ReadOnly(Mmap),
    ReadWrite(MmapMut),
}

/// An open whisper file.
///
/// The file is mapped whole; every access is bounds-checked against the header, which was
/// checked against the file length when the file was opened. Another process may write the
/// file at the same time (carbon, whisper's scripts); like whisper itself, we read whatever bytes
/// are there. Truncating a mapped file from outside is not supported (it would fault).
pub struct Whisper {
    path: PathBuf,
    map: Mapping,
    header: Header,
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

    /// Opens a file for reading and writing.
    pub fn open(path: &Path) -> Result<Whisper, WhisperError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| WhisperError::io(path, e))?;
        let len = checked_len(path, &file)?;
        // SAFETY: the mapping is only accessed through slices bounded by `len`, which the header
        // was validated against. Concurrent writers in other processes can change bytes under
        // us (as with whisper's own reads); that yields stale or torn values, never
        // out-of-bounds access.
        let map = unsafe { MmapMut::map_mut(&file) }.map_err(|e| WhisperError::io(path, e))?;
        Self::from_mapping(path, Mapping::ReadWrite(map), len)
    }

    /// Opens a file for reading only (a data directory owned by someone else works).
    pub fn open_read_only(path: &Path) -> Result<Whisper, WhisperError> {
        let file = File::open(path).map_err(|e| WhisperError::io(path, e))?;
        let len = checked_len(path, &file)?;
        // SAFETY: as in `open`.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| WhisperError::io(path, e))?;
        Self::from_mapping(path, Mapping::ReadOnly(map), len)
    }

    fn from_mapping(path: &Path, map: Mapping, len: u64) -> Result<Whisper, WhisperError> {
        let bytes = match &map {
            Mapping::ReadOnly(m) => &m[..],
            Mapping::ReadWrite(m) => &m[..],
        };
        if bytes.len() as u64 != len {
            return Err(corrupt(
                path,
                Corruption::Size {
                    len: bytes.len() as u64,
                    expected: len,
                },
            ));
        }
        let header = Header::parse(bytes).map_err(|problem| corrupt(path, problem))?;
        Ok(Whisper {
            path: path.to_owned(),
            map,
            header,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    fn bytes(&self) -> &[u8] {
        match &self.map {
            Mapping::ReadOnly(m) => m,
            Mapping::ReadWrite(m) => m,
        }
    }

    fn bytes_mut(&mut self) -> Result<&mut [u8], WhisperError> {
        match &mut self.map {
            Mapping::ReadOnly(_) => Err(WhisperError::ReadOnly {
                path: self.path.clone(),
            }),
            Mapping::ReadWrite(m) => Ok(m),
        }
    }

    /// Writes dirty pages to disk (msync). Not needed for crash safety of the process, only
    /// against a machine crash.
    pub fn sync(&self) -> Result<(), WhisperError> {
        match &self.map {
            Mapping::ReadOnly(_) => Ok(()),
            Mapping::ReadWrite(m) => m.flush().map_err(|e| WhisperError::io(&self.path, e)),
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
        self.bytes_mut()?[..METADATA_SIZE].copy_from_slice(&metadata);
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
        let at = self.slot_offset(&archive, interval);
        write_point(self.bytes_mut()?, at, stored, value);
        let mut higher = archive;
        for lower_index in index + 1..self.header.archives.len() {
            let lower = self.header.archives[lower_index];
            if !self.propagate(interval, &higher, &lower)? {
                break;
            }
            higher = lower;
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
    /// (before 1970 or after 2106).
    fn archive_update_many(
        &mut self,
        index: usize,
        newest_first: &[(i64, f64)],
    ) -> Result<(usize, usize), WhisperError> {
        let archive = self.header.archives[index];
        let mut written = 0;
        let mut unstorable = 0;
        // Chronological order is the reverse of `newest_first`; of consecutive points with the
        // same interval, the last in chronological order wins.
        let chronological = newest_first.iter().rev();
        let mut peek = chronological.clone().skip(1);
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
            let at = self.slot_offset(&archive, interval);
            write_point(self.bytes_mut()?, at, stored, value);
            written += 1;
        }
        let mut higher = archive;
        for lower_index in index + 1..self.header.archives.len() {
            let lower = self.header.archives[lower_index];
            let mut propagated = false;
            let mut previous = None;
            for &(timestamp, _) in newest_first.iter().rev() {
                let lower_interval = lower.interval(archive.interval(timestamp));
                if previous == Some(lower_interval) {
                    continue;
                }
                previous = Some(lower_interval);
                propagated |= self.propagate(lower_interval, &higher, &lower)?;
            }
            if !propagated {
                break;
            }
            higher = lower;
        }
        Ok((written, unstorable))
    }

    /// The byte offset of `interval`'s slot; an empty archive puts its first point in slot 0.
    fn slot_offset(&self, archive: &ArchiveInfo, interval: i64) -> usize {
        let base = self.base(archive);
        if base == 0 {
            return archive.offset as usize;
        }
        self.slot_offset_from(archive, base, interval)
    }

    fn slot_offset_from(&self, archive: &ArchiveInfo, base: i64, interval: i64) -> usize {
        let distance = (interval - base).div_euclid(i64::from(archive.step));
        let slot = distance.rem_euclid(i64::from(archive.points)) as usize;
        archive.offset as usize + slot * POINT_SIZE
    }

    /// The interval in slot 0; 0 while the archive is empty.
    fn base(&self, archive: &ArchiveInfo) -> i64 {
        i64::from(read_point(self.bytes(), archive.offset as usize).0)
    }

    /// whisper's `__propagate`: aggregates the `higher` slots under the `lower` interval
    /// containing `timestamp` and writes the result, if enough of them are known.
    fn propagate(
        &mut self,
        timestamp: i64,
        higher: &ArchiveInfo,
        lower: &ArchiveInfo,
    ) -> Result<bool, WhisperError> {
        let start = lower.interval(timestamp);
        let higher_base = self.base(higher);
        let first_slot = if higher_base == 0 {
            0
        } else {
            (start - higher_base)
                .div_euclid(i64::from(higher.step))
                .rem_euclid(i64::from(higher.points)) as usize
        };
        let count = (lower.step / higher.step) as usize;
        let bytes = self.bytes();
        let step = i64::from(higher.step);
        let points = higher.points as usize;
        let neighbors = (0..count).map(|j| {
            let slot = (first_slot + j) % points;
            let (interval, value) = read_point(bytes, higher.offset as usize + slot * POINT_SIZE);
            (i64::from(interval) == start + j as i64 * step).then_some(value)
        });
        let known = neighbors.clone().flatten().count();
        if known == 0 {
            return Ok(false);
        }
        // whisper compares a double ratio with the f32 factor widened to double (spec V14).
        if (known as f64) / (count as f64) < f64::from(self.header.x_files_factor) {
            return Ok(false);
        }
        let value = self.header.aggregation.aggregate_iter(neighbors);
        let Ok(stored) = u32::try_from(start) else {
            return Ok(false);
        };
        let at = self.slot_offset(lower, start);
        write_point(self.bytes_mut()?, at, stored, value);
        Ok(true)
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
        Ok(plan_fetch(&self.header, from, until, now, step)?
            .map(|(archive, from, until)| self.read_archive(&archive, from, until)))
    }

    /// The intervals after `from`'s up to and including `until`'s, from one archive.
    pub(crate) fn read_archive(&self, archive: &ArchiveInfo, from: i64, until: i64) -> Series {
        let Series {
            start,
            end,
            step,
            mut values,
        } = empty_series(archive, from, until);
        let base = self.base(archive);
        if base != 0 {
            let bytes = self.bytes();
            let points = archive.points as usize;
            let first_slot = (start - base).div_euclid(step).rem_euclid(points as i64) as usize;
            let region = &bytes[archive.offset as usize..archive.offset as usize + archive.size()];
            // Walk the ring from the first slot, wrapping; each slot is valid only if it holds
            // exactly the interval we expect (stale ring data reads as missing).
            let mut expected = start;
            let mut slot = first_slot;
            for value in values.iter_mut() {
                let (interval, stored) = read_point(region, slot * POINT_SIZE);
                if i64::from(interval) == expected {
                    *value = Some(stored);
                }
                expected += step;
                slot += 1;
                if slot == points {
                    slot = 0;
                }
            }
        }
        Series {
            start,
            end,
            step,
            values,
        }
    }

    /// Every slot of every archive, as stored: for dump tools.
    pub fn raw_archive(&self, index: usize) -> Vec<(u32, f64)> {
        let Some(archive) = self.header.archives.get(index) else {
            return Vec::new();
        };
        let bytes = self.bytes();
        (0..archive.points as usize)
            .map(|slot| read_point(bytes, archive.offset as usize + slot * POINT_SIZE))
            .collect()
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
    use std::os::fd::AsRawFd;
    if len == 0 {
        return Ok(());
    }
    // SAFETY: plain syscall on a file descriptor we own; no memory is passed.
    let rc = unsafe {
        libc::posix_fallocate(file.as_raw_fd(), offset as libc::off_t, len as libc::off_t)
    };
    match rc {
        0 => Ok(()),
        libc::EOPNOTSUPP | libc::EINVAL => write_zeros(file, offset, len),
        errno => Err(std::io::Error::from_raw_os_error(errno)),
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
