//! HTTP layer: the router ([`app`]), request parameters (query string and form body merged like
//! Django's QueryDict), the handlers of every endpoint, CORS, and [`serve`] with draining.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::tz::TimeZone;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::attime::{parse_at_time, zone_or};
use crate::config::{Config, ConfigError};
use crate::error::{ApiError, EvalError, EventError};
use crate::eval::{Ctx, EvalLimits};
use crate::events::{self, EventStore, TagSet};
use crate::functions;
use crate::graph::{self, ImageFormat};
use crate::parse::parse_target;
use crate::render::{self, JsonOptions};
use crate::series::{format_tagged, tags_from_name};
use charcoal_store::TagExpression;

use crate::source::{FindMatch, MetricSource, tags_match};

/// The graphite-web API level Charcoal answers at `/version` (spec §15).
pub const GRAPHITE_VERSION: &str = "1.1.10";

/// Largest accepted form body.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Everything the handlers share: the metric source, configuration, clock and events.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    source: Arc<dyn MetricSource>,
    config: Config,
    tz: TimeZone,
    clock: Box<dyn Fn() -> i64 + Send + Sync>,
    /// The events store; `None` when `events_file` is unset (events disabled).
    events: Option<Arc<EventStore>>,
}

impl AppState {
    /// Validates the configuration and builds the state; "now" is the system clock.
    pub fn new(source: Arc<dyn MetricSource>, config: Config) -> Result<Self, ConfigError> {
        Self::with_clock(source, config, || jiff::Timestamp::now().as_second())
    }

    /// Like [`AppState::new`] with an explicit clock returning Unix seconds (tests).
    ///
    /// Both read the events file (`events_file`) here; only an unreadable file is an error
    /// (reported on the `events_file` key), bad lines in it are skipped and logged.
    pub fn with_clock(
        source: Arc<dyn MetricSource>,
        config: Config,
        clock: impl Fn() -> i64 + Send + Sync + 'static,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        // Parse the embedded fonts now rather than in the first graph request; a failure
        // (only possible with a broken build) surfaces on the image requests themselves.
        let _ = graph::init();
        let tz = TimeZone::get(&config.timezone).map_err(|e| ConfigError {
            key: "timezone",
            reason: e.to_string(),
        })?;
        let events = match &config.events_file {
            Some(path) => {
                let (store, _) =
                    EventStore::open(path, config.events_max).map_err(|e| ConfigError {
                        key: "events_file",
                        reason: format!("cannot read {}: {e}", path.display()),
                    })?;
                Some(Arc::new(store))
            }
            None => None,
        };
        Ok(AppState {
            inner: Arc::new(Inner {
                source,
                config,
                tz,
                clock: Box::new(clock),
                events,
            }),
        })
    }

    fn now(&self) -> i64 {
        (self.inner.clock)()
    }

    /// The configuration (for the UI and dashboard handlers).
    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }
}

/// The API router; serving is separate ([`serve`]).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/render", get(render_handler).post(render_handler))
        .route("/render/", get(render_handler).post(render_handler))
        .route("/metrics", get(find_handler).post(find_handler))
        .route("/metrics/find", get(find_handler).post(find_handler))
        .route("/metrics/find/", get(find_handler).post(find_handler))
        .route("/metrics/expand", get(expand_handler).post(expand_handler))
        .route(
            "/metrics/index.json",
            get(index_handler).post(index_handler),
        )
        .route("/functions", get(functions_handler))
        .route("/functions/", get(functions_handler))
        .route("/functions/{name}", get(function_handler))
        .route("/version", get(version_handler))
        .route("/version/", get(version_handler))
        .route("/tags", get(tags_list_handler))
        .route("/tags/", get(tags_list_handler))
        .route(
            "/tags/findSeries",
            get(find_series_handler).post(find_series_handler),
        )
        .route(
            "/tags/autoComplete/tags",
            get(autocomplete_tags_handler).post(autocomplete_tags_handler),
        )
        .route(
            "/tags/autoComplete/values",
            get(autocomplete_values_handler).post(autocomplete_values_handler),
        )
        .route("/tags/tagSeries", post(tag_series_handler))
        .route("/tags/tagMultiSeries", post(tag_multi_series_handler))
        .route("/tags/delSeries", post(del_series_handler))
        .route("/tags/{tag}", get(tag_handler))
        .route(
            "/events/get_data",
            get(events_get_handler).post(events_get_handler),
        )
        .route("/events", post(events_post_handler))
        .route("/events/", post(events_post_handler))
        .merge(crate::ui::routes())
        .layer(middleware::from_fn_with_state(state.clone(), cors))
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(state)
}

/// A running API server.
#[derive(Debug)]
pub struct WebServer {
    local_addr: SocketAddr,
    token: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    grace: Duration,
}

impl WebServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, waits up to the configured grace period for in-flight requests, and
    /// returns the server's I/O result.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.token.cancel();
        self.join().await
    }

    /// Waits until the server stops (after its cancellation token fires).
    pub async fn join(self) -> std::io::Result<()> {
        let WebServer {
            mut task,
            grace,
            token,
            ..
        } = self;
        if !token.is_cancelled() {
            token.cancelled().await;
        }
        match tokio::time::timeout(grace, &mut task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(std::io::Error::other(e)),
            Err(_) => {
                tracing::warn!(
                    grace_ms = grace.as_millis() as u64,
                    "web shutdown grace period elapsed; dropping requests"
                );
                task.abort();
                Ok(())
            }
        }
    }
}

/// Serves the API on an already bound listener until `shutdown` fires, then drains.
pub fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<WebServer> {
    let grace = state.inner.config.shutdown_grace;
    serve_router(listener, app(state), grace, shutdown)
}

/// Like [`serve`] for a router the caller composed (e.g. [`app`] merged with operational
/// endpoints), draining for at most `grace` after `shutdown` fires.
pub fn serve_router(
    listener: TcpListener,
    router: axum::Router,
    grace: Duration,
    shutdown: CancellationToken,
) -> std::io::Result<WebServer> {
    let local_addr = listener.local_addr()?;
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    });
    tracing::info!(%local_addr, "web API listening");
    Ok(WebServer {
        local_addr,
        token,
        task,
        grace,
    })
}

// ---------------------------------------------------------------- parameters

/// Query string and form body merged; repeated keys keep every value (Django's QueryDict:
/// `get` returns the last value, `get_all` all of them).
#[derive(Debug, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    #[cfg(test)]
    fn parse(query: Option<&str>, body: &[u8]) -> Self {
        Self::parse_with(query, body, None)
    }

    /// Like [`Params::parse`], reading the body as `multipart/form-data` with `boundary` when
    /// one is given (else as a URL-encoded form).
    fn parse_with(query: Option<&str>, body: &[u8], boundary: Option<&str>) -> Self {
        let mut pairs: Vec<(String, String)> = query
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        match boundary {
            Some(b) => pairs.extend(multipart_fields(body, b)),
            None => pairs.extend(form_urlencoded::parse(body).into_owned()),
        }
        Params { pairs }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn get_all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// `expr=a&expr=b` or `expr[]=a`.
    fn list(&self, key: &str) -> Vec<String> {
        let mut v: Vec<String> = self.get_all(key).into_iter().map(str::to_owned).collect();
        v.extend(
            self.get_all(&format!("{key}[]"))
                .into_iter()
                .map(str::to_owned),
        );
        v
    }
}

/// The `boundary` of a `multipart/form-data` Content-Type, unquoted.
fn multipart_boundary(headers: &HeaderMap) -> Option<String> {
    let ctype = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let (mime, params) = ctype.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

/// The text fields of a `multipart/form-data` body (RFC 7578), in order. graphite-web 1.1's
/// cluster client sends its find and render fields this way with `REMOTE_STORE_USE_POST =
/// True` (urllib3's `request` encodes a POST's `fields` as multipart), and Django reads them
/// into `request.POST`, so Charcoal does too. Parts without a `name` are skipped; a malformed
/// body yields the fields read before the damage.
fn multipart_fields(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let mut out = Vec::new();
    let Some(first) = find(body, delimiter) else {
        return out;
    };
    let mut rest = &body[first + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            break; // the close delimiter
        }
        let Some(part_start) = find(rest, b"\r\n").map(|i| i + 2) else {
            break;
        };
        rest = &rest[part_start..];
        let Some(end) = find(rest, delimiter) else {
            break;
        };
        let part = &rest[..end];
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        if let Some(split) = find(part, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&part[..split]);
            let value = &part[split + 4..];
            let name = head.split("\r\n").find_map(|line| {
                let (k, v) = line.split_once(':')?;
                if !k.trim().eq_ignore_ascii_case("content-disposition") {
                    return None;
                }
                v.split(';').find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    (k.trim() == "name").then(|| v.trim().trim_matches('"').to_owned())
                })
            });
            if let Some(name) = name {
                out.push((name, String::from_utf8_lossy(value).into_owned()));
            }
        }
        rest = &rest[end + delimiter.len()..];
    }
    out
}

async fn read_params(req: Request) -> Result<Params, ApiError> {
    let query = req.uri().query().map(str::to_owned);
    let boundary = multipart_boundary(req.headers());
    // Grafana always sends URL-encoded form bodies; a POST body is read as one unless it is
    // declared multipart/form-data (graphite-web cluster clients with REMOTE_STORE_USE_POST),
    // as Django fills `request.POST` from either.
    let body: Bytes = if req.method() == Method::POST {
        axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|e| ApiError::param(format!("could not read request body: {e}")))?
    } else {
        Bytes::new()
    };
    Ok(Params::parse_with(
        query.as_deref(),
        &body,
        boundary.as_deref(),
    ))
}

fn time_bounds(state: &AppState, p: &Params, tz: &TimeZone) -> Result<(i64, i64, i64), ApiError> {
    let clock = state.now();
    let now = match p.get("now") {
        Some(n) => parse_at_time(n, tz, clock)?,
        None => clock,
    };
    let until = match p.get("until") {
        Some(u) => parse_at_time(u, tz, now)?,
        None => now,
    };
    let from = match p.get("from") {
        Some(f) => parse_at_time(f, tz, now)?,
        None => parse_at_time("-1d", tz, now)?,
    };
    let (start, end) = (from.min(until), from.max(until));
    if start == end {
        return Err(ApiError::EmptyRange);
    }
    Ok((start, end, now))
}

fn with_jsonp(body: String, jsonp: Option<&str>, content_type: &'static str) -> Response {
    match jsonp {
        Some(cb) => (
            [(header::CONTENT_TYPE, "text/javascript")],
            format!("{cb}({body})"),
        )
            .into_response(),
        None => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
    }
}

fn no_cache(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

fn json_text<T: serde::Serialize>(value: &T, pretty: bool) -> String {
    let r = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    r.unwrap_or_else(|_| "null".to_owned())
}

// ---------------------------------------------------------------- /render

/// The type graphite-web writes for msgpack and the only one its cluster client decodes as
/// msgpack (`RemoteFinder.deserialize` compares the header for equality).
const MSGPACK_CONTENT_TYPE: &str = "application/x-msgpack";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Raw,
    Dygraph,
    Rickshaw,
    Msgpack,
    Image(ImageFormat),
}

async fn render_handler(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let started = Instant::now();
    let grafana_panel = req
        .headers()
        .get("x-panel-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let p = read_params(req).await?;
    let config = &state.inner.config;

    let targets: Vec<String> = {
        let t = p.get_all("target");
        let t = if t.is_empty() {
            p.get_all("target[]")
        } else {
            t
        };
        t.into_iter()
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
            .collect()
    };
    let format_param = if p.has("format") {
        p.get("format").map(str::to_owned)
    } else if p.has("rawData") {
        Some("raw".to_owned())
    } else if p.has("pickle") {
        Some("pickle".to_owned())
    } else {
        None
    };
    let jsonp = if p.has("format") {
        p.get("jsonp").filter(|s| !s.is_empty())
    } else {
        None
    };
    let format = match format_param.as_deref() {
        Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some("raw") => Format::Raw,
        Some("dygraph") => Format::Dygraph,
        Some("rickshaw") => Format::Rickshaw,
        Some("msgpack") => Format::Msgpack,
        // Pickle is never produced or read (spec §3.6): unpickling is code execution, and a
        // graphite-web front end does not need it. graphite-web 1.1's cluster client asks for
        // `format=pickle` unless its CLUSTER_SERVERS entry says otherwise, so a Charcoal node
        // must be listed as `"host:port?format=msgpack"`: `RemoteFinder.parse_host` keeps the
        // entry's query parameters and both `/metrics/find/` and `/render/` requests take
        // `format` (and `local`) from them (graphite/finders/remote.py, readers/remote.py).
        Some(f @ ("pickle" | "pdf")) => {
            return Err(ApiError::Format {
                format: f.to_owned(),
                reason: "not implemented by Charcoal",
            });
        }
        Some("svg") => Format::Image(ImageFormat::Svg),
        // png, and graphite-web's fallback for absent/unknown formats (spec §2).
        _ => Format::Image(ImageFormat::Png),
    };
    // Image parameters are checked before any data is read.
    let graph_options = match format {
        Format::Image(_) => Some(graph::parse_options(|k| p.get(k))?),
        _ => None,
    };
    // graphite-web 1.1.10 knows `line` (the default) and `pie` (render/glyph.py GraphTypes).
    let pie_mode = match p.get("graphType").unwrap_or("line") {
        "line" => None,
        "pie" => {
            if !matches!(format, Format::Image(_)) {
                // graphite-web fails with a Python error (500) here.
                return Err(ApiError::param(
                    "Invalid graphType 'pie' for this format: pie charts are images (format=png or svg)",
                ));
            }
            let mode = p.get("pieMode").unwrap_or("average");
            Some(graph::PieMode::parse(mode).ok_or_else(|| {
                ApiError::param(format!(
                    "Invalid pieMode '{mode}', must be one of ['average', 'maximum', 'minimum']"
                ))
            })?)
        }
        other => {
            return Err(ApiError::param(format!(
                "Invalid graphType '{other}', must be one of ['line', 'pie']"
            )));
        }
    };
    let tz = zone_or(p.get("tz"), &state.inner.tz);
    let (start, end, now) = time_bounds(&state, &p, &tz)?;
    let max_data_points = p
        .get("maxDataPoints")
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<usize>().ok());
    let xff = match p.get("xFilesFactor") {
        Some(x) => x
            .trim()
            .parse::<f64>()
            .map_err(|_| ApiError::param(format!("Invalid xFilesFactor '{x}'")))?,
        None => 0.0,
    };
    let template: BTreeMap<String, String> = p
        .pairs
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("template[")
                .and_then(|r| r.strip_suffix(']'))
                .map(|n| (n.to_owned(), v.clone()))
        })
        .collect();
    let mut exprs = Vec::with_capacity(targets.len());
    // Pie charts take `name:value` targets as literal slices (graphite-web's renderView).
    let mut literals: Vec<Option<(String, f64)>> = vec![None; targets.len()];
    for (i, t) in targets.iter().enumerate() {
        if pie_mode.is_some()
            && let Some((name, value)) = t.split_once(':')
        {
            let value = value
                .trim()
                .parse::<f64>()
                .map_err(|_| ApiError::param(format!("Invalid target '{t}'")))?;
            literals[i] = Some((name.to_owned(), value));
            continue;
        }
        if t.len() > config.max_target_len {
            return Err(ApiError::TargetTooLong {
                index: i + 1,
                len: t.len(),
                limit: config.max_target_len,
            });
        }
        exprs.push(
            parse_target(t, config.max_depth).map_err(|source| ApiError::Syntax {
                index: i + 1,
                source,
            })?,
        );
    }

    let timeout = config.max_eval_time;
    let limits = EvalLimits {
        max_series: config.max_series,
        max_points: config.max_points,
        deadline: Some(started + timeout),
        timeout_ms: timeout.as_millis() as u64,
    };
    let source = request_source(&state, &p);
    let events = state.inner.events.clone();
    let eval_tz = tz.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut ctx = Ctx::new(source.as_ref(), start, end, now, eval_tz, limits);
        ctx.events = events.as_deref();
        ctx.xff = xff;
        ctx.template = template;
        // One list per target, so pie slices keep the request order around literals.
        exprs
            .iter()
            .map(|e| ctx.evaluate_targets(std::slice::from_ref(e)))
            .collect::<Result<Vec<_>, _>>()
    });
    let per_target = match tokio::time::timeout(timeout + Duration::from_secs(1), task).await {
        Err(_) => {
            return Err(EvalError::Timeout {
                limit_ms: limits.timeout_ms,
            }
            .into());
        }
        Ok(Err(e)) => {
            return Err(ApiError::Internal {
                message: format!("evaluation task failed: {e}"),
            });
        }
        Ok(Ok(Err(e))) => {
            tracing::debug!(error = %e, panel = grafana_panel.as_deref(), targets = ?targets, "invalid render request");
            return Err(e.into());
        }
        Ok(Ok(Ok(s))) => s,
    };
    let pie = pie_mode.map(|mode| {
        let mut lists = per_target.iter();
        let mut slices = Vec::new();
        for literal in &literals {
            match literal {
                Some(slice) => slices.push(slice.clone()),
                None => slices.extend(
                    lists
                        .next()
                        .into_iter()
                        .flatten()
                        .map(|s| (s.name.clone(), graph::pie_value(&s.values, mode))),
                ),
            }
        }
        slices
    });
    let series: Vec<_> = per_target.into_iter().flatten().collect();
    let response = match format {
        Format::Json => {
            let opts = JsonOptions {
                max_data_points,
                no_null_points: p.has("noNullPoints"),
                pretty: p.get("pretty").is_some_and(|v| !v.is_empty()),
                // Charcoal's own extension for its browser chart (render::JsonOptions).
                styles: p.get("styles").is_some_and(|v| matches!(v, "1" | "true")),
            };
            with_jsonp(render::json(series, opts), jsonp, "application/json")
        }
        Format::Csv => (
            [(header::CONTENT_TYPE, "text/csv")],
            render::csv(&series, &tz),
        )
            .into_response(),
        Format::Raw => {
            ([(header::CONTENT_TYPE, "text/plain")], render::raw(&series)).into_response()
        }
        Format::Dygraph => with_jsonp(render::dygraph(&series), jsonp, "application/json"),
        Format::Rickshaw => {
            let pretty = p.get("pretty").is_some_and(|v| !v.is_empty());
            with_jsonp(render::rickshaw(&series, pretty), jsonp, "application/json")
        }
        // graphite-web's RemoteFinder decodes msgpack only when the Content-Type is exactly
        // this (anything else is unpickled), so no charset parameter.
        Format::Msgpack => (
            [(header::CONTENT_TYPE, MSGPACK_CONTENT_TYPE)],
            render::msgpack(&series),
        )
            .into_response(),
        Format::Image(kind) => {
            let options = graph_options.unwrap_or_default();
            let tz = tz.clone();
            let chart = match pie {
                Some(slices) => graph::Chart::Pie(slices),
                None => graph::Chart::Line(series),
            };
            let image = run_blocking(move || {
                graph::render(chart, &options, &tz, kind).map_err(ApiError::from)
            })
            .await?;
            match (kind, jsonp) {
                (ImageFormat::Png, _) => {
                    ([(header::CONTENT_TYPE, "image/png")], image).into_response()
                }
                (ImageFormat::Svg, Some(cb)) => {
                    let text = String::from_utf8_lossy(&image);
                    with_jsonp(json_text(&text, false), Some(cb), "image/svg+xml")
                }
                (ImageFormat::Svg, None) => {
                    ([(header::CONTENT_TYPE, "image/svg+xml")], image).into_response()
                }
            }
        }
    };
    tracing::debug!(
        elapsed_us = started.elapsed().as_micros() as u64,
        targets = targets.len(),
        "render"
    );
    Ok(no_cache(response))
}

// ---------------------------------------------------------------- /metrics

fn find_window(state: &AppState, p: &Params) -> Result<(), ApiError> {
    // from/until only filter by data presence in graphite-web's finders; the whisper finder
    // ignores them, so they are validated and otherwise unused.
    let tz = zone_or(p.get("tz"), &state.inner.tz);
    let now = match p.get("now") {
        Some(n) => parse_at_time(n, &tz, state.now())?,
        None => state.now(),
    };
    for key in ["from", "until"] {
        if let Some(v) = p.get(key).filter(|v| *v != "-1") {
            parse_at_time(v, &tz, now)?;
        }
    }
    Ok(())
}

fn int_param(p: &Params, key: &str, default: i64) -> Result<i64, ApiError> {
    match p.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ApiError::param(format!("Invalid int value '{v}' for param {key}"))),
    }
}

/// Graphite's node name unquoting (`unquote_plus`).
pub(crate) fn unquote_plus(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The source a request reads: with `local=1` (what cluster peers send, graphite-web's
/// `localOnly`) only this node's own data, so fan-out never recurses.
fn request_source(state: &AppState, p: &Params) -> Arc<dyn MetricSource> {
    let source = &state.inner.source;
    match p.get("local") {
        Some("1") => source.local_source().unwrap_or_else(|| Arc::clone(source)),
        _ => Arc::clone(source),
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal {
            message: format!("task failed: {e}"),
        })?
}

async fn find_handler(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let p = read_params(req).await?;
    let format = p.get("format").unwrap_or("treejson").to_owned();
    let leaves_only = int_param(&p, "leavesOnly", 0)? != 0;
    let wildcards = int_param(&p, "wildcards", 0)? != 0;
    let position = int_param(&p, "position", -1)?;
    let automatic_variants = int_param(&p, "automatic_variants", 0)? != 0;
    find_window(&state, &p)?;
    let Some(query) = p.get("query").map(str::to_owned) else {
        return Err(ApiError::param("Missing required parameter 'query'"));
    };
    if query.is_empty() {
        return Err(ApiError::param("Required parameter 'query' is empty"));
    }
    if format == "pickle" {
        // Never pickle (spec §3.6); graphite-web peers ask for msgpack when their
        // CLUSTER_SERVERS entry carries `?format=msgpack` (see render_handler).
        return Err(ApiError::Format {
            format,
            reason: "not implemented by Charcoal; use format=msgpack",
        });
    }
    if !matches!(
        format.as_str(),
        "treejson" | "completer" | "nodelist" | "json" | "msgpack"
    ) {
        let mut r = (
            StatusCode::BAD_REQUEST,
            "Invalid value for 'format' parameter",
        )
            .into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        return Ok(r);
    }
    let base_path = match query.rfind('.') {
        Some(i) => query[..=i].to_owned(),
        None => String::new(),
    };
    let mut pattern = query.clone();
    if format == "completer" {
        pattern = pattern.replace("..", "*.");
        if !pattern.ends_with('*') {
            pattern.push('*');
        }
        if automatic_variants {
            pattern = pattern
                .split('.')
                .map(|part| {
                    if part.contains(',') && !part.contains('{') {
                        format!("{{{part}}}")
                    } else {
                        part.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join(".");
        }
    }
    let limit = state.inner.config.max_find_results;
    let source = request_source(&state, &p);
    let pat = pattern.clone();
    let mut matches = run_blocking(move || {
        source
            .find(&pat)
            .map_err(|e| ApiError::from(EvalError::from(e)))
    })
    .await?;
    if leaves_only {
        matches.retain(|m| m.is_leaf);
    }
    if matches.len() > limit {
        return Err(ApiError::TooManyResults {
            pattern,
            count: matches.len(),
            limit,
        });
    }
    let node_name = |path: &str| path.rsplit('.').next().unwrap_or(path).to_owned();
    matches.sort_by(|a, b| {
        node_name(&a.path)
            .cmp(&node_name(&b.path))
            .then(a.path.cmp(&b.path))
    });
    let pretty = p.get("pretty").is_some_and(|v| !v.is_empty());
    let body = match format.as_str() {
        "treejson" => {
            let mut out = Vec::new();
            if matches.len() > 1 && wildcards {
                let all_leaves = matches.iter().all(|m| m.is_leaf);
                out.push(tree_node("*", &format!("{base_path}*"), all_leaves));
            }
            let mut seen = std::collections::HashSet::new();
            let (mut branches, mut leaves) = (Vec::new(), Vec::new());
            for m in &matches {
                let name = node_name(&m.path);
                if !seen.insert(name.clone()) {
                    continue;
                }
                let node = tree_node(
                    &unquote_plus(&name),
                    &format!("{base_path}{name}"),
                    m.is_leaf,
                );
                if m.is_leaf {
                    leaves.push(node)
                } else {
                    branches.push(node)
                }
            }
            out.extend(branches);
            out.extend(leaves);
            json_text(&out, pretty)
        }
        "completer" => {
            let mut out: Vec<serde_json::Value> = matches
                .iter()
                .map(|m| {
                    let path = if m.is_leaf { m.path.clone() } else { format!("{}.", m.path) };
                    json!({"path": path, "name": node_name(&m.path), "is_leaf": if m.is_leaf { "1" } else { "0" }})
                })
                .collect();
            if out.len() > 1 && wildcards {
                out.push(json!({"name": "*"}));
            }
            json_text(&json!({ "metrics": out }), pretty)
        }
        "msgpack" => {
            // graphite-web's `msgpack_nodes`, what its `RemoteFinder.find_nodes` decodes: a list
            // of `{path, is_leaf}` maps in name order, no jsonp. Leaves carry no `intervals`
            // (Charcoal does not track data intervals); the finder then reads `[]`, which
            // graphite-web consults only to choose among several nodes holding the same path,
            // and not at all with its default REMOTE_STORE_MERGE_RESULTS=True (storage.py
            // `_merge_leaf_nodes`).
            let body = find_msgpack(&matches);
            return Ok(no_cache(
                ([(header::CONTENT_TYPE, MSGPACK_CONTENT_TYPE)], body).into_response(),
            ));
        }
        "json" => {
            // graphite-web's `json_nodes` (what cluster peers read): full paths sorted by path.
            // Leaves carry no `intervals`: Charcoal does not track data intervals.
            matches.sort_by(|a, b| a.path.cmp(&b.path));
            let out: Vec<serde_json::Value> = matches
                .iter()
                .map(|m| json!({"path": m.path, "is_leaf": m.is_leaf}))
                .collect();
            json_text(&out, pretty)
        }
        _ => {
            let mut nodes: Vec<String> = matches
                .iter()
                .filter_map(|m| {
                    let parts: Vec<&str> = m.path.split('.').collect();
                    let idx = if position < 0 {
                        parts.len() as i64 + position
                    } else {
                        position
                    };
                    usize::try_from(idx)
                        .ok()
                        .and_then(|i| parts.get(i))
                        .map(|s| (*s).to_owned())
                })
                .collect();
            nodes.sort();
            nodes.dedup();
            json_text(&json!({ "nodes": nodes }), pretty)
        }
    };
    Ok(no_cache(with_jsonp(
        body,
        p.get("jsonp").filter(|s| !s.is_empty()),
        "application/json",
    )))
}

/// `/metrics/find?format=msgpack`: `[{"path": ..., "is_leaf": bool}, ...]`.
fn find_msgpack(matches: &[FindMatch]) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct NodeInfo<'a> {
        path: &'a str,
        is_leaf: bool,
    }
    let nodes: Vec<NodeInfo<'_>> = matches
        .iter()
        .map(|m| NodeInfo {
            path: &m.path,
            is_leaf: m.is_leaf,
        })
        .collect();
    // Serialising strings and booleans into a Vec cannot fail.
    rmp_serde::to_vec_named(&nodes).unwrap_or_default()
}

fn tree_node(text: &str, id: &str, leaf: bool) -> serde_json::Value {
    let flag = u8::from(!leaf);
    json!({"text": text, "id": id, "allowChildren": flag, "expandable": flag, "leaf": u8::from(leaf)})
}

async fn expand_handler(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let p = read_params(req).await?;
    let leaves_only = int_param(&p, "leavesOnly", 0)? != 0;
    let group = int_param(&p, "groupByExpr", 0)? != 0;
    let queries: Vec<String> = p.get_all("query").into_iter().map(str::to_owned).collect();
    let limit = state.inner.config.max_find_results;
    let source = request_source(&state, &p);
    let results = run_blocking(move || {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        let mut total = 0;
        for q in queries {
            let mut paths: Vec<String> = source
                .find(&q)
                .map_err(|e| ApiError::from(EvalError::from(e)))?
                .into_iter()
                .filter(|m| m.is_leaf || !leaves_only)
                .map(|m| m.path)
                .collect();
            paths.sort();
            paths.dedup();
            total += paths.len();
            if total > limit {
                return Err(ApiError::TooManyResults {
                    pattern: q,
                    count: total,
                    limit,
                });
            }
            out.push((q, paths));
        }
        Ok(out)
    })
    .await?;
    let pretty = p.get("pretty").is_some_and(|v| !v.is_empty());
    let body = if group {
        let m: BTreeMap<String, Vec<String>> = results.into_iter().collect();
        json_text(&json!({ "results": m }), pretty)
    } else {
        let mut all: Vec<String> = results.into_iter().flat_map(|(_, v)| v).collect();
        all.sort();
        all.dedup();
        json_text(&json!({ "results": all }), pretty)
    };
    Ok(no_cache(with_jsonp(
        body,
        p.get("jsonp").filter(|s| !s.is_empty()),
        "application/json",
    )))
}

async fn index_handler(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let p = read_params(req).await?;
    let jsonp = p.get("jsonp").filter(|s| !s.is_empty()).map(str::to_owned);
    let source = request_source(&state, &p);
    match run_blocking(move || {
        source
            .leaves()
            .map_err(|e| ApiError::from(EvalError::from(e)))
    })
    .await
    {
        Ok(leaves) => Ok(with_jsonp(
            json_text(&leaves, false),
            jsonp.as_deref(),
            "application/json",
        )),
        Err(e) => {
            tracing::error!(error = %e, "metrics index failed");
            let mut r = with_jsonp("[]".to_owned(), jsonp.as_deref(), "application/json");
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            Ok(r)
        }
    }
}

// ---------------------------------------------------------------- /functions, /version

fn functions_json(text: String) -> String {
    text.replace(
        &format!("\"{}\"", functions::INF_MARKER.replace('\u{0}', "\\u0000")),
        "1e9999",
    )
}

async fn functions_handler(req: Request) -> Result<Response, ApiError> {
    let p = read_params(req).await?;
    let group = p.get("group");
    let grouped = matches!(p.get("grouped"), Some("1" | "true" | "True"));
    let pie = p.get("type") == Some("pie");
    let pretty = p.get("pretty").is_some_and(|v| !v.is_empty());
    let mut flat = serde_json::Map::new();
    let mut nested: BTreeMap<&str, serde_json::Map<String, serde_json::Value>> = BTreeMap::new();
    if !pie {
        for d in functions::all() {
            if group.is_some_and(|g| g != d.group) {
                continue;
            }
            if grouped {
                nested
                    .entry(d.group)
                    .or_default()
                    .insert(d.name.to_owned(), d.to_json());
            } else {
                flat.insert(d.name.to_owned(), d.to_json());
            }
        }
    }
    let body = if grouped {
        json_text(&nested, pretty)
    } else {
        json_text(&flat, pretty)
    };
    Ok(with_jsonp(
        functions_json(body),
        p.get("jsonp").filter(|s| !s.is_empty()),
        "application/json",
    ))
}

async fn function_handler(Path(name): Path<String>, req: Request) -> Result<Response, ApiError> {
    let p = read_params(req).await?;
    let pretty = p.get("pretty").is_some_and(|v| !v.is_empty());
    match functions::lookup(&name) {
        Some(d) => Ok(with_jsonp(
            functions_json(json_text(&d.to_json(), pretty)),
            p.get("jsonp"),
            "application/json",
        )),
        None => Ok((
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("Function not found: {name}")})),
        )
            .into_response()),
    }
}

async fn version_handler() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{GRAPHITE_VERSION}\n"),
    )
        .into_response()
}

// ---------------------------------------------------------------- tags

/// Every tagged series with its parsed tags.
type TaggedList = Vec<(String, BTreeMap<String, String>)>;

fn tagged(source: &dyn MetricSource) -> Result<TaggedList, ApiError> {
    let names = source
        .tagged_series()
        .map_err(|e| ApiError::from(EvalError::from(e)))?;
    Ok(names
        .into_iter()
        .map(|n| {
            let t = tags_from_name(&n);
            (n, t)
        })
        .collect())
}

fn limit_param(p: &Params, default: usize) -> Result<usize, ApiError> {
    match p.get("limit") {
        None | Some("") => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ApiError::param(format!("Invalid int value '{v}' for param limit"))),
    }
}

fn filter_regex(p: &Params) -> Result<Option<regex::Regex>, ApiError> {
    p.get("filter")
        .filter(|f| !f.is_empty())
        .map(|f| {
            regex::Regex::new(&format!("^(?:{f})"))
                .map_err(|e| ApiError::param(format!("Invalid filter regex: {e}")))
        })
        .transpose()
}

fn tag_json_response(p: &Params, value: &serde_json::Value) -> Response {
    let pretty = p.get("pretty").is_some_and(|v| !v.is_empty());
    with_jsonp(
        json_text(value, pretty),
        p.get("jsonp").filter(|s| !s.is_empty()),
        "application/json",
    )
}

async fn tags_list_handler(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let p = read_params(req).await?;
    let filter = filter_regex(&p)?;
    let limit = limit_param(&p, usize::MAX)?;
    let series = run_blocking({
        let source = request_source(&state, &p);
        move || tagged(source.as_ref())
    })
    .await?;
    let mut names: Vec<String> = series.iter().flat_map(|(_, t)| t.keys().cloned()).collect();
    names.sort();
    names.dedup();
    let list: Vec<serde_json::Value> = names
        .into_iter()
        .filter(|n| filter.as_ref().is_none_or(|re| re.is_match(n)))
        .take(limit)
        .enumerate()
        .map(|(i, n)| json!({"id": i + 1, "tag": n}))
        .collect();
    Ok(tag_json_response(&p, &json!(list)))
}

async fn tag_handler(
    State(state): State<AppState>,
    Path(tag): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let p = read_params(req).await?;
    let filter = filter_regex(&p)?;
    let limit = limit_param(&p, usize::MAX)?;
    let series = run_blocking({
        let source = request_source(&state, &p);
        move || tagged(source.as_ref())
    })
    .await?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, t) in &series {
        if let Some(v) = t.get(&tag) {
            *counts.entry(v.clone()).or_default() += 1;
        }
    }
    if counts.is_empty() {
        return Ok(tag_json_response(&p, &serde_json::Value::Null));
    }
    let values: Vec<serde_json::Value> = counts
        .into_iter()
        .filter(|(v, _)| filter.as_ref().is_none_or(|re| re.is_match(v)))
        .take(limit)
        .enumerate()
        .map(|(i, (v, c))| json!({"id": i + 1, "value": v, "count": c}))
        .collect();
    Ok(tag_json_response(
        &p,
        &json!({"id": 1, "tag": tag, "values": values}),
    ))
}

fn matching(series: &TaggedList, exprs: &[TagExpression]) -> Vec<usize> {
    (0..series.len())
        .filter(|&i| tags_match(&series[i].1, exprs))
        .collect()
}

fn parse_tag_expressions(exprs: &[String]) -> Result<Vec<TagExpression>, ApiError> {
    TagExpression::parse_all(exprs).map_err(|e| ApiError::param(e.to_string()))
}

async fn find_series_handler(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let p = read_params(req).await?;
    let exprs = p.list("expr");
    if exprs.is_empty() {
        return Err(ApiError::TagJson {
            message: "no tag expressions specified",
        });
    }
    let parsed = parse_tag_expressions(&exprs)?;
    let series = run_blocking({
        let source = request_source(&state, &p);
        move || tagged(source.as_ref())
    })
    .await?;
    let mut names: Vec<&str> = matching(&series, &parsed)
        .into_iter()
        .map(|i| series[i].0.as_str())
        .collect();
    names.sort_unstable();
    Ok(tag_json_response(&p, &json!(names)))
}

async fn autocomplete_tags_handler(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let p = read_params(req).await?;
    let exprs = p.list("expr");
    let prefix = p.get("tagPrefix").unwrap_or("").to_owned();
    let limit = limit_param(&p, 100)?;
    let series = run_blocking({
        let source = request_source(&state, &p);
        move || tagged(source.as_ref())
    })
    .await?;
    let mut names: Vec<String> = if exprs.is_empty() {
        series.iter().flat_map(|(_, t)| t.keys().cloned()).collect()
    } else {
        let parsed = parse_tag_expressions(&exprs)?;
        let searched: Vec<String> = parsed.iter().map(|e| e.tag().to_owned()).collect();
        matching(&series, &parsed)
            .into_iter()
            .flat_map(|i| series[i].1.keys().cloned())
            .filter(|t| !searched.contains(t))
            .collect()
    };
    names.retain(|t| t.starts_with(&prefix));
    names.sort();
    names.dedup();
    names.truncate(limit);
    Ok(tag_json_response(&p, &json!(names)))
}

async fn autocomplete_values_handler(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let p = read_params(req).await?;
    let Some(tag) = p.get("tag").filter(|t| !t.is_empty()).map(str::to_owned) else {
        return Err(ApiError::TagJson {
            message: "no tag specified",
        });
    };
    let mut exprs = p.list("expr");
    let prefix = p.get("valuePrefix").unwrap_or("").to_owned();
    let limit = limit_param(&p, 100)?;
    let series = run_blocking({
        let source = request_source(&state, &p);
        move || tagged(source.as_ref())
    })
    .await?;
    let chosen: Vec<usize> = if exprs.is_empty() {
        (0..series.len()).collect()
    } else {
        exprs.push(format!("{tag}!="));
        let parsed = parse_tag_expressions(&exprs)?;
        matching(&series, &parsed)
    };
    let mut values: Vec<String> = chosen
        .into_iter()
        .filter_map(|i| series[i].1.get(&tag).cloned())
        .filter(|v| v.starts_with(&prefix))
        .collect();
    values.sort();
    values.dedup();
    values.truncate(limit);
    Ok(tag_json_response(&p, &json!(values)))
}

fn canonical(path: &str) -> Result<String, ApiError> {
    let tags = tags_from_name(path);
    if path.contains(';') && tags.len() < 2 {
        return Err(ApiError::param(format!("Cannot parse path {path}")));
    }
    Ok(format_tagged(&tags))
}

async fn tag_series_handler(req: Request) -> Result<Response, ApiError> {
    let p = read_params(req).await?;
    let Some(path) = p.get("path") else {
        return Err(ApiError::TagJson {
            message: "no path specified",
        });
    };
    // Charcoal's store indexes tagged series itself; registering only canonicalises the name.
    Ok(tag_json_response(&p, &json!(canonical(path)?)))
}

async fn tag_multi_series_handler(req: Request) -> Result<Response, ApiError> {
    let p = read_params(req).await?;
    let names = p
        .list("path")
        .iter()
        .map(|s| canonical(s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(tag_json_response(&p, &json!(names)))
}

async fn del_series_handler(req: Request) -> Result<Response, ApiError> {
    let p = read_params(req).await?;
    Ok(tag_json_response(&p, &json!(true)))
}

// ---------------------------------------------------------------- events

/// `/events/get_data` (spec §17): events with `from <= when <= until` (defaults: the epoch
/// and now; a reversed window is empty, as in graphite-web), filtered by `tags` and `set`.
async fn events_get_handler(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let p = read_params(req).await?;
    let tz = zone_or(p.get("tz"), &state.inner.tz);
    let clock = state.now();
    let now = match p.get("now") {
        Some(n) => parse_at_time(n, &tz, clock)?,
        None => clock,
    };
    let from = match p.get("from") {
        Some(v) => parse_at_time(v, &tz, now)?,
        None => 0,
    };
    let until = match p.get("until") {
        Some(v) => parse_at_time(v, &tz, now)?,
        None => now,
    };
    let tags = p.get("tags").map(events::split_tags);
    let set = TagSet::from_param(p.get("set"));
    let found = match &state.inner.events {
        Some(store) => store.find(from, until, tags.as_deref(), set),
        // Events disabled: an empty list is a valid answer.
        None => Vec::new(),
    };
    let list: Vec<serde_json::Value> = found.iter().map(|e| e.to_api_json()).collect();
    let pretty = p.get("pretty").is_some_and(|v| !v.is_empty());
    Ok(no_cache(with_jsonp(
        json_text(&list, pretty),
        p.get("jsonp").filter(|s| !s.is_empty()),
        "application/json",
    )))
}

/// `POST /events/` with graphite-web's JSON body; 200 with an empty body once the event is
/// in the file.
async fn events_post_handler(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let Some(store) = state.inner.events.clone() else {
        return Err(EventError::Disabled.into());
    };
    let limit = state.inner.config.events_max_body;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(EventError::TooLarge { limit }.into());
    }
    // Past the limit (a chunked body) reading stops with an error; a client that went away
    // gets no answer anyway.
    let body = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| EventError::TooLarge { limit })?;
    let event = events::parse_post(&body, state.now())?;
    let id = run_blocking(move || store.append(event).map_err(ApiError::from)).await?;
    tracing::debug!(id, "event stored");
    Ok(StatusCode::OK.into_response())
}

// ---------------------------------------------------------------- CORS

const ALLOW_HEADERS: &str =
    "Authorization, Content-Type, X-Dashboard-Id, X-Panel-Id, X-Panel-Plugin-Id, X-Grafana-Org-Id";

/// CORS per spec §18.7: preflights answered with 204 on every path; `*` unless the origin is
/// configured explicitly, in which case it is echoed with credentials allowed.
async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let allowed = allow_origin(&state.inner.config.cors_origins, origin.as_ref());
    if req.method() == Method::OPTIONS {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        let h = r.headers_mut();
        set_cors(h, allowed);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        return r;
    }
    let mut r = next.run(req).await;
    set_cors(r.headers_mut(), allowed);
    r
}

enum Allowed {
    None,
    Any,
    Echo(HeaderValue),
}

fn allow_origin(configured: &[String], origin: Option<&HeaderValue>) -> Allowed {
    if let Some(v) = origin.filter(|o| o.to_str().is_ok_and(|o| configured.iter().any(|c| c == o)))
    {
        return Allowed::Echo(v.clone());
    }
    if configured.iter().any(|c| c == "*") {
        Allowed::Any
    } else {
        Allowed::None
    }
}

fn set_cors(h: &mut HeaderMap, allowed: Allowed) {
    match allowed {
        Allowed::None => {}
        Allowed::Any => {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        Allowed::Echo(v) => {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_merge_like_querydict() {
        let p = Params::parse(
            Some("target=a&from=-1h"),
            b"target=b&from=-2h&q=%7Ba%2Cb%7D",
        );
        assert_eq!(p.get_all("target"), vec!["a", "b"]);
        assert_eq!(p.get("from"), Some("-2h"), "last value wins");
        assert_eq!(p.get("q"), Some("{a,b}"));
        let raw = Params::parse(None, b"query=a.{b,c}.*");
        assert_eq!(
            raw.get("query"),
            Some("a.{b,c}.*"),
            "Grafana sends find queries unencoded"
        );
    }

    #[test]
    fn multipart_form_fields_like_urllib3_sends_them() {
        // urllib3's encode_multipart_formdata for graphite-web's RemoteReader fields.
        let body = b"--b0undary\r\n\
Content-Disposition: form-data; name=\"format\"\r\n\r\nmsgpack\r\n\
--b0undary\r\n\
Content-Disposition: form-data; name=\"target\"\r\n\r\nseriesByTag('a=b')\r\n\
--b0undary\r\n\
Content-Disposition: form-data; name=\"target\"\r\n\r\nx.{y,z}\r\n\
--b0undary\r\n\
Content-Disposition: form-data; name=\"empty\"\r\n\r\n\r\n\
--b0undary--\r\n";
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=b0undary"),
        );
        let boundary = multipart_boundary(&headers);
        assert_eq!(boundary.as_deref(), Some("b0undary"));
        let p = Params::parse_with(Some("local=1"), body, boundary.as_deref());
        assert_eq!(p.get("local"), Some("1"));
        assert_eq!(p.get("format"), Some("msgpack"));
        assert_eq!(p.get_all("target"), vec!["seriesByTag('a=b')", "x.{y,z}"]);
        assert_eq!(p.get("empty"), Some(""));
        // Damaged or foreign bodies give what could be read, never a panic.
        assert!(multipart_fields(b"no delimiter", "b0undary").is_empty());
        assert_eq!(multipart_fields(&body[..60], "b0undary"), vec![]);
        let quoted = HeaderValue::from_static("multipart/form-data; boundary=\"q\"");
        headers.insert(header::CONTENT_TYPE, quoted);
        assert_eq!(multipart_boundary(&headers).as_deref(), Some("q"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert_eq!(multipart_boundary(&headers), None);
    }

    #[test]
    fn node_names_are_unquoted() {
        assert_eq!(unquote_plus("a%20b+c"), "a b c");
        assert_eq!(unquote_plus("100%"), "100%");
    }
}
