//! The store as a database: a data directory of whisper files, a write cache in front of them,
//! writer threads that batch points into files, and the metric index.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cache::{Batch, Cache};
use crate::config::StoreConfig;
use crate::error::{StoreError, WhisperError};
use crate::index::{FindMatch, Index};
use crate::name::{MetricName, TAGGED_DIR, decode_readable};
use crate::rules::StorageRules;
use crate::whisper::{CreateOptions, Header, Series, Whisper, empty_series, plan_fetch};

/// Where the current time comes from (tests pass a fixed clock).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Unix seconds from the system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    })
}

/// A parsed datapoint waiting to be stored; its name is a range of the receiver's buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    name_start: u32,
    name_len: u32,
    pub(crate) timestamp: i64,
    pub(crate) value: f64,
}

impl Pending {
    const EMPTY: Pending = Pending {
        name_start: 0,
        name_len: 0,
        timestamp: 0,
        value: 0.0,
    };

    /// A point named by `name`, which must be a slice of `buf`.
    pub(crate) fn new(buf: &[u8], name: &str, timestamp: i64, value: f64) -> Pending {
        let start = name.as_ptr() as usize - buf.as_ptr() as usize;
        Pending {
            name_start: start as u32,
            name_len: name.len() as u32,
            timestamp,
            value,
        }
    }

    /// The name's bytes in the buffer the point was parsed from (valid UTF-8: the parser
    /// checked).
    pub(crate) fn name_bytes<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.name_start as usize..(self.name_start + self.name_len) as usize]
    }

    /// The name as text.
    pub(crate) fn name<'a>(&self, buf: &'a [u8]) -> &'a str {
        std::str::from_utf8(self.name_bytes(buf)).unwrap_or_default()
    }
}

/// Buffers reused by [`Store::write_batch`] from one batch to the next.
#[derive(Debug, Default)]
pub(crate) struct BatchBuffers {
    located: Vec<(u64, u32)>,
    counts: Vec<usize>,
    sorted: Vec<(u64, Pending)>,
    unknown: Vec<Pending>,
    /// Points refused because the cache was full, to retry.
    pub(crate) full: Vec<Pending>,
}

/// Cumulative counters of the store (see [`Store::stats`]).
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    invalid_names: AtomicU64,
    cache_full: AtomicU64,
    committed_points: AtomicU64,
    update_operations: AtomicU64,
    update_nanos: AtomicU64,
    creates: AtomicU64,
    dropped_old: AtomicU64,
    errors: AtomicU64,
}

/// A snapshot of the store's counters, cumulative since it opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Points accepted into the cache.
    pub accepted: u64,
    /// Points refused for an invalid metric name.
    pub invalid_names: u64,
    /// Points refused because the cache was full.
    pub cache_full: u64,
    /// Points written to whisper files.
    pub committed_points: u64,
    /// Batch writes (update_many calls).
    pub update_operations: u64,
    /// Time spent in batch writes, in nanoseconds.
    pub update_nanos: u64,
    /// Whisper files created.
    pub creates: u64,
    /// Points older than their file's retention when written, dropped as whisper drops them.
    pub dropped_old: u64,
    /// Failed creates or writes (their points are lost, as with Carbon).
    pub errors: u64,
    /// Points in the cache now.
    pub cache_size: u64,
    /// Metrics with points in the cache now.
    pub cache_queues: u64,
    /// Metrics known to the index.
    pub metrics: u64,
}

/// Create budget: a token bucket refilled at `per_minute` tokens a minute.
struct CreateBudget {
    per_minute: u32,
    tokens: f64,
    refilled: Instant,
}

impl CreateBudget {
    fn take(&mut self, unlimited: bool) -> bool {
        if self.per_minute == 0 || unlimited {
            return true;
        }
        let now = Instant::now();
        let rate = f64::from(self.per_minute) / 60.0;
        self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * rate)
            .min(f64::from(self.per_minute));
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Shared {
    root: PathBuf,
    config: StoreConfig,
    cache: Cache,
    index: RwLock<Index>,
    /// Set once the background scan of the data directory has finished.
    index_ready: (Mutex<bool>, Condvar),
    rules: RwLock<Arc<StorageRules>>,
    counters: Counters,
    creates: Mutex<CreateBudget>,
    clock: Clock,
    stopping: AtomicBool,
    /// The flush interval in milliseconds (changeable while running).
    flush_interval_ms: AtomicU64,
    /// Writers sleep on this between passes; woken early on shutdown or cache pressure.
    wake: (Mutex<u64>, Condvar),
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A data directory of whisper files with its write cache, writers and index. Cheap to clone;
/// all clones share one store. Call [`close`](Store::close) before exit: it writes every
/// cached point.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.shared.root)
            .finish()
    }
}

/// Shards per writer: enough that a writer copying one shard rarely holds up ingest.
const SHARDS_PER_WRITER: usize = 64;

impl Store {
    /// Opens (creating if needed) the data directory and starts the writers. The index of
    /// existing files is built in the background; [`find`](Store::find) waits for it.
    pub fn open(config: &StoreConfig, rules: StorageRules) -> Result<Store, StoreError> {
        Self::open_with_clock(config, rules, system_clock())
    }

    /// [`open`](Store::open) with a given clock, used as "now" when writing.
    pub fn open_with_clock(
        config: &StoreConfig,
        rules: StorageRules,
        clock: Clock,
    ) -> Result<Store, StoreError> {
        let root = config.data_dir.clone();
        std::fs::create_dir_all(&root).map_err(|source| StoreError::Io {
            path: root.clone(),
            source,
        })?;
        let writers = if config.writers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            config.writers
        };
        let shared = Arc::new(Shared {
            root,
            cache: Cache::new(writers * SHARDS_PER_WRITER, config.cache_max_points),
            index: RwLock::new(Index::default()),
            index_ready: (Mutex::new(false), Condvar::new()),
            rules: RwLock::new(Arc::new(rules)),
            counters: Counters::default(),
            creates: Mutex::new(CreateBudget {
                per_minute: config.max_creates_per_minute,
                tokens: f64::from(config.max_creates_per_minute),
                refilled: Instant::now(),
            }),
            clock,
            stopping: AtomicBool::new(false),
            flush_interval_ms: AtomicU64::new(config.flush_interval.as_millis() as u64),
            wake: (Mutex::new(0), Condvar::new()),
            threads: Mutex::new(Vec::new()),
            config: config.clone(),
        });
        let mut threads = Vec::with_capacity(writers + 1);
        let scanner = Arc::clone(&shared);
        threads.push(spawn("charcoal-index", move || scanner.scan()));
        // Open files cost descriptors; leave half of the process's allowance for sockets.
        let open_files = config.open_files.min(descriptor_limit() / 2);
        for id in 0..writers {
            let writer = Arc::clone(&shared);
            let open_files = (open_files / writers).max(16);
            threads.push(spawn(&format!("charcoal-writer-{id}"), move || {
                Writer::new(writer, id, writers, open_files).run()
            }));
        }
        *lock(&shared.threads) = threads;
        Ok(Store { shared })
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// Replaces the rules used for files created from now on (existing files keep theirs).
    pub fn set_rules(&self, rules: StorageRules) {
        *self.shared.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
    }

    /// Changes how long points wait in memory before their write begins (SIGHUP).
    pub fn set_flush_interval(&self, interval: Duration) {
        let ms = interval.as_millis().max(1) as u64;
        self.shared.flush_interval_ms.store(ms, Ordering::Relaxed);
        self.shared.wake_writers();
    }

    /// Accepts one point into the write cache; it is visible to [`fetch`](Store::fetch) at
    /// once and written to its file by a writer within the flush interval.
    pub fn write(&self, name: &str, value: f64, timestamp: i64) -> Result<(), StoreError> {
        let s = &self.shared;
        let full = || {
            s.counters.cache_full.fetch_add(1, Ordering::Relaxed);
            s.wake_writers();
            StoreError::CacheFull {
                max_points: s.cache.max_points(),
            }
        };
        // Fast path: a metric already in the cache needs no validation or allocation.
        match s.cache.push_existing(name, timestamp, value) {
            Ok(true) => {
                s.counters.accepted.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Ok(false) => {}
            Err(_) => return Err(full()),
        }
        let metric = MetricName::parse(name).map_err(|source| {
            s.counters.invalid_names.fetch_add(1, Ordering::Relaxed);
            StoreError::Name {
                name: name.to_owned(),
                source,
            }
        })?;
        s.cache
            .insert(metric.as_str(), timestamp, value)
            .map_err(|_| full())?;
        s.counters.accepted.fetch_add(1, Ordering::Relaxed);
        s.index_insert(metric.as_str(), metric.is_tagged());
        Ok(())
    }

    /// Stores a batch of points whose names are slices of `buf` (a receiver's read buffer),
    /// taking each cache shard's lock once for all its points. Points refused because the
    /// cache is full are left in `buffers.full`, in arrival order, for the caller to retry;
    /// points with an invalid name are reported to `invalid`. Returns how many were stored.
    pub(crate) fn write_batch(
        &self,
        buf: &[u8],
        points: &[Pending],
        buffers: &mut BatchBuffers,
        mut invalid: impl FnMut(&str, StoreError),
    ) -> usize {
        let cache = &self.shared.cache;
        let shards = cache.shard_count();
        // Counting sort by shard (stable: a metric's points keep their order).
        buffers.counts.clear();
        buffers.counts.resize(shards + 1, 0);
        buffers.located.clear();
        for p in points {
            let (hash, shard) = cache.locate(p.name_bytes(buf));
            buffers.located.push((hash, shard as u32));
            buffers.counts[shard + 1] += 1;
        }
        for i in 1..=shards {
            buffers.counts[i] += buffers.counts[i - 1];
        }
        buffers.sorted.clear();
        buffers.sorted.resize(points.len(), (0, Pending::EMPTY));
        {
            let mut next = buffers.counts.clone();
            for (p, &(hash, shard)) in points.iter().zip(&buffers.located) {
                let slot = &mut next[shard as usize];
                buffers.sorted[*slot] = (hash, *p);
                *slot += 1;
            }
        }
        buffers.unknown.clear();
        buffers.full.clear();
        let mut stored = 0;
        for shard in 0..shards {
            let range = buffers.counts[shard]..buffers.counts[shard + 1];
            if range.is_empty() {
                continue;
            }
            let (unknown, full) = (&mut buffers.unknown, &mut buffers.full);
            stored += cache.push_shard(
                shard,
                buffers.sorted[range].iter(),
                |(hash, p)| (*hash, p.name_bytes(buf), p.timestamp, p.value),
                |(_, p)| unknown.push(*p),
                |(_, p)| full.push(*p),
            );
        }
        self.shared
            .counters
            .accepted
            .fetch_add(stored as u64, Ordering::Relaxed);
        // New metrics (and the points after them in this batch) take the validating path.
        for p in &buffers.unknown {
            match self.write(p.name(buf), p.value, p.timestamp) {
                Ok(()) => stored += 1,
                Err(StoreError::CacheFull { .. }) => buffers.full.push(*p),
                Err(e) => invalid(p.name(buf), e),
            }
        }
        stored
    }

    /// Whether the cache has room for more points (receivers pause reading when it has not).
    pub fn has_room(&self) -> bool {
        self.shared.cache.size() < self.shared.cache.max_points()
    }

    /// Graphite glob find over the metric tree (plain names; tagged series are found with
    /// [`find_series_by_tag`](Store::find_series_by_tag)). Waits for the initial scan.
    pub fn find(&self, pattern: &str) -> Vec<FindMatch> {
        self.shared.wait_for_index();
        self.shared.read_index().find(pattern)
    }

    /// Every metric name: plain names sorted, then tagged series sorted.
    pub fn all_metrics(&self) -> Vec<String> {
        self.shared.wait_for_index();
        self.shared.read_index().all_metrics()
    }

    /// Tagged series matching every expression (`tag=value`, `tag!=value`, `tag=~regex`,
    /// `tag!=~regex`), sorted, as Graphite's `seriesByTag`.
    pub fn find_series_by_tag(&self, expressions: &[&str]) -> Result<Vec<String>, StoreError> {
        self.shared.wait_for_index();
        Ok(self.shared.read_index().tags().find_series(expressions)?)
    }

    /// Tag names, for the tag endpoints: all of them, or those on series matching
    /// `expressions` minus the ones the expressions use; filtered by prefix, sorted.
    pub fn tag_names(
        &self,
        expressions: &[&str],
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.shared.wait_for_index();
        Ok(self
            .shared
            .read_index()
            .tags()
            .tag_names(expressions, prefix, limit)?)
    }

    /// Values of `tag` with the number of series carrying each, filtered like
    /// [`tag_names`](Store::tag_names).
    pub fn tag_values(
        &self,
        tag: &str,
        expressions: &[&str],
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, usize)>, StoreError> {
        self.shared.wait_for_index();
        Ok(self
            .shared
            .read_index()
            .tags()
            .tag_values(tag, expressions, prefix, limit)?)
    }

    /// Reads `[from, until]` with whisper's semantics, with the cached points laid over the
    /// file's values: within an interval the point the writer would keep wins (latest
    /// timestamp; for equal timestamps the last received). A metric only in the cache is read
    /// as the file its rules would create. `None` when the metric is unknown or the range is
    /// outside its retention.
    pub fn fetch(
        &self,
        name: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<Series>, StoreError> {
        let metric = MetricName::parse(name).map_err(|source| StoreError::Name {
            name: name.to_owned(),
            source,
        })?;
        let mut cached = Vec::new();
        self.shared.cache.points(metric.as_str(), &mut cached);
        let series = match self.shared.open_read(&metric) {
            Ok(file) => file.fetch(from, until, now)?,
            Err(WhisperError::NotFound { .. }) if !cached.is_empty() => {
                let settings = self.shared.current_rules().settings_for(metric.as_str());
                let header = Header::new(
                    &settings.retentions,
                    settings.x_files_factor as f32,
                    settings.aggregation,
                );
                plan_fetch(&header, from, until, now, None)?
                    .map(|(archive, from, until)| empty_series(&archive, from, until))
            }
            Err(WhisperError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(mut series) = series else {
            return Ok(None);
        };
        // Stable sort: among equal timestamps the last received stays last and wins.
        cached.sort_by_key(|p| p.0);
        for (timestamp, value) in cached {
            let interval = timestamp - timestamp.rem_euclid(series.step);
            if interval >= series.start && interval < series.end {
                series.values[((interval - series.start) / series.step) as usize] = Some(value);
            }
        }
        Ok(Some(series))
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> StoreStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StoreStats {
            accepted: get(&c.accepted),
            invalid_names: get(&c.invalid_names),
            cache_full: get(&c.cache_full),
            committed_points: get(&c.committed_points),
            update_operations: get(&c.update_operations),
            update_nanos: get(&c.update_nanos),
            creates: get(&c.creates),
            dropped_old: get(&c.dropped_old),
            errors: get(&c.errors),
            cache_size: self.shared.cache.exact_size() as u64,
            cache_queues: self.shared.cache.queues() as u64,
            metrics: self.shared.read_index().len() as u64,
        }
    }

    /// Waits until every point accepted so far is in its file (or was dropped as too old, or
    /// failed), or until `timeout`. Returns whether the cache drained.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.shared.cache.exact_size() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            self.shared.wake_writers();
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops the writers after they have written every cached point (creating files beyond the
    /// create budget if need be), and waits for them. Points written after this are refused by
    /// no one but never reach disk: stop the receivers first.
    pub fn close(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.wake_writers();
        let threads = std::mem::take(&mut *lock(&self.shared.threads));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// The soft limit on open file descriptors.
fn descriptor_limit() -> usize {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| {
            usize::try_from(soft).unwrap_or(usize::MAX)
        })
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .expect("spawning a store thread")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn index_insert(&self, name: &str, tagged: bool) {
        self.index
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, tagged);
    }

    fn current_rules(&self) -> Arc<StorageRules> {
        Arc::clone(&self.rules.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn wait_for_index(&self) {
        let (ready, signal) = &self.index_ready;
        let mut done = lock(ready);
        while !*done {
            done = signal.wait(done).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn wake_writers(&self) {
        let (generation, signal) = &self.wake;
        *lock(generation) += 1;
        signal.notify_all();
    }

    fn open_read(&self, metric: &MetricName<'_>) -> Result<Whisper, WhisperError> {
        match Whisper::open_read_only(&metric.path(&self.root)) {
            Err(WhisperError::NotFound { .. }) if metric.is_tagged() => {
                let hashed = metric.hashed_path(&self.root).unwrap_or_default();
                Whisper::open_read_only(&hashed)
            }
            other => other,
        }
    }

    /// Walks the data directory once and indexes every whisper file, in batches so that
    /// writers adding new metrics are never held up for long.
    fn scan(&self) {
        const BATCH: usize = 4096;
        let started = Instant::now();
        let mut batch: Vec<(String, bool)> = Vec::with_capacity(BATCH);
        let mut pending = vec![(self.root.clone(), String::new())];
        let mut files = 0usize;
        while let Some((dir, prefix)) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let tagged_level = prefix.starts_with(TAGGED_DIR);
            for entry in entries.flatten() {
                let file_name = entry.file_name();
                let Some(name) = file_name.to_str() else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    let child = if prefix.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{prefix}.{name}")
                    };
                    pending.push((entry.path(), child));
                } else if let Some(stem) = name.strip_suffix(".wsp") {
                    let metric = if tagged_level {
                        decode_readable(stem).map(|n| (n, true))
                    } else if prefix.is_empty() {
                        Some((stem.to_owned(), false))
                    } else {
                        Some((format!("{prefix}.{stem}"), false))
                    };
                    // Files Carbon named by hash carry no name; they are still read when a
                    // tagged name is looked up, but cannot be listed.
                    if let Some((metric, tagged)) = metric
                        && MetricName::parse(&metric).is_ok()
                    {
                        batch.push((metric, tagged));
                        files += 1;
                    }
                }
                if batch.len() >= BATCH {
                    self.insert_batch(&mut batch);
                }
            }
        }
        self.insert_batch(&mut batch);
        let (ready, signal) = &self.index_ready;
        *lock(ready) = true;
        signal.notify_all();
        tracing::info!(
            files,
            elapsed_ms = started.elapsed().as_millis() as u64,
            root = %self.root.display(),
            "indexed data directory"
        );
    }

    fn insert_batch(&self, batch: &mut Vec<(String, bool)>) {
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        for (name, tagged) in batch.drain(..) {
            index.insert(&name, tagged);
        }
    }
}

/// What happened to one metric's batch.
enum Outcome {
    /// Stored (or dropped as whisper drops them, or lost to an error): remove from the cache.
    Done,
    /// Waiting for a create token: keep the points cached.
    Deferred,
}

/// One writer thread: owns the shards `id, id + writers, ...` and the files it has open.
struct Writer {
    shared: Arc<Shared>,
    shards: Vec<usize>,
    open: HashMap<Arc<str>, (Whisper, u64)>,
    open_limit: usize,
    pass: u64,
    batches: Vec<Batch>,
    pool: Vec<Vec<(i64, f64)>>,
    /// Rate limit for error logs: the pass number of the last one.
    last_error_log: Option<Instant>,
}

impl Writer {
    fn new(shared: Arc<Shared>, id: usize, writers: usize, open_limit: usize) -> Writer {
        let shards = (id..shared.cache.shard_count()).step_by(writers).collect();
        Writer {
            shared,
            shards,
            open: HashMap::new(),
            open_limit,
            pass: 0,
            batches: Vec::new(),
            pool: Vec::new(),
            last_error_log: None,
        }
    }

    fn run(mut self) {
        // Points wait up to one flush interval before their first write, like every later one.
        self.sleep(Duration::ZERO);
        loop {
            let started = Instant::now();
            let stopping = self.shared.stopping.load(Ordering::SeqCst);
            let deferred = self.pass_once(stopping);
            if stopping && deferred == 0 && self.my_shards_empty() {
                break;
            }
            self.sleep(started.elapsed());
        }
        // No fsync here: what is written is in the page cache, which survives the process.
        // Surviving a machine crash would take an fsync per file, far too slow for 100k files.
    }

    /// Waits out the rest of the flush interval after a pass that took `elapsed`, unless the
    /// cache is over half full or the store is stopping; woken early by either.
    fn sleep(&self, elapsed: Duration) {
        let interval = Duration::from_millis(self.shared.flush_interval_ms.load(Ordering::Relaxed));
        let pressured = self.shared.cache.size() * 2 >= self.shared.cache.max_points()
            || self.shared.stopping.load(Ordering::SeqCst);
        if pressured || elapsed >= interval {
            return;
        }
        let (generation, signal) = &self.shared.wake;
        let seen = *lock(generation);
        let woken = signal.wait_timeout_while(lock(generation), interval - elapsed, |g| *g == seen);
        drop(woken);
    }

    fn my_shards_empty(&self) -> bool {
        self.shards
            .iter()
            .all(|&s| self.shared.cache.shard_is_empty(s))
    }

    /// Writes every metric of this writer's shards once. Returns how many were deferred.
    fn pass_once(&mut self, stopping: bool) -> usize {
        self.pass += 1;
        let started = Instant::now();
        let mut deferred = 0;
        let (mut metrics, mut points) = (0usize, 0usize);
        for i in 0..self.shards.len() {
            let shard = self.shards[i];
            let mut batches = std::mem::take(&mut self.batches);
            self.shared
                .cache
                .take_shard(shard, &mut batches, &mut self.pool);
            for mut batch in batches.drain(..) {
                let copied = batch.points.len();
                metrics += 1;
                points += copied;
                match self.write(&batch.name, &mut batch.points, stopping) {
                    Outcome::Done => self.shared.cache.release(&batch.name, copied),
                    Outcome::Deferred => deferred += 1,
                }
                self.pool.push(batch.points);
            }
            self.batches = batches;
        }
        if metrics > 0 {
            tracing::debug!(
                pass = self.pass,
                metrics,
                points,
                deferred,
                open_files = self.open.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "writer pass"
            );
        }
        deferred
    }

    fn write(&mut self, name: &Arc<str>, points: &mut Vec<(i64, f64)>, stopping: bool) -> Outcome {
        // Keep the last received point of each second (the cache keeps arrival order).
        points.sort_by_key(|p| p.0);
        dedup_keep_last(points);
        let now = (self.shared.clock)();
        let pass = self.pass;
        if !self.open.contains_key(name) {
            // Keep the number of mappings bounded (the kernel limits them per process).
            if self.open.len() >= self.open_limit {
                self.evict_files();
            }
            match self.open_or_create(name, stopping) {
                Ok(Some(file)) => {
                    self.open.insert(Arc::clone(name), (file, pass));
                }
                Ok(None) => return Outcome::Deferred,
                Err(e) => return self.failed(name, &e, stopping),
            }
        }
        let Some((file, last_used)) = self.open.get_mut(name) else {
            return Outcome::Done;
        };
        *last_used = pass;
        let started = Instant::now();
        let result = file.update_many(points, now);
        let c = &self.shared.counters;
        c.update_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        match result {
            Ok(outcome) => {
                c.update_operations.fetch_add(1, Ordering::Relaxed);
                c.committed_points
                    .fetch_add(outcome.written as u64, Ordering::Relaxed);
                c.dropped_old
                    .fetch_add(outcome.dropped as u64, Ordering::Relaxed);
            }
            Err(e) => {
                self.open.remove(name);
                return self.failed(name, &e, stopping);
            }
        }
        Outcome::Done
    }

    /// A failed open, create or write. Running out of descriptors, memory or disk space is
    /// temporary: the points stay cached and are tried again on a later pass (some open files
    /// are closed to free descriptors). Anything else loses the batch, as Carbon does, and is
    /// counted. While stopping, nothing is deferred, so shutdown always ends.
    fn failed(&mut self, name: &str, error: &WhisperError, stopping: bool) -> Outcome {
        let transient = matches!(
            error,
            WhisperError::Io { source, .. } if matches!(
                source.raw_os_error(),
                Some(libc::EMFILE | libc::ENFILE | libc::ENOSPC | libc::EDQUOT | libc::ENOMEM | libc::EAGAIN | libc::EINTR)
            )
        );
        if transient && !stopping {
            self.open_limit = (self.open.len() / 2).max(16);
            self.evict_files();
            self.log_error(name, error, "write deferred; points kept in the cache");
            return Outcome::Deferred;
        }
        self.shared.counters.errors.fetch_add(1, Ordering::Relaxed);
        self.log_error(name, error, "write failed; points lost");
        Outcome::Done
    }

    /// Opens the metric's file, creating it (with its directories) from the rules if it does
    /// not exist and the create budget allows. `Ok(None)`: no budget yet.
    fn open_or_create(
        &mut self,
        name: &str,
        stopping: bool,
    ) -> Result<Option<Whisper>, WhisperError> {
        // Names enter the cache validated; a failure here would be a bug, reported as such.
        let metric = MetricName::parse(name).map_err(|e| WhisperError::Io {
            path: PathBuf::from(name),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        })?;
        let path = metric.path(&self.shared.root);
        match Whisper::open(&path) {
            Err(WhisperError::NotFound { .. }) => {}
            other => return other.map(Some),
        }
        if let Some(hashed) = metric.hashed_path(&self.shared.root) {
            match Whisper::open(&hashed) {
                Err(WhisperError::NotFound { .. }) => {}
                other => return other.map(Some),
            }
        }
        if !lock(&self.shared.creates).take(stopping) {
            return Ok(None);
        }
        let rules = self.shared.current_rules();
        let settings = rules.settings_for(metric.as_str());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| WhisperError::Io {
                path: parent.to_owned(),
                source: e,
            })?;
        }
        let options = CreateOptions {
            x_files_factor: settings.x_files_factor,
            aggregation: settings.aggregation,
            sparse: self.shared.config.sparse_create,
        };
        match Whisper::create(&path, &settings.retentions, options) {
            // Another process (or a restart) created it meanwhile: use it.
            Ok(()) | Err(WhisperError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        self.shared.counters.creates.fetch_add(1, Ordering::Relaxed);
        Whisper::open(&path).map(Some)
    }

    /// At most one log line a second per writer; the counters have the totals.
    fn log_error(&mut self, name: &str, error: &WhisperError, what: &'static str) {
        let now = Instant::now();
        if self
            .last_error_log
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            self.last_error_log = Some(now);
            tracing::error!(metric = name, error = %error, "{what}");
        }
    }

    /// Closes the least recently used files, down to nine tenths of the limit.
    fn evict_files(&mut self) {
        if self.open.len() < self.open_limit {
            return;
        }
        let mut uses: Vec<u64> = self.open.values().map(|(_, pass)| *pass).collect();
        let excess = self.open.len() - self.open_limit * 9 / 10;
        let (_, cutoff, _) = uses.select_nth_unstable(excess.saturating_sub(1));
        let cutoff = *cutoff;
        let mut removed = 0;
        self.open.retain(|_, (_, pass)| {
            if *pass <= cutoff && removed < excess {
                removed += 1;
                false
            } else {
                true
            }
        });
    }
}

/// After a stable sort by timestamp, keeps the last of each run of equal timestamps.
fn dedup_keep_last(points: &mut Vec<(i64, f64)>) {
    let mut write = 0;
    for read in 0..points.len() {
        if read + 1 < points.len() && points[read + 1].0 == points[read].0 {
            continue;
        }
        points[write] = points[read];
        write += 1;
    }
    points.truncate(write);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keeps_the_last_received() {
        let mut points = vec![(1, 1.0), (1, 2.0), (2, 3.0), (3, 4.0), (3, 5.0), (3, 6.0)];
        dedup_keep_last(&mut points);
        assert_eq!(points, [(1, 2.0), (2, 3.0), (3, 6.0)]);
    }
}
