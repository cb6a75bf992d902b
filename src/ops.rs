//! Charcoal watching itself: counters from every part, stored under `charcoal.<host>.*` in
//! our own store every interval and served in Prometheus text format at `/metrics`, plus the
//! `/health` (alive) and `/ready` (listening, store open, not stopping) endpoints.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use charcoal_statsd::Stats as StatsdStats;
use charcoal_store::{ReceiverStats, Store};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// `[ops]`: self-monitoring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpsConfig {
    /// How often our own metrics are stored under `prefix`; 0s disables storing them (they
    /// stay available at /metrics).
    #[serde(with = "charcoal_store::duration_text")]
    pub self_metrics_interval: Duration,
    /// Prefix of our own metrics; empty means `charcoal.<hostname>` (dots in the host name
    /// become `_`).
    pub self_metrics_prefix: String,
    /// Unix socket where a new Charcoal takes over this one's listening sockets for an
    /// upgrade without loss; empty means `.charcoal.sock` in the data directory, `off`
    /// disables it.
    pub handoff_socket: String,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            self_metrics_interval: Duration::from_secs(10),
            self_metrics_prefix: String::new(),
            handoff_socket: String::new(),
        }
    }
}

/// Whether a counter only grows (Prometheus `counter`) or moves both ways (`gauge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// Render requests seen by the web API and the time spent on them.
#[derive(Debug, Default)]
pub struct WebStats {
    requests: AtomicU64,
    render_requests: AtomicU64,
    render_micros: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
}

/// The parts whose counters are observed (those that run).
#[derive(Default)]
pub struct Observed {
    pub statsd: Option<Arc<StatsdStats>>,
    pub store: Option<Store>,
    pub carbon: Option<Arc<ReceiverStats>>,
    pub agent: Option<charcoal_node_agent::StatsReader>,
    pub web: Arc<WebStats>,
    /// Cleared when shutdown begins: /ready then answers 503.
    pub ready: Arc<AtomicBool>,
    started: Option<Instant>,
}

impl Observed {
    pub fn new() -> Observed {
        Observed {
            started: Some(Instant::now()),
            ready: Arc::new(AtomicBool::new(false)),
            ..Observed::default()
        }
    }

    /// Every counter, named `part.counter` (dots become `_` for Prometheus).
    fn samples(&self) -> Vec<(&'static str, Kind, f64)> {
        use Kind::{Counter, Gauge};
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        let mut out = Vec::with_capacity(48);
        if let Some(s) = &self.statsd {
            out.extend([
                ("statsd.packets", Counter, g(&s.packets)),
                ("statsd.lines", Counter, g(&s.lines)),
                ("statsd.bad_lines", Counter, g(&s.bad_lines)),
                ("statsd.names_dropped", Counter, g(&s.names_dropped)),
                ("statsd.flushes", Counter, g(&s.flushes)),
                ("statsd.points_flushed", Counter, g(&s.points_flushed)),
                ("statsd.sink_errors", Counter, g(&s.sink_errors)),
                ("statsd.receive_errors", Counter, g(&s.receive_errors)),
            ]);
        }
        if let Some(c) = &self.carbon {
            out.extend([
                ("carbon.metrics_received", Counter, g(&c.metrics_received)),
                ("carbon.bad_lines", Counter, g(&c.bad_lines)),
                ("carbon.invalid_names", Counter, g(&c.invalid_names)),
                ("carbon.nan_values", Counter, g(&c.nan_values)),
                ("carbon.pickles_refused", Counter, g(&c.pickles_refused)),
                ("carbon.udp_dropped", Counter, g(&c.udp_dropped)),
                ("carbon.connections", Counter, g(&c.connections)),
                ("carbon.active_connections", Gauge, g(&c.active_connections)),
            ]);
        }
        if let Some(store) = &self.store {
            let s = store.stats();
            out.extend([
                ("store.points_accepted", Counter, s.accepted as f64),
                ("store.points_committed", Counter, s.committed_points as f64),
                (
                    "store.update_operations",
                    Counter,
                    s.update_operations as f64,
                ),
                ("store.update_seconds", Counter, s.update_nanos as f64 / 1e9),
                ("store.creates", Counter, s.creates as f64),
                ("store.dropped_too_old", Counter, s.dropped_old as f64),
                ("store.invalid_names", Counter, s.invalid_names as f64),
                ("store.cache_full", Counter, s.cache_full as f64),
                ("store.errors", Counter, s.errors as f64),
                ("store.cache_size", Gauge, s.cache_size as f64),
                ("store.cache_queues", Gauge, s.cache_queues as f64),
                ("store.metrics", Gauge, s.metrics as f64),
            ]);
        }
        if let Some(agent) = &self.agent {
            let a = agent.snapshot();
            out.extend([
                ("agent.rounds", Counter, a.rounds as f64),
                ("agent.lines_sent", Counter, a.lines_sent as f64),
                ("agent.lines_dropped", Counter, a.lines_dropped as f64),
                ("agent.send_errors", Counter, a.send_errors as f64),
                ("agent.source_errors", Counter, a.source_errors as f64),
                ("agent.plugin_runs", Counter, a.plugin_runs as f64),
                ("agent.plugin_timeouts", Counter, a.plugin_timeouts as f64),
                ("agent.plugin_failures", Counter, a.plugin_failures as f64),
                ("agent.munin_sessions", Counter, a.munin_sessions as f64),
            ]);
        }
        let w = &self.web;
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        out.extend([
            ("web.requests", Counter, g(&w.requests)),
            ("web.render_requests", Counter, g(&w.render_requests)),
            ("web.render_seconds", Counter, g(&w.render_micros) / 1e6),
            ("web.client_errors", Counter, g(&w.client_errors)),
            ("web.server_errors", Counter, g(&w.server_errors)),
        ]);
        let uptime = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        out.push(("process.uptime_seconds", Gauge, uptime));
        out
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn prometheus(&self) -> String {
        use std::fmt::Write;
        let mut text = String::with_capacity(4096);
        for (name, kind, value) in self.samples() {
            let metric = format!(
                "charcoal_{}{}",
                name.replace('.', "_"),
                if kind == Kind::Counter { "_total" } else { "" }
            );
            let kind = if kind == Kind::Counter {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(text, "# TYPE {metric} {kind}\n{metric} {value}");
        }
        text
    }
}

/// The host name as metric names use it (dots become `_`).
pub fn host_node() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
        .replace('.', "_")
}

/// Stores the counters under `prefix` every `interval` until `token` fires.
pub async fn store_self_metrics(
    observed: Arc<Observed>,
    store: Store,
    prefix: String,
    interval: Duration,
    token: CancellationToken,
) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        for (name, _, value) in observed.samples() {
            // A full cache skips our own points rather than waiting for room.
            let _ = store.write(&format!("{prefix}.{name}"), value, now);
        }
    }
}

/// `/health`, `/ready` and `/metrics`, plus a layer counting every request of `app`.
///
/// `/metrics` is also graphite-web's alias of `/metrics/find`, which always carries a
/// `query` parameter: without one, it answers with our Prometheus text instead of a 400.
pub fn with_ops_routes(app: Router, observed: Arc<Observed>) -> Router {
    let ops = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .with_state(Arc::clone(&observed));
    app.merge(ops).layer(axum::middleware::from_fn_with_state(
        observed,
        count_requests,
    ))
}

async fn ready(State(observed): State<Arc<Observed>>) -> Response {
    if observed.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

fn prometheus_response(observed: &Observed) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        observed.prometheus(),
    )
        .into_response()
}

/// A Prometheus scrape rather than a Graphite find: `/metrics` with no `query` parameter.
fn is_scrape(request: &Request) -> bool {
    request.uri().path() == "/metrics"
        && !request
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .any(|pair| pair == "query" || pair.starts_with("query="))
}

async fn count_requests(
    State(observed): State<Arc<Observed>>,
    request: Request,
    next: Next,
) -> Response {
    if is_scrape(&request) && request.method() == axum::http::Method::GET {
        return prometheus_response(&observed);
    }
    let render = request.uri().path().starts_with("/render");
    let started = Instant::now();
    let response = next.run(request).await;
    let w = &observed.web;
    w.requests.fetch_add(1, Ordering::Relaxed);
    if render {
        w.render_requests.fetch_add(1, Ordering::Relaxed);
        w.render_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
    if response.status().is_client_error() {
        w.client_errors.fetch_add(1, Ordering::Relaxed);
    } else if response.status().is_server_error() {
        w.server_errors.fetch_add(1, Ordering::Relaxed);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_and_types() {
        let observed = Observed::new();
        observed.web.render_requests.store(3, Ordering::Relaxed);
        let text = observed.prometheus();
        assert!(text.contains("# TYPE charcoal_web_render_requests_total counter\ncharcoal_web_render_requests_total 3\n"), "{text}");
        assert!(text.contains("# TYPE charcoal_process_uptime_seconds gauge\n"));
        // Parts that do not run are absent.
        assert!(!text.contains("charcoal_statsd_"));
    }
}
