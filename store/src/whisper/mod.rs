//! The whisper file format, byte-compatible with Graphite's whisper 1.1.

mod file;
mod header;
mod tools;

pub use file::{CreateOptions, Series, UpdateOutcome, Whisper};
pub(crate) use file::{empty_series, plan_fetch};
pub(crate) use header::file_size;
pub use header::{ArchiveInfo, Header};
pub use tools::{DiffArchive, ResizeOptions, diff, fill, merge, resize};

#[cfg(test)]
mod tests;
