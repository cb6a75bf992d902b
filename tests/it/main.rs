//! End-to-end tests of the `charcoal` binary (one test binary, modules per area).

mod carbon_cmd;
mod serve;
mod support;
mod whisper_tools;
