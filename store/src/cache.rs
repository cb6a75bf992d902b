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
    name: Arc<str>,
    queue: Queue,
}

/// One shard: metric name → its queued points.
type Shard = HashTable<Entry>;

pub(crate) struct Cache {
    shards: Box<[Mutex<Shard>]>,
    hasher: hashbrown::DefaultHashBuilder,
    size: AtomicUsize,
    max_points: usize,
}

/// A metric's points copied for writing.
pub(crate) struct Batch {
    pub(crate) name: Arc<str>,
    pub(crate) points: Vec<(i64, f64)>,
}

impl Cache {
    pub(crate) fn new(shards: usize, max_points: usize) -> Cache {
        Cache {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(HashTable::new()))
                .collect(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            size: AtomicUsize::new(0),
            max_points,
        }
    }

    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn hash(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    /// The shard of a hash. Uses middle bits: the table inside a shard uses the low bits to
    /// place entries and the top seven as tags, which must still vary within a shard.
    fn shard_of_hash(&self, hash: u64) -> usize {
        ((hash >> 24) % self.shards.len() as u64) as usize
    }

    fn find<'a>(shard: &'a mut Shard, hash: u64, name: &str) -> Option<&'a mut Entry> {
        shard.find_mut(hash, |e| e.hash == hash && *e.name == *name)
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        // A poisoned shard only means a thread panicked while holding it; the map itself is
        // always consistent between statements, so keep serving it.
        self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Points held.
    pub(crate) fn size(&self) -> usize {
        self.size.load(Ordering::Relaxed)
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
        let hash = self.hash(name);
        let mut shard = self.lock(self.shard_of_hash(hash));
        let Some(entry) = Self::find(&mut shard, hash, name) else {
            return Ok(false);
        };
        self.push(&mut entry.queue, timestamp, value)?;
        Ok(true)
    }

    /// Appends a point, creating the metric's entry.
    pub(crate) fn insert(&self, name: &str, timestamp: i64, value: f64) -> Result<(), Full> {
        let hash = self.hash(name);
        let mut shard = self.lock(self.shard_of_hash(hash));
        if let Some(entry) = Self::find(&mut shard, hash, name) {
            return self.push(&mut entry.queue, timestamp, value);
        }
        if self.size() >= self.max_points {
            return Err(Full::Full);
        }
        let mut queue = Queue::default();
        self.push(&mut queue, timestamp, value)?;
        shard.insert_unique(
            hash,
            Entry {
                hash,
                name: name.into(),
                queue,
            },
            |e| e.hash,
        );
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
        self.size.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The cached points of `name` (arrival order), for reads.
    pub(crate) fn points(&self, name: &str, out: &mut Vec<(i64, f64)>) {
        let hash = self.hash(name);
        let mut shard = self.lock(self.shard_of_hash(hash));
        if let Some(entry) = Self::find(&mut shard, hash, name) {
            out.extend_from_slice(&entry.queue.points);
        }
    }

    /// Whether `name` has an entry.
    #[cfg(test)]
    pub(crate) fn contains(&self, name: &str) -> bool {
        let hash = self.hash(name);
        Self::find(&mut self.lock(self.shard_of_hash(hash)), hash, name).is_some()
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
        map.retain(|e| !e.queue.points.is_empty() || e.queue.idle_passes < IDLE_PASSES_BEFORE_DROP);
        for Entry { name, queue, .. } in map.iter_mut() {
            if queue.points.is_empty() {
                queue.idle_passes = queue.idle_passes.saturating_add(1);
                continue;
            }
            let mut points = pool.pop().unwrap_or_default();
            points.clear();
            points.extend_from_slice(&queue.points);
            out.push(Batch {
                name: Arc::clone(name),
                points,
            });
        }
    }

    /// Removes the first `written` points of `name` after the writer stored them (or gave up on
    /// them); points that arrived meanwhile stay.
    pub(crate) fn release(&self, name: &str, written: usize) {
        let hash = self.hash(name);
        let mut shard = self.lock(self.shard_of_hash(hash));
        if let Some(Entry { queue, .. }) = Self::find(&mut shard, hash, name) {
            let n = written.min(queue.points.len());
            queue.points.drain(..n);
            self.size.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Whether no metric of `shard` has queued points.
    pub(crate) fn shard_is_empty(&self, shard: usize) -> bool {
        self.lock(shard).iter().all(|e| e.queue.points.is_empty())
    }

    /// Number of metrics with queued points.
    pub(crate) fn queues(&self) -> usize {
        (0..self.shards.len())
            .map(|s| {
                self.lock(s)
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
        assert_eq!(cache.size(), 3);
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
        assert_eq!(cache.size(), 1);
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
