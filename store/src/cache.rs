//! The write cache: points accepted into memory at once, visible to reads, and written to
//! whisper files in batches by the writer threads.
//!
//! The cache is sharded by metric name; each writer owns a fixed subset of shards, so writers
//! never contend with each other and a metric is always written by the same thread. A point
//! stays in the cache until it is in its file: the writer copies a metric's points, writes
//! them, and only then removes them, so a read never misses a point in flight.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Points of one metric, in arrival order (timestamps may repeat or go back).
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) points: Vec<(i64, f64)>,
    /// The first `in_flight` points are being written; they must not change under the writer.
    in_flight: usize,
    /// Writer passes since the queue was last non-empty, to drop idle entries.
    idle_passes: u8,
}

/// Why a point was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The cache holds its maximum number of points.
    Full,
}

/// One shard: metric name → its queued points.
type Shard = HashMap<Arc<str>, Queue>;

pub(crate) struct Cache {
    shards: Box<[Mutex<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
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
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            size: AtomicUsize::new(0),
            max_points,
        }
    }

    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub(crate) fn shard_of(&self, name: &str) -> usize {
        (self.hasher.hash_one(name) % self.shards.len() as u64) as usize
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
        let mut shard = self.lock(self.shard_of(name));
        let Some(queue) = shard.get_mut(name) else {
            return Ok(false);
        };
        self.push(queue, timestamp, value)?;
        Ok(true)
    }

    /// Appends a point, creating the metric's entry.
    pub(crate) fn insert(&self, name: &str, timestamp: i64, value: f64) -> Result<(), Full> {
        let mut shard = self.lock(self.shard_of(name));
        if let Some(queue) = shard.get_mut(name) {
            return self.push(queue, timestamp, value);
        }
        if self.size() >= self.max_points {
            return Err(Full::Full);
        }
        let mut queue = Queue::default();
        self.push(&mut queue, timestamp, value)?;
        shard.insert(name.into(), queue);
        Ok(())
    }

    fn push(&self, queue: &mut Queue, timestamp: i64, value: f64) -> Result<(), Full> {
        // The same second again (a resend, or a counter flushed twice): last received wins.
        // Only points the writer is not reading may be changed in place.
        if queue.points.len() > queue.in_flight
            && let Some(last) = queue.points.last_mut()
            && last.0 == timestamp
        {
            last.1 = value;
            return Ok(());
        }
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
        let shard = self.lock(self.shard_of(name));
        if let Some(queue) = shard.get(name) {
            out.extend_from_slice(&queue.points);
        }
    }

    /// Whether `name` has an entry.
    #[cfg(test)]
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.lock(self.shard_of(name)).contains_key(name)
    }

    /// Copies out every metric of `shard` with points, marking them in flight. Entries idle for
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
        map.retain(|_, q| !q.points.is_empty() || q.idle_passes < IDLE_PASSES_BEFORE_DROP);
        for (name, queue) in map.iter_mut() {
            if queue.points.is_empty() {
                queue.idle_passes = queue.idle_passes.saturating_add(1);
                continue;
            }
            let mut points = pool.pop().unwrap_or_default();
            points.clear();
            points.extend_from_slice(&queue.points);
            queue.in_flight = queue.points.len();
            out.push(Batch {
                name: Arc::clone(name),
                points,
            });
        }
    }

    /// Removes the first `written` points of `name` after the writer stored them (or gave up on
    /// them), and ends its in-flight state.
    pub(crate) fn release(&self, name: &str, written: usize) {
        let mut shard = self.lock(self.shard_of(name));
        if let Some(queue) = shard.get_mut(name) {
            let n = written.min(queue.points.len());
            queue.points.drain(..n);
            queue.in_flight = 0;
            self.size.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Ends the in-flight state without removing points (the write was deferred).
    pub(crate) fn keep(&self, name: &str) {
        if let Some(queue) = self.lock(self.shard_of(name)).get_mut(name) {
            queue.in_flight = 0;
        }
    }

    /// Whether no metric of `shard` has queued points.
    pub(crate) fn shard_is_empty(&self, shard: usize) -> bool {
        self.lock(shard).values().all(|q| q.points.is_empty())
    }

    /// Number of metrics with queued points.
    pub(crate) fn queues(&self) -> usize {
        (0..self.shards.len())
            .map(|s| {
                self.lock(s)
                    .values()
                    .filter(|q| !q.points.is_empty())
                    .count()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_received_wins_for_the_same_second() {
        let cache = Cache::new(4, 100);
        cache.insert("a", 10, 1.0).unwrap();
        assert!(cache.push_existing("a", 10, 2.0).unwrap());
        assert!(cache.push_existing("a", 20, 3.0).unwrap());
        assert!(!cache.push_existing("b", 20, 3.0).unwrap());
        let mut out = Vec::new();
        cache.points("a", &mut out);
        assert_eq!(out, [(10, 2.0), (20, 3.0)]);
        assert_eq!(cache.size(), 2);
    }

    #[test]
    fn bounded_in_points() {
        let cache = Cache::new(2, 3);
        cache.insert("a", 1, 1.0).unwrap();
        cache.insert("a", 2, 1.0).unwrap();
        cache.insert("b", 1, 1.0).unwrap();
        assert_eq!(cache.insert("c", 1, 1.0), Err(Full::Full));
        assert_eq!(cache.push_existing("a", 3, 1.0), Err(Full::Full));
        // Overwriting a second already held needs no room.
        assert_eq!(cache.push_existing("a", 2, 5.0), Ok(true));
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
