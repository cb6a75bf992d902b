//! Error types of the store. Every variant keeps the context an operator needs: the file, the
//! field or the offending text.

use std::path::PathBuf;

/// A retention definition or archive list that whisper would refuse.
///
/// The messages repeat whisper's own wording (spec `whisper-carbon.md` V01/V03) so that operators
/// searching for them find the same explanations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionError {
    #[error("Invalid retention definition '{0}'")]
    Definition(String),
    #[error("Invalid precision specification '{0}'")]
    Precision(String),
    #[error("Invalid retention specification '{0}'")]
    Retention(String),
    #[error("Invalid unit '{0}'")]
    Unit(String),
    #[error("number too large in retention definition '{0}'")]
    Overflow(String),
    #[error("You must specify at least one archive configuration!")]
    Empty,
    #[error("an archive needs a precision of at least one second (got '{0}')")]
    ZeroStep(String),
    #[error("an archive needs at least one point (got '{0}')")]
    ZeroPoints(String),
    #[error(
        "A Whisper database may not be configured having two archives with the same precision \
         (archive{index}: ({step}, {points}), archive{next}: ({next_step}, {next_points}))",
        next = index + 1
    )]
    SamePrecision {
        index: usize,
        step: u32,
        points: u32,
        next_step: u32,
        next_points: u32,
    },
    #[error(
        "Higher precision archives' precision must evenly divide all lower precision archives' \
         precision (archive{index}: {step}, archive{next}: {next_step})",
        next = index + 1
    )]
    NotDivisible {
        index: usize,
        step: u32,
        next_step: u32,
    },
    #[error(
        "Lower precision archives must cover larger time intervals than higher precision archives \
         (archive{index}: {retention} seconds, archive{next}: {next_retention} seconds)",
        next = index + 1
    )]
    NotLonger {
        index: usize,
        retention: u64,
        next_retention: u64,
    },
    #[error(
        "Each archive must have at least enough points to consolidate to the next archive \
         (archive{next} consolidates {ratio} of archive{index}'s points but it has only {points} \
         total points)",
        next = index + 1
    )]
    TooFewPoints {
        index: usize,
        ratio: u32,
        points: u32,
    },
    #[error("whisper file would be larger than 4 GiB, which its 32-bit offsets cannot address")]
    TooLarge,
}

/// What is wrong with a whisper file's header or size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    #[error("Unable to read header: file is {len} bytes, shorter than the 16-byte metadata")]
    ShortHeader { len: u64 },
    #[error("Unable to read header: aggregationType {0} is not 1-8")]
    AggregationType(u32),
    #[error("Unable to read header: xFilesFactor {0} is not between 0 and 1")]
    XFilesFactor(String),
    #[error("Unable to read header: archiveCount is 0")]
    NoArchives,
    #[error("Unable to read archive{index} metadata: file is {len} bytes")]
    ShortArchiveTable { index: u32, len: u64 },
    #[error("archive{index}: secondsPerPoint is 0")]
    ZeroStep { index: u32 },
    #[error("archive{index}: points is 0")]
    ZeroPoints { index: u32 },
    #[error("archive{index}: offset {found} where the layout puts it at {expected}")]
    Offset {
        index: u32,
        found: u32,
        expected: u64,
    },
    #[error("archive{index}: secondsPerPoint {step} is not larger than the previous archive's")]
    StepOrder { index: u32, step: u32 },
    #[error("maxRetention {found} differs from the largest archive retention {expected}")]
    MaxRetention { found: u32, expected: u64 },
    #[error("file is {len} bytes but its header describes {expected} bytes")]
    Size { len: u64, expected: u64 },
}

/// Errors of whisper file operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WhisperError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no such whisper file")]
    NotFound { path: PathBuf },
    #[error("corrupt whisper file {path}: {problem}")]
    Corrupt { path: PathBuf, problem: Corruption },
    #[error("File {path} already exists!")]
    AlreadyExists { path: PathBuf },
    #[error(transparent)]
    Retention(#[from] RetentionError),
    #[error("Unrecognized aggregation method: {0}")]
    AggregationMethod(String),
    #[error("Invalid xFilesFactor {0}, not between 0 and 1")]
    XFilesFactor(f64),
    #[error("Timestamp not covered by any archives in this database.")]
    TimestampNotCovered { timestamp: i64 },
    #[error("Invalid time interval: from time '{from}' is after until time '{until}'")]
    InvalidTimeInterval { from: i64, until: i64 },
    #[error("Invalid granularity: {0}")]
    Granularity(u32),
    #[error("{path}: file was opened read-only")]
    ReadOnly { path: PathBuf },
    #[error("archive lists of {a} and {b} differ; resize one of them first")]
    ArchivesDiffer { a: PathBuf, b: PathBuf },
}

impl WhisperError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            WhisperError::NotFound { path }
        } else {
            WhisperError::Io { path, source }
        }
    }
}

/// A storage-schemas.conf or storage-aggregation.conf that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {problem}")]
    Syntax {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("{path}: section [{section}]: {problem}")]
    Section {
        path: PathBuf,
        section: String,
        problem: String,
    },
}

/// A `seriesByTag` expression that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TagError {
    #[error("no tag expressions specified")]
    NoExpressions,
    /// graphite-web's wording; the forms are tag=value, tag!=value, tag=~regex, tag!=~regex.
    #[error("Invalid tagspec {expression}")]
    Expression { expression: String },
    #[error("Invalid regex in tagspec {expression}: {reason}")]
    Regex { expression: String, reason: String },
    #[error("At least one tagspec must not match the empty string")]
    MatchesEverything,
}

/// Errors of the store as a database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("invalid metric name {name:?}: {source}")]
    Name {
        name: String,
        #[source]
        source: crate::name::NameError,
    },
    #[error("the write cache is full ({max_points} points)")]
    CacheFull { max_points: usize },
    #[error(transparent)]
    Whisper(#[from] WhisperError),
    #[error(transparent)]
    Tag(#[from] TagError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
