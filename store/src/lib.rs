//! Charcoal's time-series store: whisper files byte-compatible with Graphite's, Carbon's
//! storage rules, and the database built on them: a data directory laid out as Carbon lays it
//! out, a write cache that reads see, writer threads, and an index for Graphite globs and tags.
//!
//! ```
//! use charcoal_store::{CreateOptions, Whisper, parse_retentions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("load.wsp");
//! let now = 1_700_000_000;
//! Whisper::create(&path, &parse_retentions("10s:1h,1m:1d").unwrap(), CreateOptions::default())
//!     .unwrap();
//! let mut file = Whisper::open(&path).unwrap();
//! file.update_many(&mut [(now - 20, 1.0), (now - 10, 2.0)], now).unwrap();
//! let series = file.fetch(now - 30, now, now).unwrap().unwrap();
//! // Intervals after `from` up to and including `until`: now-20, now-10, now.
//! assert_eq!(series.values, vec![Some(1.0), Some(2.0), None]);
//! ```

mod aggregation;
mod cache;
mod carbon;
mod config;
mod db;
mod error;
mod glob;
mod index;
mod name;
mod retention;
mod rules;
mod whisper;

pub use aggregation::AggregationMethod;
pub use carbon::{
    CarbonConfig, CarbonLine, CarbonReceiver, CarbonSockets, LineError, ReceiverStats, parse_line,
    python_float,
};
pub use config::{StoreConfig, duration_text};
pub use db::{Clock, Store, StoreStats, system_clock};
pub use error::{Corruption, RetentionError, RulesError, StoreError, TagError, WhisperError};
pub use glob::Glob;
pub use index::{FindMatch, TagExpression};
pub use name::{MAX_NAME_LEN, MetricName, NameError};
pub use retention::{Retention, parse_retentions, validate_archive_list};
pub use rules::{DEFAULT_RETENTION, NewFileSettings, SkippedSection, StorageRules};
pub use whisper::{
    ArchiveInfo, CreateOptions, DiffArchive, Header, ResizeOptions, Series, UpdateOutcome, Whisper,
    diff, fill, merge, resize,
};
