//! Integration tests of charcoal-store (one test binary, modules per area).

mod support;
mod whisper_interop;
