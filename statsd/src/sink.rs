//! Where flushes go: the [`Sink`] trait, and a Carbon plaintext TCP sink with reconnects and
//! a bounded retry buffer (spec §16: the reference loses a flush whenever Carbon is down).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::error::SinkError;
use crate::flush::Flush;

/// Receives every flush. `deliver` runs on a blocking thread (never on the async runtime),
/// once per flush, in flush order; it should hand the data over quickly.
pub trait Sink: Send + Sync {
    /// Short name for logs and errors.
    fn name(&self) -> &'static str;
    /// Takes one flush. Use [`Flush::points`] for `(name, value, timestamp)` triples or
    /// [`Flush::text`] for Carbon plaintext.
    fn deliver(&self, flush: &Arc<Flush>) -> Result<(), SinkError>;
}

/// Settings of a [`CarbonSink`].
#[derive(Debug, Clone)]
pub struct CarbonSinkConfig {
    /// `host:port` of the Carbon plaintext receiver (resolved at every connect).
    pub target: String,
    /// Bytes of unsent flushes kept while Carbon is unreachable; the oldest flush is dropped
    /// beyond it.
    pub max_buffer_bytes: usize,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Longest pause between reconnect attempts (backoff starts at 100 ms and doubles).
    pub max_backoff: Duration,
    /// How long `shutdown` keeps trying to send what is buffered.
    pub shutdown_grace: Duration,
}

impl CarbonSinkConfig {
    /// Defaults for `target`: 64 MiB buffer, 5 s connect timeout, 30 s max backoff, 5 s grace.
    pub fn new(target: impl Into<String>) -> Self {
        CarbonSinkConfig {
            target: target.into(),
            max_buffer_bytes: 64 * 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Default)]
struct Queue {
    flushes: VecDeque<Arc<Flush>>,
    bytes: usize,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    notify: Notify,
    closing: AtomicBool,
    dropped_points: AtomicU64,
    sent_points: AtomicU64,
}

/// Sends flushes as Carbon plaintext over one persistent TCP connection.
#[derive(Debug, Clone)]
pub struct CarbonSink {
    shared: Arc<Shared>,
    max_bytes: usize,
}

/// Owns the sending task of a [`CarbonSink`].
#[derive(Debug)]
pub struct CarbonSinkHandle {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

fn lock(q: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    q.lock().unwrap_or_else(|e| e.into_inner())
}

impl CarbonSink {
    /// Starts the sending task on the current Tokio runtime.
    pub fn spawn(config: CarbonSinkConfig) -> (CarbonSink, CarbonSinkHandle) {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            notify: Notify::new(),
            closing: AtomicBool::new(false),
            dropped_points: AtomicU64::new(0),
            sent_points: AtomicU64::new(0),
        });
        let max_bytes = config.max_buffer_bytes;
        let task = tokio::spawn(run(config, Arc::clone(&shared)));
        (
            CarbonSink {
                shared: Arc::clone(&shared),
                max_bytes,
            },
            CarbonSinkHandle { shared, task },
        )
    }

    /// Points dropped because the buffer overflowed or shutdown gave up.
    pub fn dropped_points(&self) -> u64 {
        self.shared.dropped_points.load(Ordering::Relaxed)
    }

    /// Points written to Carbon.
    pub fn sent_points(&self) -> u64 {
        self.shared.sent_points.load(Ordering::Relaxed)
    }
}

impl Sink for CarbonSink {
    fn name(&self) -> &'static str {
        "carbon"
    }

    fn deliver(&self, flush: &Arc<Flush>) -> Result<(), SinkError> {
        if self.shared.closing.load(Ordering::Acquire) {
            return Err(SinkError::Closed { sink: "carbon" });
        }
        let mut dropped = 0;
        {
            let mut q = lock(&self.shared.queue);
            q.bytes += flush.text().len();
            q.flushes.push_back(Arc::clone(flush));
            while q.bytes > self.max_bytes && q.flushes.len() > 1 {
                if let Some(old) = q.flushes.pop_front() {
                    q.bytes -= old.text().len();
                    dropped += old.len();
                }
            }
        }
        self.shared.notify.notify_one();
        if dropped > 0 {
            self.shared
                .dropped_points
                .fetch_add(dropped as u64, Ordering::Relaxed);
            return Err(SinkError::Overflow {
                sink: "carbon",
                dropped_points: dropped,
            });
        }
        Ok(())
    }
}

impl CarbonSinkHandle {
    /// Sends what is buffered (for at most `shutdown_grace`) and stops the task.
    pub async fn shutdown(self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.notify.notify_one();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "statsd: carbon sink task failed");
        }
    }
}

async fn run(config: CarbonSinkConfig, shared: Arc<Shared>) {
    let mut conn: Option<TcpStream> = None;
    let mut backoff = Duration::from_millis(100);
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let next = lock(&shared.queue).flushes.front().cloned();
        let closing = shared.closing.load(Ordering::Acquire);
        if closing && deadline.is_none() {
            deadline = Some(tokio::time::Instant::now() + config.shutdown_grace);
        }
        let Some(flush) = next else {
            if closing {
                break;
            }
            shared.notify.notified().await;
            continue;
        };
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            let q = std::mem::take(&mut *lock(&shared.queue));
            let lost: usize = q.flushes.iter().map(|f| f.len()).sum();
            shared
                .dropped_points
                .fetch_add(lost as u64, Ordering::Relaxed);
            tracing::warn!(target = %config.target, points = lost, "statsd: carbon unreachable at shutdown, points lost");
            break;
        }
        if conn.is_none() {
            match tokio::time::timeout(config.connect_timeout, TcpStream::connect(&config.target))
                .await
            {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    conn = Some(s);
                }
                Ok(Err(e)) => {
                    tracing::warn!(target = %config.target, error = %e, "statsd: carbon connect failed");
                }
                Err(_) => {
                    tracing::warn!(target = %config.target, "statsd: carbon connect timed out");
                }
            }
        }
        let Some(stream) = conn.as_mut() else {
            let pause = match deadline {
                Some(d) => backoff.min(d.saturating_duration_since(tokio::time::Instant::now())),
                None => backoff,
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shared.notify.notified(), if !closing => {}
            }
            backoff = (backoff * 2).min(config.max_backoff);
            continue;
        };
        match stream.write_all(flush.text().as_bytes()).await {
            Ok(()) => {
                backoff = Duration::from_millis(100);
                let mut q = lock(&shared.queue);
                if q.flushes.front().is_some_and(|f| Arc::ptr_eq(f, &flush)) {
                    q.flushes.pop_front();
                    q.bytes -= flush.text().len();
                }
                drop(q);
                shared
                    .sent_points
                    .fetch_add(flush.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                // Resent whole: Graphite keeps one value per timestamp, so repeats are harmless.
                tracing::warn!(target = %config.target, error = %e, "statsd: carbon write failed, will retry");
                conn = None;
            }
        }
    }
    if let Some(mut s) = conn {
        let _ = s.shutdown().await;
    }
}
