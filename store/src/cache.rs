//! The write cache: points accepted into memory at once, visible to reads, and written to
//! whisper files in batches by the writer threads.
//!
//! The cache is sharded by metric name; each writer owns a fixed subset of shards, so writers
//! never contend with each other and a metric is always written by the same thread. A point
//! stays in the cache until it is in its file: the writer copies a metric's points, writes
//! them, and only then removes them (points only ever append), so a read never misses a point
//! in flight.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hashbrown::HashTable;

/// Points of one metric, in arrival order (timestamps may repeat or go back).
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) points: Vec<(i64, f64)>,
    /// Writer passes since the queue was last non-empty, to drop idle entries.
    idle_passes: u8,
}

/// Why a point was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The cache holds its maximum number of points.
    Full,
}

/// A metric in a shard, with its hash kept so the name is hashed once per point.
#[derive(Debug)]
struct Entry {
    hash: u64,
    name: Key,
    queue: Queue,
}

/// Longest name kept inside its entry.
const INLINE: usize = 46;

/// A metric name. Short names live inside the table entry, so confirming a match reads the
/// entry's own memory instead of chasing a pointer: with many metrics that pointer chase is
/// a cache miss on every datapoint.
#[derive(Debug)]
enum Key {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl Key {
    fn new(name: &str) -> Key {
        if name.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            Key::Inline {
                len: name.len() as u8,
                bytes,
            }
        } else {
            Key::Shared(name.into())
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // The bytes were copied from a `&str`, so they are valid UTF-8.
            Key::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..*len as usize]).unwrap_or_default()
            }
            Key::Shared(name) => name,
        }
    }

    fn is(&self, name: &[u8]) -> bool {
        match self {
            Key::Inline { len, bytes } => &bytes[..*len as usize] == name,
            Key::Shared(s) => s.as_bytes() == name,
        }
    }

    fn to_shared(&self) -> Arc<str> {
        match self {
            Key::Inline { .. } => self.as_str().into(),
            Key::Shared(name) => Arc::clone(name),
        }
    }
}

/// One shard: metric name → its queued points.
#[derive(Default)]
struct Shard {
    table: HashTable<Entry>,
    /// Points added (or removed, negative) here and not yet counted in `Cache::size`.
    unreported: isize,
}

/// A shard's lock on its own cache lines: neighbouring shards locked from different cores
/// would otherwise bounce a shared line between them.
#[repr(align(128))]
struct Padded(Mutex<Shard>);

pub(crate) struct Cache {
    shards: Box<[Padded]>,
    hasher: hashbrown::DefaultHashBuilder,
    /// Points held, up to `report_every` per shard not yet counted: an atomic updated by
    /// every point from every core would bounce its cache line between them.
    size: AtomicUsize,
    report_every: isize,
    max_points: usize,
}

/// A metric's points copied for writing.
pub(crate) struct Batch {
    pub(crate) name: Arc<str>,
    pub(crate) points: Vec<(i64, f64)>,
}

impl Cache {
    pub(crate) fn new(shards: usize, max_points: usize) -> Cache {
        let shards = shards.max(1);
        // The bound may be exceeded by at most `report_every` points per shard: keep that
        // under an eighth of it (exact for tiny caches).
        let report_every = (max_points / (shards * 8)).clamp(1, 1024) as isize;
        Cache {
            shards: (0..shards)
                .map(|_| Padded(Mutex::new(Shard::default())))
                .collect(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            size: AtomicUsize::new(0),
            report_every,
            max_points,
        }
    }

    /// Counts `delta` points in `shard`, reporting to the global size in chunks.
    fn account(&self, shard: &mut Shard, delta: isize) {
        shard.unreported += delta;
        if shard.unreported.abs() >= self.report_every {
            if shard.unreported > 0 {
                self.size
                    .fetch_add(shard.unreported as usize, Ordering::Relaxed);
            } else {
                self.size
                    .fetch_sub(shard.unreported.unsigned_abs(), Ordering::Relaxed);
            }
            shard.unreported = 0;
        }
    }

    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Names are hashed as bytes, so a receiver can look a name up without re-checking that
    /// it is UTF-8 (it was checked when the line was parsed).
    fn hash(&self, name: &[u8]) -> u64 {
        self.hasher.hash_one(name)
    }

    /// The shard of a hash. Uses middle bits: the table inside a shard uses the low bits to
    /// place entries and the top seven as tags, which must still vary within a shard.
    fn shard_of_hash(&self, hash: u64) -> usize {
        ((hash >> 24) % self.shards.len() as u64) as usize
    }

    fn find<'a>(table: &'a mut HashTable<Entry>, hash: u64, name: &[u8]) -> Option<&'a mut Entry> {
        table.find_mut(hash, |e| e.hash == hash && e.name.is(name))
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        // A poisoned shard only means a thread panicked while holding it; the map itself is
        // always consistent between statements, so keep serving it.
        self.shards[shard]
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Points held, give or take a few per shard (see `report_every`).
    pub(crate) fn size(&self) -> usize {
        self.size.load(Ordering::Relaxed)
    }

    /// Points held, exactly.
    pub(crate) fn exact_size(&self) -> usize {
        let pending: isize = (0..self.shards.len())
            .map(|s| self.lock(s).unreported)
            .sum();
        (self.size() as isize + pending).max(0) as usize
    }

    pub(crate) fn max_points(&self) -> usize {
        self.max_points
    }

    /// Appends a point to a metric already in the cache. `Ok(false)` when the metric has no
    /// entry yet (the caller validates the name and calls [`insert`](Self::insert)).
    pub(crate) fn push_existing(
        &self,
        name: &str,
        timestamp: i64,
        value: f64,
    ) -> Result<bool, Full> {
        let hash = self.hash(name.as_bytes());
        let mut guard = self.lock(self.shard_of_hash(hash));
        let shard = &mut *guard;
        let Some(entry) = Self::find(&mut shard.table, hash, name.as_bytes()) else {
            return Ok(false);
        };
        self.push(&mut entry.queue, timestamp, value)?;
        self.account(shard, 1);
        Ok(true)
    }

    /// The hash and shard of a name, computed once for [`push_shard`](Self::push_shard).
    pub(crate) fn locate(&self, name: &[u8]) -> (u64, usize) {
        let hash = self.hash(name);
        (hash, self.shard_of_hash(hash))
    }

    /// Appends points that all belong to `shard` under one lock. A point whose metric has no
    /// entry yet is handed to `unknown`; once the cache is full every remaining point is
    /// handed to `full`. Returns how many were appended.
    pub(crate) fn push_shard<'a, 'n, T: 'a>(
        &self,
        shard: usize,
        points: impl Iterator<Item = &'a T>,
        parts: impl Fn(&T) -> (u64, &'n [u8], i64, f64),
        mut unknown: impl FnMut(&T),
        mut full: impl FnMut(&T),
    ) -> usize {
        let mut guard = self.lock(shard);
        let shard = &mut *guard;
        let mut appended = 0;
        let mut is_full = false;
        for point in points {
            if is_full {
                full(point);
                continue;
            }
            let (hash, name, timestamp, value) = parts(point);
            match Self::find(&mut shard.table, hash, name) {
                None => unknown(point),
                Some(entry) => match self.push(&mut entry.queue, timestamp, value) {
                    Ok(()) => appended += 1,
                    Err(Full::Full) => {
                        is_full = true;
                        full(point);
                    }
                },
            }
        }
        self.account(shard, appended as isize);
        appended
    }

    /// Appends a point, creating the metric's entry.
    pub(crate) fn insert(&self, name: &str, timestamp: i64, value: f64) -> Result<(), Full> {
        let hash = self.hash(name.as_bytes());
        let mut guard = self.lock(self.shard_of_hash(hash));
        let shard = &mut *guard;
        if let Some(entry) = Self::find(&mut shard.table, hash, name.as_bytes()) {
            self.push(&mut entry.queue, timestamp, value)?;
        } else {
            let mut queue = Queue::default();
            self.push(&mut queue, timestamp, value)?;
            shard.table.insert_unique(
                hash,
                Entry {
                    hash,
                    name: Key::new(name),
                    queue,
                },
                |e| e.hash,
            );
        }
        self.account(shard, 1);
        Ok(())
    }

    fn push(&self, queue: &mut Queue, timestamp: i64, value: f64) -> Result<(), Full> {
        // Repeats of a second are kept in arrival order; reads and the writer both let the
        // last one win. (Not overwriting here saves reading the queue's last point, a cache
        // miss per datapoint with many metrics.)
        if self.size() >= self.max_points {
            return Err(Full::Full);
        }
        queue.points.push((timestamp, value));
        queue.idle_passes = 0;
        Ok(())
    }

    /// The cached points of `name` (arrival order), for reads.
    pub(crate) fn points(&self, name: &str, out: &mut Vec<(i64, f64)>) {
        let hash = self.hash(name.as_bytes());
        let mut shard = self.lock(self.shard_of_hash(hash));
        if let Some(entry) = Self::find(&mut shard.table, hash, name.as_bytes()) {
            out.extend_from_slice(&entry.queue.points);
        }
    }

    /// Whether `name` has an entry.
    #[cfg(test)]
    pub(crate) fn contains(&self, name: &str) -> bool {
        let hash = self.hash(name.as_bytes());
        Self::find(
            &mut self.lock(self.shard_of_hash(hash)).table,
            hash,
            name.as_bytes(),
        )
        .is_some()
    }

    /// Copies out every metric of `shard` with points. Entries idle for
    /// a few passes are dropped so the map does not keep every name ever seen. `pool` recycles
    /// point buffers between passes.
    pub(crate) fn take_shard(
        &self,
        shard: usize,
        out: &mut Vec<Batch>,
        pool: &mut Vec<Vec<(i64, f64)>>,
    ) {
        const IDLE_PASSES_BEFORE_DROP: u8 = 3;
        let mut map = self.lock(shard);
        map.table.retain(|e| {
            !e.queue.points.is_empty() || e.queue.idle_passes < IDLE_PASSES_BEFORE_DROP
        });
        for Entry { name, queue, .. } in map.table.iter_mut() {
            if queue.points.is_empty() {
                queue.idle_passes = queue.idle_passes.saturating_add(1);
                continue;
            }
            let mut points = pool.pop().unwrap_or_default();
            points.clear();
            points.extend_from_slice(&queue.points);
            out.push(Batch {
                name: name.to_shared(),
                points,
            });
        }
    }

    /// Removes the first `written` points of `name` after the writer stored them (or gave up on
    /// them); points that arrived meanwhile stay.
    pub(crate) fn release(&self, name: &str, written: usize) {
        let hash = self.hash(name.as_bytes());
        let mut guard = self.lock(self.shard_of_hash(hash));
        let shard = &mut *guard;
        if let Some(Entry { queue, .. }) = Self::find(&mut shard.table, hash, name.as_bytes()) {
            let n = written.min(queue.points.len());
            queue.points.drain(..n);
            self.account(shard, -(n as isize));
        }
    }

    /// Whether no metric of `shard` has queued points.
    pub(crate) fn shard_is_empty(&self, shard: usize) -> bool {
        self.lock(shard)
            .table
            .iter()
            .all(|e| e.queue.points.is_empty())
    }

    /// Number of metrics with queued points.
    pub(crate) fn queues(&self) -> usize {
        (0..self.shards.len())
            .map(|s| {
                self.lock(s)
                    .table
                    .iter()
                    .filter(|e| !e.queue.points.is_empty())
                    .count()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_kept_in_arrival_order() {
        let cache = Cache::new(4, 100);
        cache.insert("a", 10, 1.0).unwrap();
        assert!(cache.push_existing("a", 10, 2.0).unwrap());
        assert!(cache.push_existing("a", 20, 3.0).unwrap());
        assert!(!cache.push_existing("b", 20, 3.0).unwrap());
        let mut out = Vec::new();
        cache.points("a", &mut out);
        assert_eq!(out, [(10, 1.0), (10, 2.0), (20, 3.0)]);
        assert_eq!(cache.exact_size(), 3);
    }

    #[test]
    fn short_and_long_names() {
        let cache = Cache::new(2, 100);
        let long = "a.".repeat(40) + "end";
        for name in [
            "short.name",
            long.as_str(),
            &long[..INLINE],
            &long[..INLINE + 1],
        ] {
            cache.insert(name, 1, 1.0).unwrap();
            assert!(cache.push_existing(name, 2, 2.0).unwrap(), "{name}");
            let mut out = Vec::new();
            cache.points(name, &mut out);
            assert_eq!(out, [(1, 1.0), (2, 2.0)], "{name}");
        }
        assert!(!cache.push_existing(&long[..INLINE - 1], 3, 3.0).unwrap());
        let (mut batches, mut pool) = (Vec::new(), Vec::new());
        for shard in 0..2 {
            cache.take_shard(shard, &mut batches, &mut pool);
        }
        let mut names: Vec<&str> = batches.iter().map(|b| &*b.name).collect();
        names.sort();
        assert_eq!(names.len(), 4);
        assert!(names.contains(&long.as_str()));
    }

    #[test]
    fn bounded_in_points() {
        let cache = Cache::new(2, 3);
        cache.insert("a", 1, 1.0).unwrap();
        cache.insert("a", 2, 1.0).unwrap();
        cache.insert("b", 1, 1.0).unwrap();
        assert_eq!(cache.insert("c", 1, 1.0), Err(Full::Full));
        assert_eq!(cache.push_existing("a", 3, 1.0), Err(Full::Full));
    }

    #[test]
    fn points_in_flight_stay_readable_and_unchanged() {
        let cache = Cache::new(1, 100);
        cache.insert("a", 10, 1.0).unwrap();
        let (mut batches, mut pool) = (Vec::new(), Vec::new());
        cache.take_shard(0, &mut batches, &mut pool);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].points, [(10, 1.0)]);
        // Arrives while the writer works: appended, not written over the in-flight point.
        cache.push_existing("a", 10, 2.0).unwrap();
        let mut out = Vec::new();
        cache.points("a", &mut out);
        assert_eq!(out, [(10, 1.0), (10, 2.0)]);
        cache.release("a", 1);
        out.clear();
        cache.points("a", &mut out);
        assert_eq!(out, [(10, 2.0)]);
        assert_eq!(cache.exact_size(), 1);
    }

    #[test]
    fn idle_entries_are_dropped() {
        let cache = Cache::new(1, 100);
        cache.insert("a", 10, 1.0).unwrap();
        let (mut batches, mut pool) = (Vec::new(), Vec::new());
        cache.take_shard(0, &mut batches, &mut pool);
        cache.release("a", 1);
        for _ in 0..4 {
            batches.clear();
            cache.take_shard(0, &mut batches, &mut pool);
        }
        assert!(!cache.contains("a"));
    }
}
