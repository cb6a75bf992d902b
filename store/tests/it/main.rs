//! Integration tests of charcoal-store (one test binary, modules per area).

mod carbon;
mod db;
mod support;
mod whisper_interop;
