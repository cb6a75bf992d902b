//! charcoal-web: the Graphite render API, metric finder and tag API that Grafana's stock
//! "Graphite" data source talks to (spec `render-api.md`).
//!
//! The binary builds an [`AppState`] from a [`MetricSource`] and a [`Config`], then either
//! mounts [`app`] in its own server or calls [`serve`] with a bound listener and a cancellation
//! token. `charcoal_store::Store` implements [`MetricSource`] (find through its index, fetch
//! through its write cache, `seriesByTag` through its tag index); [`MemorySource`] is an
//! in-memory source for tests and benchmarks. With `cluster_servers` configured,
//! [`source_for`] wraps the local source in a [`ClusterSource`] that also reads the peers'
//! HTTP APIs, like graphite-web's `CLUSTER_SERVERS`.
//!
//! ```
//! use std::sync::Arc;
//! use charcoal_web::{AppState, Config, MemorySource, app};
//!
//! let source = Arc::new(MemorySource::new());
//! source.insert("servers.web1.cpu", 60, [(1_700_000_040, 1.0), (1_700_000_100, 2.0)]);
//! let state = AppState::new(source, Config::default()).expect("valid config");
//! let _router = app(state);
//! ```
//!
//! Inside: a pure target parser (`parse`), Graphite time specifications (`attime`), the series
//! model and numeric rules (`series`), evaluation (`eval`), the function catalogue
//! (`functions`, one self-describing entry per function, also feeding `/functions`), output
//! formats (`render`), PNG/SVG graphs (`graph`), the HTTP layer (`http`), and the browser UI
//! with its dashboards (`ui`, `dashboards`; served at `/`, dashboards stored as JSON files in
//! [`Config::dashboards_dir`]), and Graphite events for annotations (`events`; kept in the
//! JSON-lines file [`Config::events_file`]).

mod attime;
mod cluster;
mod config;
mod dashboards;
mod error;
mod eval;
mod events;
mod functions;
mod graph;
mod http;
mod parse;
mod pyfmt;
mod render;
mod series;
mod source;
mod store_source;
mod ui;

pub use attime::parse_time;
pub use cluster::{ClusterError, ClusterSource, ClusterStats, source_for};
pub use config::{Config, ConfigError};
pub use dashboards::DashboardError;
pub use error::{ApiError, EvalError, EventError, GraphError, ParseError, SourceError, TimeError};
pub use graph::GraphRenderer;
pub use http::{AppState, GRAPHITE_VERSION, WebServer, app, serve, serve_router};
pub use parse::check_target;
pub use pyfmt::{python_percent_f, python_percent_g, python_repr};
pub use source::{FetchIter, FetchedSeries, FindMatch, MemorySource, MetricSource, Selector};
