//! Integration tests of charcoal-web: the HTTP API driven in memory and on real sockets, the
//! events API, the whisper-tree source, the Grafana replay, and (with CHARCOAL_INTEROP=1) the
//! differential suite against graphite-web 1.1.10.

mod api;
mod browser;
mod cluster;
mod events;
mod grafana;
mod graph;
mod interop;
mod server;
mod ui;
mod util;
mod whisper;
