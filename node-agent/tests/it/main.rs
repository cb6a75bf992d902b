//! Integration tests of charcoal-node-agent (one binary, modules per area).
//! Interop tests against Debian's munin run only with CHARCOAL_INTEROP=1.

mod interop;
mod plugins;
mod protocol;
mod sending;
mod util;
