//! Integration tests of charcoal-statsd over real sockets, plus the interop suites
//! (CHARCOAL_INTEROP=1) against Etsy StatsD and real client libraries.

mod common;
mod etsy_config;
mod interop;
mod server;
