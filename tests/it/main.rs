//! End-to-end tests of the `charcoal` binary (one test binary, modules per area).

mod carbon_cmd;
mod parts;
mod reload;
mod serve;
mod support;
mod upgrade;
mod whisper_tools;
