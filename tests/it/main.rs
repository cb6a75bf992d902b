//! End-to-end tests of the `charcoal` binary (one test binary, modules per area).

mod carbon_cmd;
mod carbon_interop;
mod cluster;
mod contrib;
mod deb;
mod parts;
mod pickle_interop;
mod reload;
mod serve;
mod support;
mod upgrade;
mod whisper_tools;
